//! Twisted ElGamal on Ristretto.
//!
//! A ciphertext of `x` under `P = s⁻¹·H` with randomness `r` is the pair
//! `(C, D) = (x·G + r·H, r·P)`. The owner recovers `x·G = C − s·D` and then `x` by a discrete
//! logarithm over a small range ([`crate::dlog`]), or checks a claimed `x` in one scalar
//! multiplication. Ciphertexts under one key add component-wise, and so do their amounts.

use std::ops::{Add, Sub};
use std::sync::OnceLock;

use bulletproofs::PedersenGens;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::traits::Identity;
use curve25519_dalek::Scalar;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha512};
use zeroize::Zeroize;

use crate::serde_hex::{exact_len, hex_serde, point_at};
use crate::ConfidentialError;

const SECRET_TAG: &[u8] = b"hallmark/elgamal-secret-key/v1";

/// The Pedersen generators `G` (the Ristretto basepoint) and `H` (hashed from it), as the
/// `bulletproofs` crate defines them, so range proofs speak about our commitments.
pub fn generators() -> &'static PedersenGens {
    static GENS: OnceLock<PedersenGens> = OnceLock::new();
    GENS.get_or_init(PedersenGens::default)
}

/// `amount · G`, through the basepoint table.
pub(crate) fn amount_point(amount: u64) -> RistrettoPoint {
    RistrettoPoint::mul_base(&Scalar::from(amount))
}

/// The owner's secret `s`. Wiped from memory on drop.
#[derive(Clone)]
pub struct ElGamalSecretKey(Scalar);

impl Drop for ElGamalSecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for ElGamalSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ElGamalSecretKey(..)")
    }
}

impl ElGamalSecretKey {
    /// Derives the key from 32 bytes of wallet material (SHA-512 under a domain tag, reduced
    /// mod ℓ), so a wallet restored from its mnemonic has the same key.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, ConfidentialError> {
        let mut hash = Sha512::new();
        hash.update(SECRET_TAG);
        hash.update(seed);
        let mut wide: [u8; 64] = hash.finalize().into();
        let s = Scalar::from_bytes_mod_order_wide(&wide);
        wide.zeroize();
        if s == Scalar::ZERO {
            return Err(ConfidentialError::DegenerateKey);
        }
        Ok(Self(s))
    }

    /// A fresh random key.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        loop {
            let s = Scalar::random(rng);
            if s != Scalar::ZERO {
                return Self(s);
            }
        }
    }

    /// `P = s⁻¹·H`.
    pub fn public(&self) -> ElGamalPublicKey {
        ElGamalPublicKey(self.0.invert() * generators().B_blinding)
    }

    pub(crate) fn scalar(&self) -> &Scalar {
        &self.0
    }

    /// `x·G = C − s·D`: the amount as a point. Every decryption starts here.
    pub fn decrypt_point(&self, ct: &Ciphertext) -> RistrettoPoint {
        ct.commitment - self.0 * ct.handle
    }

    /// Whether `ct` holds exactly `amount` (one scalar multiplication).
    pub fn holds(&self, ct: &Ciphertext, amount: u64) -> bool {
        self.decrypt_point(ct) == amount_point(amount)
    }

    /// The amount in `ct` if it is below 2^32, by baby-step giant-step over `table`.
    pub fn decrypt_u32(
        &self,
        ct: &Ciphertext,
        table: &crate::DiscreteLog,
    ) -> Result<u32, ConfidentialError> {
        table
            .solve(&self.decrypt_point(ct))
            .ok_or(ConfidentialError::OutOfRange)
    }
}

/// A worker's public encryption key `P = s⁻¹·H`; never the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElGamalPublicKey(pub(crate) RistrettoPoint);

impl ElGamalPublicKey {
    /// The compressed point.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.compress().to_bytes()
    }

    /// Parses a compressed point; the identity is refused (it would encrypt to nobody).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfidentialError> {
        exact_len(bytes, 32, "elgamal public key")?;
        let p = point_at(bytes, 0, "elgamal public key")?;
        if p == RistrettoPoint::identity() {
            return Err(ConfidentialError::Malformed {
                what: "elgamal public key",
                why: "the identity is not a key".into(),
            });
        }
        Ok(Self(p))
    }

    pub(crate) fn point(&self) -> &RistrettoPoint {
        &self.0
    }

    /// Encrypts `amount` with fresh randomness; returns the ciphertext and the randomness
    /// (the opening a credit proof needs).
    pub fn encrypt<R: RngCore + CryptoRng>(
        &self,
        amount: u64,
        rng: &mut R,
    ) -> (Ciphertext, Scalar) {
        let r = Scalar::random(rng);
        (self.encrypt_with(amount, &r), r)
    }

    /// Encrypts `amount` with the given randomness `r`.
    pub fn encrypt_with(&self, amount: u64, r: &Scalar) -> Ciphertext {
        Ciphertext {
            commitment: amount_point(amount) + r * generators().B_blinding,
            handle: r * self.0,
        }
    }
}

