//! The [`Inbox`] port on SQS ([`super::queue`]): what the worker loop receives and how it
//! settles each delivery. The fulfillment Lambda settles through it too.

use super::item::sdk_error;
use super::queue::SqsQueue;
use async_trait::async_trait;
use giftify_shared::Result;
use giftify_shared::inbox::Delivery;
use giftify_shared::ports::Inbox;

#[async_trait]
impl Inbox for SqsQueue {
    /// Long-polls for up to `wait` (whole seconds, at most SQS's 20).
    async fn receive(&self, max: usize, wait: std::time::Duration) -> Result<Vec<Delivery>> {
        let wait_seconds = i32::try_from(wait.as_secs().min(20)).unwrap_or(20);
        let max = i32::try_from(max.min(10)).unwrap_or(10);
        self.receive_from(&self.queue_url, max, wait_seconds, self.visibility_seconds)
            .await
    }

    /// A receipt that went stale (the message was delivered again) fails the delete in SQS;
    /// the newer delivery finds the order done, so it is only logged.
    async fn ack(&self, delivery: &Delivery) -> Result<()> {
        if let Err(error) = self.delete_from(&self.queue_url, &delivery.receipt).await {
            tracing::warn!(message_id = %delivery.message_id, %error, "delete failed; the message will be delivered again");
        }
        Ok(())
    }

    async fn retry_later(
        &self,
        delivery: &Delivery,
        reason: &str,
        delay: std::time::Duration,
    ) -> Result<()> {
        self.notes.record(&delivery.message_id, reason).await?;
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(&delivery.receipt)
            .visibility_timeout(i32::try_from(delay.as_secs()).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// Sends the body to the dead-letter queue (same group; the message id as deduplication
    /// id, so a repeated move within five minutes is sent once), notes why under the dead
    /// letter's own id, and deletes the original. Once the send is done the message is
    /// dead-lettered: a delete that fails (a stale receipt, or one the Lambda event source
    /// mapping deletes itself) is logged like a failed ack, and the original, should it come
    /// back, is dead-lettered again.
    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()> {
        let dead_id = self
            .send_body(
                &self.dead_letter_url,
                &delivery.body,
                &delivery.group_id,
                &delivery.message_id,
            )
            .await?;
        self.notes.record(&dead_id, reason).await?;
        if let Err(error) = self.delete_from(&self.queue_url, &delivery.receipt).await {
            tracing::warn!(message_id = %delivery.message_id, %error, "dead-lettered, but the original was not deleted; it will be dead-lettered again if it comes back");
        }
        Ok(())
    }
}
