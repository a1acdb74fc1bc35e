//! The ledger as a pure state machine: the same transactions in the same order give the same
//! state root on every machine; block time comes only from the block; reads never change
//! state (the epoch case above all); and a reopened ledger re-executes its chain from genesis.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hallmark_core::{Keypair, Signed};
use hallmark_ledger::machine::{apply, execute};
use hallmark_ledger::{
    BlockCtx, DevnetLedger, Genesis, Ledger, LedgerParams, LedgerState, LedgerTx, Role, Rules,
    TxBody, WeightEntry,
};
use hallmark_store::testing::TestDb;
use hallmark_store::Store;

const CHAIN: &str = "state-test";

fn key(n: u8) -> Keypair {
    Keypair::from_seed(&[n; 32])
}

fn signed(k: &Keypair, nonce: u64, body: TxBody) -> Signed<LedgerTx> {
    Signed::sign(
        &LedgerTx {
            chain_id: CHAIN.into(),
            nonce,
            body,
        },
        k,
    )
    .unwrap()
}

fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        balances: vec![(key(1).public(), 1_000_000), (key(2).public(), 1_000_000)],
    }
}

fn rules(params: LedgerParams) -> Rules {
    Rules {
        chain_id: CHAIN.into(),
        params,
    }
}

/// Two validators (coldkeys 1 and 2, hotkeys 11 and 12, equal stake) and a worker (21).
fn network_txs() -> Vec<Signed<LedgerTx>> {
    let reg = |hotkey: &Keypair, role, stake| TxBody::Register {
        hotkey: hotkey.public(),
        role,
        stake,
    };
    vec![
        signed(&key(1), 1, reg(&key(11), Role::Validator, 5_000)),
        signed(&key(2), 1, reg(&key(12), Role::Validator, 5_000)),
        signed(&key(1), 2, reg(&key(21), Role::Worker, 200)),
        signed(
            &key(1),
            3,
            TxBody::Transfer {
                to: key(3).public(),
                amount: 77,
            },
        ),
    ]
}

fn weights(validator: u8, nonce: u64, epoch: u64) -> Signed<LedgerTx> {
    signed(
        &key(validator),
        nonce,
        TxBody::SetWeights {
            lane: "sat".into(),
            epoch,
            weights: vec![WeightEntry {
                hotkey: key(21).public(),
                weight: u16::MAX,
            }],
        },
    )
}

/// Anyone (key 3, a funded account with no role) closing the sat lane's `epoch`.
fn close_epoch(nonce: u64, epoch: u64) -> Signed<LedgerTx> {
    signed(
        &key(3),
        nonce,
        TxBody::CloseEpoch {
            lane: "sat".into(),
            epoch,
        },
    )
}

#[test]
fn the_same_transactions_give_the_same_root_and_time_is_in_the_link() {
    let rules = rules(LedgerParams::default());
    let run = |times: &[i64]| {
        let mut state = LedgerState::genesis(&genesis().balances).unwrap();
        let mut receipts = Vec::new();
        for (tx, t) in network_txs().iter().zip(times) {
            let ctx = BlockCtx {
                height: state.next_seq(),
                prev_hash: state.head_hash().to_string(),
                time_ms: *t,
            };
            receipts.push(execute(&mut state, &rules, tx, &ctx).unwrap().1);
        }
        (state.root_hex(), receipts)
    };
    let (root_a, a) = run(&[1_000, 2_000, 3_000, 4_000]);
    let (root_b, b) = run(&[1_000, 2_000, 3_000, 4_000]);
    assert_eq!(root_a, root_b);
    assert_eq!(a, b, "every receipt, hash and root agrees");
    assert_eq!(a.last().unwrap().state_root, root_a);
    // The transfer's block time changes no state, but it is hashed into the link.
    let (root_c, c) = run(&[1_000, 2_000, 3_000, 4_001]);
    assert_eq!(root_c, root_a);
    assert_ne!(c[3].tx_hash, a[3].tx_hash);
    // A registration's time is its lock and first heartbeat: state differs.
    let (root_d, _) = run(&[1_000, 2_001, 3_000, 4_000]);
    assert_ne!(root_d, root_a);
}

