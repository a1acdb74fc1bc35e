//! Block headers and ids, and offline checks of a read against a commit certificate.
//!
//! A block's id is the SHA-256 of its header's canonical JSON, and the header commits to
//! the transactions by their hash. So a read needs only the header (not the whole block)
//! to show that the state root its proof leads to is the one validators with more than
//! 2/3 of the voting power precommitted.

use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::{sha256, Verdict, VerdictBuilder};
use hallmark_ledger::block::Block;
use hallmark_ledger::read::check_state_proof;
use hallmark_ledger::state_tree::StateProof;
use serde::{Deserialize, Serialize};

use crate::codec::WireCertificate;
use crate::context::{vote_signing_bytes, BlockId, Height, ValidatorSet, Vote};
use malachitebft_app_channel::app::types::core::{NilOrVal, VoteType};

/// What a block commits to, without its transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BlockHeader {
    pub height: u64,
    pub prev_hash: String,
    pub time_ms: i64,
    /// SHA-256 of the canonical JSON of the block's transaction list (hex).
    pub txs_sha256: String,
    pub tx_count: u64,
    pub state_root: String,
    pub log_root: String,
    /// The transaction log's size: with `log_root`, the checkpoint the block commits to.
    pub log_size: u64,
}

impl BlockHeader {
    /// The header of `block`.
    pub fn of(block: &Block) -> Self {
        let txs = to_canonical_bytes(&block.txs).unwrap_or_default();
        Self {
            height: block.height,
            prev_hash: block.prev_hash.clone(),
            time_ms: block.time_ms,
            txs_sha256: sha256(&txs).to_hex(),
            tx_count: block.txs.len() as u64,
            state_root: block.state_root.clone(),
            log_root: block.log_root.clone(),
            log_size: block.log_size,
        }
    }

    /// The block id: SHA-256 of this header's canonical JSON.
    pub fn id(&self) -> BlockId {
        BlockId(sha256(&to_canonical_bytes(self).unwrap_or_default()).0)
    }
}

/// The id of `block`.
pub fn block_id(block: &Block) -> BlockId {
    BlockHeader::of(block).id()
}

/// Why a commit certificate does not certify a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("certificate is for block {found}, the header is {expected}")]
    WrongBlock { expected: String, found: String },
    #[error("certificate is for height {found}, the header is {expected}")]
    WrongHeight { expected: u64, found: u64 },
    #[error("{0} signed twice")]
    DuplicateSigner(String),
    #[error("{0} is not in the validator set")]
    UnknownSigner(String),
    #[error("{0}'s precommit signature does not verify")]
    BadSignature(String),
    #[error("signers hold {signed} of {total} voting power, not more than 2/3")]
    NoQuorum { signed: u64, total: u64 },
}

impl CertificateError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            CertificateError::WrongBlock { .. } => "wrong_block",
            CertificateError::WrongHeight { .. } => "wrong_height",
            CertificateError::DuplicateSigner(_) => "duplicate_signer",
            CertificateError::UnknownSigner(_) => "unknown_signer",
            CertificateError::BadSignature(_) => "bad_signature",
            CertificateError::NoQuorum { .. } => "no_quorum",
        }
    }
}

/// Checks that `certificate` holds precommits for `header` from validators with more than
/// 2/3 of `validators`' power, each signature verified. Pure: no clock, no I/O.
pub fn verify_certificate(
    chain_id: &str,
    header: &BlockHeader,
    certificate: &WireCertificate,
    validators: &ValidatorSet,
) -> Result<u64, CertificateError> {
    let id = header.id();
    if certificate.value_id != id {
        return Err(CertificateError::WrongBlock {
            expected: id.to_hex(),
            found: certificate.value_id.to_hex(),
        });
    }
    if certificate.height.0 != header.height {
        return Err(CertificateError::WrongHeight {
            expected: header.height,
            found: certificate.height.0,
        });
    }
    let total = validators
        .validators()
        .iter()
        .fold(0u64, |a, v| a.saturating_add(v.voting_power));
    let mut seen = std::collections::BTreeSet::new();
    let mut signed = 0u64;
    for s in &certificate.signatures {
        let who = s.address.0.to_ss58();
        if !seen.insert(s.address) {
            return Err(CertificateError::DuplicateSigner(who));
        }
        let Some(v) = validators
            .validators()
            .iter()
            .find(|v| v.address == s.address)
        else {
            return Err(CertificateError::UnknownSigner(who));
        };
        let vote = Vote::new(
            VoteType::Precommit,
            Height(header.height),
            certificate.round,
            NilOrVal::Val(id),
            s.address,
        );
        if s.address
            .0
            .verify(&vote_signing_bytes(chain_id, &vote), &s.signature)
            .is_err()
        {
            return Err(CertificateError::BadSignature(who));
        }
        signed = signed.saturating_add(v.voting_power);
    }
    if (signed as u128) * 3 <= (total as u128) * 2 {
        return Err(CertificateError::NoQuorum { signed, total });
    }
    Ok(signed)
}

