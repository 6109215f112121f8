//! `GET /events`: a user's own events (an admin's: all) in recording order, paged with an
//! opaque cursor — each event exactly once even while new ones are recorded — and numbered
//! among their order's events, the same numbers subscribers receive.

use crate::support::{Backend, TestApp, TestUser};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

async fn place(app: &TestApp, user: &TestUser, variant: &str) -> String {
    let placed = app
        .order_items(user, json!([{"variantId": variant, "quantity": 1}]))
        .await;
    assert_eq!(placed.status, 202, "{}", placed.body);
    placed.data()["orderId"].as_str().unwrap().to_string()
}

/// Pages the caller's feed from `after` to its end, `limit` at a time.
async fn page_through(
    app: &TestApp,
    token: &str,
    mut after: Option<String>,
    limit: u32,
) -> (Vec<Value>, String) {
    let mut events = Vec::new();
    for _ in 0..1000 {
        let path = match &after {
            Some(cursor) => format!("/events?limit={limit}&after={cursor}"),
            None => format!("/events?limit={limit}"),
        };
        let page = app.get(&path, Some(token)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let data = page.data();
        events.extend(data["events"].as_array().unwrap().iter().cloned());
        after = Some(data["nextCursor"].as_str().unwrap().to_string());
        if data["hasMore"] == false {
            break;
        }
    }
    (events, after.unwrap_or_default())
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["eventId"].as_str().unwrap().to_string())
        .collect()
}

