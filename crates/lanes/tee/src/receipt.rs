//! The attestation proxy's verification receipt: what it checked for a nonce, signed with the
//! algorithm the caller chose, so the caller (or anyone later) can re-check it offline.
//!
//! The signature covers DSSE PAE(`application/vnd.hallmark.attestation-receipt+json`,
//! RFC 8785 canonical JSON of the payload), so a receipt can never pass for another signed
//! object. Ed25519 signs that message directly; ECDSA (secp256k1) signs its SHA-256 with a
//! low-S, 64-byte `r‖s` signature. `signing_address` is the Ed25519 public key (hex) or the
//! Ethereum-style address of the secp256k1 key; the binding of that address into the proxy's
//! own quote follows the dstack convention (address padded to 32 bytes ‖ nonce).

use hallmark_core::{Keypair, PublicKey, Verdict, VerdictBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chain::InstanceResult;
use crate::error::TeeError;
use crate::tdx::LANE;

/// The DSSE payload type receipts are signed under.
pub const RECEIPT_PAYLOAD_TYPE: &str = "application/vnd.hallmark.attestation-receipt+json";

/// Which signature a caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SigningAlgo {
    Ed25519,
    Ecdsa,
}

impl std::str::FromStr for SigningAlgo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ed25519" => Ok(Self::Ed25519),
            "ecdsa" => Ok(Self::Ecdsa),
            other => Err(format!("signing_algo {other:?} is not ecdsa or ed25519")),
        }
    }
}

/// What the proxy attests to, per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptPayload {
    pub nonce: String,
    pub model: String,
    /// SHA-256 (hex) of the upstream attestation exactly as received (canonical JSON).
    pub upstream_attestation_sha256: String,
    pub signing_algo: SigningAlgo,
    pub signing_address: String,
    /// Hex public key matching `signing_address` (Ed25519 32 bytes; secp256k1 compressed).
    pub signing_public_key: String,
    /// `verified` when every instance verified, else `failed`.
    pub result: String,
    pub total_instances: usize,
    pub tdx_uptodate_instances: usize,
    pub binding_verified_instances: usize,
    pub instance_results: Vec<InstanceResult>,
    /// Unix seconds at which the proxy verified (the `now` of every check).
    pub verified_at: u64,
    /// The trust profile the proxy ran under (`production` or `devnet`).
    pub profile: String,
}

impl ReceiptPayload {
    /// Builds the payload from per-instance results, deriving result and counts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        nonce: &str,
        model: &str,
        upstream_attestation_sha256: String,
        signer: &ReceiptSigner,
        algo: SigningAlgo,
        instance_results: Vec<InstanceResult>,
        verified_at: u64,
        profile: &str,
    ) -> Self {
        let total = instance_results.len();
        let uptodate = instance_results
            .iter()
            .filter(|r| r.tdx_status == "UpToDate" && !r.tdx_error_present)
            .count();
        let bound = instance_results
            .iter()
            .filter(|r| r.binding_verified)
            .count();
        let all_ok = total > 0 && instance_results.iter().all(InstanceResult::verified);
        Self {
            nonce: nonce.to_string(),
            model: model.to_string(),
            upstream_attestation_sha256,
            signing_algo: algo,
            signing_address: signer.signing_address(algo),
            signing_public_key: signer.public_key_hex(algo),
            result: if all_ok { "verified" } else { "failed" }.into(),
            total_instances: total,
            tdx_uptodate_instances: uptodate,
            binding_verified_instances: bound,
            instance_results,
            verified_at,
            profile: profile.to_string(),
        }
    }
}

/// A signed receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationReceipt {
    pub payload: ReceiptPayload,
    /// Hex signature (Ed25519 64 bytes, or ECDSA secp256k1 `r‖s` 64 bytes).
    pub signature: String,
}

/// The proxy's receipt keys: one Ed25519 and one secp256k1 key, both from one seed.
pub struct ReceiptSigner {
    ed25519: Keypair,
    ecdsa: k256::ecdsa::SigningKey,
}

impl std::fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptSigner")
            .field("ed25519", &self.ed25519.public().to_ss58())
            .finish_non_exhaustive()
    }
}

impl ReceiptSigner {
    /// Derives both keys from a 32-byte seed (the ECDSA key from SHA-256(seed ‖ "secp256k1")).
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, TeeError> {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(b"secp256k1");
        let ecdsa = k256::ecdsa::SigningKey::from_slice(&h.finalize())
            .map_err(|_| TeeError::Receipt("seed does not give a secp256k1 key".into()))?;
        Ok(Self {
            ed25519: Keypair::from_seed(seed),
            ecdsa,
        })
    }

    /// The address bound into the proxy's quote for this algorithm.
    pub fn signing_address(&self, algo: SigningAlgo) -> String {
        match algo {
            SigningAlgo::Ed25519 => hex::encode(self.ed25519.public().as_bytes()),
            SigningAlgo::Ecdsa => eth_address(self.ecdsa.verifying_key()),
        }
    }

