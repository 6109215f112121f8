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

/// A module of a crate, named by its path below `src` (`routes::meta`); the crate root is "".
fn module_of(src: &std::path::Path, file: &std::path::Path) -> Option<Vec<String>> {
    let relative = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    Some(parts)
}

/// The `a::b::c` paths that follow `prefix` in `text`, `use` groups (`a::{b, c::d}`) expanded.
fn paths_after(text: &str, prefix: &str) -> Vec<Vec<String>> {
    /// Parses a path or group at the start of `text` into `out`, below `base`; returns the rest.
    fn tree<'t>(text: &'t str, base: &[String], out: &mut Vec<Vec<String>>) -> &'t str {
        let mut path = base.to_vec();
        let mut rest = text.trim_start();
        loop {
            if let Some(group) = rest.strip_prefix('{') {
                let mut inner = group;
                loop {
                    inner = tree(inner, &path, out).trim_start();
                    match inner.chars().next() {
                        Some(',') => inner = &inner[1..],
                        Some('}') => return &inner[1..],
                        _ => return inner,
                    }
                }
            }
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            path.push(rest[..end].to_string());
            rest = &rest[end..];
            match rest.strip_prefix("::") {
                Some(more) => rest = more,
                None => break,
            }
        }
        if path.len() > base.len() {
            out.push(path);
        }
        rest
    }
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let before_ok = !rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        rest = &rest[at + prefix.len()..];
        if before_ok {
            rest = tree(rest, &[], &mut found);
        }
    }
    found
}

/// Each module's imports of other modules of its crate: `crate::…` and `super::…` paths,
/// resolved to the longest module they name. A child using its parent (`super::Giftify`) and a
/// parent declaring or re-exporting its children are one unit, not an import.
fn module_graph(src: &std::path::Path) -> Graph {
    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut all = Vec::new();
    files(src, &mut all);
    let sources: BTreeMap<Vec<String>, String> = all
        .iter()
        .filter_map(|file| {
            let text = std::fs::read_to_string(file).expect("read source");
            // Unit tests may use anything, and a doc link is no import: what is checked is
            // the code's own structure.
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or("")
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            Some((module_of(src, file)?, code))
        })
        .collect();
    let resolve = |path: Vec<String>| -> Vec<String> {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|candidate| sources.contains_key(candidate))
            .unwrap_or_default()
    };
    let mut graph: Graph = BTreeMap::new();
    for (module, code) in &sources {
        // `super` of `a/b.rs` and of `a/b/mod.rs` alike is `a`.
        let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
        let mut targets: Vec<Vec<String>> = paths_after(code, "crate::");
        for path in paths_after(code, "super::") {
            let mut full = parent.clone();
            full.extend(path);
            targets.push(full);
        }
        let edges = graph.entry(module.clone()).or_default();
        for target in targets.into_iter().map(resolve) {
            let related = target.starts_with(module) || module.starts_with(&target);
            if !related {
                edges.insert(target);
            }
        }
    }
    graph
}

type Module = Vec<String>;
type Graph = BTreeMap<Module, BTreeSet<Module>>;

/// Tarjan's strongly connected components, as the walk goes.
#[derive(Default)]
struct Tarjan {
    next_index: usize,
    /// index and low link of each visited module
    links: BTreeMap<Module, (usize, usize)>,
    stack: Vec<Module>,
    on_stack: BTreeSet<Module>,
    groups: Vec<Vec<String>>,
}

impl Tarjan {
    fn visit(&mut self, node: &Module, graph: &Graph) {
        let index = self.next_index;
        self.next_index += 1;
        self.links.insert(node.clone(), (index, index));
        self.stack.push(node.clone());
        self.on_stack.insert(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            let reached = if !self.links.contains_key(next) {
                self.visit(next, graph);
                self.links[next].1
            } else if self.on_stack.contains(next) {
                self.links[next].0
            } else {
                continue;
            };
            let link = self.links.get_mut(node).expect("visited");
            link.1 = link.1.min(reached);
        }
        if self.links[node].0 == self.links[node].1 {
            let mut group = Vec::new();
            while let Some(member) = self.stack.pop() {
                self.on_stack.remove(&member);
                let done = member == *node;
                group.push(member.join("::"));
                if done {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                self.groups.push(group);
            }
        }
    }
}

/// Groups of modules that import each other, directly or around a loop.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let mut tarjan = Tarjan::default();
    for node in graph.keys() {
        if !tarjan.links.contains_key(node) {
            tarjan.visit(node, graph);
        }
    }
    tarjan.groups
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let mut found = Vec::new();
    for krate in ["shared", "infra", "api", "workers", "tests"] {
        for group in cycles(&module_graph(&root.join(krate).join("src"))) {
            found.push(format!("{krate}: {}", group.join(" ⇄ ")));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn the_cycle_check_finds_a_cycle_it_is_shown() {
    let graph: Graph = [
        (vec!["a".to_string()], [vec!["b".to_string()]].into()),
        (vec!["b".to_string()], [vec!["a".to_string()]].into()),
        (vec!["c".to_string()], [vec!["a".to_string()]].into()),
    ]
    .into();
    assert_eq!(cycles(&graph), vec![vec!["a".to_string(), "b".to_string()]]);
    let path = |p: &str| p.split("::").map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        paths_after("use crate::{error::Error, ids::{A, B}};", "crate::"),
        vec![path("error::Error"), path("ids::A"), path("ids::B")]
    );
    assert_eq!(
        paths_after(
            "x = super::super::Giftify; use crate::routes::{meta, orders};",
            "crate::"
        ),
        vec![path("routes::meta"), path("routes::orders")]
    );
}
