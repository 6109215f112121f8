//! The local benchmark: the embedded stack (release build, in this process, on a fresh data
//! dir) served over real HTTP on loopback, driven by concurrent clients through the order
//! flow, and compared in the same run with the limits of [`super::limits`].
//!
//! The server runs on its own multi-threaded tokio runtime on its own threads, as it does in
//! `giftify serve`; the clients run on another runtime, so a client task never sits in the
//! server's run queue. Both share the machine's cores, as a load generator on the same machine
//! does.
//!
//! Phases, each on the same warm server:
//! 1. **peak**: `clients` closed-loop clients, each with its own user: create an order, read
//!    it until it is final (polling every few milliseconds, or asking the server to answer once
//!    it is final with `Prefer: wait`), repeat;
//! 2. **half load** (unless turned off): orders at half the fulfilled rate of the peak phase,
//!    sent at fixed intervals whatever the server's latency (open loop: latency counts from
//!    the scheduled send, so a slow server cannot hide its queueing), each polled as above.
//!
//! "Fulfilled orders/s" and the server-side create→final times come from the database after
//! each phase: orders whose `fulfilled_at` falls inside the measured window, independent of
//! how often clients poll.

use super::http_client;
use super::limits::{self, LimitReport};
use super::stats::{Samples, load_average, peak_rss_mib, round3, rss_mib};
use anyhow::{Context, Result, bail};
use giftify_api::{AppState, router};
use giftify_infra::EmbeddedStack;
use giftify_infra::config::Config;
use giftify_shared::catalogue::VariantUpdate;
use giftify_shared::ids::VariantId;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What the local benchmark does.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// Concurrent closed-loop clients in the peak phase (and for the limits).
    pub clients: usize,
    /// Measured time of each phase.
    pub duration: Duration,
    /// Unmeasured time before each phase's window.
    pub warmup: Duration,
    /// How a client learns that its order is final.
    pub polling: Polling,
    /// Measured time of each limit.
    pub limit_duration: Duration,
    /// Run the half-load phase after the peak phase.
    pub half_load: bool,
    /// Where the fresh data dirs go (default: the system temp dir).
    pub scratch: Option<PathBuf>,
    /// Order messages the server's worker handles at once (`None`: the server's default).
    pub worker_in_flight: Option<usize>,
}

/// How a client reads its order until it is final.
#[derive(Clone, Copy, Debug)]
pub enum Polling {
    /// Sleeps this long before each read.
    Every(Duration),
    /// Reads at once with `Prefer: wait=<seconds>`: the server answers when the order is final.
    PreferWait(u64),
}

/// Gift cards per order: one line of one card, the commonest order.
const QUANTITY: u32 = 1;

/// One top-up: the largest the rules allow (₹1,00,000).
const TOP_UP_PAISE: i64 = 10_000_000;

/// The stock every benchmarked variant gets, so no order is partially fulfilled.
const STOCK: i64 = 100_000_000;

/// How long one order may take to become final before the client counts a timeout.
const ORDER_TIMEOUT: Duration = Duration::from_secs(30);

/// A running embedded stack on its own runtime and threads.
pub struct Server {
    pub addr: SocketAddr,
    pub stack: Arc<EmbeddedStack>,
    pub db_path: PathBuf,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Opens the stack on `data_dir` and serves it, with the in-process worker (holding
    /// `worker_in_flight` messages at once, or the default), on a free loopback port.
    pub fn start(data_dir: &Path, worker_in_flight: Option<usize>) -> Result<Server> {
        let mut config = Config {
            data_dir: data_dir.to_path_buf(),
            addr: "127.0.0.1:0".parse()?,
            // Benchmark users place thousands of orders each; the cap is a product rule that
            // would only turn the benchmark into a top-up benchmark.
            wallet_max_balance: 1_000_000_000_000,
            // Likewise the customers' budgets: a benchmark user orders far faster than a
            // person, and every user comes from one address.
            user_limits: giftify_shared::rate_limits::ActionLimits::OFF,
            ..Config::default()
        };
        config.webhook_urls.clear();
        if let Some(in_flight) = worker_in_flight {
            config.worker_in_flight = in_flight;
        }
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .thread_name("server")
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(anyhow::Error::new(error)));
                        return;
                    }
                };
                runtime.block_on(serve(config, ready_tx, stopped));
            })?;
        let (addr, stack) = ready_rx
            .recv()
            .context("the server thread ended before it was ready")??;
        Ok(Server {
            addr,
            stack,
            db_path: data_dir.join("giftify.db"),
            stop,
            thread: Some(thread),
        })
    }

    /// Stops serving, lets the worker finish its messages, and joins the server thread.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Ready = std::sync::mpsc::Sender<Result<(SocketAddr, Arc<EmbeddedStack>)>>;

