//! `RegisterPaymentKey`: a registered worker opens its encrypted balance at zero under an
//! ElGamal key, with a proof that it knows the secret.

use hallmark_confidential::{Ciphertext, ElGamalPublicKey, PubkeyProof};
use hallmark_store::ConfidentialRow;

use crate::machine::Transition;
use crate::payments::payment_key_context;
use crate::state::WriteSet;
use crate::types::Role;
use crate::LedgerError;

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    pubkey: &ElGamalPublicKey,
    proof: &PubkeyProof,
) -> Result<(), LedgerError> {
    let hk = &t.signer_addr;
    t.registered_as(hk, Role::Worker)?;
    if t.state.confidential(hk).is_some() {
        return Err(LedgerError::Invalid(format!(
            "{hk} already has a payment key (a new one would strand its balance)"
        )));
    }
    proof
        .verify(pubkey, &payment_key_context(&t.rules.chain_id, &t.signer))
        .map_err(|e| LedgerError::InvalidProof(e.to_string()))?;
    ws.confidential = Some(ConfidentialRow {
        hotkey: hk.clone(),
        pubkey: pubkey.to_hex(),
        balance: Ciphertext::zero().to_hex(),
        hint: None,
        seq: t.seq,
    });
    Ok(())
}
