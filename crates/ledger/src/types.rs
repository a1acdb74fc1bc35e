//! Ledger transactions and the metagraph.

use hallmark_confidential::{
    BalanceHint, Ciphertext, CreditProof, ElGamalPublicKey, PubkeyProof, WithdrawalProof,
};
use hallmark_consensus::{JobResult, SlashReason, VoteCertificate, VoteEquivocation, VoteOutcome};
use hallmark_core::{Envelope, PublicKey, Signed, SignedPayload};
use serde::{Deserialize, Serialize};

/// A neuron's role in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Validator,
    Worker,
}

impl Role {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Validator => "validator",
            Role::Worker => "worker",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "validator" => Some(Role::Validator),
            "worker" => Some(Role::Worker),
            _ => None,
        }
    }
}

/// One weight a validator assigns to a worker (u16 like subtensor; normalised by the reader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WeightEntry {
    pub hotkey: PublicKey,
    pub weight: u16,
}

/// What a transaction does. Who must sign it depends on the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TxBody {
    /// Signed by the coldkey: registers `hotkey` with `role`, moving `stake` from the coldkey's
    /// balance into the hotkey's stake.
    Register {
        hotkey: PublicKey,
        role: Role,
        stake: u64,
    },
    /// Signed by a registered hotkey: announces its HTTP address.
    ServeAxon { axon: String },
    /// Signed by a registered validator hotkey: its weights for a round lane's epoch.
    SetWeights {
        /// The round lane the weights are for (each lane has its own epochs). Transactions
        /// from before lanes were keyed carry none and are the sat lane's.
        #[serde(default = "legacy_weights_lane")]
        lane: String,
        epoch: u64,
        weights: Vec<WeightEntry>,
    },
    /// Signed by a registered validator hotkey: its score-hash commitment for a run, once.
    CommitScores { run_id: String, commitment: String },
    /// Signed by anyone (the coordinator in practice): settles a job once from its vote
    /// certificate and the worker's signed result. The ledger re-checks both against its own
    /// stake table and slashes the worker of a rejected result and every dissenting voter.
    SettleJob {
        certificate: VoteCertificate,
        result: Signed<JobResult>,
    },
    /// Signed by anyone: two conflicting signed votes of one validator on one job. The ledger
    /// checks them itself and slashes the validator once per job.
    SlashEquivocation { evidence: VoteEquivocation },
    /// Signed by anyone (a replica in practice): two conflicting consensus votes of one
    /// validator for one height, round and type. The ledger checks both signatures and
    /// slashes the validator once (later evidence finds it already slashed).
    SlashDoubleVote {
        evidence: crate::consensus_vote::DoubleVote,
    },
    /// Signed by the sender: moves `amount` of public balance to `to`.
    Transfer { to: PublicKey, amount: u64 },
    /// Signed by the coldkey: bonds `amount` of its balance to `hotkey` in `tier`, locked for
    /// the ledger's lock period (bonding more re-locks the whole stake).
    Stake {
        hotkey: PublicKey,
        amount: u64,
        tier: String,
    },
    /// Signed by the coldkey that staked: returns `amount` of `hotkey`'s stake to its balance,
    /// only once the lock has expired.
    Unstake { hotkey: PublicKey, amount: u64 },
    /// Signed by a registered hotkey: "still here". A worker silent for the configured number
    /// of heartbeat epochs is inactive and gets no jobs.
    Heartbeat {},
    /// Signed by a registered worker hotkey: the ElGamal key its private balance is encrypted
    /// under, with a proof that it knows the secret (once; it opens an empty balance).
    RegisterPaymentKey {
        pubkey: ElGamalPublicKey,
        proof: PubkeyProof,
    },
    /// Signed by the worker: credits the job reward, encrypted to the worker's key, against
    /// the job's approving vote certificate, once per job (the nullifier of the client's
    /// request). `request` is the client's signed job request (its digest is the job id).
    ClaimPayment {
        request: Envelope,
        certificate: VoteCertificate,
        result: Signed<JobResult>,
        credit: Ciphertext,
        proof: CreditProof,
        /// The owner's new decryptable balance (optional: without it the owner decrypts by
        /// baby-step giant-step).
        hint: Option<BalanceHint>,
    },
    /// Signed by the worker: moves `amount` from its private balance to its coldkey's public
    /// balance, with a proof that the private balance covers it.
    Withdraw {
        amount: u64,
        proof: WithdrawalProof,
        hint: Option<BalanceHint>,
    },
    /// Signed by anyone, carrying at least the threshold of distinct build-council members'
    /// signed [`BuildManagersApproval`]s of exactly this set and version: replaces the keys
    /// that may write the build-info registry. `version` must be the current one plus one, so
    /// approvals are never replayed.
    SetBuildManagers {
        version: u64,
        managers: Vec<PublicKey>,
        approvals: Vec<Envelope>,
    },
    /// Signed by a current build manager: records (or replaces) the SEP-58 recipe of the wasm
    /// `wasm_sha256` in the build-info registry, for a wasm whose own meta carries none.
    SetBuildInfo {
        wasm_sha256: String,
        recipe: serde_json::Value,
    },
    /// Signed by a registered worker hotkey: commits to an eval archive's bytes for a round
    /// lane before the run's deadline. The earliest commitment of identical bytes wins, so a
    /// copied archive belongs to whoever committed it first.
    CommitArchive {
        lane: String,
        archive_sha256: String,
    },
    /// Signed by anyone: closes a round lane's epoch and records its Yuma result. Valid only
    /// once validators holding more than 2/3 of validator stake have set weights for it, or
    /// once the ledger's grace period has passed since its first weights (block time). An
    /// epoch also closes by itself when the last staked validator sets its weights. Reads
    /// never close an epoch.
    CloseEpoch { lane: String, epoch: u64 },
}

