//! Managing API keys, and authenticating a request that presents one.

use super::Giftify;
use crate::api_keys::{
    ApiKey, ApiKeyId, IssuedKey, KeyEnvironment, MAX_KEYS_PER_USER, PresentedKey, TOUCH_EVERY,
    parse_scopes,
};
use crate::ids::UserId;
use crate::{Error, Result};

impl Giftify {
    fn key_environment(&self) -> KeyEnvironment {
        KeyEnvironment::of_deployment(self.rules.sandbox)
    }

    /// A new key for the user, with these scope names; its secret is in the answer only.
    /// The cap of [`MAX_KEYS_PER_USER`] live keys is checked before the write, so two creates
    /// racing at the cap may pass it by one: a bound on clutter, not on money.
    /// # Errors
    /// [`Error::Validation`] for a bad name, no or unknown scopes, or a user at the cap.
    pub async fn create_api_key(
        &self,
        user: &UserId,
        name: &str,
        scope_names: &[String],
    ) -> Result<IssuedKey> {
        let scopes = parse_scopes(scope_names.iter().map(String::as_str))?;
        let issued = ApiKey::issue(user, name, scopes, self.key_environment(), self.now())?;
        let live = self
            .ports
            .api_keys
            .api_keys_of(user)
            .await?
            .iter()
            .filter(|key| key.revoked_at.is_none())
            .count();
        if live >= MAX_KEYS_PER_USER {
            return Err(Error::validation(
                "apiKeys",
                format!("at most {MAX_KEYS_PER_USER} live keys; revoke one first"),
            ));
        }
        self.ports.api_keys.create_api_key(&issued.key).await?;
        Ok(issued)
    }

    pub async fn api_keys(&self, user: &UserId) -> Result<Vec<ApiKey>> {
        self.ports.api_keys.api_keys_of(user).await
    }

    pub async fn revoke_api_key(&self, user: &UserId, id: &ApiKeyId) -> Result<ApiKey> {
        self.ports
            .api_keys
            .revoke_api_key(user, id, self.now())
            .await
    }

    /// The key a request presents, once it is known to be this deployment's, unrevoked, its
    /// owner's account active, and within its request budget; the use is recorded (to the
    /// minute). Scopes are the caller's to check: which scope a request needs is a property
    /// of the route.
    /// # Errors
    /// [`Error::InvalidToken`] for a key that is malformed, unknown, revoked, of another
    /// deployment, or whose owner no longer exists; [`Error::AccountSuspended`] when its owner
    /// is suspended; [`Error::RateLimited`] past its budget.
    pub async fn authenticate_key(&self, token: &str) -> Result<ApiKey> {
        let presented = PresentedKey::parse(token)?;
        let key = self
            .ports
            .api_keys
            .api_key(&presented.id)
            .await?
            .filter(|key| key.accepts(&presented, self.key_environment()))
            .ok_or(Error::InvalidToken)?;
        self.active_user(&key.user_id).await?;
        let now = self.now();
        self.count_in(&self.rules.key_rate_limit.window_of(&key.id, now), now)
            .await?;
        if key.needs_touch(now)
            && let Err(error) = self
                .ports
                .api_keys
                .touch_api_key(&key.id, now, now - TOUCH_EVERY)
                .await
        {
            // The request is authenticated; a lost "last used" note is no reason to fail it.
            tracing::warn!(key_id = %key.id, error = %error, "could not record an API key's use");
        }
        Ok(key)
    }
}
