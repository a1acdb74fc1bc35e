//! One ledger replica: Malachite consensus driving the pure ledger state machine.
//!
//! The app loop answers the engine:
//! - `GetValue`: the proposer builds a block from its mempool ([`build_block`]) and streams
//!   it as signed proposal parts;
//! - `ReceivedProposalPart`: the others reassemble the block, check the proposer's stream
//!   signature, re-execute it ([`check_block`]) and report it valid or invalid, so consensus
//!   prevotes nil on a wrong root, an invalid transaction or a clock far ahead;
//! - `Decided`: the block is re-executed, stored with its commit certificate (synced to
//!   disk) and only then acknowledged;
//! - `GetDecidedValues` / `ProcessSyncedValue`: a lagging or restarted replica catches up
//!   from its peers, re-executing each certified block.
//!
//! Voting power is bonded validator stake. The set for an epoch of `epoch_blocks` heights is
//! computed from the state at the end of the previous epoch (the genesis set for the first),
//! so every replica derives the same set from the same chain.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::{Keypair, Signed};
use hallmark_ledger::block::{build_block, check_block, Block};
use hallmark_ledger::consensus_vote::{DoubleVote, SignedConsensusVote};
use hallmark_ledger::machine::{BlockCtx, Rules};
use hallmark_ledger::state::{LedgerState, GENESIS_PREV};
use hallmark_ledger::{Genesis, LedgerParams};
use hallmark_ledger::{LedgerTx, TxBody};
use malachitebft_app_channel::app::config::NodeConfig;
use malachitebft_app_channel::app::config::{
    ConsensusConfig, P2pConfig, PubSubProtocol, ValueSyncConfig,
};
use malachitebft_app_channel::app::engine::host::{Next, SyncedValueOutcome};
use malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app_channel::app::types::codec::Codec;
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, HeightParams, NilOrVal, Round, SignedMessage, Validity,
};
use malachitebft_app_channel::app::types::sync::RawDecidedValue;
use malachitebft_app_channel::app::types::MisbehaviorEvidence;
use malachitebft_app_channel::app::types::{LocallyProposedValue, PeerId, ProposedValue};
use malachitebft_app_channel::{
    AppMsg, Channels, ConsensusContext, EngineBuilder, EngineHandle, NetworkContext,
    NetworkIdentity, NetworkMsg, RequestContext, Signer, SyncContext, WalContext,
};
use malachitebft_engine_byzantine::{ByzantineConfig, Trigger};
use serde::Serialize;
use tokio::sync::{mpsc, watch, Mutex, Notify};
use tokio::task::JoinHandle;

use crate::codec::{WireCertificate, WireCodec};
use crate::context::{
    default_timeouts, stream_signing_bytes, vote_type_name, Address, BlockId, Height,
    LedgerContext, ProposalPart, Validator, ValidatorSet, Vote,
};
use crate::header::{block_id, BlockHeader, CertifiedRead};
use crate::mempool::{Mempool, MempoolError};
use crate::signing::{HotkeySigner, HotkeyVerifier};
use crate::store::{BlockStore, DecidedBlock, StoreError};

/// Largest block a replica reassembles from proposal parts.
pub const MAX_BLOCK_BYTES: usize = 8 << 20;
/// Size of one proposal data part.
const PART_BYTES: usize = 64 << 10;
/// Most partial proposal streams buffered at once (older ones are dropped).
const MAX_STREAMS: usize = 64;
/// Most decided blocks one sync response carries.
const MAX_SYNC_BATCH: u64 = 64;

/// How a replica misbehaves, for tests and the devnet's `--byzantine-replica`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Byzantine {
    /// As proposer, claim a state root its block does not reach.
    pub bad_proposals: bool,
    /// Sign a second, conflicting vote for every vote it casts.
    pub double_vote: bool,
}

impl Byzantine {
    /// Whether any misbehaviour is configured.
    pub fn any(&self) -> bool {
        self.bad_proposals || self.double_vote
    }
}

/// Everything a replica needs to start.
#[derive(Clone)]
pub struct ReplicaConfig {
    /// A name for logs and status (the devnet uses the validator's name).
    pub name: String,
    /// The validator's hotkey; it signs votes, proposals and the network identity.
    pub key: Keypair,
    /// Where decided blocks and the consensus write-ahead log live.
    pub home: PathBuf,
    /// The p2p listen address (TCP).
    pub listen: SocketAddr,
    /// The other replicas' p2p addresses.
    pub peers: Vec<SocketAddr>,
    pub genesis: Genesis,
    pub params: LedgerParams,
    /// The validator set for the first epoch.
    pub genesis_validators: ValidatorSet,
    pub tuning: Tuning,
    pub byzantine: Byzantine,
}

/// Knobs with defaults that suit a LAN or loopback network.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Heights per validator-set epoch.
    pub epoch_blocks: u64,
    /// Most transactions one block carries.
    pub max_block_txs: usize,
    /// Longest a proposer waits for a transaction before proposing an empty block.
    pub idle_block: Duration,
    /// Most pending transactions.
    pub mempool_capacity: usize,
    /// How far ahead of this replica's clock a proposed block's time may be.
    pub max_clock_drift: Duration,
    /// How long a proposer holds a sender's transaction whose nonce leaves a gap, in case
    /// the missing one is still being forwarded (nonces need only increase, so a deliberate
    /// gap, such as a timestamp nonce, is served after this).
    pub nonce_gap_grace: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            epoch_blocks: 100,
            max_block_txs: 1000,
            idle_block: Duration::from_millis(1000),
            mempool_capacity: 10_000,
            max_clock_drift: Duration::from_secs(10),
            nonce_gap_grace: Duration::from_millis(300),
        }
    }
}

