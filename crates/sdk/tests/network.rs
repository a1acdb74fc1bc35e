//! The SDK against a real ledger and coordinator in this process, over HTTP: connect, ledger
//! reads, the faucet and its rate limit, stake and its refusals, a job request refused before
//! it is sent, and an unreachable node reported after the retries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hallmark_core::Keypair;
use hallmark_node::config::{GenesisBalance, NodeConfig, RoleName};
use hallmark_node::run::{run_node, write_secret};
use hallmark_sdk::{Client, Endpoints, RetryPolicy, SdkError};

fn cfg(dir: &std::path::Path, name: &str) -> NodeConfig {
    let mut c = NodeConfig {
        name: name.into(),
        data_dir: dir.join(name),
        ..NodeConfig::default()
    };
    c.ledger.stake_epoch_secs = 0;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sdk_reads_drips_stakes_and_reports_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let faucet = Keypair::generate();
    let faucet_file = d.join("faucet.key");
    write_secret(&faucet_file, &faucet.seed_hex()).unwrap();
    let mut c = cfg(d, "ledger");
    c.ledger.genesis = vec![GenesisBalance {
        account: faucet.public(),
        balance: 1_000_000,
    }];
    c.ledger.faucet.key_file = Some(faucet_file);
    c.ledger.faucet.amount = 10_000;
    let ledger = run_node(RoleName::Ledger, &c).await.unwrap();
    let mut c = cfg(d, "coordinator");
    c.network.ledger_url = ledger.url();
    let coordinator = run_node(RoleName::Coordinator, &c).await.unwrap();

    let client = Client::connect(Endpoints {
        coordinator: coordinator.url(),
        ledger: Some(ledger.url()),
        validators: vec![],
    })
    .await
    .unwrap();
    assert!(client.metagraph().await.unwrap().neurons.is_empty());

    // The faucet drips once, then says rate_limited (not retried: waiting is the caller's).
    let cold = Keypair::generate();
    let drip = client.faucet(&cold.public()).await.unwrap();
    assert_eq!((drip.amount, drip.balance), (10_000, 10_000));
    let again = client.faucet(&cold.public()).await.unwrap_err();
    assert_eq!(again.code(), Some("rate_limited"), "{again}");
    assert!(!again.is_transient());

    // Stake from the dripped balance; an unknown tier and more than the balance are refused
    // with the ledger's codes.
    let hot = Keypair::generate().public();
    let receipt = client.stake(&cold, &hot, 500, "cpu").await.unwrap();
    assert!(receipt.seq > 0);
    let e = client.stake(&cold, &hot, 5, "tpu").await.unwrap_err();
    assert!(matches!(e, SdkError::Ledger { .. }), "{e}");
    let e = client
        .stake(&cold, &hot, 1_000_000, "cpu")
        .await
        .unwrap_err();
    assert!(e.code().is_some(), "{e}");

    // A job request the coordinator would refuse is refused here, with its code; signing
    // calls need a key.
    let e = client
        .submit_job(
            "stark",
            serde_json::json!({"job_type": "fib", "size": 16, "seed": "00".repeat(32)}),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, SdkError::Usage(_)), "{e}");
    let signer = client.clone().with_key(Keypair::generate());
    let e = signer
        .submit_job(
            "stark",
            serde_json::json!({"job_type": "fib", "size": 0, "seed": "00".repeat(32)}),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, SdkError::Refused { .. }), "{e}");
    let e = signer
        .submit_job("no-such-lane", serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(e.code().is_some(), "{e}");
    // A job that does not exist: the coordinator's 404 code.
    let e = client
        .job_status("job-000000000000000000000000")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("not_found"), "{e}");

    // Ledger and log reads, typed: the drip and the stake show up in them.
    let account = client.account(&cold.public()).await.unwrap();
    assert_eq!(account.balance, 10_000 - 500, "{account:?}");
    let stake = client.stake_info(&hot).await.unwrap().unwrap();
    assert!(client
        .stake_info(&Keypair::generate().public())
        .await
        .unwrap()
        .is_none());
    assert_eq!(stake.staked + stake.pending, 500, "{stake:?}");
    let head = client.ledger_head().await.unwrap();
    assert!(head.header.seq > 0, "{head:?}");
    assert!(client.slashes().await.unwrap().is_empty());
    let note = client.checkpoint(&ledger.url()).await.unwrap();
    let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    assert!(size >= 2, "{note}");
    let entry = client.log_entry(&ledger.url(), 0).await.unwrap();
    assert_eq!(entry.index, 0);
    let proof = client
        .inclusion_proof(&ledger.url(), 0, size)
        .await
        .unwrap();
    assert_eq!(proof.root.len(), 64, "{proof:?}");
    client
        .consistency_proof(&ledger.url(), 1, size)
        .await
        .unwrap();
    let e = client
        .log_entry(&ledger.url(), size + 10)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("not_found"), "{e}");
    assert!(client.providers().await.unwrap().is_empty());
    // No round is open, and an id that is not one is refused before any request.
    let e = client.current_round("sat").await.unwrap_err();
    assert!(e.code().is_some(), "{e}");
    let e = client.round("../v1/health").await.unwrap_err();
    assert!(matches!(e, SdkError::Usage(_)), "{e}");

    // Nothing listening: a transport error once the retries are spent.
    let retry = RetryPolicy {
        attempts: 2,
        first_backoff: Duration::from_millis(1),
    };
    let dead = Client::connect_with(Endpoints::coordinator("http://127.0.0.1:9"), retry)
        .await
        .unwrap_err();
    assert!(dead.is_transient(), "{dead}");

    coordinator.stop().await;
    ledger.stop().await;
}
