//! `/admin`: inventory, every user's orders, analytics and catalogue changes. Every handler
//! takes an [`AdminUser`], so a customer gets 403 and a stale admin token loses access as
//! soon as the account is demoted or suspended. The only place `costPrice` is shown.

use crate::AppState;
use crate::dto::{FulfillmentSourceDto, OrderListQuery, OrderStatusDto, Pagination};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{AdminUser, ApiJson, ApiPath, ApiQuery, parse_id};
use crate::response::{Envelope, ok};
use crate::wire_time::timestamp;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use giftify_shared::catalogue::{
    CatalogueEntry, Pricing, Product, ProductUpdate, Variant, VariantUpdate, check_category,
    check_quantity_bounds, check_stock, check_text,
};
use giftify_shared::ids::{ProductId, VariantId};
use giftify_shared::order::Order;
use giftify_shared::usecases::{NewProduct, NewVariant};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The `/admin` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/inventory", get(inventory))
        .route("/admin/inventory/{variantId}", put(update_inventory))
        .route("/admin/orders", get(orders))
        .route("/admin/products", post(create_product))
        .route("/admin/products/{productId}", put(update_product))
        .route("/admin/products/{productId}/variants", post(create_variant))
}

/// Largest stock change one adjustment may make; matches the stock ceiling.
const MAX_STOCK_ADJUSTMENT: i64 = 100_000_000;
/// Largest denomination, in rupees (₹1,00,000, the MRP ceiling).
const MAX_DENOMINATION: i64 = 100_000;
/// Longest card validity an admin may set, in days.
const MAX_VALIDITY_DAYS: i64 = 3_650;

/// Every variant with its stock and prices.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryData {
    pub inventory: Vec<InventoryItem>,
}

/// A variant as admins see it, cost included.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryItem {
    pub variant_id: String,
    pub product_id: String,
    pub product_name: String,
    pub variant_name: String,
    pub denomination: i64,
    pub mrp: i64,
    /// What Giftify paid, in paise. Admin only.
    pub cost_price: i64,
    pub discount_percent: i64,
    pub selling_price: i64,
    pub stock_quantity: i64,
    pub min_order_quantity: u32,
    pub max_order_quantity: u32,
    /// The variant's own flag.
    pub is_active: bool,
    /// The product's flag: a variant is orderable only when both are active.
    pub product_active: bool,
    pub fulfillment_source: FulfillmentSourceDto,
    /// The selling price is below what Giftify paid: every sale loses money. Allowed (a
    /// promotion), and flagged so that it is never a typo nobody saw.
    pub selling_below_cost: bool,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&CatalogueEntry> for InventoryItem {
    fn from(entry: &CatalogueEntry) -> Self {
        let (product, variant) = (&entry.product, &entry.variant);
        InventoryItem {
            variant_id: variant.id.to_string(),
            product_id: product.id.to_string(),
            product_name: product.name.clone(),
            variant_name: variant.name.clone(),
            denomination: variant.denomination,
            mrp: variant.mrp.get(),
            cost_price: variant.cost_price.get(),
            discount_percent: variant.discount_percent,
            selling_price: variant.selling_price.get(),
            stock_quantity: variant.stock_quantity,
            min_order_quantity: variant.min_order_quantity,
            max_order_quantity: variant.max_order_quantity,
            is_active: variant.is_active,
            product_active: product.is_active,
            fulfillment_source: variant.fulfillment_source.into(),
            selling_below_cost: variant.selling_price < variant.cost_price,
            updated_at: timestamp(variant.updated_at),
        }
    }
}

