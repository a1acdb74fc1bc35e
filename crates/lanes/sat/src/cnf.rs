//! CNF formulas and the DIMACS format, read as real files come.

use hallmark_core::{sha256, Sha256Digest};

/// A formula in conjunctive normal form. Literals are non-zero DIMACS integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cnf {
    pub num_vars: u32,
    pub clauses: Vec<Vec<i32>>,
}

/// Why a DIMACS text was refused; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DimacsError {
    #[error("line {line}: no `p cnf <vars> <clauses>` header before the first clause")]
    MissingHeader { line: usize },
    #[error("line {line}: malformed header {text:?}: expected `p cnf <vars> <clauses>`")]
    BadHeader { line: usize, text: String },
    #[error("line {line}: second `p` header")]
    DuplicateHeader { line: usize },
    #[error("line {line}: {token:?} is not a literal")]
    BadToken { line: usize, token: String },
    #[error("line {line}: literal {literal} is outside 1..={num_vars} declared in the header")]
    VariableOutOfRange {
        line: usize,
        literal: i64,
        num_vars: u32,
    },
    #[error("the last clause is not terminated by 0")]
    UnterminatedClause,
    #[error("header declares {declared} clauses, file has {found}")]
    ClauseCount { declared: usize, found: usize },
    #[error("no `p cnf` header")]
    NoHeader,
    #[error("line {line}: {vars} variables, more than the limit of {limit}")]
    TooManyVars { line: usize, vars: u64, limit: u32 },
    #[error("line {line}: {clauses} clauses, more than the limit of {limit}")]
    TooManyClauses {
        line: usize,
        clauses: u64,
        limit: u64,
    },
    #[error("more than {limit} literals")]
    TooManyLiterals { limit: u64 },
}

/// Most clauses a formula may declare (the literal cap binds first for real instances).
pub const MAX_CLAUSES: u64 = 50_000_000;
/// Most literal occurrences a formula may hold: the same bound `sat generate` enforces.
pub const MAX_LITERALS: u64 = 50_000_000;

impl Cnf {
    /// Parses DIMACS CNF: `c` comments anywhere, one `p cnf V C` header, clauses that may span
    /// lines, each ended by `0` (a lone `0` is the empty clause), and the SATLIB `%` end marker.
    pub fn parse_dimacs(text: &str) -> Result<Self, DimacsError> {
        let mut header: Option<(u32, usize)> = None;
        let mut clauses: Vec<Vec<i32>> = Vec::new();
        let mut current: Vec<i32> = Vec::new();
        let mut literals: u64 = 0;
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('c') {
                continue;
            }
            if trimmed.starts_with('%') {
                break;
            }
            if trimmed.starts_with('p') {
                if header.is_some() {
                    return Err(DimacsError::DuplicateHeader { line });
                }
                header = Some(parse_header(trimmed, line)?);
                continue;
            }
            let Some((num_vars, _)) = header else {
                return Err(DimacsError::MissingHeader { line });
            };
            for token in trimmed.split_ascii_whitespace() {
                let lit: i64 = token.parse().map_err(|_| DimacsError::BadToken {
                    line,
                    token: token.to_string(),
                })?;
                if lit == 0 {
                    if clauses.len() as u64 >= header.map_or(0, |h| h.1 as u64) {
                        // More clauses than declared: refuse before holding them all.
                        return Err(DimacsError::ClauseCount {
                            declared: header.map_or(0, |h| h.1),
                            found: clauses.len() + 1,
                        });
                    }
                    clauses.push(std::mem::take(&mut current));
                } else if lit.unsigned_abs() > u64::from(num_vars) {
                    return Err(DimacsError::VariableOutOfRange {
                        line,
                        literal: lit,
                        num_vars,
                    });
                } else {
                    literals += 1;
                    if literals > MAX_LITERALS {
                        return Err(DimacsError::TooManyLiterals {
                            limit: MAX_LITERALS,
                        });
                    }
                    // In range of num_vars (at most MAX_VARS, checked in the header), so it
                    // fits i32.
                    current.push(lit as i32);
                }
            }
        }
        let (num_vars, declared) = header.ok_or(DimacsError::NoHeader)?;
        if !current.is_empty() {
            return Err(DimacsError::UnterminatedClause);
        }
        if clauses.len() != declared {
            return Err(DimacsError::ClauseCount {
                declared,
                found: clauses.len(),
            });
        }
        Ok(Self { num_vars, clauses })
    }

    /// Writes canonical DIMACS: the header, then one clause per line. This exact text is what
    /// an instance's sha256 is taken over.
    pub fn to_dimacs(&self) -> String {
        let mut out = format!("p cnf {} {}\n", self.num_vars, self.clauses.len());
        for clause in &self.clauses {
            for lit in clause {
                out.push_str(&lit.to_string());
                out.push(' ');
            }
            out.push_str("0\n");
        }
        out
    }

    /// SHA-256 of the canonical DIMACS text.
    pub fn sha256(&self) -> Sha256Digest {
        sha256(self.to_dimacs().as_bytes())
    }

    /// Total literal occurrences (the work a replay does).
    pub fn num_literals(&self) -> usize {
        self.clauses.iter().map(Vec::len).sum()
    }
}

