//! The read side of a node's transparency log, for auditors and peers.
//!
//! - `GET /v1/log/checkpoint` — the latest signed checkpoint (C2SP note, `text/plain`)
//! - `GET /v1/log/entries/{index}` — one leaf: kind, data (the canonical statement), hash
//! - `GET /v1/log/proof/inclusion?index=I&size=N` — audit path, hex, bottom-up
//! - `GET /v1/log/proof/consistency?from=M&to=N` — consistency proof, hex
//! - `GET /v1/feed?cursor=MS:INDEX&limit=N&kind=K` — the public feed: the log's signed
//!   statements oldest first from any cursor, each with its inclusion proof under a checkpoint
//!   of the current size (a receipt `hallmark verify receipt` checks offline)

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hallmark_store::{FeedCursor, TransparencyLog};
use serde::{Deserialize, Serialize};

use crate::api::ApiError;

/// `GET /v1/log/entries/{index}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogEntryView {
    pub index: u64,
    pub kind: String,
    /// The leaf data as text (canonical JSON of a DSSE envelope).
    pub data: String,
    pub leaf_hash: String,
    pub appended_ms: i64,
}

/// A proof answer.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProofView {
    pub proof: Vec<String>,
    pub root: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct InclusionQuery {
    index: u64,
    size: u64,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ConsistencyQuery {
    from: u64,
    to: u64,
}

/// How many feed items a page holds unless the caller asks for another number.
pub const DEFAULT_FEED_PAGE: u32 = 100;

/// One statement of the feed.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FeedItem {
    /// Pass it back as `cursor` to continue after this item.
    pub cursor: String,
    pub timestamp_ms: i64,
    pub index: u64,
    pub kind: String,
    /// The logged statement (canonical JSON; a DSSE envelope for signed statements).
    pub statement: serde_json::Value,
    /// Its inclusion under `checkpoint`.
    pub log: hallmark_log::LogProof,
}

/// `GET /v1/feed`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FeedPage {
    pub items: Vec<FeedItem>,
    /// Where the next page starts (the last item's cursor, or the one asked for).
    pub next_cursor: String,
    /// The signed checkpoint of the log's current size every proof of this page is under
    /// (signed for the answer, not stored: a GET writes nothing).
    pub checkpoint: String,
    pub tree_size: u64,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct FeedQuery {
    cursor: Option<String>,
    limit: Option<String>,
    kind: Option<String>,
}

/// The log routes; `origin` and `key` sign checkpoints on demand.
pub fn router(log: TransparencyLog, origin: String, key: hallmark_core::Keypair) -> Router {
    Router::new()
        .route("/v1/feed", get(feed))
        .route("/v1/log/checkpoint", get(checkpoint))
        .route("/v1/log/entries/{index}", get(entry))
        .route("/v1/log/proof/inclusion", get(inclusion))
        .route("/v1/log/proof/consistency", get(consistency))
        .with_state((log, origin, key))
}

/// Describes [`router`]'s routes for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    spec.get("/v1/feed", "Log entries after an index")
        .query::<FeedQuery>()
        .ok::<FeedPage>()
        .errors(&[(400, "Bad query")]);
    spec.get(
        "/v1/log/checkpoint",
        "The log's signed checkpoint (a C2SP signed note)",
    )
    .content(200, "text/plain; charset=utf-8", "The signed note");
    spec.get("/v1/log/entries/{index}", "One log entry")
        .ok::<LogEntryView>()
        .errors(&[(400, "Bad index"), (404, "Beyond the log")]);
    spec.get("/v1/log/proof/inclusion", "An inclusion proof")
        .query::<InclusionQuery>()
        .ok::<ProofView>()
        .errors(&[(400, "Bad query or range")]);
    spec.get("/v1/log/proof/consistency", "A consistency proof")
        .query::<ConsistencyQuery>()
        .ok::<ProofView>()
        .errors(&[(400, "Bad query or range")]);
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

async fn feed(
    State((log, origin, key)): State<LogState>,
    q: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FeedPage>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let cursor: FeedCursor = match &q.cursor {
        None => FeedCursor::default(),
        Some(c) => c
            .parse()
            .map_err(|m: String| ApiError::bad_request("invalid_cursor", m))?,
    };
    let limit = match &q.limit {
        None => DEFAULT_FEED_PAGE,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=hallmark_store::MAX_FEED_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_limit",
                    format!(
                        "limit {l:?} is not a number from 1 to {}",
                        hallmark_store::MAX_FEED_PAGE
                    ),
                ))
            }
        },
    };
    if q.kind
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 64)
    {
        return Err(ApiError::bad_request(
            "invalid_kind",
            "kind must be 1 to 64 characters",
        ));
    }
    let note = log.signed_head(&origin, &key).await?;
    let cp = note
        .checkpoint_unverified()
        .map_err(|e| ApiError::internal(format!("stored checkpoint: {e}")))?;
    let entries = log
        .feed_page(cursor, cp.size, q.kind.as_deref(), limit)
        .await?;
    let mut items = Vec::with_capacity(entries.len());
    for e in entries {
        let proof = log
            .inclusion_proof(e.index, cp.size)
            .await
            .map_err(bad_size)?;
        let statement = serde_json::from_slice(&e.data)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&e.data).into()));
        let at = FeedCursor {
            ms: e.appended_ms,
            index: Some(e.index),
        };
        items.push(FeedItem {
            cursor: at.to_string(),
            timestamp_ms: e.appended_ms,
            index: e.index,
            kind: e.kind,
            statement,
            log: hallmark_log::LogProof {
                log_index: e.index,
                tree_size: cp.size,
                inclusion_proof: proof.iter().map(hex::encode).collect(),
                checkpoint: note.note.clone(),
            },
        });
    }
    let next_cursor = items
        .last()
        .map_or_else(|| cursor.to_string(), |i| i.cursor.clone());
    Ok(Json(FeedPage {
        items,
        next_cursor,
        checkpoint: note.note,
        tree_size: cp.size,
    }))
}
