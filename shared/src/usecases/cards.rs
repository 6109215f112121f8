//! A card after issue: redeemed into a wallet, returned by its owner, listed, and its reveals.

use super::Giftify;
use super::accounts::retry_after;
use crate::card_life::{CardReturn, Redemption, ReturnedCode};
use crate::codes::FulfillmentSource;
use crate::events::CardEvent;
use crate::ids::{GiftCardId, OrderId, TransactionId, UserId};
use crate::ledger::Movement;
use crate::vault::{GiftCard, GiftCardStatus, RevealAudit, is_giftify_number, normal_number};
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
    /// The owner returns a card they never revealed, within [`crate::Rules::return_window`]
    /// of its issue: the card is CANCELLED, its price refunded, and its unit back in stock (a
    /// brand code back in its pool). Of a racing reveal and return, exactly one wins.
    /// # Errors
    /// [`Error::NotFound`] unless the card is the user's and on that order; [`Error::Card`]
    /// when it is not ACTIVE, was revealed, or its window has passed.
    pub async fn return_card(
        &self,
        user: &UserId,
        order: &OrderId,
        card: &GiftCardId,
    ) -> Result<GiftCard> {
        let card = match self.ports.gift_cards.card(card).await? {
            Some(c) if c.user_id == *user && c.order_id == *order => c,
            _ => return Err(Error::NotFound(Missing::GiftCard)),
        };
        let now = self.now();
        card.check_returnable(now, self.rules.return_window)?;
        let from_inventory = self
            .ports
            .catalogue
            .entries(std::slice::from_ref(&card.variant_id))
            .await?
            .first()
            .is_some_and(|e| e.variant.fulfillment_source == FulfillmentSource::Inventory);
        let code = if from_inventory {
            let secrets = self.vault.open(&card.id, &card.sealed)?;
            let id = GiftCardId::generate();
            Some(ReturnedCode {
                sealed: self.vault.seal(
                    &id,
                    secrets.number.expose_secret(),
                    secrets.pin.expose_secret(),
                )?,
                id,
            })
        } else {
            None
        };
        let card_return = CardReturn {
            refund: Movement::refund_of_returned(TransactionId::generate(), &card, now),
            card,
            code,
            now,
        };
        let returned = self.ports.gift_cards.return_card(&card_return).await?;
        tracing::info!(gift_card_id = %returned.id, user_id = %user, "gift card returned");
        self.announce(&returned).await;
        Ok(returned)
    }

    /// The reveals of a card, oldest first (admin).
    /// # Errors
    /// [`Error::NotFound`] for an unknown card.
    pub async fn reveals_of(&self, card: &GiftCardId) -> Result<Vec<RevealAudit>> {
        if self.ports.gift_cards.card(card).await?.is_none() {
            return Err(Error::NotFound(Missing::GiftCard));
        }
        self.ports.gift_cards.reveals_of(card).await
    }

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
    /// [`Error::Validation`] for an empty PIN; [`Error::Card`] `NotRedeemable` for any number
    /// outside Giftify's range, existing or not; [`Error::RateLimited`] while either count is
    /// locked; [`Error::NotFound`] for a wrong number or PIN; [`Error::Card`] for a card
    /// redeemed, expired or cancelled;
    /// [`Error::WalletLimitExceeded`] past the balance cap.
    pub async fn redeem_card(&self, user: &UserId, number: &str, pin: &str) -> Result<GiftCard> {
        if pin.trim().is_empty() {
            return Err(Error::validation("giftCardPin", "must not be empty"));
        }
        // Decided by the number's shape alone, before any lookup: whether a brand's number
        // exists is never told.
        if !is_giftify_number(&normal_number(number)) {
            return Err(Error::Card(crate::CardRefusal::NotRedeemable));
        }
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
        self.announce(&redeemed).await;
        Ok(redeemed)
    }

    /// Publishes the card's event after its commit; a failure is left to the reconciler.
    async fn announce(&self, card: &GiftCard) {
        if let Err(error) = self.notify_card(card).await {
            tracing::warn!(gift_card_id = %card.id, error = %error, "card event not published yet");
        }
    }

    /// Publishes the event a redeemed or returned card owes and marks it sent.
    pub(crate) async fn notify_card(&self, card: &GiftCard) -> Result<()> {
        if card.notified_at.is_some() {
            return Ok(());
        }
        let Some(event) = CardEvent::for_card(card) else {
            // Nothing to announce (a card changed before events existed): it leaves the
            // outbox, so the reconciler does not read it again.
            return self
                .ports
                .gift_cards
                .mark_card_notified(&card.id, self.now())
                .await;
        };
        self.publish_recorded(event.into()).await?;
        self.ports
            .gift_cards
            .mark_card_notified(&card.id, self.now())
            .await
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
