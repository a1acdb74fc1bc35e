//! The stark lane in the job pipeline: [`StarkLane`] is the validator side (spec limits,
//! artifact digest, the verifier as a [`Verdict`]), [`StarkExecutor`] the worker side (a
//! [`ProverBackend`] behind the [`Executor`] trait).

use hallmark_core::{JobLane, SpecError, Verdict, VerdictBuilder};

use crate::package::proof_hash;
use crate::params::{SecurityPolicy, MAX_PACKAGE_BYTES};
use crate::statement::JobSpec;
use crate::verify::{Rejection, Verifier};

/// The lane's wire name.
pub const LANE: &str = "stark";

/// The verifier's checks, in the order it runs them.
pub const CHECKS: &[&str] = &[
    "policy",
    "size",
    "framing",
    "statement",
    "security_parameters",
    "public_inputs",
    "proof_shape",
    "proof",
];

/// Which check a rejection comes from (an index into [`CHECKS`]).
fn check_of(rejection: &Rejection) -> usize {
    match rejection {
        Rejection::WeakPolicy { .. } => 0,
        Rejection::Oversized { .. } => 1,
        Rejection::DecompressedTooLarge { .. }
        | Rejection::Malformed(_)
        | Rejection::UnsupportedVersion(_) => 2,
        Rejection::InvalidStatement(_) | Rejection::StatementMismatch { .. } => 3,
        Rejection::SecurityParameters { .. } => 4,
        Rejection::PublicInputs(_) => 5,
        Rejection::ProofShape(_) => 6,
        Rejection::ProofInvalid(_) => 7,
    }
}

/// The stark lane's validator side. Its context is the security policy proofs must meet.
#[derive(Debug, Clone, Copy, Default)]
pub struct StarkLane;

impl StarkLane {
    /// The verdict for one checked package: the verifier's outcome, check by check.
    pub fn verdict(result: Result<&crate::VerifiedProof, &Rejection>) -> Verdict {
        let mut v = VerdictBuilder::new(LANE);
        match result {
            Ok(proof) => {
                for name in CHECKS {
                    let detail = match *name {
                        "proof" => format!(
                            "{} verifies at {} bits ({} bytes)",
                            proof.statement.spec, proof.security_bits, proof.package_bytes
                        ),
                        _ => String::new(),
                    };
                    v.pass(name, detail);
                }
            }
            Err(rejection) => {
                let at = check_of(rejection);
                for name in &CHECKS[..at] {
                    v.pass(name, "");
                }
                v.fail_code(CHECKS[at], rejection.code(), rejection.to_string());
                v.skip(&CHECKS[at + 1..]);
            }
        }
        v.finish()
    }
}

impl JobLane for StarkLane {
    type Spec = JobSpec;
    type Context = SecurityPolicy;

    fn name(&self) -> &'static str {
        LANE
    }

    fn check_names(&self) -> &'static [&'static str] {
        CHECKS
    }

    fn check_spec(&self, spec: &JobSpec) -> Result<(), SpecError> {
        spec.check()
            .map_err(|e| SpecError::OutOfBounds(e.to_string()))
    }

    fn describe(&self, spec: &JobSpec) -> String {
        format!("{} size {}", spec.job_type, spec.size)
    }

    fn max_artifact_bytes(&self) -> usize {
        MAX_PACKAGE_BYTES
    }

    fn artifact_digest(&self, artifact: &[u8]) -> String {
        proof_hash(artifact).to_hex()
    }

    fn verify(&self, policy: &SecurityPolicy, spec: &JobSpec, artifact: &[u8]) -> Verdict {
        let verifier = Verifier {
            policy: *policy,
            max_package_bytes: MAX_PACKAGE_BYTES,
        };
        Self::verdict(verifier.verify(artifact, Some(spec)).as_ref())
    }

    /// Known-answer: a small Fibonacci job proven by the stwo prover passes the verifier at
    /// the network's policy, and the same package with one byte changed is refused. Needs no
    /// evidence files; a build without the prover ships none.
    fn self_test(&self, _evidence: Option<&std::path::Path>) -> Option<Verdict> {
        #[cfg(feature = "prover")]
        {
            Some(self_test())
        }
        #[cfg(not(feature = "prover"))]
        {
            None
        }
    }
}

