//! Four ledger replicas on 127.0.0.1 running Malachite: agreement, crash tolerance, a
//! halted chain that resumes, a byzantine proposer, and certified reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hallmark_core::{Keypair, Signed};
use hallmark_ledger::{Genesis, LedgerParams, LedgerTx, Role, TxBody};
use hallmark_ledger_bft::{
    verify_certified_checkpoint, verify_certified_read, Byzantine, Replica, ReplicaConfig,
    ReplicaStatus, Tuning, TxForwarder, Validator, ValidatorSet,
};
use tempfile::TempDir;

const CHAIN: &str = "bft-test";

fn key(n: u8) -> Keypair {
    Keypair::from_seed(&[n; 32])
}

fn validator_key(i: usize) -> Keypair {
    key(100 + i as u8)
}

fn transfer(from: u8, nonce: u64, to: u8, amount: u64) -> Signed<LedgerTx> {
    Signed::sign(
        &LedgerTx {
            chain_id: CHAIN.into(),
            nonce,
            body: TxBody::Transfer {
                to: key(to).public(),
                amount,
            },
        },
        &key(from),
    )
    .unwrap()
}

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

type Slots = Arc<RwLock<Vec<Option<Arc<Replica>>>>>;

/// Forwards to every other live replica, in process.
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
            .filter_map(|(_, r)| r.clone())
            .collect();
        for p in peers {
            let _ = p.submit(tx.clone(), true).await;
        }
    }
}

struct Net {
    _dir: TempDir,
    cfgs: Vec<ReplicaConfig>,
    slots: Slots,
}

impl Net {
    async fn start(n: usize, byzantine: Option<usize>) -> Net {
        Self::start_with(n, byzantine, Tuning::default().epoch_blocks).await
    }

