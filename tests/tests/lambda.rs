//! The Lambda glue with real event JSON: the fulfillment handler's FIFO partial-batch failures,
//! API Gateway v2 events through the router, and the real release-built API, fulfillment,
//! dispatcher and reconciler binaries under a Lambda Runtime API emulator — all against the AWS backend on
//! moto.

use aws_lambda_events::event::sqs::SqsEvent;
use giftify_infra::metrics::MetricScope;
use giftify_shared::Giftify;
use giftify_shared::ids::UserId;
use giftify_shared::order::{LineRequest, OrderStatus};
use giftify_shared::usecases::{OrderRequest, Registration};
use giftify_shared::user::Email;
use giftify_tests::lambda::{LambdaHarness, release_dir};
use giftify_tests::moto::AwsTestStack;
use serde_json::{Value, json};
use std::time::Duration;

async fn customer(giftify: &Giftify, name: &str) -> UserId {
    let user = giftify
        .register(Registration {
            email: Email::parse(&format!("{name}-{}@example.in", ulid::Ulid::new())).unwrap(),
            typed_email: String::new(),
            password_hash: "unused".into(),
            first_name: name.into(),
            last_name: "Test".into(),
            phone_number: None,
        })
        .await
        .unwrap();
    giftify.top_up(&user.id, 1_000_000, None).await.unwrap();
    user.id
}

async fn place(giftify: &Giftify, user: &UserId) -> giftify_shared::order::Order {
    let variant = giftify.catalogue().await.unwrap()[0].variants[0].id.clone();
    giftify
        .place_order(
            user,
            OrderRequest::Items(vec![LineRequest {
                variant_id: variant,
                quantity: 1,
            }]),
        )
        .await
        .unwrap()
}

/// An SQS event record exactly as Lambda delivers it from a FIFO queue.
fn record(message_id: &str, group: &str, body: &str) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("receipt-{message_id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1732521600000",
            "SequenceNumber": "18849496460467696128",
            "MessageGroupId": group,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "MessageDeduplicationId": message_id,
            "ApproximateFirstReceiveTimestamp": "1732521600001"
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:giftify-orders.fifo",
        "awsRegion": "us-east-1"
    })
}

fn body(order: &giftify_shared::order::Order) -> String {
    json!({"orderId": order.id, "userId": order.user_id}).to_string()
}

/// Group A: a good order, a poison message, another good order; group B: a good order.
async fn two_groups_with_a_poison_message(
    giftify: &Giftify,
) -> (Value, Vec<giftify_shared::order::Order>) {
    let a = customer(giftify, "groupa").await;
    let b = customer(giftify, "groupb").await;
    let (a1, a2, b1) = (
        place(giftify, &a).await,
        place(giftify, &a).await,
        place(giftify, &b).await,
    );
    let event = json!({"Records": [
        record("m-a1", a.as_str(), &body(&a1)),
        record("m-poison", a.as_str(), "{\"this is\": \"not an order message\"}"),
        record("m-a2", a.as_str(), &body(&a2)),
        record("m-b1", b.as_str(), &body(&b1)),
    ]});
    (event, vec![a1, a2, b1])
}

async fn status(giftify: &Giftify, order: &giftify_shared::order::Order) -> OrderStatus {
    giftify
        .order_of(&order.user_id, &order.id)
        .await
        .unwrap()
        .status
}

