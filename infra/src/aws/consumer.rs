//! The local AWS-mode worker: long-polls the SQS FIFO queue and hands each batch to the same
//! FIFO batch handler the fulfillment Lambda calls. Succeeded messages are deleted; failed ones
//! are left to reappear after their visibility timeout, and SQS's redrive policy moves them to
//! the dead-letter queue after max receives.

use super::sqs::SqsQueue;
use giftify_shared::Giftify;
use giftify_shared::usecases::{BatchItem, BatchOutcome};
use std::time::Duration;
use tokio::sync::watch;

/// Long-poll wait per receive: SQS's maximum, so an idle worker costs one request per 20 s.
const WAIT_SECONDS: i32 = 20;

/// Receives and handles one batch; returns what happened to each message.
pub async fn poll_once(
    giftify: &Giftify,
    queue: &SqsQueue,
    wait_seconds: i32,
    visibility_seconds: i32,
) -> giftify_shared::Result<BatchOutcome> {
    let messages = queue.receive(10, wait_seconds, visibility_seconds).await?;
    let batch: Vec<BatchItem> = messages
        .iter()
        .map(|m| BatchItem {
            message_id: m.message_id.clone(),
            group_id: m.group_id.clone(),
            body: m.body.clone(),
        })
        .collect();
    let outcome = giftify.handle_fifo_batch(&batch).await;
    for message in messages
        .iter()
        .filter(|m| outcome.succeeded.contains(&m.message_id))
    {
        if let Err(error) = queue.delete(message).await {
            // Not deleted means redelivered: the handler is idempotent, so this is only waste.
            tracing::warn!(message_id = %message.message_id, %error, "delete failed; the message will be redelivered");
        }
    }
    Ok(outcome)
}

/// Runs until `shutdown` turns true; the batch in hand finishes first.
pub async fn run(
    giftify: Giftify,
    queue: SqsQueue,
    visibility_seconds: i32,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let poll = poll_once(&giftify, &queue, WAIT_SECONDS, visibility_seconds);
        tokio::select! {
            result = poll => if let Err(error) = result {
                tracing::warn!(%error, "receive failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            },
            () = crate::shutdown::requested(&mut shutdown) => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
