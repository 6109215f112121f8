//! Key integrity. Every card ever sold is sealed under the card master key, and every session
//! is signed with the JWT key: a start with another key — a deleted or truncated key file, a
//! bad restore, a mistyped variable — would seal new cards that no later fix can reconcile with
//! the old ones, and leave every card already sold unreadable. So the first start records a
//! *check value* of each key in the database (an HMAC of a fixed label under the key: it says
//! whether a key is the same, and nothing about the key), and every later start compares.
//!
//! The rules, for both backends:
//! - a key shorter than [`MIN_KEY_BYTES`] is refused (RFC 7518 §3.2: an HS256 key has at least
//!   256 bits; the card key is exactly 32 bytes);
//! - a key whose check value differs from the recorded one is refused, naming how many cards
//!   depend on the recorded key;
//! - a database without a recorded value (created before check values existed) records the
//!   key it is started with.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// The keys whose check values are recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyName {
    /// The gift card master key.
    Card,
    /// The access-token signing key.
    Jwt,
}

impl KeyName {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyName::Card => "card",
            KeyName::Jwt => "jwt",
        }
    }

    /// What an operator calls the key.
    pub fn noun(self) -> &'static str {
        match self {
            KeyName::Card => "card key",
            KeyName::Jwt => "access-token key",
        }
    }
}

/// The check value of a key: hex HMAC-SHA256(key, label).
pub fn check_value(key: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(b"giftify/key-check/v1");
    hex::encode(mac.finalize().into_bytes())
}

/// A key a process starts with: which one, where it came from (a file or variable, for the
/// operator), and its check value.
#[derive(Clone, Debug)]
pub struct PresentedKey {
    pub name: KeyName,
    pub source: String,
    pub check_value: String,
}

/// What a start does with a key, given the check value the data recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    /// The key is the one the data was sealed or signed with.
    Matches,
    /// Nothing is recorded yet: record this key's check value.
    Record,
    /// Another key: refuse to start.
    Mismatch,
}

/// Judges a presented check value against the recorded one.
pub fn judge(recorded: Option<&str>, presented: &str) -> KeyVerdict {
    match recorded {
        None => KeyVerdict::Record,
        Some(recorded) if recorded == presented => KeyVerdict::Matches,
        Some(_) => KeyVerdict::Mismatch,
    }
}

/// Why a start was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{origin} is not the {what} this data was sealed with ({cards} gift card(s) depend on the \
         original): restore the original key, or start on an empty data dir / stage",
        what = .name.noun(),
        cards = .cards.map_or_else(|| "an unknown number of".to_string(), |n| n.to_string())
    )]
    Mismatch {
        name: KeyName,
        /// The file, variable or secret the refused key came from.
        origin: String,
        /// Cards sealed under the recorded key, when they could be counted.
        cards: Option<u64>,
    },
    #[error(transparent)]
    Backend(#[from] crate::Error),
}

/// Refuses a key shorter than [`MIN_KEY_BYTES`]; `source` names the file or variable.
pub fn check_length(source: &str, key: &[u8]) -> Result<(), String> {
    if key.len() < MIN_KEY_BYTES {
        return Err(format!(
            "{source} is {} bytes long; a key must have at least {MIN_KEY_BYTES} bytes \
             (256 bits)",
            key.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_matches_and_another_does_not() {
        let key = [7u8; 32];
        let recorded = check_value(&key);
        assert_eq!(
            judge(Some(&recorded), &check_value(&key)),
            KeyVerdict::Matches
        );
        assert_eq!(
            judge(Some(&recorded), &check_value(&[8u8; 32])),
            KeyVerdict::Mismatch
        );
        assert_eq!(judge(None, &recorded), KeyVerdict::Record);
        assert_eq!(recorded.len(), 64);
        assert!(
            !recorded.contains(&hex::encode(key)),
            "the value hides the key"
        );
    }

    #[test]
    fn a_mismatch_names_the_source_and_the_cards_at_stake() {
        let refused = KeyError::Mismatch {
            name: KeyName::Card,
            origin: "GIFTIFY_CARD_KEY".into(),
            cards: Some(12),
        }
        .to_string();
        assert!(refused.contains("GIFTIFY_CARD_KEY") && refused.contains("12 gift card"));
    }

    #[test]
    fn keys_shorter_than_256_bits_are_refused_naming_their_source() {
        let refused = check_length("GIFTIFY_JWT_SECRET", b"a").unwrap_err();
        assert!(refused.contains("GIFTIFY_JWT_SECRET") && refused.contains("1 bytes"));
        assert!(check_length("jwt.key", &[0u8; 31]).is_err());
        assert!(check_length("jwt.key", &[0u8; 32]).is_ok());
    }
}
