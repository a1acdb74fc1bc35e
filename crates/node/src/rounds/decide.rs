//! A validator's decision for a round: its own report and its peers' (checked), the
//! stake-weighted median, the lane's incumbent and its margin, the owner's pick where the
//! weight mode follows it, weights for the lane's epoch on the ledger, and the signed round
//! result with its receipt. The loop finalizes every adopted round of every lane once its
//! deadline and grace have passed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hallmark_consensus::divergence::compare_run;
use hallmark_consensus::weights::{plan_weights, ScoredRow, WeightOutcome};
use hallmark_consensus::{agrees, decide_round, ValidatorScores};
use hallmark_core::{Envelope, RoundId, Signed};
use hallmark_ledger::{Ledger, TxBody, WeightEntry};
use tokio::sync::watch;

use super::catch_up::decided_key;
use super::{incumbent_key, ActiveRound};
use crate::config::WeightMode;
use crate::error::TaskError;
use crate::messages::{OwnerPick, RoundResult, UsedReport};
use crate::registration::submit_tx;
use crate::validator::Validator;

impl Validator {
    /// The coordinator's signed pick for the round, waiting until `deadline` if asked to.
    pub(crate) async fn owner_pick(
        &self,
        run_id: &RoundId,
        deadline: Option<Instant>,
    ) -> Option<OwnerPick> {
        let path = format!("/v1/rounds/{run_id}/pick");
        loop {
            match self.coordinator.get::<Envelope>(&path).await {
                Ok(env) => match Signed::<OwnerPick>::from_envelope(env).verify() {
                    Ok(v)
                        if v.signer == self.coordinator_hotkey && &v.payload.round_id == run_id =>
                    {
                        return Some(v.payload)
                    }
                    Ok(_) => {
                        tracing::warn!(round = %run_id, "owner pick not signed by the pinned coordinator or for another round; ignored");
                        return None;
                    }
                    Err(e) => {
                        tracing::warn!(round = %run_id, error = %e, "owner pick does not verify; ignored");
                        return None;
                    }
                },
                Err(_) if deadline.is_some_and(|d| Instant::now() < d) => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(_) => return None,
            }
        }
    }

    /// The weight rules applied to this lane's rounds up to `number`: `current` (being
    /// decided) and the results this validator signed and stored for the window's earlier
    /// rounds, each counted only if it was logged (a receipt exists) and committed.
    async fn plan_weights(
        &self,
        lane: &str,
        number: u64,
        current: ScoredRow,
        mg: &hallmark_ledger::Metagraph,
    ) -> Result<WeightOutcome, TaskError> {
        let rules = self.cfg.weights.rules_for(lane);
        let mut rows = Vec::new();
        let first = number
            .saturating_sub(rules.window_rounds.saturating_sub(1))
            .max(1);
        for n in first..number {
            let id = RoundId::for_lane(lane, n);
            let Some(text) = self.store.round_result(id.as_str()).await? else {
                continue; // not decided here (down, or before this validator joined)
            };
            let r: RoundResult = serde_json::from_str(&text)?;
            let logged = self
                .store
                .receipt(&format!("round-result/{id}"))
                .await?
                .is_some();
            rows.push(ScoredRow {
                round_id: id,
                winner: r.winner.filter(|_| !r.void),
                quorum_met: r.quorum_met,
                signed: r.validator == self.key.public(),
                logged,
                committed: r.commitment.is_some(),
            });
        }
        rows.push(current);
        let known = self.lanes.round_lane_names();
        Ok(plan_weights(lane, number, &rows, &rules, &known, &|h| {
            mg.neuron(h).map(|n| n.coldkey)
        }))
    }

    /// An epoch closes by itself once every staked validator set weights; one a validator
    /// never reached closes here, a round later, on the ledger's own quorum-or-grace rule.
    /// Only an epoch the ledger still reports open is sent (a refusal means it is not due).
    async fn close_previous_epoch(&self, lane: &str, number: u64, chain: &str) {
        let Some(previous) = number.checked_sub(1).filter(|p| *p > 0) else {
            return;
        };
        match self.ledger.yuma_epoch(lane, previous).await {
            Err(e) if e.code() == "epoch_open" => {}
            _ => return,
        }
        let close = TxBody::CloseEpoch {
            lane: lane.to_string(),
            epoch: previous,
        };
        if let Err(e) = submit_tx(&self.ledger, chain, &self.key, close).await {
            tracing::debug!(error = %e, epoch = previous, "epoch not closed");
        }
    }

