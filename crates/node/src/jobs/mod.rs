//! Proven jobs across roles: the coordinator's [`board`] (requests, leases, proofs, votes,
//! settlement on the ledger), the worker's [`prover`] and the validator's [`voter`].

pub mod board;
pub mod external;
pub mod messages;
pub mod prover;
pub mod voter;

pub use board::JobBoard;
pub use messages::{
    check_request, job_id_of, JobRequest, JobStatus, JobView, ProofUpload, VoteAck,
};
pub use prover::JobProver;
pub use voter::JobVoter;