/// The stark lane's known-answer self-test (see `JobLane::self_test`).
#[cfg(feature = "prover")]
pub fn self_test() -> Verdict {
    let mut v = hallmark_core::VerdictBuilder::new(LANE);
    let policy = SecurityPolicy::NETWORK;
    let proved = crate::statement::JobSpec::new(crate::statement::JobType::Fib, 16, [0x5e; 32])
        .map_err(|e| e.to_string())
        .and_then(|spec| {
            crate::prover::prove_job(&spec, &policy, &mut |_| {})
                .map(|p| (spec, p))
                .map_err(|e| e.to_string())
        });
    let (spec, proved) = match proved {
        Ok(p) => p,
        Err(e) => {
            v.fail("proof_accepted", format!("the prover failed: {e}"));
            return v.finish();
        }
    };
    let verifier = Verifier {
        policy,
        max_package_bytes: MAX_PACKAGE_BYTES,
    };
    match verifier.verify(&proved.package, Some(&spec)) {
        Ok(_) => v.pass(
            "proof_accepted",
            format!("fib size 16, {} bytes", proved.package.len()),
        ),
        Err(e) => v.fail(
            "proof_accepted",
            format!("the verifier refused a real proof: {e}"),
        ),
    }
    let mut tampered = proved.package;
    let at = tampered.len() / 2;
    if let Some(b) = tampered.get_mut(at) {
        *b ^= 0x01;
    }
    match verifier.verify(&tampered, Some(&spec)) {
        Err(e) => v.pass("tampered_proof_refused", format!("refused: {e}")),
        Ok(_) => v.fail(
            "tampered_proof_refused",
            "a proof with a flipped byte was accepted",
        ),
    }
    v.finish()
}

#[cfg(feature = "prover")]
pub use executor::StarkExecutor;

#[cfg(feature = "prover")]
mod executor {
    use std::sync::Arc;

    use hallmark_core::{ExecuteError, Executor};

    use crate::prover::{ProverBackend, SimdProver};
    use crate::statement::JobSpec;

    /// The stark lane's worker side: proves a spec with a [`ProverBackend`] (the CPU SIMD
    /// prover by default; a GPU backend plugs in here) and returns the package.
    #[derive(Clone)]
    pub struct StarkExecutor {
        backend: Arc<dyn ProverBackend>,
    }

    impl StarkExecutor {
        /// An executor proving with `backend`.
        pub fn new(backend: Arc<dyn ProverBackend>) -> Self {
            Self { backend }
        }
    }

    impl Default for StarkExecutor {
        fn default() -> Self {
            Self::new(Arc::new(SimdProver::default()))
        }
    }

    impl Executor for StarkExecutor {
        type Spec = JobSpec;

        fn lane(&self) -> &'static str {
            super::LANE
        }

        fn backend(&self) -> String {
            self.backend.name().to_string()
        }

        fn execute(&self, spec: &JobSpec) -> Result<Vec<u8>, ExecuteError> {
            self.backend
                .prove(spec, &mut |_| {})
                .map(|p| p.package)
                .map_err(|e| ExecuteError::Failed(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "prover")]
    #[test]
    fn the_self_test_passes() {
        let v = super::self_test();
        assert!(v.accepted, "{v:#?}");
        assert_eq!(v.checks.len(), 2);
    }

    #[test]
    fn every_rejection_maps_to_a_listed_check() {
        let cases = [
            Rejection::WeakPolicy {
                bits: 1,
                minimum: 2,
            },
            Rejection::Oversized { bytes: 2, limit: 1 },
            Rejection::Malformed("x".into()),
            Rejection::InvalidStatement("x".into()),
            Rejection::SecurityParameters {
                found: "a".into(),
                required: "b".into(),
            },
            Rejection::PublicInputs("x".into()),
            Rejection::ProofShape("x".into()),
            Rejection::ProofInvalid("x".into()),
        ];
        for (i, r) in cases.iter().enumerate() {
            let v = StarkLane::verdict(Err(r));
            assert!(!v.accepted);
            assert_eq!(v.rejection.as_deref(), Some(r.code()));
            assert_eq!(v.checks.len(), CHECKS.len(), "{r:?}");
            assert_eq!(v.checks[i].name, CHECKS[i]);
            assert_eq!(v.checks[i].outcome, hallmark_core::CheckOutcome::Fail);
        }
    }

    #[test]
    fn garbage_is_rejected_with_a_verdict() {
        let spec = JobSpec::new(crate::JobType::Fib, 64, [1; 32]).unwrap();
        let v = StarkLane.verify(&SecurityPolicy::NETWORK, &spec, b"not a package");
        assert!(!v.accepted);
        assert_eq!(v.rejection.as_deref(), Some("malformed"));
        let too_big = vec![0u8; MAX_PACKAGE_BYTES + 1];
        let v = StarkLane.verify(&SecurityPolicy::NETWORK, &spec, &too_big);
        assert_eq!(v.rejection.as_deref(), Some("oversized"));
    }
}
