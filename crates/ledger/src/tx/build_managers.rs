//! `SetBuildManagers`: replaces the keys that may write the build-info registry, carrying at
//! least the threshold of distinct build-council approvals of exactly this set and version.
//! `version` must be the current one plus one, so approvals are never replayed.

use std::collections::BTreeSet;

use hallmark_core::{Envelope, PublicKey, Signed};

use crate::machine::Transition;
use crate::state::WriteSet;
use crate::types::BuildManagersApproval;
use crate::LedgerError;

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    version: u64,
    managers: &[PublicKey],
    approvals: &[Envelope],
) -> Result<(), LedgerError> {
    let council = &t.rules.params.build_council;
    let threshold = t.rules.params.build_council_threshold;
    if council.is_empty() || threshold == 0 {
        return Err(LedgerError::Unauthorized(
            "this ledger has no build council: the build-manager set cannot change".into(),
        ));
    }
    let current = t.state.build_managers().map_or(0, |(v, _)| *v);
    if version != current + 1 {
        return Err(LedgerError::Invalid(format!(
            "build-manager set version {version}: the next version is {}",
            current + 1
        )));
    }
    let distinct: BTreeSet<&PublicKey> = managers.iter().collect();
    if managers.len() > 64 || distinct.len() != managers.len() {
        return Err(LedgerError::Invalid(
            "at most 64 build managers, each once".into(),
        ));
    }
    let expected = BuildManagersApproval {
        chain_id: t.rules.chain_id.clone(),
        version,
        managers: managers.to_vec(),
    };
    let mut approvers = BTreeSet::new();
    for env in approvals.iter().take(council.len() * 2) {
        let Ok(v) = Signed::<BuildManagersApproval>::from_envelope(env.clone()).verify() else {
            return Err(LedgerError::InvalidEvidence(
                "an approval's signature does not verify".into(),
            ));
        };
        if v.payload != expected {
            return Err(LedgerError::InvalidEvidence(
                "an approval is for another chain, version or manager set".into(),
            ));
        }
        if !council.contains(&v.signer) {
            return Err(LedgerError::Unauthorized(format!(
                "{} is not on the build council",
                v.signer
            )));
        }
        approvers.insert(v.signer);
    }
    if approvers.len() < threshold as usize {
        return Err(LedgerError::Unauthorized(format!(
            "{} distinct council approvals; {threshold} of {} are needed",
            approvers.len(),
            council.len()
        )));
    }
    let text = serde_json::to_string(managers).map_err(|e| LedgerError::Invalid(e.to_string()))?;
    ws.build_managers = Some((version, text));
    Ok(())
}
