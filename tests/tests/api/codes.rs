//! Brand codes over HTTP: imports as JSON and CSV, the batch listing, voids, orders that issue
//! the imported codes, and every error of the code routes.

use crate::support::{Backend, TestApp, TestResponse};
use axum::body::Body;
use axum::http::{Method, Request};
use chrono::{Duration, Utc};
use serde_json::{Value, json};

/// A new product with one INVENTORY variant (₹500 at 5 % off); its id.
pub(crate) async fn brand_variant(app: &TestApp) -> String {
    let product = app
        .post(
            "/admin/products",
            Some(&app.admin_token),
            json!({"name": format!("Brand {}", ulid::Ulid::new()), "description": "A brand's gift card",
                   "brand": "Brand", "category": "SHOPPING", "imageUrl": "https://cdn.giftify.in/b.jpg",
                   "thumbnailUrl": "https://cdn.giftify.in/b-thumb.jpg",
                   "termsAndConditions": "Valid until its expiry.", "howToRedeem": "At checkout."}),
        )
        .await;
    let product_id = product.data()["productId"].as_str().unwrap().to_string();
    let variant = app
        .post(
            &format!("/admin/products/{product_id}/variants"),
            Some(&app.admin_token),
            json!({"name": "Brand 500", "denomination": 500, "mrp": 50_000, "costPrice": 45_000,
                   "discountPercent": 5, "fulfillmentSource": "INVENTORY"}),
        )
        .await;
    assert_eq!(variant.status, 201, "{}", variant.body);
    assert_eq!(variant.data()["fulfillmentSource"], "INVENTORY");
    assert_eq!(variant.data()["stockQuantity"], 0);
    variant.data()["variantId"].as_str().unwrap().to_string()
}

/// A code number unique to this run.
pub(crate) fn number() -> String {
    format!("BR{}", ulid::Ulid::new())
}

fn in_days(days: i64) -> String {
    (Utc::now() + Duration::days(days)).date_naive().to_string()
}

pub(crate) async fn import_json(
    app: &TestApp,
    variant: &str,
    batch: &str,
    codes: Value,
) -> TestResponse {
    app.post(
        &format!("/admin/variants/{variant}/code-batches"),
        Some(&app.admin_token),
        json!({"batchRef": batch, "codes": codes}),
    )
    .await
}

async fn import_csv(app: &TestApp, variant: &str, query: &str, csv: String) -> TestResponse {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/admin/variants/{variant}/code-batches{query}"))
        .header("authorization", format!("Bearer {}", app.admin_token))
        .header("content-type", "text/csv")
        .body(Body::from(csv))
        .expect("request");
    app.send(request).await
}

async fn stock(app: &TestApp, variant: &str) -> i64 {
    app.inventory()
        .await
        .iter()
        .find(|v| v["variantId"] == variant)
        .expect("the variant")["stockQuantity"]
        .as_i64()
        .unwrap()
}

pub(crate) async fn batches(app: &TestApp, variant: &str) -> Vec<Value> {
    let listed = app
        .get(
            &format!("/admin/variants/{variant}/code-batches"),
            Some(&app.admin_token),
        )
        .await;
    listed.data()["batches"].as_array().unwrap().clone()
}

