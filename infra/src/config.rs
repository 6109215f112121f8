//! Configuration. [`Config::from_env`] is the only place in Giftify that reads environment
//! variables; command-line flags override its fields, never the environment directly.

use anyhow::{Context, Result, bail};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Every environment variable Giftify reads, with its meaning; printed by `giftify --help`
/// and checked against the README and the Terraform by tests.
pub const ENV_VARS: &[(&str, &str)] = &[
    (
        "GIFTIFY_ADDR",
        "address the API listens on (default 127.0.0.1:3000)",
    ),
    (
        "GIFTIFY_DATA_DIR",
        "directory of the SQLite database and generated keys (default ./giftify-data)",
    ),
    (
        "GIFTIFY_ADMIN_EMAIL",
        "email of the admin account ensured at start",
    ),
    ("GIFTIFY_ADMIN_PASSWORD", "password of that admin account"),
    (
        "GIFTIFY_WEBHOOK_URLS",
        "comma-separated URLs ensured at start as webhook endpoints of every event type (more are managed at /webhooks)",
    ),
    (
        "GIFTIFY_WEBHOOK_SECRET",
        "signing secret of those endpoints (a change rotates them to it, the old one overlapping for 24 h)",
    ),
    (
        "GIFTIFY_WEBHOOK_DISABLE_AFTER_SECS",
        "seconds a webhook endpoint may fail every delivery before it is disabled (default 259200 = 3 days)",
    ),
    (
        "GIFTIFY_JWT_SECRET",
        "HS256 key of access tokens (default: generated once in the data dir)",
    ),
    (
        "GIFTIFY_CARD_KEY",
        "base64 32-byte master key of gift card encryption (default: generated once in the data dir)",
    ),
    (
        "GIFTIFY_QUEUE_MAX_RECEIVES",
        "deliveries before a message moves to the dead-letter queue (default 5)",
    ),
    (
        "GIFTIFY_QUEUE_VISIBILITY_SECS",
        "seconds a received message stays invisible (default 30)",
    ),
    (
        "GIFTIFY_WORKER_IN_FLIGHT",
        "order messages the embedded worker handles at once (default 128)",
    ),
    (
        "GIFTIFY_STALE_PENDING_SECS",
        "age after which the reconciler re-enqueues a PENDING order (default 120)",
    ),
    (
        "GIFTIFY_STUCK_ORDER_REFUND_SECS",
        "age after which the reconciler refunds an order that is still not final, dead-lettered or not (default 900)",
    ),
    (
        "GIFTIFY_WALLET_MAX_BALANCE",
        "largest wallet balance in paise (default 20000000 = ₹2,00,000)",
    ),
    (
        "GIFTIFY_SANDBOX",
        "`true` on a test deployment: orders may ask for a rehearsed outcome in metadata.sandbox (default false)",
    ),
    (
        "GIFTIFY_SELF_TOPUP",
        "`false` for a shop that takes real money: `POST /wallet/topup` answers 403 SELF_TOPUP_DISABLED and wallets are credited by admins' adjustments and redemptions (default true)",
    ),
    (
        "GIFTIFY_USER_RATE_LIMITS",
        "budgets per customer: `off`, or `action=REQUESTS/SECONDS` items (register per client address; topup, order, reveal, redeem per account) that change the defaults register=20/3600,topup=10/60,order=30/60,reveal=30/60,redeem=10/60",
    ),
    (
        "GIFTIFY_ORDER_WAIT_MAX_SECS",
        "longest a `GET /orders/{id}` with `Prefer: wait=N` is held waiting for the order to become final; 0 turns waiting off (default 20)",
    ),
    (
        "GIFTIFY_CATALOGUE_TTL_MS",
        "milliseconds an API process serves the catalogue from memory on DynamoDB, which keeps no catalogue version; 0 reads it every time (default 1000; the embedded cache follows the database's version and is always exact)",
    ),
    (
        "GIFTIFY_API_KEY_RATE_LIMIT",
        "requests each API key may make per 10-second window, across every API process (default 100)",
    ),
    (
        "GIFTIFY_BACKEND",
        "`embedded` (default: SQLite in the data dir) or `aws` (DynamoDB, SQS, SNS)",
    ),
    (
        "GIFTIFY_STAGE",
        "AWS resource name infix: tables are giftify-<stage>-<table> (default none)",
    ),
    (
        "GIFTIFY_QUEUE_URL",
        "SQS FIFO orders queue URL (aws; default looked up by name)",
    ),
    (
        "GIFTIFY_DLQ_URL",
        "SQS FIFO dead-letter queue URL (aws; default looked up by name)",
    ),
    (
        "GIFTIFY_TOPIC_ARN",
        "SNS topic ARN of order events (aws; default looked up by name)",
    ),
    (
        "GIFTIFY_WEBHOOK_QUEUE_URL",
        "SQS queue the webhook dispatcher reads: events from the topic, and delivery wake-ups (aws; default looked up by name)",
    ),
    (
        "GIFTIFY_JWT_SECRET_ARN",
        "Secrets Manager secret holding the JWT key (aws; read at cold start)",
    ),
    (
        "GIFTIFY_CARD_KEY_SECRET_ARN",
        "Secrets Manager secret holding the card master key (aws; read at cold start)",
    ),
    (
        "GIFTIFY_HTTP_HEADER_TIMEOUT_SECS",
        "seconds a client has to send a request's headers, and an idle keep-alive connection is kept (default 10)",
    ),
    (
        "GIFTIFY_HTTP_BODY_TIMEOUT_SECS",
        "seconds a request body may stall between two reads (default 10)",
    ),
    (
        "GIFTIFY_HTTP_MAX_CONNECTIONS",
        "most client connections served at once; more wait in the listen backlog (default 1024)",
    ),
    (
        "GIFTIFY_SHUTDOWN_DEADLINE_SECS",
        "seconds a SIGTERM waits for in-flight requests and messages before closing the rest (default 20)",
    ),
    ("GIFTIFY_LOG_FORMAT", "`pretty` (default) or `json`"),
    ("RUST_LOG", "log filter (default info)"),
];

