//! The one error type of the core. Its variants are the outcomes a caller can act on; the API
//! maps each to a code and status of DESIGN §5, the workers use [`Error::is_retryable`] to decide
//! between "retry the message" and "this will never work".

use crate::Paise;
use crate::ids::VariantId;
use crate::order::OrderStatus;

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
    #[error("insufficient wallet balance")]
    InsufficientBalance { balance: Paise, required: Paise },
    #[error("the wallet balance may not exceed {limit}")]
    WalletLimitExceeded { limit: Paise },
    #[error("a request with this idempotency key is still in progress")]
    IdempotencyInProgress,
    #[error("this idempotency key was used with a different request")]
    IdempotencyKeyReused,
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

/// What was not found: the kinds of thing a caller may ask for by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    User,
    Product,
    Variant,
    Order,
    GiftCard,
    Transaction,
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
        }
    }
}

impl Missing {
    pub const ALL: [Missing; 6] = [
        Missing::User,
        Missing::Product,
        Missing::Variant,
        Missing::Order,
        Missing::GiftCard,
        Missing::Transaction,
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

impl From<crate::ids::InvalidId> for Error {
    fn from(e: crate::ids::InvalidId) -> Self {
        Error::Validation {
            field: None,
            message: e.to_string(),
        }
    }
}
