//! API keys end to end: created by a signed-in person with the secret shown once, accepted as
//! a bearer token within their scopes, refused where they do not reach, revoked at once, and
//! held to their request budget with `Retry-After`.

use crate::support::{Backend, TestApp, TestUser};
use axum::http::Method;
use serde_json::{Value, json};

async fn create_key(app: &TestApp, user: &TestUser, scopes: &[&str]) -> (String, Value) {
    let created = app
        .post(
            "/api-keys",
            Some(&user.token),
            json!({"name": "server", "scopes": scopes}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let data = created.data().clone();
    (
        data["secret"].as_str().expect("the secret").to_string(),
        data,
    )
}

async fn a_key_acts_as_its_owner_within_its_scopes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("keys", 1_000_000).await;
    let (variant, price, _) = app.some_variant().await;
    let (secret, created) = create_key(&app, &user, &["orders:read", "orders:write"]).await;
    assert!(secret.starts_with("gk_live_"), "{secret}");
    assert_eq!(created["scopes"], json!(["orders:read", "orders:write"]));
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    assert!(created["lastUsedAt"].is_null());

    let placed = app
        .post(
            "/orders/create",
            Some(&secret),
            json!({"items": [{"variantId": variant, "quantity": 1}]}),
        )
        .await;
    assert_eq!(placed.status, 202, "{}", placed.body);
    let order_id = placed.data()["orderId"].as_str().unwrap().to_string();
    assert_eq!(
        app.balance(&user).await,
        1_000_000 - price,
        "paid from the owner's wallet"
    );
    let seen = app.get(&format!("/orders/{order_id}"), Some(&secret)).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(app.get("/products", Some(&secret)).await.status, 200);

    let balance = app.get("/wallet/balance", Some(&secret)).await;
    balance.assert_error(403, "INSUFFICIENT_SCOPE");
    assert_eq!(
        balance.body["error"]["details"]["requiredScope"],
        "wallet:read"
    );
    let reveal = app
        .post(
            &format!("/orders/{order_id}/gift-cards/gc_01HXXXXXXXXXXXXXXXXXXXXXXX/reveal"),
            Some(&secret),
            json!({}),
        )
        .await;
    reveal.assert_error(403, "INSUFFICIENT_SCOPE");
    assert_eq!(
        reveal.body["error"]["details"]["requiredScope"],
        "cards:reveal"
    );

    for (method, path) in [
        (Method::GET, "/api-keys"),
        (Method::POST, "/api-keys"),
        (Method::GET, "/users/profile"),
        (Method::GET, "/admin/orders"),
    ] {
        let refused = app
            .call(method, path, Some(&secret), Some(json!({})), &[])
            .await;
        refused.assert_error(403, "FORBIDDEN");
    }

    let listed = app.get("/api-keys", Some(&user.token)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let keys = listed.data()["apiKeys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0]["lastUsedAt"].is_string(), "its use is recorded");
    assert!(keys[0].get("secret").is_none());
    assert!(
        !listed
            .body
            .to_string()
            .contains(&secret[secret.len() - 64..]),
        "the secret is never listed"
    );
}

async fn a_revoked_key_is_refused_from_the_next_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("revoke", 1_000_000).await;
    let stranger = app.register("revoke-other").await;
    let (secret, created) = create_key(&app, &user, &["orders:read"]).await;
    let key_id = created["keyId"].as_str().unwrap();
    assert_eq!(app.get("/orders", Some(&secret)).await.status, 200);

    app.call(
        Method::DELETE,
        &format!("/api-keys/{key_id}"),
        Some(&stranger.token),
        None,
        &[],
    )
    .await
    .assert_error(404, "NOT_FOUND");
    assert_eq!(app.get("/orders", Some(&secret)).await.status, 200);

    let revoked = app
        .call(
            Method::DELETE,
            &format!("/api-keys/{key_id}"),
            Some(&user.token),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(revoked.data()["revokedAt"].is_string());
    let refused = app.get("/orders", Some(&secret)).await;
    refused.assert_error(401, "UNAUTHORIZED");
    assert!(refused.header("www-authenticate").is_some());

    let mut forged = secret.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    let (other, _) = create_key(&app, &user, &["orders:read"]).await;
    let mut wrong_secret = other.clone();
    let last = wrong_secret.pop().unwrap();
    wrong_secret.push(if last == '0' { '1' } else { '0' });
    for token in [
        forged.as_str(),
        wrong_secret.as_str(),
        "gk_live_nope",
        "gk_test_01HXXXXXXXXXXXXXXXXXXXXXXX_00",
        &other.replace("gk_live_", "gk_test_"),
    ] {
        app.get("/orders", Some(token))
            .await
            .assert_error(401, "UNAUTHORIZED");
    }
    assert_eq!(app.get("/orders", Some(&other)).await.status, 200);
}

async fn bad_key_requests_are_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("key-bad").await;
    for (body, field) in [
        (json!({"name": "", "scopes": ["cart"]}), "name"),
        (json!({"name": "k", "scopes": []}), "scopes"),
        (json!({"name": "k", "scopes": ["orders:delete"]}), "scopes"),
        (json!({"name": "n".repeat(101), "scopes": ["cart"]}), "name"),
    ] {
        let refused = app.post("/api-keys", Some(&user.token), body.clone()).await;
        refused.assert_error(400, "VALIDATION_ERROR");
        assert_eq!(refused.body["error"]["details"]["field"], field, "{body}");
    }
    app.post("/api-keys", Some(&user.token), json!({"name": "k"}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.call(
        Method::DELETE,
        "/api-keys/not-a-key",
        Some(&user.token),
        None,
        &[],
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post("/api-keys", None, json!({"name": "k", "scopes": ["cart"]}))
        .await
        .assert_error(401, "UNAUTHORIZED");
}

/// The budget is counted in fixed 10-second windows: within 11 requests (which take far less
/// than a window) the sixth of some window is refused, whichever window the test starts in.
async fn a_key_past_its_budget_is_429_with_retry_after(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.api_key_rate_limit = 5).await;
    let user = app.register("key-rate").await;
    let (secret, _) = create_key(&app, &user, &["orders:read"]).await;
    let (other, _) = create_key(&app, &user, &["orders:read"]).await;
    let mut answered = 0;
    let mut limited = None;
    for _ in 0..11 {
        let response = app.get("/orders", Some(&secret)).await;
        if response.status == 429 {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status, 200, "{}", response.body);
        answered += 1;
    }
    let limited = limited.expect("a request past the budget is refused");
    limited.assert_error(429, "RATE_LIMITED");
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    assert!(
        (5..=10).contains(&answered),
        "five per window, one or two windows: {answered}"
    );
    assert_eq!(
        app.get("/orders", Some(&other)).await.status,
        200,
        "another key has its own budget"
    );
    assert_eq!(
        app.get("/orders", Some(&user.token)).await.status,
        200,
        "the person's own token is not the key's budget"
    );
}

/// At most 20 live keys a person; a revoked one frees its place. A key whose owner is
/// suspended is refused at once, like the owner's own token.
async fn keys_are_capped_and_die_with_their_owners_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("key-cap").await;
    let mut keys = Vec::new();
    for _ in 0..20 {
        keys.push(create_key(&app, &user, &["orders:read"]).await);
    }
    let refused = app
        .post(
            "/api-keys",
            Some(&user.token),
            json!({"name": "one too many", "scopes": ["orders:read"]}),
        )
        .await;
    refused.assert_error(400, "VALIDATION_ERROR");
    assert_eq!(refused.body["error"]["details"]["field"], "apiKeys");
    let first = keys[0].1["keyId"].as_str().unwrap().to_string();
    let revoked = app
        .call(
            Method::DELETE,
            &format!("/api-keys/{first}"),
            Some(&user.token),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let (replacement, _) = create_key(&app, &user, &["orders:read"]).await;
    assert_eq!(app.get("/orders", Some(&replacement)).await.status, 200);

    app.set_account(&user.id, "USER", "SUSPENDED").await;
    app.get("/orders", Some(&replacement))
        .await
        .assert_error(403, "ACCOUNT_SUSPENDED");
    app.get("/orders", Some(&keys[1].0))
        .await
        .assert_error(403, "ACCOUNT_SUSPENDED");
    app.set_account(&user.id, "USER", "ACTIVE").await;
    assert_eq!(
        app.get("/orders", Some(&replacement)).await.status,
        200,
        "the keys work again once the account is"
    );
}

crate::on_both_backends!(
    keys_are_capped_and_die_with_their_owners_account,
    a_key_acts_as_its_owner_within_its_scopes,
    a_revoked_key_is_refused_from_the_next_request,
    bad_key_requests_are_400,
    a_key_past_its_budget_is_429_with_retry_after,
);
