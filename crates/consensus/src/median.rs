//! Stake-weighted median of validators' scores.

use std::collections::BTreeMap;

use hallmark_core::PublicKey;

/// The lower stake-weighted median: the smallest value `v` such that validators reporting at
/// most `v` hold at least half the stake. Zero-stake entries carry no weight; non-finite
/// values are ignored. `None` when no stake reported.
///
/// If validators holding more than half the stake report values inside `[lo, hi]`, the result
/// lies inside `[lo, hi]` whatever the others report.
///
/// Runs in expected linear time (weighted quickselect) rather than sorting.
pub fn weighted_median(entries: &[(f64, u64)]) -> Option<f64> {
    let mut keyed: Vec<(i64, u64)> = entries
        .iter()
        .filter(|(v, s)| v.is_finite() && *s > 0)
        .map(|(v, s)| (order_key(*v), *s))
        .collect();
    select_weighted(&mut keyed).map(from_order_key)
}

/// Maps a float to an integer with the same order (IEEE 754 total order), so the selection
/// compares integers.
fn order_key(v: f64) -> i64 {
    let bits = v.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

fn from_order_key(k: i64) -> f64 {
    f64::from_bits((k ^ ((((k >> 63) as u64) >> 1) as i64)) as u64)
}

/// Weighted quickselect over usable (finite, positive-stake) entries: the first key, in
/// sorted order, at which the cumulative stake reaches half the total (2·cum ≥ total).
fn select_weighted(entries: &mut [(i64, u64)]) -> Option<i64> {
    let total: u128 = entries.iter().map(|(_, s)| u128::from(*s)).sum();
    if total == 0 {
        return None;
    }
    let mut need = total.div_ceil(2);
    let mut slice = entries;
    loop {
        if slice.len() == 1 {
            return Some(slice[0].0);
        }
        let mid = slice.len() / 2;
        let (left, pivot, right) = slice.select_nth_unstable_by_key(mid, |e| e.0);
        let left_w: u128 = left.iter().map(|(_, s)| u128::from(*s)).sum();
        let pivot_w = u128::from(pivot.1);
        if left_w >= need {
            slice = left;
        } else if left_w + pivot_w >= need {
            return Some(pivot.0);
        } else {
            need -= left_w + pivot_w;
            slice = right;
        }
    }
}

/// One validator's report as consensus sees it: its stake and its score per worker.
#[derive(Debug, Clone)]
pub struct ValidatorScores<'a> {
    pub stake: u64,
    pub scores: &'a BTreeMap<PublicKey, f64>,
}

