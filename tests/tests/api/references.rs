//! The client's labels on an order: `clientReference` (unique per user, answers its first
//! order) and `metadata`, end to end — in the answers, the lookup, the events, and under
//! concurrent creates.

use crate::support::{Backend, TestApp, TestUser};
use axum::http::Method;
use serde_json::{Value, json};
use std::sync::Arc;

async fn create(app: &TestApp, user: &TestUser, body: Value) -> crate::support::TestResponse {
    app.post("/orders/create", Some(&user.token), body).await
}

async fn a_client_reference_answers_its_first_order_and_finds_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("ref", 1_000_000).await;
    let stranger = app.funded_user("ref-other", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let body = json!({
        "items": [{"variantId": variant, "quantity": 2}],
        "clientReference": "po-2026/0042",
        "metadata": {"campaign": "diwali", "costCentre": "₹ marketing"},
    });

    let first = create(&app, &user, body.clone()).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let order_id = first.data()["orderId"].as_str().unwrap().to_string();
    assert_eq!(first.data()["clientReference"], "po-2026/0042");
    assert_eq!(first.data()["metadata"]["campaign"], "diwali");

    let again = create(&app, &user, body.clone()).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.data()["orderId"], order_id.as_str());
    assert_eq!(
        again.header("location"),
        Some(format!("/orders/{order_id}").as_str())
    );
    assert_eq!(app.balance(&user).await, 1_000_000 - 2 * price, "paid once");

    let other_items = create(
        &app,
        &user,
        json!({
            "items": [{"variantId": variant, "quantity": 1}],
            "clientReference": "po-2026/0042",
            "metadata": {"campaign": "diwali", "costCentre": "₹ marketing"},
        }),
    )
    .await;
    other_items.assert_error(422, "CLIENT_REFERENCE_REUSED");
    assert_eq!(
        other_items.body["error"]["details"]["field"],
        "clientReference"
    );
    let other_metadata = create(
        &app,
        &user,
        json!({
            "items": [{"variantId": variant, "quantity": 2}],
            "clientReference": "po-2026/0042",
        }),
    )
    .await;
    other_metadata.assert_error(422, "CLIENT_REFERENCE_REUSED");

    let found = app
        .get("/orders?clientReference=po-2026/0042", Some(&user.token))
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    let orders = found.data()["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["orderId"], order_id.as_str());
    assert_eq!(orders[0]["clientReference"], "po-2026/0042");
    assert_eq!(found.data()["pagination"]["total"], 1);
    for (who, path) in [
        (&user, "/orders?clientReference=po-unknown"),
        (&stranger, "/orders?clientReference=po-2026/0042"),
        (
            &user,
            "/orders?clientReference=po-2026/0042&status=CANCELLED",
        ),
    ] {
        let none = app.get(path, Some(&who.token)).await;
        assert_eq!(none.status, 200, "{}", none.body);
        assert_eq!(none.data()["orders"], json!([]), "{path}");
        assert_eq!(none.data()["pagination"]["total"], 0);
    }

    assert_eq!(app.drain_queue().await, 1);
    let detail = app.order(&user, &order_id).await;
    assert_eq!(detail.data()["status"], "FULFILLED");
    assert_eq!(detail.data()["clientReference"], "po-2026/0042");
    assert_eq!(detail.data()["metadata"]["costCentre"], "₹ marketing");
    let final_again = create(&app, &user, body).await;
    assert_eq!(final_again.status, 200);
    assert_eq!(
        final_again.data()["status"],
        "FULFILLED",
        "a found order answers with its status now"
    );

    let events = app.events().await;
    let event = events
        .iter()
        .find(|e| e["orderId"] == order_id.as_str())
        .expect("the order's event");
    assert_eq!(event["clientReference"], "po-2026/0042");
    assert_eq!(
        event["metadata"],
        json!({"campaign": "diwali", "costCentre": "₹ marketing"})
    );
}

async fn a_repeated_cart_checkout_with_its_reference_answers_the_first_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("ref-cart", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let added = app
        .put(
            "/cart/manage",
            Some(&user.token),
            json!({"variantId": variant, "quantity": 1}),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let body = json!({"clientReference": "cart-1"});

    let first = create(&app, &user, body.clone()).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(app.drain_queue().await, 1);
    let again = create(&app, &user, body).await;
    assert_eq!(
        again.status, 200,
        "answered although the cart is empty now: {}",
        again.body
    );
    assert_eq!(again.data()["orderId"], first.data()["orderId"]);
    let as_items = create(
        &app,
        &user,
        json!({"items": [{"variantId": variant, "quantity": 1}], "clientReference": "cart-1"}),
    )
    .await;
    as_items.assert_error(422, "CLIENT_REFERENCE_REUSED");
    assert_eq!(app.balance(&user).await, 1_000_000 - price);
}

async fn an_idempotency_key_and_a_reference_agree_on_one_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("ref-key", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let body = json!({"items": [{"variantId": variant, "quantity": 1}], "clientReference": "k-1"});
    let keyed = |key: &'static str| {
        let (app, user, body) = (&app, &user, body.clone());
        async move {
            app.call(
                Method::POST,
                "/orders/create",
                Some(&user.token),
                Some(body),
                &[("idempotency-key", key)],
            )
            .await
        }
    };

    let first = keyed("key-a").await;
    assert_eq!(first.status, 202, "{}", first.body);
    let replay = keyed("key-a").await;
    assert_eq!(replay.status, 202, "the key replays its first answer");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let other_key = keyed("key-b").await;
    assert_eq!(other_key.status, 200, "the reference finds the order");
    assert_eq!(other_key.data()["orderId"], first.data()["orderId"]);
    let other_key_again = keyed("key-b").await;
    assert_eq!(
        other_key_again.status, 200,
        "the key found the order by reference and committed nothing, so it is free again: {}",
        other_key_again.body
    );
    assert_eq!(app.balance(&user).await, 1_000_000 - price);
}

