//! The pipeline shapes a lane plugs into.
//!
//! A lane is one kind of work with its own evidence and its own deterministic verifier. Job
//! lanes ([`JobLane`]) take a client's signed spec, a worker's artifact made by an
//! [`Executor`], and a verdict from every validator; round lanes ([`RoundLane`]) take a round
//! announced from a seed, workers' signed submissions (made by a [`RoundWorker`]) and each
//! validator's first-hand scores. The pipelines around them (job board, voter, certificate,
//! settlement; round intake, report, gossip, decision) know a lane only through these traits,
//! so adding a lane touches no pipeline code.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::dsse::Envelope;
use crate::ids::RoundId;
use crate::keys::{Keypair, PublicKey};
use crate::verdict::Verdict;

/// Which pipeline a lane runs in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LaneShape {
    /// A client's request → a worker's artifact → validators' votes → a certificate.
    Job,
    /// A round announced from a seed → workers' submissions → validators' reports → weights.
    Round,
}

impl LaneShape {
    /// The wire name (`job` or `round`).
    pub fn as_str(self) -> &'static str {
        match self {
            LaneShape::Job => "job",
            LaneShape::Round => "round",
        }
    }
}

/// Why a job spec is not acceptable. Each variant has a stable [`SpecError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The spec does not parse as the lane's spec type.
    #[error("malformed spec: {0}")]
    Malformed(String),
    /// The spec parses but asks for something outside the lane's limits.
    #[error("spec out of bounds: {0}")]
    OutOfBounds(String),
}

impl SpecError {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            SpecError::Malformed(_) => "malformed_spec",
            SpecError::OutOfBounds(_) => "invalid_spec",
        }
    }
}

/// Why a worker could not produce an artifact. Each variant has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecuteError {
    /// The spec handed to the executor is not one it can run.
    #[error("spec: {0}")]
    Spec(#[from] SpecError),
    /// The work itself failed (prover error, build failure, …).
    #[error("execution failed: {0}")]
    Failed(String),
}

impl ExecuteError {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ExecuteError::Spec(e) => e.code(),
            ExecuteError::Failed(_) => "execution_failed",
        }
    }
}

/// A job lane's validator side: what a spec may ask for, how an artifact is named, and the
/// pure verifier every validator runs first-hand.
///
/// `verify` must be a deterministic function of the context, the spec and the artifact bytes:
/// no I/O, no clock (time, trust roots and policy come in the context), so any auditor can
/// replay a vote.
pub trait JobLane: Send + Sync + 'static {
    /// What a client asks for (canonical JSON on the wire).
    type Spec: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// Everything the verifier needs besides spec and artifact: time, trust roots, policy.
    type Context: Send + Sync + 'static;

    /// The lane's name on the wire (`stark`, `tee`, …).
    fn name(&self) -> &'static str;
    /// The names of the checks `verify` runs, in order (what `hallmark lanes` lists).
    fn check_names(&self) -> &'static [&'static str];
    /// Refuses a spec outside the lane's limits.
    fn check_spec(&self, spec: &Self::Spec) -> Result<(), SpecError>;
    /// A short human description of a spec for logs and the CLI.
    fn describe(&self, spec: &Self::Spec) -> String;
    /// The largest artifact a worker may hand in, bytes.
    fn max_artifact_bytes(&self) -> usize;
    /// The digest a worker signs for its artifact (lowercase hex).
    fn artifact_digest(&self, artifact: &[u8]) -> String;
    /// Whether a settled job's certificate goes to the ledger (payment to the worker,
    /// slashing of a rejected worker and of dissenters). A lane whose jobs are decided by the
    /// certificate alone (an attestation, whose subject is not a staked worker) says no.
    fn settles_on_ledger(&self) -> bool {
        true
    }
    /// How long a worker may hold a job of this lane before the board presumes it dead and
    /// queues the job again, ms (`None`: the board's own lease). A lane whose work can run
    /// long (a sandboxed build under a wall-clock limit) asks for at least that long.
    fn lease_ms(&self) -> Option<u64> {
        None
    }
    /// Checks an artifact against the spec; every check is recorded in the verdict.
    fn verify(&self, ctx: &Self::Context, spec: &Self::Spec, artifact: &[u8]) -> Verdict;
    /// A known-answer self-test of the verifier: real evidence it must accept (captured
    /// quotes, tokens, wasm, read from `evidence`, a directory laid out as the project's test
    /// data) and defects it must reject, each a check of the verdict. A node runs it once at
    /// start and serves the outcome, so launch readiness is measured on the running verifier.
    /// `None`: the lane ships no self-test (readiness names it).
    fn self_test(&self, _evidence: Option<&std::path::Path>) -> Option<Verdict> {
        None
    }
}

