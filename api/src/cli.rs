//! The `giftify` command line: `serve` (the default: API plus in-process worker), `worker`,
//! the dead-letter tools `dlq list` / `dlq redrive`, and `aws bootstrap`. Each runs on the
//! backend `GIFTIFY_BACKEND` selects: the embedded SQLite stack, or AWS (DynamoDB, SQS, SNS).
//!
//! Flags mirror the non-secret environment variables of the embedded stack and override the
//! fields of [`Config::from_env`], which stays the only reader of the environment. Secrets
//! (JWT key, card key, webhook secret, admin password) have no flags: command lines are
//! visible to every user of the machine through the process table.

use crate::{AppState, router, set_up_admin};
use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use giftify_infra::Config;
use giftify_infra::EmbeddedStack;
use giftify_infra::Stack;
use giftify_infra::config::{ENV_VARS, LogFormat, parse_urls};
use giftify_infra::embedded::backup;
use giftify_infra::secrets::{KeyFiles, Secrets};
use giftify_infra::shutdown::Shutdown;
use giftify_infra::stack::Opening;
use giftify_shared::audit::Actor;
use giftify_shared::ids::OrderId;
use giftify_shared::order::{DeadLetter, DeadLetterBody, RefundReason};
use giftify_shared::usecases::{AdminRequest, admin_reason};
use giftify_shared::user::{Email, UserSearch, UserStatus};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Giftify: a gift card shop with an internal wallet. API server, fulfillment worker and
/// operator tools over one data directory.
#[derive(Debug, Parser)]
#[command(name = "giftify", version)]
pub struct Cli {
    #[command(flatten)]
    pub overrides: ConfigOverrides,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags that override configuration from the environment.
#[derive(Debug, Default, Args)]
pub struct ConfigOverrides {
    /// Address the API listens on (GIFTIFY_ADDR).
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub addr: Option<SocketAddr>,
    /// Directory of the SQLite database and generated keys (GIFTIFY_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Email of the admin account ensured at start; its password comes from
    /// GIFTIFY_ADMIN_PASSWORD only (GIFTIFY_ADMIN_EMAIL).
    #[arg(long, global = true, value_name = "EMAIL")]
    pub admin_email: Option<String>,
    /// URL that receives signed order events; repeatable (GIFTIFY_WEBHOOK_URLS).
    #[arg(long = "webhook-url", global = true, value_name = "URL")]
    pub webhook_urls: Vec<String>,
    /// Deliveries before a message moves to the dead-letter queue (GIFTIFY_QUEUE_MAX_RECEIVES).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub queue_max_receives: Option<u32>,
    /// Seconds a received message stays invisible (GIFTIFY_QUEUE_VISIBILITY_SECS).
    #[arg(long, global = true, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=43_200))]
    pub queue_visibility_secs: Option<u64>,
    /// Largest wallet balance in paise (GIFTIFY_WALLET_MAX_BALANCE).
    #[arg(long, global = true, value_name = "PAISE", value_parser = clap::value_parser!(i64).range(1..=1_000_000_000_000))]
    pub wallet_max_balance: Option<i64>,
    /// Log format (GIFTIFY_LOG_FORMAT).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// Log filter, e.g. `info,giftify_api=debug` (RUST_LOG).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_filter: Option<String>,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and run the fulfillment worker in-process (the default).
    Serve {
        /// Serve the API only (and the reconciler); run `giftify worker` separately on the same
        /// data dir.
        #[arg(long)]
        no_worker: bool,
        /// Let the start-up admin (GIFTIFY_ADMIN_EMAIL) promote a customer account that already
        /// has that email. Without it such an account is refused: anyone may have registered
        /// the address on a live API.
        #[arg(long)]
        promote_existing_admin: bool,
    },
    /// Manage the admin account without starting a server; the email comes from
    /// --admin-email or GIFTIFY_ADMIN_EMAIL, the password from GIFTIFY_ADMIN_PASSWORD.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Run the fulfillment worker only: queue consumer, webhook delivery, reconciler.
    Worker,
    /// Inspect and redrive the dead-letter queue.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Copy the running embedded database into a new file, consistently and verified. The
    /// key files are not in it: back them up too, and keep them apart from the copy.
    Backup {
        /// The new file (never overwritten).
        file: PathBuf,
    },
    /// Put a backup in place as the database of a data dir that has none, after checking that
    /// the data dir's key files (or the key variables) are the ones the backup was sealed with.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// AWS resources for emulators and dev accounts (Terraform is the production path).
    Aws {
        #[command(subcommand)]
        command: AwsCommand,
    },
    /// Brand codes of INVENTORY variants.
    Codes {
        #[command(subcommand)]
        command: CodesCommand,
    },
    /// Copy this machine's data dir into an AWS stage (the stage's settings and card key come
    /// from the environment, as for any AWS command): resumable after a crash, a no-op when
    /// run again, and done only when both sides count the same records and money. The
    /// runbook is in the README ("Moving a machine to AWS").
    Migrate {
        /// The data dir to copy; every giftify process on it must be stopped.
        #[arg(long, value_name = "DIR")]
        from_data_dir: PathBuf,
        /// Where to: the stage GIFTIFY_STAGE names.
        #[arg(long, value_enum)]
        to: MigrationTarget,
    },
    /// Suspend or reactivate an account from the machine (audited as `cli`): the way back
    /// when no admin can sign in to do it.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

/// Where `giftify migrate` copies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MigrationTarget {
    /// The AWS stage of GIFTIFY_STAGE (DynamoDB tables of a new stage).
    Aws,
}

/// An account's standing, changed by the operator.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Suspend the account with this email: its sessions end, its next request is refused.
    Suspend {
        email: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: String,
    },
    /// Reactivate the account with this email; its ended sessions stay ended.
    Reactivate {
        email: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: String,
    },
}

