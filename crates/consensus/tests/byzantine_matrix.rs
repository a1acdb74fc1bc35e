//! Issue 19, item 12: the byzantine matrix. Validators that invert, inflate, replay,
//! equivocate, go silent or vote against valid proofs, holding stake just under and just over
//! each bound (1/3, 1/2, 2/3 of 1000), against honest validators holding the rest. Each cell
//! runs the real decision functions (`decide_round` for a sat round's stake-weighted median
//! and quorum, `tally_votes` on signed votes for a job) and is checked against what the bound
//! promises: below it the honest outcome stands; past it the attack is expected to work (or,
//! for silence, to stall), which shows the bound is tight. The table is printed
//! (`cargo test -p hallmark-consensus --test byzantine_matrix -- --nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use hallmark_consensus::median::ValidatorScores;
use hallmark_consensus::{decide_round, tally_votes, JobVote, Quorum, VoteOutcome, WinnerPolicy};
use hallmark_core::{Keypair, PublicKey, Signed};

const TOTAL: u64 = 1000;
/// Byzantine stakes just under and just over each bound.
const LEVELS: [u64; 6] = [333, 334, 499, 501, 666, 667];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    /// Reports 1 − s for every worker; votes the opposite of the truth.
    Invert,
    /// Pushes its favourite worker to 1.0; votes every result valid.
    Inflate,
    /// Sends an old round's report (favouring another worker); replays votes of another job.
    Replay,
    /// Signs two different reports or votes: both are dropped as evidence.
    Equivocate,
    /// Sends nothing.
    Silent,
    /// Scores the best worker 0; votes a valid proof invalid.
    AgainstValid,
}

const STRATEGIES: [Strategy; 6] = [
    Strategy::Invert,
    Strategy::Inflate,
    Strategy::Replay,
    Strategy::Equivocate,
    Strategy::Silent,
    Strategy::AgainstValid,
];

struct Workers {
    a: PublicKey,
    b: PublicKey,
    c: PublicKey,
}

fn workers() -> Workers {
    Workers {
        a: Keypair::from_seed(&[1; 32]).public(),
        b: Keypair::from_seed(&[2; 32]).public(),
        c: Keypair::from_seed(&[3; 32]).public(),
    }
}

/// What honest validators measure: A is best.
fn truth(w: &Workers) -> BTreeMap<PublicKey, f64> {
    [(w.a, 0.9), (w.b, 0.5), (w.c, 0.2)].into()
}

/// The byzantine validators' report under `s`, or none.
fn byzantine_report(s: Strategy, w: &Workers) -> Option<BTreeMap<PublicKey, f64>> {
    let t = truth(w);
    match s {
        Strategy::Invert => Some(t.iter().map(|(k, v)| (*k, 1.0 - v)).collect()),
        Strategy::Inflate => Some([(w.a, 0.9), (w.b, 0.5), (w.c, 1.0)].into()),
        Strategy::Replay => Some([(w.a, 0.0), (w.b, 0.0), (w.c, 0.7)].into()),
        // Two different signed reports are evidence; neither is used (the round pipeline
        // drops an equivocator's reports), so it counts as not reporting.
        Strategy::Equivocate | Strategy::Silent => None,
        Strategy::AgainstValid => Some([(w.a, 0.0), (w.b, 0.5), (w.c, 0.2)].into()),
    }
}

/// The round's winner (None: quorum not met, no incumbent to keep).
fn round_winner(s: Strategy, byz: u64, w: &Workers) -> Option<PublicKey> {
    let honest = truth(w);
    let report = byzantine_report(s, w);
    let mut reports = vec![ValidatorScores {
        stake: TOTAL - byz,
        scores: &honest,
    }];
    if let Some(r) = &report {
        reports.push(ValidatorScores {
            stake: byz,
            scores: r,
        });
    }
    decide_round(&reports, TOTAL, None, &WinnerPolicy::default()).winner
}

fn vote(key: &Keypair, job_id: &str, digest: &str, valid: bool) -> Signed<JobVote> {
    Signed::sign(
        &JobVote {
            job_id: job_id.into(),
            result_digest: digest.into(),
            valid,
        },
        key,
    )
    .unwrap()
}

/// A job's outcome when its proof is `proof_valid`: honest validators vote the truth.
fn job_outcome(s: Strategy, byz: u64, proof_valid: bool) -> (VoteOutcome, usize) {
    let honest = Keypair::from_seed(&[10; 32]);
    let byzantine = Keypair::from_seed(&[11; 32]);
    let stakes: BTreeMap<PublicKey, u64> =
        [(honest.public(), TOTAL - byz), (byzantine.public(), byz)].into();
    let (job, digest) = ("job-matrix", "d1gest");
    let mut votes = vec![vote(&honest, job, digest, proof_valid)];
    match s {
        Strategy::Invert => votes.push(vote(&byzantine, job, digest, !proof_valid)),
        // Every proof voted down: valid ones wrongly, invalid ones rightly.
        Strategy::AgainstValid => votes.push(vote(&byzantine, job, digest, false)),
        Strategy::Inflate => votes.push(vote(&byzantine, job, digest, true)),
        Strategy::Replay => votes.push(vote(&byzantine, "job-earlier", digest, true)),
        Strategy::Equivocate => {
            votes.push(vote(&byzantine, job, digest, true));
            votes.push(vote(&byzantine, job, digest, false));
        }
        Strategy::Silent => {}
    }
    let tally = tally_votes(job, digest, &votes, &stakes, Quorum::TWO_THIRDS);
    (tally.outcome, tally.equivocations.len())
}

