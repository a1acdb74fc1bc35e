//! Secure-compute intake on a real coordinator over HTTP: simulated providers (devnet test
//! root) offer, attest and get listed or refused; nonces, offers, claims and health are
//! exercised with the bad inputs as well as the good ones.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hallmark_core::{Envelope, Keypair, Signed};
use hallmark_node::compute::messages::*;
use hallmark_node::compute::pccs::PccsFetcher;
use hallmark_node::compute::provider::{send_offer, OfferSpec, ProviderError, SimulatedProvider};
use hallmark_node::config::{ComputeSection, NodeConfig, RoleName};
use hallmark_node::run::{run_node, RunningNode};
use hallmark_node::{ClientError, NodeClient};
use hallmark_tee::collateral::{platform_of, CollateralFetcher, QuoteCollateralV3};
use hallmark_tee::nvidia::GpuCapacity;
use hallmark_tee::simulate::{Misbehaviour, DEFECTS};
use hallmark_tee::testroot::{TdQuoteSpec, TestRootOfTrust};
use hallmark_tee::Profile;

struct Coord {
    _dir: tempfile::TempDir,
    node: RunningNode,
    client: NodeClient,
}

async fn coordinator(tweak: impl FnOnce(&mut ComputeSection, &Path)) -> Coord {
    let dir = tempfile::tempdir().unwrap();
    let mut c = NodeConfig {
        name: "coordinator".into(),
        data_dir: dir.path().join("coordinator"),
        ..NodeConfig::default()
    };
    c.coordinator.compute.profile = Profile::Devnet;
    tweak(&mut c.coordinator.compute, dir.path());
    let node = run_node(RoleName::Coordinator, &c).await.unwrap();
    let client = NodeClient::new(&node.url());
    Coord {
        _dir: dir,
        node,
        client,
    }
}

fn api_error(e: ProviderError) -> (u16, String, serde_json::Value) {
    match e {
        ProviderError::Client(ClientError::Api { status, error, .. }) => {
            (status, error.code, error.details)
        }
        other => panic!("expected an API error, got {other}"),
    }
}

fn client_error(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Api { status, error, .. } => (status, error.code),
        other => panic!("expected an API error, got {other}"),
    }
}

async fn listed(c: &NodeClient) -> Vec<ProviderListing> {
    c.get("/v1/compute/providers").await.unwrap()
}

#[tokio::test]
async fn honest_provider_is_listed_by_a_signed_logged_event() {
    let co = coordinator(|_, _| {}).await;
    let p = SimulatedProvider::new(Keypair::generate(), "gpu-box-1", 2);
    let env = p.register(&co.client).await.unwrap();
    let ev = Signed::<EvidenceEvent>::from_envelope(env.clone())
        .verify()
        .unwrap();
    assert_eq!(ev.signer, co.node.hotkey, "signed by the coordinator");
    let e = ev.payload;
    assert!(e.verified && e.listed, "{:?}", e.result.errors);
    assert!(
        !e.production_evidence,
        "devnet evidence is never production evidence"
    );
    assert_eq!(e.collateral_source, CollateralSource::Evidence);
    assert!(e.result.binding_verified && e.result.gpu_verified);
    assert_eq!(e.result.tdx_status, "UpToDate");

    let list = listed(&co.client).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].node_id, "gpu-box-1");
    assert_eq!(list[0].provider, p.key.public());
    assert_eq!(
        list[0].gpus,
        vec![GpuCapacity {
            model: "H100".into(),
            count: 2
        }]
    );

    // Offer, consent and evidence are each a leaf of the coordinator's log, byte for byte.
    let events: Vec<ComputeEventView> = co
        .client
        .get("/v1/compute/providers/gpu-box-1/events")
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["compute_offer", "compute_consent", "compute_evidence"]
    );
    for e in &events {
        let leaf: serde_json::Value = co
            .client
            .get(&format!("/v1/log/entries/{}", e.log_index))
            .await
            .unwrap();
        assert_eq!(leaf["kind"], e.kind.as_str());
        assert_eq!(
            leaf["data"].as_str().unwrap().as_bytes(),
            e.envelope.canonical_bytes().unwrap()
        );
    }
    assert_eq!(events[2].envelope, env);
    let note = co.client.get_bytes("/v1/log/checkpoint").await.unwrap();
    assert!(
        String::from_utf8(note).unwrap().contains("\n3\n"),
        "three leaves"
    );
}

