//! Typed errors of the node's own work, each with a stable [`code`](TaskError::code):
//! [`TaskError`] for the background pipeline work of every role (rounds, reports, gossip,
//! votes, job execution), [`SettingError`] for a setting a role refuses to start with. (HTTP
//! handlers answer with [`crate::api::ApiError`]; start-up with [`crate::run::NodeError`].)

use hallmark_core::dsse::DsseError;

use crate::client::ClientError;

/// Why a step of a role's background work did not complete. The loop that ran it logs it
/// (with its code) and tries again on its next pass; nothing half-done is acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The node's own store failed.
    #[error("store: {0}")]
    Store(#[from] hallmark_store::StoreError),
    /// The ledger refused or could not be reached.
    #[error("ledger: {0}")]
    Ledger(#[from] hallmark_ledger::LedgerError),
    /// Another node (coordinator, peer) could not be reached or refused.
    #[error("{what}: {source}")]
    Remote {
        what: String,
        #[source]
        source: Box<ClientError>,
    },
    /// Signing or reading one of our own signed statements failed.
    #[error("signing: {0}")]
    Sign(#[from] DsseError),
    /// A statement from someone else does not check (signature, signer, subject, shape).
    #[error("refused: {0}")]
    Refused(String),
    /// Something this node stored earlier does not read back.
    #[error("stored {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// Not there yet (a peer's report, a commitment): try again later.
    #[error("not yet: {0}")]
    NotYet(String),
    /// A lane could not derive, accept or execute what it was given.
    #[error("lane: {0}")]
    Lane(String),
    /// A blocking task panicked or was cancelled.
    #[error("task: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// JSON (de)serialisation of our own values failed.
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
    /// Canonical JSON of our own values failed.
    #[error("canonical JSON: {0}")]
    Canonical(#[from] hallmark_core::canonical::CanonicalError),
    /// Scores that cannot be committed to (a non-finite score).
    #[error("scores: {0}")]
    Scores(#[from] hallmark_consensus::commitment::CommitmentError),
}

impl TaskError {
    /// The stable snake_case code.
    pub fn code(&self) -> &str {
        match self {
            TaskError::Store(_) => "store_failed",
            TaskError::Ledger(e) => e.code(),
            TaskError::Remote { source, .. } => match **source {
                ClientError::Api { .. } => "remote_refused",
                _ => "remote_unreachable",
            },
            TaskError::Sign(_) => "signing_failed",
            TaskError::Refused(_) => "statement_refused",
            TaskError::Corrupt { .. } => "corrupt_store",
            TaskError::NotYet(_) => "not_yet",
            TaskError::Lane(_) => "lane_failed",
            TaskError::Join(_) => "task_failed",
            TaskError::Json(_) | TaskError::Canonical(_) => "encoding_failed",
            TaskError::Scores(_) => "invalid_scores",
        }
    }

    /// A remote call's failure, saying what was being done.
    pub fn remote(what: impl Into<String>) -> impl FnOnce(ClientError) -> Self {
        let what = what.into();
        move |source| TaskError::Remote {
            what,
            source: Box::new(source),
        }
    }

    /// The HTTP status the remote answered with, if it answered.
    pub fn remote_status(&self) -> Option<u16> {
        match self {
            TaskError::Remote { source, .. } => source.status(),
            _ => None,
        }
    }
}

/// A setting a role refuses to start with: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct SettingError {
    /// The setting's path in the TOML (`validator.quorum`, `coordinator.jobs.lease_ms`, …).
    pub setting: String,
    pub message: String,
}

impl SettingError {
    /// The error for `setting`.
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            message: message.into(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        "invalid_setting"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(TaskError::Refused("x".into()).code(), "statement_refused");
        assert_eq!(TaskError::NotYet("x".into()).code(), "not_yet");
        let e = TaskError::Corrupt {
            what: "report",
            detail: "bad".into(),
        };
        assert_eq!(e.code(), "corrupt_store");
        assert_eq!(e.to_string(), "stored report: bad");
        let s = SettingError::new("validator.quorum", "2/1 is not a share");
        assert_eq!(s.to_string(), "validator.quorum: 2/1 is not a share");
        assert_eq!(s.code(), "invalid_setting");
    }
}
