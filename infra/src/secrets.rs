//! The JWT key and the card master key: from configuration when given, otherwise from key
//! files in the data dir (mode 0600), generated there only for a data dir that has no database
//! yet. A key file that is missing, empty, short or readable by others beside an existing
//! database stops the process with the path and the fix: a replaced key would seal new cards
//! that the old ones can never be reconciled with (see [`giftify_shared::keys`] for the check
//! values that catch a *different* key). Key files with group or other permission bits are
//! refused rather than fixed: a key others could read may already be copied, which is the
//! operator's to judge.
//!
//! On AWS each function is given only the keys it uses (least privilege): the API both, the
//! workers the card key alone, so a compromised worker cannot mint access tokens. Hence the
//! JWT key is optional here and [`Secrets::jwt_secret`] is where its absence is an error.

use crate::config::Config;
use crate::file_lock::FileLock;
use anyhow::{Context, Result, bail};
use giftify_shared::keys::{KeyName, PresentedKey, check_length, check_value};
use giftify_shared::vault::CardKey;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub struct Secrets {
    /// The access-token key; `None` in a process that does not serve the API. Read it through
    /// [`Secrets::jwt_secret`], which says what to configure when it is missing.
    pub(crate) jwt_secret: Option<SecretString>,
    pub card_key: CardKey,
    /// Where each key came from, for the operator: a variable, a file or a secret ARN.
    pub(crate) sources: KeySources,
}

/// The file, variable or secret each key was read from.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeySources {
    pub jwt: String,
    pub card: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { .. }")
    }
}

/// What a start may do about missing key files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFiles {
    /// The data dir has no database yet: generate the missing key files.
    MayGenerate,
    /// The data dir has a database: its keys must be there.
    MustExist,
}

impl Secrets {
    /// The key that signs and verifies access tokens, which serving the API needs.
    pub fn jwt_secret(&self) -> Result<&SecretString> {
        self.jwt_secret.as_ref().context(
            "serving the API needs the access-token key: set GIFTIFY_JWT_SECRET_ARN (on AWS) \
             or GIFTIFY_JWT_SECRET",
        )
    }

    /// The keys with their check values, for [`giftify_shared::Giftify::verify_keys`].
    pub fn presented(&self) -> Vec<PresentedKey> {
        let mut keys = vec![PresentedKey {
            name: KeyName::Card,
            source: self.sources.card.clone(),
            check_value: self.card_key.check_value(),
        }];
        if let Some(jwt) = &self.jwt_secret {
            keys.push(PresentedKey {
                name: KeyName::Jwt,
                source: self.sources.jwt.clone(),
                check_value: check_value(jwt.expose_secret().as_bytes()),
            });
        }
        keys
    }

    /// Keys given directly (the environment, or Secrets Manager values), checked for length.
    pub(crate) fn given(
        jwt_secret: Option<(SecretString, String)>,
        card_key: (SecretString, String),
    ) -> Result<Self> {
        let (card_secret, card_source) = card_key;
        let card_key = CardKey::from_base64(card_secret.expose_secret()).map_err(|_| {
            anyhow::anyhow!("{card_source} must be the base64 form of 32 random bytes")
        })?;
        let (jwt_secret, jwt_source) = match jwt_secret {
            Some((secret, source)) => {
                check_length(&source, secret.expose_secret().as_bytes())
                    .map_err(anyhow::Error::msg)?;
                (Some(secret), source)
            }
            None => (None, String::new()),
        };
        Ok(Secrets {
            jwt_secret,
            card_key,
            sources: KeySources {
                jwt: jwt_source,
                card: card_source,
            },
        })
    }

    /// The keys of the embedded backend: from the environment when set, else from the data
    /// dir's key files, which are generated only when `files` says the data dir is new.
    pub fn load(config: &Config, files: KeyFiles) -> Result<Self> {
        let dir = &config.data_dir;
        let jwt = match &config.jwt_secret {
            Some(secret) => (secret.clone(), "GIFTIFY_JWT_SECRET".to_string()),
            None => {
                let path = dir.join("jwt.key");
                let key = key_file(&path, files, || {
                    let mut bytes = [0u8; 32];
                    rand::rngs::OsRng.fill_bytes(&mut bytes);
                    hex::encode(bytes)
                })?;
                (SecretString::from(key), path.display().to_string())
            }
        };
        let card = match &config.card_key {
            Some(encoded) => (encoded.clone(), "GIFTIFY_CARD_KEY".to_string()),
            None => {
                let path = dir.join("card.key");
                let key = key_file(&path, files, || CardKey::generate().to_base64())?;
                (SecretString::from(key), path.display().to_string())
            }
        };
        Self::given(Some(jwt), card)
    }
}