async fn serve(config: Config, ready: Ready, stopped: watch::Receiver<bool>) {
    let started = async {
        let stack = Arc::new(
            EmbeddedStack::open(config, giftify_infra::stack::Opening::MayInitialise).await?,
        );
        let app = router(AppState::new(
            stack.giftify.clone(),
            stack.secrets.jwt_secret().expect("the JWT key"),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        anyhow::Ok((listener, app, stack))
    }
    .await;
    let (listener, app, stack) = match started {
        Ok(parts) => parts,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(error) => {
            let _ = ready.send(Err(error.into()));
            return;
        }
    };
    let worker = {
        let (stack, stopped) = (stack.clone(), stopped.clone());
        tokio::spawn(async move { stack.run_worker(stopped.into()).await })
    };
    let _ = ready.send(Ok((addr, stack)));
    let mut until_stopped = stopped.clone();
    let shutdown = async move {
        let _ = until_stopped.wait_for(|stop| *stop).await;
    };
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("bench server failed: {error}");
    }
    let _ = worker.await;
}

/// A registered, funded benchmark user.
#[derive(Clone, Debug)]
pub(super) struct BenchUser {
    pub(super) token: String,
}

/// The shared context of the clients of one server.
pub(super) struct Ctx {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) variants: Vec<VariantId>,
}

impl Ctx {
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(super) async fn register(&self, n: usize) -> Result<BenchUser> {
        let email = format!("bench-{n}-{}@example.com", ulid::Ulid::new());
        let response = self
            .http
            .post(self.url("/auth/register"))
            .json(&json!({
                "email": email,
                "password": "correct horse battery",
                "firstName": "Bench",
                "lastName": "User",
            }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        let token = body["data"]["accessToken"]
            .as_str()
            .with_context(|| format!("register answered {status}: {body}"))?
            .to_string();
        let user = BenchUser { token };
        self.top_up(&user).await?;
        Ok(user)
    }

    pub(super) async fn top_up(&self, user: &BenchUser) -> Result<()> {
        let response = self
            .http
            .post(self.url("/wallet/topup"))
            .bearer_auth(&user.token)
            .json(&json!({ "amount": TOP_UP_PAISE }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "top-up answered {}: {}",
                response.status(),
                response.text().await?
            );
        }
        Ok(())
    }
}

/// What the clients of one phase saw.
#[derive(Default)]
struct ClientStats {
    accepted: u64,
    create: Samples,
    poll: Samples,
    create_to_final: Samples,
    requests: u64,
    top_ups: u64,
    errors: BTreeMap<String, u64>,
}

impl ClientStats {
    fn merge(&mut self, other: ClientStats) {
        self.accepted += other.accepted;
        self.create.merge(other.create);
        self.poll.merge(other.poll);
        self.create_to_final.merge(other.create_to_final);
        self.requests += other.requests;
        self.top_ups += other.top_ups;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
    }

    fn error(&mut self, code: impl Into<String>) {
        *self.errors.entry(code.into()).or_default() += 1;
    }
}

/// The window of a phase: wall-clock milliseconds (the server's timestamps) and the matching
/// instants (the clients' clock).
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
    start_ms: i64,
    end_ms: i64,
}

impl Window {
    fn after(warmup: Duration, duration: Duration) -> Window {
        let start = Instant::now() + warmup;
        let start_ms = wall_ms() + i64::try_from(warmup.as_millis()).unwrap_or(0);
        Window {
            start,
            end: start + duration,
            start_ms,
            end_ms: start_ms + i64::try_from(duration.as_millis()).unwrap_or(0),
        }
    }

