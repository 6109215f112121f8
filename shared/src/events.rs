//! Events, published after the commit, at least once: an order's, one per final status (and
//! per cancel), and a card's, one when it is redeemed or returned. They carry amounts and a
//! summary, never a card number or PIN.

use crate::Paise;
use crate::ids::{GiftCardId, OrderId, UserId, VariantId};
use crate::order::{Order, OrderStatus};
use crate::vault::{GiftCard, GiftCardStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// The client's own reference of the order, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_reference: Option<String>,
    /// The client's metadata of the order; empty when it gave none.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
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
            client_reference: order
                .labels
                .client_reference
                .as_ref()
                .map(|r| r.as_str().to_string()),
            metadata: order.labels.metadata.pairs().clone(),
            occurred_at: order.fulfillment.fulfilled_at.unwrap_or(order.updated_at),
        })
    }
}

/// A card's event: `gift_card.redeemed` or `gift_card.returned`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardEvent {
    /// Stable per card: a card is redeemed or returned once.
    pub event_id: String,
    pub event_type: String,
    pub gift_card_id: GiftCardId,
    pub order_id: OrderId,
    /// The buyer who holds the card.
    pub user_id: UserId,
    pub variant_id: VariantId,
    pub product_name: String,
    pub variant_name: String,
    pub denomination: i64,
    pub status: GiftCardStatus,
    /// What reached a wallet: the face value credited to the redeemer, or the price refunded
    /// to the buyer.
    pub amount: Paise,
    /// The wallet a redeemed card was credited to; anyone signed in may redeem a card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed_by: Option<UserId>,
    pub occurred_at: DateTime<Utc>,
}

impl CardEvent {
    /// The event a card owes: `None` unless it was redeemed or returned.
    pub fn for_card(card: &GiftCard) -> Option<Self> {
        let (event_type, amount, occurred_at) = match card.status {
            GiftCardStatus::Redeemed => {
                ("gift_card.redeemed", card.face_value()?, card.redeemed_at?)
            }
            GiftCardStatus::Cancelled => {
                ("gift_card.returned", card.purchase_price, card.returned_at?)
            }
            GiftCardStatus::Active | GiftCardStatus::Expired => return None,
        };
        Some(CardEvent {
            event_id: format!(
                "evt_{}_{}",
                card.id.ulid_part(),
                card.status.as_str().to_lowercase()
            ),
            event_type: event_type.to_string(),
            gift_card_id: card.id.clone(),
            order_id: card.order_id.clone(),
            user_id: card.user_id.clone(),
            variant_id: card.variant_id.clone(),
            product_name: card.product_name.clone(),
            variant_name: card.variant_name.clone(),
            denomination: card.denomination,
            status: card.status,
            amount,
            redeemed_by: card.redeemed_by.clone(),
            occurred_at,
        })
    }
}

/// Anything Giftify announces; subscribers tell them apart by `eventType`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Event {
    Order(OrderEvent),
    Card(CardEvent),
}

impl Event {
    pub fn event_id(&self) -> &str {
        match self {
            Event::Order(e) => &e.event_id,
            Event::Card(e) => &e.event_id,
        }
    }

    pub fn event_type(&self) -> &str {
        match self {
            Event::Order(e) => &e.event_type,
            Event::Card(e) => &e.event_type,
        }
    }

    /// The order the event belongs to (a card's, for a card event).
    pub fn order_id(&self) -> &OrderId {
        match self {
            Event::Order(e) => &e.order_id,
            Event::Card(e) => &e.order_id,
        }
    }

    /// The order's or the card's status after the event, for subscription filters.
    pub fn status(&self) -> &'static str {
        match self {
            Event::Order(e) => e.status.as_str(),
            Event::Card(e) => e.status.as_str(),
        }
    }
}

impl From<OrderEvent> for Event {
    fn from(event: OrderEvent) -> Self {
        Event::Order(event)
    }
}

impl From<CardEvent> for Event {
    fn from(event: CardEvent) -> Self {
        Event::Card(event)
    }
}
