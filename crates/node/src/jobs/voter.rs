//! The validator's side of proven jobs: for each proven job, check the client's signed
//! request and the worker's signed result, fetch the artifact, verify it with the lane's own
//! verifier (from the registry, with this validator's own context) against the requested
//! job, and sign a vote. The vote is written to the
//! validator's store and transparency log before it is sent, so a restarted validator sends
//! the same vote again instead of signing a different one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hallmark_consensus::JobVote;
use hallmark_core::trace::{TraceInput, VerificationTrace};
use hallmark_core::{Envelope, Keypair, Signed};
use hallmark_store::{Store, TransparencyLog};
use tokio::sync::watch;

use super::external;
use super::messages::{check_request, JobView, VoteAck};
use crate::client::NodeClient;
use crate::config::ExternalVerifierSection;
use crate::error::{SettingError, TaskError};
use crate::faults::Faults;
use crate::lanes::LaneRegistry;

/// A validator's job loop.
pub struct JobVoter {
    store: Store,
    log: TransparencyLog,
    key: Keypair,
    coordinator: NodeClient,
    lanes: LaneRegistry,
    /// Second opinions by lane, run beside the lane's verifier.
    external: BTreeMap<String, ExternalVerifierSection>,
    /// What this validator is told to do wrong (devnet, tests): with `equivocate`, it also
    /// signs and sends the opposite vote on every job.
    faults: Faults,
    poll: Duration,
    metrics: std::sync::Arc<crate::metrics::NodeMetrics>,
}

/// How long after a job is settled a validator that has not voted still votes on it.
const LATE_VOTE_WINDOW_MS: i64 = 60_000;

fn vote_key(job_id: &str) -> String {
    format!("job_vote.{job_id}")
}

