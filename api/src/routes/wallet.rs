//! `/wallet`: balance, top-ups (idempotent), the transaction history and the CSV statement.

use crate::AppState;
use crate::csv::{Csv, PeriodQuery, download, rupees, text};
use crate::dto::{Pagination, TransactionTypeDto, page_request};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiQuery, AuthUser, JsonBody, parse_time};
use crate::idempotency::{answer, keyed_request};
use crate::response::{Envelope, ok};
use crate::wire_time::timestamp;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use giftify_shared::rate_limits::LimitedAction;
use giftify_shared::usecases::Statement;
use giftify_shared::wallet::{TransactionFilter, TransactionType, WalletTransaction};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The `/wallet` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/wallet/balance", get(balance))
        .route("/wallet/topup", post(top_up))
        .route("/wallet/transactions", get(transactions))
        .route("/wallet/statement.csv", get(statement))
}

/// Every transaction is recorded in the same atomic step as its balance change, so none is
/// ever pending or failed.
const COMPLETED: &str = "COMPLETED";

/// The wallet balance.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceData {
    /// In paise.
    #[schema(example = 150000)]
    pub balance: i64,
    /// With the rupee sign and Indian digit grouping.
    #[schema(example = "₹1,500.00")]
    pub balance_formatted: String,
}

/// A top-up request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TopUpRequest {
    /// In paise: 1 to 10000000 (₹1,00,000). The balance may not exceed ₹2,00,000.
    #[schema(example = 50000, minimum = 1, maximum = 10000000)]
    pub amount: i64,
    /// Up to 200 characters; defaults to "Manual wallet top-up".
    #[schema(example = "Manual wallet top-up")]
    pub description: Option<String>,
}

/// A completed top-up.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopUpData {
    #[schema(example = "txn_01HXXXXXXXXXXXXXXXXXXXXXXX")]
    pub transaction_id: String,
    #[schema(example = 50000)]
    pub amount: i64,
    #[schema(example = 200000)]
    pub new_balance: i64,
    #[schema(example = "COMPLETED")]
    pub status: String,
}

/// One wallet transaction.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionView {
    pub transaction_id: String,
    #[serde(rename = "type")]
    pub kind: TransactionTypeDto,
    /// In paise; positive with `type` giving the direction, except an ADJUSTMENT's, whose
    /// sign does.
    pub amount: i64,
    pub balance_after: i64,
    pub description: String,
    /// The order a DEBIT or REFUND belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[schema(example = "COMPLETED")]
    pub status: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A page of the history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionsData {
    pub transactions: Vec<TransactionView>,
    pub pagination: Pagination,
}

/// `?page&limit&type&from&to`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransactionsQuery {
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1, example = 1)]
    pub page: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, example = 20)]
    pub limit: Option<String>,
    /// Only transactions of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<TransactionTypeDto>)]
    pub kind: Option<String>,
    /// Only transactions at or after this time (RFC 3339, or a date: its start in UTC).
    #[param(example = "2026-12-01")]
    pub from: Option<String>,
    /// Only transactions before this time (RFC 3339, or a date: its start in UTC).
    #[param(example = "2027-01-01")]
    pub to: Option<String>,
}

/// The response of a top-up, also rendered when an idempotent request replays.
pub fn topped_up(transaction: &WalletTransaction) -> Envelope<TopUpData> {
    ok(TopUpData {
        transaction_id: transaction.id.to_string(),
        amount: transaction.amount.get(),
        new_balance: transaction.balance_after.get(),
        status: COMPLETED.into(),
    })
}

impl From<&WalletTransaction> for TransactionView {
    fn from(transaction: &WalletTransaction) -> Self {
        TransactionView {
            transaction_id: transaction.id.to_string(),
            kind: transaction.kind.into(),
            amount: transaction.amount.get(),
            balance_after: transaction.balance_after.get(),
            description: transaction.description.clone(),
            order_id: transaction.order_id.as_ref().map(ToString::to_string),
            status: COMPLETED.into(),
            created_at: timestamp(transaction.created_at),
        }
    }
}

