//! The overload benchmark: the embedded stack (as in [`super::local`]) flooded with orders
//! above what the worker fulfils, then left to drain.
//!
//! 1. **load**: `connections` clients place orders back to back for `duration` (no polling:
//!    they only create), rotating over `users` users — one message group each — so the API
//!    accepts orders as fast as it can and a backlog builds up; a user whose wallet runs dry
//!    is topped up again (that order counts as neither accepted nor refused);
//! 2. **drain**: the clients stop; the backlog (orders still PENDING or PROCESSING) is sampled
//!    every `sample` until it is empty or `drain_timeout` passes.
//!
//! It reports the accepted and fulfilled orders/s during the load, the drain time, and the
//! drain rate at the start (while the first fifth of the backlog is worked off) and at the
//! end (the last fifth): a queue whose cost grows with its backlog drains slower at the start
//! than at the end. The raw SQLite limit of [`super::limits::raw_sqlite`] is measured in the
//! same run, on the same disk.

use super::http_client;
use super::limits;
use super::local::{BenchUser, Ctx, Server, register_users, stocked_variants, unfinished};
use super::stats::{load_average, round3};
use anyhow::Result;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// What the overload benchmark does.
#[derive(Clone, Debug)]
pub struct OverloadOptions {
    /// Users, each its own message group.
    pub users: usize,
    /// Concurrent clients placing orders during the load.
    pub connections: usize,
    /// How long the load lasts.
    pub duration: Duration,
    /// The longest wait for the backlog to drain.
    pub drain_timeout: Duration,
    /// How long the raw SQLite limit is measured.
    pub limit_duration: Duration,
    /// Where the fresh data dirs go (default: the system temp dir).
    pub scratch: Option<PathBuf>,
    /// Order messages the server's worker handles at once (`None`: the server's default).
    pub worker_in_flight: Option<usize>,
}

/// Time between two samples of the backlog while it drains: short, because the drain's end
/// is seen only at the first sample after it, and that lag counts against the end rate.
const SAMPLE: Duration = Duration::from_millis(100);

/// Runs the overload benchmark and returns its JSON report.
pub fn run(options: &OverloadOptions) -> Result<Value> {
    let scratch = super::scratch_dir("giftify-overload-", options.scratch.as_deref())?;
    let clients = super::clients_runtime()?;
    eprintln!("limit: raw SQLite place + fulfil through the store ports");
    let raw = clients.block_on(limits::raw_sqlite(
        &scratch.path().join("raw"),
        options.connections,
        options.limit_duration,
    ))?;
    let server = Server::start(&scratch.path().join("stack"), options.worker_in_flight)?;
    let worker_in_flight = server.stack.config.worker_in_flight;
    let result = clients.block_on(load_and_drain(options, &server));
    server.stop();
    let (load, drain) = result?;
    let fulfilled_during_load = load["fulfilled_per_s"].as_f64().unwrap_or(0.0);
    let (start, end) = (
        drain["rate_at_start_per_s"].as_f64().unwrap_or(0.0),
        drain["rate_at_end_per_s"].as_f64().unwrap_or(0.0),
    );
    let end_vs_start = end / start.max(f64::MIN_POSITIVE);
    let during_vs_raw = fulfilled_during_load / raw.orders_per_s.max(f64::MIN_POSITIVE);
    Ok(json!({
        "users": options.users,
        "connections": options.connections,
        "worker_in_flight": worker_in_flight,
        "limits": { "raw_sqlite": raw.json() },
        "load": load,
        "drain": drain,
        "load_average_at_end": load_average(),
        "ratios": {
            "drain_rate_end_vs_start": round3(end_vs_start),
            "fulfilled_during_load_vs_raw_sqlite": round3(during_vs_raw),
        },
        "targets": {
            "drain_rate_at_end_at_least_0_9_of_start": end_vs_start >= 0.9,
            "fulfilled_during_load_at_least_half_of_raw_sqlite": during_vs_raw >= 0.5,
        },
    }))
}

