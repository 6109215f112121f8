//! The API's one error type and the seed's error envelope.
//!
//! Every failure a client can see becomes an [`ApiError`]: core errors by `From`, plus the
//! HTTP-only ones (bearer problems, body limits, unknown routes). [`ApiError::render`] maps it to
//! a status, a stable [`ErrorCode`] and the envelope
//! `{"success":false,"error":{"code","message","details"},"timestamp"}`; 5xx bodies are opaque.
//!
//! Errors are logged once, where they become a response ([`ApiError::log`], called by
//! `into_response`): 5xx with the cause chain at `error`, 4xx at
//! `debug`. Messages never echo request values (see `extract`), so logging them is safe.

use crate::wire_time::timestamp;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use giftify_shared::CardRefusal;
use giftify_shared::Error as CoreError;
use giftify_shared::api_keys::Scope;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// Seconds a client should wait before retrying after a transient backend failure.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// The stable, machine-readable error codes of DESIGN §5, plus `METHOD_NOT_ALLOWED`,
/// `SERVICE_UNAVAILABLE`, `URI_TOO_LONG` and `HEADERS_TOO_LARGE`, which the design's list has no
/// code for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    ValidationError,
    Unauthorized,
    TokenExpired,
    InvalidCredentials,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    EmailAlreadyExists,
    OutOfStock,
    CartEmpty,
    CartLocked,
    PriceChanged,
    OrderNotCancellable,
    OrderAlreadyFinal,
    IdempotencyInProgress,
    PayloadTooLarge,
    UriTooLong,
    HeadersTooLarge,
    InsufficientBalance,
    WalletLimitExceeded,
    IdempotencyKeyReused,
    ClientReferenceReused,
    InsufficientScope,
    RateLimited,
    AccountSuspended,
    SelfTopupDisabled,
    InternalError,
    ServiceUnavailable,
    CardRedeemed,
    CardExpired,
    CardCancelled,
    CardRevealed,
    NotRedeemable,
    ReturnWindowClosed,
}

impl ErrorCode {
    /// The code as it appears in the envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationError => "VALIDATION_ERROR",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::TokenExpired => "TOKEN_EXPIRED",
            ErrorCode::InvalidCredentials => "INVALID_CREDENTIALS",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::EmailAlreadyExists => "EMAIL_ALREADY_EXISTS",
            ErrorCode::OutOfStock => "OUT_OF_STOCK",
            ErrorCode::CartEmpty => "CART_EMPTY",
            ErrorCode::CartLocked => "CART_LOCKED",
            ErrorCode::PriceChanged => "PRICE_CHANGED",
            ErrorCode::OrderNotCancellable => "ORDER_NOT_CANCELLABLE",
            ErrorCode::OrderAlreadyFinal => "ORDER_ALREADY_FINAL",
            ErrorCode::IdempotencyInProgress => "IDEMPOTENCY_IN_PROGRESS",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::UriTooLong => "URI_TOO_LONG",
            ErrorCode::HeadersTooLarge => "HEADERS_TOO_LARGE",
            ErrorCode::InsufficientBalance => "INSUFFICIENT_BALANCE",
            ErrorCode::WalletLimitExceeded => "WALLET_LIMIT_EXCEEDED",
            ErrorCode::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ErrorCode::ClientReferenceReused => "CLIENT_REFERENCE_REUSED",
            ErrorCode::InsufficientScope => "INSUFFICIENT_SCOPE",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::AccountSuspended => "ACCOUNT_SUSPENDED",
            ErrorCode::SelfTopupDisabled => "SELF_TOPUP_DISABLED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::CardRedeemed => "CARD_REDEEMED",
            ErrorCode::CardExpired => "CARD_EXPIRED",
            ErrorCode::CardCancelled => "CARD_CANCELLED",
            ErrorCode::CardRevealed => "CARD_REVEALED",
            ErrorCode::NotRedeemable => "NOT_REDEEMABLE",
            ErrorCode::ReturnWindowClosed => "RETURN_WINDOW_CLOSED",
        }
    }
}

