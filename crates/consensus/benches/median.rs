//! Stake-weighted median for 128 validators × 4096 workers (goal: under 5 ms), against an
//! unweighted per-worker median (dense quickselect) over the same data as the in-run baseline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use criterion::{black_box, Criterion};
use hallmark_consensus::{consensus_scores, weighted_median_columns, ValidatorScores};
use hallmark_core::{Keypair, PublicKey};
use rand::{Rng, SeedableRng};

#[path = "../../../benches/criterion_estimates.rs"]
mod criterion_estimates;
use criterion_estimates::{mean_ns, out_dir};

const VALIDATORS: usize = 128;
const WORKERS: usize = 4096;

/// A validator's stake and its scores.
type Report = (u64, BTreeMap<PublicKey, f64>);

fn data() -> (Vec<PublicKey>, Vec<Report>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let workers: Vec<PublicKey> = (0..WORKERS)
        .map(|_| Keypair::from_seed(&rng.gen()).public())
        .collect();
    let reports = (0..VALIDATORS)
        .map(|_| {
            let stake = rng.gen_range(1_000..1_000_000);
            let scores = workers.iter().map(|w| (*w, rng.gen::<f64>())).collect();
            (stake, scores)
        })
        .collect();
    (workers, reports)
}

fn main() {
    let (workers, reports) = data();
    let inputs: Vec<ValidatorScores<'_>> = reports
        .iter()
        .map(|(stake, scores)| ValidatorScores {
            stake: *stake,
            scores,
        })
        .collect();
    // The same scores, dense and worker-major, for the column API.
    let stakes: Vec<u64> = reports.iter().map(|(s, _)| *s).collect();
    let mut sorted = workers.clone();
    sorted.sort();
    let dense: Vec<f64> = sorted
        .iter()
        .flat_map(|w| reports.iter().map(move |(_, s)| s[w]))
        .collect();
    let mut c = Criterion::default()
        .output_directory(&out_dir())
        .configure_from_args()
        .sample_size(20);
    let group = "median_128x4096";
    {
        let mut g = c.benchmark_group(group);
        g.bench_function("stake_weighted_median", |b| {
            b.iter(|| weighted_median_columns(black_box(&stakes), black_box(&dense)))
        });
        g.bench_function("consensus_scores_from_reports", |b| {
            b.iter(|| consensus_scores(black_box(&inputs)))
        });
        g.bench_function("baseline_unweighted_select_median", |b| {
            b.iter(|| {
                let mut col = Vec::with_capacity(VALIDATORS);
                let out: Vec<f64> = black_box(&dense)
                    .chunks_exact(VALIDATORS)
                    .map(|c| {
                        col.clear();
                        col.extend_from_slice(c);
                        *col.select_nth_unstable_by(VALIDATORS / 2, f64::total_cmp).1
                    })
                    .collect();
                out
            })
        });
        g.finish();
    }
    c.final_summary();
    if let (Some(ours), Some(full), Some(base)) = (
        mean_ns(group, "stake_weighted_median"),
        mean_ns(group, "consensus_scores_from_reports"),
        mean_ns(group, "baseline_unweighted_select_median"),
    ) {
        println!(
            "\nstake-weighted median, {VALIDATORS} validators x {WORKERS} workers: {:.3} ms (goal < 5 ms: {}); \
{:.2}x the unweighted (dense select) median baseline in this run",
            ours / 1e6,
            if ours < 5e6 { "met" } else { "NOT met" },
            ours / base
        );
        println!(
            "consensus_scores from {VALIDATORS} signed-report maps (matrix build + medians): {:.3} ms, {:.2}x the baseline",
            full / 1e6,
            full / base
        );
    }
}
