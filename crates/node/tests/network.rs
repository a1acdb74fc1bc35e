//! A whole network started in this process on 127.0.0.1:0, talking real HTTP: one round end to
//! end, then the bad inputs a node must survive with a structured 4xx and no lost data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{cfg, wait_result};

/// How long a validator may take to decide a round.
const PATIENCE: Duration = Duration::from_secs(60);

use std::collections::BTreeMap;
use std::time::Duration;

use hallmark_core::{Envelope, ErrorBody, Keypair, Signed};
use hallmark_node::config::{GenesisBalance, NodeConfig, RoleName};
use hallmark_node::messages::{NewRoundRequest, RoundAnnouncement, ScoreReport};
use hallmark_node::run::{run_node, write_secret, RunningNode};
use hallmark_node::NodeClient;
use hallmark_sat::{InstanceParams, SatLane, SatRound, Witness};

const PARAMS: InstanceParams = InstanceParams {
    vars: 100,
    clauses: 400,
    k: 3,
    count: 3,
};

struct Net {
    _dir: tempfile::TempDir,
    ledger: RunningNode,
    coordinator: RunningNode,
    validators: Vec<RunningNode>,
    workers: Vec<RunningNode>,
    operator: Keypair,
    coldkey: Keypair,
}

async fn start(validators: usize, workers: usize) -> Net {
    start_with(validators, workers, |_, _| {}).await
}

/// [`start`], with `tune(i, config)` applied to validator i's config before it starts.
async fn start_with(
    validators: usize,
    workers: usize,
    tune: impl Fn(usize, &mut NodeConfig),
) -> Net {
    let dir = tempfile::tempdir().unwrap();
    let operator = Keypair::generate();
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
    c.coordinator.operators = vec![operator.public()];
    c.network.ledger_url = ledger.url();
    let coordinator = run_node(RoleName::Coordinator, &c).await.unwrap();

    let net = |c: &mut NodeConfig, stake: u64| {
        c.network.ledger_url = ledger.url();
        c.network.coordinator_url = coordinator.url();
        c.network.coordinator_hotkey = Some(coordinator.hotkey);
        c.network.coldkey_file = Some(coldkey_file.clone());
        c.network.stake = stake;
    };
    let mut vs = Vec::new();
    for i in 0..validators {
        let mut c = cfg(dir.path(), &format!("validator-{i}"));
        net(&mut c, 5_000);
        c.validator.grace_ms = 200;
        c.validator.poll_ms = 50;
        tune(i, &mut c);
        vs.push(run_node(RoleName::Validator, &c).await.unwrap());
    }
    let mut ws = Vec::new();
    for i in 0..workers {
        let mut c = cfg(dir.path(), &format!("worker-{i}"));
        net(&mut c, 500);
        c.worker.poll_ms = 50;
        c.faults.submit_delay_ms = i as u64 * 100;
        ws.push(run_node(RoleName::Worker, &c).await.unwrap());
    }
    Net {
        _dir: dir,
        ledger,
        coordinator,
        validators: vs,
        workers: ws,
        operator,
        coldkey,
    }
}

impl Net {
    async fn stop(self) {
        let nodes = self.workers.into_iter().chain(self.validators);
        for n in nodes.chain([self.coordinator, self.ledger]) {
            n.stop().await;
        }
    }
}

async fn publish(net: &Net, window_ms: i64) -> RoundAnnouncement {
    let client = NodeClient::new(&net.coordinator.url()).signed_by(net.operator.clone());
    let env: Envelope = client
        .post(
            "/v1/rounds",
            &NewRoundRequest {
                lane: "sat".into(),
                params: serde_json::to_value(PARAMS).unwrap(),
                window_ms,
            },
        )
        .await
        .unwrap();
    Signed::<RoundAnnouncement>::from_envelope(env)
        .verify()
        .unwrap()
        .payload
}

