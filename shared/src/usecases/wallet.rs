//! Wallet top-ups and history.

use super::Giftify;
use crate::Missing;
use crate::idempotency::IdempotencyCommit;
use crate::ids::{TransactionId, UserId};
use crate::ledger::Movement;
use crate::ledger::Posting;
use crate::wallet::{Page, PageRequest, TransactionType, WalletTransaction};
use crate::{Error, Paise, Result};

impl Giftify {
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
        self.ports
            .wallets
            .top_up(&Posting {
                movement: credit,
                idempotency,
            })
            .await
    }

    pub async fn balance(&self, user: &UserId) -> Result<Paise> {
        self.ports.wallets.balance(user).await
    }

    pub async fn transactions(
        &self,
        user: &UserId,
        kind: Option<TransactionType>,
        page: PageRequest,
    ) -> Result<Page<WalletTransaction>> {
        self.ports.wallets.transactions(user, kind, page).await
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
