//! A card's life after issue: the atomic steps that redeem a Giftify card into a wallet and
//! return a card to Giftify, each a card change and the money it moves.

use crate::ids::GiftCardId;
use crate::ledger::Movement;
use crate::vault::GiftCard;
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
    /// The card is a brand code, which goes back to its pool.
    pub code_back_to_pool: bool,
    pub now: DateTime<Utc>,
}
