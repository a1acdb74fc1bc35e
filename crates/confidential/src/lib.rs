//! hallmark-confidential: private balances for workers.
//!
//! A worker's balance on the ledger is a twisted ElGamal ciphertext on Ristretto (the scheme
//! Solana's confidential transfers use): `C = x·G + r·H`, `D = r·P` with the public key
//! `P = s⁻¹·H`. `G` and `H` are the `bulletproofs` Pedersen generators, so the commitment
//! half of a ciphertext is a Pedersen commitment a range proof can speak about.
//!
//! - [`elgamal`]: keys, ciphertexts, homomorphic addition;
//! - [`dlog`]: baby-step giant-step decryption of 32-bit amounts with a precomputed table;
//! - [`hint`]: the authenticated-encryption hint that lets the owner decrypt in O(1);
//! - [`proofs`]: the sigma proofs (key validity, a credit's amount, ciphertext–commitment
//!   equality) and the withdrawal proof (equality plus a 64-bit Bulletproofs range proof).
//!
//! Everything here is pure: bytes, keys and randomness in, bytes out. No I/O.

pub mod dlog;
pub mod elgamal;
pub mod hint;
pub mod proofs;
mod serde_hex;

pub use dlog::DiscreteLog;
pub use elgamal::{Ciphertext, ElGamalPublicKey, ElGamalSecretKey};
pub use hint::{AeKey, BalanceHint};
pub use proofs::{CreditProof, EqualityProof, PubkeyProof, WithdrawalProof};

/// Why a key, ciphertext or proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfidentialError {
    /// Bytes that are not a valid encoding (wrong length, not a Ristretto point, a scalar
    /// that is not canonical).
    #[error("malformed {what}: {why}")]
    Malformed { what: &'static str, why: String },
    /// A proof that does not verify; `check` names which equation failed.
    #[error("{proof} proof does not verify: {check}")]
    ProofInvalid {
        proof: &'static str,
        check: &'static str,
    },
    /// A withdrawal of more than the balance: no honest proof exists.
    #[error("cannot withdraw {amount}: the balance is {balance}")]
    InsufficientBalance { balance: u64, amount: u64 },
    /// The balance a prover states is not what the ciphertext holds.
    #[error("the ciphertext does not hold the stated balance {0}")]
    BalanceMismatch(u64),
    /// The ciphertext does not decrypt to an amount below 2^32 (baby-step giant-step range).
    #[error("the ciphertext does not hold an amount below 2^32")]
    OutOfRange,
    /// The hint does not decrypt under this key, or does not match the ciphertext.
    #[error("balance hint: {0}")]
    Hint(String),
    /// A secret seed that hashes to the zero scalar (probability 2^-252; refused anyway).
    #[error("degenerate secret key")]
    DegenerateKey,
}

impl ConfidentialError {
    /// A stable snake_case code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            ConfidentialError::Malformed { .. } => "malformed",
            ConfidentialError::ProofInvalid { .. } => "proof_invalid",
            ConfidentialError::InsufficientBalance { .. } => "insufficient_balance",
            ConfidentialError::BalanceMismatch(_) => "balance_mismatch",
            ConfidentialError::OutOfRange => "out_of_range",
            ConfidentialError::Hint(_) => "bad_hint",
            ConfidentialError::DegenerateKey => "degenerate_key",
        }
    }
}