/// POSTs raw bytes and returns (status, wire error).
async fn post_raw(client: &NodeClient, path: &str, body: &[u8]) -> (u16, ErrorBody) {
    let err = client
        .post_raw(path, body.to_vec())
        .await
        .expect_err("must be refused");
    let status = err.status().unwrap_or_else(|| panic!("no status: {err}"));
    let code = err.code().unwrap().to_string();
    let hallmark_node::ClientError::Api { error, .. } = err else {
        unreachable!()
    };
    assert_eq!(error.code, code);
    (status, ErrorBody { error })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_round_end_to_end_then_bad_inputs() {
    let net = start(3, 2).await;
    let ann = publish(&net, 1_500).await;
    let mut results = Vec::new();
    for v in &net.validators {
        results.push(wait_result(&v.url(), ann.round_id.as_str(), PATIENCE).await);
    }
    // Every validator used all three signed reports and reached the same decision.
    let winner = results[0].winner.expect("a winner");
    for r in &results {
        assert_eq!(r.winner, Some(winner));
        assert_eq!(r.reports.len(), 3, "missing: {:?}", r.missing);
        assert!(r.quorum_met);
        assert!(r.agrees);
        assert_eq!(r.consensus, results[0].consensus);
    }
    // The faster worker (no handicap) wins.
    assert_eq!(winner, net.workers[0].hotkey);
    // Each validator set weights on the ledger for this epoch.
    let ledger = NodeClient::new(&net.ledger.url());
    let weights: Vec<serde_json::Value> = ledger
        .get(&format!("/v1/ledger/weights/{}?lane=sat", ann.number))
        .await
        .unwrap();
    assert_eq!(weights.len(), 3);

    // The served report is signed by the validator's metagraph hotkey and pinned to the run.
    let v0 = NodeClient::new(&net.validators[0].url());
    let served = v0
        .get_bytes(&format!("/v1/consensus/scores/{}", ann.round_id))
        .await
        .unwrap();
    let env: Envelope = serde_json::from_slice(&served).unwrap();
    let report = Signed::<ScoreReport>::from_envelope(env).verify().unwrap();
    assert_eq!(report.signer, net.validators[0].hotkey);
    assert_eq!(report.payload.run_id, ann.round_id);
    assert_eq!(
        v0.get_bytes(&format!("/v1/consensus/scores/{}", ann.round_id))
            .await
            .unwrap(),
        served,
        "served byte for byte"
    );

    feed_pages_through_the_validators_log(&v0, net.validators[0].hotkey, &ann).await;
    metrics_of_every_role(&net, &ann).await;

    bad_inputs(&net, &ann).await;

    // Nothing the bad inputs did changed what was stored: the same report, the same result.
    assert_eq!(
        v0.get_bytes(&format!("/v1/consensus/scores/{}", ann.round_id))
            .await
            .unwrap(),
        served
    );
    let again = wait_result(&net.validators[0].url(), ann.round_id.as_str(), PATIENCE).await;
    assert_eq!(again, results[0]);

    net.stop().await;
}

/// A round announced inside the previous round's grace period: both are still decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn back_to_back_rounds_are_all_decided() {
    let net = start(2, 1).await;
    let first = publish(&net, 600).await;
    let wait = (first.deadline_ms - hallmark_core::time::now_unix_ms() + 20).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let second = publish(&net, 600).await;
    for v in &net.validators {
        for round in [&first.round_id, &second.round_id] {
            let r = wait_result(&v.url(), round.as_str(), PATIENCE).await;
            assert_eq!(&r.run_id, round);
            assert_eq!(r.reports.len(), 2, "missing: {:?}", r.missing);
        }
    }
    net.stop().await;
}

