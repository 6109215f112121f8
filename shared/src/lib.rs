//! Giftify core: the domain (money, ids, catalogue, wallet, orders, gift cards), the rules that
//! govern it, the ports a backend must implement, and the use cases written once against them.
//!
//! Nothing here knows about HTTP, SQLite or AWS: the embedded backend and the AWS backend in
//! `giftify-infra` implement [`ports`], and the drivers (`giftify-api`, `giftify-workers`) call
//! the use cases on [`Giftify`].

pub mod api_keys;
pub mod audit;
pub mod card_life;
pub mod cart;
pub mod catalogue;
pub mod clock;
pub mod codes;
pub mod error;
pub mod events;
pub mod figures;
pub mod idempotency;
pub mod ids;
pub mod inbox;
pub mod keys;
pub mod labels;
pub mod ledger;
pub mod migration;
pub mod money;
pub mod order;
pub mod order_watch;
pub mod ports;
pub mod rate_limits;
pub mod sandbox;
pub mod status;
pub mod usecases;
pub mod user;
pub mod vault;
pub mod wallet;
pub mod webhooks;

pub use clock::{Clock, SystemClock};
pub use error::{CardRefusal, Error, Missing, Result};
pub use money::Paise;
pub use usecases::{Giftify, Rules};
