//! The ledger role over HTTP.
//!
//! - `GET  /v1/ledger/info` — chain id
//! - `GET  /v1/ledger/metagraph` — every registered neuron
//! - `POST /v1/ledger/tx` — a DSSE-signed [`hallmark_ledger::LedgerTx`] envelope (on a
//!   replica: answered once the block holding it is decided and applied here)
//! - `POST /v1/ledger/mempool` — a transaction another replica forwarded (replicas only;
//!   `404 not_found` on a single sequencer)
//! - `GET  /v1/ledger/weights/{epoch}?lane=L` — validators' weights for a round lane's epoch
//! - `GET  /v1/ledger/accounts/{address}` — balance and nonce
//! - `GET  /v1/ledger/commitments/{validator}/{run_id}` — a score commitment and its signed tx
//! - `GET  /v1/ledger/equivocations` — evidence of double commitments
//! - `GET  /v1/ledger/slashes` — every slashing applied (job settlements, equivocations)
//! - `GET  /v1/ledger/jobs/{job_id}` — how a job was settled
//! - `GET  /v1/ledger/epochs/{epoch}/yuma?lane=L` — a closed round-lane epoch's Yuma result
//!   (404 `epoch_open` until a transaction closes it; reads never write)
//! - `GET  /v1/ledger/head` — last sequence number, its hash, block time and state root
//! - `GET  /v1/ledger/state?key=K` — a state value with its Merkle proof and the signed header
//!   (check offline: `hallmark verify ledger-read`)
//! - `GET  /v1/ledger/stakes/{hotkey}` — a hotkey's stake, tier and lock
//! - `GET  /v1/ledger/confidential/{hotkey}` — a worker's encrypted balance and hint
//! - `POST /v1/ledger/faucet` — `{address}`: a devnet drip, rate-limited per address
//! - `/v1/log/…` — the transparency log of every applied transaction (see [`crate::log_routes`])

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hallmark_consensus::commitment::EquivocationEvidence;
use hallmark_core::Keypair;
use hallmark_core::{Envelope, PublicKey, Signed};
use hallmark_ledger::{
    Commitment, ConfidentialAccount, DevnetLedger, Ledger, LedgerParams, LedgerTx, Metagraph,
    SettledJob, Slash, StakeInfo, TxBody, TxReceipt, ValidatorWeights, YumaEpoch,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::api::{health, parse_json, ApiError};

/// `GET /v1/ledger/info`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LedgerInfo {
    pub chain_id: String,
    /// The rules the ledger enforces (tiers, locks, heartbeats, job reward).
    #[serde(default)]
    pub params: Option<LedgerParams>,
    /// The faucet's drip and interval, if it runs one.
    #[serde(default)]
    pub faucet: Option<FaucetInfo>,
    /// The key that signs this ledger's headers (state reads) and log checkpoints.
    #[serde(default)]
    pub header_key: Option<PublicKey>,
}

/// What the faucet gives and how often.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FaucetInfo {
    pub amount: u64,
    pub interval_secs: u64,
}

/// `POST /v1/ledger/faucet` body.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaucetRequest {
    pub address: PublicKey,
}

/// What a drip did.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FaucetDrip {
    pub address: PublicKey,
    pub amount: u64,
    /// The address's public balance after the drip.
    pub balance: u64,
    pub receipt: TxReceipt,
}

/// The devnet faucet: a funded key whose transfers the ledger signs itself, at most one per
/// address per interval.
pub struct Faucet {
    key: Keypair,
    amount: u64,
    interval_secs: u64,
    budget: u64,
    /// One drip at a time, so the faucet's nonces never race.
    signing: Mutex<()>,
}

impl Faucet {
    /// A faucet paying `amount` from `key` at most every `interval_secs` per address, and at
    /// most `budget` to all addresses together per interval.
    pub fn new(key: Keypair, amount: u64, interval_secs: u64, budget: u64) -> Self {
        Self {
            key,
            amount,
            interval_secs,
            budget,
            signing: Mutex::new(()),
        }
    }
}

#[derive(Clone)]
struct FaucetState {
    ledger: Arc<DevnetLedger>,
    faucet: Option<Arc<Faucet>>,
}

/// `GET /v1/ledger/accounts/{address}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccountInfo {
    pub address: PublicKey,
    pub balance: u64,
    pub nonce: u64,
}

