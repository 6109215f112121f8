//! The DynamoDB tables, defined once: `giftify aws bootstrap` creates them from here, the
//! adapter takes its names from here, and a drift test compares them with the Terraform.

/// A key attribute: every key in Giftify is a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub partition: &'static str,
    pub sort: Option<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Index {
    pub name: &'static str,
    pub key: Key,
    pub projection: Projection,
}

/// The attributes an index copies from its table, besides the table's and the index's keys
/// (always copied). Every write that changes a copied attribute of an item in the index is
/// also a write to the index, billed by the size of the copy: an index whose readers only
/// need the keys copies only the keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projection {
    All,
    KeysOnly,
    Include(&'static [&'static str]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableDef {
    /// The name without the `giftify-[<stage>-]` prefix.
    pub short_name: &'static str,
    pub key: Key,
    pub indexes: &'static [Index],
    /// Attribute holding an epoch-seconds expiry, when records expire.
    pub ttl_attribute: Option<&'static str>,
}

const fn key(partition: &'static str, sort: Option<&'static str>) -> Key {
    Key { partition, sort }
}

/// An index that copies whole items: for the index whose readers need every attribute and
/// whose items rarely change.
const fn index(name: &'static str, partition: &'static str, sort: Option<&'static str>) -> Index {
    Index {
        name,
        key: key(partition, sort),
        projection: Projection::All,
    }
}

/// An index that copies only the keys: readers fetch the items they need by key. Its entry
/// is written when an item enters or leaves the index or changes an index key, never when
/// another attribute changes (a balance, a stock count, a status note).
const fn keys_index(
    name: &'static str,
    partition: &'static str,
    sort: Option<&'static str>,
) -> Index {
    Index {
        name,
        key: key(partition, sort),
        projection: Projection::KeysOnly,
    }
}

pub const USERS: TableDef = TableDef {
    short_name: "users",
    key: key("userId", None),
    // An email is found through its `EMAIL#` guard item, which also keeps it unique.
    indexes: &[],
    ttl_attribute: None,
};

pub const WALLET_TRANSACTIONS: TableDef = TableDef {
    short_name: "wallet-transactions",
    key: key("userId", Some("transactionId")),
    // A user's ledger is the table's own partition, in order of its sortable ids. Every
    // account's ledger by day, for the admins' export: `ledgerDay` is the UTC day and one of
    // its four partitions (`2026-12-07#2`, see `wallet.rs`). Whole items: a ledger entry never
    // changes, so its copy is written once.
    indexes: &[index(
        "ledgerDay-createdAt-index",
        "ledgerDay",
        Some("createdAt"),
    )],
    ttl_attribute: None,
};

pub const PRODUCTS: TableDef = TableDef {
    short_name: "products",
    key: key("productId", None),
    indexes: &[
        // DynamoDB keys cannot be booleans: `activeKey` is "true" on active products only.
        index("active-name-index", "activeKey", Some("name")),
    ],
    ttl_attribute: None,
};

pub const PRODUCT_VARIANTS: TableDef = TableDef {
    short_name: "product-variants",
    key: key("productId", Some("variantId")),
    indexes: &[keys_index("variantId-index", "variantId", None)],
    ttl_attribute: None,
};

pub const CART: TableDef = TableDef {
    short_name: "cart",
    key: key("userId", None),
    indexes: &[],
    ttl_attribute: None,
};

pub const ORDERS: TableDef = TableDef {
    short_name: "orders",
    key: key("orderId", None),
    indexes: &[
        keys_index("userId-createdAt-index", "userId", Some("createdAt")),
        keys_index("status-createdAt-index", "status", Some("createdAt")),
        // Sparse: `notifyPending` exists only while a final order's event is unsent.
        keys_index("notifyPending-index", "notifyPending", Some("createdAt")),
    ],
    ttl_attribute: None,
};

pub const GIFT_CARDS: TableDef = TableDef {
    short_name: "gift-cards",
    key: key("giftCardId", None),
    indexes: &[
        keys_index("userId-issuedAt-index", "userId", Some("issuedAt")),
        // The keyed HMAC of the number, never the number.
        keys_index("giftCardNumber-index", "giftCardNumberHash", None),
        // Sparse: `activeCard` exists only while a card is ACTIVE; the reconciler finds the
        // cards past their expiry date without reading the others.
        keys_index(
            "activeCard-expiryDate-index",
            "activeCard",
            Some("expiryDate"),
        ),
        // Sparse: `notifyPending` exists only while a redeemed or returned card's event is
        // unsent.
        keys_index("notifyPending-index", "notifyPending", Some("issuedAt")),
    ],
    ttl_attribute: None,
};

