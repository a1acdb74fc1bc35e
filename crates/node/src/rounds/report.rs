//! A validator's own report for a round: scores from its own records (through the round's
//! lane), signed once and stored (the first one stands and is served byte for byte), logged
//! with a receipt, and its hash committed on the ledger before anyone uses it.

use std::collections::BTreeMap;

use hallmark_consensus::commitment::{commitment_string, scores_hash};
use hallmark_core::{Envelope, PublicKey, RoundRecord, Signed};
use hallmark_ledger::{Metagraph, TxBody};
use hallmark_log::{LogProof, Receipt};
use hallmark_store::ScoreReportRow;

use super::ActiveRound;
use crate::error::TaskError;
use crate::messages::ScoreReport;
use crate::registration::submit_tx;
use crate::validator::Validator;

impl Validator {
    /// This validator's scores for a round: its lane scores every listed worker from the
    /// submissions this validator accepted itself.
    pub(crate) async fn own_scores(
        &self,
        active: &ActiveRound,
        mg: &Metagraph,
    ) -> Result<BTreeMap<PublicKey, f64>, TaskError> {
        let rows = self.store.submissions(active.ann.round_id.as_str()).await?;
        let records = rows
            .into_iter()
            .map(|r| {
                Ok(RoundRecord {
                    worker: r.worker.parse().map_err(|e| {
                        TaskError::Refused(format!("stored submission worker {}: {e}", r.worker))
                    })?,
                    item: r.item,
                    received_ms: r.received_ms,
                    latency_ms: r.latency_ms,
                })
            })
            .collect::<Result<Vec<_>, TaskError>>()?;
        let workers: Vec<PublicKey> = mg.workers().map(|n| n.hotkey).collect();
        let (lane, info, round) = (
            active.lane.clone(),
            active.info.clone(),
            active.round.clone(),
        );
        let scores =
            tokio::task::spawn_blocking(move || lane.score(&info, &round, &records, &workers))
                .await?;
        Ok(scores
            .into_iter()
            .map(|(k, s)| (k, self.faults.reported_score(s)))
            .collect())
    }

    /// Appends a signed statement to this validator's log and returns its proof.
    pub(crate) async fn log_statement(
        &self,
        kind: &str,
        env: &Envelope,
    ) -> Result<LogProof, TaskError> {
        let bytes = env.canonical_bytes()?;
        self.log
            .append_and_prove(kind, &bytes, &self.origin, &self.key)
            .await
            .map_err(TaskError::from)
    }

    /// Logs a signed statement and stores its receipt under `subject` (first one stands).
    pub(crate) async fn log_with_receipt(
        &self,
        kind: &str,
        subject: &str,
        env: &Envelope,
    ) -> Result<(), TaskError> {
        if self.store.receipt(subject).await?.is_some() {
            return Ok(());
        }
        let log = self.log_statement(kind, env).await?;
        let receipt = Receipt {
            statement: env.clone(),
            log,
        };
        let text = serde_json::to_string(&receipt)?;
        self.store.put_receipt(subject, &text).await?;
        Ok(())
    }

    /// The ledger's chain id, asked once.
    pub(crate) async fn chain_id(&self) -> Result<&String, TaskError> {
        self.chain_id
            .get_or_try_init(|| self.ledger.chain_id())
            .await
            .map_err(TaskError::from)
    }

    /// Commits the hash of `report`'s scores on the ledger; a retry of the same commitment is
    /// fine. Returns the commitment string.
    pub(crate) async fn commit_scores(&self, report: &ScoreReport) -> Result<String, TaskError> {
        let run_id = report.run_id.as_str();
        let hash = scores_hash(run_id, &report.lane, &report.scores)?;
        let commitment = commitment_string(run_id, &hash);
        let chain = self.chain_id().await?;
        let body = TxBody::CommitScores {
            run_id: run_id.to_string(),
            commitment: commitment.clone(),
        };
        match submit_tx(&self.ledger, chain, &self.key, body).await {
            Ok(_) => Ok(commitment),
            Err(e) if e.code() == "already_committed" => Ok(commitment),
            Err(e) => Err(TaskError::Ledger(e)),
        }
    }

    /// Signs (once), stores, logs and commits this validator's report for the round.
    pub(crate) async fn own_report(
        &self,
        active: &ActiveRound,
        mg: &Metagraph,
    ) -> Result<(Signed<ScoreReport>, String), TaskError> {
        let run_id = active.ann.round_id.as_str();
        let me = self.key.public().to_ss58();
        let signed = if let Some(row) = self.store.score_report(run_id, &me).await? {
            let env: Envelope = serde_json::from_str(&row.envelope)?;
            Signed::from_envelope(env)
        } else {
            let (scores, evaluation_sha256) =
                if active.lane.intake() == hallmark_core::RoundIntake::Roster {
                    let (scores, hash) = self.roster_scores(active, mg).await?;
                    let scores = scores
                        .into_iter()
                        .map(|(k, s)| (k, self.faults.reported_score(s)))
                        .collect();
                    (scores, Some(hash))
                } else {
                    (self.own_scores(active, mg).await?, None)
                };
            let report = ScoreReport {
                run_id: active.ann.round_id.clone(),
                lane: active.ann.lane.clone(),
                validator_hotkey: self.key.public(),
                scores,
                epoch: 0,
                prev_report_id: None,
                evaluation_sha256,
            };
            let signed = Signed::sign(&report, &self.key)?;
            let text = serde_json::to_string(signed.envelope())?;
            if self.faults.equivocate {
                // The second report exists before the first can be served, so the second
                // request for the run already gets it.
                self.prepare_equivocation(&report).await?;
            }
            self.store
                .put_score_report(&ScoreReportRow {
                    run_id: run_id.to_string(),
                    validator: me,
                    envelope: text,
                    digest: signed.digest()?.to_hex(),
                    received_ms: hallmark_core::time::now_unix_ms(),
                })
                .await?;
            signed
        };
        // Each step below is idempotent, so a retried finalize completes what a failed one began.
        self.log_with_receipt(
            "score_report",
            &format!("score-report/{run_id}"),
            signed.envelope(),
        )
        .await?;
        let report = signed.verify()?.payload;
        let commitment = self.commit_scores(&report).await?;
        if self.faults.equivocate {
            self.commit_equivocation(&report).await;
        }
        Ok((signed, commitment))
    }

    /// Devnet fault injection: a second, different report for the run, and an attempt to
    /// commit it too (the ledger refuses and keeps the evidence).
    async fn prepare_equivocation(&self, report: &ScoreReport) -> Result<(), TaskError> {
        let key = format!("equivocate.{}", report.run_id);
        if self.store.kv_get(&key).await?.is_some() {
            return Ok(());
        }
        let other = equivocal_twin(report);
        let signed = Signed::sign(&other, &self.key)?;
        let text = serde_json::to_string(signed.envelope())?;
        self.store.kv_put(&key, &text).await?;
        Ok(())
    }

    /// Devnet fault injection: try to commit the second report too (the ledger refuses and
    /// keeps both signed commitments as evidence).
    async fn commit_equivocation(&self, report: &ScoreReport) {
        if let Err(e) = self.commit_scores(&equivocal_twin(report)).await {
            tracing::warn!(error = %e, "equivocating validator's second commitment refused, as it should be");
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
