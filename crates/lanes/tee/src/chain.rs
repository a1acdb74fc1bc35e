//! The attestation chain for one upstream instance: its TDX quote (dcap-qvl + policy), the
//! report_data binding to our nonce and its e2e key, and its NVIDIA GPU evidence bound to the
//! same nonce. Pure: evidence and context in, per-instance result out.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::binding::Binding;
use crate::nvidia::{self, EatContext, EatEvidence, EatExpectations, GpuCapacity, Jwks};
use crate::policy::{TdxPolicy, TrustRoots};
use crate::tdx::{self, TdxContext};

/// The shortest nonce a caller may ask for: anything shorter is guessable or replayable.
pub const MIN_NONCE_LEN: usize = 16;
/// The longest nonce accepted (it ends up in URLs and signed payloads).
pub const MAX_NONCE_LEN: usize = 256;

/// An upstream instance as listed: its id, the model it serves and its e2e public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceInfo {
    pub instance_id: String,
    pub model: String,
    /// Base64, exactly as the upstream sends it (the binding hashes this string).
    pub e2e_pubkey: String,
    /// The GPUs this instance claims, checked against its NVIDIA evidence.
    #[serde(default)]
    pub gpus: Vec<GpuCapacity>,
}

/// What an instance returns for a nonce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceEvidence {
    pub instance_id: String,
    /// The TDX quote, base64.
    pub quote: String,
    /// `QuoteCollateralV3` JSON for the quote's platform.
    pub collateral: serde_json::Value,
    /// The NRAS response body for the instance's GPUs, when it has GPUs.
    #[serde(default)]
    pub gpu_evidence: Option<serde_json::Value>,
}

/// The per-instance outcome, in the shape the proxy's receipt carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceResult {
    pub instance_id: String,
    /// Intel TCB status, or empty when the quote did not verify.
    pub tdx_status: String,
    pub tdx_error_present: bool,
    pub debug_mode_disabled: bool,
    pub binding_verified: bool,
    pub gpu_token_checked: bool,
    pub gpu_verified: bool,
    pub expected_report_data: String,
    pub actual_report_data: String,
    /// Every failed check, `check: detail`; empty when the instance is verified.
    pub errors: Vec<String>,
}

impl InstanceResult {
    /// An instance about which nothing verified yet; `error` (if any) says why.
    pub fn unverified(instance_id: &str, error: Option<String>) -> Self {
        Self {
            instance_id: instance_id.to_string(),
            tdx_status: String::new(),
            tdx_error_present: error.is_some(),
            debug_mode_disabled: false,
            binding_verified: false,
            gpu_token_checked: false,
            gpu_verified: false,
            expected_report_data: String::new(),
            actual_report_data: String::new(),
            errors: error.into_iter().collect(),
        }
    }

    /// Verified end to end: quote accepted by policy, binding holds, GPUs (if any) verified.
    pub fn verified(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Everything the chain check depends on besides the evidence.
#[derive(Debug, Clone, Copy)]
pub struct ChainContext<'a> {
    pub now: u64,
    pub roots: &'a TrustRoots,
    pub policy: &'a TdxPolicy,
    pub jwks: &'a Jwks,
}

/// Checks a caller's nonce: printable ASCII, 16..=256 characters.
pub fn validate_nonce(nonce: &str) -> Result<(), String> {
    if nonce.len() < MIN_NONCE_LEN {
        return Err(format!(
            "nonce must be at least {MIN_NONCE_LEN} characters (got {})",
            nonce.len()
        ));
    }
    if nonce.len() > MAX_NONCE_LEN {
        return Err(format!("nonce must be at most {MAX_NONCE_LEN} characters"));
    }
    if !nonce.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("nonce must be printable ASCII without spaces".into());
    }
    Ok(())
}

/// The 32-byte GPU nonce (hex) derived from a caller's nonce: the nonce itself when it is 64
/// hex characters, else sha256 of its text — NRAS nonces are 32 bytes.
pub fn gpu_nonce_hex(nonce: &str) -> String {
    match hex::decode(nonce) {
        Ok(b) if b.len() == 32 => nonce.to_ascii_lowercase(),
        _ => hex::encode(Sha256::digest(nonce.as_bytes())),
    }
}

/// Verifies one instance's evidence for `nonce` against what it was listed with.
pub fn verify_instance(
    info: &InstanceInfo,
    ev: &InstanceEvidence,
    nonce: &str,
    ctx: &ChainContext<'_>,
) -> InstanceResult {
    let mut r = InstanceResult::unverified(&info.instance_id, None);
    if ev.instance_id != info.instance_id {
        r.errors.push(format!(
            "instance_id: evidence is for {:?}, not {:?}",
            ev.instance_id, info.instance_id
        ));
    }

    let quote = match base64::engine::general_purpose::STANDARD.decode(&ev.quote) {
        Ok(q) => q,
        Err(_) => {
            r.tdx_error_present = true;
            r.errors.push("quote: not base64".into());
            return r;
        }
    };
    let collateral = match dcap_qvl::QuoteCollateralV3::deserialize(&ev.collateral) {
        Ok(c) => c,
        Err(e) => {
            r.tdx_error_present = true;
            r.errors.push(format!("collateral: {e}"));
            return r;
        }
    };
    let q = tdx::verify_quote(
        &quote,
        &collateral,
        &TdxContext {
            now: ctx.now,
            roots: ctx.roots,
            policy: ctx.policy,
        },
    );
    for c in failed(&q.verdict) {
        r.errors.push(c);
    }
    r.tdx_error_present = !q.verdict.accepted;
    if let Some(s) = &q.summary {
        r.tdx_status = s.status.clone();
        r.debug_mode_disabled = !s.debug;
        let b = Binding::Chutes {
            nonce: nonce.to_string(),
            e2e_pubkey: info.e2e_pubkey.clone(),
        }
        .check(&s.report_data);
        r.binding_verified = b.verified;
        r.expected_report_data = b.expected_report_data;
        r.actual_report_data = b.actual_report_data;
        if !b.verified {
            r.errors.push(format!("report_data_binding: {}", b.detail));
        }
    }

    let wants_gpus = info.gpus.iter().any(|g| g.count > 0);
    match (&ev.gpu_evidence, wants_gpus) {
        (None, false) => r.gpu_verified = true,
        (None, true) => r
            .errors
            .push("gpu_evidence: instance claims GPUs but sent no GPU evidence".into()),
        (Some(body), _) => {
            r.gpu_token_checked = true;
            match EatEvidence::from_value(body) {
                Err(e) => r.errors.push(format!("{}: {e}", nvidia::checks::FORMAT)),
                Ok(eat) => {
                    let out = nvidia::verify_eat(
                        &eat,
                        &EatExpectations {
                            nonce_hex: gpu_nonce_hex(nonce),
                            capacity: Some(info.gpus.clone()),
                            gpu_count: None,
                        },
                        &EatContext {
                            now: ctx.now,
                            jwks: ctx.jwks,
                            leeway_secs: 60,
                        },
                    );
                    r.gpu_verified = out.verdict.accepted;
                    r.errors.extend(failed(&out.verdict));
                }
            }
        }
    }
    r
}

fn failed(v: &hallmark_core::Verdict) -> Vec<String> {
    v.checks
        .iter()
        .filter(|c| c.outcome == hallmark_core::CheckOutcome::Fail)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}
