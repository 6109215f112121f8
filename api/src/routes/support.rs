//! `/admin/users`: support's view of the accounts — find one by email or page through them,
//! see it with its balance and latest orders, suspend or reactivate it, and correct its
//! balance. Every change is audited with the admin and the reason they gave.

use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{AdminUser, ApiJson, ApiPath, ApiQuery, JsonBody, parse_id, parse_int};
use crate::idempotency::{answer, keyed_request};
use crate::response::{Envelope, ok};
use crate::routes::admin::AdminOrderSummary;
use crate::routes::wallet::TransactionView;
use crate::wire_time::timestamp;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use giftify_shared::ids::UserId;
use giftify_shared::usecases::admin_reason;
use giftify_shared::user::{Email, User, UserSearch, UserStatus};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

/// The `/admin/users` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list))
        .route("/admin/users/{userId}", get(detail))
        .route("/admin/users/{userId}/suspend", post(suspend))
        .route("/admin/users/{userId}/reactivate", post(reactivate))
        .route(
            "/admin/users/{userId}/wallet/adjustments",
            post(adjust_balance),
        )
}

/// `?email&cursor&limit` of the account list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// The account with this address (normalised as at registration); without it, every
    /// account a page at a time.
    pub email: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Accounts per page, 1–100 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, example = 50)]
    pub limit: Option<String>,
}

/// An account as support sees it. Money in paise.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminUserView {
    pub user_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: Option<String>,
    /// USER or ADMIN.
    pub role: String,
    /// ACTIVE or SUSPENDED.
    pub status: String,
    pub wallet_balance: i64,
    #[schema(example = "₹1,500.00")]
    pub wallet_balance_formatted: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_login_at: Option<String>,
}

impl From<&User> for AdminUserView {
    fn from(user: &User) -> Self {
        AdminUserView {
            user_id: user.id.to_string(),
            email: user.email.as_str().to_string(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            phone_number: user.phone_number.clone(),
            role: user.role.as_str().to_string(),
            status: user.status.as_str().to_string(),
            wallet_balance: user.wallet_balance.get(),
            wallet_balance_formatted: user.wallet_balance.formatted(),
            created_at: timestamp(user.created_at),
            last_login_at: user.last_login_at.map(timestamp),
        }
    }
}

/// A page of accounts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserListData {
    pub users: Vec<AdminUserView>,
    /// Pass as `cursor` for the next page; absent on the last one. Pages follow the store's
    /// own order (by id locally, by hash on DynamoDB): each account appears once.
    pub next_cursor: Option<String>,
}

/// An account with its latest orders.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserDetailData {
    pub user: AdminUserView,
    /// Every order the account placed.
    pub order_count: u64,
    /// The latest ten, newest first.
    pub recent_orders: Vec<AdminOrderSummary>,
}

/// Why an admin suspends or reactivates an account; kept in the audit log.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StandingRequest {
    #[schema(min_length = 1, max_length = 500, example = "chargeback under review")]
    pub reason: String,
}

/// A balance correction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdjustmentRequest {
    /// Signed paise: positive adds to the balance, negative takes from it. Not zero; at most
    /// the wallet's balance limit either way.
    #[schema(example = -25000)]
    pub amount: i64,
    /// Shown to the customer as the ADJUSTMENT's description and kept in the audit log.
    #[schema(
        min_length = 1,
        max_length = 500,
        example = "Goodwill credit for ticket 4411"
    )]
    pub reason: String,
}

/// Find accounts: the one with an email, or all of them a page at a time.
#[utoipa::path(
    get, path = "/admin/users", tag = "admin",
    security(("bearerAuth" = [])),
    params(UserListQuery),
    responses(
        (status = 200, description = "A page of accounts", body = Envelope<UserListData>),
        (status = 400, description = "VALIDATION_ERROR: a bad email, cursor or limit", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(query): ApiQuery<UserListQuery>,
) -> Result<Envelope<UserListData>, ApiError> {
    let limit = parse_int("limit", query.limit.as_deref())?.unwrap_or(50);
    let limit = u32::try_from(limit)
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| ApiError::validation("limit", "must be between 1 and 100"))?;
    let search = UserSearch {
        email: query.email.as_deref().map(Email::parse).transpose()?,
        after: query
            .cursor
            .as_deref()
            .map(|cursor| parse_id::<UserId>("cursor", cursor))
            .transpose()?,
        limit,
    };
    let page = state.giftify().find_users(&search).await?;
    Ok(ok(UserListData {
        users: page.users.iter().map(AdminUserView::from).collect(),
        next_cursor: page.next.map(|id| id.to_string()),
    }))
}

