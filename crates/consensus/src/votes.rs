//! Validator votes on a proven job, their stake tally, vote certificates, equivocation
//! evidence and who gets slashed.
//!
//! Each validator checks a job's proof itself and signs a [`JobVote`] `{job_id, result_digest,
//! valid}`. Votes are counted by stake: at least 2/3 of all validator stake voting valid
//! approves the result, and the signed votes on that side form a [`VoteCertificate`] that
//! anyone can re-check offline with [`verify_certificate`]; more than 1/3 voting invalid
//! rejects it. A validator that signs two different votes for one job is an equivocator: both
//! envelopes are kept as [`VoteEquivocation`] evidence and its stake counts for neither side.

use std::collections::BTreeMap;

use hallmark_core::dsse::{Signed, SignedPayload};
use hallmark_core::PublicKey;
use serde::{Deserialize, Serialize};

use crate::quorum::Quorum;

/// The payload type of a client's signed job request (the request itself is defined where
/// jobs are queued; the ledger needs only its id and nonce).
pub const JOB_REQUEST_TYPE: &str = "application/vnd.hallmark.job-request+json";

/// The id of the job a client's request envelope asks for: `job-` and the first 24 hex digits
/// of the SHA-256 of the canonical envelope, so nobody can change what was asked without
/// changing which job it is.
pub fn job_id_of_envelope(
    request: &hallmark_core::Envelope,
) -> Result<String, hallmark_core::dsse::DsseError> {
    let digest = hallmark_core::sha256(&request.canonical_bytes()?);
    Ok(format!("job-{}", &digest.to_hex()[..24]))
}

/// Whether `nonce` is a job request's nonce: 1 to 64 hex digits.
pub fn is_job_nonce(nonce: &str) -> bool {
    !nonce.is_empty() && nonce.len() <= 64 && nonce.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A validator's verdict on one job's result, signed with its hotkey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobVote {
    /// The job voted on.
    pub job_id: String,
    /// The result the vote is about (the proof package's BLAKE3 hash, hex).
    pub result_digest: String,
    /// Whether the validator's own verification accepted the result.
    pub valid: bool,
}

impl SignedPayload for JobVote {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.job-vote+json";
}

/// A worker's signed claim that `result_digest` is its result for `job_id`. Settling a job
/// on the ledger needs it: a rejected certificate slashes exactly the worker that signed this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobResult {
    /// The job.
    pub job_id: String,
    /// The worker that produced the result (and signs this).
    pub worker: PublicKey,
    /// The result (the proof package's BLAKE3 hash, hex).
    pub result_digest: String,
}

impl SignedPayload for JobResult {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.job-result+json";
}

/// Where a job stands after counting its votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VoteOutcome {
    /// Neither threshold reached yet.
    Pending,
    /// At least the quorum of stake voted valid.
    Approved,
    /// More than `1 - quorum` of stake voted invalid: approval is no longer possible.
    Rejected,
}

/// Two different signed votes from one validator for one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VoteEquivocation {
    /// The validator.
    pub validator: PublicKey,
    /// The first vote seen.
    pub first: Signed<JobVote>,
    /// The conflicting vote.
    pub second: Signed<JobVote>,
}

impl VoteEquivocation {
    /// Checks the evidence on its own: both votes signed by `validator`, about one job, and
    /// different. Anyone (the ledger slashing on it) can run this without trusting who sent it.
    pub fn check(&self) -> Result<String, CertificateError> {
        let bad = |index: usize, reason: String| CertificateError::BadVote { index, reason };
        let first = self
            .first
            .verify()
            .map_err(|e| bad(0, format!("signature: {e}")))?;
        let second = self
            .second
            .verify()
            .map_err(|e| bad(1, format!("signature: {e}")))?;
        for (index, signer) in [(0, first.signer), (1, second.signer)] {
            if signer != self.validator {
                return Err(bad(
                    index,
                    format!("signed by {signer}, not {}", self.validator),
                ));
            }
        }
        if first.payload.job_id != second.payload.job_id {
            return Err(bad(1, "the votes are about different jobs".into()));
        }
        if first.payload == second.payload {
            return Err(bad(1, "the votes are the same vote".into()));
        }
        Ok(first.payload.job_id)
    }
}

