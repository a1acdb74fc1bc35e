//! Winner-take-all with dethrone-by-margin hysteresis, quorum, and agreement.

use std::collections::BTreeMap;

use hallmark_core::PublicKey;
use serde::{Deserialize, Serialize};

use crate::median::{consensus_scores, ValidatorScores};
use crate::quorum::Quorum;

/// How the winner is chosen from consensus scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WinnerPolicy {
    /// A challenger must score more than the incumbent's score plus this margin to dethrone it.
    pub dethrone_margin: f64,
    /// The share of stake that must have reported for the round to decide anything.
    pub quorum: Quorum,
}

impl Default for WinnerPolicy {
    fn default() -> Self {
        Self {
            dethrone_margin: 0.02,
            quorum: Quorum::TWO_THIRDS,
        }
    }
}

/// The best-scoring worker; ties go to the smallest hotkey so every validator picks the same.
fn best(scores: &BTreeMap<PublicKey, f64>) -> Option<(PublicKey, f64)> {
    scores.iter().filter(|(_, s)| s.is_finite()).fold(
        None,
        |acc: Option<(PublicKey, f64)>, (k, s)| match acc {
            Some((_, bs)) if bs >= *s => acc,
            _ => Some((*k, *s)),
        },
    )
}

/// Applies hysteresis: the top challenger takes over only if it beats the incumbent's
/// consensus score by more than the margin. An incumbent no longer scored counts as 0.
pub fn select_winner(
    scores: &BTreeMap<PublicKey, f64>,
    incumbent: Option<PublicKey>,
    margin: f64,
) -> Option<PublicKey> {
    let (challenger, challenger_score) = match best(scores) {
        Some(b) => b,
        None => return incumbent,
    };
    match incumbent {
        Some(inc) if inc != challenger => {
            let inc_score = scores.get(&inc).copied().unwrap_or(0.0);
            if challenger_score > inc_score + margin {
                Some(challenger)
            } else {
                Some(inc)
            }
        }
        _ => Some(challenger),
    }
}

/// Whether a validator agrees with the consensus winner: by its own scores, the winner is
/// within the dethrone margin of its own best worker.
pub fn agrees(own: &BTreeMap<PublicKey, f64>, winner: Option<&PublicKey>, margin: f64) -> bool {
    match (best(own), winner) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some(_), None) => false,
        (Some((_, top)), Some(w)) => own.get(w).copied().unwrap_or(0.0) >= top - margin,
    }
}

/// What one round decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoundDecision {
    pub consensus: BTreeMap<PublicKey, f64>,
    pub winner: Option<PublicKey>,
    pub reporting_stake: u64,
    pub total_stake: u64,
    pub quorum_met: bool,
    /// Quorum reported, but no worker scored above zero: nothing was measured (every worker
    /// missed the window, say on a machine too busy to solve in time). Such a round names no
    /// winner and leaves the incumbent where it was.
    #[serde(default)]
    pub void: bool,
}

