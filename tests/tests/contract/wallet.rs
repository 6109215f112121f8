//! Wallet top-ups, the balance limit and the transaction history.

use crate::support::{assert_ledger_consistent, new_order, now, placement, stocked, top_up, user};
use anyhow::Result;
use chrono::Duration;
use giftify_shared::ids::{TransactionId, UserId};
use giftify_shared::ledger::{Movement, Posting};
use giftify_shared::order::OrderSource;
use giftify_shared::ports::Ports;
use giftify_shared::wallet::TransactionFilter;
use giftify_shared::wallet::{PageRequest, TransactionType};
use giftify_shared::{Error, Paise};

pub async fn a_top_up_credits_the_wallet_and_records_the_balance_after(
    ports: &Ports,
) -> Result<()> {
    let owner = user(ports).await?;
    let first = top_up(&owner.id, 50_000);

    let txn = ports.wallets.top_up(&first).await?;

    assert_eq!(txn.id, first.movement.id);
    assert_eq!(txn.kind, TransactionType::Credit);
    assert_eq!(txn.amount.get(), 50_000);
    assert_eq!(txn.balance_after.get(), 50_000);
    assert_eq!(txn.description, first.movement.description);
    assert_eq!(txn.order_id, None);
    assert_eq!(txn.created_at, first.movement.at);
    let second = ports.wallets.top_up(&top_up(&owner.id, 25_000)).await?;
    assert_eq!(second.balance_after.get(), 75_000);
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 75_000);
    assert_eq!(
        ports.wallets.transaction(&owner.id, &txn.id).await?,
        Some(txn)
    );
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn a_top_up_beyond_the_wallet_limit_fails_and_changes_nothing(
    ports: &Ports,
) -> Result<()> {
    let owner = user(ports).await?;
    let limit = Paise::new(100_000);
    let capped = |amount| {
        let mut t = top_up(&owner.id, amount);
        t.movement.cap = Some(limit);
        t
    };
    ports.wallets.top_up(&capped(60_000)).await?;

    let refused = capped(40_001);
    let err = ports.wallets.top_up(&refused).await.unwrap_err();

    assert!(
        matches!(err, Error::WalletLimitExceeded { limit: l } if l == limit),
        "{err:?}"
    );
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 60_000);
    assert!(
        ports
            .wallets
            .transaction(&owner.id, &refused.movement.id)
            .await?
            .is_none()
    );
    let exact = ports.wallets.top_up(&capped(40_000)).await?;
    assert_eq!(
        exact.balance_after, limit,
        "reaching the limit exactly is allowed"
    );
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn a_top_up_for_an_unknown_user_is_not_found(ports: &Ports) -> Result<()> {
    let err = ports
        .wallets
        .top_up(&top_up(&UserId::generate(), 1_000))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    Ok(())
}

