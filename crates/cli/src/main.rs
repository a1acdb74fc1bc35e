//! `hallmark`: one binary for every role, the devnet, and the sat tools.

mod audit;
mod bench;
mod build;
mod compute;
mod devnet;
mod devnet_eval;
mod eval;
mod job;
mod lanes;
mod lifecycle;
mod mcp;
mod network;
mod readiness;
mod sat;
mod stark;
mod tee;
mod traces;
mod wallet;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hallmark_node::{NodeConfig, RoleName};

/// hallmark: a verifiable compute network.
#[derive(Debug, Parser)]
#[command(
    name = "hallmark",
    version,
    about = "hallmark, a verifiable compute network: every role, the devnet and the sat tools in one binary"
)]
struct Cli {
    /// How logs (on stderr) are written: `text` for people, `json` (one object per line, from
    /// `tracing`) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "HALLMARK_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The `--log-format` of this run, set once before any log is written.
static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a whole local network as separate processes and run sat rounds and stark jobs
    /// through it.
    Devnet(devnet::DevnetArgs),
    /// Load benchmarks against real processes (`bench network`: a devnet with many workers).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run one role (ledger, coordinator, validator, worker) until Ctrl-C or SIGTERM.
    Node {
        /// ledger | coordinator | validator | worker
        #[arg(long)]
        role: RoleName,
        /// TOML configuration; every setting has a default and HALLMARK_* variables override.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The lanes this binary runs: name, pipeline shape (job or round), verifier checks.
    Lanes(lanes::LanesArgs),
    /// The sat lane's tools: generate, solve and verify CNF instances.
    #[command(subcommand)]
    Sat(sat::SatCommand),
    /// The stark lane's tools: prove a job into a package file, verify a package file.
    #[command(subcommand)]
    Stark(stark::StarkCommand),
    /// The build lane: read contract meta, rebuild in the sandbox, import images, verify a
    /// wasm on a network and show its status.
    #[command(subcommand)]
    Build(build::BuildCommand),
    /// The eval lane: pack and submit archives, measure locally, fetch and bisect reports.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Proven jobs on a network: submit, wait, show, verify.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Wallets: create, import, show and export (BIP-39 words, encrypted keystore).
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// RFC 6962 transparency-log tools: roots, inclusion and consistency proofs.
    #[command(subcommand)]
    Log(audit::LogCommand),
    /// Offline verification of receipts.
    #[command(subcommand)]
    Verify(audit::VerifyCommand),
    /// Consensus math: the Yuma epoch and the stake-weighted median, from JSON.
    #[command(subcommand)]
    Consensus(audit::ConsensusCommand),
    /// Serve the attestation-chain proxy in front of upstream TEE instances.
    AttestProxy(tee::AttestProxyArgs),
    /// Serve upstream TEE instances; `--simulated` mints them from the devnet test root.
    AttestUpstream(tee::AttestUpstreamArgs),
    /// A validator's distillation traces: export them public (redacted) or private; record
    /// a worker's consent to show more.
    #[command(subcommand)]
    Traces(traces::TracesCommand),
    /// Serve the network as MCP tools over stdio (for AI assistants): jobs, proofs, receipts,
    /// quotes, builds, workers, stats, faucet, stake.
    Mcp(mcp::McpArgs),
    /// Launch readiness of a live network (a devnet or given URLs): every gate with its
    /// evidence, a score out of 100, READY or NOT READY for a profile.
    Readiness(readiness::ReadinessArgs),
    /// Secure-compute intake: register a provider, list, claim and release capacity.
    #[command(subcommand)]
    Compute(compute::ComputeCommand),
    /// Ask the devnet faucet for tokens (to the wallet's coldkey, rate-limited per address).
    Faucet(lifecycle::FaucetArgs),
    /// Bond stake from the wallet's coldkey to its hotkey in a tier (locked for a while).
    Stake(lifecycle::StakeArgs),
    /// Unbond stake back to the coldkey once its lock has expired.
    Unstake(lifecycle::UnstakeArgs),
    /// A worker's life on the network: register, start, status.
    #[command(subcommand)]
    Worker(lifecycle::WorkerCommand),
    /// The worker's private earnings: balance, claim a job's payment, withdraw.
    #[command(subcommand)]
    Payments(lifecycle::PaymentsCommand),
}

/// Log directives that keep Malachite and libp2p to warnings unless RUST_LOG asks otherwise.
pub(crate) const QUIET_ENGINE: &str = "arc_malachitebft=warn,libp2p=warn";

pub(crate) fn init_tracing(default: &str) {
    // The consensus engine logs every vote at info: keep a replica's log to what matters.
    let default = format!("{default},{QUIET_ENGINE}");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match LOG_FORMAT.get().copied().unwrap_or(LogFormat::Text) {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let _ = LOG_FORMAT.set(cli.log_format);
    // For the commands that print and exit, a closed stdout (`hallmark lanes --json | head`)
    // ends the process quietly, as other Unix tools do, instead of a panic inside println!.
    // Long-running roles (nodes, devnet, proxies, a worker) keep SIGPIPE ignored: they write
    // to pipes (an external verifier's stdin) whose reader may leave early.
    let prints_and_exits = !matches!(
        cli.command,
        Command::Node { .. }
            | Command::Devnet(_)
            | Command::Bench(_)
            | Command::AttestProxy(_)
            | Command::AttestUpstream(_)
            | Command::Worker(_)
            | Command::Mcp(_)
    );
    if prints_and_exits {
        // SAFETY: restores the default disposition of SIGPIPE before any thread starts; no
        // code of these commands relies on SIGPIPE being ignored.
        unsafe {
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            );
        }
    }
    match cli.command {
        Command::Sat(cmd) => sat::run(cmd),
        Command::Stark(cmd) => stark::run(cmd),
        Command::Build(cmd) => {
            init_tracing("warn");
            build::run(cmd)
        }
        Command::Eval(cmd) => {
            init_tracing("warn");
            eval::run(cmd)
        }
        Command::Log(cmd) => audit::run_log(cmd),
        Command::Lanes(args) => report(lanes::run(args)),
        Command::Wallet(cmd) => wallet::run(cmd),
        Command::Verify(cmd) => audit::run_verify(cmd),
        Command::Consensus(cmd) => audit::run_consensus(cmd),
        Command::Devnet(args) => {
            init_tracing("warn");
            report(runtime().and_then(|rt| rt.block_on(devnet::run(args))))
        }
        Command::Bench(cmd) => {
            init_tracing("error");
            report(runtime().and_then(|rt| rt.block_on(bench::run(cmd))))
        }
        Command::AttestProxy(args) => {
            init_tracing("info");
            report(runtime().and_then(|rt| rt.block_on(tee::attest_proxy(args))))
        }
        Command::AttestUpstream(args) => {
            init_tracing("info");
            report(runtime().and_then(|rt| rt.block_on(tee::attest_upstream(args))))
        }
        Command::Job(cmd) => {
            init_tracing("warn");
            match runtime() {
                Ok(rt) => rt.block_on(job::run(cmd)),
                Err(e) => report(Err(e)),
            }
        }
        Command::Traces(cmd) => {
            init_tracing("warn");
            report(runtime().and_then(|rt| rt.block_on(traces::run(cmd))))
        }
        Command::Mcp(args) => {
            // stdout carries the protocol: logs go to stderr only (init_tracing's writer).
            init_tracing("warn");
            report(runtime().and_then(|rt| rt.block_on(mcp::run(args))))
        }
        Command::Readiness(args) => {
            init_tracing("warn");
            report(runtime().and_then(|rt| rt.block_on(readiness::run(args))))
        }
        Command::Compute(cmd) => {
            init_tracing("warn");
            report(runtime().and_then(|rt| rt.block_on(compute::run(cmd))))
        }
        Command::Faucet(a) => lifecycle::run(lifecycle::Lifecycle::Faucet(a)),
        Command::Stake(a) => lifecycle::run(lifecycle::Lifecycle::Stake(a)),
        Command::Unstake(a) => lifecycle::run(lifecycle::Lifecycle::Unstake(a)),
        Command::Worker(c) => lifecycle::run(lifecycle::Lifecycle::Worker(c)),
        Command::Payments(c) => lifecycle::run(lifecycle::Lifecycle::Payments(c)),
        Command::Node { role, config } => {
            init_tracing("info");
            report(runtime().and_then(|rt| rt.block_on(run_node(role, config))))
        }
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn report(res: anyhow::Result<std::process::ExitCode>) -> std::process::ExitCode {
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by ": ", skipping a cause whose text the previous message
/// already ends with (library errors often include their source's text).
pub(crate) fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

async fn run_node(
    role: RoleName,
    config: Option<PathBuf>,
) -> anyhow::Result<std::process::ExitCode> {
    let cfg = NodeConfig::load(config.as_deref())?;
    let node = hallmark_node::run_node(role, &cfg)
        .await
        .with_context(|| format!("starting the {role:?} node {:?}", cfg.name))?;
    wait_for_stop_signal().await?;
    tracing::info!("stopping");
    node.stop().await;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub(crate) async fn wait_for_stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
