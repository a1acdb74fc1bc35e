//! Faults on real processes: a validator killed with SIGKILL in the middle of a round's
//! window, on SQLite and (where the test server is configured) PostgreSQL. Every submission
//! it acknowledged before the kill must be in its store after the restart, it must agree with
//! the others on the round, and every archive it served before must come back byte for byte.

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

async fn kill_a_validator_mid_round(backend: &str, store: Option<&str>) {
    let root = tempfile::tempdir().unwrap();
    let dir: PathBuf = root.path().join(backend);
    std::fs::create_dir_all(&dir).unwrap();
    let (mut devnet, info) = start_devnet(&dir, store);
    let ledger = HttpLedger::new(info["ledger"].as_str().unwrap());
    let chain_id = hallmark_node::registration::wait_for_ledger(&ledger, Duration::from_secs(30))
        .await
        .unwrap();
    let coldkey = key(&info["coldkey"]);
    let coordinator_hotkey = serde_json::from_value(info["coordinator_hotkey"].clone()).unwrap();
    let validators: Vec<String> = info["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();

    // Workers that submit at staggered times, so the kill lands among their submissions.
    let timings = Arc::new(SubmissionTimings::default());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    for i in 0..WORKERS {
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
        let w = Worker::new(
            k,
            HttpLedger::new(info["ledger"].as_str().unwrap()),
            NodeClient::new(info["coordinator"].as_str().unwrap()),
            coordinator_hotkey,
            WorkerSection {
                poll_ms: 100,
                prove_jobs: false,
            },
            Faults {
                submit_delay_ms: i as u64 * 250,
                ..Faults::default()
            },
            LaneRegistry::default().with_round_lane(hallmark_sat::SatLane, hallmark_sat::SatWorker),
        )
        .with_timings(timings.clone());
        tokio::spawn(Arc::new(w).run_loop(stop_rx.clone()));
    }

    // What validator-0 served for the devnet's own round, before anything happens to it.
    let v0 = NodeClient::new(&validators[0]);
    let first_round = "sat-round-000001";
    let archive_before = v0
        .get_bytes(&format!("/v1/consensus/scores/{first_round}"))
        .await
        .unwrap();

    let operator = key(&info["operator_key"]);
    let coordinator = NodeClient::new(info["coordinator"].as_str().unwrap()).signed_by(operator);
    let env: Envelope = coordinator
        .post(
            "/v1/rounds",
            &NewRoundRequest {
                lane: "sat".into(),
                params: serde_json::json!({"vars": 100, "clauses": 400, "k": 3, "count": 3}),
                window_ms: 9_000,
            },
        )
        .await
        .unwrap();
    let ann = Signed::<RoundAnnouncement>::from_envelope(env)
        .verify()
        .unwrap()
        .payload;
    let round = ann.round_id.to_string();

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
    let give_up = Instant::now() + Duration::from_secs(60);
    let url = loop {
        if let Ok(u) = std::fs::read_to_string(&addr_file) {
            if !u.trim().is_empty() {
                break u.trim().to_string();
            }
        }
        assert!(Instant::now() < give_up, "validator-0 did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
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
    kill_a_validator_mid_round("sqlite", None).await;
    match std::env::var("HALLMARK_TEST_DATABASE_URL") {
        Ok(url) => kill_a_validator_mid_round("postgres", Some(&url)).await,
        Err(_) => assert_ne!(
            std::env::var("HALLMARK_REQUIRE_POSTGRES").as_deref(),
            Ok("1"),
            "HALLMARK_REQUIRE_POSTGRES=1 but HALLMARK_TEST_DATABASE_URL is not set"
        ),
    }
}
