//! The resources of the API, one module each with its own `router()`, merged in [`router`];
//! and the fallbacks that answer unmatched paths and methods with the error envelope.

pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod cards;
pub mod cart;
pub mod codes;
pub mod dead_letters;
pub mod events;
pub mod finance;
pub mod meta;
pub mod orders;
pub mod products;
pub mod support;
pub mod users;
pub mod wallet;
pub mod webhooks;

use crate::AppState;
use crate::error::ApiError;
use axum::Router;

/// Every resource's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(api_keys::router())
        .merge(wallet::router())
        .merge(products::router())
        .merge(cart::router())
        .merge(orders::router())
        .merge(admin::router())
        .merge(finance::router())
        .merge(dead_letters::router())
        .merge(support::router())
        .merge(audit::router())
        .merge(codes::router())
        .merge(cards::router())
        .merge(events::router())
        .merge(webhooks::router())
        .merge(meta::router())
}

/// Fallback for paths no route matches.
pub async fn not_found() -> ApiError {
    ApiError::RouteNotFound
}

/// Fallback for a known path with a method it does not support.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
