//! Mass assignment: privileged or server-computed fields (`role`, `status`, `walletBalance`,
//! prices, amounts, ids) added to every request body are refused with 400, and the state they
//! aim at is unchanged afterwards.

use crate::support::{Backend, PASSWORD, TestApp, unique_email};
use crate::{Attacks, assert_refused, profile};
use axum::http::Method;
use serde_json::{Value, json};

/// `base` with one extra field.
fn plus(base: &Value, field: &str, value: Value) -> Value {
    let mut body = base.clone();
    body[field] = value;
    body
}

async fn privileged_fields_in_any_body_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut attacks = Attacks::new("mass assignment", backend);
    let privileged = [
        ("role", json!("ADMIN")),
        ("Role", json!("ADMIN")),
        ("status", json!("ACTIVE")),
        ("walletBalance", json!(99_999_999)),
        ("wallet_balance", json!(99_999_999)),
        ("isEmailVerified", json!(true)),
        ("userId", json!("user_01HXXXXXXXXXXXXXXXXXXXXXXX")),
        ("email", json!("someone@else.in")),
        (
            "passwordHash",
            json!("$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB"),
        ),
        ("createdAt", json!("2020-01-01T00:00:00Z")),
    ];

    // Registration.
    let registration = json!({"email": unique_email("mass"), "password": PASSWORD,
                              "firstName": "Asha", "lastName": "Rao"});
    for (field, value) in &privileged {
        if *field == "email" {
            continue;
        }
        attacks.tried();
        let response = app
            .post(
                "/auth/register",
                None,
                plus(&registration, field, value.clone()),
            )
            .await;
        response.assert_error(400, "VALIDATION_ERROR");
    }
    attacks.tried();
    app.post(
        "/auth/login",
        None,
        json!({"email": registration["email"], "password": PASSWORD}),
    )
    .await
    .assert_error(401, "INVALID_CREDENTIALS");

    // Profile updates.
    let user = app.funded_user("mass", 500_000).await;
    let before = profile(&app, &user).await;
    for (field, value) in &privileged {
        attacks.tried();
        let response = app
            .put(
                "/users/profile",
                Some(&user.token),
                plus(&json!({"firstName": "Eve"}), field, value.clone()),
            )
            .await;
        response.assert_error(400, "VALIDATION_ERROR");
    }
    assert_eq!(profile(&app, &user).await, before);
    attacks.tried();
    app.get("/admin/inventory", Some(&user.token))
        .await
        .assert_error(403, "FORBIDDEN");

    // Top-ups.
    for (field, value) in [
        ("walletBalance", json!(99_999_999)),
        ("newBalance", json!(99_999_999)),
        ("balanceAfter", json!(99_999_999)),
        ("userId", json!("user_01HXXXXXXXXXXXXXXXXXXXXXXX")),
        ("type", json!("REFUND")),
        ("status", json!("COMPLETED")),
        ("transactionId", json!("txn_01HXXXXXXXXXXXXXXXXXXXXXXX")),
    ] {
        attacks.tried();
        let response = app
            .post(
                "/wallet/topup",
                Some(&user.token),
                plus(&json!({"amount": 100}), field, value),
            )
            .await;
        response.assert_error(400, "VALIDATION_ERROR");
    }
    // The control: the same body without the extra field is fine.
    let control = app
        .post("/wallet/topup", Some(&user.token), json!({"amount": 1}))
        .await;
    assert_eq!(control.status, 200, "{}", control.body);
    // A key given twice must not let one parser see 1 and another 10000000.
    attacks.tried();
    let duplicated = crate::raw(
        &app,
        Method::POST,
        "/wallet/topup",
        Some(&user.token),
        "application/json",
        r#"{"amount": 1, "amount": 10000000}"#,
    )
    .await;
    duplicated.assert_error(400, "VALIDATION_ERROR");
    assert_eq!(app.balance(&user).await, 500_001);

    // Orders: server-computed fields at the top level and on items.
    let (variant, price, _) = app.some_variant().await;
    let item = json!({"variantId": variant, "quantity": 1});
    for (field, value) in [
        ("status", json!("FULFILLED")),
        ("totalAmount", json!(1)),
        ("paidAmount", json!(1)),
        ("refundAmount", json!(1_000_000)),
        ("userId", json!("user_01HXXXXXXXXXXXXXXXXXXXXXXX")),
        ("orderId", json!("order_01HXXXXXXXXXXXXXXXXXXXXXXX")),
    ] {
        attacks.tried();
        let response = app
            .post(
                "/orders/create",
                Some(&user.token),
                plus(&json!({"items": [item]}), field, value),
            )
            .await;
        response.assert_error(400, "VALIDATION_ERROR");
    }
    for (field, value) in [
        ("unitPrice", json!(1)),
        ("sellingPrice", json!(1)),
        ("price", json!(1)),
        ("totalPrice", json!(1)),
        ("discountPercent", json!(100)),
        ("fulfilledQuantity", json!(1)),
    ] {
        attacks.tried();
        let response = app
            .order_items(&user, json!([plus(&item, field, value)]))
            .await;
        response.assert_error(400, "VALIDATION_ERROR");
    }
    assert_eq!(app.balance(&user).await, 500_001, "no order was placed");
    assert_eq!(
        app.get("/orders", Some(&user.token)).await.data()["pagination"]["total"],
        0
    );

    // Cart lines: the price is the server's.
    for (field, value) in [
        ("unitPrice", json!(1)),
        ("totalPrice", json!(1)),
        ("productName", json!("x")),
    ] {
        attacks.tried();
        let response = app
            .put("/cart/manage", Some(&user.token), plus(&item, field, value))
            .await;
        response.assert_error(400, "VALIDATION_ERROR");
    }
    assert_eq!(
        app.get("/cart", Some(&user.token)).await.data()["items"],
        json!([])
    );

    // A cancel carries no body worth reading: a forged refund amount is ignored, and the
    // refund is the amount paid, once.
    let placed = app.order_items(&user, json!([item])).await;
    let order = placed.data()["orderId"]
        .as_str()
        .expect("orderId")
        .to_string();
    attacks.tried();
    let cancelled = app
        .post(
            &format!("/orders/{order}/cancel"),
            Some(&user.token),
            json!({"refundAmount": 99_999_999, "status": "REFUNDED"}),
        )
        .await;
    if cancelled.status.is_success() {
        assert_eq!(cancelled.data()["refundAmount"], price);
        assert_eq!(
            app.balance(&user).await,
            500_001,
            "refunded exactly what was paid"
        );
    } else {
        assert_refused(&cancelled, "cancel with a body");
        assert_eq!(app.balance(&user).await, 500_001 - price);
    }

    // Admin updates: derived and identifying fields are not the admin's to set either.
    let inventory_before = app.inventory().await;
    for (field, value) in [
        ("sellingPrice", json!(1)),
        ("variantId", json!("var_01HXXXXXXXXXXXXXXXXXXXXXXX")),
        ("productId", json!("prod_01HXXXXXXXXXXXXXXXXXXXXXXX")),
        ("denomination", json!(1)),
    ] {
        attacks.tried();
        let response = app
            .put(
                &format!("/admin/inventory/{variant}"),
                Some(&app.admin_token),
                plus(&json!({"isActive": true}), field, value),
            )
            .await;
        response.assert_error(400, "VALIDATION_ERROR");
    }
    let inventory_after = app.inventory().await;
    let entry = |inventory: &[Value]| {
        inventory
            .iter()
            .find(|v| v["variantId"] == variant.as_str())
            .map(|v| {
                (
                    v["sellingPrice"].clone(),
                    v["mrp"].clone(),
                    v["denomination"].clone(),
                )
            })
    };
    assert_eq!(entry(&inventory_after), entry(&inventory_before));
}

crate::on_both_backends!(privileged_fields_in_any_body_are_refused_and_change_nothing);
