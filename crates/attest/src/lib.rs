//! hallmark-attest: the tee lane's processes and clients, on top of the node's HTTP plumbing.
//!
//! - [`proxy`]: the attestation-chain proxy in front of upstream TEE instances (signed
//!   receipts, its own transparency log) and the simulated upstream.
//! - [`provider`]: a secure-compute provider's side of the coordinator's intake — offer,
//!   consent, nonce, evidence as a signed attestation job, health — with a simulated provider
//!   whose evidence the devnet test root mints.
//! - [`pccs`]: collateral from a PCCS (or Intel PCS) for evidence that carries none.
//!
//! The network's pipeline (`hallmark-node`) knows the tee lane only through its registry; this
//! crate is where the lane's own I/O lives.

pub mod pccs;
pub mod provider;
pub mod proxy;
