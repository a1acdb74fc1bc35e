//! The signed statements and response bodies roles exchange.

use std::collections::BTreeMap;

use hallmark_core::{PublicKey, RoundId, RoundInfo, SignedPayload};
use serde::{Deserialize, Serialize};

/// A round of a round lane as the coordinator announces it, signed by the coordinator's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoundAnnouncement {
    /// `{lane}-round-{number:06}`.
    pub round_id: RoundId,
    /// 1-based, per lane.
    pub number: u64,
    pub lane: String,
    /// The round's seed is not chosen by the coordinator: everyone derives it from the
    /// ledger's anchor at this time (the first transaction applied at or after it, and the
    /// log root at its size), which nobody knew when the announcement was signed
    /// ([`round_seed`]).
    pub seed_anchor_ms: i64,
    /// Bound into every submission (provenance).
    pub nonce: String,
    /// The lane's round parameters, as the lane checked them.
    pub params: serde_json::Value,
    pub starts_at_ms: i64,
    pub deadline_ms: i64,
}

/// A round's seed: the first 8 bytes (little-endian) of
/// `SHA-256("hallmark/round-seed/v1" ‖ 0 ‖ round id ‖ 0 ‖ anchor root hex)`.
pub fn round_seed(round_id: &RoundId, anchor_root: &str) -> u64 {
    let mut data = b"hallmark/round-seed/v1\0".to_vec();
    data.extend_from_slice(round_id.as_str().as_bytes());
    data.push(0);
    data.extend_from_slice(anchor_root.as_bytes());
    let d = hallmark_core::sha256(&data);
    let mut first = [0u8; 8];
    first.copy_from_slice(&d.0[..8]);
    u64::from_le_bytes(first)
}

impl RoundAnnouncement {
    /// What the lane's verifier and worker need to know of the round, with the seed derived
    /// from the ledger anchor at `seed_anchor_ms` ([`round_seed`]).
    pub fn info(&self, seed: u64) -> RoundInfo {
        RoundInfo {
            lane: self.lane.clone(),
            round_id: self.round_id.clone(),
            number: self.number,
            seed,
            nonce: self.nonce.clone(),
            starts_at_ms: self.starts_at_ms,
            deadline_ms: self.deadline_ms,
        }
    }
}

impl SignedPayload for RoundAnnouncement {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.round+json";
}

/// What an operator asks the coordinator for: a new round of a lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoundRequest {
    /// A round lane of the registry.
    pub lane: String,
    /// The lane's parameters (checked by the lane).
    pub params: serde_json::Value,
    /// How long workers have, from now.
    pub window_ms: i64,
}

/// A validator's signed scores for one run (one run is one round of one lane).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScoreReport {
    pub run_id: RoundId,
    pub lane: String,
    pub validator_hotkey: PublicKey,
    /// Score per worker, in [0, 1].
    pub scores: BTreeMap<PublicKey, f64>,
    /// Re-scoring a run raises the epoch; epoch e+1 names epoch e's report id.
    #[serde(default)]
    pub epoch: u64,
    /// For epoch > 0: the id (SHA-256 of the canonical envelope) of the previous epoch's report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_report_id: Option<String>,
    /// Roster lanes: the SHA-256 of the canonical JSON of this validator's measurement report
    /// (served at `/v1/consensus/evaluations/{run_id}`); honest validators' hashes are equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_sha256: Option<String>,
}

/// The owner's (coordinator operator's) pick for a round, signed by the coordinator: what
/// validators in `owner` and `shadow` weight mode set, and what divergence is measured against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OwnerPick {
    pub round_id: RoundId,
    pub winner: Option<PublicKey>,
    /// The owner's scores per worker (may be empty).
    #[serde(default)]
    pub scores: BTreeMap<PublicKey, f64>,
}

impl SignedPayload for OwnerPick {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.owner-pick+json";
}

/// What an operator posts to `POST /v1/rounds/{id}/pick`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OwnerPickRequest {
    pub winner: Option<PublicKey>,
    #[serde(default)]
    pub scores: BTreeMap<PublicKey, f64>,
}

/// A validator's decision for a round, signed: the statement its receipt proves.
impl SignedPayload for RoundResult {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.round-result+json";
}

