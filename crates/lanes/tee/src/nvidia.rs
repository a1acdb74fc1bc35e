//! NVIDIA GPU attestation: EAT tokens from NRAS, checked against a pinned JWKS.
//!
//! NRAS answers `/v3/attest/gpu` with a *detached* EAT: `[["JWT", overall], {"GPU-0": jwt, …}]`.
//! The overall token carries the result and, per GPU, the SHA-256 of that GPU's token; each
//! GPU token carries its measurement result, secure-boot and debug state and hardware model.
//! Every token must be ES384-signed by a key in the pinned JWKS (found by `kid`; its x5c chain
//! checked when present), issued by NRAS, unexpired, and bound to our nonce.

use std::collections::BTreeMap;

use base64::Engine as _;
use hallmark_core::{Verdict, VerdictBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::TeeError;
use crate::tdx::LANE;

/// The issuer NRAS tokens carry.
pub const NRAS_ISSUER: &str = "https://nras.attestation.nvidia.com";

/// One key of a JWKS as NRAS publishes it (EC P-384 with an x5c chain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub crv: String,
    pub kid: String,
    #[serde(default)]
    pub x: String,
    #[serde(default)]
    pub y: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5c: Option<Vec<String>>,
}

/// A pinned key set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// Reads a JWKS document.
    pub fn parse(bytes: &[u8]) -> Result<Self, TeeError> {
        serde_json::from_slice(bytes).map_err(|e| TeeError::Jwks(e.to_string()))
    }

    fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// NVIDIA evidence as received: an NRAS body (detached EAT) or one compact JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EatEvidence {
    Detached {
        overall: String,
        /// GPU name (`GPU-0`, …) → that GPU's compact JWT.
        devices: BTreeMap<String, String>,
    },
    Single(String),
}

impl EatEvidence {
    /// Reads an NRAS response body (`[["JWT", overall], {…}]`) or a bare compact JWT.
    pub fn parse(bytes: &[u8]) -> Result<Self, TeeError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| TeeError::Eat("evidence is not UTF-8".into()))?
            .trim();
        if text.starts_with('[') {
            let body: serde_json::Value =
                serde_json::from_str(text).map_err(|e| TeeError::Eat(format!("NRAS body: {e}")))?;
            return Self::from_value(&body);
        }
        Self::single(text.trim_matches('"'))
    }

    /// Reads evidence already parsed as JSON: an NRAS body array or a JWT string.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, TeeError> {
        if let Some(jwt) = value.as_str() {
            return Self::single(jwt);
        }
        let body: (Vec<String>, BTreeMap<String, String>) = Deserialize::deserialize(value)
            .map_err(|e| TeeError::Eat(format!("NRAS body: {e}")))?;
        match body.0.as_slice() {
            [kind, overall] if kind == "JWT" => Ok(Self::Detached {
                overall: overall.clone(),
                devices: body.1,
            }),
            _ => Err(TeeError::Eat(
                "NRAS body must start with [\"JWT\", token]".into(),
            )),
        }
    }

    fn single(jwt: &str) -> Result<Self, TeeError> {
        if jwt.split('.').count() != 3 {
            return Err(TeeError::Eat(
                "neither an NRAS body nor a compact JWT".into(),
            ));
        }
        Ok(Self::Single(jwt.to_string()))
    }
}

/// One GPU model and how many of it a provider claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuCapacity {
    pub model: String,
    pub count: u32,
}

/// How many GPUs a capacity claim adds up to, over every model (saturating).
pub fn total_gpus(capacity: &[GpuCapacity]) -> u32 {
    capacity.iter().fold(0u32, |n, g| n.saturating_add(g.count))
}

/// The chip (`hwmodel`) NRAS reports for a marketed GPU model; unknown models must be given
/// as the chip name itself.
pub fn hwmodel_for(model: &str) -> String {
    let m = model.to_ascii_uppercase();
    let chip = match m.as_str() {
        "H100" | "H100-SXM" | "H100-PCIE" | "H800" | "H200" | "H20" | "GH200" => "GH100",
        "A100" | "A800" | "A30" => "GA100",
        "B200" | "B100" | "GB200" => "GB100",
        "L40S" | "L40" => "AD102",
        other => other,
    };
    chip.to_string()
}

