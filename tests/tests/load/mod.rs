//! Concurrent shoppers over HTTP for the process-level tests (crash and soak).
//!
//! Each shopper owns one user and loops over what a real client does: top up, order items,
//! fill the cart and check it out, cancel, poll an order, reveal a card, read its history,
//! and now and then send a request that must be refused. Every money-moving call carries an
//! `Idempotency-Key`, and a transport failure (the server was killed) is retried with the same
//! key, as a careful client would, so a retry can never pay twice.
//!
//! Every answer is tallied by endpoint, status and error code. An answer outside the set the
//! endpoint may legitimately give — any 5xx, an unexpected 4xx, a transport failure when no
//! process is being killed — is recorded as a violation, with the body, for the test to fail on.

use crate::invariants::Api;
use crate::support::{TestResponse, TestUser};
use giftify_tests::process::{ADMIN_EMAIL, ADMIN_PASSWORD, Http, HttpResponse};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

/// The password of every shopper.
pub const PASSWORD: &str = "correct horse battery";

/// The [`Api`] of the invariant checks, over HTTP. Only used once the system has settled, so
/// a transport failure here is a test failure.
pub struct HttpApi {
    pub http: Http,
    pub admin_token: String,
}

impl Api for HttpApi {
    fn get(&self, path: &str, token: Option<&str>) -> impl Future<Output = TestResponse> {
        let request = self.http.get(path, token);
        async move { into_test_response(request.await.expect("the settled API answers")) }
    }

    fn admin_token(&self) -> &str {
        &self.admin_token
    }
}

/// The harness's response type, for the invariant checks.
pub fn into_test_response(response: HttpResponse) -> TestResponse {
    TestResponse {
        status: axum::http::StatusCode::from_u16(response.status).expect("an HTTP status"),
        headers: response.headers,
        body: response.body,
    }
}

/// An orderable variant of the catalogue.
#[derive(Clone, Debug)]
pub struct Variant {
    pub id: String,
    pub max_quantity: u32,
}

/// What every shopper shares: the API, and whether processes are being killed under it.
pub struct Shop {
    pub http: Http,
    pub variants: Vec<Variant>,
    /// Transport failures are expected (and retried) only while processes are being killed.
    pub chaos: bool,
    /// Requests are retried after a transport failure until this instant at the latest.
    pub give_up_at: Instant,
}

/// What a shopper (or all of them, merged) saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Answers received.
    pub requests: u64,
    /// `"<method> <route> <status> <code>"` → count.
    pub outcomes: BTreeMap<String, u64>,
    /// Transport failures (each one retried, in chaos).
    pub transport_errors: u64,
    /// Requests abandoned without an answer (the server stayed down past `give_up_at`).
    pub abandoned: u64,
    /// Answers or failures no correct server gives here.
    pub violations: Vec<String>,
    /// Every order answered 202: (shopper index, order id).
    pub accepted_orders: Vec<(usize, String)>,
    /// Number and PIN of every card revealed, to search the logs for.
    pub revealed: Vec<(String, String)>,
    /// Latency of each answered request, in microseconds.
    pub latencies_us: Vec<u64>,
}

impl Tally {
    /// Adds another tally into this one.
    pub fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        for (key, count) in other.outcomes {
            *self.outcomes.entry(key).or_default() += count;
        }
        self.transport_errors += other.transport_errors;
        self.abandoned += other.abandoned;
        self.violations.extend(other.violations);
        self.accepted_orders.extend(other.accepted_orders);
        self.revealed.extend(other.revealed);
        self.latencies_us.extend(other.latencies_us);
    }

    /// Answers with a 5xx status.
    pub fn server_errors(&self) -> u64 {
        self.outcomes
            .iter()
            .filter(|(key, _)| key.split(' ').nth(2).is_some_and(|s| s.starts_with('5')))
            .map(|(_, count)| count)
            .sum()
    }

    /// The latency at quantile `q` (0–1), in milliseconds.
    pub fn latency_ms(&mut self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.sort_unstable();
        let index = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        self.latencies_us[index] as f64 / 1000.0
    }

    /// One line per outcome, for the test's report.
    pub fn outcome_lines(&self) -> String {
        self.outcomes
            .iter()
            .map(|(key, count)| format!("  {count:>7}  {key}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One request as a shopper sends it.
struct Call<'a> {
    method: Method,
    /// The route template, for the tally (`/orders/{orderId}`), not the raw path.
    route: &'static str,
    path: String,
    body: Option<Value>,
    idempotency_key: Option<String>,
    /// `(status, code)` answers this request may legitimately get besides 2xx.
    expected: &'a [(u16, &'a str)],
}

