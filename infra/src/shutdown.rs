//! Cooperative shutdown: every long-running loop watches one `watch::Receiver<bool>` that turns
//! true on SIGTERM / Ctrl-C.

use tokio::sync::watch;

/// Resolves once shutdown is requested (or its sender is gone). The guard `wait_for` returns is
/// dropped here, so callers' futures stay `Send`.
pub async fn requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
