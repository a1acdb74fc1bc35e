//! The whole chain for one instance, each tampering named; receipts re-verify offline and
//! fail after any byte changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use hallmark_tee::chain::{validate_nonce, verify_instance, ChainContext, InstanceEvidence};
use hallmark_tee::nvidia::Jwks;
use hallmark_tee::receipt::{
    verify_receipt, verify_receipt_for, ReceiptExpectations, ReceiptPayload, ReceiptSigner,
    SigningAlgo, UnsignedFields, VerificationReceipt,
};
use hallmark_tee::simulate::{Misbehaviour, SimulatedInstance, DEFECTS};
use hallmark_tee::testroot::TestRootOfTrust;
use hallmark_tee::{TdxPolicy, TrustRoots};

const NOW: u64 = 1_800_000_000;
const NONCE: &str = "caller-nonce-0123456789abcdef";

struct Fixture {
    root: TestRootOfTrust,
    roots: TrustRoots,
    jwks: Jwks,
    policy: TdxPolicy,
}

fn fixture() -> Fixture {
    let root = TestRootOfTrust::from_seed(b"chain tests").unwrap();
    let roots = TrustRoots::single("test", root.root_ca_der().to_vec());
    let jwks = serde_json::from_value(root.nvidia_jwks()).unwrap();
    Fixture {
        root,
        roots,
        jwks,
        policy: TdxPolicy::default(),
    }
}

impl Fixture {
    fn ctx(&self, now: u64) -> ChainContext<'_> {
        ChainContext {
            now,
            roots: &self.roots,
            policy: &self.policy,
            jwks: &self.jwks,
        }
    }
}

fn errors_mention(errors: &[String], check: &str) -> bool {
    errors.iter().any(|e| e.starts_with(&format!("{check}:")))
}

#[test]
fn honest_instance_verifies_and_each_tampering_is_named() {
    let f = fixture();
    let honest = SimulatedInstance::new("inst-0", "llama", 8, Misbehaviour::default());
    let ev = honest.evidence(&f.root, NONCE, NOW).unwrap();
    let r = verify_instance(&honest.info, &ev, NONCE, &f.ctx(NOW));
    assert!(r.verified(), "{:#?}", r);
    assert_eq!(r.tdx_status, "UpToDate");
    assert!(r.binding_verified && r.gpu_token_checked && r.gpu_verified && r.debug_mode_disabled);
    assert_eq!(r.expected_report_data, r.actual_report_data);

    // One bit of the quote (inside MRTD, which the attestation key signs).
    let mut quote = base64::engine::general_purpose::STANDARD
        .decode(&ev.quote)
        .unwrap();
    quote[48 + 16 + 48 + 48 + 8 + 8 + 8] ^= 0x01;
    let bad = InstanceEvidence {
        quote: base64::engine::general_purpose::STANDARD.encode(&quote),
        ..ev.clone()
    };
    let r = verify_instance(&honest.info, &bad, NONCE, &f.ctx(NOW));
    assert!(
        errors_mention(&r.errors, "quote_signature_chain"),
        "{:#?}",
        r.errors
    );
    assert!(r.tdx_error_present);

    // Another nonce than the one the evidence was made for.
    let r = verify_instance(&honest.info, &ev, "a-different-nonce-000000", &f.ctx(NOW));
    assert!(
        errors_mention(&r.errors, "report_data_binding"),
        "{:#?}",
        r.errors
    );
    assert!(errors_mention(&r.errors, "eat_nonce"));
    assert!(!r.binding_verified);

    // Expired collateral.
    let r = verify_instance(&honest.info, &ev, NONCE, &f.ctx(NOW + 31 * 86400));
    assert!(
        errors_mention(&r.errors, "collateral_time_window"),
        "{:#?}",
        r.errors
    );

    for (name, check) in DEFECTS {
        let m = Misbehaviour::only(name).unwrap();
        let inst = SimulatedInstance::new("inst-x", "llama", 8, m);
        let ev = inst.evidence(&f.root, NONCE, NOW).unwrap();
        let r = verify_instance(&inst.info, &ev, NONCE, &f.ctx(NOW));
        assert!(!r.verified(), "{m:?}");
        assert!(errors_mention(&r.errors, check), "{m:?}: {:#?}", r.errors);
    }

    // Evidence from an untrusted root of trust.
    let other = TestRootOfTrust::from_seed(b"not trusted").unwrap();
    let ev = honest.evidence(&other, NONCE, NOW).unwrap();
    let r = verify_instance(&honest.info, &ev, NONCE, &f.ctx(NOW));
    assert!(errors_mention(&r.errors, "quote_signature_chain"));
    assert!(errors_mention(&r.errors, "eat_signature"));

    // Garbage is an error in the result, never a panic.
    let junk = InstanceEvidence {
        quote: "%%%".into(),
        ..ev.clone()
    };
    assert!(!verify_instance(&honest.info, &junk, NONCE, &f.ctx(NOW)).verified());
    let junk = InstanceEvidence {
        collateral: serde_json::json!({"x": 1}),
        ..ev
    };
    assert!(!verify_instance(&honest.info, &junk, NONCE, &f.ctx(NOW)).verified());
}

