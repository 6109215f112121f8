//! Finance reporting: the daily figures (added to by every write through
//! [`super::figures::add_tally`]), an account's first activity of the day, and the exports,
//! read by time through their indexes.

use super::SqliteStore;
use super::codec::{DbResult, all, day, execute, ts};
use super::figures::add_tally;
use super::orders::{ORDER_COLUMNS, order_from_row};
use super::wallet::{TRANSACTION_COLUMNS, transaction_from_row};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use giftify_shared::figures::{Activity, DayFigures, OpenOrders, Tally};
use giftify_shared::order::Order;
use giftify_shared::ports::Reports;
use giftify_shared::wallet::WalletTransaction;
use giftify_shared::{Error, Missing, Result};
use rusqlite::{Connection, OptionalExtension, params};

fn record_activity(conn: &Connection, activity: &Activity) -> DbResult<bool> {
    let previous: Option<Option<String>> = conn
        .query_row(
            "SELECT active_on FROM users WHERE id = ?1",
            [activity.user.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    let Some(previous) = previous else {
        return Err(Error::NotFound(Missing::User).into());
    };
    if previous != activity.previous.map(day) {
        return Ok(false);
    }
    execute(
        conn,
        "UPDATE users SET active_on = ?2 WHERE id = ?1",
        params![activity.user.as_str(), day(activity.day())],
    )?;
    add_tally(conn, &activity.tally)?;
    Ok(true)
}

fn recorded_days(conn: &Connection, through: NaiveDate) -> DbResult<Vec<(NaiveDate, DayFigures)>> {
    let rows = all(
        conn,
        "SELECT day, counter, value FROM daily_figures WHERE day <= ?1 ORDER BY day",
        [day(through)],
        |row| {
            Ok((
                row.get::<_, String>("day")?,
                row.get::<_, String>("counter")?,
                row.get::<_, i64>("value")?,
            ))
        },
    )?;
    let mut days: Vec<(NaiveDate, DayFigures)> = Vec::new();
    for chunk in rows.chunk_by(|a, b| a.0 == b.0) {
        let on: NaiveDate = chunk[0]
            .0
            .parse()
            .map_err(|_| super::codec::DbError::corrupt("a daily figures day"))?;
        let figures = DayFigures::from_counters(chunk.iter().map(|(_, c, v)| (c.as_str(), *v)))?;
        days.push((on, figures));
    }
    Ok(days)
}

#[async_trait]
impl Reports for SqliteStore {
    async fn record_tally(&self, tally: &Tally) -> Result<()> {
        let tally = tally.clone();
        self.write(move |conn| add_tally(conn, &tally)).await
    }

    async fn record_activity(&self, activity: &Activity) -> Result<bool> {
        let activity = activity.clone();
        self.write(move |conn| record_activity(conn, &activity))
            .await
    }

    async fn recorded_days(&self, through: NaiveDate) -> Result<Vec<(NaiveDate, DayFigures)>> {
        self.read(move |conn| recorded_days(conn, through)).await
    }

    async fn open_orders(&self) -> Result<OpenOrders> {
        self.read(|conn| {
            let count = |status: &str| -> DbResult<u64> {
                super::codec::count(
                    conn,
                    "SELECT COUNT(*) FROM orders WHERE status = ?1",
                    [status],
                )
            };
            Ok(OpenOrders {
                pending: count("PENDING")?,
                processing: count("PROCESSING")?,
            })
        })
        .await
    }

    async fn orders_created(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Order>> {
        self.read(move |conn| {
            all(
                conn,
                &format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE created_at >= ?1 AND created_at < ?2 \
                     ORDER BY created_at, id LIMIT ?3"
                ),
                params![ts(from), ts(to), limit],
                order_from_row,
            )
        })
        .await
    }

    async fn ledger_entries(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<WalletTransaction>> {
        self.read(move |conn| {
            all(
                conn,
                &format!(
                    "SELECT {TRANSACTION_COLUMNS} FROM wallet_transactions \
                     WHERE created_at >= ?1 AND created_at < ?2 ORDER BY created_at, rowid LIMIT ?3"
                ),
                params![ts(from), ts(to), limit],
                transaction_from_row,
            )
        })
        .await
    }
}
