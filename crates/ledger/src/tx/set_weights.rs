//! `SetWeights`: a registered validator's weights for a round lane's epoch. The epoch closes
//! (its Yuma result is computed and stored) in the transaction that brings the last staked
//! validator's weights; before that, `CloseEpoch` closes it on a quorum or after a grace.

use hallmark_store::WeightsRow;

use super::close_epoch;
use crate::machine::Transition;
use crate::state::WriteSet;
use crate::types::{Role, WeightEntry};
use crate::LedgerError;

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    lane: &str,
    epoch: u64,
    weights: &[WeightEntry],
) -> Result<(), LedgerError> {
    t.signer_as(Role::Validator, "set weights")?;
    let max = t.rules.params.max_weights;
    if weights.len() > max {
        return Err(LedgerError::Invalid(format!(
            "{} weights, at most {max}",
            weights.len()
        )));
    }
    for w in weights {
        t.registered_as(&w.hotkey.to_ss58(), Role::Worker)?;
    }
    close_epoch::check_open(t, lane, epoch)?;
    let row = WeightsRow {
        lane: lane.to_string(),
        epoch,
        validator: t.signer_addr.clone(),
        weights: serde_json::to_string(weights).map_err(|e| LedgerError::Invalid(e.to_string()))?,
        seq: t.seq,
    };
    let (voted, total) = close_epoch::weighted_stake(t, lane, epoch, Some(&t.signer_addr))?;
    if total > 0 && voted == total {
        let result = close_epoch::compute_yuma(t, lane, epoch, Some(&row))?;
        ws.yuma = Some((lane.to_string(), epoch, result));
    }
    ws.weights.push(row);
    Ok(())
}
