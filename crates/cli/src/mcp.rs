//! `hallmark mcp`: the network as tools an AI assistant can call, over the Model Context
//! Protocol on stdio (rmcp). Every tool has a JSON schema for its arguments and its structured
//! output; a failure a user should see (an invalid proof, a refused request) is a tool result
//! with `isError: true` and the reason, not a protocol error. `get_proof` waits for the job to
//! settle and reports progress when the request carries a progress token. Logs go to stderr:
//! stdout carries the protocol alone.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use hallmark_core::{Keypair, PublicKey};
use hallmark_node::jobs::{JobStatus, JobView};
use hallmark_sdk::{Client, Endpoints, SdkError};
use hallmark_stark::{JobSpec, JobType};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ProgressNotificationParam, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{schemars, tool, tool_handler, tool_router, Json, RoleServer, ServiceExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Arguments of `hallmark mcp`.
#[derive(Debug, clap::Args)]
pub struct McpArgs {
    /// The coordinator's URL (default: the devnet's with `--devnet`).
    #[arg(long, env = "HALLMARK_COORDINATOR_URL")]
    coordinator: Option<String>,
    /// The ledger's URL (default: the devnet's).
    #[arg(long, env = "HALLMARK_LEDGER_URL")]
    ledger: Option<String>,
    /// The key (hex seed file) `submit_job` signs with and `stake` bonds to (default: the
    /// devnet's client key, else `.hallmark/client.key`, created if missing).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The coldkey (hex seed file) `stake` spends from and `faucet_claim` fills by default
    /// (default: the devnet's coldkey).
    #[arg(long)]
    coldkey: Option<PathBuf>,
    #[command(flatten)]
    devnet: crate::network::DevnetArg,
}

/// How long `get_proof` waits for a job to settle.
const PROOF_WAIT: Duration = Duration::from_secs(300);

/// Runs `hallmark mcp` until the client closes stdin.
pub async fn run(a: McpArgs) -> anyhow::Result<ExitCode> {
    let d = a.devnet.info()?;
    let coordinator = a
        .coordinator
        .clone()
        .or_else(|| d.as_ref().map(|d| d.coordinator.clone()))
        .context("say where the coordinator is: --coordinator URL or --devnet DIR")?;
    let ledger = a
        .ledger
        .clone()
        .or_else(|| d.as_ref().map(|d| d.ledger.clone()));
    let key_path = a
        .key
        .clone()
        .or_else(|| d.as_ref().map(|d| d.client_key.clone()))
        .unwrap_or_else(|| PathBuf::from(".hallmark/client.key"));
    let key = hallmark_node::run::load_or_create_key(&key_path)
        .with_context(|| format!("the client key {}", key_path.display()))?;
    let coldkey = match a
        .coldkey
        .clone()
        .or_else(|| d.as_ref().map(|d| d.coldkey.clone()))
    {
        Some(p) => Some(
            hallmark_node::run::load_key(&p)
                .with_context(|| format!("the coldkey {}", p.display()))?,
        ),
        None => None,
    };
    let client = Client::connect(Endpoints {
        coordinator: coordinator.clone(),
        ledger,
        validators: d.map(|d| d.validators).unwrap_or_default(),
    })
    .await
    .map_err(crate::job::sdk_error)?
    .with_key(key.clone());
    let server = HallmarkTools {
        client,
        key,
        coldkey,
        tool_router: HallmarkTools::tool_router(),
    };
    tracing::info!(%coordinator, "MCP server on stdio");
    let service = server
        .serve(rmcp::transport::stdio())
        .await
        .context("starting the MCP session")?;
    service.waiting().await.context("the MCP session")?;
    Ok(ExitCode::SUCCESS)
}

/// The tools.
#[derive(Clone)]
pub struct HallmarkTools {
    client: Client,
    key: Keypair,
    coldkey: Option<Keypair>,
    tool_router: ToolRouter<Self>,
}

/// `submit_job` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct SubmitJobArgs {
    /// The job lane: `stark`.
    pub lane: String,
    /// The computation: `fib`, `hashchain` or `matmul`.
    #[serde(rename = "type")]
    pub job_type: String,
    /// Instances (fib), chain length (hashchain) or matrix dimension (matmul).
    pub size: u32,
    /// 64 hex characters every input is derived from; random when absent.
    pub seed: Option<String>,
}

