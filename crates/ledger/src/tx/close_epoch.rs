//! `CloseEpoch`: closes a round lane's epoch and records its Yuma result, once a quorum of
//! validator stake has set weights for it or the grace period since its first weights has
//! passed (block time). Nothing else closes an epoch early; a read never does.

use std::collections::{BTreeSet, HashMap};

use hallmark_consensus::yuma::{yuma_epoch, YumaInput};
use hallmark_core::PublicKey;
use hallmark_store::WeightsRow;

use crate::machine::Transition;
use crate::state::WriteSet;
use crate::types::{Role, WeightEntry, YumaEpoch};
use crate::LedgerError;

/// Lane names in weights and epochs: 1..=32 of `a-z`, `0-9`, `-` (so state keys built from
/// them stay unambiguous).
fn check_lane(lane: &str) -> Result<(), LedgerError> {
    let ok = !lane.is_empty()
        && lane.len() <= 32
        && lane
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(LedgerError::Invalid(
            "weights name a lane of 1..=32 characters a-z, 0-9 or -".into(),
        ));
    }
    Ok(())
}

/// Refuses weights or a closing for a bad lane name or an epoch already closed.
pub(super) fn check_open(t: &Transition<'_>, lane: &str, epoch: u64) -> Result<(), LedgerError> {
    check_lane(lane)?;
    if t.state.epoch_closed(lane, epoch) {
        return Err(LedgerError::EpochClosed(epoch));
    }
    Ok(())
}

/// The validator stake that has set weights for a lane's epoch (counting `also`, a validator
/// setting them in this transaction), and all validator stake.
pub(super) fn weighted_stake(
    t: &Transition<'_>,
    lane: &str,
    epoch: u64,
    also: Option<&str>,
) -> Result<(u128, u128), LedgerError> {
    let voters: BTreeSet<&str> = t
        .state
        .epoch_weights(lane, epoch)
        .map(|w| w.validator.as_str())
        .chain(also)
        .collect();
    let stakes = t.state.validator_stakes()?;
    let total = stakes.values().map(|s| u128::from(*s)).sum();
    let voted = stakes
        .iter()
        .filter(|(k, _)| voters.contains(k.to_ss58().as_str()))
        .map(|(_, s)| u128::from(*s))
        .sum();
    Ok((voted, total))
}

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    lane: &str,
    epoch: u64,
) -> Result<(), LedgerError> {
    check_open(t, lane, epoch)?;
    let Some(opened) = t.state.epoch_opened_ms(lane, epoch) else {
        return Err(LedgerError::Invalid(format!(
            "{lane} epoch {epoch} has no weights yet: nothing to close"
        )));
    };
    let (voted, total) = weighted_stake(t, lane, epoch, None)?;
    let quorum = total > 0 && voted * 3 > total * 2;
    let grace = i64::try_from(t.rules.params.epoch_close_grace_ms).unwrap_or(i64::MAX);
    let after_grace = t.ctx.time_ms >= opened.saturating_add(grace);
    if !quorum && !after_grace {
        return Err(LedgerError::Invalid(format!(
            "{lane} epoch {epoch} is still open: validators with {voted} of {total} stake set \
             weights (more than 2/3 needed), and the grace ends at {} ms",
            opened.saturating_add(grace)
        )));
    }
    ws.yuma = Some((lane.to_string(), epoch, compute_yuma(t, lane, epoch, None)?));
    Ok(())
}

/// Computes Yuma for a lane's epoch from the weights set for it (plus `extra`, the weights
/// the current transaction writes), the neurons' stakes and the bonds of the lane's last
/// closed epoch. Returns the result as JSON.
pub(super) fn compute_yuma(
    t: &Transition<'_>,
    lane: &str,
    epoch: u64,
    extra: Option<&WeightsRow>,
) -> Result<String, LedgerError> {
    let neurons = t.state.neurons_by_uid();
    let hotkeys: Vec<PublicKey> = neurons
        .iter()
        .map(|n| {
            n.hotkey.parse().map_err(|_| {
                LedgerError::Invalid(format!("stored hotkey {} is not a key", n.hotkey))
            })
        })
        .collect::<Result<_, _>>()?;
    let index: HashMap<PublicKey, usize> =
        hotkeys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let n = hotkeys.len();
    let stake: Vec<f64> = neurons
        .iter()
        .map(|nr| {
            if nr.role == Role::Validator.as_str() {
                nr.voting_stake as f64
            } else {
                0.0
            }
        })
        .collect();
    let mut weights = vec![vec![0.0; n]; n];
    let mut active = vec![false; n];
    let mut rows: Vec<&WeightsRow> = t
        .state
        .epoch_weights(lane, epoch)
        .filter(|w| extra.is_none_or(|x| x.validator != w.validator))
        .collect();
    rows.extend(extra);
    for row in rows {
        let validator: PublicKey = row
            .validator
            .parse()
            .map_err(|_| LedgerError::Invalid(format!("stored key {}", row.validator)))?;
        let entries: Vec<WeightEntry> = serde_json::from_str(&row.weights)
            .map_err(|e| LedgerError::Invalid(format!("stored weights: {e}")))?;
        let Some(&r) = index.get(&validator) else {
            continue;
        };
        active[r] = true;
        for w in entries {
            if let Some(&c) = index.get(&w.hotkey) {
                weights[r][c] = f64::from(w.weight);
            }
        }
    }
    let bonds = match t.state.yuma_before(lane, epoch) {
        Some((_, text)) => {
            let prev: YumaEpoch = serde_json::from_str(text)
                .map_err(|e| LedgerError::Invalid(format!("stored yuma epoch: {e}")))?;
            let prev_index: HashMap<PublicKey, usize> = prev
                .hotkeys
                .iter()
                .enumerate()
                .map(|(i, k)| (*k, i))
                .collect();
            // Carry bonds over by hotkey: neurons registered since start from zero.
            let mut b = vec![vec![0.0; n]; n];
            for (i, ki) in hotkeys.iter().enumerate() {
                for (j, kj) in hotkeys.iter().enumerate() {
                    if let (Some(&pi), Some(&pj)) = (prev_index.get(ki), prev_index.get(kj)) {
                        b[i][j] = prev.bonds[pi][pj];
                    }
                }
            }
            Some(b)
        }
        None => None,
    };
    let params = &t.rules.params;
    let input = YumaInput {
        stake: stake.clone(),
        weights,
        kappa: params.kappa,
        bonds,
        alpha: params.bonds_alpha,
        bonds_penalty: 1.0,
        active: Some(active.clone()),
    };
    let out = yuma_epoch(&input).map_err(|e| LedgerError::Invalid(e.to_string()))?;
    let emission = out
        .emission
        .iter()
        .map(|s| (s * params.emission_per_epoch as f64).floor() as u64)
        .collect();
    let result = YumaEpoch {
        lane: lane.to_string(),
        epoch,
        hotkeys,
        active,
        stake,
        consensus: out.consensus,
        incentive: out.incentive,
        dividends: out.dividends,
        validator_trust: out.validator_trust,
        emission_share: out.emission,
        emission,
        bonds: out.bonds,
    };
    serde_json::to_string(&result).map_err(|e| LedgerError::Invalid(e.to_string()))
}
