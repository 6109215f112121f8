//! Orders: placement, the status machine, conditional fulfillment and cancel, the reads, and
//! the issued cards.

use crate::support::{
    assert_ledger_consistent, assert_order_adds_up, cards_of_order, cart_line, fulfil, fulfillment,
    funded_user, new_order, now, place, placement, stock_of, stocked, vault,
};
use anyhow::Result;
use chrono::Duration;
use giftify_shared::catalogue::VariantUpdate;
use giftify_shared::ids::{GiftCardId, OrderId, TransactionId};
use giftify_shared::labels::{ClientReference, Metadata, OrderLabels};
use giftify_shared::ledger::describe;
use giftify_shared::order::{Cancellation, Closing, Order, OrderSource, OrderStatus, RefundReason};
use giftify_shared::ports::Ports;
use giftify_shared::wallet::TransactionFilter;
use giftify_shared::wallet::{PageRequest, TransactionType};
use giftify_shared::{Error, Paise};
use secrecy::ExposeSecret;

fn page(page: i64, limit: i64) -> Result<PageRequest> {
    Ok(PageRequest::new(Some(page), Some(limit), 20)?)
}

fn cancellation(order: &Order) -> Cancellation {
    Cancellation {
        order_id: order.id.clone(),
        user_id: order.user_id.clone(),
        closing: Closing::Cancel,
        refund_transaction_id: TransactionId::generate(),
        idempotency: None,
        now: now(),
    }
}

fn ids(orders: &[Order]) -> Vec<&OrderId> {
    orders.iter().map(|o| &o.id).collect()
}

pub async fn placing_an_order_debits_the_wallet_and_stores_it_pending(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10, 10]).await?;
    let order = new_order(
        &owner.id,
        &[(&e[0], 2), (&e[1], 1)],
        OrderSource::Items,
        now(),
    );
    let placed = placement(&order, None);

    ports.orders.place_order(&placed).await?;

    assert_eq!(ports.orders.order(&order.id).await?, Some(order.clone()));
    let balance = 1_000_000 - order.total_amount.get();
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), balance);
    let debit = ports
        .wallets
        .transaction(&owner.id, &placed.debit.id)
        .await?
        .expect("the DEBIT record");
    assert_eq!(debit.kind, TransactionType::Debit);
    assert_eq!(debit.amount, order.total_amount);
    assert_eq!(debit.balance_after.get(), balance);
    assert_eq!(debit.order_id, Some(order.id.clone()));
    let mine = ports
        .orders
        .orders_of(&owner.id, None, page(1, 20)?)
        .await?;
    assert_eq!(mine.total, 1);
    assert_eq!(mine.items, vec![order]);
    assert_eq!(
        stock_of(ports, &e[0].variant.id).await?,
        10,
        "stock moves at fulfillment"
    );
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn placing_an_order_with_insufficient_balance_changes_nothing(
    ports: &Ports,
) -> Result<()> {
    let owner = funded_user(ports, 10_000).await?;
    let e = stocked(ports, &[10]).await?;
    let cart = ports
        .carts
        .put_line(&owner.id, &cart_line(&e[0], 1), now())
        .await?;
    let order = new_order(&owner.id, &[(&e[0], 1)], OrderSource::Cart, now());

    let err = ports
        .orders
        .place_order(&placement(&order, Some(cart.version)))
        .await
        .unwrap_err();

    assert!(
        matches!(err, Error::InsufficientBalance { balance, required }
            if balance == Paise::new(10_000) && required == order.total_amount),
        "{err:?}"
    );
    assert!(ports.orders.order(&order.id).await?.is_none());
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 10_000);
    let history = ports
        .wallets
        .transactions(&owner.id, &TransactionFilter::ALL, page(1, 20)?)
        .await?;
    assert_eq!(history.total, 1, "only the top-up");
    assert_eq!(
        ports.carts.cart(&owner.id).await?,
        cart,
        "the cart stays unlocked"
    );
    assert_eq!(
        ports.queue_ops.depths().await?.ready,
        0,
        "nothing to fulfil"
    );
    Ok(())
}