    fn contains(&self, at: Instant) -> bool {
        at >= self.start && at < self.end
    }

    fn seconds(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Places one order and polls it to its final status, recording what it saw. `sent` is when
/// the order was due (the send time in closed loop, the schedule in open loop).
async fn one_order(
    ctx: &Ctx,
    user: &BenchUser,
    variant: &VariantId,
    sent: Instant,
    measured: bool,
    polling: Polling,
    stats: &mut ClientStats,
) {
    let body = json!({"items": [{"variantId": variant.as_str(), "quantity": QUANTITY}]});
    let mut top_ups = 0;
    let order_id = loop {
        let begun = Instant::now();
        let response = ctx
            .http
            .post(ctx.url("/orders/create"))
            .bearer_auth(&user.token)
            .json(&body)
            .send()
            .await;
        stats.requests += 1;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                stats.error(format!("create transport: {}", short(&error)));
                return;
            }
        };
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status == 202 {
            if measured {
                stats.create.record(begun.elapsed());
                stats.accepted += 1;
            }
            match answer["data"]["orderId"].as_str() {
                Some(id) => break id.to_string(),
                None => {
                    stats.error("202 without an order id");
                    return;
                }
            }
        }
        let code = answer["error"]["code"].as_str().unwrap_or("?").to_string();
        if code == "INSUFFICIENT_BALANCE" && top_ups < 3 {
            top_ups += 1;
            stats.top_ups += 1;
            if ctx.top_up(user).await.is_err() {
                stats.error("top-up failed");
                return;
            }
            continue;
        }
        stats.error(format!("create {status} {code}"));
        return;
    };
    let path = ctx.url(&format!("/orders/{order_id}"));
    loop {
        let mut read = ctx.http.get(&path).bearer_auth(&user.token);
        match polling {
            Polling::Every(pause) => tokio::time::sleep(pause).await,
            Polling::PreferWait(seconds) => read = read.header("prefer", format!("wait={seconds}")),
        }
        let begun = Instant::now();
        let response = read.send().await;
        stats.requests += 1;
        let answer: Value = match response {
            Ok(response) if response.status().is_success() => {
                response.json().await.unwrap_or(Value::Null)
            }
            Ok(response) => {
                stats.error(format!("poll {}", response.status().as_u16()));
                return;
            }
            Err(error) => {
                stats.error(format!("poll transport: {}", short(&error)));
                return;
            }
        };
        if measured {
            stats.poll.record(begun.elapsed());
        }
        let status = answer["data"]["status"].as_str().unwrap_or("");
        if !matches!(status, "PENDING" | "PROCESSING") {
            if measured {
                stats.create_to_final.record(sent.elapsed());
                if status != "FULFILLED" {
                    stats.error(format!("final status {status}"));
                }
            }
            return;
        }
        if sent.elapsed() > ORDER_TIMEOUT {
            stats.error("order not final within 30 s");
            return;
        }
    }
}

fn short(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".into()
    } else if error.is_connect() {
        "connect".into()
    } else {
        "other".into()
    }
}

/// Closed loop: each client places and polls one order at a time until the window closes.
async fn closed_loop(
    ctx: Arc<Ctx>,
    users: &[BenchUser],
    window: Window,
    polling: Polling,
) -> ClientStats {
    let mut clients = JoinSet::new();
    for (n, user) in users.iter().enumerate() {
        let (ctx, user) = (ctx.clone(), user.clone());
        clients.spawn(async move {
            let mut stats = ClientStats::default();
            let variant = ctx.variants[n % ctx.variants.len()].clone();
            loop {
                let sent = Instant::now();
                if sent >= window.end {
                    return stats;
                }
                one_order(
                    &ctx,
                    &user,
                    &variant,
                    sent,
                    window.contains(sent),
                    polling,
                    &mut stats,
                )
                .await;
            }
        });
    }
    let mut total = ClientStats::default();
    while let Some(done) = clients.join_next().await {
        if let Ok(stats) = done {
            total.merge(stats);
        }
    }
    total
}

