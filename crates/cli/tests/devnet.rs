//! `hallmark devnet` itself, as separate processes, with small numbers.

use std::process::Command;

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
    assert_eq!(rs.len(), rounds);
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
    }
}

#[test]
fn devnet_runs_and_reruns_in_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let v = devnet(
        dir.path(),
        &["--validators", "3", "--workers", "2", "--rounds", "2"],
    );
    check_rounds(&v, 2, 3);
    assert_eq!(v["rounds"][0]["round_id"], "round-000001");
    for p in v["processes"].as_array().unwrap() {
        assert!(p["peak_rss_kib"].as_u64().unwrap() > 0);
    }
    // A second run in the same data dir continues the same network.
    let v = devnet(
        dir.path(),
        &["--validators", "3", "--workers", "2", "--rounds", "1"],
    );
    check_rounds(&v, 1, 3);
    assert_eq!(v["rounds"][0]["round_id"], "round-000003");
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

#[test]
fn devnet_refuses_bad_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args(["devnet", "--validators", "2", "--byzantine", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--byzantine"));
}
