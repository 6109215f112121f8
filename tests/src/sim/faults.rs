//! Fault-injecting wrappers around the ports. Each actor gets its own [`Ports`] whose every
//! method first parks at the scheduler's gate, then meets the fault the scheduler chose:
//! a transient error before the call, a transient error after the call committed (the
//! ambiguous outcome), or a crash before or after it (see [`super::sched`]).
//!
//! Injected errors are [`Error::Unavailable`], what a throttled or unreachable backend gives,
//! or, for some writes refused before they ran, [`Error::Conflict`], a lost transaction race;
//! the product must treat them as "maybe retry", never as "nothing happened" after a write.
//! Accounts, sessions, the login throttle and the health check are passed through untouched:
//! the simulation does not drive them.

use super::sched::{ActorCtx, Decision, Point};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::cart::{Cart, CartLine};
use giftify_shared::catalogue::{
    CatalogueEntry, Product, ProductUpdate, ProductWithVariants, Variant, VariantUpdate,
};
use giftify_shared::codes::{BatchRef, BatchSummary, CodeImport, ImportReport, InventoryCode};
use giftify_shared::events::Event;
use giftify_shared::idempotency::{Claim, IdempotencyScope, NewClaim, Refusal};
use giftify_shared::ids::{GiftCardId, OrderId, ProductId, TransactionId, UserId, VariantId};
use giftify_shared::inbox::Delivery;
use giftify_shared::labels::ClientReference;
use giftify_shared::ledger::Posting;
use giftify_shared::order::{
    Cancellation, DeadLetter, Fulfillment, LetterPick, Order, OrderMessage, OrderPlacement,
    OrderStatus, Outbox, QueueDepths,
};
use giftify_shared::ports::{
    Carts, Catalogue, CodeInventory, EventPublisher, GiftCards, IdempotencyKeys, Inbox, OrderQueue,
    Orders, Ports, QueueOps, Wallets,
};
use giftify_shared::vault::{GiftCard, RevealAudit};
use giftify_shared::wallet::{Page, PageRequest, TransactionFilter, WalletTransaction};
use giftify_shared::{Error, Paise, Result};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// What the injectors share with the rest of the run: sticky faults, and counters that show
/// which races a run really explored.
#[derive(Debug, Default)]
pub struct Probe {
    /// Orders whose fulfillment fails until the given (virtual) time: a downstream outage
    /// that outlasts the message's receives, so it reaches the dead-letter queue.
    pub poisoned: Mutex<BTreeMap<OrderId, DateTime<Utc>>>,
    /// Fulfillment commits that lost a stock race (`Conflict`) and were retried.
    pub conflicts: AtomicU64,
    /// Orders being handled right now, by how many workers.
    pub handling: Mutex<BTreeMap<OrderId, u32>>,
    /// Times a worker started on an order another worker was still handling.
    pub overlaps: AtomicU64,
}

impl Probe {
    pub fn poison(&self, order: OrderId, until: DateTime<Utc>) {
        lock(&self.poisoned).insert(order, until);
    }

    pub fn cure_all(&self) {
        lock(&self.poisoned).clear();
    }

    /// Counts a worker on `order` until the guard drops (also when its process crashes).
    pub fn handling(self: &Arc<Self>, order: &OrderId) -> HandlingGuard {
        let mut handling = lock(&self.handling);
        let workers = handling.entry(order.clone()).or_default();
        *workers += 1;
        if *workers > 1 {
            self.overlaps.fetch_add(1, Ordering::Relaxed);
        }
        HandlingGuard {
            probe: self.clone(),
            order: order.clone(),
        }
    }
}

/// See [`Probe::handling`].
pub struct HandlingGuard {
    probe: Arc<Probe>,
    order: OrderId,
}