/// What the verifier expects of the evidence.
#[derive(Debug, Clone)]
pub struct EatExpectations {
    /// The nonce we issued, hex (compared case-insensitively with `eat_nonce`).
    pub nonce_hex: String,
    /// The capacity the provider claimed (models and counts); `None` checks no models.
    pub capacity: Option<Vec<GpuCapacity>>,
    /// How many GPUs must be attested, whatever their model; `None` checks no count.
    pub gpu_count: Option<usize>,
}

/// Verification context: time and the pinned keys.
#[derive(Debug, Clone, Copy)]
pub struct EatContext<'a> {
    pub now: u64,
    pub jwks: &'a Jwks,
    /// Tolerated clock skew, seconds, on `nbf`/`iat` and `exp`.
    pub leeway_secs: u64,
}

/// What one GPU's token said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuSummary {
    pub name: String,
    pub hwmodel: String,
    pub measres: String,
    pub secboot: bool,
    pub dbgstat: String,
}

/// The outcome of verifying NVIDIA evidence.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EatVerification {
    pub verdict: Verdict,
    pub overall_result: Option<bool>,
    pub gpus: Vec<GpuSummary>,
}

/// Check names, in order.
pub mod checks {
    pub const FORMAT: &str = "eat_format";
    pub const SIGNATURE: &str = "eat_signature";
    pub const X5C: &str = "x5c_chain";
    pub const ISSUER: &str = "eat_issuer";
    pub const VALIDITY: &str = "eat_validity";
    pub const NONCE: &str = "eat_nonce";
    pub const OVERALL: &str = "overall_result";
    pub const SUBMODS: &str = "submod_digests";
    pub const GPU_CLAIMS: &str = "gpu_claims";
    pub const CAPACITY: &str = "gpu_capacity";
    pub const ALL: &[&str] = &[
        FORMAT, SIGNATURE, X5C, ISSUER, VALIDITY, NONCE, OVERALL, SUBMODS, GPU_CLAIMS, CAPACITY,
    ];
}

/// A compact JWS split and decoded.
struct Jws<'a> {
    signing_input: &'a str,
    kid: String,
    alg: String,
    claims: serde_json::Value,
    signature: Vec<u8>,
}

fn decode_jws(token: &str) -> Result<Jws<'_>, String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(c), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not three dot-separated parts".into());
    };
    let signing_input = &token[..h.len() + 1 + c.len()];
    let header: serde_json::Value = serde_json::from_slice(
        &b64.decode(h)
            .map_err(|e| format!("header base64url: {e}"))?,
    )
    .map_err(|e| format!("header JSON: {e}"))?;
    let claims: serde_json::Value = serde_json::from_slice(
        &b64.decode(c)
            .map_err(|e| format!("claims base64url: {e}"))?,
    )
    .map_err(|e| format!("claims JSON: {e}"))?;
    if !claims.is_object() {
        return Err("claims are not a JSON object".into());
    }
    let signature = b64
        .decode(s)
        .map_err(|e| format!("signature base64url: {e}"))?;
    let field = |k: &str| {
        header
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    Ok(Jws {
        signing_input,
        kid: field("kid"),
        alg: field("alg"),
        claims,
        signature,
    })
}

fn verify_es384(jws: &Jws<'_>, jwk: &Jwk) -> Result<(), String> {
    if jws.alg != "ES384" {
        return Err(format!("alg {:?}, only ES384 is accepted", jws.alg));
    }
    if jwk.kty != "EC" || jwk.crv != "P-384" {
        return Err(format!(
            "key {} is {} {}, not EC P-384",
            jwk.kid, jwk.kty, jwk.crv
        ));
    }
    let point = jwk_point(jwk)?;
    if jws.signature.len() != 96 {
        return Err("signature is not 96 bytes r||s".to_string());
    }
    // ring's P-384 (the implementation webpki and dcap-qvl verify with): several times
    // faster than a portable one, and it refuses points off the curve itself.
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P384_SHA384_FIXED, &point)
        .verify(jws.signing_input.as_bytes(), &jws.signature)
        .map_err(|_| "ES384 signature does not verify".to_string())
}

