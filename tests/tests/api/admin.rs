//! Admin endpoints: inventory, orders, analytics, catalogue changes; and that users get 403.

use crate::support::{Backend, TestApp};
use axum::http::Method;
use serde_json::json;

async fn admin_endpoints_are_403_for_users_and_401_without_a_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("not-admin").await;
    let (variant, _, _) = app.some_variant().await;
    let calls = [
        (Method::GET, "/admin/inventory".to_string(), None),
        (
            Method::PUT,
            format!("/admin/inventory/{variant}"),
            Some(json!({"stockQuantity": 1})),
        ),
        (Method::GET, "/admin/orders".to_string(), None),
        (Method::GET, "/admin/analytics".to_string(), None),
        (Method::POST, "/admin/products".to_string(), Some(json!({}))),
        (
            Method::POST,
            "/admin/products/prod_01HZZZZZZZZZZZZZZZZZZZZZZZ/variants".to_string(),
            Some(json!({})),
        ),
    ];
    for (method, path, body) in calls {
        app.call(method.clone(), &path, Some(&user.token), body.clone(), &[])
            .await
            .assert_error(403, "FORBIDDEN");
        app.call(method, &path, None, body, &[])
            .await
            .assert_error(401, "UNAUTHORIZED");
    }
}

async fn cost_price_is_shown_to_admins_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.register("costs").await;
    let products = app.get("/products", Some(&user.token)).await;
    let text = products.body.to_string();
    assert!(!text.contains("costPrice"), "{text}");
    let inventory = app.inventory().await;
    assert!(inventory[0]["costPrice"].is_i64());
    assert!(inventory[0]["productName"].is_string());
}

