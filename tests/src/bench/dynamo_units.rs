//! DynamoDB's billing arithmetic, applied to items in the wire format (`{"attr": {"S": "…"}}`),
//! because moto's `ConsumedCapacity` is a constant per call (1.0 for a write, 0.5 for a read,
//! nothing for `TransactWriteItems`) rather than a function of item size.
//!
//! The rules, from the DynamoDB developer guide ("Item sizes", "Read/write capacity unit
//! consumption", "Global secondary indexes: provisioned throughput considerations"):
//! - item size = Σ (UTF-8 length of the attribute name + size of the value); a string is its
//!   UTF-8 length, binary its byte length, a number about one byte per two significant digits
//!   plus one, a boolean or null one byte, a list or map 3 bytes plus one per element plus
//!   its elements (and, for a map, their names);
//! - a write request unit covers 1 KB of the larger of the item before and after the write
//!   (rounded up, at least 1); a transactional write costs two per KB;
//! - a read request unit covers 4 KB of a strongly consistent read (half a unit when
//!   eventually consistent, two when transactional); a query is billed on the total size of
//!   the items it reads, rounded up once;
//! - a global secondary index write: one per index entry put or deleted, two when an index
//!   key changes (delete + put), one when only a projected attribute changes, none when the
//!   item is in the index neither before nor after; each billed on the size of the projected
//!   entry, at the standard (not transactional) rate, since index updates are propagated
//!   asynchronously outside the transaction.

use giftify_infra::aws::tables::{Index, Key, Projection};
use serde_json::{Map, Value};

/// An item in DynamoDB's JSON wire format.
pub type WireItem = Map<String, Value>;

/// The billed size of an item, in bytes.
pub fn item_size(item: &WireItem) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|m| m.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, str::len),
        "N" => inner.as_str().map_or(0, number_size),
        "B" => inner.as_str().map_or(0, base64_len),
        "BOOL" | "NULL" => 1,
        "SS" => strings(inner).map(str::len).sum(),
        "NS" => strings(inner).map(number_size).sum(),
        "BS" => strings(inner).map(base64_len).sum(),
        "L" => {
            3 + inner
                .as_array()
                .map_or(0, |items| items.iter().map(|v| value_size(v) + 1).sum())
        }
        "M" => {
            3 + inner.as_object().map_or(0, |fields| {
                fields
                    .iter()
                    .map(|(name, v)| name.len() + value_size(v) + 1)
                    .sum()
            })
        }
        _ => 0,
    }
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// One byte per two significant digits, plus one.
fn number_size(number: &str) -> usize {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.max(1).div_ceil(2) + 1
}

fn base64_len(encoded: &str) -> usize {
    let padding = encoded.chars().rev().take_while(|c| *c == '=').count();
    (encoded.len() / 4 * 3).saturating_sub(padding)
}

/// Write request units of writing an item of this many bytes (before the ×2 of a
/// transaction).
pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Read request units of a strongly consistent read of this many bytes.
pub fn read_units(bytes: usize) -> f64 {
    bytes.div_ceil(4096).max(1) as f64
}

