//! The round pipeline on a validator, for every round lane of the registry side by side:
//!
//! - [`intake`]: follow each lane's announced rounds, regenerate them through the lane, and
//!   check every worker's signed submission with the lane's verifier;
//! - [`report`]: score from this validator's own records, sign the report once, log it,
//!   commit its hash on the ledger;
//! - [`gossip`]: fetch peers' reports from their ledger-listed axons and check them against
//!   their commitments and earlier reports (equivocation evidence);
//! - [`catch_up`]: after missed rounds, the incumbent from peers' signed results, when a
//!   quorum of stake signed the same winner;
//! - [`decide`]: the stake-weighted median, the incumbent and its margin, weights on the
//!   ledger, the signed round result with its receipt.
//!
//! Nothing here names a lane: round ids, incumbents, commitments and weights are all keyed
//! by the announcement's lane.

pub mod catch_up;
pub mod decide;
pub mod gossip;
pub mod intake;
pub mod report;
pub mod roster;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hallmark_core::{Envelope, Keypair, PublicKey, RoundId, RoundInfo, Signed};
use hallmark_ledger::{LedgerAnchor, TxBody};

use crate::error::TaskError;
use crate::http_ledger::HttpLedger;
use crate::lanes::{DynRoundLane, LaneRegistry, RoundState};
use crate::messages::{round_seed, RoundAnnouncement};
use crate::registration::submit_tx;

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
    info: &RoundInfo,
) -> Result<RoundState, TaskError> {
    let (l, info, params) = (lane.clone(), info.clone(), ann.params.clone());
    tokio::task::spawn_blocking(move || l.derive_round(&info, &params))
        .await?
        .map_err(|e| TaskError::Lane(format!("round parameters: {e}")))
}

/// The ledger's anchor at `at_ms`, waiting for it up to `patience`. When nothing has been
/// applied since `at_ms`, this node sends a heartbeat (after a short, key-dependent pause so
/// that not every node does) to create the transaction that fixes it; a node that is not
/// registered only waits.
pub async fn ledger_anchor(
    ledger: &HttpLedger,
    key: &Keypair,
    at_ms: i64,
    patience: Duration,
) -> Result<LedgerAnchor, TaskError> {
    let start = Instant::now();
    let pause = 60 + i64::from(key.public().as_bytes()[0] % 8) * 40;
    let mut nudged = false;
    loop {
        if let Some(a) = ledger.anchor(at_ms).await? {
            return Ok(a);
        }
        if start.elapsed() >= patience {
            return Err(TaskError::NotYet(format!(
                "no ledger transaction applied at or after {at_ms} ms yet"
            )));
        }
        if !nudged && hallmark_core::time::now_unix_ms() >= at_ms + pause {
            nudged = true;
            let chain = ledger.chain_id().await?;
            if let Err(e) = submit_tx(ledger, &chain, key, TxBody::Heartbeat {}).await {
                tracing::debug!(error = %e, "heartbeat to anchor a round not taken");
            }
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

/// A round's info with its seed from the ledger anchor at the announcement's
/// `seed_anchor_ms` (waiting, and nudging, for it).
pub async fn anchored_info(
    ledger: &HttpLedger,
    key: &Keypair,
    ann: &RoundAnnouncement,
) -> Result<RoundInfo, TaskError> {
    let anchor = ledger_anchor(ledger, key, ann.seed_anchor_ms, Duration::from_secs(20)).await?;
    Ok(ann.info(round_seed(&ann.round_id, &anchor.root)))
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
