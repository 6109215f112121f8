//! `/admin` finance: analytics over a range of days with its daily series, and the CSV
//! exports of orders and ledger entries for bookkeeping. Figures come from the daily figures
//! every write keeps (`giftify_shared::figures`), so no request reads a whole table.

use crate::AppState;
use crate::csv::{Csv, PeriodQuery, download, rupees, text};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{AdminUser, ApiQuery};
use crate::response::{Envelope, ok};
use crate::wire_time::{date, timestamp};
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use chrono::NaiveDate;
use giftify_shared::Paise;
use giftify_shared::figures::{DayFigures, ReportDay};
use giftify_shared::usecases::FinanceReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// The finance routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/analytics", get(analytics))
        .route("/admin/exports/orders.csv", get(export_orders))
        .route("/admin/exports/ledger.csv", get(export_ledger))
}

/// `?from&to` of a report: UTC calendar days, both included.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// The first day (`YYYY-MM-DD`, UTC); default: the first day anything was recorded.
    #[param(example = "2026-12-01")]
    pub from: Option<String>,
    /// The last day, included (`YYYY-MM-DD`, UTC); default today. A range given is at most
    /// 366 days.
    #[param(example = "2026-12-31")]
    pub to: Option<String>,
}

fn parse_day(field: &str, raw: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    raw.map(|raw| {
        NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .map_err(|_| ApiError::validation(field, format!("{field} must be a YYYY-MM-DD date")))
    })
    .transpose()
}

/// Figures of a range of days. Money in paise.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsData {
    /// The first and last day covered (UTC), both included.
    #[schema(format = Date)]
    pub from: String,
    #[schema(format = Date)]
    pub to: String,
    /// Value of the cards issued in the range.
    pub revenue: i64,
    pub revenue_formatted: String,
    /// Their cost price.
    pub cost: i64,
    /// `revenue − cost`.
    pub margin: i64,
    pub margin_formatted: String,
    /// Every status, with 0 for none: PENDING and PROCESSING are the orders open now; a
    /// final status counts the orders that reached it in the range.
    #[schema(example = json!({"PENDING": 0, "PROCESSING": 0, "FULFILLED": 12, "PARTIALLY_FULFILLED": 1, "REFUNDED": 0, "CANCELLED": 2}))]
    pub orders_by_status: BTreeMap<String, u64>,
    /// Orders placed (paid for) in the range, and their value: gross merchandise value.
    pub orders_placed: i64,
    pub gmv: i64,
    /// Money refunded to wallets: unfulfilled units, cancels, give-ups, returned cards.
    pub refunds: i64,
    /// Top-ups: how many, and how much.
    pub top_ups: i64,
    pub top_up_amount: i64,
    /// Σ admin balance corrections (signed).
    pub adjustments: i64,
    /// Σ face value of Giftify cards redeemed into wallets.
    pub redeemed: i64,
    /// Units requested by orders that went through fulfillment, and issued.
    pub requested_units: i64,
    pub fulfilled_units: i64,
    /// `fulfilledUnits / requestedUnits`, 0–1; null when nothing went through fulfillment.
    #[schema(example = 0.97)]
    pub fulfillment_rate: Option<f64>,
    /// By revenue, highest first, at most ten.
    pub top_products: Vec<TopProduct>,
    /// What Giftify owes at the end of `to`: Σ wallet balances + Σ face value of ACTIVE
    /// Giftify cards, which can be redeemed into a wallet any time.
    pub outstanding_liability: i64,
    pub outstanding_liability_formatted: String,
    /// Σ wallet balances at the end of `to`.
    pub wallet_balances: i64,
    /// Σ face value of ACTIVE Giftify (GENERATED) cards at the end of `to`.
    pub active_giftify_cards: i64,
    /// Top-ups and order payments that succeeded, over all attempts (refused for the
    /// balance or the wallet cap: `walletRefusals`); null without attempts.
    pub wallet_transaction_success_rate: Option<f64>,
    pub wallet_refusals: i64,
    /// Accounts active (an authenticated request) per day, averaged over the range.
    pub daily_active_users: f64,
    /// Accounts active in each calendar month the range touches, up to `to`.
    pub monthly_active_users: Vec<MonthlyActive>,
    /// Carts that got their first item in the range, orders placed from a cart, and the
    /// share of started carts not checked out (null when none started).
    pub carts_started: i64,
    pub carts_checked_out: i64,
    pub cart_abandonment_rate: Option<f64>,
    /// Every day of the range, oldest first: revenue over time and the rest.
    pub daily: Vec<DailyFigures>,
}

