//! `hallmark devnet` itself, as separate processes, with small numbers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

fn devnet(dir: &std::path::Path, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args([
            "devnet",
            "--json",
            "--window-ms",
            "1500",
            "--vars",
            "120",
            "--clauses",
            "480",
            "--instances",
            "3",
            "--data-dir",
        ])
        .arg(dir)
        .args(extra)
        .output()
        .expect("run hallmark devnet");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "devnet failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // stdout is exactly one JSON object.
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}"))
}

fn check_rounds(v: &Value, rounds: usize, validators: usize) {
    let rs = v["rounds"].as_array().unwrap();
    let sat: Vec<&Value> = rs.iter().filter(|r| r["lane"] == "sat").collect();
    assert_eq!(sat.len(), rounds);
    // Beside the sat rounds, one eval round (unless --no-eval).
    assert!(rs.iter().all(|r| r["lane"] == "sat" || r["lane"] == "eval"));
    assert_eq!(rs.len() - sat.len(), 1, "one eval round: {rs:?}");
    for r in rs {
        let winner = r["winner"].as_str().expect("every round has a winner");
        assert!(
            r["consensus"].get(winner).is_some(),
            "the winner has a consensus score"
        );
        let vs = r["validators"].as_array().unwrap();
        assert_eq!(vs.len(), validators);
        for val in vs {
            if !val["byzantine"].as_bool().unwrap() {
                assert!(
                    val["agrees"].as_bool().unwrap(),
                    "honest validator disagrees: {r}"
                );
            }
        }
        if r["lane"] == "eval" {
            check_eval_round(r);
        }
    }
}

/// An eval round: every honest validator's report hash is the same, the cheap example wins
/// (unless its archive was tampered with), and the escapes are contained with their reasons.
fn check_eval_round(r: &Value) -> &Value {
    let e = &r["eval"];
    assert_eq!(e["honest_reports_identical"], true, "{r}");
    let hashes: std::collections::BTreeSet<&str> = r["validators"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["byzantine"] == false)
        .map(|x| {
            x["report_hash"]
                .as_str()
                .expect("a report hash per validator")
        })
        .collect();
    assert_eq!(hashes.len(), 1, "{r}");
    let member = |n: &str| {
        e["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == n)
            .cloned()
    };
    for (name, code) in [
        ("clock", "unknown_import"),
        ("spin", "out_of_fuel"),
        ("grow", "memory_limit"),
    ] {
        if e["tampered"] != name {
            assert_eq!(member(name).unwrap()["contained"]["code"], code, "{e}");
        }
    }
    if e["tampered"] != "cheap" {
        assert_eq!(e["measured_best"], "cheap", "{e}");
        assert_eq!(
            r["winner"].as_str(),
            member("cheap").unwrap()["worker"].as_str(),
            "{r}"
        );
    }
    e
}

/// The sat round ids of a devnet run, decided and void, sorted.
fn sat_round_ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["void_rounds"].as_array().unwrap())
        .filter_map(|r| r["round_id"].as_str())
        .filter(|id| id.starts_with("sat-"))
        .map(String::from)
        .collect();
    ids.sort();
    ids
}

/// `sat-round-{from}` … in order, `n` of them.
fn sat_rounds_from(from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|k| format!("sat-round-{k:06}"))
        .collect()
}

