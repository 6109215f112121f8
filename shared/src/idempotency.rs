//! Idempotency keys with Stripe's semantics: the same key and request replays the first
//! outcome; the same key with another request is refused; a key in flight is refused; records
//! live 24 h and are scoped per user.
//!
//! A successful money operation records its outcome in the same atomic write as the money
//! movement ([`IdempotencyCommit`]), so a crash can never leave money moved without the key
//! knowing it. The outcome is the id of what was created, from which the use case answers
//! again. A refusal that moved no money records the domain error ([`Refusal`]), outside any
//! transaction.

pub use crate::error::Refusal;
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
    /// An admin's balance correction, by its ADJUSTMENT transaction.
    Adjusted(TransactionId),
    OrderPlaced(OrderId),
    OrderCancelled(OrderId),
    /// A refusal that moved no money, answered again as the same error.
    Refused(Refusal),
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

impl IdempotencyCommit {
    /// Finishing a key with a refusal, which moved no money.
    pub fn refused(scope: &IdempotencyScope, token: &str, refusal: &Refusal) -> Self {
        IdempotencyCommit {
            scope: scope.clone(),
            token: token.to_string(),
            outcome: IdempotentOutcome::Refused(refusal.clone()),
        }
    }
}

/// A fresh claim of a key, for the store to write.
#[derive(Clone, Debug)]
pub struct NewClaim {
    pub scope: IdempotencyScope,
    pub fingerprint: String,
    pub token: String,
    pub now: DateTime<Utc>,
}

/// A key as a store holds it, live or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub fingerprint: String,
    pub state: StoredKeyState,
    /// From [`expiry_after`]: a whole second, which every backend stores exactly.
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredKeyState {
    /// A request holds the key under `token` until `lease_until`.
    InProgress {
        token: String,
        lease_until: DateTime<Utc>,
    },
    Done(IdempotentOutcome),
}

impl StoredKey {
    /// The one expiry rule: a record is live until the instant it expires, and absent from
    /// that instant on.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

/// When a key claimed at `now` expires: [`RETENTION`] later, rounded up to the whole second
/// (DynamoDB's TTL attribute holds seconds, SQLite milliseconds; both hold this exactly).
pub fn expiry_after(now: DateTime<Utc>) -> DateTime<Utc> {
    let end = now + RETENTION;
    let seconds = end.timestamp() + i64::from(end.timestamp_subsec_nanos() > 0);
    DateTime::from_timestamp(seconds, 0).unwrap_or(end)
}

/// The record a claim holds the key with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyLease {
    pub token: String,
    pub lease_until: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What a store does with a claim, decided by [`decide_claim`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimDecision {
    /// No live record: write this one, on the condition that still none is live.
    Insert(KeyLease),
    /// The holder's lease ran out (it crashed or stalled): hand the key to this claim, on the
    /// condition that the token `from` still holds it. The holder's commit names its old token
    /// and will fail, so the work cannot happen twice. The retention starts again.
    TakeOver {
        from: String,
        lease: KeyLease,
    },
    Replay(IdempotentOutcome),
    InProgress,
    Reused,
}

impl ClaimDecision {
    /// The answer to the claim, once the store has committed what the decision asks.
    pub fn answer(self, claim: &NewClaim) -> Claim {
        match self {
            ClaimDecision::Insert(_) | ClaimDecision::TakeOver { .. } => {
                Claim::Acquired(claim.token.clone())
            }
            ClaimDecision::Replay(outcome) => Claim::Replay(outcome),
            ClaimDecision::InProgress => Claim::InProgress,
            ClaimDecision::Reused => Claim::KeyReused,
        }
    }
}

/// The claim rule, written once: `stored` is the key's record as read (expired or not).
pub fn decide_claim(stored: Option<&StoredKey>, claim: &NewClaim) -> ClaimDecision {
    let lease = KeyLease {
        token: claim.token.clone(),
        lease_until: claim.now + LEASE,
        expires_at: expiry_after(claim.now),
    };
    let Some(stored) = stored.filter(|stored| stored.is_live(claim.now)) else {
        return ClaimDecision::Insert(lease);
    };
    if stored.fingerprint != claim.fingerprint {
        return ClaimDecision::Reused;
    }
    match &stored.state {
        StoredKeyState::Done(outcome) => ClaimDecision::Replay(outcome.clone()),
        StoredKeyState::InProgress { lease_until, .. } if *lease_until > claim.now => {
            ClaimDecision::InProgress
        }
        StoredKeyState::InProgress { token, .. } => ClaimDecision::TakeOver {
            from: token.clone(),
            lease,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim_at(now: DateTime<Utc>, fingerprint: &str) -> NewClaim {
        NewClaim {
            scope: IdempotencyScope {
                user_id: UserId::generate(),
                key: IdempotencyKey::parse("k-1").expect("key"),
            },
            fingerprint: fingerprint.into(),
            token: "new-token".into(),
            now,
        }
    }

    #[test]
    fn a_record_is_absent_from_the_instant_it_expires() {
        let start = DateTime::from_timestamp_millis(1_700_000_000_250).expect("time");
        let expires_at = expiry_after(start);
        assert_eq!(expires_at.timestamp_subsec_nanos(), 0);
        assert!(
            expires_at - start >= RETENTION
                && expires_at - start < RETENTION + Duration::seconds(1)
        );
        let stored = StoredKey {
            fingerprint: "f".into(),
            state: StoredKeyState::Done(IdempotentOutcome::OrderPlaced(OrderId::generate())),
            expires_at,
        };
        let just_before = expires_at - Duration::milliseconds(1);
        assert!(matches!(
            decide_claim(Some(&stored), &claim_at(just_before, "f")),
            ClaimDecision::Replay(_)
        ));
        assert!(matches!(
            decide_claim(Some(&stored), &claim_at(expires_at, "f")),
            ClaimDecision::Insert(_)
        ));
        assert!(matches!(
            decide_claim(Some(&stored), &claim_at(just_before, "other")),
            ClaimDecision::Reused
        ));
    }

    #[test]
    fn a_lapsed_lease_is_taken_over_and_its_retention_starts_again() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let stored = StoredKey {
            fingerprint: "f".into(),
            state: StoredKeyState::InProgress {
                token: "old-token".into(),
                lease_until: now,
            },
            expires_at: now + Duration::hours(1),
        };
        assert_eq!(
            decide_claim(
                Some(&stored),
                &claim_at(now - Duration::milliseconds(1), "f")
            ),
            ClaimDecision::InProgress
        );
        match decide_claim(Some(&stored), &claim_at(now, "f")) {
            ClaimDecision::TakeOver { from, lease } => {
                assert_eq!(from, "old-token");
                assert_eq!(lease.token, "new-token");
                assert_eq!(lease.lease_until, now + LEASE);
                assert_eq!(lease.expires_at, expiry_after(now));
            }
            other => panic!("expected a takeover, got {other:?}"),
        }
    }

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
