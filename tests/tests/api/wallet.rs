//! Wallet top-ups, limits, history and idempotency keys.

use crate::support::{Backend, TestApp, TestResponse, TestUser};
use axum::http::Method;
use serde_json::json;

async fn a_top_up_credits_the_wallet_and_shows_in_the_history(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("topup").await;
    let response = app
        .post(
            "/wallet/topup",
            Some(&user.token),
            json!({"amount": 150_000, "description": "Diwali"}),
        )
        .await;
    let data = response.data();
    assert!(data["transactionId"].as_str().unwrap().starts_with("txn_"));
    assert_eq!(data["amount"], 150_000);
    assert_eq!(data["newBalance"], 150_000);
    assert_eq!(data["status"], "COMPLETED");

    let balance = app.get("/wallet/balance", Some(&user.token)).await;
    assert_eq!(balance.data()["balance"], 150_000);
    assert_eq!(balance.data()["balanceFormatted"], "₹1,500.00");

    let history = app
        .get(
            "/wallet/transactions?page=1&limit=20&type=CREDIT",
            Some(&user.token),
        )
        .await;
    let data = history.data();
    assert_eq!(data["transactions"][0]["amount"], 150_000);
    assert_eq!(data["transactions"][0]["balanceAfter"], 150_000);
    assert_eq!(data["transactions"][0]["description"], "Diwali");
    assert_eq!(
        data["pagination"],
        json!({"page": 1, "limit": 20, "total": 1, "hasNext": false})
    );
    let debits = app
        .get("/wallet/transactions?type=DEBIT", Some(&user.token))
        .await;
    assert_eq!(debits.data()["transactions"], json!([]));
}

async fn top_up_amounts_outside_1_paisa_to_1_lakh_are_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("bounds").await;
    for amount in [
        json!(0),
        json!(-5),
        json!(10_000_001),
        json!(1.5),
        json!("100"),
        json!(9_223_372_036_854_775_807u64),
        json!(1e30),
    ] {
        app.post(
            "/wallet/topup",
            Some(&user.token),
            json!({"amount": amount}),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    }
    assert_eq!(app.balance(&user).await, 0);
    assert_eq!(app.top_up(&user, 1).await.status, 200);
    assert_eq!(app.top_up(&user, 10_000_000).await.status, 200);
}

async fn the_balance_may_not_exceed_two_lakh(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("cap", 10_000_000).await;
    assert_eq!(app.top_up(&user, 10_000_000).await.status, 200);
    app.top_up(&user, 1)
        .await
        .assert_error(422, "WALLET_LIMIT_EXCEEDED");
    assert_eq!(app.balance(&user).await, 20_000_000);
}

async fn transaction_history_paginates_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("pages").await;
    for amount in 1..=5 {
        app.top_up(&user, amount * 100).await;
    }
    let page1 = app
        .get("/wallet/transactions?page=1&limit=2", Some(&user.token))
        .await;
    assert_eq!(
        page1.data()["pagination"],
        json!({"page": 1, "limit": 2, "total": 5, "hasNext": true})
    );
    assert_eq!(page1.data()["transactions"][0]["amount"], 500);
    let page3 = app
        .get("/wallet/transactions?page=3&limit=2", Some(&user.token))
        .await;
    assert_eq!(page3.data()["transactions"].as_array().unwrap().len(), 1);
    assert_eq!(page3.data()["pagination"]["hasNext"], false);
    for query in [
        "page=0",
        "limit=0",
        "limit=1000",
        "page=abc",
        "type=BONUS",
        "page=-1",
    ] {
        app.get(&format!("/wallet/transactions?{query}"), Some(&user.token))
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
}

async fn an_idempotency_key_replays_the_first_top_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("idem").await;
    let send = |amount: i64, key: &'static str| {
        let token = user.token.clone();
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/wallet/topup",
                Some(&token),
                Some(json!({"amount": amount})),
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    let first = send(5_000, "topup-1").await;
    let again = send(5_000, "topup-1").await;
    assert_eq!(first.status, 200);
    assert_eq!(again.status, 200);
    assert_eq!(
        first.data(),
        again.data(),
        "the replay is the first response"
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.balance(&user).await, 5_000, "credited once");

    send(6_000, "topup-1")
        .await
        .assert_error(422, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(send(6_000, "topup-2").await.status, 200);
    assert_eq!(app.balance(&user).await, 11_000);

    // Keys are scoped per user: another user's identical key is a fresh request.
    let other = app.register("idem-other").await;
    let theirs = app
        .call(
            Method::POST,
            "/wallet/topup",
            Some(&other.token),
            Some(json!({"amount": 5_000})),
            &[("idempotency-key", "topup-1")],
        )
        .await;
    assert_eq!(theirs.status, 200);
    assert_ne!(
        theirs.data()["transactionId"],
        first.data()["transactionId"]
    );
}

