//! Lambda package size and cold start of the release binaries.
//!
//! Size: the zip that `scripts/lambda-zips` (cargo-lambda) builds, when it is there, and in any
//! case the release binary itself and that binary zipped alone as `bootstrap` with `zip -9`, as
//! a `provided.al2023` package is.
//!
//! Cold start: each run starts a fresh function process under the Runtime API emulator of
//! [`crate::lambda`], configured as Terraform configures it (queue URLs and topic ARN given, so
//! init looks nothing up), against a stage on the moto server. Two times per run:
//! - **init**: process start → first `GET /runtime/invocation/next`, which is what Lambda
//!   reports as "Init Duration" (config, telemetry, SDK clients, keys, router);
//! - **first answer**: process start → the response to a first invocation (init plus one
//!   request: `GET /health` for the API, an empty batch for fulfillment, a reconcile pass).
//!
//! Keys come from the environment by default; `secrets_manager` runs read them from Secrets
//! Manager (on moto) at init, as the deployed functions do.

use super::stats::{Samples, round3};
use crate::lambda::LambdaHarness;
use crate::moto::{TEST_CARD_KEY, TEST_JWT_SECRET, moto, unique_stage};
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the cold-start run does.
#[derive(Clone, Debug)]
pub struct ColdStartOptions {
    /// Cold starts per function.
    pub runs: usize,
    /// Read the keys from Secrets Manager at init instead of the environment.
    pub secrets_manager: bool,
    /// Where the measured binaries are: [`release_dir`] unless given, or the deployed build
    /// (`$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release-lambda`, `scripts/lambda-zips`).
    pub binaries: Option<PathBuf>,
}

/// The three Lambda binaries and the first event each gets.
fn functions() -> [(&'static str, Value); 3] {
    [
        ("api-lambda", api_health_event()),
        ("fulfillment", json!({"Records": []})),
        (
            "reconciler",
            json!({"version": "0", "id": "cold-start", "detail-type": "Scheduled Event",
                "source": "aws.events", "account": "000000000000", "time": "2026-11-25T08:00:00Z",
                "region": "us-east-1", "resources": [], "detail": {}}),
        ),
    ]
}

fn api_health_event() -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/health", "rawQueryString": "",
        "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "000000000000", "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
            "http": {"method": "GET", "path": "/health", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "bench"},
            "requestId": "cold-start", "routeKey": "$default", "stage": "$default",
            "time": "25/Nov/2026:08:00:00 +0000", "timeEpoch": 1_795_593_600_000_u64
        },
        "isBase64Encoded": false
    })
}

/// `$CARGO_TARGET_DIR/release` (or `target/release`): where `cargo build --release` puts the
/// binaries, this one included.
pub fn release_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/release"))
}

/// Size in bytes of `binary` zipped alone as `bootstrap` at the highest compression.
fn zipped_size(binary: &Path) -> Result<u64> {
    let dir = tempfile::tempdir()?;
    let bootstrap = dir.path().join("bootstrap");
    std::fs::copy(binary, &bootstrap)?;
    let zip = dir.path().join("bootstrap.zip");
    let status = std::process::Command::new("zip")
        .arg("-q")
        .arg("-9")
        .arg("-j")
        .arg(&zip)
        .arg(&bootstrap)
        .status()
        .context("run `zip` (apt-get install zip)")?;
    anyhow::ensure!(status.success(), "zip failed");
    Ok(std::fs::metadata(&zip)?.len())
}

fn mib(bytes: u64) -> f64 {
    round3(bytes as f64 / (1024.0 * 1024.0))
}

