//! The fulfillment queue's deduplication, its operator view, event publishing and health.

use crate::support::{funded_user, new_order, now, place, placement, stocked};
use anyhow::Result;
use giftify_shared::events::OrderEvent;
use giftify_shared::ids::{OrderId, UserId};
use giftify_shared::order::{LetterPick, OrderMessage, OrderSource, OrderStatus, Outbox};
use giftify_shared::ports::Ports;

pub async fn enqueueing_the_same_order_twice_keeps_one_message(ports: &Ports) -> Result<()> {
    let message = OrderMessage {
        order_id: OrderId::generate(),
        user_id: UserId::generate(),
    };

    ports.queue.enqueue(&message).await?;
    ports.queue.enqueue(&message).await?;

    assert_eq!(ports.queue_ops.depths().await?.ready, 1);
    let other = OrderMessage {
        order_id: OrderId::generate(),
        ..message
    };
    ports.queue.enqueue(&other).await?;
    assert_eq!(ports.queue_ops.depths().await?.ready, 2);
    Ok(())
}

pub async fn placing_an_order_then_enqueueing_it_leaves_one_message(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;
    let order = place(ports, &owner.id, &[(&e[0], 1)]).await?;

    ports
        .queue
        .enqueue(&OrderMessage {
            order_id: order.id.clone(),
            user_id: owner.id.clone(),
        })
        .await?;

    let depths = ports.queue_ops.depths().await?;
    assert_eq!((depths.ready, depths.in_flight, depths.dead), (1, 0, 0));
    Ok(())
}

/// The outbox is part of the contract: a placement that says its message committed with it
/// leaves exactly that message queued; one that says it is unsent leaves the queue empty, and
/// the caller's send makes it one.
pub async fn a_placement_says_where_its_fulfillment_message_is(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;
    let order = new_order(&owner.id, &[(&e[0], 1)], OrderSource::Items, now());

    let outbox = ports.orders.place_order(&placement(&order, None)).await?;

    let queued = ports.queue_ops.depths().await?.ready;
    match outbox {
        Outbox::Committed => assert_eq!(queued, 1, "committed with the order"),
        Outbox::Unsent => {
            assert_eq!(queued, 0, "the caller sends it");
            ports
                .queue
                .enqueue(&OrderMessage {
                    order_id: order.id.clone(),
                    user_id: owner.id.clone(),
                })
                .await?;
            assert_eq!(ports.queue_ops.depths().await?.ready, 1);
        }
    }
    Ok(())
}

pub async fn an_empty_dead_letter_queue_has_nothing_to_redrive(ports: &Ports) -> Result<()> {
    assert!(ports.queue_ops.dead_letters(10).await?.is_empty());
    assert!(
        ports
            .queue_ops
            .redrive(&LetterPick::Oldest)
            .await?
            .is_none()
    );
    assert_eq!(ports.queue_ops.depths().await?.dead, 0);
    Ok(())
}

/// Dead letters are picked by order or by message id: the operator's per-order redrive and
/// refund touch that order's letter and no other.
pub async fn dead_letters_are_picked_by_order_or_message(ports: &Ports) -> Result<()> {
    let messages: Vec<OrderMessage> = (0..3)
        .map(|_| OrderMessage {
            order_id: OrderId::generate(),
            user_id: UserId::generate(),
        })
        .collect();
    for message in &messages {
        ports.queue.enqueue(message).await?;
    }
    let mut dead = 0;
    for _ in 0..10 {
        let received = ports
            .inbox
            .receive(10, std::time::Duration::from_millis(200))
            .await?;
        for delivery in &received {
            ports.inbox.dead_letter(delivery, "poison").await?;
            dead += 1;
        }
        if dead == messages.len() {
            break;
        }
    }
    assert_eq!(dead, messages.len());
    let order_of =
        |letter: &giftify_shared::order::DeadLetter| letter.order().map(|m| m.order_id.clone());

    let unknown = LetterPick::Order(OrderId::generate());
    assert!(ports.queue_ops.redrive(&unknown).await?.is_none());
    assert!(
        ports
            .queue_ops
            .delete_dead_letter(&unknown)
            .await?
            .is_none()
    );
    let redriven = ports
        .queue_ops
        .redrive(&LetterPick::Order(messages[1].order_id.clone()))
        .await?
        .expect("the letter of the second order");
    assert_eq!(order_of(&redriven), Some(messages[1].order_id.clone()));
    let deleted = ports
        .queue_ops
        .delete_dead_letter(&LetterPick::Order(messages[2].order_id.clone()))
        .await?
        .expect("the letter of the third order");
    assert_eq!(order_of(&deleted), Some(messages[2].order_id.clone()));
    assert_eq!(deleted.last_error.as_deref(), Some("poison"));

    let left = ports.queue_ops.dead_letters(10).await?;
    assert_eq!(left.len(), 1);
    assert_eq!(order_of(&left[0]), Some(messages[0].order_id.clone()));
    assert_eq!(left[0].last_error.as_deref(), Some("poison"));
    assert!(left[0].dead_at.is_some(), "since when it is dead");
    let by_id = ports
        .queue_ops
        .delete_dead_letter(&LetterPick::Message(left[0].message_id.clone()))
        .await?
        .expect("by message id");
    assert_eq!(by_id.message_id, left[0].message_id);
    assert!(ports.queue_ops.dead_letters(10).await?.is_empty());
    let depths = ports.queue_ops.depths().await?;
    assert_eq!(
        (depths.ready, depths.dead),
        (1, 0),
        "the redriven one is queued"
    );
    Ok(())
}

pub async fn publishing_the_same_event_twice_is_harmless(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;
    let order = place(ports, &owner.id, &[(&e[0], 1)]).await?;
    let cancelled = ports
        .orders
        .refund_in_full(&giftify_shared::order::Cancellation {
            order_id: order.id.clone(),
            user_id: owner.id.clone(),
            closing: giftify_shared::order::Closing::Cancel,
            refund_transaction_id: giftify_shared::ids::TransactionId::generate(),
            idempotency: None,
            now: crate::support::now(),
        })
        .await?;
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    let event = OrderEvent::for_order(&cancelled).expect("a final order has an event");

    ports.events.publish(&event.clone().into()).await?;
    ports.events.publish(&event.clone().into()).await?;
    Ok(())
}

pub async fn the_backend_answers_a_health_check(ports: &Ports) -> Result<()> {
    ports.health.check().await?;
    Ok(())
}
