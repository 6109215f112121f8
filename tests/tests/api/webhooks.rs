//! Webhook delivery end to end: a real HTTP receiver on loopback gets the signed event.

use crate::support::{TestApp, test_config};
use axum::body::Bytes;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "whsec-test-secret";

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver that answers 500 to its first call (to exercise retries) and 200 after.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                let mut calls = store.lock().unwrap();
                calls.push((headers, body));
                if calls.len() == 1 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_events_are_posted_signed_and_retried_until_accepted() {
    let (url, received) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir, |path| {
        let mut config = test_config(path);
        config.webhook_urls = vec![url.clone()];
        config.webhook_secret = Some(SECRET.to_string().into());
        config
    })
    .await;
    let user = app.funded_user("hook", 1_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();

    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let stack = app.stack.clone();
    let worker = tokio::spawn(async move { stack.run_worker(shutdown).await });
    let mut delivered = false;
    for _ in 0..300 {
        if received.lock().unwrap().len() >= 2 {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert!(delivered, "the event was not redelivered after a 500");

    let calls = received.lock().unwrap();
    let (headers, body) = &calls[1];
    assert_eq!(calls[0].1, *body, "a retry sends the same bytes");
    let event: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["orderId"], order_id.as_str());
    assert_eq!(event["eventType"], "order.fulfilled");
    assert_eq!(
        headers["giftify-event-id"].to_str().unwrap(),
        event["eventId"].as_str().unwrap()
    );
    assert_eq!(headers["giftify-event-type"], "order.fulfilled");

    let signature = headers["giftify-signature"].to_str().unwrap();
    let (t, v1) = signature.split_once(',').unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let v1 = v1.strip_prefix("v1=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    assert_eq!(
        hex::encode(mac.finalize().into_bytes()),
        v1,
        "signature verifies"
    );
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap();
    assert!((0..120).contains(&age), "timestamp is current");
}
