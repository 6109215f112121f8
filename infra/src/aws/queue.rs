//! The SQS FIFO adapter: fulfillment messages (group = user, deduplication id = order), the
//! dead-letter queue view and redrive, and the receive/delete primitives of the local
//! long-poll consumer. Redrive uses receive/send/delete rather than `StartMessageMoveTask`, so
//! it keeps the message group and works on every SQS-compatible endpoint.
//!
//! SQS keeps no error with a message, so the reason of the last failed handling is noted in the
//! DynamoDB audit table under the message id (which survives the move to the dead-letter
//! queue), for `giftify dlq list`.

use super::item::{item, s, sdk_error};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::{DateTime, Utc};
use giftify_shared::inbox::Delivery;
use giftify_shared::order::{DeadLetter, DeadLetterBody, LetterPick, OrderMessage, QueueDepths};
use giftify_shared::ports::{OrderQueue, QueueOps};
use giftify_shared::{Error, Result};

#[derive(Clone, Debug)]
pub struct SqsQueue {
    pub(super) client: Client,
    pub(super) queue_url: String,
    pub(super) dead_letter_url: String,
    pub(super) notes: FailureNotes,
    pub(super) visibility_seconds: i32,
}

/// How long a message's last failure is kept: longer than the message can live in the
/// dead-letter queue (14 days' retention, terraform/sqs.tf), so `dlq list` can always say why.
const NOTE_KEPT: chrono::Duration = chrono::Duration::days(15);

/// Where failure reasons are kept: the audit table, expiring after [`NOTE_KEPT`].
#[derive(Clone, Debug)]
pub struct FailureNotes {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    pub clock: std::sync::Arc<dyn giftify_shared::Clock>,
}

impl FailureNotes {
    fn key(message_id: &str) -> std::collections::HashMap<String, AttributeValue> {
        item([
            ("subjectId", s(format!("SQS#{message_id}"))),
            ("auditId", s("LAST_FAILURE")),
        ])
    }

    pub(super) async fn record(&self, message_id: &str, error: &str) -> Result<()> {
        let mut note = Self::key(message_id);
        note.insert(
            "error".into(),
            s(error.chars().take(1000).collect::<String>()),
        );
        let now = self.clock.now();
        note.insert("at".into(), super::item::ts(now));
        note.insert("expiresAt".into(), super::item::epoch(now + NOTE_KEPT));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(note))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// The last failure noted for the message, and when: for a dead letter, the failure that
    /// sent it to the dead-letter queue.
    async fn last(&self, message_id: &str) -> Result<Option<(String, DateTime<Utc>)>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(message_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(note) = output.item else {
            return Ok(None);
        };
        let attrs = super::item::Attrs::new(&note, "failure note");
        Ok(Some((attrs.s("error")?.to_string(), attrs.ts("at")?)))
    }

    /// The dead letter with its last failure noted, when there is one.
    async fn annotated(&self, letter: &mut DeadLetter) -> Result<()> {
        if let Some((error, at)) = self.last(&letter.message_id).await? {
            letter.last_error = Some(error);
            letter.dead_at = Some(at);
        }
        Ok(())
    }
}

/// One received message.
impl SqsQueue {
    /// `visibility`: how long a receive hides a message from other consumers.
    pub fn new(
        client: Client,
        queue_url: String,
        dead_letter_url: String,
        notes: FailureNotes,
        visibility: std::time::Duration,
    ) -> Self {
        SqsQueue {
            client,
            queue_url,
            dead_letter_url,
            notes,
            visibility_seconds: i32::try_from(visibility.as_secs()).unwrap_or(43_200),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    async fn send(&self, url: &str, message: &OrderMessage, deduplication_id: &str) -> Result<()> {
        let body = serde_json::to_string(message).map_err(|e| Error::Internal(e.into()))?;
        self.send_body(url, &body, message.user_id.as_str(), deduplication_id)
            .await
            .map(|_| ())
    }

    /// Sends `body` as it is; returns the new message's id.
    pub(super) async fn send_body(
        &self,
        url: &str,
        body: &str,
        group: &str,
        deduplication_id: &str,
    ) -> Result<String> {
        let output = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .message_group_id(group)
            .message_deduplication_id(deduplication_id)
            .send()
            .await
            .map_err(sdk_error)?;
        output
            .message_id
            .ok_or_else(|| Error::internal("SQS answered a send without a message id"))
    }

    pub(super) async fn receive_from(
        &self,
        url: &str,
        max: i32,
        wait_seconds: i32,
        visibility_seconds: i32,
    ) -> Result<Vec<Delivery>> {
        let output = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait_seconds)
            .visibility_timeout(visibility_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let attributes = m.attributes.unwrap_or_default();
                Some(Delivery {
                    message_id: m.message_id?,
                    receipt: m.receipt_handle?,
                    group_id: attributes
                        .get(&MessageSystemAttributeName::MessageGroupId)
                        .cloned()
                        .unwrap_or_default(),
                    receive_count: attributes
                        .get(&MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0),
                    body: m.body.unwrap_or_default(),
                })
            })
            .collect())
    }

    pub(super) async fn delete_from(&self, url: &str, receipt_handle: &str) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn depth(&self, url: &str) -> Result<(u64, u64)> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(sdk_error)?;
        let attributes = output.attributes.unwrap_or_default();
        let count = |name| {
            attributes
                .get(&name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            count(QueueAttributeName::ApproximateNumberOfMessages),
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }
}

