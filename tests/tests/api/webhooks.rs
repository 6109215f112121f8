//! Webhooks end to end on both backends: endpoints managed at `/webhooks`, a real HTTP
//! receiver on loopback that verifies every signature, the delivery log, retry, recover,
//! rotation with an overlap, and disabling an endpoint that keeps failing. On AWS the
//! deliveries go the product's way: the events topic → moto's SNS → SQS delivery → the
//! dispatcher's handler.

use crate::on_both_backends;
use crate::support::{Backend, TestApp, TestUser, test_config};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A webhook receiver on 127.0.0.1 that records every POST and answers with the status it is
/// told to.
struct Receiver {
    url: String,
    calls: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    async fn start() -> Receiver {
        let calls: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (seen, answer) = (calls.clone(), status.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (seen, answer) = (seen.clone(), answer.clone());
                async move {
                    seen.lock().unwrap().push((headers, body));
                    StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, calls, status }
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn calls(&self) -> Vec<(HeaderMap, Bytes)> {
        self.calls.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<Value> {
        self.calls()
            .iter()
            .map(|(_, body)| serde_json::from_slice(body).unwrap())
            .collect()
    }
}

/// Whether `header` carries a `v1=` that verifies `body` under `secret`, as a subscriber
/// checks it (the README's snippets do the same).
fn verifies(header: &str, body: &[u8], secret: &str) -> bool {
    let mut parts = header.split(',');
    let Some(t) = parts.next().and_then(|p| p.strip_prefix("t=")) else {
        return false;
    };
    parts.filter_map(|p| p.strip_prefix("v1=")).any(|v1| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        hex::decode(v1).is_ok_and(|sig| mac.verify_slice(&sig).is_ok())
    })
}

fn signature_of(headers: &HeaderMap) -> &str {
    headers["giftify-signature"].to_str().unwrap()
}

async fn create_endpoint(app: &TestApp, url: &str, types: Value) -> (String, String) {
    let created = app
        .post(
            "/webhooks",
            Some(&app.admin_token),
            json!({"url": url, "eventTypes": types, "description": "test receiver"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let data = created.data();
    (
        data["webhookId"].as_str().unwrap().to_string(),
        data["secret"].as_str().unwrap().to_string(),
    )
}

/// Places an order and runs the worker until it is final: one `order.fulfilled` event.
async fn fulfilled_order(app: &TestApp, user: &TestUser) -> String {
    let (variant, _, _) = app.some_variant().await;
    let created = app
        .order_items(user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();
    app.drain_queue().await;
    assert_eq!(
        app.order(user, &order_id).await.data()["status"],
        "FULFILLED"
    );
    order_id
}

async fn deliveries(app: &TestApp, webhook: &str, query: &str) -> Value {
    let listed = app
        .get(
            &format!("/webhooks/{webhook}/deliveries{query}"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    listed.data().clone()
}

async fn endpoints_are_managed_by_admins_with_clear_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, secret) = create_endpoint(
        &app,
        "https://example.com/hooks",
        json!(["order.fulfilled"]),
    )
    .await;
    assert!(id.starts_with("we_") && secret.starts_with("whsec_"));

    let listed = app.get("/webhooks", Some(&app.admin_token)).await;
    let webhooks = listed.data()["webhooks"].as_array().unwrap().clone();
    assert_eq!(webhooks.len(), 1);
    assert_eq!(webhooks[0]["webhookId"], id.as_str());
    assert_eq!(webhooks[0]["enabled"], true);
    assert!(
        !listed.body.to_string().contains(&secret),
        "a secret is shown once only"
    );
    assert_eq!(webhooks[0]["secrets"].as_array().unwrap().len(), 1);

    let changed = app
        .call(
            axum::http::Method::PATCH,
            &format!("/webhooks/{id}"),
            Some(&app.admin_token),
            Some(json!({"eventTypes": ["*"], "enabled": false, "description": "paused"})),
            &[],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.data()["enabled"], false);
    assert_eq!(changed.data()["eventTypes"], json!(["*"]));
    assert_eq!(changed.data()["url"], "https://example.com/hooks");

    // Errors, each in the envelope.
    let user = app.register("hooks").await;
    app.post(
        "/webhooks",
        Some(&user.token),
        json!({"url": "https://x.test/h", "eventTypes": ["*"]}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    app.get("/webhooks", None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    // Not even an admin's API key: managing webhooks is for signed-in people.
    let key = app
        .post(
            "/api-keys",
            Some(&app.admin_token),
            json!({"name": "admin's server", "scopes": ["orders:read"]}),
        )
        .await;
    let key = key.data()["secret"].as_str().unwrap().to_string();
    app.get("/webhooks", Some(&key))
        .await
        .assert_error(403, "FORBIDDEN");
    for (body, field) in [
        (json!({"url": "ftp://x.test/h", "eventTypes": ["*"]}), "url"),
        (
            json!({"url": "https://user:pw@x.test/h", "eventTypes": ["*"]}),
            "url",
        ),
        (
            json!({"url": "https://x.test/h", "eventTypes": []}),
            "eventTypes",
        ),
        (
            json!({"url": "https://x.test/h", "eventTypes": ["order.shipped"]}),
            "eventTypes",
        ),
        (
            json!({"url": "https://x.test/h", "eventTypes": ["*"], "description": "x".repeat(201)}),
            "description",
        ),
    ] {
        let refused = app.post("/webhooks", Some(&app.admin_token), body).await;
        refused.assert_error(400, "VALIDATION_ERROR");
        assert_eq!(
            refused.body["error"]["details"]["field"], field,
            "{}",
            refused.body
        );
    }
    let unknown = "we_01HZZZZZZZZZZZZZZZZZZZZZZZ";
    app.get(&format!("/webhooks/{unknown}"), Some(&app.admin_token))
        .await
        .assert_error(404, "NOT_FOUND");
    app.get("/webhooks/not-an-id", Some(&app.admin_token))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.get(
        &format!("/webhooks/{id}/deliveries?status=LOST"),
        Some(&app.admin_token),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        &format!("/webhooks/{id}/rotate-secret"),
        Some(&app.admin_token),
        json!({"overlapSeconds": 8 * 86_400}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        &format!("/webhooks/{id}/recover"),
        Some(&app.admin_token),
        json!({"since": "2026-01-01T00:00:00Z"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    let deleted = app
        .call(
            axum::http::Method::DELETE,
            &format!("/webhooks/{id}"),
            Some(&app.admin_token),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    app.get(&format!("/webhooks/{id}"), Some(&app.admin_token))
        .await
        .assert_error(404, "NOT_FOUND");
    app.get(
        &format!("/webhooks/{id}/deliveries"),
        Some(&app.admin_token),
    )
    .await
    .assert_error(404, "NOT_FOUND");
}

async fn a_delivery_is_signed_logged_and_replayable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let (id, secret) = create_endpoint(&app, &receiver.url, json!(["order.fulfilled"])).await;
    let user = app.funded_user("signed", 1_000_000).await;

    receiver.answer(500);
    let order_id = fulfilled_order(&app, &user).await;
    assert_eq!(app.dispatch_webhooks().await, 1, "one attempt, refused");
    let calls = receiver.calls();
    assert_eq!(calls.len(), 1);
    let (headers, body) = &calls[0];
    assert!(
        verifies(signature_of(headers), body, &secret),
        "{headers:?}"
    );
    assert!(!verifies(signature_of(headers), body, "whsec_another"));
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["orderId"], order_id.as_str());
    assert_eq!(event["eventType"], "order.fulfilled");
    assert_eq!(
        headers["giftify-event-id"],
        event["eventId"].as_str().unwrap()
    );
    assert_eq!(headers["giftify-event-type"], "order.fulfilled");

    let log = deliveries(&app, &id, "").await;
    assert_eq!(log["pagination"]["total"], 1);
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["status"], "PENDING", "{delivery}");
    assert_eq!(delivery["attempts"][0]["httpStatus"], 500);
    assert!(delivery["attempts"][0]["latencyMs"].is_u64());
    assert!(
        delivery["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    assert!(
        delivery["nextAttemptAt"].is_string(),
        "a retry is scheduled"
    );
    assert_eq!(delivery["payload"]["eventId"], event["eventId"]);
    assert_eq!(
        headers["giftify-delivery-id"],
        delivery["deliveryId"].as_str().unwrap()
    );
    assert_eq!(
        deliveries(&app, &id, "?status=DELIVERED").await["pagination"]["total"],
        0
    );

    // An admin retries now, without waiting for the schedule.
    receiver.answer(204);
    let delivery_id = delivery["deliveryId"].as_str().unwrap();
    let retried = app
        .post(
            &format!("/webhooks/{id}/deliveries/{delivery_id}/retry"),
            Some(&app.admin_token),
            json!({}),
        )
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.body);
    assert_eq!(app.dispatch_webhooks().await, 1);
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].1, calls[1].1, "a retry sends the same bytes");
    assert!(verifies(signature_of(&calls[1].0), &calls[1].1, &secret));
    let shown = app
        .get(
            &format!("/webhooks/{id}/deliveries/{delivery_id}"),
            Some(&app.admin_token),
        )
        .await;
    let shown = shown.data();
    assert_eq!(shown["status"], "DELIVERED");
    assert_eq!(shown["attemptCount"], 2);
    assert_eq!(shown["attempts"][1]["httpStatus"], 204);
    assert!(shown["attempts"][1]["error"].is_null());
    assert_eq!(
        deliveries(&app, &id, "?status=DELIVERED").await["pagination"]["total"],
        1
    );
    assert_eq!(app.dispatch_webhooks().await, 0, "nothing more to send");

    // Another endpoint's delivery is not this endpoint's.
    let (other, _) = create_endpoint(&app, &receiver.url, json!(["gift_card.redeemed"])).await;
    app.post(
        &format!("/webhooks/{other}/deliveries/{delivery_id}/retry"),
        Some(&app.admin_token),
        json!({}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
}

async fn recover_resends_every_event_since_a_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    let user = app.funded_user("recover", 1_000_000).await;
    let first = fulfilled_order(&app, &user).await;
    let second = fulfilled_order(&app, &user).await;
    // Dispatched while no endpoint existed: nobody got them.
    app.dispatch_webhooks().await;

    let receiver = Receiver::start().await;
    let (id, secret) = create_endpoint(&app, &receiver.url, json!(["order.fulfilled"])).await;
    assert_eq!(app.dispatch_webhooks().await, 0);
    let recovered = app
        .post(
            &format!("/webhooks/{id}/recover"),
            Some(&app.admin_token),
            json!({"since": since.to_rfc3339()}),
        )
        .await;
    assert_eq!(recovered.status, StatusCode::ACCEPTED, "{}", recovered.body);
    assert_eq!(recovered.data()["recovered"], 2);
    assert_eq!(recovered.data()["hasMore"], false);
    let next = recovered.data()["nextCursor"].as_str().unwrap().to_string();
    let done = app
        .post(
            &format!("/webhooks/{id}/recover"),
            Some(&app.admin_token),
            json!({"since": since.to_rfc3339(), "after": next}),
        )
        .await;
    assert_eq!(done.data()["recovered"], 0, "nothing past the cursor");
    app.post(
        &format!("/webhooks/{id}/recover"),
        Some(&app.admin_token),
        json!({"since": since.to_rfc3339(), "after": "not-a-cursor"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    assert_eq!(app.dispatch_webhooks().await, 2);
    let mut orders: Vec<String> = receiver
        .events()
        .iter()
        .map(|e| e["orderId"].as_str().unwrap().to_string())
        .collect();
    // Deliveries go out concurrently: arrival order is not feed order (`sequence` is).
    orders.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(orders, expected);
    assert!(
        receiver
            .calls()
            .iter()
            .all(|(h, b)| verifies(signature_of(h), b, &secret))
    );

    // A recover from later than both events sends nothing; a second full one replays them.
    let later = app
        .post(
            &format!("/webhooks/{id}/recover"),
            Some(&app.admin_token),
            json!({"since": chrono::Utc::now().to_rfc3339()}),
        )
        .await;
    assert_eq!(later.data()["recovered"], 0);
    let again = app
        .post(
            &format!("/webhooks/{id}/recover"),
            Some(&app.admin_token),
            json!({"since": since.to_rfc3339()}),
        )
        .await;
    assert_eq!(again.data()["recovered"], 2);
    assert_eq!(app.dispatch_webhooks().await, 2);
    let log = deliveries(&app, &id, "").await;
    assert_eq!(
        log["pagination"]["total"], 2,
        "replayed, not duplicated: {log}"
    );
    assert!(
        log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["attemptCount"] == 2)
    );
}

async fn during_a_rotation_both_secrets_sign(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let (id, old_secret) = create_endpoint(&app, &receiver.url, json!(["*"])).await;
    let rotated = app
        .post(
            &format!("/webhooks/{id}/rotate-secret"),
            Some(&app.admin_token),
            json!({"overlapSeconds": 3600}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new_secret = rotated.data()["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, old_secret);
    let secrets = rotated.data()["secrets"].as_array().unwrap().clone();
    assert_eq!(secrets.len(), 2);
    assert!(secrets[0]["expiresAt"].is_null() && secrets[1]["expiresAt"].is_string());

    let user = app.funded_user("rotate", 1_000_000).await;
    fulfilled_order(&app, &user).await;
    assert_eq!(app.dispatch_webhooks().await, 1);
    let (headers, body) = receiver.calls().remove(0);
    let signature = signature_of(&headers);
    assert_eq!(signature.matches("v1=").count(), 2, "{signature}");
    assert!(
        verifies(signature, &body, &old_secret),
        "a subscriber still on the old secret verifies"
    );
    assert!(
        verifies(signature, &body, &new_secret),
        "one already on the new secret verifies"
    );

    // An immediate rotation ends the overlap: only the newest secret signs.
    let now = app
        .post(
            &format!("/webhooks/{id}/rotate-secret"),
            Some(&app.admin_token),
            json!({"overlapSeconds": 0}),
        )
        .await;
    let newest = now.data()["secret"].as_str().unwrap().to_string();
    assert_eq!(now.data()["secrets"].as_array().unwrap().len(), 1);
    fulfilled_order(&app, &user).await;
    assert_eq!(app.dispatch_webhooks().await, 1);
    let (headers, body) = receiver.calls().remove(1);
    assert_eq!(signature_of(&headers).matches("v1=").count(), 1);
    assert!(verifies(signature_of(&headers), &body, &newest));
    assert!(!verifies(signature_of(&headers), &body, &new_secret));
}

async fn an_endpoint_failing_too_long_is_disabled_and_the_others_told(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.webhook_disable_after = Duration::from_secs(1);
    })
    .await;
    let failing = Receiver::start().await;
    failing.answer(503);
    let watcher = Receiver::start().await;
    let (failing_id, _) = create_endpoint(&app, &failing.url, json!(["order.fulfilled"])).await;
    let (_, watcher_secret) =
        create_endpoint(&app, &watcher.url, json!(["endpoint.disabled"])).await;

    let user = app.funded_user("disable", 1_000_000).await;
    fulfilled_order(&app, &user).await;
    assert_eq!(app.dispatch_webhooks().await, 1);
    let shown = app
        .get(&format!("/webhooks/{failing_id}"), Some(&app.admin_token))
        .await;
    assert_eq!(shown.data()["enabled"], true);
    assert!(shown.data()["failingSince"].is_string(), "{}", shown.body);

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let delivery = deliveries(&app, &failing_id, "").await["deliveries"][0]["deliveryId"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/webhooks/{failing_id}/deliveries/{delivery}/retry"),
        Some(&app.admin_token),
        json!({}),
    )
    .await;
    assert!(
        app.dispatch_webhooks().await >= 2,
        "the failing attempt, then the notice"
    );

    let shown = app
        .get(&format!("/webhooks/{failing_id}"), Some(&app.admin_token))
        .await;
    assert_eq!(shown.data()["enabled"], false, "{}", shown.body);
    assert!(shown.data()["disabledReason"].is_string());
    let notices = watcher.events();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["eventType"], "endpoint.disabled");
    assert_eq!(notices[0]["endpointId"], failing_id.as_str());
    let (headers, body) = watcher.calls().remove(0);
    assert!(verifies(signature_of(&headers), &body, &watcher_secret));
    assert_eq!(
        failing.calls().len(),
        2,
        "the disabled endpoint got nothing about itself"
    );

    // A disabled endpoint is not sent to, and cannot be replayed until enabled again.
    fulfilled_order(&app, &user).await;
    app.dispatch_webhooks().await;
    assert_eq!(failing.calls().len(), 2);
    app.post(
        &format!("/webhooks/{failing_id}/deliveries/{delivery}/retry"),
        Some(&app.admin_token),
        json!({}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    failing.answer(200);
    let enabled = app
        .call(
            axum::http::Method::PATCH,
            &format!("/webhooks/{failing_id}"),
            Some(&app.admin_token),
            Some(json!({"enabled": true})),
            &[],
        )
        .await;
    assert_eq!(enabled.data()["enabled"], true);
    assert!(enabled.data()["failingSince"].is_null());
    let retried = app
        .post(
            &format!("/webhooks/{failing_id}/deliveries/{delivery}/retry"),
            Some(&app.admin_token),
            json!({}),
        )
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED);
    app.dispatch_webhooks().await;
    assert_eq!(failing.calls().len(), 3);
    let shown = app
        .get(
            &format!("/webhooks/{failing_id}/deliveries/{delivery}"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(shown.data()["status"], "DELIVERED");
}

/// A delivery whose wake-up was lost (an SQS send that failed, a dispatcher that died
/// mid-attempt) is found by the reconciler's sweep once overdue, and sent.
async fn the_reconciler_wakes_an_overdue_delivery(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    receiver.answer(500);
    let (id, _) = create_endpoint(&app, &receiver.url, json!(["order.fulfilled"])).await;
    let user = app.funded_user("overdue", 1_000_000).await;
    fulfilled_order(&app, &user).await;
    assert_eq!(app.dispatch_webhooks().await, 1);
    // Its retry was scheduled; pretend it came due ten minutes ago and its wake-up was lost.
    let giftify = app.stack.giftify();
    let endpoint = giftify_shared::ids::WebhookEndpointId::parse(&id).unwrap();
    let listed = deliveries(&app, &id, "").await;
    let delivery_id = giftify_shared::ids::WebhookDeliveryId::parse(
        listed["deliveries"][0]["deliveryId"].as_str().unwrap(),
    )
    .unwrap();
    let stored = giftify
        .ports
        .webhooks
        .delivery(&endpoint, &delivery_id)
        .await
        .unwrap();
    let overdue = stored.replayed(chrono::Utc::now() - chrono::Duration::minutes(10));
    giftify
        .ports
        .webhooks
        .save_delivery(&overdue)
        .await
        .unwrap();
    if backend == Backend::Aws {
        // The embedded dispatcher would find it by itself: it scans for due deliveries.
        assert_eq!(app.dispatch_webhooks().await, 0, "no wake-up is on its way");
    }

    receiver.answer(200);
    let report = giftify.reconcile().await.unwrap();
    assert_eq!(report.woken_deliveries, 1);
    assert_eq!(app.dispatch_webhooks().await, 1);
    let shown = deliveries(&app, &id, "?status=DELIVERED").await;
    assert_eq!(shown["pagination"]["total"], 1, "{shown}");
    assert_eq!(giftify.reconcile().await.unwrap().woken_deliveries, 0);
}

/// A recover longer than one step is walked with `after`: every event once, none skipped at
/// the step boundaries (one step sends at most 100).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_recover_goes_step_by_step_without_gaps() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    let (variant, price, _) = app.some_variant().await;
    app.set_stock(&variant, 1_000).await;
    let orders = 130;
    let user = app.funded_user("long-recover", price * orders).await;
    for _ in 0..orders {
        let created = app
            .order_items(&user, json!([{"variantId": variant, "quantity": 1}]))
            .await;
        assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
    }
    app.drain_queue().await;
    app.dispatch_webhooks().await;
    let receiver = Receiver::start().await;
    let (id, _) = create_endpoint(&app, &receiver.url, json!(["order.fulfilled"])).await;

    let mut after: Option<String> = None;
    let mut steps = Vec::new();
    loop {
        let mut body = json!({"since": since.to_rfc3339()});
        if let Some(cursor) = &after {
            body["after"] = json!(cursor);
        }
        let step = app
            .post(
                &format!("/webhooks/{id}/recover"),
                Some(&app.admin_token),
                body,
            )
            .await;
        assert_eq!(step.status, StatusCode::ACCEPTED, "{}", step.body);
        steps.push(step.data()["recovered"].as_u64().unwrap());
        after = Some(step.data()["nextCursor"].as_str().unwrap().to_string());
        if step.data()["hasMore"] == false {
            break;
        }
        assert!(steps.len() < 10, "the walk ends");
    }
    assert_eq!(steps, vec![100, 30]);
    while app.dispatch_webhooks().await > 0 {}
    let mut sent: Vec<String> = receiver
        .events()
        .iter()
        .map(|e| e["eventId"].as_str().unwrap().to_string())
        .collect();
    sent.sort();
    sent.dedup();
    assert_eq!(sent.len(), 130, "every event once");
    assert_eq!(receiver.calls().len(), 130, "and no event twice");
}

on_both_backends!(
    endpoints_are_managed_by_admins_with_clear_errors,
    a_delivery_is_signed_logged_and_replayable,
    recover_resends_every_event_since_a_time,
    during_a_rotation_both_secrets_sign,
    an_endpoint_failing_too_long_is_disabled_and_the_others_told,
    the_reconciler_wakes_an_overdue_delivery,
);

/// An embedded stack on `dir` started with one webhook URL and secret in its environment.
async fn with_environment_webhook(dir: tempfile::TempDir, url: &str, secret: &str) -> TestApp {
    TestApp::spawn_in(dir, |path| {
        let mut config = test_config(path);
        config.webhook_urls = vec![url.to_string()];
        config.webhook_secret = Some(secret.to_string().into());
        config
    })
    .await
}

/// The environment's URL and secret are ensured as an endpoint at start, listed like any
/// other, and a changed secret rotates it with the old one overlapping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_ensures_its_endpoint_and_the_dispatcher_delivers_to_it() {
    let receiver = Receiver::start().await;
    let app = with_environment_webhook(
        tempfile::tempdir().unwrap(),
        &receiver.url,
        "whsec_from_the_environment",
    )
    .await;
    let listed = app.get("/webhooks", Some(&app.admin_token)).await;
    let webhooks = listed.data()["webhooks"].as_array().unwrap().clone();
    assert_eq!(webhooks.len(), 1);
    assert_eq!(webhooks[0]["url"], receiver.url.as_str());
    assert_eq!(webhooks[0]["eventTypes"], json!(["*"]));
    assert!(webhooks[0]["createdBy"].is_null());

    let user = app.funded_user("env", 1_000_000).await;
    let order_id = fulfilled_order(&app, &user).await;
    // The product's own worker side delivers it.
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let stack = app.stack.clone();
    let worker = tokio::spawn(async move { stack.run_worker(shutdown).await });
    for _ in 0..100 {
        if !receiver.calls().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap();
    let (headers, body) = receiver.calls().remove(0);
    assert!(verifies(
        signature_of(&headers),
        &body,
        "whsec_from_the_environment"
    ));
    assert_eq!(receiver.events()[0]["orderId"], order_id.as_str());

    // Restarted with another secret: the same endpoint, rotated, the old secret overlapping.
    let TestApp { dir, stack, .. } = app;
    drop(stack);
    let app =
        with_environment_webhook(dir, &receiver.url, "whsec_rotated_by_the_environment").await;
    let listed = app.get("/webhooks", Some(&app.admin_token)).await;
    let webhooks = listed.data()["webhooks"].as_array().unwrap().clone();
    assert_eq!(webhooks.len(), 1, "ensured, not added again");
    assert_eq!(webhooks[0]["secrets"].as_array().unwrap().len(), 2);
    fulfilled_order(&app, &user).await;
    app.dispatch_webhooks().await;
    let (headers, body) = receiver.calls().remove(1);
    assert!(verifies(
        signature_of(&headers),
        &body,
        "whsec_rotated_by_the_environment"
    ));
    assert!(verifies(
        signature_of(&headers),
        &body,
        "whsec_from_the_environment"
    ));

    // An admin's rotation (say the environment's secret leaked) is not undone by the next
    // start with the same environment secret.
    let id = webhooks[0]["webhookId"].as_str().unwrap().to_string();
    let rotated = app
        .post(
            &format!("/webhooks/{id}/rotate-secret"),
            Some(&app.admin_token),
            json!({"overlapSeconds": 0}),
        )
        .await;
    let admins = rotated.data()["secret"].as_str().unwrap().to_string();
    let TestApp { dir, stack, .. } = app;
    drop(stack);
    let app =
        with_environment_webhook(dir, &receiver.url, "whsec_rotated_by_the_environment").await;
    fulfilled_order(&app, &user).await;
    app.dispatch_webhooks().await;
    let (headers, body) = receiver.calls().remove(2);
    assert!(verifies(signature_of(&headers), &body, &admins));
    assert!(!verifies(
        signature_of(&headers),
        &body,
        "whsec_rotated_by_the_environment"
    ));
}

/// The README's verification snippets, as printed, on a real delivery: each accepts it and
/// refuses it with a changed body or another secret. Python runs the harness already (moto);
/// Node is used when the machine has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_snippets_verify_a_real_delivery() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let receiver = Receiver::start().await;
    let (_, secret) = create_endpoint(&app, &receiver.url, json!(["*"])).await;
    // Two signatures, as during a rotation: the snippets must accept either.
    let rotated = app
        .post(
            &format!("/webhooks/{}/rotate-secret", app.get("/webhooks", Some(&app.admin_token)).await.data()["webhooks"][0]["webhookId"].as_str().unwrap()),
            Some(&app.admin_token),
            json!({"overlapSeconds": 600}),
        )
        .await;
    let new_secret = rotated.data()["secret"].as_str().unwrap().to_string();
    let user = app.funded_user("snippet", 1_000_000).await;
    fulfilled_order(&app, &user).await;
    assert_eq!(app.dispatch_webhooks().await, 1);
    let (headers, body) = receiver.calls().remove(0);
    let input = json!({
        "secrets": [secret, new_secret, "whsec_not_this_one"],
        "header": signature_of(&headers),
        "body": hex::encode(&body),
    })
    .to_string();

    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .unwrap();
    let section = &readme[readme
        .find("Verifying a delivery, in Python")
        .expect("the snippets")..];
    let block = |fence: &str| {
        let start = section
            .find(fence)
            .unwrap_or_else(|| panic!("no {fence} block"))
            + fence.len();
        section[start..][..section[start..].find("```").unwrap()].to_string()
    };
    let python = block("```python\n")
        + r#"
import json, sys
args = json.load(sys.stdin)
body = bytes.fromhex(args["body"])
print(json.dumps([verify(s, args["header"], body) for s in args["secrets"]]
                 + [verify(args["secrets"][0], args["header"], body + b" ")]))
"#;
    let node = block("```js\n")
        + r#"
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const args = JSON.parse(input);
  const body = Buffer.from(args.body, "hex");
  console.log(JSON.stringify(args.secrets.map((s) => verify(s, args.header, body))
    .concat([verify(args.secrets[0], args.header, Buffer.concat([body, Buffer.from(" ")]))])));
});
"#;
    let run = |program: &str, flag: &str, code: &str| -> Option<Value> {
        use std::io::Write;
        let mut child = match std::process::Command::new(program)
            .args([flag, code])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(error) => {
                println!("skipping the {program} snippet: {program} cannot run here ({error})");
                return None;
            }
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Some(serde_json::from_slice(&output.stdout).unwrap())
    };
    let expected = json!([true, true, false, false]);
    assert_eq!(
        run("python3", "-c", &python).expect("python3 runs the harness"),
        expected
    );
    if let Some(verdicts) = run("node", "-e", &node) {
        assert_eq!(verdicts, expected);
    }
}
