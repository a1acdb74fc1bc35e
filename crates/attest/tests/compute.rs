//! Secure-compute intake on a real network over HTTP: a ledger, a coordinator and three
//! validators. Simulated providers (devnet test root) offer, hand in their evidence as signed
//! attestation jobs, and are listed only on the validators' certificate; every validator
//! checks the evidence itself and logs its verdict. Nonces, offers, claims, health and the
//! validators' external verifier are exercised with the bad inputs as well as the good ones.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hallmark_attest::pccs::PccsFetcher;
use hallmark_attest::provider::{
    evidence_submission, send_offer, Attestation, CollateralSource, OfferSpec, ProviderError,
    SimulatedProvider,
};
use hallmark_core::{Envelope, Keypair, Signed, Verdict};
use hallmark_node::compute::messages::*;
use hallmark_node::config::{
    ComputeSection, ExternalVerifierSection, GenesisBalance, NodeConfig, RoleName, ValidatorSection,
};
use hallmark_node::run::{run_node, write_secret, RunningNode};
use hallmark_node::{ClientError, NodeClient};
use hallmark_tee::collateral::{
    platform_of, CollateralCache, CollateralFetcher, QuoteCollateralV3,
};
use hallmark_tee::simulate::{Misbehaviour, DEFECTS};
use hallmark_tee::testroot::{TdQuoteSpec, TestRootOfTrust};

/// How long a provider waits for the validators' certificate in these tests.
const WAIT: Duration = Duration::from_secs(60);

struct Coord {
    _dir: tempfile::TempDir,
    node: RunningNode,
    client: NodeClient,
    validators: Vec<RunningNode>,
    _ledger: RunningNode,
}

/// What a test may change before the network starts.
#[derive(Default)]
struct Setup {
    compute: ComputeSection,
    /// Applied to every validator.
    validator: ValidatorSection,
    /// The validators' trust profile for the tee lane (`devnet` unless a test says otherwise).
    tee_profile: Option<&'static str>,
}

fn cfg(dir: &Path, name: &str, tee_profile: &str) -> NodeConfig {
    let mut c = NodeConfig {
        name: name.into(),
        data_dir: dir.join(name),
        ..NodeConfig::default()
    };
    let mut tee = toml::map::Map::new();
    tee.insert("profile".into(), toml::Value::String(tee_profile.into()));
    c.lanes.insert("tee".into(), toml::Value::Table(tee));
    // The validators here register after the ledger starts and vote at once.
    c.ledger.stake_epoch_secs = 0;
    c
}

/// A ledger, a coordinator and three equal-stake validators.
async fn coordinator(tweak: impl FnOnce(&mut Setup, &Path)) -> Coord {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut setup = Setup::default();
    tweak(&mut setup, d);
    let profile = setup.tee_profile.unwrap_or("devnet");
    let coldkey = Keypair::generate();
    let coldkey_file = d.join("coldkey");
    write_secret(&coldkey_file, &coldkey.seed_hex()).unwrap();
    let mut c = cfg(d, "ledger", profile);
    c.ledger.genesis = vec![GenesisBalance {
        account: coldkey.public(),
        balance: 1_000_000,
    }];
    let ledger = run_node(RoleName::Ledger, &c).await.unwrap();
    let mut c = cfg(d, "coordinator", profile);
    c.network.ledger_url = ledger.url();
    c.coordinator.jobs.settle_poll_ms = 100;
    c.coordinator.compute = setup.compute.clone();
    // Clients here are fresh keys: the stake gate has its own test (jobs.rs).
    c.coordinator.clients.min_stake = 0;
    let node = run_node(RoleName::Coordinator, &c).await.unwrap();
    let mut validators = Vec::new();
    for i in 0..3 {
        let mut c = cfg(d, &format!("validator-{i}"), profile);
        c.network.ledger_url = ledger.url();
        c.network.coordinator_url = node.url();
        c.network.coordinator_hotkey = Some(node.hotkey);
        c.network.coldkey_file = Some(coldkey_file.clone());
        c.network.stake = 5_000;
        c.validator = ValidatorSection {
            poll_ms: 50,
            ..setup.validator.clone()
        };
        validators.push(run_node(RoleName::Validator, &c).await.unwrap());
    }
    let client = NodeClient::new(&node.url());
    Coord {
        _dir: dir,
        node,
        client,
        validators,
        _ledger: ledger,
    }
}

