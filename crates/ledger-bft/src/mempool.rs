//! Pending transactions, checked before they are accepted or forwarded.
//!
//! A transaction enters only if it applies on the replica's decided state: that checks its
//! signature, chain, nonce and funds with the very state machine blocks run. A proposal
//! takes each sender's transactions in nonce order and [`hallmark_ledger::build_block`]
//! drops any that no longer apply (say, funds spent by an earlier one). After each decided
//! block, entries whose nonce the chain has passed are dropped.

use std::collections::{BTreeMap, HashSet};

use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::{sha256, Signed};
use hallmark_ledger::machine::{apply, BlockCtx, Rules};
use hallmark_ledger::state::LedgerState;
use hallmark_ledger::LedgerError;
use hallmark_ledger::LedgerTx;

/// Why the mempool refuses a transaction.
#[derive(Debug, thiserror::Error)]
pub enum MempoolError {
    #[error("the mempool is full ({0} transactions)")]
    Full(usize),
    #[error("transaction {0} is already pending")]
    Duplicate(String),
    /// Another pending transaction of the same sender has this nonce: pick a higher one.
    #[error("{signer} already has a pending transaction with nonce {nonce}: use a higher nonce")]
    NonceTaken { signer: String, nonce: u64 },
    #[error(transparent)]
    Refused(#[from] LedgerError),
}

impl MempoolError {
    /// A stable code for the wire.
    pub fn code(&self) -> &str {
        match self {
            MempoolError::Full(_) => "mempool_full",
            MempoolError::Duplicate(_) => "duplicate_tx",
            // The same remedy as a nonce the chain has passed: sign again with a higher one.
            MempoolError::NonceTaken { .. } => "stale_nonce",
            MempoolError::Refused(e) => e.code(),
        }
    }
}

/// A transaction's id: SHA-256 of its envelope's canonical JSON, hex.
pub fn tx_id(tx: &Signed<LedgerTx>) -> String {
    match to_canonical_bytes(tx.envelope()) {
        Ok(bytes) => sha256(&bytes).to_hex(),
        // An envelope always serializes; fall back to its plain JSON to stay total.
        Err(_) => sha256(
            serde_json::to_string(tx.envelope())
                .unwrap_or_default()
                .as_bytes(),
        )
        .to_hex(),
    }
}

/// One pending transaction.
struct Pending {
    id: String,
    tx: Signed<LedgerTx>,
    /// Arrival order, so senders are served first come, first served.
    arrival: u64,
    /// When it arrived (ms), to tell a nonce gap still being filled from a deliberate one.
    received_ms: i64,
}

/// The pending transactions of one replica, by sender and nonce.
pub struct Mempool {
    pending: BTreeMap<(String, u64), Pending>,
    ids: HashSet<String>,
    next_arrival: u64,
    capacity: usize,
}

impl Mempool {
    /// An empty mempool holding at most `capacity` transactions.
    pub fn new(capacity: usize) -> Self {
        Self {
            pending: BTreeMap::new(),
            ids: HashSet::new(),
            next_arrival: 0,
            capacity,
        }
    }

    /// Checks `tx` on the decided `state` at block context `ctx` (signature, chain, a nonce
    /// above the sender's last, funds and the transaction's own rules) and queues it.
    /// Transactions may arrive out of nonce order (forwarding reorders them): a proposal
    /// takes each sender's in nonce order.
    pub fn insert(
        &mut self,
        state: &LedgerState,
        rules: &Rules,
        ctx: &BlockCtx,
        tx: Signed<LedgerTx>,
    ) -> Result<String, MempoolError> {
        let id = tx_id(&tx);
        if self.ids.contains(&id) {
            return Err(MempoolError::Duplicate(id));
        }
        if self.pending.len() >= self.capacity {
            return Err(MempoolError::Full(self.capacity));
        }
        let ws = apply(state, rules, &tx, ctx)?;
        let signer = ws.tx.map(|t| t.signer).unwrap_or_default();
        let nonce = tx
            .verify()
            .map_err(|e| LedgerError::BadSignature(e.to_string()))?
            .payload
            .nonce;
        let key = (signer, nonce);
        if self.pending.contains_key(&key) {
            return Err(MempoolError::NonceTaken {
                signer: key.0,
                nonce: key.1,
            });
        }
        self.ids.insert(id.clone());
        self.pending.insert(
            key,
            Pending {
                id: id.clone(),
                tx,
                arrival: self.next_arrival,
                received_ms: ctx.time_ms,
            },
        );
        self.next_arrival += 1;
        Ok(id)
    }

