//! Moving an install from one backend to another — in practice a machine's data dir to a
//! stage on AWS (`giftify migrate`). The records are the domain's, so the source reads its
//! rows into them and the target writes its items from them: neither knows the other's
//! layout. The copy runs part by part, in the order one record may refer to an earlier one
//! (a card to its order, an order to its user), page by page, with its position saved after
//! every page is written whole; each item of a record is written only where it is not yet,
//! so a run cut short repeats at most its last page, completing any record it cut in half,
//! and a second run changes nothing. It is done only when both sides count the same records
//! and the same money, and the money rule holds on both ([`Census::money_rule`]).
//!
//! What is not copied, and why (the README's runbook says the same):
//! - sessions (refresh tokens): everyone signs in again on the new backend, so no token
//!   outlives the machine it was issued on;
//! - carts, login throttles and rate-limit windows: minutes of state, rebuilt by use;
//! - idempotency keys that expired: they answer nothing any more;
//! - the queue: an order still PENDING is found by the reconciler and fulfilled there;
//! - the webhook delivery history and deliveries still to retry: the endpoints are copied, and
//!   the event feed with every event at its position, so an integrator catches up from its
//!   cursor.

use crate::api_keys::ApiKey;
use crate::audit::AuditEntry;
use crate::codes::{BatchRef, InventoryCode};
use crate::events::Event;
use crate::figures::DayFigures;
use crate::idempotency::{IdempotencyScope, StoredKey};
use crate::ids::{ProductId, VariantId};
use crate::order::{Order, OrderStatus};
use crate::user::UserCredentials;
use crate::vault::{GiftCard, GiftCardStatus, RevealAudit};
use crate::wallet::{TransactionType, WalletTransaction};
use crate::webhooks::WebhookEndpoint;
use crate::{Error, Paise, Result};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The parts of an install, in the order they are copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    Users,
    Ledger,
    Products,
    Variants,
    CodeBatches,
    Codes,
    Orders,
    Cards,
    Reveals,
    IdempotencyKeys,
    ApiKeys,
    Webhooks,
    Audit,
    Figures,
    Events,
}