/// The ledger's routes over a devnet ledger; `key` signs the log's checkpoints; `faucet`
/// (devnet only) answers `POST /v1/ledger/faucet`.
pub fn router(
    ledger: Arc<DevnetLedger>,
    key: hallmark_core::Keypair,
    faucet: Option<Faucet>,
) -> Router {
    let log = crate::log_routes::router(ledger.log().clone(), ledger.log_origin().to_string(), key);
    let faucet_routes = Router::new()
        .route("/v1/ledger/faucet", post(drip))
        .route("/v1/ledger/info", get(info))
        .with_state(FaucetState {
            ledger: ledger.clone(),
            faucet: faucet.map(Arc::new),
        });
    Router::new()
        .route("/v1/ledger/stakes/{hotkey}", get(stake))
        .route("/v1/ledger/confidential/{hotkey}", get(confidential))
        .route(
            "/v1/ledger/commitments/{validator}/{run_id}",
            get(commitment),
        )
        .route("/v1/ledger/equivocations", get(equivocations))
        .route("/v1/ledger/slashes", get(slashes))
        .route("/v1/ledger/jobs/{job_id}", get(settled_job))
        .route("/v1/ledger/build-managers", get(build_managers))
        .route("/v1/ledger/build-info", get(build_infos))
        .route("/v1/ledger/build-info/{wasm_sha256}", get(build_info))
        .route("/v1/ledger/epochs/{epoch}/yuma", get(yuma))
        .route("/v1/ledger/head", get(head))
        .route("/v1/ledger/state", get(state_read))
        .route("/v1/ledger/archives/{archive_sha256}", get(archive_commit))
        .route("/v1/ledger/anchor", get(anchor))
        .route("/v1/health", get(health))
        .route("/v1/ledger/metagraph", get(metagraph))
        .route("/v1/ledger/tx", post(submit))
        .route("/v1/ledger/mempool", post(mempool))
        .route("/v1/ledger/weights/{epoch}", get(weights))
        .route("/v1/ledger/accounts/{address}", get(account))
        .with_state(ledger)
        .merge(faucet_routes)
        .merge(log)
}

