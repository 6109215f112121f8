//! A card's life after issue: the atomic steps that redeem a Giftify card into a wallet and
//! return a card to Giftify, each a card change and the money it moves.

use crate::ids::GiftCardId;
use crate::ledger::Movement;
use crate::vault::{GiftCard, SealedCard};
use chrono::{DateTime, Utc};

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
