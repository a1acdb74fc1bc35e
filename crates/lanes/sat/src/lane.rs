//! The sat lane's round: every instance regenerated from the seed, and the worker's solve.

use hallmark_core::{Keypair, RoundId, Sha256Digest, Signed};

use crate::cnf::Cnf;
use crate::generate::{generate_instance, InstanceParams, ParamsError};
use crate::solve::{solve, SolveOutcome};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::SatVerifyContext;

    #[test]
    fn execute_then_verify() {
        let params = InstanceParams {
            vars: 60,
            clauses: 240,
            k: 3,
            count: 3,
        };
        let round =
            SatRound::generate(RoundId::for_lane("sat", 1), "cd".repeat(16), 42, &params).unwrap();
        let kp = Keypair::generate();
        let witnesses: Vec<_> = round
            .instances
            .iter()
            .filter_map(|i| SatLane::solve_instance(&round, i, &kp).unwrap())
            .collect();
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
            let v =
                crate::verify::verify_witness(&ctx, |sha| round.instance(sha).map(|i| &i.cnf), w).0;
            assert!(v.accepted, "{v:?}");
        }
    }
}
