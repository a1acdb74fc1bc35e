//! Secure-compute intake: the tee lane in the network, run by the coordinator.
//!
//! A provider offers capacity (`{node_id, gpus:[{model,count}], region, price}`) signed by its
//! hotkey, with a signed consent naming the offer's payload digest and the terms' digest. It
//! asks for an evidence nonce (bound to its authenticated hotkey) and answers with a TDX quote
//! whose report_data binds `sha256(nonce ‖ hotkey)` and NVIDIA evidence for the same nonce,
//! as an attestation job of the `tee` lane that it signs. The coordinator decides nothing:
//! each validator checks the evidence with its own trust roots and policy and votes, and the
//! node is listed only on a certificate of ≥ 2/3 of validator stake, which the listing
//! carries. Every submission, attestation outcome, health report, claim and usage receipt is
//! signed (by the provider or the coordinator) and appended to the coordinator's log.
//! Compute rows live only in the coordinator's store: nothing here feeds scores, weights or
//! emissions.
//!
//! Routes (POSTs are signed requests, see [`crate::auth`]):
//! - `GET  /v1/compute/terms` — the terms text and its SHA-256
//! - `POST /v1/compute/offers` — `{offer, consent}` envelopes
//! - `POST /v1/compute/nonces` — `{node_id}` → a nonce for the caller's node
//! - `POST /v1/compute/evidence` — `{node_id, nonce, request, result, evidence}` → 202 with the
//!   attestation job validators vote on
//! - `GET  /v1/compute/providers` — listed nodes; `/{node_id}` one node; `/{node_id}/events` its log
//! - `POST /v1/compute/providers/{node_id}/health` — the provider's health report
//! - `POST /v1/compute/providers/{node_id}/claim` — `{lease_secs}`, atomic
//! - `POST /v1/compute/providers/{node_id}/release` — `{claim_id, gpu_seconds}` → usage receipt

pub mod intake;
pub mod messages;

pub use intake::{router, ComputeIntake};
