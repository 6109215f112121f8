//! The cart: edits, the view, checkout, locking and price changes.

use crate::support::{Backend, TestApp};
use serde_json::json;

async fn cart_edits_add_update_and_remove_lines(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("cart").await;
    let (variant, price, stock) = app.some_variant().await;

    let empty = app.get("/cart", Some(&user.token)).await;
    assert_eq!(empty.data()["items"], json!([]));
    assert_eq!(empty.data()["summary"]["totalItems"], 0);

    let added = app
        .put(
            "/cart/manage",
            Some(&user.token),
            json!({"variantId": variant, "quantity": 2}),
        )
        .await;
    assert_eq!(
        added.data()["cartSummary"],
        json!({"totalItems": 2, "totalAmount": 2 * price})
    );
    let cart = app.get("/cart", Some(&user.token)).await;
    let line = &cart.data()["items"][0];
    assert_eq!(line["variantId"], variant.as_str());
    assert_eq!(line["quantity"], 2);
    assert_eq!(line["unitPrice"], price);
    assert_eq!(line["totalPrice"], 2 * price);
    assert_eq!(line["stockAvailable"], stock);
    assert!(
        line["productName"].is_string()
            && line["variantName"].is_string()
            && line["productId"].is_string()
    );
    assert_eq!(
        cart.data()["summary"]["totalAmountFormatted"]
            .as_str()
            .unwrap()
            .chars()
            .next(),
        Some('₹')
    );

    let updated = app
        .put(
            "/cart/manage",
            Some(&user.token),
            json!({"variantId": variant, "quantity": 3}),
        )
        .await;
    assert_eq!(updated.data()["cartSummary"]["totalItems"], 3);
    let removed = app
        .put(
            "/cart/manage",
            Some(&user.token),
            json!({"variantId": variant, "quantity": 0}),
        )
        .await;
    assert_eq!(removed.data()["cartSummary"]["totalItems"], 0);

    app.put(
        "/cart/manage",
        Some(&user.token),
        json!({"variantId": variant, "quantity": 1}),
    )
    .await;
    let cleared = app
        .call(
            axum::http::Method::DELETE,
            "/cart/clear",
            Some(&user.token),
            None,
            &[],
        )
        .await;
    assert_eq!(cleared.status, 200);
    assert_eq!(
        app.get("/cart", Some(&user.token)).await.data()["items"],
        json!([])
    );
}

async fn cart_edits_reject_bad_quantities_and_unknown_variants(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("cart-bad").await;
    let (variant, _, _) = app.some_variant().await;
    for quantity in [json!(-1), json!(11), json!(1.5), json!("2"), json!(1e20)] {
        app.put(
            "/cart/manage",
            Some(&user.token),
            json!({"variantId": variant, "quantity": quantity}),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    }
    app.put(
        "/cart/manage",
        Some(&user.token),
        json!({"variantId": "var_01HZZZZZZZZZZZZZZZZZZZZZZZ", "quantity": 1}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.put(
        "/cart/manage",
        Some(&user.token),
        json!({"variantId": "'; DROP TABLE carts; --", "quantity": 1}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
}

async fn checkout_locks_the_cart_until_the_order_is_final_then_clears_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("checkout", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    app.put(
        "/cart/manage",
        Some(&user.token),
        json!({"variantId": variant, "quantity": 2}),
    )
    .await;

    let created = app
        .post("/orders/create", Some(&user.token), json!({}))
        .await;
    assert_eq!(created.status, 202, "{}", created.body);
    assert_eq!(created.data()["totalAmount"], 2 * price);
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();

    app.put(
        "/cart/manage",
        Some(&user.token),
        json!({"variantId": variant, "quantity": 1}),
    )
    .await
    .assert_error(409, "CART_LOCKED");
    app.call(
        axum::http::Method::DELETE,
        "/cart/clear",
        Some(&user.token),
        None,
        &[],
    )
    .await
    .assert_error(409, "CART_LOCKED");
    app.post("/orders/create", Some(&user.token), json!({}))
        .await
        .assert_error(409, "CART_LOCKED");

    app.drain_queue().await;
    assert_eq!(
        app.order(&user, &order_id).await.data()["status"],
        "FULFILLED"
    );
    assert_eq!(
        app.get("/cart", Some(&user.token)).await.data()["items"],
        json!([]),
        "cleared after fulfillment"
    );
    assert_eq!(
        app.put(
            "/cart/manage",
            Some(&user.token),
            json!({"variantId": variant, "quantity": 1})
        )
        .await
        .status,
        200,
        "unlocked"
    );
    app.post("/orders/create", Some(&user.token), json!({"items": []}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
}

async fn checking_out_an_empty_cart_is_409(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("empty", 100_000).await;
    app.post("/orders/create", Some(&user.token), json!({}))
        .await
        .assert_error(409, "CART_EMPTY");
}

async fn a_price_change_fails_checkout_and_the_cart_shows_the_new_price(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("price", 1_000_000).await;
    // A brand's card: Giftify's own sell at face value and are never repriced.
    let (variant, old_price, _) = app.demo_variant("Amazon").await;
    app.put(
        "/cart/manage",
        Some(&user.token),
        json!({"variantId": variant, "quantity": 1}),
    )
    .await;
    let updated = app
        .put(
            &format!("/admin/inventory/{variant}"),
            Some(&app.admin_token),
            json!({"discountPercent": 50}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);

    let failed = app
        .post("/orders/create", Some(&user.token), json!({}))
        .await;
    failed.assert_error(409, "PRICE_CHANGED");
    assert_eq!(app.balance(&user).await, 1_000_000, "nothing charged");
    let new_price = app.get("/cart", Some(&user.token)).await.data()["items"][0]["unitPrice"]
        .as_i64()
        .unwrap();
    assert_ne!(new_price, old_price);

    let created = app
        .post("/orders/create", Some(&user.token), json!({}))
        .await;
    assert_eq!(created.status, 202, "{}", created.body);
    assert_eq!(created.data()["totalAmount"], new_price);
}

async fn cancelling_a_cart_order_unlocks_the_cart_and_keeps_its_lines(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("cancel-cart", 1_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    app.put(
        "/cart/manage",
        Some(&user.token),
        json!({"variantId": variant, "quantity": 1}),
    )
    .await;
    let created = app
        .post("/orders/create", Some(&user.token), json!({}))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap();
    let cancelled = app
        .post(
            &format!("/orders/{order_id}/cancel"),
            Some(&user.token),
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let cart = app.get("/cart", Some(&user.token)).await;
    assert_eq!(cart.data()["items"][0]["quantity"], 1);
    assert_eq!(
        app.put(
            "/cart/manage",
            Some(&user.token),
            json!({"variantId": variant, "quantity": 2})
        )
        .await
        .status,
        200
    );
}

crate::on_both_backends!(
    cart_edits_add_update_and_remove_lines,
    cart_edits_reject_bad_quantities_and_unknown_variants,
    checkout_locks_the_cart_until_the_order_is_final_then_clears_it,
    checking_out_an_empty_cart_is_409,
    a_price_change_fails_checkout_and_the_cart_shows_the_new_price,
    cancelling_a_cart_order_unlocks_the_cart_and_keeps_its_lines,
);
