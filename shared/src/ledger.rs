//! The ledger rule, written once: what a wallet movement is, what its record says, and what
//! the balance becomes. Both backends build every balance change from a [`Movement`] and ask
//! [`Movement::balance_after`] for the new balance, so neither has a balance rule or a
//! description of its own to drift (they did: "Payment for order X" in one, "Payment for X"
//! in the other).

use crate::idempotency::IdempotencyCommit;
use crate::ids::{OrderId, TransactionId, UserId};
use crate::wallet::{TransactionType, WalletTransaction};
use crate::{Error, Paise, Result};
use chrono::{DateTime, Utc};

/// The text of the record of a movement, as users see it in their history.
pub mod describe {
    use crate::ids::OrderId;

    /// The default description of a top-up without one.
    pub const TOP_UP: &str = "Manual wallet top-up";

    pub fn payment(order: &OrderId) -> String {
        format!("Payment for order {order}")
    }

    pub fn refund_of_cancelled(order: &OrderId) -> String {
        format!("Refund for cancelled order {order}")
    }

    pub fn refund_of_given_up(order: &OrderId) -> String {
        format!("Refund for order {order}, which could not be fulfilled")
    }

    pub fn refund_of_unfulfilled(order: &OrderId) -> String {
        format!("Refund for unfulfilled items of {order}")
    }

    pub fn refund_of_returned(card: &crate::vault::GiftCard) -> String {
        format!("Refund for returned gift card {}", card.masked_number())
    }

    pub fn redemption(card: &crate::vault::GiftCard) -> String {
        format!("Redeemed Giftify card {}", card.masked_number())
    }
}

/// One balance change and the record that goes with it, decided by the core. The amount is
/// positive and the kind says the direction, except for an adjustment, whose amount is signed
/// ([`Movement::adjustment`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movement {
    pub id: TransactionId,
    pub user: UserId,
    pub kind: TransactionType,
    pub amount: Paise,
    pub description: String,
    pub order: Option<OrderId>,
    pub at: DateTime<Utc>,
    /// The largest balance a credit may reach. Refunds have none: money coming back from an
    /// order must never be refused, or the order could never finish.
    pub cap: Option<Paise>,
}

impl Movement {
    /// A top-up credit, capped at `max_balance`.
    /// # Errors
    /// A non-positive amount is a validation error: a credit moves money in.
    pub fn top_up(
        id: TransactionId,
        user: UserId,
        amount: Paise,
        description: String,
        max_balance: Paise,
        at: DateTime<Utc>,
    ) -> Result<Self> {
        if amount.get() <= 0 {
            return Err(Error::validation("amount", "must be positive"));
        }
        Ok(Movement {
            id,
            user,
            kind: TransactionType::Credit,
            amount,
            description,
            order: None,
            at,
            cap: Some(max_balance),
        })
    }

    /// An admin's correction of a balance by a signed, non-zero `amount`, with its reason as
    /// the description. It obeys the balance rules like any movement: it may not take the
    /// balance below zero nor, when it adds, past `max_balance`.
    /// # Errors
    /// A zero amount, or one larger than `max_balance` either way, is a validation error.
    pub fn adjustment(
        id: TransactionId,
        user: UserId,
        amount: Paise,
        reason: String,
        max_balance: Paise,
        at: DateTime<Utc>,
    ) -> Result<Self> {
        if amount.get() == 0 || amount.get().unsigned_abs() > max_balance.get().unsigned_abs() {
            return Err(Error::validation(
                "amount",
                format!(
                    "must be non-zero paise, at most {} either way",
                    max_balance.get()
                ),
            ));
        }
        Ok(Movement {
            id,
            user,
            kind: TransactionType::Adjustment,
            amount,
            description: reason,
            order: None,
            at,
            cap: Some(max_balance),
        })
    }

