//! Orders: the status machine, order lines, and the fulfillment math (allocation and refund).

use crate::Missing;
use crate::idempotency::IdempotencyCommit;
use crate::ids::{GiftCardId, OrderId, ProductId, TransactionId, UserId, VariantId};
use crate::labels::{Metadata, OrderLabels};
use crate::ledger::Movement;
pub use crate::status::OrderStatus;
use crate::{Error, Paise, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// At most this many gift cards per order, so fulfillment stays one atomic DynamoDB
/// transaction (under its 100-item limit; see [`MAX_LINES_PER_ORDER`]).
pub const MAX_CARDS_PER_ORDER: u32 = 40;

/// At most this many distinct variants per order. With [`MAX_CARDS_PER_ORDER`] this bounds the
/// fulfillment transaction at 40 cards, 40 allocated codes (when every card is a brand code),
/// 15 stock updates, and the order, wallet, refund record, cart and day's figures: 100 items,
/// DynamoDB's limit exactly. A new item in that transaction means a smaller bound here.
pub const MAX_LINES_PER_ORDER: usize = 15;

/// Where the order's items came from: a checkout of the cart locks and later clears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderSource {
    Items,
    Cart,
}

impl OrderSource {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderSource::Items => "ITEMS",
            OrderSource::Cart => "CART",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ITEMS" => Some(OrderSource::Items),
            "CART" => Some(OrderSource::Cart),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub variant_id: VariantId,
    pub product_id: ProductId,
    pub product_name: String,
    pub variant_name: String,
    pub denomination: i64,
    pub unit_price: Paise,
    /// Cost at order time, for margin analytics; never shown to users.
    pub cost_price: Paise,
    pub requested_quantity: u32,
    pub fulfilled_quantity: u32,
    /// Card validity of the product at order time.
    pub validity_days: u32,
}

impl OrderLine {
    pub fn total_price(&self) -> Paise {
        Paise::new(self.unit_price.get() * i64::from(self.requested_quantity))
    }

    pub fn fulfilled_price(&self) -> Paise {
        Paise::new(self.unit_price.get() * i64::from(self.fulfilled_quantity))
    }

