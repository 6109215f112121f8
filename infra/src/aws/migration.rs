//! A stage as the target of a move from another backend ([`MigrationTarget`]). Each record is
//! written as the items the stage's own writes would have left — through the same item
//! builders — each put conditional on its item being absent: what an earlier run copied (one
//! that stopped before it saved its position) is found there and left alone, and a record it
//! cut in half is completed. Plain puts, not transactions: the copy runs while nothing else
//! writes, and the position is saved only after every item of a page is written.

use super::cards::{NOTIFY_PENDING, REVEAL_PREFIX, card_item};
use super::store::{DynamoStore, all_pages, list};
use crate::aws::item::{Attrs, Item, b, epoch, format_ts, item, n, s, sdk_error, ts};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use giftify_shared::audit::AuditEntry;
use giftify_shared::codes::BatchRef;
use giftify_shared::events::Event;
use giftify_shared::figures::DayFigures;
use giftify_shared::idempotency::{IdempotencyKey, IdempotencyScope, StoredKeyState};
use giftify_shared::ids::{GiftCardId, OrderId, ProductId, UserId, VariantId};
use giftify_shared::migration::{
    AccountRecord, BatchRecord, CodeRecord, FeedRecord, Imported, KeyRecord, LedgerRecord,
    MigrationTarget, Part, Record, RevealRecord,
};
use giftify_shared::order::Order;
use giftify_shared::user::UserCredentials;
use giftify_shared::vault::GiftCard;
use giftify_shared::vault::RevealAudit;
use giftify_shared::{Error, Result};
use std::collections::BTreeMap;

/// Conditional puts in flight at once.
const PUTS_IN_FLIGHT: usize = 16;

fn account_items(
    store: &DynamoStore,
    record: &AccountRecord,
) -> Result<Vec<(String, Item, &'static str)>> {
    let user = &record.credentials.user;
    let mut raw = item([
        ("userId", s(user.id.as_str())),
        ("email", s(user.email.as_str())),
        ("passwordHash", s(&record.credentials.password_hash)),
        ("firstName", s(&user.first_name)),
        ("lastName", s(&user.last_name)),
        ("role", s(user.role.as_str())),
        ("status", s(user.status.as_str())),
        ("walletBalance", n(user.wallet_balance.get())),
        ("isEmailVerified", b(user.is_email_verified)),
        ("isPhoneVerified", b(user.is_phone_verified)),
        ("createdAt", ts(user.created_at)),
        ("updatedAt", ts(user.updated_at)),
        ("sessionEpoch", n(i64::from(user.session_epoch))),
    ]);
    if record.wallet_movements > 0 {
        raw.insert("walletSequence".into(), n(record.wallet_movements));
    }
    if let Some(phone) = &user.phone_number {
        raw.insert("phoneNumber".into(), s(phone));
    }
    if let Some(at) = user.last_login_at {
        raw.insert("lastLoginAt".into(), ts(at));
    }
    if let Some(day) = user.active_on {
        raw.insert("activeOn".into(), s(day.to_string()));
    }
    let email = item([
        ("userId", s(format!("EMAIL#{}", user.email.as_str()))),
        ("ownerId", s(user.id.as_str())),
    ]);
    let table = store.tables.users.clone();
    Ok(vec![
        (table.clone(), raw, "userId"),
        (table, email, "userId"),
    ])
}

fn order_items(store: &DynamoStore, order: &Order) -> Vec<(String, Item, &'static str)> {
    let mut raw = super::orders::order_item(order);
    raw.insert(
        "giftCardIds".into(),
        list(
            order
                .gift_card_ids
                .iter()
                .map(|id| s(id.as_str()))
                .collect(),
        ),
    );
    match order.notified_at {
        Some(at) => {
            raw.insert("notifiedAt".into(), ts(at));
        }
        None if order.owes_event() => {
            raw.insert("notifyPending".into(), s("1"));
        }
        None => {}
    }
    let mut items = vec![(store.tables.orders.clone(), raw, "orderId")];
    if let Some(reference) = &order.labels.client_reference {
        let mut holder = super::orders::reference_key(&order.user_id, reference);
        holder.insert("orderId".into(), s(order.id.as_str()));
        items.push((store.tables.idempotency_keys.clone(), holder, "scopeKey"));
    }
    items
}

