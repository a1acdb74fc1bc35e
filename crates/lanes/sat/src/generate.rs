//! Deterministic uniform random k-SAT generation from a seed.

use hallmark_core::sha256;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::cnf::Cnf;

/// The shape of a round's instances, as the coordinator publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceParams {
    /// Variables per instance.
    pub vars: u32,
    /// Clauses per instance.
    pub clauses: u32,
    /// Literals per clause.
    pub k: u32,
    /// Instances per round.
    pub count: u32,
}

/// Why parameters cannot produce an instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("k must be between 1 and vars ({vars}), got {k}")]
    K { k: u32, vars: u32 },
    #[error("instance too large: {0} literals (limit 50,000,000)")]
    TooLarge(u64),
    #[error("too many variables: {0} (limit {MAX_VARS})")]
    TooManyVars(u32),
}

/// Most variables an instance may have: a full witness for it stays a few MB of JSON.
pub const MAX_VARS: u32 = 1_000_000;

impl InstanceParams {
    /// Checks that the parameters describe a sensible instance.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.vars > MAX_VARS {
            return Err(ParamsError::TooManyVars(self.vars));
        }
        if self.k == 0 || self.k > self.vars {
            return Err(ParamsError::K {
                k: self.k,
                vars: self.vars,
            });
        }
        let lits = u64::from(self.k) * u64::from(self.clauses);
        if lits > 50_000_000 {
            return Err(ParamsError::TooLarge(lits));
        }
        Ok(())
    }
}

/// Generates instance `index` of the round with `seed`: each clause picks `k` distinct variables
/// uniformly and negates each with probability 1/2. The RNG is ChaCha20 keyed by
/// SHA-256("hallmark/sat/instance/v1" ‖ seed ‖ index), so every party gets the same formula.
pub fn generate_instance(
    params: &InstanceParams,
    seed: u64,
    index: u32,
) -> Result<Cnf, ParamsError> {
    params.validate()?;
    let mut key = Vec::with_capacity(40);
    key.extend_from_slice(b"hallmark/sat/instance/v1");
    key.extend_from_slice(&seed.to_le_bytes());
    key.extend_from_slice(&index.to_le_bytes());
    let mut rng = ChaCha20Rng::from_seed(sha256(&key).0);
    let mut clauses = Vec::with_capacity(params.clauses as usize);
    for _ in 0..params.clauses {
        let vars = sample(&mut rng, params.vars as usize, params.k as usize);
        let clause = vars
            .into_iter()
            .map(|v| {
                let var = v as i32 + 1;
                if rng.gen::<bool>() {
                    -var
                } else {
                    var
                }
            })
            .collect();
        clauses.push(clause);
    }
    Ok(Cnf {
        num_vars: params.vars,
        clauses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: InstanceParams = InstanceParams {
        vars: 50,
        clauses: 213,
        k: 3,
        count: 1,
    };

    #[test]
    fn deterministic_and_distinct() {
        let a = generate_instance(&P, 7, 0).unwrap();
        assert_eq!(a, generate_instance(&P, 7, 0).unwrap());
        assert_ne!(a, generate_instance(&P, 7, 1).unwrap());
        assert_ne!(a, generate_instance(&P, 8, 0).unwrap());
        assert_eq!(a.clauses.len(), 213);
        for c in &a.clauses {
            assert_eq!(c.len(), 3);
            let mut vars: Vec<i32> = c.iter().map(|l| l.abs()).collect();
            vars.sort();
            vars.dedup();
            assert_eq!(vars.len(), 3, "variables in a clause are distinct");
            assert!(vars.iter().all(|v| (1..=50).contains(v)));
        }
    }

    #[test]
    fn pinned_instance_hash() {
        // Pins the generator: every party must regenerate the same instances from a seed, so a
        // change here is a network-breaking change (new version of the generator key).
        assert_eq!(
            generate_instance(&P, 1, 0).unwrap().sha256().to_hex(),
            "fbaf22b8e05b43633b20ecec01dc2a5da1d69e864b6a4ba09ec8b50c5ae9b247"
        );
    }

    #[test]
    fn rejects_bad_params() {
        let mut p = P;
        p.k = 0;
        assert!(generate_instance(&p, 1, 0).is_err());
        p.k = 51;
        assert!(generate_instance(&p, 1, 0).is_err());
        p.k = 3;
        p.vars = MAX_VARS + 1;
        assert_eq!(p.validate(), Err(ParamsError::TooManyVars(MAX_VARS + 1)));
    }
}
