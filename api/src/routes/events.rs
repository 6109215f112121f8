//! `/events`: the caller's event feed (every event for an admin), so a client catches up after
//! downtime without webhooks.

use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::parse_int;
use crate::extract::{ApiQuery, AuthUser};
use crate::response::{Envelope, ok};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The `/events` route.
pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(feed))
}

/// `?after=&limit=` of the feed.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The `nextCursor` of the previous page; omit to start from the first event.
    pub after: Option<String>,
    /// Events per page, 1–100 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, example = 50)]
    pub limit: Option<String>,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedData {
    /// In the order they were recorded; each exactly as webhooks deliver it (`eventId`,
    /// `eventType`, `occurredAt`, `sequence` among its order's events, …).
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// Send as `after` for the next page. When `hasMore` is false, it is where to ask again
    /// later: events recorded since come after it.
    pub next_cursor: String,
    pub has_more: bool,
}

/// Your events, oldest first, after a cursor (an admin reads every user's).
///
/// The order is the order of recording and never changes: an event appears after every event
/// recorded before it, so paging with `nextCursor` sees each event exactly once, even while
/// new ones are recorded. Keep the last `nextCursor` to resume after downtime.
#[utoipa::path(
    get, path = "/events", tag = "events",
    security(("bearerAuth" = [])),
    params(FeedQuery),
    responses(
        (status = 200, description = "A page of events", body = Envelope<FeedData>),
        (status = 400, description = "VALIDATION_ERROR: a cursor of another feed, or a bad limit", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
    )
)]
pub async fn feed(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<Envelope<FeedData>, ApiError> {
    let feed = state.giftify().feed_of(&caller.id, caller.role);
    let limit = parse_int("limit", query.limit.as_deref())?.unwrap_or(50);
    let limit = u32::try_from(limit)
        .map_err(|_| ApiError::validation("limit", "must be between 1 and 100"))?;
    let page = state
        .giftify()
        .event_feed(&feed, query.after.as_deref(), limit)
        .await?;
    Ok(ok(FeedData {
        events: page
            .events
            .iter()
            .map(|event| serde_json::to_value(event).unwrap_or_default())
            .collect(),
        next_cursor: page.next.encode(),
        has_more: page.has_more,
    }))
}
