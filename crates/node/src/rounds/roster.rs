//! A validator's first-hand measurement of a roster lane's run (eval): the coordinator's
//! signed roster, every member's archive checked against its hash, its registration and its
//! ledger commitment, the ledger anchor after the deadline, and the lane's measurement.
//!
//! Each refusal is recorded with its reason in the report itself:
//! - `roster_signature` — the roster is not signed by the pinned coordinator key, or names
//!   another run or lane (nobody is measured);
//! - `archive_unavailable` — the archive could not be fetched (or is over the lane's cap);
//! - `archive_hash_mismatch` — the served bytes do not hash to the roster entry;
//! - `not_registered` — the hotkey is not a registered worker on the ledger (checked before
//!   anything is fetched);
//! - `duplicate_member` — the roster names the hotkey again (only its first entry runs);
//! - `no_commitment` — no ledger commitment by this hotkey to these bytes for this lane
//!   before the deadline (a copy committed first by someone else included).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hallmark_core::{sha256, Envelope, PublicKey, RosterEntry, RosterRefusal, RosterRun, Signed};
use hallmark_ledger::Metagraph;

use super::ActiveRound;
use crate::error::TaskError;
use crate::messages::{EvaluationRecord, Roster};
use crate::validator::Validator;

/// The largest roster a validator reads (a hostile coordinator cannot make it hold more).
const MAX_ROSTER_BYTES: usize = 16 << 20;

/// The kv key of a run's evaluation record.
pub fn evaluation_key(run_id: &str) -> String {
    format!("evaluation.{run_id}")
}

impl Validator {
    /// The coordinator's roster for a run, waiting for it until `deadline`. `Ok(Err(refusal))`
    /// when a roster was served but cannot be trusted.
    async fn fetch_roster(
        &self,
        active: &ActiveRound,
        deadline: Instant,
    ) -> Result<Result<(Roster, String), RosterRefusal>, TaskError> {
        let path = format!("/v1/runs/{}/roster", active.ann.round_id);
        let bytes = loop {
            match self
                .coordinator
                .get_bytes_capped(&path, MAX_ROSTER_BYTES)
                .await
            {
                Ok(bytes) => break bytes,
                Err(e)
                    if Instant::now() < deadline
                        && e.status().is_none_or(|s| s == 404 || s >= 500) =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => return Err(TaskError::remote("fetching the roster")(e)),
            }
        };
        let refuse = |detail: String| RosterRefusal {
            worker: self.coordinator_hotkey,
            submission_id: "roster".into(),
            code: "roster_signature".into(),
            detail,
        };
        let env: Envelope = match serde_json::from_slice(&bytes) {
            Ok(env) => env,
            Err(e) => {
                return Ok(Err(refuse(format!(
                    "the roster is not a signed envelope: {e}"
                ))))
            }
        };
        let verified = match Signed::<Roster>::from_envelope(env).verify() {
            Ok(v) => v,
            Err(e) => {
                return Ok(Err(refuse(format!(
                    "the roster's signature does not verify: {e}"
                ))))
            }
        };
        if verified.signer != self.coordinator_hotkey {
            return Ok(Err(refuse(format!(
                "the roster is signed by {}, not the pinned coordinator {}",
                verified.signer, self.coordinator_hotkey
            ))));
        }
        let roster = verified.payload;
        if roster.run_id != active.ann.round_id
            || roster.lane != active.ann.lane
            || roster.deadline_ms != active.ann.deadline_ms
        {
            return Ok(Err(refuse(format!(
                "the roster is for {} ({}, deadline {}), not this run",
                roster.run_id, roster.lane, roster.deadline_ms
            ))));
        }
        let hash = sha256(&hallmark_core::canonical::to_canonical_bytes(&roster)?).to_hex();
        Ok(Ok((roster, hash)))
    }

