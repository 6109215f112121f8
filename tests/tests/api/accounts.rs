//! Support's administration of accounts over the API: finding an account, suspending it (held
//! from its very next request, whatever credential it uses) and reactivating it, correcting a
//! balance with an ADJUSTMENT, a shop that turns customers' own top-ups off, and each
//! customer's budget for the costly actions.

use crate::invariants::{assert_conserved, stock_by_variant};
use crate::support::{Backend, PASSWORD, TestApp, TestUser};
use axum::http::Method;
use serde_json::{Value, json};

/// The audit entries of `action` about `subject`, newest first.
async fn audited(app: &TestApp, action: &str, subject: &str) -> Vec<Value> {
    let log = app
        .get(
            &format!("/admin/audit?action={action}&subject={subject}"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(log.status, 200, "{:?}", log.body);
    log.data()["entries"].as_array().expect("entries").clone()
}

async fn login(app: &TestApp, email: &str, password: &str) -> crate::support::TestResponse {
    app.post(
        "/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

async fn refresh(app: &TestApp, token: &str) -> crate::support::TestResponse {
    app.post("/auth/refresh", None, json!({"refreshToken": token}))
        .await
}

async fn support_finds_suspends_and_reactivates_an_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token.clone();
    let user = app.funded_user("support", 100_000).await;
    let (variant, _, _) = app.some_variant().await;
    let placed = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    assert_eq!(placed.status, 202, "{:?}", placed.body);
    app.drain_queue().await;

    app.get("/admin/users", Some(&user.token))
        .await
        .assert_error(403, "FORBIDDEN");
    for bad in [
        "/admin/users?email=not-an-address",
        "/admin/users?limit=0",
        "/admin/users?limit=101",
        "/admin/users?cursor=order_01HXXXXXXXXXXXXXXXXXXXXXXX",
    ] {
        app.get(bad, Some(&admin))
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    let found = app
        .get(
            &format!("/admin/users?email={}", user.email.to_uppercase()),
            Some(&admin),
        )
        .await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    let users = found.data()["users"].as_array().expect("users");
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["userId"], user.id.as_str());
    assert_eq!(users[0]["status"], "ACTIVE");
    assert_eq!(users[0]["walletBalance"], app.balance(&user).await);

    // Paging one at a time reaches the user, each account once.
    let mut seen = Vec::new();
    let mut path = "/admin/users?limit=1".to_string();
    for _ in 0..20 {
        let page = app.get(&path, Some(&admin)).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        for listed in page.data()["users"].as_array().expect("users") {
            seen.push(listed["userId"].as_str().expect("id").to_string());
        }
        match page.data()["nextCursor"].as_str() {
            Some(cursor) => path = format!("/admin/users?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert!(seen.contains(&user.id), "{seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seen.len(),
        "an account listed twice: {seen:?}"
    );

    let detail = app
        .get(&format!("/admin/users/{}", user.id), Some(&admin))
        .await;
    assert_eq!(detail.status, 200, "{:?}", detail.body);
    assert_eq!(detail.data()["orderCount"], 1);
    assert_eq!(
        detail.data()["recentOrders"][0]["orderId"],
        placed.data()["orderId"]
    );
    app.get("/admin/users/user_01HXXXXXXXXXXXXXXXXXXXXXXX", Some(&admin))
        .await
        .assert_error(404, "NOT_FOUND");
    app.get("/admin/users/nope", Some(&admin))
        .await
        .assert_error(400, "VALIDATION_ERROR");

    // A second session and an API key, to see the suspension hold for every credential.
    let second = login(&app, &user.email, PASSWORD).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    let second_refresh = second.data()["refreshToken"]
        .as_str()
        .expect("refresh")
        .to_string();
    let key = app
        .post(
            "/api-keys",
            Some(&user.token),
            json!({"name": "shop", "scopes": ["orders:read"]}),
        )
        .await;
    assert_eq!(key.status, 201, "{:?}", key.body);
    let key = key.data()["secret"].as_str().expect("secret").to_string();

    let suspend = format!("/admin/users/{}/suspend", user.id);
    app.post(&suspend, Some(&admin), json!({"reason": " "}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.post(&suspend, Some(&user.token), json!({"reason": "self"}))
        .await
        .assert_error(403, "FORBIDDEN");
    let suspended = app
        .post(
            &suspend,
            Some(&admin),
            json!({"reason": "chargeback under review"}),
        )
        .await;
    assert_eq!(suspended.status, 200, "{:?}", suspended.body);
    assert_eq!(suspended.data()["status"], "SUSPENDED");

    // The very next request, with a token issued before, is refused — not in 15 minutes.
    app.get("/wallet/balance", Some(&user.token))
        .await
        .assert_error(403, "ACCOUNT_SUSPENDED");
    app.get("/orders", Some(&key))
        .await
        .assert_error(403, "ACCOUNT_SUSPENDED");
    app.get("/users/profile", Some(&user.token))
        .await
        .assert_error(403, "ACCOUNT_SUSPENDED");
    refresh(&app, &second_refresh)
        .await
        .assert_error(403, "ACCOUNT_SUSPENDED");
    login(&app, &user.email, PASSWORD)
        .await
        .assert_error(403, "ACCOUNT_SUSPENDED");
    login(&app, &user.email, "not the password")
        .await
        .assert_error(401, "INVALID_CREDENTIALS");
    let again = app
        .post(&suspend, Some(&admin), json!({"reason": "twice"}))
        .await;
    assert_eq!(again.status, 200, "suspending again changes nothing");

    // An admin cannot lock themselves out.
    let me = app.get("/users/profile", Some(&admin)).await;
    let admin_id = me.data()["userId"].as_str().expect("admin id").to_string();
    app.post(
        &format!("/admin/users/{admin_id}/suspend"),
        Some(&admin),
        json!({"reason": "oops"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        "/admin/users/user_01HXXXXXXXXXXXXXXXXXXXXXXX/suspend",
        Some(&admin),
        json!({"reason": "who"}),
    )
    .await
    .assert_error(404, "NOT_FOUND");

    let reactivated = app
        .post(
            &format!("/admin/users/{}/reactivate", user.id),
            Some(&admin),
            json!({"reason": "chargeback withdrawn"}),
        )
        .await;
    assert_eq!(reactivated.status, 200, "{:?}", reactivated.body);
    assert_eq!(reactivated.data()["status"], "ACTIVE");
    assert_eq!(app.get("/orders", Some(&key)).await.status, 200);
    // The sessions the suspension ended stay ended, access tokens too; signing in again works.
    app.get("/wallet/balance", Some(&user.token))
        .await
        .assert_error(401, "UNAUTHORIZED");
    refresh(&app, &user.refresh_token)
        .await
        .assert_error(401, "UNAUTHORIZED");
    assert_eq!(login(&app, &user.email, PASSWORD).await.status, 200);

    let suspensions = audited(&app, "user.suspended", &user.id).await;
    assert_eq!(
        suspensions.len(),
        1,
        "a no-op is not audited: {suspensions:?}"
    );
    assert_eq!(suspensions[0]["before"]["status"], "ACTIVE");
    assert_eq!(suspensions[0]["after"]["reason"], "chargeback under review");
    assert_eq!(suspensions[0]["actor"], admin_id.as_str());
    let reactivations = audited(&app, "user.reactivated", &user.id).await;
    assert_eq!(reactivations.len(), 1);
    assert_eq!(reactivations[0]["after"]["status"], "ACTIVE");
}

async fn adjust(
    app: &TestApp,
    user: &TestUser,
    amount: i64,
    reason: &str,
    key: Option<&str>,
) -> crate::support::TestResponse {
    let fresh = format!("adjust-{}", ulid::Ulid::new());
    let headers = [("idempotency-key", key.unwrap_or(&fresh))];
    app.call(
        Method::POST,
        &format!("/admin/users/{}/wallet/adjustments", user.id),
        Some(&app.admin_token),
        Some(json!({"amount": amount, "reason": reason})),
        &headers,
    )
    .await
}

async fn an_admin_corrects_a_balance_with_an_adjustment_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let initial = stock_by_variant(&app).await;
    let user = app.funded_user("adjusted", 10_000).await;
    let other = app.funded_user("other", 10_000).await;

    let credited = adjust(
        &app,
        &user,
        5_000,
        "Goodwill for ticket 4411",
        Some("adj-1"),
    )
    .await;
    assert_eq!(credited.status, 200, "{:?}", credited.body);
    assert_eq!(credited.data()["type"], "ADJUSTMENT");
    assert_eq!(credited.data()["amount"], 5_000);
    assert_eq!(credited.data()["balanceAfter"], 15_000);
    let replayed = adjust(
        &app,
        &user,
        5_000,
        "Goodwill for ticket 4411",
        Some("adj-1"),
    )
    .await;
    assert_eq!(replayed.status, 200);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        replayed.data()["transactionId"],
        credited.data()["transactionId"]
    );
    assert_eq!(app.balance(&user).await, 15_000, "applied once");
    adjust(
        &app,
        &user,
        6_000,
        "Goodwill for ticket 4411",
        Some("adj-1"),
    )
    .await
    .assert_error(422, "IDEMPOTENCY_KEY_REUSED");
    adjust(
        &app,
        &other,
        5_000,
        "Goodwill for ticket 4411",
        Some("adj-1"),
    )
    .await
    .assert_error(422, "IDEMPOTENCY_KEY_REUSED");

    app.call(
        Method::POST,
        &format!("/admin/users/{}/wallet/adjustments", user.id),
        Some(&app.admin_token),
        Some(json!({"amount": 100, "reason": "no key"})),
        &[],
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    let me = app.get("/users/profile", Some(&app.admin_token)).await;
    let admin = TestUser {
        id: me.data()["userId"].as_str().expect("admin id").into(),
        ..user.clone()
    };
    adjust(&app, &admin, 100, "mine", None)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    adjust(&app, &user, -15_001, "too much", None)
        .await
        .assert_error(422, "INSUFFICIENT_BALANCE");
    adjust(&app, &user, 0, "nothing", None)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    adjust(&app, &user, 100, "", None)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    adjust(&app, &user, 100_000_000, "a fortune", None)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let stranger = TestUser {
        id: "user_01HXXXXXXXXXXXXXXXXXXXXXXX".into(),
        ..user.clone()
    };
    adjust(&app, &stranger, 100, "who", None)
        .await
        .assert_error(404, "NOT_FOUND");
    app.call(
        Method::POST,
        &format!("/admin/users/{}/wallet/adjustments", user.id),
        Some(&user.token),
        Some(json!({"amount": 100, "reason": "mine"})),
        &[],
    )
    .await
    .assert_error(403, "FORBIDDEN");

    let debited = adjust(&app, &user, -15_000, "Duplicate top-up reversed", None).await;
    assert_eq!(debited.status, 200, "{:?}", debited.body);
    assert_eq!(debited.data()["amount"], -15_000);
    assert_eq!(app.balance(&user).await, 0);

    let history = app
        .get("/wallet/transactions?type=ADJUSTMENT", Some(&user.token))
        .await;
    assert_eq!(history.status, 200, "{:?}", history.body);
    let adjustments = history.data()["transactions"].as_array().expect("list");
    assert_eq!(adjustments.len(), 2, "{adjustments:?}");
    assert_eq!(adjustments[0]["description"], "Duplicate top-up reversed");
    assert_eq!(adjustments[1]["description"], "Goodwill for ticket 4411");

    let entries = audited(&app, "wallet.adjusted", &user.id).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["before"]["balance"], 15_000);
    assert_eq!(entries[0]["after"]["balance"], 0);
    assert_eq!(entries[1]["after"]["amount"], 5_000);
    assert_conserved(&app, &[user, other], &initial).await;
}

async fn a_shop_without_self_top_up_refuses_it_and_admins_still_credit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.self_top_up = false).await;
    let user = app.register("no-topup").await;
    app.top_up(&user, 10_000)
        .await
        .assert_error(403, "SELF_TOPUP_DISABLED");
    app.call(
        Method::POST,
        "/wallet/topup",
        Some(&user.token),
        Some(json!({"amount": 10_000})),
        &[("idempotency-key", "first")],
    )
    .await
    .assert_error(403, "SELF_TOPUP_DISABLED");
    assert_eq!(app.balance(&user).await, 0);
    let credited = adjust(&app, &user, 10_000, "Paid by bank transfer 8812", None).await;
    assert_eq!(credited.status, 200, "{:?}", credited.body);
    assert_eq!(app.balance(&user).await, 10_000);
}

/// Registers from `address`, as the local server marks a request from that peer.
async fn register_from(
    app: &TestApp,
    address: [u8; 4],
    email: &str,
) -> crate::support::TestResponse {
    let mut request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/auth/register")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"email": email, "password": PASSWORD, "firstName": "Asha", "lastName": "Rao"})
                .to_string(),
        ))
        .expect("request");
    request
        .extensions_mut()
        .insert(giftify_api::extract::PeerAddress(address.into()));
    app.send(request).await
}

/// Waits out the last minute of a UTC day, so a test of daily windows runs inside one.
async fn inside_one_day() {
    let into_day = chrono::Utc::now().timestamp().rem_euclid(86_400);
    if into_day > 86_400 - 60 {
        tokio::time::sleep(std::time::Duration::from_secs(
            (86_400 - into_day + 1) as u64,
        ))
        .await;
    }
}

async fn each_customer_has_a_budget_for_the_costly_actions(backend: Backend) {
    inside_one_day().await;
    let app = TestApp::spawn_with(backend, |config| {
        config.user_limits = giftify_shared::rate_limits::ActionLimits::parse(
            "register=2/86400,topup=2/86400,order=2/86400,reveal=1/86400,redeem=2/86400",
        )
        .expect("limits");
    })
    .await;
    let initial = stock_by_variant(&app).await;
    let spent = |response: crate::support::TestResponse| {
        response.assert_error(429, "RATE_LIMITED");
        let retry: u64 = response
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("seconds");
        assert!((1..=86_400).contains(&retry), "{retry}");
    };

    // Registrations count per client address.
    for n in 0..2 {
        let email = crate::support::unique_email(&format!("budget{n}"));
        assert_eq!(register_from(&app, [10, 0, 0, 1], &email).await.status, 200);
    }
    spent(register_from(&app, [10, 0, 0, 1], &crate::support::unique_email("budget")).await);
    let other_address =
        register_from(&app, [10, 0, 0, 2], &crate::support::unique_email("budget")).await;
    assert_eq!(
        other_address.status, 200,
        "another address has its own budget"
    );

    // The rest count per account.
    let user = app.register("spender").await;
    let other = app.register("bystander").await;
    for _ in 0..2 {
        assert_eq!(app.top_up(&user, 50_000).await.status, 200);
    }
    spent(app.top_up(&user, 50_000).await);
    assert_eq!(app.top_up(&other, 50_000).await.status, 200, "per account");

    let (variant, _, _) = app.some_variant().await;
    let one = json!([{"variantId": variant, "quantity": 1}]);
    let first = app.order_items(&user, one.clone()).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    assert_eq!(app.order_items(&user, one.clone()).await.status, 202);
    spent(app.order_items(&user, one).await);
    app.drain_queue().await;

    let order_id = first.data()["orderId"].as_str().expect("order").to_string();
    let order = app.order(&user, &order_id).await;
    let card = order.data()["giftCards"][0]["giftCardId"]
        .as_str()
        .expect("a card")
        .to_string();
    let reveal = format!("/orders/{order_id}/gift-cards/{card}/reveal");
    assert_eq!(
        app.post(&reveal, Some(&user.token), json!({})).await.status,
        200
    );
    spent(app.post(&reveal, Some(&user.token), json!({})).await);

    let guess = json!({"giftCardNumber": "GFTY-0000-0000-0000", "giftCardPin": "000000"});
    for _ in 0..2 {
        let refused = app
            .post("/gift-cards/redeem", Some(&user.token), guess.clone())
            .await;
        assert!(
            refused.status.is_client_error() && refused.status != 429,
            "{:?}",
            refused.body
        );
    }
    spent(
        app.post("/gift-cards/redeem", Some(&user.token), guess)
            .await,
    );
    assert_conserved(&app, &[user, other], &initial).await;
}

crate::on_both_backends!(
    support_finds_suspends_and_reactivates_an_account,
    an_admin_corrects_a_balance_with_an_adjustment_once,
    a_shop_without_self_top_up_refuses_it_and_admins_still_credit,
    each_customer_has_a_budget_for_the_costly_actions,
);