pub async fn concurrent_orders_never_overdraw_the_wallet(ports: &Ports) -> Result<()> {
    let e = stocked(ports, &[100]).await?;
    let price = e[0].variant.selling_price.get();
    let owner = funded_user(ports, 3 * price).await?;
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let (ports, id, entry) = (ports.clone(), owner.id.clone(), e[0].clone());
            tokio::spawn(async move {
                let order = new_order(&id, &[(&entry, 1)], OrderSource::Items, now());
                loop {
                    match ports.orders.place_order(&placement(&order, None)).await {
                        Err(e) if e.is_retryable() => continue,
                        result => return result,
                    }
                }
            })
        })
        .collect();
    let (mut placed, mut refused) = (0, 0);
    for attempt in attempts {
        match attempt.await? {
            Ok(_) => placed += 1,
            Err(Error::InsufficientBalance { .. }) => refused += 1,
            Err(other) => return Err(other.into()),
        }
    }
    assert_eq!((placed, refused), (3, 5));
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 0);
    assert_eq!(
        ports
            .orders
            .orders_of(&owner.id, None, page(1, 20)?)
            .await?
            .total,
        3
    );
    assert_ledger_consistent(ports, &owner.id).await
}

/// An order with these labels, as the use case builds it.
fn labelled(mut order: Order, reference: &str, metadata: &[(&str, &str)]) -> Result<Order> {
    order.labels = OrderLabels {
        client_reference: Some(ClientReference::parse(reference)?),
        metadata: Metadata::parse(
            metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )?,
    };
    Ok(order)
}