/// A change to a variant; absent fields stay as they are. Set stock with `stockQuantity` or
/// move it with `stockAdjustment` (safe against concurrent sales), not both.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateInventoryRequest {
    /// 1–100 characters.
    pub name: Option<String>,
    #[schema(minimum = 1, maximum = 40)]
    pub min_order_quantity: Option<i64>,
    /// At least `minOrderQuantity`.
    #[schema(minimum = 1, maximum = 40)]
    pub max_order_quantity: Option<i64>,
    #[schema(minimum = 0, maximum = 100000000)]
    pub stock_quantity: Option<i64>,
    /// Added to the current stock; the result may not be negative.
    #[schema(example = -4)]
    pub stock_adjustment: Option<i64>,
    pub is_active: Option<bool>,
    /// In paise, 1–10000000.
    pub mrp: Option<i64>,
    /// In paise, 0–MRP.
    pub cost_price: Option<i64>,
    #[schema(minimum = 0, maximum = 100)]
    pub discount_percent: Option<i64>,
    /// Changes where the variant's cards come from: only while it has no stock and never
    /// issued a card or had codes imported.
    pub fulfillment_source: Option<FulfillmentSourceDto>,
}

/// One order in the admin list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminOrderSummary {
    pub order_id: String,
    pub user_id: String,
    pub status: OrderStatusDto,
    pub total_amount: i64,
    pub paid_amount: i64,
    pub refund_amount: i64,
    pub item_count: u32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub fulfilled_at: Option<String>,
}

impl From<&Order> for AdminOrderSummary {
    fn from(order: &Order) -> Self {
        AdminOrderSummary {
            order_id: order.id.to_string(),
            user_id: order.user_id.to_string(),
            status: order.status.into(),
            total_amount: order.total_amount.get(),
            paid_amount: order.paid_amount.get(),
            refund_amount: order.refund_amount.get(),
            item_count: order.item_count(),
            created_at: timestamp(order.created_at),
            fulfilled_at: order.fulfillment.fulfilled_at.map(timestamp),
        }
    }
}

/// A page of every user's orders.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminOrdersData {
    pub orders: Vec<AdminOrderSummary>,
    pub pagination: Pagination,
}

/// A new product, created active.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateProductRequest {
    #[schema(example = "Nykaa", max_length = 100)]
    pub name: String,
    #[schema(max_length = 1000)]
    pub description: String,
    #[schema(example = "Nykaa", max_length = 100)]
    pub brand: String,
    /// UPPER_SNAKE_CASE.
    #[schema(example = "BEAUTY")]
    pub category: String,
    /// http(s) URL.
    pub image_url: Option<String>,
    /// http(s) URL.
    pub thumbnail_url: Option<String>,
    pub terms_and_conditions: Option<String>,
    pub how_to_redeem: Option<String>,
    /// Days a card stays valid after issue, 1–3650 (default 365).
    #[schema(example = 365)]
    pub validity_days: Option<i64>,
}

/// A product as created.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminProductView {
    pub product_id: String,
    pub name: String,
    pub description: String,
    pub brand: String,
    pub category: String,
    pub image_url: String,
    pub thumbnail_url: String,
    pub terms_and_conditions: String,
    pub how_to_redeem: String,
    pub validity_days: u32,
    pub is_active: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Product> for AdminProductView {
    fn from(product: &Product) -> Self {
        AdminProductView {
            product_id: product.id.to_string(),
            name: product.name.clone(),
            description: product.description.clone(),
            brand: product.brand.clone(),
            category: product.category.clone(),
            image_url: product.image_url.clone(),
            thumbnail_url: product.thumbnail_url.clone(),
            terms_and_conditions: product.terms_and_conditions.clone(),
            how_to_redeem: product.how_to_redeem.clone(),
            validity_days: product.validity_days,
            is_active: product.is_active,
            created_at: timestamp(product.created_at),
        }
    }
}

/// A new variant of a product.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateVariantRequest {
    #[schema(example = "Nykaa 500")]
    pub name: String,
    /// Face value in whole rupees.
    #[schema(example = 500, minimum = 1, maximum = 100000)]
    pub denomination: i64,
    /// In paise, 1–10000000.
    #[schema(example = 50000)]
    pub mrp: i64,
    /// In paise, 0–MRP.
    #[schema(example = 45000)]
    pub cost_price: i64,
    #[schema(example = 3, minimum = 0, maximum = 100)]
    pub discount_percent: i64,
    /// Default 0; must be 0 for an INVENTORY variant, whose stock comes from imported codes.
    #[schema(example = 100, minimum = 0)]
    #[serde(default)]
    pub stock_quantity: i64,
    /// Default 1.
    pub min_order_quantity: Option<i64>,
    /// Default 10; at most 40.
    pub max_order_quantity: Option<i64>,
    /// Default true.
    pub is_active: Option<bool>,
    /// INVENTORY for a brand's codes (imported in batches; no stockQuantity), GENERATED for
    /// Giftify's own cards (sold at face value: mrp = denomination × 100, no discount). Fixed
    /// once the variant exists.
    pub fulfillment_source: FulfillmentSourceDto,
}

