//! The one timestamp format of the API (RFC 3339, UTC, millisecond precision, `Z`) and its
//! calendar date format, shared by the success envelope and the error envelope.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

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
}