/// Every role's `GET /metrics` is valid Prometheus text (checked by Prometheus's own
/// `promtool` where installed; `.ci/run` installs it and sets `HALLMARK_REQUIRE_PROMTOOL=1`),
/// and the numbers agree with what happened: the witnesses each validator verified, the round
/// it decided, the routes it answered.
async fn metrics_of_every_role(net: &Net, ann: &RoundAnnouncement) {
    let nodes = [
        ("ledger", net.ledger.url()),
        ("coordinator", net.coordinator.url()),
        ("validator", net.validators[0].url()),
        ("worker", net.workers[0].url()),
    ];
    for (role, url) in &nodes {
        // A request the next scrape counts (a scrape counts itself only afterwards).
        NodeClient::new(url)
            .get::<serde_json::Value>("/v1/health")
            .await
            .unwrap();
        let text =
            String::from_utf8(NodeClient::new(url).get_bytes("/metrics").await.unwrap()).unwrap();
        check_exposition(role, &text);
        assert!(
            text.contains(&format!("role=\"{role}\"")),
            "{role}: no role label\n{text}"
        );
        assert!(
            text.contains("hallmark_http_requests_total{"),
            "{role}\n{text}"
        );
        assert_eq!(
            text.contains("hallmark_log_leaves{"),
            *role != "worker",
            "{role}\n{text}"
        );
        if *role == "ledger" || *role == "validator" {
            let leaves = sample(&text, "hallmark_log_leaves", &[]);
            assert!(leaves >= 1.0, "{role}: log_leaves {leaves}");
        }
    }
    // validator-0 verified every witness the workers sent it, decided the round, and counted
    // the witness route by its template, not by the lane in the path.
    let text = String::from_utf8(
        NodeClient::new(&net.validators[0].url())
            .get_bytes("/metrics")
            .await
            .unwrap(),
    )
    .unwrap();
    let accepted = sample(
        &text,
        "hallmark_verifications_total",
        &[("lane", "sat"), ("verdict", "accepted")],
    );
    let stored = NodeClient::new(&net.validators[0].url())
        .get::<serde_json::Value>("/v1/traces?lane=sat&limit=1000")
        .await
        .unwrap()["traces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["trace"]["accepted"] == true)
        .count();
    assert_eq!(accepted as usize, stored, "{text}");
    assert!(accepted >= 1.0);
    assert_eq!(
        sample(
            &text,
            "hallmark_rounds_decided_total",
            &[("lane", "sat"), ("quorum_met", "true")]
        ),
        1.0,
        "{} {text}",
        ann.round_id
    );
    assert!(
        sample(
            &text,
            "hallmark_http_requests_total",
            &[("route", "/v1/{lane}/witness"), ("method", "POST")]
        ) >= accepted,
        "{text}"
    );
    assert!(
        text.contains("hallmark_http_request_duration_seconds_bucket{"),
        "{text}"
    );
}

/// The sum of the samples of `name` whose labels include every pair of `labels` (0 when
/// there is none).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('{'))
        .filter(|rest| {
            // Label values may hold braces (route templates): the set ends at the last "} ".
            let (set, _) = rest.rsplit_once("} ").unwrap();
            labels
                .iter()
                .all(|(k, v)| set.split(',').any(|p| p == format!("{k}=\"{v}\"")))
        })
        .map(|rest| rest.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// Checks `text` as Prometheus's text format: with `promtool check metrics` when it is
/// installed (required under `HALLMARK_REQUIRE_PROMTOOL=1`), and always line by line here.
fn check_exposition(role: &str, text: &str) {
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            assert!(
                rest.starts_with("HELP ") || rest.starts_with("TYPE "),
                "{role}: {line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(
            value.parse::<f64>().is_ok() || value == "+Inf",
            "{role}: {line}"
        );
        let name = series.split('{').next().unwrap();
        assert!(
            name.starts_with("hallmark_")
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{role}: {line}"
        );
    }
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match promtool {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("HALLMARK_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
                "promtool is required but cannot run: {e}"
            );
            eprintln!("promtool not installed: checked line by line only");
            return;
        }
    };
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{role}: promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The weight rules over a window of three rounds with a tier class allowed but never run:
/// validator-0 falls back proportionally and says so, and sets on the ledger exactly the
/// vector its signed result holds; validator-1 (configured to hold) sets nothing and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn weight_rules_window_fallback_and_hold_are_in_the_signed_result() {
    use hallmark_consensus::weights::MissingClassRule;
    let net = start_with(2, 2, |i, c| {
        c.validator.weights.window_rounds = 3;
        c.validator
            .weights
            .classes
            .insert("sat".into(), vec!["sat".into(), "sat-t2".into()]);
        c.validator.weights.missing_class = if i == 0 {
            MissingClassRule::Proportional
        } else {
            MissingClassRule::Hold
        };
    })
    .await;
    let mut last = None;
    for _ in 0..3 {
        let ann = publish(&net, 600).await;
        for v in &net.validators {
            wait_result(&v.url(), ann.round_id.as_str(), PATIENCE).await;
        }
        last = Some(ann);
    }
    let ann = last.unwrap();
    let v0 = wait_result(&net.validators[0].url(), ann.round_id.as_str(), PATIENCE).await;
    let rules = v0
        .weight_rules
        .clone()
        .expect("decentralized results carry the rules");
    assert_eq!(rules.window_rounds, 3);
    assert_eq!(rules.rows.len(), 3, "{rules:?}");
    assert_eq!(rules.missing_classes, ["sat-t2"]);
    assert_eq!(rules.fallback, Some(MissingClassRule::Proportional));
    assert_eq!(rules.held, None);
    assert!(!rules.weights.is_empty());
    assert!(v0.weights_tx.is_some());
    // The signed result says the same as the served one.
    let receipt: serde_json::Value = NodeClient::new(&net.validators[0].url())
        .get(&format!("/v1/rounds/{}/receipt", ann.round_id))
        .await
        .unwrap();
    let env: Envelope = serde_json::from_value(receipt["statement"].clone()).unwrap();
    let signed = Signed::<hallmark_node::messages::RoundResult>::from_envelope(env)
        .verify()
        .unwrap();
    assert_eq!(signed.signer, net.validators[0].hotkey);
    assert_eq!(signed.payload.weight_rules, Some(rules.clone()));
    // The ledger holds validator-0's vector for the epoch, entry for entry.
    let set: Vec<serde_json::Value> = NodeClient::new(&net.ledger.url())
        .get(&format!("/v1/ledger/weights/{}?lane=sat", ann.number))
        .await
        .unwrap();
    let text = serde_json::to_string(&set).unwrap();
    for (hotkey, weight) in &rules.weights {
        assert!(text.contains(&hotkey.to_ss58()), "{hotkey} missing: {text}");
        assert!(text.contains(&weight.to_string()), "{weight}: {text}");
    }
    assert!(
        !text.contains(&net.validators[1].hotkey.to_ss58()),
        "{text}"
    );

    let v1 = wait_result(&net.validators[1].url(), ann.round_id.as_str(), PATIENCE).await;
    let held = v1.weight_rules.expect("rules");
    assert!(held.held.as_deref().unwrap().contains("sat-t2"), "{held:?}");
    assert!(held.weights.is_empty());
    assert_eq!((v1.weights_tx, v1.weights_for), (None, None));
    net.stop().await;
}