/// The entry an item would have in `index`, or `None` when the item is not in the index (it
/// lacks an index key attribute: a sparse index).
pub fn index_entry(item: &WireItem, table_key: Key, index: &Index) -> Option<WireItem> {
    let index_keys = std::iter::once(index.key.partition).chain(index.key.sort);
    if index_keys.clone().any(|k| !item.contains_key(k)) {
        return None;
    }
    let keep = |name: &str| -> bool {
        let is_key = index_keys.clone().any(|k| k == name)
            || name == table_key.partition
            || table_key.sort == Some(name);
        match index.projection {
            Projection::All => true,
            Projection::KeysOnly => is_key,
            Projection::Include(attributes) => is_key || attributes.contains(&name),
        }
    };
    Some(
        item.iter()
            .filter(|(name, _)| keep(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
    )
}

/// Write request units the index `index` costs when an item goes from `before` to `after`
/// (either may be absent).
pub fn index_write_units(
    table_key: Key,
    index: &Index,
    before: Option<&WireItem>,
    after: Option<&WireItem>,
) -> f64 {
    let old = before.and_then(|item| index_entry(item, table_key, index));
    let new = after.and_then(|item| index_entry(item, table_key, index));
    match (old, new) {
        (None, None) => 0.0,
        (Some(old), None) => write_units(item_size(&old)),
        (None, Some(new)) => write_units(item_size(&new)),
        (Some(old), Some(new)) => {
            let key_of = |entry: &WireItem| {
                std::iter::once(index.key.partition)
                    .chain(index.key.sort)
                    .map(|k| entry.get(k).cloned())
                    .collect::<Vec<_>>()
            };
            if key_of(&old) != key_of(&new) {
                write_units(item_size(&old)) + write_units(item_size(&new))
            } else if old != new {
                write_units(item_size(&old).max(item_size(&new)))
            } else {
                0.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(value: Value) -> WireItem {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn sizes_follow_the_documented_rules() {
        // "name" (4) + "Asha" (4); "age" (3) + 2 digits → 2; "ok" (2) + 1.
        let person = item(json!({"name": {"S": "Asha"}, "age": {"N": "42"}, "ok": {"BOOL": true}}));
        assert_eq!(item_size(&person), 8 + 5 + 3);
        // Trailing and leading zeroes are not significant: 1000 is one digit → 2 bytes.
        assert_eq!(number_size("1000"), 2);
        assert_eq!(number_size("-0.00123"), 3);
        assert_eq!(number_size("12345"), 4);
        // A list: 3 + per element (size + 1); a map adds the element names.
        let nested =
            item(json!({"l": {"L": [{"S": "ab"}, {"N": "1"}]}, "m": {"M": {"k": {"S": "v"}}}}));
        assert_eq!(item_size(&nested), (1 + 3 + 3 + 3) + (1 + 3 + 1 + 1 + 1));
        assert_eq!(base64_len("aGk="), 2);
    }

    #[test]
    fn units_round_up_per_kilobyte_for_writes_and_four_for_reads() {
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(4096), 1.0);
        assert_eq!(read_units(4097), 2.0);
    }

    #[test]
    fn index_writes_count_puts_deletes_key_changes_and_projection_changes() {
        let table_key = Key {
            partition: "orderId",
            sort: None,
        };
        let all = Index {
            name: "status-index",
            key: Key {
                partition: "status",
                sort: None,
            },
            projection: Projection::All,
        };
        let keys_only = Index {
            projection: Projection::KeysOnly,
            ..all
        };
        let pending =
            item(json!({"orderId": {"S": "o1"}, "status": {"S": "PENDING"}, "n": {"N": "1"}}));
        let pending_touched =
            item(json!({"orderId": {"S": "o1"}, "status": {"S": "PENDING"}, "n": {"N": "2"}}));
        let done = item(json!({"orderId": {"S": "o1"}, "status": {"S": "DONE"}, "n": {"N": "1"}}));
        let unindexed = item(json!({"orderId": {"S": "o1"}, "n": {"N": "1"}}));
        assert_eq!(
            index_write_units(table_key, &all, None, Some(&pending)),
            1.0
        );
        assert_eq!(
            index_write_units(table_key, &all, Some(&pending), Some(&done)),
            2.0
        );
        assert_eq!(
            index_write_units(table_key, &all, Some(&pending), Some(&pending_touched)),
            1.0
        );
        assert_eq!(
            index_write_units(
                table_key,
                &keys_only,
                Some(&pending),
                Some(&pending_touched)
            ),
            0.0,
            "a keys-only index ignores attributes it does not copy"
        );
        assert_eq!(
            index_write_units(table_key, &all, Some(&pending), Some(&unindexed)),
            1.0
        );
        assert_eq!(
            index_write_units(table_key, &all, Some(&unindexed), Some(&unindexed)),
            0.0
        );
    }
}
