//! The DynamoDB backend: every port except the queue and the event publisher, over the tables
//! of [`super::tables`]. Each atomic operation of a port is one `TransactWriteItems` whose
//! condition expressions carry the business rule (balance covers the debit, stock covers the
//! allocation, the order is still in the status the step expects); the `CancellationReasons`
//! of a cancelled transaction are mapped back to the domain error of the failing condition.
//!
//! Wallet writes are optimistic: the adapter reads the balance with a consistent read, writes
//! the new balance and the `balanceAfter` of the transaction record on the condition that the
//! balance is still what it read, and retries (with `backon`, exponential with jitter, bounded)
//! when another write got there first. Conditional stock decrements need no read.

mod accounts;
mod catalogue;
mod keys;
mod orders;
mod wallet;

use super::item::{Item, sdk_error};
use super::tables::TableNames;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use backon::{ExponentialBuilder, Retryable};
use giftify_shared::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The DynamoDB adapter. Cheap to clone; build one per process.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Arc<TableNames>,
    /// variantId → productId: immutable once created, so safe to keep for the process life.
    variant_products: Arc<RwLock<HashMap<String, String>>>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    pub fn new(client: Client, tables: TableNames) -> Self {
        DynamoStore {
            client,
            tables: Arc::new(tables),
            variant_products: Arc::default(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn tables(&self) -> &TableNames {
        &self.tables
    }

    /// A consistent read of one item.
    async fn get(&self, table: &str, key: Item) -> Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output.item)
    }

    /// Runs a write transaction. `Err(Cancelled(codes))` carries one reason code per item
    /// (`"ConditionalCheckFailed"`, `"TransactionConflict"`, `"None"`, …).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TxError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                    error.as_service_error()
                {
                    let codes: Vec<String> = cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_string())
                        .collect();
                    // A conflict with a concurrent transaction is not a business condition.
                    if codes
                        .iter()
                        .any(|c| c == "TransactionConflict" || c == "ThrottlingError")
                    {
                        return Err(TxError::Other(Error::Conflict(
                            "dynamodb transaction conflict",
                        )));
                    }
                    return Err(TxError::Cancelled(codes));
                }
                Err(TxError::Other(sdk_error(error)))
            }
        }
    }
}

/// Why a transaction did not commit.
#[derive(Debug)]
enum TxError {
    /// A condition failed; one reason code per item of the transaction.
    Cancelled(Vec<String>),
    Other(Error),
}

impl TxError {
    /// Whether the condition on item `index` failed.
    fn failed_at(&self, index: usize) -> bool {
        matches!(self, TxError::Cancelled(codes) if codes.get(index).is_some_and(|c| c == "ConditionalCheckFailed"))
    }

    /// For a cancellation not mapped by the caller: something changed underneath; retry.
    fn into_error(self) -> Error {
        match self {
            TxError::Cancelled(_) => Error::Conflict("a condition changed during the transaction"),
            TxError::Other(error) => error,
        }
    }
}

/// Retries transient failures (conflicts, throttling) with exponential backoff and jitter.
async fn retrying<T, F, Fut>(operation: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    operation
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(500))
                .with_max_times(6)
                .with_jitter(),
        )
        .when(Error::is_retryable)
        .await
}

/// `#name` placeholders for every `#word` in the expressions, so reserved words (`status`,
/// `name`, `items`, …) never need special care.
fn names_of(expressions: &[&str]) -> Option<HashMap<String, String>> {
    let mut names = HashMap::new();
    for expression in expressions {
        let mut rest = *expression;
        while let Some(start) = rest.find('#') {
            let tail = &rest[start + 1..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(format!("#{}", &tail[..end]), tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    (!names.is_empty()).then_some(names)
}

fn values_of(values: Item) -> Option<Item> {
    (!values.is_empty()).then_some(values)
}

/// A conditional put inside a transaction.
fn put(
    table: &str,
    item: Item,
    condition: Option<&str>,
    values: Item,
) -> Result<TransactWriteItem> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_string))
        .set_expression_attribute_names(condition.and_then(|c| names_of(&[c])))
        .set_expression_attribute_values(values_of(values))
        .build()
        .map_err(|e| Error::Internal(e.into()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A conditional update inside a transaction.
fn update(
    table: &str,
    key: Item,
    expression: &str,
    condition: Option<&str>,
    values: Item,
) -> Result<TransactWriteItem> {
    let mut expressions = vec![expression];
    expressions.extend(condition);
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(expression)
        .set_condition_expression(condition.map(str::to_string))
        .set_expression_attribute_names(names_of(&expressions))
        .set_expression_attribute_values(values_of(values))
        .build()
        .map_err(|e| Error::Internal(e.into()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// A condition on an item the transaction does not write.
fn check(table: &str, key: Item, condition: &str, values: Item) -> Result<TransactWriteItem> {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(condition)
        .set_expression_attribute_names(names_of(&[condition]))
        .set_expression_attribute_values(values_of(values))
        .build()
        .map_err(|e| Error::Internal(e.into()))?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// A conditional delete inside a transaction.
#[allow(dead_code)]
fn delete(
    table: &str,
    key: Item,
    condition: Option<&str>,
    values: Item,
) -> Result<TransactWriteItem> {
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .set_condition_expression(condition.map(str::to_string))
        .set_expression_attribute_names(condition.and_then(|c| names_of(&[c])))
        .set_expression_attribute_values(values_of(values))
        .build()
        .map_err(|e| Error::Internal(e.into()))?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// Reads every page of a query or scan.
macro_rules! all_pages {
    ($request:expr) => {{
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = $request
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        items
    }};
}
pub(crate) use all_pages;

/// An attribute value as a list element holder.
fn list(values: Vec<AttributeValue>) -> AttributeValue {
    AttributeValue::L(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_derived_from_the_expressions() {
        let names = names_of(&[
            "SET #status = :s, #items = :i",
            "#status = :old AND attribute_not_exists(#lockedBy)",
        ])
        .unwrap();
        assert_eq!(names.len(), 3);
        assert_eq!(names["#status"], "status");
        assert_eq!(names["#lockedBy"], "lockedBy");
        assert_eq!(names_of(&["attribute_not_exists(userId)"]), None);
    }
}
