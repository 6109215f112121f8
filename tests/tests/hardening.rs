//! The release `giftify` driven as an attacker, an operator and a failing machine would drive
//! it: one test per defect of the hardening round, each failing on the code before its fix.
//! Every process a test starts is stopped by its guard, and every wait is bounded.

use giftify_tests::process::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Deployment, GiftifyProcess, Http, HttpResponse,
};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

/// `serve` on `deployment`, healthy.
async fn serve(deployment: &Deployment, args: &[&str]) -> (GiftifyProcess, Http) {
    let mut args_with_serve = vec!["serve"];
    args_with_serve.extend_from_slice(args);
    let mut server = deployment.spawn("server", &args_with_serve);
    let http = Http::new(&deployment.base_url(), Duration::from_secs(10));
    http.wait_until_healthy(&mut server, Duration::from_secs(30))
        .await;
    (server, http)
}

/// `serve` on `deployment` must refuse to start: it exits non-zero within 30 s, and its log
/// says `expected`.
fn serve_is_refused(deployment: &Deployment, expected: &[&str]) -> String {
    let _ = std::fs::remove_file(deployment.data_dir.join("refused.log"));
    let mut server = deployment.spawn("refused", &["serve"]);
    let status = server.wait_exit(Duration::from_secs(30));
    let log = server.log();
    assert!(
        status.is_some_and(|status| !status.success()),
        "serve must refuse to start ({status:?}); log:\n{log}"
    );
    for text in expected {
        assert!(log.contains(text), "the refusal names `{text}`:\n{log}");
    }
    log
}

fn ok(response: &HttpResponse) -> &Value {
    assert!(
        (200..300).contains(&response.status),
        "{} {}",
        response.status,
        response.body
    );
    &response.body["data"]
}

async fn register(http: &Http, email: &str) -> Value {
    let response = http
        .post(
            "/auth/register",
            None,
            &json!({"email": email, "password": PASSWORD, "firstName": "Test", "lastName": "User"}),
        )
        .await
        .expect("register answers");
    ok(&response).clone()
}

async fn login(http: &Http, email: &str, password: &str) -> HttpResponse {
    http.post(
        "/auth/login",
        None,
        &json!({"email": email, "password": password}),
    )
    .await
    .expect("login answers")
}

async fn refresh(http: &Http, refresh_token: &Value) -> u16 {
    http.post(
        "/auth/refresh",
        None,
        &json!({"refreshToken": refresh_token}),
    )
    .await
    .expect("refresh answers")
    .status
}

