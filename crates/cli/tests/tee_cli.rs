//! `hallmark verify tdx | nvidia | chain`, and `attest-upstream` + `attest-proxy` as real
//! processes talking HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn testdata(rel: &str) -> PathBuf {
    let base = std::env::var("HALLMARK_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
        });
    base.join(rel)
}

fn hallmark(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn verify_tdx_on_real_quotes() {
    let q = testdata("tdx/tdx_quote");
    let c = testdata("tdx/tdx_quote_collateral.json");
    let (code, out) = hallmark(&[
        "verify",
        "tdx",
        "--quote",
        q.to_str().unwrap(),
        "--collateral",
        c.to_str().unwrap(),
        "--now",
        "1752919234",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "UpToDate");
    assert_eq!(v["td_attributes"], "0000001000000000");
    assert_eq!(v["accepted"], true);

    let sq = testdata("tdx/sgx_quote");
    let sc = testdata("tdx/sgx_quote_collateral.json");
    let (code, out) = hallmark(&[
        "verify",
        "tdx",
        "--quote",
        sq.to_str().unwrap(),
        "--collateral",
        sc.to_str().unwrap(),
        "--now",
        "1752919234",
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "ConfigurationAndSWHardeningNeeded");
    assert_eq!(
        v["advisory_ids"],
        serde_json::json!(["INTEL-SA-00289", "INTEL-SA-00615"])
    );
    assert_eq!(v["rejection"], "tcb_status");

    // One bit of the quote flipped: rejected, the chain check named.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(&q).unwrap();
    bytes[200] ^= 0x01;
    let bad = dir.path().join("bad_quote");
    std::fs::write(&bad, &bytes).unwrap();
    let (code, out) = hallmark(&[
        "verify",
        "tdx",
        "--quote",
        bad.to_str().unwrap(),
        "--collateral",
        c.to_str().unwrap(),
        "--now",
        "1752919234",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rejected: quote_signature_chain"), "{out}");
    // Expired collateral.
    let (code, out) = hallmark(&[
        "verify",
        "tdx",
        "--quote",
        q.to_str().unwrap(),
        "--collateral",
        c.to_str().unwrap(),
        "--now",
        "1760000000",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("rejected: collateral_time_window"), "{out}");
    // Unreadable input is exit 2 with a message.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{}").unwrap();
    let (code, out) = hallmark(&[
        "verify",
        "tdx",
        "--quote",
        q.to_str().unwrap(),
        "--collateral",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("collateral"));
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "allowed_tcb_statuses = [\"UpToDat\"]\n").unwrap();
    let (code, out) = hallmark(&[
        "verify",
        "tdx",
        "--quote",
        q.to_str().unwrap(),
        "--collateral",
        c.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("unknown TCB status"));
}

#[test]
fn verify_nvidia_on_the_real_token() {
    let t = testdata("nvidia/teep_nanogpt_20260610_014905_nras_eat.json");
    let j = testdata("nvidia/teep_jwks_20260610.json");
    let nonce = "9a796732359e9324a45576a730e5a9c47bff518b8ee8bcb882d00b5b1ff6f39a";
    let base = [
        "verify",
        "nvidia",
        "--token",
        t.to_str().unwrap(),
        "--jwks",
        j.to_str().unwrap(),
        "--now",
        "1781056200",
    ];
    let (code, out) = hallmark(&[&base[..], &["--nonce", nonce, "--gpus", "1", "--json"]].concat());
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["gpus"][0]["hwmodel"], "GH100");
    let (code, out) = hallmark(&[&base[..], &["--nonce", nonce, "--gpus", "2"]].concat());
    assert_eq!(code, 1);
    assert!(out.contains("rejected: gpu_capacity"), "{out}");
    let (code, out) = hallmark(&[&base[..], &["--nonce", &"00".repeat(32)]].concat());
    assert_eq!(code, 1);
    assert!(out.contains("rejected: eat_nonce"), "{out}");
    let (code, _) = hallmark(&[&base[..], &["--nonce", "not-hex"]].concat());
    assert_eq!(code, 2);
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split(' ').nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n")?.1.to_string();
    // Chunked bodies: keep the JSON between the first '{' and the last '}'.
    let start = body.find('{')?;
    let end = body.rfind('}')?;
    Some((status, body[start..=end].to_string()))
}

fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some((200, _)) = http_get(port, "/v1/health") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("port {port} never became healthy");
}

/// A simulated upstream (with `upstream_args`) and a devnet-profile proxy in front of it, as
/// processes; both healthy on return. Returns the proxy's port; both die with the guards.
fn start_network(dir: &std::path::Path, upstream_args: &[&str]) -> (Killed, Killed, u16) {
    let (up, px) = (free_port(), free_port());
    let upstream = Killed(
        Command::new(env!("CARGO_BIN_EXE_hallmark"))
            .args([
                "attest-upstream",
                "--simulated",
                "--listen",
                &format!("127.0.0.1:{up}"),
                "--model",
                "m",
            ])
            .args(upstream_args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let cfg = dir.join("proxy.toml");
    std::fs::write(&cfg, format!("key_file = {:?}\n", dir.join("proxy.key"))).unwrap();
    let proxy = Killed(
        Command::new(env!("CARGO_BIN_EXE_hallmark"))
            .args([
                "attest-proxy",
                "--listen",
                &format!("127.0.0.1:{px}"),
                "--profile",
                "devnet",
            ])
            .args([
                "--upstream",
                &format!("http://127.0.0.1:{up}"),
                "--config",
                cfg.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_healthy(up);
    wait_healthy(px);
    (upstream, proxy, px)
}

/// With no configuration, the proxy keeps its key and receipt log under
/// `.hallmark/attest-proxy`, never loose in the current directory.
#[test]
fn proxy_writes_into_its_data_dir_not_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let px = free_port();
    let _proxy = Killed(
        Command::new(env!("CARGO_BIN_EXE_hallmark"))
            .current_dir(dir.path())
            .args([
                "attest-proxy",
                "--listen",
                &format!("127.0.0.1:{px}"),
                "--profile",
                "devnet",
                "--upstream",
                "http://127.0.0.1:1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_healthy(px);
    let top: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        top,
        [".hallmark"],
        "the proxy wrote into the current directory"
    );
    let data = dir.path().join(".hallmark/attest-proxy");
    assert!(data.join("attest-proxy.key").exists());
    assert!(data.join("attest-proxy.sqlite").exists());
}

#[test]
fn proxy_and_upstream_processes_and_offline_receipt_check() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, _px, px) = start_network(
        dir.path(),
        &[
            "--instances",
            "3",
            "--gpus",
            "2",
            "--misbehave",
            "2:stale_tcb",
        ],
    );

    // Instance 2 is stale: the chain fails with per-instance results and a signed receipt.
    let (status, body) = http_get(
        px,
        "/v1/attestation/chain?model=m&nonce=process-test-nonce-0001&signing_algo=ed25519",
    )
    .unwrap();
    assert_eq!(status, 502, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "chutes_verification_failed");
    let results = v["error"]["details"]["instance_results"]
        .as_array()
        .unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[2]["tdx_status"], "OutOfDate");
    assert_eq!(results[0]["errors"], serde_json::json!([]));
    // The refusal's receipt is the first leaf of the proxy's log (SQLite beside its key).
    assert_eq!(v["error"]["details"]["receipt_log_index"], 0);
    let (status, leaf) = http_get(px, "/v1/log/entries/0").unwrap();
    assert_eq!(status, 200, "{leaf}");
    assert!(leaf.contains("attestation_receipt"));
    assert!(dir.path().join("attest-proxy.sqlite").exists());
    let failed = dir.path().join("failed.json");
    std::fs::write(&failed, serde_json::to_vec(&v["error"]["details"]).unwrap()).unwrap();
    let (code, out) = hallmark(&["verify", "chain", "--receipt", failed.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rejected: chain_verified"), "{out}");

    // Passthrough hands the evidence through with the binding.
    let (status, body) = http_get(
        px,
        "/v1/attestation/chain?model=m&nonce=process-test-nonce-0001&verify_mode=passthrough",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["upstream"]["attestation_sha256"].as_str().unwrap().len(),
        64
    );
    assert!(v["binding_proof"]["report_data"].is_string(), "{v}");

    // Bad nonce: 400 with a code.
    let (status, body) = http_get(px, "/v1/attestation/chain?model=m&nonce=short").unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("invalid_nonce"));
}

#[test]
fn verified_receipt_round_trips_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, _px, px) = start_network(dir.path(), &["--instances", "2"]);
    let (status, body) = http_get(
        px,
        "/v1/attestation/chain?model=m&nonce=process-test-nonce-0002",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let mut v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let address = v["verification_receipt"]["payload"]["signing_address"]
        .as_str()
        .unwrap()
        .to_string();
    let file = dir.path().join("response.json");
    std::fs::write(&file, &body).unwrap();
    let (code, out) = hallmark(&[
        "verify",
        "chain",
        "--receipt",
        file.to_str().unwrap(),
        "--pubkey",
        &address,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("receipt accepted"));
    let path = file.to_str().unwrap();
    let (code, out) = hallmark(&[
        "verify",
        "chain",
        "--receipt",
        path,
        "--nonce",
        "process-test-nonce-0002",
        "--model",
        "m",
    ]);
    assert_eq!(code, 0, "{out}");
    // A genuine receipt for another nonce or model: a replay, refused by name.
    for (flag, value, check) in [
        ("--nonce", "process-test-nonce-9999", "nonce_expected"),
        ("--model", "another-model", "model_expected"),
    ] {
        let (code, out) = hallmark(&["verify", "chain", "--receipt", path, flag, value]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&format!("rejected: {check}")), "{out}");
    }
    // The response's unsigned nonce or model told differently from the signed payload.
    for (field, value) in [
        ("nonce", "process-test-nonce-9999"),
        ("model", "another-model"),
    ] {
        let mut lying = v.clone();
        lying[field] = value.into();
        std::fs::write(&file, serde_json::to_vec(&lying).unwrap()).unwrap();
        let (code, out) = hallmark(&["verify", "chain", "--receipt", path]);
        assert_eq!(code, 1, "{field}: {out}");
        assert!(out.contains("rejected: response_matches_receipt"), "{out}");
    }
    // Change one character of the nonce inside the signed payload: rejected.
    v["verification_receipt"]["payload"]["nonce"] = "process-test-nonce-0003".into();
    std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    let (code, out) = hallmark(&["verify", "chain", "--receipt", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rejected: receipt_signature"), "{out}");
}

/// Starts `hallmark node --role ROLE` on a config file; healthy on return.
fn node(dir: &std::path::Path, role: &str, port: u16, body: &str) -> Killed {
    let cfg = dir.join(format!("{role}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "name = \"{role}\"\nlisten = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n{body}\n[lanes.tee]\nprofile = \"devnet\"\n",
            dir.join(role)
        ),
    )
    .unwrap();
    let child = Killed(
        Command::new(env!("CARGO_BIN_EXE_hallmark"))
            .args(["node", "--role", role, "--config", cfg.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_healthy(port);
    child
}

#[test]
fn compute_register_list_claim_release_against_node_processes() {
    // A ledger, a coordinator and one validator (all the stake) as processes: the provider's
    // evidence is listed only on the validator's certificate.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cold = hallmark_core::Keypair::from_seed_hex(&"33".repeat(32)).unwrap();
    std::fs::write(d.join("cold.key"), "33".repeat(32)).unwrap();
    let coord_key = hallmark_core::Keypair::from_seed_hex(&"22".repeat(32)).unwrap();
    std::fs::write(d.join("coord.key"), "22".repeat(32)).unwrap();
    let (lp, port, vp) = (free_port(), free_port(), free_port());
    let _ledger = node(
        d,
        "ledger",
        lp,
        &format!(
            "[ledger]\nstake_epoch_secs = 0\n[[ledger.genesis]]\naccount = \"{}\"\nbalance = 1000000\n",
            cold.public()
        ),
    );
    let network = |extra: &str| {
        format!(
            "key_file = {:?}\n[network]\nledger_url = \"http://127.0.0.1:{lp}\"\ncoordinator_url = \"http://127.0.0.1:{port}\"\ncoordinator_hotkey = \"{}\"\n{extra}",
            d.join("coord.key"),
            coord_key.public()
        )
    };
    // Clients here are keys with no stake; the stake gate has its own test (node jobs.rs).
    let _coord = node(
        d,
        "coordinator",
        port,
        &network("[coordinator.clients]\nmin_stake = 0\n"),
    );
    let _validator = node(
        d,
        "validator",
        vp,
        &network(&format!(
            "coldkey_file = {:?}\nstake = 10000\n",
            d.join("cold.key")
        ))
        .replacen(&format!("key_file = {:?}\n", d.join("coord.key")), "", 1),
    );
    let url = format!("http://127.0.0.1:{port}");
    let key = dir.path().join("provider.key");
    let key = key.to_str().unwrap();
    let register = |node: &str, extra: &[&str]| {
        let mut args = vec![
            "compute",
            "register",
            "--coordinator",
            &url,
            "--key",
            key,
            "--node-id",
            node,
            "--gpus",
            "2",
        ];
        args.extend_from_slice(extra);
        hallmark(&args)
    };
    let (code, out) = register("box-1", &["--simulated"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("box-1: listed") && out.contains("approved") && out.contains("1 signed votes"),
        "{out}"
    );
    let (code, out) = register("box-2", &["--simulated", "--misbehave", "debug", "--json"]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["listed"], false, "{out}");
    assert_eq!(v["status"], "rejected", "{out}");
    assert_eq!(v["passed_two_thirds"], false, "{out}");
    let (code, out) = register("box-3", &[]);
    assert_eq!(code, 1);
    assert!(out.contains("only --simulated"), "{out}");
    let (code, out) = register("box-3", &["--simulated", "--misbehave", "nonsense"]);
    assert_eq!(code, 1);
    assert!(out.contains("unknown defect"), "{out}");

    let (code, out) = hallmark(&["compute", "list", "--coordinator", &url, "--json"]);
    assert_eq!(code, 0, "{out}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["node_id"], "box-1");

    let client = dir.path().join("client.key");
    std::fs::write(&client, "11".repeat(32)).unwrap();
    let client = client.to_str().unwrap();
    let (code, out) = hallmark(&[
        "compute",
        "claim",
        "--coordinator",
        &url,
        "--key",
        client,
        "--node-id",
        "box-1",
        "--lease-secs",
        "60",
    ]);
    assert_eq!(code, 0, "{out}");
    let env: hallmark_core::Envelope = serde_json::from_str(&out).unwrap();
    let (_, payload) = env.verify_untyped().unwrap();
    let grant: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let claim_id = grant["claim_id"].as_str().unwrap();
    // A second claim is refused while the first holds.
    let (code, out) = hallmark(&[
        "compute",
        "claim",
        "--coordinator",
        &url,
        "--key",
        key,
        "--node-id",
        "box-1",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("already_claimed"), "{out}");
    let (code, out) = hallmark(&[
        "compute",
        "release",
        "--coordinator",
        &url,
        "--key",
        client,
        "--node-id",
        "box-1",
        "--claim-id",
        claim_id,
        "--gpu-seconds",
        "2",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("application/vnd.hallmark.compute-usage+json"),
        "{out}"
    );
}
