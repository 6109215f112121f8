//! Orders: placement (debit + PENDING order + cart lock + idempotency + queue message in one
//! transaction), the status machine, conditional fulfillment and cancel, and the reads.

use super::SqliteStore;
use super::cards::insert_card;
use super::catalogue::move_stock;
use super::codec::{
    DbError, DbResult, all, count, enumeration, execute, id, one, opt_time, page_bounds, paise,
    parse_id, time, ts,
};
use super::figures::add_tally;
use super::idempotency::finish_key;
use super::wallet;
use super::{carts, queue};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::Missing;
use giftify_shared::figures::Tally;
use giftify_shared::ids::{OrderId, UserId};
use giftify_shared::labels::{ClientReference, Metadata, OrderLabels};
use giftify_shared::order::{
    Cancellation, Fulfillment, FulfillmentDetails, Order, OrderLine, OrderMessage, OrderPlacement,
    OrderSource, OrderStatus, Outbox, check_placement,
};
use giftify_shared::ports::Orders;
use giftify_shared::wallet::{Page, PageRequest};
use giftify_shared::{Error, Paise, Result};
use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};

/// The stored form of an order line (the `lines` JSON column), independent of the core's
/// serde shape so that a change there cannot silently change what is on disk.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredLine {
    variant_id: String,
    product_id: String,
    product_name: String,
    variant_name: String,
    denomination: i64,
    unit_price: i64,
    cost_price: i64,
    requested_quantity: u32,
    fulfilled_quantity: u32,
    validity_days: u32,
}

fn encode_lines(lines: &[OrderLine]) -> DbResult<String> {
    let stored: Vec<StoredLine> = lines
        .iter()
        .map(|l| StoredLine {
            variant_id: l.variant_id.to_string(),
            product_id: l.product_id.to_string(),
            product_name: l.product_name.clone(),
            variant_name: l.variant_name.clone(),
            denomination: l.denomination,
            unit_price: l.unit_price.get(),
            cost_price: l.cost_price.get(),
            requested_quantity: l.requested_quantity,
            fulfilled_quantity: l.fulfilled_quantity,
            validity_days: l.validity_days,
        })
        .collect();
    serde_json::to_string(&stored).map_err(|e| Error::Internal(e.into()).into())
}

fn decode_lines(raw: &str) -> DbResult<Vec<OrderLine>> {
    let stored: Vec<StoredLine> = serde_json::from_str(raw)?;
    stored
        .into_iter()
        .map(|l| {
            if l.fulfilled_quantity > l.requested_quantity {
                return Err(DbError::corrupt(
                    "an order line fulfilled more than requested",
                ));
            }
            Ok(OrderLine {
                variant_id: parse_id(&l.variant_id)?,
                product_id: parse_id(&l.product_id)?,
                product_name: l.product_name,
                variant_name: l.variant_name,
                denomination: l.denomination,
                unit_price: Paise::new(l.unit_price),
                cost_price: Paise::new(l.cost_price),
                requested_quantity: l.requested_quantity,
                fulfilled_quantity: l.fulfilled_quantity,
                validity_days: l.validity_days,
            })
        })
        .collect()
}

pub(super) const ORDER_COLUMNS: &str = "id, user_id, status, source, total_amount, paid_amount, \
     refund_amount, lines, attempted_at, fulfilled_at, partial_fulfillment, refund_processed, \
     created_at, updated_at, notified_at, client_reference, metadata, refund_reason, \
     (SELECT group_concat(c.id, ',' ORDER BY c.rowid) FROM gift_cards c \
      WHERE c.order_id = orders.id) AS gift_card_ids";

