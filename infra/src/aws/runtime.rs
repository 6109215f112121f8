//! The AWS backend assembled for one process: adapters, keys and the core. The Lambdas, the
//! local `GIFTIFY_BACKEND=aws` server and the tests all start here.

use super::AwsStack;
use crate::config::Config;
use crate::secrets::Secrets;
use anyhow::{Context, Result};
use giftify_shared::vault::{CardKey, CardVault};
use giftify_shared::{Giftify, SystemClock};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

pub struct AwsRuntime {
    pub giftify: Giftify,
    pub aws: AwsStack,
    pub secrets: Secrets,
    pub config: Config,
}

impl std::fmt::Debug for AwsRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsRuntime")
            .field("aws", &self.aws)
            .finish_non_exhaustive()
    }
}

impl AwsRuntime {
    /// Connects the adapters and loads the keys: from Secrets Manager when an ARN is
    /// configured (Lambda), else from the environment or the data dir (local AWS mode).
    pub async fn open(config: Config, sdk: &aws_config::SdkConfig) -> Result<Self> {
        let aws = AwsStack::connect(sdk, &config).await?;
        let secrets = load_secrets(sdk, &config).await?;
        let giftify = Giftify::new(
            aws.ports(),
            Arc::new(CardVault::new(&secrets.card_key)),
            Arc::new(SystemClock),
            config.rules(),
        );
        Ok(AwsRuntime {
            giftify,
            aws,
            secrets,
            config,
        })
    }
}

async fn load_secrets(sdk: &aws_config::SdkConfig, config: &Config) -> Result<Secrets> {
    let (jwt_arn, card_arn) = (&config.aws.jwt_secret_arn, &config.aws.card_key_secret_arn);
    if jwt_arn.is_none() && card_arn.is_none() {
        return Secrets::load(config);
    }
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let fetch = |arn: String| {
        let client = client.clone();
        async move {
            let output = client
                .get_secret_value()
                .secret_id(&arn)
                .send()
                .await
                .with_context(|| format!("cannot read secret {arn}"))?;
            output
                .secret_string
                .map(SecretString::from)
                .with_context(|| format!("secret {arn} has no string value"))
        }
    };
    let jwt_secret = match (&config.jwt_secret, jwt_arn) {
        (Some(secret), _) => secret.clone(),
        (None, Some(arn)) => fetch(arn.clone()).await?,
        (None, None) => anyhow::bail!("GIFTIFY_JWT_SECRET or GIFTIFY_JWT_SECRET_ARN must be set"),
    };
    let card_key = match (&config.card_key, card_arn) {
        (Some(key), _) => key.clone(),
        (None, Some(arn)) => fetch(arn.clone()).await?,
        (None, None) => {
            anyhow::bail!("GIFTIFY_CARD_KEY or GIFTIFY_CARD_KEY_SECRET_ARN must be set")
        }
    };
    Ok(Secrets {
        jwt_secret,
        card_key: CardKey::from_base64(card_key.expose_secret()).context("the card key secret")?,
    })
}
