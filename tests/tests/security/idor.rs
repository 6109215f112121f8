//! Insecure direct object references: every endpoint that takes an id, called by another
//! user with the victim's ids (and mixes of the attacker's and the victim's), must answer
//! exactly like an id that does not exist — 404, same body — and change nothing.

use crate::support::{Backend, TestApp, TestResponse};
use crate::{Attacks, user_with_cards};
use axum::http::Method;
use serde_json::{Value, json};

/// The error part of a 404, without its timestamp, for comparing two refusals.
fn refusal(response: &TestResponse) -> Value {
    assert_eq!(response.status, 404, "{}", response.body);
    response.body["error"].clone()
}

async fn another_users_orders_cards_carts_and_idempotency_keys_are_out_of_reach(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut attacks = Attacks::new("IDOR", backend);
    let (victim, fulfilled, victim_cards) = user_with_cards(&app, "victim").await;
    let (attacker, own_order, own_cards) = user_with_cards(&app, "attacker").await;
    let (variant, _, _) = app.some_variant().await;

    // A PENDING order of the victim (no worker runs until the end), and a cart line.
    let pending = app
        .order_items(&victim, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    assert_eq!(pending.status, 202, "{}", pending.body);
    let pending = pending.data()["orderId"]
        .as_str()
        .expect("orderId")
        .to_string();
    let cart = app
        .put(
            "/cart/manage",
            Some(&victim.token),
            json!({"variantId": variant, "quantity": 2}),
        )
        .await;
    assert_eq!(cart.status, 200, "{}", cart.body);
    let victim_balance = app.balance(&victim).await;
    let victim_cart = app.get("/cart", Some(&victim.token)).await.data().clone();

    let unknown_order = format!("order_{}", ulid::Ulid::new());
    let unknown_card = format!("gc_{}", ulid::Ulid::new());
    let nothing = refusal(&app.order(&attacker, &unknown_order).await);

    // Order detail and cancel with the victim's order ids.
    for order in [&fulfilled, &pending] {
        attacks.tried();
        assert_eq!(refusal(&app.order(&attacker, order).await), nothing);
        attacks.tried();
        let cancel = app
            .call(
                Method::POST,
                &format!("/orders/{order}/cancel"),
                Some(&attacker.token),
                None,
                &[],
            )
            .await;
        assert_eq!(refusal(&cancel)["code"], "NOT_FOUND");
    }

    // Reveal with every mix of the victim's and the attacker's order and card ids.
    let reveal = |order: &str, card: &str| format!("/orders/{order}/gift-cards/{card}/reveal");
    let unknown_card_refusal = refusal(
        &app.call(
            Method::POST,
            &reveal(&own_order, &unknown_card),
            Some(&attacker.token),
            None,
            &[],
        )
        .await,
    );
    for (order, card) in [
        (fulfilled.as_str(), victim_cards[0].as_str()),
        (own_order.as_str(), victim_cards[0].as_str()),
        (own_order.as_str(), victim_cards[1].as_str()),
        (fulfilled.as_str(), own_cards[0].as_str()),
        (pending.as_str(), victim_cards[0].as_str()),
        (unknown_order.as_str(), victim_cards[0].as_str()),
    ] {
        attacks.tried();
        let response = app
            .call(
                Method::POST,
                &reveal(order, card),
                Some(&attacker.token),
                None,
                &[],
            )
            .await;
        assert_eq!(refusal(&response), unknown_card_refusal, "{order} {card}");
    }
    // The owner cannot reveal their own card through someone else's order either.
    attacks.tried();
    let crossed = app
        .call(
            Method::POST,
            &reveal(&own_order, &victim_cards[0]),
            Some(&victim.token),
            None,
            &[],
        )
        .await;
    assert_eq!(refusal(&crossed)["code"], "NOT_FOUND");

    // Lists show only the caller's own orders.
    attacks.tried();
    let listed = app.get("/orders?limit=100", Some(&attacker.token)).await;
    let ids: Vec<&str> = listed.data()["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["orderId"].as_str().expect("orderId"))
        .collect();
    assert_eq!(ids, vec![own_order.as_str()]);
    attacks.tried();
    let filtered = app
        .get("/orders?status=PENDING&limit=100", Some(&attacker.token))
        .await;
    assert_eq!(filtered.data()["pagination"]["total"], 0);

    // Cart edits name a variant, never a cart: the attacker edits only their own cart.
    attacks.tried();
    let removed = app
        .put(
            "/cart/manage",
            Some(&attacker.token),
            json!({"variantId": variant, "quantity": 0}),
        )
        .await;
    assert!(
        removed.status.is_success() || removed.status == 404,
        "{}",
        removed.body
    );
    attacks.tried();
    app.call(
        Method::DELETE,
        "/cart/clear",
        Some(&attacker.token),
        None,
        &[],
    )
    .await;
    assert_eq!(
        app.get("/cart", Some(&victim.token)).await.data(),
        &victim_cart
    );

    // Idempotency keys are per user: the attacker reusing the victim's key gets their own
    // fresh outcome, never a replay of the victim's.
    let key = "shared-key-1";
    let first = app
        .call(
            Method::POST,
            "/wallet/topup",
            Some(&victim.token),
            Some(json!({"amount": 1234})),
            &[("idempotency-key", key)],
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    attacks.tried();
    let attackers = app
        .call(
            Method::POST,
            "/wallet/topup",
            Some(&attacker.token),
            Some(json!({"amount": 1234})),
            &[("idempotency-key", key)],
        )
        .await;
    assert_eq!(attackers.status, 200, "{}", attackers.body);
    assert!(attackers.header("idempotent-replayed").is_none());
    assert_ne!(
        attackers.data()["transactionId"],
        first.data()["transactionId"]
    );
    // The victim's key on the victim's order, sent by the attacker: the attacker's own fresh
    // key, and the victim's order is as unknown to it as any other.
    let victims_key = "victim-only-key";
    let victim_used = app
        .call(
            Method::POST,
            "/wallet/topup",
            Some(&victim.token),
            Some(json!({"amount": 1000})),
            &[("idempotency-key", victims_key)],
        )
        .await;
    assert_eq!(victim_used.status, 200, "{}", victim_used.body);
    attacks.tried();
    let cancel_with_victims_key = app
        .call(
            Method::POST,
            &format!("/orders/{pending}/cancel"),
            Some(&attacker.token),
            None,
            &[("idempotency-key", victims_key)],
        )
        .await;
    assert_eq!(refusal(&cancel_with_victims_key)["code"], "NOT_FOUND");

    // Nothing of the victim's changed.
    assert_eq!(app.balance(&victim).await, victim_balance + 1234 + 1000);
    assert_eq!(
        app.order(&victim, &pending).await.data()["status"],
        "PENDING"
    );
    assert_eq!(
        app.order(&victim, &fulfilled).await.data()["giftCards"]
            .as_array()
            .expect("cards")
            .len(),
        2
    );
    // Customer-facing bodies never carry the cost price.
    for path in ["/products", "/cart", &format!("/orders/{fulfilled}")] {
        attacks.tried();
        let body = app.get(path, Some(&victim.token)).await.body.to_string();
        assert!(!body.contains("costPrice"), "{path} shows costPrice");
    }
}

crate::on_both_backends!(another_users_orders_cards_carts_and_idempotency_keys_are_out_of_reach);
