//! Proven jobs over real HTTP between in-process nodes: a client's signed request, a worker's
//! proof, three validators' votes (one equivocating), the certificate, the ledger's own
//! re-check and slashing, lease expiry and reassignment, and the bad inputs each endpoint
//! must refuse with a structured 4xx.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::cfg;

use std::time::{Duration, Instant};

use base64::Engine;
use hallmark_consensus::{verify_certificate, JobResult, JobVote, Quorum, SlashReason};
use hallmark_core::{Keypair, Signed};
use hallmark_ledger::{Metagraph, SettledJob, Slash};
use hallmark_node::config::{GenesisBalance, NodeConfig, RoleName};
use hallmark_node::jobs::messages::{ClaimRequest, ClaimResponse};
use hallmark_node::jobs::{JobProver, JobRequest, JobStatus, JobView, ProofUpload, VoteAck};
use hallmark_node::run::{load_key, run_node, write_secret, RunningNode};
use hallmark_node::LaneRegistry;
use hallmark_node::NodeClient;
use hallmark_stark::{Bytes32, JobType};

struct Net {
    _dir: tempfile::TempDir,
    ledger: RunningNode,
    coordinator: RunningNode,
    validators: Vec<RunningNode>,
    workers: Vec<(RunningNode, Keypair)>,
}

/// Ledger, coordinator (1.5 s leases), three validators (the last one equivocates) and two
/// registered workers that do not prove on their own: the test drives their provers.
async fn start() -> Net {
    let dir = tempfile::tempdir().unwrap();
    let coldkey = Keypair::generate();
    let coldkey_file = dir.path().join("coldkey");
    write_secret(&coldkey_file, &coldkey.seed_hex()).unwrap();
    let mut c = cfg(dir.path(), "ledger");
    c.ledger.genesis = vec![GenesisBalance {
        account: coldkey.public(),
        balance: 1_000_000,
    }];
    let ledger = run_node(RoleName::Ledger, &c).await.unwrap();
    let mut c = cfg(dir.path(), "coordinator");
    c.network.ledger_url = ledger.url();
    c.coordinator.jobs.lease_ms = 1_500;
    c.coordinator.jobs.settle_poll_ms = 100;
    // Clients here are fresh keys: the stake gate has its own test (jobs.rs).
    c.coordinator.clients.min_stake = 0;
    let coordinator = run_node(RoleName::Coordinator, &c).await.unwrap();
    let net = |c: &mut NodeConfig, stake: u64| {
        c.network.ledger_url = ledger.url();
        c.network.coordinator_url = coordinator.url();
        c.network.coordinator_hotkey = Some(coordinator.hotkey);
        c.network.coldkey_file = Some(coldkey_file.clone());
        c.network.stake = stake;
    };
    let mut validators = Vec::new();
    for i in 0..3 {
        let mut c = cfg(dir.path(), &format!("validator-{i}"));
        net(&mut c, 5_000);
        c.validator.poll_ms = 50;
        c.faults.equivocate = i == 2;
        validators.push(run_node(RoleName::Validator, &c).await.unwrap());
    }
    let mut workers = Vec::new();
    for i in 0..2 {
        let mut c = cfg(dir.path(), &format!("worker-{i}"));
        net(&mut c, 1_000);
        c.worker.prove_jobs = false;
        let node = run_node(RoleName::Worker, &c).await.unwrap();
        let key = load_key(&c.key_path()).unwrap();
        workers.push((node, key));
    }
    Net {
        _dir: dir,
        ledger,
        coordinator,
        validators,
        workers,
    }
}

impl Net {
    async fn stop(self) {
        for (w, _) in self.workers {
            w.stop().await;
        }
        for n in self
            .validators
            .into_iter()
            .chain([self.coordinator, self.ledger])
        {
            n.stop().await;
        }
    }

    fn prover(&self, worker: usize, corrupt: bool) -> JobProver {
        JobProver::new(
            self.workers[worker].1.clone(),
            NodeClient::new(&self.coordinator.url()),
            LaneRegistry::standard(&NodeConfig::default()).unwrap(),
            hallmark_node::faults::Faults {
                corrupt_artifacts: corrupt,
                ..Default::default()
            },
            Duration::from_millis(50),
        )
    }
}

