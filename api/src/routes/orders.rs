//! `/orders`: place (202, idempotent), list, detail (polled while not final), cancel
//! (idempotent) and the audited reveal of a gift card's number and PIN.

use crate::AppState;
use crate::dto::{OrderStatusDto, Pagination, UserOrderListQuery};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiPath, ApiQuery, AuthUser, JsonBody, PreferWait, parse_id};
use crate::idempotency::{answer, keyed_request};
use crate::lambda_metrics::BusinessEvent::{OrderAccepted, OrderCancelled};
use crate::response::{Envelope, no_store, ok, validated};
use crate::wire_time::{date, timestamp};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use giftify_shared::ids::{GiftCardId, OrderId, VariantId};
use giftify_shared::labels::{ClientReference, Metadata, OrderLabels};
use giftify_shared::order::{LineRequest, Order, OrderLine, OrderStatus};
use giftify_shared::rate_limits::LimitedAction;
use giftify_shared::usecases::{Keyed, OrderRequest, Placed};
use giftify_shared::vault::GiftCard;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The `/orders` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders/create", post(create))
        .route("/orders", get(list))
        .route("/orders/{orderId}", get(detail))
        .route("/orders/{orderId}/cancel", post(cancel))
        .route(
            "/orders/{orderId}/gift-cards/{giftCardId}/reveal",
            post(reveal),
        )
        .route(
            "/orders/{orderId}/gift-cards/{giftCardId}/return",
            post(return_card),
        )
}

/// What to order: `items`, or (without `items`) the cart.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateOrderRequest {
    /// The items to buy. Omit to check out the cart (which stays locked until the order is
    /// final).
    pub items: Option<Vec<OrderItemRequest>>,
    /// Your own name for the order: 1–100 printable ASCII characters, unique among your
    /// orders, kept for good. A second create with the same reference and the same request
    /// answers the first order (200) and moves no money; with another request it is
    /// `CLIENT_REFERENCE_REUSED`. Find the order again with `GET /orders?clientReference=`.
    #[schema(example = "po-2026-0042")]
    pub client_reference: Option<String>,
    /// Up to 20 string pairs stored with the order, answered with it and carried in its
    /// events. Keys: 1–40 characters of letters, digits, `_`, `.`, `-`; values: up to 500
    /// characters, no control characters.
    #[schema(example = json!({"costCentre": "marketing"}))]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// One line of an order request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OrderItemRequest {
    #[schema(example = "var_01HXXXXXXXXXXXXXXXXXXXXXXX")]
    pub variant_id: String,
    /// Within the variant's min/max order quantity; at most 40 cards per order.
    #[schema(example = 4, minimum = 1, maximum = 40)]
    pub quantity: i64,
}

/// An accepted order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreatedData {
    #[schema(example = "order_01HXXXXXXXXXXXXXXXXXXXXXXX")]
    pub order_id: String,
    pub status: OrderStatusDto,
    /// In paise; debited from the wallet.
    pub total_amount: i64,
    pub items: Vec<OrderCreatedItem>,
    /// Your reference of the order; null when you gave none.
    pub client_reference: Option<String>,
    /// Your metadata of the order.
    pub metadata: BTreeMap<String, String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A line of an accepted order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreatedItem {
    pub variant_id: String,
    pub product_name: String,
    pub variant_name: String,
    pub quantity: u32,
    pub unit_price: i64,
    pub total_price: i64,
}

/// One order in a list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderSummaryView {
    pub order_id: String,
    pub status: OrderStatusDto,
    pub total_amount: i64,
    pub paid_amount: i64,
    pub refund_amount: i64,
    /// Gift cards requested.
    pub item_count: u32,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When fulfillment finished; null until then.
    #[schema(format = DateTime)]
    pub fulfilled_at: Option<String>,
    /// Your reference of the order; null when you gave none.
    pub client_reference: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrdersData {
    pub orders: Vec<OrderSummaryView>,
    pub pagination: Pagination,
}

