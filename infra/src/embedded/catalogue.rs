//! Products, their variants and stock. Stock changes are conditional single statements inside
//! the caller's transaction, so stock never goes below zero.

use super::SqliteStore;
use super::codec::{DbError, DbResult, all, enumeration, execute, id, one, paise, time, ts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use giftify_shared::Missing;
use giftify_shared::catalogue::{
    CatalogueEntry, Product, ProductUpdate, ProductWithVariants, Variant, VariantUpdate,
};
use giftify_shared::codes::FulfillmentSource;
use giftify_shared::ids::{ProductId, VariantId};
use giftify_shared::ports::Catalogue;
use giftify_shared::{Error, Result};
use rusqlite::{Connection, Row, params};

pub(super) const PRODUCT_COLUMNS: &str = "p.id AS p_id, p.name AS p_name, p.description AS p_description, \
     p.brand AS p_brand, p.category AS p_category, p.image_url AS p_image_url, \
     p.thumbnail_url AS p_thumbnail_url, p.is_active AS p_is_active, \
     p.terms_and_conditions AS p_terms, p.how_to_redeem AS p_how_to_redeem, \
     p.validity_days AS p_validity_days, p.created_at AS p_created_at, \
     p.updated_at AS p_updated_at";

pub(super) const VARIANT_COLUMNS: &str = "v.id AS v_id, v.product_id AS v_product_id, v.name AS v_name, \
     v.denomination AS v_denomination, v.mrp AS v_mrp, v.cost_price AS v_cost_price, \
     v.discount_percent AS v_discount_percent, v.selling_price AS v_selling_price, \
     v.stock_quantity AS v_stock_quantity, v.min_order_quantity AS v_min_order_quantity, \
     v.max_order_quantity AS v_max_order_quantity, v.is_active AS v_is_active, \
     v.fulfillment_source AS v_fulfillment_source, v.source_locked AS v_source_locked, \
     v.created_at AS v_created_at, v.updated_at AS v_updated_at";

pub(super) fn product_from_row(row: &Row) -> DbResult<Product> {
    Ok(Product {
        id: id(row, "p_id")?,
        name: row.get("p_name")?,
        description: row.get("p_description")?,
        brand: row.get("p_brand")?,
        category: row.get("p_category")?,
        image_url: row.get("p_image_url")?,
        thumbnail_url: row.get("p_thumbnail_url")?,
        is_active: row.get("p_is_active")?,
        terms_and_conditions: row.get("p_terms")?,
        how_to_redeem: row.get("p_how_to_redeem")?,
        validity_days: row.get("p_validity_days")?,
        created_at: time(row, "p_created_at")?,
        updated_at: time(row, "p_updated_at")?,
    })
}

pub(super) fn variant_from_row(row: &Row) -> DbResult<Variant> {
    Ok(Variant {
        id: id(row, "v_id")?,
        product_id: id(row, "v_product_id")?,
        name: row.get("v_name")?,
        denomination: row.get("v_denomination")?,
        mrp: paise(row, "v_mrp")?,
        cost_price: paise(row, "v_cost_price")?,
        discount_percent: row.get("v_discount_percent")?,
        selling_price: paise(row, "v_selling_price")?,
        stock_quantity: row.get("v_stock_quantity")?,
        min_order_quantity: row.get("v_min_order_quantity")?,
        max_order_quantity: row.get("v_max_order_quantity")?,
        is_active: row.get("v_is_active")?,
        fulfillment_source: enumeration(row, "v_fulfillment_source", FulfillmentSource::parse)?,
        source_locked: row.get("v_source_locked")?,
        created_at: time(row, "v_created_at")?,
        updated_at: time(row, "v_updated_at")?,
    })
}

fn entry_from_row(row: &Row) -> DbResult<CatalogueEntry> {
    Ok(CatalogueEntry {
        product: product_from_row(row)?,
        variant: variant_from_row(row)?,
    })
}

fn entry_by_id(conn: &Connection, id: &VariantId) -> DbResult<Option<CatalogueEntry>> {
    one(
        conn,
        &format!(
            "SELECT {PRODUCT_COLUMNS}, {VARIANT_COLUMNS} FROM variants v \
             JOIN products p ON p.id = v.product_id WHERE v.id = ?1"
        ),
        [id.as_str()],
        entry_from_row,
    )
}

fn update_product(
    conn: &Connection,
    id: &ProductId,
    update: &ProductUpdate,
    now: DateTime<Utc>,
) -> DbResult<(Product, Product)> {
    let before = one(
        conn,
        &format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = ?1"),
        [id.as_str()],
        product_from_row,
    )?
    .ok_or(Error::NotFound(Missing::Product))?;
    let after = update.applied_to(&before, now);
    execute(
        conn,
        "UPDATE products SET name = ?2, description = ?3, brand = ?4, category = ?5, \
         image_url = ?6, thumbnail_url = ?7, is_active = ?8, terms_and_conditions = ?9, \
         how_to_redeem = ?10, validity_days = ?11, updated_at = ?12 WHERE id = ?1",
        params![
            id.as_str(),
            after.name,
            after.description,
            after.brand,
            after.category,
            after.image_url,
            after.thumbnail_url,
            after.is_active,
            after.terms_and_conditions,
            after.how_to_redeem,
            after.validity_days,
            ts(after.updated_at),
        ],
    )?;
    Ok((before, after))
}

fn insert_product(conn: &Connection, p: &Product) -> DbResult<()> {
    execute(
        conn,
        "INSERT INTO products (id, name, description, brand, category, image_url, thumbnail_url, \
         is_active, terms_and_conditions, how_to_redeem, validity_days, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            p.id.as_str(),
            p.name,
            p.description,
            p.brand,
            p.category,
            p.image_url,
            p.thumbnail_url,
            p.is_active,
            p.terms_and_conditions,
            p.how_to_redeem,
            p.validity_days,
            ts(p.created_at),
            ts(p.updated_at),
        ],
    )?;
    Ok(())
}