#[derive(Clone, Debug)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub admin: Option<AdminAccount>,
    pub webhook_urls: Vec<String>,
    pub webhook_secret: Option<SecretString>,
    pub jwt_secret: Option<SecretString>,
    pub card_key: Option<SecretString>,
    pub queue: QueueSettings,
    /// Order messages the embedded worker of this process holds at once. Each order waits on
    /// several commits in turn, so the worker keeps up only with enough orders in flight to
    /// fill the group commits (see `docs/benchmarks.md`).
    pub worker_in_flight: usize,
    /// Largest wallet balance, in paise.
    pub wallet_max_balance: i64,
    /// A test deployment, where orders may ask for a rehearsed outcome.
    pub sandbox: bool,
    /// Whether customers may top up their own wallets.
    pub self_top_up: bool,
    /// Requests per API key per 10-second window.
    pub api_key_rate_limit: u32,
    /// Each customer's budget for registering, topping up, ordering, revealing and redeeming.
    pub user_limits: giftify_shared::rate_limits::ActionLimits,
    /// The cap on `Prefer: wait` of an order's status read.
    pub order_wait_max: Duration,
    /// How long the catalogue is served from memory where no version tells when it changed.
    pub catalogue_ttl: Duration,
    pub webhook_disable_after: Duration,
    /// Age after which the reconciler re-enqueues a PENDING order.
    pub stale_pending_after: Duration,
    /// Age after which the reconciler gives up an order that is still not final, with a full
    /// refund.
    pub stuck_order_refund_after: Duration,
    pub http: HttpLimits,
    /// How long a clean stop waits for in-flight requests and messages before it closes what
    /// is left (their messages are delivered again) and exits.
    pub shutdown_deadline: Duration,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub backend: BackendKind,
    pub aws: AwsSettings,
}

