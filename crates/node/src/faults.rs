//! Fault injection, for devnets and tests: every misbehaviour a node can be told to show, in
//! one configuration value (`[faults]`) that the roles consult at fixed points instead of
//! branches scattered through production code. The default is no fault at all; a node with any
//! fault says so in its status and logs a warning at start.

use serde::{Deserialize, Serialize};

/// What a node is told to do wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Validator: report every score inverted (`1 − s`).
    pub invert_scores: bool,
    /// Validator: sign two different score reports per run (serve the second to every fetch
    /// after the first, try to commit both) and two opposite votes per job.
    pub equivocate: bool,
    /// Worker: flip one byte of every job artifact before handing it in.
    pub corrupt_artifacts: bool,
    /// Worker: wait this long before each round submission (simulated slower hardware).
    pub submit_delay_ms: u64,
    /// Coordinator: serve altered bytes for this roster member (0-based, roster order) of
    /// every roster-lane run, so validators must refuse it (`archive_hash_mismatch`).
    pub tamper_archive: Option<usize>,
}

impl Faults {
    /// Whether any fault is on.
    pub fn any(&self) -> bool {
        self.invert_scores
            || self.equivocate
            || self.corrupt_artifacts
            || self.submit_delay_ms > 0
            || self.tamper_archive.is_some()
    }

    /// The scores a validator reports: its own, or inverted.
    pub fn reported_score(&self, score: f64) -> f64 {
        if self.invert_scores {
            1.0 - score
        } else {
            score
        }
    }

    /// The artifact a worker hands in: its own, or with one byte flipped (the middle one).
    pub fn handed_in_artifact(&self, mut artifact: Vec<u8>) -> Vec<u8> {
        if self.corrupt_artifacts && !artifact.is_empty() {
            let mid = artifact.len() / 2;
            artifact[mid] ^= 0x01;
            tracing::warn!("fault injection: handing in a corrupted artifact");
        }
        artifact
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_fault_changes_nothing() {
        let f = Faults::default();
        assert!(!f.any());
        assert_eq!(f.reported_score(0.25), 0.25);
        assert_eq!(f.handed_in_artifact(vec![1, 2, 3]), vec![1, 2, 3]);
    }

    #[test]
    fn each_fault_does_what_it_says() {
        let f = Faults {
            invert_scores: true,
            corrupt_artifacts: true,
            ..Faults::default()
        };
        assert!(f.any());
        assert_eq!(f.reported_score(0.25), 0.75);
        assert_eq!(f.handed_in_artifact(vec![1, 2, 3]), vec![1, 3, 3]);
        assert!(f.handed_in_artifact(Vec::new()).is_empty());
        assert!(
            toml::from_str::<Faults>("equivocate = true\nsubmit_delay_ms = 5")
                .unwrap()
                .any()
        );
        assert!(toml::from_str::<Faults>("nonsense = true").is_err());
    }
}
