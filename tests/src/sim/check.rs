//! The invariants, checked against the backend's own state (read through the ports, with no
//! fault in the way) after every completed action and once more at the end:
//!
//! - the money rule, per wallet: Σ top-ups + Σ face value redeemed into it = its balance +
//!   Σ price of its fulfilled, not returned cards (+ Σ paid of orders still in flight, which
//!   is zero at the end), and every wallet's ledger adds up to its balance;
//! - stock of Giftify's own cards: stock put in + units returned − current stock = cards
//!   issued, per variant; stock of a brand variant = its available codes, and its allocated
//!   codes = its cards not returned;
//! - no negative balance or stock, no gift card issued twice (card id), no code allocated
//!   twice (no two cards hold one number's lookup key);
//! - exactly one DEBIT per order, for what it cost; at most one REFUND of exactly
//!   `unit price × unfulfilled units` per line (the whole payment for a cancel), and one more
//!   per returned card, of its price;
//! - REDEEM credits: a wallet's add up to the face value of the cards redeemed into it, and
//!   only Giftify's own cards are ever redeemed;
//! - statuses only move forward, and a final status never changes;
//! - every event names its order's current (final) status and amounts, or its card's status
//!   and amount;
//! - the clients' knowledge holds: every acknowledged top-up and order exists, and every other
//!   credit or order is explained by a request whose answer the client never got;
//! - the clients' knowledge of cards: every card a client was told it redeemed is REDEEMED
//!   into its wallet, every card it was told it returned is CANCELLED;
//! - at the end: every order is final and notified, with at least one event of its status,
//!   and every redeemed or returned card notified, with its event.

use super::client::Op;
use super::model::{UserModel, World};
use giftify_shared::codes::FulfillmentSource;
use giftify_shared::events::Event;
use giftify_shared::ids::{GiftCardId, OrderId, UserId, VariantId};
use giftify_shared::order::{Order, OrderSource, OrderStatus, final_status, refund_amount};
use giftify_shared::vault::{GiftCard, GiftCardStatus};
use giftify_shared::wallet::{
    Page, PageRequest, TransactionFilter, TransactionType, WalletTransaction,
};
use giftify_shared::{Giftify, Paise, Result};
use std::collections::{BTreeMap, BTreeSet};

/// State carried between checks: what was seen before, to judge what is seen now.
#[derive(Debug, Default)]
pub struct Checker {
    last_status: BTreeMap<OrderId, OrderStatus>,
    pub checks: u64,
}

/// A finding: what broke, in words a reader can act on.
pub type Violations = Vec<String>;

/// Every item of a paged listing.
pub(crate) async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>>>,
{
    let mut items = Vec::new();
    for number in 1.. {
        let got = page(PageRequest {
            page: number,
            limit: PageRequest::MAX_LIMIT,
        })
        .await?;
        let more = got.has_next();
        items.extend(got.items);
        if !more {
            break;
        }
    }
    Ok(items)
}

/// One user's state in the backend.
struct Wallet {
    balance: Paise,
    ledger: Vec<WalletTransaction>,
    orders: Vec<Order>,
    /// The cards of the user's orders, by order.
    cards: BTreeMap<OrderId, Vec<GiftCard>>,
}

impl Wallet {
    /// The cards of `order` that were returned: how many, and what they cost.
    fn returned(&self, order: &OrderId) -> (usize, i64) {
        let returned: Vec<&GiftCard> = self
            .cards
            .get(order)
            .into_iter()
            .flatten()
            .filter(|c| c.status == GiftCardStatus::Cancelled)
            .collect();
        (
            returned.len(),
            returned.iter().map(|c| c.purchase_price.get()).sum(),
        )
    }
}

fn forward(before: OrderStatus, after: OrderStatus) -> bool {
    before == after
        || before.can_become(after)
        // PROCESSING may come and go between two looks.
        || (before == OrderStatus::Pending
            && matches!(
                after,
                OrderStatus::Fulfilled | OrderStatus::PartiallyFulfilled | OrderStatus::Refunded
            ))
}