/// A job lane's worker side: does the work a spec asks for and returns the artifact. Unlike a
/// verifier it may do I/O (a GPU, a sandbox, a network build).
pub trait Executor: Send + Sync + 'static {
    /// The spec type of the lane it executes for.
    type Spec: DeserializeOwned + Send + Sync + 'static;

    /// The lane it executes for.
    fn lane(&self) -> &'static str;
    /// Which backend does the work (`cpu-simd`, `gpu`, …), for status pages.
    fn backend(&self) -> String;
    /// Runs the job and returns the artifact bytes.
    fn execute(&self, spec: &Self::Spec) -> Result<Vec<u8>, ExecuteError>;
}

/// What every party knows about a round from its signed announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoundInfo {
    pub lane: String,
    pub round_id: RoundId,
    pub number: u64,
    /// Everything the round's work derives from.
    pub seed: u64,
    /// Bound into every submission (provenance).
    pub nonce: String,
    pub starts_at_ms: i64,
    pub deadline_ms: i64,
}

/// How a submission reached a validator: who sent it (the signed request's key) and when, by
/// the validator's own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub received_ms: i64,
    pub sender: PublicKey,
}

/// A submission a round lane accepted, as the pipeline stores it and hands it back to the
/// lane for scoring. The first accepted submission per (worker, item) stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoundRecord {
    pub worker: PublicKey,
    /// What the submission answers within the round (sat: the instance's hash).
    pub item: String,
    pub received_ms: i64,
    /// `received_ms` less the round's start.
    pub latency_ms: i64,
}

/// How a round lane's submissions reach validators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoundIntake {
    /// Workers push signed submissions to every validator during the round
    /// (`POST /v1/{lane}/witness`); the lane's `accept` checks each (sat).
    Pushed,
    /// Workers commit an archive's hash on the ledger and upload the archive to the
    /// coordinator, which publishes a signed roster after the deadline; every validator runs
    /// every admitted member itself (the lane's `measure`; eval).
    Roster,
}

/// A roster member a validator admitted: its archive, whose bytes hash to the roster's entry
/// and to the worker's ledger commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub worker: PublicKey,
    pub submission_id: String,
    pub archive_sha256: String,
    pub archive: Vec<u8>,
}

/// A roster member a validator refused before running it, with the reason's code
/// (`archive_hash_mismatch`, `not_registered`, `no_commitment`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RosterRefusal {
    pub worker: PublicKey,
    pub submission_id: String,
    pub code: String,
    pub detail: String,
}

/// Everything a roster lane measures from, besides the round: the signed roster's hash, the
/// ledger log root fixed after the deadline (the entropy nobody could predict), and the
/// members as admitted or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRun {
    pub roster_sha256: String,
    /// The ledger log's size and root at the anchor (lowercase hex).
    pub anchor_size: u64,
    pub anchor_root: String,
    pub admitted: Vec<RosterEntry>,
    pub refused: Vec<RosterRefusal>,
}

/// What a roster lane measured: the scores that go into the round pipeline, the report every
/// honest validator produces byte for byte (hashed into the signed score report), and
/// advisory facts (wall time) kept out of the hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub scores: BTreeMap<PublicKey, f64>,
    pub report: serde_json::Value,
    pub advisory: serde_json::Value,
}

