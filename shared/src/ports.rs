//! The ports: what a backend must do, as business operations in the domain's language. Every
//! method that changes money, stock or an order is one atomic, conditional step in the backend
//! (a SQLite transaction, a DynamoDB `TransactWriteItems`), so a crash before it changes
//! nothing and a crash after it loses nothing.
//!
//! Contract wording: "MUST return X … and change nothing" means the backend checks the
//! condition inside the atomic step. Any backend failure that is worth retrying is
//! [`crate::Error::Unavailable`] or [`crate::Error::Conflict`]; anything else unexpected is
//! [`crate::Error::Internal`].

use crate::api_keys::{ApiKey, ApiKeyId};
use crate::audit::AuditEntry;
use crate::card_life::{CardReturn, Expiry, Redemption};
use crate::cart::{Cart, CartLine};
use crate::catalogue::{
    CatalogueEntry, Product, ProductUpdate, ProductWithVariants, Variant, VariantUpdate,
};
use crate::codes::{BatchRef, BatchSummary, CodeImport, ImportReport, InventoryCode};
use crate::events::{Event, Feed, FeedCursor, FeedPage};
use crate::figures::{Activity, DayFigures, OpenOrders, Tally};
use crate::idempotency::{Claim, IdempotencyScope, NewClaim, Refusal};
use crate::ids::{AuditId, WebhookDeliveryId, WebhookEndpointId};
use crate::ids::{GiftCardId, OrderId, ProductId, TransactionId, UserId, VariantId};
use crate::inbox::Delivery;
use crate::keys::KeyName;
use crate::labels::ClientReference;
use crate::ledger::Posting;
use crate::order::{
    Cancellation, DeadLetter, Fulfillment, LetterPick, Order, OrderMessage, OrderPlacement,
    OrderStatus, Outbox, QueueDepths,
};
use crate::rate_limits::RateWindow;
use crate::user::{
    Email, NewRefreshToken, NewUser, ProfileUpdate, Rotation, StatusChange, ThrottlePolicy, User,
    UserCredentials, UserPage, UserSearch,
};
use crate::vault::{GiftCard, GiftCardStatus, RevealAudit};
use crate::wallet::{Page, PageRequest, TransactionFilter, WalletTransaction};
use crate::webhooks::{DeliveryState, WebhookDelivery, WebhookEndpoint};
use crate::{Paise, Result};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::Arc;

#[async_trait]
pub trait Users: Send + Sync {
    /// Creates a user with a zero balance.
    /// # Errors
    /// MUST return [`crate::Error::EmailAlreadyExists`] when the email is taken, and change nothing.
    async fn create_user(&self, user: &NewUser) -> Result<User>;
    async fn credentials_by_email(&self, email: &Email) -> Result<Option<UserCredentials>>;
    async fn user(&self, id: &UserId) -> Result<Option<User>>;
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] for an unknown user.
    async fn update_profile(
        &self,
        id: &UserId,
        update: &ProfileUpdate,
        now: DateTime<Utc>,
    ) -> Result<User>;
    async fn record_login(&self, id: &UserId, now: DateTime<Utc>) -> Result<()>;
    /// Gives the account the ADMIN role and this password hash, and raises its
    /// [`User::session_epoch`] by one, in one atomic step.
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] for an unknown user, and change nothing.
    async fn make_admin(
        &self,
        id: &UserId,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<User>;
    /// Support's search: with an email, the account that has it (or none); without, every
    /// account once across the pages, `limit` at a time, in the store's own order (by id on
    /// the embedded store, by hash on DynamoDB), never reading more than a page's worth.
    async fn find_users(&self, search: &UserSearch) -> Result<UserPage>;
    /// Commits a [`StatusChange`] on the condition that the account's status is still
    /// `change.from`, raising [`User::session_epoch`] by one when it ends sessions.
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] for an unknown user and
    /// [`crate::Error::Conflict`] when the status is no longer `change.from` — each changing
    /// nothing.
    /// # Errors
    /// MUST return [`crate::Error::AccountSuspended`] when [`StatusChange::while_admin`]
    /// names an account that is no longer an ACTIVE admin, checked in the same atomic step,
    /// and change nothing.
    async fn change_status(
        &self,
        id: &UserId,
        change: &StatusChange,
        now: DateTime<Utc>,
    ) -> Result<User>;
}

