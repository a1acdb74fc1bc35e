//! Gossip between validators: each peer's signed report for a run is fetched from the axon
//! the ledger lists for it, and used only if it is signed by that hotkey, is for this lane and
//! run (replays refused), matches the peer's score commitment on the ledger, and follows the
//! peer's earlier report for the run. Anything else is dropped, and two different statements
//! are kept as equivocation evidence.

use std::time::{Duration, Instant};

use hallmark_consensus::commitment::{
    check_succession, parse_commitment, scores_hash, EquivocationEvidence, ReportHead,
    SuccessionError,
};
use hallmark_core::{Envelope, RoundId, Signed};
use hallmark_ledger::Ledger;
use hallmark_store::{EquivocationRow, ScoreReportRow, StoreError};

use crate::error::TaskError;
use crate::messages::ScoreReport;
use crate::validator::Validator;

impl Validator {
    /// Keeps evidence that `validator` said two things about `run_id`, once per kind, and
    /// logs it.
    pub(crate) async fn record_equivocation(
        &self,
        ev: EquivocationEvidence,
    ) -> Result<(), TaskError> {
        let text = serde_json::to_string(&ev)?;
        let new = self
            .store
            .put_equivocation(&EquivocationRow {
                validator: ev.validator.to_ss58(),
                run_id: ev.run_id.clone(),
                kind: ev.kind.clone(),
                evidence: text,
                found_ms: hallmark_core::time::now_unix_ms(),
            })
            .await?;
        if new {
            tracing::warn!(validator = %ev.validator, run = %ev.run_id, kind = %ev.kind, "equivocation caught");
            let bytes = hallmark_core::canonical::to_canonical_bytes(&ev)?;
            self.log.append("equivocation", &bytes).await?;
        }
        Ok(())
    }

    /// Fetches and checks one peer's report for a lane's run, retrying until `deadline`.
    pub(crate) async fn fetch_peer_report(
        &self,
        peer: &hallmark_ledger::Neuron,
        lane: &str,
        run_id: &RoundId,
        deadline: Instant,
    ) -> Result<(ScoreReport, String), TaskError> {
        let Some(axon) = &peer.axon else {
            return Err(TaskError::Refused("no axon in the metagraph".into()));
        };
        let client = self.coordinator.at(axon);
        let path = format!("/v1/consensus/scores/{run_id}");
        loop {
            match client.get_bytes(&path).await {
                Ok(bytes) => {
                    let env: Envelope = serde_json::from_slice(&bytes)
                        .map_err(|e| TaskError::Refused(format!("not an envelope: {e}")))?;
                    let signed = Signed::<ScoreReport>::from_envelope(env);
                    let v = signed
                        .verify()
                        .map_err(|e| TaskError::Refused(format!("report: {e}")))?;
                    if v.signer != peer.hotkey {
                        return Err(TaskError::Refused(format!("axon {axon} served a report signed by {}, but the metagraph lists {} there", v.signer, peer.hotkey)));
                    }
                    if v.payload.validator_hotkey != v.signer {
                        return Err(TaskError::Refused(
                            "report names a different validator than its signer".into(),
                        ));
                    }
                    if &v.payload.run_id != run_id || v.payload.lane != lane {
                        return Err(TaskError::Refused(format!(
                            "report is for run {} (lane {}), not {run_id}: replay refused",
                            v.payload.run_id, v.payload.lane
                        )));
                    }
                    if v.payload
                        .scores
                        .values()
                        .any(|s| !s.is_finite() || *s < 0.0 || *s > 1.0)
                    {
                        return Err(TaskError::Refused(
                            "report has a score outside [0, 1]".into(),
                        ));
                    }
                    let digest = signed.digest()?.to_hex();
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
                    return Err(TaskError::NotYet(format!(
                        "no report before the collection deadline: {e}"
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// The peer's ledger commitment for the run must match the report's scores. A mismatch is
    /// equivocation: the signed commitment transaction and the signed report are the evidence.
    pub(crate) async fn check_against_commitment(
        &self,
        peer: &hallmark_ledger::Neuron,
        run_id: &RoundId,
        report: &ScoreReport,
        envelope: &Envelope,
        deadline: Instant,
    ) -> Result<(), TaskError> {
        let commitment = loop {
            match self.ledger.commitment(&peer.hotkey, run_id.as_str()).await {
                Ok(Some(c)) => break c,
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Ok(None) => {
                    return Err(TaskError::NotYet(
                        "no score commitment on the ledger before the collection deadline".into(),
                    ))
                }
                Err(e) if Instant::now() < deadline => {
                    tracing::warn!(error = %e, "reading a commitment failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => return Err(TaskError::Ledger(e)),
            }
        };
        let committed = parse_commitment(&commitment.commitment, run_id.as_str())
            .map_err(|e| TaskError::Refused(format!("malformed commitment on the ledger: {e}")))?;
        let actual = scores_hash(run_id.as_str(), &report.lane, &report.scores)
            .map_err(|e| TaskError::Refused(format!("report scores cannot be hashed: {e}")))?;
        if committed != actual {
            self.record_equivocation(EquivocationEvidence {
                validator: peer.hotkey,
                run_id: run_id.to_string(),
                kind: "report_vs_commitment".into(),
                first: commitment.envelope,
                second: envelope.clone(),
            })
            .await?;
            return Err(TaskError::Refused(format!(
                "scores hash to {actual}, the ledger commitment says {committed}: equivocation, report dropped"
            )));
        }
        Ok(())
    }

    /// Stores the first report seen from a peer for a run; a later one must be the same or
    /// the next epoch naming it. A different report of the same epoch is equivocation.
    pub(crate) async fn check_and_store_peer_report(
        &self,
        peer: &hallmark_ledger::Neuron,
        run_id: &RoundId,
        report: &ScoreReport,
        envelope: &Envelope,
        digest: &str,
    ) -> Result<(), TaskError> {
        let who = peer.hotkey.to_ss58();
        let head = ReportHead {
            epoch: report.epoch,
            report_id: digest.to_string(),
            prev_report_id: report.prev_report_id.clone(),
        };
        let stored = self.store.score_report(run_id.as_str(), &who).await?;
        let Some(stored) = stored else {
            check_succession(None, &head)
                .map_err(|e| TaskError::Refused(format!("{}: {e}", e.code())))?;
            let row = ScoreReportRow {
                run_id: run_id.to_string(),
                validator: who,
                envelope: serde_json::to_string(envelope)?,
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
                Err(e) => Err(e.into()),
            };
        };
        let stored_env: Envelope = serde_json::from_str(&stored.envelope)?;
        let stored_report = Signed::<ScoreReport>::from_envelope(stored_env.clone())
            .verify()
            .map_err(|e| TaskError::Refused(format!("stored report: {e}")))?
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
                Err(TaskError::Refused(format!("{}: {e}", e.code())))
            }
            Err(e) => Err(TaskError::Refused(format!("{}: {e}", e.code()))),
        }
    }
}