pub const IDEMPOTENCY_KEYS: TableDef = TableDef {
    short_name: "idempotency-keys",
    key: key("scopeKey", None),
    indexes: &[],
    ttl_attribute: Some("expiresAt"),
};

pub const REFRESH_TOKENS: TableDef = TableDef {
    short_name: "refresh-tokens",
    key: key("tokenHash", None),
    indexes: &[],
    ttl_attribute: Some("expiresAt"),
};

/// Failed logins per account, and the request counts of API keys per rate window
/// (`rate#<keyId>#<window start>`), each expiring by its TTL.
pub const LOGIN_THROTTLE: TableDef = TableDef {
    short_name: "login-throttle",
    key: key("account", None),
    indexes: &[],
    ttl_attribute: Some("expiresAt"),
};

/// Brand codes of INVENTORY variants, sealed, keyed by the keyed HMAC of the number: the key
/// itself makes a number importable once, for good.
pub const INVENTORY_CODES: TableDef = TableDef {
    short_name: "inventory-codes",
    key: key("codeHash", None),
    indexes: &[
        // Sparse: `availableVariant` exists only while a code is available, `availableOrder`
        // is "<expiry or 9999-12-31>#<codeId>", so a query reads a pool first-expiring first.
        // Whole items: allocation issues the code's sealed secrets from what it read.
        index(
            "availableVariant-availableOrder-index",
            "availableVariant",
            Some("availableOrder"),
        ),
        // `batchKey` = "<variantId>#<batchRef>": the batch listing counts, a void withdraws.
        Index {
            name: "batchKey-codeId-index",
            key: key("batchKey", Some("codeId")),
            projection: Projection::Include(&["state", "expiryDate", "returned"]),
        },
    ],
    ttl_attribute: None,
};

/// One item per code import: its report, answered again for the same reference.
pub const CODE_BATCHES: TableDef = TableDef {
    short_name: "code-batches",
    key: key("variantId", Some("batchRef")),
    indexes: &[],
    ttl_attribute: None,
};

/// Card reveals (kept: they carry no expiry) and the last failure of each queue message, kept
/// as long as the message can sit in the dead-letter queue and then expired.
pub const AUDIT: TableDef = TableDef {
    short_name: "audit",
    key: key("subjectId", Some("auditId")),
    indexes: &[],
    ttl_attribute: Some("expiresAt"),
};

/// Users' API keys, by id (the id is in the key, so a request finds its key with one
/// consistent read); each user's keys through a keys-only index.
pub const API_KEYS: TableDef = TableDef {
    short_name: "api-keys",
    key: key("keyId", None),
    indexes: &[keys_index(
        "userId-createdAt-index",
        "userId",
        Some("createdAt"),
    )],
    ttl_attribute: None,
};

/// The event feed: a partition per feed (`user#<id>`, `all`) and per order (`order#<id>`),
/// sorted by the event's 20-digit position in it, and a guard item per event id
/// (`event#<id>`, position 0) that makes recording once.
pub const EVENTS: TableDef = TableDef {
    short_name: "events",
    key: key("feedKey", Some("position")),
    indexes: &[],
    ttl_attribute: None,
};

/// Webhook endpoints (partition `endpoints`) and each endpoint's deliveries (partition
/// `deliveries#<endpoint id>`, with a guard item per event), see `aws/webhooks.rs`. Sparse:
/// only pending deliveries are in the due index, by when they are due, for the reconciler's
/// sweep of wake-ups that were lost.
pub const WEBHOOKS: TableDef = TableDef {
    short_name: "webhooks",
    key: key("scope", Some("itemKey")),
    indexes: &[keys_index("due-index", "dueShard", Some("dueAt"))],
    ttl_attribute: None,
};

