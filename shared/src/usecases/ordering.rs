//! Placing, viewing and cancelling orders, and revealing their cards.

use super::Giftify;
use crate::Missing;
use crate::error::Refusal;
use crate::events::{Event, Feed, FeedCursor, FeedPage, OrderEvent};
use crate::idempotency::{IdempotencyCommit, IdempotencyScope, IdempotentOutcome};
use crate::ids::{GiftCardId, OrderId, TransactionId, UserId};
use crate::labels::{ClientReference, OrderLabels};
use crate::ledger::Movement;
use crate::order::{
    Cancellation, Closing, FulfillmentDetails, LineRequest, Order, OrderLine, OrderMessage,
    OrderPlacement, OrderSource, OrderStatus, Outbox, check_order_lines,
};
use crate::sandbox::SandboxOutcome;
use crate::user::Role;
use crate::vault::{GiftCard, RevealAudit, RevealedCard};
use crate::wallet::{Page, PageRequest};
use crate::{Error, Paise, Result};

/// What to order: these items, or the cart.
#[derive(Clone, Debug)]
pub enum OrderRequest {
    Items(Vec<LineRequest>),
    Cart,
}

/// What a create came to: a new order, or the order its client reference already names.
#[derive(Clone, Debug)]
pub enum Placed {
    /// Validated, paid and queued now.
    Accepted(Order),
    /// Placed earlier by the same request under the same client reference; nothing moved now.
    Existing(Order),
}

impl Placed {
    pub fn into_order(self) -> Order {
        match self {
            Placed::Accepted(order) | Placed::Existing(order) => order,
        }
    }
}

impl Giftify {
    /// Validates the order, then debits the wallet and stores the PENDING order atomically.
    /// When the backend did not commit the fulfillment message with the order, sends it; a
    /// failed send is logged, not returned: the order is committed and paid, and the
    /// reconciler re-enqueues PENDING orders.
    pub async fn place_order(&self, user: &UserId, request: OrderRequest) -> Result<Order> {
        self.place_order_holding(user, request, OrderLabels::default(), None)
            .await
            .map(Placed::into_order)
    }

    /// [`Giftify::place_order`] with the client's labels, committing the idempotency key the
    /// caller holds, if any. A client reference the user's earlier order holds answers that
    /// order ([`Placed::Existing`]) when it was placed by the same request — checked first, so
    /// a repeat of a cart checkout is answered even though the cart is empty now — and
    /// [`Error::ClientReferenceReused`] when not. Of concurrent creates with one reference the
    /// backend commits one. A loser may be refused for what the winner did before its own
    /// placement even reaches the reference — the cart the winner locked, the balance the
    /// winner spent — so any refusal of a create with a reference looks the reference up
    /// again, and the order found answers instead of the refusal.
    pub async fn place_order_holding(
        &self,
        user: &UserId,
        request: OrderRequest,
        labels: OrderLabels,
        idempotency: Option<(IdempotencyScope, String)>,
    ) -> Result<Placed> {
        if let Some(existing) = self.order_named(user, &request, &labels).await? {
            return self.answer_existing(existing, idempotency).await;
        }
        let placed = self
            .place_new_order(user, request.clone(), labels.clone(), idempotency.clone())
            .await;
        match placed {
            Err(refusal)
                if labels.client_reference.is_some() && Refusal::of(&refusal).is_some() =>
            {
                match self.order_named(user, &request, &labels).await? {
                    Some(existing) => self.answer_existing(existing, idempotency).await,
                    None => Err(refusal),
                }
            }
            other => other.map(Placed::Accepted),
        }
    }

    /// The order the labels' client reference names, when it was placed by this request.
    /// # Errors
    /// [`Error::ClientReferenceReused`] when the reference names an order placed by another
    /// request.
    async fn order_named(
        &self,
        user: &UserId,
        request: &OrderRequest,
        labels: &OrderLabels,
    ) -> Result<Option<Order>> {
        let Some(reference) = &labels.client_reference else {
            return Ok(None);
        };
        let Some(existing) = self
            .ports
            .orders
            .order_by_reference(user, reference)
            .await?
        else {
            return Ok(None);
        };
        let lines = match request {
            OrderRequest::Items(lines) => Some(lines.as_slice()),
            OrderRequest::Cart => None,
        };
        if existing.was_placed_by(lines, &labels.metadata) {
            Ok(Some(existing))
        } else {
            Err(Error::ClientReferenceReused)
        }
    }

