//! The embedded backend's composition root: one SQLite database behind every port, the card
//! vault, and the worker side (the worker loop over the SQLite queue, webhook delivery, the
//! reconciler). Its AWS mirror is [`crate::aws::runtime`].

use crate::config::Config;
use crate::embedded::SqliteStore;
use crate::embedded::webhooks::WebhookDispatcher;
use crate::secrets::{KeyFiles, Secrets};
use crate::shutdown::Shutdown;
use crate::worker::{WorkerSettings, reconcile_periodically};
use anyhow::{Context, Result, bail};
use giftify_shared::Giftify;
use giftify_shared::ports::KeyChecks;
use giftify_shared::vault::CardVault;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Whether opening may create what is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opening {
    /// `giftify serve`: a data dir without a database is initialised (database, keys, demo
    /// catalogue).
    MayInitialise,
    /// Every other command: the data must exist already, so a mistyped `--data-dir` fails
    /// instead of answering from a new, empty shop.
    ExistingOnly,
    /// Existing data, opened to be read as it is (the source of `giftify migrate`): the keys
    /// are checked, but no demo catalogue is seeded and no environment webhook is set up.
    AsItIs,
}

pub struct EmbeddedStack {
    pub giftify: Giftify,
    pub store: Arc<SqliteStore>,
    pub webhooks: WebhookDispatcher,
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

impl EmbeddedStack {
    /// The database file of a data dir.
    pub fn database_path(data_dir: &Path) -> PathBuf {
        data_dir.join(crate::embedded::backup::DATABASE_FILE)
    }

    /// Opens the database and keys in the data dir (initialising a new data dir when
    /// `opening` allows), checks the keys against the ones the data was sealed with, and seeds
    /// the demo catalogue into an empty database.
    pub async fn open(config: Config, opening: Opening) -> Result<Self> {
        let database = Self::database_path(&config.data_dir);
        let files = if database.exists() {
            KeyFiles::MustExist
        } else if opening == Opening::MayInitialise {
            crate::embedded::private_dir(&config.data_dir)?;
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
        let rules = config.rules();
        let giftify = Giftify::new(
            crate::embedded::ports_of(&store)?,
            Arc::new(CardVault::new(&secrets.card_key)),
            store.options().clock,
            rules,
        );
        giftify.verify_keys(&secrets.presented()).await?;
        if opening != Opening::AsItIs {
            if giftify.seed_demo_catalogue().await? {
                tracing::info!("seeded the demo catalogue");
            }
            crate::webhook_bootstrap::ensure_environment_webhooks(&giftify, &config).await?;
        }
        let webhooks = WebhookDispatcher::new(giftify.clone(), store.clone());
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
        match tokio::task::spawn_blocking(move || crate::embedded::backup::checkpoint(&database))
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
            WorkerSettings::embedded(self.config.worker_in_flight),
            shutdown.clone(),
        );
        let deliveries = self.webhooks.run(shutdown.clone());
        let reconciler = reconcile_periodically(self.giftify.clone(), shutdown);
        tokio::join!(consumer, deliveries, reconciler);
    }
}