async fn a_failed_request_replays_its_error_under_the_same_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("idem-err", 10_000_000).await;
    assert_eq!(app.top_up(&user, 10_000_000).await.status, 200);
    let send = || {
        app.call(
            Method::POST,
            "/wallet/topup",
            Some(&user.token),
            Some(json!({"amount": 100})),
            &[("idempotency-key", "k")],
        )
    };
    send().await.assert_error(422, "WALLET_LIMIT_EXCEEDED");
    let replay = send().await;
    replay.assert_error(422, "WALLET_LIMIT_EXCEEDED");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let bad = app
        .call(
            Method::POST,
            "/wallet/topup",
            Some(&user.token),
            Some(json!({"amount": 100})),
            &[("idempotency-key", "")],
        )
        .await;
    bad.assert_error(400, "VALIDATION_ERROR");
}

/// Splits one CSV line into its fields (RFC 4180 quoting).
pub(crate) fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Rupees with two decimals back to paise.
pub(crate) fn paise(rupees: &str) -> i64 {
    let negative = rupees.starts_with('-');
    let (whole, fraction) = rupees
        .trim_start_matches('-')
        .split_once('.')
        .expect("two decimals");
    let value =
        whole.parse::<i64>().expect("rupees") * 100 + fraction.parse::<i64>().expect("paise");
    if negative { -value } else { value }
}

/// The caller's CSV statement from `from` (a date, or an RFC 3339 instant).
async fn statement_from(app: &TestApp, user: &TestUser, from: &str) -> TestResponse {
    let from = from.replace('+', "%2B");
    app.get(
        &format!("/wallet/statement.csv?from={from}"),
        Some(&user.token),
    )
    .await
}

/// The statement's rows, checked to add up: each balance is the one before plus the amount,
/// and the last is the closing balance. Returns (opening, the transaction rows, closing).
fn checked_statement(csv: &str) -> (i64, Vec<Vec<String>>, i64) {
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "time,transactionId,type,description,orderId,amount,balanceAfter"
    );
    let rows: Vec<Vec<String>> = lines[1..].iter().map(|l| csv_fields(l)).collect();
    let (first, last) = (&rows[0], &rows[rows.len() - 1]);
    assert_eq!(first[2], "OPENING_BALANCE");
    assert_eq!(last[2], "CLOSING_BALANCE");
    let opening = paise(&first[6]);
    let entries = rows[1..rows.len() - 1].to_vec();
    let mut running = opening;
    for row in &entries {
        running += paise(&row[5]);
        assert_eq!(paise(&row[6]), running, "{row:?}");
    }
    let closing = paise(&last[6]);
    assert_eq!(running, closing, "the statement adds up");
    (opening, entries, closing)
}