/// `job_status` and `get_proof` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct JobIdArgs {
    /// The job id (`job-…`).
    pub job_id: String,
}

/// `verify_proof` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct VerifyProofArgs {
    /// The proof package, base64.
    pub proof_base64: String,
    /// With `size` and `seed`: the job the proof must be about.
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    pub size: Option<u32>,
    pub seed: Option<String>,
}

/// `verify_receipt` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct VerifyReceiptArgs {
    /// A receipt `{statement, log}` as a validator or the coordinator serves it.
    pub receipt: Value,
}

/// `verify_tdx_quote` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct VerifyTdxQuoteArgs {
    /// The DCAP quote, base64.
    pub quote_base64: String,
    /// Its collateral (Intel PCS / PCCS JSON, as an object or a string); required offline.
    pub collateral: Option<Value>,
    /// The time to verify at, unix seconds (default: now).
    pub now: Option<u64>,
}

/// `verify_build` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct VerifyBuildArgs {
    /// SHA-256 of the wasm, 64 hex characters.
    pub wasm_sha256: String,
}

/// `faucet_claim` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct FaucetArgs {
    /// The SS58 address to fill (default: the server's coldkey).
    pub address: Option<String>,
}

/// `stake` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct StakeArgs {
    /// How much to bond from the coldkey's public balance.
    pub amount: u64,
    /// The staking tier (`cpu`, `gpu`, …).
    pub tier: String,
}

/// A job, as the tools report it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct JobOut {
    pub job_id: String,
    pub lane: String,
    /// `queued`, `assigned`, `proven`, `approved` or `rejected`.
    pub status: String,
    pub summary: String,
    pub spec: Value,
    pub worker: Option<String>,
    pub proof_hash: Option<String>,
    pub proof_bytes: Option<u64>,
    pub votes_valid_stake: u64,
    pub votes_invalid_stake: u64,
    pub total_stake: u64,
    /// Signed votes in the settling certificate (0 while unsettled).
    pub certificate_votes: usize,
}

impl From<&JobView> for JobOut {
    fn from(j: &JobView) -> Self {
        Self {
            job_id: j.job_id.clone(),
            lane: j.lane.clone(),
            status: j.status.as_str().to_string(),
            summary: j.summary.clone(),
            spec: j.spec.clone(),
            worker: j.worker.map(|w| w.to_ss58()),
            proof_hash: j.proof_hash.clone(),
            proof_bytes: j.proof_bytes,
            votes_valid_stake: j.votes_valid_stake,
            votes_invalid_stake: j.votes_invalid_stake,
            total_stake: j.total_stake,
            certificate_votes: j.certificate.as_ref().map_or(0, |c| c.votes.len()),
        }
    }
}

/// `get_proof`'s answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ProofOut {
    pub job: JobOut,
    pub proof_base64: String,
    pub bytes: usize,
}

/// `verify_proof`'s answer (an invalid proof is an error result instead).
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ProofVerdict {
    pub valid: bool,
    /// What was proven: job type, size, seed and public outputs.
    pub statement: Value,
    pub proof_hash: String,
    pub package_bytes: usize,
    /// Whether the proof was checked against a given job (`type`, `size`, `seed`).
    pub matched_job: bool,
}

/// `verify_receipt`'s answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ReceiptVerdict {
    pub valid: bool,
    pub signer: String,
    pub payload_type: String,
    pub log_index: u64,
    pub tree_size: u64,
    pub checks: Vec<String>,
}

