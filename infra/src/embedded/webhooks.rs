//! Events for the embedded stack: an event log in the database and signed webhook
//! deliveries (DESIGN §6).
//!
//! [`WebhookPublisher::publish`] only writes: the event and one delivery row per configured URL,
//! in one transaction, and answers once that is durable. [`WebhookPublisher::run_delivery`]
//! posts due deliveries in the background and retries failures with exponential backoff, so a
//! slow or failing subscriber never blocks or undoes a fulfillment.
//!
//! Each POST carries the event's JSON exactly as logged, with
//! `Giftify-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the
//! timestamp lets a subscriber refuse replays, and signing the raw bytes spares it any JSON
//! canonicalisation.

use crate::embedded::{DueDelivery, SqliteStore};
use crate::shutdown::Shutdown;
use async_trait::async_trait;
use giftify_shared::events::Event;
use giftify_shared::ports::EventPublisher;
use giftify_shared::usecases::error_chain;
use giftify_shared::{Error, Result};
use hmac::{Hmac, Mac};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// The event's stable id, for subscribers to drop redeliveries.
pub const EVENT_ID_HEADER: &str = "Giftify-Event-Id";
/// `order.fulfilled`, `order.partially_fulfilled`, `order.refunded`, `order.cancelled`,
/// `gift_card.redeemed` or `gift_card.returned`.
pub const EVENT_TYPE_HEADER: &str = "Giftify-Event-Type";
/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, see [`signature`].
pub const SIGNATURE_HEADER: &str = "Giftify-Signature";

/// How long one POST may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per delivery before it is given up (about seven hours of retries).
pub const MAX_ATTEMPTS: u32 = 15;
/// The wait after the first failure; it doubles per attempt up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(10);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// Deliveries attempted at once.
const BATCH: usize = 16;
/// How long a claimed delivery stays hidden from other delivery loops; well above the request
/// timeout, so only a crashed attempt is ever taken over.
const CLAIM_LEASE: Duration = Duration::from_secs(60);
/// How often the loop looks for deliveries that came due (retries, other processes' events).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

type HmacSha256 = Hmac<Sha256>;

/// The `Giftify-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> Result<String> {
    let mut mac = HmacSha256::new_from_slice(secret)
        .map_err(|_| Error::internal("the webhook secret cannot key HMAC-SHA256"))?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// Logs events and delivers them to the configured webhook URLs.
pub struct WebhookPublisher {
    store: Arc<SqliteStore>,
    urls: Vec<String>,
    delivery: Option<Delivery>,
}

/// What posting needs: present only when there are URLs, a secret and an HTTP client.
#[derive(Clone)]
struct Delivery {
    client: reqwest::Client,
    secret: SecretString,
}

impl std::fmt::Debug for WebhookPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookPublisher")
            .field("urls", &self.urls.len())
            .field("delivering", &self.delivery.is_some())
            .finish_non_exhaustive()
    }
}

impl WebhookPublisher {
    /// Events are always logged. They are also delivered to `urls` when a `secret` signs them:
    /// unsigned webhooks are never sent (the configuration refuses URLs without a secret; this
    /// is the last guard).
    pub fn new(store: Arc<SqliteStore>, urls: Vec<String>, secret: Option<SecretString>) -> Self {
        let delivery = match (urls.is_empty(), secret) {
            (true, _) => None,
            (false, None) => {
                tracing::error!(
                    "webhook URLs are configured without a secret; events are only logged"
                );
                None
            }
            (false, Some(secret)) => match reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(REQUEST_TIMEOUT)
                // A redirect could carry the signed event somewhere nobody configured.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("Giftify-Webhooks/", env!("CARGO_PKG_VERSION")))
                .build()
            {
                Ok(client) => Some(Delivery { client, secret }),
                Err(error) => {
                    tracing::error!(error = %error_chain(&error), "cannot build the webhook HTTP client; events are only logged");
                    None
                }
            },
        };
        let urls = if delivery.is_some() { urls } else { Vec::new() };
        WebhookPublisher {
            store,
            urls,
            delivery,
        }
    }

