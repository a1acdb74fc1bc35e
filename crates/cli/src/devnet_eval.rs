//! The devnet's eval rounds: six submitters (the lane's examples: correct and cheap, correct
//! and costly, wrong, and three escape attempts) commit and upload their archives for one
//! eval round that runs beside the sat rounds; afterwards every validator's measurement is
//! read back and checked (identical honest report hashes, the measured best winning, every
//! refusal and containment listed).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use hallmark_core::{Envelope, Keypair, PublicKey, Signed};
use hallmark_eval::samples::{Expect, SUBMISSIONS};
use hallmark_eval::EvalParams;
use hallmark_ledger::{Role, TxBody};
use hallmark_node::config::WeightMode;
use hallmark_node::http_ledger::HttpLedger;
use hallmark_node::messages::{
    EvaluationRecord, NewRoundRequest, OwnerPickRequest, RoundAnnouncement,
};
use hallmark_node::run::load_or_create_key;
use hallmark_node::NodeClient;
use serde::Serialize;

/// The stake each eval submitter registers with.
const SUBMITTER_STAKE: u64 = 1_000;

/// An eval round as the devnet started it.
pub struct EvalSetup {
    pub ann: RoundAnnouncement,
    /// Example name → submitter hotkey.
    pub submitters: BTreeMap<String, PublicKey>,
    /// The owner's published pick, if any.
    pub owner_pick: Option<PublicKey>,
    /// The example whose archive the coordinator alters (`--tamper-archive`): the roster
    /// lists members in SS58 order, so the slot is known before it is sealed.
    pub tampered: Option<String>,
}

/// One member of the measured run (from the first honest validator's report).
#[derive(Debug, Serialize)]
pub struct EvalMemberLine {
    pub name: String,
    pub worker: PublicKey,
    pub submission_id: String,
    pub score: f64,
    pub correct_tasks: u32,
    pub fuel: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contained: Option<hallmark_eval::measure::ContainedNote>,
}

/// A member a validator refused before running it.
#[derive(Debug, Serialize)]
pub struct EvalRefusalLine {
    pub validator: PublicKey,
    pub name: String,
    pub worker: PublicKey,
    pub code: String,
    pub detail: String,
}

/// What the eval round showed.
#[derive(Debug, Serialize)]
pub struct EvalLine {
    pub members: Vec<EvalMemberLine>,
    pub refusals: Vec<EvalRefusalLine>,
    /// Every honest validator's report hash is the same.
    pub honest_reports_identical: bool,
    /// The member with the best measured score (what decentralized weights must follow).
    pub measured_best: Option<String>,
    /// The member the coordinator's owner pick named (`--owner-lies`: not the best).
    pub owner_pick: Option<String>,
    /// The member whose archive the coordinator altered (`--tamper-archive`).
    pub tampered: Option<String>,
}

