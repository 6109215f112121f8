//! Restart: orders queued while no worker runs complete once a worker starts on the same data.

use crate::concurrency::wait_until_final;
use crate::invariants::{assert_conserved, stock_by_variant};
use crate::support::{Backend, TestApp};
use serde_json::json;

async fn orders_queued_while_the_worker_is_down_complete_after_it_starts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let initial = stock_by_variant(&app).await;
    let (variant, _, _) = app.some_variant().await;
    let mut users = Vec::new();
    for i in 0..3 {
        let user = app.funded_user(&format!("restart{i}-"), 1_000_000).await;
        let created = app
            .order_items(&user, json!([{"variantId": variant, "quantity": 2}]))
            .await;
        assert_eq!(created.status, 202);
        users.push(user);
    }
    // A new process on the same data, now with its worker running.
    let restarted = app.restart().await;
    assert!(
        !restarted.giftify().seed_demo_catalogue().await.unwrap(),
        "the catalogue is seeded only once"
    );
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let stack = restarted.stack.clone();
    let worker = tokio::spawn(async move { stack.run_worker(shutdown).await });
    wait_until_final(&restarted, &users).await;
    stop.send(true).unwrap();
    worker.await.unwrap();

    for user in &users {
        let list = restarted.get("/orders", Some(&user.token)).await;
        assert_eq!(list.data()["orders"][0]["status"], "FULFILLED");
    }
    assert_conserved(&restarted, &users, &initial).await;
}

crate::on_both_backends!(orders_queued_while_the_worker_is_down_complete_after_it_starts,);
