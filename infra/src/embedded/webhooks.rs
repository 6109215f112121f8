//! The embedded webhook dispatcher: it follows the feed of all events (every recorded event,
//! in order, from where it left off), opens each event's deliveries to the endpoints that
//! want it, and attempts the deliveries that are due, a batch at a time, concurrently. The
//! rules — who gets what, signing, retries, disabling — are the core's
//! ([`giftify_shared::usecases`]); this loop only decides when to look.
//!
//! Two processes on one database may both run it: opening a delivery is idempotent and an
//! attempt claims its delivery first, so each delivery is posted by one of them.

use crate::embedded::SqliteStore;
use crate::shutdown::Shutdown;
use async_trait::async_trait;
use giftify_shared::Giftify;
use giftify_shared::Result;
use giftify_shared::events::{Event, Feed, FeedCursor};
use giftify_shared::ports::EventPublisher;
use giftify_shared::usecases::error_chain;
use giftify_shared::webhooks::Outgoing;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Deliveries attempted at once.
const BATCH: u32 = 16;
/// Feed events read per pass.
const FEED_PAGE: u32 = 100;
/// How often the loop looks for deliveries that came due (retries, other processes' events).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The embedded backend's event publisher: the event is in the feed already (the core records
/// before it publishes), so publishing only wakes the dispatcher.
#[async_trait]
impl EventPublisher for SqliteStore {
    async fn publish(&self, _: &Event) -> Result<()> {
        self.wake_dispatcher();
        Ok(())
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pass {
    /// Feed events whose deliveries were opened.
    pub followed: usize,
    /// Deliveries posted and recorded.
    pub attempted: usize,
}

#[derive(Clone, Debug)]
pub struct WebhookDispatcher {
    giftify: Giftify,
    store: Arc<SqliteStore>,
}

impl WebhookDispatcher {
    pub fn new(giftify: Giftify, store: Arc<SqliteStore>) -> Self {
        WebhookDispatcher { giftify, store }
    }

    /// Dispatches until `shutdown` turns true; attempts in progress finish first.
    pub async fn run(&self, mut shutdown: Shutdown) {
        while !shutdown.is_requested() {
            match self.pass().await {
                Ok(Pass {
                    followed: 0,
                    attempted: 0,
                }) => {}
                Ok(_) => continue,
                Err(error) => tracing::warn!(
                    error = %error_chain(&error),
                    "dispatching webhooks failed; retrying"
                ),
            }
            tokio::select! {
                () = self.store.wait_for_deliveries(POLL_INTERVAL) => {}
                () = shutdown.requested() => {}
            }
        }
    }

    /// One pass: opens the deliveries of the events recorded since the last pass (up to a
    /// page), then attempts the deliveries due now (up to a batch).
    pub async fn pass(&self) -> Result<Pass> {
        let followed = self.follow_feed().await?;
        let due = self
            .giftify
            .ports
            .webhooks
            .due_deliveries(self.giftify.clock.now(), BATCH)
            .await?;
        let mut attempted = 0;
        let mut attempts = JoinSet::new();
        for delivery in due {
            let giftify = self.giftify.clone();
            attempts.spawn(async move { giftify.attempt_delivery(delivery).await });
        }
        while let Some(joined) = attempts.join_next().await {
            match joined {
                // Counted only when posted: a lost claim or a failure to record waits for the
                // next poll rather than spinning.
                Ok(Ok(Some(_))) => attempted += 1,
                Ok(Ok(None)) => {}
                // The claim's lease runs out and the delivery is attempted again.
                Ok(Err(error)) => {
                    tracing::warn!(error = %error_chain(&error), "a webhook attempt failed to record")
                }
                Err(error) => tracing::error!(error = %error, "a webhook attempt panicked"),
            }
        }
        Ok(Pass {
            followed,
            attempted,
        })
    }

    async fn follow_feed(&self) -> Result<usize> {
        let position = self.store.dispatched_position().await?;
        let after = FeedCursor {
            all: true,
            position,
        };
        let page = self
            .giftify
            .ports
            .feed
            .feed(&Feed::All, after, FEED_PAGE)
            .await?;
        for event in &page.events {
            self.giftify
                .open_deliveries(&Outgoing::from(event), None)
                .await?;
        }
        if page.next.position > position {
            self.store.advance_dispatched(page.next.position).await?;
        }
        Ok(page.events.len())
    }
}
