//! The deterministic scheduler: every actor (simulated user, worker, admin, operator) is a
//! tokio task, but only one of them runs at a time. An actor stops at a *gate* before every
//! port call and between its actions; the scheduler then picks, with the seeded RNG, which
//! parked actor goes next and what fault (if any) its port call meets. The interleaving is
//! therefore a function of the seed alone, like TigerBeetle's VOPR, while the port calls
//! themselves run for real against the backend.
//!
//! A crash is modelled without killing a thread: the fault wrapper signals the actor's crash
//! notifier and never returns, and the actor, which runs every request under
//! [`ActorCtx::request`], drops the request future — exactly what a dead process does to its
//! in-flight work. Because the wrapper parks only *between* port calls (before one, or after
//! one returned), no backend operation is ever cut in half.

use super::rng::SimRng;
use chrono::{DateTime, Utc};
use giftify_shared::Clock;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::{Notify, mpsc, oneshot};

/// Virtual time: every reading moves it on by one millisecond, so no two events share a
/// timestamp (ties would be broken by random ULIDs, which would make lists, and so replays,
/// differ). The scheduler moves it further between steps; leases, the reconciler's stale
/// threshold and key retention all run on it.
#[derive(Debug)]
pub struct SimClock {
    millis: AtomicI64,
}

impl SimClock {
    /// 2030-01-01T00:00:00Z: a fixed start, so a seed's timestamps are the same on every run.
    pub const EPOCH_MILLIS: i64 = 1_893_456_000_000;

    pub fn new() -> Self {
        SimClock {
            millis: AtomicI64::new(Self::EPOCH_MILLIS),
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.millis
            .fetch_add(by.num_milliseconds().max(0), Ordering::SeqCst);
    }

    /// The current time without moving it (for reports).
    pub fn peek(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.millis.load(Ordering::SeqCst)).expect("valid time")
    }
}

impl Default for SimClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        let millis = self.millis.fetch_add(1, Ordering::SeqCst);
        DateTime::from_timestamp_millis(millis).expect("valid time")
    }
}

/// What an actor is about to do when it parks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// Between two actions: a consistent moment to check the invariants.
    Idle,
    /// Before a port (or queue) call; `write` when it may change state.
    Call { op: &'static str, write: bool },
}

/// The fault a port call meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Proceed,
    /// A transient error before anything was written.
    FailBefore,
    /// A write that lost a race (a transaction conflict) before anything was written: the
    /// error callers may answer by retrying with fresh data, as fulfillment does.
    ConflictBefore,
    /// The write commits, then the caller sees a transient error: an ambiguous outcome.
    FailAfter,
    /// The process dies before the call.
    CrashBefore,
    /// The process dies after the call committed, before it sees the answer.
    CrashAfter,
}

/// Probabilities of each fault, drawn once per seed so that seeds differ in kind, not just in
/// detail: some run clean, some crash often, some lose every other publish.
#[derive(Clone, Copy, Debug)]
pub struct FaultProfile {
    pub fail_before: f64,
    pub fail_after: f64,
    pub crash: f64,
    pub publish_failure: f64,
    /// Share of accepted orders whose handling fails for a while (poison): their messages walk
    /// to the dead-letter queue and come back by redrive.
    pub poison: f64,
}

impl FaultProfile {
    pub fn draw(rng: &mut SimRng) -> Self {
        FaultProfile {
            fail_before: *rng.pick(&[0.0, 0.02, 0.05, 0.10]),
            fail_after: *rng.pick(&[0.0, 0.02, 0.05, 0.08]),
            crash: *rng.pick(&[0.0, 0.005, 0.015, 0.03]),
            publish_failure: *rng.pick(&[0.0, 0.1, 0.3]),
            poison: *rng.pick(&[0.0, 0.03, 0.08]),
        }
    }

    fn decide(&self, rng: &mut SimRng, op: &str, write: bool) -> Decision {
        let fail_before = if op == "events.publish" {
            self.fail_before.max(self.publish_failure)
        } else {
            self.fail_before
        };
        if rng.chance(self.crash) {
            return if write && rng.chance(0.5) {
                Decision::CrashAfter
            } else {
                Decision::CrashBefore
            };
        }
        if rng.chance(fail_before) {
            return if write && rng.chance(0.3) {
                Decision::ConflictBefore
            } else {
                Decision::FailBefore
            };
        }
        if write && rng.chance(self.fail_after) {
            return Decision::FailAfter;
        }
        Decision::Proceed
    }
}

