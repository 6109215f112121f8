//! The limits the local benchmark compares Giftify with, measured on the same machine in the
//! same run:
//!
//! - **raw SQLite**: the two business transactions of an order — place (debit + DEBIT record +
//!   PENDING order + queue message) and fulfil (PENDING→PROCESSING, then stock + card + final
//!   status) — called straight on the store's ports, with no HTTP, JSON, queue polling or
//!   events, by as many concurrent tasks as the HTTP benchmark has clients;
//! - **an axum endpoint that does nothing**, driven by the same HTTP client with as many
//!   concurrent clients: what loopback HTTP alone costs here;
//! - the **fdatasync rate** of the data dir's file system: the floor under every durable commit
//!   (SQLite in WAL mode with `synchronous=FULL` syncs the log on each commit).

use super::http_client;
use super::stats::{Samples, round3};
use anyhow::Result;
use axum::Router;
use axum::routing::get;
use chrono::Utc;
use giftify_infra::config::QueueSettings;
use giftify_infra::embedded::SqliteStore;
use giftify_shared::catalogue::{CatalogueEntry, VariantUpdate};
use giftify_shared::ids::{GiftCardId, OrderId, TransactionId, UserId};
use giftify_shared::ledger::Movement;
use giftify_shared::order::{
    Fulfillment, FulfillmentDetails, Order, OrderLine, OrderPlacement, OrderSource, OrderStatus,
};
use giftify_shared::ports::{Catalogue, Orders};
use giftify_shared::usecases::Registration;
use giftify_shared::user::Email;
use giftify_shared::vault::{CardKey, CardVault, GiftCard, GiftCardStatus};
use giftify_shared::{Giftify, Paise, Rules, SystemClock};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Synced 4 KiB appends per second to a file in `dir`.
pub fn fdatasync_rate(dir: &Path) -> Result<f64> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let block = [0u8; 4096];
    let rounds = 200;
    let begun = Instant::now();
    for _ in 0..rounds {
        file.write_all(&block)?;
        file.sync_data()?;
    }
    let rate = f64::from(rounds) / begun.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// Requests per second and latency of a do-nothing endpoint.
#[derive(Clone, Debug)]
pub struct LimitReport {
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub clients: usize,
}

impl LimitReport {
    pub fn json(&self) -> Value {
        json!({
            "requests_per_s": round3(self.requests_per_s),
            "p50_ms": round3(self.p50_ms),
            "p99_ms": round3(self.p99_ms),
            "clients": self.clients,
        })
    }
}

/// Serves `GET /noop` (an empty 200) on its own runtime and drives it with `clients`
/// closed-loop clients for `duration`.
pub async fn noop_http(clients: usize, duration: Duration) -> Result<LimitReport> {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let server = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            let app = Router::new().route("/noop", get(|| async {}));
            let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
                return;
            };
            let _ = addr_tx.send(listener.local_addr());
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        });
    });
    let addr = addr_rx.recv()??;
    let http = http_client(clients)?;
    let url = format!("http://{addr}/noop");
    let warm_until = Instant::now() + Duration::from_secs(1);
    let end = warm_until + duration;
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let (http, url) = (http.clone(), url.clone());
        tasks.spawn(async move {
            let mut samples = Samples::default();
            let mut count = 0u64;
            loop {
                let begun = Instant::now();
                if begun >= end {
                    return (samples, count);
                }
                let ok = match http.get(&url).send().await {
                    Ok(response) => response.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok && begun >= warm_until {
                    samples.record(begun.elapsed());
                    count += 1;
                }
            }
        });
    }
    let mut all = Samples::default();
    let mut requests = 0;
    while let Some(done) = tasks.join_next().await {
        let (samples, count) = done?;
        all.merge(samples);
        requests += count;
    }
    let _ = stop.send(true);
    let _ = tokio::task::spawn_blocking(move || server.join()).await;
    Ok(LimitReport {
        requests_per_s: requests as f64 / duration.as_secs_f64(),
        p50_ms: all.percentile_ms(50.0),
        p99_ms: all.percentile_ms(99.0),
        clients,
    })
}

