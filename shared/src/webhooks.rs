//! Webhook endpoints as data, and the log of their deliveries.
//!
//! An admin registers an endpoint: a URL, the event types it wants, a description, and whether
//! it is enabled. Each endpoint has its own signing secret (`whsec_…`), shown once and stored
//! sealed under the card key ([`crate::vault::CardVault::seal_text`]): unlike an API key it must
//! be read back to sign. Rotating it keeps the old secret valid for an overlap, during which a
//! delivery carries one `v1=` signature per valid secret, newest first, as Stripe does:
//!
//! `Giftify-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=…]`
//!
//! Every event an endpoint wants becomes one [`WebhookDelivery`] of it, and every attempt at
//! it is logged with its time, HTTP status, latency and error. A delivery is retried on the
//! schedule of [`retry_delay`] up to [`MAX_ATTEMPTS`] attempts (about seven hours), then it is
//! `FAILED` — and still replayable. An endpoint whose deliveries keep failing for the
//! configured time is disabled, and an `endpoint.disabled` notice goes to the other endpoints.

use crate::ids::{UserId, WebhookDeliveryId, WebhookEndpointId};
use crate::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeSet;

/// At most this many endpoints per deployment.
pub const MAX_ENDPOINTS: usize = 50;
/// A URL is at most this many characters.
pub const MAX_URL_LEN: usize = 2_000;
/// A description is at most this many characters.
pub const MAX_DESCRIPTION_LEN: usize = 200;
/// Attempts per delivery cycle before it is `FAILED`: the 14 waits between them add up to
/// 6.4 hours nominal, 3.2 to 6.4 with the jitter.
pub const MAX_ATTEMPTS: u32 = 15;
/// The most recent attempts kept with a delivery; [`WebhookDelivery::attempt_count`] counts
/// them all.
pub const KEPT_ATTEMPTS: usize = 30;
/// The wait after the first failure; it doubles per attempt up to [`MAX_RETRY_DELAY`].
pub const FIRST_RETRY_DELAY: Duration = Duration::seconds(10);
pub const MAX_RETRY_DELAY: Duration = Duration::hours(1);
/// How long an old secret keeps signing after a rotation, unless the rotation says.
pub const DEFAULT_ROTATION_OVERLAP: Duration = Duration::hours(24);
/// The longest overlap a rotation may ask for.
pub const MAX_ROTATION_OVERLAP: Duration = Duration::days(7);
/// The most secrets that sign at once (the current one and two rotated out): each adds a
/// `v1=` to every delivery's header.
pub const MAX_SIGNING_SECRETS: usize = 3;
/// A failure this long after the previous one starts the endpoint's failing clock again: a
/// failing endpoint is retried at least hourly, so a longer silence means it saw no traffic,
/// not that it kept failing.
pub const QUIET_GAP: Duration = Duration::hours(2);
/// How stale the recorded last failure may get before a failure records it again (fewer
/// writes than one per failed attempt).
const FAILURE_NOTE_EVERY: Duration = Duration::minutes(10);
/// Longest error text kept with an attempt.
const MAX_ERROR_LEN: usize = 500;
/// What a secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// Sent when an endpoint is disabled for failing, to the endpoints that want it.
pub const ENDPOINT_DISABLED: &str = "endpoint.disabled";
/// An endpoint that wants every event type.
pub const ALL_EVENT_TYPES: &str = "*";

/// The event types an endpoint may ask for.
pub const EVENT_TYPES: [&str; 7] = [
    "order.fulfilled",
    "order.partially_fulfilled",
    "order.refunded",
    "order.cancelled",
    "gift_card.redeemed",
    "gift_card.returned",
    ENDPOINT_DISABLED,
];

/// The `Giftify-Signature` value for `body` sent at `timestamp` (unix seconds), with one `v1=`
/// per secret, in the order given.
pub fn signature<S: AsRef<[u8]>>(secrets: &[S], timestamp: i64, body: &[u8]) -> Result<String> {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_ref())
            .map_err(|_| Error::internal("a webhook secret cannot key HMAC-SHA256"))?;
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac.finalize().into_bytes()));
    }
    Ok(header)
}

