//! NVIDIA EAT verification against the real NRAS token and the synthetic NVIDIA key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hallmark_tee::nvidia::{
    checks, verify_eat, EatContext, EatEvidence, EatExpectations, GpuCapacity, Jwks,
};
use hallmark_tee::testroot::{GpuClaims, TestRootOfTrust};

const REAL_NONCE: &str = "9a796732359e9324a45576a730e5a9c47bff518b8ee8bcb882d00b5b1ff6f39a";
const REAL_NOW: u64 = 1781056200;

fn real() -> (EatEvidence, Jwks) {
    let ev = EatEvidence::parse(&support::read(
        "nvidia/teep_nanogpt_20260610_014905_nras_eat.json",
    ))
    .unwrap();
    let jwks = Jwks::parse(&support::read("nvidia/teep_jwks_20260610.json")).unwrap();
    (ev, jwks)
}

fn expect(nonce: &str, gpus: Option<usize>) -> EatExpectations {
    EatExpectations {
        nonce_hex: nonce.into(),
        capacity: None,
        gpu_count: gpus,
    }
}

#[test]
fn real_nras_token_verifies() {
    let (ev, jwks) = real();
    let ctx = EatContext {
        now: REAL_NOW,
        jwks: &jwks,
        leeway_secs: 0,
    };
    let out = verify_eat(&ev, &expect(REAL_NONCE, Some(1)), &ctx);
    assert!(out.verdict.accepted, "{:#?}", out.verdict);
    assert_eq!(out.overall_result, Some(true));
    assert_eq!(out.gpus.len(), 1);
    assert_eq!(out.gpus[0].hwmodel, "GH100");
    // Upper-case nonce is the same nonce.
    let out = verify_eat(&ev, &expect(&REAL_NONCE.to_uppercase(), Some(1)), &ctx);
    assert!(out.verdict.accepted);
    // The verified x5c chain is remembered only inside its certificates' validity: in 2100 it
    // is checked again, and fails, though it passed (and was cached) a moment ago.
    let far = EatContext {
        now: 4_102_444_800,
        ..ctx
    };
    let v = verify_eat(&ev, &expect(REAL_NONCE, Some(1)), &far).verdict;
    assert!(
        v.checks
            .iter()
            .any(|c| c.name == checks::X5C && c.outcome == hallmark_core::CheckOutcome::Fail),
        "{v:#?}"
    );
    // Claimed capacity: one H100 matches; two do not; an A100 does not.
    let mut e = expect(REAL_NONCE, None);
    e.capacity = Some(vec![GpuCapacity {
        model: "H100".into(),
        count: 1,
    }]);
    assert!(verify_eat(&ev, &e, &ctx).verdict.accepted);
    e.capacity = Some(vec![GpuCapacity {
        model: "H100".into(),
        count: 2,
    }]);
    assert_eq!(
        verify_eat(&ev, &e, &ctx).verdict.rejection.as_deref(),
        Some(checks::CAPACITY)
    );
    e.capacity = Some(vec![GpuCapacity {
        model: "A100".into(),
        count: 1,
    }]);
    assert_eq!(
        verify_eat(&ev, &e, &ctx).verdict.rejection.as_deref(),
        Some(checks::CAPACITY)
    );
}

#[test]
fn real_token_tampering_is_named() {
    let (ev, jwks) = real();
    let ctx = EatContext {
        now: REAL_NOW,
        jwks: &jwks,
        leeway_secs: 0,
    };
    // Wrong nonce.
    let other = "00".repeat(32);
    assert_eq!(
        verify_eat(&ev, &expect(&other, None), &ctx)
            .verdict
            .rejection
            .as_deref(),
        Some(checks::NONCE)
    );
    // Wrong GPU count.
    assert_eq!(
        verify_eat(&ev, &expect(REAL_NONCE, Some(8)), &ctx)
            .verdict
            .rejection
            .as_deref(),
        Some(checks::CAPACITY)
    );
    // Expired.
    let late = EatContext {
        now: 1781059743,
        ..ctx
    };
    assert_eq!(
        verify_eat(&ev, &expect(REAL_NONCE, None), &late)
            .verdict
            .rejection
            .as_deref(),
        Some(checks::VALIDITY)
    );
    // One character of the overall token's signature changed.
    let EatEvidence::Detached { overall, devices } = ev.clone() else {
        panic!()
    };
    let mut bad = overall.clone().into_bytes();
    let i = bad.len() - 10;
    bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
    let tampered = EatEvidence::Detached {
        overall: String::from_utf8(bad).unwrap(),
        devices: devices.clone(),
    };
    assert_eq!(
        verify_eat(&tampered, &expect(REAL_NONCE, None), &ctx)
            .verdict
            .rejection
            .as_deref(),
        Some(checks::SIGNATURE)
    );
    // A GPU token swapped for another (validly signed) string breaks the submod digest.
    let mut devs = devices.clone();
    devs.insert("GPU-0".into(), overall.clone());
    let swapped = EatEvidence::Detached {
        overall,
        devices: devs,
    };
    let v = verify_eat(&swapped, &expect(REAL_NONCE, None), &ctx).verdict;
    assert!(!v.accepted);
    assert!(v
        .checks
        .iter()
        .any(|c| c.name == checks::SUBMODS && c.outcome == hallmark_core::CheckOutcome::Fail));
    // A JWKS without the token's kid.
    let empty = Jwks { keys: vec![] };
    let ctx2 = EatContext {
        jwks: &empty,
        ..ctx
    };
    assert_eq!(
        verify_eat(&ev, &expect(REAL_NONCE, None), &ctx2)
            .verdict
            .rejection
            .as_deref(),
        Some(checks::SIGNATURE)
    );
}

