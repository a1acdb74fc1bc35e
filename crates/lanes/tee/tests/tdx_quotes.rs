//! TDX/SGX quote verification against real Intel evidence and the synthetic root of trust.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dcap_qvl::QuoteCollateralV3;
use hallmark_tee::tdx::{checks, parse_collateral, verify_quote, QuoteVerification, TdxContext};
use hallmark_tee::testroot::{PlatformTcb, TdQuoteSpec, TestRootOfTrust};
use hallmark_tee::{TdxPolicy, TrustRoots};

/// Inside both real collateral windows.
const REAL_NOW: u64 = 1752919234;
const SYNTH_NOW: u64 = 1_800_000_000;

fn lenient_age() -> TdxPolicy {
    TdxPolicy {
        max_collateral_age_secs: u64::MAX,
        ..TdxPolicy::default()
    }
}

fn check(
    quote: &[u8],
    coll: &QuoteCollateralV3,
    now: u64,
    roots: &TrustRoots,
    policy: &TdxPolicy,
) -> QuoteVerification {
    verify_quote(quote, coll, &TdxContext { now, roots, policy })
}

fn real(name: &str) -> (Vec<u8>, QuoteCollateralV3) {
    let quote = support::read(&format!("tdx/{name}"));
    let coll = parse_collateral(&support::read(&format!("tdx/{name}_collateral.json"))).unwrap();
    (quote, coll)
}

/// A synthetic root, its roots-of-trust set, current collateral and a quote for `spec`.
fn synthetic(spec: &TdQuoteSpec) -> (TestRootOfTrust, TrustRoots, QuoteCollateralV3, Vec<u8>) {
    let root = TestRootOfTrust::from_seed(b"synthetic chain test").unwrap();
    let roots = TrustRoots::single("test", root.root_ca_der().to_vec());
    let coll = root.collateral(SYNTH_NOW - 3600, 30 * 86400).unwrap();
    let coll = parse_collateral(&serde_json::to_vec(&coll).unwrap()).unwrap();
    let quote = root.td_quote(spec).unwrap();
    (root, roots, coll, quote)
}

fn report_data() -> [u8; 64] {
    let mut rd = [0u8; 64];
    rd[..5].copy_from_slice(b"hello");
    rd
}

#[test]
fn real_tdx_quote_is_up_to_date() {
    let (quote, coll) = real("tdx_quote");
    let out = check(
        &quote,
        &coll,
        REAL_NOW,
        &TrustRoots::intel(),
        &lenient_age(),
    );
    assert!(out.verdict.accepted, "{:#?}", out.verdict);
    let s = out.summary.unwrap();
    assert_eq!(s.status, "UpToDate");
    assert!(s.advisory_ids.is_empty());
    assert_eq!(s.td_attributes, "0000001000000000");
    assert!(!s.debug);
    assert!(
        s.mr_td.starts_with("91eb2b44") && s.mr_td.ends_with("18b7"),
        "{}",
        s.mr_td
    );
    assert!(s.report_data.starts_with("9a9d48e7") && s.report_data.ends_with("3f20"));
}

#[test]
fn real_sgx_quote_needs_configuration_and_is_rejected_by_default() {
    let (quote, coll) = real("sgx_quote");
    let roots = TrustRoots::intel();
    let out = check(&quote, &coll, REAL_NOW, &roots, &lenient_age());
    let s = out.summary.clone().unwrap();
    assert_eq!(s.tee, "SGX");
    assert_eq!(s.status, "ConfigurationAndSWHardeningNeeded");
    assert_eq!(s.advisory_ids, vec!["INTEL-SA-00289", "INTEL-SA-00615"]);
    assert!(!out.verdict.accepted);
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::TCB_STATUS));

    // Allowing the status but only one of the two advisories still rejects, naming advisories.
    let status_only = TdxPolicy {
        allowed_tcb_statuses: vec!["ConfigurationAndSWHardeningNeeded".into()],
        allowed_advisories: vec!["INTEL-SA-00289".into()],
        ..lenient_age()
    };
    let out = check(&quote, &coll, REAL_NOW, &roots, &status_only);
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::ADVISORIES));

    // A policy that tolerates exactly this status and these advisories accepts it.
    let tolerant = TdxPolicy {
        allowed_advisories: vec!["INTEL-SA-00289".into(), "INTEL-SA-00615".into()],
        ..status_only
    };
    let out = check(&quote, &coll, REAL_NOW, &roots, &tolerant);
    assert!(out.verdict.accepted, "{:#?}", out.verdict);
}

#[test]
fn real_quote_outside_collateral_window_is_rejected() {
    let (quote, coll) = real("tdx_quote");
    for now in [1752919236u64, 1750329146] {
        let out = check(&quote, &coll, now, &TrustRoots::intel(), &lenient_age());
        assert!(!out.verdict.accepted);
        assert_eq!(
            out.verdict.rejection.as_deref(),
            Some(checks::COLLATERAL_TIME),
            "now {now}: {:#?}",
            out.verdict
        );
    }
    // Inside the window, but its collateral (issued 29.98 days before REAL_NOW) is older than a
    // one-day age limit.
    let one_day = TdxPolicy {
        max_collateral_age_secs: 86_400,
        ..TdxPolicy::default()
    };
    let out = check(&quote, &coll, REAL_NOW, &TrustRoots::intel(), &one_day);
    assert_eq!(
        out.verdict.rejection.as_deref(),
        Some(checks::COLLATERAL_AGE)
    );
}

