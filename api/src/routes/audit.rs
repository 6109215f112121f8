//! `/admin/audit`: the audit log — every admin's and operator's action, and the reconciler's
//! refunds — newest first, filtered and paged.

use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{AdminUser, ApiQuery, parse_id, parse_int, parse_time};
use crate::response::{Envelope, ok};
use crate::wire_time::timestamp;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::{Duration, Utc};
use giftify_shared::audit::{Actor, AuditAction, AuditEntry, AuditQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The `/admin/audit` route.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/audit", get(audit))
}

/// Range, filters and paging of the log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// RFC 3339, inclusive; default 30 days before `to`. The range spans at most 92 days.
    pub from: Option<String>,
    /// RFC 3339, exclusive; default now.
    pub to: Option<String>,
    /// An admin's user id, `cli` (an operator's command) or `reconciler`.
    pub actor: Option<String>,
    /// One action, e.g. `inventory.changed`, `order.refunded`.
    pub action: Option<String>,
    /// The id of what changed: an order, variant, product, webhook endpoint or message id.
    pub subject: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<String>,
}

/// A page of the log, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditData {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next page; `null` at the end of the range.
    pub next_cursor: Option<String>,
}

/// One action: who, when, what, and the values before and after.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryView {
    pub audit_id: String,
    #[schema(format = DateTime)]
    pub at: String,
    /// An admin's user id, `cli` or `reconciler`.
    pub actor: String,
    pub action: String,
    pub subject: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(entry: AuditEntry) -> Self {
        AuditEntryView {
            audit_id: entry.id.to_string(),
            at: timestamp(entry.at),
            actor: entry.actor.to_string(),
            action: entry.action.as_str().to_string(),
            subject: entry.subject,
            before: entry.before,
            after: entry.after,
        }
    }
}

/// The audit log, newest first.
#[utoipa::path(
    get, path = "/admin/audit", tag = "admin",
    security(("bearerAuth" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "A page of entries", body = Envelope<AuditData>),
        (status = 400, description = "VALIDATION_ERROR: a bad time, range, actor, action, cursor or limit", body = ErrorEnvelope),
    )
)]
pub async fn audit(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Envelope<AuditData>, ApiError> {
    let to = parse_time("to", params.to.as_deref())?.unwrap_or_else(Utc::now);
    let from = parse_time("from", params.from.as_deref())?.unwrap_or(to - Duration::days(30));
    let actor = params
        .actor
        .as_deref()
        .map(|raw| {
            Actor::parse(raw).ok_or_else(|| {
                ApiError::validation("actor", "actor must be a user id, cli or reconciler")
            })
        })
        .transpose()?;
    let action = params
        .action
        .as_deref()
        .map(|raw| {
            AuditAction::parse(raw)
                .ok_or_else(|| ApiError::validation("action", "action is not a known action"))
        })
        .transpose()?;
    let limit = parse_int("limit", params.limit.as_deref())?.unwrap_or(50);
    let limit = u32::try_from(limit)
        .ok()
        .filter(|n| (1..=200).contains(n))
        .ok_or_else(|| ApiError::validation("limit", "must be between 1 and 200"))?;
    let query = AuditQuery {
        from,
        to,
        actor,
        action,
        subject: params.subject.filter(|s| !s.is_empty()),
        before: params
            .cursor
            .as_deref()
            .map(|raw| parse_id("cursor", raw))
            .transpose()?,
        limit,
    };
    let page = state.giftify().audit_log(&query).await?;
    Ok(ok(AuditData {
        entries: page.entries.into_iter().map(Into::into).collect(),
        next_cursor: page.next.map(|id| id.to_string()),
    }))
}
