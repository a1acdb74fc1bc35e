//! The coordinator's build verification API (after Sourcify v2 and the Stellar registry
//! draft). Anyone hands in a wasm (and, optionally, its source archive); a wasm whose
//! `contractmetav0` meta holds a complete SEP-58 recipe is queued at once. The coordinator
//! opens a build job for it: a builder rebuilds, every validator rebuilds first-hand and votes,
//! and a certificate of 2/3 of stake decides. The coordinator never decides an outcome: it
//! serves the certified claim, with its certificate and a trust level from the image.
//!
//! - `POST   /v1/verify` — `{wasm_base64, source_base64?}` → 202 `{verification_id, …}`
//!   (200 with the existing one for the same wasm and recipe). The recipe comes from the
//!   wasm's own meta, else from the ledger's build-info registry; a wasm with neither is kept
//!   (422 `no_recipe`) and queued as soon as a build manager records its recipe.
//! - `GET    /v1/verify/{id}` — one verification
//! - `DELETE /v1/verify/{id}` — (signed by an operator or the submitter) cancels it
//! - `GET    /v1/wasms/{sha256}` — 200 with every verification, 202 while all are open,
//!   404 if unknown
//! - `GET    /v1/builds?limit=N` — recent verifications, newest first
//! - `GET    /v1/blobs/{sha256}` — a stored wasm or source archive, byte for byte
//!
//! Lessons from Sourcify's tracker: every verification has a deadline (then `unverified`,
//! `build_timeout`); a job abandoned by its builder goes back to the queue when its lease
//! ends; state moves only by conditional updates in the database; a resubmission of the same
//! wasm and recipe returns the existing verification.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use hallmark_core::{Keypair, PublicKey, Signed, SpecError};
use hallmark_store::{BuildFinish, BuildVerificationRow, NewBuildVerification, Store};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::api::{parse_json, ApiError};
use crate::auth::{PostAuth, SIGNATURE_HEADER};
use crate::config::BuildsSection;
use crate::http_ledger::HttpLedger;
use crate::jobs::{JobBoard, JobRequest, JobStatus};

/// The build lane's wire name (the lane itself is bound in the registry).
pub const BUILD_LANE: &str = "build";
/// The build lane's search jobs (one candidate recipe each).
pub const SEARCH_LANE: &str = "build-search";

/// Why a wasm handed in for verification cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WasmInputError {
    /// `not_wasm` or `malformed_meta`.
    pub code: &'static str,
    pub message: String,
}

/// What the verification API needs of the build lane, bound by the registry (which is the
/// node's one module naming lane crates).
pub trait BuildSupport: Send + Sync {
    /// The complete recipe a wasm's own meta carries (`None` without one).
    fn meta_recipe(&self, wasm: &[u8]) -> Result<Option<Value>, WasmInputError>;
    /// Checks a recipe; gives back its normal form.
    fn check_recipe(&self, recipe: &Value) -> Result<Value, SpecError>;
    /// The key two equal recipes share.
    fn recipe_key(&self, recipe: &Value) -> String;
    /// `trusted`, `auditable` or `arbitrary` for a recipe whose source is (or is not) public.
    fn image_trust(&self, recipe: &Value, public_source: bool) -> &'static str;
}

/// `POST /v1/verify`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The wasm, standard base64.
    pub wasm_base64: String,
    /// The source archive its recipe names, standard base64 (else it must already be stored).
    #[serde(default)]
    pub source_base64: Option<String>,
}

/// An error shown with a verification: its code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerificationError {
    pub code: String,
    pub message: String,
}

