//! The reconciler Lambda, run by an EventBridge schedule.

use giftify_infra::aws::{runtime::AwsRuntime, sdk_config};
use giftify_infra::config::{Config, LogFormat};
use giftify_infra::metrics::MetricScope;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut config = Config::from_env()?;
    config.log_format = LogFormat::Json;
    giftify_infra::telemetry::init(&config);
    let metrics = &MetricScope::new(&config, "reconciler");
    let runtime = AwsRuntime::open(config, &sdk_config().await).await?;
    let giftify = &runtime.giftify;
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async move {
        let report = giftify_workers::reconciler::handle(giftify, metrics).await?;
        Ok::<_, Error>(json!({"refunded": report.refunded, "requeued": report.requeued, "notified": report.notified, "failed": report.failed, "wokenDeliveries": report.woken_deliveries}))
    }))
    .await
}
