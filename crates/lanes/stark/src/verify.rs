//! The verifier: package bytes + policy (+ the job the caller expects) → verdict. No I/O.
//!
//! Order of checks: size cap, framing/decompression/decoding, statement, expected job,
//! security parameters (the proof's embedded config must equal the policy; the verifier
//! never uses it), public data (recomputed from the seed; outputs checked against their
//! digests), proof shape, then stwo's verifier with the logup sum computed here.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::Serialize;
use stwo::core::air::Component;
use stwo::core::channel::Blake2sChannel;
use stwo::core::fields::m31::{BaseField, P};
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::{CommitmentSchemeVerifier, PcsConfig};
use stwo::core::proof::StarkProof;
use stwo::core::vcs_lifted::blake2_merkle::{Blake2sMerkleChannel, Blake2sMerkleHasher};
use stwo::core::verifier::verify;
use stwo_constraint_framework::{FrameworkComponent, FrameworkEval, TraceLocationAllocator};

use crate::air::{fib, hashchain, matmul};
use crate::package::{decode_package, proof_hash, PackageError, PACKAGE_VERSION};
use crate::params::{describe_config, SecurityPolicy, MAX_PACKAGE_BYTES};
use crate::statement::{Bytes32, JobSpec, PublicOutputs, Statement};

/// Why a package was rejected. [`Rejection::code`] names the failed check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The package is larger than the cap.
    #[error("package is {bytes} bytes, over the {limit}-byte cap")]
    Oversized {
        /// Size seen.
        bytes: usize,
        /// The cap.
        limit: usize,
    },
    /// The package decompresses past the limit (a zstd bomb, or a body no prover makes).
    #[error("package decompresses past the {limit}-byte limit")]
    DecompressedTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a well-formed package.
    #[error("malformed package: {0}")]
    Malformed(String),
    /// A package layout this verifier does not know.
    #[error("unsupported package version {0}")]
    UnsupportedVersion(u16),
    /// The statement itself is invalid (unknown size, mismatched output kind).
    #[error("invalid statement: {0}")]
    InvalidStatement(String),
    /// The proof is about another job than the one expected.
    #[error("proof is for {found}, expected {expected}")]
    StatementMismatch {
        /// The job the caller expected.
        expected: JobSpec,
        /// The job in the package.
        found: JobSpec,
    },
    /// The proof was made with other security parameters than the policy requires.
    #[error("security parameters: proof uses {found}, policy requires {required}")]
    SecurityParameters {
        /// The proof's embedded configuration.
        found: String,
        /// The policy.
        required: String,
    },
    /// The verifier's own policy is below the minimum security.
    #[error("policy states {bits} bits, below the {minimum}-bit minimum")]
    WeakPolicy {
        /// Stated bits.
        bits: u32,
        /// Required minimum.
        minimum: u32,
    },
    /// Public data in the package disagrees with the statement.
    #[error("public inputs: {0}")]
    PublicInputs(String),
    /// The proof's structure does not fit the AIR.
    #[error("proof shape: {0}")]
    ProofShape(String),
    /// stwo rejected the proof.
    #[error("proof does not verify: {0}")]
    ProofInvalid(String),
}

impl Rejection {
    /// Stable, machine-readable name of the failed check.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Oversized { .. } | Rejection::DecompressedTooLarge { .. } => "oversized",
            Rejection::Malformed(_) => "malformed",
            Rejection::UnsupportedVersion(_) => "unsupported_version",
            Rejection::InvalidStatement(_) => "invalid_statement",
            Rejection::StatementMismatch { .. } => "statement_mismatch",
            Rejection::SecurityParameters { .. } => "security_parameters",
            Rejection::WeakPolicy { .. } => "weak_policy",
            Rejection::PublicInputs(_) => "public_inputs",
            Rejection::ProofShape(_) => "proof_shape",
            Rejection::ProofInvalid(_) => "proof_invalid",
        }
    }
}

impl From<PackageError> for Rejection {
    fn from(e: PackageError) -> Self {
        match e {
            PackageError::TooLarge { limit } => Rejection::DecompressedTooLarge { limit },
            other => Rejection::Malformed(other.to_string()),
        }
    }
}

/// A verified proof.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct VerifiedProof {
    /// What was proven.
    pub statement: Statement,
    /// BLAKE3 of the package.
    pub proof_hash: Bytes32,
    /// Package size in bytes.
    pub package_bytes: usize,
    /// Conjectured security of the policy it was checked against.
    pub security_bits: u32,
    /// Matmul's product C (row-major); empty for other job types.
    #[serde(skip)]
    pub output: Vec<u32>,
}

