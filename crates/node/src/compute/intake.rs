//! The coordinator's secure-compute intake: offers, evidence nonces, attestation jobs,
//! listings on certificates, claims, health and usage. See the module docs of
//! [`crate::compute`] for the routes.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use hallmark_consensus::JobResult;
use hallmark_core::{sha256, Envelope, Keypair, PublicKey, Signed, SignedPayload};
use hallmark_store::{
    ComputeNonceRow, ComputeOfferRow, ComputeProviderRow, NonceTake, Store, TransparencyLog,
};
use rand::RngCore;
use tokio::sync::watch;

use super::messages::*;
use crate::api::ApiError;
use crate::auth::{PostAuth, SignedJson, SignedPosts};
use crate::config::ComputeSection;
use crate::error::SettingError;
use crate::jobs::{JobBoard, JobRequest, JobStatus};

/// The most GPU entries an offer may list, and the most GPUs of one model.
const MAX_GPU_ENTRIES: usize = 16;
const MAX_GPUS_PER_MODEL: u32 = 64;

/// Shared state of the intake.
pub struct ComputeIntake {
    store: Store,
    log: TransparencyLog,
    origin: String,
    key: Keypair,
    cfg: ComputeSection,
    /// Where evidence goes: validators vote on it as an attestation job.
    board: Arc<JobBoard>,
    terms_sha256: String,
    auth: PostAuth,
    skew_window_ms: i64,
}

fn now_ms() -> i64 {
    hallmark_core::time::now_unix_ms()
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A node id: 1..=64 of `[A-Za-z0-9._-]`, starting with a letter or digit and without `..`
/// (so `.`, `..` and path-like ids never name a node).
fn validate_node_id(id: &str) -> Result<(), ApiError> {
    let ok = id.len() <= 64
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && !id.contains("..")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid_node_id",
            "node_id must be 1..=64 characters of A-Z a-z 0-9 . _ -, start with a letter or digit, and not contain ..",
        ))
    }
}

fn validate_gpus(gpus: &[GpuCount]) -> Result<(), ApiError> {
    if gpus.len() > MAX_GPU_ENTRIES {
        return Err(ApiError::unprocessable(
            "invalid_gpus",
            format!("at most {MAX_GPU_ENTRIES} GPU models per offer"),
        ));
    }
    for (i, g) in gpus.iter().enumerate() {
        if g.model.trim().is_empty() || g.model.len() > 32 {
            return Err(ApiError::unprocessable(
                "invalid_gpus",
                format!("gpus[{i}].model must be 1..=32 characters"),
            ));
        }
        if g.count == 0 || g.count > MAX_GPUS_PER_MODEL {
            return Err(ApiError::unprocessable(
                "invalid_gpus",
                format!("gpus[{i}].count must be 1..={MAX_GPUS_PER_MODEL}"),
            ));
        }
        if gpus[..i]
            .iter()
            .any(|o| o.model.eq_ignore_ascii_case(&g.model))
        {
            return Err(ApiError::unprocessable(
                "invalid_gpus",
                format!("GPU model {:?} is listed twice", g.model),
            ));
        }
    }
    Ok(())
}

/// The offer a stored provider row carries (it was verified when stored).
fn stored_offer(row: &ComputeProviderRow) -> Result<CapacityOffer, ApiError> {
    let env: Envelope = serde_json::from_str(&row.offer)
        .map_err(|e| ApiError::internal(format!("stored offer of {}: {e}", row.node_id)))?;
    Signed::<CapacityOffer>::from_envelope(env)
        .verify()
        .map(|v| v.payload)
        .map_err(|e| ApiError::internal(format!("stored offer of {}: {e}", row.node_id)))
}

fn listing_of(row: &ComputeProviderRow, now: i64) -> Result<ProviderListing, ApiError> {
    let offer = stored_offer(row)?;
    Ok(ProviderListing {
        node_id: row.node_id.clone(),
        provider: offer.provider,
        gpus: offer.gpus,
        region: offer.region,
        price_per_gpu_hour: offer.price_per_gpu_hour,
        listed: row.listed && row.listed_until_ms.is_some_and(|t| t > now),
        attestation_job: row.attestation_job.clone(),
        attestation_state: row.attestation_state.clone(),
        certificate: row
            .certificate
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| {
                ApiError::internal(format!("stored certificate of {}: {e}", row.node_id))
            })?,
        evidence_log_index: row.evidence_log_index,
        listed_until_ms: row.listed_until_ms,
        claimed: row.claimed_by.is_some() && row.claim_expires_ms.is_some_and(|t| t > now),
        last_health_ms: row.last_health_ms,
    })
}

