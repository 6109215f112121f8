//! An exclusive lock on a file beside the data it guards, for work that two processes sharing
//! a data dir (an API and a worker) must not do at the same time: generating keys, setting up
//! the database file.

use anyhow::{Context, Result};
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Held until dropped; the kernel also releases it when the holding process exits or is
/// killed, so a crashed holder cannot wedge the next process.
#[derive(Debug)]
pub struct FileLock {
    _held: File,
}

impl FileLock {
    /// Blocks until this process holds the lock on `path` (created, mode 0600, if missing).
    pub fn take(path: &Path) -> Result<FileLock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(FileLock { _held: file })
    }
}
