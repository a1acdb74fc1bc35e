//! Private-balance throughput and latency: encryption, homomorphic addition, decryption by
//! baby-step giant-step (32-bit amounts, precomputed 2^20 table) against the O(1) hint path,
//! and withdrawal proof generation and verification.
//!
//! Criterion reports each case; the closing summary prints per-second figures and the ratio
//! of each decryption path against one ciphertext-holds check (the baseline measured in the
//! same process), so the numbers compare across machines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use hallmark_confidential::hint::decrypt_balance;
use hallmark_confidential::{AeKey, CreditProof, DiscreteLog, ElGamalSecretKey, WithdrawalProof};
use rand::rngs::OsRng;

fn per_op(iters: u32, f: &mut dyn FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed() / iters
}

fn bench(c: &mut Criterion) {
    let sk = ElGamalSecretKey::random(&mut OsRng);
    let pk = sk.public();
    let ae = AeKey::from_seed(&[9; 32]);

    let build_start = Instant::now();
    let table = DiscreteLog::default();
    let build = build_start.elapsed();

    let (a, _) = pk.encrypt(1_000, &mut OsRng);
    let (b, _) = pk.encrypt(2_000, &mut OsRng);
    let worst = u32::MAX;
    let (worst_ct, _) = pk.encrypt(u64::from(worst), &mut OsRng);
    let mid = 2_147_483_647u32;
    let (mid_ct, _) = pk.encrypt(u64::from(mid), &mut OsRng);
    let hint = ae.encrypt(u64::from(worst), &mut OsRng);
    let (balance, _) = pk.encrypt(1_000_000, &mut OsRng);
    let (proof, _) =
        WithdrawalProof::prove(&sk, &balance, 1_000_000, 250_000, b"bench", &mut OsRng)
            .expect("prove");

    let mut g = c.benchmark_group("confidential");
    g.sample_size(20);
    g.bench_function("encrypt", |bn| {
        bn.iter(|| pk.encrypt(black_box(42), &mut OsRng))
    });
    g.bench_function("credit_encrypt_and_prove", |bn| {
        bn.iter(|| CreditProof::encrypt(&pk, black_box(42), b"bench", &mut OsRng))
    });
    g.bench_function("homomorphic_add", |bn| {
        bn.iter(|| black_box(a) + black_box(b))
    });
    g.bench_function("holds_check_baseline", |bn| {
        bn.iter(|| sk.holds(black_box(&worst_ct), u64::from(worst)))
    });
    g.bench_function("decrypt_hint_u32_max", |bn| {
        bn.iter(|| {
            decrypt_balance(&sk, &ae, black_box(&worst_ct), Some(&hint), || {
                unreachable!("hint path")
            })
        })
    });
    g.bench_function("decrypt_bsgs_u32_max", |bn| {
        bn.iter(|| sk.decrypt_u32(black_box(&worst_ct), &table))
    });
    g.bench_function("decrypt_bsgs_u32_mid", |bn| {
        bn.iter(|| sk.decrypt_u32(black_box(&mid_ct), &table))
    });
    g.bench_function("withdrawal_prove", |bn| {
        bn.iter(|| WithdrawalProof::prove(&sk, &balance, 1_000_000, 250_000, b"bench", &mut OsRng))
    });
    g.bench_function("withdrawal_verify", |bn| {
        bn.iter(|| proof.verify(&pk, &balance, 250_000, b"bench"))
    });
    g.finish();

    // The summary: same-process figures, ratios against the holds-check baseline.
    let baseline = per_op(2_000, &mut || {
        black_box(sk.holds(&worst_ct, u64::from(worst)));
    });
    let encrypt = per_op(2_000, &mut || {
        black_box(pk.encrypt(42, &mut OsRng));
    });
    let add = per_op(200_000, &mut || {
        black_box(black_box(a) + black_box(b));
    });
    let hint_path = per_op(2_000, &mut || {
        black_box(decrypt_balance(&sk, &ae, &worst_ct, Some(&hint), || unreachable!()).ok());
    });
    let bsgs_worst = per_op(20, &mut || {
        black_box(sk.decrypt_u32(&worst_ct, &table).ok());
    });
    let bsgs_mid = per_op(20, &mut || {
        black_box(sk.decrypt_u32(&mid_ct, &table).ok());
    });
    let prove = per_op(20, &mut || {
        black_box(
            WithdrawalProof::prove(&sk, &balance, 1_000_000, 250_000, b"bench", &mut OsRng).ok(),
        );
    });
    let verify = per_op(20, &mut || {
        black_box(proof.verify(&pk, &balance, 250_000, b"bench").ok());
    });
    let per_sec = |d: Duration| 1.0 / d.as_secs_f64();
    let ratio = |d: Duration| d.as_secs_f64() / baseline.as_secs_f64();
    println!("\nsummary (this process):");
    println!("  table build (2^20 baby steps)   {build:>10.1?}");
    println!(
        "  encrypt                         {encrypt:>10.1?}  {:>12.0}/s",
        per_sec(encrypt)
    );
    println!(
        "  homomorphic add                 {add:>10.1?}  {:>12.0}/s",
        per_sec(add)
    );
    println!(
        "  decrypt via hint (O(1))         {hint_path:>10.1?}  {:>12.0}/s  {:>8.2}x holds-check",
        per_sec(hint_path),
        ratio(hint_path)
    );
    println!(
        "  decrypt BSGS, 2^32-1 (worst)    {bsgs_worst:>10.1?}  {:>12.0}/s  {:>8.0}x holds-check",
        per_sec(bsgs_worst),
        ratio(bsgs_worst)
    );
    println!(
        "  decrypt BSGS, 2^31-1            {bsgs_mid:>10.1?}  {:>12.0}/s  {:>8.0}x holds-check",
        per_sec(bsgs_mid),
        ratio(bsgs_mid)
    );
    println!("  withdrawal proof generation     {prove:>10.1?}");
    println!("  withdrawal proof verification   {verify:>10.1?}");
    println!(
        "  withdrawal proof size           {:>10} bytes",
        proof.to_bytes().len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