fn jwk_point(jwk: &Jwk) -> Result<Vec<u8>, String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let x = b64.decode(&jwk.x).map_err(|_| "jwk x is not base64url")?;
    let y = b64.decode(&jwk.y).map_err(|_| "jwk y is not base64url")?;
    if x.len() != 48 || y.len() != 48 {
        return Err("jwk x/y are not 48 bytes".into());
    }
    let mut point = vec![0x04];
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

/// A verified x5c chain: the note it earned and the window (unix seconds) in which every
/// certificate of it is valid.
#[derive(Debug, Clone)]
struct VerifiedChain {
    not_before: u64,
    not_after: u64,
    note: String,
}

/// Most verified chains kept (a pinned JWKS has a handful of keys).
const MAX_CACHED_CHAINS: usize = 64;

/// Verified x5c chains by the SHA-256 of the JWK's key and chain. The chain comes from the
/// pinned JWKS, not from the evidence, so its verdict depends only on its bytes and the time:
/// an entry is reused only inside its certificates' common validity window, and a failure is
/// never cached. Readers share the lock, so verifying threads do not queue on it.
fn chain_cache() -> &'static std::sync::RwLock<std::collections::HashMap<[u8; 32], VerifiedChain>> {
    static CACHE: std::sync::OnceLock<
        std::sync::RwLock<std::collections::HashMap<[u8; 32], VerifiedChain>>,
    > = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The x5c check, through the cache of verified chains (see [`chain_cache`]).
fn verify_x5c(jwk: &Jwk, now: u64) -> Result<String, String> {
    let Some(x5c) = &jwk.x5c else {
        return Ok(format!("key {} has no x5c; JWKS pin alone", jwk.kid));
    };
    let mut h = Sha256::new();
    for part in [&jwk.kid, &jwk.x, &jwk.y].into_iter().chain(x5c) {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest: [u8; 32] = h.finalize().into();
    if let Ok(cache) = chain_cache().read() {
        if let Some(c) = cache.get(&digest) {
            if c.not_before <= now && now <= c.not_after {
                return Ok(c.note.clone());
            }
        }
    }
    let verified = verify_x5c_uncached(jwk, x5c, now)?;
    let note = verified.note.clone();
    if let Ok(mut cache) = chain_cache().write() {
        if cache.len() >= MAX_CACHED_CHAINS {
            cache.clear();
        }
        cache.insert(digest, verified);
    }
    Ok(note)
}

/// The x5c check: the first certificate holds exactly the JWK's key, is valid at `now`, and is
/// signed through the rest of the chain up to its last certificate.
fn verify_x5c_uncached(jwk: &Jwk, x5c: &[String], now: u64) -> Result<VerifiedChain, String> {
    use x509_cert::der::Decode as _;
    let std = base64::engine::general_purpose::STANDARD;
    let ders: Vec<Vec<u8>> = x5c
        .iter()
        .map(|c| {
            std.decode(c)
                .map_err(|_| "x5c entry is not base64".to_string())
        })
        .collect::<Result<_, _>>()?;
    let (Some(leaf), Some(top)) = (ders.first(), ders.last()) else {
        return Err("x5c is empty".into());
    };
    let cert = x509_cert::Certificate::from_der(leaf).map_err(|e| format!("x5c[0]: {e}"))?;
    let spki_key = cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec();
    if spki_key != jwk_point(jwk)? {
        return Err("x5c[0] holds a different key than the JWK".into());
    }
    if ders.len() == 1 {
        return Err("x5c has only the leaf; nothing signs it".into());
    }
    let leaf_der = rustls_pki_types::CertificateDer::from(leaf.as_slice());
    let top_der = rustls_pki_types::CertificateDer::from(top.as_slice());
    let anchor = webpki::anchor_from_trusted_cert(&top_der)
        .map_err(|e| format!("x5c top certificate: {e:?}"))?;
    let intermediates: Vec<rustls_pki_types::CertificateDer<'_>> = ders[1..ders.len() - 1]
        .iter()
        .map(|d| rustls_pki_types::CertificateDer::from(d.as_slice()))
        .collect();
    let ee = webpki::EndEntityCert::try_from(&leaf_der).map_err(|e| format!("x5c[0]: {e:?}"))?;
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &intermediates,
        rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(now)),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| format!("x5c chain: {e:?}"))?;
    // The window in which every certificate of the chain is valid.
    let (mut not_before, mut not_after) = (0u64, u64::MAX);
    for der in &ders {
        let c = x509_cert::Certificate::from_der(der).map_err(|e| format!("x5c: {e}"))?;
        let validity = c.tbs_certificate().validity();
        not_before = not_before.max(validity.not_before.to_unix_duration().as_secs());
        not_after = not_after.min(validity.not_after.to_unix_duration().as_secs());
    }
    Ok(VerifiedChain {
        not_before,
        not_after,
        note: format!("x5c of {} chains ({} certificates)", jwk.kid, ders.len()),
    })
}

