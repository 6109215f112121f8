//! `Idempotency-Key` over HTTP: the header, the request fingerprint, and the replay marker. The
//! protocol — claim, run holding the key, record a refusal or release on a 5xx, replay — is the
//! core's keyed use cases (`Giftify::place_order_keyed` …), shared with the fault simulation;
//! each route renders a replay itself, as it renders a first answer.
//!
//! The request is fingerprinted as its operation plus the canonical JSON of its body (keys
//! sorted at every level, no insignificant whitespace), so key order and formatting do not
//! make "the same request" look different. A replay carries `Idempotent-Replayed: true`; a key
//! in use answers 409 `IDEMPOTENCY_IN_PROGRESS`, a key reused for another request 422
//! `IDEMPOTENCY_KEY_REUSED`.
//!
//! A handler that panics leaves its key leased; the lease runs out after
//! [`giftify_shared::idempotency::LEASE`] and a retry takes the key over, which is safe because
//! the core's commit is conditional on still holding the claim.

use crate::error::ApiError;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use giftify_shared::idempotency::{IdempotencyKey, IdempotencyScope, fingerprint};
use giftify_shared::ids::UserId;
use giftify_shared::usecases::{Keyed, KeyedRequest};
use rand::RngCore;
use serde_json::Value;

/// The request header that carries the key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header that marks a replay.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The keyed request, when the client sent an `Idempotency-Key`. `operation` names the
/// endpoint (and, for cancel, the order), so one key cannot be replayed against another
/// operation; `request` is the parsed body.
pub fn keyed_request(
    user: &UserId,
    headers: &HeaderMap,
    operation: &str,
    request: &Value,
) -> Result<Option<KeyedRequest>, ApiError> {
    Ok(idempotency_key(headers)?.map(|key| KeyedRequest {
        scope: IdempotencyScope {
            user_id: user.clone(),
            key,
        },
        fingerprint: request_fingerprint(operation, request),
        token: claim_token(),
    }))
}

/// Answers what a keyed use case came to: rendered by the route's own `render`, and marked
/// `Idempotent-Replayed: true` when an earlier request with the key decided it.
pub fn answer<T>(keyed: Keyed<T>, render: impl FnOnce(T) -> Response) -> Response {
    let mut response = match keyed {
        Keyed::Ran(value) => return render(value),
        Keyed::Replayed(value) => render(value),
        Keyed::RefusedAgain(error) => ApiError::from(error).into_response(),
    };
    response
        .headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

/// The request's key, when it sent one; a malformed key is a 400.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        ApiError::validation(
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters",
        )
    })?;
    Ok(Some(IdempotencyKey::parse(text)?))
}

/// What "the same request" means: the operation and the canonical body.
pub fn request_fingerprint(operation: &str, request: &Value) -> String {
    fingerprint(operation, canonical_json(request).as_bytes())
}

/// JSON with object keys sorted at every level and no whitespace. Written by hand rather than
/// relying on `serde_json::Value`'s map order, which a `preserve_order` feature anywhere in
/// the build would silently change.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A random claim token: proves to the store that this request holds the key.
fn claim_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_drops_whitespace() {
        let a: Value = serde_json::from_str(
            r#"{ "items": [ {"quantity": 2, "variantId": "var_1"} ], "note": "a\"b" }"#,
        )
        .expect("json");
        let b: Value =
            serde_json::from_str(r#"{"note":"a\"b","items":[{"variantId":"var_1","quantity":2}]}"#)
                .expect("json");
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"items":[{"quantity":2,"variantId":"var_1"}],"note":"a\"b"}"#
        );
    }

    #[test]
    fn canonical_json_keeps_array_order_and_value_differences() {
        assert_ne!(
            canonical_json(&json!([1, 2])),
            canonical_json(&json!([2, 1]))
        );
        assert_ne!(
            canonical_json(&json!({"amount": 1})),
            canonical_json(&json!({"amount": 1.0}))
        );
        assert_eq!(canonical_json(&json!({})), "{}");
        assert_eq!(
            canonical_json(&json!({"k": null, "t": true, "s": "ü"})),
            r#"{"k":null,"s":"ü","t":true}"#
        );
    }

    #[test]
    fn fingerprints_depend_on_operation_and_content_not_formatting() {
        let one = request_fingerprint("wallet.topup", &json!({"amount": 5, "description": "x"}));
        let same: Value =
            serde_json::from_str(r#"{"description":"x",  "amount":5}"#).expect("json");
        assert_eq!(one, request_fingerprint("wallet.topup", &same));
        assert_ne!(one, request_fingerprint("orders.create", &same));
        assert_ne!(
            one,
            request_fingerprint("wallet.topup", &json!({"amount": 6, "description": "x"}))
        );
    }

    #[test]
    fn keys_are_read_from_the_header_and_validated() {
        let mut headers = HeaderMap::new();
        assert!(idempotency_key(&headers).expect("absent is fine").is_none());
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("order-1"));
        assert_eq!(
            idempotency_key(&headers)
                .expect("valid")
                .expect("present")
                .as_str(),
            "order-1"
        );
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static(""));
        assert_eq!(
            idempotency_key(&headers).expect_err("empty").status(),
            axum::http::StatusCode::BAD_REQUEST
        );
    }
}
