//! The round pipeline on a validator, for every round lane of the registry side by side:
//!
//! - [`intake`]: follow each lane's announced rounds, regenerate them through the lane, and
//!   check every worker's signed submission with the lane's verifier;
//! - [`report`]: score from this validator's own records, sign the report once, log it,
//!   commit its hash on the ledger;
//! - [`gossip`]: fetch peers' reports from their ledger-listed axons and check them against
//!   their commitments and earlier reports (equivocation evidence);
//! - [`decide`]: the stake-weighted median, the incumbent and its margin, weights on the
//!   ledger, the signed round result with its receipt.
//!
//! Nothing here names a lane: round ids, incumbents, commitments and weights are all keyed
//! by the announcement's lane.

pub mod decide;
pub mod gossip;
pub mod intake;
pub mod report;
pub mod roster;

use std::sync::Arc;

use hallmark_core::{Envelope, PublicKey, RoundId, RoundInfo, Signed};

use crate::error::TaskError;
use crate::lanes::{DynRoundLane, LaneRegistry, RoundState};
use crate::messages::RoundAnnouncement;

/// A round a validator adopted: its signed announcement, and the round its lane derived.
pub struct ActiveRound {
    pub ann: RoundAnnouncement,
    pub info: RoundInfo,
    pub lane: Arc<dyn DynRoundLane>,
    pub round: RoundState,
}

impl std::fmt::Debug for ActiveRound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveRound")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Regenerates an announced round through its lane on a blocking thread (sat generates
/// every instance: CPU work that must not stall the runtime).
pub async fn derive_round(
    lane: &Arc<dyn DynRoundLane>,
    ann: &RoundAnnouncement,
) -> Result<RoundState, TaskError> {
    let (l, info, params) = (lane.clone(), ann.info(), ann.params.clone());
    tokio::task::spawn_blocking(move || l.derive_round(&info, &params))
        .await?
        .map_err(|e| TaskError::Lane(format!("round parameters: {e}")))
}

/// The key under which a lane's incumbent (last winner) is kept.
pub fn incumbent_key(lane: &str) -> String {
    format!("{lane}.incumbent")
}

/// Checks a round announcement: signed by the pinned coordinator, for a lane of the registry,
/// with the canonical id of its lane and number.
pub fn check_announcement(
    env: Envelope,
    coordinator: &PublicKey,
    lanes: &LaneRegistry,
) -> Result<(RoundAnnouncement, Arc<dyn DynRoundLane>), TaskError> {
    let v = Signed::<RoundAnnouncement>::from_envelope(env)
        .verify()
        .map_err(|e| TaskError::Refused(format!("round announcement: {e}")))?;
    if &v.signer != coordinator {
        return Err(TaskError::Refused(format!(
            "round announcement signed by {}, not the pinned coordinator {coordinator}",
            v.signer
        )));
    }
    let ann = v.payload;
    let Some(lane) = lanes.round_lane(&ann.lane).cloned() else {
        return Err(TaskError::Refused(format!(
            "round announcement for lane {:?}, which this node does not run",
            ann.lane
        )));
    };
    if ann.round_id != RoundId::for_lane(&ann.lane, ann.number) {
        return Err(TaskError::Refused(format!(
            "round announcement id {} is not the canonical id of {} round {}",
            ann.round_id, ann.lane, ann.number
        )));
    }
    Ok((ann, lane))
}
