//! `Heartbeat`: a registered hotkey says it is still here, at the block's time.

use crate::machine::Transition;
use crate::state::WriteSet;
use crate::LedgerError;

pub(super) fn apply(t: &Transition<'_>, ws: &mut WriteSet) -> Result<(), LedgerError> {
    let Some(neuron) = t.state.neuron(&t.signer_addr) else {
        return Err(LedgerError::NotRegistered(t.signer_addr.clone()));
    };
    let mut neuron = neuron.clone();
    neuron.last_heartbeat_ms = t.ctx.time_ms;
    ws.neurons.push(neuron);
    Ok(())
}
