//! Simulated upstream instances: evidence minted by a [`TestRootOfTrust`], honest or with a
//! chosen defect, so devnet and tests run the whole attestation chain without TDX hardware.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::binding::chutes_report_data;
use crate::chain::{gpu_nonce_hex, InstanceEvidence, InstanceInfo};
use crate::error::TeeError;
use crate::nvidia::GpuCapacity;
use crate::testroot::{GpuClaims, PlatformTcb, TdQuoteSpec, TestRootOfTrust};

/// How a simulated instance misbehaves (all false: honest).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(default, deny_unknown_fields)]
pub struct Misbehaviour {
    /// Run the TD with the DEBUG attribute set.
    pub debug: bool,
    /// Bind the quote (and GPU token) to a different nonce than the one asked for.
    pub wrong_nonce: bool,
    /// Sit one TCB level behind (`OutOfDate`).
    pub stale_tcb: bool,
    /// Corrupt the signature of the GPU token.
    pub bad_gpu_token: bool,
    /// Attest fewer GPUs than the instance claims.
    pub missing_gpu: bool,
}

/// Each single defect by name, with the verifier check it trips.
pub const DEFECTS: [(&str, &str); 5] = [
    ("debug", "debug_disabled"),
    ("wrong_nonce", "report_data_binding"),
    ("stale_tcb", "tcb_status"),
    ("bad_gpu_token", "eat_signature"),
    ("missing_gpu", "gpu_capacity"),
];

impl Misbehaviour {
    /// Turns on the defect called `name` (one of [`DEFECTS`]).
    pub fn add(&mut self, name: &str) -> Result<(), String> {
        let flag = match name {
            "debug" => &mut self.debug,
            "wrong_nonce" => &mut self.wrong_nonce,
            "stale_tcb" => &mut self.stale_tcb,
            "bad_gpu_token" => &mut self.bad_gpu_token,
            "missing_gpu" => &mut self.missing_gpu,
            other => {
                let names: Vec<&str> = DEFECTS.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown defect {other:?}: expected one of {}",
                    names.join(", ")
                ));
            }
        };
        *flag = true;
        Ok(())
    }

    /// Only the defect called `name`.
    pub fn only(name: &str) -> Result<Self, String> {
        let mut m = Self::default();
        m.add(name)?;
        Ok(m)
    }
}

/// One simulated instance: what it is listed as, and how it behaves.
#[derive(Debug, Clone)]
pub struct SimulatedInstance {
    pub info: InstanceInfo,
    pub misbehaviour: Misbehaviour,
}

impl SimulatedInstance {
    /// An instance serving `model` on `gpus` H100s, with an e2e key derived from its id.
    pub fn new(instance_id: &str, model: &str, gpus: u32, misbehaviour: Misbehaviour) -> Self {
        use sha2::Digest as _;
        let key = sha2::Sha256::digest(format!("e2e key of {instance_id}").as_bytes());
        Self {
            info: InstanceInfo {
                instance_id: instance_id.to_string(),
                model: model.to_string(),
                e2e_pubkey: base64::engine::general_purpose::STANDARD.encode(key),
                gpus: if gpus == 0 {
                    Vec::new()
                } else {
                    vec![GpuCapacity {
                        model: "H100".into(),
                        count: gpus,
                    }]
                },
            },
            misbehaviour,
        }
    }

    /// Evidence for `nonce` at time `now`: quote, collateral (issued an hour ago, current for
    /// 30 days) and, when the instance has GPUs, an NRAS body.
    pub fn evidence(
        &self,
        root: &TestRootOfTrust,
        nonce: &str,
        now: u64,
    ) -> Result<InstanceEvidence, TeeError> {
        let m = self.misbehaviour;
        let bound_nonce = if m.wrong_nonce {
            format!("{nonce}-not-the-callers")
        } else {
            nonce.to_string()
        };
        let mut report_data = [0u8; 64];
        report_data[..32].copy_from_slice(&chutes_report_data(&bound_nonce, &self.info.e2e_pubkey));
        let spec = TdQuoteSpec {
            debug: m.debug,
            tcb: if m.stale_tcb {
                PlatformTcb::Stale
            } else {
                PlatformTcb::Current
            },
            ..TdQuoteSpec::new(report_data)
        };
        let quote = root.td_quote(&spec)?;
        let collateral = root.collateral(now.saturating_sub(3600), 30 * 24 * 3600)?;
        let gpus = crate::nvidia::total_gpus(&self.info.gpus);
        let gpu_evidence = if gpus == 0 {
            None
        } else {
            let attested = if m.missing_gpu { gpus - 1 } else { gpus };
            let claims = vec![GpuClaims::healthy_h100(); attested as usize];
            let mut body = root.nvidia_eat(
                &gpu_nonce_hex(&bound_nonce),
                &claims,
                now.saturating_sub(5),
                3600,
            )?;
            if m.bad_gpu_token {
                corrupt_overall_signature(&mut body);
            }
            Some(body)
        };
        Ok(InstanceEvidence {
            instance_id: self.info.instance_id.clone(),
            quote: base64::engine::general_purpose::STANDARD.encode(quote),
            collateral,
            gpu_evidence,
        })
    }
}

/// Flips one bit inside the overall token's signature (kept valid base64url).
fn corrupt_overall_signature(body: &mut serde_json::Value) {
    if let Some(serde_json::Value::String(jwt)) = body.get_mut(0).and_then(|p| p.get_mut(1)) {
        let mut bytes = std::mem::take(jwt).into_bytes();
        if let Some(i) = bytes.len().checked_sub(8) {
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        }
        *jwt = String::from_utf8_lossy(&bytes).into_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_defect_name_sets_its_own_flag_and_unknown_names_are_refused() {
        let mut seen = Vec::new();
        for (name, _) in DEFECTS {
            let m = Misbehaviour::only(name).unwrap();
            assert_ne!(m, Misbehaviour::default(), "{name}");
            assert!(
                !seen.contains(&m),
                "{name} sets the same flag as another defect"
            );
            seen.push(m);
        }
        let err = Misbehaviour::default().add("nonsense").unwrap_err();
        assert!(
            err.contains("unknown defect") && err.contains("missing_gpu"),
            "{err}"
        );
    }
}
