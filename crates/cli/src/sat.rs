//! `hallmark sat …`: generate, solve and verify instances with the lane's own code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use hallmark_sat::{
    check_assignment, generate_instance, parse_v_lines, solve, Cnf, InstanceParams, SolveOutcome,
};

#[derive(Debug, Subcommand)]
pub enum SatCommand {
    /// Print a uniform random k-SAT instance in DIMACS (deterministic for a seed).
    Generate {
        #[arg(long)]
        vars: u32,
        #[arg(long)]
        clauses: u32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Literals per clause.
        #[arg(long, default_value_t = 3)]
        k: u32,
    },
    /// Solve a DIMACS file (`-` for stdin). Prints SAT-competition output; exits 10 (SAT),
    /// 20 (UNSAT), 0 (unknown) or 1 (unreadable input).
    Solve { file: PathBuf },
    /// Check a witness (`v` lines) against a DIMACS file. Exits 0 when every clause is
    /// satisfied, otherwise 1 with the rejection code on stderr (2 for an unreadable CNF).
    Verify { file: PathBuf, witness: PathBuf },
}

fn read(path: &PathBuf) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("reading stdin: {e}"))?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
    }
}

fn load_cnf(path: &PathBuf) -> Result<Cnf, String> {
    let text = read(path)?;
    Cnf::parse_dimacs(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn run(cmd: SatCommand) -> ExitCode {
    match cmd {
        SatCommand::Generate {
            vars,
            clauses,
            seed,
            k,
        } => {
            let params = InstanceParams {
                vars,
                clauses,
                k,
                count: 1,
            };
            match generate_instance(&params, seed, 0) {
                Ok(cnf) => {
                    print!(
                        "c hallmark uniform random {k}-SAT, seed {seed}, sha256 {}\n{}",
                        cnf.sha256(),
                        cnf.to_dimacs()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: invalid_params: {e}");
                    ExitCode::from(2)
                }
            }
        }
        SatCommand::Solve { file } => match load_cnf(&file) {
            Err(e) => {
                eprintln!("error: invalid_cnf: {e}");
                ExitCode::FAILURE
            }
            Ok(cnf) => match solve(&cnf) {
                SolveOutcome::Satisfiable(a) => {
                    print!("s SATISFIABLE\n{}", hallmark_sat::format_v_lines(&a));
                    ExitCode::from(10)
                }
                SolveOutcome::Unsatisfiable => {
                    println!("s UNSATISFIABLE");
                    ExitCode::from(20)
                }
                SolveOutcome::Unknown => {
                    println!("s UNKNOWN");
                    ExitCode::SUCCESS
                }
            },
        },
        SatCommand::Verify { file, witness } => {
            let cnf = match load_cnf(&file) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: invalid_cnf: {e}");
                    return ExitCode::from(2);
                }
            };
            let text = match read(&witness) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let assignment = match parse_v_lines(&text) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("rejected: malformed_witness: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match check_assignment(&cnf, &assignment) {
                Ok(()) => {
                    println!("valid: all {} clauses satisfied", cnf.clauses.len());
                    ExitCode::SUCCESS
                }
                Err(rej) => {
                    eprintln!("rejected: {}: {rej}", rej.code());
                    ExitCode::FAILURE
                }
            }
        }
    }
}
