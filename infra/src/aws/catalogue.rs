//! Products and variants.

use super::store::{DynamoStore, Transaction, TxFailure, all_pages, check, put, retrying};
use crate::aws::item::{Attrs, Item, b, item, money, n, s, sdk_error, ts};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnValue};
use chrono::{DateTime, Utc};
use giftify_shared::Missing;
use giftify_shared::catalogue::{
    CatalogueEntry, Product, ProductUpdate, ProductWithVariants, Variant, VariantUpdate,
};
use giftify_shared::codes::FulfillmentSource;
use giftify_shared::ids::{ProductId, VariantId};
use giftify_shared::ports::Catalogue;
use giftify_shared::{Error, Result};
use std::collections::HashMap;

/// The marker item whose conditional put makes catalogue seeding happen once.
const SEEDED_MARKER: &str = "CATALOGUE#seeded";

/// The marker item itself.
pub(super) fn seeded_marker() -> Item {
    item([("productId", s(SEEDED_MARKER))])
}

pub(super) fn product_item(p: &Product) -> Item {
    let mut raw = item([
        ("productId", s(p.id.as_str())),
        ("name", s(&p.name)),
        ("description", s(&p.description)),
        ("brand", s(&p.brand)),
        ("category", s(&p.category)),
        ("imageUrl", s(&p.image_url)),
        ("thumbnailUrl", s(&p.thumbnail_url)),
        ("isActive", b(p.is_active)),
        ("termsAndConditions", s(&p.terms_and_conditions)),
        ("howToRedeem", s(&p.how_to_redeem)),
        ("validityDays", n(i64::from(p.validity_days))),
        ("createdAt", ts(p.created_at)),
        ("updatedAt", ts(p.updated_at)),
    ]);
    if p.is_active {
        raw.insert("activeKey".into(), s("true"));
    }
    raw
}

pub(super) fn product_from(raw: &Item) -> Result<Product> {
    let a = Attrs::new(raw, "products");
    Ok(Product {
        id: ProductId::parse(a.s("productId")?)?,
        name: a.s("name")?.to_string(),
        description: a.s("description")?.to_string(),
        brand: a.s("brand")?.to_string(),
        category: a.s("category")?.to_string(),
        image_url: a.s("imageUrl")?.to_string(),
        thumbnail_url: a.s("thumbnailUrl")?.to_string(),
        is_active: a.bool("isActive")?,
        terms_and_conditions: a.s("termsAndConditions")?.to_string(),
        how_to_redeem: a.s("howToRedeem")?.to_string(),
        validity_days: a.u32("validityDays")?,
        created_at: a.ts("createdAt")?,
        updated_at: a.ts("updatedAt")?,
    })
}

pub(super) fn variant_item(v: &Variant) -> Item {
    item([
        ("productId", s(v.product_id.as_str())),
        ("variantId", s(v.id.as_str())),
        ("name", s(&v.name)),
        ("denomination", n(v.denomination)),
        ("mrp", money(v.mrp)),
        ("costPrice", money(v.cost_price)),
        ("discountPercent", n(v.discount_percent)),
        ("sellingPrice", money(v.selling_price)),
        ("stockQuantity", n(v.stock_quantity)),
        ("minOrderQuantity", n(i64::from(v.min_order_quantity))),
        ("maxOrderQuantity", n(i64::from(v.max_order_quantity))),
        ("isActive", b(v.is_active)),
        ("fulfillmentSource", s(v.fulfillment_source.as_str())),
        ("sourceLocked", b(v.source_locked)),
        ("createdAt", ts(v.created_at)),
        ("updatedAt", ts(v.updated_at)),
    ])
}

