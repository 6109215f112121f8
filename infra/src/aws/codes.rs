//! The sealed pool of brand codes on DynamoDB. A code's item is keyed by the keyed HMAC of
//! its number, so a conditional put is the whole duplicate check; every state change of a code
//! moves its variant's stock in the same transaction.

use super::catalogue::variant_key;
use super::store::{DynamoStore, Transaction, TxFailure, all_pages, names_of, retrying, update};
use crate::aws::item::{Attrs, Item, b, item, n, s, sdk_error, ts};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use giftify_shared::Missing;
use giftify_shared::card_life::ReturnedCode;
use giftify_shared::codes::{
    BatchRef, BatchSummary, CodeImport, CodeState, FulfillmentSource, ImportReport, InventoryCode,
};
use giftify_shared::ids::{GiftCardId, ProductId, VariantId};
use giftify_shared::ports::CodeInventory;
use giftify_shared::vault::{GiftCard, SealedCard};
use giftify_shared::{Error, Result};
use std::collections::HashSet;

const AVAILABLE_INDEX: &str = "availableVariant-availableOrder-index";
const BATCH_INDEX: &str = "batchKey-codeId-index";

/// Codes per void transaction: with the stock update, inside DynamoDB's 100 items.
const CODES_PER_TRANSACTION: usize = 99;

/// Codes an import stores before it counts them into the stock. A code is stored by its own
/// conditional put rather than in a transaction: a transaction item is all a duplicate check
/// needs, and single puts keep a 10,000-code import within one API request (and linear on
/// the emulator, whose transactions copy each table they touch once per item).
const CODES_PER_COUNT: usize = 500;

/// Conditional puts of one import in flight at once.
const PUTS_IN_FLIGHT: usize = 16;

/// A batch still being written (a crash or a concurrent import may leave it so; sending it
/// again finishes it) or done, with its report.
const IMPORTING: &str = "IMPORTING";
pub(super) const DONE: &str = "DONE";

pub(super) fn batch_key(variant: &VariantId, batch: &BatchRef) -> String {
    format!("{variant}#{batch}")
}

/// Sorts a pool first-expiring first; codes without expiry last.
fn available_order(code: &InventoryCode) -> String {
    format!("{}#{}", code.expiry_order(), code.id)
}

pub(super) fn code_item(code: &InventoryCode) -> Item {
    let mut raw = item([
        ("codeHash", s(&code.sealed.lookup_key)),
        ("codeId", s(code.id.as_str())),
        ("variantId", s(code.variant_id.as_str())),
        ("productId", s(code.product_id.as_str())),
        ("batchRef", s(code.batch_ref.as_str())),
        ("batchKey", s(batch_key(&code.variant_id, &code.batch_ref))),
        ("number", s(&code.sealed.number_ciphertext)),
        ("pin", s(&code.sealed.pin_ciphertext)),
        ("last4", s(&code.sealed.last4)),
        ("state", s(code.state.as_str())),
        ("rowNumber", n(i64::from(code.row))),
        ("importedAt", ts(code.imported_at)),
    ]);
    if let Some(expiry) = code.expiry_date {
        raw.insert("expiryDate".into(), s(expiry.to_string()));
    }
    if code.state == CodeState::Available {
        raw.insert("availableVariant".into(), s(code.variant_id.as_str()));
        raw.insert("availableOrder".into(), s(available_order(code)));
    }
    raw
}

pub(super) fn code_from(raw: &Item) -> Result<InventoryCode> {
    let a = Attrs::new(raw, "inventory-codes");
    Ok(InventoryCode {
        id: GiftCardId::parse(a.s("codeId")?)?,
        variant_id: VariantId::parse(a.s("variantId")?)?,
        product_id: ProductId::parse(a.s("productId")?)?,
        batch_ref: a.parsed("batchRef", |r| BatchRef::parse(r).ok())?,
        sealed: SealedCard {
            number_ciphertext: a.s("number")?.to_string(),
            pin_ciphertext: a.s("pin")?.to_string(),
            lookup_key: a.s("codeHash")?.to_string(),
            last4: a.s("last4")?.to_string(),
        },
        expiry_date: expiry_of(&a)?,
        state: a.parsed("state", CodeState::parse)?,
        imported_at: a.ts("importedAt")?,
        row: a.u32("rowNumber")?,
    })
}

