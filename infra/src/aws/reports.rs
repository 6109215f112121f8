//! Finance reporting: the daily figures, an item per shard and day whose counters every
//! money, order and card transaction adds to ([`DynamoStore::tally_update`], written by
//! [`super::store::Transaction::tally`]); and the exports, read by time through indexes —
//! orders through their status index, ledger entries through the ledger's day index. No
//! table is scanned.

use super::item::{Attrs, Item, item, s, sdk_error, ts};
use super::store::{DynamoStore, Transaction, TxFailure, all_pages, names_of, retrying, update};
use super::users::user_key;
use super::wallet::{LEDGER_DAY_PARTITIONS, transaction_from};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Select, TransactWriteItem, Update};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::future::try_join_all;
use giftify_shared::figures::{Activity, DayFigures, OpenOrders, SHARDS, Tally};
use giftify_shared::ids::OrderId;
use giftify_shared::order::{Order, OrderStatus};
use giftify_shared::ports::Reports;
use giftify_shared::wallet::WalletTransaction;
use giftify_shared::{Error, Missing, Result};
use std::collections::HashMap;

pub(super) fn shard_key(shard: u8) -> AttributeValue {
    s(format!("{shard:02}"))
}

fn figures_key(tally: &Tally) -> Item {
    item([
        ("shard", shard_key(tally.shard)),
        ("day", s(tally.day.to_string())),
    ])
}

/// `ADD #c0 :c0, #c1 :c1, …` over the tally's counters: counter names (a product's carry its
/// id) always go through placeholders.
fn add_expression(tally: &Tally) -> (String, HashMap<String, String>, Item) {
    let (mut adds, mut names, mut values) = (Vec::new(), HashMap::new(), Item::new());
    for (index, (counter, value)) in tally.figures.counters().into_iter().enumerate() {
        adds.push(format!("#c{index} :c{index}"));
        names.insert(format!("#c{index}"), counter);
        values.insert(format!(":c{index}"), AttributeValue::N(value.to_string()));
    }
    (format!("ADD {}", adds.join(", ")), names, values)
}

impl DynamoStore {
    /// The update that adds a tally to its day's item, inside a transaction. The tally must
    /// move a counter ([`Transaction::tally`] leaves empty ones out).
    pub(super) fn tally_update(&self, tally: &Tally) -> Result<TransactWriteItem> {
        let (expression, names, values) = add_expression(tally);
        let update = Update::builder()
            .table_name(&self.tables.daily_figures)
            .set_key(Some(figures_key(tally)))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| Error::Internal(e.into()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// One shard's recorded days up to `through`.
    async fn shard_days(
        &self,
        shard: u8,
        through: NaiveDate,
    ) -> Result<Vec<(NaiveDate, DayFigures)>> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.daily_figures)
            .key_condition_expression("#shard = :shard AND #day <= :through")
            .set_expression_attribute_names(names_of(&["#shard #day"]))
            .expression_attribute_values(":shard", shard_key(shard))
            .expression_attribute_values(":through", s(through.to_string()));
        all_pages!(query.clone())
            .iter()
            .map(|raw| {
                let a = Attrs::new(raw, "daily-figures");
                let day: NaiveDate = a
                    .s("day")?
                    .parse()
                    .map_err(|_| Error::internal("daily-figures.day is not a date"))?;
                let mut counters = Vec::new();
                for name in raw
                    .keys()
                    .filter(|k| !matches!(k.as_str(), "shard" | "day"))
                {
                    counters.push((name.as_str(), a.n(name)?));
                }
                Ok((day, DayFigures::from_counters(counters)?))
            })
            .collect()
    }

    /// A query of one partition of a `…-createdAt-index` for the items created in
    /// `[from, to]` (BETWEEN includes `to`: callers drop what was created at `to`).
    fn created_between(
        &self,
        table: &str,
        index: &str,
        (key, value): (&str, &str),
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(table)
            .index_name(index)
            .key_condition_expression("#key = :key AND #createdAt BETWEEN :from AND :to")
            .expression_attribute_names("#key", key)
            .expression_attribute_names("#createdAt", "createdAt")
            .expression_attribute_values(":key", s(value))
            .expression_attribute_values(":from", ts(from))
            .expression_attribute_values(":to", ts(to))
    }

    async fn count_in_status(&self, status: OrderStatus) -> Result<u64> {
        let mut total = 0u64;
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.tables.orders)
                .index_name("status-createdAt-index")
                .key_condition_expression("#status = :status")
                .set_expression_attribute_names(names_of(&["#status"]))
                .expression_attribute_values(":status", s(status.as_str()))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            total += u64::try_from(output.count).unwrap_or(0);
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(total),
            }
        }
    }
}

