//! Redelivery and crashes: the same message twice, a crash between every pair of fulfillment
//! steps, and a poison message through the dead-letter queue and back.

use crate::invariants::{assert_conserved, stock_by_variant};
use crate::support::{Backend, Stack, TestApp, TestUser};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::events::Event;
use giftify_shared::ids::{OrderId, UserId};
use giftify_shared::order::{
    Cancellation, Fulfillment, Order, OrderMessage, OrderPlacement, OrderStatus, Outbox,
};
use giftify_shared::ports::{EventPublisher, Orders};
use giftify_shared::wallet::{Page, PageRequest};
use giftify_shared::{Error, Giftify, Result};
use serde_json::json;
use std::sync::Arc;

/// Where the simulated process dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Crash {
    BeforeStartProcessing,
    AfterStartProcessing,
    BeforeCompleteFulfillment,
    AfterCompleteFulfillment,
    BeforePublish,
    AfterPublish,
    AfterMarkNotified,
    /// Not a crash: a give-up commits and its answer is lost, so the retry (DynamoDB's, or
    /// the adapter's) finds the order final.
    RefundReplyLost,
}

const ALL_CRASHES: [Crash; 7] = [
    Crash::BeforeStartProcessing,
    Crash::AfterStartProcessing,
    Crash::BeforeCompleteFulfillment,
    Crash::AfterCompleteFulfillment,
    Crash::BeforePublish,
    Crash::AfterPublish,
    Crash::AfterMarkNotified,
];

fn crashed() -> Error {
    Error::Unavailable(anyhow::anyhow!("simulated crash"))
}

/// Delegates to the real orders port and "crashes" (returns an error, as a dead process would
/// never get an answer) at one point.
struct CrashingOrders {
    inner: Arc<dyn Orders>,
    crash: Crash,
}

#[async_trait]
impl Orders for CrashingOrders {
    async fn place_order(&self, placement: &OrderPlacement) -> Result<Outbox> {
        self.inner.place_order(placement).await
    }
    async fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        self.inner.order(id).await
    }
    async fn order_by_reference(
        &self,
        user: &UserId,
        reference: &giftify_shared::labels::ClientReference,
    ) -> Result<Option<Order>> {
        self.inner.order_by_reference(user, reference).await
    }
    async fn orders_of(
        &self,
        user: &UserId,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        self.inner.orders_of(user, status, page).await
    }
    async fn all_orders(
        &self,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        self.inner.all_orders(status, page).await
    }
    async fn start_processing(&self, id: &OrderId, now: DateTime<Utc>) -> Result<Order> {
        if self.crash == Crash::BeforeStartProcessing {
            return Err(crashed());
        }
        let order = self.inner.start_processing(id, now).await?;
        if self.crash == Crash::AfterStartProcessing {
            return Err(crashed());
        }
        Ok(order)
    }
    async fn complete_fulfillment(&self, fulfillment: &Fulfillment) -> Result<Order> {
        if self.crash == Crash::BeforeCompleteFulfillment {
            return Err(crashed());
        }
        let order = self.inner.complete_fulfillment(fulfillment).await?;
        if self.crash == Crash::AfterCompleteFulfillment {
            return Err(crashed());
        }
        Ok(order)
    }
    async fn refund_in_full(&self, cancellation: &Cancellation) -> Result<Order> {
        let committed = self.inner.refund_in_full(cancellation).await;
        if self.crash == Crash::RefundReplyLost {
            committed?;
            return self.inner.refund_in_full(cancellation).await;
        }
        committed
    }
    async fn mark_notified(&self, id: &OrderId, now: DateTime<Utc>) -> Result<()> {
        self.inner.mark_notified(id, now).await?;
        if self.crash == Crash::AfterMarkNotified {
            return Err(crashed());
        }
        Ok(())
    }
    async fn stale_orders(
        &self,
        status: OrderStatus,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Order>> {
        self.inner.stale_orders(status, before, limit).await
    }
    async fn unnotified(&self, limit: u32) -> Result<Vec<Order>> {
        self.inner.unnotified(limit).await
    }
}

