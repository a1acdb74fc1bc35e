//! `hallmark eval …`: the eval lane's tools. Pack a submission, write the lane's examples,
//! measure archives locally as a validator would, commit and upload an archive for a run,
//! fetch a validator's report, and bisect two reports to the first task where they differ.
//!
//! Exit codes: `bisect` 0 when the reports are identical, 1 when they differ (the output says
//! where and, when it can tell by re-executing, which report is wrong), 2 when it could not
//! run; every other command 0 on success and 2 on failure. With `--json` an error is
//! `{"error":{"code","message"}}` on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use hallmark_core::{sha256, Keypair, PublicKey, RosterEntry, RosterRun};
use hallmark_eval::samples::{self, SUBMISSIONS};
use hallmark_eval::{first_difference, replay_task, Difference, EvalParams, EvalReport, Grader};
use hallmark_node::messages::RunSubmissionAck;
use serde_json::{json, Value};

/// `hallmark eval …`
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Pack a module (`.wasm`, or `.wat` text) and a manifest into a submission archive.
    Pack {
        /// The module: binary wasm, or WAT text (by extension `.wat`).
        module: PathBuf,
        /// The manifest's name (1-64 printable ASCII characters).
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Where to write the archive.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Write one of the lane's example submissions: cheap, costly, wrong, clock, spin, grow.
    Example {
        name: String,
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Measure archives here, offline, exactly as a validator would (tasks from --seed).
    Run(RunArgs),
    /// Commit an archive's hash on the ledger and upload it to the coordinator for a run.
    Submit(SubmitArgs),
    /// Fetch a validator's eval report for a run (what `bisect` compares).
    Report {
        /// The validator's base URL.
        #[arg(long)]
        validator: String,
        run_id: String,
        /// Where to write it (default: stdout).
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Find the first task where two eval reports differ, re-execute only that task, and say
    /// which report is wrong.
    Bisect(BisectArgs),
}

/// `hallmark eval run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    archives: Vec<PathBuf>,
    /// Round parameters as JSON (default: the lane's defaults).
    #[arg(long)]
    params: Option<String>,
    /// Any text: the tasks derive from it (a network derives them from its roster and ledger).
    #[arg(long, default_value = "local")]
    seed: String,
    #[arg(long)]
    json: bool,
}

/// `hallmark eval submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The archive to hand in.
    archive: PathBuf,
    /// The run (round id) to hand it in for, e.g. `eval-round-000001`.
    #[arg(long)]
    run: String,
    /// The worker's hotkey (hex seed file); it must be a registered worker.
    #[arg(long)]
    key: PathBuf,
    /// The ledger's base URL.
    #[arg(long, env = "HALLMARK_LEDGER", default_value = "http://127.0.0.1:7100")]
    ledger: String,
    /// The coordinator's base URL.
    #[arg(
        long,
        env = "HALLMARK_COORDINATOR_URL",
        default_value = "http://127.0.0.1:7200"
    )]
    coordinator: String,
    #[command(flatten)]
    devnet: crate::network::DevnetArg,
    #[arg(long)]
    json: bool,
}

/// `hallmark eval bisect`.
#[derive(Debug, Args)]
pub struct BisectArgs {
    /// A report as a validator serves it (`/v1/consensus/evaluations/{run}`) or a bare report.
    a: PathBuf,
    b: PathBuf,
    /// Find archives here by their SHA-256 (any file name).
    #[arg(long)]
    archive_dir: Option<PathBuf>,
    /// Or fetch them from this coordinator (every byte is checked against the report).
    #[arg(long)]
    coordinator: Option<String>,
    #[arg(long)]
    json: bool,
}

