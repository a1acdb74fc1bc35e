//! Ledger replicas on Malachite BFT.
//!
//! The ledger's state machine ([`hallmark_ledger::machine`]) is pure, so validators can
//! replicate it: Malachite orders blocks, and every replica re-executes each one before it
//! votes and again before it stores the decision. This crate holds what Malachite needs to
//! know about the ledger (the [`context`]), how its messages travel ([`codec`]), the signed
//! block [`header`] a certified read is checked against, the [`mempool`], the decided
//! block [`store`] and the [`replica`] that ties them together.

pub mod codec;
pub mod context;
pub mod header;
pub mod mempool;
pub mod replica;
pub mod signing;
pub mod store;

pub use context::{Address, BlockId, Height, LedgerContext, Validator, ValidatorSet};
pub use header::{
    block_id, verify_certified_checkpoint, verify_certified_read, BlockHeader, CertifiedCheckpoint,
    CertifiedRead,
};
pub use mempool::{Mempool, MempoolError};
pub use replica::{
    Byzantine, Equivocation, Replica, ReplicaConfig, ReplicaError, ReplicaStatus, Tuning,
    TxForwarder,
};
pub use store::{BlockStore, DecidedBlock};
