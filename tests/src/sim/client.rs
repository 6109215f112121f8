//! A simulated API client's requests. Under an `Idempotency-Key` they go through the same
//! keyed use cases the API calls (claim the key, run the use case holding it, record a refusal
//! or release on a 5xx, answer a finished key again).
//!
//! The simulation calls the use cases on [`Giftify`] directly rather than through HTTP, so
//! that every port call is a scheduling point; what it mirrors of the API is only the status
//! and code each error answers with ([`client_error`]).

use giftify_shared::idempotency::{IdempotencyKey, IdempotencyScope, fingerprint};
use giftify_shared::ids::{OrderId, UserId, VariantId};
use giftify_shared::labels::OrderLabels;
use giftify_shared::order::{LineRequest, Order};
use giftify_shared::usecases::{Keyed, KeyedRequest, OrderRequest};
use giftify_shared::wallet::WalletTransaction;
use giftify_shared::{Error, Giftify, Result};

/// A money-moving request, as a client would send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    TopUp { amount: i64 },
    OrderItems { lines: Vec<(VariantId, u32)> },
    OrderCart,
    Cancel { order: OrderId },
}

impl Op {
    /// The operation name the API fingerprints with (the cancel names its order).
    fn operation(&self) -> String {
        match self {
            Op::TopUp { .. } => "wallet.topup".into(),
            Op::OrderItems { .. } | Op::OrderCart => "orders.create".into(),
            Op::Cancel { order } => format!("orders.cancel:{order}"),
        }
    }

    /// The request body in the API's canonical JSON (keys sorted, no whitespace).
    fn body(&self) -> String {
        match self {
            Op::TopUp { amount } => format!("{{\"amount\":{amount}}}"),
            Op::OrderItems { lines } => {
                let items: Vec<String> = lines
                    .iter()
                    .map(|(v, q)| format!("{{\"quantity\":{q},\"variantId\":\"{v}\"}}"))
                    .collect();
                format!("{{\"items\":[{}]}}", items.join(","))
            }
            Op::OrderCart | Op::Cancel { .. } => "{}".into(),
        }
    }

    /// What the API's `Idempotency-Key` handling calls "the same request".
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.operation(), self.body().as_bytes())
    }

    pub fn moves_money_in(&self) -> bool {
        !matches!(self, Op::Cancel { .. })
    }
}

/// What the client got back.
#[derive(Clone, Debug)]
pub enum Answer {
    ToppedUp(WalletTransaction),
    Placed(Order),
    Cancelled(Order),
    /// A 4xx: `code` as in DESIGN §5.
    Refused {
        status: u16,
        code: &'static str,
    },
}

/// The status and code the API answers an error with; `None` for a 5xx.
pub fn client_error(error: &Error) -> Option<(u16, &'static str)> {
    Some(match error {
        Error::Validation { .. } => (400, "VALIDATION_ERROR"),
        Error::NotFound(_) => (404, "NOT_FOUND"),
        Error::EmailAlreadyExists => (409, "EMAIL_ALREADY_EXISTS"),
        Error::InvalidCredentials => (401, "INVALID_CREDENTIALS"),
        Error::InvalidToken => (401, "UNAUTHORIZED"),
        Error::RateLimited { .. } => (429, "RATE_LIMITED"),
        Error::AccountSuspended => (403, "ACCOUNT_SUSPENDED"),
        Error::SelfTopUpDisabled => (403, "SELF_TOPUP_DISABLED"),
        Error::OutOfStock { .. } => (409, "OUT_OF_STOCK"),
        Error::CartEmpty => (409, "CART_EMPTY"),
        Error::CartLocked => (409, "CART_LOCKED"),
        Error::PriceChanged { .. } => (409, "PRICE_CHANGED"),
        Error::OrderNotCancellable(_) => (409, "ORDER_NOT_CANCELLABLE"),
        Error::OrderAlreadyFinal(_) => (409, "ORDER_ALREADY_FINAL"),
        Error::InsufficientBalance { .. } => (422, "INSUFFICIENT_BALANCE"),
        Error::WalletLimitExceeded { .. } => (422, "WALLET_LIMIT_EXCEEDED"),
        Error::IdempotencyInProgress => (409, "IDEMPOTENCY_IN_PROGRESS"),
        Error::IdempotencyKeyReused => (422, "IDEMPOTENCY_KEY_REUSED"),
        Error::ClientReferenceReused => (422, "CLIENT_REFERENCE_REUSED"),
        Error::Card(giftify_shared::CardRefusal::Redeemed) => (409, "CARD_REDEEMED"),
        Error::Card(giftify_shared::CardRefusal::Expired) => (409, "CARD_EXPIRED"),
        Error::Card(giftify_shared::CardRefusal::Cancelled) => (409, "CARD_CANCELLED"),
        Error::Card(giftify_shared::CardRefusal::Revealed) => (409, "CARD_REVEALED"),
        Error::Card(giftify_shared::CardRefusal::NotRedeemable) => (400, "NOT_REDEEMABLE"),
        Error::Card(giftify_shared::CardRefusal::ReturnWindowClosed) => {
            (409, "RETURN_WINDOW_CLOSED")
        }
        Error::Conflict(_) | Error::Unavailable(_) | Error::Internal(_) => return None,
    })
}

