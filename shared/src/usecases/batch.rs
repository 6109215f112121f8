//! The FIFO batch rule, shared by the fulfillment Lambda and the local SQS consumer: messages
//! are handled in order within their message group; after the first failure in a group, that
//! message and every later one of the group are reported failed, so SQS redelivers them in
//! order. Other groups carry on.

use super::{Giftify, MessageOutcome};
use crate::order::{OrderMessage, OrderStatus};
use std::collections::HashSet;

/// One message of a batch, as the queue delivered it.
#[derive(Clone, Debug)]
pub struct BatchItem {
    pub message_id: String,
    pub group_id: String,
    pub body: String,
}

/// Which messages to delete and which to leave for redelivery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub succeeded: Vec<String>,
    /// Final status and create→final latency of each order this batch completed.
    pub completed: Vec<(OrderStatus, chrono::Duration)>,
    /// Message id and why it failed.
    pub failed: Vec<(String, String)>,
}

impl BatchOutcome {
    pub fn failed_ids(&self) -> impl Iterator<Item = &str> {
        self.failed.iter().map(|(id, _)| id.as_str())
    }
}

impl Giftify {
    /// Handles a batch under the FIFO rule. A body that does not parse is a poison message: it
    /// fails (and so reaches the dead-letter queue after its receives), it never panics.
    pub async fn handle_fifo_batch(&self, batch: &[BatchItem]) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        let mut failed_groups: HashSet<&str> = HashSet::new();
        for item in batch {
            if failed_groups.contains(item.group_id.as_str()) {
                outcome.failed.push((
                    item.message_id.clone(),
                    "an earlier message of its group failed".into(),
                ));
                continue;
            }
            let result = match serde_json::from_str::<OrderMessage>(&item.body) {
                Ok(message) => self
                    .handle_order_message(&message)
                    .await
                    .map_err(|e| error_chain(&e)),
                Err(e) => Err(format!("malformed message body: {e}")),
            };
            match result {
                Ok(handled) => {
                    if let MessageOutcome::Completed { status, latency } = handled {
                        outcome.completed.push((status, latency));
                    }
                    outcome.succeeded.push(item.message_id.clone());
                }
                Err(reason) => {
                    tracing::error!(message_id = %item.message_id, group = %item.group_id, %reason, "message failed");
                    if let Err(error) = self
                        .ports
                        .queue_ops
                        .record_failure(&item.message_id, &reason)
                        .await
                    {
                        tracing::warn!(message_id = %item.message_id, %error, "could not note the failure");
                    }
                    failed_groups.insert(&item.group_id);
                    outcome.failed.push((item.message_id.clone(), reason));
                }
            }
        }
        outcome
    }
}

/// An error with its causes, for logs and dead-letter notes.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
