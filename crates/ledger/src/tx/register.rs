//! `Register`: the coldkey registers a hotkey in a role; the hotkey must end with at least its
//! tier's minimum bonded. What is not bonded yet (by `Stake` or an earlier registration) is
//! taken from the coldkey's balance and locked.

use hallmark_core::PublicKey;
use hallmark_store::{AccountRow, NeuronRow, StakeRow};

use crate::machine::{debit, Transition};
use crate::params::default_tier;
use crate::state::WriteSet;
use crate::types::Role;
use crate::LedgerError;

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    account: &mut AccountRow,
    hotkey: &PublicKey,
    role: Role,
    stake: u64,
) -> Result<(), LedgerError> {
    let hk = hotkey.to_ss58();
    let bonded = t.state.stake(&hk);
    if let Some(b) = bonded {
        if b.coldkey != account.address {
            return Err(LedgerError::AlreadyRegistered(hk));
        }
    }
    let tier_name = bonded.map_or_else(|| default_tier(role).to_string(), |b| b.tier.clone());
    let tier = t.tier(&tier_name)?;
    if tier.role != role {
        return Err(LedgerError::Invalid(format!(
            "{hk} is staked in tier {tier_name:?}, which is for {}s, not {}s",
            tier.role.as_str(),
            role.as_str()
        )));
    }
    let pending = bonded.map_or(0, |b| b.pending);
    let existing = t.state.neuron(&hk);
    if let Some(n) = existing {
        if n.coldkey != account.address {
            return Err(LedgerError::AlreadyRegistered(hk));
        }
        if n.role != role.as_str() {
            return Err(LedgerError::Invalid(format!(
                "{hk} is registered as {}, not {}",
                n.role,
                role.as_str()
            )));
        }
    }
    let have = existing.map_or(0, |n| n.stake) + pending;
    let total = stake.max(have);
    if total < tier.min_stake {
        return Err(LedgerError::StakeBelowMinimum {
            stake: total,
            minimum: tier.min_stake,
            role: format!("{} in tier {tier_name}", role.as_str()),
        });
    }
    let debit_amount = total - have;
    debit(account, debit_amount)?;
    let current_lock = bonded.map_or(0, |b| b.locked_until_ms);
    let locked_until_ms = if debit_amount > 0 || bonded.is_none() {
        t.lock_until(current_lock)
    } else {
        current_lock
    };
    ws.stakes.push(StakeRow {
        hotkey: hk.clone(),
        coldkey: account.address.clone(),
        tier: tier_name,
        pending: 0,
        locked_until_ms,
    });
    ws.neurons.push(match existing {
        Some(n) => NeuronRow {
            stake: total,
            ..n.clone()
        },
        None => NeuronRow {
            uid: t.state.next_uid(),
            hotkey: hk,
            coldkey: account.address.clone(),
            role: role.as_str().into(),
            stake: total,
            axon: None,
            registered_seq: t.seq,
            // Registering is the first sign of life.
            last_heartbeat_ms: t.ctx.time_ms,
            // Set by the voting-stake rule after the transaction (crate::voting).
            voting_stake: 0,
        },
    });
    Ok(())
}
