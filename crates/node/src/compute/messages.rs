//! What providers, claimants and the coordinator sign and exchange during secure-compute
//! intake. Provider statements are signed by the provider's hotkey; every event the
//! coordinator records is signed by the coordinator and appended to its transparency log.
//! Evidence is opaque here: validators check it, as an attestation job of the `tee` lane.

use hallmark_consensus::VoteCertificate;
use hallmark_core::{Envelope, PublicKey, SignedPayload};
use serde::{Deserialize, Serialize};

/// The job lane a provider's evidence is voted on in.
pub const ATTESTATION_LANE: &str = "tee";

/// One GPU model and how many of it a provider offers (the attestation's NVIDIA evidence must
/// show exactly these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuCount {
    pub model: String,
    pub count: u32,
}

/// How many GPUs an offer adds up to, over every model (saturating).
pub fn total_gpus(gpus: &[GpuCount]) -> u32 {
    gpus.iter().fold(0u32, |n, g| n.saturating_add(g.count))
}

/// A provider's capacity offer, signed by its hotkey: what it would run and at what price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityOffer {
    /// The provider's name for the machine (1..=64 of `[A-Za-z0-9._-]`); owned by the first
    /// hotkey that offers it.
    pub node_id: String,
    /// The hotkey offering it (must be the signer).
    pub provider: PublicKey,
    /// GPUs by marketed model (`H100`, `H200`, …); the NVIDIA evidence must match exactly.
    pub gpus: Vec<GpuCount>,
    /// Where the machine is, free text (e.g. `eu-west`).
    #[serde(default)]
    pub region: String,
    /// Price per GPU-hour in the ledger's smallest unit.
    pub price_per_gpu_hour: u64,
}

impl SignedPayload for CapacityOffer {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.compute-offer+json";
}

/// The provider's signed consent to the coordinator's terms for one exact offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConsent {
    pub node_id: String,
    pub provider: PublicKey,
    /// SHA-256 (hex) of the offer's DSSE payload bytes: the consent covers that offer only.
    pub offer_sha256: String,
    /// SHA-256 (hex) of the terms text the coordinator serves at `GET /v1/compute/terms`.
    pub terms_sha256: String,
    pub consented_at_ms: i64,
}

impl SignedPayload for ProviderConsent {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.compute-consent+json";
}

/// `POST /v1/compute/offers`: the signed offer and the signed consent.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferSubmission {
    pub offer: Envelope,
    pub consent: Envelope,
}

/// The coordinator's answer to an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OfferAccepted {
    pub node_id: String,
    pub offer_sha256: String,
    /// `awaiting_evidence`: the node is not listed until validators certify evidence for a
    /// coordinator nonce.
    pub status: String,
}

/// The coordinator's terms, which a provider consents to by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ComputeTerms {
    pub text: String,
    pub sha256: String,
}

/// `POST /v1/compute/nonces`: ask for an evidence nonce for one of the caller's nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NonceRequest {
    pub node_id: String,
}

/// An evidence nonce, usable once, by the hotkey it was issued to, before it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NonceGrant {
    pub node_id: String,
    pub hotkey: PublicKey,
    /// 32 random bytes, hex: the TDX report_data binds `sha256(nonce ‖ hotkey SS58)`, and the
    /// GPU evidence's `eat_nonce` is the nonce itself.
    pub nonce: String,
    pub expires_at_ms: i64,
}

/// `POST /v1/compute/evidence`: evidence for a nonce, as an attestation job the provider
/// signs twice: the job request (lane `tee`, spec `{node_id, provider, nonce, gpus,
/// offer_sha256}`) and the job result naming the evidence's SHA-256. The coordinator checks
/// that the request is about this node, nonce and offer, and hands it to the validators; it
/// never judges the evidence itself.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceSubmission {
    pub node_id: String,
    pub nonce: String,
    /// The provider-signed `JobRequest` envelope.
    pub request: Envelope,
    /// The provider-signed `JobResult` envelope for that job.
    pub result: Envelope,
    /// The evidence document (quote, collateral, NRAS body) as JSON bytes, standard base64:
    /// exactly the bytes the result's digest names.
    pub evidence: String,
}