fn expiry_of(a: &Attrs<'_>) -> Result<Option<NaiveDate>> {
    a.opt_s("expiryDate")?
        .map(|d| {
            d.parse::<NaiveDate>()
                .map_err(|_| Error::internal("corrupt expiry date in inventory-codes"))
        })
        .transpose()
}

/// The transaction item that allocates a card's code: available → allocated, out of the pool
/// index, on the condition that it is still available.
pub(super) fn allocation(
    store: &DynamoStore,
    card: &GiftCard,
) -> Result<aws_sdk_dynamodb::types::TransactWriteItem> {
    update(
        &store.tables.inventory_codes,
        item([("codeHash", s(&card.sealed.lookup_key))]),
        "SET #state = :allocated, #changedAt = :now REMOVE #availableVariant, #availableOrder",
        Some("#state = :available AND #codeId = :id"),
        item([
            (":allocated", s(CodeState::Allocated.as_str())),
            (":available", s(CodeState::Available.as_str())),
            (":id", s(card.id.as_str())),
            (":now", ts(card.issued_at)),
        ]),
    )
}

impl DynamoStore {
    /// Fixes the variant's source before its first code is stored, on the condition that it
    /// still takes codes: a source change that won the race refuses the import, and one that
    /// comes after finds the variant locked.
    async fn lock_source_for_codes(&self, import: &CodeImport) -> Result<()> {
        let lock = |expression: &str, condition: &str, values: Item| {
            self.client
                .update_item()
                .table_name(&self.tables.product_variants)
                .set_key(Some(variant_key(&import.product_id, &import.variant_id)))
                .update_expression(expression)
                .condition_expression(condition)
                .set_expression_attribute_names(names_of(&[expression, condition]))
                .set_expression_attribute_values(Some(values))
                .send()
        };
        let inventory = || s(FulfillmentSource::Inventory.as_str());
        let taken = |result: std::result::Result<_, _>| match result {
            Ok(_) => Ok(true),
            Err(error) => super::store::lost_race_or_error(error).map_or(Ok(false), Err),
        };
        if taken(
            lock(
                "SET #sourceLocked = :locked",
                "#fulfillmentSource = :inventory",
                item([(":locked", b(true)), (":inventory", inventory())]),
            )
            .await,
        )? {
            return Ok(());
        }
        // A variant written before sources existed, which the core read as a brand's: its
        // source is written, and its stock, which counted minted cards, starts from the codes.
        if taken(
            lock(
                "SET #sourceLocked = :locked, #fulfillmentSource = :inventory, \
                 #stockQuantity = :none",
                "attribute_not_exists(#fulfillmentSource)",
                item([
                    (":locked", b(true)),
                    (":inventory", inventory()),
                    (":none", n(0)),
                ]),
            )
            .await,
        )? {
            return Ok(());
        }
        Err(giftify_shared::codes::source_changed())
    }

