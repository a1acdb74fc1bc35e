//! The provider's side of intake: offer with consent, ask for a nonce, answer it with
//! evidence as an attestation job the provider signs, wait for the validators' certificate,
//! report health. [`SimulatedProvider`] mints its evidence from the public devnet test root so
//! devnet and tests run the whole intake without TDX hardware; a production provider answers
//! the same nonce with its real quote and NRAS body through [`offer_and_attest`].

use std::time::{Duration, Instant};

use base64::Engine as _;
use hallmark_consensus::{job_id_of_envelope, JobResult};
use hallmark_core::{sha256, Keypair, Signed};
use hallmark_node::compute::messages::*;
use hallmark_node::jobs::{JobRequest, JobView};
use hallmark_node::{ClientError, NodeClient};
use hallmark_tee::chain::InstanceEvidence;
use hallmark_tee::collateral::{platform_of, CollateralCache};
use hallmark_tee::nvidia::GpuCapacity;
use hallmark_tee::simulate::{Misbehaviour, SimulatedInstance};
use hallmark_tee::testroot::TestRootOfTrust;
use hallmark_tee::AttestationSpec;

use crate::pccs::PccsFetcher;

/// The model name simulated evidence is minted under (the binding does not depend on it).
pub const MODEL: &str = "secure-compute";

/// What went wrong while registering.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("signing: {0}")]
    Sign(String),
    #[error("making evidence: {0}")]
    Evidence(String),
    #[error("collateral: {0}")]
    Collateral(String),
    #[error("the attestation job {job_id} was not settled within {secs} s")]
    Timeout { job_id: String, secs: u64 },
}

impl ProviderError {
    /// The stable code (the coordinator's own code for its refusals).
    pub fn code(&self) -> &str {
        match self {
            ProviderError::Client(e) => e.code().unwrap_or("coordinator_unreachable"),
            ProviderError::Sign(_) => "signing_failed",
            ProviderError::Evidence(_) => "evidence_unavailable",
            ProviderError::Collateral(_) => "collateral_unavailable",
            ProviderError::Timeout { .. } => "timed_out",
        }
    }
}

/// What the provider offers.
#[derive(Debug, Clone)]
pub struct OfferSpec {
    pub node_id: String,
    pub gpus: Vec<GpuCount>,
    pub region: String,
    pub price_per_gpu_hour: u64,
}

