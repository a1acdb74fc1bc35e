//! The single-sequencer ledger: one process orders signed transactions, each its own block,
//! executes them on the pure state machine and persists each write set through hallmark-store.

use async_trait::async_trait;
use hallmark_consensus::commitment::EquivocationEvidence;
use hallmark_consensus::{SlashReason, VoteOutcome};
use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::{sha256, Envelope, Keypair, PublicKey, Signed};
use hallmark_log::SignedCheckpoint;
use hallmark_store::{EquivocationRow, LedgerCommit, NeuronRow, StakeRow, Store, TransparencyLog};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::block::Block;
use crate::machine::{self, BlockCtx, Rules};
use crate::params::{default_tier, Genesis, LedgerParams};
use crate::read::{LedgerHeader, LedgerRead};
use crate::state::LedgerState;
use crate::types::{
    ArchiveCommit, Commitment, ConfidentialAccount, LedgerAnchor, LedgerTx, Metagraph, Neuron,
    Role, SettledJob, Slash, StakeInfo, TxReceipt, ValidatorWeights, YumaEpoch,
};
use crate::{BuildInfo, BuildManagers, Ledger, LedgerError};

/// The single-sequencer ledger: one process orders transactions, each its own block, and
/// executes them on the pure state machine ([`crate::machine`]).
pub struct DevnetLedger {
    pub(crate) store: Store,
    pub(crate) rules: Rules,
    genesis: Genesis,
    /// The state the next transaction executes on. Its lock is the sequencer's turn.
    state: Mutex<LedgerState>,
    /// Every applied transaction, in order, in a transparency log.
    log: TransparencyLog,
    log_key: Keypair,
    origin: String,
    /// Set when replicas order transactions (BFT): `submit` hands them to consensus and the
    /// state advances only by [`DevnetLedger::apply_block`].
    ordering: std::sync::OnceLock<std::sync::Arc<dyn TxOrdering>>,
}

/// How a replicated ledger gets a transaction ordered: the replica's consensus decides, and
/// this ledger applies what was decided.
#[async_trait::async_trait]
pub trait TxOrdering: Send + Sync {
    /// Hands `tx` to consensus (mempool, forwarding) and waits until a decided block that
    /// holds it has been applied here; returns its receipt.
    async fn order(&self, tx: Signed<LedgerTx>) -> Result<TxReceipt, LedgerError>;
    /// Queues a transaction another replica forwarded: no waiting and no forwarding on.
    async fn accept_forwarded(&self, tx: Signed<LedgerTx>) -> Result<(), LedgerError>;
}

/// Where a replicated ledger's view stands: the last applied block, and the sequence number
/// its first transaction took (to resume a block a crash cut short).
const KV_BFT_HEIGHT: &str = "ledger.bft_height";
const KV_BFT_SEQ: &str = "ledger.bft_seq";

/// Stored transactions are read back this many at a time.
const PAGE: u32 = 512;

impl DevnetLedger {
    /// Opens the ledger in `store`, writing genesis on first start, and rebuilds its state by
    /// re-executing every stored transaction (each one's state root and link must match). A
    /// store whose genesis differs from `genesis` is refused rather than silently mixed.
    pub async fn open(
        store: Store,
        genesis: &Genesis,
        params: LedgerParams,
        log_key: Keypair,
    ) -> Result<Self, LedgerError> {
        let genesis_hash =
            sha256(&to_canonical_bytes(genesis).map_err(|e| LedgerError::Invalid(e.to_string()))?)
                .to_hex();
        let start = LedgerState::genesis(&genesis.balances)?;
        match store.kv_get("ledger.genesis").await? {
            Some(h) if h == genesis_hash => {}
            Some(h) => {
                return Err(LedgerError::Invalid(format!(
                    "this data directory holds a ledger with genesis {h}, not {genesis_hash}"
                )))
            }
            None => {
                let accounts = start.accounts.values().cloned().collect();
                store
                    .commit_ledger(&LedgerCommit {
                        accounts,
                        ..Default::default()
                    })
                    .await?;
                store.kv_put("ledger.genesis", &genesis_hash).await?;
            }
        }
        let log = TransparencyLog::open(&store).await?;
        let origin = format!("hallmark/{}/ledger", genesis.chain_id);
        let rules = Rules {
            chain_id: genesis.chain_id.clone(),
            params,
        };
        let state = replay_store(&store, genesis, &rules).await?;
        let ledger = Self {
            store,
            rules,
            genesis: genesis.clone(),
            state: Mutex::new(state),
            log,
            log_key,
            origin,
            ordering: std::sync::OnceLock::new(),
        };
        ledger.catch_up_log().await?;
        ledger.check_log().await?;
        Ok(ledger)
    }

    /// Appends to the log any applied transaction it lacks (a crash between committing a
    /// transaction and appending it), so the log always holds the whole chain in order.
    async fn catch_up_log(&self) -> Result<(), LedgerError> {
        let mut next = self.log.size().await + 1;
        loop {
            let rows = self.store.ledger_txs(next, PAGE).await?;
            if rows.is_empty() {
                return Ok(());
            }
            for row in rows {
                let env: Envelope = serde_json::from_str(&row.envelope)
                    .map_err(|e| LedgerError::Invalid(format!("stored tx {}: {e}", row.seq)))?;
                let bytes = env
                    .canonical_bytes()
                    .map_err(|e| LedgerError::Invalid(e.to_string()))?;
                self.log.append("ledger_tx", &bytes).await?;
                next += 1;
            }
        }
    }

    /// The persisted transparency log must be exactly the chain the state re-executed.
    async fn check_log(&self) -> Result<(), LedgerError> {
        let state = self.state.lock().await;
        let (persisted, replayed) = (self.log.root().await, state.log_root());
        if self.log.size().await != state.log_size() || persisted != replayed {
            return Err(LedgerError::Invalid(format!(
                "the transparency log ({} leaves, root {}) is not the chain ({} transactions, \
                 root {})",
                self.log.size().await,
                hex::encode(persisted),
                state.log_size(),
                hex::encode(replayed)
            )));
        }
        Ok(())
    }

    /// The ledger's transparency log (one leaf per applied transaction, leaf i = seq i+1).
    pub fn log(&self) -> &TransparencyLog {
        &self.log
    }

    /// The log's origin line (also the checkpoint key name).
    pub fn log_origin(&self) -> &str {
        &self.origin
    }

    /// A signed checkpoint of the log as it is now.
    pub async fn checkpoint(&self) -> Result<SignedCheckpoint, LedgerError> {
        Ok(self.log.checkpoint(&self.origin, &self.log_key).await?)
    }

