//! Solving with CaDiCaL, a real CDCL solver built from source by the `cadical` crate.

use crate::cnf::Cnf;

/// What the solver concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SolveOutcome {
    /// A full assignment: literal `v` or `-v` for every variable 1..=num_vars.
    Satisfiable(Vec<i32>),
    Unsatisfiable,
    /// The solver gave up (interrupted or limits hit).
    Unknown,
}

/// Solves `cnf` to completion.
pub fn solve(cnf: &Cnf) -> SolveOutcome {
    let mut solver: cadical::Solver = cadical::Solver::new();
    // Make sure every declared variable exists even when no clause mentions it.
    if cnf.num_vars > 0 {
        solver.reserve(cnf.num_vars as i32);
    }
    for clause in &cnf.clauses {
        solver.add_clause(clause.iter().copied());
    }
    match solver.solve() {
        Some(true) => {
            let assignment = (1..=cnf.num_vars as i32)
                .map(|v| match solver.value(v) {
                    Some(false) => -v,
                    // Unconstrained variables may take either value; pick true.
                    _ => v,
                })
                .collect();
            SolveOutcome::Satisfiable(assignment)
        }
        Some(false) => SolveOutcome::Unsatisfiable,
        None => SolveOutcome::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::check_assignment;

    #[test]
    fn sat_and_unsat() {
        let sat = Cnf::parse_dimacs("p cnf 3 2\n1 -2 0\n2 3 0\n").unwrap();
        match solve(&sat) {
            SolveOutcome::Satisfiable(a) => check_assignment(&sat, &a).unwrap(),
            other => panic!("expected SAT, got {other:?}"),
        }
        let unsat = Cnf::parse_dimacs("p cnf 1 2\n1 0\n-1 0\n").unwrap();
        assert_eq!(solve(&unsat), SolveOutcome::Unsatisfiable);
        let empty_clause = Cnf::parse_dimacs("p cnf 1 1\n0\n").unwrap();
        assert_eq!(solve(&empty_clause), SolveOutcome::Unsatisfiable);
        let empty = Cnf::parse_dimacs("p cnf 0 0\n").unwrap();
        assert_eq!(solve(&empty), SolveOutcome::Satisfiable(vec![]));
    }

    #[test]
    fn pigeonhole_4_into_3_is_unsat() {
        // PHP(4,3): variable p(i,j) = pigeon i in hole j.
        let var = |i: i32, j: i32| i * 3 + j + 1;
        let mut clauses = Vec::new();
        for i in 0..4 {
            clauses.push((0..3).map(|j| var(i, j)).collect());
        }
        for j in 0..3 {
            for a in 0..4 {
                for b in (a + 1)..4 {
                    clauses.push(vec![-var(a, j), -var(b, j)]);
                }
            }
        }
        let cnf = Cnf {
            num_vars: 12,
            clauses,
        };
        assert_eq!(solve(&cnf), SolveOutcome::Unsatisfiable);
    }
}
