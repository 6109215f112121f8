//! The audit log: appended in any order, read back newest first within a time range and below
//! a cursor, across days; an entry recorded twice keeps its first form.

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use giftify_shared::audit::{Actor, AuditAction, AuditEntry};
use giftify_shared::ids::{AuditId, UserId};
use giftify_shared::ports::Ports;
use serde_json::json;

fn ids(entries: &[AuditEntry]) -> Vec<&AuditId> {
    entries.iter().map(|e| &e.id).collect()
}

pub async fn the_audit_log_reads_back_newest_first_across_days_and_never_rewrites(
    ports: &Ports,
) -> Result<()> {
    // A minute before midnight, long ago: the entries span three UTC days, alone in the log.
    let base: DateTime<Utc> = "2001-03-01T23:59:30Z".parse()?;
    let admin = Actor::Admin(UserId::generate());
    let entry = |at: DateTime<Utc>, action: AuditAction, subject: &str| {
        AuditEntry::new(at, &admin, action, subject).after(json!({ "n": subject }))
    };
    let oldest = entry(base - Duration::days(2), AuditAction::ProductCreated, "a");
    let before_midnight = entry(base, AuditAction::VariantCreated, "b");
    let after_midnight = entry(
        base + Duration::seconds(45),
        AuditAction::InventoryChanged,
        "c",
    );
    let newest = entry(
        base + Duration::seconds(50),
        AuditAction::OrderRefunded,
        "d",
    );
    for e in [&newest, &oldest, &after_midnight, &before_midnight] {
        ports.audit.record_audit(e).await?;
    }
    let rewritten = before_midnight.clone().after(json!({ "n": "changed" }));
    ports.audit.record_audit(&rewritten).await?;

    let (from, to) = (base - Duration::days(10), base + Duration::days(1));
    let all = ports.audit.audit_slice(from, to, None, 10).await?;
    assert_eq!(
        ids(&all),
        vec![
            &newest.id,
            &after_midnight.id,
            &before_midnight.id,
            &oldest.id
        ]
    );
    assert_eq!(
        all,
        vec![
            newest.clone(),
            after_midnight.clone(),
            before_midnight.clone(),
            oldest.clone()
        ],
        "the first form is kept"
    );

    assert_eq!(
        ids(&ports.audit.audit_slice(from, to, None, 2).await?),
        vec![&newest.id, &after_midnight.id]
    );
    assert_eq!(
        ids(&ports
            .audit
            .audit_slice(from, to, Some(&after_midnight.id), 10)
            .await?),
        vec![&before_midnight.id, &oldest.id]
    );
    assert_eq!(
        ids(&ports
            .audit
            .audit_slice(from, to, Some(&before_midnight.id), 1)
            .await?),
        vec![&oldest.id]
    );
    let narrow = ports
        .audit
        .audit_slice(base - Duration::days(1), newest.at, None, 10)
        .await?;
    assert_eq!(
        ids(&narrow),
        vec![&after_midnight.id, &before_midnight.id],
        "from is inclusive, to exclusive"
    );
    assert!(
        ports
            .audit
            .audit_slice(base + Duration::days(5), base + Duration::days(6), None, 10)
            .await?
            .is_empty()
    );
    Ok(())
}
