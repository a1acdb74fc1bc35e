//! Score-hash commitments, report succession and equivocation evidence.
//!
//! A validator commits `hallmark/scores/v1:<run_id>:<sha256>` on the ledger once per run, the
//! hash over the canonical JSON `{"lane","run_id","scores":[[hotkey, score], …]}` with scores
//! sorted by hotkey. A peer report whose scores hash differently is not used, and the two
//! signed statements — the commitment transaction and the report — are evidence that the
//! validator said two different things about one run. Reports of one run form a chain by
//! epoch: epoch `e+1` names the id of epoch `e`'s report; an older epoch is a rollback.

use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::{sha256, Envelope, PublicKey, Sha256Digest};
use serde::{Deserialize, Serialize};

/// The commitment string's prefix (with its version).
pub const COMMITMENT_PREFIX: &str = "hallmark/scores/v1:";

#[derive(Serialize, schemars::JsonSchema)]
struct CommittedScores<'a> {
    run_id: &'a str,
    lane: &'a str,
    scores: Vec<(String, f64)>,
}

/// The hash a validator commits to for its scores of a run. A NaN or infinite score is refused
/// (JSON cannot hold one; serde would write `null` and different reports could collide).
pub fn scores_hash<'a, I>(
    run_id: &str,
    lane: &str,
    scores: I,
) -> Result<Sha256Digest, CommitmentError>
where
    I: IntoIterator<Item = (&'a PublicKey, &'a f64)>,
{
    let mut sorted: Vec<(String, f64)> =
        scores.into_iter().map(|(k, v)| (k.to_ss58(), *v)).collect();
    if let Some((key, _)) = sorted.iter().find(|(_, v)| !v.is_finite()) {
        return Err(CommitmentError::NonFiniteScore(key.clone()));
    }
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let body = CommittedScores {
        run_id,
        lane,
        scores: sorted,
    };
    let bytes = to_canonical_bytes(&body).map_err(|e| CommitmentError::Canonical(e.to_string()))?;
    Ok(sha256(&bytes))
}

/// The commitment string for a run's scores hash.
pub fn commitment_string(run_id: &str, hash: &Sha256Digest) -> String {
    format!("{COMMITMENT_PREFIX}{run_id}:{}", hash.to_hex())
}

/// Why a commitment string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitmentError {
    #[error("commitment must start with {COMMITMENT_PREFIX:?}")]
    Prefix,
    #[error("commitment names run {found:?}, the transaction says {expected:?}")]
    RunMismatch { expected: String, found: String },
    #[error("commitment hash must be 64 lowercase hex characters")]
    Hash,
    #[error("the score of {0} is not a finite number")]
    NonFiniteScore(String),
    #[error("scores cannot be canonicalised: {0}")]
    Canonical(String),
}

/// Parses a commitment string and checks it is for `run_id`; returns the hash.
pub fn parse_commitment(s: &str, run_id: &str) -> Result<Sha256Digest, CommitmentError> {
    let rest = s
        .strip_prefix(COMMITMENT_PREFIX)
        .ok_or(CommitmentError::Prefix)?;
    let (run, hash) = rest.rsplit_once(':').ok_or(CommitmentError::Hash)?;
    if run != run_id {
        return Err(CommitmentError::RunMismatch {
            expected: run_id.into(),
            found: run.into(),
        });
    }
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(CommitmentError::Hash);
    }
    hash.parse().map_err(|_| CommitmentError::Hash)
}

/// What a validator knows about one report in a run's chain of reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportHead {
    pub epoch: u64,
    /// Id of the signed report (SHA-256 of its canonical envelope).
    pub report_id: String,
    /// For epoch > 0, the id of the epoch before.
    pub prev_report_id: Option<String>,
}

/// How a newly received report relates to the last one accepted from the same validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Succession {
    /// The first report seen for the run.
    First,
    /// The same report again.
    Same,
    /// The next epoch, naming the previous report.
    Next,
}

/// Why a report cannot follow the last one accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuccessionError {
    #[error("epoch {got} is older than the accepted epoch {accepted}: rollback refused")]
    Rollback { accepted: u64, got: u64 },
    #[error("a different report for the same epoch {epoch}: equivocation")]
    Equivocation { epoch: u64 },
    #[error("epoch {got} must name the previous report {expected}, names {named:?}")]
    BrokenChain {
        got: u64,
        expected: String,
        named: Option<String>,
    },
    #[error("epoch {got} skips ahead of the accepted epoch {accepted}")]
    Gap { accepted: u64, got: u64 },
    #[error("the first report of a run must be epoch 0 or name its predecessor")]
    Orphan,
}

impl SuccessionError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            SuccessionError::Rollback { .. } => "rollback",
            SuccessionError::Equivocation { .. } => "equivocation",
            SuccessionError::BrokenChain { .. } => "broken_chain",
            SuccessionError::Gap { .. } => "epoch_gap",
            SuccessionError::Orphan => "orphan_report",
        }
    }
}

