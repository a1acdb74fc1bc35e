//! The ledger role over HTTP.
//!
//! - `GET  /v1/ledger/info` — chain id
//! - `GET  /v1/ledger/metagraph` — every registered neuron
//! - `POST /v1/ledger/tx` — a DSSE-signed [`hallmark_ledger::LedgerTx`] envelope
//! - `GET  /v1/ledger/weights/{epoch}` — validators' weights for an epoch
//! - `GET  /v1/ledger/accounts/{address}` — balance and nonce
//! - `GET  /v1/ledger/commitments/{validator}/{run_id}` — a score commitment and its signed tx
//! - `GET  /v1/ledger/equivocations` — evidence of double commitments
//! - `GET  /v1/ledger/slashes` — every slashing applied (job settlements, equivocations)
//! - `GET  /v1/ledger/jobs/{job_id}` — how a job was settled
//! - `GET  /v1/ledger/epochs/{epoch}/yuma` — the Yuma epoch (computing it closes the epoch)
//! - `/v1/log/…` — the transparency log of every applied transaction (see [`crate::log_routes`])

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hallmark_consensus::commitment::EquivocationEvidence;
use hallmark_core::{Envelope, PublicKey, Signed};
use hallmark_ledger::{
    Commitment, DevnetLedger, Ledger, Metagraph, SettledJob, Slash, TxReceipt, ValidatorWeights,
    YumaEpoch,
};
use serde::{Deserialize, Serialize};

use crate::api::{health, parse_json, ApiError};

/// `GET /v1/ledger/info`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerInfo {
    pub chain_id: String,
}

/// `GET /v1/ledger/accounts/{address}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountInfo {
    pub address: PublicKey,
    pub balance: u64,
    pub nonce: u64,
}

/// The ledger's routes over a devnet ledger; `key` signs the log's checkpoints.
pub fn router(ledger: Arc<DevnetLedger>, key: hallmark_core::Keypair) -> Router {
    let log = crate::log_routes::router(ledger.log().clone(), ledger.log_origin().to_string(), key);
    Router::new()
        .route(
            "/v1/ledger/commitments/{validator}/{run_id}",
            get(commitment),
        )
        .route("/v1/ledger/equivocations", get(equivocations))
        .route("/v1/ledger/slashes", get(slashes))
        .route("/v1/ledger/jobs/{job_id}", get(settled_job))
        .route("/v1/ledger/epochs/{epoch}/yuma", get(yuma))
        .route("/v1/health", get(health))
        .route("/v1/ledger/info", get(info))
        .route("/v1/ledger/metagraph", get(metagraph))
        .route("/v1/ledger/tx", post(submit))
        .route("/v1/ledger/weights/{epoch}", get(weights))
        .route("/v1/ledger/accounts/{address}", get(account))
        .with_state(ledger)
        .merge(log)
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

async fn settled_job(
    State(l): State<Arc<DevnetLedger>>,
    Path(job_id): Path<String>,
) -> Result<Json<SettledJob>, ApiError> {
    l.settled_job(&job_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("job {job_id:?} is not settled")))
}

async fn yuma(
    State(l): State<Arc<DevnetLedger>>,
    Path(epoch): Path<String>,
) -> Result<Json<YumaEpoch>, ApiError> {
    Ok(Json(l.yuma_epoch(parse_epoch(&epoch)?).await?))
}

async fn info(State(l): State<Arc<DevnetLedger>>) -> Json<LedgerInfo> {
    Json(LedgerInfo {
        chain_id: l.chain_id().to_string(),
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

async fn weights(
    State(l): State<Arc<DevnetLedger>>,
    Path(epoch): Path<String>,
) -> Result<Json<Vec<ValidatorWeights>>, ApiError> {
    let epoch: u64 = epoch.parse().map_err(|_| {
        ApiError::bad_request("invalid_epoch", format!("{epoch:?} is not an epoch number"))
    })?;
    Ok(Json(l.weights(epoch).await?))
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