impl Drop for HandlingGuard {
    fn drop(&mut self) {
        let mut handling = lock(&self.probe.handling);
        if let Some(workers) = handling.get_mut(&self.order) {
            *workers -= 1;
            if *workers == 0 {
                handling.remove(&self.order);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One actor's fault injector.
#[derive(Clone, Debug)]
pub struct Faults {
    ctx: ActorCtx,
    probe: Arc<Probe>,
}

fn injected(op: &str, when: &str) -> Error {
    Error::Unavailable(anyhow::anyhow!("injected fault {when} {op}"))
}

impl Faults {
    pub fn new(ctx: ActorCtx, probe: Arc<Probe>) -> Self {
        Faults { ctx, probe }
    }

    /// Parks at the gate, then applies the scheduler's decision around `call`.
    async fn call<T, Fut>(
        &self,
        op: &'static str,
        write: bool,
        call: impl FnOnce() -> Fut,
    ) -> Result<T>
    where
        Fut: Future<Output = Result<T>>,
    {
        match self.ctx.gate(Point::Call { op, write }).await {
            Decision::Proceed => call().await,
            Decision::FailBefore => Err(injected(op, "before")),
            Decision::ConflictBefore => Err(Error::Conflict("injected write conflict")),
            Decision::FailAfter => {
                call().await?;
                Err(injected(op, "after the commit of"))
            }
            Decision::CrashBefore => self.ctx.crash().await,
            Decision::CrashAfter => {
                let _ = call().await;
                self.ctx.crash().await
            }
        }
    }

    fn poisoned(&self, order: &OrderId, now: DateTime<Utc>) -> bool {
        lock(&self.probe.poisoned)
            .get(order)
            .is_some_and(|until| now < *until)
    }

    /// `truth` with every port an actor drives wrapped by this injector.
    pub fn ports(&self, truth: &Ports) -> Ports {
        Ports {
            wallets: Arc::new(Faulty(self.clone(), truth.wallets.clone())),
            catalogue: Arc::new(Faulty(self.clone(), truth.catalogue.clone())),
            carts: Arc::new(Faulty(self.clone(), truth.carts.clone())),
            orders: Arc::new(Faulty(self.clone(), truth.orders.clone())),
            // Figures are written inside the other ports' transactions, which carry the faults.
            reports: truth.reports.clone(),
            gift_cards: Arc::new(Faulty(self.clone(), truth.gift_cards.clone())),
            codes: Arc::new(Faulty(self.clone(), truth.codes.clone())),
            idempotency: Arc::new(Faulty(self.clone(), truth.idempotency.clone())),
            queue: Arc::new(Faulty(self.clone(), truth.queue.clone())),
            queue_ops: Arc::new(Faulty(self.clone(), truth.queue_ops.clone())),
            events: Arc::new(Faulty(self.clone(), truth.events.clone())),
            ..truth.clone()
        }
    }

    /// The queue primitives of a worker, wrapped the same way.
    pub fn queue_driver(&self, truth: Arc<dyn Inbox>) -> Arc<dyn Inbox> {
        Arc::new(Faulty(self.clone(), truth))
    }
}

/// A port `P` behind the injector.
struct Faulty<P: ?Sized>(Faults, Arc<P>);

#[async_trait]
impl Wallets for Faulty<dyn Wallets> {
    async fn top_up(&self, top_up: &Posting) -> Result<WalletTransaction> {
        self.0
            .call("wallets.top_up", true, || self.1.top_up(top_up))
            .await
    }
    async fn adjust_balance(&self, adjustment: &Posting) -> Result<WalletTransaction> {
        self.0
            .call("wallets.adjust_balance", true, || {
                self.1.adjust_balance(adjustment)
            })
            .await
    }
    async fn balance(&self, user: &UserId) -> Result<Paise> {
        self.0
            .call("wallets.balance", false, || self.1.balance(user))
            .await
    }
    async fn transactions(
        &self,
        user: &UserId,
        filter: &TransactionFilter,
        page: PageRequest,
    ) -> Result<Page<WalletTransaction>> {
        self.0
            .call("wallets.transactions", false, || {
                self.1.transactions(user, filter, page)
            })
            .await
    }
    async fn transaction(
        &self,
        user: &UserId,
        id: &TransactionId,
    ) -> Result<Option<WalletTransaction>> {
        self.0
            .call("wallets.transaction", false, || {
                self.1.transaction(user, id)
            })
            .await
    }
}

#[async_trait]
impl Catalogue for Faulty<dyn Catalogue> {
    async fn active_catalogue(&self) -> Result<Vec<ProductWithVariants>> {
        self.0
            .call("catalogue.active_catalogue", false, || {
                self.1.active_catalogue()
            })
            .await
    }
    async fn catalogue_version(&self) -> Result<Option<u64>> {
        self.0
            .call("catalogue.catalogue_version", false, || {
                self.1.catalogue_version()
            })
            .await
    }
    async fn entries(&self, ids: &[VariantId]) -> Result<Vec<CatalogueEntry>> {
        self.0
            .call("catalogue.entries", false, || self.1.entries(ids))
            .await
    }
    async fn inventory(&self) -> Result<Vec<CatalogueEntry>> {
        self.0
            .call("catalogue.inventory", false, || self.1.inventory())
            .await
    }
    async fn add_product(&self, product: &Product) -> Result<()> {
        self.0
            .call("catalogue.add_product", true, || {
                self.1.add_product(product)
            })
            .await
    }
    async fn add_variant(&self, variant: &Variant) -> Result<()> {
        self.0
            .call("catalogue.add_variant", true, || {
                self.1.add_variant(variant)
            })
            .await
    }
    async fn update_variant(
        &self,
        id: &VariantId,
        update: &VariantUpdate,
        now: DateTime<Utc>,
    ) -> Result<CatalogueEntry> {
        self.0
            .call("catalogue.update_variant", true, || {
                self.1.update_variant(id, update, now)
            })
            .await
    }
    async fn update_product(
        &self,
        id: &ProductId,
        update: &ProductUpdate,
        now: DateTime<Utc>,
    ) -> Result<(Product, Product)> {
        self.0
            .call("catalogue.update_product", true, || {
                self.1.update_product(id, update, now)
            })
            .await
    }
    async fn seed_if_empty(&self, catalogue: &[ProductWithVariants]) -> Result<bool> {
        self.0
            .call("catalogue.seed_if_empty", true, || {
                self.1.seed_if_empty(catalogue)
            })
            .await
    }
}

#[async_trait]
impl Carts for Faulty<dyn Carts> {
    async fn cart(&self, user: &UserId) -> Result<Cart> {
        self.0.call("carts.cart", false, || self.1.cart(user)).await
    }
    async fn put_line(&self, user: &UserId, line: &CartLine, now: DateTime<Utc>) -> Result<Cart> {
        self.0
            .call("carts.put_line", true, || self.1.put_line(user, line, now))
            .await
    }
    async fn remove_line(
        &self,
        user: &UserId,
        variant: &VariantId,
        now: DateTime<Utc>,
    ) -> Result<Cart> {
        self.0
            .call("carts.remove_line", true, || {
                self.1.remove_line(user, variant, now)
            })
            .await
    }
    async fn clear_cart(&self, user: &UserId, now: DateTime<Utc>) -> Result<()> {
        self.0
            .call("carts.clear_cart", true, || self.1.clear_cart(user, now))
            .await
    }
    async fn reprice(
        &self,
        user: &UserId,
        prices: &[(VariantId, Paise)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.0
            .call("carts.reprice", true, || self.1.reprice(user, prices, now))
            .await
    }
}

#[async_trait]
impl Orders for Faulty<dyn Orders> {
    async fn place_order(&self, placement: &OrderPlacement) -> Result<Outbox> {
        self.0
            .call("orders.place_order", true, || self.1.place_order(placement))
            .await
    }
    async fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        self.0
            .call("orders.order", false, || self.1.order(id))
            .await
    }
    async fn order_by_reference(
        &self,
        user: &UserId,
        reference: &ClientReference,
    ) -> Result<Option<Order>> {
        self.0
            .call("orders.order_by_reference", false, || {
                self.1.order_by_reference(user, reference)
            })
            .await
    }
    async fn orders_of(
        &self,
        user: &UserId,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        self.0
            .call("orders.orders_of", false, || {
                self.1.orders_of(user, status, page)
            })
            .await
    }
    async fn all_orders(
        &self,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        self.0
            .call("orders.all_orders", false, || {
                self.1.all_orders(status, page)
            })
            .await
    }
    async fn start_processing(&self, id: &OrderId, now: DateTime<Utc>) -> Result<Order> {
        self.0
            .call("orders.start_processing", true, || async {
                if self.0.poisoned(id, now) {
                    return Err(injected("orders.start_processing", "(poisoned order)"));
                }
                self.1.start_processing(id, now).await
            })
            .await
    }
    async fn complete_fulfillment(&self, fulfillment: &Fulfillment) -> Result<Order> {
        self.0
            .call("orders.complete_fulfillment", true, || async {
                let result = self.1.complete_fulfillment(fulfillment).await;
                if let Err(Error::Conflict(_)) = &result {
                    self.0.probe.conflicts.fetch_add(1, Ordering::Relaxed);
                }
                result
            })
            .await
    }
    async fn refund_in_full(&self, cancellation: &Cancellation) -> Result<Order> {
        self.0
            .call("orders.refund_in_full", true, || {
                self.1.refund_in_full(cancellation)
            })
            .await
    }
    async fn mark_notified(&self, id: &OrderId, now: DateTime<Utc>) -> Result<()> {
        self.0
            .call("orders.mark_notified", true, || {
                self.1.mark_notified(id, now)
            })
            .await
    }
    async fn stale_orders(
        &self,
        status: OrderStatus,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Order>> {
        self.0
            .call("orders.stale_orders", false, || {
                self.1.stale_orders(status, before, limit)
            })
            .await
    }
    async fn unnotified(&self, limit: u32) -> Result<Vec<Order>> {
        self.0
            .call("orders.unnotified", false, || self.1.unnotified(limit))
            .await
    }
}

#[async_trait]
impl GiftCards for Faulty<dyn GiftCards> {
    async fn cards(&self, ids: &[GiftCardId]) -> Result<Vec<GiftCard>> {
        self.0
            .call("gift_cards.cards", false, || self.1.cards(ids))
            .await
    }
    async fn card(&self, id: &GiftCardId) -> Result<Option<GiftCard>> {
        self.0
            .call("gift_cards.card", false, || self.1.card(id))
            .await
    }
    async fn record_reveal(&self, audit: &RevealAudit) -> Result<()> {
        self.0
            .call("gift_cards.record_reveal", true, || {
                self.1.record_reveal(audit)
            })
            .await
    }
    async fn cards_of_user(
        &self,
        user: &giftify_shared::ids::UserId,
        status: Option<giftify_shared::vault::GiftCardStatus>,
        page: giftify_shared::wallet::PageRequest,
    ) -> Result<giftify_shared::wallet::Page<GiftCard>> {
        self.0
            .call("gift_cards.cards_of_user", false, || {
                self.1.cards_of_user(user, status, page)
            })
            .await
    }
    async fn reveals_of(&self, card: &GiftCardId) -> Result<Vec<RevealAudit>> {
        self.0
            .call("gift_cards.reveals_of", false, || self.1.reveals_of(card))
            .await
    }
    async fn return_card(
        &self,
        card_return: &giftify_shared::card_life::CardReturn,
    ) -> Result<GiftCard> {
        self.0
            .call("gift_cards.return_card", true, || {
                self.1.return_card(card_return)
            })
            .await
    }
    async fn expire_cards(&self, expiry: &giftify_shared::card_life::Expiry) -> Result<u64> {
        self.0
            .call("gift_cards.expire_cards", true, || {
                self.1.expire_cards(expiry)
            })
            .await
    }
    async fn card_by_lookup_key(&self, lookup_key: &str) -> Result<Option<GiftCard>> {
        self.0
            .call("gift_cards.card_by_lookup_key", false, || {
                self.1.card_by_lookup_key(lookup_key)
            })
            .await
    }
    async fn redeem(&self, redemption: &giftify_shared::card_life::Redemption) -> Result<GiftCard> {
        self.0
            .call("gift_cards.redeem", true, || self.1.redeem(redemption))
            .await
    }
    async fn mark_card_notified(&self, card: &GiftCardId, now: DateTime<Utc>) -> Result<()> {
        self.0
            .call("gift_cards.mark_card_notified", true, || {
                self.1.mark_card_notified(card, now)
            })
            .await
    }
    async fn unnotified_cards(&self, limit: u32) -> Result<Vec<GiftCard>> {
        self.0
            .call("gift_cards.unnotified_cards", false, || {
                self.1.unnotified_cards(limit)
            })
            .await
    }
}

#[async_trait]
impl CodeInventory for Faulty<dyn CodeInventory> {
    async fn import_codes(&self, import: &CodeImport) -> Result<ImportReport> {
        self.0
            .call("codes.import_codes", true, || self.1.import_codes(import))
            .await
    }
    async fn code_batches(&self, variant: &VariantId) -> Result<Vec<BatchSummary>> {
        self.0
            .call("codes.code_batches", false, || self.1.code_batches(variant))
            .await
    }
    async fn void_batch(
        &self,
        variant: &VariantId,
        batch: &BatchRef,
        now: DateTime<Utc>,
    ) -> Result<BatchSummary> {
        self.0
            .call("codes.void_batch", true, || {
                self.1.void_batch(variant, batch, now)
            })
            .await
    }
    async fn expire_codes(
        &self,
        variant: &VariantId,
        today: chrono::NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        self.0
            .call("codes.expire_codes", true, || {
                self.1.expire_codes(variant, today, now)
            })
            .await
    }
    async fn allocatable_codes(
        &self,
        variant: &VariantId,
        valid_through: chrono::NaiveDate,
        limit: u32,
    ) -> Result<Vec<InventoryCode>> {
        self.0
            .call("codes.allocatable_codes", false, || {
                self.1.allocatable_codes(variant, valid_through, limit)
            })
            .await
    }
}

#[async_trait]
impl IdempotencyKeys for Faulty<dyn IdempotencyKeys> {
    async fn claim(&self, claim: &NewClaim) -> Result<Claim> {
        self.0
            .call("idempotency.claim", true, || self.1.claim(claim))
            .await
    }
    async fn record_refusal(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        refusal: &Refusal,
    ) -> Result<()> {
        self.0
            .call("idempotency.record_refusal", true, || {
                self.1.record_refusal(scope, token, refusal)
            })
            .await
    }
    async fn release(&self, scope: &IdempotencyScope, token: &str) -> Result<()> {
        self.0
            .call("idempotency.release", true, || self.1.release(scope, token))
            .await
    }
}

#[async_trait]
impl OrderQueue for Faulty<dyn OrderQueue> {
    async fn enqueue(&self, message: &OrderMessage) -> Result<()> {
        self.0
            .call("queue.enqueue", true, || self.1.enqueue(message))
            .await
    }
}

#[async_trait]
impl QueueOps for Faulty<dyn QueueOps> {
    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>> {
        self.0
            .call("queue_ops.dead_letters", false, || {
                self.1.dead_letters(limit)
            })
            .await
    }
    async fn redrive(&self, pick: &LetterPick) -> Result<Option<DeadLetter>> {
        self.0
            .call("queue_ops.redrive", true, || self.1.redrive(pick))
            .await
    }
    async fn delete_dead_letter(&self, pick: &LetterPick) -> Result<Option<DeadLetter>> {
        self.0
            .call("queue_ops.delete_dead_letter", true, || {
                self.1.delete_dead_letter(pick)
            })
            .await
    }
    async fn depths(&self) -> Result<QueueDepths> {
        self.0
            .call("queue_ops.depths", false, || self.1.depths())
            .await
    }
}

#[async_trait]
impl EventPublisher for Faulty<dyn EventPublisher> {
    async fn publish(&self, event: &Event) -> Result<()> {
        self.0
            .call("events.publish", true, || self.1.publish(event))
            .await
    }
}

#[async_trait]
impl Inbox for Faulty<dyn Inbox> {
    // A receive changes the queue (visibility, receive count), so it is a write. Deliveries
    // lost to a fault after the receive stay in flight until the simulated visibility expiry
    // of [`super::truth::TrackedQueue`] hands them out again.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        self.0
            .call("queue.receive", true, || self.1.receive(max, wait))
            .await
    }
    async fn ack(&self, delivery: &Delivery) -> Result<()> {
        self.0
            .call("queue.ack", true, || self.1.ack(delivery))
            .await
    }
    async fn retry_later(&self, delivery: &Delivery, reason: &str, delay: Duration) -> Result<()> {
        self.0
            .call("queue.retry_later", true, || {
                self.1.retry_later(delivery, reason, delay)
            })
            .await
    }
    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()> {
        self.0
            .call("queue.dead_letter", true, || {
                self.1.dead_letter(delivery, reason)
            })
            .await
    }
}