impl ComputeIntake {
    /// An intake signing events with `key` into `log`, configured by `cfg`, handing evidence
    /// to `board` as attestation jobs.
    pub fn new(
        store: Store,
        log: TransparencyLog,
        key: Keypair,
        cfg: ComputeSection,
        board: Arc<JobBoard>,
        skew_window_secs: i64,
    ) -> Result<Self, SettingError> {
        if !board.runs_lane(ATTESTATION_LANE) {
            return Err(SettingError::new(
                format!("lanes.{ATTESTATION_LANE}"),
                "the job board does not run the lane evidence is voted on in",
            ));
        }
        let terms_sha256 = sha256(cfg.terms.as_bytes()).to_hex();
        Ok(Self {
            store: store.clone(),
            log,
            origin: format!("hallmark/coordinator/{}", key.public().to_ss58()),
            key,
            board,
            terms_sha256,
            auth: PostAuth::new(skew_window_secs, store.clone()),
            skew_window_ms: skew_window_secs.saturating_mul(1000),
            cfg,
        })
    }

    /// The coordinator log's origin (checkpoint name).
    pub fn log_origin(&self) -> &str {
        &self.origin
    }

    /// Appends signed envelopes to the log and records them as events of `node_id`; returns the
    /// log index of the first.
    async fn log_events(
        &self,
        node_id: &str,
        events: &[(&str, &Envelope)],
    ) -> Result<u64, ApiError> {
        let mut leaves = Vec::with_capacity(events.len());
        for (kind, env) in events {
            leaves.push((*kind, env.canonical_bytes().map_err(ApiError::internal)?));
        }
        let refs: Vec<(&str, &[u8])> = leaves.iter().map(|(k, d)| (*k, d.as_slice())).collect();
        let first = self.log.append_batch(&refs).await?;
        let now = now_ms();
        for (i, (kind, data)) in leaves.iter().enumerate() {
            let text = String::from_utf8_lossy(data);
            self.store
                .insert_compute_event(node_id, kind, &text, first + i as u64, now)
                .await?;
        }
        Ok(first)
    }

    async fn sign_and_log<T: SignedPayload>(
        &self,
        node_id: &str,
        kind: &str,
        payload: &T,
    ) -> Result<(Envelope, u64), ApiError> {
        let env = Signed::sign(payload, &self.key)
            .map_err(ApiError::internal)?
            .envelope()
            .clone();
        let idx = self.log_events(node_id, &[(kind, &env)]).await?;
        Ok((env, idx))
    }