struct CrashingPublisher {
    inner: Arc<dyn EventPublisher>,
    crash: Crash,
}

#[async_trait]
impl EventPublisher for CrashingPublisher {
    async fn publish(&self, event: &Event) -> Result<()> {
        if self.crash == Crash::BeforePublish {
            return Err(crashed());
        }
        self.inner.publish(event).await?;
        if self.crash == Crash::AfterPublish {
            return Err(crashed());
        }
        Ok(())
    }
}

fn crashing(giftify: &Giftify, crash: Crash) -> Giftify {
    let mut ports = giftify.ports.clone();
    ports.orders = Arc::new(CrashingOrders {
        inner: giftify.ports.orders.clone(),
        crash,
    });
    ports.events = Arc::new(CrashingPublisher {
        inner: giftify.ports.events.clone(),
        crash,
    });
    Giftify::new(
        ports,
        giftify.vault.clone(),
        giftify.clock.clone(),
        giftify.rules.clone(),
    )
}

/// Where the cards of the order under test come from.
#[derive(Clone, Copy, Debug)]
enum Cards {
    /// Giftify's own, minted at issue.
    Minted,
    /// Brand codes from the variant's pool.
    BrandCodes,
}

/// One partially fulfillable order (4 wanted, 3 in stock) and its user.
async fn partial_order(app: &TestApp) -> (TestUser, String, String) {
    partial_order_of(app, Cards::Minted).await
}

/// One partially fulfillable order (4 wanted, 3 in stock: 3 codes in the pool of a brand
/// variant) and its user.
async fn partial_order_of(app: &TestApp, cards: Cards) -> (TestUser, String, String) {
    let user = app.funded_user("crash", 1_000_000).await;
    let variant = match cards {
        Cards::Minted => app.some_variant().await.0,
        Cards::BrandCodes => {
            let variant = crate::codes::brand_variant(app).await;
            let codes: Vec<_> = (0..3)
                .map(|_| json!({"number": crate::codes::number()}))
                .collect();
            crate::codes::import_json(app, &variant, "THREE", json!(codes)).await;
            variant
        }
    };
    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 4}]))
        .await;
    assert_eq!(created.status, 202, "{}", created.body);
    if let Cards::Minted = cards {
        app.set_stock(&variant, 3).await;
    }
    (
        user,
        created.data()["orderId"].as_str().unwrap().to_string(),
        variant,
    )
}

/// The observable state of one order: what a clean run must produce.
async fn outcome(app: &TestApp, user: &TestUser, order_id: &str) -> serde_json::Value {
    let order = app.order(user, order_id).await;
    let data = order.data();
    json!({
        "status": data["status"],
        "refund": data["refundAmount"],
        "fulfilled": data["items"][0]["fulfilledQuantity"],
        "cards": data["giftCards"].as_array().unwrap().len(),
        "balance": app.balance(user).await,
        // At least once: a redelivered publish may repeat an event, never with a new id.
        "events": app
            .events()
            .await
            .iter()
            .filter(|e| e["orderId"] == order_id)
            .map(|e| e["eventId"].to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
    })
}

async fn handling_the_same_message_twice_changes_nothing_the_second_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, order_id, variant) = partial_order(&app).await;
    let message = OrderMessage {
        order_id: OrderId::parse(&order_id).unwrap(),
        user_id: UserId::parse(&user.id).unwrap(),
    };
    app.giftify().handle_order_message(&message).await.unwrap();
    let once = outcome(&app, &user, &order_id).await;
    let stock_once = stock_by_variant(&app).await[&variant];
    app.giftify().handle_order_message(&message).await.unwrap();
    app.drain_queue().await; // and the original queued copy
    assert_eq!(outcome(&app, &user, &order_id).await, once);
    assert_eq!(stock_by_variant(&app).await[&variant], stock_once);
    assert_eq!(once["status"], "PARTIALLY_FULFILLED");
    assert_eq!(once["events"], 1);
}

