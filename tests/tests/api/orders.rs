//! The order flow: create → queue → fulfil → final status → event, and its errors.

use crate::support::{Backend, TestApp};
use axum::http::Method;
use serde_json::json;

async fn an_order_is_accepted_paid_fulfilled_and_its_cards_revealed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("flow", 1_000_000).await;
    let (variant, price, stock) = app.some_variant().await;

    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 2}]))
        .await;
    assert_eq!(created.status, 202, "{}", created.body);
    let data = created.data();
    let order_id = data["orderId"].as_str().unwrap().to_string();
    assert!(order_id.starts_with("order_"));
    assert_eq!(
        created.header("location"),
        Some(format!("/orders/{order_id}").as_str())
    );
    assert_eq!(data["status"], "PENDING");
    assert_eq!(data["totalAmount"], 2 * price);
    assert_eq!(data["items"][0]["quantity"], 2);
    assert_eq!(data["items"][0]["unitPrice"], price);
    assert_eq!(data["items"][0]["totalPrice"], 2 * price);
    assert!(data["createdAt"].is_string());
    assert_eq!(
        app.balance(&user).await,
        1_000_000 - 2 * price,
        "debited at once"
    );

    let pending = app.order(&user, &order_id).await;
    assert_eq!(pending.data()["status"], "PENDING");
    assert_eq!(pending.header("retry-after"), Some("1"));

    let report = app.drain_queue().await;
    assert_eq!(report, 1);
    let done = app.order(&user, &order_id).await;
    assert_eq!(
        done.header("retry-after"),
        None,
        "final orders are not polled"
    );
    let order = done.data();
    assert_eq!(order["status"], "FULFILLED");
    assert_eq!(order["paidAmount"], 2 * price);
    assert_eq!(order["refundAmount"], 0);
    assert_eq!(order["items"][0]["requestedQuantity"], 2);
    assert_eq!(order["items"][0]["fulfilledQuantity"], 2);
    assert_eq!(order["items"][0]["fulfilledPrice"], 2 * price);
    assert_eq!(order["items"][0]["refundedPrice"], 0);
    assert_eq!(order["fulfillmentDetails"]["partialFulfillment"], false);
    assert!(order["fulfillmentDetails"]["attemptedAt"].is_string());
    assert!(order["fulfillmentDetails"]["fulfilledAt"].is_string());
    let cards = order["giftCards"].as_array().unwrap();
    assert_eq!(cards.len(), 2);
    let masked = cards[0]["giftCardNumber"].as_str().unwrap();
    assert!(
        masked.starts_with("****-****-****-") && masked.len() == 19,
        "{masked}"
    );
    assert_eq!(cards[0]["status"], "ACTIVE");
    assert!(cards[0]["expiryDate"].as_str().unwrap().len() == 10);

    let card_id = cards[0]["giftCardId"].as_str().unwrap();
    let revealed = app
        .post(
            &format!("/orders/{order_id}/gift-cards/{card_id}/reveal"),
            Some(&user.token),
            json!({}),
        )
        .await;
    assert_eq!(revealed.status, 200, "{}", revealed.body);
    let number = revealed.data()["giftCardNumber"].as_str().unwrap();
    assert!(number.starts_with("GFY-") && number.len() == 23, "{number}");
    assert!(number.ends_with(&masked[15..]));
    assert!(
        revealed.data()["giftCardPin"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit())
    );
    assert_eq!(revealed.header("cache-control"), Some("no-store"));

    let stock_now = app
        .inventory()
        .await
        .into_iter()
        .find(|v| v["variantId"] == variant.as_str())
        .unwrap();
    assert_eq!(stock_now["stockQuantity"], stock - 2);

    let list = app
        .get(
            "/orders?page=1&limit=10&status=FULFILLED",
            Some(&user.token),
        )
        .await;
    let summary = &list.data()["orders"][0];
    assert_eq!(summary["orderId"], order_id.as_str());
    assert_eq!(summary["itemCount"], 2);
    assert!(summary["fulfilledAt"].is_string());
    assert_eq!(list.data()["pagination"]["total"], 1);
    let none = app.get("/orders?status=CANCELLED", Some(&user.token)).await;
    assert_eq!(none.data()["orders"], json!([]));
}