/// Every worker any report scored, sorted: a linear merge of the reports' (sorted) key sets.
fn union_of_workers(reports: &[ValidatorScores<'_>]) -> Vec<PublicKey> {
    let mut union: Vec<PublicKey> = Vec::new();
    for r in reports {
        let other: Vec<PublicKey> = r.scores.keys().copied().collect();
        let mut merged = Vec::with_capacity(union.len().max(other.len()));
        let (mut i, mut j) = (0, 0);
        while i < union.len() && j < other.len() {
            match union[i].cmp(&other[j]) {
                std::cmp::Ordering::Less => {
                    merged.push(union[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    merged.push(other[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    merged.push(union[i]);
                    i += 1;
                    j += 1;
                }
            }
        }
        merged.extend_from_slice(&union[i..]);
        merged.extend_from_slice(&other[j..]);
        union = merged;
    }
    union
}

/// Fills the worker-major matrix from the reports; `false` if some report scored a worker
/// missing from `workers` (the caller then widens `workers` to the full union).
fn fill(reports: &[ValidatorScores<'_>], workers: &[PublicKey], matrix: &mut [f64]) -> bool {
    let v = reports.len();
    matrix.fill(0.0);
    for (i, r) in reports.iter().enumerate() {
        let mut j = 0;
        for (key, score) in r.scores {
            while j < workers.len() && workers[j] < *key {
                j += 1;
            }
            if j == workers.len() || workers[j] != *key {
                return false;
            }
            matrix[j * v + i] = *score;
            j += 1;
        }
    }
    true
}

/// Stake-weighted medians of a dense, worker-major score matrix: `scores[j * stakes.len() + i]`
/// is validator `i`'s score for worker `j`. The hot path for callers that already hold dense
/// scores; [`consensus_scores`] builds this matrix from reports.
pub fn weighted_median_columns(stakes: &[u64], scores: &[f64]) -> Vec<Option<f64>> {
    let v = stakes.len();
    if v == 0 {
        return Vec::new();
    }
    let mut buf: Vec<(i64, u64)> = Vec::with_capacity(v);
    scores
        .chunks_exact(v)
        .map(|col| {
            buf.clear();
            buf.extend(
                col.iter()
                    .zip(stakes)
                    .filter(|(x, s)| x.is_finite() && **s > 0)
                    .map(|(x, s)| (order_key(*x), *s)),
            );
            select_weighted(&mut buf).map(from_order_key)
        })
        .collect()
}

/// The consensus score of every worker any validator scored: the stake-weighted median of the
/// validators' scores, a validator that did not score a worker counting as 0 for it.
pub fn consensus_scores(reports: &[ValidatorScores<'_>]) -> BTreeMap<PublicKey, f64> {
    // Usually every report scores the same workers: start from the largest report's key set
    // and widen to the full union only if some report names a worker outside it.
    let mut workers: Vec<PublicKey> = reports
        .iter()
        .max_by_key(|r| r.scores.len())
        .map(|r| r.scores.keys().copied().collect())
        .unwrap_or_default();
    let mut matrix = vec![0.0f64; workers.len() * reports.len()];
    if !fill(reports, &workers, &mut matrix) {
        workers = union_of_workers(reports);
        matrix = vec![0.0f64; workers.len() * reports.len()];
        let complete = fill(reports, &workers, &mut matrix);
        debug_assert!(complete, "the union holds every report's workers");
    }
    let stakes: Vec<u64> = reports.iter().map(|r| r.stake).collect();
    workers
        .into_iter()
        .zip(weighted_median_columns(&stakes, &matrix))
        .filter_map(|(w, m)| Some((w, m?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(i: u8) -> PublicKey {
        hallmark_core::Keypair::from_seed(&[i; 32]).public()
    }

    /// Borrows `(stake, scores)` pairs as consensus inputs.
    fn inputs(reports: &[(u64, BTreeMap<PublicKey, f64>)]) -> Vec<ValidatorScores<'_>> {
        reports
            .iter()
            .map(|(stake, scores)| ValidatorScores {
                stake: *stake,
                scores,
            })
            .collect()
    }

    /// The definition, computed the obvious way: sort, then walk the cumulative stake.
    fn reference_median(entries: &[(f64, u64)]) -> Option<f64> {
        let mut sorted: Vec<(f64, u64)> = entries
            .iter()
            .copied()
            .filter(|(v, s)| v.is_finite() && *s > 0)
            .collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: u128 = sorted.iter().map(|e| u128::from(e.1)).sum();
        let mut cum = 0u128;
        sorted
            .iter()
            .find(|(_, s)| {
                cum += u128::from(*s);
                2 * cum >= total
            })
            .map(|e| e.0)
    }

    #[test]
    fn basic_medians() {
        assert_eq!(weighted_median(&[]), None);
        assert_eq!(weighted_median(&[(0.3, 0)]), None);
        assert_eq!(weighted_median(&[(0.3, 1)]), Some(0.3));
        assert_eq!(weighted_median(&[(0.1, 1), (0.9, 1), (0.5, 1)]), Some(0.5));
        // Stake moves the median.
        assert_eq!(weighted_median(&[(0.1, 10), (0.9, 1), (0.5, 1)]), Some(0.1));
        assert_eq!(weighted_median(&[(f64::NAN, 100), (0.4, 1)]), Some(0.4));
    }

    #[test]
    fn disjoint_key_sets_take_the_union() {
        let c = consensus_scores(&inputs(&[
            (1, [(key(1), 0.8)].into()),
            (1, [(key(2), 0.6), (key(3), 0.1)].into()),
            (1, [(key(4), 0.5)].into()),
        ]));
        assert_eq!(c.len(), 4);
        assert!(
            c.values().all(|v| *v == 0.0),
            "each worker has one nonzero score of three"
        );
        assert!(consensus_scores(&[]).is_empty());
    }

    #[test]
    fn missing_scores_count_as_zero() {
        let (a, b) = (key(1), key(2));
        let c = consensus_scores(&inputs(&[
            (1, [(a, 0.8), (b, 0.4)].into()),
            (1, [(a, 0.6)].into()),
            (1, [(a, 0.7), (b, 0.5)].into()),
        ]));
        assert_eq!(c[&a], 0.7);
        assert_eq!(c[&b], 0.4);
    }

    proptest! {
        /// Validators holding less than half the stake cannot move the median outside the
        /// range the honest majority reported.
        #[test]
        fn minority_cannot_move_median_outside_honest_range(
            honest in proptest::collection::vec((0.0f64..1.0, 1u64..1_000), 1..12),
            byz_values in proptest::collection::vec(prop_oneof![Just(-1e9), Just(1e9), -10.0f64..10.0], 0..12),
            byz_share in 0.0f64..1.0,
        ) {
            let honest_stake: u64 = honest.iter().map(|(_, s)| s).sum();
            // Byzantine total stake strictly below the honest stake (so honest > half).
            let budget = ((honest_stake - 1) as f64 * byz_share) as u64;
            let n = byz_values.len().max(1) as u64;
            let mut entries: Vec<(f64, u64)> = honest.clone();
            for v in &byz_values {
                entries.push((*v, budget / n));
            }
            let lo = honest.iter().map(|(v, _)| *v).fold(f64::INFINITY, f64::min);
            let hi = honest.iter().map(|(v, _)| *v).fold(f64::NEG_INFINITY, f64::max);
            let m = weighted_median(&entries).unwrap();
            prop_assert!(m >= lo && m <= hi, "median {} outside honest [{}, {}]", m, lo, hi);
        }

        /// The quickselect agrees with the definition computed by sorting.
        #[test]
        fn matches_sorted_definition(entries in proptest::collection::vec((prop_oneof![0.0f64..1.0, Just(0.5), Just(f64::NAN)], 0u64..50), 0..40)) {
            prop_assert_eq!(weighted_median(&entries), reference_median(&entries));
        }

        /// Whatever workers each report names (the same set, subsets, disjoint sets), the
        /// dense path gives every worker of the union the reference median, missing = 0.
        #[test]
        fn consensus_matches_reference(reports in proptest::collection::vec(
            (0u64..100, proptest::collection::btree_map(0u8..8, 0.0f64..1.0, 0..8)), 0..10)
        ) {
            let reports: Vec<(u64, BTreeMap<PublicKey, f64>)> = reports
                .into_iter()
                .map(|(stake, m)| (stake, m.into_iter().map(|(k, v)| (key(k), v)).collect()))
                .collect();
            let got = consensus_scores(&inputs(&reports));
            let mut expected = BTreeMap::new();
            for w in reports.iter().flat_map(|(_, m)| m.keys()) {
                let column: Vec<(f64, u64)> = reports
                    .iter()
                    .map(|(stake, m)| (m.get(w).copied().unwrap_or(0.0), *stake))
                    .collect();
                if let Some(m) = reference_median(&column) {
                    expected.insert(*w, m);
                }
            }
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn median_is_one_of_the_inputs(entries in proptest::collection::vec((0.0f64..1.0, 1u64..100), 1..20)) {
            let e = entries.clone();
            let m = weighted_median(&e).unwrap();
            prop_assert!(entries.iter().any(|(v, _)| *v == m));
        }
    }
}
