//! The coordinator's side of roster lanes (eval): archive intake before the deadline, the
//! signed roster sealed after it, and archives served by submission id once sealed.
//!
//! - `POST /v1/runs/{run_id}/submissions` — a signed request from a worker hotkey whose body
//!   is the archive itself. The lane reads it (manifest, format); the worker must have
//!   committed exactly these bytes on the ledger (`CommitArchive`) for this lane. A later
//!   upload before the deadline replaces the worker's earlier one. After the deadline: 409
//!   `submissions_closed`.
//! - `GET /v1/runs/{run_id}/roster` — the signed [`Roster`] (404 `roster_not_sealed` until
//!   the deadline has passed and the seal loop wrote it; written once, served as stored).
//! - `GET /v1/runs/{run_id}/submissions/{id}/archive` — a roster member's archive, only once
//!   the roster is sealed (before, nobody can copy another worker's bytes from here).
//!
//! The coordinator decides nothing here: validators check the roster's signature, every
//! archive's hash, registration and the ledger commitment themselves.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hallmark_core::{sha256, Envelope, Keypair, RoundId, RoundIntake, Signed};
use hallmark_store::{RunSubmissionRow, Store};
use tokio::sync::watch;

use crate::api::ApiError;
use crate::auth::PostAuth;
use crate::faults::Faults;
use crate::http_ledger::HttpLedger;
use crate::lanes::LaneRegistry;
use crate::messages::{Roster, RosterMember, RoundAnnouncement, RunSubmissionAck};

/// How long after a run's deadline the roster is sealed (uploads that began before the
/// deadline finish meanwhile).
const SEAL_DELAY_MS: i64 = 500;

/// The coordinator's roster-lane service.
pub struct RunService {
    store: Store,
    key: Keypair,
    lanes: LaneRegistry,
    ledger: HttpLedger,
    auth: PostAuth,
    faults: Faults,
}

impl RunService {
    /// The service over the coordinator's store and key.
    pub fn new(
        store: Store,
        key: Keypair,
        lanes: LaneRegistry,
        ledger: HttpLedger,
        faults: Faults,
        skew_window_secs: i64,
    ) -> Self {
        Self {
            store: store.clone(),
            key,
            lanes,
            ledger,
            auth: PostAuth::new(skew_window_secs, store.clone()),
            faults,
        }
    }

    /// Whether this node runs any roster lane (the routes and the loop exist only then).
    pub fn needed(lanes: &LaneRegistry) -> bool {
        lanes
            .round_lanes_taking(RoundIntake::Roster)
            .next()
            .is_some()
    }

    /// The largest archive any roster lane takes.
    fn max_archive_bytes(lanes: &LaneRegistry) -> usize {
        lanes
            .round_lanes_taking(RoundIntake::Roster)
            .map(|l| l.max_submission_bytes())
            .max()
            .unwrap_or(0)
    }

