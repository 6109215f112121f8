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

/// The status of a GET of `path` with an access token.
async fn access_status(http: &Http, access_token: &Value, path: &str) -> u16 {
    let token = access_token.as_str().expect("an access token");
    http.get(path, Some(token)).await.expect("answers").status
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
    for path in ["/wallet/balance", "/admin/inventory"] {
        assert_eq!(
            access_status(&http, &squatter["accessToken"], path).await,
            401,
            "the squatter's access token, minted before the promotion, is void at {path}"
        );
    }
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
    assert_eq!(
        access_status(&http, &eve["accessToken"], "/wallet/balance").await,
        200,
        "a customer's token works until the promotion"
    );
    let promoted = promote.try_run(&["admin", "promote"]);
    assert!(promoted.success, "{}", promoted.stderr);
    assert_eq!(refresh(&http, &eve["refreshToken"]).await, 401);
    for path in ["/wallet/balance", "/admin/inventory"] {
        assert_eq!(
            access_status(&http, &eve["accessToken"], path).await,
            401,
            "a promotion by the operator command voids the access token at {path} at once"
        );
    }
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
    std::fs::set_permissions(&card, std::fs::Permissions::from_mode(0o600)).expect("chmod");
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

/// A raw TCP client of the server, for what an HTTP library will not do: stop half-way.
fn raw_connect(deployment: &Deployment) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(("127.0.0.1", deployment.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    stream
}

/// Reads until the server closes the connection (or 20 s pass, which fails); returns what it
/// sent and how long the close took.
fn read_until_closed(stream: &mut std::net::TcpStream) -> (String, Duration) {
    use std::io::Read;
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the server kept the connection open ({e}) after {:?}",
                started.elapsed()
            ),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

/// Defect 4: connections that stop half-way through their headers or body, or sit idle, are
/// closed after the configured timeouts; a declared body over the limit is refused before it
/// is sent; the connection cap holds further clients in the backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_idle_and_oversized_clients_are_cut_off_by_the_configured_limits() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temp dir");
    let deployment = Deployment::new(
        dir.path(),
        &[
            ("GIFTIFY_HTTP_HEADER_TIMEOUT_SECS", "2"),
            ("GIFTIFY_HTTP_BODY_TIMEOUT_SECS", "2"),
        ],
    );
    let (_server, _http) = serve(&deployment, &[]).await;

    let mut slow_headers = raw_connect(&deployment);
    slow_headers
        .write_all(b"GET /health HTTP/1.1\r\nHost: giftify\r\n")
        .expect("half the headers");
    let (_, took) = read_until_closed(&mut slow_headers);
    assert!(took < Duration::from_secs(15), "closed after {took:?}");

    let mut slow_body = raw_connect(&deployment);
    slow_body
        .write_all(
            b"POST /auth/login HTTP/1.1\r\nHost: giftify\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"email\":",
        )
        .expect("a tenth of the body");
    let (answer, took) = read_until_closed(&mut slow_body);
    assert!(
        took < Duration::from_secs(15),
        "closed after {took:?}: {answer}"
    );

    let mut oversized = raw_connect(&deployment);
    oversized
        .write_all(
            b"POST /auth/register HTTP/1.1\r\nHost: giftify\r\nContent-Type: application/json\r\n\
              Content-Length: 5000000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        )
        .expect("headers");
    let (answer, _) = read_until_closed(&mut oversized);
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(
        answer.starts_with("HTTP/1.1 413") && answer.contains("PAYLOAD_TOO_LARGE"),
        "{answer}"
    );

    let mut long_uri = raw_connect(&deployment);
    let target = format!("/products?{}", "q".repeat(9000));
    long_uri
        .write_all(
            format!("GET {target} HTTP/1.1\r\nHost: giftify\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .expect("request");
    let (answer, _) = read_until_closed(&mut long_uri);
    assert!(
        answer.starts_with("HTTP/1.1 414") && answer.contains("URI_TOO_LONG"),
        "{answer}"
    );

    // Two idle connections take every slot of a server capped at two (and patient enough
    // that they stay): a third client is not served until one goes.
    let capped_dir = tempfile::tempdir().expect("temp dir");
    let capped = Deployment::new(
        capped_dir.path(),
        &[
            ("GIFTIFY_HTTP_HEADER_TIMEOUT_SECS", "120"),
            ("GIFTIFY_HTTP_MAX_CONNECTIONS", "2"),
        ],
    );
    let (_capped_server, _) = serve(&capped, &[]).await;
    let idle: Vec<_> = (0..2).map(|_| raw_connect(&capped)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut waiting = raw_connect(&capped);
    waiting
        .write_all(b"GET /health HTTP/1.1\r\nHost: giftify\r\nConnection: close\r\n\r\n")
        .expect("request");
    waiting
        .set_read_timeout(Some(Duration::from_millis(700)))
        .expect("timeout");
    let mut first = [0u8; 1];
    assert!(
        std::io::Read::read(&mut waiting, &mut first).is_err(),
        "a third connection was served past the cap of two"
    );
    drop(idle);
    waiting
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let (answer, _) = read_until_closed(&mut waiting);
    assert!(
        answer.contains("200 OK"),
        "served once a slot was free: {answer}"
    );
}

/// Defect 5: SIGTERM completes within the shutdown deadline even while a client holds a
/// half-sent request, exiting 0; and defect 10: a clean stop leaves the whole shop in
/// `giftify.db`, the write-ahead log folded in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_within_the_deadline_and_folds_the_log_into_the_database() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temp dir");
    let deployment = Deployment::new(
        dir.path(),
        &[
            ("GIFTIFY_HTTP_HEADER_TIMEOUT_SECS", "120"),
            ("GIFTIFY_SHUTDOWN_DEADLINE_SECS", "2"),
        ],
    );
    let (mut server, http) = serve(&deployment, &[]).await;
    buy_one_card(&http, "stop@giftify.test").await;
    let mut half = raw_connect(&deployment);
    half.write_all(b"POST /auth/login HTTP/1.1\r\nHost: giftify\r\nContent-Le")
        .expect("half a request");
    std::thread::sleep(Duration::from_millis(200));
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}; log:\n{}",
        server.log_tail(30)
    );
    let wal = dir.path().join("giftify.db-wal");
    let wal_bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(wal_bytes, 0, "the log is folded into giftify.db");
    // giftify.db alone, copied away from its log, is the whole shop.
    let copy = dir.path().join("copy.db");
    std::fs::copy(dir.path().join("giftify.db"), &copy).expect("copy");
    let conn = rusqlite::Connection::open(&copy).expect("open the copy");
    let orders: i64 = conn
        .query_row("SELECT COUNT(*) FROM orders", [], |row| row.get(0))
        .expect("count");
    assert_eq!(orders, 1);
}

/// Defect 10: `giftify backup` copies a running database under load, verified; `giftify
/// restore` puts it into an empty data dir only with the keys it was sealed with, and the
/// restored shop serves what the backup held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_into_a_working_shop() {
    let dir = tempfile::tempdir().expect("temp dir");
    let deployment = Deployment::new(dir.path(), &[]);
    let (mut server, http) = serve(&deployment, &[]).await;
    let (token, order) = buy_one_card(&http, "backup@giftify.test").await;
    // Shoppers keep ordering while the backup runs.
    let load = {
        let http = http.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let products = http.get("/products", Some(&token)).await.expect("products");
            let variant = ok(&products)["products"][0]["variants"][0]["variantId"].clone();
            let until = Instant::now() + Duration::from_secs(3);
            let mut placed = 0;
            while Instant::now() < until && placed < 200 {
                let answer = http
                    .post(
                        "/orders/create",
                        Some(&token),
                        &json!({"items": [{"variantId": variant, "quantity": 1}]}),
                    )
                    .await
                    .expect("order answers");
                assert!(
                    [202, 409, 422].contains(&answer.status),
                    "{} {}",
                    answer.status,
                    answer.body
                );
                placed += 1;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let file = dir.path().join("shop.backup");
    let backed = deployment.try_run(&["backup", file.to_str().expect("utf-8")]);
    assert!(backed.success, "{}", backed.stderr);
    assert!(backed.stdout.contains("orders="), "{}", backed.stdout);
    load.await.expect("the shoppers");
    assert_eq!(mode(&file), 0o600);
    server.kill();

    let restored_dir = tempfile::tempdir().expect("temp dir");
    let target = restored_dir.path().join("data");
    let restored = Deployment::new(&target, &[]);
    let without_keys = restored.try_run(&["restore", file.to_str().expect("utf-8")]);
    assert!(!without_keys.success, "restore needs the keys");
    assert!(
        without_keys.stderr.contains("key files"),
        "{}",
        without_keys.stderr
    );
    std::fs::create_dir(&target).expect("data dir");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    for key in ["card.key", "jwt.key"] {
        std::fs::copy(dir.path().join(key), target.join(key)).expect("copy key");
        std::fs::set_permissions(target.join(key), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    let done = restored.try_run(&["restore", file.to_str().expect("utf-8")]);
    assert!(done.success, "{}", done.stderr);
    let again = restored.try_run(&["restore", file.to_str().expect("utf-8")]);
    assert!(
        !again.success && again.stderr.contains("has a database already"),
        "{}",
        again.stderr
    );

    let (_server, http) = serve(&restored, &[]).await;
    let details = http
        .get(&format!("/orders/{order}"), Some(&token))
        .await
        .expect("order answers");
    assert_eq!(
        ok(&details)["status"],
        "FULFILLED",
        "the restored shop has the order"
    );
}

/// The dead-letter commands an operator runs, with one dead letter that is not an order message
/// ahead of one that is: the listing shows both, the redrive moves the order and keeps the
/// other, and `dlq delete` removes it.
fn walk_the_dead_letter_commands(deployment: &Deployment, order_id: &str) {
    let listed = deployment.try_run(&["dlq", "list"]);
    assert!(listed.success, "{}", listed.stderr);
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", listed.stdout);
    assert!(lines[0].starts_with("not an order message"), "{}", lines[0]);
    assert!(lines[1].starts_with(order_id), "{}", lines[1]);
    let unreadable_id = lines[0]
        .split('\t')
        .find_map(|field| field.strip_prefix("message_id="))
        .expect("the listing shows the message id")
        .to_string();

    let dry = deployment.try_run(&["dlq", "redrive", "--dry-run"]);
    assert!(
        dry.success && dry.stdout.contains("1 message(s) would be moved"),
        "{}{}",
        dry.stdout,
        dry.stderr
    );
    let redriven = deployment.try_run(&["dlq", "redrive"]);
    assert!(redriven.success, "{}", redriven.stderr);
    assert!(
        redriven.stdout.contains("1 message(s) moved"),
        "{}",
        redriven.stdout
    );
    let left = deployment.try_run(&["dlq", "list"]);
    assert_eq!(left.stdout.lines().count(), 1, "{}", left.stdout);
    assert!(left.stdout.contains(&unreadable_id), "{}", left.stdout);

    let deleted = deployment.try_run(&["dlq", "delete", &unreadable_id]);
    assert!(deleted.success, "{}", deleted.stderr);
    let gone = deployment.try_run(&["dlq", "delete", &unreadable_id]);
    assert!(
        !gone.success && gone.stderr.contains("no dead letter"),
        "{}",
        gone.stderr
    );
    let empty = deployment.try_run(&["dlq", "list"]);
    assert!(
        empty.stdout.contains("The dead-letter queue is empty"),
        "{}",
        empty.stdout
    );
}

fn order_message(order_id: &str) -> String {
    json!({"orderId": order_id, "userId": format!("user_{}", ulid::Ulid::new())}).to_string()
}

/// Defect 11, embedded backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_dead_letter_commands_survive_a_message_that_is_not_an_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let deployment = Deployment::new(dir.path(), &[]);
    let (mut server, _) = serve(&deployment, &[]).await;
    server.kill();
    let order_id = format!("order_{}", ulid::Ulid::new());
    let db = rusqlite::Connection::open(dir.path().join("giftify.db")).expect("open");
    for (id, body) in [
        ("m-poison", "{not json".to_string()),
        ("m-order", order_message(&order_id)),
    ] {
        db.execute(
            "INSERT INTO dead_letters (message_id, group_id, dedup_id, body, sent_at, \
             receive_count, last_error, dead_at) VALUES (?1, 'g', ?1, ?2, 0, 5, 'boom', 0)",
            rusqlite::params![id, body],
        )
        .expect("a dead letter");
    }
    drop(db);
    walk_the_dead_letter_commands(&deployment, &order_id);
}

/// Defect 11, AWS backend (moto): the release binary's dead-letter commands on an SQS FIFO
/// dead-letter queue holding a message that is not an order message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_dead_letter_commands_survive_a_message_that_is_not_an_order() {
    let stack = giftify_tests::moto::AwsTestStack::start(3, 30).await;
    let sqs = aws_sdk_sqs::Client::new(&giftify_tests::moto::moto().sdk_config().await);
    let dead_letter_url = sqs
        .get_queue_url()
        .queue_name(giftify_infra::aws::dead_letter_queue_name(Some(
            &stack.stage,
        )))
        .send()
        .await
        .expect("the dead-letter queue")
        .queue_url
        .expect("a url");
    let order_id = format!("order_{}", ulid::Ulid::new());
    for (dedup, body) in [
        ("poison", "{not json".to_string()),
        ("order", order_message(&order_id)),
    ] {
        sqs.send_message()
            .queue_url(&dead_letter_url)
            .message_body(body)
            .message_group_id("g")
            .message_deduplication_id(dedup)
            .send()
            .await
            .expect("send to the dead-letter queue");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let env: Vec<(&str, String)> = stack.worker_lambda_env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let deployment = Deployment::new(dir.path(), &pairs);
    walk_the_dead_letter_commands(&deployment, &order_id);
}

/// A small tmpfs mounted for one test, unmounted when dropped (after the processes using it,
/// which are declared later and so dropped first).
struct SmallDisk {
    mount: std::path::PathBuf,
}

impl SmallDisk {
    /// Mounts `size` of tmpfs at `mount`; `None` (with the reason printed) where this machine
    /// does not let the test mount one.
    fn mount(mount: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(mount).expect("mount point");
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(mount)
            .status();
        match status {
            Ok(status) if status.success() => Some(SmallDisk {
                mount: mount.to_path_buf(),
            }),
            other => {
                println!(
                    "SKIPPED: cannot mount a tmpfs here ({other:?}); the disk-full test needs root"
                );
                None
            }
        }
    }

    /// Writes a filler file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.mount.join("filler");
        let mut file = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        for _ in 0..100_000 {
            if file
                .write_all(&chunk)
                .and_then(|()| file.sync_data())
                .is_err()
            {
                break;
            }
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mount)
            .status();
    }
}

/// Defect 7: a full disk answers 503 `SERVICE_UNAVAILABLE` with `Retry-After` (never a 500),
/// `/health` reports it, and both recover by themselves once space is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_with_retry_after_and_recovers_by_itself() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(disk) = SmallDisk::mount(&dir.path().join("disk"), "24m") else {
        return;
    };
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("log dir");
    let mut deployment = Deployment::new(&disk.mount.join("data"), &[]);
    deployment.log_dir = Some(logs);
    let (_server, http) = serve(&deployment, &[]).await;
    let token = register(&http, "disk@giftify.test").await["accessToken"]
        .as_str()
        .expect("a token")
        .to_string();

    let filler = disk.fill();
    let mut refused = 0;
    for attempt in 0..500 {
        let answer = http
            .post("/wallet/topup", Some(&token), &json!({"amount": 1}))
            .await
            .expect("top-up answers");
        match answer.status {
            200 => {}
            503 => {
                assert_eq!(
                    answer.body["error"]["code"], "SERVICE_UNAVAILABLE",
                    "{}",
                    answer.body
                );
                assert!(
                    answer.headers.contains_key("retry-after"),
                    "{attempt}: no Retry-After"
                );
                println!("the disk was full after {attempt} more top-up(s): 503 with Retry-After");
                refused += 1;
                break;
            }
            other => panic!("a full disk answered {other}: {}", answer.body),
        }
    }
    assert!(refused > 0, "no write failed on a full disk");
    let health = http.get("/health", None).await.expect("health answers");
    assert_eq!(health.status, 503, "{}", health.body);
    let login = login(&http, "disk@giftify.test", PASSWORD).await;
    assert!(
        login.status == 503 && login.headers.contains_key("retry-after"),
        "{} {}",
        login.status,
        login.body
    );

    std::fs::remove_file(filler).expect("free the space");
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get("/health", None).await.expect("health").status != 200 {
        assert!(Instant::now() < deadline, "/health did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let topped = http
        .post("/wallet/topup", Some(&token), &json!({"amount": 1}))
        .await
        .expect("top-up answers");
    assert_eq!(topped.status, 200, "{}", topped.body);
}

/// A supplier's CSV of 1,502 rows: 1,500 new codes, a number seen in the file before, and one
/// that is no number.
fn supplier_file(dir: &Path) -> std::path::PathBuf {
    // Numbers are 6 to 32 letters and digits: the random part of a ULID makes them unique.
    let run = &ulid::Ulid::new().to_string()[10..];
    let mut csv = String::from("number,pin,expiryDate\n");
    for i in 0..1_500 {
        csv.push_str(&format!("CLI{run}{i:05},4821,\n"));
    }
    csv.push_str(&format!("CLI{run}00000,4821,\nx,4821,\n"));
    let file = dir.join("codes.csv");
    std::fs::write(&file, csv).expect("the CSV");
    file
}

/// `giftify codes import` twice with the same file: the first run imports it in two parts with
/// a progress bar and names the refused rows, the second imports nothing again.
fn import_the_file_twice(deployment: &Deployment, variant: &str, file: &Path) {
    let args = [
        "codes",
        "import",
        "--variant",
        variant,
        "--batch",
        "SUPPLIER-1",
        file.to_str().expect("utf-8"),
    ];
    let first = deployment.try_run(&args);
    assert!(first.success, "{}{}", first.stdout, first.stderr);
    assert!(
        first
            .stdout
            .starts_with("imported 1500, duplicates 1, invalid 1"),
        "{}",
        first.stdout
    );
    let refused: Vec<&str> = first.stdout.lines().skip(1).collect();
    assert_eq!(refused.len(), 2, "{}", first.stdout);
    assert!(refused[0].ends_with("Duplicate") && refused[1].ends_with("InvalidNumber"));
    assert!(first.stderr.contains("1502/1502 codes"), "{}", first.stderr);
    assert!(
        first.stderr.contains("1000/1502 codes"),
        "a bar per part: {}",
        first.stderr
    );
    // Neither a number nor a PIN is printed.
    assert!(!format!("{}{}", first.stdout, first.stderr).contains("CLI"));
    assert!(!first.stderr.contains("4821") && !first.stdout.contains("4821"));

    let again = deployment.try_run(&args);
    assert!(again.success, "{}{}", again.stdout, again.stderr);
}

/// What the pool holds after the import: the two parts, 1,500 codes, and the variant's stock.
async fn assert_imported(giftify: &giftify_shared::Giftify, variant: &str, stock_before: i64) {
    let variant: giftify_shared::ids::VariantId = variant.parse().expect("a variant id");
    let batches = giftify.code_batches(&variant).await.expect("batches");
    let parts: Vec<(&str, u64)> = batches
        .iter()
        .filter(|b| b.batch_ref.as_str().starts_with("SUPPLIER-1"))
        .map(|b| (b.batch_ref.as_str(), b.available))
        .collect();
    assert_eq!(parts, vec![("SUPPLIER-1.1", 1000), ("SUPPLIER-1.2", 500)]);
    let entry = giftify
        .ports
        .catalogue
        .entries(std::slice::from_ref(&variant))
        .await
        .expect("the variant")
        .remove(0);
    assert_eq!(entry.variant.stock_quantity, stock_before + 1500);
}

/// The first INVENTORY variant of the demo catalogue, and its stock.
async fn a_brand_variant(giftify: &giftify_shared::Giftify) -> (String, i64) {
    let entry = giftify
        .ports
        .catalogue
        .inventory()
        .await
        .expect("the catalogue")
        .into_iter()
        .find(|e| {
            e.variant.fulfillment_source == giftify_shared::codes::FulfillmentSource::Inventory
        })
        .expect("a brand variant");
    (entry.variant.id.to_string(), entry.variant.stock_quantity)
}

/// `giftify codes import` on the embedded backend: the release binary beside a stopped shop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_codes_import_command_loads_a_csv_in_parts_on_the_embedded_backend() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let deployment = Deployment::new(&data, &[]);
    let (mut server, _) = serve(&deployment, &[]).await;
    server.kill();
    let open = || async {
        giftify_infra::EmbeddedStack::open(
            giftify_infra::config::Config {
                data_dir: data.clone(),
                ..giftify_infra::config::Config::default()
            },
            giftify_infra::stack::Opening::ExistingOnly,
        )
        .await
        .expect("the shop's data")
    };
    let (variant, stock) = a_brand_variant(&open().await.giftify).await;

    import_the_file_twice(&deployment, &variant, &supplier_file(dir.path()));

    assert_imported(&open().await.giftify, &variant, stock).await;
}

/// `giftify codes import` on the AWS backend (moto), with the environment a Lambda has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_codes_import_command_loads_a_csv_in_parts_on_the_aws_backend() {
    let stack = giftify_tests::moto::AwsTestStack::start(3, 30).await;
    let giftify = &stack.runtime.giftify;
    giftify
        .seed_demo_catalogue()
        .await
        .expect("the demo catalogue");
    let (variant, stock) = a_brand_variant(giftify).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let env: Vec<(&str, String)> = stack.worker_lambda_env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let deployment = Deployment::new(dir.path(), &pairs);

    import_the_file_twice(&deployment, &variant, &supplier_file(dir.path()));

    assert_imported(giftify, &variant, stock).await;
}

/// An operator suspends and reactivates an account from the machine, as `cli` in the audit
/// log: the way back when no admin can sign in to do it. The suspension holds on the next
/// request; the reactivation lets the account sign in again, its old sessions stay ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_suspends_and_reactivates_an_account_from_the_machine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let deployment = Deployment::new(dir.path(), &[]);
    let (_server, http) = serve(&deployment, &[]).await;
    let account = register(&http, "lena@giftify.test").await;
    assert_eq!(
        access_status(&http, &account["accessToken"], "/wallet/balance").await,
        200
    );

    let unknown = deployment.try_run(&["users", "suspend", "nobody@giftify.test", "--reason", "x"]);
    assert!(
        !unknown.success && unknown.stderr.contains("no account"),
        "{unknown:?}"
    );
    let suspended = deployment.run(&[
        "users",
        "suspend",
        "lena@giftify.test",
        "--reason",
        "chargeback, ticket 31",
    ]);
    assert!(suspended.contains("SUSPENDED"), "{suspended}");
    assert_eq!(
        access_status(&http, &account["accessToken"], "/wallet/balance").await,
        403,
        "held on the next request"
    );
    assert_eq!(
        login(&http, "lena@giftify.test", PASSWORD).await.status,
        403
    );

    let reactivated = deployment.run(&[
        "users",
        "reactivate",
        "lena@giftify.test",
        "--reason",
        "chargeback withdrawn",
    ]);
    assert!(reactivated.contains("ACTIVE"), "{reactivated}");
    assert_eq!(
        refresh(&http, &account["refreshToken"]).await,
        401,
        "old sessions stay ended"
    );
    let again = login(&http, "lena@giftify.test", PASSWORD).await;
    let token = ok(&again)["accessToken"].clone();
    assert_eq!(access_status(&http, &token, "/wallet/balance").await, 200);

    let admin = login(&http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let admin_token = ok(&admin)["accessToken"]
        .as_str()
        .expect("a token")
        .to_string();
    let log = http
        .get("/admin/audit", Some(&admin_token))
        .await
        .expect("audit answers");
    let by_cli: Vec<&str> = ok(&log)["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["actor"] == "cli")
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        by_cli.contains(&"user.suspended") && by_cli.contains(&"user.reactivated"),
        "{by_cli:?}"
    );
}
