//! The attestation-chain proxy and a simulated upstream.
//!
//! The proxy sits in front of upstream TEE instances. For `GET /v1/attestation/chain` it lists
//! the instances serving a model (each with its e2e public key), fetches each one's evidence
//! for the caller's nonce, and either verifies the whole chain and signs a receipt (`proxy`
//! mode) or hands the evidence through with its own attestation and the binding proof
//! (`passthrough`). Its own attestation binds the receipt key and the nonce into its quote's
//! report_data by the dstack convention.
//!
//! Every receipt the proxy signs, accepted or not, is appended to its transparency log (when
//! it has one, see [`ProxyState::with_log`]) and the response names the leaf index.
//!
//! The simulated upstream serves instances minted by a test root of trust, honest or with a
//! chosen defect, so devnet and tests exercise the real verifiers end to end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use hallmark_tee::binding::dstack_report_data;
use hallmark_tee::chain::{
    validate_nonce, verify_instance, ChainContext, InstanceEvidence, InstanceInfo, InstanceResult,
};
use hallmark_tee::nvidia::Jwks;
use hallmark_tee::receipt::{ReceiptPayload, ReceiptSigner, SigningAlgo};
use hallmark_tee::simulate::SimulatedInstance;
use hallmark_tee::testroot::{TdQuoteSpec, TestRootOfTrust};
use hallmark_tee::{Profile, ProfileTrust, TdxPolicy, TrustRoots};
use serde::{Deserialize, Serialize};

use hallmark_node::api::{self, ApiError};

fn now_secs() -> u64 {
    u64::try_from(hallmark_core::time::now_unix()).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Simulated upstream
// ---------------------------------------------------------------------------------------------

/// State of `hallmark attest-upstream --simulated`.
pub struct SimulatedUpstream {
    pub root: TestRootOfTrust,
    pub instances: Vec<SimulatedInstance>,
}

/// `GET /v1/instances?model=` and `GET /v1/instances/{id}/evidence?nonce=`.
pub fn simulated_upstream_router(state: Arc<SimulatedUpstream>) -> Router {
    let router = Router::new()
        .route("/v1/health", get(api::health))
        .route("/v1/instances", get(list_instances))
        .route("/v1/instances/{id}/evidence", get(instance_evidence))
        .layer(axum::middleware::from_fn(api::wire_errors))
        .with_state(state);
    let mut spec = hallmark_node::openapi::ApiSpec::new("attest-upstream");
    spec.get("/v1/health", "Liveness")
        .content(200, "application/json", "`{\"status\":\"ok\"}`");
    spec.get("/v1/instances", "The upstream's instances")
        .query::<InstancesQuery>()
        .ok::<InstanceList>();
    spec.get(
        "/v1/instances/{id}/evidence",
        "An instance's attestation evidence for a nonce",
    )
    .query::<EvidenceQuery>()
    .ok::<InstanceEvidence>()
    .errors(&[(400, "Bad nonce"), (404, "No such instance")]);
    hallmark_node::openapi::attach(router, spec)
}

/// `GET /v1/instances`'s query, for the API description.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct InstancesQuery {
    /// Only instances serving this model.
    model: Option<String>,
}

/// `GET /v1/instances/{id}/evidence`'s query, for the API description.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct EvidenceQuery {
    /// The caller's nonce, 64 hex characters.
    nonce: String,
}

/// `GET /v1/attestation/chain`'s query (vllm-proxy's names), for the API description.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct ChainQuery {
    /// The model whose serving instances are attested.
    model: String,
    /// The caller's nonce, 64 hex characters, bound into every quote.
    nonce: String,
    /// `ecdsa` (default) or `ed25519`.
    signing_algo: Option<String>,
    /// `proxy` (default: the proxy verifies each instance) or `passthrough`.
    verify_mode: Option<String>,
}

/// The instance list an upstream returns.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceList {
    pub instances: Vec<InstanceInfo>,
}