    /// The announcement of a run this coordinator published.
    async fn announcement(&self, run_id: &str) -> Result<RoundAnnouncement, ApiError> {
        let row = self
            .store
            .round(run_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no run {run_id:?}")))?;
        let env: Envelope = serde_json::from_str(&row.body)
            .map_err(|e| ApiError::internal(format!("stored round {run_id}: {e}")))?;
        Signed::<RoundAnnouncement>::from_envelope(env)
            .verify()
            .map(|v| v.payload)
            .map_err(|e| ApiError::internal(format!("stored round {run_id}: {e}")))
    }

    /// Takes a worker's archive for a run.
    pub async fn submit(
        &self,
        run_id: &str,
        headers: &HeaderMap,
        path: &str,
        body: &[u8],
    ) -> Result<RunSubmissionAck, ApiError> {
        let signer = self.auth.authenticate(headers, path, body).await?;
        let ann = self.announcement(run_id).await?;
        let lane = self
            .lanes
            .round_lanes_taking(RoundIntake::Roster)
            .find(|l| l.name() == ann.lane)
            .ok_or_else(|| {
                ApiError::conflict(
                    "not_a_roster_lane",
                    format!(
                        "{run_id} is a {} round: its work is pushed to validators",
                        ann.lane
                    ),
                )
            })?;
        let now = hallmark_core::time::now_unix_ms();
        if now >= ann.deadline_ms {
            return Err(ApiError::conflict(
                "submissions_closed",
                format!(
                    "{run_id} closed for submissions at {} (ms)",
                    ann.deadline_ms
                ),
            ));
        }
        let manifest = lane
            .check_submission(body)
            .map_err(|e| ApiError::unprocessable("invalid_archive", e.to_string()))?;
        let archive_sha256 = sha256(body).to_hex();
        let commit = self
            .ledger
            .archive_commit(&archive_sha256)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "ledger_unavailable", e.to_string()))?
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "no_commitment",
                    format!("commit archive {archive_sha256} for lane {} on the ledger (CommitArchive) before uploading it", ann.lane),
                )
            })?;
        if commit.hotkey != signer {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_committer",
                format!(
                    "archive {archive_sha256} was committed first by {}, not {signer}",
                    commit.hotkey
                ),
            ));
        }
        if commit.lane != ann.lane {
            return Err(ApiError::unprocessable(
                "wrong_lane",
                format!(
                    "archive {archive_sha256} is committed for lane {}, not {}",
                    commit.lane, ann.lane
                ),
            ));
        }
        let row = RunSubmissionRow {
            run_id: run_id.to_string(),
            hotkey: signer.to_ss58(),
            submission_id: archive_sha256[..16].to_string(),
            archive_sha256: archive_sha256.clone(),
            manifest: serde_json::to_string(&manifest).map_err(ApiError::internal)?,
            received_ms: now,
        };
        self.store.put_run_submission(&row, body).await?;
        tracing::info!(run = run_id, worker = %signer, archive = %archive_sha256, "archive taken");
        Ok(RunSubmissionAck {
            run_id: RoundId::from(run_id),
            submission_id: row.submission_id,
            archive_sha256,
            manifest,
            deadline_ms: ann.deadline_ms,
        })
    }

    /// Seals a run's roster from the archives taken before its deadline (once).
    async fn seal(&self, ann: &RoundAnnouncement) -> Result<(), ApiError> {
        let run_id = ann.round_id.as_str();
        let mut members = Vec::new();
        for row in self.store.run_submissions(run_id).await? {
            if row.received_ms >= ann.deadline_ms {
                continue;
            }
            let (Ok(hotkey), Ok(manifest)) = (
                row.hotkey.parse(),
                serde_json::from_str::<serde_json::Value>(&row.manifest),
            ) else {
                tracing::warn!(run = run_id, hotkey = %row.hotkey, "unreadable stored submission left out of the roster");
                continue;
            };
            members.push(RosterMember {
                hotkey,
                submission_id: row.submission_id,
                archive_sha256: row.archive_sha256,
                manifest,
            });
        }
        members.sort_by_key(|m| m.hotkey.to_ss58());
        let roster = Roster {
            run_id: ann.round_id.clone(),
            lane: ann.lane.clone(),
            deadline_ms: ann.deadline_ms,
            members,
        };
        let signed = Signed::sign(&roster, &self.key).map_err(ApiError::internal)?;
        let text = serde_json::to_string(signed.envelope()).map_err(ApiError::internal)?;
        if self
            .store
            .put_run_roster(run_id, &text, hallmark_core::time::now_unix_ms())
            .await?
        {
            tracing::info!(
                run = run_id,
                members = roster.members.len(),
                "roster sealed"
            );
        }
        Ok(())
    }

    /// One pass: seals every roster lane's latest two runs once their deadline has passed.
    async fn seal_due(&self) -> Result<(), ApiError> {
        let now = hallmark_core::time::now_unix_ms();
        for lane in self.lanes.round_lanes_taking(RoundIntake::Roster) {
            let Some(latest) = self.store.latest_round(lane.name()).await? else {
                continue;
            };
            for number in [latest.number, latest.number.saturating_sub(1)] {
                if number == 0 {
                    continue;
                }
                let run_id = RoundId::for_lane(lane.name(), number);
                if self.store.run_roster(run_id.as_str()).await?.is_some() {
                    continue;
                }
                let ann = self.announcement(run_id.as_str()).await?;
                if now >= ann.deadline_ms + SEAL_DELAY_MS {
                    self.seal(&ann).await?;
                }
            }
        }
        Ok(())
    }

    /// The background loop sealing rosters.
    pub async fn run_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if let Err(e) = self.seal_due().await {
                tracing::warn!(code = %e.error.code, error = %e.error.message, "sealing rosters failed; will retry");
            }
        }
    }

    /// The sealed roster's envelope.
    async fn roster(&self, run_id: &str) -> Result<Envelope, ApiError> {
        let text = self.store.run_roster(run_id).await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "roster_not_sealed",
                format!(
                    "no sealed roster for {run_id:?} (sealed shortly after the run's deadline)"
                ),
            )
        })?;
        serde_json::from_str(&text)
            .map_err(|e| ApiError::internal(format!("stored roster {run_id}: {e}")))
    }

    /// A roster member's archive (altered when the devnet tamper fault names the member).
    async fn archive(&self, run_id: &str, submission_id: &str) -> Result<Vec<u8>, ApiError> {
        let env = self.roster(run_id).await?;
        let roster = Signed::<Roster>::from_envelope(env)
            .verify()
            .map_err(|e| ApiError::internal(format!("stored roster {run_id}: {e}")))?
            .payload;
        let Some(index) = roster
            .members
            .iter()
            .position(|m| m.submission_id == submission_id)
        else {
            return Err(ApiError::not_found(format!(
                "{submission_id:?} is not a member of {run_id}'s roster"
            )));
        };
        let mut bytes = self
            .store
            .run_archive(run_id, submission_id)
            .await?
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "roster member {submission_id} has no stored archive"
                ))
            })?;
        if self.faults.tamper_archive == Some(index) && !bytes.is_empty() {
            tracing::warn!(
                run = run_id,
                submission = submission_id,
                "fault injection: serving altered archive bytes"
            );
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x01;
        }
        Ok(bytes)
    }
}

