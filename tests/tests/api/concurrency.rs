//! Many users racing for fewer units than they order, against the real worker loop.

use crate::invariants::{assert_conserved, stock_by_variant};
use crate::support::{Backend, TestApp, TestUser};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

async fn twenty_five_users_racing_for_fifteen_cards_never_oversell_and_conserve_money(
    backend: Backend,
) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let (variant, _, _) = app.some_variant().await;
    app.set_stock(&variant, 15).await;
    let initial = stock_by_variant(&app).await;

    let mut users: Vec<TestUser> = Vec::new();
    for i in 0..25 {
        users.push(app.funded_user(&format!("racer{i}-"), 500_000).await);
    }

    // Two consumers compete for the queue while the orders arrive.
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let worker = {
        let app = app.clone();
        tokio::spawn(async move { app.stack.run_worker(shutdown).await })
    };
    let second_consumer = {
        let app = app.clone();
        tokio::spawn(async move {
            for _ in 0..50 {
                app.drain_queue().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let mut orders = Vec::new();
    for user in &users {
        let app = app.clone();
        let user = user.clone();
        let variant = variant.clone();
        orders.push(tokio::spawn(async move {
            let created = app
                .order_items(&user, json!([{"variantId": variant, "quantity": 2}]))
                .await;
            (created.status.as_u16(), created.body)
        }));
    }
    let mut accepted = 0;
    for handle in orders {
        let (status, body) = handle.await.unwrap();
        match status {
            202 => accepted += 1,
            409 => assert_eq!(body["error"]["code"], "OUT_OF_STOCK"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        accepted >= 8,
        "at least the first orders are accepted, got {accepted}"
    );

    wait_until_final(&app, &users).await;
    stop.send(true).unwrap();
    worker.await.unwrap();
    second_consumer.await.unwrap();

    assert_conserved(&app, &users, &initial).await;
    assert_eq!(
        stock_by_variant(&app).await[&variant],
        0,
        "every card that existed was sold"
    );
}

/// Polls until every order of these users is final (bounded).
pub async fn wait_until_final(app: &TestApp, users: &[TestUser]) {
    for _ in 0..600 {
        let mut open = 0;
        for user in users {
            let list = app.get("/orders?limit=100", Some(&user.token)).await;
            open += list.data()["orders"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| o["status"] == "PENDING" || o["status"] == "PROCESSING")
                .count();
        }
        if open == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("orders did not reach a final status in 30 s");
}

crate::on_both_backends!(
    twenty_five_users_racing_for_fifteen_cards_never_oversell_and_conserve_money,
);
