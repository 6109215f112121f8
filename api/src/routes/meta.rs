//! Operational endpoints: `/health` and `/metrics`. Neither needs a token: probes and scrapers
//! have none. (`/openapi.json` and `/docs` are the OpenAPI module's own routes.)

use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::metrics::Gauges;
use crate::response::{Envelope, ok};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use giftify_shared::Error as CoreError;
use giftify_shared::figures::Report;
use serde::Serialize;
use utoipa::ToSchema;

/// The operational routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
}

/// The service is up and its backend answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthData {
    #[schema(example = "ok")]
    pub status: String,
    #[schema(example = "0.1.0")]
    pub version: String,
}

/// Liveness and backend reachability.
#[utoipa::path(
    get, path = "/health", tag = "meta",
    responses(
        (status = 200, description = "Up; the backend answers", body = Envelope<HealthData>),
        (status = 503, description = "SERVICE_UNAVAILABLE: the backend does not answer", body = ErrorEnvelope),
    )
)]
pub async fn health(State(state): State<AppState>) -> Result<Envelope<HealthData>, ApiError> {
    // Whatever went wrong, a failed probe means "not ready": 503, so load balancers and
    // orchestrators react, with the cause in the log.
    state
        .giftify()
        .health()
        .await
        .map_err(|error| match error {
            CoreError::Unavailable(_) => error,
            other => CoreError::Unavailable(anyhow::Error::new(other).context("health check")),
        })?;
    Ok(ok(HealthData {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

/// Prometheus metrics (text exposition format).
///
/// Request latency by matched route, method and status class; orders by status; queue and
/// dead-letter depths and the oldest queued message's age; the create → final latency of
/// fulfillments. A gauge whose backend read fails is left out of that scrape.
#[utoipa::path(
    get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Metrics", content_type = "text/plain; version=0.0.4", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let giftify = state.giftify();
    let (figures, depths) = tokio::join!(giftify.report_to_date(), giftify.queue_depths());
    let figures = figures
        .map_err(|error| tracing::warn!(error = %error, "metrics: daily figures unavailable"))
        .ok();
    let gauges = Gauges {
        orders_by_status: figures.as_ref().map(Report::orders_by_status),
        create_to_final: figures.map(|report| report.totals),
        now: Some(giftify.clock.now()),
        queue: depths
            .map_err(|error| tracing::warn!(error = %error, "metrics: queue depths unavailable"))
            .ok(),
    };
    let mut response = state.metrics().render(&gauges).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
