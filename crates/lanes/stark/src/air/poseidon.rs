//! A Poseidon2-shaped permutation of 16 M31 elements, written once for native values and for
//! constraint expressions.
//!
//! Structure follows the Poseidon2 paper (<https://eprint.iacr.org/2023/323.pdf>): an external
//! linear layer, 4 full rounds, 14 partial rounds, 4 full rounds, x^5 S-box. The round
//! constants are derived from BLAKE3 under a fixed label (nothing up our sleeve) and the internal
//! diagonal is `2^(i+1)`, as in stwo's Poseidon example. This is a benchmark workload for the
//! hashchain job, not a vetted hash instance: do not use it for anything that needs collision
//! resistance.

use std::ops::{Add, AddAssign, Mul, Sub};
use std::sync::OnceLock;

use stwo::core::fields::m31::BaseField;

use crate::field::M31Stream;

/// Width of the permutation state.
pub const N_STATE: usize = 16;
/// Full rounds before and after the partial rounds.
pub const N_HALF_FULL_ROUNDS: usize = 4;
/// Partial rounds (S-box on the first element only).
pub const N_PARTIAL_ROUNDS: usize = 14;
/// Trace columns one permutation needs: its input state, then per S-box the square of its
/// input, the state after each full round and the first element after each partial round.
/// Recording squares keeps every constraint at degree 3 (`x^5 = (x^2)^2 · x`).
pub const N_PERMUTATION_COLUMNS: usize =
    N_STATE * (1 + 4 * N_HALF_FULL_ROUNDS) + 2 * N_PARTIAL_ROUNDS;

/// Round constants of the permutation.
pub struct RoundConstants {
    /// Per full round, one constant per state element.
    pub external: [[BaseField; N_STATE]; 2 * N_HALF_FULL_ROUNDS],
    /// Per partial round, one constant for the first element.
    pub internal: [BaseField; N_PARTIAL_ROUNDS],
}

/// The constants, derived once.
pub fn round_constants() -> &'static RoundConstants {
    static CONSTANTS: OnceLock<RoundConstants> = OnceLock::new();
    CONSTANTS.get_or_init(|| {
        let mut stream = M31Stream::new("poseidon2-m31-16 round constants", &[0u8; 32]);
        let mut external = [[BaseField::from_u32_unchecked(0); N_STATE]; 2 * N_HALF_FULL_ROUNDS];
        for round in external.iter_mut() {
            for c in round.iter_mut() {
                *c = stream.next_m31();
            }
        }
        let mut internal = [BaseField::from_u32_unchecked(0); N_PARTIAL_ROUNDS];
        for c in internal.iter_mut() {
            *c = stream.next_m31();
        }
        RoundConstants { external, internal }
    })
}

/// Arithmetic the permutation needs; implemented by M31 values and by AIR expressions alike.
pub trait PermField:
    Clone
    + AddAssign<Self>
    + AddAssign<BaseField>
    + Add<Self, Output = Self>
    + Sub<Self, Output = Self>
    + Mul<Self, Output = Self>
    + Mul<BaseField, Output = Self>
{
}

impl<T> PermField for T where
    T: Clone
        + AddAssign<T>
        + AddAssign<BaseField>
        + Add<T, Output = T>
        + Sub<T, Output = T>
        + Mul<T, Output = T>
        + Mul<BaseField, Output = T>
{
}

/// x^5, with `x^2` passed through `record` (natively the identity; in the AIR a column).
pub fn pow5<F: PermField>(x: F, record: &mut impl FnMut(F) -> F) -> F {
    let x2 = record(x.clone() * x.clone());
    x2.clone() * x2 * x
}

