//! The seeded fault simulation: many simulated users, workers, an admin and an operator run
//! against the real use cases and a real backend (embedded SQLite, or the AWS adapters on
//! moto), through ports that inject faults, in an interleaving chosen by the seed. After every
//! action and at the end the invariants of [`check`] must hold. A failure names its seed and
//! the command that replays it. The fault model and the soak command are described in
//! `docs/fault-model.md`.
//!
//! Determinism: on the embedded backend a seed replays the same run — the same interleaving,
//! faults, requests and answers. What differs between replays is only what never feeds a
//! decision: ULIDs, card numbers, backoff sleeps. The embedded store reads the simulation's
//! clock, so the queue's and the event log's timestamps are virtual too. On the AWS backend the schedule and faults replay, but moto's own
//! behaviour (message ids, receive order across groups) may not, so a replay there is likely,
//! not certain, to take the same path.

pub mod actors;
pub mod check;
pub mod client;
pub mod faults;
pub mod model;
pub mod rng;
pub mod sched;
pub mod truth;

use actors::{Admin, Operator, Sent, User, Worker, learn};
use check::Checker;
use client::Answer;
use faults::Faults;
use giftify_infra::config::QueueSettings;
use giftify_infra::embedded::{SqliteStore, StoreOptions};
use giftify_shared::catalogue::Pricing;
use giftify_shared::idempotency::LEASE;
use giftify_shared::ids::{UserId, VariantId};
use giftify_shared::inbox::RetryPolicy;
use giftify_shared::ports::Inbox;
use giftify_shared::ports::Ports;
use giftify_shared::usecases::{NewProduct, NewVariant, Registration, Rules, error_chain};
use giftify_shared::user::Email;
use giftify_shared::vault::{CardKey, CardVault};
use giftify_shared::wallet::WalletLimits;
use giftify_shared::{Giftify, Paise};
use model::{Model, UserModel, World};
use rng::SimRng;
use sched::{FaultProfile, Point, Scheduler, Settled, SimClock, Strategy};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use truth::{AuditedCatalogue, RecordingPublisher, TrackedQueue};

/// Which backend a run drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Aws,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Aws => "aws",
        }
    }

    /// The test of `tests/tests/simulation.rs` that runs a seed on this backend.
    fn replay_filter(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded_seeds",
            Backend::Aws => "aws_seeds",
        }
    }
}

/// How big a run is; the seed picks within these bounds.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub users: (i64, i64),
    pub actions_per_user: (i64, i64),
    pub workers: (i64, i64),
    /// Check the invariants after every n-th completed action (every one on SQLite; the AWS
    /// backend pays an HTTP round trip per read).
    pub check_every: u64,
}

impl Scale {
    pub fn for_backend(backend: Backend) -> Self {
        match backend {
            Backend::Embedded => Scale {
                users: (2, 5),
                actions_per_user: (15, 35),
                workers: (2, 4),
                check_every: 1,
            },
            Backend::Aws => Scale {
                users: (2, 3),
                actions_per_user: (8, 14),
                workers: (1, 2),
                check_every: 8,
            },
        }
    }
}

/// One run: a seed on a backend.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub backend: Backend,
    pub scale: Scale,
}

impl SimConfig {
    pub fn new(seed: u64, backend: Backend) -> Self {
        SimConfig {
            seed,
            backend,
            scale: Scale::for_backend(backend),
        }
    }
}

/// The shape of one run, drawn from its seed.
#[derive(Clone, Debug)]
pub struct Shape {
    pub users: usize,
    /// Clients per user acting at once (a phone and a laptop): with two, a retry can race
    /// the request it retries, under the same key.
    pub sessions: usize,
    pub workers: usize,
    pub actions_per_user: u32,
    pub admin_actions: u32,
    pub max_receives: u32,
    /// The embedded queue's deduplication window: zero makes every re-send a duplicate.
    pub dedup_window: Duration,
    pub max_balance: Paise,
    /// Most stock a variant starts with: low means contention and partial fulfillment.
    pub max_stock: i64,
    /// How much more often a worker is scheduled than a user (weighted scheduling): high
    /// means workers race each other inside fulfillment.
    pub worker_weight: u64,
    /// Share of orders that go to the first variant: a flash sale, where every fulfillment
    /// races for the same stock.
    pub hot_variant: f64,
    pub strategy: Strategy,
    pub profile: FaultProfile,
}

