//! Secrets where they must never be: gift card numbers and PINs (and passwords, refresh
//! tokens, access tokens) in the logs of a whole register → order → fulfil → reveal run
//! captured at TRACE level, and at rest — the raw SQLite file and rows, the raw DynamoDB
//! items of every table, the published events.

use crate::support::{Backend, PASSWORD, Stack, TestApp, TestUser};
use crate::{Attacks, user_with_cards};
use axum::http::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How many captures are running; the layers below record only while one is.
static CAPTURING: AtomicUsize = AtomicUsize::new(0);
/// Everything recorded while capturing, in both formats.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Appends to [`LOG`].
struct Sink;

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs, once per test binary, a subscriber that writes every event and span at TRACE —
/// from Giftify, axum, tower-http, the AWS SDK and anything using `log` — as readable text
/// and as JSON (the Lambda format) into [`LOG`], while a capture runs. Timestamps are left
/// out so that only what the code logs can match a secret.
fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let capturing = || filter_fn(|_| CAPTURING.load(Ordering::SeqCst) > 0);
        let text = tracing_subscriber::fmt::layer()
            .with_writer(|| Sink)
            .with_ansi(false)
            .without_time()
            .with_span_events(FmtSpan::FULL)
            .with_filter(capturing());
        let json = tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(|| Sink)
            .without_time()
            .with_filter(capturing());
        tracing_subscriber::registry()
            .with(text)
            .with(json)
            .try_init()
            .expect("the capturing subscriber is the only one in this test binary");
    });
}

/// Records the logs of everything that runs while it lives.
struct Capture;

impl Capture {
    fn start() -> Capture {
        install();
        CAPTURING.fetch_add(1, Ordering::SeqCst);
        Capture
    }

