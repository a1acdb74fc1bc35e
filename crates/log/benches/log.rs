//! Inclusion and consistency proofs at one million leaves (goal: an inclusion proof in under
//! 50 µs), against verifying the same proof as the in-run baseline (the least work a proof can
//! cost: one hash per level).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, Criterion};
use hallmark_log::{leaf_hash, verify_inclusion, MerkleTree};

#[path = "../../../benches/criterion_estimates.rs"]
mod criterion_estimates;
use criterion_estimates::{mean_ns, out_dir};

const LEAVES: u64 = 1_000_000;

fn main() {
    let started = std::time::Instant::now();
    let tree = MerkleTree::from_leaf_hashes((0..LEAVES).map(|i| leaf_hash(&i.to_le_bytes())));
    let build = started.elapsed();
    let root = tree.root();
    // An index whose path crosses the right edge (the expensive case) and one far from it.
    let index = LEAVES - 3;
    let proof = tree.inclusion_proof(index, LEAVES).expect("proof");
    let leaf = tree.leaf(index).expect("leaf");
    let mut c = Criterion::default()
        .output_directory(&out_dir())
        .configure_from_args()
        .sample_size(50);
    let group = "log_1m";
    {
        let mut g = c.benchmark_group(group);
        g.bench_function("inclusion_proof", |b| {
            let mut i = 0u64;
            b.iter(|| {
                i = (i + 7_919) % LEAVES;
                tree.inclusion_proof(black_box(i), black_box(LEAVES))
            })
        });
        g.bench_function("inclusion_proof_right_edge", |b| {
            b.iter(|| tree.inclusion_proof(black_box(index), black_box(LEAVES)))
        });
        g.bench_function("consistency_proof", |b| {
            b.iter(|| tree.consistency_proof(black_box(LEAVES / 3 + 1), black_box(LEAVES)))
        });
        g.bench_function("baseline_verify_inclusion", |b| {
            b.iter(|| verify_inclusion(black_box(&leaf), index, LEAVES, black_box(&proof), &root))
        });
        g.finish();
    }
    c.final_summary();
    println!(
        "\nbuilt a {LEAVES}-leaf tree in memory in {:.2} s",
        build.as_secs_f64()
    );
    if let (Some(p), Some(edge), Some(cons), Some(base)) = (
        mean_ns(group, "inclusion_proof"),
        mean_ns(group, "inclusion_proof_right_edge"),
        mean_ns(group, "consistency_proof"),
        mean_ns(group, "baseline_verify_inclusion"),
    ) {
        let worst = p.max(edge);
        println!(
            "inclusion proof at {LEAVES} leaves: {:.2} µs (right edge {:.2} µs; goal < 50 µs: {}); \
{:.2}x verifying it (baseline); consistency proof {:.2} µs",
            p / 1e3,
            edge / 1e3,
            if worst < 50e3 { "met" } else { "NOT met" },
            worst / base,
            cons / 1e3
        );
    }
}