/// Why a replica cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored block {height} does not re-execute: {reason}")]
    Replay { height: u64, reason: String },
    #[error("the genesis validator set is empty")]
    NoValidators,
    #[error("consensus engine: {0}")]
    Engine(String),
}

/// A replica's view of the chain, for status endpoints, tests and the devnet summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ReplicaStatus {
    pub name: String,
    pub height: u64,
    pub block_id: String,
    pub state_root: String,
    pub log_root: String,
    pub log_size: u64,
    pub mempool: usize,
    pub byzantine: bool,
    /// Set when this replica stopped following the chain (its re-execution of a decided
    /// block failed); it then refuses to go on rather than diverge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted: Option<String>,
}

/// A validator the engine saw sign two different votes (or proposals) for one height and
/// round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Equivocation {
    pub height: u64,
    pub round: i64,
    pub validator: String,
    /// `double_vote` or `double_proposal`.
    pub kind: String,
    pub first: String,
    pub second: String,
}

/// Sends an accepted transaction on to the other replicas (the node does it over HTTP).
#[async_trait::async_trait]
pub trait TxForwarder: Send + Sync {
    /// Forwards `tx`; failures are the forwarder's to log, never the submitter's.
    async fn forward(&self, tx: Signed<LedgerTx>);
}

struct Partial {
    parts: BTreeMap<u64, StreamContent<ProposalPart>>,
    bytes: usize,
    started: Instant,
}

/// A reassembled, signature-checked proposal not yet decided.
#[derive(Clone)]
struct Candidate {
    value: ProposedValue<LedgerContext>,
    block: Block,
}

struct Shared {
    name: String,
    rules: Rules,
    state: LedgerState,
    head: BlockId,
    store: BlockStore,
    mempool: Mempool,
    genesis_set: ValidatorSet,
    sets: BTreeMap<u64, ValidatorSet>,
    epoch_blocks: u64,
    /// Blocks seen for undecided heights, by id.
    blocks: HashMap<BlockId, Block>,
    /// Proposals seen, by height, including ones for heights not reached yet.
    candidates: BTreeMap<u64, Vec<Candidate>>,
    streams: HashMap<(PeerId, StreamId), Partial>,
    evidence: Vec<Equivocation>,
    halted: Option<String>,
    /// The last nonce this replica used for a slashing transaction.
    evidence_nonce: u64,
    /// Tells watchers each newly decided height.
    heights: watch::Sender<u64>,
    max_block_txs: usize,
    max_clock_drift_ms: i64,
    nonce_gap_grace_ms: i64,
    byzantine: Byzantine,
}

impl Shared {
    fn height(&self) -> u64 {
        self.store.height()
    }

    fn head_hash(&self) -> String {
        if self.height() == 0 {
            GENESIS_PREV.to_string()
        } else {
            self.head.to_hex()
        }
    }

    fn validator_set(&self, height: u64) -> ValidatorSet {
        let epoch = height.saturating_sub(1) / self.epoch_blocks.max(1);
        self.sets
            .range(..=epoch)
            .next_back()
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| self.genesis_set.clone())
    }

    fn params(&self, height: u64) -> HeightParams<LedgerContext> {
        HeightParams::new(self.validator_set(height), default_timeouts(), None)
    }

    /// Applies a decided block: re-executes it, stores it with its certificate, moves the
    /// head and, at an epoch's end, computes the next epoch's validator set.
    fn commit(&mut self, block: &Block, certificate: WireCertificate) -> Result<(), String> {
        let head = (self.height(), self.head_hash());
        let (next, _) = check_block(
            &self.state,
            &self.rules,
            (head.0, &head.1),
            block,
            usize::MAX,
        )
        .map_err(|e| e.to_string())?;
        self.store
            .append(DecidedBlock {
                block: block.clone(),
                certificate,
            })
            .map_err(|e| e.to_string())?;
        self.advance(next, block);
        self.heights.send_replace(block.height);
        let dropped = self.mempool.recheck(&self.state);
        if dropped > 0 {
            tracing::debug!(replica = %self.name, dropped, "mempool entries no longer apply");
        }
        let height = block.height;
        self.blocks.retain(|_, b| b.height > height);
        self.candidates = self.candidates.split_off(&(height + 1));
        Ok(())
    }

    fn advance(&mut self, next: LedgerState, block: &Block) {
        self.state = next;
        self.head = block_id(block);
        let epoch_blocks = self.epoch_blocks.max(1);
        if block.height.is_multiple_of(epoch_blocks) {
            let epoch = block.height / epoch_blocks;
            let previous = self.validator_set(block.height);
            let staked = self.state.validator_stakes().unwrap_or_default();
            let set = ValidatorSet::new(staked.into_iter().map(|(k, p)| Validator::new(k, p)));
            let set = if set.is_empty() { previous } else { set };
            self.sets.insert(epoch, set);
        }
    }

    fn mempool_ctx(&self) -> BlockCtx {
        BlockCtx {
            height: self.height() + 1,
            prev_hash: self.head_hash(),
            time_ms: now_ms().max(self.state.time_ms()),
        }
    }

    /// Checks a reassembled proposal for the next height.
    fn validate(&self, block: &Block) -> Validity {
        let head = self.head_hash();
        let too_far = block.time_ms > now_ms().saturating_add(self.max_clock_drift_ms);
        if too_far {
            tracing::warn!(replica = %self.name, height = block.height, "proposal time is ahead of this clock");
            return Validity::Invalid;
        }
        match check_block(
            &self.state,
            &self.rules,
            (self.height(), &head),
            block,
            self.max_block_txs,
        ) {
            Ok(_) => Validity::Valid,
            Err(e) => {
                tracing::warn!(replica = %self.name, height = block.height, code = e.code(), "refusing proposal: {e}");
                Validity::Invalid
            }
        }
    }

    fn status(&mut self) -> ReplicaStatus {
        ReplicaStatus {
            name: self.name.clone(),
            height: self.height(),
            block_id: self.head_hash(),
            state_root: self.state.root_hex(),
            log_root: hex::encode(self.state.log_root()),
            log_size: self.state.log_size(),
            mempool: self.mempool.len(),
            byzantine: self.byzantine.any(),
            halted: self.halted.clone(),
        }
    }
}