/// The error envelope, as documented in the OpenAPI description.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorBody,
    /// When the response was produced (RFC 3339, UTC).
    #[schema(example = "2024-01-15T10:30:00.000Z")]
    pub timestamp: String,
}

/// The `error` member of the error envelope.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// A human-readable explanation; never echoes request values.
    pub message: String,
    /// Structured context: `field` for validation errors, `variantId` for `OUT_OF_STOCK`,
    /// `variantIds` for `PRICE_CHANGED`, `status` for `ORDER_NOT_CANCELLABLE`,
    /// `balance`/`required` for `INSUFFICIENT_BALANCE`, `limit` for `WALLET_LIMIT_EXCEEDED`,
    /// `retryAfterSeconds` for `RATE_LIMITED`; otherwise empty.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// Everything that can go wrong in a request, as the client will see it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A core outcome: validation, business rule, or backend failure.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Missing, malformed or invalid bearer token.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// A well-formed access token whose `exp` has passed.
    #[error("access token expired")]
    TokenExpired,
    /// Authenticated, but the role does not allow this.
    #[error("forbidden")]
    Forbidden,
    /// An API key without the scope this endpoint needs.
    #[error("the API key lacks the scope {}", .0.as_str())]
    InsufficientScope(Scope),
    /// An API key on an endpoint for signed-in people only (key management, profile, admin).
    #[error("endpoint not available to API keys")]
    PeopleOnly,
    /// No route matches the path.
    #[error("no route for this path")]
    RouteNotFound,
    /// The path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request body exceeds the limit.
    #[error("request body too large")]
    PayloadTooLarge { limit_bytes: usize },
    /// The request target exceeds the limit.
    #[error("request URI too long")]
    UriTooLong { limit_bytes: usize },
    /// The request's header fields exceed the limit.
    #[error("request header fields too large")]
    HeadersTooLarge { limit_bytes: usize },
    /// A handler panicked; the panic message is logged, never sent.
    #[error("handler panicked: {0}")]
    Panic(String),
}

/// A rendered error: what goes on the wire.
#[derive(Debug, Clone)]
pub struct RenderedError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub body: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl IntoResponse for RenderedError {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

/// Status, code, message, details and extra headers of an error, before serialisation.
struct Parts {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    details: Value,
    retry_after: Option<u64>,
    bearer_challenge: bool,
}

impl Parts {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Parts {
            status,
            code,
            message: message.into(),
            details: json!({}),
            retry_after: None,
            bearer_challenge: false,
        }
    }

    fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

impl ApiError {
    /// A `VALIDATION_ERROR` about one field.
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiError::Core(CoreError::validation(field, message))
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.parts().status
    }

    /// The envelope code this error answers with.
    pub fn code(&self) -> ErrorCode {
        self.parts().code
    }

    fn parts(&self) -> Parts {
        use StatusCode as S;
        match self {
            ApiError::Core(error) => core_parts(error),
            ApiError::Unauthorized(why) => Parts {
                bearer_challenge: true,
                ..Parts::new(S::UNAUTHORIZED, ErrorCode::Unauthorized, *why)
            },
            ApiError::TokenExpired => Parts {
                bearer_challenge: true,
                ..Parts::new(
                    S::UNAUTHORIZED,
                    ErrorCode::TokenExpired,
                    "The access token has expired; refresh it",
                )
            },
            ApiError::Forbidden => Parts::new(
                S::FORBIDDEN,
                ErrorCode::Forbidden,
                "This endpoint requires the ADMIN role",
            ),
            ApiError::InsufficientScope(scope) => Parts::new(
                S::FORBIDDEN,
                ErrorCode::InsufficientScope,
                format!("This API key lacks the scope {}", scope.as_str()),
            )
            .details(json!({ "requiredScope": scope.as_str() })),
            ApiError::PeopleOnly => Parts::new(
                S::FORBIDDEN,
                ErrorCode::Forbidden,
                "This endpoint is for signed-in people, not API keys",
            ),
            ApiError::RouteNotFound => {
                Parts::new(S::NOT_FOUND, ErrorCode::NotFound, "No such endpoint")
            }
            ApiError::MethodNotAllowed => Parts::new(
                S::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                "This endpoint does not support the request method",
            ),
            ApiError::PayloadTooLarge { limit_bytes } => Parts::new(
                S::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                format!("The request body exceeds {limit_bytes} bytes"),
            )
            .details(json!({ "limitBytes": limit_bytes })),
            ApiError::UriTooLong { limit_bytes } => Parts::new(
                S::URI_TOO_LONG,
                ErrorCode::UriTooLong,
                format!("The request URI exceeds {limit_bytes} bytes"),
            )
            .details(json!({ "limitBytes": limit_bytes })),
            ApiError::HeadersTooLarge { limit_bytes } => Parts::new(
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                ErrorCode::HeadersTooLarge,
                format!("The request's header fields exceed {limit_bytes} bytes"),
            )
            .details(json!({ "limitBytes": limit_bytes })),
            ApiError::Panic(_) => internal_parts(),
        }
    }

