//! The coordinator's secure-compute intake: offers, evidence nonces, evidence checks,
//! listings, claims, health and usage. See the module docs of [`crate::compute`] for the
//! routes.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use hallmark_core::{sha256, Envelope, Keypair, PublicKey, Signed, SignedPayload};
use hallmark_store::{
    ComputeNonceRow, ComputeOfferRow, ComputeProviderRow, NonceTake, Store, TransparencyLog,
};
use hallmark_tee::chain::{verify_instance, ChainContext, InstanceInfo, InstanceResult};
use hallmark_tee::collateral::{platform_of, CollateralCache};
use hallmark_tee::nvidia::{total_gpus, GpuCapacity, Jwks};
use hallmark_tee::{Profile, ProfileTrust, TrustRoots};
use rand::RngCore;
use tokio::sync::Mutex;

use super::messages::*;
use super::pccs::PccsFetcher;
use crate::api::ApiError;
use crate::auth::{PostAuth, SignedJson, SignedPosts};
use crate::config::ComputeSection;

/// The model name evidence is checked under (the binding does not depend on it).
pub const MODEL: &str = "secure-compute";
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
    roots: TrustRoots,
    jwks: Jwks,
    terms_sha256: String,
    cache: Mutex<CollateralCache>,
    pccs: Option<PccsFetcher>,
    auth: PostAuth,
}

fn now_ms() -> i64 {
    hallmark_core::time::now_unix_ms()
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A node id: 1..=64 of `[A-Za-z0-9._-]`.
fn validate_node_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid_node_id",
            "node_id must be 1..=64 characters of A-Z a-z 0-9 . _ -",
        ))
    }
}

fn validate_gpus(gpus: &[GpuCapacity]) -> Result<(), ApiError> {
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
        production_evidence: row.production,
        evidence_log_index: row.evidence_log_index,
        listed_until_ms: row.listed_until_ms,
        claimed: row.claimed_by.is_some() && row.claim_expires_ms.is_some_and(|t| t > now),
        last_health_ms: row.last_health_ms,
    })
}

