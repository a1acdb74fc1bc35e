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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PublicCheck {
    pub name: String,
    pub outcome: CheckOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One input in a public trace: its digest and size, and its bytes only with consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PublicInput {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_b64: Option<String>,
}

/// A trace as the public export shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// A party's signed statement naming the fields of its traces that public exports may show.
///
/// The newest statement a party signed replaces its earlier ones; one with no fields revokes.
/// Whoever keeps and serves these (the coordinator) cannot forge one: a reader checks the
/// signature against `party` itself ([`TraceConsent::verify`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceConsent {
    /// Whose traces: the signer.
    pub party: PublicKey,
    /// Field names from [`fields::ALL`], sorted, each once. Empty: nothing (a revocation).
    pub fields: Vec<String>,
    /// Only traces of these lanes; empty means every lane.
    #[serde(default)]
    pub lanes: Vec<String>,
    /// When the party signed it (unix ms); a statement replaces only older ones.
    pub issued_ms: i64,
}

impl crate::SignedPayload for TraceConsent {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.trace-consent+json";
}

/// Why a consent statement is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error("{0:?} is not a field consent can disclose (one of {all:?})", all = fields::ALL)]
    UnknownField(String),
    #[error("fields must be sorted and each named once")]
    UnsortedFields,
    #[error("lane names must be 1 to 64 characters, sorted, each once, at most 16")]
    BadLanes,
    #[error("issued_ms {0} is not a time after 1970")]
    BadTime(i64),
    #[error("signed by {signer}, but it is {party}'s consent")]
    WrongSigner { signer: String, party: String },
    #[error("envelope: {0}")]
    Envelope(#[from] crate::dsse::DsseError),
}

impl ConsentError {
    /// A stable snake_case code for wire errors.
    pub fn code(&self) -> &'static str {
        match self {
            ConsentError::UnknownField(_) => "unknown_field",
            ConsentError::UnsortedFields => "unsorted_fields",
            ConsentError::BadLanes => "invalid_lanes",
            ConsentError::BadTime(_) => "invalid_time",
            ConsentError::WrongSigner { .. } => "wrong_signer",
            ConsentError::Envelope(e) => e.code(),
        }
    }
}

impl TraceConsent {
    /// Checks the statement's own fields (not its signature).
    pub fn check(&self) -> Result<(), ConsentError> {
        if let Some(f) = self
            .fields
            .iter()
            .find(|f| !fields::ALL.contains(&f.as_str()))
        {
            return Err(ConsentError::UnknownField(f.clone()));
        }
        if self.fields.windows(2).any(|p| p[0] >= p[1]) {
            return Err(ConsentError::UnsortedFields);
        }
        if self.lanes.len() > 16
            || self.lanes.iter().any(|l| l.is_empty() || l.len() > 64)
            || self.lanes.windows(2).any(|p| p[0] >= p[1])
        {
            return Err(ConsentError::BadLanes);
        }
        if self.issued_ms < 0 {
            return Err(ConsentError::BadTime(self.issued_ms));
        }
        Ok(())
    }

    /// The statement in `envelope`, if it is well formed and signed by its own party.
    pub fn verify(envelope: &crate::Envelope) -> Result<Self, ConsentError> {
        let v = crate::Signed::<Self>::from_envelope(envelope.clone()).verify()?;
        if v.signer != v.payload.party {
            return Err(ConsentError::WrongSigner {
                signer: v.signer.to_ss58(),
                party: v.payload.party.to_ss58(),
            });
        }
        v.payload.check()?;
        Ok(v.payload)
    }

    /// The fields this statement discloses in `trace`: none unless the trace is its party's
    /// and of a lane it covers.
    pub fn disclosed_in(&self, trace: &VerificationTrace) -> BTreeSet<String> {
        let covered = trace.party.as_ref() == Some(&self.party)
            && (self.lanes.is_empty() || self.lanes.contains(&trace.lane));
        if covered {
            self.fields.iter().cloned().collect()
        } else {
            BTreeSet::new()
        }
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

    #[test]
    fn a_consent_discloses_only_its_own_partys_traces_and_only_when_signed_by_it() {
        use crate::Signed;
        let t = trace();
        let party = Keypair::from_seed(&[3; 32]);
        let consent = TraceConsent {
            party: party.public(),
            fields: vec!["checks.detail".into(), "party".into()],
            lanes: vec![],
            issued_ms: 1,
        };
        let env = Signed::sign(&consent, &party).unwrap().envelope().clone();
        let ok = TraceConsent::verify(&env).unwrap();
        assert_eq!(ok.disclosed_in(&t).len(), 2);
        let p = redact(&t, &ok.disclosed_in(&t));
        assert_eq!(p.disclosed["party"], party.public().to_ss58());

        // Another lane, or another party's trace: nothing.
        let stark_only = TraceConsent {
            lanes: vec!["stark".into()],
            ..consent.clone()
        };
        assert!(stark_only.disclosed_in(&t).is_empty());
        let other = TraceConsent {
            party: Keypair::from_seed(&[4; 32]).public(),
            ..consent.clone()
        };
        assert!(other.disclosed_in(&t).is_empty());

        // Signed by someone else on the party's behalf: refused.
        let forged = Signed::sign(&consent, &Keypair::from_seed(&[9; 32]))
            .unwrap()
            .envelope()
            .clone();
        assert_eq!(
            TraceConsent::verify(&forged).unwrap_err().code(),
            "wrong_signer"
        );

        // Unknown, unsorted or repeated fields, and bad lanes, are refused.
        for (fields, lanes, code) in [
            (vec!["secret_key"], vec![], "unknown_field"),
            (vec!["party", "checks.detail"], vec![], "unsorted_fields"),
            (vec!["party", "party"], vec![], "unsorted_fields"),
            (vec!["party"], vec![""], "invalid_lanes"),
            (vec!["party"], vec!["sat", "sat"], "invalid_lanes"),
        ] {
            let c = TraceConsent {
                fields: fields.into_iter().map(String::from).collect(),
                lanes: lanes.into_iter().map(String::from).collect(),
                ..consent.clone()
            };
            let env = Signed::sign(&c, &party).unwrap().envelope().clone();
            assert_eq!(TraceConsent::verify(&env).unwrap_err().code(), code);
        }
    }
}