    /// The public key, hex.
    pub fn public_key_hex(&self, algo: SigningAlgo) -> String {
        match algo {
            SigningAlgo::Ed25519 => hex::encode(self.ed25519.public().as_bytes()),
            SigningAlgo::Ecdsa => hex::encode(self.ecdsa.verifying_key().to_sec1_bytes()),
        }
    }

    /// Signs a payload.
    pub fn sign(&self, payload: ReceiptPayload) -> Result<VerificationReceipt, TeeError> {
        let msg = signed_message(&payload)?;
        let signature = match payload.signing_algo {
            SigningAlgo::Ed25519 => hex::encode(self.ed25519.sign(&msg)),
            SigningAlgo::Ecdsa => {
                use k256::ecdsa::signature::Signer as _;
                let sig: k256::ecdsa::Signature = self.ecdsa.sign(&msg);
                let sig = sig.normalize_s();
                hex::encode(sig.to_bytes())
            }
        };
        Ok(VerificationReceipt { payload, signature })
    }
}

/// `0x` + last 20 bytes of keccak256(uncompressed point without its 0x04 prefix).
fn eth_address(key: &k256::ecdsa::VerifyingKey) -> String {
    use sha3::Digest as _;
    let point = key.to_sec1_point(false);
    let hash = sha3::Keccak256::digest(&point.as_bytes()[1..]);
    format!("0x{}", hex::encode(&hash[12..]))
}

fn signed_message(payload: &ReceiptPayload) -> Result<Vec<u8>, TeeError> {
    let body = hallmark_core::canonical::to_canonical_bytes(payload)
        .map_err(|e| TeeError::Receipt(e.to_string()))?;
    Ok(hallmark_core::dsse::pae(RECEIPT_PAYLOAD_TYPE, &body))
}

/// Check names for receipt re-verification.
pub mod checks {
    pub const SIGNATURE: &str = "receipt_signature";
    pub const ADDRESS: &str = "signing_address";
    pub const PINNED_KEY: &str = "pinned_key";
    pub const NONCE: &str = "nonce_expected";
    pub const MODEL: &str = "model_expected";
    pub const RESPONSE: &str = "response_matches_receipt";
    pub const COUNTS: &str = "result_consistent";
    pub const RESULT: &str = "chain_verified";
}

/// What a caller expects of a receipt beyond its own consistency. Every field is optional; an
/// expectation left out passes as "not asked".
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceiptExpectations<'a> {
    /// The key it must be signed with: hex public key, SS58 (Ed25519), or signing address.
    pub pinned: Option<&'a str>,
    /// The nonce the caller sent: a receipt for another nonce is a replay.
    pub nonce: Option<&'a str>,
    /// The model the caller asked about.
    pub model: Option<&'a str>,
    /// The unsigned fields of the response the receipt came in (its top-level `nonce` and
    /// `model`), which must agree with the signed payload: a client that reads them must not
    /// be told something the proxy did not sign.
    pub response: Option<&'a UnsignedFields>,
}

/// A proxy response's unsigned top-level fields that repeat the signed payload. A field present
/// but not a string is kept as its JSON text, so it can never match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnsignedFields {
    pub nonce: Option<String>,
    pub model: Option<String>,
}

impl UnsignedFields {
    /// The top-level `nonce` and `model` of a proxy response.
    pub fn of_response(response: &serde_json::Value) -> Self {
        let field = |k: &str| {
            response.get(k).map(|v| match v.as_str() {
                Some(s) => s.to_string(),
                None => v.to_string(),
            })
        };
        Self {
            nonce: field("nonce"),
            model: field("model"),
        }
    }
}

/// Re-checks a receipt offline: the signature under its stated key, that the stated address
/// belongs to that key, optionally that the key is the one the caller expects (`pinned`: hex
/// key, SS58 for Ed25519, or the address), and that result and counts follow from the
/// per-instance results.
pub fn verify_receipt(receipt: &VerificationReceipt, pinned: Option<&str>) -> Verdict {
    verify_receipt_for(
        receipt,
        &ReceiptExpectations {
            pinned,
            ..ReceiptExpectations::default()
        },
    )
}

