//! The eval lane through real nodes: workers commit archives on the ledger and upload them to
//! the coordinator; after the deadline every validator fetches the signed roster, checks each
//! archive, anchors its tasks on the ledger and measures every member first-hand. Honest
//! validators' reports are byte-identical; a tampered archive, a roster signed by another key
//! and each escape attempt are refused or contained with the reason recorded; the owner's
//! lying pick does not move decentralized weights.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{cfg, wait_result};

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use hallmark_core::{sha256, Envelope, Keypair, PublicKey, Signed};
use hallmark_eval::samples::{self, SUBMISSIONS};
use hallmark_ledger::{Role, TxBody};
use hallmark_node::config::{GenesisBalance, RoleName};
use hallmark_node::http_ledger::HttpLedger;
use hallmark_node::messages::{
    EvaluationRecord, NewRoundRequest, OwnerPickRequest, Roster, RoundAnnouncement, RoundResult,
    ScoreReport,
};
use hallmark_node::registration::submit_tx;
use hallmark_node::run::{run_node_with, write_secret, RunningNode};
use hallmark_node::{LaneRegistry, NodeClient};

/// A coordinator in front of the real one that re-signs every roster with another key.
#[derive(Clone)]
struct Forger {
    upstream: String,
    http: reqwest::Client,
    key: Keypair,
}

