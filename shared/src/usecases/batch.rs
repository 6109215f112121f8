//! The batch rule, written once for every consumer of the orders queue (the worker loop on
//! either backend, and the fulfillment Lambda): messages are handled in order within their
//! message group; after the first failure in a group, every later message
//! of that group is tried again later, in order. A failure worth retrying is delivered again
//! after the [`RetryPolicy`] backoff; one no retry can cure is dead-lettered at once.

use super::{Giftify, MessageOutcome};
use crate::inbox::{Delivery, RetryPolicy, Settlement};
use crate::order::{OrderMessage, OrderStatus};
use std::borrow::Borrow;

/// What the core decided for one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    pub delivery: Delivery,
    pub settlement: Settlement,
    /// What handling did, when it succeeded.
    pub outcome: Option<MessageOutcome>,
}

/// What the core decided for a batch, in the batch's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub handled: Vec<Handled>,
}

/// One business metric of a batch: a name and a count or milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Metric {
    Count(&'static str, u64),
    Milliseconds(&'static str, u64),
}

impl BatchOutcome {
    /// Ids of the messages that were handled.
    pub fn succeeded(&self) -> impl Iterator<Item = &str> {
        self.handled
            .iter()
            .filter(|h| h.settlement.is_ack())
            .map(|h| h.delivery.message_id.as_str())
    }

    /// Ids of the messages that failed, with why.
    pub fn failed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.handled.iter().filter_map(|h| {
            h.settlement
                .reason()
                .map(|reason| (h.delivery.message_id.as_str(), reason))
        })
    }

    /// Final status and create→final latency of each order this batch completed.
    pub fn completed(&self) -> impl Iterator<Item = (OrderStatus, chrono::Duration)> + '_ {
        self.handled.iter().filter_map(|h| match h.outcome {
            Some(MessageOutcome::Completed { status, latency }) => Some((status, latency)),
            _ => None,
        })
    }

    /// The business metrics of the batch, the same wherever it was handled.
    pub fn metrics(&self) -> Vec<Metric> {
        let handled = self.succeeded().count() as u64;
        let dead = self
            .handled
            .iter()
            .filter(|h| matches!(h.settlement, Settlement::DeadLetter { .. }))
            .count() as u64;
        let mut metrics = vec![
            Metric::Count("MessagesHandled", handled),
            Metric::Count("MessagesFailed", self.handled.len() as u64 - handled),
            Metric::Count("MessagesDeadLettered", dead),
        ];
        for (status, latency) in self.completed() {
            metrics.push(Metric::Count(status_metric(status), 1));
            metrics.push(Metric::Milliseconds(
                "CreateToFinalLatency",
                latency.num_milliseconds().max(0) as u64,
            ));
        }
        metrics
    }
}

fn status_metric(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Fulfilled => "OrdersFulfilled",
        OrderStatus::PartiallyFulfilled => "OrdersPartiallyFulfilled",
        OrderStatus::Refunded => "OrdersRefunded",
        OrderStatus::Cancelled => "OrdersCancelled",
        OrderStatus::Pending | OrderStatus::Processing => "OrdersUnfinished",
    }
}

impl Giftify {
    /// Decides a batch under the FIFO rule: each group in order, one group after another (the
    /// worker loop runs groups side by side itself, one task per group).
    pub async fn handle_batch(&self, batch: &[Delivery]) -> BatchOutcome {
        let groups = message_groups(batch);
        let mut by_id: Vec<Handled> = Vec::with_capacity(batch.len());
        for group in &groups {
            by_id.extend(self.handle_group(group).await);
        }
        // Back in the batch's order, which is what a caller reports in.
        let handled = batch
            .iter()
            .filter_map(|delivery| {
                let index = by_id
                    .iter()
                    .position(|h| h.delivery.message_id == delivery.message_id)?;
                Some(by_id.swap_remove(index))
            })
            .collect();
        BatchOutcome { handled }
    }

    /// One group's deliveries, in order; after the first failure the rest are tried again.
    pub async fn handle_group(&self, group: &[&Delivery]) -> Vec<Handled> {
        let retry = self.rules.message_retry;
        let mut handled = Vec::with_capacity(group.len());
        let mut failed = false;
        for &delivery in group {
            if failed {
                handled.push(Handled {
                    delivery: delivery.clone(),
                    settlement: Settlement::RetryLater {
                        reason: "an earlier message of its group failed".into(),
                        delay: retry.delay(1),
                    },
                    outcome: None,
                });
                continue;
            }
            let (settlement, outcome) = self.handle_delivery(delivery, retry).await;
            failed = !settlement.is_ack();
            handled.push(Handled {
                delivery: delivery.clone(),
                settlement,
                outcome,
            });
        }
        handled
    }

    #[tracing::instrument(skip_all, fields(message_id = %delivery.message_id, receive_count = delivery.receive_count))]
    async fn handle_delivery(
        &self,
        delivery: &Delivery,
        retry: RetryPolicy,
    ) -> (Settlement, Option<MessageOutcome>) {
        let message = match serde_json::from_str::<OrderMessage>(&delivery.body) {
            Ok(message) => message,
            Err(error) => {
                let reason = format!("malformed message body: {error}");
                tracing::error!(%reason, "message dead-lettered");
                return (Settlement::DeadLetter { reason }, None);
            }
        };
        match self.handle_order_message(&message).await {
            Ok(outcome) => (Settlement::Ack, Some(outcome)),
            Err(error) => {
                let reason = error_chain(&error);
                let settlement = retry.settle_failure(&error, reason, delivery.receive_count);
                match &settlement {
                    Settlement::DeadLetter { reason } => {
                        tracing::error!(order_id = %message.order_id, %reason, "message dead-lettered: no retry can cure it");
                    }
                    Settlement::RetryLater { reason, delay } => {
                        tracing::warn!(order_id = %message.order_id, %reason, retry_in_ms = delay.as_millis() as u64, "message failed; it will be delivered again");
                    }
                    Settlement::Ack => {}
                }
                (settlement, None)
            }
        }
    }
}

/// Deliveries grouped by message group, each group in delivery order, groups in the order
/// they first appear: the unit the FIFO rule works on.
pub fn message_groups<D: Borrow<Delivery>>(deliveries: impl IntoIterator<Item = D>) -> Vec<Vec<D>> {
    let mut groups: Vec<Vec<D>> = Vec::new();
    for delivery in deliveries {
        let group_id = &delivery.borrow().group_id;
        match groups
            .iter_mut()
            .find(|group| group[0].borrow().group_id == *group_id)
        {
            Some(group) => group.push(delivery),
            None => groups.push(vec![delivery]),
        }
    }
    groups
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