#[tokio::test]
async fn the_fulfillment_handler_dead_letters_the_poison_message_and_retries_the_rest_of_its_group()
{
    let stack = AwsTestStack::start(3, 30).await;
    let giftify = &stack.runtime.giftify;
    giftify.seed_demo_catalogue().await.unwrap();
    let (event, orders) = two_groups_with_a_poison_message(giftify).await;
    let event: SqsEvent = serde_json::from_value(event).unwrap();

    let metrics = MetricScope::new(&stack.runtime.config, "fulfillment");
    let response = giftify_workers::fulfillment::handle(giftify, &metrics, event).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        vec!["m-a2"],
        "the later message of the poison message's group is tried again"
    );
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "m-a2"}]})
    );
    // No retry cures a body that is no order message: it is in the dead-letter queue now,
    // with why, rather than after its receives.
    let dead = giftify.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].order(), None, "kept as it came, unreadable");
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("malformed message body")),
        "{:?}",
        dead[0].last_error
    );
    assert_eq!(status(giftify, &orders[0]).await, OrderStatus::Fulfilled);
    assert_eq!(
        status(giftify, &orders[1]).await,
        OrderStatus::Pending,
        "kept for redelivery, in order"
    );
    assert_eq!(
        status(giftify, &orders[2]).await,
        OrderStatus::Fulfilled,
        "other groups carry on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_fulfillment_binary_handles_an_sqs_event_under_the_runtime_api() {
    let stack = AwsTestStack::start(3, 30).await;
    let giftify = &stack.runtime.giftify;
    giftify.seed_demo_catalogue().await.unwrap();
    let (event, orders) = two_groups_with_a_poison_message(giftify).await;

    let mut lambda = LambdaHarness::start().await;
    lambda.spawn_function(
        &release_dir().join("fulfillment"),
        &stack.worker_lambda_env(),
    );
    let response = lambda.invoke(event).await.expect("the function answers");
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "m-a2"}]})
    );
    assert_eq!(
        giftify.dead_letters(10).await.unwrap().len(),
        1,
        "the poison message"
    );
    // A second invocation of the same warm process, as Lambda does.
    let redelivery =
        json!({"Records": [record("m-a2-again", orders[1].user_id.as_str(), &body(&orders[1]))]});
    assert_eq!(
        lambda.invoke(redelivery).await.expect("answers"),
        json!({"batchItemFailures": []})
    );
    let output = lambda.stop();

    assert_eq!(status(giftify, &orders[0]).await, OrderStatus::Fulfilled);
    assert_eq!(status(giftify, &orders[1]).await, OrderStatus::Fulfilled);
    assert_eq!(status(giftify, &orders[2]).await, OrderStatus::Fulfilled);
    // Embedded Metric Format on stdout; no card secret in the output.
    assert!(output.contains("\"CloudWatchMetrics\""), "{output}");
    assert!(output.contains("OrdersFulfilled"), "{output}");
    // Per stage: a dev stage's failures must not page for prod in the same account.
    assert!(
        output.contains(&format!("\"stage\":\"{}\"", stack.stage))
            && output.contains(r#""Dimensions":[["stage","function"]]"#),
        "{output}"
    );
    let fulfilled = giftify
        .ports
        .orders
        .order(&orders[0].id)
        .await
        .unwrap()
        .unwrap();
    let card = &giftify.order_cards(&fulfilled).await.unwrap()[0];
    let revealed = giftify.vault.open(&card.id, &card.sealed).unwrap();
    use secrecy::ExposeSecret;
    assert!(!output.contains(revealed.number.expose_secret()));
}

/// Publishing fails: a crash between the fulfillment commit and the event.
struct DownPublisher;

#[async_trait::async_trait]
impl giftify_shared::ports::EventPublisher for DownPublisher {
    async fn publish(&self, _: &giftify_shared::events::Event) -> giftify_shared::Result<()> {
        Err(giftify_shared::Error::Unavailable(anyhow::anyhow!(
            "SNS unreachable"
        )))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_reconciler_binary_re_enqueues_stale_orders_and_publishes_missing_events() {
    let stack = AwsTestStack::start(3, 30).await;
    let giftify = &stack.runtime.giftify;
    giftify.seed_demo_catalogue().await.unwrap();
    let subscriber = stack.subscribe_queue().await;
    let user = customer(giftify, "reconcile").await;

    // Order 1 is fulfilled while SNS is down: final, its event owed.
    let fulfilled = place(giftify, &user).await;
    let mut ports = giftify.ports.clone();
    ports.events = std::sync::Arc::new(DownPublisher);
    let sns_down = Giftify::new(
        ports,
        giftify.vault.clone(),
        giftify.clock.clone(),
        giftify.rules.clone(),
    );
    let message = giftify_shared::order::OrderMessage {
        order_id: fulfilled.id.clone(),
        user_id: user.clone(),
    };
    assert!(sns_down.handle_order_message(&message).await.is_err());
    assert_eq!(status(giftify, &fulfilled).await, OrderStatus::Fulfilled);
    // Clear the queue of order 1's message (its handler finished) and lose order 2's: as if the
    // enqueue after order 2's commit had failed.
    let lost = place(giftify, &user).await;
    let inbox = &stack.runtime.giftify.ports.inbox;
    for message in inbox.receive(10, Duration::ZERO).await.unwrap() {
        inbox.ack(&message).await.unwrap();
    }

    let mut lambda = LambdaHarness::start().await;
    let mut env = stack.worker_lambda_env();
    env.push(("GIFTIFY_STALE_PENDING_SECS", "0".into()));
    lambda.spawn_function(&release_dir().join("reconciler"), &env);
    let scheduled = json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "000000000000", "time": "2026-11-25T08:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/giftify-reconciler"], "detail": {}
    });
    let report = lambda
        .invoke(scheduled)
        .await
        .expect("the function answers");
    lambda.stop();
    assert_eq!(
        report,
        json!({"refunded": 0, "requeued": 1, "notified": 1, "failed": 0, "wokenDeliveries": 0})
    );

    let events = stack.notifications(&subscriber).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0["orderId"], fulfilled.id.as_str());
    assert_eq!(
        events[0].1, "order.fulfilled",
        "the eventType attribute is set for filter policies"
    );
    let requeued = inbox.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(requeued.len(), 1);
    assert!(requeued[0].body.contains(lost.id.as_str()));
}