fn claim_str(c: &serde_json::Value, k: &str) -> String {
    c.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string()
}

fn claim_u64(c: &serde_json::Value, k: &str) -> Option<u64> {
    c.get(k).and_then(|v| v.as_u64())
}

/// Verifies NVIDIA evidence against expectations, recording every check.
pub fn verify_eat(
    evidence: &EatEvidence,
    expect: &EatExpectations,
    ctx: &EatContext<'_>,
) -> EatVerification {
    let mut v = VerdictBuilder::new(LANE);
    let mut overall_result = None;
    let mut gpus = Vec::new();

    // Decode every token: (name, token text, decoded).
    let mut tokens: Vec<(String, &str)> = Vec::new();
    match evidence {
        EatEvidence::Detached { overall, devices } => {
            tokens.push(("overall".into(), overall.as_str()));
            for (name, jwt) in devices {
                tokens.push((name.clone(), jwt.as_str()));
            }
        }
        EatEvidence::Single(jwt) => tokens.push(("token".into(), jwt.as_str())),
    }
    let mut decoded = Vec::new();
    for (name, jwt) in &tokens {
        match decode_jws(jwt) {
            Ok(j) => decoded.push((name.clone(), *jwt, j)),
            Err(e) => {
                v.fail(checks::FORMAT, format!("{name}: {e}"));
                v.skip(&checks::ALL[1..]);
                return EatVerification {
                    verdict: v.finish(),
                    overall_result,
                    gpus,
                };
            }
        }
    }
    v.pass(checks::FORMAT, format!("{} token(s)", decoded.len()));

    // Signatures against the pinned JWKS, and each signing key's x5c.
    let mut sig_errors = Vec::new();
    let mut x5c_errors = Vec::new();
    let mut x5c_notes = Vec::new();
    let mut kids_checked: Vec<String> = Vec::new();
    for (name, _, j) in &decoded {
        match ctx.jwks.find(&j.kid) {
            None => sig_errors.push(format!("{name}: kid {:?} is not in the pinned JWKS", j.kid)),
            Some(jwk) => {
                if let Err(e) = verify_es384(j, jwk) {
                    sig_errors.push(format!("{name}: {e}"));
                }
                if !kids_checked.contains(&jwk.kid) {
                    kids_checked.push(jwk.kid.clone());
                    match verify_x5c(jwk, ctx.now) {
                        Ok(note) => x5c_notes.push(note),
                        Err(e) => x5c_errors.push(format!("{}: {e}", jwk.kid)),
                    }
                }
            }
        }
    }
    if sig_errors.is_empty() {
        v.pass(
            checks::SIGNATURE,
            format!("kid(s) {}", kids_checked.join(", ")),
        );
    } else {
        v.fail(checks::SIGNATURE, sig_errors.join("; "));
    }
    if x5c_errors.is_empty() {
        v.pass(checks::X5C, x5c_notes.join("; "));
    } else {
        v.fail(checks::X5C, x5c_errors.join("; "));
    }

    // Issuer, validity window, nonce — on every token.
    let mut iss_bad = Vec::new();
    let mut time_bad = Vec::new();
    let mut nonce_bad = Vec::new();
    for (name, _, j) in &decoded {
        let iss = claim_str(&j.claims, "iss");
        if iss != NRAS_ISSUER {
            iss_bad.push(format!("{name}: iss {iss:?}"));
        }
        let start = claim_u64(&j.claims, "nbf").or_else(|| claim_u64(&j.claims, "iat"));
        match (start, claim_u64(&j.claims, "exp")) {
            (Some(start), Some(exp)) => {
                if ctx.now + ctx.leeway_secs < start {
                    time_bad.push(format!("{name}: not valid before {start}; now {}", ctx.now));
                } else if ctx.now > exp + ctx.leeway_secs {
                    time_bad.push(format!("{name}: expired at {exp}; now {}", ctx.now));
                }
            }
            _ => time_bad.push(format!("{name}: missing nbf/iat or exp")),
        }
        let nonce = claim_str(&j.claims, "eat_nonce");
        if !nonce.eq_ignore_ascii_case(&expect.nonce_hex) || nonce.is_empty() {
            nonce_bad.push(format!("{name}: eat_nonce {nonce:?}"));
        }
    }
    let mut record = |name: &str, bad: Vec<String>, ok: String| {
        if bad.is_empty() {
            v.pass(name, ok);
        } else {
            v.fail(name, bad.join("; "));
        }
    };
    record(checks::ISSUER, iss_bad, NRAS_ISSUER.into());
    record(
        checks::VALIDITY,
        time_bad,
        format!("all tokens valid at {}", ctx.now),
    );
    record(
        checks::NONCE,
        nonce_bad,
        format!("eat_nonce equals {}", expect.nonce_hex.to_ascii_lowercase()),
    );

    // Overall result and per-GPU digests (detached form), then per-GPU claims.
    let mut gpu_tokens: Vec<(&String, &serde_json::Value)> = Vec::new();
    match evidence {
        EatEvidence::Detached { devices, .. } => {
            let overall = &decoded[0].2.claims;
            let result = overall
                .get("x-nvidia-overall-att-result")
                .and_then(|r| r.as_bool());
            overall_result = result;
            match result {
                Some(true) => v.pass(checks::OVERALL, "x-nvidia-overall-att-result true"),
                other => v.fail(
                    checks::OVERALL,
                    format!("x-nvidia-overall-att-result {other:?}"),
                ),
            }
            let submods = overall
                .get("submods")
                .and_then(|s| s.as_object())
                .cloned()
                .unwrap_or_default();
            let mut bad = Vec::new();
            if submods.len() != devices.len() {
                bad.push(format!(
                    "{} submods in the overall token, {} GPU tokens",
                    submods.len(),
                    devices.len()
                ));
            }
            for (name, jwt) in devices {
                let want = submods
                    .get(name)
                    .and_then(|m| m.get(1))
                    .and_then(|d| d.get(1))
                    .and_then(|d| d.as_str())
                    .unwrap_or("");
                let have = hex::encode(Sha256::digest(jwt.as_bytes()));
                if !want.eq_ignore_ascii_case(&have) {
                    bad.push(format!("{name}: digest {have} not {want:?}"));
                }
            }
            if bad.is_empty() {
                v.pass(
                    checks::SUBMODS,
                    format!("{} GPU token digest(s) match", devices.len()),
                );
            } else {
                v.fail(checks::SUBMODS, bad.join("; "));
            }
            for (name, _, j) in decoded.iter().skip(1) {
                gpu_tokens.push((name, &j.claims));
            }
        }
        EatEvidence::Single(_) => {
            let c = &decoded[0].2.claims;
            let result = c
                .get("x-nvidia-overall-att-result")
                .and_then(|r| r.as_bool());
            overall_result = result;
            if c.get("hwmodel").is_some() {
                v.pass(checks::OVERALL, "single GPU token; no overall token");
                v.pass(checks::SUBMODS, "single GPU token; no submods");
                gpu_tokens.push((&decoded[0].0, c));
            } else {
                match result {
                    Some(true) => v.pass(checks::OVERALL, "x-nvidia-overall-att-result true"),
                    other => v.fail(
                        checks::OVERALL,
                        format!("x-nvidia-overall-att-result {other:?}"),
                    ),
                }
                v.fail(
                    checks::SUBMODS,
                    "an overall token without its GPU tokens cannot show per-GPU claims",
                );
            }
        }
    }

    let mut claim_bad = Vec::new();
    for (name, c) in &gpu_tokens {
        let g = GpuSummary {
            name: (*name).clone(),
            hwmodel: claim_str(c, "hwmodel"),
            measres: claim_str(c, "measres"),
            secboot: c.get("secboot").and_then(|b| b.as_bool()).unwrap_or(false),
            dbgstat: claim_str(c, "dbgstat"),
        };
        if g.measres != "success" {
            claim_bad.push(format!("{name}: measres {:?}", g.measres));
        }
        if !g.secboot {
            claim_bad.push(format!("{name}: secboot not true"));
        }
        if g.dbgstat != "disabled" {
            claim_bad.push(format!("{name}: dbgstat {:?}", g.dbgstat));
        }
        if g.hwmodel.is_empty() {
            claim_bad.push(format!("{name}: no hwmodel"));
        }
        gpus.push(g);
    }
    if gpu_tokens.is_empty() {
        claim_bad.push("no GPU tokens".into());
    }
    if claim_bad.is_empty() {
        v.pass(
            checks::GPU_CLAIMS,
            format!(
                "{} GPU(s): measres success, secboot on, debug disabled",
                gpus.len()
            ),
        );
    } else {
        v.fail(checks::GPU_CLAIMS, claim_bad.join("; "));
    }

    let mut cap_bad = Vec::new();
    let mut cap_ok = Vec::new();
    if let Some(n) = expect.gpu_count {
        if n == gpus.len() {
            cap_ok.push(format!("{n} GPU(s) attested"));
        } else {
            cap_bad.push(format!("expected {n} GPU(s), {} attested", gpus.len()));
        }
    }
    if let Some(claimed) = &expect.capacity {
        match compare_capacity(claimed, &gpus) {
            Ok(d) => cap_ok.push(d),
            Err(d) => cap_bad.push(d),
        }
    }
    if !cap_bad.is_empty() {
        v.fail(checks::CAPACITY, cap_bad.join("; "));
    } else if cap_ok.is_empty() {
        v.pass(checks::CAPACITY, "no capacity claim to compare");
    } else {
        v.pass(checks::CAPACITY, cap_ok.join("; "));
    }
    EatVerification {
        verdict: v.finish(),
        overall_result,
        gpus,
    }
}

/// Claimed models and counts must equal what the tokens attest, chip by chip.
fn compare_capacity(claimed: &[GpuCapacity], gpus: &[GpuSummary]) -> Result<String, String> {
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for c in claimed {
        *want.entry(hwmodel_for(&c.model)).or_default() += u64::from(c.count);
    }
    let mut have: BTreeMap<String, u64> = BTreeMap::new();
    for g in gpus {
        *have.entry(g.hwmodel.to_ascii_uppercase()).or_default() += 1;
    }
    if want == have {
        Ok(format!("attested {have:?} equals claimed"))
    } else {
        Err(format!("claimed {want:?}, attested {have:?}"))
    }
}
