//! `/admin/dead-letters`: the orders whose message exhausted its receives, and the two ways out
//! of the dead-letter queue — a redrive (try again) or a refund (give up, money back). What the
//! CLI's `giftify dlq` does, over the API, for admins.

use crate::AppState;
use crate::dto::OrderStatusDto;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{AdminUser, ApiJson, ApiPath, ApiQuery, parse_id, parse_int};
use crate::response::{Envelope, ok};
use crate::wire_time::timestamp;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use giftify_shared::audit::Actor;
use giftify_shared::ids::OrderId;
use giftify_shared::order::{DeadLetter, DeadLetterBody, Order, RefundReason};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The `/admin/dead-letters` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/dead-letters", get(list))
        .route("/admin/dead-letters/{orderId}/redrive", post(redrive))
        .route("/admin/dead-letters/{orderId}/refund", post(refund))
}

/// `?limit=` of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Most letters, 1–100 (default 50).
    pub limit: Option<String>,
}

/// The dead letters, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLettersData {
    pub dead_letters: Vec<DeadLetterView>,
}

/// One dead letter and the order it carries, as the order stands now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    pub message_id: String,
    /// `None` for a message that is not an order message (remove it with `giftify dlq delete`).
    pub order_id: Option<String>,
    pub user_id: Option<String>,
    /// The order's status now: a final one means a redrive has nothing left to do.
    pub order_status: Option<OrderStatusDto>,
    /// What the order holds of the customer's money, in paise.
    pub paid_amount: Option<i64>,
    pub receive_count: u32,
    /// The error of the last failed handling.
    pub last_error: Option<String>,
    /// When the last handling failed: since when the letter is dead.
    #[schema(format = DateTime)]
    pub dead_since: Option<String>,
    /// The size of a message that is not an order message.
    pub unreadable_bytes: Option<usize>,
}

impl DeadLetterView {
    fn of(letter: &DeadLetter, order: Option<&Order>) -> Self {
        let message = letter.order();
        DeadLetterView {
            message_id: letter.message_id.clone(),
            order_id: message.map(|m| m.order_id.to_string()),
            user_id: message.map(|m| m.user_id.to_string()),
            order_status: order.map(|o| o.status.into()),
            paid_amount: order.map(|o| o.paid_amount.get()),
            receive_count: letter.receive_count,
            last_error: letter.last_error.clone(),
            dead_since: letter.dead_at.map(timestamp),
            unreadable_bytes: match letter.body {
                DeadLetterBody::Unreadable { bytes } => Some(bytes),
                DeadLetterBody::Order(_) => None,
            },
        }
    }
}

/// Why the order is given up; shown to its owner and sent in its `order.refunded` event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefundRequest {
    #[schema(
        min_length = 1,
        max_length = 500,
        example = "the brand's API is down for the day"
    )]
    pub reason: String,
}

/// The order after the refund.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundedData {
    pub order_id: String,
    pub user_id: String,
    /// REFUNDED.
    pub status: OrderStatusDto,
    /// Everything the order paid, in paise, now back in the wallet.
    pub refund_amount: i64,
    pub refund_reason: Option<String>,
    /// Dead letters of the order removed with the refund.
    pub removed_dead_letters: usize,
}

/// List dead letters, oldest first, with each order's current status.
#[utoipa::path(
    get, path = "/admin/dead-letters", tag = "admin",
    security(("bearerAuth" = [])),
    params(DeadLetterQuery),
    responses(
        (status = 200, description = "The dead letters", body = Envelope<DeadLettersData>),
        (status = 400, description = "VALIDATION_ERROR: a bad limit", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(query): ApiQuery<DeadLetterQuery>,
) -> Result<Envelope<DeadLettersData>, ApiError> {
    let limit = parse_int("limit", query.limit.as_deref())?.unwrap_or(50);
    let limit = u32::try_from(limit)
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| ApiError::validation("limit", "must be between 1 and 100"))?;
    let letters = state.giftify().dead_letters_with_orders(limit).await?;
    Ok(ok(DeadLettersData {
        dead_letters: letters
            .iter()
            .map(|(letter, order)| DeadLetterView::of(letter, order.as_ref()))
            .collect(),
    }))
}

/// Send the order's dead letter back to the queue: the worker tries it again from the start.
#[utoipa::path(
    post, path = "/admin/dead-letters/{orderId}/redrive", tag = "admin",
    security(("bearerAuth" = [])),
    params(("orderId" = String, Path, description = "order_…")),
    responses(
        (status = 202, description = "Back in the queue", body = Envelope<DeadLetterView>),
        (status = 400, description = "VALIDATION_ERROR: a malformed order id", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND: no dead letter carries the order", body = ErrorEnvelope),
    )
)]
pub async fn redrive(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath(order_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let order_id: OrderId = parse_id("orderId", &order_id)?;
    let letter = state
        .giftify()
        .redrive_order(&Actor::Admin(admin.id), &order_id)
        .await?;
    Ok((StatusCode::ACCEPTED, ok(DeadLetterView::of(&letter, None))).into_response())
}

/// Give the order up: REFUNDED with everything it paid back in the wallet and the reason kept,
/// its `order.refunded` event sent, its dead letters removed. Works for any order that is not
/// final, dead-lettered or stuck anywhere else.
#[utoipa::path(
    post, path = "/admin/dead-letters/{orderId}/refund", tag = "admin",
    security(("bearerAuth" = [])),
    params(("orderId" = String, Path, description = "order_…")),
    request_body = RefundRequest,
    responses(
        (status = 200, description = "Refunded", body = Envelope<RefundedData>),
        (status = 400, description = "VALIDATION_ERROR: a malformed order id, or a blank or over-long reason", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND: no such order", body = ErrorEnvelope),
        (status = 409, description = "ORDER_ALREADY_FINAL: the order finished first (details.status)", body = ErrorEnvelope),
    )
)]
pub async fn refund(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath(order_id): ApiPath<String>,
    ApiJson(body): ApiJson<RefundRequest>,
) -> Result<Envelope<RefundedData>, ApiError> {
    let order_id: OrderId = parse_id("orderId", &order_id)?;
    let reason = RefundReason::given(&body.reason)?;
    let (order, removed) = state
        .giftify()
        .refund_unfinished(&Actor::Admin(admin.id), &order_id, reason)
        .await?;
    Ok(ok(RefundedData {
        order_id: order.id.to_string(),
        user_id: order.user_id.to_string(),
        status: order.status.into(),
        refund_amount: order.refund_amount.get(),
        refund_reason: order.fulfillment.refund_reason.clone(),
        removed_dead_letters: removed,
    })
    .with_message("Order refunded"))
}