fn card_items(card: &GiftCard) -> Item {
    let mut raw = card_item(card);
    let optional = [
        ("redeemedAt", card.redeemed_at),
        ("revealedAt", card.revealed_at),
        ("returnedAt", card.returned_at),
        ("notifiedAt", card.notified_at),
    ];
    for (name, at) in optional {
        if let Some(at) = at {
            raw.insert(name.into(), ts(at));
        }
    }
    if let Some(by) = &card.redeemed_by {
        raw.insert("redeemedBy".into(), s(by.as_str()));
    }
    let changed = [card.redeemed_at, card.returned_at]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(card.issued_at);
    raw.insert("updatedAt".into(), ts(changed));
    if card.owes_event() {
        raw.insert("notifyPending".into(), s(NOTIFY_PENDING));
    }
    raw
}

fn code_item(record: &CodeRecord) -> Item {
    let mut raw = super::codes::code_item(&record.code);
    if record.returned {
        raw.insert("returned".into(), n(1));
    }
    raw
}

fn batch_item(record: &BatchRecord) -> Item {
    let mut raw = item([
        ("variantId", s(record.variant_id.as_str())),
        ("batchRef", s(record.batch_ref.as_str())),
        ("fingerprint", s(&record.fingerprint)),
        ("state", s(super::codes::DONE)),
        ("report", s(&record.report)),
        ("counted", n(record.stored as i64)),
        ("importedAt", ts(record.imported_at)),
    ]);
    if let Some(at) = record.voided_at {
        raw.insert("voidedAt".into(), ts(at));
    }
    raw
}

fn key_item(record: &KeyRecord) -> Item {
    let mut raw = super::idempotency::scope_key(&record.scope);
    raw.extend(item([
        ("fingerprint", s(&record.key.fingerprint)),
        ("createdAt", ts(record.created_at)),
        ("expiresAt", epoch(record.key.expires_at)),
    ]));
    match &record.key.state {
        StoredKeyState::InProgress { token, lease_until } => raw.extend(item([
            ("state", s("IN_PROGRESS")),
            ("token", s(token)),
            ("leaseUntil", ts(*lease_until)),
        ])),
        StoredKeyState::Done(outcome) => raw.extend(item([
            ("state", s("DONE")),
            ("outcome", super::idempotency::outcome_value(outcome)),
        ])),
    }
    raw
}

fn reveal_item(record: &RevealRecord) -> Item {
    let audit = &record.audit;
    item([
        ("subjectId", s(audit.gift_card_id.as_str())),
        (
            "auditId",
            // The source's serial in place of the fresh ULID a reveal gets: the same reveal
            // copied twice is one entry.
            s(format!(
                "{REVEAL_PREFIX}{}#M{:019}",
                format_ts(audit.revealed_at),
                record.serial
            )),
        ),
        ("kind", s("GIFT_CARD_REVEAL")),
        ("userId", s(audit.user_id.as_str())),
        ("orderId", s(audit.order_id.as_str())),
        ("at", ts(audit.revealed_at)),
    ])
}

fn audit_item(entry: &AuditEntry) -> Item {
    item([
        ("subjectId", s(super::audit::day_key(entry.at.date_naive()))),
        ("auditId", s(entry.id.as_str())),
        ("at", ts(entry.at)),
        ("body", s(entry.to_json())),
    ])
}

