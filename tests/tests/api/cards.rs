//! Giftify cards redeemed into a wallet over HTTP: the credit, once; every refusal; and twenty
//! people racing to redeem one card.

use crate::support::{Backend, TestApp, TestUser};
use serde_json::json;
use std::sync::Arc;

/// A card bought by a new user from the variant and revealed: (number, PIN, face value).
pub(crate) async fn bought_card(app: &TestApp, variant: &str) -> (String, String, i64) {
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
    let analytics = || async {
        app.get("/admin/analytics", Some(&app.admin_token))
            .await
            .data()
            .clone()
    };
    let before = analytics().await;
    assert!(before["activeGiftifyCards"].as_i64().unwrap() >= face);

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
    let events = app.events().await;
    let announced: Vec<_> = events
        .iter()
        .filter(|e| e["eventType"] == "gift_card.redeemed")
        .collect();
    assert_eq!(
        announced.len(),
        1,
        "one event for one redemption: {events:?}"
    );
    assert_eq!(announced[0]["redeemedBy"], friend.id.as_str());
    assert_eq!(announced[0]["amount"], face);
    assert_eq!(announced[0]["status"], "REDEEMED");
    assert_eq!(announced[0]["giftCardId"], redeemed.data()["giftCardId"]);
    let body = announced[0].to_string();
    let digits = number.replace('-', "");
    assert!(!body.contains(&digits[digits.len() - 8..]) && !body.contains(&pin));
    let after = analytics().await;
    assert_eq!(
        after["outstandingLiability"], before["outstandingLiability"],
        "a redemption moves what Giftify owes from a card to a wallet"
    );
    assert_eq!(
        after["activeGiftifyCards"].as_i64().unwrap(),
        before["activeGiftifyCards"].as_i64().unwrap() - face
    );
    assert_eq!(
        after["walletBalances"].as_i64().unwrap(),
        before["walletBalances"].as_i64().unwrap() + face
    );
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

/// A new user's fulfilled order of `quantity` cards of the variant: (user, order id, card ids).
pub(crate) async fn bought_cards(
    app: &TestApp,
    variant: &str,
    quantity: i64,
) -> (TestUser, String, Vec<String>) {
    let buyer = app.funded_user("returner", 5_000_000).await;
    let created = app
        .order_items(
            &buyer,
            json!([{"variantId": variant, "quantity": quantity}]),
        )
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();
    app.drain_queue().await;
    let order = app.order(&buyer, &order_id).await;
    let cards = order.data()["giftCards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["giftCardId"].as_str().unwrap().to_string())
        .collect();
    (buyer, order_id, cards)
}

async fn an_unrevealed_card_is_returned_for_its_price(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (amazon, price, _) = app.demo_variant("Amazon").await;
    let stock = app.demo_variant("Amazon").await.2;
    let (buyer, order_id, cards) = bought_cards(&app, &amazon, 2).await;
    let balance = app.balance(&buyer).await;
    let path = |card: &str, verb: &str| format!("/orders/{order_id}/gift-cards/{card}/{verb}");
    let stranger = app.register("stranger").await;
    app.post(&path(&cards[0], "return"), Some(&stranger.token), json!({}))
        .await
        .assert_error(404, "NOT_FOUND");

    let returned = app
        .post(&path(&cards[0], "return"), Some(&buyer.token), json!({}))
        .await;

    assert_eq!(returned.status, 200, "{}", returned.body);
    assert_eq!(returned.data()["status"], "CANCELLED");
    assert_eq!(returned.data()["refundAmount"], price);
    assert_eq!(returned.data()["balance"], balance + price);
    assert_eq!(
        app.demo_variant("Amazon").await.2,
        stock - 1,
        "the code is back in stock"
    );
    app.post(&path(&cards[0], "return"), Some(&buyer.token), json!({}))
        .await
        .assert_error(409, "CARD_CANCELLED");
    let events = app.events().await;
    let announced: Vec<_> = events
        .iter()
        .filter(|e| e["eventType"] == "gift_card.returned")
        .collect();
    assert_eq!(announced.len(), 1, "{events:?}");
    assert_eq!(announced[0]["giftCardId"], cards[0].as_str());
    assert_eq!(announced[0]["orderId"], order_id.as_str());
    assert_eq!(announced[0]["userId"], buyer.id.as_str());
    assert_eq!(announced[0]["amount"], price);
    assert_eq!(announced[0]["status"], "CANCELLED");
    app.post(&path(&cards[0], "reveal"), Some(&buyer.token), json!({}))
        .await
        .assert_error(409, "CARD_CANCELLED");
    let revealed = app
        .post(&path(&cards[1], "reveal"), Some(&buyer.token), json!({}))
        .await;
    assert_eq!(revealed.status, 200);
    app.post(&path(&cards[1], "return"), Some(&buyer.token), json!({}))
        .await
        .assert_error(409, "CARD_REVEALED");
    let detail = app.order(&buyer, &order_id).await;
    let shown: Vec<_> = detail.data()["giftCards"].as_array().unwrap().clone();
    let of = |id: &str| {
        shown
            .iter()
            .find(|c| c["giftCardId"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(of(&cards[0])["status"], "CANCELLED");
    assert!(of(&cards[0])["revealedAt"].is_null());
    assert!(of(&cards[1])["revealedAt"].is_string());

    let audit = app
        .get(
            &format!("/admin/gift-cards/{}/reveals", cards[1]),
            Some(&app.admin_token),
        )
        .await;
    let reveals = audit.data()["reveals"].as_array().unwrap().clone();
    assert_eq!(reveals.len(), 1);
    assert_eq!(reveals[0]["userId"], buyer.id.as_str());
    app.get(
        &format!("/admin/gift-cards/{}/reveals", cards[1]),
        Some(&buyer.token),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    app.get(
        "/admin/gift-cards/gc_01HZZZZZZZZZZZZZZZZZZZZZZZ/reveals",
        Some(&app.admin_token),
    )
    .await
    .assert_error(404, "NOT_FOUND");
}

async fn a_racing_reveal_and_return_have_exactly_one_winner(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let (variant, _, _) = app.some_variant().await;
    let (buyer, order_id, cards) = bought_cards(&app, &variant, 8).await;
    let balance = app.balance(&buyer).await;
    let mut refunds = 0;
    for card in &cards {
        let race = |verb: &'static str| {
            let (app, token, path) = (
                app.clone(),
                buyer.token.clone(),
                format!("/orders/{order_id}/gift-cards/{card}/{verb}"),
            );
            tokio::spawn(async move { app.post(&path, Some(&token), json!({})).await })
        };
        let (reveal, give_back) = (race("reveal"), race("return"));
        let (reveal, give_back) = (reveal.await.unwrap(), give_back.await.unwrap());
        let won = [reveal.status.as_u16(), give_back.status.as_u16()];
        assert_eq!(won.iter().filter(|s| **s == 200).count(), 1, "{won:?}");
        if give_back.status == 200 {
            refunds += 1;
            assert_eq!(reveal.code(), "CARD_CANCELLED");
        } else {
            assert_eq!(give_back.code(), "CARD_REVEALED");
        }
    }
    let price = app.some_variant().await.1;
    assert_eq!(app.balance(&buyer).await, balance + refunds * price);
}

crate::on_both_backends!(
    a_giftify_card_is_redeemed_into_any_wallet_once,
    a_user_lists_their_cards_across_orders_by_status,
    redeeming_refuses_what_it_cannot_redeem,
    twenty_people_redeeming_one_card_credit_it_once,
    an_unrevealed_card_is_returned_for_its_price,
    a_racing_reveal_and_return_have_exactly_one_winner,
);