    /// The credit of a redeemed Giftify card's face value, capped at `max_balance` like a
    /// top-up: a redemption is money coming in, not money coming back.
    pub fn redemption(
        id: TransactionId,
        user: UserId,
        card: &crate::vault::GiftCard,
        max_balance: Paise,
        at: DateTime<Utc>,
    ) -> Result<Self> {
        let amount = card
            .face_value()
            .filter(|v| v.get() > 0)
            .ok_or_else(|| Error::internal("a card's face value must be positive paise"))?;
        Ok(Movement {
            id,
            user,
            kind: TransactionType::Redeem,
            amount,
            description: describe::redemption(card),
            order: None,
            at,
            cap: Some(max_balance),
        })
    }

    /// The refund of a returned card's price to its owner: money coming back, never capped.
    pub fn refund_of_returned(
        id: TransactionId,
        card: &crate::vault::GiftCard,
        at: DateTime<Utc>,
    ) -> Self {
        Self::of_order(
            TransactionType::Refund,
            describe::refund_of_returned(card),
            id,
            card.user_id.clone(),
            &card.order_id,
            card.purchase_price,
            at,
        )
    }

    /// The debit that pays for an order.
    pub fn payment(
        id: TransactionId,
        user: UserId,
        order: &OrderId,
        amount: Paise,
        at: DateTime<Utc>,
    ) -> Self {
        let description = describe::payment(order);
        Movement::of_order(
            TransactionType::Debit,
            description,
            id,
            user,
            order,
            amount,
            at,
        )
    }

    /// The refund of a cancelled order: everything it paid.
    pub fn refund_of_cancelled(
        id: TransactionId,
        user: UserId,
        order: &OrderId,
        amount: Paise,
        at: DateTime<Utc>,
    ) -> Self {
        let description = describe::refund_of_cancelled(order);
        Movement::of_order(
            TransactionType::Refund,
            description,
            id,
            user,
            order,
            amount,
            at,
        )
    }

    /// The refund of an order given up before anything was issued: everything it paid.
    pub fn refund_of_given_up(
        id: TransactionId,
        user: UserId,
        order: &OrderId,
        amount: Paise,
        at: DateTime<Utc>,
    ) -> Self {
        let description = describe::refund_of_given_up(order);
        Movement::of_order(
            TransactionType::Refund,
            description,
            id,
            user,
            order,
            amount,
            at,
        )
    }

    /// The refund of the units fulfillment could not issue.
    pub fn refund_of_unfulfilled(
        id: TransactionId,
        user: UserId,
        order: &OrderId,
        amount: Paise,
        at: DateTime<Utc>,
    ) -> Self {
        let description = describe::refund_of_unfulfilled(order);
        Movement::of_order(
            TransactionType::Refund,
            description,
            id,
            user,
            order,
            amount,
            at,
        )
    }

    /// A movement of an order's money: uncapped, since neither paying from the balance nor
    /// money coming back from an order may be refused for the cap.
    fn of_order(
        kind: TransactionType,
        description: String,
        id: TransactionId,
        user: UserId,
        order: &OrderId,
        amount: Paise,
        at: DateTime<Utc>,
    ) -> Self {
        Movement {
            id,
            user,
            kind,
            amount,
            description,
            order: Some(order.clone()),
            at,
            cap: None,
        }
    }

    /// The balance rule: the balance after this movement from `balance`.
    /// # Errors
    /// A debit beyond the balance is [`Error::InsufficientBalance`]; a credit past its cap is
    /// [`Error::WalletLimitExceeded`]; a negative amount, or an uncapped credit that overflows,
    /// is a bug ([`Error::Internal`]). An adjustment is a debit or a capped credit by its sign.
    pub fn balance_after(&self, balance: Paise) -> Result<Paise> {
        if self.kind == TransactionType::Adjustment {
            return self.signed_balance_after(balance);
        }
        if self.amount.is_negative() {
            return Err(Error::internal(
                "a wallet movement amount must not be negative",
            ));
        }
        match self.kind {
            TransactionType::Debit => balance
                .checked_sub(self.amount)
                .filter(|after| !after.is_negative())
                .ok_or(Error::InsufficientBalance {
                    balance,
                    required: self.amount,
                }),
            TransactionType::Credit | TransactionType::Refund | TransactionType::Redeem => {
                self.credited(balance, self.amount)
            }
            TransactionType::Adjustment => self.signed_balance_after(balance),
        }
    }

