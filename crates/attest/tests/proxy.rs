//! The attestation proxy in front of a simulated upstream, over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use hallmark_attest::proxy::{
    proxy_router, simulated_upstream_router, ProxyState, SimulatedUpstream,
};
use hallmark_tee::nvidia::Jwks;
use hallmark_tee::receipt::{verify_receipt, ReceiptSigner, VerificationReceipt};
use hallmark_tee::simulate::{Misbehaviour, SimulatedInstance};
use hallmark_tee::testroot::TestRootOfTrust;
use hallmark_tee::{Profile, TdxPolicy};

async fn serve(router: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    format!("http://{addr}")
}

async fn upstream(instances: Vec<SimulatedInstance>) -> String {
    let root = TestRootOfTrust::devnet().unwrap();
    serve(simulated_upstream_router(Arc::new(SimulatedUpstream {
        root,
        instances,
    })))
    .await
}

async fn proxy(upstream: &str, profile: Profile) -> String {
    let state = ProxyState::new(
        upstream,
        profile,
        TdxPolicy::default(),
        Jwks { keys: vec![] },
        ReceiptSigner::from_seed(&[9u8; 32]).unwrap(),
        Duration::from_secs(10),
    )
    .unwrap();
    serve(proxy_router(Arc::new(state))).await
}

const NONCE: &str = "0123456789abcdef-test-nonce";

