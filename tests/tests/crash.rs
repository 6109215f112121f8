//! Process-level crash test: the real release `giftify` binary, run as an API process
//! (`serve --no-worker`) and a worker process (`worker`) on one data dir, under concurrent
//! HTTP load, SIGKILLed again and again — the API alone, the worker alone, both together —
//! and restarted each time. Afterwards every order must be final and money and stock
//! conserved, checked through HTTP with the same invariants as the in-process tests.
//!
//! What this covers that the in-process tests cannot: a process dying between any two
//! instructions (mid-transaction, mid-fsync, holding the SQLite write lock, holding queue
//! messages, holding idempotency leases), two processes sharing one database, and clients
//! retrying with the same `Idempotency-Key` across a restart.

#[path = "api/invariants.rs"]
mod invariants;
#[path = "load/mod.rs"]
mod load;
#[allow(dead_code)]
#[path = "api/support.rs"]
mod support;

use crate::invariants::{Api, assert_conserved, stock_by_variant};
use crate::load::{HttpApi, Shop, Tally};
use giftify_tests::process::{Deployment, GiftifyProcess, Http};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kill cycles: API, worker, both, round-robin.
const KILL_CYCLES: usize = 9;
/// Concurrent shoppers.
const SHOPPERS: usize = 12;

/// What was killed in one cycle.
#[derive(Clone, Copy, Debug)]
enum Victim {
    Api,
    Worker,
    Both,
}

/// The two processes of the deployment.
struct Processes {
    deployment: Deployment,
    api: GiftifyProcess,
    worker: GiftifyProcess,
}

impl Processes {
    /// Starts the API, and the worker once the API has initialised the data dir (only `serve`
    /// creates a database; a worker on a dir without one refuses to start).
    async fn start(deployment: Deployment, http: &Http) -> Processes {
        let mut api = deployment.spawn("api", &["serve", "--no-worker"]);
        http.wait_until_healthy(&mut api, Duration::from_secs(30))
            .await;
        let worker = deployment.spawn("worker", &["worker"]);
        Processes {
            deployment,
            api,
            worker,
        }
    }

    /// SIGKILLs the victim(s), then starts fresh processes in their place.
    async fn kill_and_restart(&mut self, victim: Victim, http: &Http) {
        if matches!(victim, Victim::Api | Victim::Both) {
            self.api.kill();
        }
        if matches!(victim, Victim::Worker | Victim::Both) {
            self.worker.kill();
        }
        // Down long enough for clients to notice and retry.
        tokio::time::sleep(Duration::from_millis(300)).await;
        if matches!(victim, Victim::Api | Victim::Both) {
            self.api = self.deployment.spawn("api", &["serve", "--no-worker"]);
        }
        if matches!(victim, Victim::Worker | Victim::Both) {
            self.worker = self.deployment.spawn("worker", &["worker"]);
        }
        http.wait_until_healthy(&mut self.api, Duration::from_secs(20))
            .await;
        self.worker.assert_running();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkilled_api_and_worker_processes_lose_no_money_stock_or_orders() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let deployment = Deployment::new(
        dir.path(),
        &[
            // A killed worker's messages come back after the visibility timeout: keep it short
            // so the test settles in seconds, not the production 30 s.
            ("GIFTIFY_QUEUE_VISIBILITY_SECS", "2"),
            // Kills may cost a message several receives; none should be dead-lettered for it.
            ("GIFTIFY_QUEUE_MAX_RECEIVES", "20"),
            // The reconciler re-enqueues PENDING orders older than this, on every worker start:
            // duplicates of messages still queued, which fulfillment must absorb.
            ("GIFTIFY_STALE_PENDING_SECS", "3"),
            (
                "RUST_LOG",
                "info,giftify_api=debug,giftify_infra=debug,giftify_shared=debug",
            ),
        ],
    );
    let http = Http::new(&deployment.base_url(), Duration::from_secs(10));
    let mut processes = Processes::start(deployment.clone(), &http).await;

    let admin_token = load::admin_token(&http).await;
    let variants = load::variants(&http, &admin_token).await;
    // One scarce variant, so concurrent orders race for the last units across the kills.
    let scarce = &variants[0].id;
    let set = http
        .send(
            reqwest::Method::PUT,
            &format!("/admin/inventory/{scarce}"),
            Some(&admin_token),
            Some(&json!({"stockQuantity": 12})),
            &[],
        )
        .await
        .expect("inventory answers");
    assert_eq!(set.status, 200, "{}", set.body);

    let mut users = Vec::new();
    for i in 0..SHOPPERS {
        let user = load::register(
            &http,
            &format!("crash{i}-{}@example.in", std::process::id()),
        )
        .await;
        let funded = http
            .send(
                reqwest::Method::POST,
                "/wallet/topup",
                Some(&user.token),
                Some(&json!({"amount": 5_000_000})),
                &[],
            )
            .await
            .expect("top-up answers");
        assert_eq!(funded.status, 200, "{}", funded.body);
        users.push(user);
    }
    let api = HttpApi {
        http: http.clone(),
        admin_token: admin_token.clone(),
    };
    let initial_stock = stock_by_variant(&api).await;

    // Shoppers run through every kill and a little past the last one.
    let chaos_seconds = 3 * KILL_CYCLES as u64;
    let shopping_ends = Instant::now() + Duration::from_secs(chaos_seconds + 2);
    let shop = Arc::new(Shop {
        http: http.clone(),
        variants,
        chaos: true,
        give_up_at: shopping_ends + Duration::from_secs(20),
    });
    let seed: u64 = std::env::var("GIFTIFY_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test seed {seed} (replay the kill schedule with GIFTIFY_CRASH_SEED={seed})");
    let shoppers: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(index, user)| {
            let (shop, user) = (shop.clone(), user.clone());
            tokio::spawn(async move {
                load::shopper(&shop, index, user, seed + index as u64, shopping_ends).await
            })
        })
        .collect();

