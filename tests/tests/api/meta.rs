//! Health, OpenAPI, docs, metrics, and the envelope for everything that is not a handler's
//! answer: unknown routes, wrong methods, malformed and oversized bodies.

use crate::support::{Backend, TestApp};
use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::json;

async fn health_reports_ok(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.get("/health", None).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.data()["status"], "ok");
}

async fn the_openapi_document_lists_every_endpoint_and_docs_render_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let spec = app.get("/openapi.json", None).await;
    assert_eq!(spec.status, 200);
    assert!(spec.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec.body["paths"].as_object().unwrap();
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/users/profile",
        "/wallet/balance",
        "/wallet/topup",
        "/wallet/transactions",
        "/products",
        "/cart",
        "/cart/manage",
        "/cart/clear",
        "/orders/create",
        "/orders",
        "/orders/{orderId}",
        "/orders/{orderId}/cancel",
        "/orders/{orderId}/gift-cards/{giftCardId}/reveal",
        "/admin/inventory",
        "/admin/inventory/{variantId}",
        "/admin/orders",
        "/admin/analytics",
        "/admin/products",
        "/admin/products/{productId}/variants",
        "/health",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from /openapi.json"
        );
    }
    let docs = app.get("/docs", None).await;
    assert_eq!(docs.status, 200);
    assert!(docs.body.as_str().unwrap().contains("/openapi.json"));
}

async fn metrics_are_prometheus_text_with_latency_orders_and_queue_depth(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("metrics", 100_000).await;
    let (variant, _, _) = app.some_variant().await;
    app.order_items(&user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let metrics = app.get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.body.as_str().unwrap();
    for name in [
        "giftify_http_request_duration_seconds_bucket",
        "giftify_orders",
        "giftify_queue_depth",
        "giftify_dead_letter_depth",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(text.contains("route=\"/wallet/topup\""), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("giftify_queue_depth") && l.ends_with(" 1")),
        "{text}"
    );
}

/// The Grafana dashboard (docs/grafana/giftify.json) charts only series that `/metrics` serves,
/// with the labels it queries by: a renamed metric or label fails here, not on an operator's
/// screen. 429s are their own status class, so throttling has its panel.
async fn the_grafana_dashboard_queries_only_what_metrics_serves(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("grafana", 100_000).await;
    for _ in 0..6 {
        // Past the login lock (5 failures): a 429.
        app.post(
            "/auth/login",
            None,
            json!({"email": user.email, "password": "wrong-password-1"}),
        )
        .await;
    }
    app.get("/nope", None).await;
    let text = app
        .get("/metrics", None)
        .await
        .body
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("status=\"429\""), "{text}");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/giftify.json"),
        )
        .expect("the dashboard file"),
    )
    .expect("dashboard JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6);
    for panel in panels {
        assert!(
            panel["description"].as_str().is_some_and(|d| !d.is_empty()),
            "every panel says what it shows: {}",
            panel["title"]
        );
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let names: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("giftify_"))
                .collect();
            assert!(!names.is_empty(), "{expr}");
            for name in names {
                assert!(
                    text.lines().any(|line| line.starts_with(name)),
                    "{name} (panel {}) is not served:\n{text}",
                    panel["title"]
                );
            }
            for label in [
                "status=\"429\"",
                "status=\"5xx\"",
                "route=\"/orders/create\"",
            ] {
                if expr.contains(label) {
                    let (key, _) = label.split_once('=').expect("label");
                    assert!(text.contains(&format!("{key}=")), "{label}");
                }
            }
        }
    }
}

async fn unknown_routes_and_methods_answer_with_the_envelope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.get("/nope", None).await.assert_error(404, "NOT_FOUND");
    let response = app
        .call(
            Method::DELETE,
            "/products",
            Some(&app.admin_token),
            None,
            &[],
        )
        .await;
    assert_eq!(response.status, 405);
    assert_eq!(response.body["success"], false);
}

async fn malformed_or_oversized_bodies_are_4xx_with_the_envelope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("bodies").await;
    let raw = |body: Body, content_type: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/wallet/topup")
            .header("authorization", format!("Bearer {}", user.token))
            .header("content-type", content_type)
            .body(body)
            .unwrap()
    };
    app.send(raw(Body::from("{not json"), "application/json"))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.send(raw(Body::from("{\"amount\": 100}"), "text/plain"))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    app.send(raw(Body::from(deep), "application/json"))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let huge = format!(
        "{{\"amount\": 100, \"description\": \"{}\"}}",
        "x".repeat(200_000)
    );
    app.send(raw(Body::from(huge), "application/json"))
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    let control = json!({"amount": 100, "description": "bad\u{0007}bell"});
    app.post("/wallet/topup", Some(&user.token), control)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    assert_eq!(app.balance(&user).await, 0);
}

crate::on_both_backends!(
    health_reports_ok,
    the_openapi_document_lists_every_endpoint_and_docs_render_it,
    metrics_are_prometheus_text_with_latency_orders_and_queue_depth,
    the_grafana_dashboard_queries_only_what_metrics_serves,
    unknown_routes_and_methods_answer_with_the_envelope,
    malformed_or_oversized_bodies_are_4xx_with_the_envelope,
);
