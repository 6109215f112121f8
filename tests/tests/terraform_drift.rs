//! The Terraform in `terraform/` and the code must describe the same AWS stack: every table of
//! `tables::ALL` with its name, keys, indexes (keys and projection) and TTL attribute; the
//! queue and topic names the
//! code looks up; the Lambda packages it builds; and exactly the environment variables
//! `Config::from_env` reads. A change on either side alone fails here, naming what differs.
//!
//! The Terraform side is what Terraform itself evaluates (`scripts/terraform-manifest`, offline:
//! it needs the `terraform` binary and the local provider mirror of the machine image). Without
//! them the test fails with the reason; it never passes by skipping.

use giftify_infra::aws::tables::{ALL, Index, Projection, TableDef};
use giftify_infra::aws::{dead_letter_queue_name, queue_name, topic_name, webhook_queue_name};
use giftify_infra::config::ENV_VARS;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Variables of `ENV_VARS` that only the API function is given, and why.
const API_ONLY: &[(&str, &str)] = &[
    (
        "GIFTIFY_JWT_SECRET_ARN",
        "only the API signs and verifies access tokens; a worker holding the key could mint them",
    ),
    (
        "GIFTIFY_API_KEY_RATE_LIMIT",
        "only the API authenticates API keys",
    ),
    ("GIFTIFY_SELF_TOPUP", "only the API serves top-ups"),
    (
        "GIFTIFY_USER_RATE_LIMITS",
        "only the API serves the limited actions",
    ),
    (
        "GIFTIFY_ORDER_WAIT_MAX_SECS",
        "only the API serves status reads that wait",
    ),
    (
        "GIFTIFY_CATALOGUE_TTL_MS",
        "only the API serves the catalogue",
    ),
];

/// Variables of `ENV_VARS` that no Lambda is given, and why. Anything else the code reads must
/// be set on every function (or, if in [`API_ONLY`], on the API function alone), and nothing
/// listed here may be.
const NOT_FOR_LAMBDAS: &[(&str, &str)] = &[
    (
        "GIFTIFY_ADDR",
        "the API Lambda is served by API Gateway, not a socket",
    ),
    ("GIFTIFY_DATA_DIR", "the embedded SQLite backend only"),
    (
        "GIFTIFY_WORKER_IN_FLIGHT",
        "the embedded worker only; on AWS the event source mapping's batch of ten decides",
    ),
    (
        "GIFTIFY_ADMIN_EMAIL",
        "the admin account is ensured by `giftify serve`, not by the Lambdas",
    ),
    (
        "GIFTIFY_ADMIN_PASSWORD",
        "the admin account is ensured by `giftify serve`, not by the Lambdas",
    ),
    (
        "GIFTIFY_WEBHOOK_URLS",
        "on AWS, admins register endpoints at /webhooks; the environment bootstrap is for `giftify serve`",
    ),
    (
        "GIFTIFY_WEBHOOK_SECRET",
        "a signing secret in a function's environment would be readable by whoever may read the function; on AWS each endpoint's secret is sealed in DynamoDB",
    ),
    (
        "GIFTIFY_JWT_SECRET",
        "on AWS the key comes from Secrets Manager (GIFTIFY_JWT_SECRET_ARN), never the environment",
    ),
    (
        "GIFTIFY_CARD_KEY",
        "on AWS the key comes from Secrets Manager (GIFTIFY_CARD_KEY_SECRET_ARN), never the environment",
    ),
    (
        "GIFTIFY_HTTP_HEADER_TIMEOUT_SECS",
        "the API Lambda is served by API Gateway, which owns the client connections",
    ),
    (
        "GIFTIFY_HTTP_BODY_TIMEOUT_SECS",
        "the API Lambda is served by API Gateway, which owns the client connections",
    ),
    (
        "GIFTIFY_HTTP_MAX_CONNECTIONS",
        "the API Lambda is served by API Gateway; its concurrency is reserved_concurrency",
    ),
    (
        "GIFTIFY_SHUTDOWN_DEADLINE_SECS",
        "a Lambda's life is the runtime's, not a SIGTERM's",
    ),
    (
        "GIFTIFY_QUEUE_MAX_RECEIVES",
        "the embedded queue only; on AWS it is the SQS redrive policy (queue_max_receives)",
    ),
    (
        "GIFTIFY_QUEUE_VISIBILITY_SECS",
        "the embedded queue only; on AWS it is the SQS queue attribute (6x the worker timeout)",
    ),
];

