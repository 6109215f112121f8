//! Starts one moto server per test process on a free loopback port, installing `moto[server]`
//! into a virtualenv under the build directory when it is missing. If moto cannot be
//! installed or started the AWS tests fail with the reason — they never pass by skipping.
//!
//! The server runs under a small Python wrapper that exits when the test process does, so no
//! emulator outlives its tests even when a test binary is killed.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    pub endpoint: String,
    _child: Child,
}

static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();

/// The process-wide moto server, started on first use. Panics with the reason when moto
/// cannot run: an AWS test without its emulator must fail, not skip.
pub fn moto() -> &'static Moto {
    match MOTO.get_or_init(start) {
        Ok(moto) => moto,
        Err(reason) => panic!("cannot start the moto server for the AWS tests: {reason}"),
    }
}

/// `<target dir>/moto-venv`, next to the build output of this test binary.
fn venv_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/deps/<test binary>
    let target = exe
        .ancestors()
        .nth(3)
        .ok_or_else(|| format!("unexpected test binary location {}", exe.display()))?;
    Ok(target.join("moto-venv"))
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Creates the virtualenv once. Test binaries may race here: each builds its own and renames
/// it into place; the loser discards its copy.
fn ensure_installed(venv: &Path) -> Result<PathBuf, String> {
    let python = venv.join("bin/python");
    if venv.join("bin/moto_server").exists() {
        return Ok(python);
    }
    let staging = venv.with_extension(format!("staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&staging),
        "python3 -m venv",
    )?;
    run(
        Command::new(staging.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "moto[server]",
        ]),
        "pip install moto[server]",
    )?;
    if std::fs::rename(&staging, venv).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    if !venv.join("bin/moto_server").exists() {
        return Err(format!("moto_server missing from {}", venv.display()));
    }
    // A venv's scripts name their interpreter by absolute path; the staging path is gone, so
    // always start moto through `python -m`.
    Ok(python)
}

/// Runs moto and exits when the parent (this test process) goes away.
///
/// moto's server handles requests on threads, and its DynamoDB checks a condition and applies
/// the write as two steps with nothing in between held: two concurrent conditional writes can
/// both pass. Real DynamoDB makes each request atomic, so the wrapper serialises DynamoDB
/// requests (only those; SQS long polls stay concurrent) to give the emulator that guarantee.
const WRAPPER: &str = r#"
import os, sys, threading, time
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()