impl JobVoter {
    /// A voter reading jobs from `coordinator`, verifying with the lanes of `lanes` (and the
    /// `external` second opinions) and signing with `key`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        log: TransparencyLog,
        key: Keypair,
        coordinator: NodeClient,
        lanes: LaneRegistry,
        external: BTreeMap<String, ExternalVerifierSection>,
        faults: Faults,
        poll: Duration,
        metrics: std::sync::Arc<crate::metrics::NodeMetrics>,
    ) -> Result<Self, SettingError> {
        for (lane, ext) in &external {
            if lanes.job_lane(lane).is_none() {
                return Err(SettingError::new(
                    format!("validator.external_verifiers.{lane}"),
                    "no such job lane",
                ));
            }
            external::check_config(ext).map_err(|e| {
                SettingError::new(format!("validator.external_verifiers.{lane}"), e)
            })?;
        }
        Ok(Self {
            store,
            log,
            key,
            coordinator,
            lanes,
            external,
            faults,
            poll,
            metrics,
        })
    }

    /// Votes on every proven job this validator has not voted on; returns how many votes
    /// were sent.
    pub async fn vote_pending(&self) -> Result<usize, TaskError> {
        let mut jobs: Vec<JobView> = self
            .coordinator
            .get("/v1/jobs?status=proven&limit=100")
            .await
            .map_err(TaskError::remote("listing proven jobs"))?;
        // Jobs settled moments ago still get this validator's vote on record.
        let since = hallmark_core::time::now_unix_ms() - LATE_VOTE_WINDOW_MS;
        let recent: Vec<JobView> = self
            .coordinator
            .get(&format!("/v1/jobs?settled_since_ms={since}&limit=100"))
            .await
            .map_err(TaskError::remote("listing settled jobs"))?;
        jobs.extend(recent);
        let mut sent = 0;
        // The board stores only votes whose signature it checked, so the key id is enough to
        // recognise our own (no signature check per vote on every poll).
        let me = self.key.public().to_ss58();
        for job in jobs {
            let voted = job
                .votes
                .iter()
                .any(|v| v.envelope().signatures.iter().any(|s| s.keyid == me));
            if voted {
                continue;
            }
            match self.vote_on(&job).await {
                Ok(()) => sent += 1,
                Err(e) => tracing::warn!(job = %job.job_id, error = %e, "no vote this time"),
            }
        }
        Ok(sent)
    }

    /// The vote this validator gives `job`: the one it already signed, or a new one from its
    /// own verification.
    async fn decide(&self, job: &JobView) -> Result<Signed<JobVote>, TaskError> {
        if let Some(text) = self.store.kv_get(&vote_key(&job.job_id)).await? {
            let env: Envelope = serde_json::from_str(&text)?;
            return Ok(Signed::from_envelope(env));
        }
        let checked = check_request(&self.lanes, &job.signed_request())
            .map_err(|e| TaskError::Refused(format!("the client's request does not check: {e}")))?;
        if checked.job_id != job.job_id {
            return Err(TaskError::Refused(format!(
                "the request is for job {}",
                checked.job_id
            )));
        }
        let signed = job.signed_result().ok_or(TaskError::Refused(
            "the job has no result although it is proven".into(),
        ))?;
        let result = signed
            .verify()
            .map_err(|e| TaskError::Refused(format!("the worker's result does not check: {e}")))?;
        if result.signer != result.payload.worker
            || Some(result.signer) != job.worker
            || result.payload.job_id != job.job_id
        {
            return Err(TaskError::Refused(
                "the result is not the assigned worker's for this job".into(),
            ));
        }
        let package = self
            .coordinator
            .get_bytes(&format!("/v1/jobs/{}/proof", job.job_id))
            .await
            .map_err(TaskError::remote("fetching the artifact"))?;
        let lane = checked.lane;
        let digest = lane.artifact_digest(&package);
        if digest != result.payload.result_digest {
            // The coordinator served other bytes than the worker signed: that is not the
            // worker's fault, so no vote until the right bytes are served.
            return Err(TaskError::Refused(format!(
                "served package hashes to {digest}, the worker signed {}",
                result.payload.result_digest
            )));
        }
        let spec = checked.spec;
        let (s, p) = (spec.clone(), package.clone());
        let started_ms = hallmark_core::time::now_unix_ms();
        let started = std::time::Instant::now();
        let mut verdict = tokio::task::spawn_blocking(move || lane.verify(&s, &p)).await?;
        if let Some(ext) = self.external.get(&job.lane) {
            let check = external::second_opinion(ext, job, &spec, &package, &verdict).await;
            external::apply(&mut verdict, check);
        }
        // The private trace of this verification (the public export redacts it).
        let trace = VerificationTrace {
            lane: job.lane.clone(),
            kind: "job".into(),
            subject: job.job_id.clone(),
            party: Some(result.signer),
            inputs: vec![
                TraceInput::of(
                    "request",
                    &job.signed_request().envelope().canonical_bytes()?,
                ),
                TraceInput::of("artifact", &package),
            ],
            nonce: None,
            verdict: verdict.clone(),
            started_ms,
            elapsed_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        };
        crate::traces::keep(&self.store, &self.metrics, &trace).await?;
        let valid = verdict.accepted;
        if !valid {
            let reason = verdict
                .checks
                .iter()
                .find(|c| c.outcome == hallmark_core::CheckOutcome::Fail)
                .map(|c| c.detail.clone())
                .unwrap_or_default();
            tracing::warn!(job = %job.job_id, lane = %job.lane, code = verdict.rejection.as_deref().unwrap_or("rejected"), %reason, "artifact rejected");
        }
        let vote = JobVote {
            job_id: job.job_id.clone(),
            result_digest: digest,
            valid,
        };
        let signed = Signed::sign(&vote, &self.key)?;
        let text = serde_json::to_string(signed.envelope())?;
        // The verdict behind the vote, check by check, goes into the log before the vote.
        let trace = hallmark_core::canonical::to_canonical_bytes(&serde_json::json!({
            "job_id": job.job_id,
            "lane": job.lane,
            "verdict": verdict,
        }))?;
        self.log.append("job_verdict", &trace).await?;
        let bytes = signed.envelope().canonical_bytes()?;
        self.log.append("job_vote", &bytes).await?;
        self.store.kv_put(&vote_key(&job.job_id), &text).await?;
        self.metrics
            .votes
            .with_label_values(&[job.lane.as_str(), if valid { "valid" } else { "invalid" }])
            .inc();
        tracing::info!(job = %job.job_id, valid, "voted");
        Ok(signed)
    }

    async fn vote_on(&self, job: &JobView) -> Result<(), TaskError> {
        let signed = self.decide(job).await?;
        let path = format!("/v1/jobs/{}/votes", job.job_id);
        let _: VoteAck = self
            .coordinator
            .post(&path, signed.envelope())
            .await
            .map_err(TaskError::remote("sending the vote"))?;
        if self.faults.equivocate {
            let verified = signed.verify()?;
            let opposite = JobVote {
                valid: !verified.payload.valid,
                ..verified.payload
            };
            let second = Signed::sign(&opposite, &self.key)?;
            tracing::warn!(job = %job.job_id, "fault injection: sending a second, opposite vote");
            match self
                .coordinator
                .post::<_, VoteAck>(&path, second.envelope())
                .await
            {
                Err(e) if e.code() == Some("equivocation") => {}
                other => {
                    other.map_err(TaskError::remote("sending the second vote"))?;
                }
            }
        }
        Ok(())
    }

    /// The background loop.
    pub async fn run_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(self.poll) => {}
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                res = self.vote_pending() => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, "job votes skipped");
                    }
                }
            }
        }
    }
}
