//! Credentials: access tokens (JWT HS256), passwords (argon2id) and refresh tokens.
//!
//! - Access tokens live 15 minutes; the algorithm is pinned to HS256 and `exp`, `iss`, `aud`
//!   and `sub` are required and checked, so `alg: none`, other HMAC sizes and RSA/HMAC
//!   confusion are all rejected.
//! - Passwords are hashed with argon2id at the OWASP parameters (19 MiB, 2 passes, 1 lane) on
//!   the blocking pool, at most [`Passwords`]' permit count at once so a login flood cannot
//!   allocate unbounded memory. A login for an unknown email verifies against a dummy hash, so
//!   response time does not reveal which accounts exist.
//! - Refresh tokens are `{userId}.{familyId}.{secret}` with a 32-byte random secret; only their
//!   SHA-256 is stored. The user and family ride in the token because the session port stores
//!   the replacement of a rotated token with its family and user, which the API must supply.
//!   The hash covers the whole string, so tampering with either part makes the token unknown.

use crate::error::ApiError;
use argon2::password_hash::rand_core::OsRng as SaltRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm as Argon2Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use giftify_shared::Error as CoreError;
use giftify_shared::ids::UserId;
use giftify_shared::user::{NewRefreshToken, Role};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;

/// `iss` of every access token.
pub const ISSUER: &str = "giftify";
/// `aud` of every access token.
pub const AUDIENCE: &str = "giftify-api";
/// Lifetime of an access token, in seconds.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 15 * 60;
/// Lifetime of a refresh token, in days.
pub const REFRESH_TOKEN_TTL_DAYS: i64 = 30;
/// Password length bounds, in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;
/// Longest refresh token worth hashing; anything longer is not one of ours.
const MAX_REFRESH_TOKEN_LEN: usize = 256;
/// Clock skew tolerated on `exp`, in seconds: tokens are checked by the process family that
/// issued them, so only small skew between API instances needs absorbing.
const LEEWAY_SECS: u64 = 5;
/// Shortest HS256 key that gives the full 256-bit strength.
const MIN_SECRET_BYTES: usize = 32;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The account's session epoch at issue: a token issued before a suspension, a promotion
    /// or a re-key is void. Tokens issued before the claim existed read as epoch 0.
    #[serde(default)]
    pub epoch: u32,
}

/// What a valid access token says: whose it is, the role it was issued with, and the
/// account's session epoch then.
#[derive(Debug, Clone)]
pub struct Bearer {
    pub id: UserId,
    pub role: Role,
    pub session_epoch: u32,
}

/// Issues and verifies access tokens with one HS256 key.
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenService { .. }")
    }
}

impl TokenService {
    /// Builds the service from the signing secret.
    pub fn new(secret: &SecretString) -> Self {
        let key = secret.expose_secret().as_bytes();
        if key.len() < MIN_SECRET_BYTES {
            tracing::warn!(
                "the JWT secret is shorter than {MIN_SECRET_BYTES} bytes; use a longer random key"
            );
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        TokenService {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
        }
    }

    /// A fresh 15-minute access token for the account as it is now.
    pub fn issue(&self, user: &UserId, role: Role, session_epoch: u32) -> Result<String, ApiError> {
        self.issue_at(user, role, session_epoch, Utc::now())
    }

    /// An access token as issued at `now` (tests use past instants for expiry).
    pub fn issue_at(
        &self,
        user: &UserId,
        role: Role,
        session_epoch: u32,
        now: DateTime<Utc>,
    ) -> Result<String, ApiError> {
        let claims = Claims {
            sub: user.to_string(),
            role: role.as_str().to_string(),
            iss: ISSUER.to_string(),
            aud: AUDIENCE.to_string(),
            iat: now.timestamp(),
            exp: now.timestamp() + ACCESS_TOKEN_TTL_SECS,
            jti: ulid::Ulid::new().to_string(),
            epoch: session_epoch,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| CoreError::Internal(anyhow::Error::new(e).context("signing a token")))
            .map_err(ApiError::from)
    }

    /// The caller behind a token. An expired but otherwise valid token is `TOKEN_EXPIRED`;
    /// anything else wrong is `UNAUTHORIZED`.
    pub fn verify(&self, token: &str) -> Result<Bearer, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => ApiError::TokenExpired,
                _ => ApiError::Unauthorized("Invalid access token"),
            })?;
        let id = UserId::parse(&data.claims.sub)
            .map_err(|_| ApiError::Unauthorized("Invalid access token"))?;
        let role =
            Role::parse(&data.claims.role).ok_or(ApiError::Unauthorized("Invalid access token"))?;
        Ok(Bearer {
            id,
            role,
            session_epoch: data.claims.epoch,
        })
    }
}

