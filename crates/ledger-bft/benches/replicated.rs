//! The replicated ledger against the single sequencer, in one run: transactions per second
//! and commit latency (p50/p99) for 4 Malachite replicas on loopback, and the same
//! transfers through the single sequencer on SQLite as the in-run baseline.
//!
//! Commit latency for a replica is from `submit` on one replica until that replica has
//! decided, re-executed and stored (fsync) the block holding the transaction.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hallmark_core::{Keypair, Signed};
use hallmark_ledger::{DevnetLedger, Genesis, Ledger, LedgerParams, LedgerTx, TxBody};
use hallmark_ledger_bft::{Replica, ReplicaConfig, Tuning, TxForwarder, Validator, ValidatorSet};
use hallmark_store::Store;

const CHAIN: &str = "bench";
const SENDERS: usize = 64;
const SERIAL: u64 = 60;
const ROUNDS: u64 = 16;

fn transfer(k: &Keypair, nonce: u64) -> Signed<LedgerTx> {
    let tx = LedgerTx {
        chain_id: CHAIN.into(),
        nonce,
        body: TxBody::Transfer {
            to: Keypair::from_seed(&[200; 32]).public(),
            amount: 1,
        },
    };
    Signed::sign(&tx, k).unwrap()
}

type Slots = Arc<RwLock<Vec<Arc<Replica>>>>;

/// Forwards to the other replicas in process (the node forwards over HTTP).
struct Loopback {
    me: usize,
    slots: Slots,
}

#[async_trait::async_trait]
impl TxForwarder for Loopback {
    async fn forward(&self, tx: Signed<LedgerTx>) {
        let peers: Vec<Arc<Replica>> = self
            .slots
            .read()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.me)
            .map(|(_, r)| Arc::clone(r))
            .collect();
        for p in peers {
            let _ = p.submit(tx.clone(), true).await;
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Figures {
    serial_tps: f64,
    p50: f64,
    p99: f64,
    n: usize,
    concurrent_tps: f64,
}

impl Figures {
    fn line(&self, name: &str) -> String {
        format!(
            "{name}: {:.0} tx/s one at a time (commit p50 {:.1} ms, p99 {:.1} ms, n={}); \
             {:.0} tx/s with {SENDERS} senders",
            self.serial_tps, self.p50, self.p99, self.n, self.concurrent_tps
        )
    }
}

async fn sequencer(genesis: &Genesis, senders: &[Keypair], dir: &std::path::Path) -> Figures {
    std::fs::create_dir_all(dir).unwrap();
    let store = Store::open(&dir.join("ledger.sqlite")).await.unwrap();
    let ledger = DevnetLedger::open(
        store,
        genesis,
        LedgerParams::default(),
        Keypair::from_seed(&[42; 32]),
    )
    .await
    .unwrap();
    let mut lat = Vec::new();
    let started = Instant::now();
    for n in 1..=SERIAL {
        let t = Instant::now();
        ledger.submit(transfer(&senders[0], n)).await.unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let serial_tps = SERIAL as f64 / started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let ledger = Arc::new(ledger);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, k) in senders.iter().enumerate() {
        let l = Arc::clone(&ledger);
        let k = k.clone();
        let first = if i == 0 { SERIAL + 1 } else { 1 };
        tasks.push(tokio::spawn(async move {
            for n in first..first + ROUNDS {
                l.submit(transfer(&k, n)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Figures {
        serial_tps,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        n: lat.len(),
        concurrent_tps: (SENDERS as u64 * ROUNDS) as f64 / started.elapsed().as_secs_f64(),
    }
}

async fn nonce_of(r: &Replica, k: &Keypair) -> u64 {
    let a = k.public().to_ss58();
    r.with_state(|s| s.account(&a).map_or(0, |a| a.nonce)).await
}

async fn replicated(genesis: &Genesis, senders: &[Keypair], dir: &std::path::Path) -> Figures {
    let addrs: Vec<SocketAddr> = (0..4).map(|_| free_addr()).collect();
    let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(&[150 + i; 32])).collect();
    let set = ValidatorSet::new(keys.iter().map(|k| Validator::new(k.public(), 1)));
    let slots: Slots = Arc::new(RwLock::new(Vec::new()));
    for i in 0..4 {
        let cfg = ReplicaConfig {
            name: format!("replica-{i}"),
            key: keys[i].clone(),
            home: dir.join(format!("r{i}")),
            listen: addrs[i],
            peers: addrs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, a)| *a)
                .collect(),
            genesis: genesis.clone(),
            params: LedgerParams::default(),
            genesis_validators: set.clone(),
            tuning: Tuning::default(),
            byzantine: Default::default(),
        };
        let fwd = Arc::new(Loopback {
            me: i,
            slots: Arc::clone(&slots),
        });
        let r = Arc::new(Replica::start(cfg, Some(fwd)).await.unwrap());
        slots.write().unwrap().push(r);
    }
    let replicas: Vec<Arc<Replica>> = slots.read().unwrap().clone();
    let r0 = &replicas[0];
    let mut heights = r0.heights().await;
    while *heights.borrow() < 2 {
        heights.changed().await.unwrap();
    }
    // Clients submit to replica 0, which forwards to the others (as the node does over
    // HTTP), so whichever replica proposes next includes the transaction.
    let mut lat = Vec::new();
    let started = Instant::now();
    for n in 1..=SERIAL {
        let t = Instant::now();
        r0.submit(transfer(&senders[0], n), false).await.unwrap();
        while nonce_of(r0, &senders[0]).await < n {
            heights.changed().await.unwrap();
        }
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let serial_tps = SERIAL as f64 / started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let started = Instant::now();
    for round in 0..ROUNDS {
        for (i, k) in senders.iter().enumerate() {
            let first = if i == 0 { SERIAL + 1 } else { 1 };
            r0.submit(transfer(k, first + round), false).await.unwrap();
        }
    }
    for (i, k) in senders.iter().enumerate() {
        let last = if i == 0 { SERIAL + ROUNDS } else { ROUNDS };
        while nonce_of(r0, k).await < last {
            tokio::time::timeout(Duration::from_secs(30), heights.changed())
                .await
                .expect("replicas stalled")
                .unwrap();
        }
    }
    let concurrent_tps = (SENDERS as u64 * ROUNDS) as f64 / started.elapsed().as_secs_f64();
    for r in &replicas {
        r.kill();
    }
    Figures {
        serial_tps,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        n: lat.len(),
        concurrent_tps,
    }
}

fn main() {
    let senders: Vec<Keypair> = (0..SENDERS)
        .map(|i| Keypair::from_seed(&[i as u8 + 1; 32]))
        .collect();
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        balances: senders.iter().map(|k| (k.public(), 1_000_000)).collect(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let base = rt.block_on(sequencer(&genesis, &senders, &dir.path().join("seq")));
    let bft = rt.block_on(replicated(&genesis, &senders, &dir.path().join("bft")));
    println!("\n{}", base.line("single sequencer on SQLite (baseline)"));
    println!("{}", bft.line("4 Malachite replicas on loopback"));
    println!(
        "ratio replicated / sequencer: serial throughput {:.3}x, concurrent throughput {:.3}x, \
         p99 commit latency {:.0}x",
        bft.serial_tps / base.serial_tps,
        bft.concurrent_tps / base.concurrent_tps,
        bft.p99 / base.p99
    );
    println!(
        "goal: p99 commit under 1 s with 4 replicas ({}); anchors: Malachite 780 ms finality at \
         100 validators, subtensor 12 s blocks",
        if bft.p99 < 1000.0 { "met" } else { "NOT met" }
    );
}
