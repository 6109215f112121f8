//! The AWS cost model: what one order costs on the AWS backend, counted on moto and priced at
//! us-east-1 list prices.
//!
//! A recording proxy sits between the AWS SDK and the moto server. It forwards every request
//! unchanged and tallies it: SQS requests, SNS publishes, and for DynamoDB the request units
//! the call would consume on the real service (see [`super::dynamo_units`]). For every write
//! it reads the target items from moto just before and just after forwarding (those reads go
//! straight to moto and are not counted), so an update is billed on the larger of the two
//! sizes and index writes follow the actual change of each index entry.
//!
//! One order is driven exactly as the deployed stack runs it, step by step and in sequence,
//! each step tallied on its own:
//! 1. `api_create`: the API Lambda's router answers `POST /orders/create` (optionally with an
//!    `Idempotency-Key`);
//! 2. `esm_receive`: the SQS event source mapping receives the message;
//! 3. `fulfillment`: the fulfillment Lambda's handler gets it as an `SqsEvent`;
//! 4. `esm_delete`: the event source mapping deletes the handled message;
//! 5. `api_poll`: the client polls `GET /orders/{id}` once, after `Retry-After`, and sees it final.

use super::dynamo_units::{WireItem, index_write_units, item_size, read_units, write_units};
use super::stats::round3;
use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use giftify_api::{AppState, router};
use giftify_infra::aws::runtime::AwsRuntime;
use giftify_infra::aws::tables::{ALL, TableDef};
use giftify_shared::catalogue::VariantUpdate;
use giftify_shared::ports::Inbox;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// What the cost run does.
#[derive(Clone, Debug)]
pub struct CostOptions {
    /// Orders measured (after one unmeasured warm-up order).
    pub orders: usize,
    /// Send an `Idempotency-Key` with each create, as a careful client does.
    pub idempotency_key: bool,
    /// Lambda memory size, for the GB-seconds.
    pub memory_mb: u32,
}

/// us-east-1 list prices (USD), as documented in `docs/benchmarks.md`.
pub mod prices {
    /// Lambda, per request.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// Lambda (x86_64), per GB-second.
    pub const LAMBDA_GB_SECOND: f64 = 0.000_016_666_7;
    /// API Gateway HTTP API, per request (first 300 million a month).
    pub const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
    /// DynamoDB on-demand, per write request unit.
    pub const DYNAMODB_WRU: f64 = 0.625 / 1e6;
    /// DynamoDB on-demand, per read request unit.
    pub const DYNAMODB_RRU: f64 = 0.125 / 1e6;
    /// SQS FIFO, per request (64 KB chunk).
    pub const SQS_FIFO_REQUEST: f64 = 0.50 / 1e6;
    /// SNS standard topic, per publish (64 KB chunk).
    pub const SNS_PUBLISH: f64 = 0.50 / 1e6;
}

/// Modelled in-region latency of one call, for Lambda's billed duration: moto's latencies are
/// a Python process's, not DynamoDB's. Typical single-digit-millisecond figures.
fn modelled_call_ms(call: &str) -> f64 {
    match call {
        "dynamodb.TransactWriteItems" => 12.0,
        c if c.starts_with("dynamodb.") => 5.0,
        c if c.starts_with("sqs.") => 8.0,
        c if c.starts_with("sns.") => 10.0,
        _ => 10.0,
    }
}

/// CPU time per invocation added to the modelled duration (JSON, crypto, routing).
const MODELLED_CPU_MS: f64 = 3.0;

