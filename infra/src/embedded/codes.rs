//! The sealed pool of brand codes. Every statement that changes a code's state changes the
//! variant's stock by the same amount in the same transaction, so stock equals the number of
//! available codes at every commit.

use super::SqliteStore;
use super::codec::{
    DbError, DbResult, all, count, day, enumeration, execute, id, one, opt_date, time, ts,
};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use giftify_shared::Missing;
use giftify_shared::card_life::ReturnedCode;
use giftify_shared::codes::{
    BatchRef, BatchSummary, CodeImport, CodeState, FulfillmentSource, ImportReport, InventoryCode,
};
use giftify_shared::ids::{GiftCardId, VariantId};
use giftify_shared::ports::CodeInventory;
use giftify_shared::vault::SealedCard;
use giftify_shared::{Error, Result};
use rusqlite::{Connection, OptionalExtension, Row, params};

pub(super) const CODE_COLUMNS: &str = "id, variant_id, product_id, batch_ref, number_ciphertext, \
     pin_ciphertext, lookup_key, last4, expiry_date, state, row_number, imported_at";

pub(super) fn code_from_row(row: &Row) -> DbResult<InventoryCode> {
    let batch: String = row.get("batch_ref")?;
    Ok(InventoryCode {
        id: id(row, "id")?,
        variant_id: id(row, "variant_id")?,
        product_id: id(row, "product_id")?,
        batch_ref: BatchRef::parse(&batch).map_err(|_| DbError::corrupt("batch reference"))?,
        sealed: SealedCard {
            number_ciphertext: row.get("number_ciphertext")?,
            pin_ciphertext: row.get("pin_ciphertext")?,
            lookup_key: row.get("lookup_key")?,
            last4: row.get("last4")?,
        },
        expiry_date: opt_date(row, "expiry_date")?,
        state: enumeration(row, "state", CodeState::parse)?,
        imported_at: time(row, "imported_at")?,
        row: row.get("row_number")?,
    })
}

/// The stored report of the batch, when the variant has it; refused when it was imported with
/// other rows.
fn stored_report(conn: &Connection, import: &CodeImport) -> DbResult<Option<ImportReport>> {
    let stored = one(
        conn,
        "SELECT fingerprint, report FROM code_batches WHERE variant_id = ?1 AND batch_ref = ?2",
        params![import.variant_id.as_str(), import.batch_ref.as_str()],
        |row| {
            Ok((
                row.get::<_, String>("fingerprint")?,
                row.get::<_, String>("report")?,
            ))
        },
    )?;
    let Some((fingerprint, report)) = stored else {
        return Ok(None);
    };
    if fingerprint != import.fingerprint {
        return Err(Error::IdempotencyKeyReused.into());
    }
    serde_json::from_str(&report)
        .map(Some)
        .map_err(|_| DbError::corrupt("import report"))
}

/// Moves the stock along with the pool (codes in or out, a card back): it never falls below
/// zero unless the two fell out of step.
pub(super) fn move_stock(
    conn: &Connection,
    variant: &VariantId,
    delta: i64,
    now: DateTime<Utc>,
) -> DbResult<()> {
    if delta != 0
        && !super::catalogue::move_stock(conn, variant, delta, FulfillmentSource::Inventory, now)?
    {
        return Err(DbError::corrupt(
            "a variant's stock fell out of step with its codes",
        ));
    }
    Ok(())
}

