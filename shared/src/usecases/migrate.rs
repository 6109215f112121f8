//! The copy of an install to another backend (see [`crate::migration`]): part by part, page by
//! page, resuming where the saved progress says, and done only when both sides agree.

use crate::clock::Clock;
use crate::migration::{
    Census, Digest, MigrationSource, MigrationTarget, Part, Progress, ProgressStore, Record,
};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Records per page: one saved position per page, so a crash repeats at most this many puts
/// (each finds its item there and skips it).
pub const MIGRATION_PAGE: u32 = 200;

/// Copies `source` into `target`, from where `progress` stands, and verifies the result.
/// `on_page` sees the progress after every saved page (for the operator's display).
///
/// Refused before anything is written: a source with dead letters (an operator must settle
/// them on the machine), a source whose money rule fails, and a target that holds any record
/// without a saved progress of this very copy (a stage already in use, or seeded). Refused at
/// the end: a source that changed since the copy began (a process still ran on it). A target
/// that does not read back what the source holds sends the next run through every part again,
/// writing what is missing.
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
    let target_identity = target.identity().await?;
    let mut progress = match store.load()? {
        Some(progress) if progress.target != target_identity => {
            return Err(Error::validation(
                "target",
                format!(
                    "the progress file is of a copy into other tables ({}), not these ({}): \
                     delete it to start a new copy",
                    progress.target, target_identity
                ),
            ));
        }
        Some(progress) => progress,
        None => {
            let as_of = clock.now();
            let survey = survey_source(source, as_of).await?;
            survey.census.money_rule()?;
            if !survey_target(target, as_of).await?.census.is_empty() {
                return Err(Error::validation(
                    "target",
                    "the stage already holds data: move into a stage whose tables are new \
                     (bootstrapped with --empty, and no admin created yet)",
                ));
            }
            let progress = Progress {
                part: Some(Part::ALL[0]),
                as_of,
                source: survey.census,
                source_digests: survey.digests,
                target: target_identity,
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
        verify_source_unchanged(source, &progress).await?;
        if let Err(differences) = verify_target(source, target, clock.now()).await? {
            let differences = differences.join("; ");
            if progress.repass {
                return Err(Error::validation(
                    "target",
                    format!(
                        "the stage holds records that differ from the machine's even after \
                         copying every part again ({differences}): something else writes to \
                         it (a reconciler running?). Start over with new stage tables and \
                         without the progress file"
                    ),
                ));
            }
            progress.part = Some(Part::ALL[0]);
            progress.repass = true;
            store.save(&progress)?;
            return Err(Error::validation(
                "target",
                format!(
                    "the stage does not hold what the machine holds ({differences}): run the \
                     command again, it copies every part once more and writes what is missing"
                ),
            ));
        }
        progress.verified = true;
        store.save(&progress)?;
    }
    Ok(progress)
}

/// What one side holds, from one read of every part: its census and each part's digest.
#[derive(Default)]
struct Survey {
    census: Census,
    digests: BTreeMap<Part, Digest>,
}

impl Survey {
    fn add(&mut self, part: Part, record: &Record) {
        self.census.add(part, record);
        self.digests.entry(part).or_default().add(record);
    }
}

/// Every part of the source, page by page.
async fn survey_source(source: &dyn MigrationSource, live_at: DateTime<Utc>) -> Result<Survey> {
    let mut survey = Survey::default();
    for part in Part::ALL {
        let mut after = None;
        loop {
            let page = source
                .export(part, after.as_deref(), MIGRATION_PAGE, live_at)
                .await?;
            for record in &page.records {
                survey.add(part, record);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(survey)
}

/// Every part of the target, as it reads it back.
async fn survey_target(target: &dyn MigrationTarget, live_at: DateTime<Utc>) -> Result<Survey> {
    let mut survey = Survey::default();
    for part in Part::ALL {
        for record in target.records(part, live_at).await? {
            survey.add(part, &record);
        }
    }
    Ok(survey)
}

/// The source holds exactly what it held when the copy began: no part's digest moved.
async fn verify_source_unchanged(source: &dyn MigrationSource, progress: &Progress) -> Result<()> {
    let now = survey_source(source, progress.as_of).await?.digests;
    let changed: Vec<String> = Part::ALL
        .iter()
        .filter(|part| now.get(part) != progress.source_digests.get(part))
        .map(|part| part.to_string())
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    Err(Error::validation(
        "source",
        format!(
            "the machine changed while it was copied ({}): stop every giftify process on it, \
             then start over with new stage tables and without the progress file",
            changed.join(", ")
        ),
    ))
}

/// Both sides count the same records and money at `now`, every part reads back from the
/// target with the digest it has in the source, and the money rule holds on the target.
/// `Ok(Err(differences))` when they disagree.
async fn verify_target(
    source: &dyn MigrationSource,
    target: &dyn MigrationTarget,
    now: DateTime<Utc>,
) -> Result<std::result::Result<(), Vec<String>>> {
    let (source, copied) = (
        survey_source(source, now).await?,
        survey_target(target, now).await?,
    );
    let mut differences = source.census.differences(&copied.census);
    for part in Part::ALL {
        if source.digests.get(&part) != copied.digests.get(&part) {
            differences.push(format!("{part}: the records read back differ"));
        }
    }
    if differences.is_empty() {
        copied.census.money_rule()?;
        Ok(Ok(()))
    } else {
        Ok(Err(differences))
    }
}