    /// Answers an order found by its reference. An idempotency key held for this request
    /// committed nothing, so it is given up: a retry with it finds the order the same way.
    async fn answer_existing(
        &self,
        existing: Order,
        idempotency: Option<(IdempotencyScope, String)>,
    ) -> Result<Placed> {
        if let Some((scope, token)) = idempotency
            && let Err(error) = self.ports.idempotency.release(&scope, &token).await
        {
            tracing::warn!(error = %error, "could not release an idempotency key; it frees itself when its lease ends");
        }
        Ok(Placed::Existing(existing))
    }

    async fn place_new_order(
        &self,
        user: &UserId,
        request: OrderRequest,
        labels: OrderLabels,
        idempotency: Option<(IdempotencyScope, String)>,
    ) -> Result<Order> {
        let (lines, source, cart_version) = match request {
            OrderRequest::Items(lines) => (lines, OrderSource::Items, None),
            OrderRequest::Cart => {
                let cart = self.ports.carts.cart(user).await?;
                if cart.locked_by.is_some() {
                    return Err(Error::CartLocked);
                }
                if cart.lines.is_empty() {
                    return Err(Error::CartEmpty);
                }
                let changed = self.repriced_lines(&cart).await?;
                if !changed.is_empty() {
                    self.ports.carts.reprice(user, &changed, self.now()).await?;
                    return Err(Error::PriceChanged {
                        variant_ids: changed.iter().map(|(v, _)| v.clone()).collect(),
                    });
                }
                (cart.line_requests(), OrderSource::Cart, Some(cart.version))
            }
        };
        check_order_lines(&lines)?;
        SandboxOutcome::requested(
            &labels.metadata,
            self.rules.sandbox,
            lines.iter().map(|l| l.quantity).sum(),
        )?;
        let order_lines = self.price_lines(&lines).await?;
        let total = order_lines
            .iter()
            .try_fold(Paise::ZERO, |acc, line| acc.checked_add(line.total_price()))
            .ok_or_else(|| Error::validation("items", "order total is too large"))?;

        let now = self.now();
        let order = Order {
            id: OrderId::generate(),
            user_id: user.clone(),
            status: OrderStatus::Pending,
            source,
            total_amount: total,
            paid_amount: total,
            refund_amount: Paise::ZERO,
            items: order_lines,
            fulfillment: FulfillmentDetails::default(),
            created_at: now,
            updated_at: now,
            notified_at: None,
            labels,
            gift_card_ids: Vec::new(),
        };
        let idempotency = idempotency.map(|(scope, token)| IdempotencyCommit {
            scope,
            token,
            outcome: IdempotentOutcome::OrderPlaced(order.id.clone()),
        });
        let placed = self
            .ports
            .orders
            .place_order(&OrderPlacement {
                debit: Movement::payment(
                    TransactionId::generate(),
                    user.clone(),
                    &order.id,
                    total,
                    now,
                ),
                order: order.clone(),
                cart_version,
                idempotency,
            })
            .await;
        let outbox = self.counting_wallet_refusal(user, placed).await?;
        if outbox == Outbox::Unsent {
            let message = OrderMessage {
                order_id: order.id.clone(),
                user_id: user.clone(),
            };
            if let Err(error) = self.ports.queue.enqueue(&message).await {
                tracing::warn!(order_id = %order.id, error = %error, "enqueue failed; the reconciler will re-enqueue");
            }
        }
        Ok(order)
    }

    /// Cart lines whose stored price differs from the current selling price, with the new price.
    async fn repriced_lines(
        &self,
        cart: &crate::cart::Cart,
    ) -> Result<Vec<(crate::ids::VariantId, Paise)>> {
        let ids: Vec<_> = cart.lines.iter().map(|l| l.variant_id.clone()).collect();
        let entries = self.ports.catalogue.entries(&ids).await?;
        Ok(cart
            .lines
            .iter()
            .filter_map(|line| {
                let entry = entries.iter().find(|e| e.variant.id == line.variant_id)?;
                (entry.variant.selling_price != line.unit_price)
                    .then(|| (line.variant_id.clone(), entry.variant.selling_price))
            })
            .collect())
    }