async fn load_and_drain(options: &OverloadOptions, server: &Server) -> Result<(Value, Value)> {
    let ctx = Arc::new(Ctx {
        http: http_client(options.connections)?,
        base: format!("http://{}", server.addr),
        variants: stocked_variants(server).await?,
    });
    eprintln!("setup: registering and funding {} users", options.users);
    let users = Arc::new(register_users(&ctx, options.users).await?);
    let before = unfinished(&server.db_path)?;

    eprintln!(
        "load: {} clients placing orders for {:?}",
        options.connections, options.duration
    );
    let (accepted, refused, top_ups) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let started = Instant::now();
    let stop = started + options.duration;
    let fulfilled_before = fulfilled(server)?;
    let mut clients = JoinSet::new();
    let connections = options.connections;
    for client in 0..connections {
        let (ctx, users) = (ctx.clone(), users.clone());
        let (accepted, refused, top_ups) = (accepted.clone(), refused.clone(), top_ups.clone());
        clients.spawn(async move {
            let mut n = client;
            while Instant::now() < stop {
                let user = &users[n % users.len()];
                let variant = &ctx.variants[n % ctx.variants.len()];
                // Each client goes round the users in steps of the client count, so the
                // clients together keep every user's group busy.
                n += connections;
                match place(&ctx, user, variant.as_str()).await {
                    Placed::Accepted => accepted.fetch_add(1, Ordering::Relaxed),
                    // A wallet run dry is the bench's doing, not the server's refusal: the
                    // user is funded again and the order counts as neither.
                    Placed::OutOfFunds if ctx.top_up(user).await.is_ok() => {
                        top_ups.fetch_add(1, Ordering::Relaxed)
                    }
                    Placed::OutOfFunds | Placed::Refused => refused.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }
    while clients.join_next().await.is_some() {}
    let load_seconds = started.elapsed().as_secs_f64();
    let fulfilled_in_load = fulfilled(server)? - fulfilled_before;
    // Read next to the backlog it is divided by, so few orders finish in between.
    let commits_at_drain_start = server.stack.store.committed_transactions();
    let backlog = unfinished(&server.db_path)?.saturating_sub(before);
    let accepted = accepted.load(Ordering::Relaxed);
    let load = json!({
        "seconds": round3(load_seconds),
        "accepted_orders": accepted,
        "accepted_per_s": round3(accepted as f64 / load_seconds),
        "refused_orders": refused.load(Ordering::Relaxed),
        "orders_refused_for_balance_then_topped_up": top_ups.load(Ordering::Relaxed),
        "fulfilled_orders": fulfilled_in_load,
        "fulfilled_per_s": round3(fulfilled_in_load as f64 / load_seconds),
        "backlog_at_end": backlog,
    });

    eprintln!("drain: a backlog of {backlog} orders");
    let drain_started = Instant::now();
    let mut samples = vec![(0.0, backlog)];
    loop {
        tokio::time::sleep(SAMPLE).await;
        let left = unfinished(&server.db_path)?.saturating_sub(before);
        samples.push((drain_started.elapsed().as_secs_f64(), left));
        if left == 0 || drain_started.elapsed() > options.drain_timeout {
            break;
        }
    }
    // The clients have stopped: what commits now is the worker's (and the background
    // passes of the reconciler and the webhook dispatcher, which the count includes).
    let drain_commits = server
        .stack
        .store
        .committed_transactions()
        .saturating_sub(commits_at_drain_start);
    let drained_in = samples.last().map_or(0.0, |s| s.0);
    let left = samples.last().map_or(0, |s| s.1);
    let (start, end) = (
        rate_between(&samples, backlog, 1.0, 0.8),
        rate_between(&samples, backlog, 0.2, 0.0),
    );
    let drain = json!({
        "backlog": backlog,
        "seconds": round3(drained_in),
        "left_at_timeout": left,
        "rate_per_s": round3((backlog - left) as f64 / drained_in.max(f64::MIN_POSITIVE)),
        "rate_at_start_per_s": start.map(round3),
        "rate_at_end_per_s": end.map(round3),
        "write_transactions": drain_commits,
        "write_transactions_per_order": (backlog > left)
            .then(|| round3(drain_commits as f64 / (backlog - left) as f64)),
        "samples": samples.iter().map(|(t, n)| json!([round3(*t), n])).collect::<Vec<_>>(),
    });
    Ok((load, drain))
}

/// What became of one order the load placed.
enum Placed {
    Accepted,
    /// Refused for the user's balance.
    OutOfFunds,
    Refused,
}

/// Places one order of one card.
async fn place(ctx: &Ctx, user: &BenchUser, variant: &str) -> Placed {
    let body = json!({"items": [{"variantId": variant, "quantity": 1}]});
    let sent = ctx
        .http
        .post(ctx.url("/orders/create"))
        .bearer_auth(&user.token)
        .json(&body)
        .send()
        .await;
    let Ok(response) = sent else {
        return Placed::Refused;
    };
    if response.status().as_u16() == 202 {
        return Placed::Accepted;
    }
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    match answer["error"]["code"].as_str() {
        Some("INSUFFICIENT_BALANCE") => Placed::OutOfFunds,
        _ => Placed::Refused,
    }
}

/// Orders fulfilled so far (final with at least one card).
fn fulfilled(server: &Server) -> Result<u64> {
    let conn = rusqlite::Connection::open_with_flags(
        &server.db_path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM orders WHERE fulfilled_at IS NOT NULL",
        [],
        |row| row.get(0),
    )?)
}

/// Orders per second while the backlog went from `from` to `to` (fractions of `backlog`),
/// from the samples, each crossing time interpolated between the samples around it.
fn rate_between(samples: &[(f64, u64)], backlog: u64, from: f64, to: f64) -> Option<f64> {
    if backlog == 0 {
        return None;
    }
    let crossing = |fraction: f64| -> Option<f64> {
        let level = fraction * backlog as f64;
        samples.windows(2).find_map(|pair| {
            let ((t0, n0), (t1, n1)) = (pair[0], pair[1]);
            let (n0, n1) = (n0 as f64, n1 as f64);
            (n0 >= level && n1 <= level).then(|| {
                if n0 == n1 {
                    t0
                } else {
                    t0 + (t1 - t0) * (n0 - level) / (n0 - n1)
                }
            })
        })
    };
    let (t_from, t_to) = (crossing(from)?, crossing(to)?);
    let orders = (from - to) * backlog as f64;
    Some(orders / (t_to - t_from).max(f64::MIN_POSITIVE))
}

/// The short table printed after a run.
pub fn table(report: &Value) -> String {
    let load = &report["load"];
    let drain = &report["drain"];
    format!(
        "overload: {} users, {} clients, worker holds {} messages\n\
         load   accepted/s {}  refused {}  fulfilled/s {}  backlog {}\n\
         drain  {} s  rate/s {}  at start {}  at end {}  (end/start {})  write transactions/order {}\n\
         raw SQLite orders/s {}  fulfilled during load / raw {}\n",
        report["users"],
        report["connections"],
        report["worker_in_flight"],
        load["accepted_per_s"],
        load["refused_orders"],
        load["fulfilled_per_s"],
        load["backlog_at_end"],
        drain["seconds"],
        drain["rate_per_s"],
        drain["rate_at_start_per_s"],
        drain["rate_at_end_per_s"],
        report["ratios"]["drain_rate_end_vs_start"],
        drain["write_transactions_per_order"],
        report["limits"]["raw_sqlite"]["orders_per_s"],
        report["ratios"]["fulfilled_during_load_vs_raw_sqlite"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_rates_come_from_interpolated_crossings() {
        // 100 orders: 20 gone by t = 2 (10/s), the last 20 take from t = 6 to t = 10 (5/s).
        let samples = [(0.0, 100), (2.0, 80), (6.0, 20), (10.0, 0)];
        let rate =
            |samples: &[(f64, u64)], from, to| rate_between(samples, 100, from, to).map(round3);
        assert_eq!(rate(&samples, 1.0, 0.8), Some(10.0));
        assert_eq!(rate(&samples, 0.2, 0.0), Some(5.0));
        let halfway = rate(&[(0.0, 100), (4.0, 60)], 1.0, 0.8);
        assert_eq!(halfway, Some(10.0), "the crossing at 80 lies at t = 2");
        assert_eq!(rate_between(&samples, 0, 1.0, 0.8), None);
        assert_eq!(rate_between(&[(0.0, 100), (1.0, 90)], 100, 0.2, 0.0), None);
    }
}