/// Refresh-token families: each login starts a family; each refresh spends one token and
/// issues the next; a spent token presented again revokes the family.
#[async_trait]
pub trait Sessions: Send + Sync {
    async fn start_session(&self, token: &NewRefreshToken) -> Result<()>;
    /// Spends `presented_hash` and stores `replacement` (same family) in one atomic step.
    /// MUST return [`Rotation::ReuseDetected`] and revoke every token of the family when the
    /// presented token was already spent; [`Rotation::Invalid`] when it is unknown, expired or
    /// revoked (storing nothing).
    async fn rotate(&self, presented_hash: &str, replacement: &NewRefreshToken)
    -> Result<Rotation>;
    /// Revokes the family of this token (logout). Unknown tokens are ignored.
    async fn revoke_family(&self, presented_hash: &str) -> Result<()>;
}

/// Failed-login counting per account.
#[async_trait]
pub trait LoginThrottle: Send + Sync {
    /// When the account is locked, until when.
    async fn locked_until(
        &self,
        account: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>>;
    /// Counts a failure; returns the lock's end when this failure locks the account.
    async fn record_failure(
        &self,
        account: &str,
        policy: &ThrottlePolicy,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>>;
    async fn reset(&self, account: &str) -> Result<()>;
}

#[async_trait]
pub trait Wallets: Send + Sync {
    /// Credits the wallet and records the CREDIT transaction (and finishes the idempotency key)
    /// atomically.
    /// # Errors
    /// MUST return [`crate::Error::WalletLimitExceeded`] when the balance would exceed `max_balance`,
    /// [`crate::Error::NotFound`] for an unknown user, [`crate::Error::IdempotencyInProgress`] when the
    /// idempotency token no longer holds its key — each changing nothing.
    async fn top_up(&self, top_up: &Posting) -> Result<WalletTransaction>;
    /// Applies an admin's balance correction ([`crate::ledger::Movement::adjustment`]) and
    /// records its ADJUSTMENT transaction (and finishes the idempotency key) atomically.
    /// # Errors
    /// MUST return [`crate::Error::InsufficientBalance`] when it would take the balance below
    /// zero, [`crate::Error::WalletLimitExceeded`] past `max_balance`,
    /// [`crate::Error::NotFound`] for an unknown user, and
    /// [`crate::Error::IdempotencyInProgress`] when the token no longer holds its key — each
    /// changing nothing.
    async fn adjust_balance(&self, adjustment: &Posting) -> Result<WalletTransaction>;
    async fn balance(&self, user: &UserId) -> Result<Paise>;
    /// The user's transactions that `filter` matches, newest first (in commit order).
    async fn transactions(
        &self,
        user: &UserId,
        filter: &TransactionFilter,
        page: PageRequest,
    ) -> Result<Page<WalletTransaction>>;
    async fn transaction(
        &self,
        user: &UserId,
        id: &TransactionId,
    ) -> Result<Option<WalletTransaction>>;
}

#[async_trait]
pub trait Catalogue: Send + Sync {
    /// Active products with their active variants, by product name.
    async fn active_catalogue(&self) -> Result<Vec<ProductWithVariants>>;
    /// A number that changes, in the same atomic step, with every change to a product or a
    /// variant (stock and prices included), whichever process makes it; `None` where the
    /// backend keeps none. DynamoDB keeps none: one item that every fulfillment writes would
    /// be a hot key capping the shop's order rate and a write unit more per order.
    async fn catalogue_version(&self) -> Result<Option<u64>>;
    /// The entries of these variants that exist, active or not.
    async fn entries(&self, ids: &[VariantId]) -> Result<Vec<CatalogueEntry>>;
    /// Every variant with its product, by product name then denomination.
    async fn inventory(&self) -> Result<Vec<CatalogueEntry>>;
    async fn add_product(&self, product: &Product) -> Result<()>;
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] when the product does not exist.
    async fn add_variant(&self, variant: &Variant) -> Result<()>;
    /// Applies an admin update atomically; prices are re-derived with
    /// [`VariantUpdate::pricing_after`].
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] for an unknown variant, and [`crate::Error::Validation`] when
    /// the resulting stock would be negative or the pricing invalid — changing nothing.
    async fn update_variant(
        &self,
        id: &VariantId,
        update: &VariantUpdate,
        now: DateTime<Utc>,
    ) -> Result<CatalogueEntry>;
    /// Applies an admin's change to a product, as [`ProductUpdate::applied_to`] decides, on the
    /// condition that the product is still as read; returns it before and after.
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] for an unknown product, changing nothing.
    async fn update_product(
        &self,
        id: &ProductId,
        update: &ProductUpdate,
        now: DateTime<Utc>,
    ) -> Result<(Product, Product)>;
    /// Writes the catalogue only when there are no products yet; true when it wrote.
    async fn seed_if_empty(&self, catalogue: &[ProductWithVariants]) -> Result<bool>;
}