async fn partial_stock_fulfils_what_it_can_and_refunds_the_rest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("partial", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 4}]))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();
    app.set_stock(&variant, 3).await;
    app.drain_queue().await;

    let order = app.order(&user, &order_id).await;
    let data = order.data();
    assert_eq!(data["status"], "PARTIALLY_FULFILLED");
    assert_eq!(data["refundAmount"], price);
    assert_eq!(data["items"][0]["fulfilledQuantity"], 3);
    assert_eq!(data["items"][0]["refundedPrice"], price);
    assert_eq!(data["fulfillmentDetails"]["partialFulfillment"], true);
    assert_eq!(data["fulfillmentDetails"]["refundProcessed"], true);
    assert_eq!(data["giftCards"].as_array().unwrap().len(), 3);
    assert_eq!(app.balance(&user).await, 1_000_000 - 3 * price);
    let refunds = app
        .get("/wallet/transactions?type=REFUND", Some(&user.token))
        .await;
    assert_eq!(refunds.data()["transactions"][0]["amount"], price);
}

async fn no_stock_at_fulfillment_refunds_everything(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("refund", 1_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 2}]))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();
    app.set_stock(&variant, 0).await;
    app.drain_queue().await;
    let order = app.order(&user, &order_id).await;
    assert_eq!(order.data()["status"], "REFUNDED");
    assert_eq!(order.data()["refundAmount"], order.data()["paidAmount"]);
    assert_eq!(app.balance(&user).await, 1_000_000);
}

async fn order_errors_have_their_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("errors", 10_000).await;
    let (variant, _, _) = app.some_variant().await;

    app.order_items(&user, json!([{"variantId": variant, "quantity": 5}]))
        .await
        .assert_error(422, "INSUFFICIENT_BALANCE");
    assert_eq!(app.balance(&user).await, 10_000, "nothing debited");
    app.order_items(&user, json!([{"variantId": variant, "quantity": 11}]))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.order_items(&user, json!([{"variantId": variant, "quantity": 0}]))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.order_items(
        &user,
        json!([{"variantId": variant, "quantity": 1}, {"variantId": variant, "quantity": 1}]),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.order_items(
        &user,
        json!([{"variantId": "var_01HZZZZZZZZZZZZZZZZZZZZZZZ", "quantity": 1}]),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.order_items(&user, json!([{"variantId": variant, "quantity": -1}]))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.order_items(&user, json!("nope"))
        .await
        .assert_error(400, "VALIDATION_ERROR");

    app.set_stock(&variant, 0).await;
    let rich = app.funded_user("errors-rich", 1_000_000).await;
    app.order_items(&rich, json!([{"variantId": variant, "quantity": 1}]))
        .await
        .assert_error(409, "OUT_OF_STOCK");
    let inactive = app
        .put(
            &format!("/admin/inventory/{variant}"),
            Some(&app.admin_token),
            json!({"isActive": false, "stockQuantity": 5}),
        )
        .await;
    assert_eq!(inactive.status, 200);
    app.order_items(&rich, json!([{"variantId": variant, "quantity": 1}]))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.get(
        "/orders/order_01HZZZZZZZZZZZZZZZZZZZZZZZ",
        Some(&rich.token),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.get("/orders/garbage", Some(&rich.token))
        .await
        .assert_error(400, "VALIDATION_ERROR");
}

async fn more_than_forty_cards_in_one_order_is_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("forty", 10_000_000).await;
    let products = app.get("/products", Some(&user.token)).await;
    let items: Vec<_> = products.data()["products"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["variants"].as_array().unwrap().clone())
        .take(5)
        .zip([10, 10, 10, 10, 1])
        .map(|(v, quantity)| json!({"variantId": v["variantId"], "quantity": quantity}))
        .collect();
    app.order_items(&user, json!(items))
        .await
        .assert_error(400, "VALIDATION_ERROR");
}

async fn a_pending_order_can_be_cancelled_once_for_a_full_refund(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("cancel", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 2}]))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();

    let cancelled = app
        .post(
            &format!("/orders/{order_id}/cancel"),
            Some(&user.token),
            json!({}),
        )
        .await;
    let data = cancelled.data();
    assert_eq!(data["orderId"], order_id.as_str());
    assert_eq!(data["status"], "CANCELLED");
    assert_eq!(data["refundAmount"], 2 * price);
    assert!(data["message"].is_string());
    assert_eq!(app.balance(&user).await, 1_000_000);

    app.post(
        &format!("/orders/{order_id}/cancel"),
        Some(&user.token),
        json!({}),
    )
    .await
    .assert_error(409, "ORDER_NOT_CANCELLABLE");
    // The queued message finds a cancelled order and changes nothing.
    app.drain_queue().await;
    let order = app.order(&user, &order_id).await;
    assert_eq!(order.data()["status"], "CANCELLED");
    assert_eq!(order.data()["giftCards"], json!([]));
    assert_eq!(app.balance(&user).await, 1_000_000);
}

