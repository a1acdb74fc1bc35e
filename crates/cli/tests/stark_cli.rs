//! `hallmark stark …` as a user runs it: real files, real exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn hallmark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args(args)
        .output()
        .expect("run hallmark")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const SEED: &str = "0101010101010101010101010101010101010101010101010101010101010101";
const OTHER: &str = "0202020202020202020202020202020202020202020202020202020202020202";

#[test]
fn prove_then_verify_each_job_type() {
    let dir = tempfile::tempdir().unwrap();
    for (job_type, size) in [("fib", "64"), ("hashchain", "20"), ("matmul", "6")] {
        let out = dir.path().join(format!("{job_type}.hst"));
        let proved = hallmark(&[
            "stark",
            "prove",
            "--type",
            job_type,
            "--size",
            size,
            "--seed",
            SEED,
            "--out",
            s(&out),
            "--json",
        ]);
        assert!(
            proved.status.success(),
            "{}",
            String::from_utf8_lossy(&proved.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&proved.stdout).unwrap();
        assert_eq!(summary["job_type"], job_type);
        assert_eq!(summary["security_bits"], 96);
        let bytes = std::fs::metadata(&out).unwrap().len();
        assert_eq!(summary["package_bytes"], bytes);
        assert!(!dir.path().join(format!("{job_type}.partial")).exists());

        let ok = hallmark(&[
            "stark",
            "verify",
            s(&out),
            "--type",
            job_type,
            "--size",
            size,
            "--seed",
            SEED,
        ]);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let text = String::from_utf8_lossy(&ok.stdout);
        assert!(text.starts_with("valid:"), "{text}");
        assert!(
            text.contains(summary["proof_hash"].as_str().unwrap()),
            "{text}"
        );

        // Another expected seed: exit 1, named code.
        let wrong = hallmark(&[
            "stark",
            "verify",
            s(&out),
            "--type",
            job_type,
            "--size",
            size,
            "--seed",
            OTHER,
        ]);
        assert_eq!(wrong.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&wrong.stderr).contains("statement_mismatch"));
    }
}

#[test]
fn tampered_oversized_and_unreadable_files_fail_with_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.hst");
    let proved = hallmark(&[
        "stark",
        "prove",
        "--type",
        "fib",
        "--size",
        "16",
        "--out",
        s(&out),
    ]);
    assert!(proved.status.success());
    let package = std::fs::read(&out).unwrap();

    let mut flipped = package.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    let bad = dir.path().join("flipped.hst");
    std::fs::write(&bad, &flipped).unwrap();
    let v = hallmark(&["stark", "verify", s(&bad), "--json"]);
    assert_eq!(v.status.code(), Some(1));
    let verdict: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["code"], "malformed");

    let mut big = package;
    big.resize(256 * 1024 + 1, 0);
    let huge = dir.path().join("huge.hst");
    std::fs::write(&huge, &big).unwrap();
    let v = hallmark(&["stark", "verify", s(&huge)]);
    assert_eq!(v.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&v.stderr).contains("rejected: oversized"));

    let missing = hallmark(&["stark", "verify", s(&dir.path().join("missing.hst"))]);
    assert_eq!(missing.status.code(), Some(2));
    let partial = hallmark(&["stark", "verify", s(&out), "--type", "fib"]);
    assert_eq!(partial.status.code(), Some(2));
    let bad_size = hallmark(&[
        "stark",
        "prove",
        "--type",
        "matmul",
        "--size",
        "100000",
        "--out",
        s(&out),
    ]);
    assert_eq!(bad_size.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_size.stderr).contains("out of range"));
    let bad_seed = hallmark(&[
        "stark",
        "prove",
        "--type",
        "fib",
        "--size",
        "4",
        "--seed",
        "xyz",
        "--out",
        s(&out),
    ]);
    assert_eq!(bad_seed.status.code(), Some(2));
}
