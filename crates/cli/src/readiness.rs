//! `hallmark readiness`: launch gates measured on a live network (a devnet's nodes or given
//! URLs), never read from a checklist. Each gate records the evidence it saw; a profile
//! decides which gates it requires and which it defers.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;
use hallmark_core::PublicKey;
use hallmark_ledger::{Metagraph, Role};
use hallmark_log::{verify_consistency, NoteVerifierKey, SignedCheckpoint};
use hallmark_node::validator::SelfTestReport;
use hallmark_node::NodeClient;
use serde::Serialize;

/// The lanes a network must run, enabled and answering, to be ready.
const REQUIRED_LANES: [&str; 5] = ["sat", "stark", "tee", "build", "eval"];

/// Lanes whose self-test verifies real evidence (captured hardware quotes and tokens, a
/// published contract): readiness requires them to pass, not just to exist.
const EVIDENCE_LANES: [&str; 2] = ["tee", "build"];

/// Which gates a launch needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Profile {
    /// A controlled first launch: the network, its verifiers and logs; real-hardware TEE
    /// gates deferred.
    #[value(name = "controlled-v0")]
    #[serde(rename = "controlled-v0")]
    ControlledV0,
    /// Everything, real-hardware TEE evidence included.
    Full,
}

/// Arguments of `hallmark readiness`.
#[derive(Debug, clap::Args)]
pub struct ReadinessArgs {
    /// Which gates are required.
    #[arg(long, value_enum)]
    profile: Profile,
    /// Exit 1 unless the network is READY for the profile.
    #[arg(long)]
    require_ready: bool,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    json: bool,
    /// The ledger's URL (default: the devnet's with `--devnet`).
    #[arg(long, env = "HALLMARK_LEDGER_URL")]
    ledger: Option<String>,
    /// The coordinator's URL (default: the devnet's with `--devnet`).
    #[arg(long, env = "HALLMARK_COORDINATOR_URL")]
    coordinator: Option<String>,
    /// The coordinator's hotkey (SS58), which signs its log (default: the devnet's).
    #[arg(long)]
    coordinator_key: Option<PublicKey>,
    /// A validator's URL; repeat for each (default: the ones the ledger lists).
    #[arg(long = "validator")]
    validators: Vec<String>,
    #[command(flatten)]
    devnet: crate::network::DevnetArg,
}

/// A gate's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    Pass,
    Fail,
    /// Not required by the profile (measured anyway, shown for the record).
    Deferred,
}

/// One gate: what it checks, what it saw, and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    pub id: &'static str,
    pub title: &'static str,
    pub status: GateStatus,
    /// Whether the measurement itself held (a deferred gate may hold or not).
    pub holds: bool,
    /// What was measured, one line each.
    pub evidence: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub profile: Profile,
    pub ready: bool,
    /// Required gates that hold, out of 100.
    pub score: u32,
    pub gates: Vec<Gate>,
    /// The gates this profile defers.
    pub deferred: Vec<&'static str>,
    /// Required gates that do not hold.
    pub failing: Vec<&'static str>,
}

/// What a gate measured before the profile is applied.
struct Measured {
    id: &'static str,
    title: &'static str,
    /// Only `full` requires it.
    full_only: bool,
    holds: bool,
    evidence: Vec<String>,
}

impl Measured {
    fn new(id: &'static str, title: &'static str, full_only: bool) -> Self {
        Self {
            id,
            title,
            full_only,
            holds: true,
            evidence: Vec::new(),
        }
    }

    fn ok(&mut self, line: impl Into<String>) {
        self.evidence.push(line.into());
    }

    fn bad(&mut self, line: impl Into<String>) {
        self.holds = false;
        self.evidence.push(format!("FAIL {}", line.into()));
    }
}

/// The network's endpoints.
struct Endpoints {
    ledger: String,
    coordinator: String,
    coordinator_key: Option<PublicKey>,
    validators: Vec<String>,
}

fn endpoints(a: &ReadinessArgs) -> anyhow::Result<Endpoints> {
    let d = a.devnet.info()?;
    let pick = |given: &Option<String>, from: Option<String>, flag: &str| {
        given
            .clone()
            .or(from)
            .with_context(|| format!("say where the {flag} is: --{flag} URL or --devnet DIR"))
    };
    Ok(Endpoints {
        ledger: pick(&a.ledger, d.as_ref().map(|d| d.ledger.clone()), "ledger")?,
        coordinator: pick(
            &a.coordinator,
            d.as_ref().map(|d| d.coordinator.clone()),
            "coordinator",
        )?,
        coordinator_key: a
            .coordinator_key
            .or_else(|| d.as_ref().map(|d| d.coordinator_hotkey)),
        validators: if a.validators.is_empty() {
            d.map(|d| d.validators).unwrap_or_default()
        } else {
            a.validators.clone()
        },
    })
}

