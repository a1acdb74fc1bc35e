//! Weight rules: how a validator turns its decided rounds into the weight vector it sets for
//! a lane's epoch.
//!
//! - Only **recent** rows count: the rounds of the last `window_rounds` numbers, this one
//!   included.
//! - Only **attested** rows count: the round's result was signed, logged (a receipt exists)
//!   and committed (a score commitment on the ledger), and its quorum was met.
//! - Each row belongs to a **class**: its lane, or a tier of it (`sat-t2`) when the round id
//!   carries a tier prefix right after a *known* lane name; anything else has no class, so an
//!   id that merely contains `-t2-` changes nothing. Only classes on the lane's **allowlist**
//!   count, and each allowed class gets an equal share of the budget.
//! - When an allowed class has no row in the window, config decides: a **proportional**
//!   fallback (its share goes to the classes present, in proportion, and the outcome names the
//!   missing classes), or **hold** (no weights at all this epoch). Either way the decision is
//!   in the [`WeightOutcome`], which the validator signs into its round result.
//! - **Coldkey collapse**: hotkeys sharing a coldkey split one budget, the max of their
//!   scores, so an operator gains nothing by spreading work over many hotkeys.
//!
//! Inside a class a hotkey's score is the share of the class's rows it won. With a window of
//! one round and one class this is winner-take-all, as before the rules.
//!
//! Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};

use hallmark_core::{PublicKey, RoundId};
use serde::{Deserialize, Serialize};

/// What to do when an allowed class has no attested row in the window.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MissingClassRule {
    /// Share the budget among the classes present, in proportion; name the missing ones.
    #[default]
    Proportional,
    /// Set no weights this epoch.
    Hold,
}

/// A lane's weight rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WeightRules {
    /// How many round numbers back rows count (1: this round only).
    pub window_rounds: u64,
    /// The classes that count (`sat`, `sat-t2`, …), each once.
    pub allowlist: Vec<String>,
    pub missing: MissingClassRule,
}

/// One decided round as the rules read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoredRow {
    pub round_id: RoundId,
    /// The round's winner (none in a void round).
    pub winner: Option<PublicKey>,
    pub quorum_met: bool,
    /// The validator signed the round's result.
    pub signed: bool,
    /// The result is in the validator's log (a receipt exists).
    pub logged: bool,
    /// The validator committed its scores for the round on the ledger.
    pub committed: bool,
}

/// A row the rules did not count, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExcludedRow {
    pub round_id: RoundId,
    /// `outside_window`, `not_signed`, `not_logged`, `not_committed`, `no_quorum`,
    /// `no_class`, `class_not_allowed`.
    pub reason: String,
}

/// What the rules decided, in full: signed into the round result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WeightOutcome {
    pub window_rounds: u64,
    pub allowlist: Vec<String>,
    pub missing_rule: MissingClassRule,
    /// The rows counted (a void round's too: it dilutes its class and pays no one).
    pub rows: Vec<RoundId>,
    pub excluded: Vec<ExcludedRow>,
    /// Each class present and the share of the budget it got.
    pub class_shares: BTreeMap<String, f64>,
    /// Allowed classes with no row in the window.
    pub missing_classes: Vec<String>,
    /// `proportional` when missing classes' shares went to the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<MissingClassRule>,
    /// Why no weights were set, when none were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// Hotkeys whose budget was collapsed with others of their coldkey: coldkey → hotkeys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub collapsed: BTreeMap<PublicKey, Vec<PublicKey>>,
    /// The vector set, largest weight `u16::MAX`.
    pub weights: Vec<(PublicKey, u16)>,
}

/// The class of a round id among `known_lanes`: the lane itself for `<lane>-round-N`, or the
/// tier `<lane>-tK` for `<lane>-tK-round-N`. `None` for anything else.
pub fn class_of(round_id: &RoundId, known_lanes: &[&str]) -> Option<(String, String)> {
    let (prefix, _) = round_id.lane_and_number()?;
    if known_lanes.contains(&prefix) {
        return Some((prefix.to_string(), prefix.to_string()));
    }
    let (lane, tier) = prefix.rsplit_once("-t")?;
    let is_tier = !tier.is_empty() && tier.len() <= 3 && tier.bytes().all(|b| b.is_ascii_digit());
    (is_tier && known_lanes.contains(&lane)).then(|| (lane.to_string(), prefix.to_string()))
}

