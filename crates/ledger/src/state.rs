//! The ledger state a transition reads: every row the signed chain has written, in memory,
//! with the state root kept current as write sets are absorbed.
//!
//! The state is a pure function of the genesis and the transactions in order: [`LedgerState`]
//! is built by replaying them (see [`crate::machine`]), never by reading a clock or a
//! database in the middle of a transition. The store keeps the same rows for queries.

use std::collections::BTreeMap;

use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::PublicKey;
use hallmark_log::Hash;
use hallmark_store::{
    AccountRow, ArchiveCommitRow, BuildInfoRow, CommitmentRow, ConfidentialRow, LedgerCommit,
    NeuronRow, NullifierRow, SettledJobRow, SlashRow, StakeRow, WeightsRow,
};

use crate::read::LedgerHeader;
use crate::state_tree::{state_leaf, StateProof, StateTree};
use crate::types::Role;
use crate::LedgerError;

/// A write set: every row one transaction writes. The store commits it atomically with the
/// transaction; the state absorbs the same rows.
pub type WriteSet = LedgerCommit;

/// The `prev_hash` of the first transaction.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every ledger row, keyed as the transitions look them up.
#[derive(Debug, Clone, Default)]
pub struct LedgerState {
    pub(crate) accounts: BTreeMap<String, AccountRow>,
    pub(crate) neurons: BTreeMap<String, NeuronRow>,
    pub(crate) stakes: BTreeMap<String, StakeRow>,
    pub(crate) weights: BTreeMap<(String, u64, String), WeightsRow>,
    /// When each lane's epoch got its first weights (block time, ms).
    pub(crate) epoch_opened_ms: BTreeMap<(String, u64), i64>,
    /// Closed epochs: their Yuma result (JSON).
    pub(crate) yuma: BTreeMap<(String, u64), String>,
    pub(crate) commitments: BTreeMap<(String, String), CommitmentRow>,
    pub(crate) settled: BTreeMap<String, SettledJobRow>,
    pub(crate) slashes: BTreeMap<(String, String, String), SlashRow>,
    pub(crate) confidential: BTreeMap<String, ConfidentialRow>,
    pub(crate) nullifiers: BTreeMap<String, NullifierRow>,
    pub(crate) build_managers: Option<(u64, String)>,
    pub(crate) build_info: BTreeMap<String, BuildInfoRow>,
    pub(crate) archive_commits: BTreeMap<String, ArchiveCommitRow>,
    /// The last applied transaction: `(seq, tx_hash)`; `(0, GENESIS_PREV)` before any.
    pub(crate) head: (u64, String),
    /// The last block time applied (block times never go backwards).
    pub(crate) time_ms: i64,
    tree: StateTree,
    /// The transparency log of every applied transaction (leaf = its canonical envelope), so
    /// every replica's log root is part of what it agrees on.
    log: hallmark_log::MerkleTree,
}

fn leaf_bytes(value: &serde_json::Value) -> Result<Vec<u8>, LedgerError> {
    to_canonical_bytes(value).map_err(|e| LedgerError::Invalid(format!("state encoding: {e}")))
}

/// The canonical value of each kind of row, as its state leaf hashes it and as a read
/// returns it.
mod encode {
    use hallmark_core::sha256;
    use hallmark_store::{
        AccountRow, ArchiveCommitRow, BuildInfoRow, CommitmentRow, ConfidentialRow, NeuronRow,
        NullifierRow, SettledJobRow, SlashRow, StakeRow, WeightsRow,
    };
    use serde_json::{json, Value};

