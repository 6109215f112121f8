//! Giftify's HTTP API: the axum router, its authentication, handlers, OpenAPI description and
//! metrics, and the operator CLI behind the `giftify` binary.
//!
//! [`router`] builds the one `Router` that serves both `axum::serve` (the embedded stack) and
//! the API Lambda. Handlers parse the request into domain types, call a use case on
//! [`Giftify`], and render the seed's envelopes; every failure is an [`error::ApiError`].

pub mod auth;
pub mod cli;
pub mod csv;
pub mod dto;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod key_access;
pub mod lambda_metrics;
pub mod metrics;
pub mod openapi;
pub mod response;
pub mod routes;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod wire_time;

pub use state::AppState;

use crate::auth::{check_password_rules, hash_password_blocking, verify_password_blocking};
use crate::error::ApiError;
use crate::extract::BODY_LIMIT;
use crate::metrics::Metrics;
use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use giftify_shared::Giftify;
use giftify_shared::usecases::{AdminRequest, AdminStep, admin_step};
use giftify_shared::user::Email;
use secrecy::{ExposeSecret, SecretString};
use std::any::Any;
use std::sync::Arc;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// The API: every resource's routes with the fallbacks and middleware of [`with_middleware`].
pub fn router(state: AppState) -> Router {
    with_middleware(
        routes::router().merge(openapi::router()),
        state.metrics().clone(),
    )
    .with_state(state)
}

/// Envelope fallbacks for unknown paths and methods, and the middleware (outermost first):
/// request id, request span and access log, latency metrics, panic → 500 envelope, the
/// refusal of oversized requests before their body is read, and the 64 KiB body limit.
fn with_middleware<S>(routes: Router<S>, metrics: Arc<Metrics>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    routes
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(from_fn(refuse_oversized))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn_with_state(metrics, metrics::track))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(telemetry::request_span)
                .on_request(())
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(LatencyUnit::Millis),
                )
                // Failures are logged once, by `ApiError`, with their cause.
                .on_failure(()),
        )
        .layer(from_fn(telemetry::request_id))
}

/// Longest request target accepted, in bytes: far above any URL of the API.
pub const URI_LIMIT: usize = 8 * 1024;
/// Most header bytes (names and values) accepted in one request.
pub const HEADERS_LIMIT: usize = 16 * 1024;

/// Refuses, in the envelope and before a byte of the body is read, what the API would refuse
/// anyway: a declared body above [`BODY_LIMIT`] (so a client that sent
/// `Expect: 100-continue` is answered 413 instead of being invited to upload), a request target
/// above [`URI_LIMIT`] and header fields above [`HEADERS_LIMIT`]. Larger still is refused by
/// hyper itself, without a body.
async fn refuse_oversized(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let limit = if routes::codes::takes_import_body(request.method(), request.uri().path()) {
        routes::codes::IMPORT_BODY_LIMIT
    } else {
        BODY_LIMIT
    };
    if declared.is_some_and(|length| length > limit as u64) {
        return ApiError::PayloadTooLarge { limit_bytes: limit }.into_response();
    }
    if request.uri().to_string().len() > URI_LIMIT {
        return ApiError::UriTooLong {
            limit_bytes: URI_LIMIT,
        }
        .into_response();
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > HEADERS_LIMIT {
        return ApiError::HeadersTooLarge {
            limit_bytes: HEADERS_LIMIT,
        }
        .into_response();
    }
    next.run(request).await
}

/// A handler panic becomes an opaque 500 envelope; the panic message goes to the log.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "non-text panic payload".to_string());
    ApiError::Panic(message).into_response()
}

/// Carries out an operator's admin request (`giftify admin …`, or the start-up admin) on
/// either backend: the core decides from the account that has the email now
/// ([`giftify_shared::usecases::admin_step`]); the password is checked and hashed with argon2id
/// here, on the blocking pool. Promoting an account or giving it a new password ends every
/// session it had. Each change is logged under the `audit` target, without the password.
pub async fn set_up_admin(
    giftify: &Giftify,
    request: AdminRequest,
    email: &str,
    password: &SecretString,
) -> anyhow::Result<AdminStep> {
    let typed_email = email;
    let email = Email::parse(email).context("the admin email is not a valid email address")?;
    check_password_rules(password.expose_secret())
        .map_err(|_| anyhow::anyhow!("the admin password must be 8 to 128 characters"))?;
    // Two processes starting together on a fresh data dir both decide to create the admin;
    // the one that loses the race decides again against the account the other created.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let step = decide_admin_step(giftify, request, &email, typed_email, password).await?;
        if let AdminStep::Nothing(_) = step {
            return Ok(step);
        }
        let password = password.clone();
        let hash =
            tokio::task::spawn_blocking(move || hash_password_blocking(password.expose_secret()))
                .await
                .context("admin password hashing task failed")??;
        match giftify
            .set_up_admin(step.clone(), email.clone(), hash)
            .await
        {
            Ok(_) => return Ok(step),
            Err(giftify_shared::Error::EmailAlreadyExists) if attempts < 2 => continue,
            Err(error) => return Err(error.into()),
        }
    }
}

