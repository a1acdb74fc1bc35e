//! `hallmark devnet`: a whole network of separate processes on 127.0.0.1.
//!
//! Starts the ledger, the coordinator, N validators and M workers as child processes of this
//! binary (`hallmark node --role …`), each with its own config, SQLite store and log under the
//! data dir; publishes rounds as the network operator; reads every validator's decision back
//! over HTTP; prints a table per round (or one JSON object with `--json`); stops the children.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hallmark_core::{Envelope, PublicKey, Signed};
use hallmark_node::config::{GenesisBalance, NodeConfig};
use hallmark_node::messages::{NewRoundRequest, RoundAnnouncement, RoundResult};
use hallmark_node::run::load_or_create_key;
use hallmark_node::NodeClient;
use hallmark_sat::InstanceParams;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::process::{Child, Command};

/// Options of `hallmark devnet`.
#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Validators to start (equal stake).
    #[arg(long, default_value_t = 3)]
    validators: usize,
    /// Workers to start; worker i waits i × --delay-step-ms before each submission.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Rounds to run.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// How many validators report inverted scores (fault injection).
    #[arg(long, default_value_t = 0)]
    byzantine: usize,
    /// Where every node keeps its keys, store, config and log.
    #[arg(long, default_value = ".hallmark/devnet")]
    data_dir: PathBuf,
    /// Print exactly one JSON object on stdout instead of tables.
    #[arg(long)]
    json: bool,
    /// Variables per instance.
    #[arg(long, default_value_t = 200)]
    vars: u32,
    /// Clauses per instance.
    #[arg(long, default_value_t = 800)]
    clauses: u32,
    /// Instances per round.
    #[arg(long, default_value_t = 4)]
    instances: u32,
    /// How long workers have per round.
    #[arg(long, default_value_t = 3000)]
    window_ms: i64,
    /// Per-worker handicap step (simulated slower hardware), milliseconds.
    #[arg(long, default_value_t = 150)]
    delay_step_ms: u64,
}

const STAKE: u64 = 10_000;
const MARGIN: f64 = 0.02;

struct Proc {
    name: String,
    role: &'static str,
    child: Child,
    log: PathBuf,
    addr_file: PathBuf,
    url: Option<String>,
    byzantine: bool,
    /// The node's hotkey file (the node creates it on first start).
    key_file: PathBuf,
}

/// One validator's line in a round.
#[derive(Debug, Serialize)]
struct ValidatorLine {
    hotkey: PublicKey,
    byzantine: bool,
    agrees: bool,
}

/// One round of the output.
#[derive(Debug, Serialize)]
struct RoundLine {
    round_id: String,
    winner: Option<PublicKey>,
    consensus: BTreeMap<PublicKey, f64>,
    validators: Vec<ValidatorLine>,
}

