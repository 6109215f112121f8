//! Managing webhook endpoints, and dispatching their deliveries: written once for both
//! dispatchers (the embedded loop and the cloud Lambda), which differ only in what wakes them
//! ([`crate::ports::DeliveryWakeups`]).
//!
//! A dispatch is at least once and safe to repeat: opening a delivery is idempotent per
//! endpoint and event, and an attempt first claims the delivery with a conditional write, so
//! of two dispatchers woken for one delivery only one posts it.

use super::Giftify;
use crate::audit::{Actor, AuditAction, AuditEntry};
use crate::events::{Feed, FeedCursor};
use crate::ids::{UserId, WebhookDeliveryId, WebhookEndpointId};
use crate::ports::SignedPost;
use crate::wallet::{Page, PageRequest};
use crate::webhooks::{
    ALL_EVENT_TYPES, DEFAULT_ROTATION_OVERLAP, DeliveryAttempt, DeliveryState, EndpointDisabled,
    EndpointPatch, EndpointSettings, Health, MAX_ENDPOINTS, Outgoing, WebhookDelivery,
    WebhookEndpoint, check_description, check_event_types, check_url, generate_secret, signature,
};
use crate::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};

/// How long a claimed delivery stays hidden from other dispatchers: well above the send
/// timeout, so only a crashed attempt is ever taken over.
pub const CLAIM_LEASE: Duration = Duration::seconds(60);
/// Tries of a read-modify-write that lost a race before giving up.
const CHANGE_TRIES: usize = 5;
/// Events of the feed read per page while recovering.
const RECOVER_PAGE: u32 = 100;
/// The most events one recover step re-sends (each a few writes and a wake-up).
pub const RECOVER_SENDS: usize = 100;
/// The most feed events one recover step reads.
pub const RECOVER_READS: usize = 2_000;

/// What one recover step did, and where the next starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    pub recovered: usize,
    /// The feed cursor to pass as `after` to go on.
    pub next: String,
    /// Whether the feed has events after `next` (another step may find more to send).
    pub has_more: bool,
}

/// What one dispatch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dispatched {
    /// POSTs made.
    pub attempted: usize,
    /// Of which answered 2xx.
    pub delivered: usize,
}

impl Dispatched {
    fn add(&mut self, attempted: Option<&WebhookDelivery>) {
        if let Some(delivery) = attempted {
            self.attempted += 1;
            if delivery.state == DeliveryState::Delivered {
                self.delivered += 1;
            }
        }
    }
}

/// An endpoint's values as the audit log keeps them: never a secret.
fn endpoint_values(endpoint: &WebhookEndpoint) -> serde_json::Value {
    json!({
        "url": endpoint.url,
        "eventTypes": endpoint.event_types,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
    })
}

impl Giftify {
    /// A new endpoint; its secret is in the answer only.
    /// # Errors
    /// [`Error::Validation`] for a bad field, or at [`MAX_ENDPOINTS`].
    pub async fn create_webhook(
        &self,
        admin: &UserId,
        url: &str,
        event_types: &[String],
        description: &str,
        enabled: bool,
    ) -> Result<(WebhookEndpoint, SecretString)> {
        let settings = EndpointSettings {
            url: check_url(url)?,
            event_types: check_event_types(event_types)?,
            description: check_description(description)?,
            enabled,
        };
        if self.ports.webhooks.endpoints().await?.len() >= MAX_ENDPOINTS {
            return Err(Error::validation(
                "webhooks",
                format!("at most {MAX_ENDPOINTS} endpoints; delete one first"),
            ));
        }
        let secret = generate_secret();
        let endpoint = self
            .store_endpoint(
                WebhookEndpointId::generate(),
                settings,
                Some(admin),
                &secret,
                None,
            )
            .await?;
        self.audit(
            AuditEntry::new(
                self.now(),
                &Actor::Admin(admin.clone()),
                AuditAction::WebhookCreated,
                endpoint.id.as_str(),
            )
            .after(endpoint_values(&endpoint)),
        )
        .await;
        Ok((endpoint, SecretString::from(secret)))
    }

