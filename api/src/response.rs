//! The seed's success envelope `{"success":true,"data":…,"message"?,"timestamp"}` and the
//! one timestamp format of the API (RFC 3339, UTC, millisecond precision, `Z`).

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
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

/// Millisecond precision: the core clock stores milliseconds, and list order would be
/// ambiguous at whole seconds.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A calendar date (`2025-01-15`), as gift card expiry dates are shown.
pub fn date(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_z() {
        let at = DateTime::parse_from_rfc3339("2024-01-15T10:30:00.5+05:30")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(timestamp(at), "2024-01-15T05:00:00.500Z");
        let day = NaiveDate::from_ymd_opt(2025, 1, 5).expect("valid");
        assert_eq!(date(day), "2025-01-05");
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
