//! The stack a `giftify` process runs on, whichever backend the configuration selects: the
//! embedded one ([`crate::embedded::runtime`]) or AWS ([`crate::aws::runtime`]). `giftify
//! serve` and `giftify worker` open one; several processes may open the same data dir or AWS
//! stage.

use crate::config::Config;
use crate::embedded::runtime::EmbeddedStack;
pub use crate::embedded::runtime::Opening;
use crate::shutdown::Shutdown;
use crate::worker::{WorkerSettings, reconcile_periodically};
use anyhow::Result;
use giftify_shared::Giftify;

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
                // Only here on AWS, not in every Lambda's cold start: the worker functions'
                // roles cannot reach the webhooks table (and Terraform sets no URLs).
                crate::webhook_bootstrap::ensure_environment_webhooks(
                    &runtime.giftify,
                    &runtime.config,
                )
                .await?;
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

    /// The reconciler alone until `shutdown`: what an API-only process (`serve --no-worker`)
    /// runs, so stuck orders are refunded and owed events sent even while no worker runs. It
    /// is safe beside other reconcilers: every step it takes is conditional.
    pub async fn run_reconciler(&self, shutdown: Shutdown) {
        reconcile_periodically(self.giftify().clone(), shutdown).await;
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