/// A variant as created, cost included.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminVariantView {
    pub variant_id: String,
    pub product_id: String,
    pub name: String,
    pub denomination: i64,
    pub mrp: i64,
    pub cost_price: i64,
    pub discount_percent: i64,
    pub selling_price: i64,
    pub stock_quantity: i64,
    pub min_order_quantity: u32,
    pub max_order_quantity: u32,
    pub is_active: bool,
    pub fulfillment_source: FulfillmentSourceDto,
    /// The selling price is below what Giftify paid (see [`InventoryItem::selling_below_cost`]).
    pub selling_below_cost: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Variant> for AdminVariantView {
    fn from(variant: &Variant) -> Self {
        AdminVariantView {
            variant_id: variant.id.to_string(),
            product_id: variant.product_id.to_string(),
            name: variant.name.clone(),
            denomination: variant.denomination,
            mrp: variant.mrp.get(),
            cost_price: variant.cost_price.get(),
            discount_percent: variant.discount_percent,
            selling_price: variant.selling_price.get(),
            stock_quantity: variant.stock_quantity,
            min_order_quantity: variant.min_order_quantity,
            max_order_quantity: variant.max_order_quantity,
            is_active: variant.is_active,
            fulfillment_source: variant.fulfillment_source.into(),
            selling_below_cost: variant.selling_price < variant.cost_price,
            created_at: timestamp(variant.created_at),
        }
    }
}

