//! CloudWatch metrics of the API Lambda: one Embedded Metric Format line per order accepted or
//! cancelled, so the business counters exist without an API call per request. What counts is
//! the use case's outcome, which the route marks on its response ([`BusinessEvent`]), never
//! the URL: a replayed request, a refusal or a renamed route cannot miscount.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use giftify_infra::metrics::MetricScope;

/// A business event a response stands for, marked by the route that ran the use case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusinessEvent {
    /// `place_order` ran and accepted an order (not a replay).
    OrderAccepted,
    /// `cancel_order` ran and cancelled an order (not a replay).
    OrderCancelled,
}

impl BusinessEvent {
    /// The CloudWatch counter it adds one to.
    pub fn counter(self) -> &'static str {
        match self {
            BusinessEvent::OrderAccepted => "OrdersAccepted",
            BusinessEvent::OrderCancelled => "OrdersCancelled",
        }
    }

    /// Marks `response` as standing for this event.
    pub fn mark(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// Middleware (`from_fn_with_state`, the process's scope): emits the counter of the event the
/// response stands for, if any.
pub async fn emit_order_metrics(
    State(scope): State<MetricScope>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    if let Some(event) = response.extensions().get::<BusinessEvent>() {
        let mut metrics = scope.invocation();
        metrics.count(event.counter(), 1);
        metrics.emit();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    #[test]
    fn a_marked_response_carries_its_event_and_counter() {
        let response = BusinessEvent::OrderAccepted.mark(().into_response());
        assert_eq!(
            response.extensions().get::<BusinessEvent>(),
            Some(&BusinessEvent::OrderAccepted)
        );
        assert_eq!(BusinessEvent::OrderAccepted.counter(), "OrdersAccepted");
        assert_eq!(BusinessEvent::OrderCancelled.counter(), "OrdersCancelled");
        assert!(
            ().into_response()
                .extensions()
                .get::<BusinessEvent>()
                .is_none()
        );
    }
}