fn dead_letter(message: &Delivery) -> DeadLetter {
    DeadLetter {
        message_id: message.message_id.clone(),
        body: DeadLetterBody::parse(&message.body),
        receive_count: message.receive_count,
        last_error: None,
        dead_at: None,
    }
}

/// Most dead letters one operator command looks through.
const MAX_LOOKED_THROUGH: usize = 10_000;

impl SqsQueue {
    /// Receives dead letters oldest first (SQS has no peek, so a receive hides what it saw and
    /// the next one returns new messages) until `pick` chooses one or `limit` were seen, then
    /// makes every one not picked visible again. The picked one stays hidden for the caller.
    async fn look_through_dead_letters(
        &self,
        limit: usize,
        mut pick: impl FnMut(&Delivery) -> bool,
    ) -> Result<(Vec<Delivery>, Option<Delivery>)> {
        let mut seen: Vec<Delivery> = Vec::new();
        let mut ids = std::collections::HashSet::new();
        let mut picked = None;
        while seen.len() < limit && picked.is_none() {
            let batch = self
                .receive_from(&self.dead_letter_url, 10, 0, LISTING_VISIBILITY_SECONDS)
                .await?;
            // A message seen before came back: the scan has gone all the way round.
            let fresh: Vec<Delivery> = batch
                .into_iter()
                .filter(|message| ids.insert(message.message_id.clone()))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for message in fresh {
                if picked.is_none() && pick(&message) {
                    picked = Some(message);
                } else {
                    seen.push(message);
                }
            }
        }
        for message in &seen {
            // A receipt that went stale only means the message is visible again already.
            if let Err(error) = self
                .client
                .change_message_visibility()
                .queue_url(&self.dead_letter_url)
                .receipt_handle(&message.receipt)
                .visibility_timeout(0)
                .send()
                .await
            {
                tracing::warn!(message_id = %message.message_id, error = %sdk_error(error), "could not make a dead letter visible again; it will be after the listing's visibility timeout");
            }
        }
        Ok((seen, picked))
    }
}

#[async_trait]
impl OrderQueue for SqsQueue {
    async fn enqueue(&self, message: &OrderMessage) -> Result<()> {
        self.send(&self.queue_url, message, message.order_id.as_str())
            .await
    }
}

/// How long listed dead letters stay hidden while the listing pages through them.
/// Long enough for a scan of [`MAX_LOOKED_THROUGH`] letters, so none comes back mid-scan.
const LISTING_VISIBILITY_SECONDS: i32 = 300;

#[async_trait]
impl QueueOps for SqsQueue {
    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>> {
        let (seen, _) = self
            .look_through_dead_letters(limit as usize, |_| false)
            .await?;
        let mut letters = Vec::new();
        for message in seen.iter().take(limit as usize) {
            let mut letter = dead_letter(message);
            self.notes.annotated(&mut letter).await?;
            letters.push(letter);
        }
        Ok(letters)
    }

    async fn redrive(&self, pick: &LetterPick) -> Result<Option<DeadLetter>> {
        let (_, picked) = self
            .look_through_dead_letters(MAX_LOOKED_THROUGH, |message| {
                let letter = dead_letter(message);
                letter.order().is_some() && pick.picks(&letter)
            })
            .await?;
        let Some(message) = picked else {
            return Ok(None);
        };
        let letter = dead_letter(&message);
        let Some(order) = letter.order() else {
            return Ok(None);
        };
        // A fresh deduplication id: the original is still inside SQS's 5-minute window. A crash
        // between send and delete redrives twice, which fulfillment absorbs.
        let deduplication_id = format!(
            "{}:redrive:{}",
            order.order_id.ulid_part(),
            ulid::Ulid::new()
        );
        self.send(&self.queue_url, order, &deduplication_id).await?;
        self.delete_from(&self.dead_letter_url, &message.receipt)
            .await?;
        Ok(Some(letter))
    }

    async fn delete_dead_letter(&self, pick: &LetterPick) -> Result<Option<DeadLetter>> {
        let (_, picked) = self
            .look_through_dead_letters(MAX_LOOKED_THROUGH, |message| {
                pick.picks(&dead_letter(message))
            })
            .await?;
        let Some(message) = picked else {
            return Ok(None);
        };
        let mut letter = dead_letter(&message);
        self.notes.annotated(&mut letter).await?;
        self.delete_from(&self.dead_letter_url, &message.receipt)
            .await?;
        Ok(Some(letter))
    }

    async fn depths(&self) -> Result<QueueDepths> {
        let (ready, in_flight) = self.depth(&self.queue_url).await?;
        let (dead, dead_in_flight) = self.depth(&self.dead_letter_url).await?;
        Ok(QueueDepths {
            ready,
            in_flight,
            dead: dead + dead_in_flight,
            oldest_sent_at: None,
        })
    }
}
