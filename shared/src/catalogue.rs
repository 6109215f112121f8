//! Products (brands), their variants (denominations) and the rules on prices and quantities.

use crate::codes::FulfillmentSource;
use crate::ids::{ProductId, VariantId};
use crate::money::selling_price;
use crate::{Error, Paise, Result};
use chrono::{DateTime, Utc};

/// A brand's gift card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    pub description: String,
    pub brand: String,
    pub category: String,
    pub image_url: String,
    pub thumbnail_url: String,
    pub is_active: bool,
    pub terms_and_conditions: String,
    pub how_to_redeem: String,
    /// Days a card stays valid after issue.
    pub validity_days: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One purchasable denomination of a product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub id: VariantId,
    pub product_id: ProductId,
    pub name: String,
    /// Face value in whole rupees.
    pub denomination: i64,
    pub mrp: Paise,
    /// What Giftify paid; admin-only.
    pub cost_price: Paise,
    pub discount_percent: i64,
    /// Derived from `mrp` and `discount_percent`; stored so readers need not recompute.
    pub selling_price: Paise,
    /// Cards on hand. For an INVENTORY variant, the number of available codes, kept exact by
    /// every import, allocation, void, expiry and return; never set directly.
    pub stock_quantity: i64,
    pub min_order_quantity: u32,
    pub max_order_quantity: u32,
    pub is_active: bool,
    pub fulfillment_source: FulfillmentSource,
    /// Whether the variant ever issued a card or had codes imported: its source is then fixed, as
    /// its cards, codes and stock mean what that source made them.
    pub source_locked: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Variant {
    /// Checks `min ≤ quantity ≤ max` for this variant.
    pub fn check_quantity(&self, quantity: u32) -> Result<()> {
        if quantity < self.min_order_quantity || quantity > self.max_order_quantity {
            return Err(Error::validation(
                "quantity",
                format!(
                    "quantity for {} must be between {} and {}",
                    self.id, self.min_order_quantity, self.max_order_quantity
                ),
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductWithVariants {
    pub product: Product,
    pub variants: Vec<Variant>,
}

/// A variant with the product fields an order line or cart line needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueEntry {
    pub product: Product,
    pub variant: Variant,
}

impl CatalogueEntry {
    /// Orderable: both the product and the variant are active.
    pub fn is_available(&self) -> bool {
        self.product.is_active && self.variant.is_active
    }
}

/// The price fields of a variant, validated together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pricing {
    pub mrp: Paise,
    pub cost_price: Paise,
    pub discount_percent: i64,
    pub selling_price: Paise,
}

impl Pricing {
    pub fn new(mrp: i64, cost_price: i64, discount_percent: i64) -> Result<Self> {
        if !(1..=10_000_000).contains(&mrp) {
            return Err(Error::validation(
                "mrp",
                "must be between 1 and 10000000 paise",
            ));
        }
        if !(0..=mrp).contains(&cost_price) {
            return Err(Error::validation(
                "costPrice",
                "must be between 0 and the MRP",
            ));
        }
        let selling = selling_price(Paise::new(mrp), discount_percent)
            .ok_or_else(|| Error::validation("discountPercent", "must be between 0 and 100"))?;
        Ok(Pricing {
            mrp: Paise::new(mrp),
            cost_price: Paise::new(cost_price),
            discount_percent,
            selling_price: selling,
        })
    }
}

/// A Giftify card (GENERATED) sells at exactly its face value: it can be redeemed into a wallet
/// for the face value, so a discount would hand out money and a markup would take it.
/// # Errors
/// [`Error::Validation`] for a GENERATED variant priced otherwise.
pub fn check_source_pricing(
    source: FulfillmentSource,
    denomination: i64,
    pricing: &Pricing,
) -> Result<()> {
    let face = denomination.checked_mul(100);
    if face != Some(pricing.mrp.get()) {
        return Err(Error::validation(
            "mrp",
            "the MRP is the card's face value: mrp = denomination × 100 paise",
        ));
    }
    if source == FulfillmentSource::Generated && pricing.selling_price != pricing.mrp {
        return Err(Error::validation(
            "discountPercent",
            "a GENERATED variant (Giftify's own card) sells at its face value: mrp = \
             denomination × 100 paise and no discount",
        ));
    }
    Ok(())
}

/// Checks order-quantity bounds of a variant definition.
pub fn check_quantity_bounds(min: i64, max: i64) -> Result<(u32, u32)> {
    if !(1..=crate::order::MAX_CARDS_PER_ORDER as i64).contains(&min) {
        return Err(Error::validation(
            "minOrderQuantity",
            format!(
                "must be between 1 and {}",
                crate::order::MAX_CARDS_PER_ORDER
            ),
        ));
    }
    if !(min..=crate::order::MAX_CARDS_PER_ORDER as i64).contains(&max) {
        return Err(Error::validation(
            "maxOrderQuantity",
            format!(
                "must be between minOrderQuantity and {}",
                crate::order::MAX_CARDS_PER_ORDER
            ),
        ));
    }
    Ok((min as u32, max as u32))
}

/// Stock is a count of cards on hand; the upper bound keeps sums far from overflow.
pub fn check_stock(field: &str, stock: i64) -> Result<i64> {
    if !(0..=100_000_000).contains(&stock) {
        return Err(Error::validation(field, "must be between 0 and 100000000"));
    }
    Ok(stock)
}

/// A free-text catalogue field: bounded length, no control characters other than newlines.
pub fn check_text(field: &str, raw: &str, min: usize, max: usize) -> Result<String> {
    let text = raw.trim();
    let len = text.chars().count();
    if len < min || len > max || text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::validation(
            field,
            format!("must be {min} to {max} characters without control characters"),
        ));
    }
    Ok(text.to_string())
}

/// Categories are upper-snake identifiers such as `FOOD_DELIVERY`.
pub fn check_category(raw: &str) -> Result<String> {
    let ok = (1..=40).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
        && raw.starts_with(|c: char| c.is_ascii_uppercase());
    if ok {
        Ok(raw.to_string())
    } else {
        Err(Error::validation(
            "category",
            "must be UPPER_SNAKE_CASE, e.g. FOOD_DELIVERY",
        ))
    }
}

/// An admin's change to a variant. `None` leaves a field unchanged. Stock is either set
/// (`stock_quantity`) or moved by a delta (`stock_adjustment`), never both: a delta is what
/// a restock should use, since it cannot overwrite a concurrent sale.
#[derive(Clone, Debug, Default)]
pub struct VariantUpdate {
    pub name: Option<String>,
    pub min_order_quantity: Option<u32>,
    pub max_order_quantity: Option<u32>,
    pub stock_quantity: Option<i64>,
    pub stock_adjustment: Option<i64>,
    pub is_active: Option<bool>,
    pub mrp: Option<i64>,
    pub cost_price: Option<i64>,
    pub discount_percent: Option<i64>,
    pub fulfillment_source: Option<FulfillmentSource>,
}

impl VariantUpdate {
    /// Refuses what this variant's kind does not allow: the stock of an INVENTORY variant is its
    /// count of available codes, changed only by imports, allocations, voids and returns; and
    /// the source changes only on a variant with no stock that never issued a card or held a
    /// code.
    pub fn check_for(&self, current: &Variant) -> Result<()> {
        if self.stock_quantity.is_some() && self.stock_adjustment.is_some() {
            return Err(Error::validation(
                "stockAdjustment",
                "set stockQuantity or stockAdjustment, not both",
            ));
        }
        let source = self.source_after(current);
        if source != current.fulfillment_source
            && (current.stock_quantity != 0 || current.source_locked)
        {
            return Err(Error::validation(
                "fulfillmentSource",
                "the source of a variant with stock, or that ever issued a card or had codes imported, \
                 is fixed; create a new variant instead",
            ));
        }
        let reprices =
            self.mrp.is_some() || self.cost_price.is_some() || self.discount_percent.is_some();
        if reprices || source != current.fulfillment_source {
            check_source_pricing(source, current.denomination, &self.pricing_after(current)?)?;
        }
        let (min, max) = self.quantity_bounds_after(current);
        check_quantity_bounds(i64::from(min), i64::from(max))?;
        let moves_stock = self.stock_quantity.is_some() || self.stock_adjustment.is_some();
        if moves_stock && source == FulfillmentSource::Inventory {
            return Err(Error::validation(
                if self.stock_quantity.is_some() {
                    "stockQuantity"
                } else {
                    "stockAdjustment"
                },
                "this variant is fulfilled from imported codes: its stock is the number of \
                 available codes; import a code batch (POST /admin/variants/{variantId}/code-batches) \
                 or void one instead",
            ));
        }
        Ok(())
    }

    /// The variant after this update, as both backends commit it: checked by
    /// [`Self::check_for`], its stock set or moved within bounds, repriced, and stamped `now`.
    /// # Errors
    /// [`Error::Validation`] for anything [`Self::check_for`] refuses, a stock out of bounds
    /// and an invalid pricing.
    pub fn applied_to(&self, current: &Variant, now: DateTime<Utc>) -> Result<Variant> {
        self.check_for(current)?;
        let stock = match (self.stock_quantity, self.stock_adjustment) {
            (Some(set), _) => check_stock("stockQuantity", set)?,
            (None, Some(delta)) => current
                .stock_quantity
                .checked_add(delta)
                .and_then(|after| check_stock("stockAdjustment", after).ok())
                .ok_or_else(|| {
                    Error::validation(
                        "stockAdjustment",
                        format!(
                            "the stock is {} and must stay between 0 and 100000000",
                            current.stock_quantity
                        ),
                    )
                })?,
            (None, None) => current.stock_quantity,
        };
        let pricing = self.pricing_after(current)?;
        let (min_order_quantity, max_order_quantity) = self.quantity_bounds_after(current);
        Ok(Variant {
            name: self.name.clone().unwrap_or_else(|| current.name.clone()),
            min_order_quantity,
            max_order_quantity,
            mrp: pricing.mrp,
            cost_price: pricing.cost_price,
            discount_percent: pricing.discount_percent,
            selling_price: pricing.selling_price,
            stock_quantity: stock,
            is_active: self.is_active.unwrap_or(current.is_active),
            fulfillment_source: self.source_after(current),
            updated_at: now,
            ..current.clone()
        })
    }

    /// The variant's order-quantity bounds after this update.
    pub fn quantity_bounds_after(&self, current: &Variant) -> (u32, u32) {
        (
            self.min_order_quantity
                .unwrap_or(current.min_order_quantity),
            self.max_order_quantity
                .unwrap_or(current.max_order_quantity),
        )
    }

    /// The variant's source after this update.
    pub fn source_after(&self, current: &Variant) -> FulfillmentSource {
        self.fulfillment_source
            .unwrap_or(current.fulfillment_source)
    }

    /// The variant's pricing after this update, validated as a whole.
    pub fn pricing_after(&self, current: &Variant) -> Result<Pricing> {
        Pricing::new(
            self.mrp.unwrap_or(current.mrp.get()),
            self.cost_price.unwrap_or(current.cost_price.get()),
            self.discount_percent.unwrap_or(current.discount_percent),
        )
    }
}

/// A change to a product's description; absent fields stay as they are. Each field is
/// validated where it is parsed (the API's request), like a new product's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub image_url: Option<String>,
    pub thumbnail_url: Option<String>,
    pub terms_and_conditions: Option<String>,
    pub how_to_redeem: Option<String>,
    pub validity_days: Option<u32>,
    pub is_active: Option<bool>,
}

