//! What the simulated clients know: what they were told for sure, what may or may not have
//! happened (a request that crashed, timed out or is still in flight), and which idempotency
//! keys they used for what. The checker holds the backend's state against this knowledge:
//! every acknowledged top-up and order must be there, and anything else that is there must be
//! explained by a request whose outcome the client never learnt.

use super::client::Op;
use super::faults::Probe;
use super::sched::{FaultProfile, SimClock};
use super::truth::{AuditedCatalogue, RecordingPublisher, TrackedQueue};
use chrono::{DateTime, Utc};
use giftify_shared::Paise;
use giftify_shared::codes::CodeRow;
use giftify_shared::ids::{GiftCardId, OrderId, TransactionId, UserId, VariantId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Everything the actors, the checker and the driver share.
pub struct World {
    pub model: Mutex<Model>,
    /// The variants, in the order the run created them.
    pub variants: Vec<VariantId>,
    /// Those of them whose cards are brand codes from an imported pool (INVENTORY), as the
    /// admin knows them (it may turn an unused Giftify variant into one); the others mint
    /// Giftify's own cards.
    brand_variants: Mutex<BTreeSet<VariantId>>,
    pub probe: Arc<Probe>,
    pub queue: Arc<TrackedQueue>,
    pub events: Arc<RecordingPublisher>,
    pub audit: Arc<AuditedCatalogue>,
    pub clock: Arc<SimClock>,
    pub profile: FaultProfile,
    stop: AtomicBool,
}

impl World {
    pub fn new(
        model: Model,
        variants: Vec<VariantId>,
        queue: Arc<TrackedQueue>,
        events: Arc<RecordingPublisher>,
        audit: Arc<AuditedCatalogue>,
        clock: Arc<SimClock>,
        profile: FaultProfile,
    ) -> Self {
        World {
            model: Mutex::new(model),
            variants,
            brand_variants: Mutex::default(),
            probe: Arc::default(),
            queue,
            events,
            audit,
            clock,
            profile,
            stop: AtomicBool::new(false),
        }
    }

    /// Marks which of the variants are brand variants.
    pub fn with_brand_variants(self, brand_variants: Vec<VariantId>) -> Self {
        brand_variants.into_iter().for_each(|v| self.mark_brand(v));
        self
    }

    /// The admin was told the variant now takes codes.
    pub fn mark_brand(&self, variant: VariantId) {
        self.brand_variants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(variant);
    }

    pub fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the open-ended actors (workers, operator) to finish at their next idle gate.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn violation(&self, message: String) {
        self.model().violations.push(message);
    }

    pub fn is_brand(&self, variant: &VariantId) -> bool {
        self.brand_variants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(variant)
    }

    /// Lets a day pass, when no request's outcome hangs on time: no client holds an open
    /// idempotency key (a key is kept 24 h; a retry after that would run anew). Deliveries in
    /// flight stay hidden: their visibility outlasts any day passed (see `sim::open`).
    /// Returns whether it did.
    pub fn pass_a_day(&self) -> bool {
        let quiet = self
            .model()
            .users
            .iter()
            .all(|u| u.open_keys().is_empty() && u.in_flight.is_empty());
        if quiet {
            self.clock.advance(chrono::Duration::days(1));
        }
        quiet
    }
}

/// A batch of brand codes the admin sent, and whether it was told the import finished.
#[derive(Clone, Debug)]
pub struct SentBatch {
    pub variant: VariantId,
    pub batch_ref: String,
    pub rows: Vec<CodeRow>,
    pub finished: bool,
    pub voided: bool,
}

/// The clients' knowledge, and counters for the report.
#[derive(Debug, Default)]
pub struct Model {
    pub users: Vec<UserModel>,
    /// Broken expectations found by the actors themselves (a wrong answer, an internal error).
    pub violations: Vec<String>,
    /// What the actors did since the last step, for the trace.
    pub notes: Vec<String>,
    pub stats: Stats,
    /// Every batch of codes the admin sent, in order.
    pub batches: Vec<SentBatch>,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Answers by kind: `placed`, `topped_up`, `cancelled`, or the code of a 4xx.
    pub answers: BTreeMap<&'static str, u64>,
    pub requests: u64,
    pub uncertain: u64,
    pub crashes: u64,
    pub replays: u64,
    pub messages_handled: u64,
    pub message_failures: u64,
    pub redriven: u64,
    pub expired: u64,
    pub reconciled: u64,
    pub conflicts: u64,
    pub overlaps: u64,
    /// Cards: redeemed into a wallet and returned, as the clients were told; expired by the
    /// reconciler.
    pub redeemed: u64,
    pub returned: u64,
    pub cards_expired: u64,
    /// Codes: imported (new to the pool), and expired by the reconciler.
    pub codes_imported: u64,
    pub codes_expired: u64,
    pub days_passed: u64,
}

/// A request that may have committed: still in flight, or answered with a 5xx or not at all.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub id: u64,
    pub op: Op,
    pub key: Option<String>,
}