pub async fn a_client_reference_names_one_order_per_user_for_good(ports: &Ports) -> Result<()> {
    let e = stocked(ports, &[10]).await?;
    let owner = funded_user(ports, 1_000_000).await?;
    let other = funded_user(ports, 1_000_000).await?;
    let reference = ClientReference::parse("po-2026/0042")?;
    let first = labelled(
        new_order(&owner.id, &[(&e[0], 1)], OrderSource::Items, now()),
        reference.as_str(),
        &[("campaign", "diwali"), ("costCentre", "₹ marketing")],
    )?;
    ports.orders.place_order(&placement(&first, None)).await?;

    let stored = ports.orders.order(&first.id).await?;
    assert_eq!(stored.as_ref(), Some(&first), "labels round-trip");
    assert_eq!(
        ports
            .orders
            .order_by_reference(&owner.id, &reference)
            .await?,
        Some(first.clone())
    );
    assert_eq!(
        ports
            .orders
            .order_by_reference(&other.id, &reference)
            .await?,
        None,
        "a reference is the user's own"
    );

    let second = labelled(
        new_order(&owner.id, &[(&e[0], 2)], OrderSource::Items, now()),
        reference.as_str(),
        &[],
    )?;
    let refused = ports
        .orders
        .place_order(&placement(&second, None))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::ClientReferenceReused),
        "{refused:?}"
    );
    assert!(ports.orders.order(&second.id).await?.is_none());
    assert_eq!(
        ports.wallets.balance(&owner.id).await?.get(),
        1_000_000 - first.total_amount.get(),
        "the refused order moved no money"
    );

    let theirs = labelled(
        new_order(&other.id, &[(&e[0], 1)], OrderSource::Items, now()),
        reference.as_str(),
        &[],
    )?;
    ports.orders.place_order(&placement(&theirs, None)).await?;
    assert_eq!(
        ports
            .orders
            .order_by_reference(&other.id, &reference)
            .await?
            .map(|o| o.id),
        Some(theirs.id),
        "another user may use the same reference"
    );
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn concurrent_placements_with_one_reference_commit_one(ports: &Ports) -> Result<()> {
    let e = stocked(ports, &[100]).await?;
    let owner = funded_user(ports, 1_000_000).await?;
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let (ports, id, entry) = (ports.clone(), owner.id.clone(), e[0].clone());
            tokio::spawn(async move {
                let order = labelled(
                    new_order(&id, &[(&entry, 1)], OrderSource::Items, now()),
                    "same-ref",
                    &[],
                )?;
                loop {
                    match ports.orders.place_order(&placement(&order, None)).await {
                        Err(e) if e.is_retryable() => continue,
                        result => return anyhow::Ok(result.map(|_| order.id)),
                    }
                }
            })
        })
        .collect();
    let mut placed = Vec::new();
    for attempt in attempts {
        match attempt.await?? {
            Ok(id) => placed.push(id),
            Err(Error::ClientReferenceReused) => {}
            Err(other) => return Err(other.into()),
        }
    }
    assert_eq!(placed.len(), 1, "exactly one placement commits");
    let named = ports
        .orders
        .order_by_reference(&owner.id, &ClientReference::parse("same-ref")?)
        .await?
        .expect("the order holding the reference");
    assert_eq!(named.id, placed[0]);
    assert_eq!(
        ports.wallets.balance(&owner.id).await?.get(),
        1_000_000 - named.total_amount.get()
    );
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn start_processing_moves_a_pending_order_once(ports: &Ports) -> Result<()> {
    let err = ports
        .orders
        .start_processing(&OrderId::generate(), now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");

    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;
    let order = place(ports, &owner.id, &[(&e[0], 1)]).await?;
    let at = now() + Duration::seconds(1);

    let processing = ports.orders.start_processing(&order.id, at).await?;

    assert_eq!(processing.status, OrderStatus::Processing);
    assert_eq!(processing.fulfillment.attempted_at, Some(at));
    assert_eq!(processing.items, order.items);
    let again = ports
        .orders
        .start_processing(&order.id, at + Duration::seconds(5))
        .await?;
    assert_eq!(again, processing, "any other status is returned unchanged");
    Ok(())
}

pub async fn completing_fulfillment_issues_cards_takes_stock_and_refunds_the_rest(
    ports: &Ports,
) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[2, 5]).await?;
    let order = place(ports, &owner.id, &[(&e[0], 3), (&e[1], 1)]).await?;
    let processing = ports.orders.start_processing(&order.id, now()).await?;
    let at = now();
    let plan = fulfillment(&processing, &[2, 1], at);

    let done = ports.orders.complete_fulfillment(&plan).await?;

    assert_eq!(done.status, OrderStatus::PartiallyFulfilled);
    let quantities: Vec<u32> = done.items.iter().map(|l| l.fulfilled_quantity).collect();
    assert_eq!(quantities, vec![2, 1]);
    let unit = e[0].variant.selling_price;
    assert_eq!(done.refund_amount, unit);
    assert_eq!(done.paid_amount, order.total_amount);
    assert_order_adds_up(&done)?;
    assert_eq!(
        done.fulfillment.attempted_at,
        processing.fulfillment.attempted_at
    );
    assert_eq!(done.fulfillment.fulfilled_at, Some(at));
    assert!(done.fulfillment.partial_fulfillment);
    assert!(done.fulfillment.refund_processed);
    assert_eq!(done.notified_at, None, "the event is owed");
    assert_eq!(ports.orders.order(&order.id).await?, Some(done.clone()));

    assert_eq!(stock_of(ports, &e[0].variant.id).await?, 0);
    assert_eq!(stock_of(ports, &e[1].variant.id).await?, 4);
    // One read of the order names its cards in issue order; a batch read answers in that
    // order whatever order the store finds them in, and leaves out an id it does not know.
    let issued: Vec<GiftCardId> = plan.cards.iter().map(|c| c.id.clone()).collect();
    assert_eq!(done.gift_card_ids, issued);
    let mut asked = issued.clone();
    asked.reverse();
    asked.insert(1, GiftCardId::generate());
    let read: Vec<GiftCardId> = ports
        .gift_cards
        .cards(&asked)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    asked.remove(1);
    assert_eq!(read, asked);
    assert!(ports.gift_cards.cards(&[]).await?.is_empty());
    let credit = plan.refund.as_ref().expect("a refund is owed");
    let refund = ports
        .wallets
        .transaction(&owner.id, &credit.id)
        .await?
        .expect("the REFUND record");
    assert_eq!(refund.kind, TransactionType::Refund);
    assert_eq!(refund.amount, unit);
    assert_eq!(refund.order_id, Some(order.id.clone()));
    assert_eq!(
        ports.wallets.balance(&owner.id).await?.get(),
        1_000_000 - order.total_amount.get() + unit.get()
    );
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn completing_fulfillment_twice_returns_the_order_unchanged(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[5]).await?;
    let order = place(ports, &owner.id, &[(&e[0], 2)]).await?;
    let processing = ports.orders.start_processing(&order.id, now()).await?;
    let done = ports
        .orders
        .complete_fulfillment(&fulfillment(&processing, &[2], now()))
        .await?;
    let balance = ports.wallets.balance(&owner.id).await?;

    // A redelivery that allocated differently must not issue, take or refund anything.
    let redelivered = fulfillment(&processing, &[1], now() + Duration::seconds(3));
    let again = ports.orders.complete_fulfillment(&redelivered).await?;

    assert_eq!(again, done);
    assert_eq!(cards_of_order(ports, &order.id).await?.len(), 2);
    assert_eq!(stock_of(ports, &e[0].variant.id).await?, 3);
    assert_eq!(ports.wallets.balance(&owner.id).await?, balance);
    let refund = redelivered.refund.expect("the second plan refunds a unit");
    assert!(
        ports
            .wallets
            .transaction(&owner.id, &refund.id)
            .await?
            .is_none()
    );
    assert!(
        ports
            .gift_cards
            .card(&redelivered.cards[0].id)
            .await?
            .is_none()
    );
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn completing_fulfillment_without_enough_stock_is_a_conflict_and_changes_nothing(
    ports: &Ports,
) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[5, 3]).await?;
    let order = place(ports, &owner.id, &[(&e[0], 2), (&e[1], 3)]).await?;
    let processing = ports.orders.start_processing(&order.id, now()).await?;
    // Allocated from stock read before someone else took a unit of the second variant.
    let stale = fulfillment(&processing, &[2, 3], now());
    let taken = VariantUpdate {
        stock_adjustment: Some(-1),
        ..VariantUpdate::default()
    };
    ports
        .catalogue
        .update_variant(&e[1].variant.id, &taken, now())
        .await?;
    let balance = ports.wallets.balance(&owner.id).await?;

    let err = ports.orders.complete_fulfillment(&stale).await.unwrap_err();

    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(ports.orders.order(&order.id).await?, Some(processing));
    assert_eq!(
        stock_of(ports, &e[0].variant.id).await?,
        5,
        "the line that fitted is untouched"
    );
    assert_eq!(stock_of(ports, &e[1].variant.id).await?, 2);
    assert!(cards_of_order(ports, &order.id).await?.is_empty());
    assert_eq!(ports.wallets.balance(&owner.id).await?, balance);
    Ok(())
}

