#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The eval lane end to end without a network: examples measured, escapes contained, two
//! independent graders agreeing byte for byte, and bisect finding a falsified task.

use hallmark_core::{Keypair, PublicKey, RosterEntry, RosterRefusal, RosterRun};
use hallmark_eval::measure::merkle_root;
use hallmark_eval::samples::{self, Expect, SUBMISSIONS};
use hallmark_eval::{first_difference, replay_task, Difference, EvalParams, Grader};
use sha2::{Digest, Sha256};

fn worker(i: u8) -> PublicKey {
    Keypair::from_seed(&[i; 32]).public()
}

fn roster_run() -> (RosterRun, Vec<PublicKey>) {
    let mut admitted = Vec::new();
    let mut workers = Vec::new();
    for (i, (name, _, _)) in SUBMISSIONS.iter().enumerate() {
        let archive = samples::archive(name).unwrap();
        let w = worker(i as u8 + 1);
        workers.push(w);
        admitted.push(RosterEntry {
            worker: w,
            submission_id: format!("sub-{name}"),
            archive_sha256: hex::encode(Sha256::digest(&archive)),
            archive,
        });
    }
    let refused = vec![RosterRefusal {
        worker: worker(99),
        submission_id: "sub-tampered".into(),
        code: "archive_hash_mismatch".into(),
        detail: "served bytes hash to something else".into(),
    }];
    workers.push(worker(99));
    (
        RosterRun {
            roster_sha256: "11".repeat(32),
            anchor_size: 42,
            anchor_root: "22".repeat(32),
            admitted,
            refused,
        },
        workers,
    )
}

fn grader() -> Grader {
    Grader::new(EvalParams::default(), &samples::reference_wasm().unwrap()).unwrap()
}

#[test]
fn examples_are_measured_and_escapes_contained() {
    let (run, workers) = roster_run();
    let (report, scores, _) = grader()
        .measure("eval-round-000001", &run, &workers)
        .unwrap();
    assert_eq!(report.members.len(), SUBMISSIONS.len());
    assert_eq!(report.refusals.len(), 1);
    assert_eq!(scores[&worker(99)], 0.0);
    let by_name = |n: &str| report.members.iter().find(|m| m.name == n).unwrap();
    for (name, _, expect) in SUBMISSIONS {
        let m = by_name(name);
        match expect {
            Expect::Correct => {
                assert_eq!(m.correct_tasks, 8, "{name}");
                assert!(m.contained.is_none(), "{name}");
                assert!(m.score > 0.5, "{name}: {}", m.score);
            }
            Expect::Wrong => {
                assert_eq!(m.correct_tasks, 0, "{name}");
                assert_eq!(m.score, 0.0);
                assert!(m.records.iter().all(|r| r.outcome == "ok"));
            }
            Expect::Contained(code) => {
                let c = m
                    .contained
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name} not contained"));
                assert_eq!(c.code, *code, "{name}: {}", c.detail);
                assert_eq!(m.score, 0.0);
            }
        }
        assert_eq!(scores[&m.worker], m.score);
    }
    // The cheap one beats the costly one, and fuel says why.
    let (cheap, costly) = (by_name("cheap"), by_name("costly"));
    assert!(
        cheap.score > costly.score,
        "{} vs {}",
        cheap.score,
        costly.score
    );
    assert!(costly.fuel > 2 * cheap.fuel);
    assert!(costly
        .records
        .iter()
        .all(|r| r.tool_calls > cheap.records[0].tool_calls));
    // The spinning one burnt exactly its fuel on every task, no more.
    let spin = by_name("spin");
    let limit = EvalParams::default().fuel_per_task;
    assert!(spin
        .records
        .iter()
        .all(|r| r.fuel <= limit && r.fuel > limit - 100));
    // The clock reader never ran: no records, the import named.
    let clock = by_name("clock");
    assert!(clock.records.is_empty());
    assert!(clock
        .contained
        .as_ref()
        .unwrap()
        .detail
        .contains("clock_time_get"));
}

#[test]
fn two_graders_agree_byte_for_byte() {
    let (run, workers) = roster_run();
    let (a, _, _) = grader()
        .measure("eval-round-000001", &run, &workers)
        .unwrap();
    let (b, _, _) = grader()
        .measure("eval-round-000001", &run, &workers)
        .unwrap();
    assert_eq!(
        hallmark_core::canonical::to_canonical_bytes(&a).unwrap(),
        hallmark_core::canonical::to_canonical_bytes(&b).unwrap()
    );
    assert_eq!(a.hash().unwrap(), b.hash().unwrap());
    assert!(first_difference(&a, &b).is_none());
    // Another anchor: other tasks, another report.
    let mut other = run.clone();
    other.anchor_root = "33".repeat(32);
    let (c, _, _) = grader()
        .measure("eval-round-000001", &other, &workers)
        .unwrap();
    assert_ne!(a.task_seed, c.task_seed);
    assert_ne!(a.hash().unwrap(), c.hash().unwrap());
    assert!(matches!(
        first_difference(&a, &c),
        Some(Difference::Inputs { .. })
    ));
}

