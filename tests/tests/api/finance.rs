//! Admin finance: analytics over a range of days with its daily series and the seed's
//! metrics, and the CSV exports of orders and ledger entries, which add up to the ledger.

use crate::support::{Backend, TestApp, TestUser};
use crate::wallet::{csv_fields, paise};
use serde_json::{Value, json};

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

fn days_from_today(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(days)).to_string()
}

/// The rows of an export under its header.
fn rows(csv: &Value, header: &str) -> Vec<Vec<String>> {
    let text = csv.as_str().expect("a CSV body");
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    assert_eq!(lines.next(), Some(header));
    lines.map(csv_fields).collect()
}

async fn analytics(app: &TestApp, query: &str) -> Value {
    let response = app
        .get(&format!("/admin/analytics{query}"), Some(&app.admin_token))
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.data().clone()
}

/// Users top up, fill carts, check one out and abandon the other, and one order is refused
/// for its balance; the day's figures say so, what is owed is what the wallets hold, and a
/// range holds one entry per day.
async fn analytics_over_a_range_carry_a_daily_series_and_the_seeds_metrics(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A brand card: no Giftify card is owed after the sale, only balances.
    let (variant, price, _) = app.demo_variant("Amazon").await;
    let buyer = app.funded_user("fin-buyer", 300_000).await;
    let browser = app.funded_user("fin-browser", 1_000).await;
    for user in [&buyer, &browser] {
        let added = app
            .put(
                "/cart/manage",
                Some(&user.token),
                json!({"variantId": variant, "quantity": 1}),
            )
            .await;
        assert_eq!(added.status, 200, "{}", added.body);
    }
    let checkout = app
        .post("/orders/create", Some(&buyer.token), json!({}))
        .await;
    assert_eq!(checkout.status, 202, "{}", checkout.body);
    app.drain_queue().await;
    let refused = app
        .order_items(&browser, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    refused.assert_error(422, "INSUFFICIENT_BALANCE");

    let data = analytics(&app, &format!("?from={}&to={}", today(), today())).await;
    assert_eq!(
        (data["from"].as_str(), data["to"].as_str()),
        (Some(&*today()), Some(&*today()))
    );
    assert_eq!(data["ordersPlaced"], 1);
    assert_eq!(data["gmv"], price);
    assert_eq!(data["revenue"], price);
    assert_eq!(data["ordersByStatus"]["FULFILLED"], 1);
    assert_eq!(
        (data["topUps"].as_i64(), data["topUpAmount"].as_i64()),
        (Some(2), Some(301_000))
    );
    assert_eq!(data["walletRefusals"], 1);
    assert_eq!(
        data["walletTransactionSuccessRate"], 0.75,
        "3 of 4 wallet attempts"
    );
    assert_eq!(
        (
            data["cartsStarted"].as_i64(),
            data["cartsCheckedOut"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(data["cartAbandonmentRate"], 0.5);
    // The two customers and the admin reading this.
    assert_eq!(data["dailyActiveUsers"], 3.0);
    assert_eq!(data["monthlyActiveUsers"][0]["activeUsers"], 3);
    let owed = app.balance(&buyer).await + app.balance(&browser).await;
    assert_eq!(data["outstandingLiability"], owed);
    assert_eq!(data["walletBalances"], owed);
    let daily = data["daily"].as_array().expect("a series");
    assert_eq!(daily.len(), 1);
    assert_eq!(daily[0]["date"], today().as_str());
    assert_eq!(daily[0]["revenue"], price);
    assert_eq!(daily[0]["outstandingLiability"], owed);

    // A week ending today: one entry per day, the quiet ones zero, what is owed carried.
    let week = analytics(
        &app,
        &format!("?from={}&to={}", days_from_today(-6), today()),
    )
    .await;
    let days = week["daily"].as_array().expect("a series");
    assert_eq!(days.len(), 7);
    assert!(
        days[..6]
            .iter()
            .all(|d| d["ordersPlaced"] == 0 && d["outstandingLiability"] == 0)
    );
    assert_eq!(days[6]["outstandingLiability"], owed);
    // Everything (no range) is the same as today here.
    let all = analytics(&app, "").await;
    assert_eq!(
        (all["revenue"].clone(), all["gmv"].clone()),
        (json!(price), json!(price))
    );
    assert_eq!(all["from"], today().as_str());

    for (query, field) in [
        (
            format!("?from={}&to={}", today(), days_from_today(-1)),
            "from",
        ),
        (
            format!("?from={}&to={}", days_from_today(-366), today()),
            "to",
        ),
        ("?from=yesterday".to_string(), "from"),
        (format!("?from={}", days_from_today(1)), "from"),
    ] {
        let bad = app
            .get(&format!("/admin/analytics{query}"), Some(&app.admin_token))
            .await;
        bad.assert_error(400, "VALIDATION_ERROR");
        assert!(
            bad.body.to_string().contains(field),
            "{query}: {}",
            bad.body
        );
    }
}

async fn transactions_of(app: &TestApp, user: &TestUser) -> Vec<Value> {
    app.get("/wallet/transactions?limit=100", Some(&user.token))
        .await
        .data()["transactions"]
        .as_array()
        .expect("transactions")
        .clone()
}

/// The exports hold exactly the period's orders and ledger entries: every user's
/// transactions, amounts that add up to the balances, and orders whose payments are the
/// ledger's debits. Admins only; a period backwards is refused.
async fn exports_of_orders_and_ledger_entries_add_up_to_the_ledger(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (variant, _, _) = app.some_variant().await;
    let a = app.funded_user("exp-a", 500_000).await;
    let b = app.funded_user("exp-b", 200_000).await;
    let kept = app
        .order_items(&a, json!([{"variantId": variant, "quantity": 2}]))
        .await;
    assert_eq!(kept.status, 202, "{}", kept.body);
    let cancelled = app
        .order_items(&b, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let cancelled_id = cancelled.data()["orderId"]
        .as_str()
        .expect("id")
        .to_string();
    let cancel = app
        .post(
            &format!("/orders/{cancelled_id}/cancel"),
            Some(&b.token),
            json!({}),
        )
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    app.drain_queue().await;
    let period = format!("?from={}&to={}", today(), days_from_today(1));

    let ledger = app
        .get(
            &format!("/admin/exports/ledger.csv{period}"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(ledger.status, 200, "{}", ledger.body);
    assert!(
        ledger
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/csv")
    );
    let entries = rows(
        &ledger.body,
        "time,transactionId,userId,type,description,orderId,amount,balanceAfter",
    );
    let mut expected = transactions_of(&app, &a).await;
    expected.extend(transactions_of(&app, &b).await);
    assert_eq!(entries.len(), expected.len());
    let mut ids: Vec<&str> = entries.iter().map(|r| r[1].as_str()).collect();
    let mut expected_ids: Vec<&str> = expected
        .iter()
        .map(|t| t["transactionId"].as_str().expect("id"))
        .collect();
    ids.sort_unstable();
    expected_ids.sort_unstable();
    assert_eq!(ids, expected_ids);
    let total: i64 = entries.iter().map(|r| paise(&r[6])).sum();
    assert_eq!(total, app.balance(&a).await + app.balance(&b).await);
    assert!(entries.windows(2).all(|w| w[0][0] <= w[1][0]), "by time");

    let orders = app
        .get(
            &format!("/admin/exports/orders.csv{period}"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(orders.status, 200, "{}", orders.body);
    let orders = rows(
        &orders.body,
        "createdAt,orderId,userId,status,source,totalAmount,paidAmount,refundAmount,\
         requestedUnits,fulfilledUnits,fulfilledValue,fulfilledCost,updatedAt,refundReason,\
         clientReference",
    );
    assert_eq!(orders.len(), 2);
    let statuses: Vec<&str> = orders.iter().map(|r| r[3].as_str()).collect();
    assert!(
        statuses.contains(&"FULFILLED") && statuses.contains(&"CANCELLED"),
        "{statuses:?}"
    );
    let paid: i64 = orders.iter().map(|r| paise(&r[6])).sum();
    let debits: i64 = entries
        .iter()
        .filter(|r| r[3] == "DEBIT")
        .map(|r| -paise(&r[6]))
        .sum();
    assert_eq!(paid, debits, "the orders' payments are the ledger's debits");
    let refunded: i64 = orders.iter().map(|r| paise(&r[7])).sum();
    let refunds: i64 = entries
        .iter()
        .filter(|r| r[3] == "REFUND")
        .map(|r| paise(&r[6]))
        .sum();
    assert_eq!(refunded, refunds);

    app.get(
        &format!("/admin/exports/ledger.csv{period}"),
        Some(&a.token),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    app.get(
        &format!(
            "/admin/exports/orders.csv?from={}&to={}",
            today(),
            days_from_today(-1)
        ),
        Some(&app.admin_token),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    let empty = app
        .get(
            &format!(
                "/admin/exports/orders.csv?from={}&to={}",
                days_from_today(-3),
                days_from_today(-2)
            ),
            Some(&app.admin_token),
        )
        .await;
    assert!(
        rows(&empty.body, "createdAt,orderId,userId,status,source,totalAmount,paidAmount,refundAmount,requestedUnits,fulfilledUnits,fulfilledValue,fulfilledCost,updatedAt,refundReason,clientReference").is_empty()
    );
}

crate::on_both_backends!(
    analytics_over_a_range_carry_a_daily_series_and_the_seeds_metrics,
    exports_of_orders_and_ledger_entries_add_up_to_the_ledger,
);
