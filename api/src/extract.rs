//! Extractors whose rejections use the error envelope: JSON bodies, query strings, path
//! parameters, and the bearer-token identities [`AuthUser`] and [`AdminUser`].
//!
//! JSON problems answer 400 `VALIDATION_ERROR` with the offending field in `details.field`.
//! The messages are rebuilt from serde's error category and never quote the submitted value,
//! so a mistyped password cannot end up in a response body or a log line.

use crate::AppState;
use crate::error::ApiError;
use crate::key_access::{KeyAccess, key_access};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use giftify_shared::api_keys::is_api_key;
use giftify_shared::ids::InvalidId;
use giftify_shared::user::Role;
use giftify_shared::{Error as CoreError, ids::UserId};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::str::FromStr;

/// Largest request body accepted, in bytes. Every request of this API fits in a few KiB; the
/// limit bounds what one request can make the server buffer.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A required JSON body of type `T` (`Content-Type: application/json`).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let body = JsonBody::from_request(req, state).await?;
        if !body.present {
            return Err(ApiError::validation(
                "body",
                "A JSON request body is required",
            ));
        }
        body.parse().map(ApiJson)
    }
}

/// A JSON body that may be absent: an empty body reads as `{}`. Kept as a [`Value`] so the
/// idempotency helper can fingerprint its canonical form before it is typed, and as bytes so
/// typing it sees duplicate keys (which a `Value` silently collapses to the last one).
#[derive(Debug, Clone)]
pub struct JsonBody {
    value: Value,
    bytes: Bytes,
    present: bool,
}

impl JsonBody {
    /// The body as JSON (`{}` when there was none).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The body as a request DTO. A key given twice is refused rather than "last one wins",
    /// so no two parsers of one request can disagree about its meaning.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let bytes: &[u8] = if self.present { &self.bytes } else { b"{}" };
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut deserializer).map_err(shape_error)
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json_content = is_json(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge {
                    limit_bytes: BODY_LIMIT,
                }
            } else {
                ApiError::validation("body", "The request body could not be read")
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody {
                value: Value::Object(serde_json::Map::new()),
                bytes,
                present: false,
            });
        }
        if !json_content {
            return Err(ApiError::validation(
                "Content-Type",
                "must be application/json",
            ));
        }
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::validation(
                "body",
                format!(
                    "The request body is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        Ok(JsonBody {
            value,
            bytes,
            present: true,
        })
    }
}

/// `application/json` or any `application/*+json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Turns a serde shape error into a field-level validation error without quoting the value.
fn shape_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let path = (path != ".").then_some(path);
    let inner = error.inner().to_string();
    // Parsing from bytes appends the position; the field path already says where.
    let raw = inner
        .rfind(" at line ")
        .map_or(inner.as_str(), |at| &inner[..at]);
    let join = |name: &str| match &path {
        Some(path) => format!("{path}.{name}"),
        None => name.to_string(),
    };
    if let Some(name) = backticked(raw, "duplicate field `") {
        let field = join(name);
        return ApiError::validation(&field, format!("{field} is given more than once"));
    }
    if let Some(name) = backticked(raw, "missing field `") {
        let field = join(name);
        return ApiError::validation(&field, format!("{field} is required"));
    }
    if let Some(name) = backticked(raw, "unknown field `") {
        // The path already ends at the unknown key; a missing key's path ends at its parent.
        let field = match &path {
            Some(path) if path.ends_with(name) => path.clone(),
            _ => join(name),
        };
        return ApiError::validation(&field, format!("{field} is not an accepted field"));
    }
    let field = path.unwrap_or_else(|| "body".to_string());
    let expected = raw
        .rsplit_once(", expected ")
        .map(|(_, expected)| describe_expected(expected));
    let message = match expected {
        Some(expected) => format!("{field} must be {expected}"),
        None => format!("{field} is invalid"),
    };
    ApiError::validation(&field, message)
}

/// The text between `prefix` and the next backtick, when `raw` starts with `prefix`.
fn backticked<'a>(raw: &'a str, prefix: &str) -> Option<&'a str> {
    raw.strip_prefix(prefix)?.split('`').next()
}

