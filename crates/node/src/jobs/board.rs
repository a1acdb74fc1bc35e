//! The coordinator's job board: clients post signed job requests, registered workers claim
//! them under a lease and hand in signed results with their proof packages, validators post
//! signed votes. The board counts votes by ledger stake, keeps the certificate that settles a
//! job and any equivocation evidence, and takes both to the ledger, which re-checks them and
//! slashes. The board never verifies a proof itself: only validators' votes decide, so a bad
//! proof reaches the vote and its worker is slashed rather than silently dropped.
//!
//! - `POST /v1/jobs` — a client-signed [`JobRequest`] envelope (201 new, 200 already known)
//! - `GET  /v1/jobs?status=S&limit=N` — jobs, oldest first (`settled_since_ms=T`: jobs
//!   settled since T, so a slow validator still records its vote)
//! - `GET  /v1/jobs/{id}` — one job with its request, result, votes, certificate and history
//! - `GET  /v1/jobs/{id}/proof` — the proof package, byte for byte
//! - `POST /v1/jobs/claim` — (worker-signed) the oldest queued job, under a lease
//! - `POST /v1/jobs/{id}/proof` — (worker-signed) the signed result and its package
//! - `POST /v1/jobs/{id}/votes` — a validator-signed [`JobVote`] envelope
//! - `GET  /v1/jobs/equivocations` — every validator caught signing two votes on one job

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use hallmark_consensus::{
    tally_votes, JobResult, JobVote, Quorum, VoteCertificate, VoteEquivocation, VoteOutcome,
};
use hallmark_core::{Envelope, Keypair, PublicKey, Signed};
use hallmark_ledger::{Ledger, LedgerError, Role, TxBody};
use hallmark_store::{JobEquivocationRow, JobRow, JobSettlement, NewJob, ProofSubmission, Store};
use serde::Deserialize;
use tokio::sync::{watch, Mutex, Notify};

use super::messages::{
    check_request, CheckedRequest, ClaimRequest, ClaimResponse, JobEvent, JobRequest,
    JobRequestError, JobStatus, JobView, ProofUpload, VoteAck,
};
use crate::api::{parse_json, ApiError};
use crate::auth::{PostAuth, SignedJson, SignedPosts};
use crate::clients::ClientGate;
use crate::config::{ClientsSection, JobsSection};
use crate::error::SettingError;
use crate::http_ledger::HttpLedger;
use crate::lanes::{DynJobLane, LaneRegistry};
use crate::registration::submit_tx;

/// The coordinator's job board.
pub struct JobBoard {
    store: Store,
    key: Keypair,
    ledger: HttpLedger,
    cfg: JobsSection,
    lanes: LaneRegistry,
    quorum: Quorum,
    auth: PostAuth,
    /// Serialises state changes that read then write (tallies, settlements).
    turn: Mutex<()>,
    /// Wakes the settler when something is ready for the ledger.
    settle_wake: Notify,
    /// Stake and rate checks on client requests.
    clients: ClientGate,
    skew_window_secs: i64,
}

fn outcome_of_status(status: &str) -> VoteOutcome {
    match status {
        "approved" => VoteOutcome::Approved,
        "rejected" => VoteOutcome::Rejected,
        _ => VoteOutcome::Pending,
    }
}

/// What a job of a lane that does not settle on the ledger records as its settlement.
pub const CERTIFICATE_ONLY: &str = "certificate_only";

/// A request that does not check: 401 for its signature, 422 for what it asks.
fn refused_request(e: JobRequestError) -> ApiError {
    match e {
        JobRequestError::Signature(_) => {
            ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
        }
        _ => ApiError::unprocessable(e.code(), e.to_string()),
    }
}

/// The stored form of a checked request: what `insert_job` keeps.
struct StoredRequest {
    request: String,
    spec: String,
    client: String,
}

impl StoredRequest {
    fn of(signed: &Signed<JobRequest>, checked: &CheckedRequest) -> Result<Self, ApiError> {
        Ok(Self {
            request: serde_json::to_string(signed.envelope()).map_err(ApiError::internal)?,
            spec: serde_json::to_string(&checked.spec).map_err(ApiError::internal)?,
            client: checked.client.to_ss58(),
        })
    }

