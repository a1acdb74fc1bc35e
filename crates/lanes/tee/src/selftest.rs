//! The tee lane's known-answer self-test on real hardware evidence: an Intel TDX quote with
//! its stored collateral, and an NVIDIA NRAS attestation token with NVIDIA's published keys,
//! each verified by the production verifier at the time it was captured (and refused once its
//! collateral or token has expired, or for another nonce).
//!
//! The evidence is read from a directory laid out as the project's test data (`tdx/`,
//! `nvidia/`); it is never bundled into the binary. Missing evidence fails its check, named.

use std::path::Path;

use hallmark_core::{Verdict, VerdictBuilder};

use crate::nvidia::{verify_eat, EatContext, EatEvidence, EatExpectations, Jwks};
use crate::tdx::{parse_collateral, verify_quote, TdxContext};
use crate::{TdxPolicy, TrustRoots};

/// Check names of the self-test, in order.
pub mod checks {
    pub const TDX_QUOTE_ACCEPTED: &str = "tdx_quote_accepted";
    pub const TDX_EXPIRED_REFUSED: &str = "tdx_expired_collateral_refused";
    pub const NVIDIA_TOKEN_ACCEPTED: &str = "nvidia_token_accepted";
    pub const NVIDIA_WRONG_NONCE_REFUSED: &str = "nvidia_wrong_nonce_refused";
}

/// The captured TDX quote, its collateral, and a time inside the collateral's window.
const TDX_QUOTE: &str = "tdx/tdx_quote";
const TDX_COLLATERAL: &str = "tdx/tdx_quote_collateral.json";
const TDX_CAPTURED_AT: u64 = 1_752_919_234;
/// The quote's MRTD (its TD measurement), as Intel's verifier reports it.
const TDX_MR_TD_PREFIX: &str = "91eb2b44";

/// The captured NRAS token, NVIDIA's keys of that day, the nonce it was issued for, and a time
/// inside its validity.
const NVIDIA_TOKEN: &str = "nvidia/teep_nanogpt_20260610_014905_nras_eat.json";
const NVIDIA_JWKS: &str = "nvidia/teep_jwks_20260610.json";
const NVIDIA_NONCE: &str = "9a796732359e9324a45576a730e5a9c47bff518b8ee8bcb882d00b5b1ff6f39a";
const NVIDIA_CAPTURED_AT: u64 = 1_781_056_200;

fn read(dir: Option<&Path>, rel: &str) -> Result<Vec<u8>, String> {
    let dir = dir.ok_or_else(|| "no evidence directory is configured".to_string())?;
    let p = dir.join(rel);
    std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Runs the self-test against the evidence in `dir`.
pub fn self_test(dir: Option<&Path>) -> Verdict {
    let mut v = VerdictBuilder::new("tee");
    tdx(&mut v, dir);
    nvidia(&mut v, dir);
    v.finish()
}

fn tdx(v: &mut VerdictBuilder, dir: Option<&Path>) {
    let evidence = read(dir, TDX_QUOTE).and_then(|q| {
        let c = read(dir, TDX_COLLATERAL)?;
        parse_collateral(&c)
            .map(|c| (q, c))
            .map_err(|e| format!("{TDX_COLLATERAL}: {e}"))
    });
    let (quote, collateral) = match evidence {
        Ok(e) => e,
        Err(e) => {
            for name in [checks::TDX_QUOTE_ACCEPTED, checks::TDX_EXPIRED_REFUSED] {
                v.fail_code(name, "evidence_missing", e.clone());
            }
            return;
        }
    };
    let roots = TrustRoots::intel();
    // The collateral was current when captured; its age is what the window tests, not this.
    let policy = TdxPolicy {
        max_collateral_age_secs: u64::MAX,
        ..TdxPolicy::default()
    };
    let at = |now| {
        verify_quote(
            &quote,
            &collateral,
            &TdxContext {
                now,
                roots: &roots,
                policy: &policy,
            },
        )
    };
    let ok = at(TDX_CAPTURED_AT);
    match (&ok.verdict.rejection, &ok.summary) {
        (None, Some(s)) if s.status == "UpToDate" && s.mr_td.starts_with(TDX_MR_TD_PREFIX) => v
            .pass(
                checks::TDX_QUOTE_ACCEPTED,
                format!("Intel root, TCB {}, MRTD {}…", s.status, &s.mr_td[..16]),
            ),
        (None, s) => v.fail(
            checks::TDX_QUOTE_ACCEPTED,
            format!("accepted with an unexpected summary: {s:?}"),
        ),
        (Some(r), _) => v.fail(
            checks::TDX_QUOTE_ACCEPTED,
            format!("the production verifier refused real evidence: {r}"),
        ),
    }
    // A year after the collateral's window closed, the same evidence must be refused.
    let late = at(TDX_CAPTURED_AT + 365 * 86_400);
    match late.verdict.rejection {
        Some(r) => v.pass(checks::TDX_EXPIRED_REFUSED, format!("refused: {r}")),
        None => v.fail(
            checks::TDX_EXPIRED_REFUSED,
            "expired collateral was accepted",
        ),
    }
}

fn nvidia(v: &mut VerdictBuilder, dir: Option<&Path>) {
    let evidence = read(dir, NVIDIA_TOKEN).and_then(|t| {
        let ev = EatEvidence::parse(&t).map_err(|e| format!("{NVIDIA_TOKEN}: {e}"))?;
        let jwks =
            Jwks::parse(&read(dir, NVIDIA_JWKS)?).map_err(|e| format!("{NVIDIA_JWKS}: {e}"))?;
        Ok((ev, jwks))
    });
    let (ev, jwks) = match evidence {
        Ok(e) => e,
        Err(e) => {
            for name in [
                checks::NVIDIA_TOKEN_ACCEPTED,
                checks::NVIDIA_WRONG_NONCE_REFUSED,
            ] {
                v.fail_code(name, "evidence_missing", e.clone());
            }
            return;
        }
    };
    let ctx = EatContext {
        now: NVIDIA_CAPTURED_AT,
        jwks: &jwks,
        leeway_secs: 0,
    };
    let expect = |nonce: &str| EatExpectations {
        nonce_hex: nonce.to_string(),
        capacity: None,
        gpu_count: Some(1),
    };
    let ok = verify_eat(&ev, &expect(NVIDIA_NONCE), &ctx);
    match ok.verdict.rejection {
        None if ok.overall_result == Some(true) => v.pass(
            checks::NVIDIA_TOKEN_ACCEPTED,
            format!(
                "NRAS token signed by NVIDIA's key, {} GPU(s), overall result true",
                ok.gpus.len()
            ),
        ),
        None => v.fail(
            checks::NVIDIA_TOKEN_ACCEPTED,
            "accepted without an overall result of true",
        ),
        Some(r) => v.fail(
            checks::NVIDIA_TOKEN_ACCEPTED,
            format!("the production verifier refused real evidence: {r}"),
        ),
    }
    let other = verify_eat(&ev, &expect(&"00".repeat(32)), &ctx);
    match other.verdict.rejection {
        Some(r) => v.pass(checks::NVIDIA_WRONG_NONCE_REFUSED, format!("refused: {r}")),
        None => v.fail(
            checks::NVIDIA_WRONG_NONCE_REFUSED,
            "a token for another nonce was accepted",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_evidence_every_check_fails_named() {
        let v = self_test(None);
        assert!(!v.accepted);
        assert_eq!(v.checks.len(), 4);
        assert!(v
            .checks
            .iter()
            .all(|c| c.outcome == hallmark_core::CheckOutcome::Fail));
    }
}