pub async fn completing_fulfillment_of_an_order_not_processing_changes_nothing(
    ports: &Ports,
) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[5]).await?;
    let pending = place(ports, &owner.id, &[(&e[0], 1)]).await?;

    let untouched = ports
        .orders
        .complete_fulfillment(&fulfillment(&pending, &[1], now()))
        .await?;

    assert_eq!(untouched, pending, "a PENDING order is returned unchanged");
    assert_eq!(stock_of(ports, &e[0].variant.id).await?, 5);
    assert!(cards_of_order(ports, &pending.id).await?.is_empty());

    let cancelled = ports.orders.refund_in_full(&cancellation(&pending)).await?;
    let still = ports
        .orders
        .complete_fulfillment(&fulfillment(&pending, &[1], now()))
        .await?;
    assert_eq!(still, cancelled, "a CANCELLED order is returned unchanged");
    assert_eq!(stock_of(ports, &e[0].variant.id).await?, 5);
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn an_order_that_nothing_could_fulfil_is_refunded_in_full(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[1]).await?;
    let order = place(ports, &owner.id, &[(&e[0], 1)]).await?;
    let sold_out = VariantUpdate {
        stock_quantity: Some(0),
        ..VariantUpdate::default()
    };
    ports
        .catalogue
        .update_variant(&e[0].variant.id, &sold_out, now())
        .await?;

    let done = fulfil(ports, &order, &[0]).await?;

    assert_eq!(done.status, OrderStatus::Refunded);
    assert_eq!(done.refund_amount, order.total_amount);
    assert!(!done.fulfillment.partial_fulfillment);
    assert!(done.fulfillment.refund_processed);
    assert_order_adds_up(&done)?;
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 1_000_000);
    assert!(cards_of_order(ports, &order.id).await?.is_empty());
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn fulfilling_a_cart_order_clears_and_unlocks_the_cart(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[5, 5]).await?;
    let cart = ports
        .carts
        .put_line(&owner.id, &cart_line(&e[0], 2), now())
        .await?;
    let order = new_order(&owner.id, &[(&e[0], 2)], OrderSource::Cart, now());
    ports
        .orders
        .place_order(&placement(&order, Some(cart.version)))
        .await?;

    let done = fulfil(ports, &order, &[2]).await?;

    assert_eq!(done.status, OrderStatus::Fulfilled);
    let after = ports.carts.cart(&owner.id).await?;
    assert!(after.lines.is_empty(), "the checked-out lines are gone");
    assert_eq!(after.locked_by, None);
    assert!(after.version > cart.version);
    ports
        .carts
        .put_line(&owner.id, &cart_line(&e[1], 1), now())
        .await?;
    Ok(())
}

