//! Round intake on a validator: follow each lane's latest announced round, regenerate it
//! through its lane, and check every worker's signed submission first-hand with the lane's
//! verifier. Accepted submissions are stored with the arrival time this validator measured;
//! refusals are stored with their verdict.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use hallmark_core::trace::{TraceInput, VerificationTrace};
use hallmark_core::{Arrival, Envelope, RoundId};
use hallmark_store::SubmissionRow;

use super::{check_announcement, ActiveRound};
use crate::api::{parse_json, ApiError};
use crate::auth::verify_request;
use crate::error::TaskError;
use crate::lanes::DynRoundLane;
use crate::messages::{RoundAnnouncement, SubmissionAck};
use crate::validator::Validator;

impl Validator {
    /// Adopts `ann` as its lane's active round if it is newer than the lane's current one.
    pub(crate) async fn adopt(
        &self,
        ann: RoundAnnouncement,
        lane: Arc<dyn DynRoundLane>,
    ) -> Result<(), TaskError> {
        if let Some(cur) = self.active.read().await.get(&ann.lane) {
            if cur.ann.number >= ann.number {
                return Ok(());
            }
        }
        let info = super::anchored_info(&self.ledger, &self.key, &ann).await?;
        let round = super::derive_round(&lane, &ann, &info).await?;
        let mut active = self.active.write().await;
        if active
            .get(&ann.lane)
            .is_none_or(|cur| cur.ann.number < ann.number)
        {
            tracing::info!(round = %ann.round_id, lane = %ann.lane, "validator adopted round");
            let round = Arc::new(ActiveRound {
                ann,
                info,
                lane,
                round,
            });
            self.undecided
                .lock()
                .await
                .insert((round.ann.lane.clone(), round.ann.number), round.clone());
            active.insert(round.ann.lane.clone(), round);
        }
        Ok(())
    }

    /// Polls the coordinator for each round lane's latest round.
    pub(crate) async fn poll_rounds(&self) -> Result<(), TaskError> {
        for name in self.lanes.round_lane_names() {
            let path = format!("/v1/rounds/current?lane={name}");
            let env: Envelope = match self.coordinator.get(&path).await {
                Ok(env) => env,
                Err(e) if e.status() == Some(404) => continue,
                Err(e) => return Err(TaskError::remote("polling the coordinator")(e)),
            };
            let (ann, lane) = check_announcement(env, &self.coordinator_hotkey, &self.lanes)?;
            if ann.lane != name {
                return Err(TaskError::Refused(format!(
                    "asked for the current {name} round, got a {} round",
                    ann.lane
                )));
            }
            self.adopt(ann, lane).await?;
        }
        Ok(())
    }

    /// Makes sure the round a submission names is known, fetching it if it is newer than the
    /// lane's active round.
    async fn ensure_round(&self, lane: &str, round_id: &RoundId) {
        let known = self.active.read().await.get(lane).map(|a| a.ann.number);
        match (known, round_id.lane_and_number()) {
            (_, None) => {}
            (_, Some((l, _))) if l != lane => {}
            (Some(k), Some((_, n))) if n <= k => {}
            _ => {
                let path = format!("/v1/rounds/{round_id}");
                if let Ok(env) = self.coordinator.get::<Envelope>(&path).await {
                    if let Ok((ann, l)) =
                        check_announcement(env, &self.coordinator_hotkey, &self.lanes)
                    {
                        if ann.lane == lane {
                            let _ = self.adopt(ann, l).await;
                        }
                    }
                }
            }
        }
    }

    /// `POST /v1/{lane}/witness`: authenticates the sender (a registered worker), checks the
    /// signed submission with the lane's verifier against the lane's open round, and stores
    /// the record or the refusal.
    pub(crate) async fn accept_submission(
        &self,
        lane_name: &str,
        headers: &HeaderMap,
        path: &str,
        body: &[u8],
    ) -> Result<SubmissionAck, ApiError> {
        let received_ms = hallmark_core::time::now_unix_ms();
        let now = received_ms / 1000;
        let (sender, signature) =
            verify_request(headers, "POST", path, body, now, self.skew_window_secs)?;
        let Some(lane) = self.lanes.round_lane(lane_name).cloned() else {
            return Err(ApiError::not_found(format!(
                "no round lane {lane_name:?} here: expected one of {:?}",
                self.lanes.round_lane_names()
            )));
        };
        if lane.intake() != hallmark_core::RoundIntake::Pushed {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "roster_lane",
                format!(
                    "lane {lane_name} takes archives committed on the ledger and uploaded to the coordinator (POST /v1/runs/{{run_id}}/submissions), not witnesses"
                ),
            ));
        }
        // Only registered workers get any further work out of this validator (parsing, round
        // look-ups at the coordinator, replay).
        if !self.is_registered_worker(&sender).await? {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_registered",
                format!("{sender} is not a registered worker"),
            ));
        }
        // A registered worker's request is taken once (only theirs are remembered, so
        // unregistered keys cannot fill the guard).
        self.witness_replay
            .check(signature, now, self.skew_window_secs)
            .await?;
        let env: Envelope = parse_json(body)?;
        let claimed_round = lane.submission_round(&env);
        if let Some(r) = &claimed_round {
            self.ensure_round(lane_name, r).await;
        }
        let active = self.active.read().await.get(lane_name).cloned();
        let Some(active) = active else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "stale_round",
                format!("this validator has no open {lane_name} round"),
            ));
        };
        let arrival = Arrival {
            received_ms,
            sender,
        };
        let started = std::time::Instant::now();
        let (verdict, record) = {
            let (lane, info, round, env) = (
                lane.clone(),
                active.info.clone(),
                active.round.clone(),
                env.clone(),
            );
            tokio::task::spawn_blocking(move || lane.accept(&info, &round, &arrival, &env))
                .await
                .map_err(ApiError::internal)?
        };
        let round_for_log = claimed_round.unwrap_or_else(|| active.ann.round_id.clone());
        // The private trace of this verification (the public export redacts it).
        let trace = VerificationTrace {
            lane: lane_name.to_string(),
            kind: "witness".into(),
            subject: round_for_log.to_string(),
            party: Some(sender),
            inputs: vec![TraceInput::of("witness", body)],
            nonce: None,
            verdict: verdict.clone(),
            started_ms: received_ms,
            elapsed_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        };
        crate::traces::keep(&self.store, &self.metrics, &trace).await?;
        match (verdict.accepted, record) {
            (true, Some(record)) => {
                let first = self
                    .store
                    .insert_submission(&SubmissionRow {
                        round_id: active.ann.round_id.to_string(),
                        worker: record.worker.to_ss58(),
                        item: record.item,
                        received_ms: record.received_ms,
                        latency_ms: record.latency_ms,
                        envelope: serde_json::to_string(&env).map_err(ApiError::internal)?,
                    })
                    .await?;
                Ok(SubmissionAck {
                    accepted: true,
                    first,
                    latency_ms: record.latency_ms,
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
}
