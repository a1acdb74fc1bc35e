//! `hallmark compute`: the provider's and client's side of secure-compute intake.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use hallmark_core::{Envelope, Signed, SignedPayload};
use hallmark_node::compute::messages::{
    ClaimGrant, ClaimRequest, EvidenceEvent, ProviderListing, ReleaseRequest, UsageReceipt,
};
use hallmark_node::compute::provider::SimulatedProvider;
use hallmark_node::run::{load_key, load_or_create_key};
use hallmark_node::{ClientError, NodeClient};

/// `hallmark compute …`
#[derive(Debug, Subcommand)]
pub enum ComputeCommand {
    /// Offer capacity, take an evidence nonce and answer it; prints the signed evidence event.
    /// Only `--simulated` evidence (from the public devnet test root) is built in: a coordinator
    /// in the production profile refuses it.
    Register(RegisterArgs),
    /// List the providers a coordinator has listed.
    List(ListArgs),
    /// Claim a listed node for a lease; prints the signed claim.
    Claim(ClaimArgs),
    /// Release a claim with the GPU-seconds used; prints the signed usage receipt.
    Release(ReleaseArgs),
}

/// Which coordinator, whose key, which node: what every per-node command needs.
#[derive(Debug, Args)]
pub struct NodeTarget {
    /// The coordinator's base URL.
    #[arg(long)]
    coordinator: String,
    /// The signing hotkey (hex seed file): the provider's for `register` (created if missing),
    /// the claimant's for `claim` and `release`.
    #[arg(long)]
    key: PathBuf,
    /// The machine's node id.
    #[arg(long)]
    node_id: String,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    target: NodeTarget,
    /// H100 GPUs offered.
    #[arg(long, default_value_t = 1)]
    gpus: u32,
    /// Price per GPU-hour (smallest ledger unit).
    #[arg(long, default_value_t = 2_000)]
    price: u64,
    /// Mint evidence from the devnet test root (required: no hardware path is built in).
    #[arg(long)]
    simulated: bool,
    /// Simulated defect: debug, wrong_nonce, stale_tcb, bad_gpu_token, missing_gpu.
    #[arg(long)]
    misbehave: Option<String>,
    /// Send no collateral (the coordinator's FMSPC cache / PCCS supplies it).
    #[arg(long)]
    omit_collateral: bool,
    /// Print the event as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The coordinator's base URL.
    #[arg(long)]
    coordinator: String,
    /// Print the listings as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ClaimArgs {
    #[command(flatten)]
    target: NodeTarget,
    /// How long the claim lasts unless released.
    #[arg(long, default_value_t = 3600)]
    lease_secs: u64,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    #[command(flatten)]
    target: NodeTarget,
    /// The claim id from `compute claim`.
    #[arg(long)]
    claim_id: String,
    /// GPU-seconds used during the claim (billed on the usage receipt).
    #[arg(long)]
    gpu_seconds: u64,
}

fn print_envelope(env: &Envelope) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(env)?);
    Ok(())
}

pub async fn run(cmd: ComputeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ComputeCommand::Register(a) => register(a).await,
        ComputeCommand::List(a) => {
            let list: Vec<ProviderListing> = NodeClient::new(&a.coordinator)
                .get("/v1/compute/providers")
                .await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no providers listed");
            } else {
                for p in list {
                    let gpus: Vec<String> = p
                        .gpus
                        .iter()
                        .map(|g| format!("{}×{}", g.count, g.model))
                        .collect();
                    println!(
                        "{}  {}  {}  {}/GPU-h  {}{}",
                        p.node_id,
                        p.provider,
                        gpus.join(","),
                        p.price_per_gpu_hour,
                        if p.production_evidence {
                            "production"
                        } else {
                            "devnet"
                        },
                        if p.claimed { "  claimed" } else { "" }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ComputeCommand::Claim(a) => {
            let body = ClaimRequest {
                lease_secs: a.lease_secs,
            };
            post_statement::<ClaimGrant, _>(&a.target, "claim", &body).await
        }
        ComputeCommand::Release(a) => {
            let body = ReleaseRequest {
                claim_id: a.claim_id,
                gpu_seconds: a.gpu_seconds,
            };
            post_statement::<UsageReceipt, _>(&a.target, "release", &body).await
        }
    }
}

/// Posts `body` to the node's `action` route, signed by the target's key; checks the answer
/// is a signed `T` and prints it.
async fn post_statement<T: SignedPayload, B: serde::Serialize>(
    t: &NodeTarget,
    action: &str,
    body: &B,
) -> anyhow::Result<ExitCode> {
    let key = load_key(&t.key)?;
    let path = format!("/v1/compute/providers/{}/{action}", t.node_id);
    let env: Envelope = NodeClient::new(&t.coordinator)
        .signed_by(key)
        .post(&path, body)
        .await?;
    Signed::<T>::from_envelope(env.clone())
        .verify()
        .with_context(|| format!("the coordinator's {}", T::PAYLOAD_TYPE))?;
    print_envelope(&env)?;
    Ok(ExitCode::SUCCESS)
}

async fn register(a: RegisterArgs) -> anyhow::Result<ExitCode> {
    if !a.simulated {
        anyhow::bail!("only --simulated evidence is built in; a hardware provider answers the nonce with its own quote and NRAS body through the HTTP API (see README)");
    }
    let key = load_or_create_key(&a.target.key)?;
    let mut p = SimulatedProvider::new(key, &a.target.node_id, a.gpus);
    p.spec.price_per_gpu_hour = a.price;
    p.omit_collateral = a.omit_collateral;
    if let Some(m) = &a.misbehave {
        p.misbehaviour.add(m).map_err(anyhow::Error::msg)?;
    }
    let coordinator = NodeClient::new(&a.target.coordinator);
    let (env, listed) = match p.register(&coordinator).await {
        Ok(env) => (env, true),
        Err(hallmark_node::compute::provider::ProviderError::Client(ClientError::Api {
            status: 422,
            error,
            ..
        })) if error.code == "evidence_rejected" => {
            let env: Envelope = serde_json::from_value(error.details["event"].clone())
                .context("the rejection carries no evidence event")?;
            (env, false)
        }
        Err(e) => return Err(e.into()),
    };
    let event = Signed::<EvidenceEvent>::from_envelope(env.clone())
        .verify()
        .context("the coordinator's evidence event")?
        .payload;
    if a.json {
        print_envelope(&env)?;
    } else {
        println!(
            "{}: {} (tdx {}, binding {}, gpus {})",
            event.node_id,
            if listed { "listed" } else { "NOT listed" },
            if event.result.tdx_status.is_empty() {
                "unverified"
            } else {
                &event.result.tdx_status
            },
            event.result.binding_verified,
            event.result.gpu_verified,
        );
        for e in &event.result.errors {
            println!("  {e}");
        }
    }
    Ok(if listed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
