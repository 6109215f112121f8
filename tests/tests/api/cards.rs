//! Giftify cards redeemed into a wallet over HTTP: the credit, once; every refusal; and twenty
//! people racing to redeem one card.

use crate::support::{Backend, TestApp, TestUser};
use serde_json::json;
use std::sync::Arc;

/// A card bought by a new user from the variant and revealed: (number, PIN, face value).
async fn bought_card(app: &TestApp, variant: &str) -> (String, String, i64) {
    let buyer = app.funded_user("buyer", 5_000_000).await;
    let created = app
        .order_items(&buyer, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();
    app.drain_queue().await;
    let order = app.order(&buyer, &order_id).await;
    let card = order.data()["giftCards"][0].clone();
    let secret = app
        .post(
            &format!(
                "/orders/{order_id}/gift-cards/{}/reveal",
                card["giftCardId"].as_str().unwrap()
            ),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    (
        secret.data()["giftCardNumber"]
            .as_str()
            .unwrap()
            .to_string(),
        secret.data()["giftCardPin"].as_str().unwrap().to_string(),
        card["denomination"].as_i64().unwrap_or(0) * 100,
    )
}

async fn redeem(
    app: &TestApp,
    user: &TestUser,
    number: &str,
    pin: &str,
) -> crate::support::TestResponse {
    app.post(
        "/gift-cards/redeem",
        Some(&user.token),
        json!({"giftCardNumber": number, "giftCardPin": pin}),
    )
    .await
}

async fn a_giftify_card_is_redeemed_into_any_wallet_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (variant, _, _) = app.some_variant().await;
    let (number, pin, face) = bought_card(&app, &variant).await;
    assert!(number.starts_with("GFY-"), "{number}");
    assert!(face > 0);
    let friend = app.funded_user("friend", 1_000).await;

    let redeemed = redeem(&app, &friend, &number.replace('-', " "), &pin).await;

    assert_eq!(redeemed.status, 200, "{}", redeemed.body);
    assert_eq!(redeemed.data()["amount"], face);
    assert_eq!(redeemed.data()["balance"], 1_000 + face);
    assert_eq!(redeemed.data()["status"], "REDEEMED");
    assert!(
        redeemed.data()["giftCardNumber"]
            .as_str()
            .unwrap()
            .starts_with("****-")
    );
    assert!(!redeemed.body.to_string().contains(&pin));
    assert_eq!(app.balance(&friend).await, 1_000 + face);
    let history = app
        .get("/wallet/transactions?type=REDEEM", Some(&friend.token))
        .await;
    let records = history.data()["transactions"].as_array().unwrap().clone();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["amount"], face);
    redeem(&app, &friend, &number, &pin)
        .await
        .assert_error(409, "CARD_REDEEMED");
    assert_eq!(app.balance(&friend).await, 1_000 + face, "credited once");
}

