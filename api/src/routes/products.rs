//! `/products`: the active catalogue. Never shows `costPrice`: the view types here have no
//! such field, so it cannot leak by accident.

use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::AuthUser;
use crate::response::{Envelope, Rendered};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use giftify_shared::catalogue::{Product, ProductWithVariants, Variant};
use serde::Serialize;
use utoipa::ToSchema;

/// The `/products` routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/products", get(products))
}

/// The catalogue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductsData {
    pub products: Vec<ProductView>,
}

/// A product with its active variants.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    #[schema(example = "prod_01HXXXXXXXXXXXXXXXXXXXXXXX")]
    pub product_id: String,
    #[schema(example = "Zomato")]
    pub name: String,
    pub description: String,
    pub brand: String,
    #[schema(example = "FOOD_DELIVERY")]
    pub category: String,
    pub image_url: String,
    pub thumbnail_url: String,
    pub terms_and_conditions: String,
    pub how_to_redeem: String,
    pub variants: Vec<VariantView>,
}

/// A purchasable denomination, as customers see it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantView {
    #[schema(example = "var_01HXXXXXXXXXXXXXXXXXXXXXXX")]
    pub variant_id: String,
    #[schema(example = "Zomato 250")]
    pub name: String,
    /// Face value in whole rupees.
    #[schema(example = 250)]
    pub denomination: i64,
    /// In paise.
    #[schema(example = 25000)]
    pub mrp: i64,
    #[schema(example = 5)]
    pub discount_percent: i64,
    /// In paise: `mrp × (100 − discountPercent) / 100`, rounded half-up.
    #[schema(example = 23750)]
    pub selling_price: i64,
    pub stock_quantity: i64,
    pub min_order_quantity: u32,
    pub max_order_quantity: u32,
    pub is_active: bool,
    /// INVENTORY: a code issued by the brand; GENERATED: a Giftify card, redeemable into any
    /// Giftify wallet.
    pub fulfillment_source: crate::dto::FulfillmentSourceDto,
}

impl ProductView {
    /// The customer view of a product and the given variants.
    pub fn new(product: &Product, variants: &[Variant]) -> Self {
        ProductView {
            product_id: product.id.to_string(),
            name: product.name.clone(),
            description: product.description.clone(),
            brand: product.brand.clone(),
            category: product.category.clone(),
            image_url: product.image_url.clone(),
            thumbnail_url: product.thumbnail_url.clone(),
            terms_and_conditions: product.terms_and_conditions.clone(),
            how_to_redeem: product.how_to_redeem.clone(),
            variants: variants.iter().map(VariantView::from).collect(),
        }
    }
}

impl From<&ProductWithVariants> for ProductView {
    fn from(entry: &ProductWithVariants) -> Self {
        ProductView::new(&entry.product, &entry.variants)
    }
}

impl From<&Variant> for VariantView {
    fn from(variant: &Variant) -> Self {
        VariantView {
            variant_id: variant.id.to_string(),
            name: variant.name.clone(),
            denomination: variant.denomination,
            mrp: variant.mrp.get(),
            discount_percent: variant.discount_percent,
            selling_price: variant.selling_price.get(),
            stock_quantity: variant.stock_quantity,
            min_order_quantity: variant.min_order_quantity,
            max_order_quantity: variant.max_order_quantity,
            is_active: variant.is_active,
            fulfillment_source: variant.fulfillment_source.into(),
        }
    }
}

/// Every active product with its active variants, by product name.
///
/// The answer carries an `ETag` of its data and `Cache-Control: private, no-cache`; a read
/// with `If-None-Match` naming the current tag answers `304 Not Modified` without a body.
#[utoipa::path(
    get, path = "/products", tag = "products",
    security(("bearerAuth" = [])),
    params(("If-None-Match" = Option<String>, Header, description = "A tag of an earlier answer: 304 when nothing changed since")),
    responses(
        (status = 200, description = "The catalogue", body = Envelope<ProductsData>,
            headers(
                ("ETag" = String, description = "Tag of the answer's data; send it back in If-None-Match"),
                ("Cache-Control" = String, description = "`private, no-cache`"),
            )),
        (status = 304, description = "Not Modified: unchanged since the If-None-Match tag",
            headers(("ETag" = String, description = "The current tag"))),
        (status = 401, description = "UNAUTHORIZED or TOKEN_EXPIRED", body = ErrorEnvelope),
    )
)]
pub async fn products(
    State(state): State<AppState>,
    _user: AuthUser,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let catalogue = state.giftify().catalogue().await?;
    let page = state.catalogue_page(&catalogue, || {
        Rendered::of(&ProductsData {
            products: catalogue.iter().map(ProductView::from).collect(),
        })
    })?;
    Ok(page.answer(request.get(header::IF_NONE_MATCH)))
}
