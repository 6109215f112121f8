//! The audit log on DynamoDB, in the audit table beside card reveals and failure notes: one
//! partition per UTC day (`LOG#2026-12-07`), sorted by entry id, which sorts by time. A query
//! reads its range day by day, newest first, so it never scans the table, and a day of admin
//! actions is far below a partition's limits. Entries are put on the condition that they are
//! new and carry no expiry: the log is kept for good.

use super::item::{Attrs, Item, item, s, sdk_error, ts};
use super::store::{DynamoStore, names_of};
use async_trait::async_trait;
use chrono::{DateTime, Days, NaiveDate, Utc};
use giftify_shared::Result;
use giftify_shared::audit::AuditEntry;
use giftify_shared::ids::AuditId;
use giftify_shared::ports::AuditLog;

pub(super) fn day_key(day: NaiveDate) -> String {
    format!("LOG#{day}")
}

#[async_trait]
impl AuditLog for DynamoStore {
    async fn record_audit(&self, entry: &AuditEntry) -> Result<()> {
        let raw: Item = item([
            ("subjectId", s(day_key(entry.at.date_naive()))),
            ("auditId", s(entry.id.as_str())),
            ("at", ts(entry.at)),
            ("body", s(entry.to_json())),
        ]);
        let written = self
            .client
            .put_item()
            .table_name(&self.tables.audit)
            .set_item(Some(raw))
            .condition_expression("attribute_not_exists(auditId)")
            .send()
            .await;
        match written {
            Ok(_) => Ok(()),
            // Recorded already (a retried record): the first stays.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn audit_slice(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        before: Option<&AuditId>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let mut entries = Vec::new();
        let newest = before.map_or(to, |id| id.time().min(to));
        let mut day = newest.date_naive();
        while day >= from.date_naive() && entries.len() < limit as usize {
            let mut start = None;
            loop {
                let mut query = self
                    .client
                    .query()
                    .table_name(&self.tables.audit)
                    .scan_index_forward(false)
                    .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start);
                query = match before {
                    Some(id) => query
                        .key_condition_expression("#subjectId = :day AND #auditId < :before")
                        .set_expression_attribute_names(names_of(&["#subjectId #auditId"]))
                        .expression_attribute_values(":before", s(id.as_str())),
                    None => query
                        .key_condition_expression("#subjectId = :day")
                        .set_expression_attribute_names(names_of(&["#subjectId"])),
                };
                let page = query
                    .expression_attribute_values(":day", s(day_key(day)))
                    .send()
                    .await
                    .map_err(sdk_error)?;
                for raw in page.items() {
                    let entry = AuditEntry::from_json(Attrs::new(raw, "audit").s("body")?)?;
                    if entry.at < from {
                        return Ok(entries);
                    }
                    if entry.at < to {
                        entries.push(entry);
                        if entries.len() == limit as usize {
                            return Ok(entries);
                        }
                    }
                }
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
            let Some(previous) = day.checked_sub_days(Days::new(1)) else {
                break;
            };
            day = previous;
        }
        Ok(entries)
    }
}
