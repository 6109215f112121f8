//! Double-spend attempts: the same money-moving request fired many times at once — one
//! idempotency key, one order to cancel, one cart to check out, one balance to overdraw, one
//! wallet cap to break. Exactly one may take effect, and the books must still balance.

use crate::Attacks;
use crate::invariants::{assert_conserved, stock_by_variant};
use crate::support::{Backend, TestApp, TestResponse, TestUser};
use axum::http::Method;
use serde_json::{Value, json};
use std::sync::Arc;

const RACERS: usize = 10;

/// Sends `RACERS` copies of one request at once; returns the answers.
async fn race(
    app: &Arc<TestApp>,
    user: &TestUser,
    method: Method,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> Vec<TestResponse> {
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (app, token, path, body) = (
                app.clone(),
                user.token.clone(),
                path.to_string(),
                body.clone(),
            );
            let (method, key) = (method.clone(), key.map(str::to_string));
            tokio::spawn(async move {
                let headers: Vec<(&str, &str)> = key
                    .as_deref()
                    .map(|k| vec![("idempotency-key", k)])
                    .unwrap_or_default();
                app.call(method, &path, Some(&token), body, &headers).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("racer"));
    }
    answers
}

/// How many answers have this status.
fn count(answers: &[TestResponse], status: u16) -> usize {
    answers
        .iter()
        .filter(|a| a.status.as_u16() == status)
        .count()
}

/// Asserts every answer is one of `allowed` (status, code); 2xx always allowed.
#[track_caller]
fn only(answers: &[TestResponse], allowed: &[(u16, &str)]) {
    for answer in answers {
        if answer.status.is_success() {
            continue;
        }
        let code = answer.code();
        assert!(
            allowed.contains(&(answer.status.as_u16(), code)),
            "unexpected {} {}",
            answer.status,
            answer.body
        );
    }
}

async fn the_same_money_moving_request_fired_ten_times_at_once_takes_effect_once(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let mut attacks = Attacks::new("races", backend);
    let initial = stock_by_variant(&app).await;
    let (variant, price, _) = app.some_variant().await;

    // One idempotency key, ten top-ups: credited once.
    let user = app.funded_user("racer", 1_000_000).await;
    let answers = race(
        &app,
        &user,
        Method::POST,
        "/wallet/topup",
        Some(json!({"amount": 50_000})),
        Some("once"),
    )
    .await;
    attacks.tried();
    only(&answers, &[(409, "IDEMPOTENCY_IN_PROGRESS")]);
    assert!(count(&answers, 200) >= 1);
    let ids: std::collections::BTreeSet<_> = answers
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| a.data()["transactionId"].clone().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "every success is the same top-up");
    assert_eq!(app.balance(&user).await, 1_050_000);

    // One key, ten orders: one order.
    let answers = race(
        &app,
        &user,
        Method::POST,
        "/orders/create",
        Some(json!({"items": [{"variantId": variant, "quantity": 1}]})),
        Some("one-order"),
    )
    .await;
    attacks.tried();
    only(&answers, &[(409, "IDEMPOTENCY_IN_PROGRESS")]);
    let orders: std::collections::BTreeSet<_> = answers
        .iter()
        .filter(|a| a.status == 202)
        .map(|a| a.data()["orderId"].to_string())
        .collect();
    assert_eq!(orders.len(), 1);
    assert_eq!(app.balance(&user).await, 1_050_000 - price);

    // Ten cancels of one PENDING order, no key: one refund.
    let order = orders
        .iter()
        .next()
        .expect("order")
        .trim_matches('"')
        .to_string();
    let answers = race(
        &app,
        &user,
        Method::POST,
        &format!("/orders/{order}/cancel"),
        None,
        None,
    )
    .await;
    attacks.tried();
    only(&answers, &[(409, "ORDER_NOT_CANCELLABLE")]);
    assert_eq!(count(&answers, 200), 1, "exactly one cancel wins");
    assert_eq!(app.balance(&user).await, 1_050_000);

    // Ten orders that each cost most of the balance: at most one is paid for.
    let poor = app.register("poor").await;
    let topped = app.top_up(&poor, price * 3).await;
    assert_eq!(topped.status, 200, "{}", topped.body);
    let answers = race(
        &app,
        &poor,
        Method::POST,
        "/orders/create",
        Some(json!({"items": [{"variantId": variant, "quantity": 2}]})),
        None,
    )
    .await;
    attacks.tried();
    only(&answers, &[(422, "INSUFFICIENT_BALANCE")]);
    assert_eq!(count(&answers, 202), 1, "only one order fits the balance");
    assert_eq!(app.balance(&poor).await, price);

    // Ten checkouts of one cart: one order, the others find the cart locked (or, once it
    // is checked out and cleared, empty).
    let shopper = app.funded_user("cartracer", 1_000_000).await;
    let line = app
        .put(
            "/cart/manage",
            Some(&shopper.token),
            json!({"variantId": variant, "quantity": 2}),
        )
        .await;
    assert_eq!(line.status, 200, "{}", line.body);
    let answers = race(
        &app,
        &shopper,
        Method::POST,
        "/orders/create",
        Some(json!({})),
        None,
    )
    .await;
    attacks.tried();
    only(&answers, &[(409, "CART_LOCKED"), (409, "CART_EMPTY")]);
    assert_eq!(count(&answers, 202), 1, "one checkout per cart");
    assert_eq!(app.balance(&shopper).await, 1_000_000 - 2 * price);

    // Ten top-ups (distinct keys) racing for the last room under the wallet cap.
    let rich = app.funded_user("rich", 10_000_000).await;
    assert_eq!(app.top_up(&rich, 9_000_000).await.status, 200);
    let tasks: Vec<_> = (0..RACERS)
        .map(|n| {
            let (app, rich) = (app.clone(), rich.clone());
            tokio::spawn(async move {
                app.call(
                    Method::POST,
                    "/wallet/topup",
                    Some(&rich.token),
                    Some(json!({"amount": 400_000})),
                    &[("idempotency-key", &format!("cap-{n}"))],
                )
                .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("racer"));
    }
    attacks.tried();
    only(&answers, &[(422, "WALLET_LIMIT_EXCEEDED")]);
    assert_eq!(count(&answers, 200), 2, "only two fit under ₹2,00,000");
    assert_eq!(app.balance(&rich).await, 19_800_000);

    app.drain_queue().await;
    assert_conserved(&app, &[user, poor, shopper, rich], &initial).await;
}

crate::on_both_backends!(the_same_money_moving_request_fired_ten_times_at_once_takes_effect_once);
