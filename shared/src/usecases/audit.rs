//! Recording admins' and operators' actions, and reading the log back.

use super::Giftify;
use crate::Result;
use crate::audit::{AuditEntry, AuditPage, AuditQuery};
use crate::catalogue::{Product, Variant};
use serde_json::{Value, json};

/// Entries read per slice of a query.
const SLICE: u32 = 200;
/// Most entries one query reads before it answers with what it matched and a cursor.
const MAX_READ: usize = 2_000;

impl Giftify {
    /// Records an action that has committed. The log line under the `audit` target is written
    /// first and always; when the entry cannot be stored, the line carries the whole entry and
    /// an error, so nothing an admin did goes unrecorded, and the action (which happened) is
    /// not reported as failed.
    pub(crate) async fn audit(&self, entry: AuditEntry) {
        tracing::warn!(
            target: "audit",
            actor = %entry.actor,
            action = entry.action.as_str(),
            subject = entry.subject,
            "audited"
        );
        if let Err(error) = self.ports.audit.record_audit(&entry).await {
            tracing::error!(target: "audit", entry = entry.to_json(), error = %error, "audit entry not stored");
        }
    }

    /// The entries matching `query`, newest first, a page at a time.
    /// # Errors
    /// [`crate::Error::Validation`] for a range the query refuses ([`AuditQuery::check`]).
    pub async fn audit_log(&self, query: &AuditQuery) -> Result<AuditPage> {
        query.check()?;
        let limit = query.limit as usize;
        let mut entries = Vec::new();
        let mut cursor = query.before.clone();
        let mut read = 0;
        loop {
            let slice = self
                .ports
                .audit
                .audit_slice(query.from, query.to, cursor.as_ref(), SLICE)
                .await?;
            let exhausted = slice.len() < SLICE as usize;
            for entry in slice {
                read += 1;
                cursor = Some(entry.id.clone());
                if query.matches(&entry) {
                    entries.push(entry);
                    if entries.len() == limit {
                        return Ok(AuditPage {
                            entries,
                            next: cursor,
                        });
                    }
                }
            }
            if exhausted {
                return Ok(AuditPage {
                    entries,
                    next: None,
                });
            }
            if read >= MAX_READ {
                return Ok(AuditPage {
                    entries,
                    next: cursor,
                });
            }
        }
    }
}

/// A product's values as the audit log keeps them.
pub(crate) fn product_values(product: &Product) -> Value {
    json!({
        "name": product.name,
        "description": product.description,
        "brand": product.brand,
        "category": product.category,
        "imageUrl": product.image_url,
        "thumbnailUrl": product.thumbnail_url,
        "isActive": product.is_active,
        "termsAndConditions": product.terms_and_conditions,
        "howToRedeem": product.how_to_redeem,
        "validityDays": product.validity_days,
    })
}

/// A variant's values as the audit log keeps them: what an admin may change, and the stock.
pub(crate) fn variant_values(variant: &Variant) -> Value {
    json!({
        "productId": variant.product_id,
        "name": variant.name,
        "denomination": variant.denomination,
        "mrp": variant.mrp.get(),
        "costPrice": variant.cost_price.get(),
        "discountPercent": variant.discount_percent,
        "sellingPrice": variant.selling_price.get(),
        "stockQuantity": variant.stock_quantity,
        "minOrderQuantity": variant.min_order_quantity,
        "maxOrderQuantity": variant.max_order_quantity,
        "isActive": variant.is_active,
        "fulfillmentSource": variant.fulfillment_source.as_str(),
    })
}
