//! Daily figures: what each write adds to the finance figures of its day, decided here and
//! committed by the backend in the same atomic write that changes the money, the order or the
//! card it counts. Analytics over any range then reads one small record per recorded day (per
//! shard) up to the range's end — what is owed at a day's end is every change before it —
//! instead of the orders, ledger and cards it summarises: on DynamoDB a report never scans a
//! table, and its cost grows with the shop's age in days, not with its orders.
//!
//! A day is a UTC calendar day. A write's figures are a [`Tally`]: the day, a shard, and the
//! counters it moves. Both backends store the same counters under the same names
//! ([`DayFigures::counters`], [`DayFigures::from_counters`]), so neither has a figure of its own
//! to drift.
//!
//! On DynamoDB many writes a second would otherwise all update the one item of the day, and
//! transactions that touch one item conflict: the figures of a day are spread over
//! [`SHARDS`] items, chosen by the account the write belongs to, and a report adds them up.

use crate::card_life::CardReturn;
use crate::ids::{ProductId, UserId};
use crate::ledger::Movement;
use crate::order::{Fulfillment, Order, OrderSource, OrderStatus};
use crate::wallet::TransactionType;
use crate::{Error, Paise, Result};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use std::collections::BTreeMap;

/// Items a day's figures are spread over on DynamoDB (SQLite has one writer and uses one).
pub const SHARDS: u8 = 16;

/// Longest range a report covers, in days.
pub const MAX_REPORT_DAYS: i64 = 366;

