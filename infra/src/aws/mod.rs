//! The AWS backend: DynamoDB for every stored port, SQS FIFO for the fulfillment queue, SNS for
//! order events. [`AwsStack::connect`] builds the clients once per process (or Lambda cold
//! start) from the standard AWS configuration chain plus Giftify's own settings.

mod api_keys;
mod audit;
pub mod bootstrap;
mod cards;
mod carts;
mod catalogue;
mod codes;
pub mod events;
mod feed;
mod idempotency;
mod inbox;
pub mod item;
mod keys;
mod migration;
mod orders;
pub mod queue;
mod rate_limits;
mod reports;
pub mod runtime;
mod sessions;
pub mod store;
pub mod tables;
mod users;
mod wallet;
pub mod webhooks;

use crate::config::{AwsSettings, Config};
use anyhow::{Context, Result};
use events::SnsPublisher;
use giftify_shared::ports::Ports;
use giftify_shared::{Clock, SystemClock};
use queue::SqsQueue;
use std::sync::Arc;
use store::DynamoStore;
use tables::TableNames;

/// The queue and topic names for a stage (used when no URL or ARN is configured).
pub fn queue_name(stage: Option<&str>) -> String {
    resource_name(stage, "orders.fifo")
}

pub fn dead_letter_queue_name(stage: Option<&str>) -> String {
    resource_name(stage, "orders-dlq.fifo")
}

pub fn topic_name(stage: Option<&str>) -> String {
    resource_name(stage, "order-events")
}

/// The standard queue the webhook dispatcher reads.
pub fn webhook_queue_name(stage: Option<&str>) -> String {
    resource_name(stage, "webhooks")
}

fn resource_name(stage: Option<&str>, name: &str) -> String {
    match stage {
        Some(stage) => format!("giftify-{stage}-{name}"),
        None => format!("giftify-{name}"),
    }
}

/// Loads the SDK configuration once; every client is built from it.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// The AWS adapters of one process.
#[derive(Clone)]
pub struct AwsStack {
    pub store: DynamoStore,
    pub queue: SqsQueue,
    pub events: SnsPublisher,
    pub wakeups: webhooks::SqsWakeups,
    /// Only the dispatcher posts webhooks ([`AwsStack::sending_webhooks`]). A trait object
    /// made there and only there: a function that never calls it links no HTTP client.
    pub webhook_sender: Option<Arc<dyn giftify_shared::ports::WebhookSender>>,
    pub settings: AwsSettings,
}

impl std::fmt::Debug for AwsStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsStack")
            .field("store", &self.store)
            .field("queue", &self.queue)
            .field("events", &self.events)
            .field("wakeups", &self.wakeups)
            .field("sends_webhooks", &self.webhook_sender.is_some())
            .field("settings", &self.settings)
            .finish()
    }
}

impl AwsStack {
    /// Connects to the configured resources, looking up queue URLs and the topic ARN by name
    /// when they are not configured.
    pub async fn connect(sdk: &aws_config::SdkConfig, config: &Config) -> Result<Self> {
        let settings = config.aws.clone();
        let stage = settings.stage.as_deref();
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let sns = aws_sdk_sns::Client::new(sdk);
        let queue_url = match &settings.queue_url {
            Some(url) => url.clone(),
            None => lookup_queue(&sqs, &queue_name(stage)).await?,
        };
        let dead_letter_url = match &settings.dead_letter_url {
            Some(url) => url.clone(),
            None => lookup_queue(&sqs, &dead_letter_queue_name(stage)).await?,
        };
        let topic_arn = match &settings.topic_arn {
            Some(arn) => arn.clone(),
            None => lookup_topic(&sns, &topic_name(stage)).await?,
        };
        let webhook_queue_url = match &settings.webhook_queue_url {
            Some(url) => url.clone(),
            None => lookup_queue(&sqs, &webhook_queue_name(stage)).await?,
        };
        let tables = TableNames::for_stage(stage);
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let notes = queue::FailureNotes {
            client: dynamodb.clone(),
            table: tables.audit.clone(),
            clock: clock.clone(),
        };
        let wakeups = webhooks::SqsWakeups {
            client: sqs.clone(),
            queue_url: webhook_queue_url,
            clock: clock.clone(),
        };
        Ok(AwsStack {
            store: DynamoStore::new(dynamodb, tables, clock),
            queue: SqsQueue::new(
                sqs,
                queue_url,
                dead_letter_url,
                notes,
                config.queue.visibility_timeout,
            ),
            events: SnsPublisher::new(sns, topic_arn),
            wakeups,
            webhook_sender: None,
            settings,
        })
    }

    /// This stack with an HTTP client to post webhooks: the dispatcher's.
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn sending_webhooks(mut self) -> Result<Self> {
        self.webhook_sender = Some(Arc::new(crate::webhook_sender::HttpSender::new()?));
        Ok(self)
    }

    pub fn ports(&self) -> Ports {
        let store = Arc::new(self.store.clone());
        let queue = Arc::new(self.queue.clone());
        Ports {
            users: store.clone(),
            sessions: store.clone(),
            throttle: store.clone(),
            wallets: store.clone(),
            catalogue: store.clone(),
            codes: store.clone(),
            carts: store.clone(),
            orders: store.clone(),
            reports: store.clone(),
            gift_cards: store.clone(),
            idempotency: store.clone(),
            api_keys: store.clone(),
            rate_limits: store.clone(),
            queue: queue.clone(),
            inbox: queue.clone(),
            queue_ops: queue,
            events: Arc::new(self.events.clone()),
            feed: store.clone(),
            webhooks: store.clone(),
            wakeups: Arc::new(self.wakeups.clone()),
            webhook_sender: self.webhook_sender.clone(),
            keys: store.clone(),
            audit: store.clone(),
            health: store,
        }
    }
}

async fn lookup_queue(client: &aws_sdk_sqs::Client, name: &str) -> Result<String> {
    let output = client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .with_context(|| format!("queue {name} not found; set GIFTIFY_QUEUE_URL/GIFTIFY_DLQ_URL or run `giftify aws bootstrap`"))?;
    output
        .queue_url
        .with_context(|| format!("no URL for queue {name}"))
}

async fn lookup_topic(client: &aws_sdk_sns::Client, name: &str) -> Result<String> {
    let mut next = None;
    loop {
        let output = client
            .list_topics()
            .set_next_token(next)
            .send()
            .await
            .context("cannot list SNS topics")?;
        for topic in output.topics.unwrap_or_default() {
            if let Some(arn) = topic.topic_arn
                && arn.rsplit(':').next() == Some(name)
            {
                return Ok(arn);
            }
        }
        match output.next_token {
            Some(token) => next = Some(token),
            None => anyhow::bail!(
                "topic {name} not found; set GIFTIFY_TOPIC_ARN or run `giftify aws bootstrap`"
            ),
        }
    }
}
