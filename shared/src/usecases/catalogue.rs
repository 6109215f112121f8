//! Catalogue reads, admin catalogue changes, and the cart.

use super::Giftify;
use super::audit::{product_values, variant_values};
use crate::Missing;
use crate::audit::{Actor, AuditAction, AuditEntry};
use crate::cart::{Cart, CartLine};
use crate::catalogue::{
    CatalogueEntry, Product, ProductUpdate, ProductWithVariants, Variant, VariantUpdate,
};
use crate::ids::{ProductId, UserId, VariantId};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use std::sync::{Arc, PoisonError, RwLock};

/// The active catalogue as last read by this process, with what tells whether it is current.
#[derive(Debug, Default)]
pub struct CatalogueCache {
    kept: RwLock<Option<KeptCatalogue>>,
}

#[derive(Clone, Debug)]
struct KeptCatalogue {
    version: Option<u64>,
    read_at: DateTime<Utc>,
    products: Arc<Vec<ProductWithVariants>>,
}

impl CatalogueCache {
    /// The kept catalogue if it is current: read at `version`, or, with no version, less
    /// than `ttl` ago.
    fn current(
        &self,
        version: Option<u64>,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Option<Arc<Vec<ProductWithVariants>>> {
        let kept = self.kept.read().unwrap_or_else(PoisonError::into_inner);
        let kept = kept.as_ref()?;
        let current = match (version, kept.version) {
            (Some(now_at), Some(read_at)) => now_at == read_at,
            (None, None) => now - kept.read_at < ttl,
            _ => false,
        };
        current.then(|| kept.products.clone())
    }

    fn keep(
        &self,
        version: Option<u64>,
        now: DateTime<Utc>,
        products: Arc<Vec<ProductWithVariants>>,
    ) {
        *self.kept.write().unwrap_or_else(PoisonError::into_inner) = Some(KeptCatalogue {
            version,
            read_at: now,
            products,
        });
    }
}

/// A new product as an admin describes it (already validated field by field).
#[derive(Clone, Debug)]
pub struct NewProduct {
    pub name: String,
    pub description: String,
    pub brand: String,
    pub category: String,
    pub image_url: String,
    pub thumbnail_url: String,
    pub terms_and_conditions: String,
    pub how_to_redeem: String,
    pub validity_days: u32,
}

/// A new variant as an admin describes it.
#[derive(Clone, Debug)]
pub struct NewVariant {
    pub name: String,
    pub denomination: i64,
    pub pricing: crate::catalogue::Pricing,
    pub stock_quantity: i64,
    pub min_order_quantity: u32,
    pub max_order_quantity: u32,
    pub is_active: bool,
    pub fulfillment_source: crate::codes::FulfillmentSource,
}

impl Giftify {
    /// The active catalogue, from memory while it is known to be current: while the store's
    /// catalogue version is the one it was read at, or — on a backend without versions — for
    /// [`super::Rules::catalogue_ttl`] after it was read.
    pub async fn catalogue(&self) -> Result<Arc<Vec<ProductWithVariants>>> {
        // The version is read before the catalogue, so a change between the two reads leaves
        // a newer catalogue under an older version: the next read reads it again, never the
        // other way round.
        let version = self.ports.catalogue.catalogue_version().await?;
        let now = self.now();
        if let Some(kept) = self
            .catalogue_cache
            .current(version, now, self.rules.catalogue_ttl)
        {
            return Ok(kept);
        }
        let products = Arc::new(self.ports.catalogue.active_catalogue().await?);
        self.catalogue_cache.keep(version, now, products.clone());
        Ok(products)
    }

    pub async fn inventory(&self) -> Result<Vec<CatalogueEntry>> {
        self.ports.catalogue.inventory().await
    }

    /// Seeds the demo catalogue, and the demo code batch of each brand variant, into an empty
    /// database; true when it did. (A start that dies between the two leaves the brand variants
    /// without stock: an admin imports codes, as a real shop does anyway.)
    pub async fn seed_demo_catalogue(&self) -> Result<bool> {
        let catalogue = crate::catalogue::demo_catalogue(self.now());
        if !self.ports.catalogue.seed_if_empty(&catalogue).await? {
            return Ok(false);
        }
        self.import_demo_codes().await?;
        Ok(true)
    }

    pub async fn add_product(&self, actor: &Actor, new: NewProduct) -> Result<Product> {
        let now = self.now();
        let product = Product {
            id: ProductId::generate(),
            name: new.name,
            description: new.description,
            brand: new.brand,
            category: new.category,
            image_url: new.image_url,
            thumbnail_url: new.thumbnail_url,
            is_active: true,
            terms_and_conditions: new.terms_and_conditions,
            how_to_redeem: new.how_to_redeem,
            validity_days: new.validity_days,
            created_at: now,
            updated_at: now,
        };
        self.ports.catalogue.add_product(&product).await?;
        self.audit(
            AuditEntry::new(now, actor, AuditAction::ProductCreated, product.id.as_str())
                .after(product_values(&product)),
        )
        .await;
        Ok(product)
    }

