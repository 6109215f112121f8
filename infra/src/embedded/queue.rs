//! The durable queue, with the semantics of an SQS FIFO queue and its dead-letter queue:
//!
//! - message group = the user, deduplication id = the order; a send whose deduplication id was
//!   seen within the window is dropped (this is what makes `OrderQueue::enqueue` after a
//!   committed `place_order` a no-op: `place_order` already enqueued inside its transaction);
//! - within a group, strictly one at a time in send order: only the oldest message of a group
//!   is deliverable, and not while it is in flight;
//! - a receive makes a message invisible for the visibility timeout, counts the receive and
//!   issues a fresh receipt handle; ack and release must present the latest handle, so a
//!   consumer whose visibility ran out cannot delete or delay the newer delivery;
//! - a message about to be received with `max_receives` receives behind it moves to the
//!   dead-letter table instead, keeping its receive count and last error.
//!
//! Time here is the store's wall clock, as it is the queue service's in the cloud.
//!
//! A receive reads `queue_heads`, one row per group holding its oldest message and that
//! message's visibility, which triggers keep on every send, receive, release, ack and move to
//! the dead letters (schema V12): it costs O(groups with a visible head + log backlog), where
//! grouping the whole queue cost O(backlog) — the drain slowed as the backlog grew.

use super::SqliteStore;
use super::codec::{DbResult, all, count, execute, millis, one, time_of};
use async_trait::async_trait;
use giftify_shared::inbox::Delivery;
use giftify_shared::order::{DeadLetter, DeadLetterBody, LetterPick, OrderMessage, QueueDepths};
use giftify_shared::ports::{OrderQueue, QueueOps};
use giftify_shared::{Error, Result};
use rusqlite::{Connection, Row, params};
use std::time::Duration;

/// What one receive did.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub messages: Vec<Delivery>,
    /// Ids of the messages moved to the dead-letter queue instead of being delivered.
    pub dead_lettered: Vec<String>,
}

/// Longest error text kept with a message.
const MAX_ERROR_LEN: usize = 2000;

/// Expired deduplication records removed per send.
const PURGE_BATCH: i64 = 100;

fn body_of(message: &OrderMessage) -> DbResult<String> {
    serde_json::to_string(message).map_err(|e| Error::Internal(e.into()).into())
}

/// Sends a message inside the caller's transaction; false when its deduplication id was seen
/// within the window and the send was dropped.
pub(super) fn enqueue_in(
    conn: &Connection,
    message: &OrderMessage,
    dedup_window: Duration,
    now: i64,
) -> DbResult<bool> {
    send(conn, message, message.order_id.as_str(), dedup_window, now)
}

fn send(
    conn: &Connection,
    message: &OrderMessage,
    dedup_id: &str,
    dedup_window: Duration,
    now: i64,
) -> DbResult<bool> {
    execute(
        conn,
        "DELETE FROM queue_dedup WHERE rowid IN \
         (SELECT rowid FROM queue_dedup WHERE expires_at <= ?1 LIMIT ?2)",
        params![now, PURGE_BATCH],
    )?;
    // A new id, or one whose window ran out, is recorded; a live one is left as it is (the
    // window runs from the first send) and the send is dropped.
    let accepted = execute(
        conn,
        "INSERT INTO queue_dedup (dedup_id, expires_at) VALUES (?1, ?2) \
         ON CONFLICT (dedup_id) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE queue_dedup.expires_at <= ?3",
        params![dedup_id, now.saturating_add(millis(dedup_window)), now],
    )?;
    if accepted == 0 {
        return Ok(false);
    }
    execute(
        conn,
        "INSERT INTO queue_messages (message_id, group_id, dedup_id, body, sent_at, visible_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            ulid::Ulid::new().to_string(),
            message.user_id.as_str(),
            dedup_id,
            body_of(message)?,
            now,
        ],
    )?;
    Ok(true)
}

struct Head {
    message_id: String,
    group_id: String,
    body: String,
    receive_count: u32,
}

