//! `hallmark devnet`: a whole network of separate processes on 127.0.0.1.
//!
//! Starts the ledger, the coordinator, N validators and M workers as child processes of this
//! binary (`hallmark node --role …`), each with its own config, SQLite store and log under the
//! data dir; publishes rounds as the network operator; submits stark jobs as a client beside
//! the rounds and waits for their votes and ledger settlement; reads every validator's
//! decision back over HTTP; prints a table per round and the jobs (or one JSON object with
//! `--json`); stops the children.
//!
//! Exit codes: 0 all checks held; 3 an honest validator disagreed; 4 an equivocating
//! validator was not caught (on reports, or on jobs); 5 a restarted validator served a
//! different archive; 6 the simulated TEE provider was not listed or leaked into scores;
//! 7 a stark job was not settled as it should have been (an honest proof not approved with a
//! certificate, a corrupt one not rejected, a corrupt worker not slashed); 8 a build-lane case
//! came out otherwise than it must (verified exact, mismatched, unverified build_failed,
//! unverified build_timeout, each with a certificate); 9 the eval round came out otherwise
//! than it must (honest validators' reports not identical, the measured best not the winner
//! or not weighted in decentralized mode, a tampered archive not refused by every honest
//! validator, an example not measured or contained as expected).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hallmark_attest::provider::SimulatedProvider;
use hallmark_consensus::commitment::EquivocationEvidence;
use hallmark_consensus::SlashReason;
use hallmark_core::{Envelope, PublicKey, Signed};
use hallmark_ledger::{Slash, YumaEpoch};
use hallmark_node::builds::VerificationView;
use hallmark_node::compute::messages::{HealthReceipt, ProviderListing};

use crate::compute::AttestationSummary;
use hallmark_node::config::{GenesisBalance, NodeConfig, WeightMode};
use hallmark_node::jobs::{JobRequest, JobStatus, JobView};
use hallmark_node::messages::{
    NewRoundRequest, OwnerPickRequest, RoundAnnouncement, RoundResult, ScoreReport,
};
use hallmark_node::replicated_ledger::{BftSection, BftValidator};
use hallmark_node::run::load_or_create_key;
use hallmark_node::NodeClient;
use hallmark_sat::InstanceParams;
use hallmark_stark::JobType;

use crate::job::{fetch_job, JobSummary};
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
    /// Real evidence (Intel quotes, NVIDIA tokens, a Soroban wasm, laid out as the project's
    /// test data) the validators' self-tests verify at start; default `../shared/testdata`
    /// when it exists. Without it the evidence-backed self-tests fail, and readiness says so.
    #[arg(long, env = "HALLMARK_TESTDATA", value_name = "DIR")]
    evidence_dir: Option<PathBuf>,
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
    /// How many validators serve two different signed reports per run (fault injection); the
    /// evidence the others find is listed under "equivocations".
    #[arg(long, default_value_t = 0)]
    equivocate: usize,
    /// Stop and restart validator-0 halfway through the rounds, and check that every score
    /// archive it had served is served again byte for byte.
    #[arg(long)]
    restart_validator: bool,
    /// Run the ledger as one single sequencer instead of BFT replicas (one per validator plus
    /// the devnet's own, on Malachite).
    #[arg(long)]
    single_sequencer: bool,
    /// SIGKILL ledger replica N (1-based among the validators' replicas: ledger-N) after the
    /// first round, let the network go on, restart it after the next round and check it
    /// catches up to the same state root.
    #[arg(long, value_name = "N")]
    kill_replica: Option<usize>,
    /// Ledger replica N (ledger-N) proposes blocks with a wrong state root and double-votes:
    /// the others must refuse its blocks, record its double votes and slash it, with no fork.
    #[arg(long, value_name = "N")]
    byzantine_replica: Option<usize>,
    /// After the rounds and jobs, keep every node up until Ctrl-C or SIGTERM: print each
    /// role's URL and write `<data-dir>/devnet.json` (endpoints and keys, `"ready": true`) once
    /// every node answers, so `--devnet DIR` on other commands finds the network.
    #[arg(long)]
    keep_running: bool,
    /// Whose pick validators' weights follow: owner, shadow or decentralized. In owner and
    /// shadow mode the devnet operator publishes an owner pick each round.
    #[arg(long, default_value = "decentralized")]
    weight_mode: WeightMode,
    /// Stark jobs a client submits beside the rounds (cycling fib 1024, hashchain 128,
    /// matmul 16); each is proven by a worker and settled by the validators' vote.
    #[arg(long, default_value_t = 3)]
    jobs: usize,
    /// How many workers hand in corrupted proofs (fault injection, the last ones): their
    /// jobs must be rejected and their stake slashed on the ledger. More job waves are
    /// submitted until each of them has had a job.
    #[arg(long, default_value_t = 0)]
    corrupt_workers: usize,
    /// Skip the build lane's cases (a verified exact rebuild, a mismatched wasm, a build that
    /// reaches for the network, a build over its time limit). They need bubblewrap and wabt.
    #[arg(long)]
    no_builds: bool,
    /// Skip the eval round (six example submissions measured first-hand by every validator
    /// beside the sat rounds).
    #[arg(long)]
    no_eval: bool,
    /// How long eval submitters have to commit and upload, ms.
    #[arg(long, default_value_t = 4000)]
    eval_window_ms: i64,
    /// The coordinator's published owner pick for the eval round names another submission
    /// than the best (decentralized weights must still follow the measurement).
    #[arg(long)]
    owner_lies: bool,
    /// The coordinator serves altered bytes for eval roster member N (0-based, roster order):
    /// every validator must refuse it with archive_hash_mismatch.
    #[arg(long, value_name = "N")]
    tamper_archive: Option<usize>,
    /// Where every node keeps its tables: a `postgres://` URL puts the whole network on
    /// PostgreSQL, each node in its own schema (`hm_<data-dir digest>_<node>`, so running
    /// again on the same --data-dir finds them). Default: `HALLMARK_DATABASE_URL`, else SQLite
    /// files in each node's data dir.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

/// The job mix the devnet submits, in order.
const JOB_MIX: [(JobType, u32); 3] = [
    (JobType::Fib, 1024),
    (JobType::Hashchain, 128),
    (JobType::Matmul, 16),
];

/// Most extra waves of jobs submitted to reach every corrupt worker.
const MAX_JOB_WAVES: usize = 12;

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
    equivocating: bool,
    agrees: bool,
    /// Its score-hash commitment on the ledger.
    commitment: Option<String>,
    weights_for: Option<PublicKey>,
    /// Eval rounds: the hash of its first-hand measurement report.
    #[serde(skip_serializing_if = "Option::is_none")]
    report_hash: Option<String>,
}

/// One round of the output.
#[derive(Debug, Serialize)]
struct RoundLine {
    /// The round lane (`sat`).
    lane: String,
    round_id: String,
    winner: Option<PublicKey>,
    consensus: BTreeMap<PublicKey, f64>,
    validators: Vec<ValidatorLine>,
    /// The ledger's transparency log after the round (every transaction, commitments and
    /// weights included): its size and signed checkpoint (C2SP note).
    log_size: u64,
    checkpoint: String,
    owner_pick: Option<PublicKey>,
    /// The ledger's Yuma epoch for the round.
    yuma: Option<YumaEpoch>,
    /// Eval rounds: members, refusals, containments, the owner's pick.
    #[serde(skip_serializing_if = "Option::is_none")]
    eval: Option<crate::devnet_eval::EvalLine>,
}

/// Equivocation evidence and who found it.
#[derive(Debug, Serialize)]
struct EquivocationLine {
    found_by: String,
    #[serde(flatten)]
    evidence: EquivocationEvidence,
}

/// What `--restart-validator` checked.
#[derive(Debug, Serialize)]
struct RestartLine {
    validator: String,
    after_round: String,
    archives_checked: usize,
    byte_identical: bool,
}

/// One process: its name, role, hotkey and peak memory.
#[derive(Debug, Serialize)]
struct ProcessLine {
    name: String,
    role: String,
    hotkey: Option<PublicKey>,
    peak_rss_kib: Option<u64>,
}

/// The simulated secure-compute provider devnet registers with the coordinator.
#[derive(Debug, Serialize)]
struct ComputeLine {
    node_id: String,
    provider: PublicKey,
    /// Listed by the coordinator on the validators' certificate.
    listed: bool,
    /// The attestation job every validator checked the evidence in, and the certificate that
    /// decided it: its vote stake and whether it passed 2/3 (the listing's log leaf below).
    certificate: AttestationSummary,
    evidence_log_index: Option<u64>,
    /// The provider's health report was receipted and kept it listed.
    health_listed: bool,
    /// `GET /v1/compute/providers` after registration.
    providers: Vec<ProviderListing>,
    /// Whether the provider's hotkey appeared in any round's scores, winner or weights
    /// (it must not: compute rows never enter scores, weights or emissions).
    in_scores_or_weights: bool,
}

/// One stark job the devnet submitted, as settled.
#[derive(Debug, Serialize)]
struct JobLine {
    #[serde(flatten)]
    job: JobSummary,
    /// The worker was one of the --corrupt-workers.
    corrupt_worker: bool,
}

