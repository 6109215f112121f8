//! The test harness: a fresh embedded stack on a temp dir per test, driven through the same
//! router that `giftify serve` runs, with typed helpers for the common steps.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use giftify_infra::EmbeddedStack;
use giftify_infra::config::{AdminAccount, Config, QueueSettings};
use giftify_infra::worker::{self, WorkerSettings};
use giftify_shared::Giftify;
use giftify_shared::order::OrderMessage;
use giftify_tests::moto::AwsTestStack;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tower::ServiceExt;

pub const ADMIN_EMAIL: &str = "admin@giftify.test";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
pub const PASSWORD: &str = "correct horse battery";

/// Which backend a test runs on; every end-to-end test runs on both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Aws,
}

/// Generates, for each test function `async fn name(backend: Backend)` of the module, one
/// `embedded::name` and one `aws::name` test.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::support::Backend::Embedded).await
                }
            )+
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::support::Backend::Aws).await
                }
            )+
        }
    };
}

/// The backend behind a test app.
#[derive(Clone)]
pub enum Stack {
    Embedded(Arc<EmbeddedStack>),
    Aws {
        stack: Arc<AwsTestStack>,
        subscriber: String,
    },
}

impl Stack {
    pub fn giftify(&self) -> &Giftify {
        match self {
            Stack::Embedded(stack) => &stack.giftify,
            Stack::Aws { stack, .. } => &stack.runtime.giftify,
        }
    }

    fn jwt_secret(&self) -> &secrecy::SecretString {
        match self {
            Stack::Embedded(stack) => stack.secrets.jwt_secret().expect("the JWT key"),
            Stack::Aws { stack, .. } => stack.runtime.secrets.jwt_secret().expect("the JWT key"),
        }
    }

    /// The worker side as the product runs it: the embedded consumer, webhook delivery and
    /// reconciler, or the SQS long-poll consumer.
    pub async fn run_worker(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        match self {
            Stack::Embedded(stack) => stack.run_worker(shutdown.into()).await,
            Stack::Aws { stack, .. } => {
                let runtime = &stack.runtime;
                worker::run(
                    runtime.giftify.clone(),
                    runtime.giftify.ports.inbox.clone(),
                    WorkerSettings::SQS,
                    shutdown.into(),
                )
                .await
            }
        }
    }
}

/// One received queue message, on either backend: the port's delivery and the order it
/// carries.
pub struct Delivery {
    pub message: OrderMessage,
    delivery: giftify_shared::inbox::Delivery,
}

pub struct TestApp {
    pub router: Router,
    pub stack: Stack,
    pub dir: tempfile::TempDir,
    pub admin_token: String,
    /// Events read from the AWS subscriber queue so far (reading deletes them there).
    notifications: Mutex<Vec<Value>>,
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestResponse {
    /// The `data` of a success envelope.
    pub fn data(&self) -> &Value {
        assert_eq!(
            self.body["success"], true,
            "expected success, got {} {}",
            self.status, self.body
        );
        &self.body["data"]
    }

    /// The `error.code` of an error envelope.
    pub fn code(&self) -> &str {
        assert_eq!(
            self.body["success"], false,
            "expected an error, got {} {}",
            self.status, self.body
        );
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and error code of an error envelope.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.code(), code, "{}", self.body);
        assert!(self.body["timestamp"].is_string());
        assert!(self.body["error"]["message"].is_string());
    }
}

/// A registered user with a live access token.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub token: String,
    pub refresh_token: String,
}

static EMAILS: AtomicU64 = AtomicU64::new(0);

pub fn unique_email(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}@example.in",
        EMAILS.fetch_add(1, Ordering::Relaxed),
        std::process::id()
    )
}

