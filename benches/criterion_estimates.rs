//! Shared by the workspace's Criterion benches (included with `#[path]`): where results go and
//! how a bench reads its own means back to print ratios against an in-run baseline.

use std::path::PathBuf;

/// Criterion's output directory for the including bench (under the target's tmp dir).
pub fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("criterion")
}

/// The mean time in nanoseconds Criterion just measured for `group/id`.
pub fn mean_ns(group: &str, id: &str) -> Option<f64> {
    let path = out_dir().join(group).join(id).join("new/estimates.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["mean"]["point_estimate"].as_f64()
}
