//! The JWT key and the card master key: from configuration when given, otherwise generated
//! once and kept in the data dir (mode 0600), so restarts keep tokens and cards valid.

use crate::config::Config;
use anyhow::{Context, Result};
use giftify_shared::vault::CardKey;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub struct Secrets {
    pub jwt_secret: SecretString,
    pub card_key: CardKey,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { .. }")
    }
}

impl Secrets {
    pub fn load(config: &Config) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let jwt_secret = match &config.jwt_secret {
            Some(secret) => secret.clone(),
            None => SecretString::from(read_or_create(&config.data_dir.join("jwt.key"), || {
                let mut bytes = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                hex::encode(bytes)
            })?),
        };
        let card_key = match &config.card_key {
            Some(encoded) => {
                CardKey::from_base64(encoded.expose_secret()).context("GIFTIFY_CARD_KEY")?
            }
            None => {
                let encoded = read_or_create(&config.data_dir.join("card.key"), || {
                    CardKey::generate().to_base64()
                })?;
                CardKey::from_base64(&encoded).context("card.key in the data dir")?
            }
        };
        Ok(Secrets {
            jwt_secret,
            card_key,
        })
    }
}

/// Reads a key file, or creates it exclusively with mode 0600. Two processes starting on one
/// data dir agree: the loser of the create race reads the winner's file.
fn read_or_create(path: &Path, generate: impl FnOnce() -> String) -> Result<String> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let value = generate();
            file.write_all(value.as_bytes())?;
            file.sync_all()?;
            Ok(value)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // The creator may not have written yet; wait briefly for a complete key.
            for _ in 0..50 {
                let value = std::fs::read_to_string(path)?;
                if !value.trim().is_empty() {
                    return Ok(value.trim().to_string());
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            anyhow::bail!("{} is empty", path.display())
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_keys_are_private_and_stable_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let first = Secrets::load(&config).unwrap();
        let second = Secrets::load(&config).unwrap();
        assert_eq!(
            first.jwt_secret.expose_secret(),
            second.jwt_secret.expose_secret()
        );
        assert_eq!(first.card_key.to_base64(), second.card_key.to_base64());
        for name in ["jwt.key", "card.key"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
}
