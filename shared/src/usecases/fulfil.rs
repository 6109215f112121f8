//! Fulfillment of one order message: the one handler that the fulfillment Lambda and the local
//! queue consumers both call.
//!
//! Every step is idempotent by the order's status, so a redelivered message, a duplicate, or a
//! crash between any two steps ends in exactly the state of one clean run:
//! 1. `start_processing`: PENDING → PROCESSING (a no-op for any other status);
//! 2. if PROCESSING: allocate from current stock — for an INVENTORY variant, specific codes,
//!    first-expiring first — and commit cards, codes, stock, final status, refund and cart clear
//!    as one conditional step (a lost stock or code race re-reads and re-allocates);
//! 3. if final and not yet notified: publish the event, then mark it sent.

use super::Giftify;
use crate::catalogue::CatalogueEntry;
use crate::codes::{FulfillmentSource, InventoryCode};
use crate::ids::{GiftCardId, VariantId};
use crate::ledger::Movement;
use crate::order::{
    Fulfillment, Order, OrderMessage, OrderSource, OrderStatus, allocate, final_status,
    refund_amount,
};
use crate::vault::{GiftCard, GiftCardStatus};
use crate::{Error, Result};
use backon::{ExponentialBuilder, Retryable};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// What handling a message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageOutcome {
    /// This delivery took the order to its final status, `latency` after it was placed.
    Completed {
        status: OrderStatus,
        latency: chrono::Duration,
    },
    /// The order was already final (a redelivery or a cancel); only a missing event was sent.
    AlreadyFinal(OrderStatus),
}

impl Giftify {
    /// Handles one fulfillment message. An `Err` means "deliver again later";
    /// [`Error::is_retryable`] tells a transient failure from a poison message.
    #[tracing::instrument(skip_all, fields(order_id = %message.order_id))]
    pub async fn handle_order_message(&self, message: &OrderMessage) -> Result<MessageOutcome> {
        let order = self
            .ports
            .orders
            .start_processing(&message.order_id, self.now())
            .await?;
        if order.user_id != message.user_id {
            return Err(Error::internal(
                "message group does not match the order's user",
            ));
        }
        let (outcome, order) = if order.status == OrderStatus::Processing {
            let order = self.fulfil(order).await?;
            let latency = self.now() - order.created_at;
            (
                MessageOutcome::Completed {
                    status: order.status,
                    latency,
                },
                order,
            )
        } else {
            (MessageOutcome::AlreadyFinal(order.status), order)
        };
        // The order is final: what is left is its event, owed at least once. A failure to
        // publish is worth retrying whatever its kind (the reconciler also finishes it), never
        // a reason to dead-letter a message whose work is done.
        self.notify(&order).await.map_err(|error| match error {
            Error::Unavailable(_) | Error::Conflict(_) => error,
            other => Error::Unavailable(
                anyhow::Error::new(other).context("publishing the order's event"),
            ),
        })?;
        Ok(outcome)
    }

    /// Allocates, issues and commits; retries with fresh stock when a concurrent fulfillment
    /// took the stock it counted on.
    async fn fulfil(&self, order: Order) -> Result<Order> {
        let attempt = || async { self.try_fulfil(&order).await };
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(2))
                    .with_max_delay(Duration::from_millis(200))
                    .with_max_times(8)
                    .with_jitter(),
            )
            .when(|e: &Error| matches!(e, Error::Conflict(_)))
            .await
    }

    async fn try_fulfil(&self, order: &Order) -> Result<Order> {
        let ids: Vec<_> = order.items.iter().map(|l| l.variant_id.clone()).collect();
        let entries = self.ports.catalogue.entries(&ids).await?;
        let now = self.now();
        let mut pools = self.code_pools(order, &entries, now).await?;
        let stock_of = |id: &VariantId| {
            let stock = entries
                .iter()
                .find(|e| e.variant.id == *id)
                .map_or(0, |e| e.variant.stock_quantity);
            match pools.get(id) {
                Some(pool) => stock.min(pool.len() as i64),
                None => stock,
            }
        };
        let fulfilled_quantities = allocate(&order.items, stock_of);

        let mut lines = order.items.clone();
        let mut cards = Vec::new();
        let mut allocated_codes = Vec::new();
        for (line, &units) in lines.iter_mut().zip(&fulfilled_quantities) {
            line.fulfilled_quantity = units;
            let minted_expiry =
                (now + chrono::Duration::days(i64::from(line.validity_days))).date_naive();
            for _ in 0..units {
                let (id, sealed, expiry_date) = match pools.get_mut(&line.variant_id) {
                    Some(pool) => {
                        let code = pool
                            .pop_front()
                            .ok_or_else(|| Error::internal("allocated beyond the code pool"))?;
                        allocated_codes.push(code.id.clone());
                        (
                            code.id,
                            code.sealed,
                            code.expiry_date.unwrap_or(minted_expiry),
                        )
                    }
                    None => {
                        let id = GiftCardId::generate();
                        (id.clone(), self.vault.issue(&id)?, minted_expiry)
                    }
                };
                cards.push(GiftCard {
                    id,
                    sealed,
                    order_id: order.id.clone(),
                    user_id: order.user_id.clone(),
                    product_id: line.product_id.clone(),
                    variant_id: line.variant_id.clone(),
                    product_name: line.product_name.clone(),
                    variant_name: line.variant_name.clone(),
                    denomination: line.denomination,
                    expiry_date,
                    status: GiftCardStatus::Active,
                    purchase_price: line.unit_price,
                    issued_at: now,
                    redeemed_at: None,
                    redeemed_by: None,
                    revealed_at: None,
                });
            }
        }
        let refund = refund_amount(&lines);
        let status = final_status(&lines);
        let fulfillment = Fulfillment {
            order_id: order.id.clone(),
            user_id: order.user_id.clone(),
            status,
            fulfilled_quantities,
            cards,
            allocated_codes,
            refund: (refund.get() > 0).then(|| {
                Movement::refund_of_unfulfilled(
                    crate::ids::TransactionId::generate(),
                    order.user_id.clone(),
                    &order.id,
                    refund,
                    now,
                )
            }),
            clear_cart: order.source == OrderSource::Cart,
            now,
        };
        self.ports.orders.complete_fulfillment(&fulfillment).await
    }

    /// For each INVENTORY variant of the order, the codes it may take, first-expiring first:
    /// available, valid for [`crate::Rules::min_code_validity`] more, at most what it asks for.
    async fn code_pools(
        &self,
        order: &Order,
        entries: &[CatalogueEntry],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<HashMap<VariantId, VecDeque<InventoryCode>>> {
        let mut wanted: HashMap<&VariantId, u32> = HashMap::new();
        for line in &order.items {
            let from_inventory = entries.iter().any(|e| {
                e.variant.id == line.variant_id
                    && e.variant.fulfillment_source == FulfillmentSource::Inventory
            });
            if from_inventory {
                *wanted.entry(&line.variant_id).or_default() += line.requested_quantity;
            }
        }
        let valid_through = (now + self.rules.min_code_validity).date_naive();
        let mut pools = HashMap::new();
        for (variant, limit) in wanted {
            let codes = self
                .ports
                .codes
                .allocatable_codes(variant, valid_through, limit)
                .await?;
            pools.insert(variant.clone(), codes.into());
        }
        Ok(pools)
    }
}