async fn a_fulfilled_order_cannot_be_cancelled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("late-cancel", 1_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();
    app.drain_queue().await;
    app.post(
        &format!("/orders/{order_id}/cancel"),
        Some(&user.token),
        json!({}),
    )
    .await
    .assert_error(409, "ORDER_NOT_CANCELLABLE");
}

async fn another_users_orders_and_cards_are_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.funded_user("owner", 1_000_000).await;
    let thief = app.funded_user("thief", 1_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    let created = app
        .order_items(&owner, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();
    app.drain_queue().await;
    let card_id = app.order(&owner, &order_id).await.data()["giftCards"][0]["giftCardId"]
        .as_str()
        .unwrap()
        .to_string();

    app.order(&thief, &order_id)
        .await
        .assert_error(404, "NOT_FOUND");
    app.post(
        &format!("/orders/{order_id}/cancel"),
        Some(&thief.token),
        json!({}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.post(
        &format!("/orders/{order_id}/gift-cards/{card_id}/reveal"),
        Some(&thief.token),
        json!({}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    // The thief's own order id with the owner's card id is still 404.
    let own = app
        .order_items(&thief, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let own_id = own.data()["orderId"].as_str().unwrap();
    app.post(
        &format!("/orders/{own_id}/gift-cards/{card_id}/reveal"),
        Some(&thief.token),
        json!({}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    assert_eq!(
        app.get("/orders", Some(&thief.token)).await.data()["pagination"]["total"],
        1
    );
}

async fn an_idempotency_key_creates_one_order_and_replays_202(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("idem-order", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let body = json!({"items": [{"variantId": variant, "quantity": 1}]});
    let send = |body: serde_json::Value| {
        app.call(
            Method::POST,
            "/orders/create",
            Some(&user.token),
            Some(body),
            &[("idempotency-key", "order-1")],
        )
    };
    let first = send(body.clone()).await;
    let replay = send(body.clone()).await;
    assert_eq!(first.status, 202);
    assert_eq!(replay.status, 202);
    assert_eq!(first.data()["orderId"], replay.data()["orderId"]);
    assert_eq!(first.header("location"), replay.header("location"));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.balance(&user).await, 1_000_000 - price, "debited once");
    send(json!({"items": [{"variantId": variant, "quantity": 2}]}))
        .await
        .assert_error(422, "IDEMPOTENCY_KEY_REUSED");

    let cancel_path = format!(
        "/orders/{}/cancel",
        first.data()["orderId"].as_str().unwrap()
    );
    let cancel = || {
        app.call(
            Method::POST,
            &cancel_path,
            Some(&user.token),
            None,
            &[("idempotency-key", "cancel-1")],
        )
    };
    let c1 = cancel().await;
    let c2 = cancel().await;
    assert_eq!(c1.status, 200, "{}", c1.body);
    assert_eq!(c1.data(), c2.data());
    assert_eq!(app.balance(&user).await, 1_000_000, "refunded once");
}

async fn events_are_logged_once_per_final_status_without_card_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("events", 1_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    let a = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let b = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let b_id = b.data()["orderId"].as_str().unwrap().to_string();
    app.post(
        &format!("/orders/{b_id}/cancel"),
        Some(&user.token),
        json!({}),
    )
    .await;
    app.drain_queue().await;
    app.drain_queue().await;

    let a_id = a.data()["orderId"].as_str().unwrap().to_string();
    let events = app.events().await;
    let of = |id: &str| {
        events
            .iter()
            .filter(|e| e["orderId"] == id)
            .cloned()
            .collect::<Vec<_>>()
    };
    let a_events = of(&a_id);
    assert_eq!(a_events.len(), 1, "{events:?}");
    assert_eq!(a_events[0]["eventType"], "order.fulfilled");
    assert_eq!(a_events[0]["status"], "FULFILLED");
    assert_eq!(a_events[0]["userId"], user.id.as_str());
    let b_events = of(&b_id);
    assert_eq!(b_events.len(), 1);
    assert_eq!(b_events[0]["eventType"], "order.cancelled");

    let card = app.order(&user, &a_id).await.data()["giftCards"][0]["giftCardId"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = app
        .post(
            &format!("/orders/{a_id}/gift-cards/{card}/reveal"),
            Some(&user.token),
            json!({}),
        )
        .await;
    let number = secret.data()["giftCardNumber"]
        .as_str()
        .unwrap()
        .to_string();
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains(&number) && !all.contains(&number.replace('-', "")));
}

/// Bounds a request that waits, so a broken cap fails the test instead of hanging it.
async fn within_a_minute<T>(request: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(60), request)
        .await
        .expect("a waiting request answers within its cap")
}

async fn prefer_wait_answers_once_the_order_is_final_or_at_the_cap(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.order_wait_max = std::time::Duration::from_secs(5);
    })
    .await;
    let user = app.funded_user("waiter", 1_000_000).await;
    let stranger = app.register("stranger").await;
    let (variant, _, _) = app.some_variant().await;
    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 2}]))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();
    let path = format!("/orders/{order_id}");
    let waiting = |token: &str, prefer: &str| {
        let (path, token, prefer) = (path.clone(), token.to_string(), prefer.to_string());
        let app = &app;
        async move {
            app.call(
                Method::GET,
                &path,
                Some(&token),
                None,
                &[("prefer", &prefer)],
            )
            .await
        }
    };

    // No worker runs: an hour asked for is capped, and the answer is the order as it is.
    let pending = within_a_minute(waiting(&user.token, "wait=3600")).await;
    assert_eq!(pending.status, 200, "{}", pending.body);
    assert_eq!(pending.data()["status"], "PENDING");
    assert_eq!(pending.header("retry-after"), Some("1"));
    let unknown = waiting(&stranger.token, "wait=3600").await;
    unknown.assert_error(404, "NOT_FOUND");
    let ignored = waiting(&user.token, "wait=soon").await;
    assert_eq!(ignored.data()["status"], "PENDING");
    assert_eq!(app.giftify().order_watch.watched(), 0, "no waiter is left");

    // The worker finishes while the client waits: the answer is the final order and its cards.
    let app_ref = &app;
    let (done, handled) = within_a_minute(async {
        tokio::join!(waiting(&user.token, "respond-async, wait=30"), async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            app_ref.drain_queue().await
        })
    })
    .await;
    assert_eq!(handled, 1);
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.data()["status"], "FULFILLED");
    assert_eq!(done.data()["giftCards"].as_array().unwrap().len(), 2);
    assert_eq!(done.header("retry-after"), None);
    assert_eq!(
        done.body["data"],
        app.order(&user, &order_id).await.body["data"]
    );
}

