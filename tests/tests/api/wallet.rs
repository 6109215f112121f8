//! Wallet top-ups, limits, history and idempotency keys.

use crate::support::{Backend, TestApp};
use axum::http::Method;
use serde_json::json;

async fn a_top_up_credits_the_wallet_and_shows_in_the_history(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("topup").await;
    let response = app
        .post(
            "/wallet/topup",
            Some(&user.token),
            json!({"amount": 150_000, "description": "Diwali"}),
        )
        .await;
    let data = response.data();
    assert!(data["transactionId"].as_str().unwrap().starts_with("txn_"));
    assert_eq!(data["amount"], 150_000);
    assert_eq!(data["newBalance"], 150_000);
    assert_eq!(data["status"], "COMPLETED");

    let balance = app.get("/wallet/balance", Some(&user.token)).await;
    assert_eq!(balance.data()["balance"], 150_000);
    assert_eq!(balance.data()["balanceFormatted"], "₹1,500.00");

    let history = app
        .get(
            "/wallet/transactions?page=1&limit=20&type=CREDIT",
            Some(&user.token),
        )
        .await;
    let data = history.data();
    assert_eq!(data["transactions"][0]["amount"], 150_000);
    assert_eq!(data["transactions"][0]["balanceAfter"], 150_000);
    assert_eq!(data["transactions"][0]["description"], "Diwali");
    assert_eq!(
        data["pagination"],
        json!({"page": 1, "limit": 20, "total": 1, "hasNext": false})
    );
    let debits = app
        .get("/wallet/transactions?type=DEBIT", Some(&user.token))
        .await;
    assert_eq!(debits.data()["transactions"], json!([]));
}

async fn top_up_amounts_outside_1_paisa_to_1_lakh_are_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("bounds").await;
    for amount in [
        json!(0),
        json!(-5),
        json!(10_000_001),
        json!(1.5),
        json!("100"),
        json!(9_223_372_036_854_775_807u64),
        json!(1e30),
    ] {
        app.post(
            "/wallet/topup",
            Some(&user.token),
            json!({"amount": amount}),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    }
    assert_eq!(app.balance(&user).await, 0);
    assert_eq!(app.top_up(&user, 1).await.status, 200);
    assert_eq!(app.top_up(&user, 10_000_000).await.status, 200);
}

async fn the_balance_may_not_exceed_two_lakh(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("cap", 10_000_000).await;
    assert_eq!(app.top_up(&user, 10_000_000).await.status, 200);
    app.top_up(&user, 1)
        .await
        .assert_error(422, "WALLET_LIMIT_EXCEEDED");
    assert_eq!(app.balance(&user).await, 20_000_000);
}

async fn transaction_history_paginates_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("pages").await;
    for amount in 1..=5 {
        app.top_up(&user, amount * 100).await;
    }
    let page1 = app
        .get("/wallet/transactions?page=1&limit=2", Some(&user.token))
        .await;
    assert_eq!(
        page1.data()["pagination"],
        json!({"page": 1, "limit": 2, "total": 5, "hasNext": true})
    );
    assert_eq!(page1.data()["transactions"][0]["amount"], 500);
    let page3 = app
        .get("/wallet/transactions?page=3&limit=2", Some(&user.token))
        .await;
    assert_eq!(page3.data()["transactions"].as_array().unwrap().len(), 1);
    assert_eq!(page3.data()["pagination"]["hasNext"], false);
    for query in [
        "page=0",
        "limit=0",
        "limit=1000",
        "page=abc",
        "type=BONUS",
        "page=-1",
    ] {
        app.get(&format!("/wallet/transactions?{query}"), Some(&user.token))
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
}

async fn an_idempotency_key_replays_the_first_top_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("idem").await;
    let send = |amount: i64, key: &'static str| {
        let token = user.token.clone();
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/wallet/topup",
                Some(&token),
                Some(json!({"amount": amount})),
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    let first = send(5_000, "topup-1").await;
    let again = send(5_000, "topup-1").await;
    assert_eq!(first.status, 200);
    assert_eq!(again.status, 200);
    assert_eq!(
        first.data(),
        again.data(),
        "the replay is the first response"
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.balance(&user).await, 5_000, "credited once");

    send(6_000, "topup-1")
        .await
        .assert_error(422, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(send(6_000, "topup-2").await.status, 200);
    assert_eq!(app.balance(&user).await, 11_000);

    // Keys are scoped per user: another user's identical key is a fresh request.
    let other = app.register("idem-other").await;
    let theirs = app
        .call(
            Method::POST,
            "/wallet/topup",
            Some(&other.token),
            Some(json!({"amount": 5_000})),
            &[("idempotency-key", "topup-1")],
        )
        .await;
    assert_eq!(theirs.status, 200);
    assert_ne!(
        theirs.data()["transactionId"],
        first.data()["transactionId"]
    );
}

async fn a_failed_request_replays_its_error_under_the_same_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("idem-err", 10_000_000).await;
    assert_eq!(app.top_up(&user, 10_000_000).await.status, 200);
    let send = || {
        app.call(
            Method::POST,
            "/wallet/topup",
            Some(&user.token),
            Some(json!({"amount": 100})),
            &[("idempotency-key", "k")],
        )
    };
    send().await.assert_error(422, "WALLET_LIMIT_EXCEEDED");
    let replay = send().await;
    replay.assert_error(422, "WALLET_LIMIT_EXCEEDED");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let bad = app
        .call(
            Method::POST,
            "/wallet/topup",
            Some(&user.token),
            Some(json!({"amount": 100})),
            &[("idempotency-key", "")],
        )
        .await;
    bad.assert_error(400, "VALIDATION_ERROR");
}

crate::on_both_backends!(
    a_top_up_credits_the_wallet_and_shows_in_the_history,
    top_up_amounts_outside_1_paisa_to_1_lakh_are_400,
    the_balance_may_not_exceed_two_lakh,
    transaction_history_paginates_newest_first,
    an_idempotency_key_replays_the_first_top_up,
    a_failed_request_replays_its_error_under_the_same_key,
);
