//! Support's administration of accounts: finding one, seeing it with its money and orders,
//! suspending and reactivating it, and correcting its balance. Every change is audited with
//! the admin who made it and the reason they gave.

use super::Giftify;
use super::keyed::{Keyed, KeyedRequest, mismatched};
use crate::audit::{Actor, AuditAction, AuditEntry};
use crate::idempotency::{IdempotencyCommit, IdempotencyScope, IdempotentOutcome};
use crate::ids::{TransactionId, UserId};
use crate::ledger::{Movement, Posting};
use crate::order::Order;
use crate::user::{User, UserPage, UserSearch, UserStatus};
use crate::wallet::{PageRequest, WalletTransaction};
use crate::{Error, Paise, Result};
use serde_json::json;

/// Orders shown with an account.
const RECENT_ORDERS: u32 = 10;
/// Longest reason an admin may give, in characters.
const MAX_REASON_CHARS: usize = 500;

/// Why an admin changed an account: 1–500 characters, kept in the audit log (and, for a
/// balance correction, as the ADJUSTMENT's description the customer sees).
pub fn admin_reason(raw: &str) -> Result<String> {
    crate::catalogue::check_text("reason", raw, 1, MAX_REASON_CHARS)
}

/// An account as support sees it.
#[derive(Clone, Debug)]
pub struct AccountOverview {
    pub user: User,
    /// Newest first.
    pub recent_orders: Vec<Order>,
    pub order_count: u64,
}

impl Giftify {
    /// Accounts by email, or all of them a page at a time.
    pub async fn find_users(&self, search: &UserSearch) -> Result<UserPage> {
        self.ports.users.find_users(search).await
    }

    /// The account with its balance and its latest orders.
    pub async fn account_overview(&self, id: &UserId) -> Result<AccountOverview> {
        let user = self.profile(id).await?;
        let orders = self
            .ports
            .orders
            .orders_of(
                id,
                None,
                PageRequest {
                    page: 1,
                    limit: RECENT_ORDERS,
                },
            )
            .await?;
        Ok(AccountOverview {
            user,
            recent_orders: orders.items,
            order_count: orders.total,
        })
    }

    /// Suspends (`to` = SUSPENDED) or reactivates (`to` = ACTIVE) the account. A suspension
    /// ends every session the account has and is enforced on its next request, since every
    /// request reads the account's standing ([`Giftify::active_user`]). Asking for the status
    /// the account has already changes nothing and records nothing.
    /// # Errors
    /// [`Error::Validation`] when an admin would suspend their own account (no one would be
    /// left to undo it from that seat); [`Error::NotFound`] for an unknown or deleted account;
    /// [`Error::AccountSuspended`] when an admin suspending another admin was suspended first
    /// (the last two admins suspending each other leave one standing).
    pub async fn set_standing(
        &self,
        actor: &Actor,
        id: &UserId,
        to: UserStatus,
        reason: String,
    ) -> Result<User> {
        if to == UserStatus::Suspended && matches!(actor, Actor::Admin(admin) if admin == id) {
            return Err(Error::validation(
                "userId",
                "an admin cannot suspend their own account",
            ));
        }
        let user = self.profile(id).await?;
        let Some(mut change) = user.standing_change(to)? else {
            return Ok(user);
        };
        if let Actor::Admin(admin) = actor
            && user.role == crate::user::Role::Admin
            && to == UserStatus::Suspended
        {
            change.while_admin = Some(admin.clone());
        }
        let changed = self
            .ports
            .users
            .change_status(id, &change, self.now())
            .await?;
        let action = match to {
            UserStatus::Suspended => AuditAction::UserSuspended,
            _ => AuditAction::UserReactivated,
        };
        self.audit(
            AuditEntry::new(self.now(), actor, action, id.as_str())
                .before(json!({ "status": change.from.as_str() }))
                .after(json!({ "status": change.to.as_str(), "reason": reason })),
        )
        .await;
        Ok(changed)
    }

    /// Corrects the account's balance by a signed `amount` of paise with an ADJUSTMENT entry
    /// whose description is the reason, committing the admin's idempotency key with it.
    async fn adjust_balance_holding(
        &self,
        actor: &Actor,
        user: &UserId,
        amount: i64,
        reason: String,
        idempotency: Option<(IdempotencyScope, String)>,
    ) -> Result<WalletTransaction> {
        if matches!(actor, Actor::Admin(admin) if admin == user) {
            // Another admin corrects an admin's wallet: no one mints money for themselves.
            return Err(Error::validation(
                "userId",
                "an admin cannot correct their own balance",
            ));
        }
        let movement = Movement::adjustment(
            TransactionId::generate(),
            user.clone(),
            Paise::new(amount),
            reason,
            self.rules.wallet.max_balance,
            self.now(),
        )?;
        let idempotency = idempotency.map(|(scope, token)| IdempotencyCommit {
            scope,
            token,
            outcome: IdempotentOutcome::Adjusted(movement.id.clone()),
        });
        let record = self
            .ports
            .wallets
            .adjust_balance(&Posting {
                movement,
                idempotency,
            })
            .await?;
        self.audit(
            AuditEntry::new(
                self.now(),
                actor,
                AuditAction::BalanceAdjusted,
                user.as_str(),
            )
            .before(json!({ "balance": record.balance_after.get() - record.amount.get() }))
            .after(json!({
                "balance": record.balance_after.get(),
                "amount": record.amount.get(),
                "transactionId": record.id.as_str(),
                "reason": record.description,
            })),
        )
        .await;
        Ok(record)
    }

    /// An admin's balance correction under their `Idempotency-Key`, so a retried correction
    /// is applied once ([`Giftify::adjust_balance_holding`]).
    /// # Errors
    /// [`Error::Validation`] when the admin would correct their own balance.
    pub async fn adjust_balance_keyed(
        &self,
        actor: &Actor,
        user: &UserId,
        amount: i64,
        reason: String,
        key: KeyedRequest,
    ) -> Result<Keyed<WalletTransaction>> {
        self.keyed(
            key,
            |commit| self.adjust_balance_holding(actor, user, amount, reason, commit),
            |outcome| async move {
                match outcome {
                    IdempotentOutcome::Adjusted(id) => self.transaction(user, &id).await,
                    other => Err(mismatched(&other)),
                }
            },
        )
        .await
    }

    /// The account behind a request, when it may act.
    /// # Errors
    /// [`Error::AccountSuspended`] for a suspended account; [`Error::InvalidToken`] for one
    /// that no longer exists.
    pub async fn active_user(&self, id: &UserId) -> Result<User> {
        let user = self
            .ports
            .users
            .user(id)
            .await?
            .ok_or(Error::InvalidToken)?;
        match user.status {
            UserStatus::Active => {
                self.note_activity(&user).await;
                Ok(user)
            }
            UserStatus::Suspended => Err(Error::AccountSuspended),
            UserStatus::Deleted => Err(Error::InvalidToken),
        }
    }
}
