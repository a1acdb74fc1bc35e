//! hallmark-eval: the eval lane.
//!
//! Every validator runs every hash-pinned submission itself, in an embedded, deterministic,
//! fuel-metered WebAssembly sandbox ([`sandbox`], wasmi pinned exactly), on tasks nobody could
//! predict before the deadline ([`tasks`]), grades each against its own reference run, and
//! reports per-task records under a Merkle root ([`measure`]). Honest validators' reports are
//! byte-identical; any difference is evidence, and [`measure::first_difference`] with
//! [`measure::replay_task`] find the task and say which report is wrong.
//!
//! Depends on `hallmark-core` only: no I/O but the sandbox's own thread.

pub mod archive;
pub mod lane;
pub mod measure;
pub mod samples;
pub mod sandbox;
pub mod tasks;

pub use archive::{pack, unpack, Archive, ArchiveError, Manifest};
pub use lane::{EvalLane, EvalRound};
pub use measure::{
    first_difference, replay_task, Difference, EvalReport, Grader, MeasureError, MemberReport,
    TaskRecord,
};
pub use sandbox::{Contained, Limits, Sandbox};
pub use tasks::EvalParams;
