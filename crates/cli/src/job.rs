//! `hallmark job …`: a client's side of proven jobs — submit a signed request, wait for the
//! vote, show a job's record, and re-verify its proof on this machine.
//!
//! Exit codes: `submit`/`wait` 0 approved (or queued, without `--wait`), 1 rejected, 2 could not
//! finish (bad arguments, coordinator unreachable, timed out); `verify` 0 only when the proof
//! verifies against the client's signed request, 1 when anything fails a check, 2 when it
//! could not be checked.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use hallmark_consensus::{verify_certificate, JobResult, Quorum, VoteOutcome};
use hallmark_core::PublicKey;
use hallmark_node::jobs::{check_request, JobStatus, JobView};
use hallmark_node::run::load_or_create_key;
use hallmark_node::NodeClient;
use hallmark_sdk::{Client, Endpoints, SdkError};
use hallmark_stark::JobSpec;
use serde::Serialize;
use serde_json::json;

use crate::network::CoordinatorArg;
use crate::stark::{stage_spinner, SpecArgs};

/// `hallmark job …`
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Sign and submit a job request; prints the job id (with --wait, waits for the vote).
    Submit(SubmitArgs),
    /// Wait until validators settle a job, showing its progress.
    Wait(WaitArgs),
    /// Show a job: status, lifecycle, worker, proof, votes, certificate, settlement.
    Show(ShowArgs),
    /// Fetch a job's proof and verify it here against the client's signed request; with
    /// --ledger, also check the ledger settled exactly this result.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    coordinator: CoordinatorArg,
    /// The lane (`hallmark lanes` lists the job lanes; these flags build a `stark` spec).
    #[arg(long, default_value = "stark")]
    lane: String,
    #[command(flatten)]
    spec: SpecArgs,
    /// The client key that signs the request (hex seed file, created if missing). It needs
    /// stake bonded on the ledger (`hallmark stake`; the coordinator's
    /// `[coordinator.clients] min_stake`). Default: the devnet's client key with --devnet
    /// (devnet bonds it), else .hallmark/client.key.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Wait for the vote after submitting.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    coordinator: CoordinatorArg,
    /// The job id.
    id: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Print the settled job as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    coordinator: CoordinatorArg,
    /// The job id.
    id: String,
    /// Print the whole record as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    coordinator: CoordinatorArg,
    /// The job id.
    id: String,
    /// A ledger URL: also check that the ledger settled this job with this result.
    #[arg(long, env = "HALLMARK_LEDGER_URL")]
    ledger: Option<String>,
    /// Print a JSON verdict.
    #[arg(long)]
    json: bool,
}

/// Runs a `hallmark job` command; errors are printed and exit 2.
pub async fn run(cmd: JobCommand) -> ExitCode {
    let res = match cmd {
        JobCommand::Submit(a) => submit(a).await,
        JobCommand::Wait(a) => match sdk(&a.coordinator, None).await {
            Ok(c) => wait(&c, &a.id, a.timeout_secs, a.json).await,
            Err(e) => Err(e),
        },
        JobCommand::Show(a) => show(a).await,
        JobCommand::Verify(a) => verify(a).await,
    };
    res.unwrap_or_else(|e| {
        eprintln!("error: {}", crate::error_chain(&e));
        ExitCode::from(2)
    })
}

async fn submit(a: SubmitArgs) -> anyhow::Result<ExitCode> {
    let seed = a.spec.seed().map_err(|e| anyhow!("invalid_seed: {e}"))?;
    let key_path = match (&a.key, a.coordinator.devnet()?) {
        (Some(k), _) => k.clone(),
        (None, Some(d)) => d.client_key,
        (None, None) => PathBuf::from(".hallmark/client.key"),
    };
    let key = load_or_create_key(&key_path)
        .with_context(|| format!("the client key {}", key_path.display()))?;
    let spec = JobSpec::new(a.spec.job_type, a.spec.size, seed)
        .map_err(|e| anyhow!("invalid_spec: {e}"))?;
    let c = sdk(&a.coordinator, None).await?.with_key(key);
    // The SDK refuses locally what the coordinator would refuse, with the same words.
    let job = c
        .submit_job(&a.lane, serde_json::to_value(spec)?)
        .await
        .map_err(sdk_error)
        .context("submitting the job")?;
    if a.wait {
        if !a.json {
            eprintln!("submitted {}", job.job_id);
        }
        return wait(&c, &job.job_id, a.timeout_secs, a.json).await;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&JobSummary::from(&job))?);
    } else {
        println!("{}", job.job_id);
    }
    Ok(ExitCode::SUCCESS)
}

