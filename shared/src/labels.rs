//! What an integrator attaches to an order of its own: a `clientReference` that names the
//! order in the client's system, and `metadata`, string pairs stored with the order, answered
//! with it and carried in its events.
//!
//! A reference is unique per user and never expires: a second create with the same reference
//! answers the first order (an idempotency key that lives as long as the order does). Two
//! creates with the same reference and different requests are a bug in the client, refused
//! rather than guessed at (see [`crate::order::Order::was_placed_by`]).

use crate::{Error, Result};
use std::collections::BTreeMap;

/// Up to this many metadata keys per order.
pub const MAX_METADATA_KEYS: usize = 20;
/// Metadata keys are 1 to this many characters of `[A-Za-z0-9_.-]`.
pub const MAX_METADATA_KEY_LEN: usize = 40;
/// Metadata values are up to this many characters, with no control characters.
pub const MAX_METADATA_VALUE_LEN: usize = 500;
/// A client reference is 1 to this many printable ASCII characters.
pub const MAX_CLIENT_REFERENCE_LEN: usize = 100;

/// The client's own name for an order: 1–100 printable ASCII characters, unique per user.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientReference(String);

impl ClientReference {
    /// # Errors
    /// [`Error::Validation`] naming `clientReference`.
    pub fn parse(raw: &str) -> Result<Self> {
        if (1..=MAX_CLIENT_REFERENCE_LEN).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_graphic())
        {
            Ok(ClientReference(raw.to_string()))
        } else {
            Err(Error::validation(
                "clientReference",
                format!(
                    "must be 1 to {MAX_CLIENT_REFERENCE_LEN} printable ASCII characters without spaces"
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// String pairs the client stores with an order, bounded so an order stays small: at most
/// [`MAX_METADATA_KEYS`] keys of `[A-Za-z0-9_.-]` up to [`MAX_METADATA_KEY_LEN`] characters,
/// values up to [`MAX_METADATA_VALUE_LEN`] characters without control characters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    /// # Errors
    /// [`Error::Validation`] naming the offending `metadata` entry.
    pub fn parse(pairs: BTreeMap<String, String>) -> Result<Self> {
        if pairs.len() > MAX_METADATA_KEYS {
            return Err(Error::validation(
                "metadata",
                format!("at most {MAX_METADATA_KEYS} keys"),
            ));
        }
        for (key, value) in &pairs {
            let key_ok = (1..=MAX_METADATA_KEY_LEN).contains(&key.len())
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !key_ok {
                return Err(Error::validation(
                    "metadata",
                    format!(
                        "keys are 1 to {MAX_METADATA_KEY_LEN} characters of letters, digits, '_', '.' and '-'"
                    ),
                ));
            }
            if value.chars().count() > MAX_METADATA_VALUE_LEN || value.chars().any(char::is_control)
            {
                return Err(Error::validation(
                    format!("metadata.{key}"),
                    format!(
                        "values are at most {MAX_METADATA_VALUE_LEN} characters, without control characters"
                    ),
                ));
            }
        }
        Ok(Metadata(pairs))
    }

    /// Metadata as a store kept it: checked by [`Metadata::parse`] when it was written, and
    /// not again, so an order stays readable should the bounds ever tighten.
    pub fn from_stored(pairs: BTreeMap<String, String>) -> Self {
        Metadata(pairs)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn pairs(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

/// The client's labels on one order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderLabels {
    pub client_reference: Option<ClientReference>,
    pub metadata: Metadata,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_reference_is_printable_ascii_within_its_length() {
        assert!(ClientReference::parse("po-2026/0001").is_ok());
        assert!(ClientReference::parse(&"r".repeat(MAX_CLIENT_REFERENCE_LEN)).is_ok());
        for bad in [
            "",
            "has space",
            "tab\t",
            "é",
            &"r".repeat(MAX_CLIENT_REFERENCE_LEN + 1),
        ] {
            assert!(ClientReference::parse(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn metadata_is_bounded_in_keys_and_sizes() {
        assert!(Metadata::parse(pairs(&[("campaign", "diwali"), ("a.b-c_d", "")])).is_ok());
        let twenty: BTreeMap<_, _> = (0..MAX_METADATA_KEYS)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        assert!(Metadata::parse(twenty.clone()).is_ok());
        let mut twenty_one = twenty;
        twenty_one.insert("one-more".into(), "v".into());
        assert!(Metadata::parse(twenty_one).is_err());
        let long_value = "₹".repeat(MAX_METADATA_VALUE_LEN);
        assert!(
            Metadata::parse(pairs(&[("k", &long_value)])).is_ok(),
            "counted in characters"
        );
        for (key, value) in [
            ("", "v"),
            ("has space", "v"),
            (&*"k".repeat(MAX_METADATA_KEY_LEN + 1), "v"),
            ("k", &*"v".repeat(MAX_METADATA_VALUE_LEN + 1)),
            ("k", "line\nbreak"),
        ] {
            assert!(
                Metadata::parse(pairs(&[(key, value)])).is_err(),
                "{key:?}={value:?} is refused"
            );
        }
    }
}