    fn row<'a>(&'a self, checked: &'a CheckedRequest) -> NewJob<'a> {
        NewJob {
            job_id: &checked.job_id,
            lane: &checked.request.lane,
            client: &self.client,
            request: &self.request,
            spec: &self.spec,
            queued_ms: now_ms(),
        }
    }
}

fn now_ms() -> i64 {
    hallmark_core::time::now_unix_ms()
}

fn corrupt(job_id: &str, what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("stored job {job_id}: {what}: {e}"))
}

impl JobBoard {
    /// A board for the job lanes of `lanes`, signing ledger transactions with `key` and
    /// reading stakes from `ledger`.
    pub fn new(
        store: Store,
        key: Keypair,
        ledger: HttpLedger,
        cfg: JobsSection,
        lanes: LaneRegistry,
        clients: ClientsSection,
        skew_window_secs: i64,
    ) -> Result<Self, SettingError> {
        let quorum = Quorum::new(cfg.quorum.0, cfg.quorum.1)
            .map_err(|e| SettingError::new("coordinator.jobs.quorum", e.to_string()))?;
        if cfg.lease_ms < 1_000 {
            return Err(SettingError::new(
                "coordinator.jobs.lease_ms",
                "must be at least 1000",
            ));
        }
        Ok(Self {
            store: store.clone(),
            key,
            clients: ClientGate::new(clients, ledger.clone()),
            skew_window_secs,
            ledger,
            cfg,
            lanes,
            quorum,
            auth: PostAuth::new(skew_window_secs, store.clone()),
            turn: Mutex::new(()),
            settle_wake: Notify::new(),
        })
    }

    /// Queues a signed request the coordinator made itself (build jobs); gives back the job
    /// and whether it is new.
    pub async fn submit(&self, signed: Signed<JobRequest>) -> Result<(JobView, bool), ApiError> {
        self.submit_checked(signed, false).await
    }

    /// Queues a client's signed request from outside (`POST /v1/jobs`): as [`Self::submit`],
    /// but a new job also passes the client gate (bonded stake, rate, open jobs per client)
    /// and a plausible `created_ms`. The same request again returns its job ungated.
    pub async fn submit_from_client(
        &self,
        signed: Signed<JobRequest>,
    ) -> Result<(JobView, bool), ApiError> {
        self.submit_checked(signed, true).await
    }

    /// The gate in front of client requests (shared with compute claims).
    pub fn clients(&self) -> &ClientGate {
        &self.clients
    }

