//! The validator role: verify every submission first-hand with its lane's verifier, score,
//! sign and serve a score report, gather peers' reports from their metagraph axons, decide by
//! stake, set weights — for every round lane of the registry, side by side. The round
//! pipeline itself lives in [`crate::rounds`] (intake, report, gossip, decide); this module
//! holds the validator's state and its HTTP routes.
//!
//! - `POST /v1/{lane}/witness` — a worker's signed submission (signed request from that worker)
//! - `GET  /v1/consensus/scores/{run_id}` — this validator's signed report, byte for byte as
//!   first served
//! - `GET  /v1/rounds/{run_id}/result` — what this validator decided
//! - `GET  /v1/consensus/scores/{run_id}/receipt` — that report with its log proof
//! - `GET  /v1/rounds/{run_id}/receipt` — the signed decision with its log proof
//! - `GET  /v1/consensus/evaluations/{run_id}` — a roster lane's first-hand measurement
//!   (the eval report whose hash the score report carries)
//! - `GET  /v1/consensus/equivocations` — evidence of peers that said two things about a run
//! - `GET  /v1/consensus/divergence` — signed summary of consensus versus the owner's pick
//! - `GET  /v1/validator/status`
//! - `/v1/log/…` — this validator's transparency log (reports, decisions, evidence)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, OriginalUri, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hallmark_consensus::commitment::EquivocationEvidence;
use hallmark_consensus::divergence::{summarize, RunDivergence};
use hallmark_consensus::{Quorum, WinnerPolicy};
use hallmark_core::{Envelope, Keypair, PublicKey, RoundId, Signed};
use hallmark_ledger::{Ledger, Metagraph};
use hallmark_store::{Store, TransparencyLog};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::api::{health, ApiError};
use crate::client::NodeClient;
use crate::config::ValidatorSection;
use crate::error::SettingError;
use crate::faults::Faults;
use crate::http_ledger::HttpLedger;
use crate::lanes::LaneRegistry;
use crate::messages::{DivergenceReport, SubmissionAck};
use crate::rounds::ActiveRound;

/// Shared state of a validator.
pub struct Validator {
    pub(crate) store: Store,
    /// Everything this validator signs goes here; receipts prove inclusion in it.
    pub(crate) log: TransparencyLog,
    /// The log's origin (and checkpoint key name): `hallmark/validator/<hotkey>`.
    pub(crate) origin: String,
    /// Devnet equivocation: how many times each run's report was served.
    pub(crate) served: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    pub(crate) key: Keypair,
    pub(crate) ledger: HttpLedger,
    pub(crate) coordinator: NodeClient,
    pub(crate) coordinator_hotkey: PublicKey,
    pub(crate) cfg: ValidatorSection,
    /// What this validator is told to do wrong (devnet, tests).
    pub(crate) faults: Faults,
    /// The round lanes this validator verifies and scores.
    pub(crate) lanes: LaneRegistry,
    pub(crate) skew_window_secs: i64,
    /// The round each lane currently accepts submissions for.
    pub(crate) active: RwLock<BTreeMap<String, Arc<ActiveRound>>>,
    /// Rounds adopted and not yet decided, by lane and number: a round is decided even if a
    /// newer one was announced before its grace period ended.
    pub(crate) undecided: tokio::sync::Mutex<BTreeMap<(String, u64), Arc<ActiveRound>>>,
    /// The ledger's chain id, asked once.
    pub(crate) chain_id: tokio::sync::OnceCell<String>,
    pub(crate) metagraph: RwLock<Option<(Instant, Arc<Metagraph>)>>,
    /// Held while the metagraph is being fetched: a burst of submissions that finds the cache
    /// stale asks the ledger once, not once per submission.
    pub(crate) metagraph_refresh: tokio::sync::Mutex<()>,
    /// Signatures of witness requests already taken (a captured request is refused, not
    /// processed again), recorded in the store so a restart does not forget them.
    pub(crate) witness_replay: crate::auth::ReplayGuard,
    /// The lanes' self-tests, run once at start ([`Validator::run_self_tests`]).
    pub(crate) self_test: std::sync::OnceLock<SelfTestReport>,
    /// This node's metrics (verifications, rounds decided).
    pub(crate) metrics: Arc<crate::metrics::NodeMetrics>,
}