/// serde's "expected …" in API words.
fn describe_expected(expected: &str) -> String {
    let expected = expected.trim();
    match expected {
        "i64" | "i32" | "i16" | "i8" => "an integer".into(),
        "u64" | "u32" | "u16" | "u8" => "a non-negative integer".into(),
        "a sequence" => "an array".into(),
        "a boolean" | "a string" | "a map" => expected.into(),
        _ if expected.starts_with("struct ") => "an object".into(),
        _ if expected.starts_with("one of ") => expected.to_string(),
        _ => "a valid value".into(),
    }
}

/// A query string of type `T`; a malformed one answers 400.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(query)| ApiQuery(query))
            .map_err(|_| ApiError::validation("query", "The query string is malformed"))
    }
}

/// Path parameters of type `T`; a malformed one answers 400.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(path)| ApiPath(path))
            .map_err(|_| ApiError::validation("path", "A path parameter is malformed"))
    }
}

/// Parses a prefixed id from the request, naming `field` when it is malformed.
pub fn parse_id<I: FromStr<Err = InvalidId>>(field: &str, raw: &str) -> Result<I, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::validation(field, format!("{field} is not a valid identifier")))
}

/// Parses an optional time query parameter: an RFC 3339 instant, or a date (`2026-12-01`),
/// which means its start in UTC.
pub fn parse_time(
    field: &str,
    raw: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    raw.map(|raw| {
        let raw = raw.trim();
        chrono::DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&chrono::Utc))
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                    .map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc())
            })
            .map_err(|_| {
                ApiError::validation(
                    field,
                    format!("{field} must be an RFC 3339 time or a YYYY-MM-DD date"),
                )
            })
    })
    .transpose()
}

/// Parses an optional integer query parameter.
pub fn parse_int(field: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    raw.map(|text| {
        text.trim()
            .parse::<i64>()
            .map_err(|_| ApiError::validation(field, format!("{field} must be an integer")))
    })
    .transpose()
}

/// The caller, from a valid access token or API key, whose account may act: every request
/// reads the account, so a suspension holds from the next request on (403
/// `ACCOUNT_SUSPENDED`), not when the 15-minute token expires ([`signed_in`]). An API key is read on every request too (so a
/// revocation holds at once), acts as its owner with the USER role, and reaches only the
/// routes its scopes open ([`key_access`]).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: UserId,
    pub role: Role,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)?;
        if !is_api_key(token) {
            return signed_in(state, token).await;
        }
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or("", MatchedPath::as_str);
        let needed = match key_access(&parts.method, route) {
            KeyAccess::PeopleOnly => return Err(ApiError::PeopleOnly),
            KeyAccess::AnyKey => None,
            KeyAccess::Needs(scope) => Some(scope),
        };
        let key = state
            .giftify()
            .authenticate_key(token)
            .await
            .map_err(|error| match error {
                CoreError::InvalidToken => ApiError::Unauthorized("Invalid or revoked API key"),
                other => other.into(),
            })?;
        if let Some(missing) = needed.and_then(|scope| key.missing(scope)) {
            return Err(ApiError::InsufficientScope(missing));
        }
        Ok(AuthUser {
            id: key.user_id,
            role: Role::User,
        })
    }
}

/// A signed-in person, never an API key: for managing keys, which a leaked key must not be
/// able to do (mint itself a sibling, or revoke the others).
#[derive(Debug, Clone)]
pub struct PersonUser {
    pub id: UserId,
}

impl FromRequestParts<AppState> for PersonUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)?;
        if is_api_key(token) {
            return Err(ApiError::PeopleOnly);
        }
        Ok(PersonUser {
            id: signed_in(state, token).await?.id,
        })
    }
}

/// The person behind an access token, checked against their account as it is now: a
/// suspended account is refused (`ACCOUNT_SUSPENDED`), a token from before its session epoch
/// (issued before a suspension, a promotion or a re-key) is void, and the role is ADMIN only
/// while both the token and the account say so — a promotion takes a new sign-in, a demotion
/// holds at once.
async fn signed_in(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    let bearer = state.tokens().verify(token)?;
    let account = state
        .giftify()
        .active_user(&bearer.id)
        .await
        .map_err(|error| match error {
            CoreError::InvalidToken => ApiError::Unauthorized("The account is not active"),
            other => other.into(),
        })?;
    if account.session_epoch != bearer.session_epoch {
        return Err(ApiError::Unauthorized(
            "The session was ended; sign in again",
        ));
    }
    let role = if bearer.role == Role::Admin && account.role == Role::Admin {
        Role::Admin
    } else {
        Role::User
    };
    Ok(AuthUser {
        id: account.id,
        role,
    })
}

