//! The fulfillment Lambda's handler: an `SqsEvent` from the FIFO orders queue in, an
//! `SqsBatchResponse` out, with `ReportBatchItemFailures` semantics. The FIFO rule (after the
//! first failure in a message group, that message and every later one of its group fail) lives
//! in [`Giftify::handle_fifo_batch`], shared with the local SQS consumer.

use aws_lambda_events::event::sqs::SqsEvent;
use giftify_infra::metrics::MetricScope;
use giftify_shared::Giftify;
use giftify_shared::usecases::BatchItem;
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

/// Handles one SQS batch. A record without a message id cannot be reported failed, so it is
/// treated as handled only if it is handled; one without a group id joins the empty group.
pub async fn handle(giftify: &Giftify, metrics: &MetricScope, event: SqsEvent) -> BatchResponse {
    let batch: Vec<BatchItem> = event
        .records
        .into_iter()
        .filter_map(|record| {
            Some(BatchItem {
                message_id: record.message_id?,
                group_id: record
                    .attributes
                    .get("MessageGroupId")
                    .cloned()
                    .unwrap_or_default(),
                body: record.body.unwrap_or_default(),
            })
        })
        .collect();
    let outcome = giftify.handle_fifo_batch(&batch).await;
    let mut metrics = metrics.invocation();
    metrics.count("MessagesHandled", outcome.succeeded.len() as u64);
    metrics.count("MessagesFailed", outcome.failed.len() as u64);
    for (status, latency) in &outcome.completed {
        metrics.count(status_metric(*status), 1);
        metrics.milliseconds(
            "CreateToFinalLatency",
            latency.num_milliseconds().max(0) as u64,
        );
    }
    metrics.emit();
    BatchResponse {
        batch_item_failures: outcome
            .failed_ids()
            .map(|id| BatchItemFailure {
                item_identifier: id.to_string(),
            })
            .collect(),
    }
}

fn status_metric(status: giftify_shared::order::OrderStatus) -> &'static str {
    use giftify_shared::order::OrderStatus::*;
    match status {
        Fulfilled => "OrdersFulfilled",
        PartiallyFulfilled => "OrdersPartiallyFulfilled",
        Refunded => "OrdersRefunded",
        Cancelled => "OrdersCancelled",
        Pending | Processing => "OrdersUnfinished",
    }
}
