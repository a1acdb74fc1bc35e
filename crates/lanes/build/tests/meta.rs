//! Contract meta of the real Soroban wasm in the shared test data (read there, never copied).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

fn testdata() -> PathBuf {
    std::env::var_os("HALLMARK_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/testdata")
        })
}

#[test]
fn the_soroban_contract_meta_reads_in_file_order() {
    let wasm = std::fs::read(testdata().join("wasm/contract.wasm")).unwrap();
    let meta = hallmark_build::inspect(&wasm).unwrap();
    assert!(meta.sha256.starts_with("33d12fec"), "{}", meta.sha256);
    assert!(meta.sha256.ends_with("4311"), "{}", meta.sha256);
    let keys: Vec<&str> = meta.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["rsver", "rssdkver"]);
    assert_eq!(meta.rsver.as_deref(), Some("1.74.0"));
    assert_eq!(
        meta.rssdkver.as_deref(),
        Some("21.0.1-preview.1#116c35bc9e03f4b1b5e65b5ee831ae0f86aa92fd")
    );
    assert_eq!(meta.cliver, None);
    // No build fields: not a complete recipe, so it needs the registry or search.
    assert!(!meta.recipe.is_complete());
    assert_eq!(meta.recipe.argv(), ["contract", "build"]);
}

#[test]
fn a_wasm_without_the_section_and_other_files_say_so() {
    let wasm = std::fs::read(testdata().join("wasm/contract.wasm")).unwrap();
    // Drop every custom section: still wasm, but no meta.
    let mut stripped = wasm[..8].to_vec();
    for payload in wasmparser::Parser::new(0).parse_all(&wasm) {
        let payload = payload.unwrap();
        if matches!(payload, wasmparser::Payload::CustomSection(_)) {
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            let start = range.start - 1 - leb_len(range.len());
            stripped.extend(&wasm[start..range.end]);
            assert_eq!(wasm[start], id);
        }
    }
    let err = hallmark_build::read_meta(&stripped).unwrap_err();
    assert_eq!(err.code(), "no_contract_meta");
    assert_eq!(err.exit_code(), 3);
    let err = hallmark_build::read_meta(b"#!/bin/sh\necho not wasm\n").unwrap_err();
    assert_eq!(err.code(), "not_wasm");
}

fn leb_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

#[test]
fn the_self_test_passes_on_the_real_contract_and_fails_without_it() {
    let v = hallmark_build::meta::self_test(Some(&testdata()));
    assert!(v.accepted, "{v:#?}");
    let v = hallmark_build::meta::self_test(None);
    assert_eq!(v.rejection.as_deref(), Some("evidence_missing"));
}
