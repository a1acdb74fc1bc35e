//! The worker role: follow each round lane's rounds, do each round's work with the lane's
//! worker side, and submit every signed submission to every validator the ledger lists, as
//! soon as it is ready.
//!
//! - `GET /v1/worker/status` — rounds worked and submissions made

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt as _;
use hallmark_core::{Envelope, Keypair, PublicKey};
use hallmark_ledger::Ledger;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::api::health;
use crate::client::NodeClient;
use crate::config::WorkerSection;
use crate::error::TaskError;
use crate::faults::Faults;
use crate::http_ledger::HttpLedger;
use crate::lanes::{DynRoundWorker, LaneRegistry};
use crate::messages::{RoundAnnouncement, SubmissionAck};
use crate::rounds::check_announcement;

/// Shared state of a worker.
pub struct Worker {
    key: Keypair,
    ledger: HttpLedger,
    coordinator: NodeClient,
    coordinator_hotkey: PublicKey,
    cfg: WorkerSection,
    faults: Faults,
    lanes: LaneRegistry,
    /// The last round number worked, per lane.
    last_rounds: Mutex<BTreeMap<String, u64>>,
    submitted: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    /// Where each submission's round trip is recorded, when a load benchmark asks.
    timings: Option<Arc<SubmissionTimings>>,
}

/// How one submission to one validator ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionOutcome {
    /// Verified and stored: the validator acknowledged it as accepted.
    Accepted,
    /// Answered, but refused (a bad witness, late, a duplicate).
    Rejected,
    /// No answer within the client's timeout.
    TimedOut,
    /// Any other failure: a transport error or an error status.
    Failed,
}

/// One submission's round trip: sent at `sent_at_ms` (unix ms), answered after `latency_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SubmissionTiming {
    pub sent_at_ms: i64,
    pub latency_us: u64,
    pub outcome: SubmissionOutcome,
}

/// Submission round trips recorded by workers for a load benchmark (`hallmark bench
/// network`): submit → verified and acknowledged, the work itself excluded. Bounded, so a
/// forgotten recorder cannot grow without end.
#[derive(Debug, Default)]
pub struct SubmissionTimings {
    rows: Mutex<Vec<SubmissionTiming>>,
    /// How many submissions ended with each error code (`stale_round`, `transport`, …).
    codes: Mutex<BTreeMap<String, u64>>,
    /// Acknowledged first submissions per (validator URL, round id, worker hotkey): what a
    /// validator promised to have stored, for a fault test to audit after a crash.
    acks: Mutex<BTreeMap<(String, String, String), u64>>,
}

impl SubmissionTimings {
    /// The most rows kept (about 48 MB); later ones are dropped.
    pub const MAX_ROWS: usize = 2_000_000;

    fn record(&self, row: SubmissionTiming) {
        if let Ok(mut rows) = self.rows.lock() {
            if rows.len() < Self::MAX_ROWS {
                rows.push(row);
            }
        }
    }

    fn count_code(&self, code: &str) {
        if let Ok(mut codes) = self.codes.lock() {
            *codes.entry(code.to_string()).or_default() += 1;
        }
    }

    fn count_ack(&self, validator: &str, round: &str, worker: &str) {
        if let Ok(mut acks) = self.acks.lock() {
            *acks
                .entry((validator.to_string(), round.to_string(), worker.to_string()))
                .or_default() += 1;
        }
    }

