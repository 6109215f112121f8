//! `Reports`: the daily figures every write adds to in its own atomic step, activity counted
//! once a day, and the exports read by time.

use crate::support::{fulfil, funded_user, now, place, stocked, user};
use anyhow::{Result, ensure};
use chrono::Duration;
use giftify_shared::figures::{Activity, DayFigures, OpenOrders, Report, Tally};
use giftify_shared::ids::TransactionId;
use giftify_shared::order::{Cancellation, Closing, OrderStatus};
use giftify_shared::ports::Ports;
use giftify_shared::wallet::{PageRequest, TransactionFilter};

/// Everything recorded, added up over yesterday to tomorrow (a case may cross midnight).
async fn figures(ports: &Ports) -> Result<Report> {
    let today = now().date_naive();
    let recorded = ports
        .reports
        .recorded_days(today + Duration::days(1))
        .await?;
    Ok(Report::of(
        today - Duration::days(1),
        today + Duration::days(1),
        &recorded,
        OpenOrders::default(),
    )?)
}

pub async fn every_write_adds_what_it_counts_to_its_days_figures(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[2, 10]).await?;
    let partial = place(ports, &owner.id, &[(&e[0], 3), (&e[1], 1)]).await?;
    fulfil(ports, &partial, &[2, 1]).await?;
    let cancelled = place(ports, &owner.id, &[(&e[1], 1)]).await?;
    ports
        .orders
        .refund_in_full(&Cancellation {
            order_id: cancelled.id.clone(),
            user_id: owner.id.clone(),
            closing: Closing::Cancel,
            refund_transaction_id: TransactionId::generate(),
            idempotency: None,
            now: now(),
        })
        .await?;
    let pending = place(ports, &owner.id, &[(&e[1], 2)]).await?;

    let report = figures(ports).await?;
    let t = &report.totals;
    let (a, b) = (&e[0].variant, &e[1].variant);
    let revenue = 2 * a.selling_price.get() + b.selling_price.get();
    ensure!(t.revenue == revenue, "revenue {} ≠ {revenue}", t.revenue);
    ensure!(t.cost == 2 * a.cost_price.get() + b.cost_price.get());
    ensure!((t.requested_units, t.fulfilled_units) == (4, 3));
    ensure!(t.orders_placed == 3);
    ensure!(
        t.gmv
            == partial.paid_amount.get() + cancelled.paid_amount.get() + pending.paid_amount.get()
    );
    ensure!(t.reached(OrderStatus::PartiallyFulfilled) == 1);
    ensure!(t.reached(OrderStatus::Cancelled) == 1);
    ensure!(t.reached(OrderStatus::Fulfilled) == 0);
    let refunded = a.selling_price.get() + cancelled.paid_amount.get();
    ensure!(t.refunds == refunded, "refunds {} ≠ {refunded}", t.refunds);
    ensure!((t.top_ups, t.top_up_amount) == (1, 1_000_000));
    let product = t
        .products
        .get(&e[0].product.id)
        .copied()
        .unwrap_or_default();
    ensure!(
        (product.units, product.revenue) == (3, revenue),
        "{product:?}: both variants are of one product"
    );
    // What is owed is what the wallet holds: the cards issued are brand-less test cards of a
    // GENERATED variant, owed at face value.
    let balance = ports.wallets.balance(&owner.id).await?;
    let cards = 2 * a.denomination * 100 + b.denomination * 100;
    let closing = report.closing().map(|d| d.liability.get());
    ensure!(
        closing == Some(balance.get() + cards),
        "liability {closing:?} ≠ balance {balance} + cards {cards}"
    );
    Ok(())
}