    /// The chain id transactions must carry.
    pub fn chain_id(&self) -> &str {
        &self.rules.chain_id
    }

    /// The rules this ledger enforces.
    pub fn params(&self) -> &LedgerParams {
        &self.rules.params
    }

    /// The head: last sequence number, its hash, its block time and the state root.
    pub async fn head(&self) -> LedgerHead {
        let mut state = self.state.lock().await;
        LedgerHead {
            header: state.header(&self.rules.chain_id),
            log_root: hex::encode(state.log_root()),
            keys: state.len() as u64,
        }
    }

    /// The value under a state key with its proof and the signed header of the state it is
    /// from: checkable offline with [`crate::verify_read`] against this ledger's key.
    pub async fn read(&self, key: &str) -> Result<LedgerRead, LedgerError> {
        if key.is_empty() || key.len() > 512 {
            return Err(LedgerError::Invalid(
                "a state key is 1..=512 characters".into(),
            ));
        }
        let (value, proof, header) = {
            let mut state = self.state.lock().await;
            let header = state.header(&self.rules.chain_id);
            (state.value(key), state.prove(key), header)
        };
        let signed = Signed::sign(&header, &self.log_key)
            .map_err(|e| LedgerError::Invalid(e.to_string()))?;
        Ok(LedgerRead {
            key: key.to_string(),
            value,
            proof,
            header: signed.envelope().clone(),
        })
    }

    /// Makes this a replica's view: transactions are ordered by `ordering` and applied by
    /// [`DevnetLedger::apply_block`]. Returns false if an ordering was already set.
    pub fn set_ordering(&self, ordering: std::sync::Arc<dyn TxOrdering>) -> bool {
        self.ordering.set(ordering).is_ok()
    }

    /// Queues a transaction another replica forwarded (replicated ledgers only).
    pub async fn accept_forwarded(&self, tx: Signed<LedgerTx>) -> Result<(), LedgerError> {
        match self.ordering.get() {
            Some(o) => o.accept_forwarded(tx).await,
            None => Err(LedgerError::NotFound(
                "this ledger is a single sequencer: it takes no forwarded transactions".into(),
            )),
        }
    }

    /// The last decided block this view has applied (0 before any).
    pub async fn applied_height(&self) -> Result<u64, LedgerError> {
        Ok(self
            .store
            .kv_get(KV_BFT_HEIGHT)
            .await?
            .and_then(|h| h.parse().ok())
            .unwrap_or(0))
    }

    /// Applies a block consensus decided: each transaction with the block's context,
    /// committed to the store and appended to the log, then both roots checked against the
    /// block's. A block already applied is skipped; a block cut short by a crash resumes
    /// after its last stored transaction. A root that differs is an error and the view stops
    /// (it never serves a state the validators did not decide).
    pub async fn apply_block(&self, block: &Block) -> Result<Vec<TxReceipt>, LedgerError> {
        let mut state = self.state.lock().await;
        let applied = self.applied_height().await?;
        if block.height <= applied {
            return Ok(Vec::new());
        }
        if block.height != applied + 1 {
            return Err(LedgerError::Invalid(format!(
                "block {} arrives after block {applied}",
                block.height
            )));
        }
        let first_seq: u64 = self
            .store
            .kv_get(KV_BFT_SEQ)
            .await?
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let done = usize::try_from(state.next_seq().saturating_sub(first_seq)).unwrap_or(0);
        let ctx = BlockCtx {
            height: block.height,
            prev_hash: block.prev_hash.clone(),
            time_ms: block.time_ms,
        };
        let mut receipts = Vec::with_capacity(block.txs.len());
        for env in block.txs.iter().skip(done) {
            let signed = Signed::<LedgerTx>::from_envelope(env.clone());
            let (ws, receipt) = machine::execute(&mut state, &self.rules, &signed, &ctx)?;
            if let Err(e) = self.store.commit_ledger(&ws).await {
                *state = replay_store(&self.store, &self.genesis, &self.rules).await?;
                return Err(e.into());
            }
            let bytes = env
                .canonical_bytes()
                .map_err(|e| LedgerError::Invalid(e.to_string()))?;
            self.log.append("ledger_tx", &bytes).await?;
            receipts.push(receipt);
        }
        let root = state.root_hex();
        let log_root = hex::encode(state.log_root());
        if root != block.state_root || log_root != block.log_root {
            return Err(LedgerError::Invalid(format!(
                "block {} decides state root {} and log root {}; this view computed {root} and \
                 {log_root}",
                block.height, block.state_root, block.log_root
            )));
        }
        self.store
            .kv_put(KV_BFT_SEQ, &state.next_seq().to_string())
            .await?;
        self.store
            .kv_put(KV_BFT_HEIGHT, &block.height.to_string())
            .await?;
        Ok(receipts)
    }

    /// The key that signs this ledger's headers and checkpoints.
    pub fn header_key(&self) -> PublicKey {
        self.log_key.public()
    }

    /// When the faucet last paid `address` (ms), if ever.
    pub async fn faucet_last(&self, address: &PublicKey) -> Result<Option<i64>, LedgerError> {
        Ok(self.store.faucet_last(&address.to_ss58()).await?)
    }

    /// What the faucet paid to everyone together from `since_ms` on (its budget).
    pub async fn faucet_paid_since(&self, since_ms: i64) -> Result<u64, LedgerError> {
        Ok(self.store.faucet_paid_since(since_ms).await?)
    }

    /// Records a faucet drip to `address` (what the rate limit reads back).
    pub async fn record_faucet_drip(
        &self,
        address: &PublicKey,
        now_ms: i64,
        amount: u64,
    ) -> Result<(), LedgerError> {
        Ok(self
            .store
            .record_faucet_drip(&address.to_ss58(), now_ms, amount)
            .await?)
    }

