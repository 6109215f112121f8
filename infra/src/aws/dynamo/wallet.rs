//! Wallet top-ups and history.

use super::{DynamoStore, all_pages, put, retrying};
use crate::aws::item::{Attrs, Item, item, money, n, s, sdk_error, ts};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use giftify_shared::ids::{OrderId, TransactionId, UserId};
use giftify_shared::ports::Wallets;
use giftify_shared::wallet::{Page, PageRequest, TopUp, TransactionType, WalletTransaction};
use giftify_shared::{Error, Paise, Result};

/// What the adapter writes for one wallet movement.
pub(super) struct Movement<'a> {
    pub id: &'a TransactionId,
    pub user: &'a UserId,
    pub kind: TransactionType,
    pub amount: Paise,
    pub balance_after: Paise,
    /// The wallet's sequence number after this movement: the history's order.
    pub sequence: i64,
    pub description: &'a str,
    pub order: Option<&'a OrderId>,
    pub now: DateTime<Utc>,
}

impl DynamoStore {
    /// The put of a wallet transaction record, inside the transaction that moves the money.
    pub(super) fn movement(&self, m: &Movement<'_>) -> Result<TransactWriteItem> {
        let mut record = item([
            ("userId", s(m.user.as_str())),
            ("transactionId", s(m.id.as_str())),
            ("type", s(m.kind.as_str())),
            ("amount", money(m.amount)),
            ("balanceAfter", money(m.balance_after)),
            ("sequence", n(m.sequence)),
            ("description", s(m.description)),
            ("status", s("COMPLETED")),
            ("createdAt", ts(m.now)),
            ("updatedAt", ts(m.now)),
        ]);
        if let Some(order) = m.order {
            record.insert("orderId".into(), s(order.as_str()));
        }
        put(
            &self.tables.wallet_transactions,
            record,
            Some("attribute_not_exists(transactionId)"),
            Item::new(),
        )
    }
}

fn transaction_from(raw: &Item) -> Result<WalletTransaction> {
    let a = Attrs::new(raw, "wallet-transactions");
    Ok(WalletTransaction {
        id: TransactionId::parse(a.s("transactionId")?)?,
        user_id: UserId::parse(a.s("userId")?)?,
        kind: a.parsed("type", TransactionType::parse)?,
        amount: a.money("amount")?,
        balance_after: a.money("balanceAfter")?,
        description: a.s("description")?.to_string(),
        order_id: a.opt_s("orderId")?.map(OrderId::parse).transpose()?,
        created_at: a.ts("createdAt")?,
    })
}

#[async_trait]
impl Wallets for DynamoStore {
    async fn top_up(&self, top_up: &TopUp) -> Result<WalletTransaction> {
        retrying(|| async {
            let state = self.wallet_state(&top_up.user_id).await?;
            let new =
                state
                    .balance
                    .checked_add(top_up.amount)
                    .ok_or(Error::WalletLimitExceeded {
                        limit: top_up.max_balance,
                    })?;
            if new > top_up.max_balance {
                return Err(Error::WalletLimitExceeded {
                    limit: top_up.max_balance,
                });
            }
            let mut items = vec![
                self.balance_update(&top_up.user_id, &state, new, top_up.now)?,
                self.movement(&Movement {
                    id: &top_up.transaction_id,
                    user: &top_up.user_id,
                    kind: TransactionType::Credit,
                    amount: top_up.amount,
                    balance_after: new,
                    sequence: state.next(),
                    description: &top_up.description,
                    order: None,
                    now: top_up.now,
                })?,
            ];
            if let Some(commit) = &top_up.idempotency {
                items.push(self.idempotency_commit(commit, top_up.now)?);
            }
            match self.transact(items).await {
                Ok(()) => Ok(WalletTransaction {
                    id: top_up.transaction_id.clone(),
                    user_id: top_up.user_id.clone(),
                    kind: TransactionType::Credit,
                    amount: top_up.amount,
                    balance_after: new,
                    description: top_up.description.clone(),
                    order_id: None,
                    created_at: top_up.now,
                }),
                Err(e) if e.failed_at(2) => Err(Error::IdempotencyInProgress),
                // The balance moved since it was read: read again and retry.
                Err(e) => Err(e.into_error()),
            }
        })
        .await
    }

    async fn balance(&self, user: &UserId) -> Result<Paise> {
        self.current_balance(user).await
    }

    async fn transactions(
        &self,
        user: &UserId,
        kind: Option<TransactionType>,
        page: PageRequest,
    ) -> Result<Page<WalletTransaction>> {
        // A user's history is one partition, sorted by the time-ordered transaction id; the
        // total the seed's pagination needs means reading the partition, which stays small.
        let mut query = self
            .client
            .query()
            .table_name(&self.tables.wallet_transactions)
            .key_condition_expression("#userId = :user")
            .expression_attribute_values(":user", s(user.as_str()))
            .scan_index_forward(false)
            .consistent_read(true);
        let mut names = vec!["#userId"];
        if let Some(kind) = kind {
            query = query
                .filter_expression("#type = :type")
                .expression_attribute_values(":type", s(kind.as_str()));
            names.push("#type");
        }
        let query = query.set_expression_attribute_names(super::names_of(&[&names.join(" ")]));
        let mut items = all_pages!(query.clone())
            .iter()
            .map(|raw| {
                Ok((
                    Attrs::new(raw, "wallet-transactions").n("sequence")?,
                    transaction_from(raw)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        // Newest first in commit order: transaction ids are minted before the commit, so under
        // concurrency only the wallet's sequence number orders them truly.
        items.sort_by_key(|(sequence, _)| std::cmp::Reverse(*sequence));
        let total = items.len() as u64;
        let items = items
            .into_iter()
            .skip(page.offset() as usize)
            .take(page.limit as usize)
            .map(|(_, t)| t)
            .collect();
        Ok(Page {
            items,
            total,
            page: page.page,
            limit: page.limit,
        })
    }

    async fn transaction(
        &self,
        user: &UserId,
        id: &TransactionId,
    ) -> Result<Option<WalletTransaction>> {
        let key = item([
            ("userId", s(user.as_str())),
            ("transactionId", s(id.as_str())),
        ]);
        self.get(&self.tables.wallet_transactions, key)
            .await?
            .as_ref()
            .map(transaction_from)
            .transpose()
    }
}
