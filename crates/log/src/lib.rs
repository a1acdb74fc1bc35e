//! hallmark-log: the transparency log every signed artifact of the network goes into.
//!
//! The tree is the RFC 6962 / RFC 9162 Merkle tree (leaf hash `SHA-256(0x00‖data)`, node hash
//! `SHA-256(0x01‖left‖right)`, split at the largest power of two below the size), so any
//! Certificate-Transparency tool can check our proofs and we can check theirs. Checkpoints are
//! C2SP signed notes with Ed25519 signatures. Nothing in this crate does I/O: storage lives in
//! `hallmark-store`, which keeps the leaves and rebuilds a [`MerkleTree`] from them.

pub mod checkpoint;
pub mod hash;
pub mod proof;
pub mod receipt;
pub mod tree;

pub use checkpoint::{Checkpoint, CheckpointError, NoteVerifierKey, SignedCheckpoint};
pub use hash::{empty_root, leaf_hash, node_hash, Hash};
pub use proof::{verify_consistency, verify_inclusion, ProofError};
pub use receipt::{verify_receipt, LogProof, Receipt};
pub use tree::{MerkleTree, TreeError};
