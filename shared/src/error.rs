//! The one error type of the core. Its variants are the outcomes a caller can act on; the API
//! maps each to a code and status of DESIGN §5, the workers use [`Error::is_retryable`] to decide
//! between "retry the message" and "this will never work".

use crate::Paise;
use crate::ids::VariantId;
use crate::status::OrderStatus;
use serde::{Deserialize, Serialize};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input breaks a rule; `field` names the offending field when there is one.
    #[error("{message}")]
    Validation {
        field: Option<String>,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(Missing),
    #[error("an account with this email already exists")]
    EmailAlreadyExists,
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The refresh token is unknown, expired, revoked, or was already used.
    #[error("invalid or expired token")]
    InvalidToken,
    #[error("too many attempts, retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The account was suspended by an admin: nothing it asks for is done until it is
    /// reactivated.
    #[error("the account is suspended")]
    AccountSuspended,
    /// This deployment credits wallets only through admins' balance corrections and card
    /// redemptions (`GIFTIFY_SELF_TOPUP=false`).
    #[error("self-service top-up is turned off on this deployment")]
    SelfTopUpDisabled,
    #[error("variant {variant_id} is out of stock")]
    OutOfStock { variant_id: VariantId },
    #[error("the cart is empty")]
    CartEmpty,
    #[error("the cart is locked by an order in progress")]
    CartLocked,
    #[error("prices changed since the items were added to the cart")]
    PriceChanged { variant_ids: Vec<VariantId> },
    #[error("an order in status {0} cannot be cancelled")]
    OrderNotCancellable(OrderStatus),
    /// The order reached a final status already, so there is nothing left to give up.
    #[error("the order is {0} already")]
    OrderAlreadyFinal(OrderStatus),
    #[error("insufficient wallet balance")]
    InsufficientBalance { balance: Paise, required: Paise },
    #[error("the wallet balance may not exceed {limit}")]
    WalletLimitExceeded { limit: Paise },
    #[error("a request with this idempotency key is still in progress")]
    IdempotencyInProgress,
    #[error("this idempotency key was used with a different request")]
    IdempotencyKeyReused,
    /// The client reference names another order of the user, placed by a different request.
    #[error("this clientReference names an earlier order with other items or metadata")]
    ClientReferenceReused,
    /// The card cannot be used as asked, for this reason.
    #[error("{0}")]
    Card(CardRefusal),
    /// A conditional write lost a race (stock moved, transaction conflict); retrying with fresh
    /// data is safe.
    #[error("conflicting concurrent update: {0}")]
    Conflict(&'static str),
    /// The backend could not be reached or throttled us; retrying later is safe.
    #[error("backend unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: a bug or corrupt data. Opaque to clients.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Why a gift card cannot be redeemed or returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CardRefusal {
    /// Redeemed already.
    Redeemed,
    /// Past its expiry date.
    Expired,
    /// Returned (or withdrawn).
    Cancelled,
    /// Its secrets were shown, so it can no longer be returned.
    Revealed,
    /// A brand's card: only the brand honours it.
    NotRedeemable,
    /// The window for returning the card has passed.
    ReturnWindowClosed,
}

impl std::fmt::Display for CardRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CardRefusal::Redeemed => "the gift card was redeemed already",
            CardRefusal::Expired => "the gift card has expired",
            CardRefusal::Cancelled => "the gift card was cancelled",
            CardRefusal::Revealed => "the gift card was revealed and can no longer be returned",
            CardRefusal::NotRedeemable => {
                "a brand's gift card is redeemed with the brand, not into a Giftify wallet"
            }
            CardRefusal::ReturnWindowClosed => "the window for returning the gift card has passed",
        })
    }
}

/// What was not found: the kinds of thing a caller may ask for by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    User,
    Product,
    Variant,
    Order,
    GiftCard,
    Transaction,
    CodeBatch,
    ApiKey,
    WebhookEndpoint,
    WebhookDelivery,
    DeadLetter,
}