/// What the HTTP server allows a client, so that slow or idle clients cannot hold its
/// connections (slowloris) or descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time to send a request's headers; the clock starts when the server waits for a request,
    /// so it also closes a keep-alive connection left idle that long.
    pub header_timeout: Duration,
    /// Longest stall between two reads of a request body.
    pub body_timeout: Duration,
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Which backend serves the ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Embedded,
    Aws,
}

/// Giftify's own AWS settings; the endpoint, region and credentials come from the standard
/// AWS configuration chain (`AWS_ENDPOINT_URL`, `AWS_REGION`, …).
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    pub stage: Option<String>,
    pub queue_url: Option<String>,
    pub dead_letter_url: Option<String>,
    pub topic_arn: Option<String>,
    pub webhook_queue_url: Option<String>,
    pub jwt_secret_arn: Option<String>,
    pub card_key_secret_arn: Option<String>,
}

#[derive(Clone, Debug)]
pub struct AdminAccount {
    pub email: String,
    pub password: SecretString,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The embedded queue's SQS-like settings.
#[derive(Clone, Copy, Debug)]
pub struct QueueSettings {
    pub max_receives: u32,
    pub visibility_timeout: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            max_receives: 5,
            visibility_timeout: Duration::from_secs(30),
        }
    }
}
impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from("./giftify-data"),
            admin: None,
            webhook_urls: Vec::new(),
            webhook_secret: None,
            jwt_secret: None,
            card_key: None,
            queue: QueueSettings::default(),
            worker_in_flight: 128,
            wallet_max_balance: 20_000_000,
            sandbox: false,
            self_top_up: true,
            api_key_rate_limit: 100,
            user_limits: giftify_shared::rate_limits::ActionLimits::default(),
            order_wait_max: giftify_shared::order_watch::OrderWait::default().max,
            catalogue_ttl: Duration::from_secs(1),
            webhook_disable_after: Duration::from_secs(3 * 86_400),
            stale_pending_after: Duration::from_secs(120),
            stuck_order_refund_after: Duration::from_secs(900),
            http: HttpLimits::default(),
            shutdown_deadline: Duration::from_secs(20),
            log_format: LogFormat::Pretty,
            log_filter: "info".into(),
            backend: BackendKind::Embedded,
            aws: AwsSettings::default(),
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any variable source (tests pass a map).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let mut config = Config::default();
        if let Some(addr) = var("GIFTIFY_ADDR") {
            config.addr = addr
                .parse()
                .with_context(|| format!("GIFTIFY_ADDR `{addr}` is not host:port"))?;
        }
        if let Some(dir) = var("GIFTIFY_DATA_DIR") {
            config.data_dir = PathBuf::from(dir);
        }
        config.admin = match (var("GIFTIFY_ADMIN_EMAIL"), var("GIFTIFY_ADMIN_PASSWORD")) {
            (Some(email), Some(password)) => Some(AdminAccount {
                email,
                password: SecretString::from(password),
            }),
            (None, None) => None,
            (Some(_), None) => {
                bail!("GIFTIFY_ADMIN_EMAIL is set but GIFTIFY_ADMIN_PASSWORD is not")
            }
            (None, Some(_)) => {
                bail!("GIFTIFY_ADMIN_PASSWORD is set but GIFTIFY_ADMIN_EMAIL is not")
            }
        };
        if let Some(urls) = var("GIFTIFY_WEBHOOK_URLS") {
            config.webhook_urls = parse_urls(&urls)?;
        }
        config.webhook_secret = var("GIFTIFY_WEBHOOK_SECRET").map(SecretString::from);
        config.jwt_secret = var("GIFTIFY_JWT_SECRET").map(SecretString::from);
        config.card_key = var("GIFTIFY_CARD_KEY").map(SecretString::from);
        if let Some(n) = var("GIFTIFY_QUEUE_MAX_RECEIVES") {
            config.queue.max_receives = parse_in("GIFTIFY_QUEUE_MAX_RECEIVES", &n, 1, 1000)? as u32;
        }
        if let Some(n) = var("GIFTIFY_QUEUE_VISIBILITY_SECS") {
            config.queue.visibility_timeout =
                Duration::from_secs(
                    parse_in("GIFTIFY_QUEUE_VISIBILITY_SECS", &n, 1, 43_200)? as u64
                );
        }
        if let Some(n) = var("GIFTIFY_WORKER_IN_FLIGHT") {
            config.worker_in_flight = parse_in("GIFTIFY_WORKER_IN_FLIGHT", &n, 1, 1024)? as usize;
        }
        if let Some(n) = var("GIFTIFY_WALLET_MAX_BALANCE") {
            config.wallet_max_balance =
                parse_in("GIFTIFY_WALLET_MAX_BALANCE", &n, 1, 1_000_000_000_000)?;
        }
        if let Some(flag) = var("GIFTIFY_SANDBOX") {
            config.sandbox = parse_flag("GIFTIFY_SANDBOX", &flag)?;
        }
        if let Some(flag) = var("GIFTIFY_SELF_TOPUP") {
            config.self_top_up = parse_flag("GIFTIFY_SELF_TOPUP", &flag)?;
        }
        if let Some(n) = var("GIFTIFY_WEBHOOK_DISABLE_AFTER_SECS") {
            config.webhook_disable_after = Duration::from_secs(parse_in(
                "GIFTIFY_WEBHOOK_DISABLE_AFTER_SECS",
                &n,
                1,
                30 * 86_400,
            )? as u64);
        }
        if let Some(spec) = var("GIFTIFY_USER_RATE_LIMITS") {
            config.user_limits = giftify_shared::rate_limits::ActionLimits::parse(&spec)
                .map_err(|error| anyhow::anyhow!("GIFTIFY_USER_RATE_LIMITS: {error}"))?;
        }
        if let Some(n) = var("GIFTIFY_ORDER_WAIT_MAX_SECS") {
            config.order_wait_max =
                Duration::from_secs(parse_in("GIFTIFY_ORDER_WAIT_MAX_SECS", &n, 0, 60)? as u64);
        }
        if let Some(n) = var("GIFTIFY_CATALOGUE_TTL_MS") {
            config.catalogue_ttl =
                Duration::from_millis(parse_in("GIFTIFY_CATALOGUE_TTL_MS", &n, 0, 60_000)? as u64);
        }
        if let Some(n) = var("GIFTIFY_API_KEY_RATE_LIMIT") {
            config.api_key_rate_limit =
                parse_in("GIFTIFY_API_KEY_RATE_LIMIT", &n, 1, 100_000)? as u32;
        }
        if let Some(n) = var("GIFTIFY_STALE_PENDING_SECS") {
            config.stale_pending_after =
                Duration::from_secs(parse_in("GIFTIFY_STALE_PENDING_SECS", &n, 0, 86_400)? as u64);
        }
        if let Some(n) = var("GIFTIFY_STUCK_ORDER_REFUND_SECS") {
            config.stuck_order_refund_after =
                Duration::from_secs(
                    parse_in("GIFTIFY_STUCK_ORDER_REFUND_SECS", &n, 0, 30 * 86_400)? as u64,
                );
        }
        if let Some(n) = var("GIFTIFY_HTTP_HEADER_TIMEOUT_SECS") {
            config.http.header_timeout =
                Duration::from_secs(
                    parse_in("GIFTIFY_HTTP_HEADER_TIMEOUT_SECS", &n, 1, 600)? as u64
                );
        }
        if let Some(n) = var("GIFTIFY_HTTP_BODY_TIMEOUT_SECS") {
            config.http.body_timeout =
                Duration::from_secs(parse_in("GIFTIFY_HTTP_BODY_TIMEOUT_SECS", &n, 1, 600)? as u64);
        }
        if let Some(n) = var("GIFTIFY_HTTP_MAX_CONNECTIONS") {
            config.http.max_connections =
                parse_in("GIFTIFY_HTTP_MAX_CONNECTIONS", &n, 1, 100_000)? as usize;
        }
        if let Some(n) = var("GIFTIFY_SHUTDOWN_DEADLINE_SECS") {
            config.shutdown_deadline =
                Duration::from_secs(
                    parse_in("GIFTIFY_SHUTDOWN_DEADLINE_SECS", &n, 1, 3_600)? as u64
                );
        }
        if let Some(format) = var("GIFTIFY_LOG_FORMAT") {
            config.log_format = match format.as_str() {
                "pretty" => LogFormat::Pretty,
                "json" => LogFormat::Json,
                other => bail!("GIFTIFY_LOG_FORMAT must be `pretty` or `json`, not `{other}`"),
            };
        }
        if let Some(backend) = var("GIFTIFY_BACKEND") {
            config.backend = match backend.as_str() {
                "embedded" => BackendKind::Embedded,
                "aws" => BackendKind::Aws,
                other => bail!("GIFTIFY_BACKEND must be `embedded` or `aws`, not `{other}`"),
            };
        }
        if let Some(stage) = var("GIFTIFY_STAGE") {
            if !stage.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || stage.len() > 32 {
                bail!("GIFTIFY_STAGE `{stage}` must be up to 32 letters, digits or dashes");
            }
            config.aws.stage = Some(stage);
        }
        config.aws.queue_url = var("GIFTIFY_QUEUE_URL");
        config.aws.dead_letter_url = var("GIFTIFY_DLQ_URL");
        config.aws.topic_arn = var("GIFTIFY_TOPIC_ARN");
        config.aws.webhook_queue_url = var("GIFTIFY_WEBHOOK_QUEUE_URL");
        config.aws.jwt_secret_arn = var("GIFTIFY_JWT_SECRET_ARN");
        config.aws.card_key_secret_arn = var("GIFTIFY_CARD_KEY_SECRET_ARN");
        if let Some(filter) = var("RUST_LOG") {
            config.log_filter = filter;
        }
        config.check()?;
        Ok(config)
    }

    /// The business rules these settings configure.
    pub fn rules(&self) -> giftify_shared::Rules {
        giftify_shared::Rules {
            wallet: giftify_shared::wallet::WalletLimits {
                max_balance: giftify_shared::Paise::new(self.wallet_max_balance),
                ..Default::default()
            },
            stale_pending_after: chrono::Duration::from_std(self.stale_pending_after)
                .unwrap_or(chrono::Duration::minutes(2)),
            stuck_order_refund_after: chrono::Duration::from_std(self.stuck_order_refund_after)
                .unwrap_or(chrono::Duration::minutes(15)),
            sandbox: self.sandbox,
            self_top_up: self.self_top_up,
            webhook_disable_after: chrono::Duration::from_std(self.webhook_disable_after)
                .unwrap_or(chrono::Duration::days(3)),
            user_limits: self.user_limits,
            catalogue_ttl: chrono::Duration::from_std(self.catalogue_ttl)
                .unwrap_or(chrono::Duration::seconds(1)),
            order_wait: giftify_shared::order_watch::OrderWait {
                max: self.order_wait_max,
                ..Default::default()
            },
            key_rate_limit: giftify_shared::api_keys::KeyRateLimit {
                requests: self.api_key_rate_limit,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Cross-field rules, checked again after command-line overrides.
    pub fn check(&self) -> Result<()> {
        if !self.webhook_urls.is_empty() && self.webhook_secret.is_none() {
            bail!(
                "GIFTIFY_WEBHOOK_URLS is set but GIFTIFY_WEBHOOK_SECRET is not: webhooks must be signed"
            );
        }
        Ok(())
    }
}

/// Parses a `true`/`false` setting.
fn parse_flag(name: &str, raw: &str) -> Result<bool> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        other => bail!("{name} must be `true` or `false`, not `{other}`"),
    }
}