os.environ.setdefault("MOTO_PORT", sys.argv[1])
app = DomainDispatcherApplication(create_backend_app)
dynamodb = threading.Lock()
def atomic_dynamodb(environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with dynamodb:
            return list(app(environ, start_response))
    return app(environ, start_response)

run_simple("127.0.0.1", int(sys.argv[1]), atomic_dynamodb, threaded=True, request_handler=MotoRequestHandler)
"#;

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn start() -> Result<Moto, String> {
    let venv = venv_dir()?;
    let python = ensure_installed(&venv)?;
    let port = free_port()?;
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(WRAPPER)
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("moto exited at start with {status}"));
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(Moto {
                endpoint,
                _child: child,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    Err("moto did not listen within 60 s".into())
}

impl Moto {
    /// SDK configuration for this server: dummy credentials, one region, no SDK retries (the
    /// tests should see every error the adapter sees).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await
    }
}

/// A stage name no other test uses, so each test gets its own tables, queues and topic.
pub fn unique_stage() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "t{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Keys shared by a test and the Lambda binaries it runs, so both open the same cards.
pub const TEST_JWT_SECRET: &str = "moto-test-jwt-secret-0123456789abcdef";
pub const TEST_CARD_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A fresh stage on the moto server with every resource bootstrapped, and the AWS backend
/// opened on it.
pub struct AwsTestStack {
    pub runtime: giftify_infra::aws::runtime::AwsRuntime,
    pub stage: String,
    pub endpoint: String,
    /// Holds the data dir that `Config` points at (unused by the AWS backend's keys here).
    pub dir: tempfile::TempDir,
}

impl AwsTestStack {
    pub async fn start(max_receives: u32, visibility_seconds: u32) -> AwsTestStack {
        Self::start_with(max_receives, visibility_seconds, |_| {}).await
    }

    /// [`AwsTestStack::start`] with the runtime's config adjusted by `configure`.
    pub async fn start_with(
        max_receives: u32,
        visibility_seconds: u32,
        configure: impl FnOnce(&mut giftify_infra::Config),
    ) -> AwsTestStack {
        let moto = moto();
        let sdk = moto.sdk_config().await;
        let stage = unique_stage();
        giftify_infra::aws::bootstrap::bootstrap(
            &sdk,
            Some(&stage),
            max_receives,
            visibility_seconds,
        )
        .await
        .expect("bootstrap on moto");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Self::config(&stage, dir.path());
        configure(&mut config);
        // Tests dispatch webhooks in-process, as the dispatcher does.
        let runtime = giftify_infra::aws::runtime::AwsRuntime::open_sending_webhooks(config, &sdk)
            .await
            .expect("open the AWS backend");
        AwsTestStack {
            runtime,
            stage,
            endpoint: moto.endpoint.clone(),
            dir,
        }
    }

    pub fn config(stage: &str, data_dir: &Path) -> giftify_infra::Config {
        let mut config = giftify_infra::Config {
            data_dir: data_dir.to_path_buf(),
            backend: giftify_infra::config::BackendKind::Aws,
            jwt_secret: Some(TEST_JWT_SECRET.to_string().into()),
            card_key: Some(TEST_CARD_KEY.to_string().into()),
            // Tests and benchmarks order far faster than people, all from one address.
            user_limits: giftify_shared::rate_limits::ActionLimits::OFF,
            // Tests change stock and read it back at once; the cache has its own test.
            catalogue_ttl: std::time::Duration::ZERO,
            ..giftify_infra::Config::default()
        };
        config.aws.stage = Some(stage.to_string());
        config
    }

    /// The environment the API Lambda binary needs to reach this stack: the workers' plus the
    /// access-token key.
    pub fn api_lambda_env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.worker_lambda_env();
        env.push(("GIFTIFY_JWT_SECRET", TEST_JWT_SECRET.into()));
        env
    }

    /// The environment a worker Lambda binary (fulfillment, reconciler) needs to reach this
    /// stack. Like Terraform's, it holds the card key but not the access-token key.
    pub fn worker_lambda_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_MAX_ATTEMPTS", "1".into()),
            ("GIFTIFY_BACKEND", "aws".into()),
            ("GIFTIFY_STAGE", self.stage.clone()),
            ("GIFTIFY_CARD_KEY", TEST_CARD_KEY.into()),
            ("RUST_LOG", "warn".into()),
        ]
    }
}

impl AwsTestStack {
    fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.runtime_sdk())
    }

    fn runtime_sdk(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_provider())
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    /// Subscribes a new standard SQS queue to the events topic, as an email or webhook
    /// subscriber would be; returns the queue URL.
    pub async fn subscribe_queue(&self) -> String {
        let sqs = self.sqs();
        let url = sqs
            .create_queue()
            .queue_name(format!("giftify-{}-subscriber", self.stage))
            .send()
            .await
            .expect("create subscriber queue")
            .queue_url
            .expect("url");
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue arn")
            .attributes
            .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("arn");
        let topic = self.runtime.aws.events.topic_arn().to_string();
        aws_sdk_sns::Client::new(&self.runtime_sdk())
            .subscribe()
            .topic_arn(topic)
            .protocol("sqs")
            .endpoint(arn)
            .send()
            .await
            .expect("subscribe");
        url
    }

    /// The SNS notifications that reached a subscriber queue: (message, eventType attribute).
    pub async fn notifications(&self, url: &str) -> Vec<(serde_json::Value, String)> {
        let mut found = Vec::new();
        for _ in 0..5 {
            let output = self
                .sqs()
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive notifications");
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() && !found.is_empty() {
                break;
            }
            for message in messages {
                let envelope: serde_json::Value =
                    serde_json::from_str(message.body().unwrap_or("{}")).expect("SNS envelope");
                let event = serde_json::from_str(envelope["Message"].as_str().unwrap_or("null"))
                    .expect("event JSON");
                let event_type = envelope["MessageAttributes"]["eventType"]["Value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                found.push((event, event_type));
            }
        }
        found
    }
}

fn aws_credential_provider() -> aws_sdk_dynamodb::config::SharedCredentialsProvider {
    aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
        aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "moto"),
    )
}