/// Sends `op` for `user`, under `key` when given, through the product's keyed use cases (as
/// the API does); `token` is the claim token the API would draw at random. `Ok` is any answer
/// with a status below 500 (replays included, the flag says which); `Err` is a 5xx.
pub async fn send(
    giftify: &Giftify,
    user: &UserId,
    op: &Op,
    key: Option<&str>,
    token: String,
) -> Result<(Answer, bool)> {
    let Some(key) = key else {
        return answer(run(giftify, user, op, None).await).map(|a| (a, false));
    };
    let request = KeyedRequest {
        scope: IdempotencyScope {
            user_id: user.clone(),
            key: IdempotencyKey::parse(key)?,
        },
        fingerprint: op.fingerprint(),
        token,
    };
    let keyed = match op {
        Op::TopUp { amount } => giftify
            .top_up_keyed(user, *amount, None, request)
            .await
            .map(|k| k.map(Answer::ToppedUp)),
        Op::OrderItems { lines } => giftify
            .place_order_keyed(
                user,
                OrderRequest::Items(line_requests(lines)),
                OrderLabels::default(),
                request,
            )
            .await
            .map(|k| k.map(|placed| Answer::Placed(placed.into_order()))),
        Op::OrderCart => giftify
            .place_order_keyed(user, OrderRequest::Cart, OrderLabels::default(), request)
            .await
            .map(|k| k.map(|placed| Answer::Placed(placed.into_order()))),
        Op::Cancel { order } => giftify
            .cancel_order_keyed(user, order, request)
            .await
            .map(|k| k.map(Answer::Cancelled)),
    };
    match keyed {
        Ok(Keyed::Ran(done)) => Ok((done, false)),
        Ok(Keyed::Replayed(done)) => Ok((done, true)),
        Ok(Keyed::RefusedAgain(error)) => answer(Err(error)).map(|a| (a, true)),
        Err(error) => answer(Err(error)).map(|a| (a, false)),
    }
}

fn line_requests(lines: &[(VariantId, u32)]) -> Vec<LineRequest> {
    lines
        .iter()
        .map(|(variant_id, quantity)| LineRequest {
            variant_id: variant_id.clone(),
            quantity: *quantity,
        })
        .collect()
}

/// Runs `op`'s use case, committing `key` with it when given: the step the keyed protocol
/// runs while it holds a key.
pub async fn run(
    giftify: &Giftify,
    user: &UserId,
    op: &Op,
    key: Option<(IdempotencyScope, String)>,
) -> Result<Answer> {
    Ok(match op {
        Op::TopUp { amount } => {
            Answer::ToppedUp(giftify.top_up_holding(user, *amount, None, key).await?)
        }
        Op::OrderItems { lines } => Answer::Placed(
            giftify
                .place_order_holding(
                    user,
                    OrderRequest::Items(line_requests(lines)),
                    OrderLabels::default(),
                    key,
                )
                .await?
                .into_order(),
        ),
        Op::OrderCart => Answer::Placed(
            giftify
                .place_order_holding(user, OrderRequest::Cart, OrderLabels::default(), key)
                .await?
                .into_order(),
        ),
        Op::Cancel { order } => {
            Answer::Cancelled(giftify.cancel_order_holding(user, order, key).await?)
        }
    })
}

/// A 4xx becomes an answer; a 5xx stays an error.
fn answer(result: Result<Answer>) -> Result<Answer> {
    match result {
        Ok(answer) => Ok(answer),
        Err(error) => match client_error(&error) {
            Some((status, code)) => Ok(Answer::Refused { status, code }),
            None => Err(error),
        },
    }
}