#[async_trait]
impl Reports for DynamoStore {
    async fn record_tally(&self, tally: &Tally) -> Result<()> {
        if tally.figures.is_empty() {
            return Ok(());
        }
        let (expression, names, values) = add_expression(tally);
        // A transaction adding to the same item at that moment makes this one conflict.
        retrying(|| async {
            self.client
                .update_item()
                .table_name(&self.tables.daily_figures)
                .set_key(Some(figures_key(tally)))
                .update_expression(&expression)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .send()
                .await
                .map_err(sdk_error)?;
            Ok(())
        })
        .await
    }

    async fn record_activity(&self, activity: &Activity) -> Result<bool> {
        retrying(|| async {
            let mut values = item([(":day", s(activity.day().to_string()))]);
            let condition = match activity.previous {
                Some(previous) => {
                    values.insert(":previous".into(), s(previous.to_string()));
                    "#activeOn = :previous"
                }
                None => "attribute_exists(#userId) AND attribute_not_exists(#activeOn)",
            };
            let mut transaction = Transaction::<()>::new();
            transaction.push(
                update(
                    &self.tables.users,
                    user_key(&activity.user),
                    "SET #activeOn = :day",
                    Some(condition),
                    values,
                )?,
                (),
            );
            transaction.tally(activity.tally.clone())?;
            match self.commit(transaction).await {
                Ok(()) => Ok(true),
                Err(TxFailure::Refused(())) => match self.user_item(&activity.user).await? {
                    // Recorded by another request first.
                    Some(_) => Ok(false),
                    None => Err(Error::NotFound(Missing::User)),
                },
                Err(TxFailure::Failed(error)) => Err(error),
            }
        })
        .await
    }

    async fn recorded_days(&self, through: NaiveDate) -> Result<Vec<(NaiveDate, DayFigures)>> {
        let shards = try_join_all((0..SHARDS).map(|shard| self.shard_days(shard, through))).await?;
        Ok(shards.into_iter().flatten().collect())
    }

    async fn open_orders(&self) -> Result<OpenOrders> {
        Ok(OpenOrders {
            pending: self.count_in_status(OrderStatus::Pending).await?,
            processing: self.count_in_status(OrderStatus::Processing).await?,
        })
    }

    async fn orders_created(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Order>> {
        // Each status's index holds its orders by creation time, oldest first: the first
        // `limit` of the period are among the first `limit` of each status. An order that
        // moves on while the statuses are read can be met twice: it is kept once.
        let mut keys: Vec<(String, OrderId)> = Vec::new();
        for status in OrderStatus::ALL {
            let mut taken = 0usize;
            let mut start: Option<Item> = None;
            loop {
                let output = self
                    .created_between(
                        &self.tables.orders,
                        "status-createdAt-index",
                        ("status", status.as_str()),
                        from,
                        to,
                    )
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(sdk_error)?;
                for raw in output.items.unwrap_or_default() {
                    let a = Attrs::new(&raw, "orders");
                    // BETWEEN includes its upper bound; the period does not.
                    if a.ts("createdAt")? < to {
                        keys.push((
                            a.s("createdAt")?.to_string(),
                            OrderId::parse(a.s("orderId")?)?,
                        ));
                        taken += 1;
                    }
                }
                match output.last_evaluated_key {
                    Some(key) if !key.is_empty() && taken < limit as usize => start = Some(key),
                    _ => break,
                }
            }
        }
        keys.sort();
        let mut seen = std::collections::HashSet::new();
        let ids: Vec<OrderId> = keys
            .into_iter()
            .filter(|(_, id)| seen.insert(id.clone()))
            .map(|(_, id)| id)
            .take(limit as usize)
            .collect();
        self.orders_by_id(&ids).await
    }

    async fn ledger_entries(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<WalletTransaction>> {
        let mut entries = Vec::new();
        let mut day = from.date_naive();
        while day <= to.date_naive() && entries.len() < limit as usize {
            let mut found = Vec::new();
            for partition in 0..LEDGER_DAY_PARTITIONS {
                let query = self.created_between(
                    &self.tables.wallet_transactions,
                    "ledgerDay-createdAt-index",
                    ("ledgerDay", &format!("{day}#{partition}")),
                    from,
                    to,
                );
                for raw in all_pages!(query.clone()) {
                    found.push(transaction_from(&raw)?);
                }
            }
            found.retain(|t| t.created_at < to);
            found.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            entries.extend(found);
            day = day
                .succ_opt()
                .ok_or_else(|| Error::internal("the calendar ends"))?;
        }
        entries.truncate(limit as usize);
        Ok(entries)
    }
}
