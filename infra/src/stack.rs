//! The stacks a `giftify` process runs on: the embedded stack (one SQLite database behind
//! every port, the card vault, and the worker side: queue consumer, webhook delivery,
//! reconciler), or the AWS backend with its SQS long-poll worker. `giftify serve` and
//! `giftify worker` open one; several processes may open the same data dir or AWS stage.

use crate::config::Config;
use crate::secrets::{KeyFiles, Secrets};
use crate::shutdown::Shutdown;
use crate::sqlite::SqliteStore;
use crate::webhooks::WebhookPublisher;
use crate::worker::WorkerSettings;
use anyhow::{Context, Result, bail};
use giftify_shared::Giftify;
use giftify_shared::ports::KeyChecks;
use giftify_shared::ports::Ports;
use giftify_shared::vault::CardVault;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often the reconciler runs inside the worker.
const RECONCILE_EVERY: Duration = Duration::from_secs(30);

pub struct EmbeddedStack {
    pub giftify: Giftify,
    pub store: Arc<SqliteStore>,
    pub webhooks: Arc<WebhookPublisher>,
    pub secrets: Secrets,
    pub config: Config,
}

impl std::fmt::Debug for EmbeddedStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStack")
            .field("data_dir", &self.config.data_dir)
            .finish_non_exhaustive()
    }
}

/// Whether opening may create what is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opening {
    /// `giftify serve`: a data dir without a database is initialised (database, keys, demo
    /// catalogue).
    MayInitialise,
    /// Every other command: the data must exist already, so a mistyped `--data-dir` fails
    /// instead of answering from a new, empty shop.
    ExistingOnly,
}

impl EmbeddedStack {
    /// The database file of a data dir.
    pub fn database_path(data_dir: &Path) -> PathBuf {
        data_dir.join(crate::sqlite::backup::DATABASE_FILE)
    }

    /// Opens the database and keys in the data dir (initialising a new data dir when
    /// `opening` allows), checks the keys against the ones the data was sealed with, and seeds
    /// the demo catalogue into an empty database.
    pub async fn open(config: Config, opening: Opening) -> Result<Self> {
        let database = Self::database_path(&config.data_dir);
        let files = if database.exists() {
            KeyFiles::MustExist
        } else if opening == Opening::MayInitialise {
            crate::sqlite::private_dir(&config.data_dir)?;
            KeyFiles::MayGenerate
        } else {
            bail!(
                "{} holds no Giftify database: check --data-dir / GIFTIFY_DATA_DIR \
                 (only `giftify serve` creates a new one)",
                config.data_dir.display()
            );
        };
        // Keys first on a new data dir: a crash between the two then leaves keys without a
        // database (a new data dir again), never a database without its keys.
        let secrets = Secrets::load(&config, files);
        if files == KeyFiles::MayGenerate {
            // Refused keys on a new data dir: create no database, so the next start is a new
            // data dir again rather than a database whose keys never existed.
            secrets
                .as_ref()
                .map_err(|error| anyhow::anyhow!("{error:#}"))?;
        }
        let store = SqliteStore::open(&database, config.queue)
            .await
            .with_context(|| {
                format!("cannot open the database in {}", config.data_dir.display())
            })?;
        let secrets = match secrets {
            Ok(secrets) => secrets,
            Err(error) => {
                let cards = store
                    .sealed_cards()
                    .await
                    .map_or_else(|_| "an unknown number of".to_string(), |n| n.to_string());
                bail!(
                    "{error:#} ({cards} gift card(s) in this database are sealed under the card key)"
                );
            }
        };
        let webhooks = Arc::new(WebhookPublisher::new(
            store.clone(),
            config.webhook_urls.clone(),
            config.webhook_secret.clone(),
        ));
        let rules = config.rules();
        let giftify = Giftify::new(
            Ports::from_backend(store.clone(), webhooks.clone()),
            Arc::new(CardVault::new(&secrets.card_key)),
            store.options().clock,
            rules,
        );
        giftify.verify_keys(&secrets.presented()).await?;
        if giftify.seed_demo_catalogue().await? {
            tracing::info!("seeded the demo catalogue");
        }
        Ok(EmbeddedStack {
            giftify,
            store,
            webhooks,
            secrets,
            config,
        })
    }