/// The sealed pool of brand codes of INVENTORY variants. Every change keeps the variant's stock
/// equal to its number of available codes, in the same atomic step.
#[async_trait]
pub trait CodeInventory: Send + Sync {
    /// Stores the import's codes whose numbers (lookup keys) no code holds yet, available, and
    /// raises the variant's stock by their number; answers
    /// [`CodeImport::report`] with the rows of the codes it did not store. A batch reference
    /// the variant already has answers that batch's stored report and changes nothing when
    /// the rows are the same ([`CodeImport::fingerprint`]).
    /// The embedded store commits the whole import in one transaction. DynamoDB stores each
    /// code with its own conditional put and then counts the stored codes into the stock in
    /// parts, each count once (conditional on the batch's own count): the stock may lag the
    /// pool while an import runs, never lead it, and sending an interrupted batch again
    /// finishes it.
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] for an unknown variant, and
    /// [`crate::Error::IdempotencyKeyReused`] for a batch reference the variant has with other
    /// rows — changing nothing.
    async fn import_codes(&self, import: &CodeImport) -> Result<ImportReport>;
    /// The variant's batches, oldest first, with their codes counted by state.
    async fn code_batches(&self, variant: &VariantId) -> Result<Vec<BatchSummary>>;
    /// Voids the batch's available codes and lowers the variant's stock by as many, atomically
    /// per code; allocated codes stay with their cards. Voiding again changes nothing.
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] for a batch the variant does not have.
    async fn void_batch(
        &self,
        variant: &VariantId,
        batch: &BatchRef,
        now: DateTime<Utc>,
    ) -> Result<BatchSummary>;
    /// Moves the variant's available codes whose expiry date is before `today` to EXPIRED and
    /// lowers its stock by as many, atomically per code; returns how many.
    async fn expire_codes(
        &self,
        variant: &VariantId,
        today: chrono::NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// Up to `limit` available codes of the variant that are still valid on `valid_through`
    /// (or have no expiry), first-expiring first. A hint read: the fulfillment that allocates
    /// them changes each one on the condition that it is still available.
    async fn allocatable_codes(
        &self,
        variant: &VariantId,
        valid_through: chrono::NaiveDate,
        limit: u32,
    ) -> Result<Vec<InventoryCode>>;
}

#[async_trait]
pub trait Carts: Send + Sync {
    /// The user's cart; empty (version 0) when there is none.
    async fn cart(&self, user: &UserId) -> Result<Cart>;
    /// Adds or replaces the line of `line.variant_id`.
    /// # Errors
    /// MUST return [`crate::Error::CartLocked`] while an order holds the cart, and
    /// [`crate::Error::Validation`] when a new line would exceed [`crate::cart::MAX_CART_LINES`].
    async fn put_line(&self, user: &UserId, line: &CartLine, now: DateTime<Utc>) -> Result<Cart>;
    /// # Errors
    /// MUST return [`crate::Error::CartLocked`] while an order holds the cart.
    async fn remove_line(
        &self,
        user: &UserId,
        variant: &VariantId,
        now: DateTime<Utc>,
    ) -> Result<Cart>;
    /// # Errors
    /// MUST return [`crate::Error::CartLocked`] while an order holds the cart.
    async fn clear_cart(&self, user: &UserId, now: DateTime<Utc>) -> Result<()>;
    /// Updates the stored unit price of these lines (after a `PRICE_CHANGED` checkout).
    async fn reprice(
        &self,
        user: &UserId,
        prices: &[(VariantId, Paise)],
        now: DateTime<Utc>,
    ) -> Result<()>;
}