pub(super) fn order_from_row(row: &Row) -> DbResult<Order> {
    Ok(Order {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        status: enumeration(row, "status", OrderStatus::parse)?,
        source: enumeration(row, "source", OrderSource::parse)?,
        total_amount: paise(row, "total_amount")?,
        paid_amount: paise(row, "paid_amount")?,
        refund_amount: paise(row, "refund_amount")?,
        items: decode_lines(&row.get::<_, String>("lines")?)?,
        fulfillment: FulfillmentDetails {
            attempted_at: opt_time(row, "attempted_at")?,
            fulfilled_at: opt_time(row, "fulfilled_at")?,
            partial_fulfillment: row.get("partial_fulfillment")?,
            refund_processed: row.get("refund_processed")?,
            refund_reason: row.get("refund_reason")?,
        },
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        notified_at: opt_time(row, "notified_at")?,
        labels: OrderLabels {
            client_reference: row
                .get::<_, Option<String>>("client_reference")?
                .map(|raw| ClientReference::parse(&raw))
                .transpose()
                .map_err(|_| DbError::corrupt("a stored client reference does not parse"))?,
            metadata: Metadata::from_stored(serde_json::from_str(
                &row.get::<_, String>("metadata")?,
            )?),
        },
        gift_card_ids: row
            .get::<_, Option<String>>("gift_card_ids")?
            .iter()
            .flat_map(|ids| ids.split(','))
            .map(parse_id)
            .collect::<DbResult<_>>()?,
    })
}

fn order_by_id(conn: &Connection, id: &OrderId) -> DbResult<Option<Order>> {
    one(
        conn,
        &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1"),
        [id.as_str()],
        order_from_row,
    )
}

fn stored_order(conn: &Connection, id: &OrderId) -> DbResult<Order> {
    order_by_id(conn, id)?
        .ok_or_else(|| DbError::corrupt("an order vanished in its own transaction"))
}

fn insert_order(conn: &Connection, order: &Order) -> DbResult<()> {
    execute(
        conn,
        "INSERT INTO orders (id, user_id, status, source, total_amount, paid_amount, \
         refund_amount, lines, created_at, updated_at, client_reference, metadata) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            order.id.as_str(),
            order.user_id.as_str(),
            order.status.as_str(),
            order.source.as_str(),
            order.total_amount.get(),
            order.paid_amount.get(),
            order.refund_amount.get(),
            encode_lines(&order.items)?,
            ts(order.created_at),
            ts(order.updated_at),
            order
                .labels
                .client_reference
                .as_ref()
                .map(ClientReference::as_str),
            serde_json::to_string(order.labels.metadata.pairs())
                .map_err(|e| Error::Internal(e.into()))?,
        ],
    )?;
    Ok(())
}

fn order_by_reference(
    conn: &Connection,
    user: &UserId,
    reference: &ClientReference,
) -> DbResult<Option<Order>> {
    one(
        conn,
        &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = ?1 AND client_reference = ?2"),
        [user.as_str(), reference.as_str()],
        order_from_row,
    )
}

fn place(
    conn: &Connection,
    placement: &OrderPlacement,
    dedup_window: std::time::Duration,
) -> DbResult<()> {
    let order = &placement.order;
    if let Some(commit) = &placement.idempotency {
        finish_key(conn, commit)?;
    }
    check_placement(placement)?;
    if let Some(reference) = &order.labels.client_reference
        && order_by_reference(conn, &order.user_id, reference)?.is_some()
    {
        return Err(Error::ClientReferenceReused.into());
    }
    wallet::apply(conn, &placement.debit)?;
    if let Some(version) = placement.cart_version {
        carts::lock(conn, &order.user_id, &order.id, version, order.created_at)?;
    }
    insert_order(conn, order)?;
    add_tally(conn, &Tally::of_placement(order))?;
    // The transactional outbox: the fulfillment message commits with the order, so a crash
    // between the two cannot strand a paid order.
    queue::enqueue_in(
        conn,
        &OrderMessage {
            order_id: order.id.clone(),
            user_id: order.user_id.clone(),
        },
        dedup_window,
        ts(order.created_at),
    )?;
    Ok(())
}

