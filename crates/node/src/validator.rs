//! The validator role: verify every witness first-hand, score, sign and serve a score report,
//! gather peers' reports from their metagraph axons, decide by stake, set weights.
//!
//! - `POST /v1/sat/witness` — a worker's signed witness (signed request from that worker)
//! - `GET  /v1/consensus/scores/{run_id}` — this validator's signed report, byte for byte as
//!   first served
//! - `GET  /v1/rounds/{run_id}/result` — what this validator decided
//! - `GET  /v1/consensus/scores/{run_id}/receipt` — that report with its log proof
//! - `GET  /v1/rounds/{run_id}/receipt` — the signed decision with its log proof
//! - `GET  /v1/consensus/equivocations` — evidence of peers that said two things about a run
//! - `GET  /v1/consensus/divergence` — signed summary of consensus versus the owner's pick
//! - `GET  /v1/validator/status`
//! - `/v1/log/…` — this validator's transparency log (reports, decisions, evidence)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hallmark_consensus::commitment::{
    check_succession, commitment_string, parse_commitment, scores_hash, EquivocationEvidence,
    ReportHead, SuccessionError,
};
use hallmark_consensus::divergence::{compare_run, summarize, RunDivergence};
use hallmark_consensus::{agrees, decide_round, Quorum, ValidatorScores, WinnerPolicy};
use hallmark_core::{Envelope, Keypair, PublicKey, RoundId, Signed};
use hallmark_ledger::{Ledger, Metagraph, TxBody, WeightEntry};
use hallmark_log::{LogProof, Receipt};
use hallmark_sat::score::{round_score, SolvedInstance};
use hallmark_sat::verify::replay_witness;
use hallmark_sat::{SatRound, SatVerifyContext, Witness};
use hallmark_store::{
    EquivocationRow, ScoreReportRow, Store, StoreError, TransparencyLog, WitnessRow,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, RwLock};

