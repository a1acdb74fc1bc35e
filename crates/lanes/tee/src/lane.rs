//! The tee lane in the job pipeline: a provider's capacity offer with its evidence is an
//! attestation job. Each validator checks the evidence itself with [`TeeLane::verify`] —
//! its own trust roots, TDX policy, NVIDIA keys and clock in the [`TeeContext`] — and signs a
//! vote; a provider is listed only on a certificate of at least 2/3 of validator stake.
//!
//! The spec ([`AttestationSpec`]) is what the coordinator's registry asked: which node, whose
//! hotkey, which nonce, which GPUs. The artifact is the provider's [`InstanceEvidence`] as
//! JSON (quote, collateral, NRAS body). No key is held here and nothing is fetched.

use std::sync::Arc;

use base64::Engine as _;
use hallmark_core::{JobLane, SpecError, Verdict, VerdictBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::binding::Binding;
use crate::chain::{gpu_nonce_hex, validate_nonce, InstanceEvidence};
use crate::nvidia::{self, EatContext, EatEvidence, EatExpectations, GpuCapacity, Jwks};
use crate::policy::{TdxPolicy, TrustRoots};
use crate::tdx::{self, TdxContext};

/// The lane's wire name.
pub const LANE: &str = "tee";

/// The largest evidence document accepted (a quote with its collateral and a few GPU tokens
/// is well under this).
pub const MAX_EVIDENCE_BYTES: usize = 1 << 20;

/// Most GPU entries an offer may claim.
pub const MAX_GPU_ENTRIES: usize = 16;

/// Checks before the quote's own, then the quote's, the binding, and the GPU evidence's.
pub const CHECKS: &[&str] = &[
    "evidence_format",
    "instance_id",
    "collateral_format",
    tdx::checks::QUOTE_PARSE,
    tdx::checks::COLLATERAL_TIME,
    tdx::checks::COLLATERAL_AGE,
    tdx::checks::QUOTE_CHAIN,
    tdx::checks::TCB_STATUS,
    tdx::checks::ADVISORIES,
    tdx::checks::DEBUG,
    tdx::checks::MR_TD,
    tdx::checks::RTMR,
    "report_data_binding",
    "gpu_evidence",
    nvidia::checks::FORMAT,
    nvidia::checks::SIGNATURE,
    nvidia::checks::X5C,
    nvidia::checks::ISSUER,
    nvidia::checks::VALIDITY,
    nvidia::checks::NONCE,
    nvidia::checks::OVERALL,
    nvidia::checks::SUBMODS,
    nvidia::checks::GPU_CLAIMS,
    nvidia::checks::CAPACITY,
];

/// What validators are asked to attest: one provider node's evidence answering the nonce the
/// coordinator issued to that provider's hotkey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationSpec {
    /// The provider's node id (the evidence's `instance_id`).
    pub node_id: String,
    /// The provider's hotkey as SS58 text: the quote's report_data binds
    /// `sha256(nonce ‖ provider)`.
    pub provider: String,
    /// The coordinator-issued nonce the evidence answers.
    pub nonce: String,
    /// The GPUs the offer claims; the NVIDIA evidence must show exactly these.
    pub gpus: Vec<GpuCapacity>,
    /// SHA-256 of the offer payload the evidence is for (binds the job to one offer).
    pub offer_sha256: String,
}

/// The trust a validator verifies attestation evidence against: its own configuration.
#[derive(Debug, Clone)]
pub struct TeeTrust {
    pub roots: TrustRoots,
    pub policy: TdxPolicy,
    pub jwks: Jwks,
}

/// A node's configuration of the tee lane (`[lanes.tee]` in its TOML): which trust profile,
/// which TDX policy, and which NVIDIA key set. Every validator brings its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TeeConfig {
    /// `production` (default) trusts only Intel's root and the configured NVIDIA keys;
    /// `devnet` also trusts the public hallmark test root — never for real value.
    pub profile: crate::policy::Profile,
    /// The TDX policy evidence must satisfy.
    pub policy: TdxPolicy,
    /// The NVIDIA JWKS (NRAS form) GPU tokens are checked against; without one GPU evidence
    /// is rejected (fail closed) unless the devnet profile adds its test key.
    pub nvidia_jwks_file: Option<std::path::PathBuf>,
}