#[tokio::test]
async fn each_defect_in_the_evidence_is_refused_with_its_check_named() {
    let co = coordinator(|_, _| {}).await;
    for (i, (name, check)) in DEFECTS.into_iter().enumerate() {
        let mut p = SimulatedProvider::new(Keypair::generate(), &format!("bad-{i}"), 2);
        p.misbehaviour = Misbehaviour::only(name).unwrap();
        let (status, code, details) = api_error(p.register(&co.client).await.unwrap_err());
        assert_eq!(
            (status, code.as_str()),
            (422, "evidence_rejected"),
            "{check}"
        );
        let errors = details["errors"].to_string();
        assert!(errors.contains(check), "{check} not named in {errors}");
        // The refusal itself is a signed, logged event.
        let env: Envelope = serde_json::from_value(details["event"].clone()).unwrap();
        let ev = Signed::<EvidenceEvent>::from_envelope(env)
            .verify()
            .unwrap();
        assert_eq!(ev.signer, co.node.hotkey);
        assert!(!ev.payload.listed);
    }
    assert!(listed(&co.client).await.is_empty());
}

#[tokio::test]
async fn the_production_profile_never_lists_test_root_evidence() {
    let co = coordinator(|c, _| c.profile = Profile::Production).await;
    let p = SimulatedProvider::new(Keypair::generate(), "sim", 1);
    let (status, code, details) = api_error(p.register(&co.client).await.unwrap_err());
    assert_eq!((status, code.as_str()), (422, "evidence_rejected"));
    assert!(details["errors"]
        .to_string()
        .contains("quote_signature_chain"));
    assert!(listed(&co.client).await.is_empty());
}

#[tokio::test]
async fn nonces_are_bound_to_the_authenticated_hotkey_and_used_once() {
    let co = coordinator(|_, _| {}).await;
    let alice = SimulatedProvider::new(Keypair::generate(), "alice-node", 1);
    send_offer(&co.client, &alice.key, &alice.spec)
        .await
        .unwrap();
    let path = "/v1/compute/nonces";
    let req = NonceRequest {
        node_id: "alice-node".into(),
    };

    // No key, or an empty one: refused.
    let e = co
        .client
        .post::<_, NonceGrant>(path, &req)
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (401, "unauthenticated".into()));
    let r = reqwest::Client::new()
        .post(format!("{}{path}", co.node.url()))
        .header("x-hallmark-signer", "")
        .header(
            "x-hallmark-timestamp",
            hallmark_core::time::now_rfc3339_precise(),
        )
        .header("x-hallmark-signature", "")
        .body(serde_json::to_vec(&req).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Someone else's node: refused.
    let mallory = Keypair::generate();
    let as_mallory = co.client.clone().signed_by(mallory.clone());
    let e = as_mallory
        .post::<_, NonceGrant>(path, &req)
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (403, "not_your_node".into()));

    let as_alice = co.client.clone().signed_by(alice.key.clone());
    let grant: NonceGrant = as_alice.post(path, &req).await.unwrap();
    assert_eq!(grant.nonce.len(), 64);
    assert_eq!(grant.hotkey, alice.key.public());
    let sub = |nonce: &str, node: &str| EvidenceSubmission {
        node_id: node.into(),
        nonce: nonce.into(),
        evidence: alice.evidence(nonce).unwrap(),
    };
    // Another hotkey cannot use (or burn) it.
    let e = as_mallory
        .post::<_, Envelope>("/v1/compute/evidence", &sub(&grant.nonce, "alice-node"))
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (403, "nonce_not_yours".into()));
    let e = as_alice
        .post::<_, Envelope>("/v1/compute/evidence", &sub(&"ab".repeat(32), "alice-node"))
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (422, "unknown_nonce".into()));
    as_alice
        .post::<_, Envelope>("/v1/compute/evidence", &sub(&grant.nonce, "alice-node"))
        .await
        .unwrap();
    let e = as_alice
        .post::<_, Envelope>("/v1/compute/evidence", &sub(&grant.nonce, "alice-node"))
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (409, "nonce_used".into()));

    // A nonce for one node does not answer for another.
    let mut second = SimulatedProvider::new(alice.key.clone(), "alice-node-2", 1);
    second.spec.region = "x".into();
    send_offer(&co.client, &second.key, &second.spec)
        .await
        .unwrap();
    let grant: NonceGrant = as_alice.post(path, &req).await.unwrap();
    let e = as_alice
        .post::<_, Envelope>("/v1/compute/evidence", &sub(&grant.nonce, "alice-node-2"))
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (422, "nonce_node_mismatch".into()));
    // Garbage is a 400, not a 500.
    let e = as_alice
        .post_raw("/v1/compute/evidence", b"{not json".to_vec())
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (400, "invalid_json".into()));
}

