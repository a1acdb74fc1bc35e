//! The provider's side of intake: offer with consent, ask for a nonce, answer it with
//! evidence, report health. [`SimulatedProvider`] mints its evidence from the public devnet
//! test root so devnet and tests run the whole intake without TDX hardware; a production
//! provider answers the same nonce with its real quote and NRAS body through [`offer_and_attest`].

use hallmark_core::{sha256, Envelope, Keypair, Signed};
use hallmark_tee::chain::InstanceEvidence;
use hallmark_tee::nvidia::{total_gpus, GpuCapacity};
use hallmark_tee::simulate::{Misbehaviour, SimulatedInstance};
use hallmark_tee::testroot::TestRootOfTrust;

use super::intake::MODEL;
use super::messages::*;
use crate::client::{ClientError, NodeClient};

/// What went wrong while registering.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("signing: {0}")]
    Sign(String),
    #[error("making evidence: {0}")]
    Evidence(String),
}

/// What the provider offers.
#[derive(Debug, Clone)]
pub struct OfferSpec {
    pub node_id: String,
    pub gpus: Vec<GpuCapacity>,
    pub region: String,
    pub price_per_gpu_hour: u64,
}

/// Signs and sends an offer with consent to the coordinator's current terms.
pub async fn send_offer(
    coordinator: &NodeClient,
    key: &Keypair,
    spec: &OfferSpec,
) -> Result<OfferAccepted, ProviderError> {
    let terms: ComputeTerms = coordinator.get("/v1/compute/terms").await?;
    let offer = CapacityOffer {
        node_id: spec.node_id.clone(),
        provider: key.public(),
        gpus: spec.gpus.clone(),
        region: spec.region.clone(),
        price_per_gpu_hour: spec.price_per_gpu_hour,
    };
    let offer = Signed::sign(&offer, key).map_err(|e| ProviderError::Sign(e.to_string()))?;
    let payload = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        &offer.envelope().payload,
    )
    .map_err(|e| ProviderError::Sign(e.to_string()))?;
    let consent = ProviderConsent {
        node_id: spec.node_id.clone(),
        provider: key.public(),
        offer_sha256: sha256(&payload).to_hex(),
        terms_sha256: terms.sha256,
        consented_at_ms: hallmark_core::time::now_unix_ms(),
    };
    let consent = Signed::sign(&consent, key).map_err(|e| ProviderError::Sign(e.to_string()))?;
    let client = coordinator.clone().signed_by(key.clone());
    Ok(client
        .post(
            "/v1/compute/offers",
            &OfferSubmission {
                offer: offer.envelope().clone(),
                consent: consent.envelope().clone(),
            },
        )
        .await?)
}

/// Offers, takes a nonce, and answers it with the evidence `attest` produces for that nonce.
/// Returns the coordinator's signed evidence event (an error `evidence_rejected` carries it in
/// its details when the node was not listed).
pub async fn offer_and_attest<F>(
    coordinator: &NodeClient,
    key: &Keypair,
    spec: &OfferSpec,
    attest: F,
) -> Result<Envelope, ProviderError>
where
    F: FnOnce(&str) -> Result<InstanceEvidence, String>,
{
    send_offer(coordinator, key, spec).await?;
    let client = coordinator.clone().signed_by(key.clone());
    let grant: NonceGrant = client
        .post(
            "/v1/compute/nonces",
            &NonceRequest {
                node_id: spec.node_id.clone(),
            },
        )
        .await?;
    let evidence = attest(&grant.nonce).map_err(ProviderError::Evidence)?;
    Ok(client
        .post(
            "/v1/compute/evidence",
            &EvidenceSubmission {
                node_id: spec.node_id.clone(),
                nonce: grant.nonce,
                evidence,
            },
        )
        .await?)
}

/// A provider whose TDX VM and H100s are simulated by the devnet test root.
pub struct SimulatedProvider {
    pub key: Keypair,
    pub spec: OfferSpec,
    pub misbehaviour: Misbehaviour,
    /// Send evidence without collateral, so the coordinator's cache (and PCCS) supplies it.
    pub omit_collateral: bool,
}

impl SimulatedProvider {
    /// An honest simulated provider of `gpus` H100s.
    pub fn new(key: Keypair, node_id: &str, gpus: u32) -> Self {
        Self {
            key,
            spec: OfferSpec {
                node_id: node_id.to_string(),
                gpus: SimulatedInstance::new(node_id, MODEL, gpus, Misbehaviour::default())
                    .info
                    .gpus,
                region: "devnet".into(),
                price_per_gpu_hour: 2_000,
            },
            misbehaviour: Misbehaviour::default(),
            omit_collateral: false,
        }
    }

    /// Evidence for `nonce`: the quote's report_data binds `sha256(nonce ‖ hotkey SS58)`.
    pub fn evidence(&self, nonce: &str) -> Result<InstanceEvidence, String> {
        let mut sim = SimulatedInstance::new(
            &self.spec.node_id,
            MODEL,
            total_gpus(&self.spec.gpus),
            self.misbehaviour,
        );
        sim.info.e2e_pubkey = self.key.public().to_ss58();
        let root = TestRootOfTrust::devnet().map_err(|e| e.to_string())?;
        let now = hallmark_core::time::now_unix().max(0) as u64;
        let mut ev = sim.evidence(&root, nonce, now).map_err(|e| e.to_string())?;
        if self.omit_collateral {
            ev.collateral = serde_json::Value::Null;
        }
        Ok(ev)
    }

    /// Offers, attests, and returns the coordinator's signed evidence event.
    pub async fn register(&self, coordinator: &NodeClient) -> Result<Envelope, ProviderError> {
        offer_and_attest(coordinator, &self.key, &self.spec, |n| self.evidence(n)).await
    }

    /// Sends a health report; returns the coordinator's signed receipt.
    pub async fn report_health(
        &self,
        coordinator: &NodeClient,
        healthy: bool,
    ) -> Result<Envelope, ProviderError> {
        let gpus = total_gpus(&self.spec.gpus);
        Ok(coordinator
            .clone()
            .signed_by(self.key.clone())
            .post(
                &format!("/v1/compute/providers/{}/health", self.spec.node_id),
                &HealthReport {
                    healthy,
                    gpus_ok: if healthy { gpus } else { 0 },
                    detail: String::new(),
                },
            )
            .await?)
    }
}