    async fn submit_checked(
        &self,
        signed: Signed<JobRequest>,
        gated: bool,
    ) -> Result<(JobView, bool), ApiError> {
        let checked = check_request(&self.lanes, &signed).map_err(refused_request)?;
        if let Some(row) = self.store.job(&checked.job_id).await? {
            return Ok((self.view(row).await?, false));
        }
        if gated {
            self.clients.check_time(
                "created_ms",
                checked.request.created_ms,
                now_ms(),
                self.skew_window_secs.saturating_mul(1000),
            )?;
            self.clients.admit(&checked.client).await?;
            let open = self
                .store
                .count_client_jobs(
                    &checked.client.to_ss58(),
                    &[JobStatus::Queued.as_str(), JobStatus::Assigned.as_str()],
                )
                .await?;
            let cap = self.clients.settings().max_open_jobs;
            if open >= cap {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_open_jobs",
                    format!(
                        "{} has {open} jobs open (at most {cap}); wait for them to be proven",
                        checked.client
                    ),
                ));
            }
        }
        let queued = self.store.count_jobs(JobStatus::Queued.as_str()).await?;
        if queued >= self.cfg.max_queued {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "queue_full",
                format!("{queued} jobs are waiting for workers; try again later"),
            ));
        }
        let stored = StoredRequest::of(&signed, &checked)?;
        let row = stored.row(&checked);
        match self.store.insert_job(&row).await {
            Ok(()) => {}
            // Two identical requests racing: the first one stands.
            Err(hallmark_store::StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(job = %row.job_id, lane = %row.lane, spec = %checked.lane.describe(&checked.spec), client = %checked.client, "job queued");
        let stored = self.load(row.job_id).await?;
        Ok((self.view(stored).await?, true))
    }

    /// Whether this board runs the job lane `name`.
    pub fn runs_lane(&self, name: &str) -> bool {
        self.lanes.job_lane(name).is_some()
    }

    /// Takes a job that arrives with its artifact, both signed by the same key (an
    /// attestation: the provider asks validators to check the evidence it hands in). The
    /// board checks the request like any other, that the result is the requester's for this
    /// job, and the lane's size cap and digest; the job goes straight to the vote.
    pub async fn submit_handed_in(
        &self,
        request: Signed<JobRequest>,
        result: Signed<JobResult>,
        artifact: Vec<u8>,
    ) -> Result<JobView, ApiError> {
        let checked = check_request(&self.lanes, &request).map_err(refused_request)?;
        let lane = checked.lane.clone();
        if artifact.len() > lane.max_artifact_bytes() {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "oversized",
                format!(
                    "the {} artifact is {} bytes; the cap is {}",
                    checked.request.lane,
                    artifact.len(),
                    lane.max_artifact_bytes()
                ),
            ));
        }
        let verified = result.verify().map_err(|e| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                format!("job result: {e}"),
            )
        })?;
        if verified.signer != checked.client || verified.payload.worker != checked.client {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "provenance_mismatch",
                "the result must be signed by, and name, the key that signed the request",
            ));
        }
        if verified.payload.job_id != checked.job_id {
            return Err(ApiError::unprocessable(
                "wrong_job",
                format!(
                    "the result is for {:?}, the request is job {}",
                    verified.payload.job_id, checked.job_id
                ),
            ));
        }
        let digest = lane.artifact_digest(&artifact);
        if verified.payload.result_digest != digest {
            return Err(ApiError::unprocessable(
                "digest_mismatch",
                format!(
                    "the result names {} but the artifact hashes to {digest}",
                    verified.payload.result_digest
                ),
            ));
        }
        let result_text = serde_json::to_string(result.envelope()).map_err(ApiError::internal)?;
        let stored = StoredRequest::of(&request, &checked)?;
        let row = stored.row(&checked);
        match self
            .store
            .insert_proven_job(&row, &stored.client, &result_text, &artifact, &digest)
            .await
        {
            Ok(()) => {}
            Err(hallmark_store::StoreError::Conflict(_)) => {
                return Err(ApiError::conflict(
                    "job_exists",
                    format!("{} was handed in already", checked.job_id),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(job = %checked.job_id, lane = %checked.request.lane, spec = %lane.describe(&checked.spec), "job handed in with its artifact");
        self.view(self.load(&checked.job_id).await?).await
    }

    /// The job lane called `name`, or `422 unknown_lane`.
    fn lane(&self, name: &str) -> Result<&Arc<dyn DynJobLane>, ApiError> {
        self.lanes.job_lane(name).ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_lane",
                format!(
                    "lane {name:?} takes no jobs here: expected one of {:?}",
                    self.lanes.job_lane_names()
                ),
            )
        })
    }

    async fn load(&self, job_id: &str) -> Result<JobRow, ApiError> {
        self.store
            .job(job_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no job {job_id:?}")))
    }

    /// Every distinct vote stored for a job.
    async fn stored_votes(&self, job_id: &str) -> Result<Vec<Signed<JobVote>>, ApiError> {
        self.store
            .job_votes(job_id)
            .await?
            .iter()
            .map(|t| serde_json::from_str::<Envelope>(t).map(Signed::from_envelope))
            .collect::<Result<_, _>>()
            .map_err(|e| corrupt(job_id, "vote", e))
    }

    /// The full public view of a stored job.
    pub async fn view(&self, row: JobRow) -> Result<JobView, ApiError> {
        let id = row.job_id.clone();
        let request: Envelope =
            serde_json::from_str(&row.request).map_err(|e| corrupt(&id, "request", e))?;
        // Checked when the job was queued; the spec column is what that check derived.
        let spec: serde_json::Value =
            serde_json::from_str(&row.spec).map_err(|e| corrupt(&id, "spec", e))?;
        let summary = match self.lanes.job_lane(&row.lane) {
            Some(lane) => lane.describe(&spec),
            None => format!("lane {} is not run here", row.lane),
        };
        let result = row
            .result
            .as_deref()
            .map(serde_json::from_str::<Envelope>)
            .transpose()
            .map_err(|e| corrupt(&id, "result", e))?;
        let certificate = row
            .certificate
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(&id, "certificate", e))?;
        let votes = self.stored_votes(&id).await?;
        let equivocations = self
            .store
            .job_equivocations(Some(&id))
            .await?
            .iter()
            .map(|r| serde_json::from_str(&r.evidence))
            .collect::<Result<_, _>>()
            .map_err(|e| corrupt(&id, "equivocation", e))?;
        let events = self
            .store
            .job_events(&id)
            .await?
            .into_iter()
            .map(|e| JobEvent {
                event: e.event,
                detail: e.detail,
                at_ms: e.at_ms,
            })
            .collect();
        let parse_key = |s: &str| s.parse::<PublicKey>().map_err(|e| corrupt(&id, "key", e));
        Ok(JobView {
            job_id: row.job_id.clone(),
            lane: row.lane,
            spec,
            summary,
            client: parse_key(&row.client)?,
            status: JobStatus::parse(&row.status)
                .ok_or_else(|| corrupt(&id, "status", &row.status))?,
            worker: row.worker.as_deref().map(parse_key).transpose()?,
            attempts: row.attempts,
            lease_until_ms: row.lease_until_ms,
            request,
            result,
            proof_hash: row.proof_hash,
            proof_bytes: row.proof_bytes,
            queued_ms: row.queued_ms,
            assigned_ms: row.assigned_ms,
            proven_ms: row.proven_ms,
            settled_ms: row.settled_ms,
            votes_valid_stake: row.valid_stake,
            votes_invalid_stake: row.invalid_stake,
            total_stake: row.total_stake,
            votes,
            certificate,
            equivocations,
            settle_tx: row.settle_tx,
            events,
        })
    }

    /// Hands the oldest queued job of `lane` to a registered worker under a lease.
    pub async fn claim(&self, worker: PublicKey, lane: &str) -> Result<Option<JobView>, ApiError> {
        // A lane whose work runs long (a sandboxed build) gets at least the lease it asks for.
        let lease_ms = self
            .lane(lane)?
            .lease_ms()
            .unwrap_or(0)
            .max(self.cfg.lease_ms);
        let mg = self.ledger.metagraph().await?;
        match mg.neuron(&worker) {
            Some(n) if n.role == Role::Worker && n.stake > 0 && !n.active => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "worker_inactive",
                    format!(
                        "{worker} sent no heartbeat for too long; it gets no jobs until it does"
                    ),
                ))
            }
            Some(n) if n.role == Role::Worker && n.stake > 0 => {}
            _ => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "not_registered",
                    format!("{worker} is not a registered worker with stake"),
                ))
            }
        }
        let now = now_ms();
        self.expire_leases(now).await?;
        let lease_until = now + i64::try_from(lease_ms).unwrap_or(i64::MAX / 2);
        match self
            .store
            .claim_job(lane, &worker.to_ss58(), now, lease_until)
            .await?
        {
            Some(row) => {
                tracing::info!(job = %row.job_id, %worker, attempt = row.attempts, "job assigned");
                Ok(Some(self.view(row).await?))
            }
            None => Ok(None),
        }
    }

    async fn expire_leases(&self, now: i64) -> Result<(), ApiError> {
        for id in self.store.expire_job_leases(now).await? {
            tracing::warn!(job = %id, "lease expired; the job is queued again");
        }
        Ok(())
    }

    /// Takes a worker's signed result and package for the job it holds.
    pub async fn hand_in(
        &self,
        worker: PublicKey,
        job_id: &str,
        upload: ProofUpload,
    ) -> Result<JobView, ApiError> {
        let row = self.load(job_id).await?;
        let lane = self.lane(&row.lane)?.clone();
        let package = base64::engine::general_purpose::STANDARD
            .decode(upload.package.as_bytes())
            .map_err(|e| {
                ApiError::bad_request("invalid_package", format!("package is not base64: {e}"))
            })?;
        if package.len() > lane.max_artifact_bytes() {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "oversized",
                format!(
                    "the {} artifact is {} bytes; the cap is {}",
                    row.lane,
                    package.len(),
                    lane.max_artifact_bytes()
                ),
            ));
        }
        let signed = Signed::<JobResult>::from_envelope(upload.result);
        let verified = signed.verify().map_err(|e| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                format!("job result: {e}"),
            )
        })?;
        let result = verified.payload;
        if verified.signer != worker || result.worker != worker {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "provenance_mismatch",
                "the result must be signed by the worker it names, who must sign the request",
            ));
        }
        if result.job_id != job_id {
            return Err(ApiError::unprocessable(
                "wrong_job",
                format!("the result is for {:?}", result.job_id),
            ));
        }
        let digest = lane.artifact_digest(&package);
        if result.result_digest != digest {
            return Err(ApiError::unprocessable(
                "digest_mismatch",
                format!(
                    "the result names {} but the package hashes to {digest}",
                    result.result_digest
                ),
            ));
        }
        let result_text = serde_json::to_string(signed.envelope()).map_err(ApiError::internal)?;
        let took = self
            .store
            .submit_job_proof(&ProofSubmission {
                job_id,
                worker: &worker.to_ss58(),
                result: &result_text,
                proof: &package,
                proof_hash: &digest,
                now_ms: now_ms(),
            })
            .await?;
        if !took {
            let holder = row.worker.unwrap_or_else(|| "nobody".into());
            return Err(ApiError::conflict(
                "not_assigned",
                format!(
                    "{job_id} is {} and held by {holder} (its lease may have expired)",
                    row.status
                ),
            ));
        }
        tracing::info!(job = %job_id, %worker, bytes = package.len(), "proof handed in");
        self.view(self.load(job_id).await?).await
    }

    fn validator_stakes(mg: &hallmark_ledger::Metagraph) -> BTreeMap<PublicKey, u64> {
        mg.validators()
            .filter(|n| n.voting_stake > 0)
            .map(|n| (n.hotkey, n.voting_stake))
            .collect()
    }

    /// Records a validator's signed vote and counts the job's votes again. A second,
    /// different vote from the same validator is kept as evidence and answered with
    /// `409 equivocation`.
    pub async fn vote(&self, job_id: &str, signed: Signed<JobVote>) -> Result<VoteAck, ApiError> {
        let verified = signed.verify().map_err(|e| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                format!("vote: {e}"),
            )
        })?;
        let vote = verified.payload;
        let validator = verified.signer;
        if vote.job_id != job_id {
            return Err(ApiError::unprocessable(
                "wrong_job",
                format!("the vote is for {:?}", vote.job_id),
            ));
        }
        let mg = self.ledger.metagraph().await?;
        let stakes = Self::validator_stakes(&mg);
        if !stakes.contains_key(&validator) {
            if mg.validators().any(|n| n.hotkey == validator) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "no_voting_stake",
                    format!("{validator} has no voting stake this stake epoch: stake bonded during an epoch counts from the next boundary, and only the largest validators count"),
                ));
            }
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_registered",
                format!("{validator} is not a registered validator"),
            ));
        }
        let _turn = self.turn.lock().await;
        let row = self.load(job_id).await?;
        let Some(proof_hash) = row.proof_hash.clone() else {
            return Err(ApiError::conflict(
                "not_proven",
                format!(
                    "{job_id} is {}; there is nothing to vote on yet",
                    row.status
                ),
            ));
        };
        let digest = signed.digest().map_err(ApiError::internal)?.to_hex();
        let text = serde_json::to_string(signed.envelope()).map_err(ApiError::internal)?;
        self.store
            .add_job_vote(job_id, &validator.to_ss58(), &digest, &text, now_ms())
            .await?;
        let votes = self.stored_votes(job_id).await?;
        let tally = tally_votes(job_id, &proof_hash, &votes, &stakes, self.quorum);
        let mut equivocated = false;
        for e in &tally.equivocations {
            let fresh = self
                .store
                .put_job_equivocation(&JobEquivocationRow {
                    job_id: job_id.to_string(),
                    validator: e.validator.to_ss58(),
                    evidence: serde_json::to_string(e).map_err(ApiError::internal)?,
                    found_ms: now_ms(),
                    slash_tx: None,
                })
                .await?;
            if fresh {
                tracing::warn!(job = %job_id, validator = %e.validator, "validator signed two votes on one job: equivocation");
                self.store
                    .add_job_event(job_id, "equivocation", &e.validator.to_ss58(), now_ms())
                    .await?;
                self.settle_wake.notify_one();
            }
            equivocated |= e.validator == validator;
        }
        let mut status =
            JobStatus::parse(&row.status).ok_or_else(|| corrupt(job_id, "status", &row.status))?;
        if status == JobStatus::Proven {
            if let Some(cert) = tally.certificate() {
                let settled = match cert.outcome {
                    VoteOutcome::Approved => JobStatus::Approved,
                    _ => JobStatus::Rejected,
                };
                let text = serde_json::to_string(&cert).map_err(ApiError::internal)?;
                self.store
                    .settle_job(&JobSettlement {
                        job_id,
                        status: settled.as_str(),
                        certificate: &text,
                        valid_stake: tally.valid_stake,
                        invalid_stake: tally.invalid_stake,
                        total_stake: tally.total_stake,
                        now_ms: now_ms(),
                    })
                    .await?;
                tracing::info!(job = %job_id, outcome = settled.as_str(), valid = tally.valid_stake, invalid = tally.invalid_stake, total = tally.total_stake, "job settled by vote");
                status = settled;
                self.settle_wake.notify_one();
            } else {
                self.store
                    .set_job_stake(
                        job_id,
                        tally.valid_stake,
                        tally.invalid_stake,
                        tally.total_stake,
                    )
                    .await?;
            }
        }
        if equivocated {
            return Err(ApiError::conflict(
                "equivocation",
                format!("{validator} already voted differently on {job_id}; both votes are kept as evidence"),
            ));
        }
        let row = self.load(job_id).await?;
        Ok(VoteAck {
            job_id: job_id.to_string(),
            status,
            votes_valid_stake: row.valid_stake,
            votes_invalid_stake: row.invalid_stake,
            total_stake: row.total_stake,
        })
    }

    /// Takes settled jobs and equivocation evidence to the ledger (which re-checks them and
    /// slashes), and returns expired leases to the queue. Anything the ledger could not be
    /// reached for is retried on the next pass, so nothing is lost across restarts.
    pub async fn settle_pending(&self) -> Result<(), ApiError> {
        self.expire_leases(now_ms()).await?;
        let (on_ledger, by_certificate): (Vec<JobRow>, Vec<JobRow>) = self
            .store
            .jobs_to_settle()
            .await?
            .into_iter()
            .partition(|row| self.lane(&row.lane).is_ok_and(|l| l.settles_on_ledger()));
        // Decided by their certificate alone (nothing to pay or slash): closed whether or not
        // the ledger answers.
        for row in by_certificate {
            self.store
                .set_job_settle_tx(
                    &row.job_id,
                    CERTIFICATE_ONLY,
                    "decided_by_certificate",
                    now_ms(),
                )
                .await?;
        }
        let chain_id = match self.ledger.chain_id().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "ledger unreachable; settlement deferred");
                return Ok(());
            }
        };
        for row in on_ledger {
            self.settle_one(&chain_id, row).await?;
        }
        for e in self.store.job_equivocations_to_slash().await? {
            let evidence: VoteEquivocation = serde_json::from_str(&e.evidence)
                .map_err(|err| corrupt(&e.job_id, "equivocation", err))?;
            let body = TxBody::SlashEquivocation { evidence };
            let outcome = submit_tx(&self.ledger, &chain_id, &self.key, body).await;
            let Some(tx) = self
                .ledger_outcome(&e.job_id, "equivocation_slash", outcome)
                .await?
            else {
                continue;
            };
            self.store
                .set_equivocation_slash_tx(&e.job_id, &e.validator, &tx)
                .await?;
        }
        Ok(())
    }

    async fn settle_one(&self, chain_id: &str, row: JobRow) -> Result<(), ApiError> {
        let id = row.job_id.as_str();
        let (Some(cert), Some(result)) = (row.certificate.as_deref(), row.result.as_deref()) else {
            return Err(corrupt(
                id,
                "settlement",
                "a settled job lacks its certificate or result",
            ));
        };
        let certificate = serde_json::from_str(cert).map_err(|e| corrupt(id, "certificate", e))?;
        let result = Signed::<JobResult>::from_envelope(
            serde_json::from_str(result).map_err(|e| corrupt(id, "result", e))?,
        );
        let settle = |certificate| TxBody::SettleJob {
            certificate,
            result: result.clone(),
        };
        let mut outcome = submit_tx(&self.ledger, chain_id, &self.key, settle(certificate)).await;
        if matches!(&outcome, Err(e) if e.code() == "invalid_evidence") {
            // Stakes may have moved since the vote (a slashed equivocator whose first vote
            // is in the certificate): count the stored votes again against today's stakes,
            // now without any equivocator, and retry once if the outcome holds.
            if let Some(cert) = self.recertify(&row).await? {
                outcome = submit_tx(&self.ledger, chain_id, &self.key, settle(cert)).await;
            }
        }
        if let Some(tx) = self.ledger_outcome(id, "settlement", outcome).await? {
            self.store
                .set_job_settle_tx(id, &tx, "settled_on_ledger", now_ms())
                .await?;
        }
        Ok(())
    }

    /// A fresh certificate for a settled job from all its stored votes and current stakes,
    /// if it reaches the same outcome; stored in place of the old one.
    async fn recertify(&self, row: &JobRow) -> Result<Option<VoteCertificate>, ApiError> {
        let id = row.job_id.as_str();
        let Some(proof_hash) = row.proof_hash.as_deref() else {
            return Ok(None);
        };
        let stakes = Self::validator_stakes(&self.ledger.metagraph().await?);
        let votes = self.stored_votes(id).await?;
        let tally = tally_votes(id, proof_hash, &votes, &stakes, self.quorum);
        let Some(cert) = tally.certificate() else {
            return Ok(None);
        };
        if cert.outcome != outcome_of_status(&row.status) {
            return Ok(None);
        }
        let text = serde_json::to_string(&cert).map_err(ApiError::internal)?;
        self.store
            .recertify_job(
                id,
                &text,
                tally.valid_stake,
                tally.invalid_stake,
                tally.total_stake,
                now_ms(),
            )
            .await?;
        Ok(Some(cert))
    }

    /// What to record for a ledger submission: its hash, a note that it was already there or
    /// refused (not retried), or `None` to retry later.
    async fn ledger_outcome(
        &self,
        job_id: &str,
        what: &str,
        outcome: Result<hallmark_ledger::TxReceipt, LedgerError>,
    ) -> Result<Option<String>, ApiError> {
        match outcome {
            Ok(receipt) => {
                tracing::info!(job = %job_id, tx = %receipt.tx_hash, "{what} applied on the ledger");
                Ok(Some(receipt.tx_hash))
            }
            Err(e) if matches!(e.code(), "already_settled" | "already_slashed") => {
                Ok(Some(format!("already:{}", e.code())))
            }
            Err(LedgerError::Unavailable(m)) => {
                tracing::warn!(job = %job_id, error = %m, "ledger unreachable; {what} deferred");
                Ok(None)
            }
            Err(e) => {
                tracing::error!(job = %job_id, code = e.code(), error = %e, "the ledger refused the {what}");
                self.store
                    .add_job_event(job_id, &format!("{what}_refused"), &e.to_string(), now_ms())
                    .await?;
                Ok(Some(format!("refused:{}", e.code())))
            }
        }
    }

    /// The background loop: settle whatever is ready, on a timer and whenever a vote settles
    /// a job or exposes an equivocation.
    pub async fn run_settler(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.cfg.settle_poll_ms.max(50));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = self.settle_wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
            if let Err(e) = self.settle_pending().await {
                tracing::warn!(error = %e.error.message, "settling jobs failed");
            }
        }
    }
}