/// Every variant, active or not, by product name then denomination.
#[utoipa::path(
    get, path = "/admin/inventory", tag = "admin",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The inventory", body = Envelope<InventoryData>),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
    )
)]
pub async fn inventory(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Envelope<InventoryData>, ApiError> {
    let entries = state.giftify().inventory().await?;
    Ok(ok(InventoryData {
        inventory: entries.iter().map(InventoryItem::from).collect(),
    }))
}

/// Change a variant's name, order-quantity bounds, stock, active flag or prices (the selling
/// price is re-derived; the MRP stays the face value, denomination × 100 paise).
#[utoipa::path(
    put, path = "/admin/inventory/{variantId}", tag = "admin",
    security(("bearerAuth" = [])),
    params(("variantId" = String, Path, description = "var_…")),
    request_body = UpdateInventoryRequest,
    responses(
        (status = 200, description = "The variant after the change", body = Envelope<InventoryItem>),
        (status = 400, description = "VALIDATION_ERROR: no change, a blank name, minOrderQuantity above maxOrderQuantity, both stock fields, negative resulting stock, stock of an INVENTORY variant, invalid pricing or an MRP other than the face value, a source change on a variant with stock or that issued a card or had codes imported", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
pub async fn update_inventory(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath(variant_id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateInventoryRequest>,
) -> Result<Envelope<InventoryItem>, ApiError> {
    let variant_id: VariantId = parse_id("variantId", &variant_id)?;
    let update = variant_update(body)?;
    let entry = state
        .giftify()
        .update_variant(&admin.actor(), &variant_id, update)
        .await?;
    Ok(ok(InventoryItem::from(&entry)).with_message("Inventory updated"))
}

/// Checks an inventory change field by field; the backend re-validates pricing as a whole.
fn variant_update(body: UpdateInventoryRequest) -> Result<VariantUpdate, ApiError> {
    let quantity = |field: &str, value: Option<i64>| {
        value
            .map(|n| {
                u32::try_from(n)
                    .ok()
                    .filter(|n| (1..=giftify_shared::order::MAX_CARDS_PER_ORDER).contains(n))
                    .ok_or_else(|| {
                        ApiError::validation(
                            field,
                            format!(
                                "must be between 1 and {}",
                                giftify_shared::order::MAX_CARDS_PER_ORDER
                            ),
                        )
                    })
            })
            .transpose()
    };
    let update = VariantUpdate {
        name: body
            .name
            .map(|name| check_text("name", &name, 1, 100))
            .transpose()?,
        min_order_quantity: quantity("minOrderQuantity", body.min_order_quantity)?,
        max_order_quantity: quantity("maxOrderQuantity", body.max_order_quantity)?,
        stock_quantity: body
            .stock_quantity
            .map(|stock| check_stock("stockQuantity", stock))
            .transpose()?,
        stock_adjustment: body
            .stock_adjustment
            .map(|delta| {
                if (-MAX_STOCK_ADJUSTMENT..=MAX_STOCK_ADJUSTMENT).contains(&delta) {
                    Ok(delta)
                } else {
                    Err(ApiError::validation(
                        "stockAdjustment",
                        "must be between -100000000 and 100000000",
                    ))
                }
            })
            .transpose()?,
        is_active: body.is_active,
        mrp: body.mrp,
        cost_price: body.cost_price,
        discount_percent: body.discount_percent,
        fulfillment_source: body.fulfillment_source.map(Into::into),
    };
    let changes_something = update.name.is_some()
        || update.min_order_quantity.is_some()
        || update.max_order_quantity.is_some()
        || update.stock_quantity.is_some()
        || update.stock_adjustment.is_some()
        || update.is_active.is_some()
        || update.mrp.is_some()
        || update.cost_price.is_some()
        || update.discount_percent.is_some()
        || update.fulfillment_source.is_some();
    if !changes_something {
        return Err(ApiError::validation(
            "body",
            "Send at least one of name, minOrderQuantity, maxOrderQuantity, stockQuantity, \
             stockAdjustment, isActive, mrp, costPrice, discountPercent, fulfillmentSource",
        ));
    }
    Ok(update)
}

/// Every user's orders, newest first.
#[utoipa::path(
    get, path = "/admin/orders", tag = "admin",
    security(("bearerAuth" = [])),
    params(OrderListQuery),
    responses(
        (status = 200, description = "A page of orders", body = Envelope<AdminOrdersData>),
        (status = 400, description = "VALIDATION_ERROR: bad page, limit or status", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
    )
)]
pub async fn orders(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(query): ApiQuery<OrderListQuery>,
) -> Result<Envelope<AdminOrdersData>, ApiError> {
    let (page, status) = query.parse()?;
    let found = state.giftify().all_orders(status, page).await?;
    Ok(ok(AdminOrdersData {
        orders: found.items.iter().map(AdminOrderSummary::from).collect(),
        pagination: Pagination::from(&found),
    }))
}

/// Add a product (active, without variants yet).
#[utoipa::path(
    post, path = "/admin/products", tag = "admin",
    security(("bearerAuth" = [])),
    request_body = CreateProductRequest,
    responses(
        (status = 201, description = "Created", body = Envelope<AdminProductView>),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
    )
)]
pub async fn create_product(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiJson(body): ApiJson<CreateProductRequest>,
) -> Result<(StatusCode, Envelope<AdminProductView>), ApiError> {
    let new = new_product(body)?;
    let product = state.giftify().add_product(&admin.actor(), new).await?;
    Ok((
        StatusCode::CREATED,
        ok(AdminProductView::from(&product)).with_message("Product created"),
    ))
}

/// A change to a product; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateProductRequest {
    /// 1–100 characters.
    pub name: Option<String>,
    /// 1–1000 characters.
    pub description: Option<String>,
    /// 1–100 characters.
    pub brand: Option<String>,
    /// UPPER_SNAKE_CASE.
    pub category: Option<String>,
    pub image_url: Option<String>,
    pub thumbnail_url: Option<String>,
    /// At most 5000 characters.
    pub terms_and_conditions: Option<String>,
    /// At most 5000 characters.
    pub how_to_redeem: Option<String>,
    /// Days a card stays valid after issue, for cards issued from now on; 1–3650.
    pub validity_days: Option<i64>,
    /// An inactive product is out of the catalogue with all its variants.
    pub is_active: Option<bool>,
}

