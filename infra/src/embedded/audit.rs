//! The audit log: one row per entry, its body the core's stored form. Triggers refuse every
//! UPDATE and DELETE, so not even a bug in this process can rewrite what an admin did.

use super::SqliteStore;
use super::codec::{DbError, all, execute, ts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::Result;
use giftify_shared::audit::AuditEntry;
use giftify_shared::ids::AuditId;
use giftify_shared::ports::AuditLog;
use rusqlite::params;

#[async_trait]
impl AuditLog for SqliteStore {
    async fn record_audit(&self, entry: &AuditEntry) -> Result<()> {
        let (id, at, body) = (entry.id.to_string(), ts(entry.at), entry.to_json());
        self.write(move |conn| {
            execute(
                conn,
                "INSERT INTO audit_log (id, at, body) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO NOTHING",
                params![id, at, body],
            )?;
            Ok(())
        })
        .await
    }

    async fn audit_slice(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        before: Option<&AuditId>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let before = before.map(ToString::to_string);
        self.read(move |conn| {
            all(
                conn,
                "SELECT body FROM audit_log \
                 WHERE at >= ?1 AND at < ?2 AND (?3 IS NULL OR id < ?3) \
                 ORDER BY id DESC LIMIT ?4",
                params![ts(from), ts(to), before, limit],
                |row| {
                    AuditEntry::from_json(&row.get::<_, String>("body")?).map_err(DbError::Domain)
                },
            )
        })
        .await
    }
}