    /// Adds to `transaction` what returns a card's brand code: under its new id and sealing,
    /// marked returned, available in the pool index at its place — on the conditions that it
    /// is the card's allocated code and that its batch is not voided — or, when the batch was
    /// voided, withdrawn. True when the code is back in the pool (its stock unit is the
    /// caller's to add).
    pub(super) async fn code_back_to_pool(
        &self,
        transaction: &mut Transaction,
        card: &GiftCard,
        returned: &ReturnedCode,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let key = item([("codeHash", s(&card.sealed.lookup_key))]);
        let raw = self
            .get(&self.tables.inventory_codes, key.clone())
            .await?
            .ok_or_else(|| Error::internal("a returned brand card has no code"))?;
        let mut code = code_from(&raw)?;
        code.id = returned.id.clone();
        let batch = item([
            ("variantId", s(code.variant_id.as_str())),
            ("batchRef", s(code.batch_ref.as_str())),
        ]);
        let voided = self
            .get(&self.tables.code_batches, batch.clone())
            .await?
            .is_some_and(|raw| raw.contains_key("voidedAt"));
        let (expression, state) = if voided {
            (
                "SET #state = :state, #returned = :one, #changedAt = :now, #codeId = :newId, \
                 #number = :number, #pin = :pin",
                CodeState::Voided,
            )
        } else {
            (
                "SET #state = :state, #returned = :one, #changedAt = :now, #codeId = :newId, \
                 #number = :number, #pin = :pin, #availableVariant = :variant, \
                 #availableOrder = :order",
                CodeState::Available,
            )
        };
        let mut values = item([
            (":state", s(state.as_str())),
            (":allocated", s(CodeState::Allocated.as_str())),
            (":one", n(1)),
            (":now", ts(now)),
            (":newId", s(returned.id.as_str())),
            (":number", s(&returned.sealed.number_ciphertext)),
            (":pin", s(&returned.sealed.pin_ciphertext)),
            (":id", s(card.id.as_str())),
        ]);
        if !voided {
            values.insert(":variant".into(), s(code.variant_id.as_str()));
            values.insert(":order".into(), s(available_order(&code)));
        }
        transaction.push(
            update(
                &self.tables.inventory_codes,
                key,
                expression,
                Some("#state = :allocated AND #codeId = :id"),
                values,
            )?,
            Error::internal("a returned brand card has no allocated code"),
        );
        if !voided {
            transaction.push(
                super::store::check(
                    &self.tables.code_batches,
                    batch,
                    "attribute_not_exists(#voidedAt)",
                    Item::new(),
                )?,
                // Voided meanwhile: read again, and the code is withdrawn instead.
                Error::Conflict("the code's batch was voided while the card was returned"),
            );
        }
        Ok(!voided)
    }
}

/// What storing one code found.
enum Stored {
    /// Put now, or by an earlier or concurrent send of the same batch.
    ByThisBatch,
    /// The number is held by another batch: the code's row.
    Held(u32),
}

impl DynamoStore {
    async fn batch_item(&self, variant: &VariantId, batch: &BatchRef) -> Result<Option<Item>> {
        self.get(
            &self.tables.code_batches,
            item([
                ("variantId", s(variant.as_str())),
                ("batchRef", s(batch.as_str())),
            ]),
        )
        .await
    }

    /// Puts one code unless its number is held; a number held by this same batch (an earlier,
    /// unfinished send of it) counts as stored.
    async fn store_code(&self, code: &InventoryCode) -> Result<Stored> {
        let put = self
            .client
            .put_item()
            .table_name(&self.tables.inventory_codes)
            .set_item(Some(code_item(code)))
            .condition_expression("attribute_not_exists(codeHash)")
            .send()
            .await;
        if let Err(error) = put {
            if let Some(error) = super::store::lost_race_or_error(error) {
                return Err(error);
            }
            let held = self
                .get(
                    &self.tables.inventory_codes,
                    item([("codeHash", s(&code.sealed.lookup_key))]),
                )
                .await?;
            let ours = held.is_some_and(|raw| {
                Attrs::new(&raw, "inventory-codes")
                    .s("batchKey")
                    .is_ok_and(|key| key == batch_key(&code.variant_id, &code.batch_ref))
            });
            if !ours {
                return Ok(Stored::Held(code.row));
            }
        }
        Ok(Stored::ByThisBatch)
    }

