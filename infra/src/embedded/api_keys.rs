//! API keys (secrets only as their SHA-256).

use super::SqliteStore;
use super::codec::{DbError, DbResult, all, execute, id, one, opt_time, time, ts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::Missing;
use giftify_shared::api_keys::{ApiKey, ApiKeyId, Scope};
use giftify_shared::ids::UserId;
use giftify_shared::ports::ApiKeys;
use giftify_shared::{Error, Result};
use rusqlite::{Connection, Row, params};

pub(super) const KEY_COLUMNS: &str =
    "id, user_id, name, scopes, secret_hash, prefix, created_at, last_used_at, revoked_at";

pub(super) fn key_from_row(row: &Row) -> DbResult<ApiKey> {
    let scopes: String = row.get("scopes")?;
    Ok(ApiKey {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        name: row.get("name")?,
        scopes: scopes
            .split(' ')
            .map(|name| Scope::parse(name).ok_or_else(|| DbError::corrupt("an unknown scope")))
            .collect::<DbResult<_>>()?,
        secret_hash: row.get("secret_hash")?,
        prefix: row.get("prefix")?,
        created_at: time(row, "created_at")?,
        last_used_at: opt_time(row, "last_used_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
    })
}

fn key_by_id(conn: &Connection, id: &ApiKeyId) -> DbResult<Option<ApiKey>> {
    one(
        conn,
        &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"),
        [id.as_str()],
        key_from_row,
    )
}

fn revoke(conn: &Connection, user: &UserId, id: &ApiKeyId, now: DateTime<Utc>) -> DbResult<ApiKey> {
    execute(
        conn,
        "UPDATE api_keys SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        params![id.as_str(), user.as_str(), ts(now)],
    )?;
    match key_by_id(conn, id)? {
        Some(key) if key.user_id == *user => Ok(key),
        _ => Err(Error::NotFound(Missing::ApiKey).into()),
    }
}

#[async_trait]
impl ApiKeys for SqliteStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<()> {
        let key = key.clone();
        self.write(move |conn| {
            let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
            execute(
                conn,
                "INSERT INTO api_keys (id, user_id, name, scopes, secret_hash, prefix, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    key.id.as_str(),
                    key.user_id.as_str(),
                    key.name,
                    scopes.join(" "),
                    key.secret_hash,
                    key.prefix,
                    ts(key.created_at),
                ],
            )
            .map_err(|e| e.missing_on_foreign_key(Missing::User))?;
            Ok(())
        })
        .await
    }

    async fn api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>> {
        let id = id.clone();
        self.read(move |conn| key_by_id(conn, &id)).await
    }

    async fn api_keys_of(&self, user: &UserId) -> Result<Vec<ApiKey>> {
        let user = user.clone();
        self.read(move |conn| {
            all(
                conn,
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ?1 \
                     ORDER BY created_at DESC, id DESC"
                ),
                [user.as_str()],
                key_from_row,
            )
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        user: &UserId,
        id: &ApiKeyId,
        now: DateTime<Utc>,
    ) -> Result<ApiKey> {
        let (user, id) = (user.clone(), id.clone());
        self.write(move |conn| revoke(conn, &user, &id, now)).await
    }

    async fn touch_api_key(
        &self,
        id: &ApiKeyId,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<()> {
        let id = id.clone();
        self.write(move |conn| {
            execute(
                conn,
                "UPDATE api_keys SET last_used_at = ?2 \
                 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
                params![id.as_str(), ts(now), ts(since)],
            )?;
            Ok(())
        })
        .await
    }
}