/// `verify_tdx_quote`'s answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct QuoteVerdict {
    pub accepted: bool,
    /// Each check: name, outcome and detail.
    pub checks: Vec<Value>,
    /// TCB status, measurements and report data, when the quote parsed.
    pub summary: Option<Value>,
}

/// A wrapper for answers that are lists or free-form documents (an output schema's root must
/// be an object).
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct Document {
    pub result: Value,
}

/// One worker of `list_workers`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct WorkerOut {
    pub uid: u64,
    pub hotkey: String,
    pub coldkey: String,
    pub stake: u64,
    pub tier: String,
    pub axon: Option<String>,
}

/// `list_workers`' answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct WorkersOut {
    pub workers: Vec<WorkerOut>,
}

/// `network_stats`' answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct StatsOut {
    pub validators: usize,
    pub workers: usize,
    pub validator_stake: u64,
    pub worker_stake: u64,
    /// Jobs on the coordinator by status (up to 1000 counted per status).
    pub jobs: std::collections::BTreeMap<String, usize>,
    /// Leaves in the coordinator's transparency log.
    pub coordinator_log_size: u64,
}

/// `faucet_claim`'s and `stake`'s answers.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct TxOut {
    pub address: String,
    pub amount: u64,
    /// The address's public balance after (faucet), or the tier bonded in (stake).
    pub detail: String,
    pub tx_seq: u64,
    pub tx_hash: String,
}

/// A failure the user should see, worded with the server's code first.
fn user_error(what: &str, e: SdkError) -> String {
    match e.code() {
        Some(code) if !e.to_string().contains(code) => format!("{what}: {code}: {e}"),
        _ => format!("{what}: {e}"),
    }
}

fn job_spec(job_type: &str, size: u32, seed: Option<&str>) -> Result<JobSpec, String> {
    let t: JobType = serde_json::from_value(Value::String(job_type.to_string()))
        .map_err(|_| format!("invalid_type: {job_type:?} is not fib, hashchain or matmul"))?;
    let seed: [u8; 32] = match seed {
        None => rand::random(),
        Some(s) => hex::decode(s)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| format!("invalid_seed: {s:?} is not 64 hex characters"))?,
    };
    JobSpec::new(t, size, seed).map_err(|e| format!("invalid_spec: {e}"))
}