/// Registers the example submitters (once per data dir), announces an eval round, commits
/// and uploads every example archive, and publishes the owner's pick when asked to.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    keys: &Path,
    ledger_url: &str,
    coordinator_url: &str,
    operator: &NodeClient,
    coldkey: &Keypair,
    window_ms: i64,
    weight_mode: WeightMode,
    owner_lies: bool,
    tamper: Option<usize>,
) -> anyhow::Result<EvalSetup> {
    let ledger = HttpLedger::new(ledger_url);
    let chain = ledger.chain_id().await.context("the ledger's chain id")?;
    let mg = hallmark_ledger::Ledger::metagraph(&ledger).await?;
    let mut keys_by_name = BTreeMap::new();
    for (name, _, _) in SUBMISSIONS {
        let key = load_or_create_key(&keys.join(format!("eval-{name}")))?;
        if mg.neuron(&key.public()).is_none() {
            let body = TxBody::Register {
                hotkey: key.public(),
                role: Role::Worker,
                stake: SUBMITTER_STAKE,
            };
            hallmark_node::registration::submit_tx(&ledger, &chain, coldkey, body)
                .await
                .with_context(|| format!("registering the eval submitter {name}"))?;
        }
        keys_by_name.insert(name.to_string(), key);
    }
    let env: Envelope = operator
        .post(
            "/v1/rounds",
            &NewRoundRequest {
                lane: "eval".into(),
                params: serde_json::to_value(EvalParams::default())?,
                window_ms,
            },
        )
        .await
        .context("publishing an eval round")?;
    let ann = Signed::<RoundAnnouncement>::from_envelope(env)
        .verify()
        .context("the coordinator's eval announcement")?
        .payload;
    // Every submitter hands in at once: each commits on the ledger (a replicated ledger
    // answers once a block holds the commitment) and uploads within the same window.
    let mut handing_in = tokio::task::JoinSet::new();
    for (name, key) in &keys_by_name {
        let archive = hallmark_eval::samples::archive(name)?;
        let (ledger_url, coordinator_url) = (ledger_url.to_string(), coordinator_url.to_string());
        let (name, key, round) = (name.clone(), key.clone(), ann.round_id.to_string());
        handing_in.spawn(async move {
            crate::eval::submit_archive(
                &ledger_url,
                &coordinator_url,
                &key,
                "eval",
                &round,
                &archive,
            )
            .await
            .with_context(|| format!("handing in the {name} example"))
        });
    }
    while let Some(done) = handing_in.join_next().await {
        done.context("a submitter's task")??;
    }
    let submitters: BTreeMap<String, PublicKey> = keys_by_name
        .iter()
        .map(|(n, k)| (n.clone(), k.public()))
        .collect();
    // The roster lists members in SS58 order, so the tampered slot is known already.
    let mut order: Vec<(String, &str)> = submitters
        .iter()
        .map(|(n, k)| (k.to_ss58(), n.as_str()))
        .collect();
    order.sort();
    let tampered = tamper.and_then(|i| order.get(i)).map(|(_, n)| *n);
    // The owner's pick goes out before the deadline, so validators in every mode find it.
    let pick = if owner_lies {
        // Another submission than the measured best: correct but costlier — or, when the
        // cheap one's archive is the tampered one (so costly is the best), a wrong one.
        Some(
            submitters[if tampered == Some("cheap") {
                "wrong"
            } else {
                "costly"
            }],
        )
    } else if weight_mode != WeightMode::Decentralized {
        Some(submitters["cheap"])
    } else {
        None
    };
    if let Some(p) = pick {
        let _: Envelope = operator
            .post(
                &format!("/v1/rounds/{}/pick", ann.round_id),
                &OwnerPickRequest {
                    winner: Some(p),
                    scores: BTreeMap::new(),
                },
            )
            .await
            .context("publishing the owner's eval pick")?;
    }
    Ok(EvalSetup {
        ann,
        owner_pick: pick,
        tampered: tampered.map(str::to_string),
        submitters,
    })
}