impl Shop {
    /// Sends `call`, retrying transport failures in chaos (with the same idempotency key),
    /// and tallies the answer. `None` when no answer came.
    async fn send(&self, token: &str, call: Call<'_>, tally: &mut Tally) -> Option<HttpResponse> {
        let mut headers = Vec::new();
        if let Some(key) = &call.idempotency_key {
            headers.push(("idempotency-key", key.as_str()));
        }
        loop {
            let started = Instant::now();
            let answer = self
                .http
                .send(
                    call.method.clone(),
                    &call.path,
                    Some(token),
                    call.body.as_ref(),
                    &headers,
                )
                .await;
            match answer {
                Ok(response) => {
                    tally.requests += 1;
                    tally
                        .latencies_us
                        .push(started.elapsed().as_micros() as u64);
                    let code = response.body["error"]["code"].as_str().unwrap_or("");
                    *tally
                        .outcomes
                        .entry(format!(
                            "{} {} {} {code}",
                            call.method, call.route, response.status
                        ))
                        .or_default() += 1;
                    let fine = (200..300).contains(&response.status)
                        || call.expected.contains(&(response.status, code))
                        // A killed API may die holding a key's lease; the retry must wait.
                        || (self.chaos && response.status == 409 && code == "IDEMPOTENCY_IN_PROGRESS");
                    if !fine {
                        tally.violations.push(format!(
                            "{} {} answered {}: {}",
                            call.method, call.path, response.status, response.body
                        ));
                    }
                    return Some(response);
                }
                Err(reason) => {
                    tally.transport_errors += 1;
                    if !self.chaos {
                        tally
                            .violations
                            .push(format!("{} {}: {reason}", call.method, call.path));
                        return None;
                    }
                    if Instant::now() >= self.give_up_at {
                        tally.abandoned += 1;
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Registers a user and returns it with its tokens. Panics on failure: shoppers are set up
/// before any process is killed.
pub async fn register(http: &Http, email: &str) -> TestUser {
    let response = http
        .post(
            "/auth/register",
            None,
            &json!({"email": email, "password": PASSWORD, "firstName": "Load", "lastName": "Tester"}),
        )
        .await
        .expect("register answers");
    assert_eq!(response.status, 200, "register: {}", response.body);
    let data = &response.body["data"];
    TestUser {
        id: data["userId"].as_str().expect("userId").into(),
        email: email.to_string(),
        token: data["accessToken"].as_str().expect("accessToken").into(),
        refresh_token: data["refreshToken"].as_str().expect("refreshToken").into(),
    }
}

/// Logs the admin in and returns the access token.
pub async fn admin_token(http: &Http) -> String {
    let response = http
        .post(
            "/auth/login",
            None,
            &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await
        .expect("login answers");
    assert_eq!(response.status, 200, "admin login: {}", response.body);
    response.body["data"]["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_string()
}

/// Every active variant of the catalogue whose stock an admin sets: Giftify's own GENERATED
/// cards (a brand variant's stock is its imported codes, 20 demo codes each).
pub async fn variants(http: &Http, token: &str) -> Vec<Variant> {
    let response = http
        .get("/products?limit=100", Some(token))
        .await
        .expect("products answer");
    assert_eq!(response.status, 200, "products: {}", response.body);
    response.body["data"]["products"]
        .as_array()
        .expect("products")
        .iter()
        .flat_map(|product| product["variants"].as_array().expect("variants").iter())
        .filter(|variant| variant["isActive"] == true)
        .filter(|variant| variant["fulfillmentSource"] == "GENERATED")
        .map(|variant| Variant {
            id: variant["variantId"].as_str().expect("variantId").into(),
            max_quantity: variant["maxOrderQuantity"].as_u64().expect("max") as u32,
        })
        .collect()
}

/// Access tokens live 15 minutes; shoppers of a long soak refresh well before that.
const REFRESH_EVERY: Duration = Duration::from_secs(10 * 60);

/// Shops as `user` until `until`, with a seeded mix of actions; returns what it saw, and the
/// user with its latest tokens.
pub async fn shopper(
    shop: &Shop,
    index: usize,
    mut user: TestUser,
    seed: u64,
    until: Instant,
) -> (Tally, TestUser) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    let mut keys = 0u64;
    let mut next_key = || {
        keys += 1;
        format!("shopper-{index}-{seed}-{keys}")
    };
    let mut orders: Vec<String> = Vec::new();
    let mut refreshed = Instant::now();
    while Instant::now() < until {
        if refreshed.elapsed() >= REFRESH_EVERY {
            refresh(shop, &mut user, &mut tally).await;
            refreshed = Instant::now();
        }
        let token = user.token.as_str();
        let roll = rng.gen_range(0..100);
        match roll {
            0..=14 => {
                let amount = rng.gen_range(100_000..=1_000_000);
                shop.send(
                    token,
                    Call {
                        method: Method::POST,
                        route: "/wallet/topup",
                        path: "/wallet/topup".into(),
                        body: Some(json!({"amount": amount})),
                        idempotency_key: Some(next_key()),
                        expected: &[(422, "WALLET_LIMIT_EXCEEDED")],
                    },
                    &mut tally,
                )
                .await;
            }
            15..=49 => {
                let variant = &shop.variants[rng.gen_range(0..shop.variants.len())];
                let quantity = rng.gen_range(1..=variant.max_quantity.min(3));
                let placed = shop
                    .send(
                        token,
                        Call {
                            method: Method::POST,
                            route: "/orders/create",
                            path: "/orders/create".into(),
                            body: Some(
                                json!({"items": [{"variantId": variant.id, "quantity": quantity}]}),
                            ),
                            idempotency_key: Some(next_key()),
                            expected: &[(409, "OUT_OF_STOCK"), (422, "INSUFFICIENT_BALANCE")],
                        },
                        &mut tally,
                    )
                    .await;
                accept(&mut tally, &mut orders, index, placed);
            }
            50..=64 => {
                let variant = &shop.variants[rng.gen_range(0..shop.variants.len())];
                let quantity = rng.gen_range(1..=variant.max_quantity.min(2));
                shop.send(
                    token,
                    Call {
                        method: Method::PUT,
                        route: "/cart/manage",
                        path: "/cart/manage".into(),
                        body: Some(json!({"variantId": variant.id, "quantity": quantity})),
                        idempotency_key: None,
                        expected: &[(409, "CART_LOCKED"), (409, "OUT_OF_STOCK")],
                    },
                    &mut tally,
                )
                .await;
                let placed = shop
                    .send(
                        token,
                        Call {
                            method: Method::POST,
                            route: "/orders/create",
                            path: "/orders/create".into(),
                            body: Some(json!({})),
                            idempotency_key: Some(next_key()),
                            expected: &[
                                (409, "CART_LOCKED"),
                                (409, "CART_EMPTY"),
                                (409, "OUT_OF_STOCK"),
                                (422, "INSUFFICIENT_BALANCE"),
                            ],
                        },
                        &mut tally,
                    )
                    .await;
                accept(&mut tally, &mut orders, index, placed);
            }
            65..=74 => {
                let Some(order) = orders.last().cloned() else {
                    continue;
                };
                shop.send(
                    token,
                    Call {
                        method: Method::POST,
                        route: "/orders/{orderId}/cancel",
                        path: format!("/orders/{order}/cancel"),
                        body: None,
                        idempotency_key: Some(next_key()),
                        expected: &[(409, "ORDER_NOT_CANCELLABLE")],
                    },
                    &mut tally,
                )
                .await;
            }
            75..=84 => {
                let Some(order) = orders.get(rng.gen_range(0..orders.len().max(1))).cloned() else {
                    continue;
                };
                let redeem = rng.gen_bool(0.4);
                poll_and_reveal(shop, token, &order, redeem, &mut tally).await;
            }
            85..=89 => {
                let Some(order) = orders.get(rng.gen_range(0..orders.len().max(1))).cloned() else {
                    continue;
                };
                return_a_card(shop, token, &order, &mut tally).await;
            }
            90..=94 => {
                let path = if rng.gen_bool(0.5) {
                    "/wallet/transactions?limit=20"
                } else {
                    "/orders?limit=20"
                };
                shop.send(
                    token,
                    Call {
                        method: Method::GET,
                        route: if path.starts_with("/wallet") {
                            "/wallet/transactions"
                        } else {
                            "/orders"
                        },
                        path: path.into(),
                        body: None,
                        idempotency_key: None,
                        expected: &[],
                    },
                    &mut tally,
                )
                .await;
            }
            _ => refused_request(shop, token, &mut rng, &mut tally).await,
        }
    }
    (tally, user)
}

/// Rotates the user's refresh token for a new pair.
async fn refresh(shop: &Shop, user: &mut TestUser, tally: &mut Tally) {
    let body = json!({"refreshToken": user.refresh_token});
    let Some(response) = shop
        .send(
            &user.token,
            Call {
                method: Method::POST,
                route: "/auth/refresh",
                path: "/auth/refresh".into(),
                body: Some(body),
                idempotency_key: None,
                expected: &[],
            },
            tally,
        )
        .await
    else {
        return;
    };
    if let (Some(access), Some(refresh)) = (
        response.body["data"]["accessToken"].as_str(),
        response.body["data"]["refreshToken"].as_str(),
    ) {
        user.token = access.to_string();
        user.refresh_token = refresh.to_string();
    }
}

/// Records a 202 as an accepted order.
fn accept(tally: &mut Tally, orders: &mut Vec<String>, index: usize, placed: Option<HttpResponse>) {
    if let Some(response) = placed.filter(|r| r.status == 202) {
        let id = response.body["data"]["orderId"]
            .as_str()
            .expect("orderId")
            .to_string();
        if !orders.contains(&id) {
            orders.push(id.clone());
            tally.accepted_orders.push((index, id));
        }
    }
}

/// The order's detail, as its owner sees it.
async fn order_detail(
    shop: &Shop,
    token: &str,
    order: &str,
    tally: &mut Tally,
) -> Option<HttpResponse> {
    shop.send(
        token,
        Call {
            method: Method::GET,
            route: "/orders/{orderId}",
            path: format!("/orders/{order}"),
            body: None,
            idempotency_key: None,
            expected: &[],
        },
        tally,
    )
    .await
}

/// Reads an order; once it has cards, reveals the first and keeps its secrets for the
/// log search, and with `redeem` redeems it into the shopper's own wallet.
async fn poll_and_reveal(shop: &Shop, token: &str, order: &str, redeem: bool, tally: &mut Tally) {
    let Some(detail) = order_detail(shop, token, order, tally).await else {
        return;
    };
    let Some(card) = detail.body["data"]["giftCards"][0]["giftCardId"].as_str() else {
        return;
    };
    let revealed = shop
        .send(
            token,
            Call {
                method: Method::POST,
                route: "/orders/{orderId}/gift-cards/{giftCardId}/reveal",
                path: format!("/orders/{order}/gift-cards/{card}/reveal"),
                body: None,
                idempotency_key: None,
                // Another action may have returned it.
                expected: &[(409, "CARD_CANCELLED")],
            },
            tally,
        )
        .await;
    let data = revealed.as_ref().map(|r| &r.body["data"]);
    let Some((Some(number), Some(pin))) =
        data.map(|d| (d["giftCardNumber"].as_str(), d["giftCardPin"].as_str()))
    else {
        return;
    };
    tally.revealed.push((number.to_string(), pin.to_string()));
    if redeem {
        shop.send(
            token,
            Call {
                method: Method::POST,
                route: "/gift-cards/redeem",
                path: "/gift-cards/redeem".into(),
                body: Some(json!({"giftCardNumber": number, "giftCardPin": pin})),
                idempotency_key: None,
                expected: &[
                    (409, "CARD_REDEEMED"),
                    (409, "CARD_CANCELLED"),
                    (422, "WALLET_LIMIT_EXCEEDED"),
                    (429, "RATE_LIMITED"),
                ],
            },
            tally,
        )
        .await;
    }
}

/// Returns the order's last card that is ACTIVE and was never revealed, if it has one.
async fn return_a_card(shop: &Shop, token: &str, order: &str, tally: &mut Tally) {
    let Some(detail) = order_detail(shop, token, order, tally).await else {
        return;
    };
    let Some(card) = detail.body["data"]["giftCards"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .find(|c| c["status"] == "ACTIVE" && c["revealedAt"].is_null())
        .and_then(|c| c["giftCardId"].as_str())
    else {
        return;
    };
    shop.send(
        token,
        Call {
            method: Method::POST,
            route: "/orders/{orderId}/gift-cards/{giftCardId}/return",
            path: format!("/orders/{order}/gift-cards/{card}/return"),
            body: None,
            idempotency_key: None,
            // A reveal or return of the same card may have come first.
            expected: &[(409, "CARD_REVEALED"), (409, "CARD_CANCELLED")],
        },
        tally,
    )
    .await;
}

/// A request a correct server must refuse with a 4xx: someone else's (made-up) order, a
/// zero top-up, an unknown field, a malformed id.
async fn refused_request(shop: &Shop, token: &str, rng: &mut StdRng, tally: &mut Tally) {
    let call = match rng.gen_range(0..4) {
        0 => Call {
            method: Method::GET,
            route: "/orders/{orderId}",
            path: format!("/orders/order_{}", ulid::Ulid::new()),
            body: None,
            idempotency_key: None,
            expected: &[(404, "NOT_FOUND")],
        },
        1 => Call {
            method: Method::POST,
            route: "/wallet/topup",
            path: "/wallet/topup".into(),
            body: Some(json!({"amount": 0})),
            idempotency_key: None,
            expected: &[(400, "VALIDATION_ERROR")],
        },
        2 => Call {
            method: Method::POST,
            route: "/wallet/topup",
            path: "/wallet/topup".into(),
            body: Some(json!({"amount": 100, "walletBalance": 99_999_999})),
            idempotency_key: None,
            expected: &[(400, "VALIDATION_ERROR")],
        },
        _ => Call {
            method: Method::POST,
            route: "/orders/{orderId}/cancel",
            path: "/orders/not-an-order/cancel".into(),
            body: None,
            idempotency_key: None,
            expected: &[(400, "VALIDATION_ERROR")],
        },
    };
    let answered = shop.send(token, call, tally).await;
    if let Some(response) = answered.filter(|r| (200..300).contains(&r.status)) {
        tally.violations.push(format!(
            "a request that must be refused succeeded: {}",
            response.body
        ));
    }
}

/// Polls the admin order list until no order is PENDING or PROCESSING. A backlog that keeps
/// shrinking is waited for (up to `limit`); one that makes no progress for `stall` is stuck,
/// and the error says how many orders are open and shows some of them.
pub async fn wait_until_settled(
    http: &Http,
    admin_token: &str,
    stall: Duration,
    limit: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    let mut fewest = u64::MAX;
    let mut progressed = Instant::now();
    loop {
        let mut open = 0;
        for status in ["PENDING", "PROCESSING"] {
            match http
                .get(
                    &format!("/admin/orders?status={status}&limit=1"),
                    Some(admin_token),
                )
                .await
            {
                Ok(r) if r.status == 200 => {
                    open += r.body["data"]["pagination"]["total"].as_u64().unwrap_or(1);
                }
                _ => open += 1,
            }
        }
        if open == 0 {
            return Ok(());
        }
        if open < fewest {
            fewest = open;
            progressed = Instant::now();
        }
        if progressed.elapsed() >= stall || started.elapsed() >= limit {
            let mut some = Vec::new();
            for status in ["PENDING", "PROCESSING"] {
                let page = http
                    .get(
                        &format!("/admin/orders?status={status}&limit=100"),
                        Some(admin_token),
                    )
                    .await
                    .map(|r| r.body["data"]["orders"].to_string())
                    .unwrap_or_default();
                some.push(format!("{status}: {}", &page[..page.len().min(1500)]));
            }
            return Err(format!(
                "{open} orders still open after {:.0} s ({:.0} s without progress): {}",
                started.elapsed().as_secs_f64(),
                progressed.elapsed().as_secs_f64(),
                some.join("\n")
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What in `log` looks like one of the `revealed` cards' secrets, in one pass over the log:
/// a card number (Giftify's `GFY-…` or a brand's code, with or without dashes), or a PIN
/// quoted or next to the word "pin". A PIN may be all digits, so a bare run of them could be
/// an amount; these are the shapes a leak takes.
pub fn card_secret_leaks(log: &str, revealed: &[(String, String)]) -> Vec<String> {
    use std::collections::HashSet;
    let numbers: HashSet<String> = revealed
        .iter()
        .flat_map(|(number, _)| [number.clone(), number.replace('-', "")])
        .collect();
    let pins: HashSet<&str> = revealed
        .iter()
        .map(|(_, pin)| pin.as_str())
        .filter(|pin| !pin.is_empty())
        .collect();
    let bytes = log.as_bytes();
    let in_token = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
    let mut leaks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_alphanumeric() || (i > 0 && in_token(bytes[i - 1])) {
            i += 1;
            continue;
        }
        // A maximal run of letters, digits and dashes starting here.
        let mut end = i;
        while end < bytes.len() && in_token(bytes[end]) {
            end += 1;
        }
        let run = log[i..end].trim_end_matches('-');
        if numbers.contains(run) {
            leaks.push(format!("card number at byte {i}"));
        }
        if pins.contains(run) {
            let quoted = i > 0 && bytes[i - 1] == b'"' && bytes.get(i + run.len()) == Some(&b'"');
            let named = log[i.saturating_sub(40)..i].to_lowercase().contains("pin");
            if quoted || named {
                leaks.push(format!("PIN at byte {i}"));
            }
        }
        i = end.max(i + 1);
    }
    leaks
}