#[tool_router]
impl HallmarkTools {
    #[tool(
        description = "Submit a proving job (lane `stark`: type fib|hashchain|matmul, size, optional 64-hex seed), signed by this server's client key. Returns the queued job."
    )]
    async fn submit_job(
        &self,
        Parameters(a): Parameters<SubmitJobArgs>,
    ) -> Result<Json<JobOut>, String> {
        if a.lane != "stark" {
            return Err(format!(
                "unknown_lane: {:?} takes no type/size job here; the lane is `stark`",
                a.lane
            ));
        }
        let spec = job_spec(&a.job_type, a.size, a.seed.as_deref())?;
        let spec = serde_json::to_value(spec).map_err(|e| e.to_string())?;
        let job = self
            .client
            .submit_job(&a.lane, spec)
            .await
            .map_err(|e| user_error("the job was refused", e))?;
        Ok(Json(JobOut::from(&job)))
    }

    #[tool(
        description = "A job's status: queued, assigned, proven, approved or rejected, with its votes and proof hash."
    )]
    async fn job_status(
        &self,
        Parameters(a): Parameters<JobIdArgs>,
    ) -> Result<Json<JobOut>, String> {
        let job = self
            .client
            .job_status(&a.job_id)
            .await
            .map_err(|e| user_error("reading the job", e))?;
        Ok(Json(JobOut::from(&job)))
    }

    #[tool(
        description = "A job's proof package (base64), waiting up to 5 minutes for the job to settle; sends progress notifications when the request carries a progress token."
    )]
    async fn get_proof(
        &self,
        Parameters(a): Parameters<JobIdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ProofOut>, String> {
        let token = ctx.meta.get_progress_token();
        let started = Instant::now();
        let mut step = 0.0;
        let mut last = None;
        let job = loop {
            let job = self
                .client
                .job_status(&a.job_id)
                .await
                .map_err(|e| user_error("reading the job", e))?;
            if last != Some(job.status) {
                last = Some(job.status);
                step += 1.0;
                if let Some(t) = &token {
                    let note = ProgressNotificationParam::new(t.clone(), step)
                        .with_total(4.0)
                        .with_message(format!("{}: {}", job.job_id, job.status.as_str()));
                    if let Err(e) = ctx.peer.notify_progress(note).await {
                        tracing::debug!(error = %e, "progress not delivered");
                    }
                }
            }
            if matches!(job.status, JobStatus::Approved | JobStatus::Rejected) {
                break job;
            }
            if started.elapsed() > PROOF_WAIT || ctx.ct.is_cancelled() {
                return Err(format!(
                    "timed_out: {} is still {} after {} s",
                    job.job_id,
                    job.status.as_str(),
                    started.elapsed().as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let package = self
            .client
            .get_proof(&job.job_id)
            .await
            .map_err(|e| user_error("fetching the proof", e))?;
        Ok(Json(ProofOut {
            job: JobOut::from(&job),
            bytes: package.len(),
            proof_base64: base64::engine::general_purpose::STANDARD.encode(&package),
        }))
    }

    #[tool(
        description = "Verify a stark proof package locally (never trusting a node); with type, size and seed it must also be the proof of that job. An invalid proof is an error result naming the failed check."
    )]
    async fn verify_proof(
        &self,
        Parameters(a): Parameters<VerifyProofArgs>,
    ) -> Result<Json<ProofVerdict>, String> {
        let package = base64::engine::general_purpose::STANDARD
            .decode(a.proof_base64.trim())
            .map_err(|e| format!("invalid_base64: {e}"))?;
        let spec = match (&a.job_type, a.size, &a.seed) {
            (None, None, None) => None,
            (Some(t), Some(n), Some(s)) => Some(job_spec(t, n, Some(s))?),
            _ => {
                return Err("invalid_arguments: give type, size and seed together, or none".into())
            }
        };
        let verified = match &spec {
            Some(spec) => hallmark_sdk::verify_proof(&package, spec),
            None => hallmark_stark::Verifier::default()
                .verify(&package, None)
                .map_err(|r| SdkError::Verification {
                    check: r.code().to_string(),
                    detail: r.to_string(),
                }),
        }
        .map_err(|e| user_error("invalid proof", e))?;
        Ok(Json(ProofVerdict {
            valid: true,
            statement: serde_json::to_value(&verified.statement).unwrap_or(Value::Null),
            proof_hash: verified.proof_hash.to_hex(),
            package_bytes: verified.package_bytes,
            matched_job: spec.is_some(),
        }))
    }

    #[tool(
        description = "Verify a signed statement's receipt offline: the statement's signature, the checkpoint's signature by the same key, the tree size and the inclusion proof. An invalid receipt is an error result naming the failed check."
    )]
    async fn verify_receipt(
        &self,
        Parameters(a): Parameters<VerifyReceiptArgs>,
    ) -> Result<Json<ReceiptVerdict>, String> {
        let receipt: hallmark_log::Receipt =
            serde_json::from_value(a.receipt).map_err(|e| format!("malformed_receipt: {e}"))?;
        let v = hallmark_log::verify_receipt(&receipt, None);
        if !v.accepted {
            let failed = v
                .checks
                .iter()
                .find(|c| c.outcome == hallmark_core::CheckOutcome::Fail)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .unwrap_or_default();
            return Err(format!("invalid receipt: {failed}"));
        }
        let signer = receipt
            .statement
            .verify_untyped()
            .map(|(s, _)| s.to_ss58())
            .unwrap_or_default();
        Ok(Json(ReceiptVerdict {
            valid: true,
            signer,
            payload_type: receipt.statement.payload_type.clone(),
            log_index: receipt.log.log_index,
            tree_size: receipt.log.tree_size,
            checks: v.checks.iter().map(|c| c.name.clone()).collect(),
        }))
    }

    #[tool(
        description = "Verify an Intel TDX/SGX DCAP quote against Intel's root with its collateral at a time (default now), under the default policy. A rejected quote is an error result with every check."
    )]
    async fn verify_tdx_quote(
        &self,
        Parameters(a): Parameters<VerifyTdxQuoteArgs>,
    ) -> Result<Json<QuoteVerdict>, String> {
        let quote = base64::engine::general_purpose::STANDARD
            .decode(a.quote_base64.trim())
            .map_err(|e| format!("invalid_base64: {e}"))?;
        let collateral = match a.collateral {
            None => {
                return Err(
                    "collateral_missing: this server fetches nothing from Intel; pass the quote's collateral (PCS/PCCS JSON)".into(),
                )
            }
            Some(Value::String(s)) => s.into_bytes(),
            Some(v) => serde_json::to_vec(&v).map_err(|e| e.to_string())?,
        };
        let collateral = hallmark_tee::tdx::parse_collateral(&collateral)
            .map_err(|e| format!("invalid_collateral: {e}"))?;
        let now = a
            .now
            .unwrap_or_else(|| u64::try_from(hallmark_core::time::now_unix()).unwrap_or(0));
        let roots = hallmark_tee::TrustRoots::intel();
        let policy = hallmark_tee::TdxPolicy::default();
        let out = hallmark_tee::verify_quote(
            &quote,
            &collateral,
            &hallmark_tee::TdxContext {
                now,
                roots: &roots,
                policy: &policy,
            },
        );
        let verdict = QuoteVerdict {
            accepted: out.verdict.accepted,
            checks: out
                .verdict
                .checks
                .iter()
                .map(|c| serde_json::json!({"name": c.name, "outcome": c.outcome, "detail": c.detail}))
                .collect(),
            summary: out.summary.as_ref().and_then(|s| serde_json::to_value(s).ok()),
        };
        if !verdict.accepted {
            return Err(format!(
                "quote rejected: {}: {}",
                out.verdict.rejection.as_deref().unwrap_or("rejected"),
                serde_json::to_string(&verdict).unwrap_or_default()
            ));
        }
        Ok(Json(verdict))
    }

    #[tool(
        description = "The build lane's verifications of a wasm by its SHA-256: status (queued, building, verified, mismatched, unverified), match, recipe and certificate."
    )]
    async fn verify_build(
        &self,
        Parameters(a): Parameters<VerifyBuildArgs>,
    ) -> Result<Json<Document>, String> {
        let sha = a.wasm_sha256.trim().to_ascii_lowercase();
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "invalid_sha256: {:?} is not 64 hex characters",
                a.wasm_sha256
            ));
        }
        let view = self
            .client
            .wasm(&sha)
            .await
            .map_err(|e| user_error("reading the build verifications", e))?;
        let doc = serde_json::to_value(view).map_err(|e| format!("internal: {e}"))?;
        Ok(Json(Document { result: doc }))
    }

    #[tool(
        description = "The workers registered on the ledger: uid, hotkey, coldkey, stake, tier and address."
    )]
    async fn list_workers(&self) -> Result<Json<WorkersOut>, String> {
        let mg = self
            .client
            .metagraph()
            .await
            .map_err(|e| user_error("reading the metagraph", e))?;
        Ok(Json(WorkersOut {
            workers: mg
                .neurons
                .iter()
                .filter(|n| n.role == hallmark_ledger::Role::Worker)
                .map(|n| WorkerOut {
                    uid: n.uid,
                    hotkey: n.hotkey.to_ss58(),
                    coldkey: n.coldkey.to_ss58(),
                    stake: n.stake,
                    tier: n.tier.clone(),
                    axon: n.axon.clone(),
                })
                .collect(),
        }))
    }

    #[tool(
        description = "Network statistics: validators and workers with their stake, jobs by status, and the coordinator's log size."
    )]
    async fn network_stats(&self) -> Result<Json<StatsOut>, String> {
        let mg = self
            .client
            .metagraph()
            .await
            .map_err(|e| user_error("reading the metagraph", e))?;
        let of = |role| mg.neurons.iter().filter(move |n| n.role == role);
        let mut jobs = std::collections::BTreeMap::new();
        for status in ["queued", "assigned", "proven", "approved", "rejected"] {
            let list = self
                .client
                .jobs(Some(status), 1000)
                .await
                .map_err(|e| user_error("reading the jobs", e))?;
            jobs.insert(status.to_string(), list.len());
        }
        let coordinator = self.client.endpoints().coordinator.clone();
        let note = self
            .client
            .checkpoint(&coordinator)
            .await
            .map_err(|e| user_error("reading the coordinator's log", e))?;
        let size = hallmark_log::SignedCheckpoint { note }
            .checkpoint_unverified()
            .map(|c| c.size)
            .map_err(|e| format!("the coordinator's checkpoint: {e}"))?;
        Ok(Json(StatsOut {
            validators: of(hallmark_ledger::Role::Validator).count(),
            workers: of(hallmark_ledger::Role::Worker).count(),
            validator_stake: of(hallmark_ledger::Role::Validator).map(|n| n.stake).sum(),
            worker_stake: of(hallmark_ledger::Role::Worker).map(|n| n.stake).sum(),
            jobs,
            coordinator_log_size: size,
        }))
    }

    #[tool(
        description = "Ask the devnet faucet for tokens to an SS58 address (default: this server's coldkey); rate-limited per address."
    )]
    async fn faucet_claim(
        &self,
        Parameters(a): Parameters<FaucetArgs>,
    ) -> Result<Json<TxOut>, String> {
        let address: PublicKey = match &a.address {
            Some(s) => s
                .trim()
                .parse()
                .map_err(|e| format!("invalid_address: {s:?}: {e}"))?,
            None => self
                .coldkey
                .as_ref()
                .map(|k| k.public())
                .ok_or("invalid_arguments: no address given and this server has no coldkey")?,
        };
        let drip = self
            .client
            .faucet(&address)
            .await
            .map_err(|e| user_error("the faucet refused", e))?;
        Ok(Json(TxOut {
            address: address.to_ss58(),
            amount: drip.amount,
            detail: format!("public balance now {}", drip.balance),
            tx_seq: drip.receipt.seq,
            tx_hash: drip.receipt.tx_hash,
        }))
    }

    #[tool(
        description = "Bond stake from this server's coldkey to its client key in a tier (locked for a while)."
    )]
    async fn stake(&self, Parameters(a): Parameters<StakeArgs>) -> Result<Json<TxOut>, String> {
        let coldkey = self
            .coldkey
            .as_ref()
            .ok_or("invalid_arguments: this server has no coldkey to stake from (--coldkey)")?;
        let hotkey = self.key.public();
        let receipt = self
            .client
            .stake(coldkey, &hotkey, a.amount, &a.tier)
            .await
            .map_err(|e| user_error("the stake was refused", e))?;
        Ok(Json(TxOut {
            address: hotkey.to_ss58(),
            amount: a.amount,
            detail: format!("bonded in tier {}", a.tier),
            tx_seq: receipt.seq,
            tx_hash: receipt.tx_hash,
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl rmcp::ServerHandler for HallmarkTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("hallmark", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "hallmark, a verifiable compute network: submit and follow proving jobs, fetch and verify proofs and receipts locally, verify TDX quotes and wasm builds, read workers and stats, claim from the faucet and stake.",
            )
    }
}