impl Part {
    pub const ALL: [Part; 15] = [
        Part::Users,
        Part::Ledger,
        Part::Products,
        Part::Variants,
        Part::CodeBatches,
        Part::Codes,
        Part::Orders,
        Part::Cards,
        Part::Reveals,
        Part::IdempotencyKeys,
        Part::ApiKeys,
        Part::Webhooks,
        Part::Audit,
        Part::Figures,
        Part::Events,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Part::Users => "users",
            Part::Ledger => "ledger",
            Part::Products => "products",
            Part::Variants => "variants",
            Part::CodeBatches => "code-batches",
            Part::Codes => "codes",
            Part::Orders => "orders",
            Part::Cards => "cards",
            Part::Reveals => "reveals",
            Part::IdempotencyKeys => "idempotency-keys",
            Part::ApiKeys => "api-keys",
            Part::Webhooks => "webhooks",
            Part::Audit => "audit",
            Part::Figures => "figures",
            Part::Events => "events",
        }
    }

    /// The part after this one.
    pub fn next(self) -> Option<Part> {
        let at = Part::ALL.iter().position(|p| *p == self)?;
        Part::ALL.get(at + 1).copied()
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An account with what signs it in, and how many movements its wallet has had (the
/// position of its last ledger entry).
#[derive(Clone, Debug)]
pub struct AccountRecord {
    pub credentials: UserCredentials,
    pub wallet_movements: i64,
}

/// A ledger entry with its position in its wallet's history (1 for the first movement).
#[derive(Clone, Debug)]
pub struct LedgerRecord {
    pub transaction: WalletTransaction,
    pub position: i64,
}

/// A code import: its reference, the digest of the rows it was sent with, the report it
/// answered with (JSON of [`crate::codes::ImportReport`], answered again to the same
/// reference), how many codes it stored, and a recall.
#[derive(Clone, Debug)]
pub struct BatchRecord {
    pub variant_id: VariantId,
    pub product_id: ProductId,
    pub batch_ref: BatchRef,
    pub fingerprint: String,
    pub report: String,
    pub stored: u64,
    pub imported_at: DateTime<Utc>,
    pub voided_at: Option<DateTime<Utc>>,
}

/// A brand code, and whether it came back from a returned card.
#[derive(Clone, Debug)]
pub struct CodeRecord {
    pub code: InventoryCode,
    pub returned: bool,
}

/// A reveal of a card's number, with its serial number on the source (its identity there,
/// which keeps it one entry when a page is copied twice).
#[derive(Clone, Debug)]
pub struct RevealRecord {
    pub audit: RevealAudit,
    pub serial: i64,
}

/// An idempotency key that still answers.
#[derive(Clone, Debug)]
pub struct KeyRecord {
    pub scope: IdempotencyScope,
    pub key: StoredKey,
    pub created_at: DateTime<Utc>,
}

/// An event of the feed, at its position in the feed of all events. The position is kept on
/// the target, in the feed of all events and in its user's feed alike, so an integrator's
/// cursor from the source reads on from the same event on the target.
#[derive(Clone, Debug)]
pub struct FeedRecord {
    pub event: Event,
    pub position: u64,
    pub recorded_at: DateTime<Utc>,
}

/// One record of one part.
#[derive(Clone, Debug)]
pub enum Record {
    Account(Box<AccountRecord>),
    Ledger(LedgerRecord),
    Product(Box<crate::catalogue::Product>),
    Variant(Box<crate::catalogue::Variant>),
    CodeBatch(BatchRecord),
    Code(Box<CodeRecord>),
    Order(Box<Order>),
    Card(Box<GiftCard>),
    Reveal(RevealRecord),
    IdempotencyKey(KeyRecord),
    ApiKey(Box<ApiKey>),
    Webhook(Box<WebhookEndpoint>),
    Audit(Box<AuditEntry>),
    Figures(NaiveDate, Box<DayFigures>),
    FeedEvent(Box<FeedRecord>),
}

/// A page of a part: the records after a position, and the position after the last of them
/// (`None` when the part has no more).
#[derive(Clone, Debug, Default)]
pub struct ExportPage {
    pub records: Vec<Record>,
    pub next: Option<String>,
}

/// What a page's import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// Written now (at least one of its items).
    pub copied: u64,
    /// Wholly there already: copied by an earlier run that stopped before it saved its
    /// position.
    pub present: u64,
}

/// The totals of the money in an install.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyTotals {
    /// Σ of every wallet's balance.
    pub balances: i64,
    /// Σ of the ledger's amounts per kind (adjustments signed).
    pub top_ups: i64,
    pub redeemed: i64,
    pub adjustments: i64,
    pub debits: i64,
    pub refunds: i64,
    /// Σ price of the cards issued and not returned.
    pub cards_kept: i64,
    /// Σ paid of the orders not final yet (their cards are still to come, or their refund).
    pub in_flight: i64,
}

impl MoneyTotals {
    /// Adds a card's price: what the customer keeps unless it was returned.
    fn add_cards(&mut self, status: GiftCardStatus, prices: i64) {
        if status != GiftCardStatus::Cancelled {
            self.cards_kept += prices;
        }
    }

    /// Adds what an order was paid: in flight until the order is final.
    fn add_orders(&mut self, status: OrderStatus, paid: i64) {
        if !status.is_final() {
            self.in_flight += paid;
        }
    }

    fn add_entry(&mut self, kind: TransactionType, amount: Paise) {
        let amount = amount.get();
        match kind {
            TransactionType::Credit => self.top_ups += amount,
            TransactionType::Redeem => self.redeemed += amount,
            TransactionType::Adjustment => self.adjustments += amount,
            TransactionType::Debit => self.debits += amount,
            TransactionType::Refund => self.refunds += amount,
        }
    }
}

/// What an install holds: records per part, and its money.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Census {
    pub records: BTreeMap<Part, u64>,
    pub money: MoneyTotals,
}

impl Census {
    /// Counts a record of `part`, and its money: a balance, a ledger entry, a card's price or
    /// an order's payment.
    pub fn add(&mut self, part: Part, record: &Record) {
        *self.records.entry(part).or_default() += 1;
        let money = &mut self.money;
        match record {
            Record::Account(account) => {
                money.balances += account.credentials.user.wallet_balance.get();
            }
            Record::Ledger(entry) => {
                money.add_entry(entry.transaction.kind, entry.transaction.amount);
            }
            Record::Card(card) => money.add_cards(card.status, card.purchase_price.get()),
            Record::Order(order) => money.add_orders(order.status, order.paid_amount.get()),
            _ => {}
        }
    }

    pub fn count(&self, part: Part) -> u64 {
        self.records.get(&part).copied().unwrap_or(0)
    }

