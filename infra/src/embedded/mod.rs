//! The embedded backend: every port of [`giftify_shared::ports`] except event publishing (see
//! [`crate::embedded::webhooks`]) on one SQLite database file, together with the durable FIFO queue and
//! the event log that live in the same file.
//!
//! Each port method that changes money, stock, an order, a cart, an idempotency key or a token
//! is one `BEGIN IMMEDIATE` transaction that checks its MUST conditions inside it, so a failed
//! condition rolls everything back and a crash leaves either all of it or none of it.
//!
//! Connections: one writer on its own thread and a small pool of read-only readers. In WAL mode
//! the readers see the last committed state while the writer works. The writer commits the
//! operations queued while it was busy together, each inside its own savepoint, with one log
//! sync per batch (group commit, see [`writer`]): every operation stays atomic and durable on
//! its own, and the disk's sync rate stops being the cap on operations per second. Two
//! processes (API and worker) may open the same file: SQLite's file lock serialises their
//! writers, `IMMEDIATE` takes the write lock up front (no deadlocking lock upgrade half-way
//! through), and a writer that waits longer than the busy timeout surfaces as
//! [`giftify_shared::Error::Unavailable`], which callers may retry.
//!
//! No database work runs on the async runtime's threads: writes on the writer thread, reads on
//! `spawn_blocking`.

mod api_keys;
mod audit;
pub mod backup;
mod cards;
mod carts;
mod catalogue;
mod codec;
mod codes;
mod feed;
mod figures;
mod idempotency;
mod inbox;
mod keys;
mod migration;
mod orders;
mod queue;
mod rate_limits;
mod reports;
pub mod runtime;
mod schema;
mod sessions;
mod users;
mod wallet;
mod webhook_log;
pub mod webhooks;
mod writer;

use crate::config::QueueSettings;
use crate::file_lock::FileLock;
use anyhow::Context;
use async_trait::async_trait;
use codec::{DbResult, translate};
use giftify_shared::ports::Health;
use giftify_shared::{Clock, Error, Result, SystemClock};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// How long a connection waits for another connection's (or process's) write lock before the
/// operation fails with `Unavailable`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle reader connections kept open; more are opened under load and closed afterwards. Enough
/// for the reads a busy server has in flight at once: a connection opened per read parses the
/// whole schema again and starts with an empty statement cache (at 4, a profile of 16 clients
/// reading the catalogue showed schema parsing among the top costs).
const IDLE_READERS: usize = 16;

/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 128;

/// How a store is opened: the queue settings from configuration, and the knobs that only
/// tests turn.
#[derive(Clone)]
pub struct StoreOptions {
    pub queue: QueueSettings,
    /// A second send with the same deduplication id within this window is dropped (SQS FIFO:
    /// five minutes).
    pub dedup_window: Duration,
    /// How long a write waits for another connection's write lock before `Unavailable`.
    pub busy_timeout: Duration,
    /// Where the store's time comes from: the same clock as the core's, so a simulation
    /// that steers time steers the queue's visibility and the event log too.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("queue", &self.queue)
            .field("dedup_window", &self.dedup_window)
            .field("busy_timeout", &self.busy_timeout)
            .finish_non_exhaustive()
    }
}

impl StoreOptions {
    /// The production defaults around these queue settings.
    pub fn new(queue: QueueSettings) -> Self {
        StoreOptions {
            queue,
            dedup_window: Duration::from_secs(5 * 60),
            busy_timeout: BUSY_TIMEOUT,
            clock: Arc::new(SystemClock),
        }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions::new(QueueSettings::default())
    }
}

/// The embedded SQLite store. Open it once per process and share the `Arc`.
pub struct SqliteStore {
    db: Arc<Db>,
    options: StoreOptions,
    /// Poked after a commit that makes a queue message deliverable, so a consumer in this
    /// process wakes at once instead of at its next poll.
    queue_work: Notify,
    /// Poked when an event is recorded or a delivery comes due, for the webhook dispatcher.
    delivery_work: Notify,
    /// When the health check's write last succeeded (unix ms), so that `/health`, which
    /// anyone may call, adds at most one write a second to the writer's queue.
    last_write_probe: AtomicI64,
}

