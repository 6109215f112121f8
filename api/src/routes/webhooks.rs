//! `/webhooks`: admins manage the endpoints that receive signed events, see every delivery
//! with its attempts, and replay them — one delivery, or every event since a time. Every
//! change is audited. The rules are the core's ([`giftify_shared::webhooks`]). The 401 and 403
//! answers every one of these may give are documented once ([`crate::openapi`]'s
//! `AdminErrors`).

use crate::AppState;
use crate::dto::{MessageData, Pagination, page_request};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{AdminUser, ApiJson, ApiPath, ApiQuery, JsonBody, parse_id};
use crate::response::{Envelope, ok};
use crate::wire_time::timestamp;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use giftify_shared::ids::{WebhookDeliveryId, WebhookEndpointId};
use giftify_shared::webhooks::{DeliveryState, EndpointPatch, WebhookDelivery, WebhookEndpoint};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The `/webhooks` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route(
            "/webhooks/{webhookId}",
            get(show).patch(update).delete(remove),
        )
        .route("/webhooks/{webhookId}/rotate-secret", post(rotate_secret))
        .route("/webhooks/{webhookId}/deliveries", get(deliveries))
        .route(
            "/webhooks/{webhookId}/deliveries/{deliveryId}",
            get(delivery),
        )
        .route(
            "/webhooks/{webhookId}/deliveries/{deliveryId}/retry",
            post(retry),
        )
        .route("/webhooks/{webhookId}/recover", post(recover))
}

/// An endpoint to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateWebhookRequest {
    /// Absolute `http(s)` URL without credentials, up to 2,000 characters.
    #[schema(example = "https://example.com/hooks/giftify")]
    pub url: String,
    /// `order.fulfilled`, `order.partially_fulfilled`, `order.refunded`, `order.cancelled`,
    /// `gift_card.redeemed`, `gift_card.returned`, `endpoint.disabled`, or `*` for all.
    #[schema(example = json!(["order.fulfilled", "order.refunded"]))]
    pub event_types: Vec<String>,
    /// Up to 200 characters.
    #[serde(default)]
    pub description: String,
    /// Default true.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// A change to an endpoint; absent fields stay as they are. Enabling a disabled endpoint
/// clears its failure record.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateWebhookRequest {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A rotation of the signing secret.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RotateSecretRequest {
    /// How long the secrets signing until now keep signing, 0–604800 (default 86400): during
    /// the overlap `Giftify-Signature` carries one `v1=` per valid secret, newest first.
    #[schema(example = 86400)]
    pub overlap_seconds: Option<i64>,
}

/// A replay of every event since a time, one step at a time.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecoverRequest {
    /// RFC 3339; events that occurred at or after it are sent again.
    #[schema(example = "2026-12-01T00:00:00Z", format = DateTime)]
    pub since: String,
    /// The `nextCursor` of the previous step; absent for the first.
    pub after: Option<String>,
}

/// One of an endpoint's signing secrets; its value is never shown again.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretView {
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Null for the current secret; a rotated-out one signs until then.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// An endpoint as admins see it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    #[schema(example = "we_01HXXXXXXXXXXXXXXXXXXXXXXX")]
    pub webhook_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// Why Giftify disabled it, when it did.
    pub disabled_reason: Option<String>,
    /// Since when every attempt failed; null while the last one succeeded.
    #[schema(format = DateTime)]
    pub failing_since: Option<String>,
    /// The secrets that sign now or will, newest first.
    pub secrets: Vec<SecretView>,
    /// Null for the endpoint the environment ensures (`GIFTIFY_WEBHOOK_URLS`).
    pub created_by: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&WebhookEndpoint> for WebhookView {
    fn from(endpoint: &WebhookEndpoint) -> Self {
        WebhookView {
            webhook_id: endpoint.id.to_string(),
            url: endpoint.url.clone(),
            event_types: endpoint.event_types.iter().cloned().collect(),
            description: endpoint.description.clone(),
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason.clone(),
            failing_since: endpoint.failing_since.map(timestamp),
            secrets: endpoint
                .secrets
                .iter()
                .map(|s| SecretView {
                    created_at: timestamp(s.created_at),
                    expires_at: s.expires_at.map(timestamp),
                })
                .collect(),
            created_by: endpoint.created_by.as_ref().map(ToString::to_string),
            created_at: timestamp(endpoint.created_at),
            updated_at: timestamp(endpoint.updated_at),
        }
    }
}

