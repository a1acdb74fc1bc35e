//! `hallmark bench network`: a devnet under load. It starts a network with `hallmark devnet
//! --keep-running` (one pass on SQLite, a second on PostgreSQL when a store URL is given),
//! registers `--workers` extra worker hotkeys on its ledger, runs that many real workers in
//! this process against it (the node's own worker code, over HTTP, each with its own key),
//! publishes sat rounds back to back for `--duration`, and reports what it measured.
//!
//! - **verified results per second**: witnesses a validator verified, stored and acknowledged
//!   as accepted, over the whole measured time (rounds' settling included);
//! - **overhead beyond the work**: each submission's round trip, sent → acknowledged (the
//!   solving happens before and is not in it), as p50/p95/p99; and each round's settle lag,
//!   deadline → every validator serves its signed result;
//! - **errors**: refused, timed-out and failed submissions, as a rate of all sent;
//! - **per role**: CPU (cores used over the measured time, from `/proc`) and peak RSS;
//! - **a baseline** measured in the same run: `GET /v1/health` on the same validators under
//!   the same load, so the submission overhead is also printed as a ratio against the
//!   cheapest request those servers answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hallmark_core::Keypair;
use hallmark_ledger::{Role, TxBody};
use hallmark_node::config::WorkerSection;
use hallmark_node::faults::Faults;
use hallmark_node::http_ledger::HttpLedger;
use hallmark_node::lanes::LaneRegistry;
use hallmark_node::messages::RoundResult;
use hallmark_node::worker::{SubmissionOutcome, SubmissionTiming, SubmissionTimings, Worker};
use hallmark_node::NodeClient;
use serde::Serialize;
use tokio::process::Command;
use tokio::sync::watch;

use crate::network::DevnetInfo;

/// `hallmark bench …`: load benchmarks against real processes.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Drive a devnet with many concurrent workers and report throughput, overhead
    /// percentiles, errors and per-role CPU and memory, for SQLite and (with --store)
    /// PostgreSQL in one run.
    Network(NetworkBenchArgs),
}

/// Options of `hallmark bench network`.
#[derive(Debug, Args)]
pub struct NetworkBenchArgs {
    /// Concurrent workers (run in this process, each with its own registered hotkey).
    #[arg(long, default_value_t = 100)]
    workers: usize,
    /// Validators (separate processes, equal stake).
    #[arg(long, default_value_t = 3)]
    validators: usize,
    /// How long to publish rounds for, per backend: `60s`, `2m`, `500ms` or seconds.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Also run the whole bench on PostgreSQL: a `postgres://` URL (default
    /// `HALLMARK_DATABASE_URL`). SQLite always runs first.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Where each pass keeps its devnet (`<dir>/sqlite`, `<dir>/postgres`), wiped first.
    #[arg(long, default_value = ".hallmark/bench")]
    data_dir: PathBuf,
    /// Each round's submission window, ms.
    #[arg(long, default_value_t = 2000)]
    window_ms: i64,
    /// Instances per round (each worker submits one witness per instance to every validator).
    #[arg(long, default_value_t = 4)]
    instances: u32,
    /// Variables per instance.
    #[arg(long, default_value_t = 100)]
    vars: u32,
    /// Clauses per instance.
    #[arg(long, default_value_t = 400)]
    clauses: u32,
    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

/// The goals issue 19 sets for this machine class, printed beside what was reached.
const GOAL_VERIFIED_PER_SEC: f64 = 200.0;
const GOAL_P99_OVERHEAD_MS: f64 = 50.0;
/// Stake each bench worker bonds (the worker tier's minimum in the default rules).
const WORKER_STAKE: u64 = 1_000;

/// Parses `60s`, `2m`, `500ms` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with ms, s or m (60s, 2m, 500ms)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("{s:?}: the unit must be ms, s or m")),
    };
    if d.is_zero() {
        return Err("the duration must be above zero".into());
    }
    Ok(d)
}

/// The sat instances each round asks for.
fn instance_params(args: &NetworkBenchArgs) -> hallmark_sat::InstanceParams {
    hallmark_sat::InstanceParams {
        vars: args.vars,
        clauses: args.clauses,
        k: 3,
        count: args.instances,
    }
}