/// Open loop: one order every `1 / rate` seconds, whatever the server does.
async fn open_loop(
    ctx: Arc<Ctx>,
    users: &[BenchUser],
    window: Window,
    rate: f64,
    polling: Polling,
) -> ClientStats {
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let mut orders = JoinSet::new();
    let mut due = Instant::now();
    let mut n = 0usize;
    while due < window.end {
        tokio::time::sleep_until(due.into()).await;
        let (ctx, user) = (ctx.clone(), users[n % users.len()].clone());
        let variant = ctx.variants[n % ctx.variants.len()].clone();
        let measured = window.contains(due);
        orders.spawn(async move {
            let mut stats = ClientStats::default();
            one_order(&ctx, &user, &variant, due, measured, polling, &mut stats).await;
            stats
        });
        n += 1;
        due += interval;
    }
    let mut total = ClientStats::default();
    while let Some(done) = orders.join_next().await {
        if let Ok(stats) = done {
            total.merge(stats);
        }
    }
    total
}

/// Server-side figures of a window, from the database: orders fulfilled inside it, and the
/// create→final time of the orders created inside it.
fn server_side(db: &Path, window: Window) -> Result<(u64, Samples)> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let fulfilled: u64 = conn.query_row(
        "SELECT COUNT(*) FROM orders WHERE fulfilled_at >= ?1 AND fulfilled_at < ?2",
        [window.start_ms, window.end_ms],
        |row| row.get(0),
    )?;
    let mut latencies = Samples::default();
    let mut statement = conn.prepare(
        "SELECT fulfilled_at - created_at FROM orders \
         WHERE created_at >= ?1 AND created_at < ?2 AND fulfilled_at IS NOT NULL",
    )?;
    let rows = statement.query_map([window.start_ms, window.end_ms], |row| row.get::<_, i64>(0))?;
    for ms in rows {
        latencies.record(Duration::from_millis(u64::try_from(ms?).unwrap_or(0)));
    }
    Ok((fulfilled, latencies))
}

/// Orders still PENDING or PROCESSING: after a drained run, there must be none.
pub(super) fn unfinished(db: &Path) -> Result<u64> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM orders WHERE status IN ('PENDING', 'PROCESSING')",
        [],
        |row| row.get(0),
    )?)
}

/// The report of one phase.
fn phase_report(name: &str, window: Window, mut stats: ClientStats, db: &Path) -> Result<Value> {
    let (fulfilled, mut server_latency) = server_side(db, window)?;
    let seconds = window.seconds();
    Ok(json!({
        "phase": name,
        "seconds": round3(seconds),
        "accepted_orders": stats.accepted,
        "accepted_per_s": round3(stats.accepted as f64 / seconds),
        "fulfilled_orders": fulfilled,
        "fulfilled_per_s": round3(fulfilled as f64 / seconds),
        "http_requests_per_s": round3(stats.requests as f64 / seconds),
        "create": stats.create.summary(),
        "get_order": stats.poll.summary(),
        "status_reads_per_order": round3(stats.poll.len() as f64 / (stats.accepted.max(1)) as f64),
        "create_to_final_client": stats.create_to_final.summary(),
        "create_to_final_server": server_latency.summary(),
        "top_ups": stats.top_ups,
        "errors": stats.errors,
    }))
}

