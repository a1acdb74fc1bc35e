//! A worker's whole life from the CLI, against a running network: `hallmark faucet`,
//! `stake`, `unstake`, `worker register|start|status`, `payments balance|claim|withdraw`.
//!
//! Every command reads the wallet from its keystore (`--keystore`, `HALLMARK_KEYSTORE`);
//! those that sign unlock it (password from `--password-file`, `HALLMARK_PASSWORD` or a
//! prompt). Each prints what changed (balances before and after, the ledger transaction);
//! `--json` prints one object instead. Exit 0 on success, 1 with `error: <code>: …` otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use hallmark_confidential::hint::{decrypt_balance, DecryptedBy};
use hallmark_confidential::{
    AeKey, CreditProof, DiscreteLog, ElGamalSecretKey, PubkeyProof, WithdrawalProof,
};
use hallmark_core::{Keypair, PublicKey};
use hallmark_ledger::payments::{credit_context, payment_key_context, withdrawal_context};
use hallmark_ledger::{ConfidentialAccount, Role, TxBody, TxReceipt};

use crate::job::sdk_error;
use hallmark_node::jobs::messages::JobStatus;
use hallmark_wallet::{Keystore, Wallet};
use rand::rngs::OsRng;
use serde_json::json;

use crate::wallet::{keystore_error, KeystoreArgs};

/// Where the ledger is.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// The ledger's base URL.
    #[arg(long, env = "HALLMARK_LEDGER", default_value = "http://127.0.0.1:7100")]
    ledger: String,
    #[command(flatten)]
    devnet: crate::network::DevnetArg,
}

impl LedgerArgs {
    /// The ledger's URL: the devnet's when `--devnet` is given, else `--ledger`.
    fn url(&self) -> anyhow::Result<String> {
        Ok(match self.devnet.info()? {
            Some(d) => d.ledger,
            None => self.ledger.clone(),
        })
    }
}

/// `hallmark faucet`
#[derive(Debug, Args)]
pub struct FaucetArgs {
    #[command(flatten)]
    wallet: KeystoreArgs,
    #[command(flatten)]
    ledger: LedgerArgs,
    /// Pay this address instead of the wallet's coldkey (no keystore needed).
    #[arg(long)]
    address: Option<PublicKey>,
}

/// `hallmark stake`
#[derive(Debug, Args)]
pub struct StakeArgs {
    #[command(flatten)]
    wallet: KeystoreArgs,
    #[command(flatten)]
    ledger: LedgerArgs,
    /// Tokens to bond from the coldkey's balance.
    #[arg(long)]
    amount: u64,
    /// The tier (the ledger lists its tiers at /v1/ledger/info: validator, cpu, gpu-a100, …).
    #[arg(long, default_value = "cpu")]
    tier: String,
}

/// `hallmark unstake`
#[derive(Debug, Args)]
pub struct UnstakeArgs {
    #[command(flatten)]
    wallet: KeystoreArgs,
    #[command(flatten)]
    ledger: LedgerArgs,
    /// Tokens to return to the coldkey.
    #[arg(long)]
    amount: u64,
}

/// `hallmark worker …`
#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// Register the wallet's hotkey as a worker (its stake must meet its tier's minimum) and
    /// its ElGamal payment key (with a proof it holds the secret).
    Register {
        #[command(flatten)]
        wallet: KeystoreArgs,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Run a worker node with the wallet's hotkey until Ctrl-C or SIGTERM: it serves its
    /// axon, sends heartbeats and proves the jobs it is given. The coldkey stays in the
    /// keystore; the hotkey seed is written (0600) into the node's data dir.
    Start(StartArgs),
    /// The wallet's worker as the ledger sees it: registration, stake, tier, lock, heartbeat.
    Status {
        #[command(flatten)]
        wallet: KeystoreArgs,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
}

/// `hallmark worker start`
#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    wallet: KeystoreArgs,
    #[command(flatten)]
    ledger: LedgerArgs,
    /// A node config for everything else (listen address, poll intervals, …).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The coordinator's base URL.
    #[arg(long, env = "HALLMARK_COORDINATOR")]
    coordinator: Option<String>,
    /// The coordinator's hotkey (rounds and jobs are only trusted from it).
    #[arg(long, env = "HALLMARK_COORDINATOR_HOTKEY")]
    coordinator_hotkey: Option<PublicKey>,
    /// The node's data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Write the bound address here once listening.
    #[arg(long)]
    addr_file: Option<PathBuf>,
}