    /// # Errors
    /// [`Error::Validation`] for an INVENTORY variant created with stock (its stock comes from
    /// the codes imported into it) or a GENERATED one not priced at its face value.
    pub async fn add_variant(
        &self,
        actor: &Actor,
        product_id: ProductId,
        new: NewVariant,
    ) -> Result<Variant> {
        crate::catalogue::check_source_pricing(
            new.fulfillment_source,
            new.denomination,
            &new.pricing,
        )?;
        if new.fulfillment_source == crate::codes::FulfillmentSource::Inventory
            && new.stock_quantity != 0
        {
            return Err(Error::validation(
                "stockQuantity",
                "an INVENTORY variant starts with no stock: import a code batch to stock it",
            ));
        }
        let now = self.now();
        let variant = Variant {
            id: VariantId::generate(),
            product_id,
            name: new.name,
            denomination: new.denomination,
            mrp: new.pricing.mrp,
            cost_price: new.pricing.cost_price,
            discount_percent: new.pricing.discount_percent,
            selling_price: new.pricing.selling_price,
            stock_quantity: new.stock_quantity,
            min_order_quantity: new.min_order_quantity,
            max_order_quantity: new.max_order_quantity,
            is_active: new.is_active,
            fulfillment_source: new.fulfillment_source,
            source_locked: false,
            created_at: now,
            updated_at: now,
        };
        self.ports.catalogue.add_variant(&variant).await?;
        self.audit(
            AuditEntry::new(now, actor, AuditAction::VariantCreated, variant.id.as_str())
                .after(variant_values(&variant)),
        )
        .await;
        Ok(variant)
    }

    pub async fn update_variant(
        &self,
        actor: &Actor,
        id: &VariantId,
        update: VariantUpdate,
    ) -> Result<CatalogueEntry> {
        let before = self.entry(id).await?.variant;
        // A variant's source never changes, so checking it against a read is race-free.
        update.check_for(&before)?;
        let now = self.now();
        let after = self
            .ports
            .catalogue
            .update_variant(id, &update, now)
            .await?;
        // `before` is the read the change was checked against: a sale that moved the stock in
        // between shows as a difference the admin did not make, which an audit may show.
        self.audit(
            AuditEntry::new(now, actor, AuditAction::InventoryChanged, id.as_str())
                .before(variant_values(&before))
                .after(variant_values(&after.variant)),
        )
        .await;
        Ok(after)
    }

    /// Changes a product's description, images, terms, validity or active flag.
    /// # Errors
    /// [`Error::NotFound`] for an unknown product.
    pub async fn update_product(
        &self,
        actor: &Actor,
        id: &ProductId,
        update: &ProductUpdate,
    ) -> Result<Product> {
        let now = self.now();
        let (before, after) = self.ports.catalogue.update_product(id, update, now).await?;
        self.audit(
            AuditEntry::new(now, actor, AuditAction::ProductChanged, id.as_str())
                .before(product_values(&before))
                .after(product_values(&after)),
        )
        .await;
        Ok(after)
    }

    /// One catalogue entry, or `NotFound`.
    pub(crate) async fn entry(&self, id: &VariantId) -> Result<CatalogueEntry> {
        self.ports
            .catalogue
            .entries(std::slice::from_ref(id))
            .await?
            .into_iter()
            .next()
            .ok_or(Error::NotFound(Missing::Variant))
    }

    pub async fn cart(&self, user: &UserId) -> Result<Cart> {
        self.ports.carts.cart(user).await
    }

    /// The seed's unified cart edit: quantity 0 removes the line, anything else sets it at the
    /// current selling price after checking the variant's bounds and availability.
    pub async fn set_cart_quantity(
        &self,
        user: &UserId,
        variant_id: &VariantId,
        quantity: i64,
    ) -> Result<Cart> {
        let now = self.now();
        if quantity == 0 {
            return self.ports.carts.remove_line(user, variant_id, now).await;
        }
        if !(1..=i64::from(crate::order::MAX_CARDS_PER_ORDER)).contains(&quantity) {
            return Err(Error::validation(
                "quantity",
                format!(
                    "must be between 0 and {}",
                    crate::order::MAX_CARDS_PER_ORDER
                ),
            ));
        }
        let entry = self.entry(variant_id).await?;
        if !entry.is_available() {
            return Err(Error::NotFound(Missing::Variant));
        }
        entry.variant.check_quantity(quantity as u32)?;
        if entry.variant.stock_quantity == 0 {
            return Err(Error::OutOfStock {
                variant_id: variant_id.clone(),
            });
        }
        let line = CartLine {
            variant_id: variant_id.clone(),
            product_id: entry.product.id.clone(),
            product_name: entry.product.name.clone(),
            variant_name: entry.variant.name.clone(),
            quantity: quantity as u32,
            unit_price: entry.variant.selling_price,
        };
        self.ports.carts.put_line(user, &line, now).await
    }

    pub async fn clear_cart(&self, user: &UserId) -> Result<()> {
        self.ports.carts.clear_cart(user, self.now()).await
    }

    /// Stock of each variant in the cart, for the cart view.
    pub async fn cart_stock(&self, cart: &Cart) -> Result<Vec<(VariantId, i64)>> {
        let ids: Vec<VariantId> = cart.lines.iter().map(|l| l.variant_id.clone()).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let entries = self.ports.catalogue.entries(&ids).await?;
        Ok(entries
            .into_iter()
            .map(|e| (e.variant.id, e.variant.stock_quantity))
            .collect())
    }
}
