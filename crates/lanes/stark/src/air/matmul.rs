//! `matmul`: `C = A·B` for `n`×`n` matrices over M31, one row per output entry `(i, j)` holding
//! row `i` of A, column `j` of B and `c_ij`, with `c_ij = Σ_k a_ik·b_kj` constrained.
//!
//! Binding: each enabled row consumes `(1, i, A_i)`, `(2, j, B_j)` and `(3, i, j, c_ij)` from a
//! logup relation; the verifier supplies every row of A and column of B `n` times and every
//! entry of C once. The sum closes only if each `(i, j)` has a row whose vectors are the public
//! A_i and B_j, so C is the product. A and B come from the seed; C travels with the proof and
//! all three are also named by BLAKE3 digests in the statement.

use num_traits::One;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;
use stwo_constraint_framework::{relation, EvalAtRow, FrameworkEval, Relation, RelationEntry};

use crate::field::{digest_m31, M31Stream};
use crate::statement::{Bytes32, JobSpec};

/// Largest matrix dimension (keeps the proof under the size cap).
pub const MAX_N: usize = 128;
const TAG_A: u32 = 1;
const TAG_B: u32 = 2;
const TAG_C: u32 = 3;

relation!(MatmulEntries, 130);

/// The matmul AIR for one dimension.
#[derive(Clone)]
pub struct MatmulEval {
    /// log2 of the padded row count (`n²` rows before padding).
    pub log_rows: u32,
    /// Matrix dimension.
    pub n: usize,
    /// Logup elements drawn after the trace commitment.
    pub entries: MatmulEntries,
}

impl FrameworkEval for MatmulEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + super::LOG_EXPAND
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let constant = |v: u32| E::F::from(BaseField::from_u32_unchecked(v));
        let enabled = eval.next_trace_mask();
        eval.add_constraint(enabled.clone() * (enabled.clone() - E::F::from(BaseField::one())));
        let i = eval.next_trace_mask();
        let j = eval.next_trace_mask();
        let a: Vec<E::F> = (0..self.n).map(|_| eval.next_trace_mask()).collect();
        let b: Vec<E::F> = (0..self.n).map(|_| eval.next_trace_mask()).collect();
        let c = eval.next_trace_mask();
        let mut dot = a[0].clone() * b[0].clone();
        for k in 1..self.n {
            dot += a[k].clone() * b[k].clone();
        }
        eval.add_constraint(c.clone() - dot);

        let a_tuple: Vec<E::F> = [constant(TAG_A), i.clone()].into_iter().chain(a).collect();
        let b_tuple: Vec<E::F> = [constant(TAG_B), j.clone()].into_iter().chain(b).collect();
        let c_tuple = [constant(TAG_C), i, j, c];
        let m = E::EF::from(enabled);
        eval.add_to_relation(RelationEntry::new(&self.entries, m.clone(), &a_tuple));
        eval.add_to_relation(RelationEntry::new(&self.entries, m.clone(), &b_tuple));
        eval.add_to_relation(RelationEntry::new(&self.entries, m, &c_tuple));
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// Trace columns: enabler, i, j, row of A, column of B, c.
pub fn n_columns(n: usize) -> usize {
    3 + 2 * n + 1
}

/// Row-major `n`×`n` matrix over M31.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    /// Dimension.
    pub n: usize,
    /// Entries, row-major.
    pub entries: Vec<BaseField>,
}

impl Matrix {
    /// Entry `(i, j)`.
    pub fn at(&self, i: usize, j: usize) -> BaseField {
        self.entries[i * self.n + j]
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[BaseField] {
        &self.entries[i * self.n..(i + 1) * self.n]
    }

    /// Column `j`.
    pub fn column(&self, j: usize) -> Vec<BaseField> {
        (0..self.n).map(|i| self.at(i, j)).collect()
    }

    /// BLAKE3 digest naming this matrix in a statement.
    pub fn digest(&self) -> Bytes32 {
        Bytes32(digest_m31("matmul matrix", &self.entries))
    }

    /// The product `self · rhs`.
    pub fn mul(&self, rhs: &Matrix) -> Matrix {
        let n = self.n;
        let mut entries = vec![BaseField::from_u32_unchecked(0); n * n];
        for i in 0..n {
            for k in 0..n {
                let a = self.at(i, k);
                for j in 0..n {
                    entries[i * n + j] += a * rhs.at(k, j);
                }
            }
        }
        Matrix { n, entries }
    }
}

/// The input matrices A and B, derived from the seed.
pub fn inputs(spec: &JobSpec) -> (Matrix, Matrix) {
    let n = spec.size as usize;
    let mut stream = M31Stream::new("matmul inputs", &spec.seed.0);
    let a = Matrix {
        n,
        entries: stream.take(n * n),
    };
    let b = Matrix {
        n,
        entries: stream.take(n * n),
    };
    (a, b)
}

/// The logup sum the trace must reach, from A, B (public) and C (the claimed product).
pub fn public_sum(a: &Matrix, b: &Matrix, c: &Matrix, entries: &MatmulEntries) -> SecureField {
    let n = a.n;
    let m31 = BaseField::from_u32_unchecked;
    let combine = |values: &[BaseField]| -> SecureField {
        <MatmulEntries as Relation<BaseField, SecureField>>::combine(entries, values)
    };
    let mut row_denoms = Vec::with_capacity(2 * n);
    for i in 0..n {
        let tuple: Vec<BaseField> = [m31(TAG_A), m31(i as u32)]
            .into_iter()
            .chain(a.row(i).iter().copied())
            .collect();
        row_denoms.push(combine(&tuple));
    }
    for j in 0..n {
        let tuple: Vec<BaseField> = [m31(TAG_B), m31(j as u32)]
            .into_iter()
            .chain(b.column(j))
            .collect();
        row_denoms.push(combine(&tuple));
    }
    let mut c_denoms = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            c_denoms.push(combine(&[
                m31(TAG_C),
                m31(i as u32),
                m31(j as u32),
                c.at(i, j),
            ]));
        }
    }
    let uses = m31(n as u32);
    let rows: SecureField = SecureField::batch_inverse(&row_denoms).into_iter().sum();
    let entries_sum: SecureField = SecureField::batch_inverse(&c_denoms).into_iter().sum();
    rows * uses + entries_sum
}

