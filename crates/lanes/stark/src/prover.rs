//! Job spec → execution trace → stwo proof → package. Needs the `prover` feature.
//!
//! [`ProverBackend`] is the seam for other proving hardware: [`SimdProver`] runs stwo's SIMD
//! CPU backend; a GPU backend (stwo's `Backend` traits implemented on a GPU) would be another
//! implementation of the same trait, and nothing above it would change.

use std::time::{Duration, Instant};

use stwo::core::channel::Blake2sChannel;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::proof::StarkProof;
use stwo::core::vcs_lifted::blake2_merkle::{Blake2sMerkleChannel, Blake2sMerkleHasher};
use stwo::core::ColumnVec;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::simd::m31::PackedBaseField;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::poly::circle::{CircleEvaluation, PolyOps};
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::{prove, CommitmentSchemeProver};
use stwo_constraint_framework::{FrameworkComponent, FrameworkEval, TraceLocationAllocator};

use crate::air::{fib, hashchain, matmul, trace_log_rows, LOG_EXPAND};
use crate::package::{encode_package, PackageBody};
use crate::params::{SecurityPolicy, MAX_PACKAGE_BYTES};
use crate::statement::{JobSpec, JobType, PublicOutputs, Statement, StatementError};
use crate::Bytes32;

/// A trace committed column by column.
pub type TraceEvaluations = ColumnVec<CircleEvaluation<SimdBackend, BaseField, BitReversedOrder>>;

/// A logup interaction trace and the sum it reaches.
pub type InteractionTrace = (TraceEvaluations, SecureField);

/// Execution-trace columns on the SIMD backend.
pub struct Columns {
    /// log2 of the (padded) row count.
    pub log_rows: u32,
    columns: Vec<BaseColumn>,
}

impl Columns {
    /// Wraps column-major values; every column has `2^log_rows` entries.
    pub fn new(log_rows: u32, columns: Vec<Vec<BaseField>>) -> Self {
        let columns = columns.into_iter().map(BaseColumn::from_iter).collect();
        Self { log_rows, columns }
    }

    /// Sixteen rows of one column, as the SIMD backend packs them.
    pub fn packed(&self, column: usize, vec_row: usize) -> PackedBaseField {
        self.columns[column].data[vec_row]
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// The columns as evaluations over the trace domain, ready to commit.
    pub fn evaluations(&self) -> TraceEvaluations {
        let domain = CanonicCoset::new(self.log_rows).circle_domain();
        self.columns
            .iter()
            .map(|c| CircleEvaluation::new(domain, c.clone()))
            .collect()
    }
}

/// Why a job could not be proven.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// The job spec is invalid.
    #[error(transparent)]
    Statement(#[from] StatementError),
    /// The packaged proof exceeds the cap; it would be refused by every verifier.
    #[error("proof package is {bytes} bytes, over the {limit}-byte cap")]
    Oversized {
        /// Packaged size.
        bytes: usize,
        /// The cap.
        limit: usize,
    },
    /// The trace does not satisfy the AIR (a bug in trace generation, never expected).
    #[error("trace does not satisfy the {0} AIR: {1}")]
    Unsatisfied(JobType, String),
    /// Serialising or compressing failed.
    #[error("packaging failed: {0}")]
    Packaging(String),
}

/// Stages of a proof, reported to a progress callback as they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProveStage {
    /// Running the job and laying out its trace.
    Trace,
    /// Interpolating and committing the trace.
    CommitTrace,
    /// Building and committing the logup interaction trace.
    Interaction,
    /// Composition polynomial, FRI and proof of work.
    Prove,
    /// Serialising, compressing and hashing.
    Package,
}

impl ProveStage {
    /// Every stage in order.
    pub const ALL: [ProveStage; 5] = [
        ProveStage::Trace,
        ProveStage::CommitTrace,
        ProveStage::Interaction,
        ProveStage::Prove,
        ProveStage::Package,
    ];

    /// Short label for progress output.
    pub fn label(self) -> &'static str {
        match self {
            ProveStage::Trace => "trace",
            ProveStage::CommitTrace => "commit trace",
            ProveStage::Interaction => "interaction",
            ProveStage::Prove => "prove",
            ProveStage::Package => "package",
        }
    }
}