    /// `unit price × unfulfilled units`.
    pub fn refunded_price(&self) -> Paise {
        Paise::new(
            self.unit_price.get() * i64::from(self.requested_quantity - self.fulfilled_quantity),
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FulfillmentDetails {
    pub attempted_at: Option<DateTime<Utc>>,
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub partial_fulfillment: bool,
    pub refund_processed: bool,
    /// Why an order was given up and refunded in full ([`Closing::GiveUp`]); `None` for every
    /// other order.
    pub refund_reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub source: OrderSource,
    pub total_amount: Paise,
    pub paid_amount: Paise,
    pub refund_amount: Paise,
    pub items: Vec<OrderLine>,
    pub fulfillment: FulfillmentDetails,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the event for the current final status was published; `None` means still owed.
    pub notified_at: Option<DateTime<Utc>>,
    /// The client's reference and metadata.
    pub labels: OrderLabels,
    /// The cards this order issued, in issue order; written with its final status, so one
    /// read of the order names every card it will ever have (returned ones included).
    pub gift_card_ids: Vec<GiftCardId>,
}

impl Order {
    /// Whether the order reached its final status and that event is not published yet.
    pub fn owes_event(&self) -> bool {
        self.notified_at.is_none() && self.status.is_final()
    }

    /// Whether a create with these lines (`None`: the cart) and metadata is the request that
    /// placed this order, so a second create with its client reference may answer it. A cart
    /// checkout is matched by its source alone: the cart was emptied by the order.
    pub fn was_placed_by(&self, lines: Option<&[LineRequest]>, metadata: &Metadata) -> bool {
        let same_items = match lines {
            None => self.source == OrderSource::Cart,
            Some(lines) => {
                self.source == OrderSource::Items
                    && self.items.len() == lines.len()
                    && self.items.iter().zip(lines).all(|(placed, asked)| {
                        placed.variant_id == asked.variant_id
                            && placed.requested_quantity == asked.quantity
                    })
            }
        };
        same_items && self.labels.metadata == *metadata
    }

    pub fn item_count(&self) -> u32 {
        self.items.iter().map(|l| l.requested_quantity).sum()
    }

    pub fn fulfilled_value(&self) -> Paise {
        Paise::new(self.items.iter().map(|l| l.fulfilled_price().get()).sum())
    }

    /// The order in status `next`, if the state machine allows the move.
    fn moved_to(&self, next: OrderStatus, now: DateTime<Utc>) -> Option<Order> {
        self.status.can_become(next).then(|| Order {
            status: next,
            updated_at: now,
            ..self.clone()
        })
    }

    /// PENDING → PROCESSING, noting when fulfillment was attempted; `None` for an order in any
    /// other status (a redelivery, or a cancel that won): there is nothing to start.
    pub fn started(&self, now: DateTime<Utc>) -> Option<Order> {
        let mut started = self.moved_to(OrderStatus::Processing, now)?;
        started.fulfillment.attempted_at = Some(now);
        Some(started)
    }

    /// The order closed with everything paid refunded, as `c` asks: the order after, and the
    /// refund. A customer's cancel moves PENDING → CANCELLED; a give-up moves PENDING or
    /// PROCESSING → REFUNDED with its reason. Nothing was issued before either (fulfillment
    /// commits its cards with the final status), so the refund is the whole paid amount.
    /// # Errors
    /// [`Error::NotFound`] when the order is another user's (indistinguishable from a missing
    /// one); for a cancel [`Error::OrderNotCancellable`], for a give-up
    /// [`Error::OrderAlreadyFinal`], when the state machine forbids the move.
    pub fn refunded_in_full(&self, c: &Cancellation) -> Result<(Order, Movement)> {
        if self.id != c.order_id || self.user_id != c.user_id {
            return Err(Error::NotFound(Missing::Order));
        }
        type Refund = fn(TransactionId, UserId, &OrderId, Paise, DateTime<Utc>) -> Movement;
        let (next, refused, reason, refund_of): (_, _, _, Refund) = match &c.closing {
            Closing::Cancel => (
                OrderStatus::Cancelled,
                Error::OrderNotCancellable(self.status),
                None,
                Movement::refund_of_cancelled,
            ),
            Closing::GiveUp { reason } => (
                OrderStatus::Refunded,
                Error::OrderAlreadyFinal(self.status),
                Some(reason.as_str().to_string()),
                Movement::refund_of_given_up,
            ),
        };
        let mut closed = self.moved_to(next, c.now).ok_or(refused)?;
        closed.refund_amount = self.paid_amount;
        closed.fulfillment.refund_processed = true;
        closed.fulfillment.refund_reason = reason;
        closed.notified_at = None;
        let refund = refund_of(
            c.refund_transaction_id.clone(),
            self.user_id.clone(),
            &self.id,
            self.paid_amount,
            c.now,
        );
        Ok((closed, refund))
    }

    /// PROCESSING → the fulfillment's final status, with its quantities, refund and dates
    /// applied, after checking that the fulfillment is consistent with itself and with the
    /// order: quantities within what was requested, cards exactly covering them, status and
    /// refund as the quantities imply. These hold `paidAmount = fulfilled value + refundAmount`.
    /// Both backends commit only what this returns.
    /// # Errors
    /// [`Error::Internal`] for an inconsistent fulfillment (a bug in the caller, refused before
    /// anything moves) or an order that is not PROCESSING.
    pub fn fulfilled_by(&self, f: &Fulfillment) -> Result<Order> {
        let bug = |message: &str| Err(Error::internal(message));
        if f.order_id != self.id || f.user_id != self.user_id {
            return bug("the fulfillment names another order or user");
        }
        if self.status != OrderStatus::Processing {
            return bug("only a PROCESSING order is fulfilled");
        }
        if f.fulfilled_quantities.len() != self.items.len() {
            return bug("the fulfillment has another number of lines than the order");
        }
        let Some(mut done) = self.moved_to(f.status, f.now) else {
            return bug("the order cannot move to the fulfillment's status");
        };
        for (line, &units) in done.items.iter_mut().zip(&f.fulfilled_quantities) {
            if units > line.requested_quantity {
                return bug("a line cannot be fulfilled beyond its requested quantity");
            }
            line.fulfilled_quantity = units;
        }
        done.gift_card_ids = f.cards.iter().map(|card| card.id.clone()).collect();
        if f.status != final_status(&done.items) {
            return bug("the fulfillment status does not match its quantities");
        }
        let owed = refund_amount(&done.items);
        match &f.refund {
            None if owed == Paise::ZERO => {}
            Some(refund)
                if refund.amount == owed
                    && owed > Paise::ZERO
                    && refund.kind == crate::wallet::TransactionType::Refund
                    && refund.user == self.user_id
                    && refund.order.as_ref() == Some(&self.id) => {}
            _ => return bug("the refund does not match the unfulfilled units"),
        }
        let mut cards_per_variant: BTreeMap<&VariantId, u64> = BTreeMap::new();
        for card in &f.cards {
            if card.order_id != self.id || card.user_id != self.user_id {
                return bug("a card belongs to another order or user");
            }
            *cards_per_variant.entry(&card.variant_id).or_default() += 1;
        }
        let units: BTreeMap<&VariantId, u64> = done
            .stock_taken()
            .into_iter()
            .map(|take| (take.variant_id, take.units))
            .collect();
        if cards_per_variant != units {
            return bug("the cards do not match the fulfilled quantities");
        }
        let allocated: std::collections::BTreeSet<&GiftCardId> = f.allocated_codes.iter().collect();
        if allocated.len() != f.allocated_codes.len()
            || !allocated
                .iter()
                .all(|code| f.cards.iter().any(|card| &card.id == *code))
        {
            return bug("each allocated code must be issued as exactly one of the cards");
        }
        if f.clear_cart != (self.source == OrderSource::Cart) {
            return bug("only a cart checkout clears the cart");
        }
        done.refund_amount = owed;
        done.fulfillment.fulfilled_at = Some(f.now);
        done.fulfillment.partial_fulfillment = f.status == OrderStatus::PartiallyFulfilled;
        done.fulfillment.refund_processed = owed > Paise::ZERO;
        done.notified_at = None;
        Ok(done)
    }

    /// The stock the order's fulfilled units take, one entry per variant, in variant order.
    pub fn stock_taken(&self) -> Vec<StockTake<'_>> {
        let mut taken: BTreeMap<&VariantId, StockTake<'_>> = BTreeMap::new();
        for line in self.items.iter().filter(|l| l.fulfilled_quantity > 0) {
            taken
                .entry(&line.variant_id)
                .or_insert(StockTake {
                    variant_id: &line.variant_id,
                    product_id: &line.product_id,
                    units: 0,
                })
                .units += u64::from(line.fulfilled_quantity);
        }
        taken.into_values().collect()
    }
}

/// Units of one variant that a fulfillment takes from its stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StockTake<'a> {
    pub variant_id: &'a VariantId,
    pub product_id: &'a ProductId,
    pub units: u64,
}

/// Checks a new order before money moves: PENDING, unnotified, unfulfilled lines that add up
/// to its total, paid in full by its debit, and a cart version exactly for a cart checkout.
/// # Errors
/// [`Error::Internal`]: anything else is a bug in the caller.
pub fn check_placement(placement: &OrderPlacement) -> Result<()> {
    let bug = |message: &str| Err(Error::internal(message));
    let order = &placement.order;
    if order.status != OrderStatus::Pending || order.notified_at.is_some() {
        return bug("a new order must be PENDING and unnotified");
    }
    if order.items.is_empty() || order.items.iter().any(|l| l.fulfilled_quantity != 0) {
        return bug("a new order needs lines and no fulfilled units");
    }
    let total = order.items.iter().try_fold(Paise::ZERO, |acc, l| {
        l.unit_price
            .checked_mul(i64::from(l.requested_quantity))
            .and_then(|t| acc.checked_add(t))
    });
    if total != Some(order.total_amount)
        || order.paid_amount != order.total_amount
        || order.refund_amount != Paise::ZERO
    {
        return bug("the order amounts do not add up");
    }
    let debit = &placement.debit;
    if debit.kind != crate::wallet::TransactionType::Debit
        || debit.amount != order.total_amount
        || debit.user != order.user_id
        || debit.order.as_ref() != Some(&order.id)
    {
        return bug("the debit does not pay for this order");
    }
    if (order.source == OrderSource::Cart) != placement.cart_version.is_some() {
        return bug("a cart checkout, and only a cart checkout, carries a cart version");
    }
    Ok(())
}

/// A validated request for one order line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRequest {
    pub variant_id: VariantId,
    pub quantity: u32,
}

