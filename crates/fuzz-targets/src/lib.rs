//! Fuzz targets: each takes arbitrary bytes and hands them to a parser or verifier that
//! untrusted input reaches. None may panic, abort or hang on any input; every refusal is an
//! `Err` or a rejecting verdict. `fuzz/` runs them under libFuzzer (`cargo fuzz`), and
//! `tests/corpus.rs` replays the committed corpus (`fuzz/corpus/<target>/`) on stable.

use hallmark_core::Envelope;
#[cfg(feature = "http")]
use serde::de::DeserializeOwned;

/// One fuzz target: what it feeds its bytes to.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` call it.
pub const TARGETS: &[(&str, Target)] = &[
    ("dimacs", dimacs),
    ("witness", witness),
    ("dsse_envelope", dsse_envelope),
    ("canonical_json", canonical_json),
    ("tdx_quote", tdx_quote),
    ("tdx_collateral", tdx_collateral),
    ("eat_token", eat_token),
    ("wasm_meta", wasm_meta),
    ("stark_package", stark_package),
    #[cfg(feature = "http")]
    ("http_bodies", http_bodies),
];

/// A DIMACS CNF (what `sat solve`, `sat verify` and the sat lane parse).
pub fn dimacs(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cnf) = hallmark_sat::Cnf::parse_dimacs(text) {
            // A parsed instance is small enough to check an all-false assignment against.
            let _ = hallmark_sat::check_assignment(&cnf, &[]);
        }
    }
}

/// A witness's `v` lines (a worker's assignment).
pub fn witness(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(a) = hallmark_sat::parse_v_lines(text) {
            let _ = hallmark_sat::format_v_lines(&a);
        }
    }
}

/// A DSSE envelope as JSON, and its signature check.
pub fn dsse_envelope(data: &[u8]) {
    if let Ok(env) = serde_json::from_slice::<Envelope>(data) {
        let _ = env.verify_untyped();
        let _ = env.canonical_bytes();
    }
}

/// Any JSON value through RFC 8785 canonicalisation (what every signature is taken over).
pub fn canonical_json(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(bytes) = hallmark_core::canonical::to_canonical_bytes(&v) {
            // Canonical bytes parse back to a value that canonicalises to the same bytes.
            if let Ok(back) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                let again = hallmark_core::canonical::to_canonical_bytes(&back).ok();
                assert_eq!(
                    again.as_deref(),
                    Some(bytes.as_slice()),
                    "canonical form is stable"
                );
            }
        }
    }
}

fn tee_context_roots() -> hallmark_tee::TrustRoots {
    // A root nothing chains to: every quote is rejected, after being parsed all the way.
    hallmark_tee::TrustRoots::single("fuzz", vec![0x30, 0x03, 0x02, 0x01, 0x00])
}

/// A TDX quote's bytes against an empty collateral (the quote parser and the checks that run
/// before any signature).
pub fn tdx_quote(data: &[u8]) {
    let collateral = serde_json::json!({
        "pck_crl_issuer_chain": "", "root_ca_crl": "", "pck_crl": "", "tcb_info_issuer_chain": "",
        "tcb_info": "", "tcb_info_signature": "", "qe_identity_issuer_chain": "",
        "qe_identity": "", "qe_identity_signature": ""
    });
    let Ok(collateral) = hallmark_tee::tdx::parse_collateral(collateral.to_string().as_bytes())
    else {
        return;
    };
    let roots = tee_context_roots();
    let policy = hallmark_tee::TdxPolicy::default();
    let ctx = hallmark_tee::tdx::TdxContext {
        now: 1_800_000_000,
        roots: &roots,
        policy: &policy,
    };
    let _ = hallmark_tee::tdx::verify_quote(data, &collateral, &ctx);
}

/// Collateral JSON (what a provider sends beside its quote).
pub fn tdx_collateral(data: &[u8]) {
    let _ = hallmark_tee::tdx::parse_collateral(data);
}

/// An NRAS response body or a compact JWT, through the whole EAT check with an empty JWKS.
pub fn eat_token(data: &[u8]) {
    use hallmark_tee::nvidia::{verify_eat, EatContext, EatEvidence, EatExpectations, Jwks};
    if let Ok(ev) = EatEvidence::parse(data) {
        let jwks = Jwks { keys: Vec::new() };
        let ctx = EatContext {
            now: 1_800_000_000,
            jwks: &jwks,
            leeway_secs: 0,
        };
        let expect = EatExpectations {
            nonce_hex: "00".repeat(32),
            capacity: None,
            gpu_count: None,
        };
        let v = verify_eat(&ev, &expect, &ctx);
        assert!(
            !v.verdict.accepted,
            "nothing verifies against an empty JWKS"
        );
    }
}

/// A wasm module's contract meta (the build lane's recipe source).
pub fn wasm_meta(data: &[u8]) {
    let _ = hallmark_build::read_meta(data);
    let _ = hallmark_build::inspect(data);
}

/// A stark proof package (what a worker hands in for a job).
pub fn stark_package(data: &[u8]) {
    let _ = hallmark_stark::package::decode_package(data);
}

#[cfg(feature = "http")]
fn body<T: DeserializeOwned>(data: &[u8]) {
    let _ = serde_json::from_slice::<T>(data);
}

/// Every HTTP request body type a node parses.
#[cfg(feature = "http")]
pub fn http_bodies(data: &[u8]) {
    use hallmark_node::compute::messages as compute;
    use hallmark_node::jobs::messages as jobs;
    body::<Envelope>(data);
    body::<hallmark_node::messages::NewRoundRequest>(data);
    body::<hallmark_node::messages::OwnerPickRequest>(data);
    body::<jobs::ClaimRequest>(data);
    body::<jobs::ProofUpload>(data);
    body::<compute::OfferSubmission>(data);
    body::<compute::NonceRequest>(data);
    body::<compute::EvidenceSubmission>(data);
    body::<compute::HealthReport>(data);
    body::<compute::ClaimRequest>(data);
    body::<compute::ReleaseRequest>(data);
    body::<hallmark_node::ledger_service::FaucetRequest>(data);
    body::<hallmark_node::builds::VerifyRequest>(data);
    if let Ok(env) = serde_json::from_slice::<Envelope>(data) {
        let _ =
            hallmark_core::Signed::<hallmark_node::jobs::JobRequest>::from_envelope(env).verify();
    }
}
