//! The seeded fault simulation in CI: a fast batch of seeds on the embedded backend, a smaller
//! one on the AWS backend (moto), and the soak that runs thousands (ignored by default).
//! What the simulation does and checks: `giftify_tests::sim` and `docs/fault-model.md`.
//!
//! - `SIM_SEED=n` runs only seed `n` in the batch tests: the replay of a failure.
//! - The soak: `SIM_SOAK_SEEDS=5000 [SIM_SOAK_START=n] [SIM_BACKEND=aws]
//!   cargo test -p giftify-tests --test simulation soak -- --ignored --nocapture`.

use giftify_tests::sim::{self, Backend, Failure, SimConfig};
use std::time::Instant;

/// Seeds of the CI batch on the embedded backend.
const EMBEDDED_SEEDS: std::ops::RangeInclusive<u64> = 1..=30;
/// Seeds of the CI batch on the AWS backend: each pays for a fresh stage on moto.
const AWS_SEEDS: std::ops::RangeInclusive<u64> = 1..=3;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be an unsigned integer, not {value:?}")),
    )
}

/// The batch's seeds, or only `SIM_SEED` when it is set.
fn seeds(batch: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    match env_u64("SIM_SEED") {
        Some(seed) => vec![seed],
        None => batch.collect(),
    }
}

/// Runs every seed (a failure does not stop the others) and fails with all failed seeds.
async fn run_seeds(backend: Backend, seeds: impl IntoIterator<Item = u64>) {
    let started = Instant::now();
    let mut failures: Vec<Failure> = Vec::new();
    let mut passed = 0;
    for seed in seeds {
        match sim::run(SimConfig::new(seed, backend)).await {
            Ok(report) => {
                passed += 1;
                eprintln!("{report}");
            }
            Err(failure) => {
                eprintln!("{failure}\n");
                failures.push(failure);
            }
        }
    }
    eprintln!(
        "{passed} seeds passed and {} failed on the {} backend in {:.1?}",
        failures.len(),
        backend.name(),
        started.elapsed()
    );
    if let Some(first) = failures.first() {
        let seeds: Vec<u64> = failures.iter().map(|f| f.seed).collect();
        panic!("failing seeds {seeds:?}; the first:\n{first}");
    }
}

#[tokio::test]
async fn embedded_seeds_conserve_money_and_stock_under_every_fault() {
    run_seeds(Backend::Embedded, seeds(EMBEDDED_SEEDS)).await;
}

#[tokio::test]
async fn aws_seeds_conserve_money_and_stock_under_every_fault() {
    run_seeds(Backend::Aws, seeds(AWS_SEEDS)).await;
}

#[tokio::test]
async fn a_seed_replays_the_same_run_on_the_embedded_backend() {
    let seed = env_u64("SIM_SEED").unwrap_or(7);
    let first = sim::run(SimConfig::new(seed, Backend::Embedded))
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    let second = sim::run(SimConfig::new(seed, Backend::Embedded))
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    // Everything the seed decides; wall-clock time and ids are free to differ.
    let decided = |r: &sim::Report| {
        format!(
            "{} {} {:?} {} {:?}",
            r.steps, r.checks, r.orders_by_status, r.events, r.stats
        )
    };
    assert_eq!(decided(&first), decided(&second));
}

#[tokio::test]
#[ignore = "the soak: thousands of seeds, run on demand (docs/fault-model.md)"]
async fn soak() {
    let count = env_u64("SIM_SOAK_SEEDS").unwrap_or(1000);
    let start = env_u64("SIM_SOAK_START").unwrap_or_else(|| {
        // A new stretch of seeds on every soak unless told otherwise; it is printed, and every
        // failure prints its own seed.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .wrapping_mul(1_000_003)
    });
    let backend = match std::env::var("SIM_BACKEND").as_deref() {
        Ok("aws") => Backend::Aws,
        Ok("embedded") | Err(_) => Backend::Embedded,
        Ok(other) => panic!("SIM_BACKEND must be embedded or aws, not {other:?}"),
    };
    eprintln!(
        "soak: {count} seeds from {start} on the {} backend",
        backend.name()
    );
    run_seeds(backend, (0..count).map(|i| start.wrapping_add(i))).await;
}
