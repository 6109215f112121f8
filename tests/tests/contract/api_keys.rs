//! API keys: stored hashed and read back whole, listed per user newest first, revoked once by
//! their owner only, their use recorded at most once per minute, and their requests counted
//! exactly against a window's limit under concurrency.

use crate::support::{now, user};
use anyhow::Result;
use chrono::Duration;
use giftify_shared::api_keys::{ApiKey, ApiKeyId, KeyEnvironment, KeyRateLimit, Scope};
use giftify_shared::ports::Ports;
use giftify_shared::{Error, Missing};

fn key_of(
    owner: &giftify_shared::user::User,
    name: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<ApiKey> {
    Ok(ApiKey::issue(
        &owner.id,
        name,
        [Scope::OrdersRead, Scope::OrdersWrite].into(),
        KeyEnvironment::Live,
        at,
    )?
    .key)
}

pub async fn keys_are_stored_listed_and_revoked_by_their_owner_only(ports: &Ports) -> Result<()> {
    let owner = user(ports).await?;
    let stranger = user(ports).await?;
    let older = key_of(&owner, "older", now() - Duration::seconds(5))?;
    let newer = key_of(&owner, "newer", now())?;
    ports.api_keys.create_api_key(&older).await?;
    ports.api_keys.create_api_key(&newer).await?;

    assert_eq!(
        ports.api_keys.api_key(&newer.id).await?,
        Some(newer.clone())
    );
    assert_eq!(ports.api_keys.api_key(&ApiKeyId::generate()).await?, None);
    assert_eq!(
        ports.api_keys.api_keys_of(&owner.id).await?,
        vec![newer.clone(), older.clone()],
        "newest first"
    );
    assert!(ports.api_keys.api_keys_of(&stranger.id).await?.is_empty());

    let refused = ports
        .api_keys
        .revoke_api_key(&stranger.id, &older.id, now())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::NotFound(Missing::ApiKey)),
        "{refused:?}"
    );
    assert_eq!(
        ports
            .api_keys
            .api_key(&older.id)
            .await?
            .and_then(|k| k.revoked_at),
        None,
        "another user's revoke changed nothing"
    );

    let at = now();
    let revoked = ports
        .api_keys
        .revoke_api_key(&owner.id, &older.id, at)
        .await?;
    assert_eq!(revoked.revoked_at, Some(at));
    let again = ports
        .api_keys
        .revoke_api_key(&owner.id, &older.id, at + Duration::seconds(9))
        .await?;
    assert_eq!(again.revoked_at, Some(at), "the first revocation stands");
    let missing = ports
        .api_keys
        .revoke_api_key(&owner.id, &ApiKeyId::generate(), at)
        .await
        .unwrap_err();
    assert!(
        matches!(missing, Error::NotFound(Missing::ApiKey)),
        "{missing:?}"
    );
    assert_eq!(
        ports
            .api_keys
            .api_key(&older.id)
            .await?
            .and_then(|k| k.revoked_at),
        Some(at),
        "read back consistently at once"
    );
    Ok(())
}

pub async fn a_keys_use_is_recorded_at_most_once_a_minute(ports: &Ports) -> Result<()> {
    let owner = user(ports).await?;
    let key = key_of(&owner, "busy", now())?;
    ports.api_keys.create_api_key(&key).await?;
    let first = now();
    ports
        .api_keys
        .touch_api_key(&key.id, first, first - Duration::minutes(1))
        .await?;
    let later = first + Duration::seconds(30);
    ports
        .api_keys
        .touch_api_key(&key.id, later, later - Duration::minutes(1))
        .await?;
    assert_eq!(
        ports
            .api_keys
            .api_key(&key.id)
            .await?
            .and_then(|k| k.last_used_at),
        Some(first),
        "a use within the minute is not written again"
    );
    let next = first + Duration::seconds(61);
    ports
        .api_keys
        .touch_api_key(&key.id, next, next - Duration::minutes(1))
        .await?;
    assert_eq!(
        ports
            .api_keys
            .api_key(&key.id)
            .await?
            .and_then(|k| k.last_used_at),
        Some(next)
    );
    Ok(())
}

pub async fn concurrent_requests_are_counted_exactly_to_the_windows_limit(
    ports: &Ports,
) -> Result<()> {
    let limit = KeyRateLimit {
        requests: 5,
        window: Duration::seconds(10),
    };
    let key = ApiKeyId::generate();
    let window = limit.window_of(&key, now());
    let attempts: Vec<_> = (0..12)
        .map(|_| {
            let (ports, window) = (ports.clone(), window.clone());
            tokio::spawn(async move {
                loop {
                    match ports.rate_limits.count_request(&window).await {
                        Err(e) if e.is_retryable() => continue,
                        result => return result,
                    }
                }
            })
        })
        .collect();
    let mut counted = 0;
    for attempt in attempts {
        if attempt.await?? {
            counted += 1;
        }
    }
    assert_eq!(
        counted, 5,
        "exactly the limit, however the requests interleave"
    );
    assert!(!ports.rate_limits.count_request(&window).await?);
    let next = limit.window_of(&key, window.ends_at);
    assert!(
        ports.rate_limits.count_request(&next).await?,
        "the next window starts from zero"
    );
    let other = limit.window_of(&ApiKeyId::generate(), window.starts_at);
    assert!(
        ports.rate_limits.count_request(&other).await?,
        "each key has its own budget"
    );
    Ok(())
}