    async fn provider(&self, node_id: &str) -> Result<ComputeProviderRow, ApiError> {
        self.store
            .compute_provider(node_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no provider node {node_id:?}")))
    }

    async fn own_provider(
        &self,
        node_id: &str,
        who: &PublicKey,
    ) -> Result<ComputeProviderRow, ApiError> {
        let row = self.provider(node_id).await?;
        if row.hotkey != who.to_ss58() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_your_node",
                format!("node {node_id} belongs to another provider"),
            ));
        }
        Ok(row)
    }

    /// Checks and stores a signed offer with its signed consent.
    pub async fn offer(
        &self,
        who: &PublicKey,
        sub: OfferSubmission,
    ) -> Result<OfferAccepted, ApiError> {
        let bad = |e: hallmark_core::dsse::DsseError| {
            ApiError::bad_request(e.code(), format!("offer envelope: {e}"))
        };
        let offer = Signed::<CapacityOffer>::from_envelope(sub.offer.clone())
            .verify()
            .map_err(bad)?;
        if &offer.signer != who || offer.payload.provider != *who {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "signer_mismatch",
                "the offer must be signed by, and name as provider, the hotkey that sends it",
            ));
        }
        let o = &offer.payload;
        validate_node_id(&o.node_id)?;
        validate_gpus(&o.gpus)?;
        if o.region.len() > 64 {
            return Err(ApiError::unprocessable(
                "invalid_region",
                "region is at most 64 characters",
            ));
        }
        let payload = base64::engine::general_purpose::STANDARD
            .decode(&sub.offer.payload)
            .map_err(|_| {
                ApiError::bad_request("malformed_envelope", "offer payload is not base64")
            })?;
        let offer_sha256 = sha256(&payload).to_hex();
        let consent = Signed::<ProviderConsent>::from_envelope(sub.consent.clone())
            .verify()
            .map_err(|e| ApiError::bad_request(e.code(), format!("consent envelope: {e}")))?;
        let c = &consent.payload;
        if &consent.signer != who || c.provider != *who || c.node_id != o.node_id {
            return Err(ApiError::unprocessable(
                "consent_mismatch",
                "the consent must be signed by the provider for the same node_id",
            ));
        }
        if c.offer_sha256 != offer_sha256 {
            return Err(ApiError::unprocessable(
                "consent_mismatch",
                format!(
                    "the consent is for offer {}, this offer's payload digest is {offer_sha256}",
                    c.offer_sha256
                ),
            ));
        }
        self.board.clients().check_time(
            "consented_at_ms",
            c.consented_at_ms,
            now_ms(),
            self.skew_window_ms,
        )?;
        if c.terms_sha256 != self.terms_sha256 {
            return Err(ApiError::unprocessable(
                "terms_mismatch",
                format!(
                    "the consent names terms {}, the current terms are {} (GET /v1/compute/terms)",
                    c.terms_sha256, self.terms_sha256
                ),
            ));
        }
        let offer_text = serde_json::to_string(&sub.offer).map_err(ApiError::internal)?;
        let consent_text = serde_json::to_string(&sub.consent).map_err(ApiError::internal)?;
        self.store
            .put_compute_offer(
                &ComputeOfferRow {
                    node_id: &o.node_id,
                    hotkey: &who.to_ss58(),
                    offer: &offer_text,
                    consent: &consent_text,
                    offer_sha256: &offer_sha256,
                },
                now_ms(),
            )
            .await
            .map_err(|e| match e {
                hallmark_store::StoreError::Conflict(m) => ApiError::conflict("node_taken", m),
                other => other.into(),
            })?;
        self.log_events(
            &o.node_id,
            &[
                ("compute_offer", &sub.offer),
                ("compute_consent", &sub.consent),
            ],
        )
        .await?;
        Ok(OfferAccepted {
            node_id: o.node_id.clone(),
            offer_sha256,
            status: "awaiting_evidence".into(),
        })
    }

    /// Issues a nonce for one of `who`'s nodes.
    pub async fn issue_nonce(
        &self,
        who: &PublicKey,
        req: &NonceRequest,
    ) -> Result<NonceGrant, ApiError> {
        self.own_provider(&req.node_id, who).await?;
        let now = now_ms();
        let ttl = i64::try_from(self.cfg.nonce_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let grant = NonceGrant {
            node_id: req.node_id.clone(),
            hotkey: *who,
            nonce: random_hex(),
            expires_at_ms: now.saturating_add(ttl),
        };
        self.store
            .insert_compute_nonce(&ComputeNonceRow {
                nonce: grant.nonce.clone(),
                node_id: grant.node_id.clone(),
                hotkey: who.to_ss58(),
                issued_ms: now,
                expires_ms: grant.expires_at_ms,
            })
            .await?;
        Ok(grant)
    }

    /// Takes a provider's evidence for a nonce as an attestation job: checks the nonce, that
    /// the provider-signed request is about this node, nonce and offer, and hands request,
    /// result and evidence to the job board, where validators vote. The node is unlisted
    /// until that job's certificate lists it.
    pub async fn evidence(
        &self,
        who: &PublicKey,
        sub: EvidenceSubmission,
    ) -> Result<EvidenceAccepted, ApiError> {
        let now = now_ms();
        let taken = match self
            .store
            .take_compute_nonce(&sub.nonce, &who.to_ss58(), now)
            .await?
        {
            NonceTake::Taken(n) => n,
            NonceTake::Unknown => {
                return Err(ApiError::unprocessable(
                    "unknown_nonce",
                    "this nonce was not issued here",
                ))
            }
            NonceTake::NotYours => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "nonce_not_yours",
                    "this nonce was issued to another hotkey",
                ))
            }
            NonceTake::AlreadyUsed => {
                return Err(ApiError::conflict(
                    "nonce_used",
                    "this nonce already answered a submission; ask for a new one",
                ))
            }
        };
        if taken.expires_ms <= now {
            return Err(ApiError::unprocessable(
                "nonce_expired",
                "this nonce expired; ask for a new one",
            ));
        }
        if taken.node_id != sub.node_id {
            return Err(ApiError::unprocessable(
                "nonce_node_mismatch",
                format!("this nonce was issued for node {}", taken.node_id),
            ));
        }
        let row = self.own_provider(&sub.node_id, who).await?;
        let offer = stored_offer(&row)?;
        let request = Signed::<JobRequest>::from_envelope(sub.request.clone());
        let asked = request.verify().map_err(|e| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                format!("attestation request: {e}"),
            )
        })?;
        let spec = &asked.payload.spec;
        let expected = serde_json::json!({
            "node_id": row.node_id,
            "provider": who.to_ss58(),
            "nonce": sub.nonce,
            "gpus": offer.gpus,
            "offer_sha256": row.offer_sha256,
        });
        if asked.signer != *who || asked.payload.lane != ATTESTATION_LANE || *spec != expected {
            return Err(ApiError::unprocessable(
                "attestation_mismatch",
                format!(
                    "the request must be the provider's, for lane {ATTESTATION_LANE}, with spec {expected}"
                ),
            ));
        }
        let artifact = base64::engine::general_purpose::STANDARD
            .decode(sub.evidence.as_bytes())
            .map_err(|e| {
                ApiError::bad_request("invalid_evidence", format!("evidence is not base64: {e}"))
            })?;
        let result = Signed::<JobResult>::from_envelope(sub.result.clone());
        let job = self
            .board
            .submit_handed_in(request, result, artifact)
            .await?;
        let applied = self
            .store
            .set_compute_attestation(&row.node_id, &row.offer_sha256, &job.job_id, now)
            .await?;
        if !applied {
            return Err(ApiError::conflict(
                "offer_changed",
                "the node's offer changed while its evidence was taken; ask for a new nonce",
            ));
        }
        self.log_events(
            &row.node_id,
            &[
                ("compute_evidence_request", &sub.request),
                ("compute_evidence_result", &sub.result),
            ],
        )
        .await?;
        tracing::info!(node = %row.node_id, job = %job.job_id, "evidence handed to the validators");
        Ok(EvidenceAccepted {
            node_id: row.node_id,
            job_id: job.job_id,
            status: "voting".into(),
        })
    }

    /// Lists or unlists every provider whose attestation job the validators have settled,
    /// by that job's certificate, with a signed, logged [`AttestationEvent`].
    pub async fn settle_attestations(&self) -> Result<(), ApiError> {
        for (node_id, job_id) in self.store.compute_attestations_voting().await? {
            let Some(job) = self.store.job(&job_id).await? else {
                continue;
            };
            let status = JobStatus::parse(&job.status);
            let approved = match status {
                Some(JobStatus::Approved) => true,
                Some(JobStatus::Rejected) => false,
                _ => continue,
            };
            let Some(certificate) = job.certificate.clone() else {
                continue;
            };
            let votes = serde_json::from_str::<hallmark_consensus::VoteCertificate>(&certificate)
                .map_err(|e| ApiError::internal(format!("stored certificate of {job_id}: {e}")))?
                .votes
                .len();
            let row = self.provider(&node_id).await?;
            let offer = stored_offer(&row)?;
            let now = now_ms();
            let event = AttestationEvent {
                node_id: node_id.clone(),
                provider: offer.provider,
                job_id: job_id.clone(),
                offer_sha256: row.offer_sha256.clone(),
                outcome: job.status.clone(),
                valid_stake: job.valid_stake,
                invalid_stake: job.invalid_stake,
                total_stake: job.total_stake,
                certificate_votes: votes,
                listed: approved,
                decided_at_ms: now,
            };
            let (_, idx) = self
                .sign_and_log(&node_id, "compute_attestation", &event)
                .await?;
            let ttl =
                i64::try_from(self.cfg.listing_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            self.store
                .decide_compute_attestation(
                    &node_id,
                    &job_id,
                    approved,
                    &certificate,
                    idx,
                    now.saturating_add(ttl),
                    now,
                )
                .await?;
            tracing::info!(node = %node_id, job = %job_id, approved, valid = job.valid_stake, total = job.total_stake, "attestation settled by certificate");
        }
        Ok(())
    }

    /// The background loop: list providers as their attestation jobs settle.
    pub async fn run_attestations(
        self: Arc<Self>,
        poll: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(poll) => {}
            }
            if let Err(e) = self.settle_attestations().await {
                tracing::warn!(error = %e.error.message, "settling attestations failed");
            }
        }
    }

    /// Records a provider's health report.
    pub async fn health(
        &self,
        who: &PublicKey,
        node_id: &str,
        report: HealthReport,
    ) -> Result<Envelope, ApiError> {
        let row = self.own_provider(node_id, who).await?;
        let offer = stored_offer(&row)?;
        let offered = total_gpus(&offer.gpus);
        if report.gpus_ok > offered {
            return Err(ApiError::unprocessable(
                "invalid_health",
                format!(
                    "gpus_ok {} exceeds the {offered} GPUs offered",
                    report.gpus_ok
                ),
            ));
        }
        if report.detail.len() > 1000 {
            return Err(ApiError::unprocessable(
                "invalid_health",
                "detail is at most 1000 characters",
            ));
        }
        let now = now_ms();
        let healthy = report.healthy && report.gpus_ok == offered;
        let listed = self
            .store
            .record_compute_health(node_id, healthy, now)
            .await?;
        let receipt = HealthReceipt {
            node_id: node_id.to_string(),
            provider: *who,
            report,
            listed,
            received_at_ms: now,
        };
        Ok(self
            .sign_and_log(node_id, "compute_health", &receipt)
            .await?
            .0)
    }

    /// Claims a listed node for `who`.
    pub async fn claim(
        &self,
        who: &PublicKey,
        node_id: &str,
        req: &ClaimRequest,
    ) -> Result<Envelope, ApiError> {
        validate_node_id(node_id)?;
        self.board.clients().admit(who).await?;
        if req.lease_secs == 0 || req.lease_secs > self.cfg.max_lease_secs {
            return Err(ApiError::unprocessable(
                "invalid_lease",
                format!("lease_secs must be 1..={}", self.cfg.max_lease_secs),
            ));
        }
        let now = now_ms();
        let margin =
            i64::try_from(self.cfg.claim_margin_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let expires = now.saturating_add(i64::try_from(req.lease_secs * 1000).unwrap_or(i64::MAX));
        let claim_id = random_hex();
        let won = self
            .store
            .claim_compute(node_id, &who.to_ss58(), &claim_id, now, expires, margin)
            .await?;
        if !won {
            let row = self.provider(node_id).await?;
            let listing = listing_of(&row, now)?;
            if !listing.listed {
                return Err(ApiError::conflict(
                    "not_listed",
                    format!("node {node_id} is not listed"),
                ));
            }
            let after = row.claim_expires_ms.unwrap_or(now).saturating_add(margin);
            return Err(ApiError::conflict(
                "already_claimed",
                format!("node {node_id} is claimed; it can be reclaimed after {after} ms"),
            )
            .with_details(serde_json::json!({ "reclaimable_after_ms": after })));
        }
        let grant = ClaimGrant {
            node_id: node_id.to_string(),
            claim_id,
            claimant: *who,
            claimed_at_ms: now,
            expires_at_ms: expires,
            reclaim_margin_ms: margin,
        };
        Ok(self.sign_and_log(node_id, "compute_claim", &grant).await?.0)
    }

    /// Ends `who`'s claim and issues the usage and revenue receipt.
    pub async fn release(
        &self,
        who: &PublicKey,
        node_id: &str,
        req: &ReleaseRequest,
    ) -> Result<Envelope, ApiError> {
        let row = self.provider(node_id).await?;
        let held = row.claim_id.as_deref() == Some(req.claim_id.as_str())
            && row.claimed_by.as_deref() == Some(who.to_ss58().as_str());
        let not_held = || {
            ApiError::conflict(
                "claim_not_held",
                "you do not hold this claim (released, or reclaimed after its timeout)",
            )
        };
        let (true, Some(claimed_at)) = (held, row.claimed_at_ms) else {
            return Err(not_held());
        };
        let offer = stored_offer(&row)?;
        let now = now_ms();
        let gpus = u64::from(total_gpus(&offer.gpus));
        let elapsed_secs = u64::try_from((now - claimed_at).max(0) / 1000 + 1).unwrap_or(u64::MAX);
        let ceiling = elapsed_secs.saturating_mul(gpus.max(1));
        if req.gpu_seconds > ceiling {
            return Err(ApiError::unprocessable(
                "usage_exceeds_claim",
                format!(
                    "{} GPU-seconds is more than {gpus} GPUs for the {elapsed_secs} s the claim lasted",
                    req.gpu_seconds
                ),
            ));
        }
        if !self
            .store
            .release_compute(node_id, &req.claim_id, &who.to_ss58(), now)
            .await?
        {
            return Err(not_held());
        }
        let revenue = u128::from(req.gpu_seconds) * u128::from(offer.price_per_gpu_hour) / 3600;
        let receipt = UsageReceipt {
            node_id: node_id.to_string(),
            provider: offer.provider,
            claimant: *who,
            claim_id: req.claim_id.clone(),
            claimed_at_ms: claimed_at,
            released_at_ms: now,
            gpu_seconds: req.gpu_seconds,
            price_per_gpu_hour: offer.price_per_gpu_hour,
            revenue: u64::try_from(revenue).unwrap_or(u64::MAX),
        };
        Ok(self
            .sign_and_log(node_id, "compute_usage", &receipt)
            .await?
            .0)
    }
}