pub async fn cancelling_a_pending_order_refunds_it_in_full_and_unlocks_the_cart(
    ports: &Ports,
) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[5]).await?;
    let cart = ports
        .carts
        .put_line(&owner.id, &cart_line(&e[0], 2), now())
        .await?;
    let order = new_order(&owner.id, &[(&e[0], 2)], OrderSource::Cart, now());
    ports
        .orders
        .place_order(&placement(&order, Some(cart.version)))
        .await?;
    let cancel = cancellation(&order);

    let cancelled = ports.orders.refund_in_full(&cancel).await?;

    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(cancelled.refund_amount, order.total_amount);
    assert!(cancelled.fulfillment.refund_processed);
    assert_eq!(cancelled.notified_at, None, "the cancel event is owed");
    assert_eq!(cancelled.updated_at, cancel.now);
    assert_order_adds_up(&cancelled)?;
    assert_eq!(ports.orders.order(&order.id).await?, Some(cancelled));
    let refund = ports
        .wallets
        .transaction(&owner.id, &cancel.refund_transaction_id)
        .await?
        .expect("the REFUND record");
    assert_eq!(refund.kind, TransactionType::Refund);
    assert_eq!(refund.amount, order.total_amount);
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 1_000_000);
    let unlocked = ports.carts.cart(&owner.id).await?;
    assert_eq!(unlocked.locked_by, None);
    assert_eq!(
        unlocked.lines, cart.lines,
        "a cancel keeps the cart's lines"
    );
    ports
        .carts
        .put_line(&owner.id, &cart_line(&e[0], 1), now())
        .await?;
    assert_eq!(stock_of(ports, &e[0].variant.id).await?, 5);
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn only_the_owner_can_cancel_and_only_while_pending(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let stranger = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;
    let order = place(ports, &owner.id, &[(&e[0], 1)]).await?;
    let balance = ports.wallets.balance(&owner.id).await?;

    let mut theirs = cancellation(&order);
    theirs.user_id = stranger.id.clone();
    let err = ports.orders.refund_in_full(&theirs).await.unwrap_err();
    assert!(
        matches!(err, Error::NotFound(_)),
        "another user's order is not found: {err:?}"
    );
    let mut unknown = cancellation(&order);
    unknown.order_id = OrderId::generate();
    let err = ports.orders.refund_in_full(&unknown).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(ports.orders.order(&order.id).await?, Some(order.clone()));
    assert_eq!(ports.wallets.balance(&owner.id).await?, balance);
    assert_eq!(ports.wallets.balance(&stranger.id).await?.get(), 1_000_000);

    ports.orders.start_processing(&order.id, now()).await?;
    let err = ports
        .orders
        .refund_in_full(&cancellation(&order))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OrderNotCancellable(OrderStatus::Processing)),
        "{err:?}"
    );
    let done = ports
        .orders
        .complete_fulfillment(&fulfillment(
            &ports.orders.order(&order.id).await?.unwrap(),
            &[1],
            now(),
        ))
        .await?;
    let err = ports
        .orders
        .refund_in_full(&cancellation(&done))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OrderNotCancellable(OrderStatus::Fulfilled)),
        "{err:?}"
    );
    assert_eq!(ports.wallets.balance(&owner.id).await?, balance);

    let second = place(ports, &owner.id, &[(&e[0], 1)]).await?;
    ports.orders.refund_in_full(&cancellation(&second)).await?;
    let err = ports
        .orders
        .refund_in_full(&cancellation(&second))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OrderNotCancellable(OrderStatus::Cancelled)),
        "{err:?}"
    );
    assert_eq!(
        ports.wallets.balance(&owner.id).await?,
        balance,
        "refunded exactly once"
    );
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn a_final_order_owes_its_event_until_marked_notified(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;
    let done = fulfil(ports, &place(ports, &owner.id, &[(&e[0], 1)]).await?, &[1]).await?;
    let pending = place(ports, &owner.id, &[(&e[0], 1)]).await?;

    assert_eq!(ids(&ports.orders.unnotified(10).await?), vec![&done.id]);

    let at = now();
    ports.orders.mark_notified(&done.id, at).await?;
    ports.orders.mark_notified(&pending.id, at).await?;

    assert_eq!(
        ports.orders.order(&done.id).await?.unwrap().notified_at,
        Some(at)
    );
    assert_eq!(
        ports.orders.order(&pending.id).await?.unwrap().notified_at,
        None,
        "a PENDING order has no event to mark"
    );
    assert!(ports.orders.unnotified(10).await?.is_empty());
    let cancelled = ports.orders.refund_in_full(&cancellation(&pending)).await?;
    assert_eq!(
        ids(&ports.orders.unnotified(10).await?),
        vec![&cancelled.id]
    );
    Ok(())
}