/// A day's figures as one item of the first shard: on the stage the day's later writes add to
/// their own shards, and a report sums the shards.
fn figures_item(day: chrono::NaiveDate, figures: &DayFigures) -> Item {
    let mut raw = item([
        ("shard", super::reports::shard_key(0)),
        ("day", s(day.to_string())),
    ]);
    for (counter, value) in figures.counters() {
        raw.insert(counter, n(value));
    }
    raw
}

/// An event as the stage's feed holds it (see `feed.rs`): the guard of its id, its place in
/// its order's sequence, and its position in its user's feed and in the feed of all events —
/// the source's position in both, so every cursor handed out on the source still reads on.
fn feed_items(table: &str, feed: &FeedRecord) -> Vec<(String, Item, &'static str)> {
    let event = &feed.event;
    let body = || {
        item([
            ("body", s(event.to_json())),
            ("recordedAt", ts(feed.recorded_at)),
        ])
    };
    let entry = |key: String, position: u64, with_body: bool| {
        let mut raw = item([
            ("feedKey", s(key)),
            ("position", s(super::feed::position(position))),
        ]);
        if with_body {
            raw.extend(body());
        }
        (table.to_string(), raw, "feedKey")
    };
    vec![
        entry(format!("event#{}", event.event_id()), 0, true),
        entry(
            format!("order#{}", event.order_id()),
            event.sequence(),
            false,
        ),
        entry(format!("user#{}", event.user_id()), feed.position, true),
        entry("all".to_string(), feed.position, true),
    ]
}

impl DynamoStore {
    /// The items of one record: (table, item, the key attribute that must be absent).
    fn record_items(&self, record: &Record) -> Result<Vec<(String, Item, &'static str)>> {
        let t = &self.tables;
        Ok(match record {
            Record::Account(account) => account_items(self, account)?,
            Record::Ledger(LedgerRecord {
                transaction,
                position,
            }) => {
                let entry = self.transaction_record(transaction, *position)?;
                let raw = entry
                    .put
                    .map(|p| p.item)
                    .ok_or_else(|| Error::internal("a ledger record is a put"))?;
                vec![(t.wallet_transactions.clone(), raw, "transactionId")]
            }
            // With the marker of a seeded catalogue: the stage has its catalogue, and a later
            // `aws bootstrap` must not add the demo one to it.
            Record::Product(product) => vec![
                (
                    t.products.clone(),
                    super::catalogue::product_item(product),
                    "productId",
                ),
                (
                    t.products.clone(),
                    super::catalogue::seeded_marker(),
                    "productId",
                ),
            ],
            Record::Variant(variant) => vec![(
                t.product_variants.clone(),
                super::catalogue::variant_item(variant),
                "variantId",
            )],
            Record::CodeBatch(batch) => {
                vec![(t.code_batches.clone(), batch_item(batch), "batchRef")]
            }
            Record::Code(code) => vec![(t.inventory_codes.clone(), code_item(code), "codeHash")],
            Record::Order(order) => order_items(self, order),
            Record::Card(card) => vec![(t.gift_cards.clone(), card_items(card), "giftCardId")],
            Record::Reveal(reveal) => vec![(t.audit.clone(), reveal_item(reveal), "auditId")],
            Record::IdempotencyKey(key) => {
                vec![(t.idempotency_keys.clone(), key_item(key), "scopeKey")]
            }
            Record::ApiKey(key) => {
                let mut raw = super::api_keys::key_item(key);
                if let Some(at) = key.last_used_at {
                    raw.insert("lastUsedAt".into(), ts(at));
                }
                if let Some(at) = key.revoked_at {
                    raw.insert("revokedAt".into(), ts(at));
                }
                vec![(t.api_keys.clone(), raw, "keyId")]
            }
            Record::Webhook(endpoint) => vec![(
                t.webhooks.clone(),
                super::webhooks::endpoint_item(endpoint)?,
                "itemKey",
            )],
            Record::Audit(entry) => vec![(t.audit.clone(), audit_item(entry), "auditId")],
            Record::FeedEvent(feed) => feed_items(&t.events, feed),
            Record::Figures(day, figures) => {
                vec![(t.daily_figures.clone(), figures_item(*day, figures), "day")]
            }
        })
    }