/// The SDK client for the coordinator of `coordinator` (and `ledger` when given): the one
/// client the network commands use.
pub async fn sdk(coordinator: &CoordinatorArg, ledger: Option<&str>) -> anyhow::Result<Client> {
    let endpoints = Endpoints {
        ledger: ledger.map(str::to_string),
        ..Endpoints::coordinator(&coordinator.url()?)
    };
    Client::connect(endpoints).await.map_err(sdk_error)
}

/// An SDK error as the CLI reports it: the server's code first, where there is one.
pub fn sdk_error(e: SdkError) -> anyhow::Error {
    match e.code() {
        Some(code) if !e.to_string().contains(code) => anyhow!("{code}: {e}"),
        _ => anyhow!("{e}"),
    }
}

/// The short form of a job: what `job submit|wait --json` print and devnet lists.
#[derive(Debug, Clone, Serialize)]
pub struct JobSummary {
    pub id: String,
    pub lane: String,
    /// The spec's `job_type` and `size`, for lanes whose spec has them (stark).
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    pub size: Option<u64>,
    /// The lane's one-line description of the spec.
    pub summary: String,
    pub status: JobStatus,
    pub worker: Option<PublicKey>,
    pub attempts: u64,
    pub proof_bytes: Option<u64>,
    pub proof_hash: Option<String>,
    pub votes_valid_stake: u64,
    pub votes_invalid_stake: u64,
    pub total_stake: u64,
    /// Signed votes in the certificate that settled it (0 while unsettled).
    pub certificate_votes: usize,
    /// Validators caught signing two votes on it.
    pub equivocators: Vec<PublicKey>,
    /// The ledger transaction that settled it.
    pub settle_tx: Option<String>,
}

impl From<&JobView> for JobSummary {
    fn from(v: &JobView) -> Self {
        Self {
            id: v.job_id.clone(),
            lane: v.lane.clone(),
            job_type: v.spec["job_type"].as_str().map(str::to_string),
            size: v.spec["size"].as_u64(),
            summary: v.summary.clone(),
            status: v.status,
            worker: v.worker,
            attempts: v.attempts,
            proof_bytes: v.proof_bytes,
            proof_hash: v.proof_hash.clone(),
            votes_valid_stake: v.votes_valid_stake,
            votes_invalid_stake: v.votes_invalid_stake,
            total_stake: v.total_stake,
            certificate_votes: v.certificate.as_ref().map_or(0, |c| c.votes.len()),
            equivocators: v.equivocations.iter().map(|e| e.validator).collect(),
            settle_tx: v.settle_tx.clone(),
        }
    }
}

/// One job from the coordinator.
pub async fn fetch_job(c: &NodeClient, id: &str) -> anyhow::Result<JobView> {
    c.get(&format!("/v1/jobs/{id}"))
        .await
        .with_context(|| format!("reading job {id}"))
}

fn progress_line(job: &JobView) -> String {
    match job.status {
        JobStatus::Queued => "queued, waiting for a worker".into(),
        JobStatus::Assigned => format!(
            "assigned to {} (attempt {})",
            job.worker.map(|w| w.to_ss58()).unwrap_or_default(),
            job.attempts
        ),
        JobStatus::Proven => format!(
            "proven ({} bytes); votes {} valid / {} invalid of {} stake",
            job.proof_bytes.unwrap_or(0),
            job.votes_valid_stake,
            job.votes_invalid_stake,
            job.total_stake
        ),
        s => s.as_str().into(),
    }
}

