//! Webhook endpoints and their delivery log in one table: the endpoints in one partition
//! (`endpoints`, by id; a deployment has at most [`giftify_shared::webhooks::MAX_ENDPOINTS`]),
//! and each endpoint's deliveries in its own (`deliveries#<endpoint id>`, by delivery id, a
//! ULID: newest first is a descending query), with a guard item per event
//! (`event#<event id>`) that makes opening a delivery once. Each record is stored as its JSON
//! (`body`) with `version` and `state` beside it for the conditions and the filter.
//!
//! The wake-ups are messages on the webhook queue, which the events topic also feeds: the
//! dispatcher Lambda reads both.

use super::store::{
    DynamoStore, Transaction, TxFailure, all_pages, lost_race_or_error, names_of, put,
};
use crate::aws::item::{Attrs, Item, item, n, s, sdk_error};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use giftify_shared::Missing;
use giftify_shared::ids::{WebhookDeliveryId, WebhookEndpointId};
use giftify_shared::ports::{DeliveryWakeups, Webhooks};
use giftify_shared::wallet::{Page, PageRequest};
use giftify_shared::webhooks::{DeliveryState, WebhookDelivery, WebhookEndpoint};
use giftify_shared::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const ENDPOINTS: &str = "endpoints";

fn deliveries_of(endpoint: &WebhookEndpointId) -> String {
    format!("deliveries#{endpoint}")
}

fn key(scope: &str, item_key: &str) -> Item {
    item([("scope", s(scope)), ("itemKey", s(item_key))])
}

fn to_json(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(e.into()))
}

pub(super) fn from_item<T: DeserializeOwned>(raw: &Item) -> Result<T> {
    serde_json::from_str(Attrs::new(raw, "webhooks").s("body")?)
        .map_err(|e| Error::Internal(e.into()))
}

fn version(value: u64) -> AttributeValue {
    n(i64::try_from(value).unwrap_or(i64::MAX))
}

pub(super) fn endpoint_item(endpoint: &WebhookEndpoint) -> Result<Item> {
    let mut record = key(ENDPOINTS, endpoint.id.as_str());
    record.insert("version".into(), version(endpoint.version));
    record.insert("body".into(), s(to_json(endpoint)?));
    Ok(record)
}

/// The due index's one partition: only pending deliveries carry it.
const DUE_SHARD: &str = "PENDING";

/// Sorts as the time does: zero-padded unix milliseconds.
fn due_at(at: DateTime<Utc>) -> String {
    format!("{:020}", at.timestamp_millis().max(0))
}

fn delivery_item(delivery: &WebhookDelivery) -> Result<Item> {
    let mut record = key(&deliveries_of(&delivery.endpoint_id), delivery.id.as_str());
    record.insert("version".into(), version(delivery.version));
    record.insert("state".into(), s(delivery.state.as_str()));
    record.insert("body".into(), s(to_json(delivery)?));
    if let (DeliveryState::Pending, Some(at)) = (delivery.state, delivery.next_attempt_at) {
        record.insert("dueShard".into(), s(DUE_SHARD));
        record.insert("dueAt".into(), s(due_at(at)));
    }
    Ok(record)
}

fn guard_key(endpoint: &WebhookEndpointId, event_id: &str) -> Item {
    key(&deliveries_of(endpoint), &format!("event#{event_id}"))
}

/// Replaces the item when its stored version is one below the new one.
async fn save_versioned(
    store: &DynamoStore,
    record: Item,
    new_version: u64,
    what: &'static str,
) -> Result<bool> {
    let result = store
        .client
        .put_item()
        .table_name(&store.tables.webhooks)
        .set_item(Some(record))
        .condition_expression("#version = :previous")
        .set_expression_attribute_names(names_of(&["#version"]))
        .expression_attribute_values(":previous", version(new_version.saturating_sub(1)))
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(error) => match lost_race_or_error(error) {
            Some(error) => Err(error),
            None => {
                tracing::debug!(what, "a versioned save lost a race");
                Ok(false)
            }
        },
    }
}