enum Msg {
    Parked {
        actor: usize,
        point: Point,
        resume: oneshot::Sender<Decision>,
    },
    Finished {
        actor: usize,
        panicked: bool,
    },
}

/// An actor's handle on the scheduler: its gates and its crash signal.
#[derive(Clone)]
pub struct ActorCtx {
    pub id: usize,
    pub name: Arc<str>,
    tx: mpsc::UnboundedSender<Msg>,
    crash: Arc<Notify>,
}

impl std::fmt::Debug for ActorCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl ActorCtx {
    /// Parks until the scheduler lets this actor go on, and returns the fault to apply. When
    /// the scheduler is gone the actor stays parked for good (the run is over).
    pub async fn gate(&self, point: Point) -> Decision {
        let (resume, wait) = oneshot::channel();
        let parked = Msg::Parked {
            actor: self.id,
            point,
            resume,
        };
        if self.tx.send(parked).is_err() {
            return std::future::pending().await;
        }
        match wait.await {
            Ok(decision) => decision,
            Err(_) => std::future::pending().await,
        }
    }

    /// The gate between two actions.
    pub async fn idle(&self) {
        self.gate(Point::Idle).await;
    }

    /// Dies here: the enclosing [`ActorCtx::request`] drops its future. Never returns.
    pub async fn crash<T>(&self) -> T {
        self.crash.notify_one();
        std::future::pending().await
    }

    /// Runs one request (an API call, one worker iteration); `None` when the process crashed
    /// inside it. `biased` keeps the poll order fixed, so the outcome does not depend on
    /// tokio's own randomness.
    pub async fn request<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            value = work => Some(value),
            () = self.crash.notified() => None,
        }
    }

    /// Tells the scheduler that this actor is done, also when it unwinds from a panic.
    pub fn finish_guard(&self) -> FinishGuard {
        FinishGuard {
            actor: self.id,
            tx: self.tx.clone(),
        }
    }
}

/// Reports the end of an actor's task when dropped.
pub struct FinishGuard {
    actor: usize,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Finished {
            actor: self.actor,
            panicked: std::thread::panicking(),
        });
    }
}

/// A bounded record of the last steps, printed with a failure.
#[derive(Debug, Default)]
pub struct Trace {
    lines: VecDeque<String>,
}

impl Trace {
    const KEEP: usize = 80;

    /// An actor's own account of what it did, printed as it happens under `SIM_TRACE`.
    pub fn note(&mut self, line: String) {
        if std::env::var_os("SIM_TRACE").is_some() {
            eprintln!("    {line}");
        }
        self.push(format!("  {line}"));
    }

    pub fn push(&mut self, line: String) {
        if self.lines.len() == Self::KEEP {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    pub fn render(&self) -> String {
        self.lines.iter().fold(String::new(), |mut out, line| {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
            out
        })
    }
}

/// What became of the actor that ran last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// It parked here.
    Parked(Point),
    /// Its task ended.
    Finished,
}

struct Parked {
    point: Point,
    resume: oneshot::Sender<Decision>,
}

/// How the next actor is picked.
#[derive(Clone, Copy, Debug)]
pub enum Strategy {
    /// At random, in proportion to each actor's weight: many short, shallow interleavings.
    Weighted,
    /// PCT (Burckhardt et al., "A randomized scheduler with probabilistic guarantees of
    /// finding bugs"): the parked actor with the highest priority runs; at each step, with
    /// probability `change`, the one about to run is demoted below all others. This pauses an
    /// actor deep inside an operation (say, between reading stock and committing) while
    /// others run whole operations — the preemptions that uniform choice almost never makes.
    Priority { change: f64 },
}

pub struct Scheduler {
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    names: Vec<Arc<str>>,
    /// How often each actor is picked relative to the others ([`Strategy::Weighted`]).
    weights: Vec<u64>,
    /// Each actor's priority ([`Strategy::Priority`]).
    priorities: Vec<i64>,
    strategy: Strategy,
    live: BTreeSet<usize>,
    parked: BTreeMap<usize, Parked>,
    running: Option<usize>,
    rng: SimRng,
    pub profile: FaultProfile,
    pub trace: Trace,
    pub steps: u64,
    clock: Arc<SimClock>,
    /// `SIM_TRACE` set: print every step as it is taken (for following a replay).
    verbose: bool,
}

impl Scheduler {
    pub fn new(
        rng: SimRng,
        strategy: Strategy,
        profile: FaultProfile,
        clock: Arc<SimClock>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Scheduler {
            tx,
            rx,
            names: Vec::new(),
            weights: Vec::new(),
            priorities: Vec::new(),
            strategy,
            live: BTreeSet::new(),
            parked: BTreeMap::new(),
            running: None,
            rng,
            profile,
            trace: Trace::default(),
            steps: 0,
            clock,
            verbose: std::env::var_os("SIM_TRACE").is_some(),
        }
    }

