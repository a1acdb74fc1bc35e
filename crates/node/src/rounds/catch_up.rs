//! Catching up after rounds a validator missed (cut off from the network, or down): before it
//! decides round N with a gap behind it, it asks its peers for their signed results of the
//! rounds it missed, newest first, and takes the lane's incumbent from the first round whose
//! winner peers holding a quorum of validator stake signed. A winner that fewer peers vouch
//! for is not taken: one peer, or a minority, cannot move another validator's incumbent.

use std::collections::BTreeMap;
use std::time::Duration;

use hallmark_core::{PublicKey, RoundId, Signed};
use hallmark_ledger::{Metagraph, Neuron};
use hallmark_log::Receipt;

use super::incumbent_key;
use crate::error::TaskError;
use crate::messages::RoundResult;
use crate::validator::Validator;

/// How many missed rounds, newest first, a validator looks back through.
pub const CATCH_UP_ROUNDS: u64 = 16;

/// The key under which the number of a lane's last round this validator decided is kept.
pub fn decided_key(lane: &str) -> String {
    format!("{lane}.decided")
}

/// What a validator learned while catching up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaughtUp {
    /// The missed round whose result a quorum of stake signed.
    pub round: RoundId,
    /// Its winner, now this validator's incumbent.
    pub winner: PublicKey,
    /// The stake of the peers that signed that winner.
    pub stake: u64,
}

impl Validator {
    /// Takes the lane's incumbent from peers' signed results when rounds before `number` were
    /// missed since this validator last decided one. Returns what it took, if anything.
    pub(crate) async fn catch_up(
        &self,
        lane: &str,
        number: u64,
        mg: &Metagraph,
    ) -> Result<Option<CaughtUp>, TaskError> {
        let last = self
            .store
            .kv_get(&decided_key(lane))
            .await?
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        if number <= last.saturating_add(1) {
            return Ok(None);
        }
        let me = self.key.public();
        let peers: Vec<&Neuron> = mg.validators().filter(|n| n.hotkey != me).collect();
        let total = mg.validator_stake();
        let quorum = self.policy().quorum;
        let oldest = (last + 1).max(number.saturating_sub(CATCH_UP_ROUNDS));
        for n in (oldest..number).rev() {
            let round = RoundId::for_lane(lane, n);
            let results =
                futures::future::join_all(peers.iter().map(|p| self.peer_result(p, &round))).await;
            // No peer has this round: none will have older ones this validator missed either
            // (peers decide every round they adopt), so stop rather than wait out a timeout
            // per round.
            if results.iter().all(Result::is_err) {
                break;
            }
            let mut by_winner: BTreeMap<PublicKey, u64> = BTreeMap::new();
            for (peer, result) in peers.iter().zip(results) {
                match result {
                    Ok(r) if r.quorum_met && !r.void => {
                        if let Some(w) = r.winner {
                            let s = by_winner.entry(w).or_default();
                            *s = s.saturating_add(peer.voting_stake);
                        }
                    }
                    Ok(_) => {}
                    Err(why) => {
                        tracing::debug!(peer = %peer.hotkey, round = %round, %why, "no result to catch up from")
                    }
                }
            }
            let agreed = by_winner
                .into_iter()
                .find(|(_, stake)| quorum.is_met(*stake, total));
            if let Some((winner, stake)) = agreed {
                self.store
                    .kv_put(&incumbent_key(lane), &winner.to_ss58())
                    .await?;
                tracing::info!(%round, winner = %winner.to_ss58(), stake, "caught up: incumbent taken from peers' signed results");
                return Ok(Some(CaughtUp {
                    round,
                    winner,
                    stake,
                }));
            }
        }
        Ok(None)
    }

    /// A peer's signed result for `round`, from the receipt it serves at its ledger-listed
    /// axon: signed by that peer, naming it and the round.
    async fn peer_result(&self, peer: &Neuron, round: &RoundId) -> Result<RoundResult, TaskError> {
        let Some(axon) = &peer.axon else {
            return Err(TaskError::Refused("no axon in the metagraph".into()));
        };
        let client = self.coordinator.at(axon);
        let path = format!("/v1/rounds/{round}/receipt");
        let wait = Duration::from_millis(self.cfg.collect_timeout_ms.min(5_000));
        let receipt: Receipt = tokio::time::timeout(wait, client.get(&path))
            .await
            .map_err(|_| TaskError::Refused(format!("{axon} did not answer in {wait:?}")))?
            .map_err(TaskError::remote("fetching a peer's round result"))?;
        let v = Signed::<RoundResult>::from_envelope(receipt.statement)
            .verify()
            .map_err(|e| TaskError::Refused(format!("round result: {e}")))?;
        if v.signer != peer.hotkey || v.payload.validator != peer.hotkey {
            return Err(TaskError::Refused(format!(
                "a round result signed by {} for {}, but the metagraph lists {} there",
                v.signer, v.payload.validator, peer.hotkey
            )));
        }
        if &v.payload.run_id != round {
            return Err(TaskError::Refused(format!(
                "asked for {round}, got the result of {}",
                v.payload.run_id
            )));
        }
        Ok(v.payload)
    }
}
