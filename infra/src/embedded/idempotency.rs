//! Idempotency keys, scoped per user. A claim holds the key under a random token with a lease;
//! the money operation finishes the key in its own transaction ([`finish_key`]), conditional on
//! the token still holding it. When a record counts as absent, and what a claim does, is the
//! core's [`decide_claim`]; expired records are purged a few at a time.

use super::SqliteStore;
use super::codec::{DbError, DbResult, execute, one, opt_time, parse_id, time, ts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::idempotency::{
    Claim, ClaimDecision, IdempotencyCommit, IdempotencyScope, IdempotentOutcome, NewClaim,
    Refusal, StoredKey, StoredKeyState, decide_claim,
};
use giftify_shared::ports::IdempotencyKeys;
use giftify_shared::{Error, Result};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

/// Expired records removed per claim, so the table stays small without a sweeper.
const PURGE_BATCH: i64 = 100;

/// The stored form of an outcome, independent of the core's types.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
enum StoredOutcome {
    ToppedUp {
        transaction_id: String,
    },
    Adjusted {
        transaction_id: String,
    },
    OrderPlaced {
        order_id: String,
    },
    OrderCancelled {
        order_id: String,
    },
    Refused {
        refusal: String,
    },
    /// Written by versions that stored a refusal as HTTP bytes (see [`LEGACY_EXPIRED`]).
    Response {},
}

/// A refusal stored as HTTP bytes by an earlier version counts as expired: it moved no money,
/// so running the request again is safe, and the core no longer speaks HTTP.
const LEGACY_EXPIRED: DateTime<Utc> = DateTime::UNIX_EPOCH;

fn encode(outcome: &IdempotentOutcome) -> DbResult<String> {
    let stored = match outcome {
        IdempotentOutcome::ToppedUp(id) => StoredOutcome::ToppedUp {
            transaction_id: id.to_string(),
        },
        IdempotentOutcome::Adjusted(id) => StoredOutcome::Adjusted {
            transaction_id: id.to_string(),
        },
        IdempotentOutcome::OrderPlaced(id) => StoredOutcome::OrderPlaced {
            order_id: id.to_string(),
        },
        IdempotentOutcome::OrderCancelled(id) => StoredOutcome::OrderCancelled {
            order_id: id.to_string(),
        },
        IdempotentOutcome::Refused(refusal) => StoredOutcome::Refused {
            refusal: refusal.to_json(),
        },
    };
    serde_json::to_string(&stored).map_err(|e| Error::Internal(e.into()).into())
}

/// `None` for a legacy refusal (see [`LEGACY_EXPIRED`]).
fn decode(raw: &str) -> DbResult<Option<IdempotentOutcome>> {
    Ok(Some(match serde_json::from_str(raw)? {
        StoredOutcome::ToppedUp { transaction_id } => {
            IdempotentOutcome::ToppedUp(parse_id(&transaction_id)?)
        }
        StoredOutcome::Adjusted { transaction_id } => {
            IdempotentOutcome::Adjusted(parse_id(&transaction_id)?)
        }
        StoredOutcome::OrderPlaced { order_id } => {
            IdempotentOutcome::OrderPlaced(parse_id(&order_id)?)
        }
        StoredOutcome::OrderCancelled { order_id } => {
            IdempotentOutcome::OrderCancelled(parse_id(&order_id)?)
        }
        StoredOutcome::Refused { refusal } => {
            IdempotentOutcome::Refused(Refusal::from_json(&refusal)?)
        }
        StoredOutcome::Response {} => return Ok(None),
    }))
}

/// Finishes a key with its outcome inside the caller's transaction.
///
/// Fails with `IdempotencyInProgress` (rolling the caller back) unless `commit.token` still
/// holds the key: if another request took the key over after this one's lease ran out, only
/// one of them may move money.
pub(super) fn finish_key(conn: &Connection, commit: &IdempotencyCommit) -> DbResult<()> {
    // The record keeps the expiry of its latest claim: kept [`RETENTION`] from then.
    let changed = execute(
        conn,
        "UPDATE idempotency_keys SET state = 'DONE', outcome = ?4, token = NULL, \
         lease_expires_at = NULL \
         WHERE user_id = ?1 AND key = ?2 AND state = 'IN_PROGRESS' AND token = ?3",
        params![
            commit.scope.user_id.as_str(),
            commit.scope.key.as_str(),
            commit.token,
            encode(&commit.outcome)?,
        ],
    )?;
    if changed == 0 {
        return Err(Error::IdempotencyInProgress.into());
    }
    Ok(())
}

pub(super) fn stored_key(row: &rusqlite::Row) -> DbResult<StoredKey> {
    let state = match row.get::<_, String>("state")?.as_str() {
        "DONE" => {
            let outcome: Option<String> = row.get("outcome")?;
            let outcome = outcome
                .ok_or_else(|| DbError::corrupt("a finished idempotency key has no outcome"))?;
            match decode(&outcome)? {
                Some(outcome) => StoredKeyState::Done(outcome),
                None => {
                    return Ok(StoredKey {
                        fingerprint: row.get("fingerprint")?,
                        state: StoredKeyState::Done(IdempotentOutcome::Refused(
                            Refusal::IdempotencyKeyReused,
                        )),
                        expires_at: LEGACY_EXPIRED,
                    });
                }
            }
        }
        "IN_PROGRESS" => StoredKeyState::InProgress {
            token: row
                .get::<_, Option<String>>("token")?
                .ok_or_else(|| DbError::corrupt("a held idempotency key has no token"))?,
            lease_until: opt_time(row, "lease_expires_at")?
                .ok_or_else(|| DbError::corrupt("a held idempotency key has no lease"))?,
        },
        other => return Err(DbError::corrupt(format!("idempotency key state {other}"))),
    };
    Ok(StoredKey {
        fingerprint: row.get("fingerprint")?,
        state,
        expires_at: time(row, "expires_at")?,
    })
}

/// Reads the key's record, asks the core what the claim means, and writes what it decided.
fn claim(conn: &Connection, claim: &NewClaim) -> DbResult<Claim> {
    execute(
        conn,
        "DELETE FROM idempotency_keys WHERE rowid IN \
         (SELECT rowid FROM idempotency_keys WHERE expires_at <= ?1 LIMIT ?2)",
        params![ts(claim.now), PURGE_BATCH],
    )?;
    let (user, key) = (claim.scope.user_id.as_str(), claim.scope.key.as_str());
    let stored = one(
        conn,
        "SELECT fingerprint, state, token, lease_expires_at, outcome, expires_at \
         FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
        params![user, key],
        stored_key,
    )?;
    let decision = decide_claim(stored.as_ref(), claim);
    match &decision {
        ClaimDecision::Insert(lease) => {
            // An expired record may still be there (beyond the purge batch): it is replaced.
            execute(
                conn,
                "INSERT OR REPLACE INTO idempotency_keys \
                 (user_id, key, fingerprint, state, token, lease_expires_at, outcome, created_at, \
                  expires_at) VALUES (?1, ?2, ?3, 'IN_PROGRESS', ?4, ?5, NULL, ?6, ?7)",
                params![
                    user,
                    key,
                    claim.fingerprint,
                    lease.token,
                    ts(lease.lease_until),
                    ts(claim.now),
                    ts(lease.expires_at)
                ],
            )?;
        }
        ClaimDecision::TakeOver { from, lease } => {
            let changed = execute(
                conn,
                "UPDATE idempotency_keys SET token = ?4, lease_expires_at = ?5, expires_at = ?6 \
                 WHERE user_id = ?1 AND key = ?2 AND state = 'IN_PROGRESS' AND token = ?3",
                params![
                    user,
                    key,
                    from,
                    lease.token,
                    ts(lease.lease_until),
                    ts(lease.expires_at)
                ],
            )?;
            if changed != 1 {
                return Err(
                    Error::Conflict("the idempotency key moved while it was claimed").into(),
                );
            }
        }
        ClaimDecision::Replay(_) | ClaimDecision::InProgress | ClaimDecision::Reused => {}
    }
    Ok(decision.answer(claim))
}

#[async_trait]
impl IdempotencyKeys for SqliteStore {
    async fn claim(&self, new: &NewClaim) -> Result<Claim> {
        let new = new.clone();
        self.write(move |conn| claim(conn, &new)).await
    }

    /// Fails with `IdempotencyInProgress` when the token no longer holds the key, leaving the
    /// new holder's record alone.
    async fn record_refusal(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        refusal: &Refusal,
    ) -> Result<()> {
        let commit = IdempotencyCommit::refused(scope, token, refusal);
        self.write(move |conn| finish_key(conn, &commit)).await
    }

    async fn release(&self, scope: &IdempotencyScope, token: &str) -> Result<()> {
        let (scope, token) = (scope.clone(), token.to_string());
        self.write(move |conn| {
            execute(
                conn,
                "DELETE FROM idempotency_keys \
                 WHERE user_id = ?1 AND key = ?2 AND state = 'IN_PROGRESS' AND token = ?3",
                params![scope.user_id.as_str(), scope.key.as_str(), token],
            )?;
            Ok(())
        })
        .await
    }
}
