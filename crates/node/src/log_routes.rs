//! The read side of a node's transparency log, for auditors and peers.
//!
//! - `GET /v1/log/checkpoint` — the latest signed checkpoint (C2SP note, `text/plain`)
//! - `GET /v1/log/entries/{index}` — one leaf: kind, data (the canonical statement), hash
//! - `GET /v1/log/proof/inclusion?index=I&size=N` — audit path, hex, bottom-up
//! - `GET /v1/log/proof/consistency?from=M&to=N` — consistency proof, hex

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hallmark_store::TransparencyLog;
use serde::{Deserialize, Serialize};

use crate::api::ApiError;

/// `GET /v1/log/entries/{index}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntryView {
    pub index: u64,
    pub kind: String,
    /// The leaf data as text (canonical JSON of a DSSE envelope).
    pub data: String,
    pub leaf_hash: String,
    pub appended_ms: i64,
}

/// A proof answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofView {
    pub proof: Vec<String>,
    pub root: String,
}

#[derive(Deserialize)]
struct InclusionQuery {
    index: u64,
    size: u64,
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    from: u64,
    to: u64,
}

/// The log routes; `origin` and `key` sign checkpoints on demand.
pub fn router(log: TransparencyLog, origin: String, key: hallmark_core::Keypair) -> Router {
    Router::new()
        .route("/v1/log/checkpoint", get(checkpoint))
        .route("/v1/log/entries/{index}", get(entry))
        .route("/v1/log/proof/inclusion", get(inclusion))
        .route("/v1/log/proof/consistency", get(consistency))
        .with_state((log, origin, key))
}

type LogState = (TransparencyLog, String, hallmark_core::Keypair);

async fn checkpoint(State((log, origin, key)): State<LogState>) -> Result<Response, ApiError> {
    let note = log.checkpoint(&origin, &key).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        note.note,
    )
        .into_response())
}

fn bad_size(e: hallmark_store::StoreError) -> ApiError {
    match e {
        hallmark_store::StoreError::Conflict(m) => ApiError::bad_request("invalid_range", m),
        other => ApiError::from(other),
    }
}

async fn entry(
    State((log, _, _)): State<LogState>,
    Path(index): Path<String>,
) -> Result<Json<LogEntryView>, ApiError> {
    let i: u64 = index.parse().map_err(|_| {
        ApiError::bad_request("invalid_index", format!("{index:?} is not a leaf index"))
    })?;
    let e = log
        .entry(i)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no leaf {i}")))?;
    Ok(Json(LogEntryView {
        index: e.index,
        kind: e.kind,
        leaf_hash: hex::encode(hallmark_log::leaf_hash(&e.data)),
        data: String::from_utf8_lossy(&e.data).into_owned(),
        appended_ms: e.appended_ms,
    }))
}

fn proof_view(proof: &[hallmark_log::Hash], root: &hallmark_log::Hash) -> Json<ProofView> {
    Json(ProofView {
        proof: proof.iter().map(hex::encode).collect(),
        root: hex::encode(root),
    })
}

async fn inclusion(
    State((log, _, _)): State<LogState>,
    q: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ProofView>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let proof = log
        .inclusion_proof(q.index, q.size)
        .await
        .map_err(bad_size)?;
    let root = log.root_at(q.size).await.map_err(bad_size)?;
    Ok(proof_view(&proof, &root))
}

async fn consistency(
    State((log, _, _)): State<LogState>,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ProofView>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let proof = log
        .consistency_proof(q.from, q.to)
        .await
        .map_err(bad_size)?;
    let root = log.root_at(q.to).await.map_err(bad_size)?;
    Ok(proof_view(&proof, &root))
}