pub async fn an_accounts_activity_is_counted_once_a_day_even_racing(ports: &Ports) -> Result<()> {
    let account = user(ports).await?;
    let activity = Activity::of(&account.id, None, now()).expect("a first activity");
    let (first, second) = tokio::join!(
        ports.reports.record_activity(&activity),
        ports.reports.record_activity(&activity)
    );
    ensure!(
        [first?, second?].iter().filter(|counted| **counted).count() == 1,
        "exactly one of two racing requests counts the day"
    );
    let stored = ports.users.user(&account.id).await?.expect("the account");
    ensure!(stored.active_on == Some(now().date_naive()));
    ensure!(
        !ports.reports.record_activity(&activity).await?,
        "a stale previous day changes nothing"
    );
    let t = figures(ports).await?.totals;
    ensure!((t.active_users, t.monthly_active_users) == (1, 1), "{t:?}");
    Ok(())
}

pub async fn a_tally_recorded_on_its_own_adds_to_its_day(ports: &Ports) -> Result<()> {
    let account = user(ports).await?;
    for _ in 0..2 {
        ports
            .reports
            .record_tally(&Tally::of_wallet_refusal(&account.id, now()))
            .await?;
    }
    ports
        .reports
        .record_tally(&Tally::of_cart_start(&account.id, now()))
        .await?;
    let t = figures(ports).await?.totals;
    ensure!(
        t == DayFigures {
            wallet_refusals: 2,
            carts_started: 1,
            ..DayFigures::default()
        },
        "{t:?}"
    );
    Ok(())
}

pub async fn open_orders_are_counted_by_status(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let e = stocked(ports, &[10]).await?;
    let first = place(ports, &owner.id, &[(&e[0], 1)]).await?;
    place(ports, &owner.id, &[(&e[0], 1)]).await?;
    ports.orders.start_processing(&first.id, now()).await?;
    let open = ports.reports.open_orders().await?;
    ensure!(
        open == OpenOrders {
            pending: 1,
            processing: 1
        },
        "{open:?}"
    );
    Ok(())
}

pub async fn exports_read_the_orders_and_ledger_entries_of_a_half_open_period(
    ports: &Ports,
) -> Result<()> {
    let start = now() - Duration::seconds(1);
    let owner = funded_user(ports, 1_000_000).await?;
    let other = funded_user(ports, 500_000).await?;
    let e = stocked(ports, &[10]).await?;
    let first = place(ports, &owner.id, &[(&e[0], 1)]).await?;
    let second = place(ports, &other.id, &[(&e[0], 2)]).await?;
    fulfil(ports, &first, &[1]).await?;
    let end = now() + Duration::seconds(1);

    let orders = ports.reports.orders_created(start, end, 100).await?;
    let ids: Vec<_> = orders.iter().map(|o| o.id.clone()).collect();
    ensure!(ids == vec![first.id.clone(), second.id.clone()], "{ids:?}");
    ensure!(orders[0].status == OrderStatus::Fulfilled);
    ensure!(
        ports.reports.orders_created(start, end, 1).await?.len() == 1,
        "the limit holds"
    );
    ensure!(
        ports
            .reports
            .orders_created(end, end + Duration::seconds(5), 100)
            .await?
            .is_empty(),
        "the period is half-open and nothing was created after it"
    );

    let entries = ports.reports.ledger_entries(start, end, 100).await?;
    let mut expected = Vec::new();
    for account in [&owner.id, &other.id] {
        expected.extend(
            ports
                .wallets
                .transactions(
                    account,
                    &TransactionFilter::default(),
                    PageRequest {
                        page: 1,
                        limit: 100,
                    },
                )
                .await?
                .items,
        );
    }
    ensure!(
        entries.len() == expected.len(),
        "{} ≠ {}",
        entries.len(),
        expected.len()
    );
    ensure!(
        entries
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at),
        "by time"
    );
    let total = |list: &[giftify_shared::wallet::WalletTransaction]| -> i64 {
        list.iter().map(|t| t.balance_change().get()).sum()
    };
    ensure!(total(&entries) == total(&expected));
    let owed = ports.wallets.balance(&owner.id).await?.get()
        + ports.wallets.balance(&other.id).await?.get();
    ensure!(
        total(&entries) == owed,
        "the export adds up to the balances"
    );
    Ok(())
}