/// One process: its name, role, hotkey and peak memory.
#[derive(Debug, Serialize)]
struct ProcessLine {
    name: String,
    role: String,
    hotkey: Option<PublicKey>,
    peak_rss_kib: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Output {
    rounds: Vec<RoundLine>,
    processes: Vec<ProcessLine>,
    data_dir: String,
}

fn peak_rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

async fn spawn(
    exe: &Path,
    dir: &Path,
    name: &str,
    role: &'static str,
    cfg: &NodeConfig,
    byzantine: bool,
) -> anyhow::Result<Proc> {
    let node_dir = &cfg.data_dir;
    std::fs::create_dir_all(node_dir)
        .with_context(|| format!("creating {}", node_dir.display()))?;
    let config_path = node_dir.join("config.toml");
    std::fs::write(&config_path, toml::to_string(cfg)?)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let addr_file = cfg
        .addr_file
        .clone()
        .context("addr_file is set by devnet")?;
    let _ = std::fs::remove_file(&addr_file);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let log = logs.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let child = Command::new(exe)
        .args(["node", "--role", role, "--config"])
        .arg(&config_path)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(Proc {
        name: name.to_string(),
        role,
        child,
        log,
        addr_file,
        url: None,
        byzantine,
        key_file: cfg.key_path(),
    })
}

/// Waits until the node wrote its address (it does so once registered and serving).
async fn wait_ready(p: &mut Proc, patience: Duration) -> anyhow::Result<String> {
    let start = Instant::now();
    loop {
        if let Ok(url) = std::fs::read_to_string(&p.addr_file) {
            p.url = Some(url.clone());
            return Ok(url);
        }
        if let Some(status) = p.child.try_wait()? {
            bail!(
                "{} exited ({status}) before it was ready; its log ({}):\n{}",
                p.name,
                p.log.display(),
                log_tail(&p.log)
            );
        }
        if start.elapsed() > patience {
            bail!(
                "{} was not ready after {:?}; its log ({}):\n{}",
                p.name,
                patience,
                p.log.display(),
                log_tail(&p.log)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stop_all(procs: &mut [Proc]) {
    for p in procs.iter() {
        if let Some(pid) = p.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    for p in procs.iter_mut() {
        match tokio::time::timeout(Duration::from_secs(10), p.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                let _ = p.child.kill().await;
            }
        }
    }
}

fn base_config(dir: &Path, name: &str) -> NodeConfig {
    let data_dir = dir.join(name);
    NodeConfig {
        name: name.to_string(),
        listen: "127.0.0.1:0".into(),
        addr_file: Some(data_dir.join("addr")),
        data_dir,
        ..NodeConfig::default()
    }
}

pub async fn run(args: DevnetArgs) -> anyhow::Result<ExitCode> {
    if args.validators == 0 {
        bail!("--validators must be at least 1");
    }
    if args.byzantine > args.validators {
        bail!(
            "--byzantine {} is more than --validators {}",
            args.byzantine,
            args.validators
        );
    }
    let params = InstanceParams {
        vars: args.vars,
        clauses: args.clauses,
        k: 3,
        count: args.instances,
    };
    params.validate().context("instance parameters")?;
    let dir = std::path::absolute(&args.data_dir).context("resolving --data-dir")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let exe = std::env::current_exe().context("locating the hallmark binary")?;

    let mut procs: Vec<Proc> = Vec::new();
    let outcome = tokio::select! {
        r = drive(&args, &dir, &exe, params, &mut procs) => r,
        _ = crate::wait_for_stop_signal() => Err(anyhow::anyhow!("interrupted; stopping the devnet")),
    };
    let processes: Vec<ProcessLine> = procs
        .iter()
        .map(|p| ProcessLine {
            name: p.name.clone(),
            role: p.role.to_string(),
            hotkey: hallmark_node::run::load_key(&p.key_file)
                .ok()
                .map(|k| k.public()),
            peak_rss_kib: peak_rss_kib(p.child.id()),
        })
        .collect();
    stop_all(&mut procs).await;
    let rounds = outcome?;
    let ok = print_output(&args, &dir, rounds, processes)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

async fn drive(
    args: &DevnetArgs,
    dir: &Path,
    exe: &Path,
    params: InstanceParams,
    procs: &mut Vec<Proc>,
) -> anyhow::Result<Vec<RoundLine>> {
    let keys = dir.join("keys");
    let operator = load_or_create_key(&keys.join("operator"))?;
    let coldkey_path = keys.join("devnet-coldkey");
    let coldkey = load_or_create_key(&coldkey_path)?;
    let progress = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    progress.enable_steady_tick(Duration::from_millis(120));
    progress.set_message("starting the ledger");

    // Ledger: one devnet coldkey holds the genesis balance that every node stakes from, so the
    // genesis (and the data dir) stays the same whatever the number of nodes.
    let mut cfg = base_config(dir, "ledger");
    cfg.ledger.genesis = vec![GenesisBalance {
        account: coldkey.public(),
        balance: 1_000_000_000,
    }];
    let mut ledger = spawn(exe, dir, "ledger", "ledger", &cfg, false).await?;
    let ledger_url = wait_ready(&mut ledger, Duration::from_secs(30)).await;
    procs.push(ledger);
    let ledger_url = ledger_url?;

    progress.set_message("starting the coordinator");
    let mut cfg = base_config(dir, "coordinator");
    let coordinator_key = load_or_create_key(&cfg.key_path())?;
    cfg.coordinator.operators = vec![operator.public()];
    let mut coord = spawn(exe, dir, "coordinator", "coordinator", &cfg, false).await?;
    let coord_url = wait_ready(&mut coord, Duration::from_secs(30)).await;
    procs.push(coord);
    let coord_url = coord_url?;

    let network = |cfg: &mut NodeConfig| {
        cfg.network.ledger_url = ledger_url.clone();
        cfg.network.coordinator_url = coord_url.clone();
        cfg.network.coordinator_hotkey = Some(coordinator_key.public());
        cfg.network.coldkey_file = Some(coldkey_path.clone());
        cfg.network.stake = STAKE;
    };
    progress.set_message(format!(
        "starting {} validators and {} workers",
        args.validators, args.workers
    ));
    let first = procs.len();
    for i in 0..args.validators {
        let name = format!("validator-{i}");
        let mut cfg = base_config(dir, &name);
        network(&mut cfg);
        // The last --byzantine validators misbehave.
        let byz = i >= args.validators - args.byzantine;
        cfg.validator.byzantine = byz;
        cfg.validator.dethrone_margin = MARGIN;
        procs.push(spawn(exe, dir, &name, "validator", &cfg, byz).await?);
    }
    for i in 0..args.workers {
        let name = format!("worker-{i}");
        let mut cfg = base_config(dir, &name);
        network(&mut cfg);
        cfg.network.stake = 1_000;
        cfg.worker.submit_delay_ms = i as u64 * args.delay_step_ms;
        procs.push(spawn(exe, dir, &name, "worker", &cfg, false).await?);
    }
    for p in procs[first..].iter_mut() {
        wait_ready(p, Duration::from_secs(60)).await?;
    }
    let validators: Vec<(String, bool, NodeClient)> = procs
        .iter()
        .filter(|p| p.role == "validator")
        .map(|p| {
            (
                p.name.clone(),
                p.byzantine,
                NodeClient::new(p.url.as_deref().unwrap_or_default()),
            )
        })
        .collect();

    let coordinator = NodeClient::new(&coord_url).signed_by(operator);
    let mut lines = Vec::new();
    progress.finish_and_clear();
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.rounds as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} round {pos}/{len} [{bar:30}] {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    for _ in 0..args.rounds {
        let env: Envelope = coordinator
            .post(
                "/v1/rounds",
                &NewRoundRequest {
                    params,
                    window_ms: args.window_ms,
                },
            )
            .await
            .context("publishing a round")?;
        let ann = Signed::<RoundAnnouncement>::from_envelope(env)
            .verify()
            .context("the coordinator's round announcement")?
            .payload;
        bar.set_message(format!(
            "{}: workers solving, validators verifying",
            ann.round_id
        ));
        let patience = Duration::from_millis(args.window_ms as u64) + Duration::from_secs(60);
        let results = collect_results(&validators, &ann, patience, &bar).await?;
        lines.push(round_line(&ann, &validators, &results)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(lines)
}

async fn collect_results(
    validators: &[(String, bool, NodeClient)],
    ann: &RoundAnnouncement,
    patience: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<RoundResult>> {
    let start = Instant::now();
    let path = format!("/v1/rounds/{}/result", ann.round_id);
    let mut out: Vec<Option<RoundResult>> = validators.iter().map(|_| None).collect();
    loop {
        for (slot, (name, _, client)) in out.iter_mut().zip(validators) {
            if slot.is_some() {
                continue;
            }
            match client.get::<RoundResult>(&path).await {
                Ok(r) => *slot = Some(r),
                Err(e) if e.status() == Some(404) => {}
                Err(e) => bail!("{name}: {e}"),
            }
        }
        let done = out.iter().filter(|r| r.is_some()).count();
        if done == out.len() {
            return Ok(out.into_iter().flatten().collect());
        }
        bar.set_message(format!(
            "{}: {done}/{} validators decided",
            ann.round_id,
            out.len()
        ));
        if start.elapsed() > patience {
            bail!(
                "{} not decided by every validator after {:?}; see the logs",
                ann.round_id,
                patience
            );
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Builds a round's line from the validators' results. The consensus shown is the one the
/// honest validators reached (the first honest validator's); each validator's agreement is
/// judged from the scores it signed.
fn round_line(
    ann: &RoundAnnouncement,
    validators: &[(String, bool, NodeClient)],
    results: &[RoundResult],
) -> anyhow::Result<RoundLine> {
    let reference = validators
        .iter()
        .zip(results)
        .find(|((_, byz, _), _)| !*byz)
        .or_else(|| validators.iter().zip(results).next())
        .map(|(_, r)| r)
        .context("no validator results")?;
    let signed_scores = |who: &PublicKey| -> BTreeMap<PublicKey, f64> {
        results
            .iter()
            .find(|r| &r.validator == who)
            .and_then(|r| r.reports.iter().find(|u| &u.validator == who))
            .map(|u| u.scores.clone())
            .unwrap_or_default()
    };
    let validators = results
        .iter()
        .map(|r| ValidatorLine {
            hotkey: r.validator,
            byzantine: r.byzantine,
            agrees: hallmark_consensus::agrees(
                &signed_scores(&r.validator),
                reference.winner.as_ref(),
                MARGIN,
            ),
        })
        .collect();
    Ok(RoundLine {
        round_id: ann.round_id.to_string(),
        winner: reference.winner,
        consensus: reference.consensus.clone(),
        validators,
    })
}

fn short(k: &PublicKey) -> String {
    let s = k.to_ss58();
    format!("{}…{}", &s[..6], &s[s.len() - 4..])
}

/// Prints the result; returns whether every honest validator agreed in every round.
fn print_output(
    args: &DevnetArgs,
    dir: &Path,
    rounds: Vec<RoundLine>,
    processes: Vec<ProcessLine>,
) -> anyhow::Result<bool> {
    let honest_ok = rounds.iter().all(|r| {
        r.winner.is_some()
            && r.validators
                .iter()
                .filter(|v| !v.byzantine)
                .all(|v| v.agrees)
    });
    if args.json {
        let out = Output {
            rounds,
            processes,
            data_dir: dir.display().to_string(),
        };
        println!("{}", serde_json::to_string(&out)?);
        return Ok(honest_ok);
    }
    let names: BTreeMap<PublicKey, &str> = processes
        .iter()
        .filter_map(|p| Some((p.hotkey?, p.name.as_str())))
        .collect();
    let label = |k: &PublicKey| {
        format!(
            "{:<12} {}",
            names.get(k).copied().unwrap_or("?"),
            k.to_ss58()
        )
    };
    for r in &rounds {
        println!(
            "\n{}  winner {}",
            r.round_id,
            r.winner.as_ref().map_or("none".into(), &label)
        );
        println!("  {:<61} {:>9}", "worker", "consensus");
        for (w, s) in &r.consensus {
            let mark = if Some(w) == r.winner.as_ref() {
                "  ← winner"
            } else {
                ""
            };
            println!("  {:<61} {:>9.4}{mark}", label(w), s);
        }
        println!("  {:<61} {:>9} {:>7}", "validator", "byzantine", "agrees");
        for v in &r.validators {
            println!(
                "  {:<61} {:>9} {:>7}",
                label(&v.hotkey),
                if v.byzantine { "yes" } else { "no" },
                if v.agrees { "yes" } else { "NO" }
            );
        }
    }
    println!("\npeak memory (VmHWM) per process:");
    for p in &processes {
        println!(
            "  {:<14} {:<12} {:>8} KiB",
            p.name,
            p.role,
            p.peak_rss_kib.map_or("?".into(), |k| k.to_string())
        );
    }
    let winners: Vec<String> = rounds
        .iter()
        .filter_map(|r| r.winner.as_ref())
        .map(|w| names.get(w).map_or_else(|| short(w), |n| n.to_string()))
        .collect();
    println!(
        "\nShowed: {} rounds on {} validators ({} byzantine) and {} workers, each a separate process on 127.0.0.1. \
Every validator verified every witness itself, signed its scores, fetched its peers' signed reports from their ledger-listed \
axons, and took the stake-weighted median; winners {}. {}",
        rounds.len(),
        args.validators,
        args.byzantine,
        args.workers,
        winners.join(", "),
        if honest_ok { "Every honest validator agreed with every winner." } else { "NOT every honest validator agreed: see the table and the logs." }
    );
    println!(
        "Data (keys, SQLite stores, configs, logs): {}",
        dir.display()
    );
    Ok(honest_ok)
}
