//! `hallmark verify tdx | nvidia | chain`: the tee lane's verifiers on the command line.
//! Exit 0 only when accepted, 1 when rejected, 2 when the input cannot be read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::audit::{bad_input, report_verdict};
use anyhow::Context as _;
use hallmark_tee::nvidia::{self, EatContext, EatEvidence, EatExpectations, Jwks};
use hallmark_tee::receipt::{
    verify_receipt_for, ReceiptExpectations, UnsignedFields, VerificationReceipt,
};
use hallmark_tee::tdx::{self, TdxContext};
use hallmark_tee::{Profile, TdxPolicy, TrustRoots};

/// Arguments of `hallmark verify tdx`.
#[derive(Debug, clap::Args)]
pub struct VerifyTdxArgs {
    /// The quote: raw bytes, or hex text.
    #[arg(long)]
    quote: PathBuf,
    /// `QuoteCollateralV3` JSON for the quote's platform.
    #[arg(long)]
    collateral: PathBuf,
    /// Verify as of this unix time (default: now).
    #[arg(long)]
    now: Option<u64>,
    /// Policy TOML or JSON (default: UpToDate only, no advisories, debug off, 30-day collateral).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// `production` trusts Intel's root only; `devnet` also the public test root.
    #[arg(long, default_value = "production")]
    profile: Profile,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `hallmark verify nvidia`.
#[derive(Debug, clap::Args)]
pub struct VerifyNvidiaArgs {
    /// An NRAS response body (`[["JWT", overall], {"GPU-0": …}]`) or one compact JWT.
    #[arg(long)]
    token: PathBuf,
    /// The pinned JWKS, in the form NRAS publishes (P-384 keys with x5c).
    #[arg(long)]
    jwks: PathBuf,
    /// The nonce the tokens must carry, hex.
    #[arg(long)]
    nonce: String,
    /// Verify as of this unix time (default: now).
    #[arg(long)]
    now: Option<u64>,
    /// The number of GPUs that must be attested.
    #[arg(long)]
    gpus: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `hallmark verify chain`.
#[derive(Debug, clap::Args)]
pub struct VerifyChainArgs {
    /// A proxy response (with `verification_receipt`) or the receipt alone.
    #[arg(long)]
    receipt: PathBuf,
    /// The key the receipt must be signed with: hex public key, signing address, or SS58.
    #[arg(long)]
    pubkey: Option<String>,
    /// The nonce you sent: a receipt for any other nonce is refused (a replay).
    #[arg(long)]
    nonce: Option<String>,
    /// The model you asked about: a receipt for any other model is refused.
    #[arg(long)]
    model: Option<String>,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
}

fn now_or(now: Option<u64>) -> u64 {
    now.unwrap_or_else(|| u64::try_from(hallmark_core::time::now_unix()).unwrap_or(0))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// A quote file is raw bytes, or hex text (as `dcap-qvl` samples and many APIs ship it).
fn quote_bytes(raw: Vec<u8>) -> Vec<u8> {
    let text = std::str::from_utf8(&raw).map(str::trim).unwrap_or("");
    match hex::decode(text.trim_start_matches("0x")) {
        Ok(b) if !text.is_empty() => b,
        _ => raw,
    }
}

/// `hallmark verify tdx`.
pub fn verify_tdx(a: VerifyTdxArgs) -> ExitCode {
    let parsed = (|| {
        let quote = quote_bytes(read(&a.quote)?);
        let collateral = tdx::parse_collateral(&read(&a.collateral)?)?;
        let policy = match &a.policy {
            None => TdxPolicy::default(),
            Some(p) => TdxPolicy::parse(
                &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            )?,
        };
        let roots = TrustRoots::for_profile(a.profile)?;
        Ok::<_, anyhow::Error>((quote, collateral, policy, roots))
    })();
    let (quote, collateral, policy, roots) = match parsed {
        Ok(v) => v,
        Err(e) => return bad_input(e),
    };
    let out = tdx::verify_quote(
        &quote,
        &collateral,
        &TdxContext {
            now: now_or(a.now),
            roots: &roots,
            policy: &policy,
        },
    );
    let json = a.json.then(|| {
        let s = out.summary.as_ref();
        serde_json::json!({
            "tee": s.map(|s| s.tee.clone()),
            "status": s.map(|s| s.status.clone()),
            "advisory_ids": s.map(|s| s.advisory_ids.clone()).unwrap_or_default(),
            "debug": s.map(|s| s.debug),
            "td_attributes": s.map(|s| s.td_attributes.clone()),
            "mr_td": s.map(|s| s.mr_td.clone()),
            "rtmr": s.map(|s| s.rtmr.clone()),
            "report_data": s.map(|s| s.report_data.clone()),
            "root": s.map(|s| s.root.clone()),
            "accepted": out.verdict.accepted,
            "rejection": out.verdict.rejection,
            "checks": out.verdict.checks,
        })
    });
    if !a.json {
        if let Some(s) = &out.summary {
            println!(
                "{} quote: status {} advisories {:?} debug {} mr_td {}",
                s.tee, s.status, s.advisory_ids, s.debug, s.mr_td
            );
        }
    }
    report_verdict(&out.verdict, json, "quote")
}

/// `hallmark verify nvidia`.
pub fn verify_nvidia(a: VerifyNvidiaArgs) -> ExitCode {
    let parsed = (|| {
        let ev = EatEvidence::parse(&read(&a.token)?)?;
        let jwks = Jwks::parse(&read(&a.jwks)?)?;
        if hex::decode(&a.nonce).is_err() {
            anyhow::bail!("--nonce must be hex");
        }
        Ok::<_, anyhow::Error>((ev, jwks))
    })();
    let (ev, jwks) = match parsed {
        Ok(v) => v,
        Err(e) => return bad_input(e),
    };
    let out = nvidia::verify_eat(
        &ev,
        &EatExpectations {
            nonce_hex: a.nonce.clone(),
            capacity: None,
            gpu_count: a.gpus,
        },
        &EatContext {
            now: now_or(a.now),
            jwks: &jwks,
            leeway_secs: 0,
        },
    );
    let json = a.json.then(|| {
        serde_json::json!({
            "overall_result": out.overall_result,
            "gpus": out.gpus,
            "accepted": out.verdict.accepted,
            "rejection": out.verdict.rejection,
            "checks": out.verdict.checks,
        })
    });
    report_verdict(&out.verdict, json, "NVIDIA evidence")
}

/// `hallmark verify chain`.
pub fn verify_chain(a: VerifyChainArgs) -> ExitCode {
    let parsed = (|| {
        let value: serde_json::Value =
            serde_json::from_slice(&read(&a.receipt)?).context("the file is not JSON")?;
        // A whole proxy response: its unsigned nonce and model are checked against the
        // signed ones too.
        let (receipt, response) = match value.get("verification_receipt") {
            Some(r) => (r.clone(), Some(UnsignedFields::of_response(&value))),
            None => (value, None),
        };
        let receipt = serde_json::from_value::<VerificationReceipt>(receipt)
            .context("the file holds no verification receipt")?;
        Ok::<_, anyhow::Error>((receipt, response))
    })();
    let (receipt, response) = match parsed {
        Ok(r) => r,
        Err(e) => return bad_input(e),
    };
    let v = verify_receipt_for(
        &receipt,
        &ReceiptExpectations {
            pinned: a.pubkey.as_deref(),
            nonce: a.nonce.as_deref(),
            model: a.model.as_deref(),
            response: response.as_ref(),
        },
    );
    if !a.json {
        let p = &receipt.payload;
        println!(
            "receipt for nonce {} model {}: result {} ({} instance(s), {} UpToDate, {} bound)",
            p.nonce,
            p.model,
            p.result,
            p.total_instances,
            p.tdx_uptodate_instances,
            p.binding_verified_instances
        );
    }
    let json = a.json.then(|| serde_json::json!(v));
    report_verdict(&v, json, "receipt")
}

/// Arguments of `hallmark attest-proxy`.
#[derive(Debug, clap::Args)]
pub struct AttestProxyArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8700")]
    listen: std::net::SocketAddr,
    /// The upstream that lists instances and serves their evidence.
    #[arg(long)]
    upstream: String,
    /// `production` (default) trusts only Intel's root and the configured JWKS and attests
    /// itself through configfs-tsm; `devnet` also trusts the public test root.
    #[arg(long, default_value = "production")]
    profile: Profile,
    /// TOML: `policy = {…}` (see `verify tdx --policy`), `nvidia_jwks = "FILE"`,
    /// `key_file = "FILE"` (hex seed of the receipt keys; created if missing),
    /// `upstream_timeout_secs = 10`, `data_dir = "DIR"` (where the receipt log's SQLite
    /// store lives; default: the key file's directory when `key_file` is set, else
    /// `--data-dir`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the proxy keeps its receipt key and receipt log when the configuration names
    /// neither (never the current directory itself).
    #[arg(long, default_value = ".hallmark/attest-proxy")]
    data_dir: PathBuf,
}

/// The proxy's configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ProxyFileConfig {
    policy: Option<TdxPolicy>,
    nvidia_jwks: Option<PathBuf>,
    key_file: Option<PathBuf>,
    upstream_timeout_secs: Option<u64>,
    data_dir: Option<PathBuf>,
}

/// `hallmark attest-proxy`.
pub async fn attest_proxy(a: AttestProxyArgs) -> anyhow::Result<ExitCode> {
    let file: ProxyFileConfig = match &a.config {
        None => ProxyFileConfig::default(),
        Some(p) => toml::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("{} is not a proxy configuration", p.display()))?,
    };
    let policy = file.policy.unwrap_or_default();
    policy.validate()?;
    let jwks = match &file.nvidia_jwks {
        Some(p) => Jwks::parse(&read(p)?)?,
        None => Jwks { keys: Vec::new() },
    };
    if jwks.keys.is_empty() && a.profile == Profile::Production {
        tracing::warn!("no nvidia_jwks configured: GPU evidence will be rejected (fail closed)");
    }
    let default_dir = file.data_dir.clone().unwrap_or_else(|| a.data_dir.clone());
    std::fs::create_dir_all(&default_dir)
        .with_context(|| format!("creating {}", default_dir.display()))?;
    let key_path = file
        .key_file
        .clone()
        .unwrap_or_else(|| default_dir.join("attest-proxy.key"));
    let key = hallmark_node::run::load_or_create_key(&key_path)?;
    let signer = hallmark_tee::receipt::ReceiptSigner::from_seed(&key.seed())?;
    let state = hallmark_attest::proxy::ProxyState::new(
        &a.upstream,
        a.profile,
        policy,
        jwks,
        signer,
        std::time::Duration::from_secs(file.upstream_timeout_secs.unwrap_or(10)),
    )
    .map_err(anyhow::Error::msg)?;
    let data_dir = match (&file.data_dir, &file.key_file) {
        (Some(d), _) => d.clone(),
        (None, Some(k)) => k
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".")),
        (None, None) => default_dir,
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let db = data_dir.join("attest-proxy.sqlite");
    let store = hallmark_store::Store::open(&db)
        .await
        .with_context(|| format!("opening the receipt log {}", db.display()))?;
    let log = hallmark_store::TransparencyLog::open(&store).await?;
    let state = state.with_log(log, key);
    let router = hallmark_attest::proxy::proxy_router(std::sync::Arc::new(state));
    let banner = format!("attest-proxy ({}) in front of {}", a.profile, a.upstream);
    serve_until_stopped(a.listen, router, &banner).await
}