/// Parses a comma-separated list of http(s) URLs.
pub fn parse_urls(raw: &str) -> Result<Vec<String>> {
    raw.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|url| {
            giftify_shared::webhooks::check_url(url)
                .map_err(|e| anyhow::anyhow!("GIFTIFY_WEBHOOK_URLS entry `{url}`: {e}"))
        })
        .collect()
}

fn parse_in(name: &str, raw: &str, min: i64, max: i64) -> Result<i64> {
    let n: i64 = raw
        .trim()
        .parse()
        .with_context(|| format!("{name} `{raw}` is not a whole number"))?;
    if !(min..=max).contains(&n) {
        bail!("{name} must be between {min} and {max}, not {n}");
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn every_variable_has_a_row_in_the_readme_configuration_table() {
        let readme = include_str!("../../README.md");
        let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with('|')).collect();
        let missing: Vec<&str> = ENV_VARS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !rows.iter().any(|row| row.contains(&format!("`{name}`"))))
            .collect();
        assert!(missing.is_empty(), "not in a README table: {missing:?}");
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.data_dir, PathBuf::from("./giftify-data"));
        assert_eq!(c.queue.max_receives, 5);
        assert_eq!(c.worker_in_flight, 128);
        assert_eq!(c.http, HttpLimits::default());
        assert_eq!(c.shutdown_deadline, Duration::from_secs(20));
        assert!(c.admin.is_none() && c.webhook_urls.is_empty());
    }

    #[test]
    fn errors_name_the_variable() {
        let err = config(&[("GIFTIFY_ADDR", "nope")]).unwrap_err().to_string();
        assert!(err.contains("GIFTIFY_ADDR"), "{err}");
        let err = config(&[("GIFTIFY_ADMIN_EMAIL", "a@b.co")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("GIFTIFY_ADMIN_PASSWORD"), "{err}");
        let err = config(&[("GIFTIFY_WEBHOOK_URLS", "http://127.0.0.1:9/hook")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("GIFTIFY_WEBHOOK_SECRET"), "{err}");
        let err = config(&[("GIFTIFY_HTTP_MAX_CONNECTIONS", "0")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("GIFTIFY_HTTP_MAX_CONNECTIONS"), "{err}");
        let err = config(&[("GIFTIFY_QUEUE_MAX_RECEIVES", "0")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("GIFTIFY_QUEUE_MAX_RECEIVES"), "{err}");
        let err = config(&[("GIFTIFY_WORKER_IN_FLIGHT", "0")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("GIFTIFY_WORKER_IN_FLIGHT"), "{err}");
        let c = config(&[("GIFTIFY_WORKER_IN_FLIGHT", "64")]).unwrap();
        assert_eq!(c.worker_in_flight, 64);
    }

    #[test]
    fn the_aws_backend_is_chosen_with_its_stage() {
        let c = config(&[("GIFTIFY_BACKEND", "aws"), ("GIFTIFY_STAGE", "dev")]).unwrap();
        assert_eq!(c.backend, BackendKind::Aws);
        assert_eq!(c.aws.stage.as_deref(), Some("dev"));
        assert!(
            config(&[("GIFTIFY_BACKEND", "mongo")])
                .unwrap_err()
                .to_string()
                .contains("GIFTIFY_BACKEND")
        );
        assert!(
            config(&[("GIFTIFY_STAGE", "a b")])
                .unwrap_err()
                .to_string()
                .contains("GIFTIFY_STAGE")
        );
    }

    #[test]
    fn webhook_urls_are_split_and_checked() {
        let c = config(&[
            (
                "GIFTIFY_WEBHOOK_URLS",
                "http://127.0.0.1:9/a, https://example.com/b",
            ),
            ("GIFTIFY_WEBHOOK_SECRET", "s3cret"),
        ])
        .unwrap();
        assert_eq!(
            c.webhook_urls,
            vec!["http://127.0.0.1:9/a", "https://example.com/b"]
        );
        assert!(parse_urls("ftp://x").is_err());
    }
}