/// A proven job: the package to ship and what it says.
#[derive(Debug, Clone)]
pub struct ProvedJob {
    /// The statement the proof is about.
    pub statement: Statement,
    /// The package (what goes on the wire and is hashed).
    pub package: Vec<u8>,
    /// BLAKE3 of `package`.
    pub proof_hash: Bytes32,
    /// Rows in the padded trace.
    pub trace_rows: u64,
    /// Trace columns.
    pub trace_columns: usize,
    /// Wall time per stage, in [`ProveStage::ALL`] order.
    pub stage_times: Vec<(ProveStage, Duration)>,
}

/// Something that turns job specs into packaged proofs.
pub trait ProverBackend: Send + Sync {
    /// A short name for logs and `hallmark stark prove` output.
    fn name(&self) -> &'static str;

    /// Proves `spec`, reporting each stage as it starts.
    fn prove(
        &self,
        spec: &JobSpec,
        progress: &mut dyn FnMut(ProveStage),
    ) -> Result<ProvedJob, ProveError>;
}

/// stwo's SIMD backend on the CPU.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimdProver {
    /// Security parameters to prove with (verifiers require the network policy).
    pub policy: SecurityPolicy,
}

impl ProverBackend for SimdProver {
    fn name(&self) -> &'static str {
        "stwo-simd-cpu"
    }

    fn prove(
        &self,
        spec: &JobSpec,
        progress: &mut dyn FnMut(ProveStage),
    ) -> Result<ProvedJob, ProveError> {
        prove_job(spec, &self.policy, progress)
    }
}

struct StageClock<'a> {
    progress: &'a mut dyn FnMut(ProveStage),
    current: Option<(ProveStage, Instant)>,
    times: Vec<(ProveStage, Duration)>,
}

impl<'a> StageClock<'a> {
    fn new(progress: &'a mut dyn FnMut(ProveStage)) -> Self {
        Self {
            progress,
            current: None,
            times: Vec::new(),
        }
    }

    fn enter(&mut self, stage: ProveStage) {
        self.finish();
        (self.progress)(stage);
        self.current = Some((stage, Instant::now()));
    }

    fn finish(&mut self) {
        if let Some((stage, started)) = self.current.take() {
            self.times.push((stage, started.elapsed()));
        }
    }
}