fn insert_variant(conn: &Connection, v: &Variant) -> DbResult<()> {
    execute(
        conn,
        "INSERT INTO variants (id, product_id, name, denomination, mrp, cost_price, \
         discount_percent, selling_price, stock_quantity, min_order_quantity, \
         max_order_quantity, is_active, fulfillment_source, source_locked, created_at, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
         ?16)",
        params![
            v.id.as_str(),
            v.product_id.as_str(),
            v.name,
            v.denomination,
            v.mrp.get(),
            v.cost_price.get(),
            v.discount_percent,
            v.selling_price.get(),
            v.stock_quantity,
            v.min_order_quantity,
            v.max_order_quantity,
            v.is_active,
            v.fulfillment_source.as_str(),
            v.source_locked,
            ts(v.created_at),
            ts(v.updated_at),
        ],
    )
    .map_err(|e| e.missing_on_foreign_key(Missing::Product))?;
    Ok(())
}

/// Moves a variant's stock by `delta` — a card issued or returned, a code imported, voided
/// or expired — inside the caller's transaction, on the condition that the variant still has
/// the `source` the core decided for, and fixes that source: it has issued a card or taken
/// codes. False, changing nothing, when the stock would go below zero or the source changed.
pub(super) fn move_stock(
    conn: &Connection,
    variant: &VariantId,
    delta: i64,
    source: FulfillmentSource,
    now: DateTime<Utc>,
) -> DbResult<bool> {
    let changed = execute(
        conn,
        "UPDATE variants SET stock_quantity = stock_quantity + ?2, source_locked = 1, \
         updated_at = ?3 WHERE id = ?1 AND stock_quantity + ?2 >= 0 AND fulfillment_source = ?4",
        params![variant.as_str(), delta, ts(now), source.as_str()],
    )?;
    Ok(changed == 1)
}

fn update_variant(
    conn: &Connection,
    id: &VariantId,
    update: &VariantUpdate,
    now: DateTime<Utc>,
) -> DbResult<CatalogueEntry> {
    let entry = entry_by_id(conn, id)?.ok_or(Error::NotFound(Missing::Variant))?;
    let after = update.applied_to(&entry.variant, now)?;
    execute(
        conn,
        "UPDATE variants SET stock_quantity = ?2, is_active = ?3, mrp = ?4, cost_price = ?5, \
         discount_percent = ?6, selling_price = ?7, fulfillment_source = ?8, updated_at = ?9, \
         name = ?10, min_order_quantity = ?11, max_order_quantity = ?12 \
         WHERE id = ?1",
        params![
            id.as_str(),
            after.stock_quantity,
            after.is_active,
            after.mrp.get(),
            after.cost_price.get(),
            after.discount_percent,
            after.selling_price.get(),
            after.fulfillment_source.as_str(),
            ts(after.updated_at),
            after.name,
            after.min_order_quantity,
            after.max_order_quantity,
        ],
    )?;
    entry_by_id(conn, id)?.ok_or_else(|| DbError::corrupt("a variant vanished while updated"))
}