async fn admins_import_codes_as_json_or_csv_and_list_their_batches(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let variant = brand_variant(&app).await;
    let numbers: Vec<String> = (0..4).map(|_| number()).collect();
    let codes = json!([
        {"number": numbers[0], "pin": "1234", "expiryDate": in_days(200)},
        {"number": numbers[1], "expiryDate": in_days(100)},
        {"number": "12"},
        {"number": numbers[0]},
    ]);

    let imported = import_json(&app, &variant, "INV-1", codes.clone()).await;

    assert_eq!(imported.status, 200, "{}", imported.body);
    let report = imported.data();
    assert_eq!(
        (
            &report["imported"],
            &report["duplicates"],
            &report["invalid"],
            &report["rows"]
        ),
        (&json!(2), &json!(1), &json!(1), &json!(4))
    );
    assert_eq!(
        report["refused"],
        json!([{"row": 3, "reason": "INVALID_NUMBER"}, {"row": 4, "reason": "DUPLICATE"}])
    );
    assert_eq!(stock(&app, &variant).await, 2);
    let again = import_json(&app, &variant, "INV-1", codes.clone()).await;
    assert_eq!(
        again.data(),
        imported.data(),
        "the same import answers its first report"
    );
    import_json(&app, &variant, "INV-1", json!([{"number": numbers[2]}]))
        .await
        .assert_error(422, "IDEMPOTENCY_KEY_REUSED");

    let csv = format!(
        "number,pin,expiryDate\r\n{},9876,{}\r\n\"{}\",,\r\n{},,\r\n",
        numbers[2],
        in_days(50),
        numbers[3],
        numbers[1]
    );
    let from_csv = import_csv(&app, &variant, "?batchRef=INV-2", csv).await;
    assert_eq!(from_csv.status, 200, "{}", from_csv.body);
    assert_eq!(from_csv.data()["imported"], 2);
    assert_eq!(
        from_csv.data()["refused"],
        json!([{"row": 3, "reason": "DUPLICATE"}])
    );
    assert_eq!(stock(&app, &variant).await, 4);

    let listed = batches(&app, &variant).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["batchRef"], "INV-1");
    assert_eq!(listed[0]["available"], 2);
    assert_eq!(listed[0]["earliestExpiry"], in_days(100));
    assert_eq!(listed[1]["batchRef"], "INV-2");
    assert_eq!(listed[1]["earliestExpiry"], in_days(50));
    let everything = format!(
        "{}{}{}{:?}",
        imported.body, from_csv.body, again.body, listed
    );
    for number in &numbers {
        assert!(
            !everything.contains(number.as_str()),
            "no answer shows a code"
        );
    }
    let products = app.get("/products", Some(&app.admin_token)).await;
    assert!(
        products
            .body
            .to_string()
            .contains("\"fulfillmentSource\":\"INVENTORY\"")
    );
}

async fn a_brand_order_issues_the_imported_codes_first_expiring_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let variant = brand_variant(&app).await;
    let (late, soon, too_soon) = (number(), number(), number());
    let imported = import_json(
        &app,
        &variant,
        "POOL",
        json!([
            {"number": late, "pin": "1111", "expiryDate": in_days(300)},
            {"number": soon, "pin": "2222", "expiryDate": in_days(90)},
            {"number": too_soon, "pin": "3333", "expiryDate": in_days(5)},
        ]),
    )
    .await;
    assert_eq!(imported.data()["imported"], 3);
    let user = app.funded_user("brand", 1_000_000).await;

    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 3}]))
        .await;
    assert_eq!(created.status, 202, "{}", created.body);
    app.drain_queue().await;

    let order_id = created.data()["orderId"].as_str().unwrap();
    let order = app.order(&user, order_id).await;
    let order = order.data();
    assert_eq!(
        order["status"], "PARTIALLY_FULFILLED",
        "the code 5 days from expiry stays"
    );
    assert_eq!(order["refundAmount"], 47_500);
    let cards = order["giftCards"].as_array().unwrap();
    let mut revealed = Vec::new();
    for card in cards {
        let id = card["giftCardId"].as_str().unwrap();
        let secret = app
            .post(
                &format!("/orders/{order_id}/gift-cards/{id}/reveal"),
                Some(&user.token),
                json!({}),
            )
            .await;
        revealed.push((
            secret.data()["giftCardNumber"]
                .as_str()
                .unwrap()
                .to_string(),
            secret.data()["giftCardPin"].as_str().unwrap().to_string(),
            card["expiryDate"].as_str().unwrap().to_string(),
        ));
    }
    revealed.sort();
    let mut expected = vec![
        (late.clone(), "1111".to_string(), in_days(300)),
        (soon.clone(), "2222".to_string(), in_days(90)),
    ];
    expected.sort();
    assert_eq!(
        revealed, expected,
        "each card is its brand code, with the code's expiry"
    );
    assert_eq!(stock(&app, &variant).await, 1);
    let listed = batches(&app, &variant).await;
    assert_eq!(
        (&listed[0]["available"], &listed[0]["allocated"]),
        (&json!(1), &json!(2))
    );
}

