//! Refresh-token families (rotation with reuse detection) and per-account login throttling.

use super::SqliteStore;
use super::codec::{DbResult, execute, id, one, time_of, ts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::Missing;
use giftify_shared::Result;
use giftify_shared::ids::UserId;
use giftify_shared::ports::{LoginThrottle, Sessions};
use giftify_shared::user::{NewRefreshToken, Rotation, ThrottlePolicy};
use rusqlite::{Connection, params};

fn insert_token(
    conn: &Connection,
    token: &NewRefreshToken,
    family_id: &str,
    user_id: &UserId,
    session_epoch: u32,
) -> DbResult<()> {
    execute(
        conn,
        "INSERT INTO refresh_tokens \
         (token_hash, family_id, user_id, expires_at, created_at, session_epoch) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            token.token_hash,
            family_id,
            user_id.as_str(),
            ts(token.expires_at),
            ts(token.now),
            session_epoch
        ],
    )
    .map_err(|e| e.missing_on_foreign_key(Missing::User))?;
    Ok(())
}

fn revoke(conn: &Connection, family_id: &str, now: i64) -> DbResult<()> {
    execute(
        conn,
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
        params![family_id, now],
    )?;
    Ok(())
}

struct StoredToken {
    family_id: String,
    user_id: UserId,
    session_epoch: u32,
    expires_at: i64,
    used: bool,
    revoked: bool,
}

fn rotate(conn: &Connection, presented: &str, replacement: &NewRefreshToken) -> DbResult<Rotation> {
    let stored = one(
        conn,
        "SELECT family_id, user_id, session_epoch, expires_at, used_at, revoked_at \
         FROM refresh_tokens \
         WHERE token_hash = ?1",
        [presented],
        |row| {
            Ok(StoredToken {
                family_id: row.get("family_id")?,
                user_id: id(row, "user_id")?,
                session_epoch: row.get("session_epoch")?,
                expires_at: row.get("expires_at")?,
                used: row.get::<_, Option<i64>>("used_at")?.is_some(),
                revoked: row.get::<_, Option<i64>>("revoked_at")?.is_some(),
            })
        },
    )?;
    let now = ts(replacement.now);
    let Some(stored) = stored else {
        return Ok(Rotation::Invalid);
    };
    // A spent token can only come back from someone who copied it: whoever holds the family
    // now may be the thief, so the whole family goes.
    if stored.used {
        revoke(conn, &stored.family_id, now)?;
        return Ok(Rotation::ReuseDetected);
    }
    if stored.revoked || stored.expires_at <= now {
        return Ok(Rotation::Invalid);
    }
    execute(
        conn,
        "UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1",
        params![presented, now],
    )?;
    // The family and owner come from the stored token, not the caller: a rotation can never
    // move a session to another family or user.
    insert_token(
        conn,
        replacement,
        &stored.family_id,
        &stored.user_id,
        stored.session_epoch,
    )?;
    Ok(Rotation::Rotated {
        user_id: stored.user_id,
        session_epoch: stored.session_epoch,
    })
}

#[async_trait]
impl Sessions for SqliteStore {
    async fn start_session(&self, token: &NewRefreshToken) -> Result<()> {
        let token = token.clone();
        self.write(move |conn| {
            insert_token(
                conn,
                &token,
                &token.family_id,
                &token.user_id,
                token.session_epoch,
            )
        })
        .await
    }

    async fn rotate(
        &self,
        presented_hash: &str,
        replacement: &NewRefreshToken,
    ) -> Result<Rotation> {
        let (presented, replacement) = (presented_hash.to_string(), replacement.clone());
        self.write(move |conn| rotate(conn, &presented, &replacement))
            .await
    }

    async fn revoke_family(&self, presented_hash: &str) -> Result<()> {
        let presented = presented_hash.to_string();
        let now = self.now_ms();
        self.write(move |conn| {
            let family: Option<String> = one(
                conn,
                "SELECT family_id FROM refresh_tokens WHERE token_hash = ?1",
                [&presented],
                |row| Ok(row.get("family_id")?),
            )?;
            match family {
                Some(family) => revoke(conn, &family, now),
                None => Ok(()),
            }
        })
        .await
    }
}

struct ThrottleRow {
    failures: u32,
    window_started_at: i64,
    locked_until: Option<i64>,
}

fn millis_of(duration: chrono::Duration) -> i64 {
    duration.num_milliseconds()
}

#[async_trait]
impl LoginThrottle for SqliteStore {
    async fn locked_until(
        &self,
        account: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        let account = account.to_string();
        self.read(move |conn| {
            let until: Option<i64> = one(
                conn,
                "SELECT locked_until FROM login_throttle \
                 WHERE account = ?1 AND locked_until > ?2",
                params![account, ts(now)],
                |row| Ok(row.get("locked_until")?),
            )?;
            until.map(time_of).transpose()
        })
        .await
    }

    async fn record_failure(
        &self,
        account: &str,
        policy: &ThrottlePolicy,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        let (account, policy) = (account.to_string(), *policy);
        self.write(move |conn| {
            let now = ts(now);
            let row = one(
                conn,
                "SELECT failures, window_started_at, locked_until FROM login_throttle \
                 WHERE account = ?1",
                [&account],
                |row| {
                    Ok(ThrottleRow {
                        failures: row.get("failures")?,
                        window_started_at: row.get("window_started_at")?,
                        locked_until: row.get("locked_until")?,
                    })
                },
            )?;
            if let Some(until) = row
                .as_ref()
                .and_then(|r| r.locked_until)
                .filter(|&u| u > now)
            {
                // Already locked (a login raced the check): the lock stands, unextended.
                return Ok(Some(time_of(until)?));
            }
            let (failures, window_started_at) = match row {
                Some(r)
                    if r.locked_until.is_none()
                        && now < r.window_started_at.saturating_add(millis_of(policy.window)) =>
                {
                    (r.failures.saturating_add(1), r.window_started_at)
                }
                // No record, an expired window, or a lock that ran out: a new window starts.
                _ => (1, now),
            };
            let locked_until = (failures >= policy.max_failures)
                .then(|| now.saturating_add(millis_of(policy.lockout)));
            execute(
                conn,
                "INSERT INTO login_throttle (account, failures, window_started_at, locked_until) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (account) DO UPDATE SET failures = excluded.failures, \
                 window_started_at = excluded.window_started_at, \
                 locked_until = excluded.locked_until",
                params![account, failures, window_started_at, locked_until],
            )?;
            locked_until.map(time_of).transpose()
        })
        .await
    }

    async fn reset(&self, account: &str) -> Result<()> {
        let account = account.to_string();
        self.write(move |conn| {
            execute(
                conn,
                "DELETE FROM login_throttle WHERE account = ?1",
                [&account],
            )?;
            Ok(())
        })
        .await
    }
}