/// A worker's commitment to an archive, as the ledger applied it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArchiveCommit {
    pub archive_sha256: String,
    pub lane: String,
    pub hotkey: PublicKey,
    pub seq: u64,
    /// The ledger's clock when it applied the commitment, ms since the epoch.
    pub committed_ms: i64,
}

/// A point of the ledger's history fixed by time: the first transaction applied at or after
/// `at_ms` (by the ledger's clock, in ms), and the transparency log's root at the
/// size that includes it. Nobody can know this root before `at_ms`, and everyone reads the
/// same one afterwards: the entropy rounds derive their work from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LedgerAnchor {
    pub at_ms: i64,
    pub seq: u64,
    /// The log size at the anchor (= `seq`: leaf i is transaction i+1).
    pub tree_size: u64,
    /// RFC 6962 root at `tree_size`, lowercase hex.
    pub root: String,
}

/// A build-council member's approval of a build-manager set, carried in
/// [`TxBody::SetBuildManagers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BuildManagersApproval {
    pub chain_id: String,
    pub version: u64,
    pub managers: Vec<PublicKey>,
}

impl SignedPayload for BuildManagersApproval {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.build-managers+json";
}

/// The build-info registry's writers, as the ledger serves them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BuildManagers {
    /// 0 before any set was approved (then nobody may write).
    pub version: u64,
    pub managers: Vec<PublicKey>,
    pub council: Vec<PublicKey>,
    pub threshold: u32,
}

/// One build-info registry entry, as the ledger serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BuildInfo {
    pub wasm_sha256: String,
    pub recipe: serde_json::Value,
    pub manager: PublicKey,
    /// The transaction that wrote it.
    pub seq: u64,
}

impl TxBody {
    /// The kind's wire name.
    pub fn kind(&self) -> &'static str {
        match self {
            TxBody::Register { .. } => "register",
            TxBody::ServeAxon { .. } => "serve_axon",
            TxBody::SetWeights { .. } => "set_weights",
            TxBody::CommitScores { .. } => "commit_scores",
            TxBody::SettleJob { .. } => "settle_job",
            TxBody::SlashEquivocation { .. } => "slash_equivocation",
            TxBody::SlashDoubleVote { .. } => "slash_double_vote",
            TxBody::Transfer { .. } => "transfer",
            TxBody::Stake { .. } => "stake",
            TxBody::Unstake { .. } => "unstake",
            TxBody::Heartbeat {} => "heartbeat",
            TxBody::RegisterPaymentKey { .. } => "register_payment_key",
            TxBody::ClaimPayment { .. } => "claim_payment",
            TxBody::Withdraw { .. } => "withdraw",
            TxBody::SetBuildManagers { .. } => "set_build_managers",
            TxBody::SetBuildInfo { .. } => "set_build_info",
            TxBody::CommitArchive { .. } => "commit_archive",
            TxBody::CloseEpoch { .. } => "close_epoch",
        }
    }
}

/// A ledger transaction: chain id (so a devnet transaction can't be replayed on another
/// network), a per-signer nonce that must increase, and the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LedgerTx {
    pub chain_id: String,
    pub nonce: u64,
    pub body: TxBody,
}

impl SignedPayload for LedgerTx {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.ledger-tx+json";
}

/// What the ledger returns for an applied transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TxReceipt {
    pub seq: u64,
    pub tx_hash: String,
    pub prev_hash: String,
    /// The block time the transaction was applied at (ms; hashed into its link).
    #[serde(default)]
    pub time_ms: i64,
    /// The ledger state root after it (hex; hashed into its link).
    #[serde(default)]
    pub state_root: String,
}