/// Runs `hallmark readiness`.
pub async fn run(a: ReadinessArgs) -> anyhow::Result<ExitCode> {
    let ep = endpoints(&a)?;
    let report = measure(a.profile, &ep).await;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if a.require_ready && !report.ready {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(r: &Report) {
    let verdict = if r.ready { "READY" } else { "NOT READY" };
    println!(
        "readiness {}: {verdict} (score {}/100)",
        serde_json::to_value(r.profile)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        r.score
    );
    for g in &r.gates {
        let mark = match g.status {
            GateStatus::Pass => "pass    ",
            GateStatus::Fail => "FAIL    ",
            GateStatus::Deferred => "deferred",
        };
        println!("  [{mark}] {} — {}", g.id, g.title);
        for e in &g.evidence {
            println!("             {e}");
        }
    }
    if !r.failing.is_empty() {
        println!("not ready because: {}", r.failing.join(", "));
    }
    if !r.deferred.is_empty() {
        println!("deferred by this profile: {}", r.deferred.join(", "));
    }
}

async fn measure(profile: Profile, ep: &Endpoints) -> Report {
    let ledger = hallmark_node::http_ledger::HttpLedger::new(&ep.ledger);
    let metagraph = hallmark_ledger::Ledger::metagraph(&ledger).await;
    // The validators: given, or the ones the ledger lists with an address.
    let mut validators: Vec<(String, Option<PublicKey>)> = ep
        .validators
        .iter()
        .map(|u| (u.trim_end_matches('/').to_string(), None))
        .collect();
    if let Ok(mg) = &metagraph {
        for n in mg.neurons.iter().filter(|n| n.role == Role::Validator) {
            let Some(axon) = n.axon.as_deref().map(|a| a.trim_end_matches('/')) else {
                continue;
            };
            match validators.iter_mut().find(|(u, _)| u == axon) {
                Some(v) => v.1 = Some(n.hotkey),
                None if ep.validators.is_empty() => {
                    validators.push((axon.to_string(), Some(n.hotkey)))
                }
                None => {}
            }
        }
    }
    // The first checkpoint of every log, before the other gates run; the second at the end.
    let mut logs: Vec<(String, String, Option<PublicKey>)> = vec![(
        "coordinator".to_string(),
        ep.coordinator.clone(),
        ep.coordinator_key,
    )];
    logs.extend(
        validators
            .iter()
            .map(|(u, k)| (format!("validator {u}"), u.clone(), *k)),
    );
    let mut first = Vec::new();
    for (_, url, _) in &logs {
        first.push(NodeClient::new(url).get_bytes("/v1/log/checkpoint").await);
    }

    let mut gates = vec![nodes_answering(ep, &validators).await];
    let selftests = self_test_reports(&validators).await;
    gates.push(lanes_enabled(ep, &selftests).await);
    gates.push(verifier_self_tests(&selftests));
    gates.push(consensus_quorum(&metagraph, &validators).await);
    gates.push(log_consistency(&logs, first).await);
    let tee = tee_gates(ep, &selftests).await;
    gates.extend(tee);

    let mut out = Vec::new();
    let (mut required, mut held) = (0u32, 0u32);
    let (mut deferred, mut failing) = (Vec::new(), Vec::new());
    for m in gates {
        let defer = m.full_only && profile == Profile::ControlledV0;
        let status = if defer {
            deferred.push(m.id);
            GateStatus::Deferred
        } else {
            required += 1;
            if m.holds {
                held += 1;
                GateStatus::Pass
            } else {
                failing.push(m.id);
                GateStatus::Fail
            }
        };
        out.push(Gate {
            id: m.id,
            title: m.title,
            status,
            holds: m.holds,
            evidence: m.evidence,
        });
    }
    Report {
        profile,
        ready: failing.is_empty() && required > 0,
        score: (held * 100).checked_div(required).unwrap_or(0),
        gates: out,
        deferred,
        failing,
    }
}

async fn nodes_answering(ep: &Endpoints, validators: &[(String, Option<PublicKey>)]) -> Measured {
    let mut m = Measured::new(
        "nodes_answering",
        "the ledger, the coordinator and every validator answer",
        false,
    );
    let mut nodes = vec![
        ("ledger".to_string(), ep.ledger.clone()),
        ("coordinator".to_string(), ep.coordinator.clone()),
    ];
    nodes.extend(
        validators
            .iter()
            .map(|(u, _)| ("validator".to_string(), u.clone())),
    );
    if validators.is_empty() {
        m.bad("no validator is known (none given, none listed by the ledger)");
    }
    for (role, url) in nodes {
        match NodeClient::new(&url)
            .get::<serde_json::Value>("/v1/health")
            .await
        {
            Ok(_) => m.ok(format!("{role} {url}: ok")),
            Err(e) => m.bad(format!("{role} {url}: {e}")),
        }
    }
    m
}

async fn self_test_reports(
    validators: &[(String, Option<PublicKey>)],
) -> Vec<(String, anyhow::Result<SelfTestReport>)> {
    let mut out = Vec::new();
    for (url, _) in validators {
        let client = NodeClient::new(url);
        // A validator runs its self-tests once at start: wait for them a little.
        let mut report = client.get::<SelfTestReport>("/v1/selftest").await;
        for _ in 0..60 {
            match &report {
                Err(e) if e.code() == Some("self_test_running") => {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    report = client.get("/v1/selftest").await;
                }
                _ => break,
            }
        }
        out.push((url.clone(), report.map_err(anyhow::Error::from)));
    }
    out
}

async fn lanes_enabled(
    ep: &Endpoints,
    selftests: &[(String, anyhow::Result<SelfTestReport>)],
) -> Measured {
    let mut m = Measured::new(
        "lanes_enabled",
        "every lane is enabled on every validator and the coordinator answers for it",
        false,
    );
    for (url, r) in selftests {
        match r {
            Ok(r) => {
                let have: Vec<&str> = r.lanes.iter().map(|l| l.lane.as_str()).collect();
                let missing: Vec<&str> = REQUIRED_LANES
                    .iter()
                    .copied()
                    .filter(|l| !have.contains(l))
                    .collect();
                if missing.is_empty() {
                    m.ok(format!("validator {url}: {}", have.join(", ")));
                } else {
                    m.bad(format!("validator {url}: lanes {missing:?} not enabled"));
                }
            }
            Err(e) => m.bad(format!("validator {url}: no lane report: {e:#}")),
        }
    }
    if selftests.is_empty() {
        m.bad("no validator to ask");
    }
    // The coordinator: each round lane's current round, and the job board.
    let c = NodeClient::new(&ep.coordinator);
    for lane in ["sat", "eval"] {
        match c
            .get::<serde_json::Value>(&format!("/v1/rounds/current?lane={lane}"))
            .await
        {
            Ok(_) => m.ok(format!("coordinator: {lane} has a current round")),
            Err(e) if e.code() == Some("not_found") => {
                m.ok(format!("coordinator: {lane} answers (no round opened yet)"))
            }
            Err(e) => m.bad(format!("coordinator: {lane} rounds: {e}")),
        }
    }
    match c.get::<serde_json::Value>("/v1/jobs?limit=1").await {
        Ok(_) => m.ok("coordinator: the job board answers (stark, tee, build)"),
        Err(e) => m.bad(format!("coordinator: job board: {e}")),
    }
    m
}

fn verifier_self_tests(selftests: &[(String, anyhow::Result<SelfTestReport>)]) -> Measured {
    let mut m = Measured::new(
        "verifier_self_tests",
        "each verifier's self-test on real evidence (Intel quote, NVIDIA token, Soroban wasm) passes",
        false,
    );
    if selftests.is_empty() {
        m.bad("no validator to ask");
    }
    for (url, r) in selftests {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                m.bad(format!("validator {url}: {e:#}"));
                continue;
            }
        };
        let mut passed = Vec::new();
        let mut none = Vec::new();
        for l in &r.lanes {
            match &l.verdict {
                Some(v) if v.accepted => passed.push(format!(
                    "{} ({})",
                    l.lane,
                    v.checks
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Some(v) => m.bad(format!(
                    "validator {url}: {} self-test failed: {}",
                    l.lane,
                    v.checks
                        .iter()
                        .filter(|c| c.outcome == hallmark_core::CheckOutcome::Fail)
                        .map(|c| format!("{} ({})", c.name, c.detail))
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
                None => none.push(l.lane.as_str()),
            }
        }
        for lane in EVIDENCE_LANES {
            if !r
                .lanes
                .iter()
                .any(|l| l.lane == lane && l.verdict.is_some())
            {
                m.bad(format!("validator {url}: {lane} ran no self-test"));
            }
        }
        m.ok(format!(
            "validator {url}: passed {}; evidence {}",
            passed.join("; "),
            r.evidence_dir.as_deref().unwrap_or("(none configured)")
        ));
        if !none.is_empty() {
            m.ok(format!(
                "validator {url}: no self-test shipped for {}",
                none.join(", ")
            ));
        }
    }
    m
}

async fn consensus_quorum(
    metagraph: &Result<Metagraph, hallmark_ledger::LedgerError>,
    validators: &[(String, Option<PublicKey>)],
) -> Measured {
    let mut m = Measured::new(
        "consensus_quorum",
        "validators answering hold at least 2/3 of validator stake",
        false,
    );
    let mg = match metagraph {
        Ok(mg) => mg,
        Err(e) => {
            m.bad(format!("the ledger's metagraph: {e}"));
            return m;
        }
    };
    let stake = |n: &hallmark_ledger::Neuron| n.voting_stake.max(n.stake);
    let all: Vec<_> = mg
        .neurons
        .iter()
        .filter(|n| n.role == Role::Validator)
        .collect();
    let total: u128 = all.iter().map(|n| u128::from(stake(n))).sum();
    let mut answering: u128 = 0;
    for n in &all {
        let url = validators
            .iter()
            .find(|(_, k)| *k == Some(n.hotkey))
            .map(|(u, _)| u.clone())
            .or_else(|| n.axon.clone());
        let up = match &url {
            Some(u) => NodeClient::new(u)
                .get::<serde_json::Value>("/v1/health")
                .await
                .is_ok(),
            None => false,
        };
        if up {
            answering += u128::from(stake(n));
        }
        m.ok(format!(
            "{} stake {} at {}: {}",
            n.hotkey,
            stake(n),
            url.as_deref().unwrap_or("(no address)"),
            if up { "answering" } else { "not answering" }
        ));
    }
    if total == 0 {
        m.bad("the ledger lists no staked validator");
    } else if answering * 3 < total * 2 {
        m.bad(format!("{answering} of {total} stake answers: below 2/3"));
    } else {
        m.ok(format!(
            "{answering} of {total} stake answers: quorum reachable"
        ));
    }
    m
}

async fn log_consistency(
    logs: &[(String, String, Option<PublicKey>)],
    first: Vec<Result<Vec<u8>, hallmark_node::client::ClientError>>,
) -> Measured {
    let mut m = Measured::new(
        "log_consistency",
        "every log's later signed checkpoint extends its earlier one (RFC 6962 consistency)",
        false,
    );
    for ((name, url, key), first) in logs.iter().zip(first) {
        let client = NodeClient::new(url);
        let second = client.get_bytes("/v1/log/checkpoint").await;
        let result: anyhow::Result<String> = async {
            let key = key.context("its signing key is unknown (not listed by the ledger)")?;
            let verify = |bytes: Vec<u8>| -> anyhow::Result<hallmark_log::Checkpoint> {
                let note = SignedCheckpoint {
                    note: String::from_utf8(bytes).context("checkpoint is not text")?,
                };
                let origin = note.checkpoint_unverified()?.origin;
                Ok(note.verify(&NoteVerifierKey::new(&origin, key)?)?)
            };
            let c1 = verify(first.context("first checkpoint")?)?;
            let c2 = verify(second.context("second checkpoint")?)?;
            anyhow::ensure!(c1.origin == c2.origin, "the log changed its origin");
            anyhow::ensure!(c2.size > 0, "the log is empty");
            // The newest leaf as served is in the signed tree: the root stands for the
            // log's content, not just for itself.
            let last = c2.size - 1;
            let entry: hallmark_node::log_routes::LogEntryView =
                client.get(&format!("/v1/log/entries/{last}")).await?;
            let path: hallmark_node::log_routes::ProofView = client
                .get(&format!(
                    "/v1/log/proof/inclusion?index={last}&size={}",
                    c2.size
                ))
                .await?;
            hallmark_log::verify_inclusion(
                &hash(&entry.leaf_hash)?,
                last,
                c2.size,
                &hashes(&path.proof)?,
                &c2.root,
            )
            .context("the newest leaf is not in the signed tree")?;
            if c1.size == c2.size {
                anyhow::ensure!(c1.root == c2.root, "two roots for size {}", c1.size);
                return Ok(format!(
                    "size {} at both checkpoints, same root (signed); leaf {last} included",
                    c1.size
                ));
            }
            let proof: hallmark_node::log_routes::ProofView = client
                .get(&format!(
                    "/v1/log/proof/consistency?from={}&to={}",
                    c1.size, c2.size
                ))
                .await?;
            verify_consistency(c1.size, c2.size, &c1.root, &c2.root, &hashes(&proof.proof)?)?;
            Ok(format!(
                "size {} → {} consistent (both checkpoints signed); leaf {last} included",
                c1.size, c2.size
            ))
        }
        .await;
        match result {
            Ok(line) => m.ok(format!("{name}: {line}")),
            Err(e) => m.bad(format!("{name}: {e:#}")),
        }
    }
    m
}

fn hash(h: &str) -> anyhow::Result<[u8; 32]> {
    let b = hex::decode(h).with_context(|| format!("{h:?} is not hex"))?;
    <[u8; 32]>::try_from(b.as_slice()).context("a hash of the wrong length")
}

fn hashes(hs: &[String]) -> anyhow::Result<Vec<[u8; 32]>> {
    hs.iter().map(|h| hash(h)).collect()
}

async fn tee_gates(
    ep: &Endpoints,
    selftests: &[(String, anyhow::Result<SelfTestReport>)],
) -> Vec<Measured> {
    let mut hardware = Measured::new(
        "tee_real_hardware",
        "the tee path accepted evidence from real hardware (validators trust only Intel's root)",
        true,
    );
    let mut listing = Measured::new(
        "provider_listing_certified",
        "a provider listing stands on a validators' certificate",
        true,
    );
    let mut receipts = Measured::new(
        "health_and_usage_receipts",
        "signed health and usage receipts exist in the coordinator's log",
        true,
    );
    // Which roots the validators' tee verifiers accept.
    let mut roots: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (url, r) in selftests {
        match r {
            Ok(r) => {
                roots.insert(
                    url.clone(),
                    r.trust_roots.get("tee").cloned().unwrap_or_default(),
                );
            }
            Err(e) => hardware.bad(format!("validator {url}: trust unknown: {e:#}")),
        }
    }
    for (url, rs) in &roots {
        let simulated: Vec<&String> = rs
            .iter()
            .filter(|r| r.as_str() != hallmark_tee::policy::INTEL_ROOT_NAME)
            .collect();
        if rs.is_empty() {
            hardware.bad(format!("validator {url}: the tee lane trusts no root"));
        } else if simulated.is_empty() {
            hardware.ok(format!("validator {url}: trusts only {}", rs.join(", ")));
        } else {
            hardware.bad(format!(
                "validator {url}: also trusts {simulated:?}, so an acceptance there proves no real hardware (simulated evidence)"
            ));
        }
    }
    let c = NodeClient::new(&ep.coordinator);
    match c
        .get::<Vec<hallmark_node::compute::messages::ProviderListing>>("/v1/compute/providers")
        .await
    {
        Ok(ls) => {
            let certified: Vec<_> = ls
                .iter()
                .filter(|l| {
                    l.attestation_state.as_deref() == Some("approved") && l.certificate.is_some()
                })
                .collect();
            if certified.is_empty() {
                listing.bad(format!(
                    "{} listing(s), none approved with a certificate",
                    ls.len()
                ));
                hardware.bad("no approved attestation to stand on");
            } else {
                for l in &certified {
                    listing.ok(format!(
                        "{} ({}): {} with a certificate, evidence at coordinator log index {}",
                        l.node_id,
                        l.provider,
                        l.attestation_job.as_deref().unwrap_or("?"),
                        l.evidence_log_index
                            .map_or_else(|| "(none)".to_string(), |i| i.to_string())
                    ));
                }
                hardware.ok(format!("{} approved attestation(s)", certified.len()));
            }
        }
        Err(e) => {
            listing.bad(format!("coordinator listings: {e}"));
            hardware.bad("the coordinator's listings are unavailable");
        }
    }
    for kind in ["compute_health", "compute_usage"] {
        match c
            .get::<hallmark_node::log_routes::FeedPage>(&format!("/v1/feed?kind={kind}&limit=1"))
            .await
        {
            Ok(p) if !p.items.is_empty() => {
                receipts.ok(format!("{kind}: first at log index {}", p.items[0].index))
            }
            Ok(_) => receipts.bad(format!("no {kind} receipt in the coordinator's log")),
            Err(e) => receipts.bad(format!("{kind}: {e}")),
        }
    }
    vec![hardware, listing, receipts]
}
