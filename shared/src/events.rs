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
    /// Why the order was given up and refunded in full, for an order given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<String>,
    /// The client's own reference of the order, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_reference: Option<String>,
    /// The client's metadata of the order; empty when it gave none.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub occurred_at: DateTime<Utc>,
    /// The event's place among its order's events, from 1, given when the event is recorded
    /// ([`crate::ports::EventFeed::record_event`]): of two events of one order, the lower was
    /// recorded first, whichever arrives first. Redeliveries are told apart by `eventId`.
    #[serde(default)]
    pub sequence: u64,
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
            refund_reason: order.fulfillment.refund_reason.clone(),
            client_reference: order
                .labels
                .client_reference
                .as_ref()
                .map(|r| r.as_str().to_string()),
            metadata: order.labels.metadata.pairs().clone(),
            occurred_at: order.fulfillment.fulfilled_at.unwrap_or(order.updated_at),
            sequence: 0,
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
    /// The event's place among its order's events (see [`OrderEvent::sequence`]).
    #[serde(default)]
    pub sequence: u64,
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
            sequence: 0,
        })
    }
}

/// Which feed a reader pages through: one user's events, or every event (admins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feed {
    OfUser(UserId),
    All,
}

/// A page of a feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedPage {
    /// In feed order: the order in which the events were recorded.
    pub events: Vec<Event>,
    /// Where the next page starts; the same cursor again when there is nothing new yet.
    pub next: FeedCursor,
    /// Whether more events were already recorded after this page.
    pub has_more: bool,
}

/// A place in one feed, opaque to clients: `base64url("v1:<u|a>:<position>")`. The feed it
/// belongs to is part of it, so a cursor of one feed is refused by another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedCursor {
    pub all: bool,
    /// How many events of the feed come at or before it: the next page starts after it.
    pub position: u64,
}

impl FeedCursor {
    pub fn start(feed: &Feed) -> Self {
        FeedCursor {
            all: *feed == Feed::All,
            position: 0,
        }
    }

    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            "v1:{}:{}",
            if self.all { "a" } else { "u" },
            self.position
        ))
    }

    /// # Errors
    /// [`crate::Error::Validation`] naming `after` for a cursor that is not one of `feed`'s.
    pub fn parse(raw: &str, feed: &Feed) -> crate::Result<Self> {
        use base64::Engine;
        let bad = || crate::Error::validation("after", "not a cursor of this feed");
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(bad)?;
        let mut parts = text.splitn(3, ':');
        let (Some("v1"), Some(kind), Some(position)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let all = match kind {
            "a" => true,
            "u" => false,
            _ => return Err(bad()),
        };
        if all != (*feed == Feed::All) {
            return Err(bad());
        }
        let position = position.parse().map_err(|_| bad())?;
        Ok(FeedCursor { all, position })
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

    /// Whose feed the event is in: the order's buyer (for a card, its holder).
    pub fn user_id(&self) -> &UserId {
        match self {
            Event::Order(e) => &e.user_id,
            Event::Card(e) => &e.user_id,
        }
    }

    /// When what the event announces happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Event::Order(e) => e.occurred_at,
            Event::Card(e) => e.occurred_at,
        }
    }

    pub fn sequence(&self) -> u64 {
        match self {
            Event::Order(e) => e.sequence,
            Event::Card(e) => e.sequence,
        }
    }

    /// The event as recorded at this place among its order's events.
    pub fn sequenced(mut self, sequence: u64) -> Self {
        match &mut self {
            Event::Order(e) => e.sequence = sequence,
            Event::Card(e) => e.sequence = sequence,
        }
        self
    }

    /// The exact JSON that subscribers receive and the feed answers.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// An event from its JSON.
    /// # Errors
    /// [`crate::Error::Internal`] for text that is no event (corrupt data).
    pub fn from_json(raw: &str) -> crate::Result<Self> {
        serde_json::from_str(raw).map_err(|e| crate::Error::Internal(e.into()))
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