/// Proves a job with stwo's SIMD backend and packages the proof.
pub fn prove_job(
    spec: &JobSpec,
    policy: &SecurityPolicy,
    progress: &mut dyn FnMut(ProveStage),
) -> Result<ProvedJob, ProveError> {
    spec.check()?;
    let mut clock = StageClock::new(progress);
    clock.enter(ProveStage::Trace);
    let log_rows = trace_log_rows(spec);
    let (statement, output, proof, width) = match spec.job_type {
        JobType::Fib => {
            let trace = fib::witness::trace(spec, log_rows);
            let statement = Statement {
                spec: *spec,
                outputs: PublicOutputs::Fib,
            };
            let width = trace.width();
            let proof = prove_air(&statement, policy, trace, &mut clock, |channel, trace| {
                let inputs = fib::FibInputs::draw(channel);
                let interaction = fib::witness::interaction(trace, &inputs);
                let expected = fib::public_sum(spec, &inputs);
                let eval = fib::FibEval {
                    log_rows: trace.log_rows,
                    inputs,
                };
                (eval, interaction, expected)
            })?;
            (statement, Vec::new(), proof, width)
        }
        JobType::Hashchain => {
            let (trace, final_state) = hashchain::witness::trace(spec, log_rows);
            let statement = Statement {
                spec: *spec,
                outputs: PublicOutputs::Hashchain {
                    final_state: final_state.map(|v| v.0),
                },
            };
            let width = trace.width();
            let proof = prove_air(&statement, policy, trace, &mut clock, |channel, trace| {
                let links = hashchain::ChainLinks::draw(channel);
                let interaction = hashchain::witness::interaction(trace, &links);
                let expected = hashchain::public_sum(spec, &final_state, &links);
                let eval = hashchain::HashchainEval {
                    log_rows: trace.log_rows,
                    links,
                };
                (eval, interaction, expected)
            })?;
            (statement, Vec::new(), proof, width)
        }
        JobType::Matmul => {
            let n = spec.size as usize;
            let (a, b) = matmul::inputs(spec);
            let c = a.mul(&b);
            let trace = matmul::witness::trace(&a, &b, &c, log_rows);
            let statement = Statement {
                spec: *spec,
                outputs: PublicOutputs::Matmul {
                    digest_a: a.digest(),
                    digest_b: b.digest(),
                    digest_c: c.digest(),
                },
            };
            let width = trace.width();
            let proof = prove_air(&statement, policy, trace, &mut clock, |channel, trace| {
                let entries = matmul::MatmulEntries::draw(channel);
                let interaction = matmul::witness::interaction(trace, n, &entries);
                let expected = matmul::public_sum(&a, &b, &c, &entries);
                let eval = matmul::MatmulEval {
                    log_rows: trace.log_rows,
                    n,
                    entries,
                };
                (eval, interaction, expected)
            })?;
            let output = c.entries.iter().map(|v| v.0).collect();
            (statement, output, proof, width)
        }
    };

    clock.enter(ProveStage::Package);
    let body = PackageBody::new(statement.clone(), output, proof);
    let package = encode_package(&body).map_err(|e| ProveError::Packaging(e.to_string()))?;
    if package.len() > MAX_PACKAGE_BYTES {
        return Err(ProveError::Oversized {
            bytes: package.len(),
            limit: MAX_PACKAGE_BYTES,
        });
    }
    let proof_hash = crate::package::proof_hash(&package);
    clock.finish();
    Ok(ProvedJob {
        statement,
        package,
        proof_hash,
        trace_rows: 1u64 << log_rows,
        trace_columns: width,
        stage_times: clock.times,
    })
}

/// The shared proving protocol: mix the statement and policy, commit an empty preprocessed
/// tree and the trace, draw the logup elements, commit the interaction trace, prove.
fn prove_air<E: FrameworkEval + Sync>(
    statement: &Statement,
    policy: &SecurityPolicy,
    trace: Columns,
    clock: &mut StageClock<'_>,
    interact: impl FnOnce(&mut Blake2sChannel, &Columns) -> (E, InteractionTrace, SecureField),
) -> Result<StarkProof<Blake2sMerkleHasher>, ProveError> {
    let job_type = statement.spec.job_type;
    let config = policy.config();
    clock.enter(ProveStage::CommitTrace);
    let twiddles = SimdBackend::precompute_twiddles(
        CanonicCoset::new(trace.log_rows + LOG_EXPAND + config.fri_config.log_blowup_factor)
            .circle_domain()
            .half_coset,
    );
    let channel = &mut Blake2sChannel::default();
    statement.mix_into(channel);
    config.mix_into(channel);
    let mut commitment_scheme =
        CommitmentSchemeProver::<SimdBackend, Blake2sMerkleChannel>::new(config, &twiddles);

    let tree_builder = commitment_scheme.tree_builder();
    tree_builder.commit(channel);
    let mut tree_builder = commitment_scheme.tree_builder();
    tree_builder.extend_evals(trace.evaluations());
    tree_builder.commit(channel);

    clock.enter(ProveStage::Interaction);
    let (eval, (interaction, claimed_sum), expected_sum) = interact(channel, &trace);
    if claimed_sum != expected_sum {
        return Err(ProveError::Unsatisfied(
            job_type,
            "the trace's logup sum differs from the public one".into(),
        ));
    }
    let mut tree_builder = commitment_scheme.tree_builder();
    tree_builder.extend_evals(interaction);
    tree_builder.commit(channel);

    clock.enter(ProveStage::Prove);
    let component =
        FrameworkComponent::new(&mut TraceLocationAllocator::default(), eval, claimed_sum);
    prove::<SimdBackend, Blake2sMerkleChannel>(&[&component], channel, commitment_scheme)
        .map_err(|e| ProveError::Unsatisfied(job_type, e.to_string()))
}