#[test]
fn a_refused_transition_writes_nothing_and_time_never_goes_back() {
    let rules = rules(LedgerParams::default());
    let mut state = LedgerState::genesis(&genesis().balances).unwrap();
    let before = state.root_hex();
    let ctx = BlockCtx {
        height: 1,
        prev_hash: state.head_hash().to_string(),
        time_ms: 5_000,
    };
    // Overdraft: refused, state and root untouched.
    let overdraft = signed(
        &key(3),
        1,
        TxBody::Transfer {
            to: key(1).public(),
            amount: 1,
        },
    );
    let e = execute(&mut state, &rules, &overdraft, &ctx).unwrap_err();
    assert_eq!(e.code(), "insufficient_balance");
    assert_eq!(state.root_hex(), before);
    assert_eq!(state.next_seq(), 1);
    let first = &network_txs()[0];
    execute(&mut state, &rules, first, &ctx).unwrap();
    let earlier = BlockCtx {
        time_ms: 4_999,
        ..ctx.clone()
    };
    let e = apply(&state, &rules, &network_txs()[1], &earlier).unwrap_err();
    assert_eq!(e.code(), "invalid_transaction");
    assert!(e.to_string().contains("before the last block"), "{e}");
}

async fn open(store: &Store, params: LedgerParams) -> DevnetLedger {
    DevnetLedger::open(store.clone(), &genesis(), params, key(42))
        .await
        .unwrap()
}

#[tokio::test]
async fn reading_an_epoch_changes_nothing_and_only_a_transaction_closes_it() {
    for db in TestDb::all().unwrap() {
        let store = db.open().await.unwrap();
        let l = open(&store, LedgerParams::default()).await;
        for tx in network_txs() {
            l.submit(tx).await.unwrap();
        }
        l.submit(weights(11, 1, 1)).await.unwrap();
        let head = l.head().await;
        // Any epoch, open, future or past i64: an unauthenticated read is refused with a code
        // and writes nothing.
        for epoch in [1, 2, u64::MAX / 2, u64::MAX] {
            let e = l.yuma_epoch("sat", epoch).await.unwrap_err();
            assert_eq!(e.code(), "epoch_open", "epoch {epoch}");
        }
        assert_eq!(l.head().await, head, "reads moved the ledger");
        // Closing early without a quorum of weights (1 of 2 equal validators) is refused.
        let e = l.submit(close_epoch(1, 1)).await.unwrap_err();
        assert_eq!(e.code(), "invalid_transaction");
        assert!(e.to_string().contains("still open"), "{e}");
        // So the second validator's weights still count, and close the epoch: every staked
        // validator has set them.
        l.submit(weights(12, 1, 1)).await.unwrap();
        let y = l.yuma_epoch("sat", 1).await.unwrap();
        assert!(y.active.iter().filter(|a| **a).count() == 2);
        assert_eq!(
            l.submit(close_epoch(2, 1)).await.unwrap_err().code(),
            "epoch_closed"
        );
        assert_eq!(
            l.submit(weights(11, 2, 1)).await.unwrap_err().code(),
            "epoch_closed"
        );
        // Nothing to close where no weights were set.
        let e = l.submit(close_epoch(3, 9)).await.unwrap_err();
        assert!(e.to_string().contains("no weights"), "{e}");
        l.audit_chain().await.unwrap();
    }
}

#[tokio::test]
async fn after_the_grace_anyone_closes_an_epoch_a_validator_never_reached() {
    for db in TestDb::all().unwrap() {
        let store = db.open().await.unwrap();
        let params = LedgerParams {
            epoch_close_grace_ms: 0,
            ..LedgerParams::default()
        };
        let l = open(&store, params).await;
        for tx in network_txs() {
            l.submit(tx).await.unwrap();
        }
        l.submit(weights(11, 1, 4)).await.unwrap();
        l.submit(close_epoch(1, 4)).await.unwrap();
        let y = l.yuma_epoch("sat", 4).await.unwrap();
        assert_eq!(y.active.iter().filter(|a| **a).count(), 1);
        assert_eq!(
            l.submit(weights(12, 1, 4)).await.unwrap_err().code(),
            "epoch_closed"
        );
    }
}

#[tokio::test]
async fn a_reopened_ledger_re_executes_its_chain_to_the_same_root() {
    for db in TestDb::all().unwrap() {
        let head = {
            let store = db.open().await.unwrap();
            let l = open(&store, LedgerParams::default()).await;
            for tx in network_txs() {
                l.submit(tx).await.unwrap();
            }
            l.submit(weights(11, 1, 1)).await.unwrap();
            l.submit(weights(12, 1, 1)).await.unwrap();
            assert_eq!(l.audit_chain().await.unwrap(), 6);
            l.head().await
        };
        let store = db.open().await.unwrap();
        let l = open(&store, LedgerParams::default()).await;
        assert_eq!(l.head().await, head);
        assert_eq!(l.audit_chain().await.unwrap(), 6);
        // A ledger opened with other rules re-executes to other results and refuses to start
        // rather than serve a state its chain does not produce.
        let stricter = LedgerParams {
            tiers: {
                let mut t = hallmark_ledger::default_tiers();
                t.get_mut("validator").unwrap().min_stake = 10_000;
                t
            },
            ..LedgerParams::default()
        };
        let e = DevnetLedger::open(store.clone(), &genesis(), stricter, key(42))
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("chain broken at seq 1"), "{e}");
    }
}

