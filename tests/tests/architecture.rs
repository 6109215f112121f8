//! The dependency rules of the architecture, checked from `Cargo.lock`: the core pulls in no
//! AWS, HTTP-server or Lambda crate, even transitively, and the two drivers (`api`, `workers`)
//! never depend on each other.

use std::collections::{BTreeMap, BTreeSet};

/// package name → names of its dependencies, from the lock file.
fn lock_graph() -> BTreeMap<String, Vec<String>> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .expect("Cargo.lock");
    let mut graph = BTreeMap::new();
    for package in lock.split("[[package]]").skip(1) {
        let name = package
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string())
            .expect("package name");
        let deps = match package.split_once("dependencies = [") {
            Some((_, rest)) => rest
                .split(']')
                .next()
                .unwrap_or_default()
                .split(',')
                // entries are `"name"` or `"name version"`
                .filter_map(|d| {
                    d.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .next()
                        .map(str::to_string)
                })
                .filter(|d| !d.is_empty())
                .collect(),
            None => Vec::new(),
        };
        // Several versions of one crate: merge their edges.
        graph.entry(name).or_insert_with(Vec::new).extend(deps);
    }
    graph
}

fn closure(graph: &BTreeMap<String, Vec<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.to_string()];
    while let Some(name) = stack.pop() {
        if seen.insert(name.clone()) {
            stack.extend(graph.get(&name).cloned().unwrap_or_default());
        }
    }
    seen
}

#[test]
fn the_core_depends_on_no_aws_http_server_or_lambda_crate() {
    let graph = lock_graph();
    let core = closure(&graph, "giftify-shared");
    assert!(core.contains("serde"), "the lock graph was read: {core:?}");
    let forbidden: Vec<_> = core
        .iter()
        .filter(|c| {
            c.starts_with("aws-")
                || c.starts_with("lambda")
                || [
                    "axum",
                    "hyper",
                    "tower-http",
                    "reqwest",
                    "rusqlite",
                    "giftify-infra",
                    "giftify-api",
                    "giftify-workers",
                ]
                .contains(&c.as_str())
        })
        .collect();
    assert!(forbidden.is_empty(), "giftify-shared reaches {forbidden:?}");
}

#[test]
fn the_drivers_do_not_depend_on_each_other_and_infra_not_on_them() {
    let graph = lock_graph();
    assert!(!closure(&graph, "giftify-api").contains("giftify-workers"));
    assert!(!closure(&graph, "giftify-workers").contains("giftify-api"));
    let infra = closure(&graph, "giftify-infra");
    assert!(!infra.contains("giftify-api") && !infra.contains("giftify-workers"));
    assert!(infra.contains("giftify-shared"));
}
