//! `Transfer`: public balance from the signer to another account.

use hallmark_core::PublicKey;
use hallmark_store::AccountRow;

use crate::machine::{debit, Transition};
use crate::state::WriteSet;
use crate::LedgerError;

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    account: &mut AccountRow,
    to: &PublicKey,
    amount: u64,
) -> Result<(), LedgerError> {
    if amount == 0 {
        return Err(LedgerError::Invalid("a transfer moves at least 1".into()));
    }
    let to = to.to_ss58();
    if to == account.address {
        return Err(LedgerError::Invalid(
            "a transfer to oneself moves nothing".into(),
        ));
    }
    debit(account, amount)?;
    t.credit_public(ws, account, &to, amount)
}