/// [`verify_receipt`], and the receipt is for the nonce and model the caller expects, and the
/// response it came in repeats the signed nonce and model faithfully.
pub fn verify_receipt_for(
    receipt: &VerificationReceipt,
    expect: &ReceiptExpectations<'_>,
) -> Verdict {
    let pinned = expect.pinned;
    let mut v = VerdictBuilder::new(LANE);
    let p = &receipt.payload;
    // Only canonical (lowercase) hex is accepted, so no byte of a receipt can change unnoticed.
    let sig = strict_hex(&receipt.signature);
    let key_bytes = strict_hex(&p.signing_public_key);
    let msg = signed_message(p);
    let (sig_ok, derived_address, detail) = match (&msg, p.signing_algo) {
        (Err(e), _) => (false, String::new(), e.to_string()),
        (Ok(msg), SigningAlgo::Ed25519) => match <[u8; 32]>::try_from(key_bytes.as_slice())
            .ok()
            .and_then(|b| PublicKey::from_bytes(b).ok())
        {
            None => (false, String::new(), "not an Ed25519 public key".into()),
            Some(pk) => {
                let ok = pk.verify(msg, &sig).is_ok();
                (
                    ok,
                    hex::encode(pk.as_bytes()),
                    format!("Ed25519 key {}", pk.to_ss58()),
                )
            }
        },
        (Ok(msg), SigningAlgo::Ecdsa) => {
            use k256::ecdsa::signature::Verifier as _;
            match k256::ecdsa::VerifyingKey::from_sec1_bytes(&key_bytes) {
                Err(_) => (false, String::new(), "not a secp256k1 public key".into()),
                Ok(vk) => {
                    let ok = k256::ecdsa::Signature::from_slice(&sig)
                        .map(|s| s.normalize_s() == s && vk.verify(msg, &s).is_ok())
                        .unwrap_or(false);
                    (ok, eth_address(&vk), "ECDSA secp256k1".into())
                }
            }
        }
    };
    if sig_ok {
        v.pass(checks::SIGNATURE, detail);
    } else {
        v.fail(
            checks::SIGNATURE,
            format!("signature does not verify ({detail})"),
        );
    }
    if !derived_address.is_empty() && derived_address == p.signing_address {
        v.pass(checks::ADDRESS, p.signing_address.clone());
    } else {
        v.fail(
            checks::ADDRESS,
            format!("{} does not belong to the stated key", p.signing_address),
        );
    }
    match pinned {
        None => v.pass(checks::PINNED_KEY, "no key pinned by the caller"),
        Some(pin) => {
            let pin_t = pin.trim().trim_start_matches("0x").to_ascii_lowercase();
            let ss58 = <[u8; 32]>::try_from(key_bytes.as_slice())
                .ok()
                .and_then(|b| PublicKey::from_bytes(b).ok())
                .map(|pk| pk.to_ss58());
            let matches = pin_t == p.signing_public_key.to_ascii_lowercase()
                || pin_t
                    == p.signing_address
                        .trim_start_matches("0x")
                        .to_ascii_lowercase()
                || ss58.as_deref() == Some(pin.trim());
            if matches {
                v.pass(checks::PINNED_KEY, "signed by the pinned key");
            } else {
                v.fail(
                    checks::PINNED_KEY,
                    format!("signed by {}, not {pin}", p.signing_address),
                );
            }
        }
    }
    for (check, want, got) in [
        (checks::NONCE, expect.nonce, &p.nonce),
        (checks::MODEL, expect.model, &p.model),
    ] {
        match want {
            None => v.pass(check, format!("{got:?} (none expected by the caller)")),
            Some(w) if w == got => v.pass(check, format!("{got:?} as expected")),
            Some(w) => v.fail(check, format!("the receipt is for {got:?}, not {w:?}")),
        }
    }
    match expect.response {
        None => v.pass(checks::RESPONSE, "the receipt alone, no response around it"),
        Some(r) => {
            let mut bad = Vec::new();
            for (name, unsigned, signed) in
                [("nonce", &r.nonce, &p.nonce), ("model", &r.model, &p.model)]
            {
                if let Some(u) = unsigned {
                    if u != signed {
                        bad.push(format!("unsigned {name} {u:?} but signed {signed:?}"));
                    }
                }
            }
            if bad.is_empty() {
                v.pass(
                    checks::RESPONSE,
                    "the response repeats the signed nonce and model",
                );
            } else {
                v.fail(checks::RESPONSE, bad.join("; "));
            }
        }
    }
    let total = p.instance_results.len();
    let uptodate = p
        .instance_results
        .iter()
        .filter(|r| r.tdx_status == "UpToDate" && !r.tdx_error_present)
        .count();
    let bound = p
        .instance_results
        .iter()
        .filter(|r| r.binding_verified)
        .count();
    let all_ok = total > 0 && p.instance_results.iter().all(InstanceResult::verified);
    let want = if all_ok { "verified" } else { "failed" };
    if p.total_instances == total
        && p.tdx_uptodate_instances == uptodate
        && p.binding_verified_instances == bound
        && p.result == want
    {
        v.pass(
            checks::COUNTS,
            format!("{total} instance(s), result {want}"),
        );
    } else {
        v.fail(
            checks::COUNTS,
            format!(
                "stated {}/{}/{} {}, results give {total}/{uptodate}/{bound} {want}",
                p.total_instances, p.tdx_uptodate_instances, p.binding_verified_instances, p.result
            ),
        );
    }
    if p.result == "verified" {
        v.pass(checks::RESULT, "every instance verified");
    } else {
        v.fail(
            checks::RESULT,
            format!("the proxy found result {:?}", p.result),
        );
    }
    v.finish()
}

fn strict_hex(s: &str) -> Vec<u8> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Vec::new();
    }
    hex::decode(s).unwrap_or_default()
}
