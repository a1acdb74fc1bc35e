//! How far the network's consensus is from the owner's pick: top-1 agreement, Spearman rank
//! correlation (tie-corrected: Pearson correlation of average ranks) and top-k overlap, per
//! run and summarised over a window of runs.

use std::collections::BTreeMap;

use hallmark_core::PublicKey;
use serde::{Deserialize, Serialize};

/// Average ranks (1-based; tied values share the mean of their positions).
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        order[i..=j].iter().for_each(|&k| ranks[k] = rank);
        i = j + 1;
    }
    ranks
}

/// Spearman's rank correlation with tie correction. `None` when fewer than two items or when
/// one side has no variation (every value tied): correlation is undefined there.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (ra, rb) = (average_ranks(a), average_ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - ma) * (y - mb);
        va += (x - ma) * (x - ma);
        vb += (y - mb) * (y - mb);
    }
    if va == 0.0 || vb == 0.0 {
        return None;
    }
    Some(cov / (va * vb).sqrt())
}

/// The keys of the `k` highest scores (ties broken by key, so the result is deterministic).
pub fn top_k(scores: &BTreeMap<PublicKey, f64>, k: usize) -> Vec<PublicKey> {
    let mut v: Vec<(&PublicKey, &f64)> = scores.iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    v.into_iter().take(k).map(|(key, _)| *key).collect()
}

/// |top-k(a) ∩ top-k(b)| / k (k capped at the number of items; 1 when both are empty).
pub fn top_k_overlap(a: &BTreeMap<PublicKey, f64>, b: &BTreeMap<PublicKey, f64>, k: usize) -> f64 {
    let k = k.min(a.len()).min(b.len());
    if k == 0 {
        return 1.0;
    }
    let ta = top_k(a, k);
    let tb = top_k(b, k);
    ta.iter().filter(|x| tb.contains(x)).count() as f64 / k as f64
}

/// One run's comparison of the owner's pick with consensus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunDivergence {
    pub run_id: String,
    pub owner_winner: Option<PublicKey>,
    pub consensus_winner: Option<PublicKey>,
    pub top1_agree: bool,
    /// Over the workers both sides scored; `None` when undefined.
    pub spearman: Option<f64>,
    pub top_k_overlap: f64,
    pub k: usize,
}

/// Compares the owner's scores and pick with the consensus scores and winner of one run.
pub fn compare_run(
    run_id: &str,
    owner_winner: Option<PublicKey>,
    owner_scores: &BTreeMap<PublicKey, f64>,
    consensus_winner: Option<PublicKey>,
    consensus: &BTreeMap<PublicKey, f64>,
    k: usize,
) -> RunDivergence {
    let common: Vec<&PublicKey> = owner_scores
        .keys()
        .filter(|w| consensus.contains_key(w))
        .collect();
    let a: Vec<f64> = common.iter().map(|w| owner_scores[*w]).collect();
    let b: Vec<f64> = common.iter().map(|w| consensus[*w]).collect();
    RunDivergence {
        run_id: run_id.to_string(),
        owner_winner,
        consensus_winner,
        top1_agree: owner_winner == consensus_winner,
        spearman: spearman(&a, &b),
        top_k_overlap: top_k_overlap(owner_scores, consensus, k),
        k,
    }
}

/// A window of runs summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DivergenceSummary {
    pub runs: usize,
    pub top1_agreement: Option<f64>,
    /// Mean over runs where the correlation is defined.
    pub mean_spearman: Option<f64>,
    pub mean_top_k_overlap: Option<f64>,
    pub run_ids: Vec<String>,
}

/// Summarises runs (each counted once, by run id; the first record of a run stands).
pub fn summarize(runs: &[RunDivergence]) -> DivergenceSummary {
    let mut seen = std::collections::BTreeSet::new();
    let unique: Vec<&RunDivergence> = runs
        .iter()
        .filter(|r| seen.insert(r.run_id.clone()))
        .collect();
    let n = unique.len();
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    DivergenceSummary {
        runs: n,
        top1_agreement: mean(
            unique
                .iter()
                .map(|r| if r.top1_agree { 1.0 } else { 0.0 })
                .collect(),
        ),
        mean_spearman: mean(unique.iter().filter_map(|r| r.spearman).collect()),
        mean_top_k_overlap: mean(unique.iter().map(|r| r.top_k_overlap).collect()),
        run_ids: unique.iter().map(|r| r.run_id.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_core::Keypair;

    #[test]
    fn spearman_matches_known_values() {
        assert!(
            (spearman(&[1., 2., 3., 4., 5.], &[5., 6., 7., 8., 7.]).unwrap()
                - 0.820_782_681_668_572_9)
                .abs()
                < 1e-12
        );
        assert_eq!(spearman(&[1., 2., 3.], &[3., 2., 1.]), Some(-1.0));
        assert_eq!(spearman(&[1., 2., 3.], &[10., 20., 30.]), Some(1.0));
        // Ties: average ranks (scipy.stats.spearmanr([1,2,2,3],[1,3,2,4]) = 0.9486832980505138).
        assert!(
            (spearman(&[1., 2., 2., 3.], &[1., 3., 2., 4.]).unwrap() - 0.948_683_298_050_513_8)
                .abs()
                < 1e-12
        );
        assert_eq!(spearman(&[1., 1.], &[1., 2.]), None);
        assert_eq!(spearman(&[1.], &[1.]), None);
    }

    #[test]
    fn top_k_and_summary() {
        let k: Vec<PublicKey> = (1..=4u8)
            .map(|i| Keypair::from_seed(&[i; 32]).public())
            .collect();
        let a: BTreeMap<_, _> = [(k[0], 0.9), (k[1], 0.8), (k[2], 0.1), (k[3], 0.0)].into();
        let b: BTreeMap<_, _> = [(k[0], 0.2), (k[1], 0.8), (k[2], 0.9), (k[3], 0.0)].into();
        assert_eq!(top_k_overlap(&a, &b, 2), 0.5);
        assert_eq!(top_k_overlap(&a, &a, 3), 1.0);
        let r1 = compare_run("r1", Some(k[0]), &a, Some(k[2]), &b, 2);
        assert!(!r1.top1_agree);
        let r2 = compare_run("r2", Some(k[0]), &a, Some(k[0]), &a, 2);
        assert!(r2.top1_agree && r2.spearman == Some(1.0));
        // A re-run of r2 is counted once.
        let s = summarize(&[r1, r2.clone(), r2]);
        assert_eq!(s.runs, 2);
        assert_eq!(s.top1_agreement, Some(0.5));
        assert_eq!(s.mean_top_k_overlap, Some(0.75));
    }
}
