//! Idempotency keys: claim, replay, refusal, lease takeover, and commits that must fail once
//! their token lost the key.

use crate::support::{funded_user, new_order, now, placement, stocked, top_up, user};
use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use giftify_shared::Error;
use giftify_shared::idempotency::{
    Claim, IdempotencyCommit, IdempotencyKey, IdempotencyScope, IdempotentOutcome, LEASE, NewClaim,
    RETENTION, Refusal, expiry_after,
};
use giftify_shared::ids::{TransactionId, UserId, VariantId};
use giftify_shared::order::{Cancellation, OrderSource, OrderStatus};
use giftify_shared::ports::Ports;

fn scope(user: &UserId) -> IdempotencyScope {
    IdempotencyScope {
        user_id: user.clone(),
        key: IdempotencyKey::parse(&format!("key-{}", UserId::generate().ulid_part()))
            .expect("a valid key"),
    }
}

fn claim(scope: &IdempotencyScope, fingerprint: &str, token: &str, at: DateTime<Utc>) -> NewClaim {
    NewClaim {
        scope: scope.clone(),
        fingerprint: fingerprint.to_string(),
        token: token.to_string(),
        now: at,
    }
}

fn commit(scope: &IdempotencyScope, token: &str, outcome: IdempotentOutcome) -> IdempotencyCommit {
    IdempotencyCommit {
        scope: scope.clone(),
        token: token.to_string(),
        outcome,
    }
}

/// A key held by `"old"` whose lease ran out and that `"new"` took over; returns when that
/// happened.
async fn taken_over(ports: &Ports, scope: &IdempotencyScope) -> Result<DateTime<Utc>> {
    let t = now();
    assert_eq!(
        ports
            .idempotency
            .claim(&claim(scope, "fp", "old", t))
            .await?,
        Claim::Acquired("old".into())
    );
    let later = t + LEASE + Duration::seconds(1);
    assert_eq!(
        ports
            .idempotency
            .claim(&claim(scope, "fp", "new", later))
            .await?,
        Claim::Acquired("new".into())
    );
    Ok(later)
}

pub async fn claiming_a_new_key_acquires_it_and_a_second_claim_is_in_progress(
    ports: &Ports,
) -> Result<()> {
    let s = scope(&user(ports).await?.id);
    let t = now();

    let first = ports.idempotency.claim(&claim(&s, "fp", "a", t)).await?;
    let second = ports
        .idempotency
        .claim(&claim(&s, "fp", "b", t + Duration::seconds(1)))
        .await?;
    let other = ports
        .idempotency
        .claim(&claim(&s, "another fp", "c", t + Duration::seconds(1)))
        .await?;

    assert_eq!(first, Claim::Acquired("a".into()));
    assert_eq!(second, Claim::InProgress);
    assert_eq!(other, Claim::KeyReused);
    Ok(())
}

pub async fn a_finished_key_replays_its_outcome_and_refuses_another_request(
    ports: &Ports,
) -> Result<()> {
    let owner = user(ports).await?;
    let s = scope(&owner.id);
    let t = now();
    ports.idempotency.claim(&claim(&s, "fp", "a", t)).await?;
    let mut credit = top_up(&owner.id, 5_000);
    credit.idempotency = Some(commit(
        &s,
        "a",
        IdempotentOutcome::ToppedUp(credit.movement.id.clone()),
    ));
    ports.wallets.top_up(&credit).await?;

    let replay = ports
        .idempotency
        .claim(&claim(&s, "fp", "b", t + LEASE * 3))
        .await?;
    let reused = ports
        .idempotency
        .claim(&claim(&s, "another fp", "c", t + Duration::seconds(1)))
        .await?;

    assert_eq!(
        replay,
        Claim::Replay(IdempotentOutcome::ToppedUp(credit.movement.id.clone()))
    );
    assert_eq!(reused, Claim::KeyReused);
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 5_000);
    Ok(())
}

