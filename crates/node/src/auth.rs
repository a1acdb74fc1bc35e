//! Request authentication between nodes.
//!
//! The signer signs `hallmark-request-v1\n{METHOD}\n{PATH}\n{sha256(body)}\n{timestamp}` where
//! PATH excludes the query string and the timestamp is RFC 3339 (no offset means UTC). The
//! receiver rejects a timestamp outside its skew window and a signature it has already seen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{FromRequest, OriginalUri, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hallmark_core::{sha256, Keypair, PublicKey};
use hallmark_store::Store;
use serde::de::DeserializeOwned;

use crate::api::{parse_json, ApiError};

/// Header carrying the signer's SS58 address.
pub const SIGNER_HEADER: &str = "x-hallmark-signer";
/// Header carrying the RFC 3339 timestamp.
pub const TIMESTAMP_HEADER: &str = "x-hallmark-timestamp";
/// Header carrying the base64 ed25519 signature.
pub const SIGNATURE_HEADER: &str = "x-hallmark-signature";

/// The bytes a request signature covers.
pub fn signing_message(method: &str, path: &str, body: &[u8], timestamp: &str) -> Vec<u8> {
    let path = path.split('?').next().unwrap_or(path);
    format!(
        "hallmark-request-v1\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path,
        sha256(body).to_hex(),
        timestamp
    )
    .into_bytes()
}

/// The three auth headers for a request, signed now.
pub fn sign_request(
    key: &Keypair,
    method: &str,
    path: &str,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let ts = hallmark_core::time::now_rfc3339_precise();
    let sig = key.sign(&signing_message(method, path, body, &ts));
    [
        (SIGNER_HEADER, key.public().to_ss58()),
        (TIMESTAMP_HEADER, ts),
        (SIGNATURE_HEADER, B64.encode(sig)),
    ]
}

/// Why a request's authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("signer is not a valid address: {0}")]
    BadSigner(String),
    #[error("timestamp: {0}")]
    BadTimestamp(String),
    #[error("timestamp is {skew} s from this node's clock; the window is ±{window} s")]
    Skew { skew: i64, window: i64 },
    #[error("signature does not verify")]
    BadSignature,
    #[error("this signed request was already received")]
    Replayed,
    #[error("the replay guard could not record the signature: {0}")]
    GuardUnavailable(String),
}

impl AuthError {
    /// The wire code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingHeader(_) => "unauthenticated",
            AuthError::BadSigner(_) => "bad_signer",
            AuthError::BadTimestamp(_) => "bad_timestamp",
            AuthError::Skew { .. } => "clock_skew",
            AuthError::BadSignature => "bad_signature",
            AuthError::Replayed => "replayed_request",
            AuthError::GuardUnavailable(_) => "replay_guard_unavailable",
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = match e {
            AuthError::GuardUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// The auth headers of a request, well-formed and inside the skew window, but not yet checked
/// against the body (see [`presented_signer`]).
struct PresentedAuth<'a> {
    signer: PublicKey,
    timestamp: &'a str,
    signature: Vec<u8>,
}

fn presented(
    headers: &HeaderMap,
    now: i64,
    window_secs: i64,
) -> Result<PresentedAuth<'_>, AuthError> {
    let get = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::MissingHeader(name))
    };
    let signer: PublicKey = get(SIGNER_HEADER)?
        .parse()
        .map_err(|e: hallmark_core::keys::KeyError| AuthError::BadSigner(e.to_string()))?;
    let timestamp = get(TIMESTAMP_HEADER)?;
    let t = hallmark_core::time::parse_rfc3339(timestamp)
        .map_err(|e| AuthError::BadTimestamp(e.to_string()))?;
    let skew = t - now;
    if skew.abs() > window_secs {
        return Err(AuthError::Skew {
            skew,
            window: window_secs,
        });
    }
    let signature = B64
        .decode(get(SIGNATURE_HEADER)?)
        .map_err(|_| AuthError::BadSignature)?;
    if signature.len() != 64 {
        return Err(AuthError::BadSignature);
    }
    Ok(PresentedAuth {
        signer,
        timestamp,
        signature,
    })
}

