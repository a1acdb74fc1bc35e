//! hallmark-stark: the stark lane.
//!
//! Three job types ([`JobType`]) with AIRs written on `stwo-constraint-framework`, a prover
//! (feature `prover`, on by default; needs nightly) that turns a [`JobSpec`] into a packaged
//! proof, and a [`Verifier`] that takes package bytes, a [`SecurityPolicy`] and optionally the
//! job it expects, and nothing else. Every rejection names its check ([`Rejection::code`]).
//! [`StarkLane`] and [`StarkExecutor`] plug both into the network's job pipeline.

pub mod air;
pub mod field;
pub mod lane;
pub mod package;
pub mod params;
#[cfg(feature = "prover")]
pub mod prover;
pub mod statement;
pub mod verify;

#[cfg(feature = "prover")]
pub use lane::StarkExecutor;
pub use lane::StarkLane;
pub use package::{proof_hash, PackageBody};
pub use params::{SecurityPolicy, MAX_PACKAGE_BYTES};
#[cfg(feature = "prover")]
pub use prover::{prove_job, ProveError, ProveStage, ProvedJob, ProverBackend, SimdProver};
pub use statement::{Bytes32, JobSpec, JobType, PublicOutputs, Statement, StatementError};
pub use verify::{Rejection, VerifiedProof, Verifier};
