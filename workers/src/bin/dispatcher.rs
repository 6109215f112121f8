//! The webhook dispatcher Lambda: the webhook queue (events from the topic, delivery
//! wake-ups) → signed POSTs to the endpoints → `SqsBatchResponse`.

use aws_lambda_events::event::sqs::SqsEvent;
use giftify_infra::aws::{runtime::AwsRuntime, sdk_config};
use giftify_infra::config::{Config, LogFormat};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut config = Config::from_env()?;
    config.log_format = LogFormat::Json;
    giftify_infra::telemetry::init(&config);
    // Built once per cold start; every invocation shares them.
    let runtime = AwsRuntime::open_sending_webhooks(config, &sdk_config().await).await?;
    let giftify = &runtime.giftify;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(giftify_workers::dispatcher::handle(giftify, event.payload).await)
    }))
    .await
}
