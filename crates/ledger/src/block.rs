//! Blocks: what a proposer builds from pending transactions and every other replica
//! re-executes before it votes.
//!
//! A block is `{height, prev_hash, time_ms, txs}` plus the roots its execution must reach
//! (`state_root`, `log_root`). [`build_block`] keeps the candidates that apply, in order, and
//! drops the rest; [`check_block`] re-executes a proposal on the replica's own state and
//! refuses it, naming why, if any transaction is invalid or any root differs. A replica votes
//! nil on a refusal. Both are pure: no clock, no I/O, the same answer on every machine.

use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::{sha256, Envelope, Signed};
use serde::{Deserialize, Serialize};

use crate::machine::{execute, BlockCtx, Rules};
use crate::state::{LedgerState, WriteSet};
use crate::types::{LedgerTx, TxReceipt};
use crate::LedgerError;

/// A proposed or decided block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Block {
    pub height: u64,
    /// The previous block's hash ([`crate::state::GENESIS_PREV`] for the first).
    pub prev_hash: String,
    /// The proposer's time; never before the previous block's.
    pub time_ms: i64,
    /// Signed ledger transactions, in the order they execute.
    pub txs: Vec<Envelope>,
    /// The state root after the last transaction (hex).
    pub state_root: String,
    /// The transaction log's root after the last transaction (hex).
    pub log_root: String,
    /// The transaction log's size after the last transaction: with `log_root`, the log
    /// checkpoint the block commits to (so a commit certificate co-signs it).
    #[serde(default)]
    pub log_size: u64,
}

impl Block {
    /// The block's hash: SHA-256 over its canonical JSON.
    pub fn hash(&self) -> Result<String, LedgerError> {
        let bytes = to_canonical_bytes(self).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        Ok(sha256(&bytes).to_hex())
    }
}

/// Why a replica refuses a proposed block (and votes nil).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block height {found}, the next is {expected}")]
    WrongHeight { expected: u64, found: u64 },
    #[error("block builds on {found}, not on this replica's head {expected}")]
    WrongPrev { expected: String, found: String },
    #[error("block time {found} is before the last block's {last}")]
    TimeBackwards { last: i64, found: i64 },
    #[error("transaction {index} is invalid: {code}: {message}")]
    InvalidTx {
        index: usize,
        code: String,
        message: String,
    },
    #[error("the block claims state root {claimed}, re-execution gives {computed}")]
    WrongStateRoot { claimed: String, computed: String },
    #[error("the block claims log root {claimed}, re-execution gives {computed}")]
    WrongLogRoot { claimed: String, computed: String },
    #[error("the block claims log size {claimed}, re-execution gives {computed}")]
    WrongLogSize { claimed: u64, computed: u64 },
    #[error("block has {found} transactions, at most {max}")]
    TooManyTxs { max: usize, found: usize },
}

impl BlockError {
    /// A stable code for logs, votes and the wire.
    pub fn code(&self) -> &'static str {
        match self {
            BlockError::WrongHeight { .. } => "wrong_height",
            BlockError::WrongPrev { .. } => "wrong_prev",
            BlockError::TimeBackwards { .. } => "time_backwards",
            BlockError::InvalidTx { .. } => "invalid_tx",
            BlockError::WrongStateRoot { .. } => "wrong_state_root",
            BlockError::WrongLogRoot { .. } => "wrong_log_root",
            BlockError::WrongLogSize { .. } => "wrong_log_size",
            BlockError::TooManyTxs { .. } => "too_many_txs",
        }
    }
}

/// Builds the block at `height` on `state` from `candidates` (a mempool's order): each one
/// that applies is kept, each that does not is dropped with its reason. Returns the block,
/// the state after it, and what was dropped. `state` itself is not changed.
#[allow(clippy::type_complexity)]
pub fn build_block(
    state: &LedgerState,
    rules: &Rules,
    height: u64,
    prev_hash: &str,
    time_ms: i64,
    candidates: impl IntoIterator<Item = Signed<LedgerTx>>,
    max_txs: usize,
) -> Result<(Block, LedgerState, Vec<(Envelope, LedgerError)>), LedgerError> {
    let mut next = state.clone();
    let ctx = BlockCtx {
        height,
        prev_hash: prev_hash.to_string(),
        time_ms: time_ms.max(state.time_ms()),
    };
    let mut txs = Vec::new();
    let mut dropped = Vec::new();
    for tx in candidates {
        if txs.len() >= max_txs {
            break;
        }
        match execute(&mut next, rules, &tx, &ctx) {
            Ok(_) => txs.push(tx.envelope().clone()),
            Err(e) => dropped.push((tx.envelope().clone(), e)),
        }
    }
    let block = Block {
        height,
        prev_hash: prev_hash.to_string(),
        time_ms: ctx.time_ms,
        txs,
        state_root: next.root_hex(),
        log_root: hex::encode(next.log_root()),
        log_size: next.log_size(),
    };
    Ok((block, next, dropped))
}

/// Re-executes a proposed block on a copy of `state` (whose last block is `head`, at
/// `height - 1`): every transaction must apply and both roots must match. Returns the state
/// after the block and each transaction's write set and receipt, or why the block is
/// refused.
pub fn check_block(
    state: &LedgerState,
    rules: &Rules,
    head: (u64, &str),
    block: &Block,
    max_txs: usize,
) -> Result<(LedgerState, Vec<(WriteSet, TxReceipt)>), BlockError> {
    let (head_height, head_hash) = head;
    if block.height != head_height + 1 {
        return Err(BlockError::WrongHeight {
            expected: head_height + 1,
            found: block.height,
        });
    }
    if block.prev_hash != head_hash {
        return Err(BlockError::WrongPrev {
            expected: head_hash.to_string(),
            found: block.prev_hash.clone(),
        });
    }
    if block.time_ms < state.time_ms() {
        return Err(BlockError::TimeBackwards {
            last: state.time_ms(),
            found: block.time_ms,
        });
    }
    if block.txs.len() > max_txs {
        return Err(BlockError::TooManyTxs {
            max: max_txs,
            found: block.txs.len(),
        });
    }
    let ctx = BlockCtx {
        height: block.height,
        prev_hash: block.prev_hash.clone(),
        time_ms: block.time_ms,
    };
    let mut next = state.clone();
    let mut writes = Vec::with_capacity(block.txs.len());
    for (index, env) in block.txs.iter().enumerate() {
        let signed = Signed::<LedgerTx>::from_envelope(env.clone());
        let done = execute(&mut next, rules, &signed, &ctx).map_err(|e| BlockError::InvalidTx {
            index,
            code: e.code().to_string(),
            message: e.to_string(),
        })?;
        writes.push(done);
    }
    let computed = next.root_hex();
    if computed != block.state_root {
        return Err(BlockError::WrongStateRoot {
            claimed: block.state_root.clone(),
            computed,
        });
    }
    let computed = hex::encode(next.log_root());
    if computed != block.log_root {
        return Err(BlockError::WrongLogRoot {
            claimed: block.log_root.clone(),
            computed,
        });
    }
    if next.log_size() != block.log_size {
        return Err(BlockError::WrongLogSize {
            claimed: block.log_size,
            computed: next.log_size(),
        });
    }
    Ok((next, writes))
}