    pub fn account(a: &AccountRow) -> Value {
        json!({"balance": a.balance, "nonce": a.nonce})
    }
    pub fn neuron(n: &NeuronRow) -> Value {
        json!({"uid": n.uid, "coldkey": n.coldkey, "role": n.role, "stake": n.stake,
               "axon": n.axon, "registered_seq": n.registered_seq,
               "last_heartbeat_ms": n.last_heartbeat_ms, "voting_stake": n.voting_stake})
    }
    pub fn stake(s: &StakeRow) -> Value {
        json!({"coldkey": s.coldkey, "tier": s.tier, "pending": s.pending,
               "locked_until_ms": s.locked_until_ms})
    }
    pub fn weights(w: &WeightsRow) -> Value {
        json!({"weights": w.weights, "seq": w.seq})
    }
    pub fn epoch(opened_ms: i64) -> Value {
        json!({"opened_ms": opened_ms})
    }
    pub fn yuma(result: &str) -> Value {
        json!({"result_sha256": sha256(result.as_bytes()).to_hex()})
    }
    pub fn commitment(c: &CommitmentRow) -> Value {
        json!({"commitment": c.commitment})
    }
    pub fn settled(j: &SettledJobRow) -> Value {
        json!({"outcome": j.outcome, "result_digest": j.result_digest,
               "worker": j.worker, "seq": j.seq, "stakes": j.stakes})
    }
    pub fn slash(s: &SlashRow) -> Value {
        json!({"amount": s.amount, "seq": s.seq})
    }
    pub fn confidential(c: &ConfidentialRow) -> Value {
        json!({"pubkey": c.pubkey, "balance": c.balance, "hint": c.hint, "seq": c.seq})
    }
    pub fn nullifier(n: &NullifierRow) -> Value {
        json!({"job_id": n.job_id, "worker": n.worker, "amount": n.amount, "seq": n.seq})
    }
    pub fn build_managers(version: u64, managers: &str) -> Value {
        json!({"version": version, "managers": managers})
    }
    pub fn build_info(b: &BuildInfoRow) -> Value {
        json!({"recipe": b.recipe, "manager": b.manager, "seq": b.seq})
    }
    pub fn archive(a: &ArchiveCommitRow) -> Value {
        json!({"lane": a.lane, "hotkey": a.hotkey, "seq": a.seq,
               "committed_ms": a.committed_ms})
    }
}

impl LedgerState {
    /// The state at genesis: the genesis balances and nothing else.
    pub fn genesis(balances: &[(PublicKey, u64)]) -> Result<Self, LedgerError> {
        let mut state = Self {
            head: (0, GENESIS_PREV.to_string()),
            ..Self::default()
        };
        let mut ws = WriteSet::default();
        for (k, b) in balances {
            ws.accounts.push(AccountRow {
                address: k.to_ss58(),
                balance: *b,
                nonce: 0,
            });
        }
        state.absorb(&ws)?;
        Ok(state)
    }

    /// The state root (hex) committing to every row.
    pub fn root_hex(&mut self) -> String {
        hex::encode(self.tree.root())
    }

    /// The state root.
    pub fn root(&mut self) -> Hash {
        self.tree.root()
    }

    /// How many keys the state holds.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether the state holds nothing.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// A proof of `key`'s value (or absence) under the current root.
    pub fn prove(&mut self, key: &str) -> StateProof {
        self.tree.prove(key)
    }

    /// The transparency log's root over every applied transaction.
    pub fn log_root(&self) -> Hash {
        self.log.root()
    }

    /// How many transactions the log holds.
    pub fn log_size(&self) -> u64 {
        self.log.size()
    }

    /// The header of the state as it is now: what a read's proof leads to.
    pub fn header(&mut self, chain_id: &str) -> LedgerHeader {
        LedgerHeader {
            chain_id: chain_id.to_string(),
            seq: self.head.0,
            tx_hash: self.head.1.clone(),
            time_ms: self.time_ms,
            state_root: self.root_hex(),
        }
    }

    /// The sequence number the next transaction gets.
    pub fn next_seq(&self) -> u64 {
        self.head.0 + 1
    }

    /// The last applied transaction's hash (the next one's `prev_hash`).
    pub fn head_hash(&self) -> &str {
        &self.head.1
    }