/// An order in full.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderDetailData {
    pub order_id: String,
    pub status: OrderStatusDto,
    pub total_amount: i64,
    /// Debited at order time; always `fulfilled value + refundAmount` once final.
    pub paid_amount: i64,
    pub refund_amount: i64,
    pub items: Vec<OrderLineView>,
    pub fulfillment_details: FulfillmentDetailsView,
    /// Issued cards, numbers masked; reveal one with
    /// `POST /orders/{orderId}/gift-cards/{giftCardId}/reveal`.
    pub gift_cards: Vec<GiftCardView>,
    /// Your reference of the order; null when you gave none.
    pub client_reference: Option<String>,
    pub metadata: BTreeMap<String, String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// An order line with its fulfillment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLineView {
    pub variant_id: String,
    pub product_name: String,
    pub variant_name: String,
    pub unit_price: i64,
    pub requested_quantity: u32,
    pub fulfilled_quantity: u32,
    /// `unitPrice × requestedQuantity`.
    pub total_price: i64,
    /// `unitPrice × fulfilledQuantity`.
    pub fulfilled_price: i64,
    /// `unitPrice × unfulfilled units` once the order is final; 0 before.
    pub refunded_price: i64,
}

/// The seed's `fulfillmentDetails`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentDetailsView {
    #[schema(format = DateTime)]
    pub attempted_at: Option<String>,
    #[schema(format = DateTime)]
    pub fulfilled_at: Option<String>,
    pub partial_fulfillment: bool,
    pub refund_processed: bool,
    /// Why the order was given up and refunded in full (by an operator, or automatically when
    /// it was not fulfilled in time); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<String>,
}

/// An issued gift card, number masked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GiftCardView {
    #[schema(example = "gc_01HXXXXXXXXXXXXXXXXXXXXXXX")]
    pub gift_card_id: String,
    pub product_name: String,
    pub variant_name: String,
    /// Face value in whole rupees.
    pub denomination: i64,
    #[schema(example = "****-****-****-3456")]
    pub gift_card_number: String,
    #[schema(example = "ACTIVE")]
    pub status: String,
    #[schema(example = "2025-01-15", format = Date)]
    pub expiry_date: String,
    /// When its owner first revealed it; a revealed card cannot be returned.
    #[schema(format = DateTime)]
    pub revealed_at: Option<String>,
}

/// A cancelled order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelData {
    pub order_id: String,
    pub status: OrderStatusDto,
    /// In paise: the whole payment, back in the wallet.
    pub refund_amount: i64,
    #[schema(example = "Order cancelled and refund processed")]
    pub message: String,
}

/// A card's secrets. No `Debug`: it holds them in plain text.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevealData {
    pub gift_card_id: String,
    pub product_name: String,
    pub variant_name: String,
    pub denomination: i64,
    #[schema(example = "1234-5678-9012-3456")]
    pub gift_card_number: String,
    #[schema(example = "123456")]
    pub gift_card_pin: String,
    #[schema(format = Date)]
    pub expiry_date: String,
}

/// The client's reference and metadata of an order, as every order answer shows them.
fn labels_of(order: &Order) -> (Option<String>, BTreeMap<String, String>) {
    (
        order
            .labels
            .client_reference
            .as_ref()
            .map(|r| r.as_str().to_string()),
        order.labels.metadata.pairs().clone(),
    )
}

/// The answer to a create: 202 for an order accepted now, also rendered when an idempotent
/// request replays (always as accepted, `PENDING`, whatever the order's status is now); 200
/// with the order's current status when its client reference found it.
pub fn placed(placed: Placed) -> Response {
    match placed {
        Placed::Accepted(order) => accepted(&order),
        Placed::Existing(order) => {
            let mut response = created_body(&order, order.status)
                .with_message("An order with this clientReference exists")
                .into_response();
            with_location(&mut response, &order);
            response
        }
    }
}

