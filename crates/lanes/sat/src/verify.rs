//! Deterministic replay verification of witnesses, with named rejection codes.

use hallmark_core::dsse::DsseError;
use hallmark_core::{PublicKey, RoundId, Signed, Verdict, VerdictBuilder, Verified};

use crate::cnf::Cnf;
use crate::witness::Witness;

/// Why a witness was rejected. The `code` of each is stable: it goes into verdicts, wire errors
/// and the CLI's stderr.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the witness names an instance hash that is not in this round")]
    CnfSha256Mismatch,
    #[error("malformed witness: {0}")]
    MalformedWitness(String),
    #[error("literal {literal} names a variable outside 1..={num_vars}")]
    VariableOutOfRange { literal: i32, num_vars: u32 },
    #[error("clause {clause} (1-based) is not satisfied")]
    SolutionUnsatisfied { clause: usize },
    #[error("provenance mismatch: {0}")]
    ProvenanceMismatch(String),
    #[error("stale round: {0}")]
    StaleRound(String),
    #[error("bad signature: {0}")]
    BadSignature(String),
}

impl Rejection {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::CnfSha256Mismatch => "cnf_sha256_mismatch",
            Rejection::MalformedWitness(_) => "malformed_witness",
            Rejection::VariableOutOfRange { .. } => "variable_out_of_range",
            Rejection::SolutionUnsatisfied { .. } => "solution_unsatisfied",
            Rejection::ProvenanceMismatch(_) => "provenance_mismatch",
            Rejection::StaleRound(_) => "stale_round",
            Rejection::BadSignature(_) => "bad_signature",
        }
    }
}

/// Checks that `assignment` satisfies every clause of `cnf`.
///
/// Rejects literal 0, a variable outside the formula, a variable assigned both ways, and an
/// unsatisfied clause (a variable the witness leaves unassigned satisfies nothing).
pub fn check_assignment(cnf: &Cnf, assignment: &[i32]) -> Result<(), Rejection> {
    let n = cnf.num_vars as usize;
    // truth[2v] = v is true, truth[2v+1] = ¬v is true.
    let mut truth = vec![false; 2 * n + 2];
    for &lit in assignment {
        if lit == 0 {
            return Err(Rejection::MalformedWitness(
                "literal 0 inside the assignment".into(),
            ));
        }
        let var = lit.unsigned_abs() as usize;
        if var > n {
            return Err(Rejection::VariableOutOfRange {
                literal: lit,
                num_vars: cnf.num_vars,
            });
        }
        let (pos, neg) = (2 * var, 2 * var + 1);
        let (this, other) = if lit > 0 { (pos, neg) } else { (neg, pos) };
        if truth[other] {
            return Err(Rejection::MalformedWitness(format!(
                "variable {var} is assigned both true and false"
            )));
        }
        truth[this] = true;
    }
    for (i, clause) in cnf.clauses.iter().enumerate() {
        let sat = clause.iter().any(|&lit| {
            let var = lit.unsigned_abs() as usize;
            truth[2 * var + usize::from(lit < 0)]
        });
        if !sat {
            return Err(Rejection::SolutionUnsatisfied { clause: i + 1 });
        }
    }
    Ok(())
}

/// Everything a validator needs besides the instance and the witness: which round is open,
/// its nonce and deadline, and when (by the validator's own clock) the witness arrived.
#[derive(Debug, Clone)]
pub struct SatVerifyContext {
    pub current_round: RoundId,
    pub round_nonce: String,
    pub deadline_unix_ms: i64,
    pub received_unix_ms: i64,
    /// Who delivered the witness (the authenticated request signer), when known. A witness
    /// delivered by anyone but its own worker is refused: no relaying others' work.
    pub submitted_by: Option<PublicKey>,
}

/// Every check of a witness, in order; the first failure names the verdict's rejection.
pub const CHECKS: [&str; 7] = [
    "bad_signature",
    "provenance_mismatch",
    "stale_round",
    "cnf_sha256_mismatch",
    "malformed_witness",
    "variable_out_of_range",
    "solution_unsatisfied",
];

/// Replays a signed witness against the round's instances (looked up by hash) and returns the
/// full verdict plus, when accepted, the verified witness.
pub fn verify_witness<'a>(
    ctx: &SatVerifyContext,
    instances: impl Fn(&hallmark_core::Sha256Digest) -> Option<&'a Cnf>,
    signed: &Signed<Witness>,
) -> (Verdict, Option<(PublicKey, Witness)>) {
    replay_witness(ctx, instances, signed.verify())
}

