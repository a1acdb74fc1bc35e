//! `hallmark bench network` against a real devnet, small: a few workers for a few seconds,
//! on SQLite and (where the test server is configured) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

fn hallmark() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hallmark"))
}

#[test]
fn bench_network_measures_a_live_devnet_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = hallmark();
    cmd.args(["bench", "network", "--workers", "6", "--validators", "3"])
        .args([
            "--duration",
            "6s",
            "--window-ms",
            "1500",
            "--json",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("HALLMARK_DATABASE_URL");
    let pg = hallmark_store::testing::server_url().unwrap();
    if let Some(url) = &pg {
        cmd.args(["--store", url]);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["goals"]["verified_per_sec"], 200.0);
    assert!(v["machine"]["cpus"].as_u64().unwrap() >= 1);
    let passes = v["passes"].as_array().unwrap();
    let backends: Vec<&str> = passes
        .iter()
        .map(|p| p["backend"].as_str().unwrap())
        .collect();
    if pg.is_some() {
        assert_eq!(backends, ["sqlite", "postgres"]);
    } else {
        assert_eq!(backends, ["sqlite"]);
    }
    for p in passes {
        let n = |k: &str| p[k].as_u64().unwrap();
        assert!(n("rounds") >= 1, "{p}");
        assert!(n("accepted") > 0, "no verified result: {p}");
        assert_eq!(
            n("submissions"),
            n("accepted") + n("rejected") + n("timed_out") + n("failed"),
            "{p}"
        );
        assert!(p["verified_per_sec"].as_f64().unwrap() > 0.0);
        let o = &p["overhead_ms"];
        let (p50, p99) = (o["p50"].as_f64().unwrap(), o["p99"].as_f64().unwrap());
        assert!(p50 > 0.0 && p50 <= p99, "{o}");
        assert!(p["health_baseline_ms"]["p50"].as_f64().unwrap() > 0.0);
        let roles: Vec<&str> = p["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        for want in ["coordinator", "ledger", "validator-0", "validator-2"] {
            assert!(roles.contains(&want), "{want} missing from {roles:?}");
        }
        assert!(p["roles"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["role"] != "store")
            .all(|r| r["peak_rss_kib"].as_u64().unwrap() > 0));
        assert_eq!(
            roles.contains(&"postgresql server"),
            p["backend"] == "postgres",
            "{roles:?}"
        );
    }
    // Every devnet it started was stopped cleanly (a stopping devnet removes its
    // devnet.json) after printing its own report.
    for b in &backends {
        let d = dir.path().join(b);
        assert!(!d.join("devnet.json").exists(), "{b}'s devnet is still up");
        let own: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("devnet.out")).unwrap()).unwrap();
        assert_eq!(own["store"]["backend"], *b);
    }
}

#[test]
fn bench_network_refuses_bad_flags_before_starting_anything() {
    for (args, want) in [
        (vec!["--duration", "0s"], "above zero"),
        (vec!["--duration", "10h"], "unit"),
        (vec!["--workers", "0"], "at least 1"),
        (vec!["--vars", "0"], "instance parameters"),
        (vec!["--store", "mysql://u:secret@h/db"], "postgres://"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = hallmark()
            .args(["bench", "network", "--data-dir"])
            .arg(dir.path())
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("secret"), "{err}");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{args:?} started something"
        );
    }
}
