//! The ledger role as one replica of a BFT-replicated ledger.
//!
//! A [`Replica`] (Malachite consensus over the pure state machine) decides blocks; this
//! node's [`DevnetLedger`] is its materialised view: [`apply_decided`] applies each decided
//! block to it (store, transparency log, every read route), checking both roots against the
//! block's. `submit` hands a transaction to the replica's mempool, which forwards it to the
//! other replicas over HTTP (`POST /v1/ledger/mempool`), and answers once the block holding it
//! is applied here.
//!
//! - `POST /v1/ledger/mempool` — a DSSE-signed transaction another replica forwarded
//!   (checked like any other; queued, not forwarded again)
//! - `GET  /v1/ledger/replica` — this replica's height, block id, roots, mempool depth and
//!   the equivocations its engine saw
//! - `GET  /v1/ledger/certified?key=K` — a state value with its proof, the last decided block's
//!   header and its commit certificate (check offline: `hallmark verify ledger-read FILE
//!   --validators SET`)
//! - `GET  /v1/ledger/validators` — the validator set for the next height
//! - `GET  /v1/ledger/checkpoint/certified` — the ledger log's checkpoint (size and root in
//!   the last decided block's header) with the commit certificate that co-signs it (check
//!   offline: `hallmark verify ledger-checkpoint FILE --validators SET`)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use hallmark_core::{Keypair, PublicKey, Signed};
use hallmark_ledger::Genesis;
use hallmark_ledger::{DevnetLedger, LedgerError, LedgerParams, LedgerTx, TxOrdering, TxReceipt};
use hallmark_ledger_bft::mempool::tx_id;
use hallmark_ledger_bft::{
    Byzantine, Equivocation, MempoolError, Replica, ReplicaConfig, ReplicaStatus, Tuning,
    TxForwarder, Validator, ValidatorSet,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch, Mutex};

use crate::run::NodeError;

/// `[ledger.bft]`: run this ledger as one replica of a BFT-replicated ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BftSection {
    /// Off: the ledger is a single sequencer.
    pub enabled: bool,
    /// The consensus p2p listen address (TCP).
    pub p2p_listen: Option<SocketAddr>,
    /// The other replicas' p2p addresses.
    pub p2p_peers: Vec<SocketAddr>,
    /// The other replicas' HTTP base URLs (transactions are forwarded there).
    pub http_peers: Vec<String>,
    /// The first epoch's validators: hotkey and voting power.
    pub validators: Vec<BftValidator>,
    /// Heights per validator-set epoch (the set is recomputed from bonded stake after each).
    pub epoch_blocks: Option<u64>,
    /// Longest a proposer waits for a transaction before proposing an empty block (ms).
    pub idle_block_ms: Option<u64>,
    /// Devnet and tests only: propose bad blocks and double-vote.
    pub byzantine: bool,
}

/// One genesis validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BftValidator {
    pub hotkey: PublicKey,
    pub power: u64,
}

/// How long `submit` waits for its transaction to be decided and applied.
const INCLUSION_WAIT: Duration = Duration::from_secs(30);

/// Hands transactions to the replica and wakes each submitter when its block is applied.
pub struct ReplicaOrdering {
    replica: Arc<Replica>,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<TxReceipt>>>>,
}

fn mempool_error(e: MempoolError) -> LedgerError {
    match e {
        MempoolError::Refused(e) => e,
        other => LedgerError::Rejected {
            code: other.code().to_string(),
            message: other.to_string(),
        },
    }
}

#[async_trait::async_trait]
impl TxOrdering for ReplicaOrdering {
    async fn order(&self, tx: Signed<LedgerTx>) -> Result<TxReceipt, LedgerError> {
        let id = tx_id(&tx);
        let (send, recv) = oneshot::channel();
        self.waiters
            .lock()
            .await
            .entry(id.clone())
            .or_default()
            .push(send);
        match self.replica.submit(tx, false).await {
            // Already pending (a client's retry, or it arrived forwarded first): wait for it.
            Ok(_) | Err(MempoolError::Duplicate(_)) => {}
            Err(e) => {
                self.waiters.lock().await.remove(&id);
                return Err(mempool_error(e));
            }
        }
        match tokio::time::timeout(INCLUSION_WAIT, recv).await {
            Ok(Ok(receipt)) => Ok(receipt),
            _ => {
                self.waiters.lock().await.remove(&id);
                Err(LedgerError::Unavailable(format!(
                    "transaction {id} was not decided within {} s (it stays in the mempool; \
                     its nonce tells whether it landed)",
                    INCLUSION_WAIT.as_secs()
                )))
            }
        }
    }

