//! A validator's distillation traces over HTTP: every verification it ran (witnesses and job
//! artifacts), oldest first.
//!
//! - `GET /v1/traces?since=MS&lane=L&cursor=ID&limit=N` — the public form
//!   ([`hallmark_core::trace::redact`]): digests and check outcomes, every record naming what
//!   it withholds, and the fields its party consented to show (statements kept on the
//!   coordinator, [`crate::consents`]);
//! - `POST /v1/traces/private` (signed; body the same query as JSON) — the traces as kept, only
//!   for the validator's operator: the coldkey the ledger lists for its hotkey.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hallmark_core::trace::{redact, PublicTrace, TraceConsent, VerificationTrace};
use hallmark_core::PublicKey;
use serde::{Deserialize, Serialize};

use hallmark_ledger::Ledger as _;

use crate::api::{parse_json, ApiError};
use crate::auth::verify_request;
use crate::consents::ConsentPage;
use crate::validator::Validator;

/// Keeps `trace` (recorded at its start time) and counts it in `metrics`: every
/// verification a validator runs passes here once.
pub(crate) async fn keep(
    store: &hallmark_store::Store,
    metrics: &crate::metrics::NodeMetrics,
    trace: &VerificationTrace,
) -> Result<(), hallmark_store::StoreError> {
    metrics.record_verification(&trace.lane, &trace.verdict, trace.elapsed_us);
    let text = serde_json::to_string(trace)
        .map_err(|e| hallmark_store::StoreError::Corrupt(format!("trace: {e}")))?;
    store
        .insert_trace(
            trace.started_ms,
            &trace.lane,
            &trace.kind,
            &trace.subject,
            &text,
        )
        .await?;
    Ok(())
}

/// How many traces a page holds unless the caller asks for another number.
pub const DEFAULT_TRACE_PAGE: u32 = 200;

/// Most private traces a page holds (each may carry up to 64 KiB of input bytes); a larger
/// `limit` is served this many.
pub const MAX_PRIVATE_TRACE_PAGE: u32 = 100;

/// Which traces to read.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    /// Only traces recorded at or after this time (unix ms).
    #[serde(default)]
    pub since: Option<i64>,
    /// Only this lane's.
    #[serde(default)]
    pub lane: Option<String>,
    /// After this trace id (the previous page's `next_cursor`).
    #[serde(default)]
    pub cursor: Option<i64>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One trace in a page: its id, when it was recorded, and the trace (public or private form).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TraceRecord<T> {
    pub id: i64,
    pub recorded_ms: i64,
    pub trace: T,
}

/// A page of traces.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TracePage<T> {
    pub traces: Vec<TraceRecord<T>>,
    /// Pass it back as `cursor` for the next page (the last id, or the cursor asked with).
    pub next_cursor: i64,
}

fn check_query(q: &TraceQuery) -> Result<u32, ApiError> {
    if q.since.is_some_and(|s| s < 0) {
        return Err(ApiError::bad_request(
            "invalid_since",
            "since is unix milliseconds, not negative",
        ));
    }
    if q.cursor.is_some_and(|c| c < 0) {
        return Err(ApiError::bad_request(
            "invalid_cursor",
            "cursor is a trace id, not negative",
        ));
    }
    if q.lane
        .as_ref()
        .is_some_and(|l| l.is_empty() || l.len() > 64)
    {
        return Err(ApiError::bad_request(
            "invalid_lane",
            "lane must be 1 to 64 characters",
        ));
    }
    match q.limit {
        None => Ok(DEFAULT_TRACE_PAGE),
        Some(n) if (1..=hallmark_store::MAX_TRACE_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(
            "invalid_limit",
            format!(
                "limit {n} is not from 1 to {}",
                hallmark_store::MAX_TRACE_PAGE
            ),
        )),
    }
}

async fn read(
    v: &Validator,
    q: &TraceQuery,
    max: u32,
) -> Result<Vec<(i64, i64, VerificationTrace)>, ApiError> {
    let limit = check_query(q)?.min(max);
    let rows = v
        .store
        .traces(
            q.since.unwrap_or(0),
            q.lane.as_deref(),
            q.cursor.unwrap_or(0),
            limit,
        )
        .await?;
    rows.into_iter()
        .map(|r| {
            let t: VerificationTrace = serde_json::from_str(&r.trace)
                .map_err(|e| ApiError::internal(format!("stored trace {}: {e}", r.id)))?;
            Ok((r.id, r.recorded_ms, t))
        })
        .collect()
}