/// The release dispatcher binary under the runtime API, fed as Lambda feeds it: an event that
/// went the product's way (fulfillment → SNS → moto's delivery into the webhook queue) is
/// posted, signed, to a receiver on loopback; an unreadable message is dropped, not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_dispatcher_binary_posts_events_from_the_webhook_queue() {
    use hmac::Mac;
    let stack = AwsTestStack::start(3, 30).await;
    let giftify = &stack.runtime.giftify;
    giftify.seed_demo_catalogue().await.unwrap();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, Vec<u8>)>::new()));
    let seen = received.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    let signature = headers["giftify-signature"].to_str().unwrap().to_string();
                    seen.lock().unwrap().push((signature, body.to_vec()));
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let admin = customer(giftify, "hooks-admin").await;
    let (endpoint, secret) = giftify
        .create_webhook(&admin, &url, &["order.fulfilled".to_string()], "", true)
        .await
        .unwrap();

    let user = customer(giftify, "hooks").await;
    let order = place(giftify, &user).await;
    giftify_infra::worker::drain(giftify, giftify.ports.inbox.as_ref())
        .await
        .unwrap();
    assert_eq!(status(giftify, &order).await, OrderStatus::Fulfilled);
    let sqs = aws_sdk_sqs::Client::new(&giftify_tests::moto::moto().sdk_config().await);
    let queued = sqs
        .receive_message()
        .queue_url(&stack.runtime.aws.wakeups.queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(
        queued.len(),
        1,
        "the topic delivered the event into the webhook queue"
    );
    let event = json!({"Records": [
        {
            "messageId": queued[0].message_id().unwrap(),
            "receiptHandle": queued[0].receipt_handle().unwrap(),
            "body": queued[0].body().unwrap(),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1732521600000"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:giftify-webhooks",
            "awsRegion": "us-east-1",
        },
        {
            "messageId": "unreadable",
            "receiptHandle": "receipt-unreadable",
            "body": "not json",
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:giftify-webhooks",
            "awsRegion": "us-east-1",
        },
    ]});

    let mut lambda = LambdaHarness::start().await;
    lambda.spawn_function(
        &release_dir().join("dispatcher"),
        &stack.worker_lambda_env(),
    );
    let response = lambda.invoke(event).await.expect("the function answers");
    let output = lambda.stop();
    assert_eq!(response, json!({"batchItemFailures": []}), "{output}");

    let calls = received.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{output}");
    let (signature, body) = &calls[0];
    let sent: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(sent["orderId"], order.id.as_str());
    let (t, v1) = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(
        secrecy::ExposeSecret::expose_secret(&secret).as_bytes(),
    )
    .unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&hex::decode(v1).unwrap())
        .expect("the signature verifies");
    let log = giftify
        .webhook_deliveries(
            &endpoint.id,
            None,
            giftify_shared::wallet::PageRequest::new(None, None, 10).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(log.items.len(), 1);
    assert_eq!(log.items[0].attempts[0].http_status, Some(204));
    assert!(
        !output.contains(secrecy::ExposeSecret::expose_secret(&secret)),
        "no secret in the logs"
    );
}

