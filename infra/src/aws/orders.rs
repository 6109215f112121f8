//! Orders: placement, fulfillment, cancel and the reads.

use super::cards::card_item;
use super::catalogue::variant_key;
use super::store::{
    DynamoStore, Transaction, TxFailure, all_pages, list, lost_race_or_error, put, retrying, update,
};
use crate::aws::item::{Attrs, Item, b, item, money, n, s, sdk_error, ts};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use giftify_shared::Missing;
use giftify_shared::figures::Tally;
use giftify_shared::ids::{GiftCardId, OrderId, ProductId, UserId, VariantId};
use giftify_shared::labels::{ClientReference, Metadata, OrderLabels};
use giftify_shared::order::{
    Cancellation, Fulfillment, FulfillmentDetails, Order, OrderLine, OrderPlacement, OrderSource,
    OrderStatus, Outbox, check_placement,
};
use giftify_shared::ports::Orders;
use giftify_shared::wallet::{Page, PageRequest};
use giftify_shared::{Error, Result};
use std::collections::HashMap;

fn order_key(id: &OrderId) -> Item {
    item([("orderId", s(id.as_str()))])
}

fn line_value(line: &OrderLine) -> AttributeValue {
    AttributeValue::M(item([
        ("variantId", s(line.variant_id.as_str())),
        ("productId", s(line.product_id.as_str())),
        ("productName", s(&line.product_name)),
        ("variantName", s(&line.variant_name)),
        ("denomination", n(line.denomination)),
        ("unitPrice", money(line.unit_price)),
        ("costPrice", money(line.cost_price)),
        ("requestedQuantity", n(i64::from(line.requested_quantity))),
        ("fulfilledQuantity", n(i64::from(line.fulfilled_quantity))),
        ("totalPrice", money(line.total_price())),
        ("fulfilledPrice", money(line.fulfilled_price())),
        ("refundedPrice", money(line.refunded_price())),
        ("validityDays", n(i64::from(line.validity_days))),
    ]))
}

fn line_from(value: &AttributeValue) -> Result<OrderLine> {
    let raw = value
        .as_m()
        .map_err(|_| Error::internal("corrupt order line"))?;
    let a = Attrs::new(raw, "orders");
    Ok(OrderLine {
        variant_id: VariantId::parse(a.s("variantId")?)?,
        product_id: ProductId::parse(a.s("productId")?)?,
        product_name: a.s("productName")?.to_string(),
        variant_name: a.s("variantName")?.to_string(),
        denomination: a.n("denomination")?,
        unit_price: a.money("unitPrice")?,
        cost_price: a.money("costPrice")?,
        requested_quantity: a.u32("requestedQuantity")?,
        fulfilled_quantity: a.u32("fulfilledQuantity")?,
        validity_days: a.u32("validityDays")?,
    })
}

fn details_value(d: &FulfillmentDetails) -> AttributeValue {
    let mut raw = item([
        ("partialFulfillment", b(d.partial_fulfillment)),
        ("refundProcessed", b(d.refund_processed)),
    ]);
    if let Some(at) = d.attempted_at {
        raw.insert("attemptedAt".into(), ts(at));
    }
    if let Some(at) = d.fulfilled_at {
        raw.insert("fulfilledAt".into(), ts(at));
    }
    if let Some(reason) = &d.refund_reason {
        raw.insert("refundReason".into(), s(reason.as_str()));
    }
    AttributeValue::M(raw)
}

pub(super) fn order_item(order: &Order) -> Item {
    let mut raw = item([
        ("orderId", s(order.id.as_str())),
        ("userId", s(order.user_id.as_str())),
        ("status", s(order.status.as_str())),
        ("source", s(order.source.as_str())),
        ("totalAmount", money(order.total_amount)),
        ("paidAmount", money(order.paid_amount)),
        ("refundAmount", money(order.refund_amount)),
        ("items", list(order.items.iter().map(line_value).collect())),
        ("fulfillmentDetails", details_value(&order.fulfillment)),
        ("createdAt", ts(order.created_at)),
        ("updatedAt", ts(order.updated_at)),
    ]);
    if let Some(reference) = &order.labels.client_reference {
        raw.insert("clientReference".into(), s(reference.as_str()));
    }
    if !order.labels.metadata.is_empty() {
        raw.insert(
            "metadata".into(),
            AttributeValue::M(
                order
                    .labels
                    .metadata
                    .pairs()
                    .iter()
                    .map(|(key, value)| (key.clone(), s(value)))
                    .collect(),
            ),
        );
    }
    raw
}

