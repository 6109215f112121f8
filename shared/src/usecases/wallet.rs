//! Wallet top-ups and history.

use super::Giftify;
use crate::Missing;
use crate::idempotency::IdempotencyCommit;
use crate::ids::{TransactionId, UserId};
use crate::ledger::Movement;
use crate::ledger::Posting;
use crate::wallet::{Page, PageRequest, TransactionFilter, WalletTransaction};
use crate::{Error, Paise, Result};
use chrono::{DateTime, Duration, Utc};

/// The longest period one statement covers.
pub const MAX_STATEMENT_DAYS: i64 = 366;
/// Most transactions one statement holds; a busier period is asked for in parts.
pub const MAX_STATEMENT_ENTRIES: u32 = 10_000;

/// A wallet's statement for `[from, to)`: the balance before it, every transaction in it
/// oldest first, and the balance after it. Opening + Σ changes = closing, always.
#[derive(Clone, Debug)]
pub struct Statement {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub opening: Paise,
    pub entries: Vec<WalletTransaction>,
    pub closing: Paise,
}

impl Statement {
    /// Σ of the entries that added to the balance.
    pub fn money_in(&self) -> Paise {
        self.sum(|change| change > 0)
    }

    /// Σ of the entries that took from it, as a positive amount.
    pub fn money_out(&self) -> Paise {
        Paise::new(-self.sum(|change| change < 0).get())
    }

    fn sum(&self, keep: impl Fn(i64) -> bool) -> Paise {
        Paise::new(
            self.entries
                .iter()
                .map(|entry| entry.balance_change().get())
                .filter(|&change| keep(change))
                .sum(),
        )
    }

    fn adds_up(&self) -> bool {
        self.opening.get() + self.money_in().get() - self.money_out().get() == self.closing.get()
    }
}

impl Giftify {
    /// The statement of the user's wallet for `[from, to)`; a `to` in the future is today's
    /// last moment so far (now). The opening balance and the period are two reads; a
    /// transaction that commits between them could make the statement not add up, so it is
    /// read again once when it does not.
    /// # Errors
    /// [`Error::Validation`] for an empty or inverted period, one longer than
    /// [`MAX_STATEMENT_DAYS`], or one with more than [`MAX_STATEMENT_ENTRIES`] transactions.
    pub async fn statement(
        &self,
        user: &UserId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Statement> {
        let to = to.min(self.now());
        let filter = TransactionFilter::new(None, Some(from), Some(to))?;
        if to - from > Duration::days(MAX_STATEMENT_DAYS) {
            return Err(Error::validation(
                "to",
                format!("a statement covers at most {MAX_STATEMENT_DAYS} days"),
            ));
        }
        let mut statement = self.read_statement(user, &filter).await?;
        if !statement.adds_up() {
            statement = self.read_statement(user, &filter).await?;
        }
        if statement.adds_up() {
            Ok(statement)
        } else {
            Err(Error::Conflict(
                "the wallet kept changing while its statement was read",
            ))
        }
    }

    async fn read_statement(&self, user: &UserId, filter: &TransactionFilter) -> Result<Statement> {
        let (from, to) = (
            filter.from.unwrap_or(DateTime::UNIX_EPOCH),
            filter.to.unwrap_or_else(|| self.now()),
        );
        let before = TransactionFilter::new(None, None, Some(from))?;
        let opening = self
            .transactions(user, &before, PageRequest { page: 1, limit: 1 })
            .await?
            .items
            .first()
            .map_or(Paise::new(0), |last| last.balance_after);
        // One read of the whole period (DynamoDB reads the user's partition once per call, so
        // paging it would read it once per page).
        let found = self
            .transactions(
                user,
                filter,
                PageRequest {
                    page: 1,
                    limit: MAX_STATEMENT_ENTRIES,
                },
            )
            .await?;
        if found.total > u64::from(MAX_STATEMENT_ENTRIES) {
            return Err(Error::validation(
                "from",
                format!(
                    "the period holds more than {MAX_STATEMENT_ENTRIES} transactions; ask for a \
                     shorter one"
                ),
            ));
        }
        let mut entries = found.items;
        entries.reverse();
        let closing = entries.last().map_or(opening, |last| last.balance_after);
        Ok(Statement {
            from,
            to,
            opening,
            entries,
            closing,
        })
    }

    /// Credits `amount` paise (see [`Giftify::top_up_keyed`] for the keyed form).
    pub async fn top_up(
        &self,
        user: &UserId,
        amount: i64,
        description: Option<String>,
    ) -> Result<WalletTransaction> {
        self.top_up_holding(user, amount, description, None).await
    }

    /// Credits `amount` paise, committing the idempotency key the caller holds, if any.
    pub async fn top_up_holding(
        &self,
        user: &UserId,
        amount: i64,
        description: Option<String>,
        idempotency: Option<(crate::idempotency::IdempotencyScope, String)>,
    ) -> Result<WalletTransaction> {
        if !self.rules.self_top_up {
            return Err(Error::SelfTopUpDisabled);
        }
        let amount = self.rules.wallet.check_top_up(amount)?;
        let description = match description {
            Some(text) => crate::catalogue::check_text("description", &text, 1, 200)?,
            None => crate::ledger::describe::TOP_UP.to_string(),
        };
        let credit = Movement::top_up(
            TransactionId::generate(),
            user.clone(),
            amount,
            description,
            self.rules.wallet.max_balance,
            self.now(),
        )?;
        let idempotency = idempotency.map(|(scope, token)| IdempotencyCommit {
            scope,
            token,
            outcome: crate::idempotency::IdempotentOutcome::ToppedUp(credit.id.clone()),
        });
        let topped_up = self
            .ports
            .wallets
            .top_up(&Posting {
                movement: credit,
                idempotency,
            })
            .await;
        self.counting_wallet_refusal(user, topped_up).await
    }

    pub async fn balance(&self, user: &UserId) -> Result<Paise> {
        self.ports.wallets.balance(user).await
    }

    pub async fn transactions(
        &self,
        user: &UserId,
        filter: &TransactionFilter,
        page: PageRequest,
    ) -> Result<Page<WalletTransaction>> {
        self.ports.wallets.transactions(user, filter, page).await
    }

    pub async fn transaction(
        &self,
        user: &UserId,
        id: &TransactionId,
    ) -> Result<WalletTransaction> {
        self.ports
            .wallets
            .transaction(user, id)
            .await?
            .ok_or(Error::NotFound(Missing::Transaction))
    }
}