/// An account with its balance and latest orders.
#[utoipa::path(
    get, path = "/admin/users/{userId}", tag = "admin",
    security(("bearerAuth" = [])),
    params(("userId" = String, Path, description = "user_…")),
    responses(
        (status = 200, description = "The account", body = Envelope<UserDetailData>),
        (status = 400, description = "VALIDATION_ERROR: a malformed user id", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub async fn detail(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Envelope<UserDetailData>, ApiError> {
    let id: UserId = parse_id("userId", &user_id)?;
    let overview = state.giftify().account_overview(&id).await?;
    Ok(ok(UserDetailData {
        user: AdminUserView::from(&overview.user),
        order_count: overview.order_count,
        recent_orders: overview
            .recent_orders
            .iter()
            .map(AdminOrderSummary::from)
            .collect(),
    }))
}

/// Suspend an account: its sessions end, and its next request — with an access token, a
/// refresh token or an API key — is refused with 403 ACCOUNT_SUSPENDED, as is a login.
/// Suspending a suspended account changes nothing.
#[utoipa::path(
    post, path = "/admin/users/{userId}/suspend", tag = "admin",
    security(("bearerAuth" = [])),
    params(("userId" = String, Path, description = "user_…")),
    request_body = StandingRequest,
    responses(
        (status = 200, description = "Suspended", body = Envelope<AdminUserView>),
        (status = 400, description = "VALIDATION_ERROR: a malformed id, a blank or over-long reason, or the admin's own account", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub async fn suspend(
    state: State<AppState>,
    admin: AdminUser,
    user_id: ApiPath<String>,
    body: ApiJson<StandingRequest>,
) -> Result<Envelope<AdminUserView>, ApiError> {
    set_standing(state, admin, user_id, body, UserStatus::Suspended).await
}

/// Reactivate a suspended account. The sessions the suspension ended stay ended: the customer
/// signs in again.
#[utoipa::path(
    post, path = "/admin/users/{userId}/reactivate", tag = "admin",
    security(("bearerAuth" = [])),
    params(("userId" = String, Path, description = "user_…")),
    request_body = StandingRequest,
    responses(
        (status = 200, description = "Active", body = Envelope<AdminUserView>),
        (status = 400, description = "VALIDATION_ERROR: a malformed id, or a blank or over-long reason", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub async fn reactivate(
    state: State<AppState>,
    admin: AdminUser,
    user_id: ApiPath<String>,
    body: ApiJson<StandingRequest>,
) -> Result<Envelope<AdminUserView>, ApiError> {
    set_standing(state, admin, user_id, body, UserStatus::Active).await
}

async fn set_standing(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(body): ApiJson<StandingRequest>,
    to: UserStatus,
) -> Result<Envelope<AdminUserView>, ApiError> {
    let id: UserId = parse_id("userId", &user_id)?;
    let reason = admin_reason(&body.reason)?;
    let user = state
        .giftify()
        .set_standing(&admin.actor(), &id, to, reason)
        .await?;
    Ok(ok(AdminUserView::from(&user)))
}

/// Correct an account's balance with an ADJUSTMENT entry in its ledger, which the customer
/// sees with the reason as its description.
///
/// The `Idempotency-Key` (scoped to the admin) is required, so a retried correction is
/// applied once. An admin cannot correct their own balance.
#[utoipa::path(
    post, path = "/admin/users/{userId}/wallet/adjustments", tag = "admin",
    security(("bearerAuth" = [])),
    params(
        ("userId" = String, Path, description = "user_…"),
        ("Idempotency-Key" = String, Header, description = "Required. 1–255 printable ASCII characters; scoped to the admin, kept 24 h"),
    ),
    request_body = AdjustmentRequest,
    responses(
        (status = 200, description = "Applied", body = Envelope<TransactionView>,
            headers(("Idempotent-Replayed" = String, description = "`true` when this replays an earlier request with the same key"))),
        (status = 400, description = "VALIDATION_ERROR: a malformed id, a missing Idempotency-Key, a zero or too large amount, a blank or over-long reason, or the admin's own account", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "IDEMPOTENCY_IN_PROGRESS", body = ErrorEnvelope),
        (status = 422, description = "INSUFFICIENT_BALANCE (it would go below zero), WALLET_LIMIT_EXCEEDED or IDEMPOTENCY_KEY_REUSED", body = ErrorEnvelope),
    )
)]
pub async fn adjust_balance(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath(user_id): ApiPath<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let id: UserId = parse_id("userId", &user_id)?;
    let request: AdjustmentRequest = body.parse()?;
    let reason = admin_reason(&request.reason)?;
    let (giftify, actor) = (state.giftify(), admin.actor());
    // The account is part of what "the same request" means: one key may not correct two.
    let fingerprinted = json!({ "userId": id.as_str(), "body": body.value() });
    // Required: a correction retried after a lost answer must land once, so it is never sent
    // without the key that makes the retry safe.
    let key = keyed_request(&admin.id, &headers, "admin.wallet.adjust", &fingerprinted)?
        .ok_or_else(|| {
            ApiError::validation(
                "Idempotency-Key",
                "a balance correction needs an Idempotency-Key",
            )
        })?;
    Ok(answer(
        giftify
            .adjust_balance_keyed(&actor, &id, request.amount, reason, key)
            .await?,
        |record| ok(TransactionView::from(&record)).into_response(),
    ))
}