#[tokio::test]
async fn reads_carry_proofs_that_check_offline_and_lies_do_not() {
    use hallmark_ledger::verify_read;
    for db in TestDb::all().unwrap() {
        let store = db.open().await.unwrap();
        let l = open(&store, LedgerParams::default()).await;
        for tx in network_txs() {
            l.submit(tx).await.unwrap();
        }
        let trusted = [l.header_key()];
        let account = format!("account/{}", key(3).public().to_ss58());
        let read = l.read(&account).await.unwrap();
        assert_eq!(read.value.as_ref().unwrap()["balance"], 77);
        let v = verify_read(&read, &trusted, Some(CHAIN));
        assert!(v.accepted, "{v:?}");
        let head = l.head().await;
        let header: hallmark_ledger::LedgerHeader =
            Signed::<hallmark_ledger::LedgerHeader>::from_envelope(read.header.clone())
                .verify()
                .unwrap()
                .payload;
        assert_eq!(header, head.header);

        // An absent key is proven absent.
        let absent = l
            .read(&format!("account/{}", key(99).public().to_ss58()))
            .await
            .unwrap();
        assert!(absent.value.is_none());
        assert!(verify_read(&absent, &trusted, None).accepted);

        let rejected = |r: &hallmark_ledger::LedgerRead, keys: &[hallmark_core::PublicKey]| {
            let v = verify_read(r, keys, Some(CHAIN));
            assert!(!v.accepted);
            v.rejection.unwrap()
        };
        // A changed value, a hidden value, a claimed value for an absent key.
        let mut lie = read.clone();
        lie.value.as_mut().unwrap()["balance"] = serde_json::json!(1_000_000);
        assert_eq!(rejected(&lie, &trusted), "proof_mismatch");
        let mut lie = read.clone();
        lie.value = None;
        assert_eq!(rejected(&lie, &trusted), "proof_mismatch");
        let mut lie = absent.clone();
        lie.value = read.value.clone();
        assert_eq!(rejected(&lie, &trusted), "proof_mismatch");
        // Another key's proof passed off for this one.
        let mut lie = read.clone();
        lie.key = format!("account/{}", key(1).public().to_ss58());
        assert_eq!(rejected(&lie, &trusted), "proof_mismatch");
        // A header by someone else, or edited after signing.
        assert_eq!(rejected(&read, &[key(7).public()]), "untrusted_signer");
        let mut lie = read.clone();
        let forged = Signed::sign(&header, &key(7)).unwrap();
        lie.header = forged.envelope().clone();
        assert_eq!(rejected(&lie, &trusted), "untrusted_signer");
        let mut lie = read.clone();
        lie.header.payload = lie.header.payload.replacen('e', "f", 1);
        assert_eq!(rejected(&lie, &trusted), "bad_signature");
        // Another chain.
        let v = verify_read(&read, &trusted, Some("elsewhere"));
        assert_eq!(v.rejection.as_deref(), Some("wrong_chain"));
        // Every kind of row the state holds reads back with a proof.
        for k in [
            format!("neuron/{}", key(11).public().to_ss58()),
            format!("stake/{}", key(21).public().to_ss58()),
        ] {
            let r = l.read(&k).await.unwrap();
            assert!(r.value.is_some(), "{k}");
            assert!(verify_read(&r, &trusted, Some(CHAIN)).accepted, "{k}");
        }
    }
}

#[tokio::test]
async fn two_heads_signed_at_one_height_prove_a_fork() {
    use hallmark_ledger::{ledger_fork, LedgerHeader};
    for db in TestDb::all().unwrap() {
        let store = db.open().await.unwrap();
        let l = open(&store, LedgerParams::default()).await;
        l.submit(network_txs().remove(0)).await.unwrap();
        let honest = l.read("build_managers").await.unwrap().header;
        let again = l.read("build_managers").await.unwrap().header;
        assert_eq!(
            ledger_fork(&honest, &again).unwrap_err().code(),
            "consistent"
        );
        // The same key signing another state at the same seq: a split view, proven.
        let mut h: LedgerHeader = Signed::<LedgerHeader>::from_envelope(honest.clone())
            .verify()
            .unwrap()
            .payload;
        h.state_root = "22".repeat(32);
        let forked = Signed::sign(&h, &key(42)).unwrap().envelope().clone();
        let fork = ledger_fork(&honest, &forked).unwrap();
        assert_eq!((fork.seq, fork.signer), (1, l.header_key()));
        // Not evidence: another signer, another height, a broken signature.
        let other = Signed::sign(&h, &key(43)).unwrap().envelope().clone();
        assert_eq!(
            ledger_fork(&honest, &other).unwrap_err().code(),
            "different_signers"
        );
        h.seq = 2;
        let later = Signed::sign(&h, &key(42)).unwrap().envelope().clone();
        assert_eq!(
            ledger_fork(&honest, &later).unwrap_err().code(),
            "different_heights"
        );
        let mut broken = forked.clone();
        broken.payload = broken.payload.replacen('e', "f", 1);
        assert_eq!(
            ledger_fork(&honest, &broken).unwrap_err().code(),
            "bad_signature"
        );
    }
}