/// Brand code tools.
#[derive(Debug, Subcommand)]
pub enum CodesCommand {
    /// Import a CSV file (header `number,pin,expiryDate`) into a variant's pool, with a
    /// progress bar. A file of up to 1,000 codes becomes the batch `--batch`; a larger one is
    /// imported in parts of 1,000 named `<batch>.1`, `<batch>.2`, … Running the same command
    /// again imports nothing twice.
    Import {
        /// The INVENTORY variant (`var_…`).
        #[arg(long)]
        variant: String,
        /// The batch reference: 1 to 60 letters, digits, `.`, `_` or `-`.
        #[arg(long)]
        batch: String,
        /// The CSV file.
        file: PathBuf,
    },
}

/// Admin account tools (audited in the log). Promoting an account or resetting its password
/// ends every session it had.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum AdminCommand {
    /// Create the admin account; an email that is taken is refused.
    Create,
    /// Make an existing customer account the admin, with the given password.
    Promote,
    /// Give the existing admin account the given password.
    ResetPassword,
}

impl AdminCommand {
    fn request(self) -> AdminRequest {
        match self {
            AdminCommand::Create => AdminRequest::Create,
            AdminCommand::Promote => AdminRequest::Promote,
            AdminCommand::ResetPassword => AdminRequest::ResetPassword,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Create the tables, the FIFO queue with its FIFO dead-letter queue and redrive policy,
    /// and the events topic on the configured endpoint; existing ones are kept. Seeds the demo
    /// catalogue into an empty stage unless told not to.
    Bootstrap {
        /// Leave the tables empty: for a stage that `giftify migrate` is to fill.
        #[arg(long)]
        empty: bool,
    },
}

/// Dead-letter queue tools.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters, oldest first: order id, receive count, last error.
    List {
        /// Most letters to list.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
    },
    /// Remove one dead letter for good (audited in the log): one that is not an order
    /// message, or an order settled by hand.
    Delete {
        /// The message id `dlq list` shows.
        message_id: String,
    },
    /// Move dead letters back to the queue, oldest first (or only the one of `--order`).
    /// Letters that are not order messages stay: they would only fail again.
    Redrive {
        /// Only list what would be moved.
        #[arg(long)]
        dry_run: bool,
        /// Most letters to move.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        max: u32,
        /// Redrive only this order's dead letter.
        #[arg(long, value_name = "ORDER_ID", conflicts_with = "dry_run")]
        order: Option<String>,
    },
    /// Give an order up (audited): REFUNDED with everything it paid back in the wallet, the
    /// reason kept and sent in its event, its dead letters removed. For any order not final.
    Refund {
        /// The order id `dlq list` shows.
        order_id: String,
        /// Why, in a sentence the customer may read.
        #[arg(long)]
        reason: String,
    },
}

impl ConfigOverrides {
    /// Applies the given flags to `config`.
    pub fn apply(&self, config: &mut Config) -> Result<()> {
        if let Some(addr) = self.addr {
            config.addr = addr;
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir.clone_from(dir);
        }
        if let Some(email) = &self.admin_email {
            match config.admin.as_mut() {
                Some(admin) => admin.email.clone_from(email),
                None => bail!("--admin-email needs GIFTIFY_ADMIN_PASSWORD in the environment"),
            }
        }
        if !self.webhook_urls.is_empty() {
            config.webhook_urls = parse_urls(&self.webhook_urls.join(","))?;
        }
        if let Some(n) = self.queue_max_receives {
            config.queue.max_receives = n;
        }
        if let Some(secs) = self.queue_visibility_secs {
            config.queue.visibility_timeout = Duration::from_secs(secs);
        }
        if let Some(paise) = self.wallet_max_balance {
            config.wallet_max_balance = paise;
        }
        if let Some(format) = self.log_format {
            config.log_format = match format {
                LogFormatArg::Pretty => LogFormat::Pretty,
                LogFormatArg::Json => LogFormat::Json,
            };
        }
        if let Some(filter) = &self.log_filter {
            config.log_filter.clone_from(filter);
        }
        Ok(())
    }
}

impl Cli {
    /// Parses the process arguments; `--help` lists the environment variables too.
    pub fn parse_args() -> Self {
        let matches = Self::command()
            .after_long_help(env_vars_help())
            .after_help("Run `giftify --help` for the environment variables.")
            .get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
    }