/// What the bounds promise for a round: the median holds while byzantine stake is under 1/2,
/// and a round decides only with 2/3 of stake reporting.
fn round_expected(s: Strategy, byz: u64, w: &Workers) -> Option<PublicKey> {
    let manipulates = !matches!(s, Strategy::Equivocate | Strategy::Silent);
    if !manipulates {
        // Quorum: 2/3 of stake must report.
        return (3 * (TOTAL - byz) >= 2 * TOTAL).then_some(w.a);
    }
    if 2 * byz < TOTAL {
        return Some(w.a);
    }
    // Past 1/2 the byzantine median is theirs: their favourite wins.
    Some(match s {
        Strategy::AgainstValid => w.b,
        _ => w.c,
    })
}

/// What the bounds promise for a job (quorum 2/3 of stake to approve, more than 1/3 to block).
fn job_expected(s: Strategy, byz: u64, proof_valid: bool) -> VoteOutcome {
    let honest = TOTAL - byz;
    let quorum = |stake: u64| 3 * stake >= 2 * TOTAL;
    let byz_votes_valid = match s {
        Strategy::Invert => Some(!proof_valid),
        Strategy::AgainstValid => Some(false),
        Strategy::Inflate => Some(true),
        Strategy::Replay | Strategy::Equivocate | Strategy::Silent => None,
    };
    let (valid, invalid) = match (proof_valid, byz_votes_valid) {
        (true, Some(true)) => (TOTAL, 0),
        (true, Some(false)) => (honest, byz),
        (true, None) => (honest, 0),
        (false, Some(true)) => (byz, honest),
        (false, Some(false)) => (0, TOTAL),
        (false, None) => (0, honest),
    };
    if quorum(valid) {
        VoteOutcome::Approved
    } else if !quorum(TOTAL - invalid) {
        VoteOutcome::Rejected
    } else {
        VoteOutcome::Pending
    }
}

fn name(k: Option<PublicKey>, w: &Workers) -> &'static str {
    match k {
        Some(k) if k == w.a => "A (honest)",
        Some(k) if k == w.b => "B",
        Some(k) if k == w.c => "C",
        Some(_) => "?",
        None => "none (held)",
    }
}

#[test]
fn every_cell_is_as_the_bounds_promise() {
    let w = workers();
    let mut rows = Vec::new();
    let mut wrong = Vec::new();
    for s in STRATEGIES {
        for byz in LEVELS {
            let got_round = round_winner(s, byz, &w);
            let want_round = round_expected(s, byz, &w);
            let (got_valid, equivocations) = job_outcome(s, byz, true);
            let want_valid = job_expected(s, byz, true);
            let (got_invalid, _) = job_outcome(s, byz, false);
            let want_invalid = job_expected(s, byz, false);
            if s == Strategy::Equivocate {
                assert_eq!(equivocations, 1, "the double vote is kept as evidence");
            }
            let ok =
                got_round == want_round && got_valid == want_valid && got_invalid == want_invalid;
            if !ok {
                wrong.push(format!(
                    "{s:?} at {byz}: round {} (want {}), valid proof {got_valid:?} (want {want_valid:?}), invalid proof {got_invalid:?} (want {want_invalid:?})",
                    name(got_round, &w),
                    name(want_round, &w)
                ));
            }
            rows.push(format!(
                "| {:<12} | {:>4}/{TOTAL} | {:<11} | {:<14} | {:<14} | {} |",
                format!("{s:?}"),
                byz,
                name(got_round, &w),
                format!("{got_valid:?}"),
                format!("{got_invalid:?}"),
                if ok { "as bounded" } else { "WRONG" }
            ));
        }
    }
    println!(
        "| strategy     | byz stake | round winner | valid proof    | invalid proof  | check |"
    );
    println!(
        "|--------------|-----------|--------------|----------------|----------------|-------|"
    );
    for r in &rows {
        println!("{r}");
    }
    assert!(
        wrong.is_empty(),
        "cells off their bound:\n{}",
        wrong.join("\n")
    );
    // The safe side of each bound, spelled out.
    assert_eq!(round_winner(Strategy::Invert, 499, &w), Some(w.a));
    assert_eq!(
        job_outcome(Strategy::AgainstValid, 333, true).0,
        VoteOutcome::Approved
    );
    assert_eq!(
        job_outcome(Strategy::Inflate, 666, false).0,
        VoteOutcome::Rejected
    );
    assert_eq!(
        job_outcome(Strategy::Silent, 333, true).0,
        VoteOutcome::Approved
    );
    assert_eq!(round_winner(Strategy::Silent, 334, &w), None);
}
