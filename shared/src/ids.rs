//! Prefixed ULID identifiers (`user_01H…`). Each id is its own type, so an order id can never be
//! passed where a user id is expected, and parsing checks both the prefix and the ULID.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Why an id string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id")]
pub struct InvalidId {
    pub kind: &'static str,
    pub value: String,
}

/// A ULID whose time part is `time` (now when `None`, read while no other id is made) and
/// which sorts after the ULID this process made last when that one has the same millisecond.
/// A ULID's random part would otherwise order ids of one millisecond by chance: two admin
/// actions made one after the other in the same millisecond could list in either order in an
/// audit log read newest first.
fn ulid_at(time: Option<chrono::DateTime<chrono::Utc>>) -> ulid::Ulid {
    static LAST: std::sync::Mutex<ulid::Ulid> = std::sync::Mutex::new(ulid::Ulid::nil());
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let fresh = ulid::Ulid::from_datetime(time.unwrap_or_else(chrono::Utc::now).into());
    let next = if fresh.timestamp_ms() == last.timestamp_ms() && fresh <= *last {
        // Past the largest random part of the millisecond (never in practice), chance again.
        last.increment().unwrap_or(fresh)
    } else {
        fresh
    };
    *last = next;
    next
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id; ids sort by creation time, within one millisecond too.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, ulid_at(None)))
            }

            /// A fresh id whose time part is `time`, so that ids sort as their times do.
            pub fn at(time: chrono::DateTime<chrono::Utc>) -> Self {
                Self(format!("{}{}", $prefix, ulid_at(Some(time))))
            }

            /// The time part of the id, to the millisecond.
            pub fn time(&self) -> chrono::DateTime<chrono::Utc> {
                let ms = ulid::Ulid::from_string(self.ulid_part()).map_or(0, |u| u.timestamp_ms());
                chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
                    .unwrap_or_default()
            }

            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                value
                    .strip_prefix($prefix)
                    .and_then(|rest| ulid::Ulid::from_string(rest).ok())
                    .map(|ulid| Self(format!("{}{}", $prefix, ulid)))
                    .ok_or_else(|| InvalidId { kind: stringify!($name), value: value.chars().take(64).collect() })
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The ULID part, without the prefix.
            pub fn ulid_part(&self) -> &str {
                &self.0[$prefix.len()..]
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(/// A user account.
    UserId, "user_");
prefixed_id!(/// A wallet transaction (credit, debit or refund).
    TransactionId, "txn_");
prefixed_id!(/// A product (a brand's gift card).
    ProductId, "prod_");
prefixed_id!(/// A purchasable denomination of a product.
    VariantId, "var_");
prefixed_id!(/// An order.
    OrderId, "order_");
prefixed_id!(/// An issued gift card.
    GiftCardId, "gc_");
prefixed_id!(/// An API key (its id, never its secret).
    ApiKeyId, "key_");
prefixed_id!(/// A webhook endpoint.
    WebhookEndpointId, "we_");
prefixed_id!(/// One event's delivery to one webhook endpoint.
    WebhookDeliveryId, "wd_");
prefixed_id!(/// One entry of the audit log.
    AuditId, "aud_");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_check_their_prefix() {
        let id = OrderId::generate();
        assert!(id.as_str().starts_with("order_"));
        assert_eq!(OrderId::parse(id.as_str()).unwrap(), id);
        assert!(UserId::parse(id.as_str()).is_err());
        assert!(OrderId::parse("order_not-a-ulid").is_err());
        assert!(OrderId::parse("").is_err());
    }

    #[test]
    fn ids_made_one_after_another_sort_as_they_were_made_within_a_millisecond_too() {
        // Other tests make ids on other threads meanwhile; the order holds all the same.
        let ids: Vec<AuditId> = (0..10_000).map(|_| AuditId::generate()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        let milliseconds: std::collections::HashSet<i64> =
            ids.iter().map(|id| id.time().timestamp_millis()).collect();
        assert!(
            milliseconds.len() < ids.len(),
            "some ids share a millisecond, so the order was not the clock's alone"
        );
        // An id made for a given time still carries that time.
        let earlier = chrono::Utc::now() - chrono::Duration::seconds(1);
        assert_eq!(
            AuditId::at(earlier).time().timestamp_millis(),
            earlier.timestamp_millis()
        );
    }

    #[test]
    fn lowercase_ulids_are_normalised() {
        let id = VariantId::generate();
        let lower = format!("var_{}", id.ulid_part().to_lowercase());
        assert_eq!(VariantId::parse(&lower).unwrap(), id);
    }
}
