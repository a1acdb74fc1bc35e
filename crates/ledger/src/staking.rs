//! Public balances and stake: transfers, bonding stake to a hotkey in a tier under a lock,
//! unbonding after the lock, and registration only with enough bonded stake.
//!
//! `neurons.stake` stays the one number consensus counts and slashing takes; `ledger_stakes`
//! adds the owner, the tier, the lock and any stake bonded before registration (`pending`,
//! which registration moves into the neuron).

use hallmark_core::PublicKey;
use hallmark_store::{AccountRow, LedgerCommit, NeuronRow, StakeRow};

use crate::devnet::default_tier;
use crate::types::{Role, StakeInfo, Tier};
use crate::{DevnetLedger, LedgerError};

impl DevnetLedger {
    /// The named tier, or a clear refusal listing the ones that exist.
    pub(crate) fn tier(&self, name: &str) -> Result<Tier, LedgerError> {
        self.params.tiers.get(name).copied().ok_or_else(|| {
            LedgerError::Invalid(format!(
                "unknown tier {name:?}: this ledger has {}",
                self.params
                    .tiers
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    fn lock_until(&self, now_ms: i64, current: i64) -> i64 {
        let lock = i64::try_from(self.params.stake_lock_ms).unwrap_or(i64::MAX);
        current.max(now_ms.saturating_add(lock))
    }

    /// Loads `to`'s account (or a fresh one) and adds `amount`, unless `to` is the signer whose
    /// row the transaction writes anyway.
    pub(crate) async fn credit_public(
        &self,
        commit: &mut LedgerCommit,
        signer: &mut AccountRow,
        to: &str,
        amount: u64,
    ) -> Result<(), LedgerError> {
        let overflow = || LedgerError::Invalid(format!("the balance of {to} would overflow"));
        if to == signer.address {
            signer.balance = signer.balance.checked_add(amount).ok_or_else(overflow)?;
            return Ok(());
        }
        let mut row = self.store.account(to).await?.unwrap_or(AccountRow {
            address: to.to_string(),
            balance: 0,
            nonce: 0,
        });
        row.balance = row.balance.checked_add(amount).ok_or_else(overflow)?;
        commit.accounts.push(row);
        Ok(())
    }

    fn debit(account: &mut AccountRow, amount: u64) -> Result<(), LedgerError> {
        if account.balance < amount {
            return Err(LedgerError::InsufficientBalance {
                balance: account.balance,
                needed: amount,
            });
        }
        account.balance -= amount;
        Ok(())
    }

    /// `Transfer`: public balance from the signer to `to`.
    pub(crate) async fn apply_transfer(
        &self,
        commit: &mut LedgerCommit,
        account: &mut AccountRow,
        to: &PublicKey,
        amount: u64,
    ) -> Result<(), LedgerError> {
        if amount == 0 {
            return Err(LedgerError::Invalid("a transfer moves at least 1".into()));
        }
        let to = to.to_ss58();
        if to == account.address {
            return Err(LedgerError::Invalid(
                "a transfer to oneself moves nothing".into(),
            ));
        }
        Self::debit(account, amount)?;
        self.credit_public(commit, account, &to, amount).await
    }

    /// `Register`: the hotkey must end with at least its tier's minimum bonded. `stake` is the
    /// stake it should have at least; what is not bonded yet (by `Stake` or an earlier
    /// registration) is taken from the coldkey's balance and locked.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_register(
        &self,
        commit: &mut LedgerCommit,
        account: &mut AccountRow,
        hotkey: &PublicKey,
        role: Role,
        stake: u64,
        seq: u64,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        let hk = hotkey.to_ss58();
        let bonded = self.store.stake(&hk).await?;
        if let Some(b) = &bonded {
            if b.coldkey != account.address {
                return Err(LedgerError::AlreadyRegistered(hk));
            }
        }
        let tier_name = bonded
            .as_ref()
            .map_or_else(|| default_tier(role).to_string(), |b| b.tier.clone());
        let tier = self.tier(&tier_name)?;
        if tier.role != role {
            return Err(LedgerError::Invalid(format!(
                "{hk} is staked in tier {tier_name:?}, which is for {}s, not {}s",
                tier.role.as_str(),
                role.as_str()
            )));
        }
        let pending = bonded.as_ref().map_or(0, |b| b.pending);
        let existing = self.neuron_row(hotkey).await?;
        if let Some(n) = &existing {
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
        let have = existing.as_ref().map_or(0, |n| n.stake) + pending;
        let total = stake.max(have);
        if total < tier.min_stake {
            return Err(LedgerError::StakeBelowMinimum {
                stake: total,
                minimum: tier.min_stake,
                role: format!("{} in tier {tier_name}", role.as_str()),
            });
        }
        let debit = total - have;
        Self::debit(account, debit)?;
        let current_lock = bonded.as_ref().map_or(0, |b| b.locked_until_ms);
        let locked_until_ms = if debit > 0 || bonded.is_none() {
            self.lock_until(now_ms, current_lock)
        } else {
            current_lock
        };
        commit.stakes.push(StakeRow {
            hotkey: hk.clone(),
            coldkey: account.address.clone(),
            tier: tier_name,
            pending: 0,
            locked_until_ms,
        });
        commit.neurons.push(match existing {
            Some(n) => NeuronRow { stake: total, ..n },
            None => NeuronRow {
                uid: 0,
                hotkey: hk,
                coldkey: account.address.clone(),
                role: role.as_str().into(),
                stake: total,
                axon: None,
                registered_seq: seq,
                // Registering is the first sign of life.
                last_heartbeat_ms: now_ms,
            },
        });
        Ok(())
    }

    /// `Stake`: bonds `amount` of the coldkey's balance to `hotkey` in `tier` and (re)locks.
    pub(crate) async fn apply_stake(
        &self,
        commit: &mut LedgerCommit,
        account: &mut AccountRow,
        hotkey: &PublicKey,
        amount: u64,
        tier_name: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        if amount == 0 {
            return Err(LedgerError::Invalid("stake at least 1".into()));
        }
        let tier = self.tier(tier_name)?;
        let hk = hotkey.to_ss58();
        let bonded = self.store.stake(&hk).await?;
        if let Some(b) = &bonded {
            if b.coldkey != account.address {
                return Err(LedgerError::AlreadyRegistered(hk));
            }
        }
        Self::debit(account, amount)?;
        let mut pending = bonded.as_ref().map_or(0, |b| b.pending);
        if let Some(mut n) = self.neuron_row(hotkey).await? {
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
            commit.neurons.push(n);
        } else {
            pending = pending
                .checked_add(amount)
                .ok_or_else(|| LedgerError::Invalid("stake would overflow".into()))?;
        }
        commit.stakes.push(StakeRow {
            hotkey: hk,
            coldkey: account.address.clone(),
            tier: tier_name.to_string(),
            pending,
            locked_until_ms: self.lock_until(now_ms, bonded.map_or(0, |b| b.locked_until_ms)),
        });
        Ok(())
    }

    /// `Unstake`: after the lock, returns stake to the coldkey. A registered hotkey keeps at
    /// least its tier's minimum, or nothing at all (it then gets no work).
    pub(crate) async fn apply_unstake(
        &self,
        commit: &mut LedgerCommit,
        account: &mut AccountRow,
        hotkey: &PublicKey,
        amount: u64,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        if amount == 0 {
            return Err(LedgerError::Invalid("unstake at least 1".into()));
        }
        let hk = hotkey.to_ss58();
        let Some(mut bonded) = self.store.stake(&hk).await? else {
            return Err(LedgerError::NotFound(format!("{hk} has no stake")));
        };
        if bonded.coldkey != account.address {
            return Err(LedgerError::Unauthorized(format!(
                "only the coldkey that staked ({}) can unstake {hk}",
                bonded.coldkey
            )));
        }
        if now_ms < bonded.locked_until_ms {
            return Err(LedgerError::StakeLocked {
                hotkey: hk,
                until_ms: bonded.locked_until_ms,
            });
        }
        // Registration moves pending stake into the neuron, so a registered hotkey has none.
        if let Some(mut n) = self.neuron_row(hotkey).await? {
            if amount > n.stake {
                return Err(LedgerError::InsufficientBalance {
                    balance: n.stake,
                    needed: amount,
                });
            }
            n.stake -= amount;
            let tier = self.tier(&bonded.tier)?;
            if n.stake > 0 && n.stake < tier.min_stake {
                return Err(LedgerError::StakeBelowMinimum {
                    stake: n.stake,
                    minimum: tier.min_stake,
                    role: format!("{} in tier {} (unstake all or less)", n.role, bonded.tier),
                });
            }
            commit.neurons.push(n);
        } else {
            if amount > bonded.pending {
                return Err(LedgerError::InsufficientBalance {
                    balance: bonded.pending,
                    needed: amount,
                });
            }
            bonded.pending -= amount;
        }
        commit.stakes.push(bonded);
        // The signer is the coldkey that staked: its own row is written with the transaction.
        account.balance = account
            .balance
            .checked_add(amount)
            .ok_or_else(|| LedgerError::Invalid("the balance would overflow".into()))?;
        Ok(())
    }

    /// A hotkey's stake as the ledger keeps it.
    pub(crate) async fn stake_info(
        &self,
        hotkey: &PublicKey,
    ) -> Result<Option<StakeInfo>, LedgerError> {
        let hk = hotkey.to_ss58();
        let Some(b) = self.store.stake(&hk).await? else {
            return Ok(None);
        };
        let neuron = self.store.neuron(&hk).await?;
        Ok(Some(StakeInfo {
            hotkey: *hotkey,
            coldkey: b.coldkey.parse().map_err(|_| {
                LedgerError::Invalid(format!("stored coldkey {} is not a key", b.coldkey))
            })?,
            tier: b.tier,
            staked: neuron.as_ref().map_or(0, |n| n.stake),
            pending: b.pending,
            locked_until_ms: b.locked_until_ms,
            role: neuron.and_then(|n| Role::parse(&n.role)),
        }))
    }
}