/// argon2id with the OWASP parameters.
fn argon2() -> Result<Argon2<'static>, CoreError> {
    let params = Params::new(19_456, 2, 1, None)
        .map_err(|e| CoreError::internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(
        Argon2Algorithm::Argon2id,
        Version::V0x13,
        params,
    ))
}

/// Hashes a password into a PHC string. CPU- and memory-heavy: call on the blocking pool.
pub fn hash_password_blocking(password: &str) -> Result<String, CoreError> {
    let salt = SaltString::generate(&mut SaltRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| CoreError::internal(format!("password hashing failed: {e}")))
}

/// Checks a password against a PHC string; a malformed hash never matches.
pub fn verify_password_blocking(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    argon2().is_ok_and(|argon| argon.verify_password(password.as_bytes(), &parsed).is_ok())
}

/// What unknown-email logins verify against, so they take as long as real ones.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    hash_password_blocking(&hex::encode(secret)).unwrap_or_default()
});

/// Checks the password rules (8–128 characters).
pub fn check_password_rules(password: &str) -> Result<(), ApiError> {
    if PASSWORD_CHARS.contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::validation(
            "password",
            "must be 8 to 128 characters",
        ))
    }
}

/// Runs password hashing on the blocking pool, a bounded number at a time.
#[derive(Debug, Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

impl Passwords {
    /// Allows `concurrency` hashes at once (each holds 19 MiB while it runs).
    pub fn new(concurrency: usize) -> Self {
        Passwords {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: SecretString) -> Result<String, ApiError> {
        let _permit = self.permit().await?;
        tokio::task::spawn_blocking(move || hash_password_blocking(password.expose_secret()))
            .await
            .map_err(join_error)?
            .map_err(ApiError::from)
    }

    /// Verifies a password against `hash`, or against the dummy hash when there is no account,
    /// taking the same time either way.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        let _permit = self.permit().await?;
        tokio::task::spawn_blocking(move || match hash {
            Some(hash) => verify_password_blocking(password.expose_secret(), &hash),
            None => {
                verify_password_blocking(password.expose_secret(), &DUMMY_HASH);
                false
            }
        })
        .await
        .map_err(join_error)
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.permits
            .acquire()
            .await
            .map_err(|_| CoreError::internal("password hashing permits closed").into())
    }
}

fn join_error(error: tokio::task::JoinError) -> ApiError {
    CoreError::Internal(anyhow::Error::new(error).context("password hashing task failed")).into()
}

/// A refresh token to hand to the client, with the record to store.
pub struct IssuedRefreshToken {
    /// The token itself: shown to the client once, never stored or logged.
    pub token: SecretString,
    pub record: NewRefreshToken,
}

impl std::fmt::Debug for IssuedRefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedRefreshToken")
            .field("family_id", &self.record.family_id)
            .finish_non_exhaustive()
    }
}

/// A fresh family id, for a new login.
pub fn new_family_id() -> String {
    ulid::Ulid::new().to_string()
}

/// A new refresh token of `family` for `user`, valid 30 days from `now`, under the account's
/// `session_epoch` (a rotation keeps the stored token's epoch instead).
pub fn issue_refresh_token(
    user: &UserId,
    family: &str,
    session_epoch: u32,
    now: DateTime<Utc>,
) -> IssuedRefreshToken {
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let token = format!("{user}.{family}.{}", URL_SAFE_NO_PAD.encode(secret));
    IssuedRefreshToken {
        record: NewRefreshToken {
            token_hash: hash_refresh_token(&token),
            family_id: family.to_string(),
            user_id: user.clone(),
            session_epoch,
            expires_at: now + chrono::Duration::days(REFRESH_TOKEN_TTL_DAYS),
            now,
        },
        token: SecretString::from(token),
    }
}

/// SHA-256 hex of a refresh token: the only form ever stored. A plain hash suffices (no salt,
/// no stretching) because the token carries 256 random bits.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A refresh token as presented by a client.
#[derive(Debug)]
pub struct PresentedRefreshToken {
    pub user_id: UserId,
    pub family_id: String,
    pub hash: String,
}

