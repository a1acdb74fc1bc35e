//! First-hand measurement: every admitted member runs every task in the sandbox, each task is
//! graded against the lane's own reference run, and the result is an [`EvalReport`] that
//! honest validators produce byte for byte.
//!
//! A task record is `{task, seed, outcome, correct, output_sha256, fuel, virtual_ms,
//! tool_calls, tool_log_sha256, score}`; a member's `records_root` is the RFC 6962 Merkle
//! root over its records' canonical JSON, so two reports can be compared member by member and
//! then task by task ([`first_difference`]) and the one differing task re-run alone
//! ([`replay_task`]). Wall time is advisory and never in the report.

use std::collections::BTreeMap;
use std::sync::Arc;

use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::{PublicKey, RosterRefusal, RosterRun};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::archive::{unpack, ABI};
use crate::sandbox::{Compiled, Contained, Sandbox, TaskRun, ENGINE};
use crate::tasks::{self, EvalParams, Task};

/// Fuel per virtual millisecond: latency in this lane is virtual time derived from fuel.
pub const FUEL_PER_VIRTUAL_MS: u64 = 10_000;

/// One task's record in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskRecord {
    pub task: u32,
    /// The task's seed (lowercase hex).
    pub seed: String,
    /// `ok`, or why the run was contained (`out_of_fuel`, `memory_limit`, …).
    pub outcome: String,
    /// The output equals the reference run's output for the task.
    pub correct: bool,
    pub output_sha256: String,
    pub fuel: u64,
    /// `fuel / FUEL_PER_VIRTUAL_MS`, rounded up.
    pub virtual_ms: u64,
    pub tool_calls: u64,
    /// SHA-256 of the canonical JSON of the task's tool-call log.
    pub tool_log_sha256: String,
    /// 0 when wrong; `0.5 + 0.5 · min(1, reference fuel / fuel)` when correct.
    pub score: f64,
}

/// Why a member earned nothing from some task, when it did not simply answer wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContainedNote {
    pub code: String,
    pub detail: String,
    /// The first task it happened on (`None`: before any task, e.g. at instantiation).
    pub task: Option<u32>,
}

/// One member's measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemberReport {
    pub worker: PublicKey,
    pub submission_id: String,
    pub archive_sha256: String,
    /// The manifest's name (empty when the archive could not be read).
    pub name: String,
    /// The member's score: the mean of its task scores.
    pub score: f64,
    pub fuel: u64,
    pub correct_tasks: u32,
    /// Set when the submission was stopped by the sandbox (first occurrence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contained: Option<ContainedNote>,
    pub records_root: String,
    pub records: Vec<TaskRecord>,
}

/// The reference run's records (what correctness and relative cost are measured against).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReferenceReport {
    pub module_sha256: String,
    pub records_root: String,
    pub records: Vec<TaskRecord>,
}

/// A validator's eval report for a run: a deterministic function of the round, the roster,
/// the ledger anchor and the archives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EvalReport {
    pub lane: String,
    pub run_id: String,
    pub abi: String,
    pub engine: String,
    pub params: EvalParams,
    pub roster_sha256: String,
    pub anchor_size: u64,
    pub anchor_root: String,
    pub task_seed: String,
    pub corpus_sha256: String,
    pub reference: ReferenceReport,
    pub members: Vec<MemberReport>,
    /// Members refused before running, with why.
    pub refusals: Vec<RosterRefusal>,
}

impl EvalReport {
    /// The report's hash: SHA-256 of its canonical JSON (lowercase hex).
    pub fn hash(&self) -> Result<String, MeasureError> {
        let bytes = to_canonical_bytes(self).map_err(|e| MeasureError(e.to_string()))?;
        Ok(hex::encode(Sha256::digest(bytes)))
    }
}

/// The measurement could not be made at all (a reference module that does not compile).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("measurement failed: {0}")]
pub struct MeasureError(pub String);

/// RFC 6962 Merkle tree hash over `leaves` (lowercase hex).
pub fn merkle_root(leaves: &[Vec<u8>]) -> String {
    fn node(leaves: &[Vec<u8>]) -> [u8; 32] {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => Sha256::new()
                .chain_update([0u8])
                .chain_update(&leaves[0])
                .finalize()
                .into(),
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                Sha256::new()
                    .chain_update([1u8])
                    .chain_update(node(&leaves[..k]))
                    .chain_update(node(&leaves[k..]))
                    .finalize()
                    .into()
            }
        }
    }
    hex::encode(node(leaves))
}