fn now_ms() -> i64 {
    hallmark_core::time::now_unix_ms()
}

struct Config {
    moniker: String,
    consensus: ConsensusConfig,
    sync: ValueSyncConfig,
}

impl NodeConfig for Config {
    fn moniker(&self) -> &str {
        &self.moniker
    }
    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }
    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }
    fn value_sync(&self) -> &ValueSyncConfig {
        &self.sync
    }
    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.sync
    }
}

fn tcp_multiaddr(
    addr: &SocketAddr,
) -> Result<malachitebft_app_channel::app::net::Multiaddr, ReplicaError> {
    let s = match addr {
        SocketAddr::V4(a) => format!("/ip4/{}/tcp/{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("/ip6/{}/tcp/{}", a.ip(), a.port()),
    };
    s.parse()
        .map_err(|e| ReplicaError::Engine(format!("address {addr}: {e}")))
}

/// A running replica.
pub struct Replica {
    shared: Arc<Mutex<Shared>>,
    new_tx: Arc<Notify>,
    forwarder: Option<Arc<dyn TxForwarder>>,
    engine: EngineHandle,
    app: JoinHandle<()>,
}

impl Replica {
    /// Opens the replica's block store, re-executes every stored block from genesis, and
    /// starts consensus. A stored block that does not re-execute refuses the start.
    pub async fn start(
        cfg: ReplicaConfig,
        forwarder: Option<Arc<dyn TxForwarder>>,
    ) -> Result<Self, ReplicaError> {
        if cfg.genesis_validators.is_empty() {
            return Err(ReplicaError::NoValidators);
        }
        let chain_id = cfg.genesis.chain_id.clone();
        let rules = Rules {
            chain_id: chain_id.clone(),
            params: cfg.params.clone(),
        };
        let genesis_state =
            LedgerState::genesis(&cfg.genesis.balances).map_err(|e| ReplicaError::Replay {
                height: 0,
                reason: e.to_string(),
            })?;
        let store = BlockStore::open(&cfg.home)?;
        let decided: Vec<DecidedBlock> = store.blocks().to_vec();
        let mut shared = Shared {
            name: cfg.name.clone(),
            mempool: Mempool::new(cfg.tuning.mempool_capacity),
            rules,
            state: genesis_state,
            head: BlockId([0; 32]),
            store,
            genesis_set: cfg.genesis_validators.clone(),
            sets: BTreeMap::new(),
            epoch_blocks: cfg.tuning.epoch_blocks.max(1),
            blocks: HashMap::new(),
            candidates: BTreeMap::new(),
            streams: HashMap::new(),
            evidence: Vec::new(),
            halted: None,
            heights: watch::channel(0).0,
            evidence_nonce: 0,
            max_block_txs: cfg.tuning.max_block_txs,
            max_clock_drift_ms: cfg.tuning.max_clock_drift.as_millis() as i64,
            nonce_gap_grace_ms: cfg.tuning.nonce_gap_grace.as_millis() as i64,
            byzantine: cfg.byzantine,
        };
        for d in &decided {
            let head = (d.block.height - 1, shared.head_hash());
            let (next, _) = check_block(
                &shared.state,
                &shared.rules,
                (head.0, &head.1),
                &d.block,
                usize::MAX,
            )
            .map_err(|e| ReplicaError::Replay {
                height: d.block.height,
                reason: e.to_string(),
            })?;
            if d.certificate.value_id != block_id(&d.block) {
                return Err(ReplicaError::Replay {
                    height: d.block.height,
                    reason: "the stored certificate is for another block".into(),
                });
            }
            shared.advance(next, &d.block);
        }
        shared.heights.send_replace(shared.height());
        tracing::info!(replica = %cfg.name, height = shared.height(), "replayed stored blocks");

        let shared = Arc::new(Mutex::new(shared));
        let new_tx = Arc::new(Notify::new());
        let (channels, engine) = spawn_engine(&cfg).await?;
        let app = tokio::spawn(run_app(
            Arc::clone(&shared),
            Arc::clone(&new_tx),
            channels,
            cfg.key.clone(),
            chain_id.clone(),
            cfg.tuning.idle_block,
        ));
        Ok(Self {
            shared,
            new_tx,
            forwarder,
            engine,
            app,
        })
    }

    /// Accepts a signed transaction into the mempool (after checking it executes on the
    /// current state plus everything pending) and forwards it to the other replicas unless
    /// it arrived forwarded. Returns its id.
    pub async fn submit(
        &self,
        tx: Signed<LedgerTx>,
        forwarded: bool,
    ) -> Result<String, MempoolError> {
        let id = {
            let mut s = self.shared.lock().await;
            let ctx = s.mempool_ctx();
            let Shared {
                state,
                rules,
                mempool,
                ..
            } = &mut *s;
            mempool.insert(state, rules, &ctx, tx.clone())?
        };
        self.new_tx.notify_one();
        if !forwarded {
            if let Some(f) = &self.forwarder {
                let f = Arc::clone(f);
                tokio::spawn(async move { f.forward(tx).await });
            }
        }
        Ok(id)
    }

    /// Height, roots and mempool depth.
    pub async fn status(&self) -> ReplicaStatus {
        self.shared.lock().await.status()
    }

    /// A receiver that sees each newly decided height (for clients waiting on a commit).
    pub async fn heights(&self) -> watch::Receiver<u64> {
        self.shared.lock().await.heights.subscribe()
    }

    /// Equivocations the engine reported.
    pub async fn evidence(&self) -> Vec<Equivocation> {
        self.shared.lock().await.evidence.clone()
    }

    /// Reads `key` from the latest decided state, with its proof, the block header and the
    /// certificate that decided it. `None` before the first block.
    pub async fn read(&self, key: &str) -> Option<CertifiedRead> {
        let mut s = self.shared.lock().await;
        let last = s.store.blocks().last()?.clone();
        let value = s.state.value(key);
        let proof = s.state.prove(key);
        Some(CertifiedRead {
            chain_id: s.rules.chain_id.clone(),
            key: key.to_string(),
            value,
            proof,
            header: BlockHeader::of(&last.block),
            certificate: last.certificate,
        })
    }

    /// The log checkpoint of the last decided block, with the certificate that co-signs it.
    /// `None` before the first block.
    pub async fn checkpoint(&self) -> Option<crate::header::CertifiedCheckpoint> {
        let s = self.shared.lock().await;
        let last = s.store.blocks().last()?.clone();
        Some(crate::header::CertifiedCheckpoint {
            chain_id: s.rules.chain_id.clone(),
            origin: format!("hallmark/{}/ledger", s.rules.chain_id),
            header: BlockHeader::of(&last.block),
            certificate: last.certificate,
        })
    }

    /// Runs `f` on the latest decided state.
    pub async fn with_state<T>(&self, f: impl FnOnce(&mut LedgerState) -> T) -> T {
        let mut s = self.shared.lock().await;
        f(&mut s.state)
    }

    /// The validator set for `height`.
    pub async fn validator_set(&self, height: u64) -> ValidatorSet {
        self.shared.lock().await.validator_set(height)
    }

    /// The decided block at `height` and its certificate.
    pub async fn block(&self, height: u64) -> Option<DecidedBlock> {
        self.shared.lock().await.store.get(height).cloned()
    }

    /// Stops consensus and the app loop at once (no graceful hand-off: what is on disk is
    /// what a restart finds, as after a crash).
    pub fn kill(&self) {
        self.app.abort();
        self.engine
            .actor
            .get_cell()
            .stop_children(Some("replica killed".into()));
        self.engine.actor.kill();
        self.engine.handle.abort();
    }
}

async fn spawn_engine(
    cfg: &ReplicaConfig,
) -> Result<(Channels<LedgerContext>, EngineHandle), ReplicaError> {
    let chain_id = cfg.genesis.chain_id.clone();
    let address = Address(cfg.key.public());
    let mut seed = cfg.key.seed();
    let keypair = malachitebft_app_channel::app::types::Keypair::ed25519_from_bytes(&mut seed)
        .map_err(|e| ReplicaError::Engine(format!("network key: {e}")))?;
    let peer_id = keypair.public().to_peer_id();
    let signer = HotkeySigner::new(chain_id.clone(), cfg.key.clone());
    let proof = signer
        .sign_validator_proof(cfg.key.public().as_bytes().to_vec(), peer_id.to_bytes())
        .await
        .map_err(|e| ReplicaError::Engine(format!("validator proof: {e}")))?;
    let proof_bytes = WireCodec
        .encode(&proof)
        .map_err(|e| ReplicaError::Engine(format!("validator proof: {e}")))?;
    let identity =
        NetworkIdentity::new_validator(cfg.name.clone(), keypair, address.to_string(), proof_bytes);

    let mut peers = Vec::new();
    for p in &cfg.peers {
        peers.push(tcp_multiaddr(p)?);
    }
    let consensus = ConsensusConfig {
        p2p: P2pConfig {
            listen_addr: tcp_multiaddr(&cfg.listen)?,
            persistent_peers: peers,
            protocol: PubSubProtocol::Broadcast,
            ..P2pConfig::default()
        },
        ..ConsensusConfig::default()
    };
    let sync = ValueSyncConfig {
        status_update_interval: Duration::from_millis(500),
        request_timeout: Duration::from_secs(5),
        ..ValueSyncConfig::default()
    };
    let config = Config {
        moniker: cfg.name.clone(),
        consensus,
        sync,
    };
    let ctx = LedgerContext::new(chain_id.clone());
    let wal = WalContext::new(cfg.home.join("wal").join("consensus.wal"), WireCodec);
    let consensus_ctx = ConsensusContext::new_validator(
        address,
        Box::new(HotkeyVerifier::new(chain_id.clone())),
        Box::new(HotkeySigner::new(chain_id.clone(), cfg.key.clone())),
    );
    let builder = EngineBuilder::new(ctx, config).with_default_wal(wal);
    let result = if cfg.byzantine.double_vote {
        let byz = malachitebft_app_channel::ByzantineContext {
            identity,
            codec: WireCodec,
            config: ByzantineConfig::default().with_equivocate_votes(Trigger::Always),
            signer: Box::new(HotkeySigner::new(chain_id.clone(), cfg.key.clone())),
            address,
            conflicting_value_fn: None,
            conflicting_vote_value_fn: None,
        };
        builder
            .with_byzantine_network(byz)
            .await
            .map_err(|e| ReplicaError::Engine(e.to_string()))?
            .with_default_sync(SyncContext::new(WireCodec))
            .with_default_consensus(consensus_ctx)
            .with_default_request(RequestContext::new(64))
            .build()
            .await
    } else {
        builder
            .with_default_network(NetworkContext::new(identity, WireCodec))
            .with_default_sync(SyncContext::new(WireCodec))
            .with_default_consensus(consensus_ctx)
            .with_default_request(RequestContext::new(64))
            .build()
            .await
    };
    result.map_err(|e| ReplicaError::Engine(e.to_string()))
}

fn stream_id(height: Height, round: Round, proposer: &Address) -> StreamId {
    let mut b = Vec::with_capacity(48);
    b.extend_from_slice(&height.0.to_be_bytes());
    b.extend_from_slice(&round.as_i64().to_be_bytes());
    b.extend_from_slice(proposer.0.as_bytes());
    StreamId::new(Bytes::from(b))
}

/// The stream of parts that carries `block` for `(height, round)`, signed by `key`.
fn proposal_stream(
    chain_id: &str,
    key: &Keypair,
    height: Height,
    round: Round,
    valid_round: Round,
    block: &Block,
) -> Vec<StreamMessage<ProposalPart>> {
    let proposer = Address(key.public());
    let id = block_id(block);
    let bytes = to_canonical_bytes(block).unwrap_or_default();
    let sid = stream_id(height, round, &proposer);
    let mut parts = vec![ProposalPart::Init {
        height,
        round: round.as_i64(),
        valid_round: valid_round.as_i64(),
        proposer,
    }];
    for chunk in bytes.chunks(PART_BYTES) {
        parts.push(ProposalPart::Data {
            bytes: chunk.to_vec(),
        });
    }
    let signature = key.sign(&stream_signing_bytes(
        chain_id,
        height,
        round.as_i64(),
        valid_round.as_i64(),
        &proposer,
        &id,
    ));
    parts.push(ProposalPart::Fin {
        signature: signature.to_vec(),
    });
    let mut out: Vec<_> = parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| StreamMessage::new(sid.clone(), i as u64, StreamContent::Data(p)))
        .collect();
    out.push(StreamMessage::new(
        sid,
        out.len() as u64,
        StreamContent::Fin,
    ));
    out
}