    /// Order lines at current prices: every variant must exist, be active, be in stock, and
    /// the quantity must be within its bounds.
    async fn price_lines(&self, lines: &[LineRequest]) -> Result<Vec<OrderLine>> {
        let ids: Vec<_> = lines.iter().map(|l| l.variant_id.clone()).collect();
        let entries = self.ports.catalogue.entries(&ids).await?;
        lines
            .iter()
            .map(|line| {
                let entry = entries
                    .iter()
                    .find(|e| e.variant.id == line.variant_id && e.is_available())
                    .ok_or_else(|| {
                        Error::validation(
                            "variantId",
                            format!("variant {} is not available", line.variant_id),
                        )
                    })?;
                entry.variant.check_quantity(line.quantity)?;
                if entry.variant.stock_quantity <= 0 {
                    return Err(Error::OutOfStock {
                        variant_id: line.variant_id.clone(),
                    });
                }
                Ok(OrderLine {
                    variant_id: line.variant_id.clone(),
                    product_id: entry.product.id.clone(),
                    product_name: entry.product.name.clone(),
                    variant_name: entry.variant.name.clone(),
                    denomination: entry.variant.denomination,
                    unit_price: entry.variant.selling_price,
                    cost_price: entry.variant.cost_price,
                    requested_quantity: line.quantity,
                    fulfilled_quantity: 0,
                    validity_days: entry.product.validity_days,
                })
            })
            .collect()
    }

    /// The user's order; another user's order is `NotFound`, never `Forbidden`.
    pub async fn order_of(&self, user: &UserId, id: &OrderId) -> Result<Order> {
        match self.ports.orders.order(id).await? {
            Some(order) if order.user_id == *user => Ok(order),
            _ => Err(Error::NotFound(Missing::Order)),
        }
    }

    /// The user's order once it is final, waiting up to `wait` (at most the rule's cap) for
    /// that; at the end of the wait, as it is then. A finalisation in this process wakes the
    /// wait at once; one elsewhere is seen at the next recheck. With every place among the
    /// process's waiters taken, or the process stopping, it answers at once.
    pub async fn order_when_final(
        &self,
        user: &UserId,
        id: &OrderId,
        wait: std::time::Duration,
    ) -> Result<Order> {
        let rules = &self.rules.order_wait;
        let Some(_permit) = self.order_watch.permit(rules.max_waiters) else {
            return self.order_of(user, id).await;
        };
        let deadline = tokio::time::Instant::now() + wait.min(rules.max);
        loop {
            let mut watching = self.order_watch.watch(id);
            let order = self.order_of(user, id).await?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if order.status.is_final() || left.is_zero() || self.order_watch.is_closed() {
                return Ok(order);
            }
            watching.wait(left.min(rules.recheck)).await;
        }
    }

    /// The user's orders with this client reference — one or none — as a page of the order
    /// list, in this status if one is given.
    pub async fn orders_by_reference(
        &self,
        user: &UserId,
        reference: &ClientReference,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        let found: Vec<Order> = self
            .ports
            .orders
            .order_by_reference(user, reference)
            .await?
            .into_iter()
            .filter(|order| status.is_none_or(|s| order.status == s))
            .collect();
        Ok(page.slice(found))
    }

    /// The cards of an order as this read of it names them: no second read of the order.
    pub async fn order_cards(&self, order: &Order) -> Result<Vec<GiftCard>> {
        self.ports.gift_cards.cards(&order.gift_card_ids).await
    }

    pub async fn orders_of(
        &self,
        user: &UserId,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        self.ports.orders.orders_of(user, status, page).await
    }

    pub async fn all_orders(
        &self,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        self.ports.orders.all_orders(status, page).await
    }

    /// Cancels a PENDING order with a full refund and publishes `order.cancelled`.
    pub async fn cancel_order(&self, user: &UserId, id: &OrderId) -> Result<Order> {
        self.cancel_order_holding(user, id, None).await
    }