/// How a key's request ended, once a client learnt it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    Credit(TransactionId),
    Order(OrderId),
    Cancel(OrderId),
    Refused(&'static str),
}

#[derive(Clone, Debug)]
pub struct KeyState {
    pub op: Op,
    pub resolved: Option<Resolved>,
    pub first_used: DateTime<Utc>,
}

#[derive(Debug)]
pub struct UserModel {
    pub id: UserId,
    /// Top-ups the client was told about, by transaction.
    pub credits: BTreeMap<TransactionId, Paise>,
    /// Orders the client was told were accepted, in that order.
    pub orders: Vec<OrderId>,
    pub maybe: Vec<Attempt>,
    pub keys: BTreeMap<String, KeyState>,
    /// Keys with a request in flight right now, and how many.
    pub in_flight: BTreeMap<String, u32>,
    /// Cards the client was told it redeemed, and returned.
    pub redeemed: BTreeSet<GiftCardId>,
    pub returned: BTreeSet<GiftCardId>,
    next_attempt: u64,
    next_key: u64,
}

impl UserModel {
    pub fn new(id: UserId) -> Self {
        UserModel {
            id,
            credits: BTreeMap::new(),
            orders: Vec::new(),
            maybe: Vec::new(),
            keys: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            redeemed: BTreeSet::new(),
            returned: BTreeSet::new(),
            next_attempt: 0,
            next_key: 0,
        }
    }

    /// A fresh key, unique within this user.
    pub fn new_key(&mut self) -> String {
        self.next_key += 1;
        format!("sim-key-{}", self.next_key)
    }

    /// Records a request about to be sent; it may commit from now on.
    pub fn begin(&mut self, op: &Op, key: Option<&str>, now: DateTime<Utc>) -> u64 {
        self.next_attempt += 1;
        let id = self.next_attempt;
        if let Some(key) = key {
            self.keys.entry(key.to_string()).or_insert(KeyState {
                op: op.clone(),
                resolved: None,
                first_used: now,
            });
            *self.in_flight.entry(key.to_string()).or_default() += 1;
        }
        if op.moves_money_in() {
            self.maybe.push(Attempt {
                id,
                op: op.clone(),
                key: key.map(str::to_string),
            });
        }
        id
    }

    /// A request under `key` came back (with an answer or without).
    pub fn returned(&mut self, key: &str) {
        if let Some(count) = self.in_flight.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                self.in_flight.remove(key);
            }
        }
    }

    /// Open keys with a request in flight: a retry of one races that request.
    pub fn racing_keys(&self) -> Vec<String> {
        self.in_flight
            .keys()
            .filter(|key| self.keys[*key].resolved.is_none())
            .cloned()
            .collect()
    }

    /// The client learnt the outcome of attempt `id`: it, and every other attempt with the same
    /// key (a key has one outcome), no longer needs explaining.
    pub fn settle(&mut self, id: u64, key: Option<&str>) {
        self.maybe
            .retain(|a| a.id != id && (key.is_none() || a.key.as_deref() != key));
    }

    /// Keys whose outcome the client has not learnt.
    pub fn open_keys(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter(|(_, state)| state.resolved.is_none())
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Keys with a known outcome.
    pub fn resolved_keys(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter(|(_, state)| state.resolved.is_some())
            .map(|(key, _)| key.clone())
            .collect()
    }
}