fn receive(
    conn: &Connection,
    max: usize,
    max_receives: u32,
    visibility: Duration,
    now: i64,
) -> DbResult<Batch> {
    let mut batch = Batch::default();
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    // Each pass either delivers or moves at least one exhausted head to the dead letters, so
    // this ends; moving a head lets the next message of its group through in the next pass.
    let heads = loop {
        let heads = all(
            conn,
            "SELECT m.message_id, m.group_id, m.body, m.receive_count FROM queue_heads h \
             JOIN queue_messages m ON m.seq = h.seq \
             WHERE h.visible_at <= ?1 ORDER BY h.seq LIMIT ?2",
            params![now, limit],
            |row| {
                Ok(Head {
                    message_id: row.get("message_id")?,
                    group_id: row.get("group_id")?,
                    body: row.get("body")?,
                    receive_count: row.get("receive_count")?,
                })
            },
        )?;
        let exhausted: Vec<&Head> = heads
            .iter()
            .filter(|h| h.receive_count >= max_receives)
            .collect();
        if exhausted.is_empty() {
            break heads;
        }
        for head in exhausted {
            execute(
                conn,
                "INSERT INTO dead_letters (message_id, group_id, dedup_id, body, sent_at, \
                 receive_count, last_error, dead_at) \
                 SELECT message_id, group_id, dedup_id, body, sent_at, receive_count, last_error, \
                 ?2 FROM queue_messages WHERE message_id = ?1",
                params![head.message_id, now],
            )?;
            execute(
                conn,
                "DELETE FROM queue_messages WHERE message_id = ?1",
                [&head.message_id],
            )?;
            batch.dead_lettered.push(head.message_id.clone());
        }
    };
    let visible_at = now.saturating_add(millis(visibility));
    for head in heads {
        let receipt = ulid::Ulid::new().to_string();
        execute(
            conn,
            "UPDATE queue_messages SET receive_count = receive_count + 1, receipt = ?2, \
             visible_at = ?3 WHERE message_id = ?1",
            params![head.message_id, receipt, visible_at],
        )?;
        batch.messages.push(Delivery {
            message_id: head.message_id,
            receipt,
            group_id: head.group_id,
            receive_count: head.receive_count.saturating_add(1),
            body: head.body,
        });
    }
    Ok(batch)
}

const DEAD_LETTER_COLUMNS: &str =
    "message_id, group_id, dedup_id, body, sent_at, receive_count, last_error, dead_at";

fn dead_letter_from_row(row: &Row) -> DbResult<DeadLetter> {
    Ok(DeadLetter {
        message_id: row.get("message_id")?,
        body: DeadLetterBody::parse(&row.get::<_, String>("body")?),
        receive_count: row.get("receive_count")?,
        last_error: row.get("last_error")?,
        dead_at: Some(time_of(row.get("dead_at")?)?),
    })
}

/// The oldest dead letter that `accepts`, with its message group; the scan stops at it.
fn first_letter(
    conn: &Connection,
    accepts: impl Fn(&DeadLetter) -> bool,
) -> DbResult<Option<(DeadLetter, String)>> {
    let mut letters = conn.prepare_cached(&format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters ORDER BY seq"
    ))?;
    let mut rows = letters.query([])?;
    while let Some(row) = rows.next()? {
        let letter = dead_letter_from_row(row)?;
        if accepts(&letter) {
            return Ok(Some((letter, row.get("group_id")?)));
        }
    }
    Ok(None)
}

fn redrive(conn: &Connection, pick: &LetterPick, now: i64) -> DbResult<Option<DeadLetter>> {
    // The oldest picked letter that is an order message; unreadable ones stay for `dlq delete`.
    let Some((letter, group_id)) = first_letter(conn, |letter| {
        letter.order().is_some() && pick.picks(letter)
    })?
    else {
        return Ok(None);
    };
    let Some(message) = letter.order().cloned() else {
        return Ok(None);
    };
    // A fresh message id and deduplication id: the redriven message is a new send of the same
    // body to the same group, behind whatever the group already holds.
    let dedup_id = format!("{}/redrive/{}", message.order_id, ulid::Ulid::new());
    execute(
        conn,
        "INSERT INTO queue_messages (message_id, group_id, dedup_id, body, sent_at, visible_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            ulid::Ulid::new().to_string(),
            group_id,
            dedup_id,
            body_of(&message)?,
            now,
        ],
    )?;
    execute(
        conn,
        "DELETE FROM dead_letters WHERE message_id = ?1",
        [&letter.message_id],
    )?;
    Ok(Some(letter))
}

