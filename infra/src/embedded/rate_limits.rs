//! Request counts in fixed windows: one row per live window, counted up on the condition that
//! it holds fewer than its limit.

use super::SqliteStore;
use super::codec::{DbResult, execute, ts};
use async_trait::async_trait;
use giftify_shared::Result;
use giftify_shared::ports::RateLimits;
use giftify_shared::rate_limits::RateWindow;
use rusqlite::{Connection, params};

/// Counts one request unless the window is full; drops a few ended windows on the way, so
/// the table holds only the live ones.
fn count_request(conn: &Connection, window: &RateWindow) -> DbResult<bool> {
    let expires_at = ts(window.ends_at);
    execute(
        conn,
        "DELETE FROM request_counts WHERE rowid IN \
         (SELECT rowid FROM request_counts WHERE expires_at <= ?1 LIMIT 100)",
        [ts(window.starts_at)],
    )?;
    let counted = execute(
        conn,
        "INSERT INTO request_counts (bucket, requests, expires_at) VALUES (?1, 1, ?3) \
         ON CONFLICT (bucket) DO UPDATE SET requests = requests + 1 WHERE requests < ?2",
        params![window.bucket, window.limit, expires_at],
    )?;
    Ok(counted == 1)
}

#[async_trait]
impl RateLimits for SqliteStore {
    async fn count_request(&self, window: &RateWindow) -> Result<bool> {
        let window = window.clone();
        self.write(move |conn| count_request(conn, &window)).await
    }
}
