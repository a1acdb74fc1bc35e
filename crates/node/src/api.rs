//! Wire errors and request-body parsing shared by every service.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hallmark_core::{ErrorBody, WireError};
use serde::de::DeserializeOwned;

/// An error response: a status and a structured wire error.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: WireError,
}

impl ApiError {
    /// Any status with a code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            error: WireError::new(code, message),
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 409 with a code: the request clashes with what is already there.
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422 with a code: well-formed, but a check refused it.
    pub fn unprocessable(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500: something on our side failed; the detail is logged, not leaked.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the node failed to complete the request; see its log",
        )
    }

    /// Attaches structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.error.details = details;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.error })).into_response()
    }
}

impl From<hallmark_store::StoreError> for ApiError {
    fn from(e: hallmark_store::StoreError) -> Self {
        match e {
            hallmark_store::StoreError::Conflict(m) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", m)
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<hallmark_ledger::LedgerError> for ApiError {
    fn from(e: hallmark_ledger::LedgerError) -> Self {
        use hallmark_ledger::LedgerError as L;
        let status = match &e {
            L::BadSignature(_) => StatusCode::UNAUTHORIZED,
            L::Unauthorized(_) | L::NotRegistered(_) => StatusCode::FORBIDDEN,
            L::AlreadyRegistered(_)
            | L::StaleNonce { .. }
            | L::AlreadyCommitted { .. }
            | L::Equivocation { .. }
            | L::EpochClosed(_)
            | L::AlreadySettled(_)
            | L::ArchiveTaken { .. }
            | L::AlreadySlashed { .. }
            | L::StakeLocked { .. }
            | L::PaymentReplayed { .. } => StatusCode::CONFLICT,
            L::NotFound(_) | L::EpochOpen { .. } => StatusCode::NOT_FOUND,
            L::Store(_) => return ApiError::internal(e),
            L::Rejected { code, .. } if code == "not_found" || code == "epoch_open" => {
                StatusCode::NOT_FOUND
            }
            // A full mempool is back-pressure, not a bad transaction: retry later.
            L::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            L::Rejected { code, .. } if code == "mempool_full" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// A body that could not be read (over the route's limit, or cut off), as a wire error.
pub fn body_rejection(r: axum::extract::rejection::BytesRejection) -> ApiError {
    let status = r.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        _ => "bad_body",
    };
    ApiError::new(status, code, r.body_text())
}

/// Parses a JSON body, turning any failure into a 400 `invalid_json` with the parser's words.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("request body is not the expected JSON: {e}"),
        )
    })
}

/// Middleware: any error response that isn't already a wire error (axum's own 404, 405, 413,
/// …) is rewritten into one, so every failure a caller sees has the same shape.
pub async fn wire_errors(req: Request<Body>, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::BAD_REQUEST => "bad_request",
        s if s.is_client_error() => "client_error",
        _ => "internal",
    };
    let message = status
        .canonical_reason()
        .unwrap_or("request failed")
        .to_string();
    ApiError::new(status, code, message).into_response()
}

/// The response to `GET /v1/health`.
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_refusals_map_to_statuses() {
        let full = hallmark_ledger::LedgerError::Rejected {
            code: "mempool_full".into(),
            message: "10000 waiting".into(),
        };
        assert_eq!(ApiError::from(full).status, StatusCode::SERVICE_UNAVAILABLE);
        let other = hallmark_ledger::LedgerError::Rejected {
            code: "stale_nonce".into(),
            message: "x".into(),
        };
        assert_eq!(
            ApiError::from(other).status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