async fn wait(c: &Client, id: &str, timeout_secs: u64, json: bool) -> anyhow::Result<ExitCode> {
    let bar = stage_spinner(&format!("{id}:"), json);
    let started = Instant::now();
    let job = c
        .wait_job(id, Duration::from_secs(timeout_secs), |job| {
            bar.set_message(progress_line(job))
        })
        .await;
    bar.finish_and_clear();
    let job = match job {
        Ok(job) => job,
        Err(SdkError::Timeout { what, secs }) => {
            bail!("timed_out: {what} is not settled after {secs} s")
        }
        Err(e) => return Err(sdk_error(e)).with_context(|| format!("waiting for {id}")),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&JobSummary::from(&job))?);
    } else {
        println!(
            "{id}: {} — {} valid / {} invalid of {} validator stake, {} signed votes in the certificate, {:.1} s",
            job.status.as_str(),
            job.votes_valid_stake,
            job.votes_invalid_stake,
            job.total_stake,
            job.certificate.as_ref().map_or(0, |c| c.votes.len()),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(if job.status == JobStatus::Approved {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn at(ms: Option<i64>, from: i64) -> String {
    ms.map_or("-".into(), |t| format!("+{} ms", t - from))
}

async fn show(a: ShowArgs) -> anyhow::Result<ExitCode> {
    let c = sdk(&a.coordinator, None).await?;
    let job = c
        .job_status(&a.id)
        .await
        .map_err(sdk_error)
        .with_context(|| format!("reading job {}", a.id))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&job)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("job        {}", job.job_id);
    println!("lane       {} {}", job.lane, job.summary);
    println!("client     {}", job.client);
    println!("status     {}", job.status.as_str());
    if let Some(w) = job.worker {
        println!("worker     {w} (attempts: {})", job.attempts);
    }
    println!(
        "timeline   queued {}, assigned {}, proven {}, settled {}",
        at(Some(job.queued_ms), job.queued_ms),
        at(job.assigned_ms, job.queued_ms),
        at(job.proven_ms, job.queued_ms),
        at(job.settled_ms, job.queued_ms)
    );
    if let (Some(h), Some(n)) = (&job.proof_hash, job.proof_bytes) {
        println!("proof      {n} bytes, blake3 {h}");
    }
    println!(
        "votes      {} signed; {} valid / {} invalid of {} validator stake",
        job.votes.len(),
        job.votes_valid_stake,
        job.votes_invalid_stake,
        job.total_stake
    );
    if let Some(cert) = &job.certificate {
        println!(
            "certificate {:?} with {} signed votes",
            cert.outcome,
            cert.votes.len()
        );
    }
    for e in &job.equivocations {
        println!("equivocation by {} (both signed votes kept)", e.validator);
    }
    if let Some(tx) = &job.settle_tx {
        println!("ledger     {tx}");
    }
    println!("history");
    for e in &job.events {
        let detail = if e.detail.is_empty() {
            String::new()
        } else {
            format!(" — {}", e.detail)
        };
        println!(
            "  {:>8}  {}{detail}",
            at(Some(e.at_ms), job.queued_ms),
            e.event
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One named check of `job verify`.
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

async fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let c = sdk(&a.coordinator, a.ledger.as_deref()).await?;
    let job = c
        .job_status(&a.id)
        .await
        .map_err(sdk_error)
        .with_context(|| format!("reading job {}", a.id))?;
    let mut checks = Vec::new();
    let mut check = |name, ok, detail: String| checks.push(Check { name, ok, detail });

    let request = check_request(c.lanes().map_err(sdk_error)?, &job.signed_request());
    let checked = match &request {
        Ok(r) if r.job_id == job.job_id => {
            check(
                "request",
                true,
                format!("signed by {}: {}", r.client, r.lane.describe(&r.spec)),
            );
            Some(r.clone())
        }
        Ok(r) => {
            check(
                "request",
                false,
                format!("the request is for job {}", r.job_id),
            );
            None
        }
        Err(e) => {
            check("request", false, e.to_string());
            None
        }
    };
    let result = job.signed_result().map(|s| s.verify());
    let digest = match result {
        None => bail!(
            "{} is {} and has no proof yet",
            job.job_id,
            job.status.as_str()
        ),
        Some(Ok(v)) if v.signer == v.payload.worker && v.payload.job_id == job.job_id => {
            let r: JobResult = v.payload;
            check("result", true, format!("signed by worker {}", r.worker));
            Some(r.result_digest)
        }
        Some(Ok(v)) => {
            check(
                "result",
                false,
                format!("signed by {} for {}", v.signer, v.payload.job_id),
            );
            None
        }
        Some(Err(e)) => {
            check("result", false, e.to_string());
            None
        }
    };
    let package = c
        .get_proof(&job.job_id)
        .await
        .map_err(sdk_error)
        .context("fetching the proof")?;
    let mut proof_valid = false;
    match &checked {
        Some(r) => {
            let hash = r.lane.artifact_digest(&package);
            check(
                "proof_hash",
                digest.as_deref() == Some(hash.as_str()),
                format!("{} bytes hash to {hash}", package.len()),
            );
            let started = Instant::now();
            let verdict = r.lane.verify(&r.spec, &package);
            let ms = started.elapsed().as_secs_f64() * 1e3;
            proof_valid = verdict.accepted;
            let detail = match verdict
                .checks
                .iter()
                .find(|c| c.outcome != hallmark_core::CheckOutcome::Pass)
            {
                None => format!(
                    "the {} verifier passed {} checks in {ms:.1} ms",
                    job.lane,
                    verdict.checks.len()
                ),
                Some(c) => format!(
                    "{}: {} ({})",
                    verdict.rejection.as_deref().unwrap_or("rejected"),
                    c.detail,
                    c.name
                ),
            };
            check("lane_verdict", proof_valid, detail);
        }
        None => {
            check(
                "proof_hash",
                false,
                "no checked request to name the lane's digest".into(),
            );
            check(
                "lane_verdict",
                false,
                "no checked request to verify the artifact against".into(),
            );
        }
    }
    if a.ledger.is_some() {
        match c.settled_job(&job.job_id).await {
            Ok(Some(s)) => {
                let expected = if proof_valid {
                    VoteOutcome::Approved
                } else {
                    VoteOutcome::Rejected
                };
                check(
                    "ledger_settlement",
                    Some(&s.result_digest) == digest.as_ref() && s.outcome == expected,
                    format!(
                        "settled {:?} at seq {} for result {}",
                        s.outcome, s.seq, s.result_digest
                    ),
                );
                // The certificate's signed votes reach its outcome by the stakes the ledger
                // checked it against.
                match &job.certificate {
                    Some(cert) => match verify_certificate(cert, &s.stakes, Quorum::TWO_THIRDS) {
                        Ok((valid, invalid, total)) => check(
                            "certificate",
                            cert.outcome == s.outcome,
                            format!(
                                "{} signed votes: {valid} valid / {invalid} invalid of {total} stake",
                                cert.votes.len()
                            ),
                        ),
                        Err(e) => check("certificate", false, e.to_string()),
                    },
                    None => check("certificate", false, "the coordinator has none".into()),
                }
            }
            Ok(None) => check(
                "ledger_settlement",
                false,
                "not settled on the ledger".into(),
            ),
            Err(e) => return Err(sdk_error(e)).context("reading the ledger"),
        }
    }
    let ok = checks.iter().all(|c| c.ok);
    if a.json {
        let list: Vec<_> = checks
            .iter()
            .map(|c| json!({"check": c.name, "ok": c.ok, "detail": c.detail}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "job_id": job.job_id,
                "valid": ok,
                "proof_valid": proof_valid,
                "checks": list,
            }))?
        );
    } else {
        for c in &checks {
            println!(
                "{} {:<18} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        println!(
            "{}: {}",
            job.job_id,
            if ok { "verified" } else { "NOT verified" }
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
