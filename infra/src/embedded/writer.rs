//! Group commit: the one writer connection of a store lives on its own thread and commits the
//! write operations that queue up while it works in one transaction, with one log sync.
//!
//! Why: with `synchronous=FULL` every commit waits for an fdatasync of the WAL (milliseconds on
//! real disks), and one connection commits one transaction at a time, so a store that commits
//! each operation on its own is capped at the disk's sync rate — a few hundred operations per
//! second, each order taking half a dozen. Many operations sharing one sync lift that cap
//! without weakening durability: no caller hears "done" before the sync that covers its work.
//!
//! What each operation keeps:
//! - **atomicity**: it runs inside its own `SAVEPOINT`; when it returns `Err` (a failed MUST
//!   condition, a constraint) or panics, `ROLLBACK TO` undoes exactly its writes, and the
//!   operations before and after it in the batch are unaffected;
//! - **isolation**: operations run one after another on one connection, so each sees the
//!   effects of the ones before it, exactly as if they had committed one by one in that order;
//! - **durability**: results are handed back only after `COMMIT` returned; if the commit fails,
//!   every operation of the batch gets that failure (retryable when SQLite was busy), even one
//!   whose own outcome was an error, because that outcome may rest on writes that never
//!   committed;
//! - **no added latency when idle**: the thread never waits to fill a batch; it takes what is
//!   queued when it starts a transaction, so a lone operation commits at once.
//!
//! Batches are bounded ([`MAX_BATCH`]) so the write lock, which another process on the same
//! file may be waiting for, is never held for long.

use super::codec::{DbError, DbResult, translate};
use giftify_shared::{Error, Result};
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Most operations committed by one transaction. At typical costs of tens to a few hundred
/// microseconds per operation this keeps a batch, and the write lock, to a few milliseconds.
pub(crate) const MAX_BATCH: usize = 64;

/// One queued write operation, type-erased so that operations of any result type share the
/// queue.
trait Job: Send {
    /// Runs the operation on the batch's connection; true when it succeeded and its writes
    /// are to be kept.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Hands the outcome to the caller: the operation's own result when the batch committed,
    /// else the reason the batch did not.
    fn finish(self: Box<Self>, batch: std::result::Result<(), &BatchFailure>);
}

struct TypedJob<T, F> {
    op: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> DbResult<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(op) = self.op.take() else {
            return false;
        };
        // A panicking operation must not take the batch (or the writer thread) with it: its
        // savepoint is rolled back like any failed operation.
        let outcome = match catch_unwind(AssertUnwindSafe(|| op(conn))) {
            Ok(result) => result.map_err(DbError::into_error),
            Err(_) => Err(Error::internal("a database write operation panicked")),
        };
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, batch: std::result::Result<(), &BatchFailure>) {
        let outcome = match batch {
            Ok(()) => self
                .outcome
                .unwrap_or_else(|| Err(Error::internal("a write operation never ran"))),
            Err(failure) => Err(failure.to_error()),
        };
        // The caller may have gone away (a cancelled request); its write still happened.
        let _ = self.reply.send(outcome);
    }
}

/// Why a whole batch did not commit, kept as text so each caller gets its own error.
struct BatchFailure {
    retryable: bool,
    reason: String,
}

impl BatchFailure {
    fn from_sqlite(what: &str, error: rusqlite::Error) -> Self {
        let translated = translate(error);
        BatchFailure {
            retryable: translated.is_retryable(),
            reason: format!(
                "{what}: {}",
                giftify_shared::usecases::error_chain(&translated)
            ),
        }
    }

    fn to_error(&self) -> Error {
        let error = anyhow::anyhow!("{}", self.reason);
        if self.retryable {
            Error::Unavailable(error)
        } else {
            Error::Internal(error)
        }
    }
}

/// The handle through which a store sends its writes to the writer thread.
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Moves `conn` to a new thread that commits the operations sent to it until every
    /// handle is dropped, then closes the connection.
    pub(crate) fn spawn(conn: Connection, name: String) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let commits = Arc::new(AtomicU64::new(0));
        let counted = commits.clone();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || run(&conn, &queue, &counted))?;
        Ok(Writer { jobs, commits })
    }

    /// Transactions committed since the writer started: with the operations asked of it, how
    /// many operations a commit (and its log sync) carries.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Queues `op` and waits until the batch that holds it has committed (or failed).
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(TypedJob {
            op: Some(op),
            outcome: None,
            reply,
        });
        if self.jobs.send(job).is_err() {
            return Err(Error::internal("the database writer has stopped"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(Error::internal("the database writer stopped mid-write")))
    }
}

fn run(conn: &Connection, queue: &mpsc::Receiver<Box<dyn Job>>, commits: &AtomicU64) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(conn, batch, commits);
    }
}

/// Runs and commits one batch, counting it in `commits` before anyone hears of it.
fn commit_batch(conn: &Connection, mut batch: Vec<Box<dyn Job>>, commits: &AtomicU64) {
    if !conn.is_autocommit() {
        // Only a bug can leave a transaction open here; never build on its state.
        let _ = conn.execute_batch("ROLLBACK");
    }
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
        let failure = BatchFailure::from_sqlite("cannot start a write transaction", error);
        for job in batch {
            job.finish(Err(&failure));
        }
        return;
    }
    let broken = batch
        .iter_mut()
        .find_map(|job| run_in_savepoint(conn, job.as_mut()).err());
    if let Some(failure) = broken {
        // The transaction is gone or in an unknown state: nothing of the batch commits.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for job in batch {
            job.finish(Err(&failure));
        }
        return;
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            commits.fetch_add(1, Ordering::Relaxed);
            for job in batch {
                job.finish(Ok(()));
            }
        }
        Err(error) => {
            let failure = BatchFailure::from_sqlite("the commit failed", error);
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            for job in batch {
                job.finish(Err(&failure));
            }
        }
    }
}