    let mut rng = StdRng::seed_from_u64(seed);
    let mut kills = Vec::new();
    for cycle in 0..KILL_CYCLES {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1_200..2_800))).await;
        let victim = [Victim::Api, Victim::Worker, Victim::Both][cycle % 3];
        processes.kill_and_restart(victim, &http).await;
        kills.push(victim);
    }

    let mut tally = Tally::default();
    for shopper in shoppers {
        let (seen, _) = shopper.await.expect("a shopper task");
        tally.merge(seen);
    }

    let settled = load::wait_until_settled(
        &http,
        &admin_token,
        Duration::from_secs(20),
        Duration::from_secs(60),
    )
    .await;
    let dead_letters = processes.deployment.run(&["dlq", "list"]);
    if let Err(open) = settled {
        panic!(
            "{open}\ndead letters:\n{dead_letters}\nworker log:\n{}",
            processes.worker.log_tail(30)
        );
    }
    assert!(
        dead_letters.contains("The dead-letter queue is empty"),
        "kills must not dead-letter messages:\n{dead_letters}"
    );

    assert_conserved(&api, &users, &initial_stock).await;
    assert_no_lost_orders(&api, &users, &tally).await;
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
    processes.api.assert_running();
    processes.worker.assert_running();
    let logs = format!("{}{}", processes.api.log(), processes.worker.log());
    // The search finds a planted leak, so an empty result means something.
    if let Some((number, pin)) = tally.revealed.first() {
        let planted =
            format!("{logs}\n{{\"giftCardNumber\":\"{number}\",\"giftCardPin\":\"{pin}\"}}");
        assert!(load::card_secret_leaks(&planted, &tally.revealed).len() >= 2);
    }
    let leaks = load::card_secret_leaks(&logs, &tally.revealed);
    assert!(
        leaks.is_empty(),
        "card secrets in the process logs: {leaks:?}"
    );
    let p99 = tally.latency_ms(0.99);
    println!(
        "crash test: {} kill cycles ({} API, {} worker, {} both), {} requests (p99 {p99:.0} ms, \
         {} 5xx), {} accepted orders, {} transport failures retried, {} abandoned, \
         {} cards revealed, {:.1} s\n{}",
        kills.len(),
        kills.iter().filter(|v| matches!(v, Victim::Api)).count(),
        kills.iter().filter(|v| matches!(v, Victim::Worker)).count(),
        kills.iter().filter(|v| matches!(v, Victim::Both)).count(),
        tally.requests,
        tally.server_errors(),
        tally.accepted_orders.len(),
        tally.transport_errors,
        tally.abandoned,
        tally.revealed.len(),
        started.elapsed().as_secs_f64(),
        tally.outcome_lines()
    );
}

