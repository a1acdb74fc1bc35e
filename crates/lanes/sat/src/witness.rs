//! The signed witness (the provenance binding) and SAT-competition `v`-line parsing.

use hallmark_core::{PublicKey, RoundId, Sha256Digest, SignedPayload};
use serde::{Deserialize, Serialize};

/// A worker's claim "this assignment satisfies that instance", bound to the round, the round's
/// nonce and the worker's hotkey, and signed by that hotkey. The binding is what stops one
/// worker from replaying another's witness, or an old round's witness, as its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Witness {
    pub round_id: RoundId,
    pub instance_sha256: Sha256Digest,
    pub worker_hotkey: PublicKey,
    /// The round nonce, hex, as the coordinator published it.
    pub nonce: String,
    /// Literals (`v` or `-v`), one per assigned variable.
    pub assignment: Vec<i32>,
}

impl SignedPayload for Witness {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.sat-witness+json";
}

/// Why a `v`-line witness file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessParseError {
    #[error("line {line}: {token:?} is not a literal")]
    BadToken { line: usize, token: String },
    #[error("the `v` lines are not terminated by 0 (truncated witness?)")]
    Unterminated,
    #[error("the solver output says {0:?}, not SATISFIABLE")]
    NotSatisfiable(String),
    #[error("no `v` lines found")]
    Empty,
    #[error("literal after the terminating 0 on line {line}")]
    TrailingLiteral { line: usize },
}

/// Parses SAT-competition solver output: `c` comments, an optional `s` status line, and `v`
/// lines holding literals up to a terminating `0`.
pub fn parse_v_lines(text: &str) -> Result<Vec<i32>, WitnessParseError> {
    let mut lits = Vec::new();
    let mut terminated = false;
    let mut saw_v = false;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let t = raw.trim();
        if let Some(status) = t.strip_prefix("s ") {
            let status = status.trim();
            if status != "SATISFIABLE" {
                return Err(WitnessParseError::NotSatisfiable(status.to_string()));
            }
            continue;
        }
        let Some(rest) = t.strip_prefix('v') else {
            continue;
        };
        saw_v = true;
        for token in rest.split_ascii_whitespace() {
            let lit: i32 = token.parse().map_err(|_| WitnessParseError::BadToken {
                line,
                token: token.to_string(),
            })?;
            if terminated {
                return Err(WitnessParseError::TrailingLiteral { line });
            }
            if lit == 0 {
                terminated = true;
            } else {
                lits.push(lit);
            }
        }
    }
    if !saw_v {
        return Err(WitnessParseError::Empty);
    }
    if !terminated {
        return Err(WitnessParseError::Unterminated);
    }
    Ok(lits)
}

/// Formats an assignment as `v` lines (at most 10 literals a line) and a final `v 0`.
pub fn format_v_lines(assignment: &[i32]) -> String {
    let mut out = String::new();
    for chunk in assignment.chunks(10) {
        out.push('v');
        for lit in chunk {
            out.push(' ');
            out.push_str(&lit.to_string());
        }
        out.push('\n');
    }
    out.push_str("v 0\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parser_never_panics(text in "[vsc0-9 \\-\n]{0,200}") {
            let _ = parse_v_lines(&text);
        }

        #[test]
        fn format_then_parse_roundtrips(lits in proptest::collection::vec(prop_oneof![1i32..1000, -1000i32..-1], 0..60)) {
            prop_assert_eq!(parse_v_lines(&format_v_lines(&lits)).unwrap(), lits);
        }
    }

    #[test]
    fn parses_solver_output() {
        let text = "c comment\ns SATISFIABLE\nv 1 -2\nv 3 0\n";
        assert_eq!(parse_v_lines(text).unwrap(), vec![1, -2, 3]);
        assert_eq!(
            parse_v_lines(&format_v_lines(&[1, -2, 3])).unwrap(),
            vec![1, -2, 3]
        );
    }

    #[test]
    fn rejects_truncated_and_garbage() {
        assert_eq!(
            parse_v_lines("v 1 -2\n"),
            Err(WitnessParseError::Unterminated)
        );
        assert!(matches!(
            parse_v_lines("v 1 x 0\n"),
            Err(WitnessParseError::BadToken { line: 1, .. })
        ));
        assert_eq!(parse_v_lines(""), Err(WitnessParseError::Empty));
        assert!(matches!(
            parse_v_lines("s UNSATISFIABLE\n"),
            Err(WitnessParseError::NotSatisfiable(_))
        ));
        assert!(matches!(
            parse_v_lines("v 1 0 2\n"),
            Err(WitnessParseError::TrailingLiteral { .. })
        ));
    }
}
