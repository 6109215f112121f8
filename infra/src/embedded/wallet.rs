//! The wallet: balances live on the user row; every movement writes its transaction record with
//! the balance after it, in the same transaction as the balance change. The balance is never
//! negative (checked here, and by a CHECK constraint as the last line of defence).

use super::SqliteStore;
use super::codec::{
    DbError, DbResult, all, count, enumeration, id, one, opt_id, page_bounds, paise, time, ts,
};
use super::idempotency::finish_key;
use async_trait::async_trait;
use giftify_shared::Missing;
use giftify_shared::figures::Tally;
use giftify_shared::ids::{OrderId, TransactionId, UserId};
use giftify_shared::ledger::Movement;
use giftify_shared::ledger::Posting;
use giftify_shared::ports::Wallets;
use giftify_shared::wallet::{
    Page, PageRequest, TransactionFilter, TransactionType, WalletTransaction,
};
use giftify_shared::{Error, Paise, Result};
use rusqlite::{Connection, Row, params};

/// Commits a movement the core decided, inside the caller's transaction: the balance the
/// core computes from the one read here ([`Movement::balance_after`]), and the record.
///
/// Fails with the core's refusal (`InsufficientBalance`, `WalletLimitExceeded`) or `NotFound`
/// for an unknown user; the caller's transaction rolls back on any of them.
pub(super) fn apply(conn: &Connection, m: &Movement) -> DbResult<WalletTransaction> {
    let balance = balance_of(conn, &m.user)?.ok_or(Error::NotFound(Missing::User))?;
    let after = m.balance_after(balance)?;
    // The balance was read in this IMMEDIATE transaction, so no one can have moved it; the
    // condition keeps this write correct even if that ever stopped being true.
    let changed = conn
        .prepare_cached(
            "UPDATE users SET wallet_balance = ?3, updated_at = ?4 \
             WHERE id = ?1 AND wallet_balance = ?2",
        )?
        .execute(params![
            m.user.as_str(),
            balance.get(),
            after.get(),
            ts(m.at)
        ])?;
    if changed != 1 {
        return Err(Error::Conflict("the wallet balance changed").into());
    }
    super::figures::add_tally(conn, &Tally::of_movement(m, balance, after))?;
    let record = m.record(after);
    conn.prepare_cached(
        "INSERT INTO wallet_transactions \
         (id, user_id, kind, amount, balance_after, description, order_id, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        record.id.as_str(),
        record.user_id.as_str(),
        record.kind.as_str(),
        record.amount.get(),
        record.balance_after.get(),
        record.description,
        record.order_id.as_ref().map(OrderId::as_str),
        ts(record.created_at),
    ])?;
    // Read back, so the answer carries the stored (millisecond) time like every later read.
    transaction_by_id(conn, &m.user, &m.id)?
        .ok_or_else(|| DbError::corrupt("a wallet transaction vanished in its own transaction"))
}

pub(super) fn balance_of(conn: &Connection, user: &UserId) -> DbResult<Option<Paise>> {
    one(
        conn,
        "SELECT wallet_balance FROM users WHERE id = ?1",
        [user.as_str()],
        |row| paise(row, "wallet_balance"),
    )
}

pub(super) const TRANSACTION_COLUMNS: &str =
    "id, user_id, kind, amount, balance_after, description, order_id, created_at";

pub(super) fn transaction_from_row(row: &Row) -> DbResult<WalletTransaction> {
    Ok(WalletTransaction {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        kind: enumeration(row, "kind", TransactionType::parse)?,
        amount: paise(row, "amount")?,
        balance_after: paise(row, "balance_after")?,
        description: row.get("description")?,
        order_id: opt_id(row, "order_id")?,
        created_at: time(row, "created_at")?,
    })
}

fn transaction_by_id(
    conn: &Connection,
    user: &UserId,
    id: &TransactionId,
) -> DbResult<Option<WalletTransaction>> {
    one(
        conn,
        &format!(
            "SELECT {TRANSACTION_COLUMNS} FROM wallet_transactions WHERE id = ?1 AND user_id = ?2"
        ),
        [id.as_str(), user.as_str()],
        transaction_from_row,
    )
}

impl SqliteStore {
    /// Applies a movement posted on its own, finishing its idempotency key in the same
    /// transaction.
    async fn post(&self, posting: &Posting) -> Result<WalletTransaction> {
        let posting = posting.clone();
        self.write(move |conn| {
            if let Some(commit) = &posting.idempotency {
                finish_key(conn, commit)?;
            }
            apply(conn, &posting.movement)
        })
        .await
    }
}

#[async_trait]
impl Wallets for SqliteStore {
    async fn top_up(&self, top_up: &Posting) -> Result<WalletTransaction> {
        self.post(top_up).await
    }

    async fn adjust_balance(&self, adjustment: &Posting) -> Result<WalletTransaction> {
        self.post(adjustment).await
    }

    async fn balance(&self, user: &UserId) -> Result<Paise> {
        let user = user.clone();
        self.read(move |conn| Ok(balance_of(conn, &user)?.ok_or(Error::NotFound(Missing::User))?))
            .await
    }

    async fn transactions(
        &self,
        user: &UserId,
        filter: &TransactionFilter,
        page: PageRequest,
    ) -> Result<Page<WalletTransaction>> {
        let user = user.clone();
        let kind = filter.kind.map(TransactionType::as_str);
        let (from, to) = (filter.from.map(ts), filter.to.map(ts));
        self.read(move |conn| {
            let total = count(
                conn,
                "SELECT COUNT(*) FROM wallet_transactions \
                 WHERE user_id = ?1 AND (?2 IS NULL OR kind = ?2) \
                 AND created_at >= coalesce(?3, created_at) AND (?4 IS NULL OR created_at < ?4)",
                params![user.as_str(), kind, from, to],
            )?;
            let (limit, offset) = page_bounds(page);
            // Newest first in commit order, which is the rowid's (rows are never deleted, and
            // the one writer commits them one after another). Not `created_at`: the core reads
            // its clock before the write, so two movements of one wallet can commit in the
            // other order, and their balances would then be listed out of their chain.
            let items = all(
                conn,
                &format!(
                    "SELECT {TRANSACTION_COLUMNS} FROM wallet_transactions \
                     WHERE user_id = ?1 AND (?2 IS NULL OR kind = ?2) \
                     AND created_at >= coalesce(?5, created_at) \
                     AND (?6 IS NULL OR created_at < ?6) \
                     ORDER BY rowid DESC LIMIT ?3 OFFSET ?4"
                ),
                params![user.as_str(), kind, limit, offset, from, to],
                transaction_from_row,
            )?;
            Ok(Page {
                items,
                total,
                page: page.page,
                limit: page.limit,
            })
        })
        .await
    }

    async fn transaction(
        &self,
        user: &UserId,
        id: &TransactionId,
    ) -> Result<Option<WalletTransaction>> {
        let (user, id) = (user.clone(), id.clone());
        self.read(move |conn| transaction_by_id(conn, &user, &id))
            .await
    }
}