async fn a_crash_between_any_two_fulfillment_steps_ends_in_the_state_of_one_clean_run(
    backend: Backend,
) {
    crash_at_every_step(backend, Cards::Minted).await;
}

async fn a_crash_between_any_two_steps_of_a_brand_order_allocates_each_code_once(backend: Backend) {
    crash_at_every_step(backend, Cards::BrandCodes).await;
}

async fn crash_at_every_step(backend: Backend, cards: Cards) {
    // The clean run, for reference.
    let clean_app = TestApp::spawn(backend).await;
    let (clean_user, clean_order, _) = partial_order_of(&clean_app, cards).await;
    clean_app.drain_queue().await;
    let clean = outcome(&clean_app, &clean_user, &clean_order).await;
    assert_eq!(clean["status"], "PARTIALLY_FULFILLED");

    for crash in ALL_CRASHES {
        let app = TestApp::spawn(backend).await;
        let (user, order_id, variant) = partial_order_of(&app, cards).await;
        let initial = stock_by_variant(&app).await;

        // The crashing process takes the message and dies at `crash`.
        let faulty = crashing(app.giftify(), crash);
        let received = app.receive().await;
        assert_eq!(received.len(), 1);
        let result = faulty.handle_order_message(&received[0].message).await;
        assert!(result.is_err(), "{crash:?} must interrupt the handler");
        // Its lease runs out; the message is delivered again to a healthy worker.
        app.release(&received[0], "simulated crash").await;
        assert_eq!(app.drain_queue().await, 1, "{crash:?}");

        assert_eq!(outcome(&app, &user, &order_id).await, clean, "{crash:?}");
        assert_conserved(&app, &[user], &initial).await;
        if let Cards::BrandCodes = cards {
            let batch = &crate::codes::batches(&app, &variant).await[0];
            assert_eq!(
                (&batch["available"], &batch["allocated"]),
                (&json!(0), &json!(3)),
                "{crash:?}: each code allocated once, stock = available codes"
            );
        }
    }
}

async fn a_message_that_keeps_failing_goes_to_the_dead_letter_queue_and_redrive_completes_it_once(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let initial = stock_by_variant(&app).await;
    let user = app.funded_user("poison", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();

    // The backend fails on every delivery (max receives is 3 in tests).
    let faulty = crashing(app.giftify(), Crash::BeforeStartProcessing);
    for _ in 0..3 {
        let received = app.receive().await;
        assert_eq!(received.len(), 1);
        assert!(
            faulty
                .handle_order_message(&received[0].message)
                .await
                .is_err()
        );
        app.release(&received[0], "backend down").await;
    }
    assert!(
        app.receive().await.is_empty(),
        "the fourth receive dead-letters it"
    );
    let dead = app.giftify().dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].order().expect("an order message").order_id.as_str(),
        order_id
    );
    assert_eq!(dead[0].last_error.as_deref(), Some("backend down"));
    if let Stack::Aws { stack, .. } = &app.stack {
        assert_failure_notes_expire_after_the_dead_letter_queue(&stack.stage).await;
    }
    if backend == Backend::Embedded {
        assert_eq!(dead[0].receive_count, 3);
    } else {
        // SQS counts the receive that moved it to the dead-letter queue, approximately.
        assert!(dead[0].receive_count >= 3, "{}", dead[0].receive_count);
    }
    assert_eq!(
        app.order(&user, &order_id).await.data()["status"],
        "PENDING"
    );

    let dry = app
        .giftify()
        .redrive(&giftify_shared::audit::Actor::Operator, 10, true, |_| {})
        .await
        .unwrap();
    assert_eq!(dry.moved.len(), 1);
    assert_eq!(
        app.giftify().dead_letters(10).await.unwrap().len(),
        1,
        "a dry run moves nothing"
    );

    let mut seen = Vec::new();
    let report = app
        .giftify()
        .redrive(
            &giftify_shared::audit::Actor::Operator,
            10,
            false,
            |letter| seen.push(letter.order().expect("an order message").order_id.clone()),
        )
        .await
        .unwrap();
    assert_eq!(report.moved.len(), 1);
    assert_eq!(seen.len(), 1);
    assert!(app.giftify().dead_letters(10).await.unwrap().is_empty());
    app.drain_queue().await;
    // Redriving again (nothing left) and draining again changes nothing.
    app.giftify()
        .redrive(&giftify_shared::audit::Actor::Operator, 10, false, |_| {})
        .await
        .unwrap();
    app.drain_queue().await;

    assert_eq!(
        app.order(&user, &order_id).await.data()["status"],
        "FULFILLED"
    );
    assert_eq!(app.balance(&user).await, 1_000_000 - price);
    assert_conserved(&app, &[user], &initial).await;
}

