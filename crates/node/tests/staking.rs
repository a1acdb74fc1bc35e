//! The ledger's faucet and the heartbeat gate on jobs, over real HTTP: bad faucet input, the
//! per-address rate limit, a ledger without a faucet, and a worker that stops beating being
//! refused jobs until it beats again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::cfg;

use std::time::Duration;

use hallmark_core::{Keypair, PublicKey};
use hallmark_ledger::{Ledger, Role, TxBody};
use hallmark_node::config::{GenesisBalance, RoleName};
use hallmark_node::http_ledger::HttpLedger;
use hallmark_node::jobs::messages::{ClaimRequest, ClaimResponse};
use hallmark_node::ledger_service::FaucetDrip;
use hallmark_node::registration::submit_tx;
use hallmark_node::run::{run_node, write_secret};
use hallmark_node::{ClientError, NodeClient};
use serde_json::json;

async fn refused<T: std::fmt::Debug>(
    fut: impl std::future::Future<Output = Result<T, ClientError>>,
) -> (u16, String, serde_json::Value) {
    match fut.await.expect_err("must be refused") {
        ClientError::Api { status, error, .. } => (status, error.code, error.details),
        other => panic!("not an API refusal: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faucet_limits_and_inactive_workers_get_no_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let faucet = Keypair::generate();
    let faucet_file = d.join("faucet.key");
    write_secret(&faucet_file, &faucet.seed_hex()).unwrap();
    let mut c = cfg(d, "ledger");
    c.ledger.genesis = vec![GenesisBalance {
        account: faucet.public(),
        balance: 1_000,
    }];
    c.ledger.faucet.key_file = Some(faucet_file);
    c.ledger.faucet.amount = 400;
    c.ledger.heartbeat_epoch_secs = 1;
    c.ledger.inactive_after_epochs = 1;
    let ledger = run_node(RoleName::Ledger, &c).await.unwrap();
    let l = NodeClient::new(&ledger.url());
    let http = HttpLedger::new(&ledger.url());

    // Bad input: not JSON, an unknown field, not an address.
    let (status, code, _) = refused(l.post_raw("/v1/ledger/faucet", b"{".to_vec())).await;
    assert_eq!((status, code.as_str()), (400, "invalid_json"));
    let who = Keypair::generate();
    let extra = json!({"address": who.public(), "amount": 1_000_000});
    let (status, _, _) = refused(l.post::<_, FaucetDrip>("/v1/ledger/faucet", &extra)).await;
    assert_eq!(status, 400);
    let bad = json!({"address": "not-an-address"});
    let (status, _, _) = refused(l.post::<_, FaucetDrip>("/v1/ledger/faucet", &bad)).await;
    assert_eq!(status, 400);
    assert_eq!(http.balance(&faucet.public()).await.unwrap().0, 1_000);

    // One drip per address per interval; another address is not held back by it.
    let drip = http.faucet(&who.public()).await.unwrap();
    assert_eq!((drip.amount, drip.balance), (400, 400));
    let body = json!({"address": who.public()});
    let (status, code, details) =
        refused(l.post::<_, FaucetDrip>("/v1/ledger/faucet", &body)).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    let retry = details["retry_after_secs"].as_i64().unwrap();
    assert!((3_590..=3_600).contains(&retry), "{details}");
    let other = Keypair::generate();
    assert_eq!(http.faucet(&other.public()).await.unwrap().balance, 400);
    // 200 left, less than a drip: refused as empty, and the address keeps its slot.
    let third = Keypair::generate();
    let (status, code, _) =
        refused(l.post::<_, FaucetDrip>("/v1/ledger/faucet", &json!({"address": third.public()})))
            .await;
    assert_eq!((status, code.as_str()), (503, "faucet_empty"));
    assert_eq!(http.balance(&third.public()).await.unwrap().0, 0);
    let topped = submit_tx(
        &http,
        "hallmark-devnet",
        &who,
        TxBody::Transfer {
            to: faucet.public(),
            amount: 400,
        },
    )
    .await;
    assert!(topped.is_ok(), "{topped:?}");
    assert_eq!(http.faucet(&third.public()).await.unwrap().balance, 400);

    // Stake and lookups: bad address 400, unknown 404.
    let (status, code, _) = refused(l.get::<serde_json::Value>("/v1/ledger/stakes/nope")).await;
    assert_eq!((status, code.as_str()), (400, "invalid_address"));
    let unknown: PublicKey = Keypair::generate().public();
    let (status, _, _) =
        refused(l.get::<serde_json::Value>(&format!("/v1/ledger/stakes/{unknown}"))).await;
    assert_eq!(status, 404);
    let (status, _, _) =
        refused(l.get::<serde_json::Value>(&format!("/v1/ledger/confidential/{unknown}"))).await;
    assert_eq!(status, 404);

    // A worker registered straight on the ledger (no node, so no heartbeat loop).
    let mut c = cfg(d, "coordinator");
    c.network.ledger_url = ledger.url();
    // Clients here are fresh keys: the stake gate has its own test (jobs.rs).
    c.coordinator.clients.min_stake = 0;
    let coordinator = run_node(RoleName::Coordinator, &c).await.unwrap();
    let worker = Keypair::generate();
    let registered = submit_tx(
        &http,
        "hallmark-devnet",
        &other,
        TxBody::Register {
            hotkey: worker.public(),
            role: Role::Worker,
            stake: 100,
        },
    )
    .await;
    assert!(registered.is_ok(), "{registered:?}");
    let board = NodeClient::new(&coordinator.url()).signed_by(worker.clone());
    let claim = ClaimRequest {
        lane: "stark".into(),
    };
    let none: ClaimResponse = board.post("/v1/jobs/claim", &claim).await.unwrap();
    assert!(none.job.is_none());
    // Silent for more than one 1 s epoch: inactive, refused.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let mg = http.metagraph().await.unwrap();
    assert!(!mg.neuron(&worker.public()).unwrap().active);
    let (status, code, _) = refused(board.post::<_, ClaimResponse>("/v1/jobs/claim", &claim)).await;
    assert_eq!((status, code.as_str()), (403, "worker_inactive"));
    // A heartbeat brings it back.
    submit_tx(&http, "hallmark-devnet", &worker, TxBody::Heartbeat {})
        .await
        .unwrap();
    let back: ClaimResponse = board.post("/v1/jobs/claim", &claim).await.unwrap();
    assert!(back.job.is_none());

    // A ledger without a faucet says so.
    let plain = run_node(RoleName::Ledger, &cfg(d, "plain")).await.unwrap();
    let (status, code, _) =
        refused(NodeClient::new(&plain.url()).post::<_, FaucetDrip>("/v1/ledger/faucet", &body))
            .await;
    assert_eq!((status, code.as_str()), (404, "faucet_disabled"));

    plain.stop().await;
    coordinator.stop().await;
    ledger.stop().await;
}
