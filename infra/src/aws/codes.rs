//! The sealed pool of brand codes on DynamoDB. A code's item is keyed by the keyed HMAC of
//! its number, so a conditional put is the whole duplicate check; every state change of a code
//! moves its variant's stock in the same transaction.

use super::catalogue::variant_key;
use super::store::{DynamoStore, Transaction, TxFailure, all_pages, put, update};
use crate::aws::item::{Attrs, Item, item, n, s, sdk_error, ts};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use giftify_shared::Missing;
use giftify_shared::codes::{
    BatchRef, BatchSummary, CodeImport, CodeState, ImportReport, InventoryCode,
};
use giftify_shared::ids::{GiftCardId, ProductId, VariantId};
use giftify_shared::ports::CodeInventory;
use giftify_shared::vault::{GiftCard, SealedCard};
use giftify_shared::{Error, Result};
use std::collections::HashSet;

const AVAILABLE_INDEX: &str = "availableVariant-availableOrder-index";
const BATCH_INDEX: &str = "batchKey-codeId-index";

/// Codes per import transaction: with the stock update, inside DynamoDB's 100 items.
const CODES_PER_TRANSACTION: usize = 99;

/// A batch still being written (a crash or a concurrent import may leave it so; sending it
/// again finishes it) or done, with its report.
const IMPORTING: &str = "IMPORTING";
const DONE: &str = "DONE";

fn batch_key(variant: &VariantId, batch: &BatchRef) -> String {
    format!("{variant}#{batch}")
}

/// Sorts a pool first-expiring first; codes without expiry last.
fn available_order(code: &InventoryCode) -> String {
    format!("{}#{}", code.expiry_order(), code.id)
}

fn code_item(code: &InventoryCode) -> Item {
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

fn code_from(raw: &Item) -> Result<InventoryCode> {
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

/// Why an import transaction was refused: a code's number is held (by the code at this index
/// of the chunk), or the variant is gone.
enum ImportRefusal {
    Held(usize),
    NoVariant,
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

    /// Whether the code item holding this number belongs to this batch (an earlier, unfinished
    /// send of the same import stored it).
    async fn held_by_batch(&self, code: &InventoryCode) -> Result<bool> {
        let held = self
            .get(
                &self.tables.inventory_codes,
                item([("codeHash", s(&code.sealed.lookup_key))]),
            )
            .await?;
        Ok(held.is_some_and(|raw| {
            Attrs::new(&raw, "inventory-codes")
                .s("batchKey")
                .is_ok_and(|key| key == batch_key(&code.variant_id, &code.batch_ref))
        }))
    }

    /// Stores one chunk: each code whose number is free, with the stock they add, atomically.
    /// Returns the rows of the codes held by another batch.
    async fn import_chunk(&self, import: &CodeImport, chunk: &[InventoryCode]) -> Result<Vec<u32>> {
        let mut pending: Vec<&InventoryCode> = chunk.iter().collect();
        let mut held = Vec::new();
        while !pending.is_empty() {
            let mut transaction = Transaction::new();
            for (index, code) in pending.iter().enumerate() {
                transaction.push(
                    put(
                        &self.tables.inventory_codes,
                        code_item(code),
                        Some("attribute_not_exists(codeHash)"),
                        Item::new(),
                    )?,
                    ImportRefusal::Held(index),
                );
            }
            transaction.push(
                update(
                    &self.tables.product_variants,
                    variant_key(&import.product_id, &import.variant_id),
                    "SET #stockQuantity = #stockQuantity + :n",
                    Some("attribute_exists(#stockQuantity)"),
                    item([(":n", n(pending.len() as i64))]),
                )?,
                ImportRefusal::NoVariant,
            );
            match self.commit(transaction).await {
                Ok(()) => break,
                Err(TxFailure::Refused(ImportRefusal::Held(index))) => {
                    let code = pending.remove(index);
                    if !self.held_by_batch(code).await? {
                        held.push(code.row);
                    }
                }
                Err(TxFailure::Refused(ImportRefusal::NoVariant)) => {
                    return Err(Error::NotFound(Missing::Variant));
                }
                Err(TxFailure::Failed(error)) => return Err(error),
            }
        }
        Ok(held)
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
        match self.batch_item(variant, &import.batch_ref).await? {
            Some(raw) if Attrs::new(&raw, "code-batches").s("state")? == DONE => {
                let report = Attrs::new(&raw, "code-batches").s("report")?;
                return serde_json::from_str(report)
                    .map_err(|_| Error::internal("corrupt import report in code-batches"));
            }
            Some(_) => {} // unfinished: this send finishes it
            None => {
                let created = self
                    .client
                    .put_item()
                    .table_name(&self.tables.code_batches)
                    .set_item(Some(item([
                        ("variantId", s(variant.as_str())),
                        ("batchRef", s(import.batch_ref.as_str())),
                        ("state", s(IMPORTING)),
                        ("importedAt", ts(import.now)),
                    ])))
                    .condition_expression("attribute_not_exists(batchRef)")
                    .send()
                    .await;
                if let Err(error) = created {
                    // A concurrent send created it: both finish it, each code once.
                    if let Some(error) = super::store::lost_race_or_error(error) {
                        return Err(error);
                    }
                }
            }
        }
        let mut held = Vec::new();
        for chunk in import.codes.chunks(CODES_PER_TRANSACTION) {
            held.extend(self.import_chunk(import, chunk).await?);
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
        for chunk in available.chunks(CODES_PER_TRANSACTION) {
            let mut pending: Vec<&String> = chunk.iter().collect();
            while !pending.is_empty() {
                let mut transaction = Transaction::new();
                for (index, hash) in pending.iter().enumerate() {
                    transaction.push(
                        update(
                            &self.tables.inventory_codes,
                            item([("codeHash", s(hash.as_str()))]),
                            "SET #state = :voided, #changedAt = :now \
                             REMOVE #availableVariant, #availableOrder",
                            Some("#state = :available"),
                            item([
                                (":voided", s(CodeState::Voided.as_str())),
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
                        variant_key(&product, variant),
                        "SET #stockQuantity = #stockQuantity - :n",
                        Some("#stockQuantity >= :n"),
                        item([(":n", n(pending.len() as i64))]),
                    )?,
                    None,
                );
                match self.commit(transaction).await {
                    Ok(()) => break,
                    // Allocated meanwhile: it stays with its card.
                    Err(TxFailure::Refused(Some(index))) => {
                        pending.remove(index);
                    }
                    Err(TxFailure::Refused(None)) => {
                        return Err(Error::internal(
                            "a variant's stock fell out of step with its codes",
                        ));
                    }
                    Err(TxFailure::Failed(error)) => return Err(error),
                }
            }
        }
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

    async fn allocatable_codes(
        &self,
        variant: &VariantId,
        valid_through: NaiveDate,
        limit: u32,
    ) -> Result<Vec<InventoryCode>> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.inventory_codes)
            .index_name(AVAILABLE_INDEX)
            .key_condition_expression("#availableVariant = :v AND #availableOrder >= :from")
            .set_expression_attribute_names(super::store::names_of(&[
                "#availableVariant #availableOrder",
            ]))
            .expression_attribute_values(":v", s(variant.as_str()))
            .expression_attribute_values(":from", s(valid_through.to_string()))
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
