//! Online backup and restore of the embedded database, and the checkpoint of a clean stop.
//!
//! A backup is `VACUUM INTO` a new file: SQLite copies one consistent snapshot inside a single
//! read transaction, which in WAL mode never blocks the API or the worker, even in other
//! processes. (The step-wise backup API restarts whenever another connection writes, so under
//! steady load it may never finish.) The copy is written beside its final name, made private
//! (0600), checked (`integrity_check`, schema version) and synced, then renamed into place: a
//! backup file either is whole and verified or does not exist.
//!
//! The keys are not in the database: a backup restores only with the `card.key` and `jwt.key`
//! (or variables) of the install it came from, and restore checks them against the key check
//! values the backup carries before it puts the file in place.

use super::schema;
use anyhow::{Context, Result, bail, ensure};
use giftify_shared::keys::{KeyVerdict, PresentedKey, judge};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What a verified database file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub bytes: u64,
    pub users: i64,
    pub orders: i64,
    pub gift_cards: i64,
}

impl std::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "users={} orders={} gift_cards={} bytes={}",
            self.users, self.orders, self.gift_cards, self.bytes
        )
    }
}

/// Copies the live database at `database` into the new file `target`, verified.
pub fn backup(database: &Path, target: &Path) -> Result<Snapshot> {
    ensure!(
        !target.exists(),
        "{} exists already; a backup never overwrites a file",
        target.display()
    );
    let source = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", database.display()))?;
    source.busy_timeout(super::BUSY_TIMEOUT)?;
    let partial = beside(target, ".partial");
    let _ = std::fs::remove_file(&partial);
    // Created empty and private first: SQLite writes into an empty file as it finds it, so
    // the copy of emails and password hashes is never readable by others, not even half-way.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    if let Err(error) = source.execute("VACUUM INTO ?1", [partial.to_string_lossy()]) {
        let _ = std::fs::remove_file(&partial);
        return Err(error).with_context(|| format!("cannot write {}", partial.display()));
    }
    settle(&partial, target)
}

/// Puts the backup `file` in place as the database of `data_dir`, which must have none yet,
/// after checking that `keys` are the ones the backup's data was sealed and signed with.
pub fn restore(file: &Path, data_dir: &Path, keys: &[PresentedKey]) -> Result<Snapshot> {
    let database = data_dir.join(DATABASE_FILE);
    ensure!(
        !database.exists(),
        "{} has a database already; restore only into a data dir without one",
        data_dir.display()
    );
    for leftover in ["-wal", "-shm"] {
        let path = beside(&database, leftover);
        ensure!(
            !path.exists(),
            "{} is left over from another database: remove it first (SQLite would apply it to \
             the restored file)",
            path.display()
        );
    }
    verify(file)?;
    let backup = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // A backup of a schema without key check values has nothing to compare: the first start
    // records the keys it is given.
    let has_checks: bool = backup.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'key_checks')",
        [],
        |row| row.get(0),
    )?;
    for key in keys.iter().filter(|_| has_checks) {
        let recorded: Option<String> = backup
            .query_row(
                "SELECT check_value FROM key_checks WHERE name = ?1",
                [key.name.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        if judge(recorded.as_deref(), &key.check_value) == KeyVerdict::Mismatch {
            bail!(
                "{} is not the {} this backup was sealed with: put the key files of the \
                 install the backup came from into {} first",
                key.source,
                key.name.noun(),
                data_dir.display()
            );
        }
    }
    drop(backup);
    let partial = beside(&database, ".partial");
    std::fs::copy(file, &partial)
        .with_context(|| format!("cannot copy {} into {}", file.display(), data_dir.display()))?;
    settle(&partial, &database)
}

/// Makes `partial` private, verifies and syncs it, and links it to `target`, which must not
/// exist: a link, unlike a rename, never replaces a file that appeared meanwhile (a `serve`
/// started on the data dir while the restore ran).
fn settle(partial: &Path, target: &Path) -> Result<Snapshot> {
    std::fs::set_permissions(partial, std::fs::Permissions::from_mode(0o600))?;
    let snapshot = match verify(partial) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            let _ = std::fs::remove_file(partial);
            return Err(error);
        }
    };
    std::fs::File::open(partial)?.sync_all()?;
    let linked = std::fs::hard_link(partial, target);
    let _ = std::fs::remove_file(partial);
    linked.with_context(|| format!("cannot put the copy in place as {}", target.display()))?;
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()?;
    Ok(snapshot)
}

/// Opens a database file read-only and checks it whole: integrity, a schema this build knows,
/// and what it holds.
pub fn verify(file: &Path) -> Result<Snapshot> {
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", file.display()))?;
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    ensure!(
        integrity == "ok",
        "{} fails its integrity check: {integrity}",
        file.display()
    );
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    ensure!(
        (1..=schema::VERSION).contains(&version),
        "{} has schema version {version}; this build reads 1 to {}",
        file.display(),
        schema::VERSION
    );
    let count = |table: &str| -> Result<i64> {
        Ok(
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                row.get(0)
            })?,
        )
    };
    Ok(Snapshot {
        bytes: std::fs::metadata(file)?.len(),
        users: count("users")?,
        orders: count("orders")?,
        gift_cards: count("gift_cards")?,
    })
}

/// Folds the write-ahead log into the database file and empties it, so that after a clean stop
/// `giftify.db` alone holds everything. Another process still working on the file keeps the
/// part of the log it needs; that is reported, not an error.
pub fn checkpoint(database: &Path) -> Result<bool> {
    let conn = Connection::open(database)
        .with_context(|| format!("cannot open {}", database.display()))?;
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
    Ok(busy == 0)
}

/// The database file's name in a data dir.
pub const DATABASE_FILE: &str = "giftify.db";

/// `path` with `suffix` appended to its name (`giftify.db` → `giftify.db-wal`).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QueueSettings;
    use crate::embedded::SqliteStore;
    use giftify_shared::keys::{KeyName, check_value};

    #[tokio::test]
    async fn a_backup_is_verified_private_and_restores_only_with_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("giftify.db");
        let store = SqliteStore::open(&live, QueueSettings::default())
            .await
            .unwrap();
        use giftify_shared::ports::KeyChecks;
        store
            .record_check(KeyName::Card, &check_value(&[1; 32]), chrono::Utc::now())
            .await
            .unwrap();
        let file = dir.path().join("backup.db");
        let snapshot = backup(&live, &file).unwrap();
        assert_eq!(snapshot.orders, 0);
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(backup(&live, &file).is_err(), "never overwrites");

        let key = |bytes: [u8; 32]| PresentedKey {
            name: KeyName::Card,
            source: "card.key".into(),
            check_value: check_value(&bytes),
        };
        let target = tempfile::tempdir().unwrap();
        let refused = restore(&file, target.path(), &[key([2; 32])]).unwrap_err();
        assert!(
            refused.to_string().contains("card.key is not the card key"),
            "{refused}"
        );
        assert!(!target.path().join("giftify.db").exists());
        restore(&file, target.path(), &[key([1; 32])]).unwrap();
        assert!(target.path().join("giftify.db").exists());
        let again = restore(&file, target.path(), &[key([1; 32])]).unwrap_err();
        assert!(
            again.to_string().contains("has a database already"),
            "{again}"
        );
    }

    #[test]
    fn a_damaged_file_is_not_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"not a database at all").unwrap();
        assert!(verify(&junk).is_err());
    }
}
