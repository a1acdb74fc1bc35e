//! What a ledger starts from and the rules it enforces.

use std::collections::BTreeMap;

use hallmark_consensus::Quorum;
use hallmark_core::PublicKey;
use serde::{Deserialize, Serialize};

use crate::types::{Role, Tier};

/// The initial state: chain id and opening balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Genesis {
    pub chain_id: String,
    pub balances: Vec<(PublicKey, u64)>,
}

/// Rules the ledger enforces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LedgerParams {
    /// Staking tiers by name: the role each admits and its minimum stake. `validator` and
    /// `cpu` are the tiers a registration without an earlier `Stake` uses.
    pub tiers: BTreeMap<String, Tier>,
    /// How long staked tokens stay locked after they are bonded (ms).
    pub stake_lock_ms: u64,
    /// Length of a heartbeat epoch (ms).
    pub heartbeat_epoch_ms: u64,
    /// A worker whose last heartbeat is older than this many epochs is inactive.
    pub inactive_after_epochs: u64,
    /// What the ledger credits (encrypted) for one approved job.
    pub job_reward: u64,
    /// Most weight entries one transaction may carry.
    pub max_weights: usize,
    /// Ledger units emitted per Yuma epoch (reported per neuron; not yet credited).
    pub emission_per_epoch: u64,
    /// Yuma consensus quantile.
    pub kappa: f64,
    /// Yuma bonds EMA coefficient.
    pub bonds_alpha: f64,
    /// The share of stake a slashing removes, in basis points (1000 = 10%).
    pub slash_fraction_bps: u64,
    /// The share of validator stake a job certificate must carry.
    pub job_quorum: Quorum,
    /// The build council: its members approve who may write the build-info registry.
    #[serde(default)]
    pub build_council: Vec<PublicKey>,
    /// How many distinct council approvals a new build-manager set needs.
    #[serde(default)]
    pub build_council_threshold: u32,
    /// How long after a lane's epoch got its first weights anyone may close it without a
    /// 2/3 quorum of weights (ms of block time).
    #[serde(default = "default_epoch_close_grace_ms")]
    pub epoch_close_grace_ms: u64,
    /// Length of a stake epoch (ms of block time). Validator stake bonded during an epoch
    /// counts for votes and weights from the next boundary on; a cut (slash, unstake) counts
    /// at once. 0: stake counts as soon as it is bonded.
    #[serde(default)]
    pub stake_epoch_ms: u64,
    /// Most validators whose stake counts: at each boundary the largest stakes are chosen
    /// (ties by hotkey); the rest wait with a voting stake of 0.
    #[serde(default = "default_max_validators")]
    pub max_validators: u32,
    /// Validators whose stake counts from registration on, before any boundary: the
    /// network's founding set (devnet's own validators). Everyone else waits an epoch.
    #[serde(default)]
    pub genesis_validators: Vec<PublicKey>,
}

fn default_max_validators() -> u32 {
    64
}

fn default_epoch_close_grace_ms() -> u64 {
    120_000
}

/// The tier a registration without an earlier `Stake` lands in.
pub(crate) fn default_tier(role: Role) -> &'static str {
    match role {
        Role::Validator => "validator",
        Role::Worker => "cpu",
    }
}

/// The default tiers: validators, CPU workers and two GPU worker tiers.
pub fn default_tiers() -> BTreeMap<String, Tier> {
    [
        ("validator", Role::Validator, 1_000),
        ("cpu", Role::Worker, 100),
        ("gpu-a100", Role::Worker, 500),
        ("gpu-h100", Role::Worker, 1_000),
    ]
    .into_iter()
    .map(|(name, role, min_stake)| (name.to_string(), Tier { role, min_stake }))
    .collect()
}

impl Default for LedgerParams {
    fn default() -> Self {
        Self {
            tiers: default_tiers(),
            stake_lock_ms: 60_000,
            heartbeat_epoch_ms: 30_000,
            inactive_after_epochs: 4,
            job_reward: 100,
            max_weights: 4096,
            emission_per_epoch: 1_000_000_000,
            kappa: 0.5,
            bonds_alpha: 0.1,
            slash_fraction_bps: 1_000,
            job_quorum: Quorum::TWO_THIRDS,
            build_council: Vec::new(),
            build_council_threshold: 0,
            epoch_close_grace_ms: default_epoch_close_grace_ms(),
            stake_epoch_ms: 0,
            max_validators: default_max_validators(),
            genesis_validators: Vec::new(),
        }
    }
}

impl LedgerParams {
    /// Refuses parameters the ledger cannot run with (missing default tiers, a zero epoch,
    /// a slash share above the whole stake).
    pub fn check(&self) -> Result<(), String> {
        if self.build_council_threshold as usize > self.build_council.len()
            || (!self.build_council.is_empty() && self.build_council_threshold == 0)
        {
            return Err(format!(
                "build_council_threshold {} must be 1..={} (the council's size)",
                self.build_council_threshold,
                self.build_council.len()
            ));
        }
        for role in [Role::Validator, Role::Worker] {
            let name = default_tier(role);
            match self.tiers.get(name) {
                Some(t) if t.role == role => {}
                Some(_) => return Err(format!("tier {name:?} must be for {}s", role.as_str())),
                None => return Err(format!("tier {name:?} must exist")),
            }
        }
        if self.max_validators == 0 {
            return Err("max_validators must be at least 1".into());
        }
        if self.heartbeat_epoch_ms == 0 || self.inactive_after_epochs == 0 {
            return Err("heartbeat epochs must be longer than 0 ms and at least 1".into());
        }
        if self.slash_fraction_bps > 10_000 {
            return Err(format!(
                "slash_fraction_bps is {}: a share of stake in basis points, 0..=10000",
                self.slash_fraction_bps
            ));
        }
        Ok(())
    }

    /// Whether a neuron counts as present at `now_ms`.
    pub(crate) fn is_active(&self, role: Role, last_heartbeat_ms: i64, now_ms: i64) -> bool {
        let window = self
            .heartbeat_epoch_ms
            .saturating_mul(self.inactive_after_epochs)
            .min(i64::MAX as u64) as i64;
        role == Role::Validator
            || (last_heartbeat_ms > 0 && now_ms.saturating_sub(last_heartbeat_ms) <= window)
    }
}
