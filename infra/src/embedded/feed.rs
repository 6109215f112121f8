//! The event feed: one row per event, numbered in commit order by SQLite's single writer, so
//! a reader that sees a position has seen every position before it.

use super::SqliteStore;
use super::codec::{DbResult, all, execute, one, ts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::Result;
use giftify_shared::events::{Event, Feed, FeedCursor, FeedPage};
use giftify_shared::ports::EventFeed;
use rusqlite::{Connection, params};

fn record(conn: &Connection, event: &Event, now: DateTime<Utc>) -> DbResult<Event> {
    if let Some(body) = one(
        conn,
        "SELECT body FROM event_feed WHERE event_id = ?1",
        [event.event_id()],
        |row| Ok(row.get::<_, String>("body")?),
    )? {
        return Ok(Event::from_json(&body)?);
    }
    let last: i64 = conn.query_row(
        "SELECT COALESCE(MAX(sequence), 0) FROM event_feed WHERE order_id = ?1",
        [event.order_id().as_str()],
        |row| row.get(0),
    )?;
    let recorded = event.clone().sequenced(last.unsigned_abs() + 1);
    execute(
        conn,
        "INSERT INTO event_feed (event_id, user_id, order_id, sequence, body, recorded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            recorded.event_id(),
            recorded.user_id().as_str(),
            recorded.order_id().as_str(),
            recorded.sequence(),
            recorded.to_json(),
            ts(now),
        ],
    )?;
    Ok(recorded)
}

fn page(conn: &Connection, feed: &Feed, after: FeedCursor, limit: u32) -> DbResult<FeedPage> {
    let read = |row: &rusqlite::Row| {
        Ok((
            row.get::<_, i64>("position")?,
            row.get::<_, String>("body")?,
        ))
    };
    let after_position = i64::try_from(after.position).unwrap_or(i64::MAX);
    let fetch = i64::from(limit) + 1;
    let rows = match feed {
        Feed::All => all(
            conn,
            "SELECT position, body FROM event_feed WHERE position > ?1 ORDER BY position LIMIT ?2",
            params![after_position, fetch],
            read,
        )?,
        Feed::OfUser(user) => all(
            conn,
            "SELECT position, body FROM event_feed WHERE user_id = ?1 AND position > ?2 \
             ORDER BY position LIMIT ?3",
            params![user.as_str(), after_position, fetch],
            read,
        )?,
    };
    let has_more = rows.len() > limit as usize;
    let rows = &rows[..rows.len().min(limit as usize)];
    let next = FeedCursor {
        position: rows
            .last()
            .map_or(after.position, |(p, _)| p.unsigned_abs()),
        ..after
    };
    Ok(FeedPage {
        events: rows
            .iter()
            .map(|(_, body)| Event::from_json(body))
            .collect::<Result<_>>()?,
        next,
        has_more,
    })
}

#[async_trait]
impl EventFeed for SqliteStore {
    async fn record_event(&self, event: &Event, now: DateTime<Utc>) -> Result<Event> {
        let event = event.clone();
        self.write(move |conn| record(conn, &event, now)).await
    }

    async fn feed(&self, feed: &Feed, after: FeedCursor, limit: u32) -> Result<FeedPage> {
        let feed = feed.clone();
        self.read(move |conn| page(conn, &feed, after, limit)).await
    }
}