fn request(client: &Keypair, job_type: JobType, size: u32, nonce: &str) -> Signed<JobRequest> {
    Signed::sign(
        &JobRequest {
            lane: "stark".into(),
            // Built by hand (not through JobSpec::new) so tests can ask for sizes out of range.
            spec: serde_json::json!({"job_type": job_type, "size": size, "seed": Bytes32([7; 32])}),
            nonce: nonce.into(),
            created_ms: hallmark_core::time::now_unix_ms(),
        },
        client,
    )
    .unwrap()
}

async fn submit(c: &NodeClient, req: &Signed<JobRequest>) -> JobView {
    c.post("/v1/jobs", req.envelope()).await.unwrap()
}

/// Waits until the job is settled by vote and on the ledger, and every validator voted.
async fn wait_settled(c: &NodeClient, id: &str) -> JobView {
    let start = Instant::now();
    loop {
        let job: JobView = c.get(&format!("/v1/jobs/{id}")).await.unwrap();
        // Three validators, one of them twice, and the evidence of that stored.
        let all_voted = job.votes.len() >= 4 && !job.equivocations.is_empty();
        if job.status.is_settled() && job.settle_tx.is_some() && all_voted {
            return job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "job {id} not settled: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn refused<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    fut: impl std::future::Future<Output = Result<T, hallmark_node::ClientError>>,
) -> (u16, String) {
    let err = fut.await.expect_err("must be refused");
    (
        err.status().unwrap_or_else(|| panic!("no status: {err}")),
        err.code().unwrap().to_string(),
    )
}

fn stake(mg: &Metagraph, key: &hallmark_core::PublicKey) -> u64 {
    mg.neuron(key).unwrap().stake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_are_proven_voted_settled_and_slashed() {
    let net = start().await;
    let coord = NodeClient::new(&net.coordinator.url());
    let ledger = NodeClient::new(&net.ledger.url());
    let client = Keypair::generate();

    // An honest proof of each job type is approved with a certificate the ledger accepted.
    let mut approved = Vec::new();
    for (job_type, size) in [
        (JobType::Fib, 256),
        (JobType::Hashchain, 16),
        (JobType::Matmul, 4),
    ] {
        let req = request(&client, job_type, size, "01");
        let job = submit(&coord, &req).await;
        assert_eq!(job.status, JobStatus::Queued);
        // The same signed request again is the same job, not a second one.
        let again: JobView = coord.post("/v1/jobs", req.envelope()).await.unwrap();
        assert_eq!(again.job_id, job.job_id);
        assert!(net.prover(0, false).work_one().await.unwrap());
        approved.push(wait_settled(&coord, &job.job_id).await);
    }
    let mg_before: Metagraph = ledger.get("/v1/ledger/metagraph").await.unwrap();
    for job in &approved {
        assert_eq!(job.status, JobStatus::Approved, "{job:?}");
        assert_eq!(job.worker, Some(net.workers[0].1.public()));
        assert!(job.votes_valid_stake * 3 >= job.total_stake * 2);
        let lifecycle: Vec<&str> = job
            .events
            .iter()
            .map(|e| e.event.as_str())
            .filter(|e| ["queued", "assigned", "proven", "approved", "rejected"].contains(e))
            .collect();
        assert_eq!(lifecycle, ["queued", "assigned", "proven", "approved"]);
        assert!(job.events.iter().any(|e| e.event == "settled_on_ledger"));
        assert!(job.queued_ms <= job.assigned_ms.unwrap());
        assert!(job.assigned_ms <= job.proven_ms && job.proven_ms <= job.settled_ms);
        let settled: SettledJob = ledger
            .get(&format!("/v1/ledger/jobs/{}", job.job_id))
            .await
            .unwrap();
        assert_eq!(settled.worker, net.workers[0].1.public());
        // The certificate re-checks offline against the stakes the ledger settled it with
        // (today's differ: the equivocator has been slashed since).
        let cert = job.certificate.as_ref().unwrap();
        verify_certificate(cert, &settled.stakes, Quorum::TWO_THIRDS).unwrap();
        assert_eq!(settled.result_digest, cert.result_digest);
        // The equivocating validator is caught with both of its votes.
        assert_eq!(job.equivocations.len(), 1, "{job:?}");
        assert_eq!(job.equivocations[0].validator, net.validators[2].hotkey);
        // The package served is the one the worker signed, and it verifies locally.
        let bytes = coord
            .get_bytes(&format!("/v1/jobs/{}/proof", job.job_id))
            .await
            .unwrap();
        assert_eq!(
            hallmark_stark::proof_hash(&bytes).to_hex(),
            job.proof_hash.clone().unwrap()
        );
        hallmark_stark::Verifier::default()
            .verify(&bytes, None)
            .unwrap();
    }
    let worker0 = net.workers[0].1.public();
    assert_eq!(
        stake(&mg_before, &worker0),
        1_000,
        "honest worker not slashed"
    );

    // A corrupted proof is voted invalid, rejected, and its worker slashed on the ledger.
    let job = submit(&coord, &request(&client, JobType::Fib, 128, "02")).await;
    assert!(net.prover(1, true).work_one().await.unwrap());
    let rejected = wait_settled(&coord, &job.job_id).await;
    assert_eq!(rejected.status, JobStatus::Rejected, "{rejected:?}");
    assert!(rejected.votes_invalid_stake * 3 > rejected.total_stake);
    let worker1 = net.workers[1].1.public();
    let start = Instant::now();
    let slashes = loop {
        let slashes: Vec<Slash> = ledger.get("/v1/ledger/slashes").await.unwrap();
        let equivocations = slashes
            .iter()
            .filter(|s| s.reason == SlashReason::Equivocation)
            .count();
        if slashes.iter().any(|s| s.hotkey == worker1) && equivocations == 4 {
            break slashes;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{slashes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mg: Metagraph = ledger.get("/v1/ledger/metagraph").await.unwrap();
    assert_eq!(
        stake(&mg, &worker1),
        900,
        "10% of the corrupt worker's stake"
    );
    assert!(slashes.iter().any(|s| s.hotkey == worker1
        && s.reason == SlashReason::RejectedResult
        && s.amount == 100));
    // The equivocator lost stake once per job; honest validators lost nothing.
    assert!(stake(&mg, &net.validators[2].hotkey) < 5_000);
    assert_eq!(stake(&mg, &net.validators[0].hotkey), 5_000);
    assert_eq!(stake(&mg, &net.validators[1].hotkey), 5_000);
    let evidence: Vec<serde_json::Value> = coord.get("/v1/jobs/equivocations").await.unwrap();
    assert_eq!(evidence.len(), 4);

    reassignment_and_bad_inputs(&net, &coord, &client).await;
    net.stop().await;
}

/// A worker that claims a job and dies loses it when the lease runs out; the next worker gets
/// it. Then every endpoint's bad inputs.
async fn reassignment_and_bad_inputs(net: &Net, coord: &NodeClient, client: &Keypair) {
    let job = submit(coord, &request(client, JobType::Matmul, 8, "03")).await;
    let (dead_key, live) = (net.workers[1].1.clone(), net.prover(0, false));
    let dead = coord.at(coord.base()).signed_by(dead_key.clone());
    let claim: ClaimResponse = dead
        .post(
            "/v1/jobs/claim",
            &ClaimRequest {
                lane: "stark".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(claim.job.unwrap().job_id, job.job_id);
    // Nothing else is queued while the lease runs.
    assert!(!live.work_one().await.unwrap());
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    assert!(live.work_one().await.unwrap());
    let done = wait_settled(coord, &job.job_id).await;
    assert_eq!(done.status, JobStatus::Approved);
    assert_eq!(done.attempts, 2);
    assert_eq!(done.worker, Some(net.workers[0].1.public()));
    assert!(done.events.iter().any(|e| e.event == "lease_expired"));
    // The dead worker's late proof is refused and changes nothing.
    let late = JobResult {
        job_id: job.job_id.clone(),
        worker: dead_key.public(),
        result_digest: hallmark_stark::proof_hash(b"late").to_hex(),
    };
    let upload = ProofUpload {
        result: Signed::sign(&late, &dead_key).unwrap().envelope().clone(),
        package: base64::engine::general_purpose::STANDARD.encode(b"late"),
    };
    let path = format!("/v1/jobs/{}/proof", job.job_id);
    assert_eq!(
        refused(dead.post::<_, JobView>(&path, &upload)).await,
        (409, "not_assigned".into())
    );

    // Requests: not JSON, a forged signature, an unknown lane, a size out of range, a bad nonce.
    assert_eq!(
        refused(coord.post_raw("/v1/jobs", b"{nope".to_vec())).await,
        (400, "invalid_json".into())
    );
    let mut forged = request(client, JobType::Fib, 64, "04").envelope().clone();
    forged.payload = request(client, JobType::Fib, 65, "04")
        .envelope()
        .payload
        .clone();
    assert_eq!(
        refused(coord.post::<_, JobView>("/v1/jobs", &forged)).await,
        (401, "bad_signature".into())
    );
    let mut lane = request(client, JobType::Fib, 64, "04");
    lane = Signed::sign(
        &JobRequest {
            lane: "sat".into(),
            ..lane.verify().unwrap().payload
        },
        client,
    )
    .unwrap();
    assert_eq!(
        refused(coord.post::<_, JobView>("/v1/jobs", lane.envelope())).await,
        (422, "unknown_lane".into())
    );
    let big = request(client, JobType::Matmul, 4096, "04");
    assert_eq!(
        refused(coord.post::<_, JobView>("/v1/jobs", big.envelope())).await,
        (422, "invalid_spec".into())
    );
    let nonce = request(client, JobType::Fib, 64, "not hex");
    assert_eq!(
        refused(coord.post::<_, JobView>("/v1/jobs", nonce.envelope())).await,
        (422, "invalid_nonce".into())
    );
    assert_eq!(
        refused(coord.get::<JobView>("/v1/jobs/job-nope")).await,
        (404, "not_found".into())
    );
    assert_eq!(
        refused(coord.get::<Vec<JobView>>("/v1/jobs?status=bogus")).await,
        (400, "invalid_status".into())
    );

    // Claims: unsigned, from a key that is not a registered worker, for a lane without jobs.
    let claim = ClaimRequest {
        lane: "stark".into(),
    };
    let (status, _) = refused(coord.post::<_, ClaimResponse>("/v1/jobs/claim", &claim)).await;
    assert_eq!(status, 401);
    let stranger = coord.at(coord.base()).signed_by(Keypair::generate());
    assert_eq!(
        refused(stranger.post::<_, ClaimResponse>("/v1/jobs/claim", &claim)).await,
        (403, "not_registered".into())
    );
    let worker = coord.at(coord.base()).signed_by(net.workers[0].1.clone());
    assert_eq!(
        refused(
            worker.post::<_, ClaimResponse>("/v1/jobs/claim", &ClaimRequest { lane: "sat".into() })
        )
        .await,
        (422, "unknown_lane".into())
    );

    // Hand-ins for a job the worker holds: a digest that does not match, an oversized package,
    // a result signed by someone else, garbage base64.
    let job = submit(coord, &request(client, JobType::Fib, 64, "05")).await;
    let claim: ClaimResponse = worker.post("/v1/jobs/claim", &claim).await.unwrap();
    assert_eq!(claim.job.unwrap().job_id, job.job_id);
    let key = &net.workers[0].1;
    let upload = |signer: &Keypair, digest_of: &[u8], package: &[u8]| ProofUpload {
        result: Signed::sign(
            &JobResult {
                job_id: job.job_id.clone(),
                worker: key.public(),
                result_digest: hallmark_stark::proof_hash(digest_of).to_hex(),
            },
            signer,
        )
        .unwrap()
        .envelope()
        .clone(),
        package: base64::engine::general_purpose::STANDARD.encode(package),
    };
    let path = format!("/v1/jobs/{}/proof", job.job_id);
    assert_eq!(
        refused(worker.post::<_, JobView>(&path, &upload(key, b"a", b"b"))).await,
        (422, "digest_mismatch".into())
    );
    let huge = vec![0u8; hallmark_stark::MAX_PACKAGE_BYTES + 1];
    assert_eq!(
        refused(worker.post::<_, JobView>(&path, &upload(key, &huge, &huge))).await,
        (413, "oversized".into())
    );
    assert_eq!(
        refused(worker.post::<_, JobView>(&path, &upload(client, b"a", b"a"))).await,
        (403, "provenance_mismatch".into())
    );
    let mut garbage = upload(key, b"a", b"a");
    garbage.package = "%%%".into();
    assert_eq!(
        refused(worker.post::<_, JobView>(&path, &garbage)).await,
        (400, "invalid_package".into())
    );
    // Votes: on a job with no proof yet, from a non-validator, for another job, not JSON.
    let vote = |key: &Keypair, job_id: &str| {
        Signed::sign(
            &JobVote {
                job_id: job_id.into(),
                result_digest: "d".into(),
                valid: true,
            },
            key,
        )
        .unwrap()
    };
    let votes = format!("/v1/jobs/{}/votes", job.job_id);
    let v0 = load_validator_key(net, 0);
    assert_eq!(
        refused(coord.post::<_, VoteAck>(&votes, vote(&v0, &job.job_id).envelope())).await,
        (409, "not_proven".into())
    );
    assert_eq!(
        refused(coord.post::<_, VoteAck>(&votes, vote(client, &job.job_id).envelope())).await,
        (403, "not_registered".into())
    );
    assert_eq!(
        refused(coord.post::<_, VoteAck>(&votes, vote(&v0, "job-other").envelope())).await,
        (422, "wrong_job".into())
    );
    assert_eq!(
        refused(coord.post_raw(&votes, b"[]".to_vec())).await,
        (400, "invalid_json".into())
    );
    // After all that, the job is still held by its worker and nothing was stored for it.
    let still: JobView = coord
        .get(&format!("/v1/jobs/{}", job.job_id))
        .await
        .unwrap();
    assert_eq!(still.status, JobStatus::Assigned);
    assert!(still.votes.is_empty() && still.result.is_none());
}

fn load_validator_key(net: &Net, i: usize) -> Keypair {
    let dir = net._dir.path().join(format!("validator-{i}"));
    let key = load_key(&dir.join("hotkey")).unwrap();
    assert_eq!(key.public(), net.validators[i].hotkey);
    key
}

#[tokio::test]
async fn bad_job_and_slashing_configs_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path(), "ledger");
    c.ledger.slash_fraction_bps = 20_000;
    let err = run_node(RoleName::Ledger, &c).await.err().expect("refused");
    assert!(err.to_string().contains("slash_fraction_bps"), "{err}");
    type Tweak = fn(&mut NodeConfig);
    let cases: [(&str, Tweak); 2] = [
        ("coordinator.jobs.quorum", |c| {
            c.coordinator.jobs.quorum = (4, 3)
        }),
        ("lease_ms", |c| c.coordinator.jobs.lease_ms = 10),
    ];
    for (i, (want, tweak)) in cases.into_iter().enumerate() {
        let mut c = cfg(dir.path(), &format!("coordinator-{i}"));
        tweak(&mut c);
        let err = run_node(RoleName::Coordinator, &c)
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains(want), "{err}");
    }
}

/// Issue 19, hole 6: job submissions and compute claims need a client key with stake bonded
/// on the ledger, are rate-limited and capped per client, and refuse implausible times and
/// path-like node ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_need_bonded_stake_a_rate_and_plausible_requests() {
    use hallmark_ledger::Ledger;
    let dir = tempfile::tempdir().unwrap();
    let coldkey = Keypair::generate();
    let mut c = cfg(dir.path(), "ledger");
    c.ledger.genesis = vec![GenesisBalance {
        account: coldkey.public(),
        balance: 1_000_000,
    }];
    let ledger = run_node(RoleName::Ledger, &c).await.unwrap();
    let mut c = cfg(dir.path(), "coordinator");
    c.network.ledger_url = ledger.url();
    c.coordinator.clients.per_minute = 3;
    c.coordinator.clients.max_open_jobs = 2;
    assert_eq!(
        c.coordinator.clients.min_stake, 100,
        "stake is asked for by default"
    );
    let coordinator = run_node(RoleName::Coordinator, &c).await.unwrap();
    let coord = NodeClient::new(&coordinator.url());
    let client = Keypair::generate();
    let claim = |key: &Keypair, node: &str| {
        let c = coord.clone().signed_by(key.clone());
        let path = format!("/v1/compute/providers/{node}/claim");
        async move {
            c.post::<_, serde_json::Value>(&path, &serde_json::json!({"lease_secs": 60}))
                .await
        }
    };

    // A fresh key: no jobs, no claims.
    assert_eq!(
        refused(coord.post::<_, JobView>(
            "/v1/jobs",
            request(&client, JobType::Fib, 64, "01").envelope()
        ))
        .await,
        (403, "insufficient_stake".into())
    );
    assert_eq!(
        refused(claim(&client, "n1")).await,
        (403, "insufficient_stake".into())
    );
    // Path-like node ids are refused whoever asks.
    // (".." itself cannot be sent in a URL path through a client that resolves dot segments;
    // the offer test sends it in a body.)
    for bad in [".hidden", "a..b", "-x"] {
        assert_eq!(
            refused(claim(&client, bad)).await,
            (422, "invalid_node_id".into()),
            "{bad}"
        );
    }

    // The client's coldkey bonds the minimum to it (pending stake, as `hallmark stake` does).
    let l = hallmark_node::http_ledger::HttpLedger::new(&ledger.url());
    let chain = l.chain_id().await.unwrap();
    hallmark_node::registration::submit_tx(
        &l,
        &chain,
        &coldkey,
        hallmark_ledger::TxBody::Stake {
            hotkey: client.public(),
            amount: 100,
            tier: "cpu".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        l.stake(&client.public()).await.unwrap().unwrap().pending,
        100
    );
    // "Not enough" is remembered for a second at most.
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    // Times that cannot be: refused before they count against the rate.
    for created_ms in [
        0,
        -1,
        i64::MAX,
        hallmark_core::time::now_unix_ms() + 3_600_000,
    ] {
        let r = JobRequest {
            lane: "stark".into(),
            spec: serde_json::json!({"job_type": JobType::Fib, "size": 64, "seed": Bytes32([7; 32])}),
            nonce: "02".into(),
            created_ms,
        };
        let signed = Signed::sign(&r, &client).unwrap();
        let got = refused(coord.post::<_, JobView>("/v1/jobs", signed.envelope())).await;
        if created_ms == i64::MAX {
            // Past 2^53 a number has no canonical JSON form, so the signature already fails.
            assert_eq!(got, (401, "bad_signature".into()));
        } else {
            assert_eq!(got, (422, "invalid_time".into()), "{created_ms}");
        }
    }
    // Two jobs open, the third is over the per-client cap, the fourth over the rate.
    let first = request(&client, JobType::Fib, 64, "a1");
    let job = submit(&coord, &first).await;
    submit(&coord, &request(&client, JobType::Fib, 64, "a2")).await;
    assert_eq!(
        refused(coord.post::<_, JobView>(
            "/v1/jobs",
            request(&client, JobType::Fib, 64, "a3").envelope()
        ))
        .await,
        (429, "too_many_open_jobs".into())
    );
    assert_eq!(
        refused(coord.post::<_, JobView>(
            "/v1/jobs",
            request(&client, JobType::Fib, 64, "a4").envelope()
        ))
        .await,
        (429, "rate_limited".into())
    );
    // The same request again is its job, not a new one (and not gated).
    let again = submit(&coord, &first).await;
    assert_eq!(again.job_id, job.job_id);
    coordinator.stop().await;
    ledger.stop().await;
}
