//! `bench codes`: brand codes on the embedded backend, through the use cases (no HTTP):
//! the import rate (rows validated, sealed and committed per second, 10,000 per import), then
//! fulfilled orders per second of an INVENTORY variant against a GENERATED one, each with the
//! same concurrent place → fulfil loops, in one run.

use super::stats::Samples;
use anyhow::Result;
use giftify_infra::config::QueueSettings;
use giftify_infra::embedded::SqliteStore;
use giftify_shared::catalogue::{Pricing, VariantUpdate};
use giftify_shared::codes::{BatchRef, CodeRow, FulfillmentSource};
use giftify_shared::ids::{UserId, VariantId};
use giftify_shared::order::{LineRequest, OrderMessage};
use giftify_shared::ports::Catalogue;
use giftify_shared::usecases::{NewProduct, NewVariant, OrderRequest, Registration};
use giftify_shared::user::Email;
use giftify_shared::vault::{CardKey, CardVault};
use giftify_shared::{Giftify, Rules, SystemClock};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// What `bench codes` measures.
#[derive(Clone, Debug)]
pub struct CodesOptions {
    /// Imports of 10,000 codes each (they also stock the INVENTORY variant).
    pub imports: usize,
    /// Concurrent order loops.
    pub tasks: usize,
    /// Measured seconds per kind of variant.
    pub duration: Duration,
}

const CODES_PER_IMPORT: usize = 10_000;