/// Every verdict a validator logged for `job_id` (its `job_verdict` leaves), waiting until it
/// has voted (a validator outside the certificate may vote a moment after it settled).
async fn verdicts(validator: &RunningNode, job_id: &str) -> Vec<Verdict> {
    let start = std::time::Instant::now();
    loop {
        let found = logged_verdicts(validator, job_id).await;
        if !found.is_empty() || start.elapsed() > Duration::from_secs(20) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn logged_verdicts(validator: &RunningNode, job_id: &str) -> Vec<Verdict> {
    let c = NodeClient::new(&validator.url());
    let note = String::from_utf8(c.get_bytes("/v1/log/checkpoint").await.unwrap()).unwrap();
    let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    let mut out = Vec::new();
    for i in 0..size {
        let leaf: serde_json::Value = c.get(&format!("/v1/log/entries/{i}")).await.unwrap();
        if leaf["kind"] != "job_verdict" {
            continue;
        }
        let trace: serde_json::Value =
            serde_json::from_str(leaf["data"].as_str().unwrap()).unwrap();
        if trace["job_id"] == job_id {
            out.push(serde_json::from_value(trace["verdict"].clone()).unwrap());
        }
    }
    out
}

/// Whether every validator rejected the job's evidence with `check` failing.
async fn every_validator_failed(co: &Coord, a: &Attestation, check: &str) -> bool {
    for v in &co.validators {
        let vs = verdicts(v, &a.job.job_id).await;
        let failed = vs.iter().any(|v| {
            !v.accepted
                && v.checks
                    .iter()
                    .any(|c| c.name == check && c.outcome == hallmark_core::CheckOutcome::Fail)
        });
        if !failed {
            eprintln!("{vs:#?}");
            return false;
        }
    }
    true
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn honest_provider_is_listed_on_the_validators_certificate() {
    let co = coordinator(|_, _| {}).await;
    let p = SimulatedProvider::new(Keypair::generate(), "gpu-box-1", 2);
    let a = p.register(&co.client, WAIT).await.unwrap();
    assert_eq!(a.job.lane, ATTESTATION_LANE);
    assert_eq!(a.job.status.as_str(), "approved", "{:?}", a.job);
    assert!(a.listing.listed);
    // The listing carries the certificate: every validator's signed vote, 2/3 of stake.
    let cert = a
        .listing
        .certificate
        .clone()
        .expect("a listing stands on a certificate");
    assert!(cert.votes.len() >= 2, "2 of 3 equal stakes reach 2/3");
    assert!(3 * a.job.votes_valid_stake >= 2 * a.job.total_stake);
    assert_eq!(
        a.listing.attestation_job.as_deref(),
        Some(a.job.job_id.as_str())
    );
    // Decided by the certificate alone: the provider is not a staked worker.
    let start = std::time::Instant::now();
    loop {
        let job: hallmark_node::jobs::JobView = co
            .client
            .get(&format!("/v1/jobs/{}", a.job.job_id))
            .await
            .unwrap();
        if job.settle_tx.is_some() && job.votes.len() == 3 {
            assert_eq!(job.settle_tx.as_deref(), Some("certificate_only"));
            let events: Vec<&str> = job.events.iter().map(|e| e.event.as_str()).collect();
            assert!(events.contains(&"decided_by_certificate"), "{events:?}");
            assert!(!events.contains(&"settled_on_ledger"), "{events:?}");
            break;
        }
        assert!(start.elapsed() < WAIT);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each validator checked the evidence itself: every check of the lane passed.
    for v in &co.validators {
        let vs = verdicts(v, &a.job.job_id).await;
        assert_eq!(vs.len(), 1);
        assert!(vs[0].accepted, "{:#?}", vs[0]);
        assert!(vs[0].checks.iter().any(|c| c.name == "report_data_binding"));
    }

    let list = listed(&co.client).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].node_id, "gpu-box-1");
    assert_eq!(list[0].provider, p.key.public());
    assert_eq!(
        list[0].gpus,
        vec![GpuCount {
            model: "H100".into(),
            count: 2
        }]
    );

    // Offer, consent, the provider-signed attestation request and result, and the
    // coordinator's signed outcome are each a leaf of the coordinator's log, byte for byte.
    let events: Vec<ComputeEventView> = co
        .client
        .get("/v1/compute/providers/gpu-box-1/events")
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "compute_offer",
            "compute_consent",
            "compute_evidence_request",
            "compute_evidence_result",
            "compute_attestation"
        ]
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
    let ev = Signed::<AttestationEvent>::from_envelope(events[4].envelope.clone())
        .verify()
        .unwrap();
    assert_eq!(ev.signer, co.node.hotkey, "signed by the coordinator");
    assert!(ev.payload.listed);
    assert_eq!(ev.payload.certificate_votes, cert.votes.len());
    assert_eq!(list[0].evidence_log_index, Some(events[4].log_index));
    let note = co.client.get_bytes("/v1/log/checkpoint").await.unwrap();
    assert!(
        String::from_utf8(note).unwrap().contains("\n5\n"),
        "five leaves"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_defect_in_the_evidence_is_refused_by_every_validator_with_its_check_named() {
    let co = coordinator(|_, _| {}).await;
    for (i, (name, check)) in DEFECTS.into_iter().enumerate() {
        let mut p = SimulatedProvider::new(Keypair::generate(), &format!("bad-{i}"), 2);
        p.misbehaviour = Misbehaviour::only(name).unwrap();
        let a = p.register(&co.client, WAIT).await.unwrap();
        assert_eq!(a.job.status.as_str(), "rejected", "{name}");
        assert!(!a.listing.listed);
        assert_eq!(a.listing.attestation_state.as_deref(), Some("rejected"));
        assert!(
            every_validator_failed(&co, &a, check).await,
            "{name}: {check}"
        );
        // The refusal itself is a signed, logged event.
        let events: Vec<ComputeEventView> = co
            .client
            .get(&format!("/v1/compute/providers/bad-{i}/events"))
            .await
            .unwrap();
        let last = events.last().unwrap();
        assert_eq!(last.kind, "compute_attestation");
        let ev = Signed::<AttestationEvent>::from_envelope(last.envelope.clone())
            .verify()
            .unwrap();
        assert_eq!(ev.signer, co.node.hotkey);
        assert!(!ev.payload.listed);
        assert_eq!(ev.payload.outcome, "rejected");
    }
    assert!(listed(&co.client).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validators_in_the_production_profile_never_list_test_root_evidence() {
    let co = coordinator(|s, _| s.tee_profile = Some("production")).await;
    let p = SimulatedProvider::new(Keypair::generate(), "sim", 1);
    let a = p.register(&co.client, WAIT).await.unwrap();
    assert!(!a.listing.listed);
    assert!(every_validator_failed(&co, &a, "quote_signature_chain").await);
    assert!(listed(&co.client).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nonces_are_bound_to_the_authenticated_hotkey_and_used_once() {
    let co = coordinator(|_, _| {}).await;
    let alice = SimulatedProvider::new(Keypair::generate(), "alice-node", 1);
    let offer = send_offer(&co.client, &alice.key, &alice.spec)
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
    let sub = |nonce: &str, node: &str| {
        let mut spec = alice.spec.clone();
        spec.node_id = node.into();
        evidence_submission(
            &alice.key,
            &spec,
            &offer.offer_sha256,
            nonce,
            &alice.evidence(nonce).unwrap(),
        )
        .unwrap()
    };
    // Another hotkey cannot use (or burn) it.
    let e = as_mallory
        .post::<_, EvidenceAccepted>("/v1/compute/evidence", &sub(&grant.nonce, "alice-node"))
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (403, "nonce_not_yours".into()));
    let e = as_alice
        .post::<_, EvidenceAccepted>("/v1/compute/evidence", &sub(&"ab".repeat(32), "alice-node"))
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (422, "unknown_nonce".into()));
    as_alice
        .post::<_, EvidenceAccepted>("/v1/compute/evidence", &sub(&grant.nonce, "alice-node"))
        .await
        .unwrap();
    let e = as_alice
        .post::<_, EvidenceAccepted>("/v1/compute/evidence", &sub(&grant.nonce, "alice-node"))
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (409, "nonce_used".into()));

    // The attestation request must be this provider's, for this node, nonce and offer; the
    // result the requester's own, for that job, naming the evidence's digest.
    let fresh = |who: &NodeClient| {
        let who = who.clone();
        let req = req.clone();
        async move {
            who.post::<_, NonceGrant>("/v1/compute/nonces", &req)
                .await
                .unwrap()
                .nonce
        }
    };
    let nonce = fresh(&as_alice).await;
    let mut s = sub(&nonce, "alice-node");
    s.request = sub(&"cd".repeat(32), "alice-node").request;
    let e = as_alice
        .post::<_, EvidenceAccepted>("/v1/compute/evidence", &s)
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (422, "attestation_mismatch".into()));
    let nonce = fresh(&as_alice).await;
    let mut s = sub(&nonce, "alice-node");
    let other = sub(&nonce, "alice-node");
    s.result = other.result;
    let e = as_alice
        .post::<_, EvidenceAccepted>("/v1/compute/evidence", &s)
        .await
        .unwrap_err();
    assert_eq!(
        client_error(e),
        (422, "wrong_job".into()),
        "a result for another job"
    );
    let nonce = fresh(&as_alice).await;
    let mut s = sub(&nonce, "alice-node");
    s.evidence = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"{}");
    let e = as_alice
        .post::<_, EvidenceAccepted>("/v1/compute/evidence", &s)
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (422, "digest_mismatch".into()));
    let nonce = fresh(&as_alice).await;
    let mut s = sub(&nonce, "alice-node");
    s.evidence = "not base64!".into();
    let e = as_alice
        .post::<_, EvidenceAccepted>("/v1/compute/evidence", &s)
        .await
        .unwrap_err();
    assert_eq!(client_error(e), (400, "invalid_evidence".into()));

    // A nonce for one node does not answer for another.
    let mut second = SimulatedProvider::new(alice.key.clone(), "alice-node-2", 1);
    second.spec.region = "x".into();
    send_offer(&co.client, &second.key, &second.spec)
        .await
        .unwrap();
    let grant: NonceGrant = as_alice.post(path, &req).await.unwrap();
    let e = as_alice
        .post::<_, EvidenceAccepted>("/v1/compute/evidence", &sub(&grant.nonce, "alice-node-2"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offers_need_matching_signatures_consent_and_terms() {
    let co = coordinator(|_, _| {}).await;
    let key = Keypair::generate();
    let spec = OfferSpec {
        node_id: "n1".into(),
        gpus: vec![GpuCount {
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
        consented_at_ms: hallmark_core::time::now_unix_ms(),
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
    // Consent at a time that cannot be (issue 19, hole 6): the epoch, before it, an hour
    // ahead. (Past 2^53 a number has no canonical JSON form: such a consent is malformed.)
    for at in [0, -1, hallmark_core::time::now_unix_ms() + 3_600_000] {
        let odd_time = ProviderConsent {
            consented_at_ms: at,
            ..good_consent.clone()
        };
        let e = post(env.clone(), &odd_time, &key, &key).await.unwrap_err();
        assert_eq!(client_error(e), (422, "invalid_time".into()), "{at}");
    }
    // Bad shapes.
    for (gpus, node_id) in [
        (
            vec![GpuCount {
                model: "H100".into(),
                count: 0,
            }],
            "n1",
        ),
        (
            vec![
                GpuCount {
                    model: "H100".into(),
                    count: 1,
                },
                GpuCount {
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
    for bad in [
        "no spaces allowed",
        "..",
        ".",
        ".hidden",
        "a..b",
        "-dash-first",
    ] {
        let mut s = spec.clone();
        s.node_id = bad.into();
        let (status, code, _) = api_error(send_offer(&co.client, &key, &s).await.unwrap_err());
        assert_eq!((status, code.as_str()), (422, "invalid_node_id"), "{bad}");
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_are_atomic_and_stale_ones_reclaimable_after_timeout_plus_margin() {
    let co = coordinator(|s, _| s.compute.claim_margin_secs = 1).await;
    let p = SimulatedProvider::new(Keypair::generate(), "rent-me", 2);
    p.register(&co.client, WAIT).await.unwrap();
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
    p2.register(&co.client, WAIT).await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_reports_are_receipted_and_an_unhealthy_node_is_unlisted() {
    let co = coordinator(|_, _| {}).await;
    let p = SimulatedProvider::new(Keypair::generate(), "h1", 2);
    p.register(&co.client, WAIT).await.unwrap();
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
    p.register(&co.client, WAIT).await.unwrap();
    assert_eq!(listed(&co.client).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_validators_external_verifier_digest_is_recorded_and_gates_their_votes() {
    use std::os::unix::fs::PermissionsExt;
    let write = |dir: &Path, name: &str, exit: i32| {
        let path = dir.join(name);
        let text =
            format!("#!/bin/sh\ncat > /dev/null\necho \"verifier says {exit}\"\nexit {exit}\n");
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        (path, hallmark_core::sha256(text.as_bytes()).to_hex())
    };
    let external = |command: &Path, allowlist: Vec<String>, timeout_secs: u64| {
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            "tee".to_string(),
            ExternalVerifierSection {
                command: vec![command.display().to_string()],
                allowlist,
                timeout_secs,
            },
        );
        m
    };
    let digest = std::sync::Mutex::new(String::new());
    let co = coordinator(|s, dir| {
        let (path, d) = write(dir, "accept.sh", 0);
        s.validator.external_verifiers = external(&path, vec![d.clone()], 30);
        *digest.lock().unwrap() = d;
    })
    .await;
    let p = SimulatedProvider::new(Keypair::generate(), "x1", 1);
    let a = p.register(&co.client, WAIT).await.unwrap();
    assert!(a.listing.listed);
    let d = digest.lock().unwrap().clone();
    for v in &co.validators {
        let vs = verdicts(v, &a.job.job_id).await;
        let x = vs[0]
            .checks
            .iter()
            .find(|c| c.name == "external_verifier")
            .expect("the second opinion is in the verdict");
        assert_eq!(x.outcome, hallmark_core::CheckOutcome::Pass);
        assert!(
            x.detail.contains(&d) && x.detail.contains("verifier says 0"),
            "{}",
            x.detail
        );
    }

    // A verifier that refuses, or one off the allowlist: every validator votes invalid.
    let co = coordinator(|s, dir| {
        let (path, _) = write(dir, "reject.sh", 3);
        s.validator.external_verifiers = external(&path, Vec::new(), 30);
    })
    .await;
    let p = SimulatedProvider::new(Keypair::generate(), "x2", 1);
    let a = p.register(&co.client, WAIT).await.unwrap();
    assert!(!a.listing.listed);
    assert!(every_validator_failed(&co, &a, "external_verifier").await);
    let vs = verdicts(&co.validators[0], &a.job.job_id).await;
    assert_eq!(vs[0].rejection.as_deref(), Some("external_verifier"));
    assert!(
        vs[0]
            .checks
            .iter()
            .any(|c| c.name == "quote_signature_chain"
                && c.outcome == hallmark_core::CheckOutcome::Pass),
        "the lane's own checks passed; the second opinion refused"
    );
    let co = coordinator(|s, dir| {
        let (path, _) = write(dir, "unlisted.sh", 0);
        s.validator.external_verifiers = external(&path, vec!["00".repeat(32)], 30);
    })
    .await;
    let p = SimulatedProvider::new(Keypair::generate(), "x3", 1);
    let a = p.register(&co.client, WAIT).await.unwrap();
    assert!(!a.listing.listed);
    assert!(every_validator_failed(&co, &a, "external_verifier").await);

    // A verifier that neither reads its input nor exits is cut off at the deadline and
    // counts as a refusal.
    let co = coordinator(|s, dir| {
        let path = dir.join("hang.sh");
        std::fs::write(&path, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        s.validator.external_verifiers = external(&path, Vec::new(), 1);
    })
    .await;
    let p = SimulatedProvider::new(Keypair::generate(), "x4", 1);
    let a = p.register(&co.client, WAIT).await.unwrap();
    assert!(!a.listing.listed);
    let vs = verdicts(&co.validators[0], &a.job.job_id).await;
    let x = vs[0]
        .checks
        .iter()
        .find(|c| c.name == "external_verifier")
        .unwrap();
    assert!(x.detail.contains("timed out after 1 s"), "{}", x.detail);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evidence_without_collateral_is_filled_from_pccs_or_refused() {
    let root = Arc::new(TestRootOfTrust::devnet().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let url = pccs(root, hits.clone()).await;
    let fetcher = PccsFetcher::new(&url, Duration::from_secs(5)).unwrap();
    let mut cache = CollateralCache::new(24 * 3600);
    let co = coordinator(|_, _| {}).await;
    for i in 0..2 {
        let mut p = SimulatedProvider::new(Keypair::generate(), &format!("nocoll-{i}"), 1);
        p.omit_collateral = true;
        assert!(p.evidence(&"ab".repeat(32)).unwrap().collateral.is_null());
        let source = CollateralSource {
            pccs: &fetcher,
            cache: &mut cache,
        };
        let a = p
            .register_with(&co.client, Some(source), WAIT)
            .await
            .unwrap();
        assert!(a.listing.listed, "{:?}", a.job);
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        4,
        "one PCCS round (4 requests) for both: cached by FMSPC"
    );

    // Without collateral and without a PCCS to fill it, every validator fails closed and
    // says why.
    let mut p = SimulatedProvider::new(Keypair::generate(), "nocoll", 1);
    p.omit_collateral = true;
    let a = p.register(&co.client, WAIT).await.unwrap();
    assert!(!a.listing.listed);
    assert!(every_validator_failed(&co, &a, "collateral_format").await);
}

#[tokio::test]
async fn a_node_with_a_bad_tee_or_verifier_config_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = |command: Vec<String>, allowlist: Vec<String>| {
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            "tee".to_string(),
            ExternalVerifierSection {
                command,
                allowlist,
                timeout_secs: 5,
            },
        );
        m
    };
    // The validator checks its verifiers before it registers anywhere.
    for (i, (want, ext)) in [
        (
            "not a SHA-256",
            verifier(vec!["/bin/true".into()], vec!["abc".into()]),
        ),
        ("command is empty", verifier(Vec::new(), Vec::new())),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = cfg(dir.path(), &format!("v{i}"), "devnet");
        c.validator.external_verifiers = ext;
        let err = match run_node(RoleName::Validator, &c).await {
            Ok(_) => panic!("started with a bad config ({want})"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("validator.external_verifiers.tee") && err.contains(want),
            "{err}"
        );
    }
    // Every role reads the lanes' sections.
    let mut c = cfg(dir.path(), "c", "devnet");
    let mut tee = toml::map::Map::new();
    tee.insert(
        "nvidia_jwks_file".into(),
        toml::Value::String("/nonexistent/jwks.json".into()),
    );
    c.lanes.insert("tee".into(), toml::Value::Table(tee));
    let err = run_node(RoleName::Coordinator, &c)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("[lanes.tee]") && err.contains("/nonexistent"),
        "{err}"
    );
    let mut c = cfg(dir.path(), "c2", "devnet");
    c.lanes
        .insert("nosuch".into(), toml::Value::Table(Default::default()));
    let err = run_node(RoleName::Coordinator, &c)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("[lanes.nosuch]"), "{err}");
}