#[tokio::test]
async fn offers_need_matching_signatures_consent_and_terms() {
    let co = coordinator(|_, _| {}).await;
    let key = Keypair::generate();
    let spec = OfferSpec {
        node_id: "n1".into(),
        gpus: vec![GpuCapacity {
            model: "H100".into(),
            count: 8,
        }],
        region: "eu".into(),
        price_per_gpu_hour: 100,
    };
    let terms: ComputeTerms = co.client.get("/v1/compute/terms").await.unwrap();
    let offer_env = |o: &CapacityOffer, k: &Keypair| Signed::sign(o, k).unwrap().envelope().clone();
    let offer = CapacityOffer {
        node_id: "n1".into(),
        provider: key.public(),
        gpus: spec.gpus.clone(),
        region: "eu".into(),
        price_per_gpu_hour: 100,
    };
    let env = offer_env(&offer, &key);
    let payload =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &env.payload).unwrap();
    let good_consent = ProviderConsent {
        node_id: "n1".into(),
        provider: key.public(),
        offer_sha256: hallmark_core::sha256(&payload).to_hex(),
        terms_sha256: terms.sha256.clone(),
        consented_at_ms: 0,
    };
    let post = |offer: Envelope, consent: &ProviderConsent, sender: &Keypair, signer: &Keypair| {
        let c = co.client.clone().signed_by(sender.clone());
        let body = OfferSubmission {
            offer,
            consent: Signed::sign(consent, signer).unwrap().envelope().clone(),
        };
        async move {
            c.post::<_, OfferAccepted>("/v1/compute/offers", &body)
                .await
        }
    };
    let other = Keypair::generate();
    // Sent by someone other than the offer's signer.
    let e = post(env.clone(), &good_consent, &other, &key)
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (403, "signer_mismatch".into()));
    // Consent for a different offer payload.
    let wrong_digest = ProviderConsent {
        offer_sha256: "00".repeat(32),
        ..good_consent.clone()
    };
    let e = post(env.clone(), &wrong_digest, &key, &key)
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (422, "consent_mismatch".into()));
    // Consent signed by another key.
    let e = post(env.clone(), &good_consent, &key, &other)
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (422, "consent_mismatch".into()));
    // Consent to other terms.
    let old_terms = ProviderConsent {
        terms_sha256: "11".repeat(32),
        ..good_consent.clone()
    };
    let e = post(env.clone(), &old_terms, &key, &key).await.unwrap_err();
    assert_eq!(client_error(e), (422, "terms_mismatch".into()));
    // Bad shapes.
    for (gpus, node_id) in [
        (
            vec![GpuCapacity {
                model: "H100".into(),
                count: 0,
            }],
            "n1",
        ),
        (
            vec![
                GpuCapacity {
                    model: "H100".into(),
                    count: 1,
                },
                GpuCapacity {
                    model: "h100".into(),
                    count: 1,
                },
            ],
            "n1",
        ),
    ] {
        let mut s = spec.clone();
        s.gpus = gpus;
        s.node_id = node_id.into();
        let (status, code, _) = api_error(send_offer(&co.client, &key, &s).await.unwrap_err());
        assert_eq!((status, code.as_str()), (422, "invalid_gpus"));
    }
    let mut s = spec.clone();
    s.node_id = "no spaces allowed".into();
    let (status, code, _) = api_error(send_offer(&co.client, &key, &s).await.unwrap_err());
    assert_eq!((status, code.as_str()), (422, "invalid_node_id"));
    // A tampered envelope.
    let mut tampered = env.clone();
    tampered.payload = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        serde_json::to_vec(&CapacityOffer {
            price_per_gpu_hour: 1,
            ..offer.clone()
        })
        .unwrap(),
    );
    let e = post(tampered, &good_consent, &key, &key).await.unwrap_err();
    assert_eq!(client_error(e).0, 400);

    post(env, &good_consent, &key, &key).await.unwrap();
    // The node id now belongs to `key`.
    let (status, code, _) = api_error(send_offer(&co.client, &other, &spec).await.unwrap_err());
    assert_eq!((status, code.as_str()), (409, "node_taken"));
    let e = co
        .client
        .clone()
        .signed_by(key)
        .post_raw("/v1/compute/offers", b"[]".to_vec())
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (400, "invalid_json".into()));
}

