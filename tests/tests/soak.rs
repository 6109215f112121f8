//! Load soak: many concurrent shoppers on loopback against the real release `giftify`
//! (`serve`: API and worker in one process) for a bounded time, while an admin restocks.
//! Passes only with zero 5xx, zero transport failures, zero answers outside each endpoint's
//! expected 4xx, zero lost orders, and money and stock conserved at the end.
//!
//! Not part of `cargo test`: it is `#[ignore]`d and run by `scripts/soak`, which sets
//! `GIFTIFY_SOAK_SECS` (default 60) and `GIFTIFY_SOAK_CLIENTS` (default 48).

#[path = "api/invariants.rs"]
mod invariants;
#[path = "load/mod.rs"]
mod load;
#[allow(dead_code)]
#[path = "api/support.rs"]
mod support;

use crate::invariants::{assert_conserved, stock_by_variant};
use crate::load::{HttpApi, Shop, Tally};
use giftify_tests::process::{Deployment, Http};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Restocks a variant by this much when it runs low, so the soak keeps selling.
const RESTOCK: i64 = 500;
/// ...when its stock is below this.
const LOW_STOCK: i64 = 100;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a long soak: run it with scripts/soak"]
async fn many_concurrent_shoppers_get_no_unexpected_errors_and_lose_no_orders() {
    let seconds = env_number("GIFTIFY_SOAK_SECS", 60);
    let clients = env_number("GIFTIFY_SOAK_CLIENTS", 48) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let deployment = Deployment::new(dir.path(), &[("RUST_LOG", "warn")]);
    let mut server = deployment.spawn("serve", &["serve"]);
    let http = Http::new(&deployment.base_url(), Duration::from_secs(30));
    http.wait_until_healthy(&mut server, Duration::from_secs(30))
        .await;

    let admin_token = load::admin_token(&http).await;
    let api = HttpApi {
        http: http.clone(),
        admin_token: admin_token.clone(),
    };
    let initial_stock = stock_by_variant(&api).await;
    let mut registered = Vec::new();
    for i in 0..clients {
        let user =
            load::register(&http, &format!("soak{i}-{}@example.in", std::process::id())).await;
        let funded = http
            .post(
                "/wallet/topup",
                Some(&user.token),
                &json!({"amount": 5_000_000}),
            )
            .await
            .expect("top-up answers");
        assert_eq!(funded.status, 200, "{}", funded.body);
        registered.push(user);
    }

    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let shop = Arc::new(Shop {
        http: http.clone(),
        variants: load::variants(&http, &admin_token).await,
        chaos: false,
        give_up_at: until,
    });
    let seed: u64 = rand::random();
    println!("soak: {clients} clients for {seconds} s, seed {seed}");
    let shoppers: Vec<_> = registered
        .into_iter()
        .enumerate()
        .map(|(index, user)| {
            let shop = shop.clone();
            tokio::spawn(async move {
                load::shopper(&shop, index, user, seed + index as u64, until).await
            })
        })
        .collect();
    let restocked = restock_until(&http, &admin_token, until).await;

    let mut tally = Tally::default();
    let mut users = Vec::new();
    for shopper in shoppers {
        let (seen, user) = shopper.await.expect("a shopper task");
        tally.merge(seen);
        users.push(user);
    }
    let elapsed = started.elapsed().as_secs_f64();
    // A long soak outlives the first admin token.
    let admin_token = load::admin_token(&http).await;
    let api = HttpApi {
        http: http.clone(),
        admin_token: admin_token.clone(),
    };
    let backlog = Instant::now();
    // A backlog may take a while to drain on a loaded machine; it must keep shrinking.
    let settled = load::wait_until_settled(
        &http,
        &admin_token,
        Duration::from_secs(30),
        Duration::from_secs(600),
    )
    .await;
    let backlog = backlog.elapsed().as_secs_f64();
    server.assert_running();
    if let Err(open) = settled {
        panic!(
            "{open}\ndead letters:\n{}",
            deployment.run(&["dlq", "list"])
        );
    }

    // Restocking moved stock on purpose: conservation is counted from initial + restocked.
    let mut expected_initial = initial_stock.clone();
    for (variant, added) in &restocked {
        *expected_initial.entry(variant.clone()).or_default() += added;
    }
    assert_conserved(&api, &users, &expected_initial).await;
    for (index, order) in &tally.accepted_orders {
        let response = http
            .get(&format!("/orders/{order}"), Some(&users[*index].token))
            .await
            .expect("the API answers");
        let status = response.body["data"]["status"].as_str().unwrap_or_default();
        assert!(
            ["FULFILLED", "PARTIALLY_FULFILLED", "REFUNDED", "CANCELLED"].contains(&status),
            "accepted order {order} is lost or open: {}",
            response.body
        );
    }
    let (p50, p99) = (tally.latency_ms(0.5), tally.latency_ms(0.99));
    println!(
        "soak: {} requests in {elapsed:.1} s = {:.0} req/s; p50 {p50:.1} ms, p99 {p99:.1} ms; \
         {} orders accepted, all final {backlog:.1} s after the last request; \
         {} cards revealed; {} variants restocked; \
         5xx {}, transport failures {}, unexpected answers {}\n{}",
        tally.requests,
        tally.requests as f64 / elapsed,
        tally.accepted_orders.len(),
        tally.revealed.len(),
        restocked.len(),
        tally.server_errors(),
        tally.transport_errors,
        tally.violations.len(),
        tally.outcome_lines()
    );
    assert!(
        tally.violations.is_empty(),
        "{} unexpected answers, e.g.:\n{}",
        tally.violations.len(),
        tally
            .violations
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(tally.server_errors(), 0);
    assert_eq!(tally.transport_errors, 0);
    let leaks = load::card_secret_leaks(&server.log(), &tally.revealed);
    assert!(
        leaks.is_empty(),
        "card secrets in the server log: {leaks:?}"
    );
}

/// Every two seconds until `until`, adds [`RESTOCK`] units to each variant below
/// [`LOW_STOCK`] with a relative adjustment (safe against concurrent sales); returns the
/// units added per variant.
async fn restock_until(http: &Http, admin_token: &str, until: Instant) -> HashMap<String, i64> {
    let mut added: HashMap<String, i64> = HashMap::new();
    let mut admin_token = admin_token.to_string();
    let mut logged_in = Instant::now();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if logged_in.elapsed() > Duration::from_secs(10 * 60) {
            admin_token = load::admin_token(http).await;
            logged_in = Instant::now();
        }
        let admin_token = admin_token.as_str();
        let inventory = http
            .get("/admin/inventory", Some(admin_token))
            .await
            .expect("inventory answers");
        assert_eq!(inventory.status, 200, "{}", inventory.body);
        for item in inventory.body["data"]["inventory"]
            .as_array()
            .expect("inventory")
        {
            if item["stockQuantity"].as_i64().unwrap_or(0) >= LOW_STOCK {
                continue;
            }
            let variant = item["variantId"].as_str().expect("variantId");
            let response = http
                .send(
                    reqwest::Method::PUT,
                    &format!("/admin/inventory/{variant}"),
                    Some(admin_token),
                    Some(&json!({"stockAdjustment": RESTOCK})),
                    &[],
                )
                .await
                .expect("inventory update answers");
            assert_eq!(response.status, 200, "{}", response.body);
            *added.entry(variant.to_string()).or_default() += RESTOCK;
        }
    }
    added
}