/// A verification as the API serves it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerificationView {
    pub verification_id: String,
    pub wasm_sha256: String,
    /// `queued`, `building`, `verified`, `mismatched` or `unverified`.
    pub status: String,
    /// Whether the build job's certificate is in.
    pub job_completed: bool,
    pub job_id: Option<String>,
    /// `exact` or `code` (verified only).
    #[serde(rename = "match")]
    pub match_kind: Option<String>,
    pub rebuilt_sha256: Option<String>,
    pub recipe: Value,
    pub recipe_source: String,
    pub image_trust: String,
    /// The vote certificate that decided it.
    pub certificate: Option<Value>,
    /// How many validators signed that certificate.
    pub certificate_votes: usize,
    pub error: Option<VerificationError>,
    /// How the outcome came about, in a line.
    pub detail: Option<String>,
    /// The end of the certified builder's log.
    pub log: Option<String>,
    pub attempts: u64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// `GET /v1/wasms/{sha256}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WasmView {
    pub wasm_sha256: String,
    pub verifications: Vec<VerificationView>,
}

/// The coordinator's build verification service.
pub struct BuildService {
    store: Store,
    key: Keypair,
    board: Arc<JobBoard>,
    support: Arc<dyn BuildSupport>,
    ledger: HttpLedger,
    cfg: BuildsSection,
    operators: Vec<PublicKey>,
    auth: PostAuth,
}

/// Where the service notes the last registry entry it has seen.
const REGISTRY_SEQ_KEY: &str = "builds.registry_seq";

fn now_ms() -> i64 {
    hallmark_core::time::now_unix_ms()
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A wasm or blob named in a path: 64 lowercase hex digits (core's digest parser), or 400.
fn check_sha256(sha: &str, what: &str) -> Result<(), ApiError> {
    sha.parse::<hallmark_core::Sha256Digest>()
        .map(|_| ())
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_sha256",
                format!("a {what} is named by 64 lowercase hex digits"),
            )
        })
}

fn decode_b64(field: &str, text: &str, max: usize) -> Result<Vec<u8>, ApiError> {
    // Base64 is 4/3 of the bytes: refuse before decoding what could not fit.
    if text.len() / 4 * 3 > max.saturating_add(3) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "oversized",
            format!("{field} is larger than {max} bytes"),
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| ApiError::bad_request("invalid_base64", format!("{field}: {e}")))?;
    if bytes.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "oversized",
            format!("{field} is {} bytes; the cap is {max}", bytes.len()),
        ));
    }
    Ok(bytes)
}

