//! Faults on real processes, on SQLite and (where the test server is configured) PostgreSQL:
//!
//! - a validator killed with SIGKILL in the middle of a round's window: every submission it
//!   acknowledged before the kill must be in its store after the restart, it must agree with
//!   the others on the round, and every archive it served before must come back byte for
//!   byte;
//! - validators cut off from the rest by the kernel's firewall (nftables, matching the cut
//!   processes' cgroup and listening port): while two of three hold quorum the round goes on
//!   without the third; with one of three the incumbent holds and no weights are set; back on
//!   the network, the cut validators catch up and agree again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hallmark_core::{Envelope, Keypair, Signed};
use hallmark_ledger::{Role, TxBody};
use hallmark_node::config::WorkerSection;
use hallmark_node::faults::Faults;
use hallmark_node::http_ledger::HttpLedger;
use hallmark_node::lanes::LaneRegistry;
use hallmark_node::messages::{NewRoundRequest, RoundAnnouncement, RoundResult};
use hallmark_node::worker::{SubmissionTimings, Worker};
use hallmark_node::NodeClient;
use serde_json::Value;

const WORKERS: usize = 6;

/// The fault tests each run a whole devnet; one at a time, so neither's round windows are
/// squeezed by the other's processes on a small machine.
static ONE_DEVNET_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Proc(Child);

impl Proc {
    fn term(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let give_up = Instant::now() + Duration::from_secs(30);
        while self.0.try_wait().unwrap().is_none() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            self.term();
        }
    }
}

fn hallmark() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hallmark"))
}