async fn list_instances(
    State(s): State<Arc<SimulatedUpstream>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<InstanceList> {
    let model = q.get("model").filter(|m| !m.is_empty());
    Json(InstanceList {
        instances: s
            .instances
            .iter()
            .filter(|i| model.is_none_or(|m| &i.info.model == m))
            .map(|i| i.info.clone())
            .collect(),
    })
}

async fn instance_evidence(
    State(s): State<Arc<SimulatedUpstream>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<InstanceEvidence>, ApiError> {
    let nonce = q.get("nonce").map(String::as_str).unwrap_or("");
    validate_nonce(nonce).map_err(|m| ApiError::bad_request("invalid_nonce", m))?;
    let inst = s
        .instances
        .iter()
        .find(|i| i.info.instance_id == id)
        .ok_or_else(|| ApiError::not_found(format!("no instance {id:?}")))?;
    let root = &s.root;
    let ev = inst
        .evidence(root, nonce, now_secs())
        .map_err(ApiError::internal)?;
    Ok(Json(ev))
}

// ---------------------------------------------------------------------------------------------
// Proxy
// ---------------------------------------------------------------------------------------------

/// Where the proxy's own quote comes from.
pub enum ProxyQuoteSource {
    /// Linux configfs-tsm (`/sys/kernel/config/tsm/report`): a real TDX guest.
    ConfigFsTsm(std::path::PathBuf),
    /// The devnet test root of trust (devnet profile only), with collateral it mints.
    Simulated(Box<TestRootOfTrust>),
}

impl ProxyQuoteSource {
    /// A quote with `report_data`, and collateral when the source can supply it.
    fn quote(&self, report_data: [u8; 64]) -> Result<(Vec<u8>, Option<serde_json::Value>), String> {
        match self {
            Self::Simulated(root) => {
                let q = root
                    .td_quote(&TdQuoteSpec::new(report_data))
                    .map_err(|e| e.to_string())?;
                let c = root
                    .collateral(now_secs().saturating_sub(3600), 30 * 24 * 3600)
                    .map_err(|e| e.to_string())?;
                Ok((q, Some(c)))
            }
            Self::ConfigFsTsm(base) => configfs_tsm_quote(base, &report_data).map(|q| (q, None)),
        }
    }
}

/// Asks the TDX module for a quote through configfs-tsm: a fresh report entry, inblob written,
/// outblob read. Errors name the step, so an operator sees why a non-TDX host cannot attest.
fn configfs_tsm_quote(base: &std::path::Path, report_data: &[u8; 64]) -> Result<Vec<u8>, String> {
    let dir = base.join(format!(
        "hallmark-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir(&dir).map_err(|e| format!("configfs-tsm at {}: {e}", base.display()))?;
    let res = (|| {
        std::fs::write(dir.join("inblob"), report_data).map_err(|e| format!("inblob: {e}"))?;
        std::fs::read(dir.join("outblob")).map_err(|e| format!("outblob: {e}"))
    })();
    let _ = std::fs::remove_dir(&dir);
    res
}

/// What `hallmark attest-proxy` is configured with.
pub struct ProxyState {
    pub upstream: String,
    pub profile: Profile,
    pub roots: TrustRoots,
    pub policy: TdxPolicy,
    pub jwks: Jwks,
    pub signer: ReceiptSigner,
    pub quote_source: ProxyQuoteSource,
    pub http: reqwest::Client,
    /// Where receipts are logged: the log, its origin and the checkpoint key.
    pub log: Option<ProxyLog>,
}

/// The proxy's transparency log of receipts.
#[derive(Clone)]
pub struct ProxyLog {
    pub log: hallmark_store::TransparencyLog,
    pub origin: String,
    pub key: hallmark_core::Keypair,
}

impl ProxyState {
    /// A proxy for `upstream` under `profile`: production trusts Intel's root and the JWKS
    /// given; devnet adds the test root, the test NVIDIA key and a simulated own quote.
    pub fn new(
        upstream: &str,
        profile: Profile,
        policy: TdxPolicy,
        jwks: Jwks,
        signer: ReceiptSigner,
        timeout: Duration,
    ) -> Result<Self, String> {
        let trust = ProfileTrust::new(profile, jwks).map_err(|e| e.to_string())?;
        let quote_source = match trust.test_root {
            None => ProxyQuoteSource::ConfigFsTsm("/sys/kernel/config/tsm/report".into()),
            Some(root) => ProxyQuoteSource::Simulated(Box::new(root)),
        };
        let (roots, jwks) = (trust.roots, trust.jwks);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            upstream: upstream.trim_end_matches('/').to_string(),
            profile,
            roots,
            policy,
            jwks,
            signer,
            quote_source,
            http,
            log: None,
        })
    }

    /// Logs every receipt into `log`, checkpointed under `key` (the proxy's node key).
    pub fn with_log(
        mut self,
        log: hallmark_store::TransparencyLog,
        key: hallmark_core::Keypair,
    ) -> Self {
        let origin = format!("hallmark/attest-proxy/{}", key.public().to_ss58());
        self.log = Some(ProxyLog { log, origin, key });
        self
    }
}

/// `GET /v1/attestation/chain`, and `/v1/log/…` when receipts are logged.
pub fn proxy_router(state: Arc<ProxyState>) -> Router {
    let log = state.log.clone();
    let router = Router::new()
        .route("/v1/health", get(api::health))
        .route("/v1/attestation/chain", get(attestation_chain))
        .with_state(state);
    let mut spec = hallmark_node::openapi::ApiSpec::new("attest-proxy");
    spec.get("/v1/health", "Liveness")
        .content(200, "application/json", "`{\"status\":\"ok\"}`");
    spec.get("/v1/attestation/chain", "The attestation chain: the proxy's quote and each instance's evidence, wire-compatible with vllm-proxy")
        .query::<ChainQuery>()
        .content(200, "application/json", "The chain")
        .errors(&[(400, "Missing model, bad nonce, algorithm or mode"), (502, "An upstream failed"), (503, "The proxy cannot attest itself")]);
    let router = match log {
        Some(l) => {
            hallmark_node::log_routes::describe(&mut spec);
            router.merge(hallmark_node::log_routes::router(l.log, l.origin, l.key))
        }
        None => router,
    };
    hallmark_node::openapi::attach(
        router.layer(axum::middleware::from_fn(api::wire_errors)),
        spec,
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VerifyMode {
    Proxy,
    Passthrough,
}

async fn fetch_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    query: &[(&str, &str)],
) -> Result<T, String> {
    let resp = http
        .get(url)
        .query(query)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(format!(
            "{url}: HTTP {status}: {}",
            body.chars().take(300).collect::<String>()
        ));
    }
    resp.json::<T>().await.map_err(|e| format!("{url}: {e}"))
}

async fn attestation_chain(
    State(s): State<Arc<ProxyState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let model = q.get("model").map(String::as_str).unwrap_or("");
    if model.is_empty() {
        return Err(ApiError::bad_request("missing_model", "model is required"));
    }
    let nonce = q.get("nonce").map(String::as_str).unwrap_or("");
    validate_nonce(nonce).map_err(|m| ApiError::bad_request("invalid_nonce", m))?;
    let algo: SigningAlgo = q
        .get("signing_algo")
        .map(String::as_str)
        .unwrap_or("ecdsa")
        .parse()
        .map_err(|m: String| ApiError::bad_request("invalid_signing_algo", m))?;
    let mode = match q.get("verify_mode").map(String::as_str).unwrap_or("proxy") {
        "proxy" => VerifyMode::Proxy,
        "passthrough" => VerifyMode::Passthrough,
        other => {
            return Err(ApiError::bad_request(
                "invalid_verify_mode",
                format!("verify_mode {other:?} is not proxy or passthrough"),
            ))
        }
    };

    // The proxy's own attestation: its receipt key and the nonce, bound into its quote.
    let signing_address = s.signer.signing_address(algo);
    let report_data = dstack_report_data(&signing_address, nonce)
        .ok_or_else(|| ApiError::internal("signing address does not fit report_data"))?;
    let (quote, collateral) = s.quote_source.quote(report_data).map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "proxy_attestation_unavailable",
            format!("the proxy cannot attest itself: {e}"),
        )
    })?;
    let proxy_attestation = serde_json::json!({
        "quote": base64::engine::general_purpose::STANDARD.encode(&quote),
        "collateral": collateral,
        "profile": s.profile.to_string(),
        "binding": {
            "convention": "dstack",
            "signing_algo": algo,
            "signing_address": signing_address,
            "signing_public_key": s.signer.public_key_hex(algo),
            "nonce": nonce,
            "report_data": hex::encode(report_data),
        },
    });

    // The upstream: instances for the model, then each one's evidence for the nonce.
    let list: InstanceList = fetch_json(
        &s.http,
        &format!("{}/v1/instances", s.upstream),
        &[("model", model)],
    )
    .await
    .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "upstream_unavailable", e))?;
    if list.instances.is_empty() {
        return Err(ApiError::not_found(format!(
            "the upstream lists no instances for model {model:?}"
        ))
        .with_details(serde_json::json!({"model": model})));
    }
    let fetches = list.instances.iter().map(|i| {
        let url = format!("{}/v1/instances/{}/evidence", s.upstream, i.instance_id);
        let http = s.http.clone();
        async move { fetch_json::<InstanceEvidence>(&http, &url, &[("nonce", nonce)]).await }
    });
    let evidence = futures::future::join_all(fetches).await;
    let pairs: Vec<(InstanceInfo, Result<InstanceEvidence, String>)> =
        list.instances.into_iter().zip(evidence).collect();
    let upstream_attestation = serde_json::json!({
        "model": model,
        "nonce": nonce,
        "instances": pairs
            .iter()
            .map(|(i, e)| serde_json::json!({"info": i, "evidence": e.as_ref().ok()}))
            .collect::<Vec<_>>(),
    });
    let upstream_sha256 = hallmark_core::canonical::to_canonical_bytes(&upstream_attestation)
        .map(|b| hallmark_core::sha256(&b).to_hex())
        .map_err(ApiError::internal)?;

    if mode == VerifyMode::Passthrough {
        let binding = proxy_attestation["binding"].clone();
        return Ok(Json(serde_json::json!({
            "verify_mode": "passthrough",
            "nonce": nonce,
            "model": model,
            "proxy": {"attestation": proxy_attestation},
            "upstream": {
                "attestation": upstream_attestation,
                "attestation_sha256": upstream_sha256,
            },
            "binding_proof": binding,
            "fetch_errors": pairs.iter().filter_map(|(_, e)| e.as_ref().err()).collect::<Vec<_>>(),
            // Deprecated flat names, kept for one release (see the proxy's wire format).
            "proxy_attestation": proxy_attestation,
            "upstream_attestation": upstream_attestation,
            "upstream_attestation_sha256": upstream_sha256,
            "binding": binding,
        })));
    }

    let now = now_secs();
    let ctx = ChainContext {
        now,
        roots: &s.roots,
        policy: &s.policy,
        jwks: &s.jwks,
    };
    let results = pairs
        .iter()
        .map(|(info, ev)| match ev {
            Ok(ev) => verify_instance(info, ev, nonce, &ctx),
            Err(e) => {
                InstanceResult::unverified(&info.instance_id, Some(format!("evidence_fetch: {e}")))
            }
        })
        .collect::<Vec<_>>();
    let payload = ReceiptPayload::new(
        nonce,
        model,
        upstream_sha256,
        &s.signer,
        algo,
        results,
        now,
        &s.profile.to_string(),
    );
    let receipt = s.signer.sign(payload).map_err(ApiError::internal)?;
    let receipt_log_index = match &s.log {
        None => None,
        Some(l) => {
            let bytes = hallmark_core::canonical::to_canonical_bytes(&receipt)
                .map_err(ApiError::internal)?;
            Some(l.log.append("attestation_receipt", &bytes).await?.0)
        }
    };
    if receipt.payload.result != "verified" {
        let failed = receipt
            .payload
            .instance_results
            .iter()
            .filter(|r| !r.verified())
            .count();
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "chutes_verification_failed",
            format!(
                "{failed} of {} upstream instance(s) failed verification",
                receipt.payload.total_instances
            ),
        )
        .with_details(serde_json::json!({
            "instance_results": receipt.payload.instance_results,
            "verification_receipt": receipt,
            "receipt_log_index": receipt_log_index,
            "proxy": {"attestation": proxy_attestation},
            "proxy_attestation": proxy_attestation,
        })));
    }
    Ok(Json(serde_json::json!({
        "verify_mode": "proxy",
        "nonce": nonce,
        "model": model,
        "proxy": {"attestation": proxy_attestation},
        "verification_receipt": receipt,
        "receipt_log_index": receipt_log_index,
        // Deprecated flat name, kept for one release.
        "proxy_attestation": proxy_attestation,
    })))
}