/// Cuts an error text to at most [`MAX_ERROR_LEN`] bytes on a character boundary.
fn clipped(error: &str) -> &str {
    if error.len() <= MAX_ERROR_LEN {
        return error;
    }
    let mut end = MAX_ERROR_LEN;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    &error[..end]
}

impl SqliteStore {
    /// Receives up to `max` deliverable messages (at most one per group), moving exhausted
    /// ones to the dead-letter queue on the way.
    pub async fn receive(&self, max: usize) -> Result<Vec<Delivery>> {
        Ok(self.receive_batch(max).await?.messages)
    }

    pub(crate) async fn receive_batch(&self, max: usize) -> Result<Batch> {
        if max == 0 {
            return Ok(Batch::default());
        }
        let settings = self.options.queue;
        let now = self.now_ms();
        let batch = self
            .write(move |conn| {
                receive(
                    conn,
                    max,
                    settings.max_receives,
                    settings.visibility_timeout,
                    now,
                )
            })
            .await?;
        for message_id in &batch.dead_lettered {
            tracing::warn!(
                message_id = %message_id,
                max_receives = settings.max_receives,
                "message moved to the dead-letter queue"
            );
        }
        Ok(batch)
    }

    /// Deletes a handled message. False when the receipt is stale: the visibility timeout ran
    /// out and the message was delivered again, and that newer delivery now owns it.
    pub async fn ack(&self, delivery: &Delivery) -> Result<bool> {
        let (message_id, receipt) = (delivery.message_id.clone(), delivery.receipt.clone());
        let (deleted, group_has_more) = self
            .write(move |conn| {
                let group: Option<String> = one(
                    conn,
                    "DELETE FROM queue_messages WHERE message_id = ?1 AND receipt = ?2 \
                     RETURNING group_id",
                    params![message_id, receipt],
                    |row| Ok(row.get(0)?),
                )?;
                let Some(group) = group else {
                    return Ok((false, false));
                };
                let more = count(
                    conn,
                    "SELECT COUNT(*) FROM (SELECT 1 FROM queue_messages WHERE group_id = ?1 LIMIT 1)",
                    [&group],
                )? > 0;
                Ok((true, more))
            })
            .await?;
        // The next message of the group became deliverable: wake the consumer now rather
        // than at its next poll.
        if group_has_more {
            self.queue_work.notify_one();
        }
        Ok(deleted)
    }

    /// Gives a failed delivery back: visible again after `delay`, with `error` kept as its last
    /// error. False when the receipt is stale (see [`SqliteStore::ack`]).
    pub async fn release(&self, delivery: &Delivery, error: &str, delay: Duration) -> Result<bool> {
        let (message_id, receipt, error) = (
            delivery.message_id.clone(),
            delivery.receipt.clone(),
            clipped(error).to_string(),
        );
        let visible_at = self.now_ms().saturating_add(millis(delay));
        let released = self
            .write(move |conn| {
                Ok(execute(
                    conn,
                    "UPDATE queue_messages SET visible_at = ?3, last_error = ?4 \
                     WHERE message_id = ?1 AND receipt = ?2",
                    params![message_id, receipt, visible_at, error],
                )? == 1)
            })
            .await?;
        if released && delay.is_zero() {
            self.queue_work.notify_one();
        }
        Ok(released)
    }

