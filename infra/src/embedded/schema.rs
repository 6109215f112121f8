//! The schema and its migrations, in one place. `PRAGMA user_version` records how many
//! migrations a database has; opening applies the missing ones in one `IMMEDIATE` transaction,
//! so two processes opening a fresh file together migrate it once.
//!
//! Conventions: tables are `STRICT`; money is INTEGER paise; timestamps are INTEGER unix
//! milliseconds; ids are the prefixed ULID text; enums are their upper-case text with a CHECK.
//! Gift card secrets exist only sealed (ciphertext, keyed lookup hash, last four digits).

use rusqlite::{Connection, TransactionBehavior};

/// The first schema: every table of the embedded backend.
const V1: &str = r#"
CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,
    password_hash     TEXT NOT NULL,
    first_name        TEXT NOT NULL,
    last_name         TEXT NOT NULL,
    phone_number      TEXT,
    role              TEXT NOT NULL CHECK (role IN ('USER', 'ADMIN')),
    status            TEXT NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED', 'DELETED')),
    wallet_balance    INTEGER NOT NULL DEFAULT 0 CHECK (wallet_balance >= 0),
    is_email_verified INTEGER NOT NULL DEFAULT 0 CHECK (is_email_verified IN (0, 1)),
    is_phone_verified INTEGER NOT NULL DEFAULT 0 CHECK (is_phone_verified IN (0, 1)),
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    last_login_at     INTEGER
) STRICT;

CREATE TABLE wallet_transactions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    kind          TEXT NOT NULL CHECK (kind IN ('CREDIT', 'DEBIT', 'REFUND')),
    amount        INTEGER NOT NULL CHECK (amount >= 0),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    description   TEXT NOT NULL,
    order_id      TEXT,
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX wallet_transactions_by_user ON wallet_transactions (user_id, created_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id),
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

CREATE TABLE login_throttle (
    account           TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL CHECK (failures >= 0),
    window_started_at INTEGER NOT NULL,
    locked_until      INTEGER
) STRICT;

CREATE TABLE products (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL,
    brand                TEXT NOT NULL,
    category             TEXT NOT NULL,
    image_url            TEXT NOT NULL,
    thumbnail_url        TEXT NOT NULL,
    is_active            INTEGER NOT NULL CHECK (is_active IN (0, 1)),
    terms_and_conditions TEXT NOT NULL,
    how_to_redeem        TEXT NOT NULL,
    validity_days        INTEGER NOT NULL CHECK (validity_days >= 0),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
) STRICT;
CREATE INDEX products_by_name ON products (name);

CREATE TABLE variants (
    id                 TEXT PRIMARY KEY,
    product_id         TEXT NOT NULL REFERENCES products (id),
    name               TEXT NOT NULL,
    denomination       INTEGER NOT NULL,
    mrp                INTEGER NOT NULL CHECK (mrp > 0),
    cost_price         INTEGER NOT NULL CHECK (cost_price >= 0),
    discount_percent   INTEGER NOT NULL CHECK (discount_percent BETWEEN 0 AND 100),
    selling_price      INTEGER NOT NULL CHECK (selling_price >= 0),
    stock_quantity     INTEGER NOT NULL CHECK (stock_quantity >= 0),
    min_order_quantity INTEGER NOT NULL CHECK (min_order_quantity >= 1),
    max_order_quantity INTEGER NOT NULL CHECK (max_order_quantity >= min_order_quantity),
    is_active          INTEGER NOT NULL CHECK (is_active IN (0, 1)),
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX variants_by_product ON variants (product_id, denomination);

CREATE TABLE carts (
    user_id    TEXT PRIMARY KEY REFERENCES users (id),
    -- The order checking this cart out; edits are refused while it is set.
    locked_by  TEXT,
    version    INTEGER NOT NULL CHECK (version >= 0),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE cart_lines (
    user_id      TEXT NOT NULL REFERENCES carts (user_id),
    variant_id   TEXT NOT NULL,
    position     INTEGER NOT NULL,
    product_id   TEXT NOT NULL,
    product_name TEXT NOT NULL,
    variant_name TEXT NOT NULL,
    quantity     INTEGER NOT NULL CHECK (quantity > 0),
    unit_price   INTEGER NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (user_id, variant_id)
) STRICT;

CREATE TABLE orders (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users (id),
    status              TEXT NOT NULL CHECK (status IN ('PENDING', 'PROCESSING', 'FULFILLED',
                            'PARTIALLY_FULFILLED', 'REFUNDED', 'CANCELLED')),
    source              TEXT NOT NULL CHECK (source IN ('ITEMS', 'CART')),
    total_amount        INTEGER NOT NULL CHECK (total_amount >= 0),
    paid_amount         INTEGER NOT NULL CHECK (paid_amount >= 0),
    refund_amount       INTEGER NOT NULL CHECK (refund_amount BETWEEN 0 AND paid_amount),
    -- JSON array of order lines (see orders.rs: StoredLine).
    lines               TEXT NOT NULL,
    attempted_at        INTEGER,
    fulfilled_at        INTEGER,
    partial_fulfillment INTEGER NOT NULL DEFAULT 0 CHECK (partial_fulfillment IN (0, 1)),
    refund_processed    INTEGER NOT NULL DEFAULT 0 CHECK (refund_processed IN (0, 1)),
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    notified_at         INTEGER
) STRICT;
CREATE INDEX orders_by_user ON orders (user_id, created_at);
CREATE INDEX orders_by_status ON orders (status, created_at);
CREATE INDEX orders_unnotified ON orders (updated_at)
    WHERE notified_at IS NULL AND status NOT IN ('PENDING', 'PROCESSING');

CREATE TABLE gift_cards (
    id                TEXT PRIMARY KEY,
    order_id          TEXT NOT NULL REFERENCES orders (id),
    user_id           TEXT NOT NULL REFERENCES users (id),
    product_id        TEXT NOT NULL,
    variant_id        TEXT NOT NULL,
    product_name      TEXT NOT NULL,
    variant_name      TEXT NOT NULL,
    denomination      INTEGER NOT NULL,
    number_ciphertext TEXT NOT NULL,
    pin_ciphertext    TEXT NOT NULL,
    lookup_key        TEXT NOT NULL UNIQUE,
    last4             TEXT NOT NULL CHECK (length(last4) = 4),
    expiry_date       TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('ACTIVE', 'REDEEMED', 'EXPIRED', 'CANCELLED')),
    purchase_price    INTEGER NOT NULL CHECK (purchase_price >= 0),
    issued_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX gift_cards_by_order ON gift_cards (order_id);
CREATE INDEX gift_cards_by_user ON gift_cards (user_id, issued_at);

CREATE TABLE gift_card_reveals (
    id           INTEGER PRIMARY KEY,
    gift_card_id TEXT NOT NULL REFERENCES gift_cards (id),
    order_id     TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    revealed_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX gift_card_reveals_by_card ON gift_card_reveals (gift_card_id);

CREATE TABLE idempotency_keys (
    user_id          TEXT NOT NULL,
    key              TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('IN_PROGRESS', 'DONE')),
    -- The holder's token and lease while IN_PROGRESS; NULL once DONE.
    token            TEXT,
    lease_expires_at INTEGER,
    -- JSON of the finished outcome (see idempotency.rs: StoredOutcome).
    outcome          TEXT,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    PRIMARY KEY (user_id, key),
    CHECK ((state = 'IN_PROGRESS' AND token IS NOT NULL AND lease_expires_at IS NOT NULL)
        OR (state = 'DONE' AND outcome IS NOT NULL))
) STRICT;
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);

-- The durable FIFO queue. `seq` is the send order; only the oldest message of a group is
-- deliverable, so a group is handled strictly in order.
CREATE TABLE queue_messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id    TEXT NOT NULL UNIQUE,
    group_id      TEXT NOT NULL,
    dedup_id      TEXT NOT NULL,
    body          TEXT NOT NULL,
    sent_at       INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0 CHECK (receive_count >= 0),
    -- The receipt handle of the latest delivery; an ack must present it.
    receipt       TEXT,
    last_error    TEXT
) STRICT;
CREATE INDEX queue_messages_by_group ON queue_messages (group_id, seq);