use crate::api::{health, parse_json, ApiError};
use crate::auth::verify_request;
use crate::client::NodeClient;
use crate::config::{ValidatorSection, WeightMode};
use crate::http_ledger::HttpLedger;
use crate::messages::{
    DivergenceReport, OwnerPick, RoundAnnouncement, RoundResult, ScoreReport, UsedReport,
    WitnessAck,
};
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
    /// Everything this validator signs goes here; receipts prove inclusion in it.
    log: TransparencyLog,
    /// The log's origin (and checkpoint key name): `hallmark/validator/<hotkey>`.
    origin: String,
    /// Devnet equivocation: how many times each run's report was served.
    served: std::sync::Mutex<std::collections::HashMap<String, u64>>,
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
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        log: TransparencyLog,
        key: Keypair,
        ledger: HttpLedger,
        coordinator: NodeClient,
        coordinator_hotkey: PublicKey,
        cfg: ValidatorSection,
        skew_window_secs: i64,
    ) -> Self {
        let origin = format!("hallmark/validator/{}", key.public().to_ss58());
        Self {
            store,
            log,
            origin,
            served: std::sync::Mutex::new(std::collections::HashMap::new()),
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

    /// Appends a signed statement to this validator's log and returns its proof.
    async fn log_statement(&self, kind: &str, env: &Envelope) -> Result<LogProof, String> {
        let bytes = env.canonical_bytes().map_err(|e| e.to_string())?;
        self.log
            .append_and_prove(kind, &bytes, &self.origin, &self.key)
            .await
            .map_err(|e| e.to_string())
    }

    /// Logs a signed statement and stores its receipt under `subject` (first one stands).
    async fn log_with_receipt(
        &self,
        kind: &str,
        subject: &str,
        env: &Envelope,
    ) -> Result<(), String> {
        if self
            .store
            .receipt(subject)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Ok(());
        }
        let log = self.log_statement(kind, env).await?;
        let receipt = Receipt {
            statement: env.clone(),
            log,
        };
        let text = serde_json::to_string(&receipt).map_err(|e| e.to_string())?;
        self.store
            .put_receipt(subject, &text)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Keeps evidence that `validator` said two things about `run_id`, once per kind, and
    /// logs it.
    async fn record_equivocation(&self, ev: EquivocationEvidence) -> Result<(), String> {
        let text = serde_json::to_string(&ev).map_err(|e| e.to_string())?;
        let new = self
            .store
            .put_equivocation(&EquivocationRow {
                validator: ev.validator.to_ss58(),
                run_id: ev.run_id.clone(),
                kind: ev.kind.clone(),
                evidence: text,
                found_ms: hallmark_core::time::now_unix_ms(),
            })
            .await
            .map_err(|e| e.to_string())?;
        if new {
            tracing::warn!(validator = %ev.validator, run = %ev.run_id, kind = %ev.kind, "equivocation caught");
            let bytes =
                hallmark_core::canonical::to_canonical_bytes(&ev).map_err(|e| e.to_string())?;
            self.log
                .append("equivocation", &bytes)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn chain_id(&self) -> Result<&String, String> {
        self.chain_id
            .get_or_try_init(|| self.ledger.chain_id())
            .await
            .map_err(|e| e.to_string())
    }

    /// Commits the hash of `report`'s scores on the ledger; a retry of the same commitment is
    /// fine. Returns the commitment string.
    async fn commit_scores(&self, report: &ScoreReport) -> Result<String, String> {
        let run_id = report.run_id.as_str();
        let hash = scores_hash(run_id, &report.lane, &report.scores).map_err(|e| e.to_string())?;
        let commitment = commitment_string(run_id, &hash);
        let chain = self.chain_id().await?;
        let body = TxBody::CommitScores {
            run_id: run_id.to_string(),
            commitment: commitment.clone(),
        };
        match submit_tx(&self.ledger, chain, &self.key, body).await {
            Ok(_) => Ok(commitment),
            Err(e) if e.code() == "already_committed" => Ok(commitment),
            Err(e) => Err(format!("committing scores: {e}")),
        }
    }

    /// Signs (once), stores, logs and commits this validator's report for the round.
    async fn own_report(
        &self,
        active: &ActiveRound,
        mg: &Metagraph,
    ) -> Result<(Signed<ScoreReport>, String), String> {
        let run_id = active.ann.round_id.as_str();
        let me = self.key.public().to_ss58();
        let signed = if let Some(row) = self
            .store
            .score_report(run_id, &me)
            .await
            .map_err(|e| e.to_string())?
        {
            let env: Envelope = serde_json::from_str(&row.envelope).map_err(|e| e.to_string())?;
            Signed::from_envelope(env)
        } else {
            let report = ScoreReport {
                run_id: active.ann.round_id.clone(),
                lane: "sat".into(),
                validator_hotkey: self.key.public(),
                scores: self.own_scores(active, mg).await?,
                epoch: 0,
                prev_report_id: None,
            };
            let signed = Signed::sign(&report, &self.key).map_err(|e| e.to_string())?;
            let text = serde_json::to_string(signed.envelope()).map_err(|e| e.to_string())?;
            if self.cfg.equivocate {
                // The second report exists before the first can be served, so the second
                // request for the run already gets it.
                self.prepare_equivocation(&report).await?;
            }
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
            signed
        };
        // Each step below is idempotent, so a retried finalize completes what a failed one began.
        self.log_with_receipt(
            "score_report",
            &format!("score-report/{run_id}"),
            signed.envelope(),
        )
        .await?;
        let report = signed.verify().map_err(|e| e.to_string())?.payload;
        let commitment = self.commit_scores(&report).await?;
        if self.cfg.equivocate {
            self.commit_equivocation(&report).await;
        }
        Ok((signed, commitment))
    }

    /// Devnet fault injection: a second, different report for the run, and an attempt to
    /// commit it too (the ledger refuses and keeps the evidence).
    async fn prepare_equivocation(&self, report: &ScoreReport) -> Result<(), String> {
        let key = format!("equivocate.{}", report.run_id);
        if self
            .store
            .kv_get(&key)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Ok(());
        }
        let other = equivocal_twin(report);
        let signed = Signed::sign(&other, &self.key).map_err(|e| e.to_string())?;
        let text = serde_json::to_string(signed.envelope()).map_err(|e| e.to_string())?;
        self.store
            .kv_put(&key, &text)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Devnet fault injection: try to commit the second report too (the ledger refuses and
    /// keeps both signed commitments as evidence).
    async fn commit_equivocation(&self, report: &ScoreReport) {
        if let Err(e) = self.commit_scores(&equivocal_twin(report)).await {
            tracing::warn!(error = %e, "equivocating validator's second commitment refused, as it should be");
        }
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
                    if self.cfg.enforce_commitments {
                        self.check_against_commitment(
                            peer,
                            run_id,
                            &v.payload,
                            signed.envelope(),
                            deadline,
                        )
                        .await?;
                    }
                    self.check_and_store_peer_report(
                        peer,
                        run_id,
                        &v.payload,
                        signed.envelope(),
                        &digest,
                    )
                    .await?;
                    return Ok((v.payload, digest));
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("no report before the collection deadline: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// The peer's ledger commitment for the run must match the report's scores. A mismatch is
    /// equivocation: the signed commitment transaction and the signed report are the evidence.
    async fn check_against_commitment(
        &self,
        peer: &hallmark_ledger::Neuron,
        run_id: &RoundId,
        report: &ScoreReport,
        envelope: &Envelope,
        deadline: Instant,
    ) -> Result<(), String> {
        let commitment = loop {
            match self.ledger.commitment(&peer.hotkey, run_id.as_str()).await {
                Ok(Some(c)) => break c,
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Ok(None) => {
                    return Err(
                        "no score commitment on the ledger before the collection deadline".into(),
                    )
                }
                Err(e) if Instant::now() < deadline => {
                    tracing::warn!(error = %e, "reading a commitment failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => return Err(format!("reading the commitment: {e}")),
            }
        };
        let committed = parse_commitment(&commitment.commitment, run_id.as_str())
            .map_err(|e| format!("malformed commitment on the ledger: {e}"))?;
        let actual = scores_hash(run_id.as_str(), &report.lane, &report.scores)
            .map_err(|e| format!("report scores cannot be hashed: {e}"))?;
        if committed != actual {
            self.record_equivocation(EquivocationEvidence {
                validator: peer.hotkey,
                run_id: run_id.to_string(),
                kind: "report_vs_commitment".into(),
                first: commitment.envelope,
                second: envelope.clone(),
            })
            .await?;
            return Err(format!(
                "scores hash to {actual}, the ledger commitment says {committed}: equivocation, report dropped"
            ));
        }
        Ok(())
    }

    /// Stores the first report seen from a peer for a run; a later one must be the same or
    /// the next epoch naming it. A different report of the same epoch is equivocation.
    async fn check_and_store_peer_report(
        &self,
        peer: &hallmark_ledger::Neuron,
        run_id: &RoundId,
        report: &ScoreReport,
        envelope: &Envelope,
        digest: &str,
    ) -> Result<(), String> {
        let who = peer.hotkey.to_ss58();
        let head = ReportHead {
            epoch: report.epoch,
            report_id: digest.to_string(),
            prev_report_id: report.prev_report_id.clone(),
        };
        let stored = self
            .store
            .score_report(run_id.as_str(), &who)
            .await
            .map_err(|e| e.to_string())?;
        let Some(stored) = stored else {
            check_succession(None, &head).map_err(|e| format!("{}: {e}", e.code()))?;
            let row = ScoreReportRow {
                run_id: run_id.to_string(),
                validator: who,
                envelope: serde_json::to_string(envelope).map_err(|e| e.to_string())?,
                digest: digest.to_string(),
                received_ms: hallmark_core::time::now_unix_ms(),
            };
            return match self.store.put_score_report(&row).await {
                Ok(()) => Ok(()),
                // Another fetch stored a different report between our read and write.
                Err(StoreError::Conflict(_)) => {
                    Box::pin(
                        self.check_and_store_peer_report(peer, run_id, report, envelope, digest),
                    )
                    .await
                }
                Err(e) => Err(e.to_string()),
            };
        };
        let stored_env: Envelope =
            serde_json::from_str(&stored.envelope).map_err(|e| e.to_string())?;
        let stored_report = Signed::<ScoreReport>::from_envelope(stored_env.clone())
            .verify()
            .map_err(|e| format!("stored report: {e}"))?
            .payload;
        let prev = ReportHead {
            epoch: stored_report.epoch,
            report_id: stored.digest.clone(),
            prev_report_id: stored_report.prev_report_id,
        };
        match check_succession(Some(&prev), &head) {
            Ok(_) => Ok(()),
            Err(e @ SuccessionError::Equivocation { .. }) => {
                self.record_equivocation(EquivocationEvidence {
                    validator: peer.hotkey,
                    run_id: run_id.to_string(),
                    kind: "report".into(),
                    first: stored_env,
                    second: envelope.clone(),
                })
                .await?;
                Err(format!("{}: {e}", e.code()))
            }
            Err(e) => Err(format!("{}: {e}", e.code())),
        }
    }

    /// The coordinator's signed pick for the round, waiting until `deadline` if asked to.
    async fn owner_pick(&self, run_id: &RoundId, deadline: Option<Instant>) -> Option<OwnerPick> {
        let path = format!("/v1/rounds/{run_id}/pick");
        loop {
            match self.coordinator.get::<Envelope>(&path).await {
                Ok(env) => match Signed::<OwnerPick>::from_envelope(env).verify() {
                    Ok(v)
                        if v.signer == self.coordinator_hotkey && &v.payload.round_id == run_id =>
                    {
                        return Some(v.payload)
                    }
                    Ok(_) => {
                        tracing::warn!(round = %run_id, "owner pick not signed by the pinned coordinator or for another round; ignored");
                        return None;
                    }
                    Err(e) => {
                        tracing::warn!(round = %run_id, error = %e, "owner pick does not verify; ignored");
                        return None;
                    }
                },
                Err(_) if deadline.is_some_and(|d| Instant::now() < d) => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(_) => return None,
            }
        }
    }

    /// Scores the round, gathers reports, decides, sets weights and stores the result.
    async fn finalize(&self, active: &ActiveRound) -> Result<RoundResult, String> {
        let run_id = active.ann.round_id.clone();
        let mg = self.ledger.metagraph().await.map_err(|e| e.to_string())?;
        let (own, commitment) = self.own_report(active, &mg).await?;
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
        let mode = self.cfg.weight_mode;
        let pick_deadline = (mode != WeightMode::Decentralized)
            .then(|| Instant::now() + Duration::from_millis(self.cfg.collect_timeout_ms));
        let pick = self.owner_pick(&run_id, pick_deadline).await;
        if let Some(p) = &pick {
            let record = compare_run(
                run_id.as_str(),
                p.winner,
                &p.scores,
                decision.winner,
                &decision.consensus,
                self.cfg.divergence_top_k,
            );
            let text = serde_json::to_string(&record).map_err(|e| e.to_string())?;
            self.store
                .put_divergence(run_id.as_str(), &text, hallmark_core::time::now_unix_ms())
                .await
                .map_err(|e| e.to_string())?;
        }
        let weights_for = match mode {
            WeightMode::Decentralized => decision.winner.filter(|_| decision.quorum_met),
            WeightMode::Owner | WeightMode::Shadow => pick.as_ref().and_then(|p| p.winner),
        };
        let weights_tx = match weights_for {
            Some(w) => {
                let chain = self.chain_id().await?;
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
            None => None,
        };
        let equivocators = self
            .store
            .equivocators(run_id.as_str())
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .filter_map(|v| v.parse().ok())
            .collect();
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
            weight_mode: mode.as_str().into(),
            owner_pick: pick.and_then(|p| p.winner),
            weights_for,
            commitment: Some(commitment),
            equivocators,
        };
        let signed_result = Signed::sign(&result, &self.key).map_err(|e| e.to_string())?;
        self.log_with_receipt(
            "round_result",
            &format!("round-result/{run_id}"),
            signed_result.envelope(),
        )
        .await?;
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

/// A report with the same run and different scores (devnet equivocation).
fn equivocal_twin(report: &ScoreReport) -> ScoreReport {
    let mut other = report.clone();
    other.scores.values_mut().for_each(|s| *s = 1.0 - *s);
    if other.scores == report.scores {
        // Every score was 0.5 (or there is nobody to score): differ anyway.
        other.scores.values_mut().for_each(|s| *s = 0.0);
        other.lane = format!("{}-twin", report.lane);
    }
    other
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
        .route("/v1/consensus/scores/{run_id}/receipt", get(score_receipt))
        .route("/v1/consensus/equivocations", get(equivocations))
        .route("/v1/consensus/divergence", get(divergence))
        .route("/v1/rounds/{run_id}/result", get(result))
        .route("/v1/rounds/{run_id}/receipt", get(result_receipt))
        .route("/v1/validator/status", get(status))
        .with_state(v.clone())
        .merge(crate::log_routes::router(
            v.log.clone(),
            v.origin.clone(),
            v.key.clone(),
        ))
}

async fn receipt_of(v: &Validator, subject: &str) -> Result<Response, ApiError> {
    match v.store.receipt(subject).await? {
        Some(text) => Ok(raw_json(text)),
        None => Err(ApiError::not_found(format!(
            "no receipt for {subject:?} yet"
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
    if v.cfg.equivocate {
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
