//! A lane the node has never heard of, added through the registry alone: a test-only `echo`
//! job lane runs through the job board, the workers' executor loop, the validators' votes,
//! the certificate and the ledger's settlement and slashing, with no pipeline module changed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::cfg;

use std::time::{Duration, Instant};

use hallmark_consensus::{verify_certificate, Quorum, SlashReason, VoteOutcome};
use hallmark_core::{
    ExecuteError, Executor, JobLane, Keypair, Signed, SpecError, Verdict, VerdictBuilder,
};
use hallmark_ledger::{SettledJob, Slash};
use hallmark_node::config::{GenesisBalance, NodeConfig, RoleName};
use hallmark_node::jobs::{JobRequest, JobStatus, JobView};
use hallmark_node::run::{run_node_with, write_secret, RunningNode};
use hallmark_node::{LaneRegistry, NodeClient};
use serde::{Deserialize, Serialize};

/// Asks a worker to hand back `text`, byte for byte.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EchoSpec {
    text: String,
}

/// The validator side: the artifact must be exactly the spec's text.
struct EchoLane;

impl JobLane for EchoLane {
    type Spec = EchoSpec;
    /// The context the registry binds: the byte the verifier expects first, to show a
    /// context reaches the verifier.
    type Context = Option<u8>;

    fn name(&self) -> &'static str {
        "echo"
    }

    fn check_names(&self) -> &'static [&'static str] {
        &["echo_matches"]
    }

    fn check_spec(&self, spec: &EchoSpec) -> Result<(), SpecError> {
        if spec.text.is_empty() || spec.text.len() > 64 {
            return Err(SpecError::OutOfBounds("text must be 1..=64 bytes".into()));
        }
        Ok(())
    }

    fn describe(&self, spec: &EchoSpec) -> String {
        format!("echo {:?}", spec.text)
    }

    fn max_artifact_bytes(&self) -> usize {
        64
    }

    fn artifact_digest(&self, artifact: &[u8]) -> String {
        hallmark_core::sha256(artifact).to_hex()
    }

    fn verify(&self, first: &Option<u8>, spec: &EchoSpec, artifact: &[u8]) -> Verdict {
        let mut v = VerdictBuilder::new("echo");
        let ok = artifact == spec.text.as_bytes() && first.is_none_or(|b| artifact[0] == b);
        if ok {
            v.pass("echo_matches", "the artifact is the text");
        } else {
            v.fail("echo_matches", "the artifact is not the text");
        }
        v.finish()
    }
}

/// The worker side: honest, or a liar that hands back something else.
struct EchoExecutor {
    lie: bool,
}

impl Executor for EchoExecutor {
    type Spec = EchoSpec;

    fn lane(&self) -> &'static str {
        "echo"
    }

    fn backend(&self) -> String {
        "echo-cpu".into()
    }

    fn execute(&self, spec: &EchoSpec) -> Result<Vec<u8>, ExecuteError> {
        Ok(if self.lie {
            spec.text.to_uppercase().into_bytes()
        } else {
            spec.text.clone().into_bytes()
        })
    }
}

/// The standard lanes plus `echo`, as every role in this test runs them.
fn registry(c: &NodeConfig) -> LaneRegistry {
    LaneRegistry::standard(c)
        .unwrap()
        .without_executors()
        .with_job_lane(EchoLane, || Some(b'h'))
}

