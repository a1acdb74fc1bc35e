//! hallmark-sat: the audit-arena lane.
//!
//! Workers find satisfying assignments for random k-SAT instances that every party regenerates
//! from a published seed; validators replay each witness deterministically and score workers
//! from what they observed first-hand.
//!
//! - [`cnf`]: the formula type, DIMACS reading and writing.
//! - [`generate`]: deterministic uniform random k-SAT from a seed.
//! - [`solve`]: the CDCL solver (CaDiCaL).
//! - [`witness`]: the signed witness (provenance binding) and `v`-line parsing.
//! - [`verify`]: replay verification with named rejection codes.
//! - [`score`]: per-worker per-round scores from first-hand observations.
//! - [`lane`]: a round regenerated from its seed, and the worker's solve of one instance.
//! - [`round`]: the lane in the round pipeline ([`hallmark_core::RoundLane`] for [`SatLane`],
//!   [`hallmark_core::RoundWorker`] for [`SatWorker`]).

pub mod cnf;
pub mod generate;
pub mod lane;
pub mod round;
pub mod score;
pub mod solve;
pub mod verify;
pub mod witness;

pub use cnf::{Cnf, DimacsError};
pub use generate::{generate_instance, InstanceParams};
pub use lane::{SatInstance, SatLane, SatRound, SatWorkError};
pub use round::SatWorker;
pub use solve::{solve, SolveOutcome};
pub use verify::{check_assignment, replay_witness, verify_witness, Rejection, SatVerifyContext};
pub use witness::{format_v_lines, parse_v_lines, Witness};