/// Registers a shopper who buys one card; returns its access token and the order id once the
/// order is final.
async fn buy_one_card(http: &Http, email: &str) -> (String, String) {
    let token = register(http, email).await["accessToken"]
        .as_str()
        .expect("a token")
        .to_string();
    let topped = http
        .post("/wallet/topup", Some(&token), &json!({"amount": 100_000}))
        .await
        .expect("top-up answers");
    ok(&topped);
    let products = http.get("/products", Some(&token)).await.expect("products");
    let variant = ok(&products)["products"][0]["variants"][0]["variantId"].clone();
    let placed = http
        .post(
            "/orders/create",
            Some(&token),
            &json!({"items": [{"variantId": variant, "quantity": 1}]}),
        )
        .await
        .expect("order answers");
    let order = ok(&placed)["orderId"].as_str().expect("an id").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = http
            .get(&format!("/orders/{order}"), Some(&token))
            .await
            .expect("order answers");
        if ok(&status)["status"] == "FULFILLED" {
            return (token, order);
        }
        assert!(Instant::now() < deadline, "the order was not fulfilled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Defect 1: an account registered with the admin's email before the operator configures it
/// is not promoted at start-up; an explicit promotion ends every session it had, so its old
/// refresh token can never turn into an ADMIN access token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squatted_admin_email_is_refused_at_start_and_a_promotion_ends_its_sessions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let deployment = Deployment::new(dir.path(), &[]);
    let (mut server, http) = serve(&deployment, &[]).await;
    let squatter = register(&http, "boss@giftify.test").await;
    server.kill();

    let boss = deployment
        .with("GIFTIFY_ADMIN_EMAIL", Some("boss@giftify.test"))
        .with("GIFTIFY_ADMIN_PASSWORD", Some("the-operators-own-pass"));
    serve_is_refused(&boss, &["--promote-existing-admin"]);

    let (mut server, http) = serve(&boss, &["--promote-existing-admin"]).await;
    assert_eq!(
        refresh(&http, &squatter["refreshToken"]).await,
        401,
        "the squatter's session ended with the promotion"
    );
    assert_eq!(
        login(&http, "boss@giftify.test", PASSWORD).await.status,
        401
    );
    let admin = login(&http, "boss@giftify.test", "the-operators-own-pass").await;
    let token = ok(&admin)["accessToken"]
        .as_str()
        .expect("a token")
        .to_string();
    let inventory = http
        .get("/admin/inventory", Some(&token))
        .await
        .expect("inventory answers");
    assert_eq!(inventory.status, 200, "{}", inventory.body);

    // The operator command does the same on a running system, without a server of its own.
    let eve = register(&http, "eve@giftify.test").await;
    let promote = deployment
        .with("GIFTIFY_ADMIN_EMAIL", Some("eve@giftify.test"))
        .with("GIFTIFY_ADMIN_PASSWORD", Some("another-operator-pass"));
    let created = promote.try_run(&["admin", "create"]);
    assert!(!created.success, "create refuses a taken email");
    assert!(
        created.stderr.contains("admin promote"),
        "{}",
        created.stderr
    );
    let promoted = promote.try_run(&["admin", "promote"]);
    assert!(promoted.success, "{}", promoted.stderr);
    assert_eq!(refresh(&http, &eve["refreshToken"]).await, 401);
    server.kill();
    // A restart with the same configured password leaves the admin's sessions alone.
    let (_server, http) = serve(&boss, &[]).await;
    let admin = login(&http, "boss@giftify.test", "the-operators-own-pass").await;
    let admin_refresh = ok(&admin)["refreshToken"].clone();
    let stats = boss.try_run(&["admin", "reset-password"]);
    assert!(stats.success, "{}", stats.stderr);
    assert_eq!(
        refresh(&http, &admin_refresh).await,
        401,
        "a password reset ends the sessions"
    );
}

/// Defects 2 and 3: a card or JWT key that is missing, empty, short, another key, readable by
/// others, or a variable that does not match the data stops the start, naming the file or
/// variable and the cards at stake; nothing is generated in its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_empty_short_wrong_or_exposed_key_stops_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let deployment = Deployment::new(dir.path(), &[]);
    let (mut server, http) = serve(&deployment, &[]).await;
    let (token, order) = buy_one_card(&http, "keys@giftify.test").await;
    server.kill();

    let card = dir.path().join("card.key");
    let jwt = dir.path().join("jwt.key");
    let original_card = std::fs::read(&card).expect("card.key");
    let original_jwt = std::fs::read(&jwt).expect("jwt.key");
    let restore = || {
        std::fs::write(&card, &original_card).expect("restore card.key");
        std::fs::write(&jwt, &original_jwt).expect("restore jwt.key");
        for key in [&card, &jwt] {
            std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    };

    std::fs::remove_file(&card).expect("delete card.key");
    serve_is_refused(&deployment, &["card.key is missing", "1 gift card(s)"]);
    assert!(!card.exists(), "no new card key was generated");

    std::fs::write(&card, "").expect("truncate");
    serve_is_refused(&deployment, &["card.key is empty"]);
    restore();

    std::fs::write(&jwt, "abc").expect("short key");
    serve_is_refused(&deployment, &["jwt.key is 3 bytes"]);
    restore();

    let other_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    std::fs::write(&card, other_key).expect("another key");
    serve_is_refused(
        &deployment,
        &[
            "card.key is not the card key this data was sealed with",
            "1 gift card(s)",
        ],
    );
    restore();

    serve_is_refused(
        &deployment.with("GIFTIFY_CARD_KEY", Some(other_key)),
        &["GIFTIFY_CARD_KEY is not the card key"],
    );
    serve_is_refused(
        &deployment.with("GIFTIFY_JWT_SECRET", Some("a")),
        &["GIFTIFY_JWT_SECRET is 1 bytes"],
    );
    serve_is_refused(
        &deployment.with(
            "GIFTIFY_JWT_SECRET",
            Some("another-jwt-key-of-enough-length-0123456789"),
        ),
        &["GIFTIFY_JWT_SECRET is not the access-token key"],
    );

    std::fs::set_permissions(&card, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    serve_is_refused(&deployment, &["mode 0644", "chmod 600"]);
    restore();

    // With its own keys back the shop starts, and the card sold before still opens.
    let (_server, http) = serve(&deployment, &[]).await;
    let details = http
        .get(&format!("/orders/{order}"), Some(&token))
        .await
        .expect("order answers");
    let card_id = ok(&details)["giftCards"][0]["giftCardId"].clone();
    let revealed = http
        .post(
            &format!(
                "/orders/{order}/gift-cards/{}/reveal",
                card_id.as_str().expect("an id")
            ),
            Some(&token),
            &json!({}),
        )
        .await
        .expect("reveal answers");
    assert_eq!(revealed.status, 200, "{}", revealed.body);
}

/// Defect 6: operator commands on a mistyped data dir fail naming it, and create nothing.
#[test]
fn operator_commands_on_a_dir_without_a_database_fail_and_create_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("giftify-dat");
    let deployment = Deployment::new(&missing, &[]);
    for args in [
        &["dlq", "list"][..],
        &["dlq", "redrive", "--dry-run"],
        &["worker"],
        &["admin", "create"],
    ] {
        let finished = deployment.try_run(args);
        assert!(!finished.success, "giftify {args:?} must fail");
        assert!(
            finished.stderr.contains(&missing.display().to_string())
                && finished.stderr.contains("holds no Giftify database"),
            "giftify {args:?}: {}",
            finished.stderr
        );
        assert!(
            !missing.exists(),
            "giftify {args:?} created {}",
            missing.display()
        );
    }
}

/// Defects 8 and 9: a new data dir and its database files are private from the first open,
/// and addresses or names that only look alike are one account or refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_private_and_lookalike_emails_are_one_account() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let deployment = Deployment::new(&data, &[]);
    let (_server, http) = serve(&deployment, &[]).await;
    assert_eq!(mode(&data), 0o700, "the data dir");
    for file in [
        "giftify.db",
        "giftify.db-wal",
        "giftify.db-shm",
        "card.key",
        "jwt.key",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }

    register(&http, "asha@x.com").await;
    register(&http, "ren\u{e9}@x.com").await;
    let attempts = [
        ("asha@x.com\u{200B}", 400, "VALIDATION_ERROR"),
        ("\u{202E}asha@x.com", 400, "VALIDATION_ERROR"),
        ("ASHA@x.com", 409, "EMAIL_ALREADY_EXISTS"),
        ("rene\u{301}@x.com", 409, "EMAIL_ALREADY_EXISTS"),
    ];
    for (email, status, code) in attempts {
        let response = http
            .post(
                "/auth/register",
                None,
                &json!({"email": email, "password": PASSWORD, "firstName": "A", "lastName": "B"}),
            )
            .await
            .expect("register answers");
        assert_eq!(response.status, status, "{email:?}: {}", response.body);
        assert_eq!(response.body["error"]["code"], code, "{email:?}");
    }
    // The decomposed spelling logs in to the one account.
    assert_eq!(
        login(&http, "rene\u{301}@x.com", PASSWORD).await.status,
        200
    );
    for name in ["\u{200B}", "\u{2060}\u{200C}", "Asha\u{202E}"] {
        let response = http
            .post(
                "/auth/register",
                None,
                &json!({"email": "names@x.com", "password": PASSWORD, "firstName": name, "lastName": "B"}),
            )
            .await
            .expect("register answers");
        assert_eq!(response.status, 400, "{name:?}: {}", response.body);
    }
    let admin = login(&http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(admin.status, 200);
}