/// Runs one job inside its own savepoint, keeping its writes only when it succeeded. `Err`
/// means the enclosing transaction can no longer be trusted.
fn run_in_savepoint(conn: &Connection, job: &mut dyn Job) -> std::result::Result<(), BatchFailure> {
    conn.execute_batch("SAVEPOINT op")
        .map_err(|e| BatchFailure::from_sqlite("cannot open a savepoint", e))?;
    let ok = job.run(conn);
    if conn.is_autocommit() {
        // SQLite rolled the whole transaction back on its own (I/O error, disk full, …):
        // the writes of the jobs before this one are gone too.
        return Err(BatchFailure {
            retryable: true,
            reason: "SQLite rolled the write transaction back".into(),
        });
    }
    let end = if ok {
        "RELEASE op"
    } else {
        "ROLLBACK TO op; RELEASE op"
    };
    conn.execute_batch(end)
        .map_err(|e| BatchFailure::from_sqlite("cannot close a savepoint", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    fn writer() -> (Writer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; \
             CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER NOT NULL CHECK (v >= 0));",
        )
        .unwrap();
        (Writer::spawn(conn, "test-writer".into()).unwrap(), dir)
    }

    fn read(dir: &tempfile::TempDir) -> Vec<(i64, i64)> {
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        let mut statement = conn.prepare("SELECT k, v FROM t ORDER BY k").unwrap();
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    #[tokio::test]
    async fn each_committed_transaction_is_counted_before_its_callers_hear_of_it() {
        let (writer, _dir) = writer();
        assert_eq!(writer.commits(), 0);
        for k in 0..3i64 {
            writer
                .write(move |conn| {
                    conn.execute("INSERT INTO t (k, v) VALUES (?1, 1)", params![k])?;
                    Ok(())
                })
                .await
                .unwrap();
            assert_eq!(writer.commits(), k.unsigned_abs() + 1);
        }
        // A failed operation is undone, but its transaction still commits (empty).
        let failed = writer
            .write(|_| -> DbResult<()> { Err(DbError::Domain(Error::Conflict("no"))) })
            .await;
        assert!(failed.is_err());
        assert_eq!(writer.commits(), 4);
    }

    #[tokio::test]
    async fn a_failed_or_panicking_operation_undoes_only_its_own_writes() {
        let (writer, dir) = writer();
        let writer = std::sync::Arc::new(writer);
        let mut handles = Vec::new();
        for k in 0..40i64 {
            let writer = writer.clone();
            handles.push(tokio::spawn(async move {
                writer
                    .write(move |conn| {
                        conn.execute("INSERT INTO t (k, v) VALUES (?1, 1)", params![k])?;
                        match k % 4 {
                            // A failed business condition after a write: the write goes.
                            1 => Err(DbError::Domain(Error::Conflict("no"))),
                            // A constraint violation after a write: both go.
                            2 => {
                                conn.execute("UPDATE t SET v = -1 WHERE k = ?1", params![k])?;
                                Ok(())
                            }
                            3 => panic!("a bug in an operation"),
                            _ => Ok(()),
                        }
                    })
                    .await
            }));
        }
        let mut outcomes = Vec::new();
        for handle in handles {
            outcomes.push(handle.await.unwrap().is_ok());
        }
        let kept: Vec<i64> = read(&dir).into_iter().map(|(k, _)| k).collect();
        let expected: Vec<i64> = (0..40).filter(|k| k % 4 == 0).collect();
        assert_eq!(kept, expected);
        assert_eq!(outcomes.iter().filter(|ok| **ok).count(), expected.len());
    }

    #[tokio::test]
    async fn each_operation_sees_the_writes_of_the_ones_queued_before_it() {
        let (writer, dir) = writer();
        writer
            .write(|conn| {
                conn.execute("INSERT INTO t (k, v) VALUES (1, 0)", [])?;
                Ok(())
            })
            .await
            .unwrap();
        let writer = std::sync::Arc::new(writer);
        let mut handles = Vec::new();
        for _ in 0..100 {
            let writer = writer.clone();
            handles.push(tokio::spawn(async move {
                writer
                    .write(|conn| {
                        let v: i64 =
                            conn.query_row("SELECT v FROM t WHERE k = 1", [], |r| r.get(0))?;
                        conn.execute("UPDATE t SET v = ?1 WHERE k = 1", params![v + 1])?;
                        Ok(v)
                    })
                    .await
            }));
        }
        let mut seen = Vec::new();
        for handle in handles {
            seen.push(handle.await.unwrap().unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<i64>>(), "no lost update");
        assert_eq!(read(&dir), vec![(1, 100)]);
    }

    #[tokio::test]
    async fn a_batch_that_cannot_take_the_write_lock_fails_every_operation_retryably() {
        let (writer, dir) = writer();
        let other = Connection::open(dir.path().join("w.db")).unwrap();
        other.busy_timeout(std::time::Duration::ZERO).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        // The writer's connection has no busy timeout in this test: it fails at once.
        let err = writer
            .write(|conn| {
                conn.execute("INSERT INTO t (k, v) VALUES (7, 7)", [])?;
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        other.execute_batch("ROLLBACK").unwrap();
        assert!(read(&dir).is_empty());
    }
}