#[test]
fn nonces_are_validated() {
    assert!(validate_nonce("short").is_err());
    assert!(validate_nonce(&"x".repeat(300)).is_err());
    assert!(validate_nonce("has a space in it!!").is_err());
    assert!(validate_nonce(NONCE).is_ok());
}

fn receipt(algo: SigningAlgo) -> (VerificationReceipt, ReceiptSigner) {
    let f = fixture();
    let signer = ReceiptSigner::from_seed(&[7u8; 32]).unwrap();
    let inst = SimulatedInstance::new("inst-0", "llama", 2, Misbehaviour::default());
    let ev = inst.evidence(&f.root, NONCE, NOW).unwrap();
    let results = vec![verify_instance(&inst.info, &ev, NONCE, &f.ctx(NOW))];
    let payload = ReceiptPayload::new(
        NONCE,
        "llama",
        "ab".repeat(32),
        &signer,
        algo,
        results,
        NOW,
        "devnet",
    );
    (signer.sign(payload).unwrap(), signer)
}

#[test]
fn receipts_verify_offline_and_fail_after_any_byte_changes() {
    for algo in [SigningAlgo::Ed25519, SigningAlgo::Ecdsa] {
        let (r, signer) = receipt(algo);
        assert_eq!(r.payload.result, "verified");
        let v = verify_receipt(&r, None);
        assert!(v.accepted, "{algo:?}: {v:#?}");
        assert!(verify_receipt(&r, Some(&signer.public_key_hex(algo))).accepted);
        assert!(verify_receipt(&r, Some(&signer.signing_address(algo))).accepted);
        let other = ReceiptSigner::from_seed(&[8u8; 32]).unwrap();
        assert_eq!(
            verify_receipt(&r, Some(&other.public_key_hex(algo)))
                .rejection
                .as_deref(),
            Some("pinned_key")
        );

        let bytes = serde_json::to_vec(&r).unwrap();
        let mut survived = Vec::new();
        for i in 0..bytes.len() {
            for replacement in *b"0a\"" {
                if bytes[i] == replacement {
                    continue;
                }
                let mut t = bytes.clone();
                t[i] = replacement;
                if let Ok(parsed) = serde_json::from_slice::<VerificationReceipt>(&t) {
                    if verify_receipt(&parsed, None).accepted {
                        survived.push((i, replacement as char));
                    }
                }
            }
        }
        assert!(
            survived.is_empty(),
            "{algo:?}: changes that still verify: {survived:?}"
        );
    }
}

/// A valid receipt for another nonce or model is a replay, and a response whose unsigned
/// nonce or model differ from the signed ones is refused: each named by its check.
#[test]
fn receipts_are_checked_against_the_callers_nonce_and_model_and_the_response() {
    let (r, _) = receipt(SigningAlgo::Ecdsa);
    let check = |e: ReceiptExpectations<'_>| verify_receipt_for(&r, &e);
    let ok = check(ReceiptExpectations {
        nonce: Some(NONCE),
        model: Some("llama"),
        ..Default::default()
    });
    assert!(ok.accepted, "{ok:#?}");
    for (e, code) in [
        (
            ReceiptExpectations {
                nonce: Some("another-nonce-0123456789"),
                ..Default::default()
            },
            "nonce_expected",
        ),
        (
            ReceiptExpectations {
                model: Some("mistral"),
                ..Default::default()
            },
            "model_expected",
        ),
    ] {
        assert_eq!(check(e).rejection.as_deref(), Some(code));
    }
    let honest = UnsignedFields::of_response(&serde_json::json!({
        "nonce": NONCE, "model": "llama", "verification_receipt": {}
    }));
    assert!(
        check(ReceiptExpectations {
            response: Some(&honest),
            ..Default::default()
        })
        .accepted
    );
    for lying in [
        serde_json::json!({"nonce": "another-nonce-0123456789", "model": "llama"}),
        serde_json::json!({"nonce": NONCE, "model": "mistral"}),
        serde_json::json!({"nonce": NONCE, "model": ["llama"]}),
    ] {
        let unsigned = UnsignedFields::of_response(&lying);
        let v = check(ReceiptExpectations {
            response: Some(&unsigned),
            ..Default::default()
        });
        assert_eq!(
            v.rejection.as_deref(),
            Some("response_matches_receipt"),
            "{lying}"
        );
    }
}

#[test]
fn receipt_counts_must_follow_from_the_results() {
    let (r, signer) = receipt(SigningAlgo::Ed25519);
    // Correctly signed, but claiming a count the results do not give.
    let mut payload = r.payload.clone();
    payload.binding_verified_instances += 1;
    let lying = signer.sign(payload).unwrap();
    assert_eq!(
        verify_receipt(&lying, None).rejection.as_deref(),
        Some("result_consistent")
    );
    // Correctly signed, but claiming success over a failed instance.
    let mut payload = r.payload.clone();
    payload.instance_results[0]
        .errors
        .push("tcb_status: OutOfDate".into());
    let lying = signer.sign(payload).unwrap();
    assert_eq!(
        verify_receipt(&lying, None).rejection.as_deref(),
        Some("result_consistent")
    );
    // An address that is not the key's.
    let mut payload = r.payload.clone();
    payload.signing_address = "00".repeat(32);
    let lying = signer.sign(payload).unwrap();
    assert_eq!(
        verify_receipt(&lying, None).rejection.as_deref(),
        Some("signing_address")
    );
}
