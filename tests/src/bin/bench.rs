//! `bench`: Giftify's benchmarks (see `docs/benchmarks.md`). Build it in release mode:
//!
//! ```sh
//! cargo run --release -p giftify-tests --bin bench -- local --clients 32 --duration 20
//! cargo run --release -p giftify-tests --bin bench -- overload --users 100 --duration 15
//! cargo run --release -p giftify-tests --bin bench -- cost --orders 20
//! cargo run --release -p giftify-tests --bin bench -- lambda --runs 7
//! cargo run --release -p giftify-tests --bin bench -- codes --imports 5 --tasks 16
//! ```
//!
//! Each prints a short table and writes a JSON report (default `$CARGO_TARGET_DIR/bench/`).

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use giftify_tests::bench::{self, codes, coldstart, cost, local, overload, stats};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Giftify benchmarks: local throughput and latency against the machine's limits, AWS cost per order, Lambda cold start and size"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The local benchmark's flags, when no subcommand is given.
    #[command(flatten)]
    local: LocalArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The embedded stack over HTTP on loopback, against raw SQLite and a no-op endpoint.
    Local(LocalArgs),
    /// The embedded stack flooded above what its worker fulfils for a while, then drained.
    Overload(OverloadArgs),
    /// DynamoDB units, SQS, SNS and Lambda requests per order on moto, in USD per million.
    Cost(CostArgs),
    /// Lambda package sizes and cold starts of the release binaries (build them first).
    Lambda(LambdaArgs),
    /// Brand codes: the import rate, and fulfilled orders/s INVENTORY against GENERATED.
    Codes(CodesArgs),
}