/// The item that holds a client reference for its order, in the idempotency-keys table: an
/// idempotency key that never expires. Its key cannot meet an `Idempotency-Key`'s, which
/// starts with the user id.
pub(super) fn reference_key(user: &UserId, reference: &ClientReference) -> Item {
    item([(
        "scopeKey",
        s(format!("orderRef#{user}#{}", reference.as_str())),
    )])
}

fn labels_from(a: &Attrs<'_>) -> Result<OrderLabels> {
    let client_reference = a
        .opt_s("clientReference")?
        .map(ClientReference::parse)
        .transpose()
        .map_err(|_| Error::internal("a stored client reference does not parse"))?;
    let metadata = match a.map("metadata")? {
        None => Metadata::default(),
        Some(pairs) => Metadata::from_stored(
            pairs
                .iter()
                .map(|(key, value)| {
                    value
                        .as_s()
                        .map(|v| (key.clone(), v.clone()))
                        .map_err(|_| Error::internal("a stored metadata value is not a string"))
                })
                .collect::<Result<_>>()?,
        ),
    };
    Ok(OrderLabels {
        client_reference,
        metadata,
    })
}

pub(super) fn order_from(raw: &Item) -> Result<Order> {
    let a = Attrs::new(raw, "orders");
    let details = match a.map("fulfillmentDetails")? {
        Some(d) => {
            let d = Attrs::new(d, "orders");
            FulfillmentDetails {
                attempted_at: d.opt_ts("attemptedAt")?,
                fulfilled_at: d.opt_ts("fulfilledAt")?,
                partial_fulfillment: d.bool("partialFulfillment")?,
                refund_processed: d.bool("refundProcessed")?,
                refund_reason: d.opt_s("refundReason")?.map(str::to_string),
            }
        }
        None => FulfillmentDetails::default(),
    };
    Ok(Order {
        id: OrderId::parse(a.s("orderId")?)?,
        user_id: UserId::parse(a.s("userId")?)?,
        status: a.parsed("status", OrderStatus::parse)?,
        source: a.parsed("source", OrderSource::parse)?,
        total_amount: a.money("totalAmount")?,
        paid_amount: a.money("paidAmount")?,
        refund_amount: a.money("refundAmount")?,
        items: a
            .list("items")?
            .iter()
            .map(line_from)
            .collect::<Result<_>>()?,
        fulfillment: details,
        created_at: a.ts("createdAt")?,
        updated_at: a.ts("updatedAt")?,
        notified_at: a.opt_ts("notifiedAt")?,
        labels: labels_from(&a)?,
        gift_card_ids: a
            .list("giftCardIds")?
            .iter()
            .map(|id| match id.as_s().map(|id| GiftCardId::parse(id)) {
                Ok(Ok(id)) => Ok(id),
                _ => Err(Error::internal("a stored gift card id does not parse")),
            })
            .collect::<Result<_>>()?,
    })
}

impl DynamoStore {
    pub(super) async fn order_raw(&self, id: &OrderId) -> Result<Option<Item>> {
        self.get(&self.tables.orders, order_key(id)).await
    }

    async fn order_or_missing(&self, id: &OrderId) -> Result<Order> {
        self.order_raw(id)
            .await?
            .as_ref()
            .map(order_from)
            .transpose()?
            .ok_or(Error::NotFound(Missing::Order))
    }