macro_rules! counters {
    ($($(#[$doc:meta])* $field:ident => $name:literal,)*) => {
        /// The figures of one day (or of a range, once added up). Amounts are paise; a count
        /// moved by a write that could not happen twice. `*_change` counters are signed.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct DayFigures {
            $($(#[$doc])* pub $field: i64,)*
            /// Units and revenue of each product's fulfilled cards.
            pub products: BTreeMap<ProductId, ProductDay>,
        }

        impl DayFigures {
            fn named(&self) -> Vec<(&'static str, i64)> {
                vec![$(($name, self.$field)),*]
            }

            fn slot(&mut self, name: &str) -> Option<&mut i64> {
                match name {
                    $($name => Some(&mut self.$field),)*
                    _ => None,
                }
            }
        }
    };
}

counters! {
    /// Orders placed (paid for).
    orders_placed => "ordersPlaced",
    /// Gross merchandise value: Σ paid for the orders placed.
    gmv => "gmv",
    /// Orders that reached each final status that day.
    orders_fulfilled => "ordersFulfilled",
    orders_partially_fulfilled => "ordersPartiallyFulfilled",
    orders_refunded => "ordersRefunded",
    orders_cancelled => "ordersCancelled",
    /// Σ price of the cards issued.
    revenue => "revenue",
    /// Σ cost price of the cards issued.
    cost => "cost",
    /// Units asked for and issued by the orders that went through fulfillment.
    requested_units => "requestedUnits",
    fulfilled_units => "fulfilledUnits",
    /// Σ money refunded to wallets: unfulfilled units, cancels, give-ups and returned cards.
    refunds => "refunds",
    /// Top-ups and their amount.
    top_ups => "topUps",
    top_up_amount => "topUpAmount",
    /// Σ admin balance corrections (signed).
    adjustments => "adjustments",
    /// Σ face value of Giftify cards redeemed into wallets.
    redeemed => "redeemed",
    /// Change of Σ wallet balances (signed).
    balances_change => "balancesChange",
    /// Change of Σ face value of ACTIVE Giftify cards (signed).
    giftify_cards_change => "giftifyCardsChange",
    /// Top-ups and orders refused for the wallet: insufficient balance, or over its cap.
    wallet_refusals => "walletRefusals",
    /// Accounts active that day (an authenticated request), each counted once a day.
    active_users => "activeUsers",
    /// Accounts whose first activity of the calendar month was that day.
    monthly_active_users => "monthlyActiveUsers",
    /// Carts that went from empty to holding an item, and orders placed from a cart.
    carts_started => "cartsStarted",
    carts_checked_out => "cartsCheckedOut",
    /// Orders fulfilled, by how long they took from being placed to their final status: the
    /// count of each bucket of [`LATENCY_BUCKETS_MS`] (up to its bound, above the previous
    /// one), the last one above every bound; and the sum of those times.
    create_to_final_le_50ms => "createToFinalLe50ms",
    create_to_final_le_100ms => "createToFinalLe100ms",
    create_to_final_le_250ms => "createToFinalLe250ms",
    create_to_final_le_500ms => "createToFinalLe500ms",
    create_to_final_le_1s => "createToFinalLe1s",
    create_to_final_le_2500ms => "createToFinalLe2500ms",
    create_to_final_le_5s => "createToFinalLe5s",
    create_to_final_le_10s => "createToFinalLe10s",
    create_to_final_le_30s => "createToFinalLe30s",
    create_to_final_le_60s => "createToFinalLe60s",
    create_to_final_le_300s => "createToFinalLe300s",
    create_to_final_over_300s => "createToFinalOver300s",
    create_to_final_ms_sum => "createToFinalMsSum",
}

/// Upper bounds of the create → final latency buckets, in milliseconds.
pub const LATENCY_BUCKETS_MS: [i64; 11] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000,
];

/// A product's fulfilled cards in a day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProductDay {
    pub units: i64,
    pub revenue: i64,
}

const PRODUCT_UNITS: &str = "productUnits:";
const PRODUCT_REVENUE: &str = "productRevenue:";

impl DayFigures {
    /// The counters a write moves, by their stored names: zeros left out.
    pub fn counters(&self) -> Vec<(String, i64)> {
        let mut counters: Vec<(String, i64)> = self
            .named()
            .into_iter()
            .filter(|(_, value)| *value != 0)
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        for (product, day) in &self.products {
            if day.units != 0 {
                counters.push((format!("{PRODUCT_UNITS}{product}"), day.units));
            }
            if day.revenue != 0 {
                counters.push((format!("{PRODUCT_REVENUE}{product}"), day.revenue));
            }
        }
        counters
    }

    /// Figures from stored counters. A name this version does not know (written by a newer
    /// one) is left out, so a rollback still reads what it knows.
    /// # Errors
    /// [`Error::Internal`] for a product counter whose id does not parse, or a sum that
    /// overflows.
    pub fn from_counters<'a>(counters: impl IntoIterator<Item = (&'a str, i64)>) -> Result<Self> {
        let mut figures = DayFigures::default();
        for (name, value) in counters {
            if let Some(product) = name.strip_prefix(PRODUCT_UNITS) {
                let day = figures
                    .products
                    .entry(ProductId::parse(product)?)
                    .or_default();
                day.units = add(day.units, value)?;
            } else if let Some(product) = name.strip_prefix(PRODUCT_REVENUE) {
                let day = figures
                    .products
                    .entry(ProductId::parse(product)?)
                    .or_default();
                day.revenue = add(day.revenue, value)?;
            } else if let Some(slot) = figures.slot(name) {
                *slot = add(*slot, value)?;
            }
        }
        Ok(figures)
    }

    /// Adds `other` into these figures.
    /// # Errors
    /// [`Error::Internal`] when a counter overflows.
    pub fn add(&mut self, other: &DayFigures) -> Result<()> {
        for (name, value) in other.named() {
            if let Some(slot) = self.slot(name) {
                *slot = add(*slot, value)?;
            }
        }
        for (product, day) in &other.products {
            let mine = self.products.entry(product.clone()).or_default();
            mine.units = add(mine.units, day.units)?;
            mine.revenue = add(mine.revenue, day.revenue)?;
        }
        Ok(())
    }

    /// Moves no counter (checked without building the stored names: every commit asks).
    pub fn is_empty(&self) -> bool {
        self.named().iter().all(|(_, value)| *value == 0)
            && self
                .products
                .values()
                .all(|p| p.units == 0 && p.revenue == 0)
    }

    /// Change of what Giftify owes its users: balances and ACTIVE Giftify cards.
    pub fn liability_change(&self) -> i64 {
        self.balances_change
            .saturating_add(self.giftify_cards_change)
    }

    /// Orders that reached `status` (a final one); 0 for any other.
    pub fn reached(&self, status: OrderStatus) -> i64 {
        match status {
            OrderStatus::Fulfilled => self.orders_fulfilled,
            OrderStatus::PartiallyFulfilled => self.orders_partially_fulfilled,
            OrderStatus::Refunded => self.orders_refunded,
            OrderStatus::Cancelled => self.orders_cancelled,
            OrderStatus::Pending | OrderStatus::Processing => 0,
        }
    }

    /// The count of each create → final latency bucket of [`LATENCY_BUCKETS_MS`], then of
    /// the times above every bound (not cumulative).
    pub fn latency_counts(&self) -> [i64; 12] {
        [
            self.create_to_final_le_50ms,
            self.create_to_final_le_100ms,
            self.create_to_final_le_250ms,
            self.create_to_final_le_500ms,
            self.create_to_final_le_1s,
            self.create_to_final_le_2500ms,
            self.create_to_final_le_5s,
            self.create_to_final_le_10s,
            self.create_to_final_le_30s,
            self.create_to_final_le_60s,
            self.create_to_final_le_300s,
            self.create_to_final_over_300s,
        ]
    }

    /// Counts one order that took `ms` from being placed to its final status.
    fn observe_latency(&mut self, ms: i64) {
        let ms = ms.max(0);
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        let slot = match bucket {
            0 => &mut self.create_to_final_le_50ms,
            1 => &mut self.create_to_final_le_100ms,
            2 => &mut self.create_to_final_le_250ms,
            3 => &mut self.create_to_final_le_500ms,
            4 => &mut self.create_to_final_le_1s,
            5 => &mut self.create_to_final_le_2500ms,
            6 => &mut self.create_to_final_le_5s,
            7 => &mut self.create_to_final_le_10s,
            8 => &mut self.create_to_final_le_30s,
            9 => &mut self.create_to_final_le_60s,
            10 => &mut self.create_to_final_le_300s,
            _ => &mut self.create_to_final_over_300s,
        };
        *slot += 1;
        self.create_to_final_ms_sum = self.create_to_final_ms_sum.saturating_add(ms);
    }

    fn reached_mut(&mut self, status: OrderStatus) -> Option<&mut i64> {
        match status {
            OrderStatus::Fulfilled => Some(&mut self.orders_fulfilled),
            OrderStatus::PartiallyFulfilled => Some(&mut self.orders_partially_fulfilled),
            OrderStatus::Refunded => Some(&mut self.orders_refunded),
            OrderStatus::Cancelled => Some(&mut self.orders_cancelled),
            OrderStatus::Pending | OrderStatus::Processing => None,
        }
    }
}

