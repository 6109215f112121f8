//! Finance for admins: reports over a range of days from the daily figures, and the CSV
//! exports of orders and ledger entries; and the two figures that no money write carries — an
//! account's first activity of the day, and a payment or top-up the wallet refused.

use super::Giftify;
use crate::figures::{Activity, Report, Tally, check_range};
use crate::ids::{ProductId, UserId};
use crate::order::Order;
use crate::user::User;
use crate::wallet::WalletTransaction;
use crate::{Error, Result};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;

/// Most rows one export holds; a longer period is refused with a hint to shorten it.
pub const MAX_EXPORT_ROWS: u32 = 100_000;

/// Products shown in a report's top list.
const TOP_PRODUCTS: usize = 10;

/// A report with what it needs from the catalogue: its best-selling products, named.
#[derive(Clone, Debug, PartialEq)]
pub struct FinanceReport {
    pub report: Report,
    /// By revenue, highest first, then by name; at most ten.
    pub top_products: Vec<TopProduct>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopProduct {
    pub product_id: ProductId,
    pub product_name: String,
    pub units: i64,
    pub revenue: i64,
}

impl Giftify {
    /// The report of `from..=to` (UTC days). Without `to`, or past today, through today;
    /// without `from`, from the first recorded day (everything). A range given is at most
    /// [`crate::figures::MAX_REPORT_DAYS`] long.
    /// # Errors
    /// [`Error::Validation`] for a range backwards, too long, or starting after today.
    pub async fn finance_report(
        &self,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<FinanceReport> {
        let today = self.now().date_naive();
        let asked_to = to.unwrap_or(today);
        if let Some(from) = from {
            check_range(from, asked_to)?;
            if from > today {
                return Err(Error::validation("from", "from must not be after today"));
            }
        }
        // Nothing is recorded after today: a range reaching past it ends today.
        let report = self.report(from, asked_to.min(today)).await?;
        let top_products = self.top_products(&report).await?;
        Ok(FinanceReport {
            report,
            top_products,
        })
    }

    /// Everything recorded through today: the all-time figures `/metrics` reads.
    pub async fn report_to_date(&self) -> Result<Report> {
        self.report(None, self.now().date_naive()).await
    }

    async fn report(&self, from: Option<NaiveDate>, to: NaiveDate) -> Result<Report> {
        let recorded = self.ports.reports.recorded_days(to).await?;
        let from = from.unwrap_or_else(|| Report::first_day(&recorded).unwrap_or(to).min(to));
        let open = self.ports.reports.open_orders().await?;
        Report::of(from, to, &recorded, open)
    }

    async fn top_products(&self, report: &Report) -> Result<Vec<TopProduct>> {
        if report.totals.products.is_empty() {
            return Ok(Vec::new());
        }
        let names: HashMap<ProductId, String> = self
            .ports
            .catalogue
            .inventory()
            .await?
            .into_iter()
            .map(|entry| (entry.product.id, entry.product.name))
            .collect();
        let mut top: Vec<TopProduct> = report
            .totals
            .products
            .iter()
            .filter(|(_, day)| day.units > 0)
            .map(|(id, day)| TopProduct {
                product_name: names.get(id).cloned().unwrap_or_else(|| id.to_string()),
                product_id: id.clone(),
                units: day.units,
                revenue: day.revenue,
            })
            .collect();
        top.sort_by(|a, b| {
            b.revenue
                .cmp(&a.revenue)
                .then_with(|| a.product_name.cmp(&b.product_name))
        });
        top.truncate(TOP_PRODUCTS);
        Ok(top)
    }

    /// Orders created in `[from, to)`, oldest first.
    /// # Errors
    /// [`Error::Validation`] for a period backwards, longer than a report's, or holding more
    /// than [`MAX_EXPORT_ROWS`] orders.
    pub async fn export_orders(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Order>> {
        check_period(from, to)?;
        let orders = self
            .ports
            .reports
            .orders_created(from, to, MAX_EXPORT_ROWS + 1)
            .await?;
        within_export_cap(orders)
    }

    /// Every account's wallet transactions of `[from, to)`, by time.
    /// # Errors
    /// As [`Giftify::export_orders`].
    pub async fn export_ledger(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<WalletTransaction>> {
        check_period(from, to)?;
        let entries = self
            .ports
            .reports
            .ledger_entries(from, to, MAX_EXPORT_ROWS + 1)
            .await?;
        within_export_cap(entries)
    }

    /// Counts the account as active today, once a day. A failure only loses a figure, never
    /// the request: it is logged, not returned.
    pub(super) async fn note_activity(&self, user: &User) {
        let Some(activity) = Activity::of(&user.id, user.active_on, self.now()) else {
            return;
        };
        if let Err(error) = self.ports.reports.record_activity(&activity).await {
            tracing::warn!(user_id = %user.id, error = %error, "activity not counted");
        }
    }

    /// Passes `result` on, counting a refusal by the wallet (insufficient balance, over its
    /// cap) in the day's figures: the wallet success rate's failures.
    pub(super) async fn counting_wallet_refusal<T>(
        &self,
        user: &UserId,
        result: Result<T>,
    ) -> Result<T> {
        if let Err(Error::InsufficientBalance { .. } | Error::WalletLimitExceeded { .. }) = &result
        {
            let tally = Tally::of_wallet_refusal(user, self.now());
            if let Err(error) = self.ports.reports.record_tally(&tally).await {
                tracing::warn!(user_id = %user, error = %error, "wallet refusal not counted");
            }
        }
        result
    }
}

fn check_period(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<()> {
    if from >= to {
        return Err(Error::validation("from", "from must be before to"));
    }
    if to - from > chrono::Duration::days(crate::figures::MAX_REPORT_DAYS) {
        return Err(Error::validation(
            "to",
            format!(
                "an export covers at most {} days",
                crate::figures::MAX_REPORT_DAYS
            ),
        ));
    }
    Ok(())
}

fn within_export_cap<T>(rows: Vec<T>) -> Result<Vec<T>> {
    if rows.len() > MAX_EXPORT_ROWS as usize {
        return Err(Error::validation(
            "from",
            format!("the period holds more than {MAX_EXPORT_ROWS} rows; ask for a shorter one"),
        ));
    }
    Ok(rows)
}