impl Checker {
    /// Checks everything; `end` adds the checks that only hold once the run is quiet.
    pub async fn check(
        &mut self,
        giftify: &Giftify,
        world: &World,
        end: bool,
    ) -> Result<Violations> {
        self.checks += 1;
        let ports = &giftify.ports;
        let mut found = Violations::new();
        let user_ids: Vec<_> = world.model().users.iter().map(|u| u.id.clone()).collect();
        let mut wallets = Vec::new();
        let mut cards: BTreeMap<GiftCardId, GiftCard> = BTreeMap::new();
        for user in &user_ids {
            let mut by_order: BTreeMap<OrderId, Vec<GiftCard>> = BTreeMap::new();
            for card in all_pages(|p| ports.gift_cards.cards_of_user(user, None, p)).await? {
                if cards.insert(card.id.clone(), card.clone()).is_some() {
                    found.push(format!("card id {} issued twice", card.id));
                }
                by_order
                    .entry(card.order_id.clone())
                    .or_default()
                    .push(card);
            }
            wallets.push(Wallet {
                balance: ports.wallets.balance(user).await?,
                ledger: all_pages(|p| ports.wallets.transactions(user, &TransactionFilter::ALL, p))
                    .await?,
                orders: all_pages(|p| ports.orders.orders_of(user, None, p)).await?,
                cards: by_order,
            });
        }
        let inventory = ports.catalogue.inventory().await?;

        let mut issued: BTreeMap<VariantId, i64> = BTreeMap::new();
        let mut orders: BTreeMap<OrderId, Order> = BTreeMap::new();
        {
            let model = world.model();
            for (index, (user, wallet)) in model.users.iter().zip(&wallets).enumerate() {
                let who = format!("user{index} ({})", user.id);
                self.check_wallet(&who, user, wallet, &mut found);
                for order in &wallet.orders {
                    for line in &order.items {
                        *issued.entry(line.variant_id.clone()).or_default() +=
                            i64::from(line.fulfilled_quantity);
                    }
                    orders.insert(order.id.clone(), order.clone());
                }
            }
        }

        // Stock of Giftify's own cards: what admins put in and owners returned, less what is
        // left, is what was issued. A brand variant's is its pool of available codes.
        let added = world.audit.added();
        for entry in &inventory {
            let variant = &entry.variant;
            if variant.stock_quantity < 0 {
                found.push(format!(
                    "variant {} has negative stock {}",
                    variant.id, variant.stock_quantity
                ));
            }
            let of_variant = || cards.values().filter(|c| c.variant_id == variant.id);
            let returned = of_variant()
                .filter(|c| c.status == GiftCardStatus::Cancelled)
                .count() as i64;
            let issued_cards = issued.get(&variant.id).copied().unwrap_or(0);
            match variant.fulfillment_source {
                FulfillmentSource::Generated => {
                    let put_in = added.get(&variant.id).copied().unwrap_or(0);
                    if put_in + returned - variant.stock_quantity != issued_cards {
                        found.push(format!(
                            "stock of {} not conserved: {put_in} put in + {returned} returned − \
                             {} left ≠ {issued_cards} issued",
                            variant.id, variant.stock_quantity
                        ));
                    }
                }
                FulfillmentSource::Inventory => {
                    let batches = ports.codes.code_batches(&variant.id).await?;
                    let available: u64 = batches.iter().map(|b| b.available).sum();
                    let allocated: u64 = batches.iter().map(|b| b.allocated).sum();
                    if u64::try_from(variant.stock_quantity) != Ok(available) {
                        found.push(format!(
                            "stock of brand variant {} is {}, but it has {available} codes \
                             available",
                            variant.id, variant.stock_quantity
                        ));
                    }
                    let holding = of_variant()
                        .filter(|c| c.status != GiftCardStatus::Cancelled)
                        .count() as u64;
                    if allocated != holding {
                        found.push(format!(
                            "brand variant {}: {allocated} codes allocated, but {holding} cards \
                             hold one",
                            variant.id
                        ));
                    }
                    if let Some(redeemed) =
                        of_variant().find(|c| c.status == GiftCardStatus::Redeemed)
                    {
                        found.push(format!(
                            "brand card {} was redeemed into a wallet",
                            redeemed.id
                        ));
                    }
                }
            }
        }

        check_cards(&wallets, &cards, &mut found);
        check_redemptions(&user_ids, &wallets, &cards, &mut found);
        {
            let model = world.model();
            for (index, user) in model.users.iter().enumerate() {
                for id in &user.redeemed {
                    let card = cards.get(id);
                    if card.map(|c| (c.status, c.redeemed_by.as_ref()))
                        != Some((GiftCardStatus::Redeemed, Some(&user.id)))
                    {
                        found.push(format!(
                            "user{index} was told it redeemed card {id}, which is {:?}",
                            card.map(|c| (c.status, &c.redeemed_by))
                        ));
                    }
                }
                for id in &user.returned {
                    if cards.get(id).map(|c| c.status) != Some(GiftCardStatus::Cancelled) {
                        found.push(format!(
                            "user{index} was told it returned card {id}, which is {:?}",
                            cards.get(id).map(|c| c.status)
                        ));
                    }
                }
            }
        }
        check_events(&world.events.published(), &orders, &cards, end, &mut found);
        if end {
            for order in orders.values() {
                if !order.status.is_final() {
                    found.push(format!(
                        "order {} never reached a final status: {}",
                        order.id, order.status
                    ));
                } else if order.notified_at.is_none() {
                    found.push(format!(
                        "final order {} was never marked notified",
                        order.id
                    ));
                }
            }
            // The run ends two days on and the reconciler has run since: nothing dated before
            // today is ACTIVE or available any more.
            let today = world.clock.peek().date_naive();
            for card in cards.values() {
                if card.status == GiftCardStatus::Active && card.expiry_date < today {
                    found.push(format!(
                        "card {} expired on {} and is still ACTIVE",
                        card.id, card.expiry_date
                    ));
                }
            }
            let brand = inventory
                .iter()
                .filter(|e| e.variant.fulfillment_source == FulfillmentSource::Inventory);
            for entry in brand {
                for batch in ports.codes.code_batches(&entry.variant.id).await? {
                    if batch.earliest_expiry.is_some_and(|d| d < today) {
                        found.push(format!(
                            "batch {} still has a code available that expired on {:?}",
                            batch.batch_ref, batch.earliest_expiry
                        ));
                    }
                }
            }
            for card in cards.values() {
                if card.owes_event() {
                    found.push(format!(
                        "{} card {} was never marked notified",
                        card.status.as_str(),
                        card.id
                    ));
                }
            }
            for user in &world.model().users {
                for key in user.open_keys() {
                    found.push(format!(
                        "{}: the outcome of key {key} was never learnt",
                        user.id
                    ));
                }
            }
        }
        Ok(found)
    }