/// Runs `cmd` with `input` on stdin; returns its exit code and stdout, or why it failed.
/// The intake's routes (merged into the coordinator's).
pub fn router(c: Arc<ComputeIntake>) -> Router {
    Router::new()
        .route("/v1/compute/terms", get(terms))
        .route("/v1/compute/offers", post(post_offer))
        .route("/v1/compute/nonces", post(post_nonce))
        .route("/v1/compute/evidence", post(post_evidence))
        .route("/v1/compute/providers", get(list))
        .route("/v1/compute/providers/{node_id}", get(show))
        .route("/v1/compute/providers/{node_id}/events", get(events))
        .route("/v1/compute/providers/{node_id}/health", post(post_health))
        .route("/v1/compute/providers/{node_id}/claim", post(post_claim))
        .route(
            "/v1/compute/providers/{node_id}/release",
            post(post_release),
        )
        .with_state(c)
}

/// Describes [`router`]'s routes for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    use hallmark_core::dsse::Envelope;
    let signed = "The body is a DSSE envelope signed by the provider's key whose payload is the JSON named in the summary.";
    let refused = [
        (400, "Malformed, wrongly signed or refused"),
        (403, "Signer not allowed"),
        (404, "Unknown provider"),
        (409, "Conflicts with what is recorded"),
    ];
    spec.get("/v1/compute/terms", "The coordinator's compute terms")
        .ok::<ComputeTerms>();
    spec.post(
        "/v1/compute/offers",
        "Offer a machine (payload: OfferSubmission)",
    )
    .describe(signed)
    .body::<Envelope>()
    .json::<OfferAccepted>(201, "Accepted")
    .errors(&refused);
    spec.post(
        "/v1/compute/nonces",
        "Ask for an attestation nonce (payload: NonceRequest)",
    )
    .describe(signed)
    .body::<Envelope>()
    .json::<NonceGrant>(201, "The nonce")
    .errors(&refused);
    spec.post(
        "/v1/compute/evidence",
        "Hand in attestation evidence (payload: EvidenceSubmission)",
    )
    .describe(signed)
    .body::<Envelope>()
    .json::<EvidenceAccepted>(202, "Accepted: the evidence is being voted on as a job")
    .errors(&refused);
    spec.get("/v1/compute/providers", "Every provider listing")
        .ok::<Vec<ProviderListing>>();
    spec.get("/v1/compute/providers/{node_id}", "One provider listing")
        .ok::<ProviderListing>()
        .errors(&[(404, "Unknown provider")]);
    spec.get(
        "/v1/compute/providers/{node_id}/events",
        "A provider's events",
    )
    .ok::<Vec<ComputeEventView>>()
    .errors(&[(404, "Unknown provider")]);
    spec.post(
        "/v1/compute/providers/{node_id}/health",
        "Report health (payload: HealthReport)",
    )
    .describe(signed)
    .body::<Envelope>()
    .json::<Envelope>(200, "The signed health receipt")
    .errors(&refused);
    spec.post(
        "/v1/compute/providers/{node_id}/claim",
        "Claim a machine (payload: ClaimRequest)",
    )
    .describe(signed)
    .body::<Envelope>()
    .json::<Envelope>(201, "The signed claim receipt")
    .errors(&refused);
    spec.post(
        "/v1/compute/providers/{node_id}/release",
        "Release a machine (payload: ReleaseRequest)",
    )
    .describe(signed)
    .body::<Envelope>()
    .json::<Envelope>(200, "The signed usage receipt")
    .errors(&refused);
}