fn import(conn: &Connection, import: &CodeImport) -> DbResult<ImportReport> {
    if let Some(report) = stored_report(conn, import)? {
        return Ok(report);
    }
    // An import fixes the variant's source, on the condition that it still takes codes (as
    // on DynamoDB, even when every row is refused).
    let locked = execute(
        conn,
        "UPDATE variants SET source_locked = 1 WHERE id = ?1 AND fulfillment_source = ?2",
        params![
            import.variant_id.as_str(),
            FulfillmentSource::Inventory.as_str()
        ],
    )?;
    if locked != 1 {
        let exists = count(
            conn,
            "SELECT COUNT(*) FROM variants WHERE id = ?1",
            [import.variant_id.as_str()],
        )? > 0;
        return Err(DbError::Domain(if exists {
            giftify_shared::codes::source_changed()
        } else {
            Error::NotFound(Missing::Variant)
        }));
    }
    // The report is written last, once the held rows are known; a placeholder first lets the
    // codes reference their batch.
    execute(
        conn,
        "INSERT INTO code_batches (variant_id, batch_ref, fingerprint, report, imported_at) \
         VALUES (?1, ?2, ?3, '{}', ?4)",
        params![
            import.variant_id.as_str(),
            import.batch_ref.as_str(),
            import.fingerprint,
            ts(import.now)
        ],
    )
    .map_err(|e| e.missing_on_foreign_key(Missing::Variant))?;
    let mut held = Vec::new();
    for code in &import.codes {
        let stored = execute(
            conn,
            "INSERT INTO inventory_codes (id, variant_id, product_id, batch_ref, \
             number_ciphertext, pin_ciphertext, lookup_key, last4, expiry_date, state, \
             row_number, imported_at, changed_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'AVAILABLE', ?10, ?11, ?11) \
             ON CONFLICT (lookup_key) DO NOTHING",
            params![
                code.id.as_str(),
                code.variant_id.as_str(),
                code.product_id.as_str(),
                code.batch_ref.as_str(),
                code.sealed.number_ciphertext,
                code.sealed.pin_ciphertext,
                code.sealed.lookup_key,
                code.sealed.last4,
                code.expiry_date.map(day),
                code.row,
                ts(import.now),
            ],
        )?;
        if stored == 0 {
            held.push(code.row);
        }
    }
    let report = import.report(&held);
    move_stock(
        conn,
        &import.variant_id,
        i64::from(report.imported),
        import.now,
    )?;
    let json = serde_json::to_string(&report).map_err(|e| DbError::Domain(Error::internal(e)))?;
    execute(
        conn,
        "UPDATE code_batches SET report = ?3 WHERE variant_id = ?1 AND batch_ref = ?2",
        params![import.variant_id.as_str(), import.batch_ref.as_str(), json],
    )?;
    Ok(report)
}

fn summaries(
    conn: &Connection,
    variant: &VariantId,
    only: Option<&BatchRef>,
) -> DbResult<Vec<BatchSummary>> {
    let mut batches = all(
        conn,
        "SELECT batch_ref, imported_at, voided_at FROM code_batches \
         WHERE variant_id = ?1 AND (?2 IS NULL OR batch_ref = ?2) ORDER BY imported_at, batch_ref",
        params![variant.as_str(), only.map(BatchRef::as_str)],
        |row| {
            let batch: String = row.get("batch_ref")?;
            Ok(BatchSummary::new(
                BatchRef::parse(&batch).map_err(|_| DbError::corrupt("batch reference"))?,
                variant.clone(),
                time(row, "imported_at")?,
                super::codec::opt_time(row, "voided_at")?,
            ))
        },
    )?;
    for batch in &mut batches {
        let counts = all(
            conn,
            "SELECT state, returned, expiry_date FROM inventory_codes \
             WHERE variant_id = ?1 AND batch_ref = ?2",
            params![variant.as_str(), batch.batch_ref.as_str()],
            |row| {
                Ok((
                    enumeration(row, "state", CodeState::parse)?,
                    row.get::<_, bool>("returned")?,
                    opt_date(row, "expiry_date")?,
                ))
            },
        )?;
        for (state, returned, expiry) in counts {
            batch.count(state, expiry, returned);
        }
    }
    Ok(batches)
}

fn void(
    conn: &Connection,
    variant: &VariantId,
    batch: &BatchRef,
    now: DateTime<Utc>,
) -> DbResult<BatchSummary> {
    let voided_at: Option<Option<i64>> = conn
        .prepare_cached(
            "SELECT voided_at FROM code_batches WHERE variant_id = ?1 AND batch_ref = ?2",
        )?
        .query_row(params![variant.as_str(), batch.as_str()], |row| row.get(0))
        .optional()?;
    if voided_at.is_none() {
        return Err(Error::NotFound(Missing::CodeBatch).into());
    }
    let voided = execute(
        conn,
        "UPDATE inventory_codes SET state = 'VOIDED', changed_at = ?3 \
         WHERE variant_id = ?1 AND batch_ref = ?2 AND state = 'AVAILABLE'",
        params![variant.as_str(), batch.as_str(), ts(now)],
    )?;
    move_stock(conn, variant, -(voided as i64), now)?;
    execute(
        conn,
        "UPDATE code_batches SET voided_at = coalesce(voided_at, ?3) \
         WHERE variant_id = ?1 AND batch_ref = ?2",
        params![variant.as_str(), batch.as_str(), ts(now)],
    )?;
    summaries(conn, variant, Some(batch))?
        .pop()
        .ok_or_else(|| DbError::corrupt("a batch vanished while voided"))
}