    /// Registers an actor, picked with relative `weight`; its task must start by parking at
    /// a gate.
    pub fn actor(&mut self, name: String, weight: u64) -> ActorCtx {
        let id = self.names.len();
        let name: Arc<str> = name.into();
        self.names.push(name.clone());
        self.weights.push(weight.max(1));
        let priority = self.rng.below(1_000_000) as i64;
        self.priorities.push(priority);
        self.live.insert(id);
        ActorCtx {
            id,
            name,
            tx: self.tx.clone(),
            crash: Arc::new(Notify::new()),
        }
    }

    pub fn live(&self) -> usize {
        self.live.len()
    }

    pub fn is_live(&self, actor: usize) -> bool {
        self.live.contains(&actor)
    }

    /// Waits until every live actor is parked or finished — at the start, every actor reaching
    /// its first gate; afterwards, the one actor that was let go reaching its next gate.
    /// Errors when an actor panicked.
    pub async fn settle(&mut self) -> Result<Settled, String> {
        let mut last = Settled::Finished;
        while self.parked.len() < self.live.len() {
            let Some(msg) = self.rx.recv().await else {
                return Err("every actor handle was dropped".into());
            };
            match msg {
                Msg::Parked {
                    actor,
                    point,
                    resume,
                } => {
                    if Some(actor) == self.running {
                        last = Settled::Parked(point);
                        self.running = None;
                    }
                    self.parked.insert(actor, Parked { point, resume });
                }
                Msg::Finished { actor, panicked } => {
                    if panicked {
                        return Err(format!("actor {} panicked", self.names[actor]));
                    }
                    self.live.remove(&actor);
                    self.parked.remove(&actor);
                    if Some(actor) == self.running {
                        last = Settled::Finished;
                        self.running = None;
                    }
                }
            }
        }
        Ok(last)
    }

    /// Lets one parked actor, chosen by the seed, go on with a fault chosen by the seed.
    pub fn grant(&mut self) {
        assert!(!self.parked.is_empty(), "grant with no parked actor");
        let actor = match self.strategy {
            Strategy::Weighted => self.weighted_pick(),
            Strategy::Priority { change } => {
                if self.rng.chance(change) {
                    let top = self.highest_parked();
                    let lowest = self.priorities.iter().copied().min().unwrap_or(0);
                    self.priorities[top] = lowest - 1;
                }
                self.highest_parked()
            }
        };
        let parked = self.parked.remove(&actor).expect("parked actor");
        let decision = match parked.point {
            Point::Idle => Decision::Proceed,
            Point::Call { op, write } => self.profile.decide(&mut self.rng, op, write),
        };
        self.steps += 1;
        let at = (self.clock.peek().timestamp_millis() - SimClock::EPOCH_MILLIS) as f64 / 1000.0;
        match parked.point {
            Point::Idle => self.trace.push(format!(
                "#{} t+{at:.3}s {} idle",
                self.steps, self.names[actor]
            )),
            Point::Call { op, .. } => self.trace.push(format!(
                "#{} t+{at:.3}s {} {op}: {decision:?}",
                self.steps, self.names[actor]
            )),
        }
        if self.verbose
            && let Some(line) = self.trace.lines.back()
        {
            eprintln!("{line}");
        }
        self.running = Some(actor);
        // A dropped receiver means the actor's task ended meanwhile; settle() sees that.
        let _ = parked.resume.send(decision);
    }

    fn weighted_pick(&mut self) -> usize {
        let total: u64 = self.parked.keys().map(|id| self.weights[*id]).sum();
        let mut ticket = self.rng.below(total);
        for id in self.parked.keys() {
            if ticket < self.weights[*id] {
                return *id;
            }
            ticket -= self.weights[*id];
        }
        unreachable!("the ticket is below the total weight")
    }

    fn highest_parked(&self) -> usize {
        *self
            .parked
            .keys()
            .max_by_key(|id| (self.priorities[**id], **id))
            .expect("a parked actor")
    }

    /// A draw from the scheduler's stream, for choices made between steps.
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }
}
