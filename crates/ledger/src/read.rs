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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    let Some(root) = hallmark_log::hash::parse_hex_hash(&h.state_root) else {
        v.fail_code(
            "state_proof",
            "malformed",
            "the header's state root is not hex",
        );
        return v.finish();
    };
    let bytes = match read
        .value
        .as_ref()
        .map(hallmark_core::canonical::to_canonical_bytes)
    {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            v.fail_code("state_proof", "malformed", e.to_string());
            return v.finish();
        }
    };
    match read.proof.verify(&root, &read.key, bytes.as_deref()) {
        Ok(()) => v.pass(
            "state_proof",
            format!(
                "{} {} under state root {} at seq {}",
                read.key,
                if bytes.is_some() {
                    "holds the value"
                } else {
                    "is absent"
                },
                h.state_root,
                h.seq
            ),
        ),
        Err(e) => v.fail_code("state_proof", "proof_mismatch", e.to_string()),
    }
    v.finish()
}