impl Shape {
    fn draw(seed: u64, scale: &Scale) -> Self {
        let mut rng = SimRng::fork(seed, 0);
        let profile = FaultProfile::draw(&mut SimRng::fork(seed, 1));
        let mut shape = Shape {
            users: rng.between(scale.users.0, scale.users.1) as usize,
            sessions: rng.between(1, 2) as usize,
            workers: rng.between(scale.workers.0, scale.workers.1) as usize,
            actions_per_user: rng.between(scale.actions_per_user.0, scale.actions_per_user.1)
                as u32,
            admin_actions: 0,
            max_receives: rng.between(2, 5) as u32,
            dedup_window: if rng.chance(0.5) {
                Duration::ZERO
            } else {
                Duration::from_secs(300)
            },
            max_balance: *rng.pick(&[Paise::new(20_000_000), Paise::new(600_000)]),
            max_stock: *rng.pick(&[3, 6, 15]),
            worker_weight: *rng.pick(&[2, 3, 5]),
            hot_variant: *rng.pick(&[0.0, 0.0, 0.8]),
            strategy: if rng.chance(0.5) {
                Strategy::Weighted
            } else {
                Strategy::Priority {
                    change: *rng.pick(&[0.01, 0.03, 0.1]),
                }
            },
            profile,
        };
        // The admin restocks about once per four orders' worth of user actions.
        shape.admin_actions = (shape.users as u32 * shape.actions_per_user) / 4;
        shape
    }
}

/// What a passing run did.
#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    pub backend: Backend,
    pub shape: Shape,
    pub steps: u64,
    pub checks: u64,
    pub orders_by_status: BTreeMap<String, usize>,
    pub events: usize,
    pub stats: model::Stats,
    pub elapsed: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "seed {} ({}): {} steps, {} checks, {} requests ({} unclear, {} replays), {} crashes, \
             answers {:?}, orders {:?}, {} events, {} messages handled / {} failed, {} expired, \
             {} redriven, {} re-enqueued, {} stock races, {} overlapping handlings; cards: {} \
             redeemed, {} returned, {} expired; codes: {} expired; {} days passed; {:.2?}",
            self.seed,
            self.backend.name(),
            self.steps,
            self.checks,
            s.requests,
            s.uncertain,
            s.replays,
            s.crashes,
            s.answers,
            self.orders_by_status,
            self.events,
            s.messages_handled,
            s.message_failures,
            s.expired,
            s.redriven,
            s.reconciled,
            s.conflicts,
            s.overlaps,
            s.redeemed,
            s.returned,
            s.cards_expired,
            s.codes_expired,
            s.days_passed,
            self.elapsed
        )
    }
}

/// A failed run: what broke, where, and how to get back there.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub backend: Backend,
    pub shape: Option<Shape>,
    pub step: u64,
    pub violations: Vec<String>,
    pub trace: String,
}

impl Failure {
    /// The command that runs this seed again.
    pub fn replay_command(&self) -> String {
        format!(
            "SIM_SEED={} cargo test -p giftify-tests --test simulation {} -- --nocapture",
            self.seed,
            self.backend.replay_filter()
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "simulation seed {} on the {} backend failed at step {}:",
            self.seed,
            self.backend.name(),
            self.step
        )?;
        for violation in self.violations.iter().take(20) {
            writeln!(f, "  - {violation}")?;
        }
        if self.violations.len() > 20 {
            writeln!(f, "  … and {} more", self.violations.len() - 20)?;
        }
        if let Some(shape) = &self.shape {
            writeln!(f, "shape: {shape:?}")?;
        }
        if !self.trace.is_empty() {
            writeln!(f, "last steps:\n{}", self.trace)?;
        }
        write!(f, "replay: {}", self.replay_command())
    }
}

