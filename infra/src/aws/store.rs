//! The DynamoDB store: the adapter value behind every port but the queue and the event
//! publisher (one file per port beside this one), over the tables of [`super::tables`], and
//! the transaction machinery they share. Each atomic operation of a port is one `TransactWriteItems` whose
//! condition expressions carry the business rule (balance covers the debit, stock covers the
//! allocation, the order is still in the status the step expects); the `CancellationReasons`
//! of a cancelled transaction are mapped back to the domain error of the failing condition.
//!
//! Wallet writes are optimistic: the adapter reads the balance with a consistent read, writes
//! the new balance and the `balanceAfter` of the transaction record on the condition that the
//! balance is still what it read, and retries (with `backon`, exponential with jitter, bounded)
//! when another write got there first. Conditional stock decrements need no read.

use super::item::{Item, sdk_error};
use super::tables::TableNames;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use backon::{ExponentialBuilder, Retryable};
use giftify_shared::figures::Tally;
use giftify_shared::ports::Health;
use giftify_shared::{Clock, Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The DynamoDB adapter. Cheap to clone; build one per process.
#[derive(Clone)]
pub struct DynamoStore {
    pub(super) client: Client,
    pub(super) tables: Arc<TableNames>,
    /// variantId → productId: immutable once created, so safe to keep for the process life.
    pub(super) variant_products: Arc<RwLock<HashMap<String, String>>>,
    /// The process's one clock, shared with the core.
    pub(super) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    pub fn new(client: Client, tables: TableNames, clock: Arc<dyn Clock>) -> Self {
        DynamoStore {
            client,
            tables: Arc::new(tables),
            variant_products: Arc::default(),
            clock,
        }
    }

    /// The clock the store reads, for the core to share.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn tables(&self) -> &TableNames {
        &self.tables
    }

    /// A consistent read of one item.
    pub(super) async fn get(&self, table: &str, key: Item) -> Result<Option<Item>> {
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

    /// Commits a write transaction. When DynamoDB cancels it, the first item whose condition
    /// failed names the answer: the meaning attached to that item. A conflict with a concurrent
    /// transaction or throttling is no business condition: [`Error::Conflict`], to retry.
    pub(super) async fn commit<R>(&self, transaction: Transaction<R>) -> Result<(), TxFailure<R>> {
        let Transaction {
            mut items,
            meanings,
            tallies,
        } = transaction;
        for tally in &tallies {
            // An ADD has no condition: it can never be the item that refuses.
            items.push(self.tally_update(tally).map_err(TxFailure::Failed)?);
        }
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(TxFailure::Failed(Error::internal(format!(
                "a transaction of {} items: DynamoDB takes at most {MAX_TRANSACTION_ITEMS}",
                items.len()
            ))));
        }
        let error = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            error.as_service_error()
        else {
            return Err(TxFailure::Failed(sdk_error(error)));
        };
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .map(|reason| reason.code().unwrap_or("None"))
            .collect();
        if codes
            .iter()
            .any(|code| *code == "TransactionConflict" || *code == "ThrottlingError")
        {
            return Err(TxFailure::Failed(Error::Conflict(
                "dynamodb transaction conflict",
            )));
        }
        let failed = codes
            .iter()
            .position(|code| *code == "ConditionalCheckFailed");
        match failed.and_then(|index| meanings.into_iter().nth(index)) {
            Some(meaning) => Err(TxFailure::Refused(meaning)),
            None => Err(TxFailure::Failed(Error::Conflict(
                "a condition changed during the transaction",
            ))),
        }
    }
}

/// The most items one `TransactWriteItems` takes.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// A write transaction whose every item carries what the failure of its condition means
/// (by default a domain [`Error`]): the mapping of `CancellationReasons` back to the domain
/// is attached where the item is built, so reordering items cannot change an answer.
pub(super) struct Transaction<R = Error> {
    items: Vec<TransactWriteItem>,
    meanings: Vec<R>,
    /// The daily figures the write adds to, one per day and shard: a transaction may write an
    /// item once, so tallies of one item are merged, and written last.
    tallies: Vec<Tally>,
}

impl<R> Transaction<R> {
    pub(super) fn new() -> Self {
        Transaction {
            items: Vec::new(),
            meanings: Vec::new(),
            tallies: Vec::new(),
        }
    }

    /// Adds what the write adds to the daily figures (see [`Tally`]).
    pub(super) fn tally(&mut self, tally: Tally) -> Result<()> {
        if tally.figures.is_empty() {
            return Ok(());
        }
        match self
            .tallies
            .iter_mut()
            .find(|t| (t.day, t.shard) == (tally.day, tally.shard))
        {
            Some(same_item) => same_item.merge(&tally),
            None => {
                self.tallies.push(tally);
                Ok(())
            }
        }
    }

    /// Adds `item`; should its condition fail, the transaction is refused with `meaning`.
    pub(super) fn push(&mut self, item: TransactWriteItem, meaning: R) {
        self.items.push(item);
        self.meanings.push(meaning);
    }

    pub(super) fn len(&self) -> usize {
        self.items.len() + self.tallies.len()
    }
}

/// Why a transaction did not commit.
#[derive(Debug)]
pub(super) enum TxFailure<R> {
    /// The condition of an item failed: what that item said it means.
    Refused(R),
    /// Anything else, as a domain error.
    Failed(Error),
}

impl TxFailure<Error> {
    pub(super) fn into_error(self) -> Error {
        match self {
            TxFailure::Refused(error) | TxFailure::Failed(error) => error,
        }
    }
}

/// Retries transient failures (conflicts, throttling) with exponential backoff and jitter.
pub(super) async fn retrying<T, F, Fut>(operation: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    retrying_up_to(6, operation).await
}

/// [`retrying`] with another number of retries, for writes whose races are expected rather
/// than rare (the event feed's positions).
pub(super) async fn retrying_up_to<T, F, Fut>(times: usize, operation: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    operation
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(500))
                .with_max_times(times)
                .with_jitter(),
        )
        .when(Error::is_retryable)
        .await
}

/// `#name` placeholders for every `#word` in the expressions, so reserved words (`status`,
/// `name`, `items`, …) never need special care.
pub(super) fn names_of(expressions: &[&str]) -> Option<HashMap<String, String>> {
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

pub(super) fn values_of(values: Item) -> Option<Item> {
    (!values.is_empty()).then_some(values)
}

/// A conditional put inside a transaction.
pub(super) fn put(
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
pub(super) fn update(
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
pub(super) fn check(
    table: &str,
    key: Item,
    condition: &str,
    values: Item,
) -> Result<TransactWriteItem> {
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
pub(super) fn delete(
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
pub(super) use all_pages;

/// An attribute value as a list element holder.
pub(super) fn list(values: Vec<AttributeValue>) -> AttributeValue {
    AttributeValue::L(values)
}

/// `None` when a conditional write lost to another writer (read again), else the error.
pub(super) fn lost_race_or_error<E, R>(
    error: aws_sdk_dynamodb::error::SdkError<E, R>,
) -> Option<Error>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let lost = error
        .as_service_error()
        .and_then(aws_sdk_dynamodb::error::ProvideErrorMetadata::code)
        .is_some_and(|code| code == "ConditionalCheckFailedException");
    (!lost).then(|| sdk_error(error))
}

#[async_trait]
impl Health for DynamoStore {
    async fn check(&self) -> Result<()> {
        self.client
            .describe_table()
            .table_name(&self.tables.users)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
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
