//! A worker's whole life with the `hallmark` CLI alone, against a network on real HTTP (the
//! ledger, coordinator and validators in process; the worker as its own `hallmark worker
//! start` process): wallet → faucet → stake → register → job → approved → encrypted credit →
//! decrypt → withdraw, with the public and the private balance checked at each step, and the
//! refusals a user can hit on the way (rate limit, replayed claim, over-withdrawal, wrong
//! password, corrupted keystore).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{args as a, cfg, hallmark};
use std::time::Duration;

use hallmark_core::Keypair;
use hallmark_node::config::{GenesisBalance, RoleName};
use hallmark_node::run::{run_node, write_secret};
use serde_json::Value;

/// Runs `hallmark` and parses its `--json` output; panics with stderr on failure.
async fn ok_json(args: Vec<String>) -> Value {
    let out = hallmark(args.clone()).await;
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `words` with the wallet's keystore and password file and the ledger's URL.
fn wallet_cmd(words: &[&str], keystore: &Path, password: &Path, ledger: &str) -> Vec<String> {
    let mut v = a(words);
    v.extend(a(&[
        "--keystore",
        keystore.to_str().unwrap(),
        "--password-file",
        password.to_str().unwrap(),
        "--ledger",
        ledger,
    ]));
    v
}

/// Runs `hallmark`, expects exit 1, returns stderr.
async fn refused(args: Vec<String>) -> String {
    let out = hallmark(args.clone()).await;
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_goes_from_nothing_to_paid_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let coldkey = Keypair::generate();
    let coldkey_file = d.join("coldkey");
    write_secret(&coldkey_file, &coldkey.seed_hex()).unwrap();
    let faucet = Keypair::generate();
    let faucet_file = d.join("faucet.key");
    write_secret(&faucet_file, &faucet.seed_hex()).unwrap();

    let mut c = cfg(d, "ledger");
    c.ledger.genesis = vec![
        GenesisBalance {
            account: coldkey.public(),
            balance: 1_000_000,
        },
        GenesisBalance {
            account: faucet.public(),
            balance: 1_000_000,
        },
    ];
    c.ledger.faucet.key_file = Some(faucet_file);
    c.ledger.faucet.amount = 10_000;
    c.ledger.job_reward = 100;
    let ledger = run_node(RoleName::Ledger, &c).await.unwrap();
    let mut c = cfg(d, "coordinator");
    c.network.ledger_url = ledger.url();
    c.coordinator.jobs.settle_poll_ms = 100;
    // Clients here are fresh keys: the stake gate has its own test (jobs.rs).
    c.coordinator.clients.min_stake = 0;
    let coordinator = run_node(RoleName::Coordinator, &c).await.unwrap();
    let mut validators = Vec::new();
    for i in 0..3 {
        let mut c = cfg(d, &format!("validator-{i}"));
        c.network.ledger_url = ledger.url();
        c.network.coordinator_url = coordinator.url();
        c.network.coordinator_hotkey = Some(coordinator.hotkey);
        c.network.coldkey_file = Some(coldkey_file.clone());
        c.network.stake = 5_000;
        c.validator.poll_ms = 50;
        validators.push(run_node(RoleName::Validator, &c).await.unwrap());
    }
    let l = ledger.url();
    let coord = coordinator.url();

    // 1. Wallet.
    let keystore = d.join("wallet.json");
    let password = d.join("password");
    std::fs::write(&password, "correct horse battery\n").unwrap();
    let created = ok_json(a(&[
        "wallet",
        "create",
        "--keystore",
        keystore.to_str().unwrap(),
        "--password-file",
        password.to_str().unwrap(),
        "--json",
    ]))
    .await;
    let cold = created["coldkey"].as_str().unwrap().to_string();
    let hot = created["hotkey"].as_str().unwrap().to_string();
    let cmd = |words: &[&str]| {
        let mut v = wallet_cmd(words, &keystore, &password, &l);
        v.push("--json".into());
        v
    };

    // 2. Faucet: 0 -> 10 000; a second drip is rate-limited.
    let drip = ok_json(cmd(&["faucet"])).await;
    assert_eq!(drip["address"], cold.as_str());
    assert_eq!(
        (drip["balance_before"].as_u64(), drip["balance"].as_u64()),
        (Some(0), Some(10_000))
    );
    let again = refused(cmd(&["faucet"])).await;
    assert!(again.contains("rate_limited"), "{again}");

    // 3. Stake 500 in the cpu tier: public 10 000 -> 9 500, bonded but not registered.
    let staked = ok_json(cmd(&["stake", "--amount", "500", "--tier", "cpu"])).await;
    assert_eq!(staked["balance"], 9_500);
    assert_eq!(
        (staked["pending"].as_u64(), staked["staked"].as_u64()),
        (Some(500), Some(0))
    );
    let locked = refused(cmd(&["unstake", "--amount", "1"])).await;
    assert!(locked.contains("stake_locked"), "{locked}");
    let bad_tier = refused(cmd(&["stake", "--amount", "5", "--tier", "tpu"])).await;
    assert!(bad_tier.contains("unknown tier"), "{bad_tier}");

    // 4. Register: the bonded 500 becomes the worker's stake; the payment key opens a
    // private balance of 0.
    let reg = ok_json(cmd(&["worker", "register"])).await;
    assert_eq!(
        (reg["stake"].as_u64(), reg["tier"].as_str()),
        (Some(500), Some("cpu"))
    );
    let bal = ok_json(cmd(&["payments", "balance"])).await;
    assert_eq!(
        (
            bal["private_balance"].as_u64(),
            bal["public_balance"].as_u64()
        ),
        (Some(0), Some(9_500))
    );

    // 5. Start the worker as its own process; it serves, beats and proves.
    let worker_dir = d.join("worker");
    std::fs::create_dir_all(&worker_dir).unwrap();
    let worker_cfg = worker_dir.join("config.toml");
    std::fs::write(&worker_cfg, "[worker]\npoll_ms = 50\n").unwrap();
    let addr_file = worker_dir.join("addr");
    let coordinator_hotkey = coordinator.hotkey.to_string();
    let mut start = wallet_cmd(&["worker", "start"], &keystore, &password, &l);
    start.extend(a(&[
        "--coordinator",
        &coord,
        "--coordinator-hotkey",
        &coordinator_hotkey,
        "--data-dir",
        worker_dir.to_str().unwrap(),
        "--config",
        worker_cfg.to_str().unwrap(),
        "--addr-file",
        addr_file.to_str().unwrap(),
    ]));
    let mut worker = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args(&start)
        .env_remove("HALLMARK_PASSWORD")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if addr_file.exists() {
            break;
        }
        assert!(
            worker.try_wait().unwrap().is_none(),
            "the worker process exited"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(addr_file.exists(), "the worker never came up");
    let status = ok_json(cmd(&["worker", "status"])).await;
    assert_eq!(status["registered"], true, "{status}");
    assert_eq!(status["active"], true, "{status}");
    assert_eq!(status["stake"], 500);
    assert!(
        status["axon"].as_str().unwrap().starts_with("http://"),
        "{status}"
    );

    // 6. A client's job, proven by this worker and approved by the validators.
    let client_key = d.join("client.key");
    let job = ok_json(a(&[
        "job",
        "submit",
        "--type",
        "fib",
        "--size",
        "256",
        "--wait",
        "--json",
        "--coordinator",
        &coord,
        "--key",
        client_key.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(job["status"], "approved", "{job}");
    assert_eq!(job["worker"], hot.as_str(), "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();

    // 7. Claim: the ledger checks the certificate and credits 100, encrypted.
    let claimed = ok_json(cmd(&[
        "payments",
        "claim",
        "--job",
        &job_id,
        "--coordinator",
        &coord,
    ]))
    .await;
    assert_eq!(
        (
            claimed["private_balance_before"].as_u64(),
            claimed["private_balance"].as_u64()
        ),
        (Some(0), Some(100))
    );
    let bal = ok_json(cmd(&["payments", "balance"])).await;
    assert_eq!(bal["private_balance"], 100);
    assert_eq!(bal["decrypted_by"], "hint");
    assert_eq!(bal["public_balance"], 9_500);
    // The ledger holds a ciphertext, not the amount.
    let account: Value = hallmark_node::NodeClient::new(&l)
        .get(&format!("/v1/ledger/confidential/{hot}"))
        .await
        .unwrap();
    let stored =
        hallmark_confidential::Ciphertext::from_hex(account["balance"].as_str().unwrap()).unwrap();
    assert_ne!(
        stored,
        hallmark_confidential::Ciphertext::zero().add_amount(100),
        "the credit must carry randomness, or anyone could read the amount"
    );
    // Replaying the claim is refused by the nullifier.
    let replay = refused(cmd(&[
        "payments",
        "claim",
        "--job",
        &job_id,
        "--coordinator",
        &coord,
    ]))
    .await;
    assert!(replay.contains("payment_replayed"), "{replay}");

    // 8. Withdraw 60: private 100 -> 40, public 9 500 -> 9 560; more than is left is refused.
    let out = ok_json(cmd(&["payments", "withdraw", "--amount", "60"])).await;
    assert_eq!(
        (
            out["private_balance"].as_u64(),
            out["public_balance"].as_u64()
        ),
        (Some(40), Some(9_560))
    );
    let over = refused(cmd(&["payments", "withdraw", "--amount", "41"])).await;
    assert!(over.contains("insufficient_private_balance"), "{over}");
    let bal = ok_json(cmd(&["payments", "balance"])).await;
    assert_eq!(
        (
            bal["private_balance"].as_u64(),
            bal["public_balance"].as_u64()
        ),
        (Some(40), Some(9_560))
    );

    // 9. A wrong password and a corrupted keystore: clear errors, nothing changes.
    let wrong = d.join("wrong");
    std::fs::write(&wrong, "not the password\n").unwrap();
    let bad = wallet_cmd(
        &["payments", "withdraw", "--amount", "1"],
        &keystore,
        &wrong,
        &l,
    );
    let e = refused(bad).await;
    assert!(e.contains("wrong_password"), "{e}");
    let corrupt = d.join("corrupt.json");
    let mut ks: Value = serde_json::from_str(&std::fs::read_to_string(&keystore).unwrap()).unwrap();
    let ct = ks["crypto"]["ciphertext"].as_str().unwrap().to_string();
    let first = if ct.starts_with('0') { "1" } else { "0" };
    let flipped = format!("{first}{}", &ct[1..]);
    ks["crypto"]["ciphertext"] = Value::String(flipped);
    std::fs::write(&corrupt, ks.to_string()).unwrap();
    let bad = wallet_cmd(&["payments", "balance"], &corrupt, &password, &l);
    let e = refused(bad).await;
    assert!(e.contains("corrupted_keystore"), "{e}");
    let bal = ok_json(cmd(&["payments", "balance"])).await;
    assert_eq!(bal["private_balance"], 40);

    let _ = worker.kill();
    let _ = worker.wait();
    for v in validators {
        v.stop().await;
    }
    coordinator.stop().await;
    ledger.stop().await;
}

/// `--log-format json`: a node's log lines on stderr are JSON objects from `tracing` (level,
/// fields, target), what a log collector ingests.
#[test]
fn a_node_logs_json_lines_with_log_format_json() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args(["--log-format", "json", "node", "--role", "ledger"])
        .env("HALLMARK_LISTEN", "127.0.0.1:0")
        .env("HALLMARK_DATA_DIR", dir.path())
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut started = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{v}");
        if v["fields"]["message"] == "node started" {
            started = Some(v);
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let v = started.expect("no `node started` line");
    assert_eq!(v["level"], "INFO");
    assert!(
        v["fields"]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{v}"
    );
}
