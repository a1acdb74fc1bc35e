//! `ServeAxon`: a registered hotkey announces its HTTP address.

use hallmark_store::NeuronRow;

use crate::machine::Transition;
use crate::state::WriteSet;
use crate::LedgerError;

pub(super) fn apply(t: &Transition<'_>, ws: &mut WriteSet, axon: &str) -> Result<(), LedgerError> {
    let existing = t.signer_neuron()?;
    validate_axon(axon)?;
    ws.neurons.push(NeuronRow {
        axon: Some(axon.to_string()),
        ..existing.clone()
    });
    Ok(())
}

fn validate_axon(axon: &str) -> Result<(), LedgerError> {
    let ok = (axon.starts_with("http://") || axon.starts_with("https://"))
        && axon.len() <= 256
        && !axon.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(LedgerError::Invalid(format!(
            "axon {axon:?} must be an http(s) URL without spaces, at most 256 characters"
        )))
    }
}
