//! `SlashDoubleVote`: a validator signed two different consensus votes for one height, round
//! and type. The ledger checks both signatures itself and slashes the validator once (the first evidence counts; later evidence is refused
//! as already slashed).

use hallmark_consensus::{SlashReason, Slashing};

use crate::consensus_vote::DoubleVote;
use crate::machine::Transition;
use crate::state::WriteSet;
use crate::types::Role;
use crate::LedgerError;

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    evidence: &DoubleVote,
) -> Result<(), LedgerError> {
    let offence = evidence
        .check(&t.rules.chain_id)
        .map_err(|e| LedgerError::InvalidEvidence(format!("double vote: {e}")))?;
    t.registered_as(&evidence.validator.to_ss58(), Role::Validator)?;
    let slashing = Slashing {
        who: evidence.validator,
        reason: SlashReason::Equivocation,
    };
    t.apply_slashings(ws, &offence, &[slashing])
}
