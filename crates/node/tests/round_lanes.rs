//! Two round lanes side by side: a test-only `guess` round lane, added through the registry
//! alone, runs its rounds at the same time as sat's through the same intake, report, gossip
//! and decision code. Round ids, numbering, commitments and weights stay per lane.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{cfg, wait_result};

use std::collections::BTreeMap;
use std::time::Duration;

use hallmark_core::{
    Arrival, Envelope, ExecuteError, Keypair, PublicKey, RoundId, RoundInfo, RoundLane,
    RoundRecord, RoundWorker, Signed, SignedPayload, SpecError, Verdict, VerdictBuilder,
};
use hallmark_node::config::{GenesisBalance, NodeConfig, RoleName};
use hallmark_node::messages::{NewRoundRequest, RoundAnnouncement};
use hallmark_node::run::{run_node_with, write_secret, RunningNode};
use hallmark_node::{LaneRegistry, NodeClient};
use serde::{Deserialize, Serialize};

/// How many numbers a guess round asks for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GuessParams {
    n: u32,
}

/// The numbers every party derives from the round's seed.
struct GuessRound {
    targets: Vec<u64>,
}

/// A worker's signed answer for one item of a round.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Guess {
    round_id: RoundId,
    worker: PublicKey,
    item: u32,
    answer: u64,
}

impl SignedPayload for Guess {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.test-guess+json";
}

struct GuessLane;

impl RoundLane for GuessLane {
    type Params = GuessParams;
    type Round = GuessRound;

    fn name(&self) -> &'static str {
        "guess"
    }

    fn check_names(&self) -> &'static [&'static str] {
        &["signature", "provenance", "round", "answer"]
    }

    fn check_params(&self, p: &GuessParams) -> Result<(), SpecError> {
        if p.n == 0 || p.n > 8 {
            return Err(SpecError::OutOfBounds("n must be 1..=8".into()));
        }
        Ok(())
    }

    fn max_submission_bytes(&self) -> usize {
        4096
    }

    fn derive_round(&self, info: &RoundInfo, p: &GuessParams) -> Result<GuessRound, SpecError> {
        self.check_params(p)?;
        let targets = (0..u64::from(p.n))
            .map(|i| info.seed.wrapping_mul(i + 7) % 1000)
            .collect();
        Ok(GuessRound { targets })
    }

    fn submission_round(&self, s: &Envelope) -> Option<RoundId> {
        serde_json::from_slice::<Guess>(&s.payload_bytes().ok()?)
            .ok()
            .map(|g| g.round_id)
    }

    fn accept(
        &self,
        info: &RoundInfo,
        round: &GuessRound,
        arrival: &Arrival,
        s: &Envelope,
    ) -> (Verdict, Option<RoundRecord>) {
        let mut v = VerdictBuilder::new("guess");
        let g = match Signed::<Guess>::from_envelope(s.clone()).verify() {
            Ok(g) if g.signer == g.payload.worker && g.signer == arrival.sender => {
                v.pass("signature", "");
                v.pass("provenance", "");
                g.payload
            }
            Ok(_) => {
                v.pass("signature", "");
                v.fail("provenance", "not the sender's own guess");
                return (v.finish(), None);
            }
            Err(e) => {
                v.fail("signature", e.to_string());
                return (v.finish(), None);
            }
        };
        if g.round_id != info.round_id || arrival.received_ms > info.deadline_ms {
            v.fail("round", "not this open round");
            return (v.finish(), None);
        }
        v.pass("round", "");
        if round.targets.get(g.item as usize) != Some(&g.answer) {
            v.fail("answer", "wrong");
            return (v.finish(), None);
        }
        v.pass("answer", "");
        let record = RoundRecord {
            worker: g.worker,
            item: g.item.to_string(),
            received_ms: arrival.received_ms,
            latency_ms: arrival.received_ms - info.starts_at_ms,
        };
        (v.finish(), Some(record))
    }

    /// Each right answer is worth 1/n, falling to half of that at the deadline.
    fn score(
        &self,
        info: &RoundInfo,
        round: &GuessRound,
        records: &[RoundRecord],
        workers: &[PublicKey],
    ) -> BTreeMap<PublicKey, f64> {
        let window = (info.deadline_ms - info.starts_at_ms).max(1) as f64;
        let per = 1.0 / round.targets.len() as f64;
        workers
            .iter()
            .map(|w| {
                let s: f64 = records
                    .iter()
                    .filter(|r| &r.worker == w)
                    .map(|r| per * (1.0 - 0.5 * (r.latency_ms.max(0) as f64 / window).min(1.0)))
                    .sum();
                (*w, s.min(1.0))
            })
            .collect()
    }
}

struct GuessWorker;

impl RoundWorker for GuessWorker {
    type Lane = GuessLane;