/// Runs the whole local benchmark and returns its JSON report.
pub fn run(options: &LocalOptions) -> Result<Value> {
    let scratch = super::scratch_dir("giftify-bench-", options.scratch.as_deref())?;
    let clients_runtime = super::clients_runtime()?;

    eprintln!("limits: fdatasync rate of {}", scratch.path().display());
    let fsync = limits::fdatasync_rate(scratch.path())?;
    eprintln!(
        "limits: an axum endpoint that does nothing, {} clients",
        options.clients
    );
    let noop =
        clients_runtime.block_on(limits::noop_http(options.clients, options.limit_duration))?;
    eprintln!("limits: raw SQLite place + fulfil through the store ports");
    let raw = clients_runtime.block_on(limits::raw_sqlite(
        &scratch.path().join("raw"),
        options.clients,
        options.limit_duration,
    ))?;

    let rss_before = rss_mib();
    let server = Server::start(&scratch.path().join("stack"), options.worker_in_flight)?;
    let worker_in_flight = server.stack.config.worker_in_flight;
    let result = clients_runtime.block_on(phases(options, &server, &noop, &raw));
    let unfinished_orders = unfinished(&server.db_path);
    server.stop();
    let (peak, half, catalogue) = result?;

    let peak_fulfilled = peak["fulfilled_per_s"].as_f64().unwrap_or(0.0);
    let peak_requests = peak["http_requests_per_s"].as_f64().unwrap_or(0.0);
    let half_p99 = half
        .as_ref()
        .and_then(|h| h["create_to_final_client"]["p99_ms"].as_f64());
    let fulfilled_vs_raw = peak_fulfilled / raw.orders_per_s.max(f64::MIN_POSITIVE);
    Ok(json!({
        "limits": {
            "fdatasync_per_s": round3(fsync),
            "noop_http": noop.json(),
            "raw_sqlite": raw.json(),
        },
        "clients": options.clients,
        "polling": format!("{:?}", options.polling),
        "worker_in_flight": worker_in_flight,
        "peak": peak,
        "half_load": half,
        "catalogue_reads": catalogue,
        "unfinished_orders_after_drain": unfinished_orders.ok(),
        "rss_mib_before_server": rss_before.map(round3),
        "peak_rss_mib": peak_rss_mib().map(round3),
        "load_average_at_end": load_average(),
        "ratios": {
            "fulfilled_per_s_vs_raw_sqlite_orders_per_s": round3(fulfilled_vs_raw),
            "http_requests_per_s_vs_noop_requests_per_s": round3(peak_requests / noop.requests_per_s.max(f64::MIN_POSITIVE)),
            "create_p50_vs_noop_p50": round3(peak["create"]["p50_ms"].as_f64().unwrap_or(0.0) / noop.p50_ms.max(f64::MIN_POSITIVE)),
        },
        "targets": {
            "fulfilled_at_least_a_third_of_raw_sqlite": fulfilled_vs_raw >= 1.0 / 3.0,
            "half_load_create_to_final_p99_under_50_ms": half_p99.map(|p99| p99 < 50.0),
        },
    }))
}

async fn phases(
    options: &LocalOptions,
    server: &Server,
    noop: &LimitReport,
    raw: &limits::RawReport,
) -> Result<(Value, Option<Value>, Value)> {
    let _ = (noop, raw);
    let ctx = Arc::new(Ctx {
        http: http_client(options.clients)?,
        base: format!("http://{}", server.addr),
        variants: stocked_variants(server).await?,
    });
    eprintln!("setup: registering and funding {} users", options.clients);
    let users = register_users(&ctx, options.clients).await?;

    eprintln!(
        "peak: {} closed-loop clients, {:?} warm-up, {:?} measured",
        options.clients, options.warmup, options.duration
    );
    let window = Window::after(options.warmup, options.duration);
    let stats = closed_loop(ctx.clone(), &users, window, options.polling).await;
    settle(server).await;
    let peak = phase_report("peak", window, stats, &server.db_path)?;

    let half = if options.half_load {
        let rate = peak["fulfilled_per_s"].as_f64().unwrap_or(0.0) / 2.0;
        if rate < 1.0 {
            None
        } else {
            eprintln!("half load: {rate:.1} orders/s, open loop");
            let window = Window::after(options.warmup, options.duration);
            let stats = open_loop(ctx.clone(), &users, window, rate, options.polling).await;
            settle(server).await;
            let mut report = phase_report("half_load", window, stats, &server.db_path)?;
            report["offered_orders_per_s"] = json!(round3(rate));
            Some(report)
        }
    } else {
        None
    };
    eprintln!(
        "catalogue: {} clients reading GET /products",
        options.clients
    );
    let catalogue = catalogue_reads(&ctx, &users, options.limit_duration, noop).await?;
    Ok((peak, half, catalogue))
}

