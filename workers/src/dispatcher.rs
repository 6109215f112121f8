//! The webhook dispatcher Lambda's glue: a batch from the webhook queue in, a partial batch
//! response out. The queue carries two kinds of message, both JSON: an event, as the events
//! topic published it (raw delivery), and a wake-up naming one delivery
//! ([`giftify_infra::aws::webhooks::WakeUp`]) — a retry coming due, an admin's retry or
//! recover. Whom to send to, signing, retries and disabling are the core's
//! ([`Giftify::dispatch`]); a message whose handling failed is reported, and SQS delivers it
//! again after its visibility timeout (a dispatch is safe to repeat).

use crate::fulfillment::{BatchItemFailure, BatchResponse};
use aws_lambda_events::event::sqs::SqsEvent;
use giftify_infra::aws::webhooks::WakeUp;
use giftify_shared::events::Event;
use giftify_shared::usecases::{Dispatched, error_chain};
use giftify_shared::webhooks::Outgoing;
use giftify_shared::{Error, Giftify, Result};

/// Handles one message.
pub async fn dispatch_message(giftify: &Giftify, body: &str) -> Result<Dispatched> {
    if let Ok(wake) = serde_json::from_str::<WakeUp>(body) {
        return giftify
            .dispatch_delivery(&wake.endpoint_id, &wake.delivery_id)
            .await;
    }
    let event = Event::from_json(body)
        .map_err(|_| Error::validation("body", "neither an event nor a wake-up"))?;
    giftify.dispatch(&Outgoing::from(&event)).await
}

/// Handles one SQS batch, the messages one after another.
pub async fn handle(giftify: &Giftify, event: SqsEvent) -> BatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let Some(message_id) = record.message_id else {
            continue;
        };
        match dispatch_message(giftify, record.body.as_deref().unwrap_or_default()).await {
            Ok(done) => {
                tracing::info!(%message_id, attempted = done.attempted, delivered = done.delivered, "webhook message dispatched")
            }
            // Nothing will ever read it: dropped, with a trace.
            Err(error @ Error::Validation { .. }) => {
                tracing::error!(%message_id, error = %error, "an unreadable webhook message was dropped");
            }
            Err(error) => {
                tracing::warn!(%message_id, error = %error_chain(&error), "dispatching failed; the message comes back");
                failures.push(BatchItemFailure {
                    item_identifier: message_id,
                });
            }
        }
    }
    BatchResponse {
        batch_item_failures: failures,
    }
}