/// [`verify_witness`] for a caller that already ran the envelope's signature check (and looked
/// at the payload, e.g. to find the round): the outcome of that check is the verdict's first
/// check, so the signature is verified exactly once.
pub fn replay_witness<'a>(
    ctx: &SatVerifyContext,
    instances: impl Fn(&hallmark_core::Sha256Digest) -> Option<&'a Cnf>,
    signature: Result<Verified<Witness>, DsseError>,
) -> (Verdict, Option<(PublicKey, Witness)>) {
    let mut v = VerdictBuilder::new("sat");
    let verified = match signature {
        Ok(w) => {
            v.pass("bad_signature", format!("signed by {}", w.signer));
            w
        }
        Err(e) => {
            v.fail("bad_signature", e.to_string());
            v.skip(&CHECKS[1..]);
            return (v.finish(), None);
        }
    };
    let w = verified.payload;
    if w.worker_hotkey != verified.signer {
        v.fail(
            "provenance_mismatch",
            format!(
                "witness names worker {} but is signed by {}",
                w.worker_hotkey, verified.signer
            ),
        );
    } else if ctx.submitted_by.is_some_and(|s| s != verified.signer) {
        v.fail(
            "provenance_mismatch",
            format!(
                "witness of {} was submitted by {}",
                verified.signer,
                ctx.submitted_by.map(|s| s.to_ss58()).unwrap_or_default()
            ),
        );
    } else if w.nonce != ctx.round_nonce {
        v.fail(
            "provenance_mismatch",
            "witness nonce is not this round's nonce",
        );
    } else {
        v.pass("provenance_mismatch", "hotkey and round nonce bound");
    }
    if w.round_id != ctx.current_round {
        v.fail(
            "stale_round",
            format!(
                "witness is for {} but the open round is {}",
                w.round_id, ctx.current_round
            ),
        );
    } else if ctx.received_unix_ms > ctx.deadline_unix_ms {
        v.fail(
            "stale_round",
            format!(
                "received {} ms after the deadline",
                ctx.received_unix_ms - ctx.deadline_unix_ms
            ),
        );
    } else {
        v.pass("stale_round", "round open, before its deadline");
    }
    if v.failed() {
        v.skip(&CHECKS[3..]);
        return (v.finish(), None);
    }
    let Some(cnf) = instances(&w.instance_sha256) else {
        v.fail(
            "cnf_sha256_mismatch",
            format!("{} is not an instance of {}", w.instance_sha256, w.round_id),
        );
        v.skip(&CHECKS[4..]);
        return (v.finish(), None);
    };
    v.pass(
        "cnf_sha256_mismatch",
        format!("instance {}", w.instance_sha256),
    );
    match check_assignment(cnf, &w.assignment) {
        Ok(()) => {
            v.pass("malformed_witness", "well-formed assignment");
            v.pass("variable_out_of_range", "all variables in range");
            v.pass(
                "solution_unsatisfied",
                format!("all {} clauses satisfied", cnf.clauses.len()),
            );
            (v.finish(), Some((verified.signer, w)))
        }
        Err(rej) => {
            let pos = CHECKS
                .iter()
                .position(|c| *c == rej.code())
                .unwrap_or(CHECKS.len() - 1);
            for c in &CHECKS[4..pos] {
                v.pass(c, "");
            }
            v.fail(rej.code(), rej.to_string());
            v.skip(&CHECKS[pos + 1..]);
            (v.finish(), None)
        }
    }
}