impl BuildService {
    /// A service opening build jobs on `board`, signed with `key`, reading the build-info
    /// registry from `ledger`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        key: Keypair,
        board: Arc<JobBoard>,
        support: Arc<dyn BuildSupport>,
        ledger: HttpLedger,
        cfg: BuildsSection,
        operators: Vec<PublicKey>,
        skew_window_secs: i64,
    ) -> Self {
        Self {
            store: store.clone(),
            key,
            board,
            support,
            ledger,
            cfg,
            operators,
            auth: PostAuth::new(skew_window_secs, store.clone()),
        }
    }

    /// Takes a wasm for verification; gives back the verification and whether it is new.
    pub async fn submit(
        &self,
        req: VerifyRequest,
        submitter: Option<PublicKey>,
    ) -> Result<(VerificationView, bool), ApiError> {
        let wasm = decode_b64("wasm_base64", &req.wasm_base64, self.cfg.max_wasm_bytes)?;
        let source = req
            .source_base64
            .as_deref()
            .map(|s| decode_b64("source_base64", s, self.cfg.max_source_bytes))
            .transpose()?;
        let recipe = match self.support.meta_recipe(&wasm) {
            Ok(Some(r)) => (r, "onchain_meta"),
            Ok(None) => {
                let sha = hallmark_core::sha256(&wasm).to_hex();
                match self.ledger.build_info(&sha).await {
                    Ok(Some(info)) => (info.recipe, "registry"),
                    Ok(None) if source.is_some() && !self.cfg.search_images.is_empty() => {
                        let src = source.as_deref().unwrap_or_default();
                        return self.open_search(&wasm, src, submitter).await;
                    }
                    Ok(None) => {
                        // Kept, so a build manager's registry entry queues it ("seen").
                        self.keep_blob(&sha, "wasm", &wasm).await?;
                        if let Some(src) = &source {
                            let src_sha = hallmark_core::sha256(src).to_hex();
                            self.keep_blob(&src_sha, "source", src).await?;
                        }
                        return Err(ApiError::unprocessable(
                            "no_recipe",
                            "the wasm's contractmetav0 meta holds no complete SEP-58 recipe (bldimg and source_sha256) and the build-info registry has none; the wasm is kept and is queued once a build manager records its recipe",
                        ));
                    }
                    Err(e) => {
                        return Err(ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "ledger_unavailable",
                            format!("reading the build-info registry: {e}"),
                        ))
                    }
                }
            }
            Err(e) => return Err(ApiError::unprocessable(e.code, e.message)),
        };
        self.open(&wasm, source.as_deref(), recipe.0, recipe.1, submitter)
            .await
    }

    /// Opens a search for a wasm with a source but no recipe: every configured image × option
    /// set (bounded) is a candidate, tried by builders in parallel; the first that reproduces
    /// is confirmed by a build job.
    async fn open_search(
        &self,
        wasm: &[u8],
        source: &[u8],
        submitter: Option<PublicKey>,
    ) -> Result<(VerificationView, bool), ApiError> {
        let source_sha = hallmark_core::sha256(source).to_hex();
        let mut candidates = Vec::new();
        for image in &self.cfg.search_images {
            for opts in &self.cfg.search_opts {
                let recipe = serde_json::json!({
                    "image": image,
                    "opts": opts,
                    "source_sha256": source_sha,
                });
                let checked = self.support.check_recipe(&recipe).map_err(|e| {
                    ApiError::internal(format!("a configured search candidate: {e}"))
                })?;
                candidates.push(checked);
            }
        }
        candidates.truncate(self.cfg.max_candidates.max(1));
        let wasm_sha = hallmark_core::sha256(wasm).to_hex();
        let search = serde_json::json!({ "candidates": candidates });
        let bytes = serde_json::to_vec(&search).map_err(ApiError::internal)?;
        let key = format!("search:{}", hallmark_core::sha256(&bytes).to_hex());
        if let Some(row) = self.store.build_verification_of(&wasm_sha, &key).await? {
            return Ok((self.view(&row).await?, false));
        }
        self.check_capacity(wasm.len() + source.len()).await?;
        let now = now_ms();
        self.store.put_blob(&wasm_sha, "wasm", wasm, now).await?;
        self.store
            .put_blob(&source_sha, "source", source, now)
            .await?;
        self.insert(&wasm_sha, &key, &search, "search", submitter)
            .await
    }

    /// Refuses a new verification when too many are open or the blob store is full.
    async fn check_capacity(&self, incoming: usize) -> Result<(), ApiError> {
        let open = self.store.count_open_build_verifications().await?;
        if open >= self.cfg.max_open {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "queue_full",
                format!("{open} verifications are open; try again later"),
            ));
        }
        self.check_storage(incoming).await
    }

    /// Refuses `incoming` more bytes when the blob store would pass its cap.
    async fn check_storage(&self, incoming: usize) -> Result<(), ApiError> {
        let stored = self.store.blob_bytes_total().await?;
        if stored.saturating_add(incoming as u64) > self.cfg.max_blob_bytes_total {
            return Err(ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                "the coordinator's blob store is full",
            ));
        }
        Ok(())
    }

    /// Inserts a verification (or finds the one that won a race) and gives its view.
    async fn insert(
        &self,
        wasm_sha: &str,
        key: &str,
        recipe: &Value,
        recipe_source: &str,
        submitter: Option<PublicKey>,
    ) -> Result<(VerificationView, bool), ApiError> {
        let now = now_ms();
        let id = format!("ver-{}", random_hex(12));
        let recipe_text = serde_json::to_string(recipe).map_err(ApiError::internal)?;
        let timeout = i64::try_from(self.cfg.timeout_ms).unwrap_or(i64::MAX);
        let new = NewBuildVerification {
            id: &id,
            wasm_sha256: wasm_sha,
            recipe_key: key,
            recipe: &recipe_text,
            recipe_source,
            now_ms: now,
            deadline_ms: now.saturating_add(timeout),
        };
        let created = match self.store.insert_build_verification(&new).await {
            Ok(()) => true,
            // Two identical requests racing: the first one stands.
            Err(hallmark_store::StoreError::Conflict(_)) => false,
            Err(e) => return Err(e.into()),
        };
        if created {
            if let Some(who) = submitter {
                self.store
                    .kv_put(&format!("build_submitter.{id}"), &who.to_ss58())
                    .await?;
            }
            tracing::info!(verification = %id, wasm = %wasm_sha, recipe_source, "wasm queued for verification");
        }
        let row = self
            .store
            .build_verification_of(wasm_sha, key)
            .await?
            .ok_or_else(|| ApiError::internal("a stored verification vanished"))?;
        Ok((self.view(&row).await?, created))
    }

    /// Moves a search on: opens its candidate jobs, reads their claims, and once one
    /// reproduces the wasm (exact first, else code once every candidate is tried), makes it
    /// the recipe and opens the confirmation build job.
    async fn drive_search(&self, row: &BuildVerificationRow) -> Result<(), ApiError> {
        let kv = format!("build_search.{}", row.id);
        let search: Value = serde_json::from_str(&row.recipe).map_err(ApiError::internal)?;
        let candidates = search["candidates"].as_array().cloned().unwrap_or_default();
        let jobs: Vec<String> = match self.store.kv_get(&kv).await? {
            Some(t) => serde_json::from_str(&t).map_err(ApiError::internal)?,
            None => {
                let mut ids = Vec::new();
                for c in &candidates {
                    let request = JobRequest {
                        lane: SEARCH_LANE.into(),
                        spec: serde_json::json!({"wasm_sha256": row.wasm_sha256, "recipe": c}),
                        nonce: random_hex(16),
                        created_ms: now_ms(),
                    };
                    let signed = Signed::sign(&request, &self.key).map_err(ApiError::internal)?;
                    ids.push(self.board.submit(signed).await?.0.job_id);
                }
                let text = serde_json::to_string(&ids).map_err(ApiError::internal)?;
                self.store.kv_put(&kv, &text).await?;
                self.store
                    .set_build_status(&row.id, "queued", "building", now_ms())
                    .await?;
                tracing::info!(verification = %row.id, candidates = ids.len(), "search opened");
                ids
            }
        };
        let (mut tried, mut exact, mut code) = (0, None, None);
        for (i, job_id) in jobs.iter().enumerate() {
            let Some(job) = self.store.job(job_id).await? else {
                continue;
            };
            let claim: Option<Value> = match self.store.job_proof(job_id).await? {
                Some(b) => serde_json::from_slice(&b).ok(),
                None => None,
            };
            if claim.is_none() && job.status != JobStatus::Rejected.as_str() {
                continue;
            }
            tried += 1;
            let outcome = claim.as_ref().map(|c| &c["outcome"]);
            if outcome.is_some_and(|o| o["status"] == "verified") {
                let slot = if outcome.is_some_and(|o| o["match"] == "exact") {
                    &mut exact
                } else {
                    &mut code
                };
                slot.get_or_insert(i);
            }
        }
        let all_tried = tried == jobs.len();
        let found = exact.or(if all_tried { code } else { None });
        match found.and_then(|i| candidates.get(i).map(|c| (i, c))) {
            Some((i, recipe)) => {
                let text = serde_json::to_string(recipe).map_err(ApiError::internal)?;
                self.store
                    .set_build_recipe(&row.id, &text, now_ms())
                    .await?;
                let line = format!(
                    "search: candidate {} of {} reproduces the wasm; validators confirm it",
                    i + 1,
                    jobs.len()
                );
                self.store.set_build_detail(&row.id, &line).await?;
                let row = self.load(&row.id).await?;
                self.open_job(&row).await
            }
            None if all_tried => {
                let msg = format!(
                    "none of the {} candidate recipes reproduces the wasm",
                    jobs.len()
                );
                self.finish(
                    &row.id,
                    "unverified",
                    None,
                    &msg,
                    Some(("no_reproducing_recipe", &msg)),
                )
                .await
            }
            None => {
                let line = format!("search: {tried} of {} candidates tried", jobs.len());
                self.store.set_build_detail(&row.id, &line).await?;
                Ok(())
            }
        }
    }

    /// Stores a blob within the store's cap.
    async fn keep_blob(&self, sha: &str, kind: &str, bytes: &[u8]) -> Result<(), ApiError> {
        self.check_storage(bytes.len()).await?;
        self.store.put_blob(sha, kind, bytes, now_ms()).await?;
        Ok(())
    }

    /// Opens verifications for registry entries written since the last look, for every wasm
    /// the coordinator has been handed (trigger B: picked up exactly like native meta).
    async fn follow_registry(&self) -> Result<(), ApiError> {
        let since: u64 = self
            .store
            .kv_get(REGISTRY_SEQ_KEY)
            .await?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let entries = match self.ledger.build_infos_since(since).await {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "build-info registry unreachable");
                return Ok(());
            }
        };
        for info in &entries {
            if let Some(wasm) = self.store.blob(&info.wasm_sha256).await? {
                match self
                    .open(&wasm, None, info.recipe.clone(), "registry", None)
                    .await
                {
                    Ok((v, true)) => {
                        tracing::info!(verification = %v.verification_id, wasm = %info.wasm_sha256, "registry entry queued a wasm")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(wasm = %info.wasm_sha256, error = %e.error.message, "registry entry not usable")
                    }
                }
            }
            self.store
                .kv_put(REGISTRY_SEQ_KEY, &info.seq.to_string())
                .await?;
        }
        Ok(())
    }

    /// Stores the inputs and opens (or finds) the verification of `wasm` with `recipe`.
    async fn open(
        &self,
        wasm: &[u8],
        source: Option<&[u8]>,
        recipe: Value,
        recipe_source: &str,
        submitter: Option<PublicKey>,
    ) -> Result<(VerificationView, bool), ApiError> {
        let recipe = self
            .support
            .check_recipe(&recipe)
            .map_err(|e| ApiError::unprocessable("invalid_recipe", e.to_string()))?;
        let wasm_sha = hallmark_core::sha256(wasm).to_hex();
        let key = self.support.recipe_key(&recipe);
        if let Some(row) = self.store.build_verification_of(&wasm_sha, &key).await? {
            return Ok((self.view(&row).await?, false));
        }
        if let Some(src) = source {
            let want = recipe
                .get("source_sha256")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let got = hallmark_core::sha256(src).to_hex();
            if got != want {
                return Err(ApiError::unprocessable(
                    "source_mismatch",
                    format!("the source archive hashes to {got}; the recipe names {want}"),
                ));
            }
        }
        self.check_capacity(wasm.len() + source.map_or(0, <[u8]>::len))
            .await?;
        let now = now_ms();
        self.store.put_blob(&wasm_sha, "wasm", wasm, now).await?;
        if let Some(src) = source {
            let sha = hallmark_core::sha256(src).to_hex();
            self.store.put_blob(&sha, "source", src, now).await?;
        }
        self.insert(&wasm_sha, &key, &recipe, recipe_source, submitter)
            .await
    }

    /// The public view of a stored verification, with the certified builder's log.
    pub async fn view(&self, row: &BuildVerificationRow) -> Result<VerificationView, ApiError> {
        self.view_with(row, true).await
    }

    /// The public view; `with_log` reads the certified claim for its log (one verification
    /// at a time, not in lists).
    async fn view_with(
        &self,
        row: &BuildVerificationRow,
        with_log: bool,
    ) -> Result<VerificationView, ApiError> {
        let recipe: Value = serde_json::from_str(&row.recipe)
            .map_err(|e| ApiError::internal(format!("stored recipe of {}: {e}", row.id)))?;
        let outcome: Option<Value> = row
            .outcome
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok());
        let field = |k: &str| {
            outcome
                .as_ref()
                .and_then(|o| o.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let source_public = recipe.get("source_uri").is_some_and(|u| !u.is_null())
            || match recipe.get("source_sha256").and_then(Value::as_str) {
                Some(s) => self.store.has_blob(s).await?,
                None => false,
            };
        let (mut certificate, mut votes, mut completed, mut log) = (None, 0, false, None);
        if let Some(job_id) = &row.job_id {
            if let Some(job) = self.store.job(job_id).await? {
                if let Some(cert) = job.certificate.as_deref() {
                    let cert: Value = serde_json::from_str(cert).map_err(ApiError::internal)?;
                    votes = cert
                        .get("votes")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    certificate = Some(cert);
                    completed = true;
                }
                if completed && with_log {
                    log = self
                        .store
                        .job_proof(job_id)
                        .await?
                        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                        .and_then(|c| c.get("log").and_then(Value::as_str).map(str::to_string));
                }
            }
        }
        let error = row.error_code.as_ref().map(|code| VerificationError {
            code: code.clone(),
            message: row.error_message.clone().unwrap_or_default(),
        });
        Ok(VerificationView {
            verification_id: row.id.clone(),
            wasm_sha256: row.wasm_sha256.clone(),
            status: row.status.clone(),
            job_completed: completed,
            job_id: row.job_id.clone(),
            match_kind: field("match"),
            rebuilt_sha256: field("rebuilt_sha256"),
            image_trust: self.support.image_trust(&recipe, source_public).to_string(),
            recipe,
            recipe_source: row.recipe_source.clone(),
            certificate,
            certificate_votes: votes,
            error,
            detail: row.detail.clone(),
            log,
            attempts: row.attempts,
            created_ms: row.created_ms,
            updated_ms: row.updated_ms,
        })
    }

    async fn load(&self, id: &str) -> Result<BuildVerificationRow, ApiError> {
        self.store
            .build_verification(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no verification {id:?}")))
    }

    /// Cancels an open verification on behalf of `who` (an operator or its submitter).
    pub async fn cancel(&self, id: &str, who: PublicKey) -> Result<VerificationView, ApiError> {
        let row = self.load(id).await?;
        let submitter = self.store.kv_get(&format!("build_submitter.{id}")).await?;
        let allowed = self.operators.contains(&who) || submitter.as_deref() == Some(&who.to_ss58());
        if !allowed {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_allowed",
                "only an operator or the key that submitted it may cancel a verification",
            ));
        }
        let done = self
            .store
            .finish_build_verification(
                id,
                &BuildFinish {
                    status: "unverified",
                    outcome: None,
                    detail: Some(&format!("cancelled by {who}")),
                    error_code: Some("cancelled"),
                    error_message: Some("the verification was cancelled"),
                    now_ms: now_ms(),
                },
            )
            .await?;
        if !done {
            return Err(ApiError::conflict(
                "already_finished",
                format!("{id} is {} already", row.status),
            ));
        }
        tracing::info!(verification = %id, %who, "verification cancelled");
        self.view(&self.load(id).await?).await
    }

    /// Opens a build job for a verification (the coordinator signs the request).
    async fn open_job(&self, row: &BuildVerificationRow) -> Result<(), ApiError> {
        let recipe: Value = serde_json::from_str(&row.recipe).map_err(ApiError::internal)?;
        let request = JobRequest {
            lane: BUILD_LANE.into(),
            spec: serde_json::json!({
                "wasm_sha256": row.wasm_sha256,
                "recipe": recipe,
                "recipe_source": row.recipe_source,
            }),
            nonce: random_hex(16),
            created_ms: now_ms(),
        };
        let signed = Signed::sign(&request, &self.key).map_err(ApiError::internal)?;
        let (job, _) = self.board.submit(signed).await?;
        if self
            .store
            .set_build_job(&row.id, row.job_id.as_deref(), &job.job_id, now_ms())
            .await?
        {
            tracing::info!(verification = %row.id, job = %job.job_id, attempt = row.attempts + 1, "build job opened");
        }
        Ok(())
    }

    async fn finish(
        &self,
        id: &str,
        status: &str,
        outcome: Option<&str>,
        detail: &str,
        error: Option<(&str, &str)>,
    ) -> Result<(), ApiError> {
        let f = BuildFinish {
            status,
            outcome,
            detail: Some(detail),
            error_code: error.map(|e| e.0),
            error_message: error.map(|e| e.1),
            now_ms: now_ms(),
        };
        if self.store.finish_build_verification(id, &f).await? {
            tracing::info!(verification = %id, status, detail, "verification decided");
        }
        Ok(())
    }

    /// Moves one open verification on: opens its job, follows it, reads the certified claim.
    async fn drive(&self, row: &BuildVerificationRow) -> Result<(), ApiError> {
        let now = now_ms();
        if now > row.deadline_ms {
            let secs = self.cfg.timeout_ms / 1000;
            let msg = format!("no certified outcome within {secs} s");
            return self
                .finish(
                    &row.id,
                    "unverified",
                    None,
                    &msg,
                    Some(("build_timeout", &msg)),
                )
                .await;
        }
        let Some(job_id) = &row.job_id else {
            if row.recipe_source == "search" {
                return self.drive_search(row).await;
            }
            return self.open_job(row).await;
        };
        let Some(job) = self.store.job(job_id).await? else {
            return Err(ApiError::internal(format!(
                "{} lost its job {job_id}",
                row.id
            )));
        };
        match JobStatus::parse(&job.status) {
            Some(JobStatus::Queued) | None => Ok(()),
            Some(JobStatus::Assigned | JobStatus::Proven) => {
                self.store
                    .set_build_status(&row.id, "queued", "building", now)
                    .await?;
                Ok(())
            }
            Some(JobStatus::Approved) => {
                let claim: Value = match self.store.job_proof(job_id).await? {
                    Some(b) => serde_json::from_slice(&b).map_err(ApiError::internal)?,
                    None => return Err(ApiError::internal(format!("{job_id} has no claim"))),
                };
                let outcome = claim.get("outcome").cloned().unwrap_or(Value::Null);
                let status = outcome
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("unverified")
                    .to_string();
                let detail = claim
                    .get("detail")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let reason = outcome.get("reason").and_then(Value::as_str);
                let text = serde_json::to_string(&outcome).map_err(ApiError::internal)?;
                self.finish(
                    &row.id,
                    &status,
                    Some(&text),
                    &detail,
                    reason.map(|r| (r, detail.as_str())),
                )
                .await
            }
            Some(JobStatus::Rejected) => {
                if row.attempts < self.cfg.max_attempts {
                    tracing::warn!(verification = %row.id, job = %job_id, "the validators rejected the builder's claim; opening another build job");
                    return self.open_job(row).await;
                }
                let msg = format!(
                    "the validators rejected the builders' claims {} times",
                    row.attempts
                );
                self.finish(
                    &row.id,
                    "unverified",
                    None,
                    &msg,
                    Some(("claim_rejected", &msg)),
                )
                .await
            }
        }
    }

    /// Drives every open verification once.
    pub async fn drive_open(&self) -> Result<(), ApiError> {
        self.follow_registry().await?;
        for row in self.store.open_build_verifications(200).await? {
            if let Err(e) = self.drive(&row).await {
                tracing::warn!(verification = %row.id, error = %e.error.message, "verification not moved on");
            }
        }
        Ok(())
    }

    /// The background loop.
    pub async fn run_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.cfg.poll_ms.max(50));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(poll) => {}
            }
            if let Err(e) = self.drive_open().await {
                tracing::warn!(error = %e.error.message, "driving verifications failed");
            }
        }
    }
}

