//! The audit log: who did what to what, when, with the values before and after — every admin's
//! and operator's action, and the reconciler's refunds. Entries are appended, never changed or
//! removed, and are written by the core after the action commits (see [`crate::Giftify`]'s
//! `audit`), so every backend records the same entry for the same action.

use crate::ids::{AuditId, UserId};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in admin, over the API.
    Admin(UserId),
    /// Someone with the machine or the AWS credentials, through the `giftify` command line.
    Operator,
    /// The reconciler, on its own schedule.
    Reconciler,
}

impl Actor {
    /// The stored and shown form: the admin's user id, `cli` or `reconciler`.
    pub fn parse(raw: &str) -> Option<Actor> {
        match raw {
            "cli" => Some(Actor::Operator),
            "reconciler" => Some(Actor::Reconciler),
            id => UserId::parse(id).ok().map(Actor::Admin),
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Admin(user) => write!(f, "{user}"),
            Actor::Operator => f.write_str("cli"),
            Actor::Reconciler => f.write_str("reconciler"),
        }
    }
}

macro_rules! actions {
    ($($variant:ident => $name:literal,)+) => {
        /// What was done. The names are stable: filters and reports use them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($variant,)+
        }

        impl AuditAction {
            pub const ALL: &[AuditAction] = &[$(AuditAction::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $name,)+
                }
            }

            pub fn parse(raw: &str) -> Option<AuditAction> {
                Self::ALL.iter().copied().find(|action| action.as_str() == raw)
            }
        }
    };
}

actions! {
    ProductCreated => "product.created",
    ProductChanged => "product.changed",
    VariantCreated => "variant.created",
    InventoryChanged => "inventory.changed",
    CodesImported => "codes.imported",
    CodeBatchVoided => "code_batch.voided",
    WebhookCreated => "webhook.created",
    WebhookChanged => "webhook.changed",
    WebhookSecretRotated => "webhook.secret_rotated",
    WebhookDeleted => "webhook.deleted",
    WebhookDeliveryRetried => "webhook.delivery_retried",
    WebhookRecovered => "webhook.recovered",
    DeadLetterRedriven => "dead_letter.redriven",
    DeadLetterDeleted => "dead_letter.deleted",
    OrderRefunded => "order.refunded",
    AdminAccountSetUp => "admin.set_up",
    UserSuspended => "user.suspended",
    UserReactivated => "user.reactivated",
    BalanceAdjusted => "wallet.adjusted",
}

/// One entry: `subject` is the id of what changed (an order, a variant, an endpoint, a dead
/// letter's message); `before` and `after` are its values as the API shows them, absent for
/// what did not exist before or does not after.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: AuditAction,
    pub subject: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// The stored form, the same on every backend.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredEntry {
    id: AuditId,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<serde_json::Value>,
}

impl AuditEntry {
    /// A new entry at `at`; its id sorts with its time.
    pub fn new(
        at: DateTime<Utc>,
        actor: &Actor,
        action: AuditAction,
        subject: impl Into<String>,
    ) -> Self {
        AuditEntry {
            id: AuditId::at(at),
            at,
            actor: actor.clone(),
            action,
            subject: subject.into(),
            before: None,
            after: None,
        }
    }

    pub fn before(mut self, value: impl Serialize) -> Self {
        self.before = serde_json::to_value(value).ok();
        self
    }

    pub fn after(mut self, value: impl Serialize) -> Self {
        self.after = serde_json::to_value(value).ok();
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&StoredEntry {
            id: self.id.clone(),
            at: self.at,
            actor: self.actor.to_string(),
            action: self.action.as_str().to_string(),
            subject: self.subject.clone(),
            before: self.before.clone(),
            after: self.after.clone(),
        })
        .unwrap_or_else(|_| "{}".into())
    }

    /// # Errors
    /// [`Error::Internal`] for text that is no stored entry.
    pub fn from_json(raw: &str) -> Result<Self> {
        let stored: StoredEntry =
            serde_json::from_str(raw).map_err(|e| Error::Internal(e.into()))?;
        Ok(AuditEntry {
            id: stored.id,
            at: stored.at,
            actor: Actor::parse(&stored.actor)
                .ok_or_else(|| Error::internal("a stored audit actor does not parse"))?,
            action: AuditAction::parse(&stored.action)
                .ok_or_else(|| Error::internal("a stored audit action does not parse"))?,
            subject: stored.subject,
            before: stored.before,
            after: stored.after,
        })
    }
}