/// A validator's signed divergence summary, served at `GET /v1/consensus/divergence`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DivergenceReport {
    pub validator: PublicKey,
    pub weight_mode: String,
    /// How many most recent runs the summary covers at most.
    pub window: u32,
    pub top_k: usize,
    pub summary: hallmark_consensus::divergence::DivergenceSummary,
    pub runs: Vec<hallmark_consensus::divergence::RunDivergence>,
    pub generated_at: String,
}

impl SignedPayload for DivergenceReport {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.divergence+json";
}

impl SignedPayload for ScoreReport {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.score-report+json";
}

/// One validator's report as another validator used it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UsedReport {
    pub validator: PublicKey,
    pub stake: u64,
    pub report_sha256: String,
    pub scores: BTreeMap<PublicKey, f64>,
}

/// What a validator decided for a round, served at `GET /v1/rounds/{id}/result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoundResult {
    pub run_id: RoundId,
    pub validator: PublicKey,
    pub byzantine: bool,
    pub winner: Option<PublicKey>,
    pub consensus: BTreeMap<PublicKey, f64>,
    pub quorum_met: bool,
    /// Quorum reported but no worker scored above zero: no winner, no weights.
    #[serde(default)]
    pub void: bool,
    pub reporting_stake: u64,
    pub total_stake: u64,
    pub reports: Vec<UsedReport>,
    /// Peers whose report could not be used, with why.
    pub missing: Vec<(PublicKey, String)>,
    /// Whether this validator, by its own scores, agrees with the winner.
    pub agrees: bool,
    /// Witness rejections this validator saw in the round, per code.
    pub rejections: BTreeMap<String, u64>,
    pub weights_tx: Option<String>,
    /// `owner`, `shadow` or `decentralized`.
    #[serde(default)]
    pub weight_mode: String,
    /// The owner's pick, when the coordinator published one.
    #[serde(default)]
    pub owner_pick: Option<PublicKey>,
    /// Whom this validator's weights went to.
    #[serde(default)]
    pub weights_for: Option<PublicKey>,
    /// The score commitment this validator made on the ledger for the run.
    #[serde(default)]
    pub commitment: Option<String>,
    /// Validators caught equivocating in this run (evidence at `/v1/consensus/equivocations`).
    #[serde(default)]
    pub equivocators: Vec<PublicKey>,
    /// A missed round whose winner, signed by peers holding a quorum of stake, this validator
    /// took as its incumbent before deciding (it was cut off or down for rounds before this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caught_up_from: Option<RoundId>,
    /// How the weight rules turned decided rounds into the vector set (decentralized mode):
    /// the rows counted and excluded, class shares, missing classes and the fallback or hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_rules: Option<hallmark_consensus::weights::WeightOutcome>,
}

/// A roster lane's run as the coordinator sealed it after the deadline: every worker whose
/// archive it took, signed by the coordinator. Validators run only members that are also
/// registered and committed those bytes on the ledger before the deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Roster {
    pub run_id: RoundId,
    pub lane: String,
    pub deadline_ms: i64,
    /// By hotkey (SS58 order).
    pub members: Vec<RosterMember>,
}

impl SignedPayload for Roster {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.roster+json";
}

/// One roster member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RosterMember {
    pub hotkey: PublicKey,
    pub submission_id: String,
    pub archive_sha256: String,
    /// The archive's manifest as the lane read it.
    pub manifest: serde_json::Value,
}

/// Response of `POST /v1/runs/{run_id}/submissions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunSubmissionAck {
    pub run_id: RoundId,
    pub submission_id: String,
    pub archive_sha256: String,
    pub manifest: serde_json::Value,
    /// Until when the archive may still be replaced.
    pub deadline_ms: i64,
}

/// A validator's eval report for a run as it serves it at
/// `GET /v1/consensus/evaluations/{run_id}`: the lane's deterministic report, its hash (also
/// in the signed score report), and advisory facts outside the hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EvaluationRecord {
    pub run_id: RoundId,
    pub lane: String,
    pub validator: PublicKey,
    pub report_sha256: String,
    /// The scores the lane measured (before any devnet fault), per listed worker.
    pub scores: BTreeMap<PublicKey, f64>,
    pub report: serde_json::Value,
    pub advisory: serde_json::Value,
}

/// Response of `POST /v1/{lane}/witness`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SubmissionAck {
    pub accepted: bool,
    /// False when this worker already had an accepted submission for the same item.
    pub first: bool,
    pub latency_ms: i64,
    pub verdict: hallmark_core::Verdict,
}
