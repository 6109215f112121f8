//! The one worker loop: receives order messages from an [`Inbox`] — the SQLite queue or SQS —
//! hands them to the core's batch rule ([`Giftify::handle_group`]) and settles each delivery
//! as the core decided. `giftify serve` and `giftify worker` run it on both backends; the
//! fulfillment Lambda, whose receive and delete are the event source mapping's, settles the
//! same decisions in its own glue.
//!
//! The deliveries in hand are grouped by message group; each group runs as its own task, in
//! order, and up to `max_in_flight` deliveries are in hand at once. A new receive is made as
//! soon as a slot frees up, so a slow order never holds up the others.

use giftify_shared::Giftify;
use giftify_shared::inbox::{Delivery, Settlement};
use giftify_shared::ports::Inbox;
use giftify_shared::usecases::{Handled, error_chain, message_groups};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

use crate::shutdown::Shutdown;

/// How a worker loop receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Deliveries in hand at once.
    pub max_in_flight: usize,
    /// How long one receive waits for work when there is none.
    pub wait: Duration,
}

impl WorkerSettings {
    /// The embedded queue, `in_flight` deliveries at once (at least one): work sent in this
    /// process wakes the receive at once; work sent by another process is seen within `wait`.
    pub const fn embedded(in_flight: usize) -> WorkerSettings {
        WorkerSettings {
            max_in_flight: if in_flight == 0 { 1 } else { in_flight },
            wait: Duration::from_millis(200),
        }
    }

    /// SQS: batches of up to ten, long polls of SQS's maximum, so an idle worker costs one
    /// request per 20 s.
    pub const SQS: WorkerSettings = WorkerSettings {
        max_in_flight: 10,
        wait: Duration::from_secs(20),
    };
}

/// Most deliveries one receive asks for. A receive is one write on SQLite, updating every
/// message it claims: many free slots are filled by several short receives, back to back,
/// rather than one that holds the write lock for long.
const RECEIVE_AT_MOST: usize = 64;

/// What [`drain`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Deliveries handled and acked.
    pub handled: usize,
    /// Deliveries given back to be tried again.
    pub retried: usize,
    /// Deliveries the core sent to the dead-letter queue.
    pub dead_lettered: usize,
}

/// Carries out the core's decision for one delivery. A settlement that fails is logged: the
/// message then reappears when its visibility timeout ends, and handling is idempotent.
pub async fn settle(inbox: &dyn Inbox, handled: &Handled) {
    let delivery = &handled.delivery;
    let result = match &handled.settlement {
        Settlement::Ack => inbox.ack(delivery).await,
        Settlement::RetryLater { reason, delay } => {
            inbox.retry_later(delivery, reason, *delay).await
        }
        Settlement::DeadLetter { reason } => inbox.dead_letter(delivery, reason).await,
    };
    if let Err(error) = result {
        tracing::warn!(
            message_id = %delivery.message_id,
            error = %error_chain(&error),
            "settling a delivery failed; the message reappears when its visibility timeout ends"
        );
    }
}

/// Decides and settles one group's deliveries, in order.
async fn handle_group(giftify: &Giftify, inbox: &dyn Inbox, group: &[Delivery]) -> Vec<Handled> {
    let group: Vec<&Delivery> = group.iter().collect();
    let handled = giftify.handle_group(&group).await;
    for one in &handled {
        settle(inbox, one).await;
    }
    handled
}

/// Runs until `shutdown`, then stops receiving, lets the deliveries in hand finish, and
/// returns.
pub async fn run(
    giftify: Giftify,
    inbox: Arc<dyn Inbox>,
    settings: WorkerSettings,
    mut shutdown: Shutdown,
) {
    let mut running = InHand::default();
    while !shutdown.is_requested() {
        running.reap_finished();
        let free = settings.max_in_flight.saturating_sub(running.deliveries);
        if free == 0 {
            tokio::select! {
                () = running.one_finished() => {}
                () = shutdown.requested() => {}
            }
            continue;
        }
        // A receive is never dropped for a task that finished meanwhile: on SQLite its claim of
        // the messages is written even if no one waits for the answer, and on SQS a dropped
        // long poll can leave messages in flight, so either way they would sit out a
        // visibility timeout. Only a stop interrupts it (once, at shutdown).
        let received = tokio::select! {
            received = inbox.receive(free.min(RECEIVE_AT_MOST), settings.wait) => received,
            () = shutdown.requested() => break,
        };
        match received {
            Ok(deliveries) => {
                for group in message_groups(deliveries) {
                    let (giftify, inbox) = (giftify.clone(), inbox.clone());
                    let size = group.len();
                    running.spawn(size, async move {
                        handle_group(&giftify, inbox.as_ref(), &group).await;
                    });
                }
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "receiving from the queue failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = shutdown.requested() => {}
                }
            }
        }
    }
    while !running.is_empty() {
        running.one_finished().await;
    }
}

/// The group tasks running, and how many deliveries they hold.
#[derive(Default)]
struct InHand {
    tasks: JoinSet<()>,
    sizes: HashMap<tokio::task::Id, usize>,
    deliveries: usize,
}

impl InHand {
    fn spawn(&mut self, size: usize, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let id = self.tasks.spawn(task).id();
        self.sizes.insert(id, size);
        self.deliveries += size;
    }

    fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits for one task to finish and frees its deliveries' slots.
    async fn one_finished(&mut self) {
        if let Some(joined) = self.tasks.join_next_with_id().await {
            self.free(joined);
        }
    }

    /// Frees the slots of every task that has finished, without waiting.
    fn reap_finished(&mut self) {
        while let Some(joined) = self.tasks.try_join_next_with_id() {
            self.free(joined);
        }
    }

    fn free(&mut self, joined: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match joined {
            Ok((id, ())) => id,
            Err(error) => {
                // Its deliveries stay invisible until their timeout and are then delivered
                // again.
                tracing::error!(error = %error, "a message handler panicked");
                error.id()
            }
        };
        self.deliveries -= self.sizes.remove(&id).unwrap_or(0);
    }
}

/// How often the reconciler runs inside the worker.
const RECONCILE_EVERY: Duration = Duration::from_secs(30);

/// Runs the reconciler every [`RECONCILE_EVERY`] until `shutdown`: the worker side's other
/// loop, beside the message loop (on AWS it is its own scheduled Lambda).
pub async fn reconcile_periodically(giftify: Giftify, mut shutdown: Shutdown) {
    let mut ticker = tokio::time::interval(RECONCILE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => match giftify.reconcile().await {
                Ok(report) if report != Default::default() => tracing::info!(?report, "reconciled"),
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "reconcile pass failed"),
            },
            () = shutdown.requested() => return,
        }
    }
}

/// Handles every message deliverable now until none is left, through the same decisions and
/// settlements as [`run`]. Messages given back with a delay are not deliverable yet and stay
/// queued.
pub async fn drain(giftify: &Giftify, inbox: &dyn Inbox) -> giftify_shared::Result<DrainReport> {
    let mut report = DrainReport::default();
    loop {
        let deliveries = inbox.receive(10, Duration::ZERO).await?;
        if deliveries.is_empty() {
            return Ok(report);
        }
        for group in message_groups(deliveries) {
            for handled in handle_group(giftify, inbox, &group).await {
                match handled.settlement {
                    Settlement::Ack => report.handled += 1,
                    Settlement::RetryLater { .. } => report.retried += 1,
                    Settlement::DeadLetter { .. } => report.dead_lettered += 1,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QueueSettings;
    use crate::embedded::SqliteStore;
    use crate::embedded::StoreOptions;
    use giftify_shared::events::{Feed, FeedCursor};
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
        let giftify = Giftify::new(
            Ports::from_backend(
                store.clone(),
                store.clone(),
                Some(Arc::new(crate::webhook_sender::HttpSender::new().unwrap())),
            ),
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
        StoreOptions::new(QueueSettings {
            max_receives: 3,
            ..QueueSettings::default()
        })
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
        app.giftify.top_up(&user.id, 1_000_000, None).await.unwrap();
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
            )
            .await
            .unwrap();
        (user.id, order.id)
    }

    #[tokio::test]
    async fn drain_fulfils_a_placed_order_and_logs_its_event() {
        let app = app(settings()).await;
        let (_, order_id) = placed_order(&app).await;
        let report = drain(&app.giftify, app.store.as_ref()).await.unwrap();
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
        let feed = app
            .giftify
            .ports
            .feed
            .feed(&Feed::All, FeedCursor::start(&Feed::All), 10)
            .await
            .unwrap();
        assert_eq!(feed.events.len(), 1);
        assert_eq!(feed.events[0].event_type(), "order.fulfilled");
        assert_eq!(app.store.depths().await.unwrap(), Default::default());
    }

    #[tokio::test]
    async fn a_message_no_retry_can_cure_is_dead_lettered_at_once() {
        let app = app(settings()).await;
        let poison = OrderMessage {
            order_id: OrderId::generate(),
            user_id: UserId::generate(),
        };
        app.store.enqueue(&poison).await.unwrap();
        let report = drain(&app.giftify, app.store.as_ref()).await.unwrap();
        assert_eq!(
            report,
            DrainReport {
                handled: 0,
                retried: 0,
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
        let (stop, shutdown) = Shutdown::channel();
        let consumer = tokio::spawn(run(
            app.giftify.clone(),
            app.store.clone(),
            WorkerSettings::embedded(8),
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
        let (stop, shutdown) = Shutdown::channel();
        drop(stop);
        tokio::time::timeout(
            Duration::from_secs(5),
            run(
                app.giftify.clone(),
                app.store.clone(),
                WorkerSettings::embedded(8),
                shutdown,
            ),
        )
        .await
        .unwrap();
    }

    #[test]
    fn deliveries_are_grouped_by_message_group_in_receive_order() {
        let delivery = |id: &str, group: &str| Delivery {
            message_id: id.into(),
            receipt: format!("r-{id}"),
            group_id: group.into(),
            receive_count: 1,
            body: String::new(),
        };
        let grouped = message_groups(vec![
            delivery("a1", "a"),
            delivery("b1", "b"),
            delivery("a2", "a"),
        ]);
        let ids: Vec<Vec<&str>> = grouped
            .iter()
            .map(|g| g.iter().map(|d| d.message_id.as_str()).collect())
            .collect();
        assert_eq!(ids, vec![vec!["a1", "a2"], vec!["b1"]]);
    }
}