pub async fn stale_pending_lists_old_pending_orders_oldest_first(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;
    let t = now();
    let mut orders = Vec::new();
    for minutes_ago in [10, 5, 0] {
        let order = new_order(
            &owner.id,
            &[(&e[0], 1)],
            OrderSource::Items,
            t - Duration::minutes(minutes_ago),
        );
        ports.orders.place_order(&placement(&order, None)).await?;
        orders.push(order);
    }
    let before = t - Duration::minutes(1);

    assert_eq!(
        ids(&ports
            .orders
            .stale_orders(OrderStatus::Pending, before, 10)
            .await?),
        vec![&orders[0].id, &orders[1].id]
    );
    assert_eq!(
        ids(&ports
            .orders
            .stale_orders(OrderStatus::Pending, before, 1)
            .await?),
        vec![&orders[0].id]
    );
    ports.orders.start_processing(&orders[0].id, now()).await?;
    assert_eq!(
        ids(&ports
            .orders
            .stale_orders(OrderStatus::Pending, before, 10)
            .await?),
        vec![&orders[1].id]
    );
    Ok(())
}

pub async fn stale_orders_lists_old_processing_orders_too(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;
    let t = now();
    let old = new_order(
        &owner.id,
        &[(&e[0], 1)],
        OrderSource::Items,
        t - Duration::minutes(30),
    );
    ports.orders.place_order(&placement(&old, None)).await?;
    let young = place(ports, &owner.id, &[(&e[0], 1)]).await?;
    ports.orders.start_processing(&old.id, t).await?;
    ports.orders.start_processing(&young.id, t).await?;
    let before = t - Duration::minutes(15);

    assert_eq!(
        ids(&ports
            .orders
            .stale_orders(OrderStatus::Processing, before, 10)
            .await?),
        vec![&old.id]
    );
    assert!(
        ports
            .orders
            .stale_orders(OrderStatus::Pending, before, 10)
            .await?
            .is_empty()
    );
    Ok(())
}

fn give_up(order: &Order, reason: &str) -> Cancellation {
    Cancellation {
        closing: Closing::GiveUp {
            reason: RefundReason::given(reason).expect("a reason"),
        },
        ..cancellation(order)
    }
}

