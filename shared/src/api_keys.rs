//! API keys: long-lived credentials for the servers that integrate with Giftify, each limited
//! to scopes and to a request rate.
//!
//! A key reads `gk_live_<26-character key id>_<64 hex digits>` (`gk_test_` on a sandbox
//! deployment). The id finds the key with one consistent read; the 256 random bits after it are
//! the secret, stored only as their SHA-256. A fast hash is the right one here: argon2 protects
//! secrets people choose, and nobody guesses 256 random bits, so a slow hash would only slow
//! every request down. The secret is shown once, at creation.
//!
//! A key acts as its owner, never as an admin, and only where its scopes reach; managing keys
//! needs a signed-in person. Its use is recorded to the minute ([`ApiKey::needs_touch`]) so a
//! busy key costs no write per request for it.

use crate::ids::{InvalidId, UserId};
use crate::rate_limits::{RateBudget, RateWindow};
use crate::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// A key's id: `key_<ULID>`.
pub type ApiKeyId = crate::ids::ApiKeyId;

/// At most this many live (unrevoked) keys per user.
pub const MAX_KEYS_PER_USER: usize = 20;
/// A key name is 1 to this many characters.
pub const MAX_KEY_NAME_LEN: usize = 100;
/// A key's last use is recorded at most once per this long.
pub const TOUCH_EVERY: Duration = Duration::minutes(1);

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read orders (and their masked cards) and the event feed.
    OrdersRead,
    /// Place and cancel orders.
    OrdersWrite,
    /// Read the balance and the transactions.
    WalletRead,
    /// Top the wallet up.
    WalletWrite,
    /// List gift cards.
    CardsRead,
    /// Redeem and return gift cards.
    CardsWrite,
    /// Reveal a card's full number and PIN (audited).
    CardsReveal,
    /// Read and change the cart.
    Cart,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::OrdersRead,
        Scope::OrdersWrite,
        Scope::WalletRead,
        Scope::WalletWrite,
        Scope::CardsRead,
        Scope::CardsWrite,
        Scope::CardsReveal,
        Scope::Cart,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::OrdersRead => "orders:read",
            Scope::OrdersWrite => "orders:write",
            Scope::WalletRead => "wallet:read",
            Scope::WalletWrite => "wallet:write",
            Scope::CardsRead => "cards:read",
            Scope::CardsWrite => "cards:write",
            Scope::CardsReveal => "cards:reveal",
            Scope::Cart => "cart",
        }
    }

    pub fn parse(raw: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// Which deployment a key belongs to: keys of a sandbox deployment say so in their prefix, so a
/// test key sent to production (or the reverse) is refused by its look alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyEnvironment {
    Live,
    Test,
}

impl KeyEnvironment {
    pub fn of_deployment(sandbox: bool) -> Self {
        if sandbox {
            KeyEnvironment::Test
        } else {
            KeyEnvironment::Live
        }
    }

    pub fn prefix(self) -> &'static str {
        match self {
            KeyEnvironment::Live => "gk_live_",
            KeyEnvironment::Test => "gk_test_",
        }
    }
}

/// A key as stored: its secret only as a hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    pub scopes: BTreeSet<Scope>,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
    /// The first characters of the key — its prefix and the id's time and first random
    /// characters — to tell keys apart in a list (`gk_live_01HX…`).
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new key and its secret, which exists only in this value and in the one answer that shows
/// it.
pub struct IssuedKey {
    pub key: ApiKey,
    pub token: SecretString,
}

/// A key as a request presents it.
pub struct PresentedKey {
    pub id: ApiKeyId,
    pub environment: KeyEnvironment,
    secret_hash: String,
}

impl std::fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Whether a bearer token looks like an API key rather than an access token.
pub fn is_api_key(token: &str) -> bool {
    token.starts_with("gk_")
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Equal in time independent of where the strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl PresentedKey {
    /// # Errors
    /// [`Error::InvalidToken`] for anything that is not a well-formed key.
    pub fn parse(token: &str) -> Result<Self> {
        let (environment, rest) = [KeyEnvironment::Live, KeyEnvironment::Test]
            .into_iter()
            .find_map(|env| token.strip_prefix(env.prefix()).map(|rest| (env, rest)))
            .ok_or(Error::InvalidToken)?;
        let (ulid, secret) = rest.split_once('_').ok_or(Error::InvalidToken)?;
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidToken);
        }
        let id = ApiKeyId::parse(&format!("{}{ulid}", ApiKeyId::PREFIX))
            .map_err(|_: InvalidId| Error::InvalidToken)?;
        Ok(PresentedKey {
            id,
            environment,
            secret_hash: sha256_hex(secret),
        })
    }
}

impl ApiKey {
    /// A new key for `user`, its secret from the operating system's CSPRNG.
    /// # Errors
    /// [`Error::Validation`] for an empty or overlong name or no scopes.
    pub fn issue(
        user: &UserId,
        name: &str,
        scopes: BTreeSet<Scope>,
        environment: KeyEnvironment,
        now: DateTime<Utc>,
    ) -> Result<IssuedKey> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_KEY_NAME_LEN
            || name.chars().any(char::is_control)
        {
            return Err(Error::validation(
                "name",
                format!("must be 1 to {MAX_KEY_NAME_LEN} characters, without control characters"),
            ));
        }
        if scopes.is_empty() {
            return Err(Error::validation("scopes", "name at least one scope"));
        }
        let id = ApiKeyId::generate();
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let secret = hex::encode(secret);
        let token = format!("{}{}_{secret}", environment.prefix(), id.ulid_part());
        let key = ApiKey {
            prefix: token
                .chars()
                .take(environment.prefix().len() + 16)
                .collect(),
            id,
            user_id: user.clone(),
            name: name.to_string(),
            scopes,
            secret_hash: sha256_hex(&secret),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        };
        Ok(IssuedKey {
            key,
            token: SecretString::from(token),
        })
    }

    /// Whether `presented` is this key, unrevoked, of this deployment.
    pub fn accepts(&self, presented: &PresentedKey, deployment: KeyEnvironment) -> bool {
        self.revoked_at.is_none()
            && presented.environment == deployment
            && presented.id == self.id
            && same(&presented.secret_hash, &self.secret_hash)
    }

    /// Whether its last use should be recorded now: once per [`TOUCH_EVERY`].
    pub fn needs_touch(&self, now: DateTime<Utc>) -> bool {
        self.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY)
    }

    /// The first scope of `needed` it lacks.
    pub fn missing(&self, needed: Scope) -> Option<Scope> {
        (!self.scopes.contains(&needed)).then_some(needed)
    }
}

