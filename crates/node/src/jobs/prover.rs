//! The worker's side of jobs: claim a job of a lane this worker has an executor for, run it
//! (prove, build, attest …), sign the result and hand in the artifact.
//!
//! - `GET /v1/worker/jobs` — jobs proven and handed in by this worker

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use hallmark_consensus::JobResult;
use hallmark_core::{Keypair, PublicKey, Signed};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::messages::{check_request, ClaimRequest, ClaimResponse, JobView, ProofUpload};
use crate::client::NodeClient;
use crate::error::TaskError;
use crate::faults::Faults;
use crate::lanes::{DynExecutor, LaneRegistry};

/// A worker's job loop.
pub struct JobProver {
    key: Keypair,
    coordinator: NodeClient,
    /// Executors by lane, and the request checks (the registry's job lanes).
    lanes: LaneRegistry,
    /// What this worker is told to do wrong (devnet, tests).
    faults: Faults,
    poll: Duration,
    proven: AtomicU64,
    handed_in: AtomicU64,
    failed: AtomicU64,
    last_job: Mutex<Option<String>>,
}

/// `GET /v1/worker/jobs`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProverStatus {
    pub hotkey: PublicKey,
    pub backend: String,
    pub jobs_proven: u64,
    pub jobs_handed_in: u64,
    pub jobs_failed: u64,
    pub last_job: Option<String>,
    /// Whether it hands in corrupted artifacts (fault injection).
    pub corrupt_artifacts: bool,
}

impl JobProver {
    /// A worker claiming jobs of every lane `lanes` has an executor for from `coordinator`,
    /// with `key`.
    pub fn new(
        key: Keypair,
        coordinator: NodeClient,
        lanes: LaneRegistry,
        faults: Faults,
        poll: Duration,
    ) -> Self {
        Self {
            coordinator: coordinator.signed_by(key.clone()),
            key,
            lanes,
            faults,
            poll,
            proven: AtomicU64::new(0),
            handed_in: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_job: Mutex::new(None),
        }
    }

    /// Claims one job (trying each lane it has an executor for) and works it; `Ok(false)`
    /// when none was queued.
    pub async fn work_one(&self) -> Result<bool, TaskError> {
        let executors: Vec<Arc<dyn DynExecutor>> = self.lanes.executors().cloned().collect();
        for executor in executors {
            let claim: ClaimResponse = self
                .coordinator
                .post(
                    "/v1/jobs/claim",
                    &ClaimRequest {
                        lane: executor.lane().into(),
                    },
                )
                .await
                .map_err(|e| TaskError::remote(format!("claiming a {} job", executor.lane()))(e))?;
            if let Some(job) = claim.job {
                return self.work(executor, job).await.map(|()| true);
            }
        }
        Ok(false)
    }

    async fn work(&self, executor: Arc<dyn DynExecutor>, job: JobView) -> Result<(), TaskError> {
        if let Ok(mut last) = self.last_job.lock() {
            *last = Some(job.job_id.clone());
        }
        let res = self.prove_and_hand_in(executor, &job).await;
        if res.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        res
    }

    async fn prove_and_hand_in(
        &self,
        executor: Arc<dyn DynExecutor>,
        job: &JobView,
    ) -> Result<(), TaskError> {
        // The spec comes from the client's signed request, not from the coordinator's word.
        let checked = check_request(&self.lanes, &job.signed_request()).map_err(|e| {
            TaskError::Refused(format!("{}: the request does not check: {e}", job.job_id))
        })?;
        if checked.job_id != job.job_id {
            return Err(TaskError::Refused(format!(
                "{}: the request is for job {}",
                job.job_id, checked.job_id
            )));
        }
        if checked.request.lane != executor.lane() {
            return Err(TaskError::Refused(format!(
                "{}: the request is for lane {}, this executor works {}",
                job.job_id,
                checked.request.lane,
                executor.lane()
            )));
        }
        let lane = checked.lane.clone();
        let spec = checked.spec;
        let started = std::time::Instant::now();
        tracing::info!(job = %job.job_id, lane = executor.lane(), spec = %lane.describe(&spec), backend = %executor.backend(), "working");
        let package = tokio::task::spawn_blocking(move || executor.execute(&spec))
            .await
            .map_err(TaskError::Join)?
            .map_err(|e| TaskError::Lane(format!("{}: {} ({})", job.job_id, e, e.code())))?;
        self.proven.fetch_add(1, Ordering::Relaxed);
        let package = self.faults.handed_in_artifact(package);
        let result = JobResult {
            job_id: job.job_id.clone(),
            worker: self.key.public(),
            result_digest: lane.artifact_digest(&package),
        };
        let signed = Signed::sign(&result, &self.key)?;
        let upload = ProofUpload {
            result: signed.envelope().clone(),
            package: base64::engine::general_purpose::STANDARD.encode(&package),
        };
        let _: JobView = self
            .coordinator
            .post(&format!("/v1/jobs/{}/proof", job.job_id), &upload)
            .await
            .map_err(|e| {
                TaskError::remote(format!("{}: handing in the artifact", job.job_id))(e)
            })?;
        self.handed_in.fetch_add(1, Ordering::Relaxed);
        tracing::info!(job = %job.job_id, bytes = package.len(), ms = started.elapsed().as_millis() as u64, "proof handed in");
        Ok(())
    }

    /// The background loop: claim and prove jobs one at a time.
    pub async fn run_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let worked = tokio::select! {
                _ = shutdown.changed() => return,
                res = self.work_one() => match res {
                    Ok(worked) => worked,
                    Err(e) => {
                        tracing::warn!(error = %e, "job work failed");
                        false
                    }
                }
            };
            if worked {
                continue;
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    fn status(&self) -> ProverStatus {
        ProverStatus {
            hotkey: self.key.public(),
            backend: self
                .lanes
                .executors()
                .map(|e| format!("{}:{}", e.lane(), e.backend()))
                .collect::<Vec<_>>()
                .join(","),
            jobs_proven: self.proven.load(Ordering::Relaxed),
            jobs_handed_in: self.handed_in.load(Ordering::Relaxed),
            jobs_failed: self.failed.load(Ordering::Relaxed),
            last_job: self.last_job.lock().ok().and_then(|l| l.clone()),
            corrupt_artifacts: self.faults.corrupt_artifacts,
        }
    }
}

/// The prover's routes.
pub fn router(p: Arc<JobProver>) -> Router {
    Router::new()
        .route("/v1/worker/jobs", get(status))
        .with_state(p)
}

/// Describes [`router`]'s routes for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    spec.get("/v1/worker/jobs", "This worker's proving progress")
        .ok::<ProverStatus>();
}

async fn status(State(p): State<Arc<JobProver>>) -> Json<ProverStatus> {
    Json(p.status())
}