/// A round's seed as every party derives it: from the ledger's anchor at the announcement's
/// `seed_anchor_ms` (by now a transaction exists after it: validators and workers made one).
async fn seed_of(net: &Net, ann: &RoundAnnouncement) -> u64 {
    let l = hallmark_node::http_ledger::HttpLedger::new(&net.ledger.url());
    let start = std::time::Instant::now();
    loop {
        if let Some(a) = l.anchor(ann.seed_anchor_ms).await.unwrap() {
            return hallmark_node::messages::round_seed(&ann.round_id, &a.root);
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "no anchor"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn bad_inputs(net: &Net, old: &RoundAnnouncement) {
    let validator = &net.validators[0];
    // A registered worker's key, to sign requests as that worker.
    let worker_key = {
        let text =
            std::fs::read_to_string(net._dir.path().join("worker-0").join("hotkey")).unwrap();
        Keypair::from_seed_hex(&text).unwrap()
    };
    let as_worker = NodeClient::new(&validator.url()).signed_by(worker_key.clone());
    let unsigned = NodeClient::new(&validator.url());

    // Garbage and truncated JSON: 400 invalid_json.
    let (st, e) = post_raw(&as_worker, "/v1/sat/witness", b"{not json").await;
    assert_eq!((st, e.error.code.as_str()), (400, "invalid_json"));
    let good_round = SatRound::generate(
        old.round_id.clone(),
        old.nonce.clone(),
        seed_of(net, old).await,
        &serde_json::from_value(old.params.clone()).unwrap(),
    )
    .unwrap();
    let witness = good_round
        .instances
        .iter()
        .find_map(|i| SatLane::solve_instance(&good_round, i, &worker_key).unwrap())
        .expect("some instance of the round is satisfiable");
    let full = serde_json::to_vec(witness.envelope()).unwrap();
    let (st, e) = post_raw(&as_worker, "/v1/sat/witness", &full[..full.len() / 2]).await;
    assert_eq!((st, e.error.code.as_str()), (400, "invalid_json"));

    // An oversized body: 413, still as a wire error.
    let too_big = vec![b' '; hallmark_sat::round::MAX_SUBMISSION_BYTES + 1];
    let (st, e) = post_raw(&as_worker, "/v1/sat/witness", &too_big).await;
    assert_eq!((st, e.error.code.as_str()), (413, "payload_too_large"));

    // No request signature: 401.
    let (st, e) = post_raw(&unsigned, "/v1/sat/witness", &full).await;
    assert_eq!((st, e.error.code.as_str()), (401, "unauthenticated"));

    // A replayed witness from a round that is over: 422 stale_round.
    let (st, e) = post_raw(&as_worker, "/v1/sat/witness", &full).await;
    assert_eq!((st, e.error.code.as_str()), (422, "stale_round"), "{e:?}");
    assert!(
        e.error.details["checks"].is_array(),
        "the verdict is in the details"
    );

    // The very same signed request again (a captured one): refused as a replay, not
    // processed a second time.
    let signed = hallmark_node::auth::sign_request(&worker_key, "POST", "/v1/sat/witness", &full);
    let url = format!("{}/v1/sat/witness", validator.url());
    assert_eq!(
        send_captured(&url, &signed, &full).await,
        (422, "stale_round".to_string())
    );
    assert_eq!(
        send_captured(&url, &signed, &full).await,
        (401, "replayed_request".to_string())
    );

    // Open a new round and try the rest against it.
    let ann = publish(net, 10_000).await;
    let round = SatRound::generate(
        ann.round_id.clone(),
        ann.nonce.clone(),
        seed_of(net, &ann).await,
        &serde_json::from_value(ann.params.clone()).unwrap(),
    )
    .unwrap();
    let mut w: Witness = Witness {
        round_id: ann.round_id.clone(),
        instance_sha256: round.instances[0].sha256,
        worker_hotkey: worker_key.public(),
        nonce: ann.nonce.clone(),
        assignment: vec![1],
    };
    let send = |w: &Witness, key: &Keypair| {
        serde_json::to_vec(Signed::sign(w, key).unwrap().envelope()).unwrap()
    };
    // Bad signature: the envelope signed by someone else under the worker's keyid.
    let mut env = Signed::sign(&w, &Keypair::generate())
        .unwrap()
        .envelope()
        .clone();
    env.signatures[0].keyid = worker_key.public().to_ss58();
    let (st, e) = post_raw(
        &as_worker,
        "/v1/sat/witness",
        &serde_json::to_vec(&env).unwrap(),
    )
    .await;
    assert_eq!((st, e.error.code.as_str()), (422, "bad_signature"));
    // Truncated assignment: the instance is not satisfied.
    let (st, e) = post_raw(&as_worker, "/v1/sat/witness", &send(&w, &worker_key)).await;
    assert_eq!((st, e.error.code.as_str()), (422, "solution_unsatisfied"));
    w.assignment = vec![1, 1_000];
    let (st, e) = post_raw(&as_worker, "/v1/sat/witness", &send(&w, &worker_key)).await;
    assert_eq!((st, e.error.code.as_str()), (422, "variable_out_of_range"));
    w.assignment = vec![1, -1];
    let (st, e) = post_raw(&as_worker, "/v1/sat/witness", &send(&w, &worker_key)).await;
    assert_eq!((st, e.error.code.as_str()), (422, "malformed_witness"));
    w.instance_sha256 = hallmark_core::sha256(b"not an instance");
    let (st, e) = post_raw(&as_worker, "/v1/sat/witness", &send(&w, &worker_key)).await;
    assert_eq!((st, e.error.code.as_str()), (422, "cnf_sha256_mismatch"));
    w.instance_sha256 = round.instances[0].sha256;
    w.nonce = "00".repeat(16);
    let (st, e) = post_raw(&as_worker, "/v1/sat/witness", &send(&w, &worker_key)).await;
    assert_eq!((st, e.error.code.as_str()), (422, "provenance_mismatch"));
    // Someone else's valid witness relayed by this worker: provenance.
    let stranger = Keypair::generate();
    let mut theirs = w.clone();
    theirs.nonce = ann.nonce.clone();
    theirs.worker_hotkey = stranger.public();
    let (st, e) = post_raw(&as_worker, "/v1/sat/witness", &send(&theirs, &stranger)).await;
    assert_eq!((st, e.error.code.as_str()), (422, "provenance_mismatch"));
    // An unregistered key: 403.
    let outsider = NodeClient::new(&validator.url()).signed_by(stranger.clone());
    let (st, e) = post_raw(&outsider, "/v1/sat/witness", &send(&theirs, &stranger)).await;
    assert_eq!((st, e.error.code.as_str()), (403, "not_registered"));

    // Coordinator: only operators publish; a captured request can't be replayed.
    let coord = NodeClient::new(&net.coordinator.url()).signed_by(net.coldkey.clone());
    let body = serde_json::to_vec(&NewRoundRequest {
        lane: "sat".into(),
        params: serde_json::to_value(PARAMS).unwrap(),
        window_ms: 1000,
    })
    .unwrap();
    let (st, e) = post_raw(&coord, "/v1/rounds", &body).await;
    assert_eq!((st, e.error.code.as_str()), (403, "not_operator"));
    let op = NodeClient::new(&net.coordinator.url()).signed_by(net.operator.clone());
    let bad = serde_json::to_vec(&NewRoundRequest {
        lane: "sat".into(),
        params: serde_json::to_value(InstanceParams { k: 0, ..PARAMS }).unwrap(),
        window_ms: 1000,
    })
    .unwrap();
    let (st, e) = post_raw(&op, "/v1/rounds", &bad).await;
    assert_eq!((st, e.error.code.as_str()), (422, "invalid_params"));
    let (st, e) = post_raw(&op, "/v1/rounds", b"[]").await;
    assert_eq!((st, e.error.code.as_str()), (400, "invalid_json"));
    // A lane the registry does not run: 422 unknown_lane; its current round: 404.
    let other = serde_json::to_vec(&NewRoundRequest {
        lane: "nosuch".into(),
        params: serde_json::to_value(PARAMS).unwrap(),
        window_ms: 1000,
    })
    .unwrap();
    let (st, e) = post_raw(&op, "/v1/rounds", &other).await;
    assert_eq!((st, e.error.code.as_str()), (422, "unknown_lane"));
    let err = op
        .get::<Envelope>("/v1/rounds/current?lane=nosuch")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    let (st, e) = post_raw(&as_worker, "/v1/nosuch/witness", &full).await;
    assert_eq!((st, e.error.code.as_str()), (404, "not_found"));
    // A roster lane takes no witnesses: its archives go to the coordinator.
    let (st, e) = post_raw(&as_worker, "/v1/eval/witness", &full).await;
    assert_eq!((st, e.error.code.as_str()), (409, "roster_lane"));
    // A lane's rounds run one at a time.
    let (st, e) = post_raw(&op, "/v1/rounds", &body).await;
    assert_eq!((st, e.error.code.as_str()), (409, "round_open"));
    // A captured operator request sent again byte for byte: refused as a replay.
    let headers = hallmark_node::auth::sign_request(&net.operator, "POST", "/v1/rounds", &body);
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let mut req = http
            .post(format!("{}/v1/rounds", net.coordinator.url()))
            .body(body.clone());
        for (k, v) in &headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let err: ErrorBody = resp.json().await.unwrap();
        statuses.push((status, err.error.code));
    }
    assert_eq!(
        statuses[0],
        (409, "round_open".to_string()),
        "the first copy is processed"
    );
    assert_eq!(statuses[1], (401, "replayed_request".to_string()));

    // Ledger: garbage, a forged transaction, unknown paths and bad path parameters.
    let ledger = NodeClient::new(&net.ledger.url());
    let (st, e) = post_raw(&ledger, "/v1/ledger/tx", b"\xff\xfe").await;
    assert_eq!((st, e.error.code.as_str()), (400, "invalid_json"));
    let forged = Envelope {
        payload_type: "application/vnd.hallmark.ledger-tx+json".into(),
        payload: "e30=".into(),
        signatures: vec![],
    };
    let (st, e) = post_raw(
        &ledger,
        "/v1/ledger/tx",
        &serde_json::to_vec(&forged).unwrap(),
    )
    .await;
    assert_eq!((st, e.error.code.as_str()), (401, "bad_signature"));
    for (path, status, code) in [
        ("/v1/ledger/weights/minus-one", 400, "invalid_epoch"),
        // Weights and epochs are per round lane: the lane must be named.
        ("/v1/ledger/weights/1", 400, "invalid_lane"),
        ("/v1/ledger/epochs/1/yuma", 400, "invalid_lane"),
        ("/v1/ledger/accounts/nobody", 400, "invalid_address"),
        ("/v1/nothing-here", 404, "not_found"),
    ] {
        let err = ledger.get::<serde_json::Value>(path).await.unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (Some(status), Some(code)),
            "{path}"
        );
    }
    let _: BTreeMap<String, serde_json::Value> = ledger.get("/v1/ledger/metagraph").await.unwrap();

    // No unauthenticated read changes ledger state: asking for the Yuma result of any epoch
    // (future, past i64, open) is a 404 `epoch_open` or a 400, the second time as the first
    // (a read that closed the epoch would make the second a 200).
    let head: serde_json::Value = ledger.get("/v1/ledger/head").await.unwrap();
    assert_eq!(head["state_root"].as_str().map(str::len), Some(64));
    for _ in 0..2 {
        for (epoch, status, code) in [
            ("999", 404, "epoch_open"),
            ("9223372036854775808", 404, "epoch_open"),
            ("18446744073709551615", 404, "epoch_open"),
            ("18446744073709551616", 400, "invalid_epoch"),
        ] {
            let path = format!("/v1/ledger/epochs/{epoch}/yuma?lane=sat");
            let err = ledger.get::<serde_json::Value>(&path).await.unwrap_err();
            assert_eq!(
                (err.status(), err.code()),
                (Some(status), Some(code)),
                "{path}"
            );
        }
    }
    let weights: Vec<serde_json::Value> = ledger
        .get("/v1/ledger/weights/18446744073709551615?lane=sat")
        .await
        .unwrap();
    assert!(weights.is_empty());

    // The ledger client fails over: a dead replica first, the live one second.
    use hallmark_ledger::Ledger;
    let dead = "http://127.0.0.1:9";
    let both =
        hallmark_node::http_ledger::HttpLedger::new(&format!("{dead}, {}", net.ledger.url()));
    assert!(!both.metagraph().await.unwrap().neurons.is_empty());
    let chain = both.chain_id().await.unwrap();
    // A write goes to the live replica too (the dead one never got it): an unregistered
    // heartbeat is refused there, with the live ledger's code.
    let stranger = Keypair::from_seed(&[77; 32]);
    let tx = hallmark_ledger::LedgerTx {
        chain_id: chain,
        nonce: 1,
        body: hallmark_ledger::TxBody::Heartbeat {},
    };
    let e = both
        .submit(Signed::sign(&tx, &stranger).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_registered");
    let only_dead = hallmark_node::http_ledger::HttpLedger::new(dead);
    assert_eq!(
        only_dead.metagraph().await.unwrap_err().code(),
        "ledger_unavailable"
    );
}

/// Sends `body` to `url` with the captured auth `headers`; the status and error code.
async fn send_captured(
    url: &str,
    headers: &[(&'static str, String); 3],
    body: &[u8],
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v.clone());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

/// Issue 19, hole 3: a signed request taken before a restart is still refused as a replay
/// after it, at the coordinator (operator-signed rounds) and at a validator (witnesses).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn captured_signed_requests_stay_refused_across_restarts() {
    let net = start(1, 1).await;
    let dir = net._dir.path().to_path_buf();

    // The coordinator: an operator request (for a lane it does not run, so nothing opens).
    let round_body = serde_json::to_vec(&NewRoundRequest {
        lane: "nosuch".into(),
        params: serde_json::to_value(PARAMS).unwrap(),
        window_ms: 1000,
    })
    .unwrap();
    let op_headers =
        hallmark_node::auth::sign_request(&net.operator, "POST", "/v1/rounds", &round_body);
    let rounds_url = |n: &RunningNode| format!("{}/v1/rounds", n.url());
    assert_eq!(
        send_captured(&rounds_url(&net.coordinator), &op_headers, &round_body).await,
        (422, "unknown_lane".to_string())
    );

    // The validator: a registered worker's witness request (not even JSON).
    let worker_key = hallmark_node::run::load_key(&cfg(&dir, "worker-0").key_path()).unwrap();
    let witness = b"not json".to_vec();
    let w_headers =
        hallmark_node::auth::sign_request(&worker_key, "POST", "/v1/sat/witness", &witness);
    let witness_url = |n: &RunningNode| format!("{}/v1/sat/witness", n.url());
    assert_eq!(
        send_captured(&witness_url(&net.validators[0]), &w_headers, &witness).await,
        (400, "invalid_json".to_string())
    );

    // Restart both from their data dirs (each stopped before its successor opens the store).
    let Net {
        _dir,
        ledger,
        coordinator,
        mut validators,
        workers,
        operator,
        coldkey,
    } = net;
    validators.remove(0).stop().await;
    coordinator.stop().await;
    let mut c = cfg(&dir, "coordinator");
    c.coordinator.operators = vec![operator.public()];
    let coordinator = run_node(RoleName::Coordinator, &c).await.unwrap();
    let mut c = cfg(&dir, "validator-0");
    c.network.ledger_url = ledger.url();
    c.network.coordinator_url = coordinator.url();
    c.network.coordinator_hotkey = Some(coordinator.hotkey);
    c.network.coldkey_file = Some(dir.join("coldkey"));
    c.network.stake = 5_000;
    validators.push(run_node(RoleName::Validator, &c).await.unwrap());
    let net = Net {
        _dir,
        ledger,
        coordinator,
        validators,
        workers,
        operator,
        coldkey,
    };

    for _ in 0..2 {
        assert_eq!(
            send_captured(&rounds_url(&net.coordinator), &op_headers, &round_body).await,
            (401, "replayed_request".to_string()),
            "the coordinator remembers across its restart"
        );
        assert_eq!(
            send_captured(&witness_url(&net.validators[0]), &w_headers, &witness).await,
            (401, "replayed_request".to_string()),
            "the validator remembers across its restart"
        );
    }
    // A fresh signature over the same bytes is a new request.
    let fresh = hallmark_node::auth::sign_request(&net.operator, "POST", "/v1/rounds", &round_body);
    assert_eq!(
        send_captured(&rounds_url(&net.coordinator), &fresh, &round_body).await,
        (422, "unknown_lane".to_string())
    );
    net.stop().await;
}

/// Issue 19, hole 2: a witness body is read only once the headers name a registered worker
/// with a fresh timestamp. Thirty unsigned requests announcing 16 MB bodies, stalled after
/// 64 KB, are each answered at once instead of being buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_witness_body_is_not_read_before_its_signer_is_known() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let net = start(1, 0).await;
    let addr = net.validators[0].addr;
    let head = |extra: &str| {
        format!(
            "POST /v1/sat/witness HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n",
            16 * 1024 * 1024 - 1
        )
    };
    let answer = |mut s: tokio::net::TcpStream| async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let read = async {
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") || !buf.ends_with(b"}") {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            String::from_utf8_lossy(&buf).to_string()
        };
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .unwrap_or_else(|_| "no answer while the body was stalled".into())
    };
    let mut conns = Vec::new();
    for _ in 0..30 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(head("").as_bytes()).await.unwrap();
        let _ = s.write_all(&vec![b' '; 64 * 1024]).await;
        conns.push(s);
    }
    for s in conns {
        let text = answer(s).await;
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
        assert!(text.contains("\"unauthenticated\""), "{text}");
    }
    // Signed by a key the ledger does not know: 403 before the body, too.
    let stranger = Keypair::generate();
    let signed = hallmark_node::auth::sign_request(&stranger, "POST", "/v1/sat/witness", b"x");
    let extra: String = signed
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head(&extra).as_bytes()).await.unwrap();
    let _ = s.write_all(&vec![b' '; 64 * 1024]).await;
    let text = answer(s).await;
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(text.contains("\"not_registered\""), "{text}");
    net.stop().await;
}

