//! The edge between SQLite and the domain: SQLite errors become domain errors, integer columns
//! become money and time, text columns become ids and enums. Nothing of rusqlite leaves the
//! adapter; data that does not decode is corrupt and surfaces as `Error::Internal`.

use chrono::{DateTime, Utc};
use giftify_shared::ids::InvalidId;
use giftify_shared::{Error, Paise};
use rusqlite::{Connection, ErrorCode, Params, Row};
use std::fmt::Display;
use std::str::FromStr;

/// An error inside a transaction: a SQLite failure (translated when it leaves the adapter) or
/// a domain outcome such as `InsufficientBalance` that rolls the transaction back.
#[derive(Debug)]
pub(crate) enum DbError {
    Sql(rusqlite::Error),
    Domain(Error),
}

pub(crate) type DbResult<T> = std::result::Result<T, DbError>;

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sql(e)
    }
}

impl From<Error> for DbError {
    fn from(e: Error) -> Self {
        DbError::Domain(e)
    }
}

impl DbError {
    pub(crate) fn into_error(self) -> Error {
        match self {
            DbError::Sql(e) => translate(e),
            DbError::Domain(e) => e,
        }
    }

    /// A stored value that does not decode: a bug or a damaged file, never the caller's fault.
    pub(crate) fn corrupt(what: impl Display) -> Self {
        DbError::Domain(Error::internal(format_args!(
            "corrupt data in the database: {what}"
        )))
    }

    /// True for a constraint violation with this extended result code whose message names
    /// `target` (e.g. `users.email`).
    pub(crate) fn violates(&self, extended_code: i32, target: &str) -> bool {
        matches!(
            self,
            DbError::Sql(rusqlite::Error::SqliteFailure(failure, message))
                if failure.extended_code == extended_code
                    && message.as_deref().is_some_and(|m| m.contains(target))
        )
    }

    /// True for a foreign key violation.
    pub(crate) fn is_foreign_key(&self) -> bool {
        matches!(
            self,
            DbError::Sql(rusqlite::Error::SqliteFailure(failure, _))
                if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
        )
    }

    /// A write refused by a foreign key is a write for a `what` that does not exist.
    pub(crate) fn missing_on_foreign_key(self, what: giftify_shared::Missing) -> Self {
        if self.is_foreign_key() {
            DbError::Domain(giftify_shared::Error::NotFound(what))
        } else {
            self
        }
    }
}

impl From<serde_json::Error> for DbError {
    fn from(e: serde_json::Error) -> Self {
        DbError::corrupt(e)
    }
}

/// Busy and locked databases are worth retrying, and so are machine faults — a full disk, a
/// read-only file system, an I/O error: SQLite rolls the transaction back, nothing half-done
/// stays, and the same request succeeds once the operator frees space or remounts. Anything
/// else from SQLite is unexpected.
pub(crate) fn translate(e: rusqlite::Error) -> Error {
    let cause = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => "the database is busy",
        Some(ErrorCode::DiskFull) => "the disk is full",
        Some(ErrorCode::ReadOnly) => "the database is read-only",
        Some(ErrorCode::SystemIoFailure) => "the disk failed an I/O operation",
        _ => return Error::Internal(anyhow::Error::new(e).context("sqlite")),
    };
    Error::Unavailable(anyhow::Error::new(e).context(cause))
}

/// Unix milliseconds, the stored form of every timestamp.
pub(crate) fn ts(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// Milliseconds of a duration, saturating (durations here are seconds to days).
pub(crate) fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn time_of(ms: i64) -> DbResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| DbError::corrupt(format!("timestamp {ms}")))
}

/// A timestamp column.
pub(crate) fn time(row: &Row, column: &str) -> DbResult<DateTime<Utc>> {
    time_of(row.get(column)?)
}

/// A nullable timestamp column.
pub(crate) fn opt_time(row: &Row, column: &str) -> DbResult<Option<DateTime<Utc>>> {
    row.get::<_, Option<i64>>(column)?.map(time_of).transpose()
}