/// What the figures say is owed follows every kind of write — a fulfillment's Giftify cards, a
/// return, a redemption, an adjustment, a give-up and an expiry — to exactly the balances plus
/// the face value of the ACTIVE Giftify cards; and each write's own counter moves.
pub async fn what_is_owed_follows_every_kind_of_write(ports: &Ports) -> Result<()> {
    let owner = funded_user(ports, 1_000_000).await?;
    let friend = funded_user(ports, 5_000).await?;
    let entry = stocked(ports, &[10]).await?.remove(0);
    let order = place(ports, &owner.id, &[(&entry, 4)]).await?;
    let processing = ports.orders.start_processing(&order.id, now()).await?;
    let mut plan = crate::support::fulfillment(&processing, &[4], now());
    let today = now().date_naive();
    plan.cards[3].expiry_date = today - Duration::days(1);
    ports.orders.complete_fulfillment(&plan).await?;
    let cards = crate::support::cards_of_order(ports, &order.id).await?;
    let by_id = |id| cards.iter().find(|c| c.id == id).expect("a card").clone();
    let (returned, redeemed, expiring) = (
        by_id(plan.cards[0].id.clone()),
        by_id(plan.cards[1].id.clone()),
        by_id(plan.cards[3].id.clone()),
    );
    ports
        .gift_cards
        .return_card(&crate::codes::card_return(&returned, false))
        .await?;
    ports
        .gift_cards
        .redeem(&crate::codes::redemption(&redeemed, &friend.id, 20_000_000))
        .await?;
    ports
        .wallets
        .adjust_balance(&giftify_shared::ledger::Posting {
            movement: giftify_shared::ledger::Movement::adjustment(
                TransactionId::generate(),
                owner.id.clone(),
                giftify_shared::Paise::new(-500),
                "rounding".into(),
                crate::support::MAX_BALANCE,
                now(),
            )?,
            idempotency: None,
        })
        .await?;
    let stuck = place(ports, &owner.id, &[(&entry, 1)]).await?;
    ports
        .orders
        .refund_in_full(&Cancellation {
            order_id: stuck.id.clone(),
            user_id: owner.id.clone(),
            closing: Closing::GiveUp {
                reason: giftify_shared::order::RefundReason::given("stuck")?,
            },
            refund_transaction_id: TransactionId::generate(),
            idempotency: None,
            now: now(),
        })
        .await?;
    let expiry = crate::support::expiry(ports, today).await?;
    ensure!(ports.gift_cards.expire_cards(&expiry).await? == 1);
    ensure!(
        ports.gift_cards.card(&expiring.id).await?.map(|c| c.status)
            == Some(giftify_shared::vault::GiftCardStatus::Expired)
    );

    let report = figures(ports).await?;
    let t = &report.totals;
    let balances = ports.wallets.balance(&owner.id).await?.get()
        + ports.wallets.balance(&friend.id).await?.get();
    // Of the four cards, one ACTIVE card is left: the third.
    let active = plan.cards[2].denomination * 100;
    let closing = report.closing().expect("a day");
    ensure!(
        (closing.balances.get(), closing.giftify_cards.get()) == (balances, active),
        "owed {closing:?}, the stores say balances {balances} and cards {active}"
    );
    ensure!(t.adjustments == -500);
    ensure!(t.redeemed == redeemed.denomination * 100);
    ensure!(
        t.refunds == returned.purchase_price.get() + stuck.paid_amount.get(),
        "refunds {}",
        t.refunds
    );
    ensure!(t.reached(OrderStatus::Refunded) == 1 && t.reached(OrderStatus::Fulfilled) == 1);
    ensure!(
        (t.requested_units, t.fulfilled_units) == (4, 4),
        "a give-up counts no units"
    );
    ensure!(
        t.latency_counts().iter().sum::<i64>() == 1,
        "one fulfillment timed"
    );
    Ok(())
}