fn add(a: i64, b: i64) -> Result<i64> {
    a.checked_add(b)
        .ok_or_else(|| Error::internal("a daily figure overflows"))
}

/// What one write adds to the figures of its day, on the shard of the account it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    pub day: NaiveDate,
    pub shard: u8,
    pub figures: DayFigures,
}

/// The shard of an account's figures: a stable hash (FNV-1a) of its id, so it never moves.
pub fn shard_of(user: &UserId) -> u8 {
    let hash = user
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    u8::try_from(hash % u64::from(SHARDS)).unwrap_or(0)
}

impl Tally {
    fn new(user: &UserId, at: DateTime<Utc>) -> Self {
        Tally {
            day: at.date_naive(),
            shard: shard_of(user),
            figures: DayFigures::default(),
        }
    }

    /// Adds another tally of the same day and shard into this one (a DynamoDB transaction may
    /// write an item once).
    pub fn merge(&mut self, other: &Tally) -> Result<()> {
        if (self.day, self.shard) != (other.day, other.shard) {
            return Err(Error::internal(
                "tallies of different days or shards merged",
            ));
        }
        self.figures.add(&other.figures)
    }

    /// A wallet movement from `before` to `after`: every balance change counts here, whatever
    /// else its write counts.
    pub fn of_movement(m: &Movement, before: Paise, after: Paise) -> Self {
        let mut tally = Tally::new(&m.user, m.at);
        let f = &mut tally.figures;
        f.balances_change = after.get() - before.get();
        match m.kind {
            TransactionType::Credit => {
                f.top_ups = 1;
                f.top_up_amount = m.amount.get();
            }
            TransactionType::Debit => {}
            TransactionType::Refund => f.refunds = m.amount.get(),
            TransactionType::Redeem => {
                f.redeemed = m.amount.get();
                // The card's face value leaves the cards the moment it enters the wallet.
                f.giftify_cards_change = -m.amount.get();
            }
            TransactionType::Adjustment => f.adjustments = m.amount.get(),
        }
        tally
    }