impl DynamoStore {
    async fn open_delivery_once(&self, delivery: &WebhookDelivery) -> Result<WebhookDelivery> {
        if let Some(existing) = self
            .delivery_by_event(&delivery.endpoint_id, &delivery.event_id)
            .await?
        {
            return Ok(existing);
        }
        let mut guard = guard_key(&delivery.endpoint_id, &delivery.event_id);
        guard.insert("deliveryId".into(), s(delivery.id.as_str()));
        let mut transaction = Transaction::<bool>::new();
        transaction.push(
            put(
                &self.tables.webhooks,
                guard,
                Some("attribute_not_exists(itemKey)"),
                Item::new(),
            )?,
            true,
        );
        transaction.push(
            put(
                &self.tables.webhooks,
                delivery_item(delivery)?,
                Some("attribute_not_exists(itemKey)"),
                Item::new(),
            )?,
            false,
        );
        match self.commit(transaction).await {
            Ok(()) => Ok(delivery.clone()),
            // Opened by a racing dispatcher: answer theirs.
            Err(TxFailure::Refused(true)) => self
                .delivery_by_event(&delivery.endpoint_id, &delivery.event_id)
                .await?
                .ok_or(Error::Conflict("webhook delivery opened concurrently")),
            Err(TxFailure::Refused(false)) => {
                Err(Error::internal("a fresh delivery id exists already"))
            }
            Err(TxFailure::Failed(error)) => Err(error),
        }
    }

    async fn delivery_by_event(
        &self,
        endpoint: &WebhookEndpointId,
        event_id: &str,
    ) -> Result<Option<WebhookDelivery>> {
        let Some(guard) = self
            .get(&self.tables.webhooks, guard_key(endpoint, event_id))
            .await?
        else {
            return Ok(None);
        };
        let id = WebhookDeliveryId::parse(Attrs::new(&guard, "webhooks").s("deliveryId")?)?;
        self.delivery_at(endpoint, &id).await
    }

    /// A consistent read of one delivery.
    async fn delivery_at(
        &self,
        endpoint: &WebhookEndpointId,
        id: &WebhookDeliveryId,
    ) -> Result<Option<WebhookDelivery>> {
        self.get(
            &self.tables.webhooks,
            key(&deliveries_of(endpoint), id.as_str()),
        )
        .await?
        .as_ref()
        .map(from_item)
        .transpose()
    }
}

