//! Prometheus metrics, hand-rolled (one histogram and a few gauges do not justify a metrics
//! stack): request latency by matched route, method and status class, recorded by the
//! [`track`] middleware; and, computed at scrape time, orders by status, the queue and
//! dead-letter depths, the oldest queued message's age, and the create → final latency of
//! every fulfillment (counted in the daily figures by whichever process fulfilled it).
//! Rendered in the text exposition format 0.0.4.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use giftify_shared::figures::{DayFigures, LATENCY_BUCKETS_MS};
use giftify_shared::order::{OrderStatus, QueueDepths};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of requests that matched no route, so stray paths cannot mint labels.
const UNMATCHED: &str = "unmatched";

/// Series key: matched route template, method, status class.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    route: String,
    method: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Default)]
struct Histogram {
    /// Cumulative counts per bucket of [`BUCKETS`].
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The request metrics of one router.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<Series, Histogram>>,
}

/// Business gauges read from the backend at scrape time; `None` when the read failed.
#[derive(Clone, Debug, Default)]
pub struct Gauges {
    pub orders_by_status: Option<Vec<(OrderStatus, u64)>>,
    pub queue: Option<QueueDepths>,
    /// Every fulfillment's create → final time, from the daily figures (so it counts the
    /// orders a worker in another process finished too).
    pub create_to_final: Option<DayFigures>,
    /// The time of the scrape, for the age of the oldest queued message.
    pub now: Option<DateTime<Utc>>,
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, route: &str, method: &Method, status: StatusCode, elapsed: Duration) {
        let series = Series {
            route: route.to_string(),
            method: method_label(method),
            status: status_class(status),
        };
        let seconds = elapsed.as_secs_f64();
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        let histogram = requests.entry(series).or_default();
        for (count, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// The exposition text: request histograms, then the business gauges.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        out.push_str("# HELP giftify_build_info Build of the running Giftify API.\n");
        out.push_str("# TYPE giftify_build_info gauge\n");
        let _ = writeln!(
            out,
            "giftify_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );

        out.push_str("# HELP giftify_http_request_duration_seconds HTTP request latency by matched route, method and status class.\n");
        out.push_str("# TYPE giftify_http_request_duration_seconds histogram\n");
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (series, histogram) in &requests {
            let labels = format!(
                "route=\"{}\",method=\"{}\",status=\"{}\"",
                escape(&series.route),
                series.method,
                series.status
            );
            for (count, bound) in histogram.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "giftify_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "giftify_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "giftify_http_request_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "giftify_http_request_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }

        if let Some(orders) = &gauges.orders_by_status {
            out.push_str("# HELP giftify_orders Orders by status.\n");
            out.push_str("# TYPE giftify_orders gauge\n");
            for status in OrderStatus::ALL {
                let count = orders
                    .iter()
                    .find(|(s, _)| *s == status)
                    .map_or(0, |(_, n)| *n);
                let _ = writeln!(
                    out,
                    "giftify_orders{{status=\"{}\"}} {count}",
                    status.as_str()
                );
            }
        }
        if let Some(queue) = gauges.queue {
            out.push_str(
                "# HELP giftify_queue_depth Fulfillment messages waiting (ready) or being handled (in_flight).\n",
            );
            out.push_str("# TYPE giftify_queue_depth gauge\n");
            let _ = writeln!(
                out,
                "giftify_queue_depth{{state=\"ready\"}} {}",
                queue.ready
            );
            let _ = writeln!(
                out,
                "giftify_queue_depth{{state=\"in_flight\"}} {}",
                queue.in_flight
            );
            out.push_str(
                "# HELP giftify_dead_letter_depth Fulfillment messages in the dead-letter queue.\n",
            );
            out.push_str("# TYPE giftify_dead_letter_depth gauge\n");
            let _ = writeln!(out, "giftify_dead_letter_depth {}", queue.dead);
            // Left out where the backend cannot tell (SQS with messages: CloudWatch's
            // ApproximateAgeOfOldestMessage tells there), so an unknown age never reads as 0.
            let age = match (gauges.now, queue.oldest_sent_at) {
                (Some(now), Some(sent)) => {
                    Some((now - sent).num_milliseconds().max(0) as f64 / 1000.0)
                }
                (Some(_), None) if queue.ready + queue.in_flight == 0 => Some(0.0),
                _ => None,
            };
            if let Some(age) = age {
                out.push_str(
                    "# HELP giftify_queue_oldest_message_age_seconds Age of the oldest fulfillment message still queued (0 when none).\n",
                );
                out.push_str("# TYPE giftify_queue_oldest_message_age_seconds gauge\n");
                let _ = writeln!(out, "giftify_queue_oldest_message_age_seconds {age}");
            }
        }
        if let Some(figures) = &gauges.create_to_final {
            out.push_str(
                "# HELP giftify_create_to_final_seconds Time from placing an order to the final status its fulfillment gave it.\n",
            );
            out.push_str("# TYPE giftify_create_to_final_seconds histogram\n");
            let counts = figures.latency_counts();
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS_MS.iter().zip(counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "giftify_create_to_final_seconds_bucket{{le=\"{}\"}} {cumulative}",
                    *bound as f64 / 1000.0
                );
            }
            let total: i64 = counts.iter().sum();
            let _ = writeln!(
                out,
                "giftify_create_to_final_seconds_bucket{{le=\"+Inf\"}} {total}"
            );
            let _ = writeln!(
                out,
                "giftify_create_to_final_seconds_sum {}",
                figures.create_to_final_ms_sum as f64 / 1000.0
            );
            let _ = writeln!(out, "giftify_create_to_final_seconds_count {total}");
        }
        out
    }
}

