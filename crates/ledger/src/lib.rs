//! hallmark-ledger: who is in the network, with what stake, at which address, and which
//! weights validators set.
//!
//! [`Ledger`] is the boundary everything above talks to. The ledger itself is a pure state
//! machine ([`machine`]): a transition reads a [`LedgerState`] and a [`BlockCtx`] and returns
//! the rows it writes, and a Merkle state root ([`state_tree`]) commits to every row.
//! [`DevnetLedger`] is the single-sequencer implementation that `hallmark devnet` runs. An
//! adapter to a public chain (Bittensor subtensor) would implement the same trait.

pub mod block;
pub mod consensus_vote;
mod devnet;
pub mod machine;
mod params;
pub mod payments;
pub mod read;
pub mod state;
pub mod state_tree;
mod tx;
mod types;
mod voting;

pub use block::{build_block, check_block, Block, BlockError};
pub use devnet::{DevnetLedger, LedgerHead, TxOrdering};
pub use machine::{BlockCtx, Rules};
pub use params::{default_tiers, Genesis, LedgerParams};
pub use read::{ledger_fork, verify_read, LedgerFork, LedgerHeader, LedgerRead, NotAFork};
pub use state::{LedgerState, WriteSet};
pub use types::{
    ArchiveCommit, BuildInfo, BuildManagers, BuildManagersApproval, Commitment,
    ConfidentialAccount, LedgerAnchor, LedgerTx, Metagraph, Neuron, Role, SettledJob, Slash,
    StakeInfo, Tier, TxBody, TxReceipt, ValidatorWeights, WeightEntry, YumaEpoch,
};

use async_trait::async_trait;
use hallmark_core::{PublicKey, Signed};

/// Why the ledger refused a transaction or a query.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("transaction is for chain {found:?}, this ledger is {expected:?}")]
    WrongChain { expected: String, found: String },
    #[error("nonce {nonce} is not above the account's last nonce {last}: replay or reorder")]
    StaleNonce { nonce: u64, last: u64 },
    #[error("{0} is not registered")]
    NotRegistered(String),
    #[error("{0} is already registered to another coldkey")]
    AlreadyRegistered(String),
    #[error("balance {balance} is below the {needed} needed")]
    InsufficientBalance { balance: u64, needed: u64 },
    #[error("stake {stake} is below the minimum {minimum} for a {role}")]
    StakeBelowMinimum {
        stake: u64,
        minimum: u64,
        role: String,
    },
    #[error("not allowed: {0}")]
    Unauthorized(String),
    #[error("invalid transaction: {0}")]
    Invalid(String),
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// A remote ledger refused the transaction with this wire code.
    #[error("{code}: {message}")]
    Rejected { code: String, message: String },
    /// The same commitment again (a retry): nothing to do.
    #[error("{validator} already committed {commitment} for {run_id}")]
    AlreadyCommitted {
        validator: String,
        run_id: String,
        commitment: String,
    },
    /// A second, different commitment for one run: refused and kept as evidence.
    #[error("{validator} already committed a different hash for {run_id}: equivocation recorded")]
    Equivocation { validator: String, run_id: String },
    /// Weights for an epoch whose Yuma result is already computed.
    #[error("epoch {0} is closed")]
    EpochClosed(u64),
    /// The Yuma result of an epoch nobody has closed yet (reads never close one).
    #[error("{lane} epoch {epoch} is not closed yet")]
    EpochOpen { lane: String, epoch: u64 },
    /// A job that is already settled (a replayed settlement).
    #[error("job {0} is already settled")]
    AlreadySettled(String),
    /// The same slashing again.
    #[error("{hotkey} is already slashed for {reason} on job {job_id}")]
    AlreadySlashed {
        hotkey: String,
        job_id: String,
        reason: String,
    },
    /// Stake still under its lock.
    #[error("the stake of {hotkey} is locked until {until_ms} (ms since the epoch)")]
    StakeLocked { hotkey: String, until_ms: i64 },
    /// A payment whose nullifier is already spent (a replayed claim).
    #[error("job {job_id} is already paid (nullifier {nullifier})")]
    PaymentReplayed { job_id: String, nullifier: String },
    /// A private-balance transaction for a hotkey without a registered payment key.
    #[error("{0} has no payment key: register one first")]
    NoPaymentKey(String),
    /// A zero-knowledge proof that does not verify.
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    /// Evidence (a certificate, a signed result, equivocation) that does not check.
    #[error("invalid evidence: {0}")]
    InvalidEvidence(String),
    /// Another hotkey committed these archive bytes first.
    #[error("archive {archive_sha256} was committed first by {owner}")]
    ArchiveTaken {
        archive_sha256: String,
        owner: String,
    },
    /// Something asked for that does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    #[error("ledger storage failed: {0}")]
    Store(#[from] hallmark_store::StoreError),
}