/// Describes [`router`]'s routes for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    use hallmark_core::dsse::Envelope;
    spec.get("/v1/health", "Liveness")
        .content(200, "application/json", "`{\"status\":\"ok\"}`");
    spec.post("/v1/ledger/faucet", "Drip devnet tokens")
        .body::<FaucetRequest>()
        .json::<FaucetDrip>(201, "Dripped")
        .errors(&[
            (400, "Malformed address"),
            (404, "No faucet on this network"),
            (429, "Rate limited"),
        ]);
    spec.get("/v1/ledger/info", "The chain's identity and the faucet")
        .ok::<LedgerInfo>();
    spec.get("/v1/ledger/stakes/{hotkey}", "A hotkey's stake")
        .ok::<StakeInfo>()
        .errors(&[(400, "Not an SS58 address")]);
    spec.get("/v1/ledger/confidential/{hotkey}", "A confidential account")
        .ok::<ConfidentialAccount>()
        .errors(&[
            (400, "Not an SS58 address"),
            (404, "No confidential account"),
        ]);
    spec.get(
        "/v1/ledger/commitments/{validator}/{run_id}",
        "A validator's commitment for a run",
    )
    .ok::<Commitment>()
    .errors(&[(400, "Bad address"), (404, "No commitment")]);
    spec.get(
        "/v1/ledger/equivocations",
        "Equivocation evidence on the ledger",
    )
    .ok::<Vec<EquivocationEvidence>>();
    spec.get("/v1/ledger/slashes", "Slashes applied")
        .ok::<Vec<Slash>>();
    spec.get("/v1/ledger/jobs/{job_id}", "A settled job")
        .ok::<SettledJob>()
        .errors(&[(404, "Not settled")]);
    spec.get("/v1/ledger/build-managers", "Who may record build info")
        .ok::<hallmark_ledger::BuildManagers>();
    spec.get(
        "/v1/ledger/build-info",
        "Build info recorded since a height",
    )
    .query::<SinceQuery>()
    .ok::<Vec<hallmark_ledger::BuildInfo>>();
    spec.get("/v1/ledger/build-info/{wasm_sha256}", "A wasm's build info")
        .ok::<hallmark_ledger::BuildInfo>()
        .errors(&[(400, "Not a SHA-256"), (404, "None recorded")]);
    spec.get(
        "/v1/ledger/epochs/{epoch}/yuma",
        "An epoch's Yuma consensus",
    )
    .query::<LaneQuery>()
    .ok::<YumaEpoch>()
    .errors(&[(400, "Bad epoch or lane"), (404, "Not computed")]);
    spec.get("/v1/ledger/head", "The chain head")
        .ok::<hallmark_ledger::LedgerHead>();
    spec.get("/v1/ledger/state", "A state read with its proof")
        .query::<StateQuery>()
        .ok::<hallmark_ledger::LedgerRead>()
        .errors(&[(400, "Bad key")]);
    spec.get(
        "/v1/ledger/archives/{archive_sha256}",
        "An archive's commitment",
    )
    .ok::<hallmark_ledger::ArchiveCommit>()
    .errors(&[(400, "Not a SHA-256"), (404, "Not committed")]);
    spec.get("/v1/ledger/anchor", "The ledger's anchor in the log")
        .query::<AnchorQuery>()
        .ok::<hallmark_ledger::LedgerAnchor>()
        .errors(&[(400, "Bad query"), (404, "No anchor")]);
    spec.get("/v1/ledger/metagraph", "Every neuron with stake and tier")
        .ok::<Metagraph>();
    spec.post("/v1/ledger/tx", "Submit a signed transaction")
        .body::<Envelope>()
        .json::<TxReceipt>(201, "Applied")
        .errors(&[
            (400, "Malformed or wrongly signed"),
            (402, "Insufficient balance"),
            (409, "Bad nonce or refused by the state machine"),
        ]);
    spec.post(
        "/v1/ledger/mempool",
        "Queue a signed transaction for the next block",
    )
    .body::<Envelope>()
    .empty(202, "Queued")
    .errors(&[(400, "Malformed or wrongly signed"), (503, "Mempool full")]);
    spec.get("/v1/ledger/weights/{epoch}", "An epoch's weights")
        .query::<LaneQuery>()
        .ok::<Vec<ValidatorWeights>>()
        .errors(&[(400, "Bad epoch or lane")]);
    spec.get(
        "/v1/ledger/accounts/{address}",
        "An account's balance and nonce",
    )
    .ok::<AccountInfo>()
    .errors(&[(400, "Not an SS58 address")]);
}

async fn stake(
    State(l): State<Arc<DevnetLedger>>,
    Path(hotkey): Path<String>,
) -> Result<Json<StakeInfo>, ApiError> {
    let key = parse_key(&hotkey)?;
    l.stake(&key)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("{hotkey} has no stake")))
}

async fn confidential(
    State(l): State<Arc<DevnetLedger>>,
    Path(hotkey): Path<String>,
) -> Result<Json<ConfidentialAccount>, ApiError> {
    let key = parse_key(&hotkey)?;
    l.confidential_account(&key)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("{hotkey} has no payment key")))
}