/// The sat lane's known-answer self-test (see `RoundLane::self_test`).
pub fn self_test() -> hallmark_core::Verdict {
    let mut v = hallmark_core::VerdictBuilder::new("sat");
    let params = crate::InstanceParams {
        vars: 100,
        clauses: 300,
        k: 3,
        count: 1,
    };
    let cnf = match crate::generate_instance(&params, 0x5e1f_7e57, 0) {
        Ok(c) => c,
        Err(e) => {
            v.fail_code("instance_generated", "generate_failed", e.to_string());
            return v.finish();
        }
    };
    v.pass(
        "instance_generated",
        format!("{} vars, {} clauses", cnf.num_vars, cnf.clauses.len()),
    );
    let assignment = match crate::solve(&cnf) {
        crate::SolveOutcome::Satisfiable(a) => a,
        other => {
            v.fail(
                "solved_assignment_accepted",
                format!("the solver answered {other:?}"),
            );
            return v.finish();
        }
    };
    match check_assignment(&cnf, &assignment) {
        Ok(()) => v.pass("solved_assignment_accepted", "every clause satisfied"),
        Err(e) => v.fail(
            "solved_assignment_accepted",
            format!("the verifier refused the solver's assignment: {e}"),
        ),
    }
    // Make every literal of the first clause false: the verifier must name a clause.
    let mut broken = assignment;
    if let Some(first) = cnf.clauses.first() {
        for lit in first {
            for a in broken.iter_mut() {
                if a.unsigned_abs() == lit.unsigned_abs() {
                    *a = -*lit;
                }
            }
        }
    }
    match check_assignment(&cnf, &broken) {
        Err(e) => v.pass("broken_assignment_refused", format!("refused: {e}")),
        Ok(()) => v.fail(
            "broken_assignment_refused",
            "an assignment falsifying a clause was accepted",
        ),
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_core::Keypair;

    fn cnf() -> Cnf {
        Cnf::parse_dimacs("p cnf 3 2\n1 -2 0\n2 3 0\n").unwrap()
    }

    #[test]
    fn assignment_checks() {
        let c = cnf();
        check_assignment(&c, &[1, 2, -3]).unwrap();
        assert_eq!(
            check_assignment(&c, &[-1, 2, -3]).unwrap_err().code(),
            "solution_unsatisfied"
        );
        assert_eq!(
            check_assignment(&c, &[1, 4]).unwrap_err().code(),
            "variable_out_of_range"
        );
        assert_eq!(
            check_assignment(&c, &[1, -1, 2]).unwrap_err().code(),
            "malformed_witness"
        );
        assert_eq!(
            check_assignment(&c, &[1, 0]).unwrap_err().code(),
            "malformed_witness"
        );
        // Leaving variable 2 and 3 unassigned satisfies nothing in clause 2.
        assert_eq!(
            check_assignment(&c, &[1]).unwrap_err().code(),
            "solution_unsatisfied"
        );
    }

    fn setup() -> (Keypair, SatVerifyContext, Cnf) {
        let kp = Keypair::generate();
        let ctx = SatVerifyContext {
            current_round: RoundId::for_lane("sat", 5),
            round_nonce: "ab".repeat(16),
            deadline_unix_ms: 10_000,
            received_unix_ms: 5_000,
            submitted_by: None,
        };
        (kp, ctx, cnf())
    }

    fn witness(kp: &Keypair, ctx: &SatVerifyContext, c: &Cnf, assignment: Vec<i32>) -> Witness {
        Witness {
            round_id: ctx.current_round.clone(),
            instance_sha256: c.sha256(),
            worker_hotkey: kp.public(),
            nonce: ctx.round_nonce.clone(),
            assignment,
        }
    }

    fn run(ctx: &SatVerifyContext, c: &Cnf, s: &Signed<Witness>) -> Verdict {
        let sha = c.sha256();
        verify_witness(ctx, |h| (*h == sha).then_some(c), s).0
    }

    #[test]
    fn every_rejection_code() {
        let (kp, ctx, c) = setup();
        let good = witness(&kp, &ctx, &c, vec![1, 2, -3]);
        let v = run(&ctx, &c, &Signed::sign(&good, &kp).unwrap());
        assert!(v.accepted, "{v:?}");
        assert_eq!(v.checks.len(), CHECKS.len());

        let code = |w: &Witness, signer: &Keypair, ctx: &SatVerifyContext| {
            run(ctx, &c, &Signed::sign(w, signer).unwrap())
                .rejection
                .unwrap()
        };
        // Signed by someone else than the named worker.
        assert_eq!(
            code(&good, &Keypair::generate(), &ctx),
            "provenance_mismatch"
        );
        let mut w = good.clone();
        w.nonce = "00".repeat(16);
        assert_eq!(code(&w, &kp, &ctx), "provenance_mismatch");
        let mut w = good.clone();
        w.round_id = RoundId::for_lane("sat", 4);
        assert_eq!(code(&w, &kp, &ctx), "stale_round");
        let mut relayed = ctx.clone();
        relayed.submitted_by = Some(Keypair::generate().public());
        assert_eq!(code(&good, &kp, &relayed), "provenance_mismatch");
        relayed.submitted_by = Some(kp.public());
        assert!(run(&relayed, &c, &Signed::sign(&good, &kp).unwrap()).accepted);
        let mut late = ctx.clone();
        late.received_unix_ms = 10_001;
        assert_eq!(code(&good, &kp, &late), "stale_round");
        let mut w = good.clone();
        w.instance_sha256 = hallmark_core::sha256(b"other");
        assert_eq!(code(&w, &kp, &ctx), "cnf_sha256_mismatch");
        let mut w = good.clone();
        w.assignment = vec![1, -1];
        assert_eq!(code(&w, &kp, &ctx), "malformed_witness");
        let mut w = good.clone();
        w.assignment = vec![1, 2, 7];
        assert_eq!(code(&w, &kp, &ctx), "variable_out_of_range");
        let mut w = good.clone();
        w.assignment = vec![-1, 2, -3];
        assert_eq!(code(&w, &kp, &ctx), "solution_unsatisfied");

        let signed = Signed::sign(&good, &kp).unwrap();
        let mut env = signed.envelope().clone();
        env.signatures[0].sig = env.signatures[0].sig.replace('A', "B");
        if env.signatures[0].sig == signed.envelope().signatures[0].sig {
            env.signatures[0].sig = "AAAA".into();
        }
        let v = run(&ctx, &c, &Signed::from_envelope(env));
        assert_eq!(v.rejection.as_deref(), Some("bad_signature"));
        assert!(!v.accepted);
    }

    #[test]
    fn the_self_test_passes() {
        let v = super::self_test();
        assert!(v.accepted, "{v:#?}");
        assert_eq!(v.checks.len(), 3);
    }
}
