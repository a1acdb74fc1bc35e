//! `hallmark compute`: the provider's and client's side of secure-compute intake.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use hallmark_attest::pccs::PccsFetcher;
use hallmark_attest::provider::{Attestation, CollateralSource, SimulatedProvider};
use hallmark_core::{Envelope, Signed, SignedPayload};
use hallmark_node::compute::messages::{
    ClaimGrant, ClaimRequest, ProviderListing, ReleaseRequest, UsageReceipt,
};
use hallmark_node::run::{load_key, load_or_create_key};
use hallmark_node::NodeClient;
use serde::Serialize;

use crate::network::CoordinatorArg;

/// `hallmark compute …`
#[derive(Debug, Subcommand)]
pub enum ComputeCommand {
    /// Offer capacity, take an evidence nonce, answer it with evidence as a signed attestation
    /// job, and wait for the validators' certificate; prints the outcome. Only `--simulated`
    /// evidence (from the public devnet test root) is built in: validators in the production
    /// profile refuse it. Exit 0 listed, 1 not listed, 2 could not finish.
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
    #[command(flatten)]
    coordinator: CoordinatorArg,
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
    /// Send no collateral of its own: with --pccs it is fetched there (through a cache keyed
    /// by the quote's FMSPC); without, validators refuse the evidence (`collateral_format`).
    #[arg(long)]
    omit_collateral: bool,
    /// A PCCS (or Intel PCS) base URL to fetch collateral from when the evidence has none.
    #[arg(long)]
    pccs: Option<String>,
    /// How long to wait for the validators' certificate.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    coordinator: CoordinatorArg,
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
            let list: Vec<ProviderListing> = coordinator_sdk(&a.coordinator.url()?)
                .await?
                .providers()
                .await
                .map_err(crate::job::sdk_error)?;
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
                        "{}  {}  {}  {}/GPU-h  certified by {} votes{}",
                        p.node_id,
                        p.provider,
                        gpus.join(","),
                        p.price_per_gpu_hour,
                        p.certificate.as_ref().map_or(0, |c| c.votes.len()),
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
            let key = load_key(&a.target.key)?;
            let env = coordinator_sdk(&a.target.coordinator.url()?)
                .await?
                .claim_machine(&a.target.node_id, &key, &body)
                .await
                .map_err(crate::job::sdk_error)?;
            print_statement::<ClaimGrant>(env)
        }
        ComputeCommand::Release(a) => {
            let body = ReleaseRequest {
                claim_id: a.claim_id,
                gpu_seconds: a.gpu_seconds,
            };
            let key = load_key(&a.target.key)?;
            let env = coordinator_sdk(&a.target.coordinator.url()?)
                .await?
                .release_machine(&a.target.node_id, &key, &body)
                .await
                .map_err(crate::job::sdk_error)?;
            print_statement::<UsageReceipt>(env)
        }
    }
}

/// The SDK client of the coordinator at `url`.
async fn coordinator_sdk(url: &str) -> anyhow::Result<hallmark_sdk::Client> {
    hallmark_sdk::Client::connect(hallmark_sdk::Endpoints::coordinator(url))
        .await
        .map_err(crate::job::sdk_error)
}

/// Checks the coordinator's answer is a signed `T` and prints it.
fn print_statement<T: SignedPayload>(env: Envelope) -> anyhow::Result<ExitCode> {
    Signed::<T>::from_envelope(env.clone())
        .verify()
        .with_context(|| format!("the coordinator's {}", T::PAYLOAD_TYPE))?;
    print_envelope(&env)?;
    Ok(ExitCode::SUCCESS)
}

/// What `compute register` prints: the attestation job and the certificate that decided it.
#[derive(Debug, Clone, Serialize)]
pub struct AttestationSummary {
    pub node_id: String,
    pub job_id: String,
    /// `approved` or `rejected`.
    pub status: String,
    pub listed: bool,
    pub valid_stake: u64,
    pub invalid_stake: u64,
    pub total_stake: u64,
    pub certificate_votes: usize,
    /// Whether the approving stake reached 2/3 of validator stake.
    pub passed_two_thirds: bool,
}

impl From<&Attestation> for AttestationSummary {
    fn from(a: &Attestation) -> Self {
        let j = &a.job;
        Self {
            node_id: a.accepted.node_id.clone(),
            job_id: j.job_id.clone(),
            status: j.status.as_str().into(),
            listed: a.listing.listed,
            valid_stake: j.votes_valid_stake,
            invalid_stake: j.votes_invalid_stake,
            total_stake: j.total_stake,
            certificate_votes: j.certificate.as_ref().map_or(0, |c| c.votes.len()),
            passed_two_thirds: j.total_stake > 0
                && 3 * u128::from(j.votes_valid_stake) >= 2 * u128::from(j.total_stake),
        }
    }
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
    let pccs = a
        .pccs
        .as_deref()
        .map(|u| PccsFetcher::new(u, std::time::Duration::from_secs(20)))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let coordinator = NodeClient::new(&a.target.coordinator.url()?);
    let mut cache = hallmark_tee::collateral::CollateralCache::new(24 * 3600);
    let collateral = pccs.as_ref().map(|pccs| CollateralSource {
        pccs,
        cache: &mut cache,
    });
    let attestation = p
        .register_with(
            &coordinator,
            collateral,
            std::time::Duration::from_secs(a.timeout_secs),
        )
        .await?;
    let summary = AttestationSummary::from(&attestation);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{}: {} — job {} {}: {} valid / {} invalid of {} validator stake, {} signed votes in the certificate",
            summary.node_id,
            if summary.listed { "listed" } else { "NOT listed" },
            summary.job_id,
            summary.status,
            summary.valid_stake,
            summary.invalid_stake,
            summary.total_stake,
            summary.certificate_votes,
        );
    }
    Ok(if summary.listed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
