//! `hallmark build …`: the build lane's tools. Read a wasm's SEP-46/SEP-58 meta, rebuild a
//! recipe locally in the sandbox (offline), import build images, and ask a network to verify
//! a wasm and show what it decided.
//!
//! Exit codes: `meta` 0, 3 when the wasm has no `contractmetav0` section, 2 for input that is
//! not wasm or whose meta is malformed; `rebuild` 0 when it built (and, compared with a wasm,
//! verified), 1 mismatched or unverified, 2 could not run; `verify`/`status` 0 verified,
//! 1 mismatched or unverified, 3 still open (without `--wait`), 2 could not finish. With
//! `--json` every error is `{"error":{"code","message"}}` on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use hallmark_build::host_images;
use hallmark_build::{ImageConfig, ImageStore, MemoryBlobs, Rebuilder, Recipe, SandboxPolicy};
use hallmark_node::builds::{VerificationView, WasmView};
use serde_json::{json, Value};

use crate::network::CoordinatorArg;
use crate::stark::stage_spinner;

/// `hallmark build …`
#[derive(Debug, Subcommand)]
pub enum BuildCommand {
    /// Print a wasm's contract meta: every entry in file order, the SEP-58 recipe, toolchain.
    Meta(MetaArgs),
    /// Rebuild a recipe here, offline, in the sandbox, and write the wasm.
    Rebuild(RebuildArgs),
    /// Ask a network to verify a wasm: its recipe comes from its meta, the ledger's build-info
    /// registry, or (with --source) a search over the network's candidate recipes.
    Verify(VerifyArgs),
    /// Show a verification by id, or every verification of a wasm by its SHA-256.
    Status(StatusArgs),
    /// Build images: import a root filesystem or an OCI layout, list the store.
    #[command(subcommand)]
    Image(ImageCommand),
    /// The ledger's build-info registry: read it, approve a manager set (council), write a
    /// recipe (manager).
    #[command(subcommand)]
    Registry(RegistryCommand),
}

/// Where the ledger is.
#[derive(Debug, Args)]
pub struct LedgerArg {
    /// The ledger's base URL.
    #[arg(long, env = "HALLMARK_LEDGER", default_value = "http://127.0.0.1:7100")]
    ledger: String,
    #[command(flatten)]
    devnet: crate::network::DevnetArg,
}

impl LedgerArg {
    fn url(&self) -> anyhow::Result<String> {
        Ok(match self.devnet.info()? {
            Some(d) => d.ledger,
            None => self.ledger.clone(),
        })
    }
}

