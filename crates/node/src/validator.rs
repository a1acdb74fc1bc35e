//! The validator role: verify every witness first-hand, score, sign and serve a score report,
//! gather peers' reports from their metagraph axons, decide by stake, set weights.
//!
//! - `POST /v1/sat/witness` — a worker's signed witness (signed request from that worker)
//! - `GET  /v1/consensus/scores/{run_id}` — this validator's signed report, byte for byte as
//!   first served
//! - `GET  /v1/rounds/{run_id}/result` — what this validator decided
//! - `GET  /v1/validator/status`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hallmark_consensus::{agrees, decide_round, Quorum, ValidatorScores, WinnerPolicy};
use hallmark_core::{Envelope, Keypair, PublicKey, RoundId, Signed};
use hallmark_ledger::{Ledger, Metagraph, TxBody, WeightEntry};
use hallmark_sat::score::{round_score, SolvedInstance};
use hallmark_sat::verify::replay_witness;
use hallmark_sat::{SatRound, SatVerifyContext, Witness};
use hallmark_store::{ScoreReportRow, Store, WitnessRow};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, RwLock};

use crate::api::{health, parse_json, ApiError};
use crate::auth::verify_request;
use crate::client::NodeClient;
use crate::config::ValidatorSection;
use crate::http_ledger::HttpLedger;
use crate::messages::{RoundAnnouncement, RoundResult, ScoreReport, UsedReport, WitnessAck};
use crate::registration::submit_tx;

const INCUMBENT_KEY: &str = "sat.incumbent";

/// Largest witness submission accepted, bytes.
pub const WITNESS_BODY_LIMIT: usize = 16 << 20;

/// The round a validator is currently accepting witnesses for.
#[derive(Debug)]
pub struct ActiveRound {
    pub ann: RoundAnnouncement,
    pub sat: SatRound,
}

/// Shared state of a validator.
pub struct Validator {
    store: Store,
    key: Keypair,
    ledger: HttpLedger,
    coordinator: NodeClient,
    coordinator_hotkey: PublicKey,
    cfg: ValidatorSection,
    skew_window_secs: i64,
    active: RwLock<Option<Arc<ActiveRound>>>,
    /// Rounds adopted and not yet decided, by number: a round is decided even if a newer one
    /// was announced before its grace period ended.
    undecided: tokio::sync::Mutex<BTreeMap<u64, Arc<ActiveRound>>>,
    /// The ledger's chain id, asked once.
    chain_id: tokio::sync::OnceCell<String>,
    metagraph: RwLock<Option<(Instant, Metagraph)>>,
}

/// `GET /v1/validator/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidatorStatus {
    pub hotkey: PublicKey,
    pub byzantine: bool,
    pub active_round: Option<RoundId>,
}

/// Why a round announcement was refused.
fn check_announcement(env: Envelope, coordinator: &PublicKey) -> Result<RoundAnnouncement, String> {
    let v = Signed::<RoundAnnouncement>::from_envelope(env)
        .verify()
        .map_err(|e| format!("round announcement: {e}"))?;
    if &v.signer != coordinator {
        return Err(format!(
            "round announcement signed by {}, not the pinned coordinator {coordinator}",
            v.signer
        ));
    }
    if v.payload.lane != "sat" || v.payload.round_id != RoundId::from_number(v.payload.number) {
        return Err("round announcement is not a well-formed sat round".into());
    }
    Ok(v.payload)
}

impl Validator {
    /// A validator with its store, hotkey and view of the network.
    pub fn new(
        store: Store,
        key: Keypair,
        ledger: HttpLedger,
        coordinator: NodeClient,
        coordinator_hotkey: PublicKey,
        cfg: ValidatorSection,
        skew_window_secs: i64,
    ) -> Self {
        Self {
            store,
            key,
            ledger,
            coordinator,
            coordinator_hotkey,
            cfg,
            skew_window_secs,
            active: RwLock::new(None),
            undecided: tokio::sync::Mutex::new(BTreeMap::new()),
            chain_id: tokio::sync::OnceCell::new(),
            metagraph: RwLock::new(None),
        }
    }

    fn policy(&self) -> WinnerPolicy {
        WinnerPolicy {
            dethrone_margin: self.cfg.dethrone_margin,
            // Checked by `check_config` before the validator starts.
            quorum: Quorum::new(self.cfg.quorum.0, self.cfg.quorum.1).unwrap_or_default(),
        }
    }

