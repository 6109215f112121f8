//! The check values of the card and access-token keys (see [`giftify_shared::keys`]).

use super::SqliteStore;
use super::codec::{execute, one, ts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::Result;
use giftify_shared::keys::KeyName;
use giftify_shared::ports::KeyChecks;
use rusqlite::params;

#[async_trait]
impl KeyChecks for SqliteStore {
    async fn recorded_check(&self, key: KeyName) -> Result<Option<String>> {
        self.read(move |conn| {
            one(
                conn,
                "SELECT check_value FROM key_checks WHERE name = ?1",
                [key.as_str()],
                |row| Ok(row.get("check_value")?),
            )
        })
        .await
    }

    async fn record_check(&self, key: KeyName, value: &str, now: DateTime<Utc>) -> Result<String> {
        let value = value.to_string();
        self.write(move |conn| {
            execute(
                conn,
                "INSERT INTO key_checks (name, check_value, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO NOTHING",
                params![key.as_str(), value, ts(now)],
            )?;
            Ok(conn.query_row(
                "SELECT check_value FROM key_checks WHERE name = ?1",
                [key.as_str()],
                |row| row.get(0),
            )?)
        })
        .await
    }

    async fn sealed_cards(&self) -> Result<u64> {
        self.read(|conn| {
            let count: i64 =
                conn.query_row("SELECT COUNT(*) FROM gift_cards", [], |row| row.get(0))?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .await
    }
}