/// The signer a request's headers name, if they are well-formed and the timestamp is inside
/// the window. A cheap check made before a body is read, so an unsigned or stale request is
/// refused without taking its body into memory; [`verify_request`] still checks the
/// signature over the body.
pub fn presented_signer(
    headers: &HeaderMap,
    now: i64,
    window_secs: i64,
) -> Result<PublicKey, AuthError> {
    presented(headers, now, window_secs).map(|p| p.signer)
}

/// Checks a request's signature at time `now` (unix seconds); returns the signer.
pub fn verify_request(
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
    now: i64,
    window_secs: i64,
) -> Result<(PublicKey, Vec<u8>), AuthError> {
    let p = presented(headers, now, window_secs)?;
    p.signer
        .verify(
            &signing_message(method, path, body, p.timestamp),
            &p.signature,
        )
        .map_err(|_| AuthError::BadSignature)?;
    Ok((p.signer, p.signature))
}

/// Remembers signatures seen inside the skew window so a captured request can't be replayed.
/// With a store ([`ReplayGuard::persistent`]) every signature taken is committed before the
/// request is processed, so a restart does not reopen the window.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<Vec<u8>, i64>>,
    store: Option<Store>,
}

impl ReplayGuard {
    /// A guard that also records each signature in `store` (table `seen_signatures`).
    pub fn persistent(store: Store) -> Self {
        Self {
            seen: Mutex::default(),
            store: Some(store),
        }
    }

