//! `/gift-cards`: a Giftify card redeemed into the signed-in user's wallet.

use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, AuthUser};
use crate::response::{Envelope, ok, timestamp};
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The gift card routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/gift-cards/redeem", post(redeem))
}

/// The number and PIN printed on a Giftify card.
#[derive(Debug, Deserialize, ToSchema)]
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
        (status = 429, description = "RATE_LIMITED: too many attempts; see Retry-After", body = ErrorEnvelope),
    )
)]
pub async fn redeem(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<RedeemRequest>,
) -> Result<Envelope<RedeemedView>, ApiError> {
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
