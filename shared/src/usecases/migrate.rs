//! The copy of an install to another backend (see [`crate::migration`]): part by part, page by
//! page, resuming where the saved progress says, and done only when both sides agree.

use crate::clock::Clock;
use crate::migration::{Digest, MigrationSource, MigrationTarget, Part, Progress, ProgressStore};
use crate::{Error, Result};

/// Records per page: one saved position per page, so a crash repeats at most this many puts
/// (each finds its record there and skips it).
pub const MIGRATION_PAGE: u32 = 200;

/// Copies `source` into `target`, from where `progress` stands, and verifies the result.
/// `on_page` sees the progress after every saved page (for the operator's display).
///
/// Refused before anything is written: a source with dead letters (an operator must settle
/// them on the machine), a source whose money rule fails, and a target that holds customers
/// without a saved progress of this very copy (a stage already in use). Refused at the end: a
/// source that changed since the copy began (a process still ran on it), and a target that
/// does not count what the source counts.
pub async fn migrate(
    source: &dyn MigrationSource,
    target: &dyn MigrationTarget,
    store: &dyn ProgressStore,
    clock: &dyn Clock,
    mut on_page: impl FnMut(&Progress),
) -> Result<Progress> {
    let dead_letters = source.dead_letters().await?;
    if dead_letters > 0 {
        return Err(Error::validation(
            "source",
            format!(
                "{dead_letters} dead letters wait on the machine: redrive or refund them \
                 (giftify dlq) before the move"
            ),
        ));
    }
    let mut progress = match store.load()? {
        Some(progress) => progress,
        None => {
            let as_of = clock.now();
            let census = source.census(as_of).await?;
            census.money_rule()?;
            if !target.census().await?.holds_no_customers() {
                return Err(Error::validation(
                    "target",
                    "the stage already holds accounts or orders: move into a stage whose \
                     tables are new",
                ));
            }
            let progress = Progress {
                part: Some(Part::ALL[0]),
                as_of,
                source: census,
                ..Progress::default()
            };
            store.save(&progress)?;
            progress
        }
    };
    while let Some(part) = progress.part {
        let page = source
            .export(
                part,
                progress.after.as_deref(),
                MIGRATION_PAGE,
                progress.as_of,
            )
            .await?;
        let imported = target.import(&page.records).await?;
        let total = progress.imported.entry(part).or_default();
        total.copied += imported.copied;
        total.present += imported.present;
        match page.next {
            Some(next) => progress.after = Some(next),
            None => {
                progress.part = part.next();
                progress.after = None;
            }
        }
        store.save(&progress)?;
        on_page(&progress);
    }
    if !progress.verified {
        verify(source, target, &progress).await?;
        progress.verified = true;
        store.save(&progress)?;
    }
    Ok(progress)
}

/// Both sides count the same records and money as the source did when the copy began, every
/// part reads back with the digest it has in the source, and the money rule holds on the
/// target.
async fn verify(
    source: &dyn MigrationSource,
    target: &dyn MigrationTarget,
    progress: &Progress,
) -> Result<()> {
    let now = source.census(progress.as_of).await?;
    let changed = progress.source.differences(&now);
    if !changed.is_empty() {
        return Err(Error::validation(
            "source",
            format!(
                "the machine changed while it was copied (stop every giftify process on it, \
                 delete the progress file and run again): {}",
                changed.join("; ")
            ),
        ));
    }
    let copied = target.census().await?;
    let mut differences = progress.source.differences(&copied);
    if differences.is_empty() {
        for part in Part::ALL {
            if source_digest(source, part, progress.as_of).await?
                != Digest::of(&target.records(part).await?)
            {
                differences.push(format!("{part}: the records read back differ"));
            }
        }
    }
    if !differences.is_empty() {
        return Err(Error::internal(format!(
            "the stage does not hold what the machine holds: {}",
            differences.join("; ")
        )));
    }
    copied.money_rule()
}

/// The digest of every record of `part` in the source, page by page.
async fn source_digest(
    source: &dyn MigrationSource,
    part: Part,
    as_of: chrono::DateTime<chrono::Utc>,
) -> Result<Digest> {
    let mut digest = Digest::default();
    let mut after = None;
    loop {
        let page = source
            .export(part, after.as_deref(), MIGRATION_PAGE, as_of)
            .await?;
        for record in &page.records {
            digest.add(record);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(digest),
        }
    }
}