pub fn test_config(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        admin: Some(AdminAccount {
            email: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.to_string().into(),
        }),
        queue: QueueSettings {
            max_receives: 3,
            visibility_timeout: Duration::from_secs(30),
        },
        // Tests register and order far faster than people, all from one address; the budgets
        // have their own test.
        user_limits: giftify_shared::rate_limits::ActionLimits::OFF,
        ..Config::default()
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// A fresh stack of `backend` with the test config adjusted by `configure`.
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
        match backend {
            Backend::Embedded => {
                Self::spawn_in(tempfile::tempdir().expect("temp dir"), |dir| {
                    let mut config = test_config(dir);
                    configure(&mut config);
                    config
                })
                .await
            }
            Backend::Aws => {
                let stack = AwsTestStack::start_with(3, 30, configure).await;
                stack
                    .runtime
                    .giftify
                    .seed_demo_catalogue()
                    .await
                    .expect("seed");
                let subscriber = stack.subscribe_queue().await;
                Self::around(
                    Stack::Aws {
                        stack: Arc::new(stack),
                        subscriber,
                    },
                    tempfile::tempdir().expect("dir"),
                )
                .await
            }
        }
    }

    /// An embedded stack on `dir` with a config adjusted by `configure`.
    pub async fn spawn_in(
        dir: tempfile::TempDir,
        configure: impl FnOnce(&std::path::Path) -> Config,
    ) -> TestApp {
        let config = configure(dir.path());
        let stack = Arc::new(
            EmbeddedStack::open(config, giftify_infra::stack::Opening::MayInitialise)
                .await
                .expect("stack opens"),
        );
        Self::around(Stack::Embedded(stack), dir).await
    }

    /// The router over a stack, with the admin ensured and logged in.
    async fn around(stack: Stack, dir: tempfile::TempDir) -> TestApp {
        let giftify = stack.giftify().clone();
        giftify_api::set_up_admin(
            &giftify,
            giftify_shared::usecases::AdminRequest::Ensure {
                promote_existing: false,
            },
            ADMIN_EMAIL,
            &ADMIN_PASSWORD.to_string().into(),
        )
        .await
        .expect("admin");
        let router = giftify_api::router(giftify_api::AppState::new(giftify, stack.jwt_secret()));
        let mut app = TestApp {
            router,
            stack,
            dir,
            admin_token: String::new(),
            notifications: Mutex::default(),
        };
        let login = app
            .post(
                "/auth/login",
                None,
                json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
            )
            .await;
        app.admin_token = login.data()["accessToken"]
            .as_str()
            .expect("admin token")
            .to_string();
        app
    }

    /// The same data behind a new process: the stack is dropped and opened again.
    pub async fn restart(self) -> TestApp {
        let TestApp { stack, dir, .. } = self;
        match stack {
            Stack::Embedded(stack) => {
                drop(stack);
                Self::spawn_in(dir, test_config).await
            }
            Stack::Aws { stack, subscriber } => {
                let config = AwsTestStack::config(&stack.stage, stack.dir.path());
                let sdk = giftify_tests::moto::moto().sdk_config().await;
                let runtime =
                    giftify_infra::aws::runtime::AwsRuntime::open_sending_webhooks(config, &sdk)
                        .await
                        .expect("reopen");
                let reopened = AwsTestStack {
                    runtime,
                    stage: stack.stage.clone(),
                    endpoint: stack.endpoint.clone(),
                    dir: tempfile::tempdir().expect("dir"),
                };
                Self::around(
                    Stack::Aws {
                        stack: Arc::new(reopened),
                        subscriber,
                    },
                    dir,
                )
                .await
            }
        }
    }

    pub fn giftify(&self) -> &Giftify {
        self.stack.giftify()
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&body).expect("json"))),
            None => builder.body(Body::empty()),
        };
        self.send(request.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.call(Method::GET, path, token, None, &[]).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> TestResponse {
        self.call(Method::POST, path, token, Some(body), &[]).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> TestResponse {
        self.call(Method::PUT, path, token, Some(body), &[]).await
    }

    pub async fn register(&self, prefix: &str) -> TestUser {
        let email = unique_email(prefix);
        let response = self
            .post(
                "/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "firstName": "Asha", "lastName": "Rao",
                       "phoneNumber": "+919876543210"}),
            )
            .await;
        let data = response.data();
        TestUser {
            id: data["userId"].as_str().expect("userId").into(),
            email,
            token: data["accessToken"].as_str().expect("accessToken").into(),
            refresh_token: data["refreshToken"].as_str().expect("refreshToken").into(),
        }
    }

    pub async fn top_up(&self, user: &TestUser, amount: i64) -> TestResponse {
        self.post(
            "/wallet/topup",
            Some(&user.token),
            json!({"amount": amount}),
        )
        .await
    }

    /// A registered user with `amount` paise in the wallet.
    pub async fn funded_user(&self, prefix: &str, amount: i64) -> TestUser {
        let user = self.register(prefix).await;
        let response = self.top_up(&user, amount).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        user
    }

    pub async fn balance(&self, user: &TestUser) -> i64 {
        self.get("/wallet/balance", Some(&user.token)).await.data()["balance"]
            .as_i64()
            .expect("balance")
    }

    pub async fn order_items(&self, user: &TestUser, items: Value) -> TestResponse {
        self.post(
            "/orders/create",
            Some(&user.token),
            json!({ "items": items }),
        )
        .await
    }

    pub async fn order(&self, user: &TestUser, order_id: &str) -> TestResponse {
        self.get(&format!("/orders/{order_id}"), Some(&user.token))
            .await
    }

    /// Handles every deliverable queue message, as the worker would; returns how many were
    /// handled successfully.
    pub async fn drain_queue(&self) -> usize {
        let giftify = self.stack.giftify();
        worker::drain(giftify, giftify.ports.inbox.as_ref())
            .await
            .expect("drain")
            .handled
    }

    /// Takes the deliverable messages off the queue without handling them.
    pub async fn receive(&self) -> Vec<Delivery> {
        self.stack
            .giftify()
            .ports
            .inbox
            .receive(10, Duration::ZERO)
            .await
            .expect("receive")
            .into_iter()
            .map(|delivery| Delivery {
                message: serde_json::from_str(&delivery.body).expect("an order message"),
                delivery,
            })
            .collect()
    }

    /// Makes a received message visible again at once, noting `error`, as a worker does with
    /// a failure it will retry (and as a handler that died leaves it once its visibility
    /// timeout runs out).
    pub async fn release(&self, delivery: &Delivery, error: &str) {
        self.stack
            .giftify()
            .ports
            .inbox
            .retry_later(&delivery.delivery, error, Duration::ZERO)
            .await
            .expect("release");
    }

    /// The inventory as the admin sees it.
    pub async fn inventory(&self) -> Vec<Value> {
        let response = self.get("/admin/inventory", Some(&self.admin_token)).await;
        response.data()["inventory"]
            .as_array()
            .expect("inventory array")
            .clone()
    }

    /// An active variant of the demo catalogue whose stock an admin sets (Giftify's own
    /// GENERATED cards): (variantId, sellingPrice, stock).
    pub async fn some_variant(&self) -> (String, i64, i64) {
        self.demo_variant("Giftify").await
    }

    /// The first active variant of a demo product: (variantId, sellingPrice, stock). The brand
    /// products are INVENTORY variants with a demo batch of codes.
    pub async fn demo_variant(&self, product_name: &str) -> (String, i64, i64) {
        let products = self.get("/products", Some(&self.admin_token)).await;
        let product = products.data()["products"]
            .as_array()
            .expect("products")
            .iter()
            .find(|p| p["name"] == product_name)
            .unwrap_or_else(|| panic!("no demo product {product_name}"))
            .clone();
        let variant = &product["variants"][0];
        (
            variant["variantId"].as_str().expect("variantId").into(),
            variant["sellingPrice"].as_i64().expect("sellingPrice"),
            variant["stockQuantity"].as_i64().expect("stockQuantity"),
        )
    }

    /// Sets a variant's stock through the admin API.
    pub async fn set_stock(&self, variant_id: &str, stock: i64) {
        let response = self
            .put(
                &format!("/admin/inventory/{variant_id}"),
                Some(&self.admin_token),
                json!({"stockQuantity": stock}),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    }

    /// Every order event published so far: the embedded event feed, or what reached the SNS
    /// topic's subscriber queue.
    pub async fn events(&self) -> Vec<Value> {
        match &self.stack {
            Stack::Embedded(_) => {
                let db = self.raw_db();
                let mut statement = db
                    .prepare("SELECT body FROM event_feed ORDER BY position")
                    .expect("event feed");
                let bodies = statement
                    .query_map([], |row| row.get::<_, String>(0))
                    .expect("query events");
                bodies
                    .map(|body| serde_json::from_str(&body.expect("row")).expect("event JSON"))
                    .collect()
            }
            Stack::Aws { stack, subscriber } => {
                let fresh = stack.notifications(subscriber).await;
                let mut seen = self.notifications.lock().expect("lock");
                seen.extend(fresh.into_iter().map(|(event, _)| event));
                seen.clone()
            }
        }
    }

    /// One round of the webhook dispatcher as the product runs it: a pass of the embedded
    /// dispatcher, or the dispatcher Lambda's handler over what is on the webhook queue (events
    /// from the topic through moto's SNS → SQS delivery, and wake-ups). Returns how many
    /// deliveries were attempted.
    pub async fn dispatch_webhooks(&self) -> usize {
        match &self.stack {
            Stack::Embedded(stack) => {
                let mut attempted = 0;
                // The first pass opens the deliveries of new events, the next attempts them.
                for _ in 0..3 {
                    attempted += stack
                        .webhooks
                        .pass()
                        .await
                        .expect("dispatch pass")
                        .attempted;
                }
                attempted
            }
            Stack::Aws { stack, .. } => {
                let sqs = aws_sdk_sqs::Client::new(&giftify_tests::moto::moto().sdk_config().await);
                let queue = &stack.runtime.aws.wakeups.queue_url;
                let mut attempted = 0;
                for _ in 0..5 {
                    let messages = sqs
                        .receive_message()
                        .queue_url(queue)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .send()
                        .await
                        .expect("receive from the webhook queue")
                        .messages
                        .unwrap_or_default();
                    if messages.is_empty() {
                        break;
                    }
                    for message in &messages {
                        let done = giftify_workers::dispatcher::dispatch_message(
                            &stack.runtime.giftify,
                            message.body().unwrap_or_default(),
                        )
                        .await
                        .expect("a webhook message is handled");
                        attempted += done.attempted;
                        sqs.delete_message()
                            .queue_url(queue)
                            .receipt_handle(message.receipt_handle().unwrap_or_default())
                            .send()
                            .await
                            .expect("delete a handled message");
                    }
                }
                attempted
            }
        }
    }

    /// Sets an account's role and status in the store itself, as an operator's change (or a
    /// moderation tool the API does not have yet) would: `("USER" | "ADMIN", "ACTIVE" |
    /// "SUSPENDED")`.
    pub async fn set_account(&self, user_id: &str, role: &str, status: &str) {
        match &self.stack {
            Stack::Embedded(_) => {
                let changed = self
                    .raw_db()
                    .execute(
                        "UPDATE users SET role = ?2, status = ?3 WHERE id = ?1",
                        rusqlite::params![user_id, role, status],
                    )
                    .expect("update the account");
                assert_eq!(changed, 1, "no account {user_id}");
            }
            Stack::Aws { stack, .. } => {
                let dynamodb =
                    aws_sdk_dynamodb::Client::new(&giftify_tests::moto::moto().sdk_config().await);
                dynamodb
                    .update_item()
                    .table_name(&stack.runtime.aws.store.tables().users)
                    .key(
                        "userId",
                        aws_sdk_dynamodb::types::AttributeValue::S(user_id.into()),
                    )
                    .update_expression("SET #role = :role, #status = :status")
                    .condition_expression("attribute_exists(userId)")
                    .expression_attribute_names("#role", "role")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(
                        ":role",
                        aws_sdk_dynamodb::types::AttributeValue::S(role.into()),
                    )
                    .expression_attribute_values(
                        ":status",
                        aws_sdk_dynamodb::types::AttributeValue::S(status.into()),
                    )
                    .send()
                    .await
                    .expect("update the account");
            }
        }
    }

    /// Opens the database file directly, as an attacker with a copy of it would.
    pub fn raw_db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join("giftify.db")).expect("open db")
    }
}