-- Deduplication ids seen within the window; a send whose id is here and unexpired is dropped.
CREATE TABLE queue_dedup (
    dedup_id   TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX queue_dedup_by_expiry ON queue_dedup (expires_at);

CREATE TABLE dead_letters (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id    TEXT NOT NULL UNIQUE,
    group_id      TEXT NOT NULL,
    dedup_id      TEXT NOT NULL,
    body          TEXT NOT NULL,
    sent_at       INTEGER NOT NULL,
    receive_count INTEGER NOT NULL,
    last_error    TEXT,
    dead_at       INTEGER NOT NULL
) STRICT;

-- Every published order event, once (event ids are stable per order and status).
CREATE TABLE events (
    event_id   TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    order_id   TEXT NOT NULL,
    -- The exact JSON bytes that are signed and sent.
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL REFERENCES events (event_id),
    url             TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    delivered_at    INTEGER,
    UNIQUE (event_id, url)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'PENDING';
"#;

/// Operator-ended sessions, and the check values of the keys the data is sealed and signed
/// with.
const V2: &str = r#"
-- Raised when an operator promotes or re-keys the account; refresh tokens of an earlier epoch
-- cannot be rotated.
ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0 CHECK (session_epoch >= 0);
ALTER TABLE refresh_tokens ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;

-- One row per key (`card`, `jwt`): an HMAC of a fixed label under the key, written when the
-- database is created, so a start with another key is refused instead of sealing new cards
-- under it (see secrets.rs).
CREATE TABLE key_checks (
    name        TEXT PRIMARY KEY,
    check_value TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- One row the health check rewrites: a full disk or a read-only file system lets reads
-- through and fails writes, and a shop that cannot take orders is not ready.
CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
) STRICT;
"#;

/// Where a variant's cards come from, and the sealed pool of brand codes.
const V3: &str = r#"
ALTER TABLE variants ADD COLUMN fulfillment_source TEXT NOT NULL DEFAULT 'GENERATED'
    CHECK (fulfillment_source IN ('INVENTORY', 'GENERATED'));
-- A variant sold below or above its face value was a brand's card: it becomes INVENTORY, with
-- no stock until codes are imported (the cards it minted were never a brand's, and their
-- numbers are outside Giftify's range, so none can be redeemed). Only face-value variants stay
-- GENERATED, redeemable at what was paid for them.
UPDATE variants SET fulfillment_source = 'INVENTORY', stock_quantity = 0
    WHERE NOT (mrp = denomination * 100 AND selling_price = mrp);

-- One row per import: the variant's own reference for it, and the report it answered with
-- (JSON of giftify_shared::codes::ImportReport), which the same reference answers again.
CREATE TABLE code_batches (
    variant_id  TEXT NOT NULL REFERENCES variants (id),
    batch_ref   TEXT NOT NULL,
    -- A keyed digest of the rows sent: the same reference with other rows is refused.
    fingerprint TEXT NOT NULL,
    report      TEXT NOT NULL,
    imported_at INTEGER NOT NULL,
    voided_at   INTEGER,
    PRIMARY KEY (variant_id, batch_ref)
) STRICT;

-- Brand codes, sealed like issued cards. A number is held once (lookup_key UNIQUE) for good:
-- an allocated, voided or expired code keeps its number from ever being imported again. The id
-- becomes the issued card's id. The variant's stock_quantity equals its AVAILABLE rows.
CREATE TABLE inventory_codes (
    id                TEXT PRIMARY KEY,
    variant_id        TEXT NOT NULL,
    product_id        TEXT NOT NULL,
    batch_ref         TEXT NOT NULL,
    number_ciphertext TEXT NOT NULL,
    pin_ciphertext    TEXT NOT NULL,
    lookup_key        TEXT NOT NULL UNIQUE,
    last4             TEXT NOT NULL,
    -- YYYY-MM-DD; NULL when the brand gave none.
    expiry_date       TEXT,
    state             TEXT NOT NULL CHECK (state IN ('AVAILABLE', 'ALLOCATED', 'VOIDED', 'EXPIRED')),
    returned          INTEGER NOT NULL DEFAULT 0 CHECK (returned IN (0, 1)),
    row_number        INTEGER NOT NULL,
    imported_at       INTEGER NOT NULL,
    changed_at        INTEGER NOT NULL,
    FOREIGN KEY (variant_id, batch_ref) REFERENCES code_batches (variant_id, batch_ref)
) STRICT;
-- Allocation reads a variant's available codes first-expiring first (no expiry last).
CREATE INDEX inventory_codes_allocatable ON inventory_codes
    (variant_id, coalesce(expiry_date, '9999-12-31'), id) WHERE state = 'AVAILABLE';
CREATE INDEX inventory_codes_by_batch ON inventory_codes (variant_id, batch_ref, state);
"#;

/// Giftify cards redeemed into wallets and returned: who and when on the card (the first reveal
/// taken from the reveal audit for cards issued before), and the REDEEM kind of
/// wallet transaction (a CHECK cannot be altered in SQLite: the table is rebuilt, rows and
/// index as they were).
const V4: &str = r#"
ALTER TABLE gift_cards ADD COLUMN redeemed_at INTEGER;
ALTER TABLE gift_cards ADD COLUMN redeemed_by TEXT;
-- The owner's first reveal: a revealed card cannot be returned.
ALTER TABLE gift_cards ADD COLUMN revealed_at INTEGER;
UPDATE gift_cards SET revealed_at =
    (SELECT MIN(r.revealed_at) FROM gift_card_reveals r WHERE r.gift_card_id = gift_cards.id);
-- The reconciler finds the cards that expire without reading the others.
CREATE INDEX gift_cards_active_by_expiry ON gift_cards (expiry_date) WHERE status = 'ACTIVE';

CREATE TABLE wallet_transactions_v4 (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    kind          TEXT NOT NULL CHECK (kind IN ('CREDIT', 'DEBIT', 'REFUND', 'REDEEM')),
    amount        INTEGER NOT NULL CHECK (amount >= 0),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    description   TEXT NOT NULL,
    order_id      TEXT,
    created_at    INTEGER NOT NULL
) STRICT;
INSERT INTO wallet_transactions_v4 (id, user_id, kind, amount, balance_after, description,
    order_id, created_at)
    SELECT id, user_id, kind, amount, balance_after, description, order_id, created_at
    FROM wallet_transactions;
DROP TABLE wallet_transactions;
ALTER TABLE wallet_transactions_v4 RENAME TO wallet_transactions;
CREATE INDEX wallet_transactions_by_user ON wallet_transactions (user_id, created_at);
"#;

/// Card events: the outbox of redeemed and returned cards. Cards redeemed or returned before
/// events existed never owed one: they count as sent at the time of their change. And the
/// lock on a variant's source.
const V5: &str = r#"
ALTER TABLE gift_cards ADD COLUMN returned_at INTEGER;
ALTER TABLE gift_cards ADD COLUMN notified_at INTEGER;
UPDATE gift_cards SET returned_at = issued_at WHERE status = 'CANCELLED';
UPDATE gift_cards SET notified_at = coalesce(redeemed_at, returned_at, issued_at)
    WHERE status IN ('REDEEMED', 'CANCELLED');
CREATE INDEX gift_cards_unnotified ON gift_cards (id)
    WHERE notified_at IS NULL AND status IN ('REDEEMED', 'CANCELLED');

-- A variant that ever issued a card or had codes imported keeps its source.
ALTER TABLE variants ADD COLUMN source_locked INTEGER NOT NULL DEFAULT 0
    CHECK (source_locked IN (0, 1));
UPDATE variants SET source_locked = 1
    WHERE EXISTS (SELECT 1 FROM gift_cards c WHERE c.variant_id = variants.id)
       OR EXISTS (SELECT 1 FROM inventory_codes i WHERE i.variant_id = variants.id);
"#;

/// The client's labels on an order: a reference unique per user, and metadata as a JSON object.
const V6: &str = r#"
ALTER TABLE orders ADD COLUMN client_reference TEXT;
ALTER TABLE orders ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX orders_by_client_reference ON orders (user_id, client_reference)
    WHERE client_reference IS NOT NULL;
"#;

/// API keys (the secret only as its SHA-256) and the request counts of their rate windows.
const V7: &str = r#"
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX api_keys_by_user ON api_keys (user_id, created_at);

CREATE TABLE request_counts (
    bucket     TEXT PRIMARY KEY,
    requests   INTEGER NOT NULL CHECK (requests >= 1),
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX request_counts_by_expiry ON request_counts (expires_at);
"#;

/// The event feed: every event once, in the order recorded (`position`), with its place among
/// its order's events (`sequence`). Events logged before it are carried over in log order.
const V8: &str = r#"
CREATE TABLE event_feed (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    sequence    INTEGER NOT NULL CHECK (sequence >= 1),
    body        TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    UNIQUE (order_id, sequence)
) STRICT;
CREATE INDEX event_feed_by_user ON event_feed (user_id, position);
INSERT INTO event_feed (event_id, user_id, order_id, sequence, body, recorded_at)
    SELECT event_id, json_extract(body, '$.userId'), order_id, seq,
           json_set(body, '$.sequence', seq), created_at
    FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY created_at, event_id) AS seq
          FROM events)
    ORDER BY created_at, event_id;
"#;

/// Webhook endpoints as data, and their delivery log. The deliveries to the URLs of
/// `GIFTIFY_WEBHOOK_URLS` end here (kept as `webhook_deliveries_v1`): the environment's
/// endpoint is ensured at start, and `POST /webhooks/{id}/recover` re-sends from the feed
/// whatever was still on its way.
const V9: &str = r#"
DROP INDEX webhook_deliveries_due;
ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_v1;

CREATE TABLE webhook_endpoints (
    id         TEXT PRIMARY KEY,
    version    INTEGER NOT NULL CHECK (version >= 1),
    created_at INTEGER NOT NULL,
    body       TEXT NOT NULL
) STRICT;

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event_id        TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
    next_attempt_at INTEGER,
    version         INTEGER NOT NULL CHECK (version >= 1),
    created_at      INTEGER NOT NULL,
    body            TEXT NOT NULL,
    UNIQUE (endpoint_id, event_id)
) STRICT;
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'PENDING';

-- How far the embedded dispatcher has read the feed of all events.
-- It starts at the feed's end: events before the upgrade went out to the old URLs.
CREATE TABLE dispatch_cursor (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL CHECK (position >= 0)
) STRICT;
INSERT INTO dispatch_cursor (name, position)
    SELECT 'webhooks', COALESCE(MAX(position), 0) FROM event_feed;
"#;

/// Why an order was given up and refunded in full (an operator's refund, or the reconciler's
/// past the stuck-order deadline), and the audit log, append-only.
const V10: &str = r#"
ALTER TABLE orders ADD COLUMN refund_reason TEXT;

CREATE TABLE audit_log (
    id   TEXT PRIMARY KEY,
    at   INTEGER NOT NULL,
    body TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_by_time ON audit_log (at);
CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
"#;

/// Admins' balance corrections: the ADJUSTMENT kind, the one whose amount is signed.
const V11: &str = r#"
CREATE TABLE wallet_transactions_v11 (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    kind          TEXT NOT NULL
        CHECK (kind IN ('CREDIT', 'DEBIT', 'REFUND', 'REDEEM', 'ADJUSTMENT')),
    amount        INTEGER NOT NULL
        CHECK (amount >= 0 OR kind = 'ADJUSTMENT') CHECK (amount <> 0 OR kind <> 'ADJUSTMENT'),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    description   TEXT NOT NULL,
    order_id      TEXT,
    created_at    INTEGER NOT NULL
) STRICT;
-- In rowid order: the history lists ties within a millisecond by rowid, the insertion order.
INSERT INTO wallet_transactions_v11 (id, user_id, kind, amount, balance_after, description,
    order_id, created_at)
    SELECT id, user_id, kind, amount, balance_after, description, order_id, created_at
    FROM wallet_transactions ORDER BY rowid;
DROP TABLE wallet_transactions;
ALTER TABLE wallet_transactions_v11 RENAME TO wallet_transactions;
CREATE INDEX wallet_transactions_by_user ON wallet_transactions (user_id, created_at);
"#;

/// The head of each message group, kept by triggers on every insert, visibility change and
/// delete of a message: a receive reads the visible heads (one row per group) instead of
/// grouping the whole queue, so its cost does not grow with the backlog.
const V12: &str = r#"
CREATE TABLE queue_heads (
    group_id   TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL UNIQUE,
    visible_at INTEGER NOT NULL
) STRICT;
CREATE INDEX queue_heads_by_visibility ON queue_heads (visible_at, seq);
INSERT INTO queue_heads (group_id, seq, visible_at)
    SELECT m.group_id, m.seq, m.visible_at FROM queue_messages m
    WHERE m.seq = (SELECT MIN(seq) FROM queue_messages WHERE group_id = m.group_id);

-- A message sent to a group without a head is its head; behind one, it waits (its seq is
-- larger than every queued message's).
CREATE TRIGGER queue_heads_on_send AFTER INSERT ON queue_messages
BEGIN
    INSERT INTO queue_heads (group_id, seq, visible_at)
        VALUES (NEW.group_id, NEW.seq, NEW.visible_at)
        ON CONFLICT (group_id) DO NOTHING;
END;
CREATE TRIGGER queue_heads_on_visibility AFTER UPDATE OF visible_at ON queue_messages
BEGIN
    UPDATE queue_heads SET visible_at = NEW.visible_at
        WHERE group_id = NEW.group_id AND seq = NEW.seq;
END;
-- A head leaves (acked, dead-lettered): the group's next message, if any, takes its place.
CREATE TRIGGER queue_heads_on_delete AFTER DELETE ON queue_messages
BEGIN
    DELETE FROM queue_heads WHERE group_id = OLD.group_id AND seq = OLD.seq;
    INSERT INTO queue_heads (group_id, seq, visible_at)
        SELECT group_id, seq, visible_at FROM queue_messages
        WHERE group_id = OLD.group_id ORDER BY seq LIMIT 1
        ON CONFLICT (group_id) DO NOTHING;
END;
"#;

/// The catalogue's version: every change to a product or a variant — an admin's, a sale's
/// stock, a code import's — bumps it in its own transaction, whichever process makes it, so a
/// process may serve the catalogue from memory while the version it read it at holds.
const V13: &str = r#"
CREATE TABLE catalogue_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;
INSERT INTO catalogue_version (id, version) VALUES (1, 0);
CREATE TRIGGER catalogue_version_on_product_insert AFTER INSERT ON products
BEGIN UPDATE catalogue_version SET version = version + 1; END;
CREATE TRIGGER catalogue_version_on_product_update AFTER UPDATE ON products
BEGIN UPDATE catalogue_version SET version = version + 1; END;
CREATE TRIGGER catalogue_version_on_product_delete AFTER DELETE ON products
BEGIN UPDATE catalogue_version SET version = version + 1; END;
CREATE TRIGGER catalogue_version_on_variant_insert AFTER INSERT ON variants
BEGIN UPDATE catalogue_version SET version = version + 1; END;
CREATE TRIGGER catalogue_version_on_variant_update AFTER UPDATE ON variants
BEGIN UPDATE catalogue_version SET version = version + 1; END;
CREATE TRIGGER catalogue_version_on_variant_delete AFTER DELETE ON variants
BEGIN UPDATE catalogue_version SET version = version + 1; END;
"#;

/// Daily figures (see `giftify_shared::figures`): one row per day and counter, added to by
/// every money, order and card write in its own transaction. Filled here from the history a
/// database already holds, so a report covers it too: what the history cannot tell (active
/// accounts, carts started, refused payments) starts at zero. An order given up (REFUNDED with
/// a reason) counts no units, as live; a fulfillment's figures are dated when it finished. A
/// Giftify card that expired is counted the day after its expiry date, when it stopped being
/// owed. And the indexes the exports read by time; the account's last active day.
const V14: &str = r#"
ALTER TABLE users ADD COLUMN active_on TEXT;
CREATE INDEX wallet_transactions_by_time ON wallet_transactions (created_at);
CREATE INDEX orders_by_time ON orders (created_at);
CREATE TABLE daily_figures (
    day     TEXT NOT NULL,
    counter TEXT NOT NULL,
    value   INTEGER NOT NULL,
    PRIMARY KEY (day, counter)
) STRICT, WITHOUT ROWID;
WITH fulfilled AS (
    SELECT date(coalesce(fulfilled_at, updated_at) / 1000, 'unixepoch') AS day,
        max(coalesce(fulfilled_at, updated_at) - created_at, 0) AS ms
    FROM orders WHERE status IN ('FULFILLED', 'PARTIALLY_FULFILLED', 'REFUNDED')
        AND refund_reason IS NULL
)
INSERT INTO daily_figures (day, counter, value)
SELECT day, counter, SUM(value) FROM (
    SELECT date(created_at / 1000, 'unixepoch') AS day, 'ordersPlaced' AS counter, 1 AS value
        FROM orders
    UNION ALL SELECT date(created_at / 1000, 'unixepoch'), 'gmv', paid_amount FROM orders
    UNION ALL SELECT date(created_at / 1000, 'unixepoch'), 'cartsCheckedOut', 1 FROM orders
        WHERE source = 'CART'
    UNION ALL SELECT date(coalesce(fulfilled_at, updated_at) / 1000, 'unixepoch'),
        CASE status WHEN 'FULFILLED' THEN 'ordersFulfilled'
            WHEN 'PARTIALLY_FULFILLED' THEN 'ordersPartiallyFulfilled'
            WHEN 'REFUNDED' THEN 'ordersRefunded' ELSE 'ordersCancelled' END, 1
        FROM orders WHERE status IN ('FULFILLED', 'PARTIALLY_FULFILLED', 'REFUNDED', 'CANCELLED')
    UNION ALL SELECT date(coalesce(o.fulfilled_at, o.updated_at) / 1000, 'unixepoch'), 'revenue', json_extract(l.value, '$.unitPrice') * json_extract(l.value, '$.fulfilledQuantity')
        FROM orders o, json_each(o.lines) l
        WHERE o.status IN ('FULFILLED', 'PARTIALLY_FULFILLED', 'REFUNDED')
            AND o.refund_reason IS NULL
    UNION ALL SELECT date(coalesce(o.fulfilled_at, o.updated_at) / 1000, 'unixepoch'), 'cost', json_extract(l.value, '$.costPrice') * json_extract(l.value, '$.fulfilledQuantity')
        FROM orders o, json_each(o.lines) l
        WHERE o.status IN ('FULFILLED', 'PARTIALLY_FULFILLED', 'REFUNDED')
            AND o.refund_reason IS NULL
    UNION ALL SELECT date(coalesce(o.fulfilled_at, o.updated_at) / 1000, 'unixepoch'), 'requestedUnits', json_extract(l.value, '$.requestedQuantity')
        FROM orders o, json_each(o.lines) l
        WHERE o.status IN ('FULFILLED', 'PARTIALLY_FULFILLED', 'REFUNDED')
            AND o.refund_reason IS NULL
    UNION ALL SELECT date(coalesce(o.fulfilled_at, o.updated_at) / 1000, 'unixepoch'), 'fulfilledUnits', json_extract(l.value, '$.fulfilledQuantity')
        FROM orders o, json_each(o.lines) l
        WHERE o.status IN ('FULFILLED', 'PARTIALLY_FULFILLED', 'REFUNDED')
            AND o.refund_reason IS NULL
    UNION ALL SELECT date(coalesce(o.fulfilled_at, o.updated_at) / 1000, 'unixepoch'), 'productUnits:' || json_extract(l.value, '$.productId'), json_extract(l.value, '$.fulfilledQuantity')
        FROM orders o, json_each(o.lines) l
        WHERE o.status IN ('FULFILLED', 'PARTIALLY_FULFILLED', 'REFUNDED')
            AND o.refund_reason IS NULL
    UNION ALL SELECT date(coalesce(o.fulfilled_at, o.updated_at) / 1000, 'unixepoch'), 'productRevenue:' || json_extract(l.value, '$.productId'), json_extract(l.value, '$.unitPrice') * json_extract(l.value, '$.fulfilledQuantity')
        FROM orders o, json_each(o.lines) l
        WHERE o.status IN ('FULFILLED', 'PARTIALLY_FULFILLED', 'REFUNDED')
            AND o.refund_reason IS NULL
    UNION ALL SELECT day, CASE
            WHEN ms <= 50 THEN 'createToFinalLe50ms' WHEN ms <= 100 THEN 'createToFinalLe100ms'
            WHEN ms <= 250 THEN 'createToFinalLe250ms' WHEN ms <= 500 THEN 'createToFinalLe500ms'
            WHEN ms <= 1000 THEN 'createToFinalLe1s' WHEN ms <= 2500 THEN 'createToFinalLe2500ms'
            WHEN ms <= 5000 THEN 'createToFinalLe5s' WHEN ms <= 10000 THEN 'createToFinalLe10s'
            WHEN ms <= 30000 THEN 'createToFinalLe30s' WHEN ms <= 60000 THEN 'createToFinalLe60s'
            WHEN ms <= 300000 THEN 'createToFinalLe300s' ELSE 'createToFinalOver300s' END, 1
        FROM fulfilled
    UNION ALL SELECT day, 'createToFinalMsSum', ms FROM fulfilled
    UNION ALL SELECT date(created_at / 1000, 'unixepoch'), 'balancesChange',
        CASE kind WHEN 'DEBIT' THEN -amount ELSE amount END FROM wallet_transactions
    UNION ALL SELECT date(created_at / 1000, 'unixepoch'), 'topUps', 1 FROM wallet_transactions
        WHERE kind = 'CREDIT'
    UNION ALL SELECT date(created_at / 1000, 'unixepoch'), 'topUpAmount', amount
        FROM wallet_transactions WHERE kind = 'CREDIT'
    UNION ALL SELECT date(created_at / 1000, 'unixepoch'), 'refunds', amount
        FROM wallet_transactions WHERE kind = 'REFUND'
    UNION ALL SELECT date(created_at / 1000, 'unixepoch'), 'redeemed', amount
        FROM wallet_transactions WHERE kind = 'REDEEM'
    UNION ALL SELECT date(created_at / 1000, 'unixepoch'), 'giftifyCardsChange', -amount
        FROM wallet_transactions WHERE kind = 'REDEEM'
    UNION ALL SELECT date(created_at / 1000, 'unixepoch'), 'adjustments', amount
        FROM wallet_transactions WHERE kind = 'ADJUSTMENT'
    UNION ALL SELECT date(c.issued_at / 1000, 'unixepoch'), 'giftifyCardsChange',
        c.denomination * 100
        FROM gift_cards c JOIN variants v ON v.id = c.variant_id
        WHERE v.fulfillment_source = 'GENERATED'
    UNION ALL SELECT date(c.returned_at / 1000, 'unixepoch'), 'giftifyCardsChange',
        -c.denomination * 100
        FROM gift_cards c JOIN variants v ON v.id = c.variant_id
        WHERE v.fulfillment_source = 'GENERATED' AND c.status = 'CANCELLED'
    UNION ALL SELECT date(c.expiry_date, '+1 day'), 'giftifyCardsChange', -c.denomination * 100
        FROM gift_cards c JOIN variants v ON v.id = c.variant_id
        WHERE v.fulfillment_source = 'GENERATED' AND c.status = 'EXPIRED'
)
GROUP BY day, counter HAVING SUM(value) <> 0;
"#;

/// Every migration in order; a database at version `n` has applied the first `n`.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14];

/// The schema version this build writes.
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the missing migrations atomically.
pub(crate) fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    anyhow::ensure!(
        (0..=VERSION).contains(&current),
        "the database has schema version {current}, newer than this build's {VERSION}"
    );
    for (applied, migration) in (1..).zip(MIGRATIONS).skip(current as usize) {
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", applied)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{MIGRATIONS, VERSION, migrate};
    use rusqlite::Connection;

    /// A database at version 7 with logged events moves to version 8: its events enter the
    /// feed in log order, numbered per order, with the number in their body.
    #[test]
    fn version_11_keeps_the_ledger_in_order_and_accepts_signed_adjustments_only() {
        let mut conn = Connection::open_in_memory().expect("a database");
        for migration in &MIGRATIONS[..10] {
            conn.execute_batch(migration).expect("migrations 1 to 10");
        }
        conn.pragma_update(None, "user_version", 10)
            .expect("version 10");
        conn.execute_batch(
            "INSERT INTO users (id, email, password_hash, first_name, last_name, role, status, \
                 wallet_balance, created_at, updated_at) \
             VALUES ('user_1', 'a@b.in', 'h', 'A', 'B', 'USER', 'ACTIVE', 700, 1, 1);
             INSERT INTO wallet_transactions (id, user_id, kind, amount, balance_after, \
                 description, order_id, created_at) VALUES
             ('txn_z', 'user_1', 'CREDIT', 1000, 1000, 'top-up', NULL, 5),
             ('txn_a', 'user_1', 'DEBIT', 500, 500, 'order', 'order_1', 5),
             ('txn_m', 'user_1', 'REDEEM', 200, 700, 'card', NULL, 6);",
        )
        .expect("version 10 data");

        migrate(&mut conn).expect("version 11");

        let ids: Vec<String> = conn
            .prepare("SELECT id FROM wallet_transactions ORDER BY created_at, rowid")
            .expect("query")
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("ids");
        assert_eq!(
            ids,
            ["txn_z", "txn_a", "txn_m"],
            "rows and their order survive"
        );
        let insert = |id: &str, kind: &str, amount: i64| {
            conn.execute(
                "INSERT INTO wallet_transactions (id, user_id, kind, amount, balance_after, \
                 description, created_at) VALUES (?1, 'user_1', ?2, ?3, 0, 'x', 7)",
                rusqlite::params![id, kind, amount],
            )
        };
        insert("txn_adj", "ADJUSTMENT", -700).expect("a negative adjustment");
        assert!(
            insert("txn_zero", "ADJUSTMENT", 0).is_err(),
            "a zero adjustment"
        );
        assert!(insert("txn_neg", "DEBIT", -1).is_err(), "a negative debit");
        assert!(insert("txn_bad", "GIFT", 1).is_err(), "an unknown kind");
    }

    /// A database at version 13 moves to version 14: its history fills the daily figures, and
    /// what they say is owed at the end adds up to the balances and the ACTIVE Giftify cards.
    #[test]
    fn version_14_fills_the_daily_figures_from_the_history() {
        let mut conn = Connection::open_in_memory().expect("a database");
        for migration in &MIGRATIONS[..13] {
            conn.execute_batch(migration).expect("migrations 1 to 13");
        }
        conn.pragma_update(None, "user_version", 13)
            .expect("version 13");
        conn.pragma_update(None, "foreign_keys", false)
            .expect("no foreign keys");
        // Day 1 (2026-12-01 noon UTC): a top-up of ₹1,000 and an order of two ₹475 cards.
        // Day 2: one card issued, one refunded; a Giftify card redeemed; an adjustment of −₹25.
        conn.execute_batch(
            r#"INSERT INTO variants (id, product_id, name, denomination, mrp, cost_price,
                 discount_percent, selling_price, stock_quantity, min_order_quantity,
                 max_order_quantity, is_active, created_at, updated_at, fulfillment_source) VALUES
             ('var_g', 'prod_1', 'G 500', 500, 50000, 45000, 5, 47500, 3, 1, 4, 1, 0, 0, 'GENERATED'),
             ('var_b', 'prod_1', 'B 500', 500, 50000, 45000, 5, 47500, 3, 1, 4, 1, 0, 0, 'INVENTORY');
             INSERT INTO users (id, email, password_hash, first_name, last_name, role, status,
                 wallet_balance, created_at, updated_at)
             VALUES ('user_1', 'a@b.in', 'h', 'A', 'B', 'USER', 'ACTIVE', 100000, 1, 1);
             INSERT INTO wallet_transactions (id, user_id, kind, amount, balance_after,
                 description, order_id, created_at) VALUES
             ('txn_1', 'user_1', 'CREDIT', 100000, 100000, 'top-up', NULL, 1796126400000),
             ('txn_2', 'user_1', 'DEBIT', 95000, 5000, 'order', 'order_1', 1796126400001),
             ('txn_3', 'user_1', 'REFUND', 47500, 52500, 'refund', 'order_1', 1796212800000),
             ('txn_4', 'user_1', 'REDEEM', 50000, 102500, 'card', NULL, 1796212800001),
             ('txn_5', 'user_1', 'ADJUSTMENT', -2500, 100000, 'fix', NULL, 1796212800002);
             INSERT INTO orders (id, user_id, status, source, total_amount, paid_amount,
                 refund_amount, lines, created_at, updated_at) VALUES
             ('order_1', 'user_1', 'PARTIALLY_FULFILLED', 'CART', 95000, 95000, 47500,
              '[{"variantId":"var_g","productId":"prod_1","productName":"G","variantName":"G 500",
                 "denomination":500,"unitPrice":47500,"costPrice":45000,"requestedQuantity":2,
                 "fulfilledQuantity":1,"validityDays":365}]', 1796126400001, 1796212800000);
             INSERT INTO orders (id, user_id, status, source, total_amount, paid_amount,
                 refund_amount, lines, created_at, updated_at, refund_reason) VALUES
             ('order_2', 'user_1', 'REFUNDED', 'ITEMS', 47500, 47500, 47500,
              '[{"variantId":"var_g","productId":"prod_1","productName":"G","variantName":"G 500",
                 "denomination":500,"unitPrice":47500,"costPrice":45000,"requestedQuantity":1,
                 "fulfilledQuantity":0,"validityDays":365}]', 1796299200000, 1796299200500,
              'stuck');
             INSERT INTO gift_cards (id, order_id, user_id, product_id, variant_id, product_name,
                 variant_name, denomination, number_ciphertext, pin_ciphertext, lookup_key, last4,
                 expiry_date, status, purchase_price, issued_at) VALUES
             ('gc_a', 'order_1', 'user_1', 'prod_1', 'var_g', 'G', 'G 500', 500, 'n', 'p', 'k1', '1234', '2030-01-01', 'ACTIVE', 47500, 1796212800000),
             ('gc_r', 'order_0', 'user_2', 'prod_1', 'var_g', 'G', 'G 500', 500, 'n', 'p', 'k2', '1234', '2030-01-01', 'REDEEMED', 47500, 1796212800000),
             ('gc_x', 'order_0', 'user_2', 'prod_1', 'var_g', 'G', 'G 500', 500, 'n', 'p', 'k3', '1234', '2026-12-03', 'EXPIRED', 47500, 1796212800000),
             ('gc_b', 'order_0', 'user_2', 'prod_1', 'var_b', 'B', 'B 500', 500, 'n', 'p', 'k4', '1234', '2030-01-01', 'ACTIVE', 47500, 1796212800000);"#,
        )
        .expect("version 13 data");

        migrate(&mut conn).expect("version 14");

        let figures: std::collections::BTreeMap<(String, String), i64> = conn
            .prepare("SELECT day, counter, value FROM daily_figures")
            .expect("query")
            .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("figures");
        let on = |day: &str, counter: &str| {
            figures
                .get(&(day.to_string(), counter.to_string()))
                .copied()
                .unwrap_or(0)
        };
        let (one, two) = ("2026-12-01", "2026-12-02");
        assert_eq!(
            [
                on(one, "ordersPlaced"),
                on(one, "gmv"),
                on(one, "cartsCheckedOut")
            ],
            [1, 95000, 1]
        );
        assert_eq!([on(one, "topUps"), on(one, "topUpAmount")], [1, 100000]);
        assert_eq!(
            [
                on(two, "ordersPartiallyFulfilled"),
                on(two, "revenue"),
                on(two, "cost"),
                on(two, "requestedUnits"),
                on(two, "fulfilledUnits"),
                on(two, "productUnits:prod_1"),
                on(two, "productRevenue:prod_1"),
            ],
            [1, 47500, 45000, 2, 1, 1, 47500]
        );
        assert_eq!(
            [
                on(two, "refunds"),
                on(two, "redeemed"),
                on(two, "adjustments")
            ],
            [47500, 50000, -2500]
        );
        assert_eq!(
            [
                on(two, "createToFinalOver300s"),
                on(two, "createToFinalMsSum")
            ],
            [1, 86_399_999],
            "the fulfillment took a day less a millisecond"
        );
        let three = "2026-12-03";
        assert_eq!(
            [
                on(three, "ordersRefunded"),
                on(three, "requestedUnits"),
                on(three, "createToFinalLe1s")
            ],
            [1, 0, 0],
            "an order given up counts as refunded, with no units and no fulfillment time"
        );
        assert_eq!(
            on("2026-12-04", "giftifyCardsChange"),
            -50000,
            "an expired card stops being owed the day after its expiry date"
        );
        let owed: i64 = figures
            .iter()
            .filter(|((_, c), _)| c == "balancesChange" || c == "giftifyCardsChange")
            .map(|(_, v)| v)
            .sum();
        assert_eq!(
            owed,
            100000 + 50000,
            "the balance and the one ACTIVE Giftify card"
        );
        assert!(figures.values().all(|v| *v != 0), "no zero rows are stored");
    }

    #[test]
    fn version_8_carries_the_event_log_into_the_feed() {
        let mut conn = Connection::open_in_memory().expect("a database");
        for migration in &MIGRATIONS[..7] {
            conn.execute_batch(migration).expect("migrations 1 to 7");
        }
        conn.pragma_update(None, "user_version", 7)
            .expect("version 7");
        conn.execute_batch(
            r#"INSERT INTO events (event_id, event_type, order_id, body, created_at) VALUES
             ('evt_a_fulfilled', 'order.fulfilled', 'order_a', '{"eventId":"evt_a_fulfilled","userId":"user_1"}', 10),
             ('evt_b_refunded', 'order.refunded', 'order_b', '{"eventId":"evt_b_refunded","userId":"user_2"}', 20),
             ('evt_gc_returned', 'gift_card.returned', 'order_a', '{"eventId":"evt_gc_returned","userId":"user_1"}', 30);"#,
        )
        .expect("version 7 data");

        migrate(&mut conn).expect("version 8");

        let feed: Vec<(i64, String, String, i64, i64)> = conn
            .prepare(
                "SELECT position, event_id, user_id, sequence, json_extract(body, '$.sequence')                  FROM event_feed ORDER BY position",
            )
            .expect("query")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("feed");
        assert_eq!(
            feed,
            vec![
                (1, "evt_a_fulfilled".into(), "user_1".into(), 1, 1),
                (2, "evt_b_refunded".into(), "user_2".into(), 1, 1),
                (3, "evt_gc_returned".into(), "user_1".into(), 2, 2),
            ]
        );
    }

    /// A database at version 4 with cards and codes moves to version 5: cards changed before
    /// events existed owe none, and variants that issued cards or took codes keep their source.
    #[test]
    fn version_5_settles_the_outbox_and_locks_used_variants() {
        let mut conn = Connection::open_in_memory().expect("a database");
        for migration in &MIGRATIONS[..4] {
            conn.execute_batch(migration).expect("migrations 1 to 4");
        }
        conn.pragma_update(None, "user_version", 4)
            .expect("version 4");
        // The rows only need what the migration reads, not their owners.
        conn.pragma_update(None, "foreign_keys", false)
            .expect("no foreign keys");
        conn.execute_batch(
            "INSERT INTO variants (id, product_id, name, denomination, mrp, cost_price, \
             discount_percent, selling_price, stock_quantity, min_order_quantity, \
             max_order_quantity, is_active, created_at, updated_at, fulfillment_source) VALUES \
             ('var_minted', 'prod_1', 'G 500', 500, 50000, 45000, 0, 50000, 3, 1, 4, 1, 0, 0, 'GENERATED'), \
             ('var_brand', 'prod_1', 'B 500', 500, 50000, 45000, 5, 47500, 1, 1, 4, 1, 0, 0, 'INVENTORY'), \
             ('var_fresh', 'prod_1', 'F 500', 500, 50000, 45000, 0, 50000, 0, 1, 4, 1, 0, 0, 'GENERATED');
             INSERT INTO gift_cards (id, order_id, user_id, product_id, variant_id, product_name, \
             variant_name, denomination, number_ciphertext, pin_ciphertext, lookup_key, last4, \
             expiry_date, status, purchase_price, issued_at, redeemed_at, redeemed_by) VALUES \
             ('gc_redeemed', 'order_1', 'user_1', 'prod_1', 'var_minted', 'G', 'G 500', 500, 'n', 'p', 'k1', '1234', '2030-01-01', 'REDEEMED', 50000, 10, 20, 'user_2'), \
             ('gc_returned', 'order_1', 'user_1', 'prod_1', 'var_minted', 'G', 'G 500', 500, 'n', 'p', 'k2', '1234', '2030-01-01', 'CANCELLED', 50000, 10, NULL, NULL), \
             ('gc_active', 'order_1', 'user_1', 'prod_1', 'var_minted', 'G', 'G 500', 500, 'n', 'p', 'k3', '1234', '2030-01-01', 'ACTIVE', 50000, 10, NULL, NULL), \
             ('gc_undated', 'order_1', 'user_1', 'prod_1', 'var_minted', 'G', 'G 500', 500, 'n', 'p', 'k5', '1234', '2030-01-01', 'REDEEMED', 50000, 10, NULL, NULL);
             INSERT INTO code_batches (variant_id, batch_ref, fingerprint, report, imported_at) \
             VALUES ('var_brand', 'B1', 'f', '{}', 0);
             INSERT INTO inventory_codes (id, variant_id, product_id, batch_ref, \
             number_ciphertext, pin_ciphertext, lookup_key, last4, state, row_number, \
             imported_at, changed_at) VALUES \
             ('gc_code', 'var_brand', 'prod_1', 'B1', 'n', 'p', 'k4', '1234', 'AVAILABLE', 1, 0, 0);",
        )
        .expect("version 4 data");

        migrate(&mut conn).expect("version 5");

        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, VERSION);
        let card = |id: &str| -> (Option<i64>, Option<i64>) {
            conn.query_row(
                "SELECT returned_at, notified_at FROM gift_cards WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("card")
        };
        assert_eq!(card("gc_redeemed"), (None, Some(20)));
        assert_eq!(card("gc_returned"), (Some(10), Some(10)));
        assert_eq!(card("gc_active"), (None, None));
        assert_eq!(
            card("gc_undated"),
            (None, Some(10)),
            "settled even without a date"
        );
        let locked = |id: &str| -> i64 {
            conn.query_row(
                "SELECT source_locked FROM variants WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .expect("variant")
        };
        assert_eq!(
            (
                locked("var_minted"),
                locked("var_brand"),
                locked("var_fresh")
            ),
            (1, 1, 0)
        );
    }
}