    async fn store_endpoint(
        &self,
        id: WebhookEndpointId,
        settings: EndpointSettings,
        admin: Option<&UserId>,
        secret: &str,
        environment_secret: Option<String>,
    ) -> Result<WebhookEndpoint> {
        let sealed = self.vault.seal_text(id.as_str(), secret)?;
        let mut endpoint = WebhookEndpoint::new(id, settings, sealed, admin, self.now());
        endpoint.environment_secret = environment_secret;
        self.ports.webhooks.create_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    /// Makes sure an endpoint for `url` signing with `secret` exists (the environment's
    /// bootstrap, run at every start): created for every event type when missing, and rotated
    /// to `secret` (the old one overlapping as usual) when the environment's secret changed
    /// since it last ensured it — never back over an admin's later rotation. Its id is derived
    /// from the URL, so two processes starting at once ensure the same endpoint.
    pub async fn ensure_webhook(
        &self,
        url: &str,
        secret: &SecretString,
    ) -> Result<WebhookEndpoint> {
        let url = check_url(url)?;
        let digest = Sha256::digest(url.as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        let id = WebhookEndpointId::parse(&format!(
            "{}{}",
            WebhookEndpointId::PREFIX,
            ulid::Ulid::from(u128::from_be_bytes(first))
        ))
        .map_err(|e| Error::Internal(e.into()))?;
        let fingerprint = self.vault.keyed_digest(
            format!("webhook-environment-secret/{id}/{}", secret.expose_secret()).as_bytes(),
        );
        for _ in 0..CHANGE_TRIES {
            let existing = match self.ports.webhooks.endpoint(&id).await {
                Ok(endpoint) => endpoint,
                Err(Error::NotFound(_)) => {
                    let settings = EndpointSettings {
                        url: url.clone(),
                        event_types: [ALL_EVENT_TYPES.to_string()].into(),
                        description: "ensured from GIFTIFY_WEBHOOK_URLS".into(),
                        enabled: true,
                    };
                    match self
                        .store_endpoint(
                            id.clone(),
                            settings,
                            None,
                            secret.expose_secret(),
                            Some(fingerprint.clone()),
                        )
                        .await
                    {
                        Ok(endpoint) => return Ok(endpoint),
                        Err(Error::Conflict(_)) => continue,
                        Err(error) => return Err(error),
                    }
                }
                Err(error) => return Err(error),
            };
            if existing.environment_secret.as_deref() == Some(fingerprint.as_str()) {
                return Ok(existing);
            }
            let now = self.now();
            let sealed = self.vault.seal_text(id.as_str(), secret.expose_secret())?;
            let mut rotated = existing.rotated(sealed, DEFAULT_ROTATION_OVERLAP, now)?;
            rotated.environment_secret = Some(fingerprint.clone());
            match self.ports.webhooks.save_endpoint(&rotated).await {
                Ok(()) => return Ok(rotated),
                Err(Error::Conflict(_)) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(Error::Conflict("webhook endpoint"))
    }

    pub async fn webhooks(&self) -> Result<Vec<WebhookEndpoint>> {
        self.ports.webhooks.endpoints().await
    }

    pub async fn webhook(&self, id: &WebhookEndpointId) -> Result<WebhookEndpoint> {
        self.ports.webhooks.endpoint(id).await
    }

    /// Reads, changes and saves the endpoint, again with fresh data when another change came
    /// first.
    async fn change_endpoint(
        &self,
        id: &WebhookEndpointId,
        change: impl Fn(&WebhookEndpoint, DateTime<Utc>) -> Result<WebhookEndpoint>,
    ) -> Result<(WebhookEndpoint, WebhookEndpoint)> {
        for _ in 0..CHANGE_TRIES {
            let before = self.ports.webhooks.endpoint(id).await?;
            let changed = change(&before, self.now())?;
            match self.ports.webhooks.save_endpoint(&changed).await {
                Ok(()) => return Ok((before, changed)),
                Err(Error::Conflict(_)) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(Error::Conflict("webhook endpoint"))
    }

    /// # Errors
    /// [`Error::Validation`] for a bad field; [`Error::NotFound`] for an unknown endpoint.
    pub async fn update_webhook(
        &self,
        admin: &UserId,
        id: &WebhookEndpointId,
        patch: &EndpointPatch,
    ) -> Result<WebhookEndpoint> {
        let (before, endpoint) = self
            .change_endpoint(id, |endpoint, now| endpoint.patched(patch, now))
            .await?;
        self.audit(
            AuditEntry::new(
                endpoint.updated_at,
                &Actor::Admin(admin.clone()),
                AuditAction::WebhookChanged,
                id.as_str(),
            )
            .before(endpoint_values(&before))
            .after(endpoint_values(&endpoint)),
        )
        .await;
        Ok(endpoint)
    }

    /// A new current secret, in the answer only; the old ones sign on for `overlap`
    /// (default [`DEFAULT_ROTATION_OVERLAP`]).
    pub async fn rotate_webhook_secret(
        &self,
        admin: &UserId,
        id: &WebhookEndpointId,
        overlap: Option<Duration>,
    ) -> Result<(WebhookEndpoint, SecretString)> {
        let secret = generate_secret();
        let sealed = self.vault.seal_text(id.as_str(), &secret)?;
        let overlap = overlap.unwrap_or(DEFAULT_ROTATION_OVERLAP);
        let (_, endpoint) = self
            .change_endpoint(id, |endpoint, now| {
                endpoint.rotated(sealed.clone(), overlap, now)
            })
            .await?;
        // Never the secret: when it was made and how long the old ones overlap.
        self.audit(
            AuditEntry::new(
                endpoint.updated_at,
                &Actor::Admin(admin.clone()),
                AuditAction::WebhookSecretRotated,
                id.as_str(),
            )
            .after(json!({ "overlapSeconds": overlap.num_seconds() })),
        )
        .await;
        Ok((endpoint, SecretString::from(secret)))
    }

    pub async fn delete_webhook(&self, admin: &UserId, id: &WebhookEndpointId) -> Result<()> {
        let before = self.ports.webhooks.endpoint(id).await?;
        self.ports.webhooks.delete_endpoint(id).await?;
        self.audit(
            AuditEntry::new(
                self.now(),
                &Actor::Admin(admin.clone()),
                AuditAction::WebhookDeleted,
                id.as_str(),
            )
            .before(endpoint_values(&before)),
        )
        .await;
        Ok(())
    }

    /// The endpoint's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        id: &WebhookEndpointId,
        state: Option<DeliveryState>,
        page: PageRequest,
    ) -> Result<Page<WebhookDelivery>> {
        self.ports.webhooks.endpoint(id).await?;
        self.ports.webhooks.deliveries(id, state, page).await
    }

    /// One of the endpoint's deliveries.
    pub async fn webhook_delivery(
        &self,
        id: &WebhookEndpointId,
        delivery: &WebhookDeliveryId,
    ) -> Result<WebhookDelivery> {
        self.ports.webhooks.endpoint(id).await?;
        self.ports.webhooks.delivery(id, delivery).await
    }

    async fn enabled_endpoint(&self, id: &WebhookEndpointId) -> Result<WebhookEndpoint> {
        let endpoint = self.ports.webhooks.endpoint(id).await?;
        if !endpoint.enabled {
            return Err(Error::validation(
                "enabled",
                "the endpoint is disabled; enable it first",
            ));
        }
        Ok(endpoint)
    }

    /// Sends the delivery again now, from the start of the retry schedule, whatever its state.
    /// # Errors
    /// [`Error::NotFound`] for an unknown endpoint or delivery; [`Error::Validation`] when the
    /// endpoint is disabled.
    pub async fn retry_webhook_delivery(
        &self,
        admin: &UserId,
        id: &WebhookEndpointId,
        delivery: &WebhookDeliveryId,
    ) -> Result<WebhookDelivery> {
        self.enabled_endpoint(id).await?;
        for _ in 0..CHANGE_TRIES {
            let replayed = self
                .ports
                .webhooks
                .delivery(id, delivery)
                .await?
                .replayed(self.now());
            match self.ports.webhooks.save_delivery(&replayed).await {
                Ok(()) => {
                    self.ports
                        .wakeups
                        .wake_at(&replayed, replayed.updated_at)
                        .await?;
                    self.audit(
                        AuditEntry::new(
                            replayed.updated_at,
                            &Actor::Admin(admin.clone()),
                            AuditAction::WebhookDeliveryRetried,
                            delivery.as_str(),
                        )
                        .after(json!({ "webhookId": id })),
                    )
                    .await;
                    return Ok(replayed);
                }
                Err(Error::Conflict(_)) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(Error::Conflict("webhook delivery"))
    }

    /// Sends the events of the endpoint's types that occurred at or after `since` again, in
    /// feed order, a bounded step at a time (at most [`RECOVER_SENDS`] sent and
    /// [`RECOVER_READS`] read per call, so a call ends well inside a request's time): the
    /// answer says where the next step starts. The first step reads the feed from its start.
    /// # Errors
    /// [`Error::Validation`] for a `since` in the future, a cursor that is not one of the feed
    /// of all events, or a disabled endpoint.
    pub async fn recover_webhook(
        &self,
        admin: &UserId,
        id: &WebhookEndpointId,
        since: DateTime<Utc>,
        after: Option<&str>,
    ) -> Result<Recovery> {
        let endpoint = self.enabled_endpoint(id).await?;
        // A client's clock may run a little ahead of ours; further ahead is a mistake.
        if since > self.now() + Duration::minutes(5) {
            return Err(Error::validation("since", "must not be in the future"));
        }
        let mut cursor = match after {
            Some(raw) => FeedCursor::parse(raw, &Feed::All)?,
            None => FeedCursor::start(&Feed::All),
        };
        let (mut recovered, mut read, mut has_more) = (0, 0, true);
        'pages: while has_more && read < RECOVER_READS && recovered < RECOVER_SENDS {
            let page = self
                .ports
                .feed
                .feed(&Feed::All, cursor, RECOVER_PAGE)
                .await?;
            has_more = page.has_more;
            let start = cursor.position;
            for (i, event) in page.events.iter().enumerate() {
                if read >= RECOVER_READS || recovered >= RECOVER_SENDS {
                    has_more = true;
                    break 'pages;
                }
                if event.occurred_at() >= since && endpoint.wants(event.event_type()) {
                    self.resend(&endpoint.id, &Outgoing::from(event)).await?;
                    recovered += 1;
                }
                read += 1;
                cursor.position = start + i as u64 + 1;
            }
            cursor = page.next;
        }
        self.audit(
            AuditEntry::new(
                self.now(),
                &Actor::Admin(admin.clone()),
                AuditAction::WebhookRecovered,
                id.as_str(),
            )
            .after(json!({ "since": since, "recovered": recovered, "hasMore": has_more })),
        )
        .await;
        Ok(Recovery {
            recovered,
            next: cursor.encode(),
            has_more,
        })
    }

    /// Opens the delivery, or replays the one opened before, and wakes a dispatcher for it.
    async fn resend(&self, endpoint: &WebhookEndpointId, outgoing: &Outgoing) -> Result<()> {
        let now = self.now();
        let fresh = WebhookDelivery::open(endpoint, outgoing, now);
        let mut delivery = self.ports.webhooks.open_delivery(&fresh).await?;
        for _ in 0..CHANGE_TRIES {
            if delivery.id == fresh.id || delivery.is_due(now) {
                return self.ports.wakeups.wake_at(&delivery, now).await;
            }
            let replayed = delivery.replayed(now);
            match self.ports.webhooks.save_delivery(&replayed).await {
                Ok(()) => return self.ports.wakeups.wake_at(&replayed, now).await,
                Err(Error::Conflict(_)) => {
                    delivery = self.ports.webhooks.delivery(endpoint, &delivery.id).await?;
                }
                Err(error) => return Err(error),
            }
        }
        Err(Error::Conflict("webhook delivery"))
    }

    /// Delivers `outgoing` to every enabled endpoint that wants it: opens each delivery once,
    /// attempts the due ones now, and wakes a dispatcher for the rest when they come due.
    pub async fn dispatch(&self, outgoing: &Outgoing) -> Result<Dispatched> {
        let opened = self.open_deliveries(outgoing, None).await?;
        // At once: one slow endpoint (up to the send timeout) must not hold up the others.
        let outcomes = futures_util::future::join_all(
            opened
                .into_iter()
                .map(|delivery| self.dispatch_one(delivery)),
        )
        .await;
        let mut done = Dispatched::default();
        for outcome in outcomes {
            done.add(outcome?.as_ref());
        }
        Ok(done)
    }

    /// Opens the delivery of `outgoing` to every enabled endpoint that wants it (but
    /// `except`), once each: the ones opened before are answered as they stand.
    pub async fn open_deliveries(
        &self,
        outgoing: &Outgoing,
        except: Option<&WebhookEndpointId>,
    ) -> Result<Vec<WebhookDelivery>> {
        let mut opened = Vec::new();
        for endpoint in self.ports.webhooks.endpoints().await? {
            if !endpoint.enabled
                || !endpoint.wants(&outgoing.event_type)
                || Some(&endpoint.id) == except
            {
                continue;
            }
            let fresh = WebhookDelivery::open(&endpoint.id, outgoing, self.now());
            opened.push(self.ports.webhooks.open_delivery(&fresh).await?);
        }
        Ok(opened)
    }

    /// Attempts one delivery if it is due; a pending one not yet due has a dispatcher woken
    /// for it (a wake-up that came early, or an event delivered twice).
    pub async fn dispatch_delivery(
        &self,
        endpoint: &WebhookEndpointId,
        delivery: &WebhookDeliveryId,
    ) -> Result<Dispatched> {
        let mut done = Dispatched::default();
        match self.ports.webhooks.delivery(endpoint, delivery).await {
            Ok(delivery) => done.add(self.dispatch_one(delivery).await?.as_ref()),
            // Deleted with its endpoint: nothing to send.
            Err(Error::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
        Ok(done)
    }

    async fn dispatch_one(&self, delivery: WebhookDelivery) -> Result<Option<WebhookDelivery>> {
        if delivery.is_due(self.now()) {
            return self.attempt_delivery(delivery).await;
        }
        if let (DeliveryState::Pending, Some(at)) = (delivery.state, delivery.next_attempt_at) {
            self.ports.wakeups.wake_at(&delivery, at).await?;
        }
        Ok(None)
    }

    /// One attempt at a due delivery, as the claim holder; `None` when another dispatcher
    /// claimed it first.
    pub async fn attempt_delivery(
        &self,
        delivery: WebhookDelivery,
    ) -> Result<Option<WebhookDelivery>> {
        let sender = self
            .ports
            .webhook_sender
            .clone()
            .ok_or_else(|| Error::internal("this process does not post webhooks"))?;
        let started = self.now();
        let claimed = delivery.claimed(started, CLAIM_LEASE);
        match self.ports.webhooks.save_delivery(&claimed).await {
            Ok(()) => {}
            Err(Error::Conflict(_)) => return Ok(None),
            Err(error) => return Err(error),
        }
        let endpoint = match self.ports.webhooks.endpoint(&claimed.endpoint_id).await {
            Ok(endpoint) => Some(endpoint),
            Err(Error::NotFound(_)) => None,
            Err(error) => return Err(error),
        };
        let Some(endpoint) = endpoint.filter(|e| e.enabled) else {
            let skipped = claimed.skipped("the endpoint is disabled or deleted", started);
            self.ports.webhooks.save_delivery(&skipped).await?;
            return Ok(None);
        };
        let secrets = endpoint
            .signing_secrets(started)
            .map(|s| self.vault.open_text(endpoint.id.as_str(), &s.sealed))
            .collect::<Result<Vec<_>>>()?;
        let secrets: Vec<&[u8]> = secrets
            .iter()
            .map(|s| s.expose_secret().as_bytes())
            .collect();
        let post = SignedPost {
            url: endpoint.url.clone(),
            event_id: claimed.event_id.clone(),
            event_type: claimed.event_type.clone(),
            delivery_id: claimed.id.clone(),
            signature: signature(&secrets, started.timestamp(), claimed.body.as_bytes())?,
            body: claimed.body.clone(),
        };
        let outcome = sender.post(&post).await;
        let attempt = DeliveryAttempt::new(
            started,
            outcome.http_status,
            outcome.latency_ms,
            outcome.error,
        );
        let succeeded = attempt.succeeded();
        let attempted = self.record_attempt(claimed, attempt).await?;
        match (attempted.state, attempted.next_attempt_at) {
            (DeliveryState::Pending, Some(at)) => {
                tracing::info!(delivery_id = %attempted.id, endpoint_id = %endpoint.id, attempt = attempted.cycle_attempts, "webhook delivery failed; will retry");
                self.ports.wakeups.wake_at(&attempted, at).await?;
            }
            (DeliveryState::Failed, _) => {
                tracing::warn!(delivery_id = %attempted.id, endpoint_id = %endpoint.id, "webhook delivery failed for the last time of its cycle");
            }
            _ => {}
        }
        if let Err(error) = self.record_health(&endpoint.id, succeeded).await {
            tracing::warn!(endpoint_id = %endpoint.id, error = %super::error_chain(&error), "recording the endpoint's health failed; the next attempt records it");
        }
        Ok(Some(attempted))
    }

    /// Records the attempt on the delivery. An admin's retry or recover may have replayed it
    /// while the POST was under way: the attempt then counts for the replayed delivery (a
    /// success delivers it, so it is not posted twice).
    async fn record_attempt(
        &self,
        mut delivery: WebhookDelivery,
        attempt: DeliveryAttempt,
    ) -> Result<WebhookDelivery> {
        for _ in 0..CHANGE_TRIES {
            let attempted = delivery.attempted(attempt.clone(), self.now());
            match self.ports.webhooks.save_delivery(&attempted).await {
                Ok(()) => return Ok(attempted),
                Err(Error::Conflict(_)) => {
                    delivery = self
                        .ports
                        .webhooks
                        .delivery(&delivery.endpoint_id, &delivery.id)
                        .await?;
                }
                Err(error) => return Err(error),
            }
        }
        Err(Error::Conflict("webhook delivery"))
    }

    /// Notes that the endpoint failed or recovered; disables it once it failed for
    /// [`crate::Rules::webhook_disable_after`], and tells the others.
    async fn record_health(&self, id: &WebhookEndpointId, succeeded: bool) -> Result<()> {
        for _ in 0..CHANGE_TRIES {
            let endpoint = self.ports.webhooks.endpoint(id).await?;
            let (next, disabled) = match endpoint.after_attempt(
                succeeded,
                self.now(),
                self.rules.webhook_disable_after,
            ) {
                Health::Unchanged => return Ok(()),
                Health::Changed(next) => (next, false),
                Health::Disabled(next) => (next, true),
            };
            if disabled {
                // Announced before the endpoint is saved disabled, and under an id stable per
                // failing spell: should the save lose a race, or this process die, the next
                // failed attempt announces the same event again, so none is lost.
                self.announce_disabled(&EndpointDisabled::of(&next)).await?;
            }
            match self.ports.webhooks.save_endpoint(&next).await {
                Ok(()) => {
                    if disabled {
                        tracing::warn!(target: "audit", endpoint_id = %id, reason = next.disabled_reason.as_deref().unwrap_or_default(), "webhook endpoint disabled for failing");
                    }
                    return Ok(());
                }
                Err(Error::Conflict(_)) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(Error::Conflict("webhook endpoint"))
    }

    /// Opens the notice's delivery to every other enabled endpoint that wants it, for a
    /// dispatcher to send.
    async fn announce_disabled(&self, notice: &EndpointDisabled) -> Result<()> {
        let outgoing = Outgoing::from(notice);
        for delivery in self
            .open_deliveries(&outgoing, Some(&notice.endpoint_id))
            .await?
        {
            self.ports
                .wakeups
                .wake_at(&delivery, delivery.created_at)
                .await?;
        }
        Ok(())
    }
}