async fn drip(
    State(s): State<FaucetState>,
    body: Bytes,
) -> Result<(StatusCode, Json<FaucetDrip>), ApiError> {
    let Some(f) = &s.faucet else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "faucet_disabled",
            "this ledger runs no faucet (ledger.faucet.key_file is not set)",
        ));
    };
    let req: FaucetRequest = parse_json(&body)?;
    let interval_ms = i64::try_from(f.interval_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    // Drips are serialised (one sequencer, one faucet key), so reading the last drip and
    // recording this one cannot interleave with another request's.
    let _one_at_a_time = f.signing.lock().await;
    let now = hallmark_core::time::now_unix_ms();
    if let Some(last) = s.ledger.faucet_last(&req.address).await? {
        let wait_ms = interval_ms.saturating_sub(now.saturating_sub(last));
        if wait_ms > 0 {
            let retry_after_secs = (wait_ms + 999) / 1000;
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "{} drew from the faucet less than {} s ago; try again in {retry_after_secs} s",
                    req.address, f.interval_secs
                ),
            )
            .with_details(serde_json::json!({ "retry_after_secs": retry_after_secs })));
        }
    }
    let paid = s
        .ledger
        .faucet_paid_since(now.saturating_sub(interval_ms))
        .await?;
    if paid.saturating_add(f.amount) > f.budget {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "faucet_exhausted",
            format!(
                "the faucet paid {paid} in the last {} s, and pays at most {} per interval to everyone together",
                f.interval_secs, f.budget
            ),
        ));
    }
    let (_, last_nonce) = s.ledger.balance(&f.key.public()).await?;
    let tx = LedgerTx {
        chain_id: s.ledger.chain_id().to_string(),
        nonce: last_nonce + 1,
        body: TxBody::Transfer {
            to: req.address,
            amount: f.amount,
        },
    };
    let signed = Signed::sign(&tx, &f.key).map_err(ApiError::internal)?;
    let receipt = match s.ledger.submit(signed).await {
        Ok(r) => r,
        Err(hallmark_ledger::LedgerError::InsufficientBalance { balance, .. }) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "faucet_empty",
                format!("the faucet has {balance} left, less than one drip"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    // Recorded only once the transfer is applied: a refused drip does not use up the slot.
    s.ledger
        .record_faucet_drip(&req.address, now, f.amount)
        .await?;
    let (balance, _) = s.ledger.balance(&req.address).await?;
    Ok((
        StatusCode::CREATED,
        Json(FaucetDrip {
            address: req.address,
            amount: f.amount,
            balance,
            receipt,
        }),
    ))
}

fn parse_key(s: &str) -> Result<PublicKey, ApiError> {
    s.parse()
        .map_err(|e| ApiError::bad_request("invalid_address", format!("{s:?}: {e}")))
}

fn parse_epoch(s: &str) -> Result<u64, ApiError> {
    s.parse().map_err(|_| {
        ApiError::bad_request("invalid_epoch", format!("{s:?} is not an epoch number"))
    })
}

async fn commitment(
    State(l): State<Arc<DevnetLedger>>,
    Path((validator, run_id)): Path<(String, String)>,
) -> Result<Json<Commitment>, ApiError> {
    let key = parse_key(&validator)?;
    l.commitment(&key, &run_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("{validator} has no commitment for {run_id:?}")))
}

async fn equivocations(
    State(l): State<Arc<DevnetLedger>>,
) -> Result<Json<Vec<EquivocationEvidence>>, ApiError> {
    Ok(Json(l.equivocations().await?))
}

async fn slashes(State(l): State<Arc<DevnetLedger>>) -> Result<Json<Vec<Slash>>, ApiError> {
    Ok(Json(l.slashes().await?))
}

async fn build_managers(
    State(l): State<Arc<DevnetLedger>>,
) -> Result<Json<hallmark_ledger::BuildManagers>, ApiError> {
    Ok(Json(l.build_managers().await?))
}

async fn build_info(
    State(l): State<Arc<DevnetLedger>>,
    Path(sha): Path<String>,
) -> Result<Json<hallmark_ledger::BuildInfo>, ApiError> {
    l.build_info(&sha)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no build info for {sha:?}")))
}

async fn archive_commit(
    State(l): State<Arc<DevnetLedger>>,
    Path(sha): Path<String>,
) -> Result<Json<hallmark_ledger::ArchiveCommit>, ApiError> {
    l.archive_commit(&sha)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no commitment to archive {sha:?}")))
}

/// `?at_ms=T`: the ledger anchor at T.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct AnchorQuery {
    at_ms: i64,
}

async fn anchor(
    State(l): State<Arc<DevnetLedger>>,
    axum::extract::Query(q): axum::extract::Query<AnchorQuery>,
) -> Result<Json<hallmark_ledger::LedgerAnchor>, ApiError> {
    if !(0..=i64::MAX / 2).contains(&q.at_ms) {
        return Err(ApiError::bad_request(
            "invalid_at_ms",
            "at_ms is out of range",
        ));
    }
    l.anchor(q.at_ms).await?.map(Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "no transaction applied at or after {} yet",
            q.at_ms
        ))
    })
}

/// `?since_seq=N&limit=M`: registry entries written after transaction N.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct SinceQuery {
    #[serde(default)]
    since_seq: u64,
    #[serde(default)]
    limit: Option<u32>,
}