    /// Serialises the envelope (stamped now) with its status and headers.
    pub fn render(&self) -> RenderedError {
        render_parts(self.parts())
    }

    /// Logs the error once, at the level its status deserves.
    pub fn log(&self) {
        let parts = self.parts();
        if parts.status.is_server_error() {
            tracing::error!(
                status = parts.status.as_u16(),
                code = parts.code.as_str(),
                error = %cause_chain(self),
                "request failed"
            );
        } else {
            tracing::debug!(
                status = parts.status.as_u16(),
                code = parts.code.as_str(),
                message = %parts.message,
                "request rejected"
            );
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        self.render().into_response()
    }
}

fn internal_parts() -> Parts {
    Parts::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::InternalError,
        "An unexpected error occurred",
    )
}

/// Serialises the envelope (stamped now) with its status and headers.
fn render_parts(parts: Parts) -> RenderedError {
    let envelope = ErrorEnvelope {
        success: false,
        error: ErrorBody {
            code: parts.code,
            message: parts.message,
            details: parts.details,
        },
        timestamp: timestamp(chrono::Utc::now()),
    };
    // Serialising plain strings and JSON values cannot fail; the fallback keeps the
    // envelope shape even so.
    let body = serde_json::to_string(&envelope).unwrap_or_else(|_| {
        format!(
            r#"{{"success":false,"error":{{"code":"{}","message":"","details":{{}}}},"timestamp":"{}"}}"#,
            parts.code.as_str(),
            envelope.timestamp
        )
    });
    let mut headers = Vec::new();
    if let Some(secs) = parts.retry_after {
        headers.push((header::RETRY_AFTER, HeaderValue::from(secs)));
    }
    if parts.bearer_challenge {
        headers.push((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="giftify", error="invalid_token""#),
        ));
    }
    RenderedError {
        status: parts.status,
        code: parts.code,
        body,
        headers,
    }
}