/// A PENDING order to commit atomically with the wallet debit (and cart lock, and
/// idempotency record); the backend says where its fulfillment message is ([`Outbox`]).
#[derive(Clone, Debug)]
pub struct OrderPlacement {
    pub order: Order,
    /// The payment, from [`Movement::payment`].
    pub debit: Movement,
    /// For a cart checkout: the cart version that was priced; the lock fails if it moved.
    pub cart_version: Option<u64>,
    pub idempotency: Option<IdempotencyCommit>,
}

/// Where an order's fulfillment message is once its placement committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbox {
    /// Committed with the order, in the same atomic step (a transactional outbox): the
    /// backend delivers it, and a crash after the commit cannot strand the order.
    Committed,
    /// Not sent: the caller sends it now. Should that send fail, the reconciler re-enqueues
    /// PENDING orders older than its threshold.
    Unsent,
}

/// How many units of each line fulfillment can issue, given current stock: each line gets
/// `min(requested, stock left)`, in line order (lines of the same variant share its stock).
pub fn allocate(lines: &[OrderLine], stock_of: impl Fn(&VariantId) -> i64) -> Vec<u32> {
    let mut remaining: std::collections::HashMap<&VariantId, i64> =
        std::collections::HashMap::new();
    lines
        .iter()
        .map(|line| {
            let left = remaining
                .entry(&line.variant_id)
                .or_insert_with(|| stock_of(&line.variant_id).max(0));
            let take = i64::from(line.requested_quantity).min(*left);
            *left -= take;
            take as u32
        })
        .collect()
}