    async fn start_with(n: usize, byzantine: Option<usize>, epoch_blocks: u64) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let addrs: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect();
        let set = ValidatorSet::new((0..n).map(|i| Validator::new(validator_key(i).public(), 1)));
        let genesis = Genesis {
            chain_id: CHAIN.into(),
            balances: vec![(key(1).public(), 1_000_000), (key(2).public(), 1_000_000)],
        };
        let cfgs: Vec<ReplicaConfig> = (0..n)
            .map(|i| ReplicaConfig {
                name: format!("replica-{i}"),
                key: validator_key(i),
                home: dir.path().join(format!("r{i}")),
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
                tuning: Tuning {
                    idle_block: Duration::from_millis(300),
                    epoch_blocks,
                    ..Tuning::default()
                },
                byzantine: if byzantine == Some(i) {
                    Byzantine {
                        bad_proposals: true,
                        double_vote: true,
                    }
                } else {
                    Byzantine::default()
                },
            })
            .collect();
        let net = Net {
            _dir: dir,
            cfgs,
            slots: Arc::new(RwLock::new(vec![None; n])),
        };
        for i in 0..n {
            net.restart(i).await;
        }
        net
    }

    async fn restart(&self, i: usize) {
        let fwd = Arc::new(Loopback {
            me: i,
            slots: Arc::clone(&self.slots),
        });
        let r = Replica::start(self.cfgs[i].clone(), Some(fwd))
            .await
            .unwrap();
        self.slots.write().unwrap()[i] = Some(Arc::new(r));
    }

    fn kill(&self, i: usize) {
        let r = self.slots.write().unwrap()[i].take().unwrap();
        r.kill();
    }

    fn replica(&self, i: usize) -> Arc<Replica> {
        self.slots.read().unwrap()[i].clone().unwrap()
    }

    fn live(&self) -> Vec<Arc<Replica>> {
        self.slots
            .read()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    async fn statuses(&self) -> Vec<ReplicaStatus> {
        let mut out = Vec::new();
        for r in self.live() {
            out.push(r.status().await);
        }
        out
    }

    /// Waits until every live replica is at `height` or above.
    async fn wait_height(&self, height: u64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let s = self.statuses().await;
            if s.iter().all(|s| s.height >= height) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "replicas did not reach height {height}: {s:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `key(to)`'s balance is `expected` on every live replica.
    async fn wait_balance(&self, to: u8, expected: u64, within: Duration) {
        let address = key(to).public().to_ss58();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut all = true;
            for r in self.live() {
                let b = r
                    .with_state(|s| s.account(&address).map(|a| a.balance))
                    .await;
                all &= b == Some(expected);
            }
            if all {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "balance of {to} did not reach {expected}: {:#?}",
                self.statuses().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every live replica holds the same block, state root and log root at `height`.
    async fn assert_agree_at(&self, height: u64) {
        let mut seen = None;
        for r in self.live() {
            let b = r.block(height).await.expect("block stored");
            let id = hallmark_ledger_bft::block_id(&b.block);
            let here = (id, b.block.state_root.clone(), b.block.log_root.clone());
            match &seen {
                None => seen = Some(here),
                Some(s) => assert_eq!(s, &here, "replicas disagree at height {height}"),
            }
        }
    }

    fn shutdown(&self) {
        for i in 0..self.cfgs.len() {
            if let Some(r) = self.slots.write().unwrap()[i].take() {
                r.kill();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_transactions_reach_the_same_roots_on_every_replica() {
    let net = Net::start(4, None).await;
    net.wait_height(1, Duration::from_secs(30)).await;
    for nonce in 1..=100u64 {
        let to = net.replica((nonce % 4) as usize);
        to.submit(transfer(1, nonce, 3, 10), false).await.unwrap();
    }
    net.wait_balance(3, 1000, Duration::from_secs(60)).await;
    let top = net.statuses().await.iter().map(|s| s.height).max().unwrap();
    net.wait_height(top, Duration::from_secs(30)).await;
    for h in 1..=top {
        net.assert_agree_at(h).await;
    }
    let total: u64 = {
        let mut t = 0;
        for h in 1..=top {
            t += net.replica(0).block(h).await.unwrap().block.txs.len() as u64;
        }
        t
    };
    assert_eq!(total, 100, "each transaction is in exactly one block");

    // A replayed transaction is refused by every mempool (stale nonce).
    let err = net.replica(2).submit(transfer(1, 7, 3, 10), false).await;
    assert_eq!(err.unwrap_err().code(), "stale_nonce");

    // A certified read verifies against the validator set; a forged one does not.
    let r = net.replica(1);
    let address = key(3).public().to_ss58();
    let read = r.read(&format!("account/{address}")).await.unwrap();
    let set = r.validator_set(read.header.height).await;
    let verdict = verify_certified_read(&read, &set, Some(CHAIN));
    assert!(verdict.accepted, "{verdict:?}");
    let mut forged = read.clone();
    forged.value = Some(serde_json::json!({"address": address, "balance": 1_000_000, "nonce": 0}));
    assert!(!verify_certified_read(&forged, &set, Some(CHAIN)).accepted);
    // The log checkpoint in the decided header is co-signed by the certificate.
    let cp = r.checkpoint().await.unwrap();
    assert!(cp.header.log_size >= 100);
    assert!(verify_certified_checkpoint(&cp, &set, Some(CHAIN)).accepted);
    let mut bigger = cp.clone();
    bigger.header.log_size += 1;
    assert!(!verify_certified_checkpoint(&bigger, &set, Some(CHAIN)).accepted);
    let other = ValidatorSet::new((0..4).map(|i| Validator::new(key(50 + i).public(), 1)));
    let v = verify_certified_read(&read, &other, Some(CHAIN));
    assert!(!v.accepted);

    // Reading any key, including an epoch nobody closed, changes no replica's state.
    let before = net.replica(0).status().await;
    let _ = net.replica(0).read("epoch/sat/999999").await;
    let _ = net.replica(0).read("yuma/sat/999999").await;
    let after = net.replica(0).status().await;
    // Heights go on (empty blocks), but no transaction is pending, so the state must not move.
    assert_eq!(before.state_root, after.state_root);
    assert_eq!(before.log_root, after.log_root);
    net.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_crash_is_tolerated_two_halt_the_chain_and_it_resumes() {
    let net = Net::start(4, None).await;
    net.wait_height(2, Duration::from_secs(30)).await;

    // Kill one: the other three (3 of 4 > 2/3) go on and apply transactions.
    net.kill(3);
    for nonce in 1..=10u64 {
        net.replica(0)
            .submit(transfer(1, nonce, 4, 5), false)
            .await
            .unwrap();
    }
    net.wait_balance(4, 50, Duration::from_secs(60)).await;
    let h = net.statuses().await.iter().map(|s| s.height).max().unwrap();
    net.wait_height(h + 2, Duration::from_secs(30)).await;

    // Kill a second: 2 of 4 cannot decide. The chain halts, and nothing forks.
    net.kill(2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let halted: Vec<u64> = net.statuses().await.iter().map(|s| s.height).collect();
    net.replica(0)
        .submit(transfer(1, 11, 4, 5), false)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let still: Vec<u64> = net.statuses().await.iter().map(|s| s.height).collect();
    assert_eq!(
        halted, still,
        "two of four replicas down must halt the chain"
    );
    let top = *still.iter().max().unwrap();
    net.assert_agree_at(top).await;

    // One returns: it catches up by sync, and the chain resumes with three.
    net.restart(2).await;
    net.wait_balance(4, 55, Duration::from_secs(60)).await;
    net.wait_height(top + 2, Duration::from_secs(60)).await;

    // The last one returns after missing many blocks and catches up too.
    net.restart(3).await;
    let h = net.statuses().await.iter().map(|s| s.height).max().unwrap();
    net.wait_height(h, Duration::from_secs(60)).await;
    for height in 1..=h {
        net.assert_agree_at(height).await;
    }
    net.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_byzantine_proposer_is_refused_and_its_double_votes_are_evidence() {
    // Validator-set epochs of 5 heights: after each, voting power is bonded stake.
    let net = Net::start_with(4, Some(1), 5).await;
    // The validators register, so the ledger can slash the byzantine one's stake.
    for i in 0..4 {
        let reg = Signed::sign(
            &LedgerTx {
                chain_id: CHAIN.into(),
                nonce: i as u64 + 1,
                body: TxBody::Register {
                    hotkey: validator_key(i).public(),
                    role: Role::Validator,
                    stake: 5_000,
                },
            },
            &key(1),
        )
        .unwrap();
        net.replica(0).submit(reg, false).await.unwrap();
    }
    for nonce in 1..=20u64 {
        net.replica(0)
            .submit(transfer(2, nonce, 5, 1), false)
            .await
            .unwrap();
    }
    net.wait_balance(5, 20, Duration::from_secs(90)).await;
    // Heights where replica-1 proposed came from another proposer in a later round:
    // every block every replica holds re-executes to its claimed roots.
    // At least two full proposer rotations, so replica-1 proposed (and was refused) twice.
    let start = net.statuses().await.iter().map(|s| s.height).min().unwrap();
    net.wait_height(start + 8, Duration::from_secs(60)).await;
    let top = start + 8;
    for h in 1..=top {
        net.assert_agree_at(h).await;
        let b = net.replica(0).block(h).await.unwrap();
        assert_ne!(b.block.state_root, "ff".repeat(32));
    }
    let mut evidence = Vec::new();
    for i in [0usize, 2, 3] {
        evidence.extend(net.replica(i).evidence().await);
    }
    let bad = validator_key(1).public().to_ss58();
    assert!(
        evidence
            .iter()
            .any(|e| e.validator == bad && e.kind == "double_vote"),
        "no double vote recorded: {evidence:#?}"
    );
    assert!(evidence.iter().all(|e| e.validator == bad));

    // The evidence became a SlashDoubleVote transaction: every replica's ledger has cut the
    // byzantine validator's stake, and no honest one's.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut stakes = Vec::new();
        for r in net.live() {
            let s = r
                .with_state(|s| {
                    (0..4)
                        .map(|i| {
                            s.neuron(&validator_key(i).public().to_ss58())
                                .map(|n| n.stake)
                        })
                        .collect::<Vec<_>>()
                })
                .await;
            stakes.push(s);
        }
        let slashed = stakes
            .iter()
            .all(|s| s[1].unwrap_or(5_000) < 5_000 && s[0] == Some(5_000) && s[2] == Some(5_000));
        if slashed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "byzantine validator not slashed: {stakes:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A later epoch's set is the bonded stake, the slashed validator's power cut with it;
    // the first epoch's was the genesis set (power 1 each).
    let h = net.statuses().await.iter().map(|s| s.height).min().unwrap();
    net.wait_height(h + 6, Duration::from_secs(60)).await;
    let r = net.replica(0);
    let first = r.validator_set(1).await;
    assert!(first.validators().iter().all(|v| v.voting_power == 1));
    let now = r.validator_set(h + 6).await;
    let power = |i: usize| {
        now.validators()
            .iter()
            .find(|v| v.address.0 == validator_key(i).public())
            .map(|v| v.voting_power)
    };
    assert_eq!(power(0), Some(5_000));
    assert!(power(1).unwrap() < 5_000, "{now:?}");
    net.shutdown();
}