    fn work(
        &self,
        info: &RoundInfo,
        round: &GuessRound,
        key: &Keypair,
        submit: &mut dyn FnMut(Envelope),
    ) -> Result<(), ExecuteError> {
        for (i, t) in round.targets.iter().enumerate() {
            let g = Guess {
                round_id: info.round_id.clone(),
                worker: key.public(),
                item: i as u32,
                answer: *t,
            };
            let signed = Signed::sign(&g, key).map_err(|e| ExecuteError::Failed(e.to_string()))?;
            submit(signed.envelope().clone());
        }
        Ok(())
    }
}

fn registry(c: &NodeConfig) -> LaneRegistry {
    LaneRegistry::standard(c)
        .unwrap()
        .with_round_lane(GuessLane, GuessWorker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_round_lane_runs_beside_sat_without_colliding() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let operator = Keypair::generate();
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
    c.coordinator.operators = vec![operator.public()];
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
    let mut validator_urls = Vec::new();
    for i in 0..2 {
        let mut c = cfg(d, &format!("validator-{i}"));
        net(&mut c, 5_000);
        c.validator.grace_ms = 200;
        c.validator.poll_ms = 50;
        let v = run_node_with(RoleName::Validator, &c, registry(&c))
            .await
            .unwrap();
        validator_urls.push(v.url());
        nodes.push(v);
    }
    let mut workers = Vec::new();
    for i in 0..2 {
        let mut c = cfg(d, &format!("worker-{i}"));
        net(&mut c, 500);
        c.worker.poll_ms = 50;
        c.worker.prove_jobs = false;
        c.faults.submit_delay_ms = i as u64 * 100;
        let w = run_node_with(RoleName::Worker, &c, registry(&c))
            .await
            .unwrap();
        workers.push(w.hotkey);
        nodes.push(w);
    }

    // One round of each lane, open at the same time.
    let op = NodeClient::new(&coordinator.url()).signed_by(operator.clone());
    let mut anns = Vec::new();
    for (lane, params) in [
        (
            "sat",
            serde_json::json!({"vars": 60, "clauses": 240, "k": 3, "count": 2}),
        ),
        ("guess", serde_json::json!({"n": 4})),
    ] {
        let env: Envelope = op
            .post(
                "/v1/rounds",
                &NewRoundRequest {
                    lane: lane.into(),
                    params,
                    window_ms: 2_000,
                },
            )
            .await
            .unwrap();
        anns.push(
            Signed::<RoundAnnouncement>::from_envelope(env)
                .verify()
                .unwrap()
                .payload,
        );
    }
    let ids: Vec<&str> = anns.iter().map(|a| a.round_id.as_str()).collect();
    assert_eq!(ids, ["sat-round-000001", "guess-round-000001"]);
    // Each lane numbers its own rounds and has its own current round.
    let cur: Envelope = op.get("/v1/rounds/current?lane=guess").await.unwrap();
    let cur = Signed::<RoundAnnouncement>::from_envelope(cur)
        .verify()
        .unwrap()
        .payload;
    assert_eq!(cur.lane, "guess");
    let err = op
        .get::<Envelope>("/v1/rounds/current")
        .await
        .expect_err("two round lanes: the lane must be named");
    assert_eq!(err.code(), Some("invalid_lane"));

    for url in &validator_urls {
        let guess = wait_result(url, "guess-round-000001", Duration::from_secs(60)).await;
        let sat = wait_result(url, "sat-round-000001", Duration::from_secs(60)).await;
        // The guess lane's workers answer every item; the one without a handicap is faster
        // and wins, through the same consensus code as sat.
        let (fast, slow) = (guess.consensus[&workers[0]], guess.consensus[&workers[1]]);
        assert!(fast > 0.5 && slow > 0.5 && fast > slow, "{guess:?}");
        assert_eq!(guess.winner, Some(workers[0]), "{guess:?}");
        assert!(sat.winner.is_some(), "{sat:?}");
        assert!(guess
            .commitment
            .as_deref()
            .unwrap()
            .contains("guess-round-000001"));
        assert!(sat
            .commitment
            .as_deref()
            .unwrap()
            .contains("sat-round-000001"));
    }
    // Weights for epoch 1 are kept per lane on the ledger.
    let l = NodeClient::new(&ledger.url());
    for lane in ["sat", "guess"] {
        let w: Vec<serde_json::Value> = l
            .get(&format!("/v1/ledger/weights/1?lane={lane}"))
            .await
            .unwrap();
        assert_eq!(w.len(), 2, "{lane}: {w:?}");
        assert!(w.iter().all(|v| v["lane"] == lane));
    }

    for n in nodes.into_iter().chain([coordinator, ledger]) {
        n.stop().await;
    }
}
