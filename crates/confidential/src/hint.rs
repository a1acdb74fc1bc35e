//! The decryptable-balance hint: the owner's balance under a symmetric key only the owner
//! holds (XChaCha20-Poly1305), stored beside the ciphertext so the owner reads its balance in
//! O(1), as Solana's `decryptable_available_balance` does. The hint is a convenience, never
//! trusted: a value read from it counts only once the ciphertext is checked to hold it.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::serde_hex::{exact_len, hex_serde};
use crate::{Ciphertext, ConfidentialError, DiscreteLog, ElGamalSecretKey};

const AE_TAG: &[u8] = b"hallmark/balance-hint-key/v1";
const AAD: &[u8] = b"hallmark/balance-hint/v1";
const NONCE_LEN: usize = 24;
const HINT_LEN: usize = NONCE_LEN + 8 + 16;

/// The owner's hint key, derived from the same wallet material as the ElGamal key.
#[derive(Clone)]
pub struct AeKey([u8; 32]);

impl Drop for AeKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for AeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AeKey(..)")
    }
}

/// A balance encrypted under an [`AeKey`]: nonce ‖ ciphertext ‖ tag (48 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceHint(Vec<u8>);

impl BalanceHint {
    /// The wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.clone()
    }

    /// Parses the wire bytes (length only: the key checks the rest).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfidentialError> {
        exact_len(bytes, HINT_LEN, "balance hint")?;
        Ok(Self(bytes.to_vec()))
    }
}

hex_serde!(BalanceHint);

impl AeKey {
    /// Derives the key from 32 bytes of wallet material under its own domain tag.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let mut hash = Sha256::new();
        hash.update(AE_TAG);
        hash.update(seed);
        Self(hash.finalize().into())
    }

    /// Encrypts `balance` with a fresh nonce.
    pub fn encrypt<R: RngCore + CryptoRng>(&self, balance: u64, rng: &mut R) -> BalanceHint {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &balance.to_le_bytes(),
                    aad: AAD,
                },
            )
            // Encryption of 8 bytes cannot exceed the cipher's length limit.
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        BalanceHint(out)
    }

    /// Decrypts a hint; a wrong key or altered bytes fail authentication.
    pub fn decrypt(&self, hint: &BalanceHint) -> Result<u64, ConfidentialError> {
        if hint.0.len() != HINT_LEN {
            return Err(ConfidentialError::Hint("wrong length".into()));
        }
        let (nonce, sealed) = hint.0.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: AAD,
                },
            )
            .map_err(|_| ConfidentialError::Hint("does not authenticate under this key".into()))?;
        let bytes: [u8; 8] = plain
            .as_slice()
            .try_into()
            .map_err(|_| ConfidentialError::Hint("wrong plaintext length".into()))?;
        Ok(u64::from_le_bytes(bytes))
    }
}

/// How a balance was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecryptedBy {
    /// The hint decrypted and the ciphertext holds its value: O(1).
    Hint,
    /// No usable hint: baby-step giant-step over the table.
    DiscreteLog,
}

impl DecryptedBy {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            DecryptedBy::Hint => "hint",
            DecryptedBy::DiscreteLog => "discrete_log",
        }
    }
}

/// Reads the amount in `ct`: from the hint when it decrypts and the ciphertext holds that
/// value, otherwise by baby-step giant-step (amounts below 2^32). `table` is built only if
/// needed, so the common path never pays for it.
pub fn decrypt_balance(
    sk: &ElGamalSecretKey,
    ae: &AeKey,
    ct: &Ciphertext,
    hint: Option<&BalanceHint>,
    table: impl FnOnce() -> DiscreteLog,
) -> Result<(u64, DecryptedBy), ConfidentialError> {
    if let Some(h) = hint {
        if let Ok(v) = ae.decrypt(h) {
            if sk.holds(ct, v) {
                return Ok((v, DecryptedBy::Hint));
            }
        }
    }
    let table = table();
    sk.decrypt_u32(ct, &table)
        .map(|v| (u64::from(v), DecryptedBy::DiscreteLog))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn hint_round_trips_and_detects_tampering() {
        let ae = AeKey::from_seed(&[1; 32]);
        let hint = ae.encrypt(987_654_321_000, &mut OsRng);
        assert_eq!(ae.decrypt(&hint), Ok(987_654_321_000));
        let mut bad = hint.to_bytes();
        bad[30] ^= 1;
        assert!(ae.decrypt(&BalanceHint::from_bytes(&bad).unwrap()).is_err());
        assert!(AeKey::from_seed(&[2; 32]).decrypt(&hint).is_err());
        assert!(BalanceHint::from_bytes(&[0; 47]).is_err());
    }

    #[test]
    fn balance_reads_from_the_hint_and_falls_back_when_it_lies() {
        let sk = ElGamalSecretKey::random(&mut OsRng);
        let ae = AeKey::from_seed(&[3; 32]);
        let (ct, _) = sk.public().encrypt(4242, &mut OsRng);
        let good = ae.encrypt(4242, &mut OsRng);
        let lying = ae.encrypt(9999, &mut OsRng);
        let no_table = || panic!("the hint path must not build a table");
        assert_eq!(
            decrypt_balance(&sk, &ae, &ct, Some(&good), no_table),
            Ok((4242, DecryptedBy::Hint))
        );
        let small = || DiscreteLog::new(12);
        assert_eq!(
            decrypt_balance(&sk, &ae, &ct, Some(&lying), small),
            Ok((4242, DecryptedBy::DiscreteLog))
        );
        assert_eq!(
            decrypt_balance(&sk, &ae, &ct, None, small),
            Ok((4242, DecryptedBy::DiscreteLog))
        );
    }
}
