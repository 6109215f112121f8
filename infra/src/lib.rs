//! Giftify adapters: the embedded SQLite backend (every port, the durable FIFO queue, the event
//! log and webhook delivery), the AWS adapters, the one worker loop over either queue, and
//! configuration.
//!
//! Dependencies run one way: `giftify-shared` ← this crate ← the drivers (`giftify-api`,
//! `giftify-workers`).

pub mod aws;
pub mod config;
pub mod embedded;
pub mod file_lock;
pub mod metrics;
pub mod migration;
pub mod secrets;
pub mod shutdown;
pub mod stack;
pub mod telemetry;
pub mod webhook_bootstrap;
pub mod webhook_sender;
pub mod worker;

pub use config::Config;
pub use embedded::runtime::EmbeddedStack;
pub use stack::Stack;