/// Runs `hallmark eval …`.
pub fn run(cmd: EvalCommand) -> ExitCode {
    let json = match &cmd {
        EvalCommand::Run(a) => a.json,
        EvalCommand::Submit(a) => a.json,
        EvalCommand::Bisect(a) => a.json,
        _ => false,
    };
    let out = match cmd {
        EvalCommand::Pack {
            module,
            name,
            description,
            out,
        } => pack(&module, &name, description, &out).map(|_| ExitCode::SUCCESS),
        EvalCommand::Example { name, out } => example(&name, &out).map(|_| ExitCode::SUCCESS),
        EvalCommand::Run(a) => local_run(a).map(|_| ExitCode::SUCCESS),
        EvalCommand::Submit(a) => crate::runtime()
            .and_then(|rt| rt.block_on(submit_cmd(a)))
            .map(|_| ExitCode::SUCCESS),
        EvalCommand::Report {
            validator,
            run_id,
            out,
        } => crate::runtime()
            .and_then(|rt| rt.block_on(fetch_report(&validator, &run_id, out.as_deref())))
            .map(|_| ExitCode::SUCCESS),
        EvalCommand::Bisect(a) => crate::runtime().and_then(|rt| rt.block_on(bisect(a))),
    };
    match out {
        Ok(code) => code,
        Err(e) => {
            let text = format!("{e:#}");
            let (code, message) = match text.split_once(": ") {
                Some((c, m)) if !c.contains(' ') => (c.to_string(), m.to_string()),
                _ => ("eval_failed".to_string(), text.clone()),
            };
            if json {
                println!("{}", json!({"error": {"code": code, "message": message}}));
            } else {
                eprintln!("error: {text}");
            }
            ExitCode::from(2)
        }
    }
}

fn pack(module: &Path, name: &str, description: Option<String>, out: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    let wasm = if module.extension().is_some_and(|e| e == "wat") {
        let text = String::from_utf8(bytes).context("invalid_wat: not UTF-8")?;
        samples::wat2wasm(&text).map_err(|e| anyhow!("invalid_wat: {e}"))?
    } else {
        bytes
    };
    let mut manifest = hallmark_eval::Manifest::new(name);
    manifest.description = description;
    let archive =
        hallmark_eval::pack(&manifest, &wasm).map_err(|e| anyhow!("{}: {e}", e.code()))?;
    std::fs::write(out, &archive).with_context(|| format!("writing {}", out.display()))?;
    println!("{}  {}", sha256(&archive).to_hex(), out.display());
    Ok(())
}

fn example(name: &str, out: &Path) -> anyhow::Result<()> {
    let archive = samples::archive(name).map_err(|e| {
        let names: Vec<&str> = SUBMISSIONS.iter().map(|(n, _, _)| *n).collect();
        anyhow!("unknown_example: {e} (one of {names:?})")
    })?;
    std::fs::write(out, &archive).with_context(|| format!("writing {}", out.display()))?;
    println!("{}  {}", sha256(&archive).to_hex(), out.display());
    Ok(())
}

fn local_run(a: RunArgs) -> anyhow::Result<()> {
    if a.archives.is_empty() {
        bail!("no_archives: name at least one archive");
    }
    let params: EvalParams = match &a.params {
        Some(p) => serde_json::from_str(p).context("invalid_params")?,
        None => EvalParams::default(),
    };
    params.check().map_err(|e| anyhow!("invalid_params: {e}"))?;
    let grader = Grader::new(
        params,
        &samples::reference_wasm().map_err(|e| anyhow!("{e}"))?,
    )
    .map_err(|e| anyhow!("{e}"))?;
    let mut admitted = Vec::new();
    for (i, path) in a.archives.iter().enumerate() {
        let archive = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        admitted.push(RosterEntry {
            // Local runs name members by position: a deterministic key per slot.
            worker: Keypair::from_seed(&[i as u8 + 1; 32]).public(),
            submission_id: path.display().to_string(),
            archive_sha256: sha256(&archive).to_hex(),
            archive,
        });
    }
    let workers: Vec<PublicKey> = admitted.iter().map(|e| e.worker).collect();
    let run = RosterRun {
        roster_sha256: sha256(a.seed.as_bytes()).to_hex(),
        anchor_size: 0,
        anchor_root: String::new(),
        admitted,
        refused: Vec::new(),
    };
    let (report, _, wall) = grader
        .measure("local", &run, &workers)
        .map_err(|e| anyhow!("{e}"))?;
    if a.json {
        println!(
            "{}",
            json!({"report_sha256": report.hash().map_err(|e| anyhow!("{e}"))?, "report": report, "wall_ms": wall})
        );
        return Ok(());
    }
    println!(
        "{:<28} {:<12} {:>7} {:>8} {:>12}  contained",
        "archive", "name", "score", "correct", "fuel"
    );
    // In the order the archives were named (the report orders members by key).
    let mut members: Vec<&hallmark_eval::MemberReport> = report.members.iter().collect();
    members.sort_by_key(|m| {
        a.archives
            .iter()
            .position(|p| p.display().to_string() == m.submission_id)
    });
    for m in members {
        println!(
            "{:<28} {:<12} {:>7.4} {:>5}/{:<2} {:>12}  {}",
            m.submission_id,
            m.name,
            m.score,
            m.correct_tasks,
            report.params.tasks,
            m.fuel,
            m.contained
                .as_ref()
                .map(|c| format!("{}: {}", c.code, c.detail))
                .unwrap_or_default()
        );
    }
    println!("report {}", report.hash().map_err(|e| anyhow!("{e}"))?);
    Ok(())
}