/// An API Gateway HTTP API (payload format 2.0) event.
fn api_event(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Value {
    let mut headers =
        json!({"host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "curl/8.5.0"});
    if body.is_some() {
        headers["content-type"] = json!("application/json");
    }
    if let Some(token) = token {
        headers["authorization"] = json!(format!("Bearer {token}"));
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000", "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
            "requestId": "JKJaXmPLvHcESHA=", "routeKey": "$default", "stage": "$default",
            "time": "25/Nov/2026:08:00:00 +0000", "timeEpoch": 1795593600000_u64
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

#[tokio::test]
async fn api_gateway_v2_events_reach_the_router_with_method_path_headers_and_body() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let stack = AwsTestStack::start(3, 30).await;
    let runtime = &stack.runtime;
    runtime.giftify.seed_demo_catalogue().await.unwrap();
    let router = giftify_api::router(giftify_api::AppState::new(
        runtime.giftify.clone(),
        runtime.secrets.jwt_secret().expect("the JWT key"),
    ));
    let call = |event: Value| {
        let router = router.clone();
        async move {
            let request = lambda_http::request::from_str(&event.to_string())
                .expect("an API Gateway v2 event");
            let response = router
                .oneshot(request.map(axum::body::Body::new))
                .await
                .expect("answers");
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            )
        }
    };
    let email = format!("lambda-{}@example.in", ulid::Ulid::new()).to_lowercase();
    let register = json!({"email": email, "password": "correct horse battery", "firstName": "L", "lastName": "Ambda"});
    let (status, body) = call(api_event("POST", "/auth/register", None, Some(register))).await;
    assert_eq!(status, 200, "{body}");
    let token = body["data"]["accessToken"].as_str().unwrap().to_string();
    let (status, body) = call(api_event(
        "POST",
        "/wallet/topup",
        Some(&token),
        Some(json!({"amount": 5000})),
    ))
    .await;
    assert_eq!(
        (status, body["data"]["newBalance"].clone()),
        (200, json!(5000)),
        "{body}"
    );
    let (status, body) = call(api_event("GET", "/wallet/balance", None, None)).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("UNAUTHORIZED"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_api_binary_answers_api_gateway_events_under_the_runtime_api() {
    let stack = AwsTestStack::start(3, 30).await;
    stack.runtime.giftify.seed_demo_catalogue().await.unwrap();
    let mut lambda = LambdaHarness::start().await;
    lambda.spawn_function(&release_dir().join("api-lambda"), &stack.api_lambda_env());

    let health = lambda
        .invoke(api_event("GET", "/health", None, None))
        .await
        .expect("answers");
    assert_eq!(health["statusCode"], 200, "{health}");
    let email = format!("api-lambda-{}@example.in", ulid::Ulid::new()).to_lowercase();
    let register = json!({"email": email, "password": "correct horse battery", "firstName": "A", "lastName": "L"});
    let registered = lambda
        .invoke(api_event("POST", "/auth/register", None, Some(register)))
        .await
        .expect("answers");
    assert_eq!(registered["statusCode"], 200, "{registered}");
    let body: Value = serde_json::from_str(registered["body"].as_str().unwrap()).unwrap();
    let token = body["data"]["accessToken"].as_str().unwrap();
    let products = lambda
        .invoke(api_event("GET", "/products", Some(token), None))
        .await
        .expect("answers");
    let body: Value = serde_json::from_str(products["body"].as_str().unwrap()).unwrap();
    assert!(
        body["data"]["products"].as_array().unwrap().len() >= 5,
        "{body}"
    );
    let variant = body["data"]["products"][0]["variants"][0]["variantId"].clone();
    let top_up = api_event(
        "POST",
        "/wallet/topup",
        Some(token),
        Some(json!({"amount": 100_000})),
    );
    assert_eq!(
        lambda.invoke(top_up).await.expect("answers")["statusCode"],
        200
    );
    let order = json!({"items": [{"variantId": variant, "quantity": 1}]});
    let created = lambda
        .invoke(api_event(
            "POST",
            "/orders/create",
            Some(token),
            Some(order),
        ))
        .await
        .expect("answers");
    assert_eq!(created["statusCode"], 202, "{created}");
    let output = lambda.stop();
    assert!(
        output.contains("\"OrdersAccepted\":1"),
        "an EMF line per accepted order: {output}"
    );
}