hex_serde!(ElGamalPublicKey);

/// A twisted ElGamal ciphertext `(C, D)`: 64 bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ciphertext {
    /// `C = x·G + r·H`, a Pedersen commitment to the amount.
    pub commitment: RistrettoPoint,
    /// `D = r·P`, the decryption handle.
    pub handle: RistrettoPoint,
}

impl Ciphertext {
    /// The encryption of 0 with randomness 0: an empty balance anyone can start from.
    pub fn zero() -> Self {
        Self {
            commitment: RistrettoPoint::identity(),
            handle: RistrettoPoint::identity(),
        }
    }

    /// Adds a public amount (randomness unchanged).
    pub fn add_amount(&self, amount: u64) -> Self {
        Self {
            commitment: self.commitment + amount_point(amount),
            handle: self.handle,
        }
    }

    /// Subtracts a public amount (randomness unchanged). Below zero wraps mod ℓ: only a
    /// range proof says the result is a real balance.
    pub fn sub_amount(&self, amount: u64) -> Self {
        Self {
            commitment: self.commitment - amount_point(amount),
            handle: self.handle,
        }
    }

    /// `C ‖ D`, compressed.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(self.commitment.compress().as_bytes());
        out[32..].copy_from_slice(self.handle.compress().as_bytes());
        out
    }

    /// Parses `C ‖ D`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfidentialError> {
        exact_len(bytes, 64, "ciphertext")?;
        Ok(Self {
            commitment: point_at(bytes, 0, "ciphertext")?,
            handle: point_at(bytes, 1, "ciphertext")?,
        })
    }
}

hex_serde!(Ciphertext);

impl Add for Ciphertext {
    type Output = Ciphertext;

    /// Homomorphic addition: the result holds the sum of the amounts.
    fn add(self, other: Ciphertext) -> Ciphertext {
        Ciphertext {
            commitment: self.commitment + other.commitment,
            handle: self.handle + other.handle,
        }
    }
}

impl Sub for Ciphertext {
    type Output = Ciphertext;

    /// Homomorphic subtraction: the result holds the difference (mod ℓ).
    fn sub(self, other: Ciphertext) -> Ciphertext {
        Ciphertext {
            commitment: self.commitment - other.commitment,
            handle: self.handle - other.handle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn encrypt_add_and_check_amounts() {
        let sk = ElGamalSecretKey::random(&mut OsRng);
        let pk = sk.public();
        let (a, _) = pk.encrypt(70, &mut OsRng);
        let (b, _) = pk.encrypt(30, &mut OsRng);
        let sum = a + b;
        assert!(sk.holds(&sum, 100));
        assert!(!sk.holds(&sum, 101));
        assert!(sk.holds(&(sum - a), 30));
        assert!(sk.holds(&sum.add_amount(5), 105));
        assert!(sk.holds(&sum.sub_amount(100), 0));
        assert!(sk.holds(&Ciphertext::zero(), 0));
        // Another key sees nothing useful.
        let other = ElGamalSecretKey::random(&mut OsRng);
        assert!(!other.holds(&sum, 100));
    }

    #[test]
    fn seed_derivation_is_deterministic_and_separated() {
        let a = ElGamalSecretKey::from_seed(&[7; 32]).unwrap();
        let b = ElGamalSecretKey::from_seed(&[7; 32]).unwrap();
        let c = ElGamalSecretKey::from_seed(&[8; 32]).unwrap();
        assert_eq!(a.public(), b.public());
        assert_ne!(a.public(), c.public());
    }

    #[test]
    fn wire_forms_round_trip_and_refuse_garbage() {
        let sk = ElGamalSecretKey::random(&mut OsRng);
        let pk = sk.public();
        let (ct, _) = pk.encrypt(5, &mut OsRng);
        let json = serde_json::to_string(&ct).unwrap();
        let back: Ciphertext = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ct);
        assert_eq!(ElGamalPublicKey::from_hex(&pk.to_hex()).unwrap(), pk);
        // Wrong length, not a point, uppercase, identity key.
        assert!(Ciphertext::from_bytes(&[0u8; 63]).is_err());
        assert!(Ciphertext::from_bytes(&[0xffu8; 64]).is_err());
        assert!(Ciphertext::from_hex(&ct.to_hex().to_uppercase()).is_err());
        assert!(ElGamalPublicKey::from_bytes(&[0u8; 32]).is_err());
        assert!(serde_json::from_str::<Ciphertext>("\"zz\"").is_err());
    }
}
