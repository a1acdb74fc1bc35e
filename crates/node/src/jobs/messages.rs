//! What clients, workers, validators and the coordinator exchange about proven jobs.

use hallmark_consensus::{JobResult, JobVote, VoteCertificate, VoteEquivocation};
use std::sync::Arc;

use hallmark_core::{Envelope, PublicKey, Signed, SignedPayload};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lanes::{DynJobLane, LaneRegistry};

/// A client's signed request for a job. Its digest is the job id, so neither the coordinator
/// nor anyone else can change what was asked without changing which job it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobRequest {
    /// A job lane of the registry (`stark`, …).
    pub lane: String,
    /// What is asked, in the lane's own spec format (checked by the lane).
    pub spec: Value,
    /// Makes two requests for the same job distinct (hex).
    pub nonce: String,
    pub created_ms: i64,
}

impl SignedPayload for JobRequest {
    const PAYLOAD_TYPE: &'static str = hallmark_consensus::JOB_REQUEST_TYPE;
}

/// Why a job request is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobRequestError {
    #[error("bad signature: {0}")]
    Signature(String),
    #[error("lane {lane:?} takes no jobs here: expected one of {known:?}")]
    Lane {
        lane: String,
        known: Vec<&'static str>,
    },
    #[error("{0}")]
    Spec(#[from] hallmark_core::SpecError),
    #[error("nonce must be 1..=64 hex digits")]
    Nonce,
}

impl JobRequestError {
    /// The wire code.
    pub fn code(&self) -> &'static str {
        match self {
            JobRequestError::Signature(_) => "bad_signature",
            JobRequestError::Lane { .. } => "unknown_lane",
            JobRequestError::Spec(e) => e.code(),
            JobRequestError::Nonce => "invalid_nonce",
        }
    }
}

/// A checked job request: who asked, for what, under which id, in which lane.
#[derive(Clone)]
pub struct CheckedRequest {
    pub job_id: String,
    pub client: PublicKey,
    pub request: JobRequest,
    /// The spec in the lane's normal form.
    pub spec: Value,
    pub lane: Arc<dyn DynJobLane>,
}

/// The id of the job a signed request asks for: `job-` and 24 hex digits of the SHA-256 of
/// the canonical envelope.
pub fn job_id_of(signed: &Signed<JobRequest>) -> Result<String, JobRequestError> {
    hallmark_consensus::job_id_of_envelope(signed.envelope())
        .map_err(|e| JobRequestError::Signature(e.to_string()))
}

/// Checks a request's signature, lane, spec (by the lane's own limits) and nonce, and
/// derives its job id.
pub fn check_request(
    lanes: &LaneRegistry,
    signed: &Signed<JobRequest>,
) -> Result<CheckedRequest, JobRequestError> {
    let verified = signed
        .verify()
        .map_err(|e| JobRequestError::Signature(e.to_string()))?;
    let request = verified.payload;
    let Some(lane) = lanes.job_lane(&request.lane).cloned() else {
        return Err(JobRequestError::Lane {
            lane: request.lane,
            known: lanes.job_lane_names(),
        });
    };
    if !hallmark_consensus::is_job_nonce(&request.nonce) {
        return Err(JobRequestError::Nonce);
    }
    let spec = lane.check_spec(&request.spec)?;
    Ok(CheckedRequest {
        job_id: job_id_of(signed)?,
        client: verified.signer,
        request,
        spec,
        lane,
    })
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker holds it under a lease.
    Assigned,
    /// The worker's proof is in; validators are voting.
    Proven,
    /// At least 2/3 of validator stake voted the proof valid.
    Approved,
    /// More than 1/3 of validator stake voted it invalid.
    Rejected,
}

impl JobStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Assigned => "assigned",
            JobStatus::Proven => "proven",
            JobStatus::Approved => "approved",
            JobStatus::Rejected => "rejected",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            JobStatus::Queued,
            JobStatus::Assigned,
            JobStatus::Proven,
            JobStatus::Approved,
            JobStatus::Rejected,
        ]
        .into_iter()
        .find(|j| j.as_str() == s)
    }

    /// Whether the job is decided.
    pub fn is_settled(self) -> bool {
        matches!(self, JobStatus::Approved | JobStatus::Rejected)
    }
}

/// One step in a job's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobEvent {
    pub event: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    pub at_ms: i64,
}

/// A job as the coordinator serves it (`GET /v1/jobs/{id}`): everything needed to re-check
/// it — the client's signed request, the worker's signed result, every vote, the certificate
/// and equivocation evidence — plus its lifecycle timestamps.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobView {
    pub job_id: String,
    pub lane: String,
    /// The spec as the lane checked it.
    pub spec: Value,
    /// The lane's one-line description of the spec.
    pub summary: String,
    pub client: PublicKey,
    pub status: JobStatus,
    pub worker: Option<PublicKey>,
    /// How many times it was handed to a worker.
    pub attempts: u64,
    pub lease_until_ms: Option<i64>,
    pub request: Envelope,
    pub result: Option<Envelope>,
    /// The lane's digest of the artifact the worker handed in.
    pub proof_hash: Option<String>,
    pub proof_bytes: Option<u64>,
    pub queued_ms: i64,
    pub assigned_ms: Option<i64>,
    pub proven_ms: Option<i64>,
    pub settled_ms: Option<i64>,
    pub votes_valid_stake: u64,
    pub votes_invalid_stake: u64,
    pub total_stake: u64,
    #[serde(default)]
    pub votes: Vec<Signed<JobVote>>,
    pub certificate: Option<VoteCertificate>,
    #[serde(default)]
    pub equivocations: Vec<VoteEquivocation>,
    /// The ledger transaction that settled it (and applied any slashing).
    pub settle_tx: Option<String>,
    #[serde(default)]
    pub events: Vec<JobEvent>,
}

impl JobView {
    /// The client's request, signature unchecked.
    pub fn signed_request(&self) -> Signed<JobRequest> {
        Signed::from_envelope(self.request.clone())
    }

    /// The worker's result, signature unchecked.
    pub fn signed_result(&self) -> Option<Signed<JobResult>> {
        self.result.clone().map(Signed::from_envelope)
    }
}

/// `POST /v1/jobs/claim` (worker-signed): which lane's work the worker takes.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClaimRequest {
    pub lane: String,
}

/// The answer to a claim: a job to prove under a lease, or none queued.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClaimResponse {
    pub job: Option<JobView>,
}

/// `POST /v1/jobs/{id}/proof` (worker-signed): the signed result and the artifact it names.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProofUpload {
    pub result: Envelope,
    /// The artifact (for stark, the proof package), standard base64.
    pub package: String,
}

/// The coordinator's answer to a vote.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VoteAck {
    pub job_id: String,
    pub status: JobStatus,
    pub votes_valid_stake: u64,
    pub votes_invalid_stake: u64,
    pub total_stake: u64,
}
