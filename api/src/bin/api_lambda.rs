//! The API Lambda: the same axum router as `giftify serve`, behind API Gateway (HTTP API,
//! payload v2) through `lambda_http`. Clients, keys and the router are built once per cold
//! start.

use giftify_api::lambda_metrics::emit_order_metrics;
use giftify_api::{AppState, router};
use giftify_infra::aws::{runtime::AwsRuntime, sdk_config};
use giftify_infra::config::{Config, LogFormat};
use giftify_infra::metrics::MetricScope;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let mut config = Config::from_env()?;
    config.log_format = LogFormat::Json;
    giftify_infra::telemetry::init(&config);
    let metrics = MetricScope::new(&config, "api");
    let runtime = AwsRuntime::open(config, &sdk_config().await).await?;
    let state = AppState::new(runtime.giftify.clone(), runtime.secrets.jwt_secret()?);
    let app = router(state).layer(axum::middleware::from_fn_with_state(
        metrics,
        emit_order_metrics,
    ));
    lambda_http::run(app).await
}