    /// True when no part holds a record.
    pub fn is_empty(&self) -> bool {
        Part::ALL.iter().all(|p| self.count(*p) == 0)
    }

    /// The money rule, both ways it is written down:
    /// - the ledger adds up to the balances: Σ top-ups + Σ redeemed + Σ adjustments − Σ debits
    ///   + Σ refunds = Σ balances;
    /// - every paisa in is a balance or a card: Σ top-ups + Σ redeemed + Σ adjustments =
    ///   Σ balances + Σ price of cards kept + Σ paid of orders in flight.
    pub fn money_rule(&self) -> Result<()> {
        let m = &self.money;
        let money_in = m.top_ups + m.redeemed + m.adjustments;
        if money_in - m.debits + m.refunds != m.balances {
            return Err(Error::internal(format!(
                "the ledger does not add up to the balances: {money_in} in − {} debited + {} \
                 refunded ≠ {} held",
                m.debits, m.refunds, m.balances
            )));
        }
        if money_in != m.balances + m.cards_kept + m.in_flight {
            return Err(Error::internal(format!(
                "the money rule fails: {money_in} in ≠ {} held + {} in cards + {} in flight",
                m.balances, m.cards_kept, m.in_flight
            )));
        }
        Ok(())
    }

    /// How `other` (the target) differs from this census (the source), in words; empty when
    /// they agree.
    pub fn differences(&self, other: &Census) -> Vec<String> {
        let mut found: Vec<String> = Part::ALL
            .iter()
            .filter(|p| self.count(**p) != other.count(**p))
            .map(|p| {
                format!(
                    "{p}: {} in the source, {} in the target",
                    self.count(*p),
                    other.count(*p)
                )
            })
            .collect();
        if self.money != other.money {
            found.push(format!(
                "money: {:?} in the source, {:?} in the target",
                self.money, other.money
            ));
        }
        found
    }
}

/// An order-independent digest of a part's records: how many, and the wrapping sum of a
/// stable hash (FNV-1a) of each record's every field. Two installs that hold the same records
/// agree whatever order they list them in; one attribute read back differently disagrees.
/// Only compared, never shown or logged: records hold password hashes and sealed numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub records: u64,
    pub sum: u64,
}

impl Digest {
    pub fn add(&mut self, record: &Record) {
        let mut text = format!("{record:?}");
        // `Debug` leaves sealed secrets out, so they are added here: hashed, never shown.
        let mut sealed = |card: &crate::vault::SealedCard| {
            for part in [
                &card.number_ciphertext,
                &card.pin_ciphertext,
                &card.lookup_key,
            ] {
                text.push('|');
                text.push_str(part);
            }
        };
        match record {
            Record::Card(card) => sealed(&card.sealed),
            Record::Code(code) => sealed(&code.code.sealed),
            Record::Webhook(endpoint) => {
                for secret in &endpoint.secrets {
                    text.push('|');
                    text.push_str(&secret.sealed);
                }
            }
            _ => {}
        }
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        self.records += 1;
        self.sum = self.sum.wrapping_add(hash);
    }

    pub fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> Self {
        let mut digest = Digest::default();
        for record in records {
            digest.add(record);
        }
        digest
    }
}

/// Where a copy stands: saved after every page, so a run cut short resumes there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// The part being copied; `None` once every part is.
    pub part: Option<Part>,
    /// The position after the last record copied in it.
    pub after: Option<String>,
    pub imported: BTreeMap<Part, Imported>,
    /// When the copy began: what is live (an idempotency key) is judged at this instant on
    /// every page and in every census of the copy.
    pub as_of: DateTime<Utc>,
    /// The source's census when the copy began.
    pub source: Census,
    /// The digest of each of the source's parts when the copy began: a source that changes
    /// meanwhile (a process still ran on it) is refused at the end, whatever changed.
    pub source_digests: BTreeMap<Part, Digest>,
    /// Which target the copy writes to ([`MigrationTarget::identity`]): a progress file is
    /// never taken for the copy into other tables of the same name.
    pub target: String,
    /// Set when a verification failed and every part is copied once more; a second failure
    /// means records on the target differ, which copying cannot mend.
    pub repass: bool,
    pub verified: bool,
}

/// The install being copied from. Each part is read in a stable order of its own key.
#[async_trait]
pub trait MigrationSource: Send + Sync {
    /// Records of `part` after the position `after` (from the start with `None`); of the
    /// idempotency keys, those live at `live_at`.
    async fn export(
        &self,
        part: Part,
        after: Option<&str>,
        limit: u32,
        live_at: DateTime<Utc>,
    ) -> Result<ExportPage>;
    /// Messages that failed fulfillment and wait for an operator: none may be left behind.
    async fn dead_letters(&self) -> Result<u64>;
}

