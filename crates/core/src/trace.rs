//! Distillation traces: every verification a node ran, kept privately with its inputs, each
//! check's outcome and detail, and its timing; and the public form of a trace, which keeps
//! digests and outcomes and withholds everything that could leak a secret or the evidence
//! itself unless the trace's subject consented to that field being shown.
//!
//! Redaction is a pure function of the trace and the consented field names, and every public
//! record lists the fields it withheld, so a reader knows what is missing and why.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::verdict::{CheckOutcome, Verdict};
use crate::PublicKey;

/// Raw input bytes up to this size are kept in the private trace; larger inputs keep only
/// their digest and size (the evidence itself stays in the node's own tables).
pub const MAX_TRACE_INPUT_BYTES: usize = 64 * 1024;

/// One input a verifier read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceInput {
    /// What the input is (`witness`, `spec`, `artifact`, ...).
    pub name: String,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    pub size: u64,
    /// The bytes (base64), when at most [`MAX_TRACE_INPUT_BYTES`]. Private.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_b64: Option<String>,
}

impl TraceInput {
    /// The input `name` over `bytes`: digest and size always, the bytes when small enough.
    pub fn of(name: &str, bytes: &[u8]) -> Self {
        Self {
            name: name.to_string(),
            sha256: crate::sha256(bytes).to_hex(),
            size: bytes.len() as u64,
            bytes_b64: (bytes.len() <= MAX_TRACE_INPUT_BYTES)
                .then(|| base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }
}

/// A verification as the node that ran it keeps it: private.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationTrace {
    pub lane: String,
    /// `witness` (a round lane's submission) or `job` (a job lane's artifact).
    pub kind: String,
    /// The round or job the verification was for.
    pub subject: String,
    /// Whose work was verified (the worker): the one whose consent discloses more.
    pub party: Option<PublicKey>,
    pub inputs: Vec<TraceInput>,
    /// A nonce the verification was bound to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub verdict: Verdict,
    pub started_ms: i64,
    pub elapsed_us: u64,
}

/// The names of the fields a public trace withholds unless consented to.
pub mod fields {
    /// Who the party is (their public key).
    pub const PARTY: &str = "party";
    /// The nonce.
    pub const NONCE: &str = "nonce";
    /// The raw bytes of every input.
    pub const INPUT_BYTES: &str = "inputs.bytes";
    /// The free-text detail of every check.
    pub const CHECK_DETAILS: &str = "checks.detail";
    /// Every field consent can disclose.
    pub const ALL: [&str; 4] = [PARTY, NONCE, INPUT_BYTES, CHECK_DETAILS];
}

/// One check in a public trace: its name and outcome, and its detail only with consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicCheck {
    pub name: String,
    pub outcome: CheckOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One input in a public trace: its digest and size, and its bytes only with consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicInput {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_b64: Option<String>,
}

/// A trace as the public export shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicTrace {
    pub lane: String,
    pub kind: String,
    pub subject: String,
    pub accepted: bool,
    pub rejection: Option<String>,
    pub inputs: Vec<PublicInput>,
    pub checks: Vec<PublicCheck>,
    pub started_ms: i64,
    pub elapsed_us: u64,
    /// Consented fields shown, by name (party and nonce; bytes and details appear in place).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub disclosed: BTreeMap<String, String>,
    /// The fields this record withholds (present in the private trace, not consented to).
    pub withheld: Vec<String>,
}