/// `GET /products` by every client in a closed loop for `duration`, first reading the whole
/// answer (the process's catalogue cache is warm: nothing changes the stock meanwhile), then
/// revalidating it with `If-None-Match` (304s); each against the no-op endpoint's rate.
async fn catalogue_reads(
    ctx: &Arc<Ctx>,
    users: &[BenchUser],
    duration: Duration,
    noop: &LimitReport,
) -> Result<Value> {
    let first = ctx
        .http
        .get(ctx.url("/products"))
        .bearer_auth(&users[0].token)
        .send()
        .await?;
    let tag = first
        .headers()
        .get("etag")
        .and_then(|tag| tag.to_str().ok())
        .context("GET /products sends an ETag")?
        .to_string();
    let mut report = serde_json::Map::new();
    for (name, revalidating, expected) in [("full", false, 200), ("not_modified", true, 304)] {
        let end = Instant::now() + duration;
        let mut readers = JoinSet::new();
        for user in users {
            let (ctx, token, tag) = (ctx.clone(), user.token.clone(), tag.clone());
            readers.spawn(async move {
                let (mut samples, mut unexpected) = (Samples::default(), 0u64);
                while Instant::now() < end {
                    let mut read = ctx.http.get(ctx.url("/products")).bearer_auth(&token);
                    if revalidating {
                        read = read.header("if-none-match", &tag);
                    }
                    let begun = Instant::now();
                    match read.send().await {
                        Ok(response) if response.status().as_u16() == expected => {
                            if response.bytes().await.is_ok() {
                                samples.record(begun.elapsed());
                            }
                        }
                        _ => unexpected += 1,
                    }
                }
                (samples, unexpected)
            });
        }
        let (mut all, mut unexpected) = (Samples::default(), 0);
        while let Some(done) = readers.join_next().await {
            let (samples, wrong) = done?;
            all.merge(samples);
            unexpected += wrong;
        }
        let per_s = all.len() as f64 / duration.as_secs_f64();
        report.insert(
            name.into(),
            json!({
                "requests_per_s": round3(per_s),
                "p50_ms": round3(all.percentile_ms(50.0)),
                "p99_ms": round3(all.percentile_ms(99.0)),
                "unexpected_answers": unexpected,
                "vs_noop_requests_per_s": round3(per_s / noop.requests_per_s.max(f64::MIN_POSITIVE)),
            }),
        );
    }
    Ok(Value::Object(report))
}

/// Every active variant of Giftify's own cards, stocked so no order is partial (a brand
/// variant's stock is its imported codes).
pub(super) async fn stocked_variants(server: &Server) -> Result<Vec<VariantId>> {
    let giftify = &server.stack.giftify;
    let mut variants = Vec::new();
    for product in giftify.catalogue().await?.iter() {
        for variant in product
            .variants
            .iter()
            .filter(|v| v.fulfillment_source == giftify_shared::codes::FulfillmentSource::Generated)
        {
            giftify
                .ports
                .catalogue
                .update_variant(
                    &variant.id,
                    &VariantUpdate {
                        stock_quantity: Some(STOCK),
                        ..VariantUpdate::default()
                    },
                    chrono::Utc::now(),
                )
                .await?;
            variants.push(variant.id.clone());
        }
    }
    Ok(variants)
}

/// `n` registered and funded users.
pub(super) async fn register_users(ctx: &Arc<Ctx>, n: usize) -> Result<Vec<BenchUser>> {
    let mut users = Vec::new();
    let mut registering = JoinSet::new();
    for n in 0..n {
        let ctx = ctx.clone();
        registering.spawn(async move { ctx.register(n).await });
        // Password hashing is CPU-bound: a few at a time is as fast as all at once.
        if registering.len() >= 4
            && let Some(done) = registering.join_next().await
        {
            users.push(done??);
        }
    }
    while let Some(done) = registering.join_next().await {
        users.push(done??);
    }
    Ok(users)
}