/// Parses a list of scope names.
/// # Errors
/// [`Error::Validation`] naming `scopes` for an unknown scope.
pub fn parse_scopes<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<BTreeSet<Scope>> {
    names
        .into_iter()
        .map(|name| {
            Scope::parse(name).ok_or_else(|| {
                Error::validation(
                    "scopes",
                    format!(
                        "unknown scope; known: {}",
                        Scope::ALL.map(Scope::as_str).join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// A key's request budget: at most `requests` per `window` ([`RateBudget`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRateLimit {
    pub requests: u32,
    pub window: Duration,
}

impl Default for KeyRateLimit {
    fn default() -> Self {
        KeyRateLimit {
            requests: 100,
            window: Duration::seconds(10),
        }
    }
}

impl KeyRateLimit {
    /// The window `now` falls in, for `key`.
    pub fn window_of(&self, key: &ApiKeyId, now: DateTime<Utc>) -> RateWindow {
        RateBudget::per(self.requests, self.window).window_of(key.as_str(), now)
    }
}

impl IssuedKey {
    /// The key as the one answer that shows it reads it.
    pub fn reveal(&self) -> &str {
        self.token.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(names: &[&str]) -> BTreeSet<Scope> {
        parse_scopes(names.iter().copied()).unwrap()
    }

    #[test]
    fn an_issued_key_is_accepted_once_presented_and_refused_when_revoked() {
        let user = UserId::generate();
        let now = Utc::now();
        let issued = ApiKey::issue(
            &user,
            " payouts ",
            scopes(&["orders:write"]),
            KeyEnvironment::Live,
            now,
        )
        .unwrap();
        let token = issued.reveal().to_string();
        assert!(token.starts_with("gk_live_"), "{token}");
        assert_eq!(issued.key.name, "payouts");
        assert!(token.starts_with(&issued.key.prefix));
        assert!(!issued.key.secret_hash.contains(&token[token.len() - 64..]));

        let presented = PresentedKey::parse(&token).unwrap();
        assert!(issued.key.accepts(&presented, KeyEnvironment::Live));
        assert!(
            !issued.key.accepts(&presented, KeyEnvironment::Test),
            "a live key on a sandbox"
        );
        let mut wrong = token.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert!(
            !issued
                .key
                .accepts(&PresentedKey::parse(&wrong).unwrap(), KeyEnvironment::Live)
        );
        let revoked = ApiKey {
            revoked_at: Some(now),
            ..issued.key.clone()
        };
        assert!(!revoked.accepts(&presented, KeyEnvironment::Live));
    }

    #[test]
    fn malformed_keys_and_names_are_refused() {
        for bad in [
            "gk_live_",
            "gk_live_nope_00",
            "gk_prod_01HXXXXXXXXXXXXXXXXXXXXXXX_00",
            &format!("gk_live_{}_{}", ulid::Ulid::new(), "g".repeat(64)),
        ] {
            assert!(PresentedKey::parse(bad).is_err(), "{bad}");
        }
        let user = UserId::generate();
        for name in ["", "   ", &"n".repeat(MAX_KEY_NAME_LEN + 1), "a\nb"] {
            assert!(
                ApiKey::issue(
                    &user,
                    name,
                    scopes(&["cart"]),
                    KeyEnvironment::Live,
                    Utc::now()
                )
                .is_err()
            );
        }
        assert!(
            ApiKey::issue(
                &user,
                "k",
                BTreeSet::new(),
                KeyEnvironment::Live,
                Utc::now()
            )
            .is_err()
        );
        assert!(parse_scopes(["orders:delete"]).is_err());
    }

    #[test]
    fn use_is_recorded_once_a_minute() {
        let now = Utc::now();
        let mut key = ApiKey::issue(
            &UserId::generate(),
            "k",
            scopes(&["cart"]),
            KeyEnvironment::Test,
            now,
        )
        .unwrap()
        .key;
        assert!(key.needs_touch(now));
        key.last_used_at = Some(now);
        assert!(!key.needs_touch(now + Duration::seconds(59)));
        assert!(key.needs_touch(now + Duration::seconds(60)));
    }

    #[test]
    fn rate_windows_are_fixed_and_shared_per_key() {
        let limit = KeyRateLimit::default();
        let key = ApiKeyId::generate();
        let at = DateTime::parse_from_rfc3339("2026-12-06T10:00:03.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let window = limit.window_of(&key, at);
        assert_eq!(window, limit.window_of(&key, at + Duration::seconds(6)));
        assert_ne!(window, limit.window_of(&key, at + Duration::seconds(7)));
        assert_eq!(window.retry_after_secs(at), 7);
        assert_eq!(window.retry_after_secs(window.ends_at), 1);
    }
}
