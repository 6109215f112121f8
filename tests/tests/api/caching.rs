//! Validated reads: `ETag` and `If-None-Match` → 304 on the catalogue, the cart and an order,
//! and a new tag the moment what they show changes.

use crate::support::{Backend, TestApp, TestResponse};
use axum::http::Method;
use serde_json::json;

/// A read of `path` sending `tag` in `If-None-Match`.
async fn revalidate(app: &TestApp, path: &str, token: &str, tag: &str) -> TestResponse {
    app.call(
        Method::GET,
        path,
        Some(token),
        None,
        &[("if-none-match", tag)],
    )
    .await
}

/// The answer's tag, after checking it is validated as documented.
fn tag_of(response: &TestResponse) -> String {
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("cache-control"), Some("private, no-cache"));
    let tag = response.header("etag").expect("an ETag").to_string();
    assert!(
        tag.starts_with("W/\"") && tag.ends_with('"'),
        "a weak tag: {tag}"
    );
    tag
}

fn assert_not_modified(response: &TestResponse, tag: &str) {
    assert_eq!(response.status, 304, "{}", response.body);
    assert_eq!(response.header("etag"), Some(tag));
    assert!(response.body.is_null(), "a 304 has no body");
}

async fn reads_answer_304_until_what_they_show_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("tagged", 1_000_000).await;
    let other = app.funded_user("other", 1_000_000).await;
    let (variant, _, stock) = app.some_variant().await;

    // The catalogue: the same for every caller, new when a stock changes.
    let products = app.get("/products", Some(&user.token)).await;
    let catalogue_tag = tag_of(&products);
    assert!(
        !products.data()["products"]
            .as_array()
            .expect("products")
            .is_empty()
    );
    assert_not_modified(
        &revalidate(&app, "/products", &user.token, &catalogue_tag).await,
        &catalogue_tag,
    );
    assert_not_modified(
        &revalidate(&app, "/products", &other.token, &catalogue_tag).await,
        &catalogue_tag,
    );
    let stale = revalidate(&app, "/products", &user.token, "\"not-the-tag\"").await;
    assert_eq!(tag_of(&stale), catalogue_tag);
    app.set_stock(&variant, stock + 1).await;
    let restocked = revalidate(&app, "/products", &user.token, &catalogue_tag).await;
    let restocked_tag = tag_of(&restocked);
    assert_ne!(restocked_tag, catalogue_tag);

    // The cart: a line added is a new tag; another user's cart is not this one.
    let empty = app.get("/cart", Some(&user.token)).await;
    let empty_tag = tag_of(&empty);
    assert_not_modified(
        &revalidate(&app, "/cart", &user.token, &empty_tag).await,
        &empty_tag,
    );
    let added = app
        .put(
            "/cart/manage",
            Some(&user.token),
            json!({"variantId": variant, "quantity": 1}),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let filled = revalidate(&app, "/cart", &user.token, &empty_tag).await;
    let filled_tag = tag_of(&filled);
    assert_ne!(filled_tag, empty_tag);
    assert_eq!(filled.data()["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        tag_of(&revalidate(&app, "/cart", &other.token, &filled_tag).await),
        empty_tag
    );

    // An order: pending, then fulfilled — a new tag, and its cards.
    let created = app
        .order_items(&user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    let order_id = created.data()["orderId"].as_str().unwrap().to_string();
    let path = format!("/orders/{order_id}");
    let pending = app.get(&path, Some(&user.token)).await;
    let pending_tag = tag_of(&pending);
    let unchanged = revalidate(&app, &path, &user.token, &pending_tag).await;
    assert_not_modified(&unchanged, &pending_tag);
    assert_eq!(
        unchanged.header("retry-after"),
        Some("1"),
        "still worth polling"
    );
    revalidate(&app, &path, &other.token, &pending_tag)
        .await
        .assert_error(404, "NOT_FOUND");
    app.drain_queue().await;
    let fulfilled = revalidate(&app, &path, &user.token, &pending_tag).await;
    let fulfilled_tag = tag_of(&fulfilled);
    assert_ne!(fulfilled_tag, pending_tag);
    assert_eq!(fulfilled.data()["status"], "FULFILLED");
    assert_eq!(fulfilled.header("retry-after"), None);
    assert_not_modified(
        &revalidate(&app, &path, &user.token, &fulfilled_tag).await,
        &fulfilled_tag,
    );
    let after_sale = revalidate(&app, "/products", &user.token, &restocked_tag).await;
    assert_ne!(
        tag_of(&after_sale),
        restocked_tag,
        "a sale changes the stock shown"
    );
}

/// With a long time to live, the catalogue cache shows what it is: exact where the store keeps
/// a catalogue version (embedded), and kept for its time to live where it keeps none (DynamoDB).
async fn the_catalogue_is_cached_exactly_with_a_version_and_for_its_ttl_without(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.catalogue_ttl = std::time::Duration::from_secs(600);
    })
    .await;
    let user = app.register("cached").await;
    let (variant, _, stock) = app.some_variant().await;
    let versioned = app
        .giftify()
        .ports
        .catalogue
        .catalogue_version()
        .await
        .expect("version")
        .is_some();
    let first = app.get("/products", Some(&user.token)).await;
    let tag = tag_of(&first);
    app.set_stock(&variant, stock + 5).await;
    let next = revalidate(&app, "/products", &user.token, &tag).await;
    if versioned {
        assert_ne!(tag_of(&next), tag, "the version moved with the stock");
    } else {
        assert_not_modified(&next, &tag);
    }
}

crate::on_both_backends!(
    reads_answer_304_until_what_they_show_changes,
    the_catalogue_is_cached_exactly_with_a_version_and_for_its_ttl_without,
);
