//! `hashchain`: `size` chained applications of the [`poseidon`](super::poseidon) permutation,
//! `s_{k+1} = P(s_k)`, from an initial state derived from the seed. One row per application.
//!
//! Binding: row `k` consumes `(k, s_k)` and produces `(k+1, s_{k+1})` in a logup relation. The
//! verifier supplies `(0, s_0)` and takes `(size, s_final)`, so the sum only closes when the
//! rows form one chain of exactly `size` links from the public initial state to the claimed
//! final state (indices strictly increase, so no row can sit on a cycle).

use std::array;

use num_traits::One;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;
use stwo_constraint_framework::{relation, EvalAtRow, FrameworkEval, Relation, RelationEntry};

use super::poseidon::{permute_with, N_PERMUTATION_COLUMNS, N_STATE};
use crate::field::M31Stream;
use crate::statement::JobSpec;

relation!(ChainLinks, 17);

/// The hashchain AIR for one trace size.
#[derive(Clone)]
pub struct HashchainEval {
    /// log2 of the padded row count.
    pub log_rows: u32,
    /// Logup elements drawn after the trace commitment.
    pub links: ChainLinks,
}

impl FrameworkEval for HashchainEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + super::LOG_EXPAND
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let one = E::F::from(BaseField::one());
        let enabled = eval.next_trace_mask();
        eval.add_constraint(enabled.clone() * (enabled.clone() - one.clone()));
        let index = eval.next_trace_mask();
        let input: [E::F; N_STATE] = array::from_fn(|_| eval.next_trace_mask());
        let output = permute_with(input.clone(), |value| {
            let column = eval.next_trace_mask();
            eval.add_constraint(value - column.clone());
            column
        });
        let consumed: Vec<E::F> = std::iter::once(index.clone()).chain(input).collect();
        let produced: Vec<E::F> = std::iter::once(index + one).chain(output).collect();
        eval.add_to_relation(RelationEntry::new(
            &self.links,
            E::EF::from(enabled.clone()),
            &consumed,
        ));
        eval.add_to_relation(RelationEntry::new(
            &self.links,
            -E::EF::from(enabled),
            &produced,
        ));
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// Trace columns: enabler, link index, then the permutation's columns.
pub fn n_columns() -> usize {
    2 + N_PERMUTATION_COLUMNS
}

/// The chain's first state.
pub fn initial_state(spec: &JobSpec) -> [BaseField; N_STATE] {
    let mut stream = M31Stream::new("hashchain initial state", &spec.seed.0);
    array::from_fn(|_| stream.next_m31())
}

/// Runs the chain natively (what a worker computes, and what a test can cross-check).
pub fn run(spec: &JobSpec) -> [BaseField; N_STATE] {
    let mut state = initial_state(spec);
    for _ in 0..spec.size {
        state = super::poseidon::permute(state);
    }
    state
}

/// The logup sum the trace must reach: `1/(z - (0, s_0)) - 1/(z - (size, s_final))`.
pub fn public_sum(
    spec: &JobSpec,
    final_state: &[BaseField; N_STATE],
    links: &ChainLinks,
) -> SecureField {
    let start: Vec<BaseField> = std::iter::once(BaseField::from_u32_unchecked(0))
        .chain(initial_state(spec))
        .collect();
    let end: Vec<BaseField> = std::iter::once(BaseField::from_u32_unchecked(spec.size))
        .chain(final_state.iter().copied())
        .collect();
    let start_denom = <ChainLinks as Relation<BaseField, SecureField>>::combine(links, &start);
    let end_denom = <ChainLinks as Relation<BaseField, SecureField>>::combine(links, &end);
    start_denom.inverse() - end_denom.inverse()
}

/// Prover side: the execution trace.
#[cfg(feature = "prover")]
pub mod witness {
    use stwo::core::fields::m31::BaseField;
    use stwo::prover::backend::simd::m31::{PackedBaseField, LOG_N_LANES};
    use stwo::prover::backend::simd::qm31::PackedSecureField;
    use stwo_constraint_framework::{LogupTraceGenerator, Relation};

    use super::{initial_state, ChainLinks, N_PERMUTATION_COLUMNS, N_STATE};
    use crate::air::poseidon::permute_with;
    use crate::prover::{Columns, InteractionTrace};
    use crate::statement::JobSpec;

    const FIRST_STATE_COLUMN: usize = 2;

    /// One row's permutation columns: the input, then every recorded round value.
    fn permutation_row(input: [BaseField; N_STATE]) -> (Vec<BaseField>, [BaseField; N_STATE]) {
        let mut row = Vec::with_capacity(N_PERMUTATION_COLUMNS);
        row.extend_from_slice(&input);
        let output = permute_with(input, |v| {
            row.push(v);
            v
        });
        (row, output)
    }

    /// Builds the trace and returns it with the chain's final state.
    #[allow(clippy::needless_range_loop)] // column-major: each row writes into every column
    pub fn trace(spec: &JobSpec, log_rows: u32) -> (Columns, [BaseField; N_STATE]) {
        let rows = 1usize << log_rows;
        let zero = BaseField::from_u32_unchecked(0);
        let mut cols = vec![vec![zero; rows]; super::n_columns()];
        let mut state = initial_state(spec);
        // Padding rows (enabler and index 0) all permute the zero state: compute it once.
        let padding = permutation_row([zero; N_STATE]).0;
        for r in 0..rows {
            let values = if r < spec.size as usize {
                let (values, output) = permutation_row(state);
                state = output;
                cols[0][r] = BaseField::from_u32_unchecked(1);
                cols[1][r] = BaseField::from_u32_unchecked(r as u32);
                values
            } else {
                padding.clone()
            };
            for (c, v) in values.into_iter().enumerate() {
                cols[FIRST_STATE_COLUMN + c][r] = v;
            }
        }
        (Columns::new(log_rows, cols), state)
    }

    /// One logup column: `enabled/(z - (k, s_k)) - enabled/(z - (k+1, s_{k+1}))` per row.
    pub fn interaction(trace: &Columns, links: &ChainLinks) -> InteractionTrace {
        let out_start = FIRST_STATE_COLUMN + N_PERMUTATION_COLUMNS - N_STATE;
        let one = PackedBaseField::broadcast(BaseField::from_u32_unchecked(1));
        let mut logup = LogupTraceGenerator::new(trace.log_rows);
        let mut col = logup.new_col();
        for vec_row in 0..(1 << (trace.log_rows - LOG_N_LANES)) {
            let index = trace.packed(1, vec_row);
            let consumed: Vec<PackedBaseField> = std::iter::once(index)
                .chain((0..N_STATE).map(|i| trace.packed(FIRST_STATE_COLUMN + i, vec_row)))
                .collect();
            let produced: Vec<PackedBaseField> = std::iter::once(index + one)
                .chain((0..N_STATE).map(|i| trace.packed(out_start + i, vec_row)))
                .collect();
            let d_in: PackedSecureField = links.combine(&consumed);
            let d_out: PackedSecureField = links.combine(&produced);
            let enabled: PackedSecureField = trace.packed(0, vec_row).into();
            col.write_frac(vec_row, enabled * (d_out - d_in), d_in * d_out);
        }
        col.finalize_col();
        logup.finalize_last()
    }
}
