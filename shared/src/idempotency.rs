//! Idempotency keys with Stripe's semantics: the same key and request replays the first
//! outcome; the same key with another request is refused; a key in flight is refused; records
//! live 24 h and are scoped per user.
//!
//! A successful money operation records its outcome in the same atomic write as the money
//! movement ([`IdempotencyCommit`]), so a crash can never leave money moved without the key
//! knowing it. The outcome is the id of what was created; the API renders the replay from it.
//! A failed attempt that moved no money records its response verbatim, outside any transaction.

use crate::ids::{OrderId, TransactionId, UserId};
use crate::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// How long a finished key is kept.
pub const RETENTION: Duration = Duration::hours(24);
/// How long an attempt may hold a key before another request may take it over (the holder
/// crashed). The holder's commit is conditional on still holding it, so takeover is safe.
pub const LEASE: Duration = Duration::seconds(30);

/// A client-chosen key: 1–255 printable ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self> {
        if (1..=255).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(IdempotencyKey(raw.to_string()))
        } else {
            Err(Error::validation(
                "Idempotency-Key",
                "must be 1 to 255 printable ASCII characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key in the namespace of one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyScope {
    pub user_id: UserId,
    pub key: IdempotencyKey,
}

/// SHA-256 over the operation name and the request body: what "the same request" means.
pub fn fingerprint(operation: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(operation.as_bytes());
    hash.update([0u8]);
    hash.update(body);
    hex::encode(hash.finalize())
}

/// What a finished key remembers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotentOutcome {
    ToppedUp(TransactionId),
    OrderPlaced(OrderId),
    OrderCancelled(OrderId),
    /// A response that moved no money (a 4xx), replayed verbatim.
    Response {
        status: u16,
        body: String,
    },
}

/// The answer to claiming a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the key under this token and should do the work.
    Acquired(String),
    Replay(IdempotentOutcome),
    InProgress,
    KeyReused,
}

/// Passed into an atomic money operation so it finishes the key in the same write. The write
/// MUST fail with [`Error::IdempotencyInProgress`] if the token no longer holds the key.
#[derive(Clone, Debug)]
pub struct IdempotencyCommit {
    pub scope: IdempotencyScope,
    pub token: String,
    pub outcome: IdempotentOutcome,
}

/// A fresh claim of a key, for the store to write.
#[derive(Clone, Debug)]
pub struct NewClaim {
    pub scope: IdempotencyScope,
    pub fingerprint: String,
    pub token: String,
    pub now: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_printable_ascii() {
        assert!(IdempotencyKey::parse("order-2024-0001").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("ключ").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }

    #[test]
    fn fingerprints_separate_operation_and_body() {
        assert_eq!(fingerprint("topup", b"{}"), fingerprint("topup", b"{}"));
        assert_ne!(fingerprint("topup", b"{}"), fingerprint("cancel", b"{}"));
        assert_ne!(
            fingerprint("topup", b"{\"amount\":1}"),
            fingerprint("topup", b"{\"amount\":2}")
        );
    }
}