/// The daily figures (`giftify_shared::figures`): an item per shard and UTC day, its
/// counters added to by the transactions that change money, orders and cards. A report reads
/// each shard's days with one query; no table is scanned.
pub const DAILY_FIGURES: TableDef = TableDef {
    short_name: "daily-figures",
    key: key("shard", Some("day")),
    indexes: &[],
    ttl_attribute: None,
};

/// Every table, in creation order.
pub const ALL: [TableDef; 17] = [
    USERS,
    WALLET_TRANSACTIONS,
    PRODUCTS,
    PRODUCT_VARIANTS,
    CART,
    ORDERS,
    GIFT_CARDS,
    IDEMPOTENCY_KEYS,
    REFRESH_TOKENS,
    LOGIN_THROTTLE,
    AUDIT,
    INVENTORY_CODES,
    CODE_BATCHES,
    API_KEYS,
    EVENTS,
    WEBHOOKS,
    DAILY_FIGURES,
];

impl TableDef {
    /// `giftify-<table>`, or `giftify-<stage>-<table>` when a stage is set.
    pub fn name(&self, stage: Option<&str>) -> String {
        match stage {
            Some(stage) => format!("giftify-{stage}-{}", self.short_name),
            None => format!("giftify-{}", self.short_name),
        }
    }

    /// Every attribute used in a key of the table or an index.
    pub fn key_attributes(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for key in std::iter::once(&self.key).chain(self.indexes.iter().map(|i| &i.key)) {
            for name in std::iter::once(key.partition).chain(key.sort) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }
}

/// The resolved names of every table for one stage.
#[derive(Clone, Debug)]
pub struct TableNames {
    pub users: String,
    pub wallet_transactions: String,
    pub products: String,
    pub product_variants: String,
    pub cart: String,
    pub orders: String,
    pub gift_cards: String,
    pub idempotency_keys: String,
    pub refresh_tokens: String,
    pub login_throttle: String,
    pub audit: String,
    pub inventory_codes: String,
    pub code_batches: String,
    pub api_keys: String,
    pub events: String,
    pub webhooks: String,
    pub daily_figures: String,
}

impl TableNames {
    pub fn for_stage(stage: Option<&str>) -> Self {
        TableNames {
            users: USERS.name(stage),
            wallet_transactions: WALLET_TRANSACTIONS.name(stage),
            products: PRODUCTS.name(stage),
            product_variants: PRODUCT_VARIANTS.name(stage),
            cart: CART.name(stage),
            orders: ORDERS.name(stage),
            gift_cards: GIFT_CARDS.name(stage),
            idempotency_keys: IDEMPOTENCY_KEYS.name(stage),
            refresh_tokens: REFRESH_TOKENS.name(stage),
            login_throttle: LOGIN_THROTTLE.name(stage),
            audit: AUDIT.name(stage),
            inventory_codes: INVENTORY_CODES.name(stage),
            code_batches: CODE_BATCHES.name(stage),
            api_keys: API_KEYS.name(stage),
            events: EVENTS.name(stage),
            webhooks: WEBHOOKS.name(stage),
            daily_figures: DAILY_FIGURES.name(stage),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_stage() {
        assert_eq!(ORDERS.name(None), "giftify-orders");
        assert_eq!(ORDERS.name(Some("prod")), "giftify-prod-orders");
        assert_eq!(
            TableNames::for_stage(Some("dev")).gift_cards,
            "giftify-dev-gift-cards"
        );
    }

    #[test]
    fn the_seed_tables_keep_their_keys() {
        assert_eq!(USERS.key, key("userId", None));
        assert_eq!(
            WALLET_TRANSACTIONS.key,
            key("userId", Some("transactionId"))
        );
        assert_eq!(PRODUCT_VARIANTS.key, key("productId", Some("variantId")));
        let card_indexes: Vec<&str> = GIFT_CARDS.indexes.iter().map(|i| i.name).collect();
        assert_eq!(
            card_indexes,
            [
                "userId-issuedAt-index",
                "giftCardNumber-index",
                "activeCard-expiryDate-index",
                "notifyPending-index"
            ]
        );
        assert_eq!(
            ORDERS.key_attributes(),
            vec!["orderId", "userId", "createdAt", "status", "notifyPending"]
        );
        let names: std::collections::HashSet<_> = ALL.iter().map(|t| t.short_name).collect();
        assert_eq!(names.len(), ALL.len(), "table names are unique");
    }
}
