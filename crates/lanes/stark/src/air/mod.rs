//! The AIRs of the stark lane, one module per job type.
//!
//! Each AIR constrains its execution trace with `stwo-constraint-framework` and binds the
//! trace to the job's public data with one logup relation whose total the verifier computes
//! itself from the statement. Trace generation is behind the `prover` feature.
//!
//! Every AIR keeps its constraints at degree 3 or less (composition domain twice the trace).
//! stwo 2.3 lifts all committed trees to the largest one; with higher degree the composition
//! halves outgrow the trace and an explicit lifting size is needed, which in turn breaks the
//! empty preprocessed tree's decommitment. Degree 3 avoids both (hashchain pays with a square
//! column per S-box).

pub mod fib;
pub mod hashchain;
pub mod matmul;
pub mod poseidon;

use crate::field::padded_log_rows;
use crate::statement::{JobSpec, JobType};

/// log2 of the padded trace rows of a job, derived from the spec alone.
pub fn trace_log_rows(spec: &JobSpec) -> u32 {
    match spec.job_type {
        JobType::Fib | JobType::Hashchain => padded_log_rows(spec.size as usize),
        JobType::Matmul => {
            let n = spec.size as usize;
            padded_log_rows(n * n)
        }
    }
}