/// The wait after `attempt` failures of a cycle: doubling from [`FIRST_RETRY_DELAY`], capped
/// at [`MAX_RETRY_DELAY`], with equal jitter so a subscriber's recovery is not met by a herd.
pub fn retry_delay(attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let nominal = FIRST_RETRY_DELAY
        .checked_mul(1 << exponent)
        .unwrap_or(MAX_RETRY_DELAY)
        .min(MAX_RETRY_DELAY);
    let half = nominal.num_milliseconds() / 2;
    let jitter = i64::from(rand::random::<u32>()) % (half + 1);
    Duration::milliseconds(half + jitter)
}

/// A fresh secret: `whsec_` and 32 random bytes, base64url.
pub fn generate_secret() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A signing secret as stored: sealed, and when it stops signing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSecret {
    /// The secret sealed under the card key, bound to the endpoint's id.
    pub sealed: String,
    pub created_at: DateTime<Utc>,
    /// `None` for the current secret; a rotated-out one signs until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointSecret")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl EndpointSecret {
    pub fn signs_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// What an admin gives for a new endpoint, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSettings {
    pub url: String,
    pub event_types: BTreeSet<String>,
    pub description: String,
    pub enabled: bool,
}

/// Checks a webhook URL: absolute `http(s)`, a host, no spaces or control characters, and no
/// credentials (they would be logged and shown in listings).
/// # Errors
/// [`Error::Validation`] naming `url`.
pub fn check_url(url: &str) -> Result<String> {
    let bad = |why: &str| Error::validation("url", why);
    let url = url.trim();
    if url.is_empty() || url.len() > MAX_URL_LEN {
        return Err(bad(&format!("must be 1 to {MAX_URL_LEN} characters")));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad("must be an absolute http:// or https:// URL"))?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("may not contain spaces or control characters"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad(
            "may not carry credentials; sign with the endpoint secret",
        ));
    }
    let (host, port) = match authority.strip_prefix('[') {
        // An IPv6 literal: `[::1]:8080`.
        Some(rest) => {
            let (address, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("must name a host"))?;
            if address.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("must name a valid IPv6 address"));
            }
            if !(after.is_empty() || after.starts_with(':')) {
                return Err(bad("must name a host"));
            }
            (address, after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !authority.starts_with('[') && (host.len() > 253 || !host.split('.').all(label_ok)) {
        return Err(bad("must name a host (letters, digits, dots and hyphens)"));
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(bad("must have a port between 1 and 65535"));
    }
    Ok(url.to_string())
}

/// Checks event type names: at least one, each known or `*`.
/// # Errors
/// [`Error::Validation`] naming `eventTypes`.
pub fn check_event_types(names: &[String]) -> Result<BTreeSet<String>> {
    if names.is_empty() {
        return Err(Error::validation(
            "eventTypes",
            "name at least one event type, or \"*\" for all",
        ));
    }
    names
        .iter()
        .map(|name| {
            if name == ALL_EVENT_TYPES || EVENT_TYPES.contains(&name.as_str()) {
                Ok(name.clone())
            } else {
                Err(Error::validation(
                    "eventTypes",
                    format!(
                        "unknown event type `{}`; known: {}, or \"*\"",
                        name.chars().take(60).collect::<String>(),
                        EVENT_TYPES.join(", ")
                    ),
                ))
            }
        })
        .collect()
}

/// Checks a description: at most [`MAX_DESCRIPTION_LEN`] characters, no control characters.
/// # Errors
/// [`Error::Validation`] naming `description`.
pub fn check_description(text: &str) -> Result<String> {
    if text.chars().count() > MAX_DESCRIPTION_LEN || text.chars().any(char::is_control) {
        return Err(Error::validation(
            "description",
            format!("at most {MAX_DESCRIPTION_LEN} characters, no control characters"),
        ));
    }
    Ok(text.trim().to_string())
}

/// A change an admin asks for; `None` leaves the field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// Where an endpoint stands after an attempt at one of its deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Nothing to record.
    Unchanged,
    /// Record this (it started failing, or recovered).
    Changed(WebhookEndpoint),
    /// It failed for too long: record this, disabled, and send the notice.
    Disabled(WebhookEndpoint),
}