    fn check_wallet(
        &mut self,
        who: &str,
        user: &UserModel,
        wallet: &Wallet,
        found: &mut Violations,
    ) {
        let sum = |kind: TransactionType| -> i64 {
            wallet
                .ledger
                .iter()
                .filter(|t| t.kind == kind)
                .map(|t| t.amount.get())
                .sum()
        };
        let (credits, debits, refunds, redeemed) = (
            sum(TransactionType::Credit),
            sum(TransactionType::Debit),
            sum(TransactionType::Refund),
            sum(TransactionType::Redeem),
        );
        let balance = wallet.balance.get();
        if balance < 0 {
            found.push(format!("{who}: negative balance {balance}"));
        }
        if credits - debits + refunds + redeemed != balance {
            found.push(format!(
                "{who}: ledger {credits} − {debits} + {refunds} + {redeemed} redeemed ≠ balance \
                 {balance}"
            ));
        }

        let by_id: BTreeMap<&OrderId, &Order> = wallet.orders.iter().map(|o| (&o.id, o)).collect();
        for txn in &wallet.ledger {
            match (txn.kind, &txn.order_id) {
                (TransactionType::Credit | TransactionType::Redeem, None) => {}
                (TransactionType::Credit | TransactionType::Redeem, Some(order)) => {
                    found.push(format!("{who}: credit {} names order {order}", txn.id));
                }
                (_, None) => found.push(format!("{who}: {:?} {} names no order", txn.kind, txn.id)),
                (kind, Some(order)) => match by_id.get(order) {
                    None => found.push(format!(
                        "{who}: {kind:?} {} for unknown order {order}",
                        txn.id
                    )),
                    Some(o) if kind == TransactionType::Refund && !o.status.is_final() => found
                        .push(format!(
                            "{who}: refund {} for order {order} still {}",
                            txn.id, o.status
                        )),
                    Some(_) => {}
                },
            }
        }

        let mut in_flight = 0i64;
        let mut fulfilled = 0i64;
        for order in &wallet.orders {
            let id = &order.id;
            if order.user_id != user.id {
                found.push(format!("{who}: lists order {id} of {}", order.user_id));
            }
            if let Some(before) = self.last_status.insert(id.clone(), order.status)
                && !forward(before, order.status)
            {
                found.push(format!(
                    "order {id} went from {before} back to {}",
                    order.status
                ));
            }
            let of = |kind: TransactionType| -> Vec<&WalletTransaction> {
                wallet
                    .ledger
                    .iter()
                    .filter(|t| t.kind == kind && t.order_id.as_ref() == Some(id))
                    .collect()
            };
            let (debit, refund) = (of(TransactionType::Debit), of(TransactionType::Refund));
            if debit.len() != 1 || debit[0].amount != order.paid_amount {
                found.push(format!(
                    "order {id}: {} debits {:?} for a payment of {}",
                    debit.len(),
                    debit.iter().map(|t| t.amount.get()).collect::<Vec<_>>(),
                    order.paid_amount.get()
                ));
            }
            let total: i64 = order.items.iter().map(|l| l.total_price().get()).sum();
            if order.total_amount.get() != total || order.paid_amount != order.total_amount {
                found.push(format!(
                    "order {id}: total {} and paid {} but lines add up to {total}",
                    order.total_amount.get(),
                    order.paid_amount.get()
                ));
            }
            if order
                .items
                .iter()
                .any(|l| l.fulfilled_quantity > l.requested_quantity)
            {
                found.push(format!(
                    "order {id}: a line is fulfilled beyond what it requested"
                ));
            }
            let refunded: i64 = refund.iter().map(|t| t.amount.get()).sum();
            let owed = match order.status {
                OrderStatus::Pending | OrderStatus::Processing => {
                    in_flight += order.paid_amount.get();
                    if order.items.iter().any(|l| l.fulfilled_quantity > 0) {
                        found.push(format!(
                            "order {id}: units fulfilled while {}",
                            order.status
                        ));
                    }
                    0
                }
                OrderStatus::Cancelled => {
                    if order.items.iter().any(|l| l.fulfilled_quantity > 0) {
                        found.push(format!("order {id}: cancelled with units fulfilled"));
                    }
                    order.paid_amount.get()
                }
                status => {
                    if final_status(&order.items) != status {
                        found.push(format!(
                            "order {id}: status {status} but its quantities say {}",
                            final_status(&order.items)
                        ));
                    }
                    fulfilled += order.fulfilled_value().get();
                    refund_amount(&order.items).get()
                }
            };
            let (returns, returned_value) = wallet.returned(id);
            fulfilled -= returned_value;
            let refunds_due = usize::from(owed > 0) + returns;
            if order.refund_amount.get() != owed
                || refunded != owed + returned_value
                || refund.len() != refunds_due
            {
                found.push(format!(
                    "order {id} ({}): owes a refund of {owed} (unit price × unfulfilled units) \
                     and {returned_value} for {returns} returned card(s), shows {}, and the \
                     ledger has {} refund(s) of {refunded} in all",
                    order.status,
                    order.refund_amount.get(),
                    refund.len()
                ));
            }
            if order.status.is_final()
                && order.paid_amount.get()
                    != order.fulfilled_value().get() + order.refund_amount.get()
            {
                found.push(format!("order {id}: paid ≠ fulfilled value + refund"));
            }
        }
        // The money rule: Σ top-ups + Σ face value redeemed = Σ balances + Σ price of
        // fulfilled, not returned cards, with the money of orders still in flight on its way
        // to one or the other.
        if credits + redeemed != balance + fulfilled + in_flight {
            found.push(format!(
                "{who}: money not conserved: top-ups {credits} + redeemed {redeemed} ≠ balance \
                 {balance} + fulfilled, not returned {fulfilled} + in flight {in_flight}"
            ));
        }
        self.check_knowledge(who, user, wallet, found);
    }