/// The public form of `trace`, disclosing only the [`fields`] in `consented`.
pub fn redact(trace: &VerificationTrace, consented: &BTreeSet<String>) -> PublicTrace {
    let shown = |f: &str| consented.contains(f);
    let mut withheld = Vec::new();
    let mut disclosed = BTreeMap::new();
    if let Some(p) = &trace.party {
        if shown(fields::PARTY) {
            disclosed.insert(fields::PARTY.to_string(), p.to_ss58());
        } else {
            withheld.push(fields::PARTY.to_string());
        }
    }
    if let Some(n) = &trace.nonce {
        if shown(fields::NONCE) {
            disclosed.insert(fields::NONCE.to_string(), n.clone());
        } else {
            withheld.push(fields::NONCE.to_string());
        }
    }
    let bytes_shown = shown(fields::INPUT_BYTES);
    if !bytes_shown && trace.inputs.iter().any(|i| i.bytes_b64.is_some()) {
        withheld.push(fields::INPUT_BYTES.to_string());
    }
    let details_shown = shown(fields::CHECK_DETAILS);
    if !details_shown && trace.verdict.checks.iter().any(|c| !c.detail.is_empty()) {
        withheld.push(fields::CHECK_DETAILS.to_string());
    }
    PublicTrace {
        lane: trace.lane.clone(),
        kind: trace.kind.clone(),
        subject: trace.subject.clone(),
        accepted: trace.verdict.accepted,
        rejection: trace.verdict.rejection.clone(),
        inputs: trace
            .inputs
            .iter()
            .map(|i| PublicInput {
                name: i.name.clone(),
                sha256: i.sha256.clone(),
                size: i.size,
                bytes_b64: i.bytes_b64.clone().filter(|_| bytes_shown),
            })
            .collect(),
        checks: trace
            .verdict
            .checks
            .iter()
            .map(|c| PublicCheck {
                name: c.name.clone(),
                outcome: c.outcome,
                detail: Some(c.detail.clone()).filter(|d| details_shown && !d.is_empty()),
            })
            .collect(),
        started_ms: trace.started_ms,
        elapsed_us: trace.elapsed_us,
        disclosed,
        withheld,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keypair, VerdictBuilder};

    fn trace() -> VerificationTrace {
        let mut v = VerdictBuilder::new("sat");
        v.pass("signature", "signed by 5Secret");
        v.fail("replay", "assignment 1 -2 3 does not satisfy clause 7");
        VerificationTrace {
            lane: "sat".into(),
            kind: "witness".into(),
            subject: "sat-round-000001".into(),
            party: Some(Keypair::from_seed(&[3; 32]).public()),
            inputs: vec![
                TraceInput::of("witness", b"{\"assignment\":[1,-2,3]}"),
                TraceInput::of("artifact", &vec![7u8; MAX_TRACE_INPUT_BYTES + 1]),
            ],
            nonce: Some("nonce-0123456789abcdef".into()),
            verdict: v.finish(),
            started_ms: 1_700_000_000_000,
            elapsed_us: 1234,
        }
    }

    #[test]
    fn the_public_form_keeps_digests_and_outcomes_and_names_what_it_withholds() {
        let t = trace();
        let p = redact(&t, &BTreeSet::new());
        let text = serde_json::to_string(&p).unwrap();
        for secret in [
            t.party.unwrap().to_ss58(),
            hex::encode(t.party.unwrap().as_bytes()),
            "nonce-0123456789abcdef".to_string(),
            "assignment".to_string(),
            t.inputs[0].bytes_b64.clone().unwrap(),
            "5Secret".to_string(),
            "clause 7".to_string(),
        ] {
            assert!(!text.contains(&secret), "{secret} leaked: {text}");
        }
        assert_eq!(p.inputs[0].sha256, t.inputs[0].sha256);
        assert_eq!(p.checks.len(), 2);
        assert_eq!(p.checks[1].outcome, CheckOutcome::Fail);
        assert_eq!(p.rejection.as_deref(), Some("replay"));
        assert_eq!(
            p.withheld,
            ["party", "nonce", "inputs.bytes", "checks.detail"]
        );
        // Large inputs never carry bytes, even privately.
        assert!(t.inputs[1].bytes_b64.is_none());
    }

    #[test]
    fn consented_fields_appear_and_only_those() {
        let t = trace();
        let consent: BTreeSet<String> = ["party", "checks.detail"]
            .into_iter()
            .map(String::from)
            .collect();
        let p = redact(&t, &consent);
        assert_eq!(p.disclosed["party"], t.party.unwrap().to_ss58());
        assert_eq!(
            p.checks[1].detail.as_deref(),
            Some("assignment 1 -2 3 does not satisfy clause 7")
        );
        assert!(p.inputs[0].bytes_b64.is_none());
        assert_eq!(p.withheld, ["nonce", "inputs.bytes"]);
    }
}