    /// Posts due deliveries until `shutdown` turns true; attempts in progress finish first.
    pub async fn run_delivery(&self, mut shutdown: Shutdown) {
        if self.delivery.is_none() {
            shutdown.requested().await;
            return;
        }
        while !shutdown.is_requested() {
            match self.deliver_due().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(error) => tracing::warn!(
                    error = %error_chain(&error),
                    "claiming webhook deliveries failed; retrying"
                ),
            }
            tokio::select! {
                () = self.store.wait_for_deliveries(POLL_INTERVAL) => {}
                () = shutdown.requested() => {}
            }
        }
    }

    /// One pass: attempts every delivery due now (up to a batch) and records the results;
    /// returns how many it attempted.
    pub async fn deliver_due(&self) -> Result<usize> {
        let Some(delivery) = &self.delivery else {
            return Ok(0);
        };
        let due = self.store.claim_due_deliveries(BATCH, CLAIM_LEASE).await?;
        let attempted = due.len();
        let mut attempts = JoinSet::new();
        for item in due {
            let (delivery, store) = (delivery.clone(), self.store.clone());
            attempts.spawn(async move {
                let outcome = delivery.post(&item).await;
                record(&store, &item, outcome).await;
            });
        }
        while let Some(joined) = attempts.join_next().await {
            if let Err(error) = joined {
                // The lease expires and the delivery is attempted again.
                tracing::error!(error = %error, "a webhook attempt panicked");
            }
        }
        Ok(attempted)
    }
}