/// A vote that was not counted, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RefusedVote {
    /// The signer, when the signature checked out.
    pub signer: Option<PublicKey>,
    /// Why it does not count.
    pub reason: String,
}

/// The count of one job's votes.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct VoteTally {
    /// The job.
    pub job_id: String,
    /// The result voted on.
    pub result_digest: String,
    /// Decision so far.
    pub outcome: VoteOutcome,
    /// Stake of counted valid votes.
    pub valid_stake: u64,
    /// Stake of counted invalid votes.
    pub invalid_stake: u64,
    /// Stake of every validator in the table.
    pub total_stake: u64,
    /// Counted votes, one per validator, in signer order.
    pub counted: Vec<(PublicKey, bool, Signed<JobVote>)>,
    /// Validators that signed conflicting votes (not counted).
    pub equivocations: Vec<VoteEquivocation>,
    /// Votes that do not count (bad signature, not a validator, another job or result).
    pub refused: Vec<RefusedVote>,
}

/// Counts `votes` for `job_id`/`result_digest` against validator `stakes` with `quorum`.
pub fn tally_votes(
    job_id: &str,
    result_digest: &str,
    votes: &[Signed<JobVote>],
    stakes: &BTreeMap<PublicKey, u64>,
    quorum: Quorum,
) -> VoteTally {
    let mut by_signer: BTreeMap<PublicKey, (JobVote, Signed<JobVote>)> = BTreeMap::new();
    let mut equivocators: BTreeMap<PublicKey, VoteEquivocation> = BTreeMap::new();
    let mut refused = Vec::new();
    for envelope in votes {
        let verified = match envelope.verify() {
            Ok(v) => v,
            Err(e) => {
                refused.push(RefusedVote {
                    signer: None,
                    reason: format!("signature: {e}"),
                });
                continue;
            }
        };
        let signer = verified.signer;
        let vote = verified.payload;
        if vote.job_id != job_id {
            refused.push(RefusedVote {
                signer: Some(signer),
                reason: format!("vote is for job {:?}", vote.job_id),
            });
            continue;
        }
        if !stakes.contains_key(&signer) {
            refused.push(RefusedVote {
                signer: Some(signer),
                reason: "signer is not a validator with stake".into(),
            });
            continue;
        }
        match by_signer.get(&signer) {
            None => {
                by_signer.insert(signer, (vote, envelope.clone()));
            }
            Some((seen, _)) if *seen == vote => {}
            Some((_, first)) => {
                equivocators
                    .entry(signer)
                    .or_insert_with(|| VoteEquivocation {
                        validator: signer,
                        first: first.clone(),
                        second: envelope.clone(),
                    });
            }
        }
    }
    let mut counted = Vec::new();
    let (mut valid_stake, mut invalid_stake) = (0u64, 0u64);
    for (signer, (vote, envelope)) in by_signer {
        if equivocators.contains_key(&signer) {
            continue;
        }
        if vote.result_digest != result_digest {
            refused.push(RefusedVote {
                signer: Some(signer),
                reason: format!("vote is about result {}", vote.result_digest),
            });
            continue;
        }
        let stake = stakes.get(&signer).copied().unwrap_or(0);
        if vote.valid {
            valid_stake = valid_stake.saturating_add(stake);
        } else {
            invalid_stake = invalid_stake.saturating_add(stake);
        }
        counted.push((signer, vote.valid, envelope));
    }
    let total_stake = stakes.values().fold(0u64, |a, s| a.saturating_add(*s));
    let outcome = outcome_of(valid_stake, invalid_stake, total_stake, quorum);
    VoteTally {
        job_id: job_id.to_string(),
        result_digest: result_digest.to_string(),
        outcome,
        valid_stake,
        invalid_stake,
        total_stake,
        counted,
        equivocations: equivocators.into_values().collect(),
        refused,
    }
}

