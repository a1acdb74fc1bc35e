//! Round parameters, the pinned corpus and the tasks, all derived from seeds every validator
//! computes the same way.
//!
//! A run's task seed is `SHA-256("hallmark/eval/tasks/v1" ‖ run id ‖ roster hash ‖ ledger
//! anchor root)`: the roster is fixed at the deadline and the anchor is a ledger log root
//! after it, so nobody knows the tasks while they can still change a submission. Task *i*'s
//! input is `items` corpus indices (u32, little-endian) drawn from `SHA-256(task seed ‖ i)`;
//! the task asks for the wrapping sum of the squares of those corpus words (u64,
//! little-endian), which the lane checks against its own reference module's answer in the
//! same sandbox.

use hallmark_core::SpecError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sandbox::Limits;

/// What an operator asks for in an eval round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EvalParams {
    /// Tasks per run (1–64).
    pub tasks: u32,
    /// Corpus indices per task (1–4096).
    pub items: u32,
    /// Corpus size in 64-bit words (1–65536).
    pub corpus_words: u32,
    /// The corpus is derived from this seed; its SHA-256 is in every report.
    pub corpus_seed: u64,
    /// Fuel per task (10 000 – 1 000 000 000).
    pub fuel_per_task: u64,
    /// Linear memory cap per task, 64 KiB pages (1–1024).
    pub memory_pages: u32,
}

impl Default for EvalParams {
    fn default() -> Self {
        Self {
            tasks: 8,
            items: 64,
            corpus_words: 1024,
            corpus_seed: 0,
            fuel_per_task: 2_000_000,
            memory_pages: 16,
        }
    }
}

impl EvalParams {
    /// Refuses parameters outside the lane's limits.
    pub fn check(&self) -> Result<(), SpecError> {
        let out = |m: &str| Err(SpecError::OutOfBounds(m.into()));
        if !(1..=64).contains(&self.tasks) {
            return out("tasks must be 1..=64");
        }
        if !(1..=4096).contains(&self.items) {
            return out("items must be 1..=4096");
        }
        if !(1..=65536).contains(&self.corpus_words) {
            return out("corpus_words must be 1..=65536");
        }
        if !(10_000..=1_000_000_000).contains(&self.fuel_per_task) {
            return out("fuel_per_task must be 10000..=1000000000");
        }
        if !(1..=1024).contains(&self.memory_pages) {
            return out("memory_pages must be 1..=1024");
        }
        Ok(())
    }

    /// The sandbox limits these parameters set.
    pub fn limits(&self) -> Limits {
        Limits {
            fuel: self.fuel_per_task,
            memory_pages: self.memory_pages,
            ..Limits::default()
        }
    }
}

/// The corpus the `corpus` tool serves: `corpus_words` words from the corpus seed.
pub fn corpus(params: &EvalParams) -> Vec<u64> {
    let mut words = Vec::with_capacity(params.corpus_words as usize);
    let mut block = 0u64;
    while words.len() < params.corpus_words as usize {
        let mut h = Sha256::new();
        h.update(b"hallmark/eval/corpus/v1");
        h.update(params.corpus_seed.to_le_bytes());
        h.update(block.to_le_bytes());
        for chunk in h.finalize().chunks_exact(8) {
            if words.len() < params.corpus_words as usize {
                words.push(u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])));
            }
        }
        block += 1;
    }
    words
}

/// The corpus's SHA-256 over its little-endian bytes (lowercase hex): what pins it.
pub fn corpus_sha256(words: &[u64]) -> String {
    let mut h = Sha256::new();
    for w in words {
        h.update(w.to_le_bytes());
    }
    hex::encode(h.finalize())
}

/// The run's task seed from its roster and the ledger anchor.
pub fn task_seed(run_id: &str, roster_sha256: &str, anchor_root: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"hallmark/eval/tasks/v1\0");
    h.update(run_id.as_bytes());
    h.update([0]);
    h.update(roster_sha256.as_bytes());
    h.update([0]);
    h.update(anchor_root.as_bytes());
    h.finalize().into()
}

/// One task of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub index: u32,
    pub seed: [u8; 32],
    /// `items` u32 corpus indices, little-endian.
    pub input: Vec<u8>,
}

/// Task `index` of the run with `run_seed`.
pub fn task(run_seed: &[u8; 32], index: u32, params: &EvalParams) -> Task {
    let seed: [u8; 32] = Sha256::new()
        .chain_update(run_seed)
        .chain_update(index.to_le_bytes())
        .finalize()
        .into();
    let mut input = Vec::with_capacity(params.items as usize * 4);
    let mut block = 0u32;
    while input.len() < params.items as usize * 4 {
        let digest = Sha256::new()
            .chain_update(seed)
            .chain_update(block.to_le_bytes())
            .finalize();
        for chunk in digest.chunks_exact(4) {
            if input.len() < params.items as usize * 4 {
                let raw = u32::from_le_bytes(chunk.try_into().unwrap_or([0; 4]));
                input.extend_from_slice(&(raw % params.corpus_words).to_le_bytes());
            }
        }
        block += 1;
    }
    Task { index, seed, input }
}

/// Every task of a run.
pub fn tasks(run_seed: &[u8; 32], params: &EvalParams) -> Vec<Task> {
    (0..params.tasks)
        .map(|i| task(run_seed, i, params))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivations_are_stable_and_bounded() {
        let p = EvalParams::default();
        assert!(p.check().is_ok());
        let c = corpus(&p);
        assert_eq!(c.len(), 1024);
        assert_eq!(corpus_sha256(&c), corpus_sha256(&corpus(&p)));
        let seed = task_seed("eval-round-000001", "aa", "bb");
        assert_ne!(seed, task_seed("eval-round-000001", "aa", "bc"));
        assert_ne!(seed, task_seed("eval-round-000002", "aa", "bb"));
        let ts = tasks(&seed, &p);
        assert_eq!(ts.len(), 8);
        assert_ne!(ts[0].input, ts[1].input);
        for t in &ts {
            assert_eq!(t.input.len(), 64 * 4);
            assert!(t
                .input
                .chunks_exact(4)
                .all(|c| u32::from_le_bytes(c.try_into().unwrap()) < 1024));
        }
        assert_eq!(ts, tasks(&seed, &p));
        assert!(EvalParams { tasks: 0, ..p }.check().is_err());
        assert!(EvalParams {
            fuel_per_task: 1,
            ..p
        }
        .check()
        .is_err());
        assert!(serde_json::from_str::<EvalParams>(r#"{"nonsense":1}"#).is_err());
    }
}