/// The service's routes.
pub fn router(s: Arc<BuildService>) -> Router {
    let body_cap = s.cfg.max_source_bytes.saturating_add(s.cfg.max_wasm_bytes) / 3 * 4 + 4096;
    Router::new()
        .route(
            "/v1/verify",
            axum::routing::post(post_verify).layer(axum::extract::DefaultBodyLimit::max(body_cap)),
        )
        .route("/v1/verify/{id}", get(get_verify).delete(delete_verify))
        .route("/v1/wasms/{sha256}", get(get_wasm))
        .route("/v1/builds", get(list))
        .route("/v1/blobs/{sha256}", get(get_blob))
        .with_state(s)
}

/// Describes [`router`]'s routes for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    spec.post("/v1/verify", "Ask for a source-to-wasm verification")
        .describe("Signing (the `X-Hallmark-Signature` header) is optional; a signed request may be cancelled by its signer.")
        .body::<VerifyRequest>()
        .json::<VerificationView>(202, "Queued")
        .json::<VerificationView>(200, "Already known")
        .errors(&[(400, "Malformed request"), (401, "Bad signature"), (413, "Too large"), (429, "Queue full")]);
    spec.get("/v1/verify/{id}", "A verification")
        .ok::<VerificationView>()
        .errors(&[(404, "No such verification")]);
    spec.delete(
        "/v1/verify/{id}",
        "Cancel a verification (signed by its submitter)",
    )
    .ok::<VerificationView>()
    .errors(&[
        (401, "Bad signature"),
        (403, "Not the submitter"),
        (404, "No such verification"),
        (409, "Already finished"),
    ]);
    spec.get("/v1/wasms/{sha256}", "What is known of a wasm")
        .json::<WasmView>(200, "Every verification of the wasm")
        .json::<WasmView>(202, "Every verification of the wasm, all still running")
        .errors(&[(400, "Not a SHA-256"), (404, "Unknown wasm")]);
    spec.get("/v1/builds", "Recent verifications")
        .query::<ListQuery>()
        .ok::<Vec<VerificationView>>();
    spec.get("/v1/blobs/{sha256}", "A stored source archive or wasm")
        .content(200, "application/octet-stream", "The bytes")
        .errors(&[(400, "Not a SHA-256"), (404, "Unknown blob")]);
}

