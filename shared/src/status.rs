//! The order status machine, on its own so that errors can name a status without depending on
//! orders.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Processing,
    Fulfilled,
    PartiallyFulfilled,
    Refunded,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Pending,
        OrderStatus::Processing,
        OrderStatus::Fulfilled,
        OrderStatus::PartiallyFulfilled,
        OrderStatus::Refunded,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Processing => "PROCESSING",
            OrderStatus::Fulfilled => "FULFILLED",
            OrderStatus::PartiallyFulfilled => "PARTIALLY_FULFILLED",
            OrderStatus::Refunded => "REFUNDED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        OrderStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
    }

    /// The statuses an order may move to `next` from: the state machine read backwards, for a
    /// store that writes a move conditionally without reading the order first.
    pub fn sources_of(next: OrderStatus) -> impl Iterator<Item = OrderStatus> {
        OrderStatus::ALL
            .into_iter()
            .filter(move |status| status.can_become(next))
    }

    pub fn is_final(self) -> bool {
        !matches!(self, OrderStatus::Pending | OrderStatus::Processing)
    }

    /// The state machine: `PENDING → PROCESSING → FULFILLED | PARTIALLY_FULFILLED | REFUNDED`,
    /// `PENDING → CANCELLED` (the customer's cancel), and `PENDING → REFUNDED` (given up: an
    /// operator's refund, or the reconciler's when an order is stuck past its deadline before
    /// a worker started it). Nothing leaves a final status.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Processing)
                | (Pending, Cancelled)
                | (Pending, Refunded)
                | (Processing, Fulfilled)
                | (Processing, PartiallyFulfilled)
                | (Processing, Refunded)
        )
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