/// Checks that `new` may follow `accepted` (the last report accepted from that validator for
/// the run, if any).
pub fn check_succession(
    accepted: Option<&ReportHead>,
    new: &ReportHead,
) -> Result<Succession, SuccessionError> {
    let Some(prev) = accepted else {
        return if new.epoch == 0 && new.prev_report_id.is_none() {
            Ok(Succession::First)
        } else if new.epoch > 0 && new.prev_report_id.is_some() {
            // A validator joining late may only see a later epoch; it still names its parent.
            Ok(Succession::First)
        } else {
            Err(SuccessionError::Orphan)
        };
    };
    if new.epoch < prev.epoch {
        return Err(SuccessionError::Rollback {
            accepted: prev.epoch,
            got: new.epoch,
        });
    }
    if new.epoch == prev.epoch {
        return if new.report_id == prev.report_id {
            Ok(Succession::Same)
        } else {
            Err(SuccessionError::Equivocation { epoch: new.epoch })
        };
    }
    if new.epoch > prev.epoch + 1 {
        return Err(SuccessionError::Gap {
            accepted: prev.epoch,
            got: new.epoch,
        });
    }
    if new.prev_report_id.as_deref() != Some(prev.report_id.as_str()) {
        return Err(SuccessionError::BrokenChain {
            got: new.epoch,
            expected: prev.report_id.clone(),
            named: new.prev_report_id.clone(),
        });
    }
    Ok(Succession::Next)
}

/// Two signed statements by one validator about one run that cannot both be honest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EquivocationEvidence {
    pub validator: PublicKey,
    pub run_id: String,
    /// `commitment` (two commitments), `report` (two reports of one epoch) or
    /// `report_vs_commitment` (a report whose scores do not hash to the commitment).
    pub kind: String,
    pub first: Envelope,
    pub second: Envelope,
}

/// Why evidence does not prove equivocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("statement {which} does not verify: {why}")]
    BadSignature { which: &'static str, why: String },
    #[error("statement {which} is signed by {signer}, not the accused {accused}")]
    WrongSigner {
        which: &'static str,
        signer: String,
        accused: String,
    },
    #[error("the two statements are identical")]
    Identical,
}

impl EquivocationEvidence {
    /// Checks what any auditor can check without context: both statements carry valid
    /// signatures by the accused validator and are not the same statement. (That they are
    /// about the same run and conflict is read from their payloads by the caller, per kind.)
    pub fn verify_signatures(&self) -> Result<(), EvidenceError> {
        for (which, env) in [("first", &self.first), ("second", &self.second)] {
            let (signer, _) = env
                .verify_untyped()
                .map_err(|e| EvidenceError::BadSignature {
                    which,
                    why: e.to_string(),
                })?;
            if signer != self.validator {
                return Err(EvidenceError::WrongSigner {
                    which,
                    signer: signer.to_ss58(),
                    accused: self.validator.to_ss58(),
                });
            }
        }
        if self.first == self.second {
            return Err(EvidenceError::Identical);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_core::Keypair;
    use std::collections::BTreeMap;

    #[test]
    fn commitment_hash_ignores_order_and_binds_everything() {
        let a = Keypair::from_seed(&[1; 32]).public();
        let b = Keypair::from_seed(&[2; 32]).public();
        let s1: BTreeMap<PublicKey, f64> = [(a, 0.5), (b, 0.25)].into();
        let h = scores_hash("round-000001", "sat", &s1).unwrap();
        let reversed = [(&b, &0.25), (&a, &0.5)];
        assert_eq!(scores_hash("round-000001", "sat", reversed).unwrap(), h);
        assert_ne!(scores_hash("round-000002", "sat", &s1).unwrap(), h);
        assert_ne!(scores_hash("round-000001", "stark", &s1).unwrap(), h);
        let s2: BTreeMap<PublicKey, f64> = [(a, 0.5), (b, 0.26)].into();
        assert_ne!(scores_hash("round-000001", "sat", &s2).unwrap(), h);
        let nan: BTreeMap<PublicKey, f64> = [(a, f64::NAN)].into();
        assert!(scores_hash("round-000001", "sat", &nan).is_err());
        let c = commitment_string("round-000001", &h);
        assert_eq!(parse_commitment(&c, "round-000001").unwrap(), h);
        assert!(matches!(
            parse_commitment(&c, "round-000002"),
            Err(CommitmentError::RunMismatch { .. })
        ));
        assert_eq!(parse_commitment("x", "r"), Err(CommitmentError::Prefix));
        assert_eq!(
            parse_commitment("hallmark/scores/v1:r:ABC", "r"),
            Err(CommitmentError::Hash)
        );
    }

    fn head(epoch: u64, id: &str, prev: Option<&str>) -> ReportHead {
        ReportHead {
            epoch,
            report_id: id.into(),
            prev_report_id: prev.map(Into::into),
        }
    }

    #[test]
    fn succession_rules() {
        let e0 = head(0, "a", None);
        assert_eq!(check_succession(None, &e0), Ok(Succession::First));
        assert_eq!(
            check_succession(None, &head(0, "a", Some("z")))
                .unwrap_err()
                .code(),
            "orphan_report"
        );
        assert_eq!(check_succession(Some(&e0), &e0), Ok(Succession::Same));
        assert_eq!(
            check_succession(Some(&e0), &head(0, "b", None))
                .unwrap_err()
                .code(),
            "equivocation"
        );
        assert_eq!(
            check_succession(Some(&e0), &head(1, "b", Some("a"))),
            Ok(Succession::Next)
        );
        assert_eq!(
            check_succession(Some(&e0), &head(1, "b", Some("x")))
                .unwrap_err()
                .code(),
            "broken_chain"
        );
        assert_eq!(
            check_succession(Some(&e0), &head(1, "b", None))
                .unwrap_err()
                .code(),
            "broken_chain"
        );
        assert_eq!(
            check_succession(Some(&e0), &head(2, "c", Some("b")))
                .unwrap_err()
                .code(),
            "epoch_gap"
        );
        let e1 = head(1, "b", Some("a"));
        assert_eq!(
            check_succession(Some(&e1), &e0).unwrap_err().code(),
            "rollback"
        );
    }
}