pub async fn giving_up_an_unfinished_order_refunds_it_in_full_with_its_reason(
    ports: &Ports,
) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;
    let pending = place(ports, &owner.id, &[(&e[0], 2)]).await?;
    let processing = place(ports, &owner.id, &[(&e[0], 1)]).await?;
    ports.orders.start_processing(&processing.id, now()).await?;

    for order in [&pending, &processing] {
        let closing = give_up(order, "the brand is down");
        let refunded = ports.orders.refund_in_full(&closing).await?;
        assert_eq!(refunded.status, OrderStatus::Refunded);
        assert_eq!(refunded.refund_amount, order.paid_amount);
        assert!(refunded.fulfillment.refund_processed);
        assert_eq!(
            refunded.fulfillment.refund_reason.as_deref(),
            Some("the brand is down")
        );
        assert_eq!(ports.orders.order(&order.id).await?, Some(refunded.clone()));
        let record = ports
            .wallets
            .transaction(&owner.id, &closing.refund_transaction_id)
            .await?
            .expect("the REFUND record");
        assert_eq!(record.kind, TransactionType::Refund);
        assert_eq!(record.amount, order.paid_amount);
        assert_eq!(record.order_id, Some(order.id.clone()));
    }
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 1_000_000);
    assert_eq!(
        ids(&ports.orders.unnotified(10).await?).len(),
        2,
        "each owes its order.refunded event"
    );

    // The fulfillment that raced the give-up and lost commits nothing.
    let lost = ports
        .orders
        .complete_fulfillment(&fulfillment(&processing, &[1], now()))
        .await?;
    assert_eq!(lost.status, OrderStatus::Refunded);
    assert_eq!(stock_of(ports, &e[0].variant.id).await?, 10);
    assert!(cards_of_order(ports, &processing.id).await?.is_empty());

    // A give-up that comes after the fulfillment won changes nothing.
    let done = fulfil(ports, &place(ports, &owner.id, &[(&e[0], 1)]).await?, &[1]).await?;
    let balance = ports.wallets.balance(&owner.id).await?;
    let err = ports
        .orders
        .refund_in_full(&give_up(&done, "too late"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OrderAlreadyFinal(OrderStatus::Fulfilled)),
        "{err:?}"
    );
    let err = ports
        .orders
        .refund_in_full(&give_up(&processing, "twice"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OrderAlreadyFinal(OrderStatus::Refunded)),
        "{err:?}"
    );
    assert_eq!(ports.wallets.balance(&owner.id).await?, balance);
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn orders_are_listed_newest_first_per_user_and_for_admins(ports: &Ports) -> Result<()> {
    let alice = funded_user(ports, 1_000_000).await?;
    let bob = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;
    let t = now();
    let mut mine = Vec::new();
    for (user, seconds) in [(&alice, 0), (&alice, 1), (&alice, 2), (&bob, 3)] {
        let order = new_order(
            &user.id,
            &[(&e[0], 1)],
            OrderSource::Items,
            t + Duration::seconds(seconds),
        );
        ports.orders.place_order(&placement(&order, None)).await?;
        mine.push(order);
    }

    let first = ports.orders.orders_of(&alice.id, None, page(1, 2)?).await?;
    assert_eq!(first.total, 3);
    assert!(first.has_next());
    assert_eq!(ids(&first.items), vec![&mine[2].id, &mine[1].id]);
    let second = ports.orders.orders_of(&alice.id, None, page(2, 2)?).await?;
    assert_eq!(ids(&second.items), vec![&mine[0].id]);

    fulfil(ports, &mine[0], &[1]).await?;
    let fulfilled = ports
        .orders
        .orders_of(&alice.id, Some(OrderStatus::Fulfilled), page(1, 20)?)
        .await?;
    assert_eq!(ids(&fulfilled.items), vec![&mine[0].id]);

    let all = ports.orders.all_orders(None, page(1, 20)?).await?;
    assert_eq!(all.total, 4);
    assert_eq!(
        all.items[0].id, mine[3].id,
        "every user's orders, newest first"
    );
    let pending = ports
        .orders
        .all_orders(Some(OrderStatus::Pending), page(1, 20)?)
        .await?;
    assert_eq!(pending.total, 3);
    assert!(
        pending
            .items
            .iter()
            .all(|o| o.status == OrderStatus::Pending)
    );
    Ok(())
}

pub async fn issued_cards_are_stored_sealed_and_found_by_id_and_order(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;
    let order = place(ports, &owner.id, &[(&e[0], 2)]).await?;
    let processing = ports.orders.start_processing(&order.id, now()).await?;
    let plan = fulfillment(&processing, &[2], now());
    ports.orders.complete_fulfillment(&plan).await?;

    let mut stored = cards_of_order(ports, &order.id).await?;
    stored.sort_by(|a, b| a.id.cmp(&b.id));
    let mut issued = plan.cards.clone();
    issued.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(stored, issued);

    let card = ports
        .gift_cards
        .card(&issued[0].id)
        .await?
        .expect("the card");
    assert_eq!(card, issued[0]);
    let opened = vault().open(&card.id, &card.sealed)?;
    assert!(opened.number.expose_secret().ends_with(&card.sealed.last4));
    assert_eq!(
        card.masked_number(),
        format!("****-****-****-{}", card.sealed.last4)
    );
    assert!(
        ports
            .gift_cards
            .card(&GiftCardId::generate())
            .await?
            .is_none()
    );
    ports
        .gift_cards
        .record_reveal(&giftify_shared::vault::RevealAudit {
            gift_card_id: card.id.clone(),
            order_id: order.id.clone(),
            user_id: owner.id.clone(),
            revealed_at: now(),
        })
        .await?;
    Ok(())
}