    /// Orders from an index, newest first, filtered, paginated with a total.
    ///
    /// The order indexes copy only keys: an index holding whole orders is rewritten on every
    /// change of an order (a write unit per index per change), while a keys-only one is written
    /// only when an order enters or leaves it. The query yields the ids in index order and a
    /// consistent batch read fetches the orders of the page. A status filter on the user's
    /// index needs each order's status, so it reads all of that user's orders.
    async fn order_page(
        &self,
        index: &str,
        key: &str,
        value: &str,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.orders)
            .index_name(index)
            .key_condition_expression(format!("#{key} = :key"))
            .set_expression_attribute_names(super::store::names_of(&[&format!("#{key}")]))
            .expression_attribute_values(":key", s(value))
            .scan_index_forward(false);
        let ids = all_pages!(query.clone())
            .iter()
            .map(|raw| Ok(OrderId::parse(Attrs::new(raw, "orders").s("orderId")?)?))
            .collect::<Result<Vec<_>>>()?;
        let (offset, limit) = (page.offset() as usize, page.limit as usize);
        if let Some(status) = status.filter(|_| key != "status") {
            let matching: Vec<Order> = self
                .orders_by_id(&ids)
                .await?
                .into_iter()
                .filter(|order| order.status == status)
                .collect();
            return Ok(Page {
                total: matching.len() as u64,
                items: matching.into_iter().skip(offset).take(limit).collect(),
                page: page.page,
                limit: page.limit,
            });
        }
        let page_ids: Vec<OrderId> = ids.iter().skip(offset).take(limit).cloned().collect();
        Ok(Page {
            total: ids.len() as u64,
            items: self.orders_by_id(&page_ids).await?,
            page: page.page,
            limit: page.limit,
        })
    }

    /// The orders with these ids, in the order given, read consistently; ids without an
    /// order are skipped.
    pub(super) async fn orders_by_id(&self, ids: &[OrderId]) -> Result<Vec<Order>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys = ids.iter().map(order_key).collect();
        let mut by_id = self
            .batch_get(&self.tables.orders, keys)
            .await?
            .iter()
            .map(|raw| order_from(raw).map(|order| (order.id.to_string(), order)))
            .collect::<Result<HashMap<_, _>>>()?;
        Ok(ids
            .iter()
            .filter_map(|id| by_id.remove(id.as_str()))
            .collect())
    }

    /// The cart item that unlocks (and, after fulfillment, empties) a cart held by `order`.
    fn cart_release(
        &self,
        user: &UserId,
        order: &OrderId,
        clear: bool,
        now: DateTime<Utc>,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem> {
        let expression = if clear {
            "REMOVE #lockedBy SET #items = :empty, #totalAmount = :zero, #totalItems = :zero, #version = #version + :one, #updatedAt = :now"
        } else {
            "REMOVE #lockedBy SET #version = #version + :one, #updatedAt = :now"
        };
        let mut values = item([
            (":order", s(order.as_str())),
            (":one", n(1)),
            (":now", ts(now)),
        ]);
        if clear {
            values.insert(":empty".into(), list(Vec::new()));
            values.insert(":zero".into(), n(0));
        }
        update(
            &self.tables.cart,
            item([("userId", s(user.as_str()))]),
            expression,
            Some("#lockedBy = :order"),
            values,
        )
    }
}