/// A round lane's validator side: parameters, the round every party derives from the
/// announcement, the first-hand check of one signed submission, and scoring.
///
/// `accept` and `score` must be deterministic functions of their inputs (the arrival time is
/// the validator's measurement, passed in), so a validator's scores can be replayed from its
/// records.
pub trait RoundLane: Send + Sync + 'static {
    /// What an operator asks for in a round (canonical JSON in the announcement).
    type Params: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// The round as regenerated from the announcement (sat: every instance).
    type Round: Send + Sync + 'static;

    /// The lane's name on the wire (`sat`, `eval`, …).
    fn name(&self) -> &'static str;
    /// The names of the checks `accept` runs, in order.
    fn check_names(&self) -> &'static [&'static str];
    /// Refuses parameters outside the lane's limits.
    fn check_params(&self, params: &Self::Params) -> Result<(), SpecError>;
    /// The largest submission body a validator reads, bytes.
    fn max_submission_bytes(&self) -> usize;
    /// Regenerates the round from its announcement.
    fn derive_round(
        &self,
        info: &RoundInfo,
        params: &Self::Params,
    ) -> Result<Self::Round, SpecError>;
    /// The round a signed submission names (read, signature unchecked, before acceptance so
    /// the pipeline can load that round); `None` when it does not say.
    fn submission_round(&self, submission: &Envelope) -> Option<RoundId>;
    /// Checks one signed submission first-hand (its signature included); an accepted one
    /// yields the record scoring reads.
    fn accept(
        &self,
        info: &RoundInfo,
        round: &Self::Round,
        arrival: &Arrival,
        submission: &Envelope,
    ) -> (Verdict, Option<RoundRecord>);
    /// How submissions reach validators (pushed witnesses unless the lane says otherwise).
    fn intake(&self) -> RoundIntake {
        RoundIntake::Pushed
    }
    /// A roster lane's check of an uploaded archive (what the coordinator records as its
    /// manifest); pushed lanes take no archives.
    fn check_submission(&self, _archive: &[u8]) -> Result<serde_json::Value, SpecError> {
        Err(SpecError::Malformed(format!(
            "lane {} takes pushed submissions, not archives",
            self.name()
        )))
    }
    /// A roster lane's first-hand measurement of every admitted member; must be a
    /// deterministic function of its inputs so honest validators' reports are identical.
    /// Lanes with pushed submissions never get here.
    fn measure(
        &self,
        _info: &RoundInfo,
        _round: &Self::Round,
        _run: &RosterRun,
        _workers: &[PublicKey],
    ) -> Result<Measurement, SpecError> {
        Err(SpecError::Malformed(format!(
            "lane {} takes pushed submissions, not a roster",
            self.name()
        )))
    }
    /// Every listed worker's score in `[0, 1]` from this validator's own records.
    fn score(
        &self,
        info: &RoundInfo,
        round: &Self::Round,
        records: &[RoundRecord],
        workers: &[PublicKey],
    ) -> BTreeMap<PublicKey, f64>;
    /// A known-answer self-test of the verifier: real evidence it must accept (captured
    /// quotes, tokens, wasm, read from `evidence`, a directory laid out as the project's test
    /// data) and defects it must reject, each a check of the verdict. A node runs it once at
    /// start and serves the outcome, so launch readiness is measured on the running verifier.
    /// `None`: the lane ships no self-test (readiness names it).
    fn self_test(&self, _evidence: Option<&std::path::Path>) -> Option<Verdict> {
        None
    }
}

/// A round lane's worker side: does a round's work and hands each signed submission to
/// `submit` as soon as it is ready (earlier submissions score better in timed lanes).
pub trait RoundWorker: Send + Sync + 'static {
    /// The lane whose rounds it works.
    type Lane: RoundLane;

    /// Works `round`, signing with `key`.
    fn work(
        &self,
        info: &RoundInfo,
        round: &<Self::Lane as RoundLane>::Round,
        key: &Keypair,
        submit: &mut dyn FnMut(Envelope),
    ) -> Result<(), ExecuteError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(SpecError::Malformed("x".into()).code(), "malformed_spec");
        assert_eq!(SpecError::OutOfBounds("x".into()).code(), "invalid_spec");
        assert_eq!(
            ExecuteError::from(SpecError::OutOfBounds("x".into())).code(),
            "invalid_spec"
        );
        assert_eq!(ExecuteError::Failed("x".into()).code(), "execution_failed");
        assert_eq!(LaneShape::Job.as_str(), "job");
        assert_eq!(
            serde_json::to_string(&LaneShape::Round).unwrap(),
            "\"round\""
        );
    }
}
