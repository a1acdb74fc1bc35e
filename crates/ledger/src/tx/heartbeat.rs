//! `Heartbeat`: a registered hotkey says it is still here, at the block's time.

use crate::machine::Transition;
use crate::state::WriteSet;
use crate::LedgerError;

pub(super) fn apply(t: &Transition<'_>, ws: &mut WriteSet) -> Result<(), LedgerError> {
    let mut neuron = t.signer_neuron()?.clone();
    neuron.last_heartbeat_ms = t.ctx.time_ms;
    ws.neurons.push(neuron);
    Ok(())
}