type Intake = State<Arc<ComputeIntake>>;

impl SignedPosts for ComputeIntake {
    fn post_auth(&self) -> &PostAuth {
        &self.auth
    }
}

async fn terms(State(c): Intake) -> Json<ComputeTerms> {
    Json(ComputeTerms {
        text: c.cfg.terms.clone(),
        sha256: c.terms_sha256.clone(),
    })
}

async fn post_offer(
    State(c): Intake,
    SignedJson(who, sub): SignedJson<OfferSubmission>,
) -> Result<(StatusCode, Json<OfferAccepted>), ApiError> {
    Ok((StatusCode::CREATED, Json(c.offer(&who, sub).await?)))
}

async fn post_nonce(
    State(c): Intake,
    SignedJson(who, req): SignedJson<NonceRequest>,
) -> Result<(StatusCode, Json<NonceGrant>), ApiError> {
    Ok((StatusCode::CREATED, Json(c.issue_nonce(&who, &req).await?)))
}

async fn post_evidence(
    State(c): Intake,
    SignedJson(who, sub): SignedJson<EvidenceSubmission>,
) -> Result<(StatusCode, Json<EvidenceAccepted>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(c.evidence(&who, sub).await?)))
}

async fn list(State(c): Intake) -> Result<Json<Vec<ProviderListing>>, ApiError> {
    let now = now_ms();
    let rows = c.store.compute_providers(Some(now)).await?;
    rows.iter()
        .map(|r| listing_of(r, now))
        .collect::<Result<Vec<_>, _>>()
        .map(Json)
}

