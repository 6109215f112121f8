//! The money and stock invariants of DESIGN §7, checked through the API only, so the same
//! checks hold any backend to account — through the router in-process ([`TestApp`]), or over
//! HTTP against real `giftify` processes (the crash and soak tests implement [`Api`] too).

use crate::support::{TestApp, TestResponse, TestUser};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;

/// What the checks need from an API: authenticated GETs, and an admin token for the
/// inventory.
pub trait Api {
    /// `GET path`, with the bearer token when given.
    fn get(&self, path: &str, token: Option<&str>) -> impl Future<Output = TestResponse>;
    /// A live access token of an ADMIN.
    fn admin_token(&self) -> &str;
}

impl Api for TestApp {
    fn get(&self, path: &str, token: Option<&str>) -> impl Future<Output = TestResponse> {
        TestApp::get(self, path, token)
    }

    fn admin_token(&self) -> &str {
        &self.admin_token
    }
}

impl<A: Api> Api for std::sync::Arc<A> {
    fn get(&self, path: &str, token: Option<&str>) -> impl Future<Output = TestResponse> {
        A::get(self, path, token)
    }

    fn admin_token(&self) -> &str {
        A::admin_token(self)
    }
}

/// The user's wallet balance.
pub async fn balance(app: &impl Api, user: &TestUser) -> i64 {
    app.get("/wallet/balance", Some(&user.token)).await.data()["balance"]
        .as_i64()
        .expect("balance")
}

/// Every page of a paginated list endpoint.
pub async fn all_pages(app: &impl Api, path: &str, token: &str, key: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let separator = if path.contains('?') { '&' } else { '?' };
    for page in 1.. {
        let response = app
            .get(
                &format!("{path}{separator}page={page}&limit=100"),
                Some(token),
            )
            .await;
        let data = response.data();
        items.extend(data[key].as_array().expect("list").iter().cloned());
        if !data["pagination"]["hasNext"].as_bool().expect("hasNext") {
            break;
        }
    }
    items
}

/// Stock per variant id, from the admin inventory.
pub async fn stock_by_variant(app: &impl Api) -> HashMap<String, i64> {
    let inventory = app.get("/admin/inventory", Some(app.admin_token())).await;
    inventory.data()["inventory"]
        .as_array()
        .expect("inventory array")
        .iter()
        .map(|v| {
            (
                v["variantId"].as_str().expect("variantId").to_string(),
                v["stockQuantity"].as_i64().expect("stock"),
            )
        })
        .collect()
}

