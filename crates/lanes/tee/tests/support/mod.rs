//! Shared helpers: where the real evidence lives.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/testdata` from the workspace root, or `$HALLMARK_TESTDATA`.
pub fn testdata() -> PathBuf {
    if let Ok(p) = std::env::var("HALLMARK_TESTDATA") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/testdata")
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = testdata().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}