/// `GET /v1/selftest`: every lane's known-answer self-test as this validator ran it at start.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SelfTestReport {
    /// The evidence directory the self-tests read, if one is configured.
    pub evidence_dir: Option<String>,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub lanes: Vec<crate::lanes::LaneSelfTest>,
    /// The roots of trust each lane's verifier accepts evidence under (the tee lane on a
    /// devnet also trusts the public test root, so its acceptances prove no real hardware).
    pub trust_roots: BTreeMap<String, Vec<String>>,
}

/// `GET /v1/validator/status`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ValidatorStatus {
    pub hotkey: PublicKey,
    pub byzantine: bool,
    /// The round each lane is accepting submissions for.
    pub active_rounds: BTreeMap<String, RoundId>,
}

impl Validator {
    /// A validator with its store, hotkey, round lanes and view of the network.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        log: TransparencyLog,
        key: Keypair,
        ledger: HttpLedger,
        coordinator: NodeClient,
        coordinator_hotkey: PublicKey,
        cfg: ValidatorSection,
        faults: Faults,
        lanes: LaneRegistry,
        skew_window_secs: i64,
        metrics: Arc<crate::metrics::NodeMetrics>,
    ) -> Self {
        let origin = format!("hallmark/validator/{}", key.public().to_ss58());
        Self {
            store: store.clone(),
            log,
            origin,
            served: std::sync::Mutex::new(std::collections::HashMap::new()),
            key,
            ledger,
            coordinator,
            coordinator_hotkey,
            cfg,
            faults,
            lanes,
            skew_window_secs,
            active: RwLock::new(BTreeMap::new()),
            undecided: tokio::sync::Mutex::new(BTreeMap::new()),
            chain_id: tokio::sync::OnceCell::new(),
            metagraph: RwLock::new(None),
            metagraph_refresh: tokio::sync::Mutex::new(()),
            witness_replay: crate::auth::ReplayGuard::persistent(store.clone()),
            self_test: std::sync::OnceLock::new(),
            metrics,
        }
    }

    /// Runs every lane's self-test once, off the runtime, and keeps the report for
    /// `GET /v1/selftest` (a GET never runs a verifier: it only reads this).
    pub async fn run_self_tests(self: Arc<Self>) {
        let v = self.clone();
        let report = tokio::task::spawn_blocking(move || {
            let started_ms = hallmark_core::time::now_unix_ms();
            let dir = v.cfg.evidence_dir.clone();
            let lanes = v.lanes.self_tests(dir.as_deref());
            SelfTestReport {
                evidence_dir: dir.map(|d| d.display().to_string()),
                started_ms,
                finished_ms: hallmark_core::time::now_unix_ms(),
                lanes,
                trust_roots: v.lanes.trust_roots(),
            }
        })
        .await;
        match report {
            Ok(r) => {
                for l in &r.lanes {
                    match &l.verdict {
                        Some(v) if v.accepted => tracing::info!(lane = %l.lane, "self-test passed"),
                        Some(v) => {
                            tracing::warn!(lane = %l.lane, rejection = ?v.rejection, "self-test failed")
                        }
                        None => {}
                    }
                }
                let _ = self.self_test.set(r);
            }
            Err(e) => tracing::error!(error = %e, "the self-tests panicked"),
        }
    }

    pub(crate) fn policy(&self) -> WinnerPolicy {
        WinnerPolicy {
            dethrone_margin: self.cfg.dethrone_margin,
            // Checked by `check_config` before the validator starts.
            quorum: Quorum::new(self.cfg.quorum.0, self.cfg.quorum.1).unwrap_or_default(),
        }
    }

    /// Refuses settings that would make the validator decide nonsense.
    pub fn check_config(cfg: &ValidatorSection) -> Result<(), SettingError> {
        Quorum::new(cfg.quorum.0, cfg.quorum.1)
            .map_err(|e| SettingError::new("validator.quorum", e.to_string()))?;
        if !(0.0..1.0).contains(&cfg.dethrone_margin) {
            return Err(SettingError::new(
                "validator.dethrone_margin",
                format!("{} must be in [0, 1)", cfg.dethrone_margin),
            ));
        }
        let w = &cfg.weights;
        if !(1..=1000).contains(&w.window_rounds) {
            return Err(SettingError::new(
                "validator.weights.window_rounds",
                format!("{} must be 1 to 1000", w.window_rounds),
            ));
        }
        for (lane, classes) in &w.classes {
            let bad = classes.is_empty()
                || classes.iter().any(|c| {
                    let id = hallmark_core::RoundId::for_lane(c, 1);
                    hallmark_consensus::weights::class_of(&id, &[lane.as_str()])
                        .is_none_or(|(l, _)| &l != lane)
                })
                || classes
                    .iter()
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
                    != classes.len();
            if bad {
                return Err(SettingError::new(
                    "validator.weights.classes",
                    format!(
                        "{lane}: {classes:?} must name, each once, {lane} itself or its tiers ({lane}-t2, …)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The ledger's metagraph, from the cache if it is younger than `max_age`. One caller at a
    /// time fetches a fresh one; the others wait for it and take what it fetched.
    pub(crate) async fn metagraph_cached(
        &self,
        max_age: Duration,
    ) -> Result<Arc<Metagraph>, ApiError> {
        let fresh = |cache: &Option<(Instant, Arc<Metagraph>)>| {
            cache
                .as_ref()
                .filter(|(at, _)| at.elapsed() < max_age)
                .map(|(_, mg)| mg.clone())
        };
        if let Some(mg) = fresh(&*self.metagraph.read().await) {
            return Ok(mg);
        }
        let _fetching = self.metagraph_refresh.lock().await;
        // Someone else may have fetched it while this caller waited.
        if let Some(mg) = fresh(&*self.metagraph.read().await) {
            return Ok(mg);
        }
        let mg = Arc::new(self.ledger.metagraph().await?);
        *self.metagraph.write().await = Some((Instant::now(), mg.clone()));
        Ok(mg)
    }

    /// Whether `key` is a registered worker. Before saying no, asks the ledger again unless
    /// the cache is under 100 ms old (the worker may have just registered; an outsider
    /// spamming submissions costs at most ten ledger reads a second).
    pub(crate) async fn is_registered_worker(&self, key: &PublicKey) -> Result<bool, ApiError> {
        for max_age in [Duration::from_secs(1), Duration::from_millis(100)] {
            if self
                .metagraph_cached(max_age)
                .await?
                .workers()
                .any(|n| &n.hotkey == key)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The validator's routes.
pub fn router(v: Arc<Validator>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        // Each round lane says how large a submission may be; the route takes the largest.
        .route(
            "/v1/{lane}/witness",
            post(submit).layer(axum::extract::DefaultBodyLimit::max(
                v.lanes.max_submission_bytes().max(1),
            )),
        )
        .route("/v1/consensus/scores/{run_id}", get(scores))
        .route("/v1/consensus/scores/{run_id}/receipt", get(score_receipt))
        .route("/v1/consensus/evaluations/{run_id}", get(evaluation))
        .route("/v1/consensus/equivocations", get(equivocations))
        .route("/v1/consensus/divergence", get(divergence))
        .route("/v1/rounds/{run_id}/result", get(result))
        .route("/v1/rounds/{run_id}/receipt", get(result_receipt))
        .route("/v1/validator/status", get(status))
        .route("/v1/selftest", get(self_test))
        .route("/v1/traces", get(crate::traces::public_traces))
        .route("/v1/traces/private", post(crate::traces::private_traces))
        .with_state(v.clone())
        .merge(crate::log_routes::router(
            v.log.clone(),
            v.origin.clone(),
            v.key.clone(),
        ))
}

/// Describes [`router`]'s routes for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    use hallmark_core::dsse::Envelope;
    spec.get("/v1/health", "Liveness")
        .content(200, "application/json", "`{\"status\":\"ok\"}`");
    spec.post("/v1/{lane}/witness", "Submit to a round lane (signed)")
        .describe("The body is the lane's submission, signed with the `X-Hallmark-Signature` header by a registered hotkey.")
        .raw_body("application/octet-stream")
        .ok::<SubmissionAck>()
        .errors(&[(400, "Malformed or refused by the lane"), (401, "Bad signature"), (403, "Not registered"), (404, "Unknown lane or no open round"), (409, "Already submitted"), (413, "Too large")]);
    spec.get(
        "/v1/consensus/scores/{run_id}",
        "This validator's signed score report",
    )
    .ok::<Envelope>()
    .errors(&[(404, "No report yet")]);
    spec.get(
        "/v1/consensus/scores/{run_id}/receipt",
        "The logged receipt of the score report",
    )
    .ok::<hallmark_log::receipt::Receipt>()
    .errors(&[(404, "No receipt yet")]);
    spec.get(
        "/v1/consensus/evaluations/{run_id}",
        "This validator's measurement of a roster run",
    )
    .ok::<crate::messages::EvaluationRecord>()
    .errors(&[(404, "No evaluation here")]);
    spec.get(
        "/v1/consensus/equivocations",
        "Validators caught committing twice",
    )
    .ok::<Vec<hallmark_consensus::commitment::EquivocationEvidence>>();
    spec.get(
        "/v1/consensus/divergence",
        "This validator's signed divergence report",
    )
    .ok::<Envelope>();
    spec.get(
        "/v1/rounds/{run_id}/result",
        "This validator's signed round result",
    )
    .ok::<crate::messages::RoundResult>()
    .errors(&[(404, "Not decided yet")]);
    spec.get(
        "/v1/rounds/{run_id}/receipt",
        "The logged receipt of the round result",
    )
    .ok::<hallmark_log::receipt::Receipt>()
    .errors(&[(404, "No receipt yet")]);
    spec.get("/v1/validator/status", "This validator's state")
        .ok::<ValidatorStatus>();
    spec.get(
        "/v1/selftest",
        "The verifiers' self-tests on shipped evidence",
    )
    .ok::<SelfTestReport>()
    .errors(&[(503, "Self-tests not run yet")]);
    spec.get(
        "/v1/traces",
        "Public verification traces (redacted, consent-gated)",
    )
    .query::<crate::traces::TraceQuery>()
    .ok::<crate::traces::TracePage<hallmark_core::trace::PublicTrace>>()
    .errors(&[(400, "Bad query"), (502, "Consents could not be checked")]);
    spec.post("/v1/traces/private", "Private verification traces (operator-signed)")
        .describe("The body is the query as JSON, signed with the `X-Hallmark-Signature` header by this validator's operator coldkey.")
        .body::<crate::traces::TraceQuery>()
        .ok::<crate::traces::TracePage<hallmark_core::trace::VerificationTrace>>()
        .errors(&[(400, "Bad query"), (401, "Bad signature"), (403, "Not the operator"), (503, "Not registered")]);
}

async fn self_test(State(v): State<Arc<Validator>>) -> Result<Json<SelfTestReport>, ApiError> {
    v.self_test.get().cloned().map(Json).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "self_test_running",
            "the self-tests have not finished yet; ask again shortly",
        )
    })
}

async fn receipt_of(v: &Validator, subject: &str) -> Result<Response, ApiError> {
    match v.store.receipt(subject).await? {
        Some(text) => Ok(raw_json(text)),
        None => Err(ApiError::not_found(format!(
            "no receipt for {subject:?} yet"
        ))),
    }
}

/// `GET /v1/consensus/evaluations/{run_id}`: this validator's measurement of a roster lane's
/// run (report, its hash, advisory facts), as stored.
async fn evaluation(
    State(v): State<Arc<Validator>>,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    match v
        .store
        .kv_get(&crate::rounds::roster::evaluation_key(&run_id))
        .await?
    {
        Some(text) => Ok(raw_json(text)),
        None => Err(ApiError::not_found(format!(
            "no evaluation of {run_id:?} here (roster lanes only, after the deadline)"
        ))),
    }
}

async fn score_receipt(
    State(v): State<Arc<Validator>>,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    receipt_of(&v, &format!("score-report/{run_id}")).await
}

async fn result_receipt(
    State(v): State<Arc<Validator>>,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    receipt_of(&v, &format!("round-result/{run_id}")).await
}

async fn equivocations(
    State(v): State<Arc<Validator>>,
) -> Result<Json<Vec<EquivocationEvidence>>, ApiError> {
    let rows = v.store.equivocations().await?;
    rows.into_iter()
        .map(|r| {
            serde_json::from_str(&r.evidence)
                .map_err(|e| ApiError::internal(format!("stored evidence: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Json)
}

async fn divergence(State(v): State<Arc<Validator>>) -> Result<Json<Envelope>, ApiError> {
    let records = v.store.divergence_records(v.cfg.divergence_window).await?;
    let runs: Vec<RunDivergence> = records
        .into_iter()
        .map(|(_, text)| {
            serde_json::from_str(&text)
                .map_err(|e| ApiError::internal(format!("stored divergence: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let report = DivergenceReport {
        validator: v.key.public(),
        weight_mode: v.cfg.weight_mode.as_str().into(),
        window: v.cfg.divergence_window,
        top_k: v.cfg.divergence_top_k,
        summary: summarize(&runs),
        runs,
        generated_at: hallmark_core::time::now_rfc3339_precise(),
    };
    let signed = Signed::sign(&report, &v.key).map_err(ApiError::internal)?;
    Ok(Json(signed.envelope().clone()))
}

/// `POST /v1/{lane}/witness`: a worker's signed submission to a round lane. The body (up to
/// 16 MB) is read only once the headers name a registered worker with a fresh timestamp.
async fn submit(
    State(v): State<Arc<Validator>>,
    OriginalUri(uri): OriginalUri,
    Path(lane): Path<String>,
    req: axum::extract::Request,
) -> Result<Json<SubmissionAck>, ApiError> {
    let headers = req.headers().clone();
    let signer = crate::auth::presented_signer(
        &headers,
        hallmark_core::time::now_unix(),
        v.skew_window_secs,
    )?;
    if !v.is_registered_worker(&signer).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_registered",
            format!("{signer} is not a registered worker"),
        ));
    }
    let body = Bytes::from_request(req, &())
        .await
        .map_err(crate::api::body_rejection)?;
    Ok(Json(
        v.accept_submission(&lane, &headers, uri.path(), &body)
            .await?,
    ))
}

fn raw_json(text: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

async fn scores(
    State(v): State<Arc<Validator>>,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    if v.faults.equivocate {
        if let Some(second) = v.store.kv_get(&format!("equivocate.{run_id}")).await? {
            let times = {
                let mut served = v.served.lock().unwrap_or_else(|p| p.into_inner());
                let n = served.entry(run_id.clone()).or_insert(0);
                *n += 1;
                *n
            };
            if times > 1 {
                return Ok(raw_json(second));
            }
        }
    }
    match v
        .store
        .score_report(&run_id, &v.key.public().to_ss58())
        .await?
    {
        Some(row) => Ok(raw_json(row.envelope)),
        None => Err(ApiError::not_found(format!(
            "no score report for {run_id:?} yet"
        ))),
    }
}

async fn result(
    State(v): State<Arc<Validator>>,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    match v.store.round_result(&run_id).await? {
        Some(body) => Ok(raw_json(body)),
        None => Err(ApiError::not_found(format!(
            "round {run_id:?} is not decided yet"
        ))),
    }
}

async fn status(State(v): State<Arc<Validator>>) -> Json<ValidatorStatus> {
    Json(ValidatorStatus {
        hotkey: v.key.public(),
        byzantine: v.faults.invert_scores,
        active_rounds: v
            .active
            .read()
            .await
            .iter()
            .map(|(lane, a)| (lane.clone(), a.info.round_id.clone()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_nonsense_settings() {
        assert!(Validator::check_config(&ValidatorSection::default()).is_ok());
        for quorum in [(3, 2), (1, 0), (0, 3)] {
            let cfg = ValidatorSection {
                quorum,
                ..ValidatorSection::default()
            };
            assert!(Validator::check_config(&cfg).is_err(), "{quorum:?}");
        }
        let cfg = ValidatorSection {
            dethrone_margin: 1.5,
            ..ValidatorSection::default()
        };
        assert!(Validator::check_config(&cfg).is_err());
        let cfg = ValidatorSection {
            dethrone_margin: f64::NAN,
            ..ValidatorSection::default()
        };
        assert!(Validator::check_config(&cfg).is_err());
    }

    #[test]
    fn refuses_weight_rules_that_could_not_apply() {
        let with = |window: u64, lane: &str, classes: &[&str]| {
            let mut cfg = ValidatorSection::default();
            cfg.weights.window_rounds = window;
            cfg.weights.classes.insert(
                lane.to_string(),
                classes.iter().map(|c| c.to_string()).collect(),
            );
            Validator::check_config(&cfg)
        };
        assert!(with(3, "sat", &["sat", "sat-t2"]).is_ok());
        for (window, lane, classes) in [
            (0, "sat", &["sat"][..]),
            (1001, "sat", &["sat"][..]),
            (1, "sat", &[][..]),
            (1, "sat", &["stark"][..]),
            (1, "sat", &["sat-x-t2"][..]),
            (1, "sat", &["sat-t2", "sat-t2"][..]),
            (1, "sat", &["sat-tx"][..]),
        ] {
            let e = with(window, lane, classes).unwrap_err();
            assert!(e.to_string().contains("validator.weights"), "{e}");
        }
    }
}
