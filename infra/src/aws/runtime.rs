//! The AWS backend assembled for one process: adapters, keys and the core. The Lambdas, the
//! local `GIFTIFY_BACKEND=aws` server and the tests all start here.

use super::AwsStack;
use crate::config::Config;
use crate::secrets::Secrets;
use anyhow::{Context, Result};
use giftify_shared::Giftify;
use giftify_shared::vault::CardVault;
use secrecy::SecretString;
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
    /// Connects the adapters, loads the keys (from Secrets Manager when an ARN is configured,
    /// else from the environment) and checks them against the stage's recorded check values.
    pub async fn open(config: Config, sdk: &aws_config::SdkConfig) -> Result<Self> {
        Self::assemble(AwsStack::connect(sdk, &config).await?, config, sdk).await
    }

    /// [`AwsRuntime::open`] for a process that posts webhooks: the dispatcher (and `giftify`
    /// processes and tests that dispatch themselves).
    pub async fn open_sending_webhooks(
        config: Config,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self> {
        let aws = AwsStack::connect(sdk, &config).await?.sending_webhooks()?;
        Self::assemble(aws, config, sdk).await
    }

    async fn assemble(aws: AwsStack, config: Config, sdk: &aws_config::SdkConfig) -> Result<Self> {
        let secrets = load_secrets(sdk, &config).await?;
        let giftify = Giftify::new(
            aws.ports(),
            Arc::new(CardVault::new(&secrets.card_key)),
            aws.store.clock(),
            config.rules(),
        );
        giftify.verify_keys(&secrets.presented()).await?;
        Ok(AwsRuntime {
            giftify,
            aws,
            secrets,
            config,
        })
    }
}

/// The keys this process was given: each from the environment or, by ARN, from Secrets
/// Manager (both fetched at once). Only the card key is required: Terraform gives the JWT key
/// to the API function alone. Nothing is ever generated here: a stage's keys live in Secrets
/// Manager, and a key made up on an operator's machine would seal cards the Lambdas cannot
/// read.
pub async fn load_secrets(sdk: &aws_config::SdkConfig, config: &Config) -> Result<Secrets> {
    let (jwt_arn, card_arn) = (&config.aws.jwt_secret_arn, &config.aws.card_key_secret_arn);
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
            let value = output
                .secret_string
                .map(SecretString::from)
                .with_context(|| format!("secret {arn} has no string value"))?;
            Ok::<_, anyhow::Error>((value, format!("secret {arn}")))
        }
    };
    let jwt_secret = async {
        match (&config.jwt_secret, jwt_arn) {
            (Some(secret), _) => Ok(Some((secret.clone(), "GIFTIFY_JWT_SECRET".to_string()))),
            (None, Some(arn)) => fetch(arn.clone()).await.map(Some),
            (None, None) => Ok(None),
        }
    };
    let card_key = async {
        match (&config.card_key, card_arn) {
            (Some(key), _) => Ok((key.clone(), "GIFTIFY_CARD_KEY".to_string())),
            (None, Some(arn)) => fetch(arn.clone()).await,
            (None, None) => anyhow::bail!(
                "the AWS backend needs the stage's card key: set GIFTIFY_CARD_KEY_SECRET_ARN \
                 (the operator_environment output of Terraform carries it) or GIFTIFY_CARD_KEY"
            ),
        }
    };
    let (jwt_secret, card_key) = tokio::try_join!(jwt_secret, card_key)?;
    Secrets::given(jwt_secret, card_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use giftify_shared::vault::CardKey;

    /// No network: keys given in the environment are never fetched.
    fn offline_sdk() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    #[tokio::test]
    async fn a_worker_given_only_the_card_key_starts_without_the_token_key() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            card_key: Some(CardKey::generate().to_base64().into()),
            ..Config::default()
        };
        let secrets = load_secrets(&offline_sdk(), &config).await.unwrap();
        assert!(secrets.jwt_secret.is_none());
        let refused = secrets.jwt_secret().unwrap_err().to_string();
        assert!(refused.contains("GIFTIFY_JWT_SECRET_ARN"), "{refused}");
        // Nothing was generated into the data dir in its place.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn the_card_key_is_required_once_any_key_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            jwt_secret: Some("a-jwt-key-for-the-api".to_string().into()),
            ..Config::default()
        };
        let refused = load_secrets(&offline_sdk(), &config).await.unwrap_err();
        assert!(
            refused.to_string().contains("GIFTIFY_CARD_KEY"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn with_no_key_configured_nothing_is_generated_and_the_variables_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let refused = load_secrets(&offline_sdk(), &config).await.unwrap_err();
        assert!(
            refused.to_string().contains("GIFTIFY_CARD_KEY_SECRET_ARN"),
            "{refused}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_short_jwt_key_from_the_environment_is_refused() {
        let config = Config {
            jwt_secret: Some("a".to_string().into()),
            card_key: Some(CardKey::generate().to_base64().into()),
            ..Config::default()
        };
        let refused = load_secrets(&offline_sdk(), &config).await.unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("GIFTIFY_JWT_SECRET is 1 bytes"),
            "{refused}"
        );
    }
}
