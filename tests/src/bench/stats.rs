//! Latency samples and their percentiles, peak memory, and the machine's load: the small
//! measuring tools every benchmark of [`crate::bench`] shares.
//!
//! Percentiles come from a sorted vector of every sample (nearest-rank): a run records at most
//! a few hundred thousand samples, so exact percentiles cost a sort and a few megabytes, and
//! need no histogram crate with its own rounding.

use serde_json::{Value, json};
use std::time::Duration;

/// Every sample of one latency, in microseconds.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    micros: Vec<u64>,
    sorted: bool,
}

impl Samples {
    pub fn record(&mut self, latency: Duration) {
        self.micros
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    pub fn merge(&mut self, other: Samples) {
        self.micros.extend(other.micros);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// The nearest-rank percentile `p` (0–100) in milliseconds; 0 without samples.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return 0.0;
        }
        if !self.sorted {
            self.micros.sort_unstable();
            self.sorted = true;
        }
        let rank = ((p / 100.0) * self.micros.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.micros.len()) - 1;
        self.micros[index] as f64 / 1000.0
    }

    /// `{"count", "p50", "p95", "p99", "max"}` in milliseconds.
    pub fn summary(&mut self) -> Value {
        json!({
            "count": self.len(),
            "p50_ms": round3(self.percentile_ms(50.0)),
            "p95_ms": round3(self.percentile_ms(95.0)),
            "p99_ms": round3(self.percentile_ms(99.0)),
            "max_ms": round3(self.percentile_ms(100.0)),
        })
    }
}

/// Rounds to three decimals, so JSON reports stay readable.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The peak resident set size of this process so far (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    proc_status_kib("VmHWM:").map(|kib| kib as f64 / 1024.0)
}

/// The current resident set size of this process (`VmRSS`), in MiB.
pub fn rss_mib() -> Option<f64> {
    proc_status_kib("VmRSS:").map(|kib| kib as f64 / 1024.0)
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// The 1, 5 and 15 minute load averages, for the record of how busy the machine was.
pub fn load_average() -> Option<[f64; 3]> {
    let raw = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = raw.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// What the report says about the machine it ran on.
pub fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|kib| kib / 1024);
    json!({
        "cpu": cpu,
        "cores": cores,
        "memory_mib": memory_mib,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_every_sample() {
        let mut samples = Samples::default();
        for ms in 1..=100 {
            samples.record(Duration::from_millis(ms));
        }
        assert_eq!(samples.percentile_ms(50.0), 50.0);
        assert_eq!(samples.percentile_ms(99.0), 99.0);
        assert_eq!(samples.percentile_ms(100.0), 100.0);
        assert_eq!(samples.percentile_ms(0.0), 1.0);
        assert_eq!(Samples::default().percentile_ms(50.0), 0.0);
    }

    #[test]
    fn this_process_has_a_peak_rss_and_the_machine_a_load() {
        assert!(peak_rss_mib().is_some_and(|mib| mib > 0.0));
        assert!(load_average().is_some());
    }
}
