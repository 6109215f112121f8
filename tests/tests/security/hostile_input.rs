//! Hostile input: bodies over the limit (with and without a length), deep nesting, malformed
//! and ambiguous JSON, unicode and control characters, negative and overflowing numbers,
//! absurd paging, malformed ids and keys, and SQL-looking strings. Each must be a 4xx with
//! the error envelope (never a 5xx, never a hang); SQL-looking text that is valid is stored
//! verbatim; and afterwards every wallet, order and stock figure still adds up.

use crate::invariants::{assert_conserved, stock_by_variant};
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, PASSWORD, TestApp, unique_email};
use crate::{Attacks, assert_refused, profile, raw};
use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

const LIMIT: usize = 64 * 1024;

async fn hostile_bodies_numbers_strings_and_ids_are_refused_and_leave_the_data_intact(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let mut attacks = Attacks::new("hostile input", backend);
    let initial_stock = stock_by_variant(&app).await;
    let user = app.funded_user("hostile", 1_000_000).await;
    let token = user.token.clone();
    let (variant, _, _) = app.some_variant().await;

    // Size: one byte over the limit, with a length, and streamed without one.
    let oversized = format!(
        r#"{{"amount": 100, "description": "{}"}}"#,
        "x".repeat(LIMIT)
    );
    for path in ["/wallet/topup", "/auth/register", "/orders/create"] {
        attacks.tried();
        let response = raw(
            &app,
            Method::POST,
            path,
            Some(&token),
            "application/json",
            oversized.clone(),
        )
        .await;
        response.assert_error(413, "PAYLOAD_TOO_LARGE");
    }
    attacks.tried();
    let chunks = (0..80).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
    let streamed = raw(
        &app,
        Method::POST,
        "/wallet/topup",
        Some(&token),
        "application/json",
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
    .await;
    streamed.assert_error(413, "PAYLOAD_TOO_LARGE");

    // Depth: nesting far beyond any real body, inside the size limit.
    let deep_arrays = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let deep_objects = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let deep_in_field = format!(
        r#"{{"amount": 100, "description": {}"x"{}}}"#,
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    for body in [&deep_arrays, &deep_objects, &deep_in_field] {
        for path in ["/wallet/topup", "/orders/create", "/cart/manage"] {
            attacks.tried();
            let method = if path == "/cart/manage" {
                Method::PUT
            } else {
                Method::POST
            };
            let response = raw(
                &app,
                method,
                path,
                Some(&token),
                "application/json",
                body.clone(),
            )
            .await;
            response.assert_error(400, "VALIDATION_ERROR");
        }
    }

    // Malformed and ambiguous JSON, and the wrong content type.
    for (content_type, body) in [
        ("application/json", "{"),
        ("application/json", r#"{"amount": 100"#),
        ("application/json", r#"{"amount": 100}}"#),
        ("application/json", r#"{"amount": 100} {"amount": 100}"#),
        ("application/json", "\u{feff}{\"amount\": 100}"),
        ("application/json", r#"{'amount': 100}"#),
        ("application/json", r#"{amount: 100}"#),
        ("application/json", r#"{"amount": NaN}"#),
        ("application/json", r#"{"amount": Infinity}"#),
        ("application/json", r#"{"amount": 1e400}"#),
        ("application/json", r#"{"amount": 0x10}"#),
        (
            "application/json",
            r#"{"amount": 100, "description": "\ud800"}"#,
        ),
        ("application/json", "null"),
        ("application/json", "[]"),
        ("application/json", r#""amount""#),
        ("text/plain", r#"{"amount": 100}"#),
        ("application/x-www-form-urlencoded", "amount=100"),
        (
            "multipart/form-data; boundary=x",
            "--x\r\nContent-Disposition: form-data; name=\"amount\"\r\n\r\n100\r\n--x--",
        ),
        ("application/xml", "<amount>100</amount>"),
    ] {
        attacks.tried();
        let response = raw(
            &app,
            Method::POST,
            "/wallet/topup",
            Some(&token),
            content_type,
            body,
        )
        .await;
        assert_refused(&response, &format!("{content_type} {body:?}"));
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{body:?}: {}",
            response.body
        );
    }
    attacks.tried();
    let invalid_utf8 = raw(
        &app,
        Method::POST,
        "/wallet/topup",
        Some(&token),
        "application/json",
        vec![b'{', b'"', b'a', 0xff, 0xfe, b'"', b':', b'1', b'}'],
    )
    .await;
    invalid_utf8.assert_error(400, "VALIDATION_ERROR");

    // Numbers: negative, zero, over the limits, overflowing every integer type, fractional,
    // and not numbers at all.
    let bad_amounts = [
        json!(-1),
        json!(0),
        json!(10_000_001),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        serde_json::from_str::<Value>("18446744073709551616").expect("big"),
        serde_json::from_str::<Value>("-9223372036854775809").expect("big"),
        json!(1.5),
        json!(1e19),
        json!(-0.0),
        json!("100"),
        json!(null),
        json!(true),
        json!([100]),
        json!({"value": 100}),
    ];
    for amount in &bad_amounts {
        attacks.tried();
        let response = app
            .post("/wallet/topup", Some(&token), json!({"amount": amount}))
            .await;
        response.assert_error(400, "VALIDATION_ERROR");
    }
    let bad_quantities = [
        json!(0),
        json!(-1),
        json!(51),
        json!(4_294_967_296u64),
        json!(i64::MAX),
        json!(u64::MAX),
        serde_json::from_str::<Value>("18446744073709551616").expect("big"),
        json!(1.5),
        json!("2"),
        json!(null),
    ];
    for quantity in &bad_quantities {
        attacks.tried();
        let response = app
            .order_items(&user, json!([{"variantId": variant, "quantity": quantity}]))
            .await;
        response.assert_error(400, "VALIDATION_ERROR");
        attacks.tried();
        let response = app
            .put(
                "/cart/manage",
                Some(&token),
                json!({"variantId": variant, "quantity": quantity}),
            )
            .await;
        if quantity == &json!(0) {
            // 0 removes a line: allowed.
            assert!(response.status.is_success(), "{}", response.body);
        } else {
            response.assert_error(400, "VALIDATION_ERROR");
        }
    }
    // More cards than one order may hold, spread over many lines, and a huge item list.
    attacks.tried();
    let many_lines: Vec<Value> = (0..51)
        .map(|_| json!({"variantId": variant, "quantity": 1}))
        .collect();
    app.order_items(&user, json!(many_lines))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    attacks.tried();
    let huge_list: Vec<Value> = (0..1_200)
        .map(|_| json!({"variantId": variant, "quantity": 50}))
        .collect();
    assert_refused(
        &app.order_items(&user, json!(huge_list)).await,
        "1200 lines",
    );
    attacks.tried();
    app.order_items(&user, json!([]))
        .await
        .assert_error(400, "VALIDATION_ERROR");

    // Admin numbers that could overflow price or stock arithmetic.
    for body in [
        json!({"stockQuantity": -1}),
        json!({"stockQuantity": i64::MAX}),
        json!({"stockAdjustment": i64::MIN}),
        json!({"stockAdjustment": i64::MAX}),
        json!({"stockAdjustment": -1_000_000_000}),
        json!({"mrp": 0}),
        json!({"mrp": i64::MAX}),
        json!({"mrp": -100}),
        json!({"costPrice": i64::MAX}),
        json!({"discountPercent": 101}),
        json!({"discountPercent": -1}),
        json!({"discountPercent": i64::MIN}),
        json!({}),
    ] {
        attacks.tried();
        let response = app
            .put(
                &format!("/admin/inventory/{variant}"),
                Some(&app.admin_token),
                body.clone(),
            )
            .await;
        assert_refused(&response, &body.to_string());
        assert_eq!(response.status, 400, "{body}: {}", response.body);
    }
    let products = app.get("/products", Some(&token)).await;
    let product = products.data()["products"][0]["productId"]
        .as_str()
        .expect("productId")
        .to_string();
    for body in [
        json!({"name": "X", "denomination": i64::MAX, "mrp": 100, "costPrice": 1, "discountPercent": 0, "stockQuantity": 1, "fulfillmentSource": "GENERATED"}),
        json!({"name": "X", "denomination": 1, "mrp": i64::MAX, "costPrice": 1, "discountPercent": 99, "stockQuantity": 1, "fulfillmentSource": "GENERATED"}),
        json!({"name": "X", "denomination": 1, "mrp": 100, "costPrice": 101, "discountPercent": 0, "stockQuantity": 1, "fulfillmentSource": "GENERATED"}),
        json!({"name": "X", "denomination": 1, "mrp": 100, "costPrice": 1, "discountPercent": 0, "stockQuantity": i64::MAX, "fulfillmentSource": "GENERATED"}),
        json!({"name": "X", "denomination": 1, "mrp": 100, "costPrice": 1, "discountPercent": 0, "stockQuantity": 1, "maxOrderQuantity": 1_000_000, "fulfillmentSource": "GENERATED"}),
        json!({"name": "X", "denomination": 1, "mrp": 100, "costPrice": 1, "discountPercent": 0, "stockQuantity": 1, "minOrderQuantity": 5, "maxOrderQuantity": 2, "fulfillmentSource": "GENERATED"}),
        json!({"name": "", "denomination": 1, "mrp": 100, "costPrice": 1, "discountPercent": 0, "stockQuantity": 1, "fulfillmentSource": "GENERATED"}),
    ] {
        attacks.tried();
        let response = app
            .post(
                &format!("/admin/products/{product}/variants"),
                Some(&app.admin_token),
                body.clone(),
            )
            .await;
        assert_eq!(response.status, 400, "{body}: {}", response.body);
    }

    // Paging and filters.
    for query in [
        "page=0",
        "page=-1",
        "page=99999999999999999999",
        "page=1.5",
        "limit=0",
        "limit=101",
        "limit=-5",
        "limit=abc",
        "status=SHIPPED",
        "status=FULFILLED'%20OR%20'1'='1",
        "status=fulfilled",
        "page=%00",
    ] {
        attacks.tried();
        let response = app.get(&format!("/orders?{query}"), Some(&token)).await;
        response.assert_error(400, "VALIDATION_ERROR");
    }
    attacks.tried();
    let far = app
        .get("/orders?page=1000000&limit=100", Some(&token))
        .await;
    assert_eq!(far.status, 200, "{}", far.body);
    assert_eq!(far.data()["orders"], json!([]));
    for query in ["type=SALE", "type=CREDIT'--", "page=0"] {
        attacks.tried();
        app.get(&format!("/wallet/transactions?{query}"), Some(&token))
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }

    // Ids in paths: malformed, SQL, traversal, oversized, wrong prefix.
    let long_id = format!("order_{}", "A".repeat(5_000));
    for id in [
        "not-an-order",
        "order_' OR '1'='1",
        "order_%27%20OR%201%3D1--",
        "..%2F..%2Fadmin%2Finventory",
        "%2e%2e",
        long_id.as_str(),
        "var_01HXXXXXXXXXXXXXXXXXXXXXXX",
        "order_01HXXXXXXXXXXXXXXXXXXXXXX",
        "ORDER_01HXXXXXXXXXXXXXXXXXXXXXXX",
        "order_%00",
    ] {
        attacks.tried();
        let response = app
            .get(
                &format!("/orders/{}", id.replace(' ', "%20").replace('\'', "%27")),
                Some(&token),
            )
            .await;
        assert_refused(&response, id);
    }
    for path in [
        "/orders/order_01HXXXXXXXXXXXXXXXXXXXXXXX/gift-cards/not-a-card/reveal",
        "/orders/not-an-order/gift-cards/gc_01HXXXXXXXXXXXXXXXXXXXXXXX/reveal",
        "/admin/inventory/var_%27%3B%20DROP%20TABLE%20variants%3B--",
    ] {
        attacks.tried();
        let token = if path.starts_with("/admin") {
            app.admin_token.clone()
        } else {
            token.clone()
        };
        let method = if path.starts_with("/admin") {
            Method::PUT
        } else {
            Method::POST
        };
        let response = app
            .call(
                method,
                path,
                Some(&token),
                Some(json!({"stockQuantity": 1})),
                &[],
            )
            .await;
        response.assert_error(400, "VALIDATION_ERROR");
    }
    attacks.tried();
    app.put(
        "/cart/manage",
        Some(&token),
        json!({"variantId": "var_' OR 1=1 --", "quantity": 1}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    // Idempotency keys: too long, not ASCII, empty.
    let long_key = "k".repeat(256);
    for key in [long_key.as_str(), "", "ключ", "key with\ttab"] {
        attacks.tried();
        let response = app
            .call(
                Method::POST,
                "/wallet/topup",
                Some(&token),
                Some(json!({"amount": 100})),
                &[("idempotency-key", key)],
            )
            .await;
        response.assert_error(400, "VALIDATION_ERROR");
    }

    // Names, emails, phones and descriptions with control, format and odd unicode characters.
    let registration = |email: &str, first: &str| json!({"email": email, "password": PASSWORD, "firstName": first, "lastName": "Rao"});
    for name in [
        "Asha\u{0000}",
        "Asha\r\nX-Injected: yes",
        "\u{0007}bell",
        "tab\there",
        "\u{001b}[31mred",
        "",
        "   ",
        &"अ".repeat(101),
    ] {
        attacks.tried();
        app.post(
            "/auth/register",
            None,
            registration(&unique_email("uni"), name),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    }
    for email in [
        "no-at-sign",
        "two@@example.in",
        "a@b",
        "a b@example.in",
        "a@example.in\u{0000}",
        "a@example.in\r\nBcc: x@y.in",
        "a,b@example.in",
        &format!("{}@example.in", "a".repeat(65)),
        &format!("a@{}.in", "b".repeat(260)),
    ] {
        attacks.tried();
        app.post("/auth/register", None, registration(email, "Asha"))
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    for phone in [
        "12",
        "+91 98765 43210",
        "+9198765432101234567",
        "+91987654321\u{0000}",
        "' OR 1=1",
    ] {
        attacks.tried();
        app.put(
            "/users/profile",
            Some(&token),
            json!({"phoneNumber": phone}),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    }
    for password in ["short", &"p".repeat(129)] {
        attacks.tried();
        app.post("/auth/register", None, json!({"email": unique_email("pw"), "password": password, "firstName": "A", "lastName": "B"}))
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    for description in ["\u{0000}", "a\u{0007}b", "", &"d".repeat(201)] {
        attacks.tried();
        app.post(
            "/wallet/topup",
            Some(&token),
            json!({"amount": 100, "description": description}),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    }
    // Valid unicode is kept exactly: Devanagari with its joiners, emoji, accents, CJK.
    for name in ["अनन्या", "क्ष\u{200d}त्र", "Zoë 🎁", "李小龙", "O'Brien-Smith"]
    {
        attacks.tried();
        let response = app
            .put("/users/profile", Some(&token), json!({"firstName": name}))
            .await;
        assert_eq!(response.status, 200, "{name}: {}", response.body);
        assert_eq!(profile(&app, &user).await["firstName"], name);
    }

    // SQL-looking text where text is allowed: stored and returned verbatim, nothing executed.
    let sql = [
        "Robert'); DROP TABLE users;--",
        "x' OR '1'='1",
        "1; UPDATE users SET wallet_balance = 99999999",
        "\" OR \"\"=\"",
        "admin'--",
        "' UNION SELECT password_hash FROM users --",
    ];
    let sneaky = app.funded_user("sneaky", 200_000).await;
    for text in sql {
        attacks.tried();
        let renamed = app
            .put(
                "/users/profile",
                Some(&sneaky.token),
                json!({"lastName": text}),
            )
            .await;
        assert_eq!(renamed.status, 200, "{}", renamed.body);
        assert_eq!(profile(&app, &sneaky).await["lastName"], text);
        attacks.tried();
        let topped = app
            .post(
                "/wallet/topup",
                Some(&sneaky.token),
                json!({"amount": 1, "description": text}),
            )
            .await;
        assert_eq!(topped.status, 200, "{}", topped.body);
        attacks.tried();
        app.post(
            "/auth/login",
            None,
            json!({"email": text, "password": text}),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
        attacks.tried();
        app.post(
            "/auth/login",
            None,
            json!({"email": format!("{ADMIN_EMAIL}{text}"), "password": text}),
        )
        .await;
    }
    attacks.tried();
    let sql_email = format!(
        "o'connor+{}@example.in",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    let registered = app
        .post("/auth/register", None, registration(&sql_email, "Róisín"))
        .await;
    assert_eq!(registered.status, 200, "{}", registered.body);
    let history = app
        .get("/wallet/transactions?limit=100", Some(&sneaky.token))
        .await;
    let descriptions: Vec<&str> = history.data()["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .filter_map(|t| t["description"].as_str())
        .collect();
    for text in sql {
        assert!(descriptions.contains(&text), "{text} not stored verbatim");
    }

    // The data is intact: the admin still logs in, the catalogue is whole, and every
    // wallet, order and stock figure adds up.
    let admin = app
        .post(
            "/auth/login",
            None,
            json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    assert_eq!(stock_by_variant(&app).await.len(), initial_stock.len());
    assert_eq!(app.balance(&sneaky).await, 200_000 + sql.len() as i64);
    assert_conserved(&app, &[user, sneaky], &initial_stock).await;
}

crate::on_both_backends!(
    hostile_bodies_numbers_strings_and_ids_are_refused_and_leave_the_data_intact,
);