    /// Scores the round, gathers reports, decides, sets weights and stores the result.
    pub(crate) async fn finalize(&self, active: &ActiveRound) -> Result<RoundResult, TaskError> {
        let run_id = active.ann.round_id.clone();
        let mg = self.ledger.metagraph().await?;
        let (own, commitment) = self.own_report(active, &mg).await?;
        // Measuring can take a while (an eval roster): read the metagraph again so peers
        // that restarted meanwhile are reached at the axon they announced since.
        let mg = self.ledger.metagraph().await?;
        let own_payload = own.verify()?.payload;
        let me = self.key.public();
        let deadline = Instant::now() + Duration::from_millis(self.cfg.collect_timeout_ms);
        let peers: Vec<_> = mg
            .validators()
            .filter(|n| n.hotkey != me)
            .cloned()
            .collect();
        let fetched = futures::future::join_all(
            peers
                .iter()
                .map(|p| self.fetch_peer_report(p, &active.ann.lane, &run_id, deadline)),
        )
        .await;
        let mut used = vec![UsedReport {
            validator: me,
            stake: mg.neuron(&me).map_or(0, |n| n.voting_stake),
            report_sha256: own.digest()?.to_hex(),
            scores: own_payload.scores.clone(),
        }];
        let mut missing = Vec::new();
        for (peer, res) in peers.iter().zip(fetched) {
            match res {
                Ok((report, digest)) => used.push(UsedReport {
                    validator: peer.hotkey,
                    stake: peer.voting_stake,
                    report_sha256: digest,
                    scores: report.scores,
                }),
                Err(why) => {
                    tracing::warn!(peer = %peer.hotkey, %why, code = why.code(), "peer report not used");
                    missing.push((peer.hotkey, why.to_string()));
                }
            }
        }
        let inputs: Vec<ValidatorScores<'_>> = used
            .iter()
            .map(|u| ValidatorScores {
                stake: u.stake,
                scores: &u.scores,
            })
            .collect();
        let caught_up = self
            .catch_up(&active.ann.lane, active.ann.number, &mg)
            .await?;
        let incumbent = self
            .store
            .kv_get(&incumbent_key(&active.ann.lane))
            .await?
            .and_then(|s| s.parse().ok());
        let policy = self.policy();
        let decision = decide_round(&inputs, mg.validator_stake(), incumbent, &policy);
        if let Some(w) = decision.winner {
            self.store
                .kv_put(&incumbent_key(&active.ann.lane), &w.to_ss58())
                .await?;
        }
        self.store
            .kv_put(
                &decided_key(&active.ann.lane),
                &active.ann.number.to_string(),
            )
            .await?;
        let mode = self.cfg.weight_mode;
        let pick_deadline = (mode != WeightMode::Decentralized)
            .then(|| Instant::now() + Duration::from_millis(self.cfg.collect_timeout_ms));
        let pick = self.owner_pick(&run_id, pick_deadline).await;
        if let Some(p) = &pick {
            let record = compare_run(
                run_id.as_str(),
                p.winner,
                &p.scores,
                decision.winner,
                &decision.consensus,
                self.cfg.divergence_top_k,
            );
            let text = serde_json::to_string(&record)?;
            self.store
                .put_divergence(run_id.as_str(), &text, hallmark_core::time::now_unix_ms())
                .await?;
        }
        let (weights_for, weights, weight_rules) = match mode {
            WeightMode::Decentralized => {
                let current = ScoredRow {
                    round_id: run_id.clone(),
                    winner: decision.winner.filter(|_| !decision.void),
                    quorum_met: decision.quorum_met,
                    // Signed and logged in this step (a failure to log fails the round,
                    // which is then decided again); committed by `own_report` above.
                    signed: true,
                    logged: true,
                    committed: true,
                };
                let plan = self
                    .plan_weights(&active.ann.lane, active.ann.number, current, &mg)
                    .await?;
                let entries: Vec<WeightEntry> = plan
                    .weights
                    .iter()
                    .map(|(hotkey, weight)| WeightEntry {
                        hotkey: *hotkey,
                        weight: *weight,
                    })
                    .collect();
                let top = decision
                    .winner
                    .filter(|w| decision.quorum_met && entries.iter().any(|e| e.hotkey == *w));
                (top, entries, Some(plan))
            }
            WeightMode::Owner | WeightMode::Shadow => {
                let w = pick.as_ref().and_then(|p| p.winner);
                let entries = w
                    .map(|hotkey| WeightEntry {
                        hotkey,
                        weight: u16::MAX,
                    })
                    .into_iter()
                    .collect();
                (w, entries, None)
            }
        };
        let weights_tx = match weights.is_empty() {
            false => {
                let chain = self.chain_id().await?;
                let body = TxBody::SetWeights {
                    lane: active.ann.lane.clone(),
                    epoch: active.ann.number,
                    weights,
                };
                let set = match submit_tx(&self.ledger, chain, &self.key, body).await {
                    Ok(r) => Some(r.tx_hash),
                    Err(e) => {
                        tracing::warn!(error = %e, "setting weights failed");
                        None
                    }
                };
                self.close_previous_epoch(&active.ann.lane, active.ann.number, chain)
                    .await;
                set
            }
            true => None,
        };
        let equivocators = self
            .store
            .equivocators(run_id.as_str())
            .await?
            .iter()
            .filter_map(|v| v.parse().ok())
            .collect();
        let rejections = self
            .store
            .rejection_counts(run_id.as_str())
            .await?
            .into_iter()
            .collect();
        let result = RoundResult {
            run_id: run_id.clone(),
            validator: me,
            byzantine: self.faults.invert_scores,
            // In a void round a validator agrees if it measured nothing either.
            agrees: if decision.void {
                !own_payload.scores.values().any(|s| *s > 0.0)
            } else {
                agrees(
                    &own_payload.scores,
                    decision.winner.as_ref(),
                    policy.dethrone_margin,
                )
            },
            winner: decision.winner,
            consensus: decision.consensus,
            quorum_met: decision.quorum_met,
            void: decision.void,
            reporting_stake: decision.reporting_stake,
            total_stake: decision.total_stake,
            reports: used,
            missing,
            rejections,
            weights_tx,
            weight_mode: mode.as_str().into(),
            owner_pick: pick.and_then(|p| p.winner),
            weights_for,
            commitment: Some(commitment),
            equivocators,
            caught_up_from: caught_up.map(|c| c.round),
            weight_rules,
        };
        let signed_result = Signed::sign(&result, &self.key)?;
        self.log_with_receipt(
            "round_result",
            &format!("round-result/{run_id}"),
            signed_result.envelope(),
        )
        .await?;
        let body = serde_json::to_string(&result)?;
        self.store
            .put_round_result(run_id.as_str(), &body, hallmark_core::time::now_unix())
            .await?;
        self.metrics
            .rounds_decided
            .with_label_values(&[
                active.ann.lane.as_str(),
                if result.quorum_met { "true" } else { "false" },
            ])
            .inc();
        tracing::info!(round = %run_id, winner = ?result.winner.map(|w| w.to_ss58()), "round decided");
        Ok(result)
    }

