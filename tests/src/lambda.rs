//! A Lambda Runtime API emulator on loopback: enough of `/2018-06-01/runtime/…` to run a real
//! Lambda binary (built with `lambda_runtime`) outside AWS, hand it events one at a time and
//! collect its responses — what `cargo lambda watch` and the AWS runtime interface emulator do.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path as FsPath;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc, oneshot};

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Result<Value, Value>>>>>;

#[derive(Clone)]
struct Emulator {
    events: Arc<Mutex<mpsc::Receiver<(String, Value)>>>,
    pending: Pending,
    first_poll: FirstPoll,
}

/// When the function first asked for an event: the end of its init phase, as Lambda measures
/// its "Init Duration".
type FirstPoll = Arc<std::sync::Mutex<Option<Instant>>>;

/// A running emulator and the function process attached to it.
pub struct LambdaHarness {
    pub address: String,
    sender: mpsc::Sender<(String, Value)>,
    pending: Pending,
    child: Option<Child>,
    next_id: u64,
    first_poll: FirstPoll,
    spawned_at: Option<Instant>,
}

async fn next(State(emulator): State<Emulator>) -> Response {
    if let Ok(mut first) = emulator.first_poll.lock() {
        first.get_or_insert_with(Instant::now);
    }
    let Some((id, event)) = emulator.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let deadline = (std::time::SystemTime::now() + Duration::from_secs(60))
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    for (name, value) in [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:000000000000:function:test".into(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".into(),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (headers, axum::Json(event)).into_response()
}

async fn respond(
    State(emulator): State<Emulator>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(
        &emulator,
        &id,
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null)),
    )
    .await
}

async fn fail(State(emulator): State<Emulator>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(
        &emulator,
        &id,
        Err(serde_json::from_slice(&body).unwrap_or(Value::Null)),
    )
    .await
}

async fn finish(emulator: &Emulator, id: &str, result: Result<Value, Value>) -> StatusCode {
    if let Some(waiter) = emulator.pending.lock().await.remove(id) {
        let _ = waiter.send(result);
    }
    StatusCode::ACCEPTED
}

async fn init_error(body: Bytes) -> StatusCode {
    eprintln!("lambda init error: {}", String::from_utf8_lossy(&body));
    StatusCode::ACCEPTED
}

impl LambdaHarness {
    /// Starts the emulator on a free loopback port.
    pub async fn start() -> LambdaHarness {
        let (sender, receiver) = mpsc::channel(16);
        let pending: Pending = Arc::default();
        let first_poll: FirstPoll = Arc::default();
        let emulator = Emulator {
            events: Arc::new(Mutex::new(receiver)),
            pending: pending.clone(),
            first_poll: first_poll.clone(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(emulator);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind emulator");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        LambdaHarness {
            address,
            sender,
            pending,
            child: None,
            next_id: 0,
            first_poll,
            spawned_at: None,
        }
    }

    /// When the function process was started.
    pub fn spawned_at(&self) -> Option<Instant> {
        self.spawned_at
    }

    /// When the function first asked for an event, i.e. finished its init.
    pub fn first_poll_at(&self) -> Option<Instant> {
        self.first_poll.lock().ok().and_then(|first| *first)
    }

    /// Runs `binary` as the function, with the Lambda environment plus `env`.
    pub fn spawn_function(&mut self, binary: &FsPath, env: &[(&str, String)]) {
        assert!(
            binary.exists(),
            "{} is missing: build the release binaries first (scripts/test does)",
            binary.display()
        );
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &self.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", "test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/test")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        self.spawned_at = Some(Instant::now());
        self.child = Some(command.spawn().expect("spawn the function"));
    }

    /// Delivers one event and waits (bounded) for the function's answer: `Ok(response)` or
    /// `Err(error document)`.
    pub async fn invoke(&mut self, event: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = format!("request-{}", self.next_id);
        let (done, answer) = oneshot::channel();
        self.pending.lock().await.insert(id.clone(), done);
        self.sender
            .send((id, event))
            .await
            .expect("emulator running");
        match tokio::time::timeout(Duration::from_secs(60), answer).await {
            Ok(Ok(result)) => result,
            _ => panic!(
                "the function did not answer within 60 s{}",
                self.exit_report()
            ),
        }
    }

    fn exit_report(&mut self) -> String {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => format!(" (it exited with {status})"),
            _ => String::new(),
        }
    }

    /// What the function wrote to stdout so far is only readable after it stops.
    pub fn stop(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        let _ = child.kill();
        match child.wait_with_output() {
            Ok(output) => format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(_) => String::new(),
        }
    }
}

impl Drop for LambdaHarness {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The directory of release binaries: `$CARGO_TARGET_DIR/release`, found from this test
/// binary's own location (`<target>/<profile>/deps/<test>`).
pub fn release_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors().nth(3).expect("target dir").join("release")
}