impl std::error::Error for Failure {}

/// The backend under test and whatever keeps it alive.
struct Opened {
    ports: Ports,
    queue: Arc<dyn Inbox>,
    _storage: Box<dyn std::any::Any + Send + Sync>,
}

/// How long a received message stays hidden: SQS's maximum, twelve hours, longer than any
/// run on the wall clock, so that only the simulation decides when a visibility timeout runs
/// out.
const VISIBILITY: Duration = Duration::from_secs(12 * 3600);
/// The same on the embedded store, which runs on the simulation's clock: longer than any run
/// in virtual time, days that pass included.
const EMBEDDED_VISIBILITY: Duration = Duration::from_secs(365 * 24 * 3600);

async fn open(backend: Backend, shape: &Shape, clock: Arc<SimClock>) -> anyhow::Result<Opened> {
    match backend {
        Backend::Embedded => {
            // tmpfs when there is one: the store syncs every commit, which on a disk is most of
            // a run's time and none of what it tests.
            let shm = std::path::Path::new("/dev/shm");
            let dir = if shm.is_dir() {
                tempfile::tempdir_in(shm)?
            } else {
                tempfile::tempdir()?
            };
            let store = SqliteStore::open_with(
                &dir.path().join("giftify.db"),
                StoreOptions {
                    dedup_window: shape.dedup_window,
                    clock,
                    ..StoreOptions::new(QueueSettings {
                        max_receives: shape.max_receives,
                        visibility_timeout: EMBEDDED_VISIBILITY,
                    })
                },
            )
            .await?;
            Ok(Opened {
                ports: giftify_infra::embedded::ports_of(&store)?,
                queue: store,
                _storage: Box::new(dir),
            })
        }
        Backend::Aws => {
            let visibility = VISIBILITY.as_secs() as u32;
            let stack = crate::moto::AwsTestStack::start(shape.max_receives, visibility).await;
            let ports = stack.runtime.aws.ports();
            Ok(Opened {
                queue: ports.inbox.clone(),
                ports,
                _storage: Box::new(stack),
            })
        }
    }
}