/// On AWS the reason a message failed is a note in the audit table. Notes must not pile up
/// forever: each expires (TTL `expiresAt`) after the 14 days a message can stay in the
/// dead-letter queue, plus a day.
async fn assert_failure_notes_expire_after_the_dead_letter_queue(stage: &str) {
    let client = aws_sdk_dynamodb::Client::new(&giftify_tests::moto::moto().sdk_config().await);
    let notes = client
        .scan()
        .table_name(giftify_infra::aws::tables::AUDIT.name(Some(stage)))
        .send()
        .await
        .expect("scan the audit table");
    let now = chrono::Utc::now().timestamp();
    let expiries: Vec<i64> = notes
        .items()
        .iter()
        .filter(|note| {
            note.get("auditId")
                .and_then(|a| a.as_s().ok())
                .is_some_and(|a| a == "LAST_FAILURE")
        })
        .map(|note| {
            let expires = note
                .get("expiresAt")
                .expect("a failure note carries expiresAt");
            expires
                .as_n()
                .expect("epoch seconds")
                .parse()
                .expect("a number")
        })
        .collect();
    assert!(!expiries.is_empty(), "the failure was noted");
    for expires in expiries {
        let days = (expires - now) as f64 / 86_400.0;
        assert!((14.9..=15.1).contains(&days), "expires in {days:.2} days");
    }
}

async fn the_reconciler_publishes_events_that_a_crash_left_unsent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("reconcile", 1_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();
    let faulty = crashing(app.giftify(), Crash::BeforePublish);
    let received = app.receive().await;
    assert!(
        faulty
            .handle_order_message(&received[0].message)
            .await
            .is_err()
    );
    assert_eq!(
        app.order(&user, &order_id).await.data()["status"],
        "FULFILLED"
    );
    // The event is recorded in the feed before it is published. On AWS nothing reached the
    // topic; the embedded backend's webhooks follow the feed, so they have it already.
    assert_eq!(
        app.events()
            .await
            .iter()
            .filter(|e| e["orderId"] == order_id.as_str())
            .count(),
        usize::from(backend == Backend::Embedded)
    );

    let report = app.giftify().reconcile().await.unwrap();
    assert_eq!(report.notified, 1);
    assert_eq!(
        app.events()
            .await
            .iter()
            .filter(|e| e["orderId"] == order_id.as_str())
            .count(),
        1
    );
    assert_eq!(
        app.giftify().reconcile().await.unwrap().notified,
        0,
        "sent once"
    );
}

