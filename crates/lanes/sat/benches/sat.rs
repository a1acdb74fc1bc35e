//! The sat lane's two hot paths, each against a baseline measured in the same run:
//!
//! - witness replay (`check_assignment`) in literal checks per second (goal ≥ 100 M/s per
//!   core), against a plain streaming sum over the same literals;
//! - solving random 3-SAT at clause/variable ratio 4.26 with our in-process CaDiCaL, against
//!   the Debian `cadical` binary (goal ≤ 1.1×) and `minisat` on the same instance files.
//!   Binaries missing from PATH are reported and skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{black_box, Criterion, Throughput};
use hallmark_sat::{check_assignment, generate_instance, solve, Cnf, InstanceParams, SolveOutcome};

#[path = "../../../../benches/criterion_estimates.rs"]
mod criterion_estimates;
use criterion_estimates::{mean_ns, out_dir};

/// A satisfiable instance with a planted solution (all-true flipped by a mask), large enough
/// to measure replay throughput.
fn replay_instance() -> (Cnf, Vec<i32>) {
    let params = InstanceParams {
        vars: 200_000,
        clauses: 800_000,
        k: 3,
        count: 1,
    };
    let mut cnf = generate_instance(&params, 99, 0).expect("params");
    let assignment: Vec<i32> = (1..=params.vars as i32)
        .map(|v| if v % 3 == 0 { -v } else { v })
        .collect();
    // Make every clause satisfied by the planted assignment: fix its first literal.
    for clause in &mut cnf.clauses {
        let sat = clause
            .iter()
            .any(|&l| assignment[(l.unsigned_abs() - 1) as usize] == l);
        if !sat {
            clause[0] = -clause[0];
        }
    }
    (cnf, assignment)
}

fn have(bin: &str) -> bool {
    Command::new(bin).arg("--help").output().is_ok()
}

fn main() {
    let mut c = Criterion::default()
        .output_directory(&out_dir())
        .configure_from_args()
        .sample_size(10);

    let (cnf, assignment) = replay_instance();
    let lits = cnf.num_literals() as u64;
    let flat: Vec<i32> = cnf.clauses.iter().flatten().copied().collect();
    {
        let mut g = c.benchmark_group("replay");
        g.throughput(Throughput::Elements(lits));
        g.bench_function("check_assignment", |b| {
            b.iter(|| check_assignment(black_box(&cnf), black_box(&assignment)).expect("valid"))
        });
        g.bench_function("baseline_stream_sum", |b| {
            b.iter(|| black_box(&flat).iter().map(|&l| i64::from(l)).sum::<i64>())
        });
        g.finish();
    }

    // The same instance files for every solver.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<PathBuf> = Vec::new();
    for (vars, seeds) in [(150u32, 0..6u64), (200, 0..6)] {
        let params = InstanceParams {
            vars,
            clauses: (f64::from(vars) * 4.26).round() as u32,
            k: 3,
            count: 1,
        };
        for seed in seeds {
            let cnf = generate_instance(&params, seed, 0).expect("params");
            let path = dir.path().join(format!("r{vars}-{seed}.cnf"));
            std::fs::write(&path, cnf.to_dimacs()).expect("write");
            files.push(path);
        }
    }
    let run_bin = |bin: &str, args: &[&str], path: &Path| {
        let st = Command::new(bin)
            .args(args)
            .arg(path)
            .output()
            .expect("solver ran");
        assert!(
            matches!(st.status.code(), Some(10) | Some(20)),
            "{bin} failed on {}",
            path.display()
        );
    };
    // The reference solvers on PATH: (bench id, binary, arguments).
    let references: Vec<(&str, &str, &[&str])> = [
        ("debian_cadical_binary", "cadical", &["-q"][..]),
        ("debian_minisat_binary", "minisat", &["-verb=0"][..]),
    ]
    .into_iter()
    .filter(|(_, bin, _)| {
        let present = have(bin);
        if !present {
            println!("{bin}: not on PATH, skipped (apt-get install cadical minisat)");
        }
        present
    })
    .collect();
    {
        let mut g = c.benchmark_group("solve_ratio_4.26");
        g.bench_function("hallmark_cadical_in_process", |b| {
            b.iter(|| {
                for path in &files {
                    let text = std::fs::read_to_string(path).expect("read");
                    let cnf = Cnf::parse_dimacs(&text).expect("parse");
                    black_box(matches!(solve(&cnf), SolveOutcome::Satisfiable(_)));
                }
            })
        });
        for (id, bin, args) in &references {
            g.bench_function(*id, |b| {
                b.iter(|| files.iter().for_each(|p| run_bin(bin, args, p)))
            });
        }
        g.finish();
    }
    c.final_summary();

    println!();
    if let (Some(ours), Some(base)) = (
        mean_ns("replay", "check_assignment"),
        mean_ns("replay", "baseline_stream_sum"),
    ) {
        let per_sec = lits as f64 / (ours / 1e9);
        println!(
            "replay: {:.0} M literal checks/s on one core (goal >= 100 M/s: {}); {:.2}x the time of a plain streaming sum over the same literals",
            per_sec / 1e6,
            if per_sec >= 1e8 { "met" } else { "NOT met" },
            ours / base
        );
    }
    let ours = mean_ns("solve_ratio_4.26", "hallmark_cadical_in_process");
    for (id, bin, _) in &references {
        if let (Some(o), Some(b)) = (ours, mean_ns("solve_ratio_4.26", id)) {
            let goal = match *bin {
                "cadical" if o / b <= 1.1 => " (goal <= 1.1x: met)",
                "cadical" => " (goal <= 1.1x: NOT met)",
                _ => "",
            };
            println!(
                "solve ({} instances, n=150/200, ratio 4.26): hallmark {:.1} ms, {bin} binary {:.1} ms, ratio {:.2}x{goal}",
                files.len(),
                o / 1e6,
                b / 1e6,
                o / b,
            );
        }
    }
}