    /// Refuses settings that would make the validator decide nonsense.
    pub fn check_config(cfg: &ValidatorSection) -> Result<(), String> {
        Quorum::new(cfg.quorum.0, cfg.quorum.1).map_err(|e| e.to_string())?;
        if !(0.0..1.0).contains(&cfg.dethrone_margin) {
            return Err(format!(
                "validator.dethrone_margin {} must be in [0, 1)",
                cfg.dethrone_margin
            ));
        }
        Ok(())
    }

    /// The ledger's metagraph, from the cache if it is younger than `max_age`.
    async fn metagraph_cached(&self, max_age: Duration) -> Result<Metagraph, ApiError> {
        if let Some((at, mg)) = self.metagraph.read().await.as_ref() {
            if at.elapsed() < max_age {
                return Ok(mg.clone());
            }
        }
        let mg = self.ledger.metagraph().await?;
        *self.metagraph.write().await = Some((Instant::now(), mg.clone()));
        Ok(mg)
    }

    /// Whether `key` is a registered worker. Before saying no, asks the ledger again unless
    /// the cache is under 100 ms old (the worker may have just registered; an outsider
    /// spamming submissions costs at most ten ledger reads a second).
    async fn is_registered_worker(&self, key: &PublicKey) -> Result<bool, ApiError> {
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

    /// Adopts `ann` as the active round if it is newer than the current one.
    async fn adopt(&self, ann: RoundAnnouncement) -> Result<(), String> {
        if let Some(cur) = self.active.read().await.as_ref() {
            if cur.ann.number >= ann.number {
                return Ok(());
            }
        }
        let a = ann.clone();
        let sat = tokio::task::spawn_blocking(move || {
            SatRound::generate(a.round_id, a.nonce, a.seed, &a.params)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("round parameters: {e}"))?;
        let mut slot = self.active.write().await;
        if slot.as_ref().is_none_or(|cur| cur.ann.number < ann.number) {
            tracing::info!(round = %ann.round_id, "validator adopted round");
            let round = Arc::new(ActiveRound { ann, sat });
            self.undecided
                .lock()
                .await
                .insert(round.ann.number, round.clone());
            *slot = Some(round);
        }
        Ok(())
    }

    /// Polls the coordinator for the latest round.
    async fn poll_round(&self) -> Result<(), String> {
        let env: Envelope = match self.coordinator.get("/v1/rounds/current").await {
            Ok(env) => env,
            Err(e) if e.status() == Some(404) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        let ann = check_announcement(env, &self.coordinator_hotkey)?;
        self.adopt(ann).await
    }

    /// Makes sure the round a witness names is known, fetching it if it is newer.
    async fn ensure_round(&self, round_id: &RoundId) {
        let known = self.active.read().await.as_ref().map(|a| a.ann.number);
        match (known, round_id.number()) {
            (Some(k), Some(n)) if n <= k => {}
            (_, None) => {}
            _ => {
                let path = format!("/v1/rounds/{}", round_id);
                if let Ok(env) = self.coordinator.get::<Envelope>(&path).await {
                    if let Ok(ann) = check_announcement(env, &self.coordinator_hotkey) {
                        let _ = self.adopt(ann).await;
                    }
                }
            }
        }
    }

    async fn accept_witness(
        &self,
        headers: &HeaderMap,
        path: &str,
        body: &[u8],
    ) -> Result<WitnessAck, ApiError> {
        let received_ms = hallmark_core::time::now_unix_ms();
        let now = received_ms / 1000;
        let (sender, _) = verify_request(headers, "POST", path, body, now, self.skew_window_secs)?;
        // Only registered workers get any further work out of this validator (parsing, round
        // look-ups at the coordinator, replay).
        if !self.is_registered_worker(&sender).await? {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_registered",
                format!("{sender} is not a registered worker"),
            ));
        }
        let env: Envelope = parse_json(body)?;
        let signed = Signed::<Witness>::from_envelope(env);
        // The signature is checked once; its outcome is the verdict's first check.
        let signature = signed.verify();
        let claimed_round = signature.as_ref().ok().map(|v| v.payload.round_id.clone());
        if let Some(r) = &claimed_round {
            self.ensure_round(r).await;
        }
        let active = self.active.read().await.clone();
        let Some(active) = active else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "stale_round",
                "this validator has no open round",
            ));
        };
        let ctx = SatVerifyContext {
            current_round: active.ann.round_id.clone(),
            round_nonce: active.ann.nonce.clone(),
            deadline_unix_ms: active.ann.deadline_ms,
            received_unix_ms: received_ms,
            submitted_by: Some(sender),
        };
        let (verdict, ok) = replay_witness(
            &ctx,
            |sha| active.sat.instance(sha).map(|i| &i.cnf),
            signature,
        );
        let round_for_log = claimed_round.unwrap_or_else(|| active.ann.round_id.clone());
        match (verdict.accepted, ok) {
            (true, Some((signer, w))) => {
                let latency_ms = received_ms - active.ann.starts_at_ms;
                let first = self
                    .store
                    .insert_witness(&WitnessRow {
                        round_id: w.round_id.to_string(),
                        worker: signer.to_ss58(),
                        instance_sha256: w.instance_sha256.to_hex(),
                        received_ms,
                        latency_ms,
                        envelope: serde_json::to_string(signed.envelope())
                            .map_err(ApiError::internal)?,
                    })
                    .await?;
                Ok(WitnessAck {
                    accepted: true,
                    first,
                    latency_ms,
                    verdict,
                })
            }
            _ => {
                let code = verdict
                    .rejection
                    .clone()
                    .unwrap_or_else(|| "rejected".into());
                self.store
                    .insert_rejection(
                        round_for_log.as_str(),
                        Some(&sender.to_ss58()),
                        &code,
                        &serde_json::to_string(&verdict).map_err(ApiError::internal)?,
                        received_ms,
                    )
                    .await?;
                let message = verdict
                    .checks
                    .iter()
                    .find(|c| c.outcome == hallmark_core::CheckOutcome::Fail)
                    .map(|c| c.detail.clone())
                    .unwrap_or_else(|| code.clone());
                Err(
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, &code, message)
                        .with_details(serde_json::to_value(&verdict).map_err(ApiError::internal)?),
                )
            }
        }
    }

    /// This validator's scores for a round, from the witnesses it accepted itself.
    async fn own_scores(
        &self,
        active: &ActiveRound,
        mg: &Metagraph,
    ) -> Result<BTreeMap<PublicKey, f64>, String> {
        let rows = self
            .store
            .witnesses(active.ann.round_id.as_str())
            .await
            .map_err(|e| e.to_string())?;
        let window = active.ann.deadline_ms - active.ann.starts_at_ms;
        let mut scores = BTreeMap::new();
        for worker in mg.workers() {
            let key = worker.hotkey.to_ss58();
            let solved: Vec<SolvedInstance> = rows
                .iter()
                .filter(|r| r.worker == key)
                .map(|r| SolvedInstance {
                    latency_ms: r.latency_ms,
                })
                .collect();
            let s = round_score(&solved, active.ann.params.count, window);
            scores.insert(worker.hotkey, if self.cfg.byzantine { 1.0 - s } else { s });
        }
        Ok(scores)
    }

    /// Signs (once) and stores this validator's report for the round.
    async fn own_report(
        &self,
        active: &ActiveRound,
        mg: &Metagraph,
    ) -> Result<Signed<ScoreReport>, String> {
        let run_id = active.ann.round_id.as_str();
        let me = self.key.public().to_ss58();
        if let Some(row) = self
            .store
            .score_report(run_id, &me)
            .await
            .map_err(|e| e.to_string())?
        {
            let env: Envelope = serde_json::from_str(&row.envelope).map_err(|e| e.to_string())?;
            return Ok(Signed::from_envelope(env));
        }
        let report = ScoreReport {
            run_id: active.ann.round_id.clone(),
            lane: "sat".into(),
            validator_hotkey: self.key.public(),
            scores: self.own_scores(active, mg).await?,
        };
        let signed = Signed::sign(&report, &self.key).map_err(|e| e.to_string())?;
        let text = serde_json::to_string(signed.envelope()).map_err(|e| e.to_string())?;
        self.store
            .put_score_report(&ScoreReportRow {
                run_id: run_id.to_string(),
                validator: me,
                envelope: text,
                digest: signed.digest().map_err(|e| e.to_string())?.to_hex(),
                received_ms: hallmark_core::time::now_unix_ms(),
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok(signed)
    }

    /// Fetches and checks one peer's report, retrying until `deadline`.
    async fn fetch_peer_report(
        &self,
        peer: &hallmark_ledger::Neuron,
        run_id: &RoundId,
        deadline: Instant,
    ) -> Result<(ScoreReport, String), String> {
        let Some(axon) = &peer.axon else {
            return Err("no axon in the metagraph".into());
        };
        let client = self.coordinator.at(axon);
        let path = format!("/v1/consensus/scores/{run_id}");
        loop {
            match client.get_bytes(&path).await {
                Ok(bytes) => {
                    let env: Envelope = serde_json::from_slice(&bytes)
                        .map_err(|e| format!("not an envelope: {e}"))?;
                    let signed = Signed::<ScoreReport>::from_envelope(env);
                    let v = signed.verify().map_err(|e| format!("report: {e}"))?;
                    if v.signer != peer.hotkey {
                        return Err(format!("axon {axon} served a report signed by {}, but the metagraph lists {} there", v.signer, peer.hotkey));
                    }
                    if v.payload.validator_hotkey != v.signer {
                        return Err("report names a different validator than its signer".into());
                    }
                    if &v.payload.run_id != run_id || v.payload.lane != "sat" {
                        return Err(format!(
                            "report is for run {} (lane {}), not {run_id}: replay refused",
                            v.payload.run_id, v.payload.lane
                        ));
                    }
                    if v.payload
                        .scores
                        .values()
                        .any(|s| !s.is_finite() || *s < 0.0 || *s > 1.0)
                    {
                        return Err("report has a score outside [0, 1]".into());
                    }
                    let digest = signed.digest().map_err(|e| e.to_string())?.to_hex();
                    let row = ScoreReportRow {
                        run_id: run_id.to_string(),
                        validator: peer.hotkey.to_ss58(),
                        envelope: serde_json::to_string(signed.envelope())
                            .map_err(|e| e.to_string())?,
                        digest: digest.clone(),
                        received_ms: hallmark_core::time::now_unix_ms(),
                    };
                    self.store
                        .put_score_report(&row)
                        .await
                        .map_err(|e| e.to_string())?;
                    return Ok((v.payload, digest));
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("no report before the collection deadline: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Scores the round, gathers reports, decides, sets weights and stores the result.
    async fn finalize(&self, active: &ActiveRound) -> Result<RoundResult, String> {
        let run_id = active.ann.round_id.clone();
        let mg = self.ledger.metagraph().await.map_err(|e| e.to_string())?;
        let own = self.own_report(active, &mg).await?;
        let own_payload = own.verify().map_err(|e| e.to_string())?.payload;
        let me = self.key.public();
        let deadline = Instant::now() + Duration::from_millis(self.cfg.collect_timeout_ms);
        let peers: Vec<_> = mg
            .validators()
            .filter(|n| n.hotkey != me)
            .cloned()
            .collect();
        let fetched = futures::future::join_all(
            peers
                .iter()
                .map(|p| self.fetch_peer_report(p, &run_id, deadline)),
        )
        .await;
        let mut used = vec![UsedReport {
            validator: me,
            stake: mg.neuron(&me).map_or(0, |n| n.stake),
            report_sha256: own.digest().map_err(|e| e.to_string())?.to_hex(),
            scores: own_payload.scores.clone(),
        }];
        let mut missing = Vec::new();
        for (peer, res) in peers.iter().zip(fetched) {
            match res {
                Ok((report, digest)) => used.push(UsedReport {
                    validator: peer.hotkey,
                    stake: peer.stake,
                    report_sha256: digest,
                    scores: report.scores,
                }),
                Err(why) => {
                    tracing::warn!(peer = %peer.hotkey, %why, "peer report not used");
                    missing.push((peer.hotkey, why));
                }
            }
        }
        let inputs: Vec<ValidatorScores<'_>> = used
            .iter()
            .map(|u| ValidatorScores {
                stake: u.stake,
                scores: &u.scores,
            })
            .collect();
        let incumbent = self
            .store
            .kv_get(INCUMBENT_KEY)
            .await
            .map_err(|e| e.to_string())?
            .and_then(|s| s.parse().ok());
        let policy = self.policy();
        let decision = decide_round(&inputs, mg.validator_stake(), incumbent, &policy);
        if let Some(w) = decision.winner {
            self.store
                .kv_put(INCUMBENT_KEY, &w.to_ss58())
                .await
                .map_err(|e| e.to_string())?;
        }
        let weights_tx = match decision.winner {
            Some(w) if decision.quorum_met => {
                let chain = self
                    .chain_id
                    .get_or_try_init(|| self.ledger.chain_id())
                    .await
                    .map_err(|e| e.to_string())?;
                let body = TxBody::SetWeights {
                    epoch: active.ann.number,
                    weights: vec![WeightEntry {
                        hotkey: w,
                        weight: u16::MAX,
                    }],
                };
                match submit_tx(&self.ledger, chain, &self.key, body).await {
                    Ok(r) => Some(r.tx_hash),
                    Err(e) => {
                        tracing::warn!(error = %e, "setting weights failed");
                        None
                    }
                }
            }
            _ => None,
        };
        let rejections = self
            .store
            .rejection_counts(run_id.as_str())
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let result = RoundResult {
            run_id: run_id.clone(),
            validator: me,
            byzantine: self.cfg.byzantine,
            agrees: agrees(
                &own_payload.scores,
                decision.winner.as_ref(),
                policy.dethrone_margin,
            ),
            winner: decision.winner,
            consensus: decision.consensus,
            quorum_met: decision.quorum_met,
            reporting_stake: decision.reporting_stake,
            total_stake: decision.total_stake,
            reports: used,
            missing,
            rejections,
            weights_tx,
        };
        let body = serde_json::to_string(&result).map_err(|e| e.to_string())?;
        self.store
            .put_round_result(run_id.as_str(), &body, hallmark_core::time::now_unix())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(round = %run_id, winner = ?result.winner.map(|w| w.to_ss58()), "round decided");
        Ok(result)
    }

    /// The background loop: follow rounds and finalize each after its deadline.
    pub async fn run_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.cfg.poll_ms.max(20));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(poll) => {}
            }
            if let Err(e) = self.poll_round().await {
                tracing::warn!(error = %e, "polling the coordinator failed");
            }
            let now = hallmark_core::time::now_unix_ms();
            let due: Vec<Arc<ActiveRound>> = self
                .undecided
                .lock()
                .await
                .values()
                .filter(|r| now >= r.ann.deadline_ms + self.cfg.grace_ms as i64)
                .cloned()
                .collect();
            for round in due {
                let decided = match self.store.round_result(round.ann.round_id.as_str()).await {
                    Ok(Some(_)) => true,
                    Ok(None) => tokio::select! {
                        _ = shutdown.changed() => return,
                        res = self.finalize(&round) => match res {
                            Ok(_) => true,
                            Err(e) => {
                                tracing::error!(round = %round.ann.round_id, error = %e, "finalizing the round failed; will retry");
                                false
                            }
                        },
                    },
                    Err(e) => {
                        tracing::error!(error = %e, "reading round results failed");
                        false
                    }
                };
                if decided {
                    self.undecided.lock().await.remove(&round.ann.number);
                }
            }
        }
    }
}

/// The validator's routes.
pub fn router(v: Arc<Validator>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        // A full assignment of MAX_VARS variables is at most ~9 MB of JSON (base64 inside DSSE).
        .route(
            "/v1/sat/witness",
            post(witness).layer(axum::extract::DefaultBodyLimit::max(WITNESS_BODY_LIMIT)),
        )
        .route("/v1/consensus/scores/{run_id}", get(scores))
        .route("/v1/rounds/{run_id}/result", get(result))
        .route("/v1/validator/status", get(status))
        .with_state(v)
}

async fn witness(
    State(v): State<Arc<Validator>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WitnessAck>, ApiError> {
    Ok(Json(v.accept_witness(&headers, uri.path(), &body).await?))
}

fn raw_json(text: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

async fn scores(
    State(v): State<Arc<Validator>>,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
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
        byzantine: v.cfg.byzantine,
        active_round: v
            .active
            .read()
            .await
            .as_ref()
            .map(|a| a.ann.round_id.clone()),
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
}