/// Approved at `quorum` of valid stake; rejected once invalid stake makes that impossible
/// (more than `1 - quorum`, i.e. more than 1/3 for 2/3).
pub fn outcome_of(valid: u64, invalid: u64, total: u64, quorum: Quorum) -> VoteOutcome {
    if quorum.is_met(valid, total) {
        return VoteOutcome::Approved;
    }
    // Approval is impossible when even every remaining stake voting valid falls short.
    let best_case = total.saturating_sub(invalid);
    if total > 0 && !quorum.is_met(best_case, total) {
        return VoteOutcome::Rejected;
    }
    VoteOutcome::Pending
}

/// The signed votes that settled a job, re-checkable offline against the stake table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VoteCertificate {
    /// The job.
    pub job_id: String,
    /// The result.
    pub result_digest: String,
    /// How it was settled.
    pub outcome: VoteOutcome,
    /// Every counted vote (both sides), as signed.
    pub votes: Vec<Signed<JobVote>>,
}

impl VoteTally {
    /// The certificate for a settled tally; `None` while pending.
    pub fn certificate(&self) -> Option<VoteCertificate> {
        if self.outcome == VoteOutcome::Pending {
            return None;
        }
        Some(VoteCertificate {
            job_id: self.job_id.clone(),
            result_digest: self.result_digest.clone(),
            outcome: self.outcome,
            votes: self.counted.iter().map(|(_, _, e)| e.clone()).collect(),
        })
    }

    /// Who is slashed once the job is settled: the worker of a rejected result, every
    /// validator whose counted vote went against the settled outcome, and every equivocator.
    pub fn slashings(&self, worker: &PublicKey) -> Vec<Slashing> {
        let Some(cert) = self.certificate() else {
            return Vec::new();
        };
        let mut out = cert.slashings(worker);
        out.extend(self.equivocations.iter().map(|e| Slashing {
            who: e.validator,
            reason: SlashReason::Equivocation,
        }));
        out
    }
}

impl VoteCertificate {
    /// Who a settled certificate slashes: the worker of a rejected result and every validator
    /// whose vote in it went against the outcome. Call after [`verify_certificate`] passed;
    /// votes whose signature does not check are skipped.
    pub fn slashings(&self, worker: &PublicKey) -> Vec<Slashing> {
        let mut out = Vec::new();
        if self.outcome == VoteOutcome::Pending {
            return out;
        }
        if self.outcome == VoteOutcome::Rejected {
            out.push(Slashing {
                who: *worker,
                reason: SlashReason::RejectedResult,
            });
        }
        let settled_valid = self.outcome == VoteOutcome::Approved;
        for envelope in &self.votes {
            if let Ok(v) = envelope.verify() {
                if v.payload.valid != settled_valid {
                    out.push(Slashing {
                        who: v.signer,
                        reason: SlashReason::DissentingVote,
                    });
                }
            }
        }
        out
    }
}

/// Why someone is slashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlashReason {
    /// A worker whose result the validators rejected.
    RejectedResult,
    /// A validator that voted against the settled supermajority.
    DissentingVote,
    /// A validator that signed two different votes for one job.
    Equivocation,
}

impl SlashReason {
    /// Every reason, in declaration order.
    pub const ALL: [SlashReason; 3] = [
        SlashReason::RejectedResult,
        SlashReason::DissentingVote,
        SlashReason::Equivocation,
    ];

