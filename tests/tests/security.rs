//! Security tests: an attacker's view of the API, through the router `giftify serve` runs, on
//! both backends (embedded SQLite, and AWS on moto) unless a case is about one of them.
//!
//! - `tokens`: forged, tampered, confused-algorithm, wrong-key and expired access tokens;
//! - `sessions`: refresh-token reuse and rotation races, login brute force (also in parallel);
//! - `idor`: every id-bearing endpoint with another user's ids, and idempotency keys across
//!   users;
//! - `mass_assignment`: privileged fields in every body;
//! - `hostile_input`: oversized and deep bodies, malformed JSON, unicode and control
//!   characters, negative and overflowing numbers, SQL-looking strings — then the data is
//!   checked intact;
//! - `races`: the same money-moving request many times at once;
//! - `secrets`: card numbers and PINs (and passwords and tokens) never in logs at TRACE level,
//!   never at rest in plaintext (the raw SQLite file, the raw DynamoDB items).
//!
//! Every case counts the attacks it tries and prints the figure (`--show-output`).

#[path = "security/hostile_input.rs"]
mod hostile_input;
#[path = "security/idor.rs"]
mod idor;
#[path = "api/invariants.rs"]
mod invariants;
#[path = "security/mass_assignment.rs"]
mod mass_assignment;
#[path = "security/races.rs"]
mod races;
#[path = "security/secrets.rs"]
mod secrets;
#[path = "security/sessions.rs"]
mod sessions;
#[allow(dead_code)]
#[path = "api/support.rs"]
mod support;
#[path = "security/tokens.rs"]
mod tokens;

use crate::support::{Backend, Stack, TestApp, TestResponse, TestUser};
use axum::http::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

/// Counts the attacks one case tries, and prints the count when the case ends.
pub struct Attacks {
    case: &'static str,
    backend: Backend,
    tried: usize,
}

impl Attacks {
    pub fn new(case: &'static str, backend: Backend) -> Attacks {
        Attacks {
            case,
            backend,
            tried: 0,
        }
    }

    /// One more attack tried.
    pub fn tried(&mut self) {
        self.tried += 1;
    }
}

impl Drop for Attacks {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            println!(
                "attacks tried: {} ({}, {:?})",
                self.tried, self.case, self.backend
            );
        }
    }
}

/// The HS256 key of the app's access tokens, for forging tokens the way an attacker who
/// knows (or guesses) it would.
pub fn jwt_secret(app: &TestApp) -> String {
    match &app.stack {
        Stack::Embedded(stack) => stack
            .secrets
            .jwt_secret()
            .unwrap()
            .expose_secret()
            .to_string(),
        Stack::Aws { stack, .. } => stack
            .runtime
            .secrets
            .jwt_secret()
            .unwrap()
            .expose_secret()
            .to_string(),
    }
}

/// A user with money and one fulfilled order with cards: (user, order id, card ids).
pub async fn user_with_cards(app: &TestApp, prefix: &str) -> (TestUser, String, Vec<String>) {
    let user = app.funded_user(prefix, 1_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 2}]))
        .await;
    assert_eq!(created.status, 202, "{}", created.body);
    let order = created.data()["orderId"]
        .as_str()
        .expect("orderId")
        .to_string();
    app.drain_queue().await;
    let detail = app.order(&user, &order).await;
    assert_eq!(detail.data()["status"], "FULFILLED", "{}", detail.body);
    let cards = detail.data()["giftCards"]
        .as_array()
        .expect("giftCards")
        .iter()
        .map(|card| card["giftCardId"].as_str().expect("giftCardId").to_string())
        .collect();
    (user, order, cards)
}

/// A request with a raw body and content type.
pub async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: impl Into<axum::body::Body>,
) -> TestResponse {
    let mut builder = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    app.send(builder.body(body.into()).expect("request")).await
}

/// Asserts a 4xx error envelope (never 2xx, never 5xx).
#[track_caller]
pub fn assert_refused(response: &TestResponse, what: &str) {
    assert!(
        response.status.is_client_error(),
        "{what}: expected a 4xx, got {} {}",
        response.status,
        response.body
    );
    assert_eq!(response.body["success"], false, "{what}: {}", response.body);
    assert!(
        response.body["error"]["code"].is_string(),
        "{what}: {}",
        response.body
    );
}

/// The profile of a user, as JSON.
pub async fn profile(app: &TestApp, user: &TestUser) -> Value {
    app.get("/users/profile", Some(&user.token))
        .await
        .data()
        .clone()
}