    /// What was recorded so far (by this capture and any running alongside it).
    fn text(&self) -> String {
        String::from_utf8_lossy(
            &LOG.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A revealed card: its number (`1234-5678-9012-3456`) and PIN.
struct Revealed {
    number: String,
    pin: String,
}

impl Revealed {
    /// The number without dashes.
    fn digits(&self) -> String {
        self.number.replace('-', "")
    }

    /// Where `text` shows this card's number or PIN, if anywhere. A PIN is six digits, so a
    /// bare digit run could be a coincidence (an amount, a time); what is looked for is the
    /// PIN as a quoted value or near the word "pin" — how a leak would look.
    fn leak_in(&self, text: &str) -> Option<&'static str> {
        if text.contains(&self.number) {
            return Some("the card number");
        }
        if text.contains(&self.digits()) {
            return Some("the card number's digits");
        }
        if text.contains(&format!("\"{}\"", self.pin))
            || text.contains(&format!("\\\"{}\\\"", self.pin))
        {
            return Some("the PIN, quoted");
        }
        let lower = text.to_lowercase();
        let mut from = 0;
        while let Some(at) = lower[from..].find(&self.pin) {
            let at = from + at;
            let window = &lower[at.saturating_sub(40)..at];
            if window.contains("pin") {
                return Some("the PIN, next to its name");
            }
            from = at + 1;
        }
        None
    }

    /// Whether `text` holds the PIN as a standalone digit run (for stored text cells, which
    /// hold few numbers).
    fn pin_token_in(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        let mut from = 0;
        while let Some(at) = text[from..].find(&self.pin) {
            let at = from + at;
            let end = at + self.pin.len();
            let before = at == 0 || !bytes[at - 1].is_ascii_digit();
            let after = end == bytes.len() || !bytes[end].is_ascii_digit();
            if before && after {
                return true;
            }
            from = at + 1;
        }
        false
    }
}

/// Reveals every card of the order.
async fn reveal_all(
    app: &TestApp,
    user: &TestUser,
    order: &str,
    cards: &[String],
) -> Vec<Revealed> {
    let mut revealed = Vec::new();
    for card in cards {
        let response = app
            .call(
                Method::POST,
                &format!("/orders/{order}/gift-cards/{card}/reveal"),
                Some(&user.token),
                None,
                &[],
            )
            .await;
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(response.header("cache-control"), Some("no-store"));
        let data = response.data();
        revealed.push(Revealed {
            number: data["giftCardNumber"].as_str().expect("number").to_string(),
            pin: data["giftCardPin"].as_str().expect("pin").to_string(),
        });
    }
    revealed
}

async fn card_numbers_pins_passwords_and_tokens_never_reach_the_logs_even_at_trace_level(
    backend: Backend,
) {
    let capture = Capture::start();
    let app = TestApp::spawn(backend).await;
    let mut attacks = Attacks::new("secrets in logs", backend);

    // The whole flow, with its error paths: register, log in (once wrongly), refresh, top up,
    // order, fulfil, poll, reveal, reveal someone else's card, read history and events.
    let (user, order, cards) = user_with_cards(&app, "logged").await;
    let wrong = app
        .post(
            "/auth/login",
            None,
            json!({"email": user.email, "password": "wrong password 1"}),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let login = app
        .post(
            "/auth/login",
            None,
            json!({"email": user.email, "password": PASSWORD}),
        )
        .await;
    let refresh_token = login.data()["refreshToken"]
        .as_str()
        .expect("refresh")
        .to_string();
    let refreshed = app
        .post(
            "/auth/refresh",
            None,
            json!({"refreshToken": refresh_token}),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let revealed = reveal_all(&app, &user, &order, &cards).await;
    let other = app.register("nosy").await;
    let nosy = app
        .call(
            Method::POST,
            &format!("/orders/{order}/gift-cards/{}/reveal", cards[0]),
            Some(&other.token),
            None,
            &[],
        )
        .await;
    assert_eq!(nosy.status, 404);
    app.order(&user, &order).await;
    app.get("/wallet/transactions", Some(&user.token)).await;
    app.events().await;

    let logs = capture.text();
    drop(capture);
    // The capture worked: the reveal route and the fulfilled order are in it.
    assert!(
        logs.contains("/orders/{orderId}/gift-cards/{giftCardId}/reveal"),
        "the capture recorded no request spans"
    );
    assert!(
        logs.contains(&order),
        "the capture recorded nothing about the order"
    );
    assert!(
        logs.contains("TRACE") || logs.contains("\"level\":\"TRACE\""),
        "not at TRACE"
    );

    for card in &revealed {
        attacks.tried();
        if let Some(what) = card.leak_in(&logs) {
            let at = logs
                .find(&card.digits())
                .or_else(|| logs.find(&card.number))
                .unwrap_or(0);
            panic!(
                "{what} reached the logs: …{}…",
                &logs[at.saturating_sub(300)..(at + 100).min(logs.len())]
            );
        }
    }
    for (what, secret) in [
        ("the password", PASSWORD.to_string()),
        ("a refresh token", user.refresh_token.clone()),
        ("a rotated refresh token", refresh_token),
        ("an access token", user.token.clone()),
        ("the JWT key", crate::jwt_secret(&app)),
    ] {
        attacks.tried();
        assert!(!logs.contains(&secret), "{what} reached the logs");
    }
    attacks.tried();
    assert!(
        !logs.contains("wrong password 1"),
        "a failed password reached the logs"
    );
}

/// Every text cell of every table of the embedded database.
fn sqlite_cells(app: &TestApp) -> Vec<(String, String)> {
    let db = app.raw_db();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .expect("tables")
        .query_map([], |row| row.get(0))
        .expect("query")
        .map(|name| name.expect("name"))
        .collect();
    let mut cells = Vec::new();
    for table in tables {
        let mut statement = db
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("select");
        let columns = statement.column_count();
        let mut rows = statement.query([]).expect("rows");
        while let Some(row) = rows.next().expect("row") {
            for column in 0..columns {
                let value = match row.get_ref(column).expect("cell") {
                    rusqlite::types::ValueRef::Text(bytes)
                    | rusqlite::types::ValueRef::Blob(bytes) => {
                        String::from_utf8_lossy(bytes).into_owned()
                    }
                    rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                    rusqlite::types::ValueRef::Real(x) => x.to_string(),
                    rusqlite::types::ValueRef::Null => continue,
                };
                cells.push((table.clone(), value));
            }
        }
    }
    cells
}

/// Every attribute value of every item of every table of the stage, as text.
async fn dynamodb_cells(app: &TestApp) -> Vec<(String, String)> {
    let Stack::Aws { stack, .. } = &app.stack else {
        unreachable!("the AWS backend")
    };
    let client = aws_sdk_dynamodb::Client::new(&giftify_tests::moto::moto().sdk_config().await);
    let mut cells = Vec::new();
    for table in giftify_infra::aws::tables::ALL {
        let name = table.name(Some(&stack.stage));
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name(&name)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            for item in page.items() {
                for value in item.values() {
                    cells.push((name.clone(), attribute_text(value)));
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
    }
    cells
}

fn attribute_text(value: &aws_sdk_dynamodb::types::AttributeValue) -> String {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match value {
        A::S(s) | A::N(s) => s.clone(),
        A::B(blob) => String::from_utf8_lossy(blob.as_ref()).into_owned(),
        A::Ss(list) | A::Ns(list) => list.join(" "),
        A::L(list) => list
            .iter()
            .map(attribute_text)
            .collect::<Vec<_>>()
            .join(" "),
        A::M(map) => map
            .values()
            .map(attribute_text)
            .collect::<Vec<_>>()
            .join(" "),
        other => format!("{other:?}"),
    }
}

async fn card_numbers_pins_passwords_and_refresh_tokens_are_never_stored_in_plaintext(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let mut attacks = Attacks::new("secrets at rest", backend);
    let (user, order, cards) = user_with_cards(&app, "atrest").await;
    let revealed = reveal_all(&app, &user, &order, &cards).await;

    let cells = match backend {
        Backend::Embedded => sqlite_cells(&app),
        Backend::Aws => dynamodb_cells(&app).await,
    };
    assert!(
        cells.iter().any(|(_, value)| value.contains(&order)),
        "the scan found the order, so it read the real data"
    );
    // Every reveal was audited, naming who revealed: one record per reveal.
    let audited = cells
        .iter()
        .filter(|(table, value)| {
            (table == "gift_card_reveals" || table.ends_with("-audit")) && *value == user.id
        })
        .count();
    assert_eq!(audited, revealed.len(), "reveals audited");
    for card in &revealed {
        // Not the number, its digits, an unkeyed hash of either (16 digits are too few to
        // resist a dictionary), nor the PIN.
        let unkeyed = [
            hex::encode(Sha256::digest(card.number.as_bytes())),
            hex::encode(Sha256::digest(card.digits().as_bytes())),
        ];
        // Searched for in every stored value: the number, its digits, two unkeyed hashes,
        // the PIN.
        for _ in 0..5 {
            attacks.tried();
        }
        for (table, value) in &cells {
            assert!(
                !value.contains(&card.number) && !value.contains(&card.digits()),
                "a card number is stored in plaintext in {table}"
            );
            assert!(
                !card.pin_token_in(value),
                "a PIN is stored in plaintext in {table}"
            );
            assert!(
                !unkeyed.iter().any(|hash| value.contains(hash.as_str())),
                "an unkeyed hash of a card number is stored in {table}"
            );
        }
    }
    for (what, secret) in [
        ("the password", PASSWORD.to_string()),
        ("a refresh token", user.refresh_token.clone()),
        ("an access token", user.token.clone()),
    ] {
        attacks.tried();
        assert!(
            !cells.iter().any(|(_, value)| value.contains(&secret)),
            "{what} is stored in plaintext"
        );
    }

    // Below the rows: the database file and its write-ahead log, byte for byte.
    if backend == Backend::Embedded {
        for file in ["giftify.db", "giftify.db-wal"] {
            let path = app.dir.path().join(file);
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            for card in &revealed {
                attacks.tried();
                assert!(
                    !text.contains(&card.number) && !text.contains(&card.digits()),
                    "a card number is in {file}"
                );
            }
            attacks.tried();
            assert!(!text.contains(PASSWORD), "the password is in {file}");
        }
    }

    // Events leave the system: they carry amounts and items, never a card's secrets.
    let events = serde_json::to_string(&app.events().await).expect("json");
    assert!(events.contains(&order), "the order's event was published");
    for card in &revealed {
        attacks.tried();
        assert!(
            card.leak_in(&events).is_none(),
            "a card secret is in an event"
        );
    }
}

crate::on_both_backends!(
    card_numbers_pins_passwords_and_tokens_never_reach_the_logs_even_at_trace_level,
    card_numbers_pins_passwords_and_refresh_tokens_are_never_stored_in_plaintext,
);
