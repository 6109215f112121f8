//! Real `giftify` processes for the process-level tests (crash, soak): the release binary
//! started on a temp data dir and a free loopback port, a guard that SIGKILLs it when dropped
//! (also when a test panics), and a small HTTP client that answers transport failures as
//! values, because a client of a process that is being killed must see them.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin account every process-level test ensures.
pub const ADMIN_EMAIL: &str = "admin@giftify.test";
/// Its password (only ever in the child's environment, never on its command line).
pub const ADMIN_PASSWORD: &str = "admin-password-123";

/// The release `giftify` binary next to this test binary's target dir. Panics with the fix
/// when it is missing: a process-level test without its binary must fail, not skip.
pub fn giftify_binary() -> PathBuf {
    let binary = crate::lambda::release_dir().join("giftify");
    assert!(
        binary.is_file(),
        "{} is missing: build it first with `cargo build --release -p giftify-api --bin giftify` \
         (./scripts/test does)",
        binary.display()
    );
    binary
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// How to start `giftify` processes on one data dir: the address, and the environment each
/// gets (nothing is inherited, so a developer's `GIFTIFY_*` variables cannot leak in).
#[derive(Clone, Debug)]
pub struct Deployment {
    pub binary: PathBuf,
    pub data_dir: PathBuf,
    /// Where process logs go; `None` for the data dir (or beside it, until it exists).
    pub log_dir: Option<PathBuf>,
    pub port: u16,
    pub env: Vec<(String, String)>,
}

impl Deployment {
    /// A deployment on `data_dir` and a free port, with the admin account configured and
    /// logs at `info`; `extra` adds or overrides variables.
    pub fn new(data_dir: &Path, extra: &[(&str, &str)]) -> Deployment {
        let port = free_port();
        let mut env: Vec<(String, String)> = [
            ("GIFTIFY_DATA_DIR", data_dir.display().to_string()),
            ("GIFTIFY_ADDR", format!("127.0.0.1:{port}")),
            ("GIFTIFY_ADMIN_EMAIL", ADMIN_EMAIL.to_string()),
            ("GIFTIFY_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
            ("GIFTIFY_LOG_FORMAT", "json".to_string()),
            ("RUST_LOG", "info".to_string()),
            // Load, crash and soak runs are many customers behind one address, each ordering
            // far faster than a person: the budgets have their own tests.
            ("GIFTIFY_USER_RATE_LIMITS", "off".to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
        for (name, value) in extra {
            env.retain(|(existing, _)| existing != name);
            env.push((name.to_string(), value.to_string()));
        }
        Deployment {
            binary: giftify_binary(),
            data_dir: data_dir.to_path_buf(),
            log_dir: None,
            port,
            env,
        }
    }

    /// This deployment with `name` set to `value` (or unset, with `None`).
    pub fn with(&self, name: &str, value: Option<&str>) -> Deployment {
        let mut changed = self.clone();
        changed.env.retain(|(existing, _)| existing != name);
        if let Some(value) = value {
            changed.env.push((name.to_string(), value.to_string()));
        }
        changed
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts `giftify <args>`, appending its output to `<data dir>/<name>.log` (beside the
    /// data dir while `serve` has yet to create it).
    pub fn spawn(&self, name: &'static str, args: &[&str]) -> GiftifyProcess {
        let log_dir = match (&self.log_dir, self.data_dir.parent()) {
            (Some(dir), _) => dir.as_path(),
            (None, Some(parent)) if !self.data_dir.exists() => parent,
            _ => &self.data_dir,
        };
        let log_path = log_dir.join(format!("{name}.log"));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the process log");
        let child = Command::new(&self.binary)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        GiftifyProcess {
            name,
            child: Some(child),
            log_path,
        }
    }

    /// Runs `giftify <args>` to completion (an operator command such as `dlq list`) and
    /// returns its stdout; panics with its output when it fails.
    pub fn run(&self, args: &[&str]) -> String {
        let output = Command::new(&self.binary)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run giftify {args:?}: {e}"));
        assert!(
            output.status.success(),
            "giftify {args:?} failed with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// How an operator command ended: its exit status and what it printed.
#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Deployment {
    /// Runs `giftify <args>` to completion, failing or not; panics when it is still running
    /// after a minute (an operator command that does not end is a failure too).
    pub fn try_run(&self, args: &[&str]) -> Finished {
        use std::io::Read;
        let mut child = Command::new(&self.binary)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run giftify {args:?}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for giftify") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("giftify {args:?} was still running after a minute");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (mut stdout, mut stderr) = (String::new(), String::new());
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        Finished {
            success: status.success(),
            stdout,
            stderr,
        }
    }
}

/// A running `giftify` process. Dropping it SIGKILLs and reaps it, so no process outlives
/// its test, whether the test passes, fails or panics.
#[derive(Debug)]
pub struct GiftifyProcess {
    name: &'static str,
    child: Option<Child>,
    log_path: PathBuf,
}

impl GiftifyProcess {
    /// SIGKILL (`Child::kill` sends SIGKILL on Unix): no shutdown hook, no flush, no drain.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Panics with the log tail when the process has exited on its own.
    pub fn assert_running(&mut self) {
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!(
                "giftify {} exited unexpectedly with {status}; log tail:\n{}",
                self.name,
                self.log_tail(40)
            );
        }
    }

    /// Waits up to `within` for the process to exit on its own; `None` while it still runs.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            let status = self.child.as_mut()?.try_wait().ok().flatten();
            if status.is_some() || Instant::now() >= deadline {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM (a clean stop request).
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
    }

    /// The last `lines` lines of this process's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Everything this process (and earlier processes of the same name) logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for GiftifyProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP answer: status, headers and the JSON body (`Null` when empty, a string when not
/// JSON).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

/// A JSON client of one `giftify` API. Transport failures (refused, reset, timed out) come
/// back as `Err` with the reason, for the caller to retry or count.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    /// A client of `base` with a per-request timeout.
    pub fn new(base: &str, timeout: Duration) -> Http {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            // A killed server leaves dead pooled connections; short idle keeps them few.
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .expect("an HTTP client");
        Http {
            client,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// Sends one request.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, String> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(describe)?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<HttpResponse, String> {
        self.send(Method::GET, path, token, None, &[]).await
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<HttpResponse, String> {
        self.send(Method::POST, path, token, Some(body), &[]).await
    }

    /// Polls `/health` until it answers 200, or panics after `within` with the process log.
    pub async fn wait_until_healthy(&self, process: &mut GiftifyProcess, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            process.assert_running();
            if matches!(self.get("/health", None).await, Ok(r) if r.status == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "giftify did not become healthy within {within:?}; log tail:\n{}",
            process.log_tail(40)
        );
    }
}

/// The kind of a transport failure, without the URL noise.
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    };
    format!("{kind}: {error}")
}
