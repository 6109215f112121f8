//! The [`Inbox`] port on the embedded queue ([`super::queue`]): what the worker loop receives
//! and how it settles each delivery.

use super::SqliteStore;
use async_trait::async_trait;
use giftify_shared::Result;
use giftify_shared::inbox::Delivery;
use giftify_shared::ports::Inbox;
use std::time::Duration;

/// The port over the inherent queue operations: a stale receipt is no error, the newer
/// delivery settles the message.
#[async_trait]
impl Inbox for SqliteStore {
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        let batch = self.receive_batch(max).await?;
        if !batch.messages.is_empty() || wait.is_zero() {
            return Ok(batch.messages);
        }
        self.wait_for_queue_work(wait).await;
        Ok(self.receive_batch(max).await?.messages)
    }

    async fn ack(&self, delivery: &Delivery) -> Result<()> {
        if !SqliteStore::ack(self, delivery).await? {
            tracing::debug!(message_id = %delivery.message_id, "the receipt went stale; the newer delivery finds the order done");
        }
        Ok(())
    }

    async fn retry_later(&self, delivery: &Delivery, reason: &str, delay: Duration) -> Result<()> {
        self.release(delivery, reason, delay).await.map(|_| ())
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()> {
        self.dead_letter_now(delivery, reason).await.map(|_| ())
    }
}
