//! Registration, login bookkeeping, sessions and profiles. Password hashing and tokens are the
//! API's concern; this layer keeps the rules (throttling, uniqueness, rotation).

use super::Giftify;
use crate::ids::UserId;
use crate::user::{
    Email, NewRefreshToken, NewUser, ProfileUpdate, Role, Rotation, User, UserCredentials,
};
use crate::{Error, Result};

/// A registration with a password already hashed by the caller.
#[derive(Clone, Debug)]
pub struct Registration {
    pub email: Email,
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: Option<String>,
}

impl Giftify {
    pub async fn register(&self, registration: Registration) -> Result<User> {
        let user = NewUser {
            id: UserId::generate(),
            email: registration.email,
            password_hash: registration.password_hash,
            first_name: registration.first_name,
            last_name: registration.last_name,
            phone_number: registration.phone_number,
            role: Role::User,
            now: self.now(),
        };
        self.ports.users.create_user(&user).await
    }

    /// Makes sure the configured admin exists with this password hash.
    pub async fn ensure_admin(&self, email: Email, password_hash: String) -> Result<User> {
        let admin = NewUser {
            id: UserId::generate(),
            email,
            password_hash,
            first_name: "Giftify".into(),
            last_name: "Admin".into(),
            phone_number: None,
            role: Role::Admin,
            now: self.now(),
        };
        self.ports.users.ensure_admin(&admin).await
    }

    /// Counts a login attempt *before* its password is checked, so that a burst of parallel
    /// guesses cannot all slip past a lock that only their own failures would set: every
    /// attempt takes its place in the count atomically, and the attempt that reaches the
    /// policy's limit — like every attempt while the account is locked — is refused with
    /// `RateLimited`, unchecked. A successful login clears the count
    /// ([`Giftify::login_succeeded`]). Unknown emails are counted too, so the lock is no
    /// existence oracle.
    pub async fn begin_login_attempt(&self, email: &Email) -> Result<()> {
        let now = self.now();
        match self
            .ports
            .throttle
            .record_failure(email.as_str(), &self.rules.login_throttle, now)
            .await?
        {
            Some(until) => Err(Error::RateLimited {
                retry_after_secs: retry_after(until, now),
            }),
            None => Ok(()),
        }
    }

    /// The credentials to verify a login against; call [`Giftify::begin_login_attempt`]
    /// first.
    pub async fn login_credentials(&self, email: &Email) -> Result<Option<UserCredentials>> {
        self.ports.users.credentials_by_email(email).await
    }

    pub async fn login_succeeded(&self, user: &User) -> Result<()> {
        self.ports.throttle.reset(user.email.as_str()).await?;
        self.ports.users.record_login(&user.id, self.now()).await
    }

    pub async fn start_session(&self, token: NewRefreshToken) -> Result<()> {
        self.ports.sessions.start_session(&token).await
    }

    /// Spends a refresh token for its successor; a replayed token revokes its family.
    pub async fn rotate_session(
        &self,
        presented_hash: &str,
        replacement: NewRefreshToken,
    ) -> Result<User> {
        match self
            .ports
            .sessions
            .rotate(presented_hash, &replacement)
            .await?
        {
            Rotation::Rotated { user_id } => self.active_user(&user_id).await,
            Rotation::ReuseDetected => {
                tracing::warn!(family = %replacement.family_id, "refresh token reuse detected; family revoked");
                Err(Error::InvalidToken)
            }
            Rotation::Invalid => Err(Error::InvalidToken),
        }
    }

    pub async fn end_session(&self, presented_hash: &str) -> Result<()> {
        self.ports.sessions.revoke_family(presented_hash).await
    }

    /// The user behind a token, if the account still exists and is active.
    pub async fn active_user(&self, id: &UserId) -> Result<User> {
        match self.ports.users.user(id).await? {
            Some(user) if user.status == crate::user::UserStatus::Active => Ok(user),
            _ => Err(Error::InvalidToken),
        }
    }

    pub async fn profile(&self, id: &UserId) -> Result<User> {
        self.ports
            .users
            .user(id)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    pub async fn update_profile(&self, id: &UserId, update: ProfileUpdate) -> Result<User> {
        self.ports
            .users
            .update_profile(id, &update, self.now())
            .await
    }
}

fn retry_after(until: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> u64 {
    (until - now).num_seconds().max(1) as u64
}
