//! Wallet transactions and the wallet limits.

use crate::ids::{OrderId, TransactionId, UserId};
use crate::{Error, Paise, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionType {
    Credit,
    Debit,
    Refund,
    /// A Giftify card's face value, credited when it is redeemed into the wallet.
    Redeem,
    /// An admin's balance correction, with its reason: the one kind whose amount is signed
    /// (positive adds to the balance, negative takes from it).
    Adjustment,
}

impl TransactionType {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionType::Credit => "CREDIT",
            TransactionType::Debit => "DEBIT",
            TransactionType::Refund => "REFUND",
            TransactionType::Redeem => "REDEEM",
            TransactionType::Adjustment => "ADJUSTMENT",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CREDIT" => Some(TransactionType::Credit),
            "DEBIT" => Some(TransactionType::Debit),
            "REFUND" => Some(TransactionType::Refund),
            "REDEEM" => Some(TransactionType::Redeem),
            "ADJUSTMENT" => Some(TransactionType::Adjustment),
            _ => None,
        }
    }
}

/// A committed wallet movement. Amounts are positive and the type says the direction, except
/// an [`TransactionType::Adjustment`]'s, whose sign does.
/// Every transaction Giftify writes is `COMPLETED`: it is recorded in the same atomic step as
/// the balance change, so there is no pending or failed state to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletTransaction {
    pub id: TransactionId,
    pub user_id: UserId,
    pub kind: TransactionType,
    pub amount: Paise,
    pub balance_after: Paise,
    pub description: String,
    pub order_id: Option<OrderId>,
    pub created_at: DateTime<Utc>,
}

impl WalletTransaction {
    /// What the transaction did to the balance: negative for a debit and for an adjustment
    /// that took money, positive otherwise.
    pub fn balance_change(&self) -> Paise {
        match self.kind {
            TransactionType::Debit => Paise::new(-self.amount.get()),
            TransactionType::Credit
            | TransactionType::Refund
            | TransactionType::Redeem
            | TransactionType::Adjustment => self.amount,
        }
    }
}

/// Which of a wallet's transactions to list: of one type, and in `[from, to)`; each bound
/// optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransactionFilter {
    pub kind: Option<TransactionType>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl TransactionFilter {
    /// Every transaction.
    pub const ALL: TransactionFilter = TransactionFilter {
        kind: None,
        from: None,
        to: None,
    };

    pub fn of_kind(kind: TransactionType) -> Self {
        TransactionFilter {
            kind: Some(kind),
            ..Self::ALL
        }
    }

    /// # Errors
    /// [`Error::Validation`] when `to` is not after `from`.
    pub fn new(
        kind: Option<TransactionType>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Self> {
        if let (Some(from), Some(to)) = (from, to)
            && to <= from
        {
            return Err(Error::validation("to", "must be after from"));
        }
        Ok(TransactionFilter { kind, from, to })
    }

    pub fn matches(&self, transaction: &WalletTransaction) -> bool {
        self.kind.is_none_or(|kind| transaction.kind == kind)
            && self.from.is_none_or(|from| transaction.created_at >= from)
            && self.to.is_none_or(|to| transaction.created_at < to)
    }
}

/// Limits on wallet amounts.
#[derive(Clone, Copy, Debug)]
pub struct WalletLimits {
    pub max_top_up: Paise,
    pub max_balance: Paise,
}

impl Default for WalletLimits {
    /// ₹1,00,000 per top-up; ₹2,00,000 balance (the RBI cap on a full-KYC prepaid wallet).
    fn default() -> Self {
        WalletLimits {
            max_top_up: Paise::new(10_000_000),
            max_balance: Paise::new(20_000_000),
        }
    }
}

impl WalletLimits {
    pub fn check_top_up(&self, amount: i64) -> Result<Paise> {
        if amount < 1 || amount > self.max_top_up.get() {
            return Err(Error::validation(
                "amount",
                format!("must be between 1 and {} paise", self.max_top_up.get()),
            ));
        }
        Ok(Paise::new(amount))
    }
}

/// A page of a list, with the total count for the seed's `pagination` block.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u32,
    pub limit: u32,
}

impl<T> Page<T> {
    pub fn has_next(&self) -> bool {
        u64::from(self.page) * u64::from(self.limit) < self.total
    }
}

/// 1-based page and page size, bounded so a client cannot ask for the whole table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub limit: u32,
}

impl PageRequest {
    pub const MAX_LIMIT: u32 = 100;

    pub fn new(page: Option<i64>, limit: Option<i64>, default_limit: u32) -> Result<Self> {
        let page = page.unwrap_or(1);
        let limit = limit.unwrap_or(i64::from(default_limit));
        if !(1..=1_000_000).contains(&page) {
            return Err(Error::validation("page", "must be between 1 and 1000000"));
        }
        if !(1..=i64::from(Self::MAX_LIMIT)).contains(&limit) {
            return Err(Error::validation(
                "limit",
                format!("must be between 1 and {}", Self::MAX_LIMIT),
            ));
        }
        Ok(PageRequest {
            page: page as u32,
            limit: limit as u32,
        })
    }

    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.limit)
    }

    /// This page of `all`, which holds every item in list order.
    pub fn slice<T>(&self, all: Vec<T>) -> Page<T> {
        Page {
            total: all.len() as u64,
            items: all
                .into_iter()
                .skip(usize::try_from(self.offset()).unwrap_or(usize::MAX))
                .take(self.limit as usize)
                .collect(),
            page: self.page,
            limit: self.limit,
        }
    }
}