    /// Admits or refuses one roster member.
    async fn admit(
        &self,
        active: &ActiveRound,
        mg: &Metagraph,
        member: &crate::messages::RosterMember,
    ) -> Result<RosterEntry, RosterRefusal> {
        let refuse = |code: &str, detail: String| RosterRefusal {
            worker: member.hotkey,
            submission_id: member.submission_id.clone(),
            code: code.into(),
            detail,
        };
        // Registration first: nobody unregistered makes this validator fetch anything.
        if !mg.workers().any(|n| n.hotkey == member.hotkey) {
            return Err(refuse(
                "not_registered",
                format!("{} is not a registered worker", member.hotkey),
            ));
        }
        let path = format!(
            "/v1/runs/{}/submissions/{}/archive",
            active.ann.round_id, member.submission_id
        );
        let archive = self
            .coordinator
            .get_bytes_capped(&path, active.lane.max_submission_bytes())
            .await
            .map_err(|e| refuse("archive_unavailable", e.to_string()))?;
        let got = sha256(&archive).to_hex();
        if got != member.archive_sha256 {
            return Err(refuse(
                "archive_hash_mismatch",
                format!(
                    "the served archive hashes to {got}, the roster says {}",
                    member.archive_sha256
                ),
            ));
        }
        let commit = self
            .ledger
            .archive_commit(&member.archive_sha256)
            .await
            .map_err(|e| refuse("no_commitment", format!("the ledger could not say: {e}")))?;
        match commit {
            Some(c)
                if c.hotkey == member.hotkey
                    && c.lane == active.ann.lane
                    && c.committed_ms <= active.ann.deadline_ms =>
            {
                Ok(RosterEntry {
                    worker: member.hotkey,
                    submission_id: member.submission_id.clone(),
                    archive_sha256: member.archive_sha256.clone(),
                    archive,
                })
            }
            Some(c) => Err(refuse(
                "no_commitment",
                format!(
                    "the ledger's commitment to these bytes is {}'s for lane {} at {} ms",
                    c.hotkey, c.lane, c.committed_ms
                ),
            )),
            None => Err(refuse(
                "no_commitment",
                "nobody committed these bytes on the ledger".into(),
            )),
        }
    }

    /// Measures a roster lane's run first-hand (once: a retried finalize reuses the stored
    /// measurement). Returns every listed worker's score and the report's hash.
    pub(crate) async fn roster_scores(
        &self,
        active: &ActiveRound,
        mg: &Metagraph,
    ) -> Result<(BTreeMap<PublicKey, f64>, String), TaskError> {
        let run_id = active.ann.round_id.as_str();
        let workers: Vec<PublicKey> = mg.workers().map(|n| n.hotkey).collect();
        if let Some(text) = self.store.kv_get(&evaluation_key(run_id)).await? {
            // A retried finalize: the stored measurement stands; workers listed since score 0.
            let rec: EvaluationRecord = serde_json::from_str(&text)?;
            let scores = workers
                .iter()
                .map(|w| (*w, rec.scores.get(w).copied().unwrap_or(0.0)))
                .collect();
            return Ok((scores, rec.report_sha256));
        }
        let deadline = Instant::now() + Duration::from_millis(self.cfg.collect_timeout_ms);
        let mut run = RosterRun {
            roster_sha256: String::new(),
            anchor_size: 0,
            anchor_root: String::new(),
            admitted: Vec::new(),
            refused: Vec::new(),
        };
        match self.fetch_roster(active, deadline).await? {
            Ok((roster, hash)) => {
                run.roster_sha256 = hash;
                let mut seen = std::collections::BTreeSet::new();
                for member in &roster.members {
                    if !seen.insert(member.hotkey) {
                        run.refused.push(RosterRefusal {
                            worker: member.hotkey,
                            submission_id: member.submission_id.clone(),
                            code: "duplicate_member".into(),
                            detail: "the roster lists this hotkey more than once; only its first entry is run".into(),
                        });
                        continue;
                    }
                    match self.admit(active, mg, member).await {
                        Ok(entry) => run.admitted.push(entry),
                        Err(refusal) => {
                            tracing::warn!(run = run_id, worker = %refusal.worker, code = %refusal.code, detail = %refusal.detail, "roster member refused");
                            run.refused.push(refusal);
                        }
                    }
                }
            }
            Err(refusal) => {
                tracing::warn!(run = run_id, detail = %refusal.detail, "roster refused");
                run.refused.push(refusal);
            }
        }
        let patience = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(5));
        let anchor =
            super::ledger_anchor(&self.ledger, &self.key, active.ann.deadline_ms, patience).await?;
        run.anchor_size = anchor.tree_size;
        run.anchor_root = anchor.root;
        let (lane, info, round) = (
            active.lane.clone(),
            active.info.clone(),
            active.round.clone(),
        );
        let ws = workers.clone();
        let measured = tokio::task::spawn_blocking(move || lane.measure(&info, &round, &run, &ws))
            .await?
            .map_err(|e| TaskError::Lane(format!("measuring {run_id}: {e}")))?;
        let report_sha256 = sha256(&hallmark_core::canonical::to_canonical_bytes(
            &measured.report,
        )?)
        .to_hex();
        let rec = EvaluationRecord {
            run_id: active.ann.round_id.clone(),
            lane: active.ann.lane.clone(),
            validator: self.key.public(),
            report_sha256: report_sha256.clone(),
            scores: measured.scores.clone(),
            report: measured.report,
            advisory: measured.advisory,
        };
        self.store
            .kv_put(&evaluation_key(run_id), &serde_json::to_string(&rec)?)
            .await?;
        Ok((measured.scores, report_sha256))
    }
}