/// The TCP peer of a connection, which the local server adds to each of its requests.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddress(pub std::net::IpAddr);

/// Where a request came from, to count registrations per client: the TCP peer locally, API
/// Gateway's `sourceIp` on Lambda. An IPv6 client counts by its /64, the block one subscriber
/// gets, so it cannot take a fresh budget with each of its addresses. Headers such as
/// `X-Forwarded-For` are not trusted: any client can write them (so behind a local reverse
/// proxy every client is the proxy). A request that reaches the router with neither (handed
/// to it in the same process) counts as `unknown`, one client.
#[derive(Clone, Debug)]
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(PeerAddress(ip)) = parts.extensions.get::<PeerAddress>() {
            return Ok(ClientAddress(counted_as(*ip)));
        }
        let from_gateway = match parts
            .extensions
            .get::<lambda_http::request::RequestContext>()
        {
            Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => {
                context.http.source_ip.clone()
            }
            _ => None,
        };
        Ok(ClientAddress(
            from_gateway
                .and_then(|ip| ip.parse().ok())
                .map_or_else(|| "unknown".into(), counted_as),
        ))
    }
}

/// The `wait` preference of a `Prefer` header (RFC 7240 §4.3): how many seconds the client
/// is ready to wait for a final answer. Like every preference it is a hint: a malformed one is
/// ignored, not refused, and the server caps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PreferWait(pub Option<std::time::Duration>);

impl<S: Send + Sync> FromRequestParts<S> for PreferWait {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PreferWait(
            parts
                .headers
                .get_all("prefer")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find_map(wait_preference),
        ))
    }
}

/// The `wait=<delta-seconds>` among a `Prefer` value's comma-separated preferences.
fn wait_preference(value: &str) -> Option<std::time::Duration> {
    value.split(',').find_map(|preference| {
        let token = preference.split(';').next()?.trim();
        let (name, seconds) = token.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("wait") {
            return None;
        }
        let seconds = seconds.trim().trim_matches('"');
        if seconds.is_empty() || !seconds.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Past u64 is "forever", which the server's cap turns into its longest wait.
        Some(std::time::Duration::from_secs(
            seconds.parse().unwrap_or(u64::MAX),
        ))
    })
}

/// The client an address counts as: itself for IPv4, its /64 for IPv6.
fn counted_as(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let block = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(block))
            }
        },
    }
}

/// The bearer token of the `Authorization` header.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("Missing bearer token"))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("Malformed Authorization header"))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or(ApiError::Unauthorized("Expected a bearer token"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized("Expected a bearer token"));
    }
    Ok(token.trim())
}

/// An administrator: a signed-in person whose account is active and ADMIN now (a demoted or
/// suspended admin loses access at once, not when the token expires).
#[derive(Debug, Clone)]
pub struct AdminUser {
    pub id: UserId,
}