impl ProductUpdate {
    pub fn changes_something(&self) -> bool {
        *self != ProductUpdate::default()
    }

    /// The product after this update, as both backends commit it. A new validity applies to
    /// cards issued from now on; cards issued keep their expiry date.
    pub fn applied_to(&self, current: &Product, now: DateTime<Utc>) -> Product {
        let text = |new: &Option<String>, old: &String| new.clone().unwrap_or_else(|| old.clone());
        Product {
            name: text(&self.name, &current.name),
            description: text(&self.description, &current.description),
            brand: text(&self.brand, &current.brand),
            category: text(&self.category, &current.category),
            image_url: text(&self.image_url, &current.image_url),
            thumbnail_url: text(&self.thumbnail_url, &current.thumbnail_url),
            terms_and_conditions: text(&self.terms_and_conditions, &current.terms_and_conditions),
            how_to_redeem: text(&self.how_to_redeem, &current.how_to_redeem),
            validity_days: self.validity_days.unwrap_or(current.validity_days),
            is_active: self.is_active.unwrap_or(current.is_active),
            updated_at: now,
            ..current.clone()
        }
    }
}

/// The demo product of Giftify's own cards.
pub const GIFTIFY_BRAND: &str = "Giftify";

/// (brand, category, description, how to redeem, [(denomination ₹, discount %, cost % of MRP, stock)])
type DemoBrand = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(i64, i64, i64, i64)],
);

