//! The fulfillment Lambda: SQS FIFO batches → fulfilled orders → `SqsBatchResponse`.

use aws_lambda_events::event::sqs::SqsEvent;
use giftify_infra::aws::{runtime::AwsRuntime, sdk_config};
use giftify_infra::config::{Config, LogFormat};
use giftify_infra::metrics::MetricScope;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut config = Config::from_env()?;
    config.log_format = LogFormat::Json;
    giftify_infra::telemetry::init(&config);
    // Built once per cold start; every invocation shares them.
    let metrics = &MetricScope::new(&config, "fulfillment");
    let runtime = AwsRuntime::open(config, &sdk_config().await).await?;
    let giftify = &runtime.giftify;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(giftify_workers::fulfillment::handle(giftify, metrics, event.payload).await)
    }))
    .await
}