impl TeeTrust {
    /// The trust `cfg` describes, with the NVIDIA key set read from `jwks` (the contents of
    /// `nvidia_jwks_file`, when set).
    pub fn from_config(cfg: &TeeConfig, jwks: Option<&[u8]>) -> Result<Self, crate::TeeError> {
        cfg.policy.validate()?;
        let jwks = match jwks {
            Some(bytes) => Jwks::parse(bytes)?,
            None => Jwks { keys: Vec::new() },
        };
        let crate::policy::ProfileTrust { roots, jwks, .. } =
            crate::policy::ProfileTrust::new(cfg.profile, jwks)?;
        Ok(Self {
            roots,
            policy: cfg.policy.clone(),
            jwks,
        })
    }
}

/// The verifier's context: the trust, and the time to verify at (unix seconds).
#[derive(Debug, Clone)]
pub struct TeeContext {
    pub trust: Arc<TeeTrust>,
    pub now: u64,
}

/// The tee lane's validator side.
#[derive(Debug, Clone, Copy, Default)]
pub struct TeeLane;

impl JobLane for TeeLane {
    type Spec = AttestationSpec;
    type Context = TeeContext;

    fn name(&self) -> &'static str {
        LANE
    }

    fn check_names(&self) -> &'static [&'static str] {
        CHECKS
    }

    fn check_spec(&self, spec: &AttestationSpec) -> Result<(), SpecError> {
        let bad = |m: &str| Err(SpecError::OutOfBounds(m.to_string()));
        if spec.node_id.is_empty() || spec.node_id.len() > 64 {
            return bad("node_id must be 1..=64 characters");
        }
        if spec.provider.is_empty() || spec.provider.len() > 64 {
            return bad("provider must be an SS58 address");
        }
        validate_nonce(&spec.nonce).map_err(SpecError::OutOfBounds)?;
        if spec.gpus.len() > MAX_GPU_ENTRIES {
            return bad("too many GPU entries");
        }
        if spec.offer_sha256.len() != 64 || hex::decode(&spec.offer_sha256).is_err() {
            return bad("offer_sha256 must be 64 hex digits");
        }
        Ok(())
    }

    fn describe(&self, spec: &AttestationSpec) -> String {
        let gpus: u32 = spec.gpus.iter().map(|g| g.count).sum();
        format!("attest {} ({gpus} GPUs)", spec.node_id)
    }

    fn max_artifact_bytes(&self) -> usize {
        MAX_EVIDENCE_BYTES
    }

    /// An attestation is decided by its certificate alone: the provider is not a staked
    /// worker, so there is nothing on the ledger to pay or slash.
    fn settles_on_ledger(&self) -> bool {
        false
    }

    fn artifact_digest(&self, artifact: &[u8]) -> String {
        hex::encode(Sha256::digest(artifact))
    }

    fn verify(&self, ctx: &TeeContext, spec: &AttestationSpec, artifact: &[u8]) -> Verdict {
        verify_attestation(ctx, spec, artifact)
    }

    fn self_test(&self, evidence: Option<&std::path::Path>) -> Option<Verdict> {
        Some(crate::selftest::self_test(evidence))
    }
}

