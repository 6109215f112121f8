//! Operator jobs: the reconciler (scheduled), the dead letters (API and CLI), and giving an
//! order up with a full refund.

use super::Giftify;
use crate::audit::{Actor, AuditAction, AuditEntry};
use crate::error::Missing;
use crate::ids::{OrderId, TransactionId};
use crate::order::{
    Cancellation, Closing, DeadLetter, LetterPick, Order, OrderMessage, OrderStatus, RefundReason,
};
use crate::{Error, Result};
use serde_json::json;

/// What one reconciler pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Orders not final by their deadline ([`crate::usecases::Rules::stuck_order_refund_after`]),
    /// given up and refunded in full.
    pub refunded: usize,
    /// Stale PENDING orders sent to the queue again.
    pub requeued: usize,
    /// Final orders and redeemed or returned cards whose missing event was published.
    pub notified: usize,
    /// Items that failed this pass and will be tried on the next.
    pub failed: usize,
    /// ACTIVE cards past their expiry date, now EXPIRED.
    pub expired_cards: u64,
    /// Available brand codes past their expiry date, now EXPIRED and out of stock.
    pub expired_codes: u64,
    /// Webhook deliveries overdue (a wake-up was lost, a dispatcher died mid-attempt) whose
    /// dispatcher was woken again.
    pub woken_deliveries: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedriveReport {
    pub moved: Vec<DeadLetter>,
    pub dry_run: bool,
}

/// A dead letter's values as the audit log keeps them (never an unreadable body).
fn letter_values(letter: &DeadLetter) -> serde_json::Value {
    json!({
        "messageId": letter.message_id,
        "orderId": letter.order().map(|m| m.order_id.as_str()),
        "receiveCount": letter.receive_count,
        "lastError": letter.last_error,
    })
}

/// How many orders one reconciler pass looks at, per kind.
const RECONCILE_BATCH: u32 = 200;
/// How late a pending delivery may be before its wake-up counts as lost: a wake-up arrives
/// within seconds, and a claimed delivery's lease is a minute.
const OVERDUE_AFTER: chrono::Duration = chrono::Duration::minutes(2);