    /// The wire and storage name (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            SlashReason::RejectedResult => "rejected_result",
            SlashReason::DissentingVote => "dissenting_vote",
            SlashReason::Equivocation => "equivocation",
        }
    }

    /// Parses [`SlashReason::as_str`]'s names.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One slashing decision; the ledger applies the configured fraction of stake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Slashing {
    /// The hotkey slashed.
    pub who: PublicKey,
    /// Why.
    pub reason: SlashReason,
}

/// Why a certificate does not prove its outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// A vote's signature or payload does not check.
    #[error("vote {index}: {reason}")]
    BadVote {
        /// Position in the certificate.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// Two votes from one validator.
    #[error("validator {0} appears twice")]
    Duplicate(String),
    /// The counted stake does not reach the stated outcome.
    #[error("votes give {found:?} ({valid} valid / {invalid} invalid of {total}), certificate says {stated:?}")]
    Outcome {
        /// What the certificate claims.
        stated: VoteOutcome,
        /// What its votes give.
        found: VoteOutcome,
        /// Valid stake counted.
        valid: u64,
        /// Invalid stake counted.
        invalid: u64,
        /// Total stake.
        total: u64,
    },
}

/// Re-checks a certificate against a stake table: every vote signed by a distinct validator
/// with stake, about this job and result, and the counted stake reaching the stated outcome.
pub fn verify_certificate(
    cert: &VoteCertificate,
    stakes: &BTreeMap<PublicKey, u64>,
    quorum: Quorum,
) -> Result<(u64, u64, u64), CertificateError> {
    let mut seen = BTreeMap::new();
    let (mut valid, mut invalid) = (0u64, 0u64);
    for (index, envelope) in cert.votes.iter().enumerate() {
        let bad = |reason: String| CertificateError::BadVote { index, reason };
        let verified = envelope
            .verify()
            .map_err(|e| bad(format!("signature: {e}")))?;
        let vote = verified.payload;
        if vote.job_id != cert.job_id || vote.result_digest != cert.result_digest {
            return Err(bad("vote is about another job or result".into()));
        }
        let Some(stake) = stakes.get(&verified.signer) else {
            return Err(bad(format!(
                "{} is not a validator with stake",
                verified.signer
            )));
        };
        if seen.insert(verified.signer, ()).is_some() {
            return Err(CertificateError::Duplicate(verified.signer.to_string()));
        }
        if vote.valid {
            valid = valid.saturating_add(*stake);
        } else {
            invalid = invalid.saturating_add(*stake);
        }
    }
    let total = stakes.values().fold(0u64, |a, s| a.saturating_add(*s));
    let found = outcome_of(valid, invalid, total, quorum);
    if found != cert.outcome || found == VoteOutcome::Pending {
        return Err(CertificateError::Outcome {
            stated: cert.outcome,
            found,
            valid,
            invalid,
            total,
        });
    }
    Ok((valid, invalid, total))
}

#[cfg(test)]
mod tests {
    use hallmark_core::Keypair;

    use super::*;

    fn validators(stakes: &[u64]) -> (Vec<Keypair>, BTreeMap<PublicKey, u64>) {
        let keys: Vec<Keypair> = (0..stakes.len())
            .map(|i| Keypair::from_seed(&[i as u8 + 1; 32]))
            .collect();
        let table = keys
            .iter()
            .zip(stakes)
            .map(|(k, s)| (k.public(), *s))
            .collect();
        (keys, table)
    }

    fn vote(key: &Keypair, job: &str, digest: &str, valid: bool) -> Signed<JobVote> {
        Signed::sign(
            &JobVote {
                job_id: job.into(),
                result_digest: digest.into(),
                valid,
            },
            key,
        )
        .unwrap()
    }

