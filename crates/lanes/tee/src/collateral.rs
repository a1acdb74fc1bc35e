//! Collateral for quotes that arrive without it: a cache keyed by the platform's FMSPC (and
//! PCK CA), with a freshness limit, filled through a pluggable [`CollateralFetcher`] (a PCCS
//! client lives in the node). Evidence that carries its own collateral never touches this.
//!
//! The cache decides nothing about trust: whatever it returns is verified by [`crate::tdx`]
//! like stored collateral, so a bad fetch can only make a verification fail, never pass.

use std::collections::HashMap;
use std::future::Future;

pub use dcap_qvl::QuoteCollateralV3;
use serde::Serialize;

/// Which PCK CA issued a platform's PCK certificate (the PCS API names it `ca=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PckCa {
    Platform,
    Processor,
}

impl PckCa {
    /// The PCS query value.
    pub fn as_str(self) -> &'static str {
        match self {
            PckCa::Platform => "platform",
            PckCa::Processor => "processor",
        }
    }
}

/// What collateral is keyed by: the FMSPC (upper-case hex, 12 characters), the CA, and
/// whether the quote is TDX or SGX (they have different TCB info and QE identities).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
pub struct PlatformId {
    pub fmspc: String,
    pub ca: PckCa,
    pub tdx: bool,
}

/// Why collateral could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollateralError {
    /// The quote does not parse, or carries no readable PCK certificate.
    #[error("quote: {0}")]
    Quote(String),
    /// The fetcher failed (network, PCCS status, malformed answer).
    #[error("fetching collateral for FMSPC {fmspc}: {message}")]
    Fetch { fmspc: String, message: String },
    /// No fetcher is configured and nothing fresh is cached.
    #[error("no collateral for FMSPC {0}: the evidence carries none, none is cached and no PCCS is configured")]
    Unavailable(String),
}

/// Reads the platform a quote comes from: the FMSPC in its PCK leaf's SGX extension and the CA
/// named in the leaf's issuer.
pub fn platform_of(quote: &[u8]) -> Result<PlatformId, CollateralError> {
    let q =
        dcap_qvl::quote::Quote::parse(quote).map_err(|e| CollateralError::Quote(e.to_string()))?;
    let certs = dcap_qvl::intel::extract_cert_chain(&q)
        .map_err(|e| CollateralError::Quote(format!("PCK chain: {e}")))?;
    let leaf = certs
        .first()
        .ok_or_else(|| CollateralError::Quote("PCK chain is empty".into()))?;
    let ext = dcap_qvl::intel::parse_pck_extension(leaf)
        .map_err(|e| CollateralError::Quote(format!("PCK extension: {e}")))?;
    let cert = <x509_cert::Certificate as x509_cert::der::Decode>::from_der(leaf)
        .map_err(|e| CollateralError::Quote(format!("PCK leaf: {e}")))?;
    let issuer = cert.tbs_certificate().issuer().to_string();
    let ca = if issuer.contains("Platform CA") {
        PckCa::Platform
    } else if issuer.contains("Processor CA") {
        PckCa::Processor
    } else {
        return Err(CollateralError::Quote(format!(
            "PCK leaf issuer {issuer:?} names neither the Platform nor the Processor CA"
        )));
    };
    Ok(PlatformId {
        fmspc: hex::encode_upper(ext.fmspc),
        ca,
        tdx: !q.header.is_sgx(),
    })
}

/// Where collateral comes from when it is not cached: a PCCS or Intel's PCS in production.
pub trait CollateralFetcher {
    /// Fetches the current collateral for `platform`.
    fn fetch(
        &self,
        platform: &PlatformId,
    ) -> impl Future<Output = Result<QuoteCollateralV3, CollateralError>> + Send;
}

struct Entry {
    fetched_at: u64,
    collateral: QuoteCollateralV3,
}

/// Collateral per platform, reused while fresh: younger than `max_age_secs` and before the
/// TCB info's own `nextUpdate`.
pub struct CollateralCache {
    max_age_secs: u64,
    entries: HashMap<PlatformId, Entry>,
}

impl CollateralCache {
    /// An empty cache whose entries live at most `max_age_secs`.
    pub fn new(max_age_secs: u64) -> Self {
        Self {
            max_age_secs,
            entries: HashMap::new(),
        }
    }

    /// The cached collateral for `platform`, if it is still fresh at `now`.
    pub fn get(&self, platform: &PlatformId, now: u64) -> Option<&QuoteCollateralV3> {
        let e = self.entries.get(platform)?;
        let young = now.saturating_sub(e.fetched_at) <= self.max_age_secs && now >= e.fetched_at;
        let current = next_update(&e.collateral).is_none_or(|t| now < t);
        (young && current).then_some(&e.collateral)
    }

    /// Stores collateral fetched at `now`.
    pub fn insert(&mut self, platform: PlatformId, collateral: QuoteCollateralV3, now: u64) {
        self.entries.insert(
            platform,
            Entry {
                fetched_at: now,
                collateral,
            },
        );
    }