/// Splits a presented token into its user, family and hash; `None` when it cannot be one of
/// ours (so the caller answers 401 without a backend round trip).
pub fn parse_refresh_token(token: &str) -> Option<PresentedRefreshToken> {
    if token.len() > MAX_REFRESH_TOKEN_LEN {
        return None;
    }
    let mut parts = token.split('.');
    let (user, family, secret) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || ulid::Ulid::from_string(family).is_err()
        || URL_SAFE_NO_PAD
            .decode(secret)
            .map_or(true, |bytes| bytes.len() != 32)
    {
        return None;
    }
    Some(PresentedRefreshToken {
        user_id: UserId::parse(user).ok()?,
        family_id: family.to_string(),
        hash: hash_refresh_token(token),
    })
}

/// Hash of a token presented for logout, when it is plausibly one (bounded length).
pub fn logout_hash(token: &str) -> Option<String> {
    (!token.is_empty() && token.len() <= MAX_REFRESH_TOKEN_LEN).then(|| hash_refresh_token(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";

    fn service() -> TokenService {
        TokenService::new(&SecretString::from(SECRET))
    }

    fn b64(json: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).expect("json"))
    }

    fn claims(user: &UserId) -> serde_json::Value {
        let now = Utc::now().timestamp();
        serde_json::json!({
            "sub": user.to_string(), "role": "ADMIN", "iss": ISSUER, "aud": AUDIENCE,
            "iat": now, "exp": now + 600, "jti": "j"
        })
    }

    /// A token with any header, signed with HMAC-SHA256 under `key` (or unsigned).
    fn forge(header: serde_json::Value, claims: &serde_json::Value, key: Option<&[u8]>) -> String {
        let signing_input = format!("{}.{}", b64(&header), b64(claims));
        let signature = match key {
            Some(key) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
                mac.update(signing_input.as_bytes());
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            }
            None => String::new(),
        };
        format!("{signing_input}.{signature}")
    }

    fn rejected_as(result: Result<Bearer, ApiError>) -> &'static str {
        match result {
            Ok(_) => "accepted",
            Err(ApiError::TokenExpired) => "TOKEN_EXPIRED",
            Err(ApiError::Unauthorized(_)) => "UNAUTHORIZED",
            Err(_) => "other",
        }
    }

    #[test]
    fn an_issued_token_round_trips_with_its_claims() {
        let tokens = service();
        let user = UserId::generate();
        let token = tokens.issue(&user, Role::Admin, 0).expect("issued");
        let caller = tokens.verify(&token).expect("valid");
        assert_eq!(caller.id, user);
        assert_eq!(caller.role, Role::Admin);

        let payload = token.split('.').nth(1).expect("payload");
        let claims: Claims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("claims");
        assert_eq!(claims.exp - claims.iat, ACCESS_TOKEN_TTL_SECS);
        assert_eq!(
            (claims.iss.as_str(), claims.aud.as_str()),
            (ISSUER, AUDIENCE)
        );
        assert!(!claims.jti.is_empty());
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().expect("header"))
                .expect("b64"),
        )
        .expect("header");
        assert_eq!(header["alg"], "HS256");
    }

    #[test]
    fn the_forging_helper_makes_tokens_the_service_accepts() {
        let user = UserId::generate();
        let token = forge(
            serde_json::json!({"alg": "HS256", "typ": "JWT"}),
            &claims(&user),
            Some(SECRET.as_bytes()),
        );
        assert_eq!(rejected_as(service().verify(&token)), "accepted");
    }

    #[test]
    fn alg_none_is_rejected() {
        let user = UserId::generate();
        for alg in ["none", "None", "NONE"] {
            let token = forge(
                serde_json::json!({"alg": alg, "typ": "JWT"}),
                &claims(&user),
                None,
            );
            assert_eq!(
                rejected_as(service().verify(&token)),
                "UNAUTHORIZED",
                "{alg}"
            );
        }
    }

    #[test]
    fn other_algorithms_are_rejected_even_with_the_right_key() {
        let user = UserId::generate();
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims(&user),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encoded");
        assert_eq!(rejected_as(service().verify(&hs384)), "UNAUTHORIZED");
        // Key confusion: an "RS256" token MAC'd with the HMAC secret as if it were a public key.
        let rs256 = forge(
            serde_json::json!({"alg": "RS256", "typ": "JWT"}),
            &claims(&user),
            Some(SECRET.as_bytes()),
        );
        assert_eq!(rejected_as(service().verify(&rs256)), "UNAUTHORIZED");
    }

    #[test]
    fn a_token_signed_with_another_key_is_rejected() {
        let other = TokenService::new(&SecretString::from("another-secret-of-at-least-32-bytes!"));
        let token = other
            .issue(&UserId::generate(), Role::User, 0)
            .expect("issued");
        assert_eq!(rejected_as(service().verify(&token)), "UNAUTHORIZED");
        assert_eq!(rejected_as(service().verify("not.a.jwt")), "UNAUTHORIZED");
        assert_eq!(rejected_as(service().verify("")), "UNAUTHORIZED");
    }

    #[test]
    fn an_expired_token_is_token_expired() {
        let tokens = service();
        let issued_long_ago = Utc::now() - chrono::Duration::minutes(16);
        let token = tokens
            .issue_at(&UserId::generate(), Role::User, 0, issued_long_ago)
            .expect("issued");
        assert_eq!(rejected_as(tokens.verify(&token)), "TOKEN_EXPIRED");
    }

    #[test]
    fn wrong_audience_or_issuer_is_rejected() {
        let user = UserId::generate();
        let header = serde_json::json!({"alg": "HS256", "typ": "JWT"});
        for (claim, value) in [("aud", "someone-else"), ("iss", "evil")] {
            let mut forged = claims(&user);
            forged[claim] = serde_json::json!(value);
            let token = forge(header.clone(), &forged, Some(SECRET.as_bytes()));
            assert_eq!(
                rejected_as(service().verify(&token)),
                "UNAUTHORIZED",
                "{claim}"
            );
        }
        for missing in ["exp", "aud", "iss", "sub"] {
            let mut forged = claims(&user);
            forged.as_object_mut().expect("object").remove(missing);
            let token = forge(header.clone(), &forged, Some(SECRET.as_bytes()));
            assert_eq!(
                rejected_as(service().verify(&token)),
                "UNAUTHORIZED",
                "{missing}"
            );
        }
        let mut odd_role = claims(&user);
        odd_role["role"] = serde_json::json!("SUPERUSER");
        let token = forge(header, &odd_role, Some(SECRET.as_bytes()));
        assert_eq!(rejected_as(service().verify(&token)), "UNAUTHORIZED");
    }

    #[test]
    fn passwords_hash_with_argon2id_owasp_parameters_and_verify() {
        let hash = hash_password_blocking("correct horse battery").expect("hashed");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password_blocking("correct horse battery", &hash));
        assert!(!verify_password_blocking("wrong horse battery", &hash));
        assert!(!verify_password_blocking("anything", "not a phc string"));
    }

    #[test]
    fn password_rules_bound_the_length_in_characters() {
        assert!(check_password_rules("1234567").is_err());
        assert!(check_password_rules("12345678").is_ok());
        assert!(check_password_rules(&"é".repeat(128)).is_ok());
        assert!(check_password_rules(&"x".repeat(129)).is_err());
    }

    #[test]
    fn refresh_tokens_carry_user_and_family_and_store_only_a_hash() {
        let user = UserId::generate();
        let family = new_family_id();
        let issued = issue_refresh_token(&user, &family, 0, Utc::now());
        let token = issued.token.expose_secret().to_string();
        assert_eq!(issued.record.token_hash.len(), 64);
        assert!(!issued.record.token_hash.contains(&token));
        assert_eq!(
            (issued.record.expires_at - issued.record.now).num_days(),
            REFRESH_TOKEN_TTL_DAYS
        );

        let presented = parse_refresh_token(&token).expect("ours");
        assert_eq!(presented.user_id, user);
        assert_eq!(presented.family_id, family);
        assert_eq!(presented.hash, issued.record.token_hash);
        assert!(!format!("{issued:?}").contains(&token));

        let again = issue_refresh_token(&user, &family, 0, Utc::now());
        assert_ne!(again.token.expose_secret(), token.as_str());
        for bad in [
            "garbage",
            "",
            "a.b.c",
            &format!("{token}.x"),
            &token[..token.len() - 1],
        ] {
            assert!(parse_refresh_token(bad).is_none(), "{bad}");
        }
    }
}