/// Runs one seed to the end; `Err` carries every violation found and the replay command.
pub async fn run(config: SimConfig) -> Result<Report, Failure> {
    let started = Instant::now();
    let shape = Shape::draw(config.seed, &config.scale);
    let fail = |step: u64, violations: Vec<String>, trace: String| Failure {
        seed: config.seed,
        backend: config.backend,
        shape: Some(shape.clone()),
        step,
        violations,
        trace,
    };
    let clock = Arc::new(SimClock::new());
    let opened = open(config.backend, &shape, clock.clone())
        .await
        .map_err(|e| {
            fail(
                0,
                vec![format!("cannot open the backend: {e:#}")],
                String::new(),
            )
        })?;

    // The truth layer: what the backend really did, recorded below every fault.
    let events = Arc::new(RecordingPublisher::new(opened.ports.events.clone()));
    let audit = Arc::new(AuditedCatalogue::new(opened.ports.catalogue.clone()));
    let truth_ports = Ports {
        events: events.clone(),
        catalogue: audit.clone(),
        ..opened.ports.clone()
    };
    let rules = Rules {
        wallet: WalletLimits {
            max_balance: shape.max_balance,
            ..WalletLimits::default()
        },
        // A failed message is deliverable again at once: the simulation, not a backoff,
        // decides when workers come back to it.
        message_retry: RetryPolicy {
            base: Duration::ZERO,
            ..RetryPolicy::default()
        },
        // A code expiring tomorrow is still allocated today, and stays in stock unallocatable
        // once the day passes, until the reconciler expires it the day after.
        min_code_validity: chrono::Duration::days(1),
        ..Rules::default()
    };
    let truth = Giftify::new(
        truth_ports,
        Arc::new(CardVault::new(&CardKey::generate())),
        clock.clone(),
        rules,
    );

    let (users, variants, brand_variants, batches) =
        setup(&truth, &shape, config.seed).await.map_err(|e| {
            fail(
                0,
                vec![format!("setup failed: {}", error_chain(&e))],
                String::new(),
            )
        })?;
    let models = fund(&truth, users, &shape, config.seed)
        .await
        .map_err(|e| {
            fail(
                0,
                vec![format!("funding failed: {}", error_chain(&e))],
                String::new(),
            )
        })?;
    let world = Arc::new(
        World::new(
            Model {
                users: models,
                batches,
                ..Model::default()
            },
            variants,
            Arc::new(TrackedQueue::new(opened.queue)),
            events,
            audit,
            clock.clone(),
            shape.profile,
        )
        .with_brand_variants(brand_variants),
    );

    let mut sched = Scheduler::new(
        SimRng::fork(config.seed, 2),
        shape.strategy,
        shape.profile,
        clock.clone(),
    );
    let (tasks, budgeted) = spawn_actors(&mut sched, &world, &truth, &shape, config.seed);
    // Whatever happens below, no actor outlives its run.
    let _abort = AbortOnDrop(tasks);

    let mut checker = Checker::default();
    let mut actions = 0u64;
    loop {
        let settled = sched
            .settle()
            .await
            .map_err(|e| fail(sched.steps, vec![e], sched.trace.render()))?;
        let (violations, notes) = {
            let mut model = world.model();
            (
                std::mem::take(&mut model.violations),
                std::mem::take(&mut model.notes),
            )
        };
        for note in notes {
            sched.trace.note(note);
        }
        if !violations.is_empty() {
            return Err(fail(sched.steps, violations, sched.trace.render()));
        }
        if settled == Settled::Parked(Point::Idle) {
            actions += 1;
            if actions.is_multiple_of(config.scale.check_every) {
                let found = checker.check(&truth, &world, false).await.map_err(|e| {
                    fail(
                        sched.steps,
                        vec![format!("a check could not read: {}", error_chain(&e))],
                        sched.trace.render(),
                    )
                })?;
                if !found.is_empty() {
                    return Err(fail(sched.steps, found, sched.trace.render()));
                }
            }
        }
        if !world.stopping() && budgeted.iter().all(|id| !sched.is_live(*id)) {
            world.stop();
        }
        if sched.live() == 0 {
            break;
        }
        if sched.steps > MAX_STEPS {
            return Err(fail(
                sched.steps,
                vec!["the run did not end".into()],
                sched.trace.render(),
            ));
        }
        between_steps(&mut sched, &world).await;
        sched.grant();
    }

    let steps = sched.steps;
    let drained = drain(&truth, &world).await;
    // What the clients learnt while the run wound down belongs in the trace too.
    for note in std::mem::take(&mut world.model().notes) {
        sched.trace.note(note);
    }
    let trace = sched.trace.render();
    drained.map_err(|e| fail(steps, e, trace.clone()))?;
    let found = checker.check(&truth, &world, true).await.map_err(|e| {
        fail(
            steps,
            vec![format!(
                "the final check could not read: {}",
                error_chain(&e)
            )],
            trace.clone(),
        )
    })?;
    let mut violations = std::mem::take(&mut world.model().violations);
    violations.extend(found);
    if !violations.is_empty() {
        return Err(fail(steps, violations, trace));
    }

    let mut orders_by_status = BTreeMap::new();
    for order in all_orders(&truth, &world).await.unwrap_or_default() {
        *orders_by_status
            .entry(order.status.to_string())
            .or_insert(0) += 1;
    }
    let mut stats = world.model().stats.clone();
    stats.conflicts = world
        .probe
        .conflicts
        .load(std::sync::atomic::Ordering::Relaxed);
    stats.overlaps = world
        .probe
        .overlaps
        .load(std::sync::atomic::Ordering::Relaxed);
    Ok(Report {
        seed: config.seed,
        backend: config.backend,
        shape,
        steps,
        checks: checker.checks,
        orders_by_status,
        events: world.events.published().len(),
        stats,
        elapsed: started.elapsed(),
    })
}

