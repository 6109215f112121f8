//! The check values of the card and access-token keys (see [`giftify_shared::keys`]): one
//! `KEYCHECK` item per key in the audit table, written with a condition so the first start of
//! a stage records its keys once, and never given an expiry.

use super::DynamoStore;
use crate::aws::item::{Attrs, Item, item, s, sdk_error, ts};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::Select;
use chrono::{DateTime, Utc};
use giftify_shared::Result;
use giftify_shared::keys::KeyName;
use giftify_shared::ports::KeyChecks;

fn check_key(key: KeyName) -> Item {
    item([("subjectId", s("KEYCHECK")), ("auditId", s(key.as_str()))])
}

impl DynamoStore {
    async fn read_check(&self, key: KeyName) -> Result<Option<String>> {
        self.get(&self.tables.audit, check_key(key))
            .await?
            .map(|raw| {
                Attrs::new(&raw, "audit")
                    .s("checkValue")
                    .map(str::to_string)
            })
            .transpose()
    }
}

#[async_trait]
impl KeyChecks for DynamoStore {
    async fn recorded_check(&self, key: KeyName) -> Result<Option<String>> {
        self.read_check(key).await
    }

    async fn record_check(&self, key: KeyName, value: &str, now: DateTime<Utc>) -> Result<String> {
        let mut raw = check_key(key);
        raw.insert("checkValue".into(), s(value));
        raw.insert("at".into(), ts(now));
        let written = self
            .client
            .put_item()
            .table_name(&self.tables.audit)
            .set_item(Some(raw))
            .condition_expression("attribute_not_exists(subjectId)")
            .send()
            .await;
        match written {
            Ok(_) => Ok(value.to_string()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.read_check(key).await?.ok_or_else(|| {
                    giftify_shared::Error::internal("a key check value vanished while recorded")
                })
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Counted by a paginated `Scan` of keys only: it runs only when a start is refused.
    async fn sealed_cards(&self) -> Result<u64> {
        let mut count = 0u64;
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.tables.gift_cards)
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            count += u64::try_from(page.count).unwrap_or(0);
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(count);
            }
        }
    }
}
