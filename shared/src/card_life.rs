//! A card's life after issue: the atomic steps that redeem a Giftify card into a wallet and
//! return a card to Giftify, each a card change and the money it moves.

use crate::Paise;
use crate::catalogue::CatalogueEntry;
use crate::codes::FulfillmentSource;
use crate::ids::{GiftCardId, VariantId};
use crate::ledger::Movement;
use crate::vault::{GiftCard, SealedCard};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeSet;

/// A pass of card expiry: ACTIVE cards whose expiry date is before `today` become EXPIRED, at
/// most `limit` of them. A card of a variant Giftify mints (GENERATED) leaves what Giftify owes
/// at its face value as it expires, with the card's change ([`crate::figures::Tally::of_expiry`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiry {
    pub today: NaiveDate,
    pub limit: u32,
    /// The variants whose cards Giftify mints, read from the catalogue for this pass (a
    /// variant that issued a card never changes its source).
    pub minted: BTreeSet<VariantId>,
}

impl Expiry {
    pub fn new(today: NaiveDate, limit: u32, catalogue: &[CatalogueEntry]) -> Self {
        Expiry {
            today,
            limit,
            minted: catalogue
                .iter()
                .filter(|e| e.variant.fulfillment_source == FulfillmentSource::Generated)
                .map(|e| e.variant.id.clone())
                .collect(),
        }
    }

    /// What an expiring card of `variant` and `denomination` (rupees) stops being owed: its
    /// face value for a Giftify card, nothing for a brand's.
    pub fn owed_face(&self, variant: &VariantId, denomination: i64) -> Paise {
        if self.minted.contains(variant) {
            Paise::new(denomination.saturating_mul(100))
        } else {
            Paise::ZERO
        }
    }
}

/// A Giftify card redeemed into a wallet: the card ACTIVE → REDEEMED and the REDEEM credit of
/// its face value, as one atomic step.
#[derive(Clone, Debug)]
pub struct Redemption {
    pub card_id: GiftCardId,
    pub credit: Movement,
}

/// A card returned by its owner: the card ACTIVE → CANCELLED, its price refunded, and its unit
/// back in its variant's stock — a brand code back in the pool, available again — as one
/// atomic step.
#[derive(Clone, Debug)]
pub struct CardReturn {
    pub card: GiftCard,
    /// [`Movement::refund_of_returned`].
    pub refund: Movement,
    /// For a brand code, the code as it goes back to its pool: under a new id, its secrets
    /// sealed again for it (a sealed secret is bound to its id, and the cancelled card keeps
    /// the old one). Unless its batch was voided meanwhile: then the code is withdrawn instead
    /// and the stock does not move.
    pub code: Option<ReturnedCode>,
    pub now: DateTime<Utc>,
}

/// A returned card's brand code, sealed again under the id it will next be issued with.
#[derive(Clone, Debug)]
pub struct ReturnedCode {
    pub id: GiftCardId,
    pub sealed: SealedCard,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiring_giftify_card_stops_being_owed_at_face_value_and_a_brands_card_never_was() {
        let minted = VariantId::generate();
        let brand = VariantId::generate();
        let expiry = Expiry {
            today: NaiveDate::from_ymd_opt(2026, 12, 7).expect("a date"),
            limit: 10,
            minted: BTreeSet::from([minted.clone()]),
        };
        assert_eq!(expiry.owed_face(&minted, 500), Paise::new(50_000));
        assert_eq!(expiry.owed_face(&brand, 500), Paise::ZERO);
    }
}