    /// The last block time applied.
    pub fn time_ms(&self) -> i64 {
        self.time_ms
    }

    /// Rehashes `key`'s leaf from the row it names: the leaf is the value a read returns, by
    /// construction.
    fn refresh(&mut self, key: &str) -> Result<(), LedgerError> {
        let value = self
            .value(key)
            .ok_or_else(|| LedgerError::Invalid(format!("state key {key:?} names no row")))?;
        let bytes = leaf_bytes(&value)?;
        self.tree.set(key, Some(state_leaf(key, &bytes)));
        Ok(())
    }

    /// Applies a write set's rows: each replaces the one under its key, and the tree follows.
    /// (The transaction row moves the head: [`LedgerState::advance`].)
    pub fn absorb(&mut self, ws: &WriteSet) -> Result<(), LedgerError> {
        let mut keys = Vec::new();
        for a in &ws.accounts {
            keys.push(format!("account/{}", a.address));
            self.accounts.insert(a.address.clone(), a.clone());
        }
        for n in &ws.neurons {
            keys.push(format!("neuron/{}", n.hotkey));
            self.neurons.insert(n.hotkey.clone(), n.clone());
        }
        for s in &ws.stakes {
            keys.push(format!("stake/{}", s.hotkey));
            self.stakes.insert(s.hotkey.clone(), s.clone());
        }
        for w in &ws.weights {
            keys.push(format!("weights/{}/{}/{}", w.lane, w.epoch, w.validator));
            let epoch = (w.lane.clone(), w.epoch);
            if !self.epoch_opened_ms.contains_key(&epoch) {
                // An epoch opens at the block time of its first weights.
                keys.push(format!("epoch/{}/{}", w.lane, w.epoch));
                self.epoch_opened_ms.insert(epoch, self.time_ms);
            }
            self.weights
                .insert((w.lane.clone(), w.epoch, w.validator.clone()), w.clone());
        }
        if let Some((lane, epoch, result)) = &ws.yuma {
            keys.push(format!("yuma/{lane}/{epoch}"));
            self.yuma.insert((lane.clone(), *epoch), result.clone());
        }
        if let Some(c) = &ws.commitment {
            keys.push(format!("commitment/{}/{}", c.validator, c.run_id));
            self.commitments
                .insert((c.validator.clone(), c.run_id.clone()), c.clone());
        }
        if let Some(j) = &ws.settled_job {
            keys.push(format!("settled/{}", j.job_id));
            self.settled.insert(j.job_id.clone(), j.clone());
        }
        for s in &ws.slashes {
            keys.push(format!("slash/{}/{}/{}", s.hotkey, s.job_id, s.reason));
            self.slashes.insert(
                (s.hotkey.clone(), s.job_id.clone(), s.reason.clone()),
                s.clone(),
            );
        }
        if let Some(c) = &ws.confidential {
            keys.push(format!("confidential/{}", c.hotkey));
            self.confidential.insert(c.hotkey.clone(), c.clone());
        }
        if let Some(n) = &ws.nullifier {
            keys.push(format!("nullifier/{}", n.nullifier));
            self.nullifiers.insert(n.nullifier.clone(), n.clone());
        }
        if let Some((version, managers)) = &ws.build_managers {
            keys.push("build_managers".into());
            self.build_managers = Some((*version, managers.clone()));
        }
        if let Some(b) = &ws.build_info {
            keys.push(format!("build_info/{}", b.wasm_sha256));
            self.build_info.insert(b.wasm_sha256.clone(), b.clone());
        }
        if let Some(a) = &ws.archive_commit {
            keys.push(format!("archive/{}", a.archive_sha256));
            self.archive_commits
                .insert(a.archive_sha256.clone(), a.clone());
        }
        for key in &keys {
            self.refresh(key)?;
        }
        Ok(())
    }

