//! The coordinator's dashboard: a page a person reads at a glance, served by the node itself
//! with every asset embedded (nothing is loaded from elsewhere).
//!
//! - `GET /` — the page; `GET /dashboard.js`, `GET /dashboard.css` — its script and style
//!   (a content security policy allows nothing but these)
//! - `GET /v1/dashboard` — what the page shows, as JSON: validators and workers with stake and
//!   tier, each round lane's current round, jobs per lane and status, the latest decided
//!   round's consensus and agreement, scores over the recent rounds, the coordinator log's size
//!   and checkpoint, equivocations and slashes, listings and builds. The page polls it.
//!
//! The answer is assembled from the store, the ledger and the validators (each asked with a
//! short timeout, so a dead one costs little) and kept for two seconds: many open pages cost
//! one assembly per interval. Reading it writes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hallmark_core::RoundId;
use hallmark_ledger::{Ledger as _, Role};
use hallmark_store::{Store, TransparencyLog};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::api::ApiError;
use crate::client::NodeClient;
use crate::http_ledger::HttpLedger;
use crate::lanes::LaneRegistry;
use crate::messages::RoundResult;

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/dashboard.js");
const STYLE: &str = include_str!("dashboard/dashboard.css");

/// How long an assembled answer is served again.
const CACHE_FOR: Duration = Duration::from_secs(2);
/// How long one validator is waited for.
const PEER_TIMEOUT: Duration = Duration::from_millis(1500);
/// How many recent rounds the score chart covers.
const CHART_ROUNDS: u64 = 12;
/// The most one assembly spends asking validators: past it, the rest of the peers are
/// skipped (the page shows what was gathered), so dead validators cannot stall the page.
const PEER_BUDGET: Duration = Duration::from_secs(4);

/// The dashboard's state.
pub struct Dashboard {
    store: Store,
    log: TransparencyLog,
    ledger: HttpLedger,
    lanes: LaneRegistry,
    peers: NodeClient,
    cache: Mutex<Option<(Instant, Arc<Value>)>>,
}

impl Dashboard {
    /// A dashboard over the coordinator's `store` and `log`, the `ledger`, and the validators
    /// the ledger lists.
    pub fn new(
        store: Store,
        log: TransparencyLog,
        ledger: HttpLedger,
        lanes: LaneRegistry,
    ) -> Self {
        Self {
            store,
            log,
            ledger,
            lanes,
            peers: NodeClient::new("http://127.0.0.1"),
            cache: Mutex::new(None),
        }
    }