    fn signed_balance_after(&self, balance: Paise) -> Result<Paise> {
        if !self.amount.is_negative() {
            return self.credited(balance, self.amount);
        }
        balance
            .checked_add(self.amount)
            .filter(|after| !after.is_negative())
            .ok_or(Error::InsufficientBalance {
                balance,
                required: Paise::new(self.amount.get().saturating_neg()),
            })
    }

    fn credited(&self, balance: Paise, amount: Paise) -> Result<Paise> {
        match (balance.checked_add(amount), self.cap) {
            (Some(after), Some(limit)) if after > limit => {
                Err(Error::WalletLimitExceeded { limit })
            }
            (Some(after), _) => Ok(after),
            (None, Some(limit)) => Err(Error::WalletLimitExceeded { limit }),
            (None, None) => Err(Error::internal("wallet balance overflows")),
        }
    }

    /// The record of this movement, committed with the balance it leaves.
    pub fn record(&self, balance_after: Paise) -> WalletTransaction {
        WalletTransaction {
            id: self.id.clone(),
            user_id: self.user.clone(),
            kind: self.kind,
            amount: self.amount,
            balance_after,
            description: self.description.clone(),
            order_id: self.order.clone(),
            created_at: self.at,
        }
    }
}

/// A movement posted on its own — a top-up or an admin's adjustment — applied atomically with
/// its record (and the idempotency record that finishes its key).
#[derive(Clone, Debug)]
pub struct Posting {
    /// From [`Movement::top_up`] or [`Movement::adjustment`].
    pub movement: Movement,
    pub idempotency: Option<IdempotencyCommit>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("time")
    }

    #[test]
    fn a_debit_never_takes_the_balance_below_zero() {
        let order = OrderId::generate();
        let debit = Movement::payment(
            TransactionId::generate(),
            UserId::generate(),
            &order,
            Paise::new(500),
            at(),
        );
        assert_eq!(debit.balance_after(Paise::new(500)).ok(), Some(Paise::ZERO));
        assert!(matches!(
            debit.balance_after(Paise::new(499)),
            Err(Error::InsufficientBalance { .. })
        ));
        assert_eq!(debit.description, format!("Payment for order {order}"));
    }

    #[test]
    fn a_credit_stops_at_its_cap_and_a_refund_has_none() {
        let user = UserId::generate();
        let credit = Movement::top_up(
            TransactionId::generate(),
            user.clone(),
            Paise::new(100),
            describe::TOP_UP.into(),
            Paise::new(1_000),
            at(),
        )
        .expect("positive");
        assert_eq!(
            credit.balance_after(Paise::new(900)).ok(),
            Some(Paise::new(1_000))
        );
        assert!(matches!(
            credit.balance_after(Paise::new(901)),
            Err(Error::WalletLimitExceeded { .. })
        ));
        let refund = Movement::refund_of_cancelled(
            TransactionId::generate(),
            user.clone(),
            &OrderId::generate(),
            Paise::new(100),
            at(),
        );
        assert_eq!(
            refund.balance_after(Paise::new(1_000_000_000)).ok(),
            Some(Paise::new(1_000_000_100))
        );
        assert!(refund.balance_after(Paise::new(i64::MAX)).is_err());
        assert!(
            Movement::top_up(
                TransactionId::generate(),
                user,
                Paise::ZERO,
                String::new(),
                Paise::new(1),
                at()
            )
            .is_err()
        );
    }

    #[test]
    fn the_record_carries_the_movement_and_the_balance_it_leaves() {
        let order = OrderId::generate();
        let refund = Movement::refund_of_unfulfilled(
            TransactionId::generate(),
            UserId::generate(),
            &order,
            Paise::new(250),
            at(),
        );
        let record = refund.record(Paise::new(750));
        assert_eq!(record.kind, TransactionType::Refund);
        assert_eq!(record.balance_after, Paise::new(750));
        assert_eq!(record.order_id.as_ref(), Some(&order));
        assert_eq!(
            record.description,
            format!("Refund for unfulfilled items of {order}")
        );
    }
}
