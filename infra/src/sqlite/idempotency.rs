//! Idempotency keys, scoped per user. A claim holds the key under a random token with a lease;
//! the money operation finishes the key in its own transaction ([`finish_key`]), conditional on
//! the token still holding it. Records expire [`RETENTION`] after their last claim and are then
//! treated as absent (and purged a few at a time).

use super::SqliteStore;
use super::codec::{DbError, DbResult, execute, one, parse_id, ts};
use async_trait::async_trait;
use giftify_shared::idempotency::{
    Claim, IdempotencyCommit, IdempotencyScope, IdempotentOutcome, LEASE, NewClaim, RETENTION,
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
    ToppedUp { transaction_id: String },
    OrderPlaced { order_id: String },
    OrderCancelled { order_id: String },
    Response { status: u16, body: String },
}

fn encode(outcome: &IdempotentOutcome) -> DbResult<String> {
    let stored = match outcome {
        IdempotentOutcome::ToppedUp(id) => StoredOutcome::ToppedUp {
            transaction_id: id.to_string(),
        },
        IdempotentOutcome::OrderPlaced(id) => StoredOutcome::OrderPlaced {
            order_id: id.to_string(),
        },
        IdempotentOutcome::OrderCancelled(id) => StoredOutcome::OrderCancelled {
            order_id: id.to_string(),
        },
        IdempotentOutcome::Response { status, body } => StoredOutcome::Response {
            status: *status,
            body: body.clone(),
        },
    };
    serde_json::to_string(&stored).map_err(|e| Error::Internal(e.into()).into())
}

fn decode(raw: &str) -> DbResult<IdempotentOutcome> {
    Ok(match serde_json::from_str(raw)? {
        StoredOutcome::ToppedUp { transaction_id } => {
            IdempotentOutcome::ToppedUp(parse_id(&transaction_id)?)
        }
        StoredOutcome::OrderPlaced { order_id } => {
            IdempotentOutcome::OrderPlaced(parse_id(&order_id)?)
        }
        StoredOutcome::OrderCancelled { order_id } => {
            IdempotentOutcome::OrderCancelled(parse_id(&order_id)?)
        }
        StoredOutcome::Response { status, body } => IdempotentOutcome::Response { status, body },
    })
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

struct StoredKey {
    fingerprint: String,
    done: bool,
    lease_expires_at: Option<i64>,
    outcome: Option<String>,
}

fn claim(conn: &Connection, claim: &NewClaim) -> DbResult<Claim> {
    let now = ts(claim.now);
    execute(
        conn,
        "DELETE FROM idempotency_keys WHERE rowid IN \
         (SELECT rowid FROM idempotency_keys WHERE expires_at <= ?1 LIMIT ?2)",
        params![now, PURGE_BATCH],
    )?;
    let (user, key) = (claim.scope.user_id.as_str(), claim.scope.key.as_str());
    let existing = one(
        conn,
        "SELECT fingerprint, state, lease_expires_at, outcome FROM idempotency_keys \
         WHERE user_id = ?1 AND key = ?2 AND expires_at > ?3",
        params![user, key, now],
        |row| {
            Ok(StoredKey {
                fingerprint: row.get("fingerprint")?,
                done: row.get::<_, String>("state")? == "DONE",
                lease_expires_at: row.get("lease_expires_at")?,
                outcome: row.get("outcome")?,
            })
        },
    )?;
    let lease = ts(claim.now + LEASE);
    match existing {
        None => {
            // An expired record may still be there (beyond the purge batch): it counts as absent.
            execute(
                conn,
                "INSERT OR REPLACE INTO idempotency_keys \
                 (user_id, key, fingerprint, state, token, lease_expires_at, outcome, created_at, \
                  expires_at) VALUES (?1, ?2, ?3, 'IN_PROGRESS', ?4, ?5, NULL, ?6, ?7)",
                params![
                    user,
                    key,
                    claim.fingerprint,
                    claim.token,
                    lease,
                    now,
                    ts(claim.now + RETENTION)
                ],
            )?;
            Ok(Claim::Acquired(claim.token.clone()))
        }
        Some(stored) if stored.fingerprint != claim.fingerprint => Ok(Claim::KeyReused),
        Some(stored) if stored.done => {
            let outcome = stored
                .outcome
                .ok_or_else(|| DbError::corrupt("a finished idempotency key has no outcome"))?;
            Ok(Claim::Replay(decode(&outcome)?))
        }
        Some(stored) if stored.lease_expires_at.is_some_and(|until| until > now) => {
            Ok(Claim::InProgress)
        }
        Some(_) => {
            // The holder's lease ran out (it crashed or stalled): take the key over. Its commit
            // names the old token and will now fail, so the work cannot happen twice.
            execute(
                conn,
                "UPDATE idempotency_keys SET token = ?3, lease_expires_at = ?4, expires_at = ?5 \
                 WHERE user_id = ?1 AND key = ?2",
                params![user, key, claim.token, lease, ts(claim.now + RETENTION)],
            )?;
            Ok(Claim::Acquired(claim.token.clone()))
        }
    }
}

#[async_trait]
impl IdempotencyKeys for SqliteStore {
    async fn claim(&self, new: &NewClaim) -> Result<Claim> {
        let new = new.clone();
        self.write(move |conn| claim(conn, &new)).await
    }

    /// Fails with `IdempotencyInProgress` when the token no longer holds the key, leaving the
    /// new holder's record alone.
    async fn record_response(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        status: u16,
        body: &str,
    ) -> Result<()> {
        let commit = IdempotencyCommit {
            scope: scope.clone(),
            token: token.to_string(),
            outcome: IdempotentOutcome::Response {
                status,
                body: body.to_string(),
            },
        };
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