#[test]
fn synthetic_tokens_pass_and_each_defect_is_named() {
    let root = TestRootOfTrust::from_seed(b"nvidia test").unwrap();
    let jwks: Jwks = serde_json::from_value(root.nvidia_jwks()).unwrap();
    let nonce = "ab".repeat(32);
    let now = 1_800_000_000;
    let ctx = EatContext {
        now: now + 10,
        jwks: &jwks,
        leeway_secs: 0,
    };
    let body = |gpus: &[GpuClaims]| {
        EatEvidence::parse(
            root.nvidia_eat(&nonce, gpus, now, 3600)
                .unwrap()
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    };
    let eight = vec![GpuClaims::healthy_h100(); 8];
    let mut e = expect(&nonce, Some(8));
    e.capacity = Some(vec![GpuCapacity {
        model: "H100".into(),
        count: 8,
    }]);
    let out = verify_eat(&body(&eight), &e, &ctx);
    assert!(out.verdict.accepted, "{:#?}", out.verdict);

    let mut dbg = eight.clone();
    dbg[3].dbgstat = "enabled".into();
    let out = verify_eat(&body(&dbg), &e, &ctx);
    // NRAS itself reports overall false for such a GPU; our own per-GPU check fails too.
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::OVERALL));
    assert!(out
        .verdict
        .checks
        .iter()
        .any(|c| c.name == checks::GPU_CLAIMS && c.outcome == hallmark_core::CheckOutcome::Fail));

    // Tokens from an unrelated root do not verify under this JWKS.
    let other = TestRootOfTrust::from_seed(b"someone else").unwrap();
    let forged = EatEvidence::parse(
        other
            .nvidia_eat(&nonce, &eight, now, 3600)
            .unwrap()
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        verify_eat(&forged, &e, &ctx).verdict.rejection.as_deref(),
        Some(checks::SIGNATURE)
    );

    // Bad inputs are errors, not panics.
    assert!(EatEvidence::parse(b"[1,2]").is_err());
    assert!(EatEvidence::parse(b"not a token").is_err());
    assert!(EatEvidence::parse(&[0xff, 0xfe]).is_err());
    assert!(Jwks::parse(b"{}").is_err());
}

#[test]
fn single_tokens_and_issuer() {
    let (ev, jwks) = real();
    let ctx = EatContext {
        now: REAL_NOW,
        jwks: &jwks,
        leeway_secs: 0,
    };
    let EatEvidence::Detached { overall, devices } = ev else {
        panic!("detached")
    };
    // One GPU's token alone carries the per-GPU claims: accepted.
    let gpu = EatEvidence::parse(devices["GPU-0"].as_bytes()).unwrap();
    let out = verify_eat(&gpu, &expect(REAL_NONCE, Some(1)), &ctx);
    assert!(out.verdict.accepted, "{:#?}", out.verdict);
    assert_eq!(out.gpus[0].hwmodel, "GH100");
    // The overall token alone cannot show per-GPU claims: rejected.
    let alone = EatEvidence::parse(overall.as_bytes()).unwrap();
    let out = verify_eat(&alone, &expect(REAL_NONCE, None), &ctx);
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::SUBMODS));

    // A validly signed token from another issuer is named as such.
    let root = TestRootOfTrust::from_seed(b"issuer test").unwrap();
    let jwks: Jwks = serde_json::from_value(root.nvidia_jwks()).unwrap();
    let nonce = "cd".repeat(32);
    let claims = serde_json::json!({
        "iss": "https://attacker.example", "iat": 1_800_000_000u64, "nbf": 1_800_000_000u64, "exp": 1_800_000_100u64,
        "eat_nonce": nonce, "hwmodel": "GH100", "measres": "success", "secboot": true, "dbgstat": "disabled",
    });
    let token = EatEvidence::parse(root.sign_jwt(&claims).unwrap().as_bytes()).unwrap();
    let ctx = EatContext {
        now: 1_800_000_050,
        jwks: &jwks,
        leeway_secs: 0,
    };
    let out = verify_eat(&token, &expect(&nonce, Some(1)), &ctx);
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::ISSUER));
    let failed: Vec<_> = out
        .verdict
        .checks
        .iter()
        .filter(|c| c.outcome == hallmark_core::CheckOutcome::Fail)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failed, vec![checks::ISSUER], "only the issuer is wrong");
}