    /// Starts a block at `time_ms` (never earlier than the last; [`crate::machine::apply`]
    /// refuses that): rows written from here on are stamped with it.
    pub(crate) fn begin_block(&mut self, time_ms: i64) {
        self.time_ms = self.time_ms.max(time_ms);
    }

    /// Records an applied transaction: the new head and its envelope's log leaf.
    pub(crate) fn advance(&mut self, seq: u64, tx_hash: String, canonical_envelope: &[u8]) {
        self.head = (seq, tx_hash);
        self.log.push(hallmark_log::leaf_hash(canonical_envelope));
    }

    /// The canonical value under a state key (as its leaf hashes it), if the key is present.
    /// Keys: `account/{ss58}`, `neuron/{ss58}`, `stake/{ss58}`, `weights/{lane}/{epoch}/{ss58}`,
    /// `epoch/{lane}/{epoch}`, `yuma/{lane}/{epoch}`, `commitment/{ss58}/{run}`,
    /// `settled/{job}`, `slash/{ss58}/{job}/{reason}`, `confidential/{ss58}`,
    /// `nullifier/{hex}`, `build_managers`, `build_info/{sha256}`, `archive/{sha256}`.
    pub fn value(&self, key: &str) -> Option<serde_json::Value> {
        let (kind, rest) = key.split_once('/').unwrap_or((key, ""));
        let parts: Vec<&str> = rest.split('/').collect();
        let lane_epoch = |p: &[&str]| -> Option<(String, u64)> {
            match p {
                [lane, epoch] => Some((lane.to_string(), epoch.parse().ok()?)),
                _ => None,
            }
        };
        match kind {
            "account" => self.accounts.get(rest).map(encode::account),
            "neuron" => self.neurons.get(rest).map(encode::neuron),
            "stake" => self.stakes.get(rest).map(encode::stake),
            "weights" => match parts.as_slice() {
                [lane, epoch, v] => self
                    .weights
                    .get(&(lane.to_string(), epoch.parse().ok()?, v.to_string()))
                    .map(encode::weights),
                _ => None,
            },
            "epoch" => self
                .epoch_opened_ms
                .get(&lane_epoch(&parts)?)
                .map(|t| encode::epoch(*t)),
            "yuma" => self.yuma.get(&lane_epoch(&parts)?).map(|r| encode::yuma(r)),
            "commitment" => {
                let (v, run) = rest.split_once('/')?;
                self.commitments
                    .get(&(v.to_string(), run.to_string()))
                    .map(encode::commitment)
            }
            "settled" => self.settled.get(rest).map(encode::settled),
            "slash" => {
                // Hotkeys and reasons hold no '/'; a job id may.
                let (h, job_reason) = rest.split_once('/')?;
                let (j, r) = job_reason.rsplit_once('/')?;
                self.slashes
                    .get(&(h.to_string(), j.to_string(), r.to_string()))
                    .map(encode::slash)
            }
            "confidential" => self.confidential.get(rest).map(encode::confidential),
            "nullifier" => self.nullifiers.get(rest).map(encode::nullifier),
            "build_managers" if rest.is_empty() => self
                .build_managers
                .as_ref()
                .map(|(v, m)| encode::build_managers(*v, m)),
            "build_info" => self.build_info.get(rest).map(encode::build_info),
            "archive" => self.archive_commits.get(rest).map(encode::archive),
            _ => None,
        }
    }

    /// An account, if it ever held anything.
    pub fn account(&self, address: &str) -> Option<&AccountRow> {
        self.accounts.get(address)
    }

    /// A registered neuron by hotkey (ss58).
    pub fn neuron(&self, hotkey: &str) -> Option<&NeuronRow> {
        self.neurons.get(hotkey)
    }

    /// A hotkey's stake record.
    pub fn stake(&self, hotkey: &str) -> Option<&StakeRow> {
        self.stakes.get(hotkey)
    }

    /// The uid the next registered neuron gets (uids count from 1 and are never reused).
    pub fn next_uid(&self) -> u64 {
        self.neurons.len() as u64 + 1
    }

