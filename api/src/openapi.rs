//! The OpenAPI description, generated with utoipa from the handlers' `#[utoipa::path]`
//! attributes and the DTOs' `ToSchema` derives, and the self-contained `/docs` page that
//! renders it (vanilla JS, no CDN, works offline).

use crate::AppState;
use crate::error::{ErrorCode, ErrorEnvelope};
use crate::key_access::{KeyAccess, key_access};
use crate::routes::{
    admin, api_keys, audit, auth, cards, cart, codes, dead_letters, events, finance, meta, orders,
    products, support, users, wallet, webhooks,
};
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The documentation page served at `/docs`.
pub const DOCS_HTML: &str = include_str!("docs.html");

/// The OpenAPI document of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Giftify API",
        description = "Gift cards with an internal wallet. Amounts are integer paise. Responses use the envelope \
`{\"success\":true,\"data\":…,\"message\"?,\"timestamp\"}`; errors `{\"success\":false,\"error\":{\"code\",\"message\",\"details\"},\"timestamp\"}`. \
Orders are fulfilled asynchronously: `POST /orders/create` answers 202 and `GET /orders/{orderId}` is polled until the status is final. \
`POST /wallet/topup`, `POST /orders/create` and `POST /orders/{orderId}/cancel` accept an `Idempotency-Key` header."
    ),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout,
        users::profile, users::update_profile,
        api_keys::create, api_keys::list, api_keys::revoke,
        wallet::balance, wallet::top_up, wallet::transactions, wallet::statement,
        products::products,
        cart::cart, cart::manage, cart::clear,
        orders::create, orders::list, orders::detail, orders::cancel, orders::reveal,
        admin::inventory, admin::update_inventory, admin::orders, finance::analytics,
        finance::export_orders, finance::export_ledger,
        admin::create_product, admin::update_product, admin::create_variant,
        dead_letters::list, dead_letters::redrive, dead_letters::refund, audit::audit,
        support::list, support::detail, support::suspend, support::reactivate,
        support::adjust_balance,
        codes::import, codes::batches, codes::void,
        cards::list, cards::redeem, cards::reveals, orders::return_card,
        events::feed,
        webhooks::create, webhooks::list, webhooks::show, webhooks::update, webhooks::remove,
        webhooks::rotate_secret, webhooks::deliveries, webhooks::delivery, webhooks::retry,
        webhooks::recover,
        meta::health, meta::metrics, openapi_json, docs,
    ),
    components(schemas(ErrorEnvelope, ErrorCode)),
    modifiers(&BearerAuth, &ServerErrors, &ApiKeyErrors, &AdminErrors),
    tags(
        (name = "auth", description = "Registration, login, token refresh and logout"),
        (name = "users", description = "The caller's profile"),
        (name = "api-keys", description = "API keys for servers: created, listed and revoked by signed-in people"),
        (name = "wallet", description = "Balance, top-ups and transaction history"),
        (name = "products", description = "The catalogue"),
        (name = "cart", description = "The caller's cart"),
        (name = "orders", description = "Ordering, order status, cancellation and gift card reveal"),
        (name = "gift-cards", description = "Giftify cards redeemed into the wallet"),
        (name = "admin", description = "Inventory, all orders, analytics, catalogue changes, dead letters and the audit log (role ADMIN)"),
        (name = "events", description = "The event feed: every event of yours (all, for admins) in the order recorded"),
        (name = "webhooks", description = "Webhook endpoints, their signing secrets, and the delivery log with replay (role ADMIN)"),
        (name = "meta", description = "Health, metrics and this documentation"),
    )
)]
pub struct ApiDoc;

/// `/openapi.json` and `/docs`: no token needed, people reading the docs have none.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
}

/// This API's OpenAPI 3.1 description, generated from the code.
#[utoipa::path(
    get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Response {
    let mut response = DOCUMENT.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Human-readable API documentation, rendered in the browser from `/openapi.json`.
#[utoipa::path(
    get, path = "/docs", tag = "meta",
    responses((status = 200, description = "The documentation page", content_type = "text/html", body = String))
)]
pub async fn docs() -> Html<&'static str> {
    Html(DOCS_HTML)
}

/// Registers the `bearerAuth` scheme that the handlers' `security(...)` refers to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token from /auth/login, /auth/register or /auth/refresh, or an \
                         API key (`gk_live_…`) from POST /api-keys, limited to its scopes",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the answers any endpoint may give, so each handler documents only its own: 500
/// `INTERNAL_ERROR`, and 503 `SERVICE_UNAVAILABLE` with `Retry-After` when the backend is
/// throttled, unreachable or lost a race (safe to retry).
struct ServerErrors;

