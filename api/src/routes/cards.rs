//! `/gift-cards`: the signed-in user's cards across orders, and a Giftify card redeemed into
//! their wallet; and the admin's view of who revealed a card.

use crate::AppState;
use crate::dto::{Pagination, page_request};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{AdminUser, ApiJson, ApiPath, ApiQuery, AuthUser, parse_id};
use crate::response::{Envelope, ok};
use crate::routes::orders::GiftCardView;
use crate::wire_time::timestamp;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use giftify_shared::ids::GiftCardId;
use giftify_shared::rate_limits::LimitedAction;
use giftify_shared::vault::GiftCardStatus;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The gift card routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/gift-cards", get(list))
        .route("/gift-cards/redeem", post(redeem))
        .route("/admin/gift-cards/{giftCardId}/reveals", get(reveals))
}

/// One reveal of a card's secrets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevealView {
    pub user_id: String,
    pub order_id: String,
    #[schema(format = DateTime)]
    pub revealed_at: String,
}

/// A card's reveal audit.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevealsData {
    pub gift_card_id: String,
    pub reveals: Vec<RevealView>,
}

/// Who revealed a card's number and PIN, and when, oldest first (admin).
#[utoipa::path(
    get, path = "/admin/gift-cards/{giftCardId}/reveals", tag = "admin",
    security(("bearerAuth" = [])),
    params(("giftCardId" = String, Path, description = "gc_…")),
    responses(
        (status = 200, description = "The reveal audit", body = Envelope<RevealsData>),
        (status = 400, description = "VALIDATION_ERROR: malformed id", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub async fn reveals(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiPath(card_id): ApiPath<String>,
) -> Result<Envelope<RevealsData>, ApiError> {
    let card_id: GiftCardId = parse_id("giftCardId", &card_id)?;
    let reveals = state.giftify().reveals_of(&card_id).await?;
    Ok(ok(RevealsData {
        gift_card_id: card_id.to_string(),
        reveals: reveals
            .iter()
            .map(|r| RevealView {
                user_id: r.user_id.to_string(),
                order_id: r.order_id.to_string(),
                revealed_at: timestamp(r.revealed_at),
            })
            .collect(),
    }))
}

/// `?status=&page=&limit=` of the card list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CardListQuery {
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1, example = 1)]
    pub page: Option<String>,
    /// Page size, 1–100 (default 10).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, example = 10)]
    pub limit: Option<String>,
    /// Only cards in this status: ACTIVE, REDEEMED, EXPIRED or CANCELLED.
    pub status: Option<String>,
}

/// One of the user's cards, masked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CardListItem {
    pub order_id: String,
    #[serde(flatten)]
    pub card: GiftCardView,
    #[schema(format = DateTime)]
    pub issued_at: String,
    #[schema(format = DateTime)]
    pub redeemed_at: Option<String>,
}

/// A page of the user's cards.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CardsData {
    pub gift_cards: Vec<CardListItem>,
    pub pagination: Pagination,
}

/// Your gift cards across all your orders, newest first, numbers masked.
#[utoipa::path(
    get, path = "/gift-cards", tag = "gift-cards",
    security(("bearerAuth" = [])),
    params(CardListQuery),
    responses(
        (status = 200, description = "A page of cards", body = Envelope<CardsData>),
        (status = 400, description = "VALIDATION_ERROR: bad page, limit or status", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<CardListQuery>,
) -> Result<Envelope<CardsData>, ApiError> {
    let page = page_request(query.page.as_deref(), query.limit.as_deref(), 10)?;
    let status = query
        .status
        .as_deref()
        .map(|raw| {
            GiftCardStatus::parse(raw).ok_or_else(|| {
                ApiError::validation(
                    "status",
                    "must be one of ACTIVE, REDEEMED, EXPIRED, CANCELLED",
                )
            })
        })
        .transpose()?;
    let found = state
        .giftify()
        .cards_of_user(&user.id, status, page)
        .await?;
    Ok(ok(CardsData {
        gift_cards: found
            .items
            .iter()
            .map(|card| CardListItem {
                order_id: card.order_id.to_string(),
                card: GiftCardView::from(card),
                issued_at: timestamp(card.issued_at),
                redeemed_at: card.redeemed_at.map(timestamp),
            })
            .collect(),
        pagination: Pagination::from(&found),
    }))
}

/// The number and PIN printed on a Giftify card. No `Debug`: it holds the card's secrets.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedeemRequest {
    /// With or without dashes and spaces.
    #[schema(example = "GFY-1234-5678-9012-3456", max_length = 64)]
    pub gift_card_number: String,
    #[schema(example = "482913", max_length = 32)]
    pub gift_card_pin: String,
}

/// A card redeemed, and the wallet after it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedeemedView {
    pub gift_card_id: String,
    /// Masked: `****-****-****-3456`.
    pub gift_card_number: String,
    /// The face value credited, in paise.
    pub amount: i64,
    /// The wallet balance after the credit, in paise.
    pub balance: i64,
    #[schema(example = "REDEEMED")]
    pub status: String,
    #[schema(format = DateTime)]
    pub redeemed_at: String,
}

/// Redeem a Giftify card into your wallet: its face value is credited as a `REDEEM`
/// transaction and the card becomes REDEEMED, once. Brand cards are redeemed with their brand.
/// Attempts are limited per user and per card number; a wrong number and a wrong PIN answer
/// the same 404.
#[utoipa::path(
    post, path = "/gift-cards/redeem", tag = "gift-cards",
    security(("bearerAuth" = [])),
    request_body = RedeemRequest,
    responses(
        (status = 200, description = "Redeemed", body = Envelope<RedeemedView>),
        (status = 400, description = "VALIDATION_ERROR, or NOT_REDEEMABLE: a brand's card", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND: no card with this number and PIN", body = ErrorEnvelope),
        (status = 409, description = "CARD_REDEEMED, CARD_EXPIRED or CARD_CANCELLED", body = ErrorEnvelope),
        (status = 422, description = "WALLET_LIMIT_EXCEEDED", body = ErrorEnvelope),
        (status = 429, description = "RATE_LIMITED: too many attempts or redemptions (GIFTIFY_USER_RATE_LIMITS), or the API key's request budget is spent; see Retry-After", body = ErrorEnvelope),
    )
)]
pub async fn redeem(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<RedeemRequest>,
) -> Result<Envelope<RedeemedView>, ApiError> {
    state
        .giftify()
        .spend_budget(LimitedAction::RedeemCard, user.id.as_str())
        .await?;
    if body.gift_card_number.len() > 64 {
        return Err(ApiError::validation(
            "giftCardNumber",
            "must be at most 64 characters",
        ));
    }
    if body.gift_card_pin.len() > 32 {
        return Err(ApiError::validation(
            "giftCardPin",
            "must be at most 32 characters",
        ));
    }
    let giftify = state.giftify();
    let card = giftify
        .redeem_card(&user.id, &body.gift_card_number, &body.gift_card_pin)
        .await?;
    let balance = giftify.balance(&user.id).await?;
    Ok(ok(RedeemedView {
        gift_card_id: card.id.to_string(),
        gift_card_number: card.masked_number(),
        amount: card.face_value().map_or(0, |v| v.get()),
        balance: balance.get(),
        status: card.status.as_str().to_string(),
        redeemed_at: card.redeemed_at.map(timestamp).unwrap_or_default(),
    })
    .with_message("Gift card redeemed"))
}
