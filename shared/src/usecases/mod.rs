//! The use cases, written once against [`Ports`]: what the API handlers, the queue consumers
//! and the scheduled jobs call.

mod accounts;
mod api_keys;
mod audit;
mod batch;
mod cards;
mod catalogue;
mod codes;
mod finance;
mod fulfil;
mod keyed;
mod keys;
mod limits;
mod migrate;
mod operations;
mod ordering;
mod support;
mod wallet;
mod webhooks;

pub use accounts::{AdminRefusal, AdminRequest, AdminStep, Registration, admin_step};
pub use batch::{BatchOutcome, Handled, Metric, error_chain, message_groups};
pub use catalogue::{CatalogueCache, NewProduct, NewVariant};
pub use finance::{FinanceReport, MAX_EXPORT_ROWS, TopProduct};
pub use fulfil::MessageOutcome;
pub use keyed::{Keyed, KeyedRequest, KeyedRun};
pub use migrate::{MIGRATION_PAGE, migrate};
pub use operations::{ReconcileReport, RedriveReport};
pub use ordering::{OrderRequest, Placed};
pub use support::{AccountOverview, admin_reason};
pub use wallet::{MAX_STATEMENT_DAYS, MAX_STATEMENT_ENTRIES, Statement};
pub use webhooks::{CLAIM_LEASE, Dispatched, RECOVER_READS, RECOVER_SENDS, Recovery};

use crate::api_keys::KeyRateLimit;
use crate::clock::Clock;
use crate::inbox::RetryPolicy;
use crate::order_watch::{OrderWait, OrderWatch};
use crate::ports::Ports;
use crate::rate_limits::ActionLimits;
use crate::user::ThrottlePolicy;
use crate::vault::CardVault;
use crate::wallet::WalletLimits;
use std::sync::Arc;

/// Tunable business rules.
#[derive(Clone, Debug)]
pub struct Rules {
    pub wallet: WalletLimits,
    pub login_throttle: ThrottlePolicy,
    /// A PENDING order older than this is re-enqueued by the reconciler.
    pub stale_pending_after: chrono::Duration,
    /// An order not final this long after it was placed is given up and refunded in full by
    /// the reconciler, dead-lettered or not, so no customer's money waits on an operator.
    pub stuck_order_refund_after: chrono::Duration,
    /// When a failed order message is delivered again.
    pub message_retry: RetryPolicy,
    /// An inventory code is allocated only while it stays valid this much longer, so a buyer
    /// never receives a card about to expire.
    pub min_code_validity: chrono::Duration,
    /// Wrong number or PIN attempts at redeeming, counted per user and per card number.
    pub redeem_throttle: ThrottlePolicy,
    /// How long after issue an owner may return a card they never revealed.
    pub return_window: chrono::Duration,
    /// A test deployment: orders may ask for a rehearsed outcome ([`crate::sandbox`]), and
    /// its API keys read `gk_test_`.
    pub sandbox: bool,
    /// Requests per API key.
    pub key_rate_limit: KeyRateLimit,
    /// Each customer's budget for registering, topping up, ordering, revealing and redeeming.
    pub user_limits: ActionLimits,
    /// A webhook endpoint whose every delivery failed for this long is disabled.
    pub webhook_disable_after: chrono::Duration,
    /// Whether customers may credit their own wallets (`POST /wallet/topup`). A shop that
    /// takes real money turns it off: wallets are then credited by redemptions and admins'
    /// balance corrections only.
    pub self_top_up: bool,
    /// How long a status read may wait for an order to become final (`Prefer: wait`).
    pub order_wait: OrderWait,
    /// How long a process serves the catalogue from memory on a backend that keeps no
    /// catalogue version (DynamoDB); zero reads it every time. With a version the cache is
    /// exact and this does not apply.
    pub catalogue_ttl: chrono::Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            wallet: WalletLimits::default(),
            login_throttle: ThrottlePolicy::default(),
            stale_pending_after: chrono::Duration::minutes(2),
            stuck_order_refund_after: chrono::Duration::minutes(15),
            message_retry: RetryPolicy::default(),
            min_code_validity: chrono::Duration::days(30),
            redeem_throttle: ThrottlePolicy::default(),
            return_window: chrono::Duration::hours(24),
            sandbox: false,
            key_rate_limit: KeyRateLimit::default(),
            user_limits: ActionLimits::default(),
            webhook_disable_after: chrono::Duration::days(3),
            self_top_up: true,
            order_wait: OrderWait::default(),
            catalogue_ttl: chrono::Duration::seconds(1),
        }
    }
}

/// The application core: ports, keys and rules. Built once per process and shared.
#[derive(Clone)]
pub struct Giftify {
    pub ports: Ports,
    pub vault: Arc<CardVault>,
    pub clock: Arc<dyn Clock>,
    pub rules: Rules,
    /// Readers waiting for orders to become final in this process.
    pub order_watch: Arc<OrderWatch>,
    pub catalogue_cache: Arc<CatalogueCache>,
}

impl std::fmt::Debug for Giftify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Giftify")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl Giftify {
    pub fn new(ports: Ports, vault: Arc<CardVault>, clock: Arc<dyn Clock>, rules: Rules) -> Self {
        Giftify {
            ports,
            vault,
            clock,
            rules,
            order_watch: Arc::default(),
            catalogue_cache: Arc::default(),
        }
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