async fn a_user_lists_their_cards_across_orders_by_status(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (variant, _, _) = app.some_variant().await;
    let buyer = app.funded_user("lister", 5_000_000).await;
    let mut orders = Vec::new();
    for quantity in [2, 1] {
        let created = app
            .order_items(
                &buyer,
                json!([{"variantId": variant, "quantity": quantity}]),
            )
            .await;
        orders.push(created.data()["orderId"].as_str().unwrap().to_string());
        app.drain_queue().await;
    }
    let detail = app.order(&buyer, &orders[1]).await;
    let card = detail.data()["giftCards"][0].clone();
    let card_id = card["giftCardId"].as_str().unwrap();
    let secret = app
        .post(
            &format!("/orders/{}/gift-cards/{card_id}/reveal", orders[1]),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    let number = secret.data()["giftCardNumber"]
        .as_str()
        .unwrap()
        .to_string();
    let pin = secret.data()["giftCardPin"].as_str().unwrap().to_string();
    assert_eq!(redeem(&app, &buyer, &number, &pin).await.status, 200);

    let all = app.get("/gift-cards?limit=2", Some(&buyer.token)).await;
    assert_eq!(all.data()["pagination"]["total"], 3);
    let first_page = all.data()["giftCards"].as_array().unwrap().clone();
    assert_eq!(first_page.len(), 2);
    assert_eq!(first_page[0]["orderId"], orders[1].as_str(), "newest first");
    assert!(
        first_page
            .iter()
            .all(|c| c["giftCardNumber"].as_str().unwrap().starts_with("****-"))
    );
    assert!(!all.body.to_string().contains(&number));
    let redeemed = app
        .get("/gift-cards?status=REDEEMED", Some(&buyer.token))
        .await;
    let redeemed = redeemed.data()["giftCards"].as_array().unwrap().clone();
    assert_eq!(redeemed.len(), 1);
    assert_eq!(redeemed[0]["giftCardId"], card_id);
    assert!(redeemed[0]["redeemedAt"].is_string());
    let active = app
        .get("/gift-cards?status=ACTIVE", Some(&buyer.token))
        .await;
    assert_eq!(active.data()["pagination"]["total"], 2);
    let stranger = app.register("stranger").await;
    let none = app.get("/gift-cards", Some(&stranger.token)).await;
    assert_eq!(none.data()["pagination"]["total"], 0);
    app.get("/gift-cards?status=LOST", Some(&buyer.token))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.get("/gift-cards", None)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

async fn redeeming_refuses_what_it_cannot_redeem(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (variant, _, _) = app.some_variant().await;
    let (number, pin, _) = bought_card(&app, &variant).await;
    let (amazon, _, _) = app.demo_variant("Amazon").await;
    let (brand_number, brand_pin, _) = bought_card(&app, &amazon).await;
    let user = app.register("redeemer").await;

    redeem(&app, &user, &brand_number, &brand_pin)
        .await
        .assert_error(400, "NOT_REDEEMABLE");
    redeem(&app, &user, &number, "000000")
        .await
        .assert_error(404, "NOT_FOUND");
    redeem(&app, &user, "GFY-0000-0000-0000-0000", &pin)
        .await
        .assert_error(404, "NOT_FOUND");
    app.post(
        "/gift-cards/redeem",
        Some(&user.token),
        json!({"giftCardNumber": number}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        "/gift-cards/redeem",
        None,
        json!({"giftCardNumber": number, "giftCardPin": pin}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    // A full wallet cannot take the card; the card stays redeemable.
    let full = app.funded_user("full", 10_000_000).await;
    app.top_up(&full, 10_000_000).await;
    redeem(&app, &full, &number, &pin)
        .await
        .assert_error(422, "WALLET_LIMIT_EXCEEDED");
    // Guessing: the user's attempts lock after the policy's five.
    let guesser = app.register("guesser").await;
    let mut last = None;
    for guess in 0..6 {
        last = Some(redeem(&app, &guesser, &number, &format!("{guess:06}")).await);
    }
    let locked = last.unwrap();
    locked.assert_error(429, "RATE_LIMITED");
    assert!(locked.header("retry-after").is_some());
    redeem(&app, &guesser, &number, &pin)
        .await
        .assert_error(429, "RATE_LIMITED");
}

async fn twenty_people_redeeming_one_card_credit_it_once(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let (variant, _, _) = app.some_variant().await;
    let (number, pin, face) = bought_card(&app, &variant).await;
    let mut people = Vec::new();
    for i in 0..20 {
        people.push(app.register(&format!("racer{i}")).await);
    }
    let tasks: Vec<_> = people
        .iter()
        .cloned()
        .map(|person| {
            let (app, number, pin) = (app.clone(), number.clone(), pin.clone());
            tokio::spawn(async move { redeem(&app, &person, &number, &pin).await })
        })
        .collect();
    let mut codes = Vec::new();
    for task in tasks {
        let answer = task.await.expect("task");
        codes.push(match answer.status.as_u16() {
            200 => "OK".to_string(),
            _ => answer.code().to_string(),
        });
    }
    assert_eq!(codes.iter().filter(|c| *c == "OK").count(), 1, "{codes:?}");
    assert!(
        codes
            .iter()
            .all(|c| ["OK", "CARD_REDEEMED", "RATE_LIMITED"].contains(&c.as_str())),
        "{codes:?}"
    );
    let mut credited = 0;
    for person in &people {
        credited += app.balance(person).await;
    }
    assert_eq!(credited, face, "one credit of the face value in all");
}

crate::on_both_backends!(
    a_giftify_card_is_redeemed_into_any_wallet_once,
    a_user_lists_their_cards_across_orders_by_status,
    redeeming_refuses_what_it_cannot_redeem,
    twenty_people_redeeming_one_card_credit_it_once,
);