    /// The backend against what the client knows.
    fn check_knowledge(
        &self,
        who: &str,
        user: &UserModel,
        wallet: &Wallet,
        found: &mut Violations,
    ) {
        let credits: BTreeMap<_, _> = wallet
            .ledger
            .iter()
            .filter(|t| t.kind == TransactionType::Credit)
            .map(|t| (&t.id, t.amount))
            .collect();
        for (id, amount) in &user.credits {
            if credits.get(id) != Some(amount) {
                found.push(format!(
                    "{who}: acknowledged top-up {id} of {} is not in the ledger",
                    amount.get()
                ));
            }
        }
        let mut unexplained: Vec<i64> = user
            .maybe
            .iter()
            .filter_map(|a| match a.op {
                Op::TopUp { amount } => Some(amount),
                _ => None,
            })
            .collect();
        for (id, amount) in credits {
            if user.credits.contains_key(id) {
                continue;
            }
            match unexplained.iter().position(|a| *a == amount.get()) {
                Some(at) => {
                    unexplained.swap_remove(at);
                }
                None => found.push(format!(
                    "{who}: credit {id} of {} matches no request that may have committed \
                     (a top-up applied twice?)",
                    amount.get()
                )),
            }
        }

        let listed: BTreeMap<_, _> = wallet.orders.iter().map(|o| (&o.id, o)).collect();
        for id in &user.orders {
            if !listed.contains_key(id) {
                found.push(format!("{who}: accepted order {id} is not in the backend"));
            }
        }
        let mut attempts: Vec<&Op> = user
            .maybe
            .iter()
            .map(|a| &a.op)
            .filter(|op| matches!(op, Op::OrderItems { .. } | Op::OrderCart))
            .collect();
        for (id, order) in listed {
            if user.orders.contains(id) {
                continue;
            }
            let explains = |op: &&Op| match op {
                Op::OrderCart => order.source == OrderSource::Cart,
                Op::OrderItems { lines } => {
                    order.source == OrderSource::Items
                        && order.items.len() == lines.len()
                        && order
                            .items
                            .iter()
                            .zip(lines)
                            .all(|(l, (v, q))| l.variant_id == *v && l.requested_quantity == *q)
                }
                _ => false,
            };
            match attempts.iter().position(explains) {
                Some(at) => {
                    attempts.swap_remove(at);
                }
                None => found.push(format!(
                    "{who}: order {id} matches no request that may have committed (placed twice?)"
                )),
            }
        }
    }
}

