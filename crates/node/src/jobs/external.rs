//! A second opinion before a vote: an external verifier a validator runs beside a lane's own
//! verifier. It reads the job on stdin as JSON (`{lane, job_id, spec, artifact_base64,
//! verdict}`) and agrees by exiting 0. The SHA-256 of its executable is read at every run and
//! recorded in the verdict's `external_verifier` check (which goes into the validator's log
//! before the vote), and only an allowlisted executable's agreement counts when an allowlist
//! is configured. Anything that goes wrong — it cannot be read, started, times out, disagrees —
//! fails the check, so the vote is `invalid` (fail closed).

use std::time::Duration;

use base64::Engine as _;
use hallmark_core::{sha256, Check, CheckOutcome, Verdict};
use tokio::io::AsyncWriteExt;

use super::messages::JobView;
use crate::config::ExternalVerifierSection;

/// The check's name in a verdict.
pub const CHECK: &str = "external_verifier";

/// Refuses an external verifier configuration that could never run or match.
pub fn check_config(ext: &ExternalVerifierSection) -> Result<(), String> {
    if ext.command.is_empty() {
        return Err("command is empty: give the program and its arguments".into());
    }
    if ext.timeout_secs == 0 {
        return Err("timeout_secs must be at least 1".into());
    }
    for d in &ext.allowlist {
        if d.len() != 64 || hex::decode(d).is_err() {
            return Err(format!("allowlist entry {d:?} is not a SHA-256 hex digest"));
        }
    }
    Ok(())
}

/// Adds the external check to a verdict: a failure rejects it (if nothing had yet).
pub fn apply(verdict: &mut Verdict, check: Check) {
    if check.outcome == CheckOutcome::Fail {
        verdict.accepted = false;
        if verdict.rejection.is_none() {
            verdict.rejection = Some(CHECK.into());
        }
    }
    verdict.checks.push(check);
}

/// Runs the external verifier on one job and returns its check.
pub async fn second_opinion(
    ext: &ExternalVerifierSection,
    job: &JobView,
    spec: &serde_json::Value,
    artifact: &[u8],
    verdict: &Verdict,
) -> Check {
    let fail = |detail: String| Check {
        name: CHECK.into(),
        outcome: CheckOutcome::Fail,
        detail,
    };
    let exe = &ext.command[0];
    let digest = match tokio::fs::read(exe).await {
        Ok(bytes) => sha256(&bytes).to_hex(),
        Err(e) => return fail(format!("cannot read {exe}: {e}")),
    };
    let allowlisted = ext.allowlist.is_empty()
        || ext
            .allowlist
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&digest));
    let input = serde_json::json!({
        "lane": job.lane,
        "job_id": job.job_id,
        "spec": spec,
        "artifact_base64": base64::engine::general_purpose::STANDARD.encode(artifact),
        "verdict": verdict,
    });
    let timeout = Duration::from_secs(ext.timeout_secs);
    let (status, out) =
        match run_command(&ext.command, input.to_string().into_bytes(), timeout).await {
            Ok(r) => r,
            Err(e) => return fail(format!("sha256 {digest}: {e}")),
        };
    let last: String = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(500)
        .collect();
    if status != Some(0) {
        return fail(format!("sha256 {digest}: exit {status:?}: {last}"));
    }
    if !allowlisted {
        return fail(format!(
            "sha256 {digest} is not on the allowlist, so its agreement does not count"
        ));
    }
    Check {
        name: CHECK.into(),
        outcome: CheckOutcome::Pass,
        detail: format!("sha256 {digest} agrees: {last}"),
    }
}

/// Runs `cmd` with `input` on stdin; returns its exit code and stdout, or why it could not.
async fn run_command(
    cmd: &[String],
    input: Vec<u8>,
    timeout: Duration,
) -> Result<(Option<i32>, String), String> {
    let mut child = tokio::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cmd[0]))?;
    let stdin = child.stdin.take();
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // A verifier that exits without reading its input is not an error here.
            let _ = stdin.write_all(&input).await;
        }
    };
    // Input and output flow together (neither side can fill a pipe and stall the other), and
    // the deadline covers both; on timeout the child is dropped, which kills it.
    let run = async { tokio::join!(feed, child.wait_with_output()).1 };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Err(format!("timed out after {} s", timeout.as_secs())),
        Ok(Err(e)) => Err(format!("waiting for {}: {e}", cmd[0])),
        Ok(Ok(out)) => Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )),
    }
}
