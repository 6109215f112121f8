//! A Giftify card redeemed into a wallet.

use super::Giftify;
use super::accounts::retry_after;
use crate::ids::{TransactionId, UserId};
use crate::ledger::Movement;
use crate::vault::{GiftCard, GiftCardStatus, Redemption};
use crate::wallet::{Page, PageRequest};
use crate::{Error, Missing, Result};
use secrecy::ExposeSecret;

/// The throttle account of a user's redemption attempts.
fn user_attempts(user: &UserId) -> String {
    format!("redeem/user/{user}")
}

/// The throttle account of the attempts at one card number (its lookup key, never the
/// number).
fn card_attempts(lookup_key: &str) -> String {
    format!("redeem/card/{lookup_key}")
}

/// Compares two secrets in time that depends on their lengths only.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Giftify {
    /// The user's cards across their orders, newest first.
    pub async fn cards_of_user(
        &self,
        user: &UserId,
        status: Option<GiftCardStatus>,
        page: PageRequest,
    ) -> Result<Page<GiftCard>> {
        self.ports
            .gift_cards
            .cards_of_user(user, status, page)
            .await
    }

    /// Redeems a Giftify card into `user`'s wallet: its face value as a REDEEM credit, the
    /// card REDEEMED, atomically and once. Every attempt is counted per user and per number
    /// *before* the number and PIN are checked (as a login is), so a burst of guesses cannot
    /// outrun the lock; a success clears the user's count. A wrong number and a wrong PIN
    /// answer alike, so an answer never tells whether a number exists.
    /// # Errors
    /// [`Error::RateLimited`] while either count is locked; [`Error::NotFound`] for a wrong
    /// number or PIN; [`Error::Card`] for a brand card, or one redeemed, expired or cancelled;
    /// [`Error::WalletLimitExceeded`] past the balance cap.
    pub async fn redeem_card(&self, user: &UserId, number: &str, pin: &str) -> Result<GiftCard> {
        let now = self.now();
        let lookup_key = self.vault.lookup_key(number);
        for account in [user_attempts(user), card_attempts(&lookup_key)] {
            if let Some(until) = self
                .ports
                .throttle
                .record_failure(&account, &self.rules.redeem_throttle, now)
                .await?
            {
                return Err(Error::RateLimited {
                    retry_after_secs: retry_after(until, now),
                });
            }
        }
        let unknown = || Error::NotFound(Missing::GiftCard);
        let card = self
            .ports
            .gift_cards
            .card_by_lookup_key(&lookup_key)
            .await?
            .ok_or_else(unknown)?;
        let secrets = self.vault.open(&card.id, &card.sealed)?;
        if !same_secret(secrets.pin.expose_secret(), pin.trim()) {
            return Err(unknown());
        }
        card.check_redeemable(number, now.date_naive())?;
        let redemption = Redemption {
            card_id: card.id.clone(),
            credit: Movement::redemption(
                TransactionId::generate(),
                user.clone(),
                &card,
                self.rules.wallet.max_balance,
                now,
            )?,
        };
        let redeemed = self.ports.gift_cards.redeem(&redemption).await?;
        self.ports.throttle.reset(&user_attempts(user)).await?;
        tracing::info!(target: "audit", gift_card_id = %redeemed.id, user_id = %user, "gift card redeemed");
        Ok(redeemed)
    }
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("482913", "482913"));
        assert!(!same_secret("482913", "482914"));
        assert!(!same_secret("482913", "48291"));
        assert!(same_secret("", ""));
    }
}