    /// Up to `max` pending transactions for a proposal: senders in the order they first
    /// arrived, each sender's in nonce order. A sender's run stops at a nonce gap (the
    /// missing transaction may still be on its way from another replica, and including a
    /// later nonce would make it stale) unless the next one has waited `gap_grace_ms`:
    /// nonces need only increase, so a deliberate gap is served after the grace.
    pub fn candidates(
        &self,
        state: &LedgerState,
        now_ms: i64,
        gap_grace_ms: i64,
        max: usize,
    ) -> Vec<Signed<LedgerTx>> {
        let mut by_sender: BTreeMap<&str, Vec<(u64, &Pending)>> = BTreeMap::new();
        for ((sender, nonce), p) in &self.pending {
            by_sender
                .entry(sender.as_str())
                .or_default()
                .push((*nonce, p));
        }
        let mut runs: Vec<(u64, Vec<&Pending>)> = Vec::new();
        for (sender, txs) in by_sender {
            let mut expected = state.account(sender).map_or(0, |a| a.nonce) + 1;
            let mut run = Vec::new();
            for (nonce, p) in txs {
                let waited = now_ms.saturating_sub(p.received_ms) >= gap_grace_ms;
                if nonce != expected && !waited {
                    break;
                }
                expected = nonce + 1;
                run.push(p);
            }
            if let Some(first) = run.iter().map(|p| p.arrival).min() {
                runs.push((first, run));
            }
        }
        runs.sort_by_key(|(first, _)| *first);
        runs.into_iter()
            .flat_map(|(_, run)| run)
            .take(max)
            .map(|p| p.tx.clone())
            .collect()
    }

    /// How many transactions wait.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Drops every pending transaction whose nonce `state` (the state after a decided
    /// block) has passed: included ones and replaced ones alike. Returns how many.
    pub fn recheck(&mut self, state: &LedgerState) -> usize {
        let before = self.pending.len();
        let ids = &mut self.ids;
        self.pending.retain(|(sender, nonce), p| {
            let last = state.account(sender).map_or(0, |a| a.nonce);
            let keep = *nonce > last;
            if !keep {
                ids.remove(&p.id);
            }
            keep
        });
        before - self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_core::Keypair;
    use hallmark_ledger::{LedgerParams, TxBody};

    fn transfer(nonce: u64) -> Signed<LedgerTx> {
        let tx = LedgerTx {
            chain_id: "m".into(),
            nonce,
            body: TxBody::Transfer {
                to: Keypair::from_seed(&[2; 32]).public(),
                amount: 1,
            },
        };
        Signed::sign(&tx, &Keypair::from_seed(&[1; 32])).unwrap()
    }

    fn nonces(txs: &[Signed<LedgerTx>]) -> Vec<u64> {
        txs.iter()
            .map(|t| t.verify().unwrap().payload.nonce)
            .collect()
    }

    #[test]
    fn nonce_order_gaps_duplicates_and_recheck() {
        let state = LedgerState::genesis(&[(Keypair::from_seed(&[1; 32]).public(), 100)]).unwrap();
        let rules = Rules {
            chain_id: "m".into(),
            params: LedgerParams::default(),
        };
        let ctx = |t| BlockCtx {
            height: 1,
            prev_hash: String::new(),
            time_ms: t,
        };
        let mut m = Mempool::new(10);
        // Out of order, with a gap at 3.
        for n in [2, 1, 4] {
            m.insert(&state, &rules, &ctx(1_000), transfer(n)).unwrap();
        }
        assert_eq!(
            m.insert(&state, &rules, &ctx(1_000), transfer(2))
                .unwrap_err()
                .code(),
            "duplicate_tx"
        );
        let wrong_chain = Signed::sign(
            &LedgerTx {
                chain_id: "other".into(),
                nonce: 9,
                body: TxBody::Transfer {
                    to: Keypair::from_seed(&[2; 32]).public(),
                    amount: 1,
                },
            },
            &Keypair::from_seed(&[1; 32]),
        )
        .unwrap();
        assert_eq!(
            m.insert(&state, &rules, &ctx(1_000), wrong_chain)
                .unwrap_err()
                .code(),
            "wrong_chain"
        );
        // Before the grace, the run stops at the gap; after it, the later nonce is served.
        assert_eq!(nonces(&m.candidates(&state, 1_500, 3_000, 10)), vec![1, 2]);
        assert_eq!(
            nonces(&m.candidates(&state, 4_000, 3_000, 10)),
            vec![1, 2, 4]
        );
        assert_eq!(nonces(&m.candidates(&state, 4_000, 3_000, 1)), vec![1]);
        // Once the chain has passed nonce 2, 1 and 2 leave; 4 stays.
        let mut after = state.clone();
        for n in [1, 2] {
            hallmark_ledger::machine::execute(&mut after, &rules, &transfer(n), &ctx(2_000))
                .unwrap();
        }
        assert_eq!(m.recheck(&after), 2);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m.insert(&after, &rules, &ctx(2_000), transfer(2))
                .unwrap_err()
                .code(),
            "stale_nonce"
        );
    }
}