pub(super) fn variant_from(raw: &Item) -> Result<Variant> {
    let a = Attrs::new(raw, "product-variants");
    // Variants written before sources existed: face-value ones mint Giftify cards, any other
    // was a brand's card and takes codes (as the embedded migration decides). Such a brand
    // variant's stored stock counted minted cards, not codes: like the migration, it has none
    // until its first import writes its source (see `codes::lock_source_for_codes`).
    let fulfillment_source = match a.opt_s("fulfillmentSource")? {
        None if a.money("mrp")?.get() == a.n("denomination")?.saturating_mul(100)
            && a.money("sellingPrice")? == a.money("mrp")? =>
        {
            FulfillmentSource::Generated
        }
        None => FulfillmentSource::Inventory,
        Some(_) => a.parsed("fulfillmentSource", FulfillmentSource::parse)?,
    };
    let legacy_brand = a.opt_s("fulfillmentSource")?.is_none()
        && fulfillment_source == FulfillmentSource::Inventory;
    Ok(Variant {
        id: VariantId::parse(a.s("variantId")?)?,
        product_id: ProductId::parse(a.s("productId")?)?,
        name: a.s("name")?.to_string(),
        denomination: a.n("denomination")?,
        mrp: a.money("mrp")?,
        cost_price: a.money("costPrice")?,
        discount_percent: a.n("discountPercent")?,
        selling_price: a.money("sellingPrice")?,
        stock_quantity: if legacy_brand {
            0
        } else {
            a.n("stockQuantity")?
        },
        min_order_quantity: a.u32("minOrderQuantity")?,
        max_order_quantity: a.u32("maxOrderQuantity")?,
        is_active: a.bool("isActive")?,
        fulfillment_source,
        // Variants written before the lock existed may have issued cards: their source stays.
        source_locked: a.opt_bool("sourceLocked")?.unwrap_or(true),
        created_at: a.ts("createdAt")?,
        updated_at: a.ts("updatedAt")?,
    })
}

pub(super) fn variant_key(product: &ProductId, variant: &VariantId) -> Item {
    item([
        ("productId", s(product.as_str())),
        ("variantId", s(variant.as_str())),
    ])
}

impl DynamoStore {
    /// The product of each variant: from the process cache, else from the variant index (an
    /// eventually consistent read is fine for a mapping that never changes once written).
    pub(super) async fn products_of(
        &self,
        ids: &[VariantId],
    ) -> Result<Vec<(VariantId, ProductId)>> {
        let mut found = Vec::new();
        for id in ids {
            let cached = self
                .variant_products
                .read()
                .map_err(|_| Error::internal("cache poisoned"))?
                .get(id.as_str())
                .cloned();
            let product = match cached {
                Some(product) => Some(product),
                None => {
                    let output = self
                        .client
                        .query()
                        .table_name(&self.tables.product_variants)
                        .index_name("variantId-index")
                        .key_condition_expression("#variantId = :v")
                        .set_expression_attribute_names(super::store::names_of(&["#variantId"]))
                        .expression_attribute_values(":v", s(id.as_str()))
                        .send()
                        .await
                        .map_err(sdk_error)?;
                    let product = output
                        .items
                        .unwrap_or_default()
                        .first()
                        .map(|raw| {
                            Attrs::new(raw, "product-variants")
                                .s("productId")
                                .map(str::to_string)
                        })
                        .transpose()?;
                    if let Some(product) = &product {
                        self.variant_products
                            .write()
                            .map_err(|_| Error::internal("cache poisoned"))?
                            .insert(id.to_string(), product.clone());
                    }
                    product
                }
            };
            if let Some(product) = product {
                found.push((id.clone(), ProductId::parse(&product)?));
            }
        }
        Ok(found)
    }

    /// Consistent batch read of items by key from one table, following unprocessed keys.
    pub(super) async fn batch_get(&self, table: &str, keys: Vec<Item>) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| Error::Internal(e.into()))?,
            );
            for _ in 0..10 {
                let Some(request) = pending.take() else { break };
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                items.extend(
                    output
                        .responses
                        .unwrap_or_default()
                        .remove(table)
                        .unwrap_or_default(),
                );
                pending = output
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(table)
                    .filter(|k| !k.keys.is_empty());
                if pending.is_some() {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
            if pending.is_some() {
                return Err(Error::Unavailable(anyhow::anyhow!(
                    "batch read left keys unprocessed"
                )));
            }
        }
        Ok(items)
    }

    async fn products_by_id(
        &self,
        ids: impl Iterator<Item = &ProductId>,
    ) -> Result<HashMap<String, Product>> {
        let unique: std::collections::BTreeSet<&str> = ids.map(ProductId::as_str).collect();
        let keys = unique
            .into_iter()
            .map(|id| item([("productId", s(id))]))
            .collect();
        let raw = self.batch_get(&self.tables.products, keys).await?;
        raw.iter()
            .map(product_from)
            .map(|p| p.map(|p| (p.id.to_string(), p)))
            .collect()
    }
}