/// The fulfillment consistency check holds on every backend: a plan whose cards, refund,
/// status, quantities or cart flag do not follow from the order is refused before anything
/// moves.
pub async fn an_inconsistent_fulfillment_is_refused_and_changes_nothing(
    ports: &Ports,
) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[5, 5]).await?;
    let order = place(ports, &owner.id, &[(&e[0], 2), (&e[1], 1)]).await?;
    let processing = ports.orders.start_processing(&order.id, now()).await?;
    let balance = ports.wallets.balance(&owner.id).await?;

    let at = now();
    let mut bad = Vec::new();
    let mut missing_card = fulfillment(&processing, &[2, 1], at);
    missing_card.cards.pop();
    bad.push(("a card short", missing_card));
    let mut short_refund = fulfillment(&processing, &[1, 1], at);
    if let Some(refund) = short_refund.refund.as_mut() {
        refund.amount = Paise::new(refund.amount.get() - 1);
    }
    bad.push(("a refund a paisa short", short_refund));
    let mut no_refund = fulfillment(&processing, &[1, 1], at);
    no_refund.refund = None;
    bad.push(("no refund for an unfulfilled unit", no_refund));
    let mut wrong_status = fulfillment(&processing, &[1, 1], at);
    wrong_status.status = OrderStatus::Fulfilled;
    bad.push(("FULFILLED with a unit short", wrong_status));
    let mut beyond = fulfillment(&processing, &[2, 1], at);
    beyond.fulfilled_quantities = vec![3, 1];
    bad.push(("more units than requested", beyond));
    let mut clears = fulfillment(&processing, &[2, 1], at);
    clears.clear_cart = true;
    bad.push(("an items order clearing the cart", clears));

    for (what, plan) in bad {
        let err = ports
            .orders
            .complete_fulfillment(&plan)
            .await
            .expect_err(what);
        assert!(matches!(err, Error::Internal(_)), "{what}: {err:?}");
        assert_eq!(
            ports.orders.order(&order.id).await?,
            Some(processing.clone()),
            "{what}: the order is untouched"
        );
    }
    assert_eq!(stock_of(ports, &e[0].variant.id).await?, 5);
    assert_eq!(stock_of(ports, &e[1].variant.id).await?, 5);
    assert!(cards_of_order(ports, &order.id).await?.is_empty());
    assert_eq!(ports.wallets.balance(&owner.id).await?, balance);
    assert_ledger_consistent(ports, &owner.id).await
}

/// Every backend words a movement exactly as the core does, so a user's history reads the
/// same wherever Giftify runs.
pub async fn wallet_records_carry_the_cores_descriptions(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[1]).await?;
    let partial = place(ports, &owner.id, &[(&e[0], 2)]).await?;
    fulfil(ports, &partial, &[1]).await?;
    let cancelled = place(ports, &owner.id, &[(&e[0], 1)]).await?;
    ports
        .orders
        .refund_in_full(&cancellation(&cancelled))
        .await?;

    let history = ports
        .wallets
        .transactions(&owner.id, &TransactionFilter::ALL, page(1, 20)?)
        .await?;
    let mut descriptions: Vec<&str> = history
        .items
        .iter()
        .map(|t| t.description.as_str())
        .collect();
    descriptions.reverse();
    assert_eq!(
        descriptions,
        vec![
            describe::TOP_UP.to_string(),
            describe::payment(&partial.id),
            describe::refund_of_unfulfilled(&partial.id),
            describe::payment(&cancelled.id),
            describe::refund_of_cancelled(&cancelled.id),
        ]
    );
    assert_eq!(
        describe::payment(&partial.id),
        format!("Payment for order {}", partial.id),
        "the wording users have always seen"
    );
    assert_ledger_consistent(ports, &owner.id).await
}