/// Stores the order as the core moved it, on the condition that its status is still the one
/// it was moved from.
fn save_moved(conn: &Connection, before: &Order, after: &Order) -> DbResult<()> {
    let changed = execute(
        conn,
        "UPDATE orders SET status = ?3, lines = ?4, refund_amount = ?5, attempted_at = ?6, \
         fulfilled_at = ?7, partial_fulfillment = ?8, refund_processed = ?9, notified_at = ?10, \
         updated_at = ?11, refund_reason = ?12 \
         WHERE id = ?1 AND status = ?2",
        params![
            after.id.as_str(),
            before.status.as_str(),
            after.status.as_str(),
            encode_lines(&after.items)?,
            after.refund_amount.get(),
            after.fulfillment.attempted_at.map(ts),
            after.fulfillment.fulfilled_at.map(ts),
            after.fulfillment.partial_fulfillment,
            after.fulfillment.refund_processed,
            after.notified_at.map(ts),
            ts(after.updated_at),
            after.fulfillment.refund_reason,
        ],
    )?;
    if changed != 1 {
        return Err(Error::Conflict("the order changed while it was being moved").into());
    }
    Ok(())
}

fn existing_order(conn: &Connection, id: &OrderId) -> DbResult<Order> {
    Ok(order_by_id(conn, id)?.ok_or(Error::NotFound(Missing::Order))?)
}

fn start_processing(conn: &Connection, id: &OrderId, now: DateTime<Utc>) -> DbResult<Order> {
    let order = existing_order(conn, id)?;
    let Some(started) = order.started(now) else {
        return Ok(order);
    };
    save_moved(conn, &order, &started)?;
    stored_order(conn, id)
}

fn complete(conn: &Connection, f: &Fulfillment) -> DbResult<Order> {
    let order = existing_order(conn, &f.order_id)?;
    if order.status != OrderStatus::Processing {
        // A redelivery, or an order finished meanwhile: nothing more happens.
        return Ok(order);
    }
    let done = order.fulfilled_by(f)?;
    for take in done.stock_taken() {
        let units =
            i64::try_from(take.units).map_err(|_| Error::internal("stock units overflow"))?;
        // Short: a concurrent fulfillment or an admin took it since it was read (or the
        // variant's source changed); the transaction rolls back and the core allocates again.
        if !move_stock(
            conn,
            take.variant_id,
            -units,
            f.source_of(take.variant_id),
            f.now,
        )? {
            return Err(
                Error::Conflict("stock changed while the order was being fulfilled").into(),
            );
        }
    }
    super::codes::allocate(conn, &f.allocated_codes, f.now)?;
    for card in &f.cards {
        insert_card(conn, card)?;
    }
    if let Some(refund) = &f.refund {
        wallet::apply(conn, refund)?;
    }
    save_moved(conn, &order, &done)?;
    add_tally(conn, &Tally::of_fulfillment(&done, f))?;
    if f.clear_cart {
        carts::release(conn, &order.user_id, &order.id, true, f.now)?;
    }
    stored_order(conn, &order.id)
}

fn refund_in_full(conn: &Connection, c: &Cancellation) -> DbResult<Order> {
    if let Some(commit) = &c.idempotency {
        finish_key(conn, commit)?;
    }
    let order = existing_order(conn, &c.order_id)?;
    let (closed, refund) = order.refunded_in_full(c)?;
    save_moved(conn, &order, &closed)?;
    add_tally(conn, &Tally::of_full_refund(&closed))?;
    wallet::apply(conn, &refund)?;
    carts::release(conn, &order.user_id, &order.id, false, c.now)?;
    stored_order(conn, &order.id)
}

/// Final statuses in SQL, for the queries that need them.
const FINAL_STATUSES: &str = "('FULFILLED', 'PARTIALLY_FULFILLED', 'REFUNDED', 'CANCELLED')";