/// An endpoint with a secret, shown this once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookWithSecretData {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The signing secret (`whsec_…`). Store it now: it is not shown again.
    #[schema(example = "whsec_3q2-7wXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX")]
    pub secret: String,
}

impl WebhookWithSecretData {
    fn new(endpoint: &WebhookEndpoint, secret: &SecretString) -> Self {
        WebhookWithSecretData {
            webhook: WebhookView::from(endpoint),
            secret: secret.expose_secret().to_string(),
        }
    }
}

/// Every endpoint.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhooksData {
    pub webhooks: Vec<WebhookView>,
}

/// One attempt at a delivery.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    #[schema(format = DateTime)]
    pub at: String,
    /// Null when no answer came.
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// Null for a 2xx answer.
    pub error: Option<String>,
}

/// One event's delivery to one endpoint.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    #[schema(example = "wd_01HXXXXXXXXXXXXXXXXXXXXXXX")]
    pub delivery_id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    /// `PENDING`, `DELIVERED` or `FAILED` (replayable).
    pub status: String,
    /// The most recent 30 attempts, oldest first.
    pub attempts: Vec<AttemptView>,
    /// Every attempt ever made.
    pub attempt_count: u32,
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    /// The event exactly as sent.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&WebhookDelivery> for DeliveryView {
    fn from(d: &WebhookDelivery) -> Self {
        DeliveryView {
            delivery_id: d.id.to_string(),
            webhook_id: d.endpoint_id.to_string(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            status: d.state.as_str().to_string(),
            attempts: d
                .attempts
                .iter()
                .map(|a| AttemptView {
                    at: timestamp(a.at),
                    http_status: a.http_status,
                    latency_ms: a.latency_ms,
                    error: a.error.clone(),
                })
                .collect(),
            attempt_count: d.attempt_count,
            next_attempt_at: d.next_attempt_at.map(timestamp),
            payload: serde_json::from_str(&d.body).unwrap_or(serde_json::Value::Null),
            created_at: timestamp(d.created_at),
            updated_at: timestamp(d.updated_at),
        }
    }
}

/// A page of an endpoint's deliveries.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveriesData {
    pub deliveries: Vec<DeliveryView>,
    pub pagination: Pagination,
}

/// What one recover step re-sent, and where the next starts.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveredData {
    pub recovered: usize,
    /// Pass as `after` (with the same `since`) to go on.
    pub next_cursor: String,
    /// Whether there are recorded events past `nextCursor`: call again until false.
    pub has_more: bool,
}

/// `?status&page&limit` of an endpoint's deliveries.
#[derive(Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryListQuery {
    /// `PENDING`, `DELIVERED` or `FAILED`.
    #[param(value_type = Option<String>, example = "FAILED")]
    pub status: Option<String>,
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1, example = 1)]
    pub page: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, example = 20)]
    pub limit: Option<String>,
}

fn webhook_id(raw: &str) -> Result<WebhookEndpointId, ApiError> {
    parse_id("webhookId", raw)
}

/// Create a webhook endpoint.
///
/// The answer holds its signing secret, once. Each POST carries `Giftify-Event-Id`,
/// `Giftify-Event-Type`, `Giftify-Delivery-Id` and
/// `Giftify-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
#[utoipa::path(
    post, path = "/webhooks", tag = "webhooks",
    security(("bearerAuth" = [])),
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "Created; the secret is in this answer only", body = Envelope<WebhookWithSecretData>),
        (status = 400, description = "VALIDATION_ERROR: url, eventTypes, description, or 50 endpoints already", body = ErrorEnvelope),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiJson(body): ApiJson<CreateWebhookRequest>,
) -> Result<Response, ApiError> {
    let (endpoint, secret) = state
        .giftify()
        .create_webhook(
            &admin.id,
            &body.url,
            &body.event_types,
            &body.description,
            body.enabled,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        ok(WebhookWithSecretData::new(&endpoint, &secret))
            .with_message("Store the secret now; it is not shown again"),
    )
        .into_response())
}