/// `hallmark payments …`
#[derive(Debug, Subcommand)]
pub enum PaymentsCommand {
    /// Decrypt the private balance (from the owner's hint in O(1), else by baby-step
    /// giant-step) and show the coldkey's public balance.
    Balance {
        #[command(flatten)]
        wallet: KeystoreArgs,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Claim an approved job's payment: the ledger checks its vote certificate and credits
    /// the reward, encrypted, once.
    Claim {
        #[command(flatten)]
        wallet: KeystoreArgs,
        #[command(flatten)]
        ledger: LedgerArgs,
        /// The job id (`job-…`).
        #[arg(long)]
        job: String,
        /// The coordinator that ran the job.
        #[arg(
            long,
            env = "HALLMARK_COORDINATOR",
            default_value = "http://127.0.0.1:7200"
        )]
        coordinator: String,
    },
    /// Move part of the private balance to the coldkey's public balance, with a proof that
    /// the balance covers it.
    Withdraw {
        #[command(flatten)]
        wallet: KeystoreArgs,
        #[command(flatten)]
        ledger: LedgerArgs,
        /// Tokens to withdraw.
        #[arg(long)]
        amount: u64,
    },
}

/// One of the lifecycle commands.
#[derive(Debug)]
pub enum Lifecycle {
    Faucet(FaucetArgs),
    Stake(StakeArgs),
    Unstake(UnstakeArgs),
    Worker(WorkerCommand),
    Payments(PaymentsCommand),
}