#[async_trait]
impl Catalogue for DynamoStore {
    async fn catalogue_version(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Two reads at once — the active products (an index query) and every variant (a scan of
    /// a table as small as the catalogue) — instead of one query per product.
    async fn active_catalogue(&self) -> Result<Vec<ProductWithVariants>> {
        let products = self
            .client
            .query()
            .table_name(&self.tables.products)
            .index_name("active-name-index")
            .key_condition_expression("#activeKey = :yes")
            .set_expression_attribute_names(super::store::names_of(&["#activeKey"]))
            .expression_attribute_values(":yes", s("true"));
        let variants = self
            .client
            .scan()
            .table_name(&self.tables.product_variants)
            .consistent_read(true);
        let (products, variants) = tokio::try_join!(
            async { Ok::<_, Error>(all_pages!(products.clone())) },
            async { Ok::<_, Error>(all_pages!(variants.clone())) },
        )?;
        let mut by_product: HashMap<String, Vec<Variant>> = HashMap::new();
        for raw in &variants {
            let variant = variant_from(raw)?;
            if variant.is_active {
                by_product
                    .entry(variant.product_id.to_string())
                    .or_default()
                    .push(variant);
            }
        }
        products
            .iter()
            .map(|raw| {
                let product = product_from(raw)?;
                let mut variants = by_product.remove(product.id.as_str()).unwrap_or_default();
                variants.sort_by_key(|v| v.denomination);
                Ok(ProductWithVariants { product, variants })
            })
            .collect()
    }

    async fn entries(&self, ids: &[VariantId]) -> Result<Vec<CatalogueEntry>> {
        let pairs = self.products_of(ids).await?;
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let keys = pairs.iter().map(|(v, p)| variant_key(p, v)).collect();
        let variants = self
            .batch_get(&self.tables.product_variants, keys)
            .await?
            .iter()
            .map(variant_from)
            .collect::<Result<Vec<_>>>()?;
        let products = self
            .products_by_id(variants.iter().map(|v| &v.product_id))
            .await?;
        variants
            .into_iter()
            .map(|variant| {
                let product = products
                    .get(variant.product_id.as_str())
                    .cloned()
                    .ok_or_else(|| Error::internal("variant without its product"))?;
                Ok(CatalogueEntry { product, variant })
            })
            .collect()
    }

    async fn inventory(&self) -> Result<Vec<CatalogueEntry>> {
        // Admin only: a scan of two small tables.
        let scan = self
            .client
            .scan()
            .table_name(&self.tables.products)
            .consistent_read(true);
        let products: HashMap<String, Product> = all_pages!(scan.clone())
            .iter()
            .filter(|raw| {
                raw.get("productId")
                    .is_some_and(|id| id.as_s().is_ok_and(|id| id.starts_with(ProductId::PREFIX)))
            })
            .map(|raw| product_from(raw).map(|p| (p.id.to_string(), p)))
            .collect::<Result<_>>()?;
        let scan = self
            .client
            .scan()
            .table_name(&self.tables.product_variants)
            .consistent_read(true);
        let mut entries = all_pages!(scan.clone())
            .iter()
            .map(|raw| {
                let variant = variant_from(raw)?;
                let product = products
                    .get(variant.product_id.as_str())
                    .cloned()
                    .ok_or_else(|| Error::internal("orphan variant"))?;
                Ok(CatalogueEntry { product, variant })
            })
            .collect::<Result<Vec<_>>>()?;
        entries.sort_by(|a, b| {
            (&a.product.name, a.variant.denomination)
                .cmp(&(&b.product.name, b.variant.denomination))
        });
        Ok(entries)
    }

    async fn add_product(&self, product: &Product) -> Result<()> {
        let mut transaction = Transaction::new();
        transaction.push(
            put(
                &self.tables.products,
                product_item(product),
                Some("attribute_not_exists(productId)"),
                Item::new(),
            )?,
            Error::internal("a new product id is taken"),
        );
        self.commit(transaction)
            .await
            .map_err(TxFailure::into_error)
    }

    async fn add_variant(&self, variant: &Variant) -> Result<()> {
        let mut transaction = Transaction::new();
        transaction.push(
            check(
                &self.tables.products,
                item([("productId", s(variant.product_id.as_str()))]),
                "attribute_exists(#productId)",
                Item::new(),
            )?,
            Error::NotFound(Missing::Product),
        );
        transaction.push(
            put(
                &self.tables.product_variants,
                variant_item(variant),
                Some("attribute_not_exists(variantId)"),
                Item::new(),
            )?,
            Error::internal("a new variant id is taken"),
        );
        self.commit(transaction)
            .await
            .map_err(TxFailure::into_error)
    }

    async fn update_variant(
        &self,
        id: &VariantId,
        change: &VariantUpdate,
        now: DateTime<Utc>,
    ) -> Result<CatalogueEntry> {
        retrying(|| async {
            let entry = self
                .entries(std::slice::from_ref(id))
                .await?
                .into_iter()
                .next()
                .ok_or(Error::NotFound(Missing::Variant))?;
            let current = &entry.variant;
            let updated = change.applied_to(current, now)?;
            // Written whole on the condition that stock, prices and the source's lock are what
            // was read, so a concurrent sale or import between the read and the write is never
            // overwritten.
            let result = self
                .client
                .put_item()
                .table_name(&self.tables.product_variants)
                .set_item(Some(variant_item(&updated)))
                .condition_expression(if current.source_locked {
                    // A legacy variant has no lock written and reads as locked.
                    "#stockQuantity = :stock AND #updatedAt = :updated AND \
                     (#sourceLocked = :locked OR attribute_not_exists(#sourceLocked))"
                } else {
                    "#stockQuantity = :stock AND #updatedAt = :updated AND #sourceLocked = :locked"
                })
                .set_expression_attribute_names(super::store::names_of(&[
                    "#stockQuantity #updatedAt #sourceLocked",
                ]))
                .set_expression_attribute_values(Some(item([
                    (":stock", n(current.stock_quantity)),
                    (":updated", ts(current.updated_at)),
                    (":locked", b(current.source_locked)),
                ])))
                .return_values(ReturnValue::None)
                .send()
                .await;
            match result {
                Ok(_) => Ok(CatalogueEntry {
                    product: entry.product.clone(),
                    variant: updated,
                }),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Err(Error::Conflict("variant changed during the update"))
                }
                Err(e) => Err(sdk_error(e)),
            }
        })
        .await
    }

    async fn update_product(
        &self,
        id: &ProductId,
        update: &ProductUpdate,
        now: DateTime<Utc>,
    ) -> Result<(Product, Product)> {
        retrying(|| async {
            let raw = self
                .get(&self.tables.products, item([("productId", s(id.as_str()))]))
                .await?
                .ok_or(Error::NotFound(Missing::Product))?;
            let before = product_from(&raw)?;
            let after = update.applied_to(&before, now);
            // Written whole on the condition that it is still the product read.
            let result = self
                .client
                .put_item()
                .table_name(&self.tables.products)
                .set_item(Some(product_item(&after)))
                .condition_expression("#updatedAt = :updated")
                .set_expression_attribute_names(super::store::names_of(&["#updatedAt"]))
                .expression_attribute_values(":updated", ts(before.updated_at))
                .send()
                .await;
            match result {
                Ok(_) => Ok((before, after)),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Err(Error::Conflict("product changed during the update"))
                }
                Err(e) => Err(sdk_error(e)),
            }
        })
        .await
    }