/// The routes of the roster-lane service.
pub fn router(s: Arc<RunService>) -> Router {
    let cap = RunService::max_archive_bytes(&s.lanes);
    Router::new()
        .route(
            "/v1/runs/{run_id}/submissions",
            post(submit).layer(axum::extract::DefaultBodyLimit::max(cap)),
        )
        .route("/v1/runs/{run_id}/roster", get(roster))
        .route(
            "/v1/runs/{run_id}/submissions/{submission_id}/archive",
            get(archive),
        )
        .with_state(s)
}

/// Describes [`router`]'s routes for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    spec.post(
        "/v1/runs/{run_id}/submissions",
        "Submit an archive to a roster run (signed)",
    )
    .raw_body("application/x-tar")
    .json::<RunSubmissionAck>(202, "Accepted")
    .errors(&[
        (400, "Malformed, wrongly signed or past the deadline"),
        (403, "Not registered"),
        (404, "No such run"),
        (413, "Too large"),
    ]);
    spec.get("/v1/runs/{run_id}/roster", "A run's signed roster")
        .ok::<hallmark_core::dsse::Envelope>()
        .errors(&[(404, "No such run, or no roster yet")]);
    spec.get(
        "/v1/runs/{run_id}/submissions/{submission_id}/archive",
        "A submitted archive",
    )
    .content(200, "application/x-tar", "The archive")
    .errors(&[(404, "No such submission")]);
}

async fn submit(
    State(s): State<Arc<RunService>>,
    OriginalUri(uri): OriginalUri,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<RunSubmissionAck>), ApiError> {
    let ack = s.submit(&run_id, &headers, uri.path(), &body).await?;
    Ok((StatusCode::ACCEPTED, Json(ack)))
}

async fn roster(
    State(s): State<Arc<RunService>>,
    Path(run_id): Path<String>,
) -> Result<Json<Envelope>, ApiError> {
    s.roster(&run_id).await.map(Json)
}

async fn archive(
    State(s): State<Arc<RunService>>,
    Path((run_id, submission_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let bytes = s.archive(&run_id, &submission_id).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], bytes).into_response())
}