fn page<T>(q: &TraceQuery, traces: Vec<TraceRecord<T>>) -> TracePage<T> {
    let next_cursor = traces.last().map_or(q.cursor.unwrap_or(0), |t| t.id);
    TracePage {
        traces,
        next_cursor,
    }
}

/// The current consent of each party among `traces`, read from the coordinator and checked
/// here against each party's own signature (the coordinator cannot forge one). Fails closed:
/// a party whose consent cannot be read or checked discloses nothing.
async fn consents_for(
    v: &Validator,
    traces: &[(i64, i64, VerificationTrace)],
) -> BTreeMap<PublicKey, TraceConsent> {
    let mut parties: Vec<PublicKey> = traces.iter().filter_map(|(_, _, t)| t.party).collect();
    parties.sort_by_key(|p| *p.as_bytes());
    parties.dedup();
    let mut out: BTreeMap<PublicKey, TraceConsent> = BTreeMap::new();
    for chunk in parties.chunks(crate::consents::MAX_CONSENT_PARTIES) {
        let list = chunk
            .iter()
            .map(|p| p.to_ss58())
            .collect::<Vec<_>>()
            .join(",");
        let page: ConsentPage = match v
            .coordinator
            .get(&format!("/v1/consents?parties={list}"))
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "trace consents unavailable; public traces disclose nothing");
                continue;
            }
        };
        for rec in page.consents {
            match TraceConsent::verify(&rec.envelope) {
                Ok(c) if chunk.contains(&c.party) => {
                    let newer = out.get(&c.party).is_none_or(|k| k.issued_ms < c.issued_ms);
                    if newer {
                        out.insert(c.party, c);
                    }
                }
                Ok(c) => {
                    tracing::warn!(party = %c.party, "the coordinator answered a consent nobody asked for")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the coordinator served a consent that does not verify")
                }
            }
        }
    }
    out
}

/// `GET /v1/traces`: the public form. A field is shown only where the trace's party signed a
/// consent covering it ([`TraceConsent`], kept on the coordinator); everything else that
/// consent could open is withheld and named in `withheld`.
pub async fn public_traces(
    State(v): State<Arc<Validator>>,
    q: Result<Query<TraceQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TracePage<PublicTrace>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let rows = read(&v, &q, hallmark_store::MAX_TRACE_PAGE).await?;
    let consents = consents_for(&v, &rows).await;
    let traces = rows
        .into_iter()
        .map(|(id, recorded_ms, t)| {
            let consented = t
                .party
                .and_then(|p| consents.get(&p))
                .map(|c| c.disclosed_in(&t))
                .unwrap_or_default();
            TraceRecord {
                id,
                recorded_ms,
                trace: redact(&t, &consented),
            }
        })
        .collect();
    Ok(Json(page(&q, traces)))
}

/// `POST /v1/traces/private`: the traces as kept, for the validator's operator only.
pub async fn private_traces(
    State(v): State<Arc<Validator>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<TracePage<VerificationTrace>>, ApiError> {
    let now = hallmark_core::time::now_unix();
    let (signer, signature) =
        verify_request(&headers, "POST", uri.path(), &body, now, v.skew_window_secs)?;
    let mg = v.ledger.metagraph().await?;
    let me = v.key.public();
    let operator = mg.neuron(&me).map(|n| n.coldkey).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_registered",
            "this validator is not registered on the ledger, so it has no operator yet",
        )
    })?;
    if signer != operator {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_operator",
            format!(
                "private traces are for this validator's operator ({}), not {signer}",
                operator.to_ss58()
            ),
        ));
    }
    // A captured request is not answered twice (the same persistent guard as witnesses).
    v.witness_replay
        .check(signature, now, v.skew_window_secs)
        .await?;
    let q: TraceQuery = parse_json(&body)?;
    let traces = read(&v, &q, MAX_PRIVATE_TRACE_PAGE)
        .await?
        .into_iter()
        .map(|(id, recorded_ms, trace)| TraceRecord {
            id,
            recorded_ms,
            trace,
        })
        .collect();
    Ok(Json(page(&q, traces)))
}
