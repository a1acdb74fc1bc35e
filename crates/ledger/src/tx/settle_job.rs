//! `SettleJob`: settles a job once from its vote certificate and the worker's signed result.
//! The ledger re-checks both against its own stake table and slashes the worker of a rejected
//! result and every dissenting voter.

use hallmark_consensus::{verify_certificate, JobResult, VoteCertificate, VoteOutcome};
use hallmark_core::Signed;
use hallmark_store::SettledJobRow;

use crate::machine::{certified_result, Transition};
use crate::state::WriteSet;
use crate::types::Role;
use crate::LedgerError;

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    certificate: &VoteCertificate,
    result: &Signed<JobResult>,
) -> Result<(), LedgerError> {
    let r = certified_result(certificate, result)?;
    let worker = r.worker.to_ss58();
    t.registered_as(&worker, Role::Worker)?;
    if t.state.settled_job(&r.job_id).is_some() {
        return Err(LedgerError::AlreadySettled(r.job_id));
    }
    let stakes = t.state.validator_stakes()?;
    verify_certificate(certificate, &stakes, t.rules.params.job_quorum)
        .map_err(|e| LedgerError::InvalidEvidence(format!("certificate: {e}")))?;
    let outcome = match certificate.outcome {
        VoteOutcome::Approved => "approved",
        VoteOutcome::Rejected => "rejected",
        VoteOutcome::Pending => {
            return Err(LedgerError::InvalidEvidence(
                "a pending tally settles nothing".into(),
            ))
        }
    };
    let slashings = certificate.slashings(&r.worker);
    ws.settled_job = Some(SettledJobRow {
        job_id: r.job_id.clone(),
        outcome: outcome.into(),
        result_digest: r.result_digest,
        worker,
        seq: t.seq,
        stakes: serde_json::to_string(&stakes).map_err(|e| LedgerError::Invalid(e.to_string()))?,
    });
    t.apply_slashings(ws, &r.job_id, &slashings)
}