    /// Moves a delivered message to the dead-letter queue now, with `error` as its last error.
    /// False when the receipt is stale (see [`SqliteStore::ack`]).
    pub async fn dead_letter_now(&self, delivery: &Delivery, error: &str) -> Result<bool> {
        let (message_id, receipt, error) = (
            delivery.message_id.clone(),
            delivery.receipt.clone(),
            clipped(error).to_string(),
        );
        let now = self.now_ms();
        let moved = self
            .write(move |conn| {
                let copied = execute(
                    conn,
                    "INSERT INTO dead_letters (message_id, group_id, dedup_id, body, sent_at, \
                     receive_count, last_error, dead_at) \
                     SELECT message_id, group_id, dedup_id, body, sent_at, receive_count, ?3, ?4 \
                     FROM queue_messages WHERE message_id = ?1 AND receipt = ?2",
                    params![message_id, receipt, error, now],
                )?;
                if copied == 1 {
                    execute(
                        conn,
                        "DELETE FROM queue_messages WHERE message_id = ?1",
                        [&message_id],
                    )?;
                }
                Ok(copied == 1)
            })
            .await?;
        if moved {
            tracing::warn!(message_id = %delivery.message_id, "message moved to the dead-letter queue");
            // The next message of its group is deliverable now.
            self.queue_work.notify_one();
        }
        Ok(moved)
    }

    /// Waits until a commit in this process makes work deliverable, or `poll` passes (work
    /// sent by another process is only seen by polling).
    pub(crate) async fn wait_for_queue_work(&self, poll: Duration) {
        let _ = tokio::time::timeout(poll, self.queue_work.notified()).await;
    }
}

#[async_trait]
impl OrderQueue for SqliteStore {
    async fn enqueue(&self, message: &OrderMessage) -> Result<()> {
        let message = message.clone();
        let window = self.options.dedup_window;
        let now = self.now_ms();
        let sent = self
            .write(move |conn| enqueue_in(conn, &message, window, now))
            .await?;
        if sent {
            self.queue_work.notify_one();
        }
        Ok(())
    }
}

#[async_trait]
impl QueueOps for SqliteStore {
    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>> {
        self.read(move |conn| {
            all(
                conn,
                &format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters ORDER BY seq LIMIT ?1"),
                [limit],
                dead_letter_from_row,
            )
        })
        .await
    }

    async fn redrive(&self, pick: &LetterPick) -> Result<Option<DeadLetter>> {
        let now = self.now_ms();
        let pick = pick.clone();
        let letter = self.write(move |conn| redrive(conn, &pick, now)).await?;
        if letter.is_some() {
            self.queue_work.notify_one();
        }
        Ok(letter)
    }

    async fn delete_dead_letter(&self, pick: &LetterPick) -> Result<Option<DeadLetter>> {
        let pick = pick.clone();
        self.write(move |conn| {
            let Some((letter, _)) = first_letter(conn, |letter| pick.picks(letter))? else {
                return Ok(None);
            };
            execute(
                conn,
                "DELETE FROM dead_letters WHERE message_id = ?1",
                [&letter.message_id],
            )?;
            Ok(Some(letter))
        })
        .await
    }

