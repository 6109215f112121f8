//! `giftify migrate --from-data-dir <dir> --to aws`: the machine's embedded store copied into
//! the configured AWS stage by [`giftify_shared::usecases::migrate`], its progress kept in a
//! file in the data dir (`migration-<stage>.json`), written whole and renamed into place after
//! every page so a crash leaves the last complete position.

use crate::config::{BackendKind, Config};
use crate::embedded::runtime::EmbeddedStack;
use crate::stack::Opening;
use anyhow::{Context, Result, bail};
use giftify_shared::migration::{Progress, ProgressStore};
use giftify_shared::{Error, SystemClock};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The progress of one copy, as a JSON file.
#[derive(Debug)]
pub struct ProgressFile {
    path: PathBuf,
}

impl ProgressFile {
    /// The progress of the copy of `data_dir` into `stage`.
    pub fn of(data_dir: &Path, stage: Option<&str>) -> Self {
        ProgressFile {
            path: data_dir.join(format!("migration-{}.json", stage.unwrap_or("default"))),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn io_error(what: &str, path: &Path, error: impl std::fmt::Display) -> Error {
    Error::internal(format!("{what} {}: {error}", path.display()))
}

impl ProgressStore for ProgressFile {
    fn load(&self) -> giftify_shared::Result<Option<Progress>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io_error("cannot read the progress in", &self.path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("cannot read", &self.path, e)),
        }
    }

    fn save(&self, progress: &Progress) -> giftify_shared::Result<()> {
        let partial = self.path.with_extension("json.partial");
        let json = serde_json::to_vec_pretty(progress).map_err(Error::internal)?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&partial)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&partial, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| io_error("cannot save the progress to", &self.path, e))
    }
}

/// Copies the data dir `from` into the AWS stage `config` describes. The stage must use the
/// data dir's card key: its cards and codes are sealed under it, so another key is refused
/// before anything is copied. `on_page` sees the progress after every page.
pub async fn migrate_to_aws(
    config: Config,
    from: &Path,
    on_page: impl FnMut(&Progress),
) -> Result<(Progress, PathBuf)> {
    if config.backend != BackendKind::Aws {
        bail!("the target is the AWS stage: set GIFTIFY_BACKEND=aws and the stage's settings");
    }
    // The data dir's key files where it has them (the environment describes the stage); the
    // embedded store checks whichever keys it is given against the ones its data was sealed
    // with, and the stage's card key is checked against the data dir's below.
    let own_file = |name: &str| from.join(name).exists();
    let source_config = Config {
        data_dir: from.to_path_buf(),
        backend: BackendKind::Embedded,
        card_key: config.card_key.clone().filter(|_| !own_file("card.key")),
        jwt_secret: config.jwt_secret.clone().filter(|_| !own_file("jwt.key")),
        ..config.clone()
    };
    let source = EmbeddedStack::open(source_config, Opening::AsItIs)
        .await
        .with_context(|| format!("opening the data dir {}", from.display()))?;
    let sdk = crate::aws::sdk_config().await;
    let stage = config.aws.stage.clone();
    // Compared before the stage is opened: opening a stage that never ran records the key it
    // is given as the stage's.
    let stage_keys = crate::aws::runtime::load_secrets(&sdk, &config).await?;
    if source.secrets.card_key.check_value() != stage_keys.card_key.check_value() {
        bail!(
            "the stage's card key is not the data dir's ({}): cards sealed on the machine \
             could never be opened on the stage. Give the stage the data dir's card.key",
            from.join("card.key").display()
        );
    }
    let target = crate::aws::runtime::AwsRuntime::open(config, &sdk).await?;
    let progress = ProgressFile::of(from, stage.as_deref());
    let done = giftify_shared::usecases::migrate(
        source.store.as_ref(),
        &target.aws.store,
        &progress,
        &SystemClock,
        on_page,
    )
    .await?;
    Ok((done, progress.path().to_path_buf()))
}