pub async fn transactions_are_listed_newest_first_filtered_and_paged(ports: &Ports) -> Result<()> {
    let owner = user(ports).await?;
    let t0 = now();
    let mut ids = Vec::new();
    for (i, amount) in [10_000, 20_000, 30_000].into_iter().enumerate() {
        let mut t = top_up(&owner.id, amount);
        t.movement.at = t0 + Duration::seconds(i as i64);
        ids.push(ports.wallets.top_up(&t).await?.id);
    }
    let entries = stocked(ports, &[10]).await?;
    let order = new_order(
        &owner.id,
        &[(&entries[0], 1)],
        OrderSource::Items,
        t0 + Duration::seconds(3),
    );
    ports.orders.place_order(&placement(&order, None)).await?;

    let page = |page, limit| PageRequest::new(Some(page), Some(limit), 20);
    let first = ports
        .wallets
        .transactions(&owner.id, &TransactionFilter::ALL, page(1, 2)?)
        .await?;
    assert_eq!(first.total, 4);
    assert!(first.has_next());
    assert_eq!(first.items.len(), 2);
    assert_eq!(
        first.items[0].kind,
        TransactionType::Debit,
        "the order came last"
    );
    assert_eq!(first.items[0].order_id, Some(order.id));
    assert_eq!(first.items[1].id, ids[2]);
    let second = ports
        .wallets
        .transactions(&owner.id, &TransactionFilter::ALL, page(2, 2)?)
        .await?;
    let second_ids: Vec<&TransactionId> = second.items.iter().map(|t| &t.id).collect();
    assert_eq!(second_ids, vec![&ids[1], &ids[0]]);
    assert!(!second.has_next());

    let credits = ports
        .wallets
        .transactions(
            &owner.id,
            &TransactionFilter::of_kind(TransactionType::Credit),
            page(1, 20)?,
        )
        .await?;
    assert_eq!(credits.total, 3);
    assert!(
        credits
            .items
            .iter()
            .all(|t| t.kind == TransactionType::Credit)
    );

    let stranger = user(ports).await?;
    assert!(
        ports
            .wallets
            .transaction(&stranger.id, &ids[0])
            .await?
            .is_none()
    );
    assert_eq!(
        ports
            .wallets
            .transactions(&stranger.id, &TransactionFilter::ALL, page(1, 20)?)
            .await?
            .total,
        0
    );
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn concurrent_top_ups_never_exceed_the_wallet_limit(ports: &Ports) -> Result<()> {
    let owner = user(ports).await?;
    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let (ports, id) = (ports.clone(), owner.id.clone());
            tokio::spawn(async move {
                let mut t = top_up(&id, 20_000);
                t.movement.cap = Some(Paise::new(100_000));
                // A transient failure is the backend asking for a retry, not an answer.
                loop {
                    match ports.wallets.top_up(&t).await {
                        Err(e) if e.is_retryable() => continue,
                        result => return result,
                    }
                }
            })
        })
        .collect();
    let mut succeeded = 0;
    for attempt in attempts {
        match attempt.await? {
            Ok(_) => succeeded += 1,
            Err(Error::WalletLimitExceeded { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    assert_eq!(succeeded, 5);
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 100_000);
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn an_adjustment_moves_the_balance_either_way_within_the_balance_rules(
    ports: &Ports,
) -> Result<()> {
    let owner = user(ports).await?;
    let limit = Paise::new(100_000);
    let adjustment = |amount: i64| -> Result<Posting> {
        Ok(Posting {
            movement: Movement::adjustment(
                TransactionId::generate(),
                owner.id.clone(),
                Paise::new(amount),
                "ticket 4411".into(),
                limit,
                now(),
            )?,
            idempotency: None,
        })
    };
    ports.wallets.top_up(&top_up(&owner.id, 30_000)).await?;

    let credit = ports.wallets.adjust_balance(&adjustment(20_000)?).await?;
    assert_eq!(credit.kind, TransactionType::Adjustment);
    assert_eq!(
        (credit.amount.get(), credit.balance_after.get()),
        (20_000, 50_000)
    );
    assert_eq!(credit.description, "ticket 4411");
    let debit = ports.wallets.adjust_balance(&adjustment(-45_000)?).await?;
    assert_eq!(
        (debit.amount.get(), debit.balance_after.get()),
        (-45_000, 5_000),
        "a correction that takes money is signed"
    );
    assert_eq!(debit.balance_change().get(), -45_000);

    let below_zero = adjustment(-5_001)?;
    let err = ports.wallets.adjust_balance(&below_zero).await.unwrap_err();
    assert!(
        matches!(err, Error::InsufficientBalance { balance, required }
            if balance.get() == 5_000 && required.get() == 5_001),
        "{err:?}"
    );
    let past_limit = adjustment(95_001)?;
    let err = ports.wallets.adjust_balance(&past_limit).await.unwrap_err();
    assert!(matches!(err, Error::WalletLimitExceeded { .. }), "{err:?}");
    for refused in [&below_zero, &past_limit] {
        assert!(
            ports
                .wallets
                .transaction(&owner.id, &refused.movement.id)
                .await?
                .is_none()
        );
    }
    assert_eq!(ports.wallets.balance(&owner.id).await?.get(), 5_000);
    let to_zero = ports.wallets.adjust_balance(&adjustment(-5_000)?).await?;
    assert_eq!(to_zero.balance_after.get(), 0, "down to zero exactly");

    let mut stranger = adjustment(100)?;
    stranger.movement.user = UserId::generate();
    let err = ports.wallets.adjust_balance(&stranger).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert!(adjustment(0).is_err(), "a zero correction is refused");
    assert_ledger_consistent(ports, &owner.id).await
}

pub async fn transactions_are_filtered_by_a_half_open_period(ports: &Ports) -> Result<()> {
    let page = |page, limit| PageRequest::new(Some(page), Some(limit), 20);
    let owner = user(ports).await?;
    let t0 = now();
    let mut ids = Vec::new();
    for minute in 0..4 {
        let mut t = top_up(&owner.id, 1_000 * (minute + 1));
        t.movement.at = t0 + Duration::minutes(minute);
        ids.push(ports.wallets.top_up(&t).await?.id);
    }
    let period = TransactionFilter::new(
        None,
        Some(t0 + Duration::minutes(1)),
        Some(t0 + Duration::minutes(3)),
    )?;
    let found = ports
        .wallets
        .transactions(&owner.id, &period, page(1, 20)?)
        .await?;
    let listed: Vec<_> = found.items.iter().map(|t| t.id.clone()).collect();
    assert_eq!(
        listed,
        vec![ids[2].clone(), ids[1].clone()],
        "from is inclusive, to exclusive, newest first"
    );
    assert_eq!(found.total, 2);
    let before = TransactionFilter::new(None, None, Some(t0 + Duration::minutes(1)))?;
    let first = ports
        .wallets
        .transactions(&owner.id, &before, page(1, 1)?)
        .await?;
    assert_eq!(first.items[0].id, ids[0]);
    assert_eq!(first.total, 1);
    let none = TransactionFilter::new(
        Some(TransactionType::Debit),
        Some(t0),
        Some(t0 + Duration::minutes(10)),
    )?;
    assert_eq!(
        ports
            .wallets
            .transactions(&owner.id, &none, page(1, 20)?)
            .await?
            .total,
        0
    );
    assert!(TransactionFilter::new(None, Some(t0), Some(t0)).is_err());
    Ok(())
}
