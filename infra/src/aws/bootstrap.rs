//! `giftify aws bootstrap`: creates the tables, the FIFO queue with its FIFO dead-letter queue
//! and redrive policy, the events topic, and the webhook queue subscribed to it —
//! idempotently, for emulators and dev accounts.
//! Terraform is the production path; both read the same definitions.

use super::item::sdk_error;
use super::tables::{ALL, TableDef};
use super::{dead_letter_queue_name, queue_name, topic_name, webhook_queue_name};
use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

/// What bootstrap created or found.
#[derive(Clone, Debug)]
pub struct Bootstrapped {
    pub tables: Vec<String>,
    pub queue_url: String,
    pub dead_letter_url: String,
    pub topic_arn: String,
    pub webhook_queue_url: String,
}

/// Deliveries before SQS moves a message to the dead-letter queue.
pub const DEFAULT_MAX_RECEIVES: u32 = 5;

fn key_schema(partition: &str, sort: Option<&str>) -> Result<Vec<KeySchemaElement>> {
    let mut schema = vec![
        KeySchemaElement::builder()
            .attribute_name(partition)
            .key_type(KeyType::Hash)
            .build()?,
    ];
    if let Some(sort) = sort {
        schema.push(
            KeySchemaElement::builder()
                .attribute_name(sort)
                .key_type(KeyType::Range)
                .build()?,
        );
    }
    Ok(schema)
}

fn projection(projection: super::tables::Projection) -> Projection {
    use super::tables::Projection as P;
    match projection {
        P::All => Projection::builder()
            .projection_type(ProjectionType::All)
            .build(),
        P::KeysOnly => Projection::builder()
            .projection_type(ProjectionType::KeysOnly)
            .build(),
        P::Include(attributes) => Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(attributes.iter().map(|a| (*a).to_string()).collect()))
            .build(),
    }
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table: &TableDef,
    stage: Option<&str>,
) -> Result<String> {
    let name = table.name(stage);
    let mut request = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(table.key.partition, table.key.sort)?));
    for attribute in table.key_attributes() {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        );
    }
    for index in table.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(key_schema(index.key.partition, index.key.sort)?))
                .projection(projection(index.projection))
                .build()?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            return Ok(name);
        }
        Err(e) => return Err(sdk_error(e)).with_context(|| format!("cannot create table {name}")),
    }
    if let Some(attribute) = table.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("cannot enable TTL on {name}"))?;
    }
    Ok(name)
}

async fn create_fifo_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    redrive_to: Option<(&str, u32)>,
    visibility_seconds: u32,
) -> Result<String> {
    let mut request = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_seconds.to_string(),
        )
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600");
    if let Some((dead_letter_arn, max_receives)) = redrive_to {
        request = request.attributes(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receives.to_string()})
                .to_string(),
        );
    }
    let output = request
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("cannot create queue {name}"))?;
    output
        .queue_url
        .with_context(|| format!("no URL for queue {name}"))
}

async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> Result<String> {
    let output = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(sdk_error)?;
    output
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .context("queue has no ARN")
}

/// Creates every resource that does not exist yet.
pub async fn bootstrap(
    sdk: &aws_config::SdkConfig,
    stage: Option<&str>,
    max_receives: u32,
    visibility_seconds: u32,
) -> Result<Bootstrapped> {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let mut tables = Vec::new();
    for table in ALL {
        tables.push(create_table(&dynamo, &table, stage).await?);
    }
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dead_letter_url = create_fifo_queue(
        &sqs,
        &dead_letter_queue_name(stage),
        None,
        visibility_seconds,
    )
    .await?;
    let dead_letter_arn = queue_arn(&sqs, &dead_letter_url).await?;
    let queue_url = create_fifo_queue(
        &sqs,
        &queue_name(stage),
        Some((&dead_letter_arn, max_receives)),
        visibility_seconds,
    )
    .await?;
    let sns = aws_sdk_sns::Client::new(sdk);
    let topic_arn = sns
        .create_topic()
        .name(topic_name(stage))
        .send()
        .await
        .map_err(sdk_error)
        .context("cannot create the events topic")?
        .topic_arn
        .context("no topic ARN")?;
    let webhook_queue_url = sqs
        .create_queue()
        .queue_name(webhook_queue_name(stage))
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_seconds.to_string(),
        )
        .send()
        .await
        .map_err(sdk_error)
        .context("cannot create the webhook queue")?
        .queue_url
        .context("no URL for the webhook queue")?;
    // Raw delivery: the dispatcher reads the event's JSON as published, not an SNS envelope.
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn(&sqs, &webhook_queue_url).await?)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .map_err(sdk_error)
        .context("cannot subscribe the webhook queue to the events topic")?;
    Ok(Bootstrapped {
        tables,
        queue_url,
        dead_letter_url,
        topic_arn,
        webhook_queue_url,
    })
}
