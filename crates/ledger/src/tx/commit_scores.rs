//! `CommitScores`: a registered validator's score-hash commitment for a run, once. A second,
//! different commitment is equivocation: refused here, and the ledger keeps both signed
//! transactions as evidence (outside the state, see `DevnetLedger`).

use hallmark_consensus::commitment::parse_commitment;
use hallmark_store::CommitmentRow;

use crate::machine::Transition;
use crate::state::WriteSet;
use crate::types::Role;
use crate::LedgerError;

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    run_id: &str,
    commitment: &str,
) -> Result<(), LedgerError> {
    let signer = &t.signer_addr;
    t.signer_as(Role::Validator, "commit scores")?;
    if run_id.is_empty() || run_id.len() > 128 || run_id.contains(':') {
        return Err(LedgerError::Invalid(format!(
            "run id {run_id:?} is not valid"
        )));
    }
    parse_commitment(commitment, run_id).map_err(|e| LedgerError::Invalid(e.to_string()))?;
    if let Some(existing) = t.state.commitment(signer, run_id) {
        if existing.commitment == commitment {
            return Err(LedgerError::AlreadyCommitted {
                validator: signer.clone(),
                run_id: run_id.to_string(),
                commitment: commitment.to_string(),
            });
        }
        return Err(LedgerError::Equivocation {
            validator: signer.clone(),
            run_id: run_id.to_string(),
        });
    }
    ws.commitment = Some(CommitmentRow {
        validator: signer.clone(),
        run_id: run_id.to_string(),
        commitment: commitment.to_string(),
        envelope: serde_json::to_string(t.envelope)
            .map_err(|e| LedgerError::Invalid(e.to_string()))?,
        // Filled in once the link (which hashes the state root) is known.
        tx_hash: String::new(),
    });
    Ok(())
}