async fn show(
    State(c): Intake,
    Path(node_id): Path<String>,
) -> Result<Json<ProviderListing>, ApiError> {
    let row = c.provider(&node_id).await?;
    Ok(Json(listing_of(&row, now_ms())?))
}

async fn events(
    State(c): Intake,
    Path(node_id): Path<String>,
) -> Result<Json<Vec<ComputeEventView>>, ApiError> {
    c.provider(&node_id).await?;
    let rows = c.store.compute_events(&node_id).await?;
    rows.into_iter()
        .map(|r| {
            let envelope: Envelope = serde_json::from_str(&r.body).map_err(|e| {
                ApiError::internal(format!("stored event {} of {node_id}: {e}", r.id))
            })?;
            Ok(ComputeEventView {
                kind: r.kind,
                log_index: r.log_index,
                envelope,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()
        .map(Json)
}

async fn post_health(
    State(c): Intake,
    Path(node_id): Path<String>,
    SignedJson(who, report): SignedJson<HealthReport>,
) -> Result<Json<Envelope>, ApiError> {
    Ok(Json(c.health(&who, &node_id, report).await?))
}

async fn post_claim(
    State(c): Intake,
    Path(node_id): Path<String>,
    SignedJson(who, req): SignedJson<ClaimRequest>,
) -> Result<(StatusCode, Json<Envelope>), ApiError> {
    let grant = c.claim(&who, &node_id, &req).await?;
    Ok((StatusCode::CREATED, Json(grant)))
}

async fn post_release(
    State(c): Intake,
    Path(node_id): Path<String>,
    SignedJson(who, req): SignedJson<ReleaseRequest>,
) -> Result<Json<Envelope>, ApiError> {
    Ok(Json(c.release(&who, &node_id, &req).await?))
}