    /// The configuration: the environment, then these flags, then the cross-field checks.
    pub fn config(&self) -> Result<Config> {
        let mut config = Config::from_env()?;
        self.overrides.apply(&mut config)?;
        config.check()?;
        Ok(config)
    }

    /// Runs the chosen command to completion.
    pub async fn run(self, config: Config) -> Result<()> {
        let command = self.command.unwrap_or(Command::Serve {
            no_worker: false,
            promote_existing_admin: false,
        });
        match command {
            Command::Serve {
                no_worker,
                promote_existing_admin,
            } => serve(config, !no_worker, promote_existing_admin).await,
            Command::Admin { command } => admin(config, command).await,
            Command::Backup { file } => backup(config, &file).await,
            Command::Restore { file } => restore(config, &file).await,
            Command::Worker => worker(config).await,
            Command::Dlq {
                command: DlqCommand::List { limit },
            } => dlq_list(config, limit).await,
            Command::Dlq {
                command:
                    DlqCommand::Redrive {
                        order: Some(order), ..
                    },
            } => dlq_redrive_order(config, &order).await,
            Command::Dlq {
                command:
                    DlqCommand::Redrive {
                        dry_run,
                        max,
                        order: None,
                    },
            } => dlq_redrive(config, dry_run, max).await,
            Command::Dlq {
                command: DlqCommand::Refund { order_id, reason },
            } => dlq_refund(config, &order_id, &reason).await,
            Command::Dlq {
                command: DlqCommand::Delete { message_id },
            } => dlq_delete(config, &message_id).await,
            Command::Aws {
                command: AwsCommand::Bootstrap { empty },
            } => aws_bootstrap(config, empty).await,
            Command::Migrate {
                from_data_dir,
                to: MigrationTarget::Aws,
            } => migrate(config, &from_data_dir).await,
            Command::Users {
                command: UsersCommand::Suspend { email, reason },
            } => set_standing(config, &email, UserStatus::Suspended, &reason).await,
            Command::Users {
                command: UsersCommand::Reactivate { email, reason },
            } => set_standing(config, &email, UserStatus::Active, &reason).await,
            Command::Codes {
                command:
                    CodesCommand::Import {
                        variant,
                        batch,
                        file,
                    },
            } => codes_import(config, &variant, &batch, &file).await,
        }
    }
}

/// The environment variables, for `--help`.
fn env_vars_help() -> String {
    let width = ENV_VARS
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    let mut help = String::from("Environment variables (flags override them):\n");
    for (name, meaning) in ENV_VARS {
        help.push_str(&format!("  {name:width$}  {meaning}\n"));
    }
    help
}

/// Serves the API on the configured backend, with the worker in-process unless told not to.
async fn serve(config: Config, with_worker: bool, promote_existing_admin: bool) -> Result<()> {
    let addr = config.addr;
    let stack = Arc::new(Stack::open(config, Opening::MayInitialise).await?);
    if let Some(admin) = &stack.config().admin {
        let request = AdminRequest::Ensure {
            promote_existing: promote_existing_admin,
        };
        set_up_admin(stack.giftify(), request, &admin.email, &admin.password).await?;
    }
    let order_watch = stack.giftify().order_watch.clone();
    let app = router(AppState::new(stack.giftify().clone(), stack.jwt_secret()?));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(%addr, worker = with_worker, "Giftify is listening");

    let (limits, deadline) = (stack.config().http, stack.config().shutdown_deadline);
    let (stop, stopped) = Shutdown::channel();
    // Without the worker, the reconciler still runs here: an order must not keep its
    // customer's money because no worker is running (the reconciler refunds it at its deadline).
    let mut worker = {
        let stack = stack.clone();
        tokio::spawn(async move {
            if with_worker {
                stack.run_worker(stopped).await;
            } else {
                stack.run_reconciler(stopped).await;
            }
        })
    };
    let (signalled, mut signal) = watch::channel(None);
    let shutdown_requested = async move {
        let _ = signal.wait_for(Option::is_some).await;
    };
    let server = tokio::spawn(crate::server::serve(
        listener,
        app,
        limits,
        deadline,
        shutdown_requested,
    ));
    // The worker (or the lone reconciler) only returns once told to stop; if it ends first, it
    // crashed, and a server that accepts orders nobody fulfils or refunds must not keep running.
    let worker_ended = &mut worker;
    let stop_began = tokio::select! {
        () = shutdown_signal() => {
            // The HTTP side and the worker drain at once, within one deadline. Orders placed
            // by requests still in flight are queued durably for the next start.
            let _ = signalled.send(Some(()));
            let _ = stop.send(true);
            // Requests waiting for orders answer now: the worker that would finish them is
            // stopping too.
            order_watch.close();
            tokio::time::Instant::now()
        }
        ended = worker_ended => {
            bail!("the worker stopped unexpectedly ({ended:?}); shutting down");
        }
    };
    match server.await.context("the HTTP server failed")? {
        crate::server::Drained::All => tracing::info!("requests drained; stopping the worker"),
        crate::server::Drained::DeadlinePassed => tracing::warn!(
            deadline_secs = deadline.as_secs(),
            "the shutdown deadline passed with connections open; closed them"
        ),
    }
    let left = deadline.saturating_sub(stop_began.elapsed());
    match tokio::time::timeout(left, worker).await {
        Ok(joined) => joined.context("the worker failed while stopping")?,
        // Messages still in hand were not acknowledged: the queue delivers them again.
        Err(_) => tracing::warn!(
            "the worker did not stop by the deadline; its messages will be delivered again"
        ),
    }
    stack.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `giftify admin …`: one change to the admin account, then exit.
async fn admin(config: Config, command: AdminCommand) -> Result<()> {
    let Some(account) = config.admin.clone() else {
        bail!("set GIFTIFY_ADMIN_EMAIL (or --admin-email) and GIFTIFY_ADMIN_PASSWORD");
    };
    let stack = Stack::open(config, Opening::ExistingOnly).await?;
    let step = set_up_admin(
        stack.giftify(),
        command.request(),
        &account.email,
        &account.password,
    )
    .await?;
    println!("admin {}: {}", account.email, step.outcome());
    Ok(())
}

/// `giftify backup <file>`: an online copy of the embedded database.
async fn backup(config: Config, file: &std::path::Path) -> Result<()> {
    embedded_only(
        &config,
        "DynamoDB point-in-time recovery backs up an AWS stage",
    )?;
    let database = EmbeddedStack::database_path(&config.data_dir);
    if !database.exists() {
        bail!(
            "{} holds no Giftify database: check --data-dir / GIFTIFY_DATA_DIR",
            config.data_dir.display()
        );
    }
    let target = file.to_path_buf();
    let snapshot = tokio::task::spawn_blocking(move || backup::backup(&database, &target))
        .await
        .context("the backup task failed")??;
    tracing::warn!(target: "audit", file = %file.display(), %snapshot, "database backed up");
    println!("backed up to {}: {snapshot}", file.display());
    println!(
        "The keys are not in the backup: keep card.key and jwt.key (or their variables) with it, apart."
    );
    Ok(())
}

/// `giftify restore <file>`: a backup into a data dir without a database.
async fn restore(config: Config, file: &std::path::Path) -> Result<()> {
    embedded_only(
        &config,
        "restore an AWS stage with DynamoDB point-in-time recovery",
    )?;
    let secrets = Secrets::load(&config, KeyFiles::MustExist).with_context(|| {
        format!(
            "put the key files of the install the backup came from into {} first",
            config.data_dir.display()
        )
    })?;
    let (file, dir, keys) = (
        file.to_path_buf(),
        config.data_dir.clone(),
        secrets.presented(),
    );
    let snapshot = tokio::task::spawn_blocking(move || backup::restore(&file, &dir, &keys))
        .await
        .context("the restore task failed")??;
    tracing::warn!(target: "audit", data_dir = %config.data_dir.display(), %snapshot, "database restored");
    println!("restored into {}: {snapshot}", config.data_dir.display());
    Ok(())
}

fn embedded_only(config: &Config, instead: &str) -> Result<()> {
    if config.backend != giftify_infra::config::BackendKind::Embedded {
        bail!("this command is for the embedded backend; {instead}");
    }
    Ok(())
}

/// Runs the worker alone until SIGTERM or Ctrl-C.
async fn worker(config: Config) -> Result<()> {
    let stack = Stack::open(config, Opening::ExistingOnly).await?;
    let (stop, stopped) = Shutdown::channel();
    tracing::info!("Giftify worker started");
    let run = stack.run_worker(stopped);
    tokio::pin!(run);
    tokio::select! {
        () = &mut run => bail!("the worker stopped unexpectedly"),
        () = shutdown_signal() => {}
    }
    let _ = stop.send(true);
    let deadline = stack.config().shutdown_deadline;
    if tokio::time::timeout(deadline, run).await.is_err() {
        // Messages still in hand were not acknowledged: the queue delivers them again.
        tracing::warn!(
            deadline_secs = deadline.as_secs(),
            "the worker did not stop by the deadline; its messages will be delivered again"
        );
    }
    stack.close().await;
    tracing::info!("worker stopped");
    Ok(())
}

async fn dlq_list(config: Config, limit: u32) -> Result<()> {
    let stack = Stack::open(config, Opening::ExistingOnly).await?;
    let letters = stack.giftify().dead_letters(limit).await?;
    if letters.is_empty() {
        println!("The dead-letter queue is empty.");
    }
    for letter in &letters {
        println!("{}", dead_letter_line(letter));
    }
    Ok(())
}

async fn dlq_redrive(config: Config, dry_run: bool, max: u32) -> Result<()> {
    let stack = Stack::open(config, Opening::ExistingOnly).await?;
    let verb = if dry_run { "would redrive" } else { "redriven" };
    let report = stack
        .giftify()
        .redrive(&Actor::Operator, max, dry_run, |letter| {
            println!("{verb}: {}", dead_letter_line(letter));
        })
        .await?;
    let count = report.moved.len();
    if dry_run {
        println!("{count} message(s) would be moved back to the queue (dry run).");
    } else {
        println!("{count} message(s) moved back to the queue.");
    }
    Ok(())
}

async fn dlq_redrive_order(config: Config, order: &str) -> Result<()> {
    let order: OrderId = order.parse().context("not an order id")?;
    let stack = Stack::open(config, Opening::ExistingOnly).await?;
    let letter = stack
        .giftify()
        .redrive_order(&Actor::Operator, &order)
        .await?;
    println!("redriven: {}", dead_letter_line(&letter));
    Ok(())
}

async fn dlq_refund(config: Config, order: &str, reason: &str) -> Result<()> {
    let order: OrderId = order.parse().context("not an order id")?;
    let reason = RefundReason::given(reason)?;
    let stack = Stack::open(config, Opening::ExistingOnly).await?;
    let (refunded, removed) = stack
        .giftify()
        .refund_unfinished(&Actor::Operator, &order, reason)
        .await?;
    println!(
        "{} {}: {} back in wallet of {}; {removed} dead letter(s) removed",
        refunded.id, refunded.status, refunded.refund_amount, refunded.user_id
    );
    Ok(())
}

/// `giftify users suspend|reactivate <email>`: the account's standing, audited as `cli`.
async fn set_standing(config: Config, email: &str, to: UserStatus, reason: &str) -> Result<()> {
    let email = Email::parse(email).context("not an email")?;
    let reason = admin_reason(reason)?;
    let stack = Stack::open(config, Opening::ExistingOnly).await?;
    let giftify = stack.giftify();
    let found = giftify
        .find_users(&UserSearch {
            email: Some(email.clone()),
            after: None,
            limit: 1,
        })
        .await?;
    let Some(account) = found.users.first() else {
        bail!("no account has the email {}", email.as_str());
    };
    let changed = giftify
        .set_standing(&Actor::Operator, &account.id, to, reason)
        .await?;
    println!(
        "{} {}: {}",
        changed.id,
        email.as_str(),
        changed.status.as_str()
    );
    Ok(())
}

async fn dlq_delete(config: Config, message_id: &str) -> Result<()> {
    let stack = Stack::open(config, Opening::ExistingOnly).await?;
    match stack
        .giftify()
        .delete_dead_letter(&Actor::Operator, message_id)
        .await?
    {
        Some(letter) => {
            println!("deleted: {}", dead_letter_line(&letter));
            Ok(())
        }
        None => bail!("no dead letter has the message id {message_id}"),
    }
}

async fn aws_bootstrap(config: Config, empty: bool) -> Result<()> {
    let sdk = giftify_infra::aws::sdk_config().await;
    let visibility = u32::try_from(config.queue.visibility_timeout.as_secs()).unwrap_or(u32::MAX);
    let created = giftify_infra::aws::bootstrap::bootstrap(
        &sdk,
        config.aws.stage.as_deref(),
        config.queue.max_receives,
        visibility,
    )
    .await?;
    for table in &created.tables {
        println!("table\t{table}");
    }
    let runtime = giftify_infra::aws::runtime::AwsRuntime::open(config, &sdk).await?;
    if !empty && runtime.giftify.seed_demo_catalogue().await? {
        println!("seeded the demo catalogue");
    }
    println!("GIFTIFY_QUEUE_URL={}", created.queue_url);
    println!("GIFTIFY_DLQ_URL={}", created.dead_letter_url);
    println!("GIFTIFY_TOPIC_ARN={}", created.topic_arn);
    Ok(())
}

/// `giftify migrate --from-data-dir <dir> --to aws`: one line per part as it completes, the
/// census both sides agree on at the end.
async fn migrate(config: Config, from: &std::path::Path) -> Result<()> {
    use giftify_shared::migration::Part;
    let mut current = Some(Part::ALL[0]);
    let (done, progress_file) =
        giftify_infra::migration::migrate_to_aws(config, from, |progress| {
            if progress.part != current {
                if let Some(part) = current {
                    let imported = progress.imported.get(&part).copied().unwrap_or_default();
                    println!(
                        "{part}: {} copied, {} there already",
                        imported.copied, imported.present
                    );
                }
                current = progress.part;
            }
        })
        .await?;
    tracing::warn!(target: "audit", data_dir = %from.display(), "data dir copied to the AWS stage");
    println!("verified: the stage holds what {} holds", from.display());
    for part in Part::ALL {
        println!("  {part}: {}", done.source.count(part));
    }
    let money = &done.source.money;
    println!(
        "  money: {} paise in wallets, {} in cards kept, {} in orders in flight; the money rule \
         holds on both sides",
        money.balances, money.cards_kept, money.in_flight
    );
    println!(
        "progress: {} (keep it: a second run reads it and changes nothing)",
        progress_file.display()
    );
    Ok(())
}

/// Rows per part of a CLI import: small enough for a progress bar that moves.
const ROWS_PER_IMPORT_PART: usize = 1_000;

async fn codes_import(
    config: Config,
    variant: &str,
    batch: &str,
    file: &std::path::Path,
) -> Result<()> {
    use giftify_shared::codes::{BatchRef, parse_csv};
    use std::io::Write;
    let variant: giftify_shared::ids::VariantId = variant.parse()?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let rows = parse_csv(&text)?;
    if rows.is_empty() {
        bail!("{} has no codes", file.display());
    }
    let parts: Vec<_> = rows.chunks(ROWS_PER_IMPORT_PART).collect();
    let stack = Stack::open(config, Opening::ExistingOnly).await?;
    let (mut imported, mut duplicates, mut invalid) = (0u64, 0u64, 0u64);
    let mut refused = Vec::new();
    let mut done = 0usize;
    for (index, part) in parts.iter().enumerate() {
        let reference = if parts.len() == 1 {
            BatchRef::parse(batch)?
        } else {
            BatchRef::parse(&format!("{batch}.{}", index + 1))?
        };
        let report = stack
            .giftify()
            .import_codes(&Actor::Operator, &variant, reference, part)
            .await?;
        imported += u64::from(report.imported);
        duplicates += u64::from(report.duplicates);
        invalid += u64::from(report.invalid);
        refused.extend(
            report
                .refused
                .iter()
                .map(|r| (index * ROWS_PER_IMPORT_PART + r.row as usize, r.reason)),
        );
        done += part.len();
        let filled = done * 30 / rows.len();
        eprint!(
            "\r[{}{}] {done}/{} codes",
            "#".repeat(filled),
            " ".repeat(30 - filled),
            rows.len()
        );
        std::io::stderr().flush().ok();
    }
    eprintln!();
    tracing::info!(variant_id = %variant, batch, imported, duplicates, invalid, "codes imported from the command line");
    println!("imported {imported}, duplicates {duplicates}, invalid {invalid}");
    for (row, reason) in refused {
        println!("row {row}\t{reason:?}");
    }
    Ok(())
}

/// `order_…  message_id=…  receives=N  last_error=…` on one line.
fn dead_letter_line(letter: &DeadLetter) -> String {
    let error = letter
        .last_error
        .as_deref()
        .unwrap_or("-")
        .replace(['\n', '\r'], " ");
    let what = match &letter.body {
        DeadLetterBody::Order(message) => message.order_id.to_string(),
        DeadLetterBody::Unreadable { bytes } => {
            format!("not an order message ({bytes} bytes; `giftify dlq delete` removes it)")
        }
    };
    format!(
        "{what}\tmessage_id={}\treceives={}\tlast_error={error}",
        letter.message_id, letter.receive_count
    )
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use giftify_shared::ids::{OrderId, UserId};
    use giftify_shared::order::OrderMessage;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_serve_and_flags_are_global() {
        let cli = Cli::try_parse_from(["giftify"]).expect("parses");
        assert!(cli.command.is_none());
        let cli =
            Cli::try_parse_from(["giftify", "serve", "--no-worker", "--addr", "0.0.0.0:8080"])
                .expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Serve {
                no_worker: true,
                promote_existing_admin: false
            })
        ));
        assert_eq!(
            cli.overrides.addr,
            Some("0.0.0.0:8080".parse().expect("addr"))
        );
        let cli = Cli::try_parse_from(["giftify", "dlq", "redrive", "--dry-run", "--max", "3"])
            .expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Dlq {
                command: DlqCommand::Redrive {
                    dry_run: true,
                    max: 3,
                    order: None,
                }
            })
        ));
        assert!(Cli::try_parse_from(["giftify", "--queue-max-receives", "0"]).is_err());
    }

    #[test]
    fn flags_override_the_environment_configuration() {
        let cli = Cli::try_parse_from([
            "giftify",
            "--data-dir",
            "/tmp/giftify-test",
            "--webhook-url",
            "https://example.com/a",
            "--webhook-url",
            "http://127.0.0.1:9/b",
            "--queue-max-receives",
            "7",
            "--log-format",
            "json",
            "worker",
        ])
        .expect("parses");
        let mut config = Config::default();
        cli.overrides.apply(&mut config).expect("applies");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/giftify-test"));
        assert_eq!(config.webhook_urls.len(), 2);
        assert_eq!(config.queue.max_receives, 7);
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(
            config.check().is_err(),
            "webhooks without a secret are refused"
        );

        let bad = Cli::try_parse_from(["giftify", "--webhook-url", "ftp://x"]).expect("parses");
        assert!(bad.overrides.apply(&mut Config::default()).is_err());
        let lonely =
            Cli::try_parse_from(["giftify", "--admin-email", "ops@giftify.in"]).expect("parses");
        assert!(
            lonely.overrides.apply(&mut Config::default()).is_err(),
            "an admin email without a password is refused"
        );
    }

    #[test]
    fn help_lists_every_environment_variable() {
        let help = env_vars_help();
        for (name, _) in ENV_VARS {
            assert!(help.contains(name), "{name}");
        }
    }

    #[test]
    fn dead_letters_print_on_one_line() {
        let order_id = OrderId::generate();
        let letter = DeadLetter {
            message_id: "m1".into(),
            body: DeadLetterBody::Order(OrderMessage {
                order_id: order_id.clone(),
                user_id: UserId::generate(),
            }),
            receive_count: 5,
            last_error: Some("boom\nsecond line".into()),
            dead_at: None,
        };
        let line = dead_letter_line(&letter);
        assert!(line.starts_with(order_id.as_str()));
        assert!(line.contains("message_id=m1") && line.contains("receives=5"));
        assert!(line.contains("last_error=boom second line"));
        assert!(!line.contains('\n'));
        let unreadable = DeadLetter {
            body: DeadLetterBody::Unreadable { bytes: 7 },
            ..letter
        };
        let line = dead_letter_line(&unreadable);
        assert!(line.starts_with("not an order message (7 bytes"), "{line}");
        assert!(line.contains("message_id=m1"));
    }
}