/// Commits an archive on the ledger (a retry of the same commitment is fine) and uploads it
/// to the coordinator for `run_id`, signed by the worker's hotkey.
pub async fn submit_archive(
    ledger_url: &str,
    coordinator_url: &str,
    key: &Keypair,
    lane: &str,
    run_id: &str,
    archive: &[u8],
) -> anyhow::Result<RunSubmissionAck> {
    let client = hallmark_sdk::Client::connect(hallmark_sdk::Endpoints {
        ledger: Some(ledger_url.to_string()),
        ..hallmark_sdk::Endpoints::coordinator(coordinator_url)
    })
    .await
    .map_err(crate::job::sdk_error)?;
    client
        .commit_archive(key, lane, archive)
        .await
        .map_err(crate::job::sdk_error)?;
    client
        .submit_archive(run_id, key, archive)
        .await
        .map_err(|e| anyhow!("{}: {e}", e.code().unwrap_or("coordinator_unavailable")))
}

async fn submit_cmd(a: SubmitArgs) -> anyhow::Result<()> {
    let (ledger, coordinator) = match a.devnet.info()? {
        Some(d) => (d.ledger, d.coordinator),
        None => (a.ledger, a.coordinator),
    };
    let key = hallmark_node::run::load_key(&a.key)
        .map_err(|e| anyhow!("bad_key: {}: {e}", a.key.display()))?;
    let archive =
        std::fs::read(&a.archive).with_context(|| format!("reading {}", a.archive.display()))?;
    let lane = a
        .run
        .split_once("-round-")
        .map(|(l, _)| l.to_string())
        .ok_or_else(|| anyhow!("invalid_run: {:?} is not a round id", a.run))?;
    let ack = submit_archive(&ledger, &coordinator, &key, &lane, &a.run, &archive).await?;
    if a.json {
        println!("{}", serde_json::to_string(&ack)?);
    } else {
        println!(
            "{} taken as {} for {} (replaceable until {} ms)",
            ack.archive_sha256, ack.submission_id, ack.run_id, ack.deadline_ms
        );
    }
    Ok(())
}

async fn fetch_report(validator: &str, run_id: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let client = hallmark_sdk::Client::connect(hallmark_sdk::Endpoints {
        coordinator: String::new(),
        ledger: None,
        validators: vec![validator.to_string()],
    })
    .await
    .map_err(crate::job::sdk_error)?;
    let bytes = client
        .evaluation_bytes(validator, run_id)
        .await
        .map_err(|e| anyhow!("{}: {e}", e.code().unwrap_or("validator_unavailable")))?;
    match out {
        Some(p) => std::fs::write(p, &bytes).with_context(|| format!("writing {}", p.display()))?,
        None => println!("{}", String::from_utf8_lossy(&bytes)),
    }
    Ok(())
}

/// A report file: a served evaluation record (`{report, …}`) or a bare report.
fn read_report(path: &Path) -> anyhow::Result<EvalReport> {
    let v: Value = serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("invalid_report: {} is not JSON", path.display()))?;
    let inner = if v.get("report").is_some() {
        v["report"].clone()
    } else {
        v
    };
    serde_json::from_value(inner)
        .with_context(|| format!("invalid_report: {} is not an eval report", path.display()))
}