/// A registered hotkey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Neuron {
    pub uid: u64,
    pub hotkey: PublicKey,
    pub coldkey: PublicKey,
    pub role: Role,
    pub stake: u64,
    /// The stake that counts for votes and weights this stake epoch (validators only):
    /// bonded stake waits for the next boundary, and only the largest validators count.
    #[serde(default)]
    pub voting_stake: u64,
    pub axon: Option<String>,
    /// Its staking tier.
    #[serde(default)]
    pub tier: String,
    /// Until when (sequencer ms) its stake cannot be withdrawn.
    #[serde(default)]
    pub locked_until_ms: i64,
    /// Sequencer time of its last heartbeat (ms; 0 = never).
    #[serde(default)]
    pub last_heartbeat_ms: i64,
    /// Whether it counts as present: validators always; workers while their last heartbeat
    /// is within the configured number of epochs.
    #[serde(default)]
    pub active: bool,
}

/// A staking tier: which role it admits and the least stake it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub role: Role,
    pub min_stake: u64,
}

/// A hotkey's stake as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StakeInfo {
    pub hotkey: PublicKey,
    pub coldkey: PublicKey,
    pub tier: String,
    /// Stake bonded to the registered neuron (what consensus counts and slashing takes).
    pub staked: u64,
    /// Stake bonded before registration.
    pub pending: u64,
    pub locked_until_ms: i64,
    /// Whether the hotkey is registered, and as what.
    pub role: Option<Role>,
}

/// A worker's private balance on the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConfidentialAccount {
    pub hotkey: PublicKey,
    pub pubkey: ElGamalPublicKey,
    /// The balance, encrypted to `pubkey`.
    pub balance: Ciphertext,
    /// The owner's decryptable balance, if it left one.
    pub hint: Option<BalanceHint>,
    /// The transaction that last changed it.
    pub seq: u64,
}

/// The network as the ledger knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Metagraph {
    pub neurons: Vec<Neuron>,
}

impl Metagraph {
    /// Registered validators.
    pub fn validators(&self) -> impl Iterator<Item = &Neuron> {
        self.neurons.iter().filter(|n| n.role == Role::Validator)
    }

    /// Registered workers.
    pub fn workers(&self) -> impl Iterator<Item = &Neuron> {
        self.neurons.iter().filter(|n| n.role == Role::Worker)
    }

    /// Registered workers that are active (heartbeat within the configured epochs).
    pub fn active_workers(&self) -> impl Iterator<Item = &Neuron> {
        self.workers().filter(|n| n.active)
    }

    /// The neuron with this hotkey.
    pub fn neuron(&self, hotkey: &PublicKey) -> Option<&Neuron> {
        self.neurons.iter().find(|n| &n.hotkey == hotkey)
    }

    /// Total voting stake of all validators (what a 2/3 or 1/2 share is taken of).
    pub fn validator_stake(&self) -> u64 {
        self.validators().map(|n| n.voting_stake).sum()
    }
}

/// The lane of a `SetWeights` from before weights were keyed by lane: the sat lane, the only
/// round lane there was.
pub fn legacy_weights_lane() -> String {
    "sat".into()
}

/// One validator's weights for one lane's epoch, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ValidatorWeights {
    #[serde(default = "legacy_weights_lane")]
    pub lane: String,
    pub epoch: u64,
    pub validator: PublicKey,
    pub weights: Vec<WeightEntry>,
    pub seq: u64,
}

/// A score-hash commitment on the ledger, with the signed transaction that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Commitment {
    pub validator: PublicKey,
    pub run_id: String,
    /// `hallmark/scores/v1:<run_id>:<sha256>`.
    pub commitment: String,
    pub envelope: hallmark_core::Envelope,
    pub tx_hash: String,
}

/// The Yuma epoch the devnet ledger computed over its neurons (ordered by uid), for one round
/// lane's weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct YumaEpoch {
    #[serde(default = "legacy_weights_lane")]
    pub lane: String,
    pub epoch: u64,
    pub hotkeys: Vec<PublicKey>,
    /// Validators that set weights for this epoch (the rest are masked as inactive).
    pub active: Vec<bool>,
    pub stake: Vec<f64>,
    pub consensus: Vec<f64>,
    pub incentive: Vec<f64>,
    pub dividends: Vec<f64>,
    pub validator_trust: Vec<f64>,
    /// Share of the epoch's emission per neuron.
    pub emission_share: Vec<f64>,
    /// The epoch's emission in ledger units per neuron (floor of share × emission).
    pub emission: Vec<u64>,
    pub bonds: Vec<Vec<f64>>,
}

/// Stake the ledger removed from a hotkey, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Slash {
    pub hotkey: PublicKey,
    pub job_id: String,
    pub reason: SlashReason,
    /// Stake removed (burned).
    pub amount: u64,
    /// The transaction that applied it.
    pub seq: u64,
}

/// How the ledger settled a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SettledJob {
    pub job_id: String,
    pub outcome: VoteOutcome,
    pub result_digest: String,
    pub worker: PublicKey,
    /// The settling transaction.
    pub seq: u64,
    /// The validator stakes the certificate was checked against (re-check it offline with
    /// these: later slashings move stakes).
    pub stakes: std::collections::BTreeMap<PublicKey, u64>,
}