async fn twenty_concurrent_creates_with_one_reference_place_one_order(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let user = app.funded_user("ref-race", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let body =
        json!({"items": [{"variantId": variant, "quantity": 1}], "clientReference": "race-1"});

    let creates: Vec<_> = (0..20)
        .map(|_| {
            let (app, user, body) = (app.clone(), user.clone(), body.clone());
            tokio::spawn(async move {
                let answer = create(&app, &user, body).await;
                (answer.status.as_u16(), answer.body)
            })
        })
        .collect();
    let (mut accepted, mut found, mut ids) = (0, 0, std::collections::BTreeSet::new());
    for handle in creates {
        let (status, body) = handle.await.unwrap();
        match status {
            202 => accepted += 1,
            200 => found += 1,
            other => panic!("unexpected {other}: {body}"),
        }
        ids.insert(body["data"]["orderId"].as_str().unwrap().to_string());
    }
    assert_eq!((accepted, found), (1, 19));
    assert_eq!(ids.len(), 1, "every answer names the same order");
    assert_eq!(app.balance(&user).await, 1_000_000 - price, "paid once");
    let listed = app.get("/orders", Some(&user.token)).await;
    assert_eq!(listed.data()["pagination"]["total"], 1);
}

/// Losers of a race can be refused before their placement reaches the reference — the cart is
/// locked by the winner, the balance spent by it — and must still answer the winner's order.
async fn racing_creates_on_a_cart_or_a_thin_wallet_answer_the_one_order(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let (variant, price, _) = app.some_variant().await;
    let thin = app.funded_user("ref-thin", price).await;
    let carted = app.funded_user("ref-carted", 1_000_000).await;
    let added = app
        .put(
            "/cart/manage",
            Some(&carted.token),
            json!({"variantId": variant, "quantity": 1}),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);

    for (user, body) in [
        (
            &thin,
            json!({"items": [{"variantId": variant, "quantity": 1}], "clientReference": "thin-1"}),
        ),
        (&carted, json!({"clientReference": "cart-race"})),
    ] {
        let creates: Vec<_> = (0..10)
            .map(|_| {
                let (app, user, body) = (app.clone(), user.clone(), body.clone());
                tokio::spawn(async move {
                    let answer = create(&app, &user, body).await;
                    (answer.status.as_u16(), answer.body)
                })
            })
            .collect();
        let (mut statuses, mut ids) = (Vec::new(), std::collections::BTreeSet::new());
        for handle in creates {
            let (status, body) = handle.await.unwrap();
            assert!(matches!(status, 200 | 202), "{status}: {body}");
            statuses.push(status);
            ids.insert(body["data"]["orderId"].as_str().unwrap().to_string());
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 202).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(ids.len(), 1, "every answer names the one order");
    }
    assert_eq!(app.balance(&thin).await, 0);
    assert_eq!(app.balance(&carted).await, 1_000_000 - price);
}

async fn bad_references_and_metadata_are_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("ref-bad", 1_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    let items = json!([{"variantId": variant, "quantity": 1}]);
    let too_many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (
            json!({"items": items, "clientReference": ""}),
            "clientReference",
        ),
        (
            json!({"items": items, "clientReference": "has space"}),
            "clientReference",
        ),
        (
            json!({"items": items, "clientReference": "r".repeat(101)}),
            "clientReference",
        ),
        (json!({"items": items, "metadata": too_many}), "metadata"),
        (
            json!({"items": items, "metadata": {"bad key": "v"}}),
            "metadata",
        ),
        (
            json!({"items": items, "metadata": {"k".repeat(41): "v"}}),
            "metadata",
        ),
        (
            json!({"items": items, "metadata": {"k": "v".repeat(501)}}),
            "metadata.k",
        ),
        (
            json!({"items": items, "metadata": {"k": "a\u{0}b"}}),
            "metadata.k",
        ),
    ];
    for (body, field) in cases {
        let refused = create(&app, &user, body.clone()).await;
        refused.assert_error(400, "VALIDATION_ERROR");
        assert_eq!(refused.body["error"]["details"]["field"], field, "{body}");
    }
    for body in [
        json!({"items": items, "metadata": {"k": 1}}),
        json!({"items": items, "metadata": ["k", "v"]}),
        json!({"items": items, "clientReference": 7}),
    ] {
        create(&app, &user, body)
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    app.get("/orders?clientReference=has%20space", Some(&user.token))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    assert_eq!(app.balance(&user).await, 1_000_000, "nothing was placed");
}

crate::on_both_backends!(
    a_client_reference_answers_its_first_order_and_finds_it,
    a_repeated_cart_checkout_with_its_reference_answers_the_first_order,
    an_idempotency_key_and_a_reference_agree_on_one_order,
    twenty_concurrent_creates_with_one_reference_place_one_order,
    racing_creates_on_a_cart_or_a_thin_wallet_answer_the_one_order,
    bad_references_and_metadata_are_400,
);