/// Runs a lifecycle command.
pub fn run(cmd: Lifecycle) -> ExitCode {
    let res = crate::runtime().and_then(|rt| {
        rt.block_on(async move {
            match cmd {
                Lifecycle::Faucet(a) => faucet(a).await,
                Lifecycle::Stake(a) => stake(a).await,
                Lifecycle::Unstake(a) => unstake(a).await,
                Lifecycle::Worker(WorkerCommand::Register { wallet, ledger }) => {
                    register(wallet, ledger).await
                }
                Lifecycle::Worker(WorkerCommand::Status { wallet, ledger }) => {
                    status(wallet, ledger).await
                }
                Lifecycle::Worker(WorkerCommand::Start(a)) => start(a).await,
                Lifecycle::Payments(PaymentsCommand::Balance { wallet, ledger }) => {
                    balance(wallet, ledger).await
                }
                Lifecycle::Payments(PaymentsCommand::Claim {
                    wallet,
                    ledger,
                    job,
                    coordinator,
                }) => claim(wallet, ledger, &job, &coordinator).await,
                Lifecycle::Payments(PaymentsCommand::Withdraw {
                    wallet,
                    ledger,
                    amount,
                }) => withdraw(wallet, ledger, amount).await,
            }
        })
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", crate::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The wallet's public addresses, readable without the password.
fn addresses(a: &KeystoreArgs) -> anyhow::Result<(PublicKey, PublicKey)> {
    let ks = Keystore::read(&a.keystore).map_err(keystore_error)?;
    Ok((ks.coldkey, ks.hotkey))
}

/// The wallet's payment keys.
fn payment_keys(w: &Wallet) -> anyhow::Result<(ElGamalSecretKey, AeKey)> {
    let sk = ElGamalSecretKey::from_seed(w.elgamal_secret())
        .map_err(|e| anyhow!("degenerate_key: {e}"))?;
    Ok((sk, AeKey::from_seed(w.elgamal_secret())))
}

/// A ledger error as `code: message` (a remote refusal already reads that way).
/// The SDK client for a ledger-only command (faucet, stake).
async fn ledger_sdk(ledger: &LedgerArgs) -> anyhow::Result<hallmark_sdk::Client> {
    hallmark_sdk::Client::connect(hallmark_sdk::Endpoints::ledger(&ledger.url()?))
        .await
        .map_err(sdk_error)
}

async fn chain_id(l: &hallmark_sdk::Client) -> anyhow::Result<String> {
    l.chain_id().await.map_err(sdk_error)
}

/// Signs `body` with `key` and submits it.
async fn send(l: &hallmark_sdk::Client, key: &Keypair, body: TxBody) -> anyhow::Result<TxReceipt> {
    let kind = body.kind();
    l.submit_tx(key, body).await.map_err(|e| {
        anyhow!(
            "{}: the ledger refused {kind}: {e}",
            e.code().unwrap_or("refused")
        )
    })
}

async fn public_balance(l: &hallmark_sdk::Client, who: &PublicKey) -> anyhow::Result<u64> {
    Ok(l.account(who).await.map_err(sdk_error)?.balance)
}

fn emit(json_out: bool, value: serde_json::Value, text: &[String]) {
    if json_out {
        println!("{value}");
    } else {
        for line in text {
            println!("{line}");
        }
    }
}

async fn faucet(a: FaucetArgs) -> anyhow::Result<()> {
    let client = ledger_sdk(&a.ledger).await?;
    let to = match a.address {
        Some(addr) => addr,
        None => addresses(&a.wallet)?.0,
    };
    let before = client.account(&to).await.map_err(sdk_error)?.balance;
    let drip = client.faucet(&to).await.map_err(sdk_error)?;
    emit(
        a.wallet.json,
        json!({
            "address": to,
            "amount": drip.amount,
            "balance_before": before,
            "balance": drip.balance,
            "tx_seq": drip.receipt.seq,
            "tx_hash": drip.receipt.tx_hash,
        }),
        &[format!(
            "faucet: +{} to {to}: public balance {before} -> {} (ledger tx {})",
            drip.amount, drip.balance, drip.receipt.seq
        )],
    );
    Ok(())
}

/// What a coldkey-signed transaction did to the coldkey's public balance.
struct ColdkeyTx {
    hot: PublicKey,
    before: u64,
    after: u64,
    receipt: TxReceipt,
}

/// Unlocks the wallet, sends `body(hotkey)` signed by its coldkey, and reads the coldkey's
/// public balance before and after.
async fn coldkey_tx(
    wallet: &KeystoreArgs,
    l: &hallmark_sdk::Client,
    body: impl FnOnce(PublicKey) -> TxBody,
) -> anyhow::Result<ColdkeyTx> {
    let w = crate::wallet::open(wallet)?;
    let cold = w.coldkey();
    let hot = w.hotkey().public();
    let before = public_balance(l, &cold.public()).await?;
    let receipt = send(l, cold, body(hot)).await?;
    let after = public_balance(l, &cold.public()).await?;
    Ok(ColdkeyTx {
        hot,
        before,
        after,
        receipt,
    })
}

async fn stake(a: StakeArgs) -> anyhow::Result<()> {
    let client = ledger_sdk(&a.ledger).await?;
    let w = crate::wallet::open(&a.wallet)?;
    let cold = w.coldkey();
    let hot = w.hotkey().public();
    let before = client
        .account(&cold.public())
        .await
        .map_err(sdk_error)?
        .balance;
    let receipt = client
        .stake(cold, &hot, a.amount, &a.tier)
        .await
        .map_err(|e| {
            anyhow!(
                "{}: the ledger refused stake: {e}",
                e.code().unwrap_or("refused")
            )
        })?;
    let after = client
        .account(&cold.public())
        .await
        .map_err(sdk_error)?
        .balance;
    let info = client
        .stake_info(&hot)
        .await
        .map_err(sdk_error)?
        .ok_or_else(|| {
            anyhow!(
                "internal: the stake is not on the ledger after tx {}",
                receipt.seq
            )
        })?;
    emit(
        a.wallet.json,
        json!({
            "hotkey": hot,
            "tier": info.tier,
            "amount": a.amount,
            "balance_before": before,
            "balance": after,
            "staked": info.staked,
            "pending": info.pending,
            "locked_until_ms": info.locked_until_ms,
            "tx_seq": receipt.seq,
        }),
        &[
            format!("staked {} to {hot} in tier {}", a.amount, info.tier),
            format!("  public balance {before} -> {after}"),
            format!(
                "  bonded: {} registered + {} waiting for registration, locked until {}",
                info.staked,
                info.pending,
                wire_time(info.locked_until_ms)
            ),
            format!("  ledger tx {}", receipt.seq),
        ],
    );
    Ok(())
}

async fn unstake(a: UnstakeArgs) -> anyhow::Result<()> {
    let l = ledger_sdk(&a.ledger).await?;
    let ColdkeyTx {
        hot,
        before,
        after,
        receipt,
    } = coldkey_tx(&a.wallet, &l, |hotkey| TxBody::Unstake {
        hotkey,
        amount: a.amount,
    })
    .await?;
    emit(
        a.wallet.json,
        json!({"hotkey": hot, "amount": a.amount, "balance_before": before, "balance": after, "tx_seq": receipt.seq}),
        &[format!(
            "unstaked {} from {hot}: public balance {before} -> {after} (ledger tx {})",
            a.amount, receipt.seq
        )],
    );
    Ok(())
}

fn wire_time(ms: i64) -> String {
    hallmark_core::time::format_rfc3339(ms.div_euclid(1000))
}

async fn register(wallet: KeystoreArgs, ledger: LedgerArgs) -> anyhow::Result<()> {
    let w = crate::wallet::open(&wallet)?;
    let l = ledger_sdk(&ledger).await?;
    let chain = chain_id(&l).await?;
    let hot = w.hotkey();
    let mut lines = Vec::new();
    let mg = l.metagraph().await.map_err(sdk_error)?;
    let register_seq = match mg.neuron(&hot.public()) {
        Some(n) => {
            lines.push(format!(
                "{} is already registered as a {}",
                hot.public(),
                n.role.as_str()
            ));
            None
        }
        None => {
            let r = send(
                &l,
                w.coldkey(),
                TxBody::Register {
                    hotkey: hot.public(),
                    role: Role::Worker,
                    stake: 0,
                },
            )
            .await?;
            lines.push(format!(
                "registered {} as a worker (ledger tx {})",
                hot.public(),
                r.seq
            ));
            Some(r.seq)
        }
    };
    let (sk, _) = payment_keys(&w)?;
    let existing = l
        .confidential_account(&hot.public())
        .await
        .map_err(sdk_error)?;
    let key_seq = match existing {
        Some(acc) if acc.pubkey == sk.public() => {
            lines.push("payment key already registered".into());
            None
        }
        Some(_) => {
            return Err(anyhow!(
                "payment_key_mismatch: the ledger holds another payment key for {}",
                hot.public()
            ))
        }
        None => {
            let proof =
                PubkeyProof::prove(&sk, &payment_key_context(&chain, &hot.public()), &mut OsRng);
            let r = send(
                &l,
                hot,
                TxBody::RegisterPaymentKey {
                    pubkey: sk.public(),
                    proof,
                },
            )
            .await?;
            lines.push(format!(
                "payment key {} registered; private balance opened at 0 (ledger tx {})",
                sk.public().to_hex(),
                r.seq
            ));
            Some(r.seq)
        }
    };
    let n = l
        .metagraph()
        .await
        .map_err(sdk_error)?
        .neuron(&hot.public())
        .cloned()
        .ok_or_else(|| anyhow!("internal: not in the metagraph after registering"))?;
    lines.push(format!("  stake {} in tier {}", n.stake, n.tier));
    emit(
        wallet.json,
        json!({
            "hotkey": hot.public(),
            "uid": n.uid,
            "stake": n.stake,
            "tier": n.tier,
            "payment_key": sk.public(),
            "register_tx": register_seq,
            "payment_key_tx": key_seq,
        }),
        &lines,
    );
    Ok(())
}

async fn status(wallet: KeystoreArgs, ledger: LedgerArgs) -> anyhow::Result<()> {
    let (cold, hot) = addresses(&wallet)?;
    let l = ledger_sdk(&ledger).await?;
    let mg = l.metagraph().await.map_err(sdk_error)?;
    let stake = l.stake_info(&hot).await.map_err(sdk_error)?;
    let paykey = l.confidential_account(&hot).await.map_err(sdk_error)?;
    let public = public_balance(&l, &cold).await?;
    let neuron = mg.neuron(&hot);
    let v = json!({
        "coldkey": cold,
        "hotkey": hot,
        "public_balance": public,
        "registered": neuron.is_some(),
        "uid": neuron.map(|n| n.uid),
        "role": neuron.map(|n| n.role),
        "stake": neuron.map_or(0, |n| n.stake),
        "pending_stake": stake.as_ref().map_or(0, |s| s.pending),
        "tier": stake.as_ref().map(|s| s.tier.clone()),
        "locked_until_ms": stake.as_ref().map(|s| s.locked_until_ms),
        "axon": neuron.and_then(|n| n.axon.clone()),
        "active": neuron.is_some_and(|n| n.active),
        "last_heartbeat_ms": neuron.map(|n| n.last_heartbeat_ms),
        "payment_key": paykey.as_ref().map(|p| p.pubkey),
    });
    let mut lines = vec![
        format!("coldkey  {cold}  public balance {public}"),
        format!("hotkey   {hot}"),
    ];
    match neuron {
        Some(n) => {
            lines.push(format!(
                "  registered: uid {} as a {}, stake {} in tier {}",
                n.uid,
                n.role.as_str(),
                n.stake,
                n.tier
            ));
            lines.push(format!(
                "  {} (last heartbeat {}), axon {}",
                if n.active {
                    "active"
                } else {
                    "INACTIVE: gets no jobs"
                },
                if n.last_heartbeat_ms > 0 {
                    wire_time(n.last_heartbeat_ms)
                } else {
                    "never".into()
                },
                n.axon.as_deref().unwrap_or("not served")
            ));
        }
        None => lines.push("  not registered".into()),
    }
    if let Some(s) = &stake {
        lines.push(format!(
            "  stake locked until {}; {} bonded waiting for registration",
            wire_time(s.locked_until_ms),
            s.pending
        ));
    }
    lines.push(format!(
        "  payment key {}",
        if paykey.is_some() {
            "registered"
        } else {
            "not registered"
        }
    ));
    emit(wallet.json, v, &lines);
    Ok(())
}

async fn start(a: StartArgs) -> anyhow::Result<()> {
    let w = crate::wallet::open(&a.wallet)?;
    let mut cfg = hallmark_node::config::NodeConfig::load(a.config.as_deref())?;
    cfg.name = "worker".into();
    cfg.network.ledger_url = a.ledger.url()?;
    if let Some(d) = a.ledger.devnet.info()? {
        cfg.network.coordinator_url = d.coordinator;
        cfg.network.coordinator_hotkey = Some(d.coordinator_hotkey);
    }
    if let Some(c) = a.coordinator {
        cfg.network.coordinator_url = c;
    }
    if let Some(k) = a.coordinator_hotkey {
        cfg.network.coordinator_hotkey = Some(k);
    }
    if cfg.network.coordinator_hotkey.is_none() {
        return Err(anyhow!(
            "missing_coordinator_hotkey: pass --coordinator-hotkey (jobs are only trusted from a pinned coordinator)"
        ));
    }
    if let Some(d) = a.data_dir {
        cfg.data_dir = d;
    }
    if a.addr_file.is_some() {
        cfg.addr_file = a.addr_file;
    }
    // The coldkey never leaves the keystore: the hotkey must already be registered.
    cfg.network.coldkey_file = None;
    cfg.network.stake = 0;
    let key_path = cfg.key_path();
    let hot = w.hotkey();
    match std::fs::read_to_string(&key_path) {
        Ok(text) => {
            let on_disk = Keypair::from_seed_hex(text.trim())
                .with_context(|| format!("reading {}", key_path.display()))?;
            if on_disk.public() != hot.public() {
                return Err(anyhow!(
                    "key_mismatch: {} holds the key of {}, not this wallet's hotkey {}",
                    key_path.display(),
                    on_disk.public(),
                    hot.public()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            hallmark_node::run::write_secret(&key_path, &hot.seed_hex())?;
        }
        Err(e) => return Err(anyhow!("reading {}: {e}", key_path.display())),
    }
    crate::init_tracing("info");
    let node = hallmark_node::run_node(hallmark_node::config::RoleName::Worker, &cfg)
        .await
        .with_context(|| format!("starting the worker {}", hot.public()))?;
    eprintln!("worker {} serving at {}", hot.public(), node.url());
    crate::wait_for_stop_signal().await?;
    node.stop().await;
    Ok(())
}

async fn balance(wallet: KeystoreArgs, ledger: LedgerArgs) -> anyhow::Result<()> {
    let w = crate::wallet::open(&wallet)?;
    let l = ledger_sdk(&ledger).await?;
    let hot = w.hotkey().public();
    let (sk, ae) = payment_keys(&w)?;
    let (acc, private, how) = private_balance(&l, &hot, &sk, &ae).await?;
    let public = public_balance(&l, &w.coldkey().public()).await?;
    emit(
        wallet.json,
        json!({
            "hotkey": hot,
            "private_balance": private,
            "decrypted_by": how.as_str(),
            "public_balance": public,
            "coldkey": w.coldkey().public(),
            "ciphertext": acc.balance,
        }),
        &[
            format!(
                "private balance  {private}  (decrypted by {})",
                how.as_str()
            ),
            format!("public balance   {public}  ({})", w.coldkey().public()),
        ],
    );
    Ok(())
}

/// The private balance as the owner reads it now, and how it was decrypted.
async fn private_balance(
    l: &hallmark_sdk::Client,
    hot: &PublicKey,
    sk: &ElGamalSecretKey,
    ae: &AeKey,
) -> anyhow::Result<(ConfidentialAccount, u64, DecryptedBy)> {
    let acc = l
        .confidential_account(hot)
        .await
        .map_err(sdk_error)?
        .ok_or_else(|| {
            anyhow!("no_payment_key: {hot} has no payment key; run `hallmark worker register`")
        })?;
    let (v, how) = decrypt_balance(
        sk,
        ae,
        &acc.balance,
        acc.hint.as_ref(),
        DiscreteLog::default,
    )
    .map_err(|e| anyhow!("undecryptable: {e}"))?;
    Ok((acc, v, how))
}

async fn claim(
    wallet: KeystoreArgs,
    ledger: LedgerArgs,
    job_id: &str,
    coordinator: &str,
) -> anyhow::Result<()> {
    let w = crate::wallet::open(&wallet)?;
    let l = ledger_sdk(&ledger).await?;
    let hot = w.hotkey();
    let (sk, ae) = payment_keys(&w)?;
    let coordinator = match ledger.devnet.info()? {
        Some(d) => d.coordinator,
        None => coordinator.to_string(),
    };
    let job = hallmark_sdk::Client::connect(hallmark_sdk::Endpoints::coordinator(&coordinator))
        .await
        .map_err(sdk_error)?
        .job_status(job_id)
        .await
        .map_err(sdk_error)?;
    if job.status != JobStatus::Approved {
        return Err(anyhow!(
            "not_approved: job {job_id} is {}; only approved jobs are paid",
            job.status.as_str()
        ));
    }
    let certificate = job.certificate.clone().ok_or_else(|| {
        anyhow!("no_certificate: the coordinator has no certificate for {job_id}")
    })?;
    let result = job
        .signed_result()
        .ok_or_else(|| anyhow!("no_result: the coordinator has no signed result for {job_id}"))?;
    if job.worker != Some(hot.public()) {
        return Err(anyhow!(
            "not_your_job: {job_id} was proven by {}, not {}",
            job.worker.map_or("nobody".into(), |k| k.to_string()),
            hot.public()
        ));
    }
    let info = l.ledger_info().await.map_err(sdk_error)?;
    let chain = info.chain_id;
    let reward = info
        .params
        .map(|p| p.job_reward)
        .ok_or_else(|| anyhow!("ledger_unavailable: the ledger does not publish its job reward"))?;
    let (acc, before, _) = private_balance(&l, &hot.public(), &sk, &ae).await?;
    let ctx = credit_context(&chain, &hot.public(), job_id);
    let (credit, proof) = CreditProof::encrypt(&acc.pubkey, reward, &ctx, &mut OsRng);
    let after = before
        .checked_add(reward)
        .ok_or_else(|| anyhow!("overflow: the balance would overflow"))?;
    let receipt = send(
        &l,
        hot,
        TxBody::ClaimPayment {
            request: job.request.clone(),
            certificate,
            result,
            credit,
            proof,
            hint: Some(ae.encrypt(after, &mut OsRng)),
        },
    )
    .await?;
    let (_, now, _) = private_balance(&l, &hot.public(), &sk, &ae).await?;
    emit(
        wallet.json,
        json!({
            "job_id": job_id,
            "reward": reward,
            "private_balance_before": before,
            "private_balance": now,
            "nullifier": hallmark_ledger::payments::payment_nullifier(
                job_id,
                &hallmark_ledger::payments::request_job_id_and_nonce(&job.request)?.1,
            ),
            "tx_seq": receipt.seq,
        }),
        &[format!(
            "claimed {reward} for {job_id}: private balance {before} -> {now} (ledger tx {})",
            receipt.seq
        )],
    );
    Ok(())
}

async fn withdraw(wallet: KeystoreArgs, ledger: LedgerArgs, amount: u64) -> anyhow::Result<()> {
    let w = crate::wallet::open(&wallet)?;
    let l = ledger_sdk(&ledger).await?;
    let chain = chain_id(&l).await?;
    let hot = w.hotkey();
    let cold = w.coldkey().public();
    let (sk, ae) = payment_keys(&w)?;
    let (acc, before, _) = private_balance(&l, &hot.public(), &sk, &ae).await?;
    if amount > before {
        return Err(anyhow!(
            "insufficient_private_balance: cannot withdraw {amount}: the private balance is {before}"
        ));
    }
    let ctx = withdrawal_context(&chain, &hot.public());
    let (proof, _) = WithdrawalProof::prove(&sk, &acc.balance, before, amount, &ctx, &mut OsRng)
        .map_err(|e| anyhow!("{}: {e}", e.code()))?;
    let public_before = public_balance(&l, &cold).await?;
    let receipt = send(
        &l,
        hot,
        TxBody::Withdraw {
            amount,
            proof,
            hint: Some(ae.encrypt(before - amount, &mut OsRng)),
        },
    )
    .await?;
    let (_, private_after, _) = private_balance(&l, &hot.public(), &sk, &ae).await?;
    let public_after = public_balance(&l, &cold).await?;
    emit(
        wallet.json,
        json!({
            "amount": amount,
            "private_balance_before": before,
            "private_balance": private_after,
            "public_balance_before": public_before,
            "public_balance": public_after,
            "coldkey": cold,
            "tx_seq": receipt.seq,
        }),
        &[
            format!("withdrew {amount} to {cold} (ledger tx {})", receipt.seq),
            format!("  private balance {before} -> {private_after}"),
            format!("  public balance  {public_before} -> {public_after}"),
        ],
    );
    Ok(())
}