pub async fn a_key_whose_lease_ran_out_is_taken_over_and_the_old_holder_cannot_commit(
    ports: &Ports,
) -> Result<()> {
    let owner = user(ports).await?;
    let s = scope(&owner.id);
    let later = taken_over(ports, &s).await?;

    let mut stale = top_up(&owner.id, 5_000);
    stale.idempotency = Some(commit(
        &s,
        "old",
        IdempotentOutcome::ToppedUp(stale.movement.id.clone()),
    ));
    let err = ports.wallets.top_up(&stale).await.unwrap_err();
    assert!(matches!(err, Error::IdempotencyInProgress), "{err:?}");
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 0);
    assert!(
        ports
            .wallets
            .transaction(&owner.id, &stale.movement.id)
            .await?
            .is_none()
    );

    let mut live = top_up(&owner.id, 5_000);
    live.idempotency = Some(commit(
        &s,
        "new",
        IdempotentOutcome::ToppedUp(live.movement.id.clone()),
    ));
    ports.wallets.top_up(&live).await?;
    let replay = ports
        .idempotency
        .claim(&claim(&s, "fp", "third", later + Duration::seconds(1)))
        .await?;
    assert_eq!(
        replay,
        Claim::Replay(IdempotentOutcome::ToppedUp(live.movement.id))
    );
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 5_000);
    Ok(())
}

pub async fn placing_or_cancelling_with_a_lost_token_changes_nothing(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;

    let placing = scope(&owner.id);
    taken_over(ports, &placing).await?;
    let order = new_order(&owner.id, &[(&e[0], 1)], OrderSource::Items, now());
    let mut stale = placement(&order, None);
    stale.idempotency = Some(commit(
        &placing,
        "old",
        IdempotentOutcome::OrderPlaced(order.id.clone()),
    ));
    let err = ports.orders.place_order(&stale).await.unwrap_err();
    assert!(matches!(err, Error::IdempotencyInProgress), "{err:?}");
    assert!(ports.orders.order(&order.id).await?.is_none());
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 1_000_000);
    assert_eq!(ports.queue_ops.depths().await?.ready, 0);

    ports.orders.place_order(&placement(&order, None)).await?;
    let cancelling = scope(&owner.id);
    taken_over(ports, &cancelling).await?;
    let cancel = Cancellation {
        order_id: order.id.clone(),
        user_id: owner.id.clone(),
        closing: giftify_shared::order::Closing::Cancel,
        refund_transaction_id: TransactionId::generate(),
        idempotency: Some(commit(
            &cancelling,
            "old",
            IdempotentOutcome::OrderCancelled(order.id.clone()),
        )),
        now: now(),
    };
    let err = ports.orders.refund_in_full(&cancel).await.unwrap_err();
    assert!(matches!(err, Error::IdempotencyInProgress), "{err:?}");
    let still = ports.orders.order(&order.id).await?.unwrap();
    assert_eq!(still.status, OrderStatus::Pending);
    assert_eq!(
        ports.wallets.balance(&owner.id).await?,
        giftify_shared::Paise::new(1_000_000 - order.total_amount.get())
    );
    Ok(())
}

pub async fn a_released_key_can_be_claimed_again_but_only_by_its_holder(
    ports: &Ports,
) -> Result<()> {
    let s = scope(&user(ports).await?.id);
    let t = now();
    ports.idempotency.claim(&claim(&s, "fp", "a", t)).await?;

    ports.idempotency.release(&s, "not-the-holder").await?;
    assert_eq!(
        ports.idempotency.claim(&claim(&s, "fp", "b", t)).await?,
        Claim::InProgress
    );

    ports.idempotency.release(&s, "a").await?;
    assert_eq!(
        ports.idempotency.claim(&claim(&s, "fp", "c", t)).await?,
        Claim::Acquired("c".into())
    );
    Ok(())
}

pub async fn a_recorded_refusal_replays_as_the_same_domain_error(ports: &Ports) -> Result<()> {
    let s = scope(&user(ports).await?.id);
    let t = now();
    ports.idempotency.claim(&claim(&s, "fp", "a", t)).await?;
    let variant = VariantId::generate();
    let refusal = Refusal::of(&Error::OutOfStock {
        variant_id: variant.clone(),
    })
    .expect("a refusal");

    ports.idempotency.record_refusal(&s, "a", &refusal).await?;

    let replay = ports.idempotency.claim(&claim(&s, "fp", "b", t)).await?;
    assert_eq!(
        replay,
        Claim::Replay(IdempotentOutcome::Refused(refusal.clone()))
    );
    assert!(
        matches!(refusal.into_error()?, Error::OutOfStock { variant_id } if variant_id == variant),
        "the same error, with its details"
    );

    // A stale holder's response must not overwrite the key's new holder.
    let other = scope(&s.user_id);
    let later = taken_over(ports, &other).await?;
    let stale = ports
        .idempotency
        .record_refusal(&other, "old", &Refusal::CartEmpty)
        .await;
    assert!(
        matches!(stale, Ok(()) | Err(Error::IdempotencyInProgress)),
        "{stale:?}"
    );
    assert_eq!(
        ports
            .idempotency
            .claim(&claim(&other, "fp", "x", later))
            .await?,
        Claim::InProgress
    );
    Ok(())
}

