//! CSV for bookkeeping (RFC 4180: CRLF line ends, fields quoted where they must be): money
//! as exact rupees, and text a spreadsheet cannot run as a formula; the `?from&to` period of a
//! download and the download itself, for statements and exports alike.

use crate::error::ApiError;
use crate::extract::parse_time;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

/// `?from&to` of a CSV download: a half-open period.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// The first moment (RFC 3339, or a date: its start in UTC); default 30 days before `to`.
    #[param(example = "2026-12-01")]
    pub from: Option<String>,
    /// The end, exclusive (RFC 3339, or a date: its start in UTC); default now.
    #[param(example = "2027-01-01")]
    pub to: Option<String>,
}

impl PeriodQuery {
    /// `[from, to)`, with the defaults filled in; the core checks its length.
    /// # Errors
    /// A 400 naming the field that is not a time or a date.
    pub fn period(&self) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
        let to = parse_time("to", self.to.as_deref())?.unwrap_or_else(Utc::now);
        let from =
            parse_time("from", self.from.as_deref())?.unwrap_or(to - chrono::Duration::days(30));
        Ok((from, to))
    }
}

/// A CSV download of `kind` over `[from, to)`: never cached, named after its period.
pub fn download(kind: &str, from: DateTime<Utc>, to: DateTime<Utc>, body: String) -> Response {
    let file = format!(
        "attachment; filename=\"giftify-{kind}-{}-{}.csv\"",
        from.format("%Y%m%dT%H%M%SZ"),
        to.format("%Y%m%dT%H%M%SZ")
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, file),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

/// A CSV document built row by row.
pub struct Csv(String);

impl Csv {
    /// A document with its header row.
    pub fn with_header(columns: &[&str]) -> Self {
        let mut csv = Csv(String::new());
        csv.row(columns.iter().map(|c| (*c).to_string()));
        csv
    }

    /// Appends a row of fields already made safe ([`text`], [`rupees`], ids, times).
    pub fn row(&mut self, fields: impl IntoIterator<Item = String>) {
        self.0
            .push_str(&fields.into_iter().collect::<Vec<_>>().join(","));
        self.0.push_str("\r\n");
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Paise as rupees with two decimals and a sign: `-1500.05`.
pub fn rupees(paise: i64) -> String {
    let sign = if paise < 0 { "-" } else { "" };
    let abs = paise.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A text field: quoted when it holds a comma, quote or line break, and defused when a
/// spreadsheet would read it as a formula.
pub fn text(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_defused_and_money_is_exact() {
        assert_eq!(rupees(150_000), "1500.00");
        assert_eq!(rupees(-5), "-0.05");
        assert_eq!(rupees(0), "0.00");
        assert_eq!(text("Top-up"), "Top-up");
        assert_eq!(text("a, \"b\""), "\"a, \"\"b\"\"\"");
        assert_eq!(text("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(text("-2+3,x"), "\"'-2+3,x\"");
        let mut csv = Csv::with_header(&["a", "b"]);
        csv.row(["1".to_string(), text("x,y")]);
        assert_eq!(csv.into_string(), "a,b\r\n1,\"x,y\"\r\n");
    }
}