/// Middleware: times every request and records it under its matched route.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |path| path.as_str().to_string());
    let response = next.run(request).await;
    metrics.observe(&route, &method, response.status(), started.elapsed());
    response
}

/// Standard methods by name; anything else is one label, so clients cannot mint series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        // Apart from the other 4xx: throttling is something an operator watches for.
        429 => "429",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let metrics = Metrics::default();
        let route = "/orders/{orderId}";
        metrics.observe(
            route,
            &Method::GET,
            StatusCode::OK,
            Duration::from_millis(250),
        );
        metrics.observe(
            route,
            &Method::GET,
            StatusCode::OK,
            Duration::from_millis(500),
        );
        metrics.observe(
            route,
            &Method::GET,
            StatusCode::NOT_FOUND,
            Duration::from_secs(20),
        );
        let text = metrics.render(&Gauges::default());

        let labels = r#"route="/orders/{orderId}",method="GET",status="2xx""#;
        for (le, count) in [
            ("0.005", 0),
            ("0.25", 1),
            ("0.5", 2),
            ("10", 2),
            ("+Inf", 2),
        ] {
            let line = format!(
                "giftify_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {count}"
            );
            assert!(text.contains(&line), "missing {line}\n{text}");
        }
        assert!(text.contains(&format!(
            "giftify_http_request_duration_seconds_count{{{labels}}} 2"
        )));
        assert!(text.contains(&format!(
            "giftify_http_request_duration_seconds_sum{{{labels}}} 0.75"
        )));
        let slow = r#"route="/orders/{orderId}",method="GET",status="4xx""#;
        assert!(text.contains(&format!(
            "giftify_http_request_duration_seconds_bucket{{{slow},le=\"10\"}} 0"
        )));
        assert!(text.contains(&format!(
            "giftify_http_request_duration_seconds_bucket{{{slow},le=\"+Inf\"}} 1"
        )));
        assert!(text.contains("# TYPE giftify_http_request_duration_seconds histogram"));
    }

    #[test]
    fn gauges_render_every_status_and_the_queue_depths() {
        let metrics = Metrics::default();
        let gauges = Gauges {
            orders_by_status: Some(vec![(OrderStatus::Pending, 3), (OrderStatus::Fulfilled, 7)]),
            queue: Some(QueueDepths {
                ready: 2,
                in_flight: 1,
                dead: 4,
                oldest_sent_at: DateTime::from_timestamp(1_000, 0),
            }),
            create_to_final: Some(DayFigures {
                create_to_final_le_50ms: 2,
                create_to_final_le_1s: 1,
                create_to_final_ms_sum: 900,
                ..DayFigures::default()
            }),
            now: DateTime::from_timestamp(1_090, 500_000_000),
        };
        let text = metrics.render(&gauges);
        for line in [
            "giftify_orders{status=\"PENDING\"} 3",
            "giftify_orders{status=\"FULFILLED\"} 7",
            "giftify_orders{status=\"CANCELLED\"} 0",
            "giftify_queue_depth{state=\"ready\"} 2",
            "giftify_queue_depth{state=\"in_flight\"} 1",
            "giftify_dead_letter_depth 4",
            "giftify_queue_oldest_message_age_seconds 90.5",
            "# TYPE giftify_orders gauge",
            "# TYPE giftify_create_to_final_seconds histogram",
            "giftify_create_to_final_seconds_bucket{le=\"0.05\"} 2",
            "giftify_create_to_final_seconds_bucket{le=\"0.5\"} 2",
            "giftify_create_to_final_seconds_bucket{le=\"1\"} 3",
            "giftify_create_to_final_seconds_bucket{le=\"+Inf\"} 3",
            "giftify_create_to_final_seconds_sum 0.9",
            "giftify_create_to_final_seconds_count 3",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        let unknown = metrics.render(&Gauges {
            queue: Some(QueueDepths {
                ready: 1,
                ..QueueDepths::default()
            }),
            now: DateTime::from_timestamp(1_090, 0),
            ..Gauges::default()
        });
        assert!(
            !unknown.contains("giftify_queue_oldest_message_age_seconds "),
            "an age the backend cannot tell is left out"
        );
        let without = metrics.render(&Gauges::default());
        assert!(!without.contains("giftify_orders{"));
        assert!(!without.contains("giftify_dead_letter_depth "));
    }

    #[test]
    fn labels_are_bounded_and_escaped() {
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").expect("method")),
            "OTHER"
        );
        assert_eq!(status_class(StatusCode::ACCEPTED), "2xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }
}
