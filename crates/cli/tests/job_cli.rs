//! `hallmark job …` as a client runs it, against a network of in-process nodes on real HTTP:
//! submit and wait, show, verify locally (exit 0), then a corrupt worker's job (rejected,
//! exit 1 from wait and verify), and bad arguments (exit 2 with the error code).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Output;

use common::{args, cfg, hallmark};

use hallmark_core::Keypair;
use hallmark_node::config::{GenesisBalance, NodeConfig, RoleName};
use hallmark_node::run::{run_node, write_secret, RunningNode};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn worker(dir: &Path, name: &str, net: &NodeConfig, corrupt: bool) -> RunningNode {
    let mut c = cfg(dir, name);
    c.network = net.network.clone();
    c.network.stake = 1_000;
    c.worker.poll_ms = 50;
    c.faults.corrupt_artifacts = corrupt;
    run_node(RoleName::Worker, &c).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submit_wait_show_and_verify_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let coldkey = Keypair::generate();
    let coldkey_file = d.join("coldkey");
    write_secret(&coldkey_file, &coldkey.seed_hex()).unwrap();
    let mut c = cfg(d, "ledger");
    c.ledger.genesis = vec![GenesisBalance {
        account: coldkey.public(),
        balance: 1_000_000,
    }];
    let ledger = run_node(RoleName::Ledger, &c).await.unwrap();
    let mut c = cfg(d, "coordinator");
    c.network.ledger_url = ledger.url();
    c.coordinator.jobs.settle_poll_ms = 100;
    // Clients here are fresh keys: the stake gate has its own test (jobs.rs).
    c.coordinator.clients.min_stake = 0;
    let coordinator = run_node(RoleName::Coordinator, &c).await.unwrap();
    let mut net = cfg(d, "net");
    net.network.ledger_url = ledger.url();
    net.network.coordinator_url = coordinator.url();
    net.network.coordinator_hotkey = Some(coordinator.hotkey);
    net.network.coldkey_file = Some(coldkey_file);
    let mut validators = Vec::new();
    for i in 0..3 {
        let mut c = cfg(d, &format!("validator-{i}"));
        c.network = net.network.clone();
        c.network.stake = 5_000;
        c.validator.poll_ms = 50;
        validators.push(run_node(RoleName::Validator, &c).await.unwrap());
    }
    let honest = worker(d, "worker-0", &net, false).await;
    let coord = coordinator.url();
    let key = d.join("client.key");
    let key = key.to_str().unwrap();

    // Submit and wait: approved, exit 0; the id is printed on stderr first, the summary after.
    let out = hallmark(args(&[
        "job",
        "submit",
        "--lane",
        "stark",
        "--type",
        "matmul",
        "--size",
        "8",
        "--wait",
        "--json",
        "--coordinator",
        &coord,
        "--key",
        key,
    ]))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["status"], "approved", "{summary}");
    let id = summary["id"].as_str().unwrap().to_string();
    assert!(summary["certificate_votes"].as_u64().unwrap() >= 2);

    // Without --wait only the id is printed.
    let out = hallmark(args(&[
        "job",
        "submit",
        "--type",
        "fib",
        "--size",
        "128",
        "--coordinator",
        &coord,
        "--key",
        key,
    ]))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let fib = stdout(&out).trim().to_string();
    assert!(fib.starts_with("job-") && fib.len() == 28, "{fib:?}");
    let out = hallmark(args(&["job", "wait", &fib, "--coordinator", &coord])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("approved"), "{}", stdout(&out));

    // Show: the whole record as JSON, and a readable history.
    let out = hallmark(args(&[
        "job",
        "show",
        &id,
        "--json",
        "--coordinator",
        &coord,
    ]))
    .await;
    assert!(out.status.success());
    let job: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(job["spec"]["job_type"], "matmul");
    assert!(job["request"]["signatures"].is_array());
    let out = hallmark(args(&["job", "show", &id, "--coordinator", &coord])).await;
    let text = stdout(&out);
    for line in ["status     approved", "certificate", "history", "proven"] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }

    // Verify locally, and against the ledger's settlement: exit 0.
    let ledger_url = ledger.url();
    let out = hallmark(args(&[
        "job",
        "verify",
        &id,
        "--coordinator",
        &coord,
        "--ledger",
        &ledger_url,
        "--json",
    ]))
    .await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let verdict: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(verdict["valid"], true);
    let checks: Vec<&str> = verdict["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        [
            "request",
            "result",
            "proof_hash",
            "lane_verdict",
            "ledger_settlement",
            "certificate"
        ]
    );

    // A corrupt worker alone: its job is rejected (wait exits 1) and does not verify (exit 1).
    honest.stop().await;
    let corrupt = worker(d, "worker-1", &net, true).await;
    let out = hallmark(args(&[
        "job",
        "submit",
        "--type",
        "hashchain",
        "--size",
        "32",
        "--wait",
        "--coordinator",
        &coord,
        "--key",
        key,
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("rejected"), "{}", stdout(&out));
    let bad = stderr(&out)
        .lines()
        .find_map(|l| l.strip_prefix("submitted "))
        .expect("the id on stderr")
        .to_string();
    let out = hallmark(args(&["job", "verify", &bad, "--coordinator", &coord])).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("FAIL lane_verdict"),
        "{}",
        stdout(&out)
    );

    // Bad arguments and unknown jobs: exit 2 with the code.
    let out = hallmark(args(&[
        "job",
        "submit",
        "--type",
        "matmul",
        "--size",
        "999",
        "--coordinator",
        &coord,
        "--key",
        key,
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid_spec"), "{}", stderr(&out));
    let out = hallmark(args(&["job", "show", "job-nope", "--coordinator", &coord])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not_found"), "{}", stderr(&out));
    let out = hallmark(args(&[
        "job",
        "wait",
        "job-nope",
        "--coordinator",
        "http://127.0.0.1:9",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));

    corrupt.stop().await;
    for v in validators {
        v.stop().await;
    }
    coordinator.stop().await;
    ledger.stop().await;
}