/// Servers started together on a fresh data dir (a deploy of two API processes, a reboot)
/// all open it: creating the database, switching it to WAL, migrating it, generating the keys,
/// recording their check values and creating the admin race when several processes do them
/// at the same instant. Each round starts several real `serve` processes at once on a new
/// data dir, each on its own port; every one must come up and answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_started_together_on_a_fresh_data_dir_all_open_it() {
    const ROUNDS: usize = 6;
    const PROCESSES: usize = 4;
    for _ in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut servers: Vec<(GiftifyProcess, Http)> = (0..PROCESSES)
            .map(|_| {
                let deployment = Deployment::new(dir.path(), &[]);
                let http = Http::new(&deployment.base_url(), Duration::from_secs(5));
                (deployment.spawn("server", &["serve", "--no-worker"]), http)
            })
            .collect();
        for (server, http) in &mut servers {
            http.wait_until_healthy(server, Duration::from_secs(30))
                .await;
        }
        for (_, http) in &servers {
            let login = http
                .post(
                    "/auth/login",
                    None,
                    &json!({"email": giftify_tests::process::ADMIN_EMAIL,
                            "password": giftify_tests::process::ADMIN_PASSWORD}),
                )
                .await
                .expect("login answers");
            assert_eq!(login.status, 200, "{}", login.body);
        }
    }
}

/// Every order a client was told was accepted (202) exists, belongs to that client, and is
/// final.
async fn assert_no_lost_orders(api: &HttpApi, users: &[support::TestUser], tally: &Tally) {
    for (index, order) in &tally.accepted_orders {
        let response = api
            .get(&format!("/orders/{order}"), Some(&users[*index].token))
            .await;
        let status = response.data()["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            ["FULFILLED", "PARTIALLY_FULFILLED", "REFUNDED", "CANCELLED"]
                .contains(&status.as_str()),
            "accepted order {order} is {status}"
        );
    }
}

/// Places one order of the first variant for a fresh, funded user; returns the user's token
/// and the order id.
async fn placed_order(http: &Http, admin_token: &str, tag: &str) -> (String, String) {
    let variant = load::variants(http, admin_token).await[0].id.clone();
    let user = load::register(http, &format!("{tag}-{}@example.in", std::process::id())).await;
    let funded = http
        .post(
            "/wallet/topup",
            Some(&user.token),
            &json!({"amount": 1_000_000}),
        )
        .await
        .expect("top-up answers");
    assert_eq!(funded.status, 200, "{}", funded.body);
    let created = http
        .post(
            "/orders/create",
            Some(&user.token),
            &json!({"items": [{"variantId": variant, "quantity": 1}]}),
        )
        .await
        .expect("create answers");
    assert_eq!(created.status, 202, "{}", created.body);
    let order = created.body["data"]["orderId"]
        .as_str()
        .expect("orderId")
        .to_string();
    (user.token, order)
}

async fn status_of(http: &Http, token: &str, order: &str) -> String {
    let seen = http
        .get(&format!("/orders/{order}"), Some(token))
        .await
        .expect("order answers");
    seen.body["data"]["status"]
        .as_str()
        .expect("status")
        .to_string()
}