#[async_trait]
impl Catalogue for SqliteStore {
    async fn catalogue_version(&self) -> Result<Option<u64>> {
        self.read(|conn| {
            let version: i64 = conn.query_row(
                "SELECT version FROM catalogue_version WHERE id = 1",
                [],
                |row| row.get(0),
            )?;
            Ok(Some(version as u64))
        })
        .await
    }

    async fn active_catalogue(&self) -> Result<Vec<ProductWithVariants>> {
        self.read(|conn| {
            let mut catalogue: Vec<ProductWithVariants> = all(
                conn,
                &format!(
                    "SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.is_active = 1 \
                     ORDER BY p.name, p.id"
                ),
                [],
                |row| {
                    Ok(ProductWithVariants {
                        product: product_from_row(row)?,
                        variants: Vec::new(),
                    })
                },
            )?;
            let variants = all(
                conn,
                &format!(
                    "SELECT {VARIANT_COLUMNS} FROM variants v \
                     JOIN products p ON p.id = v.product_id \
                     WHERE p.is_active = 1 AND v.is_active = 1 \
                     ORDER BY v.denomination, v.id"
                ),
                [],
                variant_from_row,
            )?;
            for variant in variants {
                if let Some(product) = catalogue
                    .iter_mut()
                    .find(|p| p.product.id == variant.product_id)
                {
                    product.variants.push(variant);
                }
            }
            Ok(catalogue)
        })
        .await
    }

    async fn entries(&self, ids: &[VariantId]) -> Result<Vec<CatalogueEntry>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = ids.iter().map(VariantId::as_str).collect();
        let ids = serde_json::to_string(&ids).map_err(|e| Error::Internal(e.into()))?;
        self.read(move |conn| {
            // One query for any number of ids: the list travels as one JSON array parameter.
            all(
                conn,
                &format!(
                    "SELECT {PRODUCT_COLUMNS}, {VARIANT_COLUMNS} FROM variants v \
                     JOIN products p ON p.id = v.product_id \
                     WHERE v.id IN (SELECT value FROM json_each(?1))"
                ),
                [ids],
                entry_from_row,
            )
        })
        .await
    }

    async fn inventory(&self) -> Result<Vec<CatalogueEntry>> {
        self.read(|conn| {
            all(
                conn,
                &format!(
                    "SELECT {PRODUCT_COLUMNS}, {VARIANT_COLUMNS} FROM variants v \
                     JOIN products p ON p.id = v.product_id \
                     ORDER BY p.name, p.id, v.denomination, v.id"
                ),
                [],
                entry_from_row,
            )
        })
        .await
    }

    async fn add_product(&self, product: &Product) -> Result<()> {
        let product = product.clone();
        self.write(move |conn| insert_product(conn, &product)).await
    }

    async fn add_variant(&self, variant: &Variant) -> Result<()> {
        let variant = variant.clone();
        self.write(move |conn| insert_variant(conn, &variant)).await
    }

    async fn update_variant(
        &self,
        id: &VariantId,
        update: &VariantUpdate,
        now: DateTime<Utc>,
    ) -> Result<CatalogueEntry> {
        let (id, update) = (id.clone(), update.clone());
        self.write(move |conn| update_variant(conn, &id, &update, now))
            .await
    }

    async fn update_product(
        &self,
        id: &ProductId,
        update: &ProductUpdate,
        now: DateTime<Utc>,
    ) -> Result<(Product, Product)> {
        let (id, update) = (id.clone(), update.clone());
        self.write(move |conn| update_product(conn, &id, &update, now))
            .await
    }

    async fn seed_if_empty(&self, catalogue: &[ProductWithVariants]) -> Result<bool> {
        let catalogue = catalogue.to_vec();
        // The emptiness check and the inserts share one IMMEDIATE transaction, so two processes
        // starting together seed once: the second sees the first's products.
        self.write(move |conn| {
            let seeded: bool =
                conn.query_row("SELECT EXISTS (SELECT 1 FROM products)", [], |row| {
                    row.get(0)
                })?;
            if seeded {
                return Ok(false);
            }
            for entry in &catalogue {
                insert_product(conn, &entry.product)?;
                for variant in &entry.variants {
                    insert_variant(conn, variant)?;
                }
            }
            Ok(true)
        })
        .await
    }
}
