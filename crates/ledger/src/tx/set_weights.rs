//! `SetWeights`: a registered validator's weights for a round lane's epoch. The epoch closes
//! (its Yuma result is computed and stored) in the transaction that brings the last staked
//! validator's weights; before that, `CloseEpoch` closes it on a quorum or after a grace.

use hallmark_store::WeightsRow;

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
    let Some(me) = t.state.neuron(&t.signer_addr) else {
        return Err(LedgerError::NotRegistered(t.signer_addr.clone()));
    };
    if me.role != Role::Validator.as_str() {
        return Err(LedgerError::Unauthorized(format!(
            "{} is a {}, only validators set weights",
            t.signer_addr, me.role
        )));
    }
    let max = t.rules.params.max_weights;
    if weights.len() > max {
        return Err(LedgerError::Invalid(format!(
            "{} weights, at most {max}",
            weights.len()
        )));
    }
    for w in weights {
        let key = w.hotkey.to_ss58();
        match t.state.neuron(&key) {
            Some(n) if n.role == Role::Worker.as_str() => {}
            _ => return Err(LedgerError::NotRegistered(format!("worker {key}"))),
        }
    }
    super::close_epoch::check_lane(lane)?;
    if t.state.epoch_closed(lane, epoch) {
        return Err(LedgerError::EpochClosed(epoch));
    }
    let row = WeightsRow {
        lane: lane.to_string(),
        epoch,
        validator: t.signer_addr.clone(),
        weights: serde_json::to_string(weights).map_err(|e| LedgerError::Invalid(e.to_string()))?,
        seq: t.seq,
    };
    let stakes = t.state.validator_stakes()?;
    let all_in = !stakes.is_empty()
        && stakes.keys().all(|v| {
            let v = v.to_ss58();
            v == t.signer_addr || t.state.epoch_weights(lane, epoch).any(|w| w.validator == v)
        });
    if all_in {
        let result = super::compute_yuma(t, lane, epoch, Some(&row))?;
        ws.yuma = Some((lane.to_string(), epoch, result));
    }
    ws.weights.push(row);
    Ok(())
}