fn page_of(
    conn: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
    page: PageRequest,
) -> DbResult<Page<Order>> {
    let total = count(conn, &format!("SELECT COUNT(*) FROM orders {filter}"), args)?;
    let (limit, offset) = page_bounds(page);
    let mut with_bounds: Vec<&dyn rusqlite::ToSql> = args.to_vec();
    with_bounds.push(&limit);
    with_bounds.push(&offset);
    let n = args.len();
    // rowid breaks ties within a millisecond: orders are never deleted, so it is the
    // insertion order.
    let items = all(
        conn,
        &format!(
            "SELECT {ORDER_COLUMNS} FROM orders {filter} \
             ORDER BY created_at DESC, rowid DESC LIMIT ?{} OFFSET ?{}",
            n + 1,
            n + 2
        ),
        with_bounds.as_slice(),
        order_from_row,
    )?;
    Ok(Page {
        items,
        total,
        page: page.page,
        limit: page.limit,
    })
}

#[async_trait]
impl Orders for SqliteStore {
    async fn place_order(&self, placement: &OrderPlacement) -> Result<Outbox> {
        let placement = placement.clone();
        let window = self.options.dedup_window;
        self.write(move |conn| place(conn, &placement, window))
            .await?;
        self.queue_work.notify_one();
        Ok(Outbox::Committed)
    }

    async fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        let id = id.clone();
        self.read(move |conn| order_by_id(conn, &id)).await
    }

    async fn order_by_reference(
        &self,
        user: &UserId,
        reference: &ClientReference,
    ) -> Result<Option<Order>> {
        let (user, reference) = (user.clone(), reference.clone());
        self.read(move |conn| order_by_reference(conn, &user, &reference))
            .await
    }

    async fn orders_of(
        &self,
        user: &UserId,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        let user = user.clone();
        self.read(move |conn| match status {
            Some(status) => page_of(
                conn,
                "WHERE user_id = ?1 AND status = ?2",
                &[&user.as_str(), &status.as_str()],
                page,
            ),
            None => page_of(conn, "WHERE user_id = ?1", &[&user.as_str()], page),
        })
        .await
    }

    async fn all_orders(
        &self,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Page<Order>> {
        self.read(move |conn| match status {
            Some(status) => page_of(conn, "WHERE status = ?1", &[&status.as_str()], page),
            None => page_of(conn, "", &[], page),
        })
        .await
    }

    async fn start_processing(&self, id: &OrderId, now: DateTime<Utc>) -> Result<Order> {
        let id = id.clone();
        self.write(move |conn| start_processing(conn, &id, now))
            .await
    }

    async fn complete_fulfillment(&self, fulfillment: &Fulfillment) -> Result<Order> {
        let fulfillment = fulfillment.clone();
        self.write(move |conn| complete(conn, &fulfillment)).await
    }

    async fn refund_in_full(&self, cancellation: &Cancellation) -> Result<Order> {
        let cancellation = cancellation.clone();
        self.write(move |conn| refund_in_full(conn, &cancellation))
            .await
    }

    async fn mark_notified(&self, id: &OrderId, now: DateTime<Utc>) -> Result<()> {
        let id = id.clone();
        self.write(move |conn| {
            execute(
                conn,
                &format!(
                    "UPDATE orders SET notified_at = ?2 \
                     WHERE id = ?1 AND notified_at IS NULL AND status IN {FINAL_STATUSES}"
                ),
                params![id.as_str(), ts(now)],
            )?;
            Ok(())
        })
        .await
    }

    async fn stale_orders(
        &self,
        status: OrderStatus,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Order>> {
        self.read(move |conn| {
            all(
                conn,
                &format!(
                    "SELECT {ORDER_COLUMNS} FROM orders \
                     WHERE status = ?1 AND created_at < ?2 \
                     ORDER BY created_at, rowid LIMIT ?3"
                ),
                params![status.as_str(), ts(before), limit],
                order_from_row,
            )
        })
        .await
    }

    async fn unnotified(&self, limit: u32) -> Result<Vec<Order>> {
        self.read(move |conn| {
            all(
                conn,
                &format!(
                    "SELECT {ORDER_COLUMNS} FROM orders \
                     WHERE notified_at IS NULL AND status NOT IN ('PENDING', 'PROCESSING') \
                     ORDER BY updated_at, rowid LIMIT ?1"
                ),
                [limit],
                order_from_row,
            )
        })
        .await
    }
}
