//! `hallmark lanes`: the lanes this binary's nodes run, their pipeline shape and their
//! verifiers' checks, read from the node's lane registry.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hallmark_node::{LaneRegistry, NodeConfig};

/// `hallmark lanes [--json]`
#[derive(Debug, Args)]
pub struct LanesArgs {
    /// The node configuration whose verifier contexts to use (defaults otherwise).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print JSON: `[{name, shape, checks, executor}]`.
    #[arg(long)]
    json: bool,
}

/// Prints the registry.
pub fn run(a: LanesArgs) -> anyhow::Result<ExitCode> {
    let cfg = NodeConfig::load(a.config.as_deref())?;
    let lanes = LaneRegistry::standard(&cfg)?.describe();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&lanes)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<13} {:<6} {:<9} checks", "lane", "shape", "executor");
    for l in &lanes {
        println!(
            "{:<13} {:<6} {:<9} {}",
            l.name,
            l.shape.as_str(),
            if l.executor { "yes" } else { "-" },
            l.checks.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