    /// Raises the variant's stock to count `stored` codes of the batch: by what the batch has
    /// not counted yet, together with its count, in one transaction conditional on the count
    /// read — so two sends of one batch, or a send after a crash, add each code once.
    async fn count_stored(&self, import: &CodeImport, stored: u64) -> Result<()> {
        retrying(|| async {
            let raw = self
                .batch_item(&import.variant_id, &import.batch_ref)
                .await?
                .ok_or_else(|| Error::internal("a batch vanished while importing"))?;
            let counted = Attrs::new(&raw, "code-batches").opt_n("counted")?.unwrap_or(0);
            let counted = u64::try_from(counted).map_err(Error::internal)?;
            if stored <= counted {
                return Ok(());
            }
            let mut transaction = Transaction::new();
            transaction.push(
                update(
                    &self.tables.product_variants,
                    variant_key(&import.product_id, &import.variant_id),
                    "SET #stockQuantity = #stockQuantity + :n",
                    Some("attribute_exists(#stockQuantity)"),
                    item([(":n", n((stored - counted) as i64))]),
                )?,
                Error::NotFound(Missing::Variant),
            );
            transaction.push(
                update(
                    &self.tables.code_batches,
                    item([
                        ("variantId", s(import.variant_id.as_str())),
                        ("batchRef", s(import.batch_ref.as_str())),
                    ]),
                    "SET #counted = :stored",
                    Some("#counted = :counted OR (attribute_not_exists(#counted) AND :counted = :zero)"),
                    item([
                        (":stored", n(stored as i64)),
                        (":counted", n(counted as i64)),
                        (":zero", n(0)),
                    ]),
                )?,
                Error::Conflict("another send of the batch counted meanwhile"),
            );
            self.commit(transaction).await.map_err(TxFailure::into_error)
        })
        .await
    }

    /// Moves these available codes (by hash) out of the pool to `to` and lowers the variant's
    /// stock by as many, per transaction of up to 99 codes; a code that left the pool meanwhile
    /// (allocated) is skipped. Returns how many moved.
    async fn withdraw(
        &self,
        product: &ProductId,
        variant: &VariantId,
        hashes: &[String],
        to: CodeState,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut moved = 0u64;
        for chunk in hashes.chunks(CODES_PER_TRANSACTION) {
            let mut pending: Vec<&String> = chunk.iter().collect();
            while !pending.is_empty() {
                let mut transaction = Transaction::new();
                for (index, hash) in pending.iter().enumerate() {
                    transaction.push(
                        update(
                            &self.tables.inventory_codes,
                            item([("codeHash", s(hash.as_str()))]),
                            "SET #state = :to, #changedAt = :now \
                             REMOVE #availableVariant, #availableOrder",
                            Some("#state = :available"),
                            item([
                                (":to", s(to.as_str())),
                                (":available", s(CodeState::Available.as_str())),
                                (":now", ts(now)),
                            ]),
                        )?,
                        Some(index),
                    );
                }
                transaction.push(
                    update(
                        &self.tables.product_variants,
                        variant_key(product, variant),
                        "SET #stockQuantity = #stockQuantity - :n",
                        Some("#stockQuantity >= :n"),
                        item([(":n", n(pending.len() as i64))]),
                    )?,
                    None,
                );
                match self.commit(transaction).await {
                    Ok(()) => {
                        moved += pending.len() as u64;
                        break;
                    }
                    // Allocated meanwhile: it stays with its card.
                    Err(TxFailure::Refused(Some(index))) => {
                        pending.remove(index);
                    }
                    Err(TxFailure::Refused(None)) => {
                        return Err(Error::internal(
                            "a variant's stock fell out of step with its codes",
                        ));
                    }
                    // A concurrent transaction on these items: the same codes again.
                    Err(TxFailure::Failed(Error::Conflict(_))) => {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    Err(TxFailure::Failed(error)) => return Err(error),
                }
            }
        }
        Ok(moved)
    }

    /// The variant's available codes, first-expiring first, whose expiry order compares by
    /// `op` (`<`, `>=`) with `date`'s: a code without expiry sorts after every date.
    fn available_codes(
        &self,
        variant: &VariantId,
        op: &str,
        date: NaiveDate,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.tables.inventory_codes)
            .index_name(AVAILABLE_INDEX)
            .key_condition_expression(format!(
                "#availableVariant = :v AND #availableOrder {op} :date"
            ))
            .set_expression_attribute_names(names_of(&["#availableVariant #availableOrder"]))
            .expression_attribute_values(":v", s(variant.as_str()))
            .expression_attribute_values(":date", s(date.to_string()))
    }