/// A kept devnet (single sequencer, one worker of its own, no jobs, builds or eval).
fn start_devnet(dir: &Path, store: Option<&str>) -> (Proc, Value) {
    let mut cmd = hallmark();
    cmd.args(["devnet", "--keep-running", "--single-sequencer", "--json"])
        .args([
            "--validators",
            "3",
            "--workers",
            "1",
            "--rounds",
            "1",
            "--jobs",
            "0",
        ])
        .args([
            "--no-builds",
            "--no-eval",
            "--vars",
            "100",
            "--clauses",
            "400",
        ])
        .args(["--instances", "3", "--window-ms", "1500", "--data-dir"])
        .arg(dir)
        .env_remove("HALLMARK_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.with_extension("out")).unwrap())
        .stderr(std::fs::File::create(dir.with_extension("err")).unwrap());
    if let Some(url) = store {
        cmd.args(["--store", url]);
    }
    let mut p = Proc(cmd.spawn().unwrap());
    let give_up = Instant::now() + Duration::from_secs(240);
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("devnet.json")) {
            let info: Value = serde_json::from_str(&text).unwrap();
            if info["ready"] == true {
                return (p, info);
            }
        }
        if let Some(status) = p.0.try_wait().unwrap() {
            panic!(
                "devnet exited ({status}): {}",
                std::fs::read_to_string(dir.with_extension("err")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < give_up, "devnet not up in time");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The pid of the node process started with `config`.
fn pid_of(config: &Path) -> u32 {
    let want = config.to_string_lossy().into_owned();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if argv.iter().any(|a| a == "node") && argv.contains(&want) {
            return pid;
        }
    }
    panic!("no process runs {want}");
}

fn key(path: &Value) -> Keypair {
    hallmark_node::run::load_key(Path::new(path.as_str().unwrap())).unwrap()
}

async fn result_of(v: &NodeClient, round: &str) -> RoundResult {
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        match v
            .get::<RoundResult>(&format!("/v1/rounds/{round}/result"))
            .await
        {
            Ok(r) => return r,
            // Not there yet (404), or validator-0 still coming back.
            Err(_) if Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{round}: {e}"),
        }
    }
}

/// The devnet's validator URLs, in order.
fn validator_urls(info: &Value) -> Vec<String> {
    info["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Registers one in-process sat worker per entry of `delays_ms` (each worker's handicap) and
/// starts it against the devnet; sending `true` on the returned channel stops them all.
async fn start_workers(
    info: &Value,
    delays_ms: impl Iterator<Item = u64>,
    timings: Option<Arc<SubmissionTimings>>,
) -> tokio::sync::watch::Sender<bool> {
    let ledger = HttpLedger::new(info["ledger"].as_str().unwrap());
    let chain_id = hallmark_node::registration::wait_for_ledger(&ledger, Duration::from_secs(30))
        .await
        .unwrap();
    let coldkey = key(&info["coldkey"]);
    let coordinator_hotkey = serde_json::from_value(info["coordinator_hotkey"].clone()).unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    for delay in delays_ms {
        let k = Keypair::generate();
        hallmark_node::registration::submit_tx(
            &ledger,
            &chain_id,
            &coldkey,
            TxBody::Register {
                hotkey: k.public(),
                role: Role::Worker,
                stake: 1_000,
            },
        )
        .await
        .unwrap();
        let mut w = Worker::new(
            k,
            HttpLedger::new(info["ledger"].as_str().unwrap()),
            NodeClient::new(info["coordinator"].as_str().unwrap()),
            coordinator_hotkey,
            WorkerSection {
                poll_ms: 100,
                prove_jobs: false,
            },
            Faults {
                submit_delay_ms: delay,
                ..Faults::default()
            },
            LaneRegistry::default().with_round_lane(hallmark_sat::SatLane, hallmark_sat::SatWorker),
        );
        if let Some(t) = &timings {
            w = w.with_timings(t.clone());
        }
        tokio::spawn(Arc::new(w).run_loop(stop_rx.clone()));
    }
    stop
}

async fn kill_a_validator_mid_round(backend: &str, store: Option<&str>) {
    let root = tempfile::tempdir().unwrap();
    let dir: PathBuf = root.path().join(backend);
    std::fs::create_dir_all(&dir).unwrap();
    let (mut devnet, info) = start_devnet(&dir, store);
    let validators = validator_urls(&info);

    // Workers that submit at staggered times, so the kill lands among their submissions.
    let timings = Arc::new(SubmissionTimings::default());
    let stop = start_workers(
        &info,
        (0..WORKERS as u64).map(|i| i * 250),
        Some(timings.clone()),
    )
    .await;

    // What validator-0 served for the devnet's own round, before anything happens to it.
    let v0 = NodeClient::new(&validators[0]);
    let first_round = "sat-round-000001";
    let archive_before = v0
        .get_bytes(&format!("/v1/consensus/scores/{first_round}"))
        .await
        .unwrap();

    let round = publish_round(&info, 9_000).await;

    // kill -9 once some of validator-0's acknowledgements are out, mid-window.
    let give_up = Instant::now() + Duration::from_secs(30);
    let acked_by_v0 = |timings: &SubmissionTimings| {
        timings
            .acks()
            .into_iter()
            .filter(|((v, r, _), _)| *v == validators[0] && *r == round)
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    while acked_by_v0(&timings) < 3 {
        assert!(Instant::now() < give_up, "validator-0 acknowledged nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let config = dir.join("validator-0").join("config.toml");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid_of(&config) as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let acked_before_kill = timings.acks();
    let addr_file = dir.join("validator-0").join("addr");
    let _ = std::fs::remove_file(&addr_file);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut restarted = Proc(
        hallmark()
            .args(["node", "--role", "validator", "--config"])
            .arg(&config)
            .env_remove("HALLMARK_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("validator-0.restart.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = wait_addr(&addr_file).await;
    let v0 = NodeClient::new(&url);

    // The round settles everywhere; the restarted validator agrees with the others.
    let r0 = result_of(&v0, &round).await;
    let r1 = result_of(&NodeClient::new(&validators[1]), &round).await;
    assert_eq!(
        r0.consensus, r1.consensus,
        "{backend}: validator-0 disagrees after the kill"
    );
    assert_eq!(r0.winner, r1.winner);

    // Every first submission it acknowledged before the kill is in its store.
    let store = match store {
        None => hallmark_store::Store::open(&dir.join("validator-0").join("validator-0.sqlite"))
            .await
            .unwrap(),
        Some(url) => {
            let digest = hallmark_core::digest::sha256(dir.as_os_str().as_encoded_bytes()).to_hex();
            hallmark_store::Store::open_postgres(url, &format!("hm_{}_validator_0", &digest[..8]))
                .await
                .unwrap()
        }
    };
    let stored = store.submissions(&round).await.unwrap();
    let mut audited = 0;
    for ((v, r, worker), n) in &acked_before_kill {
        if *v != validators[0] || *r != round {
            continue;
        }
        let rows = stored.iter().filter(|s| s.worker == *worker).count() as u64;
        assert!(
            rows >= *n,
            "{backend}: {worker}: {n} acknowledged, {rows} stored"
        );
        audited += n;
    }
    assert!(
        audited >= 3,
        "{backend}: only {audited} acknowledgements audited"
    );

    // And what it served before comes back byte for byte.
    let archive_after = v0
        .get_bytes(&format!("/v1/consensus/scores/{first_round}"))
        .await
        .unwrap();
    assert_eq!(
        archive_before, archive_after,
        "{backend}: the archive changed"
    );

    let _ = stop.send(true);
    restarted.term();
    devnet.term();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_killed_mid_round_loses_no_acknowledged_submission() {
    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    kill_a_validator_mid_round("sqlite", None).await;
    if let Some(url) = hallmark_store::testing::server_url().unwrap() {
        kill_a_validator_mid_round("postgres", Some(&url)).await;
    }
}

/// Posts a new sat round as the devnet's operator; its round id.
async fn publish_round(info: &Value, window_ms: i64) -> String {
    let operator = key(&info["operator_key"]);
    let coordinator = NodeClient::new(info["coordinator"].as_str().unwrap()).signed_by(operator);
    let env: Envelope = coordinator
        .post(
            "/v1/rounds",
            &NewRoundRequest {
                lane: "sat".into(),
                params: serde_json::json!({"vars": 100, "clauses": 400, "k": 3, "count": 3}),
                window_ms,
            },
        )
        .await
        .unwrap();
    Signed::<RoundAnnouncement>::from_envelope(env)
        .verify()
        .unwrap()
        .payload
        .round_id
        .to_string()
}

/// The URL a (re)started node wrote to its `addr` file.
async fn wait_addr(addr_file: &Path) -> String {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(u) = std::fs::read_to_string(addr_file) {
            if !u.trim().is_empty() {
                return u.trim().to_string();
            }
        }
        assert!(
            Instant::now() < give_up,
            "{addr_file:?}: the node did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What cutting a process off the network needs here: root, `nft`, and a writable cgroup v2
/// hierarchy under /sys/fs/cgroup (where nft resolves cgroup paths). The mount point, or why
/// not.
fn partition_support() -> Result<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective uid.
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        return Err("not root".into());
    }
    match Command::new("nft").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Err("no nft (Debian package nftables)".into()),
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let mount = mounts
        .lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let point = pre.split_whitespace().nth(4)?;
            (post.split_whitespace().next() == Some("cgroup2")).then(|| PathBuf::from(point))
        })
        .ok_or("no cgroup v2 hierarchy mounted")?;
    if !mount.starts_with("/sys/fs/cgroup") {
        return Err(format!(
            "cgroup v2 is mounted at {mount:?}, not under /sys/fs/cgroup"
        ));
    }
    Ok(mount)
}

/// A firewall table cutting processes off loopback, removed (with its cgroups) on drop. Each
/// cut process runs in its own cgroup from its first instruction, so every socket it ever
/// opens is matched; its listening port is blocked both ways as well. Traffic to `keep` (the
/// PostgreSQL server holding its store) still flows: the cut is from the other nodes, not
/// from its own disk.
struct Partition {
    table: String,
    mount: PathBuf,
    cgroups: Vec<PathBuf>,
    keep: Option<u16>,
}

impl Partition {
    fn new(mount: PathBuf, keep: Option<u16>) -> Self {
        let table = format!("hallmark_partition_{}", std::process::id());
        let p = Partition {
            table,
            mount,
            cgroups: Vec::new(),
            keep,
        };
        p.nft(&format!(
            "table inet {t}\ndelete table inet {t}\ntable inet {t} {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n  }}\n}}\n",
            t = p.table
        ));
        p
    }

    fn nft(&self, script: &str) {
        use std::io::Write;
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "nft refused:\n{script}");
    }

    /// A fresh cgroup for one process; the path to pass to [`Partition::spawn_in`].
    fn cgroup(&mut self, name: &str) -> PathBuf {
        let dir = self
            .mount
            .join(format!("hallmark-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        self.cgroups.push(dir.clone());
        dir
    }

    /// `cmd` started inside `cgroup`: a shell moves itself there, then execs the command.
    fn spawn_in(cgroup: &Path, cmd: &Command) -> Command {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(r#"echo $$ > "$1/cgroup.procs" && shift && exec "$@""#)
            .arg("sh")
            .arg(cgroup)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        sh
    }

    /// Cuts the process in `cgroup`, listening on `port`, off every other process.
    fn cut(&self, cgroup: &Path, port: u16) {
        let rel = cgroup.strip_prefix("/sys/fs/cgroup").unwrap();
        let keep = self
            .keep
            .map(|p| format!("tcp dport != {p} "))
            .unwrap_or_default();
        self.nft(&format!(
            "add rule inet {t} out socket cgroupv2 level 1 \"{rel}\" {keep}drop\n\
             add rule inet {t} out tcp dport {port} drop\n\
             add rule inet {t} out tcp sport {port} drop\n",
            t = self.table,
            rel = rel.display(),
        ));
    }

    /// Everyone back on the network.
    fn heal(&self) {
        self.nft(&format!("flush chain inet {} out\n", self.table));
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .status();
        for cg in &self.cgroups {
            let _ = std::fs::remove_dir(cg);
        }
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

async fn partition_validators(mount: PathBuf, backend: &str, store: Option<&str>) {
    let root = tempfile::tempdir().unwrap();
    let dir: PathBuf = root.path().join(backend);
    std::fs::create_dir_all(&dir).unwrap();
    let (mut devnet, info) = start_devnet(&dir, store);
    let mut partition = Partition::new(mount, store.map(|u| port_of(u.split('/').nth(2).unwrap())));
    let mut urls = validator_urls(&info);

    // Validators 1 and 2 are restarted, each in a cgroup of its own.
    let mut restarted = Vec::new();
    let mut cgroups = Vec::new();
    for i in [1usize, 2] {
        let node_dir = dir.join(format!("validator-{i}"));
        let config = node_dir.join("config.toml");
        let pid = pid_of(&config);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let give_up = Instant::now() + Duration::from_secs(30);
        // Gone, or a zombie its parent (the devnet) has not reaped.
        let running = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
                .unwrap_or(false)
        };
        while running() {
            assert!(Instant::now() < give_up, "validator-{i} did not stop");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let addr_file = node_dir.join("addr");
        let _ = std::fs::remove_file(&addr_file);
        let cg = partition.cgroup(&format!("validator-{i}"));
        let mut node = hallmark();
        node.args(["node", "--role", "validator", "--config"])
            .arg(&config);
        let child = Partition::spawn_in(&cg, &node)
            .env_remove("HALLMARK_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(node_dir.join("restart.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        restarted.push(Proc(child));
        urls[i] = wait_addr(&addr_file).await;
        cgroups.push(cg);
    }

    // Workers that send every validator each witness.
    let stop = start_workers(&info, [0; 3].into_iter(), None).await;
    let clients: Vec<NodeClient> = urls.iter().map(|u| NodeClient::new(u)).collect();
    let hotkeys: Vec<hallmark_core::PublicKey> = (0..3)
        .map(|i| {
            let file = dir.join(format!("validator-{i}")).join("hotkey");
            hallmark_node::run::load_key(&file).unwrap().public()
        })
        .collect();

    // Everyone connected: a baseline round every validator decides with quorum.
    let a = publish_round(&info, 4_000).await;
    let mut baseline = Vec::new();
    for c in &clients {
        baseline.push(result_of(c, &a).await);
    }
    for r in &baseline {
        assert!(r.quorum_met, "{backend} {a}: {r:?}");
        assert_eq!(r.winner, baseline[0].winner, "{backend} {a}");
    }

    // Validator-2 cut off: two of three hold quorum and the round goes on without it.
    partition.cut(&cgroups[1], port_of(&urls[2]));
    let b = publish_round(&info, 4_000).await;
    let rb0 = result_of(&clients[0], &b).await;
    let rb1 = result_of(&clients[1], &b).await;
    for r in [&rb0, &rb1] {
        assert!(r.quorum_met, "{backend} {b}: {r:?}");
        assert!(r.winner.is_some() && !r.void, "{backend} {b}: {r:?}");
        assert!(r.weights_tx.is_some(), "{backend} {b}: no weights set");
        assert!(
            r.missing.iter().any(|(v, _)| *v == hotkeys[2]),
            "{backend} {b}: validator-2's report was used: {r:?}"
        );
        assert_eq!(r.reports.len(), 2, "{backend} {b}");
    }
    assert_eq!(rb0.winner, rb1.winner, "{backend} {b}");
    assert_eq!(rb0.consensus, rb1.consensus, "{backend} {b}");
    let incumbent = rb0.winner;

    // Validator-1 cut off too: one of three is no quorum; the incumbent holds, no weights.
    partition.cut(&cgroups[0], port_of(&urls[1]));
    let c = publish_round(&info, 4_000).await;
    let rc0 = result_of(&clients[0], &c).await;
    assert!(!rc0.quorum_met, "{backend} {c}: {rc0:?}");
    assert_eq!(
        rc0.winner, incumbent,
        "{backend} {c}: the incumbent did not hold"
    );
    assert_eq!(
        rc0.weights_tx, None,
        "{backend} {c}: weights set without quorum"
    );
    assert_eq!(rc0.reports.len(), 1, "{backend} {c}");

    // Back on the network: both catch up and the three agree again. Validator-2 missed two
    // rounds and takes the incumbent from its peers' signed results for the first of them.
    partition.heal();
    let d = publish_round(&info, 4_000).await;
    let mut rd = Vec::new();
    for cl in &clients {
        rd.push(result_of(cl, &d).await);
    }
    for r in &rd {
        assert!(r.quorum_met, "{backend} {d}: {r:?}");
        assert_eq!(r.reports.len(), 3, "{backend} {d}: {r:?}");
        assert_eq!(r.consensus, rd[0].consensus, "{backend} {d}");
        assert_eq!(r.winner, rd[0].winner, "{backend} {d}");
    }
    assert_eq!(
        rd[2].caught_up_from.as_ref().map(|r| r.to_string()),
        Some(b.clone()),
        "{backend} {d}: validator-2 did not catch up from {b}"
    );
    assert_eq!(rd[0].caught_up_from, None, "{backend} {d}");
    // It decides only rounds it saw: what it missed it never signs for.
    let missed = clients[2]
        .get::<RoundResult>(&format!("/v1/rounds/{b}/result"))
        .await;
    assert!(
        missed.is_err(),
        "{backend}: validator-2 signed a round it never saw"
    );

    let _ = stop.send(true);
    for mut p in restarted {
        p.term();
    }
    drop(partition);
    devnet.term();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_cut_off_the_network_hold_the_incumbent_and_catch_up() {
    let mount = match partition_support() {
        Ok(m) => m,
        Err(why) => {
            assert_ne!(
                std::env::var("HALLMARK_REQUIRE_PARTITION").as_deref(),
                Ok("1"),
                "HALLMARK_REQUIRE_PARTITION=1 but validators cannot be cut off here: {why}"
            );
            eprintln!("skipped: {why}");
            return;
        }
    };
    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    partition_validators(mount.clone(), "sqlite", None).await;
    if let Some(url) = hallmark_store::testing::server_url().unwrap() {
        partition_validators(mount, "postgres", Some(&url)).await;
    }
}