/// Every webhook endpoint, oldest first; never their secrets.
#[utoipa::path(
    get, path = "/webhooks", tag = "webhooks",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The endpoints", body = Envelope<WebhooksData>),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Envelope<WebhooksData>, ApiError> {
    let endpoints = state.giftify().webhooks().await?;
    Ok(ok(WebhooksData {
        webhooks: endpoints.iter().map(WebhookView::from).collect(),
    }))
}

/// One webhook endpoint.
#[utoipa::path(
    get, path = "/webhooks/{webhookId}", tag = "webhooks",
    security(("bearerAuth" = [])),
    params(("webhookId" = String, Path, description = "we_…")),
    responses(
        (status = 200, description = "The endpoint", body = Envelope<WebhookView>),
        (status = 400, description = "VALIDATION_ERROR: malformed id", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Envelope<WebhookView>, ApiError> {
    let endpoint = state.giftify().webhook(&webhook_id(&id)?).await?;
    Ok(ok(WebhookView::from(&endpoint)))
}

/// Change a webhook endpoint: URL, event types, description, enabled.
#[utoipa::path(
    patch, path = "/webhooks/{webhookId}", tag = "webhooks",
    security(("bearerAuth" = [])),
    params(("webhookId" = String, Path, description = "we_…")),
    request_body = UpdateWebhookRequest,
    responses(
        (status = 200, description = "Changed", body = Envelope<WebhookView>),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateWebhookRequest>,
) -> Result<Envelope<WebhookView>, ApiError> {
    let patch = EndpointPatch {
        url: body.url,
        event_types: body.event_types,
        description: body.description,
        enabled: body.enabled,
    };
    let endpoint = state
        .giftify()
        .update_webhook(&admin.id, &webhook_id(&id)?, &patch)
        .await?;
    Ok(ok(WebhookView::from(&endpoint)))
}

/// Delete a webhook endpoint and its delivery log.
#[utoipa::path(
    delete, path = "/webhooks/{webhookId}", tag = "webhooks",
    security(("bearerAuth" = [])),
    params(("webhookId" = String, Path, description = "we_…")),
    responses(
        (status = 200, description = "Deleted", body = Envelope<MessageData>),
        (status = 400, description = "VALIDATION_ERROR: malformed id", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Envelope<MessageData>, ApiError> {
    state
        .giftify()
        .delete_webhook(&admin.id, &webhook_id(&id)?)
        .await?;
    Ok(ok(MessageData {
        message: "Webhook endpoint deleted".into(),
    }))
}

/// Rotate an endpoint's signing secret.
///
/// The new secret is in the answer only. The secrets that signed until now keep signing for
/// the overlap, so a subscriber can switch without missing a delivery.
#[utoipa::path(
    post, path = "/webhooks/{webhookId}/rotate-secret", tag = "webhooks",
    security(("bearerAuth" = [])),
    params(("webhookId" = String, Path, description = "we_…")),
    request_body(content = Option<RotateSecretRequest>, description = "Omit the body, or send `{}`, for the default overlap of a day"),
    responses(
        (status = 200, description = "Rotated; the new secret is in this answer only", body = Envelope<WebhookWithSecretData>),
        (status = 400, description = "VALIDATION_ERROR: overlapSeconds", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath(id): ApiPath<String>,
    body: JsonBody,
) -> Result<Envelope<WebhookWithSecretData>, ApiError> {
    let id = webhook_id(&id)?;
    let body: RotateSecretRequest = body.parse()?;
    let overlap = body
        .overlap_seconds
        .map(|secs| {
            chrono::Duration::try_seconds(secs).ok_or_else(|| {
                ApiError::validation("overlapSeconds", "must be between 0 and 604800")
            })
        })
        .transpose()?;
    let (endpoint, secret) = state
        .giftify()
        .rotate_webhook_secret(&admin.id, &id, overlap)
        .await?;
    Ok(ok(WebhookWithSecretData::new(&endpoint, &secret))
        .with_message("Store the secret now; it is not shown again"))
}

/// An endpoint's deliveries, newest first, with their attempts.
#[utoipa::path(
    get, path = "/webhooks/{webhookId}/deliveries", tag = "webhooks",
    security(("bearerAuth" = [])),
    params(("webhookId" = String, Path, description = "we_…"), DeliveryListQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = Envelope<DeliveriesData>),
        (status = 400, description = "VALIDATION_ERROR: status, page or limit", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub async fn deliveries(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeliveryListQuery>,
) -> Result<Envelope<DeliveriesData>, ApiError> {
    let page = page_request(query.page.as_deref(), query.limit.as_deref(), 20)?;
    let status = query
        .status
        .as_deref()
        .map(|raw| {
            DeliveryState::parse(raw).ok_or_else(|| {
                ApiError::validation("status", "must be one of PENDING, DELIVERED, FAILED")
            })
        })
        .transpose()?;
    let found = state
        .giftify()
        .webhook_deliveries(&webhook_id(&id)?, status, page)
        .await?;
    Ok(ok(DeliveriesData {
        deliveries: found.items.iter().map(DeliveryView::from).collect(),
        pagination: Pagination::from(&found),
    }))
}

/// One delivery with its attempts.
#[utoipa::path(
    get, path = "/webhooks/{webhookId}/deliveries/{deliveryId}", tag = "webhooks",
    security(("bearerAuth" = [])),
    params(("webhookId" = String, Path, description = "we_…"), ("deliveryId" = String, Path, description = "wd_…")),
    responses(
        (status = 200, description = "The delivery", body = Envelope<DeliveryView>),
        (status = 400, description = "VALIDATION_ERROR: malformed id", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub async fn delivery(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiPath((id, delivery_id)): ApiPath<(String, String)>,
) -> Result<Envelope<DeliveryView>, ApiError> {
    let id = webhook_id(&id)?;
    let delivery_id: WebhookDeliveryId = parse_id("deliveryId", &delivery_id)?;
    let found = state.giftify().webhook_delivery(&id, &delivery_id).await?;
    Ok(ok(DeliveryView::from(&found)))
}

/// Send a delivery again now, from the start of the retry schedule, whatever its status.
#[utoipa::path(
    post, path = "/webhooks/{webhookId}/deliveries/{deliveryId}/retry", tag = "webhooks",
    security(("bearerAuth" = [])),
    params(("webhookId" = String, Path, description = "we_…"), ("deliveryId" = String, Path, description = "wd_…")),
    responses(
        (status = 202, description = "Queued; the attempts show in the delivery", body = Envelope<DeliveryView>),
        (status = 400, description = "VALIDATION_ERROR: malformed id, or the endpoint is disabled", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath((id, delivery_id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = webhook_id(&id)?;
    let delivery_id: WebhookDeliveryId = parse_id("deliveryId", &delivery_id)?;
    let replayed = state
        .giftify()
        .retry_webhook_delivery(&admin.id, &id, &delivery_id)
        .await?;
    Ok((StatusCode::ACCEPTED, ok(DeliveryView::from(&replayed))).into_response())
}

/// Send every event of the endpoint's types since a time again.
///
/// In the order they were recorded, one bounded step per call (at most 100 events sent and
/// 2,000 read): call again with `after` set to `nextCursor` while `hasMore`. A delivery of the
/// same event that exists already is replayed rather than duplicated.
#[utoipa::path(
    post, path = "/webhooks/{webhookId}/recover", tag = "webhooks",
    security(("bearerAuth" = [])),
    params(("webhookId" = String, Path, description = "we_…")),
    request_body = RecoverRequest,
    responses(
        (status = 202, description = "Queued", body = Envelope<RecoveredData>),
        (status = 400, description = "VALIDATION_ERROR: since, after, or the endpoint is disabled", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub async fn recover(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RecoverRequest>,
) -> Result<Response, ApiError> {
    let since = chrono::DateTime::parse_from_rfc3339(&body.since)
        .map_err(|_| ApiError::validation("since", "must be an RFC 3339 time"))?
        .with_timezone(&chrono::Utc);
    let step = state
        .giftify()
        .recover_webhook(&admin.id, &webhook_id(&id)?, since, body.after.as_deref())
        .await?;
    let data = RecoveredData {
        recovered: step.recovered,
        next_cursor: step.next,
        has_more: step.has_more,
    };
    Ok((StatusCode::ACCEPTED, ok(data)).into_response())
}
