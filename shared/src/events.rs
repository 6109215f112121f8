//! Order events: one per final status (and per cancel), published after the commit, at least
//! once. They carry amounts and an item summary, never a card number or PIN.

use crate::Paise;
use crate::ids::{OrderId, UserId, VariantId};
use crate::order::{Order, OrderStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderEvent {
    /// Stable per order and status, so subscribers can drop redeliveries.
    pub event_id: String,
    pub event_type: String,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub total_amount: Paise,
    pub paid_amount: Paise,
    pub refund_amount: Paise,
    pub fulfilled_amount: Paise,
    pub items: Vec<EventItem>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventItem {
    pub variant_id: VariantId,
    pub product_name: String,
    pub variant_name: String,
    pub unit_price: Paise,
    pub requested_quantity: u32,
    pub fulfilled_quantity: u32,
}

/// `order.fulfilled`, `order.partially_fulfilled`, `order.refunded`, `order.cancelled`; `None`
/// for a status that is not final.
pub fn event_type(status: OrderStatus) -> Option<&'static str> {
    match status {
        OrderStatus::Fulfilled => Some("order.fulfilled"),
        OrderStatus::PartiallyFulfilled => Some("order.partially_fulfilled"),
        OrderStatus::Refunded => Some("order.refunded"),
        OrderStatus::Cancelled => Some("order.cancelled"),
        OrderStatus::Pending | OrderStatus::Processing => None,
    }
}

impl OrderEvent {
    /// The event for an order in a final status.
    pub fn for_order(order: &Order) -> Option<Self> {
        let event_type = event_type(order.status)?;
        Some(OrderEvent {
            event_id: format!(
                "evt_{}_{}",
                order.id.ulid_part(),
                order.status.as_str().to_lowercase()
            ),
            event_type: event_type.to_string(),
            order_id: order.id.clone(),
            user_id: order.user_id.clone(),
            status: order.status,
            total_amount: order.total_amount,
            paid_amount: order.paid_amount,
            refund_amount: order.refund_amount,
            fulfilled_amount: order.fulfilled_value(),
            items: order
                .items
                .iter()
                .map(|l| EventItem {
                    variant_id: l.variant_id.clone(),
                    product_name: l.product_name.clone(),
                    variant_name: l.variant_name.clone(),
                    unit_price: l.unit_price,
                    requested_quantity: l.requested_quantity,
                    fulfilled_quantity: l.fulfilled_quantity,
                })
                .collect(),
            occurred_at: order.fulfillment.fulfilled_at.unwrap_or(order.updated_at),
        })
    }
}