async fn build_infos(
    State(l): State<Arc<DevnetLedger>>,
    axum::extract::Query(q): axum::extract::Query<SinceQuery>,
) -> Result<Json<Vec<hallmark_ledger::BuildInfo>>, ApiError> {
    if q.since_seq > i64::MAX as u64 {
        return Err(ApiError::bad_request(
            "invalid_since_seq",
            "since_seq is past the ledger's range",
        ));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    Ok(Json(l.build_infos_since(q.since_seq, limit).await?))
}

async fn settled_job(
    State(l): State<Arc<DevnetLedger>>,
    Path(job_id): Path<String>,
) -> Result<Json<SettledJob>, ApiError> {
    l.settled_job(&job_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("job {job_id:?} is not settled")))
}

/// `?lane=L`: which round lane's epochs a weights or Yuma read is about.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct LaneQuery {
    lane: Option<String>,
}

impl LaneQuery {
    fn lane(self) -> Result<String, ApiError> {
        match self.lane {
            Some(l) if !l.is_empty() && l.len() <= 32 => Ok(l),
            _ => Err(ApiError::bad_request(
                "invalid_lane",
                "weights and epochs are per round lane: add ?lane=NAME (`hallmark lanes` lists them)",
            )),
        }
    }
}

async fn yuma(
    State(l): State<Arc<DevnetLedger>>,
    Path(epoch): Path<String>,
    Query(q): Query<LaneQuery>,
) -> Result<Json<YumaEpoch>, ApiError> {
    let epoch = parse_epoch(&epoch)?;
    Ok(Json(l.yuma_epoch(&q.lane()?, epoch).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
struct StateQuery {
    key: Option<String>,
}

async fn state_read(
    State(l): State<Arc<DevnetLedger>>,
    Query(q): Query<StateQuery>,
) -> Result<Json<hallmark_ledger::LedgerRead>, ApiError> {
    let Some(key) = q.key.filter(|k| !k.is_empty() && k.len() <= 512) else {
        return Err(ApiError::bad_request(
            "invalid_key",
            "name a state key of 1..=512 characters: ?key=account/SS58 (see ARCHITECTURE.md)",
        ));
    };
    Ok(Json(l.read(&key).await?))
}

async fn head(State(l): State<Arc<DevnetLedger>>) -> Json<hallmark_ledger::LedgerHead> {
    Json(l.head().await)
}

async fn info(State(s): State<FaucetState>) -> Json<LedgerInfo> {
    Json(LedgerInfo {
        chain_id: s.ledger.chain_id().to_string(),
        params: Some(s.ledger.params().clone()),
        faucet: s.faucet.as_ref().map(|f| FaucetInfo {
            amount: f.amount,
            interval_secs: f.interval_secs,
        }),
        header_key: Some(s.ledger.header_key()),
    })
}

async fn metagraph(State(l): State<Arc<DevnetLedger>>) -> Result<Json<Metagraph>, ApiError> {
    Ok(Json(l.metagraph().await?))
}

async fn submit(
    State(l): State<Arc<DevnetLedger>>,
    body: Bytes,
) -> Result<(StatusCode, Json<TxReceipt>), ApiError> {
    let env: Envelope = parse_json(&body)?;
    let receipt = l.submit(Signed::from_envelope(env)).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// A transaction another replica forwarded: queued after the same checks as any submission,
/// and not forwarded again.
async fn mempool(State(l): State<Arc<DevnetLedger>>, body: Bytes) -> Result<StatusCode, ApiError> {
    let env: Envelope = parse_json(&body)?;
    l.accept_forwarded(Signed::from_envelope(env)).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn weights(
    State(l): State<Arc<DevnetLedger>>,
    Path(epoch): Path<String>,
    Query(q): Query<LaneQuery>,
) -> Result<Json<Vec<ValidatorWeights>>, ApiError> {
    let epoch: u64 = epoch.parse().map_err(|_| {
        ApiError::bad_request("invalid_epoch", format!("{epoch:?} is not an epoch number"))
    })?;
    Ok(Json(l.weights(&q.lane()?, epoch).await?))
}

async fn account(
    State(l): State<Arc<DevnetLedger>>,
    Path(address): Path<String>,
) -> Result<Json<AccountInfo>, ApiError> {
    let key: PublicKey = address
        .parse()
        .map_err(|e| ApiError::bad_request("invalid_address", format!("{address:?}: {e}")))?;
    let (balance, nonce) = l.balance(&key).await?;
    Ok(Json(AccountInfo {
        address: key,
        balance,
        nonce,
    }))
}