#[derive(Debug, Clone, Args)]
struct OverloadArgs {
    /// Order messages the server's worker handles at once (default: the server's default;
    /// GIFTIFY_WORKER_IN_FLIGHT is not read by the bench).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    worker_in_flight: Option<u16>,
    /// Users, each its own message group.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Concurrent clients placing orders.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Longest wait, in seconds, for the backlog to drain.
    #[arg(long, default_value_t = 600)]
    drain_timeout: u64,
    /// Seconds the raw SQLite limit is measured.
    #[arg(long, default_value_t = 10)]
    limit_duration: u64,
    /// Directory for the fresh data dirs (default: the system temp dir).
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
struct CodesArgs {
    /// Imports of 10,000 codes each.
    #[arg(long, default_value_t = 5)]
    imports: usize,
    /// Concurrent place → fulfil loops.
    #[arg(long, default_value_t = 16)]
    tasks: usize,
    /// Measured seconds per kind of variant.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Directory for the fresh data dir (default: the system temp dir).
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
struct LambdaArgs {
    /// Cold starts per function.
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Read the keys from Secrets Manager at init, as the deployed functions do.
    #[arg(long)]
    secrets_manager: bool,
    /// Measure the binaries in this directory instead of the release build's, e.g. the
    /// deployed ones: $CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release-lambda.
    #[arg(long)]
    binaries: Option<PathBuf>,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
struct CostArgs {
    /// Orders measured.
    #[arg(long, default_value_t = 20)]
    orders: usize,
    /// Create orders without an Idempotency-Key header.
    #[arg(long)]
    no_idempotency_key: bool,
    /// Lambda memory size in MB, for the GB-seconds.
    #[arg(long, default_value_t = 256)]
    memory_mb: u32,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
struct LocalArgs {
    /// Order messages the server's worker handles at once (default: the server's default;
    /// GIFTIFY_WORKER_IN_FLIGHT is not read by the bench).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    worker_in_flight: Option<u16>,
    /// Concurrent clients (each with its own user) in the peak phase and the limits.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Measured seconds of each phase.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Unmeasured seconds before each phase.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Milliseconds between two polls of an order.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// Read each order with `Prefer: wait=<seconds>` instead of polling every --poll-ms.
    #[arg(long)]
    prefer_wait: Option<u64>,
    /// Measured seconds of each limit.
    #[arg(long, default_value_t = 10)]
    limit_duration: u64,
    /// Skip the half-load phase.
    #[arg(long)]
    no_half_load: bool,
    /// Directory for the fresh data dirs (default: the system temp dir).
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Local(args)) => run_local(&args),
        Some(Command::Overload(args)) => run_overload(&args),
        Some(Command::Cost(args)) => run_cost(&args),
        Some(Command::Lambda(args)) => run_lambda(&args),
        Some(Command::Codes(args)) => run_codes(&args),
        None => run_local(&cli.local),
    }
}

fn run_overload(args: &OverloadArgs) -> Result<()> {
    let load_at_start = stats::load_average();
    eprintln!("load average at start: {load_at_start:?}");
    anyhow::ensure!(
        args.users > 0 && args.connections > 0,
        "--users and --connections must be positive"
    );
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for figures worth keeping");
    }
    let options = overload::OverloadOptions {
        users: args.users,
        connections: args.connections,
        duration: Duration::from_secs(args.duration.max(1)),
        drain_timeout: Duration::from_secs(args.drain_timeout.max(1)),
        limit_duration: Duration::from_secs(args.limit_duration.max(1)),
        scratch: args.scratch.clone(),
        worker_in_flight: args.worker_in_flight.map(usize::from),
    };
    let figures = overload::run(&options)?;
    print!("{}", overload::table(&figures));
    save_report("overload", figures, load_at_start, args.out.as_deref())
}

fn run_codes(args: &CodesArgs) -> Result<()> {
    let load_at_start = stats::load_average();
    eprintln!("load average at start: {load_at_start:?}");
    anyhow::ensure!(
        args.imports > 0 && args.tasks > 0,
        "--imports and --tasks must be positive"
    );
    let options = codes::CodesOptions {
        imports: args.imports,
        tasks: args.tasks,
        duration: Duration::from_secs(args.duration),
    };
    let scratch = args.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let figures = runtime()?.block_on(codes::run(&scratch, &options))?;
    print!("{}", codes::table(&figures));
    save_report("codes", figures, load_at_start, args.out.as_deref())
}

fn run_lambda(args: &LambdaArgs) -> Result<()> {
    let load_at_start = stats::load_average();
    eprintln!("load average at start: {load_at_start:?}");
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let options = coldstart::ColdStartOptions {
        runs: args.runs,
        secrets_manager: args.secrets_manager,
        binaries: args.binaries.clone(),
    };
    let figures = runtime()?.block_on(coldstart::run(&options))?;
    print!("{}", coldstart::table(&figures));
    let kind = if options.secrets_manager {
        "lambda-secrets-manager"
    } else {
        "lambda"
    };
    save_report(kind, figures, load_at_start, args.out.as_deref())
}

fn run_cost(args: &CostArgs) -> Result<()> {
    let load_at_start = stats::load_average();
    eprintln!("load average at start: {load_at_start:?}");
    anyhow::ensure!(args.orders > 0, "--orders must be at least 1");
    let options = cost::CostOptions {
        orders: args.orders,
        idempotency_key: !args.no_idempotency_key,
        memory_mb: args.memory_mb,
    };
    let figures = runtime()?.block_on(cost::run(&options))?;
    print!("{}", cost::table(&figures));
    let kind = if options.idempotency_key {
        "cost"
    } else {
        "cost-no-key"
    };
    save_report(kind, figures, load_at_start, args.out.as_deref())
}

fn run_local(args: &LocalArgs) -> Result<()> {
    let load_at_start = stats::load_average();
    eprintln!("load average at start: {load_at_start:?}");
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for figures worth keeping");
    }
    let options = local::LocalOptions {
        clients: args.clients,
        duration: Duration::from_secs(args.duration.max(1)),
        warmup: Duration::from_secs(args.warmup),
        polling: match args.prefer_wait {
            Some(seconds) => local::Polling::PreferWait(seconds),
            None => local::Polling::Every(Duration::from_millis(args.poll_ms)),
        },
        limit_duration: Duration::from_secs(args.limit_duration.max(1)),
        half_load: !args.no_half_load,
        scratch: args.scratch.clone(),
        worker_in_flight: args.worker_in_flight.map(usize::from),
    };
    let figures = local::run(&options)?;
    print!("{}", local::table(&figures));
    save_report("local", figures, load_at_start, args.out.as_deref())
}

/// The runtime the AWS measurements run on.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Writes a measurement's JSON report (with the date, command line, machine and load) and
/// says where.
fn save_report(
    kind: &str,
    figures: serde_json::Value,
    load_at_start: Option<[f64; 3]>,
    out: Option<&std::path::Path>,
) -> Result<()> {
    let report = bench::envelope(kind, figures, load_at_start);
    let path = bench::output_path(kind, out);
    bench::write_report(&path, &report)?;
    println!("report: {}", path.display());
    Ok(())
}