fn accepted(order: &Order) -> Response {
    let body =
        created_body(order, OrderStatus::Pending).with_message("Order accepted; poll its status");
    let mut response = (StatusCode::ACCEPTED, body).into_response();
    with_location(&mut response, order);
    response
}

fn with_location(response: &mut Response, order: &Order) {
    if let Ok(location) = HeaderValue::from_str(&format!("/orders/{}", order.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
}

fn created_body(order: &Order, status: OrderStatus) -> Envelope<OrderCreatedData> {
    let (client_reference, metadata) = labels_of(order);
    ok(OrderCreatedData {
        order_id: order.id.to_string(),
        status: status.into(),
        total_amount: order.total_amount.get(),
        items: order
            .items
            .iter()
            .map(|line| OrderCreatedItem {
                variant_id: line.variant_id.to_string(),
                product_name: line.product_name.clone(),
                variant_name: line.variant_name.clone(),
                quantity: line.requested_quantity,
                unit_price: line.unit_price.get(),
                total_price: line.total_price().get(),
            })
            .collect(),
        client_reference,
        metadata,
        created_at: timestamp(order.created_at),
    })
}

/// The answer to a cancel, also rendered when an idempotent request replays.
pub fn cancelled(order: &Order) -> Envelope<CancelData> {
    ok(CancelData {
        order_id: order.id.to_string(),
        status: order.status.into(),
        refund_amount: order.refund_amount.get(),
        message: "Order cancelled and refund processed".into(),
    })
}

impl From<&Order> for OrderSummaryView {
    fn from(order: &Order) -> Self {
        let (client_reference, metadata) = labels_of(order);
        OrderSummaryView {
            client_reference,
            metadata,
            order_id: order.id.to_string(),
            status: order.status.into(),
            total_amount: order.total_amount.get(),
            paid_amount: order.paid_amount.get(),
            refund_amount: order.refund_amount.get(),
            item_count: order.item_count(),
            created_at: timestamp(order.created_at),
            fulfilled_at: order.fulfillment.fulfilled_at.map(timestamp),
        }
    }
}

impl OrderLineView {
    fn new(line: &OrderLine, is_final: bool) -> Self {
        OrderLineView {
            variant_id: line.variant_id.to_string(),
            product_name: line.product_name.clone(),
            variant_name: line.variant_name.clone(),
            unit_price: line.unit_price.get(),
            requested_quantity: line.requested_quantity,
            fulfilled_quantity: line.fulfilled_quantity,
            total_price: line.total_price().get(),
            fulfilled_price: line.fulfilled_price().get(),
            refunded_price: if is_final {
                line.refunded_price().get()
            } else {
                0
            },
        }
    }
}

impl From<&GiftCard> for GiftCardView {
    fn from(card: &GiftCard) -> Self {
        GiftCardView {
            gift_card_id: card.id.to_string(),
            product_name: card.product_name.clone(),
            variant_name: card.variant_name.clone(),
            denomination: card.denomination,
            gift_card_number: card.masked_number(),
            status: card.status.as_str().to_string(),
            expiry_date: date(card.expiry_date),
            revealed_at: card.revealed_at.map(timestamp),
        }
    }
}

/// The typed order request (these items, or the cart) and the client's labels.
fn order_request(body: CreateOrderRequest) -> Result<(OrderRequest, OrderLabels), ApiError> {
    let labels = OrderLabels {
        client_reference: body
            .client_reference
            .as_deref()
            .map(ClientReference::parse)
            .transpose()?,
        metadata: Metadata::parse(body.metadata.unwrap_or_default())?,
    };
    let Some(items) = body.items else {
        return Ok((OrderRequest::Cart, labels));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let variant_id: VariantId =
                parse_id(&format!("items[{index}].variantId"), &item.variant_id)?;
            let quantity = u32::try_from(item.quantity).map_err(|_| {
                ApiError::validation(
                    &format!("items[{index}].quantity"),
                    format!(
                        "must be between 1 and {}",
                        giftify_shared::order::MAX_CARDS_PER_ORDER
                    ),
                )
            })?;
            Ok(LineRequest {
                variant_id,
                quantity,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()
        .map(|lines| (OrderRequest::Items(lines), labels))
}

/// Place an order: with `items`, those items; without, the cart.
///
/// Validates, debits the wallet and queues the order for fulfillment, then answers 202 with
/// `Location: /orders/{orderId}` at once. Poll that location until the status is final
/// (FULFILLED, PARTIALLY_FULFILLED, REFUNDED or CANCELLED); what cannot be fulfilled is refunded
/// to the wallet. Send an `Idempotency-Key` to make retries safe, or a `clientReference`,
/// which names the order for good: a create that repeats it answers the order it names.
#[utoipa::path(
    post, path = "/orders/create", tag = "orders",
    security(("bearerAuth" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 printable ASCII characters; scoped to the caller, kept 24 h")),
    request_body(content = Option<CreateOrderRequest>, description = "Omit the body, or send `{}`, to check out the cart"),
    responses(
        (status = 202, description = "Accepted and paid; fulfillment is queued", body = Envelope<OrderCreatedData>,
            headers(
                ("Location" = String, description = "/orders/{orderId}"),
                ("Idempotent-Replayed" = String, description = "`true` when this replays an earlier request with the same key"),
            )),
        (status = 200, description = "The order this `clientReference` already names, placed by the same request, with its status now; nothing was charged again", body = Envelope<OrderCreatedData>,
            headers(("Location" = String, description = "/orders/{orderId}"))),
        (status = 400, description = "VALIDATION_ERROR: empty or duplicate items, quantity bounds, more than 40 cards, unavailable variant, bad clientReference or metadata", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 409, description = "OUT_OF_STOCK, CART_EMPTY, CART_LOCKED, PRICE_CHANGED or IDEMPOTENCY_IN_PROGRESS", body = ErrorEnvelope),
        (status = 422, description = "INSUFFICIENT_BALANCE, IDEMPOTENCY_KEY_REUSED, or CLIENT_REFERENCE_REUSED (the reference names an order placed with other items or metadata)", body = ErrorEnvelope),
        (status = 429, description = "RATE_LIMITED: too many orders (GIFTIFY_USER_RATE_LIMITS) or the API key's budget is spent; see Retry-After", body = ErrorEnvelope,
            headers(("Retry-After" = i64, description = "Seconds until the budget's window ends"))),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    state
        .giftify()
        .spend_budget(LimitedAction::PlaceOrder, user.id.as_str())
        .await?;
    let (request, labels) = order_request(body.parse()?)?;
    let (giftify, user) = (state.giftify(), &user.id);
    let mark = |done: Placed| match done {
        Placed::Accepted(_) => OrderAccepted.mark(placed(done)),
        Placed::Existing(_) => placed(done),
    };
    Ok(
        match keyed_request(user, &headers, "orders.create", body.value())? {
            None => mark(
                giftify
                    .place_order_holding(user, request, labels, None)
                    .await?,
            ),
            Some(key) => match giftify
                .place_order_keyed(user, request, labels, key)
                .await?
            {
                Keyed::Ran(done) => mark(done),
                replayed => answer(replayed, placed),
            },
        },
    )
}

/// The caller's orders, newest first.
#[utoipa::path(
    get, path = "/orders", tag = "orders",
    security(("bearerAuth" = [])),
    params(UserOrderListQuery),
    responses(
        (status = 200, description = "A page of orders; with `clientReference`, the one order holding it or none", body = Envelope<OrdersData>),
        (status = 400, description = "VALIDATION_ERROR: bad page, limit, status or clientReference", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<UserOrderListQuery>,
) -> Result<Envelope<OrdersData>, ApiError> {
    let (page, status, reference) = query.parse()?;
    let found = match reference {
        None => state.giftify().orders_of(&user.id, status, page).await?,
        Some(reference) => {
            state
                .giftify()
                .orders_by_reference(&user.id, &reference, status, page)
                .await?
        }
    };
    Ok(ok(OrdersData {
        orders: found.items.iter().map(OrderSummaryView::from).collect(),
        pagination: Pagination::from(&found),
    }))
}

/// One of the caller's orders, with its cards (numbers masked).
///
/// While the order is not final the response carries `Retry-After: 1`. Instead of polling, a
/// client may send `Prefer: wait=<seconds>` (RFC 7240): the answer then comes as soon as the
/// order is final, or when the wait ends (capped by `GIFTIFY_ORDER_WAIT_MAX_SECS`, 20 s by
/// default) with the order as it is then.
///
/// The answer carries an `ETag` of its data and `Cache-Control: private, no-cache`; a read
/// with `If-None-Match` naming the current tag answers `304 Not Modified` without a body.
#[utoipa::path(
    get, path = "/orders/{orderId}", tag = "orders",
    security(("bearerAuth" = [])),
    params(
        ("orderId" = String, Path, description = "order_…"),
        ("If-None-Match" = Option<String>, Header, description = "A tag of an earlier answer: 304 when the order has not changed since"),
        ("Prefer" = Option<String>, Header, description = "`wait=<seconds>`: answer once the order is final, waiting at most this long (capped by the server); other preferences are ignored"),
    ),
    responses(
        (status = 200, description = "The order", body = Envelope<OrderDetailData>,
            headers(
                ("Retry-After" = u32, description = "Seconds until the next poll; only while the order is not final"),
                ("ETag" = String, description = "Tag of the order as shown; send it back in If-None-Match"),
                ("Cache-Control" = String, description = "`private, no-cache`"),
            )),
        (status = 304, description = "Not Modified: the order is as the If-None-Match tag shows it",
            headers(("ETag" = String, description = "The current tag"))),
        (status = 400, description = "VALIDATION_ERROR: malformed order id", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND, also for another user's order", body = ErrorEnvelope),
    )
)]
pub async fn detail(
    State(state): State<AppState>,
    user: AuthUser,
    PreferWait(wait): PreferWait,
    request: HeaderMap,
    ApiPath(order_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let order_id: OrderId = parse_id("orderId", &order_id)?;
    let giftify = state.giftify();
    let order = match wait {
        Some(wait) => giftify.order_when_final(&user.id, &order_id, wait).await?,
        None => giftify.order_of(&user.id, &order_id).await?,
    };
    let cards = giftify.order_cards(&order).await?;
    let is_final = order.status.is_final();
    let (client_reference, metadata) = labels_of(&order);
    let data = OrderDetailData {
        order_id: order.id.to_string(),
        status: order.status.into(),
        total_amount: order.total_amount.get(),
        paid_amount: order.paid_amount.get(),
        refund_amount: order.refund_amount.get(),
        items: order
            .items
            .iter()
            .map(|line| OrderLineView::new(line, is_final))
            .collect(),
        fulfillment_details: FulfillmentDetailsView {
            attempted_at: order.fulfillment.attempted_at.map(timestamp),
            fulfilled_at: order.fulfillment.fulfilled_at.map(timestamp),
            partial_fulfillment: order.fulfillment.partial_fulfillment,
            refund_processed: order.fulfillment.refund_processed,
            refund_reason: order.fulfillment.refund_reason.clone(),
        },
        gift_cards: cards.iter().map(GiftCardView::from).collect(),
        client_reference,
        metadata,
        created_at: timestamp(order.created_at),
        updated_at: timestamp(order.updated_at),
    };
    let mut response = validated(&data, request.get(header::IF_NONE_MATCH))?;
    if !is_final {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Ok(response)
}

/// Cancel a PENDING order for a full refund. Send an `Idempotency-Key` to make retries safe.
#[utoipa::path(
    post, path = "/orders/{orderId}/cancel", tag = "orders",
    security(("bearerAuth" = [])),
    params(
        ("orderId" = String, Path, description = "order_…"),
        ("Idempotency-Key" = Option<String>, Header, description = "1–255 printable ASCII characters; scoped to the caller, kept 24 h"),
    ),
    responses(
        (status = 200, description = "Cancelled and refunded", body = Envelope<CancelData>,
            headers(("Idempotent-Replayed" = String, description = "`true` when this replays an earlier request with the same key"))),
        (status = 400, description = "VALIDATION_ERROR: malformed order id or key", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND, also for another user's order", body = ErrorEnvelope),
        (status = 409, description = "ORDER_NOT_CANCELLABLE (fulfillment has started) or IDEMPOTENCY_IN_PROGRESS", body = ErrorEnvelope),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = ErrorEnvelope),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiPath(order_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let order_id: OrderId = parse_id("orderId", &order_id)?;
    // The request is the order being cancelled: one key cannot cancel two orders.
    let request = json!({ "orderId": order_id.as_str() });
    let (giftify, user) = (state.giftify(), &user.id);
    Ok(
        match keyed_request(user, &headers, "orders.cancel", &request)? {
            None => OrderCancelled
                .mark(cancelled(&giftify.cancel_order(user, &order_id).await?).into_response()),
            Some(key) => match giftify.cancel_order_keyed(user, &order_id, key).await? {
                Keyed::Ran(order) => OrderCancelled.mark(cancelled(&order).into_response()),
                replayed => answer(replayed, |order| cancelled(&order).into_response()),
            },
        },
    )
}

/// Reveal a card's full number and PIN. Every reveal is audited; the response must not be
/// cached (`Cache-Control: no-store`).
#[utoipa::path(
    post, path = "/orders/{orderId}/gift-cards/{giftCardId}/reveal", tag = "orders",
    security(("bearerAuth" = [])),
    params(
        ("orderId" = String, Path, description = "order_…"),
        ("giftCardId" = String, Path, description = "gc_…"),
    ),
    responses(
        (status = 200, description = "The card's secrets", body = Envelope<RevealData>,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "VALIDATION_ERROR: malformed id", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND, also for another user's card", body = ErrorEnvelope),
        (status = 409, description = "CARD_CANCELLED: the card was returned", body = ErrorEnvelope),
        (status = 429, description = "RATE_LIMITED: too many reveals (GIFTIFY_USER_RATE_LIMITS) or the API key's budget is spent; see Retry-After", body = ErrorEnvelope,
            headers(("Retry-After" = i64, description = "Seconds until the budget's window ends"))),
    )
)]
pub async fn reveal(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((order_id, card_id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    state
        .giftify()
        .spend_budget(LimitedAction::RevealCard, user.id.as_str())
        .await?;
    let order_id: OrderId = parse_id("orderId", &order_id)?;
    let card_id: GiftCardId = parse_id("giftCardId", &card_id)?;
    let (card, secrets) = state
        .giftify()
        .reveal_card(&user.id, &order_id, &card_id)
        .await?;
    Ok(no_store(ok(RevealData {
        gift_card_id: card.id.to_string(),
        product_name: card.product_name.clone(),
        variant_name: card.variant_name.clone(),
        denomination: card.denomination,
        gift_card_number: secrets.number.expose_secret().to_string(),
        gift_card_pin: secrets.pin.expose_secret().to_string(),
        expiry_date: date(card.expiry_date),
    })))
}

/// A returned card, and the wallet after its refund.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnData {
    pub gift_card_id: String,
    #[schema(example = "CANCELLED")]
    pub status: String,
    /// The card's price, back in the wallet, in paise.
    pub refund_amount: i64,
    /// The wallet balance after the refund, in paise.
    pub balance: i64,
}

/// Return a card you never revealed, within 24 hours of its issue: it is cancelled, its price
/// comes back to your wallet as a REFUND, and a brand code goes back to Giftify's stock. Of a
/// reveal and a return racing, exactly one wins.
#[utoipa::path(
    post, path = "/orders/{orderId}/gift-cards/{giftCardId}/return", tag = "orders",
    security(("bearerAuth" = [])),
    params(
        ("orderId" = String, Path, description = "order_…"),
        ("giftCardId" = String, Path, description = "gc_…"),
    ),
    responses(
        (status = 200, description = "Returned and refunded", body = Envelope<ReturnData>),
        (status = 400, description = "VALIDATION_ERROR: malformed id", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND, also for another user's card", body = ErrorEnvelope),
        (status = 409, description = "CARD_REVEALED, RETURN_WINDOW_CLOSED, CARD_REDEEMED, CARD_EXPIRED or CARD_CANCELLED", body = ErrorEnvelope),
    )
)]
pub async fn return_card(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((order_id, card_id)): ApiPath<(String, String)>,
) -> Result<Envelope<ReturnData>, ApiError> {
    let order_id: OrderId = parse_id("orderId", &order_id)?;
    let card_id: GiftCardId = parse_id("giftCardId", &card_id)?;
    let giftify = state.giftify();
    let card = giftify.return_card(&user.id, &order_id, &card_id).await?;
    let balance = giftify.balance(&user.id).await?;
    Ok(ok(ReturnData {
        gift_card_id: card.id.to_string(),
        status: card.status.as_str().to_string(),
        refund_amount: card.purchase_price.get(),
        balance: balance.get(),
    })
    .with_message("Gift card returned and refunded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_without_items_checks_out_the_cart() {
        assert!(matches!(
            order_request(CreateOrderRequest::default()),
            Ok((OrderRequest::Cart, labels)) if labels == OrderLabels::default()
        ));
    }

    #[test]
    fn order_items_are_typed_with_field_level_errors() {
        let variant = VariantId::generate();
        let request = CreateOrderRequest {
            items: Some(vec![OrderItemRequest {
                variant_id: variant.to_string(),
                quantity: 3,
            }]),
            ..CreateOrderRequest::default()
        };
        match order_request(request) {
            Ok((OrderRequest::Items(lines), _)) => {
                assert_eq!(
                    lines,
                    vec![LineRequest {
                        variant_id: variant.clone(),
                        quantity: 3
                    }]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        for (variant_id, quantity, field) in [
            ("nope", 1, "items[0].variantId"),
            (variant.as_str(), -1, "items[0].quantity"),
            (variant.as_str(), i64::MAX, "items[0].quantity"),
        ] {
            let request = CreateOrderRequest {
                items: Some(vec![OrderItemRequest {
                    variant_id: variant_id.into(),
                    quantity,
                }]),
                ..CreateOrderRequest::default()
            };
            let error = order_request(request).expect_err("invalid");
            let body: serde_json::Value = serde_json::from_str(&error.render().body).expect("json");
            assert_eq!(body["error"]["details"]["field"], field);
        }
    }

    #[test]
    fn labels_are_typed_with_field_level_errors() {
        let request = CreateOrderRequest {
            client_reference: Some("po-7".into()),
            metadata: Some([("campaign".to_string(), "diwali".to_string())].into()),
            ..CreateOrderRequest::default()
        };
        let (_, labels) = order_request(request).expect("valid labels");
        assert_eq!(
            labels.client_reference.as_ref().map(|r| r.as_str()),
            Some("po-7")
        );
        assert_eq!(labels.metadata.get("campaign"), Some("diwali"));
        for (request, field) in [
            (
                CreateOrderRequest {
                    client_reference: Some("with space".into()),
                    ..CreateOrderRequest::default()
                },
                "clientReference",
            ),
            (
                CreateOrderRequest {
                    metadata: Some([("bad key".to_string(), "v".to_string())].into()),
                    ..CreateOrderRequest::default()
                },
                "metadata",
            ),
        ] {
            let error = order_request(request).expect_err("invalid");
            let body: serde_json::Value = serde_json::from_str(&error.render().body).expect("json");
            assert_eq!(body["error"]["details"]["field"], field);
        }
    }
}