/// Prover side: the execution trace.
#[cfg(feature = "prover")]
pub mod witness {
    use stwo::core::fields::m31::BaseField;
    use stwo::prover::backend::simd::m31::{PackedBaseField, LOG_N_LANES};
    use stwo::prover::backend::simd::qm31::PackedSecureField;
    use stwo_constraint_framework::{LogupTraceGenerator, Relation};

    use super::{MatmulEntries, Matrix, TAG_A, TAG_B, TAG_C};
    use crate::prover::{Columns, InteractionTrace};

    /// Builds the trace for `C = A·B`.
    pub fn trace(a: &Matrix, b: &Matrix, c: &Matrix, log_rows: u32) -> Columns {
        let n = a.n;
        let rows = 1usize << log_rows;
        let zero = BaseField::from_u32_unchecked(0);
        let mut cols = vec![vec![zero; rows]; super::n_columns(n)];
        for i in 0..n {
            for j in 0..n {
                let r = i * n + j;
                cols[0][r] = BaseField::from_u32_unchecked(1);
                cols[1][r] = BaseField::from_u32_unchecked(i as u32);
                cols[2][r] = BaseField::from_u32_unchecked(j as u32);
                for k in 0..n {
                    cols[3 + k][r] = a.at(i, k);
                    cols[3 + n + k][r] = b.at(k, j);
                }
                cols[3 + 2 * n][r] = c.at(i, j);
            }
        }
        Columns::new(log_rows, cols)
    }

    /// Two logup columns: the A and B lookups paired, then the C lookup.
    pub fn interaction(trace: &Columns, n: usize, entries: &MatmulEntries) -> InteractionTrace {
        let tag = |t: u32| PackedBaseField::broadcast(BaseField::from_u32_unchecked(t));
        let mut logup = LogupTraceGenerator::new(trace.log_rows);
        let vec_rows = 1 << (trace.log_rows - LOG_N_LANES);

        let mut col = logup.new_col();
        for vec_row in 0..vec_rows {
            let a: Vec<PackedBaseField> = [tag(TAG_A), trace.packed(1, vec_row)]
                .into_iter()
                .chain((0..n).map(|k| trace.packed(3 + k, vec_row)))
                .collect();
            let b: Vec<PackedBaseField> = [tag(TAG_B), trace.packed(2, vec_row)]
                .into_iter()
                .chain((0..n).map(|k| trace.packed(3 + n + k, vec_row)))
                .collect();
            let d_a: PackedSecureField = entries.combine(&a);
            let d_b: PackedSecureField = entries.combine(&b);
            let enabled: PackedSecureField = trace.packed(0, vec_row).into();
            col.write_frac(vec_row, enabled * (d_a + d_b), d_a * d_b);
        }
        col.finalize_col();

        let mut col = logup.new_col();
        for vec_row in 0..vec_rows {
            let c = [
                tag(TAG_C),
                trace.packed(1, vec_row),
                trace.packed(2, vec_row),
                trace.packed(3 + 2 * n, vec_row),
            ];
            let d_c: PackedSecureField = entries.combine(&c);
            col.write_frac(vec_row, trace.packed(0, vec_row).into(), d_c);
        }
        col.finalize_col();
        logup.finalize_last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_matches_definition() {
        let spec = JobSpec::new(crate::JobType::Matmul, 3, [4; 32]).unwrap();
        let (a, b) = inputs(&spec);
        let c = a.mul(&b);
        for i in 0..3 {
            for j in 0..3 {
                let mut s = BaseField::from_u32_unchecked(0);
                for k in 0..3 {
                    s += a.at(i, k) * b.at(k, j);
                }
                assert_eq!(c.at(i, j), s);
            }
        }
        assert_ne!(a.digest(), b.digest());
    }
}