impl Modify for ServerErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let envelope = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build()
        };
        let internal = ResponseBuilder::new()
            .description("INTERNAL_ERROR: an unexpected failure; the body is opaque")
            .content("application/json", envelope())
            .build();
        let unavailable = ResponseBuilder::new()
            .description(
                "SERVICE_UNAVAILABLE: transient backend trouble; retry after `Retry-After` seconds",
            )
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Object::with_type(Type::Integer))
                    .description(Some("Seconds to wait before retrying"))
                    .build(),
            )
            .content("application/json", envelope())
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                responses
                    .entry("500".to_string())
                    .or_insert_with(|| internal.clone().into());
                responses
                    .entry("503".to_string())
                    .or_insert_with(|| unavailable.clone().into());
            }
        }
    }
}

/// Adds what an API key may meet on the routes it may call ([`key_access`]): 403
/// `INSUFFICIENT_SCOPE` naming the scope it lacks, and 429 `RATE_LIMITED` with `Retry-After`
/// past its request budget.
struct ApiKeyErrors;

impl Modify for ApiKeyErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let envelope = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build()
        };
        let scope = ResponseBuilder::new()
            .description("INSUFFICIENT_SCOPE: the API key lacks the scope this endpoint needs (`details.requiredScope`)")
            .content("application/json", envelope())
            .build();
        let limited = ResponseBuilder::new()
            .description("RATE_LIMITED: the API key's request budget is spent; retry after `Retry-After` seconds")
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Object::with_type(Type::Integer))
                    .description(Some("Seconds until the budget's window ends"))
                    .build(),
            )
            .content("application/json", envelope())
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (axum::http::Method::GET, &mut item.get),
                (axum::http::Method::PUT, &mut item.put),
                (axum::http::Method::POST, &mut item.post),
                (axum::http::Method::DELETE, &mut item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                if key_access(&method, path) == KeyAccess::PeopleOnly {
                    continue;
                }
                let responses = &mut operation.responses.responses;
                responses
                    .entry("403".to_string())
                    .or_insert_with(|| scope.clone().into());
                responses
                    .entry("429".to_string())
                    .or_insert_with(|| limited.clone().into());
            }
        }
    }
}

/// Adds the 401 and 403 answers to every `/webhooks`, `/admin/dead-letters`, `/admin/users`
/// and `/admin/audit` operation: all
/// of them are for signed-in admins, and documenting that once keeps many copies of it out of
/// the API's package.
struct AdminErrors;

impl Modify for AdminErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let answer = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                        .build(),
                )
                .build()
        };
        let unauthorized = answer("UNAUTHORIZED or TOKEN_EXPIRED");
        let forbidden =
            answer("FORBIDDEN: not an admin, or an API key (this is for signed-in admins)");
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !(path.starts_with("/webhooks")
                || path.starts_with("/admin/dead-letters")
                || path.starts_with("/admin/users")
                || path == "/admin/audit")
            {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                responses
                    .entry("401".to_string())
                    .or_insert_with(|| unauthorized.clone().into());
                responses
                    .entry("403".to_string())
                    .or_insert_with(|| forbidden.clone().into());
            }
        }
    }
}

