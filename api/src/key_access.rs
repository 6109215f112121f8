//! Which routes an API key may call, and with which scope: one table for the whole API, read
//! by the [`crate::extract::AuthUser`] extractor from the matched route. A route that is not
//! listed is for signed-in people only — managing keys, the profile, and everything admin —
//! so a new route is closed to keys until someone decides its scope here.

use axum::http::Method;
use giftify_shared::api_keys::Scope;

/// What an API key needs to call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAccess {
    /// Any valid key (the catalogue: ordering needs it whatever the scopes).
    AnyKey,
    Needs(Scope),
    /// Signed-in people only.
    PeopleOnly,
}

/// The access rule of `method` on the route template `route` (`/orders/{orderId}`).
pub fn key_access(method: &Method, route: &str) -> KeyAccess {
    use KeyAccess::{AnyKey, Needs, PeopleOnly};
    use Scope::{
        CardsRead, CardsReveal, CardsWrite, Cart, OrdersRead, OrdersWrite, WalletRead, WalletWrite,
    };
    match (method.as_str(), route) {
        ("GET", "/products") => AnyKey,
        ("GET", "/cart") | ("PUT", "/cart/manage") | ("DELETE", "/cart/clear") => Needs(Cart),
        ("GET", "/wallet/balance")
        | ("GET", "/wallet/transactions")
        | ("GET", "/wallet/statement.csv") => Needs(WalletRead),
        ("POST", "/wallet/topup") => Needs(WalletWrite),
        ("POST", "/orders/create") | ("POST", "/orders/{orderId}/cancel") => Needs(OrdersWrite),
        ("GET", "/orders") | ("GET", "/orders/{orderId}") | ("GET", "/events") => Needs(OrdersRead),
        ("POST", "/orders/{orderId}/gift-cards/{giftCardId}/reveal") => Needs(CardsReveal),
        ("POST", "/orders/{orderId}/gift-cards/{giftCardId}/return")
        | ("POST", "/gift-cards/redeem") => Needs(CardsWrite),
        ("GET", "/gift-cards") => Needs(CardsRead),
        _ => PeopleOnly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_management_and_admin_are_for_people_only() {
        for (method, route) in [
            (Method::POST, "/api-keys"),
            (Method::GET, "/api-keys"),
            (Method::DELETE, "/api-keys/{keyId}"),
            (Method::GET, "/users/profile"),
            (Method::GET, "/admin/orders"),
            (Method::PUT, "/admin/inventory/{variantId}"),
            (Method::POST, "/webhooks"),
            (Method::PATCH, "/webhooks/{webhookId}"),
            (Method::POST, "/webhooks/{webhookId}/recover"),
        ] {
            assert_eq!(key_access(&method, route), KeyAccess::PeopleOnly, "{route}");
        }
        assert_eq!(
            key_access(&Method::POST, "/orders/create"),
            KeyAccess::Needs(Scope::OrdersWrite)
        );
        assert_eq!(
            key_access(&Method::GET, "/orders/create"),
            KeyAccess::PeopleOnly,
            "matched by method too"
        );
    }
}