    async fn accept_forwarded(&self, tx: Signed<LedgerTx>) -> Result<(), LedgerError> {
        match self.replica.submit(tx, true).await {
            Ok(_) | Err(MempoolError::Duplicate(_)) => Ok(()),
            Err(e) => Err(mempool_error(e)),
        }
    }
}

/// Forwards accepted transactions to the other replicas' `POST /v1/ledger/mempool`.
pub struct HttpForwarder {
    client: reqwest::Client,
    peers: Vec<String>,
}

#[async_trait::async_trait]
impl TxForwarder for HttpForwarder {
    async fn forward(&self, tx: Signed<LedgerTx>) {
        for peer in &self.peers {
            let url = format!("{}/v1/ledger/mempool", peer.trim_end_matches('/'));
            match self.client.post(&url).json(tx.envelope()).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    tracing::debug!(peer = %peer, status = %r.status(), "peer refused a forwarded transaction")
                }
                Err(e) => tracing::debug!(peer = %peer, "forwarding failed: {e}"),
            }
        }
    }
}

/// Starts the replica for `ledger` (which becomes its view) and the task that applies
/// decided blocks to it (and stops the replica with the node). Returns the replica and
/// that task.
pub async fn start(
    section: &BftSection,
    ledger: Arc<DevnetLedger>,
    key: &Keypair,
    home: std::path::PathBuf,
    genesis: Genesis,
    params: LedgerParams,
    shutdown: watch::Receiver<bool>,
) -> Result<(Arc<Replica>, tokio::task::JoinHandle<()>), NodeError> {
    let listen = section
        .p2p_listen
        .ok_or_else(|| NodeError::Config("ledger.bft.p2p_listen must be set".into()))?;
    // The engine binds this port itself and only logs a failure: a port taken since the
    // configuration was written would leave the replica cut off for good, at height 0. Refuse
    // to start instead (a devnet then picks other ports).
    drop(
        std::net::TcpListener::bind(listen).map_err(|source| NodeError::Io {
            what: format!("ledger.bft.p2p_listen {listen}"),
            source,
        })?,
    );
    let set = ValidatorSet::new(
        section
            .validators
            .iter()
            .map(|v| Validator::new(v.hotkey, v.power)),
    );
    if set.is_empty() {
        return Err(NodeError::Config(
            "ledger.bft.validators must name at least one validator with power".into(),
        ));
    }
    let defaults = Tuning::default();
    let cfg = ReplicaConfig {
        name: format!("replica-{}", key.public()),
        key: key.clone(),
        home,
        listen,
        peers: section.p2p_peers.clone(),
        genesis,
        params,
        genesis_validators: set,
        tuning: Tuning {
            epoch_blocks: section.epoch_blocks.unwrap_or(defaults.epoch_blocks),
            idle_block: section
                .idle_block_ms
                .map_or(defaults.idle_block, Duration::from_millis),
            ..defaults
        },
        byzantine: if section.byzantine {
            Byzantine {
                bad_proposals: true,
                double_vote: true,
            }
        } else {
            Byzantine::default()
        },
    };
    let forwarder = Arc::new(HttpForwarder {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| NodeError::Config(format!("http client: {e}")))?,
        peers: section.http_peers.clone(),
    });
    let replica = Arc::new(
        Replica::start(cfg, Some(forwarder))
            .await
            .map_err(|e| NodeError::Config(format!("ledger replica: {e}")))?,
    );
    let ordering = Arc::new(ReplicaOrdering {
        replica: Arc::clone(&replica),
        waiters: Mutex::new(HashMap::new()),
    });
    if !ledger.set_ordering(ordering.clone()) {
        return Err(NodeError::Config(
            "the ledger already has an ordering".into(),
        ));
    }
    let applier = tokio::spawn(apply_decided(
        ledger,
        Arc::clone(&replica),
        Arc::clone(&ordering),
        shutdown.clone(),
    ));
    // The replica stops with the node.
    let stopping = Arc::clone(&replica);
    let mut stop = shutdown;
    let task = tokio::spawn(async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
        applier.abort();
        stopping.kill();
    });
    Ok((replica, task))
}

