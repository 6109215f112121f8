//! The HTTP server of `giftify serve`: the one [`crate::router`] on hyper's HTTP/1.1
//! connections, with the limits a server facing the internet needs. `axum::serve` has no knob
//! for any of them, which is why this loop exists:
//!
//! - a client gets [`HttpLimits::header_timeout`] to send a request's headers; hyper starts
//!   that clock whenever it waits for a request, so the same limit closes a keep-alive
//!   connection left idle (slowloris and idle hoarding alike);
//! - a request body may stall at most [`HttpLimits::body_timeout`] between two reads;
//! - at most [`HttpLimits::max_connections`] connections are served at once; past that the
//!   loop stops accepting and new clients wait in the kernel's listen backlog instead of
//!   taking descriptors;
//! - on shutdown the listener closes at once, idle connections close, requests in flight
//!   finish, and whatever is still open when the deadline passes is dropped.

use crate::extract::PeerAddress;
use axum::Router;
use giftify_infra::config::HttpLimits;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::Layer;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// How the server's stop went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drained {
    /// Every connection finished before the deadline.
    All,
    /// The deadline passed with connections still open; they were dropped.
    DeadlinePassed,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains for at most `deadline`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    deadline: Duration,
    shutdown: impl Future<Output = ()>,
) -> Drained {
    let app = app.layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Reap finished connections, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before it was accepted: the
                    // listener is fine, so wait a moment rather than spin.
                    tracing::warn!(error = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Each request knows its connection's peer, to count registrations per client.
        let service =
            TowerToHyperService::new(axum::Extension(PeerAddress(peer.ip())).layer(app.clone()));
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, error = %error, "connection closed with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    match tokio::time::timeout(deadline, graceful.shutdown()).await {
        Ok(()) => Drained::All,
        Err(_) => {
            connections.abort_all();
            Drained::DeadlinePassed
        }
    }
}