    /// Puts one item unless its key is there: true when written now.
    async fn put_if_absent(&self, table: &str, raw: &Item, key: &str) -> Result<bool> {
        let written = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(raw.clone()))
            .condition_expression(format!("attribute_not_exists(#{key})"))
            .expression_attribute_names(format!("#{key}"), key)
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(error) => super::store::lost_race_or_error(error).map_or(Ok(false), Err),
        }
    }

    /// Every item of a table, whole.
    async fn scan_whole(&self, table: &str) -> Result<Vec<Item>> {
        let request = self.client.scan().table_name(table).consistent_read(true);
        Ok(all_pages!(request.clone()))
    }

    async fn scan(&self, table: &str, projection: &str) -> Result<Vec<Item>> {
        let request = self
            .client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .projection_expression(projection)
            .set_expression_attribute_names(super::store::names_of(&[projection]));
        Ok(all_pages!(request.clone()))
    }
}

/// A number the item builders above wrote as text, read back.
fn parsed<T: std::str::FromStr>(text: &str, what: &str) -> Result<T> {
    text.parse()
        .map_err(|_| Error::internal(format!("a migrated {what} does not parse")))
}

impl DynamoStore {
    /// The records of a part, decoded from the stage's items by the adapters' own decoders
    /// (what the stage will read), for the digest the move compares with its source.
    async fn read_back(&self, part: Part) -> Result<Vec<Record>> {
        let t = &self.tables;
        let records = match part {
            Part::Users => self
                .scan_whole(&t.users)
                .await?
                .iter()
                .filter(|raw| !starts_with(raw, "userId", "EMAIL#"))
                .map(|raw| {
                    let a = Attrs::new(raw, "users");
                    Ok(Record::Account(Box::new(AccountRecord {
                        credentials: UserCredentials {
                            user: super::users::user_from(raw)?,
                            password_hash: a.s("passwordHash")?.to_string(),
                        },
                        wallet_movements: a.opt_n("walletSequence")?.unwrap_or(0),
                    })))
                })
                .collect::<Result<_>>()?,
            Part::Ledger => self
                .scan_whole(&t.wallet_transactions)
                .await?
                .iter()
                .map(|raw| {
                    Ok(Record::Ledger(LedgerRecord {
                        transaction: super::wallet::transaction_from(raw)?,
                        position: Attrs::new(raw, "wallet-transactions").n("sequence")?,
                    }))
                })
                .collect::<Result<_>>()?,
            Part::Products => self
                .scan_whole(&t.products)
                .await?
                .iter()
                .filter(|raw| !starts_with(raw, "productId", "CATALOGUE#"))
                .map(|raw| {
                    Ok(Record::Product(Box::new(super::catalogue::product_from(
                        raw,
                    )?)))
                })
                .collect::<Result<_>>()?,
            Part::Variants => self
                .scan_whole(&t.product_variants)
                .await?
                .iter()
                .map(|raw| {
                    Ok(Record::Variant(Box::new(super::catalogue::variant_from(
                        raw,
                    )?)))
                })
                .collect::<Result<_>>()?,
            Part::CodeBatches => {
                let products: BTreeMap<String, String> = self
                    .scan(&t.product_variants, "#productId, #variantId")
                    .await?
                    .iter()
                    .map(|raw| {
                        let a = Attrs::new(raw, "product-variants");
                        Ok((a.s("variantId")?.to_string(), a.s("productId")?.to_string()))
                    })
                    .collect::<Result<_>>()?;
                self.scan_whole(&t.code_batches)
                    .await?
                    .iter()
                    .map(|raw| {
                        let a = Attrs::new(raw, "code-batches");
                        let variant = a.s("variantId")?;
                        let product = products
                            .get(variant)
                            .ok_or_else(|| Error::internal("a batch of an unknown variant"))?;
                        Ok(Record::CodeBatch(BatchRecord {
                            variant_id: VariantId::parse(variant)?,
                            product_id: ProductId::parse(product)?,
                            batch_ref: a.parsed("batchRef", |r| BatchRef::parse(r).ok())?,
                            fingerprint: a.s("fingerprint")?.to_string(),
                            report: a.s("report")?.to_string(),
                            stored: a.opt_n("counted")?.unwrap_or(0).unsigned_abs(),
                            imported_at: a.ts("importedAt")?,
                            voided_at: a.opt_ts("voidedAt")?,
                        }))
                    })
                    .collect::<Result<_>>()?
            }
            Part::Codes => self
                .scan_whole(&t.inventory_codes)
                .await?
                .iter()
                .map(|raw| {
                    Ok(Record::Code(Box::new(CodeRecord {
                        code: super::codes::code_from(raw)?,
                        returned: Attrs::new(raw, "inventory-codes").opt_n("returned")? == Some(1),
                    })))
                })
                .collect::<Result<_>>()?,
            Part::Orders => self
                .scan_whole(&t.orders)
                .await?
                .iter()
                .map(|raw| Ok(Record::Order(Box::new(super::orders::order_from(raw)?))))
                .collect::<Result<_>>()?,
            Part::Cards => self
                .scan_whole(&t.gift_cards)
                .await?
                .iter()
                .map(|raw| Ok(Record::Card(Box::new(super::cards::card_from(raw)?))))
                .collect::<Result<_>>()?,
            Part::Reveals => self
                .scan_whole(&t.audit)
                .await?
                .iter()
                .filter(|raw| starts_with(raw, "auditId", REVEAL_PREFIX))
                .map(|raw| {
                    let a = Attrs::new(raw, "audit");
                    let serial = a
                        .s("auditId")?
                        .rsplit_once("#M")
                        .map(|(_, serial)| serial)
                        .ok_or_else(|| Error::internal("a reveal the move did not write"))?;
                    Ok(Record::Reveal(RevealRecord {
                        serial: parsed(serial, "reveal serial")?,
                        audit: RevealAudit {
                            gift_card_id: GiftCardId::parse(a.s("subjectId")?)?,
                            order_id: OrderId::parse(a.s("orderId")?)?,
                            user_id: UserId::parse(a.s("userId")?)?,
                            revealed_at: a.ts("at")?,
                        },
                    }))
                })
                .collect::<Result<_>>()?,
            Part::IdempotencyKeys => {
                self.scan_whole(&t.idempotency_keys)
                    .await?
                    .iter()
                    .filter(|raw| !starts_with(raw, "scopeKey", "orderRef#"))
                    .map(|raw| {
                        let a = Attrs::new(raw, "idempotency-keys");
                        let (user, key) = a.s("scopeKey")?.split_once('#').ok_or_else(|| {
                            Error::internal("an idempotency scope without a user")
                        })?;
                        Ok(Record::IdempotencyKey(KeyRecord {
                            scope: IdempotencyScope {
                                user_id: UserId::parse(user)?,
                                key: IdempotencyKey::parse(key)?,
                            },
                            key: super::idempotency::stored_key(raw)?,
                            created_at: a.ts("createdAt")?,
                        }))
                    })
                    .collect::<Result<_>>()?
            }
            Part::ApiKeys => self
                .scan_whole(&t.api_keys)
                .await?
                .iter()
                .map(|raw| Ok(Record::ApiKey(Box::new(super::api_keys::key_from(raw)?))))
                .collect::<Result<_>>()?,
            Part::Webhooks => self
                .scan_whole(&t.webhooks)
                .await?
                .iter()
                .filter(|raw| {
                    raw.get("scope")
                        .and_then(|v| v.as_s().ok())
                        .map(String::as_str)
                        == Some("endpoints")
                })
                .map(|raw| Ok(Record::Webhook(Box::new(super::webhooks::from_item(raw)?))))
                .collect::<Result<_>>()?,
            Part::Audit => self
                .scan_whole(&t.audit)
                .await?
                .iter()
                .filter(|raw| starts_with(raw, "subjectId", "LOG#"))
                .map(|raw| {
                    Ok(Record::Audit(Box::new(AuditEntry::from_json(
                        Attrs::new(raw, "audit").s("body")?,
                    )?)))
                })
                .collect::<Result<_>>()?,
            Part::Figures => {
                let mut days: BTreeMap<NaiveDate, DayFigures> = BTreeMap::new();
                for raw in self.scan_whole(&t.daily_figures).await? {
                    let a = Attrs::new(&raw, "daily-figures");
                    let day: NaiveDate = parsed(a.s("day")?, "figures day")?;
                    let mut counters = Vec::new();
                    for name in raw
                        .keys()
                        .filter(|k| !matches!(k.as_str(), "shard" | "day"))
                    {
                        counters.push((name.as_str(), a.n(name)?));
                    }
                    days.entry(day)
                        .or_default()
                        .add(&DayFigures::from_counters(counters)?)?;
                }
                days.into_iter()
                    .map(|(day, figures)| Record::Figures(day, Box::new(figures)))
                    .collect()
            }
            Part::Events => self
                .scan_whole(&t.events)
                .await?
                .iter()
                .filter(|raw| starts_with(raw, "feedKey", "all"))
                .map(|raw| {
                    let a = Attrs::new(raw, "events");
                    Ok(Record::FeedEvent(Box::new(FeedRecord {
                        event: Event::from_json(a.s("body")?)?,
                        position: parsed(a.s("position")?, "feed position")?,
                        recorded_at: a.ts("recordedAt")?,
                    })))
                })
                .collect::<Result<_>>()?,
        };
        Ok(records)
    }
}