    async fn batch_codes(&self, variant: &VariantId, batch: &BatchRef) -> Result<Vec<Item>> {
        Ok(all_pages!(
            self.client
                .query()
                .table_name(&self.tables.inventory_codes)
                .index_name(BATCH_INDEX)
                .key_condition_expression("#batchKey = :b")
                .set_expression_attribute_names(super::store::names_of(&["#batchKey"]))
                .expression_attribute_values(":b", s(batch_key(variant, batch)))
        ))
    }

    async fn summary(&self, variant: &VariantId, raw: &Item) -> Result<BatchSummary> {
        let a = Attrs::new(raw, "code-batches");
        let batch = a.parsed("batchRef", |r| BatchRef::parse(r).ok())?;
        let mut summary = BatchSummary::new(
            batch.clone(),
            variant.clone(),
            a.ts("importedAt")?,
            a.opt_ts("voidedAt")?,
        );
        for code in self.batch_codes(variant, &batch).await? {
            let c = Attrs::new(&code, "inventory-codes");
            summary.count(
                c.parsed("state", CodeState::parse)?,
                expiry_of(&c)?,
                c.opt_n("returned")?.is_some_and(|r| r == 1),
            );
        }
        Ok(summary)
    }
}

#[async_trait]
impl CodeInventory for DynamoStore {
    async fn import_codes(&self, import: &CodeImport) -> Result<ImportReport> {
        let variant = &import.variant_id;
        if self
            .products_of(std::slice::from_ref(variant))
            .await?
            .is_empty()
        {
            return Err(Error::NotFound(Missing::Variant));
        }
        self.lock_source_for_codes(import).await?;
        let existing = match self.batch_item(variant, &import.batch_ref).await? {
            Some(raw) => Some(raw),
            None => {
                let created = self
                    .client
                    .put_item()
                    .table_name(&self.tables.code_batches)
                    .set_item(Some(item([
                        ("variantId", s(variant.as_str())),
                        ("batchRef", s(import.batch_ref.as_str())),
                        ("fingerprint", s(&import.fingerprint)),
                        ("state", s(IMPORTING)),
                        ("importedAt", ts(import.now)),
                    ])))
                    .condition_expression("attribute_not_exists(batchRef)")
                    .send()
                    .await;
                match created {
                    Ok(_) => None,
                    // A concurrent send created it: read what it is.
                    Err(error) => match super::store::lost_race_or_error(error) {
                        Some(error) => return Err(error),
                        None => self.batch_item(variant, &import.batch_ref).await?,
                    },
                }
            }
        };
        if let Some(raw) = existing {
            let a = Attrs::new(&raw, "code-batches");
            // Other rows under the same reference are another import, never mixed in.
            if a.s("fingerprint")? != import.fingerprint {
                return Err(Error::IdempotencyKeyReused);
            }
            if a.s("state")? == DONE {
                return serde_json::from_str(a.s("report")?)
                    .map_err(|_| Error::internal("corrupt import report in code-batches"));
            }
            if a.opt_ts("voidedAt")?.is_some() {
                // Voided while unfinished: the recall stands, nothing more joins the pool.
                return Err(Error::validation(
                    "batchRef",
                    "this batch was voided before its import finished",
                ));
            }
            // Unfinished and the same rows: this send finishes it, each code once.
        }
        // One conditional put per code, a few in flight; after each part, the stock counts
        // what is stored. Until then the stock lags the pool, never leads it: no order is
        // accepted for a code that is not there.
        let mut held = Vec::new();
        let mut stored = 0u64;
        for part in import.codes.chunks(CODES_PER_COUNT) {
            let outcomes: Vec<Result<Stored>> = futures_util::stream::iter(0..part.len())
                .map(|i| self.store_code(&part[i]))
                .buffer_unordered(PUTS_IN_FLIGHT)
                .collect()
                .await;
            for outcome in outcomes {
                match outcome? {
                    Stored::ByThisBatch => stored += 1,
                    Stored::Held(row) => held.push(row),
                }
            }
            self.count_stored(import, stored).await?;
        }
        let report = import.report(&held);
        let json = serde_json::to_string(&report).map_err(Error::internal)?;
        self.client
            .update_item()
            .table_name(&self.tables.code_batches)
            .key("variantId", s(variant.as_str()))
            .key("batchRef", s(import.batch_ref.as_str()))
            .update_expression("SET #state = :done, #report = if_not_exists(#report, :report)")
            .set_expression_attribute_names(super::store::names_of(&["#state #report"]))
            .expression_attribute_values(":done", s(DONE))
            .expression_attribute_values(":report", s(json))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(report)
    }

