//! `/api-keys`: a signed-in person creates keys for their servers (the secret shown once),
//! lists them with their last use, and revokes them. Keys cannot manage keys.

use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, PersonUser, parse_id};
use crate::response::{Envelope, ok};
use crate::wire_time::timestamp;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use giftify_shared::api_keys::{ApiKey, ApiKeyId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The `/api-keys` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api-keys", get(list).post(create))
        .route("/api-keys/{keyId}", delete(revoke))
}

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateApiKeyRequest {
    /// What the key is for, 1–100 characters.
    #[schema(example = "payouts server")]
    pub name: String,
    /// What it may do: `orders:read`, `orders:write`, `wallet:read`, `wallet:write`,
    /// `cards:read`, `cards:write`, `cards:reveal`, `cart`.
    #[schema(example = json!(["orders:write", "orders:read"]))]
    pub scopes: Vec<String>,
}

/// A key as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    #[schema(example = "key_01HXXXXXXXXXXXXXXXXXXXXXXX")]
    pub key_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// The key's first characters, to tell keys apart.
    #[schema(example = "gk_live_01HXXXXX")]
    pub prefix: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// To the minute; null until first used.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

/// A new key with its secret, shown this once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKeyData {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// The key to send as `Authorization: Bearer <key>`. Store it now: Giftify keeps only its
    /// hash and cannot show it again.
    #[schema(example = "gk_live_01HXXXXXXXXXXXXXXXXXXXXXXX_3f…")]
    pub secret: String,
}

/// The caller's keys.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeysData {
    pub api_keys: Vec<ApiKeyView>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(key: &ApiKey) -> Self {
        ApiKeyView {
            key_id: key.id.to_string(),
            name: key.name.clone(),
            scopes: key.scopes.iter().map(|s| s.as_str().to_string()).collect(),
            prefix: key.prefix.clone(),
            created_at: timestamp(key.created_at),
            last_used_at: key.last_used_at.map(timestamp),
            revoked_at: key.revoked_at.map(timestamp),
        }
    }
}

/// Create an API key for your servers.
///
/// The answer holds the key's secret, once. Send it as `Authorization: Bearer gk_…` wherever
/// an access token is accepted; it acts as you, within its scopes and its request budget
/// (`GIFTIFY_API_KEY_RATE_LIMIT` requests per 10 seconds, 100 unless the deployment says
/// otherwise). Keys are managed by signed-in people only.
#[utoipa::path(
    post, path = "/api-keys", tag = "api-keys",
    security(("bearerAuth" = [])),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "Created; the secret is in this answer only", body = Envelope<CreatedApiKeyData>),
        (status = 400, description = "VALIDATION_ERROR: name, unknown or no scopes, or 20 live keys already", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: an API key cannot manage keys", body = ErrorEnvelope),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    person: PersonUser,
    ApiJson(body): ApiJson<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    let issued = state
        .giftify()
        .create_api_key(&person.id, &body.name, &body.scopes)
        .await?;
    let data = CreatedApiKeyData {
        key: ApiKeyView::from(&issued.key),
        secret: issued.reveal().to_string(),
    };
    Ok((
        StatusCode::CREATED,
        ok(data).with_message("Store the secret now; it is not shown again"),
    )
        .into_response())
}

/// Your API keys, newest first, revoked ones included; never their secrets.
#[utoipa::path(
    get, path = "/api-keys", tag = "api-keys",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The keys", body = Envelope<ApiKeysData>),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: an API key cannot manage keys", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    person: PersonUser,
) -> Result<Envelope<ApiKeysData>, ApiError> {
    let keys = state.giftify().api_keys(&person.id).await?;
    Ok(ok(ApiKeysData {
        api_keys: keys.iter().map(ApiKeyView::from).collect(),
    }))
}

/// Revoke one of your API keys: refused from the next request on. Revoking again answers the
/// key as it was revoked.
#[utoipa::path(
    delete, path = "/api-keys/{keyId}", tag = "api-keys",
    security(("bearerAuth" = [])),
    params(("keyId" = String, Path, description = "key_…")),
    responses(
        (status = 200, description = "Revoked", body = Envelope<ApiKeyView>),
        (status = 400, description = "VALIDATION_ERROR: malformed key id", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: an API key cannot manage keys", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND, also for another user's key", body = ErrorEnvelope),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    person: PersonUser,
    ApiPath(key_id): ApiPath<String>,
) -> Result<Envelope<ApiKeyView>, ApiError> {
    let key_id: ApiKeyId = parse_id("keyId", &key_id)?;
    let key = state.giftify().revoke_api_key(&person.id, &key_id).await?;
    Ok(ok(ApiKeyView::from(&key)))
}