/// Decides a round from validators' reports: consensus scores by stake-weighted median, then
/// the winner with hysteresis. Below quorum, the incumbent is kept.
pub fn decide_round(
    reports: &[ValidatorScores<'_>],
    total_stake: u64,
    incumbent: Option<PublicKey>,
    policy: &WinnerPolicy,
) -> RoundDecision {
    let reporting_stake = reports.iter().map(|r| r.stake).sum();
    let consensus = consensus_scores(reports);
    let quorum_met = policy.quorum.is_met(reporting_stake, total_stake);
    let void = quorum_met && !consensus.values().any(|s| s.is_finite() && *s > 0.0);
    let winner = if void {
        None
    } else if quorum_met {
        select_winner(&consensus, incumbent, policy.dethrone_margin)
    } else {
        incumbent
    };
    RoundDecision {
        consensus,
        winner,
        reporting_stake,
        total_stake,
        quorum_met,
        void,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_core::Keypair;

    fn keys() -> (PublicKey, PublicKey, PublicKey) {
        (
            Keypair::from_seed(&[1; 32]).public(),
            Keypair::from_seed(&[2; 32]).public(),
            Keypair::from_seed(&[3; 32]).public(),
        )
    }

    #[test]
    fn a_round_where_nobody_scored_is_void() {
        let (a, b, _) = keys();
        let zeros: BTreeMap<_, _> = [(a, 0.0), (b, 0.0)].into();
        let reports = [ValidatorScores {
            stake: 10,
            scores: &zeros,
        }];
        let d = decide_round(&reports, 10, Some(b), &WinnerPolicy::default());
        assert!(d.quorum_met && d.void);
        assert_eq!(
            d.winner, None,
            "no winner named, the incumbent is not re-elected"
        );
        let some: BTreeMap<_, _> = [(a, 0.0), (b, 0.1)].into();
        let reports = [ValidatorScores {
            stake: 10,
            scores: &some,
        }];
        let d = decide_round(&reports, 10, None, &WinnerPolicy::default());
        assert!(!d.void);
        assert_eq!(d.winner, Some(b));
    }

    #[test]
    fn hysteresis() {
        let (a, b, _) = keys();
        let scores: BTreeMap<_, _> = [(a, 0.50), (b, 0.51)].into();
        assert_eq!(select_winner(&scores, None, 0.02), Some(b));
        assert_eq!(
            select_winner(&scores, Some(a), 0.02),
            Some(a),
            "within margin"
        );
        let scores: BTreeMap<_, _> = [(a, 0.50), (b, 0.53)].into();
        assert_eq!(
            select_winner(&scores, Some(a), 0.02),
            Some(b),
            "beats margin"
        );
        assert_eq!(select_winner(&BTreeMap::new(), Some(a), 0.02), Some(a));
    }

    #[test]
    fn ties_are_deterministic() {
        let (a, b, c) = keys();
        let scores: BTreeMap<_, _> = [(a, 0.5), (b, 0.5), (c, 0.5)].into();
        let w = select_winner(&scores, None, 0.0).unwrap();
        assert_eq!(w, *scores.keys().next().unwrap());
    }

    #[test]
    fn agreement() {
        let (a, b, _) = keys();
        let own: BTreeMap<_, _> = [(a, 0.9), (b, 0.89)].into();
        assert!(agrees(&own, Some(&a), 0.02));
        assert!(agrees(&own, Some(&b), 0.02));
        let inverted: BTreeMap<_, _> = [(a, 0.1), (b, 0.9)].into();
        assert!(!agrees(&inverted, Some(&a), 0.02));
    }

    #[test]
    fn below_quorum_keeps_incumbent() {
        let (a, b, _) = keys();
        let s: BTreeMap<_, _> = [(a, 0.1), (b, 0.9)].into();
        let policy = WinnerPolicy::default();
        let d = decide_round(
            &[ValidatorScores {
                stake: 10,
                scores: &s,
            }],
            30,
            Some(a),
            &policy,
        );
        assert!(!d.quorum_met);
        assert_eq!(d.winner, Some(a));
        let d = decide_round(
            &[
                ValidatorScores {
                    stake: 10,
                    scores: &s,
                },
                ValidatorScores {
                    stake: 10,
                    scores: &s,
                },
            ],
            30,
            Some(a),
            &policy,
        );
        assert!(d.quorum_met);
        assert_eq!(d.winner, Some(b));
    }

    #[test]
    fn one_byzantine_of_four_cannot_flip_winner() {
        let (a, b, _) = keys();
        let honest: BTreeMap<_, _> = [(a, 0.9), (b, 0.6)].into();
        let inverted: BTreeMap<_, _> = [(a, 0.1), (b, 0.4)].into();
        let reports = [
            ValidatorScores {
                stake: 1,
                scores: &honest,
            },
            ValidatorScores {
                stake: 1,
                scores: &honest,
            },
            ValidatorScores {
                stake: 1,
                scores: &honest,
            },
            ValidatorScores {
                stake: 1,
                scores: &inverted,
            },
        ];
        let d = decide_round(&reports, 4, None, &WinnerPolicy::default());
        assert_eq!(d.winner, Some(a));
        assert_eq!(d.consensus[&a], 0.9);
    }
}