pub async fn keys_are_scoped_per_user(ports: &Ports) -> Result<()> {
    let alice = scope(&user(ports).await?.id);
    let bob = IdempotencyScope {
        user_id: user(ports).await?.id,
        key: alice.key.clone(),
    };
    let t = now();
    assert_eq!(
        ports
            .idempotency
            .claim(&claim(&alice, "fp", "a", t))
            .await?,
        Claim::Acquired("a".into())
    );
    assert_eq!(
        ports
            .idempotency
            .claim(&claim(&bob, "other fp", "b", t))
            .await?,
        Claim::Acquired("b".into())
    );
    Ok(())
}

pub async fn an_expired_key_counts_as_absent(ports: &Ports) -> Result<()> {
    let s = scope(&user(ports).await?.id);
    let t = now();
    ports.idempotency.claim(&claim(&s, "fp", "a", t)).await?;
    ports
        .idempotency
        .record_refusal(&s, "a", &Refusal::CartEmpty)
        .await?;

    let much_later = t + RETENTION + Duration::minutes(1);
    let fresh = ports
        .idempotency
        .claim(&claim(&s, "another fp", "b", much_later))
        .await?;

    assert_eq!(fresh, Claim::Acquired("b".into()));
    Ok(())
}

/// The expiry rule at its exact boundary, on every backend: a finished key still replays one
/// millisecond before `expiry_after(claim time)` and counts as absent from that instant on.
pub async fn a_key_expires_at_exactly_the_instant_the_core_gives_it(ports: &Ports) -> Result<()> {
    let s = scope(&user(ports).await?.id);
    // A claim time with a fraction of a second, so the whole-second expiry is exercised.
    let t = now() + Duration::milliseconds(437);
    ports.idempotency.claim(&claim(&s, "fp", "a", t)).await?;
    ports
        .idempotency
        .record_refusal(&s, "a", &Refusal::CartEmpty)
        .await?;
    let expires_at = expiry_after(t);

    let just_before = expires_at - Duration::milliseconds(1);
    let replay = ports
        .idempotency
        .claim(&claim(&s, "fp", "b", just_before))
        .await?;
    assert!(matches!(replay, Claim::Replay(_)), "{replay:?}");
    let fresh = ports
        .idempotency
        .claim(&claim(&s, "fp", "c", expires_at))
        .await?;
    assert_eq!(fresh, Claim::Acquired("c".into()));
    Ok(())
}

/// A takeover restarts the key's retention on every backend: the key is still held (in
/// progress, not absent) after the first claim's retention has passed.
pub async fn a_takeover_restarts_the_keys_retention(ports: &Ports) -> Result<()> {
    let s = scope(&user(ports).await?.id);
    let taken_at = taken_over(ports, &s).await?;
    let first_expiry = expiry_after(taken_at - LEASE - Duration::seconds(1));
    // Past the first claim's retention, within the takeover's: the new holder's lease ran
    // out long ago, so a claim takes it over again rather than inserting afresh.
    let after_first_expiry = first_expiry + Duration::seconds(1);
    assert!(after_first_expiry < expiry_after(taken_at));
    ports
        .idempotency
        .record_refusal(&s, "new", &Refusal::CartLocked)
        .await?;
    let replay = ports
        .idempotency
        .claim(&claim(&s, "fp", "later", after_first_expiry))
        .await?;
    assert!(
        matches!(
            replay,
            Claim::Replay(IdempotentOutcome::Refused(Refusal::CartLocked))
        ),
        "{replay:?}"
    );
    Ok(())
}