/// Starts every actor, each parked at its first gate; returns their tasks and the ids of the
/// actors with a budget of actions (users and the admin), whose end ends the run.
fn spawn_actors(
    sched: &mut Scheduler,
    world: &Arc<World>,
    truth: &Giftify,
    shape: &Shape,
    seed: u64,
) -> (Vec<tokio::task::JoinHandle<()>>, Vec<usize>) {
    let mut tasks = Vec::new();
    let mut budgeted = Vec::new();
    // Each actor sees the backend through its own injector, so faults and gates know whose
    // call it is.
    let actor_giftify = |ctx: &sched::ActorCtx| {
        let faults = Faults::new(ctx.clone(), world.probe.clone());
        let giftify = Giftify {
            ports: faults.ports(&truth.ports),
            ..truth.clone()
        };
        (faults, giftify)
    };
    for index in 0..shape.users {
        for session in 0..shape.sessions {
            let ctx = sched.actor(format!("user{index}{}", ["a", "b"][session]), 1);
            budgeted.push(ctx.id);
            let (_, giftify) = actor_giftify(&ctx);
            let user = User {
                ctx,
                giftify,
                world: world.clone(),
                rng: SimRng::fork(seed, 100 + 2 * index as u64 + session as u64),
                index,
                actions: shape.actions_per_user / shape.sessions as u32,
                hot_variant: shape.hot_variant,
            };
            tasks.push(tokio::spawn(user.run()));
        }
    }
    let ctx = sched.actor("admin".into(), 1);
    budgeted.push(ctx.id);
    let (_, giftify) = actor_giftify(&ctx);
    let admin = Admin {
        ctx,
        giftify,
        world: world.clone(),
        rng: SimRng::fork(seed, 3),
        actions: shape.admin_actions,
        max_stock: shape.max_stock,
    };
    tasks.push(tokio::spawn(admin.run()));
    for index in 0..shape.workers {
        let ctx = sched.actor(format!("worker{index}"), shape.worker_weight);
        let (faults, giftify) = actor_giftify(&ctx);
        let worker = Worker {
            queue: faults.queue_driver(world.queue.clone()),
            ctx,
            giftify,
            world: world.clone(),
            rng: SimRng::fork(seed, 200 + index as u64),
            held: Vec::new(),
        };
        tasks.push(tokio::spawn(worker.run()));
    }
    let ctx = sched.actor("operator".into(), 1);
    let (_, giftify) = actor_giftify(&ctx);
    let operator = Operator {
        ctx,
        giftify,
        world: world.clone(),
        rng: SimRng::fork(seed, 4),
    };
    tasks.push(tokio::spawn(operator.run()));
    (tasks, budgeted)
}

/// A bound on scheduling steps, far above what any run needs: hitting it means livelock.
const MAX_STEPS: u64 = 500_000;

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Time passes and visibility timeouts run out between steps.
async fn between_steps(sched: &mut Scheduler, world: &World) {
    if sched.rng().chance(0.03) {
        let pick = sched.rng().next_u64();
        if let Some((delivery, released)) = world.queue.expire(|n| (pick % n as u64) as usize).await
        {
            world.model().stats.expired += 1;
            sched.trace.push(format!(
                "visibility of {} ({} receives) ran out: {:?}",
                delivery.message_id,
                delivery.receive_count,
                released.map_err(|e| e.to_string())
            ));
        }
    }
    let rng = sched.rng();
    let millis = match rng.below(1000) {
        0..=899 => rng.between(0, 400),
        900..=984 => rng.between(1_000, 40_000),
        _ => rng.between(120_000, 240_000),
    };
    world.clock.advance(chrono::Duration::milliseconds(millis));
}

/// What [`setup`] made: users, the variants (Giftify's own first, then the brand's), the
/// brand variants, and the brand's first batch of codes.
type Setup = (
    Vec<UserId>,
    Vec<VariantId>,
    Vec<VariantId>,
    Vec<model::SentBatch>,
);

