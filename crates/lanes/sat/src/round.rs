//! The sat lane in the round pipeline: [`SatLane`] is the validator side (parameters, the
//! round regenerated from its seed, the replay verifier, first-hand scoring), [`SatWorker`]
//! the worker side (CaDiCaL on every instance, each witness handed over as soon as it is
//! signed).

use std::collections::{BTreeMap, BTreeSet};

use hallmark_core::{
    Arrival, Envelope, ExecuteError, Keypair, PublicKey, RoundId, RoundInfo, RoundLane,
    RoundRecord, RoundWorker, Signed, SpecError, Verdict,
};

use crate::generate::InstanceParams;
use crate::lane::{SatLane, SatRound};
use crate::score::{round_score, SolvedInstance};
use crate::verify::{verify_witness, SatVerifyContext, CHECKS};
use crate::witness::Witness;

/// The lane's wire name.
pub const LANE: &str = "sat";

/// Most instances one round may have.
pub const MAX_INSTANCES: u32 = 64;

/// Largest witness submission a validator reads: a full assignment of
/// [`crate::generate::MAX_VARS`] variables is at most ~9 MB of JSON (base64 inside DSSE).
pub const MAX_SUBMISSION_BYTES: usize = 16 << 20;

impl RoundLane for SatLane {
    type Params = InstanceParams;
    type Round = SatRound;

    fn name(&self) -> &'static str {
        LANE
    }

    fn check_names(&self) -> &'static [&'static str] {
        &CHECKS
    }

    fn check_params(&self, params: &InstanceParams) -> Result<(), SpecError> {
        params
            .validate()
            .map_err(|e| SpecError::OutOfBounds(e.to_string()))?;
        if params.count == 0 || params.count > MAX_INSTANCES {
            return Err(SpecError::OutOfBounds(format!(
                "count must be 1..={MAX_INSTANCES}"
            )));
        }
        Ok(())
    }

    fn max_submission_bytes(&self) -> usize {
        MAX_SUBMISSION_BYTES
    }

    fn derive_round(
        &self,
        info: &RoundInfo,
        params: &InstanceParams,
    ) -> Result<SatRound, SpecError> {
        self.check_params(params)?;
        SatRound::generate(info.round_id.clone(), info.nonce.clone(), info.seed, params)
            .map_err(|e| SpecError::OutOfBounds(e.to_string()))
    }

    fn submission_round(&self, submission: &Envelope) -> Option<RoundId> {
        let payload = submission.payload_bytes().ok()?;
        serde_json::from_slice::<Witness>(&payload)
            .ok()
            .map(|w| w.round_id)
    }

    fn accept(
        &self,
        info: &RoundInfo,
        round: &SatRound,
        arrival: &Arrival,
        submission: &Envelope,
    ) -> (Verdict, Option<RoundRecord>) {
        let ctx = SatVerifyContext {
            current_round: info.round_id.clone(),
            round_nonce: info.nonce.clone(),
            deadline_unix_ms: info.deadline_ms,
            received_unix_ms: arrival.received_ms,
            submitted_by: Some(arrival.sender),
        };
        let signed = Signed::<Witness>::from_envelope(submission.clone());
        let (verdict, ok) =
            verify_witness(&ctx, |sha| round.instance(sha).map(|i| &i.cnf), &signed);
        let record = ok.map(|(signer, w)| RoundRecord {
            worker: signer,
            item: w.instance_sha256.to_hex(),
            received_ms: arrival.received_ms,
            latency_ms: arrival.received_ms - info.starts_at_ms,
        });
        (verdict, record)
    }

    fn score(
        &self,
        info: &RoundInfo,
        round: &SatRound,
        records: &[RoundRecord],
        workers: &[PublicKey],
    ) -> BTreeMap<PublicKey, f64> {
        let window = info.deadline_ms - info.starts_at_ms;
        let count = u32::try_from(round.instances.len()).unwrap_or(u32::MAX);
        workers
            .iter()
            .map(|worker| {
                // One entry per distinct instance: the first accepted witness counts.
                let mut seen = BTreeSet::new();
                let solved: Vec<SolvedInstance> = records
                    .iter()
                    .filter(|r| &r.worker == worker && seen.insert(r.item.as_str()))
                    .map(|r| SolvedInstance {
                        latency_ms: r.latency_ms,
                    })
                    .collect();
                (*worker, round_score(&solved, count, window))
            })
            .collect()
    }

    /// Known-answer: a fixed random 3-SAT instance is solved by CaDiCaL and its assignment
    /// passes the verifier; the same assignment with one clause's literals all made false is
    /// refused. Needs no evidence files.
    fn self_test(&self, _evidence: Option<&std::path::Path>) -> Option<hallmark_core::Verdict> {
        Some(crate::verify::self_test())
    }
}

