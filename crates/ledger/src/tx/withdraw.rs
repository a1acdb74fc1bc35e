//! `Withdraw`: moves an amount from the worker's private balance to its coldkey's public
//! balance, against a proof that the private balance covers it.

use hallmark_confidential::{BalanceHint, WithdrawalProof};
use hallmark_store::{AccountRow, ConfidentialRow};

use crate::machine::Transition;
use crate::payments::{account_from_row, withdrawal_context};
use crate::state::WriteSet;
use crate::LedgerError;

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    account: &mut AccountRow,
    amount: u64,
    proof: &WithdrawalProof,
    hint: Option<&BalanceHint>,
) -> Result<(), LedgerError> {
    if amount == 0 {
        return Err(LedgerError::Invalid("withdraw at least 1".into()));
    }
    let hk = &t.signer_addr;
    let Some(neuron) = t.state.neuron(hk) else {
        return Err(LedgerError::NotRegistered(hk.clone()));
    };
    let Some(row) = t.state.confidential(hk) else {
        return Err(LedgerError::NoPaymentKey(hk.clone()));
    };
    let private = account_from_row(row.clone())?;
    let next = proof
        .verify(
            &private.pubkey,
            &private.balance,
            amount,
            &withdrawal_context(&t.rules.chain_id, &t.signer),
        )
        .map_err(|e| {
            LedgerError::InvalidProof(format!(
                "withdrawal of {amount}: {e} (the private balance does not cover it, or the proof is for another balance or amount)"
            ))
        })?;
    ws.confidential = Some(ConfidentialRow {
        hotkey: hk.clone(),
        pubkey: private.pubkey.to_hex(),
        balance: next.to_hex(),
        hint: hint.map(BalanceHint::to_hex),
        seq: t.seq,
    });
    t.credit_public(ws, account, &neuron.coldkey, amount)
}