/// The archive with this SHA-256, from a directory or the coordinator.
async fn find_archive(
    a: &BisectArgs,
    report: &EvalReport,
    archive_sha256: &str,
) -> anyhow::Result<Vec<u8>> {
    if let Some(dir) = &a.archive_dir {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_file() {
                let bytes = std::fs::read(&path)?;
                if sha256(&bytes).to_hex() == archive_sha256 {
                    return Ok(bytes);
                }
            }
        }
    }
    if let Some(url) = &a.coordinator {
        if let Some(m) = report
            .members
            .iter()
            .find(|m| m.archive_sha256 == archive_sha256)
        {
            let bytes = hallmark_sdk::Client::connect(hallmark_sdk::Endpoints::coordinator(url))
                .await
                .map_err(|e| anyhow!("archive_unavailable: {e}"))?
                .run_archive(
                    &report.run_id,
                    &m.submission_id,
                    hallmark_eval::archive::MAX_ARCHIVE_BYTES,
                )
                .await
                .map_err(|e| anyhow!("archive_unavailable: {e}"))?;
            if sha256(&bytes).to_hex() == archive_sha256 {
                return Ok(bytes);
            }
            bail!("archive_hash_mismatch: the coordinator's bytes for {} do not hash to {archive_sha256}", m.submission_id);
        }
    }
    bail!("archive_unavailable: no archive hashing to {archive_sha256} (give --archive-dir or --coordinator)")
}

async fn bisect(a: BisectArgs) -> anyhow::Result<ExitCode> {
    let (ra, rb) = (read_report(&a.a)?, read_report(&a.b)?);
    let Some(diff) = first_difference(&ra, &rb) else {
        let hash = ra.hash().map_err(|e| anyhow!("{e}"))?;
        if a.json {
            println!("{}", json!({"identical": true, "report_sha256": hash}));
        } else {
            println!("identical: both reports hash to {hash}");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let (wrong, replayed, why) = match &diff {
        Difference::Task {
            archive_sha256,
            task,
            a: ta,
            b: tb,
            ..
        } => {
            let archive = find_archive(&a, &ra, archive_sha256).await?;
            let reference = samples::reference_wasm().map_err(|e| anyhow!("{e}"))?;
            let truth =
                replay_task(&ra, &reference, &archive, *task).map_err(|e| anyhow!("{e}"))?;
            let a_ok = ta.as_deref() == Some(&truth);
            let b_ok = tb.as_deref() == Some(&truth);
            let wrong = match (a_ok, b_ok) {
                (true, false) => "b",
                (false, true) => "a",
                (false, false) => "both",
                (true, true) => "neither",
            };
            (wrong, Some(truth), format!("task {task} re-executed here"))
        }
        Difference::Summary { worker } => {
            let ok = |r: &EvalReport| {
                r.members
                    .iter()
                    .find(|m| &m.worker == worker)
                    .is_some_and(|m| m.summary_consistent())
            };
            let wrong = match (ok(&ra), ok(&rb)) {
                (true, false) => "b",
                (false, true) => "a",
                (false, false) => "both",
                (true, true) => "undetermined",
            };
            (
                wrong,
                None,
                "same task records; the summaries were recomputed from them".to_string(),
            )
        }
        Difference::Inputs { field } => (
            "undetermined",
            None,
            format!("the reports measured different inputs ({field}): not the same run"),
        ),
        Difference::Members { .. } => (
            "undetermined",
            None,
            "the reports admitted different members: compare their refusals".to_string(),
        ),
    };
    if a.json {
        println!(
            "{}",
            json!({"identical": false, "difference": diff, "replayed": replayed, "wrong": wrong, "why": why})
        );
    } else {
        println!("differ: {}", serde_json::to_string(&diff)?);
        if let Some(r) = &replayed {
            println!("replayed: {}", serde_json::to_string(r)?);
        }
        println!("wrong: {wrong} ({why})");
    }
    Ok(ExitCode::from(1))
}