/// The stages compared: with an infix, and without one (`giftify-<table>`).
const STAGES: [Option<&str>; 2] = [Some("drift"), None];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

/// `scripts/terraform-manifest` for [`STAGES`], keyed by stage ("" for none); run once.
fn terraform() -> &'static BTreeMap<String, Value> {
    static MANIFEST: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    MANIFEST.get_or_init(|| {
        let script = repo().join("scripts/terraform-manifest");
        let output = Command::new("bash")
            .arg(&script)
            .args(STAGES.map(|s| s.unwrap_or("")))
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "{} failed (terraform and its provider mirror are needed):\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "{} printed no JSON ({e}):\n{}",
                script.display(),
                String::from_utf8_lossy(&output.stdout)
            )
        })
    })
}

fn stage_key(stage: Option<&str>) -> &str {
    stage.unwrap_or("")
}

/// An index as both sides describe it: keys, DynamoDB projection type, copied attributes.
fn code_index(index: &Index) -> Value {
    let (projection, non_key_attributes) = match index.projection {
        Projection::All => ("ALL", None),
        Projection::KeysOnly => ("KEYS_ONLY", None),
        Projection::Include(attributes) => {
            let mut sorted = attributes.to_vec();
            sorted.sort_unstable();
            ("INCLUDE", Some(sorted))
        }
    };
    json!({
        "hash_key": index.key.partition,
        "range_key": index.key.sort,
        "projection": projection,
        "non_key_attributes": non_key_attributes,
    })
}

/// A table as both sides describe it.
fn code_table(table: &TableDef) -> Value {
    json!({
        "hash_key": table.key.partition,
        "range_key": table.key.sort,
        "ttl_attribute": table.ttl_attribute,
        "indexes": table
            .indexes
            .iter()
            .map(|i| (i.name.to_string(), code_index(i)))
            .collect::<serde_json::Map<_, _>>(),
    })
}

/// What differs between two sets, worded for the failure message.
fn set_difference(
    what: &str,
    code: &BTreeSet<String>,
    terraform: &BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for missing in code.difference(terraform) {
        problems.push(format!(
            "{what} {missing} is in the code but not in terraform/"
        ));
    }
    for extra in terraform.difference(code) {
        problems.push(format!(
            "{what} {extra} is in terraform/ but not in the code"
        ));
    }
    problems
}