fn round_from(i: i64) -> Round {
    u32::try_from(i).map(Round::new).unwrap_or(Round::Nil)
}

/// Reassembles a complete stream: the proposal it carries (its signature checked against
/// the claimed proposer) or `None` if it is incomplete or forged.
/// A reassembled proposal: height, round, valid round, proposer and block.
type Assembled = (Height, Round, Round, Address, Block);

fn assemble(chain_id: &str, partial: &Partial) -> Option<Result<Assembled, String>> {
    let (last_seq, last) = partial.parts.iter().next_back()?;
    if !last.is_fin() || partial.parts.len() as u64 != last_seq + 1 {
        return None;
    }
    let mut init = None;
    let mut data = Vec::with_capacity(partial.bytes);
    let mut signature = None;
    for content in partial.parts.values() {
        match content.as_data() {
            Some(ProposalPart::Init {
                height,
                round,
                valid_round,
                proposer,
            }) => init = Some((*height, *round, *valid_round, *proposer)),
            Some(ProposalPart::Data { bytes }) => data.extend_from_slice(bytes),
            Some(ProposalPart::Fin { signature: s }) => signature = Some(s.clone()),
            None => {}
        }
    }
    let Some((height, round, valid_round, proposer)) = init else {
        return Some(Err("stream has no init part".into()));
    };
    let Some(signature) = signature else {
        return Some(Err("stream has no signature".into()));
    };
    let block: Block = match serde_json::from_slice(&data) {
        Ok(b) => b,
        Err(e) => return Some(Err(format!("block does not parse: {e}"))),
    };
    if block.height != height.0 {
        return Some(Err("block height differs from the stream's".into()));
    }
    let id = block_id(&block);
    let signed = stream_signing_bytes(chain_id, height, round, valid_round, &proposer, &id);
    if proposer.0.verify(&signed, &signature).is_err() {
        return Some(Err("stream signature does not verify".into()));
    }
    Some(Ok((
        height,
        round_from(round),
        round_from(valid_round),
        proposer,
        block,
    )))
}