/// Runs a bench command.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Network(args) => network(args).await,
    }
}

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Percentiles {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `us` (microseconds).
    fn of_micros(us: &mut [u64]) -> Self {
        if us.is_empty() {
            return Self::default();
        }
        us.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * us.len() as f64).ceil() as usize).clamp(1, us.len());
            us[rank - 1] as f64 / 1000.0
        };
        Self {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// One role process's share of the machine over the measured time.
#[derive(Debug, Clone, Serialize)]
struct RoleUsage {
    name: String,
    role: String,
    /// CPU time over wall time: 1.0 is one core busy the whole time.
    cpu_cores: f64,
    peak_rss_kib: u64,
}

/// What one backend's pass measured.
#[derive(Debug, Clone, Serialize)]
struct PassReport {
    backend: &'static str,
    workers: usize,
    validators: usize,
    measured_secs: f64,
    rounds: usize,
    void_rounds: usize,
    submissions: usize,
    accepted: usize,
    rejected: usize,
    timed_out: usize,
    failed: usize,
    error_rate: f64,
    /// Refused and failed submissions by error code (`stale_round`: sent after the window).
    error_codes: BTreeMap<String, u64>,
    verified_per_sec: f64,
    /// Submit → verified and acknowledged (the work excluded), accepted submissions.
    overhead_ms: Percentiles,
    /// Round deadline → every validator serves its signed result.
    settle_lag_ms: Percentiles,
    /// `GET /v1/health` on the same validators during the same load.
    health_baseline_ms: Percentiles,
    /// overhead p50 / health p50, and the same at p99.
    overhead_vs_health_p50: f64,
    overhead_vs_health_p99: f64,
    roles: Vec<RoleUsage>,
}

/// The whole run.
#[derive(Debug, Serialize)]
struct BenchReport {
    machine: Machine,
    goals: Goals,
    passes: Vec<PassReport>,
}

#[derive(Debug, Serialize)]
struct Machine {
    cpus: usize,
    memory_kib: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Goals {
    verified_per_sec: f64,
    p99_overhead_ms: f64,
    errors: usize,
}

async fn network(args: NetworkBenchArgs) -> anyhow::Result<ExitCode> {
    if args.workers == 0 || args.validators == 0 {
        bail!("--workers and --validators must be at least 1");
    }
    let store = args
        .store
        .clone()
        .or_else(|| std::env::var("HALLMARK_DATABASE_URL").ok())
        .filter(|u| !u.is_empty());
    if let Some(url) = &store {
        let parsed = hallmark_store::StoreUrl::parse(url).context("--store")?;
        if !matches!(parsed, hallmark_store::StoreUrl::Postgres(_)) {
            bail!("--store {}: expected a postgres:// URL", parsed.redacted());
        }
    }
    instance_params(&args)
        .validate()
        .context("instance parameters")?;
    let exe = std::env::current_exe().context("locating the hallmark binary")?;
    let root = std::path::absolute(&args.data_dir).context("resolving --data-dir")?;
    let mut passes = Vec::new();
    let mut backends: Vec<(&'static str, Option<&str>)> = vec![("sqlite", None)];
    if let Some(url) = &store {
        backends.push(("postgres", Some(url.as_str())));
    }
    for (backend, url) in backends {
        let dir = root.join(backend);
        eprintln!(
            "bench: {backend}: starting a devnet ({} validators) in {}",
            args.validators,
            dir.display()
        );
        let report = pass(&args, &exe, &dir, backend, url)
            .await
            .with_context(|| format!("the {backend} pass"))?;
        passes.push(report);
    }
    let report = BenchReport {
        machine: Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_kib: meminfo_total_kib(),
        },
        goals: Goals {
            verified_per_sec: GOAL_VERIFIED_PER_SEC,
            p99_overhead_ms: GOAL_P99_OVERHEAD_MS,
            errors: 0,
        },
        passes,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// The devnet child of one pass; SIGTERM (then SIGKILL) on drop of [`DevnetChild::stop`].
struct DevnetChild {
    child: tokio::process::Child,
}

impl DevnetChild {
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

async fn start_devnet(
    args: &NetworkBenchArgs,
    exe: &Path,
    dir: &Path,
    store: Option<&str>,
) -> anyhow::Result<(DevnetChild, DevnetInfo)> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("wiping {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let out = std::fs::File::create(dir.join("devnet.out"))?;
    let err = std::fs::File::create(dir.join("devnet.err"))?;
    let mut cmd = Command::new(exe);
    cmd.args(["devnet", "--keep-running", "--single-sequencer", "--json"])
        .args(["--validators", &args.validators.to_string()])
        // One worker of its own, so its first round has a winner; the bench's join after.
        .args(["--workers", "1", "--rounds", "1", "--jobs", "0"])
        .args(["--no-builds", "--no-eval"])
        .args(["--vars", &args.vars.to_string()])
        .args(["--clauses", &args.clauses.to_string()])
        .args(["--instances", &args.instances.to_string()])
        .arg("--data-dir")
        .arg(dir)
        .env_remove("HALLMARK_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
    if let Some(url) = store {
        cmd.args(["--store", url]);
    }
    let child = cmd.spawn().context("starting hallmark devnet")?;
    let mut devnet = DevnetChild { child };
    let started = Instant::now();
    loop {
        if let Ok(info) = DevnetInfo::read(dir) {
            return Ok((devnet, info));
        }
        if let Ok(Some(status)) = devnet.child.try_wait() {
            let tail = std::fs::read_to_string(dir.join("devnet.err")).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect();
            bail!(
                "the devnet exited ({status}) before it was up:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if started.elapsed() > Duration::from_secs(300) {
            devnet.stop().await;
            bail!("the devnet was not up after 300 s (see {})", dir.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn pass(
    args: &NetworkBenchArgs,
    exe: &Path,
    dir: &Path,
    backend: &'static str,
    store: Option<&str>,
) -> anyhow::Result<PassReport> {
    let (devnet, info) = start_devnet(args, exe, dir, store).await?;
    let result = drive(args, backend, &info, &devnet).await;
    devnet.stop().await;
    result
}

async fn drive(
    args: &NetworkBenchArgs,
    backend: &'static str,
    info: &DevnetInfo,
    devnet: &DevnetChild,
) -> anyhow::Result<PassReport> {
    let ledger = HttpLedger::new(&info.ledger);
    let coldkey = hallmark_node::run::load_key(&info.coldkey).context("the devnet coldkey")?;
    let operator =
        hallmark_node::run::load_key(&info.operator_key).context("the devnet operator key")?;
    let chain_id =
        hallmark_node::registration::wait_for_ledger(&ledger, Duration::from_secs(30)).await?;

    // Register the bench's workers: one Register transaction each, from the devnet coldkey.
    eprintln!("bench: {backend}: registering {} workers", args.workers);
    let keys: Vec<Keypair> = (0..args.workers).map(|_| Keypair::generate()).collect();
    for key in &keys {
        hallmark_node::registration::submit_tx(
            &ledger,
            &chain_id,
            &coldkey,
            TxBody::Register {
                hotkey: key.public(),
                role: Role::Worker,
                stake: WORKER_STAKE,
            },
        )
        .await
        .context("registering a bench worker")?;
    }

    // The workers: the node's own worker loop, in this process.
    let timings = Arc::new(SubmissionTimings::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for key in keys {
        let lanes =
            LaneRegistry::default().with_round_lane(hallmark_sat::SatLane, hallmark_sat::SatWorker);
        let worker = Worker::new(
            key,
            HttpLedger::new(&info.ledger),
            NodeClient::new(&info.coordinator),
            info.coordinator_hotkey,
            WorkerSection {
                poll_ms: 200,
                prove_jobs: false,
            },
            Faults::default(),
            lanes,
        )
        .with_timings(timings.clone());
        let rx = stop_rx.clone();
        tasks.push(tokio::spawn(Arc::new(worker).run_loop(rx)));
    }

    // The baseline: health checks on the same validators, during the same load.
    let health = {
        let validators: Vec<NodeClient> =
            info.validators.iter().map(|u| NodeClient::new(u)).collect();
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                for v in &validators {
                    let t = Instant::now();
                    if v.get::<serde_json::Value>("/v1/health").await.is_ok() {
                        samples.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
                    }
                }
                tokio::select! {
                    _ = rx.changed() => return samples,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        })
    };

    let cpu_before = role_cpu(devnet)?;
    let self_before = cpu_ticks(std::process::id());
    let db_before = database_server_ticks();
    let started = Instant::now();
    let start_ms = hallmark_core::time::now_unix_ms();
    let coordinator = NodeClient::new(&info.coordinator).signed_by(operator);
    let validators: Vec<NodeClient> = info.validators.iter().map(|u| NodeClient::new(u)).collect();
    let params = instance_params(args);
    let (mut rounds, mut void_rounds) = (0usize, 0usize);
    let mut settle_us = Vec::new();
    let mut last_report = Instant::now();
    while started.elapsed() < args.duration {
        let ann = crate::devnet::publish_sat_round(&coordinator, &params, args.window_ms).await?;
        let results = wait_results(&validators, ann.round_id.as_str(), ann.deadline_ms).await?;
        let settled_ms = hallmark_core::time::now_unix_ms();
        settle_us
            .push(u64::try_from(settled_ms.saturating_sub(ann.deadline_ms)).unwrap_or(0) * 1000);
        rounds += 1;
        if results.iter().any(|r| r.void) {
            void_rounds += 1;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "bench: {backend}: {rounds} rounds, {:.0} s of {:.0} s",
                started.elapsed().as_secs_f64(),
                args.duration.as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    let measured = started.elapsed();
    let cpu_after = role_cpu(devnet)?;
    let self_after = cpu_ticks(std::process::id());
    let db_after = database_server_ticks();
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let mut health_us = health.await.unwrap_or_default();

    let rows: Vec<SubmissionTiming> = timings
        .take()
        .into_iter()
        .filter(|r| r.sent_at_ms >= start_ms)
        .collect();
    let count = |o: SubmissionOutcome| rows.iter().filter(|r| r.outcome == o).count();
    let accepted = count(SubmissionOutcome::Accepted);
    let (rejected, timed_out, failed) = (
        count(SubmissionOutcome::Rejected),
        count(SubmissionOutcome::TimedOut),
        count(SubmissionOutcome::Failed),
    );
    let mut accepted_us: Vec<u64> = rows
        .iter()
        .filter(|r| r.outcome == SubmissionOutcome::Accepted)
        .map(|r| r.latency_us)
        .collect();
    let overhead = Percentiles::of_micros(&mut accepted_us);
    let health_ms = Percentiles::of_micros(&mut health_us);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let secs = measured.as_secs_f64();
    let ticks = clock_ticks_per_sec();
    let mut roles: Vec<RoleUsage> = cpu_after
        .into_iter()
        .map(|(pid, (name, role, after))| {
            let before = cpu_before.get(&pid).map_or(0, |b| b.2);
            RoleUsage {
                name,
                role,
                cpu_cores: after.saturating_sub(before) as f64 / ticks / secs,
                peak_rss_kib: crate::devnet::peak_rss_kib(Some(pid)).unwrap_or(0),
            }
        })
        .collect();
    roles.push(RoleUsage {
        name: format!("bench ({} workers)", args.workers),
        role: "worker".into(),
        cpu_cores: self_after.saturating_sub(self_before) as f64 / ticks / secs,
        peak_rss_kib: crate::devnet::peak_rss_kib(Some(std::process::id())).unwrap_or(0),
    });
    // The PostgreSQL server is shared and not the devnet's child; on its pass its processes'
    // CPU over the same time is the store's cost (peak RSS is left out: it is per process).
    if backend == "postgres" {
        roles.push(RoleUsage {
            name: "postgresql server".into(),
            role: "store".into(),
            cpu_cores: db_after.saturating_sub(db_before) as f64 / ticks / secs,
            peak_rss_kib: 0,
        });
    }
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(PassReport {
        backend,
        workers: args.workers,
        validators: args.validators,
        measured_secs: secs,
        rounds,
        void_rounds,
        submissions: rows.len(),
        accepted,
        rejected,
        timed_out,
        failed,
        error_rate: ratio((rejected + timed_out + failed) as f64, rows.len() as f64),
        error_codes: timings.codes(),
        verified_per_sec: accepted as f64 / secs,
        overhead_ms: overhead,
        settle_lag_ms: Percentiles::of_micros(&mut settle_us),
        health_baseline_ms: health_ms,
        overhead_vs_health_p50: ratio(overhead.p50, health_ms.p50),
        overhead_vs_health_p99: ratio(overhead.p99, health_ms.p99),
        roles,
    })
}

/// Every validator's result for `round_id`, polling from its deadline on.
async fn wait_results(
    validators: &[NodeClient],
    round_id: &str,
    deadline_ms: i64,
) -> anyhow::Result<Vec<RoundResult>> {
    let wait = deadline_ms.saturating_sub(hallmark_core::time::now_unix_ms());
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    let give_up = Instant::now() + Duration::from_secs(120);
    let mut out = Vec::new();
    for v in validators {
        loop {
            match v
                .get::<RoundResult>(&format!("/v1/rounds/{round_id}/result"))
                .await
            {
                Ok(r) => {
                    out.push(r);
                    break;
                }
                Err(e) if e.status() == Some(404) && Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("{round_id}'s result")),
            }
        }
    }
    Ok(out)
}

/// The devnet's node processes (its children) with their name, role and CPU ticks so far.
fn role_cpu(devnet: &DevnetChild) -> anyhow::Result<BTreeMap<u32, (String, String, u64)>> {
    let parent = devnet.child.id().context("the devnet has exited")?;
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The fields after the command name (which may hold spaces) close with ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) != Some(parent) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let after = |flag: &str| {
            argv.iter()
                .position(|a| a == flag)
                .and_then(|i| argv.get(i + 1))
                .cloned()
        };
        let role = after("--role").unwrap_or_else(|| "?".into());
        // `--config <dir>/<node>/config.toml`: the node's name is its directory's.
        let name = after("--config")
            .and_then(|c| {
                Path::new(&c)
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| format!("pid {pid}"));
        out.insert(pid, (name, role, stat_ticks(rest)));
    }
    Ok(out)
}

/// CPU ticks of every process named `postgres` (a local PostgreSQL server's backends), so far.
/// Processes that ended in between are missed: the figure is a lower bound.
fn database_server_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(cpu_ticks)
        .sum()
}

/// User plus system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    stat.rsplit_once(')')
        .map_or(0, |(_, rest)| stat_ticks(rest))
}

/// utime plus stime from the fields of `/proc/PID/stat` after the command name.
fn stat_ticks(after_name: &str) -> u64 {
    let f: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state(0) ppid(1) … utime(11) stime(12).
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`), 100 on Linux everywhere we run.
fn clock_ticks_per_sec() -> f64 {
    100.0
}

fn meminfo_total_kib() -> Option<u64> {
    let m = std::fs::read_to_string("/proc/meminfo").ok()?;
    m.lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn print_table(r: &BenchReport) {
    println!(
        "hallmark bench network — {} CPUs; goals: {} verified sat results/s, p99 overhead < {} ms, no errors",
        r.machine.cpus, r.goals.verified_per_sec, r.goals.p99_overhead_ms
    );
    for p in &r.passes {
        println!();
        println!(
            "{}: {} workers, {} validators, {:.1} s, {} rounds ({} void)",
            p.backend, p.workers, p.validators, p.measured_secs, p.rounds, p.void_rounds
        );
        println!(
            "  verified results/s  {:>9.1}   (goal {}: {})",
            p.verified_per_sec,
            r.goals.verified_per_sec,
            if p.verified_per_sec >= r.goals.verified_per_sec {
                "met"
            } else {
                "not met"
            }
        );
        println!(
            "  overhead ms         p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}   (goal p99 < {}: {})",
            p.overhead_ms.p50,
            p.overhead_ms.p95,
            p.overhead_ms.p99,
            p.overhead_ms.max,
            r.goals.p99_overhead_ms,
            if p.overhead_ms.p99 < r.goals.p99_overhead_ms { "met" } else { "not met" }
        );
        println!(
            "  health baseline ms  p50 {:.2}  p99 {:.2}   overhead/health: p50 {:.1}x  p99 {:.1}x",
            p.health_baseline_ms.p50,
            p.health_baseline_ms.p99,
            p.overhead_vs_health_p50,
            p.overhead_vs_health_p99
        );
        println!(
            "  settle lag ms       p50 {:.0}  max {:.0}   (deadline → every validator's signed result)",
            p.settle_lag_ms.p50, p.settle_lag_ms.max
        );
        println!(
            "  submissions {}: accepted {}, refused {}, timed out {}, failed {} (error rate {:.2}%)",
            p.submissions,
            p.accepted,
            p.rejected,
            p.timed_out,
            p.failed,
            p.error_rate * 100.0
        );
        for (code, n) in &p.error_codes {
            println!("    {code}: {n}");
        }
        println!(
            "  {:<24} {:<12} {:>9} {:>14}",
            "process", "role", "cpu cores", "peak rss MiB"
        );
        for role in &p.roles {
            println!(
                "  {:<24} {:<12} {:>9.2} {:>14.1}",
                role.name,
                role.role,
                role.cpu_cores,
                role.peak_rss_kib as f64 / 1024.0
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        for bad in ["", "0s", "s", "10h", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut us: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let p = Percentiles::of_micros(&mut us);
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(Percentiles::of_micros(&mut []).p99, 0.0);
    }
}
