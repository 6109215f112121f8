//! Cooperative shutdown: every long-running loop (the worker loop, webhook delivery, the
//! reconciler, the HTTP server) watches one [`Shutdown`], which turns true on SIGTERM / Ctrl-C.

use tokio::sync::watch;

/// The stop request every loop watches. Cheap to clone; a loop keeps its own.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// The sender that requests a stop (`send(true)`), and the [`Shutdown`] loops watch.
    pub fn channel() -> (watch::Sender<bool>, Shutdown) {
        let (stop, stopped) = watch::channel(false);
        (stop, Shutdown(stopped))
    }

    /// True once a stop is requested, or when no one can request one any more.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Resolves once a stop is requested (or its sender is gone). The guard `wait_for`
    /// returns is dropped here, so callers' futures stay `Send`.
    pub async fn requested(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

impl From<watch::Receiver<bool>> for Shutdown {
    fn from(receiver: watch::Receiver<bool>) -> Self {
        Shutdown(receiver)
    }
}