/// Codes in each brand variant's demo batch ([`DEMO_BATCH`]): enough to try the shop, few
/// enough that a fresh DynamoDB stage is seeded in seconds.
pub const DEMO_CODES_PER_VARIANT: usize = 20;

/// The reference of the demo batch first start imports into each brand variant. Its codes are
/// `DEMO` numbers that no brand will honour.
pub const DEMO_BATCH: &str = "DEMO-NOT-REDEEMABLE";

/// The demo catalogue seeded on first start of an empty database: brand cards fulfilled from
/// imported codes (each variant gets a demo batch of [`DEMO_CODES_PER_VARIANT`] codes, so its
/// stock starts at 0 here), and Giftify's own stored-value card, minted at issue.
pub fn demo_catalogue(now: DateTime<Utc>) -> Vec<ProductWithVariants> {
    let brands: [DemoBrand; 7] = [
        (
            "Amazon",
            "SHOPPING",
            "Amazon Pay Gift Card - shop millions of products on Amazon.in",
            "Add the card to your Amazon Pay balance under Your Account → Gift Cards.",
            &[(500, 3, 95, 500), (1000, 3, 95, 300), (2000, 2, 96, 100)],
        ),
        (
            "Flipkart",
            "SHOPPING",
            "Flipkart Gift Card - electronics, fashion and more",
            "Apply the card number and PIN on the Flipkart payments page.",
            &[(250, 4, 94, 400), (500, 4, 94, 300), (1000, 3, 95, 150)],
        ),
        (
            "Zomato",
            "FOOD_DELIVERY",
            "Zomato Gift Card - Food delivery and dining",
            "Add the card under Zomato Money in the Zomato app.",
            &[(250, 5, 88, 1000), (500, 5, 88, 600)],
        ),
        (
            "Swiggy",
            "FOOD_DELIVERY",
            "Swiggy Money Gift Card - food, groceries with Instamart",
            "Redeem under Swiggy Money in the Swiggy app.",
            &[(250, 6, 87, 800), (500, 5, 88, 500), (1000, 5, 88, 200)],
        ),
        (
            "BookMyShow",
            "ENTERTAINMENT",
            "BookMyShow Gift Card - movies, plays and events",
            "Choose Gift Voucher at the BookMyShow checkout and enter the card number and PIN.",
            &[(500, 8, 85, 300), (1000, 7, 86, 120)],
        ),
        (
            "Myntra",
            "FASHION",
            "Myntra Gift Card - fashion and lifestyle",
            "Apply the card under Gift Cards on the Myntra payments page.",
            &[(1000, 4, 92, 250), (2000, 3, 93, 80), (5000, 2, 94, 20)],
        ),
        (
            GIFTIFY_BRAND,
            "STORED_VALUE",
            "Giftify Card - redeem into any Giftify wallet",
            "Sign in to Giftify, open Wallet → Redeem a card, and enter the card number and PIN.",
            &[
                (250, 0, 100, 1000),
                (500, 0, 100, 1000),
                (1000, 0, 100, 1000),
                (2000, 0, 100, 500),
            ],
        ),
    ];
    brands
        .iter()
        .map(|(brand, category, description, redeem, variants)| {
            let product_id = ProductId::generate();
            let product = Product {
                id: product_id.clone(),
                name: brand.to_string(),
                description: description.to_string(),
                brand: brand.to_string(),
                category: category.to_string(),
                image_url: format!(
                    "https://cdn.giftify.in/products/{}.jpg",
                    brand.to_lowercase()
                ),
                thumbnail_url: format!(
                    "https://cdn.giftify.in/products/{}-thumb.jpg",
                    brand.to_lowercase()
                ),
                is_active: true,
                terms_and_conditions:
                    "Valid for 1 year from purchase date. Cannot be exchanged for cash.".into(),
                how_to_redeem: redeem.to_string(),
                validity_days: 365,
                created_at: now,
                updated_at: now,
            };
            let variants = variants
                .iter()
                .map(|&(denomination, discount, cost_percent, stock)| {
                    let source = if *brand == GIFTIFY_BRAND {
                        FulfillmentSource::Generated
                    } else {
                        FulfillmentSource::Inventory
                    };
                    let mrp = denomination * 100;
                    let pricing = Pricing::new(mrp, mrp * cost_percent / 100, discount)
                        .expect("demo prices are valid");
                    Variant {
                        id: VariantId::generate(),
                        product_id: product_id.clone(),
                        name: format!("{brand} {denomination}"),
                        denomination,
                        mrp: pricing.mrp,
                        cost_price: pricing.cost_price,
                        discount_percent: pricing.discount_percent,
                        selling_price: pricing.selling_price,
                        stock_quantity: match source {
                            FulfillmentSource::Generated => stock,
                            FulfillmentSource::Inventory => 0,
                        },
                        min_order_quantity: 1,
                        max_order_quantity: 10,
                        is_active: true,
                        fulfillment_source: source,
                        source_locked: false,
                        created_at: now,
                        updated_at: now,
                    }
                })
                .collect();
            ProductWithVariants { product, variants }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pricing_derives_the_selling_price_and_checks_bounds() {
        let p = Pricing::new(25_000, 22_000, 5).unwrap();
        assert_eq!(p.selling_price, Paise::new(23_750));
        assert!(Pricing::new(0, 0, 5).is_err());
        assert!(Pricing::new(25_000, 30_000, 5).is_err());
        assert!(Pricing::new(25_000, 20_000, 101).is_err());
        assert!(Pricing::new(25_000, -1, 5).is_err());
    }

    #[test]
    fn quantity_bounds_respect_the_per_order_card_limit() {
        assert_eq!(check_quantity_bounds(1, 10).unwrap(), (1, 10));
        assert!(check_quantity_bounds(0, 10).is_err());
        assert!(check_quantity_bounds(5, 4).is_err());
        assert!(check_quantity_bounds(1, 41).is_err());
    }

    #[test]
    fn the_demo_catalogue_has_real_brands_with_valid_variants() {
        let catalogue = demo_catalogue(Utc::now());
        assert!(catalogue.len() >= 5);
        for p in &catalogue {
            assert!((2..=4).contains(&p.variants.len()), "{}", p.product.name);
            for v in &p.variants {
                match v.fulfillment_source {
                    FulfillmentSource::Inventory => assert!(
                        v.selling_price < v.mrp && v.cost_price < v.selling_price,
                        "{}",
                        v.name
                    ),
                    // Giftify's own cards sell at face value: Giftify holds the money until
                    // the card is redeemed.
                    FulfillmentSource::Generated => assert_eq!(v.selling_price, v.mrp),
                }
            }
        }
    }
}
