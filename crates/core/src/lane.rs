//! The `Lane` trait: one kind of work, its evidence, and its deterministic verifier.

use crate::keys::Keypair;
use crate::verdict::Verdict;

/// A lane plugs one kind of work into the pipeline.
///
/// The worker side (`execute`) does the work and produces evidence signed by the worker; the
/// validator side (`verify`) is a pure, deterministic function of the task, the evidence and an
/// explicit context (time, trust roots, policy), so any auditor can replay it.
pub trait Lane {
    /// The lane's name on the wire (`sat`, `stark`, …).
    const NAME: &'static str;
    /// What the worker is asked to do.
    type Task;
    /// What the worker hands back.
    type Evidence;
    /// Everything the verifier needs besides task and evidence: time, roots, policy.
    type Context;
    /// Why the worker side could not produce evidence.
    type Error: std::error::Error;

    /// Worker side: do the work and produce signed evidence (a task may yield several pieces,
    /// e.g. one witness per instance of a round).
    fn execute(
        &self,
        task: &Self::Task,
        worker: &Keypair,
    ) -> Result<Vec<Self::Evidence>, Self::Error>;

    /// Validator side: check the evidence; every check is recorded in the verdict.
    fn verify(&self, ctx: &Self::Context, task: &Self::Task, evidence: &Self::Evidence) -> Verdict;
}