/// The sat lane's worker side: solves every instance with CaDiCaL and hands over each signed
/// witness as soon as it exists.
#[derive(Debug, Default, Clone, Copy)]
pub struct SatWorker;

impl RoundWorker for SatWorker {
    type Lane = SatLane;

    fn work(
        &self,
        _info: &RoundInfo,
        round: &SatRound,
        key: &Keypair,
        submit: &mut dyn FnMut(Envelope),
    ) -> Result<(), ExecuteError> {
        for instance in &round.instances {
            let witness = SatLane::solve_instance(round, instance, key)
                .map_err(|e| ExecuteError::Failed(e.to_string()))?;
            if let Some(w) = witness {
                submit(w.envelope().clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: u64) -> RoundInfo {
        RoundInfo {
            lane: LANE.into(),
            round_id: RoundId::for_lane(LANE, n),
            number: n,
            seed: 42,
            nonce: "cd".repeat(16),
            starts_at_ms: 1_000,
            deadline_ms: 11_000,
        }
    }

    const PARAMS: InstanceParams = InstanceParams {
        vars: 60,
        clauses: 240,
        k: 3,
        count: 3,
    };

    #[test]
    fn worked_round_is_accepted_and_scored() {
        let info = info(1);
        let round = SatLane.derive_round(&info, &PARAMS).unwrap();
        let key = Keypair::generate();
        let mut subs = Vec::new();
        SatWorker
            .work(&info, &round, &key, &mut |e| subs.push(e))
            .unwrap();
        assert!(
            !subs.is_empty(),
            "ratio 4.0 at 60 vars is almost always SAT"
        );
        let arrival = Arrival {
            received_ms: 1_000,
            sender: key.public(),
        };
        let mut records = Vec::new();
        for s in &subs {
            assert_eq!(SatLane.submission_round(s), Some(info.round_id.clone()));
            let (v, r) = SatLane.accept(&info, &round, &arrival, s);
            assert!(v.accepted, "{v:?}");
            records.push(r.unwrap());
        }
        // The same witness twice counts once.
        records.push(records[0].clone());
        let other = Keypair::generate().public();
        let scores = SatLane.score(&info, &round, &records, &[key.public(), other]);
        let expect = subs.len() as f64 / 3.0;
        assert!((scores[&key.public()] - expect).abs() < 1e-9, "{scores:?}");
        assert_eq!(scores[&other], 0.0);
    }

    #[test]
    fn refusals_are_verdicts() {
        let info = info(2);
        let round = SatLane.derive_round(&info, &PARAMS).unwrap();
        let key = Keypair::generate();
        let mut subs = Vec::new();
        SatWorker
            .work(&info, &round, &key, &mut |e| subs.push(e))
            .unwrap();
        // Relayed by someone else.
        let relayed = Arrival {
            received_ms: 1_000,
            sender: Keypair::generate().public(),
        };
        let (v, r) = SatLane.accept(&info, &round, &relayed, &subs[0]);
        assert_eq!(v.rejection.as_deref(), Some("provenance_mismatch"));
        assert!(r.is_none());
        // After the deadline.
        let late = Arrival {
            received_ms: 20_000,
            sender: key.public(),
        };
        let (v, _) = SatLane.accept(&info, &round, &late, &subs[0]);
        assert_eq!(v.rejection.as_deref(), Some("stale_round"));
        // For another round.
        let (v, _) = SatLane.accept(
            &self::info(3),
            &round,
            &Arrival {
                received_ms: 1_000,
                sender: key.public(),
            },
            &subs[0],
        );
        assert_eq!(v.rejection.as_deref(), Some("stale_round"));
        // Out-of-bounds parameters.
        for bad in [
            InstanceParams { count: 0, ..PARAMS },
            InstanceParams {
                count: 65,
                ..PARAMS
            },
            InstanceParams { k: 0, ..PARAMS },
        ] {
            assert!(SatLane.check_params(&bad).is_err(), "{bad:?}");
        }
    }
}