    #[test]
    fn two_thirds_of_stake_approves_and_certifies() {
        let (keys, stakes) = validators(&[100, 100, 100]);
        let votes: Vec<_> = keys[..2].iter().map(|k| vote(k, "j", "d", true)).collect();
        let tally = tally_votes("j", "d", &votes, &stakes, Quorum::TWO_THIRDS);
        assert_eq!(tally.outcome, VoteOutcome::Approved);
        assert_eq!((tally.valid_stake, tally.total_stake), (200, 300));
        let cert = tally.certificate().unwrap();
        assert_eq!(
            verify_certificate(&cert, &stakes, Quorum::TWO_THIRDS).unwrap(),
            (200, 0, 300)
        );
        // One vote short of 2/3 is pending, and has no certificate.
        let one = tally_votes("j", "d", &votes[..1], &stakes, Quorum::TWO_THIRDS);
        assert_eq!(one.outcome, VoteOutcome::Pending);
        assert!(one.certificate().is_none());
    }

    #[test]
    fn more_than_a_third_invalid_rejects_and_slashes_worker_and_dissenters() {
        let (keys, stakes) = validators(&[100, 100, 100, 100]);
        let worker = Keypair::from_seed(&[9; 32]).public();
        // 2 of 4 invalid (1/2 > 1/3): rejected even though 2 voted valid.
        let votes = vec![
            vote(&keys[0], "j", "d", false),
            vote(&keys[1], "j", "d", false),
            vote(&keys[2], "j", "d", true),
        ];
        let tally = tally_votes("j", "d", &votes, &stakes, Quorum::TWO_THIRDS);
        assert_eq!(tally.outcome, VoteOutcome::Rejected);
        let slashed = tally.slashings(&worker);
        assert!(slashed.contains(&Slashing {
            who: worker,
            reason: SlashReason::RejectedResult
        }));
        assert!(slashed.contains(&Slashing {
            who: keys[2].public(),
            reason: SlashReason::DissentingVote
        }));
        assert_eq!(slashed.len(), 2);
        // Exactly 1/3 invalid is not yet a rejection.
        let (keys, stakes) = validators(&[100, 100, 100]);
        let tally = tally_votes(
            "j",
            "d",
            &[vote(&keys[0], "j", "d", false)],
            &stakes,
            Quorum::TWO_THIRDS,
        );
        assert_eq!(tally.outcome, VoteOutcome::Pending);
    }

    #[test]
    fn equivocation_is_caught_with_both_votes_and_not_counted() {
        let (keys, stakes) = validators(&[100, 100, 100]);
        let worker = Keypair::from_seed(&[9; 32]).public();
        let yes = vote(&keys[0], "j", "d", true);
        let no = vote(&keys[0], "j", "d", false);
        let votes = vec![
            yes.clone(),
            no.clone(),
            yes.clone(),
            vote(&keys[1], "j", "d", true),
            vote(&keys[2], "j", "d", true),
        ];
        let tally = tally_votes("j", "d", &votes, &stakes, Quorum::TWO_THIRDS);
        assert_eq!(tally.equivocations.len(), 1);
        let e = &tally.equivocations[0];
        assert_eq!(
            (e.validator, &e.first, &e.second),
            (keys[0].public(), &yes, &no)
        );
        assert_eq!(tally.valid_stake, 200);
        assert_eq!(tally.outcome, VoteOutcome::Approved);
        assert_eq!(
            tally.slashings(&worker),
            vec![Slashing {
                who: keys[0].public(),
                reason: SlashReason::Equivocation
            }]
        );
        // A vote for another result digest from the same validator is also equivocation.
        let other = vote(&keys[1], "j", "other", true);
        let tally = tally_votes(
            "j",
            "d",
            &[vote(&keys[1], "j", "d", true), other],
            &stakes,
            Quorum::TWO_THIRDS,
        );
        assert_eq!(tally.equivocations.len(), 1);
    }