#[test]
fn synthetic_chain_passes_the_production_verifier() {
    let rd = report_data();
    let (root, roots, coll, quote) = synthetic(&TdQuoteSpec::new(rd));

    // dcap-qvl alone, anchored at the synthetic root.
    let report = dcap_qvl::verify::QuoteVerifier::new(root.root_ca_der().to_vec())
        .verify(&quote, &coll, SYNTH_NOW)
        .unwrap();
    assert_eq!(report.status, "UpToDate");

    let policy = TdxPolicy::default();
    let out = check(&quote, &coll, SYNTH_NOW, &roots, &policy);
    assert!(out.verdict.accepted, "{:#?}", out.verdict);
    assert_eq!(out.summary.unwrap().report_data, hex::encode(rd));

    // Intel's root does not accept it.
    let out = check(&quote, &coll, SYNTH_NOW, &TrustRoots::intel(), &policy);
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::QUOTE_CHAIN));
}

#[test]
fn synthetic_policy_failures_are_named() {
    let policy = TdxPolicy::default();

    // Stale platform: OutOfDate with an advisory, rejected by the default policy.
    let stale = TdQuoteSpec {
        tcb: PlatformTcb::Stale,
        ..TdQuoteSpec::new(report_data())
    };
    let (_, roots, coll, quote) = synthetic(&stale);
    let out = check(&quote, &coll, SYNTH_NOW, &roots, &policy);
    assert_eq!(out.summary.unwrap().status, "OutOfDate");
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::TCB_STATUS));

    // Debug on: the chain verifies, our policy rejects under its own name.
    let debug = TdQuoteSpec {
        debug: true,
        ..TdQuoteSpec::new(report_data())
    };
    let (_, roots, coll, quote) = synthetic(&debug);
    let out = check(&quote, &coll, SYNTH_NOW, &roots, &policy);
    assert!(out.summary.unwrap().debug);
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::DEBUG));

    // Measurement pins: the quote's own values pass, any other value is named.
    let spec = TdQuoteSpec::new(report_data());
    let (_, roots, coll, quote) = synthetic(&spec);
    let pinned = TdxPolicy {
        mr_td: vec![hex::encode(spec.mr_td)],
        rtmr2: Some(hex::encode(spec.rtmr[2])),
        ..TdxPolicy::default()
    };
    assert!(
        check(&quote, &coll, SYNTH_NOW, &roots, &pinned)
            .verdict
            .accepted
    );
    let wrong_mr_td = TdxPolicy {
        mr_td: vec!["00".repeat(48)],
        ..pinned.clone()
    };
    let out = check(&quote, &coll, SYNTH_NOW, &roots, &wrong_mr_td);
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::MR_TD));
    let wrong_rtmr = TdxPolicy {
        rtmr2: Some("00".repeat(48)),
        ..pinned
    };
    let out = check(&quote, &coll, SYNTH_NOW, &roots, &wrong_rtmr);
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::RTMR));

    // Not a quote at all.
    let out = check(b"not a quote", &coll, SYNTH_NOW, &roots, &policy);
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::QUOTE_PARSE));
}

#[test]
fn policies_parse_strictly() {
    let p = TdxPolicy::parse("allowed_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\"]\nmax_collateral_age_secs = 60\n").unwrap();
    assert_eq!(p.max_collateral_age_secs, 60);
    assert_eq!(p, TdxPolicy::parse(r#"{"allowed_tcb_statuses":["UpToDate","SWHardeningNeeded"],"max_collateral_age_secs":60}"#).unwrap());
    for bad in [
        "allowed_tcb_statuses = [\"UpToDat\"]",
        "allowed_tcb_statuses = [\"Revoked\"]",
        "alow_debug = true",
        "mr_td = [\"abcd\"]",
        "rtmr0 = \"zz\"",
        "{\"allow_debug\": 1}",
    ] {
        assert!(TdxPolicy::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn real_quotes_name_the_platform_their_collateral_is_for() {
    use hallmark_tee::collateral::{platform_of, PckCa};
    for (name, tdx) in [("tdx_quote", true), ("sgx_quote", false)] {
        let (quote, collateral) = real(name);
        let p = platform_of(&quote).unwrap();
        let tcb: serde_json::Value = serde_json::from_str(&collateral.tcb_info).unwrap();
        assert_eq!(
            p.fmspc,
            tcb["fmspc"].as_str().unwrap().to_ascii_uppercase(),
            "{name}: the cache key is the FMSPC the stored collateral was issued for"
        );
        assert_eq!(p.tdx, tdx, "{name}");
        assert!(matches!(p.ca, PckCa::Platform | PckCa::Processor));
    }
}

#[test]
fn the_self_test_passes_on_the_real_evidence_and_fails_without_it() {
    let v = hallmark_tee::selftest::self_test(Some(&support::testdata()));
    assert!(v.accepted, "{v:#?}");
    assert_eq!(v.checks.len(), 4);
    let v = hallmark_tee::selftest::self_test(Some(std::path::Path::new("/nonexistent")));
    assert_eq!(v.rejection.as_deref(), Some("evidence_missing"), "{v:#?}");
}
