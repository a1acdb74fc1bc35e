//! Blocks as replicas will handle them: a proposer keeps the transactions that apply, and
//! every other replica re-executes the proposal and refuses (votes nil on) one with an invalid
//! transaction or a wrong root. Two replicas given the same block reach the same state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hallmark_core::{Keypair, Signed};
use hallmark_ledger::state::GENESIS_PREV;
use hallmark_ledger::{
    build_block, check_block, BlockError, LedgerParams, LedgerState, LedgerTx, Role, Rules, TxBody,
};

const CHAIN: &str = "block-test";

fn key(n: u8) -> Keypair {
    Keypair::from_seed(&[n; 32])
}

fn tx(k: u8, nonce: u64, body: TxBody) -> Signed<LedgerTx> {
    Signed::sign(
        &LedgerTx {
            chain_id: CHAIN.into(),
            nonce,
            body,
        },
        &key(k),
    )
    .unwrap()
}

fn transfer(from: u8, nonce: u64, to: u8, amount: u64) -> Signed<LedgerTx> {
    tx(
        from,
        nonce,
        TxBody::Transfer {
            to: key(to).public(),
            amount,
        },
    )
}

fn genesis() -> LedgerState {
    LedgerState::genesis(&[(key(1).public(), 10_000)]).unwrap()
}

fn rules() -> Rules {
    Rules {
        chain_id: CHAIN.into(),
        params: LedgerParams::default(),
    }
}

#[test]
fn a_proposal_keeps_what_applies_and_every_replica_reaches_its_roots() {
    let rules = rules();
    let state = genesis();
    let candidates = vec![
        transfer(1, 1, 2, 100),
        // Overdraft: dropped.
        transfer(3, 1, 1, 5),
        // The same signed transaction again: stale nonce, dropped.
        transfer(1, 1, 2, 100),
        tx(
            1,
            2,
            TxBody::Register {
                hotkey: key(11).public(),
                role: Role::Validator,
                stake: 2_000,
            },
        ),
        transfer(2, 1, 3, 40),
    ];
    let (block, proposer_state, dropped) =
        build_block(&state, &rules, 1, GENESIS_PREV, 1_000, candidates, 100).unwrap();
    assert_eq!(block.txs.len(), 3);
    let codes: Vec<&str> = dropped.iter().map(|(_, e)| e.code()).collect();
    assert_eq!(codes, ["insufficient_balance", "stale_nonce"]);
    assert_eq!(state.next_seq(), 1, "the proposer's own state is untouched");

    // Two other replicas re-execute it and agree with the proposer, root for root.
    for _ in 0..2 {
        let (mut next, executed) =
            check_block(&genesis(), &rules, (0, GENESIS_PREV), &block, 100).unwrap();
        assert_eq!(executed.len(), 3);
        assert_eq!(next.root_hex(), block.state_root);
        assert_eq!(hex::encode(next.log_root()), block.log_root);
        assert_eq!(next.log_size(), 3);
        assert_eq!(next.head_hash(), proposer_state.head_hash());
    }
    // A block cap holds.
    let (small, _, _) = build_block(
        &state,
        &rules,
        1,
        GENESIS_PREV,
        1_000,
        vec![transfer(1, 1, 2, 1), transfer(1, 2, 2, 1)],
        1,
    )
    .unwrap();
    assert_eq!(small.txs.len(), 1);
    assert_eq!(
        check_block(&genesis(), &rules, (0, GENESIS_PREV), &block, 2)
            .unwrap_err()
            .code(),
        "too_many_txs"
    );
}

#[test]
fn a_bad_proposal_is_refused_with_its_reason() {
    let rules = rules();
    let (block, _, _) = build_block(
        &genesis(),
        &rules,
        1,
        GENESIS_PREV,
        1_000,
        vec![transfer(1, 1, 2, 100), transfer(1, 2, 3, 100)],
        100,
    )
    .unwrap();
    let check = |b: &hallmark_ledger::Block| {
        check_block(&genesis(), &rules, (0, GENESIS_PREV), b, 100).unwrap_err()
    };
    // A lying state root, a lying log root.
    let mut bad = block.clone();
    bad.state_root = "00".repeat(32);
    assert!(matches!(check(&bad), BlockError::WrongStateRoot { .. }));
    let mut bad = block.clone();
    bad.log_root = "00".repeat(32);
    assert!(matches!(check(&bad), BlockError::WrongLogRoot { .. }));
    // An invalid transaction slipped in (an overdraft), or one replayed.
    let mut bad = block.clone();
    bad.txs.insert(1, transfer(3, 1, 1, 5).envelope().clone());
    match check(&bad) {
        BlockError::InvalidTx { index, code, .. } => {
            assert_eq!((index, code.as_str()), (1, "insufficient_balance"))
        }
        e => panic!("{e}"),
    }
    let mut bad = block.clone();
    bad.txs.push(bad.txs[0].clone());
    assert_eq!(check(&bad).code(), "invalid_tx");
    // Reordered transactions change the links, so the claimed roots no longer hold.
    let mut bad = block.clone();
    bad.txs.swap(0, 1);
    assert_eq!(check(&bad).code(), "invalid_tx", "nonce 2 before nonce 1");
    // Wrong place in the chain, or time going back.
    let mut bad = block.clone();
    bad.height = 2;
    assert_eq!(check(&bad).code(), "wrong_height");
    let mut bad = block.clone();
    bad.prev_hash = "11".repeat(32);
    assert_eq!(check(&bad).code(), "wrong_prev");
    let (mut after, _) = check_block(&genesis(), &rules, (0, GENESIS_PREV), &block, 100).unwrap();
    let (next, _, _) = build_block(
        &after,
        &rules,
        2,
        &block.hash().unwrap(),
        2_000,
        vec![transfer(2, 1, 3, 1)],
        100,
    )
    .unwrap();
    let mut earlier = next.clone();
    earlier.time_ms = 999;
    assert_eq!(
        check_block(&after, &rules, (1, &block.hash().unwrap()), &earlier, 100)
            .unwrap_err()
            .code(),
        "time_backwards"
    );
    let (mut done, _) =
        check_block(&after, &rules, (1, &block.hash().unwrap()), &next, 100).unwrap();
    assert_ne!(done.root_hex(), after.root_hex());
}