    async fn code_batches(&self, variant: &VariantId) -> Result<Vec<BatchSummary>> {
        let batches = all_pages!(
            self.client
                .query()
                .table_name(&self.tables.code_batches)
                .key_condition_expression("#variantId = :v")
                .set_expression_attribute_names(super::store::names_of(&["#variantId"]))
                .expression_attribute_values(":v", s(variant.as_str()))
                .consistent_read(true)
        );
        let mut summaries = Vec::new();
        for raw in &batches {
            summaries.push(self.summary(variant, raw).await?);
        }
        summaries.sort_by(|a, b| (a.imported_at, &a.batch_ref).cmp(&(b.imported_at, &b.batch_ref)));
        Ok(summaries)
    }

    async fn void_batch(
        &self,
        variant: &VariantId,
        batch: &BatchRef,
        now: DateTime<Utc>,
    ) -> Result<BatchSummary> {
        let Some(raw) = self.batch_item(variant, batch).await? else {
            return Err(Error::NotFound(Missing::CodeBatch));
        };
        let product = self
            .products_of(std::slice::from_ref(variant))
            .await?
            .pop()
            .map(|(_, product)| product)
            .ok_or(Error::NotFound(Missing::Variant))?;
        let mut available = HashSet::new();
        for code in self.batch_codes(variant, batch).await? {
            let c = Attrs::new(&code, "inventory-codes");
            if c.parsed("state", CodeState::parse)? == CodeState::Available {
                available.insert(c.s("codeHash")?.to_string());
            }
        }
        let available: Vec<String> = available.into_iter().collect();
        self.withdraw(&product, variant, &available, CodeState::Voided, now)
            .await?;
        self.client
            .update_item()
            .table_name(&self.tables.code_batches)
            .key("variantId", s(variant.as_str()))
            .key("batchRef", s(batch.as_str()))
            .update_expression("SET #voidedAt = if_not_exists(#voidedAt, :now)")
            .set_expression_attribute_names(super::store::names_of(&["#voidedAt"]))
            .expression_attribute_values(":now", ts(now))
            .send()
            .await
            .map_err(sdk_error)?;
        let raw = self.batch_item(variant, batch).await?.unwrap_or(raw);
        self.summary(variant, &raw).await
    }

    async fn expire_codes(
        &self,
        variant: &VariantId,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        // "<expiry>#<id>" < "<today>" exactly when the expiry is before today.
        let due = all_pages!(self.available_codes(variant, "<", today));
        if due.is_empty() {
            return Ok(0);
        }
        let hashes = due
            .iter()
            .map(|raw| {
                Attrs::new(raw, "inventory-codes")
                    .s("codeHash")
                    .map(str::to_string)
            })
            .collect::<Result<Vec<_>>>()?;
        let product = self
            .products_of(std::slice::from_ref(variant))
            .await?
            .pop()
            .map(|(_, product)| product)
            .ok_or(Error::NotFound(Missing::Variant))?;
        self.withdraw(&product, variant, &hashes, CodeState::Expired, now)
            .await
    }

    async fn allocatable_codes(
        &self,
        variant: &VariantId,
        valid_through: NaiveDate,
        limit: u32,
    ) -> Result<Vec<InventoryCode>> {
        let output = self
            .available_codes(variant, ">=", valid_through)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk_error)?;
        output
            .items
            .unwrap_or_default()
            .iter()
            .map(code_from)
            .collect()
    }
}