async fn admins_create_products_and_variants_that_users_can_buy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let product = app
        .post(
            "/admin/products",
            Some(&app.admin_token),
            json!({"name": "Nykaa", "description": "Nykaa Gift Card - beauty and wellness", "brand": "Nykaa",
                   "category": "BEAUTY", "imageUrl": "https://cdn.giftify.in/nykaa.jpg",
                   "thumbnailUrl": "https://cdn.giftify.in/nykaa-thumb.jpg",
                   "termsAndConditions": "Valid for 1 year.", "howToRedeem": "Apply at checkout."}),
        )
        .await;
    assert_eq!(product.status, 201, "{}", product.body);
    let product_id = product.data()["productId"].as_str().unwrap().to_string();
    let variant = app
        .post(
            &format!("/admin/products/{product_id}/variants"),
            Some(&app.admin_token),
            json!({"name": "Nykaa 500", "denomination": 500, "mrp": 50_000, "costPrice": 45_000,
                   "discountPercent": 3, "minOrderQuantity": 1, "maxOrderQuantity": 5,
                   "fulfillmentSource": "INVENTORY"}),
        )
        .await;
    assert_eq!(variant.status, 201, "{}", variant.body);
    assert_eq!(variant.data()["sellingPrice"], 48_500);
    let variant_id = variant.data()["variantId"].as_str().unwrap().to_string();
    let codes: Vec<_> = (0..7)
        .map(|_| json!({"number": crate::codes::number()}))
        .collect();
    crate::codes::import_json(&app, &variant_id, "NYKAA-1", json!(codes)).await;

    let user = app.funded_user("nykaa", 100_000).await;
    let listed = app.get("/products", Some(&user.token)).await;
    let nykaa = listed.data()["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Nykaa")
        .cloned()
        .unwrap();
    assert_eq!(nykaa["variants"][0]["variantId"], variant_id.as_str());
    assert_eq!(nykaa["category"], "BEAUTY");
    let created = app
        .order_items(&user, json!([{"variantId": variant_id, "quantity": 2}]))
        .await;
    assert_eq!(created.status, 202);

    for body in [
        json!({"name": "X", "denomination": 500, "mrp": 50_000, "costPrice": 60_000, "discountPercent": 3, "fulfillmentSource": "INVENTORY"}),
        json!({"name": "X", "denomination": 500, "mrp": 50_000, "costPrice": 1, "discountPercent": 101, "fulfillmentSource": "INVENTORY"}),
        json!({"name": "X", "denomination": 500, "mrp": -1, "costPrice": 0, "discountPercent": 1, "fulfillmentSource": "INVENTORY"}),
        json!({"name": "X", "denomination": 500, "mrp": 100, "costPrice": 0, "discountPercent": 1, "stockQuantity": -1, "fulfillmentSource": "GENERATED"}),
        // A brand's card comes with no stock: it is stocked by importing codes.
        json!({"name": "X", "denomination": 500, "mrp": 50_000, "costPrice": 45_000, "discountPercent": 3, "stockQuantity": 1, "fulfillmentSource": "INVENTORY"}),
        // Giftify's own card sells at its face value.
        json!({"name": "X", "denomination": 500, "mrp": 50_000, "costPrice": 45_000, "discountPercent": 3, "stockQuantity": 1, "fulfillmentSource": "GENERATED"}),
        json!({"name": "X", "denomination": 500, "mrp": 40_000, "costPrice": 40_000, "discountPercent": 0, "fulfillmentSource": "GENERATED"}),
        // The source is chosen, never defaulted.
        json!({"name": "X", "denomination": 500, "mrp": 50_000, "costPrice": 50_000, "discountPercent": 0}),
    ] {
        app.post(
            &format!("/admin/products/{product_id}/variants"),
            Some(&app.admin_token),
            body,
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    }
    app.post("/admin/products/prod_01HZZZZZZZZZZZZZZZZZZZZZZZ/variants", Some(&app.admin_token),
        json!({"name": "X", "denomination": 500, "mrp": 50_000, "costPrice": 0, "discountPercent": 1, "fulfillmentSource": "INVENTORY"}))
        .await
        .assert_error(404, "NOT_FOUND");
    app.post(
        "/admin/products",
        Some(&app.admin_token),
        json!({"name": ""}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
}

async fn inventory_updates_set_or_adjust_stock_and_reprice(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (variant, _, _) = app.some_variant().await;
    let path = format!("/admin/inventory/{variant}");
    let set = app
        .put(&path, Some(&app.admin_token), json!({"stockQuantity": 10}))
        .await;
    assert_eq!(set.data()["stockQuantity"], 10);
    let adjusted = app
        .put(
            &path,
            Some(&app.admin_token),
            json!({"stockAdjustment": -4}),
        )
        .await;
    assert_eq!(adjusted.data()["stockQuantity"], 6);
    app.put(
        &path,
        Some(&app.admin_token),
        json!({"stockAdjustment": -7}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.put(
        &path,
        Some(&app.admin_token),
        json!({"stockQuantity": 1, "stockAdjustment": 1}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    // Giftify's own card sells at its face value; a brand's card is repriced freely.
    app.put(
        &path,
        Some(&app.admin_token),
        json!({"discountPercent": 10}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    let (brand, _, _) = app.demo_variant("Amazon").await;
    let brand_path = format!("/admin/inventory/{brand}");
    let repriced = app
        .put(
            &brand_path,
            Some(&app.admin_token),
            json!({"discountPercent": 10}),
        )
        .await;
    let mrp = repriced.data()["mrp"].as_i64().expect("mrp");
    assert_eq!(repriced.data()["sellingPrice"], mrp * 90 / 100);
    // The MRP is the face value: denomination × 100 paise, never anything else.
    app.put(&brand_path, Some(&app.admin_token), json!({"mrp": mrp * 2}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.put(
        &brand_path,
        Some(&app.admin_token),
        json!({"discountPercent": 150}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.put(
        "/admin/inventory/var_01HZZZZZZZZZZZZZZZZZZZZZZZ",
        Some(&app.admin_token),
        json!({"stockQuantity": 1}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
}

async fn admin_orders_and_analytics_cover_every_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A brand card, bought below face value: Giftify's own cards sell at face value.
    let (variant, price, _) = app.demo_variant("Amazon").await;
    let a = app.funded_user("an-a", 1_000_000).await;
    let b = app.funded_user("an-b", 1_000_000).await;
    app.order_items(&a, json!([{"variantId": variant, "quantity": 2}]))
        .await;
    let cancelled = app
        .order_items(&b, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let cancelled_id = cancelled.data()["orderId"].as_str().unwrap();
    app.post(
        &format!("/orders/{cancelled_id}/cancel"),
        Some(&b.token),
        json!({}),
    )
    .await;
    app.drain_queue().await;

    let orders = app
        .get("/admin/orders?limit=10", Some(&app.admin_token))
        .await;
    assert_eq!(orders.data()["pagination"]["total"], 2);
    let only_cancelled = app
        .get("/admin/orders?status=CANCELLED", Some(&app.admin_token))
        .await;
    assert_eq!(only_cancelled.data()["orders"][0]["orderId"], cancelled_id);

    let analytics = app.get("/admin/analytics", Some(&app.admin_token)).await;
    let data = analytics.data();
    assert_eq!(data["revenue"], 2 * price);
    assert!(data["margin"].as_i64().unwrap() > 0);
    assert_eq!(
        data["margin"].as_i64().unwrap(),
        data["revenue"].as_i64().unwrap() - data["cost"].as_i64().unwrap()
    );
    assert_eq!(data["fulfillmentRate"], 1.0);
    assert_eq!(data["ordersByStatus"]["FULFILLED"], 1);
    assert_eq!(data["ordersByStatus"]["CANCELLED"], 1);
    assert_eq!(data["topProducts"][0]["units"], 2);
}

/// An admin edits what the catalogue says about a product and a variant; each change is checked
/// field by field, takes effect in the catalogue at once, and is in the audit log.
async fn admins_edit_products_and_variants(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token.clone();
    let product = app
        .post(
            "/admin/products",
            Some(&admin),
            json!({"name": "Nykaa", "description": "Nykaa Gift Card", "brand": "Nykaa",
                   "category": "BEAUTY", "termsAndConditions": "Valid for 1 year."}),
        )
        .await;
    assert_eq!(product.status, 201, "{}", product.body);
    let product_id = product.data()["productId"].as_str().unwrap().to_string();
    let variant = app
        .post(
            &format!("/admin/products/{product_id}/variants"),
            Some(&admin),
            json!({"name": "Nykaa 500", "denomination": 500, "mrp": 50_000, "costPrice": 45_000,
                   "discountPercent": 3, "stockQuantity": 10, "maxOrderQuantity": 5,
                   "fulfillmentSource": "GENERATED"}),
        )
        .await;
    // A GENERATED card sells at face value: no discount.
    variant.assert_error(400, "VALIDATION_ERROR");
    let variant = app
        .post(
            &format!("/admin/products/{product_id}/variants"),
            Some(&admin),
            json!({"name": "Nykaa 500", "denomination": 500, "mrp": 50_000, "costPrice": 45_000,
                   "discountPercent": 0, "stockQuantity": 10, "maxOrderQuantity": 5,
                   "fulfillmentSource": "GENERATED"}),
        )
        .await;
    assert_eq!(variant.status, 201, "{}", variant.body);
    assert_eq!(variant.data()["sellingBelowCost"], false);
    let variant_id = variant.data()["variantId"].as_str().unwrap().to_string();
    let product_path = format!("/admin/products/{product_id}");
    let user = app.funded_user("shopper", 1_000_000).await;

    app.put(&product_path, Some(&user.token), json!({"name": "Mine"}))
        .await
        .assert_error(403, "FORBIDDEN");
    app.put(
        "/admin/products/prod_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        Some(&admin),
        json!({"name": "Ghost"}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    for bad in [
        json!({}),
        json!({"name": " "}),
        json!({"category": "beauty"}),
        json!({"validityDays": 0}),
        json!({"imageUrl": "ftp://x"}),
        json!({"colour": "red"}),
    ] {
        app.put(&product_path, Some(&admin), bad.clone())
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    let hidden = app
        .put(
            &product_path,
            Some(&admin),
            json!({"name": "Nykaa Beauty", "termsAndConditions": "Valid 2 years.",
                   "validityDays": 730, "isActive": false}),
        )
        .await;
    assert_eq!(hidden.status, 200, "{}", hidden.body);
    assert_eq!(hidden.data()["name"], "Nykaa Beauty");
    assert_eq!(hidden.data()["validityDays"], 730);
    let names = |catalogue: &serde_json::Value| -> Vec<String> {
        catalogue
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let listed = app.get("/products?limit=100", Some(&user.token)).await;
    assert!(!names(&listed.data()["products"]).contains(&"Nykaa Beauty".to_string()));
    let shown = app
        .put(&product_path, Some(&admin), json!({"isActive": true}))
        .await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    let listed = app.get("/products?limit=100", Some(&user.token)).await;
    assert!(names(&listed.data()["products"]).contains(&"Nykaa Beauty".to_string()));

    let inventory = format!("/admin/inventory/{variant_id}");
    for bad in [
        json!({"name": ""}),
        json!({"minOrderQuantity": 6}),
        json!({"maxOrderQuantity": 0}),
        json!({"minOrderQuantity": 3, "maxOrderQuantity": 2}),
        json!({"mrp": 40_000}),
    ] {
        app.put(&inventory, Some(&admin), bad.clone())
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    let edited = app
        .put(
            &inventory,
            Some(&admin),
            json!({"name": "Nykaa ₹500", "minOrderQuantity": 2, "maxOrderQuantity": 3}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.data()["variantName"], "Nykaa ₹500");
    assert_eq!(edited.data()["minOrderQuantity"], 2);
    app.order_items(&user, json!([{"variantId": variant_id, "quantity": 1}]))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let two = app
        .order_items(&user, json!([{"variantId": variant_id, "quantity": 2}]))
        .await;
    assert_eq!(two.status, 202, "{}", two.body);
    let below = app
        .put(&inventory, Some(&admin), json!({"costPrice": 50_001}))
        .await;
    below.assert_error(400, "VALIDATION_ERROR");

    let log = app
        .get(&format!("/admin/audit?subject={product_id}"), Some(&admin))
        .await;
    let entries = log.data()["entries"].as_array().unwrap().clone();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["product.changed", "product.changed", "product.created"]
    );
    assert_eq!(entries[1]["before"]["name"], "Nykaa");
    assert_eq!(entries[1]["after"]["name"], "Nykaa Beauty");
    assert_eq!(entries[1]["after"]["isActive"], false);
}

/// An INVENTORY variant may sell below cost (a promotion); the answer flags it.
async fn a_selling_price_below_cost_is_flagged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let brand = app
        .inventory()
        .await
        .into_iter()
        .find(|v| v["fulfillmentSource"] == "INVENTORY")
        .expect("a brand variant");
    let id = brand["variantId"].as_str().unwrap();
    let cost = brand["costPrice"].as_i64().unwrap();
    let mrp = brand["mrp"].as_i64().unwrap();
    let discount = (100 - cost * 100 / mrp) + 5;
    let flagged = app
        .put(
            &format!("/admin/inventory/{id}"),
            Some(&app.admin_token),
            json!({"discountPercent": discount}),
        )
        .await;
    assert_eq!(flagged.status, 200, "{}", flagged.body);
    assert!(flagged.data()["sellingPrice"].as_i64().unwrap() < cost);
    assert_eq!(flagged.data()["sellingBelowCost"], true);
}

crate::on_both_backends!(
    admins_edit_products_and_variants,
    a_selling_price_below_cost_is_flagged,
    admin_endpoints_are_403_for_users_and_401_without_a_token,
    cost_price_is_shown_to_admins_only,
    admins_create_products_and_variants_that_users_can_buy,
    inventory_updates_set_or_adjust_stock_and_reprice,
    admin_orders_and_analytics_cover_every_user,
);