#[async_trait]
impl Webhooks for DynamoStore {
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.webhooks)
            .set_item(Some(endpoint_item(endpoint)?))
            .condition_expression("attribute_not_exists(itemKey)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => {
                Err(lost_race_or_error(error).unwrap_or(Error::Conflict("webhook endpoint exists")))
            }
        }
    }

    async fn endpoint(&self, id: &WebhookEndpointId) -> Result<WebhookEndpoint> {
        self.get(&self.tables.webhooks, key(ENDPOINTS, id.as_str()))
            .await?
            .as_ref()
            .map(from_item)
            .transpose()?
            .ok_or(Error::NotFound(Missing::WebhookEndpoint))
    }

    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.webhooks)
            .key_condition_expression("#scope = :scope")
            .set_expression_attribute_names(names_of(&["#scope"]))
            .expression_attribute_values(":scope", s(ENDPOINTS))
            .consistent_read(true);
        let mut endpoints = all_pages!(query.clone())
            .iter()
            .map(from_item)
            .collect::<Result<Vec<WebhookEndpoint>>>()?;
        endpoints.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(endpoints)
    }

    async fn save_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        if save_versioned(self, endpoint_item(endpoint)?, endpoint.version, "endpoint").await? {
            return Ok(());
        }
        self.endpoint(&endpoint.id).await?;
        Err(Error::Conflict("webhook endpoint changed"))
    }

    /// The endpoint goes first (so nothing opens new deliveries for it), then its delivery
    /// log, item by item. A delete that stops half-way leaves items no read reaches (every
    /// read goes through the endpoint); an endpoint ensured again later under the same id
    /// would see them, and its next delete clears them.
    async fn delete_endpoint(&self, id: &WebhookEndpointId) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.webhooks)
            .set_key(Some(key(ENDPOINTS, id.as_str())))
            .condition_expression("attribute_exists(itemKey)")
            .send()
            .await;
        if let Err(error) = result {
            return Err(
                lost_race_or_error(error).unwrap_or(Error::NotFound(Missing::WebhookEndpoint))
            );
        }
        let query = self
            .client
            .query()
            .table_name(&self.tables.webhooks)
            .key_condition_expression("#scope = :scope")
            .set_expression_attribute_names(names_of(&["#scope #itemKey"]))
            .expression_attribute_values(":scope", s(deliveries_of(id)))
            .projection_expression("#scope, #itemKey");
        for item in all_pages!(query.clone()) {
            let item_key = Attrs::new(&item, "webhooks").s("itemKey")?.to_string();
            self.client
                .delete_item()
                .table_name(&self.tables.webhooks)
                .set_key(Some(key(&deliveries_of(id), &item_key)))
                .send()
                .await
                .map_err(sdk_error)?;
        }
        Ok(())
    }

    async fn open_delivery(&self, delivery: &WebhookDelivery) -> Result<WebhookDelivery> {
        // A transaction conflict with a racing open is retried: the retry finds its guard.
        super::store::retrying(|| self.open_delivery_once(delivery)).await
    }

    async fn delivery(
        &self,
        endpoint: &WebhookEndpointId,
        id: &WebhookDeliveryId,
    ) -> Result<WebhookDelivery> {
        self.delivery_at(endpoint, id)
            .await?
            .ok_or(Error::NotFound(Missing::WebhookDelivery))
    }

    async fn save_delivery(&self, delivery: &WebhookDelivery) -> Result<()> {
        if save_versioned(self, delivery_item(delivery)?, delivery.version, "delivery").await? {
            Ok(())
        } else {
            Err(Error::Conflict("webhook delivery changed"))
        }
    }

    /// The due index gives the keys, soonest first; each delivery is then read consistently
    /// (the index lags a little: one found not due any more is left out).
    async fn due_deliveries(
        &self,
        due_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.webhooks)
            .index_name("due-index")
            .key_condition_expression("#dueShard = :shard AND #dueAt <= :due")
            .set_expression_attribute_names(names_of(&["#dueShard #dueAt"]))
            .expression_attribute_values(":shard", s(DUE_SHARD))
            .expression_attribute_values(":due", s(due_at(due_by)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk_error)?;
        let mut due = Vec::new();
        for keys in output.items.unwrap_or_default() {
            let a = Attrs::new(&keys, "webhooks");
            let record = self
                .get(&self.tables.webhooks, key(a.s("scope")?, a.s("itemKey")?))
                .await?;
            if let Some(delivery) = record
                .as_ref()
                .map(from_item::<WebhookDelivery>)
                .transpose()?
                && delivery.state == DeliveryState::Pending
                && delivery.next_attempt_at.is_some_and(|at| at <= due_by)
            {
                due.push(delivery);
            }
        }
        Ok(due)
    }

    /// The endpoint's partition read newest first, filtered by state; the page is cut from
    /// it here, so a listing costs a read of the endpoint's whole log.
    async fn deliveries(
        &self,
        endpoint: &WebhookEndpointId,
        state: Option<DeliveryState>,
        page: PageRequest,
    ) -> Result<Page<WebhookDelivery>> {
        let mut query = self
            .client
            .query()
            .table_name(&self.tables.webhooks)
            .key_condition_expression("#scope = :scope AND begins_with(#itemKey, :prefix)")
            .expression_attribute_values(":scope", s(deliveries_of(endpoint)))
            .expression_attribute_values(":prefix", s(WebhookDeliveryId::PREFIX))
            .scan_index_forward(false)
            .consistent_read(true);
        let mut expressions = vec!["#scope #itemKey"];
        if let Some(state) = state {
            query = query
                .filter_expression("#state = :state")
                .expression_attribute_values(":state", s(state.as_str()));
            expressions.push("#state");
        }
        let query = query.set_expression_attribute_names(names_of(&expressions));
        let all = all_pages!(query.clone())
            .iter()
            .map(from_item)
            .collect::<Result<Vec<WebhookDelivery>>>()?;
        Ok(page.slice(all))
    }
}

/// What a wake-up message on the webhook queue says.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WakeUp {
    pub endpoint_id: WebhookEndpointId,
    pub delivery_id: WebhookDeliveryId,
}

/// Wake-ups as messages on the webhook queue, delayed until the delivery is due (at most 15
/// minutes, SQS's longest delay: a delivery due later is woken early, found not due, and
/// woken again).
#[derive(Clone, Debug)]
pub struct SqsWakeups {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub clock: std::sync::Arc<dyn giftify_shared::Clock>,
}

/// SQS's longest message delay.
const MAX_DELAY_SECS: i64 = 900;

#[async_trait]
impl DeliveryWakeups for SqsWakeups {
    async fn wake_at(&self, delivery: &WebhookDelivery, at: DateTime<Utc>) -> Result<()> {
        let body = serde_json::to_string(&WakeUp {
            endpoint_id: delivery.endpoint_id.clone(),
            delivery_id: delivery.id.clone(),
        })
        .map_err(|e| Error::Internal(e.into()))?;
        // Rounded up: a wake-up a moment early finds the delivery not due and only wakes again.
        let millis = (at - self.clock.now()).num_milliseconds().max(0);
        let delay = ((millis + 999) / 1000).min(MAX_DELAY_SECS);
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(i32::try_from(delay).unwrap_or(0))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