    #[test]
    fn slash_reason_names_are_the_serialised_ones() {
        for r in SlashReason::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
            assert_eq!(SlashReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(SlashReason::parse("other"), None);
    }

    #[test]
    fn equivocation_evidence_checks_on_its_own() {
        let (keys, _) = validators(&[100, 100]);
        let evidence = VoteEquivocation {
            validator: keys[0].public(),
            first: vote(&keys[0], "j", "d", true),
            second: vote(&keys[0], "j", "d", false),
        };
        assert_eq!(evidence.check().unwrap(), "j");
        // The same vote twice is not equivocation.
        let same = VoteEquivocation {
            second: evidence.first.clone(),
            ..evidence.clone()
        };
        assert!(same.check().unwrap_err().to_string().contains("same vote"));
        // Votes about two jobs are not equivocation.
        let two_jobs = VoteEquivocation {
            second: vote(&keys[0], "k", "d", false),
            ..evidence.clone()
        };
        assert!(two_jobs.check().is_err());
        // Someone else's vote cannot frame a validator.
        let framed = VoteEquivocation {
            second: vote(&keys[1], "j", "d", false),
            ..evidence.clone()
        };
        assert!(framed
            .check()
            .unwrap_err()
            .to_string()
            .contains("signed by"));
        // A tampered envelope fails its signature.
        let mut env = evidence.second.envelope().clone();
        env.payload = evidence.first.envelope().payload.clone();
        let tampered = VoteEquivocation {
            second: Signed::from_envelope(env),
            ..evidence
        };
        assert!(tampered.check().is_err());
    }

    #[test]
    fn refused_votes_do_not_count() {
        let (keys, stakes) = validators(&[100, 100, 100]);
        let outsider = Keypair::from_seed(&[77; 32]);
        // keys[0]'s signature over a payload it never signed.
        let mut forged = vote(&keys[0], "j", "d", false).envelope().clone();
        forged.payload = vote(&keys[0], "j", "d", true).envelope().payload.clone();
        let votes = vec![
            Signed::from_envelope(forged),
            vote(&outsider, "j", "d", true),
            vote(&keys[1], "other-job", "d", true),
            vote(&keys[2], "j", "other-digest", true),
        ];
        let tally = tally_votes("j", "d", &votes, &stakes, Quorum::TWO_THIRDS);
        assert_eq!(tally.refused.len(), 4, "{:?}", tally.refused);
        assert_eq!(tally.valid_stake, 0);
        assert_eq!(tally.outcome, VoteOutcome::Pending);
    }

    #[test]
    fn forged_or_short_certificates_fail_offline() {
        let (keys, stakes) = validators(&[100, 100, 100]);
        let votes: Vec<_> = keys.iter().map(|k| vote(k, "j", "d", true)).collect();
        let cert = tally_votes("j", "d", &votes, &stakes, Quorum::TWO_THIRDS)
            .certificate()
            .unwrap();
        // Drop to one vote: below 2/3.
        let mut short = cert.clone();
        short.votes.truncate(1);
        assert!(matches!(
            verify_certificate(&short, &stakes, Quorum::TWO_THIRDS),
            Err(CertificateError::Outcome { .. })
        ));
        // Swap one vote's payload: the signature no longer matches.
        let mut forged = cert.clone();
        let mut env = forged.votes[0].envelope().clone();
        env.payload = vote(&keys[0], "j", "x", true).envelope().payload.clone();
        env.signatures = forged.votes[1].envelope().signatures.clone();
        forged.votes[0] = Signed::from_envelope(env);
        assert!(matches!(
            verify_certificate(&forged, &stakes, Quorum::TWO_THIRDS),
            Err(CertificateError::BadVote { index: 0, .. })
        ));
        // The same vote twice.
        let mut dup = cert.clone();
        dup.votes[1] = dup.votes[0].clone();
        assert!(matches!(
            verify_certificate(&dup, &stakes, Quorum::TWO_THIRDS),
            Err(CertificateError::Duplicate(_))
        ));
        // Claiming rejection for an approval.
        let mut flipped = cert;
        flipped.outcome = VoteOutcome::Rejected;
        assert!(verify_certificate(&flipped, &stakes, Quorum::TWO_THIRDS).is_err());
    }
}