/// Checks packages against a policy and a size cap.
#[derive(Debug, Clone, Copy)]
pub struct Verifier {
    /// Required security parameters.
    pub policy: SecurityPolicy,
    /// Largest package accepted.
    pub max_package_bytes: usize,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            policy: SecurityPolicy::NETWORK,
            max_package_bytes: MAX_PACKAGE_BYTES,
        }
    }
}

impl Verifier {
    /// Verifies `package`; when `expected` is given the proof must be about that job.
    pub fn verify(
        &self,
        package: &[u8],
        expected: Option<&JobSpec>,
    ) -> Result<VerifiedProof, Rejection> {
        let bits = self.policy.security_bits();
        if bits < SecurityPolicy::MIN_SECURITY_BITS {
            return Err(Rejection::WeakPolicy {
                bits,
                minimum: SecurityPolicy::MIN_SECURITY_BITS,
            });
        }
        if package.len() > self.max_package_bytes {
            return Err(Rejection::Oversized {
                bytes: package.len(),
                limit: self.max_package_bytes,
            });
        }
        let body = decode_package(package)?;
        if body.version != PACKAGE_VERSION {
            return Err(Rejection::UnsupportedVersion(body.version));
        }
        let statement = body.statement;
        statement
            .check()
            .map_err(|e| Rejection::InvalidStatement(e.to_string()))?;
        if let Some(expected) = expected {
            if *expected != statement.spec {
                return Err(Rejection::StatementMismatch {
                    expected: *expected,
                    found: statement.spec,
                });
            }
        }
        let log_rows = crate::air::trace_log_rows(&statement.spec);
        let config = self.policy.config();
        if !self.policy.matches(&body.proof.0.config) {
            return Err(Rejection::SecurityParameters {
                found: describe_config(&body.proof.0.config),
                required: self.policy.to_string(),
            });
        }
        check_stark(&statement, &body.output, body.proof, config, log_rows)?;
        Ok(VerifiedProof {
            proof_hash: proof_hash(package),
            package_bytes: package.len(),
            security_bits: bits,
            statement,
            output: body.output,
        })
    }
}

/// Checks that every value is a canonical M31 element (below p).
fn check_canonical(values: &[u32], what: &str) -> Result<(), Rejection> {
    match values.iter().find(|&&v| v >= P) {
        None => Ok(()),
        Some(v) => Err(Rejection::PublicInputs(format!(
            "{what} holds {v}, not a canonical M31 value"
        ))),
    }
}

fn check_stark(
    statement: &Statement,
    output: &[u32],
    proof: StarkProof<Blake2sMerkleHasher>,
    config: PcsConfig,
    log_rows: u32,
) -> Result<(), Rejection> {
    let spec = &statement.spec;
    let channel = &mut Blake2sChannel::default();
    statement.mix_into(channel);
    config.mix_into(channel);
    let mut scheme = CommitmentSchemeVerifier::<Blake2sMerkleChannel>::new(config);
    match &statement.outputs {
        PublicOutputs::Fib => {
            no_output(output)?;
            run_stwo(
                channel,
                &mut scheme,
                proof,
                |channel| {
                    let inputs = fib::FibInputs::draw(channel);
                    let sum = fib::public_sum(spec, &inputs);
                    (fib::FibEval { log_rows, inputs }, sum)
                },
                || fib::FibEval {
                    log_rows,
                    inputs: fib::FibInputs::dummy(),
                },
            )
        }
        PublicOutputs::Hashchain { final_state } => {
            no_output(output)?;
            check_canonical(final_state, "final state")?;
            let final_state = final_state.map(BaseField::from_u32_unchecked);
            run_stwo(
                channel,
                &mut scheme,
                proof,
                |channel| {
                    let links = hashchain::ChainLinks::draw(channel);
                    let sum = hashchain::public_sum(spec, &final_state, &links);
                    (hashchain::HashchainEval { log_rows, links }, sum)
                },
                || hashchain::HashchainEval {
                    log_rows,
                    links: hashchain::ChainLinks::dummy(),
                },
            )
        }
        PublicOutputs::Matmul {
            digest_a,
            digest_b,
            digest_c,
        } => {
            let n = spec.size as usize;
            let (a, b) = matmul::inputs(spec);
            if a.digest() != *digest_a {
                return Err(Rejection::PublicInputs(
                    "digest of A does not match the seed's A".into(),
                ));
            }
            if b.digest() != *digest_b {
                return Err(Rejection::PublicInputs(
                    "digest of B does not match the seed's B".into(),
                ));
            }
            if output.len() != n * n {
                return Err(Rejection::PublicInputs(format!(
                    "C has {} entries, expected {}",
                    output.len(),
                    n * n
                )));
            }
            check_canonical(output, "C")?;
            let c = matmul::Matrix {
                n,
                entries: output
                    .iter()
                    .map(|&v| BaseField::from_u32_unchecked(v))
                    .collect(),
            };
            if c.digest() != *digest_c {
                return Err(Rejection::PublicInputs(
                    "digest of C does not match the C shipped".into(),
                ));
            }
            run_stwo(
                channel,
                &mut scheme,
                proof,
                |channel| {
                    let entries = matmul::MatmulEntries::draw(channel);
                    let sum = matmul::public_sum(&a, &b, &c, &entries);
                    (
                        matmul::MatmulEval {
                            log_rows,
                            n,
                            entries,
                        },
                        sum,
                    )
                },
                || matmul::MatmulEval {
                    log_rows,
                    n,
                    entries: matmul::MatmulEntries::dummy(),
                },
            )
        }
    }
}