    /// Orders and executes one transaction: the block time is the sequencer's clock, never
    /// earlier than the last block's. The write set is committed with the transaction; if
    /// that fails, the in-memory state is rebuilt from the store so the two never part.
    async fn apply(&self, signed: &Signed<LedgerTx>) -> Result<TxReceipt, LedgerError> {
        let mut state = self.state.lock().await;
        let ctx = BlockCtx {
            height: state.next_seq(),
            prev_hash: state.head_hash().to_string(),
            time_ms: hallmark_core::time::now_unix_ms().max(state.time_ms()),
        };
        let (ws, receipt) = match machine::execute(&mut state, &self.rules, signed, &ctx) {
            Ok(done) => done,
            Err(LedgerError::Equivocation { validator, run_id }) => {
                self.record_equivocation(&state, signed, &validator, &run_id)
                    .await?;
                return Err(LedgerError::Equivocation { validator, run_id });
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = self.store.commit_ledger(&ws).await {
            tracing::error!(error = %e, "ledger commit failed: rebuilding the state from the store");
            *state = replay_store(&self.store, &self.genesis, &self.rules).await?;
            return Err(e.into());
        }
        let bytes = signed
            .envelope()
            .canonical_bytes()
            .map_err(|e| LedgerError::Invalid(e.to_string()))?;
        self.log.append("ledger_tx", &bytes).await?;
        Ok(receipt)
    }

    /// Keeps a refused second commitment beside the first as evidence. Evidence is this
    /// node's record of what it was sent, outside the replicated state (a refused transaction
    /// is not in the chain); `SlashEquivocation`-style transactions act on it.
    async fn record_equivocation(
        &self,
        state: &LedgerState,
        second: &Signed<LedgerTx>,
        validator: &str,
        run_id: &str,
    ) -> Result<(), LedgerError> {
        let Some(existing) = state.commitment(validator, run_id) else {
            return Ok(());
        };
        let first: Envelope = serde_json::from_str(&existing.envelope)
            .map_err(|e| LedgerError::Invalid(format!("stored commitment: {e}")))?;
        let evidence = EquivocationEvidence {
            validator: validator
                .parse()
                .map_err(|_| LedgerError::Invalid(format!("stored key {validator}")))?,
            run_id: run_id.to_string(),
            kind: "commitment".into(),
            first,
            second: second.envelope().clone(),
        };
        self.store
            .put_equivocation(&EquivocationRow {
                validator: validator.to_string(),
                run_id: run_id.to_string(),
                kind: "commitment".into(),
                evidence: serde_json::to_string(&evidence)
                    .map_err(|e| LedgerError::Invalid(e.to_string()))?,
                found_ms: hallmark_core::time::now_unix_ms(),
            })
            .await?;
        tracing::warn!(%validator, %run_id, "second commitment refused: equivocation");
        Ok(())
    }

    /// The build-manager set now in force: version and managers.
    pub async fn build_managers(&self) -> Result<BuildManagers, LedgerError> {
        let (version, managers) = match self.store.ledger_build_managers().await? {
            Some((v, text)) => (
                v,
                serde_json::from_str(&text)
                    .map_err(|e| LedgerError::Invalid(format!("stored build managers: {e}")))?,
            ),
            None => (0, Vec::new()),
        };
        Ok(BuildManagers {
            version,
            managers,
            council: self.rules.params.build_council.clone(),
            threshold: self.rules.params.build_council_threshold,
        })
    }

    /// The registry entry for a wasm.
    pub async fn build_info(&self, wasm_sha256: &str) -> Result<Option<BuildInfo>, LedgerError> {
        self.store
            .ledger_build_info(wasm_sha256)
            .await?
            .map(build_info_of)
            .transpose()
    }

    /// Registry entries written after transaction `since_seq`, oldest first.
    pub async fn build_infos_since(
        &self,
        since_seq: u64,
        limit: u32,
    ) -> Result<Vec<BuildInfo>, LedgerError> {
        self.store
            .ledger_build_infos_since(since_seq, limit)
            .await?
            .into_iter()
            .map(build_info_of)
            .collect()
    }

    /// The commitment to an archive's bytes, if any.
    pub async fn archive_commit(
        &self,
        archive_sha256: &str,
    ) -> Result<Option<ArchiveCommit>, LedgerError> {
        let Some(r) = self.store.ledger_archive_commit(archive_sha256).await? else {
            return Ok(None);
        };
        Ok(Some(ArchiveCommit {
            hotkey: r
                .hotkey
                .parse()
                .map_err(|e| LedgerError::Invalid(format!("stored hotkey {}: {e}", r.hotkey)))?,
            archive_sha256: r.archive_sha256,
            lane: r.lane,
            seq: r.seq,
            committed_ms: r.committed_ms,
        }))
    }

    /// The anchor at `at_ms`: the first transaction applied at or after it and the log root
    /// that includes it (`None` until such a transaction exists and is logged).
    pub async fn anchor(&self, at_ms: i64) -> Result<Option<LedgerAnchor>, LedgerError> {
        let Some(seq) = self.store.ledger_first_tx_since(at_ms).await? else {
            return Ok(None);
        };
        if self.log.size().await < seq {
            return Ok(None);
        }
        let root = self.log.root_at(seq).await?;
        Ok(Some(LedgerAnchor {
            at_ms,
            seq,
            tree_size: seq,
            root: hex::encode(root),
        }))
    }

    /// A hotkey's stake as the ledger keeps it.
    pub(crate) async fn stake_info(
        &self,
        hotkey: &PublicKey,
    ) -> Result<Option<StakeInfo>, LedgerError> {
        let hk = hotkey.to_ss58();
        let Some(b) = self.store.stake(&hk).await? else {
            return Ok(None);
        };
        let neuron = self.store.neuron(&hk).await?;
        Ok(Some(StakeInfo {
            hotkey: *hotkey,
            coldkey: b.coldkey.parse().map_err(|_| {
                LedgerError::Invalid(format!("stored coldkey {} is not a key", b.coldkey))
            })?,
            tier: b.tier,
            staked: neuron.as_ref().map_or(0, |n| n.stake),
            pending: b.pending,
            locked_until_ms: b.locked_until_ms,
            role: neuron.and_then(|n| Role::parse(&n.role)),
        }))
    }

    /// Re-executes the whole chain from genesis on a fresh state: every signature, every
    /// transition, every state root and every link must come out as stored, and the final
    /// root must be the live one. Returns the number of transactions checked.
    pub async fn audit_chain(&self) -> Result<u64, LedgerError> {
        let mut replayed = replay_store(&self.store, &self.genesis, &self.rules).await?;
        let mut live = self.state.lock().await;
        let (mine, theirs) = (replayed.root_hex(), live.root_hex());
        if mine != theirs
            || replayed.head_hash() != live.head_hash()
            || replayed.log_root() != self.log.root().await
        {
            return Err(LedgerError::Invalid(format!(
                "re-execution from genesis ends at state root {mine}, the live state is at {theirs}"
            )));
        }
        Ok(replayed.next_seq() - 1)
    }
}

/// What a ledger's head looks like: enough to compare two replicas at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LedgerHead {
    /// Chain, last sequence number, its hash, block time and state root.
    #[serde(flatten)]
    pub header: LedgerHeader,
    /// The transaction log's root (hex): the same on every replica at the same seq.
    pub log_root: String,
    /// How many keys the state holds.
    pub keys: u64,
}

/// Rebuilds the state by re-executing every transaction in `store` from genesis.
async fn replay_store(
    store: &Store,
    genesis: &Genesis,
    rules: &Rules,
) -> Result<LedgerState, LedgerError> {
    let mut state = LedgerState::genesis(&genesis.balances)?;
    loop {
        let rows = store.ledger_txs(state.next_seq(), PAGE).await?;
        if rows.is_empty() {
            return Ok(state);
        }
        for row in &rows {
            machine::replay_one(&mut state, rules, row)?;
        }
    }
}

fn neuron_from_row(
    row: NeuronRow,
    stake: Option<&StakeRow>,
    params: &LedgerParams,
    now_ms: i64,
) -> Result<Neuron, LedgerError> {
    let corrupt = |what: &str| {
        LedgerError::Store(hallmark_store::StoreError::Corrupt(format!(
            "neuron {}: bad {what}",
            row.uid
        )))
    };
    let role = Role::parse(&row.role).ok_or_else(|| corrupt("role"))?;
    Ok(Neuron {
        uid: row.uid,
        hotkey: row.hotkey.parse().map_err(|_| corrupt("hotkey"))?,
        coldkey: row.coldkey.parse().map_err(|_| corrupt("coldkey"))?,
        role,
        stake: row.stake,
        voting_stake: row.voting_stake,
        axon: row.axon,
        tier: stake.map_or_else(|| default_tier(role).to_string(), |s| s.tier.clone()),
        locked_until_ms: stake.map_or(0, |s| s.locked_until_ms),
        last_heartbeat_ms: row.last_heartbeat_ms,
        active: params.is_active(role, row.last_heartbeat_ms, now_ms),
    })
}

#[async_trait]
impl Ledger for DevnetLedger {
    async fn submit(&self, tx: Signed<LedgerTx>) -> Result<TxReceipt, LedgerError> {
        let Some(ordering) = self.ordering.get() else {
            return self.apply(&tx).await;
        };
        match ordering.order(tx.clone()).await {
            Err(LedgerError::Equivocation { validator, run_id }) => {
                let state = self.state.lock().await;
                self.record_equivocation(&state, &tx, &validator, &run_id)
                    .await?;
                Err(LedgerError::Equivocation { validator, run_id })
            }
            other => other,
        }
    }

