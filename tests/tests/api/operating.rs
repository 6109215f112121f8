//! What operators do without a shell: dead letters listed, redriven and refunded over the API,
//! and orders stuck past their deadline refunded by the reconciler — exactly once, even while a
//! fulfillment races it.

use crate::invariants::{assert_conserved, stock_by_variant};
use crate::support::{Backend, TestApp, TestUser};
use serde_json::json;

/// Places an order of one unit of `variant` and returns its id.
async fn place(app: &TestApp, user: &TestUser, variant: &str) -> String {
    let created = app
        .order_items(user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    assert_eq!(created.status, 202, "{:?}", created.body);
    created.data()["orderId"]
        .as_str()
        .expect("orderId")
        .to_string()
}

/// Receives and releases every queued message until the queue has dead-lettered them all (max
/// receives is 3 in tests), as a worker whose every attempt fails would. One user's messages
/// are one FIFO group, delivered one at a time.
async fn dead_letter_everything(app: &TestApp) {
    for _ in 0..20 {
        let received = app.receive().await;
        if received.is_empty() {
            return;
        }
        for delivery in received {
            app.release(&delivery, "brand API down").await;
        }
    }
    panic!("the queue kept delivering after 20 rounds of failures");
}

async fn an_admin_lists_redrives_and_refunds_dead_letters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let initial = stock_by_variant(&app).await;
    let user = app.funded_user("dead", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let retried = place(&app, &user, &variant).await;
    let given_up = place(&app, &user, &variant).await;
    dead_letter_everything(&app).await;

    app.get("/admin/dead-letters", Some(&user.token))
        .await
        .assert_error(403, "FORBIDDEN");
    app.get("/admin/dead-letters?limit=0", Some(&app.admin_token))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let listed = app.get("/admin/dead-letters", Some(&app.admin_token)).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let letters = listed.data()["deadLetters"]
        .as_array()
        .expect("letters")
        .clone();
    assert_eq!(letters.len(), 2, "{letters:?}");
    let mut orders: Vec<&str> = letters
        .iter()
        .map(|l| l["orderId"].as_str().expect("orderId"))
        .collect();
    orders.sort_unstable();
    let mut expected = vec![retried.as_str(), given_up.as_str()];
    expected.sort_unstable();
    assert_eq!(orders, expected);
    for letter in &letters {
        assert_eq!(letter["userId"], user.id.as_str());
        assert_eq!(letter["orderStatus"], "PENDING");
        assert_eq!(letter["paidAmount"], price);
        assert_eq!(letter["lastError"], "brand API down");
        assert!(letter["receiveCount"].as_u64().expect("receives") >= 3);
        assert!(letter["deadSince"].is_string(), "{letter}");
    }

    let redriven = app
        .post(
            &format!("/admin/dead-letters/{retried}/redrive"),
            Some(&app.admin_token),
            json!({}),
        )
        .await;
    assert_eq!(redriven.status, 202, "{:?}", redriven.body);
    assert_eq!(redriven.data()["orderId"], retried.as_str());
    app.post(
        &format!("/admin/dead-letters/{retried}/redrive"),
        Some(&app.admin_token),
        json!({}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.drain_queue().await;
    assert_eq!(
        app.order(&user, &retried).await.data()["status"],
        "FULFILLED"
    );

    let refund = |order: &str| format!("/admin/dead-letters/{order}/refund");
    app.post(
        &refund(&given_up),
        Some(&app.admin_token),
        json!({"reason": "  "}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        &refund("not-an-order"),
        Some(&app.admin_token),
        json!({"reason": "x"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        &refund("order_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        Some(&app.admin_token),
        json!({"reason": "x"}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.post(
        &refund(&given_up),
        Some(&user.token),
        json!({"reason": "mine"}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    let reason = "the brand cannot issue this card today";
    let refunded = app
        .post(
            &refund(&given_up),
            Some(&app.admin_token),
            json!({"reason": reason}),
        )
        .await;
    assert_eq!(refunded.status, 200, "{:?}", refunded.body);
    assert_eq!(refunded.data()["status"], "REFUNDED");
    assert_eq!(refunded.data()["refundAmount"], price);
    assert_eq!(refunded.data()["refundReason"], reason);
    assert_eq!(refunded.data()["removedDeadLetters"], 1);
    let seen = app.order(&user, &given_up).await;
    assert_eq!(seen.data()["status"], "REFUNDED");
    assert_eq!(seen.data()["refundAmount"], price);
    assert_eq!(seen.data()["fulfillmentDetails"]["refundReason"], reason);
    assert!(
        seen.data()["giftCards"]
            .as_array()
            .expect("cards")
            .is_empty()
    );
    let conflict = app
        .post(
            &refund(&retried),
            Some(&app.admin_token),
            json!({"reason": reason}),
        )
        .await;
    conflict.assert_error(409, "ORDER_ALREADY_FINAL");
    assert_eq!(conflict.body["error"]["details"]["status"], "FULFILLED");

    let empty = app.get("/admin/dead-letters", Some(&app.admin_token)).await;
    assert_eq!(empty.data()["deadLetters"], json!([]));
    let events = app.events().await;
    let refunds: Vec<_> = events
        .iter()
        .filter(|e| e["orderId"] == given_up.as_str())
        .collect();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["eventType"], "order.refunded");
    assert_eq!(refunds[0]["refundReason"], reason);
    assert_eq!(app.balance(&user).await, 1_000_000 - price);
    assert_conserved(&app, &[user], &initial).await;
}

async fn the_reconciler_refunds_orders_stuck_past_their_deadline_exactly_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.stuck_order_refund_after = std::time::Duration::ZERO;
    })
    .await;
    let initial = stock_by_variant(&app).await;
    let user = app.funded_user("stuck", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let pending = place(&app, &user, &variant).await;
    let processing = place(&app, &user, &variant).await;
    let giftify = app.giftify();
    giftify
        .ports
        .orders
        .start_processing(&processing.parse().expect("id"), chrono::Utc::now())
        .await
        .expect("started");
    // Past the deadline of zero: created strictly before the reconciler's now.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    let report = giftify.reconcile().await.expect("reconcile");
    assert_eq!(report.refunded, 2, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(
        giftify.reconcile().await.expect("again").refunded,
        0,
        "once"
    );
    for order in [&pending, &processing] {
        let seen = app.order(&user, order).await;
        assert_eq!(seen.data()["status"], "REFUNDED");
        assert_eq!(seen.data()["refundAmount"], price);
        let reason = seen.data()["fulfillmentDetails"]["refundReason"]
            .as_str()
            .expect("a reason")
            .to_string();
        assert!(reason.contains("refunded automatically"), "{reason}");
    }
    // Their messages still arrive; the worker finds the orders final and issues nothing.
    app.drain_queue().await;
    for order in [&pending, &processing] {
        let seen = app.order(&user, order).await;
        assert_eq!(seen.data()["status"], "REFUNDED");
        assert!(
            seen.data()["giftCards"]
                .as_array()
                .expect("cards")
                .is_empty()
        );
    }
    let refunded_events = app
        .events()
        .await
        .into_iter()
        .filter(|e| e["eventType"] == "order.refunded")
        .count();
    assert_eq!(refunded_events, 2);
    assert_eq!(app.balance(&user).await, 1_000_000);
    assert_conserved(&app, &[user], &initial).await;
}

/// The reconciler's refund and the worker's fulfillment of one order, started together, again
/// and again: each order ends either fulfilled (card issued, money kept, stock taken) or
/// refunded (nothing issued, all money back), never both and never neither.
async fn a_stuck_order_refund_racing_its_fulfillment_ends_exactly_one_way(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.stuck_order_refund_after = std::time::Duration::ZERO;
    })
    .await;
    let initial = stock_by_variant(&app).await;
    let (variant, price, _) = app.some_variant().await;
    let rounds = match backend {
        Backend::Embedded => 40,
        Backend::Aws => 12,
    };
    let user = app.funded_user("race", price * rounds).await;
    let (mut fulfilled, mut refunded) = (0, 0);
    for round in 0..rounds {
        let order = place(&app, &user, &variant).await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        // The reconciler starts a little later each round, so it meets the fulfillment at every
        // step: before the start, between the start and the commit, after the commit.
        let lag = std::time::Duration::from_micros(100 * u64::try_from(round % 10).expect("lag"));
        let reconcile = async {
            tokio::time::sleep(lag).await;
            app.giftify().reconcile().await
        };
        let (_, reconciled) = tokio::join!(app.drain_queue(), reconcile);
        assert_eq!(reconciled.expect("reconcile").failed, 0);
        let seen = app.order(&user, &order).await;
        let cards = seen.data()["giftCards"].as_array().expect("cards").len();
        match seen.data()["status"].as_str().expect("status") {
            "FULFILLED" => {
                assert_eq!(cards, 1);
                assert_eq!(seen.data()["refundAmount"], 0);
                fulfilled += 1;
            }
            "REFUNDED" => {
                assert_eq!(cards, 0);
                assert_eq!(seen.data()["refundAmount"], price);
                refunded += 1;
            }
            other => panic!("order {order} ended {other}"),
        }
    }
    println!("{backend:?}: {fulfilled} fulfilled, {refunded} refunded of {rounds}");
    assert_eq!(fulfilled + refunded, rounds);
    assert_eq!(app.balance(&user).await, price * (rounds - fulfilled));
    assert_conserved(&app, &[user], &initial).await;
}

crate::on_both_backends!(
    an_admin_lists_redrives_and_refunds_dead_letters,
    the_reconciler_refunds_orders_stuck_past_their_deadline_exactly_once,
    a_stuck_order_refund_racing_its_fulfillment_ends_exactly_one_way,
);
