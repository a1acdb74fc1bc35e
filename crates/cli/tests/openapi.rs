//! Every role's `/openapi.json` is valid OpenAPI 3.1, and every real response matches it.
//!
//! Nodes started with `HALLMARK_OPENAPI_RECORD=DIR` write their description and every
//! response they send under `DIR` (`hallmark_node::openapi`). This test runs a devnet that
//! records, then checks: each description with `openapi-spec-validator` (PyPI; required when
//! `HALLMARK_REQUIRE_OPENAPI_VALIDATOR=1`), and each response against its operation's schema
//! for its status with a JSON Schema 2020-12 validator. With `HALLMARK_OPENAPI_RECORDED=DIR`
//! it also checks what the rest of the test suite recorded there (`.ci/run` does this after
//! `cargo test --workspace`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

/// What a check found.
#[derive(Default, Debug)]
struct Report {
    responses: usize,
    json_checked: usize,
    operations: BTreeSet<String>,
    roles_described: BTreeSet<String>,
    described: BTreeSet<String>,
    failures: Vec<String>,
}

/// The operation a response answered, or why there is none.
fn operation<'a>(spec: &'a Value, route: Option<&str>, method: &str) -> Option<&'a Value> {
    spec["paths"].get(route?)?.get(method)
}

/// The response description for `status`: the exact one, else `default`.
fn response_for(op: &Value, status: u16) -> Option<&Value> {
    let r = &op["responses"];
    r.get(status.to_string()).or_else(|| r.get("default"))
}

fn media_of(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

fn check_spec_file(path: &Path, failures: &mut Vec<String>) {
    let require = std::env::var("HALLMARK_REQUIRE_OPENAPI_VALIDATOR").as_deref() == Ok("1");
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(path)
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            if text.contains("No module named") {
                assert!(!require, "openapi-spec-validator is not installed: {text}");
                eprintln!(
                    "openapi-spec-validator is not installed; skipping {}",
                    path.display()
                );
            } else {
                failures.push(format!(
                    "{} is not valid OpenAPI 3.1: {text}",
                    path.display()
                ));
            }
        }
        Err(e) => {
            assert!(!require, "python3: {e}");
            eprintln!("no python3 ({e}); skipping {}", path.display());
        }
    }
}