fn parse_header(text: &str, line: usize) -> Result<(u32, usize), DimacsError> {
    let bad = || DimacsError::BadHeader {
        line,
        text: text.to_string(),
    };
    let parts: Vec<&str> = text.split_ascii_whitespace().collect();
    if parts.len() != 4 || parts[0] != "p" || parts[1] != "cnf" {
        return Err(bad());
    }
    let vars: u64 = parts[2].parse().map_err(|_| bad())?;
    let clauses: u64 = parts[3].parse().map_err(|_| bad())?;
    // The caps `sat generate` enforces, checked before anything is sized from the header
    // (a solver reserving a billion variables exhausts memory and aborts the process).
    if vars > u64::from(crate::generate::MAX_VARS) {
        return Err(DimacsError::TooManyVars {
            line,
            vars,
            limit: crate::generate::MAX_VARS,
        });
    }
    if clauses > MAX_CLAUSES {
        return Err(DimacsError::TooManyClauses {
            line,
            clauses,
            limit: MAX_CLAUSES,
        });
    }
    Ok((vars as u32, clauses as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_real_world_shapes() {
        let text = "c a comment\nc another\np cnf 3 3\n1 -2\n 3 0\n-1 0 2 3\n0\n%\n0\n\n";
        let cnf = Cnf::parse_dimacs(text).unwrap();
        assert_eq!(cnf.num_vars, 3);
        assert_eq!(cnf.clauses, vec![vec![1, -2, 3], vec![-1], vec![2, 3]]);
    }

    #[test]
    fn empty_formula_and_empty_clause() {
        assert_eq!(
            Cnf::parse_dimacs("p cnf 0 0\n").unwrap(),
            Cnf {
                num_vars: 0,
                clauses: vec![]
            }
        );
        let cnf = Cnf::parse_dimacs("p cnf 2 2\n0\n1 2 0\n").unwrap();
        assert_eq!(cnf.clauses[0], Vec::<i32>::new());
    }

    #[test]
    fn headers_past_the_caps_are_refused_before_any_work() {
        // The 25-byte file that made `sat solve` grow ~1 GB/s and abort.
        assert!(matches!(
            Cnf::parse_dimacs(
                "p cnf 1000000000 1
1 0
"
            ),
            Err(DimacsError::TooManyVars {
                vars: 1_000_000_000,
                ..
            })
        ));
        assert!(matches!(
            Cnf::parse_dimacs(
                "p cnf 3 99999999999
1 0
"
            ),
            Err(DimacsError::TooManyClauses { .. })
        ));
        assert!(matches!(
            Cnf::parse_dimacs(
                "p cnf 1 18446744073709551616
"
            ),
            Err(DimacsError::BadHeader { .. })
        ));
        // Extra clauses past the declared count stop at the first one.
        assert!(matches!(
            Cnf::parse_dimacs(
                "p cnf 2 1
1 0
2 0
"
            ),
            Err(DimacsError::ClauseCount {
                declared: 1,
                found: 2
            })
        ));
        let at_cap = format!("p cnf {} 1\n1 0\n", crate::generate::MAX_VARS);
        assert!(Cnf::parse_dimacs(&at_cap).is_ok());
    }

    #[test]
    fn rejects_malformed() {
        use DimacsError::*;
        assert!(matches!(
            Cnf::parse_dimacs("1 2 0\n"),
            Err(MissingHeader { line: 1 })
        ));
        assert!(matches!(
            Cnf::parse_dimacs("p cnf x 1\n"),
            Err(BadHeader { .. })
        ));
        assert!(matches!(
            Cnf::parse_dimacs("p dnf 1 1\n"),
            Err(BadHeader { .. })
        ));
        assert!(matches!(
            Cnf::parse_dimacs("p cnf 1 1\np cnf 1 1\n"),
            Err(DuplicateHeader { line: 2 })
        ));
        assert!(matches!(
            Cnf::parse_dimacs("p cnf 2 1\n1 a 0\n"),
            Err(BadToken { line: 2, .. })
        ));
        assert!(matches!(
            Cnf::parse_dimacs("p cnf 2 1\n1 3 0\n"),
            Err(VariableOutOfRange { literal: 3, .. })
        ));
        assert!(matches!(
            Cnf::parse_dimacs("p cnf 2 1\n1 2\n"),
            Err(UnterminatedClause)
        ));
        assert!(matches!(
            Cnf::parse_dimacs("p cnf 2 2\n1 2 0\n"),
            Err(ClauseCount {
                declared: 2,
                found: 1
            })
        ));
        assert!(matches!(Cnf::parse_dimacs(""), Err(NoHeader)));
        assert!(matches!(
            Cnf::parse_dimacs("p cnf 2 1\n99999999999999999999 0\n"),
            Err(BadToken { .. })
        ));
        assert!(matches!(
            Cnf::parse_dimacs("p cnf 4294967295 0\n"),
            Err(TooManyVars { .. })
        ));
    }

    proptest! {
        #[test]
        fn write_then_parse_roundtrips(num_vars in 1u32..50, raw in proptest::collection::vec(proptest::collection::vec((1i32..50, any::<bool>()), 0..6), 0..30)) {
            let clauses: Vec<Vec<i32>> = raw.into_iter().map(|c| c.into_iter().map(|(v, neg)| {
                let v = (v - 1) % num_vars as i32 + 1;
                if neg { -v } else { v }
            }).collect()).collect();
            let cnf = Cnf { num_vars, clauses };
            prop_assert_eq!(Cnf::parse_dimacs(&cnf.to_dimacs()).unwrap(), cnf);
        }

        #[test]
        fn parser_never_panics(text in "[pcnf0-9 \\-%\n]{0,200}") {
            let _ = Cnf::parse_dimacs(&text);
        }
    }
}