/// A webhook endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub url: String,
    pub event_types: BTreeSet<String>,
    pub description: String,
    pub enabled: bool,
    /// Newest first; the first is the current one.
    pub secrets: Vec<EndpointSecret>,
    /// Since when every attempt failed; `None` while the last attempt succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// A recent failure (noted at most every few minutes), to tell a quiet endpoint from a
    /// failing one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_at: Option<DateTime<Utc>>,
    /// A keyed digest of the secret the environment ensured it with (`ensure_webhook`): the
    /// environment rotates the endpoint only when its own secret changes, never back over an
    /// admin's rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_secret: Option<String>,
    /// Why it was disabled, when Giftify disabled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// The admin who created it; `None` for the endpoint the environment ensures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Raised by one on every change; a save is conditional on it.
    pub version: u64,
}

impl WebhookEndpoint {
    /// A new endpoint with the given id and sealed current secret.
    pub fn new(
        id: WebhookEndpointId,
        settings: EndpointSettings,
        sealed_secret: String,
        created_by: Option<&UserId>,
        now: DateTime<Utc>,
    ) -> Self {
        WebhookEndpoint {
            id,
            url: settings.url,
            event_types: settings.event_types,
            description: settings.description,
            enabled: settings.enabled,
            secrets: vec![EndpointSecret {
                sealed: sealed_secret,
                created_at: now,
                expires_at: None,
            }],
            failing_since: None,
            last_failure_at: None,
            environment_secret: None,
            disabled_reason: None,
            created_by: created_by.cloned(),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// Whether events of this type go to the endpoint (enabled or not).
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.contains(ALL_EVENT_TYPES) || self.event_types.contains(event_type)
    }

    /// The secrets that sign at `now`, newest first.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> impl Iterator<Item = &EndpointSecret> {
        self.secrets.iter().filter(move |s| s.signs_at(now))
    }

    fn next_version(&self, now: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        next.version += 1;
        next.updated_at = now;
        next
    }

    /// The endpoint with the admin's changes. Enabling it clears its failure record, so it
    /// gets a fresh allowance before it can be disabled again.
    /// # Errors
    /// [`Error::Validation`] for a bad field.
    pub fn patched(&self, patch: &EndpointPatch, now: DateTime<Utc>) -> Result<Self> {
        let mut next = self.next_version(now);
        if let Some(url) = &patch.url {
            next.url = check_url(url)?;
        }
        if let Some(types) = &patch.event_types {
            next.event_types = check_event_types(types)?;
        }
        if let Some(description) = &patch.description {
            next.description = check_description(description)?;
        }
        if let Some(enabled) = patch.enabled {
            if enabled && !self.enabled {
                next.failing_since = None;
                next.last_failure_at = None;
                next.disabled_reason = None;
            }
            next.enabled = enabled;
        }
        Ok(next)
    }

    /// The endpoint with `sealed` as its current secret; the secrets that signed until now keep
    /// signing for `overlap` (or until they were due to stop, if sooner), and the expired
    /// ones are dropped.
    /// # Errors
    /// [`Error::Validation`] for an overlap outside 0 to [`MAX_ROTATION_OVERLAP`].
    pub fn rotated(&self, sealed: String, overlap: Duration, now: DateTime<Utc>) -> Result<Self> {
        if overlap < Duration::zero() || overlap > MAX_ROTATION_OVERLAP {
            return Err(Error::validation(
                "overlapSeconds",
                format!(
                    "must be between 0 and {} seconds",
                    MAX_ROTATION_OVERLAP.num_seconds()
                ),
            ));
        }
        let mut next = self.next_version(now);
        let until = now + overlap;
        next.secrets = std::iter::once(EndpointSecret {
            sealed,
            created_at: now,
            expires_at: None,
        })
        .chain(self.signing_secrets(now).map(|old| EndpointSecret {
            expires_at: Some(old.expires_at.map_or(until, |at| at.min(until))),
            ..old.clone()
        }))
        .filter(|s| s.signs_at(now))
        .take(MAX_SIGNING_SECRETS)
        .collect();
        Ok(next)
    }