/// A worker in another process cannot wake this one's waiters: the wait reads the order again
/// until it sees it final.
async fn a_wait_sees_an_order_finalised_by_another_process(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("elsewhere", 1_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();
    let here = app.giftify();
    let elsewhere = giftify_shared::Giftify::new(
        here.ports.clone(),
        here.vault.clone(),
        here.clock.clone(),
        here.rules.clone(),
    );
    let path = format!("/orders/{order_id}");
    let (done, handled) = within_a_minute(async {
        tokio::join!(
            app.call(
                Method::GET,
                &path,
                Some(&user.token),
                None,
                &[("prefer", "wait=30")],
            ),
            async {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                giftify_infra::worker::drain(&elsewhere, elsewhere.ports.inbox.as_ref())
                    .await
                    .expect("drain")
                    .handled
            }
        )
    })
    .await;
    assert_eq!(handled, 1);
    assert_eq!(done.data()["status"], "FULFILLED", "{}", done.body);
    assert_eq!(done.data()["giftCards"].as_array().unwrap().len(), 1);
}

crate::on_both_backends!(
    prefer_wait_answers_once_the_order_is_final_or_at_the_cap,
    a_wait_sees_an_order_finalised_by_another_process,
    an_order_is_accepted_paid_fulfilled_and_its_cards_revealed,
    partial_stock_fulfils_what_it_can_and_refunds_the_rest,
    no_stock_at_fulfillment_refunds_everything,
    order_errors_have_their_codes,
    more_than_forty_cards_in_one_order_is_400,
    a_pending_order_can_be_cancelled_once_for_a_full_refund,
    a_fulfilled_order_cannot_be_cancelled,
    another_users_orders_and_cards_are_404,
    an_idempotency_key_creates_one_order_and_replays_202,
    events_are_logged_once_per_final_status_without_card_secrets,
);