/// A best-selling product.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopProduct {
    pub product_id: String,
    pub product_name: String,
    /// Units issued.
    pub units: u64,
    pub revenue: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonthlyActive {
    /// `YYYY-MM`.
    #[schema(example = "2026-12")]
    pub month: String,
    pub active_users: i64,
}

/// One day of the series. Money in paise.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyFigures {
    #[schema(format = Date)]
    pub date: String,
    pub orders_placed: i64,
    pub orders_fulfilled: i64,
    pub orders_partially_fulfilled: i64,
    pub orders_refunded: i64,
    pub orders_cancelled: i64,
    pub gmv: i64,
    pub revenue: i64,
    pub cost: i64,
    pub margin: i64,
    pub refunds: i64,
    pub top_ups: i64,
    pub top_up_amount: i64,
    pub adjustments: i64,
    pub redeemed: i64,
    /// At the end of the day.
    pub outstanding_liability: i64,
    pub active_users: i64,
    pub wallet_refusals: i64,
    pub carts_started: i64,
    pub carts_checked_out: i64,
}

impl From<&ReportDay> for DailyFigures {
    fn from(day: &ReportDay) -> Self {
        let f: &DayFigures = &day.figures;
        DailyFigures {
            date: date(day.day),
            orders_placed: f.orders_placed,
            orders_fulfilled: f.orders_fulfilled,
            orders_partially_fulfilled: f.orders_partially_fulfilled,
            orders_refunded: f.orders_refunded,
            orders_cancelled: f.orders_cancelled,
            gmv: f.gmv,
            revenue: f.revenue,
            cost: f.cost,
            margin: f.revenue - f.cost,
            refunds: f.refunds,
            top_ups: f.top_ups,
            top_up_amount: f.top_up_amount,
            adjustments: f.adjustments,
            redeemed: f.redeemed,
            outstanding_liability: day.liability.get(),
            active_users: f.active_users,
            wallet_refusals: f.wallet_refusals,
            carts_started: f.carts_started,
            carts_checked_out: f.carts_checked_out,
        }
    }
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl From<&FinanceReport> for AnalyticsData {
    fn from(finance: &FinanceReport) -> Self {
        let report = &finance.report;
        let t = &report.totals;
        let (liability, balances, cards) = report.closing().map_or((0, 0, 0), |day| {
            (
                day.liability.get(),
                day.balances.get(),
                day.giftify_cards.get(),
            )
        });
        let orders_by_status = report
            .orders_by_status()
            .into_iter()
            .map(|(status, n)| (status.as_str().to_string(), n))
            .collect();
        let margin = t.revenue - t.cost;
        AnalyticsData {
            from: date(report.from),
            to: date(report.to),
            revenue: t.revenue,
            revenue_formatted: Paise::new(t.revenue).formatted(),
            cost: t.cost,
            margin,
            margin_formatted: Paise::new(margin).formatted(),
            orders_by_status,
            orders_placed: t.orders_placed,
            gmv: t.gmv,
            refunds: t.refunds,
            top_ups: t.top_ups,
            top_up_amount: t.top_up_amount,
            adjustments: t.adjustments,
            redeemed: t.redeemed,
            requested_units: t.requested_units,
            fulfilled_units: t.fulfilled_units,
            fulfillment_rate: report.fulfillment_rate(),
            top_products: finance
                .top_products
                .iter()
                .map(|p| TopProduct {
                    product_id: p.product_id.to_string(),
                    product_name: p.product_name.clone(),
                    units: count(p.units),
                    revenue: p.revenue,
                })
                .collect(),
            outstanding_liability: liability,
            outstanding_liability_formatted: Paise::new(liability).formatted(),
            wallet_balances: balances,
            active_giftify_cards: cards,
            wallet_transaction_success_rate: report.wallet_success_rate(),
            wallet_refusals: t.wallet_refusals,
            daily_active_users: report.average_daily_active_users(),
            monthly_active_users: report
                .months
                .iter()
                .map(|(month, active)| MonthlyActive {
                    month: month.format("%Y-%m").to_string(),
                    active_users: *active,
                })
                .collect(),
            carts_started: t.carts_started,
            carts_checked_out: t.carts_checked_out,
            cart_abandonment_rate: report.cart_abandonment_rate(),
            daily: report.days.iter().map(DailyFigures::from).collect(),
        }
    }
}

/// Finance over a range of days, with a daily series: orders by status, GMV, revenue, cost
/// and margin, refunds, top-ups, outstanding liability, top products, the wallet transaction
/// success rate, daily and monthly active users and cart abandonment. Without a range:
/// everything since the first recorded day.
#[utoipa::path(
    get, path = "/admin/analytics", tag = "admin",
    security(("bearerAuth" = [])),
    params(AnalyticsQuery),
    responses(
        (status = 200, description = "The figures", body = Envelope<AnalyticsData>),
        (status = 400, description = "VALIDATION_ERROR: a bad date, `from` after `to`, or more than 366 days", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
    )
)]
pub async fn analytics(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(query): ApiQuery<AnalyticsQuery>,
) -> Result<Envelope<AnalyticsData>, ApiError> {
    let from = parse_day("from", query.from.as_deref())?;
    let to = parse_day("to", query.to.as_deref())?;
    let report = state.giftify().finance_report(from, to).await?;
    Ok(ok(AnalyticsData::from(&report)))
}