#[async_trait]
pub trait Orders: Send + Sync {
    /// Debits the wallet by `order.total_amount`, records the DEBIT transaction, stores the
    /// PENDING order, locks the cart for a cart checkout, and finishes the idempotency key —
    /// all in one atomic step — and says whether the order's fulfillment message committed
    /// with it ([`Outbox::Committed`]) or is the caller's to send ([`Outbox::Unsent`]).
    /// # Errors
    /// MUST return [`crate::Error::InsufficientBalance`] when the balance is below the total,
    /// [`crate::Error::CartLocked`] when the cart is locked or its version is no longer
    /// `cart_version`, [`crate::Error::IdempotencyInProgress`] when the token lost its key,
    /// [`crate::Error::ClientReferenceReused`] when the user has an order with the order's
    /// client reference (of concurrent placements with one reference exactly one commits) —
    /// each changing nothing.
    async fn place_order(&self, placement: &OrderPlacement) -> Result<Outbox>;
    async fn order(&self, id: &OrderId) -> Result<Option<Order>>;
    /// The user's order with this client reference, read consistently.
    async fn order_by_reference(
        &self,
        user: &UserId,
        reference: &ClientReference,
    ) -> Result<Option<Order>>;
    /// A user's orders, newest first.
    async fn orders_of(
        &self,
        user: &UserId,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>>;
    /// Every order, newest first (admin).
    async fn all_orders(
        &self,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>>;
    /// Moves a PENDING order to PROCESSING (setting `attemptedAt`) and returns it. An order in
    /// any other status is returned unchanged.
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] for an unknown order.
    async fn start_processing(&self, id: &OrderId, now: DateTime<Utc>) -> Result<Order>;
    /// Decrements stock per variant, moves each allocated code from available to allocated,
    /// stores the cards, sets the final status and fulfilled quantities, credits the refund
    /// with its REFUND transaction, and clears the cart — in one atomic step conditional on the
    /// order being PROCESSING. Returns the order after.
    /// # Errors
    /// MUST return [`crate::Error::Conflict`] when a variant's stock is below what it would
    /// take or an allocated code is no longer available, and change nothing. An order no
    /// longer PROCESSING MUST be returned unchanged.
    async fn complete_fulfillment(&self, fulfillment: &Fulfillment) -> Result<Order>;
    /// Closes an order before anything was issued, as [`Order::refunded_in_full`] decides: the
    /// move to CANCELLED (a cancel) or REFUNDED (a give-up), the full refund with its REFUND
    /// transaction, and the cart unlocked — atomically, conditional on the status read. Of a
    /// give-up and a fulfillment that race, exactly one commits.
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] unless the order exists and belongs to the user,
    /// [`crate::Error::OrderNotCancellable`] (a cancel) or [`crate::Error::OrderAlreadyFinal`]
    /// (a give-up) when the state machine forbids the move,
    /// [`crate::Error::IdempotencyInProgress`] when the token lost its key — each changing
    /// nothing.
    async fn refund_in_full(&self, cancellation: &Cancellation) -> Result<Order>;
    /// Records that the event of the order's current final status was published.
    async fn mark_notified(&self, id: &OrderId, now: DateTime<Utc>) -> Result<()>;
    /// Orders in `status` created before `before`, oldest first, up to `limit`.
    async fn stale_orders(
        &self,
        status: OrderStatus,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Order>>;
    /// Orders in a final status whose event is not yet published, oldest first.
    async fn unnotified(&self, limit: u32) -> Result<Vec<Order>>;
}

/// Finance reporting: the daily figures every money, order and card write adds to in the same
/// atomic step (see [`crate::figures`]), and the exports of a range. Nothing here reads a
/// whole table: figures are one record per day and shard; exports read an index by time.
#[async_trait]
pub trait Reports: Send + Sync {
    /// Adds a tally on its own: a figure whose event changes nothing else (a refused payment).
    async fn record_tally(&self, tally: &Tally) -> Result<()>;
    /// Records an account's first activity of a day with its tally, on the condition that the
    /// account's last active day is still [`Activity::previous`]; `false` (and nothing
    /// changed) when another request recorded it first.
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] for an unknown account.
    async fn record_activity(&self, activity: &Activity) -> Result<bool>;
    /// Every recorded day up to and including `through`, one entry per stored record (shards
    /// not added up), in any order.
    async fn recorded_days(&self, through: NaiveDate) -> Result<Vec<(NaiveDate, DayFigures)>>;
    /// Orders not final yet, counted now.
    async fn open_orders(&self) -> Result<OpenOrders>;
    /// Orders created in `[from, to)`, oldest first, at most `limit`.
    async fn orders_created(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Order>>;
    /// Every account's wallet transactions of `[from, to)`, by time, at most `limit`.
    async fn ledger_entries(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<WalletTransaction>>;
}

#[async_trait]
pub trait GiftCards: Send + Sync {
    /// The cards with these ids, in the order given; an unknown id is left out. An order's
    /// cards are [`crate::order::Order::gift_card_ids`], so showing an order with its cards
    /// reads the order once.
    async fn cards(&self, ids: &[GiftCardId]) -> Result<Vec<GiftCard>>;
    async fn card(&self, id: &GiftCardId) -> Result<Option<GiftCard>>;
    /// A user's cards across orders, newest first, optionally in one status.
    async fn cards_of_user(
        &self,
        user: &UserId,
        status: Option<GiftCardStatus>,
        page: PageRequest,
    ) -> Result<Page<GiftCard>>;
    /// Marks up to `limit` ACTIVE cards whose expiry date is before `today` EXPIRED, each on
    /// the condition that it is still ACTIVE and with the day's tally of what it stops being
    /// owed ([`Expiry::owed_face`]), without reading cards that are not due; returns how many
    /// it marked.
    async fn expire_cards(&self, expiry: &Expiry) -> Result<u64>;
    /// The card whose number has this lookup key (the keyed HMAC of its normal form), read
    /// consistently.
    async fn card_by_lookup_key(&self, lookup_key: &str) -> Result<Option<GiftCard>>;
    /// Moves the card to [`GiftCard::redeemed_by_user`] and credits the redemption, in one
    /// atomic step conditional on the card being ACTIVE. Returns the card after.
    /// # Errors
    /// MUST return the [`crate::Error::Card`] refusal of the card's status when it is no
    /// longer ACTIVE (of two concurrent redemptions, exactly one credits), and
    /// [`crate::Error::WalletLimitExceeded`] when the credit would pass its cap — each
    /// changing nothing.
    async fn redeem(&self, redemption: &Redemption) -> Result<GiftCard>;
    /// Records the reveal in the card's audit trail and sets the card's `revealed_at` if it
    /// has none, in one atomic step.
    /// # Errors
    /// MUST return [`crate::Error::Card`] `Cancelled` for a returned card (of a racing reveal
    /// and return exactly one wins), and [`crate::Error::NotFound`] for an unknown card —
    /// each changing nothing.
    async fn record_reveal(&self, audit: &RevealAudit) -> Result<()>;
    /// The card's reveals, oldest first.
    async fn reveals_of(&self, card: &GiftCardId) -> Result<Vec<RevealAudit>>;
    /// Moves the card to [`GiftCard::returned`], refunds it, and puts its unit back in its
    /// variant's stock — in one atomic step conditional on the card being ACTIVE and never
    /// revealed. A brand code goes back to its pool available, under the new id and sealing
    /// of [`CardReturn::code`], and the cancelled card gives up the number's lookup key; a
    /// code whose batch was voided is withdrawn (VOIDED) instead and the stock does not move.
    /// Returns the card after.
    /// # Errors
    /// MUST return the card's [`crate::Error::Card`] refusal when it is no longer ACTIVE or
    /// was revealed meanwhile, and change nothing.
    async fn return_card(&self, card_return: &CardReturn) -> Result<GiftCard>;
    /// Records that the card's event was published; a no-op for a card that owes none.
    async fn mark_card_notified(&self, card: &GiftCardId, now: DateTime<Utc>) -> Result<()>;
    /// Up to `limit` redeemed or returned cards whose event is not published yet, without
    /// reading the cards that owe none.
    async fn unnotified_cards(&self, limit: u32) -> Result<Vec<GiftCard>>;
}

#[async_trait]
pub trait IdempotencyKeys: Send + Sync {
    /// Claims a key for a request with this fingerprint: a new key or one whose holder's lease
    /// ran out is acquired; a finished key with the same fingerprint replays; another
    /// fingerprint is [`Claim::KeyReused`]; a live lease is [`Claim::InProgress`].
    async fn claim(&self, claim: &NewClaim) -> Result<Claim>;
    /// Finishes the key with a refusal, which moved no money.
    /// # Errors
    /// MUST return [`crate::Error::IdempotencyInProgress`] when the token no longer holds the
    /// key, and change nothing.
    async fn record_refusal(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        refusal: &Refusal,
    ) -> Result<()>;
    /// Gives the key up so the request may be tried again (after a 5xx).
    async fn release(&self, scope: &IdempotencyScope, token: &str) -> Result<()>;
}

/// Users' API keys, stored with their secrets hashed.
#[async_trait]
pub trait ApiKeys: Send + Sync {
    /// Stores a new key.
    async fn create_api_key(&self, key: &ApiKey) -> Result<()>;
    /// The key with this id, read consistently: a revocation holds from the next request.
    async fn api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>>;
    /// The user's keys, newest first, revoked ones included.
    async fn api_keys_of(&self, user: &UserId) -> Result<Vec<ApiKey>>;
    /// Revokes the user's key and returns it; revoking it again keeps the first revocation.
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] unless the key exists and is the user's, and
    /// change nothing.
    async fn revoke_api_key(
        &self,
        user: &UserId,
        id: &ApiKeyId,
        now: DateTime<Utc>,
    ) -> Result<ApiKey>;
    /// Records a use of the key at `now`, unless one at or after `since` is recorded already.
    async fn touch_api_key(
        &self,
        id: &ApiKeyId,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<()>;
}

/// Request counts in fixed windows ([`crate::rate_limits`]), shared by every process of the
/// deployment: what limits API keys and customers' costly actions.
#[async_trait]
pub trait RateLimits: Send + Sync {
    /// Counts one request in the window and answers true, or answers false and counts nothing
    /// when the window holds its limit already. One atomic, conditional step: of concurrent
    /// requests from any number of processes, exactly `limit` per window are counted.
    async fn count_request(&self, window: &RateWindow) -> Result<bool>;
}

#[async_trait]
pub trait OrderQueue: Send + Sync {
    /// Sends the fulfillment message: group = user, deduplication id = order. A second send of
    /// the same order within the deduplication window is dropped.
    async fn enqueue(&self, message: &OrderMessage) -> Result<()>;
}

/// The consumer side of the orders queue: what the worker loop receives, and how it settles
/// each delivery as the core decided ([`crate::inbox::Settlement`]).
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Up to `max` deliverable messages, hidden from other consumers until settled or until
    /// their visibility timeout runs out; a message past its receives goes to the dead-letter
    /// queue instead. Waits up to `wait` for a first one when none is deliverable.
    async fn receive(&self, max: usize, wait: std::time::Duration) -> Result<Vec<Delivery>>;
    /// Deletes the delivered message. A stale receipt (the message was delivered again since)
    /// changes nothing: the newer delivery settles it.
    async fn ack(&self, delivery: &Delivery) -> Result<()>;
    /// Notes `reason` and makes the message deliverable again after `delay`.
    async fn retry_later(
        &self,
        delivery: &Delivery,
        reason: &str,
        delay: std::time::Duration,
    ) -> Result<()>;
    /// Moves the message to the dead-letter queue now, noting `reason`.
    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()>;
}

/// Operator view of the queue and its dead letters.
#[async_trait]
pub trait QueueOps: Send + Sync {
    /// Up to `limit` dead letters, oldest first, unreadable ones included.
    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>>;
    /// Moves the oldest dead letter that `pick` picks and that carries an order message back to
    /// the queue (same group, fresh deduplication id); `None` when there is none. Unreadable
    /// letters stay where they are: sent again they would only fail again (see
    /// [`QueueOps::delete_dead_letter`]).
    async fn redrive(&self, pick: &LetterPick) -> Result<Option<DeadLetter>>;
    /// Removes the oldest dead letter that `pick` picks for good; `None` when there is none.
    async fn delete_dead_letter(&self, pick: &LetterPick) -> Result<Option<DeadLetter>>;
    async fn depths(&self) -> Result<QueueDepths>;
}

/// The event feed: every event recorded once, in the order it was recorded, in its user's feed
/// and in the feed of all events — what a client pages through to catch up without webhooks.
#[async_trait]
pub trait EventFeed: Send + Sync {
    /// Records the event at the end of its user's feed and of the feed of all events, as the
    /// next of its order's events ([`Event::sequenced`]), in one atomic step, and returns it
    /// as recorded. An event id recorded before returns that first recording and changes
    /// nothing. MUST keep every feed gapless: once a reader sees an event, every event before
    /// it in that feed is readable too, so a cursor never passes one still to come.
    async fn record_event(&self, event: &Event, now: DateTime<Utc>) -> Result<Event>;
    /// Up to `limit` events of the feed after `after`, read consistently, in feed order.
    async fn feed(&self, feed: &Feed, after: FeedCursor, limit: u32) -> Result<FeedPage>;
}

/// Webhook endpoints and the log of their deliveries ([`crate::webhooks`]). Every change is
/// conditional on the version the caller read, so two dispatchers (or an admin and a
/// dispatcher) never overwrite each other's work.
#[async_trait]
pub trait Webhooks: Send + Sync {
    /// # Errors
    /// MUST return [`crate::Error::Conflict`] when the id exists, and change nothing.
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()>;
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] for an unknown endpoint.
    async fn endpoint(&self, id: &WebhookEndpointId) -> Result<WebhookEndpoint>;
    /// Every endpoint, oldest first.
    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>>;
    /// Replaces the stored endpoint, whose version must be one below `endpoint`'s.
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] when it is gone and [`crate::Error::Conflict`]
    /// when another change came first, and change nothing.
    async fn save_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()>;
    /// Deletes the endpoint; its deliveries are no longer reachable.
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] for an unknown endpoint.
    async fn delete_endpoint(&self, id: &WebhookEndpointId) -> Result<()>;
    /// The endpoint's delivery of the event: the one stored already, or else `delivery`,
    /// stored now. One atomic step: of two racing opens, both answer the same delivery.
    async fn open_delivery(&self, delivery: &WebhookDelivery) -> Result<WebhookDelivery>;
    /// # Errors
    /// MUST return [`crate::Error::NotFound`] for a delivery that is not the endpoint's.
    async fn delivery(
        &self,
        endpoint: &WebhookEndpointId,
        id: &WebhookDeliveryId,
    ) -> Result<WebhookDelivery>;
    /// Replaces the stored delivery, whose version must be one below `delivery`'s.
    /// # Errors
    /// MUST return [`crate::Error::Conflict`] when another change came first, and change
    /// nothing.
    async fn save_delivery(&self, delivery: &WebhookDelivery) -> Result<()>;
    /// Pending deliveries whose next attempt is at or before `due_by`, soonest first, across
    /// every endpoint: what a sweep wakes when a wake-up was lost.
    async fn due_deliveries(
        &self,
        due_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>>;
    /// The endpoint's deliveries, newest first, of one state or all.
    async fn deliveries(
        &self,
        endpoint: &WebhookEndpointId,
        state: Option<DeliveryState>,
        page: PageRequest,
    ) -> Result<Page<WebhookDelivery>>;
}

