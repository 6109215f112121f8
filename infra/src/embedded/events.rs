//! The event log and the webhook delivery rows behind [`crate::embedded::webhooks`]: an event is logged
//! once (its id is stable per order and status, or per card, so a republish is harmless), with one delivery
//! row per configured URL, in one transaction. Delivery loops claim due rows with a lease, so
//! two processes never post the same delivery at the same time.

use super::SqliteStore;
use super::codec::{DbResult, all, enumeration, execute, millis, opt_time, time};
use giftify_shared::Result;
use giftify_shared::events::Event;
use rusqlite::{Connection, Row, params};
use std::time::Duration;

/// An event as logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedEvent {
    pub event_id: String,
    pub event_type: String,
    pub order_id: String,
    /// The exact JSON that is signed and sent.
    pub body: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Where a webhook delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Gave up after the last attempt.
    Failed,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "PENDING",
            DeliveryState::Delivered => "DELIVERED",
            DeliveryState::Failed => "FAILED",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// The state of one event's delivery to one URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub event_id: String,
    pub url: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: chrono::DateTime<chrono::Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A delivery claimed for one attempt.
#[derive(Clone, Debug)]
pub struct DueDelivery {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub url: String,
    pub body: String,
    /// Attempts so far, this one included.
    pub attempt: u32,
}

fn log_event(
    conn: &Connection,
    event: &Event,
    body: &str,
    urls: &[String],
    now: i64,
) -> DbResult<bool> {
    let logged = execute(
        conn,
        "INSERT INTO events (event_id, event_type, order_id, body, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (event_id) DO NOTHING",
        params![
            event.event_id(),
            event.event_type(),
            event.order_id().as_str(),
            body,
            now
        ],
    )?;
    if logged == 0 {
        return Ok(false);
    }
    for url in urls {
        execute(
            conn,
            "INSERT INTO webhook_deliveries (event_id, url, state, next_attempt_at) \
             VALUES (?1, ?2, 'PENDING', ?3) ON CONFLICT (event_id, url) DO NOTHING",
            params![event.event_id(), url, now],
        )?;
    }
    Ok(true)
}

fn claim_due(
    conn: &Connection,
    limit: usize,
    lease: Duration,
    now: i64,
) -> DbResult<Vec<DueDelivery>> {
    let due = all(
        conn,
        "SELECT d.id, d.event_id, e.event_type, d.url, e.body, d.attempts \
         FROM webhook_deliveries d JOIN events e ON e.event_id = d.event_id \
         WHERE d.state = 'PENDING' AND d.next_attempt_at <= ?1 \
         ORDER BY d.next_attempt_at, d.id LIMIT ?2",
        params![now, i64::try_from(limit).unwrap_or(i64::MAX)],
        |row| {
            Ok(DueDelivery {
                id: row.get("id")?,
                event_id: row.get("event_id")?,
                event_type: row.get("event_type")?,
                url: row.get("url")?,
                body: row.get("body")?,
                attempt: row.get::<_, u32>("attempts")?.saturating_add(1),
            })
        },
    )?;
    // The lease hides the row from other loops while this attempt runs; a crash mid-attempt
    // leaves it to be tried again once the lease is over.
    let leased_until = now.saturating_add(millis(lease));
    for delivery in &due {
        execute(
            conn,
            "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?2 \
             WHERE id = ?1",
            params![delivery.id, leased_until],
        )?;
    }
    Ok(due)
}

fn delivery_from_row(row: &Row) -> DbResult<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: row.get("id")?,
        event_id: row.get("event_id")?,
        url: row.get("url")?,
        state: enumeration(row, "state", DeliveryState::parse)?,
        attempts: row.get("attempts")?,
        next_attempt_at: time(row, "next_attempt_at")?,
        last_error: row.get("last_error")?,
        delivered_at: opt_time(row, "delivered_at")?,
    })
}

impl SqliteStore {
    /// Logs an event and its deliveries to `urls` atomically; false when it was already logged.
    pub async fn log_event(&self, event: &Event, body: &str, urls: &[String]) -> Result<bool> {
        let has_urls = !urls.is_empty();
        let (event, body, urls) = (event.clone(), body.to_string(), urls.to_vec());
        let now = self.now_ms();
        let logged = self
            .write(move |conn| log_event(conn, &event, &body, &urls, now))
            .await?;
        if logged && has_urls {
            self.delivery_work.notify_one();
        }
        Ok(logged)
    }

    /// Claims up to `limit` due deliveries for one attempt each, hiding them for `lease`.
    pub async fn claim_due_deliveries(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<DueDelivery>> {
        let now = self.now_ms();
        self.write(move |conn| claim_due(conn, limit, lease, now))
            .await
    }

    /// Records a successful attempt.
    pub async fn delivery_succeeded(&self, id: i64) -> Result<()> {
        let now = self.now_ms();
        self.write(move |conn| {
            execute(
                conn,
                "UPDATE webhook_deliveries SET state = 'DELIVERED', delivered_at = ?2, \
                 last_error = NULL WHERE id = ?1",
                params![id, now],
            )?;
            Ok(())
        })
        .await
    }

    /// Records a failed attempt: tried again after `retry_in`, or given up when `None`.
    pub async fn delivery_failed(
        &self,
        id: i64,
        error: &str,
        retry_in: Option<Duration>,
    ) -> Result<()> {
        let error = error.to_string();
        let now = self.now_ms();
        self.write(move |conn| {
            match retry_in {
                Some(delay) => execute(
                    conn,
                    "UPDATE webhook_deliveries SET next_attempt_at = ?2, last_error = ?3 \
                     WHERE id = ?1",
                    params![id, now.saturating_add(millis(delay)), error],
                )?,
                None => execute(
                    conn,
                    "UPDATE webhook_deliveries SET state = 'FAILED', last_error = ?2 WHERE id = ?1",
                    params![id, error],
                )?,
            };
            Ok(())
        })
        .await
    }

    /// The most recent events, newest first.
    pub async fn logged_events(&self, limit: u32) -> Result<Vec<LoggedEvent>> {
        self.read(move |conn| {
            all(
                conn,
                "SELECT event_id, event_type, order_id, body, created_at FROM events \
                 ORDER BY created_at DESC, rowid DESC LIMIT ?1",
                [limit],
                |row| {
                    Ok(LoggedEvent {
                        event_id: row.get("event_id")?,
                        event_type: row.get("event_type")?,
                        order_id: row.get("order_id")?,
                        body: row.get("body")?,
                        created_at: time(row, "created_at")?,
                    })
                },
            )
        })
        .await
    }

    /// The most recent deliveries, newest first.
    pub async fn deliveries(&self, limit: u32) -> Result<Vec<DeliveryRecord>> {
        self.read(move |conn| {
            all(
                conn,
                "SELECT id, event_id, url, state, attempts, next_attempt_at, last_error, \
                 delivered_at FROM webhook_deliveries ORDER BY id DESC LIMIT ?1",
                [limit],
                delivery_from_row,
            )
        })
        .await
    }

    /// Waits until an event is logged in this process, or `poll` passes.
    pub(crate) async fn wait_for_deliveries(&self, poll: Duration) {
        let _ = tokio::time::timeout(poll, self.delivery_work.notified()).await;
    }
}