    /// An order placed: its payment is the movement's; this counts the order.
    pub fn of_placement(order: &Order) -> Self {
        let mut tally = Tally::new(&order.user_id, order.created_at);
        let f = &mut tally.figures;
        f.orders_placed = 1;
        f.gmv = order.paid_amount.get();
        if order.source == OrderSource::Cart {
            f.carts_checked_out = 1;
        }
        tally
    }

    /// An order fulfilled (`done` is [`Order::fulfilled_by`] of `f`): its final status, the
    /// cards issued, their revenue and cost, and the Giftify cards it adds to what is owed.
    /// The refund of unfulfilled units is its movement's.
    pub fn of_fulfillment(done: &Order, f: &Fulfillment) -> Self {
        let mut tally = Tally::new(&done.user_id, f.now);
        let figures = &mut tally.figures;
        if let Some(reached) = figures.reached_mut(done.status) {
            *reached = 1;
        }
        figures.observe_latency((f.now - done.created_at).num_milliseconds());
        for line in &done.items {
            let revenue = line.fulfilled_price().get();
            let units = i64::from(line.fulfilled_quantity);
            figures.requested_units += i64::from(line.requested_quantity);
            figures.fulfilled_units += units;
            figures.revenue += revenue;
            figures.cost += line.cost_price.get() * units;
            if units > 0 {
                let product = figures.products.entry(line.product_id.clone()).or_default();
                product.units += units;
                product.revenue += revenue;
            }
        }
        figures.giftify_cards_change = f
            .cards
            .iter()
            // A card not issued from a brand code is one Giftify minted: its own, redeemable.
            .filter(|card| !f.allocated_codes.contains(&card.id))
            .map(|card| card.face_value().map_or(0, Paise::get))
            .sum();
        tally
    }

    /// An order closed with a full refund (a cancel or a give-up): its final status. The
    /// refund is its movement's.
    pub fn of_full_refund(closed: &Order) -> Self {
        let mut tally = Tally::new(&closed.user_id, closed.updated_at);
        if let Some(reached) = tally.figures.reached_mut(closed.status) {
            *reached = 1;
        }
        tally
    }

    /// A card returned: a Giftify card (one without a brand code to put back) leaves what is
    /// owed at its face value. The refund is its movement's.
    pub fn of_return(r: &CardReturn) -> Self {
        let mut tally = Tally::new(&r.card.user_id, r.now);
        if r.code.is_none() {
            tally.figures.giftify_cards_change = -r.card.face_value().map_or(0, Paise::get);
        }
        tally
    }

    /// Cards expired on `day`, by their owner; `faces` are the face values (paise) of the
    /// Giftify cards among them, which leave what is owed.
    pub fn of_expiry(owner: &UserId, day: NaiveDate, faces: Paise) -> Self {
        let mut tally = Tally {
            day,
            shard: shard_of(owner),
            figures: DayFigures::default(),
        };
        tally.figures.giftify_cards_change = -faces.get();
        tally
    }