/// Waits (bounded) until the queue is empty, so one phase's backlog does not spill into the
/// next phase's window.
async fn settle(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match server.stack.giftify.ports.queue_ops.depths().await {
            Ok(depths) if depths.ready == 0 && depths.in_flight == 0 => return,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The short table printed after a run.
pub fn table(report: &Value) -> String {
    let mut out = String::new();
    let limits = &report["limits"];
    let line = |out: &mut String, label: &str, value: String| {
        out.push_str(&format!("  {label:<44} {value}\n"));
    };
    out.push_str("limits\n");
    line(
        &mut out,
        "fdatasync/s (data dir)",
        fmt(&limits["fdatasync_per_s"]),
    );
    line(
        &mut out,
        "raw SQLite place+fulfil orders/s",
        fmt(&limits["raw_sqlite"]["orders_per_s"]),
    );
    line(
        &mut out,
        "no-op axum endpoint requests/s (p50/p99 ms)",
        format!(
            "{} ({}/{})",
            fmt(&limits["noop_http"]["requests_per_s"]),
            fmt(&limits["noop_http"]["p50_ms"]),
            fmt(&limits["noop_http"]["p99_ms"])
        ),
    );
    for phase in ["peak", "half_load"] {
        let p = &report[phase];
        if p.is_null() {
            continue;
        }
        out.push_str(&format!("{phase}\n"));
        line(&mut out, "accepted orders/s", fmt(&p["accepted_per_s"]));
        line(&mut out, "fulfilled orders/s", fmt(&p["fulfilled_per_s"]));
        line(&mut out, "HTTP requests/s", fmt(&p["http_requests_per_s"]));
        for (label, key) in [
            ("POST /orders/create p50/p95/p99 ms", "create"),
            ("GET /orders/{id} p50/p95/p99 ms", "get_order"),
        ] {
            line(
                &mut out,
                label,
                format!(
                    "{}/{}/{}",
                    fmt(&p[key]["p50_ms"]),
                    fmt(&p[key]["p95_ms"]),
                    fmt(&p[key]["p99_ms"])
                ),
            );
        }
        line(
            &mut out,
            "create→final p50/p99 ms (client, polled)",
            format!(
                "{}/{}",
                fmt(&p["create_to_final_client"]["p50_ms"]),
                fmt(&p["create_to_final_client"]["p99_ms"])
            ),
        );
        line(
            &mut out,
            "create→final p50/p99 ms (server timestamps)",
            format!(
                "{}/{}",
                fmt(&p["create_to_final_server"]["p50_ms"]),
                fmt(&p["create_to_final_server"]["p99_ms"])
            ),
        );
        line(
            &mut out,
            "status reads per order",
            fmt(&p["status_reads_per_order"]),
        );
        line(&mut out, "errors", p["errors"].to_string());
    }
    let catalogue = &report["catalogue_reads"];
    if !catalogue.is_null() {
        out.push_str(
            "catalogue reads
",
        );
        for (label, key) in [
            ("GET /products requests/s (÷ no-op)", "full"),
            ("GET /products 304s/s (÷ no-op)", "not_modified"),
        ] {
            line(
                &mut out,
                label,
                format!(
                    "{} ({})",
                    fmt(&catalogue[key]["requests_per_s"]),
                    fmt(&catalogue[key]["vs_noop_requests_per_s"])
                ),
            );
        }
    }
    line(
        &mut out,
        "peak RSS MiB (whole bench process)",
        fmt(&report["peak_rss_mib"]),
    );
    out.push_str("ratios\n");
    for (label, key) in [
        (
            "fulfilled/s ÷ raw SQLite orders/s",
            "fulfilled_per_s_vs_raw_sqlite_orders_per_s",
        ),
        (
            "HTTP requests/s ÷ no-op requests/s",
            "http_requests_per_s_vs_noop_requests_per_s",
        ),
        ("create p50 ÷ no-op p50", "create_p50_vs_noop_p50"),
    ] {
        line(&mut out, label, fmt(&report["ratios"][key]));
    }
    out
}

fn fmt(value: &Value) -> String {
    match value {
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| n.to_string(), |x| format!("{x:.2}")),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}