impl Missing {
    /// How the thing is named in a message ("gift card not found").
    pub fn noun(self) -> &'static str {
        match self {
            Missing::User => "user",
            Missing::Product => "product",
            Missing::Variant => "variant",
            Missing::Order => "order",
            Missing::GiftCard => "gift card",
            Missing::Transaction => "transaction",
            Missing::CodeBatch => "code batch",
            Missing::ApiKey => "API key",
            Missing::WebhookEndpoint => "webhook endpoint",
            Missing::WebhookDelivery => "webhook delivery",
            Missing::DeadLetter => "dead letter",
        }
    }
}

impl Missing {
    pub const ALL: [Missing; 11] = [
        Missing::User,
        Missing::Product,
        Missing::Variant,
        Missing::Order,
        Missing::GiftCard,
        Missing::Transaction,
        Missing::CodeBatch,
        Missing::ApiKey,
        Missing::WebhookEndpoint,
        Missing::WebhookDelivery,
        Missing::DeadLetter,
    ];

    pub fn parse(noun: &str) -> Option<Missing> {
        Missing::ALL.into_iter().find(|m| m.noun() == noun)
    }
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.noun())
    }
}

impl Error {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Error::Internal(anyhow::anyhow!("{message}"))
    }

    /// Transient failures: the same operation may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Conflict(_) | Error::Unavailable(_))
    }

    /// Failures of the service rather than answers to the request (a 5xx, not a 4xx): they say
    /// nothing about the request, so it is never remembered as refused for them.
    pub fn is_service_failure(&self) -> bool {
        matches!(
            self,
            Error::Conflict(_) | Error::Unavailable(_) | Error::Internal(_)
        )
    }
}

/// A refusal as a key keeps it: the domain error and its details, in a form every store can
/// keep (tagged JSON), never HTTP. How it is answered is the driver's business.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Refusal {
    Validation {
        field: Option<String>,
        message: String,
    },
    NotFound {
        missing: String,
    },
    EmailAlreadyExists,
    InvalidCredentials,
    InvalidToken,
    RateLimited {
        retry_after_secs: u64,
    },
    AccountSuspended,
    SelfTopUpDisabled,
    OutOfStock {
        variant_id: String,
    },
    CartEmpty,
    CartLocked,
    PriceChanged {
        variant_ids: Vec<String>,
    },
    OrderNotCancellable {
        status: String,
    },
    OrderAlreadyFinal {
        status: String,
    },
    InsufficientBalance {
        balance: i64,
        required: i64,
    },
    WalletLimitExceeded {
        limit: i64,
    },
    IdempotencyKeyReused,
    ClientReferenceReused,
    Card {
        reason: CardRefusal,
    },
}

impl Refusal {
    /// The refusal an error is, if it is one: an answer to the request (a 4xx), not a failure
    /// of the service and not "in progress".
    pub fn of(error: &Error) -> Option<Refusal> {
        Some(match error {
            Error::Validation { field, message } => Refusal::Validation {
                field: field.clone(),
                message: message.clone(),
            },
            Error::NotFound(missing) => Refusal::NotFound {
                missing: missing.noun().into(),
            },
            Error::EmailAlreadyExists => Refusal::EmailAlreadyExists,
            Error::InvalidCredentials => Refusal::InvalidCredentials,
            Error::InvalidToken => Refusal::InvalidToken,
            Error::RateLimited { retry_after_secs } => Refusal::RateLimited {
                retry_after_secs: *retry_after_secs,
            },
            Error::AccountSuspended => Refusal::AccountSuspended,
            Error::SelfTopUpDisabled => Refusal::SelfTopUpDisabled,
            Error::OutOfStock { variant_id } => Refusal::OutOfStock {
                variant_id: variant_id.to_string(),
            },
            Error::CartEmpty => Refusal::CartEmpty,
            Error::CartLocked => Refusal::CartLocked,
            Error::PriceChanged { variant_ids } => Refusal::PriceChanged {
                variant_ids: variant_ids.iter().map(ToString::to_string).collect(),
            },
            Error::OrderNotCancellable(status) => Refusal::OrderNotCancellable {
                status: status.as_str().into(),
            },
            Error::OrderAlreadyFinal(status) => Refusal::OrderAlreadyFinal {
                status: status.as_str().into(),
            },
            Error::InsufficientBalance { balance, required } => Refusal::InsufficientBalance {
                balance: balance.get(),
                required: required.get(),
            },
            Error::WalletLimitExceeded { limit } => {
                Refusal::WalletLimitExceeded { limit: limit.get() }
            }
            Error::IdempotencyKeyReused => Refusal::IdempotencyKeyReused,
            Error::ClientReferenceReused => Refusal::ClientReferenceReused,
            Error::Card(reason) => Refusal::Card { reason: *reason },
            Error::IdempotencyInProgress
            | Error::Conflict(_)
            | Error::Unavailable(_)
            | Error::Internal(_) => return None,
        })
    }

