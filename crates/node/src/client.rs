//! The HTTP client every role uses: JSON in and out, wire errors decoded, requests signed.

use std::time::Duration;

use hallmark_core::{ErrorBody, Keypair, WireError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::sign_request;

/// Why a call to another node failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url}: HTTP {status}: {error}")]
    Api {
        url: String,
        status: u16,
        error: WireError,
    },
    #[error("{url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: response is not the expected JSON: {message}")]
    Decode { url: String, message: String },
}

impl ClientError {
    /// The wire code if the server answered with a structured error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { error, .. } => Some(&error.code),
            _ => None,
        }
    }

    /// Whether the call gave up waiting (connect or whole-request timeout).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Transport { source, .. } if source.is_timeout())
    }

    /// The HTTP status if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client for one node's base URL, optionally signing requests with a key.
#[derive(Debug, Clone)]
pub struct NodeClient {
    http: reqwest::Client,
    base: String,
    key: Option<Keypair>,
}

impl NodeClient {
    /// A client for `base` (e.g. `http://127.0.0.1:7000`).
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            key: None,
        }
    }

    /// A client for another base URL sharing this one's connection pool (and signing key), so
    /// a node talking to many peers round after round keeps one pool instead of one per call.
    pub fn at(&self, base: &str) -> Self {
        Self {
            http: self.http.clone(),
            base: base.trim_end_matches('/').to_string(),
            key: self.key.clone(),
        }
    }

    /// The same client, signing every request with `key`.
    pub fn signed_by(mut self, key: Keypair) -> Self {
        self.key = Some(key);
        self
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET a JSON document.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let bytes = self.get_bytes(path).await?;
        self.decode(path, &bytes)
    }

    /// GET the raw response body (for byte-exact archives).
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let mut req = self.http.get(self.url(path));
        if let Some(key) = &self.key {
            for (k, v) in sign_request(key, "GET", path, b"") {
                req = req.header(k, v);
            }
        }
        self.send(path, req).await
    }

    /// GET the raw response body, refusing one larger than `max` bytes as it arrives (so a
    /// hostile server cannot make the caller hold more than that).
    pub async fn get_bytes_capped(&self, path: &str, max: usize) -> Result<Vec<u8>, ClientError> {
        let url = self.url(path);
        let too_large = |url: &str| ClientError::Decode {
            url: url.to_string(),
            message: format!("the response is larger than {max} bytes"),
        };
        let mut resp =
            self.http
                .get(&url)
                .send()
                .await
                .map_err(|source| ClientError::Transport {
                    url: url.clone(),
                    source,
                })?;
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_large(&url));
        }
        let status = resp.status();
        let mut out = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?
        {
            if out.len() + chunk.len() > max {
                return Err(too_large(&url));
            }
            out.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(out);
        }
        let error = serde_json::from_slice::<ErrorBody>(&out)
            .map(|b| b.error)
            .unwrap_or_else(|_| WireError::new("unstructured_error", "an error without a body"));
        Err(ClientError::Api {
            url,
            status: status.as_u16(),
            error,
        })
    }

    /// POST a JSON body; decode a JSON answer.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Decode {
            url: self.url(path),
            message: e.to_string(),
        })?;
        let out = self.post_raw(path, bytes).await?;
        self.decode(path, &out)
    }

    /// POST raw bytes as JSON; return the raw answer.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        self.post_typed(path, body, "application/json").await
    }

    /// POST bytes of another content type (an archive); decode a JSON answer.
    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<T, ClientError> {
        let out = self.post_typed(path, body, content_type).await?;
        self.decode(path, &out)
    }

    async fn post_typed(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", content_type);
        if let Some(key) = &self.key {
            for (k, v) in sign_request(key, "POST", path, &body) {
                req = req.header(k, v);
            }
        }
        self.send(path, req.body(body)).await
    }

    /// DELETE (signed when the client has a key); decode a JSON answer.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let mut req = self.http.delete(self.url(path));
        if let Some(key) = &self.key {
            for (k, v) in sign_request(key, "DELETE", path, b"") {
                req = req.header(k, v);
            }
        }
        let bytes = self.send(path, req).await?;
        self.decode(path, &bytes)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn decode<T: DeserializeOwned>(&self, path: &str, bytes: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(bytes).map_err(|e| ClientError::Decode {
            url: self.url(path),
            message: e.to_string(),
        })
    }

    async fn send(&self, path: &str, req: reqwest::RequestBuilder) -> Result<Vec<u8>, ClientError> {
        let url = self.url(path);
        let resp = req.send().await.map_err(|source| ClientError::Transport {
            url: url.clone(),
            source,
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let error = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|b| b.error)
            .unwrap_or_else(|_| {
                WireError::new(
                    "unstructured_error",
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(200)
                        .collect::<String>(),
                )
            });
        Err(ClientError::Api {
            url,
            status: status.as_u16(),
            error,
        })
    }
}