impl Delivery {
    async fn post(&self, item: &DueDelivery) -> std::result::Result<(), String> {
        // Wall time, not the store's clock: the receiver checks it against its own wall clock.
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signature(
            self.secret.expose_secret().as_bytes(),
            timestamp,
            item.body.as_bytes(),
        )
        .map_err(|e| error_chain(&e))?;
        let response = self
            .client
            .post(&item.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, &item.event_id)
            .header(EVENT_TYPE_HEADER, &item.event_type)
            .header(SIGNATURE_HEADER, signature)
            .body(item.body.clone())
            .send()
            .await
            // The URL may carry a subscriber's token; keep it out of stored errors and logs.
            .map_err(|e| error_chain(&e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {status}"))
        }
    }
}

async fn record(store: &SqliteStore, item: &DueDelivery, outcome: std::result::Result<(), String>) {
    let result = match outcome {
        Ok(()) => {
            tracing::debug!(event_id = %item.event_id, attempt = item.attempt, "webhook delivered");
            store.delivery_succeeded(item.id).await
        }
        Err(reason) => {
            let retry_in = (item.attempt < MAX_ATTEMPTS).then(|| retry_delay(item.attempt));
            match retry_in {
                Some(delay) => tracing::warn!(
                    event_id = %item.event_id,
                    attempt = item.attempt,
                    retry_in_secs = delay.as_secs(),
                    error = %reason,
                    "webhook delivery failed; will retry"
                ),
                None => tracing::error!(
                    event_id = %item.event_id,
                    attempt = item.attempt,
                    error = %reason,
                    "webhook delivery failed for the last time; giving up"
                ),
            }
            store.delivery_failed(item.id, &reason, retry_in).await
        }
    };
    if let Err(error) = result {
        tracing::warn!(
            event_id = %item.event_id,
            error = %error_chain(&error),
            "recording a webhook attempt failed; it will be attempted again"
        );
    }
}

/// The wait after `attempt` failures: doubling from [`FIRST_RETRY_DELAY`], capped at
/// [`MAX_RETRY_DELAY`], with equal jitter.
fn retry_delay(attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let nominal = FIRST_RETRY_DELAY
        .saturating_mul(1 << exponent)
        .min(MAX_RETRY_DELAY);
    let half = nominal / 2;
    half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
}

#[async_trait]
impl EventPublisher for WebhookPublisher {
    async fn publish(&self, event: &Event) -> Result<()> {
        let body = serde_json::to_string(event).map_err(|e| Error::Internal(e.into()))?;
        if self.store.log_event(event, &body, &self.urls).await? {
            tracing::info!(event_id = %event.event_id(), event_type = %event.event_type(), "event logged");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QueueSettings;
    use crate::embedded::DeliveryState;
    use giftify_shared::Paise;
    use giftify_shared::events::OrderEvent;
    use giftify_shared::ids::{OrderId, UserId};
    use giftify_shared::order::OrderStatus;
    use std::collections::HashMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// One HTTP request as the test server saw it.
    struct Captured {
        request_line: String,
        headers: HashMap<String, String>,
        body: Vec<u8>,
    }

    /// A minimal HTTP/1.1 server on 127.0.0.1 that answers every request with `status` and
    /// hands each request to the test.
    async fn server(status: u16) -> (String, mpsc::UnboundedReceiver<Captured>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/giftify", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    assert!(n > 0, "the client closed before sending a request");
                    raw.extend_from_slice(&buf[..n]);
                    if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i;
                    }
                };
                let head = String::from_utf8(raw[..head_end].to_vec()).unwrap();
                let mut lines = head.split("\r\n");
                let request_line = lines.next().unwrap().to_string();
                let headers: HashMap<String, String> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let length: usize = headers["content-length"].parse().unwrap();
                let mut body = raw[head_end + 4..].to_vec();
                while body.len() < length {
                    let n = socket.read(&mut buf).await.unwrap();
                    body.extend_from_slice(&buf[..n]);
                }
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                socket.write_all(response.as_bytes()).await.unwrap();
                let _ = tx.send(Captured {
                    request_line,
                    headers,
                    body,
                });
            }
        });
        (url, rx)
    }

    struct Fixture {
        store: Arc<SqliteStore>,
        _dir: tempfile::TempDir,
    }

    async fn store() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("events.db"), QueueSettings::default())
            .await
            .unwrap();
        Fixture { store, _dir: dir }
    }

    fn event() -> Event {
        let order_id = OrderId::generate();
        Event::Order(OrderEvent {
            event_id: format!("evt_{}_fulfilled", order_id.ulid_part()),
            event_type: "order.fulfilled".into(),
            order_id,
            user_id: UserId::generate(),
            status: OrderStatus::Fulfilled,
            total_amount: Paise::new(23_750),
            paid_amount: Paise::new(23_750),
            refund_amount: Paise::ZERO,
            fulfilled_amount: Paise::new(23_750),
            items: Vec::new(),
            client_reference: Some("po-1".into()),
            metadata: [("campaign".to_string(), "diwali".to_string())].into(),
            occurred_at: chrono::Utc::now(),
            sequence: 1,
        })
    }

    fn verify(secret: &[u8], header: &str, body: &[u8]) -> bool {
        let Some((t, v1)) = header
            .strip_prefix("t=")
            .and_then(|rest| rest.split_once(",v1="))
        else {
            return false;
        };
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&hex::decode(v1).unwrap()).is_ok()
    }

    #[test]
    fn the_signature_matches_an_independently_computed_vector() {
        // python3: hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
        let body = br#"{"eventId":"evt_1","status":"FULFILLED"}"#;
        assert_eq!(
            signature(b"whsec_test", 1_700_000_000, body).unwrap(),
            "t=1700000000,v1=be5b4eee3f792bddf077e60fd11f31e0378fc7d1ccac082ff1b3d02b294f76de"
        );
    }

    #[tokio::test]
    async fn a_delivery_posts_the_logged_bytes_with_a_verifiable_signature() {
        let f = store().await;
        let (url, mut requests) = server(204).await;
        let publisher = WebhookPublisher::new(
            f.store.clone(),
            vec![url],
            Some(SecretString::from("whsec_test")),
        );
        let event = event();
        publisher.publish(&event).await.unwrap();
        publisher.publish(&event).await.unwrap();
        assert_eq!(publisher.deliver_due().await.unwrap(), 1, "logged once");

        let request = requests.recv().await.unwrap();
        assert_eq!(request.request_line, "POST /hooks/giftify HTTP/1.1");
        assert_eq!(request.headers["content-type"], "application/json");
        assert_eq!(request.headers["giftify-event-id"], event.event_id());
        assert_eq!(request.headers["giftify-event-type"], "order.fulfilled");
        let logged = f.store.logged_events(10).await.unwrap();
        assert_eq!(request.body, logged[0].body.as_bytes());
        assert!(verify(
            b"whsec_test",
            &request.headers["giftify-signature"],
            &request.body
        ));
        assert!(!verify(
            b"another secret",
            &request.headers["giftify-signature"],
            &request.body
        ));
        let sent: Event = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(sent, event);

        let deliveries = f.store.deliveries(10).await.unwrap();
        assert_eq!(deliveries.len(), 1);
        assert_eq!(deliveries[0].state, DeliveryState::Delivered);
        assert_eq!(deliveries[0].attempts, 1);
        assert_eq!(publisher.deliver_due().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_failed_delivery_is_rescheduled_with_its_error() {
        let f = store().await;
        let (url, mut requests) = server(500).await;
        let publisher = WebhookPublisher::new(
            f.store.clone(),
            vec![url],
            Some(SecretString::from("whsec_test")),
        );
        publisher.publish(&event()).await.unwrap();
        assert_eq!(publisher.deliver_due().await.unwrap(), 1);
        requests.recv().await.unwrap();

        let delivery = f.store.deliveries(10).await.unwrap().remove(0);
        assert_eq!(delivery.state, DeliveryState::Pending);
        assert_eq!(delivery.attempts, 1);
        assert!(
            delivery
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("500"))
        );
        assert!(delivery.next_attempt_at > chrono::Utc::now() + chrono::Duration::seconds(4));
        assert_eq!(publisher.deliver_due().await.unwrap(), 0, "not due yet");
    }

    #[tokio::test]
    async fn an_unreachable_subscriber_does_not_fail_the_publish() {
        let f = store().await;
        // Bound and dropped: nothing listens there any more.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let publisher = WebhookPublisher::new(
            f.store.clone(),
            vec![format!("http://127.0.0.1:{port}/hook?token=secret-token")],
            Some(SecretString::from("whsec_test")),
        );
        publisher.publish(&event()).await.unwrap();
        publisher.deliver_due().await.unwrap();
        let delivery = f.store.deliveries(10).await.unwrap().remove(0);
        assert_eq!(delivery.state, DeliveryState::Pending);
        let error = delivery.last_error.unwrap();
        assert!(!error.contains("secret-token"), "{error}");
    }

    #[tokio::test]
    async fn without_urls_events_are_still_logged() {
        let f = store().await;
        let publisher = WebhookPublisher::new(f.store.clone(), Vec::new(), None);
        let event = event();
        publisher.publish(&event).await.unwrap();
        let logged = f.store.logged_events(10).await.unwrap();
        assert_eq!(logged.len(), 1);
        assert_eq!(logged[0].event_id, event.event_id());
        assert!(f.store.deliveries(10).await.unwrap().is_empty());
        assert_eq!(publisher.deliver_due().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn urls_without_a_secret_are_never_posted_to() {
        let f = store().await;
        let publisher = WebhookPublisher::new(
            f.store.clone(),
            vec!["http://127.0.0.1:9/hook".into()],
            None,
        );
        publisher.publish(&event()).await.unwrap();
        assert!(f.store.deliveries(10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_delivery_loop_posts_promptly_and_stops_on_shutdown() {
        let f = store().await;
        let (url, mut requests) = server(200).await;
        let publisher = Arc::new(WebhookPublisher::new(
            f.store.clone(),
            vec![url],
            Some(SecretString::from("whsec_test")),
        ));
        let (stop, shutdown) = Shutdown::channel();
        let running = tokio::spawn({
            let publisher = publisher.clone();
            async move { publisher.run_delivery(shutdown).await }
        });
        publisher.publish(&event()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), requests.recv())
            .await
            .unwrap()
            .unwrap();
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn retry_delays_double_up_to_an_hour() {
        assert!(retry_delay(1) <= FIRST_RETRY_DELAY && retry_delay(1) >= FIRST_RETRY_DELAY / 2);
        assert!(retry_delay(3) >= FIRST_RETRY_DELAY * 2);
        assert!(retry_delay(MAX_ATTEMPTS) <= MAX_RETRY_DELAY);
    }
}
