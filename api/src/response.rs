//! The seed's success envelope `{"success":true,"data":…,"message"?,"timestamp"}`.

use crate::error::ApiError;
use crate::wire_time::timestamp;
use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

/// A successful response.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T: ToSchema> {
    /// Always `true`.
    pub success: bool,
    pub data: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the response was produced (RFC 3339, UTC).
    #[schema(example = "2024-01-15T10:30:00.000Z")]
    pub timestamp: String,
}

impl<T: ToSchema> Envelope<T> {
    /// Wraps `data`, stamped now.
    pub fn new(data: T) -> Self {
        Envelope {
            success: true,
            data,
            message: None,
            timestamp: timestamp(Utc::now()),
        }
    }

    /// Adds the optional human-readable `message`.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

impl<T: ToSchema + Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

/// Shorthand for a 200 envelope around `data`.
pub fn ok<T: ToSchema>(data: T) -> Envelope<T> {
    Envelope::new(data)
}

/// Marks a response that carries credentials or card secrets as never to be cached or stored
/// (RFC 6749 §5.1 for token responses).
pub fn no_store(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The envelope around `data` with an `ETag` of `data` (not of the envelope, whose timestamp
/// changes with every answer); `304 Not Modified` without a body when `if_none_match` names
/// that tag. `data` is serialised once, for the tag and the body both.
///
/// `Cache-Control: private, no-cache`: the client may keep the answer but must check it with
/// the server before each use (stock, prices and an order's status change at any moment, and
/// a check that answers 304 costs no body); a shared cache keeps nothing, for every answer so
/// validated is for a signed-in caller.
pub fn validated<T: ToSchema + Serialize>(
    data: &T,
    if_none_match: Option<&HeaderValue>,
) -> Result<Response, ApiError> {
    Ok(Rendered::of(data)?.answer(if_none_match))
}

/// An answer's data serialised once with its tag, to answer every read of it while it holds
/// (the catalogue's, kept for as long as the core's cached catalogue is the same).
#[derive(Debug)]
pub struct Rendered {
    data: Box<serde_json::value::RawValue>,
    tag: HeaderValue,
}

impl Rendered {
    /// # Errors
    /// An opaque internal error when `data` does not serialise (a bug, answered as a 500 in
    /// the envelope).
    pub fn of<T: ToSchema + Serialize>(data: &T) -> Result<Rendered, ApiError> {
        let data = serde_json::value::to_raw_value(data)
            .map_err(|error| ApiError::from(giftify_shared::Error::internal(error)))?;
        let tag = HeaderValue::from_str(&entity_tag(data.get().as_bytes()))
            .expect("a quoted hex tag is a valid header value");
        Ok(Rendered { data, tag })
    }

    /// The envelope around the data, or `304 Not Modified` when `if_none_match` names its
    /// tag; both with the tag and `Cache-Control: private, no-cache`.
    pub fn answer(&self, if_none_match: Option<&HeaderValue>) -> Response {
        let mut response = if if_none_match.is_some_and(|header| names_tag(header, &self.tag)) {
            axum::http::StatusCode::NOT_MODIFIED.into_response()
        } else {
            Json(RawEnvelope {
                success: true,
                data: &self.data,
                timestamp: &timestamp(Utc::now()),
            })
            .into_response()
        };
        let headers = response.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
        headers.insert(header::ETAG, self.tag.clone());
        response
    }
}

/// [`Envelope`] over data already serialised (no message: a read answers none).
#[derive(Serialize)]
struct RawEnvelope<'a> {
    success: bool,
    data: &'a serde_json::value::RawValue,
    timestamp: &'a str,
}

/// A weak tag (RFC 9110 §8.8.1) of the data's bytes: 128 bits of their SHA-256, which no
/// edit repeats by chance. Weak because the body around the data (the envelope's timestamp)
/// differs from answer to answer.
fn entity_tag(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// Whether an `If-None-Match` value names `tag`: `*`, or a list of tags compared weakly (RFC
/// 9110 §13.1.2): with or without their `W/` prefixes.
fn names_tag(header: &HeaderValue, tag: &HeaderValue) -> bool {
    let (Ok(listed), Ok(tag)) = (header.to_str(), tag.to_str()) else {
        return false;
    };
    let tag = opaque_tag(tag);
    listed
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || opaque_tag(candidate) == tag)
}

/// A tag without its weakness mark, for weak comparison.
fn opaque_tag(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, ToSchema)]
    struct Shown {
        name: &'static str,
        stock: i64,
    }

    fn read(body: &[u8]) -> serde_json::Value {
        serde_json::from_slice(body).expect("json")
    }

    #[tokio::test]
    async fn a_validated_answer_is_the_envelope_and_a_matching_tag_is_304_without_a_body() {
        use http_body_util::BodyExt;
        let data = Shown {
            name: "a",
            stock: 1,
        };
        let first = validated(&data, None).expect("serialises");
        assert_eq!(first.status(), 200);
        assert_eq!(first.headers()[header::CACHE_CONTROL], "private, no-cache");
        let tag = first.headers()[header::ETAG].clone();
        let body = first.into_body().collect().await.expect("body").to_bytes();
        let plain = serde_json::to_value(ok(Shown {
            name: "a",
            stock: 1,
        }))
        .expect("json");
        let mut sent = read(&body);
        assert!(sent["timestamp"].is_string());
        sent["timestamp"] = plain["timestamp"].clone();
        assert_eq!(sent, plain, "the same envelope as ok()");

        for header in [
            tag.to_str().unwrap().to_string(),
            // Compared weakly: the tag without its W/ prefix names it too.
            format!("\"x\", {}", tag.to_str().unwrap().trim_start_matches("W/")),
            "*".into(),
        ] {
            let again = validated(&data, Some(&HeaderValue::from_str(&header).unwrap()))
                .expect("serialises");
            assert_eq!(again.status(), 304, "{header}");
            assert_eq!(again.headers()[header::ETAG], tag);
            assert!(
                again
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes()
                    .is_empty()
            );
        }
        let changed = Shown {
            name: "a",
            stock: 0,
        };
        let fresh = validated(&changed, Some(&tag)).expect("serialises");
        assert_eq!(fresh.status(), 200, "another stock is another tag");
        assert_ne!(fresh.headers()[header::ETAG], tag);
    }

    #[test]
    fn the_envelope_omits_an_absent_message() {
        let plain = serde_json::to_value(ok(1_i64)).expect("json");
        assert_eq!(plain["success"], true);
        assert_eq!(plain["data"], 1);
        assert!(plain.get("message").is_none());
        let noted = serde_json::to_value(ok(1_i64).with_message("done")).expect("json");
        assert_eq!(noted["message"], "done");
    }
}