/// Arguments of `hallmark attest-upstream`.
#[derive(Debug, clap::Args)]
pub struct AttestUpstreamArgs {
    /// Serve synthetic instances from the devnet test root of trust (the only mode for now).
    #[arg(long)]
    simulated: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8701")]
    listen: std::net::SocketAddr,
    /// The model the instances serve.
    #[arg(long, default_value = "hallmark/test-model")]
    model: String,
    /// How many instances.
    #[arg(long, default_value_t = 2)]
    instances: usize,
    /// GPUs (H100) per instance; 0 for CPU-only TDs.
    #[arg(long, default_value_t = 1)]
    gpus: u32,
    /// Make instance N misbehave: `N:debug`, `N:wrong_nonce`, `N:stale_tcb`,
    /// `N:bad_gpu_token`, `N:missing_gpu` (repeatable).
    #[arg(long = "misbehave")]
    misbehave: Vec<String>,
}

/// `hallmark attest-upstream --simulated`.
pub async fn attest_upstream(a: AttestUpstreamArgs) -> anyhow::Result<ExitCode> {
    use hallmark_tee::simulate::{Misbehaviour, SimulatedInstance};
    if !a.simulated {
        anyhow::bail!(
            "only --simulated is implemented: real upstreams are served by their operators"
        );
    }
    let mut behaviours = vec![Misbehaviour::default(); a.instances];
    for m in &a.misbehave {
        let (n, what) = m
            .split_once(':')
            .with_context(|| format!("--misbehave {m:?}: expected N:KIND"))?;
        let n: usize = n.parse().with_context(|| format!("--misbehave {m:?}: N"))?;
        let b = behaviours
            .get_mut(n)
            .with_context(|| format!("--misbehave {m:?}: there are {} instances", a.instances))?;
        b.add(what)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--misbehave {m:?}"))?;
    }
    let instances = behaviours
        .into_iter()
        .enumerate()
        .map(|(i, b)| SimulatedInstance::new(&format!("sim-{i}"), &a.model, a.gpus, b))
        .collect();
    let state = hallmark_attest::proxy::SimulatedUpstream {
        root: hallmark_tee::testroot::TestRootOfTrust::devnet()?,
        instances,
    };
    let router = hallmark_attest::proxy::simulated_upstream_router(std::sync::Arc::new(state));
    let banner = format!(
        "attest-upstream (simulated, devnet test root): {} instance(s) of {}",
        a.instances, a.model
    );
    serve_until_stopped(a.listen, router, &banner).await
}

/// Binds `listen`, prints `banner` with the bound address, serves until SIGINT/SIGTERM.
async fn serve_until_stopped(
    listen: std::net::SocketAddr,
    router: axum::Router,
    banner: &str,
) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    println!("{banner}: listening on http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = crate::wait_for_stop_signal().await;
        let _ = stop.send(true);
    });
    // The same connection limits (timeouts, a cap) and JSON errors as every node.
    hallmark_node::run::serve(listener, router, stopped).await;
    Ok(ExitCode::SUCCESS)
}