    /// Where the endpoint stands after an attempt that `succeeded` at `now`, given how long
    /// it may fail before it is disabled. The failing clock starts at a failure and runs while
    /// failures keep coming; a success stops it, and so does a silence of [`QUIET_GAP`].
    pub fn after_attempt(
        &self,
        succeeded: bool,
        now: DateTime<Utc>,
        disable_after: Duration,
    ) -> Health {
        if succeeded {
            if self.failing_since.is_none() {
                return Health::Unchanged;
            }
            let mut next = self.next_version(now);
            next.failing_since = None;
            next.last_failure_at = None;
            return Health::Changed(next);
        }
        let previous = self.last_failure_at.or(self.failing_since);
        let since = match (self.failing_since, previous) {
            (Some(since), Some(last)) if now - last < QUIET_GAP => since,
            _ => {
                let mut next = self.next_version(now);
                next.failing_since = Some(now);
                next.last_failure_at = Some(now);
                return Health::Changed(next);
            }
        };
        if self.enabled && now - since >= disable_after {
            let mut next = self.next_version(now);
            next.enabled = false;
            next.last_failure_at = Some(now);
            next.disabled_reason = Some(format!(
                "every delivery failed since {} (more than {} s)",
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                disable_after.num_seconds()
            ));
            return Health::Disabled(next);
        }
        if previous.is_some_and(|last| now - last >= FAILURE_NOTE_EVERY) {
            let mut next = self.next_version(now);
            next.last_failure_at = Some(now);
            return Health::Changed(next);
        }
        Health::Unchanged
    }
}

/// What is sent when an endpoint is disabled for failing. It names the endpoint by id only:
/// its URL may carry a token, and the other endpoints may be other parties'.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointDisabled {
    /// Stable per failing spell: `evt_<endpoint ULID>_disabled_<failingSince, unix ms>`, so
    /// a notice announced again (a save that lost a race) is the same event.
    pub event_id: String,
    pub event_type: String,
    pub endpoint_id: WebhookEndpointId,
    pub reason: String,
    pub failing_since: Option<DateTime<Utc>>,
    pub occurred_at: DateTime<Utc>,
}

impl EndpointDisabled {
    pub fn of(endpoint: &WebhookEndpoint) -> Self {
        EndpointDisabled {
            event_id: format!(
                "evt_{}_disabled_{}",
                endpoint.id.ulid_part(),
                endpoint
                    .failing_since
                    .map_or(0, |since| since.timestamp_millis())
            ),
            event_type: ENDPOINT_DISABLED.to_string(),
            endpoint_id: endpoint.id.clone(),
            reason: endpoint.disabled_reason.clone().unwrap_or_default(),
            failing_since: endpoint.failing_since,
            occurred_at: endpoint.updated_at,
        }
    }
}

/// Something to deliver: an event's id, type and the exact JSON that is signed and sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub event_id: String,
    pub event_type: String,
    pub body: String,
}

impl From<&crate::events::Event> for Outgoing {
    fn from(event: &crate::events::Event) -> Self {
        Outgoing {
            event_id: event.event_id().to_string(),
            event_type: event.event_type().to_string(),
            body: event.to_json(),
        }
    }
}