impl ComputeIntake {
    /// An intake signing events with `key` into `log`, configured by `cfg`.
    pub fn new(
        store: Store,
        log: TransparencyLog,
        key: Keypair,
        cfg: ComputeSection,
        skew_window_secs: i64,
    ) -> Result<Self, String> {
        cfg.policy.validate().map_err(|e| e.to_string())?;
        let jwks = match &cfg.nvidia_jwks_file {
            Some(p) => {
                let bytes =
                    std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
                Jwks::parse(&bytes).map_err(|e| format!("{}: {e}", p.display()))?
            }
            None => Jwks { keys: Vec::new() },
        };
        let ProfileTrust { roots, jwks, .. } =
            ProfileTrust::new(cfg.profile, jwks).map_err(|e| e.to_string())?;
        if jwks.keys.is_empty() {
            tracing::warn!(
                "no NVIDIA JWKS configured: GPU evidence will be rejected (fail closed)"
            );
        }
        for d in &cfg.verifier_allowlist {
            if d.len() != 64 || hex::decode(d).is_err() {
                return Err(format!(
                    "verifier_allowlist entry {d:?} is not a SHA-256 hex digest"
                ));
            }
        }
        if let Some(cmd) = &cfg.external_verifier {
            if cmd.is_empty() {
                return Err(
                    "external_verifier is empty: give the command and its arguments".into(),
                );
            }
        }
        let pccs = cfg
            .pccs_url
            .as_deref()
            .map(|u| PccsFetcher::new(u, Duration::from_secs(20)))
            .transpose()?;
        let terms_sha256 = sha256(cfg.terms.as_bytes()).to_hex();
        Ok(Self {
            store,
            log,
            origin: format!("hallmark/coordinator/{}", key.public().to_ss58()),
            key,
            roots,
            jwks,
            terms_sha256,
            cache: Mutex::new(CollateralCache::new(cfg.collateral_max_age_secs)),
            pccs,
            auth: PostAuth::new(skew_window_secs),
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

    /// Checks evidence for a nonce and lists (or unlists) the node by the outcome.
    pub async fn evidence(
        &self,
        who: &PublicKey,
        mut sub: EvidenceSubmission,
    ) -> Result<(bool, Envelope), ApiError> {
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
        let info = InstanceInfo {
            instance_id: row.node_id.clone(),
            model: MODEL.into(),
            e2e_pubkey: who.to_ss58(),
            gpus: offer.gpus.clone(),
        };

        let (source, collateral_error) = if sub.evidence.collateral.is_null() {
            match self.cached_collateral(&sub.evidence.quote).await {
                Ok(v) => {
                    sub.evidence.collateral = v;
                    (CollateralSource::Cache, None)
                }
                Err(e) => (CollateralSource::None, Some(e)),
            }
        } else {
            (CollateralSource::Evidence, None)
        };
        let result = match collateral_error {
            Some(e) => InstanceResult::unverified(&row.node_id, Some(format!("collateral: {e}"))),
            None => {
                let ctx = ChainContext {
                    now: u64::try_from(now / 1000).unwrap_or(0),
                    roots: &self.roots,
                    policy: &self.cfg.policy,
                    jwks: &self.jwks,
                };
                verify_instance(&info, &sub.evidence, &sub.nonce, &ctx)
            }
        };
        let external = match &self.cfg.external_verifier {
            Some(cmd) => Some(self.run_external(cmd, who, &sub, &result).await),
            None => None,
        };
        let verified = result.verified() && external.as_ref().is_none_or(|e| e.accepted);
        let production_evidence = self.cfg.profile == Profile::Production
            && verified
            && external.as_ref().is_none_or(|e| e.allowlisted);
        let listed = verified && (production_evidence || self.cfg.profile == Profile::Devnet);
        let event = EvidenceEvent {
            node_id: row.node_id.clone(),
            provider: *who,
            nonce: sub.nonce.clone(),
            offer_sha256: row.offer_sha256.clone(),
            profile: self.cfg.profile,
            collateral_source: source,
            result,
            external_verifier: external,
            verified,
            production_evidence,
            listed,
            checked_at_ms: now,
        };
        let (env, idx) = self
            .sign_and_log(&row.node_id, "compute_evidence", &event)
            .await?;
        let ttl = i64::try_from(self.cfg.listing_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let applied = self
            .store
            .set_compute_listing(
                &row.node_id,
                &row.offer_sha256,
                listed,
                production_evidence,
                idx,
                now.saturating_add(ttl),
                now,
            )
            .await?;
        if !applied {
            return Err(ApiError::conflict(
                "offer_changed",
                "the node's offer changed while its evidence was checked; ask for a new nonce",
            ));
        }
        Ok((listed, env))
    }

    /// Collateral for a quote sent without it: the FMSPC cache, filled from PCCS.
    async fn cached_collateral(&self, quote_b64: &str) -> Result<serde_json::Value, String> {
        let quote = base64::engine::general_purpose::STANDARD
            .decode(quote_b64)
            .map_err(|_| "quote is not base64".to_string())?;
        let platform = platform_of(&quote).map_err(|e| e.to_string())?;
        let now = hallmark_core::time::now_unix().max(0) as u64;
        let c = self
            .cache
            .lock()
            .await
            .get_or_fetch(&platform, now, self.pccs.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        serde_json::to_value(&c).map_err(|e| e.to_string())
    }

    /// Runs the external verifier on one submission, hashing its executable first.
    async fn run_external(
        &self,
        cmd: &[String],
        who: &PublicKey,
        sub: &EvidenceSubmission,
        builtin: &InstanceResult,
    ) -> ExternalVerifierRun {
        let mut run = ExternalVerifierRun {
            command: cmd.to_vec(),
            sha256: String::new(),
            allowlisted: false,
            accepted: false,
            detail: String::new(),
        };
        let exe = &cmd[0];
        match tokio::fs::read(exe).await {
            Ok(bytes) => run.sha256 = sha256(&bytes).to_hex(),
            Err(e) => {
                run.detail = format!("cannot read {exe}: {e}");
                return run;
            }
        }
        run.allowlisted = self
            .cfg
            .verifier_allowlist
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&run.sha256));
        let input = serde_json::json!({
            "node_id": sub.node_id,
            "provider": who,
            "nonce": sub.nonce,
            "evidence": sub.evidence,
            "builtin_result": builtin,
        });
        let timeout = Duration::from_secs(self.cfg.verifier_timeout_secs);
        match run_command(cmd, input.to_string().into_bytes(), timeout).await {
            Ok((status, out)) => {
                run.accepted = status == Some(0);
                run.detail = out
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .chars()
                    .take(500)
                    .collect();
                if !run.accepted {
                    run.detail = format!("exit {status:?}: {}", run.detail);
                }
            }
            Err(e) => run.detail = e,
        }
        run
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
async fn run_command(
    cmd: &[String],
    input: Vec<u8>,
    timeout: Duration,
) -> Result<(Option<i32>, String), String> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cmd[0]))?;
    let stdin = child.stdin.take();
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // A verifier that exits without reading its input is not an error here.
            let _ = stdin.write_all(&input).await;
        }
    };
    // Input and output flow together (neither side can fill a pipe and stall the other), and
    // the deadline covers both; on timeout the child is dropped, which kills it.
    let run = async { tokio::join!(feed, child.wait_with_output()).1 };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Err(format!("timed out after {} s", timeout.as_secs())),
        Ok(Err(e)) => Err(format!("waiting for {}: {e}", cmd[0])),
        Ok(Ok(out)) => Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )),
    }
}

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
) -> Result<Json<Envelope>, ApiError> {
    let (listed, env) = c.evidence(&who, sub).await?;
    if listed {
        return Ok(Json(env));
    }
    let event = Signed::<EvidenceEvent>::from_envelope(env.clone())
        .verify()
        .map_err(ApiError::internal)?
        .payload;
    let mut errors = event.result.errors.clone();
    if let Some(x) = &event.external_verifier {
        if !x.accepted {
            errors.push(format!("external_verifier: {}", x.detail));
        } else if !x.allowlisted {
            errors.push(format!(
                "external_verifier: sha256 {} is not on the allowlist, so this is not production evidence",
                x.sha256
            ));
        }
    }
    Err(ApiError::unprocessable(
        "evidence_rejected",
        format!(
            "node {} is not listed: {}",
            event.node_id,
            errors.join("; ")
        ),
    )
    .with_details(serde_json::json!({ "errors": errors, "event": env })))
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
