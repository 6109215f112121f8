//! Carts: one item per user, locked by a checkout.

use super::store::{DynamoStore, Transaction, TxFailure, put, retrying};
use crate::aws::item::{Attrs, Item, item, money, n, s, sdk_error, ts};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use giftify_shared::cart::{Cart, CartLine, MAX_CART_LINES};
use giftify_shared::figures::Tally;
use giftify_shared::ids::{OrderId, ProductId, UserId, VariantId};
use giftify_shared::ports::Carts;
use giftify_shared::{Error, Paise, Result};

fn cart_key(user: &UserId) -> Item {
    item([("userId", s(user.as_str()))])
}

fn line_value(line: &CartLine) -> AttributeValue {
    AttributeValue::M(item([
        ("variantId", s(line.variant_id.as_str())),
        ("productId", s(line.product_id.as_str())),
        ("productName", s(&line.product_name)),
        ("variantName", s(&line.variant_name)),
        ("quantity", n(i64::from(line.quantity))),
        ("unitPrice", money(line.unit_price)),
    ]))
}

fn line_from(value: &AttributeValue) -> Result<CartLine> {
    let raw = value
        .as_m()
        .map_err(|_| Error::internal("corrupt cart line"))?;
    let a = Attrs::new(raw, "cart");
    Ok(CartLine {
        variant_id: VariantId::parse(a.s("variantId")?)?,
        product_id: ProductId::parse(a.s("productId")?)?,
        product_name: a.s("productName")?.to_string(),
        variant_name: a.s("variantName")?.to_string(),
        quantity: a.u32("quantity")?,
        unit_price: a.money("unitPrice")?,
    })
}

pub(super) fn cart_from(raw: &Item) -> Result<Cart> {
    let a = Attrs::new(raw, "cart");
    Ok(Cart {
        lines: a
            .list("items")?
            .iter()
            .map(line_from)
            .collect::<Result<_>>()?,
        locked_by: a.opt_s("lockedBy")?.map(OrderId::parse).transpose()?,
        version: u64::try_from(a.n("version")?)
            .map_err(|_| Error::internal("corrupt cart version"))?,
    })
}

impl DynamoStore {
    pub(super) async fn cart_item(&self, user: &UserId) -> Result<Cart> {
        match self.get(&self.tables.cart, cart_key(user)).await? {
            Some(raw) => cart_from(&raw),
            None => Ok(Cart::default()),
        }
    }

    /// Rewrites a cart with `edit`, on the condition that it is unlocked and unchanged since
    /// it was read; retries when another edit got there first.
    async fn edit_cart(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
        edit: impl Fn(&mut Cart) -> Result<()> + Send + Sync,
    ) -> Result<Cart> {
        retrying(|| async {
            let mut cart = self.cart_item(user).await?;
            if cart.locked_by.is_some() {
                return Err(Error::CartLocked);
            }
            let version = cart.version;
            let before = cart.lines.clone();
            edit(&mut cart)?;
            if cart.lines == before {
                return Ok(cart);
            }
            cart.version = version + 1;
            let record = item([
                ("userId", s(user.as_str())),
                ("items", AttributeValue::L(cart.lines.iter().map(line_value).collect())),
                ("version", n(cart.version as i64)),
                ("totalAmount", money(cart.total_amount()?)),
                ("totalItems", n(cart.total_items() as i64)),
                ("updatedAt", ts(now)),
            ]);
            let condition = "(attribute_not_exists(#userId) OR #version = :version) AND attribute_not_exists(#lockedBy)";
            if let Some(tally) = Tally::of_cart_edit(user, before.len(), cart.lines.len(), now) {
                // A cart's first item counts in the day's figures, with the write that adds it.
                let mut transaction = Transaction::new();
                transaction.push(
                    put(
                        &self.tables.cart,
                        record,
                        Some(condition),
                        item([(":version", n(version as i64))]),
                    )?,
                    Error::Conflict("cart changed during the edit"),
                );
                transaction.tally(tally)?;
                self.commit(transaction)
                    .await
                    .map_err(TxFailure::into_error)?;
                return Ok(cart);
            }
            let result = self
                .client
                .put_item()
                .table_name(&self.tables.cart)
                .set_item(Some(record))
                .condition_expression(condition)
                .set_expression_attribute_names(super::store::names_of(&[condition]))
                .expression_attribute_values(":version", n(version as i64))
                .send()
                .await;
            match result {
                Ok(_) => Ok(cart),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                    Err(Error::Conflict("cart changed during the edit"))
                }
                Err(e) => Err(sdk_error(e)),
            }
        })
        .await
    }
}

#[async_trait]
impl Carts for DynamoStore {
    async fn cart(&self, user: &UserId) -> Result<Cart> {
        self.cart_item(user).await
    }

    async fn put_line(&self, user: &UserId, line: &CartLine, now: DateTime<Utc>) -> Result<Cart> {
        self.edit_cart(user, now, |cart| {
            if let Some(existing) = cart
                .lines
                .iter_mut()
                .find(|l| l.variant_id == line.variant_id)
            {
                *existing = line.clone();
            } else if cart.lines.len() >= MAX_CART_LINES {
                return Err(Error::validation(
                    "variantId",
                    format!("a cart holds at most {MAX_CART_LINES} variants"),
                ));
            } else {
                cart.lines.push(line.clone());
            }
            Ok(())
        })
        .await
    }

    async fn remove_line(
        &self,
        user: &UserId,
        variant: &VariantId,
        now: DateTime<Utc>,
    ) -> Result<Cart> {
        self.edit_cart(user, now, |cart| {
            cart.lines.retain(|l| l.variant_id != *variant);
            Ok(())
        })
        .await
    }

    async fn clear_cart(&self, user: &UserId, now: DateTime<Utc>) -> Result<()> {
        self.edit_cart(user, now, |cart| {
            cart.lines.clear();
            Ok(())
        })
        .await
        .map(|_| ())
    }

    async fn reprice(
        &self,
        user: &UserId,
        prices: &[(VariantId, Paise)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.edit_cart(user, now, |cart| {
            for line in &mut cart.lines {
                if let Some((_, price)) = prices.iter().find(|(v, _)| *v == line.variant_id) {
                    line.unit_price = *price;
                }
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }
}