/// The final status for a set of fulfilled quantities.
pub fn final_status(lines: &[OrderLine]) -> OrderStatus {
    let requested: u32 = lines.iter().map(|l| l.requested_quantity).sum();
    let fulfilled: u32 = lines.iter().map(|l| l.fulfilled_quantity).sum();
    match fulfilled {
        0 => OrderStatus::Refunded,
        f if f == requested => OrderStatus::Fulfilled,
        _ => OrderStatus::PartiallyFulfilled,
    }
}

/// The refund owed for fulfilled quantities: Σ unit price × unfulfilled units.
pub fn refund_amount(lines: &[OrderLine]) -> Paise {
    Paise::new(lines.iter().map(|l| l.refunded_price().get()).sum())
}

/// Validates the raw lines of an order request: non-empty, no duplicate variants, and at most
/// [`MAX_CARDS_PER_ORDER`] cards in all. Per-variant bounds are checked against the catalogue.
pub fn check_order_lines(lines: &[LineRequest]) -> Result<()> {
    if lines.is_empty() {
        return Err(Error::validation("items", "must contain at least one item"));
    }
    if lines.len() > MAX_LINES_PER_ORDER {
        return Err(Error::validation(
            "items",
            format!("at most {MAX_LINES_PER_ORDER} different variants per order"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for line in lines {
        if !seen.insert(&line.variant_id) {
            return Err(Error::validation(
                "items",
                format!("variant {} appears more than once", line.variant_id),
            ));
        }
        if line.quantity == 0 {
            return Err(Error::validation("quantity", "must be at least 1"));
        }
    }
    let cards: u64 = lines.iter().map(|l| u64::from(l.quantity)).sum();
    if cards > u64::from(MAX_CARDS_PER_ORDER) {
        return Err(Error::validation(
            "items",
            format!("at most {MAX_CARDS_PER_ORDER} gift cards per order"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(variant: &VariantId, requested: u32, price: i64) -> OrderLine {
        OrderLine {
            variant_id: variant.clone(),
            product_id: ProductId::generate(),
            product_name: "Zomato".into(),
            variant_name: "Zomato 250".into(),
            denomination: 250,
            unit_price: Paise::new(price),
            cost_price: Paise::new(price - 1000),
            requested_quantity: requested,
            fulfilled_quantity: 0,
            validity_days: 365,
        }
    }

    #[test]
    fn the_state_machine_only_moves_forward() {
        use OrderStatus::*;
        assert!(Pending.can_become(Processing));
        assert!(Pending.can_become(Cancelled));
        assert!(Pending.can_become(Refunded));
        assert!(Processing.can_become(Fulfilled));
        assert!(Processing.can_become(PartiallyFulfilled));
        assert!(Processing.can_become(Refunded));
        assert!(!Processing.can_become(Cancelled));
        assert!(!Processing.can_become(Pending));
        for last in [Fulfilled, PartiallyFulfilled, Refunded, Cancelled] {
            assert!(last.is_final());
            for next in OrderStatus::ALL {
                assert!(!last.can_become(next), "{last} → {next}");
            }
        }
        assert!(!Pending.is_final() && !Processing.is_final());
        assert_eq!(
            OrderStatus::sources_of(Processing).collect::<Vec<_>>(),
            vec![Pending]
        );
        assert_eq!(
            OrderStatus::sources_of(Refunded).collect::<Vec<_>>(),
            vec![Pending, Processing]
        );
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn allocation_gives_each_line_what_stock_allows_in_order() {
        let a = VariantId::generate();
        let b = VariantId::generate();
        let lines = vec![line(&a, 4, 23_750), line(&b, 2, 47_500)];
        let stock = |v: &VariantId| if *v == a { 3 } else { 0 };
        assert_eq!(allocate(&lines, stock), vec![3, 0]);
        assert_eq!(allocate(&lines, |_| 100), vec![4, 2]);
        assert_eq!(allocate(&lines, |_| -5), vec![0, 0]);
    }

    #[test]
    fn partial_fulfillment_refunds_exactly_the_unfulfilled_units() {
        let a = VariantId::generate();
        let b = VariantId::generate();
        let mut lines = vec![line(&a, 4, 23_750), line(&b, 2, 47_500)];
        lines[0].fulfilled_quantity = 3;
        lines[1].fulfilled_quantity = 0;
        assert_eq!(refund_amount(&lines), Paise::new(23_750 + 2 * 47_500));
        assert_eq!(final_status(&lines), OrderStatus::PartiallyFulfilled);
        assert_eq!(lines[0].fulfilled_price(), Paise::new(71_250));
        assert_eq!(lines[0].refunded_price(), Paise::new(23_750));
        // paid = fulfilled value + refund
        let paid: i64 = lines.iter().map(|l| l.total_price().get()).sum();
        let fulfilled: i64 = lines.iter().map(|l| l.fulfilled_price().get()).sum();
        assert_eq!(paid, fulfilled + refund_amount(&lines).get());

        lines[0].fulfilled_quantity = 0;
        assert_eq!(final_status(&lines), OrderStatus::Refunded);
        assert_eq!(refund_amount(&lines), Paise::new(4 * 23_750 + 2 * 47_500));
        lines[0].fulfilled_quantity = 4;
        lines[1].fulfilled_quantity = 2;
        assert_eq!(final_status(&lines), OrderStatus::Fulfilled);
        assert_eq!(refund_amount(&lines), Paise::ZERO);
    }

    #[test]
    fn order_lines_are_checked_for_emptiness_duplicates_and_the_card_limit() {
        let a = VariantId::generate();
        let b = VariantId::generate();
        let req = |v: &VariantId, q| LineRequest {
            variant_id: v.clone(),
            quantity: q,
        };
        assert!(check_order_lines(&[]).is_err());
        assert!(check_order_lines(&[req(&a, 1), req(&a, 2)]).is_err());
        assert!(check_order_lines(&[req(&a, 0)]).is_err());
        assert!(check_order_lines(&[req(&a, 30), req(&b, 11)]).is_err());
        assert!(check_order_lines(&[req(&a, 30), req(&b, 10)]).is_ok());
        let many: Vec<_> = (0..16).map(|_| req(&VariantId::generate(), 1)).collect();
        assert!(check_order_lines(&many).is_err());
        assert!(check_order_lines(&many[..15]).is_ok());
    }
}

/// A refund credited to the wallet in the fulfillment or cancel step.
/// Everything the fulfillment of one order writes, as one atomic step.
#[derive(Clone, Debug)]
pub struct Fulfillment {
    pub order_id: OrderId,
    pub user_id: UserId,
    /// FULFILLED, PARTIALLY_FULFILLED or REFUNDED.
    pub status: OrderStatus,
    /// Fulfilled quantity of each order line, in line order.
    pub fulfilled_quantities: Vec<u32>,
    pub cards: Vec<crate::vault::GiftCard>,
    /// The inventory codes the cards of INVENTORY lines are issued from: each card whose id is
    /// here is that code, which moves from available to allocated in the same step.
    pub allocated_codes: Vec<GiftCardId>,
    /// The refund of the unfulfilled units, from [`Movement::refund_of_unfulfilled`].
    pub refund: Option<Movement>,
    /// Clear and unlock the user's cart (a cart checkout).
    pub clear_cart: bool,
    pub now: DateTime<Utc>,
}

impl Fulfillment {
    /// Where the cards of `variant` in this fulfillment came from: brand codes when they are
    /// allocated codes, else minted. The stock is taken on the condition that the variant
    /// still has that source.
    pub fn source_of(&self, variant: &crate::ids::VariantId) -> crate::codes::FulfillmentSource {
        let from_codes = self
            .cards
            .iter()
            .any(|c| c.variant_id == *variant && self.allocated_codes.contains(&c.id));
        if from_codes {
            crate::codes::FulfillmentSource::Inventory
        } else {
            crate::codes::FulfillmentSource::Generated
        }
    }
}

/// An order closed before anything was issued, with its full refund: a user's cancel of a
/// PENDING order, or an order given up.
#[derive(Clone, Debug)]
pub struct Cancellation {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub closing: Closing,
    pub refund_transaction_id: TransactionId,
    pub idempotency: Option<IdempotencyCommit>,
    pub now: DateTime<Utc>,
}

/// Who closes an order with a full refund, and so which status it ends in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Closing {
    /// The customer's cancel: PENDING → CANCELLED.
    Cancel,
    /// Given up by an operator or by the reconciler: PENDING or PROCESSING → REFUNDED.
    GiveUp { reason: RefundReason },
}

/// Why an order was given up: shown to its owner and sent in its `order.refunded` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundReason(String);

impl RefundReason {
    /// Longest reason kept.
    pub const MAX_CHARS: usize = 500;

    /// The reconciler's reason for an order not final `deadline` after it was placed.
    pub fn stuck(deadline: chrono::Duration) -> Self {
        RefundReason(format!(
            "not fulfilled within {} seconds of being placed; refunded automatically",
            deadline.num_seconds()
        ))
    }

    /// An operator's reason, as they gave it.
    /// # Errors
    /// [`Error::Validation`] for a blank reason or one longer than [`Self::MAX_CHARS`].
    pub fn given(reason: &str) -> Result<Self> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > Self::MAX_CHARS {
            return Err(Error::validation(
                "reason",
                format!("reason must be 1 to {} characters", Self::MAX_CHARS),
            ));
        }
        Ok(RefundReason(reason.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The queue message that asks for an order's fulfillment. The message group is the user,
/// the deduplication id the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderMessage {
    pub order_id: OrderId,
    pub user_id: UserId,
}

/// A message that exhausted its receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: DeadLetterBody,
    pub receive_count: u32,
    pub last_error: Option<String>,
    pub dead_at: Option<DateTime<Utc>>,
}

/// What a dead letter carries. A poison message need not be an order message at all (a
/// producer's bug, a hand-sent test message), and one of those must not blind the operator to
/// the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeadLetterBody {
    Order(OrderMessage),
    /// Not an order message: only its size is shown (it may hold anything).
    Unreadable {
        bytes: usize,
    },
}

impl DeadLetterBody {
    /// Reads a body as sent; anything but an order message is [`DeadLetterBody::Unreadable`].
    pub fn parse(raw: &str) -> Self {
        serde_json::from_str(raw).map_or(
            DeadLetterBody::Unreadable { bytes: raw.len() },
            DeadLetterBody::Order,
        )
    }
}

impl DeadLetter {
    /// The order message, when the body is one.
    pub fn order(&self) -> Option<&OrderMessage> {
        match &self.body {
            DeadLetterBody::Order(message) => Some(message),
            DeadLetterBody::Unreadable { .. } => None,
        }
    }
}

/// Which dead letter an operator command means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LetterPick {
    /// The oldest one.
    Oldest,
    /// The oldest one carrying this order's message.
    Order(OrderId),
    /// The one with this message id.
    Message(String),
}

impl LetterPick {
    pub fn picks(&self, letter: &DeadLetter) -> bool {
        match self {
            LetterPick::Oldest => true,
            LetterPick::Order(order) => letter.order().is_some_and(|m| &m.order_id == order),
            LetterPick::Message(id) => &letter.message_id == id,
        }
    }
}

/// How many messages wait, are being handled, and are dead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepths {
    pub ready: u64,
    pub in_flight: u64,
    pub dead: u64,
    /// When the oldest message still queued (ready or in flight) was sent; `None` for an empty
    /// queue, or where the backend does not tell (SQS: CloudWatch's
    /// `ApproximateAgeOfOldestMessage` does).
    pub oldest_sent_at: Option<DateTime<Utc>>,
}
