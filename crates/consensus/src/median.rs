//! Stake-weighted median of validators' scores.

use std::collections::{BTreeMap, BTreeSet};

use hallmark_core::PublicKey;

/// The lower stake-weighted median: the smallest value `v` such that validators reporting at
/// most `v` hold at least half the stake. Zero-stake entries carry no weight; non-finite
/// values are ignored. `None` when no stake reported.
///
/// If validators holding more than half the stake report values inside `[lo, hi]`, the result
/// lies inside `[lo, hi]` whatever the others report.
pub fn weighted_median(entries: &mut [(f64, u64)]) -> Option<f64> {
    let total: u128 = entries
        .iter()
        .filter(|(v, _)| v.is_finite())
        .map(|(_, s)| u128::from(*s))
        .sum();
    if total == 0 {
        return None;
    }
    entries.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut cum: u128 = 0;
    for (v, s) in entries.iter() {
        if !v.is_finite() || *s == 0 {
            continue;
        }
        cum += u128::from(*s);
        if 2 * cum >= total {
            return Some(*v);
        }
    }
    None
}

/// One validator's report as consensus sees it: its stake and its score per worker.
#[derive(Debug, Clone)]
pub struct ValidatorScores<'a> {
    pub stake: u64,
    pub scores: &'a BTreeMap<PublicKey, f64>,
}

/// The consensus score of every worker any validator scored: the stake-weighted median of the
/// validators' scores, a validator that did not score a worker counting as 0 for it.
pub fn consensus_scores(reports: &[ValidatorScores<'_>]) -> BTreeMap<PublicKey, f64> {
    let workers: BTreeSet<PublicKey> = reports
        .iter()
        .flat_map(|r| r.scores.keys().copied())
        .collect();
    let mut buf: Vec<(f64, u64)> = Vec::with_capacity(reports.len());
    let mut out = BTreeMap::new();
    for w in workers {
        buf.clear();
        buf.extend(
            reports
                .iter()
                .map(|r| (r.scores.get(&w).copied().unwrap_or(0.0), r.stake)),
        );
        if let Some(m) = weighted_median(&mut buf) {
            out.insert(w, m);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn basic_medians() {
        assert_eq!(weighted_median(&mut []), None);
        assert_eq!(weighted_median(&mut [(0.3, 0)]), None);
        assert_eq!(weighted_median(&mut [(0.3, 1)]), Some(0.3));
        assert_eq!(
            weighted_median(&mut [(0.1, 1), (0.9, 1), (0.5, 1)]),
            Some(0.5)
        );
        // Stake moves the median.
        assert_eq!(
            weighted_median(&mut [(0.1, 10), (0.9, 1), (0.5, 1)]),
            Some(0.1)
        );
        assert_eq!(weighted_median(&mut [(f64::NAN, 100), (0.4, 1)]), Some(0.4));
    }

    #[test]
    fn missing_scores_count_as_zero() {
        let a = hallmark_core::Keypair::from_seed(&[1; 32]).public();
        let b = hallmark_core::Keypair::from_seed(&[2; 32]).public();
        let s1: BTreeMap<_, _> = [(a, 0.8), (b, 0.4)].into();
        let s2: BTreeMap<_, _> = [(a, 0.6)].into();
        let s3: BTreeMap<_, _> = [(a, 0.7), (b, 0.5)].into();
        let c = consensus_scores(&[
            ValidatorScores {
                stake: 1,
                scores: &s1,
            },
            ValidatorScores {
                stake: 1,
                scores: &s2,
            },
            ValidatorScores {
                stake: 1,
                scores: &s3,
            },
        ]);
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
            let m = weighted_median(&mut entries).unwrap();
            prop_assert!(m >= lo && m <= hi, "median {} outside honest [{}, {}]", m, lo, hi);
        }

        #[test]
        fn median_is_one_of_the_inputs(entries in proptest::collection::vec((0.0f64..1.0, 1u64..100), 1..20)) {
            let mut e = entries.clone();
            let m = weighted_median(&mut e).unwrap();
            prop_assert!(entries.iter().any(|(v, _)| *v == m));
        }
    }
}
