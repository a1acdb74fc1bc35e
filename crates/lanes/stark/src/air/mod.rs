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

/// log2 of the composition domain over the trace domain, shared by every AIR: constraints of
/// degree at most 3 need a domain twice the trace (see the module docs for why no AIR may go
/// higher).
pub const LOG_EXPAND: u32 = 1;

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

#[cfg(test)]
mod tests {
    use stwo::core::air::Component;
    use stwo::core::fields::qm31::SecureField;
    use stwo_constraint_framework::{FrameworkComponent, FrameworkEval, TraceLocationAllocator};

    use super::*;

    fn committed_columns<E: FrameworkEval>(eval: E) -> Vec<usize> {
        let component = FrameworkComponent::new(
            &mut TraceLocationAllocator::default(),
            eval,
            SecureField::default(),
        );
        component
            .trace_log_degree_bounds()
            .iter()
            .map(|tree| tree.len())
            .collect()
    }

    /// The witness lays out `n_columns` columns; the AIR must read exactly as many, and its
    /// logup must add one QM31 column (4 base columns) per pair of lookups.
    #[test]
    fn witness_width_matches_what_each_air_reads() {
        let fib = committed_columns(fib::FibEval {
            log_rows: 4,
            inputs: fib::FibInputs::dummy(),
        });
        assert_eq!(fib, vec![0, fib::n_columns(), 4]);
        let chain = committed_columns(hashchain::HashchainEval {
            log_rows: 4,
            links: hashchain::ChainLinks::dummy(),
        });
        assert_eq!(chain, vec![0, hashchain::n_columns(), 4]);
        for n in [1, 7, matmul::MAX_N] {
            let mm = committed_columns(matmul::MatmulEval {
                log_rows: 4,
                n,
                entries: matmul::MatmulEntries::dummy(),
            });
            assert_eq!(mm, vec![0, matmul::n_columns(n), 8], "n = {n}");
        }
    }
}