impl AdminUser {
    /// This admin, as the audit log names who acted.
    pub fn actor(&self) -> giftify_shared::audit::Actor {
        giftify_shared::audit::Actor::Admin(self.id.clone())
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = AuthUser::from_request_parts(parts, state).await?;
        if caller.role != Role::Admin {
            return Err(ApiError::Forbidden);
        }
        Ok(AdminUser { id: caller.id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde::Deserialize;

    #[test]
    fn an_ipv6_client_counts_by_its_64_block() {
        let ip = |raw: &str| raw.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(counted_as(ip("203.0.113.9")), "203.0.113.9");
        assert_eq!(
            counted_as(ip("2001:db8:1:2:aaaa::1")),
            counted_as(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_eq!(counted_as(ip("2001:db8:1:2::5")), "2001:db8:1:2::/64");
        assert_ne!(
            counted_as(ip("2001:db8:1:2::1")),
            counted_as(ip("2001:db8:1:3::1"))
        );
        assert_eq!(counted_as(ip("::ffff:203.0.113.9")), "203.0.113.9");
    }

    #[test]
    fn the_wait_preference_is_read_among_others_and_a_malformed_one_is_ignored() {
        let secs = |n| Some(std::time::Duration::from_secs(n));
        assert_eq!(wait_preference("wait=5"), secs(5));
        assert_eq!(wait_preference("respond-async, WAIT = 10"), secs(10));
        assert_eq!(
            wait_preference("handling=lenient; x=1, wait=\"3\""),
            secs(3)
        );
        assert_eq!(
            wait_preference("wait=99999999999999999999999"),
            secs(u64::MAX)
        );
        for ignored in [
            "wait",
            "wait=",
            "wait=-1",
            "wait=1.5",
            "wait=soon",
            "return=minimal",
            "",
        ] {
            assert_eq!(wait_preference(ignored), None, "{ignored}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Probe {
        amount: i64,
        items: Option<Vec<Item>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Item {
        variant_id: String,
        quantity: u32,
    }

    fn body(json: &str) -> JsonBody {
        JsonBody {
            value: serde_json::from_str(json).expect("valid JSON"),
            bytes: Bytes::copy_from_slice(json.as_bytes()),
            present: true,
        }
    }

    fn field_of(json: Value) -> (String, String) {
        let body = body(&json.to_string());
        let error = body.parse::<Probe>().expect_err("should be rejected");
        let rendered: Value = serde_json::from_str(&error.render().body).expect("json");
        assert_eq!(rendered["error"]["code"], "VALIDATION_ERROR");
        (
            rendered["error"]["details"]["field"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            rendered["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }

    #[test]
    fn shape_errors_name_the_field_without_quoting_the_value() {
        let (field, message) = field_of(serde_json::json!({"amount": "hunter2"}));
        assert_eq!(field, "amount");
        assert_eq!(message, "amount must be an integer");
        assert!(!message.contains("hunter2"));
        let (_, message) = field_of(serde_json::json!({"amount": "x, expected one of hunter2"}));
        assert_eq!(message, "amount must be an integer");

        let (field, _) = field_of(serde_json::json!({}));
        assert_eq!(field, "amount");
        let (field, message) = field_of(serde_json::json!({"amount": 1, "role": "ADMIN"}));
        assert_eq!(field, "role");
        assert!(message.contains("not an accepted field"));
        let (field, _) = field_of(serde_json::json!({"amount": 1.5}));
        assert_eq!(field, "amount");
        let (field, message) = field_of(
            serde_json::json!({"amount": 1, "items": [{"variantId": "v", "quantity": -1}]}),
        );
        assert_eq!(field, "items[0].quantity");
        assert_eq!(message, "items[0].quantity must be a non-negative integer");
        let (field, _) = field_of(serde_json::json!({"amount": 1, "items": [{"quantity": 1}]}));
        assert_eq!(field, "items[0].variantId");
        let (field, message) = field_of(serde_json::json!("nope"));
        assert_eq!(field, "body");
        assert_eq!(message, "body must be an object");
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let error = body(r#"{"amount": 1, "amount": 100000}"#)
            .parse::<Probe>()
            .expect_err("duplicate");
        let rendered: Value = serde_json::from_str(&error.render().body).expect("json");
        assert_eq!(rendered["error"]["details"]["field"], "amount");
        assert_eq!(
            rendered["error"]["message"],
            "amount is given more than once"
        );
    }

    #[test]
    fn an_absent_body_reads_as_an_empty_object() {
        let absent = JsonBody {
            value: Value::Object(serde_json::Map::new()),
            bytes: Bytes::new(),
            present: false,
        };
        let error = absent.parse::<Probe>().expect_err("amount is required");
        let rendered: Value = serde_json::from_str(&error.render().body).expect("json");
        assert_eq!(rendered["error"]["message"], "amount is required");
    }

    #[test]
    fn bearer_tokens_need_the_bearer_scheme() {
        let mut headers = HeaderMap::new();
        assert!(bearer_token(&headers).is_err());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer_token(&headers).is_err());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(bearer_token(&headers).is_err());
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer a.b.c"),
        );
        assert_eq!(bearer_token(&headers).expect("token"), "a.b.c");
    }

    #[test]
    fn json_content_types_are_recognised() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