async fn forward(
    State(f): State<Forger>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = f
        .http
        .request(method, format!("{}{path}", f.upstream))
        .body(body.to_vec());
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    let res = req.send().await.unwrap();
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
    let bytes = res.bytes().await.unwrap();
    if status.is_success() && uri.path().ends_with("/roster") {
        let env: Envelope = serde_json::from_slice(&bytes).unwrap();
        let roster = Signed::<Roster>::from_envelope(env)
            .verify()
            .unwrap()
            .payload;
        let forged = Signed::sign(&roster, &f.key).unwrap();
        return (status, axum::Json(forged.envelope().clone())).into_response();
    }
    (status, bytes.to_vec()).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validators_measure_first_hand_and_agree_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let operator = Keypair::generate();
    let coldkey = Keypair::generate();
    let coldkey_file = d.join("coldkey");
    write_secret(&coldkey_file, &coldkey.seed_hex()).unwrap();
    // The submitters, and which roster slot (SS58 order) the tampered one will take.
    let submitters: BTreeMap<&str, Keypair> = SUBMISSIONS
        .iter()
        .map(|(n, _, _)| (*n, Keypair::generate()))
        .collect();
    let mut order: Vec<(String, &str)> = submitters
        .iter()
        .map(|(n, k)| (k.public().to_ss58(), *n))
        .collect();
    order.sort();
    let tampered = order.iter().position(|(_, n)| *n == "wrong").unwrap();

    let mut c = cfg(d, "ledger");
    c.ledger.genesis = vec![GenesisBalance {
        account: coldkey.public(),
        balance: 1_000_000,
    }];
    let ledger = run_node_with(RoleName::Ledger, &c, LaneRegistry::standard(&c).unwrap())
        .await
        .unwrap();
    let mut c = cfg(d, "coordinator");
    c.coordinator.operators = vec![operator.public()];
    c.network.ledger_url = ledger.url();
    c.faults.tamper_archive = Some(tampered);
    let coordinator = run_node_with(
        RoleName::Coordinator,
        &c,
        LaneRegistry::standard(&c).unwrap(),
    )
    .await
    .unwrap();
    // The forging front for the third validator.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let forger_url = format!("http://{}", listener.local_addr().unwrap());
    let forger = Forger {
        upstream: coordinator.url(),
        http: reqwest::Client::new(),
        key: Keypair::generate(),
    };
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().fallback(forward).with_state(forger),
        )
        .await
        .unwrap()
    });
    let mut nodes: Vec<RunningNode> = Vec::new();
    let mut validators = Vec::new();
    for i in 0..3 {
        let mut c = cfg(d, &format!("validator-{i}"));
        c.network.ledger_url = ledger.url();
        c.network.coordinator_url = if i == 2 {
            forger_url.clone()
        } else {
            coordinator.url()
        };
        c.network.coordinator_hotkey = Some(coordinator.hotkey);
        c.network.coldkey_file = Some(coldkey_file.clone());
        c.network.stake = 5_000;
        c.validator.grace_ms = 200;
        c.validator.poll_ms = 50;
        let v = run_node_with(RoleName::Validator, &c, LaneRegistry::standard(&c).unwrap())
            .await
            .unwrap();
        validators.push((v.url(), v.hotkey));
        nodes.push(v);
    }
    let l = HttpLedger::new(&ledger.url());
    let chain = l.chain_id().await.unwrap();
    for key in submitters.values() {
        let body = TxBody::Register {
            hotkey: key.public(),
            role: Role::Worker,
            stake: 500,
        };
        submit_tx(&l, &chain, &coldkey, body).await.unwrap();
    }

    let op = NodeClient::new(&coordinator.url()).signed_by(operator.clone());
    let env: Envelope = op
        .post(
            "/v1/rounds",
            &NewRoundRequest {
                lane: "eval".into(),
                params: serde_json::json!({"tasks": 4, "items": 32}),
                window_ms: 3_000,
            },
        )
        .await
        .unwrap();
    let ann = Signed::<RoundAnnouncement>::from_envelope(env)
        .verify()
        .unwrap()
        .payload;
    let run = ann.round_id.to_string();
    let upload = format!("/v1/runs/{run}/submissions");
    let coord = NodeClient::new(&coordinator.url());

    // Bad uploads first: unsigned, uncommitted, not an archive, someone else's bytes.
    let cheap = samples::archive("cheap").unwrap();
    let cheap_key = &submitters["cheap"];
    let as_worker = |k: &Keypair| coord.clone().signed_by(k.clone());
    let err = coord
        .post_bytes::<serde_json::Value>(&upload, cheap.clone(), "application/x-tar")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    let err = as_worker(cheap_key)
        .post_bytes::<serde_json::Value>(&upload, cheap.clone(), "application/x-tar")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("no_commitment"), "{err}");
    let err = as_worker(cheap_key)
        .post_bytes::<serde_json::Value>(&upload, b"not an archive".to_vec(), "application/x-tar")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid_archive"), "{err}");
    let err = coord
        .get::<Envelope>(&format!("/v1/runs/{run}/roster"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("roster_not_sealed"));

    // Every submitter commits, then uploads; a copier cannot commit the same bytes.
    for (name, key) in &submitters {
        let archive = samples::archive(name).unwrap();
        let body = TxBody::CommitArchive {
            lane: "eval".into(),
            archive_sha256: sha256(&archive).to_hex(),
        };
        submit_tx(&l, &chain, key, body).await.unwrap();
        let ack: serde_json::Value = as_worker(key)
            .post_bytes(&upload, archive.clone(), "application/x-tar")
            .await
            .unwrap();
        assert_eq!(ack["archive_sha256"], sha256(&archive).to_hex());
    }
    let copy = TxBody::CommitArchive {
        lane: "eval".into(),
        archive_sha256: sha256(&cheap).to_hex(),
    };
    let err = submit_tx(&l, &chain, &submitters["wrong"], copy)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "archive_taken");
    let err = as_worker(&submitters["wrong"])
        .post_bytes::<serde_json::Value>(&upload, cheap.clone(), "application/x-tar")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("not_committer"), "{err}");
    // The owner names a correct but costlier submission.
    let _: Envelope = op
        .post(
            &format!("/v1/rounds/{run}/pick"),
            &OwnerPickRequest {
                winner: Some(submitters["costly"].public()),
                scores: BTreeMap::new(),
            },
        )
        .await
        .unwrap();

    let results: Vec<RoundResult> = futures::future::join_all(
        validators
            .iter()
            .map(|(url, _)| wait_result(url, &run, Duration::from_secs(120))),
    )
    .await;
    let late = as_worker(cheap_key)
        .post_bytes::<serde_json::Value>(&upload, cheap.clone(), "application/x-tar")
        .await
        .unwrap_err();
    assert_eq!(late.code(), Some("submissions_closed"));

    let mut evals = Vec::new();
    for (url, hotkey) in &validators {
        let c = NodeClient::new(url);
        let rec: EvaluationRecord = c
            .get(&format!("/v1/consensus/evaluations/{run}"))
            .await
            .unwrap();
        let env: Envelope = c.get(&format!("/v1/consensus/scores/{run}")).await.unwrap();
        let report = Signed::<ScoreReport>::from_envelope(env).verify().unwrap();
        assert_eq!(&report.signer, hotkey);
        // The signed score report carries the measurement's hash, which is the hash of the
        // canonical report served.
        assert_eq!(
            report.payload.evaluation_sha256.as_deref(),
            Some(rec.report_sha256.as_str())
        );
        // No faults here: the signed scores are the measured ones.
        assert_eq!(report.payload.scores, rec.scores);
        let canonical = hallmark_core::canonical::to_canonical_bytes(&rec.report).unwrap();
        assert_eq!(sha256(&canonical).to_hex(), rec.report_sha256);
        evals.push(rec);
    }
    // The two validators reading the real roster agree byte for byte.
    assert_eq!(evals[0].report_sha256, evals[1].report_sha256);
    assert_eq!(
        hallmark_core::canonical::to_canonical_bytes(&evals[0].report).unwrap(),
        hallmark_core::canonical::to_canonical_bytes(&evals[1].report).unwrap()
    );
    // The third got a roster signed by another key: refused, nobody measured.
    let forged: hallmark_eval::EvalReport =
        serde_json::from_value(evals[2].report.clone()).unwrap();
    assert!(forged.members.is_empty());
    assert_eq!(forged.refusals.len(), 1);
    assert_eq!(forged.refusals[0].code, "roster_signature");
    assert_ne!(evals[2].report_sha256, evals[0].report_sha256);

    let report: hallmark_eval::EvalReport =
        serde_json::from_value(evals[0].report.clone()).unwrap();
    let name_of = |k: &PublicKey| {
        submitters
            .iter()
            .find(|(_, s)| &s.public() == k)
            .map(|(n, _)| *n)
            .unwrap()
    };
    // The tampered archive is refused by name and reason; it is not measured.
    assert_eq!(report.refusals.len(), 1, "{:?}", report.refusals);
    assert_eq!(report.refusals[0].code, "archive_hash_mismatch");
    assert_eq!(name_of(&report.refusals[0].worker), "wrong");
    let member = |n: &str| {
        report
            .members
            .iter()
            .find(|m| name_of(&m.worker) == n)
            .unwrap()
    };
    assert_eq!(
        member("clock").contained.as_ref().unwrap().code,
        "unknown_import"
    );
    assert_eq!(
        member("spin").contained.as_ref().unwrap().code,
        "out_of_fuel"
    );
    assert_eq!(
        member("grow").contained.as_ref().unwrap().code,
        "memory_limit"
    );
    assert!(member("cheap").score > member("costly").score);
    assert_eq!(member("cheap").correct_tasks, 4);
    // The tasks come from the roster and the ledger's anchor after the deadline.
    let anchor = l.anchor(ann.deadline_ms).await.unwrap().unwrap();
    assert_eq!(
        (report.anchor_size, report.anchor_root.clone()),
        (anchor.tree_size, anchor.root)
    );

    // Decisions: the measured best wins and gets the weights; the owner's pick is recorded.
    let cheap_pk = submitters["cheap"].public();
    for r in &results[..2] {
        assert_eq!(r.winner, Some(cheap_pk), "{r:?}");
        assert_eq!(r.weights_for, Some(cheap_pk), "{r:?}");
        assert_eq!(r.owner_pick, Some(submitters["costly"].public()));
    }
    let w: Vec<serde_json::Value> = NodeClient::new(&ledger.url())
        .get(&format!("/v1/ledger/weights/{}?lane=eval", ann.number))
        .await
        .unwrap();
    // Both honest validators set weights for cheap, and nobody set them for anyone else.
    let named: Vec<&serde_json::Value> = w
        .iter()
        .flat_map(|v| v["weights"].as_array().unwrap())
        .map(|e| &e["hotkey"])
        .collect();
    assert!(named.len() >= 2, "{w:?}");
    assert!(named.iter().all(|h| **h == cheap_pk.to_ss58()), "{w:?}");

    for n in nodes.into_iter().chain([coordinator, ledger]) {
        n.stop().await;
    }
}