#[test]
fn an_epoch_opens_at_the_block_time_of_its_first_weights() {
    let rules = rules(LedgerParams {
        epoch_close_grace_ms: 1_000,
        ..LedgerParams::default()
    });
    let mut state = LedgerState::genesis(&genesis().balances).unwrap();
    let run = |state: &mut LedgerState, tx: &Signed<LedgerTx>, time_ms: i64| {
        let ctx = BlockCtx {
            height: state.next_seq(),
            prev_hash: state.head_hash().to_string(),
            time_ms,
        };
        execute(state, &rules, tx, &ctx).map(|(_, r)| r)
    };
    for tx in network_txs() {
        run(&mut state, &tx, 1_000).unwrap();
    }
    run(&mut state, &weights(11, 1, 1), 10_000).unwrap();
    // The grace runs from the weights' block (10 000), not from the block before it (1 000).
    let e = run(&mut state, &close_epoch(1, 1), 10_500).unwrap_err();
    assert!(e.to_string().contains("grace ends at 11000"), "{e}");
    run(&mut state, &close_epoch(1, 1), 11_000).unwrap();
    assert!(state.value("yuma/sat/1").is_some());
    assert_eq!(
        state.value("epoch/sat/1").unwrap(),
        serde_json::json!({"opened_ms": 10_000})
    );
}

/// Issue 19, hole 1: bonded validator stake counts for votes only from the next stake-epoch
/// boundary, a cut counts at once, founding validators count from registration, and only the
/// `max_validators` largest count.
#[test]
fn validator_stake_counts_from_the_next_stake_epoch_and_only_the_largest() {
    let rules = rules(LedgerParams {
        stake_epoch_ms: 10_000,
        max_validators: 2,
        genesis_validators: vec![key(11).public()],
        ..LedgerParams::default()
    });
    let mut state = LedgerState::genesis(&genesis().balances).unwrap();
    let at = |state: &mut LedgerState, time_ms: i64, tx: &Signed<LedgerTx>| {
        let ctx = BlockCtx {
            height: state.next_seq(),
            prev_hash: state.head_hash().to_string(),
            time_ms,
        };
        execute(state, &rules, tx, &ctx).unwrap();
    };
    let voting = |state: &LedgerState, k: u8| {
        state
            .validator_stakes()
            .unwrap()
            .get(&key(k).public())
            .copied()
            .unwrap_or(0)
    };
    let reg = |cold: u8, nonce: u64, hot: u8, stake: u64| {
        signed(
            &key(cold),
            nonce,
            TxBody::Register {
                hotkey: key(hot).public(),
                role: Role::Validator,
                stake,
            },
        )
    };
    // Epoch 1 (10 s .. 20 s): the founding validator counts at once, another waits.
    at(&mut state, 10_500, &reg(1, 1, 11, 5_000));
    at(&mut state, 11_000, &reg(2, 1, 12, 60_000));
    assert_eq!(voting(&state, 11), 5_000);
    assert_eq!(voting(&state, 12), 0, "bonded mid-epoch: not yet");
    // A third validator, and a top-up of the founder, in the same epoch: neither counts yet.
    at(&mut state, 12_000, &reg(1, 2, 13, 2_000));
    at(
        &mut state,
        12_500,
        &signed(
            &key(1),
            3,
            TxBody::Stake {
                hotkey: key(11).public(),
                amount: 1_000,
                tier: "validator".into(),
            },
        ),
    );
    assert_eq!(voting(&state, 11), 5_000, "a top-up waits for the boundary");
    assert_eq!(voting(&state, 13), 0);
    // The first transaction of epoch 2 snapshots: the two largest count (12 and 11), 13 not.
    let heartbeat = signed(&key(11), 1, TxBody::Heartbeat {});
    at(&mut state, 20_000, &heartbeat);
    assert_eq!(voting(&state, 12), 60_000);
    assert_eq!(voting(&state, 11), 6_000);
    assert_eq!(
        voting(&state, 13),
        0,
        "max_validators = 2 keeps the largest two"
    );
    assert_eq!(state.validator_stakes().unwrap().len(), 2);
}