/// `YYYY-MM-DD`, the stored form of every calendar date (it sorts as the dates do).
pub(crate) fn day(date: chrono::NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// A nullable date column.
pub(crate) fn opt_date(row: &Row, column: &str) -> DbResult<Option<chrono::NaiveDate>> {
    row.get::<_, Option<String>>(column)?
        .map(|raw| {
            chrono::NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
                .map_err(|_| DbError::corrupt(format!("{column} `{raw}`")))
        })
        .transpose()
}

/// A date column.
pub(crate) fn date(row: &Row, column: &str) -> DbResult<chrono::NaiveDate> {
    opt_date(row, column)?.ok_or_else(|| DbError::corrupt(format!("{column} is missing")))
}

/// A money column.
pub(crate) fn paise(row: &Row, column: &str) -> DbResult<Paise> {
    Ok(Paise::new(row.get(column)?))
}

/// A prefixed-id column.
pub(crate) fn id<T: FromStr<Err = InvalidId>>(row: &Row, column: &str) -> DbResult<T> {
    parse_id(&row.get::<_, String>(column)?)
}

pub(crate) fn opt_id<T: FromStr<Err = InvalidId>>(row: &Row, column: &str) -> DbResult<Option<T>> {
    row.get::<_, Option<String>>(column)?
        .map(|raw| parse_id(&raw))
        .transpose()
}

pub(crate) fn parse_id<T: FromStr<Err = InvalidId>>(raw: &str) -> DbResult<T> {
    raw.parse().map_err(DbError::corrupt)
}

/// An enum stored as its `as_str` text.
pub(crate) fn enumeration<T>(row: &Row, column: &str, parse: fn(&str) -> Option<T>) -> DbResult<T> {
    let raw: String = row.get(column)?;
    parse(&raw).ok_or_else(|| DbError::corrupt(format!("{column} `{raw}`")))
}

/// The first row of a query, decoded.
pub(crate) fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnOnce(&Row) -> DbResult<T>,
) -> DbResult<Option<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    match rows.next()? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// Every row of a query, decoded.
pub(crate) fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    mut decode: impl FnMut(&Row) -> DbResult<T>,
) -> DbResult<Vec<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// A `SELECT COUNT(*)`-style query.
pub(crate) fn count(conn: &Connection, sql: &str, params: impl Params) -> DbResult<u64> {
    let n: i64 = conn
        .prepare_cached(sql)?
        .query_row(params, |row| row.get(0))?;
    u64::try_from(n).map_err(DbError::corrupt)
}

/// Runs a statement and returns how many rows it changed.
pub(crate) fn execute(conn: &Connection, sql: &str, params: impl Params) -> DbResult<usize> {
    Ok(conn.prepare_cached(sql)?.execute(params)?)
}

/// `LIMIT`/`OFFSET` values of a page.
pub(crate) fn page_bounds(page: giftify_shared::wallet::PageRequest) -> (i64, i64) {
    (
        i64::from(page.limit),
        i64::try_from(page.offset()).unwrap_or(i64::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_error(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn machine_faults_are_unavailable_and_name_their_cause() {
        for (code, cause) in [
            (rusqlite::ffi::SQLITE_FULL, "the disk is full"),
            (rusqlite::ffi::SQLITE_READONLY, "read-only"),
            (rusqlite::ffi::SQLITE_IOERR, "I/O"),
            (rusqlite::ffi::SQLITE_BUSY, "busy"),
        ] {
            let error = translate(sqlite_error(code));
            assert!(error.is_retryable(), "{code}: {error:?}");
            assert!(
                format!("{error:#}").contains(cause) || format!("{error:?}").contains(cause),
                "{error:?}"
            );
        }
        assert!(!translate(sqlite_error(rusqlite::ffi::SQLITE_CORRUPT)).is_retryable());
    }
}
