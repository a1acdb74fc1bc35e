//! Private, proof-gated payments.
//!
//! A worker registers an ElGamal key (with a proof it holds the secret) and gets an empty
//! encrypted balance. For each job whose result an approving vote certificate covers, the
//! worker claims the job reward once: the ledger re-checks the certificate (signatures and
//! ≥ 2/3 of validator stake), derives the payment's nullifier from the job id and the client's
//! request nonce, refuses a spent one, checks that the credit ciphertext encrypts exactly the
//! reward under the worker's key, and adds it homomorphically. A withdrawal moves a public
//! amount to the worker's coldkey against a proof that what stays is non-negative.

use hallmark_confidential::{
    BalanceHint, Ciphertext, CreditProof, ElGamalPublicKey, PubkeyProof, WithdrawalProof,
};
use hallmark_consensus::{
    is_job_nonce, job_id_of_envelope, verify_certificate, JobResult, VoteCertificate, VoteOutcome,
    JOB_REQUEST_TYPE,
};
use hallmark_core::{Envelope, PublicKey, Signed};
use hallmark_store::{AccountRow, ConfidentialRow, LedgerCommit, NullifierRow};
use sha2::{Digest, Sha256};

use crate::devnet::certified_result;
use crate::types::{ConfidentialAccount, Role};
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

/// The parts of a `ClaimPayment` transaction.
pub(crate) struct Claim<'a> {
    pub request: &'a Envelope,
    pub certificate: &'a VoteCertificate,
    pub result: &'a Signed<JobResult>,
    pub credit: &'a Ciphertext,
    pub proof: &'a CreditProof,
    pub hint: Option<&'a BalanceHint>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Store(hallmark_store::StoreError::Corrupt(format!("{what}: {e}")))
}

fn account_from_row(row: ConfidentialRow) -> Result<ConfidentialAccount, LedgerError> {
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

    async fn require_confidential(
        &self,
        hotkey: &PublicKey,
    ) -> Result<ConfidentialAccount, LedgerError> {
        self.confidential(hotkey)
            .await?
            .ok_or_else(|| LedgerError::NoPaymentKey(hotkey.to_ss58()))
    }

    /// `RegisterPaymentKey`: a registered worker opens its encrypted balance at zero.
    pub(crate) async fn apply_payment_key(
        &self,
        commit: &mut LedgerCommit,
        signer: &PublicKey,
        pubkey: &ElGamalPublicKey,
        proof: &PubkeyProof,
        seq: u64,
    ) -> Result<(), LedgerError> {
        let hk = signer.to_ss58();
        match self.store.neuron(&hk).await? {
            Some(n) if n.role == Role::Worker.as_str() => {}
            _ => return Err(LedgerError::NotRegistered(format!("worker {hk}"))),
        }
        if self.store.confidential(&hk).await?.is_some() {
            return Err(LedgerError::Invalid(format!(
                "{hk} already has a payment key (a new one would strand its balance)"
            )));
        }
        proof
            .verify(pubkey, &payment_key_context(&self.chain_id, signer))
            .map_err(|e| LedgerError::InvalidProof(e.to_string()))?;
        commit.confidential = Some(ConfidentialRow {
            hotkey: hk,
            pubkey: pubkey.to_hex(),
            balance: Ciphertext::zero().to_hex(),
            hint: None,
            seq,
        });
        Ok(())
    }

    /// `ClaimPayment`: credits the job reward once, against an approving certificate.
    pub(crate) async fn apply_claim(
        &self,
        commit: &mut LedgerCommit,
        signer: &PublicKey,
        claim: Claim<'_>,
        seq: u64,
    ) -> Result<(), LedgerError> {
        let r = certified_result(claim.certificate, claim.result)?;
        if r.worker != *signer {
            return Err(LedgerError::Unauthorized(format!(
                "only the worker {} claims its payment",
                r.worker
            )));
        }
        let (job_id, nonce) = request_job_id_and_nonce(claim.request)?;
        if job_id != r.job_id {
            return Err(LedgerError::InvalidEvidence(format!(
                "the request is for {job_id}, the certificate for {}",
                r.job_id
            )));
        }
        if claim.certificate.outcome != VoteOutcome::Approved {
            return Err(LedgerError::InvalidEvidence(
                "only a job the validators approved is paid".into(),
            ));
        }
        // Against the stake table the job was settled with if it was (later slashings move
        // stakes), otherwise today's.
        let stakes = match self.store.settled_job(&job_id).await? {
            Some(s) if s.outcome != "approved" => {
                return Err(LedgerError::InvalidEvidence(format!(
                    "job {job_id} was settled {}",
                    s.outcome
                )))
            }
            Some(s) => serde_json::from_str(&s.stakes).map_err(|e| corrupt("settled stakes", e))?,
            None => self.validator_stakes().await?,
        };
        verify_certificate(claim.certificate, &stakes, self.params.job_quorum)
            .map_err(|e| LedgerError::InvalidEvidence(format!("certificate: {e}")))?;
        let nullifier = payment_nullifier(&job_id, &nonce);
        if self.store.nullifier(&nullifier).await?.is_some() {
            return Err(LedgerError::PaymentReplayed { job_id, nullifier });
        }
        let account = self.require_confidential(signer).await?;
        claim
            .proof
            .verify(
                &account.pubkey,
                self.params.job_reward,
                claim.credit,
                &credit_context(&self.chain_id, signer, &job_id),
            )
            .map_err(|e| LedgerError::InvalidProof(e.to_string()))?;
        let balance = account.balance + *claim.credit;
        commit.confidential = Some(ConfidentialRow {
            hotkey: signer.to_ss58(),
            pubkey: account.pubkey.to_hex(),
            balance: balance.to_hex(),
            hint: claim.hint.map(BalanceHint::to_hex),
            seq,
        });
        commit.nullifier = Some(NullifierRow {
            nullifier,
            job_id,
            worker: signer.to_ss58(),
            amount: self.params.job_reward,
            seq,
        });
        Ok(())
    }

    /// `Withdraw`: private balance to the worker's coldkey, against a withdrawal proof.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_withdraw(
        &self,
        commit: &mut LedgerCommit,
        account: &mut AccountRow,
        signer: &PublicKey,
        amount: u64,
        proof: &WithdrawalProof,
        hint: Option<&BalanceHint>,
        seq: u64,
    ) -> Result<(), LedgerError> {
        if amount == 0 {
            return Err(LedgerError::Invalid("withdraw at least 1".into()));
        }
        let hk = signer.to_ss58();
        let Some(neuron) = self.store.neuron(&hk).await? else {
            return Err(LedgerError::NotRegistered(hk));
        };
        let private = self.require_confidential(signer).await?;
        let next = proof
            .verify(
                &private.pubkey,
                &private.balance,
                amount,
                &withdrawal_context(&self.chain_id, signer),
            )
            .map_err(|e| {
                LedgerError::InvalidProof(format!(
                    "withdrawal of {amount}: {e} (the private balance does not cover it, or the proof is for another balance or amount)"
                ))
            })?;
        commit.confidential = Some(ConfidentialRow {
            hotkey: hk,
            pubkey: private.pubkey.to_hex(),
            balance: next.to_hex(),
            hint: hint.map(BalanceHint::to_hex),
            seq,
        });
        self.credit_public(commit, account, &neuron.coldkey, amount)
            .await
    }
}
