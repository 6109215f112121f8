//! The event feed on DynamoDB, in the events table: every feed is a partition whose sort key
//! is the event's position in it (zero-padded so that text order is number order).
//!
//! Recording an event puts, in one transaction, each on the condition that it is new: a guard
//! item for the event id (holding the recording, so a republish returns it), the next
//! position of the order (its `sequence`), of the user's feed and of the feed of all events.
//! Each next position was read consistently just before; a writer that lost a race reads
//! again. So position n + 1 of a feed is only ever written after n committed, and a consistent
//! query never sees a later event while an earlier one is still to come: no gaps. The price:
//! every recording of the deployment takes the next position of the one feed of all events,
//! so recordings are serial — about one per read-and-transaction round trip (tens per second),
//! with racing writers retrying. That is the known ceiling of this design; past it, the feed of
//! all events would be split (per day and shard) or fed from a stream.

use super::store::{DynamoStore, Transaction, TxFailure, names_of, put, retrying_up_to};
use crate::aws::item::{Attrs, Item, item, s, sdk_error, ts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::events::{Event, Feed, FeedCursor, FeedPage};
use giftify_shared::ports::EventFeed;
use giftify_shared::{Error, Result};

/// Positions as 20-digit text: every u64 fits, and text order is number order.
pub(super) fn position(n: u64) -> String {
    format!("{n:020}")
}

fn feed_key(feed: &Feed) -> String {
    match feed {
        Feed::All => "all".to_string(),
        Feed::OfUser(user) => format!("user#{user}"),
    }
}

impl DynamoStore {
    /// The last position of a partition, read consistently; 0 when it is empty.
    async fn last_position(&self, key: &str) -> Result<u64> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.events)
            .key_condition_expression("#feedKey = :key")
            .set_expression_attribute_names(names_of(&["#feedKey"]))
            .expression_attribute_values(":key", s(key))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        match output.items().first() {
            None => Ok(0),
            Some(raw) => Attrs::new(raw, "events")
                .s("position")?
                .parse()
                .map_err(|_| Error::internal("a feed position is not a number")),
        }
    }

    async fn try_record(&self, event: &Event, now: DateTime<Utc>) -> Result<Event> {
        let guard = item([
            ("feedKey", s(format!("event#{}", event.event_id()))),
            ("position", s(position(0))),
        ]);
        if let Some(raw) = self.get(&self.tables.events, guard.clone()).await? {
            return Event::from_json(Attrs::new(&raw, "events").s("body")?);
        }
        let order_key = format!("order#{}", event.order_id());
        let user_key = format!("user#{}", event.user_id());
        let sequence = self.last_position(&order_key).await? + 1;
        let in_user = self.last_position(&user_key).await? + 1;
        let in_all = self.last_position("all").await? + 1;
        let recorded = event.clone().sequenced(sequence);
        let body = recorded.to_json();
        let lost = || Error::Conflict("an event was recorded meanwhile");
        let mut transaction = Transaction::new();
        let entries = [
            (guard, true),
            (
                item([
                    ("feedKey", s(order_key)),
                    ("position", s(position(sequence))),
                ]),
                false,
            ),
            (
                item([("feedKey", s(user_key)), ("position", s(position(in_user)))]),
                true,
            ),
            (
                item([("feedKey", s("all")), ("position", s(position(in_all)))]),
                true,
            ),
        ];
        for (mut entry, with_body) in entries {
            if with_body {
                entry.insert("body".into(), s(&body));
                entry.insert("recordedAt".into(), ts(now));
            }
            transaction.push(
                put(
                    &self.tables.events,
                    entry,
                    Some("attribute_not_exists(feedKey)"),
                    Item::new(),
                )?,
                lost(),
            );
        }
        self.commit(transaction)
            .await
            .map_err(TxFailure::into_error)?;
        Ok(recorded)
    }
}

#[async_trait]
impl EventFeed for DynamoStore {
    /// Recordings race on the ends of the feed of all events, so a writer may lose a few
    /// rounds in a burst: it retries longer than a money write would (a lost race costs one
    /// read and one transaction, and moves nothing).
    async fn record_event(&self, event: &Event, now: DateTime<Utc>) -> Result<Event> {
        retrying_up_to(30, || self.try_record(event, now)).await
    }

    async fn feed(&self, feed: &Feed, after: FeedCursor, limit: u32) -> Result<FeedPage> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.events)
            .key_condition_expression("#feedKey = :key AND #position > :after")
            .set_expression_attribute_names(names_of(&["#feedKey #position"]))
            .expression_attribute_values(":key", s(feed_key(feed)))
            .expression_attribute_values(":after", s(position(after.position)))
            .limit(i32::try_from(limit).unwrap_or(100).saturating_add(1))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let items = output.items();
        // A query also stops at 1 MB: then more events may follow although fewer came back.
        let has_more = items.len() > limit as usize || output.last_evaluated_key().is_some();
        let mut next = after;
        let mut events = Vec::new();
        for raw in items.iter().take(limit as usize) {
            let a = Attrs::new(raw, "events");
            events.push(Event::from_json(a.s("body")?)?);
            next.position = a
                .s("position")?
                .parse()
                .map_err(|_| Error::internal("a feed position is not a number"))?;
        }
        Ok(FeedPage {
            events,
            next,
            has_more,
        })
    }
}