/// The mapping of DESIGN §5. `Conflict` and `Unavailable` are transient (a lost race, a
/// throttled or unreachable backend): they answer 503 with `Retry-After` so clients retry,
/// rather than a 500 that reads as "this will never work".
fn core_parts(error: &CoreError) -> Parts {
    use StatusCode as S;
    let message = capitalised(&error.to_string());
    match error {
        CoreError::Validation { field, message } => {
            let text = match field {
                // The core phrases field rules as "must …"; say which field.
                Some(field) if message.starts_with("must") => format!("{field} {message}"),
                // Other messages start with a field name or a value, whose case matters.
                _ => message.clone(),
            };
            let details = match field {
                Some(field) => json!({ "field": field }),
                None => json!({}),
            };
            Parts::new(S::BAD_REQUEST, ErrorCode::ValidationError, text).details(details)
        }
        CoreError::NotFound(what) => Parts::new(S::NOT_FOUND, ErrorCode::NotFound, message)
            .details(json!({ "resource": what.noun() })),
        CoreError::EmailAlreadyExists => {
            Parts::new(S::CONFLICT, ErrorCode::EmailAlreadyExists, message)
        }
        CoreError::InvalidCredentials => {
            Parts::new(S::UNAUTHORIZED, ErrorCode::InvalidCredentials, message)
        }
        CoreError::InvalidToken => Parts::new(S::UNAUTHORIZED, ErrorCode::Unauthorized, message),
        CoreError::RateLimited { retry_after_secs } => Parts {
            retry_after: Some(*retry_after_secs),
            ..Parts::new(S::TOO_MANY_REQUESTS, ErrorCode::RateLimited, message)
                .details(json!({ "retryAfterSeconds": retry_after_secs }))
        },
        CoreError::AccountSuspended => {
            Parts::new(S::FORBIDDEN, ErrorCode::AccountSuspended, message)
        }
        CoreError::SelfTopUpDisabled => {
            Parts::new(S::FORBIDDEN, ErrorCode::SelfTopupDisabled, message)
        }
        CoreError::OutOfStock { variant_id } => {
            Parts::new(S::CONFLICT, ErrorCode::OutOfStock, message)
                .details(json!({ "variantId": variant_id }))
        }
        CoreError::CartEmpty => Parts::new(S::CONFLICT, ErrorCode::CartEmpty, message),
        CoreError::CartLocked => Parts::new(S::CONFLICT, ErrorCode::CartLocked, message),
        CoreError::PriceChanged { variant_ids } => {
            Parts::new(S::CONFLICT, ErrorCode::PriceChanged, message)
                .details(json!({ "variantIds": variant_ids }))
        }
        CoreError::OrderNotCancellable(status) => {
            Parts::new(S::CONFLICT, ErrorCode::OrderNotCancellable, message)
                .details(json!({ "status": status.as_str() }))
        }
        CoreError::OrderAlreadyFinal(status) => {
            Parts::new(S::CONFLICT, ErrorCode::OrderAlreadyFinal, message)
                .details(json!({ "status": status.as_str() }))
        }
        CoreError::InsufficientBalance { balance, required } => Parts::new(
            S::UNPROCESSABLE_ENTITY,
            ErrorCode::InsufficientBalance,
            message,
        )
        .details(json!({ "balance": balance.get(), "required": required.get() })),
        CoreError::WalletLimitExceeded { limit } => Parts::new(
            S::UNPROCESSABLE_ENTITY,
            ErrorCode::WalletLimitExceeded,
            message,
        )
        .details(json!({ "limit": limit.get() })),
        CoreError::IdempotencyInProgress => {
            Parts::new(S::CONFLICT, ErrorCode::IdempotencyInProgress, message)
        }
        CoreError::IdempotencyKeyReused => Parts::new(
            S::UNPROCESSABLE_ENTITY,
            ErrorCode::IdempotencyKeyReused,
            message,
        ),
        CoreError::ClientReferenceReused => Parts::new(
            S::UNPROCESSABLE_ENTITY,
            ErrorCode::ClientReferenceReused,
            message,
        )
        .details(json!({ "field": "clientReference" })),
        CoreError::Card(reason) => match reason {
            CardRefusal::Redeemed => Parts::new(S::CONFLICT, ErrorCode::CardRedeemed, message),
            CardRefusal::Expired => Parts::new(S::CONFLICT, ErrorCode::CardExpired, message),
            CardRefusal::Cancelled => Parts::new(S::CONFLICT, ErrorCode::CardCancelled, message),
            CardRefusal::Revealed => Parts::new(S::CONFLICT, ErrorCode::CardRevealed, message),
            CardRefusal::NotRedeemable => {
                Parts::new(S::BAD_REQUEST, ErrorCode::NotRedeemable, message)
            }
            CardRefusal::ReturnWindowClosed => {
                Parts::new(S::CONFLICT, ErrorCode::ReturnWindowClosed, message)
            }
        },
        CoreError::Conflict(_) | CoreError::Unavailable(_) => Parts {
            retry_after: Some(UNAVAILABLE_RETRY_AFTER_SECS),
            ..Parts::new(
                S::SERVICE_UNAVAILABLE,
                ErrorCode::ServiceUnavailable,
                "The service is temporarily unavailable; retry shortly",
            )
        },
        CoreError::Internal(_) => internal_parts(),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `outer: cause: root cause`, for the log line of a 5xx.
fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // `#[error(transparent)]` and anyhow wrappers repeat their inner message.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use giftify_shared::Missing;
    use giftify_shared::Paise;
    use giftify_shared::ids::VariantId;
    use giftify_shared::order::OrderStatus;

    fn body(error: &ApiError) -> Value {
        serde_json::from_str(&error.render().body).expect("the envelope is JSON")
    }

    #[test]
    fn every_core_error_maps_to_its_code_and_status() {
        let cases: Vec<(CoreError, u16, &str)> = vec![
            (
                CoreError::validation("amount", "must be positive"),
                400,
                "VALIDATION_ERROR",
            ),
            (CoreError::NotFound(Missing::Order), 404, "NOT_FOUND"),
            (CoreError::EmailAlreadyExists, 409, "EMAIL_ALREADY_EXISTS"),
            (CoreError::InvalidCredentials, 401, "INVALID_CREDENTIALS"),
            (CoreError::InvalidToken, 401, "UNAUTHORIZED"),
            (
                CoreError::RateLimited {
                    retry_after_secs: 30,
                },
                429,
                "RATE_LIMITED",
            ),
            (CoreError::AccountSuspended, 403, "ACCOUNT_SUSPENDED"),
            (CoreError::SelfTopUpDisabled, 403, "SELF_TOPUP_DISABLED"),
            (
                CoreError::OutOfStock {
                    variant_id: VariantId::generate(),
                },
                409,
                "OUT_OF_STOCK",
            ),
            (CoreError::CartEmpty, 409, "CART_EMPTY"),
            (CoreError::CartLocked, 409, "CART_LOCKED"),
            (
                CoreError::PriceChanged {
                    variant_ids: vec![VariantId::generate()],
                },
                409,
                "PRICE_CHANGED",
            ),
            (
                CoreError::OrderNotCancellable(OrderStatus::Fulfilled),
                409,
                "ORDER_NOT_CANCELLABLE",
            ),
            (
                CoreError::InsufficientBalance {
                    balance: Paise::new(100),
                    required: Paise::new(500),
                },
                422,
                "INSUFFICIENT_BALANCE",
            ),
            (
                CoreError::WalletLimitExceeded {
                    limit: Paise::new(20_000_000),
                },
                422,
                "WALLET_LIMIT_EXCEEDED",
            ),
            (
                CoreError::IdempotencyInProgress,
                409,
                "IDEMPOTENCY_IN_PROGRESS",
            ),
            (
                CoreError::IdempotencyKeyReused,
                422,
                "IDEMPOTENCY_KEY_REUSED",
            ),
            (
                CoreError::ClientReferenceReused,
                422,
                "CLIENT_REFERENCE_REUSED",
            ),
            (CoreError::Conflict("stock"), 503, "SERVICE_UNAVAILABLE"),
            (
                CoreError::Unavailable(anyhow::anyhow!("db locked")),
                503,
                "SERVICE_UNAVAILABLE",
            ),
            (
                CoreError::Internal(anyhow::anyhow!("disk on fire")),
                500,
                "INTERNAL_ERROR",
            ),
        ];
        for (core, status, code) in cases {
            let error = ApiError::from(core);
            let rendered = error.render();
            assert_eq!(rendered.status.as_u16(), status, "{error:?}");
            assert_eq!(rendered.code.as_str(), code, "{error:?}");
            let json = body(&error);
            assert_eq!(json["success"], false);
            assert_eq!(json["error"]["code"], code);
            assert!(
                json["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
            assert!(json["error"]["details"].is_object());
            assert!(json["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        }
    }

    #[test]
    fn http_only_errors_map_to_their_codes() {
        let cases = [
            (
                ApiError::Unauthorized("missing bearer token"),
                401,
                "UNAUTHORIZED",
            ),
            (ApiError::TokenExpired, 401, "TOKEN_EXPIRED"),
            (ApiError::Forbidden, 403, "FORBIDDEN"),
            (
                ApiError::InsufficientScope(Scope::OrdersWrite),
                403,
                "INSUFFICIENT_SCOPE",
            ),
            (ApiError::PeopleOnly, 403, "FORBIDDEN"),
            (ApiError::RouteNotFound, 404, "NOT_FOUND"),
            (ApiError::MethodNotAllowed, 405, "METHOD_NOT_ALLOWED"),
            (
                ApiError::PayloadTooLarge {
                    limit_bytes: 65_536,
                },
                413,
                "PAYLOAD_TOO_LARGE",
            ),
            (
                ApiError::UriTooLong { limit_bytes: 8192 },
                414,
                "URI_TOO_LONG",
            ),
            (
                ApiError::HeadersTooLarge { limit_bytes: 16384 },
                431,
                "HEADERS_TOO_LARGE",
            ),
            (ApiError::Panic("boom".into()), 500, "INTERNAL_ERROR"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status);
            assert_eq!(error.code().as_str(), code);
            assert_eq!(body(&error)["error"]["code"], code);
        }
    }

    #[test]
    fn details_carry_the_context_a_client_acts_on() {
        let validation = body(&ApiError::validation("amount", "must be positive"));
        assert_eq!(validation["error"]["details"]["field"], "amount");
        assert_eq!(validation["error"]["message"], "amount must be positive");

        let (v1, v2, v9) = (
            VariantId::generate(),
            VariantId::generate(),
            VariantId::generate(),
        );
        let stock = body(
            &CoreError::OutOfStock {
                variant_id: v9.clone(),
            }
            .into(),
        );
        assert_eq!(stock["error"]["details"]["variantId"], v9.as_str());

        let prices = body(
            &CoreError::PriceChanged {
                variant_ids: vec![v1.clone(), v2.clone()],
            }
            .into(),
        );
        assert_eq!(
            prices["error"]["details"]["variantIds"],
            json!([v1.as_str(), v2.as_str()])
        );

        let status = body(&CoreError::OrderNotCancellable(OrderStatus::Processing).into());
        assert_eq!(status["error"]["details"]["status"], "PROCESSING");

        let balance = body(
            &CoreError::InsufficientBalance {
                balance: Paise::new(100),
                required: Paise::new(500),
            }
            .into(),
        );
        assert_eq!(
            balance["error"]["details"],
            json!({"balance": 100, "required": 500})
        );
        assert_eq!(balance["error"]["message"], "Insufficient wallet balance");
    }

    #[test]
    fn server_errors_are_opaque_and_transient_ones_ask_for_a_retry() {
        let internal: ApiError = CoreError::Internal(anyhow::anyhow!("secret table name")).into();
        let rendered = internal.render();
        assert!(!rendered.body.contains("secret table name"));
        assert_eq!(body(&internal)["error"]["details"], json!({}));

        let busy: ApiError = CoreError::Unavailable(anyhow::anyhow!("throttled")).into();
        let response = busy.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let limited: ApiError = CoreError::RateLimited {
            retry_after_secs: 42,
        }
        .into();
        assert_eq!(limited.into_response().headers()[header::RETRY_AFTER], "42");
    }

    #[test]
    fn bearer_failures_carry_a_challenge() {
        let response = ApiError::TokenExpired.into_response();
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn the_cause_chain_names_every_layer() {
        let error: ApiError =
            CoreError::Internal(anyhow::anyhow!("root cause").context("while loading")).into();
        let chain = cause_chain(&error);
        assert!(
            chain.contains("while loading") && chain.contains("root cause"),
            "{chain}"
        );
    }
}