    /// [`Giftify::cancel_order`], committing the idempotency key the caller holds, if any.
    pub async fn cancel_order_holding(
        &self,
        user: &UserId,
        id: &OrderId,
        idempotency: Option<(IdempotencyScope, String)>,
    ) -> Result<Order> {
        let idempotency = idempotency.map(|(scope, token)| IdempotencyCommit {
            scope,
            token,
            outcome: IdempotentOutcome::OrderCancelled(id.clone()),
        });
        let order = self
            .ports
            .orders
            .refund_in_full(&Cancellation {
                order_id: id.clone(),
                user_id: user.clone(),
                closing: Closing::Cancel,
                refund_transaction_id: TransactionId::generate(),
                idempotency,
                now: self.now(),
            })
            .await?;
        // The cancel is committed; a failed publish is finished by the reconciler.
        if let Err(error) = self.notify(&order).await {
            tracing::warn!(order_id = %order.id, error = %error, "cancel event not published yet");
        }
        Ok(order)
    }

    /// Wakes this process's readers waiting on a final order, then publishes its event and
    /// marks it sent.
    pub(crate) async fn notify(&self, order: &Order) -> Result<()> {
        if order.status.is_final() {
            self.order_watch.announce_final(&order.id);
        }
        if order.notified_at.is_some() {
            return Ok(());
        }
        let Some(event) = OrderEvent::for_order(order) else {
            return Ok(());
        };
        self.publish_recorded(event.into()).await?;
        self.ports.orders.mark_notified(&order.id, self.now()).await
    }

    /// Records the event in the feed (which gives it its place among its order's events), then
    /// hands it to subscribers: a subscriber never hears of an event the feed lacks, and a
    /// republish after a crash sends the same recording again.
    pub(crate) async fn publish_recorded(&self, event: Event) -> Result<()> {
        let recorded = self.ports.feed.record_event(&event, self.now()).await?;
        self.ports.events.publish(&recorded).await
    }

    /// Which feed a caller reads: every event for an account whose role is ADMIN now (the
    /// role the account has, as read for this request — a demoted admin's token no longer
    /// reads everyone's), else their own.
    pub fn feed_of(&self, caller: &UserId, role_now: Role) -> Feed {
        if role_now == Role::Admin {
            Feed::All
        } else {
            Feed::OfUser(caller.clone())
        }
    }

    /// A page of `feed` after `after`. A user's own feed leaves out who redeemed their cards:
    /// another user's id is not theirs to read.
    /// # Errors
    /// [`Error::Validation`] for a cursor of another feed or a limit outside 1–100.
    pub async fn event_feed(
        &self,
        feed: &Feed,
        after: Option<&str>,
        limit: u32,
    ) -> Result<FeedPage> {
        if !(1..=100).contains(&limit) {
            return Err(Error::validation("limit", "must be between 1 and 100"));
        }
        let after = match after {
            Some(raw) => FeedCursor::parse(raw, feed)?,
            None => FeedCursor::start(feed),
        };
        let mut page = self.ports.feed.feed(feed, after, limit).await?;
        if let Feed::OfUser(_) = feed {
            for event in &mut page.events {
                if let Event::Card(card) = event {
                    card.redeemed_by = None;
                }
            }
        }
        Ok(page)
    }

    /// The full number and PIN of one of the user's cards; every reveal is audited first.
    pub async fn reveal_card(
        &self,
        user: &UserId,
        order: &OrderId,
        card: &GiftCardId,
    ) -> Result<(GiftCard, RevealedCard)> {
        let card = match self.ports.gift_cards.card(card).await? {
            Some(c) if c.user_id == *user && c.order_id == *order => c,
            _ => return Err(Error::NotFound(Missing::GiftCard)),
        };
        self.ports
            .gift_cards
            .record_reveal(&RevealAudit {
                gift_card_id: card.id.clone(),
                order_id: card.order_id.clone(),
                user_id: user.clone(),
                revealed_at: self.now(),
            })
            .await?;
        let revealed = self.vault.open(&card.id, &card.sealed)?;
        Ok((card, revealed))
    }
}