/// `hallmark build registry …`
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// The recipe a build manager recorded for a wasm.
    Show {
        #[command(flatten)]
        ledger: LedgerArg,
        wasm_sha256: String,
        #[arg(long)]
        json: bool,
    },
    /// Who may write the registry, and the council that decides it.
    Managers {
        #[command(flatten)]
        ledger: LedgerArg,
        #[arg(long)]
        json: bool,
    },
    /// As a council member: sign an approval of a manager set as version N (prints the
    /// signed envelope; collect k of them for `set-managers`).
    Approve {
        #[command(flatten)]
        ledger: LedgerArg,
        #[arg(long)]
        version: u64,
        /// A manager's hotkey (SS58); repeat for each.
        #[arg(long = "manager")]
        managers: Vec<hallmark_core::PublicKey>,
        /// The council member's key (hex seed file).
        #[arg(long)]
        key: PathBuf,
    },
    /// Submit a manager set with k council approvals (files written by `approve`).
    SetManagers {
        #[command(flatten)]
        ledger: LedgerArg,
        #[arg(long)]
        version: u64,
        #[arg(long = "manager")]
        managers: Vec<hallmark_core::PublicKey>,
        /// An approval envelope file; repeat for each.
        #[arg(long = "approval")]
        approvals: Vec<PathBuf>,
        /// The key that signs the transaction (hex seed file; any key).
        #[arg(long)]
        key: PathBuf,
    },
    /// As a build manager: record the recipe (a JSON file `{image, args, opts,
    /// source_sha256, …}`) of a wasm.
    Set {
        #[command(flatten)]
        ledger: LedgerArg,
        wasm_sha256: String,
        #[arg(long)]
        recipe: PathBuf,
        /// The manager's key (hex seed file).
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct MetaArgs {
    /// The wasm file.
    file: PathBuf,
    /// Print JSON: `{sha256, entries, recipe, rsver, rssdkver, cliver}`.
    #[arg(long)]
    json: bool,
}

/// The image store the CLI uses.
#[derive(Debug, Args)]
pub struct ImagesArg {
    /// The image store directory.
    #[arg(long, env = "HALLMARK_IMAGES", default_value = ".hallmark/images")]
    images: PathBuf,
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The recipe: a wasm whose meta holds it (the rebuild is then compared with that wasm),
    /// or a JSON file `{image, args, opts, source_sha256, …}`.
    #[arg(long)]
    recipe: Option<PathBuf>,
    /// The source archive (.tar or .tar.gz with one top-level directory).
    #[arg(long)]
    source: PathBuf,
    /// The image digest (`sha256:…`) to build in; overrides the recipe's `bldimg`.
    #[arg(long)]
    image: Option<String>,
    /// Where the rebuilt wasm goes.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    images: ImagesArg,
    /// CPU-seconds limit.
    #[arg(long, default_value_t = 300)]
    cpu_secs: u64,
    /// Wall-clock limit, seconds.
    #[arg(long, default_value_t = 600)]
    wall_secs: u64,
    /// Address-space limit, MiB.
    #[arg(long, default_value_t = 4096)]
    memory_mib: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    coordinator: CoordinatorArg,
    /// The wasm.
    file: PathBuf,
    /// The source archive its recipe names (else the network must have it already).
    #[arg(long)]
    source: Option<PathBuf>,
    /// Wait until the network decides, showing progress.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    coordinator: CoordinatorArg,
    /// A verification id (`ver-…`) or a wasm's SHA-256.
    id: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `hallmark build image …`
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import a root filesystem directory (with --entrypoint) or an OCI image layout; prints
    /// the digest a recipe's `bldimg` pins.
    Import(ImportArgs),
    /// List the stored images.
    List(ImagesArg),
    /// Import an image made from this machine's own tools: `wat` (wabt) or `c` (clang).
    Host(HostArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A root filesystem directory, or an OCI image layout (a directory with `oci-layout`).
    dir: PathBuf,
    /// For a directory: the entry point inside the image (repeat for fixed arguments).
    #[arg(long)]
    entrypoint: Vec<String>,
    /// For a directory: `KEY=VALUE` environment of builds in it.
    #[arg(long)]
    env: Vec<String>,
    #[command(flatten)]
    images: ImagesArg,
}

#[derive(Debug, Args)]
pub struct HostArgs {
    /// `wat` or `c`.
    kind: String,
    #[command(flatten)]
    images: ImagesArg,
}

/// A failure with a code, printed as `{"error":{code,message}}` under --json.
struct Failure {
    exit: u8,
    code: String,
    message: String,
}

impl Failure {
    fn new(exit: u8, code: &str, message: impl Into<String>) -> Self {
        Self {
            exit,
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::new(2, "failed", crate::error_chain(&e))
    }
}

impl From<hallmark_sdk::SdkError> for Failure {
    fn from(e: hallmark_sdk::SdkError) -> Self {
        let code = match &e {
            hallmark_sdk::SdkError::Usage(_) => "usage".to_string(),
            other => other.code().unwrap_or("unreachable").to_string(),
        };
        Failure {
            exit: 2,
            code,
            message: e.to_string(),
        }
    }
}

impl From<hallmark_node::ClientError> for Failure {
    fn from(e: hallmark_node::ClientError) -> Self {
        let code = e.code().unwrap_or("unreachable").to_string();
        Failure {
            exit: 2,
            code,
            message: e.to_string(),
        }
    }
}

fn finish(res: Result<ExitCode, Failure>, json: bool) -> ExitCode {
    match res {
        Ok(c) => c,
        Err(f) => {
            if json {
                println!(
                    "{}",
                    json!({"error": {"code": f.code, "message": f.message}})
                );
            } else {
                eprintln!("error: {} ({})", f.message, f.code);
            }
            ExitCode::from(f.exit)
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::new(2, "io_error", format!("{}: {e}", path.display())))
}

/// Runs a `hallmark build` command.
pub fn run(cmd: BuildCommand) -> ExitCode {
    match cmd {
        BuildCommand::Meta(a) => {
            let json = a.json;
            finish(meta(a), json)
        }
        BuildCommand::Rebuild(a) => {
            let json = a.json;
            finish(rebuild(a), json)
        }
        BuildCommand::Verify(a) => {
            let json = a.json;
            finish(with_runtime(verify(a)), json)
        }
        BuildCommand::Status(a) => {
            let json = a.json;
            finish(with_runtime(status(a)), json)
        }
        BuildCommand::Image(c) => finish(image(c), false),
        BuildCommand::Registry(c) => {
            let json = matches!(
                c,
                RegistryCommand::Show { json: true, .. }
                    | RegistryCommand::Managers { json: true, .. }
            );
            finish(with_runtime(registry(c)), json)
        }
    }
}

async fn registry(c: RegistryCommand) -> Result<ExitCode, Failure> {
    use hallmark_ledger::{BuildManagersApproval, TxBody};
    use hallmark_node::http_ledger::HttpLedger;
    let key_of = |p: &Path| {
        hallmark_node::run::load_key(p)
            .map_err(|e| Failure::new(2, "bad_key", format!("{}: {e}", p.display())))
    };
    let refused = |e: hallmark_ledger::LedgerError| Failure::new(1, e.code(), e.to_string());
    match c {
        RegistryCommand::Show {
            ledger,
            wasm_sha256,
            json,
        } => {
            let l = HttpLedger::new(&ledger.url()?);
            let info = l
                .build_info(&wasm_sha256)
                .await
                .map_err(refused)?
                .ok_or_else(|| {
                    Failure::new(1, "not_found", format!("no build info for {wasm_sha256}"))
                })?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&info).unwrap_or_default()
                );
            } else {
                println!(
                    "{}  recorded by {} (ledger tx {})",
                    info.wasm_sha256, info.manager, info.seq
                );
                println!(
                    "{}",
                    serde_json::to_string_pretty(&info.recipe).unwrap_or_default()
                );
            }
        }
        RegistryCommand::Managers { ledger, json } => {
            let l = HttpLedger::new(&ledger.url()?);
            let m = l.build_managers().await.map_err(refused)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&m).unwrap_or_default());
            } else {
                println!(
                    "version {}; council {} of {}",
                    m.version,
                    m.threshold,
                    m.council.len()
                );
                for k in &m.managers {
                    println!("  manager {k}");
                }
            }
        }
        RegistryCommand::Approve {
            ledger,
            version,
            managers,
            key,
        } => {
            let l = HttpLedger::new(&ledger.url()?);
            let chain_id = l.chain_id().await.map_err(refused)?;
            let approval = BuildManagersApproval {
                chain_id,
                version,
                managers,
            };
            let signed = hallmark_core::Signed::sign(&approval, &key_of(&key)?)
                .map_err(|e| Failure::new(2, "signing_failed", e.to_string()))?;
            println!(
                "{}",
                serde_json::to_string(signed.envelope()).unwrap_or_default()
            );
        }
        RegistryCommand::SetManagers {
            ledger,
            version,
            managers,
            approvals,
            key,
        } => {
            let l = HttpLedger::new(&ledger.url()?);
            let chain_id = l.chain_id().await.map_err(refused)?;
            let mut envs = Vec::new();
            for p in &approvals {
                let env: hallmark_core::Envelope =
                    serde_json::from_slice(&read(p)?).map_err(|e| {
                        Failure::new(2, "invalid_approval", format!("{}: {e}", p.display()))
                    })?;
                envs.push(env);
            }
            let body = TxBody::SetBuildManagers {
                version,
                managers,
                approvals: envs,
            };
            let r = hallmark_node::registration::submit_tx(&l, &chain_id, &key_of(&key)?, body)
                .await
                .map_err(refused)?;
            println!("build managers version {version} set (ledger tx {})", r.seq);
        }
        RegistryCommand::Set {
            ledger,
            wasm_sha256,
            recipe,
            key,
        } => {
            let l = HttpLedger::new(&ledger.url()?);
            let chain_id = l.chain_id().await.map_err(refused)?;
            let recipe_json: Value = serde_json::from_slice(&read(&recipe)?).map_err(|e| {
                Failure::new(2, "invalid_recipe", format!("{}: {e}", recipe.display()))
            })?;
            let parsed: Recipe = serde_json::from_value(recipe_json.clone())
                .map_err(|e| Failure::new(2, "invalid_recipe", e.to_string()))?;
            parsed
                .check()
                .map_err(|e| Failure::new(2, e.code(), e.to_string()))?;
            let body = TxBody::SetBuildInfo {
                wasm_sha256: wasm_sha256.clone(),
                recipe: recipe_json,
            };
            let r = hallmark_node::registration::submit_tx(&l, &chain_id, &key_of(&key)?, body)
                .await
                .map_err(refused)?;
            println!("recorded the recipe of {wasm_sha256} (ledger tx {})", r.seq);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn with_runtime(
    fut: impl std::future::Future<Output = Result<ExitCode, Failure>>,
) -> Result<ExitCode, Failure> {
    crate::runtime()?.block_on(fut)
}

/// The recipe fields `build meta` prints.
fn recipe_json(r: &Recipe) -> Value {
    json!({
        "image": r.image,
        "args": r.args,
        "opts": r.opts,
        "source_sha256": r.source_sha256,
        "source_uri": r.source_uri,
        "source_repo": r.source_repo,
        "source_rev": r.source_rev,
    })
}

fn meta(a: MetaArgs) -> Result<ExitCode, Failure> {
    let wasm = read(&a.file)?;
    let m = hallmark_build::inspect(&wasm).map_err(|e| {
        Failure::new(
            u8::try_from(e.exit_code()).unwrap_or(2),
            e.code(),
            format!("{}: {e}", a.file.display()),
        )
    })?;
    if a.json {
        let out = json!({
            "sha256": m.sha256,
            "entries": m.entries,
            "recipe": recipe_json(&m.recipe),
            "rsver": m.rsver,
            "rssdkver": m.rssdkver,
            "cliver": m.cliver,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    println!("sha256   {}", m.sha256);
    println!("entries  {} (file order)", m.entries.len());
    for e in &m.entries {
        println!("  {} = {}", e.key, e.val);
    }
    let r = &m.recipe;
    let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    println!(
        "recipe   {}",
        if r.is_complete() {
            "complete"
        } else {
            "incomplete (needs bldimg and source_sha256)"
        }
    );
    println!("  image          {}", show(&r.image));
    println!("  command        {}", r.argv().join(" "));
    println!("  source_sha256  {}", show(&r.source_sha256));
    println!("  source_uri     {}", show(&r.source_uri));
    if r.source_repo.is_some() || r.source_rev.is_some() {
        println!(
            "  source_repo    {} (before SEP-58 v0.4.0)",
            show(&r.source_repo)
        );
        println!("  source_rev     {}", show(&r.source_rev));
    }
    println!("rsver    {}", show(&m.rsver));
    println!("rssdkver {}", show(&m.rssdkver));
    println!("cliver   {}", show(&m.cliver));
    Ok(ExitCode::SUCCESS)
}

fn rebuild(a: RebuildArgs) -> Result<ExitCode, Failure> {
    let source = read(&a.source)?;
    let source_sha = hallmark_build::sha256_hex(&source);
    let (mut recipe, compare) = match &a.recipe {
        None => (Recipe::default(), None),
        Some(p) => {
            let bytes = read(p)?;
            if bytes.starts_with(b"\0asm") {
                let m = hallmark_build::inspect(&bytes)
                    .map_err(|e| Failure::new(2, e.code(), e.to_string()))?;
                (m.recipe, Some(bytes))
            } else {
                let r: Recipe = serde_json::from_slice(&bytes).map_err(|e| {
                    Failure::new(2, "invalid_recipe", format!("{}: {e}", p.display()))
                })?;
                (r, None)
            }
        }
    };
    if let Some(digest) = &a.image {
        let name = recipe
            .image
            .as_deref()
            .and_then(|i| i.rsplit_once('@').map(|(n, _)| n.to_string()))
            .unwrap_or_else(|| "localhost/hallmark/local".into());
        recipe.image = Some(format!("{name}@{digest}"));
    }
    match &recipe.source_sha256 {
        Some(s) if *s != source_sha => {
            return Err(Failure::new(
                1,
                "source_mismatch",
                format!(
                    "{} hashes to {source_sha}; the recipe names {s}",
                    a.source.display()
                ),
            ))
        }
        _ => recipe.source_sha256 = Some(source_sha),
    }
    recipe
        .check()
        .map_err(|e| Failure::new(2, e.code(), e.to_string()))?;
    let mut blobs = MemoryBlobs::default();
    blobs.insert(source);
    let expected = match &compare {
        Some(w) => blobs.insert(w.clone()),
        None => "0".repeat(64),
    };
    let policy = SandboxPolicy {
        cpu_secs: a.cpu_secs,
        wall_secs: a.wall_secs,
        memory_bytes: a.memory_mib.saturating_mul(1 << 20),
        ..SandboxPolicy::default()
    };
    let rebuilder = Rebuilder::new(ImageStore::new(&a.images.images), Arc::new(blobs), policy);
    let bar = stage_spinner("rebuild:", a.json);
    bar.set_message(format!("{} in the sandbox", recipe.argv().join(" ")));
    let report = rebuilder.rebuild(&expected, &recipe);
    bar.finish_and_clear();
    if let Some(w) = &report.wasm {
        std::fs::write(&a.out, w)
            .map_err(|e| Failure::new(2, "io_error", format!("{}: {e}", a.out.display())))?;
    }
    let o = &report.outcome;
    // Without a wasm to compare with, a build that produced one is a success.
    let (status, ok) = match (&compare, report.wasm.is_some()) {
        (None, true) => ("built", true),
        (None, false) => ("unverified", false),
        (Some(_), _) => (
            o.status.as_str(),
            o.status == hallmark_build::BuildStatus::Verified,
        ),
    };
    if a.json {
        let out = json!({
            "status": status,
            "match": o.match_kind,
            "rebuilt_sha256": report.wasm.as_deref().map(hallmark_build::sha256_hex),
            "reason": o.reason.map(|r| r.code()),
            "detail": report.detail,
            "image_digest": report.image_digest,
            "policy_digest": report.policy_digest,
            "elapsed_ms": report.elapsed_ms,
            "out": report.wasm.as_ref().map(|_| a.out.display().to_string()),
            "log": report.log,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        if !report.log.is_empty() {
            eprintln!("--- build log (end) ---\n{}--- end ---", report.log);
        }
        println!("{status}: {}", report.detail);
        if let Some(w) = &report.wasm {
            println!(
                "wrote {} ({} bytes, sha256 {})",
                a.out.display(),
                w.len(),
                hallmark_build::sha256_hex(w)
            );
        }
        if let Some(r) = o.reason {
            println!("reason: {}", r.code());
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn exit_of(status: &str) -> ExitCode {
    match status {
        "verified" => ExitCode::SUCCESS,
        "queued" | "building" => ExitCode::from(3),
        _ => ExitCode::from(1),
    }
}

fn print_view(v: &VerificationView) {
    println!("{}  {}", v.verification_id, v.status.to_uppercase());
    println!("  wasm           {}", v.wasm_sha256);
    if let Some(m) = &v.match_kind {
        println!("  match          {m}");
    }
    if let Some(r) = &v.rebuilt_sha256 {
        println!("  rebuilt        {r}");
    }
    println!("  image trust    {}", v.image_trust);
    println!(
        "  recipe         {} ({})",
        v.recipe.get("image").and_then(Value::as_str).unwrap_or("-"),
        v.recipe_source
    );
    if let Some(e) = &v.error {
        println!("  reason         {}: {}", e.code, e.message);
    }
    match &v.job_id {
        Some(j) => println!(
            "  job            {j} ({}, {} certificate votes, attempt {})",
            if v.job_completed { "certified" } else { "open" },
            v.certificate_votes,
            v.attempts
        ),
        None => println!("  job            not opened yet"),
    }
}

async fn verify(a: VerifyArgs) -> Result<ExitCode, Failure> {
    let client =
        hallmark_sdk::Client::connect(hallmark_sdk::Endpoints::coordinator(&a.coordinator.url()?))
            .await?;
    let wasm = read(&a.file)?;
    let source = a.source.as_deref().map(read).transpose()?;
    let mut v: VerificationView = client.submit_build(&wasm, source.as_deref()).await?;
    if a.wait {
        let bar = stage_spinner(&format!("{}:", v.verification_id), a.json);
        let start = Instant::now();
        while matches!(v.status.as_str(), "queued" | "building") {
            let job = v.job_id.clone().unwrap_or_else(|| "no job yet".into());
            let detail = v.detail.clone().unwrap_or_default();
            bar.set_message(format!("{} ({job}) {detail}", v.status));
            if start.elapsed() > Duration::from_secs(a.timeout_secs) {
                bar.finish_and_clear();
                return Err(Failure::new(
                    2,
                    "timed_out",
                    format!(
                        "{} still {} after {} s",
                        v.verification_id, v.status, a.timeout_secs
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            v = client.build(&v.verification_id).await?;
        }
        bar.finish_and_clear();
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print_view(&v);
    }
    Ok(exit_of(&v.status))
}

async fn status(a: StatusArgs) -> Result<ExitCode, Failure> {
    let client =
        hallmark_sdk::Client::connect(hallmark_sdk::Endpoints::coordinator(&a.coordinator.url()?))
            .await?;
    let is_sha = a.id.len() == 64 && a.id.bytes().all(|b| b.is_ascii_hexdigit());
    if is_sha {
        let w: WasmView = client.wasm(&a.id.to_ascii_lowercase()).await?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&w).unwrap_or_default());
        } else {
            for v in &w.verifications {
                print_view(v);
            }
        }
        let best = if w.verifications.iter().any(|v| v.status == "verified") {
            "verified"
        } else if w
            .verifications
            .iter()
            .all(|v| matches!(v.status.as_str(), "queued" | "building"))
        {
            "queued"
        } else {
            "unverified"
        };
        return Ok(exit_of(best));
    }
    let v: VerificationView = client.build(&a.id).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print_view(&v);
    }
    Ok(exit_of(&v.status))
}

fn image(c: ImageCommand) -> Result<ExitCode, Failure> {
    let fail = |e: hallmark_build::image::ImageError| Failure::new(2, e.code(), e.to_string());
    match c {
        ImageCommand::Import(a) => {
            let store = ImageStore::new(&a.images.images);
            let img = if a.dir.join("oci-layout").is_file() {
                store.import_oci_layout(&a.dir).map_err(fail)?
            } else {
                let cfg = ImageConfig {
                    entrypoint: a.entrypoint,
                    env: a.env,
                };
                store.import_dir(&a.dir, &cfg).map_err(fail)?
            };
            println!("{}", img.digest);
        }
        ImageCommand::List(a) => {
            for d in ImageStore::new(&a.images).list() {
                println!("{d}");
            }
        }
        ImageCommand::Host(a) => {
            let store = ImageStore::new(&a.images.images);
            let img = match a.kind.as_str() {
                "wat" => host_images::wat_image(&store).map_err(fail)?,
                "c" => host_images::c_image(&store).map_err(fail)?,
                other => {
                    return Err(Failure::new(
                        2,
                        "unknown_image",
                        format!("{other:?}: expected wat or c"),
                    ))
                }
            };
            println!("{}", img.digest);
        }
    }
    Ok(ExitCode::SUCCESS)
}