async fn decide_admin_step(
    giftify: &Giftify,
    request: AdminRequest,
    email: &Email,
    typed_email: &str,
    password: &SecretString,
) -> anyhow::Result<AdminStep> {
    let existing = giftify.credentials_for_address(email, typed_email).await?;
    let password_matches = match &existing {
        Some(credentials) => {
            let (password, hash) = (password.clone(), credentials.password_hash.clone());
            tokio::task::spawn_blocking(move || {
                verify_password_blocking(password.expose_secret(), &hash)
            })
            .await
            .context("admin password check failed")?
        }
        None => false,
    };
    admin_step(
        request,
        existing.as_ref().map(|credentials| &credentials.user),
        password_matches,
    )
    .with_context(|| format!("admin {}", email.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::ApiJson;
    use axum::Json;
    use axum::body::Body;
    use axum::extract::Path;
    use axum::http::{Method, Request, StatusCode};
    use axum::routing::{get, post};
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    /// The production middleware around a panicking route and a JSON echo.
    fn app() -> (Router, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let routes = Router::new()
            .route(
                "/boom/{id}",
                get(|Path(id): Path<u32>| async move {
                    assert!(id > 100, "a bug");
                    "fine"
                }),
            )
            .route(
                "/echo",
                post(|ApiJson(body): ApiJson<Value>| async move { Json(body) }),
            );
        (with_middleware(routes, metrics.clone()), metrics)
    }

    async fn send(
        app: Router,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = app.oneshot(request).await.expect("the router answers");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts.status, parts.headers, json)
    }

    fn request(method: Method, path: &str, body: Body) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(body)
            .expect("request")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_an_opaque_500_envelope() {
        let (app, _) = app();
        let (status, _, body) = send(app, request(Method::GET, "/boom/1", Body::empty())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
        assert!(
            !body.to_string().contains("a bug"),
            "the panic message stays in the log"
        );
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_answer_with_the_envelope() {
        let (app, _) = app();
        let (status, _, body) =
            send(app.clone(), request(Method::GET, "/nope", Body::empty())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "NOT_FOUND");
        let (status, _, body) = send(app, request(Method::GET, "/echo", Body::empty())).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
    }

    #[tokio::test]
    async fn bodies_over_64_kib_are_413_and_malformed_ones_400() {
        let (app, _) = app();
        let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(BODY_LIMIT + 1));
        let (status, _, body) = send(
            app.clone(),
            request(Method::POST, "/echo", Body::from(huge)),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
        let (status, _, body) = send(
            app.clone(),
            request(Method::POST, "/echo", Body::from("{oops")),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
        let (status, _, body) = send(
            app,
            request(Method::POST, "/echo", Body::from(r#"{"a":1}"#)),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["a"], 1);
    }

    #[tokio::test]
    async fn requests_are_measured_by_route_template_and_get_a_request_id() {
        let (app, metrics) = app();
        let (_, headers, _) =
            send(app.clone(), request(Method::GET, "/boom/42", Body::empty())).await;
        assert!(headers.contains_key(telemetry::REQUEST_ID));
        let mut mine = request(Method::GET, "/nope", Body::empty());
        mine.headers_mut()
            .insert(telemetry::REQUEST_ID, "client-1".parse().expect("header"));
        let (_, headers, _) = send(app, mine).await;
        assert_eq!(headers[telemetry::REQUEST_ID], "client-1");

        let text = metrics.render(&metrics::Gauges::default());
        assert!(
            text.contains(r#"route="/boom/{id}",method="GET",status="5xx""#),
            "{text}"
        );
        assert!(
            text.contains(r#"route="unmatched",method="GET",status="4xx""#),
            "{text}"
        );
        assert!(!text.contains("/boom/42"), "raw paths never become labels");
    }
}