/// Users, and a small catalogue whose stock runs out often enough to exercise partial
/// fulfillment and refunds: four variants of Giftify's own cards, minted at issue and
/// redeemable, and one brand variant whose cards are codes from an imported pool.
async fn setup(giftify: &Giftify, shape: &Shape, seed: u64) -> giftify_shared::Result<Setup> {
    let mut rng = SimRng::fork(seed, 5);
    let mut users = Vec::new();
    for index in 0..shape.users {
        let user = giftify
            .register(Registration {
                email: Email::parse(&format!("sim{index}@example.in"))?,
                typed_email: String::new(),
                password_hash: "not-a-real-hash".into(),
                first_name: "Sim".into(),
                last_name: format!("User{index}"),
                phone_number: None,
            })
            .await?;
        users.push(user.id);
    }
    let mut variants = Vec::new();
    for (brand, denominations) in [("Zomato", [250, 500]), ("Amazon", [500, 1000])] {
        let product = giftify
            .add_product(
                &giftify_shared::audit::Actor::Operator,
                NewProduct {
                    name: format!("{brand} Gift Card"),
                    description: format!("{brand} gift card"),
                    brand: brand.into(),
                    category: "shopping".into(),
                    image_url: "https://example.in/card.png".into(),
                    thumbnail_url: "https://example.in/card-thumb.png".into(),
                    terms_and_conditions: "Valid for one year.".into(),
                    how_to_redeem: "At checkout.".into(),
                    validity_days: 365,
                },
            )
            .await?;
        for denomination in denominations {
            let mrp = denomination * 100;
            let variant = giftify
                .add_variant(
                    &giftify_shared::audit::Actor::Operator,
                    product.id.clone(),
                    NewVariant {
                        name: format!("{brand} ₹{denomination}"),
                        denomination,
                        // Giftify's own cards sell at their face value.
                        pricing: Pricing::new(mrp, mrp * 9 / 10, 0)?,
                        stock_quantity: rng.between(0, shape.max_stock),
                        min_order_quantity: 1,
                        max_order_quantity: 4,
                        is_active: true,
                        fulfillment_source: giftify_shared::codes::FulfillmentSource::Generated,
                    },
                )
                .await?;
            variants.push(variant.id);
        }
    }
    let product = giftify
        .add_product(
            &giftify_shared::audit::Actor::Operator,
            NewProduct {
                name: "Swiggy Gift Card".into(),
                description: "Swiggy gift card".into(),
                brand: "Swiggy".into(),
                category: "food".into(),
                image_url: "https://example.in/card.png".into(),
                thumbnail_url: "https://example.in/card-thumb.png".into(),
                terms_and_conditions: "As the brand's code says.".into(),
                how_to_redeem: "In the Swiggy app.".into(),
                validity_days: 365,
            },
        )
        .await?;
    let brand = giftify
        .add_variant(
            &giftify_shared::audit::Actor::Operator,
            product.id,
            NewVariant {
                name: "Swiggy ₹250".into(),
                denomination: 250,
                // A reseller's discount: a brand's code is not redeemable here.
                pricing: Pricing::new(25_000, 22_000, 5)?,
                stock_quantity: 0,
                min_order_quantity: 1,
                max_order_quantity: 4,
                is_active: true,
                fulfillment_source: giftify_shared::codes::FulfillmentSource::Inventory,
            },
        )
        .await?;
    let rows: Vec<_> = (0..rng.between(0, shape.max_stock))
        .map(|_| {
            actors::brand_code(
                &mut rng,
                giftify_shared::clock::Clock::now(giftify.clock.as_ref()).date_naive(),
            )
        })
        .collect();
    let mut batches = Vec::new();
    if !rows.is_empty() {
        let batch_ref = "SIM-0".to_string();
        giftify
            .import_codes(
                &giftify_shared::audit::Actor::Operator,
                &brand.id,
                giftify_shared::codes::BatchRef::parse(&batch_ref)?,
                &rows,
            )
            .await?;
        batches.push(model::SentBatch {
            variant: brand.id.clone(),
            batch_ref,
            rows,
            finished: true,
            voided: false,
        });
    }
    variants.push(brand.id.clone());
    Ok((users, variants, vec![brand.id], batches))
}