/// A redemption and a return commit whatever happens to their events; a crash before the
/// publish, or between it and the mark, leaves the event to the reconciler, once.
async fn the_reconciler_publishes_card_events_that_a_crash_left_unsent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (variant, _, _) = app.some_variant().await;
    let (number, pin, face) = crate::cards::bought_card(&app, &variant).await;
    let (buyer, order_id, cards) = crate::cards::bought_cards(&app, &variant, 1).await;
    let redeemer = app.register("redeemer").await;
    let card_events = |kind: &'static str| {
        let app = &app;
        async move {
            app.events()
                .await
                .into_iter()
                .filter(|e| e["eventType"] == kind)
                .map(|e| e["eventId"].to_string())
                .collect::<Vec<_>>()
        }
    };

    let redeemed = crashing(app.giftify(), Crash::BeforePublish)
        .redeem_card(&UserId::parse(&redeemer.id).unwrap(), &number, &pin)
        .await
        .expect("the redemption commits without its event");
    let returned = crashing(app.giftify(), Crash::AfterPublish)
        .return_card(
            &UserId::parse(&buyer.id).unwrap(),
            &OrderId::parse(&order_id).unwrap(),
            &giftify_shared::ids::GiftCardId::parse(&cards[0]).unwrap(),
        )
        .await
        .expect("the return commits whatever its event does");
    assert_eq!(app.balance(&redeemer).await, face);
    assert!(redeemed.notified_at.is_none() && returned.notified_at.is_none());
    // Recorded in the feed before the crash: what the embedded webhooks follow already; on
    // AWS nothing reached the topic.
    assert_eq!(
        card_events("gift_card.redeemed").await.len(),
        usize::from(backend == Backend::Embedded)
    );
    assert_eq!(card_events("gift_card.returned").await.len(), 1);

    let report = app.giftify().reconcile().await.unwrap();

    assert_eq!((report.notified, report.failed), (2, 0));
    assert_eq!(card_events("gift_card.redeemed").await.len(), 1);
    // Published again after a crash before its mark: the same event, by its id.
    let returns = card_events("gift_card.returned").await;
    assert_eq!(
        returns
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        1,
        "{returns:?}"
    );
    assert_eq!(
        app.giftify().reconcile().await.unwrap().notified,
        0,
        "sent once"
    );
}

/// An operator's give-up commits and its answer is lost: the retry finds the order final,
/// and the give-up is still answered as done, audited once and announced, with the money
/// back once.
async fn a_give_up_whose_answer_was_lost_is_still_answered_audited_and_announced(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, order_id, _) = partial_order(&app).await;
    let balance_before = app.balance(&user).await;
    let order = OrderId::parse(&order_id).unwrap();
    let lossy = crashing(app.giftify(), Crash::RefundReplyLost);
    let (refunded, _) = lossy
        .refund_unfinished(
            &giftify_shared::audit::Actor::Operator,
            &order,
            giftify_shared::order::RefundReason::given("customer asked, ticket 12").unwrap(),
        )
        .await
        .expect("the give-up is answered as done");
    assert_eq!(refunded.status, OrderStatus::Refunded);
    let data = app.order(&user, &order_id).await.data().clone();
    assert_eq!(data["status"], "REFUNDED");
    assert_eq!(
        app.balance(&user).await,
        balance_before + data["paidAmount"].as_i64().unwrap(),
        "refunded once"
    );
    let log = app
        .get("/admin/audit?limit=100", Some(&app.admin_token))
        .await;
    let refunds = log.data()["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "order.refunded" && e["subject"] == order_id.as_str())
        .count();
    assert_eq!(refunds, 1, "{}", log.body);
    assert!(
        app.events()
            .await
            .iter()
            .any(|e| e["orderId"] == order_id.as_str() && e["eventType"] == "order.refunded"),
        "announced"
    );
}

crate::on_both_backends!(
    a_give_up_whose_answer_was_lost_is_still_answered_audited_and_announced,
    the_reconciler_publishes_card_events_that_a_crash_left_unsent,
    handling_the_same_message_twice_changes_nothing_the_second_time,
    a_crash_between_any_two_fulfillment_steps_ends_in_the_state_of_one_clean_run,
    a_crash_between_any_two_steps_of_a_brand_order_allocates_each_code_once,
    a_message_that_keeps_failing_goes_to_the_dead_letter_queue_and_redrive_completes_it_once,
    the_reconciler_publishes_events_that_a_crash_left_unsent,
);