#[test]
fn terraform_defines_every_table_of_the_code_and_no_other() {
    let mut problems = Vec::new();
    for stage in STAGES {
        let declared = terraform()[stage_key(stage)]["tables"]
            .as_object()
            .expect("tables");
        let code: BTreeSet<String> = ALL.iter().map(|t| t.name(stage)).collect();
        let hcl: BTreeSet<String> = declared.keys().cloned().collect();
        problems.extend(set_difference("table", &code, &hcl));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_table_has_the_code_s_keys_indexes_projections_and_ttl() {
    let declared = &terraform()[stage_key(STAGES[0])]["tables"];
    let mut problems = Vec::new();
    for table in ALL {
        let name = table.name(STAGES[0]);
        let Some(hcl) = declared.get(&name) else {
            continue; // reported by the table-set test
        };
        let code = code_table(&table);
        for field in ["hash_key", "range_key", "ttl_attribute"] {
            if code[field] != hcl[field] {
                problems.push(format!(
                    "{name}: {field} is {} in the code, {} in terraform/",
                    code[field], hcl[field]
                ));
            }
        }
        let code_indexes = code["indexes"].as_object().expect("indexes");
        let hcl_indexes = hcl["indexes"].as_object().expect("indexes");
        problems.extend(set_difference(
            &format!("{name}: index"),
            &code_indexes.keys().cloned().collect(),
            &hcl_indexes.keys().cloned().collect(),
        ));
        for (index, keys) in code_indexes {
            if let Some(hcl_keys) = hcl_indexes.get(index)
                && keys != hcl_keys
            {
                problems.push(format!(
                    "{name}: index {index} is {keys} in the code, {hcl_keys} in terraform/"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// An index is paid for on every write that enters it: each must have a reader, an adapter
/// that names it in a query (as a literal or a constant beside `.index_name(`) of its table
/// (`tables.<table>`), so a reader of one table's `userId-createdAt-index` does not excuse
/// another's.
#[test]
fn every_index_has_a_reader_in_the_adapters() {
    let adapters = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/src/aws");
    let readers: Vec<(String, String)> = std::fs::read_dir(&adapters)
        .expect("the AWS adapters")
        .map(|entry| entry.expect("an adapter file").path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // The table definitions and the table creation name every index without reading it.
            name.ends_with(".rs") && name != "tables.rs" && name != "bootstrap.rs"
        })
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable");
            (path.display().to_string(), text)
        })
        .filter(|(_, text)| text.contains(".index_name("))
        .collect();
    let mut unread = Vec::new();
    for table in ALL {
        for index in table.indexes {
            let quoted = format!("\"{}\"", index.name);
            let of_table = format!("tables.{}", table.short_name.replace('-', "_"));
            if !readers
                .iter()
                .any(|(_, text)| text.contains(&quoted) && text.contains(&of_table))
            {
                unread.push(format!("{}: {}", table.short_name, index.name));
            }
        }
    }
    assert!(
        unread.is_empty(),
        "indexes no adapter queries (drop them, or add the reader): {unread:?}"
    );
}

#[test]
fn queue_and_topic_names_are_the_ones_the_code_looks_up() {
    for stage in STAGES {
        let manifest = &terraform()[stage_key(stage)];
        assert_eq!(
            manifest["queue"],
            queue_name(stage),
            "orders queue, stage {stage:?}"
        );
        assert_eq!(
            manifest["dead_letter_queue"],
            dead_letter_queue_name(stage),
            "dead-letter queue, stage {stage:?}"
        );
        assert_eq!(
            manifest["topic"],
            topic_name(stage),
            "events topic, stage {stage:?}"
        );
        assert_eq!(
            manifest["webhook_queue"],
            webhook_queue_name(stage),
            "webhook queue, stage {stage:?}"
        );
    }
}

#[test]
fn lambdas_get_exactly_the_variables_the_code_reads() {
    let read: BTreeSet<&str> = ENV_VARS.iter().map(|(name, _)| *name).collect();
    let excluded: BTreeSet<&str> = NOT_FOR_LAMBDAS.iter().map(|(name, _)| *name).collect();
    let stale: Vec<_> = excluded.difference(&read).collect();
    assert!(
        stale.is_empty(),
        "NOT_FOR_LAMBDAS names variables the code no longer reads: {stale:?}"
    );
    let api_only: BTreeSet<&str> = API_ONLY.iter().map(|(name, _)| *name).collect();
    assert!(
        api_only.is_subset(&read),
        "API_ONLY names variables the code does not read: {:?}",
        api_only.difference(&read).collect::<Vec<_>>()
    );
    let everywhere: BTreeSet<String> = read
        .difference(&excluded)
        .filter(|name| !api_only.contains(*name))
        .map(|name| name.to_string())
        .collect();

    let functions = terraform()[stage_key(STAGES[0])]["functions"]
        .as_object()
        .expect("functions");
    assert_eq!(
        functions.keys().map(String::as_str).collect::<Vec<_>>(),
        ["api", "dispatcher", "fulfillment", "reconciler"],
        "the stack has the API, webhook dispatcher, fulfillment and reconciler functions"
    );
    let mut problems = Vec::new();
    for (function, definition) in functions {
        let set: BTreeSet<String> = definition["environment"]
            .as_array()
            .expect("environment")
            .iter()
            .map(|v| v.as_str().expect("variable name").to_string())
            .collect();
        let mut expected = everywhere.clone();
        if function == "api" {
            expected.extend(api_only.iter().map(|name| name.to_string()));
        }
        problems.extend(set_difference(
            &format!("{function} function: variable"),
            &expected,
            &set,
        ));
    }
    assert!(
        problems.is_empty(),
        "{}\n(a variable the Lambdas must not get belongs in NOT_FOR_LAMBDAS, with the reason)",
        problems.join("\n")
    );
}

#[test]
fn lambda_packages_are_binaries_of_the_workspace() {
    // cargo-lambda names each zip directory after the binary it packages.
    let declared: String = ["api/Cargo.toml", "workers/Cargo.toml"]
        .iter()
        .map(|path| std::fs::read_to_string(repo().join(path)).expect("manifest"))
        .collect();
    let bins: BTreeSet<&str> = declared
        .split("[[bin]]")
        .skip(1)
        .filter_map(|section| {
            section
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = "))
                .map(|name| name.trim_matches('"'))
        })
        .collect();
    let functions = terraform()[stage_key(STAGES[0])]["functions"]
        .as_object()
        .expect("functions");
    for (function, definition) in functions {
        let bin = definition["bin"].as_str().expect("bin");
        assert!(
            bins.contains(bin),
            "the {function} function runs package {bin}, which is no [[bin]] of api/ or workers/ ({bins:?})"
        );
    }
}

/// `resource "TYPE" "NAME"` addresses declared in the `.tf` files of `terraform/`.
fn declared_resources() -> BTreeSet<String> {
    let mut declared = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("terraform")).expect("terraform/") {
        let path = entry.expect("an entry").path();
        if path.extension().is_none_or(|ext| ext != "tf") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a .tf file");
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("resource \"") else {
                continue;
            };
            let parts: Vec<&str> = rest.split('"').collect();
            if parts.len() >= 3 {
                declared.insert(format!("{}.{}", parts[0], parts[2]));
            }
        }
    }
    declared
}

/// The destroy guard protects a stage only if a destroy must delete it before anything else,
/// which holds only while it depends on every other resource.
#[test]
fn the_destroy_guard_depends_on_every_other_resource() {
    let guard = std::fs::read_to_string(repo().join("terraform/guard.tf")).expect("guard.tf");
    let listed: BTreeSet<String> = guard
        .split("depends_on = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("guard.tf has a depends_on list")
        .split(',')
        .map(|entry| entry.trim().to_string())
        .filter(|entry| !entry.is_empty())
        .collect();
    let mut declared = declared_resources();
    assert!(declared.remove("terraform_data.destroy_guard"));
    let unguarded: Vec<_> = declared.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&declared).collect();
    assert!(
        unguarded.is_empty() && unknown.is_empty(),
        "add to terraform/guard.tf depends_on: {unguarded:?}; not resources: {unknown:?}"
    );
}

/// SDK operations the adapters behind `giftify dlq …` call, read from the code: the operation
/// on the line after each `.client` of a builder chain, as `service:Operation`.
fn sdk_calls(file: &str, service: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join(file)).expect("an adapter file");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|pair| pair[0].ends_with(".client") || pair[0] == "self.client")
        .filter_map(|pair| pair[1].strip_prefix('.')?.strip_suffix("()"))
        .map(|operation| {
            let pascal: String = operation
                .split('_')
                .map(|word| {
                    let mut chars = word.chars();
                    chars
                        .next()
                        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                })
                .collect();
            format!("{service}:{pascal}")
        })
        .collect()
}

/// The operator policy (terraform/operator.tf) allows every call the dead-letter commands
/// make. Calls of these files that no operator command makes are listed with the reason.
#[test]
fn the_operator_policy_allows_every_call_of_the_dead_letter_commands() {
    let not_operator_calls: &[(&str, &str)] = &[
        (
            "dynamodb:PutItem",
            "queue.rs: FailureNotes::record runs in the worker, not in an operator command",
        ),
        (
            "sqs:GetQueueAttributes",
            "queue.rs: queue depths are for /metrics",
        ),
        (
            "dynamodb:Scan",
            "keys.rs: the card count of a refused start is best effort",
        ),
    ];
    let mut called = sdk_calls("infra/src/aws/queue.rs", "sqs");
    let notes: BTreeSet<String> = called
        .iter()
        .filter(|call| call.ends_with(":GetItem") || call.ends_with(":PutItem"))
        .cloned()
        .collect();
    for note in notes {
        // FailureNotes talks to DynamoDB through its own client in the same file.
        called.remove(&note);
        called.insert(note.replace("sqs:", "dynamodb:"));
    }
    called.extend(sdk_calls("infra/src/aws/keys.rs", "dynamodb"));
    called.insert("secretsmanager:GetSecretValue".into());
    let policy =
        std::fs::read_to_string(repo().join("terraform/operator.tf")).expect("operator.tf");
    let missing: Vec<&String> = called
        .iter()
        .filter(|call| !not_operator_calls.iter().any(|(exempt, _)| exempt == call))
        .filter(|call| !policy.contains(&format!("\"{call}\"")))
        .collect();
    assert!(
        called.contains("sqs:ReceiveMessage") && called.contains("dynamodb:GetItem"),
        "the calls were read from the code: {called:?}"
    );
    assert!(
        missing.is_empty(),
        "terraform/operator.tf lacks {missing:?} (called: {called:?})"
    );
}