#[async_trait]
impl Orders for DynamoStore {
    /// DynamoDB and SQS share no transaction: the message is the caller's to send.
    async fn place_order(&self, placement: &OrderPlacement) -> Result<Outbox> {
        check_placement(placement)?;
        let order = &placement.order;
        retrying(|| async {
            let wallet = self.wallet_state(&order.user_id).await?;
            let mut transaction = Transaction::new();
            self.add_movement(&mut transaction, &placement.debit, &wallet)?;
            transaction.tally(Tally::of_placement(order))?;
            transaction.push(
                put(
                    &self.tables.orders,
                    order_item(order),
                    Some("attribute_not_exists(orderId)"),
                    Item::new(),
                )?,
                Error::internal("a new order id is taken"),
            );
            if let Some(version) = placement.cart_version {
                transaction.push(
                    update(
                        &self.tables.cart,
                        item([("userId", s(order.user_id.as_str()))]),
                        "SET #lockedBy = :order, #version = #version + :one, #updatedAt = :now",
                        Some("#version = :version AND attribute_not_exists(#lockedBy)"),
                        item([
                            (":order", s(order.id.as_str())),
                            (":version", n(version as i64)),
                            (":one", n(1)),
                            (":now", ts(order.created_at)),
                        ]),
                    )?,
                    Error::CartLocked,
                );
            }
            if let Some(commit) = &placement.idempotency {
                self.add_idempotency_commit(&mut transaction, commit)?;
            }
            if let Some(reference) = &order.labels.client_reference {
                let mut holder = reference_key(&order.user_id, reference);
                holder.insert("orderId".into(), s(order.id.as_str()));
                transaction.push(
                    put(
                        &self.tables.idempotency_keys,
                        holder,
                        Some("attribute_not_exists(scopeKey)"),
                        Item::new(),
                    )?,
                    Error::ClientReferenceReused,
                );
            }
            self.commit(transaction)
                .await
                .map_err(TxFailure::into_error)
        })
        .await?;
        Ok(Outbox::Unsent)
    }