/// A key file's contents: refused when readable by others, empty or missing beside a
/// database; created when the data dir is new.
fn key_file(path: &Path, files: KeyFiles, generate: impl FnOnce() -> String) -> Result<String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => bail!(
            "{} is readable by others (mode {:04o}); a key must be private to its owner: \
             check who may have copied it, then `chmod 600 {}`",
            path.display(),
            meta.permissions().mode() & 0o7777,
            path.display()
        ),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    match files {
        KeyFiles::MayGenerate => read_or_create(path, generate),
        KeyFiles::MustExist => match std::fs::read_to_string(path) {
            Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
            Ok(_) => bail!(
                "{} is empty, but the data dir has a database sealed and signed with the key it \
                 held: restore the file from a backup (a new key would strand every card sold)",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} is missing, but the data dir has a database sealed and signed with the key it \
                 held: restore the file from a backup (a new key would strand every card sold)",
                path.display()
            ),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        },
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
        let first = Secrets::load(&config, KeyFiles::MayGenerate).unwrap();
        let second = Secrets::load(&config, KeyFiles::MayGenerate).unwrap();
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
    fn an_empty_key_file_in_a_new_data_dir_is_replaced_by_a_whole_key() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["jwt.key", "card.key"] {
            let path = dir.path().join(name);
            std::fs::write(&path, "").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let loaded = Secrets::load(&config, KeyFiles::MayGenerate).unwrap();
        assert_eq!(loaded.jwt_secret().unwrap().expose_secret().len(), 64);
        let again = Secrets::load(&config, KeyFiles::MayGenerate).unwrap();
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
                    let secrets = Secrets::load(&config, KeyFiles::MayGenerate).unwrap();
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

#[cfg(test)]
mod refusals {
    use super::*;

    fn config(dir: &Path) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        }
    }

    fn refused(config: &Config) -> String {
        format!(
            "{:#}",
            Secrets::load(config, KeyFiles::MustExist).expect_err("refused")
        )
    }

    #[test]
    fn beside_a_database_a_missing_or_empty_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        Secrets::load(&config(dir.path()), KeyFiles::MayGenerate).unwrap();
        let card = dir.path().join("card.key");
        std::fs::remove_file(&card).unwrap();
        let message = refused(&config(dir.path()));
        assert!(message.contains("card.key is missing"), "{message}");
        assert!(!card.exists(), "nothing was generated in its place");
        std::fs::write(&card, "").unwrap();
        std::fs::set_permissions(&card, std::fs::Permissions::from_mode(0o600)).unwrap();
        let message = refused(&config(dir.path()));
        assert!(message.contains("card.key is empty"), "{message}");
    }

    #[test]
    fn short_keys_are_refused_naming_their_source() {
        let dir = tempfile::tempdir().unwrap();
        let mut short = config(dir.path());
        short.jwt_secret = Some("a".to_string().into());
        let message = format!(
            "{:#}",
            Secrets::load(&short, KeyFiles::MayGenerate).unwrap_err()
        );
        assert!(
            message.contains("GIFTIFY_JWT_SECRET is 1 bytes"),
            "{message}"
        );
        Secrets::load(&config(dir.path()), KeyFiles::MayGenerate).unwrap();
        let jwt = dir.path().join("jwt.key");
        std::fs::write(&jwt, "abc").unwrap();
        let message = refused(&config(dir.path()));
        assert!(message.contains("jwt.key is 3 bytes"), "{message}");
        let mut bad_card = config(dir.path());
        bad_card.card_key = Some("c2hvcnQ=".to_string().into());
        let message = format!(
            "{:#}",
            Secrets::load(&bad_card, KeyFiles::MustExist).unwrap_err()
        );
        assert!(message.contains("GIFTIFY_CARD_KEY"), "{message}");
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Secrets::load(&config(dir.path()), KeyFiles::MayGenerate).unwrap();
        let card = dir.path().join("card.key");
        std::fs::set_permissions(&card, std::fs::Permissions::from_mode(0o644)).unwrap();
        let message = refused(&config(dir.path()));
        assert!(
            message.contains("mode 0644") && message.contains("chmod 600"),
            "{message}"
        );
    }
}