    /// A top-up or an order the wallet refused.
    pub fn of_wallet_refusal(user: &UserId, at: DateTime<Utc>) -> Self {
        let mut tally = Tally::new(user, at);
        tally.figures.wallet_refusals = 1;
        tally
    }

    /// A cart's first item.
    pub fn of_cart_start(user: &UserId, at: DateTime<Utc>) -> Self {
        let mut tally = Tally::new(user, at);
        tally.figures.carts_started = 1;
        tally
    }

    /// An edit of a cart from `before` lines to `after`: a cart starts when it goes from
    /// empty to holding an item; no other edit counts.
    pub fn of_cart_edit(
        user: &UserId,
        before: usize,
        after: usize,
        at: DateTime<Utc>,
    ) -> Option<Self> {
        (before == 0 && after > 0).then(|| Tally::of_cart_start(user, at))
    }
}

/// An account's first activity of a day, to be recorded once: on the condition that the
/// account's last active day is still `previous`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    pub user: UserId,
    pub previous: Option<NaiveDate>,
    pub tally: Tally,
}

impl Activity {
    /// `None` when the account was already active `at`'s day.
    pub fn of(user: &UserId, previous: Option<NaiveDate>, at: DateTime<Utc>) -> Option<Self> {
        let today = at.date_naive();
        if previous.is_some_and(|day| day >= today) {
            return None;
        }
        let mut tally = Tally::new(user, at);
        tally.figures.active_users = 1;
        let same_month =
            previous.is_some_and(|day| (day.year(), day.month()) == (today.year(), today.month()));
        if !same_month {
            tally.figures.monthly_active_users = 1;
        }
        Some(Activity {
            user: user.clone(),
            previous,
            tally,
        })
    }

    pub fn day(&self) -> NaiveDate {
        self.tally.day
    }
}

/// Orders not final yet, counted now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOrders {
    pub pending: u64,
    pub processing: u64,
}

/// One day of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportDay {
    pub day: NaiveDate,
    pub figures: DayFigures,
    /// Σ balances + Σ face value of ACTIVE Giftify cards at the end of the day.
    pub liability: Paise,
    pub balances: Paise,
    pub giftify_cards: Paise,
}

/// The finance figures of a range of days, with its daily series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The whole range added up.
    pub totals: DayFigures,
    /// Every day of the range, oldest first.
    pub days: Vec<ReportDay>,
    /// Active accounts in each calendar month the range touches, up to the range's last day.
    pub months: Vec<(NaiveDate, i64)>,
    pub open: OpenOrders,
}

impl Report {
    /// Adds up `recorded` (every recorded day through `to`, any order, shards not yet added)
    /// into the report of `from..=to`. Balances and cards at a day's end are everything
    /// recorded up to it: a shop's history starts at zero.
    /// # Errors
    /// [`Error::Internal`] when a figure overflows.
    pub fn of(
        from: NaiveDate,
        to: NaiveDate,
        recorded: &[(NaiveDate, DayFigures)],
        open: OpenOrders,
    ) -> Result<Self> {
        let mut by_day: BTreeMap<NaiveDate, DayFigures> = BTreeMap::new();
        for (day, figures) in recorded {
            by_day.entry(*day).or_default().add(figures)?;
        }
        let (mut balances, mut cards) = (0_i64, 0_i64);
        for (_, figures) in by_day.range(..from) {
            balances = add(balances, figures.balances_change)?;
            cards = add(cards, figures.giftify_cards_change)?;
        }
        let mut totals = DayFigures::default();
        let mut days = Vec::new();
        let mut day = from;
        while day <= to {
            let figures = by_day.get(&day).cloned().unwrap_or_default();
            balances = add(balances, figures.balances_change)?;
            cards = add(cards, figures.giftify_cards_change)?;
            totals.add(&figures)?;
            days.push(ReportDay {
                day,
                figures,
                liability: Paise::new(add(balances, cards)?),
                balances: Paise::new(balances),
                giftify_cards: Paise::new(cards),
            });
            day = day
                .succ_opt()
                .ok_or_else(|| Error::internal("the calendar ends"))?;
        }
        let mut months: BTreeMap<NaiveDate, i64> = BTreeMap::new();
        let first_month = from.with_day(1).unwrap_or(from);
        for (day, figures) in by_day.range(first_month..) {
            let month = day.with_day(1).unwrap_or(*day);
            let active = months.entry(month).or_default();
            *active = add(*active, figures.monthly_active_users)?;
        }
        Ok(Report {
            from,
            to,
            totals,
            days,
            months: months.into_iter().collect(),
            open,
        })
    }

