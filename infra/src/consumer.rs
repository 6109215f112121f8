//! The embedded queue consumer: receives fulfillment messages from the SQLite queue and hands
//! each to [`Giftify::handle_order_message`], the same handler the fulfillment Lambda calls.
//!
//! A receive delivers at most one message per group (the queue only hands out the head of a
//! group), so the messages in hand always belong to different users and are handled
//! concurrently, up to [`MAX_IN_FLIGHT`]. A handled message is acked; a failed one is logged
//! once and released with exponential backoff and jitter, so a poison message walks to the
//! dead-letter queue after its receives while its group waits behind it, in order.

use crate::sqlite::{ReceivedMessage, SqliteStore};
use giftify_shared::Giftify;
use giftify_shared::usecases::{MessageOutcome, error_chain};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Messages handled at once.
pub const MAX_IN_FLIGHT: usize = 8;

/// How often the loop looks for work sent by another process; work sent in this process
/// wakes it at once.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The longest wait before a failed message is delivered again.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// What [`drain`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Deliveries handled and acked.
    pub handled: usize,
    /// Deliveries that failed and were released for another try.
    pub failed: usize,
    /// Messages moved to the dead-letter queue after exhausting their receives.
    pub dead_lettered: usize,
}

/// What became of one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Handled(MessageOutcome),
    Failed,
}

/// Handles one delivery: ack on success; on failure log once and release it with backoff.
/// This is the one per-message step of both [`run_embedded`] and [`drain`].
#[tracing::instrument(skip_all, fields(message_id = %delivery.message_id, order_id = %delivery.message.order_id))]
pub async fn process(
    giftify: &Giftify,
    store: &SqliteStore,
    delivery: &ReceivedMessage,
) -> Delivery {
    match giftify.handle_order_message(&delivery.message).await {
        Ok(outcome) => {
            match store.ack(delivery).await {
                Ok(true) => {}
                Ok(false) => tracing::debug!(
                    "the receipt went stale; the newer delivery finds the order done"
                ),
                // Handling is idempotent by the order's status: a redelivery only costs time.
                Err(error) => tracing::warn!(
                    error = %error_chain(&error),
                    "ack failed; the message will be delivered again"
                ),
            }
            Delivery::Handled(outcome)
        }
        Err(error) => {
            let options = store.options();
            let reason = error_chain(&error);
            let delay = retry_delay(options.retry_base_delay, delivery.receive_count);
            if delivery.receive_count >= options.queue.max_receives {
                tracing::error!(
                    receive_count = delivery.receive_count,
                    retryable = error.is_retryable(),
                    error = %reason,
                    "order message failed on its last receive; it goes to the dead-letter queue next"
                );
            } else {
                tracing::warn!(
                    receive_count = delivery.receive_count,
                    retryable = error.is_retryable(),
                    retry_in_ms = delay.as_millis() as u64,
                    error = %reason,
                    "order message failed; it will be delivered again"
                );
            }
            if let Err(release_error) = store.release(delivery, &reason, delay).await {
                tracing::warn!(
                    error = %error_chain(&release_error),
                    "release failed; the message reappears when its visibility timeout ends"
                );
            }
            Delivery::Failed
        }
    }
}

/// `base × 2^(receives − 1)`, capped at [`MAX_RETRY_DELAY`], with "equal jitter": half the
/// delay is fixed and half random, so failures of many groups do not retry in lockstep.
pub fn retry_delay(base: Duration, receive_count: u32) -> Duration {
    let exponent = receive_count.saturating_sub(1).min(20);
    let nominal = base.saturating_mul(1 << exponent).min(MAX_RETRY_DELAY);
    let half = nominal / 2;
    half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
}