#[test]
fn devnet_runs_and_reruns_in_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    // Replica ledger-1 is SIGKILLed after the first round and restarted after the second.
    let v = devnet(
        dir.path(),
        &[
            "--validators",
            "3",
            "--workers",
            "2",
            "--rounds",
            "2",
            "--kill-replica",
            "1",
        ],
    );
    check_rounds(&v, 2, 3);
    // Sat rounds are numbered from 1 with none lost: the decided ones and any void ones (no
    // worker scored in a busy machine's window; published again with a longer window).
    let first_run = sat_round_ids(&v);
    assert_eq!(first_run, sat_rounds_from(1, first_run.len()));
    check_replicas(&v, 4, Some(1), None);
    // One simulated TEE provider, listed on the validators' certificate (every validator
    // checked its evidence and voted), never in scores or weights.
    let c = &v["compute"];
    assert_eq!(c["listed"], true, "{c}");
    assert_eq!(c["health_listed"], true);
    assert_eq!(c["in_scores_or_weights"], false);
    let cert = &c["certificate"];
    assert_eq!(cert["status"], "approved", "{c}");
    assert_eq!(cert["passed_two_thirds"], true, "{c}");
    assert!(cert["certificate_votes"].as_u64().unwrap() >= 2, "{c}");
    assert!(3 * cert["valid_stake"].as_u64().unwrap() >= 2 * cert["total_stake"].as_u64().unwrap());
    assert_eq!(c["providers"][0]["node_id"], "tee-provider-0");
    assert!(c["evidence_log_index"].as_u64().is_some());
    for p in v["processes"].as_array().unwrap() {
        assert!(p["peak_rss_kib"].as_u64().unwrap() > 0);
    }
    // Three honest stark jobs, one of each type, approved by at least 2/3 of validator stake
    // with a certificate the ledger settled; nobody slashed.
    let jobs = v["jobs"].as_array().unwrap();
    let types: Vec<&str> = jobs.iter().map(|j| j["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["fib", "hashchain", "matmul"]);
    for j in jobs {
        assert_eq!(j["lane"], "stark");
        assert_eq!(j["status"], "approved", "{j}");
        assert!(j["proof_bytes"].as_u64().unwrap() > 1_000);
        let (valid, total) = (
            j["votes_valid_stake"].as_u64().unwrap(),
            j["total_stake"].as_u64().unwrap(),
        );
        assert!(valid * 3 >= total * 2, "{j}");
        assert!(j["certificate_votes"].as_u64().unwrap() >= 2);
        assert!(j["settle_tx"].as_str().unwrap().len() == 64, "{j}");
        assert!(j["id"].as_str().unwrap().starts_with("job-"));
    }
    assert_eq!(v["slashes"].as_array().unwrap().len(), 0);
    check_builds(&v);
    // A second run in the same data dir continues the same network: every replica
    // re-executes its stored blocks and the chain goes on.
    let height = v["ledger"]["replicas"][0]["height"].as_u64().unwrap();
    let v = devnet(
        dir.path(),
        &["--validators", "3", "--workers", "2", "--rounds", "1"],
    );
    check_rounds(&v, 1, 3);
    check_replicas(&v, 4, None, None);
    assert!(v["ledger"]["replicas"][0]["height"].as_u64().unwrap() > height);
    let second_run = sat_round_ids(&v);
    assert_eq!(
        second_run,
        sat_rounds_from(first_run.len() + 1, second_run.len()),
        "the numbering goes on"
    );
    // The same wasm handed in again find their verifications.
    check_builds(&v);
}

/// Every replica is listed; the honest ones agree on the state and log roots (the devnet
/// waited for them to converge), each read from them checked offline against its header key.
fn check_replicas(v: &Value, count: usize, restarted: Option<usize>, byzantine: Option<usize>) {
    let replicas = v["ledger"]["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), count, "{replicas:?}");
    let honest: Vec<&Value> = replicas
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != byzantine)
        .map(|(_, r)| r)
        .collect();
    for r in &honest {
        assert_eq!(r["state_root"], honest[0]["state_root"], "{replicas:?}");
        assert_eq!(r["log_root"], honest[0]["log_root"], "{replicas:?}");
        assert_eq!(r["read_proof_checked"], true, "{r}");
        assert!(r["height"].as_u64().unwrap() > 10, "{r}");
        assert_eq!(r["state_root"].as_str().unwrap().len(), 64);
    }
    for (i, r) in replicas.iter().enumerate() {
        assert_eq!(
            r["name"],
            if i == 0 {
                "ledger".to_string()
            } else {
                format!("ledger-{i}")
            }
        );
        assert_eq!(r["restarted"], Some(i) == restarted, "{r}");
        assert_eq!(r["byzantine"], Some(i) == byzantine, "{r}");
    }
}

/// The build lane's four cases, each decided by a certificate, with its trust level.
fn check_builds(v: &Value) {
    let builds = v["builds"].as_array().unwrap();
    let got: Vec<(&str, &str, &str)> = builds
        .iter()
        .map(|b| {
            let detail = b["match"].as_str().or(b["reason"].as_str()).unwrap_or("-");
            (
                b["case"].as_str().unwrap(),
                b["status"].as_str().unwrap(),
                detail,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("exact", "verified", "exact"),
            ("mismatched", "mismatched", "-"),
            ("network", "unverified", "build_failed"),
            ("timeout", "unverified", "build_timeout"),
        ],
        "{builds:?}"
    );
    for b in builds {
        assert!(b["certificate_votes"].as_u64().unwrap() >= 2, "{b}");
        assert_eq!(b["image_trust"], "trusted", "{b}");
        assert_eq!(b["recipe_source"], "onchain_meta", "{b}");
        assert_eq!(b["wasm_sha256"].as_str().unwrap().len(), 64);
    }
    assert_eq!(builds[0]["rebuilt_sha256"], builds[0]["wasm_sha256"]);
    assert_eq!(builds[1]["rebuilt_sha256"], builds[0]["wasm_sha256"]);
}

#[test]
fn one_byzantine_of_four_cannot_move_the_winner() {
    let dir = tempfile::tempdir().unwrap();
    let v = devnet(
        dir.path(),
        &[
            "--validators",
            "4",
            "--byzantine",
            "1",
            "--workers",
            "3",
            "--rounds",
            "2",
        ],
    );
    check_rounds(&v, 2, 4);
    for r in v["rounds"].as_array().unwrap() {
        let byz: Vec<&Value> = r["validators"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["byzantine"].as_bool().unwrap())
            .collect();
        assert_eq!(byz.len(), 1);
        assert!(
            !byz[0]["agrees"].as_bool().unwrap(),
            "inverted scores cannot agree with the winner"
        );
    }
}

/// Ledger replica ledger-1 proposes blocks with a wrong state root and double-votes: the
/// honest replicas refuse its blocks (no fork: they agree), record its double votes, and the
/// ledger slashes validator-0, whose hotkey it runs, once.
#[test]
fn a_byzantine_ledger_replica_is_refused_and_slashed() {
    byzantine_replica_run(&[]);
}

/// The byzantine replica again, every node's store on PostgreSQL: the double vote is stored
/// as evidence and slashed there too.
#[test]
fn a_byzantine_ledger_replica_is_refused_and_slashed_on_postgres() {
    if let Some(url) = postgres_url() {
        byzantine_replica_run(&["--store", &url]);
    }
}

/// A devnet whose ledger replica 1 double-votes: it is refused, its evidence recorded and
/// validator-0 (its operator) slashed once.
fn byzantine_replica_run(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let v = devnet(
        dir.path(),
        &[
            "--validators",
            "3",
            "--workers",
            "2",
            "--rounds",
            "1",
            "--jobs",
            "1",
            "--no-eval",
            "--no-builds",
            "--byzantine-replica",
            "1",
        ]
        .iter()
        .chain(extra)
        .copied()
        .collect::<Vec<_>>(),
    );
    // One sat round (no eval round), decided as usual.
    assert_eq!(v["rounds"].as_array().unwrap().len(), 1);
    assert!(v["rounds"][0]["winner"].is_string(), "{}", v["rounds"][0]);
    check_replicas(&v, 4, None, Some(1));
    let evidence = v["ledger"]["evidence"].as_array().unwrap();
    assert!(!evidence.is_empty(), "no double vote recorded");
    let validator0 = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "validator-0")
        .unwrap()["hotkey"]
        .clone();
    assert!(evidence
        .iter()
        .all(|e| e["evidence"]["validator"] == validator0));
    let slashes: Vec<&Value> = v["slashes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["job_id"] == "bft/double-vote")
        .collect();
    assert_eq!(slashes.len(), 1, "{slashes:?}");
    assert_eq!(slashes[0]["hotkey"], validator0);
    assert_eq!(slashes[0]["reason"], "equivocation");
}

/// The eval round with a coordinator that lies about the winner and alters one archive: every
/// validator refuses that member by name and reason, and the weights still follow the
/// measurement.
#[test]
fn eval_weights_follow_the_measurement_not_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let v = devnet(
        dir.path(),
        &[
            "--validators",
            "3",
            "--workers",
            "2",
            "--rounds",
            "1",
            "--jobs",
            "0",
            "--no-builds",
            "--owner-lies",
            "--tamper-archive",
            "1",
        ],
    );
    check_rounds(&v, 1, 3);
    let r = v["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["lane"] == "eval")
        .unwrap();
    let e = check_eval_round(r);
    let tampered = e["tampered"].as_str().expect("a tampered member");
    let refusals = e["refusals"].as_array().unwrap();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    for f in refusals {
        assert_eq!(f["name"], tampered);
        assert_eq!(f["code"], "archive_hash_mismatch");
    }
    assert!(e["members"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["name"] != tampered));
    let lie = if tampered == "cheap" {
        "wrong"
    } else {
        "costly"
    };
    assert_eq!(e["owner_pick"], lie);
    assert_ne!(r["owner_pick"], r["winner"]);
    for val in r["validators"].as_array().unwrap() {
        assert_eq!(val["weights_for"], r["winner"], "{r}");
    }
}

#[test]
fn devnet_refuses_bad_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args(["devnet", "--validators", "2", "--byzantine", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--byzantine"));
    let out = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args(["devnet", "--tamper-archive", "6"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tamper-archive"));
    for bad in [
        &["devnet", "--kill-replica", "0"][..],
        &["devnet", "--kill-replica", "4"],
        &["devnet", "--byzantine-replica", "1", "--single-sequencer"],
        &["devnet", "--kill-replica", "2", "--byzantine-replica", "2"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hallmark"))
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("replica"),
            "{bad:?}"
        );
    }
}

/// The audit trail end to end: one validator serves two different reports per run and is
/// caught in every run; validator-0 restarts halfway and serves its archives byte for byte;
/// each round shows the ledger log's signed checkpoint and every validator's commitment; a
/// validator's stored receipt verifies offline with `hallmark verify receipt`, and a tampered
/// one does not.
#[test]
fn equivocation_is_caught_archives_survive_restart_and_receipts_verify() {
    let dir = tempfile::tempdir().unwrap();
    let v = devnet(
        dir.path(),
        &[
            "--validators",
            "3",
            "--workers",
            "2",
            "--rounds",
            "3",
            "--equivocate",
            "1",
            "--restart-validator",
            "--corrupt-workers",
            "1",
        ],
    );
    check_rounds(&v, 3, 3);
    let equivocator = v["rounds"][0]["validators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["equivocating"].as_bool().unwrap())
        .expect("one validator equivocates")["hotkey"]
        .as_str()
        .unwrap()
        .to_string();
    let evidence = v["equivocations"].as_array().unwrap();
    let ledger_key: hallmark_core::PublicKey = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "ledger")
        .and_then(|p| p["hotkey"].as_str())
        .expect("the ledger's hotkey")
        .parse()
        .unwrap();
    let ledger_vkey =
        hallmark_log::NoteVerifierKey::new("hallmark/hallmark-devnet/ledger", ledger_key).unwrap();
    let mut last_size = 0;
    for r in v["rounds"].as_array().unwrap() {
        let run = r["round_id"].as_str().unwrap();
        // Caught by an honest peer (report against commitment) and by the ledger (two
        // commitments), in every run.
        for kind in ["report_vs_commitment", "commitment"] {
            assert!(
                evidence
                    .iter()
                    .any(|e| e["validator"] == equivocator.as_str()
                        && e["run_id"] == run
                        && e["kind"] == kind),
                "no {kind} evidence for {run}: {evidence:?}"
            );
        }
        // The checkpoint is signed by the ledger's key and covers log_size leaves; the log
        // only grows from round to round.
        let size = r["log_size"].as_u64().unwrap();
        let note = hallmark_log::SignedCheckpoint {
            note: r["checkpoint"].as_str().unwrap().to_string(),
        };
        let cp = note
            .verify(&ledger_vkey)
            .expect("the ledger signed the checkpoint");
        assert_eq!(cp.size, size);
        // Sat rounds each add transactions; the eval round, decided while they ran and
        // listed last, shows the log as it stands at the end.
        assert!(
            size > last_size || (r["lane"] == "eval" && size == last_size),
            "log did not grow: {size} after {last_size}"
        );
        last_size = size;
        for val in r["validators"].as_array().unwrap() {
            let c = val["commitment"]
                .as_str()
                .expect("every validator committed");
            assert!(c.starts_with(&format!("hallmark/scores/v1:{run}:")), "{c}");
        }
    }
    assert!(
        evidence
            .iter()
            .all(|e| e["validator"] == equivocator.as_str()),
        "an honest validator accused: {evidence:?}"
    );
    // Stark jobs: the corrupt worker's proofs are rejected and it is slashed; honest proofs
    // are approved; the equivocating validator is caught double-voting and slashed, and no
    // honest validator is slashed.
    let jobs = v["jobs"].as_array().unwrap();
    let corrupt = jobs
        .iter()
        .find(|j| j["corrupt_worker"] == true)
        .expect("the corrupt worker proved a job");
    let corrupt_worker = corrupt["worker"].as_str().unwrap();
    for j in jobs {
        let expected = if j["corrupt_worker"] == true {
            "rejected"
        } else {
            "approved"
        };
        assert_eq!(j["status"], expected, "{j}");
        assert!(
            j["equivocators"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == equivocator.as_str()),
            "{j}"
        );
    }
    let slashes = v["slashes"].as_array().unwrap();
    assert!(
        slashes
            .iter()
            .any(|s| s["hotkey"] == corrupt_worker && s["reason"] == "rejected_result"),
        "{slashes:?}"
    );
    assert!(slashes
        .iter()
        .any(|s| s["hotkey"] == equivocator.as_str() && s["reason"] == "equivocation"));
    assert!(
        slashes
            .iter()
            .all(|s| s["hotkey"] == corrupt_worker || s["hotkey"] == equivocator.as_str()),
        "an honest node slashed: {slashes:?}"
    );
    let restart = &v["restart"];
    assert_eq!(restart["byte_identical"], true, "{restart}");
    assert_eq!(restart["archives_checked"], 2);

    // A receipt, straight from validator-1's store, verifies offline.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let receipt = rt.block_on(async {
        let store = hallmark_store::Store::open(&dir.path().join("validator-1/validator-1.sqlite"))
            .await
            .unwrap();
        store
            .receipt("round-result/sat-round-000002")
            .await
            .unwrap()
            .expect("a stored receipt")
    });
    let file = dir.path().join("receipt.json");
    std::fs::write(&file, &receipt).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args(["verify", "receipt"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut tampered: Value = serde_json::from_str(&receipt).unwrap();
    tampered["log"]["log_index"] = Value::from(tampered["log"]["log_index"].as_u64().unwrap() + 1);
    std::fs::write(&file, tampered.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args(["verify", "receipt", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["rejection"], "inclusion_proof");
}

/// `devnet --keep-running` stays up after its rounds and jobs, writes `devnet.json` once
/// every node answers, and other commands find the network through `--devnet DIR`; SIGTERM
/// stops every node and removes the file.
#[test]
fn a_kept_devnet_serves_other_commands_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("net");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args([
            "devnet",
            "--json",
            "--keep-running",
            "--rounds",
            "1",
            "--jobs",
            "1",
            "--validators",
            "3",
            "--workers",
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
        .arg(&d)
        .arg("--evidence-dir")
        .arg(testdata())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let file = d.join("devnet.json");
    let start = std::time::Instant::now();
    let info: Value = loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                break v;
            }
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(240),
            "devnet.json never appeared"
        );
        assert!(child.try_wait().unwrap().is_none(), "devnet exited early");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(info["ready"], true);
    assert_eq!(info["validators"].as_array().unwrap().len(), 3);
    assert_eq!(info["workers"].as_array().unwrap().len(), 2);
    for k in ["ledger", "coordinator", "coordinator_hotkey"] {
        assert!(info[k].is_string(), "{k}: {info}");
    }
    assert!(std::path::Path::new(info["operator_key"].as_str().unwrap()).exists());
    assert!(std::path::Path::new(info["coldkey"].as_str().unwrap()).exists());

    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hallmark"))
            .args(args)
            .arg("--devnet")
            .arg(&d)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    // A job from a fresh key with no stake bonded: refused, with what to do about it.
    let key = dir.path().join("client.key");
    let (code, out) = run(&[
        "job",
        "submit",
        "--type",
        "fib",
        "--size",
        "64",
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("insufficient_stake"), "{out}");
    assert!(out.contains("hallmark stake"), "{out}");
    // A job against the kept network, through --devnet alone (its bonded client key).
    let (code, out) = run(&[
        "job", "submit", "--type", "fib", "--size", "64", "--wait", "--json",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"approved\""), "{out}");
    let (code, out) = run(&["compute", "list", "--json"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("tee-provider-0"), "{out}");
    // The build lane through the CLI: the devnet's counter handed in again finds its
    // verification, decided by the validators' certificate.
    let digest = std::fs::read_to_string(d.join("images/devnet-wat-image")).unwrap();
    let reference = format!("localhost/hallmark/wat@{}", digest.trim());
    let sample = hallmark_build::samples::devnet_samples(&reference)
        .unwrap()
        .remove(0);
    let (wasm, src) = (
        dir.path().join("counter.wasm"),
        dir.path().join("counter.tar.gz"),
    );
    std::fs::write(&wasm, &sample.wasm).unwrap();
    std::fs::write(&src, &sample.source).unwrap();
    let (code, out) = run(&[
        "build",
        "verify",
        wasm.to_str().unwrap(),
        "--source",
        src.to_str().unwrap(),
        "--wait",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["match"].as_str()),
        (Some("verified"), Some("exact")),
        "{v}"
    );
    assert_eq!(v["image_trust"], "trusted");
    let sha = hallmark_build::sha256_hex(&sample.wasm);
    let (code, out) = run(&["build", "status", &sha]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("VERIFIED") && out.contains("trusted"), "{out}");
    let (code, out) = run(&["build", "status", "ver-000000000000000000000000", "--json"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("\"code\":\"not_found\""), "{out}");
    // The registry: the operator (the devnet's build council, 1 of 1) names the client key a
    // build manager, which records the recipe of a counter built without meta; handed in,
    // it is verified from the registry.
    let operator = info["operator_key"].as_str().unwrap();
    let client = hallmark_node::run::load_or_create_key(&key).unwrap();
    let manager = client.public().to_ss58();
    let (code, approval) = run(&[
        "build",
        "registry",
        "approve",
        "--version",
        "1",
        "--manager",
        &manager,
        "--key",
        operator,
    ]);
    assert_eq!(code, Some(0), "{approval}");
    let approval_file = dir.path().join("approval.json");
    std::fs::write(&approval_file, approval.trim()).unwrap();
    let (code, out) = run(&[
        "build",
        "registry",
        "set-managers",
        "--version",
        "1",
        "--manager",
        &manager,
        "--approval",
        approval_file.to_str().unwrap(),
        "--key",
        operator,
    ]);
    assert_eq!(code, Some(0), "{out}");
    let plain_wasm = dir.path().join("plain.wasm");
    let plain =
        hallmark_build::samples::wat2wasm(hallmark_build::samples::COUNTER_WAT, &[]).unwrap();
    std::fs::write(&plain_wasm, &plain).unwrap();
    let plain_sha = hallmark_build::sha256_hex(&plain);
    let recipe_file = dir.path().join("recipe.json");
    let recipe = serde_json::json!({"image": reference, "source_sha256": sample.source_sha256});
    std::fs::write(&recipe_file, recipe.to_string()).unwrap();
    let (code, out) = run(&[
        "build",
        "registry",
        "set",
        &plain_sha,
        "--recipe",
        recipe_file.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&["build", "registry", "show", &plain_sha, "--json"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&manager), "{out}");
    let (code, out) = run(&[
        "build",
        "verify",
        plain_wasm.to_str().unwrap(),
        "--wait",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["recipe_source"].as_str(), v["match"].as_str()),
        (Some("registry"), Some("exact")),
        "{v}"
    );

    check_mcp(&d, &plain_sha);
    check_dashboard(&info);
    check_openapi(&info);
    check_trace_exports(&d, dir.path(), &run);
    check_readiness(&run);

    // Two validators' eval reports for the devnet's eval round: identical, so bisect says so;
    // a falsified task in one of them is found, re-executed from the coordinator's archive,
    // and the falsified report named.
    let plain = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hallmark"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let vals: Vec<&str> = info["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    let (ra, rb) = (dir.path().join("a.json"), dir.path().join("b.json"));
    for (url, path) in [(vals[0], &ra), (vals[1], &rb)] {
        let (code, out) = plain(&[
            "eval",
            "report",
            "--validator",
            url,
            "eval-round-000001",
            "-o",
            path.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(0), "{out}");
    }
    let bisect = |b: &std::path::Path| {
        plain(&[
            "eval",
            "bisect",
            ra.to_str().unwrap(),
            b.to_str().unwrap(),
            "--coordinator",
            info["coordinator"].as_str().unwrap(),
            "--json",
        ])
    };
    let (code, out) = bisect(&rb);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(r#""identical":true"#), "{out}");
    let mut forged: Value = serde_json::from_slice(&std::fs::read(&rb).unwrap()).unwrap();
    let members = forged["report"]["members"].as_array_mut().unwrap();
    let m = members
        .iter_mut()
        .find(|m| m["records"].as_array().is_some_and(|r| r.len() > 2))
        .expect("a member with task records");
    let fuel = m["records"][2]["fuel"].as_u64().unwrap();
    m["records"][2]["fuel"] = (fuel + 1).into();
    let rc = dir.path().join("c.json");
    std::fs::write(&rc, serde_json::to_vec(&forged).unwrap()).unwrap();
    let (code, out) = bisect(&rc);
    assert_eq!(code, Some(1), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["difference"]["kind"], "task", "{v}");
    assert_eq!(v["difference"]["task"], 2, "{v}");
    assert_eq!(v["wrong"], "b", "{v}");
    assert_eq!(v["replayed"]["fuel"], fuel, "{v}");

    // SIGTERM: every node stops, the JSON output was printed, the file is gone.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", out.status);
    let v: Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    check_rounds(&v, 1, 3);
    assert!(!file.exists(), "devnet.json outlived the devnet");
    let (code, out) = run(&["compute", "list"]);
    assert_ne!(code, Some(0));
    assert!(out.contains("devnet_unavailable"), "{out}");
}

/// The whole network on PostgreSQL (`--store`): rounds, jobs, builds and the eval round as on
/// SQLite, every node's tables in its own schema, and no SQLite file anywhere. The devnet's
/// faults run here too: ledger replica 1 is SIGKILLed and restarted (it catches up to the
/// others' roots), a byzantine replica is refused, and validator-0 is restarted mid-run with
/// its archives byte for byte (the byzantine replica has its own PostgreSQL test). Runs where `HALLMARK_TEST_DATABASE_URL` names a server
/// (`.ci/run` starts one and requires it).
#[test]
fn a_whole_devnet_runs_on_postgres() {
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let v = devnet(
        dir.path(),
        &[
            "--rounds",
            "2",
            "--kill-replica",
            "1",
            "--restart-validator",
            "--store",
            &url,
        ],
    );
    check_rounds(&v, 2, 3);
    check_builds(&v);
    check_replicas(&v, 4, Some(1), None);
    let restart = &v["restart"];
    assert_eq!(restart["byte_identical"], true, "{restart}");
    assert!(
        restart["archives_checked"].as_u64().unwrap() >= 1,
        "{restart}"
    );
    assert_eq!(v["store"]["backend"], "postgres", "{}", v["store"]);
    assert!(
        !v["store"]["url"].as_str().unwrap().contains(":hallmark@"),
        "the password is shown: {}",
        v["store"]
    );
    let jobs = v["jobs"].as_array().unwrap();
    assert!(!jobs.is_empty());
    assert!(jobs.iter().all(|j| j["status"] == "approved"), "{jobs:?}");
    // No node fell back to SQLite.
    let sqlite: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sqlite"))
        .collect();
    assert!(
        sqlite.is_empty(),
        "SQLite files on a PostgreSQL devnet: {sqlite:?}"
    );
    // The tables are where the report says: the coordinator's jobs and the ledger's chain.
    let prefix = v["store"]["schema_prefix"].as_str().unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let coord = hallmark_store::Store::open_postgres(&url, &format!("{prefix}_coordinator"))
            .await
            .unwrap();
        // The stark jobs, and the attestation and build jobs beside them.
        let approved = coord.count_jobs("approved").await.unwrap() as usize;
        assert!(approved > jobs.len(), "{approved} approved jobs");
        let ledger = hallmark_store::Store::open_postgres(&url, &format!("{prefix}_ledger"))
            .await
            .unwrap();
        let (height, _) = ledger.ledger_head().await.unwrap().unwrap();
        assert!(height > 10, "ledger height {height}");
    });
}

/// A CLI command run with `--devnet`: its exit code and everything it printed.
type RunWithDevnet<'a> = dyn Fn(&[&str]) -> (Option<i32>, String) + 'a;

/// Validator-0's traces, exported public and private through `--devnet`: the public file holds
/// none of the devnet's secret keys, no worker's key, no raw input bytes and no check detail,
/// and every record names what it withheld; the private export needs the operator's coldkey.
fn check_trace_exports(d: &std::path::Path, scratch: &std::path::Path, run: &RunWithDevnet<'_>) {
    let (public, private) = (scratch.join("public.jsonl"), scratch.join("private.jsonl"));
    let (code, out) = run(&[
        "traces",
        "export",
        "--public",
        "--out",
        public.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&[
        "traces",
        "export",
        "--private",
        "--out",
        private.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let text = std::fs::read_to_string(&public).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kept: Vec<Value> = std::fs::read_to_string(&private)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!records.is_empty() && kept.len() >= records.len());
    let lanes: std::collections::BTreeSet<&str> = records
        .iter()
        .map(|r| r["trace"]["lane"].as_str().unwrap())
        .collect();
    for lane in ["sat", "stark"] {
        assert!(lanes.contains(lane), "no {lane} traces: {lanes:?}");
    }
    for r in &records {
        let w = r["trace"]["withheld"].as_array().unwrap();
        assert!(w.iter().any(|f| f == "party"), "{r}");
        assert!(r["trace"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("detail").is_none()));
    }
    // Every secret the devnet holds: its key files (hex seeds), the workers' and validators'
    // hotkeys as seeds and as public keys.
    let mut secrets: Vec<String> = Vec::new();
    for e in walk(d) {
        let name = e.file_name().unwrap().to_string_lossy().into_owned();
        if e.parent().is_some_and(|p| p.ends_with("keys")) || name == "hotkey" {
            let seed = std::fs::read_to_string(&e).unwrap().trim().to_string();
            if let Ok(k) = hallmark_core::Keypair::from_seed_hex(&seed) {
                secrets.push(k.public().to_ss58());
                secrets.push(hex::encode(k.public().as_bytes()));
            }
            secrets.push(seed);
        }
    }
    assert!(secrets.len() > 10, "{secrets:?}");
    // The raw inputs and the check details the private traces hold.
    for t in &kept {
        for i in t["trace"]["inputs"].as_array().unwrap() {
            if let Some(b) = i["bytes_b64"].as_str() {
                secrets.push(b.to_string());
            }
        }
        for c in t["trace"]["verdict"]["checks"].as_array().unwrap() {
            let detail = c["detail"].as_str().unwrap();
            if detail.len() >= 24 {
                secrets.push(detail.to_string());
            }
        }
    }
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "the public export holds {s:?}");
    }
    // Someone else's key is not the operator's.
    let stranger = scratch.join("stranger.key");
    hallmark_node::run::load_or_create_key(&stranger).unwrap();
    let (code, out) = run(&[
        "traces",
        "export",
        "--private",
        "--key",
        stranger.to_str().unwrap(),
        "--out",
        scratch.join("x.jsonl").to_str().unwrap(),
    ]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("not_operator"), "{out}");
    assert!(!scratch.join("x.jsonl").exists());
    assert!(
        !scratch.join("x.jsonl.partial").exists(),
        "a refused export left its partial file"
    );
    check_trace_consent(d, scratch, run, &kept);
}

/// A worker signs a consent to show its key and check details: the next public export shows
/// them in that worker's traces, and only there; a revocation withholds them again; a key the
/// ledger does not list cannot record a consent.
fn check_trace_consent(
    d: &std::path::Path,
    scratch: &std::path::Path,
    run: &RunWithDevnet<'_>,
    kept: &[Value],
) {
    let hotkey = d.join("worker-0").join("hotkey");
    let worker = hallmark_node::run::load_key(&hotkey).unwrap().public();
    let ss58 = worker.to_ss58();
    let theirs = |t: &Value| t["trace"]["party"].as_str() == Some(ss58.as_str());
    assert!(
        kept.iter().any(theirs),
        "worker-0 has no traces at validator-0"
    );
    let export = |name: &str| -> Vec<Value> {
        let out_file = scratch.join(name);
        let (code, out) = run(&[
            "traces",
            "export",
            "--public",
            "--out",
            out_file.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(0), "{out}");
        std::fs::read_to_string(&out_file)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (code, out) = run(&[
        "traces",
        "consent",
        "--fields",
        "party,checks.detail",
        "--key",
        hotkey.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("log_index"), "{out}");
    let shown = export("consented.jsonl");
    let mut own = 0;
    for r in &shown {
        let t = &r["trace"];
        let withheld: Vec<&str> = t["withheld"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        if t["disclosed"]["party"].as_str() == Some(ss58.as_str()) {
            own += 1;
            assert!(
                !withheld.contains(&"party") && !withheld.contains(&"checks.detail"),
                "{r}"
            );
            // The details appear as the private trace holds them.
            let Some(private) = kept.iter().find(|k| k["id"] == r["id"]) else {
                continue; // recorded after the private export
            };
            for (c, p) in t["checks"]
                .as_array()
                .unwrap()
                .iter()
                .zip(private["trace"]["verdict"]["checks"].as_array().unwrap())
            {
                let detail = p["detail"].as_str().unwrap();
                if !detail.is_empty() {
                    assert_eq!(c["detail"].as_str(), Some(detail), "{r}");
                }
            }
        } else {
            assert!(withheld.contains(&"party"), "{r}");
            assert!(t["disclosed"].get("party").is_none(), "{r}");
        }
    }
    let theirs_kept = kept.iter().filter(|t| theirs(t)).count();
    assert!(own >= theirs_kept && own > 0, "{own} of {theirs_kept}");

    let (code, out) = run(&[
        "traces",
        "consent",
        "--revoke",
        "--key",
        hotkey.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let text = serde_json::to_string(&export("revoked.jsonl")).unwrap();
    assert!(
        !text.contains(&ss58),
        "a revoked consent still shows the party"
    );

    let stranger = scratch.join("stranger.key");
    let (code, out) = run(&[
        "traces",
        "consent",
        "--fields",
        "party",
        "--key",
        stranger.to_str().unwrap(),
    ]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("not_registered"), "{out}");
    let (code, out) = run(&[
        "traces",
        "consent",
        "--fields",
        "secret_key",
        "--key",
        hotkey.to_str().unwrap(),
    ]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("unknown_field"), "{out}");
}

/// The coordinator's dashboard in headless Chromium, driven over WebDriver (chromedriver's
/// W3C protocol, spoken with reqwest): the page loads with no console errors, shows the same
/// numbers as the API, updates by itself, and leaves a screenshot in the test output
/// directory. Skipped where Chromium or chromedriver is missing, unless
/// `HALLMARK_REQUIRE_BROWSER=1` (`.ci/run` installs both and sets it).
/// Every role's served `/openapi.json` is OpenAPI 3.1 and passes openapi-spec-validator
/// (required in CI); `tests/openapi.rs` checks the responses against them.
fn check_openapi(info: &Value) {
    let mut nodes = vec![
        (
            "coordinator",
            info["coordinator"].as_str().unwrap().to_string(),
        ),
        ("ledger", info["ledger"].as_str().unwrap().to_string()),
    ];
    for v in info["validators"].as_array().unwrap() {
        nodes.push(("validator", v.as_str().unwrap().to_string()));
    }
    for w in info["workers"].as_array().unwrap() {
        if let Some(url) = w.as_str().or_else(|| w["url"].as_str()) {
            nodes.push(("worker", url.to_string()));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let require = std::env::var("HALLMARK_REQUIRE_OPENAPI_VALIDATOR").as_deref() == Ok("1");
    let mut roles = std::collections::BTreeSet::new();
    for (i, (role, url)) in nodes.iter().enumerate() {
        let doc: Value = rt.block_on(async {
            reqwest::get(format!("{url}/openapi.json"))
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        assert_eq!(doc["openapi"], "3.1.0", "{role} at {url}");
        assert_eq!(doc["info"]["title"], format!("hallmark {role}"));
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.contains_key("/metrics") && paths.contains_key("/openapi.json"));
        roles.insert(*role);
        let file = dir.path().join(format!("{role}-{i}.json"));
        std::fs::write(&file, doc.to_string()).unwrap();
        let out = Command::new("python3")
            .args(["-m", "openapi_spec_validator"])
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if text.contains("No module named") {
            assert!(!require, "openapi-spec-validator is not installed");
            continue;
        }
        assert!(out.status.success(), "{role}'s /openapi.json: {text}");
    }
    assert!(roles.len() >= 3, "{roles:?}");
}

fn check_dashboard(info: &Value) {
    let required = std::env::var("HALLMARK_REQUIRE_BROWSER").as_deref() == Ok("1");
    let found = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| found(b));
    if chromium.is_none() || !found("chromedriver") {
        assert!(
            !required,
            "HALLMARK_REQUIRE_BROWSER=1 but chromium or chromedriver is missing"
        );
        eprintln!("skipped the dashboard check: chromium or chromedriver is not installed");
        return;
    }
    let chromium = chromium.unwrap();
    let binary = String::from_utf8(
        Command::new("sh")
            .args(["-c", &format!("command -v {chromium}")])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let page = info["dashboard"].as_str().unwrap().to_string();
    let coordinator = info["coordinator"].as_str().unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(async {
        let http = reqwest::Client::new();
        let wd = format!("http://127.0.0.1:{port}");
        let started = std::time::Instant::now();
        while http.get(format!("{wd}/status")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver never answered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,2000"]},
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let session: Value = http
            .post(format!("{wd}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sid = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_string();
        let s = format!("{wd}/session/{sid}");
        let post = |path: &str, body: Value| {
            let (http, url) = (http.clone(), format!("{s}{path}"));
            async move {
                let v: Value = http
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                v["value"].clone()
            }
        };
        post("/url", serde_json::json!({"url": page})).await;
        let script = |js: &'static str| {
            post(
                "/execute/sync",
                serde_json::json!({"script": js, "args": []}),
            )
        };
        // Wait for the first render, then for a second one (it updates by itself).
        let mut first = Value::Null;
        for _ in 0..100 {
            first = script("return document.body.getAttribute('data-generated-ms');").await;
            if first.is_string() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(first.is_string(), "the page never rendered data");
        let mut later = first.clone();
        for _ in 0..100 {
            later = script("return document.body.getAttribute('data-generated-ms');").await;
            if later != first {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_ne!(later, first, "the page did not update by itself");
        let shown = script(
            r#"const t = (id) => document.getElementById(id).textContent;
               const charts = [...document.querySelectorAll('svg.chart')];
               const sum = (a) => String(charts.reduce((s, c) => s + Number(c.getAttribute(a)), 0));
               return {validators: t('validators-count'), workers: t('workers-count'),
                       jobs: t('jobs-total'), log: t('log-size'),
                       rounds: sum('data-rounds'), series: sum('data-series'),
                       charts: charts.map((c) => c.getAttribute('data-lane')),
                       round_rows: document.querySelectorAll('#rounds tbody tr').length,
                       lines: document.querySelectorAll('svg.chart polyline').length};"#,
        )
        .await;
        let api: Value = http
            .get(format!("{coordinator}/v1/dashboard"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let logs = post("/se/log", serde_json::json!({"type": "browser"})).await;
        let shot = http
            .get(format!("{s}/screenshot"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let _ = http.delete(s.clone()).send().await;
        (shown, api, logs, shot)
    });
    let _ = driver.kill();
    let _ = driver.wait();
    let (shown, api, logs, shot) = outcome;
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["value"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG screenshot");
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&out, &png).unwrap();
    eprintln!("dashboard screenshot: {}", out.display());
    // No console errors at all (warnings and info are allowed).
    let severe: Vec<&Value> = logs
        .as_array()
        .unwrap_or_else(|| panic!("no browser log: {logs}"))
        .iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect();
    assert!(severe.is_empty(), "console errors: {severe:?}");
    // The page shows what the API says.
    let n = |v: &Value| v.as_str().unwrap().parse::<u64>().unwrap();
    assert_eq!(
        n(&shown["validators"]),
        api["validators"].as_array().unwrap().len() as u64,
        "{shown}"
    );
    assert_eq!(n(&shown["validators"]), 3);
    assert_eq!(
        n(&shown["workers"]),
        api["workers"].as_array().unwrap().len() as u64
    );
    let jobs: u64 = api["jobs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|by| by.as_object().unwrap().values())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(n(&shown["jobs"]), jobs, "{shown}");
    assert!(jobs >= 1);
    assert_eq!(n(&shown["log"]), api["log"]["size"].as_u64().unwrap());
    assert_eq!(
        shown["round_rows"].as_u64().unwrap(),
        api["rounds"].as_array().unwrap().len() as u64
    );
    let rounds_charted = n(&shown["rounds"]);
    assert_eq!(
        rounds_charted,
        api["scores"].as_array().unwrap().len() as u64
    );
    assert!(rounds_charted >= 1, "no decided round charted: {api}");
    assert_eq!(
        shown["lines"],
        shown["series"].as_str().unwrap().parse::<u64>().unwrap()
    );
    // One chart per round lane that decided a round.
    let mut lanes: Vec<&str> = api["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["lane"].as_str().unwrap())
        .collect();
    lanes.dedup();
    assert_eq!(shown["charts"], serde_json::json!(lanes), "{shown}");
}

/// Counts the progress notifications an MCP client receives.
#[derive(Clone, Default)]
struct ProgressCounter(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl rmcp::ClientHandler for ProgressCounter {
    async fn on_progress(
        &self,
        _params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A real MCP client session (rmcp's client over `hallmark mcp --devnet` as a child process):
/// every tool is listed with its schemas, and each is called against the kept devnet; user
/// failures come back as `isError` results, not protocol errors.
fn check_mcp(d: &std::path::Path, built_sha: &str) {
    use base64::Engine as _;
    use rmcp::model::CallToolRequestParams;
    use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
    use rmcp::ServiceExt;
    use serde_json::json;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let progress = ProgressCounter::default();
        let cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hallmark")).configure(|c| {
            c.arg("mcp").arg("--devnet").arg(d);
        });
        let client = progress
            .clone()
            .serve(TokioChildProcess::new(cmd).unwrap())
            .await
            .unwrap();
        let tools = client.list_all_tools().await.unwrap();
        let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "faucet_claim",
                "get_proof",
                "job_status",
                "list_workers",
                "network_stats",
                "stake",
                "submit_job",
                "verify_build",
                "verify_proof",
                "verify_receipt",
                "verify_tdx_quote",
            ]
        );
        for t in &tools {
            assert_eq!(t.input_schema["type"], "object", "{}", t.name);
            assert!(t.output_schema.is_some(), "{} has no output schema", t.name);
        }
        let submit = tools.iter().find(|t| t.name == "submit_job").unwrap();
        for arg in ["lane", "type", "size", "seed"] {
            assert!(
                submit.input_schema["properties"].get(arg).is_some(),
                "submit_job lacks {arg}"
            );
        }
        let call = |name: &'static str, args: Value| {
            let client = &client;
            async move {
                let r = client
                    .call_tool(
                        CallToolRequestParams::new(name)
                            .with_arguments(args.as_object().unwrap().clone()),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{name}: protocol error {e}"));
                let text: String = r
                    .content
                    .iter()
                    .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                    .collect();
                (r.is_error == Some(true), r.structured_content.clone(), text)
            }
        };

        let (err, stats, text) = call("network_stats", json!({})).await;
        assert!(!err, "{text}");
        let stats = stats.unwrap();
        assert_eq!(stats["validators"].as_u64(), Some(3), "{stats}");
        assert!(stats["workers"].as_u64().unwrap() >= 2, "{stats}");
        assert!(stats["jobs"]["approved"].as_u64().unwrap() >= 1, "{stats}");
        let (err, workers, text) = call("list_workers", json!({})).await;
        assert!(!err, "{text}");
        assert_eq!(
            workers.unwrap()["workers"].as_array().unwrap().len() as u64,
            stats["workers"].as_u64().unwrap()
        );

        let fresh = hallmark_core::Keypair::generate().public().to_ss58();
        let (err, drip, text) = call("faucet_claim", json!({"address": fresh})).await;
        assert!(!err, "{text}");
        assert_eq!(drip.unwrap()["address"], fresh.as_str());
        let (err, _, text) = call("faucet_claim", json!({"address": fresh})).await;
        assert!(err && text.contains("rate_limited"), "{text}");
        let (err, staked, text) = call("stake", json!({"amount": 10, "tier": "cpu"})).await;
        assert!(!err, "{text}");
        assert!(staked.unwrap()["tx_seq"].as_u64().unwrap() > 0);
        let (err, _, text) = call("stake", json!({"amount": 10, "tier": "tpu"})).await;
        assert!(err, "{text}");

        let seed = "ab".repeat(32);
        let (err, job, text) = call(
            "submit_job",
            json!({"lane": "stark", "type": "fib", "size": 16, "seed": seed}),
        )
        .await;
        assert!(!err, "{text}");
        let job_id = job.unwrap()["job_id"].as_str().unwrap().to_string();
        let (err, _, text) = call(
            "submit_job",
            json!({"lane": "stark", "type": "fib", "size": 0}),
        )
        .await;
        assert!(err && text.contains("invalid_spec"), "{text}");
        let (err, status, text) = call("job_status", json!({"job_id": job_id})).await;
        assert!(!err, "{text}");
        assert_eq!(status.unwrap()["job_id"], job_id.as_str());
        let before = progress.0.load(std::sync::atomic::Ordering::SeqCst);
        let (err, proof, text) = call("get_proof", json!({"job_id": job_id})).await;
        assert!(!err, "{text}");
        let proof = proof.unwrap();
        assert_eq!(proof["job"]["status"], "approved", "{proof}");
        assert!(
            progress.0.load(std::sync::atomic::Ordering::SeqCst) > before,
            "get_proof sent no progress"
        );
        let b64 = proof["proof_base64"].as_str().unwrap().to_string();
        let (err, verdict, text) = call(
            "verify_proof",
            json!({"proof_base64": b64, "type": "fib", "size": 16, "seed": seed}),
        )
        .await;
        assert!(!err, "{text}");
        assert_eq!(verdict.unwrap()["matched_job"], true);
        // The same proof for another seed, and a corrupted package: error results.
        let (err, _, text) = call(
            "verify_proof",
            json!({"proof_base64": b64, "type": "fib", "size": 16, "seed": "cd".repeat(32)}),
        )
        .await;
        assert!(err && text.contains("invalid proof"), "{text}");
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        let bad = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let (err, _, text) = call("verify_proof", json!({"proof_base64": bad})).await;
        assert!(err, "{text}");

        // A validator's round-result receipt from its feed verifies; tampered, it does not.
        let info: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("devnet.json")).unwrap()).unwrap();
        let v0 = info["validators"][0].as_str().unwrap();
        let feed: Value = hallmark_node::NodeClient::new(v0)
            .get("/v1/feed?kind=round_result&limit=1")
            .await
            .unwrap();
        let item = &feed["items"][0];
        let receipt = json!({"statement": item["statement"], "log": item["log"]});
        let (err, rv, text) = call("verify_receipt", json!({"receipt": receipt})).await;
        assert!(!err, "{text}");
        assert_eq!(rv.unwrap()["valid"], true);
        let mut tampered = receipt.clone();
        tampered["log"]["tree_size"] = json!(item["log"]["tree_size"].as_u64().unwrap() + 1);
        let (err, _, text) = call("verify_receipt", json!({"receipt": tampered})).await;
        assert!(err && text.contains("invalid receipt"), "{text}");

        // Intel's real TDX quote at its capture time; without collateral, an error result.
        let quote = std::fs::read(testdata().join("tdx/tdx_quote")).unwrap();
        let collateral: Value = serde_json::from_slice(
            &std::fs::read(testdata().join("tdx/tdx_quote_collateral.json")).unwrap(),
        )
        .unwrap();
        let q64 = base64::engine::general_purpose::STANDARD.encode(&quote);
        let (err, qv, text) = call(
            "verify_tdx_quote",
            json!({"quote_base64": q64, "collateral": collateral, "now": 1_752_919_234u64}),
        )
        .await;
        // The default policy bounds collateral age; at the capture time it is fresh.
        assert!(!err, "{text}");
        assert_eq!(qv.unwrap()["summary"]["status"], "UpToDate");
        let (err, _, text) = call("verify_tdx_quote", json!({"quote_base64": q64})).await;
        assert!(err && text.contains("collateral_missing"), "{text}");

        let (err, build, text) = call("verify_build", json!({"wasm_sha256": built_sha})).await;
        assert!(!err, "{text}");
        assert!(build.unwrap().to_string().contains("verified"), "{text}");
        let (err, _, text) = call("verify_build", json!({"wasm_sha256": "zz"})).await;
        assert!(err && text.contains("invalid_sha256"), "{text}");

        // Arguments that break the schema are refused with the reason (rmcp answers them as
        // an error result, so a model can correct its call).
        let (err, _, text) = call("job_status", json!({"nope": 1})).await;
        assert!(err && text.contains("job_id"), "{text}");
        client.cancel().await.unwrap();
    });
}

/// The real evidence the validators' self-tests read (never copied into the repository).
fn testdata() -> std::path::PathBuf {
    std::env::var_os("HALLMARK_TESTDATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
        })
}

/// Readiness of the kept devnet, computed from its live nodes: controlled-v0 is READY with
/// every required gate holding and the real-hardware gates deferred; full is NOT READY because
/// the devnet's TEE evidence is simulated, and says so; `--require-ready` exits accordingly.
fn check_readiness(run: &RunWithDevnet<'_>) {
    let (code, out) = run(&[
        "readiness",
        "--profile",
        "controlled-v0",
        "--json",
        "--require-ready",
    ]);
    assert_eq!(code, Some(0), "{out}");
    // The JSON report on stdout comes first; anything after it is stderr.
    let first_json = |out: &str| -> Value {
        serde_json::Deserializer::from_str(out)
            .into_iter::<Value>()
            .next()
            .unwrap()
            .unwrap()
    };
    let r = first_json(&out);
    assert_eq!(
        (r["ready"].as_bool(), r["score"].as_u64()),
        (Some(true), Some(100)),
        "{r:#}"
    );
    let gates = |r: &Value, status: &str| -> Vec<String> {
        r["gates"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["status"] == status)
            .map(|g| g["id"].as_str().unwrap().to_string())
            .collect()
    };
    for g in [
        "nodes_answering",
        "lanes_enabled",
        "verifier_self_tests",
        "consensus_quorum",
        "log_consistency",
    ] {
        assert!(gates(&r, "pass").contains(&g.to_string()), "{g}: {r:#}");
    }
    assert_eq!(
        gates(&r, "deferred"),
        [
            "tee_real_hardware",
            "provider_listing_certified",
            "health_and_usage_receipts"
        ]
    );
    // The self-tests ran on the real evidence: Intel's quote and NVIDIA's token were accepted.
    let selftest = r["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == "verifier_self_tests")
        .unwrap()
        .to_string();
    for check in [
        "tdx_quote_accepted",
        "nvidia_token_accepted",
        "soroban_meta_read",
        "solved_assignment_accepted",
        "proof_accepted",
    ] {
        assert!(selftest.contains(check), "{check}: {selftest}");
    }

    let (code, out) = run(&[
        "readiness",
        "--profile",
        "full",
        "--json",
        "--require-ready",
    ]);
    assert_eq!(code, Some(1), "{out}");
    let r = first_json(&out);
    assert_eq!(r["ready"], false);
    assert!(r["score"].as_u64().unwrap() < 100);
    assert!(
        gates(&r, "fail").contains(&"tee_real_hardware".to_string()),
        "{r:#}"
    );
    assert!(r.to_string().contains("simulated"), "{r:#}");
    // Without --require-ready the report is printed and the exit is 0; the text names why.
    let (code, out) = run(&["readiness", "--profile", "full"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("NOT READY") && out.contains("tee_real_hardware"),
        "{out}"
    );
}

/// The test server's URL, or None (the test is skipped) where none is set; with
/// `HALLMARK_REQUIRE_POSTGRES=1` a missing server fails instead.
fn postgres_url() -> Option<String> {
    let url = hallmark_store::testing::server_url().unwrap();
    if url.is_none() {
        eprintln!("skipped: HALLMARK_TEST_DATABASE_URL is not set");
    }
    url
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