    /// Whether a lane's epoch is closed.
    pub fn epoch_closed(&self, lane: &str, epoch: u64) -> bool {
        self.yuma.contains_key(&(lane.to_string(), epoch))
    }

    /// A closed epoch's Yuma result (JSON).
    pub fn yuma(&self, lane: &str, epoch: u64) -> Option<&str> {
        self.yuma
            .get(&(lane.to_string(), epoch))
            .map(String::as_str)
    }

    /// The last closed epoch of a lane before `epoch`, whose bonds carry over.
    pub fn yuma_before(&self, lane: &str, epoch: u64) -> Option<(u64, &str)> {
        self.yuma
            .range((lane.to_string(), 0)..(lane.to_string(), epoch))
            .next_back()
            .map(|((_, e), r)| (*e, r.as_str()))
    }

    /// The weights set for a lane's epoch, by validator.
    pub fn epoch_weights<'a>(
        &'a self,
        lane: &'a str,
        epoch: u64,
    ) -> impl Iterator<Item = &'a WeightsRow> + 'a {
        self.weights
            .range((lane.to_string(), epoch, String::new())..)
            .take_while(move |((l, e, _), _)| l == lane && *e == epoch)
            .map(|(_, w)| w)
    }

    /// When a lane's epoch got its first weights.
    pub fn epoch_opened_ms(&self, lane: &str, epoch: u64) -> Option<i64> {
        self.epoch_opened_ms
            .get(&(lane.to_string(), epoch))
            .copied()
    }

    /// A validator's commitment for a run.
    pub fn commitment(&self, validator: &str, run_id: &str) -> Option<&CommitmentRow> {
        self.commitments
            .get(&(validator.to_string(), run_id.to_string()))
    }

    /// How a job was settled.
    pub fn settled_job(&self, job_id: &str) -> Option<&SettledJobRow> {
        self.settled.get(job_id)
    }

    /// Whether a hotkey was slashed for a reason on a job.
    pub fn slashed(&self, hotkey: &str, job_id: &str, reason: &str) -> bool {
        self.slashes
            .contains_key(&(hotkey.to_string(), job_id.to_string(), reason.to_string()))
    }

    /// A worker's private balance row.
    pub fn confidential(&self, hotkey: &str) -> Option<&ConfidentialRow> {
        self.confidential.get(hotkey)
    }

    /// A spent payment nullifier.
    pub fn nullifier(&self, nullifier: &str) -> Option<&NullifierRow> {
        self.nullifiers.get(nullifier)
    }

    /// The build-manager set in force: version and managers (JSON).
    pub fn build_managers(&self) -> Option<&(u64, String)> {
        self.build_managers.as_ref()
    }

    /// A build-info registry entry.
    pub fn build_info(&self, wasm_sha256: &str) -> Option<&BuildInfoRow> {
        self.build_info.get(wasm_sha256)
    }

    /// The first commitment to an archive's bytes.
    pub fn archive_commit(&self, archive_sha256: &str) -> Option<&ArchiveCommitRow> {
        self.archive_commits.get(archive_sha256)
    }

    /// Registered validators with voting stake (see `crate::voting`), the table vote
    /// certificates, Yuma weights and the BFT validator set are counted against.
    pub fn validator_stakes(&self) -> Result<BTreeMap<PublicKey, u64>, LedgerError> {
        self.neurons
            .values()
            .filter(|n| n.role == Role::Validator.as_str() && n.voting_stake > 0)
            .map(|n| {
                let key: PublicKey = n.hotkey.parse().map_err(|_| {
                    LedgerError::Invalid(format!("stored hotkey {} is not a key", n.hotkey))
                })?;
                Ok((key, n.voting_stake))
            })
            .collect()
    }

    /// Neurons in uid order.
    pub fn neurons_by_uid(&self) -> Vec<&NeuronRow> {
        let mut v: Vec<&NeuronRow> = self.neurons.values().collect();
        v.sort_by_key(|n| n.uid);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_store::{
        ArchiveCommitRow, BuildInfoRow, CommitmentRow, ConfidentialRow, NullifierRow,
        SettledJobRow, SlashRow, StakeRow, WeightsRow,
    };

    /// One row of every kind, ids with the characters they may hold: each reads back with a
    /// proof under the root, so a read and its leaf can never disagree.
    #[test]
    fn every_kind_of_row_reads_back_with_a_proof() {
        let mut state = LedgerState::genesis(&[]).unwrap();
        let ws = WriteSet {
            accounts: vec![AccountRow {
                address: "acct".into(),
                balance: 5,
                nonce: 1,
            }],
            neurons: vec![NeuronRow {
                uid: 1,
                hotkey: "hk".into(),
                coldkey: "ck".into(),
                role: "worker".into(),
                stake: 100,
                axon: None,
                registered_seq: 1,
                last_heartbeat_ms: 0,
                voting_stake: 0,
            }],
            stakes: vec![StakeRow {
                hotkey: "hk".into(),
                coldkey: "ck".into(),
                tier: "cpu".into(),
                pending: 0,
                locked_until_ms: 9,
            }],
            weights: vec![WeightsRow {
                lane: "sat".into(),
                epoch: u64::MAX,
                validator: "v".into(),
                weights: "[]".into(),
                seq: 1,
            }],
            commitment: Some(CommitmentRow {
                validator: "v".into(),
                run_id: "run/with/slashes".into(),
                commitment: "c".into(),
                envelope: "{}".into(),
                tx_hash: String::new(),
            }),
            settled_job: Some(SettledJobRow {
                job_id: "job/1".into(),
                outcome: "approved".into(),
                result_digest: "d".into(),
                worker: "hk".into(),
                seq: 1,
                stakes: "{}".into(),
            }),
            slashes: vec![SlashRow {
                hotkey: "hk".into(),
                job_id: "a/job/id".into(),
                reason: "equivocation".into(),
                amount: 1,
                seq: 1,
            }],
            confidential: Some(ConfidentialRow {
                hotkey: "hk".into(),
                pubkey: "p".into(),
                balance: "b".into(),
                hint: None,
                seq: 1,
            }),
            nullifier: Some(NullifierRow {
                nullifier: "n".into(),
                job_id: "j".into(),
                worker: "hk".into(),
                amount: 1,
                seq: 1,
            }),
            build_managers: Some((1, "[]".into())),
            build_info: Some(BuildInfoRow {
                wasm_sha256: "w".into(),
                recipe: "{}".into(),
                manager: "m".into(),
                seq: 1,
            }),
            archive_commit: Some(ArchiveCommitRow {
                archive_sha256: "a".into(),
                lane: "eval".into(),
                hotkey: "hk".into(),
                seq: 1,
                committed_ms: 2,
            }),
            yuma: Some(("sat".into(), 3, "{}".into())),
            tx: None,
        };
        state.absorb(&ws).unwrap();
        let root = state.root();
        let keys = [
            "account/acct",
            "neuron/hk",
            "stake/hk",
            "weights/sat/18446744073709551615/v",
            "epoch/sat/18446744073709551615",
            "yuma/sat/3",
            "commitment/v/run/with/slashes",
            "settled/job/1",
            "slash/hk/a/job/id/equivocation",
            "confidential/hk",
            "nullifier/n",
            "build_managers",
            "build_info/w",
            "archive/a",
        ];
        assert_eq!(state.len(), keys.len());
        for key in keys {
            let value = state.value(key).unwrap_or_else(|| panic!("{key}"));
            let bytes = to_canonical_bytes(&value).unwrap();
            state.prove(key).verify(&root, key, Some(&bytes)).unwrap();
        }
        assert!(state.value("slash/hk/a/job/id").is_none());
    }
}