/// The public feed of validator-0: every leaf of its log under the latest checkpoint, oldest
/// first, paged by cursor with nothing repeated or skipped; the round's signed result among
/// them as a receipt that verifies offline; bad parameters refused with a code.
async fn feed_pages_through_the_validators_log(
    v0: &NodeClient,
    hotkey: hallmark_core::PublicKey,
    ann: &RoundAnnouncement,
) {
    use hallmark_node::log_routes::FeedPage;
    let first: FeedPage = v0.get("/v1/feed").await.unwrap();
    assert!(first.tree_size > 0 && first.checkpoint.contains(&first.tree_size.to_string()));
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/feed?limit=2".to_string(),
            Some(c) => format!("/v1/feed?limit=2&cursor={c}"),
        };
        let page: FeedPage = v0.get(&path).await.unwrap();
        if page.items.is_empty() {
            break;
        }
        assert!(page.items.len() <= 2);
        cursor = Some(page.next_cursor.clone());
        items.extend(page.items);
    }
    let indices: Vec<u64> = items.iter().map(|i| i.index).collect();
    assert_eq!(indices, (0..indices.len() as u64).collect::<Vec<_>>());
    assert!(indices.len() as u64 >= first.tree_size);
    let result = items
        .iter()
        .find(|i| i.kind == "round_result")
        .expect("the round result is in the feed");
    let receipt = hallmark_log::Receipt {
        statement: serde_json::from_value(result.statement.clone()).unwrap(),
        log: result.log.clone(),
    };
    let verdict = hallmark_log::verify_receipt(&receipt, None);
    assert!(verdict.accepted, "{verdict:?}");
    let signed = Signed::<hallmark_node::messages::RoundResult>::from_envelope(receipt.statement)
        .verify()
        .unwrap();
    assert_eq!(signed.signer, hotkey);
    assert_eq!(signed.payload.run_id, ann.round_id);
    // From a time on; one kind only.
    let at = &items[items.len() / 2];
    let from: FeedPage = v0
        .get(&format!("/v1/feed?cursor={}", at.timestamp_ms))
        .await
        .unwrap();
    assert!(from.items[0].index <= at.index);
    let only: FeedPage = v0.get("/v1/feed?kind=round_result").await.unwrap();
    assert!(!only.items.is_empty() && only.items.iter().all(|i| i.kind == "round_result"));
    for (q, code) in [
        ("cursor=yesterday", "invalid_cursor"),
        ("cursor=1:-1", "invalid_cursor"),
        ("cursor=-5", "invalid_cursor"),
        ("limit=0", "invalid_limit"),
        ("limit=100000", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("kind=", "invalid_kind"),
    ] {
        let err = v0
            .get::<FeedPage>(&format!("/v1/feed?{q}"))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(400), "{q}");
        assert_eq!(err.code(), Some(code), "{q}");
    }
}

