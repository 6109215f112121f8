//! Request counts in fixed windows: one atomic, conditional counter item per window in the
//! login-throttle table (the table of counted attempts), expired by its TTL.

use super::store::{DynamoStore, lost_race_or_error, names_of};
use crate::aws::item::{epoch, s};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use giftify_shared::Result;
use giftify_shared::ports::RateLimits;
use giftify_shared::rate_limits::RateWindow;

#[async_trait]
impl RateLimits for DynamoStore {
    async fn count_request(&self, window: &RateWindow) -> Result<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.login_throttle)
            .key("account", s(&window.bucket))
            .update_expression("ADD #requests :one SET #expiresAt = :expires")
            .condition_expression("attribute_not_exists(#requests) OR #requests < :limit")
            .set_expression_attribute_names(names_of(&["#requests #expiresAt"]))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(window.limit.to_string()))
            .expression_attribute_values(":expires", epoch(window.ends_at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) => lost_race_or_error(error).map_or(Ok(false), Err),
        }
    }
}