impl SignedPosts for JobBoard {
    fn post_auth(&self) -> &PostAuth {
        &self.auth
    }
}

/// The job board's routes.
pub fn router(board: Arc<JobBoard>) -> Router {
    Router::new()
        .route("/v1/jobs", post(submit).get(list))
        .route("/v1/jobs/claim", post(claim))
        .route("/v1/jobs/equivocations", get(equivocations))
        .route("/v1/jobs/{id}", get(show))
        .route("/v1/jobs/{id}/proof", get(proof).post(hand_in))
        .route("/v1/jobs/{id}/votes", post(vote))
        .with_state(board)
}

/// Describes [`router`]'s routes for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    use hallmark_core::dsse::Envelope;
    spec.post("/v1/jobs", "Submit a job (signed JobRequest)")
        .describe("The body is a DSSE envelope whose payload is a job request; resubmitting the same envelope answers the same job.")
        .body::<Envelope>()
        .json::<JobView>(201, "The job")
        .json::<JobView>(200, "The job, already known")
        .errors(&[(400, "Malformed, wrongly signed or refused by the lane"), (402, "Not enough stake or balance"), (429, "Rate limited")]);
    spec.get("/v1/jobs", "Recent jobs")
        .query::<ListQuery>()
        .ok::<Vec<JobView>>()
        .errors(&[(400, "Bad query")]);
    spec.post("/v1/jobs/claim", "Claim the next job (signed by a worker)")
        .body::<Envelope>()
        .ok::<ClaimResponse>()
        .errors(&[
            (400, "Malformed or wrongly signed"),
            (403, "Not a registered worker"),
        ]);
    spec.get("/v1/jobs/equivocations", "Validators caught voting twice")
        .ok::<Vec<hallmark_consensus::votes::VoteEquivocation>>();
    spec.get("/v1/jobs/{id}", "A job")
        .ok::<JobView>()
        .errors(&[(404, "No such job")]);
    spec.get("/v1/jobs/{id}/proof", "A job's proof bytes")
        .content(
            200,
            "application/octet-stream",
            "The proof as the worker handed it in",
        )
        .errors(&[(404, "No such job, or no proof yet")]);
    spec.post(
        "/v1/jobs/{id}/proof",
        "Hand in a proof (signed by the claiming worker)",
    )
    .body::<Envelope>()
    .ok::<JobView>()
    .errors(&[
        (400, "Malformed or wrongly signed"),
        (403, "Not this job's worker"),
        (404, "No such job"),
        (409, "Not awaiting a proof"),
    ]);
    spec.post("/v1/jobs/{id}/votes", "A validator's signed vote on a job")
        .body::<Envelope>()
        .ok::<VoteAck>()
        .errors(&[
            (400, "Malformed or wrongly signed"),
            (403, "Not a validator"),
            (404, "No such job"),
        ]);
}

