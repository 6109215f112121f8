//! The start-up key check (see [`crate::keys`]): every process that opens the data compares
//! its keys with the check values the data recorded, before it serves or handles anything.

use super::Giftify;
use crate::keys::{KeyError, KeyVerdict, PresentedKey, judge};

impl Giftify {
    /// Refuses keys other than the ones the data was sealed and signed with, and records the
    /// check value of a key the data has none for yet.
    pub async fn verify_keys(&self, keys: &[PresentedKey]) -> Result<(), KeyError> {
        for key in keys {
            let recorded = self.ports.keys.recorded_check(key.name).await?;
            let verdict = match judge(recorded.as_deref(), &key.check_value) {
                KeyVerdict::Record => {
                    let now = self.now();
                    let recorded = self
                        .ports
                        .keys
                        .record_check(key.name, &key.check_value, now)
                        .await?;
                    // Another process may have recorded its key a moment earlier.
                    judge(Some(&recorded), &key.check_value)
                }
                verdict => verdict,
            };
            if verdict == KeyVerdict::Mismatch {
                let cards = self.ports.keys.sealed_cards().await.ok();
                return Err(KeyError::Mismatch {
                    name: key.name,
                    origin: key.source.clone(),
                    cards,
                });
            }
        }
        Ok(())
    }
}
