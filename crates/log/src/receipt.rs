//! Receipts: a signed statement together with the proof that it is in its signer's log.
//!
//! The leaf is the canonical JSON of the statement's DSSE envelope. The receipt carries the
//! leaf index, the tree size, the inclusion proof and the signed checkpoint (C2SP note) of
//! that size. An auditor checks it offline with [`verify_receipt`]: the statement's
//! signature, the checkpoint's signature, that the checkpoint is for the size the proof
//! claims, and the inclusion of the leaf under the checkpoint's root.

use hallmark_core::{Envelope, Verdict, VerdictBuilder};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{NoteVerifierKey, SignedCheckpoint};
use crate::hash::{leaf_hash, parse_hex_hash, Hash};
use crate::proof::verify_inclusion;

/// Where a statement sits in a log, and the signed checkpoint that proves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogProof {
    pub log_index: u64,
    pub tree_size: u64,
    /// Hex hashes, bottom-up.
    pub inclusion_proof: Vec<String>,
    /// The C2SP signed note of the checkpoint at `tree_size`.
    pub checkpoint: String,
}

/// A signed statement and its log proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Receipt {
    pub statement: Envelope,
    pub log: LogProof,
}

/// The names of every check [`verify_receipt`] runs, in order.
pub const RECEIPT_CHECKS: [&str; 5] = [
    "statement_signature",
    "checkpoint_signature",
    "checkpoint_size",
    "inclusion_proof",
    "log_key",
];

/// Checks a receipt. Without `pinned`, the log key is taken to be the statement signer's key
/// under the checkpoint's origin (hallmark nodes sign their own logs) and the last check is
/// recorded as such; with it, the checkpoint must be signed by exactly that key.
pub fn verify_receipt(receipt: &Receipt, pinned: Option<&NoteVerifierKey>) -> Verdict {
    let mut v = VerdictBuilder::new("receipt");
    let signer = match receipt.statement.verify_untyped() {
        Ok((signer, _)) => {
            v.pass(
                "statement_signature",
                format!("{} signed by {signer}", receipt.statement.payload_type),
            );
            signer
        }
        Err(e) => {
            v.fail("statement_signature", e.to_string());
            v.skip(&RECEIPT_CHECKS[1..]);
            return v.finish();
        }
    };
    let note = SignedCheckpoint {
        note: receipt.log.checkpoint.clone(),
    };
    let key = match pinned {
        Some(k) => Ok(k.clone()),
        None => note
            .checkpoint_unverified()
            .and_then(|cp| NoteVerifierKey::new(&cp.origin, signer)),
    };
    let checkpoint = match key.and_then(|k| note.verify(&k).map(|cp| (k, cp))) {
        Ok((k, cp)) => {
            v.pass("checkpoint_signature", format!("signed by {k}"));
            cp
        }
        Err(e) => {
            v.fail("checkpoint_signature", format!("{}: {e}", e.code()));
            v.skip(&RECEIPT_CHECKS[2..]);
            return v.finish();
        }
    };
    if checkpoint.size != receipt.log.tree_size {
        v.fail(
            "checkpoint_size",
            format!(
                "checkpoint is for size {}, the proof for {}",
                checkpoint.size, receipt.log.tree_size
            ),
        );
        v.skip(&RECEIPT_CHECKS[3..]);
        return v.finish();
    }
    v.pass("checkpoint_size", format!("tree size {}", checkpoint.size));
    let proof: Option<Vec<Hash>> = receipt
        .log
        .inclusion_proof
        .iter()
        .map(|h| parse_hex_hash(h))
        .collect();
    let leaf = receipt.statement.canonical_bytes().map(|b| leaf_hash(&b));
    match (proof, leaf) {
        (Some(proof), Ok(leaf)) => {
            match verify_inclusion(
                &leaf,
                receipt.log.log_index,
                receipt.log.tree_size,
                &proof,
                &checkpoint.root,
            ) {
                Ok(()) => v.pass(
                    "inclusion_proof",
                    format!(
                        "leaf {} of {} under root {}",
                        receipt.log.log_index,
                        checkpoint.size,
                        hex::encode(checkpoint.root)
                    ),
                ),
                Err(e) => v.fail("inclusion_proof", format!("{}: {e}", e.code())),
            }
        }
        (None, _) => v.fail("inclusion_proof", "a proof hash is not 32 bytes of hex"),
        (_, Err(e)) => v.fail(
            "inclusion_proof",
            format!("statement cannot be canonicalised: {e}"),
        ),
    }
    match pinned {
        Some(k) => v.pass("log_key", format!("checkpoint key is the pinned {k}")),
        None => v.pass(
            "log_key",
            "the statement signer operates the log (no key pinned)",
        ),
    }
    v.finish()
}
