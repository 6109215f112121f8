//! The daily figures' one write: a tally the core decided, added to its day's rows inside the
//! transaction of the write it counts (`giftify_shared::figures`). Kept apart from the port
//! (`reports.rs`), which reads orders and the ledger, so that the writers of money, orders and
//! cards need nothing but this.

use super::codec::{DbResult, day};
use giftify_shared::figures::Tally;
use rusqlite::{Connection, params};

/// Adds a tally the core decided to its day's figures, inside the caller's transaction. One
/// writer: no shards.
pub(super) fn add_tally(conn: &Connection, tally: &Tally) -> DbResult<()> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO daily_figures (day, counter, value) VALUES (?1, ?2, ?3) \
         ON CONFLICT (day, counter) DO UPDATE SET value = value + excluded.value",
    )?;
    let on = day(tally.day);
    for (counter, value) in tally.figures.counters() {
        upsert.execute(params![on, counter, value])?;
    }
    Ok(())
}