/// Applies `rules` to a lane's rows as of round `number`. `coldkey_of` names each hotkey's
/// coldkey (a hotkey it does not know stands alone).
pub fn plan_weights(
    lane: &str,
    number: u64,
    rows: &[ScoredRow],
    rules: &WeightRules,
    known_lanes: &[&str],
    coldkey_of: &dyn Fn(&PublicKey) -> Option<PublicKey>,
) -> WeightOutcome {
    let mut excluded = Vec::new();
    let mut counted = Vec::new();
    // Wins per class, per hotkey; rows per class.
    let mut wins: BTreeMap<String, BTreeMap<PublicKey, u64>> = BTreeMap::new();
    let mut rows_in: BTreeMap<String, u64> = BTreeMap::new();
    let oldest = number.saturating_sub(rules.window_rounds.max(1) - 1);
    for row in rows {
        let exclude = |why: &str| ExcludedRow {
            round_id: row.round_id.clone(),
            reason: why.to_string(),
        };
        let Some((row_lane, class)) = class_of(&row.round_id, known_lanes) else {
            excluded.push(exclude("no_class"));
            continue;
        };
        let n = row.round_id.lane_and_number().map_or(0, |(_, n)| n);
        let why = if row_lane != lane {
            Some("no_class")
        } else if n < oldest || n > number {
            Some("outside_window")
        } else if !row.signed {
            Some("not_signed")
        } else if !row.logged {
            Some("not_logged")
        } else if !row.committed {
            Some("not_committed")
        } else if !row.quorum_met {
            Some("no_quorum")
        } else if !rules.allowlist.contains(&class) {
            Some("class_not_allowed")
        } else {
            None
        };
        if let Some(why) = why {
            excluded.push(exclude(why));
            continue;
        }
        // A void round is a row of its class with no winner: it dilutes, it pays no one.
        *rows_in.entry(class.clone()).or_default() += 1;
        if let Some(w) = row.winner {
            *wins.entry(class).or_default().entry(w).or_default() += 1;
        }
        counted.push(row.round_id.clone());
    }
    let allowed: BTreeSet<&String> = rules.allowlist.iter().collect();
    let present: Vec<&String> = allowed
        .iter()
        .copied()
        .filter(|c| rows_in.contains_key(*c))
        .collect();
    let missing_classes: Vec<String> = allowed
        .iter()
        .filter(|c| !rows_in.contains_key(**c))
        .map(|c| c.to_string())
        .collect();
    let mut out = WeightOutcome {
        window_rounds: rules.window_rounds,
        allowlist: rules.allowlist.clone(),
        missing_rule: rules.missing,
        rows: counted,
        excluded,
        class_shares: BTreeMap::new(),
        missing_classes: missing_classes.clone(),
        fallback: None,
        held: None,
        collapsed: BTreeMap::new(),
        weights: Vec::new(),
    };
    if present.is_empty() {
        out.held = Some(format!(
            "no attested row of an allowed class ({:?}) in the last {} round(s)",
            rules.allowlist, rules.window_rounds
        ));
        return out;
    }
    if !missing_classes.is_empty() {
        match rules.missing {
            MissingClassRule::Hold => {
                out.held = Some(format!(
                    "class(es) {missing_classes:?} have no attested row in the last {} round(s); the rules hold the vector",
                    rules.window_rounds
                ));
                return out;
            }
            MissingClassRule::Proportional => out.fallback = Some(MissingClassRule::Proportional),
        }
    }
    // Each present class an equal share (the missing ones' shares spread over them).
    let share = 1.0 / present.len() as f64;
    let mut score: BTreeMap<PublicKey, f64> = BTreeMap::new();
    for class in &present {
        out.class_shares.insert(class.to_string(), share);
        let total = rows_in.get(*class).copied().unwrap_or(0).max(1) as f64;
        for (hotkey, won) in wins.get(*class).into_iter().flatten() {
            *score.entry(*hotkey).or_default() += share * (*won as f64) / total;
        }
    }
    // Coldkey collapse: one budget per coldkey, the max of its hotkeys' scores, split evenly.
    let mut groups: BTreeMap<Option<PublicKey>, Vec<PublicKey>> = BTreeMap::new();
    for hotkey in score.keys() {
        match coldkey_of(hotkey) {
            Some(c) => groups.entry(Some(c)).or_default().push(*hotkey),
            None => groups.entry(None).or_default().push(*hotkey),
        }
    }
    let mut collapsed_score: BTreeMap<PublicKey, f64> = BTreeMap::new();
    for (coldkey, hotkeys) in groups {
        match coldkey {
            Some(c) if hotkeys.len() > 1 => {
                let best = hotkeys
                    .iter()
                    .map(|h| score.get(h).copied().unwrap_or(0.0))
                    .fold(0.0_f64, f64::max);
                let each = best / hotkeys.len() as f64;
                for h in &hotkeys {
                    collapsed_score.insert(*h, each);
                }
                out.collapsed.insert(c, hotkeys);
            }
            _ => {
                for h in hotkeys {
                    collapsed_score.insert(h, score.get(&h).copied().unwrap_or(0.0));
                }
            }
        }
    }
    let top = collapsed_score.values().copied().fold(0.0_f64, f64::max);
    if top <= 0.0 {
        out.held = Some("every counted row was void: no one to weigh".into());
        return out;
    }
    out.weights = collapsed_score
        .into_iter()
        .map(|(h, s)| (h, ((s / top) * f64::from(u16::MAX)).round() as u16))
        .filter(|(_, w)| *w > 0)
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_core::Keypair;

    const LANES: &[&str] = &["sat", "eval"];

    fn key(i: u8) -> PublicKey {
        Keypair::from_seed(&[i; 32]).public()
    }

    fn row(id: &str, winner: Option<u8>) -> ScoredRow {
        ScoredRow {
            round_id: RoundId::from(id),
            winner: winner.map(key),
            quorum_met: true,
            signed: true,
            logged: true,
            committed: true,
        }
    }

    fn rules(window: u64, allow: &[&str], missing: MissingClassRule) -> WeightRules {
        WeightRules {
            window_rounds: window,
            allowlist: allow.iter().map(|s| s.to_string()).collect(),
            missing,
        }
    }

    fn weights(out: &WeightOutcome) -> BTreeMap<PublicKey, u16> {
        out.weights.iter().copied().collect()
    }

    fn alone(_: &PublicKey) -> Option<PublicKey> {
        None
    }

    #[test]
    fn one_round_one_class_is_winner_take_all() {
        let out = plan_weights(
            "sat",
            5,
            &[row("sat-round-000005", Some(1))],
            &rules(1, &["sat"], MissingClassRule::Proportional),
            LANES,
            &alone,
        );
        assert_eq!(out.weights, [(key(1), u16::MAX)]);
        assert_eq!(out.held, None);
        assert_eq!(out.fallback, None);
    }

    #[test]
    fn only_recent_attested_rows_count() {
        let mut unlogged = row("sat-round-000009", Some(3));
        unlogged.logged = false;
        let mut uncommitted = row("sat-round-000008", Some(3));
        uncommitted.committed = false;
        let mut unsigned = row("sat-round-000007", Some(3));
        unsigned.signed = false;
        let mut no_quorum = row("sat-round-000006", Some(3));
        no_quorum.quorum_met = false;
        let rows = [
            row("sat-round-000001", Some(2)), // outside a window of 5 ending at 10
            row("sat-round-000010", Some(1)),
            unlogged,
            uncommitted,
            unsigned,
            no_quorum,
        ];
        let out = plan_weights(
            "sat",
            10,
            &rows,
            &rules(5, &["sat"], MissingClassRule::Proportional),
            LANES,
            &alone,
        );
        assert_eq!(out.weights, [(key(1), u16::MAX)]);
        let reasons: Vec<&str> = out.excluded.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "outside_window",
                "not_logged",
                "not_committed",
                "not_signed",
                "no_quorum"
            ]
        );
        assert_eq!(out.rows, [RoundId::from("sat-round-000010")]);
    }

    #[test]
    fn wins_in_the_window_share_the_budget() {
        let rows = [
            row("sat-round-000001", Some(1)),
            row("sat-round-000002", Some(2)),
            row("sat-round-000003", Some(1)),
            row("sat-round-000004", None), // void: dilutes, pays no one
        ];
        let out = plan_weights(
            "sat",
            4,
            &rows,
            &rules(4, &["sat"], MissingClassRule::Proportional),
            LANES,
            &alone,
        );
        assert_eq!(weights(&out), [(key(1), u16::MAX), (key(2), 32768)].into());
    }

    #[test]
    fn a_missing_class_falls_back_visibly_or_holds() {
        let rows = [row("sat-round-000001", Some(1))];
        let allow = ["sat", "sat-t2"];
        let out = plan_weights(
            "sat",
            1,
            &rows,
            &rules(1, &allow, MissingClassRule::Proportional),
            LANES,
            &alone,
        );
        assert_eq!(out.fallback, Some(MissingClassRule::Proportional));
        assert_eq!(out.missing_classes, ["sat-t2"]);
        assert_eq!(out.class_shares["sat"], 1.0);
        assert_eq!(out.weights, [(key(1), u16::MAX)]);

        let held = plan_weights(
            "sat",
            1,
            &rows,
            &rules(1, &allow, MissingClassRule::Hold),
            LANES,
            &alone,
        );
        assert!(held.weights.is_empty());
        assert!(held.held.as_deref().unwrap().contains("sat-t2"), "{held:?}");

        // Both classes present: an equal share each.
        let both = [
            row("sat-round-000002", Some(1)),
            row("sat-t2-round-000002", Some(2)),
        ];
        let out = plan_weights(
            "sat",
            2,
            &both,
            &rules(1, &allow, MissingClassRule::Hold),
            LANES,
            &alone,
        );
        assert_eq!(out.held, None);
        assert_eq!(
            weights(&out),
            [(key(1), u16::MAX), (key(2), u16::MAX)].into()
        );
    }

    #[test]
    fn tiers_parse_only_right_after_a_known_lane() {
        let id = |s: &str| RoundId::from(s);
        assert_eq!(
            class_of(&id("sat-t2-round-000001"), LANES),
            Some(("sat".into(), "sat-t2".into()))
        );
        assert_eq!(
            class_of(&id("sat-round-000001"), LANES),
            Some(("sat".into(), "sat".into()))
        );
        for unknown in [
            "evil-t2-round-000001",
            "sat-x-t2-round-000001",
            "xsat-t2-round-000001",
            "sat-t-round-000001",
            "sat-t2a-round-000001",
            "sat-tier-t2-round-000001",
        ] {
            assert_eq!(class_of(&id(unknown), LANES), None, "{unknown}");
        }
        // A row whose id merely contains -t2- is not a tier-2 row: it counts for nothing.
        let rows = [
            row("sat-round-000003", Some(1)),
            row("sat-x-t2-round-000003", Some(2)),
        ];
        let out = plan_weights(
            "sat",
            3,
            &rows,
            &rules(1, &["sat", "sat-t2"], MissingClassRule::Proportional),
            LANES,
            &alone,
        );
        assert_eq!(out.weights, [(key(1), u16::MAX)]);
        assert_eq!(out.excluded[0].reason, "no_class");
        // An allowed lane's tier that is not on the allowlist counts for nothing either.
        let out = plan_weights(
            "sat",
            3,
            &[row("sat-t3-round-000003", Some(2))],
            &rules(1, &["sat"], MissingClassRule::Proportional),
            LANES,
            &alone,
        );
        assert!(out.weights.is_empty());
        assert_eq!(out.excluded[0].reason, "class_not_allowed");
    }

    #[test]
    fn hotkeys_of_one_coldkey_split_the_max_of_their_scores() {
        // 1 and 2 share coldkey 9; 3 stands alone. 1 won two rounds, 2 one, 3 one.
        let rows = [
            row("sat-round-000001", Some(1)),
            row("sat-round-000002", Some(1)),
            row("sat-round-000003", Some(2)),
            row("sat-round-000004", Some(3)),
        ];
        let coldkeys = |h: &PublicKey| (*h == key(1) || *h == key(2)).then(|| key(9));
        let out = plan_weights(
            "sat",
            4,
            &rows,
            &rules(4, &["sat"], MissingClassRule::Proportional),
            LANES,
            &coldkeys,
        );
        // Scores 0.5, 0.25, 0.25 → the coldkey's budget is max(0.5, 0.25) = 0.5, split in
        // two: 0.25 each; 3 keeps 0.25. Spreading over hotkeys gained nothing.
        let w: BTreeMap<PublicKey, u16> = out.weights.iter().copied().collect();
        assert_eq!(w[&key(1)], w[&key(3)]);
        assert_eq!(w[&key(2)], w[&key(3)]);
        let mut group = out.collapsed[&key(9)].clone();
        group.sort_by_key(|k| k.to_ss58());
        let mut expected = vec![key(1), key(2)];
        expected.sort_by_key(|k| k.to_ss58());
        assert_eq!(group, expected);
    }

    #[test]
    fn nothing_attested_holds() {
        let mut r = row("sat-round-000001", Some(1));
        r.committed = false;
        let out = plan_weights(
            "sat",
            1,
            &[r],
            &rules(3, &["sat"], MissingClassRule::Proportional),
            LANES,
            &alone,
        );
        assert!(out.weights.is_empty());
        assert!(out.held.is_some());
    }
}
