//! The shopping cart: one per user, a list of lines with the price seen when added.

use crate::ids::{OrderId, ProductId, VariantId};
use crate::order::LineRequest;
use crate::{Error, Paise, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CartLine {
    pub variant_id: VariantId,
    pub product_id: ProductId,
    pub product_name: String,
    pub variant_name: String,
    pub quantity: u32,
    /// Selling price when the line was last written.
    pub unit_price: Paise,
}

impl CartLine {
    pub fn total_price(&self) -> Paise {
        self.unit_price
            .checked_mul(i64::from(self.quantity))
            .unwrap_or(Paise::new(i64::MAX))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Cart {
    pub lines: Vec<CartLine>,
    /// The order checking this cart out, if any: edits are refused until it is final.
    pub locked_by: Option<OrderId>,
    /// Bumped on every change, so a checkout can lock exactly the cart it priced.
    pub version: u64,
}

impl Cart {
    pub fn total_items(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity)).sum()
    }

    pub fn total_amount(&self) -> Result<Paise> {
        self.lines.iter().try_fold(Paise::ZERO, |acc, l| {
            l.unit_price
                .checked_mul(i64::from(l.quantity))
                .and_then(|t| acc.checked_add(t))
                .ok_or_else(|| Error::internal("cart total overflows"))
        })
    }

    /// The lines a checkout of this cart orders.
    pub fn line_requests(&self) -> Vec<LineRequest> {
        self.lines
            .iter()
            .map(|l| LineRequest {
                variant_id: l.variant_id.clone(),
                quantity: l.quantity,
            })
            .collect()
    }
}

/// Most distinct variants a cart holds: a cart must stay checkable-out as one order.
pub const MAX_CART_LINES: usize = crate::order::MAX_LINES_PER_ORDER;
