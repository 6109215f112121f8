//! `/cart`: the caller's cart: view, the unified add/update/remove edit, and clear.

use crate::AppState;
use crate::dto::MessageData;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, AuthUser, parse_id};
use crate::response::{Envelope, ok, validated};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::{delete, get, put};
use giftify_shared::cart::Cart;
use giftify_shared::ids::VariantId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The `/cart` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cart", get(cart))
        .route("/cart/manage", put(manage))
        .route("/cart/clear", delete(clear))
}

/// The cart with its summary.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartData {
    pub items: Vec<CartItemView>,
    pub summary: CartSummary,
}

/// One cart line, at the price stored when it was last written.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartItemView {
    pub variant_id: String,
    pub product_id: String,
    pub product_name: String,
    pub variant_name: String,
    pub quantity: u32,
    /// In paise.
    pub unit_price: i64,
    pub total_price: i64,
    /// Current stock of the variant (0 when it no longer exists).
    pub stock_available: i64,
}

/// Totals of the cart.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartSummary {
    pub total_items: u64,
    /// In paise.
    pub total_amount: i64,
    #[schema(example = "₹950.00")]
    pub total_amount_formatted: String,
}

/// The result of a cart edit.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartManageData {
    #[schema(example = "Cart updated successfully")]
    pub message: String,
    pub cart_summary: CartTotals,
}

/// Totals after an edit.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartTotals {
    pub total_items: u64,
    pub total_amount: i64,
}

/// Sets a line's quantity; 0 removes the line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CartManageRequest {
    #[schema(example = "var_01HXXXXXXXXXXXXXXXXXXXXXXX")]
    pub variant_id: String,
    /// 0 removes the line; otherwise within the variant's min/max order quantity.
    #[schema(example = 2, minimum = 0, maximum = 40)]
    pub quantity: i64,
}

/// The caller's cart, with current stock per line.
///
/// The answer carries an `ETag` of its data and `Cache-Control: private, no-cache`; a read
/// with `If-None-Match` naming the current tag answers `304 Not Modified` without a body.
#[utoipa::path(
    get, path = "/cart", tag = "cart",
    security(("bearerAuth" = [])),
    params(("If-None-Match" = Option<String>, Header, description = "A tag of an earlier answer: 304 when nothing changed since")),
    responses(
        (status = 200, description = "The cart", body = Envelope<CartData>,
            headers(
                ("ETag" = String, description = "Tag of the answer's data; send it back in If-None-Match"),
                ("Cache-Control" = String, description = "`private, no-cache`"),
            )),
        (status = 304, description = "Not Modified: unchanged since the If-None-Match tag",
            headers(("ETag" = String, description = "The current tag"))),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
    )
)]
pub async fn cart(
    State(state): State<AppState>,
    user: AuthUser,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let giftify = state.giftify();
    let cart = giftify.cart(&user.id).await?;
    let stock = giftify.cart_stock(&cart).await?;
    let total = cart.total_amount()?;
    let items = cart
        .lines
        .iter()
        .map(|line| CartItemView {
            variant_id: line.variant_id.to_string(),
            product_id: line.product_id.to_string(),
            product_name: line.product_name.clone(),
            variant_name: line.variant_name.clone(),
            quantity: line.quantity,
            unit_price: line.unit_price.get(),
            total_price: line.total_price().get(),
            stock_available: stock
                .iter()
                .find(|(id, _)| *id == line.variant_id)
                .map_or(0, |(_, stock)| *stock),
        })
        .collect();
    let data = CartData {
        items,
        summary: CartSummary {
            total_items: cart.total_items(),
            total_amount: total.get(),
            total_amount_formatted: total.formatted(),
        },
    };
    validated(&data, request.get(header::IF_NONE_MATCH))
}

/// Add, update or remove a cart line (the seed's unified edit).
#[utoipa::path(
    put, path = "/cart/manage", tag = "cart",
    security(("bearerAuth" = [])),
    request_body = CartManageRequest,
    responses(
        (status = 200, description = "The cart's new totals", body = Envelope<CartManageData>),
        (status = 400, description = "VALIDATION_ERROR: bad variant id or quantity", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND: no such active variant", body = ErrorEnvelope),
        (status = 409, description = "CART_LOCKED (an order is checking the cart out) or OUT_OF_STOCK", body = ErrorEnvelope),
    )
)]
pub async fn manage(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<CartManageRequest>,
) -> Result<Envelope<CartManageData>, ApiError> {
    let variant: VariantId = parse_id("variantId", &body.variant_id)?;
    let cart = state
        .giftify()
        .set_cart_quantity(&user.id, &variant, body.quantity)
        .await?;
    Ok(ok(CartManageData {
        message: "Cart updated successfully".into(),
        cart_summary: totals(&cart)?,
    }))
}

/// Empty the cart.
#[utoipa::path(
    delete, path = "/cart/clear", tag = "cart",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Cleared", body = Envelope<MessageData>),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 409, description = "CART_LOCKED", body = ErrorEnvelope),
    )
)]
pub async fn clear(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Envelope<MessageData>, ApiError> {
    state.giftify().clear_cart(&user.id).await?;
    Ok(ok(MessageData::new("Cart cleared")))
}

fn totals(cart: &Cart) -> Result<CartTotals, ApiError> {
    Ok(CartTotals {
        total_items: cart.total_items(),
        total_amount: cart.total_amount()?.get(),
    })
}