    async fn metagraph(&self) -> Result<Metagraph, LedgerError> {
        let stakes: std::collections::HashMap<String, StakeRow> = self
            .store
            .stakes()
            .await?
            .into_iter()
            .map(|s| (s.hotkey.clone(), s))
            .collect();
        let now_ms = hallmark_core::time::now_unix_ms();
        let neurons = self
            .store
            .neurons()
            .await?
            .into_iter()
            .map(|row| {
                let stake = stakes.get(&row.hotkey);
                neuron_from_row(row, stake, &self.rules.params, now_ms)
            })
            .collect::<Result<_, _>>()?;
        Ok(Metagraph { neurons })
    }

    async fn stake(&self, hotkey: &PublicKey) -> Result<Option<StakeInfo>, LedgerError> {
        self.stake_info(hotkey).await
    }

    async fn confidential_account(
        &self,
        hotkey: &PublicKey,
    ) -> Result<Option<ConfidentialAccount>, LedgerError> {
        self.confidential(hotkey).await
    }

    async fn weights(&self, lane: &str, epoch: u64) -> Result<Vec<ValidatorWeights>, LedgerError> {
        // From the state, so any u64 epoch is a plain lookup.
        let rows: Vec<_> = {
            let state = self.state.lock().await;
            state.epoch_weights(lane, epoch).cloned().collect()
        };
        rows.into_iter()
            .map(|w| {
                Ok(ValidatorWeights {
                    lane: w.lane,
                    epoch: w.epoch,
                    validator: w.validator.parse().map_err(|_| {
                        LedgerError::Invalid(format!(
                            "stored validator {} is not a key",
                            w.validator
                        ))
                    })?,
                    weights: serde_json::from_str(&w.weights)
                        .map_err(|e| LedgerError::Invalid(e.to_string()))?,
                    seq: w.seq,
                })
            })
            .collect()
    }

    async fn balance(&self, account: &PublicKey) -> Result<(u64, u64), LedgerError> {
        Ok(self
            .store
            .account(&account.to_ss58())
            .await?
            .map(|a| (a.balance, a.nonce))
            .unwrap_or((0, 0)))
    }

    async fn commitment(
        &self,
        validator: &PublicKey,
        run_id: &str,
    ) -> Result<Option<Commitment>, LedgerError> {
        let Some(row) = self.store.commitment(&validator.to_ss58(), run_id).await? else {
            return Ok(None);
        };
        Ok(Some(Commitment {
            validator: *validator,
            run_id: row.run_id,
            commitment: row.commitment,
            envelope: serde_json::from_str(&row.envelope)
                .map_err(|e| LedgerError::Invalid(format!("stored commitment: {e}")))?,
            tx_hash: row.tx_hash,
        }))
    }

    async fn equivocations(&self) -> Result<Vec<EquivocationEvidence>, LedgerError> {
        self.store
            .equivocations()
            .await?
            .into_iter()
            .map(|r| {
                serde_json::from_str(&r.evidence)
                    .map_err(|e| LedgerError::Invalid(format!("stored evidence: {e}")))
            })
            .collect()
    }

    async fn slashes(&self) -> Result<Vec<Slash>, LedgerError> {
        let corrupt = |what: &str| LedgerError::Invalid(format!("stored slash: bad {what}"));
        self.store
            .slashes()
            .await?
            .into_iter()
            .map(|r| {
                Ok(Slash {
                    hotkey: r.hotkey.parse().map_err(|_| corrupt("hotkey"))?,
                    reason: SlashReason::parse(&r.reason).ok_or_else(|| corrupt("reason"))?,
                    job_id: r.job_id,
                    amount: r.amount,
                    seq: r.seq,
                })
            })
            .collect()
    }

    async fn settled_job(&self, job_id: &str) -> Result<Option<SettledJob>, LedgerError> {
        let corrupt = |what: &str| LedgerError::Invalid(format!("stored settlement: bad {what}"));
        let Some(r) = self.store.settled_job(job_id).await? else {
            return Ok(None);
        };
        Ok(Some(SettledJob {
            outcome: match r.outcome.as_str() {
                "approved" => VoteOutcome::Approved,
                "rejected" => VoteOutcome::Rejected,
                _ => return Err(corrupt("outcome")),
            },
            worker: r.worker.parse().map_err(|_| corrupt("worker"))?,
            job_id: r.job_id,
            result_digest: r.result_digest,
            seq: r.seq,
            stakes: serde_json::from_str(&r.stakes).map_err(|_| corrupt("stakes"))?,
        }))
    }

