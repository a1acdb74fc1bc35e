//! Issue 19, hole 1, the probe's attack replayed: fresh addresses draw from the faucet, pool
//! it into one validator with as much stake as every honest validator together, and vote a
//! valid proof down. The faucet's global budget caps what they draw, and stake bonded during
//! a stake epoch buys no vote before the next boundary: the proof is approved, the honest
//! worker keeps its stake.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::cfg;
use hallmark_consensus::JobVote;
use hallmark_core::{Keypair, Signed};
use hallmark_ledger::{Ledger, Role, TxBody};
use hallmark_node::config::{GenesisBalance, NodeConfig, RoleName};
use hallmark_node::http_ledger::HttpLedger;
use hallmark_node::jobs::{JobRequest, JobStatus, JobView};
use hallmark_node::registration::submit_tx;
use hallmark_node::run::{run_node, write_secret};
use hallmark_node::{ClientError, NodeClient};
use hallmark_stark::{Bytes32, JobType};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faucet_drawn_stake_buys_no_vote_against_a_valid_proof() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let coldkey = Keypair::generate();
    let coldkey_file = d.join("coldkey");
    write_secret(&coldkey_file, &coldkey.seed_hex()).unwrap();
    // The honest validators' keys exist before the ledger: they are its founding set.
    let honest: Vec<Keypair> = (0..3).map(|_| Keypair::generate()).collect();
    for (i, k) in honest.iter().enumerate() {
        write_secret(&cfg(d, &format!("validator-{i}")).key_path(), &k.seed_hex()).unwrap();
    }
    let mut c = cfg(d, "ledger");
    c.ledger.genesis = vec![GenesisBalance {
        account: coldkey.public(),
        balance: 1_000_000,
    }];
    // A devnet's settings: hour-long stake epochs, the faucet on (10 000 a drip, 30 000 an
    // interval to everyone together).
    c.ledger.stake_epoch_secs = 3_600;
    c.ledger.genesis_validators = honest.iter().map(Keypair::public).collect();
    c.ledger.faucet.key_file = Some(coldkey_file.clone());
    let ledger = run_node(RoleName::Ledger, &c).await.unwrap();
    let http = HttpLedger::new(&ledger.url());
    let chain = http.chain_id().await.unwrap();

    let mut c = cfg(d, "coordinator");
    c.network.ledger_url = ledger.url();
    c.coordinator.jobs.settle_poll_ms = 100;
    c.coordinator.clients.min_stake = 0;
    let coordinator = run_node(RoleName::Coordinator, &c).await.unwrap();
    let net = |c: &mut NodeConfig, stake: u64| {
        c.network.ledger_url = ledger.url();
        c.network.coordinator_url = coordinator.url();
        c.network.coordinator_hotkey = Some(coordinator.hotkey);
        c.network.coldkey_file = Some(coldkey_file.clone());
        c.network.stake = stake;
    };
    let mut nodes = Vec::new();
    for i in 0..3 {
        let mut c = cfg(d, &format!("validator-{i}"));
        net(&mut c, 10_000);
        c.validator.poll_ms = 50;
        nodes.push(run_node(RoleName::Validator, &c).await.unwrap());
    }
    let mut c = cfg(d, "worker-0");
    net(&mut c, 1_000);
    c.worker.poll_ms = 50;
    let worker = run_node(RoleName::Worker, &c).await.unwrap();

    // Six fresh addresses ask the faucet for 10 000 each: the budget pays three.
    let drawers: Vec<Keypair> = (0..6).map(|_| Keypair::generate()).collect();
    let mut paid = Vec::new();
    for k in &drawers {
        match http.faucet(&k.public()).await {
            Ok(drip) => paid.push((k, drip.amount)),
            Err(e) => assert_eq!(e.code(), "faucet_exhausted", "{e}"),
        }
    }
    assert_eq!(paid.len(), 3, "the faucet's budget is 30 000 an interval");
    // They pool it into one coldkey and register a validator with all of it: as much stake
    // as the three honest validators together.
    let (pool, _) = paid[0];
    for (k, amount) in &paid[1..] {
        submit_tx(
            &http,
            &chain,
            k,
            TxBody::Transfer {
                to: pool.public(),
                amount: *amount,
            },
        )
        .await
        .unwrap();
    }
    let attacker = Keypair::generate();
    submit_tx(
        &http,
        &chain,
        pool,
        TxBody::Register {
            hotkey: attacker.public(),
            role: Role::Validator,
            stake: 30_000,
        },
    )
    .await
    .unwrap();
    let mg = http.metagraph().await.unwrap();
    let a = mg.neuron(&attacker.public()).unwrap();
    assert_eq!(
        (a.stake, a.voting_stake),
        (30_000, 0),
        "bonded, not yet voting"
    );
    for k in &honest {
        assert_eq!(mg.neuron(&k.public()).unwrap().voting_stake, 10_000);
    }
    assert_eq!(mg.validator_stake(), 30_000);

    // A valid job: the worker proves it, the attacker votes it down.
    let client = Keypair::generate();
    let request = Signed::sign(
        &JobRequest {
            lane: "stark".into(),
            spec: serde_json::json!({"job_type": JobType::Fib, "size": 64, "seed": Bytes32([9; 32])}),
            nonce: "a77ac4".into(),
            created_ms: hallmark_core::time::now_unix_ms(),
        },
        &client,
    )
    .unwrap();
    let coord = NodeClient::new(&coordinator.url());
    let job: JobView = coord.post("/v1/jobs", request.envelope()).await.unwrap();
    let path = format!("/v1/jobs/{}", job.job_id);
    let start = Instant::now();
    let mut refusal = None;
    let settled = loop {
        let j: JobView = coord.get(&path).await.unwrap();
        if let (Some(digest), None) = (&j.proof_hash, &refusal) {
            let against = Signed::sign(
                &JobVote {
                    job_id: j.job_id.clone(),
                    result_digest: digest.clone(),
                    valid: false,
                },
                &attacker,
            )
            .unwrap();
            let e = coord
                .post::<_, serde_json::Value>(&format!("{path}/votes"), against.envelope())
                .await
                .unwrap_err();
            let ClientError::Api { status, error, .. } = e else {
                panic!("not an API refusal: {e}")
            };
            refusal = Some((status, error.code));
        }
        if j.status.is_settled() && j.settle_tx.is_some() && refusal.is_some() {
            break j;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not settled: {j:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refusal, Some((403, "no_voting_stake".to_string())));
    assert_eq!(settled.status, JobStatus::Approved);
    assert_eq!(settled.votes_invalid_stake, 0);
    // Nothing changed for the honest worker: approved on the ledger, never slashed.
    let on_ledger = http.settled_job(&job.job_id).await.unwrap().unwrap();
    assert_eq!(on_ledger.outcome, hallmark_consensus::VoteOutcome::Approved);
    assert!(http.slashes().await.unwrap().is_empty());
    assert_eq!(
        http.metagraph()
            .await
            .unwrap()
            .neuron(&worker.hotkey)
            .unwrap()
            .stake,
        1_000
    );

    worker.stop().await;
    for n in nodes {
        n.stop().await;
    }
    coordinator.stop().await;
    ledger.stop().await;
}