/// Moves allocated codes from available to allocated inside the fulfillment's transaction;
/// the stock decrement of the same units is the fulfillment's own. A code no longer available
/// (a concurrent fulfillment took it, or a void) is a `Conflict`: the fulfillment allocates again.
pub(super) fn allocate(
    conn: &Connection,
    codes: &[GiftCardId],
    now: DateTime<Utc>,
) -> DbResult<()> {
    for code in codes {
        let changed = execute(
            conn,
            "UPDATE inventory_codes SET state = 'ALLOCATED', changed_at = ?2 \
             WHERE id = ?1 AND state = 'AVAILABLE'",
            params![code.as_str(), ts(now)],
        )?;
        if changed != 1 {
            return Err(Error::Conflict("an allocated code is no longer available").into());
        }
    }
    Ok(())
}

/// A returned card's code, under its new id and sealing, marked returned: available again,
/// or withdrawn (VOIDED) when its batch was voided meanwhile. True when it is back in the pool
/// (the caller adds its stock unit).
pub(super) fn back_to_pool(
    conn: &Connection,
    card: &GiftCardId,
    code: &ReturnedCode,
    now: DateTime<Utc>,
) -> DbResult<bool> {
    let voided: bool = conn
        .prepare_cached(
            "SELECT b.voided_at IS NOT NULL FROM inventory_codes c JOIN code_batches b \
             ON b.variant_id = c.variant_id AND b.batch_ref = c.batch_ref WHERE c.id = ?1",
        )?
        .query_row([card.as_str()], |row| row.get(0))
        .optional()?
        .ok_or_else(|| DbError::corrupt("a returned brand card has no code"))?;
    let changed = execute(
        conn,
        "UPDATE inventory_codes SET id = ?2, number_ciphertext = ?3, pin_ciphertext = ?4, \
         state = ?5, returned = 1, changed_at = ?6 WHERE id = ?1 AND state = 'ALLOCATED'",
        params![
            card.as_str(),
            code.id.as_str(),
            code.sealed.number_ciphertext,
            code.sealed.pin_ciphertext,
            if voided { "VOIDED" } else { "AVAILABLE" },
            ts(now),
        ],
    )?;
    if changed != 1 {
        return Err(DbError::corrupt(
            "a returned brand card has no allocated code",
        ));
    }
    Ok(!voided)
}

#[async_trait]
impl CodeInventory for SqliteStore {
    async fn import_codes(&self, plan: &CodeImport) -> Result<ImportReport> {
        let plan = plan.clone();
        self.write(move |conn| import(conn, &plan)).await
    }

    async fn code_batches(&self, variant: &VariantId) -> Result<Vec<BatchSummary>> {
        let variant = variant.clone();
        self.read(move |conn| summaries(conn, &variant, None)).await
    }

    async fn void_batch(
        &self,
        variant: &VariantId,
        batch: &BatchRef,
        now: DateTime<Utc>,
    ) -> Result<BatchSummary> {
        let (variant, batch) = (variant.clone(), batch.clone());
        self.write(move |conn| void(conn, &variant, &batch, now))
            .await
    }

    async fn expire_codes(
        &self,
        variant: &VariantId,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let variant = variant.clone();
        let today = day(today);
        self.write(move |conn| {
            let expired = execute(
                conn,
                "UPDATE inventory_codes SET state = 'EXPIRED', changed_at = ?3 \
                 WHERE variant_id = ?1 AND state = 'AVAILABLE' AND expiry_date < ?2",
                params![variant.as_str(), today, ts(now)],
            )?;
            move_stock(conn, &variant, -(expired as i64), now)?;
            Ok(expired as u64)
        })
        .await
    }

    async fn allocatable_codes(
        &self,
        variant: &VariantId,
        valid_through: NaiveDate,
        limit: u32,
    ) -> Result<Vec<InventoryCode>> {
        let variant = variant.clone();
        self.read(move |conn| {
            all(
                conn,
                &format!(
                    "SELECT {CODE_COLUMNS} FROM inventory_codes \
                     WHERE variant_id = ?1 AND state = 'AVAILABLE' \
                     AND coalesce(expiry_date, '9999-12-31') >= ?2 \
                     ORDER BY coalesce(expiry_date, '9999-12-31'), id LIMIT ?3"
                ),
                params![variant.as_str(), day(valid_through), limit],
                code_from_row,
            )
        })
        .await
    }
}