/// The 4×4 MDS block M4 of Poseidon2 (paper §5.1).
fn apply_m4<F: PermField>(x: [F; 4]) -> [F; 4] {
    let t0 = x[0].clone() + x[1].clone();
    let t02 = t0.clone() + t0.clone();
    let t1 = x[2].clone() + x[3].clone();
    let t12 = t1.clone() + t1.clone();
    let t2 = x[1].clone() + x[1].clone() + t1;
    let t3 = x[3].clone() + x[3].clone() + t0;
    let t4 = t12.clone() + t12 + t3.clone();
    let t5 = t02.clone() + t02 + t2.clone();
    let t6 = t3 + t5.clone();
    let t7 = t2 + t4.clone();
    [t6, t5, t7, t4]
}

/// The external linear layer circ(2·M4, M4, M4, M4).
pub fn external_layer<F: PermField>(state: &mut [F; N_STATE]) {
    for i in 0..4 {
        let block = [
            state[4 * i].clone(),
            state[4 * i + 1].clone(),
            state[4 * i + 2].clone(),
            state[4 * i + 3].clone(),
        ];
        let out = apply_m4(block);
        for (k, v) in out.into_iter().enumerate() {
            state[4 * i + k] = v;
        }
    }
    for j in 0..4 {
        let s =
            state[j].clone() + state[j + 4].clone() + state[j + 8].clone() + state[j + 12].clone();
        for i in 0..4 {
            state[4 * i + j] += s.clone();
        }
    }
}

/// The internal linear layer: diag(2^(i+1)) + the all-ones matrix.
pub fn internal_layer<F: PermField>(state: &mut [F; N_STATE]) {
    let mut sum = state[0].clone();
    for s in state.iter().skip(1) {
        sum += s.clone();
    }
    for (i, s) in state.iter_mut().enumerate() {
        *s = s.clone() * BaseField::from_u32_unchecked(1 << (i + 1)) + sum.clone();
    }
}

/// Applies the permutation, calling `round_out` with each value the trace records (each S-box
/// input squared, the state after every full round, element 0 after every partial round). The
/// callback returns the value to continue with: natively the same value, in the AIR the
/// committed column constrained to it.
pub fn permute_with<F: PermField>(
    mut state: [F; N_STATE],
    mut round_out: impl FnMut(F) -> F,
) -> [F; N_STATE] {
    let rc = round_constants();
    external_layer(&mut state);
    for round in 0..N_HALF_FULL_ROUNDS {
        full_round(&mut state, &rc.external[round], &mut round_out);
    }
    for round in 0..N_PARTIAL_ROUNDS {
        state[0] += rc.internal[round];
        let s0 = pow5(state[0].clone(), &mut round_out);
        state[0] = round_out(s0);
        internal_layer(&mut state);
    }
    for round in 0..N_HALF_FULL_ROUNDS {
        full_round(
            &mut state,
            &rc.external[N_HALF_FULL_ROUNDS + round],
            &mut round_out,
        );
    }
    state
}

fn full_round<F: PermField>(
    state: &mut [F; N_STATE],
    constants: &[BaseField; N_STATE],
    round_out: &mut impl FnMut(F) -> F,
) {
    for (s, c) in state.iter_mut().zip(constants) {
        *s += *c;
    }
    for s in state.iter_mut() {
        *s = pow5(s.clone(), round_out);
    }
    external_layer(state);
    for s in state.iter_mut() {
        *s = round_out(s.clone());
    }
}

/// The permutation on native values.
pub fn permute(state: [BaseField; N_STATE]) -> [BaseField; N_STATE] {
    permute_with(state, |v| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_deterministic_and_mixes() {
        let zero = [BaseField::from_u32_unchecked(0); N_STATE];
        let a = permute(zero);
        assert_eq!(a, permute(zero));
        let mut one = zero;
        one[5] = BaseField::from_u32_unchecked(1);
        let b = permute(one);
        // A one-element change reaches every output element.
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
    }

    #[test]
    fn records_one_value_per_trace_column() {
        let mut recorded = 0;
        let _ = permute_with([BaseField::from_u32_unchecked(3); N_STATE], |v| {
            recorded += 1;
            v
        });
        assert_eq!(recorded + N_STATE, N_PERMUTATION_COLUMNS);
    }
}
