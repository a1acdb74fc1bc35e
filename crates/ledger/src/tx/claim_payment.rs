//! `ClaimPayment`: credits the job reward, encrypted to the worker's key, against the job's
//! approving vote certificate, once per job (the nullifier of the client's request).

use hallmark_confidential::{BalanceHint, Ciphertext, CreditProof};
use hallmark_consensus::{verify_certificate, JobResult, VoteCertificate, VoteOutcome};
use hallmark_core::{Envelope, Signed};
use hallmark_store::{ConfidentialRow, NullifierRow};

use crate::machine::{certified_result, Transition};
use crate::payments::{
    account_from_row, corrupt, credit_context, payment_nullifier, request_job_id_and_nonce,
};
use crate::state::WriteSet;
use crate::LedgerError;

/// The parts of a `ClaimPayment` transaction.
pub(super) struct Claim<'a> {
    pub request: &'a Envelope,
    pub certificate: &'a VoteCertificate,
    pub result: &'a Signed<JobResult>,
    pub credit: &'a Ciphertext,
    pub proof: &'a CreditProof,
    pub hint: Option<&'a BalanceHint>,
}

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    claim: Claim<'_>,
) -> Result<(), LedgerError> {
    let signer = &t.signer;
    let r = certified_result(claim.certificate, claim.result)?;
    if r.worker != *signer {
        return Err(LedgerError::Unauthorized(format!(
            "only the worker {} claims its payment",
            r.worker
        )));
    }
    let (job_id, nonce) = request_job_id_and_nonce(claim.request)?;
    if job_id != r.job_id {
        return Err(LedgerError::InvalidEvidence(format!(
            "the request is for {job_id}, the certificate for {}",
            r.job_id
        )));
    }
    if claim.certificate.outcome != VoteOutcome::Approved {
        return Err(LedgerError::InvalidEvidence(
            "only a job the validators approved is paid".into(),
        ));
    }
    // Against the stake table the job was settled with if it was (later slashings move
    // stakes), otherwise today's.
    let stakes = match t.state.settled_job(&job_id) {
        Some(s) if s.outcome != "approved" => {
            return Err(LedgerError::InvalidEvidence(format!(
                "job {job_id} was settled {}",
                s.outcome
            )))
        }
        Some(s) => serde_json::from_str(&s.stakes).map_err(|e| corrupt("settled stakes", e))?,
        None => t.state.validator_stakes()?,
    };
    verify_certificate(claim.certificate, &stakes, t.rules.params.job_quorum)
        .map_err(|e| LedgerError::InvalidEvidence(format!("certificate: {e}")))?;
    let nullifier = payment_nullifier(&job_id, &nonce);
    if t.state.nullifier(&nullifier).is_some() {
        return Err(LedgerError::PaymentReplayed { job_id, nullifier });
    }
    let Some(row) = t.state.confidential(&t.signer_addr) else {
        return Err(LedgerError::NoPaymentKey(t.signer_addr.clone()));
    };
    let account = account_from_row(row.clone())?;
    let reward = t.rules.params.job_reward;
    claim
        .proof
        .verify(
            &account.pubkey,
            reward,
            claim.credit,
            &credit_context(&t.rules.chain_id, signer, &job_id),
        )
        .map_err(|e| LedgerError::InvalidProof(e.to_string()))?;
    let balance = account.balance + *claim.credit;
    ws.confidential = Some(ConfidentialRow {
        hotkey: t.signer_addr.clone(),
        pubkey: account.pubkey.to_hex(),
        balance: balance.to_hex(),
        hint: claim.hint.map(BalanceHint::to_hex),
        seq: t.seq,
    });
    ws.nullifier = Some(NullifierRow {
        nullifier,
        job_id,
        worker: t.signer_addr.clone(),
        amount: reward,
        seq: t.seq,
    });
    Ok(())
}
