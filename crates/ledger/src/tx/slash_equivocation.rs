//! `SlashEquivocation`: two conflicting signed votes of one validator on one job. The ledger
//! checks them itself and slashes the validator once per job.

use hallmark_consensus::{SlashReason, Slashing, VoteEquivocation};

use crate::machine::Transition;
use crate::state::WriteSet;
use crate::types::Role;
use crate::LedgerError;

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    evidence: &VoteEquivocation,
) -> Result<(), LedgerError> {
    let job_id = evidence
        .check()
        .map_err(|e| LedgerError::InvalidEvidence(format!("equivocation: {e}")))?;
    t.registered_as(&evidence.validator.to_ss58(), Role::Validator)?;
    let slashing = Slashing {
        who: evidence.validator,
        reason: SlashReason::Equivocation,
    };
    t.apply_slashings(ws, &job_id, &[slashing])
}