    async fn seed_if_empty(&self, catalogue: &[ProductWithVariants]) -> Result<bool> {
        /// What the failure of a condition of the seeding means.
        enum Seeding {
            AlreadySeeded,
            Failed(Error),
        }
        let mut transaction = Transaction::new();
        transaction.push(
            put(
                &self.tables.products,
                seeded_marker(),
                Some("attribute_not_exists(productId)"),
                Item::new(),
            )?,
            Seeding::AlreadySeeded,
        );
        let unconditional = || Seeding::Failed(Error::internal("an unconditional put failed"));
        for entry in catalogue {
            transaction.push(
                put(
                    &self.tables.products,
                    product_item(&entry.product),
                    None,
                    Item::new(),
                )?,
                unconditional(),
            );
            for variant in &entry.variants {
                transaction.push(
                    put(
                        &self.tables.product_variants,
                        variant_item(variant),
                        None,
                        Item::new(),
                    )?,
                    unconditional(),
                );
            }
        }
        if transaction.len() > 100 {
            return Err(Error::internal(
                "the seed catalogue exceeds one transaction",
            ));
        }
        match self.commit(transaction).await {
            Ok(()) => Ok(true),
            Err(TxFailure::Refused(Seeding::AlreadySeeded)) => Ok(false),
            Err(TxFailure::Refused(Seeding::Failed(error)) | TxFailure::Failed(error)) => {
                Err(error)
            }
        }
    }
}
