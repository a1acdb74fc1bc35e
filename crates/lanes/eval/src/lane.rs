//! The eval lane in the round pipeline: a [`RoundLane`] whose submissions arrive as a signed
//! roster of hash-pinned archives ([`RoundIntake::Roster`]), measured first-hand by every
//! validator.

use std::sync::Arc;

use hallmark_core::{
    Arrival, Envelope, Measurement, PublicKey, RosterRun, RoundId, RoundInfo, RoundIntake,
    RoundLane, RoundRecord, SpecError, Verdict, VerdictBuilder,
};

use crate::measure::{Grader, MeasureError};
use crate::samples;
use crate::tasks::EvalParams;

/// The checks a validator runs on a run, in order (the first four are the node's, before
/// the lane sees an archive).
pub const CHECKS: &[&str] = &[
    "roster_signature",
    "archive_hash_mismatch",
    "registered",
    "ledger_commitment",
    "archive_format",
    "instantiate",
    "run",
    "grade",
];

/// The eval lane.
pub struct EvalLane {
    reference: Arc<Vec<u8>>,
}

impl EvalLane {
    /// The lane with its built-in reference module.
    pub fn new() -> Result<Self, MeasureError> {
        let reference = samples::reference_wasm().map_err(|e| MeasureError(e.to_string()))?;
        Ok(Self {
            reference: Arc::new(reference),
        })
    }

    /// The reference module's wasm bytes.
    pub fn reference(&self) -> &[u8] {
        &self.reference
    }
}

/// A derived eval round: the grader for its parameters.
pub struct EvalRound {
    pub grader: Grader,
}

impl RoundLane for EvalLane {
    type Params = EvalParams;
    type Round = EvalRound;

    fn name(&self) -> &'static str {
        "eval"
    }

    fn check_names(&self) -> &'static [&'static str] {
        CHECKS
    }

    fn check_params(&self, params: &EvalParams) -> Result<(), SpecError> {
        params.check()
    }

    fn max_submission_bytes(&self) -> usize {
        crate::archive::MAX_ARCHIVE_BYTES
    }

    fn derive_round(&self, _info: &RoundInfo, params: &EvalParams) -> Result<EvalRound, SpecError> {
        params.check()?;
        let grader = Grader::new(*params, &self.reference)
            .map_err(|e| SpecError::Malformed(e.to_string()))?;
        Ok(EvalRound { grader })
    }

    fn submission_round(&self, _submission: &Envelope) -> Option<RoundId> {
        None
    }

    fn accept(
        &self,
        _info: &RoundInfo,
        _round: &EvalRound,
        _arrival: &Arrival,
        _submission: &Envelope,
    ) -> (Verdict, Option<RoundRecord>) {
        let mut v = VerdictBuilder::new("eval");
        v.fail_code(
            "intake",
            "not_pushed",
            "eval submissions are committed on the ledger and uploaded to the coordinator",
        );
        (v.finish(), None)
    }

    fn score(
        &self,
        _info: &RoundInfo,
        _round: &EvalRound,
        _records: &[RoundRecord],
        workers: &[PublicKey],
    ) -> std::collections::BTreeMap<PublicKey, f64> {
        workers.iter().map(|w| (*w, 0.0)).collect()
    }

    fn intake(&self) -> RoundIntake {
        RoundIntake::Roster
    }

    fn check_submission(&self, archive: &[u8]) -> Result<serde_json::Value, SpecError> {
        let a = crate::archive::unpack(archive)
            .map_err(|e| SpecError::Malformed(format!("{} ({})", e, e.code())))?;
        serde_json::to_value(&a.manifest).map_err(|e| SpecError::Malformed(e.to_string()))
    }

    fn measure(
        &self,
        info: &RoundInfo,
        round: &EvalRound,
        run: &RosterRun,
        workers: &[PublicKey],
    ) -> Result<Measurement, SpecError> {
        let (report, scores, wall) = round
            .grader
            .measure(info.round_id.as_str(), run, workers)
            .map_err(|e| SpecError::Malformed(e.to_string()))?;
        Ok(Measurement {
            scores,
            report: serde_json::to_value(&report)
                .map_err(|e| SpecError::Malformed(e.to_string()))?,
            // The node hashes the report itself (it is lane-neutral); wall time stays
            // advisory, outside the hash.
            advisory: serde_json::json!({ "wall_ms": wall }),
        })
    }
}