    async fn depths(&self) -> Result<QueueDepths> {
        let now = self.now_ms();
        self.read(move |conn| {
            Ok(QueueDepths {
                ready: count(
                    conn,
                    "SELECT COUNT(*) FROM queue_messages WHERE visible_at <= ?1",
                    [now],
                )?,
                in_flight: count(
                    conn,
                    "SELECT COUNT(*) FROM queue_messages WHERE visible_at > ?1",
                    [now],
                )?,
                dead: count(conn, "SELECT COUNT(*) FROM dead_letters", [])?,
                oldest_sent_at: conn
                    // The first by sequence is the oldest sent, read through the primary key.
                    .query_row(
                        "SELECT (SELECT sent_at FROM queue_messages ORDER BY seq LIMIT 1)",
                        [],
                        |row| row.get::<_, Option<i64>>(0),
                    )?
                    .map(time_of)
                    .transpose()?,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QueueSettings;
    use crate::embedded::StoreOptions;
    use giftify_shared::ids::{OrderId, UserId};
    use std::sync::Arc;

    struct Fixture {
        store: Arc<SqliteStore>,
        _dir: tempfile::TempDir,
    }

    /// A 50,000-message backlog over 100 groups, drained ten at a time with some failures:
    /// every message is delivered in its group's send order, a group never has two messages
    /// in flight, a failed message comes back before the rest of its group, and every
    /// message is acked exactly once. Driven on one connection, as the writer would.
    #[test]
    fn a_fifty_thousand_message_backlog_keeps_every_fifo_guarantee() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::embedded::schema::migrate(&mut conn).unwrap();
        let users: Vec<UserId> = (0..100).map(|_| UserId::generate()).collect();
        let mut sent: std::collections::HashMap<String, Vec<String>> = Default::default();
        let tx = conn.transaction().unwrap();
        for n in 0..50_000 {
            let user = &users[n % users.len()];
            let message = message(user);
            assert!(
                send(
                    &tx,
                    &message,
                    message.order_id.as_str(),
                    Duration::from_secs(300),
                    0
                )
                .unwrap()
            );
            sent.entry(user.to_string())
                .or_default()
                .push(message.order_id.to_string());
        }
        tx.commit().unwrap();

        let mut handled: std::collections::HashMap<String, Vec<String>> = Default::default();
        let (mut now, mut receives, mut failures) = (1_i64, 0, 0);
        loop {
            let batch = receive(&conn, 10, 5, Duration::from_secs(30), now).unwrap();
            assert!(batch.dead_lettered.is_empty());
            if batch.messages.is_empty() {
                break;
            }
            receives += 1;
            let groups: std::collections::HashSet<&str> =
                batch.messages.iter().map(|m| m.group_id.as_str()).collect();
            assert_eq!(
                groups.len(),
                batch.messages.len(),
                "one in flight per group"
            );
            for delivery in &batch.messages {
                // Every 7th receive's first message fails once and is released at once.
                if receives % 7 == 0 && delivery.receive_count == 1 && failures < 1_000 {
                    failures += 1;
                    execute(
                        &conn,
                        "UPDATE queue_messages SET visible_at = ?3 \
                         WHERE message_id = ?1 AND receipt = ?2",
                        params![delivery.message_id, delivery.receipt, now],
                    )
                    .unwrap();
                    continue;
                }
                let order: OrderMessage = serde_json::from_str(&delivery.body).unwrap();
                handled
                    .entry(delivery.group_id.clone())
                    .or_default()
                    .push(order.order_id.to_string());
                let acked = execute(
                    &conn,
                    "DELETE FROM queue_messages WHERE message_id = ?1 AND receipt = ?2",
                    params![delivery.message_id, delivery.receipt],
                )
                .unwrap();
                assert_eq!(acked, 1);
            }
            now += 1;
        }
        assert!(failures > 0, "some deliveries failed and came back");
        assert_eq!(
            handled, sent,
            "each group handled in send order, each message once"
        );
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM queue_heads", [], |row| row.get(0))
            .unwrap();
        assert_eq!(left, 0, "no head outlives its group");
    }

    async fn store(options: StoreOptions) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_with(&dir.path().join("queue.db"), options)
            .await
            .unwrap();
        Fixture { store, _dir: dir }
    }

    fn settings() -> StoreOptions {
        StoreOptions::new(QueueSettings {
            max_receives: 3,
            visibility_timeout: Duration::from_secs(30),
        })
    }

    fn with_queue(max_receives: u32, visibility_timeout: Duration) -> StoreOptions {
        StoreOptions {
            queue: QueueSettings {
                max_receives,
                visibility_timeout,
            },
            ..settings()
        }
    }

    fn message(user: &UserId) -> OrderMessage {
        OrderMessage {
            order_id: OrderId::generate(),
            user_id: user.clone(),
        }
    }

    fn orders(batch: &[Delivery]) -> Vec<OrderId> {
        batch
            .iter()
            .map(|m| {
                serde_json::from_str::<OrderMessage>(&m.body)
                    .expect("an order message")
                    .order_id
            })
            .collect()
    }

    #[tokio::test]
    async fn a_group_is_delivered_one_message_at_a_time_in_send_order() {
        let f = store(settings()).await;
        let (alice, bob) = (UserId::generate(), UserId::generate());
        let (a1, a2, b1) = (message(&alice), message(&alice), message(&bob));
        for m in [&a1, &a2, &b1] {
            f.store.enqueue(m).await.unwrap();
        }

        let first = f.store.receive(10).await.unwrap();
        assert_eq!(
            orders(&first),
            vec![a1.order_id.clone(), b1.order_id.clone()]
        );
        assert!(
            f.store.receive(10).await.unwrap().is_empty(),
            "a2 waits while a1 is in flight"
        );

        assert!(f.store.ack(&first[0]).await.unwrap());
        let second = f.store.receive(10).await.unwrap();
        assert_eq!(orders(&second), vec![a2.order_id.clone()]);
    }

    #[tokio::test]
    async fn a_released_message_still_blocks_its_group_until_it_is_handled() {
        let f = store(settings()).await;
        let alice = UserId::generate();
        let (a1, a2) = (message(&alice), message(&alice));
        f.store.enqueue(&a1).await.unwrap();
        f.store.enqueue(&a2).await.unwrap();
        let first = f.store.receive(10).await.unwrap();
        f.store
            .release(&first[0], "boom", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(f.store.receive(10).await.unwrap().is_empty());
        let depths = f.store.depths().await.unwrap();
        assert_eq!((depths.ready, depths.in_flight), (1, 1));
    }

    #[tokio::test]
    async fn a_second_send_of_an_order_within_the_window_is_dropped() {
        let f = store(settings()).await;
        let m = message(&UserId::generate());
        f.store.enqueue(&m).await.unwrap();
        f.store.enqueue(&m).await.unwrap();
        assert_eq!(f.store.depths().await.unwrap().ready, 1);
        // Even after the first was handled: the window, not the queue, decides.
        let got = f.store.receive(10).await.unwrap();
        f.store.ack(&got[0]).await.unwrap();
        f.store.enqueue(&m).await.unwrap();
        assert_eq!(f.store.depths().await.unwrap().ready, 0);
    }

    #[tokio::test]
    async fn a_send_after_the_window_is_accepted_again() {
        let f = store(StoreOptions {
            dedup_window: Duration::from_millis(50),
            ..settings()
        })
        .await;
        let m = message(&UserId::generate());
        f.store.enqueue(&m).await.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        f.store.enqueue(&m).await.unwrap();
        assert_eq!(f.store.depths().await.unwrap().ready, 2);
    }

    #[tokio::test]
    async fn a_message_whose_visibility_ran_out_is_delivered_again_with_a_new_receipt() {
        let f = store(with_queue(3, Duration::from_millis(50))).await;
        f.store
            .enqueue(&message(&UserId::generate()))
            .await
            .unwrap();
        let first = f.store.receive(1).await.unwrap().remove(0);
        assert_eq!(first.receive_count, 1);
        assert!(f.store.receive(1).await.unwrap().is_empty());
        tokio::time::sleep(Duration::from_millis(80)).await;
        let second = f.store.receive(1).await.unwrap().remove(0);
        assert_eq!(second.message_id, first.message_id);
        assert_eq!(second.receive_count, 2);
        assert_ne!(second.receipt, first.receipt);
    }

    #[tokio::test]
    async fn an_ack_with_a_stale_receipt_does_not_delete_the_newer_delivery() {
        let f = store(with_queue(3, Duration::from_millis(50))).await;
        f.store
            .enqueue(&message(&UserId::generate()))
            .await
            .unwrap();
        let first = f.store.receive(1).await.unwrap().remove(0);
        tokio::time::sleep(Duration::from_millis(80)).await;
        let second = f.store.receive(1).await.unwrap().remove(0);

        assert!(!f.store.ack(&first).await.unwrap(), "stale receipt");
        assert!(
            !f.store
                .release(&first, "late", Duration::ZERO)
                .await
                .unwrap(),
            "a stale receipt cannot make the message visible either"
        );
        assert_eq!(f.store.depths().await.unwrap().in_flight, 1);
        assert!(f.store.ack(&second).await.unwrap());
        let depths = f.store.depths().await.unwrap();
        assert_eq!((depths.ready, depths.in_flight), (0, 0));
    }

    #[tokio::test]
    async fn a_message_received_max_receives_times_moves_to_the_dead_letter_queue() {
        let f = store(settings()).await;
        let alice = UserId::generate();
        let (poison, next) = (message(&alice), message(&alice));
        f.store.enqueue(&poison).await.unwrap();
        f.store.enqueue(&next).await.unwrap();
        for attempt in 1..=3 {
            let got = f.store.receive(10).await.unwrap();
            assert_eq!(orders(&got), vec![poison.order_id.clone()]);
            assert_eq!(got[0].receive_count, attempt);
            f.store
                .release(&got[0], &format!("failure {attempt}"), Duration::ZERO)
                .await
                .unwrap();
        }

        // The fourth receive moves the poison message aside and lets its group move on.
        let batch = f.store.receive_batch(10).await.unwrap();
        assert_eq!(batch.dead_lettered.len(), 1);
        assert_eq!(orders(&batch.messages), vec![next.order_id.clone()]);

        let dead = f.store.dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].order(), Some(&poison));
        assert_eq!(dead[0].receive_count, 3);
        assert_eq!(dead[0].last_error.as_deref(), Some("failure 3"));
        assert!(dead[0].dead_at.is_some());
        assert_eq!(f.store.depths().await.unwrap().dead, 1);
    }

    #[tokio::test]
    async fn redrive_sends_the_oldest_dead_letter_back_to_its_group_with_a_fresh_count() {
        let f = store(with_queue(1, Duration::from_secs(30))).await;
        let alice = UserId::generate();
        let poison = message(&alice);
        f.store.enqueue(&poison).await.unwrap();
        let got = f.store.receive(1).await.unwrap();
        f.store
            .release(&got[0], "boom", Duration::ZERO)
            .await
            .unwrap();
        assert!(f.store.receive(1).await.unwrap().is_empty());
        assert_eq!(f.store.depths().await.unwrap().dead, 1);

        let moved = f.store.redrive(&LetterPick::Oldest).await.unwrap().unwrap();
        assert_eq!(moved.order(), Some(&poison));
        assert!(
            f.store
                .redrive(&LetterPick::Oldest)
                .await
                .unwrap()
                .is_none()
        );
        let depths = f.store.depths().await.unwrap();
        assert_eq!((depths.ready, depths.dead), (1, 0));

        let again = f.store.receive(1).await.unwrap().remove(0);
        assert_eq!(
            orders(std::slice::from_ref(&again)),
            vec![poison.order_id.clone()]
        );
        assert_eq!(again.receive_count, 1);
        assert_ne!(again.message_id, moved.message_id);
        // Its deduplication id is fresh, yet the original one still guards the order.
        f.store.enqueue(&poison).await.unwrap();
        assert_eq!(f.store.depths().await.unwrap().ready, 0);
    }

    #[tokio::test]
    async fn two_stores_on_one_file_share_the_queue_like_two_processes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let api = SqliteStore::open_with(&path, settings()).await.unwrap();
        let worker = SqliteStore::open_with(&path, settings()).await.unwrap();
        let m = message(&UserId::generate());
        api.enqueue(&m).await.unwrap();
        worker.enqueue(&m).await.unwrap();
        let got = worker.receive(10).await.unwrap();
        assert_eq!(orders(&got), vec![m.order_id.clone()]);
        assert!(api.receive(10).await.unwrap().is_empty());
        assert!(worker.ack(&got[0]).await.unwrap());
    }

    #[test]
    fn long_errors_are_clipped_on_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_LEN);
        let clipped = clipped(&long);
        assert!(clipped.len() <= MAX_ERROR_LEN);
        assert!(clipped.chars().all(|c| c == 'é'));
        assert_eq!(super::clipped("short"), "short");
    }
}