/// Every check of one provider's evidence, in [`CHECKS`] order.
pub fn verify_attestation(ctx: &TeeContext, spec: &AttestationSpec, artifact: &[u8]) -> Verdict {
    let mut v = VerdictBuilder::new(LANE);
    let rest = |v: &mut VerdictBuilder, from: &str| {
        let at = CHECKS
            .iter()
            .position(|c| *c == from)
            .unwrap_or(CHECKS.len());
        v.skip(&CHECKS[at..]);
    };
    if artifact.len() > MAX_EVIDENCE_BYTES {
        v.fail(
            "evidence_format",
            format!("{} bytes, over the cap", artifact.len()),
        );
        rest(&mut v, "instance_id");
        return v.finish();
    }
    let ev: InstanceEvidence = match serde_json::from_slice(artifact) {
        Ok(ev) => {
            v.pass("evidence_format", "instance evidence JSON");
            ev
        }
        Err(e) => {
            v.fail("evidence_format", e.to_string());
            rest(&mut v, "instance_id");
            return v.finish();
        }
    };
    if ev.instance_id == spec.node_id {
        v.pass("instance_id", format!("evidence for {}", spec.node_id));
    } else {
        v.fail(
            "instance_id",
            format!(
                "evidence is for {:?}, not {:?}",
                ev.instance_id, spec.node_id
            ),
        );
    }
    let quote = base64::engine::general_purpose::STANDARD.decode(&ev.quote);
    let collateral = dcap_qvl::QuoteCollateralV3::deserialize(&ev.collateral);
    let (quote, collateral) = match (quote, collateral) {
        (Ok(q), Ok(c)) => {
            v.pass("collateral_format", "QuoteCollateralV3");
            (q, c)
        }
        (Err(_), _) => {
            v.fail("collateral_format", "the quote is not base64");
            rest(&mut v, tdx::checks::QUOTE_PARSE);
            return v.finish();
        }
        (_, Err(e)) => {
            v.fail("collateral_format", e.to_string());
            rest(&mut v, tdx::checks::QUOTE_PARSE);
            return v.finish();
        }
    };
    let trust = &ctx.trust;
    let q = tdx::verify_quote(
        &quote,
        &collateral,
        &TdxContext {
            now: ctx.now,
            roots: &trust.roots,
            policy: &trust.policy,
        },
    );
    for c in &q.verdict.checks {
        v.record(c);
    }
    match &q.summary {
        Some(s) => {
            let b = Binding::Chutes {
                nonce: spec.nonce.clone(),
                e2e_pubkey: spec.provider.clone(),
            }
            .check(&s.report_data);
            if b.verified {
                v.pass("report_data_binding", "sha256(nonce ‖ provider hotkey)");
            } else {
                v.fail("report_data_binding", b.detail);
            }
        }
        None => v.skip(&["report_data_binding"]),
    }
    let wants_gpus = spec.gpus.iter().any(|g| g.count > 0);
    match (&ev.gpu_evidence, wants_gpus) {
        (None, false) => {
            v.pass("gpu_evidence", "no GPUs claimed, none sent");
            rest(&mut v, nvidia::checks::FORMAT);
        }
        (None, true) => {
            v.fail(
                "gpu_evidence",
                "the offer claims GPUs but no GPU evidence was sent",
            );
            rest(&mut v, nvidia::checks::FORMAT);
        }
        (Some(body), _) => {
            v.pass("gpu_evidence", "NRAS evidence present");
            match EatEvidence::from_value(body) {
                Err(e) => {
                    v.fail(nvidia::checks::FORMAT, e.to_string());
                    rest(&mut v, nvidia::checks::SIGNATURE);
                }
                Ok(eat) => {
                    let out = nvidia::verify_eat(
                        &eat,
                        &EatExpectations {
                            nonce_hex: gpu_nonce_hex(&spec.nonce),
                            capacity: Some(spec.gpus.clone()),
                            gpu_count: None,
                        },
                        &EatContext {
                            now: ctx.now,
                            jwks: &trust.jwks,
                            leeway_secs: 60,
                        },
                    );
                    for c in &out.verdict.checks {
                        v.record(c);
                    }
                }
            }
        }
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Profile, ProfileTrust};
    use crate::simulate::{Misbehaviour, SimulatedInstance};
    use crate::testroot::TestRootOfTrust;

    const PROVIDER: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    const NONCE: &str = "00112233445566778899aabbccddeeff";

    fn setup(m: Misbehaviour) -> (AttestationSpec, Vec<u8>, TeeContext) {
        let root = TestRootOfTrust::devnet().unwrap();
        let mut sim = SimulatedInstance::new("box-1", "m", 2, m);
        sim.info.e2e_pubkey = PROVIDER.into();
        let now = 1_800_000_000;
        let ev = sim.evidence(&root, NONCE, now).unwrap();
        let ProfileTrust { roots, jwks, .. } =
            ProfileTrust::new(Profile::Devnet, Jwks { keys: Vec::new() }).unwrap();
        let ctx = TeeContext {
            trust: Arc::new(TeeTrust {
                roots,
                policy: TdxPolicy::default(),
                jwks,
            }),
            now,
        };
        let spec = AttestationSpec {
            node_id: "box-1".into(),
            provider: PROVIDER.into(),
            nonce: NONCE.into(),
            gpus: sim.info.gpus.clone(),
            offer_sha256: "ab".repeat(32),
        };
        (spec, serde_json::to_vec(&ev).unwrap(), ctx)
    }

    #[test]
    fn honest_evidence_passes_every_check() {
        let (spec, artifact, ctx) = setup(Misbehaviour::default());
        TeeLane.check_spec(&spec).unwrap();
        let v = TeeLane.verify(&ctx, &spec, &artifact);
        assert!(v.accepted, "{v:#?}");
        let names: Vec<&str> = v.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, CHECKS, "every listed check ran, in order");
    }

    #[test]
    fn each_defect_is_named() {
        for (m, code) in [
            ("debug", tdx::checks::DEBUG),
            ("wrong_nonce", "report_data_binding"),
            ("stale_tcb", tdx::checks::TCB_STATUS),
            ("bad_gpu_token", nvidia::checks::SIGNATURE),
            ("missing_gpu", nvidia::checks::CAPACITY),
        ] {
            let (spec, artifact, ctx) = setup(Misbehaviour::only(m).unwrap());
            let v = TeeLane.verify(&ctx, &spec, &artifact);
            assert!(!v.accepted, "{m}");
            assert!(
                v.checks
                    .iter()
                    .any(|c| c.name == code && c.outcome == hallmark_core::CheckOutcome::Fail),
                "{m}: {v:#?}"
            );
        }
    }

    #[test]
    fn the_production_trust_and_other_bindings_refuse() {
        // Another provider's hotkey, another node, the production roots, garbage.
        let (mut spec, artifact, ctx) = setup(Misbehaviour::default());
        spec.provider = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into();
        let v = TeeLane.verify(&ctx, &spec, &artifact);
        assert_eq!(v.rejection.as_deref(), Some("report_data_binding"));
        let (mut spec, artifact, ctx) = setup(Misbehaviour::default());
        spec.node_id = "box-2".into();
        assert_eq!(
            TeeLane.verify(&ctx, &spec, &artifact).rejection.as_deref(),
            Some("instance_id")
        );
        let (spec, artifact, mut ctx) = setup(Misbehaviour::default());
        let production = ProfileTrust::new(Profile::Production, Jwks { keys: Vec::new() }).unwrap();
        ctx.trust = Arc::new(TeeTrust {
            roots: production.roots,
            policy: TdxPolicy::default(),
            jwks: production.jwks,
        });
        let v = TeeLane.verify(&ctx, &spec, &artifact);
        assert_eq!(
            v.rejection.as_deref(),
            Some(tdx::checks::QUOTE_CHAIN),
            "{v:#?}"
        );
        let v = TeeLane.verify(&ctx, &spec, b"not json");
        assert_eq!(v.rejection.as_deref(), Some("evidence_format"));
        assert_eq!(v.checks.len(), CHECKS.len());
        // Spec bounds.
        let (mut spec, _, _) = setup(Misbehaviour::default());
        spec.nonce = "short".into();
        assert!(TeeLane.check_spec(&spec).is_err());
    }
}