/// One wasm the devnet handed to the build lane, as decided.
#[derive(Debug, Serialize)]
struct BuildLine {
    /// What the case shows: `exact`, `mismatched`, `network`, `timeout`.
    case: String,
    /// What it must come out as.
    expected: String,
    verification_id: String,
    wasm_sha256: String,
    status: String,
    #[serde(rename = "match")]
    match_kind: Option<String>,
    image_trust: String,
    recipe_source: String,
    rebuilt_sha256: Option<String>,
    certificate_votes: usize,
    /// The unverified reason code.
    reason: Option<String>,
    job_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct Output {
    rounds: Vec<RoundLine>,
    jobs: Vec<JobLine>,
    builds: Vec<BuildLine>,
    /// Every slashing the ledger applied (job settlements and vote equivocations).
    slashes: Vec<Slash>,
    compute: Option<ComputeLine>,
    processes: Vec<ProcessLine>,
    equivocations: Vec<EquivocationLine>,
    restart: Option<RestartLine>,
    /// The ledger's replicas (one: the single sequencer) at the end of the run.
    ledger: Option<LedgerLine>,
    /// Void sat rounds (no worker scored in the window), each published again with a longer
    /// window; `rounds` holds the decided ones.
    void_rounds: Vec<VoidRoundLine>,
    weight_mode: String,
    data_dir: String,
    /// Where the nodes kept their tables.
    store: StoreLine,
}

/// The ledger at the end of a run.
#[derive(Debug, Serialize)]
struct LedgerLine {
    replicas: Vec<ReplicaLine>,
    /// Consensus-engine evidence (equivocating replicas); none with one sequencer.
    evidence: Vec<serde_json::Value>,
}

/// One ledger replica's head.
#[derive(Debug, Serialize)]
struct ReplicaLine {
    name: String,
    /// The last applied transaction's sequence number.
    height: u64,
    state_root: String,
    log_root: String,
    restarted: bool,
    byzantine: bool,
    /// Whether a state read from it (the devnet coldkey's account) checked offline against
    /// its header key.
    read_proof_checked: bool,
}

/// What the rounds produced, beyond the per-round lines.
#[derive(Default)]
struct Findings {
    equivocations: Vec<EquivocationLine>,
    restart: Option<RestartLine>,
    /// Equivocating validators' hotkeys.
    equivocators: Vec<PublicKey>,
    compute: Option<ComputeLine>,
    jobs: Vec<JobLine>,
    slashes: Vec<Slash>,
    /// Corrupt workers' hotkeys.
    corrupt_workers: Vec<PublicKey>,
    builds: Vec<BuildLine>,
    /// What the eval round got wrong, if anything.
    eval_problems: Vec<String>,
    ledger: Option<LedgerLine>,
    /// The ledger replica `--kill-replica` killed, and whether it came back.
    killed_replica: Option<usize>,
    replica_restarted: bool,
    /// Sat rounds in which no worker scored (the machine too busy to solve in the window):
    /// void, published again with a longer window.
    void_rounds: Vec<VoidRoundLine>,
}

/// A void round: its id and the window it had.
#[derive(Debug, Clone, Serialize)]
struct VoidRoundLine {
    round_id: String,
    window_ms: i64,
}

/// How many void rounds in a row are published again (each with twice the window) before the
/// last one is reported as it is.
const MAX_VOID_RETRIES: usize = 3;

/// Publishes a sat round with `params` through the operator-signed `coordinator` client and
/// returns its checked announcement.
pub(crate) async fn publish_sat_round(
    coordinator: &NodeClient,
    params: &InstanceParams,
    window_ms: i64,
) -> anyhow::Result<RoundAnnouncement> {
    let env: Envelope = coordinator
        .post(
            "/v1/rounds",
            &NewRoundRequest {
                lane: "sat".into(),
                params: serde_json::to_value(params)?,
                window_ms,
            },
        )
        .await
        .context("publishing a round")?;
    Ok(Signed::<RoundAnnouncement>::from_envelope(env)
        .verify()
        .context("the coordinator's round announcement")?
        .payload)
}

/// The peak resident set (VmHWM) of `pid`, from `/proc`.
pub(crate) fn peak_rss_kib(pid: Option<u32>) -> Option<u64> {
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
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    let child = Command::new(exe)
        .args(["node", "--role", role, "--config"])
        .arg(&config_path)
        // Each node's config names its store; an inherited URL must not override it.
        .env_remove("HALLMARK_DATABASE_URL")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| format!("info,{}", crate::QUIET_ENGINE)),
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

/// The devnet's build-lane settings: one image store (on one machine, every node shares it),
/// the devnet's own image trusted, and tight sandbox limits so the over-time case ends soon.
fn build_lane_config(dir: &Path) -> toml::Value {
    let mut sandbox = toml::map::Map::new();
    sandbox.insert("cpu_secs".into(), toml::Value::Integer(4));
    sandbox.insert("wall_secs".into(), toml::Value::Integer(20));
    let mut build = toml::map::Map::new();
    build.insert(
        "images_dir".into(),
        toml::Value::String(dir.join("images").display().to_string()),
    );
    let trusted = std::fs::read_to_string(dir.join("images").join(DEVNET_IMAGE_FILE))
        .ok()
        .map(|d| vec![toml::Value::String(d.trim().to_string())])
        .unwrap_or_default();
    build.insert("trusted_images".into(), toml::Value::Array(trusted));
    build.insert("sandbox".into(), toml::Value::Table(sandbox));
    toml::Value::Table(build)
}

/// Where the devnet notes the digest of the `wat` image it imported.
const DEVNET_IMAGE_FILE: &str = "devnet-wat-image";

/// The store every devnet node uses: `--store`, else `HALLMARK_DATABASE_URL`, else SQLite.
fn store_url(args: &DevnetArgs) -> Option<String> {
    args.store
        .clone()
        .or_else(|| std::env::var("HALLMARK_DATABASE_URL").ok())
        .filter(|u| !u.is_empty())
}

/// The schema prefix for this devnet's nodes on PostgreSQL: `hm_` and 8 hex digits of the
/// data dir's digest, so two devnets on one database never share tables.
fn schema_prefix(dir: &Path) -> String {
    let digest = hallmark_core::digest::sha256(dir.as_os_str().as_encoded_bytes()).to_hex();
    format!("hm_{}", &digest[..8])
}

/// Refuses a store URL the devnet cannot use before any node starts, and says where the
/// tables go. The ledger's schema is opened (and migrated) here, so a wrong password or an
/// unreachable server is one clear error rather than every node failing in its log.
async fn check_store(url: &str, dir: &Path) -> anyhow::Result<()> {
    use hallmark_store::StoreUrl;
    let parsed = StoreUrl::parse(url).context("--store")?;
    let StoreUrl::Postgres(pg) = &parsed else {
        bail!(
            "--store {}: the devnet keeps one SQLite file per node by default; --store takes a \
             postgres:// URL",
            parsed.redacted()
        );
    };
    let probe = hallmark_store::Store::open_postgres(pg, &node_schema(dir, "ledger"))
        .await
        .with_context(|| format!("opening the store at {}", parsed.redacted()))?;
    probe.close().await;
    eprintln!(
        "store: {} (one schema per node, {}_*)",
        parsed.redacted(),
        schema_prefix(dir)
    );
    Ok(())
}

/// The store line of the JSON output: the backend, and on PostgreSQL the redacted URL and
/// each node's schema prefix.
#[derive(Debug, Serialize)]
struct StoreLine {
    backend: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_prefix: Option<String>,
}

impl StoreLine {
    fn of(args: &DevnetArgs, dir: &Path) -> Self {
        match store_url(args) {
            None => Self {
                backend: "sqlite",
                url: None,
                schema_prefix: None,
            },
            Some(url) => Self {
                backend: "postgres",
                url: hallmark_store::StoreUrl::parse(&url)
                    .ok()
                    .map(|u| u.redacted()),
                schema_prefix: Some(schema_prefix(dir)),
            },
        }
    }
}

/// The validators' self-test evidence: `--evidence-dir`, else `../shared/testdata` if it
/// exists (made absolute, since each node runs in its own directory).
fn evidence_dir(args: &DevnetArgs) -> Option<PathBuf> {
    let dir = args
        .evidence_dir
        .clone()
        .or_else(|| Some(PathBuf::from("../shared/testdata")).filter(|d| d.is_dir()))?;
    Some(std::path::absolute(&dir).unwrap_or(dir))
}

/// [`base_config`] with the devnet's store: on PostgreSQL, the node's own schema.
fn node_config(args: &DevnetArgs, dir: &Path, name: &str) -> NodeConfig {
    let mut cfg = base_config(dir, name);
    if let Some(url) = store_url(args) {
        cfg.store_schema = Some(node_schema(dir, name));
        cfg.store = Some(url);
    }
    cfg
}

/// The PostgreSQL schema of devnet node `name`.
fn node_schema(dir: &Path, name: &str) -> String {
    let mut schema = format!("{}_{}", schema_prefix(dir), name.replace('-', "_"));
    schema.truncate(63);
    schema
}

fn base_config(dir: &Path, name: &str) -> NodeConfig {
    let data_dir = dir.join(name);
    let mut cfg = NodeConfig {
        name: name.to_string(),
        listen: "127.0.0.1:0".into(),
        addr_file: Some(data_dir.join("addr")),
        data_dir,
        ..NodeConfig::default()
    };
    // Devnet's provider attests with the public test root, which only this profile trusts:
    // every validator checks its evidence under it.
    let mut tee = toml::map::Map::new();
    tee.insert("profile".into(), toml::Value::String("devnet".into()));
    cfg.lanes.insert("tee".into(), toml::Value::Table(tee));
    cfg.lanes.insert("build".into(), build_lane_config(dir));
    cfg
}

pub async fn run(args: DevnetArgs) -> anyhow::Result<ExitCode> {
    if args.validators == 0 {
        bail!("--validators must be at least 1");
    }
    for (flag, n) in [
        ("--kill-replica", args.kill_replica),
        ("--byzantine-replica", args.byzantine_replica),
    ] {
        let Some(n) = n else { continue };
        if args.single_sequencer {
            bail!("{flag} needs replicas: drop --single-sequencer");
        }
        if n == 0 || n > args.validators {
            bail!(
                "{flag} {n}: replicas are numbered 1..={} (ledger-N runs beside validator N-1; \
                 the devnet's own replica, ledger, is not one to fault)",
                args.validators
            );
        }
    }
    if args.kill_replica.is_some() && args.kill_replica == args.byzantine_replica {
        bail!("--kill-replica and --byzantine-replica name the same replica");
    }
    if (args.kill_replica.is_some() || args.byzantine_replica.is_some()) && args.validators < 3 {
        bail!("faulting a replica needs --validators 3 or more (4 replicas tolerate one fault)");
    }
    if args.byzantine + args.equivocate > args.validators {
        bail!(
            "--byzantine {} plus --equivocate {} is more than --validators {}",
            args.byzantine,
            args.equivocate,
            args.validators
        );
    }
    if args.corrupt_workers > args.workers {
        bail!(
            "--corrupt-workers {} is more than --workers {}",
            args.corrupt_workers,
            args.workers
        );
    }
    if args
        .tamper_archive
        .is_some_and(|n| n >= hallmark_eval::samples::SUBMISSIONS.len())
    {
        bail!(
            "--tamper-archive names a roster member 0..{}",
            hallmark_eval::samples::SUBMISSIONS.len() - 1
        );
    }
    if args.no_eval && (args.owner_lies || args.tamper_archive.is_some()) {
        bail!("--owner-lies and --tamper-archive act on the eval round: drop --no-eval");
    }
    if args.corrupt_workers > 0 && args.jobs == 0 {
        bail!("--corrupt-workers needs --jobs above 0: corrupt proofs only exist for jobs");
    }
    if args.equivocate > 0 && args.validators - args.equivocate < 2 {
        bail!("--equivocate needs at least two other validators to be caught by (the first fetch of a report gets the committed one)");
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
    if let Some(url) = store_url(&args) {
        check_store(&url, &dir).await?;
    }

    // A devnet.json from an earlier run must not point anyone at nodes that are gone.
    let _ = std::fs::remove_file(dir.join(crate::network::DEVNET_FILE));
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
    let result = match outcome {
        Ok((rounds, findings)) => conclude(&args, &dir, rounds, processes, findings),
        Err(e) => Err(e),
    };
    if args.keep_running && result.is_ok() {
        let kept = keep_running(&dir, &procs).await;
        if let Err(e) = &kept {
            eprintln!("error: {}", crate::error_chain(e));
        }
    }
    stop_all(&mut procs).await;
    let _ = std::fs::remove_file(dir.join(crate::network::DEVNET_FILE));
    result
}

/// Writes `devnet.json` once every node answers, prints the URLs, and waits for Ctrl-C or
/// SIGTERM.
async fn keep_running(dir: &Path, procs: &[Proc]) -> anyhow::Result<()> {
    let url_of = |role: &str| -> Vec<String> {
        procs
            .iter()
            .filter(|p| p.role == role)
            .filter_map(|p| p.url.clone())
            .collect()
    };
    let one = |role: &str| -> anyhow::Result<String> {
        url_of(role)
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no {role} is running"))
    };
    for p in procs {
        let Some(url) = &p.url else {
            bail!("{} has no address", p.name);
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while NodeClient::new(url)
            .get::<serde_json::Value>("/v1/health")
            .await
            .is_err()
        {
            if std::time::Instant::now() > deadline {
                bail!("{} at {url} does not answer", p.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let keys = dir.join("keys");
    let coordinator_key = procs
        .iter()
        .find(|p| p.role == "coordinator")
        .map(|p| hallmark_node::run::load_key(&p.key_file))
        .transpose()?
        .ok_or_else(|| anyhow::anyhow!("no coordinator is running"))?;
    let info = crate::network::DevnetInfo {
        ledger: one("ledger")?,
        coordinator: one("coordinator")?,
        validators: url_of("validator"),
        workers: url_of("worker"),
        operator_key: keys.join("operator"),
        coldkey: keys.join("devnet-coldkey"),
        coordinator_hotkey: coordinator_key.public(),
        client_key: keys.join("client"),
        dashboard: format!("{}/", one("coordinator")?),
        ready: true,
    };
    info.write(dir)?;
    eprintln!("\ndevnet is up (Ctrl-C or SIGTERM stops it):");
    for p in procs {
        eprintln!("  {:<14} {}", p.name, p.url.as_deref().unwrap_or("-"));
    }
    eprintln!(
        "  endpoints and keys: {}  (other commands: --devnet {})",
        dir.join(crate::network::DEVNET_FILE).display(),
        dir.display()
    );
    eprintln!("  dashboard:          {}", info.dashboard);
    crate::wait_for_stop_signal().await
}

/// Checks what the run found, prints it, and gives the exit code.
fn conclude(
    args: &DevnetArgs,
    dir: &Path,
    rounds: Vec<RoundLine>,
    processes: Vec<ProcessLine>,
    findings: Findings,
) -> anyhow::Result<ExitCode> {
    let missed: Vec<String> = findings
        .equivocators
        .iter()
        .filter(|e| {
            !findings
                .equivocations
                .iter()
                .any(|f| &f.evidence.validator == *e)
        })
        .map(|e| e.to_ss58())
        .collect();
    // With jobs, an equivocating validator must also be caught double-voting on them.
    let missed_on_jobs: Vec<String> = if args.jobs == 0 {
        Vec::new()
    } else {
        findings
            .equivocators
            .iter()
            .filter(|e| !findings.jobs.iter().any(|j| j.job.equivocators.contains(e)))
            .map(|e| e.to_ss58())
            .collect()
    };
    let job_problems = job_problems(&findings);
    let build_problems = build_problems(&findings.builds);
    let eval_problems = findings.eval_problems.clone();
    let restart_ok = findings.restart.as_ref().is_none_or(|r| r.byte_identical);
    let compute_ok = findings
        .compute
        .as_ref()
        .is_some_and(|c| c.listed && c.health_listed && !c.in_scores_or_weights);
    let ok = print_output(args, dir, rounds, processes, findings)?;
    if !missed.is_empty() {
        eprintln!(
            "error: equivocating validators not caught: {}",
            missed.join(", ")
        );
        return Ok(ExitCode::from(4));
    }
    if !missed_on_jobs.is_empty() {
        eprintln!(
            "error: equivocating validators not caught on jobs: {}",
            missed_on_jobs.join(", ")
        );
        return Ok(ExitCode::from(4));
    }
    if !job_problems.is_empty() {
        for p in &job_problems {
            eprintln!("error: {p}");
        }
        return Ok(ExitCode::from(7));
    }
    if !build_problems.is_empty() {
        for p in &build_problems {
            eprintln!("error: {p}");
        }
        return Ok(ExitCode::from(8));
    }
    if !eval_problems.is_empty() {
        for p in &eval_problems {
            eprintln!("error: eval: {p}");
        }
        return Ok(ExitCode::from(9));
    }
    if !restart_ok {
        eprintln!("error: a restarted validator served an archive that differs from before");
        return Ok(ExitCode::from(5));
    }
    if !compute_ok {
        eprintln!(
            "error: the simulated TEE provider was not listed, or appeared in scores or weights"
        );
        return Ok(ExitCode::from(6));
    }
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
) -> anyhow::Result<(Vec<RoundLine>, Findings)> {
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
    let build_image = if args.no_builds {
        None
    } else {
        progress.set_message("importing the build lane's wat image");
        Some(import_build_image(dir)?)
    };
    progress.set_message("starting the ledger");

    // Ledger: one devnet coldkey holds the genesis balance that every node stakes from, so the
    // genesis (and the data dir) stays the same whatever the number of nodes. By default the
    // ledger is replicated: `ledger` (the devnet's own key) and `ledger-N` run by validator
    // N-1 with its hotkey, on Malachite BFT; `--single-sequencer` runs `ledger` alone.
    let replicas = if args.single_sequencer {
        1
    } else {
        args.validators + 1
    };
    let replica_keys: Vec<PathBuf> = (0..replicas)
        .map(|i| {
            if i == 0 {
                base_config(dir, "ledger").key_path()
            } else {
                base_config(dir, &format!("validator-{}", i - 1)).key_path()
            }
        })
        .collect();
    let mut validators_bft = Vec::new();
    for path in &replica_keys {
        validators_bft.push(BftValidator {
            hotkey: load_or_create_key(path)?.public(),
            power: 1,
        });
    }
    // The devnet's own validators are the founding set: their stake counts from registration
    // on. Any other validator (say, one bought with faucet drips) waits for the next stake
    // epoch boundary, an hour by default.
    let genesis_validators = (0..args.validators)
        .map(|i| {
            Ok(
                load_or_create_key(&base_config(dir, &format!("validator-{i}")).key_path())?
                    .public(),
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut attempt = 0;
    let (ledger_cfgs, ledger_urls) = loop {
        attempt += 1;
        let http_ports: Vec<u16> = (0..replicas)
            .map(|_| free_port())
            .collect::<Result<_, _>>()?;
        let p2p_ports: Vec<u16> = (0..replicas)
            .map(|_| free_port())
            .collect::<Result<_, _>>()?;
        let mut ledger_cfgs = Vec::new();
        for i in 0..replicas {
            let name = replica_name(i);
            let mut cfg = node_config(args, dir, &name);
            cfg.key_file = Some(replica_keys[i].clone());
            cfg.listen = format!("127.0.0.1:{}", http_ports[i]);
            cfg.ledger.genesis = vec![GenesisBalance {
                account: coldkey.public(),
                balance: 1_000_000_000,
            }];
            // The devnet faucet pays from the same coldkey (`hallmark faucet --ledger <url>`);
            // only the first replica runs it, so drips never race on the faucet's nonce.
            if i == 0 {
                cfg.ledger.faucet.key_file = Some(coldkey_path.clone());
            }
            // The operator is the build council (1 of 1): it names who may write build-info.
            cfg.ledger.build_council = vec![operator.public()];
            cfg.ledger.build_council_threshold = 1;
            cfg.ledger.genesis_validators = genesis_validators.clone();
            if replicas > 1 {
                let others = |ports: &[u16]| -> Vec<u16> {
                    ports
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, p)| *p)
                        .collect()
                };
                cfg.ledger.bft = BftSection {
                    enabled: true,
                    p2p_listen: Some(SocketAddr::from(([127, 0, 0, 1], p2p_ports[i]))),
                    p2p_peers: others(&p2p_ports)
                        .into_iter()
                        .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
                        .collect(),
                    http_peers: others(&http_ports)
                        .into_iter()
                        .map(|p| format!("http://127.0.0.1:{p}"))
                        .collect(),
                    validators: validators_bft.clone(),
                    // The devnet's validator set stays the genesis one: its own replica holds no
                    // stake, and a set of the three staked validators could not lose one.
                    epoch_blocks: Some(u64::MAX / 2),
                    idle_block_ms: Some(500),
                    byzantine: args.byzantine_replica == Some(i),
                };
            }
            ledger_cfgs.push(cfg);
        }
        let mut started = Vec::new();
        for (i, cfg) in ledger_cfgs.iter().enumerate() {
            started.push(spawn(exe, dir, &replica_name(i), "ledger", cfg, false).await?);
        }
        let mut ledger_urls = Vec::new();
        let mut failed = None;
        for p in started.iter_mut() {
            match wait_ready(p, Duration::from_secs(60)).await {
                Ok(url) => ledger_urls.push(url),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        match failed {
            None => {
                procs.extend(started);
                break (ledger_cfgs, ledger_urls);
            }
            // The ports were free when chosen; another process (say, a second devnet) took
            // one before the replica bound it. Stop these and choose again.
            Some(e) if attempt < 3 && format!("{e:#}").contains("Address already in use") => {
                drop(started);
                continue;
            }
            Some(e) => {
                procs.extend(started);
                return Err(e);
            }
        }
    };
    // Every client lists every replica and fails over; the devnet's own reads go to the
    // first (which --kill-replica never kills).
    let ledger_url = ledger_urls.join(",");
    let ledger0_url = ledger_urls[0].clone();

    progress.set_message("starting the coordinator");
    let mut cfg = node_config(args, dir, "coordinator");
    let coordinator_key = load_or_create_key(&cfg.key_path())?;
    cfg.coordinator.operators = vec![operator.public()];
    cfg.network.ledger_url = ledger_url.clone();
    cfg.coordinator.jobs.settle_poll_ms = 200;
    cfg.coordinator.jobs.lease_ms = 60_000;
    cfg.coordinator.builds.poll_ms = 200;
    cfg.faults.tamper_archive = args.tamper_archive;
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
    let mut validator_cfgs = Vec::new();
    let mut worker_cfgs = Vec::new();
    for i in 0..args.validators {
        let name = format!("validator-{i}");
        let mut cfg = node_config(args, dir, &name);
        network(&mut cfg);
        // The last --byzantine validators misbehave; the --equivocate ones just before them
        // serve two reports.
        let byz = i >= args.validators - args.byzantine;
        cfg.faults.invert_scores = byz;
        cfg.faults.equivocate = !byz && i >= args.validators - args.byzantine - args.equivocate;
        cfg.validator.dethrone_margin = MARGIN;
        cfg.validator.weight_mode = args.weight_mode;
        cfg.validator.evidence_dir = evidence_dir(args);
        procs.push(spawn(exe, dir, &name, "validator", &cfg, byz).await?);
        validator_cfgs.push(cfg);
    }
    for i in 0..args.workers {
        let name = format!("worker-{i}");
        let mut cfg = node_config(args, dir, &name);
        network(&mut cfg);
        cfg.network.stake = 1_000;
        cfg.faults.submit_delay_ms = i as u64 * args.delay_step_ms;
        cfg.faults.corrupt_artifacts = i >= args.workers - args.corrupt_workers;
        procs.push(spawn(exe, dir, &name, "worker", &cfg, false).await?);
        worker_cfgs.push(cfg);
    }
    for p in procs[first..].iter_mut() {
        wait_ready(p, Duration::from_secs(60)).await?;
    }
    let mut validators: Vec<(String, bool, NodeClient)> = procs
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
    let mut findings = Findings {
        equivocators: hotkeys_where(procs, "validator", &validator_cfgs, |c| c.faults.equivocate)?,
        corrupt_workers: hotkeys_where(procs, "worker", &worker_cfgs, |c| {
            c.faults.corrupt_artifacts
        })?,
        ..Findings::default()
    };
    progress.set_message("registering a simulated TEE provider");
    findings.compute = Some(register_tee_provider(&keys, &coord_url).await?);
    // Stark jobs go in now and are proven and voted on while the rounds run. The coordinator
    // takes jobs only from keys with stake bonded ([coordinator.clients] min_stake): the
    // devnet coldkey bonds it to the client key, as `hallmark stake` would.
    let client = load_or_create_key(&keys.join("client"))?;
    progress.set_message("bonding the job client's stake");
    bond_client_stake(&ledger_url, &coldkey, &client.public()).await?;
    let jobs_client = NodeClient::new(&coord_url);
    let mut job_ids = Vec::new();
    for i in 0..args.jobs {
        let (job_type, size) = JOB_MIX[i % JOB_MIX.len()];
        job_ids.push(submit_job(&jobs_client, &client, job_type, size).await?);
    }
    let mut build_ids = Vec::new();
    if let Some(reference) = &build_image {
        progress.set_message("handing wasm to the build lane");
        build_ids = submit_builds(&jobs_client, reference).await?;
    }
    let ledger_client = NodeClient::new(&ledger0_url);
    let restart_after = args.restart_validator.then(|| args.rounds.div_ceil(2));

    let coordinator = NodeClient::new(&coord_url).signed_by(operator.clone());
    let eval = if args.no_eval {
        None
    } else {
        progress.set_message("handing in eval submissions");
        Some(
            crate::devnet_eval::start(
                &keys,
                &ledger_url,
                &coord_url,
                &coordinator,
                &coldkey,
                args.eval_window_ms,
                args.weight_mode,
                args.owner_lies,
                args.tamper_archive,
            )
            .await?,
        )
    };
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
    // The window adapts: a void round (nobody scored, the machine too busy to solve in time)
    // is published again with twice the window, and later rounds keep the longer one.
    let mut window_ms = args.window_ms;
    let mut voids_in_a_row = 0;
    while lines.len() < args.rounds {
        let ann = publish_sat_round(&coordinator, &params, window_ms).await?;
        bar.set_message(format!(
            "{}: workers solving, validators verifying",
            ann.round_id
        ));
        let patience = Duration::from_millis(window_ms as u64) + Duration::from_secs(60);
        let owner_pick = if args.weight_mode == WeightMode::Decentralized {
            None
        } else {
            let pick = publish_owner_pick(&coordinator, &validators, &ann, patience).await?;
            Some(pick)
        };
        let results = collect_results(&validators, &ann, patience, &bar).await?;
        let void = validators
            .iter()
            .zip(&results)
            .any(|((_, byz, _), r)| !*byz && r.void);
        if void && voids_in_a_row < MAX_VOID_RETRIES {
            voids_in_a_row += 1;
            findings.void_rounds.push(VoidRoundLine {
                round_id: ann.round_id.to_string(),
                window_ms,
            });
            window_ms = window_ms.saturating_mul(2);
            bar.set_message(format!(
                "{} was void (no worker scored): again with a {window_ms} ms window",
                ann.round_id
            ));
            continue;
        }
        voids_in_a_row = 0;
        let mut line = round_line(&ann, &validators, &results, &findings.equivocators)?;
        line.owner_pick = owner_pick.flatten();
        close_on_ledger(&ledger_client, &ann, &mut line).await?;
        lines.push(line);
        bar.inc(1);
        if let Some(k) = args.kill_replica {
            if lines.len() == 1 {
                bar.set_message(format!("killing ledger replica {k} (SIGKILL)"));
                kill_replica(procs, &replica_name(k)).await?;
                findings.killed_replica = Some(k);
            } else if lines.len() == 2 && !findings.replica_restarted {
                bar.set_message(format!("restarting ledger replica {k}"));
                restart_replica(exe, dir, procs, &ledger_cfgs[k], &replica_name(k)).await?;
                findings.replica_restarted = true;
            }
        }
        if restart_after == Some(lines.len()) && lines.len() < args.rounds {
            bar.set_message("restarting validator-0");
            findings.restart = Some(
                restart_validator(exe, dir, procs, &validator_cfgs[0], &mut validators, &lines)
                    .await?,
            );
        }
    }
    bar.finish_and_clear();
    if let (Some(k), false) = (findings.killed_replica, findings.replica_restarted) {
        restart_replica(exe, dir, procs, &ledger_cfgs[k], &replica_name(k)).await?;
        findings.replica_restarted = true;
    }
    if let Some(setup) = &eval {
        let patience = Duration::from_millis(args.eval_window_ms as u64) + Duration::from_secs(90);
        let results = collect_results(&validators, &setup.ann, patience, &bar).await?;
        let mut line = round_line(&setup.ann, &validators, &results, &findings.equivocators)?;
        let (hashes, eval_line) = crate::devnet_eval::read_back(setup, &validators).await?;
        // Validators answer in `validators` order; results are in the same order.
        for (v, hash) in line.validators.iter_mut().zip(hashes) {
            v.report_hash = hash;
        }
        let name_of = |k: &PublicKey| {
            setup
                .submitters
                .iter()
                .find(|(_, h)| *h == k)
                .map(|(n, _)| n.clone())
        };
        let honest_weights: Vec<Option<String>> = line
            .validators
            .iter()
            .filter(|v| !v.byzantine)
            .map(|v| v.weights_for.as_ref().and_then(name_of))
            .collect();
        findings.eval_problems = crate::devnet_eval::problems(
            &eval_line,
            line.winner.as_ref().and_then(name_of).as_deref(),
            &honest_weights,
            args.weight_mode,
            args.validators - args.byzantine,
        );
        line.owner_pick = setup.owner_pick;
        line.eval = Some(eval_line);
        close_on_ledger(&ledger_client, &setup.ann, &mut line).await?;
        lines.push(line);
    }
    if !job_ids.is_empty() {
        let mut views = settle_jobs(&jobs_client, &job_ids, args.json).await?;
        // Keep submitting waves (one job per worker) until every corrupt worker has had one.
        let mut waves = 0;
        while waves < MAX_JOB_WAVES
            && findings
                .corrupt_workers
                .iter()
                .any(|w| !views.iter().any(|v| v.worker.as_ref() == Some(w)))
        {
            waves += 1;
            let mut wave = Vec::new();
            for _ in 0..args.workers {
                wave.push(submit_job(&jobs_client, &client, JobType::Fib, 64).await?);
            }
            views.extend(settle_jobs(&jobs_client, &wave, args.json).await?);
            job_ids.extend(wave);
        }
        // The ledger applies slashings from the settlements the coordinator sends it; wait
        // until every settled job and equivocation has been taken there.
        let start = Instant::now();
        loop {
            let pending: Vec<serde_json::Value> = jobs_client
                .get("/v1/jobs/equivocations")
                .await
                .context("reading job equivocations")?;
            views = fetch_jobs(&jobs_client, &job_ids).await?;
            // Every validator's vote is on record (a slow or restarted one votes late).
            let all_settled = views.iter().all(|v| {
                let voters: std::collections::BTreeSet<PublicKey> = v
                    .votes
                    .iter()
                    .filter_map(|vote| vote.verify().ok().map(|x| x.signer))
                    .collect();
                v.settle_tx.is_some() && voters.len() >= args.validators
            });
            let slashes: Vec<Slash> = ledger_client
                .get("/v1/ledger/slashes")
                .await
                .context("reading the ledger's slashes")?;
            let equivocation_slashes = slashes
                .iter()
                .filter(|s| s.reason == SlashReason::Equivocation)
                .count();
            if (all_settled && equivocation_slashes >= pending.len())
                || start.elapsed() > Duration::from_secs(60)
            {
                findings.slashes = slashes;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        findings.jobs = views
            .iter()
            .map(|v| job_line(v, &findings.corrupt_workers))
            .collect();
    }
    if !build_ids.is_empty() {
        findings.builds = decide_builds(&jobs_client, &build_ids, args.json).await?;
    }
    if let Some(c) = findings.compute.as_mut() {
        c.in_scores_or_weights = lines.iter().any(|r| {
            r.consensus.contains_key(&c.provider)
                || r.winner == Some(c.provider)
                || r.validators
                    .iter()
                    .any(|v| v.weights_for == Some(c.provider))
        });
    }
    findings.ledger = Some(if ledger_urls.len() > 1 {
        replicas_line(&ledger_urls, &coldkey.public(), args, &findings).await?
    } else {
        ledger_line(&ledger_client, &coldkey.public()).await?
    });
    // Evidence: what every honest validator and the ledger found.
    let mut seen = std::collections::BTreeSet::new();
    let mut sources: Vec<(String, NodeClient, &str)> = validators
        .iter()
        .map(|(name, _, c)| (name.clone(), c.clone(), "/v1/consensus/equivocations"))
        .collect();
    sources.push((
        "ledger".into(),
        ledger_client.clone(),
        "/v1/ledger/equivocations",
    ));
    for (name, client, path) in sources {
        let found: Vec<EquivocationEvidence> = client
            .get(path)
            .await
            .with_context(|| format!("reading equivocation evidence from {name}"))?;
        for ev in found {
            if ev.verify_signatures().is_err() {
                continue;
            }
            if seen.insert((
                ev.validator,
                ev.run_id.clone(),
                ev.kind.clone(),
                name.clone(),
            )) {
                findings.equivocations.push(EquivocationLine {
                    found_by: name.clone(),
                    evidence: ev,
                });
            }
        }
    }
    Ok((lines, findings))
}

/// A ledger replica's process name: `ledger` for the devnet's own, `ledger-N` for the one
/// validator N-1 runs.
fn replica_name(i: usize) -> String {
    if i == 0 {
        "ledger".into()
    } else {
        format!("ledger-{i}")
    }
}

/// A free TCP port on 127.0.0.1 (the replicas must know each other's before they start).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// SIGKILLs a ledger replica's process (no chance to flush anything it has not synced).
async fn kill_replica(procs: &mut [Proc], name: &str) -> anyhow::Result<()> {
    let p = procs
        .iter_mut()
        .find(|p| p.name == name)
        .with_context(|| format!("no process {name}"))?;
    let pid = p
        .child
        .id()
        .with_context(|| format!("{name} has already exited"))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .with_context(|| format!("killing {name}"))?;
    let _ = p.child.wait().await;
    Ok(())
}

/// Starts a killed replica again from its data dir; it re-executes its stored blocks and
/// catches up by sync.
async fn restart_replica(
    exe: &Path,
    dir: &Path,
    procs: &mut Vec<Proc>,
    cfg: &NodeConfig,
    name: &str,
) -> anyhow::Result<()> {
    procs.retain(|p| p.name != name);
    let mut p = spawn(exe, dir, name, "ledger", cfg, false).await?;
    let ready = wait_ready(&mut p, Duration::from_secs(60)).await;
    procs.push(p);
    ready.map(|_| ())
}

/// Every replica's view at the end: waits until every honest replica has applied the same
/// state (and log) root, reads one state value from each with its proof, and gathers the
/// double votes the engines saw.
async fn replicas_line(
    urls: &[String],
    account: &PublicKey,
    args: &DevnetArgs,
    findings: &Findings,
) -> anyhow::Result<LedgerLine> {
    use hallmark_node::replicated_ledger::ReplicaInfoView;
    let clients: Vec<NodeClient> = urls.iter().map(|u| NodeClient::new(u)).collect();
    let honest = |i: usize| args.byzantine_replica != Some(i);
    let deadline = Instant::now() + Duration::from_secs(90);
    let infos = loop {
        let mut infos = Vec::new();
        for (i, c) in clients.iter().enumerate() {
            let info: ReplicaInfoView = c
                .get("/v1/ledger/replica")
                .await
                .with_context(|| format!("reading {}'s replica status", replica_name(i)))?;
            infos.push(info);
        }
        let roots: std::collections::BTreeSet<(String, String)> = infos
            .iter()
            .enumerate()
            .filter(|(i, _)| honest(*i))
            .map(|(_, s)| (s.state_root.clone(), s.log_root.clone()))
            .collect();
        let caught_up = infos
            .iter()
            .enumerate()
            .filter(|(i, _)| honest(*i))
            .all(|(_, s)| s.applied_height == s.height);
        if roots.len() == 1 && caught_up {
            break infos;
        }
        if Instant::now() > deadline {
            bail!("the honest ledger replicas did not converge on one state root: {infos:#?}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let mut replicas = Vec::new();
    let mut evidence = Vec::new();
    for (i, (c, info)) in clients.iter().zip(infos).enumerate() {
        let read_proof_checked = match (
            c.get::<hallmark_node::ledger_service::LedgerInfo>("/v1/ledger/info")
                .await,
            c.get::<hallmark_ledger::LedgerRead>(&format!(
                "/v1/ledger/state?key=account/{}",
                account.to_ss58()
            ))
            .await,
        ) {
            (Ok(li), Ok(read)) => {
                let trusted: Vec<PublicKey> = li.header_key.into_iter().collect();
                hallmark_ledger::verify_read(&read, &trusted, Some(&li.chain_id)).accepted
            }
            _ => false,
        };
        if honest(i) {
            // A few per replica: a byzantine replica double-votes at every height.
            for e in info.evidence.iter().take(5) {
                evidence.push(serde_json::json!({"found_by": replica_name(i), "evidence": e}));
            }
        }
        replicas.push(ReplicaLine {
            name: replica_name(i),
            height: info.height,
            state_root: info.state_root,
            log_root: info.log_root,
            restarted: findings.replica_restarted && findings.killed_replica == Some(i),
            byzantine: !honest(i),
            read_proof_checked,
        });
    }
    Ok(LedgerLine { replicas, evidence })
}

/// The ledger's head and log root, and one state read checked offline against the key the
/// ledger says signs its headers.
async fn ledger_line(ledger: &NodeClient, account: &PublicKey) -> anyhow::Result<LedgerLine> {
    let head: hallmark_ledger::LedgerHead = ledger
        .get("/v1/ledger/head")
        .await
        .context("reading the ledger's head")?;
    let info: hallmark_node::ledger_service::LedgerInfo = ledger
        .get("/v1/ledger/info")
        .await
        .context("reading the ledger's info")?;
    let read: hallmark_ledger::LedgerRead = ledger
        .get(&format!(
            "/v1/ledger/state?key=account/{}",
            account.to_ss58()
        ))
        .await
        .context("reading a state value with its proof")?;
    let trusted: Vec<PublicKey> = info.header_key.into_iter().collect();
    let read_proof_checked =
        hallmark_ledger::verify_read(&read, &trusted, Some(&info.chain_id)).accepted;
    Ok(LedgerLine {
        replicas: vec![ReplicaLine {
            name: "ledger".into(),
            height: head.header.seq,
            state_root: head.header.state_root,
            log_root: head.log_root,
            restarted: false,
            byzantine: false,
            read_proof_checked,
        }],
        evidence: Vec::new(),
    })
}

/// Every validator decided the round, so its commitments and weights are on the ledger: close
/// the lane's epoch (its Yuma result) and take the ledger log's checkpoint into the line.
async fn close_on_ledger(
    ledger: &NodeClient,
    ann: &RoundAnnouncement,
    line: &mut RoundLine,
) -> anyhow::Result<()> {
    line.yuma = ledger
        .get::<YumaEpoch>(&format!(
            "/v1/ledger/epochs/{}/yuma?lane={}",
            ann.number, ann.lane
        ))
        .await
        .ok();
    let note = String::from_utf8(ledger.get_bytes("/v1/log/checkpoint").await?.to_vec())
        .context("the ledger's checkpoint is not text")?;
    line.log_size = hallmark_log::SignedCheckpoint { note: note.clone() }
        .checkpoint_unverified()
        .map(|c| c.size)
        .unwrap_or(0);
    line.checkpoint = note;
    Ok(())
}

/// The hotkeys of the `role` processes (started in `cfgs` order) whose config `pick` selects.
fn hotkeys_where(
    procs: &[Proc],
    role: &str,
    cfgs: &[NodeConfig],
    pick: impl Fn(&NodeConfig) -> bool,
) -> anyhow::Result<Vec<PublicKey>> {
    let mut out = Vec::new();
    for (cfg, p) in cfgs.iter().zip(procs.iter().filter(|p| p.role == role)) {
        if pick(cfg) {
            out.push(hallmark_node::run::load_key(&p.key_file)?.public());
        }
    }
    Ok(out)
}

/// Bonds the coordinator's minimum client stake from `coldkey` to `client` (pending stake in
/// the `cpu` tier), unless it is bonded already (a rerun in the same data dir).
async fn bond_client_stake(
    ledger_url: &str,
    coldkey: &hallmark_core::Keypair,
    client: &PublicKey,
) -> anyhow::Result<()> {
    use hallmark_ledger::Ledger;
    let ledger = hallmark_node::http_ledger::HttpLedger::new(ledger_url);
    let need = hallmark_node::config::ClientsSection::default().min_stake;
    let have = ledger
        .stake(client)
        .await?
        .map_or(0, |i| i.staked.saturating_add(i.pending));
    if have >= need {
        return Ok(());
    }
    let chain = ledger.chain_id().await?;
    hallmark_node::registration::submit_tx(
        &ledger,
        &chain,
        coldkey,
        hallmark_ledger::TxBody::Stake {
            hotkey: *client,
            amount: need - have,
            tier: "cpu".into(),
        },
    )
    .await
    .context("bonding the job client's stake")?;
    Ok(())
}

/// Signs and submits one stark job as the devnet's client; returns its id.
async fn submit_job(
    coordinator: &NodeClient,
    client: &hallmark_core::Keypair,
    job_type: JobType,
    size: u32,
) -> anyhow::Result<String> {
    let spec = hallmark_stark::JobSpec::new(job_type, size, rand::random())?;
    let request = JobRequest {
        lane: "stark".into(),
        spec: serde_json::to_value(spec)?,
        nonce: hex::encode(rand::random::<[u8; 8]>()),
        created_ms: hallmark_core::time::now_unix_ms(),
    };
    let signed = Signed::sign(&request, client)?;
    let job: JobView = coordinator
        .post("/v1/jobs", signed.envelope())
        .await
        .context("submitting a stark job")?;
    Ok(job.job_id)
}

/// Waits until every job in `ids` is settled by vote, showing progress.
async fn settle_jobs(
    coordinator: &NodeClient,
    ids: &[String],
    hidden: bool,
) -> anyhow::Result<Vec<JobView>> {
    let bar = if hidden {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(ids.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} stark jobs {pos}/{len} settled {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let start = Instant::now();
    loop {
        let views = fetch_jobs(coordinator, ids).await?;
        let settled = views.iter().filter(|v| v.status.is_settled()).count();
        bar.set_position(settled as u64);
        if settled == views.len() {
            bar.finish_and_clear();
            return Ok(views);
        }
        if start.elapsed() > Duration::from_secs(180) {
            bar.finish_and_clear();
            let stuck: Vec<String> = views
                .iter()
                .filter(|v| !v.status.is_settled())
                .map(|v| format!("{} ({})", v.job_id, v.status.as_str()))
                .collect();
            bail!("stark jobs not settled after 180 s: {}", stuck.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The current record of each job.
async fn fetch_jobs(coordinator: &NodeClient, ids: &[String]) -> anyhow::Result<Vec<JobView>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(fetch_job(coordinator, id).await?);
    }
    Ok(out)
}

fn job_line(v: &JobView, corrupt: &[PublicKey]) -> JobLine {
    JobLine {
        job: JobSummary::from(v),
        corrupt_worker: v.worker.is_some_and(|w| corrupt.contains(&w)),
    }
}

/// What is wrong with the jobs: an honest proof not approved with a certificate, a corrupt
/// one not rejected, a corrupt worker never reached or not slashed, a settlement the ledger
/// refused.
fn job_problems(f: &Findings) -> Vec<String> {
    let mut out = Vec::new();
    for j in &f.jobs {
        let expected = if j.corrupt_worker {
            JobStatus::Rejected
        } else {
            JobStatus::Approved
        };
        if j.job.status != expected {
            out.push(format!(
                "job {} by {} worker was {}, expected {}",
                j.job.id,
                if j.corrupt_worker {
                    "a corrupt"
                } else {
                    "an honest"
                },
                j.job.status.as_str(),
                expected.as_str()
            ));
        }
        if j.job.certificate_votes == 0 {
            out.push(format!("job {} has no vote certificate", j.job.id));
        }
        match j.job.settle_tx.as_deref() {
            None => out.push(format!("job {} was not settled on the ledger", j.job.id)),
            Some(t) if t.starts_with("refused") => out.push(format!(
                "the ledger refused job {}'s settlement: {t}",
                j.job.id
            )),
            Some(_) => {}
        }
    }
    for w in &f.corrupt_workers {
        if !f.jobs.iter().any(|j| j.job.worker.as_ref() == Some(w)) {
            out.push(format!("corrupt worker {w} never got a job"));
        } else if !f
            .slashes
            .iter()
            .any(|s| &s.hotkey == w && s.reason == SlashReason::RejectedResult)
        {
            out.push(format!("corrupt worker {w} was not slashed"));
        }
    }
    out
}

/// Imports the build lane's `wat` image (this machine's wabt) into the devnet's image store;
/// gives back its SEP-58 reference.
fn import_build_image(dir: &Path) -> anyhow::Result<String> {
    for (tool, package) in [("bwrap", "bubblewrap"), ("wat2wasm", "wabt")] {
        if hallmark_build::image::which(tool).is_none() {
            bail!("the build lane's devnet cases need {tool} (Debian: apt install {package}); --no-builds skips them");
        }
    }
    let images = dir.join("images");
    let image = hallmark_build::host_images::wat_image(&hallmark_build::ImageStore::new(&images))
        .context("importing the wat build image")?;
    std::fs::write(images.join(DEVNET_IMAGE_FILE), &image.digest)
        .context("noting the build image's digest")?;
    Ok(hallmark_build::host_images::local_reference("wat", &image))
}

/// Hands the four sample wasm (with their sources) to the coordinator's verification API;
/// gives back `(case, verification id)`.
async fn submit_builds(
    coordinator: &NodeClient,
    reference: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut out = Vec::new();
    for s in hallmark_build::samples::devnet_samples(reference).context("making the sample wasm")? {
        let body = serde_json::json!({
            "wasm_base64": b64(&s.wasm),
            "source_base64": b64(&s.source),
        });
        let v: VerificationView = coordinator
            .post("/v1/verify", &body)
            .await
            .with_context(|| format!("handing the {} sample to the build lane", s.case))?;
        out.push((s.case.to_string(), v.verification_id));
    }
    Ok(out)
}

/// What each build case must come out as: `(status, match or reason)`.
fn expected_build(case: &str) -> (&'static str, &'static str) {
    match case {
        "exact" => ("verified", "exact"),
        "mismatched" => ("mismatched", "-"),
        "network" => ("unverified", "build_failed"),
        _ => ("unverified", "build_timeout"),
    }
}

/// Waits until every verification is decided, showing progress; gives the lines.
async fn decide_builds(
    coordinator: &NodeClient,
    ids: &[(String, String)],
    hidden: bool,
) -> anyhow::Result<Vec<BuildLine>> {
    let bar = if hidden {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(ids.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} builds {pos}/{len} decided {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let start = Instant::now();
    loop {
        let mut views = Vec::new();
        for (case, id) in ids {
            let v: VerificationView = coordinator
                .get(&format!("/v1/verify/{id}"))
                .await
                .with_context(|| format!("reading verification {id}"))?;
            views.push((case.clone(), v));
        }
        let open: Vec<String> = views
            .iter()
            .filter(|(_, v)| matches!(v.status.as_str(), "queued" | "building"))
            .map(|(c, v)| format!("{c} {}", v.status))
            .collect();
        bar.set_position((views.len() - open.len()) as u64);
        bar.set_message(open.join(", "));
        if open.is_empty() || start.elapsed() > Duration::from_secs(240) {
            bar.finish_and_clear();
            return Ok(views
                .into_iter()
                .map(|(case, v)| {
                    let (status, detail) = expected_build(&case);
                    BuildLine {
                        expected: format!("{status} ({detail})"),
                        case,
                        verification_id: v.verification_id,
                        wasm_sha256: v.wasm_sha256,
                        status: v.status,
                        match_kind: v.match_kind,
                        image_trust: v.image_trust,
                        recipe_source: v.recipe_source,
                        rebuilt_sha256: v.rebuilt_sha256,
                        certificate_votes: v.certificate_votes,
                        reason: v.error.map(|e| e.code),
                        job_id: v.job_id,
                    }
                })
                .collect());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Each build case that did not come out as it must, or without a certificate.
fn build_problems(builds: &[BuildLine]) -> Vec<String> {
    let mut out = Vec::new();
    for b in builds {
        let (status, detail) = expected_build(&b.case);
        let got_detail = b
            .match_kind
            .as_deref()
            .or(b.reason.as_deref())
            .unwrap_or("-");
        if b.status != status || got_detail != detail {
            out.push(format!(
                "build case {} ({}) came out {} ({got_detail}), expected {status} ({detail})",
                b.case, b.verification_id, b.status
            ));
        }
        if b.certificate_votes == 0 {
            out.push(format!(
                "build case {} ({}) has no vote certificate",
                b.case, b.verification_id
            ));
        }
    }
    out
}

/// Registers one simulated TEE provider (evidence from the public devnet test root) with the
/// coordinator, reports its health, and reads the listing back.
async fn register_tee_provider(keys: &Path, coord_url: &str) -> anyhow::Result<ComputeLine> {
    let key = load_or_create_key(&keys.join("tee-provider-0"))?;
    let provider = SimulatedProvider::new(key, "tee-provider-0", 1);
    let coordinator = NodeClient::new(coord_url);
    let attestation = provider
        .register(&coordinator, Duration::from_secs(120))
        .await
        .context("registering the simulated TEE provider")?;
    let certificate = AttestationSummary::from(&attestation);
    let health = provider
        .report_health(&coordinator, true)
        .await
        .context("reporting the provider's health")?;
    let health_listed = Signed::<HealthReceipt>::from_envelope(health)
        .verify()
        .context("the coordinator's health receipt")?
        .payload
        .listed;
    let providers: Vec<ProviderListing> = coordinator.get("/v1/compute/providers").await?;
    let mine = providers
        .iter()
        .find(|p| p.node_id == provider.spec.node_id);
    Ok(ComputeLine {
        node_id: provider.spec.node_id.clone(),
        provider: provider.key.public(),
        listed: mine.is_some_and(|p| p.listed),
        evidence_log_index: mine.and_then(|p| p.evidence_log_index),
        certificate,
        health_listed,
        providers,
        in_scores_or_weights: false,
    })
}

/// The devnet operator's owner pick: the highest-scoring worker in the first honest
/// validator's signed report (its scores are public once the round closes).
async fn publish_owner_pick(
    coordinator: &NodeClient,
    validators: &[(String, bool, NodeClient)],
    ann: &RoundAnnouncement,
    patience: Duration,
) -> anyhow::Result<Option<PublicKey>> {
    let (name, _, client) = validators
        .iter()
        .find(|(_, byz, _)| !*byz)
        .context("no honest validator to take the owner's scores from")?;
    let path = format!("/v1/consensus/scores/{}", ann.round_id);
    let start = Instant::now();
    let report = loop {
        match client.get::<Envelope>(&path).await {
            Ok(env) => break Signed::<ScoreReport>::from_envelope(env).verify()?.payload,
            Err(e) if e.status() == Some(404) && start.elapsed() < patience => {
                tokio::time::sleep(Duration::from_millis(150)).await
            }
            Err(e) => bail!("{name}'s report for {}: {e}", ann.round_id),
        }
    };
    let winner = report
        .scores
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(k, _)| *k);
    let req = OwnerPickRequest {
        winner,
        scores: report.scores,
    };
    let _: Envelope = coordinator
        .post(&format!("/v1/rounds/{}/pick", ann.round_id), &req)
        .await
        .context("publishing the owner pick")?;
    Ok(winner)
}

/// Stops validator-0, restarts it from the same data dir, and compares every archive it
/// served before (`GET /v1/consensus/scores/{run}`) with what it serves after, byte for byte.
async fn restart_validator(
    exe: &Path,
    dir: &Path,
    procs: &mut [Proc],
    cfg: &NodeConfig,
    validators: &mut [(String, bool, NodeClient)],
    lines: &[RoundLine],
) -> anyhow::Result<RestartLine> {
    let (name, byz, client) = validators.first().cloned().context("no validators")?;
    let mut before = Vec::new();
    for l in lines {
        let bytes = client
            .get_bytes(&format!("/v1/consensus/scores/{}", l.round_id))
            .await
            .with_context(|| format!("{name}'s archive for {}", l.round_id))?;
        before.push((l.round_id.clone(), bytes));
    }
    let slot = procs
        .iter_mut()
        .find(|p| p.name == name)
        .context("validator-0's process")?;
    // kill -9: no shutdown path runs, so what survives is what the store had committed.
    if let Some(pid) = slot.child.id() {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .context("killing validator-0")?;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), slot.child.wait()).await;
    let mut fresh = spawn(exe, dir, &name, "validator", cfg, byz).await?;
    let url = wait_ready(&mut fresh, Duration::from_secs(60)).await?;
    *slot = fresh;
    let client = NodeClient::new(&url);
    validators[0].2 = client.clone();
    let mut identical = true;
    for (run, bytes) in &before {
        let after = client
            .get_bytes(&format!("/v1/consensus/scores/{run}"))
            .await
            .with_context(|| format!("{name}'s archive for {run} after the restart"))?;
        identical &= after == *bytes;
    }
    Ok(RestartLine {
        validator: name,
        after_round: lines.last().map(|l| l.round_id.clone()).unwrap_or_default(),
        archives_checked: before.len(),
        byte_identical: identical,
    })
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
    equivocators: &[PublicKey],
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
            equivocating: equivocators.contains(&r.validator),
            agrees: hallmark_consensus::agrees(
                &signed_scores(&r.validator),
                reference.winner.as_ref(),
                MARGIN,
            ),
            commitment: r.commitment.clone(),
            weights_for: r.weights_for,
            report_hash: None,
        })
        .collect();
    Ok(RoundLine {
        lane: ann.lane.clone(),
        round_id: ann.round_id.to_string(),
        winner: reference.winner,
        consensus: reference.consensus.clone(),
        validators,
        log_size: 0,
        checkpoint: String::new(),
        owner_pick: None,
        yuma: None,
        eval: None,
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
    findings: Findings,
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
            jobs: findings.jobs,
            builds: findings.builds,
            slashes: findings.slashes,
            compute: findings.compute,
            processes,
            equivocations: findings.equivocations,
            restart: findings.restart,
            ledger: findings.ledger,
            void_rounds: findings.void_rounds,
            weight_mode: args.weight_mode.as_str().into(),
            data_dir: dir.display().to_string(),
            store: StoreLine::of(args, dir),
        };
        println!("{}", serde_json::to_string(&out)?);
        return Ok(honest_ok);
    }
    let mut names: BTreeMap<PublicKey, &str> = processes
        .iter()
        .filter_map(|p| Some((p.hotkey?, p.name.as_str())))
        .collect();
    for e in rounds.iter().filter_map(|r| r.eval.as_ref()) {
        for m in &e.members {
            names.insert(m.worker, m.name.as_str());
        }
    }
    let label = |k: &PublicKey| {
        format!(
            "{:<12} {}",
            names.get(k).copied().unwrap_or("?"),
            k.to_ss58()
        )
    };
    for v in &findings.void_rounds {
        println!(
            "\n{}  void: no worker scored in its {} ms window (published again with twice the window)",
            v.round_id, v.window_ms
        );
    }
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
                "  {:<61} {:>9} {:>7}{}",
                label(&v.hotkey),
                if v.byzantine { "yes" } else { "no" },
                if v.agrees { "yes" } else { "NO" },
                v.report_hash
                    .as_ref()
                    .map(|h| format!("  report {}", &h[..16.min(h.len())]))
                    .unwrap_or_default()
            );
        }
        if let Some(e) = &r.eval {
            println!(
                "  eval: {} members; honest reports identical: {}; measured best: {}; owner pick: {}",
                e.members.len(),
                if e.honest_reports_identical { "yes" } else { "NO" },
                e.measured_best.as_deref().unwrap_or("none"),
                e.owner_pick.as_deref().unwrap_or("none")
            );
            println!(
                "  {:<8} {:>7} {:>8} {:>10}  contained",
                "member", "score", "correct", "fuel"
            );
            for m in &e.members {
                println!(
                    "  {:<8} {:>7.4} {:>8} {:>10}  {}",
                    m.name,
                    m.score,
                    m.correct_tasks,
                    m.fuel,
                    m.contained
                        .as_ref()
                        .map(|c| format!("{}: {}", c.code, c.detail))
                        .unwrap_or_default()
                );
            }
            for f in &e.refusals {
                println!(
                    "  refused by {}: {} ({}) {}",
                    short(&f.validator),
                    f.name,
                    f.code,
                    f.detail
                );
            }
        }
    }
    if let Some(r) = rounds.last() {
        println!(
            "\nledger transparency log after {}: {} transactions; checkpoint:\n{}",
            r.round_id,
            r.log_size,
            r.checkpoint.trim_end()
        );
    }
    if let Some(c) = &findings.compute {
        println!(
            "\nsecure compute: {} ({}) {} on the validators' certificate for {} ({} valid / {} invalid of {} stake, {} signed votes, 2/3 {}; coordinator log leaf {}); in scores or weights: {}",
            c.node_id,
            c.provider,
            if c.listed { "listed" } else { "NOT listed" },
            c.certificate.job_id,
            c.certificate.valid_stake,
            c.certificate.invalid_stake,
            c.certificate.total_stake,
            c.certificate.certificate_votes,
            if c.certificate.passed_two_thirds { "passed" } else { "NOT passed" },
            c.evidence_log_index.map_or("?".into(), |i| i.to_string()),
            if c.in_scores_or_weights { "YES (a bug)" } else { "no" }
        );
    }
    if !findings.equivocations.is_empty() {
        println!("\nequivocation evidence (two signed statements by one validator for one run):");
        for e in &findings.equivocations {
            println!(
                "  {} {} {:<22} found by {}",
                label(&e.evidence.validator),
                e.evidence.run_id,
                e.evidence.kind,
                e.found_by
            );
        }
    }
    if !findings.jobs.is_empty() {
        println!(
            "\nstark jobs ({} validator stake; approve at 2/3 valid, reject above 1/3 invalid):",
            findings.jobs[0].job.total_stake
        );
        println!(
            "  {:<28} {:<9} {:>5} {:<9} {:<14} {:>8} {:>13} {:>6}",
            "job", "type", "size", "status", "worker", "bytes", "valid/invalid", "cert"
        );
        for j in &findings.jobs {
            let worker = j.job.worker.map_or("-".into(), |w| {
                let n = names.get(&w).copied().unwrap_or("?");
                if j.corrupt_worker {
                    format!("{n}*")
                } else {
                    n.to_string()
                }
            });
            println!(
                "  {:<28} {:<9} {:>5} {:<9} {:<14} {:>8} {:>13} {:>6}",
                j.job.id,
                j.job.job_type.as_deref().unwrap_or("-"),
                j.job.size.map_or("-".into(), |s| s.to_string()),
                j.job.status.as_str(),
                worker,
                j.job.proof_bytes.map_or("-".into(), |b| b.to_string()),
                format!("{}/{}", j.job.votes_valid_stake, j.job.votes_invalid_stake),
                j.job.certificate_votes
            );
        }
        if !findings.corrupt_workers.is_empty() {
            println!("  * hands in corrupted proofs (fault injection)");
        }
        for e in findings
            .jobs
            .iter()
            .flat_map(|j| j.job.equivocators.iter().map(move |v| (j, v)))
        {
            println!(
                "  equivocation: {} signed two votes on {}",
                label(e.1),
                e.0.job.id
            );
        }
    }
    if !findings.builds.is_empty() {
        println!("\nbuild lane (each rebuilt by a builder and first-hand by every validator in the sandbox):");
        println!(
            "  {:<11} {:<12} {:<6} {:<10} {:<18} {:>5}  wasm",
            "case", "status", "match", "trust", "reason", "cert"
        );
        for b in &findings.builds {
            println!(
                "  {:<11} {:<12} {:<6} {:<10} {:<18} {:>5}  {}",
                b.case,
                b.status,
                b.match_kind.as_deref().unwrap_or("-"),
                b.image_trust,
                b.reason.as_deref().unwrap_or("-"),
                b.certificate_votes,
                &b.wasm_sha256[..16]
            );
        }
    }
    if !findings.slashes.is_empty() {
        println!("\nslashed on the ledger:");
        for s in &findings.slashes {
            println!(
                "  {} {:>6} stake  {:<16} {}",
                label(&s.hotkey),
                s.amount,
                format!("{:?}", s.reason),
                s.job_id
            );
        }
    }
    if let Some(r) = &findings.restart {
        println!(
            "\nrestarted {} after {}: {} archives served again {}",
            r.validator,
            r.after_round,
            r.archives_checked,
            if r.byte_identical {
                "byte for byte"
            } else {
                "DIFFERENTLY"
            }
        );
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
    if !findings.jobs.is_empty() {
        let approved = findings
            .jobs
            .iter()
            .filter(|j| j.job.status == JobStatus::Approved)
            .count();
        println!(
            "Stark jobs: {} submitted beside the rounds, {approved} approved and {} rejected by the validators' stake vote; every settlement and slashing was re-checked by the ledger.",
            findings.jobs.len(),
            findings.jobs.len() - approved
        );
    }
    if !findings.builds.is_empty() {
        let count = |st: &str| findings.builds.iter().filter(|b| b.status == st).count();
        println!(
            "Build lane: {} wasm handed in; {} verified, {} mismatched, {} unverified, each decided by a certificate of the validators' own sandboxed rebuilds.",
            findings.builds.len(),
            count("verified"),
            count("mismatched"),
            count("unverified")
        );
    }
    println!(
        "Data (keys, SQLite stores, configs, logs): {}",
        dir.display()
    );
    Ok(honest_ok)
}