/// Everyone starts with money to spend, as a top-up the client was told about.
async fn fund(
    giftify: &Giftify,
    users: Vec<UserId>,
    shape: &Shape,
    seed: u64,
) -> giftify_shared::Result<Vec<UserModel>> {
    let mut rng = SimRng::fork(seed, 6);
    let mut models = Vec::new();
    for user in users {
        let amount = rng.between(100_000, shape.max_balance.get().min(1_000_000));
        let credit = giftify.top_up(&user, amount, None).await?;
        let mut model = UserModel::new(user);
        model.credits.insert(credit.id, credit.amount);
        models.push(model);
    }
    Ok(models)
}

/// Every order of every simulated user.
async fn all_orders(
    giftify: &Giftify,
    world: &World,
) -> giftify_shared::Result<Vec<giftify_shared::order::Order>> {
    let users: Vec<UserId> = world.model().users.iter().map(|u| u.id.clone()).collect();
    let mut orders = Vec::new();
    for user in &users {
        orders.extend(check::all_pages(|page| giftify.orders_of(user, None, page)).await?);
    }
    Ok(orders)
}

/// The redeemed or returned cards of the simulated users whose event is not marked sent.
async fn unnotified_cards(
    giftify: &Giftify,
    world: &World,
) -> giftify_shared::Result<Vec<giftify_shared::ids::GiftCardId>> {
    let users: Vec<UserId> = world.model().users.iter().map(|u| u.id.clone()).collect();
    let mut owing = Vec::new();
    for user in &users {
        let cards = check::all_pages(|page| giftify.cards_of_user(user, None, page)).await?;
        owing.extend(cards.into_iter().filter(|c| c.owes_event()).map(|c| c.id));
    }
    Ok(owing)
}

/// Rounds of the quiet end before the run is declared stuck.
const DRAIN_ROUNDS: usize = 40;