fn starts_with(raw: &Item, name: &str, prefix: &str) -> bool {
    raw.get(name)
        .and_then(|v| v.as_s().ok())
        .is_some_and(|v| v.starts_with(prefix))
}

#[async_trait]
impl MigrationTarget for DynamoStore {
    /// The users table's ARN and creation time: tables made again under the same names are
    /// other tables.
    async fn identity(&self) -> Result<String> {
        let table = self
            .client
            .describe_table()
            .table_name(&self.tables.users)
            .send()
            .await
            .map_err(sdk_error)?
            .table
            .ok_or_else(|| Error::internal("DescribeTable answered no table"))?;
        Ok(format!(
            "{} created {}",
            table.table_arn.as_deref().unwrap_or(&self.tables.users),
            table
                .creation_date_time
                .map_or_else(|| "at an unknown time".to_string(), |at| at.to_string())
        ))
    }

    async fn records(&self, part: Part, live_at: DateTime<Utc>) -> Result<Vec<Record>> {
        let mut records = self.read_back(part).await?;
        records.retain(|record| match record {
            Record::IdempotencyKey(key) => key.key.expires_at > live_at,
            _ => true,
        });
        Ok(records)
    }

    async fn import(&self, records: &[Record]) -> Result<Imported> {
        let mut items = Vec::new();
        for (index, record) in records.iter().enumerate() {
            items.extend(self.record_items(record)?.into_iter().map(|i| (index, i)));
        }
        let outcomes: Vec<(usize, Result<bool>)> = futures_util::stream::iter(0..items.len())
            .map(|i| {
                let (record, (table, raw, key)) = &items[i];
                async move { (*record, self.put_if_absent(table, raw, key).await) }
            })
            .buffer_unordered(PUTS_IN_FLIGHT)
            .collect()
            .await;
        let mut written = vec![false; records.len()];
        for (record, outcome) in outcomes {
            written[record] |= outcome?;
        }
        let copied = written.iter().filter(|w| **w).count() as u64;
        Ok(Imported {
            copied,
            present: records.len() as u64 - copied,
        })
    }
}