    /// How many platforms are cached (fresh or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The fresh cached collateral, or a new fetch through `fetcher` (cached on success).
    pub async fn get_or_fetch<F: CollateralFetcher>(
        &mut self,
        platform: &PlatformId,
        now: u64,
        fetcher: Option<&F>,
    ) -> Result<QuoteCollateralV3, CollateralError> {
        if let Some(c) = self.get(platform, now) {
            return Ok(c.clone());
        }
        let fetcher =
            fetcher.ok_or_else(|| CollateralError::Unavailable(platform.fmspc.clone()))?;
        let c = fetcher.fetch(platform).await?;
        self.insert(platform.clone(), c.clone(), now);
        Ok(c)
    }
}

/// The TCB info's `nextUpdate` as unix seconds, when it can be read.
fn next_update(c: &QuoteCollateralV3) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(&c.tcb_info).ok()?;
    let t = v.get("nextUpdate")?.as_str()?;
    let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::testroot::{TdQuoteSpec, TestRootOfTrust, TEST_FMSPC};

    /// Serves the test root's collateral and counts calls (the seam a PCCS client fills).
    struct Counting<'a> {
        root: &'a TestRootOfTrust,
        issued: u64,
        calls: AtomicUsize,
        fail: bool,
    }

    impl CollateralFetcher for Counting<'_> {
        async fn fetch(&self, p: &PlatformId) -> Result<QuoteCollateralV3, CollateralError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                return Err(CollateralError::Fetch {
                    fmspc: p.fmspc.clone(),
                    message: "PCCS answered 503".into(),
                });
            }
            let v = self
                .root
                .collateral(self.issued, 30 * 24 * 3600)
                .map_err(|e| CollateralError::Fetch {
                    fmspc: p.fmspc.clone(),
                    message: e.to_string(),
                })?;
            serde_json::from_value(v).map_err(|e| CollateralError::Fetch {
                fmspc: p.fmspc.clone(),
                message: e.to_string(),
            })
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        // The futures here never wait on I/O, so polling them once to completion suffices.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn reads_the_platform_of_a_synthetic_quote() {
        let root = TestRootOfTrust::devnet().unwrap();
        let quote = root.td_quote(&TdQuoteSpec::new([0u8; 64])).unwrap();
        let p = platform_of(&quote).unwrap();
        assert_eq!(p.fmspc, hex::encode_upper(TEST_FMSPC));
        assert_eq!(p.ca, PckCa::Platform);
        assert!(p.tdx);
        assert!(matches!(
            platform_of(&quote[..100]),
            Err(CollateralError::Quote(_))
        ));
    }

    #[test]
    fn fetches_once_while_fresh_and_again_when_stale() {
        let root = TestRootOfTrust::devnet().unwrap();
        let quote = root.td_quote(&TdQuoteSpec::new([0u8; 64])).unwrap();
        let p = platform_of(&quote).unwrap();
        let now = 1_800_000_000;
        let f = Counting {
            root: &root,
            issued: now - 60,
            calls: AtomicUsize::new(0),
            fail: false,
        };
        let mut cache = CollateralCache::new(3600);
        block_on(cache.get_or_fetch(&p, now, Some(&f))).unwrap();
        block_on(cache.get_or_fetch(&p, now + 3600, Some(&f))).unwrap();
        assert_eq!(f.calls.load(Ordering::SeqCst), 1, "fresh entry reused");
        block_on(cache.get_or_fetch(&p, now + 3601, Some(&f))).unwrap();
        assert_eq!(f.calls.load(Ordering::SeqCst), 2, "stale entry refetched");
        // An entry past the TCB info's nextUpdate is not fresh, whatever its age.
        let mut long = CollateralCache::new(365 * 24 * 3600);
        block_on(long.get_or_fetch(&p, now, Some(&f))).unwrap();
        assert!(long.get(&p, now + 31 * 24 * 3600).is_none());
        // Another platform is another key.
        let other = PlatformId {
            fmspc: "00906ED50000".into(),
            ..p.clone()
        };
        assert!(cache.get(&other, now).is_none());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn fetch_failure_and_no_fetcher_are_errors_and_cache_nothing() {
        let root = TestRootOfTrust::devnet().unwrap();
        let quote = root.td_quote(&TdQuoteSpec::new([0u8; 64])).unwrap();
        let p = platform_of(&quote).unwrap();
        let f = Counting {
            root: &root,
            issued: 0,
            calls: AtomicUsize::new(0),
            fail: true,
        };
        let mut cache = CollateralCache::new(3600);
        assert!(matches!(
            block_on(cache.get_or_fetch(&p, 100, Some(&f))),
            Err(CollateralError::Fetch { .. })
        ));
        assert!(cache.is_empty());
        assert!(matches!(
            block_on(cache.get_or_fetch::<Counting>(&p, 100, None)),
            Err(CollateralError::Unavailable(_))
        ));
    }
}