async fn the_feed_reads_each_event_once_while_new_ones_arrive(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let user = app.funded_user("feed", 5_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    for _ in 0..3 {
        place(&app, &user, &variant).await;
    }
    assert_eq!(app.drain_queue().await, 3);

    let writer = {
        let (app, user, variant) = (app.clone(), user.clone(), variant.clone());
        tokio::spawn(async move {
            for _ in 0..6 {
                place(&app, &user, &variant).await;
                app.drain_queue().await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..40 {
        let (events, next) = page_through(&app, &user.token, cursor.take(), 2).await;
        seen.extend(events);
        cursor = Some(next);
        if seen.len() == 9 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    writer.await.unwrap();
    let (rest, _) = page_through(&app, &user.token, cursor, 2).await;
    seen.extend(rest);

    let (whole, _) = page_through(&app, &user.token, None, 100).await;
    assert_eq!(whole.len(), 9, "one event per fulfilled order");
    assert_eq!(ids(&seen), ids(&whole), "no gap, no duplicate, same order");
    let unique: BTreeSet<_> = ids(&seen).into_iter().collect();
    assert_eq!(unique.len(), 9);
    for event in &whole {
        assert_eq!(event["eventType"], "order.fulfilled");
        assert_eq!(event["sequence"], 1, "an order's first event");
        assert!(event["occurredAt"].is_string());
        assert_eq!(event["userId"], user.id.as_str());
    }
    let published = app.events().await;
    for event in &whole {
        let delivered = published
            .iter()
            .find(|p| p["eventId"] == event["eventId"])
            .expect("the same event reached subscribers");
        assert_eq!(delivered["sequence"], event["sequence"]);
    }
}

async fn a_card_event_follows_its_orders_event_in_sequence(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("feed-seq", 1_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    let order = place(&app, &user, &variant).await;
    assert_eq!(app.drain_queue().await, 1);
    let card = app.order(&user, &order).await.data()["giftCards"][0]["giftCardId"]
        .as_str()
        .unwrap()
        .to_string();
    let returned = app
        .post(
            &format!("/orders/{order}/gift-cards/{card}/return"),
            Some(&user.token),
            json!({}),
        )
        .await;
    assert_eq!(returned.status, 200, "{}", returned.body);

    let (events, _) = page_through(&app, &user.token, None, 10).await;
    let of_order: Vec<(String, u64)> = events
        .iter()
        .filter(|e| e["orderId"] == order.as_str())
        .map(|e| {
            (
                e["eventType"].as_str().unwrap().to_string(),
                e["sequence"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        of_order,
        vec![
            ("order.fulfilled".to_string(), 1),
            ("gift_card.returned".to_string(), 2)
        ]
    );
}

async fn each_reader_sees_only_their_feed_and_cursors_stay_in_theirs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.funded_user("feed-own", 1_000_000).await;
    let stranger = app.funded_user("feed-other", 1_000_000).await;
    let (variant, _, _) = app.some_variant().await;
    let mine = place(&app, &user, &variant).await;
    let theirs = place(&app, &stranger, &variant).await;
    assert_eq!(app.drain_queue().await, 2);

    let (own, cursor) = page_through(&app, &user.token, None, 10).await;
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["orderId"], mine.as_str());
    let (all, admin_cursor) = page_through(&app, &app.admin_token, None, 100).await;
    for order in [&mine, &theirs] {
        assert!(
            all.iter().any(|e| e["orderId"] == order.as_str()),
            "an admin reads every user's events"
        );
    }

    let empty = app
        .get(&format!("/events?after={cursor}"), Some(&user.token))
        .await;
    assert_eq!(empty.data()["events"], json!([]));
    assert_eq!(
        empty.data()["nextCursor"],
        cursor.as_str(),
        "ask again later from here"
    );
    for (token, path) in [
        (&app.admin_token, format!("/events?after={cursor}")),
        (&user.token, format!("/events?after={admin_cursor}")),
        (&user.token, "/events?after=bm90LWEtY3Vyc29y".to_string()),
        (&user.token, "/events?after=%25%25%25".to_string()),
        (&user.token, "/events?limit=0".to_string()),
        (&user.token, "/events?limit=101".to_string()),
        (&user.token, "/events?limit=ten".to_string()),
    ] {
        app.get(&path, Some(token))
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    app.get("/events", None)
        .await
        .assert_error(401, "UNAUTHORIZED");

    let key = app
        .post(
            "/api-keys",
            Some(&user.token),
            json!({"name": "feed", "scopes": ["orders:read"]}),
        )
        .await;
    let secret = key.data()["secret"].as_str().unwrap().to_string();
    let (by_key, _) = page_through(&app, &secret, None, 10).await;
    assert_eq!(ids(&by_key), ids(&own), "a key reads its owner's feed");
    let narrow = app
        .post(
            "/api-keys",
            Some(&user.token),
            json!({"name": "cart only", "scopes": ["cart"]}),
        )
        .await;
    let narrow = narrow.data()["secret"].as_str().unwrap().to_string();
    app.get("/events", Some(&narrow))
        .await
        .assert_error(403, "INSUFFICIENT_SCOPE");
}

/// The feed of all events is re-checked against the account, as every admin endpoint is: an
/// admin demoted while their token is still valid reads only their own events from then on.
async fn a_demoted_admins_token_reads_only_their_own_feed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (variant, _, _) = app.some_variant().await;
    let customer = app.funded_user("feed-customer", 1_000_000).await;
    let theirs = place(&app, &customer, &variant).await;
    let second = app.funded_user("feed-second-admin", 1_000_000).await;
    let own = place(&app, &second, &variant).await;
    assert_eq!(app.drain_queue().await, 2);
    app.set_account(&second.id, "ADMIN", "ACTIVE").await;
    let login = app
        .post(
            "/auth/login",
            None,
            json!({"email": second.email, "password": crate::support::PASSWORD}),
        )
        .await;
    let admin_token = login.data()["accessToken"].as_str().unwrap().to_string();
    let (all, _) = page_through(&app, &admin_token, None, 100).await;
    assert!(
        all.iter().any(|e| e["orderId"] == theirs.as_str()),
        "an admin reads everyone's"
    );

    app.set_account(&second.id, "USER", "ACTIVE").await;
    let (after, _) = page_through(&app, &admin_token, None, 100).await;
    let orders: Vec<&str> = after.iter().filter_map(|e| e["orderId"].as_str()).collect();
    assert_eq!(
        orders,
        vec![own.as_str()],
        "the same token, demoted: only their own"
    );
}

crate::on_both_backends!(
    a_demoted_admins_token_reads_only_their_own_feed,
    the_feed_reads_each_event_once_while_new_ones_arrive,
    a_card_event_follows_its_orders_event_in_sequence,
    each_reader_sees_only_their_feed_and_cursors_stay_in_theirs,
);