/// The Merkle root over task records.
pub fn records_root(records: &[TaskRecord]) -> Result<String, MeasureError> {
    let leaves = records
        .iter()
        .map(|r| to_canonical_bytes(r).map_err(|e| MeasureError(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(merkle_root(&leaves))
}

/// What a member's records determine: its score (the mean of its task scores), fuel, correct
/// tasks and the Merkle root over them. A report's member summary must equal this.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub score: f64,
    pub fuel: u64,
    pub correct_tasks: u32,
    pub records_root: String,
}

impl Summary {
    /// The summary of `records`.
    pub fn of(records: &[TaskRecord]) -> Result<Self, MeasureError> {
        let score = if records.is_empty() {
            0.0
        } else {
            records.iter().map(|r| r.score).sum::<f64>() / records.len() as f64
        };
        Ok(Self {
            score,
            fuel: records.iter().map(|r| r.fuel).sum(),
            correct_tasks: records.iter().filter(|r| r.correct).count() as u32,
            records_root: records_root(records)?,
        })
    }
}

impl MemberReport {
    /// Whether the member's score, fuel, correct count and root follow from its own records.
    pub fn summary_consistent(&self) -> bool {
        Summary::of(&self.records).is_ok_and(|s| {
            s == Summary {
                score: self.score,
                fuel: self.fuel,
                correct_tasks: self.correct_tasks,
                records_root: self.records_root.clone(),
            }
        })
    }
}

/// What the lane grades with: the round's sandbox, corpus and compiled reference.
pub struct Grader {
    pub params: EvalParams,
    pub sandbox: Sandbox,
    pub corpus: Arc<[u64]>,
    pub corpus_sha256: String,
    pub reference: Compiled,
    pub reference_sha256: String,
}

impl Grader {
    /// The grader for a round's parameters with `reference` (wasm bytes) as the reference.
    pub fn new(params: EvalParams, reference: &[u8]) -> Result<Self, MeasureError> {
        let sandbox = Sandbox::new(params.limits()).map_err(|e| MeasureError(e.to_string()))?;
        let compiled = sandbox
            .compile(reference)
            .map_err(|e| MeasureError(format!("the reference module: {e}")))?;
        let words = tasks::corpus(&params);
        Ok(Self {
            params,
            corpus_sha256: tasks::corpus_sha256(&words),
            corpus: words.into(),
            sandbox,
            reference: compiled,
            reference_sha256: hex::encode(Sha256::digest(reference)),
        })
    }

    fn run(&self, compiled: &Compiled, task: &Task) -> TaskRun {
        self.sandbox
            .run(compiled, task.input.clone().into(), self.corpus.clone())
    }

    /// A task record from a run, graded against the reference's run of the same task.
    fn record(&self, task: &Task, run: &TaskRun, reference: &TaskRun) -> TaskRecord {
        let log = to_canonical_bytes(&run.tool_log).unwrap_or_default();
        let correct =
            run.outcome.is_ok() && reference.outcome.is_ok() && reference.output == run.output;
        let score = if !correct {
            0.0
        } else if run.fuel == 0 {
            1.0
        } else {
            0.5 + 0.5 * (reference.fuel as f64 / run.fuel as f64).min(1.0)
        };
        TaskRecord {
            task: task.index,
            seed: hex::encode(task.seed),
            outcome: match &run.outcome {
                Ok(()) => "ok".into(),
                Err(c) => c.code.clone(),
            },
            correct,
            output_sha256: hex::encode(Sha256::digest(&run.output)),
            fuel: run.fuel,
            virtual_ms: run.fuel.div_ceil(FUEL_PER_VIRTUAL_MS),
            tool_calls: run.tool_log.len() as u64,
            tool_log_sha256: hex::encode(Sha256::digest(log)),
            score,
        }
    }

    /// Runs the reference on every task.
    pub fn reference_runs(&self, tasks: &[Task]) -> Vec<TaskRun> {
        tasks.iter().map(|t| self.run(&self.reference, t)).collect()
    }

    /// Measures one archive on every task: (member fields, advisory wall ms).
    fn member(
        &self,
        worker: PublicKey,
        submission_id: &str,
        archive_sha256: &str,
        archive: &[u8],
        tasks: &[Task],
        reference: &[TaskRun],
    ) -> Result<(MemberReport, u64), MeasureError> {
        let mut m = MemberReport {
            worker,
            submission_id: submission_id.into(),
            archive_sha256: archive_sha256.into(),
            name: String::new(),
            score: 0.0,
            fuel: 0,
            correct_tasks: 0,
            contained: None,
            records_root: merkle_root(&[]),
            records: Vec::new(),
        };
        let compiled = unpack(archive)
            .map_err(|e| Contained {
                code: e.code().into(),
                detail: e.to_string(),
            })
            .and_then(|a| {
                m.name = a.manifest.name.clone();
                self.sandbox.compile(&a.module)
            });
        let compiled = match compiled {
            Ok(c) => c,
            Err(c) => {
                m.contained = Some(ContainedNote {
                    code: c.code,
                    detail: c.detail,
                    task: None,
                });
                return Ok((m, 0));
            }
        };
        let mut wall = 0;
        for (task, reference) in tasks.iter().zip(reference) {
            let run = self.run(&compiled, task);
            wall += run.wall_ms;
            if let (Err(c), None) = (&run.outcome, &m.contained) {
                m.contained = Some(ContainedNote {
                    code: c.code.clone(),
                    detail: c.detail.clone(),
                    task: Some(task.index),
                });
            }
            m.records.push(self.record(task, &run, reference));
        }
        let summary = Summary::of(&m.records)?;
        (m.score, m.fuel, m.correct_tasks, m.records_root) = (
            summary.score,
            summary.fuel,
            summary.correct_tasks,
            summary.records_root,
        );
        Ok((m, wall))
    }

    /// Measures a run: the report, every listed worker's score (0 for anyone not measured),
    /// and advisory wall times per member.
    pub fn measure(
        &self,
        run_id: &str,
        run: &RosterRun,
        workers: &[PublicKey],
    ) -> Result<Measured, MeasureError> {
        let seed = tasks::task_seed(run_id, &run.roster_sha256, &run.anchor_root);
        let tasks = tasks::tasks(&seed, &self.params);
        let reference_runs = self.reference_runs(&tasks);
        let reference_records: Vec<TaskRecord> = tasks
            .iter()
            .zip(&reference_runs)
            .map(|(t, r)| self.record(t, r, r))
            .collect();
        let mut admitted: Vec<_> = run.admitted.iter().collect();
        admitted.sort_by_key(|e| e.worker.to_ss58());
        let mut members = Vec::new();
        let mut wall = BTreeMap::new();
        for e in admitted {
            let (m, ms) = self.member(
                e.worker,
                &e.submission_id,
                &e.archive_sha256,
                &e.archive,
                &tasks,
                &reference_runs,
            )?;
            wall.insert(e.worker.to_ss58(), ms);
            members.push(m);
        }
        let mut refusals = run.refused.clone();
        refusals.sort_by(|a, b| (a.worker.to_ss58(), &a.code).cmp(&(b.worker.to_ss58(), &b.code)));
        let mut scores: BTreeMap<PublicKey, f64> = workers.iter().map(|w| (*w, 0.0)).collect();
        for m in &members {
            if scores.contains_key(&m.worker) {
                scores.insert(m.worker, m.score);
            }
        }
        let report = EvalReport {
            lane: "eval".into(),
            run_id: run_id.into(),
            abi: ABI.into(),
            engine: ENGINE.into(),
            params: self.params,
            roster_sha256: run.roster_sha256.clone(),
            anchor_size: run.anchor_size,
            anchor_root: run.anchor_root.clone(),
            task_seed: hex::encode(seed),
            corpus_sha256: self.corpus_sha256.clone(),
            reference: ReferenceReport {
                module_sha256: self.reference_sha256.clone(),
                records_root: records_root(&reference_records)?,
                records: reference_records,
            },
            members,
            refusals,
        };
        Ok((report, scores, wall))
    }
}

/// A run measured: the report, every listed worker's score, advisory wall ms per member.
pub type Measured = (EvalReport, BTreeMap<PublicKey, f64>, BTreeMap<String, u64>);

/// Where two reports first differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// They are not reports of the same run and inputs (run, roster, anchor, params, engine,
    /// reference): nothing to re-execute, the inputs differ.
    Inputs { field: String },
    /// The member lists differ (one admitted or refused a member the other did not).
    Members { a: Vec<String>, b: Vec<String> },
    /// A member's task differs: re-executing this task says which report is right.
    Task {
        worker: PublicKey,
        archive_sha256: String,
        task: u32,
        a: Option<Box<TaskRecord>>,
        b: Option<Box<TaskRecord>>,
    },
    /// Same records, different summaries (score, name, containment): arithmetic or
    /// bookkeeping, checkable from the records alone.
    Summary { worker: PublicKey },
}

/// The first difference between two reports, or `None` when they are equal.
pub fn first_difference(a: &EvalReport, b: &EvalReport) -> Option<Difference> {
    let inputs: [(&str, bool); 10] = [
        ("lane", a.lane == b.lane),
        ("run_id", a.run_id == b.run_id),
        ("abi", a.abi == b.abi),
        ("engine", a.engine == b.engine),
        ("params", a.params == b.params),
        ("roster_sha256", a.roster_sha256 == b.roster_sha256),
        (
            "anchor",
            a.anchor_size == b.anchor_size && a.anchor_root == b.anchor_root,
        ),
        ("task_seed", a.task_seed == b.task_seed),
        ("corpus_sha256", a.corpus_sha256 == b.corpus_sha256),
        ("reference", a.reference == b.reference),
    ];
    if let Some((field, _)) = inputs.iter().find(|(_, same)| !same) {
        return Some(Difference::Inputs {
            field: (*field).into(),
        });
    }
    let ids =
        |r: &EvalReport| -> Vec<String> { r.members.iter().map(|m| m.worker.to_ss58()).collect() };
    if ids(a) != ids(b) || a.refusals != b.refusals {
        return Some(Difference::Members {
            a: ids(a),
            b: ids(b),
        });
    }
    for (ma, mb) in a.members.iter().zip(&b.members) {
        if ma.records_root != mb.records_root || ma.records != mb.records {
            let n = ma.records.len().max(mb.records.len());
            for i in 0..n {
                let (ra, rb) = (ma.records.get(i), mb.records.get(i));
                if ra != rb {
                    return Some(Difference::Task {
                        worker: ma.worker,
                        archive_sha256: ma.archive_sha256.clone(),
                        task: i as u32,
                        a: ra.cloned().map(Box::new),
                        b: rb.cloned().map(Box::new),
                    });
                }
            }
            // Equal records under different roots: one root is miscomputed.
            return Some(Difference::Summary { worker: ma.worker });
        }
        if ma != mb {
            return Some(Difference::Summary { worker: ma.worker });
        }
    }
    None
}

/// Re-executes one task of one archive as the report's inputs define it (parameters, task
/// seed), with `reference` as the reference module, and returns the true record.
pub fn replay_task(
    report: &EvalReport,
    reference: &[u8],
    archive: &[u8],
    task_index: u32,
) -> Result<TaskRecord, MeasureError> {
    let grader = Grader::new(report.params, reference)?;
    let seed: [u8; 32] = hex::decode(&report.task_seed)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| MeasureError("the report's task_seed is not 32 bytes of hex".into()))?;
    if task_index >= report.params.tasks {
        return Err(MeasureError(format!(
            "task {task_index} is outside the run's {} tasks",
            report.params.tasks
        )));
    }
    let task = tasks::task(&seed, task_index, &report.params);
    let reference_run = grader.run(&grader.reference, &task);
    let module = unpack(archive)
        .map_err(|e| MeasureError(format!("the archive: {e}")))?
        .module;
    let run = match grader.sandbox.compile(&module) {
        Ok(c) => grader.run(&c, &task),
        Err(c) => TaskRun {
            outcome: Err(c),
            output: Vec::new(),
            fuel: 0,
            tool_log: Vec::new(),
            wall_ms: 0,
        },
    };
    Ok(grader.record(&task, &run, &reference_run))
}
