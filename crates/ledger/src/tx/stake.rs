//! `Stake` and `Unstake`: bonding a coldkey's balance to a hotkey in a tier under a lock, and
//! returning it once the lock has passed.
//!
//! `neurons.stake` is the one number consensus counts and slashing takes; the stake record
//! adds the owner, the tier, the lock and stake bonded before registration (`pending`).

use hallmark_core::PublicKey;
use hallmark_store::{AccountRow, StakeRow};

use crate::machine::{debit, Transition};
use crate::state::WriteSet;
use crate::LedgerError;

/// `Stake`: bonds `amount` of the coldkey's balance to `hotkey` in `tier` and (re)locks.
pub(super) fn apply_stake(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    account: &mut AccountRow,
    hotkey: &PublicKey,
    amount: u64,
    tier_name: &str,
) -> Result<(), LedgerError> {
    if amount == 0 {
        return Err(LedgerError::Invalid("stake at least 1".into()));
    }
    let tier = t.tier(tier_name)?;
    let hk = hotkey.to_ss58();
    let bonded = t.state.stake(&hk);
    if let Some(b) = bonded {
        if b.coldkey != account.address {
            return Err(LedgerError::AlreadyRegistered(hk));
        }
    }
    debit(account, amount)?;
    let mut pending = bonded.map_or(0, |b| b.pending);
    if let Some(n) = t.state.neuron(&hk) {
        let mut n = n.clone();
        if n.coldkey != account.address {
            return Err(LedgerError::AlreadyRegistered(hk));
        }
        if n.role != tier.role.as_str() {
            return Err(LedgerError::Invalid(format!(
                "{hk} is a registered {}; tier {tier_name:?} is for {}s",
                n.role,
                tier.role.as_str()
            )));
        }
        n.stake = n
            .stake
            .checked_add(amount)
            .ok_or_else(|| LedgerError::Invalid("stake would overflow".into()))?;
        if n.stake < tier.min_stake {
            return Err(LedgerError::StakeBelowMinimum {
                stake: n.stake,
                minimum: tier.min_stake,
                role: format!("{} in tier {tier_name}", n.role),
            });
        }
        ws.neurons.push(n);
    } else {
        pending = pending
            .checked_add(amount)
            .ok_or_else(|| LedgerError::Invalid("stake would overflow".into()))?;
    }
    ws.stakes.push(StakeRow {
        hotkey: hk,
        coldkey: account.address.clone(),
        tier: tier_name.to_string(),
        pending,
        locked_until_ms: t.lock_until(bonded.map_or(0, |b| b.locked_until_ms)),
    });
    Ok(())
}

/// `Unstake`: after the lock, returns stake to the coldkey. A registered hotkey keeps at
/// least its tier's minimum, or nothing at all (it then gets no work).
pub(super) fn apply_unstake(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    account: &mut AccountRow,
    hotkey: &PublicKey,
    amount: u64,
) -> Result<(), LedgerError> {
    if amount == 0 {
        return Err(LedgerError::Invalid("unstake at least 1".into()));
    }
    let hk = hotkey.to_ss58();
    let Some(bonded) = t.state.stake(&hk) else {
        return Err(LedgerError::NotFound(format!("{hk} has no stake")));
    };
    let mut bonded = bonded.clone();
    if bonded.coldkey != account.address {
        return Err(LedgerError::Unauthorized(format!(
            "only the coldkey that staked ({}) can unstake {hk}",
            bonded.coldkey
        )));
    }
    if t.ctx.time_ms < bonded.locked_until_ms {
        return Err(LedgerError::StakeLocked {
            hotkey: hk,
            until_ms: bonded.locked_until_ms,
        });
    }
    // Registration moves pending stake into the neuron, so a registered hotkey has none.
    if let Some(n) = t.state.neuron(&hk) {
        let mut n = n.clone();
        if amount > n.stake {
            return Err(LedgerError::InsufficientBalance {
                balance: n.stake,
                needed: amount,
            });
        }
        n.stake -= amount;
        let tier = t.tier(&bonded.tier)?;
        if n.stake > 0 && n.stake < tier.min_stake {
            return Err(LedgerError::StakeBelowMinimum {
                stake: n.stake,
                minimum: tier.min_stake,
                role: format!("{} in tier {} (unstake all or less)", n.role, bonded.tier),
            });
        }
        ws.neurons.push(n);
    } else {
        if amount > bonded.pending {
            return Err(LedgerError::InsufficientBalance {
                balance: bonded.pending,
                needed: amount,
            });
        }
        bonded.pending -= amount;
    }
    ws.stakes.push(bonded);
    // The signer is the coldkey that staked: its own row is written with the transaction.
    account.balance = account
        .balance
        .checked_add(amount)
        .ok_or_else(|| LedgerError::Invalid("the balance would overflow".into()))?;
    Ok(())
}
