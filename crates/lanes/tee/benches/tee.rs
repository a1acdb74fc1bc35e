//! The whole chain check on one instance versus dcap-qvl's `verify` alone on the same quote
//! (goal: at most 1.15×), and chain checks per second with one and two threads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{black_box, Criterion};
use hallmark_tee::chain::{verify_instance, ChainContext};
use hallmark_tee::nvidia::Jwks;
use hallmark_tee::simulate::{Misbehaviour, SimulatedInstance};
use hallmark_tee::tdx::{verify_quote, TdxContext};
use hallmark_tee::testroot::TestRootOfTrust;
use hallmark_tee::{TdxPolicy, TrustRoots};

#[path = "../../../../benches/criterion_estimates.rs"]
mod criterion_estimates;
use base64::Engine as _;
use criterion_estimates::{mean_ns, out_dir};

const NOW: u64 = 1_800_000_000;
const NONCE: &str = "benchmark-nonce-0123456789";

fn main() {
    let root = TestRootOfTrust::from_seed(b"bench").expect("root");
    let roots = TrustRoots::single("bench", root.root_ca_der().to_vec());
    let jwks: Jwks = serde_json::from_value(root.nvidia_jwks()).expect("jwks");
    let policy = TdxPolicy::default();
    let cpu = SimulatedInstance::new("cpu", "m", 0, Misbehaviour::default());
    let gpu = SimulatedInstance::new("gpu", "m", 1, Misbehaviour::default());
    let cpu_ev = cpu.evidence(&root, NONCE, NOW).expect("evidence");
    let gpu_ev = gpu.evidence(&root, NONCE, NOW).expect("evidence");
    let quote = base64::engine::general_purpose::STANDARD
        .decode(&cpu_ev.quote)
        .expect("quote");
    let collateral: dcap_qvl::QuoteCollateralV3 =
        serde_json::from_value(cpu_ev.collateral.clone()).expect("collateral");
    let ctx = ChainContext {
        now: NOW,
        roots: &roots,
        policy: &policy,
        jwks: &jwks,
    };
    assert!(verify_instance(&cpu.info, &cpu_ev, NONCE, &ctx).verified());
    assert!(verify_instance(&gpu.info, &gpu_ev, NONCE, &ctx).verified());

    let mut c = Criterion::default()
        .output_directory(&out_dir())
        .configure_from_args()
        .sample_size(30);
    let group = "tee_chain";
    {
        let mut g = c.benchmark_group(group);
        g.bench_function("baseline_dcap_qvl_verify", |b| {
            let v = dcap_qvl::verify::QuoteVerifier::new(root.root_ca_der().to_vec());
            b.iter(|| v.verify(black_box(&quote), black_box(&collateral), NOW))
        });
        g.bench_function("verify_quote_with_policy", |b| {
            let tctx = TdxContext {
                now: NOW,
                roots: &roots,
                policy: &policy,
            };
            b.iter(|| verify_quote(black_box(&quote), black_box(&collateral), &tctx))
        });
        g.bench_function("chain_cpu_instance", |b| {
            b.iter(|| verify_instance(&cpu.info, black_box(&cpu_ev), NONCE, &ctx))
        });
        g.bench_function("chain_gpu_instance", |b| {
            b.iter(|| verify_instance(&gpu.info, black_box(&gpu_ev), NONCE, &ctx))
        });
        g.finish();
    }
    c.final_summary();

    // Throughput: the same chain check on 1 and 2 threads for a fixed wall time.
    let per_thread = |threads: usize| -> f64 {
        let window = Duration::from_secs(3);
        let started = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut n = 0u64;
                        while started.elapsed() < window {
                            black_box(verify_instance(&gpu.info, &gpu_ev, NONCE, &ctx));
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        total as f64 / started.elapsed().as_secs_f64()
    };
    let one = per_thread(1);
    let two = per_thread(2);
    println!(
        "\nchain checks (one GPU instance) per second: 1 thread {one:.0}/s, 2 threads {two:.0}/s ({:.2}x)",
        two / one
    );
    if let (Some(base), Some(q), Some(cpu_ns), Some(gpu_ns)) = (
        mean_ns(group, "baseline_dcap_qvl_verify"),
        mean_ns(group, "verify_quote_with_policy"),
        mean_ns(group, "chain_cpu_instance"),
        mean_ns(group, "chain_gpu_instance"),
    ) {
        println!(
            "dcap-qvl verify alone {:.0} µs (baseline); our quote check {:.0} µs ({:.2}x); \
whole chain, CPU-only instance {:.0} µs ({:.2}x; goal <= 1.15x: {}); with one GPU token {:.0} µs ({:.2}x)",
            base / 1e3,
            q / 1e3,
            q / base,
            cpu_ns / 1e3,
            cpu_ns / base,
            if cpu_ns / base <= 1.15 { "met" } else { "NOT met" },
            gpu_ns / 1e3,
            gpu_ns / base
        );
    }
}