/// With no worker running anywhere, money still comes back: the operator's `dlq refund` gives
/// an order up on request, and an API-only process (`serve --no-worker`) runs the reconciler,
/// which refunds an order past its deadline by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_worker_orders_are_refunded_by_the_operator_and_by_the_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let deployment = Deployment::new(dir.path(), &[("GIFTIFY_STUCK_ORDER_REFUND_SECS", "3600")]);
    let http = Http::new(&deployment.base_url(), Duration::from_secs(10));
    let mut api = deployment.spawn("api", &["serve", "--no-worker"]);
    http.wait_until_healthy(&mut api, Duration::from_secs(30))
        .await;
    let admin_token = load::admin_token(&http).await;

    let (token, order) = placed_order(&http, &admin_token, "by-hand").await;
    let unknown = deployment.try_run(&["dlq", "redrive", "--order", &order]);
    assert!(
        !unknown.success,
        "an order without a dead letter: {unknown:?}"
    );
    assert!(
        unknown.stderr.contains("dead letter not found"),
        "{unknown:?}"
    );
    let blank = deployment.try_run(&["dlq", "refund", &order, "--reason", " "]);
    assert!(!blank.success, "a blank reason: {blank:?}");
    let printed = deployment.run(&["dlq", "refund", &order, "--reason", "no brand stock today"]);
    assert!(printed.contains("REFUNDED"), "{printed}");
    assert_eq!(status_of(&http, &token, &order).await, "REFUNDED");
    let again = deployment.try_run(&["dlq", "refund", &order, "--reason", "twice"]);
    assert!(!again.success, "a final order: {again:?}");
    assert!(again.stderr.contains("REFUNDED already"), "{again:?}");

    // A deadline of one second; the reconciler's first pass is at start.
    api.terminate();
    assert!(
        api.wait_exit(Duration::from_secs(30)).is_some(),
        "the API stops"
    );
    let deployment = deployment.with("GIFTIFY_STUCK_ORDER_REFUND_SECS", Some("1"));
    let mut api = deployment.spawn("api", &["serve", "--no-worker"]);
    http.wait_until_healthy(&mut api, Duration::from_secs(30))
        .await;
    let (token, order) = placed_order(&http, &admin_token, "by-deadline").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        status_of(&http, &token, &order).await,
        "PENDING",
        "no worker runs"
    );
    api.terminate();
    assert!(
        api.wait_exit(Duration::from_secs(30)).is_some(),
        "the API stops"
    );
    let mut api = deployment.spawn("api", &["serve", "--no-worker"]);
    http.wait_until_healthy(&mut api, Duration::from_secs(30))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while status_of(&http, &token, &order).await != "REFUNDED" {
        assert!(
            Instant::now() < deadline,
            "not refunded: {}",
            api.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.terminate();
    api.wait_exit(Duration::from_secs(30));
}

/// The stock of `variant` as `GET /products` shows it.
fn shown_stock(products: &serde_json::Value, variant: &str) -> i64 {
    products["data"]["products"]
        .as_array()
        .expect("products")
        .iter()
        .flat_map(|product| product["variants"].as_array().expect("variants").iter())
        .find(|shown| shown["variantId"] == variant)
        .and_then(|shown| shown["stockQuantity"].as_i64())
        .expect("the variant is shown")
}

/// An API process (`serve --no-worker`) beside a worker process (`worker`) on one data dir:
/// the API's catalogue cache follows the stock the worker sells (the version it checks is
/// bumped in the database, by the sale's own transaction), and a status read that waits sees
/// the order the worker finishes (no announcement crosses processes: the wait reads again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_process_sees_what_a_worker_process_sells_and_waits_for_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let deployment = Deployment::new(dir.path(), &[]);
    let http = Http::new(&deployment.base_url(), Duration::from_secs(30));
    let mut api = deployment.spawn("api", &["serve", "--no-worker"]);
    http.wait_until_healthy(&mut api, Duration::from_secs(30))
        .await;
    let admin_token = load::admin_token(&http).await;
    let variant = load::variants(&http, &admin_token).await[0].id.clone();
    let before = http
        .get("/products", Some(&admin_token))
        .await
        .expect("products answer");
    let tag = before.headers["etag"].to_str().expect("tag").to_string();
    let revalidate = |tag: String| {
        let (http, token) = (&http, admin_token.clone());
        async move {
            http.send(
                reqwest::Method::GET,
                "/products",
                Some(&token),
                None,
                &[("if-none-match", &tag)],
            )
            .await
            .expect("products answer")
        }
    };
    assert_eq!(
        revalidate(tag.clone()).await.status,
        304,
        "nothing changed yet"
    );

    let mut worker = deployment.spawn("worker", &["worker"]);
    let (token, order) = placed_order(&http, &admin_token, "two-processes").await;
    let waited = http
        .send(
            reqwest::Method::GET,
            &format!("/orders/{order}"),
            Some(&token),
            None,
            &[("prefer", "wait=20")],
        )
        .await
        .expect("order answers");
    assert_eq!(
        waited.body["data"]["status"],
        "FULFILLED",
        "{}\n{}",
        waited.body,
        worker.log_tail(20)
    );
    let after = revalidate(tag.clone()).await;
    assert_eq!(after.status, 200, "the sale changed the catalogue");
    assert_ne!(after.headers["etag"].to_str().expect("tag"), tag);
    assert_eq!(
        shown_stock(&after.body, &variant),
        shown_stock(&before.body, &variant) - 1
    );

    for process in [&mut worker, &mut api] {
        process.terminate();
        assert!(
            process.wait_exit(Duration::from_secs(30)).is_some(),
            "{} stops",
            process.log_tail(10)
        );
    }
}
