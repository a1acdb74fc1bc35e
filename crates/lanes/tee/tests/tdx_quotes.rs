//! TDX/SGX quote verification against real Intel evidence and the synthetic root of trust.

mod support;

use hallmark_tee::tdx::{checks, parse_collateral, verify_quote, TdxContext};
use hallmark_tee::testroot::{PlatformTcb, TdQuoteSpec, TestRootOfTrust};
use hallmark_tee::{TdxPolicy, TrustRoots};

const TDX_NOW: u64 = 1752919234;
const SGX_NOW: u64 = 1752919234;

fn lenient_age() -> TdxPolicy {
    TdxPolicy {
        max_collateral_age_secs: u64::MAX,
        ..TdxPolicy::default()
    }
}

#[test]
fn real_tdx_quote_is_up_to_date() {
    let quote = support::read("tdx/tdx_quote");
    let coll = parse_collateral(&support::read("tdx/tdx_quote_collateral.json")).unwrap();
    let roots = TrustRoots::intel();
    let policy = lenient_age();
    let out = verify_quote(
        &quote,
        &coll,
        &TdxContext {
            now: TDX_NOW,
            roots: &roots,
            policy: &policy,
        },
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
    let quote = support::read("tdx/sgx_quote");
    let coll = parse_collateral(&support::read("tdx/sgx_quote_collateral.json")).unwrap();
    let roots = TrustRoots::intel();
    let policy = lenient_age();
    let out = verify_quote(
        &quote,
        &coll,
        &TdxContext {
            now: SGX_NOW,
            roots: &roots,
            policy: &policy,
        },
    );
    let s = out.summary.clone().unwrap();
    assert_eq!(s.tee, "SGX");
    assert_eq!(s.status, "ConfigurationAndSWHardeningNeeded");
    assert_eq!(s.advisory_ids, vec!["INTEL-SA-00289", "INTEL-SA-00615"]);
    assert!(!out.verdict.accepted);
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::TCB_STATUS));

    // A policy that tolerates exactly this status and these advisories accepts it.
    let tolerant = TdxPolicy {
        allowed_tcb_statuses: vec!["ConfigurationAndSWHardeningNeeded".into()],
        allowed_advisories: vec!["INTEL-SA-00289".into(), "INTEL-SA-00615".into()],
        ..lenient_age()
    };
    let out = verify_quote(
        &quote,
        &coll,
        &TdxContext {
            now: SGX_NOW,
            roots: &roots,
            policy: &tolerant,
        },
    );
    assert!(out.verdict.accepted, "{:#?}", out.verdict);
}

#[test]
fn real_quote_outside_collateral_window_is_rejected() {
    let quote = support::read("tdx/tdx_quote");
    let coll = parse_collateral(&support::read("tdx/tdx_quote_collateral.json")).unwrap();
    let roots = TrustRoots::intel();
    let policy = lenient_age();
    for now in [1752919236u64, 1750329146] {
        let out = verify_quote(
            &quote,
            &coll,
            &TdxContext {
                now,
                roots: &roots,
                policy: &policy,
            },
        );
        assert!(!out.verdict.accepted);
        assert_eq!(
            out.verdict.rejection.as_deref(),
            Some(checks::COLLATERAL_TIME),
            "now {now}: {:#?}",
            out.verdict
        );
    }
}

#[test]
fn synthetic_chain_passes_the_production_verifier() {
    let root = TestRootOfTrust::from_seed(b"synthetic chain test").unwrap();
    let now = 1_800_000_000u64;
    let coll = serde_json::to_vec(&root.collateral(now - 3600, 30 * 86400).unwrap()).unwrap();
    let coll = parse_collateral(&coll).unwrap();
    let mut rd = [0u8; 64];
    rd[..5].copy_from_slice(b"hello");
    let quote = root.td_quote(&TdQuoteSpec::new(rd)).unwrap();

    // dcap-qvl alone, anchored at the synthetic root.
    let report = dcap_qvl::verify::QuoteVerifier::new(root.root_ca_der().to_vec())
        .verify(&quote, &coll, now)
        .unwrap();
    assert_eq!(report.status, "UpToDate");

    let roots = TrustRoots::single("test", root.root_ca_der().to_vec());
    let policy = TdxPolicy::default();
    let out = verify_quote(
        &quote,
        &coll,
        &TdxContext {
            now,
            roots: &roots,
            policy: &policy,
        },
    );
    assert!(out.verdict.accepted, "{:#?}", out.verdict);
    assert_eq!(out.summary.unwrap().report_data, hex::encode(rd));

    // Intel's root does not accept it.
    let intel = TrustRoots::intel();
    let out = verify_quote(
        &quote,
        &coll,
        &TdxContext {
            now,
            roots: &intel,
            policy: &policy,
        },
    );
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::QUOTE_CHAIN));

    // Stale platform: OutOfDate with an advisory, rejected by the default policy.
    let stale = TdQuoteSpec {
        tcb: PlatformTcb::Stale,
        ..TdQuoteSpec::new(rd)
    };
    let quote = root.td_quote(&stale).unwrap();
    let out = verify_quote(
        &quote,
        &coll,
        &TdxContext {
            now,
            roots: &roots,
            policy: &policy,
        },
    );
    let s = out.summary.unwrap();
    assert_eq!(s.status, "OutOfDate");
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::TCB_STATUS));

    // Debug on: the chain verifies, our policy rejects under its own name.
    let debug = TdQuoteSpec {
        debug: true,
        ..TdQuoteSpec::new(rd)
    };
    let quote = root.td_quote(&debug).unwrap();
    let out = verify_quote(
        &quote,
        &coll,
        &TdxContext {
            now,
            roots: &roots,
            policy: &policy,
        },
    );
    assert!(out.summary.unwrap().debug);
    assert_eq!(out.verdict.rejection.as_deref(), Some(checks::DEBUG));
}