/// Every order created in a period as CSV, oldest first: one row per order with its status,
/// amounts (rupees), units, and the value and cost of what was issued. Text a spreadsheet
/// would run as a formula is prefixed with `'`.
#[utoipa::path(
    get, path = "/admin/exports/orders.csv", tag = "admin",
    security(("bearerAuth" = [])),
    params(PeriodQuery),
    responses(
        (status = 200, description = "The orders", content_type = "text/csv", body = String,
            headers(("Content-Disposition" = String, description = "attachment, with a file name that holds the period"))),
        (status = 400, description = "VALIDATION_ERROR: a bad time, a `to` not after `from`, more than 366 days, or more than 100000 orders", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
    )
)]
pub async fn export_orders(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(query): ApiQuery<PeriodQuery>,
) -> Result<Response, ApiError> {
    let (from, to) = query.period()?;
    let orders = state.giftify().export_orders(from, to).await?;
    let mut csv = Csv::with_header(&[
        "createdAt",
        "orderId",
        "userId",
        "status",
        "source",
        "totalAmount",
        "paidAmount",
        "refundAmount",
        "requestedUnits",
        "fulfilledUnits",
        "fulfilledValue",
        "fulfilledCost",
        "updatedAt",
        "refundReason",
        "clientReference",
    ]);
    for order in &orders {
        let lines = &order.items;
        let requested: u64 = lines.iter().map(|l| u64::from(l.requested_quantity)).sum();
        let fulfilled: u64 = lines.iter().map(|l| u64::from(l.fulfilled_quantity)).sum();
        let value: i64 = lines.iter().map(|l| l.fulfilled_price().get()).sum();
        let cost: i64 = lines
            .iter()
            .map(|l| l.cost_price.get() * i64::from(l.fulfilled_quantity))
            .sum();
        csv.row([
            timestamp(order.created_at),
            order.id.to_string(),
            order.user_id.to_string(),
            order.status.as_str().to_string(),
            order.source.as_str().to_string(),
            rupees(order.total_amount.get()),
            rupees(order.paid_amount.get()),
            rupees(order.refund_amount.get()),
            requested.to_string(),
            fulfilled.to_string(),
            rupees(value),
            rupees(cost),
            timestamp(order.updated_at),
            text(
                order
                    .fulfillment
                    .refund_reason
                    .as_deref()
                    .unwrap_or_default(),
            ),
            text(
                order
                    .labels
                    .client_reference
                    .as_ref()
                    .map(|r| r.as_str())
                    .unwrap_or_default(),
            ),
        ]);
    }
    Ok(download("orders", from, to, csv.into_string()))
}

/// Every account's wallet transactions of a period as CSV, by time: `amount` is signed (money
/// into a wallet positive), in rupees, with the balance after it.
#[utoipa::path(
    get, path = "/admin/exports/ledger.csv", tag = "admin",
    security(("bearerAuth" = [])),
    params(PeriodQuery),
    responses(
        (status = 200, description = "The ledger entries", content_type = "text/csv", body = String,
            headers(("Content-Disposition" = String, description = "attachment, with a file name that holds the period"))),
        (status = 400, description = "VALIDATION_ERROR: a bad time, a `to` not after `from`, more than 366 days, or more than 100000 entries", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
    )
)]
pub async fn export_ledger(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(query): ApiQuery<PeriodQuery>,
) -> Result<Response, ApiError> {
    let (from, to) = query.period()?;
    let entries = state.giftify().export_ledger(from, to).await?;
    let mut csv = Csv::with_header(&[
        "time",
        "transactionId",
        "userId",
        "type",
        "description",
        "orderId",
        "amount",
        "balanceAfter",
    ]);
    for entry in &entries {
        csv.row([
            timestamp(entry.created_at),
            entry.id.to_string(),
            entry.user_id.to_string(),
            entry.kind.as_str().to_string(),
            text(&entry.description),
            entry
                .order_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            rupees(entry.balance_change().get()),
            rupees(entry.balance_after.get()),
        ]);
    }
    Ok(download("ledger", from, to, csv.into_string()))
}
