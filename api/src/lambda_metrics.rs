//! CloudWatch metrics of the API Lambda: one Embedded Metric Format line per accepted or
//! cancelled order, so the business counters exist without an API call per request.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use giftify_infra::metrics::MetricScope;

/// The business counter a request/response pair contributes, if any.
fn counter(method: &Method, path: &str, status: StatusCode) -> Option<&'static str> {
    match (method, status) {
        (&Method::POST, StatusCode::ACCEPTED) if path == "/orders/create" => Some("OrdersAccepted"),
        (&Method::POST, StatusCode::OK)
            if path.starts_with("/orders/") && path.ends_with("/cancel") =>
        {
            Some("OrdersCancelled")
        }
        _ => None,
    }
}

/// Middleware (`from_fn_with_state`, the process's scope): emits the counter after the
/// response is known.
pub async fn emit_order_metrics(
    State(scope): State<MetricScope>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    if let Some(name) = counter(&method, &path, response.status()) {
        let mut metrics = scope.invocation();
        metrics.count(name, 1);
        metrics.emit();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_creates_and_successful_cancels_count() {
        assert_eq!(
            counter(&Method::POST, "/orders/create", StatusCode::ACCEPTED),
            Some("OrdersAccepted")
        );
        assert_eq!(
            counter(&Method::POST, "/orders/order_01/cancel", StatusCode::OK),
            Some("OrdersCancelled")
        );
        assert_eq!(
            counter(&Method::POST, "/orders/create", StatusCode::CONFLICT),
            None
        );
        assert_eq!(
            counter(
                &Method::POST,
                "/orders/order_01/cancel",
                StatusCode::CONFLICT
            ),
            None
        );
        assert_eq!(
            counter(&Method::GET, "/orders/create", StatusCode::ACCEPTED),
            None
        );
    }
}