/// How long a successful health-check write vouches for the disk.
const WRITE_PROBE_VALID_MS: i64 = 1_000;

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.db.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating when needed) the database at `path` and brings its schema up to date.
    ///
    /// Every connection runs in WAL mode with `synchronous=FULL`: in WAL mode `NORMAL` can lose
    /// the last commits on power loss, while `FULL` syncs the log on every commit, so a debit
    /// that was acknowledged is on disk. `foreign_keys=ON`, and a busy timeout of
    /// [`BUSY_TIMEOUT`].
    pub async fn open(path: &Path, queue: QueueSettings) -> anyhow::Result<Arc<SqliteStore>> {
        Self::open_with(path, StoreOptions::new(queue)).await
    }

    /// [`SqliteStore::open`] with every option spelled out.
    pub async fn open_with(path: &Path, options: StoreOptions) -> anyhow::Result<Arc<SqliteStore>> {
        let path = path.to_path_buf();
        let busy_timeout = options.busy_timeout;
        let db = tokio::task::spawn_blocking(move || Db::open(path, busy_timeout))
            .await
            .context("the database open task failed")??;
        Ok(Arc::new(SqliteStore {
            db: Arc::new(db),
            options,
            queue_work: Notify::new(),
            delivery_work: Notify::new(),
            last_write_probe: AtomicI64::new(i64::MIN),
        }))
    }

    /// The options this store was opened with.
    pub fn options(&self) -> StoreOptions {
        self.options.clone()
    }

    /// Write transactions committed since the store opened (each carries every write
    /// operation queued meanwhile: see [`writer`]).
    pub fn committed_transactions(&self) -> u64 {
        self.db.writer.commits()
    }

    /// Now, from the store's clock, as stored (unix milliseconds).
    pub(crate) fn now_ms(&self) -> i64 {
        codec::ts(self.options.clock.now())
    }

    /// Runs `op` atomically on the writer: inside a `BEGIN IMMEDIATE` transaction, in its own
    /// savepoint, kept when it returns `Ok` and undone when it returns `Err`; the answer comes
    /// once the transaction holding it has committed.
    async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        let written = self.db.writer.write(op).await;
        if matches!(written, Err(Error::Unavailable(_))) {
            // A full or failing disk: the next health check must look again.
            self.last_write_probe.store(i64::MIN, Ordering::Relaxed);
        }
        written
    }

    /// Runs `op` in one read transaction on a reader, so a multi-query read sees one snapshot.
    async fn read<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        let db = self.db.clone();
        blocking(move || db.read(op)).await
    }
}

async fn blocking<T: Send + 'static>(op: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(op).await {
        Ok(result) => result,
        Err(e) if e.is_cancelled() => Err(Error::Unavailable(
            anyhow::Error::new(e).context("the runtime is shutting down"),
        )),
        Err(e) => Err(Error::Internal(
            anyhow::Error::new(e).context("a database task panicked"),
        )),
    }
}

struct Db {
    path: PathBuf,
    busy_timeout: Duration,
    writer: writer::Writer,
    readers: Mutex<Vec<Connection>>,
}

impl Db {
    fn open(path: PathBuf, busy_timeout: Duration) -> anyhow::Result<Db> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir)?;
        }
        let writer = {
            // Two processes opening a fresh file at once (an API and a worker started
            // together) race inside SQLite: switching a new database to WAL needs an exclusive
            // lock, and the loser gets SQLITE_BUSY without its busy handler ever being called,
            // so the busy timeout does not help. Openers take turns instead.
            let mut lock_path = path.as_os_str().to_owned();
            lock_path.push(".setup-lock");
            let _turn = FileLock::take(Path::new(&lock_path))?;
            private_files(&path)?;
            let mut writer = Connection::open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            configure(&writer, busy_timeout)?;
            let mode: String =
                writer.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
            anyhow::ensure!(
                mode.eq_ignore_ascii_case("wal"),
                "{} cannot use WAL mode (journal mode is {mode})",
                path.display()
            );
            schema::migrate(&mut writer)?;
            writer
        };
        // Every write statement is prepared once per connection; the default cache (16) is
        // smaller than the set an order's operations use, and re-preparing costs more than
        // running most of them.
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let writer = writer::Writer::spawn(writer, "giftify-sqlite-writer".into())
            .context("cannot start the database writer thread")?;
        Ok(Db {
            path,
            busy_timeout,
            writer,
            readers: Mutex::new(Vec::new()),
        })
    }

    fn read<T>(&self, op: impl FnOnce(&Connection) -> DbResult<T>) -> Result<T> {
        let mut conn = self.reader()?;
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let value = op(&tx)?;
            tx.commit()?;
            Ok(value)
        })();
        let mut idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_READERS && conn.is_autocommit() {
            idle.push(conn);
        }
        result.map_err(codec::DbError::into_error)
    }

    fn reader(&self) -> Result<Connection> {
        if let Some(conn) = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
        {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(translate)?;
        configure(&conn, self.busy_timeout).map_err(translate)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Readers never write: a bug that tries to fails loudly instead of bypassing the writer.
        conn.pragma_update(None, "query_only", true)
            .map_err(translate)?;
        Ok(conn)
    }
}