/// The caller's wallet balance.
#[utoipa::path(
    get, path = "/wallet/balance", tag = "wallet",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The balance", body = Envelope<BalanceData>),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
    )
)]
pub async fn balance(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Envelope<BalanceData>, ApiError> {
    let balance = state.giftify().balance(&user.id).await?;
    Ok(ok(BalanceData {
        balance: balance.get(),
        balance_formatted: balance.formatted(),
    }))
}

/// Top up the wallet.
///
/// Send an `Idempotency-Key` to make retries safe: the same key and body replay the first
/// response (with `Idempotent-Replayed: true`) instead of crediting twice.
#[utoipa::path(
    post, path = "/wallet/topup", tag = "wallet",
    security(("bearerAuth" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 printable ASCII characters; scoped to the caller, kept 24 h")),
    request_body = TopUpRequest,
    responses(
        (status = 200, description = "Credited", body = Envelope<TopUpData>,
            headers(("Idempotent-Replayed" = String, description = "`true` when this replays an earlier request with the same key"))),
        (status = 400, description = "VALIDATION_ERROR: amount outside 1–10000000 paise, bad description or key", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "SELF_TOPUP_DISABLED: this shop credits wallets only through admins (GIFTIFY_SELF_TOPUP=false); ACCOUNT_SUSPENDED; or INSUFFICIENT_SCOPE: an API key without wallet:write (`details.requiredScope`)", body = ErrorEnvelope),
        (status = 409, description = "IDEMPOTENCY_IN_PROGRESS", body = ErrorEnvelope),
        (status = 422, description = "WALLET_LIMIT_EXCEEDED or IDEMPOTENCY_KEY_REUSED", body = ErrorEnvelope),
        (status = 429, description = "RATE_LIMITED: too many top-ups (GIFTIFY_USER_RATE_LIMITS) or the API key's budget is spent; see Retry-After", body = ErrorEnvelope,
            headers(("Retry-After" = i64, description = "Seconds until the budget's window ends"))),
    )
)]
pub async fn top_up(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    state
        .giftify()
        .spend_budget(LimitedAction::TopUp, user.id.as_str())
        .await?;
    let request: TopUpRequest = body.parse()?;
    let (giftify, user) = (state.giftify(), &user.id);
    let (amount, description) = (request.amount, request.description);
    Ok(
        match keyed_request(user, &headers, "wallet.topup", body.value())? {
            None => topped_up(&giftify.top_up(user, amount, description).await?).into_response(),
            Some(key) => answer(
                giftify.top_up_keyed(user, amount, description, key).await?,
                |transaction| topped_up(&transaction).into_response(),
            ),
        },
    )
}

/// The caller's transactions, newest first.
#[utoipa::path(
    get, path = "/wallet/transactions", tag = "wallet",
    security(("bearerAuth" = [])),
    params(TransactionsQuery),
    responses(
        (status = 200, description = "A page of transactions", body = Envelope<TransactionsData>),
        (status = 400, description = "VALIDATION_ERROR: bad page, limit, type, from or to, or a `to` not after `from`", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
    )
)]
pub async fn transactions(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<TransactionsQuery>,
) -> Result<Envelope<TransactionsData>, ApiError> {
    let page = page_request(query.page.as_deref(), query.limit.as_deref(), 20)?;
    let kind = query
        .kind
        .as_deref()
        .map(|raw| {
            TransactionType::parse(raw).ok_or_else(|| {
                ApiError::validation(
                    "type",
                    "must be one of CREDIT, DEBIT, REFUND, REDEEM, ADJUSTMENT",
                )
            })
        })
        .transpose()?;
    let filter = TransactionFilter::new(
        kind,
        parse_time("from", query.from.as_deref())?,
        parse_time("to", query.to.as_deref())?,
    )?;
    let found = state
        .giftify()
        .transactions(&user.id, &filter, page)
        .await?;
    Ok(ok(TransactionsData {
        transactions: found.items.iter().map(TransactionView::from).collect(),
        pagination: Pagination::from(&found),
    }))
}

/// The caller's statement as CSV, for bookkeeping.
///
/// One row per transaction, oldest first, between an `OPENING_BALANCE` row (the balance at
/// `from`) and a `CLOSING_BALANCE` row (at `to`). `amount` is signed — money in positive,
/// money out negative — so the opening balance plus the amounts is the closing balance.
/// Amounts are rupees with two decimals; times are RFC 3339 in UTC. Text that a spreadsheet
/// would run as a formula (`=`, `+`, `-`, `@` first) is prefixed with `'`.
#[utoipa::path(
    get, path = "/wallet/statement.csv", tag = "wallet",
    security(("bearerAuth" = [])),
    params(PeriodQuery),
    responses(
        (status = 200, description = "The statement", content_type = "text/csv", body = String,
            headers(("Content-Disposition" = String, description = "attachment, with a file name that holds the period"))),
        (status = 400, description = "VALIDATION_ERROR: a bad time, a `to` not after `from`, more than 366 days, or more than 10000 transactions", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
    )
)]
pub async fn statement(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<PeriodQuery>,
) -> Result<Response, ApiError> {
    let (from, to) = query.period()?;
    let statement = state.giftify().statement(&user.id, from, to).await?;
    Ok(download(
        "statement",
        statement.from,
        statement.to,
        statement_csv(&statement),
    ))
}

/// The CSV of a statement.
pub fn statement_csv(statement: &Statement) -> String {
    let mut csv = Csv::with_header(&[
        "time",
        "transactionId",
        "type",
        "description",
        "orderId",
        "amount",
        "balanceAfter",
    ]);
    let balance_row = |at, kind: &str, balance: i64| {
        [
            timestamp(at),
            String::new(),
            kind.to_string(),
            String::new(),
            String::new(),
            String::new(),
            rupees(balance),
        ]
    };
    csv.row(balance_row(
        statement.from,
        "OPENING_BALANCE",
        statement.opening.get(),
    ));
    for entry in &statement.entries {
        csv.row([
            timestamp(entry.created_at),
            entry.id.to_string(),
            entry.kind.as_str().into(),
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
    csv.row(balance_row(
        statement.to,
        "CLOSING_BALANCE",
        statement.closing.get(),
    ));
    csv.into_string()
}