/// Checks, for these users (who must be every user that moved money):
/// - each order is final, and `paidAmount = fulfilled value + refundAmount`;
/// - each wallet: Σ credits − Σ debits + Σ refunds + Σ adjustments = balance ≥ 0, and the
///   money rule: Σ top-ups + Σ face value redeemed + Σ admin adjustments (signed) = balance +
///   Σ price of fulfilled, not returned cards;
/// - one DEBIT per order; one REFUND when the order refunded something, and one more per
///   returned card, of its price;
/// - stock: initial − current = gift cards issued − cards returned, per variant, and no stock
///   is negative.
pub async fn assert_conserved(
    app: &impl Api,
    users: &[TestUser],
    initial_stock: &HashMap<String, i64>,
) {
    let mut issued: HashMap<String, i64> = HashMap::new();
    let mut returned: HashMap<String, i64> = HashMap::new();
    for user in users {
        let balance = balance(app, user).await;
        assert!(balance >= 0, "negative balance for {}", user.email);
        let transactions =
            all_pages(app, "/wallet/transactions", &user.token, "transactions").await;
        let sum = |kind: &str| -> i64 {
            transactions
                .iter()
                .filter(|t| t["type"] == kind)
                .map(|t| t["amount"].as_i64().expect("amount"))
                .sum()
        };
        // Money in: top-ups, the face value of Giftify cards redeemed into this wallet, and
        // admins' corrections (signed).
        let credits = sum("CREDIT") + sum("REDEEM") + sum("ADJUSTMENT");
        let (debits, refunds) = (sum("DEBIT"), sum("REFUND"));
        assert_eq!(
            credits - debits + refunds,
            balance,
            "ledger of {} does not add up",
            user.email
        );

        let orders = all_pages(app, "/orders", &user.token, "orders").await;
        let mut fulfilled_value = 0;
        for summary in &orders {
            let id = summary["orderId"].as_str().expect("orderId");
            let order = app.get(&format!("/orders/{id}"), Some(&user.token)).await;
            let order = order.data();
            let status = order["status"].as_str().expect("status");
            assert!(
                ["FULFILLED", "PARTIALLY_FULFILLED", "REFUNDED", "CANCELLED"].contains(&status),
                "order {id} is not final: {status}"
            );
            let paid = order["paidAmount"].as_i64().expect("paid");
            let refund = order["refundAmount"].as_i64().expect("refund");
            let items = order["items"].as_array().expect("items");
            let value: i64 = items
                .iter()
                .map(|l| l["fulfilledPrice"].as_i64().expect("fulfilledPrice"))
                .sum();
            assert_eq!(
                paid,
                value + refund,
                "order {id}: paid ≠ fulfilled + refund"
            );
            for line in items {
                let unit = line["unitPrice"].as_i64().expect("unitPrice");
                let requested = line["requestedQuantity"].as_i64().expect("requested");
                let fulfilled = line["fulfilledQuantity"].as_i64().expect("fulfilled");
                assert!((0..=requested).contains(&fulfilled));
                assert_eq!(
                    line["refundedPrice"].as_i64(),
                    Some(unit * (requested - fulfilled)),
                    "order {id}"
                );
                *issued
                    .entry(line["variantId"].as_str().expect("variantId").to_string())
                    .or_default() += fulfilled;
            }
            let cards = order["giftCards"].as_array().expect("giftCards");
            let units: i64 = items
                .iter()
                .map(|l| l["fulfilledQuantity"].as_i64().expect("fulfilled"))
                .sum();
            assert_eq!(
                cards.len() as i64,
                units,
                "order {id}: cards issued ≠ units fulfilled"
            );
            // A returned card was refunded its line's unit price, and its unit is in stock again.
            let mut returns = 0;
            let mut returned_value = 0;
            for card in cards.iter().filter(|c| c["status"] == "CANCELLED") {
                let line = items
                    .iter()
                    .find(|l| {
                        l["productName"] == card["productName"]
                            && l["variantName"] == card["variantName"]
                    })
                    .expect("a card's line");
                returns += 1;
                returned_value += line["unitPrice"].as_i64().expect("unitPrice");
                *returned
                    .entry(line["variantId"].as_str().expect("variantId").to_string())
                    .or_default() += 1;
            }
            fulfilled_value += value - returned_value;

            let for_order = |kind: &str| {
                transactions
                    .iter()
                    .filter(|t| t["type"] == kind && t["orderId"] == id)
                    .count()
            };
            assert_eq!(
                for_order("DEBIT"),
                1,
                "order {id} must be debited exactly once"
            );
            assert_eq!(
                for_order("REFUND"),
                usize::from(refund > 0) + returns,
                "order {id} refund records"
            );
            let refunded: i64 = transactions
                .iter()
                .filter(|t| t["type"] == "REFUND" && t["orderId"] == id)
                .map(|t| t["amount"].as_i64().expect("amount"))
                .sum();
            assert_eq!(
                refunded,
                refund + returned_value,
                "order {id}: refunds ≠ what it did not deliver + returned cards"
            );
        }
        assert_eq!(
            credits - fulfilled_value,
            balance,
            "money not conserved for {}",
            user.email
        );
    }
    let stock = stock_by_variant(app).await;
    for (variant, initial) in initial_stock {
        let now = stock[variant];
        assert!(now >= 0, "negative stock for {variant}");
        assert_eq!(
            initial - now,
            issued.get(variant).copied().unwrap_or(0) - returned.get(variant).copied().unwrap_or(0),
            "stock of {variant} not conserved"
        );
    }
}