/// How an attestation ended: the job validators voted on and the listing it produced.
#[derive(Debug, Clone)]
pub struct Attestation {
    pub accepted: EvidenceAccepted,
    pub job: JobView,
    pub listing: ProviderListing,
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
    let payload = base64::engine::general_purpose::STANDARD
        .decode(&offer.envelope().payload)
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

/// The evidence submission for `nonce`: the attestation job's request and result, both
/// signed by the provider, and the evidence bytes the result names.
pub fn evidence_submission(
    key: &Keypair,
    spec: &OfferSpec,
    offer_sha256: &str,
    nonce: &str,
    evidence: &InstanceEvidence,
) -> Result<EvidenceSubmission, ProviderError> {
    let sign = |e: hallmark_core::dsse::DsseError| ProviderError::Sign(e.to_string());
    let attestation = AttestationSpec {
        node_id: spec.node_id.clone(),
        provider: key.public().to_ss58(),
        nonce: nonce.to_string(),
        gpus: spec
            .gpus
            .iter()
            .map(|g| GpuCapacity {
                model: g.model.clone(),
                count: g.count,
            })
            .collect(),
        offer_sha256: offer_sha256.to_string(),
    };
    let request = JobRequest {
        lane: ATTESTATION_LANE.into(),
        spec: serde_json::to_value(&attestation).map_err(|e| ProviderError::Sign(e.to_string()))?,
        nonce: hex::encode(rand::random::<[u8; 8]>()),
        created_ms: hallmark_core::time::now_unix_ms(),
    };
    let request = Signed::sign(&request, key).map_err(sign)?;
    let job_id = job_id_of_envelope(request.envelope()).map_err(sign)?;
    let bytes = serde_json::to_vec(evidence).map_err(|e| ProviderError::Evidence(e.to_string()))?;
    let result = JobResult {
        job_id,
        worker: key.public(),
        result_digest: sha256(&bytes).to_hex(),
    };
    let result = Signed::sign(&result, key).map_err(sign)?;
    Ok(EvidenceSubmission {
        node_id: spec.node_id.clone(),
        nonce: nonce.to_string(),
        request: request.envelope().clone(),
        result: result.envelope().clone(),
        evidence: base64::engine::general_purpose::STANDARD.encode(&bytes),
    })
}

/// Fills evidence sent without collateral from a PCCS, through a collateral cache keyed by the
/// quote's platform (FMSPC).
pub async fn fill_collateral(
    evidence: &mut InstanceEvidence,
    pccs: &PccsFetcher,
    cache: &mut CollateralCache,
) -> Result<(), String> {
    if !evidence.collateral.is_null() {
        return Ok(());
    }
    let quote = base64::engine::general_purpose::STANDARD
        .decode(&evidence.quote)
        .map_err(|_| "quote is not base64".to_string())?;
    let platform = platform_of(&quote).map_err(|e| e.to_string())?;
    let now = hallmark_core::time::now_unix().max(0) as u64;
    let c = cache
        .get_or_fetch(&platform, now, Some(pccs))
        .await
        .map_err(|e| e.to_string())?;
    evidence.collateral = serde_json::to_value(&c).map_err(|e| e.to_string())?;
    Ok(())
}

/// Waits until the attestation job is settled by the validators' vote and the coordinator
/// has listed (or not) the node by its certificate.
pub async fn wait_attested(
    coordinator: &NodeClient,
    accepted: EvidenceAccepted,
    timeout: Duration,
) -> Result<Attestation, ProviderError> {
    let start = Instant::now();
    loop {
        let job: JobView = coordinator
            .get(&format!("/v1/jobs/{}", accepted.job_id))
            .await?;
        if job.status.is_settled() {
            let listing: ProviderListing = coordinator
                .get(&format!("/v1/compute/providers/{}", accepted.node_id))
                .await?;
            let decided = listing.attestation_job.as_deref() != Some(&accepted.job_id)
                || listing.attestation_state.as_deref() != Some("voting");
            if decided {
                return Ok(Attestation {
                    accepted,
                    job,
                    listing,
                });
            }
        }
        if start.elapsed() > timeout {
            return Err(ProviderError::Timeout {
                job_id: accepted.job_id,
                secs: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where a provider gets collateral for evidence that carries none: a PCCS, through a cache
/// keyed by the quote's platform (one cache may serve many attestations).
pub struct CollateralSource<'a> {
    pub pccs: &'a PccsFetcher,
    pub cache: &'a mut CollateralCache,
}

/// Offers, takes a nonce, answers it with the evidence `attest` produces for that nonce (its
/// collateral filled from `collateral` when it has none) as a signed attestation job, and
/// waits (up to `timeout`) for the validators to settle it.
pub async fn offer_and_attest<F>(
    coordinator: &NodeClient,
    key: &Keypair,
    spec: &OfferSpec,
    attest: F,
    collateral: Option<CollateralSource<'_>>,
    timeout: Duration,
) -> Result<Attestation, ProviderError>
where
    F: FnOnce(&str) -> Result<InstanceEvidence, String>,
{
    let offer = send_offer(coordinator, key, spec).await?;
    let client = coordinator.clone().signed_by(key.clone());
    let grant: NonceGrant = client
        .post(
            "/v1/compute/nonces",
            &NonceRequest {
                node_id: spec.node_id.clone(),
            },
        )
        .await?;
    let mut evidence = attest(&grant.nonce).map_err(ProviderError::Evidence)?;
    if let Some(c) = collateral {
        fill_collateral(&mut evidence, c.pccs, c.cache)
            .await
            .map_err(ProviderError::Collateral)?;
    }
    let sub = evidence_submission(key, spec, &offer.offer_sha256, &grant.nonce, &evidence)?;
    let accepted: EvidenceAccepted = client.post("/v1/compute/evidence", &sub).await?;
    wait_attested(coordinator, accepted, timeout).await
}

/// A provider whose TDX VM and H100s are simulated by the devnet test root.
pub struct SimulatedProvider {
    pub key: Keypair,
    pub spec: OfferSpec,
    pub misbehaviour: Misbehaviour,
    /// Send evidence without collateral (validators then refuse it: `collateral_format`).
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
                    .gpus
                    .into_iter()
                    .map(|g| GpuCount {
                        model: g.model,
                        count: g.count,
                    })
                    .collect(),
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

    /// Offers, attests, and waits for the validators' decision (up to `timeout`).
    pub async fn register(
        &self,
        coordinator: &NodeClient,
        timeout: Duration,
    ) -> Result<Attestation, ProviderError> {
        self.register_with(coordinator, None, timeout).await
    }

    /// [`SimulatedProvider::register`], filling missing collateral from `collateral`.
    pub async fn register_with(
        &self,
        coordinator: &NodeClient,
        collateral: Option<CollateralSource<'_>>,
        timeout: Duration,
    ) -> Result<Attestation, ProviderError> {
        offer_and_attest(
            coordinator,
            &self.key,
            &self.spec,
            |n| self.evidence(n),
            collateral,
            timeout,
        )
        .await
    }

    /// Sends a health report; returns the coordinator's signed receipt.
    pub async fn report_health(
        &self,
        coordinator: &NodeClient,
        healthy: bool,
    ) -> Result<hallmark_core::Envelope, ProviderError> {
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
