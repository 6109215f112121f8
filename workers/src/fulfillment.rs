//! The fulfillment Lambda's glue: an `SqsEvent` from the FIFO orders queue in, an
//! `SqsBatchResponse` out, with `ReportBatchItemFailures` semantics. Nothing is decided here:
//! the batch rule is the core's [`Giftify::handle_batch`], the settlements are carried out
//! through the [`Inbox`] port, and the business metrics are the outcome's.
//!
//! The event source mapping receives and deletes: a handled message is simply not reported;
//! one to try again is reported (after the port noted why and set its backoff); one the core
//! dead-letters is moved by the port and then not reported, so the mapping deletes it — unless
//! the move failed, when it is reported and the queue's redrive policy catches it later.

use aws_lambda_events::event::sqs::SqsEvent;
use giftify_infra::metrics::MetricScope;
use giftify_shared::Giftify;
use giftify_shared::inbox::{Delivery, Settlement};
use giftify_shared::ports::Inbox;
use giftify_shared::usecases::{Metric, error_chain};
use serde::Serialize;

/// The partial batch response: only failed message ids are listed; everything else is deleted
/// by the event source mapping.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    pub item_identifier: String,
}

/// The deliveries of an event. A record without a message id cannot be reported failed, so
/// it is left out (the mapping deletes it only if reported handled, which it is not: it is
/// redelivered); one without a group id joins the empty group.
pub fn deliveries(event: SqsEvent) -> Vec<Delivery> {
    event
        .records
        .into_iter()
        .filter_map(|record| {
            let attribute = |name: &str| record.attributes.get(name).cloned();
            Some(Delivery {
                receive_count: attribute("ApproximateReceiveCount")
                    .and_then(|count| count.parse().ok())
                    .unwrap_or(1),
                group_id: attribute("MessageGroupId").unwrap_or_default(),
                message_id: record.message_id?,
                receipt: record.receipt_handle.unwrap_or_default(),
                body: record.body.unwrap_or_default(),
            })
        })
        .collect()
}

/// Handles one SQS batch.
pub async fn handle(giftify: &Giftify, metrics: &MetricScope, event: SqsEvent) -> BatchResponse {
    let outcome = giftify.handle_batch(&deliveries(event)).await;
    let inbox: &dyn Inbox = giftify.ports.inbox.as_ref();
    let mut failures = Vec::new();
    for handled in &outcome.handled {
        let delivery = &handled.delivery;
        let reported = match &handled.settlement {
            Settlement::Ack => false,
            Settlement::RetryLater { reason, delay } => {
                if let Err(error) = inbox.retry_later(delivery, reason, *delay).await {
                    tracing::warn!(message_id = %delivery.message_id, error = %error_chain(&error), "could not note the failure or set the backoff; the queue's visibility timeout applies");
                }
                true
            }
            Settlement::DeadLetter { reason } => match inbox.dead_letter(delivery, reason).await {
                Ok(()) => false,
                Err(error) => {
                    tracing::warn!(message_id = %delivery.message_id, error = %error_chain(&error), "could not dead-letter; reported failed, the redrive policy moves it after its receives");
                    true
                }
            },
        };
        if reported {
            failures.push(BatchItemFailure {
                item_identifier: delivery.message_id.clone(),
            });
        }
    }
    let mut emitted = metrics.invocation();
    for metric in outcome.metrics() {
        match metric {
            Metric::Count(name, value) => emitted.count(name, value),
            Metric::Milliseconds(name, value) => emitted.milliseconds(name, value),
        }
    }
    emitted.emit();
    BatchResponse {
        batch_item_failures: failures,
    }
}
