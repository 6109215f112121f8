//! Carts: one per user, its lines in the order they were first added, a version bumped on
//! every change, and a lock naming the order that is checking it out.

use super::SqliteStore;
use super::codec::{DbResult, all, count, execute, id, one, opt_id, paise, ts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::Missing;
use giftify_shared::cart::{Cart, CartLine, MAX_CART_LINES};
use giftify_shared::figures::Tally;
use giftify_shared::ids::{OrderId, UserId, VariantId};
use giftify_shared::ports::Carts;
use giftify_shared::{Error, Paise, Result};
use rusqlite::{Connection, params};

struct CartHead {
    locked_by: Option<OrderId>,
    version: u64,
}

fn head(conn: &Connection, user: &UserId) -> DbResult<Option<CartHead>> {
    one(
        conn,
        "SELECT locked_by, version FROM carts WHERE user_id = ?1",
        [user.as_str()],
        |row| {
            Ok(CartHead {
                locked_by: opt_id(row, "locked_by")?,
                version: row.get("version")?,
            })
        },
    )
}

pub(super) fn cart_of(conn: &Connection, user: &UserId) -> DbResult<Cart> {
    let Some(head) = head(conn, user)? else {
        return Ok(Cart::default());
    };
    let lines = all(
        conn,
        "SELECT variant_id, product_id, product_name, variant_name, quantity, unit_price \
         FROM cart_lines WHERE user_id = ?1 ORDER BY position",
        [user.as_str()],
        |row| {
            Ok(CartLine {
                variant_id: id(row, "variant_id")?,
                product_id: id(row, "product_id")?,
                product_name: row.get("product_name")?,
                variant_name: row.get("variant_name")?,
                quantity: row.get("quantity")?,
                unit_price: paise(row, "unit_price")?,
            })
        },
    )?;
    Ok(Cart {
        lines,
        locked_by: head.locked_by,
        version: head.version,
    })
}

/// The cart's head for an edit: created when missing, refused while an order holds it.
fn editable(conn: &Connection, user: &UserId, now: DateTime<Utc>) -> DbResult<()> {
    match head(conn, user)? {
        Some(CartHead {
            locked_by: Some(_), ..
        }) => Err(Error::CartLocked.into()),
        Some(_) => Ok(()),
        None => {
            execute(
                conn,
                "INSERT INTO carts (user_id, locked_by, version, created_at, updated_at) \
                 VALUES (?1, NULL, 0, ?2, ?2)",
                params![user.as_str(), ts(now)],
            )
            .map_err(|e| e.missing_on_foreign_key(Missing::User))?;
            Ok(())
        }
    }
}

fn bump(conn: &Connection, user: &UserId, now: DateTime<Utc>) -> DbResult<()> {
    execute(
        conn,
        "UPDATE carts SET version = version + 1, updated_at = ?2 WHERE user_id = ?1",
        params![user.as_str(), ts(now)],
    )?;
    Ok(())
}

/// Locks the cart for an order, only if it is unlocked and still at `version` — the version
/// the order was priced from. `CartLocked` otherwise.
pub(super) fn lock(
    conn: &Connection,
    user: &UserId,
    order: &OrderId,
    version: u64,
    now: DateTime<Utc>,
) -> DbResult<()> {
    let version = i64::try_from(version).map_err(|_| Error::CartLocked)?;
    let changed = execute(
        conn,
        "UPDATE carts SET locked_by = ?2, version = version + 1, updated_at = ?4 \
         WHERE user_id = ?1 AND locked_by IS NULL AND version = ?3",
        params![user.as_str(), order.as_str(), version, ts(now)],
    )?;
    if changed != 1 {
        return Err(Error::CartLocked.into());
    }
    Ok(())
}

/// Unlocks the cart if `order` holds it, emptying it first when `clear` is set. A cart held by
/// another order, or not locked, is left alone.
pub(super) fn release(
    conn: &Connection,
    user: &UserId,
    order: &OrderId,
    clear: bool,
    now: DateTime<Utc>,
) -> DbResult<()> {
    let held = matches!(head(conn, user)?, Some(CartHead { locked_by: Some(holder), .. }) if holder == *order);
    if !held {
        return Ok(());
    }
    if clear {
        execute(
            conn,
            "DELETE FROM cart_lines WHERE user_id = ?1",
            [user.as_str()],
        )?;
    }
    execute(
        conn,
        "UPDATE carts SET locked_by = NULL, version = version + 1, updated_at = ?3 \
         WHERE user_id = ?1 AND locked_by = ?2",
        params![user.as_str(), order.as_str(), ts(now)],
    )?;
    Ok(())
}

fn put_line(
    conn: &Connection,
    user: &UserId,
    line: &CartLine,
    now: DateTime<Utc>,
) -> DbResult<Cart> {
    if line.quantity == 0 {
        return Err(Error::validation("quantity", "must be at least 1").into());
    }
    editable(conn, user, now)?;
    let replaced = execute(
        conn,
        "UPDATE cart_lines SET product_id = ?3, product_name = ?4, variant_name = ?5, \
         quantity = ?6, unit_price = ?7 WHERE user_id = ?1 AND variant_id = ?2",
        params![
            user.as_str(),
            line.variant_id.as_str(),
            line.product_id.as_str(),
            line.product_name,
            line.variant_name,
            line.quantity,
            line.unit_price.get(),
        ],
    )?;
    if replaced == 0 {
        let lines = count(
            conn,
            "SELECT COUNT(*) FROM cart_lines WHERE user_id = ?1",
            [user.as_str()],
        )?;
        if lines >= MAX_CART_LINES as u64 {
            return Err(Error::validation(
                "variantId",
                format!("a cart holds at most {MAX_CART_LINES} different items"),
            )
            .into());
        }
        if let Some(tally) = Tally::of_cart_edit(user, lines as usize, lines as usize + 1, now) {
            super::figures::add_tally(conn, &tally)?;
        }
        execute(
            conn,
            "INSERT INTO cart_lines (user_id, variant_id, position, product_id, product_name, \
             variant_name, quantity, unit_price) \
             VALUES (?1, ?2, (SELECT COALESCE(MAX(position), 0) + 1 FROM cart_lines \
             WHERE user_id = ?1), ?3, ?4, ?5, ?6, ?7)",
            params![
                user.as_str(),
                line.variant_id.as_str(),
                line.product_id.as_str(),
                line.product_name,
                line.variant_name,
                line.quantity,
                line.unit_price.get(),
            ],
        )?;
    }
    bump(conn, user, now)?;
    cart_of(conn, user)
}

fn remove_line(
    conn: &Connection,
    user: &UserId,
    variant: &VariantId,
    now: DateTime<Utc>,
) -> DbResult<Cart> {
    match head(conn, user)? {
        None => return Ok(Cart::default()),
        Some(CartHead {
            locked_by: Some(_), ..
        }) => return Err(Error::CartLocked.into()),
        Some(_) => {}
    }
    let removed = execute(
        conn,
        "DELETE FROM cart_lines WHERE user_id = ?1 AND variant_id = ?2",
        params![user.as_str(), variant.as_str()],
    )?;
    // Removing what is not there changes nothing, so it must not invalidate a checkout.
    if removed > 0 {
        bump(conn, user, now)?;
    }
    cart_of(conn, user)
}

fn clear(conn: &Connection, user: &UserId, now: DateTime<Utc>) -> DbResult<()> {
    match head(conn, user)? {
        None => return Ok(()),
        Some(CartHead {
            locked_by: Some(_), ..
        }) => return Err(Error::CartLocked.into()),
        Some(_) => {}
    }
    let removed = execute(
        conn,
        "DELETE FROM cart_lines WHERE user_id = ?1",
        [user.as_str()],
    )?;
    if removed > 0 {
        bump(conn, user, now)?;
    }
    Ok(())
}

/// Refused with `CartLocked` while an order holds the cart: the lines are that order's.
fn reprice(
    conn: &Connection,
    user: &UserId,
    prices: &[(VariantId, Paise)],
    now: DateTime<Utc>,
) -> DbResult<()> {
    match head(conn, user)? {
        None => return Ok(()),
        Some(CartHead {
            locked_by: Some(_), ..
        }) => return Err(Error::CartLocked.into()),
        Some(_) => {}
    }
    let mut changed = 0;
    for (variant, price) in prices {
        changed += execute(
            conn,
            "UPDATE cart_lines SET unit_price = ?3 \
             WHERE user_id = ?1 AND variant_id = ?2 AND unit_price <> ?3",
            params![user.as_str(), variant.as_str(), price.get()],
        )?;
    }
    if changed > 0 {
        bump(conn, user, now)?;
    }
    Ok(())
}

#[async_trait]
impl Carts for SqliteStore {
    async fn cart(&self, user: &UserId) -> Result<Cart> {
        let user = user.clone();
        self.read(move |conn| cart_of(conn, &user)).await
    }

    async fn put_line(&self, user: &UserId, line: &CartLine, now: DateTime<Utc>) -> Result<Cart> {
        let (user, line) = (user.clone(), line.clone());
        self.write(move |conn| put_line(conn, &user, &line, now))
            .await
    }

    async fn remove_line(
        &self,
        user: &UserId,
        variant: &VariantId,
        now: DateTime<Utc>,
    ) -> Result<Cart> {
        let (user, variant) = (user.clone(), variant.clone());
        self.write(move |conn| remove_line(conn, &user, &variant, now))
            .await
    }

    async fn clear_cart(&self, user: &UserId, now: DateTime<Utc>) -> Result<()> {
        let user = user.clone();
        self.write(move |conn| clear(conn, &user, now)).await
    }

    async fn reprice(
        &self,
        user: &UserId,
        prices: &[(VariantId, Paise)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (user, prices) = (user.clone(), prices.to_vec());
        self.write(move |conn| reprice(conn, &user, &prices, now))
            .await
    }
}
