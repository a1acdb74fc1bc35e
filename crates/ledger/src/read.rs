//! Reads that carry their own proof: a state value, its Merkle proof under the state root,
//! and the header that root belongs to, signed. [`verify_read`] checks one offline, with no
//! I/O: the header's signature by a trusted key, the proof against the header's root, and the
//! value against the proof.
//!
//! A single-sequencer ledger signs headers with its key; a replicated ledger will carry the
//! validators' commit certificate in the same place.

use hallmark_core::verdict::{Verdict, VerdictBuilder};
use hallmark_core::{Envelope, PublicKey, Signed, SignedPayload};
use serde::{Deserialize, Serialize};

use crate::state_tree::StateProof;

/// What a ledger head commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LedgerHeader {
    pub chain_id: String,
    /// The last transaction applied.
    pub seq: u64,
    pub tx_hash: String,
    /// Its block time (ms).
    pub time_ms: i64,
    /// The state root after it (hex).
    pub state_root: String,
}

impl SignedPayload for LedgerHeader {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.ledger-header+json";
}

/// A state value with everything needed to check it offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LedgerRead {
    pub key: String,
    /// The value's canonical JSON, or `null` when the key is absent (the proof shows it).
    pub value: Option<serde_json::Value>,
    pub proof: StateProof,
    /// The signed [`LedgerHeader`] whose state root the proof leads to.
    pub header: Envelope,
}

/// Checks a read offline against the keys trusted to sign headers. Every check is named in the
/// verdict; the first failure rejects.
pub fn verify_read(read: &LedgerRead, trusted: &[PublicKey], chain_id: Option<&str>) -> Verdict {
    let mut v = VerdictBuilder::new("ledger-read");
    let header = match Signed::<LedgerHeader>::from_envelope(read.header.clone()).verify() {
        Ok(h) => h,
        Err(e) => {
            v.fail_code("header_signature", "bad_signature", e.to_string());
            v.skip(&["chain", "state_proof"]);
            return v.finish();
        }
    };
    if trusted.contains(&header.signer) {
        v.pass("header_signature", format!("signed by {}", header.signer));
    } else {
        v.fail_code(
            "header_signature",
            "untrusted_signer",
            format!("signed by {}, which is not a trusted key", header.signer),
        );
        v.skip(&["chain", "state_proof"]);
        return v.finish();
    }
    let h = header.payload;
    match chain_id {
        Some(c) if c != h.chain_id => {
            v.fail_code(
                "chain",
                "wrong_chain",
                format!("the header is for chain {:?}, not {c:?}", h.chain_id),
            );
            v.skip(&["state_proof"]);
            return v.finish();
        }
        _ => v.pass("chain", h.chain_id.clone()),
    }
    check_state_proof(
        &mut v,
        &read.key,
        read.value.as_ref(),
        &read.proof,
        &h.state_root,
        &format!("seq {}", h.seq),
    );
    v.finish()
}

/// The `state_proof` check every kind of ledger read ends with: `proof` shows `key` holding
/// `value` (or absent, for `None`) under the hex `state_root`; `at` names where the root is
/// from (a sequence number, a block height) in the passing detail.
pub fn check_state_proof(
    v: &mut VerdictBuilder,
    key: &str,
    value: Option<&serde_json::Value>,
    proof: &crate::state_tree::StateProof,
    state_root: &str,
    at: &str,
) {
    let Some(root) = hallmark_log::hash::parse_hex_hash(state_root) else {
        v.fail_code(
            "state_proof",
            "malformed",
            "the header's state root is not hex",
        );
        return;
    };
    let bytes = match value.map(hallmark_core::canonical::to_canonical_bytes) {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            v.fail_code("state_proof", "malformed", e.to_string());
            return;
        }
    };
    match proof.verify(&root, key, bytes.as_deref()) {
        Ok(()) => v.pass(
            "state_proof",
            format!(
                "{key} {} under state root {state_root} at {at}",
                if bytes.is_some() {
                    "holds the value"
                } else {
                    "is absent"
                },
            ),
        ),
        Err(e) => v.fail_code("state_proof", "proof_mismatch", e.to_string()),
    }
}

/// Proof that a ledger signed two different heads at one height: two headers for the same
/// chain and sequence number, both signed by the same key, naming different transactions or
/// state roots. With one sequencer, this is how a fork (a split view shown to different
/// readers) is caught and proven to anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LedgerFork {
    pub signer: PublicKey,
    pub chain_id: String,
    pub seq: u64,
    pub first: LedgerHeader,
    pub second: LedgerHeader,
}

/// Why two headers are not evidence of a fork.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAFork {
    #[error("header {0} does not verify: {1}")]
    BadSignature(usize, String),
    #[error("the headers are signed by different keys")]
    DifferentSigners,
    #[error("the headers are for different chains or sequence numbers")]
    DifferentHeights,
    #[error("the headers agree: no fork")]
    Consistent,
}

impl NotAFork {
    /// A stable code for the wire and exit messages.
    pub fn code(&self) -> &'static str {
        match self {
            NotAFork::BadSignature(..) => "bad_signature",
            NotAFork::DifferentSigners => "different_signers",
            NotAFork::DifferentHeights => "different_heights",
            NotAFork::Consistent => "consistent",
        }
    }
}

/// Checks two signed headers for a fork: same signer, chain and sequence number, different
/// contents.
pub fn ledger_fork(a: &Envelope, b: &Envelope) -> Result<LedgerFork, NotAFork> {
    let open = |i: usize, e: &Envelope| {
        Signed::<LedgerHeader>::from_envelope(e.clone())
            .verify()
            .map_err(|err| NotAFork::BadSignature(i, err.to_string()))
    };
    let (x, y) = (open(1, a)?, open(2, b)?);
    if x.signer != y.signer {
        return Err(NotAFork::DifferentSigners);
    }
    if x.payload.chain_id != y.payload.chain_id || x.payload.seq != y.payload.seq {
        return Err(NotAFork::DifferentHeights);
    }
    if x.payload == y.payload {
        return Err(NotAFork::Consistent);
    }
    Ok(LedgerFork {
        signer: x.signer,
        chain_id: x.payload.chain_id.clone(),
        seq: x.payload.seq,
        first: x.payload,
        second: y.payload,
    })
}