/// Runs the measurement in a fresh data dir under `scratch`.
pub async fn run(scratch: &Path, options: &CodesOptions) -> Result<Value> {
    let dir = tempfile::tempdir_in(scratch)?;
    let store = SqliteStore::open(&dir.path().join("giftify.db"), QueueSettings::default()).await?;
    let giftify = Arc::new(Giftify::new(
        giftify_infra::embedded::ports_of(&store)?,
        Arc::new(CardVault::new(&CardKey::generate())),
        Arc::new(SystemClock),
        Rules::default(),
    ));
    let product = giftify
        .add_product(
            &giftify_shared::audit::Actor::Operator,
            NewProduct {
                name: "Bench".into(),
                description: "Bench cards".into(),
                brand: "Bench".into(),
                category: "SHOPPING".into(),
                image_url: "https://cdn.giftify.in/bench.jpg".into(),
                thumbnail_url: "https://cdn.giftify.in/bench-thumb.jpg".into(),
                terms_and_conditions: "None.".into(),
                how_to_redeem: "None.".into(),
                validity_days: 365,
            },
        )
        .await?;
    let mut variants = Vec::new();
    for source in [FulfillmentSource::Inventory, FulfillmentSource::Generated] {
        let variant = giftify
            .add_variant(
                &giftify_shared::audit::Actor::Operator,
                product.id.clone(),
                NewVariant {
                    name: format!("Bench {}", source.as_str()),
                    denomination: 100,
                    pricing: Pricing::new(10_000, 9_000, 0)?,
                    stock_quantity: 0,
                    min_order_quantity: 1,
                    max_order_quantity: 10,
                    is_active: true,
                    fulfillment_source: source,
                },
            )
            .await?;
        variants.push(variant.id);
    }
    store
        .update_variant(
            &variants[1],
            &VariantUpdate {
                stock_quantity: Some(100_000_000),
                ..VariantUpdate::default()
            },
            chrono::Utc::now(),
        )
        .await?;

    let expiry = (chrono::Utc::now() + chrono::Duration::days(365))
        .date_naive()
        .to_string();
    let mut import_seconds = Vec::new();
    for batch in 0..options.imports {
        let rows: Vec<CodeRow> = (0..CODES_PER_IMPORT)
            .map(|i| CodeRow {
                number: format!("BENCH{batch:04}{i:06}"),
                pin: Some(format!("{:06}", i)),
                expiry_date: Some(expiry.clone()),
            })
            .collect();
        let begun = Instant::now();
        let report = giftify
            .import_codes(
                &giftify_shared::audit::Actor::Operator,
                &variants[0],
                BatchRef::parse(&format!("B{batch}"))?,
                &rows,
            )
            .await?;
        import_seconds.push(begun.elapsed().as_secs_f64());
        anyhow::ensure!(report.imported as usize == CODES_PER_IMPORT, "{report:?}");
    }
    let imported = options.imports * CODES_PER_IMPORT;
    let import_total: f64 = import_seconds.iter().sum();

    let mut users = Vec::new();
    for n in 0..options.tasks {
        let user = giftify
            .register(Registration {
                email: Email::parse(&format!("codes-bench-{n}@example.com"))?,
                typed_email: String::new(),
                password_hash: "not-a-real-hash".into(),
                first_name: "Bench".into(),
                last_name: "User".into(),
                phone_number: None,
            })
            .await?;
        users.push(user.id);
    }
    let inventory = fulfil_loops(&giftify, &users, &variants[0], options.duration).await?;
    let generated = fulfil_loops(&giftify, &users, &variants[1], options.duration).await?;
    Ok(json!({
        "import": {
            "imports": options.imports,
            "codes_per_import": CODES_PER_IMPORT,
            "codes_per_s": round(imported as f64 / import_total),
            "seconds_per_import": import_seconds.iter().map(|s| round(*s)).collect::<Vec<_>>(),
        },
        "fulfilment": {
            "tasks": options.tasks,
            "duration_s": options.duration.as_secs(),
            "inventory": inventory,
            "generated": generated,
            "inventory_over_generated": round(
                inventory["orders_per_s"].as_f64().unwrap_or(0.0)
                    / generated["orders_per_s"].as_f64().unwrap_or(1.0).max(f64::MIN_POSITIVE)
            ),
        },
    }))
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `users.len()` loops of top-up-as-needed → place one card → handle its message, for
/// `duration` after a second of warm-up.
async fn fulfil_loops(
    giftify: &Arc<Giftify>,
    users: &[UserId],
    variant: &VariantId,
    duration: Duration,
) -> Result<Value> {
    let warm_until = Instant::now() + Duration::from_secs(1);
    let end = warm_until + duration;
    let mut loops = JoinSet::new();
    for user in users {
        let (giftify, variant, user) = (giftify.clone(), variant.clone(), user.clone());
        loops.spawn(async move {
            let (mut samples, mut done, mut errors) = (Samples::default(), 0u64, 0u64);
            loop {
                let begun = Instant::now();
                if begun >= end {
                    return (samples, done, errors);
                }
                if giftify
                    .balance(&user)
                    .await
                    .map_or(true, |b| b.get() < 10_000)
                {
                    let _ = giftify.top_up(&user, 10_000_000, None).await;
                }
                let placed = giftify
                    .place_order(
                        &user,
                        OrderRequest::Items(vec![LineRequest {
                            variant_id: variant.clone(),
                            quantity: 1,
                        }]),
                    )
                    .await;
                let handled = match placed {
                    Ok(order) => {
                        giftify
                            .handle_order_message(&OrderMessage {
                                order_id: order.id,
                                user_id: user.clone(),
                            })
                            .await
                    }
                    Err(error) => Err(error),
                };
                match handled {
                    Ok(_) if begun >= warm_until => {
                        samples.record(begun.elapsed());
                        done += 1;
                    }
                    Ok(_) => {}
                    Err(_) => errors += 1,
                }
            }
        });
    }
    let (mut all, mut orders, mut errors) = (Samples::default(), 0u64, 0u64);
    while let Some(finished) = loops.join_next().await {
        let (samples, done, failed) = finished?;
        all.merge(samples);
        orders += done;
        errors += failed;
    }
    Ok(json!({
        "orders_per_s": round(orders as f64 / duration.as_secs_f64()),
        "order_p50_ms": round(all.percentile_ms(50.0)),
        "order_p99_ms": round(all.percentile_ms(99.0)),
        "errors": errors,
    }))
}

/// The report as a short table.
pub fn table(figures: &Value) -> String {
    format!(
        "import: {} codes/s ({} × {} codes)\nfulfilled orders/s: INVENTORY {} (p50 {} ms), GENERATED {} (p50 {} ms), ratio {}\n",
        figures["import"]["codes_per_s"],
        figures["import"]["imports"],
        figures["import"]["codes_per_import"],
        figures["fulfilment"]["inventory"]["orders_per_s"],
        figures["fulfilment"]["inventory"]["order_p50_ms"],
        figures["fulfilment"]["generated"]["orders_per_s"],
        figures["fulfilment"]["generated"]["order_p50_ms"],
        figures["fulfilment"]["inventory_over_generated"],
    )
}