/// What an admin asks of the log: a time range, optional filters, and where the last page
/// ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    /// Inclusive.
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
    pub actor: Option<Actor>,
    pub action: Option<AuditAction>,
    pub subject: Option<String>,
    /// Entries older than this one (the cursor of the last page).
    pub before: Option<AuditId>,
    pub limit: u32,
}

impl AuditQuery {
    /// Longest range one query may span: on DynamoDB each day is a partition to read.
    pub const MAX_RANGE: chrono::Duration = chrono::Duration::days(92);

    /// # Errors
    /// [`Error::Validation`] for an empty or reversed range, or one longer than
    /// [`Self::MAX_RANGE`].
    pub fn check(&self) -> Result<()> {
        if self.from >= self.to {
            return Err(Error::validation("from", "from must be before to"));
        }
        if self.to - self.from > Self::MAX_RANGE {
            return Err(Error::validation(
                "from",
                "the range may span at most 92 days",
            ));
        }
        Ok(())
    }

    pub fn matches(&self, entry: &AuditEntry) -> bool {
        entry.at >= self.from
            && entry.at < self.to
            && self.actor.as_ref().is_none_or(|a| *a == entry.actor)
            && self.action.is_none_or(|a| a == entry.action)
            && self.subject.as_ref().is_none_or(|s| *s == entry.subject)
            && self.before.as_ref().is_none_or(|b| entry.id < *b)
    }
}

/// One page of matching entries, newest first. `next` is the cursor of the next page when the
/// log may hold more: a page is also cut short after a bounded number of entries read, so a
/// narrow filter over a busy range answers promptly and goes on from `next`.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next: Option<AuditId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_survives_its_stored_form() {
        let at = DateTime::parse_from_rfc3339("2026-12-07T10:00:00.123Z")
            .expect("time")
            .with_timezone(&Utc);
        let admin = Actor::Admin(UserId::generate());
        let entry = AuditEntry::new(at, &admin, AuditAction::InventoryChanged, "var_x")
            .before(serde_json::json!({"stock": 1}))
            .after(serde_json::json!({"stock": 2}));
        assert_eq!(
            AuditEntry::from_json(&entry.to_json()).expect("parses"),
            entry
        );
        assert_eq!(entry.id.time(), at);
        for actor in [admin, Actor::Operator, Actor::Reconciler] {
            assert_eq!(Actor::parse(&actor.to_string()), Some(actor));
        }
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(*action));
        }
    }

    #[test]
    fn a_query_matches_its_range_filters_and_cursor() {
        let t = Utc::now();
        let entry = AuditEntry::new(t, &Actor::Operator, AuditAction::OrderRefunded, "order_1");
        let query = AuditQuery {
            from: t - chrono::Duration::hours(1),
            to: t + chrono::Duration::hours(1),
            actor: None,
            action: None,
            subject: None,
            before: None,
            limit: 10,
        };
        assert!(query.matches(&entry));
        let narrow = |q: AuditQuery| q.matches(&entry);
        assert!(!narrow(AuditQuery {
            actor: Some(Actor::Reconciler),
            ..query.clone()
        }));
        assert!(!narrow(AuditQuery {
            action: Some(AuditAction::CodesImported),
            ..query.clone()
        }));
        assert!(!narrow(AuditQuery {
            subject: Some("order_2".into()),
            ..query.clone()
        }));
        assert!(!narrow(AuditQuery {
            before: Some(entry.id.clone()),
            ..query.clone()
        }));
        assert!(!narrow(AuditQuery {
            to: t,
            ..query.clone()
        }));
        assert!(query.check().is_ok());
        assert!(
            AuditQuery {
                to: query.from,
                ..query.clone()
            }
            .check()
            .is_err()
        );
        assert!(
            AuditQuery {
                from: t - chrono::Duration::days(93),
                ..query
            }
            .check()
            .is_err()
        );
    }
}
