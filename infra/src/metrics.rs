//! CloudWatch Embedded Metric Format: one JSON line on stdout per invocation, which CloudWatch
//! Logs turns into metrics without an API call from the Lambda.
//!
//! Every metric has the dimensions `stage` and `function`: two stages deployed in one account
//! (dev and prod) must not add up in one series, or a dev failure would page for prod.

use crate::config::Config;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The namespace of Giftify's own metrics.
pub const NAMESPACE: &str = "Giftify";

/// The stage dimension's value when `GIFTIFY_STAGE` is unset (unprefixed table names).
const NO_STAGE: &str = "default";

/// Where a process's metrics go: built once per process from its configuration, and cheap to
/// clone (the API's middleware state is cloned per request).
#[derive(Clone, Debug)]
pub struct MetricScope {
    stage: Arc<str>,
    function: &'static str,
}

impl MetricScope {
    pub fn new(config: &Config, function: &'static str) -> Self {
        MetricScope {
            stage: config.aws.stage.as_deref().unwrap_or(NO_STAGE).into(),
            function,
        }
    }

    /// The metrics of one invocation.
    pub fn invocation(&self) -> Emf<'_> {
        Emf {
            scope: self,
            values: Map::new(),
            units: Vec::new(),
        }
    }
}

/// Metrics of one invocation, emitted together.
#[derive(Debug)]
pub struct Emf<'a> {
    scope: &'a MetricScope,
    values: Map<String, Value>,
    units: Vec<(String, &'static str)>,
}

impl Emf<'_> {
    fn add(&mut self, name: &str, value: u64, unit: &'static str) {
        match self.values.get_mut(name) {
            // EMF takes a list of values for repeated observations of one metric.
            Some(Value::Array(values)) => values.push(value.into()),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value.into()]);
            }
            None => {
                self.values.insert(name.to_string(), value.into());
                self.units.push((name.to_string(), unit));
            }
        }
    }

    pub fn count(&mut self, name: &str, value: u64) {
        self.add(name, value, "Count");
    }

    pub fn milliseconds(&mut self, name: &str, value: u64) {
        self.add(name, value, "Milliseconds");
    }

    /// The EMF document.
    pub fn document(&self) -> Value {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let metrics: Vec<Value> = self
            .units
            .iter()
            .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
            .collect();
        let mut document = self.values.clone();
        document.insert("stage".into(), (*self.scope.stage).into());
        document.insert("function".into(), self.scope.function.into());
        document.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["stage", "function"]],
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(document)
    }

    /// Writes the document as one stdout line (nothing when no metric was recorded).
    pub fn emit(&self) {
        if !self.units.is_empty() {
            println!("{}", self.document());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(stage: Option<&str>) -> MetricScope {
        let mut config = Config::default();
        config.aws.stage = stage.map(str::to_string);
        MetricScope::new(&config, "fulfillment")
    }

    #[test]
    fn documents_follow_the_embedded_metric_format() {
        let prod = scope(Some("prod"));
        let mut emf = prod.invocation();
        emf.count("OrdersFulfilled", 1);
        emf.count("OrdersFulfilled", 1);
        emf.milliseconds("CreateToFinalLatency", 42);
        let doc = emf.document();
        assert_eq!(doc["OrdersFulfilled"], json!([1, 1]));
        assert_eq!(doc["CreateToFinalLatency"], 42);
        assert_eq!(doc["function"], "fulfillment");
        assert_eq!(doc["stage"], "prod");
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Giftify");
        assert_eq!(directive["Dimensions"], json!([["stage", "function"]]));
        assert_eq!(directive["Metrics"].as_array().unwrap().len(), 2);
        assert!(doc["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    }

    #[test]
    fn an_unstaged_deployment_has_its_own_stage_value() {
        assert_eq!(scope(None).invocation().document()["stage"], "default");
    }
}