/// How a dispatcher comes back to a delivery: the embedded dispatcher scans for due
/// deliveries, the cloud one is sent a message.
#[async_trait]
pub trait DeliveryWakeups: Send + Sync {
    /// Makes sure a dispatcher looks at the delivery at `at` or soon after. At least once:
    /// a dispatcher that finds it not due, or done, leaves it.
    async fn wake_at(&self, delivery: &WebhookDelivery, at: DateTime<Utc>) -> Result<()>;
}

/// One signed POST of a delivery.
#[derive(Clone, Debug)]
pub struct SignedPost {
    pub url: String,
    pub event_id: String,
    pub event_type: String,
    pub delivery_id: WebhookDeliveryId,
    /// The `Giftify-Signature` value.
    pub signature: String,
    pub body: String,
}

/// What one POST got back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostOutcome {
    /// `None` when no answer came (refused, timed out).
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// Why no answer came; free of the URL, which may carry a subscriber's token.
    pub error: Option<String>,
}

/// Posts signed webhook deliveries.
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// One attempt, never following a redirect; the outcome is the attempt's record.
    async fn post(&self, post: &SignedPost) -> PostOutcome;
}

#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes at least once; `Ok` means the event is durably handed over.
    async fn publish(&self, event: &Event) -> Result<()>;
}

