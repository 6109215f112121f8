//! CSV for bookkeeping (RFC 4180: CRLF line ends, fields quoted where they must be): money
//! as exact rupees, and text a spreadsheet cannot run as a formula.

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
