//! The SNS adapter: order and card events published to a standard topic, with `eventType` and `status`
//! message attributes for subscription filter policies.

use super::item::sdk_error;
use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use giftify_shared::events::Event;
use giftify_shared::ports::EventPublisher;
use giftify_shared::{Error, Result};

#[derive(Clone, Debug)]
pub struct SnsPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(client: Client, topic_arn: String) -> Self {
        SnsPublisher { client, topic_arn }
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| Error::Internal(e.into()))
}

#[async_trait]
impl EventPublisher for SnsPublisher {
    async fn publish(&self, event: &Event) -> Result<()> {
        let body = serde_json::to_string(event).map_err(|e| Error::Internal(e.into()))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(format!("Giftify {}", event.event_type()))
            .message(body)
            .message_attributes("eventType", string_attribute(event.event_type())?)
            .message_attributes("status", string_attribute(event.status())?)
            .message_attributes("eventId", string_attribute(event.event_id())?)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