async fn voiding_a_batch_takes_its_codes_out_of_stock(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let variant = brand_variant(&app).await;
    import_json(
        &app,
        &variant,
        "RECALL",
        json!([{"number": number()}, {"number": number()}]),
    )
    .await;
    import_json(&app, &variant, "KEEP", json!([{"number": number()}])).await;

    let voided = app
        .post(
            &format!("/admin/variants/{variant}/code-batches/RECALL/void"),
            Some(&app.admin_token),
            json!({}),
        )
        .await;

    assert_eq!(voided.status, 200, "{}", voided.body);
    assert_eq!(
        (&voided.data()["voided"], &voided.data()["available"]),
        (&json!(2), &json!(0))
    );
    assert!(voided.data()["voidedAt"].is_string());
    assert_eq!(stock(&app, &variant).await, 1);
    app.post(
        &format!("/admin/variants/{variant}/code-batches/NOPE/void"),
        Some(&app.admin_token),
        json!({}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
}

async fn a_variant_source_changes_until_it_holds_a_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let variant = brand_variant(&app).await;
    let switch = |source: &str| {
        let app = &app;
        let variant = variant.clone();
        let body = if source == "GENERATED" {
            // A Giftify card sells at its face value.
            json!({"fulfillmentSource": source, "discountPercent": 0})
        } else {
            json!({"fulfillmentSource": source})
        };
        async move {
            app.put(
                &format!("/admin/inventory/{variant}"),
                Some(&app.admin_token),
                body,
            )
            .await
        }
    };

    let generated = switch("GENERATED").await;
    assert_eq!(generated.status, 200, "{}", generated.body);
    assert_eq!(generated.data()["fulfillmentSource"], "GENERATED");
    let inventory = switch("INVENTORY").await;
    assert_eq!(inventory.data()["fulfillmentSource"], "INVENTORY");
    import_json(&app, &variant, "HELD", json!([{"number": number()}])).await;
    app.post(
        &format!("/admin/variants/{variant}/code-batches/HELD/void"),
        Some(&app.admin_token),
        json!({}),
    )
    .await;
    assert_eq!(stock(&app, &variant).await, 0);

    let refused = switch("GENERATED").await;

    refused.assert_error(400, "VALIDATION_ERROR");
    assert!(
        refused.body.to_string().contains("fulfillmentSource"),
        "{}",
        refused.body
    );
    let (demo, _, _) = app.some_variant().await;
    app.put(
        &format!("/admin/inventory/{demo}"),
        Some(&app.admin_token),
        json!({"fulfillmentSource": "INVENTORY"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
}

async fn code_routes_refuse_what_they_cannot_do(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let variant = brand_variant(&app).await;
    let (generated, _, _) = app.some_variant().await;
    let user = app.register("codes").await;
    let path = format!("/admin/variants/{variant}/code-batches");
    let one = json!({"batchRef": "B", "codes": [{"number": number()}]});

    app.post(&path, Some(&user.token), one.clone())
        .await
        .assert_error(403, "FORBIDDEN");
    app.get(&path, None).await.assert_error(401, "UNAUTHORIZED");
    import_json(&app, &generated, "B", json!([{"number": number()}]))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    import_json(
        &app,
        "var_01HZZZZZZZZZZZZZZZZZZZZZZZ",
        "B",
        json!([{"number": number()}]),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    import_json(&app, &variant, "no spaces", json!([{"number": number()}]))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    import_json(&app, &variant, "EMPTY", json!([]))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    import_json(&app, &variant, "SHAPE", json!([{"code": number()}]))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let too_many: Vec<Value> = (0..10_001)
        .map(|i| json!({"number": format!("N{i:08}")}))
        .collect();
    import_json(&app, &variant, "MANY", json!(too_many))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    import_csv(
        &app,
        &variant,
        "",
        format!("number,pin,expiryDate\n{},,\n", number()),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    import_csv(
        &app,
        &variant,
        "?batchRef=C",
        format!("code\n{}\n", number()),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    let plain = Request::builder()
        .method(Method::POST)
        .uri(&path)
        .header("authorization", format!("Bearer {}", app.admin_token))
        .header("content-type", "text/plain")
        .body(Body::from("hello"))
        .expect("request");
    app.send(plain).await.assert_error(400, "VALIDATION_ERROR");
    let huge = Request::builder()
        .method(Method::POST)
        .uri(&path)
        .header("authorization", format!("Bearer {}", app.admin_token))
        .header("content-type", "text/csv")
        .body(Body::from(vec![b'a'; 3 * 1024 * 1024]))
        .expect("request");
    app.send(huge).await.assert_error(413, "PAYLOAD_TOO_LARGE");
    app.put(
        &format!("/admin/inventory/{variant}"),
        Some(&app.admin_token),
        json!({"stockQuantity": 5}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.put(
        &format!("/admin/inventory/{variant}"),
        Some(&app.admin_token),
        json!({"stockAdjustment": 5}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    assert_eq!(
        stock(&app, &variant).await,
        0,
        "nothing above changed anything"
    );
}

async fn twenty_buyers_for_ten_codes_never_share_a_code(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::spawn(backend).await);
    let variant = brand_variant(&app).await;
    let codes: Vec<Value> = (0..10)
        .map(|i| json!({"number": number(), "pin": format!("{i:04}")}))
        .collect();
    import_json(&app, &variant, "SCARCE", json!(codes)).await;
    let mut buyers = Vec::new();
    for i in 0..20 {
        buyers.push(app.funded_user(&format!("rush{i}"), 1_000_000).await);
    }
    let mut tasks = Vec::new();
    for buyer in buyers.clone() {
        let (app, variant) = (app.clone(), variant.clone());
        tasks.push(tokio::spawn(async move {
            let created = app
                .order_items(&buyer, json!([{"variantId": variant, "quantity": 1}]))
                .await;
            (buyer, created)
        }));
    }
    let mut orders = Vec::new();
    for task in tasks {
        let (buyer, created) = task.await.expect("task");
        match created.status.as_u16() {
            202 => orders.push((
                buyer,
                created.data()["orderId"].as_str().unwrap().to_string(),
            )),
            409 => assert_eq!(created.code(), "OUT_OF_STOCK"),
            other => panic!("{other} {}", created.body),
        }
    }
    let drains = [app.drain_queue(), app.drain_queue()];
    futures_util::future::join_all(drains).await;
    app.drain_queue().await;

    let mut numbers = Vec::new();
    for (buyer, order_id) in &orders {
        let order = app.order(buyer, order_id).await;
        let order = order.data().clone();
        match order["status"].as_str().unwrap() {
            "FULFILLED" => {
                let card = order["giftCards"][0]["giftCardId"].as_str().unwrap();
                let secret = app
                    .post(
                        &format!("/orders/{order_id}/gift-cards/{card}/reveal"),
                        Some(&buyer.token),
                        json!({}),
                    )
                    .await;
                numbers.push(
                    secret.data()["giftCardNumber"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            "REFUNDED" => assert_eq!(app.balance(buyer).await, 1_000_000),
            other => panic!("order {order_id} ended {other}"),
        }
    }
    let issued = numbers.len();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), issued, "no code issued twice");
    assert_eq!(
        issued, 10,
        "every code issued once there were buyers for it"
    );
    assert_eq!(stock(&app, &variant).await, 0);
    let listed = batches(&app, &variant).await;
    assert_eq!(
        (&listed[0]["available"], &listed[0]["allocated"]),
        (&json!(0), &json!(10))
    );
}

async fn ten_thousand_csv_rows_import_in_one_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let variant = brand_variant(&app).await;
    let run = ulid::Ulid::new().to_string();
    let mut csv = String::from("number,pin,expiryDate\n");
    for i in 0..10_000 {
        csv.push_str(&format!("{run}{i:05},{i:06},{}\n", in_days(365)));
    }

    let imported = import_csv(&app, &variant, "?batchRef=BULK", csv).await;

    assert_eq!(imported.status, 200, "{}", imported.body);
    assert_eq!(imported.data()["imported"], 10_000);
    assert_eq!(imported.data()["refused"], json!([]));
    assert_eq!(stock(&app, &variant).await, 10_000);
    assert_eq!(batches(&app, &variant).await[0]["available"], 10_000);
}

crate::on_both_backends!(
    admins_import_codes_as_json_or_csv_and_list_their_batches,
    a_brand_order_issues_the_imported_codes_first_expiring_first,
    voiding_a_batch_takes_its_codes_out_of_stock,
    a_variant_source_changes_until_it_holds_a_code,
    code_routes_refuse_what_they_cannot_do,
    twenty_buyers_for_ten_codes_never_share_a_code,
    ten_thousand_csv_rows_import_in_one_request,
);
