//! Sandbox outcomes (`metadata.sandbox`): refused without `GIFTIFY_SANDBOX=true`, and each one
//! taking its branch end to end with it — money, status, cards and events included.

use crate::invariants::{assert_conserved, stock_by_variant};
use crate::support::{Backend, TestApp, TestUser};
use serde_json::{Value, json};
use std::sync::Arc;

async fn create(app: &TestApp, user: &TestUser, quantity: u32, outcome: &str) -> (String, Value) {
    let (variant, _, _) = app.some_variant().await;
    let created = app
        .post(
            "/orders/create",
            Some(&user.token),
            json!({
                "items": [{"variantId": variant, "quantity": quantity}],
                "metadata": {"sandbox": outcome},
            }),
        )
        .await;
    assert_eq!(created.status, 202, "{}", created.body);
    let id = created.data()["orderId"].as_str().unwrap().to_string();
    (id, created.body)
}

fn event_of<'a>(events: &'a [Value], order_id: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["orderId"] == order_id)
        .unwrap_or_else(|| panic!("no event of {order_id}"))
}

async fn sandbox_outcomes_are_refused_without_the_flag(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("no-sandbox", 1_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    let refused = app
        .post(
            "/orders/create",
            Some(&user.token),
            json!({
                "items": [{"variantId": variant, "quantity": 1}],
                "metadata": {"sandbox": "refund"},
            }),
        )
        .await;
    refused.assert_error(400, "VALIDATION_ERROR");
    assert_eq!(
        refused.body["error"]["details"]["field"],
        "metadata.sandbox"
    );
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GIFTIFY_SANDBOX"),
        "{}",
        refused.body
    );
    assert_eq!(app.balance(&user).await, 1_000_000, "nothing was charged");
}

async fn each_sandbox_outcome_takes_its_branch_end_to_end(backend: Backend) {
    let app = Arc::new(TestApp::spawn_with(backend, |config| config.sandbox = true).await);
    let user = app.funded_user("sandbox", 5_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let initial = stock_by_variant(app.as_ref()).await;

    for (metadata, quantity) in [
        (json!({"sandbox": "explode"}), 1),
        (json!({"sandbox": "partial"}), 1),
    ] {
        let refused = app
            .post(
                "/orders/create",
                Some(&user.token),
                json!({"items": [{"variantId": variant, "quantity": quantity}], "metadata": metadata}),
            )
            .await;
        refused.assert_error(400, "VALIDATION_ERROR");
        assert_eq!(
            refused.body["error"]["details"]["field"],
            "metadata.sandbox"
        );
    }

    let (partial, _) = create(&app, &user, 3, "partial").await;
    let (refund, _) = create(&app, &user, 2, "refund").await;
    assert_eq!(app.drain_queue().await, 2);
    let partial_order = app.order(&user, &partial).await;
    let partial_order = partial_order.data();
    assert_eq!(partial_order["status"], "PARTIALLY_FULFILLED");
    assert_eq!(partial_order["giftCards"].as_array().unwrap().len(), 2);
    assert_eq!(partial_order["refundAmount"], price);
    let refund_order = app.order(&user, &refund).await;
    assert_eq!(refund_order.data()["status"], "REFUNDED");
    assert_eq!(refund_order.data()["refundAmount"], 2 * price);
    assert_eq!(refund_order.data()["giftCards"], json!([]));

    let (dead, _) = create(&app, &user, 1, "dead-letter").await;
    assert_eq!(
        app.drain_queue().await,
        0,
        "the first attempt fails for good"
    );
    let letters = app.giftify().dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "straight to the dead-letter queue");
    assert_eq!(
        letters[0]
            .order()
            .expect("an order message")
            .order_id
            .as_str(),
        dead
    );
    assert_eq!(
        app.order(&user, &dead).await.data()["status"],
        "PROCESSING",
        "its money is held while the operator looks"
    );
    let redriven = app
        .giftify()
        .redrive(&giftify_shared::audit::Actor::Operator, 10, false, |_| {})
        .await
        .unwrap();
    assert_eq!(redriven.moved.len(), 1);
    assert_eq!(app.drain_queue().await, 1);
    assert_eq!(app.order(&user, &dead).await.data()["status"], "FULFILLED");

    let (slow, _) = create(&app, &user, 1, "slow").await;
    let draining = {
        let app = app.clone();
        tokio::spawn(async move { app.drain_queue().await })
    };
    let mut seen_processing = false;
    for _ in 0..100 {
        let status = app.order(&user, &slow).await.data()["status"].clone();
        if status == "PROCESSING" {
            seen_processing = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seen_processing, "a slow order is held PROCESSING");
    assert_eq!(draining.await.unwrap(), 1);
    assert_eq!(app.order(&user, &slow).await.data()["status"], "FULFILLED");

    let events = app.events().await;
    for (order, event_type) in [
        (&partial, "order.partially_fulfilled"),
        (&refund, "order.refunded"),
        (&dead, "order.fulfilled"),
        (&slow, "order.fulfilled"),
    ] {
        let event = event_of(&events, order);
        assert_eq!(event["eventType"], event_type);
        assert!(event["metadata"]["sandbox"].is_string(), "{event}");
    }
    assert_conserved(app.as_ref(), &[user], &initial).await;
}

crate::on_both_backends!(
    sandbox_outcomes_are_refused_without_the_flag,
    each_sandbox_outcome_takes_its_branch_end_to_end,
);
