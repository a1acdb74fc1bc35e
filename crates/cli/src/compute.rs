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
use hallmark_tee::simulate::Misbehaviour;

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

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The coordinator's base URL.
    #[arg(long)]
    coordinator: String,
    /// The provider's hotkey (hex seed file; created if missing).
    #[arg(long)]
    key: PathBuf,
    /// The machine's node id.
    #[arg(long)]
    node_id: String,
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
    #[arg(long)]
    coordinator: String,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ClaimArgs {
    #[arg(long)]
    coordinator: String,
    /// The claimant's hotkey (hex seed file).
    #[arg(long)]
    key: PathBuf,
    #[arg(long)]
    node_id: String,
    #[arg(long, default_value_t = 3600)]
    lease_secs: u64,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    #[arg(long)]
    coordinator: String,
    #[arg(long)]
    key: PathBuf,
    #[arg(long)]
    node_id: String,
    #[arg(long)]
    claim_id: String,
    #[arg(long)]
    gpu_seconds: u64,
}

/// Turns on the simulated defect named `kind`.
pub fn add_defect(m: &mut Misbehaviour, kind: &str) -> anyhow::Result<()> {
    match kind {
        "debug" => m.debug = true,
        "wrong_nonce" => m.wrong_nonce = true,
        "stale_tcb" => m.stale_tcb = true,
        "bad_gpu_token" => m.bad_gpu_token = true,
        "missing_gpu" => m.missing_gpu = true,
        other => anyhow::bail!(
            "unknown defect {other:?}: expected debug, wrong_nonce, stale_tcb, bad_gpu_token or missing_gpu"
        ),
    }
    Ok(())
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
            let path = format!("/v1/compute/providers/{}/claim", a.node_id);
            post_statement::<ClaimGrant, _>(&a.coordinator, &a.key, &path, &body).await
        }
        ComputeCommand::Release(a) => {
            let body = ReleaseRequest {
                claim_id: a.claim_id,
                gpu_seconds: a.gpu_seconds,
            };
            let path = format!("/v1/compute/providers/{}/release", a.node_id);
            post_statement::<UsageReceipt, _>(&a.coordinator, &a.key, &path, &body).await
        }
    }
}

/// Posts `body` signed by the key in `key_file`, checks the answer is a `T` signed envelope
/// and prints it.
async fn post_statement<T: SignedPayload, B: serde::Serialize>(
    coordinator: &str,
    key_file: &std::path::Path,
    path: &str,
    body: &B,
) -> anyhow::Result<ExitCode> {
    let key = load_key(key_file)?;
    let env: Envelope = NodeClient::new(coordinator)
        .signed_by(key)
        .post(path, body)
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
    let key = load_or_create_key(&a.key)?;
    let mut p = SimulatedProvider::new(key, &a.node_id, a.gpus);
    p.spec.price_per_gpu_hour = a.price;
    p.omit_collateral = a.omit_collateral;
    if let Some(m) = &a.misbehave {
        add_defect(&mut p.misbehaviour, m)?;
    }
    let coordinator = NodeClient::new(&a.coordinator);
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
