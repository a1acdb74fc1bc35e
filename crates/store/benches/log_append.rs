//! Appends into the SQLite-backed transparency log, batched (goal: at least 20,000 appends
//! per second), against inserting the same rows into a bare table in one transaction as the
//! in-run baseline (what the database alone costs, without hashing or the tree).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use criterion::Criterion;
use hallmark_store::{Store, TransparencyLog};

#[path = "../../../benches/criterion_estimates.rs"]
mod criterion_estimates;
use criterion_estimates::{mean_ns, out_dir};

const BATCH: usize = 1000;
/// About the size of a signed score report envelope.
const LEAF_BYTES: usize = 600;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rt
        .block_on(Store::open(&dir.path().join("bench.sqlite")))
        .expect("store");
    let log = rt.block_on(TransparencyLog::open(&store)).expect("log");
    let baseline_store = rt
        .block_on(Store::open(&dir.path().join("baseline.sqlite")))
        .expect("store");
    let leaves: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| {
            let mut v = vec![b'x'; LEAF_BYTES];
            v[..8].copy_from_slice(&(i as u64).to_le_bytes());
            v
        })
        .collect();
    let batch: Vec<(&str, &[u8])> = leaves.iter().map(|l| ("bench", l.as_slice())).collect();

    let mut c = Criterion::default()
        .output_directory(&out_dir())
        .configure_from_args()
        .sample_size(20);
    let group = "log_append";
    {
        let mut g = c.benchmark_group(group);
        g.throughput(criterion::Throughput::Elements(BATCH as u64));
        g.bench_function("append_batch_1000", |b| {
            b.iter(|| rt.block_on(log.append_batch(&batch)).expect("append"))
        });
        g.bench_function("baseline_bare_insert_1000", |b| {
            b.iter(|| {
                rt.block_on(baseline_store.bench_bare_insert(&batch))
                    .expect("insert")
            })
        });
        g.finish();
    }
    c.final_summary();
    // One-at-a-time appends (each its own committed transaction) for contrast.
    let started = Instant::now();
    let singles = 200;
    for l in leaves.iter().take(singles) {
        rt.block_on(log.append("bench", l)).expect("append");
    }
    let single_rate = singles as f64 / started.elapsed().as_secs_f64();
    if let (Some(ours), Some(base)) = (
        mean_ns(group, "append_batch_1000"),
        mean_ns(group, "baseline_bare_insert_1000"),
    ) {
        let rate = BATCH as f64 / (ours / 1e9);
        println!(
            "\nlog appends, batches of {BATCH} x {LEAF_BYTES} B: {:.0}/s (goal >= 20,000/s: {}); {:.2}x the bare-insert baseline; \
unbatched (one fsync'd transaction each): {:.0}/s; log size now {}",
            rate,
            if rate >= 20_000.0 { "met" } else { "NOT met" },
            ours / base,
            single_rate,
            rt.block_on(log.size())
        );
    }
}
