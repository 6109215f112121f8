//! Wallet top-ups and history.

use super::store::{DynamoStore, Transaction, TxFailure, all_pages, put, retrying, update};
use super::users::user_key;
use crate::aws::item::{Attrs, Item, item, money, n, s, sdk_error, ts};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use giftify_shared::figures::Tally;
use giftify_shared::ids::{OrderId, TransactionId, UserId};
use giftify_shared::ledger::Movement;
use giftify_shared::ledger::Posting;
use giftify_shared::ports::Wallets;
use giftify_shared::wallet::{
    Page, PageRequest, TransactionFilter, TransactionType, WalletTransaction,
};
use giftify_shared::{Error, Missing, Paise, Result};

/// Partitions of a day in the ledger's day index: one partition key takes about 1,000 writes a
/// second, and every account's movements of a day go to that day's partitions.
pub(super) const LEDGER_DAY_PARTITIONS: u8 = 4;

/// The ledger day index's key of an account's movement on `day`: `2026-12-07#2`.
pub(super) fn ledger_day(day: chrono::NaiveDate, user: &UserId) -> String {
    format!(
        "{day}#{}",
        giftify_shared::figures::shard_of(user) % LEDGER_DAY_PARTITIONS
    )
}

impl DynamoStore {
    /// The put of a wallet transaction record, `sequence` being the wallet's sequence number
    /// after it (the history's order), inside the transaction that moves the money.
    pub(super) fn transaction_record(
        &self,
        record: &WalletTransaction,
        sequence: i64,
    ) -> Result<TransactWriteItem> {
        let mut raw = item([
            ("userId", s(record.user_id.as_str())),
            ("transactionId", s(record.id.as_str())),
            ("type", s(record.kind.as_str())),
            ("amount", money(record.amount)),
            ("balanceAfter", money(record.balance_after)),
            ("sequence", n(sequence)),
            ("description", s(&record.description)),
            ("status", s("COMPLETED")),
            ("createdAt", ts(record.created_at)),
            ("updatedAt", ts(record.created_at)),
            (
                "ledgerDay",
                s(ledger_day(record.created_at.date_naive(), &record.user_id)),
            ),
        ]);
        if let Some(order) = &record.order_id {
            raw.insert("orderId".into(), s(order.as_str()));
        }
        put(
            &self.tables.wallet_transactions,
            raw,
            Some("attribute_not_exists(transactionId)"),
            Item::new(),
        )
    }
}

pub(super) fn transaction_from(raw: &Item) -> Result<WalletTransaction> {
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

impl DynamoStore {
    /// Applies a movement posted on its own, finishing its idempotency key in the same
    /// transaction.
    async fn post(&self, posting: &Posting) -> Result<WalletTransaction> {
        retrying(|| async {
            let wallet = self.wallet_state(&posting.movement.user).await?;
            let mut transaction = Transaction::new();
            let record = self.add_movement(&mut transaction, &posting.movement, &wallet)?;
            if let Some(commit) = &posting.idempotency {
                self.add_idempotency_commit(&mut transaction, commit)?;
            }
            self.commit(transaction)
                .await
                .map_err(TxFailure::into_error)?;
            Ok(record)
        })
        .await
    }
}

#[async_trait]
impl Wallets for DynamoStore {
    async fn top_up(&self, top_up: &Posting) -> Result<WalletTransaction> {
        self.post(top_up).await
    }

    async fn adjust_balance(&self, adjustment: &Posting) -> Result<WalletTransaction> {
        self.post(adjustment).await
    }

    async fn balance(&self, user: &UserId) -> Result<Paise> {
        self.current_balance(user).await
    }

    async fn transactions(
        &self,
        user: &UserId,
        filter: &TransactionFilter,
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
        if let Some(kind) = filter.kind {
            query = query
                .filter_expression("#type = :type")
                .expression_attribute_values(":type", s(kind.as_str()));
            names.push("#type");
        }
        let query =
            query.set_expression_attribute_names(super::store::names_of(&[&names.join(" ")]));
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
        Ok(page.slice(
            items
                .into_iter()
                .map(|(_, t)| t)
                .filter(|t| filter.matches(t))
                .collect(),
        ))
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
/// A wallet as read before an optimistic write.
#[derive(Clone, Copy, Debug)]
pub(super) struct WalletState {
    pub balance: Paise,
    /// Movements so far; each movement's record carries the sequence number it produced.
    pub sequence: i64,
}

impl WalletState {
    pub fn next(&self) -> i64 {
        self.sequence + 1
    }
}

impl DynamoStore {
    /// The current balance, read consistently; `NotFound` for an unknown user.
    pub(super) async fn current_balance(&self, id: &UserId) -> Result<Paise> {
        Ok(self.wallet_state(id).await?.balance)
    }

    /// The balance and the wallet's sequence number (how many movements it has had).
    pub(super) async fn wallet_state(&self, id: &UserId) -> Result<WalletState> {
        let raw = self
            .user_item(id)
            .await?
            .ok_or(Error::NotFound(Missing::User))?;
        let a = Attrs::new(&raw, "users");
        Ok(WalletState {
            balance: a.money("walletBalance")?,
            sequence: a.opt_n("walletSequence")?.unwrap_or(0),
        })
    }

    /// The transaction item that moves a wallet from `state` to `new` on the condition that no
    /// other movement happened since `state` was read. The condition is on the sequence, not
    /// the balance, so a balance that went away and came back (A→B→A) cannot slip through.
    pub(super) fn balance_update(
        &self,
        id: &UserId,
        state: &WalletState,
        new: Paise,
        now: DateTime<Utc>,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem> {
        let condition = if state.sequence == 0 {
            "attribute_exists(#userId) AND attribute_not_exists(#walletSequence)"
        } else {
            "#walletSequence = :sequence"
        };
        let mut values = item([
            (":new", n(new.get())),
            (":next", n(state.sequence + 1)),
            (":now", ts(now)),
        ]);
        if state.sequence != 0 {
            values.insert(":sequence".into(), n(state.sequence));
        }
        update(
            &self.tables.users,
            user_key(id),
            "SET #walletBalance = :new, #walletSequence = :next, #updatedAt = :now",
            Some(condition),
            values,
        )
    }

    /// Adds a movement the core decided to `transaction`: the balance from the wallet as read
    /// (refused as a conflict, to read again, if the wallet moved since) and the record.
    /// Returns the record as committed.
    pub(super) fn add_movement(
        &self,
        transaction: &mut Transaction,
        movement: &Movement,
        wallet: &WalletState,
    ) -> Result<WalletTransaction> {
        let after = movement.balance_after(wallet.balance)?;
        transaction.tally(Tally::of_movement(movement, wallet.balance, after))?;
        transaction.push(
            self.balance_update(&movement.user, wallet, after, movement.at)?,
            Error::Conflict("the wallet moved since it was read"),
        );
        let record = movement.record(after);
        transaction.push(
            self.transaction_record(&record, wallet.next())?,
            // Taken by this very movement when a commit succeeded but its answer was lost:
            // a conflict, as it always was, never a silent second movement.
            Error::Conflict("the wallet transaction is recorded already"),
        );
        Ok(record)
    }
}