/// The answer to an evidence submission: the attestation job validators now vote on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EvidenceAccepted {
    pub node_id: String,
    pub job_id: String,
    /// `voting`: the node is listed once a certificate of ≥ 2/3 validator stake approves.
    pub status: String,
}

/// The coordinator's signed record of how validators decided a provider's attestation job,
/// written when the job settles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttestationEvent {
    pub node_id: String,
    pub provider: PublicKey,
    pub job_id: String,
    pub offer_sha256: String,
    /// `approved` or `rejected`.
    pub outcome: String,
    pub valid_stake: u64,
    pub invalid_stake: u64,
    pub total_stake: u64,
    /// Signed votes in the certificate.
    pub certificate_votes: usize,
    /// The node is listed because of this event.
    pub listed: bool,
    pub decided_at_ms: i64,
}

impl SignedPayload for AttestationEvent {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.compute-attestation+json";
}

/// `POST /v1/compute/providers/{node_id}/health`, by the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthReport {
    pub healthy: bool,
    /// GPUs currently usable.
    pub gpus_ok: u32,
    #[serde(default)]
    pub detail: String,
}

/// The coordinator's signed receipt for a health report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HealthReceipt {
    pub node_id: String,
    pub provider: PublicKey,
    pub report: HealthReport,
    /// Whether the node is still listed after it.
    pub listed: bool,
    pub received_at_ms: i64,
}

impl SignedPayload for HealthReceipt {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.compute-health+json";
}

/// `POST /v1/compute/providers/{node_id}/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// How long the claim lasts unless released (1..=max_lease_secs).
    pub lease_secs: u64,
}

/// A won claim, signed by the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClaimGrant {
    pub node_id: String,
    pub claim_id: String,
    pub claimant: PublicKey,
    pub claimed_at_ms: i64,
    pub expires_at_ms: i64,
    /// Others may reclaim only after `expires_at_ms` plus this margin.
    pub reclaim_margin_ms: i64,
}

impl SignedPayload for ClaimGrant {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.compute-claim+json";
}

/// `POST /v1/compute/providers/{node_id}/release`, by the claimant: what it used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    pub claim_id: String,
    pub gpu_seconds: u64,
}

/// The coordinator's signed usage and revenue receipt for one claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UsageReceipt {
    pub node_id: String,
    pub provider: PublicKey,
    pub claimant: PublicKey,
    pub claim_id: String,
    pub claimed_at_ms: i64,
    pub released_at_ms: i64,
    pub gpu_seconds: u64,
    pub price_per_gpu_hour: u64,
    /// `gpu_seconds × price_per_gpu_hour / 3600`, rounded down.
    pub revenue: u64,
}

impl SignedPayload for UsageReceipt {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.compute-usage+json";
}

/// One provider as `GET /v1/compute/providers` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderListing {
    pub node_id: String,
    pub provider: PublicKey,
    pub gpus: Vec<GpuCount>,
    pub region: String,
    pub price_per_gpu_hour: u64,
    pub listed: bool,
    /// The attestation job its latest evidence opened, and where that job stands
    /// (`voting`, `approved`, `rejected`).
    pub attestation_job: Option<String>,
    pub attestation_state: Option<String>,
    /// The validators' certificate that decided that job: what a listing stands on.
    pub certificate: Option<VoteCertificate>,
    /// The coordinator-log leaf of the attestation event that listed it.
    pub evidence_log_index: Option<u64>,
    pub listed_until_ms: Option<i64>,
    pub claimed: bool,
    pub last_health_ms: Option<i64>,
}

/// One logged event, as `GET /v1/compute/providers/{node_id}/events` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ComputeEventView {
    pub kind: String,
    pub log_index: u64,
    /// The coordinator-signed envelope.
    pub envelope: Envelope,
}