/// The tally of one step (or of a whole run).
#[derive(Clone, Debug, Default)]
struct Tally {
    calls: BTreeMap<String, u64>,
    read_units: f64,
    write_units: f64,
    index_write_units: f64,
    by_table: BTreeMap<String, [f64; 3]>,
    failed_calls: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        for (call, n) in &other.calls {
            *self.calls.entry(call.clone()).or_default() += n;
        }
        self.read_units += other.read_units;
        self.write_units += other.write_units;
        self.index_write_units += other.index_write_units;
        for (table, units) in &other.by_table {
            let entry = self.by_table.entry(table.clone()).or_default();
            for i in 0..3 {
                entry[i] += units[i];
            }
        }
        self.failed_calls += other.failed_calls;
    }

    fn table(&mut self, table: &str) -> &mut [f64; 3] {
        self.by_table.entry(short_table(table)).or_default()
    }

    fn count(&self, prefix: &str) -> u64 {
        self.calls
            .iter()
            .filter(|(call, _)| call.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    fn modelled_ms(&self) -> f64 {
        self.calls
            .iter()
            .map(|(call, n)| modelled_call_ms(call) * *n as f64)
            .sum()
    }

    fn json(&self, per: f64) -> Value {
        json!({
            "calls": self.calls.iter().map(|(c, n)| (c.clone(), round3(*n as f64 / per))).collect::<BTreeMap<_, _>>(),
            "dynamodb_read_units": round3(self.read_units / per),
            "dynamodb_write_units_table": round3(self.write_units / per),
            "dynamodb_write_units_indexes": round3(self.index_write_units / per),
            "dynamodb_write_units_total": round3((self.write_units + self.index_write_units) / per),
            "by_table_rru_wru_index_wru": self.by_table.iter().map(|(t, u)| (t.clone(), [round3(u[0] / per), round3(u[1] / per), round3(u[2] / per)])).collect::<BTreeMap<_, _>>(),
            "failed_calls": self.failed_calls,
        })
    }
}

fn short_table(name: &str) -> String {
    ALL.iter()
        .find(|t| name.ends_with(&format!("-{}", t.short_name)))
        .map_or_else(|| name.to_string(), |t| t.short_name.to_string())
}

/// The proxy's state: where moto is, the stage's table definitions, and the tally of the step
/// being run.
struct Proxy {
    moto: String,
    http: reqwest::Client,
    tables: Vec<(String, TableDef)>,
    step: Mutex<Tally>,
}

/// One item a write request targets.
struct Target {
    table: String,
    key: WireItem,
    transactional: bool,
    condition_check: bool,
}

impl Proxy {
    fn table(&self, name: &str) -> Option<&TableDef> {
        self.tables.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    fn key_of(&self, table: &str, item: &WireItem) -> WireItem {
        let Some(def) = self.table(table) else {
            return WireItem::new();
        };
        std::iter::once(def.key.partition)
            .chain(def.key.sort)
            .filter_map(|k| item.get(k).map(|v| (k.to_string(), v.clone())))
            .collect()
    }

    /// The items a DynamoDB write request touches.
    fn targets(&self, op: &str, request: &Value) -> Vec<Target> {
        let obj = |v: &Value| v.as_object().cloned().unwrap_or_default();
        let table = |v: &Value| v["TableName"].as_str().unwrap_or_default().to_string();
        match op {
            "PutItem" => vec![Target {
                key: self.key_of(&table(request), &obj(&request["Item"])),
                table: table(request),
                transactional: false,
                condition_check: false,
            }],
            "UpdateItem" | "DeleteItem" => vec![Target {
                table: table(request),
                key: obj(&request["Key"]),
                transactional: false,
                condition_check: false,
            }],
            "TransactWriteItems" => request["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|entry| {
                    let (kind, body) = entry.as_object()?.iter().next()?;
                    let table = table(body);
                    let key = if kind == "Put" {
                        self.key_of(&table, &obj(&body["Item"]))
                    } else {
                        obj(&body["Key"])
                    };
                    Some(Target {
                        table,
                        key,
                        transactional: true,
                        condition_check: kind == "ConditionCheck",
                    })
                })
                .collect(),
            "BatchWriteItem" => request["RequestItems"]
                .as_object()
                .into_iter()
                .flatten()
                .flat_map(|(table, writes)| {
                    writes.as_array().into_iter().flatten().map(move |w| {
                        let key = match (w.get("PutRequest"), w.get("DeleteRequest")) {
                            (Some(put), _) => self.key_of(table, &obj(&put["Item"])),
                            (_, Some(delete)) => obj(&delete["Key"]),
                            _ => WireItem::new(),
                        };
                        Target {
                            table: table.clone(),
                            key,
                            transactional: false,
                            condition_check: false,
                        }
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A consistent read of one item straight from moto (not tallied).
    async fn peek(&self, headers: &HeaderMap, table: &str, key: &WireItem) -> Option<WireItem> {
        let mut request = self
            .http
            .post(&self.moto)
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .header("content-type", "application/x-amz-json-1.0")
            .body(json!({"TableName": table, "Key": key, "ConsistentRead": true}).to_string());
        if let Some(auth) = headers.get("authorization") {
            request = request.header("authorization", auth.clone());
        }
        let answer: Value = request.send().await.ok()?.json().await.ok()?;
        answer["Item"].as_object().cloned()
    }

    /// Tallies the read units of a DynamoDB read from its request and response.
    fn tally_read(&self, tally: &mut Tally, op: &str, request: &Value, response: &Value) {
        let consistent = |v: &Value| v["ConsistentRead"].as_bool().unwrap_or(false);
        let factor = |consistent: bool| if consistent { 1.0 } else { 0.5 };
        match op {
            "GetItem" => {
                let size = response["Item"].as_object().map_or(0, item_size);
                let units = read_units(size) * factor(consistent(request));
                tally.read_units += units;
                tally.table(request["TableName"].as_str().unwrap_or_default())[0] += units;
            }
            "BatchGetItem" => {
                for (table, asked) in request["RequestItems"].as_object().into_iter().flatten() {
                    let found: Vec<usize> = response["Responses"][table]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|i| i.as_object().map(item_size))
                        .collect();
                    let keys = asked["Keys"].as_array().map_or(0, Vec::len);
                    // Each key is its own read; a missing item still costs the minimum.
                    let units: f64 = found.iter().map(|s| read_units(*s)).sum::<f64>()
                        + keys.saturating_sub(found.len()) as f64;
                    let units = units * factor(consistent(asked));
                    tally.read_units += units;
                    tally.table(table)[0] += units;
                }
            }
            "Query" | "Scan" => {
                let size: usize = response["Items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.as_object().map(item_size))
                    .sum();
                let units = read_units(size) * factor(consistent(request));
                tally.read_units += units;
                tally.table(request["TableName"].as_str().unwrap_or_default())[0] += units;
            }
            "TransactGetItems" => {
                for (item, entry) in response["Responses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .zip(request["TransactItems"].as_array().into_iter().flatten())
                {
                    let size = item["Item"].as_object().map_or(0, item_size);
                    let units = read_units(size) * 2.0;
                    tally.read_units += units;
                    tally.table(entry["Get"]["TableName"].as_str().unwrap_or_default())[0] += units;
                }
            }
            _ => {}
        }
    }
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    match forward_inner(&proxy, request).await {
        Ok(response) => response,
        Err(error) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::from(format!("cost proxy: {error:#}")))
            .unwrap_or_default(),
    }
}

async fn forward_inner(proxy: &Proxy, request: Request) -> Result<Response> {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 16 * 1024 * 1024).await?;
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let form_action = || {
        std::str::from_utf8(&body).ok().and_then(|text| {
            text.split('&')
                .find_map(|pair| pair.strip_prefix("Action="))
                .map(str::to_string)
        })
    };
    let call = if let Some(op) = target.strip_prefix("DynamoDB_20120810.") {
        format!("dynamodb.{op}")
    } else if let Some(op) = target.strip_prefix("AmazonSQS.") {
        format!("sqs.{op}")
    } else if let Some(op) = target.strip_prefix("secretsmanager.") {
        format!("secretsmanager.{op}")
    } else if let Some(action) = form_action() {
        // SNS (and SQS's older query protocol) name the action in the form body.
        if std::str::from_utf8(&body).is_ok_and(|b| b.contains("TopicArn") || b.contains("Topic")) {
            format!("sns.{action}")
        } else {
            format!("query.{action}")
        }
    } else {
        format!("other.{}", parts.uri.path())
    };
    let dynamo_op = call.strip_prefix("dynamodb.").map(str::to_string);
    let request_json: Value = if dynamo_op.is_some() {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        Value::Null
    };

    let targets = dynamo_op
        .as_deref()
        .map(|op| proxy.targets(op, &request_json))
        .unwrap_or_default();
    let mut before = Vec::new();
    for target in &targets {
        before.push(proxy.peek(&parts.headers, &target.table, &target.key).await);
    }

    let url = format!(
        "{}{}",
        proxy.moto,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut upstream = proxy.http.request(parts.method.clone(), &url);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.body(body.clone()).send().await?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let answer_body = answer.bytes().await?;

    let mut tally = Tally::default();
    *tally.calls.entry(call.clone()).or_default() += 1;
    if !status.is_success() {
        tally.failed_calls += 1;
    }
    if let Some(op) = dynamo_op.as_deref() {
        let response_json: Value = serde_json::from_slice(&answer_body).unwrap_or(Value::Null);
        proxy.tally_read(&mut tally, op, &request_json, &response_json);
        for (target, before) in targets.iter().zip(before) {
            let after = if status.is_success() {
                proxy.peek(&parts.headers, &target.table, &target.key).await
            } else {
                before.clone()
            };
            let size = before
                .as_ref()
                .map_or(0, item_size)
                .max(after.as_ref().map_or(0, item_size));
            let factor = if target.transactional { 2.0 } else { 1.0 };
            let units = write_units(size) * factor;
            tally.write_units += units;
            tally.table(&target.table)[1] += units;
            if target.condition_check || !status.is_success() {
                continue;
            }
            if let Some(def) = proxy.table(&target.table) {
                let index_units: f64 = def
                    .indexes
                    .iter()
                    .map(|index| index_write_units(def.key, index, before.as_ref(), after.as_ref()))
                    .sum();
                tally.index_write_units += index_units;
                tally.table(&target.table)[2] += index_units;
            }
        }
    }
    proxy
        .step
        .lock()
        .map_err(|_| anyhow::anyhow!("tally poisoned"))?
        .add(&tally);

    let mut response = Response::builder().status(status.as_u16());
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    Ok(response.body(Body::from(answer_body))?)
}

impl Proxy {
    fn take(&self) -> Tally {
        std::mem::take(
            &mut *self
                .step
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// Sends one request through the API router, as API Gateway hands it to the API Lambda.
async fn call_api(
    app: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    idempotency_key: Option<&str>,
    body: Option<Value>,
) -> Result<(StatusCode, Value)> {
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(key) = idempotency_key {
        request = request.header("idempotency-key", key);
    }
    let request = request.body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))?;
    let response = app.clone().oneshot(request).await?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// The steps of one order, in order.
const STEPS: [&str; 5] = [
    "api_create",
    "esm_receive",
    "fulfillment",
    "esm_delete",
    "api_poll",
];

/// Runs the cost model on moto and returns its JSON report.
pub async fn run(options: &CostOptions) -> Result<Value> {
    let moto = tokio::task::spawn_blocking(crate::moto::moto).await?;
    let admin_sdk = moto.sdk_config().await;
    let stage = crate::moto::unique_stage();
    giftify_infra::aws::bootstrap::bootstrap(&admin_sdk, Some(&stage), 5, 30).await?;

    let proxy = Arc::new(Proxy {
        moto: moto.endpoint.clone(),
        http: reqwest::Client::builder().build()?,
        tables: ALL.iter().map(|t| (t.name(Some(&stage)), *t)).collect(),
        step: Mutex::new(Tally::default()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let proxy_url = format!("http://{}", listener.local_addr()?);
    let proxy_app = Router::new().fallback(forward).with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, proxy_app).await });

    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&proxy_url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await;
    let dir = tempfile::tempdir()?;
    let runtime = AwsRuntime::open(crate::moto::AwsTestStack::config(&stage, dir.path()), &sdk)
        .await
        .context("open the AWS backend through the cost proxy")?;
    let giftify = runtime.giftify.clone();
    let metrics = giftify_infra::metrics::MetricScope::new(&runtime.config, "fulfillment");
    giftify.seed_demo_catalogue().await?;
    let app = router(AppState::new(
        giftify.clone(),
        runtime.secrets.jwt_secret().expect("the JWT key"),
    ));

    // Setup, not tallied: a funded user and a well-stocked ₹500 card.
    let (status, registered) = call_api(
        &app,
        Method::POST,
        "/auth/register",
        None,
        None,
        Some(json!({"email": "cost@example.com", "password": "correct horse battery", "firstName": "Cost", "lastName": "Model"})),
    )
    .await?;
    let token = registered["data"]["accessToken"]
        .as_str()
        .with_context(|| format!("register answered {status}: {registered}"))?
        .to_string();
    for _ in 0..3 {
        call_api(
            &app,
            Method::POST,
            "/wallet/topup",
            Some(&token),
            None,
            Some(json!({"amount": 10_000_000})),
        )
        .await?;
    }
    // Giftify's own cards: a variant whose stock an admin sets.
    let variant = giftify
        .catalogue()
        .await?
        .iter()
        .flat_map(|product| &product.variants)
        .find(|v| v.fulfillment_source == giftify_shared::codes::FulfillmentSource::Generated)
        .ok_or_else(|| anyhow::anyhow!("the demo catalogue has Giftify cards"))?
        .id
        .clone();
    giftify
        .ports
        .catalogue
        .update_variant(
            &variant,
            &VariantUpdate {
                stock_quantity: Some(1_000_000),
                ..VariantUpdate::default()
            },
            chrono::Utc::now(),
        )
        .await?;

    let mut steps: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut wall: BTreeMap<&str, Duration> = BTreeMap::new();
    let mut total_fulfilled = 0;
    // One unmeasured order first: it fills the adapter's variant→product cache as any warm
    // Lambda has it.
    for n in 0..=options.orders {
        let measured = n > 0;
        let mut record = |step: &'static str, begun: Instant, proxy: &Proxy| {
            let tally = proxy.take();
            if measured {
                steps.entry(step).or_default().add(&tally);
                *wall.entry(step).or_default() += begun.elapsed();
            }
        };
        proxy.take();
        let key = format!("cost-{n}-{}", ulid::Ulid::new());
        let begun = Instant::now();
        let (status, created) = call_api(
            &app,
            Method::POST,
            "/orders/create",
            Some(&token),
            options.idempotency_key.then_some(key.as_str()),
            Some(json!({"items": [{"variantId": variant.as_str(), "quantity": 1}]})),
        )
        .await?;
        if status != StatusCode::ACCEPTED {
            bail!("create answered {status}: {created}");
        }
        let order_id = created["data"]["orderId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        record("api_create", begun, &proxy);

        let begun = Instant::now();
        let mut messages = Vec::new();
        for _ in 0..5 {
            messages = Inbox::receive(&runtime.aws.queue, 10, Duration::from_secs(1)).await?;
            if !messages.is_empty() {
                break;
            }
        }
        if messages.is_empty() {
            bail!("the order's message never arrived");
        }
        record("esm_receive", begun, &proxy);

        let begun = Instant::now();
        let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(json!({
            "Records": messages.iter().map(|m| json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt,
                "body": m.body,
                "attributes": {"MessageGroupId": m.group_id, "ApproximateReceiveCount": m.receive_count.to_string()},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            })).collect::<Vec<_>>()
        }))?;
        let outcome = giftify_workers::fulfillment::handle(&giftify, &metrics, event).await;
        if !outcome.batch_item_failures.is_empty() {
            bail!("fulfillment failed: {outcome:?}");
        }
        record("fulfillment", begun, &proxy);

        let begun = Instant::now();
        for message in &messages {
            Inbox::ack(&runtime.aws.queue, message).await?;
        }
        record("esm_delete", begun, &proxy);

        let begun = Instant::now();
        let (_, polled) = call_api(
            &app,
            Method::GET,
            &format!("/orders/{order_id}"),
            Some(&token),
            None,
            None,
        )
        .await?;
        if polled["data"]["status"] != "FULFILLED" {
            bail!("the order is not fulfilled after its message was handled: {polled}");
        }
        record("api_poll", begun, &proxy);
        if measured {
            total_fulfilled += 1;
        }
    }

    let per = total_fulfilled as f64;
    let mut all = Tally::default();
    for tally in steps.values() {
        all.add(tally);
    }
    Ok(price(options, &steps, &wall, &all, per))
}

fn price(
    options: &CostOptions,
    steps: &BTreeMap<&str, Tally>,
    wall: &BTreeMap<&str, Duration>,
    all: &Tally,
    per: f64,
) -> Value {
    let gb = f64::from(options.memory_mb) / 1024.0;
    let invocation = |step: &str| -> f64 {
        let tally = steps.get(step).cloned().unwrap_or_default();
        (tally.modelled_ms() / per + MODELLED_CPU_MS).ceil()
    };
    // The API Lambda runs once per API request; the fulfillment Lambda once per batch (one
    // message per batch here: the worst case, when orders arrive one at a time).
    let api_requests = 2.0;
    let lambda_invocations = api_requests + 1.0;
    let billed_ms = invocation("api_create") + invocation("api_poll") + invocation("fulfillment");
    let gb_seconds = gb * billed_ms / 1000.0;
    let wru = (all.write_units + all.index_write_units) / per;
    let rru = all.read_units / per;
    let sqs = all.count("sqs.") as f64 / per;
    let sns = all.count("sns.Publish") as f64 / per;
    let lines = [
        (
            "api_gateway_http_requests",
            api_requests,
            prices::HTTP_API_REQUEST,
        ),
        (
            "lambda_requests",
            lambda_invocations,
            prices::LAMBDA_REQUEST,
        ),
        ("lambda_gb_seconds", gb_seconds, prices::LAMBDA_GB_SECOND),
        ("dynamodb_write_request_units", wru, prices::DYNAMODB_WRU),
        ("dynamodb_read_request_units", rru, prices::DYNAMODB_RRU),
        ("sqs_fifo_requests", sqs, prices::SQS_FIFO_REQUEST),
        ("sns_publishes", sns, prices::SNS_PUBLISH),
    ];
    let mut total = 0.0;
    let mut per_million = serde_json::Map::new();
    for (name, quantity, price) in lines {
        let dollars = quantity * price * 1e6;
        total += dollars;
        per_million.insert(
            name.to_string(),
            json!({"per_order": round3(quantity), "usd_per_million_orders": round3(dollars)}),
        );
    }
    json!({
        "orders": per,
        "idempotency_key": options.idempotency_key,
        "lambda_memory_mb": options.memory_mb,
        "steps": STEPS.iter().map(|s| (s.to_string(), json!({
            "tally": steps.get(s).cloned().unwrap_or_default().json(per),
            "wall_ms_on_moto": round3(wall.get(s).map_or(0.0, |d| d.as_secs_f64() * 1000.0) / per),
        }))).collect::<serde_json::Map<_, _>>(),
        "per_order": all.json(per),
        "modelled_billed_ms": {"api_create": invocation("api_create"), "api_poll": invocation("api_poll"), "fulfillment": invocation("fulfillment")},
        "cost": per_million,
        "usd_per_million_orders": round3(total),
        "targets": {
            "write_units_at_most_12": wru <= 12.0,
            "usd_per_million_at_most_11": total <= 11.0,
        },
    })
}

/// The short table printed after a cost run.
pub fn table(report: &Value) -> String {
    let mut out = String::new();
    let per = &report["per_order"];
    out.push_str(&format!(
        "per order ({} orders, idempotency key: {})\n",
        report["orders"], report["idempotency_key"]
    ));
    for step in STEPS {
        let t = &report["steps"][step]["tally"];
        out.push_str(&format!(
            "  {step:<12} RRU {:>6}  WRU table {:>6}  WRU indexes {:>6}  calls {}\n",
            t["dynamodb_read_units"],
            t["dynamodb_write_units_table"],
            t["dynamodb_write_units_indexes"],
            t["calls"]
        ));
    }
    out.push_str(&format!(
        "  total        RRU {:>6}  WRU {:>6} (table {} + indexes {})\n",
        per["dynamodb_read_units"],
        per["dynamodb_write_units_total"],
        per["dynamodb_write_units_table"],
        per["dynamodb_write_units_indexes"]
    ));
    out.push_str("USD per million orders\n");
    if let Some(lines) = report["cost"].as_object() {
        for (name, line) in lines {
            out.push_str(&format!(
                "  {name:<32} {:>8} per order  ${:>8}\n",
                line["per_order"], line["usd_per_million_orders"]
            ));
        }
    }
    out.push_str(&format!(
        "  {:<32} {:>8}            ${:>8}\n",
        "total", "", report["usd_per_million_orders"]
    ));
    out
}