/// The end of the run, with every fault off: clients learn the outcome of every key they
/// used, then the queue is worked, dead letters redriven and the reconciler run until nothing
/// moves — every order must then be final and notified.
async fn drain(giftify: &Giftify, world: &World) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let users = world.model().users.len();
    for index in 0..users {
        let open = world.model().users[index].open_keys();
        for key in open {
            for attempt in 0.. {
                let (user, op, sent) = {
                    let mut model = world.model();
                    let now = world.clock.peek();
                    let user = &mut model.users[index];
                    let op = user.keys[&key].op.clone();
                    let sent = user.begin(&op, Some(&key), now);
                    (user.id.clone(), op, sent)
                };
                let result =
                    client::send(giftify, &user, &op, Some(&key), format!("drain-{attempt}")).await;
                let in_progress = matches!(
                    result,
                    Ok((
                        Answer::Refused {
                            code: "IDEMPOTENCY_IN_PROGRESS",
                            ..
                        },
                        _
                    ))
                );
                learn(
                    world,
                    index,
                    "drain",
                    Sent {
                        attempt: sent,
                        op: &op,
                        key: Some(&key),
                    },
                    Some(result),
                    false,
                );
                if world.model().users[index].keys[&key].resolved.is_some() {
                    break;
                }
                if attempt == 20 {
                    problems.push(format!("{user}: key {key} for {op:?} never settled"));
                    break;
                }
                if in_progress {
                    // The crashed holder's lease has to run out first.
                    world.clock.advance(LEASE + chrono::Duration::seconds(1));
                }
            }
        }
    }
    world.probe.cure_all();

    let internal = |what: &str, e: &giftify_shared::Error| format!("{what}: {}", error_chain(e));
    // The admin sends every batch it was never told finished again (a recall ends a batch
    // too), as a supplier's file is sent again after an outage.
    let unfinished: Vec<model::SentBatch> = world
        .model()
        .batches
        .iter()
        .filter(|b| !b.finished && !b.voided)
        .cloned()
        .collect();
    for batch in unfinished {
        let batch_ref = giftify_shared::codes::BatchRef::parse(&batch.batch_ref)
            .map_err(|e| vec![internal("batch reference", &e)])?;
        giftify
            .import_codes(
                &giftify_shared::audit::Actor::Operator,
                &batch.variant,
                batch_ref,
                &batch.rows,
            )
            .await
            .map_err(|e| vec![internal("import again", &e)])?;
    }
    // Two days pass: every card and code dated tomorrow expires at the reconciler's next pass.
    world.clock.advance(chrono::Duration::days(2));
    for round in 0..DRAIN_ROUNDS {
        world.model().stats.expired += world.queue.expire_all().await as u64;
        for _ in 0..10_000 {
            let batch = world
                .queue
                .receive(10, Duration::ZERO)
                .await
                .map_err(|e| vec![internal("receive", &e)])?;
            if batch.is_empty() {
                break;
            }
            for delivery in batch {
                let message = serde_json::from_str(&delivery.body)
                    .map_err(|e| vec![format!("a delivery has a malformed body: {e}")])?;
                match giftify.handle_order_message(&message).await {
                    Ok(_) => {
                        world.model().stats.messages_handled += 1;
                        world
                            .queue
                            .ack(&delivery)
                            .await
                            .map_err(|e| vec![internal("ack", &e)])?;
                    }
                    Err(error) => {
                        problems.push(format!(
                            "with every fault off, handling {} failed: {}",
                            message.order_id,
                            error_chain(&error)
                        ));
                        return Err(problems);
                    }
                }
            }
        }
        let redriven = giftify
            .redrive(
                &giftify_shared::audit::Actor::Operator,
                u32::MAX,
                false,
                |_| {},
            )
            .await
            .map_err(|e| vec![internal("redrive", &e)])?;
        world.model().stats.redriven += redriven.moved.len() as u64;
        world
            .clock
            .advance(giftify.rules.stale_pending_after + chrono::Duration::seconds(1));
        let reconciled = giftify
            .reconcile()
            .await
            .map_err(|e| vec![internal("reconcile", &e)])?;
        {
            let mut model = world.model();
            model.stats.reconciled += reconciled.requeued as u64;
            model.stats.cards_expired += reconciled.expired_cards;
            model.stats.codes_expired += reconciled.expired_codes;
        }

        let depths = giftify
            .ports
            .queue_ops
            .depths()
            .await
            .map_err(|e| vec![internal("depths", &e)])?;
        let orders = all_orders(giftify, world)
            .await
            .map_err(|e| vec![internal("orders", &e)])?;
        let owing = unnotified_cards(giftify, world)
            .await
            .map_err(|e| vec![internal("cards", &e)])?;
        let settled = owing.is_empty()
            && orders
                .iter()
                .all(|o| o.status.is_final() && o.notified_at.is_some());
        let queue_empty = depths.ready == 0 && depths.in_flight == 0 && depths.dead == 0;
        if settled && queue_empty && world.queue.in_flight() == 0 && redriven.moved.is_empty() {
            return if problems.is_empty() {
                Ok(())
            } else {
                Err(problems)
            };
        }
        if round + 1 == DRAIN_ROUNDS {
            let stuck: Vec<String> = orders
                .iter()
                .filter(|o| !o.status.is_final() || o.notified_at.is_none())
                .map(|o| format!("{} {} notified={:?}", o.id, o.status, o.notified_at))
                .collect();
            problems.push(format!(
                "the system did not settle after {DRAIN_ROUNDS} quiet rounds: queue {depths:?}, \
                 unsettled orders {stuck:?}, cards owing their event {owing:?}"
            ));
        } else if depths.dead > 0 || depths.in_flight > 0 {
            // SQS hides listed or redriven dead letters for a while on the wall clock.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Err(problems)
}
