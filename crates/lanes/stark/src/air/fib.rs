//! `fib`: wide Fibonacci. Each row is an independent sequence `x_{k+2} = x_k^2 + x_{k+1}^2` of
//! [`FIB_WIDTH`] elements whose first two elements are derived from the job seed.
//!
//! Binding: every enabled row adds `1 / (z - x_0 - α·x_1)` to a logup sum; the verifier
//! recomputes the same sum from the seed, so the proof is about exactly these inputs.

use num_traits::One;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;
use stwo_constraint_framework::{relation, EvalAtRow, FrameworkEval, Relation, RelationEntry};

use crate::field::M31Stream;
use crate::statement::JobSpec;

/// Elements per sequence (trace columns besides the enabler).
pub const FIB_WIDTH: usize = 64;
relation!(FibInputs, 2);

/// The fib AIR for one trace size.
#[derive(Clone)]
pub struct FibEval {
    /// log2 of the padded row count.
    pub log_rows: u32,
    /// Logup elements drawn after the trace commitment.
    pub inputs: FibInputs,
}

impl FrameworkEval for FibEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + super::LOG_EXPAND
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let enabled = eval.next_trace_mask();
        eval.add_constraint(enabled.clone() * (enabled.clone() - E::F::from(BaseField::one())));
        let mut a = eval.next_trace_mask();
        let mut b = eval.next_trace_mask();
        let first = [a.clone(), b.clone()];
        for _ in 2..FIB_WIDTH {
            let c = eval.next_trace_mask();
            eval.add_constraint(c.clone() - (a.square() + b.square()));
            a = b;
            b = c;
        }
        eval.add_to_relation(RelationEntry::new(
            &self.inputs,
            E::EF::from(enabled),
            &first,
        ));
        eval.finalize_logup();
        eval
    }
}

/// Trace columns (enabler + sequence).
pub fn n_columns() -> usize {
    1 + FIB_WIDTH
}

/// The first two elements of every sequence, derived from the seed.
pub fn inputs(spec: &JobSpec) -> Vec<[BaseField; 2]> {
    let mut stream = M31Stream::new("fib inputs", &spec.seed.0);
    (0..spec.size)
        .map(|_| [stream.next_m31(), stream.next_m31()])
        .collect()
}

/// The logup sum the trace must reach, computed from public data only.
pub fn public_sum(spec: &JobSpec, elements: &FibInputs) -> SecureField {
    let denoms: Vec<SecureField> = inputs(spec)
        .iter()
        .map(|pair| <FibInputs as Relation<BaseField, SecureField>>::combine(elements, pair))
        .collect();
    SecureField::batch_inverse(&denoms).into_iter().sum()
}

/// Prover side: the execution trace.
#[cfg(feature = "prover")]
pub mod witness {
    use stwo::core::fields::m31::BaseField;
    use stwo::core::fields::FieldExpOps;
    use stwo::prover::backend::simd::m31::LOG_N_LANES;
    use stwo::prover::backend::simd::qm31::PackedSecureField;
    use stwo_constraint_framework::{LogupTraceGenerator, Relation};

    use super::{inputs, FibInputs, FIB_WIDTH};
    use crate::prover::{Columns, InteractionTrace};
    use crate::statement::JobSpec;

    /// Builds the trace: column 0 is the enabler, then the sequence.
    pub fn trace(spec: &JobSpec, log_rows: u32) -> Columns {
        let rows = 1usize << log_rows;
        let zero = BaseField::from_u32_unchecked(0);
        let mut cols = vec![vec![zero; rows]; super::n_columns()];
        for (r, [a0, b0]) in inputs(spec).into_iter().enumerate() {
            cols[0][r] = BaseField::from_u32_unchecked(1);
            let (mut a, mut b) = (a0, b0);
            cols[1][r] = a;
            cols[2][r] = b;
            for col in cols.iter_mut().take(FIB_WIDTH + 1).skip(3) {
                let c = a.square() + b.square();
                col[r] = c;
                a = b;
                b = c;
            }
        }
        Columns::new(log_rows, cols)
    }

    /// The logup column: `enabled / combine(x0, x1)` per row.
    pub fn interaction(trace: &Columns, elements: &FibInputs) -> InteractionTrace {
        let mut logup = LogupTraceGenerator::new(trace.log_rows);
        let mut col = logup.new_col();
        for vec_row in 0..(1 << (trace.log_rows - LOG_N_LANES)) {
            let values = [trace.packed(1, vec_row), trace.packed(2, vec_row)];
            let denom: PackedSecureField = elements.combine(&values);
            col.write_frac(vec_row, trace.packed(0, vec_row).into(), denom);
        }
        col.finalize_col();
        logup.finalize_last()
    }
}