    /// A clean stop's last step: folds the write-ahead log into `giftify.db`, so the file
    /// alone is the whole shop (a copy of it, or a look with the sqlite3 shell, sees every
    /// commit). `giftify backup` is still the way to copy a running database.
    pub async fn close(&self) {
        let database = Self::database_path(&self.config.data_dir);
        match tokio::task::spawn_blocking(move || crate::sqlite::backup::checkpoint(&database))
            .await
        {
            Ok(Ok(true)) => tracing::info!("write-ahead log folded into the database"),
            Ok(Ok(false)) => tracing::info!(
                "write-ahead log kept in part: another process is still using the database"
            ),
            Ok(Err(error)) => tracing::warn!(error = %format!("{error:#}"), "checkpoint failed"),
            Err(error) => tracing::warn!(error = %error, "checkpoint task failed"),
        }
    }

    /// Runs the worker side until `shutdown` turns true: the queue consumer, webhook delivery
    /// and the reconciler. In-flight messages finish before it returns.
    pub async fn run_worker(&self, shutdown: Shutdown) {
        let consumer = crate::worker::run(
            self.giftify.clone(),
            self.store.clone(),
            WorkerSettings::EMBEDDED,
            shutdown.clone(),
        );
        let deliveries = self.webhooks.run_delivery(shutdown.clone());
        let reconciler = reconcile_periodically(self.giftify.clone(), shutdown);
        tokio::join!(consumer, deliveries, reconciler);
    }
}

/// Whichever backend the configuration selects.
#[derive(Debug)]
pub enum Stack {
    Embedded(Box<EmbeddedStack>),
    Aws(Box<crate::aws::runtime::AwsRuntime>),
}

impl Stack {
    pub async fn open(config: Config, opening: Opening) -> Result<Self> {
        match config.backend {
            crate::config::BackendKind::Embedded => Ok(Stack::Embedded(Box::new(
                EmbeddedStack::open(config, opening).await?,
            ))),
            crate::config::BackendKind::Aws => {
                let sdk = crate::aws::sdk_config().await;
                let runtime = crate::aws::runtime::AwsRuntime::open(config, &sdk).await?;
                // No demo catalogue here: this may be production; `giftify aws bootstrap`
                // seeds one for emulators and dev accounts.
                Ok(Stack::Aws(Box::new(runtime)))
            }
        }
    }

    /// The last step of a clean stop (see [`EmbeddedStack::close`]); nothing to do on AWS.
    pub async fn close(&self) {
        if let Stack::Embedded(stack) = self {
            stack.close().await;
        }
    }

    pub fn giftify(&self) -> &Giftify {
        match self {
            Stack::Embedded(stack) => &stack.giftify,
            Stack::Aws(runtime) => &runtime.giftify,
        }
    }

    /// The access-token key, which serving the API needs (see [`Secrets::jwt_secret`]).
    pub fn jwt_secret(&self) -> Result<&secrecy::SecretString> {
        match self {
            Stack::Embedded(stack) => stack.secrets.jwt_secret(),
            Stack::Aws(runtime) => runtime.secrets.jwt_secret(),
        }
    }

    pub fn config(&self) -> &Config {
        match self {
            Stack::Embedded(stack) => &stack.config,
            Stack::Aws(runtime) => &runtime.config,
        }
    }

    /// The worker side until `shutdown`: on AWS, the SQS long-poll consumer and the reconciler
    /// (in Lambda the event source mapping and the schedule do their jobs).
    pub async fn run_worker(&self, shutdown: Shutdown) {
        match self {
            Stack::Embedded(stack) => stack.run_worker(shutdown).await,
            Stack::Aws(runtime) => {
                let consumer = crate::worker::run(
                    runtime.giftify.clone(),
                    runtime.giftify.ports.inbox.clone(),
                    WorkerSettings::SQS,
                    shutdown.clone(),
                );
                tokio::join!(
                    consumer,
                    reconcile_periodically(runtime.giftify.clone(), shutdown)
                );
            }
        }
    }
}

async fn reconcile_periodically(giftify: Giftify, mut shutdown: Shutdown) {
    let mut ticker = tokio::time::interval(RECONCILE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => match giftify.reconcile().await {
                Ok(report) if report != Default::default() => tracing::info!(?report, "reconciled"),
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "reconcile pass failed"),
            },
            () = shutdown.requested() => return,
        }
    }
}
