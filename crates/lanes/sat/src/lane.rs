//! The sat lane behind the [`Lane`] trait.

use hallmark_core::{Keypair, Lane, RoundId, Sha256Digest, Signed, Verdict};

use crate::cnf::Cnf;
use crate::generate::{generate_instance, InstanceParams, ParamsError};
use crate::solve::{solve, SolveOutcome};
use crate::verify::{verify_witness, SatVerifyContext};
use crate::witness::Witness;

/// One instance of a round with its content hash.
#[derive(Debug, Clone)]
pub struct SatInstance {
    pub index: u32,
    pub sha256: Sha256Digest,
    pub cnf: Cnf,
}

/// A round as every party reconstructs it from the published seed and parameters.
#[derive(Debug, Clone)]
pub struct SatRound {
    pub round_id: RoundId,
    pub nonce: String,
    pub instances: Vec<SatInstance>,
}

impl SatRound {
    /// Regenerates every instance of the round from its seed.
    pub fn generate(
        round_id: RoundId,
        nonce: String,
        seed: u64,
        params: &InstanceParams,
    ) -> Result<Self, ParamsError> {
        let instances = (0..params.count)
            .map(|index| {
                let cnf = generate_instance(params, seed, index)?;
                Ok(SatInstance {
                    index,
                    sha256: cnf.sha256(),
                    cnf,
                })
            })
            .collect::<Result<_, ParamsError>>()?;
        Ok(Self {
            round_id,
            nonce,
            instances,
        })
    }

    /// The instance with this hash, if it belongs to the round.
    pub fn instance(&self, sha: &Sha256Digest) -> Option<&SatInstance> {
        self.instances.iter().find(|i| &i.sha256 == sha)
    }
}

/// Why the worker side produced no witness.
#[derive(Debug, thiserror::Error)]
pub enum SatWorkError {
    #[error("signing the witness failed: {0}")]
    Sign(#[from] hallmark_core::dsse::DsseError),
}

/// The audit-arena lane.
#[derive(Debug, Default, Clone, Copy)]
pub struct SatLane;

impl SatLane {
    /// Solves one instance and signs its witness; `None` when it has no solution.
    pub fn solve_instance(
        round: &SatRound,
        instance: &SatInstance,
        worker: &Keypair,
    ) -> Result<Option<Signed<Witness>>, SatWorkError> {
        let SolveOutcome::Satisfiable(assignment) = solve(&instance.cnf) else {
            return Ok(None);
        };
        let w = Witness {
            round_id: round.round_id.clone(),
            instance_sha256: instance.sha256,
            worker_hotkey: worker.public(),
            nonce: round.nonce.clone(),
            assignment,
        };
        Ok(Some(Signed::sign(&w, worker)?))
    }
}

impl Lane for SatLane {
    const NAME: &'static str = "sat";
    type Task = SatRound;
    type Evidence = Signed<Witness>;
    type Context = SatVerifyContext;
    type Error = SatWorkError;

    fn execute(
        &self,
        task: &SatRound,
        worker: &Keypair,
    ) -> Result<Vec<Signed<Witness>>, SatWorkError> {
        let mut out = Vec::new();
        for inst in &task.instances {
            if let Some(w) = Self::solve_instance(task, inst, worker)? {
                out.push(w);
            }
        }
        Ok(out)
    }

    fn verify(
        &self,
        ctx: &SatVerifyContext,
        task: &SatRound,
        evidence: &Signed<Witness>,
    ) -> Verdict {
        verify_witness(ctx, |sha| task.instance(sha).map(|i| &i.cnf), evidence).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_then_verify() {
        let params = InstanceParams {
            vars: 60,
            clauses: 240,
            k: 3,
            count: 3,
        };
        let round =
            SatRound::generate(RoundId::from_number(1), "cd".repeat(16), 42, &params).unwrap();
        let kp = Keypair::generate();
        let witnesses = SatLane.execute(&round, &kp).unwrap();
        assert!(
            !witnesses.is_empty(),
            "ratio 4.0 at 60 vars is almost always SAT"
        );
        let ctx = SatVerifyContext {
            current_round: round.round_id.clone(),
            round_nonce: round.nonce.clone(),
            deadline_unix_ms: i64::MAX,
            received_unix_ms: 0,
            submitted_by: Some(kp.public()),
        };
        for w in &witnesses {
            let v = SatLane.verify(&ctx, &round, w);
            assert!(v.accepted, "{v:?}");
        }
    }
}