/// The install being copied to.
#[async_trait]
pub trait MigrationTarget: Send + Sync {
    /// What tells these tables from others of the same name (tables made again, another
    /// account): recorded when a copy begins and checked on every run.
    async fn identity(&self) -> Result<String>;
    /// Every record of `part` as the target reads it back, through its own decoders; of the
    /// idempotency keys, those live at `live_at` (the target may delete expired ones at any
    /// time).
    async fn records(&self, part: Part, live_at: DateTime<Utc>) -> Result<Vec<Record>>;
    /// Writes each item of each record unless it is there already. A record of several items
    /// may be left partly written by a failure: the page is then imported again.
    async fn import(&self, records: &[Record]) -> Result<Imported>;
}

/// Where the copy's position is kept between runs.
pub trait ProgressStore: Send + Sync {
    fn load(&self) -> Result<Option<Progress>>;
    fn save(&self, progress: &Progress) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled() -> Census {
        Census {
            records: BTreeMap::from([(Part::Users, 2), (Part::Ledger, 5)]),
            money: MoneyTotals {
                balances: 700,
                top_ups: 1_000,
                redeemed: 100,
                adjustments: -50,
                debits: 500,
                refunds: 150,
                cards_kept: 300,
                in_flight: 50,
            },
        }
    }

    #[test]
    fn the_money_rule_holds_only_when_every_paisa_is_a_balance_a_card_or_in_flight() {
        assert!(settled().money_rule().is_ok());
        let mut lost_card = settled();
        lost_card.money.cards_kept -= 1;
        assert!(lost_card.money_rule().is_err());
        let mut unbalanced = settled();
        unbalanced.money.balances += 1;
        unbalanced.money.cards_kept -= 1;
        assert!(
            unbalanced.money_rule().is_err(),
            "the ledger must add up too"
        );
    }

    #[test]
    fn differences_name_each_part_and_the_money() {
        let source = settled();
        assert!(source.differences(&source.clone()).is_empty());
        let mut target = settled();
        target.records.insert(Part::Ledger, 4);
        target.money.refunds += 1;
        let found = source.differences(&target);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("ledger: 5 in the source, 4 in the target"));
    }

    fn card() -> GiftCard {
        use crate::ids::{GiftCardId, OrderId, ProductId, UserId, VariantId};
        use crate::vault::{CardKey, CardVault};
        let id = GiftCardId::generate();
        GiftCard {
            sealed: CardVault::new(&CardKey::generate()).issue(&id).unwrap(),
            id,
            order_id: OrderId::generate(),
            user_id: UserId::generate(),
            product_id: ProductId::generate(),
            variant_id: VariantId::generate(),
            product_name: "Giftify".into(),
            variant_name: "Giftify 500".into(),
            denomination: 500,
            expiry_date: NaiveDate::from_ymd_opt(2027, 12, 6).unwrap(),
            status: GiftCardStatus::Active,
            purchase_price: Paise::new(50_000),
            issued_at: chrono::Utc::now(),
            redeemed_at: None,
            redeemed_by: None,
            revealed_at: None,
            returned_at: None,
            notified_at: None,
        }
    }

    #[test]
    fn a_digest_ignores_order_and_sees_every_field_and_the_sealed_secrets() {
        let (a, b) = (card(), card());
        let records = |cards: [&GiftCard; 2]| cards.map(|c| Record::Card(Box::new(c.clone())));
        assert_eq!(
            Digest::of(&records([&a, &b])),
            Digest::of(&records([&b, &a])),
            "the order a side lists its records in does not matter"
        );
        let mut pin = a.clone();
        pin.sealed.pin_ciphertext.push('A');
        let mut status = a.clone();
        status.status = GiftCardStatus::Redeemed;
        for changed in [pin, status] {
            assert_ne!(
                Digest::of(&records([&a, &b])),
                Digest::of(&records([&changed, &b])),
                "{changed:?}"
            );
        }
    }

    #[test]
    fn parts_run_in_order_and_end() {
        let mut part = Some(Part::ALL[0]);
        let mut seen = Vec::new();
        while let Some(p) = part {
            seen.push(p);
            part = p.next();
        }
        assert_eq!(seen, Part::ALL);
    }
}
