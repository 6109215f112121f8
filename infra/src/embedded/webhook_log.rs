//! Webhook endpoints and their delivery log ([`Webhooks`]). Each is stored as its JSON with the
//! columns a query or a condition needs beside it; every save is conditional on the version
//! the caller read. Deleting an endpoint deletes its deliveries with it.

use super::SqliteStore;
use super::codec::{DbResult, all, count, execute, one, page_bounds, ts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::Missing;
use giftify_shared::ids::{WebhookDeliveryId, WebhookEndpointId};
use giftify_shared::ports::{DeliveryWakeups, Webhooks};
use giftify_shared::wallet::{Page, PageRequest};
use giftify_shared::webhooks::{DeliveryState, WebhookDelivery, WebhookEndpoint};
use giftify_shared::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};

/// A record's JSON body (a body that does not parse is corrupt data: `DbError`'s
/// conversion).
fn record<T: serde::de::DeserializeOwned>(raw: &str) -> DbResult<T> {
    Ok(serde_json::from_str(raw)?)
}

fn endpoint_by_id(conn: &Connection, id: &WebhookEndpointId) -> DbResult<WebhookEndpoint> {
    let body: Option<String> = conn
        .query_row(
            "SELECT body FROM webhook_endpoints WHERE id = ?1",
            [id.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    match body {
        Some(body) => record(&body),
        None => Err(Error::NotFound(Missing::WebhookEndpoint).into()),
    }
}

fn delivery_by_event(
    conn: &Connection,
    endpoint: &WebhookEndpointId,
    event_id: &str,
) -> DbResult<Option<WebhookDelivery>> {
    one(
        conn,
        "SELECT body FROM webhook_deliveries WHERE endpoint_id = ?1 AND event_id = ?2",
        params![endpoint.as_str(), event_id],
        |row| record(&row.get::<_, String>(0)?),
    )
}

fn open_delivery(conn: &Connection, delivery: &WebhookDelivery) -> DbResult<WebhookDelivery> {
    if let Some(existing) = delivery_by_event(conn, &delivery.endpoint_id, &delivery.event_id)? {
        return Ok(existing);
    }
    execute(
        conn,
        "INSERT INTO webhook_deliveries \
         (id, endpoint_id, event_id, state, next_attempt_at, version, created_at, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            delivery.id.as_str(),
            delivery.endpoint_id.as_str(),
            delivery.event_id,
            delivery.state.as_str(),
            delivery.next_attempt_at.map(ts),
            delivery.version,
            ts(delivery.created_at),
            serde_json::to_string(delivery)?,
        ],
    )
    .map_err(|e| e.missing_on_foreign_key(Missing::WebhookEndpoint))?;
    Ok(delivery.clone())
}

impl SqliteStore {
    /// How far the embedded dispatcher has read the feed of all events.
    pub async fn dispatched_position(&self) -> Result<u64> {
        self.read(|conn| {
            let position: Option<i64> = conn
                .query_row(
                    "SELECT position FROM dispatch_cursor WHERE name = 'webhooks'",
                    [],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(u64::try_from(position.unwrap_or(0)).unwrap_or(0))
        })
        .await
    }

    /// Moves the dispatcher's place in the feed forward to `position` (never back: of two
    /// processes following the feed, the one further on wins).
    pub async fn advance_dispatched(&self, position: u64) -> Result<()> {
        let position = i64::try_from(position).map_err(|e| Error::Internal(e.into()))?;
        self.write(move |conn| {
            execute(
                conn,
                "INSERT INTO dispatch_cursor (name, position) VALUES ('webhooks', ?1) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position \
                 WHERE excluded.position > dispatch_cursor.position",
                [position],
            )?;
            Ok(())
        })
        .await
    }

    /// Waits until a dispatcher in this process is woken, or `poll` passes.
    pub(crate) async fn wait_for_deliveries(&self, poll: std::time::Duration) {
        let _ = tokio::time::timeout(poll, self.delivery_work.notified()).await;
    }

    /// Wakes this process's dispatcher (an event was recorded, a delivery came due).
    pub(crate) fn wake_dispatcher(&self) {
        self.delivery_work.notify_one();
    }
}

#[async_trait]
impl Webhooks for SqliteStore {
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        let endpoint = endpoint.clone();
        self.write(move |conn| {
            let inserted = execute(
                conn,
                "INSERT INTO webhook_endpoints (id, version, created_at, body) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
                params![
                    endpoint.id.as_str(),
                    endpoint.version,
                    ts(endpoint.created_at),
                    serde_json::to_string(&endpoint)?
                ],
            )?;
            if inserted == 0 {
                return Err(Error::Conflict("webhook endpoint exists").into());
            }
            Ok(())
        })
        .await
    }

    async fn endpoint(&self, id: &WebhookEndpointId) -> Result<WebhookEndpoint> {
        let id = id.clone();
        self.read(move |conn| endpoint_by_id(conn, &id)).await
    }

    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>> {
        self.read(|conn| {
            all(
                conn,
                "SELECT body FROM webhook_endpoints ORDER BY created_at, id",
                [],
                |row| record(&row.get::<_, String>(0)?),
            )
        })
        .await
    }

    async fn save_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        let endpoint = endpoint.clone();
        self.write(move |conn| {
            let saved = execute(
                conn,
                "UPDATE webhook_endpoints SET version = ?2, body = ?3 \
                 WHERE id = ?1 AND version = ?2 - 1",
                params![
                    endpoint.id.as_str(),
                    endpoint.version,
                    serde_json::to_string(&endpoint)?
                ],
            )?;
            if saved == 0 {
                endpoint_by_id(conn, &endpoint.id)?;
                return Err(Error::Conflict("webhook endpoint changed").into());
            }
            Ok(())
        })
        .await
    }

    async fn delete_endpoint(&self, id: &WebhookEndpointId) -> Result<()> {
        let id = id.clone();
        self.write(move |conn| {
            execute(
                conn,
                "DELETE FROM webhook_deliveries WHERE endpoint_id = ?1",
                [id.as_str()],
            )?;
            if execute(
                conn,
                "DELETE FROM webhook_endpoints WHERE id = ?1",
                [id.as_str()],
            )? == 0
            {
                return Err(Error::NotFound(Missing::WebhookEndpoint).into());
            }
            Ok(())
        })
        .await
    }

    async fn open_delivery(&self, delivery: &WebhookDelivery) -> Result<WebhookDelivery> {
        let delivery = delivery.clone();
        self.write(move |conn| open_delivery(conn, &delivery)).await
    }

    async fn delivery(
        &self,
        endpoint: &WebhookEndpointId,
        id: &WebhookDeliveryId,
    ) -> Result<WebhookDelivery> {
        let (endpoint, id) = (endpoint.clone(), id.clone());
        self.read(move |conn| {
            one(
                conn,
                "SELECT body FROM webhook_deliveries WHERE id = ?1 AND endpoint_id = ?2",
                params![id.as_str(), endpoint.as_str()],
                |row| record(&row.get::<_, String>(0)?),
            )?
            .ok_or_else(|| Error::NotFound(Missing::WebhookDelivery).into())
        })
        .await
    }

    async fn save_delivery(&self, delivery: &WebhookDelivery) -> Result<()> {
        let delivery = delivery.clone();
        self.write(move |conn| {
            let saved = execute(
                conn,
                "UPDATE webhook_deliveries SET state = ?2, next_attempt_at = ?3, version = ?4, \
                 body = ?5 WHERE id = ?1 AND version = ?4 - 1",
                params![
                    delivery.id.as_str(),
                    delivery.state.as_str(),
                    delivery.next_attempt_at.map(ts),
                    delivery.version,
                    serde_json::to_string(&delivery)?
                ],
            )?;
            if saved == 0 {
                return Err(Error::Conflict("webhook delivery changed").into());
            }
            Ok(())
        })
        .await
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<WebhookDelivery>> {
        self.read(move |conn| {
            all(
                conn,
                "SELECT body FROM webhook_deliveries \
                 WHERE state = 'PENDING' AND next_attempt_at <= ?1 \
                 ORDER BY next_attempt_at LIMIT ?2",
                params![ts(now), limit],
                |row| record(&row.get::<_, String>(0)?),
            )
        })
        .await
    }

    async fn deliveries(
        &self,
        endpoint: &WebhookEndpointId,
        state: Option<DeliveryState>,
        page: PageRequest,
    ) -> Result<Page<WebhookDelivery>> {
        let endpoint = endpoint.clone();
        self.read(move |conn| {
            let state = state.map(DeliveryState::as_str);
            let filter = "endpoint_id = ?1 AND (?2 IS NULL OR state = ?2)";
            let total = count(
                conn,
                &format!("SELECT COUNT(*) FROM webhook_deliveries WHERE {filter}"),
                params![endpoint.as_str(), state],
            )?;
            let (limit, offset) = page_bounds(page);
            let items = all(
                conn,
                &format!(
                    "SELECT body FROM webhook_deliveries WHERE {filter} \
                     ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4"
                ),
                params![endpoint.as_str(), state, limit, offset],
                |row| record(&row.get::<_, String>(0)?),
            )?;
            Ok(Page {
                items,
                total,
                page: page.page,
                limit: page.limit,
            })
        })
        .await
    }
}

#[async_trait]
impl DeliveryWakeups for SqliteStore {
    /// The dispatcher scans for due deliveries on its own; a delivery due now is worth waking
    /// it for.
    async fn wake_at(&self, _: &WebhookDelivery, at: DateTime<Utc>) -> Result<()> {
        if at <= self.options.clock.now() {
            self.wake_dispatcher();
        }
        Ok(())
    }
}
