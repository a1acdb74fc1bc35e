//! A [`CollateralFetcher`] over the PCCS / Intel PCS v4 HTTP API: TCB info and QE identity
//! for the platform's FMSPC, the PCK CRL for its CA, and the root CA CRL (PCCS serves it hex
//! encoded). Issuer chains arrive URL-encoded in response headers.
//!
//! Nothing fetched is trusted: the collateral is verified against the pinned root by
//! `hallmark_tee::tdx` exactly like collateral sent with the evidence.

use std::time::Duration;

use hallmark_tee::collateral::{CollateralError, CollateralFetcher, PlatformId, QuoteCollateralV3};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Fetches collateral from one PCCS base URL (e.g. `https://pccs.example:8081`).
#[derive(Debug, Clone)]
pub struct PccsFetcher {
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct TcbInfoResponse<'a> {
    #[serde(rename = "tcbInfo", borrow)]
    tcb_info: &'a RawValue,
    signature: String,
}

#[derive(Deserialize)]
struct QeIdentityResponse<'a> {
    #[serde(rename = "enclaveIdentity", borrow)]
    enclave_identity: &'a RawValue,
    signature: String,
}

impl PccsFetcher {
    /// A fetcher for `base` with a per-request timeout.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    async fn get(
        &self,
        platform: &PlatformId,
        path: &str,
        chain_headers: &[&str],
    ) -> Result<(Vec<u8>, String), CollateralError> {
        let err = |message: String| CollateralError::Fetch {
            fmspc: platform.fmspc.clone(),
            message,
        };
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| err(format!("GET {url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(err(format!("GET {url}: HTTP {}", resp.status())));
        }
        // The issuer chain, under the first of `chain_headers` present (PCS versions differ).
        let chain = match chain_headers {
            [] => String::new(),
            names => {
                let raw = names
                    .iter()
                    .find_map(|n| resp.headers().get(*n))
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| err(format!("GET {url}: no {} header", names.join(" or "))))?;
                percent_encoding::percent_decode_str(raw)
                    .decode_utf8()
                    .map_err(|_| err(format!("GET {url}: issuer chain is not URL-encoded UTF-8")))?
                    .into_owned()
            }
        };
        let body = resp
            .bytes()
            .await
            .map_err(|e| err(format!("GET {url}: reading the body: {e}")))?;
        Ok((body.to_vec(), chain))
    }
}

impl CollateralFetcher for PccsFetcher {
    async fn fetch(&self, p: &PlatformId) -> Result<QuoteCollateralV3, CollateralError> {
        let err = |message: String| CollateralError::Fetch {
            fmspc: p.fmspc.clone(),
            message,
        };
        let tee = if p.tdx { "tdx" } else { "sgx" };
        let (pck_crl, pck_crl_issuer_chain) = self
            .get(
                p,
                &format!(
                    "/sgx/certification/v4/pckcrl?ca={}&encoding=der",
                    p.ca.as_str()
                ),
                &["SGX-PCK-CRL-Issuer-Chain"],
            )
            .await?;
        let (tcb_body, tcb_info_issuer_chain) = self
            .get(
                p,
                &format!("/{tee}/certification/v4/tcb?fmspc={}", p.fmspc),
                &["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"],
            )
            .await?;
        let (qe_body, qe_identity_issuer_chain) = self
            .get(
                p,
                &format!("/{tee}/certification/v4/qe/identity"),
                &["SGX-Enclave-Identity-Issuer-Chain"],
            )
            .await?;
        let (root_hex, _) = self.get(p, "/sgx/certification/v4/rootcacrl", &[]).await?;

        let tcb: TcbInfoResponse = serde_json::from_slice(&tcb_body)
            .map_err(|e| err(format!("TCB info response: {e}")))?;
        let qe: QeIdentityResponse = serde_json::from_slice(&qe_body)
            .map_err(|e| err(format!("QE identity response: {e}")))?;
        let root_ca_crl = std::str::from_utf8(&root_hex)
            .ok()
            .and_then(|t| hex::decode(t.trim()).ok())
            .ok_or_else(|| err("root CA CRL is not hex-encoded DER (PCCS form)".into()))?;
        Ok(QuoteCollateralV3 {
            pck_crl_issuer_chain,
            root_ca_crl,
            pck_crl,
            tcb_info_issuer_chain,
            tcb_info: tcb.tcb_info.get().to_string(),
            tcb_info_signature: hex::decode(&tcb.signature)
                .map_err(|_| err("TCB info signature is not hex".into()))?,
            qe_identity_issuer_chain,
            qe_identity: qe.enclave_identity.get().to_string(),
            qe_identity_signature: hex::decode(&qe.signature)
                .map_err(|_| err("QE identity signature is not hex".into()))?,
            pck_certificate_chain: None,
        })
    }
}