impl LedgerError {
    /// A stable snake_case code for the wire.
    pub fn code(&self) -> &str {
        match self {
            LedgerError::Rejected { code, .. } => code,
            LedgerError::BadSignature(_) => "bad_signature",
            LedgerError::WrongChain { .. } => "wrong_chain",
            LedgerError::StaleNonce { .. } => "stale_nonce",
            LedgerError::NotRegistered(_) => "not_registered",
            LedgerError::AlreadyRegistered(_) => "already_registered",
            LedgerError::InsufficientBalance { .. } => "insufficient_balance",
            LedgerError::StakeBelowMinimum { .. } => "stake_below_minimum",
            LedgerError::Unauthorized(_) => "unauthorized",
            LedgerError::Invalid(_) => "invalid_transaction",
            LedgerError::Unavailable(_) => "ledger_unavailable",
            LedgerError::AlreadyCommitted { .. } => "already_committed",
            LedgerError::Equivocation { .. } => "equivocation",
            LedgerError::EpochClosed(_) => "epoch_closed",
            LedgerError::EpochOpen { .. } => "epoch_open",
            LedgerError::NotFound(_) => "not_found",
            LedgerError::ArchiveTaken { .. } => "archive_taken",
            LedgerError::AlreadySettled(_) => "already_settled",
            LedgerError::AlreadySlashed { .. } => "already_slashed",
            LedgerError::InvalidEvidence(_) => "invalid_evidence",
            LedgerError::StakeLocked { .. } => "stake_locked",
            LedgerError::PaymentReplayed { .. } => "payment_replayed",
            LedgerError::NoPaymentKey(_) => "no_payment_key",
            LedgerError::InvalidProof(_) => "invalid_proof",
            LedgerError::Store(_) => "internal",
        }
    }
}

/// The ledger as every role sees it. Peers and stakes come from here, never from the
/// coordinator.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Checks and applies a signed transaction; returns once it is durably applied.
    async fn submit(&self, tx: Signed<LedgerTx>) -> Result<TxReceipt, LedgerError>;
    /// The current metagraph: every registered neuron with its stake and axon.
    async fn metagraph(&self) -> Result<Metagraph, LedgerError>;
    /// The weights validators set for a round lane's epoch.
    async fn weights(&self, lane: &str, epoch: u64) -> Result<Vec<ValidatorWeights>, LedgerError>;
    /// An account's public balance and last nonce.
    async fn balance(&self, account: &PublicKey) -> Result<(u64, u64), LedgerError>;
    /// The score-hash commitment a validator made for a run, if any.
    async fn commitment(
        &self,
        validator: &PublicKey,
        run_id: &str,
    ) -> Result<Option<Commitment>, LedgerError>;
    /// Evidence of validators that committed twice for one run.
    async fn equivocations(
        &self,
    ) -> Result<Vec<hallmark_consensus::commitment::EquivocationEvidence>, LedgerError>;
    /// The Yuma result of a lane's closed `epoch` (`epoch_open` until a transaction closes
    /// it; reading never does).
    async fn yuma_epoch(&self, lane: &str, epoch: u64) -> Result<YumaEpoch, LedgerError>;
    /// Every slashing applied, oldest first.
    async fn slashes(&self) -> Result<Vec<Slash>, LedgerError>;
    /// How a job was settled, if it was.
    async fn settled_job(&self, job_id: &str) -> Result<Option<SettledJob>, LedgerError>;
    /// A hotkey's stake, tier and lock, if it ever staked.
    async fn stake(&self, hotkey: &PublicKey) -> Result<Option<StakeInfo>, LedgerError>;
    /// A worker's private balance, if it registered a payment key.
    async fn confidential_account(
        &self,
        hotkey: &PublicKey,
    ) -> Result<Option<ConfidentialAccount>, LedgerError>;
}