/// Orders per second through the store ports alone.
#[derive(Clone, Debug)]
pub struct RawReport {
    pub orders_per_s: f64,
    pub commits_per_s: f64,
    pub order_p50_ms: f64,
    pub order_p99_ms: f64,
    pub tasks: usize,
    pub errors: u64,
}

impl RawReport {
    pub fn json(&self) -> Value {
        json!({
            "orders_per_s": round3(self.orders_per_s),
            "commits_per_s": round3(self.commits_per_s),
            "order_p50_ms": round3(self.order_p50_ms),
            "order_p99_ms": round3(self.order_p99_ms),
            "tasks": self.tasks,
            "errors": self.errors,
            "transactions_per_order": ["place_order", "start_processing", "complete_fulfillment"],
        })
    }
}

/// A fresh store in `dir`, the demo catalogue stocked up, `tasks` funded users, then `tasks`
/// concurrent loops of place → start processing → complete, for `duration` after a second of
/// warm-up.
pub async fn raw_sqlite(dir: &Path, tasks: usize, duration: Duration) -> Result<RawReport> {
    let store = SqliteStore::open(&dir.join("giftify.db"), QueueSettings::default()).await?;
    let giftify = Giftify::new(
        giftify_infra::embedded::ports_of(&store)?,
        Arc::new(CardVault::new(&CardKey::generate())),
        Arc::new(SystemClock),
        Rules::default(),
    );
    giftify.seed_demo_catalogue().await?;
    let mut entries = Vec::new();
    for product in giftify.catalogue().await?.iter() {
        // Giftify's own cards: variants whose stock an admin sets.
        for variant in product
            .variants
            .iter()
            .filter(|v| v.fulfillment_source == giftify_shared::codes::FulfillmentSource::Generated)
        {
            let update = VariantUpdate {
                stock_quantity: Some(100_000_000),
                ..VariantUpdate::default()
            };
            entries.push(
                store
                    .update_variant(&variant.id, &update, Utc::now())
                    .await?,
            );
        }
    }
    let mut users = Vec::new();
    for n in 0..tasks {
        let user = giftify
            .register(Registration {
                email: Email::parse(&format!("raw-{n}@example.com"))?,
                typed_email: String::new(),
                password_hash: "not-a-real-hash".into(),
                first_name: "Raw".into(),
                last_name: "Limit".into(),
                phone_number: None,
            })
            .await?;
        users.push(user.id);
    }
    let entries = Arc::new(entries);
    let vault = giftify.vault.clone();
    let warm_until = Instant::now() + Duration::from_secs(1);
    let end = warm_until + duration;
    let mut loops = JoinSet::new();
    for (n, user) in users.into_iter().enumerate() {
        let (store, entries, vault) = (store.clone(), entries.clone(), vault.clone());
        loops.spawn(async move {
            let entry = &entries[n % entries.len()];
            let mut samples = Samples::default();
            let (mut done, mut errors) = (0u64, 0u64);
            // Enough money for every order this loop can place, in one credit.
            let mut balance = Paise::ZERO;
            loop {
                let begun = Instant::now();
                if begun >= end {
                    return (samples, done, errors);
                }
                if balance < entry.variant.selling_price {
                    if fund(&store, &user).await.is_err() {
                        errors += 1;
                        continue;
                    }
                    balance = Paise::new(FUNDING);
                }
                match one_raw_order(&store, &vault, &user, entry).await {
                    Ok(()) => {
                        balance = Paise::new(balance.get() - entry.variant.selling_price.get());
                        if begun >= warm_until {
                            samples.record(begun.elapsed());
                            done += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
        });
    }
    let mut all = Samples::default();
    let (mut orders, mut errors) = (0u64, 0u64);
    while let Some(finished) = loops.join_next().await {
        let (samples, done, failed) = finished?;
        all.merge(samples);
        orders += done;
        errors += failed;
    }
    let orders_per_s = orders as f64 / duration.as_secs_f64();
    Ok(RawReport {
        orders_per_s,
        commits_per_s: orders_per_s * 3.0,
        order_p50_ms: all.percentile_ms(50.0),
        order_p99_ms: all.percentile_ms(99.0),
        tasks,
        errors,
    })
}

/// One credit per raw-limit loop: far more than it can spend in a run.
const FUNDING: i64 = 900_000_000_000;

async fn fund(store: &SqliteStore, user: &UserId) -> giftify_shared::Result<()> {
    use giftify_shared::ports::Wallets;
    let now = Utc::now();
    store
        .top_up(&giftify_shared::ledger::Posting {
            movement: Movement::top_up(
                TransactionId::generate(),
                user.clone(),
                Paise::new(FUNDING),
                "raw limit funding".into(),
                Paise::new(i64::MAX / 4),
                now,
            )?,
            idempotency: None,
        })
        .await
        .map(|_| ())
}

/// The two transactions of one order, as the use cases would build them.
async fn one_raw_order(
    store: &SqliteStore,
    vault: &CardVault,
    user: &UserId,
    entry: &CatalogueEntry,
) -> giftify_shared::Result<()> {
    let now = Utc::now();
    let line = OrderLine {
        variant_id: entry.variant.id.clone(),
        product_id: entry.product.id.clone(),
        product_name: entry.product.name.clone(),
        variant_name: entry.variant.name.clone(),
        denomination: entry.variant.denomination,
        unit_price: entry.variant.selling_price,
        cost_price: entry.variant.cost_price,
        requested_quantity: 1,
        fulfilled_quantity: 0,
        validity_days: entry.product.validity_days,
    };
    let order = Order {
        id: OrderId::generate(),
        user_id: user.clone(),
        status: OrderStatus::Pending,
        source: OrderSource::Items,
        total_amount: line.unit_price,
        paid_amount: line.unit_price,
        refund_amount: Paise::ZERO,
        items: vec![line.clone()],
        fulfillment: FulfillmentDetails::default(),
        created_at: now,
        updated_at: now,
        notified_at: None,
        labels: Default::default(),
        gift_card_ids: Vec::new(),
    };
    store
        .place_order(&OrderPlacement {
            debit: Movement::payment(
                TransactionId::generate(),
                user.clone(),
                &order.id,
                order.total_amount,
                now,
            ),
            order: order.clone(),
            cart_version: None,
            idempotency: None,
        })
        .await?;
    store.start_processing(&order.id, Utc::now()).await?;
    let now = Utc::now();
    let card_id = GiftCardId::generate();
    let card = GiftCard {
        sealed: vault.issue(&card_id)?,
        id: card_id,
        order_id: order.id.clone(),
        user_id: user.clone(),
        product_id: line.product_id.clone(),
        variant_id: line.variant_id.clone(),
        product_name: line.product_name.clone(),
        variant_name: line.variant_name.clone(),
        denomination: line.denomination,
        expiry_date: (now + chrono::Duration::days(365)).date_naive(),
        status: GiftCardStatus::Active,
        purchase_price: line.unit_price,
        issued_at: now,
        redeemed_at: None,
        redeemed_by: None,
        revealed_at: None,
        returned_at: None,
        notified_at: None,
    };
    store
        .complete_fulfillment(&Fulfillment {
            order_id: order.id.clone(),
            user_id: user.clone(),
            status: OrderStatus::Fulfilled,
            fulfilled_quantities: vec![1],
            cards: vec![card],
            allocated_codes: Vec::new(),
            refund: None,
            clear_cart: false,
            now,
        })
        .await?;
    Ok(())
}