    /// The first recorded day, for a report of everything.
    pub fn first_day(recorded: &[(NaiveDate, DayFigures)]) -> Option<NaiveDate> {
        recorded.iter().map(|(day, _)| *day).min()
    }

    /// Every status: PENDING and PROCESSING the orders open now, a final status the orders
    /// that reached it in the range.
    pub fn orders_by_status(&self) -> Vec<(OrderStatus, u64)> {
        OrderStatus::ALL
            .into_iter()
            .map(|status| {
                let n = match status {
                    OrderStatus::Pending => self.open.pending,
                    OrderStatus::Processing => self.open.processing,
                    reached => u64::try_from(self.totals.reached(reached)).unwrap_or(0),
                };
                (status, n)
            })
            .collect()
    }

    /// At the end of the range.
    pub fn closing(&self) -> Option<&ReportDay> {
        self.days.last()
    }

    /// Successful wallet payments and top-ups over all attempts; `None` without attempts.
    pub fn wallet_success_rate(&self) -> Option<f64> {
        let t = &self.totals;
        let succeeded = t.top_ups + t.orders_placed;
        let attempts = succeeded + t.wallet_refusals;
        (attempts > 0).then(|| ratio(succeeded, attempts))
    }

    /// The share of carts started in the range that were not checked out; `None` when none
    /// started. A cart started before the range and checked out in it lowers it (never
    /// below 0).
    pub fn cart_abandonment_rate(&self) -> Option<f64> {
        let t = &self.totals;
        (t.carts_started > 0)
            .then(|| (1.0 - ratio(t.carts_checked_out, t.carts_started)).clamp(0.0, 1.0))
    }

    /// Units issued over units asked for; `None` when nothing went through fulfillment.
    pub fn fulfillment_rate(&self) -> Option<f64> {
        let t = &self.totals;
        (t.requested_units > 0).then(|| ratio(t.fulfilled_units, t.requested_units))
    }

    /// Mean of the daily active accounts over the range's days.
    pub fn average_daily_active_users(&self) -> f64 {
        if self.days.is_empty() {
            return 0.0;
        }
        ratio(self.totals.active_users, self.days.len() as i64)
    }
}

/// A ratio for display: rounded to 4 decimals, since 0.6666666666666666 helps nobody.
#[allow(clippy::cast_precision_loss)]
fn ratio(part: i64, whole: i64) -> f64 {
    ((part as f64 / whole as f64) * 10_000.0).round() / 10_000.0
}

