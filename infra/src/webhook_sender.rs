//! The webhook sender of both backends: one signed POST per attempt, over one HTTP client
//! built once per process.
//!
//! Each POST carries the event's JSON exactly as stored, with `Giftify-Event-Id`,
//! `Giftify-Event-Type`, `Giftify-Delivery-Id` and `Giftify-Signature` (see
//! [`giftify_shared::webhooks`]). Redirects are not followed: one could carry the signed event
//! somewhere nobody registered.

use async_trait::async_trait;
use giftify_shared::ports::{PostOutcome, SignedPost, WebhookSender};
use giftify_shared::usecases::error_chain;
use std::time::{Duration, Instant};

/// The event's stable id, for subscribers to drop redeliveries.
pub const EVENT_ID_HEADER: &str = "Giftify-Event-Id";
pub const EVENT_TYPE_HEADER: &str = "Giftify-Event-Type";
/// The delivery's id, as `GET /webhooks/{id}/deliveries` lists it.
pub const DELIVERY_ID_HEADER: &str = "Giftify-Delivery-Id";
pub const SIGNATURE_HEADER: &str = "Giftify-Signature";
/// How long one POST may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct HttpSender {
    client: reqwest::Client,
}

impl HttpSender {
    /// # Errors
    /// When the TLS backend cannot be set up.
    pub fn new() -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Giftify-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpSender { client })
    }
}

#[async_trait]
impl WebhookSender for HttpSender {
    async fn post(&self, post: &SignedPost) -> PostOutcome {
        let started = Instant::now();
        let answer = self
            .client
            .post(&post.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, &post.event_id)
            .header(EVENT_TYPE_HEADER, &post.event_type)
            .header(DELIVERY_ID_HEADER, post.delivery_id.as_str())
            .header(SIGNATURE_HEADER, &post.signature)
            .body(post.body.clone())
            .send()
            .await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match answer {
            Ok(response) => PostOutcome {
                http_status: Some(response.status().as_u16()),
                latency_ms,
                error: None,
            },
            Err(error) => PostOutcome {
                http_status: None,
                latency_ms,
                // The URL may carry a subscriber's token: keep it out of the log.
                error: Some(error_chain(&error.without_url())),
            },
        }
    }
}
