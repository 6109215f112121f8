//! Reading and writing DynamoDB items: attribute constructors, a checked reader that turns a
//! missing or mistyped attribute into an internal error (corrupt data, never a panic), and the
//! translation of SDK errors into domain errors.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use giftify_shared::{Error, Paise, Result};
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn money(value: Paise) -> AttributeValue {
    n(value.get())
}

pub fn b(value: bool) -> AttributeValue {
    AttributeValue::Bool(value)
}

/// Timestamps as fixed-width RFC 3339 in UTC with milliseconds, so they sort as strings.
pub fn ts(value: DateTime<Utc>) -> AttributeValue {
    s(format_ts(value))
}

pub fn format_ts(value: DateTime<Utc>) -> String {
    value.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Epoch seconds, the form DynamoDB TTL reads.
pub fn epoch(value: DateTime<Utc>) -> AttributeValue {
    n(value.timestamp())
}

/// Builds an item or an expression-value map from pairs.
pub fn item<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Checked access to the attributes of one item.
pub struct Attrs<'a> {
    item: &'a Item,
    table: &'static str,
}

impl<'a> Attrs<'a> {
    pub fn new(item: &'a Item, table: &'static str) -> Self {
        Attrs { item, table }
    }

    fn corrupt(&self, name: &str, expected: &str) -> Error {
        Error::internal(format!(
            "corrupt {} item: attribute {name} is missing or not {expected}",
            self.table
        ))
    }

    pub fn opt_s(&self, name: &str) -> Result<Option<&'a str>> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(value)) => Ok(Some(value)),
            Some(_) => Err(self.corrupt(name, "a string")),
        }
    }

    pub fn s(&self, name: &str) -> Result<&'a str> {
        self.opt_s(name)?
            .ok_or_else(|| self.corrupt(name, "a string"))
    }

    pub fn opt_n(&self, name: &str) -> Result<Option<i64>> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(value)) => value
                .parse()
                .map(Some)
                .map_err(|_| self.corrupt(name, "an integer")),
            Some(_) => Err(self.corrupt(name, "a number")),
        }
    }

    pub fn n(&self, name: &str) -> Result<i64> {
        self.opt_n(name)?
            .ok_or_else(|| self.corrupt(name, "a number"))
    }

    /// A counter that items written before it existed lack: absent reads as zero.
    pub fn counter(&self, name: &str) -> Result<u32> {
        match self.opt_n(name)? {
            None => Ok(0),
            Some(_) => self.u32(name),
        }
    }

    pub fn u32(&self, name: &str) -> Result<u32> {
        u32::try_from(self.n(name)?).map_err(|_| self.corrupt(name, "a u32"))
    }

    pub fn money(&self, name: &str) -> Result<Paise> {
        self.n(name).map(Paise::new)
    }

    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>> {
        if self.item.contains_key(name) {
            self.bool(name).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.item.get(name) {
            Some(AttributeValue::Bool(value)) => Ok(*value),
            _ => Err(self.corrupt(name, "a boolean")),
        }
    }

    pub fn opt_ts(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        self.opt_s(name)?
            .map(|raw| {
                DateTime::parse_from_rfc3339(raw)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| self.corrupt(name, "an RFC 3339 timestamp"))
            })
            .transpose()
    }

    pub fn ts(&self, name: &str) -> Result<DateTime<Utc>> {
        self.opt_ts(name)?
            .ok_or_else(|| self.corrupt(name, "a timestamp"))
    }

    pub fn list(&self, name: &str) -> Result<&'a [AttributeValue]> {
        match self.item.get(name) {
            Some(AttributeValue::L(values)) => Ok(values),
            None => Ok(&[]),
            Some(_) => Err(self.corrupt(name, "a list")),
        }
    }

    pub fn map(&self, name: &str) -> Result<Option<&'a Item>> {
        match self.item.get(name) {
            Some(AttributeValue::M(values)) => Ok(Some(values)),
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(_) => Err(self.corrupt(name, "a map")),
        }
    }

    /// Parses a string attribute with `parse`.
    pub fn parsed<T>(&self, name: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<T> {
        parse(self.s(name)?).ok_or_else(|| self.corrupt(name, "a known value"))
    }
}

/// Throttling and server-side errors that are worth retrying.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
    // SNS
    "Throttled",
    "ThrottledException",
    "InternalError",
    "KMSThrottling",
    // SQS
    "RequestThrottled",
    "ServiceUnavailableException",
];

/// Translates an SDK error: timeouts, connection failures and throttling are retryable
/// (`Unavailable`), anything else is `Internal`.
pub fn sdk_error<E, R>(error: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => error
            .code()
            .is_some_and(|code| TRANSIENT_CODES.contains(&code)),
        _ => false,
    };
    let error = anyhow::Error::new(error);
    if transient {
        Error::Unavailable(error)
    } else {
        Error::Internal(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_reports_corrupt_items_instead_of_panicking() {
        let item = item([
            ("a", s("x")),
            ("n", n(5)),
            ("bad", s("not a number")),
            ("t", ts(Utc::now())),
        ]);
        let attrs = Attrs::new(&item, "test");
        assert_eq!(attrs.s("a").unwrap(), "x");
        assert_eq!(attrs.n("n").unwrap(), 5);
        assert!(attrs.n("bad").is_err());
        assert!(attrs.s("missing").is_err());
        assert_eq!(attrs.opt_s("missing").unwrap(), None);
        assert!(attrs.ts("t").is_ok());
        assert!(attrs.bool("a").is_err());
    }

    #[test]
    fn timestamps_sort_as_strings() {
        let early = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let late = DateTime::from_timestamp_millis(1_700_000_000_001).unwrap();
        assert!(format_ts(early) < format_ts(late));
        assert_eq!(format_ts(early).len(), format_ts(late).len());
    }
}
