//! The worker role: follow rounds, solve each instance, and submit signed witnesses to every
//! validator the ledger lists.
//!
//! - `GET /v1/worker/status` — rounds worked and witnesses submitted

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use hallmark_core::{Envelope, Keypair, PublicKey, Signed};
use hallmark_ledger::Ledger;
use hallmark_sat::{SatLane, SatRound};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::api::health;
use crate::client::NodeClient;
use crate::config::WorkerSection;
use crate::http_ledger::HttpLedger;
use crate::messages::{RoundAnnouncement, WitnessAck};

/// Shared state of a worker.
pub struct Worker {
    key: Keypair,
    ledger: HttpLedger,
    coordinator: NodeClient,
    coordinator_hotkey: PublicKey,
    cfg: WorkerSection,
    last_round: AtomicU64,
    submitted: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
}

/// `GET /v1/worker/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub hotkey: PublicKey,
    pub last_round: u64,
    pub witnesses_submitted: u64,
    pub witnesses_accepted: u64,
    pub witnesses_rejected: u64,
}

impl Worker {
    /// A worker with its hotkey and view of the network.
    pub fn new(
        key: Keypair,
        ledger: HttpLedger,
        coordinator: NodeClient,
        coordinator_hotkey: PublicKey,
        cfg: WorkerSection,
    ) -> Self {
        Self {
            key,
            ledger,
            coordinator,
            coordinator_hotkey,
            cfg,
            last_round: AtomicU64::new(0),
            submitted: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    async fn next_round(&self) -> Result<Option<RoundAnnouncement>, String> {
        let env: Envelope = match self.coordinator.get("/v1/rounds/current").await {
            Ok(e) => e,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let v = Signed::<RoundAnnouncement>::from_envelope(env)
            .verify()
            .map_err(|e| format!("round announcement: {e}"))?;
        if v.signer != self.coordinator_hotkey {
            return Err(format!(
                "round signed by {}, not the pinned coordinator",
                v.signer
            ));
        }
        let ann = v.payload;
        let open = hallmark_core::time::now_unix_ms() < ann.deadline_ms;
        if ann.number <= self.last_round.load(Ordering::SeqCst) || !open {
            return Ok(None);
        }
        Ok(Some(ann))
    }

    async fn work_round(&self, ann: RoundAnnouncement) -> Result<(), String> {
        self.last_round.store(ann.number, Ordering::SeqCst);
        let a = ann.clone();
        let round = Arc::new(
            tokio::task::spawn_blocking(move || {
                SatRound::generate(a.round_id, a.nonce, a.seed, &a.params)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?,
        );
        let mg = self.ledger.metagraph().await.map_err(|e| e.to_string())?;
        let validators: Vec<NodeClient> = mg
            .validators()
            .filter_map(|n| n.axon.as_deref())
            .map(|a| self.coordinator.at(a).signed_by(self.key.clone()))
            .collect();
        for idx in 0..round.instances.len() {
            let (r, key) = (round.clone(), self.key.clone());
            let witness = tokio::task::spawn_blocking(move || {
                SatLane::solve_instance(&r, &r.instances[idx], &key)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            let Some(witness) = witness else {
                tracing::info!(round = %ann.round_id, instance = idx, "instance is unsatisfiable; nothing to submit");
                continue;
            };
            if self.cfg.submit_delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(self.cfg.submit_delay_ms)).await;
            }
            let body = serde_json::to_vec(witness.envelope()).map_err(|e| e.to_string())?;
            let sends = validators.iter().map(|v| {
                let body = body.clone();
                async move { v.post_raw("/v1/sat/witness", body).await }
            });
            for res in futures::future::join_all(sends).await {
                self.submitted.fetch_add(1, Ordering::Relaxed);
                match res.map(|b| serde_json::from_slice::<WitnessAck>(&b)) {
                    Ok(Ok(ack)) if ack.accepted => {
                        self.accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        self.rejected.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        self.rejected.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "witness submission failed");
                    }
                }
            }
        }
        Ok(())
    }

    /// The background loop: work every new round once.
    pub async fn run_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.cfg.poll_ms.max(20));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(poll) => {}
            }
            match self.next_round().await {
                Ok(Some(ann)) => {
                    let id = ann.round_id.clone();
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        res = self.work_round(ann) => {
                            if let Err(e) = res {
                                tracing::warn!(round = %id, error = %e, "working the round failed");
                            }
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "polling the coordinator failed"),
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

async fn status(State(w): State<Arc<Worker>>) -> Json<WorkerStatus> {
    Json(WorkerStatus {
        hotkey: w.key.public(),
        last_round: w.last_round.load(Ordering::SeqCst),
        witnesses_submitted: w.submitted.load(Ordering::Relaxed),
        witnesses_accepted: w.accepted.load(Ordering::Relaxed),
        witnesses_rejected: w.rejected.load(Ordering::Relaxed),
    })
}