    /// The error again, as it was first answered.
    /// # Errors
    /// [`Error::Internal`] for a stored refusal that does not parse (corrupt data).
    pub fn into_error(self) -> Result<Error> {
        let corrupt = || Error::internal("a stored refusal does not parse");
        Ok(match self {
            Refusal::Validation { field, message } => Error::Validation { field, message },
            Refusal::NotFound { missing } => {
                Error::NotFound(Missing::parse(&missing).ok_or_else(corrupt)?)
            }
            Refusal::EmailAlreadyExists => Error::EmailAlreadyExists,
            Refusal::InvalidCredentials => Error::InvalidCredentials,
            Refusal::InvalidToken => Error::InvalidToken,
            Refusal::RateLimited { retry_after_secs } => Error::RateLimited { retry_after_secs },
            Refusal::AccountSuspended => Error::AccountSuspended,
            Refusal::SelfTopUpDisabled => Error::SelfTopUpDisabled,
            Refusal::OutOfStock { variant_id } => Error::OutOfStock {
                variant_id: VariantId::parse(&variant_id).map_err(|_| corrupt())?,
            },
            Refusal::CartEmpty => Error::CartEmpty,
            Refusal::CartLocked => Error::CartLocked,
            Refusal::PriceChanged { variant_ids } => Error::PriceChanged {
                variant_ids: variant_ids
                    .iter()
                    .map(|id| VariantId::parse(id).map_err(|_| corrupt()))
                    .collect::<Result<_>>()?,
            },
            Refusal::OrderNotCancellable { status } => {
                Error::OrderNotCancellable(OrderStatus::parse(&status).ok_or_else(corrupt)?)
            }
            Refusal::OrderAlreadyFinal { status } => {
                Error::OrderAlreadyFinal(OrderStatus::parse(&status).ok_or_else(corrupt)?)
            }
            Refusal::InsufficientBalance { balance, required } => Error::InsufficientBalance {
                balance: Paise::new(balance),
                required: Paise::new(required),
            },
            Refusal::WalletLimitExceeded { limit } => Error::WalletLimitExceeded {
                limit: Paise::new(limit),
            },
            Refusal::IdempotencyKeyReused => Error::IdempotencyKeyReused,
            Refusal::ClientReferenceReused => Error::ClientReferenceReused,
            Refusal::Card { reason } => Error::Card(reason),
        })
    }

    /// The stored form: tagged JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// # Errors
    /// [`Error::Internal`] for text that is no stored refusal.
    pub fn from_json(stored: &str) -> Result<Refusal> {
        serde_json::from_str(stored).map_err(|e| Error::Internal(e.into()))
    }
}

impl From<crate::ids::InvalidId> for Error {
    fn from(e: crate::ids::InvalidId) -> Self {
        Error::Validation {
            field: None,
            message: e.to_string(),
        }
    }
}