/// Cards: as many as fulfilled units per order, of the right variants, none before the order
/// is final, and no number held by two cards (a returned brand card gives its number up).
fn check_cards(wallets: &[Wallet], cards: &BTreeMap<GiftCardId, GiftCard>, found: &mut Violations) {
    for wallet in wallets {
        for (order, of_order) in &wallet.cards {
            if !wallet.orders.iter().any(|o| o.id == *order) {
                found.push(format!(
                    "cards {:?} name order {order}, which is not their holder's",
                    of_order.iter().map(|c| &c.id).collect::<Vec<_>>()
                ));
            }
        }
        for order in &wallet.orders {
            let of_order = wallet.cards.get(&order.id).map_or(&[][..], Vec::as_slice);
            let mut per_variant: BTreeMap<&VariantId, i64> = BTreeMap::new();
            for line in &order.items {
                *per_variant.entry(&line.variant_id).or_default() +=
                    i64::from(line.fulfilled_quantity);
            }
            for card in of_order {
                if card.user_id != order.user_id {
                    found.push(format!(
                        "card {} filed under order {} belongs elsewhere",
                        card.id, order.id
                    ));
                }
                *per_variant.entry(&card.variant_id).or_default() -= 1;
            }
            if per_variant.values().any(|n| *n != 0) {
                found.push(format!(
                    "order {} ({}): {} cards for {} fulfilled units, or of the wrong variants",
                    order.id,
                    order.status,
                    of_order.len(),
                    order
                        .items
                        .iter()
                        .map(|l| l.fulfilled_quantity)
                        .sum::<u32>()
                ));
            }
        }
    }
    let mut holders: BTreeMap<&str, &GiftCardId> = BTreeMap::new();
    for card in cards.values() {
        if let Some(other) = holders.insert(&card.sealed.lookup_key, &card.id) {
            found.push(format!(
                "cards {other} and {} hold the same number (a code allocated twice?)",
                card.id
            ));
        }
    }
}