/// Checks every description and recorded response under `dir`.
fn check_recorded(dir: &Path) -> Report {
    let mut report = Report::default();
    let mut validated_specs = BTreeSet::new();
    let mut validators: BTreeMap<String, jsonschema::Validator> = BTreeMap::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".spec.json"))
        .collect();
    entries.sort();
    for spec_path in entries {
        let text = std::fs::read_to_string(&spec_path).unwrap();
        let spec: Value = serde_json::from_str(&text).unwrap();
        let role = spec["info"]["title"]
            .as_str()
            .unwrap_or("?")
            .trim_start_matches("hallmark ")
            .to_string();
        report.roles_described.insert(role.clone());
        for (path, ops) in spec["paths"].as_object().into_iter().flatten() {
            for method in ops.as_object().into_iter().flatten().map(|(m, _)| m) {
                report.described.insert(format!("{role} {method} {path}"));
            }
        }
        if validated_specs.insert(text.clone()) {
            check_spec_file(&spec_path, &mut report.failures);
        }
        let responses = spec_path
            .to_string_lossy()
            .replace(".spec.json", ".responses.jsonl");
        let Ok(lines) = std::fs::read_to_string(&responses) else {
            continue;
        };
        let count = lines.lines().count();
        for (n, line) in lines.lines().enumerate() {
            let rec = match serde_json::from_str::<Value>(line) {
                Ok(rec) => rec,
                // A node killed mid-write leaves a torn last line; nothing else may be torn.
                Err(_) if n + 1 == count && !lines.ends_with('\n') => continue,
                Err(e) => panic!("{responses}: line {} is not a record: {e}", n + 1),
            };
            report.responses += 1;
            let method = rec["method"].as_str().unwrap();
            let route = rec["route"].as_str();
            let status = rec["status"].as_u64().unwrap() as u16;
            let ctype = rec["content_type"].as_str().unwrap_or("");
            let uri = rec["uri"].as_str().unwrap_or("");
            let here = format!("{role}: {} {uri} -> {status}", method.to_uppercase());
            let response = match operation(&spec, route, method) {
                Some(op) => {
                    report
                        .operations
                        .insert(format!("{role} {method} {}", route.unwrap_or("")));
                    match response_for(op, status) {
                        Some(r) => r.clone(),
                        None => {
                            report
                                .failures
                                .push(format!("{here}: status not described"));
                            continue;
                        }
                    }
                }
                // No route matched (404) or no such method on it (405): the error shape.
                None if route.is_none() || status == 405 => {
                    json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
                }
                None => {
                    report
                        .failures
                        .push(format!("{here}: no operation describes {method} {route:?}"));
                    continue;
                }
            };
            let content = response.get("content").and_then(Value::as_object);
            let Some(content) = content else {
                if !rec["body"].is_null() && rec["json"] == true {
                    report
                        .failures
                        .push(format!("{here}: a body where none is described"));
                }
                continue;
            };
            let media = media_of(ctype);
            let Some((_, described)) = content.iter().find(|(k, _)| media_of(k) == media) else {
                report.failures.push(format!(
                    "{here}: content type {ctype:?} is not among {:?}",
                    content.keys().collect::<Vec<_>>()
                ));
                continue;
            };
            if rec["json"] != true {
                continue;
            }
            let schema = described["schema"].clone();
            let key = format!("{role}\u{0}{schema}");
            if !validators.contains_key(&key) {
                let mut root = schema.clone();
                if let Value::Object(m) = &mut root {
                    m.insert("components".into(), spec["components"].clone());
                } else {
                    root = json!({"allOf": [schema], "components": spec["components"]});
                }
                let v = jsonschema::draft202012::new(&root)
                    .unwrap_or_else(|e| panic!("{here}: the schema does not compile: {e}"));
                validators.insert(key.clone(), v);
            }
            let body = &rec["body"];
            let errors: Vec<String> = validators[&key]
                .iter_errors(body)
                .take(3)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            report.json_checked += 1;
            if !errors.is_empty() {
                let mut shown = body.to_string();
                shown.truncate(400);
                report
                    .failures
                    .push(format!("{here}: {}\n    body: {shown}", errors.join("; ")));
            }
        }
    }
    report
}

fn assert_clean(what: &str, report: &Report) {
    eprintln!(
        "{what}: {} responses, {} JSON bodies checked, {} operations seen",
        report.responses,
        report.json_checked,
        report.operations.len()
    );
    let unseen: Vec<&String> = report.described.difference(&report.operations).collect();
    eprintln!("{what}: described but not answered here: {unseen:?}");
    assert!(
        report.failures.is_empty(),
        "{what}: {} responses do not match their description:\n{}",
        report.failures.len(),
        report.failures.join("\n")
    );
}

#[test]
fn a_devnets_responses_match_each_roles_openapi() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    let out = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args([
            "devnet",
            "--json",
            "--rounds",
            "1",
            "--jobs",
            "2",
            "--window-ms",
            "1500",
            "--vars",
            "120",
            "--clauses",
            "480",
            "--instances",
            "2",
            "--data-dir",
        ])
        .arg(dir.path().join("net"))
        .env("HALLMARK_OPENAPI_RECORD", &record)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "devnet failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = check_recorded(&record);
    let roles: BTreeSet<&str> = report
        .operations
        .iter()
        .filter_map(|o| o.split(' ').next())
        .collect();
    for role in ["coordinator", "validator", "ledger"] {
        assert!(
            roles.contains(role),
            "no {role} responses recorded: {roles:?}"
        );
    }
    // Nobody calls a worker in a devnet, but its description is checked all the same.
    for role in ["coordinator", "validator", "worker", "ledger"] {
        assert!(
            report.roles_described.contains(role),
            "{:?}",
            report.roles_described
        );
    }
    assert!(report.json_checked > 50, "{report:?}");
    assert_clean("devnet", &report);
}

#[test]
fn what_the_rest_of_the_suite_recorded_matches_too() {
    let Some(dir) = std::env::var_os("HALLMARK_OPENAPI_RECORDED") else {
        eprintln!("HALLMARK_OPENAPI_RECORDED is not set: nothing recorded by other tests to check");
        return;
    };
    let report = check_recorded(Path::new(&dir));
    assert!(report.responses > 0, "nothing was recorded under {dir:?}");
    assert_clean("suite", &report);
}