async fn run_app(
    shared: Arc<Mutex<Shared>>,
    new_tx: Arc<Notify>,
    mut channels: Channels<LedgerContext>,
    key: Keypair,
    chain_id: String,
    idle_block: Duration,
) {
    let network = channels.network.clone();
    while let Some(msg) = channels.consensus.recv().await {
        handle(&shared, &new_tx, &network, &key, &chain_id, idle_block, msg).await;
    }
    tracing::info!("consensus channel closed; replica app loop ends");
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    shared: &Arc<Mutex<Shared>>,
    new_tx: &Arc<Notify>,
    network: &mpsc::Sender<NetworkMsg<LedgerContext>>,
    key: &Keypair,
    chain_id: &str,
    idle_block: Duration,
    msg: AppMsg<LedgerContext>,
) {
    match msg {
        AppMsg::ConsensusReady { reply } => {
            let s = shared.lock().await;
            let next = s.height() + 1;
            let _ = reply.send((Height(next), s.params(next)));
        }
        AppMsg::StartedRound {
            height,
            round,
            reply_value,
            ..
        } => {
            let mut s = shared.lock().await;
            let mut values = Vec::new();
            if height.0 == s.height() + 1 {
                // Proposals that arrived before this replica reached the height: check them
                // now, on the state they build on.
                let pending = s.candidates.get(&height.0).cloned().unwrap_or_default();
                let mut checked = Vec::with_capacity(pending.len());
                for mut c in pending {
                    c.value.validity = s.validate(&c.block);
                    if c.value.round == round {
                        values.push(c.value.clone());
                    }
                    checked.push(c);
                }
                s.candidates.insert(height.0, checked);
            }
            let _ = reply_value.send(values);
        }
        AppMsg::GetValue {
            height,
            round,
            timeout,
            reply,
        } => {
            let shared = Arc::clone(shared);
            let new_tx = Arc::clone(new_tx);
            let network = network.clone();
            let key = key.clone();
            let chain_id = chain_id.to_string();
            tokio::spawn(async move {
                // Wait for a transaction, but never past the idle interval or half the
                // propose timeout: an empty block keeps time and liveness moving.
                let wait = idle_block.min(timeout / 2);
                let deadline = tokio::time::Instant::now() + wait;
                loop {
                    if !shared.lock().await.mempool.is_empty() {
                        break;
                    }
                    if tokio::time::timeout_at(deadline, new_tx.notified())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                let (block, id) = {
                    let mut s = shared.lock().await;
                    if s.height() + 1 != height.0 {
                        return; // decided meanwhile (by sync); consensus moves on
                    }
                    let head = s.head_hash();
                    let candidates = s.mempool.candidates(
                        &s.state,
                        now_ms(),
                        s.nonce_gap_grace_ms,
                        s.max_block_txs,
                    );
                    let built = build_block(
                        &s.state,
                        &s.rules,
                        height.0,
                        &head,
                        now_ms(),
                        candidates,
                        s.max_block_txs,
                    );
                    let mut block = match built {
                        Ok((block, _, _)) => block,
                        Err(e) => {
                            tracing::error!(replica = %s.name, "cannot build a block: {e}");
                            return;
                        }
                    };
                    if s.byzantine.bad_proposals {
                        block.state_root = "ff".repeat(32);
                    }
                    let id = block_id(&block);
                    s.blocks.insert(id, block.clone());
                    let proposer = Address(key.public());
                    let value = ProposedValue {
                        height,
                        round,
                        valid_round: Round::Nil,
                        proposer,
                        value: id,
                        validity: Validity::Valid,
                    };
                    s.candidates.entry(height.0).or_default().push(Candidate {
                        value,
                        block: block.clone(),
                    });
                    (block, id)
                };
                let _ = reply.send(LocallyProposedValue::new(height, round, id));
                for part in proposal_stream(&chain_id, &key, height, round, Round::Nil, &block) {
                    if network
                        .send(NetworkMsg::PublishProposalPart(part))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        AppMsg::ExtendVote { reply, .. } => {
            let _ = reply.send(None);
        }
        AppMsg::VerifyVoteExtensions {
            extensions, reply, ..
        } => {
            // This chain runs with extensions disabled: none is acceptable.
            let verdicts = extensions
                .into_iter()
                .map(|(a, _)| {
                    (
                        a,
                        Err(malachitebft_app_channel::app::consensus::VoteExtensionError::InvalidVoteExtension),
                    )
                })
                .collect();
            let _ = reply.send(verdicts);
        }
        AppMsg::RestreamProposal {
            height,
            round,
            valid_round,
            value_id,
            ..
        } => {
            let block = shared.lock().await.blocks.get(&value_id).cloned();
            if let Some(block) = block {
                for part in proposal_stream(chain_id, key, height, round, valid_round, &block) {
                    if network
                        .send(NetworkMsg::PublishProposalPart(part))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        AppMsg::GetHistoryMinHeight { reply } => {
            let _ = reply.send(Height(1));
        }
        AppMsg::ReceivedProposalPart {
            from,
            published_by,
            part,
            reply,
        } => {
            let mut s = shared.lock().await;
            let value = received_part(&mut s, chain_id, published_by.unwrap_or(from), part);
            let _ = reply.send(value);
        }
        AppMsg::Decided {
            certificate, reply, ..
        } => {
            let mut s = shared.lock().await;
            decided(&mut s, &certificate);
            let _ = reply.send(());
        }
        AppMsg::Finalized {
            certificate,
            evidence,
            reply,
            ..
        } => {
            let mut s = shared.lock().await;
            record_evidence(&mut s, key, &evidence);
            let next = s.height() + 1;
            let height = certificate.height.0;
            let msg = if next == height + 1 {
                Next::Start(Height(next), s.params(next))
            } else {
                // The decided block could not be committed: try the height again.
                Next::Restart(Height(next), s.params(next))
            };
            let _ = reply.send(msg);
        }
        AppMsg::GetDecidedValues { range, reply } => {
            let s = shared.lock().await;
            let start = range.start().0.max(1);
            let end = range
                .end()
                .0
                .min(s.height())
                .min(start.saturating_add(MAX_SYNC_BATCH - 1));
            let mut values = Vec::new();
            for h in start..=end {
                let Some(d) = s.store.get(h) else { break };
                let (Ok(bytes), Ok(cert)) =
                    (to_canonical_bytes(&d.block), d.certificate.to_extended())
                else {
                    break;
                };
                values.push(RawDecidedValue::new(Bytes::from(bytes), cert));
            }
            let _ = reply.send(values);
        }
        AppMsg::ProcessSyncedValue {
            height,
            round,
            proposer,
            value_bytes,
            reply,
        } => {
            let outcome = if value_bytes.len() > MAX_BLOCK_BYTES {
                SyncedValueOutcome::PeerFault
            } else {
                match serde_json::from_slice::<Block>(&value_bytes) {
                    Err(_) => SyncedValueOutcome::PeerFault,
                    Ok(block) if block.height != height.0 => SyncedValueOutcome::PeerFault,
                    Ok(block) => {
                        let mut s = shared.lock().await;
                        let id = block_id(&block);
                        // A certified block is checked by re-execution, not by this
                        // replica's clock: it was decided already.
                        let head = s.head_hash();
                        let validity = if height.0 == s.height() + 1 {
                            match check_block(
                                &s.state,
                                &s.rules,
                                (s.height(), &head),
                                &block,
                                usize::MAX,
                            ) {
                                Ok(_) => Validity::Valid,
                                Err(e) => {
                                    tracing::error!(replica = %s.name, height = height.0, "synced block does not re-execute: {e}");
                                    Validity::Invalid
                                }
                            }
                        } else {
                            Validity::Invalid
                        };
                        s.blocks.insert(id, block);
                        SyncedValueOutcome::Verdict(ProposedValue {
                            height,
                            round,
                            valid_round: Round::Nil,
                            proposer,
                            value: id,
                            validity,
                        })
                    }
                }
            };
            let _ = reply.send(outcome);
        }
    }
}

fn received_part(
    s: &mut Shared,
    chain_id: &str,
    peer: PeerId,
    part: StreamMessage<ProposalPart>,
) -> Option<ProposedValue<LedgerContext>> {
    let key = (peer, part.stream_id.clone());
    if !s.streams.contains_key(&key) && s.streams.len() >= MAX_STREAMS {
        // Drop the oldest partial stream rather than grow without bound.
        if let Some(oldest) = s
            .streams
            .iter()
            .min_by_key(|(_, p)| p.started)
            .map(|(k, _)| k.clone())
        {
            s.streams.remove(&oldest);
        }
    }
    let size = match part.content.as_data() {
        Some(ProposalPart::Data { bytes }) => bytes.len(),
        _ => 0,
    };
    let entry = s.streams.entry(key.clone()).or_insert_with(|| Partial {
        parts: BTreeMap::new(),
        bytes: 0,
        started: Instant::now(),
    });
    entry.bytes = entry.bytes.saturating_add(size);
    if entry.bytes > MAX_BLOCK_BYTES || part.sequence > (MAX_BLOCK_BYTES / PART_BYTES) as u64 + 4 {
        s.streams.remove(&key);
        return None;
    }
    entry.parts.insert(part.sequence, part.content);
    let assembled = assemble(chain_id, entry)?;
    s.streams.remove(&key);
    let (height, round, valid_round, proposer, block) = match assembled {
        Ok(a) => a,
        Err(reason) => {
            tracing::warn!(replica = %s.name, "dropping proposal stream: {reason}");
            return None;
        }
    };
    let current = s.height() + 1;
    if height.0 < current {
        return None;
    }
    if s.validator_set(height.0)
        .validators()
        .iter()
        .all(|v| v.address != proposer)
    {
        tracing::warn!(replica = %s.name, "proposal from {proposer}, not a validator");
        return None;
    }
    let validity = if height.0 == current {
        s.validate(&block)
    } else {
        Validity::Invalid // re-checked at StartedRound, once this replica gets there
    };
    let id = block_id(&block);
    let value = ProposedValue {
        height,
        round,
        valid_round,
        proposer,
        value: id,
        validity,
    };
    s.blocks.insert(id, block.clone());
    let list = s.candidates.entry(height.0).or_default();
    if list.len() < 64 {
        list.push(Candidate {
            value: value.clone(),
            block,
        });
    }
    (height.0 == current).then_some(value)
}

fn decided(s: &mut Shared, certificate: &CommitCertificate<LedgerContext>) {
    let height = certificate.height.0;
    if height != s.height() + 1 {
        tracing::warn!(replica = %s.name, height, "decision for a height this replica is not at");
        return;
    }
    let Some(block) = s.blocks.get(&certificate.value_id).cloned() else {
        s.halted = Some(format!(
            "decided block {} at height {height} was never received",
            certificate.value_id
        ));
        tracing::error!(replica = %s.name, height, "decided block missing");
        return;
    };
    match s.commit(&block, WireCertificate::from(certificate)) {
        Ok(()) => {
            s.halted = None;
            tracing::debug!(replica = %s.name, height, txs = block.txs.len(), "committed block");
        }
        Err(e) => {
            tracing::error!(replica = %s.name, height, "cannot commit decided block: {e}");
            s.halted = Some(format!("height {height}: {e}"));
        }
    }
}

fn consensus_vote(v: &SignedMessage<LedgerContext, Vote>) -> SignedConsensusVote {
    SignedConsensusVote {
        vote_type: vote_type_name(v.message.vote_type).to_string(),
        height: v.message.height.0,
        round: v.message.round.as_i64(),
        value: match &v.message.value {
            NilOrVal::Nil => None,
            NilOrVal::Val(id) => Some(id.to_hex()),
        },
        signature: hex::encode(v.signature.0),
    }
}

/// The key a replica signs slashing transactions with: derived from its hotkey, so its
/// nonces never race the validator's own transactions.
fn evidence_key(hotkey: &Keypair) -> Keypair {
    let mut seed = b"hallmark-bft-evidence/v1".to_vec();
    seed.extend_from_slice(&hotkey.seed());
    Keypair::from_seed(&hallmark_core::sha256(&seed).0)
}

/// Turns a double vote into a `SlashDoubleVote` transaction in this replica's mempool.
fn submit_slash(s: &mut Shared, reporter: &Keypair, evidence: DoubleVote) {
    let signer = reporter.public().to_ss58();
    let last = s.state.account(&signer).map_or(0, |a| a.nonce);
    s.evidence_nonce = s.evidence_nonce.max(last) + 1;
    let tx = LedgerTx {
        chain_id: s.rules.chain_id.clone(),
        nonce: s.evidence_nonce,
        body: TxBody::SlashDoubleVote { evidence },
    };
    let signed = match Signed::sign(&tx, reporter) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(replica = %s.name, "cannot sign a slashing: {e}");
            return;
        }
    };
    let ctx = s.mempool_ctx();
    let Shared {
        state,
        rules,
        mempool,
        ..
    } = s;
    match mempool.insert(state, rules, &ctx, signed) {
        Ok(id) => tracing::info!(replica = %s.name, tx = %id, "submitted a double-vote slashing"),
        Err(e) => {
            tracing::info!(replica = %s.name, code = e.code(), "double-vote slashing not queued: {e}")
        }
    }
}

/// Most equivocations a replica keeps in memory (the ledger keeps the slashing itself).
const MAX_EVIDENCE: usize = 256;

fn record_evidence(s: &mut Shared, key: &Keypair, evidence: &MisbehaviorEvidence<LedgerContext>) {
    let reporter = evidence_key(key);
    for (address, votes) in evidence.votes.iter() {
        for (a, b) in votes {
            submit_slash(
                s,
                &reporter,
                DoubleVote {
                    validator: address.0,
                    first: consensus_vote(a),
                    second: consensus_vote(b),
                },
            );
            push_evidence(
                s,
                Equivocation {
                    height: a.message.height.0,
                    round: a.message.round.as_i64(),
                    validator: address.to_string(),
                    kind: "double_vote".into(),
                    first: describe_vote(&a.message),
                    second: describe_vote(&b.message),
                },
            );
        }
    }
    for (address, proposals) in evidence.proposals.iter() {
        for (a, b) in proposals {
            push_evidence(
                s,
                Equivocation {
                    height: a.message.height.0,
                    round: a.message.round.as_i64(),
                    validator: address.to_string(),
                    kind: "double_proposal".into(),
                    first: a.message.value.to_hex(),
                    second: b.message.value.to_hex(),
                },
            );
        }
    }
}

fn push_evidence(s: &mut Shared, e: Equivocation) {
    if s.evidence.len() < MAX_EVIDENCE {
        s.evidence.push(e);
    }
}

fn describe_vote(v: &Vote) -> String {
    let value = match &v.value {
        NilOrVal::Nil => "nil".to_string(),
        NilOrVal::Val(id) => id.to_hex(),
    };
    format!("{} {}", vote_type_name(v.vote_type), value)
}
