//! Secure-compute intake: the tee lane in the network, run by the coordinator.
//!
//! A provider offers capacity (`{node_id, gpus:[{model,count}], region, price}`) signed by its
//! hotkey, with a signed consent naming the offer's payload digest and the terms' digest. It
//! asks for an evidence nonce (bound to its authenticated hotkey) and answers with a TDX quote
//! whose report_data binds `sha256(nonce ‖ hotkey)` and NVIDIA evidence for the same nonce.
//! Only cryptographically verified evidence lists a node; every check, health report, claim and
//! usage receipt is signed by the coordinator and appended to its transparency log.
//! Compute rows live only in the coordinator's store: nothing here feeds scores, weights or
//! emissions.
//!
//! Routes (POSTs are signed requests, see [`crate::auth`]):
//! - `GET  /v1/compute/terms` — the terms text and its SHA-256
//! - `POST /v1/compute/offers` — `{offer, consent}` envelopes
//! - `POST /v1/compute/nonces` — `{node_id}` → a nonce for the caller's node
//! - `POST /v1/compute/evidence` — `{node_id, nonce, evidence}` → the signed evidence event
//! - `GET  /v1/compute/providers` — listed nodes; `/{node_id}` one node; `/{node_id}/events` its log
//! - `POST /v1/compute/providers/{node_id}/health` — the provider's health report
//! - `POST /v1/compute/providers/{node_id}/claim` — `{lease_secs}`, atomic
//! - `POST /v1/compute/providers/{node_id}/release` — `{claim_id, gpu_seconds}` → usage receipt

pub mod intake;
pub mod messages;
pub mod pccs;
pub mod provider;

pub use intake::{router, ComputeIntake};
