//! Private, proof-gated payments.
//!
//! A worker registers an ElGamal key (with a proof it holds the secret) and gets an empty
//! encrypted balance. For each job whose result an approving vote certificate covers, the
//! worker claims the job reward once: the ledger re-checks the certificate (signatures and
//! ≥ 2/3 of validator stake), derives the payment's nullifier from the job id and the client's
//! request nonce, refuses a spent one, checks that the credit ciphertext encrypts exactly the
//! reward under the worker's key, and adds it homomorphically. A withdrawal moves a public
//! amount to the worker's coldkey against a proof that what stays is non-negative.

use hallmark_confidential::{BalanceHint, Ciphertext, ElGamalPublicKey};
use hallmark_consensus::{is_job_nonce, job_id_of_envelope, JOB_REQUEST_TYPE};
use hallmark_core::{Envelope, PublicKey};
use hallmark_store::ConfidentialRow;
use sha2::{Digest, Sha256};

use crate::types::ConfidentialAccount;
use crate::{DevnetLedger, LedgerError};

/// The nullifier of a job's payment: SHA-256 over a domain tag, the job id and the client's
/// request nonce (hex). One job, one nullifier, one payment.
pub fn payment_nullifier(job_id: &str, nonce: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"hallmark/payment-nullifier/v1\0");
    h.update(job_id.as_bytes());
    h.update(b"\0");
    h.update(nonce.as_bytes());
    hex::encode(h.finalize())
}

/// What a payment-key proof is bound to.
pub fn payment_key_context(chain_id: &str, hotkey: &PublicKey) -> Vec<u8> {
    format!("hallmark/payment-key/v1\n{chain_id}\n{}", hotkey.to_ss58()).into_bytes()
}

/// What a credit proof is bound to.
pub fn credit_context(chain_id: &str, worker: &PublicKey, job_id: &str) -> Vec<u8> {
    format!(
        "hallmark/credit/v1\n{chain_id}\n{}\n{job_id}",
        worker.to_ss58()
    )
    .into_bytes()
}

/// What a withdrawal proof is bound to.
pub fn withdrawal_context(chain_id: &str, worker: &PublicKey) -> Vec<u8> {
    format!("hallmark/withdrawal/v1\n{chain_id}\n{}", worker.to_ss58()).into_bytes()
}

/// The job id a client's request envelope names (`job-` + 24 hex of its canonical digest)
/// and the request's nonce. The request's own signature must hold.
pub fn request_job_id_and_nonce(request: &Envelope) -> Result<(String, String), LedgerError> {
    if request.payload_type != JOB_REQUEST_TYPE {
        return Err(LedgerError::InvalidEvidence(format!(
            "the request is a {:?}, not a job request",
            request.payload_type
        )));
    }
    let (_, payload) = request
        .verify_untyped()
        .map_err(|e| LedgerError::InvalidEvidence(format!("job request: {e}")))?;
    let job_id = job_id_of_envelope(request)
        .map_err(|e| LedgerError::InvalidEvidence(format!("job request: {e}")))?;
    let value: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|e| LedgerError::InvalidEvidence(format!("job request payload: {e}")))?;
    let nonce = value
        .get("nonce")
        .and_then(|n| n.as_str())
        .filter(|n| is_job_nonce(n))
        .ok_or_else(|| LedgerError::InvalidEvidence("job request has no hex nonce".into()))?;
    Ok((job_id, nonce.to_string()))
}

/// A stored row that does not parse.
pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Store(hallmark_store::StoreError::Corrupt(format!("{what}: {e}")))
}

/// A private balance row as the API type.
pub(crate) fn account_from_row(row: ConfidentialRow) -> Result<ConfidentialAccount, LedgerError> {
    Ok(ConfidentialAccount {
        hotkey: row
            .hotkey
            .parse()
            .map_err(|e| corrupt("confidential hotkey", e))?,
        pubkey: ElGamalPublicKey::from_hex(&row.pubkey)
            .map_err(|e| corrupt("confidential key", e))?,
        balance: Ciphertext::from_hex(&row.balance)
            .map_err(|e| corrupt("confidential balance", e))?,
        hint: row
            .hint
            .as_deref()
            .map(BalanceHint::from_hex)
            .transpose()
            .map_err(|e| corrupt("balance hint", e))?,
        seq: row.seq,
    })
}

impl DevnetLedger {
    /// A worker's private balance, if it registered a payment key.
    pub(crate) async fn confidential(
        &self,
        hotkey: &PublicKey,
    ) -> Result<Option<ConfidentialAccount>, LedgerError> {
        self.store
            .confidential(&hotkey.to_ss58())
            .await?
            .map(account_from_row)
            .transpose()
    }
}