/// True once shutdown is requested, or when no one can request it any more.
pub(crate) fn stop_requested(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Runs the consumer until `shutdown` turns true, then stops receiving, lets the messages in
/// hand finish, and returns.
pub async fn run_embedded(
    giftify: Giftify,
    store: Arc<SqliteStore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut running: JoinSet<()> = JoinSet::new();
    while !stop_requested(&shutdown) {
        let free = MAX_IN_FLIGHT.saturating_sub(running.len());
        let mut received = 0;
        if free > 0 {
            match store.receive_batch(free).await {
                Ok(batch) => {
                    for delivery in batch.messages {
                        received += 1;
                        let (giftify, store) = (giftify.clone(), store.clone());
                        running.spawn(async move {
                            process(&giftify, &store, &delivery).await;
                        });
                    }
                }
                Err(error) => tracing::warn!(
                    error = %error_chain(&error),
                    "receiving from the queue failed; retrying"
                ),
            }
        }
        if received > 0 {
            continue;
        }
        tokio::select! {
            Some(joined) = running.join_next(), if !running.is_empty() => report_panic(joined),
            () = store.wait_for_queue_work(POLL_INTERVAL) => {}
            _ = shutdown.changed() => {}
        }
    }
    while let Some(joined) = running.join_next().await {
        report_panic(joined);
    }
}

fn report_panic(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined {
        // The message stays invisible until its timeout and is then delivered again.
        tracing::error!(error = %error, "a message handler panicked");
    }
}

/// Handles every message deliverable now, through [`process`], until none is left. Messages
/// released with a delay are not deliverable yet and stay queued.
pub async fn drain(giftify: &Giftify, store: &SqliteStore) -> anyhow::Result<DrainReport> {
    let mut report = DrainReport::default();
    loop {
        let batch = store.receive_batch(MAX_IN_FLIGHT).await?;
        report.dead_lettered += batch.dead_lettered.len();
        if batch.messages.is_empty() {
            return Ok(report);
        }
        for delivery in &batch.messages {
            match process(giftify, store, delivery).await {
                Delivery::Handled(_) => report.handled += 1,
                Delivery::Failed => report.failed += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QueueSettings;
    use crate::sqlite::StoreOptions;
    use crate::webhooks::WebhookPublisher;
    use giftify_shared::ids::{OrderId, UserId};
    use giftify_shared::order::{LineRequest, OrderMessage, OrderStatus};
    use giftify_shared::ports::{OrderQueue, Ports, QueueOps};
    use giftify_shared::usecases::{OrderRequest, Registration};
    use giftify_shared::user::Email;
    use giftify_shared::vault::{CardKey, CardVault};
    use giftify_shared::{Rules, SystemClock};

    struct App {
        giftify: Giftify,
        store: Arc<SqliteStore>,
        _dir: tempfile::TempDir,
    }

    async fn app(options: StoreOptions) -> App {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_with(&dir.path().join("giftify.db"), options)
            .await
            .unwrap();
        let events = Arc::new(WebhookPublisher::new(store.clone(), Vec::new(), None));
        let giftify = Giftify::new(
            Ports::from_backend(store.clone(), events),
            Arc::new(CardVault::new(&CardKey::generate())),
            Arc::new(SystemClock),
            Rules::default(),
        );
        giftify.seed_demo_catalogue().await.unwrap();
        App {
            giftify,
            store,
            _dir: dir,
        }
    }

    fn settings() -> StoreOptions {
        StoreOptions {
            retry_base_delay: Duration::ZERO,
            ..StoreOptions::new(QueueSettings {
                max_receives: 3,
                ..QueueSettings::default()
            })
        }
    }

    /// A registered, funded user and a PENDING order of one card.
    async fn placed_order(app: &App) -> (UserId, OrderId) {
        let user = app
            .giftify
            .register(Registration {
                email: Email::parse(&format!("{}@example.com", UserId::generate().ulid_part()))
                    .unwrap(),
                typed_email: String::new(),
                password_hash: "hash".into(),
                first_name: "Asha".into(),
                last_name: "Rao".into(),
                phone_number: None,
            })
            .await
            .unwrap();
        app.giftify
            .top_up(&user.id, 1_000_000, None, None)
            .await
            .unwrap();
        let variant = app.giftify.catalogue().await.unwrap()[0].variants[0]
            .id
            .clone();
        let order = app
            .giftify
            .place_order(
                &user.id,
                OrderRequest::Items(vec![LineRequest {
                    variant_id: variant,
                    quantity: 1,
                }]),
                None,
            )
            .await
            .unwrap();
        (user.id, order.id)
    }

    #[test]
    fn retry_delays_grow_exponentially_with_jitter_and_a_cap() {
        let base = Duration::from_secs(1);
        for receives in 1..=5 {
            let nominal = base * (1 << (receives - 1));
            let delay = retry_delay(base, receives);
            assert!(
                delay >= nominal / 2 && delay <= nominal,
                "{receives}: {delay:?}"
            );
        }
        assert!(retry_delay(base, 40) <= MAX_RETRY_DELAY);
        assert_eq!(retry_delay(Duration::ZERO, 3), Duration::ZERO);
    }

    #[tokio::test]
    async fn drain_fulfils_a_placed_order_and_logs_its_event() {
        let app = app(settings()).await;
        let (_, order_id) = placed_order(&app).await;
        let report = drain(&app.giftify, &app.store).await.unwrap();
        assert_eq!(
            report,
            DrainReport {
                handled: 1,
                ..DrainReport::default()
            }
        );
        let order = app
            .giftify
            .ports
            .orders
            .order(&order_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(order.status, OrderStatus::Fulfilled);
        assert!(order.notified_at.is_some());
        let events = app.store.logged_events(10).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, "order.fulfilled");
        assert_eq!(app.store.depths().await.unwrap(), Default::default());
    }

    #[tokio::test]
    async fn a_poison_message_reaches_the_dead_letter_queue_after_max_receives() {
        let app = app(settings()).await;
        let poison = OrderMessage {
            order_id: OrderId::generate(),
            user_id: UserId::generate(),
        };
        app.store.enqueue(&poison).await.unwrap();
        let report = drain(&app.giftify, &app.store).await.unwrap();
        assert_eq!(
            report,
            DrainReport {
                handled: 0,
                failed: 3,
                dead_lettered: 1
            }
        );
        let dead = app.store.dead_letters(10).await.unwrap();
        assert_eq!(dead[0].order(), Some(&poison));
        assert!(
            dead[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("not found")),
            "{:?}",
            dead[0].last_error
        );
    }

    #[tokio::test]
    async fn the_loop_fulfils_new_orders_promptly_and_returns_on_shutdown() {
        let app = app(settings()).await;
        let (stop, shutdown) = watch::channel(false);
        let consumer = tokio::spawn(run_embedded(
            app.giftify.clone(),
            app.store.clone(),
            shutdown,
        ));
        let (_, order_id) = placed_order(&app).await;
        let fulfilled = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let order = app
                    .giftify
                    .ports
                    .orders
                    .order(&order_id)
                    .await
                    .unwrap()
                    .unwrap();
                if order.status.is_final() {
                    return order.status;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(fulfilled, OrderStatus::Fulfilled);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), consumer)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn the_loop_stops_when_its_shutdown_sender_is_gone() {
        let app = app(settings()).await;
        let (stop, shutdown) = watch::channel(false);
        drop(stop);
        tokio::time::timeout(
            Duration::from_secs(5),
            run_embedded(app.giftify.clone(), app.store.clone(), shutdown),
        )
        .await
        .unwrap();
    }
}
