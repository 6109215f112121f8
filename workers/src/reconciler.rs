//! The reconciler Lambda's handler, run on a schedule: refunds orders stuck past their
//! deadline, re-enqueues PENDING orders whose enqueue may have failed, publishes events that a crash left unsent, and wakes the
//! dispatcher for webhook deliveries whose wake-up was lost.

use giftify_infra::metrics::MetricScope;
use giftify_shared::Giftify;
use giftify_shared::usecases::ReconcileReport;

pub async fn handle(
    giftify: &Giftify,
    metrics: &MetricScope,
) -> giftify_shared::Result<ReconcileReport> {
    let report = giftify.reconcile().await?;
    let mut metrics = metrics.invocation();
    metrics.count("OrdersRefundedStuck", report.refunded as u64);
    metrics.count("OrdersRequeued", report.requeued as u64);
    metrics.count("EventsRepublished", report.notified as u64);
    metrics.count("ReconcileFailures", report.failed as u64);
    metrics.count("WebhookDeliveriesWoken", report.woken_deliveries as u64);
    metrics.emit();
    Ok(report)
}