/// The history filters by period, and the CSV statement holds exactly the ledger: its rows are
/// the transactions, its amounts add up from the opening to the closing balance, and text a
/// spreadsheet would run is defused.
async fn a_statement_holds_the_ledger_and_adds_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("statement").await;
    let other = app.funded_user("statement-other", 5_000).await;
    let first = app
        .post(
            "/wallet/topup",
            Some(&user.token),
            json!({"amount": 100_000, "description": "=HYPERLINK(\"x\"), then some"}),
        )
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let since = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(app.top_up(&user, 25_050).await.status, 200);
    let (variant, price, _) = app.some_variant().await;
    let ordered = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    assert_eq!(ordered.status, 202, "{:?}", ordered.body);
    app.drain_queue().await;
    let adjusted = app
        .call(
            Method::POST,
            &format!("/admin/users/{}/wallet/adjustments", user.id),
            Some(&app.admin_token),
            Some(json!({"amount": -50, "reason": "Rounding, ticket 7"})),
            &[("idempotency-key", "statement-adj")],
        )
        .await;
    assert_eq!(adjusted.status, 200, "{:?}", adjusted.body);
    let balance = app.balance(&user).await;
    assert_eq!(balance, 100_000 + 25_050 - price - 50);

    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let whole = statement_from(&app, &user, &yesterday).await;
    assert_eq!(whole.status, 200, "{:?}", whole.body);
    assert!(
        whole
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/csv")),
        "{:?}",
        whole.header("content-type")
    );
    assert!(
        whole
            .header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment; filename=\"giftify-statement-"))
    );
    let csv = whole.body.as_str().expect("csv text");
    let (opening, entries, closing) = checked_statement(csv);
    assert_eq!((opening, closing), (0, balance));
    let history = app
        .get("/wallet/transactions?limit=100", Some(&user.token))
        .await;
    let mut ledger: Vec<String> = history.data()["transactions"]
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["transactionId"].as_str().expect("id").to_string())
        .collect();
    ledger.reverse();
    let rows: Vec<String> = entries.iter().map(|row| row[1].clone()).collect();
    assert_eq!(rows, ledger, "the statement is the ledger, oldest first");
    assert_eq!(
        entries[0][3], "'=HYPERLINK(\"x\"), then some",
        "defused and quoted back"
    );
    assert!(
        entries
            .iter()
            .any(|row| row[2] == "ADJUSTMENT" && row[5] == "-0.50")
    );
    assert!(!csv.contains(&other.id), "only the caller's wallet");

    let since_text = since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let part = statement_from(&app, &user, &since_text).await;
    let (opening, entries, closing) = checked_statement(part.body.as_str().expect("csv"));
    assert_eq!(opening, 100_000, "the balance when the period opens");
    assert_eq!(entries.len(), ledger.len() - 1);
    assert_eq!(closing, balance);
    let listed = app
        .get(
            &format!(
                "/wallet/transactions?from={}",
                since_text.replace('+', "%2B")
            ),
            Some(&user.token),
        )
        .await;
    assert_eq!(
        listed.data()["pagination"]["total"].as_u64(),
        Some(entries.len() as u64)
    );
    let empty = app
        .get("/wallet/transactions?to=2020-01-01", Some(&user.token))
        .await;
    assert_eq!(empty.data()["pagination"]["total"], 0);

    for bad in [
        "/wallet/statement.csv?from=yesterday",
        "/wallet/statement.csv?from=2026-01-02&to=2026-01-01",
        "/wallet/statement.csv?from=2024-01-01&to=2026-01-01",
        "/wallet/transactions?from=2026-01-02&to=2026-01-01",
        "/wallet/transactions?to=soon",
    ] {
        app.get(bad, Some(&user.token))
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    app.get("/wallet/statement.csv", None)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

crate::on_both_backends!(
    a_statement_holds_the_ledger_and_adds_up,
    a_top_up_credits_the_wallet_and_shows_in_the_history,
    top_up_amounts_outside_1_paisa_to_1_lakh_are_400,
    the_balance_may_not_exceed_two_lakh,
    transaction_history_paginates_newest_first,
    an_idempotency_key_replays_the_first_top_up,
    a_failed_request_replays_its_error_under_the_same_key,
);

/// A statement holds at most `MAX_STATEMENT_ENTRIES` transactions: a period with one more is a
/// 400 naming `from`, and a shorter period answers. Embedded only: the cap is the core's rule,
/// and ten thousand ledger entries written through moto would take minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_of_more_transactions_than_the_cap_is_refused() {
    use giftify_shared::ids::UserId;
    use giftify_shared::usecases::MAX_STATEMENT_ENTRIES;
    let app = TestApp::spawn(Backend::Embedded).await;
    let user = app.register("busy-wallet").await;
    let id = UserId::parse(&user.id).expect("a user id");
    let mut topping_up = tokio::task::JoinSet::new();
    for _ in 0..MAX_STATEMENT_ENTRIES {
        let (giftify, id) = (app.giftify().clone(), id.clone());
        topping_up.spawn(async move { giftify.top_up(&id, 1, None).await });
        if topping_up.len() >= 64 {
            topping_up
                .join_next()
                .await
                .expect("a task")
                .expect("joined")
                .expect("a one-paisa top-up");
        }
    }
    while let Some(done) = topping_up.join_next().await {
        done.expect("joined").expect("a one-paisa top-up");
    }
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let at_the_cap = statement_from(&app, &user, &yesterday).await;
    assert_eq!(at_the_cap.status, 200, "exactly the cap is one statement");
    let (_, entries, closing) = checked_statement(at_the_cap.body.as_str().expect("csv text"));
    assert_eq!(entries.len(), MAX_STATEMENT_ENTRIES as usize);
    assert_eq!(closing, i64::from(MAX_STATEMENT_ENTRIES));

    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let since = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(app.top_up(&user, 1).await.status, 200);
    let over = statement_from(&app, &user, &yesterday).await;
    over.assert_error(400, "VALIDATION_ERROR");
    assert!(
        over.body.to_string().contains("shorter"),
        "the answer says what to do: {}",
        over.body
    );
    let since_text = since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let shorter = statement_from(&app, &user, &since_text).await;
    assert_eq!(shorter.status, 200, "{:?}", shorter.body);
    let (opening, entries, closing) = checked_statement(shorter.body.as_str().expect("csv text"));
    assert_eq!(entries.len(), 1, "only the top-up after `since`");
    assert_eq!(
        (opening, closing),
        (
            i64::from(MAX_STATEMENT_ENTRIES),
            i64::from(MAX_STATEMENT_ENTRIES) + 1
        )
    );
}