    /// Acknowledged first submissions per (validator URL, round id, worker hotkey in SS58).
    pub fn acks(&self) -> BTreeMap<(String, String, String), u64> {
        self.acks.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// How many submissions ended with each error code so far.
    pub fn codes(&self) -> BTreeMap<String, u64> {
        self.codes.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Every row recorded so far, leaving none behind.
    pub fn take(&self) -> Vec<SubmissionTiming> {
        self.rows
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

/// `GET /v1/worker/status`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkerStatus {
    pub hotkey: PublicKey,
    /// The last round number worked, per lane.
    pub last_rounds: BTreeMap<String, u64>,
    pub submissions_sent: u64,
    pub submissions_accepted: u64,
    pub submissions_rejected: u64,
}

impl Worker {
    /// A worker with its hotkey, the round lanes it works, its view of the network, and the
    /// faults it is told to show.
    pub fn new(
        key: Keypair,
        ledger: HttpLedger,
        coordinator: NodeClient,
        coordinator_hotkey: PublicKey,
        cfg: WorkerSection,
        faults: Faults,
        lanes: LaneRegistry,
    ) -> Self {
        Self {
            key,
            ledger,
            coordinator,
            coordinator_hotkey,
            cfg,
            faults,
            lanes,
            last_rounds: Mutex::new(BTreeMap::new()),
            submitted: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            timings: None,
        }
    }

    /// Records every submission's round trip into `timings` (load benchmarks).
    pub fn with_timings(mut self, timings: Arc<SubmissionTimings>) -> Self {
        self.timings = Some(timings);
        self
    }

    fn last_round(&self, lane: &str) -> u64 {
        self.last_rounds
            .lock()
            .map(|m| m.get(lane).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// The lane's current round, if it is open and newer than the last one worked.
    async fn next_round(
        &self,
        worker: &Arc<dyn DynRoundWorker>,
    ) -> Result<Option<RoundAnnouncement>, TaskError> {
        let path = format!("/v1/rounds/current?lane={}", worker.lane());
        let env: Envelope = match self.coordinator.get(&path).await {
            Ok(e) => e,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(TaskError::remote("polling the coordinator")(e)),
        };
        let (ann, _) = check_announcement(env, &self.coordinator_hotkey, &self.lanes)?;
        if ann.lane != worker.lane() {
            return Err(TaskError::Refused(format!(
                "asked for the current {} round, got a {} round",
                worker.lane(),
                ann.lane
            )));
        }
        let open = hallmark_core::time::now_unix_ms() < ann.deadline_ms;
        if ann.number <= self.last_round(&ann.lane) || !open {
            return Ok(None);
        }
        Ok(Some(ann))
    }

    async fn work_round(
        &self,
        ann: RoundAnnouncement,
        worker: Arc<dyn DynRoundWorker>,
    ) -> Result<(), TaskError> {
        if let Ok(mut m) = self.last_rounds.lock() {
            m.insert(ann.lane.clone(), ann.number);
        }
        let lane =
            self.lanes.round_lane(&ann.lane).cloned().ok_or_else(|| {
                TaskError::Lane(format!("lane {} is not in the registry", ann.lane))
            })?;
        let info = crate::rounds::anchored_info(&self.ledger, &self.key, &ann).await?;
        let round = crate::rounds::derive_round(&lane, &ann, &info).await?;
        let mg = self.ledger.metagraph().await?;
        let validators: Vec<NodeClient> = mg
            .validators()
            .filter_map(|n| n.axon.as_deref())
            .map(|a| self.coordinator.at(a).signed_by(self.key.clone()))
            .collect();
        // The lane's work runs on a blocking thread and hands over each submission the moment
        // it is signed; this task sends them on.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Envelope>();
        let key = self.key.clone();
        let work = tokio::task::spawn_blocking(move || {
            worker.work(&info, &round, &key, &mut |env| {
                let _ = tx.send(env);
            })
        });
        let path = format!("/v1/{}/witness", ann.lane);
        // Each submission goes to every validator the moment it is signed, without waiting
        // for earlier deliveries: every validator sees it at the same instant (their arrival
        // times stay comparable), and one that is slow or cut off delays only its own.
        let round_id = ann.round_id.as_str();
        let mut inflight = futures::stream::FuturesUnordered::new();
        loop {
            tokio::select! {
                next = rx.recv() => {
                    let Some(env) = next else { break };
                    if self.faults.submit_delay_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(self.faults.submit_delay_ms)).await;
                    }
                    let body = serde_json::to_vec(&env)?;
                    for v in &validators {
                        inflight.push(deliver(v, &path, body.clone()));
                    }
                }
                Some((v, res, sent_at_ms, took)) = inflight.next(), if !inflight.is_empty() => {
                    self.record_delivery(v, round_id, res, sent_at_ms, took);
                }
            }
        }
        while let Some((v, res, sent_at_ms, took)) = inflight.next().await {
            self.record_delivery(v, round_id, res, sent_at_ms, took);
        }
        work.await?
            .map_err(|e| TaskError::Lane(format!("{} ({})", e, e.code())))
    }

    /// Counts one delivery of a submission to validator `v` and records its timing.
    fn record_delivery(
        &self,
        v: &NodeClient,
        round_id: &str,
        res: Result<Vec<u8>, crate::client::ClientError>,
        sent_at_ms: i64,
        took: Duration,
    ) {
        self.submitted.fetch_add(1, Ordering::Relaxed);
        let outcome = match res.map(|b| serde_json::from_slice::<SubmissionAck>(&b)) {
            Ok(Ok(ack)) if ack.accepted => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                if let (Some(t), true) = (&self.timings, ack.first) {
                    t.count_ack(v.base(), round_id, &self.key.public().to_ss58());
                }
                SubmissionOutcome::Accepted
            }
            Ok(Ok(_)) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                SubmissionOutcome::Rejected
            }
            Ok(Err(e)) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "a validator's answer is not an ack");
                SubmissionOutcome::Failed
            }
            Err(e) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, validator = v.base(), "submission failed");
                if let Some(t) = &self.timings {
                    t.count_code(e.code().unwrap_or(if e.is_timeout() {
                        "timeout"
                    } else {
                        "transport"
                    }));
                }
                match e.status() {
                    // Answered with a reason (a late or bad submission): refused.
                    Some(400..=499) => SubmissionOutcome::Rejected,
                    _ if e.is_timeout() => SubmissionOutcome::TimedOut,
                    _ => SubmissionOutcome::Failed,
                }
            }
        };
        if let Some(t) = &self.timings {
            t.record(SubmissionTiming {
                sent_at_ms,
                latency_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                outcome,
            });
        }
    }

    /// The background loop: work every new round of every lane once.
    pub async fn run_loop(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        // One loop per lane, so a long round of one lane never holds up another's.
        let loops = self
            .lanes
            .round_workers()
            .cloned()
            .map(|w| self.clone().lane_loop(w, shutdown.clone()))
            .collect::<Vec<_>>();
        futures::future::join_all(loops).await;
    }

    /// Works every new round of one lane once.
    async fn lane_loop(
        self: Arc<Self>,
        worker: Arc<dyn DynRoundWorker>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let poll = Duration::from_millis(self.cfg.poll_ms.max(20));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(poll) => {}
            }
            match self.next_round(&worker).await {
                Ok(Some(ann)) => {
                    let id = ann.round_id.clone();
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        res = self.work_round(ann, worker.clone()) => {
                            if let Err(e) = res {
                                tracing::warn!(round = %id, code = e.code(), error = %e, "working the round failed");
                            }
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(lane = worker.lane(), code = e.code(), error = %e, "polling the coordinator failed")
                }
            }
        }
    }
}