#[tokio::test]
async fn claims_are_atomic_and_stale_ones_reclaimable_after_timeout_plus_margin() {
    let co = coordinator(|c, _| c.claim_margin_secs = 1).await;
    let p = SimulatedProvider::new(Keypair::generate(), "rent-me", 2);
    p.register(&co.client).await.unwrap();
    let path = "/v1/compute/providers/rent-me/claim";
    let bob = co.client.clone().signed_by(Keypair::generate());
    let carol = co.client.clone().signed_by(Keypair::generate());

    // Eight concurrent claims: one wins.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = co.client.clone().signed_by(Keypair::generate());
        tasks.push(tokio::spawn(async move {
            c.post::<_, Envelope>(
                "/v1/compute/providers/rent-me/claim",
                &ClaimRequest { lease_secs: 60 },
            )
            .await
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(env) => won.push(env),
            Err(e) => assert_eq!(client_error(e), (409, "already_claimed".into())),
        }
    }
    assert_eq!(won.len(), 1);
    let grant = Signed::<ClaimGrant>::from_envelope(won.pop().unwrap())
        .verify()
        .unwrap()
        .payload;
    assert!(listed(&co.client).await[0].claimed);
    let e = bob
        .post::<_, Envelope>(
            "/v1/compute/providers/rent-me/release",
            &ReleaseRequest {
                claim_id: grant.claim_id.clone(),
                gpu_seconds: 1,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (409, "claim_not_held".into()));

    // A one-second lease: not reclaimable at its expiry, only after the one-second margin too.
    let owner = co.client.clone().signed_by(Keypair::generate());
    let mut p2 = SimulatedProvider::new(Keypair::generate(), "short-lease", 1);
    p2.spec.price_per_gpu_hour = 3600;
    p2.register(&co.client).await.unwrap();
    let short = "/v1/compute/providers/short-lease/claim";
    let g: Envelope = owner
        .post(short, &ClaimRequest { lease_secs: 1 })
        .await
        .unwrap();
    let g = Signed::<ClaimGrant>::from_envelope(g)
        .verify()
        .unwrap()
        .payload;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let e = carol
        .post::<_, Envelope>(short, &ClaimRequest { lease_secs: 5 })
        .await
        .unwrap_err();
    assert_eq!(
        client_error(e),
        (409, "already_claimed".into()),
        "inside the margin"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    carol
        .post::<_, Envelope>(short, &ClaimRequest { lease_secs: 5 })
        .await
        .unwrap();
    let e = owner
        .post::<_, Envelope>(
            "/v1/compute/providers/short-lease/release",
            &ReleaseRequest {
                claim_id: g.claim_id,
                gpu_seconds: 1,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        client_error(e),
        (409, "claim_not_held".into()),
        "the stale claim was taken over"
    );

    // Bad leases and unknown nodes.
    let e = bob
        .post::<_, Envelope>(path, &ClaimRequest { lease_secs: 0 })
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (422, "invalid_lease".into()));
    let e = bob
        .post::<_, Envelope>(
            "/v1/compute/providers/nope/claim",
            &ClaimRequest { lease_secs: 5 },
        )
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (404, "not_found".into()));

    // Release: usage above what the claim could have used is refused; an honest one is receipted.
    let carol_claim: Vec<ComputeEventView> = co
        .client
        .get("/v1/compute/providers/short-lease/events")
        .await
        .unwrap();
    let last = carol_claim
        .iter()
        .rev()
        .find(|e| e.kind == "compute_claim")
        .unwrap();
    let cg = Signed::<ClaimGrant>::from_envelope(last.envelope.clone())
        .verify()
        .unwrap()
        .payload;
    let rel = "/v1/compute/providers/short-lease/release";
    let e = carol
        .post::<_, Envelope>(
            rel,
            &ReleaseRequest {
                claim_id: cg.claim_id.clone(),
                gpu_seconds: 1_000_000,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (422, "usage_exceeds_claim".into()));
    let env: Envelope = carol
        .post(
            rel,
            &ReleaseRequest {
                claim_id: cg.claim_id,
                gpu_seconds: 1,
            },
        )
        .await
        .unwrap();
    let r = Signed::<UsageReceipt>::from_envelope(env).verify().unwrap();
    assert_eq!(r.signer, co.node.hotkey);
    assert_eq!(
        (r.payload.gpu_seconds, r.payload.revenue),
        (1, 1),
        "1 GPU-second at 3600/GPU-hour"
    );
    assert_eq!(r.payload.provider, p2.key.public());
    let kinds: Vec<String> = co
        .client
        .get::<Vec<ComputeEventView>>("/v1/compute/providers/short-lease/events")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "compute_claim").count(), 2);
    assert_eq!(kinds.last().map(String::as_str), Some("compute_usage"));
}

#[tokio::test]
async fn health_reports_are_receipted_and_an_unhealthy_node_is_unlisted() {
    let co = coordinator(|_, _| {}).await;
    let p = SimulatedProvider::new(Keypair::generate(), "h1", 2);
    p.register(&co.client).await.unwrap();
    let env = p.report_health(&co.client, true).await.unwrap();
    let r = Signed::<HealthReceipt>::from_envelope(env)
        .verify()
        .unwrap();
    assert_eq!(r.signer, co.node.hotkey);
    assert!(r.payload.listed);
    assert!(listed(&co.client).await[0].last_health_ms.is_some());
    let as_p = co.client.clone().signed_by(p.key.clone());
    let e = as_p
        .post::<_, Envelope>(
            "/v1/compute/providers/h1/health",
            &HealthReport {
                healthy: true,
                gpus_ok: 3,
                detail: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (422, "invalid_health".into()));
    let e = co
        .client
        .clone()
        .signed_by(Keypair::generate())
        .post::<_, Envelope>(
            "/v1/compute/providers/h1/health",
            &HealthReport {
                healthy: true,
                gpus_ok: 2,
                detail: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (403, "not_your_node".into()));
    let env = p.report_health(&co.client, false).await.unwrap();
    assert!(
        !Signed::<HealthReceipt>::from_envelope(env)
            .verify()
            .unwrap()
            .payload
            .listed
    );
    assert!(listed(&co.client).await.is_empty());
    // New evidence lists it again.
    p.register(&co.client).await.unwrap();
    assert_eq!(listed(&co.client).await.len(), 1);
}

#[tokio::test]
async fn the_external_verifier_digest_is_recorded_and_gates_listing() {
    use std::os::unix::fs::PermissionsExt;
    let write = |dir: &Path, name: &str, exit: i32| {
        let path = dir.join(name);
        let text =
            format!("#!/bin/sh\ncat > /dev/null\necho \"verifier says {exit}\"\nexit {exit}\n");
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        (path, hallmark_core::sha256(text.as_bytes()).to_hex())
    };
    let digest = std::sync::Mutex::new(String::new());
    let co = coordinator(|c, dir| {
        let (path, d) = write(dir, "accept.sh", 0);
        c.external_verifier = Some(vec![path.display().to_string()]);
        c.verifier_allowlist = vec![d.clone()];
        *digest.lock().unwrap() = d;
    })
    .await;
    let p = SimulatedProvider::new(Keypair::generate(), "x1", 1);
    let env = p.register(&co.client).await.unwrap();
    let e = Signed::<EvidenceEvent>::from_envelope(env)
        .verify()
        .unwrap()
        .payload;
    let x = e.external_verifier.unwrap();
    assert_eq!(x.sha256, *digest.lock().unwrap());
    assert!(x.allowlisted && x.accepted && e.listed);
    assert_eq!(x.detail, "verifier says 0");

    let co = coordinator(|c, dir| {
        let (path, _) = write(dir, "reject.sh", 3);
        c.external_verifier = Some(vec![path.display().to_string()]);
    })
    .await;
    let p = SimulatedProvider::new(Keypair::generate(), "x2", 1);
    let (status, code, details) = api_error(p.register(&co.client).await.unwrap_err());
    assert_eq!((status, code.as_str()), (422, "evidence_rejected"));
    let env: Envelope = serde_json::from_value(details["event"].clone()).unwrap();
    let e = Signed::<EvidenceEvent>::from_envelope(env)
        .verify()
        .unwrap()
        .payload;
    let x = e.external_verifier.unwrap();
    assert_eq!(x.sha256.len(), 64);
    assert!(!x.allowlisted && !x.accepted);
    assert!(
        e.result.verified(),
        "the built-in check passed; the external one refused"
    );

    // A verifier that neither reads its input nor exits is cut off at the deadline and
    // counts as a refusal.
    let co = coordinator(|c, dir| {
        let path = dir.join("hang.sh");
        std::fs::write(&path, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        c.external_verifier = Some(vec![path.display().to_string()]);
        c.verifier_timeout_secs = 1;
    })
    .await;
    let p = SimulatedProvider::new(Keypair::generate(), "x3", 1);
    let (status, code, details) = api_error(p.register(&co.client).await.unwrap_err());
    assert_eq!((status, code.as_str()), (422, "evidence_rejected"));
    assert!(
        details["errors"]
            .to_string()
            .contains("timed out after 1 s"),
        "{details}"
    );
}

/// A PCCS double: the test root's collateral in the PCS v4 wire format, counting requests.
async fn pccs(root: Arc<TestRootOfTrust>, hits: Arc<AtomicUsize>) -> String {
    use axum::http::header::HeaderName;
    use axum::response::IntoResponse;
    use axum::routing::get;
    let now = hallmark_core::time::now_unix() as u64;
    let c: QuoteCollateralV3 =
        serde_json::from_value(root.collateral(now - 3600, 30 * 24 * 3600).unwrap()).unwrap();
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let c = Arc::new(c);
    let with = |name: &'static str, value: String, body: Vec<u8>| {
        ([(HeaderName::from_static(name), value)], body).into_response()
    };
    let (c1, c2, c3, c4) = (c.clone(), c.clone(), c.clone(), c.clone());
    let router = axum::Router::new()
        .route(
            "/sgx/certification/v4/pckcrl",
            get(move || async move {
                with(
                    "sgx-pck-crl-issuer-chain",
                    enc(&c1.pck_crl_issuer_chain),
                    c1.pck_crl.clone(),
                )
            }),
        )
        .route(
            "/tdx/certification/v4/tcb",
            get(move || async move {
                let body = format!(
                    r#"{{"tcbInfo":{},"signature":"{}"}}"#,
                    c2.tcb_info,
                    hex::encode(&c2.tcb_info_signature)
                );
                with(
                    "tcb-info-issuer-chain",
                    enc(&c2.tcb_info_issuer_chain),
                    body.into_bytes(),
                )
            }),
        )
        .route(
            "/tdx/certification/v4/qe/identity",
            get(move || async move {
                let body = format!(
                    r#"{{"enclaveIdentity":{},"signature":"{}"}}"#,
                    c3.qe_identity,
                    hex::encode(&c3.qe_identity_signature)
                );
                with(
                    "sgx-enclave-identity-issuer-chain",
                    enc(&c3.qe_identity_issuer_chain),
                    body.into_bytes(),
                )
            }),
        )
        .route(
            "/sgx/certification/v4/rootcacrl",
            get(move || async move { hex::encode(&c4.root_ca_crl) }),
        )
        .layer(axum::middleware::from_fn(
            move |req, next: axum::middleware::Next| {
                let hits = hits.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    next.run(req).await
                }
            },
        ));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_pccs_fetcher_reads_the_pcs_wire_format() {
    let root = Arc::new(TestRootOfTrust::devnet().unwrap());
    let url = pccs(root.clone(), Arc::new(AtomicUsize::new(0))).await;
    let quote = root.td_quote(&TdQuoteSpec::new([0u8; 64])).unwrap();
    let platform = platform_of(&quote).unwrap();
    let got = PccsFetcher::new(&url, Duration::from_secs(5))
        .unwrap()
        .fetch(&platform)
        .await
        .unwrap();
    let now = hallmark_core::time::now_unix() as u64;
    let want: QuoteCollateralV3 =
        serde_json::from_value(root.collateral(now - 3600, 30 * 24 * 3600).unwrap()).unwrap();
    assert_eq!(
        got.tcb_info, want.tcb_info,
        "the signed TCB info text, byte for byte"
    );
    assert_eq!(got.tcb_info_signature, want.tcb_info_signature);
    assert_eq!(got.qe_identity, want.qe_identity);
    assert_eq!(got.pck_crl, want.pck_crl);
    assert_eq!(got.root_ca_crl, want.root_ca_crl);
    assert_eq!(got.tcb_info_issuer_chain, want.tcb_info_issuer_chain);
    // A PCCS that answers with errors is a fetch error, not a panic.
    let bad = PccsFetcher::new("http://127.0.0.1:9", Duration::from_secs(2)).unwrap();
    assert!(bad.fetch(&platform).await.is_err());
}

#[tokio::test]
async fn evidence_without_collateral_uses_the_fmspc_cache_filled_from_pccs() {
    let root = Arc::new(TestRootOfTrust::devnet().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let url = pccs(root, hits.clone()).await;
    let co = coordinator(|c, _| c.pccs_url = Some(url)).await;
    for i in 0..2 {
        let mut p = SimulatedProvider::new(Keypair::generate(), &format!("nocoll-{i}"), 1);
        p.omit_collateral = true;
        let env = p.register(&co.client).await.unwrap();
        let e = Signed::<EvidenceEvent>::from_envelope(env)
            .verify()
            .unwrap()
            .payload;
        assert!(e.listed, "{:?}", e.result.errors);
        assert_eq!(e.collateral_source, CollateralSource::Cache);
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        4,
        "one PCCS round (4 requests) for both: cached by FMSPC"
    );

    // Without a PCCS and without collateral, the check fails closed and says why.
    let co = coordinator(|_, _| {}).await;
    let mut p = SimulatedProvider::new(Keypair::generate(), "nocoll", 1);
    p.omit_collateral = true;
    let (status, code, details) = api_error(p.register(&co.client).await.unwrap_err());
    assert_eq!((status, code.as_str()), (422, "evidence_rejected"));
    assert!(
        details["errors"].to_string().contains("collateral"),
        "{details}"
    );
}

#[tokio::test]
async fn a_coordinator_with_a_bad_compute_config_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    type Tweak = fn(&mut ComputeSection);
    let cases: [(&str, Tweak); 3] = [
        ("not a SHA-256", |c| {
            c.verifier_allowlist = vec!["abc".into()]
        }),
        ("external_verifier is empty", |c| {
            c.external_verifier = Some(Vec::new())
        }),
        ("reading", |c| {
            c.nvidia_jwks_file = Some("/nonexistent/jwks.json".into())
        }),
    ];
    for (i, (want, tweak)) in cases.into_iter().enumerate() {
        let mut c = NodeConfig {
            name: "coordinator".into(),
            data_dir: dir.path().join(format!("c{i}")),
            ..NodeConfig::default()
        };
        tweak(&mut c.coordinator.compute);
        let err = match run_node(RoleName::Coordinator, &c).await {
            Ok(_) => panic!("started with a bad config ({want})"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("coordinator.compute") && err.contains(want),
            "{err}"
        );
    }
}
