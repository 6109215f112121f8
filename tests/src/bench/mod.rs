//! Giftify's benchmarks, behind the `bench` binary (`tests/src/bin/bench.rs`):
//!
//! - [`local`]: the embedded stack over HTTP against the limits of [`limits`] (raw SQLite
//!   through the store ports, a do-nothing axum endpoint, the disk's sync rate);
//! - [`overload`]: the embedded stack flooded above what its worker fulfils, then drained:
//!   whether the drain rate holds as the backlog shrinks, against the raw SQLite limit;
//! - [`cost`]: DynamoDB request units, SQS, SNS and Lambda requests per order on the AWS
//!   backend (moto), priced per million orders;
//! - [`codes`]: the brand code import rate, and fulfilled orders/s of an INVENTORY variant
//!   against a GENERATED one, through the use cases on the embedded backend;
//! - [`lambda`]: Lambda package sizes and cold start of the release binaries under the
//!   Runtime API emulator.
//!
//! Every report is JSON with the date, the command line, the machine and its load average, so
//! a figure in `docs/benchmarks.md` can be traced to the run that produced it. Nothing here
//! asserts a timing: tests cover the measuring tools, not the machine.

pub mod codes;
pub mod coldstart;
pub mod cost;
pub mod dynamo_units;
pub mod limits;
pub mod local;
pub mod overload;
pub mod stats;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A fresh scratch dir named `prefix…`, in `dir` or the system temp dir; removed when dropped.
pub fn scratch_dir(prefix: &str, dir: Option<&Path>) -> std::io::Result<tempfile::TempDir> {
    let builder = tempfile::Builder::new().prefix(prefix).clone();
    match dir {
        Some(dir) => builder.tempdir_in(dir),
        None => builder.tempdir(),
    }
}

/// The clients' runtime: its own threads, apart from the server's, as a load generator on the
/// same machine would be.
pub fn clients_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-client")
        .build()
}

/// An HTTP client of the benchmark: one shared connection pool, keep-alive, no Nagle delay.
pub fn http_client(clients: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .tcp_nodelay(true)
        .timeout(std::time::Duration::from_secs(60))
        .build()?)
}

/// Wraps a benchmark's figures with what is needed to reproduce and judge them;
/// `load_at_start` is the load average read before the benchmark began.
pub fn envelope(kind: &str, figures: Value, load_at_start: Option<[f64; 3]>) -> Value {
    let mut machine = stats::machine();
    machine["load_average_at_start"] = json!(load_at_start);
    machine["load_average_at_end"] = json!(stats::load_average());
    json!({
        "kind": kind,
        "date": chrono::Utc::now().to_rfc3339(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "machine": machine,
        "release_build": !cfg!(debug_assertions),
        "results": figures,
    })
}

/// `$CARGO_TARGET_DIR/bench/<kind>.json` (or `target/bench/…`) unless a path was given.
pub fn output_path(kind: &str, given: Option<&Path>) -> PathBuf {
    match given {
        Some(path) => path.to_path_buf(),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from);
            target.join("bench").join(format!("{kind}.json"))
        }
    }
}

/// Writes a report, creating its directory.
pub fn write_report(path: &Path, report: &Value) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(report)? + "\n")?;
    Ok(())
}
