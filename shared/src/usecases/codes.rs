//! Brand codes: imports into an INVENTORY variant's sealed pool, the batch listing, and voids.

use super::Giftify;
use crate::audit::{Actor, AuditAction, AuditEntry};
use crate::codes::{BatchRef, BatchSummary, CodeImport, CodeRow, FulfillmentSource, ImportReport};
use crate::ids::VariantId;
use crate::{Error, Result};
use rand::{Rng, rngs::OsRng};
use serde_json::json;

impl Giftify {
    /// Validates, seals and stores a batch of brand codes. Rows that fail are refused in the
    /// report, never the whole batch; the same batch reference sent again answers the first
    /// import.
    /// # Errors
    /// [`Error::NotFound`] for an unknown variant, [`Error::Validation`] for a GENERATED one
    /// or a request with no rows or too many.
    pub async fn import_codes(
        &self,
        actor: &Actor,
        variant_id: &VariantId,
        batch_ref: BatchRef,
        rows: &[CodeRow],
    ) -> Result<ImportReport> {
        let import = self.plan_import(variant_id, batch_ref, rows).await?;
        let report = self.ports.codes.import_codes(&import).await?;
        self.audit(
            AuditEntry::new(
                self.now(),
                actor,
                AuditAction::CodesImported,
                variant_id.as_str(),
            )
            .after(json!({
                "batchRef": report.batch_ref.as_str(),
                "rows": report.rows,
                "imported": report.imported,
                "duplicates": report.duplicates,
                "invalid": report.invalid,
            })),
        )
        .await;
        Ok(report)
    }

    /// The variant's import of `rows`, sealed.
    /// # Errors
    /// As [`Giftify::import_codes`].
    async fn plan_import(
        &self,
        variant_id: &VariantId,
        batch_ref: BatchRef,
        rows: &[CodeRow],
    ) -> Result<CodeImport> {
        let entry = self.entry(variant_id).await?;
        if entry.variant.fulfillment_source != FulfillmentSource::Inventory {
            return Err(Error::validation(
                "variantId",
                "this variant mints Giftify's own cards (GENERATED); codes are imported into \
                 INVENTORY variants",
            ));
        }
        CodeImport::plan(
            &self.vault,
            entry.variant.id,
            entry.product.id,
            batch_ref,
            rows,
            self.now(),
        )
    }

    /// The variant's code batches with their counts.
    /// # Errors
    /// [`Error::NotFound`] for an unknown variant.
    pub async fn code_batches(&self, variant_id: &VariantId) -> Result<Vec<BatchSummary>> {
        self.entry(variant_id).await?;
        self.ports.codes.code_batches(variant_id).await
    }

    /// Withdraws a batch's unallocated codes (a supplier recall).
    pub async fn void_code_batch(
        &self,
        actor: &Actor,
        variant_id: &VariantId,
        batch_ref: &BatchRef,
    ) -> Result<BatchSummary> {
        let now = self.now();
        let summary = self
            .ports
            .codes
            .void_batch(variant_id, batch_ref, now)
            .await?;
        self.audit(
            AuditEntry::new(
                now,
                actor,
                AuditAction::CodeBatchVoided,
                variant_id.as_str(),
            )
            .after(json!({
                "batchRef": summary.batch_ref.as_str(),
                "voided": summary.voided,
                "allocated": summary.allocated,
            })),
        )
        .await;
        Ok(summary)
    }

    /// Imports the demo batch ([`crate::catalogue::DEMO_BATCH`]) into every INVENTORY variant
    /// of the catalogue: random `DEMO…` numbers that no brand honours, to try the shop with.
    pub(crate) async fn import_demo_codes(&self) -> Result<()> {
        let batch = BatchRef::parse(crate::catalogue::DEMO_BATCH)?;
        for entry in self.ports.catalogue.inventory().await? {
            if entry.variant.fulfillment_source != FulfillmentSource::Inventory {
                continue;
            }
            let rows: Vec<CodeRow> = (0..crate::catalogue::DEMO_CODES_PER_VARIANT)
                .map(|_| CodeRow {
                    number: format!("DEMO{:016}", OsRng.gen_range(0..10_000_000_000_000_000u64)),
                    pin: Some(format!("{:06}", OsRng.gen_range(0..1_000_000u32))),
                    expiry_date: Some(
                        (self.now() + chrono::Duration::days(365))
                            .date_naive()
                            .to_string(),
                    ),
                })
                .collect();
            // The shop's own first start, not anyone's action: not an audit entry.
            let import = self
                .plan_import(&entry.variant.id, batch.clone(), &rows)
                .await?;
            self.ports.codes.import_codes(&import).await?;
        }
        Ok(())
    }
}