    /// The background loop: follow rounds and finalize each after its deadline.
    pub async fn run_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.cfg.poll_ms.max(20));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(poll) => {}
            }
            if let Err(e) = self.poll_rounds().await {
                tracing::warn!(code = e.code(), error = %e, "polling the coordinator failed");
            }
            let now = hallmark_core::time::now_unix_ms();
            let due: Vec<Arc<ActiveRound>> = self
                .undecided
                .lock()
                .await
                .values()
                .filter(|r| now >= r.ann.deadline_ms + self.cfg.grace_ms as i64)
                .cloned()
                .collect();
            // Lanes decide side by side (one lane's peer collection never delays another's);
            // within a lane, rounds are decided in order.
            let mut by_lane: std::collections::BTreeMap<String, Vec<Arc<ActiveRound>>> =
                std::collections::BTreeMap::new();
            for round in due {
                by_lane
                    .entry(round.ann.lane.clone())
                    .or_default()
                    .push(round);
            }
            let lanes = by_lane
                .into_values()
                .map(|rounds| self.decide_in_order(rounds));
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = futures::future::join_all(lanes) => {}
            }
        }
    }

    /// Finalizes a lane's due rounds in order, each once; a failed one is retried on the next
    /// pass.
    async fn decide_in_order(&self, rounds: Vec<Arc<ActiveRound>>) {
        for round in rounds {
            let decided = match self.store.round_result(round.ann.round_id.as_str()).await {
                Ok(Some(_)) => true,
                Ok(None) => match self.finalize(&round).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::error!(round = %round.ann.round_id, code = e.code(), error = %e, "finalizing the round failed; will retry");
                        false
                    }
                },
                Err(e) => {
                    tracing::error!(error = %e, "reading round results failed");
                    false
                }
            };
            if decided {
                self.undecided
                    .lock()
                    .await
                    .remove(&(round.ann.lane.clone(), round.ann.number));
            }
        }
    }
}