/// REDEEM credits against the cards: each wallet's add up, in count and amount, to the face
/// value of the cards redeemed into it.
fn check_redemptions(
    users: &[UserId],
    wallets: &[Wallet],
    cards: &BTreeMap<GiftCardId, GiftCard>,
    found: &mut Violations,
) {
    for (index, (user, wallet)) in users.iter().zip(wallets).enumerate() {
        let credits: Vec<i64> = wallet
            .ledger
            .iter()
            .filter(|t| t.kind == TransactionType::Redeem)
            .map(|t| t.amount.get())
            .collect();
        let faces: Vec<i64> = cards
            .values()
            .filter(|c| c.redeemed_by.as_ref() == Some(user))
            .map(|c| c.face_value().map_or(-1, Paise::get))
            .collect();
        if credits.len() != faces.len() || credits.iter().sum::<i64>() != faces.iter().sum::<i64>()
        {
            found.push(format!(
                "user{index}: REDEEM credits {credits:?}, but the cards redeemed into the wallet \
                 are worth {faces:?}"
            ));
        }
    }
}

/// Events: each names its order's current status and amounts; at the end every final order
/// has at least one.
fn check_events(
    events: &[Event],
    orders: &BTreeMap<OrderId, Order>,
    cards: &BTreeMap<GiftCardId, GiftCard>,
    end: bool,
    found: &mut Violations,
) {
    let mut announced: BTreeSet<&GiftCardId> = BTreeSet::new();
    for event in events.iter().filter_map(|e| match e {
        Event::Card(card) => Some(card),
        Event::Order(_) => None,
    }) {
        let card = cards.get(&event.gift_card_id);
        let amount = card.and_then(|c| match c.status {
            GiftCardStatus::Redeemed => c.face_value(),
            _ => Some(c.purchase_price),
        });
        if card.map(|c| c.status) != Some(event.status)
            || amount != Some(event.amount)
            || card.map(|c| &c.redeemed_by) != Some(&event.redeemed_by)
        {
            found.push(format!(
                "event {} says card {} is {} with {} moved, but the card is {:?}",
                event.event_id,
                event.gift_card_id,
                event.status.as_str(),
                event.amount.get(),
                card.map(|c| (c.status, amount, &c.redeemed_by))
            ));
        }
        announced.insert(&event.gift_card_id);
    }
    if end {
        for card in cards.values().filter(|c| {
            matches!(
                c.status,
                GiftCardStatus::Redeemed | GiftCardStatus::Cancelled
            )
        }) {
            if !announced.contains(&card.id) {
                found.push(format!(
                    "{} card {} has no event",
                    card.status.as_str(),
                    card.id
                ));
            }
        }
    }
    let mut seen: BTreeSet<&OrderId> = BTreeSet::new();
    for event in events.iter().filter_map(|e| match e {
        Event::Order(order) => Some(order),
        Event::Card(_) => None,
    }) {
        let Some(order) = orders.get(&event.order_id) else {
            found.push(format!(
                "event {} for unknown order {}",
                event.event_id, event.order_id
            ));
            continue;
        };
        if event.status != order.status
            || event.user_id != order.user_id
            || event.refund_amount != order.refund_amount
            || event.paid_amount != order.paid_amount
            || event.fulfilled_amount != order.fulfilled_value()
        {
            found.push(format!(
                "event {} says {} refund {} fulfilled {}, but order {} is {} refund {} fulfilled {}",
                event.event_id,
                event.status,
                event.refund_amount.get(),
                event.fulfilled_amount.get(),
                order.id,
                order.status,
                order.refund_amount.get(),
                order.fulfilled_value().get()
            ));
        }
        seen.insert(&event.order_id);
    }
    if end {
        for order in orders.values().filter(|o| o.status.is_final()) {
            if !seen.contains(&order.id) {
                found.push(format!(
                    "final order {} ({}) has no event",
                    order.id, order.status
                ));
            }
        }
    }
}