async fn submit(
    State(b): State<Arc<JobBoard>>,
    body: Bytes,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let env: Envelope = parse_json(&body)?;
    let (view, fresh) = b.submit_from_client(Signed::from_envelope(env)).await?;
    let status = if fresh {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct ListQuery {
    status: Option<String>,
    limit: Option<u32>,
    settled_since_ms: Option<i64>,
}

async fn list(
    State(b): State<Arc<JobBoard>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<JobView>>, ApiError> {
    if let Some(s) = &q.status {
        if JobStatus::parse(s).is_none() {
            return Err(ApiError::bad_request(
                "invalid_status",
                format!("status {s:?}: expected queued, assigned, proven, approved or rejected"),
            ));
        }
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1_000);
    let rows = match q.settled_since_ms {
        Some(_) if q.status.is_some() => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "status and settled_since_ms do not combine",
            ))
        }
        Some(since) => b.store.jobs_settled_since(since, limit).await?,
        None => b.store.jobs(q.status.as_deref(), limit).await?,
    };
    let mut out = Vec::new();
    for row in rows {
        out.push(b.view(row).await?);
    }
    Ok(Json(out))
}

async fn show(
    State(b): State<Arc<JobBoard>>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let row = b.load(&id).await?;
    Ok(Json(b.view(row).await?))
}