/// Creates `dir` (with its parents) private to its owner (0700) when it is missing. An
/// existing directory is left as it is, with a warning when others may enter it: it may be a
/// directory the operator shares on purpose, and changing it is theirs to decide.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::metadata(dir) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    dir = %dir.display(),
                    mode = format!("{mode:04o}"),
                    "the data dir is open to others; `chmod 700` it to keep the database private"
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display())),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// Makes the database file and its `-wal` / `-shm` companions readable by their owner only
/// (0600): they hold emails, phone numbers and password hashes. A new database file is created
/// 0600 before SQLite opens it, and SQLite gives the companions it creates the mode of the
/// database file; files of an older build are tightened, with a log line.
fn private_files(database: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(database)
        .with_context(|| format!("cannot create {}", database.display()))?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode != 0o600 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot make {} private", file.display()))?;
            tracing::warn!(file = %file.display(), was = format!("{mode:04o}"), "made a database file private (0600)");
        }
    }
    Ok(())
}

fn configure(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

#[async_trait]
impl Health for SqliteStore {
    /// A read on a reader, and a one-row write through the writer: a full disk, a read-only
    /// file system or a failing device lets reads through but not writes, and is reported
    /// (`Unavailable`) until a write succeeds again. A write that succeeded within the last
    /// second vouches for the disk, so a flood of checks cannot crowd out orders.
    async fn check(&self) -> Result<()> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await?;
        let now = self.now_ms();
        if now.saturating_sub(self.last_write_probe.load(Ordering::Relaxed)) < WRITE_PROBE_VALID_MS
        {
            return Ok(());
        }
        self.write(move |conn| {
            codec::execute(
                conn,
                "INSERT INTO health_probe (id, at) VALUES (1, ?1) \
                 ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                [now],
            )?;
            Ok(())
        })
        .await?;
        self.last_write_probe.store(now, Ordering::Relaxed);
        Ok(())
    }
}

/// Every port on one database, with a webhook sender of its own: build it once per process.
/// # Errors
/// When the HTTP client cannot be built.
pub fn ports_of(store: &Arc<SqliteStore>) -> anyhow::Result<giftify_shared::ports::Ports> {
    Ok(giftify_shared::ports::Ports::from_backend(
        store.clone(),
        store.clone(),
        Some(Arc::new(crate::webhook_sender::HttpSender::new()?)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use giftify_shared::ports::{OrderQueue, QueueOps};

    #[tokio::test]
    async fn opening_twice_keeps_the_schema_and_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("giftify.db");
        let first = SqliteStore::open(&path, QueueSettings::default())
            .await
            .unwrap();
        first.check().await.unwrap();
        drop(first);
        let second = SqliteStore::open(&path, QueueSettings::default())
            .await
            .unwrap();
        second.check().await.unwrap();
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::VERSION);
        let mode: String = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn a_write_lock_held_elsewhere_surfaces_as_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("giftify.db");
        let store = SqliteStore::open_with(
            &path,
            StoreOptions {
                busy_timeout: Duration::from_millis(100),
                ..StoreOptions::default()
            },
        )
        .await
        .unwrap();
        // Another "process" holds the write lock for longer than the busy timeout.
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let message = giftify_shared::order::OrderMessage {
            order_id: giftify_shared::ids::OrderId::generate(),
            user_id: giftify_shared::ids::UserId::generate(),
        };
        let err = store.enqueue(&message).await.unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
        assert!(err.is_retryable());
        // Reads are not blocked by a writer in WAL mode; the health check, which also writes,
        // reports the blocked writer.
        store.depths().await.unwrap();
        let health = store.check().await.unwrap_err();
        assert!(matches!(health, Error::Unavailable(_)), "{health:?}");
        other.execute_batch("ROLLBACK").unwrap();
        store.enqueue(&message).await.unwrap();
        store.check().await.unwrap();
    }
}