/// `POST /v1/consents` on the coordinator: only a registered party's own, fresh, well-formed
/// statement is logged and kept; a replay or an older one never replaces it; `GET` serves it
/// as signed, and bad queries get a 400 with their code.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trace_consents_are_checked_logged_and_only_newer_ones_replace() {
    use hallmark_core::trace::TraceConsent;
    use hallmark_node::consents::{ConsentAccepted, ConsentPage};
    let net = start(1, 1).await;
    let c = NodeClient::new(&net.coordinator.url());
    let worker =
        hallmark_node::run::load_key(&net._dir.path().join("worker-0").join("hotkey")).unwrap();
    assert_eq!(worker.public(), net.workers[0].hotkey);
    let now = hallmark_core::time::now_unix_ms();
    let consent = |party: &Keypair, fields: &[&str], issued_ms: i64| TraceConsent {
        party: party.public(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        lanes: vec![],
        issued_ms,
    };
    let body = |c: &TraceConsent, signer: &Keypair| {
        serde_json::to_vec(Signed::sign(c, signer).unwrap().envelope()).unwrap()
    };

    // Refusals, each with its code; none is logged.
    let stranger = Keypair::generate();
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"not json".to_vec(), 400, "invalid_json"),
        (
            body(&consent(&stranger, &["party"], now), &stranger),
            403,
            "not_registered",
        ),
        (
            body(&consent(&worker, &["party"], now), &stranger),
            422,
            "wrong_signer",
        ),
        (
            body(&consent(&worker, &["secret_key"], now), &worker),
            422,
            "unknown_field",
        ),
        (
            body(&consent(&worker, &["party", "nonce"], now), &worker),
            422,
            "unsorted_fields",
        ),
        (
            body(&consent(&worker, &["party"], now + 3_600_000), &worker),
            422,
            "stale_consent",
        ),
        (
            body(&consent(&worker, &["party"], -1), &worker),
            422,
            "invalid_time",
        ),
    ];
    for (b, status, code) in cases {
        let (s, e) = post_raw(&c, "/v1/consents", &b).await;
        assert_eq!(
            (s, e.error.code.as_str()),
            (status, code),
            "{}",
            e.error.message
        );
    }

    // A good one: logged as a trace_consent leaf and kept.
    let good = body(&consent(&worker, &["checks.detail", "party"], now), &worker);
    let accepted: ConsentAccepted =
        serde_json::from_slice(&c.post_raw("/v1/consents", good.clone()).await.unwrap()).unwrap();
    assert_eq!(accepted.party, worker.public());
    let leaf: hallmark_node::log_routes::LogEntryView = c
        .get(&format!("/v1/log/entries/{}", accepted.log_index))
        .await
        .unwrap();
    assert_eq!(leaf.kind, "trace_consent");
    // The same statement again, or an older one: refused, the kept one stays.
    let (s, e) = post_raw(&c, "/v1/consents", &good).await;
    assert_eq!((s, e.error.code.as_str()), (409, "superseded_consent"));
    let older = body(&consent(&worker, &[], now - 1), &worker);
    let (s, e) = post_raw(&c, "/v1/consents", &older).await;
    assert_eq!((s, e.error.code.as_str()), (409, "superseded_consent"));

    let ss58 = worker.public().to_ss58();
    let page: ConsentPage = c
        .get(&format!(
            "/v1/consents?parties={ss58},{}",
            stranger.public().to_ss58()
        ))
        .await
        .unwrap();
    assert_eq!(page.consents.len(), 1);
    let kept = TraceConsent::verify(&page.consents[0].envelope).unwrap();
    assert_eq!(kept.fields, ["checks.detail", "party"]);
    assert_eq!(page.consents[0].log_index, accepted.log_index);
    let all: ConsentPage = c.get("/v1/consents?limit=1").await.unwrap();
    assert_eq!(all.consents.len(), 1);
    assert_eq!(all.next_after, Some(worker.public()));

    // A revocation, issued later, replaces it.
    let revoke = body(&consent(&worker, &[], now + 1), &worker);
    c.post_raw("/v1/consents", revoke).await.unwrap();
    let page: ConsentPage = c
        .get(&format!("/v1/consents?parties={ss58}"))
        .await
        .unwrap();
    assert!(TraceConsent::verify(&page.consents[0].envelope)
        .unwrap()
        .fields
        .is_empty());

    let many = (0..101)
        .map(|_| Keypair::generate().public().to_ss58())
        .collect::<Vec<_>>()
        .join(",");
    for (q, code) in [
        ("parties=nope", "invalid_party"),
        ("parties=", "invalid_party"),
        (&*format!("parties={many}"), "too_many_parties"),
        ("limit=0", "invalid_limit"),
        ("limit=501", "invalid_limit"),
        ("after=x", "invalid_party"),
        (&*format!("parties={ss58}&after={ss58}"), "invalid_query"),
        ("bogus=1", "invalid_query"),
    ] {
        let e = c
            .get::<ConsentPage>(&format!("/v1/consents?{q}"))
            .await
            .unwrap_err();
        assert_eq!((e.status(), e.code()), (Some(400), Some(code)), "{q}");
    }
    net.stop().await;
}