fn path_of(uri: &OriginalUri) -> String {
    uri.path().to_string()
}

async fn post_verify(
    State(s): State<Arc<BuildService>>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Signing is optional; a signed request must verify (its signer may cancel later).
    let submitter = if headers.contains_key(SIGNATURE_HEADER) {
        Some(s.auth.authenticate(&headers, &path_of(&uri), &body).await?)
    } else {
        None
    };
    let req: VerifyRequest = parse_json(&body)?;
    let (view, created) = s.submit(req, submitter).await?;
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

async fn get_verify(
    State(s): State<Arc<BuildService>>,
    Path(id): Path<String>,
) -> Result<Json<VerificationView>, ApiError> {
    let row = s.load(&id).await?;
    Ok(Json(s.view(&row).await?))
}

async fn delete_verify(
    State(s): State<Arc<BuildService>>,
    uri: OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<VerificationView>, ApiError> {
    let who = s
        .auth
        .authenticate_method(&headers, "DELETE", &path_of(&uri), b"")
        .await?;
    Ok(Json(s.cancel(&id, who).await?))
}

async fn get_wasm(
    State(s): State<Arc<BuildService>>,
    Path(sha): Path<String>,
) -> Result<Response, ApiError> {
    check_sha256(&sha, "wasm")?;
    let rows = s.store.build_verifications_of_wasm(&sha).await?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format!("no verification of {sha}")));
    }
    let mut verifications = Vec::with_capacity(rows.len());
    for r in rows.iter().take(100) {
        verifications.push(s.view_with(r, rows.len() <= 8).await?);
    }
    let all_open = rows
        .iter()
        .all(|r| hallmark_store::OPEN_BUILD_STATUSES.contains(&r.status.as_str()));
    let status = if all_open {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let body = WasmView {
        wasm_sha256: sha,
        verifications,
    };
    Ok((status, Json(body)).into_response())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct ListQuery {
    #[serde(default)]
    limit: Option<u32>,
}

async fn list(
    State(s): State<Arc<BuildService>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<VerificationView>>, ApiError> {
    let rows = s
        .store
        .build_verifications(q.limit.unwrap_or(50).clamp(1, 500))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(s.view_with(r, false).await?);
    }
    Ok(Json(out))
}

async fn get_blob(
    State(s): State<Arc<BuildService>>,
    Path(sha): Path<String>,
) -> Result<Response, ApiError> {
    check_sha256(&sha, "blob")?;
    let bytes = s
        .store
        .blob(&sha)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no blob {sha}")))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}
