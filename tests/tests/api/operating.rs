//! What operators do without a shell: dead letters listed, redriven and refunded over the API,
//! and orders stuck past their deadline refunded by the reconciler — exactly once, even while a
//! fulfillment races it.

use crate::invariants::{assert_conserved, stock_by_variant};
use crate::support::{Backend, TestApp, TestUser};
use serde_json::json;

/// Places an order of one unit of `variant` and returns its id.
async fn place(app: &TestApp, user: &TestUser, variant: &str) -> String {
    let created = app
        .order_items(user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    assert_eq!(created.status, 202, "{:?}", created.body);
    created.data()["orderId"]
        .as_str()
        .expect("orderId")
        .to_string()
}

/// Receives and releases every queued message until the queue has dead-lettered them all (max
/// receives is 3 in tests), as a worker whose every attempt fails would. One user's messages
/// are one FIFO group, delivered one at a time.
async fn dead_letter_everything(app: &TestApp) {
    for _ in 0..20 {
        let received = app.receive().await;
        if received.is_empty() {
            return;
        }
        for delivery in received {
            app.release(&delivery, "brand API down").await;
        }
    }
    panic!("the queue kept delivering after 20 rounds of failures");
}

async fn an_admin_lists_redrives_and_refunds_dead_letters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let initial = stock_by_variant(&app).await;
    let user = app.funded_user("dead", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let retried = place(&app, &user, &variant).await;
    let given_up = place(&app, &user, &variant).await;
    dead_letter_everything(&app).await;

    app.get("/admin/dead-letters", Some(&user.token))
        .await
        .assert_error(403, "FORBIDDEN");
    app.get("/admin/dead-letters?limit=0", Some(&app.admin_token))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let listed = app.get("/admin/dead-letters", Some(&app.admin_token)).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let letters = listed.data()["deadLetters"]
        .as_array()
        .expect("letters")
        .clone();
    assert_eq!(letters.len(), 2, "{letters:?}");
    let mut orders: Vec<&str> = letters
        .iter()
        .map(|l| l["orderId"].as_str().expect("orderId"))
        .collect();
    orders.sort_unstable();
    let mut expected = vec![retried.as_str(), given_up.as_str()];
    expected.sort_unstable();
    assert_eq!(orders, expected);
    for letter in &letters {
        assert_eq!(letter["userId"], user.id.as_str());
        assert_eq!(letter["orderStatus"], "PENDING");
        assert_eq!(letter["paidAmount"], price);
        assert_eq!(letter["lastError"], "brand API down");
        assert!(letter["receiveCount"].as_u64().expect("receives") >= 3);
        assert!(letter["deadSince"].is_string(), "{letter}");
    }

    let redriven = app
        .post(
            &format!("/admin/dead-letters/{retried}/redrive"),
            Some(&app.admin_token),
            json!({}),
        )
        .await;
    assert_eq!(redriven.status, 202, "{:?}", redriven.body);
    assert_eq!(redriven.data()["orderId"], retried.as_str());
    app.post(
        &format!("/admin/dead-letters/{retried}/redrive"),
        Some(&app.admin_token),
        json!({}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.drain_queue().await;
    assert_eq!(
        app.order(&user, &retried).await.data()["status"],
        "FULFILLED"
    );

    let refund = |order: &str| format!("/admin/dead-letters/{order}/refund");
    app.post(
        &refund(&given_up),
        Some(&app.admin_token),
        json!({"reason": "  "}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        &refund("not-an-order"),
        Some(&app.admin_token),
        json!({"reason": "x"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        &refund("order_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        Some(&app.admin_token),
        json!({"reason": "x"}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.post(
        &refund(&given_up),
        Some(&user.token),
        json!({"reason": "mine"}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    let reason = "the brand cannot issue this card today";
    let refunded = app
        .post(
            &refund(&given_up),
            Some(&app.admin_token),
            json!({"reason": reason}),
        )
        .await;
    assert_eq!(refunded.status, 200, "{:?}", refunded.body);
    assert_eq!(refunded.data()["status"], "REFUNDED");
    assert_eq!(refunded.data()["refundAmount"], price);
    assert_eq!(refunded.data()["refundReason"], reason);
    assert_eq!(refunded.data()["removedDeadLetters"], 1);
    let seen = app.order(&user, &given_up).await;
    assert_eq!(seen.data()["status"], "REFUNDED");
    assert_eq!(seen.data()["refundAmount"], price);
    assert_eq!(seen.data()["fulfillmentDetails"]["refundReason"], reason);
    assert!(
        seen.data()["giftCards"]
            .as_array()
            .expect("cards")
            .is_empty()
    );
    let conflict = app
        .post(
            &refund(&retried),
            Some(&app.admin_token),
            json!({"reason": reason}),
        )
        .await;
    conflict.assert_error(409, "ORDER_ALREADY_FINAL");
    assert_eq!(conflict.body["error"]["details"]["status"], "FULFILLED");

    let empty = app.get("/admin/dead-letters", Some(&app.admin_token)).await;
    assert_eq!(empty.data()["deadLetters"], json!([]));
    let events = app.events().await;
    let refunds: Vec<_> = events
        .iter()
        .filter(|e| e["orderId"] == given_up.as_str())
        .collect();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["eventType"], "order.refunded");
    assert_eq!(refunds[0]["refundReason"], reason);
    assert_eq!(app.balance(&user).await, 1_000_000 - price);
    // Each step is in the audit log under the admin: the redrive, the refund, the letter the
    // refund removed.
    let log = app.get("/admin/audit", Some(&app.admin_token)).await;
    let entries = log.data()["entries"].as_array().expect("entries").clone();
    let of = |action: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| e["subject"].as_str().expect("subject").to_string())
            .collect()
    };
    assert_eq!(of("dead_letter.redriven"), vec![retried.clone()]);
    assert_eq!(of("order.refunded"), vec![given_up.clone()]);
    assert_eq!(of("dead_letter.deleted").len(), 1, "{entries:?}");
    assert_conserved(&app, &[user], &initial).await;
}

async fn the_reconciler_refunds_orders_stuck_past_their_deadline_exactly_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.stuck_order_refund_after = std::time::Duration::ZERO;
    })
    .await;
    let initial = stock_by_variant(&app).await;
    let user = app.funded_user("stuck", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let pending = place(&app, &user, &variant).await;
    let processing = place(&app, &user, &variant).await;
    let giftify = app.giftify();
    giftify
        .ports
        .orders
        .start_processing(&processing.parse().expect("id"), chrono::Utc::now())
        .await
        .expect("started");
    // Past the deadline of zero: created strictly before the reconciler's now.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    let report = giftify.reconcile().await.expect("reconcile");
    assert_eq!(report.refunded, 2, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(
        giftify.reconcile().await.expect("again").refunded,
        0,
        "once"
    );
    for order in [&pending, &processing] {
        let seen = app.order(&user, order).await;
        assert_eq!(seen.data()["status"], "REFUNDED");
        assert_eq!(seen.data()["refundAmount"], price);
        let reason = seen.data()["fulfillmentDetails"]["refundReason"]
            .as_str()
            .expect("a reason")
            .to_string();
        assert!(reason.contains("refunded automatically"), "{reason}");
    }
    // Their messages still arrive; the worker finds the orders final and issues nothing.
    app.drain_queue().await;
    for order in [&pending, &processing] {
        let seen = app.order(&user, order).await;
        assert_eq!(seen.data()["status"], "REFUNDED");
        assert!(
            seen.data()["giftCards"]
                .as_array()
                .expect("cards")
                .is_empty()
        );
    }
    let refunded_events = app
        .events()
        .await
        .into_iter()
        .filter(|e| e["eventType"] == "order.refunded")
        .count();
    assert_eq!(refunded_events, 2);
    assert_eq!(app.balance(&user).await, 1_000_000);
    assert_conserved(&app, &[user], &initial).await;
}

/// The reconciler's refund and the worker's fulfillment of one order, started together, again
/// and again: each order ends either fulfilled (card issued, money kept, stock taken) or
/// refunded (nothing issued, all money back), never both and never neither.
async fn a_stuck_order_refund_racing_its_fulfillment_ends_exactly_one_way(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.stuck_order_refund_after = std::time::Duration::ZERO;
    })
    .await;
    let initial = stock_by_variant(&app).await;
    let (variant, price, _) = app.some_variant().await;
    let rounds = match backend {
        Backend::Embedded => 40,
        Backend::Aws => 12,
    };
    let user = app.funded_user("race", price * rounds).await;
    let (mut fulfilled, mut refunded) = (0, 0);
    for round in 0..rounds {
        let order = place(&app, &user, &variant).await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        // The reconciler starts a little later each round, so it meets the fulfillment at every
        // step: before the start, between the start and the commit, after the commit.
        let lag = std::time::Duration::from_micros(100 * u64::try_from(round % 10).expect("lag"));
        let reconcile = async {
            tokio::time::sleep(lag).await;
            app.giftify().reconcile().await
        };
        let (_, reconciled) = tokio::join!(app.drain_queue(), reconcile);
        assert_eq!(reconciled.expect("reconcile").failed, 0);
        let seen = app.order(&user, &order).await;
        let cards = seen.data()["giftCards"].as_array().expect("cards").len();
        match seen.data()["status"].as_str().expect("status") {
            "FULFILLED" => {
                assert_eq!(cards, 1);
                assert_eq!(seen.data()["refundAmount"], 0);
                fulfilled += 1;
            }
            "REFUNDED" => {
                assert_eq!(cards, 0);
                assert_eq!(seen.data()["refundAmount"], price);
                refunded += 1;
            }
            other => panic!("order {order} ended {other}"),
        }
    }
    println!("{backend:?}: {fulfilled} fulfilled, {refunded} refunded of {rounds}");
    assert_eq!(fulfilled + refunded, rounds);
    assert_eq!(app.balance(&user).await, price * (rounds - fulfilled));
    assert_conserved(&app, &[user], &initial).await;
}

crate::on_both_backends!(
    every_admin_action_is_in_the_audit_log,
    an_admin_lists_redrives_and_refunds_dead_letters,
    the_reconciler_refunds_orders_stuck_past_their_deadline_exactly_once,
    a_stuck_order_refund_racing_its_fulfillment_ends_exactly_one_way,
);

/// Every admin action over the API, and the reconciler's refunds, are in the audit log with who,
/// what and the values before and after; the log filters and pages.
async fn every_admin_action_is_in_the_audit_log(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.stuck_order_refund_after = std::time::Duration::ZERO;
    })
    .await;
    let admin = &app.admin_token;
    let product = app
        .post(
            "/admin/products",
            Some(admin),
            json!({"name": "Nykaa", "description": "Nykaa Gift Card", "brand": "Nykaa",
                   "category": "BEAUTY", "imageUrl": "https://cdn.giftify.in/nykaa.jpg",
                   "thumbnailUrl": "https://cdn.giftify.in/nykaa-thumb.jpg",
                   "termsAndConditions": "Valid for 1 year.", "howToRedeem": "At checkout."}),
        )
        .await;
    assert_eq!(product.status, 201, "{:?}", product.body);
    let product_id = product.data()["productId"]
        .as_str()
        .expect("id")
        .to_string();
    let variant = app
        .post(
            &format!("/admin/products/{product_id}/variants"),
            Some(admin),
            json!({"name": "Nykaa 500", "denomination": 500, "mrp": 50_000, "costPrice": 45_000,
                   "discountPercent": 3, "minOrderQuantity": 1, "maxOrderQuantity": 5,
                   "fulfillmentSource": "INVENTORY"}),
        )
        .await;
    assert_eq!(variant.status, 201, "{:?}", variant.body);
    let variant_id = variant.data()["variantId"]
        .as_str()
        .expect("id")
        .to_string();
    let imported = crate::codes::import_json(
        &app,
        &variant_id,
        "AUDIT-1",
        json!([{"number": crate::codes::number()}, {"number": crate::codes::number()}]),
    )
    .await;
    assert_eq!(imported.status, 200, "{:?}", imported.body);
    let voided = app
        .post(
            &format!("/admin/variants/{variant_id}/code-batches/AUDIT-1/void"),
            Some(admin),
            json!({}),
        )
        .await;
    assert_eq!(voided.status, 200, "{:?}", voided.body);
    let changed = app
        .put(
            &format!("/admin/inventory/{variant_id}"),
            Some(admin),
            json!({"discountPercent": 5}),
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    let webhook = app
        .post(
            "/webhooks",
            Some(admin),
            json!({"url": "https://hooks.example.com/giftify", "eventTypes": ["*"]}),
        )
        .await;
    assert_eq!(webhook.status, 201, "{:?}", webhook.body);
    let webhook_id = webhook.data()["webhookId"]
        .as_str()
        .expect("id")
        .to_string();
    let secret = webhook.data()["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let deleted = app
        .call(
            axum::http::Method::DELETE,
            &format!("/webhooks/{webhook_id}"),
            Some(admin),
            None,
            &[],
        )
        .await;
    assert!(deleted.status.is_success(), "{:?}", deleted.body);
    // The reconciler gives up an order that nobody fulfilled.
    let user = app.funded_user("audited", 1_000_000).await;
    let (some_variant, _, _) = app.some_variant().await;
    let order = place(&app, &user, &some_variant).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        app.giftify().reconcile().await.expect("reconcile").refunded,
        1
    );

    app.get("/admin/audit", Some(&user.token))
        .await
        .assert_error(403, "FORBIDDEN");
    for bad in [
        "/admin/audit?from=yesterday",
        "/admin/audit?from=2026-01-01T00:00:00Z&to=2025-01-01T00:00:00Z",
        "/admin/audit?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "/admin/audit?actor=someone",
        "/admin/audit?action=order.eaten",
        "/admin/audit?cursor=nope",
        "/admin/audit?limit=201",
    ] {
        app.get(bad, Some(admin))
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    let log = app.get("/admin/audit?limit=200", Some(admin)).await;
    assert_eq!(log.status, 200, "{:?}", log.body);
    let entries = log.data()["entries"].as_array().expect("entries").clone();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    // Newest first; the admin account set up at start is the first entry of all.
    assert_eq!(
        actions,
        vec![
            "order.refunded",
            "webhook.deleted",
            "webhook.created",
            "inventory.changed",
            "code_batch.voided",
            "codes.imported",
            "variant.created",
            "product.created",
            "admin.set_up",
        ],
        "{entries:#?}"
    );
    let admin_id = entries[1]["actor"].as_str().expect("actor").to_string();
    assert!(admin_id.starts_with("user_"), "{admin_id}");
    let by = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .expect("the entry")
            .clone()
    };
    let refund = by("order.refunded");
    assert_eq!(refund["actor"], "reconciler");
    assert_eq!(refund["subject"], order.as_str());
    assert_eq!(refund["before"]["status"], "PENDING");
    assert_eq!(refund["after"]["status"], "REFUNDED");
    let change = by("inventory.changed");
    assert_eq!(change["subject"], variant_id.as_str());
    assert_eq!(change["before"]["discountPercent"], 3);
    assert_eq!(change["after"]["discountPercent"], 5);
    assert_eq!(change["before"]["sellingPrice"], 48_500);
    assert_eq!(change["after"]["sellingPrice"], 47_500);
    assert_eq!(by("codes.imported")["after"]["imported"], 2);
    assert_eq!(by("code_batch.voided")["after"]["voided"], 2);
    assert_eq!(by("product.created")["after"]["name"], "Nykaa");
    assert_eq!(
        by("webhook.deleted")["before"]["url"],
        "https://hooks.example.com/giftify"
    );
    assert!(
        !log.body.to_string().contains(&secret),
        "no webhook secret in the log"
    );
    assert_eq!(by("admin.set_up")["actor"], "cli");

    let filtered = app
        .get(
            &format!("/admin/audit?actor={admin_id}&action=inventory.changed&subject={variant_id}"),
            Some(admin),
        )
        .await;
    let only = filtered.data()["entries"].as_array().expect("entries");
    assert_eq!(only.len(), 1, "{only:?}");
    assert_eq!(only[0]["auditId"], change["auditId"]);
    // Paged two at a time, the pages add up to the whole log, in order.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/admin/audit?limit=2&cursor={c}"),
            None => "/admin/audit?limit=2".to_string(),
        };
        let page = app.get(&path, Some(admin)).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        paged.extend(page.data()["entries"].as_array().expect("entries").clone());
        match page.data()["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, entries);
    if backend == Backend::Embedded {
        // Append-only below the code too: the database refuses to rewrite or drop an entry.
        let db = app.raw_db();
        let refused = db.execute("DELETE FROM audit_log", []).unwrap_err();
        assert!(refused.to_string().contains("append-only"), "{refused}");
        assert!(db.execute("UPDATE audit_log SET body = '{}'", []).is_err());
    }
}