#[test]
fn bisect_finds_the_falsified_task_and_replay_says_who_is_right() {
    let (run, workers) = roster_run();
    let (honest, _, _) = grader()
        .measure("eval-round-000001", &run, &workers)
        .unwrap();
    let mut liar = honest.clone();
    let idx = liar.members.iter().position(|m| m.name == "wrong").unwrap();
    // The liar claims the wrong submission got task 5 right.
    liar.members[idx].records[5].correct = true;
    liar.members[idx].records[5].score = 1.0;
    liar.members[idx].records_root =
        hallmark_eval::measure::records_root(&liar.members[idx].records).unwrap();
    let Some(Difference::Task {
        worker, task, a, b, ..
    }) = first_difference(&honest, &liar)
    else {
        panic!("no task difference found");
    };
    assert_eq!(worker, honest.members[idx].worker);
    assert_eq!(task, 5);
    let archive = samples::archive("wrong").unwrap();
    let truth = replay_task(&honest, &samples::reference_wasm().unwrap(), &archive, task).unwrap();
    assert_eq!(Some(Box::new(truth.clone())), a);
    assert_ne!(Some(Box::new(truth)), b);
    // Every honest summary follows from its records; the liar's (a score it did not
    // recompute) does not.
    assert!(honest.members.iter().all(|m| m.summary_consistent()));
    assert!(!liar.members[idx].summary_consistent());
    assert!(replay_task(&honest, &samples::reference_wasm().unwrap(), &archive, 99).is_err());
}

#[test]
fn merkle_root_follows_rfc6962() {
    assert_eq!(
        merkle_root(&[]),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // RFC 6962 test vector: the leaf hash of the empty leaf.
    assert_eq!(
        merkle_root(&[Vec::new()]),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    let leaves: Vec<Vec<u8>> = (0u8..5).map(|i| vec![i]).collect();
    assert_ne!(merkle_root(&leaves), merkle_root(&leaves[..4]));
}

/// Why a module (WAT) is stopped: at compile time, or in its run on an empty task.
fn stopped(sandbox: &hallmark_eval::Sandbox, wat: &str) -> String {
    let wasm = samples::wat2wasm(wat).unwrap();
    let c = match sandbox.compile(&wasm) {
        Ok(c) => c,
        Err(e) => return e.code,
    };
    let run = sandbox.run(&c, vec![].into(), vec![1u64].into());
    let e = run.outcome.expect_err("the module must be stopped");
    assert!(run.output.is_empty(), "a stopped run leaves no output");
    e.code
}

#[test]
fn hostile_modules_are_contained() {
    let g = grader();
    let sandbox = &g.sandbox;
    assert_eq!(
        sandbox.compile(b"nope").err().unwrap().code,
        "invalid_module"
    );
    for (what, wat, code) in [
        (
            "no entry point",
            r#"(module (memory (export "memory") 1))"#,
            "missing_export",
        ),
        (
            "a start function that spins",
            r#"(module (memory (export "memory") 1) (func $s (loop $l (br $l))) (start $s) (func (export "run")))"#,
            "out_of_fuel",
        ),
        (
            "a memory declared above the cap",
            r#"(module (memory (export "memory") 1000) (func (export "run")))"#,
            "memory_limit",
        ),
        (
            "endless recursion",
            r#"(module (memory (export "memory") 1) (func $f (call $f)) (func (export "run") (call $f)))"#,
            "stack_limit",
        ),
        (
            "a key over 128 bytes",
            r#"(module (import "hallmark" "kv_get" (func $g (param i32 i32) (result i64)))
                (memory (export "memory") 1) (func (export "run") (drop (call $g (i32.const 0) (i32.const 129)))))"#,
            "tool_error",
        ),
        (
            "a corpus index out of range",
            r#"(module (import "hallmark" "corpus" (func $c (param i32) (result i64)))
                (memory (export "memory") 1) (func (export "run") (drop (call $c (i32.const 5)))))"#,
            "tool_error",
        ),
        (
            "an offered tool imported with the wrong type",
            r#"(module (import "hallmark" "corpus" (func $c (param i64)))
                (memory (export "memory") 1) (func (export "run")))"#,
            "instantiate",
        ),
        (
            "a table above the cap",
            r#"(module (table 100000 funcref) (memory (export "memory") 1) (func (export "run")))"#,
            "table_limit",
        ),
    ] {
        assert_eq!(stopped(sandbox, wat), code, "{what}");
    }
}