/// The document as served: what [`generated`] builds from the code, kept as text in
/// `api/openapi.json` so the packages carry the text rather than the code that builds it (a
/// sixth of the API Lambda's package). A test fails when the two differ;
/// `GIFTIFY_WRITE_OPENAPI=1 cargo test -p giftify-api openapi` writes it anew.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// The document generated from the handlers' attributes and the DTOs' derives.
pub fn generated() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .map(|json| json + "\n")
        .unwrap_or_else(|error| panic!("the OpenAPI document does not serialise: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).expect("the document is JSON")
    }

    #[test]
    fn the_served_document_is_the_one_the_code_generates() {
        let generated = generated();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        if std::env::var_os("GIFTIFY_WRITE_OPENAPI").is_some() {
            std::fs::write(path, &generated).expect("write api/openapi.json");
        }
        assert!(
            DOCUMENT == generated,
            "api/openapi.json is not what the code generates: run \
             `GIFTIFY_WRITE_OPENAPI=1 cargo test -p giftify-api openapi` and commit it"
        );
    }

    #[test]
    fn every_endpoint_is_documented_with_its_method() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        for (path, method) in [
            ("/auth/register", "post"),
            ("/auth/login", "post"),
            ("/auth/refresh", "post"),
            ("/auth/logout", "post"),
            ("/users/profile", "get"),
            ("/users/profile", "put"),
            ("/wallet/balance", "get"),
            ("/wallet/topup", "post"),
            ("/wallet/transactions", "get"),
            ("/products", "get"),
            ("/cart", "get"),
            ("/cart/manage", "put"),
            ("/cart/clear", "delete"),
            ("/orders/create", "post"),
            ("/api-keys", "post"),
            ("/api-keys", "get"),
            ("/api-keys/{keyId}", "delete"),
            ("/events", "get"),
            ("/webhooks", "post"),
            ("/webhooks", "get"),
            ("/webhooks/{webhookId}", "get"),
            ("/webhooks/{webhookId}", "patch"),
            ("/webhooks/{webhookId}", "delete"),
            ("/webhooks/{webhookId}/rotate-secret", "post"),
            ("/webhooks/{webhookId}/deliveries", "get"),
            ("/webhooks/{webhookId}/deliveries/{deliveryId}", "get"),
            (
                "/webhooks/{webhookId}/deliveries/{deliveryId}/retry",
                "post",
            ),
            ("/webhooks/{webhookId}/recover", "post"),
            ("/orders", "get"),
            ("/orders/{orderId}", "get"),
            ("/orders/{orderId}/cancel", "post"),
            ("/orders/{orderId}/gift-cards/{giftCardId}/reveal", "post"),
            ("/admin/inventory", "get"),
            ("/admin/inventory/{variantId}", "put"),
            ("/admin/orders", "get"),
            ("/admin/analytics", "get"),
            ("/admin/exports/orders.csv", "get"),
            ("/admin/exports/ledger.csv", "get"),
            ("/admin/products", "post"),
            ("/admin/products/{productId}/variants", "post"),
            ("/health", "get"),
            ("/metrics", "get"),
            ("/openapi.json", "get"),
            ("/docs", "get"),
        ] {
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_some(),
                "{method} {path} is not documented"
            );
        }
    }

    #[test]
    fn every_webhooks_dead_letter_audit_and_user_operation_documents_the_admin_refusals() {
        let doc = document();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            if !(path.starts_with("/webhooks")
                || path.starts_with("/admin/dead-letters")
                || path.starts_with("/admin/users")
                || path == "/admin/audit")
            {
                continue;
            }
            for (method, operation) in item.as_object().expect("operations") {
                let responses = &operation["responses"];
                assert!(responses.get("401").is_some(), "{method} {path}");
                assert!(responses.get("403").is_some(), "{method} {path}");
                operations += 1;
            }
        }
        assert_eq!(operations, 19);
    }

    #[test]
    fn routes_open_to_keys_document_the_scope_and_budget_refusals_and_others_do_not() {
        let doc = document();
        let responses = |path: &str, method: &str| doc["paths"][path][method]["responses"].clone();
        for (path, method) in [
            ("/orders/create", "post"),
            ("/events", "get"),
            ("/products", "get"),
        ] {
            let documented = responses(path, method);
            assert!(documented.get("403").is_some(), "{method} {path}");
            assert!(
                documented["429"]["headers"].get("Retry-After").is_some(),
                "{method} {path}"
            );
        }
        assert!(
            responses("/auth/login", "post").get("429").is_none()
                || responses("/auth/login", "post")["429"]["description"]
                    .as_str()
                    .is_some_and(|d| !d.contains("API key")),
            "a route closed to keys does not document their refusals"
        );
    }

    #[test]
    fn the_bearer_scheme_and_the_error_envelope_are_components() {
        let doc = document();
        let scheme = &doc["components"]["securitySchemes"]["bearerAuth"];
        assert_eq!(scheme["scheme"], "bearer");
        assert!(
            scheme["description"].as_str().unwrap().contains("gk_live_"),
            "the scheme names both kinds of bearer token"
        );
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        assert!(schemas.contains_key("ErrorEnvelope"));
        let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .expect("codes");
        assert!(codes.iter().any(|c| c == "INSUFFICIENT_BALANCE"));
        let secured = &doc["paths"]["/wallet/balance"]["get"]["security"];
        assert!(secured[0].get("bearerAuth").is_some(), "{secured}");
    }

    #[test]
    fn request_and_response_bodies_have_schemas() {
        let doc = document();
        let create = &doc["paths"]["/orders/create"]["post"];
        assert!(create["requestBody"]["content"]["application/json"]["schema"].is_object());
        assert!(create["responses"]["202"]["content"]["application/json"]["schema"].is_object());
        assert!(create["responses"]["202"]["headers"]["Location"].is_object());
        let text = doc.to_string();
        assert!(text.contains("OrderCreatedData"));
        assert!(text.contains("stockAvailable"));
        assert_ne!(
            create["requestBody"]["required"], true,
            "the cart checkout has no body"
        );
        assert!(create["responses"]["503"]["headers"]["Retry-After"].is_object());
        assert!(doc["paths"]["/health"]["get"]["responses"]["500"].is_object());
        let products =
            serde_json::to_string(&doc["components"]["schemas"]["VariantView"]).expect("json");
        assert!(
            !products.contains("costPrice"),
            "costPrice leaks into the public schema"
        );
    }

    #[test]
    fn the_docs_page_is_self_contained() {
        assert!(DOCS_HTML.contains("/openapi.json"));
        assert!(!DOCS_HTML.contains("<script src"), "no external scripts");
        assert!(!DOCS_HTML.contains("cdn"), "no CDN");
    }
}
