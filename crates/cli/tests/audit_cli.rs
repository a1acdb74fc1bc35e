//! `hallmark log …` and `hallmark consensus …` on reference data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

fn hallmark(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const LEAVES: &str =
    "\n00\n10\n2021\n3031\n40414243\n5051525354555657\n606162636465666768696a6b6c6d6e6f\n";
const ROOT8: &str = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";

#[test]
fn log_root_matches_rfc6962() {
    assert_eq!(hallmark(&["log", "root"], LEAVES).1.trim(), ROOT8);
    assert_eq!(
        hallmark(&["log", "root"], "").1.trim(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // One empty leaf.
    assert_eq!(
        hallmark(&["log", "root"], "\n").1.trim(),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    let (code, _, err) = hallmark(&["log", "root"], "zz\n");
    assert_eq!(code, 2);
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn log_proofs_hold_and_altered_ones_fail() {
    // Leaf 5 (0-based) of the 8-leaf reference tree.
    let leaf = "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658";
    let proof = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b,ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0,d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7";
    let args = |index: &str, proof: &str| -> (i32, String, String) {
        hallmark(
            &[
                "log",
                "verify-inclusion",
                "--leaf-hash",
                leaf,
                "--index",
                index,
                "--size",
                "8",
                "--root",
                ROOT8,
                "--proof",
                proof,
            ],
            "",
        )
    };
    let (code, _, err) = args("5", proof);
    assert_eq!(code, 0, "{err}");
    assert_eq!(args("4", proof).0, 1);
    assert_eq!(args("5", &proof.replace("bc1a", "bc1b")).0, 1);
    assert_eq!(args("5", "nothex").0, 2);
    let consistency = |root1: &str| {
        hallmark(
            &[
                "log", "verify-consistency", "--size1", "6", "--size2", "8", "--root1", root1, "--root2", ROOT8, "--proof",
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a,ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0,d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
            "",
        )
        .0
    };
    assert_eq!(
        consistency("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
        0
    );
    assert_eq!(
        consistency("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
        1
    );
}

#[test]
fn consensus_yuma_and_median_from_json() {
    // subtensor test_bonds, epoch 1: validators 0..3 with stake 1..4 weight servers 4..7.
    let row = "[0,0,0,0,16383,32767,49149,65535]";
    let zero = "[0,0,0,0,0,0,0,0]";
    let input = format!(
        "{{\"stake\":[1,2,3,4,0,0,0,0],\"weights\":[{row},{row},{row},{row},{zero},{zero},{zero},{zero}],\"kappa\":0.5}}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.json");
    std::fs::write(&file, &input).unwrap();
    let (code, out, err) = hallmark(
        &["consensus", "yuma", "--input", file.to_str().unwrap()],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in [
        "consensus",
        "incentive",
        "dividends",
        "bonds",
        "validator_trust",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let d = v["dividends"].as_array().unwrap();
    assert!((d[3].as_f64().unwrap() - 0.4).abs() < 1e-6);
    let (code, out, _) = hallmark(&["consensus", "median", "--input", "-"], &input);
    assert_eq!(code, 0);
    let m: Vec<f64> = serde_json::from_str(&out).unwrap();
    assert!((m[7] - 0.400008545).abs() < 1e-6 && m[0] == 0.0, "{m:?}");
    // A square matrix is neuron → neuron: self-weights are masked before the median, exactly
    // as in the full epoch (unmasked, column 0 would be 1).
    let square = "{\"stake\":[1,1,1],\"weights\":[[1,0,0],[1,0,0],[0,1,0]]}";
    let (_, out, _) = hallmark(&["consensus", "median", "--input", "-"], square);
    let m: Vec<f64> = serde_json::from_str(&out).unwrap();
    let (_, out, _) = hallmark(&["consensus", "yuma", "--input", "-"], square);
    let full: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(m[0], 0.0);
    assert_eq!(serde_json::to_value(&m).unwrap(), full["consensus"]);
    // Bad input is a clear error, exit 2.
    let (code, _, err) = hallmark(
        &["consensus", "yuma", "--input", "-"],
        "{\"stake\":[1],\"weights\":[]}",
    );
    assert_eq!(code, 2);
    assert!(err.contains("row_count_mismatch"), "{err}");
    let (code, _, err) = hallmark(
        &["consensus", "yuma", "--input", "-"],
        "{\"stake\":[1],\"weights\":[[1]],\"kappa\":2}",
    );
    assert_eq!(code, 2);
    assert!(err.contains("kappa"), "{err}");
}

/// A ledger read saved from a real ledger checks offline; an edited one or one under another
/// key does not, and garbage is bad input.
#[test]
fn verify_ledger_read_offline() {
    use hallmark_core::{Keypair, Signed};
    use hallmark_ledger::{DevnetLedger, Genesis, Ledger, LedgerParams, LedgerTx, TxBody};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let header_key = Keypair::from_seed(&[42; 32]);
    let cold = Keypair::from_seed(&[1; 32]);
    let to = Keypair::from_seed(&[2; 32]).public();
    let read = rt.block_on(async {
        let store = hallmark_store::Store::open_url("sqlite::memory:")
            .await
            .unwrap();
        let genesis = Genesis {
            chain_id: "cli-test".into(),
            balances: vec![(cold.public(), 1_000)],
        };
        let l = DevnetLedger::open(store, &genesis, LedgerParams::default(), header_key.clone())
            .await
            .unwrap();
        let tx = LedgerTx {
            chain_id: "cli-test".into(),
            nonce: 1,
            body: TxBody::Transfer { to, amount: 5 },
        };
        l.submit(Signed::sign(&tx, &cold).unwrap()).await.unwrap();
        l.read(&format!("account/{}", to.to_ss58())).await.unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("read.json");
    std::fs::write(&good, serde_json::to_string(&read).unwrap()).unwrap();
    let key = header_key.public().to_ss58();
    let path = good.to_str().unwrap();
    let (code, out, err) = hallmark(
        &[
            "verify",
            "ledger-read",
            path,
            "--ledger-key",
            &key,
            "--chain-id",
            "cli-test",
        ],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("state_proof") && out.contains("ledger read accepted"),
        "{out}"
    );

    let mut lie = read.clone();
    lie.value.as_mut().unwrap()["balance"] = serde_json::json!(5_000);
    let (code, out, _) = hallmark(
        &["verify", "ledger-read", "-", "--ledger-key", &key, "--json"],
        &serde_json::to_string(&lie).unwrap(),
    );
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rejection"], "proof_mismatch");

    let other = Keypair::from_seed(&[7; 32]).public().to_ss58();
    let (code, out, _) = hallmark(&["verify", "ledger-read", path, "--ledger-key", &other], "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("untrusted_signer"), "{out}");

    let (code, _, err) = hallmark(&["verify", "ledger-read", "-", "--ledger-key", &key], "{}");
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = hallmark(&["verify", "ledger-read", path, "--ledger-key", "nope"], "");
    assert_eq!(code, 2, "{err}");
}

/// A certified read from a real (one-validator) Malachite replica checks offline against its
/// validator set; an edited value, another set, or a set file that is not one does not.
#[test]
fn verify_certified_ledger_read_offline() {
    use hallmark_core::{Keypair, Signed};
    use hallmark_ledger::{Genesis, LedgerParams, LedgerTx, TxBody};
    use hallmark_ledger_bft::{Replica, ReplicaConfig, Tuning, Validator, ValidatorSet};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let validator = Keypair::from_seed(&[9; 32]);
    let cold = Keypair::from_seed(&[1; 32]);
    let to = Keypair::from_seed(&[2; 32]).public();
    let set = ValidatorSet::new([Validator::new(validator.public(), 10)]);
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let read = rt.block_on(async {
        let r = Replica::start(
            ReplicaConfig {
                name: "solo".into(),
                key: validator.clone(),
                home: dir.path().join("bft"),
                listen,
                peers: vec![],
                genesis: Genesis {
                    chain_id: "cli-bft".into(),
                    balances: vec![(cold.public(), 1_000)],
                },
                params: LedgerParams::default(),
                genesis_validators: set.clone(),
                tuning: Tuning::default(),
                byzantine: Default::default(),
            },
            None,
        )
        .await
        .unwrap();
        let tx = LedgerTx {
            chain_id: "cli-bft".into(),
            nonce: 1,
            body: TxBody::Transfer { to, amount: 5 },
        };
        r.submit(Signed::sign(&tx, &cold).unwrap(), false)
            .await
            .unwrap();
        let key = format!("account/{}", to.to_ss58());
        let read = loop {
            if let Some(read) = r.read(&key).await {
                if read.value.is_some() {
                    break read;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let checkpoint = r.checkpoint().await.unwrap();
        r.kill();
        (read, checkpoint)
    });
    let (read, checkpoint) = read;
    let good = dir.path().join("read.json");
    std::fs::write(&good, serde_json::to_string(&read).unwrap()).unwrap();
    let set_file = dir.path().join("set.json");
    std::fs::write(
        &set_file,
        serde_json::to_string(&serde_json::json!({"height": 1, "validators": set})).unwrap(),
    )
    .unwrap();
    let (path, set_path) = (good.to_str().unwrap(), set_file.to_str().unwrap());
    let (code, out, err) = hallmark(
        &[
            "verify",
            "ledger-read",
            path,
            "--validators",
            set_path,
            "--chain-id",
            "cli-bft",
        ],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("certificate") && out.contains("state_proof"),
        "{out}"
    );

    let mut lie = read.clone();
    lie.value.as_mut().unwrap()["balance"] = serde_json::json!(5_000);
    let (code, out, _) = hallmark(
        &[
            "verify",
            "ledger-read",
            "-",
            "--validators",
            set_path,
            "--json",
        ],
        &serde_json::to_string(&lie).unwrap(),
    );
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rejection"], "proof_mismatch");

    let other = dir.path().join("other.json");
    let other_set = ValidatorSet::new([Validator::new(Keypair::from_seed(&[8; 32]).public(), 10)]);
    std::fs::write(&other, serde_json::to_string(&other_set).unwrap()).unwrap();
    let (code, out, _) = hallmark(
        &[
            "verify",
            "ledger-read",
            path,
            "--validators",
            other.to_str().unwrap(),
            "--json",
        ],
        "",
    );
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rejection"], "unknown_signer");

    let (code, _, err) = hallmark(&["verify", "ledger-read", path, "--validators", path], "");
    assert_eq!(code, 2, "{err}");

    // The log checkpoint the validators co-signed (size and root in the decided header).
    assert!(checkpoint.header.log_size >= 1);
    let (code, out, err) = hallmark(
        &[
            "verify",
            "ledger-checkpoint",
            "-",
            "--validators",
            set_path,
            "--chain-id",
            "cli-bft",
        ],
        &serde_json::to_string(&checkpoint).unwrap(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let mut forged = checkpoint.clone();
    forged.header.log_size += 1;
    let (code, out, _) = hallmark(
        &[
            "verify",
            "ledger-checkpoint",
            "-",
            "--validators",
            set_path,
            "--json",
        ],
        &serde_json::to_string(&forged).unwrap(),
    );
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rejection"], "wrong_block");
    let (code, _, err) = hallmark(&["verify", "ledger-read", path], "");
    assert_ne!(code, 0, "{err}");
}

/// Two heads one ledger key signed at one height prove a fork; the same head twice does not.
#[test]
fn verify_ledger_fork_offline() {
    use hallmark_core::{Keypair, Signed};
    use hallmark_ledger::LedgerHeader;
    let key = Keypair::from_seed(&[42; 32]);
    let head = |root: &str| LedgerHeader {
        chain_id: "c".into(),
        seq: 7,
        tx_hash: "aa".repeat(32),
        time_ms: 1,
        state_root: root.repeat(32),
    };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, h: &LedgerHeader| {
        let p = dir.path().join(name);
        let env = Signed::sign(h, &key).unwrap().envelope().clone();
        std::fs::write(&p, serde_json::to_string(&env).unwrap()).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (a, b) = (write("a.json", &head("11")), write("b.json", &head("22")));
    let (code, out, err) = hallmark(&["verify", "ledger-fork", &a, &b], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("fork proven"), "{out}");
    let (code, out, _) = hallmark(&["verify", "ledger-fork", &a, &a], "");
    assert_eq!(code, 1);
    assert!(out.contains("consistent"), "{out}");
    let (code, _, _) = hallmark(&["verify", "ledger-fork", &a, "-"], "[]");
    assert_eq!(code, 2);
}