/// The worker's routes.
pub fn router(w: Arc<Worker>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/worker/status", get(status))
        .with_state(w)
}

/// Describes [`router`]'s routes for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    spec.get("/v1/health", "Liveness")
        .content(200, "application/json", "`{\"status\":\"ok\"}`");
    spec.get("/v1/worker/status", "This worker's state")
        .ok::<WorkerStatus>();
}

async fn status(State(w): State<Arc<Worker>>) -> Json<WorkerStatus> {
    Json(WorkerStatus {
        hotkey: w.key.public(),
        last_rounds: w.last_rounds.lock().map(|m| m.clone()).unwrap_or_default(),
        submissions_sent: w.submitted.load(Ordering::Relaxed),
        submissions_accepted: w.accepted.load(Ordering::Relaxed),
        submissions_rejected: w.rejected.load(Ordering::Relaxed),
    })
}

/// Posts one submission to one validator: the validator, its answer, when it was sent and
/// how long the answer took.
async fn deliver<'a>(
    v: &'a NodeClient,
    path: &str,
    body: Vec<u8>,
) -> (
    &'a NodeClient,
    Result<Vec<u8>, crate::client::ClientError>,
    i64,
    Duration,
) {
    let sent_at_ms = hallmark_core::time::now_unix_ms();
    let started = std::time::Instant::now();
    let res = v.post_raw(path, body).await;
    (v, res, sent_at_ms, started.elapsed())
}