/// Runs the size and cold-start measurements and returns the JSON report.
pub async fn run(options: &ColdStartOptions) -> Result<Value> {
    let target = release_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let release = options.binaries.clone().unwrap_or_else(release_dir);
    let moto = tokio::task::spawn_blocking(moto).await?;
    let sdk = moto.sdk_config().await;
    let stage = unique_stage();
    let created = giftify_infra::aws::bootstrap::bootstrap(&sdk, Some(&stage), 5, 30).await?;
    let mut env: Vec<(&str, String)> = vec![
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("GIFTIFY_BACKEND", "aws".into()),
        ("GIFTIFY_STAGE", stage.clone()),
        ("GIFTIFY_QUEUE_URL", created.queue_url.clone()),
        ("GIFTIFY_DLQ_URL", created.dead_letter_url.clone()),
        ("GIFTIFY_TOPIC_ARN", created.topic_arn.clone()),
        ("RUST_LOG", "warn".into()),
    ];
    if options.secrets_manager {
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        for (name, value, variable) in [
            ("jwt", TEST_JWT_SECRET, "GIFTIFY_JWT_SECRET_ARN"),
            ("card", TEST_CARD_KEY, "GIFTIFY_CARD_KEY_SECRET_ARN"),
        ] {
            let arn = secrets
                .create_secret()
                .name(format!("giftify-{stage}-{name}"))
                .secret_string(value)
                .send()
                .await?
                .arn
                .context("no secret ARN")?;
            env.push((variable, arn));
        }
    } else {
        env.push(("GIFTIFY_JWT_SECRET", TEST_JWT_SECRET.into()));
        env.push(("GIFTIFY_CARD_KEY", TEST_CARD_KEY.into()));
    }

    let mut report = serde_json::Map::new();
    for (name, event) in functions() {
        let binary = release.join(name);
        anyhow::ensure!(
            binary.exists(),
            "{} is missing: cargo build --release --workspace --bins",
            binary.display()
        );
        // As Terraform deploys them: only the API function is given the access-token key.
        let env: Vec<(&str, String)> = env
            .iter()
            .filter(|(variable, _)| {
                name == "api-lambda" || !variable.starts_with("GIFTIFY_JWT_SECRET")
            })
            .cloned()
            .collect();
        let cargo_lambda_zip = target.join("lambda").join(name).join("bootstrap.zip");
        let (mut init, mut first) = (Samples::default(), Samples::default());
        for _ in 0..options.runs {
            let mut harness = LambdaHarness::start().await;
            harness.spawn_function(&binary, &env);
            let answer = harness.invoke(event.clone()).await;
            let answered = Instant::now();
            let spawned = harness.spawned_at().context("spawn time")?;
            if let Err(error) = answer {
                anyhow::bail!(
                    "{name} failed its first invocation: {error}\n{}",
                    harness.stop()
                );
            }
            if let Some(polled) = harness.first_poll_at() {
                init.record(polled.saturating_duration_since(spawned));
            }
            first.record(answered.saturating_duration_since(spawned));
            harness.stop();
            // Let the previous process's sockets close before the next cold start.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let binary_size = std::fs::metadata(&binary)?.len();
        report.insert(
            name.to_string(),
            json!({
                "binary_mib": mib(binary_size),
                "zip_mib_of_release_binary": zipped_size(&binary).ok().map(mib),
                "cargo_lambda_zip_mib": std::fs::metadata(&cargo_lambda_zip).ok().map(|m| mib(m.len())),
                "init_ms": init.summary(),
                "first_answer_ms": first.summary(),
            }),
        );
    }
    Ok(json!({
        "runs": options.runs,
        "keys_from": if options.secrets_manager { "secrets_manager" } else { "environment" },
        "functions": report,
    }))
}

/// The short table printed after a cold-start run.
pub fn table(report: &Value) -> String {
    let mut out = format!(
        "cold start ({} runs each, keys from {})\n  {:<12} {:>8} {:>9} {:>9} {:>10} {:>10} {:>12}\n",
        report["runs"],
        report["keys_from"],
        "function",
        "bin MiB",
        "zip MiB",
        "c-l zip",
        "init p50",
        "init p99",
        "1st answer p50"
    );
    if let Some(functions) = report["functions"].as_object() {
        for (name, f) in functions {
            out.push_str(&format!(
                "  {name:<12} {:>8} {:>9} {:>9} {:>10} {:>10} {:>12}\n",
                f["binary_mib"].to_string(),
                f["zip_mib_of_release_binary"].to_string(),
                f["cargo_lambda_zip_mib"].to_string(),
                f["init_ms"]["p50_ms"].to_string(),
                f["init_ms"]["p99_ms"].to_string(),
                f["first_answer_ms"]["p50_ms"].to_string(),
            ));
        }
    }
    out
}
