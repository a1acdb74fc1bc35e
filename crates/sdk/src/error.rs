//! The SDK's errors: one enum, each carrying what a caller needs to act on it.

use hallmark_node::ClientError;

/// Why an SDK call failed.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The node answered with a structured error: its HTTP status and wire `code`.
    #[error("{url}: HTTP {status} {code}: {message}")]
    Api {
        url: String,
        status: u16,
        code: String,
        message: String,
    },
    /// The node could not be reached or the connection broke (retried before this).
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
    /// The node answered something that is not the expected document.
    #[error("{url}: unexpected answer: {message}")]
    Decode { url: String, message: String },
    /// The ledger refused a transaction (its code, e.g. `insufficient_balance`).
    #[error("ledger refused: {code}: {message}")]
    Ledger { code: String, message: String },
    /// Refused before sending: the request breaks a rule the node would refuse it for (the
    /// same code the node would answer).
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    /// A local check failed: the named check of a proof or receipt.
    #[error("verification failed at {check}: {detail}")]
    Verification { check: String, detail: String },
    /// Waiting for something ran out of time.
    #[error("timed out after {secs} s waiting for {what}")]
    Timeout { what: String, secs: u64 },
    /// A call the client cannot make as configured (no key, bad endpoints, bad input).
    #[error("{0}")]
    Usage(String),
}

impl SdkError {
    /// The server's (or the check's) stable code, when there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            SdkError::Api { code, .. }
            | SdkError::Ledger { code, .. }
            | SdkError::Refused { code, .. } => Some(code),
            SdkError::Verification { check, .. } => Some(check),
            _ => None,
        }
    }

    /// Whether trying again later may succeed: the node was unreachable or busy.
    pub fn is_transient(&self) -> bool {
        match self {
            SdkError::Transport { .. } => true,
            SdkError::Api { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            _ => false,
        }
    }
}

impl From<ClientError> for SdkError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Api { url, status, error } => SdkError::Api {
                url,
                status,
                code: error.code,
                message: error.message,
            },
            ClientError::Transport { url, source } => SdkError::Transport {
                url,
                message: source.to_string(),
            },
            ClientError::Decode { url, message } => SdkError::Decode { url, message },
        }
    }
}

impl From<hallmark_ledger::LedgerError> for SdkError {
    fn from(e: hallmark_ledger::LedgerError) -> Self {
        SdkError::Ledger {
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

impl From<serde_json::Error> for SdkError {
    fn from(e: serde_json::Error) -> Self {
        SdkError::Usage(format!("JSON: {e}"))
    }
}

impl From<hallmark_core::dsse::DsseError> for SdkError {
    fn from(e: hallmark_core::dsse::DsseError) -> Self {
        SdkError::Usage(format!("signing: {e}"))
    }
}