    async fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        self.order_raw(id)
            .await?
            .as_ref()
            .map(order_from)
            .transpose()
    }

    async fn order_by_reference(
        &self,
        user: &UserId,
        reference: &ClientReference,
    ) -> Result<Option<Order>> {
        let Some(holder) = self
            .get(
                &self.tables.idempotency_keys,
                reference_key(user, reference),
            )
            .await?
        else {
            return Ok(None);
        };
        let id = OrderId::parse(Attrs::new(&holder, "idempotency-keys").s("orderId")?)?;
        Ok(self
            .order(&id)
            .await?
            .filter(|order| order.user_id == *user))
    }

    async fn orders_of(
        &self,
        user: &UserId,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        self.order_page(
            "userId-createdAt-index",
            "userId",
            user.as_str(),
            status,
            page,
        )
        .await
    }

    async fn all_orders(
        &self,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        if let Some(status) = status {
            return self
                .order_page(
                    "status-createdAt-index",
                    "status",
                    status.as_str(),
                    None,
                    page,
                )
                .await;
        }
        // Admin only: every order is every status's index.
        let mut orders = Vec::new();
        for status in OrderStatus::ALL {
            let all = PageRequest {
                page: 1,
                limit: u32::MAX,
            };
            orders.extend(
                self.order_page(
                    "status-createdAt-index",
                    "status",
                    status.as_str(),
                    None,
                    all,
                )
                .await?
                .items,
            );
        }
        orders.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(page.slice(orders))
    }

    /// One conditional write, no read first: the condition is the state machine's own list of
    /// the statuses an order may start from ([`OrderStatus::sources_of`]), and what it writes is
    /// what [`Order::started`] sets.
    async fn start_processing(&self, id: &OrderId, now: DateTime<Utc>) -> Result<Order> {
        let mut values = item([
            (":processing", s(OrderStatus::Processing.as_str())),
            (":now", ts(now)),
        ]);
        let mut from = Vec::new();
        for (index, status) in OrderStatus::sources_of(OrderStatus::Processing).enumerate() {
            from.push(format!(":from{index}"));
            values.insert(format!(":from{index}"), s(status.as_str()));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.orders)
            .set_key(Some(order_key(id)))
            .update_expression("SET #status = :processing, #fulfillmentDetails.#attemptedAt = :now, #updatedAt = :now")
            .condition_expression(format!("#status IN ({})", from.join(", ")))
            .set_expression_attribute_names(super::store::names_of(&["#status #fulfillmentDetails #attemptedAt #updatedAt"]))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => order_from(&output.attributes.unwrap_or_default()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.order_or_missing(id).await
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn complete_fulfillment(&self, f: &Fulfillment) -> Result<Order> {
        retrying(|| async {
            let current = self.order_or_missing(&f.order_id).await?;
            if current.status != OrderStatus::Processing {
                // A redelivery, or an order finished meanwhile: nothing more happens.
                return Ok(current);
            }
            let done = current.fulfilled_by(f)?;
            let mut transaction = Transaction::new();
            transaction.tally(Tally::of_fulfillment(&done, f))?;
            let card_ids = list(done.gift_card_ids.iter().map(|id| s(id.as_str())).collect());
            transaction.push(
                update(
                    &self.tables.orders,
                    order_key(&done.id),
                    "SET #status = :status, #items = :items, #refundAmount = :refund, \
                     #fulfillmentDetails = :details, #updatedAt = :now, #notifyPending = :yes, \
                     #giftCardIds = :cards REMOVE #notifiedAt",
                    Some("#status = :from"),
                    item([
                        (":status", s(done.status.as_str())),
                        (":items", list(done.items.iter().map(line_value).collect())),
                        (":refund", money(done.refund_amount)),
                        (":details", details_value(&done.fulfillment)),
                        (":now", ts(done.updated_at)),
                        (":yes", s("1")),
                        (":cards", card_ids),
                        (":from", s(current.status.as_str())),
                    ]),
                )?,
                // Finished by someone else meanwhile: read again, and it is returned as it is.
                Error::Conflict("the order moved while it was being fulfilled"),
            );
            for take in done.stock_taken() {
                let units = i64::try_from(take.units)
                    .map_err(|_| Error::internal("stock units overflow"))?;
                transaction.push(
                    update(
                        &self.tables.product_variants,
                        variant_key(take.product_id, take.variant_id),
                        // A variant that issued a card keeps its source; the cards were made
                        // for the source read (a legacy variant has none written).
                        "SET #stockQuantity = #stockQuantity - :n, #sourceLocked = :locked",
                        Some(
                            "#stockQuantity >= :n AND (#fulfillmentSource = :source \
                             OR attribute_not_exists(#fulfillmentSource))",
                        ),
                        item([
                            (":n", n(units)),
                            (":locked", b(true)),
                            (":source", s(f.source_of(take.variant_id).as_str())),
                        ]),
                    )?,
                    // Stock fell below the allocation, or the source changed: the core
                    // allocates again.
                    Error::Conflict("stock fell below the allocation"),
                );
            }
            for card in f.cards.iter().filter(|c| f.allocated_codes.contains(&c.id)) {
                transaction.push(
                    super::codes::allocation(self, card)?,
                    // Taken by a concurrent fulfillment or voided: the core allocates again.
                    Error::Conflict("an allocated code is no longer available"),
                );
            }
            for card in &f.cards {
                transaction.push(
                    put(
                        &self.tables.gift_cards,
                        card_item(card),
                        Some("attribute_not_exists(giftCardId)"),
                        Item::new(),
                    )?,
                    Error::internal("a new gift card id is taken"),
                );
            }
            if let Some(refund) = &f.refund {
                let wallet = self.wallet_state(&f.user_id).await?;
                self.add_movement(&mut transaction, refund, &wallet)?;
            }
            if f.clear_cart
                && self.cart_item(&f.user_id).await?.locked_by.as_ref() == Some(&f.order_id)
            {
                transaction.push(
                    self.cart_release(&f.user_id, &f.order_id, true, f.now)?,
                    Error::Conflict("the cart moved while the order was fulfilled"),
                );
            }
            self.commit(transaction)
                .await
                .map_err(TxFailure::into_error)?;
            Ok(done)
        })
        .await
    }

    async fn refund_in_full(&self, c: &Cancellation) -> Result<Order> {
        retrying(|| async {
            let current = self.order_or_missing(&c.order_id).await?;
            let (closed, refund) = current.refunded_in_full(c)?;
            let mut transaction = Transaction::new();
            transaction.push(
                update(
                    &self.tables.orders,
                    order_key(&closed.id),
                    "SET #status = :status, #refundAmount = :refund, \
                     #fulfillmentDetails = :details, #updatedAt = :now, #notifyPending = :yes \
                     REMOVE #notifiedAt",
                    Some("#status = :from"),
                    item([
                        (":status", s(closed.status.as_str())),
                        (":refund", money(closed.refund_amount)),
                        (":details", details_value(&closed.fulfillment)),
                        (":now", ts(closed.updated_at)),
                        (":yes", s("1")),
                        (":from", s(current.status.as_str())),
                    ]),
                )?,
                // It moved since it was read: read again, and the core answers for its status.
                Error::Conflict("the order moved while it was being cancelled"),
            );
            let wallet = self.wallet_state(&c.user_id).await?;
            self.add_movement(&mut transaction, &refund, &wallet)?;
            transaction.tally(Tally::of_full_refund(&closed))?;
            if current.source == OrderSource::Cart
                && self.cart_item(&c.user_id).await?.locked_by.as_ref() == Some(&c.order_id)
            {
                transaction.push(
                    self.cart_release(&c.user_id, &c.order_id, false, c.now)?,
                    Error::Conflict("the cart moved while the order was cancelled"),
                );
            }
            if let Some(commit) = &c.idempotency {
                self.add_idempotency_commit(&mut transaction, commit)?;
            }
            self.commit(transaction)
                .await
                .map_err(TxFailure::into_error)?;
            Ok(closed)
        })
        .await
    }

    async fn mark_notified(&self, id: &OrderId, now: DateTime<Utc>) -> Result<()> {
        // Only a final order has an event to mark; for any other the condition fails quietly.
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.orders)
            .set_key(Some(order_key(id)))
            .update_expression("SET #notifiedAt = :now REMOVE #notifyPending")
            .condition_expression("#status IN (:fulfilled, :partial, :refunded, :cancelled)")
            .set_expression_attribute_names(super::store::names_of(&[
                "#notifiedAt #notifyPending #status",
            ]))
            .set_expression_attribute_values(Some(item([
                (":now", ts(now)),
                (":fulfilled", s(OrderStatus::Fulfilled.as_str())),
                (":partial", s(OrderStatus::PartiallyFulfilled.as_str())),
                (":refunded", s(OrderStatus::Refunded.as_str())),
                (":cancelled", s(OrderStatus::Cancelled.as_str())),
            ])))
            .send()
            .await;
        result
            .map(|_| ())
            .or_else(|error| lost_race_or_error(error).map_or(Ok(()), Err))
    }

    async fn stale_orders(
        &self,
        status: OrderStatus,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Order>> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.orders)
            .index_name("status-createdAt-index")
            .key_condition_expression("#status = :status AND #createdAt < :before")
            .set_expression_attribute_names(super::store::names_of(&["#status #createdAt"]))
            .set_expression_attribute_values(Some(item([
                (":status", s(status.as_str())),
                (":before", ts(before)),
            ])))
            .limit(limit as i32)
            .send()
            .await
            .map_err(sdk_error)?;
        let ids = output
            .items
            .unwrap_or_default()
            .iter()
            .map(|raw| Ok(OrderId::parse(Attrs::new(raw, "orders").s("orderId")?)?))
            .collect::<Result<Vec<_>>>()?;
        // The index (keys only, eventually consistent) lags the table: keep the orders that
        // are still in the status now.
        Ok(self
            .orders_by_id(&ids)
            .await?
            .into_iter()
            .filter(|order| order.status == status)
            .collect())
    }

    async fn unnotified(&self, limit: u32) -> Result<Vec<Order>> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.orders)
            .index_name("notifyPending-index")
            .key_condition_expression("#notifyPending = :yes")
            .set_expression_attribute_names(super::store::names_of(&["#notifyPending"]))
            .expression_attribute_values(":yes", s("1"))
            .limit(limit as i32)
            .send()
            .await
            .map_err(sdk_error)?;
        // The index lags the table: confirm each with a consistent read.
        let mut orders = Vec::new();
        for raw in output.items.unwrap_or_default() {
            let id = OrderId::parse(Attrs::new(&raw, "orders").s("orderId")?)?;
            if let Some(order) = self.order(&id).await?
                && order.status.is_final()
                && order.notified_at.is_none()
            {
                orders.push(order);
            }
        }
        Ok(orders)
    }
}
