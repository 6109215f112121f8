//! The JWT key and the card master key: from configuration when given, otherwise generated
//! once and kept in the data dir (mode 0600), so restarts keep tokens and cards valid.
//!
//! On AWS each function is given only the keys it uses (least privilege): the API both, the
//! workers the card key alone, so a compromised worker cannot mint access tokens. Hence the
//! JWT key is optional here and [`Secrets::jwt_secret`] is where its absence is an error.

use crate::config::Config;
use crate::file_lock::FileLock;
use anyhow::{Context, Result};
use giftify_shared::vault::CardKey;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub struct Secrets {
    /// The access-token key; `None` in a process that does not serve the API. Read it through
    /// [`Secrets::jwt_secret`], which says what to configure when it is missing.
    pub(crate) jwt_secret: Option<SecretString>,
    pub card_key: CardKey,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { .. }")
    }
}

impl Secrets {
    /// The key that signs and verifies access tokens, which serving the API needs.
    pub fn jwt_secret(&self) -> Result<&SecretString> {
        self.jwt_secret.as_ref().context(
            "serving the API needs the access-token key: set GIFTIFY_JWT_SECRET_ARN (on AWS) \
             or GIFTIFY_JWT_SECRET",
        )
    }

    /// The keys of the embedded backend and of local AWS mode: from the environment when set,
    /// else from (or newly into) the data dir.
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
            jwt_secret: Some(jwt_secret),
            card_key,
        })
    }
}

/// Reads a key file, or creates it. Creation is crash-safe and agreed between processes:
///
/// - under an exclusive lock on `.keys.lock` in the same directory, so two processes starting
///   on one data dir (API and worker) never generate two different keys;
/// - the key is written to a temporary file, synced, renamed into place, and the directory
///   synced, so the key file is either absent or whole — a process killed mid-write cannot
///   leave an empty or partial key behind, and a power cut cannot lose a key that cards were
///   already encrypted with;
/// - an empty key file (left by a crash of an earlier build, which created the file before
///   writing it) held no key that anything was ever encrypted or signed with, so it is
///   replaced.
fn read_or_create(path: &Path, generate: impl FnOnce() -> String) -> Result<String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let _turn = FileLock::take(&dir.join(".keys.lock"))?;
    match std::fs::read_to_string(path) {
        Ok(value) if !value.trim().is_empty() => return Ok(value.trim().to_string()),
        Ok(_) => {
            tracing::warn!(path = %path.display(), "replacing an empty key file left by a crash")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let value = generate();
    let temporary = path.with_extension("key.tmp");
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("cannot create {}", temporary.display()))?;
        file.write_all(value.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot move the new key into {}", path.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(value)
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
            first.jwt_secret().unwrap().expose_secret(),
            second.jwt_secret().unwrap().expose_secret()
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

    #[test]
    fn an_empty_key_file_left_by_a_crash_is_replaced_by_a_whole_key() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["jwt.key", "card.key"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let loaded = Secrets::load(&config).unwrap();
        assert_eq!(loaded.jwt_secret().unwrap().expose_secret().len(), 64);
        let again = Secrets::load(&config).unwrap();
        assert_eq!(loaded.card_key.to_base64(), again.card_key.to_base64());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn processes_starting_together_on_a_fresh_data_dir_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let loads: Vec<_> = (0..8)
            .map(|_| {
                let config = Config {
                    data_dir: dir.path().to_path_buf(),
                    ..Config::default()
                };
                std::thread::spawn(move || {
                    let secrets = Secrets::load(&config).unwrap();
                    (
                        secrets.jwt_secret().unwrap().expose_secret().to_string(),
                        secrets.card_key.to_base64(),
                    )
                })
            })
            .collect();
        let keys: std::collections::BTreeSet<_> =
            loads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(keys.len(), 1, "every starter reads the same keys");
    }
}