/// A ledger read from a replica: the value, its proof, the header whose state root the
/// proof leads to, and the certificate that decided that header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertifiedRead {
    pub chain_id: String,
    pub key: String,
    /// The value's canonical JSON, or `null` when the key is absent (the proof shows it).
    pub value: Option<serde_json::Value>,
    pub proof: StateProof,
    pub header: BlockHeader,
    pub certificate: WireCertificate,
}

/// The `chain` check both certified verdicts open with; on a mismatch it fails and skips
/// `rest`. Returns whether to go on.
fn check_chain(v: &mut VerdictBuilder, found: &str, expected: Option<&str>, rest: &[&str]) -> bool {
    match expected {
        Some(c) if c != found => {
            v.fail_code(
                "chain",
                "wrong_chain",
                format!("this is for chain {found:?}, not {c:?}"),
            );
            v.skip(rest);
            false
        }
        _ => {
            v.pass("chain", found.to_string());
            true
        }
    }
}

/// Checks a certified read offline against a validator set. Each check is named; the first
/// failure rejects and the checks after it are skipped.
pub fn verify_certified_read(
    read: &CertifiedRead,
    validators: &ValidatorSet,
    chain_id: Option<&str>,
) -> Verdict {
    let mut v = VerdictBuilder::new("ledger-read");
    if !check_chain(
        &mut v,
        &read.chain_id,
        chain_id,
        &["certificate", "state_proof"],
    ) {
        return v.finish();
    }
    match verify_certificate(&read.chain_id, &read.header, &read.certificate, validators) {
        Ok(power) => v.pass(
            "certificate",
            format!(
                "block {} at height {} precommitted by {power} voting power",
                read.header.id(),
                read.header.height
            ),
        ),
        Err(e) => {
            v.fail_code("certificate", e.code(), e.to_string());
            v.skip(&["state_proof"]);
            return v.finish();
        }
    }
    check_state_proof(
        &mut v,
        &read.key,
        read.value.as_ref(),
        &read.proof,
        &read.header.state_root,
        &format!("height {}", read.header.height),
    );
    v.finish()
}

/// The ledger log's checkpoint as the validators decided it: the header (whose `log_size`
/// and `log_root` are the checkpoint) and the commit certificate that co-signs it. It counts
/// when validators with more than 2/3 of the power precommitted the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertifiedCheckpoint {
    pub chain_id: String,
    /// The C2SP origin of the ledger's log (`hallmark/<chain_id>/ledger`).
    pub origin: String,
    pub header: BlockHeader,
    pub certificate: WireCertificate,
}

/// Checks a certified checkpoint offline against a validator set: the certificate, then
/// that the checkpoint is well formed. Pure: no clock, no I/O.
pub fn verify_certified_checkpoint(
    cp: &CertifiedCheckpoint,
    validators: &ValidatorSet,
    chain_id: Option<&str>,
) -> Verdict {
    let mut v = VerdictBuilder::new("ledger-checkpoint");
    if !check_chain(&mut v, &cp.chain_id, chain_id, &["origin", "certificate"]) {
        return v.finish();
    }
    let origin = format!("hallmark/{}/ledger", cp.chain_id);
    if cp.origin != origin {
        v.fail_code(
            "origin",
            "wrong_origin",
            format!("origin {:?}, the chain's log is {origin:?}", cp.origin),
        );
        v.skip(&["certificate"]);
        return v.finish();
    }
    v.pass("origin", origin);
    if hallmark_log::hash::parse_hex_hash(&cp.header.log_root).is_none() {
        v.fail_code("certificate", "malformed", "the log root is not hex");
        return v.finish();
    }
    match verify_certificate(&cp.chain_id, &cp.header, &cp.certificate, validators) {
        Ok(power) => v.pass(
            "certificate",
            format!(
                "log size {} root {} at height {} co-signed by {power} voting power",
                cp.header.log_size, cp.header.log_root, cp.header.height
            ),
        ),
        Err(e) => v.fail_code("certificate", e.code(), e.to_string()),
    }
    v.finish()
}