async fn wait_settled(c: &NodeClient, id: &str, votes: usize) -> JobView {
    let start = Instant::now();
    loop {
        let job: JobView = c.get(&format!("/v1/jobs/{id}")).await.unwrap();
        if job.status.is_settled() && job.settle_tx.is_some() && job.votes.len() >= votes {
            return job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "job {id} not settled: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn echo_request(client: &Keypair, text: &str, nonce: &str) -> Signed<JobRequest> {
    Signed::sign(
        &JobRequest {
            lane: "echo".into(),
            spec: serde_json::json!({ "text": text }),
            nonce: nonce.into(),
            created_ms: hallmark_core::time::now_unix_ms(),
        },
        client,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registry_line_adds_a_job_lane_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let coldkey = Keypair::generate();
    let coldkey_file = d.join("coldkey");
    write_secret(&coldkey_file, &coldkey.seed_hex()).unwrap();
    let mut c = cfg(d, "ledger");
    c.ledger.genesis = vec![GenesisBalance {
        account: coldkey.public(),
        balance: 1_000_000,
    }];
    let ledger = run_node_with(RoleName::Ledger, &c, registry(&c))
        .await
        .unwrap();
    let mut c = cfg(d, "coordinator");
    c.network.ledger_url = ledger.url();
    c.coordinator.jobs.settle_poll_ms = 100;
    // Clients here are fresh keys: the stake gate has its own test (jobs.rs).
    c.coordinator.clients.min_stake = 0;
    let coordinator = run_node_with(RoleName::Coordinator, &c, registry(&c))
        .await
        .unwrap();
    let net = |c: &mut NodeConfig, stake: u64| {
        c.network.ledger_url = ledger.url();
        c.network.coordinator_url = coordinator.url();
        c.network.coordinator_hotkey = Some(coordinator.hotkey);
        c.network.coldkey_file = Some(coldkey_file.clone());
        c.network.stake = stake;
    };
    let mut nodes: Vec<RunningNode> = Vec::new();
    for i in 0..3 {
        let mut c = cfg(d, &format!("validator-{i}"));
        net(&mut c, 5_000);
        c.validator.poll_ms = 50;
        nodes.push(
            run_node_with(RoleName::Validator, &c, registry(&c))
                .await
                .unwrap(),
        );
    }
    let worker = |name: &str, lie: bool| {
        let mut c = cfg(d, name);
        net(&mut c, 1_000);
        c.worker.poll_ms = 50;
        let lanes = registry(&c).with_executor(EchoExecutor { lie });
        async move { run_node_with(RoleName::Worker, &c, lanes).await.unwrap() }
    };
    let honest = worker("worker-honest", false).await;
    let coord = NodeClient::new(&coordinator.url());
    let client = Keypair::generate();

    // The coordinator lists the lane's checks through the registry, and refuses a spec the
    // lane's own limits refuse, with the lane's code.
    let too_long = echo_request(&client, &"x".repeat(65), "01");
    let err = coord
        .post::<_, JobView>("/v1/jobs", too_long.envelope())
        .await
        .expect_err("out of the lane's bounds");
    assert_eq!(
        (err.status(), err.code()),
        (Some(422), Some("invalid_spec"))
    );
    let malformed = Signed::sign(
        &JobRequest {
            lane: "echo".into(),
            spec: serde_json::json!({ "txt": "hi" }),
            nonce: "01".into(),
            created_ms: hallmark_core::time::now_unix_ms(),
        },
        &client,
    )
    .unwrap();
    let err = coord
        .post::<_, JobView>("/v1/jobs", malformed.envelope())
        .await
        .expect_err("not an echo spec");
    assert_eq!(
        (err.status(), err.code()),
        (Some(422), Some("malformed_spec"))
    );

    // An honest echo: worked by the worker's echo executor, approved by every validator's
    // own echo verifier (with the context the registry bound), settled on the ledger.
    let req = echo_request(&client, "hello, lanes", "02");
    let job: JobView = coord.post("/v1/jobs", req.envelope()).await.unwrap();
    assert_eq!(job.lane, "echo");
    assert_eq!(job.summary, "echo \"hello, lanes\"");
    let job = wait_settled(&coord, &job.job_id, 3).await;
    assert_eq!(job.status, JobStatus::Approved, "{job:?}");
    assert_eq!(
        job.proof_hash.as_deref(),
        Some(hallmark_core::sha256(b"hello, lanes").to_hex().as_str())
    );
    let cert = job.certificate.clone().unwrap();
    assert_eq!(cert.outcome, VoteOutcome::Approved);
    let l = NodeClient::new(&ledger.url());
    let settled: SettledJob = l
        .get(&format!("/v1/ledger/jobs/{}", job.job_id))
        .await
        .unwrap();
    assert_eq!(settled.outcome, VoteOutcome::Approved);
    let (valid, _, total) = verify_certificate(&cert, &settled.stakes, Quorum::TWO_THIRDS).unwrap();
    assert!(3 * valid >= 2 * total, "{valid} of {total}");
    honest.stop().await;

    // A lying worker: every validator's verifier rejects, the certificate says so, and the
    // ledger slashes the worker for it.
    let liar = worker("worker-liar", true).await;
    let req = echo_request(&client, "hello again", "03");
    let job: JobView = coord.post("/v1/jobs", req.envelope()).await.unwrap();
    let job = wait_settled(&coord, &job.job_id, 3).await;
    assert_eq!(job.status, JobStatus::Rejected, "{job:?}");
    let worker_key = job.worker.unwrap();
    let start = Instant::now();
    loop {
        let slashes: Vec<Slash> = l.get("/v1/ledger/slashes").await.unwrap();
        if slashes.iter().any(|s| {
            s.hotkey == worker_key
                && s.job_id == job.job_id
                && s.reason == SlashReason::RejectedResult
        }) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{slashes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    liar.stop().await;
    for n in nodes.into_iter().chain([coordinator, ledger]) {
        n.stop().await;
    }
}