    async fn yuma_epoch(&self, lane: &str, epoch: u64) -> Result<YumaEpoch, LedgerError> {
        // A read: the result of a closed epoch, never a computation that closes one.
        let stored = self.state.lock().await.yuma(lane, epoch).map(str::to_owned);
        match stored {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| LedgerError::Invalid(format!("stored yuma epoch: {e}"))),
            None => Err(LedgerError::EpochOpen {
                lane: lane.to_string(),
                epoch,
            }),
        }
    }
}

fn build_info_of(row: hallmark_store::BuildInfoRow) -> Result<BuildInfo, LedgerError> {
    let corrupt = |e: String| LedgerError::Invalid(format!("stored build info: {e}"));
    Ok(BuildInfo {
        recipe: serde_json::from_str(&row.recipe).map_err(|e| corrupt(e.to_string()))?,
        manager: row
            .manager
            .parse()
            .map_err(|e: hallmark_core::keys::KeyError| corrupt(e.to_string()))?,
        wasm_sha256: row.wasm_sha256,
        seq: row.seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::slash_amount;
    use crate::state::GENESIS_PREV;
    use crate::types::Tier;
    use crate::types::{TxBody, WeightEntry};
    use hallmark_consensus::Quorum;
    use hallmark_store::LedgerTxRow;

    struct Net {
        ledger: DevnetLedger,
        cold: Keypair,
        val: Keypair,
        work: Keypair,
        nonce: std::sync::atomic::AtomicU64,
    }

    impl Net {
        /// Registers `hotkey` from the test coldkey.
        async fn register(&self, hotkey: &Keypair, role: Role, stake: u64) {
            let body = TxBody::Register {
                hotkey: hotkey.public(),
                role,
                stake,
            };
            self.ledger.submit(self.tx(&self.cold, body)).await.unwrap();
        }

        fn tx(&self, key: &Keypair, body: TxBody) -> Signed<LedgerTx> {
            let nonce = self.nonce.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Signed::sign(
                &LedgerTx {
                    chain_id: "test".into(),
                    nonce,
                    body,
                },
                key,
            )
            .unwrap()
        }
    }

    async fn net(store: Store) -> Net {
        let cold = Keypair::from_seed(&[9; 32]);
        let genesis = Genesis {
            chain_id: "test".into(),
            balances: vec![(cold.public(), 10_000)],
        };
        Net {
            ledger: DevnetLedger::open(
                store,
                &genesis,
                LedgerParams::default(),
                Keypair::from_seed(&[42; 32]),
            )
            .await
            .unwrap(),
            cold,
            val: Keypair::from_seed(&[1; 32]),
            work: Keypair::from_seed(&[2; 32]),
            nonce: 1.into(),
        }
    }

    #[tokio::test]
    async fn register_serve_weights_and_audit() {
        let n = net(Store::open_url("sqlite::memory:").await.unwrap()).await;
        let l = &n.ledger;
        n.register(&n.val, Role::Validator, 2_000).await;
        n.register(&n.work, Role::Worker, 100).await;
        l.submit(n.tx(
            &n.val,
            TxBody::ServeAxon {
                axon: "http://127.0.0.1:9".into(),
            },
        ))
        .await
        .unwrap();
        let mg = l.metagraph().await.unwrap();
        assert_eq!(mg.validators().count(), 1);
        assert_eq!(mg.validator_stake(), 2_000);
        assert_eq!(
            mg.neuron(&n.val.public()).unwrap().axon.as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(l.balance(&n.cold.public()).await.unwrap().0, 7_900);

        let w = vec![WeightEntry {
            hotkey: n.work.public(),
            weight: u16::MAX,
        }];
        l.submit(n.tx(
            &n.val,
            TxBody::SetWeights {
                lane: "sat".into(),
                epoch: 1,
                weights: w.clone(),
            },
        ))
        .await
        .unwrap();
        assert_eq!(l.weights("sat", 1).await.unwrap()[0].weights, w);
        assert_eq!(l.audit_chain().await.unwrap(), 4);
    }

    #[tokio::test]
    async fn archive_commitments_and_anchors() {
        let n = net(Store::open_url("sqlite::memory:").await.unwrap()).await;
        let l = &n.ledger;
        let before = hallmark_core::time::now_unix_ms();
        assert!(l.anchor(before + 60_000).await.unwrap().is_none());
        n.register(&n.val, Role::Validator, 2_000).await;
        n.register(&n.work, Role::Worker, 100).await;
        let other = Keypair::from_seed(&[3; 32]);
        n.register(&other, Role::Worker, 100).await;
        let sha = "ab".repeat(32);
        let commit = |lane: &str, sha: &str| TxBody::CommitArchive {
            lane: lane.into(),
            archive_sha256: sha.into(),
        };
        l.submit(n.tx(&n.work, commit("eval", &sha))).await.unwrap();
        let c = l.archive_commit(&sha).await.unwrap().unwrap();
        assert_eq!(
            (c.hotkey, c.lane.as_str(), c.seq),
            (n.work.public(), "eval", 4)
        );
        assert!(c.committed_ms >= before);
        // The same worker again is a retry; another worker's copy is refused.
        let again = l
            .submit(n.tx(&n.work, commit("eval", &sha)))
            .await
            .unwrap_err();
        assert_eq!(again.code(), "already_committed");
        let copy = l
            .submit(n.tx(&other, commit("eval", &sha)))
            .await
            .unwrap_err();
        assert_eq!(copy.code(), "archive_taken");
        assert_eq!(
            l.archive_commit(&sha).await.unwrap().unwrap().hotkey,
            n.work.public()
        );
        // Only workers, real hashes, lane names.
        for (key, body, code) in [
            (&n.val, commit("eval", &"cd".repeat(32)), "unauthorized"),
            (&n.work, commit("eval", "nothex"), "invalid_transaction"),
            (
                &n.work,
                commit("Eval!", &"cd".repeat(32)),
                "invalid_transaction",
            ),
        ] {
            assert_eq!(l.submit(n.tx(key, body)).await.unwrap_err().code(), code);
        }
        assert!(l.archive_commit(&"cd".repeat(32)).await.unwrap().is_none());
        // The anchor at a past time is the first transaction from that second on, with the
        // log's root at its size; it does not move as transactions are added.
        let a = l.anchor(0).await.unwrap().unwrap();
        assert_eq!((a.seq, a.tree_size), (1, 1));
        assert_eq!(a.root, hex::encode(l.log().root_at(1).await.unwrap()));
        l.submit(n.tx(&n.work, TxBody::Heartbeat {})).await.unwrap();
        assert_eq!(l.anchor(0).await.unwrap().unwrap(), a);
        // A time after the last transaction waits for the next one, then stays put.
        let later = hallmark_core::time::now_unix_ms() + 1;
        assert!(l.anchor(later).await.unwrap().is_none());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        l.submit(n.tx(&n.work, TxBody::Heartbeat {})).await.unwrap();
        let next = l.anchor(later).await.unwrap().unwrap();
        assert_eq!(next.seq, l.audit_chain().await.unwrap());
        l.submit(n.tx(&n.work, TxBody::Heartbeat {})).await.unwrap();
        assert_eq!(l.anchor(later).await.unwrap().unwrap(), next);
    }

    #[tokio::test]
    async fn refusals() {
        let n = net(Store::open_url("sqlite::memory:").await.unwrap()).await;
        let l = &n.ledger;
        let reg = n.tx(
            &n.cold,
            TxBody::Register {
                hotkey: n.val.public(),
                role: Role::Validator,
                stake: 2_000,
            },
        );
        l.submit(reg.clone()).await.unwrap();
        // Replay of the same signed transaction.
        assert_eq!(l.submit(reg).await.unwrap_err().code(), "stale_nonce");
        // A nonce past what a store column holds is a bad transaction (it answered 500).
        let head = l.head().await;
        // Signed over the literal JSON a client sends (canonical JSON would round a number
        // this large through a double).
        for nonce in [u64::MAX, crate::machine::MAX_NONCE + 1] {
            use base64::Engine;
            let payload = format!(
                r#"{{"body":{{"type":"transfer","amount":1,"to":"{}"}},"chain_id":"test","nonce":{nonce}}}"#,
                n.val.public()
            );
            let ptype = <LedgerTx as hallmark_core::SignedPayload>::PAYLOAD_TYPE;
            let sig = n
                .cold
                .sign(&hallmark_core::dsse::pae(ptype, payload.as_bytes()));
            let b64 = base64::engine::general_purpose::STANDARD;
            let env = Envelope {
                payload_type: ptype.into(),
                payload: b64.encode(payload.as_bytes()),
                signatures: vec![hallmark_core::dsse::EnvelopeSignature {
                    keyid: n.cold.public().to_ss58(),
                    sig: b64.encode(sig),
                }],
            };
            let tx = Signed::<LedgerTx>::from_envelope(env);
            let parsed = tx.verify().expect("a well-signed transaction").payload;
            assert_eq!(parsed.nonce, nonce);
            assert_eq!(
                l.submit(tx).await.unwrap_err().code(),
                "invalid_transaction"
            );
        }
        assert_eq!(
            l.head().await.header,
            head.header,
            "a refusal changes nothing"
        );
        // Too little stake, too little balance.
        let e = l
            .submit(n.tx(
                &n.cold,
                TxBody::Register {
                    hotkey: n.work.public(),
                    role: Role::Validator,
                    stake: 10,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "stake_below_minimum");
        let e = l
            .submit(n.tx(
                &n.cold,
                TxBody::Register {
                    hotkey: n.work.public(),
                    role: Role::Worker,
                    stake: 1_000_000,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "insufficient_balance");
        // Someone else's coldkey cannot take over a registered hotkey.
        let thief = Keypair::generate();
        let e = l
            .submit(n.tx(
                &thief,
                TxBody::Register {
                    hotkey: n.val.public(),
                    role: Role::Validator,
                    stake: 1_000,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "already_registered");
        // Unregistered hotkeys can't serve or set weights; workers can't set weights.
        let e = l
            .submit(n.tx(
                &n.work,
                TxBody::ServeAxon {
                    axon: "http://x".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "not_registered");
        n.register(&n.work, Role::Worker, 100).await;
        let e = l
            .submit(n.tx(
                &n.work,
                TxBody::SetWeights {
                    lane: "sat".into(),
                    epoch: 1,
                    weights: vec![],
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "unauthorized");
        let e = l
            .submit(n.tx(
                &n.val,
                TxBody::ServeAxon {
                    axon: "ftp://x".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_transaction");
        // Wrong chain.
        let other = Signed::sign(
            &LedgerTx {
                chain_id: "main".into(),
                nonce: 999,
                body: TxBody::ServeAxon {
                    axon: "http://x".into(),
                },
            },
            &n.val,
        )
        .unwrap();
        assert_eq!(l.submit(other).await.unwrap_err().code(), "wrong_chain");
        // Tampered envelope.
        let good = n.tx(
            &n.val,
            TxBody::ServeAxon {
                axon: "http://x".into(),
            },
        );
        let mut env = good.envelope().clone();
        env.signatures[0].keyid = n.work.public().to_ss58();
        assert_eq!(
            l.submit(Signed::from_envelope(env))
                .await
                .unwrap_err()
                .code(),
            "bad_signature"
        );
        // Nothing that failed left a trace in the chain.
        assert_eq!(l.audit_chain().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn audit_catches_every_kind_of_tampering() {
        let store = Store::open_url("sqlite::memory:").await.unwrap();
        let n = net(store.clone()).await;
        for hotkey in [n.val.public(), n.work.public()] {
            let body = TxBody::Register {
                hotkey,
                role: Role::Worker,
                stake: 100,
            };
            n.ledger.submit(n.tx(&n.cold, body)).await.unwrap();
        }
        let serve = TxBody::ServeAxon {
            axon: "http://x".into(),
        };
        n.ledger.submit(n.tx(&n.val, serve)).await.unwrap();
        assert_eq!(n.ledger.audit_chain().await.unwrap(), 3);
        let rows = store.ledger_txs(1, 100).await.unwrap();
        let audit = |rows: &[LedgerTxRow]| -> Result<(), LedgerError> {
            machine::replay(&n.ledger.genesis, &n.ledger.rules, rows).map(|_| ())
        };
        audit(&rows).unwrap();
        assert!(rows
            .iter()
            .all(|r| r.state_root.len() == 64 && r.prev_hash != r.tx_hash));
        assert_eq!(rows[0].prev_hash, GENESIS_PREV);

        // Another validly signed transaction swapped into the middle.
        let mut t = rows.clone();
        t[1].envelope = rows[2].envelope.clone();
        assert!(audit(&t).is_err());
        // A payload edited after signing.
        let mut t = rows.clone();
        t[1].envelope = t[1]
            .envelope
            .replacen("\"payload\":\"", "\"payload\":\"e30", 1);
        assert_ne!(t[1].envelope, rows[1].envelope);
        assert!(audit(&t).unwrap_err().to_string().contains("bad_signature"));
        // A block time moved (it is hashed into the link), a state root rewritten.
        let mut t = rows.clone();
        t[2].applied_ms += 1;
        assert!(audit(&t).unwrap_err().to_string().contains("tx_hash"));
        let mut t = rows.clone();
        t[1].state_root = "11".repeat(32);
        assert!(audit(&t).unwrap_err().to_string().contains("state root"));
        // A rewritten hash, a broken back-link, a removed transaction, reordering.
        let mut t = rows.clone();
        t[0].tx_hash = "00".repeat(32);
        assert!(audit(&t).is_err());
        let mut t = rows.clone();
        t[2].prev_hash = rows[0].tx_hash.clone();
        assert!(audit(&t).is_err());
        let mut t = rows.clone();
        t.remove(1);
        assert!(audit(&t).is_err());
        let mut t = rows.clone();
        t.swap(0, 1);
        assert!(audit(&t).is_err());
    }

    #[tokio::test]
    async fn persists_and_refuses_other_genesis() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        {
            let n = net(Store::open(&path).await.unwrap()).await;
            n.ledger
                .submit(n.tx(
                    &n.cold,
                    TxBody::Register {
                        hotkey: n.val.public(),
                        role: Role::Validator,
                        stake: 2_000,
                    },
                ))
                .await
                .unwrap();
        }
        let n = net(Store::open(&path).await.unwrap()).await;
        assert_eq!(n.ledger.metagraph().await.unwrap().neurons.len(), 1);
        let other = Genesis {
            chain_id: "other".into(),
            balances: vec![],
        };
        assert!(DevnetLedger::open(
            Store::open(&path).await.unwrap(),
            &other,
            LedgerParams::default(),
            Keypair::from_seed(&[42; 32])
        )
        .await
        .is_err());
    }

    #[tokio::test]
    async fn commitments_equivocation_log_and_yuma() {
        use hallmark_consensus::commitment::{commitment_string, scores_hash};
        let n = net(Store::open_url("sqlite::memory:").await.unwrap()).await;
        let l = &n.ledger;
        n.register(&n.val, Role::Validator, 2_000).await;
        n.register(&n.work, Role::Worker, 100).await;
        let h = scores_hash("round-000001", "sat", &std::collections::BTreeMap::new()).unwrap();
        let c = commitment_string("round-000001", &h);
        let commit = |c: String| TxBody::CommitScores {
            run_id: "round-000001".into(),
            commitment: c,
        };
        l.submit(n.tx(&n.val, commit(c.clone()))).await.unwrap();
        // A retry of the same commitment is refused as already made; a different one is
        // equivocation, kept as evidence with both signed transactions.
        assert_eq!(
            l.submit(n.tx(&n.val, commit(c.clone())))
                .await
                .unwrap_err()
                .code(),
            "already_committed"
        );
        let other = commitment_string("round-000001", &hallmark_core::sha256(b"x"));
        assert_eq!(
            l.submit(n.tx(&n.val, commit(other)))
                .await
                .unwrap_err()
                .code(),
            "equivocation"
        );
        let ev = l.equivocations().await.unwrap();
        assert_eq!(ev.len(), 1);
        ev[0].verify_signatures().unwrap();
        assert_eq!(
            l.commitment(&n.val.public(), "round-000001")
                .await
                .unwrap()
                .unwrap()
                .commitment,
            c
        );
        // Malformed, wrong-run and non-validator commitments are refused.
        assert_eq!(
            l.submit(n.tx(&n.val, commit("nonsense".into())))
                .await
                .unwrap_err()
                .code(),
            "invalid_transaction"
        );
        let wrong_run = commitment_string("round-000002", &h);
        assert_eq!(
            l.submit(n.tx(&n.val, commit(wrong_run)))
                .await
                .unwrap_err()
                .code(),
            "invalid_transaction"
        );
        assert_eq!(
            l.submit(n.tx(&n.work, commit(c))).await.unwrap_err().code(),
            "unauthorized"
        );

        // Yuma over epoch 1: the one validator weights the one worker.
        l.submit(n.tx(
            &n.val,
            TxBody::SetWeights {
                lane: "sat".into(),
                epoch: 1,
                weights: vec![WeightEntry {
                    hotkey: n.work.public(),
                    weight: u16::MAX,
                }],
            },
        ))
        .await
        .unwrap();
        let y = l.yuma_epoch("sat", 1).await.unwrap();
        let w = y
            .hotkeys
            .iter()
            .position(|k| *k == n.work.public())
            .unwrap();
        let v = y.hotkeys.iter().position(|k| *k == n.val.public()).unwrap();
        assert_eq!(y.incentive[w], 1.0);
        assert_eq!(y.dividends[v], 1.0);
        assert_eq!(y.emission_share[w], 0.5);
        assert!(y.active[v]);
        // The epoch is closed now, and its result stable.
        let late = n.tx(
            &n.val,
            TxBody::SetWeights {
                lane: "sat".into(),
                epoch: 1,
                weights: vec![],
            },
        );
        assert_eq!(l.submit(late).await.unwrap_err().code(), "epoch_closed");
        assert_eq!(l.yuma_epoch("sat", 1).await.unwrap(), y);

        // Every applied transaction is a log leaf, in order.
        let applied = l.audit_chain().await.unwrap();
        assert_eq!(l.log().size().await, applied);
        let cp = l.checkpoint().await.unwrap();
        let vkey = hallmark_log::NoteVerifierKey::new(
            l.log_origin(),
            Keypair::from_seed(&[42; 32]).public(),
        )
        .unwrap();
        assert_eq!(cp.verify(&vkey).unwrap().size, applied);
    }

    #[test]
    fn slash_amounts_round_up_to_one_and_never_exceed_the_stake() {
        assert_eq!(slash_amount(1_000, 1_000), 100);
        assert_eq!(
            slash_amount(5, 1_000),
            1,
            "rounding must not spare a small stake"
        );
        assert_eq!(slash_amount(0, 1_000), 0);
        assert_eq!(slash_amount(1_000, 0), 0);
        assert_eq!(
            slash_amount(1_000, 25_000),
            1_000,
            "capped at the whole stake"
        );
        assert_eq!(slash_amount(u64::MAX, 10_000), u64::MAX);
    }

    #[tokio::test]
    async fn settlements_and_equivocations_slash_from_evidence_alone() {
        use hallmark_consensus::{tally_votes, JobResult, JobVote, VoteEquivocation};
        let n = net(Store::open_url("sqlite::memory:").await.unwrap()).await;
        let l = &n.ledger;
        let vals: Vec<Keypair> = (10..13).map(|i| Keypair::from_seed(&[i; 32])).collect();
        for v in &vals {
            n.register(v, Role::Validator, 1_000).await;
        }
        n.register(&n.work, Role::Worker, 500).await;
        let stakes: std::collections::BTreeMap<_, _> =
            vals.iter().map(|v| (v.public(), 1_000u64)).collect();
        let vote = |k: &Keypair, job: &str, valid: bool| {
            Signed::sign(
                &JobVote {
                    job_id: job.into(),
                    result_digest: "d".into(),
                    valid,
                },
                k,
            )
            .unwrap()
        };
        let result = |job: &str, signer: &Keypair| {
            Signed::sign(
                &JobResult {
                    job_id: job.into(),
                    worker: n.work.public(),
                    result_digest: "d".into(),
                },
                signer,
            )
            .unwrap()
        };
        let settle = |cert: hallmark_consensus::VoteCertificate, res| TxBody::SettleJob {
            certificate: cert,
            result: res,
        };
        let stake_of = |mg: &Metagraph, k: &Keypair| mg.neuron(&k.public()).unwrap().stake;

        // Rejected: two invalid votes and one dissenting valid vote. The worker and the
        // dissenter each lose 10%.
        let votes = [
            vote(&vals[0], "bad", false),
            vote(&vals[1], "bad", false),
            vote(&vals[2], "bad", true),
        ];
        let tally = tally_votes("bad", "d", &votes, &stakes, Quorum::TWO_THIRDS);
        let cert = tally.certificate().unwrap();
        // A result signed by someone other than the worker it names is refused.
        let forged = l
            .submit(n.tx(&n.cold, settle(cert.clone(), result("bad", &vals[0]))))
            .await
            .unwrap_err();
        assert_eq!(forged.code(), "invalid_evidence");
        l.submit(n.tx(&n.cold, settle(cert.clone(), result("bad", &n.work))))
            .await
            .unwrap();
        let mg = l.metagraph().await.unwrap();
        assert_eq!(stake_of(&mg, &n.work), 450);
        assert_eq!(stake_of(&mg, &vals[2]), 900);
        assert_eq!(stake_of(&mg, &vals[0]), 1_000);
        // Settling twice is refused.
        let again = l
            .submit(n.tx(&n.cold, settle(cert, result("bad", &n.work))))
            .await
            .unwrap_err();
        assert_eq!(again.code(), "already_settled");
        let settled = l.settled_job("bad").await.unwrap().unwrap();
        assert_eq!(settled.outcome, VoteOutcome::Rejected);
        // The stake table it was checked against is kept, so the certificate re-checks
        // offline even though the dissenter has since been slashed.
        assert_eq!(settled.stakes, stakes);

        // A certificate claiming approval with too little stake is refused (stakes are now
        // 1000, 1000, 900: one valid vote is far from 2/3).
        let thin = hallmark_consensus::VoteCertificate {
            job_id: "good".into(),
            result_digest: "d".into(),
            outcome: VoteOutcome::Approved,
            votes: vec![vote(&vals[0], "good", true)],
        };
        let refused = l
            .submit(n.tx(&n.cold, settle(thin, result("good", &n.work))))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "invalid_evidence");
        assert!(refused.to_string().contains("certificate"), "{refused}");

        // Equivocation: both votes checked by the ledger itself, slashed once.
        let evidence = VoteEquivocation {
            validator: vals[1].public(),
            first: vote(&vals[1], "good", true),
            second: vote(&vals[1], "good", false),
        };
        l.submit(n.tx(
            &n.cold,
            TxBody::SlashEquivocation {
                evidence: evidence.clone(),
            },
        ))
        .await
        .unwrap();
        assert_eq!(stake_of(&l.metagraph().await.unwrap(), &vals[1]), 900);
        let twice = l
            .submit(n.tx(&n.cold, TxBody::SlashEquivocation { evidence }))
            .await
            .unwrap_err();
        assert_eq!(twice.code(), "already_slashed");
        let framed = VoteEquivocation {
            validator: vals[0].public(),
            first: vote(&vals[0], "good", true),
            second: vote(&vals[1], "good", false),
        };
        let framed = l
            .submit(n.tx(&n.cold, TxBody::SlashEquivocation { evidence: framed }))
            .await
            .unwrap_err();
        assert_eq!(framed.code(), "invalid_evidence");
        let slashes = l.slashes().await.unwrap();
        let reasons: Vec<_> = slashes.iter().map(|s| (s.reason, s.amount)).collect();
        assert_eq!(
            reasons,
            [
                (SlashReason::RejectedResult, 50),
                (SlashReason::DissentingVote, 100),
                (SlashReason::Equivocation, 100)
            ]
        );
        // Every applied transaction is still a sound chain.
        l.audit_chain().await.unwrap();
    }

    #[test]
    fn params_without_default_tiers_or_epochs_are_refused() {
        assert_eq!(LedgerParams::default().check(), Ok(()));
        let mut p = LedgerParams::default();
        p.tiers.remove("cpu");
        assert!(p.check().unwrap_err().contains("\"cpu\" must exist"));
        let mut p = LedgerParams::default();
        p.tiers.insert(
            "validator".into(),
            Tier {
                role: Role::Worker,
                min_stake: 1,
            },
        );
        assert!(p.check().unwrap_err().contains("validators"));
        let p = LedgerParams {
            heartbeat_epoch_ms: 0,
            ..LedgerParams::default()
        };
        assert!(p.check().unwrap_err().contains("heartbeat"));
        let p = LedgerParams {
            slash_fraction_bps: 10_001,
            ..LedgerParams::default()
        };
        assert!(p.check().unwrap_err().contains("slash_fraction_bps"));
    }

    #[test]
    fn activity_follows_the_last_heartbeat() {
        let p = LedgerParams {
            heartbeat_epoch_ms: 1_000,
            inactive_after_epochs: 3,
            ..LedgerParams::default()
        };
        assert!(p.is_active(Role::Worker, 10_000, 13_000));
        assert!(!p.is_active(Role::Worker, 10_000, 13_001));
        assert!(!p.is_active(Role::Worker, 0, 1), "never beat");
        assert!(p.is_active(Role::Validator, 0, 1_000_000));
    }
}