/// The check values of the keys the data is sealed and signed with (see [`crate::keys`]).
#[async_trait]
pub trait KeyChecks: Send + Sync {
    /// The check value recorded for `key`, if any.
    async fn recorded_check(&self, key: KeyName) -> Result<Option<String>>;
    /// Records `value` for `key` unless a value is recorded already, and returns the value
    /// recorded now. MUST be conditional: of two starts racing, both get the first one's value.
    async fn record_check(&self, key: KeyName, value: &str, now: DateTime<Utc>) -> Result<String>;
    /// How many gift cards the data holds, each sealed under the card key.
    async fn sealed_cards(&self) -> Result<u64>;
}

/// The audit log: appended to, never changed.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends `entry`. An entry is never changed or removed: recording an id that is recorded
    /// already keeps the first and changes nothing.
    async fn record_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// Up to `limit` entries with `from <= at < to` and, when `before` is given, an id below
    /// it — newest (highest id) first.
    async fn audit_slice(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        before: Option<&AuditId>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;
}

#[async_trait]
pub trait Health: Send + Sync {
    /// Cheap round trip to the backend.
    async fn check(&self) -> Result<()>;
}

/// One backend: every port, shared by reference.
#[derive(Clone)]
pub struct Ports {
    pub users: Arc<dyn Users>,
    pub sessions: Arc<dyn Sessions>,
    pub throttle: Arc<dyn LoginThrottle>,
    pub wallets: Arc<dyn Wallets>,
    pub catalogue: Arc<dyn Catalogue>,
    pub codes: Arc<dyn CodeInventory>,
    pub carts: Arc<dyn Carts>,
    pub orders: Arc<dyn Orders>,
    pub reports: Arc<dyn Reports>,
    pub gift_cards: Arc<dyn GiftCards>,
    pub idempotency: Arc<dyn IdempotencyKeys>,
    pub api_keys: Arc<dyn ApiKeys>,
    pub rate_limits: Arc<dyn RateLimits>,
    pub queue: Arc<dyn OrderQueue>,
    pub inbox: Arc<dyn Inbox>,
    pub queue_ops: Arc<dyn QueueOps>,
    pub events: Arc<dyn EventPublisher>,
    pub feed: Arc<dyn EventFeed>,
    pub webhooks: Arc<dyn Webhooks>,
    pub wakeups: Arc<dyn DeliveryWakeups>,
    /// `None` in a process that never posts webhooks (on AWS only the dispatcher does: the
    /// other functions wake it), so their packages carry no HTTP client.
    pub webhook_sender: Option<Arc<dyn WebhookSender>>,
    pub keys: Arc<dyn KeyChecks>,
    pub audit: Arc<dyn AuditLog>,
    pub health: Arc<dyn Health>,
}

