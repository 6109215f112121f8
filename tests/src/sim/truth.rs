//! The layer between the backend and the fault injectors: what really happened, recorded where
//! no fault can hide it.
//!
//! - [`RecordingPublisher`] keeps every event the real publisher accepted (also when a fault
//!   then hid the success from the caller), for "at least one event per final order".
//! - [`AuditedCatalogue`] keeps the stock each admin change really added or removed. The
//!   product has no stock ledger, and an admin change that meets an error after its commit
//!   is ambiguous to the caller; the audit is taken inside the scheduler's exclusive step, so
//!   the before/after reads see no other actor's work.
//! - [`TrackedQueue`] wraps either backend's [`Inbox`] for the simulated workers and
//!   remembers every delivery still in flight, so that the simulation can let a visibility
//!   timeout run out on any of them — also on one a worker is still handling.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::Result;
use giftify_shared::catalogue::{
    CatalogueEntry, Product, ProductUpdate, ProductWithVariants, Variant, VariantUpdate,
};
use giftify_shared::events::Event;
use giftify_shared::ids::{ProductId, VariantId};
use giftify_shared::inbox::Delivery;
use giftify_shared::ports::{Catalogue, EventPublisher, Inbox};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records the events the real publisher accepted.
pub struct RecordingPublisher {
    inner: Arc<dyn EventPublisher>,
    published: Mutex<Vec<Event>>,
}

impl RecordingPublisher {
    pub fn new(inner: Arc<dyn EventPublisher>) -> Self {
        RecordingPublisher {
            inner,
            published: Mutex::new(Vec::new()),
        }
    }

    pub fn published(&self) -> Vec<Event> {
        lock(&self.published).clone()
    }
}

#[async_trait]
impl EventPublisher for RecordingPublisher {
    async fn publish(&self, event: &Event) -> Result<()> {
        self.inner.publish(event).await?;
        lock(&self.published).push(event.clone());
        Ok(())
    }
}

/// Records the stock every catalogue write really added (positive) or removed (negative).
pub struct AuditedCatalogue {
    inner: Arc<dyn Catalogue>,
    added: Mutex<BTreeMap<VariantId, i64>>,
}

impl AuditedCatalogue {
    pub fn new(inner: Arc<dyn Catalogue>) -> Self {
        AuditedCatalogue {
            inner,
            added: Mutex::new(BTreeMap::new()),
        }
    }

    /// Stock put in by admins per variant, net of what they took out.
    pub fn added(&self) -> BTreeMap<VariantId, i64> {
        lock(&self.added).clone()
    }

    fn record(&self, variant: &VariantId, delta: i64) {
        *lock(&self.added).entry(variant.clone()).or_default() += delta;
    }
}

#[async_trait]
impl Catalogue for AuditedCatalogue {
    async fn active_catalogue(&self) -> Result<Vec<ProductWithVariants>> {
        self.inner.active_catalogue().await
    }
    async fn catalogue_version(&self) -> Result<Option<u64>> {
        self.inner.catalogue_version().await
    }
    async fn entries(&self, ids: &[VariantId]) -> Result<Vec<CatalogueEntry>> {
        self.inner.entries(ids).await
    }
    async fn inventory(&self) -> Result<Vec<CatalogueEntry>> {
        self.inner.inventory().await
    }
    async fn add_product(&self, product: &Product) -> Result<()> {
        self.inner.add_product(product).await
    }
    async fn add_variant(&self, variant: &Variant) -> Result<()> {
        self.inner.add_variant(variant).await?;
        self.record(&variant.id, variant.stock_quantity);
        Ok(())
    }
    async fn update_variant(
        &self,
        id: &VariantId,
        update: &VariantUpdate,
        now: DateTime<Utc>,
    ) -> Result<CatalogueEntry> {
        let before = self
            .inner
            .entries(std::slice::from_ref(id))
            .await?
            .first()
            .map(|e| e.variant.stock_quantity);
        let after = self.inner.update_variant(id, update, now).await?;
        if let Some(before) = before {
            self.record(id, after.variant.stock_quantity - before);
        }
        Ok(after)
    }
    async fn update_product(
        &self,
        id: &ProductId,
        update: &ProductUpdate,
        now: DateTime<Utc>,
    ) -> Result<(Product, Product)> {
        self.inner.update_product(id, update, now).await
    }
    async fn seed_if_empty(&self, catalogue: &[ProductWithVariants]) -> Result<bool> {
        let wrote = self.inner.seed_if_empty(catalogue).await?;
        if wrote {
            for variant in catalogue.iter().flat_map(|p| &p.variants) {
                self.record(&variant.id, variant.stock_quantity);
            }
        }
        Ok(wrote)
    }
}

/// A queue that remembers its deliveries in flight, in the order they were received (not by
/// message id: those are random, and the choice of which visibility runs out must replay).
pub struct TrackedQueue {
    inner: Arc<dyn Inbox>,
    in_flight: Mutex<Vec<Delivery>>,
}

impl TrackedQueue {
    pub fn new(inner: Arc<dyn Inbox>) -> Self {
        TrackedQueue {
            inner,
            in_flight: Mutex::new(Vec::new()),
        }
    }

    pub fn in_flight(&self) -> usize {
        lock(&self.in_flight).len()
    }

    fn settle(&self, delivery: &Delivery) {
        lock(&self.in_flight)
            .retain(|d| !(d.message_id == delivery.message_id && d.receipt == delivery.receipt));
    }

    /// Lets the visibility timeout of the in-flight delivery at `pick(len)` run out: the
    /// message is visible again, and whoever holds that delivery now holds a stale receipt.
    /// The delivery is forgotten even when the queue refuses the release: then the message is
    /// already gone (deleted through an older receipt, which SQS may accept).
    pub async fn expire(
        &self,
        pick: impl FnOnce(usize) -> usize,
    ) -> Option<(Delivery, Result<()>)> {
        let delivery = {
            let mut in_flight = lock(&self.in_flight);
            if in_flight.is_empty() {
                return None;
            }
            let index = pick(in_flight.len());
            in_flight.remove(index)
        };
        let released = self
            .inner
            .retry_later(&delivery, "visibility timeout expired", Duration::ZERO)
            .await;
        Some((delivery, released))
    }

    /// Lets every visibility timeout run out (the end of the run: all workers are gone).
    pub async fn expire_all(&self) -> usize {
        let mut expired = 0;
        while self.expire(|_| 0).await.is_some() {
            expired += 1;
        }
        expired
    }
}

#[async_trait]
impl Inbox for TrackedQueue {
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        let got = self.inner.receive(max, wait).await?;
        lock(&self.in_flight).extend(got.iter().cloned());
        Ok(got)
    }
    async fn ack(&self, delivery: &Delivery) -> Result<()> {
        // A failed ack leaves the delivery in flight until its visibility runs out.
        let result = self.inner.ack(delivery).await;
        if result.is_ok() {
            self.settle(delivery);
        }
        result
    }
    async fn retry_later(&self, delivery: &Delivery, reason: &str, delay: Duration) -> Result<()> {
        let result = self.inner.retry_later(delivery, reason, delay).await;
        if result.is_ok() {
            self.settle(delivery);
        }
        result
    }
    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()> {
        let result = self.inner.dead_letter(delivery, reason).await;
        if result.is_ok() {
            self.settle(delivery);
        }
        result
    }
}