/// Applies every decided block to the view, in order, and wakes the submitters of its
/// transactions. A block the view cannot apply (its roots differ) stops the task: the view
/// keeps serving the last state the validators decided, never a different one.
pub async fn apply_decided(
    ledger: Arc<DevnetLedger>,
    replica: Arc<Replica>,
    ordering: Arc<ReplicaOrdering>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut heights = replica.heights().await;
    loop {
        let target = *heights.borrow_and_update();
        let applied = match ledger.applied_height().await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!("ledger view: {e}");
                return;
            }
        };
        for h in applied + 1..=target {
            let Some(decided) = replica.block(h).await else {
                break;
            };
            match ledger.apply_block(&decided.block).await {
                Ok(receipts) => {
                    let mut waiters = ordering.waiters.lock().await;
                    let skipped = decided.block.txs.len() - receipts.len();
                    for (env, receipt) in decided.block.txs.iter().skip(skipped).zip(receipts) {
                        let id = tx_id(&Signed::from_envelope(env.clone()));
                        for w in waiters.remove(&id).unwrap_or_default() {
                            let _ = w.send(receipt.clone());
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(
                        height = h,
                        "the ledger view cannot apply a decided block: {e}"
                    );
                    return;
                }
            }
        }
        tokio::select! {
            changed = heights.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

/// `GET /v1/ledger/replica`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ReplicaInfo {
    #[serde(flatten)]
    pub status: ReplicaStatus,
    /// The block the ledger view has applied up to.
    pub applied_height: u64,
    pub evidence: Vec<Equivocation>,
}

/// `GET /v1/ledger/replica` as a client reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct ReplicaInfoView {
    pub name: String,
    pub height: u64,
    pub block_id: String,
    pub state_root: String,
    pub log_root: String,
    pub mempool: usize,
    pub byzantine: bool,
    #[serde(default)]
    pub halted: Option<String>,
    pub applied_height: u64,
    pub evidence: Vec<serde_json::Value>,
}

#[derive(Clone)]
struct RouteState {
    replica: Arc<Replica>,
    ledger: Arc<DevnetLedger>,
}

/// `GET /v1/ledger/replica`.
pub fn routes(replica: Arc<Replica>, ledger: Arc<DevnetLedger>) -> Router {
    Router::new()
        .route("/v1/ledger/replica", get(replica_info))
        .route("/v1/ledger/certified", get(certified))
        .route("/v1/ledger/validators", get(validators))
        .route("/v1/ledger/checkpoint/certified", get(certified_checkpoint))
        .with_state(RouteState { replica, ledger })
}

/// Describes [`routes`] for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    spec.get("/v1/ledger/replica", "This replica's consensus state")
        .ok::<ReplicaInfo>()
        .errors(&[(503, "Not started")]);
    spec.get(
        "/v1/ledger/certified",
        "A state read under a commit certificate",
    )
    .query::<KeyQuery>()
    .ok::<hallmark_ledger_bft::CertifiedRead>()
    .errors(&[(400, "Bad key"), (503, "Nothing decided yet")]);
    spec.get("/v1/ledger/validators", "The validator set")
        .ok::<ValidatorsInfo>();
    spec.get(
        "/v1/ledger/checkpoint/certified",
        "The log checkpoint under a commit certificate",
    )
    .ok::<hallmark_ledger_bft::CertifiedCheckpoint>()
    .errors(&[(503, "Nothing decided yet")]);
}

/// `?key=K`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct KeyQuery {
    key: String,
}

async fn certified(
    State(s): State<RouteState>,
    axum::extract::Query(q): axum::extract::Query<KeyQuery>,
) -> Result<Json<hallmark_ledger_bft::CertifiedRead>, crate::api::ApiError> {
    if q.key.is_empty() || q.key.len() > 512 {
        return Err(crate::api::ApiError::bad_request(
            "invalid_key",
            "a state key is 1..=512 characters",
        ));
    }
    s.replica
        .read(&q.key)
        .await
        .map(Json)
        .ok_or_else(|| crate::api::ApiError::not_found("no block has been decided yet".to_string()))
}

async fn certified_checkpoint(
    State(s): State<RouteState>,
) -> Result<Json<hallmark_ledger_bft::CertifiedCheckpoint>, crate::api::ApiError> {
    s.replica
        .checkpoint()
        .await
        .map(Json)
        .ok_or_else(|| crate::api::ApiError::not_found("no block has been decided yet".to_string()))
}

/// `GET /v1/ledger/validators`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ValidatorsInfo {
    /// The height this set decides next.
    pub height: u64,
    pub validators: ValidatorSet,
}

async fn validators(State(s): State<RouteState>) -> Json<ValidatorsInfo> {
    let height = s.replica.status().await.height + 1;
    Json(ValidatorsInfo {
        height,
        validators: s.replica.validator_set(height).await,
    })
}

async fn replica_info(
    State(s): State<RouteState>,
) -> Result<Json<ReplicaInfo>, crate::api::ApiError> {
    Ok(Json(ReplicaInfo {
        status: s.replica.status().await,
        applied_height: s.ledger.applied_height().await?,
        evidence: s.replica.evidence().await,
    }))
}
