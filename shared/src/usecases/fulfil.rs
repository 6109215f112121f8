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
use crate::sandbox::{SLOW_FULFILMENT, SandboxOutcome};
use crate::vault::{GiftCard, GiftCardStatus};
use crate::{Error, Result};
use backon::{ExponentialBuilder, Retryable};
use rand::seq::SliceRandom;
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
        let rehearsal = self.first_attempt_rehearsal(message).await?;
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
            match rehearsal {
                Some(SandboxOutcome::DeadLetter) => {
                    return Err(Error::internal(
                        "sandbox: the first fulfilment attempt of this order fails for good",
                    ));
                }
                Some(SandboxOutcome::Slow) => tokio::time::sleep(SLOW_FULFILMENT).await,
                _ => {}
            }
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

    /// On a sandbox deployment, the rehearsed outcome of an order this message starts (one
    /// still PENDING): the dead letter and the delay happen on the first attempt only, so a
    /// redriven message fulfils the order. One extra read, on sandbox deployments only.
    async fn first_attempt_rehearsal(
        &self,
        message: &OrderMessage,
    ) -> Result<Option<SandboxOutcome>> {
        if !self.rules.sandbox {
            return Ok(None);
        }
        Ok(self
            .ports
            .orders
            .order(&message.order_id)
            .await?
            .filter(|order| order.status == OrderStatus::Pending)
            .and_then(|order| SandboxOutcome::of(&order.labels.metadata)))
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
        let mut fulfilled_quantities = allocate(&order.items, stock_of);
        if self.rules.sandbox
            && let Some(rehearsed) = SandboxOutcome::of(&order.labels.metadata)
        {
            fulfilled_quantities = rehearsed.shape(fulfilled_quantities);
        }

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
                    returned_at: None,
                    notified_at: None,
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
        for (variant, wanted) in wanted {
            let candidates = self
                .ports
                .codes
                .allocatable_codes(variant, valid_through, wanted + TIE_SPREAD)
                .await?;
            pools.insert(
                variant.clone(),
                first_expiring(candidates, wanted as usize, &mut rand::thread_rng()).into(),
            );
        }
        Ok(pools)
    }
}

/// Codes read beyond what an order wants, so that concurrent fulfillments of one variant
/// spread over codes of the same expiry instead of all reaching for the same few.
const TIE_SPREAD: u32 = 32;

/// The `wanted` codes to allocate from candidates sorted first-expiring first: every code
/// that expires before the last one needed, and among the codes that expire on that same day,
/// a random choice. First-expiring first holds exactly; ties, common within a batch, are
/// broken at random, so two workers rarely pick the same code and lose a race over it.
fn first_expiring(
    mut candidates: Vec<InventoryCode>,
    wanted: usize,
    rng: &mut impl rand::Rng,
) -> Vec<InventoryCode> {
    if candidates.len() <= wanted {
        return candidates;
    }
    let boundary = candidates[wanted - 1].expiry_order();
    let sure = candidates
        .iter()
        .take_while(|c| c.expiry_order() < boundary)
        .count();
    let ties_end = candidates
        .iter()
        .position(|c| c.expiry_order() > boundary)
        .unwrap_or(candidates.len());
    candidates.truncate(ties_end);
    let mut ties = candidates.split_off(sure);
    let (chosen, _) = ties.partial_shuffle(rng, wanted - sure);
    candidates.extend_from_slice(chosen);
    candidates
}

#[cfg(test)]
mod tests {
    use super::first_expiring;
    use crate::codes::{BatchRef, CodeState, InventoryCode};
    use crate::ids::{GiftCardId, ProductId, VariantId};
    use crate::vault::SealedCard;
    use chrono::NaiveDate;
    use rand::SeedableRng;

    fn code(expiry: Option<(i32, u32, u32)>) -> InventoryCode {
        InventoryCode {
            id: GiftCardId::generate(),
            variant_id: VariantId::generate(),
            product_id: ProductId::generate(),
            batch_ref: BatchRef::parse("B").unwrap(),
            sealed: SealedCard {
                number_ciphertext: String::new(),
                pin_ciphertext: String::new(),
                lookup_key: String::new(),
                last4: "0000".into(),
            },
            expiry_date: expiry.and_then(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d)),
            state: CodeState::Available,
            imported_at: chrono::Utc::now(),
            row: 1,
        }
    }

    #[test]
    fn earlier_codes_are_always_taken_and_ties_on_the_last_day_are_drawn() {
        let early = code(Some((2027, 1, 1)));
        let ties: Vec<_> = (0..10).map(|_| code(Some((2027, 6, 1)))).collect();
        let late = code(None);
        let mut candidates = vec![early.clone()];
        candidates.extend(ties.iter().cloned());
        candidates.push(late.clone());
        let mut seen = std::collections::HashSet::new();
        for seed in 0..20 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let picked = first_expiring(candidates.clone(), 3, &mut rng);
            assert_eq!(picked.len(), 3);
            assert_eq!(picked[0].id, early.id, "the earliest code is always taken");
            assert!(
                picked[1..]
                    .iter()
                    .all(|c| ties.iter().any(|t| t.id == c.id))
            );
            assert!(picked.iter().all(|c| c.id != late.id), "never a later code");
            seen.extend(picked[1..].iter().map(|c| c.id.clone()));
        }
        assert!(seen.len() > 2, "ties are spread over draws");
        assert_eq!(
            first_expiring(candidates[..2].to_vec(), 3, &mut rand::thread_rng()).len(),
            2
        );
    }
}