async fn get(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn proxy_verifies_honest_instances_and_signs_a_receipt() {
    let up = upstream(vec![
        SimulatedInstance::new("a", "m1", 2, Misbehaviour::default()),
        SimulatedInstance::new("b", "m1", 1, Misbehaviour::default()),
        SimulatedInstance::new(
            "c",
            "other",
            1,
            Misbehaviour {
                debug: true,
                ..Default::default()
            },
        ),
    ])
    .await;
    let px = proxy(&up, Profile::Devnet).await;

    for algo in ["ecdsa", "ed25519"] {
        let (status, body) = get(&format!(
            "{px}/v1/attestation/chain?model=m1&nonce={NONCE}&signing_algo={algo}"
        ))
        .await;
        assert_eq!(status, 200, "{body:#}");
        let receipt: VerificationReceipt =
            serde_json::from_value(body["verification_receipt"].clone()).unwrap();
        let p = &receipt.payload;
        assert_eq!(
            (
                p.total_instances,
                p.tdx_uptodate_instances,
                p.binding_verified_instances
            ),
            (2, 2, 2)
        );
        assert_eq!(p.result, "verified");
        assert_eq!(p.nonce, NONCE);
        assert!(verify_receipt(&receipt, Some(&p.signing_public_key)).accepted);
        // The proxy's own quote binds its key and the nonce (dstack), under the devnet root.
        // Read the way the seed's clients read it: `proxy.attestation`,
        // `verification_receipt.payload.result`.
        assert_eq!(
            body["verification_receipt"]["payload"]["result"],
            "verified"
        );
        let b = &body["proxy"]["attestation"]["binding"];
        assert_eq!(b["signing_address"], p.signing_address.as_str());
        let expect = hallmark_tee::binding::dstack_report_data(&p.signing_address, NONCE).unwrap();
        assert_eq!(b["report_data"], hex::encode(expect));
        // The flat name of the last release is the same object.
        assert_eq!(body["proxy_attestation"], body["proxy"]["attestation"]);
    }

    // Passthrough: the evidence, its sha256 and the binding, unverified.
    let (status, body) = get(&format!(
        "{px}/v1/attestation/chain?model=m1&nonce={NONCE}&verify_mode=passthrough"
    ))
    .await;
    assert_eq!(status, 200);
    // The seed's names: `proxy.attestation`, `upstream.attestation`,
    // `upstream.attestation_sha256`, `binding_proof`.
    assert_eq!(
        body["upstream"]["attestation"]["instances"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let canon =
        hallmark_core::canonical::to_canonical_bytes(&body["upstream"]["attestation"]).unwrap();
    assert_eq!(
        body["upstream"]["attestation_sha256"],
        hallmark_core::sha256(&canon).to_hex()
    );
    assert_eq!(body["binding_proof"]["convention"], "dstack");
    assert_eq!(
        body["binding_proof"]["report_data"],
        body["proxy"]["attestation"]["binding"]["report_data"]
    );
    assert!(body["proxy"]["attestation"]["quote"].is_string());
    // And last release's flat names, as aliases of the same values.
    for (flat, nested) in [
        ("proxy_attestation", &body["proxy"]["attestation"]),
        ("upstream_attestation", &body["upstream"]["attestation"]),
        (
            "upstream_attestation_sha256",
            &body["upstream"]["attestation_sha256"],
        ),
        ("binding", &body["binding_proof"]),
    ] {
        assert_eq!(&body[flat], nested, "{flat}");
    }

    // A debug instance fails the chain with per-instance results.
    let (status, body) = get(&format!(
        "{px}/v1/attestation/chain?model=other&nonce={NONCE}"
    ))
    .await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "chutes_verification_failed");
    let r = &body["error"]["details"]["instance_results"][0];
    assert_eq!(r["debug_mode_disabled"], false);
    assert!(r["errors"].to_string().contains("debug_disabled"));

    // Bad input: 4xx with a code, never a 500.
    for (q, code) in [
        ("model=m1&nonce=short", "invalid_nonce"),
        ("nonce=0123456789abcdef-x", "missing_model"),
        (
            "model=m1&nonce=0123456789abcdef-x&signing_algo=rsa",
            "invalid_signing_algo",
        ),
        (
            "model=m1&nonce=0123456789abcdef-x&verify_mode=trust",
            "invalid_verify_mode",
        ),
        ("model=nope&nonce=0123456789abcdef-x", "not_found"),
    ] {
        let (status, body) = get(&format!("{px}/v1/attestation/chain?{q}")).await;
        assert!((400..500).contains(&status), "{q}: {status}");
        assert_eq!(body["error"]["code"], code, "{q}");
    }
}

#[tokio::test]
async fn production_profile_rejects_the_test_root() {
    let up = upstream(vec![SimulatedInstance::new(
        "a",
        "m1",
        0,
        Misbehaviour::default(),
    )])
    .await;
    // In production the proxy cannot attest itself here (no configfs-tsm): it refuses, 503.
    let px = proxy(&up, Profile::Production).await;
    let (status, body) = get(&format!("{px}/v1/attestation/chain?model=m1&nonce={NONCE}")).await;
    assert_eq!(status, 503, "{body:#}");
    assert_eq!(body["error"]["code"], "proxy_attestation_unavailable");

    // The production verifier itself never accepts devnet evidence.
    let root = TestRootOfTrust::devnet().unwrap();
    let inst = SimulatedInstance::new("a", "m1", 0, Misbehaviour::default());
    let ev = inst.evidence(&root, NONCE, 1_800_000_000).unwrap();
    let roots = hallmark_tee::TrustRoots::for_profile(Profile::Production).unwrap();
    let jwks = Jwks { keys: vec![] };
    let policy = TdxPolicy::default();
    let ctx = hallmark_tee::chain::ChainContext {
        now: 1_800_000_000,
        roots: &roots,
        policy: &policy,
        jwks: &jwks,
    };
    let r = hallmark_tee::chain::verify_instance(&inst.info, &ev, NONCE, &ctx);
    assert!(
        r.errors
            .iter()
            .any(|e| e.starts_with("quote_signature_chain")),
        "{r:#?}"
    );
}

#[tokio::test]
async fn every_receipt_is_a_leaf_of_the_proxy_log() {
    let up = upstream(vec![
        SimulatedInstance::new("a", "good", 1, Misbehaviour::default()),
        SimulatedInstance::new(
            "b",
            "bad",
            1,
            Misbehaviour {
                stale_tcb: true,
                ..Default::default()
            },
        ),
    ])
    .await;
    let store = hallmark_store::Store::open_url("sqlite::memory:")
        .await
        .unwrap();
    let log = hallmark_store::TransparencyLog::open(&store).await.unwrap();
    let state = ProxyState::new(
        &up,
        Profile::Devnet,
        TdxPolicy::default(),
        Jwks { keys: vec![] },
        ReceiptSigner::from_seed(&[9u8; 32]).unwrap(),
        Duration::from_secs(10),
    )
    .unwrap()
    .with_log(log, hallmark_core::Keypair::generate());
    let px = serve(proxy_router(Arc::new(state))).await;

    let (status, ok) = get(&format!(
        "{px}/v1/attestation/chain?model=good&nonce={NONCE}"
    ))
    .await;
    assert_eq!(status, 200);
    let (status, bad) = get(&format!(
        "{px}/v1/attestation/chain?model=bad&nonce={NONCE}"
    ))
    .await;
    assert_eq!(status, 502);
    for (i, receipt) in [
        &ok["verification_receipt"],
        &bad["error"]["details"]["verification_receipt"],
    ]
    .into_iter()
    .enumerate()
    {
        let index = if i == 0 {
            &ok["receipt_log_index"]
        } else {
            &bad["error"]["details"]["receipt_log_index"]
        };
        assert_eq!(index.as_u64(), Some(i as u64));
        let (status, leaf) = get(&format!("{px}/v1/log/entries/{i}")).await;
        assert_eq!(status, 200);
        assert_eq!(leaf["kind"], "attestation_receipt");
        let r: VerificationReceipt = serde_json::from_value(receipt.clone()).unwrap();
        assert_eq!(
            leaf["data"].as_str().unwrap().as_bytes(),
            hallmark_core::canonical::to_canonical_bytes(&r).unwrap()
        );
    }
    let r = reqwest::get(format!("{px}/v1/log/checkpoint"))
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("\n2\n"));
}
