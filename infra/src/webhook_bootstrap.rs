//! The webhook endpoints the environment asks for (`GIFTIFY_WEBHOOK_URLS`), ensured at start
//! by the processes that serve: every embedded process, and `giftify serve` on AWS.

use crate::config::Config;
use anyhow::Result;
use giftify_shared::Giftify;

/// The bootstrap of `GIFTIFY_WEBHOOK_URLS` / `GIFTIFY_WEBHOOK_SECRET`: each URL ensured as an
/// endpoint signing with that secret (see [`Giftify::ensure_webhook`]).
pub async fn ensure_environment_webhooks(giftify: &Giftify, config: &Config) -> Result<()> {
    if let Some(secret) = &config.webhook_secret {
        for url in &config.webhook_urls {
            let endpoint = giftify.ensure_webhook(url, secret).await?;
            tracing::info!(endpoint_id = %endpoint.id, "webhook endpoint of GIFTIFY_WEBHOOK_URLS ensured");
        }
    }
    Ok(())
}