/// Reads every validator's measurement back: the per-validator report hashes (in
/// `validators` order) and the round's eval line.
pub async fn read_back(
    setup: &EvalSetup,
    validators: &[(String, bool, NodeClient)],
) -> anyhow::Result<(Vec<Option<String>>, EvalLine)> {
    let name_of: BTreeMap<PublicKey, String> = setup
        .submitters
        .iter()
        .map(|(n, k)| (*k, n.clone()))
        .collect();
    let name = |k: &PublicKey| name_of.get(k).cloned().unwrap_or_else(|| k.to_ss58());
    let run = setup.ann.round_id.as_str();
    let mut hashes = Vec::new();
    let mut records = Vec::new();
    for (vname, byz, client) in validators {
        match client
            .get::<EvaluationRecord>(&format!("/v1/consensus/evaluations/{run}"))
            .await
        {
            Ok(rec) => {
                hashes.push(Some(rec.report_sha256.clone()));
                records.push((*byz, Some(rec)));
            }
            Err(e) => {
                eprintln!("warning: {vname} serves no evaluation of {run}: {e}");
                hashes.push(None);
                records.push((*byz, None));
            }
        }
    }
    let honest: Vec<&EvaluationRecord> = records
        .iter()
        .filter(|(byz, _)| !*byz)
        .filter_map(|(_, r)| r.as_ref())
        .collect();
    let honest_reports_identical = !honest.is_empty()
        && records
            .iter()
            .filter(|(byz, _)| !*byz)
            .all(|(_, r)| r.is_some())
        && honest
            .windows(2)
            .all(|w| w[0].report_sha256 == w[1].report_sha256);
    let mut members = Vec::new();
    if let Some(first) = honest.first() {
        let report: hallmark_eval::EvalReport = serde_json::from_value(first.report.clone())
            .context("an honest validator's eval report")?;
        for m in report.members {
            members.push(EvalMemberLine {
                name: name(&m.worker),
                worker: m.worker,
                submission_id: m.submission_id,
                score: m.score,
                correct_tasks: m.correct_tasks,
                fuel: m.fuel,
                contained: m.contained,
            });
        }
    }
    let mut refusals = Vec::new();
    for rec in records.iter().filter_map(|(_, r)| r.as_ref()) {
        let refused: Vec<hallmark_core::RosterRefusal> =
            serde_json::from_value(rec.report["refusals"].clone()).unwrap_or_default();
        for r in refused {
            refusals.push(EvalRefusalLine {
                validator: rec.validator,
                name: name(&r.worker),
                worker: r.worker,
                code: r.code,
                detail: r.detail,
            });
        }
    }
    let measured_best = members
        .iter()
        .filter(|m| m.score > 0.0)
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .map(|m| m.name.clone());
    Ok((
        hashes,
        EvalLine {
            members,
            refusals,
            honest_reports_identical,
            measured_best,
            owner_pick: setup.owner_pick.as_ref().map(&name),
            tampered: setup.tampered.clone(),
        },
    ))
}

/// What must hold of an eval round; each broken rule is one line.
pub fn problems(
    line: &EvalLine,
    winner: Option<&str>,
    honest_weights: &[Option<String>],
    weight_mode: WeightMode,
    honest_validators: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    if !line.honest_reports_identical {
        out.push("honest validators' eval reports differ (or one is missing)".into());
    }
    let expected_best = if line.tampered.as_deref() == Some("cheap") {
        "costly"
    } else {
        "cheap"
    };
    if line.measured_best.as_deref() != Some(expected_best) {
        out.push(format!(
            "the measured best is {:?}, not {expected_best}",
            line.measured_best
        ));
    }
    if winner != Some(expected_best) {
        out.push(format!(
            "the eval winner is {winner:?}, not {expected_best}"
        ));
    }
    let weights_should = match weight_mode {
        WeightMode::Decentralized => Some(expected_best),
        _ => line.owner_pick.as_deref(),
    };
    if honest_weights
        .iter()
        .any(|w| w.as_deref() != weights_should)
    {
        out.push(format!(
            "honest validators set eval weights for {honest_weights:?}, not {weights_should:?}"
        ));
    }
    for (name, _, expect) in SUBMISSIONS {
        if line.tampered.as_deref() == Some(*name) {
            let refusing = line
                .refusals
                .iter()
                .filter(|r| r.name == *name && r.code == "archive_hash_mismatch")
                .count();
            if refusing < honest_validators {
                out.push(format!(
                    "the tampered {name} archive was refused (archive_hash_mismatch) by {refusing} validators, not every honest one"
                ));
            }
            continue;
        }
        let Some(m) = line.members.iter().find(|m| m.name == *name) else {
            out.push(format!("the {name} example was not measured"));
            continue;
        };
        match expect {
            Expect::Correct if m.correct_tasks == 0 || m.contained.is_some() => {
                out.push(format!("the {name} example was not measured correct"))
            }
            Expect::Wrong if m.score != 0.0 => {
                out.push(format!("the wrong example scored {}", m.score))
            }
            Expect::Contained(code)
                if m.contained.as_ref().map(|c| c.code.as_str()) != Some(*code) =>
            {
                out.push(format!(
                    "the {name} example was not contained with {code}: {:?}",
                    m.contained
                ))
            }
            _ => {}
        }
    }
    out
}