impl Ports {
    /// All ports from one value that implements them all.
    pub fn from_backend<B>(
        backend: Arc<B>,
        events: Arc<dyn EventPublisher>,
        webhook_sender: Option<Arc<dyn WebhookSender>>,
    ) -> Self
    where
        B: Users
            + Sessions
            + LoginThrottle
            + Wallets
            + Catalogue
            + CodeInventory
            + Carts
            + Orders
            + Reports
            + GiftCards
            + IdempotencyKeys
            + ApiKeys
            + RateLimits
            + EventFeed
            + Webhooks
            + DeliveryWakeups
            + OrderQueue
            + Inbox
            + QueueOps
            + KeyChecks
            + AuditLog
            + Health
            + 'static,
    {
        Ports {
            users: backend.clone(),
            sessions: backend.clone(),
            throttle: backend.clone(),
            wallets: backend.clone(),
            catalogue: backend.clone(),
            codes: backend.clone(),
            carts: backend.clone(),
            orders: backend.clone(),
            reports: backend.clone(),
            gift_cards: backend.clone(),
            idempotency: backend.clone(),
            api_keys: backend.clone(),
            rate_limits: backend.clone(),
            queue: backend.clone(),
            inbox: backend.clone(),
            queue_ops: backend.clone(),
            events,
            feed: backend.clone(),
            webhooks: backend.clone(),
            wakeups: backend.clone(),
            webhook_sender,
            keys: backend.clone(),
            audit: backend.clone(),
            health: backend,
        }
    }
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ports { .. }")
    }
}
