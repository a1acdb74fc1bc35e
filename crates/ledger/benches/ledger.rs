//! The ledger's commit path: transactions per second and commit latency (p50/p99) through the
//! single sequencer (pure execution, state root, SQLite commit, log append), against pure
//! execution of the same transactions on the in-memory state as the in-run baseline, and the
//! cost of the state root as the state grows. The replicated ledger's line (4 replicas on
//! loopback) joins this bench when replication lands.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use criterion::Criterion;
use hallmark_core::{Keypair, Signed};
use hallmark_ledger::machine::execute;
use hallmark_ledger::{
    BlockCtx, DevnetLedger, Genesis, Ledger, LedgerParams, LedgerState, LedgerTx, Rules, TxBody,
};
use hallmark_store::Store;

#[path = "../../../benches/criterion_estimates.rs"]
mod criterion_estimates;
use criterion_estimates::{mean_ns, out_dir};

const CHAIN: &str = "bench";
const SENDERS: usize = 64;

fn transfers(senders: &[Keypair], rounds: u64, first_nonce: u64) -> Vec<Signed<LedgerTx>> {
    let to = Keypair::from_seed(&[200; 32]).public();
    (0..rounds)
        .flat_map(|r| {
            senders.iter().map(move |k| {
                let tx = LedgerTx {
                    chain_id: CHAIN.into(),
                    nonce: first_nonce + r,
                    body: TxBody::Transfer { to, amount: 1 },
                };
                Signed::sign(&tx, k).unwrap()
            })
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let senders: Vec<Keypair> = (0..SENDERS)
        .map(|i| Keypair::from_seed(&[i as u8 + 1; 32]))
        .collect();
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        balances: senders
            .iter()
            .map(|k| (k.public(), 1_000_000_000))
            .collect(),
    };
    let rules = Rules {
        chain_id: CHAIN.into(),
        params: LedgerParams::default(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");

    // Latency, one transaction at a time through the sequencer into SQLite.
    let ledger = rt.block_on(async {
        let store = Store::open(&dir.path().join("ledger.sqlite"))
            .await
            .unwrap();
        DevnetLedger::open(
            store,
            &genesis,
            rules.params.clone(),
            Keypair::from_seed(&[42; 32]),
        )
        .await
        .unwrap()
    });
    let serial = transfers(&senders, 8, 1);
    let mut lat_ms = Vec::with_capacity(serial.len());
    let started = Instant::now();
    for tx in &serial {
        let t = Instant::now();
        rt.block_on(ledger.submit(tx.clone())).unwrap();
        lat_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let serial_tps = serial.len() as f64 / started.elapsed().as_secs_f64();
    lat_ms.sort_by(f64::total_cmp);

    // Throughput with every sender submitting at once (the sequencer orders them); each
    // sender's transactions go in nonce order.
    let ledger = std::sync::Arc::new(ledger);
    let concurrent = transfers(&senders, 8, 9);
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..SENDERS {
            let mine: Vec<_> = concurrent
                .iter()
                .skip(i)
                .step_by(SENDERS)
                .cloned()
                .collect();
            let l = ledger.clone();
            tasks.push(tokio::spawn(async move {
                for tx in mine {
                    l.submit(tx).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let concurrent_tps = concurrent.len() as f64 / started.elapsed().as_secs_f64();

    // Criterion: one transaction through the sequencer vs the same transition on the state.
    let mut c = Criterion::default()
        .output_directory(&out_dir())
        .configure_from_args()
        .sample_size(20);
    let group = "ledger_commit";
    {
        let mut next_nonce = 100u64;
        let mut g = c.benchmark_group(group);
        g.bench_function("sequencer_submit", |b| {
            b.iter_batched(
                || {
                    next_nonce += 1;
                    transfers(&senders[..1], 1, next_nonce).remove(0)
                },
                |tx| rt.block_on(ledger.submit(tx)).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
        let mut state = LedgerState::genesis(&genesis.balances).unwrap();
        let mut nonce = 0u64;
        g.bench_function("baseline_pure_execute", |b| {
            b.iter_batched(
                || {
                    nonce += 1;
                    transfers(&senders[..1], 1, nonce).remove(0)
                },
                |tx| {
                    let ctx = BlockCtx {
                        height: state.next_seq(),
                        prev_hash: state.head_hash().to_string(),
                        time_ms: 1,
                    };
                    execute(&mut state, &rules, &tx, &ctx).unwrap()
                },
                criterion::BatchSize::SmallInput,
            )
        });
        g.finish();
    }
    c.final_summary();

    // The state root's cost as the state grows: one transfer on a state of n accounts.
    let mut root_costs = Vec::new();
    for n in [1_000usize, 100_000] {
        let balances: Vec<_> = (0..n as u64)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&i.to_le_bytes());
                seed[31] = 7;
                (Keypair::from_seed(&seed).public(), 1)
            })
            .chain(std::iter::once((senders[0].public(), 1_000_000)))
            .collect();
        let mut state = LedgerState::genesis(&balances).unwrap();
        let _ = state.root();
        let txs = transfers(&senders[..1], 200, 1);
        let t = Instant::now();
        for tx in &txs {
            let ctx = BlockCtx {
                height: state.next_seq(),
                prev_hash: state.head_hash().to_string(),
                time_ms: 1,
            };
            execute(&mut state, &rules, tx, &ctx).unwrap();
        }
        root_costs.push((n, t.elapsed().as_secs_f64() * 1e6 / txs.len() as f64));
    }

    println!(
        "\nledger, single sequencer on SQLite: {serial_tps:.0} tx/s one at a time (commit latency \
         p50 {:.2} ms, p99 {:.2} ms, n={}); {concurrent_tps:.0} tx/s with {SENDERS} concurrent senders",
        percentile(&lat_ms, 0.5),
        percentile(&lat_ms, 0.99),
        lat_ms.len(),
    );
    if let (Some(seq), Some(pure)) = (
        mean_ns(group, "sequencer_submit"),
        mean_ns(group, "baseline_pure_execute"),
    ) {
        println!(
            "one transfer: {:.0} µs through the sequencer, {:.0} µs pure execution (baseline): {:.1}x",
            seq / 1e3,
            pure / 1e3,
            seq / pure
        );
    }
    for (n, us) in &root_costs {
        println!("pure execution with the state root on {n} accounts: {us:.0} µs per transfer");
    }
    println!(
        "goal (replicated, 4 replicas on loopback): p99 commit under 1 s; anchors: Malachite \
         780 ms finality at 100 validators, subtensor 12 s blocks"
    );
}