impl From<&EndpointDisabled> for Outgoing {
    fn from(notice: &EndpointDisabled) -> Self {
        Outgoing {
            event_id: notice.event_id.clone(),
            event_type: notice.event_type.clone(),
            body: serde_json::to_string(notice).unwrap_or_else(|_| "{}".into()),
        }
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    Delivered,
    /// The retry schedule ran out (or the endpoint is disabled); replayable.
    Failed,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 3] = [
        DeliveryState::Pending,
        DeliveryState::Delivered,
        DeliveryState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "PENDING",
            DeliveryState::Delivered => "DELIVERED",
            DeliveryState::Failed => "FAILED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// One attempt at a delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status; `None` when no answer came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed; `None` for a 2xx answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DeliveryAttempt {
    /// An attempt's record; a 2xx status is a success, anything else an error.
    pub fn new(
        at: DateTime<Utc>,
        http_status: Option<u16>,
        latency_ms: u64,
        error: Option<String>,
    ) -> Self {
        let error = match (http_status, error) {
            (_, Some(error)) => Some(clipped(&error)),
            (Some(status), None) if !(200..300).contains(&status) => {
                Some(format!("the endpoint answered HTTP {status}"))
            }
            (None, None) => Some("no answer".to_string()),
            (Some(_), None) => None,
        };
        DeliveryAttempt {
            at,
            http_status,
            latency_ms,
            error,
        }
    }

    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

fn clipped(text: &str) -> String {
    text.chars().take(MAX_ERROR_LEN).collect()
}

/// One event's delivery to one endpoint, with its attempts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub id: WebhookDeliveryId,
    pub endpoint_id: WebhookEndpointId,
    pub event_id: String,
    pub event_type: String,
    /// The exact JSON that is signed and sent.
    pub body: String,
    pub state: DeliveryState,
    /// The most recent [`KEPT_ATTEMPTS`] attempts, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
    /// Every attempt ever made.
    pub attempt_count: u32,
    /// Attempts since it was opened or last replayed: what the retry schedule counts.
    pub cycle_attempts: u32,
    /// When it is attempted next; `None` unless pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Raised by one on every change; a save is conditional on it.
    pub version: u64,
}

impl WebhookDelivery {
    /// A delivery of `outgoing` to `endpoint`, due now.
    pub fn open(endpoint: &WebhookEndpointId, outgoing: &Outgoing, now: DateTime<Utc>) -> Self {
        WebhookDelivery {
            id: WebhookDeliveryId::generate(),
            endpoint_id: endpoint.clone(),
            event_id: outgoing.event_id.clone(),
            event_type: outgoing.event_type.clone(),
            body: outgoing.body.clone(),
            state: DeliveryState::Pending,
            attempts: Vec::new(),
            attempt_count: 0,
            cycle_attempts: 0,
            next_attempt_at: Some(now),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.state == DeliveryState::Pending && self.next_attempt_at.is_some_and(|at| at <= now)
    }

    fn next_version(&self, now: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        next.version += 1;
        next.updated_at = now;
        next
    }

    /// Taken for an attempt: hidden from other dispatchers for `lease`, so only a crashed
    /// attempt is ever taken over.
    pub fn claimed(&self, now: DateTime<Utc>, lease: Duration) -> Self {
        let mut next = self.next_version(now);
        next.next_attempt_at = Some(now + lease);
        next
    }

    /// After `attempt`: delivered, pending its next try, or failed once the cycle ran out.
    pub fn attempted(&self, attempt: DeliveryAttempt, now: DateTime<Utc>) -> Self {
        let mut next = self.next_version(now);
        next.attempt_count = next.attempt_count.saturating_add(1);
        next.cycle_attempts = next.cycle_attempts.saturating_add(1);
        let succeeded = attempt.succeeded();
        next.attempts.push(attempt);
        let excess = next.attempts.len().saturating_sub(KEPT_ATTEMPTS);
        next.attempts.drain(..excess);
        (next.state, next.next_attempt_at) = if succeeded {
            (DeliveryState::Delivered, None)
        } else if next.cycle_attempts < MAX_ATTEMPTS {
            (
                DeliveryState::Pending,
                Some(now + retry_delay(next.cycle_attempts)),
            )
        } else {
            (DeliveryState::Failed, None)
        };
        next
    }

    /// Not attempted, because its endpoint is disabled: `FAILED`, with the reason logged as an
    /// attempt that never reached the network.
    pub fn skipped(&self, reason: &str, now: DateTime<Utc>) -> Self {
        let mut next = self.next_version(now);
        next.attempts
            .push(DeliveryAttempt::new(now, None, 0, Some(reason.to_string())));
        let excess = next.attempts.len().saturating_sub(KEPT_ATTEMPTS);
        next.attempts.drain(..excess);
        next.state = DeliveryState::Failed;
        next.next_attempt_at = None;
        next
    }

    /// Sent again from the start of the retry schedule, now.
    pub fn replayed(&self, now: DateTime<Utc>) -> Self {
        let mut next = self.next_version(now);
        next.state = DeliveryState::Pending;
        next.cycle_attempts = 0;
        next.next_attempt_at = Some(now);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(now: DateTime<Utc>) -> WebhookEndpoint {
        WebhookEndpoint::new(
            WebhookEndpointId::generate(),
            EndpointSettings {
                url: "https://example.com/hooks".into(),
                event_types: check_event_types(&["order.fulfilled".into()]).unwrap(),
                description: String::new(),
                enabled: true,
            },
            "sealed-1".into(),
            Some(&UserId::generate()),
            now,
        )
    }

    #[test]
    fn the_signature_matches_an_independently_computed_vector() {
        // python3: hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
        let body = br#"{"eventId":"evt_1","status":"FULFILLED"}"#;
        assert_eq!(
            signature(&[b"whsec_test"], 1_700_000_000, body).unwrap(),
            "t=1700000000,v1=be5b4eee3f792bddf077e60fd11f31e0378fc7d1ccac082ff1b3d02b294f76de"
        );
        let two = signature(&[&b"whsec_new"[..], b"whsec_test"], 1_700_000_000, body).unwrap();
        assert!(
            two.ends_with(",v1=be5b4eee3f792bddf077e60fd11f31e0378fc7d1ccac082ff1b3d02b294f76de")
        );
        assert_eq!(two.matches(",v1=").count(), 2);
    }

    #[test]
    fn urls_must_be_absolute_http_without_credentials() {
        assert!(check_url("https://example.com/hook?x=1").is_ok());
        assert!(check_url("http://127.0.0.1:8080/").is_ok());
        assert!(check_url("http://[::1]:9/hook").is_ok());
        for bad in [
            "",
            "ftp://example.com",
            "https://",
            "https://user:pw@example.com/",
            "https://exa mple.com",
            "example.com/hook",
            "http://host:99999/",
            "http://host:0/",
            "http://ho^st/",
            "http://[zz]/",
            "http://-host/",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_types_must_be_known() {
        assert!(check_event_types(&[]).is_err());
        assert!(check_event_types(&["order.shipped".into()]).is_err());
        let all = check_event_types(&["*".into()]).unwrap();
        let mut e = endpoint(Utc::now());
        assert!(e.wants("order.fulfilled") && !e.wants("gift_card.redeemed"));
        e.event_types = all;
        assert!(e.wants("gift_card.redeemed") && e.wants(ENDPOINT_DISABLED));
    }

    #[test]
    fn a_rotation_keeps_the_old_secret_for_the_overlap_only() {
        let t0 = Utc::now();
        let e = endpoint(t0);
        let rotated = e
            .rotated("sealed-2".into(), Duration::hours(1), t0)
            .unwrap();
        let signing: Vec<_> = rotated
            .signing_secrets(t0)
            .map(|s| s.sealed.as_str())
            .collect();
        assert_eq!(signing, ["sealed-2", "sealed-1"]);
        let later = t0 + Duration::hours(1);
        let signing: Vec<_> = rotated
            .signing_secrets(later)
            .map(|s| s.sealed.as_str())
            .collect();
        assert_eq!(signing, ["sealed-2"]);
        // A second rotation within the overlap does not extend the oldest secret's life.
        let again = rotated
            .rotated(
                "sealed-3".into(),
                Duration::hours(5),
                t0 + Duration::minutes(30),
            )
            .unwrap();
        assert_eq!(again.secrets.len(), 3);
        assert_eq!(again.secrets[2].expires_at, Some(t0 + Duration::hours(1)));
        let now = rotated
            .rotated("sealed-3".into(), Duration::zero(), t0)
            .unwrap();
        assert_eq!(now.signing_secrets(t0).count(), 1);
        assert!(e.rotated("x".into(), Duration::days(8), t0).is_err());
        let mut many = e.clone();
        for n in 0..5 {
            many = many
                .rotated(format!("s{n}"), Duration::hours(1), t0)
                .unwrap();
        }
        assert_eq!(many.signing_secrets(t0).count(), MAX_SIGNING_SECRETS);
        assert_eq!(many.secrets[0].sealed, "s4", "the newest first");
        assert_eq!(rotated.version, e.version + 1);
    }

    #[test]
    fn an_endpoint_failing_past_the_allowance_is_disabled() {
        let t0 = Utc::now();
        let allowance = Duration::hours(1);
        let e = endpoint(t0);
        assert_eq!(e.after_attempt(true, t0, allowance), Health::Unchanged);
        let Health::Changed(failing) = e.after_attempt(false, t0, allowance) else {
            panic!("a first failure is recorded");
        };
        assert_eq!(failing.failing_since, Some(t0));
        assert_eq!(
            failing.after_attempt(false, t0 + Duration::minutes(5), allowance),
            Health::Unchanged
        );
        // Failures keep coming: the last one is noted now and then.
        let Health::Changed(noted) =
            failing.after_attempt(false, t0 + Duration::minutes(59), allowance)
        else {
            panic!("a failure long after the last noted one is noted");
        };
        assert_eq!(noted.failing_since, Some(t0));
        // A silence longer than the quiet gap starts the clock again.
        let Health::Changed(restarted) =
            failing.after_attempt(false, t0 + Duration::hours(3), allowance)
        else {
            panic!("a failure after a silence restarts the clock");
        };
        assert_eq!(restarted.failing_since, Some(t0 + Duration::hours(3)));
        let Health::Disabled(disabled) = failing.after_attempt(false, t0 + allowance, allowance)
        else {
            panic!("failing past the allowance disables");
        };
        assert!(!disabled.enabled && disabled.disabled_reason.is_some());
        let Health::Changed(recovered) = failing.after_attempt(true, t0, allowance) else {
            panic!("a success clears the failure");
        };
        assert_eq!(recovered.failing_since, None);
        let enabled = disabled
            .patched(
                &EndpointPatch {
                    enabled: Some(true),
                    ..EndpointPatch::default()
                },
                t0,
            )
            .unwrap();
        assert!(enabled.enabled && enabled.failing_since.is_none());
        let notice = EndpointDisabled::of(&disabled);
        assert_eq!(notice.event_type, ENDPOINT_DISABLED);
        assert_eq!(
            notice.event_id,
            EndpointDisabled::of(&failing).event_id,
            "one failing spell, one notice id"
        );
        assert!(
            !serde_json::to_string(&notice)
                .unwrap()
                .contains("example.com")
        );
    }

    #[test]
    fn a_delivery_retries_on_schedule_then_fails_and_replays() {
        let t0 = Utc::now();
        let outgoing = Outgoing {
            event_id: "evt_1".into(),
            event_type: "order.fulfilled".into(),
            body: "{}".into(),
        };
        let mut d = WebhookDelivery::open(&WebhookEndpointId::generate(), &outgoing, t0);
        assert!(d.is_due(t0));
        let claimed = d.claimed(t0, Duration::seconds(60));
        assert!(!claimed.is_due(t0 + Duration::seconds(59)));
        for n in 1..=MAX_ATTEMPTS {
            d = d.attempted(DeliveryAttempt::new(t0, Some(500), 12, None), t0);
            if n < MAX_ATTEMPTS {
                assert_eq!(d.state, DeliveryState::Pending);
                assert!(d.next_attempt_at.unwrap() >= t0 + FIRST_RETRY_DELAY / 2);
            }
        }
        assert_eq!(d.state, DeliveryState::Failed);
        assert_eq!(d.attempt_count, MAX_ATTEMPTS);
        assert_eq!(
            d.attempts[0].error.as_deref(),
            Some("the endpoint answered HTTP 500")
        );
        let replayed = d.replayed(t0);
        assert!(replayed.is_due(t0) && replayed.cycle_attempts == 0);
        let delivered = replayed.attempted(DeliveryAttempt::new(t0, Some(204), 3, None), t0);
        assert_eq!(delivered.state, DeliveryState::Delivered);
        assert_eq!(delivered.attempt_count, MAX_ATTEMPTS + 1);
        assert!(delivered.next_attempt_at.is_none());
    }

    #[test]
    fn retry_delays_double_up_to_an_hour() {
        assert!(retry_delay(1) <= FIRST_RETRY_DELAY && retry_delay(1) >= FIRST_RETRY_DELAY / 2);
        assert!(retry_delay(3) >= FIRST_RETRY_DELAY * 2);
        assert!(retry_delay(MAX_ATTEMPTS) <= MAX_RETRY_DELAY);
    }
}
