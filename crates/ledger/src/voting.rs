//! Voting stake: the validator stake that counts for job votes, Yuma weights and the BFT
//! validator set in the current stake epoch.
//!
//! Bonded stake is not voting power at once. At each stake-epoch boundary (block time crossing
//! a multiple of `stake_epoch_ms`) the ledger snapshots the validators' bonded stake, keeping
//! only the `max_validators` largest (ties by hotkey). Until the next boundary a validator's
//! voting stake is that snapshot, lowered at once by any cut (slash, unstake) and never
//! raised: a validator registered or topped up mid-epoch waits. `genesis_validators` count
//! from registration on (a network's founding set). With `stake_epoch_ms` = 0 every
//! transaction is a boundary, after its own changes.
//!
//! The rule runs inside the pure transition, so every replica computes the same voting stakes
//! from the same transactions.

use std::collections::{BTreeMap, BTreeSet};

use hallmark_store::NeuronRow;

use crate::machine::BlockCtx;
use crate::params::LedgerParams;
use crate::state::{LedgerState, WriteSet};
use crate::types::Role;

/// Whether block time `to` is in a later stake epoch than `from`.
fn crosses_boundary(epoch_ms: u64, from: i64, to: i64) -> bool {
    let Ok(len) = i64::try_from(epoch_ms) else {
        return false;
    };
    len == 0 || to.div_euclid(len) > from.div_euclid(len)
}

/// The `max` largest validator stakes among `neurons` (ties broken by hotkey).
fn chosen<'a>(neurons: impl Iterator<Item = &'a NeuronRow>, max: u32) -> BTreeMap<String, u64> {
    let mut validators: Vec<&NeuronRow> = neurons
        .filter(|n| n.role == Role::Validator.as_str() && n.stake > 0)
        .collect();
    validators.sort_by(|a, b| b.stake.cmp(&a.stake).then_with(|| a.hotkey.cmp(&b.hotkey)));
    validators
        .into_iter()
        .take(usize::try_from(max).unwrap_or(usize::MAX))
        .map(|n| (n.hotkey.clone(), n.stake))
        .collect()
}

/// Sets the voting stake of every neuron the transaction wrote, and, at a boundary, of every
/// neuron whose voting stake the new snapshot changes (appended to `ws.neurons`).
pub(crate) fn settle(
    state: &LedgerState,
    params: &LedgerParams,
    ctx: &BlockCtx,
    ws: &mut WriteSet,
) {
    let boundary = crosses_boundary(params.stake_epoch_ms, state.time_ms(), ctx.time_ms);
    // The neurons after this transaction: the state overlaid with what it wrote.
    let written: BTreeMap<String, NeuronRow> = ws
        .neurons
        .iter()
        .map(|n| (n.hotkey.clone(), n.clone()))
        .collect();
    let genesis: BTreeSet<String> = params
        .genesis_validators
        .iter()
        .map(|k| k.to_ss58())
        .collect();
    // What a validator's voting stake is capped by before the cut to its current stake.
    let snapshot: Option<BTreeMap<String, u64>> = if !boundary {
        None
    } else if params.stake_epoch_ms == 0 {
        // Every transaction is a boundary, taken after its own changes.
        let after = state
            .neurons
            .values()
            .filter(|n| !written.contains_key(&n.hotkey))
            .chain(written.values());
        Some(chosen(after, params.max_validators))
    } else {
        // Stake bonded in the epoch that just ended counts; this transaction's does not.
        Some(chosen(state.neurons.values(), params.max_validators))
    };
    let voting = |n: &NeuronRow| -> u64 {
        if n.role != Role::Validator.as_str() {
            return 0;
        }
        let before = state.neurons.get(&n.hotkey);
        let cap = match (&snapshot, before) {
            (Some(s), _) => s.get(&n.hotkey).copied().unwrap_or(0),
            (None, Some(b)) => b.voting_stake,
            (None, None) => 0,
        };
        // A founding validator counts from its registration on (later top-ups wait).
        let cap = if genesis.contains(&n.hotkey) && before.is_none() {
            n.stake
        } else {
            cap
        };
        cap.min(n.stake)
    };
    for n in ws.neurons.iter_mut() {
        n.voting_stake = voting(n);
    }
    if boundary {
        let changed: Vec<NeuronRow> = state
            .neurons
            .values()
            .filter(|n| !written.contains_key(&n.hotkey))
            .filter_map(|n| {
                let v = voting(n);
                (v != n.voting_stake).then(|| NeuronRow {
                    voting_stake: v,
                    ..n.clone()
                })
            })
            .collect();
        ws.neurons.extend(changed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert!(crosses_boundary(0, 5, 5));
        assert!(!crosses_boundary(1000, 1500, 1999));
        assert!(crosses_boundary(1000, 1999, 2000));
        assert!(crosses_boundary(1000, 0, 1_700_000_000_000));
    }

    #[test]
    fn the_largest_stakes_are_chosen() {
        let n = |hk: &str, role: &str, stake: u64| NeuronRow {
            uid: 0,
            hotkey: hk.into(),
            coldkey: String::new(),
            role: role.into(),
            stake,
            axon: None,
            registered_seq: 0,
            last_heartbeat_ms: 0,
            voting_stake: 0,
        };
        let all = [
            n("a", "validator", 10),
            n("b", "validator", 30),
            n("c", "validator", 10),
            n("w", "worker", 99),
            n("z", "validator", 0),
        ];
        let got = chosen(all.iter(), 2);
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            [("a".into(), 10), ("b".into(), 30)]
        );
    }
}