impl Giftify {
    /// Gives up orders still not final at their deadline with a full refund, re-enqueues
    /// PENDING orders older than the threshold (their enqueue may have failed after the
    /// commit), publishes events still owed by final orders and by redeemed or
    /// returned cards, wakes the dispatcher for overdue webhook deliveries, and expires cards
    /// and codes past their date.
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        let mut report = ReconcileReport::default();
        self.refund_stuck(&mut report).await?;
        let before = self.now() - self.rules.stale_pending_after;
        for order in self
            .ports
            .orders
            .stale_orders(OrderStatus::Pending, before, RECONCILE_BATCH)
            .await?
        {
            let message = OrderMessage {
                order_id: order.id.clone(),
                user_id: order.user_id.clone(),
            };
            match self.ports.queue.enqueue(&message).await {
                Ok(()) => report.requeued += 1,
                Err(error) => {
                    tracing::warn!(order_id = %order.id, error = %error, "re-enqueue failed");
                    report.failed += 1;
                }
            }
        }
        for order in self.ports.orders.unnotified(RECONCILE_BATCH).await? {
            match self.notify(&order).await {
                Ok(()) => report.notified += 1,
                Err(error) => {
                    tracing::warn!(order_id = %order.id, error = %error, "event publish failed");
                    report.failed += 1;
                }
            }
        }
        for card in self
            .ports
            .gift_cards
            .unnotified_cards(RECONCILE_BATCH)
            .await?
        {
            match self.notify_card(&card).await {
                Ok(()) => report.notified += 1,
                Err(error) => {
                    tracing::warn!(gift_card_id = %card.id, error = %error, "card event publish failed");
                    report.failed += 1;
                }
            }
        }
        let overdue = self.now() - OVERDUE_AFTER;
        for delivery in self
            .ports
            .webhooks
            .due_deliveries(overdue, RECONCILE_BATCH)
            .await?
        {
            match self.ports.wakeups.wake_at(&delivery, self.now()).await {
                Ok(()) => report.woken_deliveries += 1,
                Err(error) => {
                    tracing::warn!(delivery_id = %delivery.id, error = %error, "waking an overdue delivery failed");
                    report.failed += 1;
                }
            }
        }
        self.expire(&mut report).await?;
        Ok(report)
    }

    /// Orders placed before the deadline and still PENDING or PROCESSING: whatever holds them
    /// (a dead letter, a lost message, a worker that never ran), the customer's money comes
    /// back. A fulfillment that commits first wins, and the give-up finds the order final.
    async fn refund_stuck(&self, report: &mut ReconcileReport) -> Result<()> {
        let deadline = self.rules.stuck_order_refund_after;
        let before = self.now() - deadline;
        for status in [OrderStatus::Pending, OrderStatus::Processing] {
            for order in self
                .ports
                .orders
                .stale_orders(status, before, RECONCILE_BATCH)
                .await?
            {
                match self
                    .give_up(&Actor::Reconciler, &order, RefundReason::stuck(deadline))
                    .await
                {
                    Ok(_) => report.refunded += 1,
                    Err(Error::OrderAlreadyFinal(_)) => {}
                    Err(error) => {
                        tracing::warn!(order_id = %order.id, error = %error, "refund of a stuck order failed");
                        report.failed += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Closes an unfinished order as REFUNDED with everything it paid back and `reason` kept
    /// with it, then publishes `order.refunded`.
    /// # Errors
    /// [`Error::OrderAlreadyFinal`] when it finished first (a fulfillment won the race).
    async fn give_up(&self, actor: &Actor, order: &Order, reason: RefundReason) -> Result<Order> {
        let before = order.status;
        let refund_id = TransactionId::generate();
        let given_up = self
            .ports
            .orders
            .refund_in_full(&Cancellation {
                order_id: order.id.clone(),
                user_id: order.user_id.clone(),
                closing: Closing::GiveUp { reason },
                refund_transaction_id: refund_id.clone(),
                idempotency: None,
                now: self.now(),
            })
            .await;
        let order = match given_up {
            Ok(order) => order,
            // A commit whose answer was lost (a timeout after DynamoDB committed) is retried,
            // and the retry finds the order final. If its refund is this give-up's own record,
            // the give-up happened: it is audited and announced like any other, not a 409.
            Err(Error::OrderAlreadyFinal(status)) => {
                if self
                    .ports
                    .wallets
                    .transaction(&order.user_id, &refund_id)
                    .await?
                    .is_none()
                {
                    return Err(Error::OrderAlreadyFinal(status));
                }
                self.ports
                    .orders
                    .order(&order.id)
                    .await?
                    .ok_or(Error::NotFound(Missing::Order))?
            }
            Err(error) => return Err(error),
        };
        self.audit(
            AuditEntry::new(
                order.updated_at,
                actor,
                AuditAction::OrderRefunded,
                order.id.as_str(),
            )
            .before(json!({ "status": before.as_str(), "paidAmount": order.paid_amount.get() }))
            .after(json!({
                "status": order.status.as_str(),
                "refundAmount": order.refund_amount.get(),
                "refundReason": order.fulfillment.refund_reason,
            })),
        )
        .await;
        // The refund is committed; a failed publish is finished by the reconciler.
        if let Err(error) = self.notify(&order).await {
            tracing::warn!(order_id = %order.id, error = %error, "refund event not published yet");
        }
        Ok(order)
    }

    /// An operator gives up an unfinished order (dead-lettered, or stuck anywhere else): it
    /// becomes REFUNDED with `reason`, and its dead letters are removed, since a redrive could
    /// only find it final. Returns the order and how many dead letters were removed.
    /// # Errors
    /// [`Error::NotFound`] for an unknown order, [`Error::OrderAlreadyFinal`] for a final one
    /// (its dead letters are left for the operator to redrive or delete).
    pub async fn refund_unfinished(
        &self,
        actor: &Actor,
        id: &OrderId,
        reason: RefundReason,
    ) -> Result<(Order, usize)> {
        let order = self
            .ports
            .orders
            .order(id)
            .await?
            .ok_or(Error::NotFound(Missing::Order))?;
        let order = self.give_up(actor, &order, reason).await?;
        let mut removed = 0;
        while let Some(letter) = self
            .ports
            .queue_ops
            .delete_dead_letter(&LetterPick::Order(id.clone()))
            .await?
        {
            self.audit(
                AuditEntry::new(
                    self.now(),
                    actor,
                    AuditAction::DeadLetterDeleted,
                    letter.message_id.as_str(),
                )
                .before(letter_values(&letter)),
            )
            .await;
            removed += 1;
        }
        Ok((order, removed))
    }

    /// Sends the order's dead letter back to the queue.
    /// # Errors
    /// [`Error::NotFound`] when no dead letter carries the order.
    pub async fn redrive_order(&self, actor: &Actor, id: &OrderId) -> Result<DeadLetter> {
        let letter = self
            .ports
            .queue_ops
            .redrive(&LetterPick::Order(id.clone()))
            .await?
            .ok_or(Error::NotFound(Missing::DeadLetter))?;
        self.audit_redrive(actor, &letter).await;
        Ok(letter)
    }

    async fn audit_redrive(&self, actor: &Actor, letter: &DeadLetter) {
        let subject = letter
            .order()
            .map_or(letter.message_id.as_str(), |m| m.order_id.as_str());
        self.audit(
            AuditEntry::new(self.now(), actor, AuditAction::DeadLetterRedriven, subject)
                .before(letter_values(letter)),
        )
        .await;
    }

    /// A card or code expires the day after its expiry date: on that date it is still good.
    async fn expire(&self, report: &mut ReconcileReport) -> Result<()> {
        let today = self.now().date_naive();
        let catalogue = self.ports.catalogue.inventory().await?;
        report.expired_cards = self
            .ports
            .gift_cards
            .expire_cards(&crate::card_life::Expiry::new(
                today,
                RECONCILE_BATCH,
                &catalogue,
            ))
            .await?;
        for entry in catalogue {
            if entry.variant.fulfillment_source != crate::codes::FulfillmentSource::Inventory {
                continue;
            }
            // One variant's failure leaves the others to expire; it is tried on the next pass.
            match self
                .ports
                .codes
                .expire_codes(&entry.variant.id, today, self.now())
                .await
            {
                Ok(expired) => report.expired_codes += expired,
                Err(error) => {
                    tracing::warn!(variant_id = %entry.variant.id, error = %error, "code expiry failed");
                    report.failed += 1;
                }
            }
        }
        Ok(())
    }

    /// Messages ready, in flight and dead.
    pub async fn queue_depths(&self) -> Result<crate::order::QueueDepths> {
        self.ports.queue_ops.depths().await
    }

    /// A cheap round trip to the backend.
    pub async fn health(&self) -> Result<()> {
        self.ports.health.check().await
    }

    pub async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>> {
        self.ports.queue_ops.dead_letters(limit).await
    }

    /// Up to `limit` dead letters, oldest first, each with its order as it stands now (`None`
    /// for an unreadable letter or an order that no longer exists): what an operator needs to
    /// choose between a redrive and a refund.
    pub async fn dead_letters_with_orders(
        &self,
        limit: u32,
    ) -> Result<Vec<(DeadLetter, Option<Order>)>> {
        let mut listed = Vec::new();
        for letter in self.ports.queue_ops.dead_letters(limit).await? {
            let order = match letter.order() {
                Some(message) => self.ports.orders.order(&message.order_id).await?,
                None => None,
            };
            listed.push((letter, order));
        }
        Ok(listed)
    }

    /// Removes a dead letter for good (an unreadable one, or an order an operator settled by
    /// hand); `None` when there is no dead letter with this id.
    pub async fn delete_dead_letter(
        &self,
        actor: &Actor,
        message_id: &str,
    ) -> Result<Option<DeadLetter>> {
        let deleted = self
            .ports
            .queue_ops
            .delete_dead_letter(&LetterPick::Message(message_id.to_string()))
            .await?;
        if let Some(letter) = &deleted {
            self.audit(
                AuditEntry::new(
                    self.now(),
                    actor,
                    AuditAction::DeadLetterDeleted,
                    message_id,
                )
                .before(letter_values(letter)),
            )
            .await;
        }
        Ok(deleted)
    }

    /// Moves up to `max` dead letters back to the queue, oldest first, calling `progress` after
    /// each. A dry run only lists what would move.
    pub async fn redrive(
        &self,
        actor: &Actor,
        max: u32,
        dry_run: bool,
        mut progress: impl FnMut(&DeadLetter),
    ) -> Result<RedriveReport> {
        if dry_run {
            let moved: Vec<DeadLetter> = self
                .ports
                .queue_ops
                .dead_letters(max)
                .await?
                .into_iter()
                .filter(|letter| letter.order().is_some())
                .collect();
            moved.iter().for_each(&mut progress);
            return Ok(RedriveReport { moved, dry_run });
        }
        let mut moved = Vec::new();
        while moved.len() < max as usize {
            match self.ports.queue_ops.redrive(&LetterPick::Oldest).await? {
                Some(letter) => {
                    self.audit_redrive(actor, &letter).await;
                    progress(&letter);
                    moved.push(letter);
                }
                None => break,
            }
        }
        Ok(RedriveReport { moved, dry_run })
    }
}