    async fn peer_get<T: serde::de::DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        budget_ends: Instant,
    ) -> Option<T> {
        let left = budget_ends.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        tokio::time::timeout(left.min(PEER_TIMEOUT), self.peers.at(base).get::<T>(path))
            .await
            .ok()?
            .ok()
    }

    /// The current answer, assembled at most once per [`CACHE_FOR`].
    pub async fn snapshot(&self) -> Result<Arc<Value>, ApiError> {
        let mut cache = self.cache.lock().await;
        if let Some((at, v)) = cache.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return Ok(v.clone());
            }
        }
        let v = Arc::new(self.assemble().await?);
        *cache = Some((Instant::now(), v.clone()));
        Ok(v)
    }

    async fn assemble(&self) -> Result<Value, ApiError> {
        let now = hallmark_core::time::now_unix_ms();
        let (mg, ledger_error) = match self.ledger.metagraph().await {
            Ok(mg) => (Some(mg), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let neuron = |n: &hallmark_ledger::Neuron| {
            json!({"uid": n.uid, "hotkey": n.hotkey, "coldkey": n.coldkey, "stake": n.stake,
                   "voting_stake": n.voting_stake, "tier": n.tier, "axon": n.axon})
        };
        let validators: Vec<Value> = mg
            .iter()
            .flat_map(|m| m.neurons.iter().filter(|n| n.role == Role::Validator))
            .map(neuron)
            .collect();
        let workers: Vec<Value> = mg
            .iter()
            .flat_map(|m| m.neurons.iter().filter(|n| n.role == Role::Worker))
            .map(neuron)
            .collect();
        let axons: Vec<String> = mg
            .iter()
            .flat_map(|m| m.validators())
            .filter_map(|n| n.axon.clone())
            .collect();

        // Round lanes: the current round, and the validators' results of the recent ones.
        let budget_ends = Instant::now() + PEER_BUDGET;
        let mut rounds = Vec::new();
        let mut consensus = Vec::new();
        let mut scores = Vec::new();
        for lane in self.lanes.round_lane_names() {
            let Some(latest) = self.store.latest_round(lane).await? else {
                continue;
            };
            let deadline = serde_json::from_str::<Value>(&latest.body)
                .ok()
                .and_then(|env| {
                    let payload = env["payload"].as_str()?.to_string();
                    let bytes = base64_decode(&payload)?;
                    serde_json::from_slice::<Value>(&bytes).ok()
                })
                .and_then(|a| a["deadline_ms"].as_i64());
            rounds.push(
                json!({"lane": lane, "round_id": latest.round_id, "number": latest.number,
                               "deadline_ms": deadline, "open": deadline.is_some_and(|d| d > now)}),
            );
            // The newest decided round: every validator's result, for agreement.
            let mut decided = None;
            for n in (latest.number.saturating_sub(CHART_ROUNDS - 1).max(1)..=latest.number).rev() {
                let id = RoundId::for_lane(lane, n);
                let path = format!("/v1/rounds/{id}/result");
                let mut first = None;
                for axon in &axons {
                    if let Some(r) = self.peer_get::<RoundResult>(axon, &path, budget_ends).await {
                        first = Some(r);
                        break;
                    }
                }
                let Some(r) = first else { continue };
                if decided.is_none() {
                    let mut votes = Vec::new();
                    for axon in &axons {
                        if let Some(v) =
                            self.peer_get::<RoundResult>(axon, &path, budget_ends).await
                        {
                            votes.push(json!({"validator": v.validator, "agrees": v.agrees,
                                              "winner": v.winner, "quorum_met": v.quorum_met}));
                        }
                    }
                    let agreeing = votes.iter().filter(|v| v["agrees"] == true).count();
                    decided = Some(json!({"lane": lane, "round_id": id, "winner": r.winner,
                        "quorum_met": r.quorum_met, "reporting_stake": r.reporting_stake,
                        "total_stake": r.total_stake, "agreeing": agreeing,
                        "reporting": votes.len(), "validators": votes}));
                }
                scores.push(json!({"lane": lane, "round_id": id, "number": n,
                                   "winner": r.winner, "scores": r.consensus}));
            }
            if let Some(d) = decided {
                consensus.push(d);
            }
        }
        scores.reverse();

        // Jobs per lane and status (the most recent thousand).
        let mut jobs: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for j in self.store.jobs(None, 1000).await? {
            *jobs
                .entry(j.lane.clone())
                .or_default()
                .entry(j.status.clone())
                .or_default() += 1;
        }
        let checkpoint = self.log.latest_checkpoint().await?.map(|c| c.note);
        let listings: Vec<Value> = self
            .store
            .compute_providers(None)
            .await?
            .into_iter()
            .map(|p| {
                json!({"node_id": p.node_id, "provider": p.hotkey, "listed": p.listed,
                            "production": p.production, "listed_until_ms": p.listed_until_ms,
                            "claimed": p.claimed_by.is_some(), "last_health_ms": p.last_health_ms})
            })
            .collect();
        let builds: Vec<Value> = self
            .store
            .build_verifications(20)
            .await?
            .into_iter()
            .map(|b| {
                json!({"id": b.id, "wasm_sha256": b.wasm_sha256, "status": b.status,
                            "recipe_source": b.recipe_source, "job_id": b.job_id})
            })
            .collect();
        let equivocations = self
            .ledger
            .equivocations()
            .await
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            .unwrap_or(Value::Array(vec![]));
        let slashes = self
            .ledger
            .slashes()
            .await
            .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
            .unwrap_or(Value::Array(vec![]));
        Ok(json!({
            "generated_ms": now,
            "ledger_error": ledger_error,
            "validators": validators,
            "workers": workers,
            "rounds": rounds,
            "consensus": consensus,
            "scores": scores,
            "jobs": jobs,
            "log": {"size": self.log.size().await, "checkpoint": checkpoint},
            "equivocations": equivocations,
            "slashes": slashes,
            "listings": listings,
            "builds": builds,
        }))
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Nothing but the page's own script and style may load or run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn data(State(d): State<Arc<Dashboard>>) -> Result<Json<Value>, ApiError> {
    Ok(Json((*d.snapshot().await?).clone()))
}

/// `/`, its assets and `/v1/dashboard`.
pub fn router(d: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/dashboard.js", get(script))
        .route("/dashboard.css", get(style))
        .route("/v1/dashboard", get(data))
        .with_state(d)
}

/// Describes [`router`]'s routes for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    spec.get("/", "The dashboard page")
        .content(200, "text/html; charset=utf-8", "The page");
    spec.get("/dashboard.js", "The dashboard's script").content(
        200,
        "text/javascript; charset=utf-8",
        "The script",
    );
    spec.get("/dashboard.css", "The dashboard's style").content(
        200,
        "text/css; charset=utf-8",
        "The style",
    );
    spec.get("/v1/dashboard", "Everything the dashboard shows, assembled")
        .content(
            200,
            "application/json",
            "Validators, workers, rounds, jobs, the log, equivocations, listings and builds",
        );
}