/// Change a product's name, description, brand, category, images, terms, how to redeem,
/// validity or active flag. Orders placed keep the names they were placed with.
#[utoipa::path(
    put, path = "/admin/products/{productId}", tag = "admin",
    security(("bearerAuth" = [])),
    params(("productId" = String, Path, description = "prod_…")),
    request_body = UpdateProductRequest,
    responses(
        (status = 200, description = "The product after the change", body = Envelope<AdminProductView>),
        (status = 400, description = "VALIDATION_ERROR: no change, or a field out of bounds", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND: no such product", body = ErrorEnvelope),
    )
)]
pub async fn update_product(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath(product_id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateProductRequest>,
) -> Result<Envelope<AdminProductView>, ApiError> {
    let product_id: ProductId = parse_id("productId", &product_id)?;
    let update = product_update(body)?;
    let product = state
        .giftify()
        .update_product(&admin.actor(), &product_id, &update)
        .await?;
    Ok(ok(AdminProductView::from(&product)).with_message("Product updated"))
}

/// Checks a product change field by field, as a new product's fields are checked.
fn product_update(body: UpdateProductRequest) -> Result<ProductUpdate, ApiError> {
    let text = |field: &str, value: Option<String>, min: usize, max: usize| {
        value
            .map(|text| check_text(field, &text, min, max))
            .transpose()
    };
    let update = ProductUpdate {
        name: text("name", body.name, 1, 100)?,
        description: text("description", body.description, 1, 1000)?,
        brand: text("brand", body.brand, 1, 100)?,
        category: body.category.as_deref().map(check_category).transpose()?,
        image_url: body
            .image_url
            .map(|url| check_url("imageUrl", Some(url)))
            .transpose()?,
        thumbnail_url: body
            .thumbnail_url
            .map(|url| check_url("thumbnailUrl", Some(url)))
            .transpose()?,
        terms_and_conditions: text("termsAndConditions", body.terms_and_conditions, 0, 5000)?,
        how_to_redeem: text("howToRedeem", body.how_to_redeem, 0, 5000)?,
        validity_days: body
            .validity_days
            .map(|days| {
                u32::try_from(days)
                    .ok()
                    .filter(|days| (1..=MAX_VALIDITY_DAYS as u32).contains(days))
                    .ok_or_else(|| {
                        ApiError::validation("validityDays", "must be between 1 and 3650")
                    })
            })
            .transpose()?,
        is_active: body.is_active,
    };
    if !update.changes_something() {
        return Err(ApiError::validation(
            "body",
            "Send at least one of name, description, brand, category, imageUrl, thumbnailUrl, \
             termsAndConditions, howToRedeem, validityDays, isActive",
        ));
    }
    Ok(update)
}

fn new_product(body: CreateProductRequest) -> Result<NewProduct, ApiError> {
    let optional_text = |field: &str, value: Option<String>, max: usize| {
        value
            .map(|text| check_text(field, &text, 0, max))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let validity_days = body.validity_days.unwrap_or(365);
    if !(1..=MAX_VALIDITY_DAYS).contains(&validity_days) {
        return Err(ApiError::validation(
            "validityDays",
            "must be between 1 and 3650",
        ));
    }
    Ok(NewProduct {
        name: check_text("name", &body.name, 1, 100)?,
        description: check_text("description", &body.description, 1, 1000)?,
        brand: check_text("brand", &body.brand, 1, 100)?,
        category: check_category(&body.category)?,
        image_url: check_url("imageUrl", body.image_url)?,
        thumbnail_url: check_url("thumbnailUrl", body.thumbnail_url)?,
        terms_and_conditions: optional_text("termsAndConditions", body.terms_and_conditions, 5000)?,
        how_to_redeem: optional_text("howToRedeem", body.how_to_redeem, 5000)?,
        validity_days: u32::try_from(validity_days)
            .map_err(|_| ApiError::validation("validityDays", "must be between 1 and 3650"))?,
    })
}

/// An optional http(s) URL of at most 2048 characters without whitespace.
fn check_url(field: &str, url: Option<String>) -> Result<String, ApiError> {
    let Some(url) = url else {
        return Ok(String::new());
    };
    let url = url.trim();
    let valid = url.len() <= 2048
        && (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(url.to_string())
    } else {
        Err(ApiError::validation(
            field,
            "must be an http(s) URL of at most 2048 characters",
        ))
    }
}

/// Add a variant to a product.
#[utoipa::path(
    post, path = "/admin/products/{productId}/variants", tag = "admin",
    security(("bearerAuth" = [])),
    params(("productId" = String, Path, description = "prod_…")),
    request_body = CreateVariantRequest,
    responses(
        (status = 201, description = "Created", body = Envelope<AdminVariantView>),
        (status = 400, description = "VALIDATION_ERROR: pricing (cost above MRP, discount outside 0–100), stock, quantity bounds", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND: no such product", body = ErrorEnvelope),
    )
)]
pub async fn create_variant(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiPath(product_id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateVariantRequest>,
) -> Result<(StatusCode, Envelope<AdminVariantView>), ApiError> {
    let product_id: ProductId = parse_id("productId", &product_id)?;
    let new = new_variant(body)?;
    let variant = state
        .giftify()
        .add_variant(&admin.actor(), product_id, new)
        .await?;
    Ok((
        StatusCode::CREATED,
        ok(AdminVariantView::from(&variant)).with_message("Variant created"),
    ))
}

fn new_variant(body: CreateVariantRequest) -> Result<NewVariant, ApiError> {
    if !(1..=MAX_DENOMINATION).contains(&body.denomination) {
        return Err(ApiError::validation(
            "denomination",
            "must be between 1 and 100000 rupees",
        ));
    }
    let (min_order_quantity, max_order_quantity) = check_quantity_bounds(
        body.min_order_quantity.unwrap_or(1),
        body.max_order_quantity.unwrap_or(10),
    )?;
    Ok(NewVariant {
        name: check_text("name", &body.name, 1, 100)?,
        denomination: body.denomination,
        pricing: Pricing::new(body.mrp, body.cost_price, body.discount_percent)?,
        stock_quantity: check_stock("stockQuantity", body.stock_quantity)?,
        min_order_quantity,
        max_order_quantity,
        is_active: body.is_active.unwrap_or(true),
        fulfillment_source: body.fulfillment_source.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(error: ApiError) -> String {
        let body: serde_json::Value = serde_json::from_str(&error.render().body).expect("json");
        body["error"]["details"]["field"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn an_inventory_change_must_change_something_within_bounds() {
        let empty = variant_update(UpdateInventoryRequest::default()).expect_err("no-op");
        assert_eq!(field(empty), "body");
        let huge = UpdateInventoryRequest {
            stock_adjustment: Some(i64::MIN),
            ..Default::default()
        };
        assert_eq!(
            field(variant_update(huge).expect_err("absurd")),
            "stockAdjustment"
        );
        let negative = UpdateInventoryRequest {
            stock_quantity: Some(-1),
            ..Default::default()
        };
        assert_eq!(
            field(variant_update(negative).expect_err("negative")),
            "stockQuantity"
        );
        let fine = UpdateInventoryRequest {
            stock_adjustment: Some(-4),
            is_active: Some(false),
            ..Default::default()
        };
        let update = variant_update(fine).expect("valid");
        assert_eq!(
            (update.stock_adjustment, update.is_active),
            (Some(-4), Some(false))
        );
    }

    #[test]
    fn product_urls_must_be_http() {
        assert_eq!(check_url("imageUrl", None).expect("optional"), "");
        assert!(check_url("imageUrl", Some("https://cdn.giftify.in/x.jpg".into())).is_ok());
        for bad in ["javascript:alert(1)", "ftp://x", "https://a b"] {
            assert!(check_url("imageUrl", Some(bad.into())).is_err(), "{bad}");
        }
    }
}