async fn proof(
    State(b): State<Arc<JobBoard>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let row = b.load(&id).await?;
    let bytes = b.store.job_proof(&id).await?.ok_or_else(|| {
        ApiError::not_found(format!("{id} is {} and has no proof yet", row.status))
    })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes))
}

async fn claim(
    State(b): State<Arc<JobBoard>>,
    SignedJson(worker, req): SignedJson<ClaimRequest>,
) -> Result<Json<ClaimResponse>, ApiError> {
    let job = b.claim(worker, &req.lane).await?;
    Ok(Json(ClaimResponse { job }))
}

async fn hand_in(
    State(b): State<Arc<JobBoard>>,
    Path(id): Path<String>,
    SignedJson(worker, upload): SignedJson<ProofUpload>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(b.hand_in(worker, &id, upload).await?))
}

async fn vote(
    State(b): State<Arc<JobBoard>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<VoteAck>, ApiError> {
    let env: Envelope = parse_json(&body)?;
    Ok(Json(b.vote(&id, Signed::from_envelope(env)).await?))
}

async fn equivocations(
    State(b): State<Arc<JobBoard>>,
) -> Result<Json<Vec<VoteEquivocation>>, ApiError> {
    let rows = b.store.job_equivocations(None).await?;
    let out = rows
        .iter()
        .map(|r| {
            serde_json::from_str(&r.evidence).map_err(|e| corrupt(&r.job_id, "equivocation", e))
        })
        .collect::<Result<_, _>>()?;
    Ok(Json(out))
}
