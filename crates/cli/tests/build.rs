//! `hallmark build` offline: contract meta of the real Soroban wasm, exit codes and JSON
//! errors, image import, and a local sandboxed rebuild compared with a published wasm.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn testdata() -> PathBuf {
    std::env::var_os("HALLMARK_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
        })
}

fn hallmark(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn meta_reads_the_soroban_wasm_and_names_every_failure() {
    let wasm = testdata().join("wasm/contract.wasm");
    let (code, out, err) = hallmark(&["build", "meta", p(&wasm), "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["sha256"],
        "33d12fec8f6f3ddf2eb0ec76ee9a75a9e37d1fa20af35908d90d278af8264311"
    );
    assert_eq!(v["entries"][0]["key"], "rsver");
    assert_eq!(v["entries"][0]["val"], "1.74.0");
    assert_eq!(v["entries"][1]["key"], "rssdkver");
    assert_eq!(v["rsver"], "1.74.0");
    assert!(v["cliver"].is_null());
    for k in [
        "image",
        "args",
        "opts",
        "source_sha256",
        "source_uri",
        "source_repo",
        "source_rev",
    ] {
        assert!(v["recipe"].get(k).is_some(), "recipe.{k}: {v}");
    }
    let (code, out, _) = hallmark(&["build", "meta", p(&wasm)]);
    assert_eq!(code, Some(0));
    assert!(out.contains("rssdkver 21.0.1-preview.1#116c35bc"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x01\0\0\0").unwrap();
    let (code, out, _) = hallmark(&["build", "meta", p(&empty), "--json"]);
    assert_eq!(code, Some(3));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], "no_contract_meta");
    let (code, _, err) = hallmark(&["build", "meta", p(&empty)]);
    assert_eq!(code, Some(3));
    assert!(err.contains("no contractmetav0"), "{err}");
    let bytes = std::fs::read(&wasm).unwrap();
    let cut = dir.path().join("cut.wasm");
    std::fs::write(&cut, &bytes[..bytes.len() - 20]).unwrap();
    let (code, out, _) = hallmark(&["build", "meta", p(&cut), "--json"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["error"]["code"],
        "malformed_meta"
    );
    let text = dir.path().join("x.wasm");
    std::fs::write(&text, "not wasm at all").unwrap();
    let (code, out, _) = hallmark(&["build", "meta", p(&text), "--json"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["error"]["code"],
        "not_wasm"
    );
}

#[test]
fn a_local_rebuild_in_an_imported_image() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let (code, digest, err) = hallmark(&["build", "image", "host", "wat", "--images", p(&images)]);
    assert_eq!(code, Some(0), "{err}");
    let digest = digest.trim().to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");
    let (code, list, _) = hallmark(&["build", "image", "list", "--images", p(&images)]);
    assert_eq!(code, Some(0));
    assert_eq!(list.trim(), digest);
    let reference = format!("localhost/hallmark/wat@{digest}");
    let samples = hallmark_build::samples::devnet_samples(&reference).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let src = write("counter.tar.gz", &samples[0].source);
    let published = write("counter.wasm", &samples[0].wasm);
    let out = dir.path().join("rebuilt.wasm");
    let rebuild = |recipe: &Path, source: &Path, images: &Path| {
        hallmark(&[
            "build",
            "rebuild",
            "--recipe",
            p(recipe),
            "--source",
            p(source),
            "--out",
            p(&out),
            "--images",
            p(images),
            "--json",
        ])
    };
    let (code, text, err) = rebuild(&published, &src, &images);
    assert_eq!(code, Some(0), "{text}{err}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["match"].as_str()),
        (Some("verified"), Some("exact"))
    );
    assert_eq!(std::fs::read(&out).unwrap(), samples[0].wasm);
    // The mismatched sample: exit 1, the rebuilt hash named.
    let other = write("other.wasm", &samples[1].wasm);
    let (code, text, _) = rebuild(&other, &src, &images);
    assert_eq!(code, Some(1), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "mismatched");
    assert_eq!(
        v["rebuilt_sha256"],
        hallmark_build::sha256_hex(&samples[0].wasm)
    );
    // A source that is not the recipe's.
    let wrong = write("wrong.tar.gz", &samples[2].source);
    let (code, text, _) = rebuild(&published, &wrong, &images);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("source_mismatch"), "{text}");
    // An image nobody imported.
    let (code, text, _) = rebuild(&published, &src, &dir.path().join("none"));
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["reason"],
        "image_unavailable"
    );
}