fn no_output(output: &[u32]) -> Result<(), Rejection> {
    if output.is_empty() {
        Ok(())
    } else {
        Err(Rejection::PublicInputs(format!(
            "{} unexpected output values",
            output.len()
        )))
    }
}

/// Mirrors the prover's protocol: commit the preprocessed and trace trees, draw the logup
/// elements, commit the interaction tree, then let stwo check the rest.
fn run_stwo<E: FrameworkEval>(
    channel: &mut Blake2sChannel,
    scheme: &mut CommitmentSchemeVerifier<Blake2sMerkleChannel>,
    proof: StarkProof<Blake2sMerkleHasher>,
    draw: impl FnOnce(&mut Blake2sChannel) -> (E, SecureField),
    shape_only: impl FnOnce() -> E,
) -> Result<(), Rejection> {
    // Expected column counts per tree, from the AIR itself.
    let probe = FrameworkComponent::new(
        &mut TraceLocationAllocator::default(),
        shape_only(),
        SecureField::default(),
    );
    let sizes = probe.trace_log_degree_bounds();
    check_shape(&proof, &sizes)?;

    scheme.commit(proof.0.commitments[0], &sizes[0], channel);
    scheme.commit(proof.0.commitments[1], &sizes[1], channel);
    let (eval, public_sum) = draw(channel);
    let component =
        FrameworkComponent::new(&mut TraceLocationAllocator::default(), eval, public_sum);
    scheme.commit(proof.0.commitments[2], &sizes[2], channel);

    // stwo's verifier assumes a well-shaped proof and may panic on one it cannot index; the
    // shape check above covers the common cases and anything deeper is a rejection too.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        verify(&[&component], channel, scheme, proof)
    }));
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Rejection::ProofInvalid(e.to_string())),
        Err(_) => Err(Rejection::ProofShape(
            "stwo's verifier could not index the proof".into(),
        )),
    }
}

fn check_shape(
    proof: &StarkProof<Blake2sMerkleHasher>,
    sizes: &stwo::core::pcs::TreeVec<Vec<u32>>,
) -> Result<(), Rejection> {
    let p = &proof.0;
    // Preprocessed, trace and interaction (from the AIR), then the composition polynomial.
    const TREES: usize = 4;
    let expected_columns = [sizes[0].len(), sizes[1].len(), sizes[2].len(), 8];
    if p.commitments.len() != TREES {
        return Err(Rejection::ProofShape(format!(
            "{} commitments, expected {TREES}",
            p.commitments.len()
        )));
    }
    if p.sampled_values.len() != TREES
        || p.queried_values.len() != TREES
        || p.decommitments.len() != TREES
    {
        return Err(Rejection::ProofShape(
            "wrong number of trees in openings".into(),
        ));
    }
    for (tree, &columns) in expected_columns.iter().enumerate() {
        if p.sampled_values[tree].len() != columns || p.queried_values[tree].len() != columns {
            return Err(Rejection::ProofShape(format!(
                "tree {tree} opens {} sampled / {} queried columns, expected {columns}",
                p.sampled_values[tree].len(),
                p.queried_values[tree].len()
            )));
        }
    }
    Ok(())
}