    /// Records `sig` at `now`; fails if it was seen within the window. A persistent guard
    /// asks only its store (committed before the request is processed); otherwise the
    /// memory map holds them.
    pub async fn check(&self, sig: Vec<u8>, now: i64, window_secs: i64) -> Result<(), AuthError> {
        // Signatures are kept for twice the window: a timestamp that old fails the skew check.
        let horizon = 2 * window_secs;
        if let Some(store) = &self.store {
            // Fail closed: a signature that could not be recorded is refused (and may be sent
            // again).
            return match store.remember_signature(&sig, now, now - horizon).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(AuthError::Replayed),
                Err(e) => Err(AuthError::GuardUnavailable(e.to_string())),
            };
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, t| now - *t <= horizon);
        if seen.insert(sig, now).is_some() {
            return Err(AuthError::Replayed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(h: [(&'static str, String); 3]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in h {
            m.insert(k, HeaderValue::from_str(&v).unwrap());
        }
        m
    }

    #[test]
    fn sign_and_verify() {
        let kp = Keypair::generate();
        let now = hallmark_core::time::now_unix();
        let h = headers(sign_request(&kp, "post", "/v1/x?y=1", b"{}"));
        // The query string is not covered.
        let (who, _) = verify_request(&h, "POST", "/v1/x", b"{}", now, 60).unwrap();
        assert_eq!(who, kp.public());
        assert_eq!(
            verify_request(&h, "POST", "/v1/x", b"{ }", now, 60).unwrap_err(),
            AuthError::BadSignature
        );
        assert_eq!(
            verify_request(&h, "PUT", "/v1/x", b"{}", now, 60).unwrap_err(),
            AuthError::BadSignature
        );
        assert_eq!(
            verify_request(&h, "POST", "/v1/z", b"{}", now, 60).unwrap_err(),
            AuthError::BadSignature
        );
        assert!(matches!(
            verify_request(&h, "POST", "/v1/x", b"{}", now + 120, 60),
            Err(AuthError::Skew { .. })
        ));
        assert_eq!(
            verify_request(&HeaderMap::new(), "POST", "/", b"", now, 60)
                .unwrap_err()
                .code(),
            "unauthenticated"
        );
    }

    #[test]
    fn offsetless_timestamp_is_utc() {
        let kp = Keypair::generate();
        let now = hallmark_core::time::now_unix();
        let ts = hallmark_core::time::format_rfc3339(now)
            .trim_end_matches('Z')
            .to_string();
        let sig = kp.sign(&signing_message("GET", "/a", b"", &ts));
        let h = headers([
            (SIGNER_HEADER, kp.public().to_ss58()),
            (TIMESTAMP_HEADER, ts),
            (SIGNATURE_HEADER, B64.encode(sig)),
        ]);
        assert!(verify_request(&h, "GET", "/a", b"", now, 5).is_ok());
    }

    #[test]
    fn identical_requests_in_one_second_differ() {
        let kp = Keypair::generate();
        let a = sign_request(&kp, "POST", "/v1/rounds", b"{}");
        let b = sign_request(&kp, "POST", "/v1/rounds", b"{}");
        assert_ne!(
            a[2].1, b[2].1,
            "signatures differ, so the replay guard can tell them apart"
        );
    }

    #[tokio::test]
    async fn replay_guard() {
        let g = ReplayGuard::default();
        g.check(vec![1], 100, 60).await.unwrap();
        assert_eq!(g.check(vec![1], 101, 60).await, Err(AuthError::Replayed));
        g.check(vec![2], 101, 60).await.unwrap();
    }

    #[tokio::test]
    async fn persistent_replay_guard_remembers_across_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        let store = Store::open(&path).await.unwrap();
        ReplayGuard::persistent(store.clone())
            .check(vec![7; 64], 100, 60)
            .await
            .unwrap();
        store.close().await;
        // A new process: a new guard over the same store still knows.
        let store = Store::open(&path).await.unwrap();
        let g = ReplayGuard::persistent(store);
        assert_eq!(
            g.check(vec![7; 64], 130, 60).await,
            Err(AuthError::Replayed)
        );
        g.check(vec![8; 64], 130, 60).await.unwrap();
    }
}

/// Authenticates one service's signed POSTs: a valid signature inside the skew window, and a
/// signature the service has not seen before.
#[derive(Debug)]
pub struct PostAuth {
    window_secs: i64,
    replay: ReplayGuard,
}

impl PostAuth {
    /// Accepting timestamps up to `window_secs` away from this node's clock; signatures taken
    /// are recorded in `store` so a restart does not forget them.
    pub fn new(window_secs: i64, store: Store) -> Self {
        Self {
            window_secs,
            replay: ReplayGuard::persistent(store),
        }
    }

    /// The signer of a request with `method` to `path` with `body` (a DELETE, say).
    pub async fn authenticate_method(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<PublicKey, AuthError> {
        let now = hallmark_core::time::now_unix();
        let (signer, sig) = verify_request(headers, method, path, body, now, self.window_secs)?;
        self.replay.check(sig, now, self.window_secs).await?;
        Ok(signer)
    }

    /// The signer of a POST to `path` with `body`.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        path: &str,
        body: &[u8],
    ) -> Result<PublicKey, AuthError> {
        self.authenticate_method(headers, "POST", path, body).await
    }
}

/// A service whose signed POST routes share one [`PostAuth`].
pub trait SignedPosts: Send + Sync + 'static {
    /// The service's authenticator.
    fn post_auth(&self) -> &PostAuth;
}

/// A signed POST: the authenticated signer and the parsed JSON body. An unsigned, badly signed
/// or replayed request is refused (401) before the body is read as JSON.
pub struct SignedJson<T>(pub PublicKey, pub T);

impl<S: SignedPosts, T: DeserializeOwned> FromRequest<Arc<S>> for SignedJson<T> {
    // A body rejection (e.g. 413) stays axum's own; the wire-error middleware shapes it.
    type Rejection = Response;

    async fn from_request(req: Request, service: &Arc<S>) -> Result<Self, Response> {
        let path = match req.extensions().get::<OriginalUri>() {
            Some(u) => u.path().to_owned(),
            None => req.uri().path().to_owned(),
        };
        let headers = req.headers().clone();
        // Unsigned or stale requests are refused before their body is read.
        presented_signer(
            &headers,
            hallmark_core::time::now_unix(),
            service.post_auth().window_secs,
        )
        .map_err(|e| ApiError::from(e).into_response())?;
        let body = Bytes::from_request(req, service)
            .await
            .map_err(IntoResponse::into_response)?;
        let who = service
            .post_auth()
            .authenticate(&headers, &path, &body)
            .await
            .map_err(|e| ApiError::from(e).into_response())?;
        let parsed = parse_json(&body).map_err(IntoResponse::into_response)?;
        Ok(Self(who, parsed))
    }
}