/// Checks a report's range: `from` ≤ `to`, at most [`MAX_REPORT_DAYS`] days.
/// # Errors
/// [`Error::Validation`] otherwise.
pub fn check_range(from: NaiveDate, to: NaiveDate) -> Result<()> {
    if from > to {
        return Err(Error::validation("from", "from must not be after to"));
    }
    if (to - from).num_days() + 1 > MAX_REPORT_DAYS {
        return Err(Error::validation(
            "to",
            format!("a report covers at most {MAX_REPORT_DAYS} days"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    #[test]
    fn counters_round_trip_through_their_stored_names() {
        let mut figures = DayFigures {
            orders_placed: 2,
            gmv: 150_000,
            balances_change: -150_000,
            ..DayFigures::default()
        };
        figures.products.insert(
            ProductId::generate(),
            ProductDay {
                units: 3,
                revenue: 90_000,
            },
        );
        let stored = figures.counters();
        assert!(stored.iter().all(|(_, v)| *v != 0), "{stored:?}");
        let read =
            DayFigures::from_counters(stored.iter().map(|(n, v)| (n.as_str(), *v))).expect("reads");
        assert_eq!(read, figures);
        let newer =
            DayFigures::from_counters([("aCounterFromTheFuture", 7), ("gmv", 5)]).expect("reads");
        assert_eq!(newer.gmv, 5);
    }

    #[test]
    fn latencies_fall_in_the_first_bucket_that_holds_them() {
        let mut figures = DayFigures::default();
        for ms in [0, 50, 51, 999, 1_000, 400_000] {
            figures.observe_latency(ms);
        }
        let counts = figures.latency_counts();
        assert_eq!(counts[0], 2, "up to 50 ms");
        assert_eq!(counts[1], 1, "51 ms");
        assert_eq!(counts[4], 2, "999 ms and 1 s");
        assert_eq!(counts[11], 1, "above 300 s");
        assert_eq!(counts.iter().sum::<i64>(), 6);
        assert_eq!(figures.create_to_final_ms_sum, 402_100);
    }

    #[test]
    fn shards_are_stable_and_spread() {
        let users: Vec<UserId> = (0..400).map(|_| UserId::generate()).collect();
        let shards: std::collections::BTreeSet<u8> = users.iter().map(shard_of).collect();
        assert_eq!(shards.len(), usize::from(SHARDS));
        assert!(
            users
                .iter()
                .all(|u| shard_of(u) == shard_of(u) && shard_of(u) < SHARDS)
        );
    }

    #[test]
    fn a_report_carries_balances_from_before_its_range_and_fills_quiet_days() {
        let recorded = vec![
            (
                day("2026-11-30"),
                DayFigures {
                    balances_change: 100_000,
                    giftify_cards_change: 5_000,
                    ..DayFigures::default()
                },
            ),
            (
                day("2026-12-02"),
                DayFigures {
                    balances_change: -40_000,
                    orders_placed: 1,
                    monthly_active_users: 1,
                    ..DayFigures::default()
                },
            ),
            (
                day("2026-12-02"),
                DayFigures {
                    orders_placed: 2,
                    wallet_refusals: 1,
                    ..DayFigures::default()
                },
            ),
        ];
        let report = Report::of(
            day("2026-12-01"),
            day("2026-12-03"),
            &recorded,
            OpenOrders::default(),
        )
        .expect("a report");
        let liability: Vec<i64> = report.days.iter().map(|d| d.liability.get()).collect();
        assert_eq!(liability, vec![105_000, 65_000, 65_000]);
        assert_eq!(report.totals.orders_placed, 3);
        assert_eq!(report.wallet_success_rate(), Some(0.75));
        assert_eq!(report.months, vec![(day("2026-12-01"), 1)]);
        assert!(check_range(day("2026-12-03"), day("2026-12-01")).is_err());
        assert!(check_range(day("2026-01-01"), day("2027-01-01")).is_ok());
        assert!(check_range(day("2026-01-01"), day("2027-01-02")).is_err());
    }

    #[test]
    fn an_account_counts_once_a_day_and_once_a_month() {
        let user = UserId::generate();
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("a time")
                .with_timezone(&Utc)
        };
        let first = Activity::of(&user, None, at("2026-12-07T10:00:00Z")).expect("counted");
        assert_eq!(
            (
                first.tally.figures.active_users,
                first.tally.figures.monthly_active_users
            ),
            (1, 1)
        );
        assert!(Activity::of(&user, Some(day("2026-12-07")), at("2026-12-07T23:00:00Z")).is_none());
        let next_day = Activity::of(&user, Some(day("2026-12-07")), at("2026-12-08T00:00:01Z"))
            .expect("counted");
        assert_eq!(next_day.tally.figures.monthly_active_users, 0);
        let next_month = Activity::of(&user, Some(day("2026-12-31")), at("2027-01-01T00:00:01Z"))
            .expect("counted");
        assert_eq!(next_month.tally.figures.monthly_active_users, 1);
    }
}
