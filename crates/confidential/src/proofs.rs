//! Zero-knowledge proofs over twisted ElGamal ciphertexts (sigma protocols made
//! non-interactive with a Merlin transcript, and a Bulletproofs range proof).
//!
//! Every proof takes a `context` (the ledger binds chain id, account and purpose) that goes
//! into the transcript first, so a proof made for one transaction says nothing about another.
//!
//! - [`PubkeyProof`]: the owner knows `s` with `s·P = H` (a key nobody can decrypt under is
//!   refused at registration).
//! - [`CreditProof`]: a ciphertext encrypts a given public amount under `P` (knowledge of `r`
//!   with `C − a·G = r·H` and `D = r·P`).
//! - [`EqualityProof`]: a ciphertext and a Pedersen commitment hold the same amount
//!   (knowledge of `s, x, ρ` with `s·P = H`, `C − s·D = x·G`, `Com = x·G + ρ·H`).
//! - [`WithdrawalProof`]: the balance minus the withdrawn amount is what a fresh commitment
//!   holds (equality) and that commitment is in `[0, 2^64)` (range), so the remaining balance
//!   is non-negative.

use std::sync::OnceLock;

use bulletproofs::{BulletproofGens, RangeProof};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::Scalar;
use merlin::Transcript;
use rand::{CryptoRng, RngCore};

use crate::elgamal::{amount_point, generators};
use crate::serde_hex::{exact_len, hex_serde, point_at, scalar_at};
use crate::{Ciphertext, ConfidentialError, ElGamalPublicKey, ElGamalSecretKey};

/// Bits the remaining balance is proven to fit in.
pub const RANGE_BITS: usize = 64;

fn bulletproof_gens() -> &'static BulletproofGens {
    static GENS: OnceLock<BulletproofGens> = OnceLock::new();
    GENS.get_or_init(|| BulletproofGens::new(RANGE_BITS, 1))
}

fn transcript(proof: &'static [u8], context: &[u8]) -> Transcript {
    let mut t = Transcript::new(b"hallmark-confidential-v1");
    t.append_message(b"proof", proof);
    t.append_message(b"context", context);
    t
}

fn append_point(t: &mut Transcript, label: &'static [u8], p: &RistrettoPoint) {
    t.append_message(label, p.compress().as_bytes());
}

fn append_ciphertext(t: &mut Transcript, ct: &Ciphertext) {
    append_point(t, b"C", &ct.commitment);
    append_point(t, b"D", &ct.handle);
}

fn challenge(t: &mut Transcript) -> Scalar {
    let mut wide = [0u8; 64];
    t.challenge_bytes(b"challenge", &mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn h() -> RistrettoPoint {
    generators().B_blinding
}

fn invalid(proof: &'static str, check: &'static str) -> ConfidentialError {
    ConfidentialError::ProofInvalid { proof, check }
}

/// Proof that the owner knows the secret behind an ElGamal public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubkeyProof {
    y: RistrettoPoint,
    z: Scalar,
}

impl PubkeyProof {
    /// Proves knowledge of `s` for `sk.public()`.
    pub fn prove<R: RngCore + CryptoRng>(
        sk: &ElGamalSecretKey,
        context: &[u8],
        rng: &mut R,
    ) -> Self {
        let pk = sk.public();
        let mut t = transcript(b"pubkey", context);
        append_point(&mut t, b"P", pk.point());
        let k = Scalar::random(rng);
        let y = k * pk.point();
        append_point(&mut t, b"Y", &y);
        let c = challenge(&mut t);
        Self {
            y,
            z: c * sk.scalar() + k,
        }
    }

    /// Checks the proof for `pk`.
    pub fn verify(&self, pk: &ElGamalPublicKey, context: &[u8]) -> Result<(), ConfidentialError> {
        let mut t = transcript(b"pubkey", context);
        append_point(&mut t, b"P", pk.point());
        append_point(&mut t, b"Y", &self.y);
        let c = challenge(&mut t);
        if self.z * pk.point() == c * h() + self.y {
            Ok(())
        } else {
            Err(invalid("pubkey", "s·P = H"))
        }
    }

    /// `Y ‖ z`.
    pub fn to_bytes(&self) -> Vec<u8> {
        [self.y.compress().to_bytes(), self.z.to_bytes()].concat()
    }

    /// Parses `Y ‖ z`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfidentialError> {
        exact_len(bytes, 64, "pubkey proof")?;
        Ok(Self {
            y: point_at(bytes, 0, "pubkey proof")?,
            z: scalar_at(bytes, 1, "pubkey proof")?,
        })
    }
}

hex_serde!(PubkeyProof);

/// Proof that a ciphertext encrypts a stated public amount under a stated key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditProof {
    y_h: RistrettoPoint,
    y_p: RistrettoPoint,
    z: Scalar,
}

impl CreditProof {
    /// Encrypts `amount` to `pk` and proves it: returns the ciphertext and its proof.
    pub fn encrypt<R: RngCore + CryptoRng>(
        pk: &ElGamalPublicKey,
        amount: u64,
        context: &[u8],
        rng: &mut R,
    ) -> (Ciphertext, Self) {
        let (ct, r) = pk.encrypt(amount, rng);
        let mut t = Self::statement(pk, amount, &ct, context);
        let k = Scalar::random(rng);
        let y_h = k * h();
        let y_p = k * pk.point();
        append_point(&mut t, b"Yh", &y_h);
        append_point(&mut t, b"Yp", &y_p);
        let c = challenge(&mut t);
        (
            ct,
            Self {
                y_h,
                y_p,
                z: c * r + k,
            },
        )
    }

    fn statement(
        pk: &ElGamalPublicKey,
        amount: u64,
        ct: &Ciphertext,
        context: &[u8],
    ) -> Transcript {
        let mut t = transcript(b"credit", context);
        append_point(&mut t, b"P", pk.point());
        t.append_u64(b"amount", amount);
        append_ciphertext(&mut t, ct);
        t
    }

    /// Checks that `ct` encrypts exactly `amount` under `pk`.
    pub fn verify(
        &self,
        pk: &ElGamalPublicKey,
        amount: u64,
        ct: &Ciphertext,
        context: &[u8],
    ) -> Result<(), ConfidentialError> {
        let mut t = Self::statement(pk, amount, ct, context);
        append_point(&mut t, b"Yh", &self.y_h);
        append_point(&mut t, b"Yp", &self.y_p);
        let c = challenge(&mut t);
        if self.z * h() != c * (ct.commitment - amount_point(amount)) + self.y_h {
            return Err(invalid("credit", "C − a·G = r·H"));
        }
        if self.z * pk.point() != c * ct.handle + self.y_p {
            return Err(invalid("credit", "D = r·P"));
        }
        Ok(())
    }

    /// `Yh ‖ Yp ‖ z`.
    pub fn to_bytes(&self) -> Vec<u8> {
        [
            self.y_h.compress().to_bytes(),
            self.y_p.compress().to_bytes(),
            self.z.to_bytes(),
        ]
        .concat()
    }

    /// Parses `Yh ‖ Yp ‖ z`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfidentialError> {
        exact_len(bytes, 96, "credit proof")?;
        Ok(Self {
            y_h: point_at(bytes, 0, "credit proof")?,
            y_p: point_at(bytes, 1, "credit proof")?,
            z: scalar_at(bytes, 2, "credit proof")?,
        })
    }
}

hex_serde!(CreditProof);

/// Proof that a ciphertext (under the prover's key) and a Pedersen commitment hold the same
/// amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EqualityProof {
    y0: RistrettoPoint,
    y1: RistrettoPoint,
    y2: RistrettoPoint,
    z_s: Scalar,
    z_x: Scalar,
    z_r: Scalar,
}

impl EqualityProof {
    fn prove<R: RngCore + CryptoRng>(
        t: &mut Transcript,
        sk: &ElGamalSecretKey,
        ct: &Ciphertext,
        amount: u64,
        commitment: &RistrettoPoint,
        opening: &Scalar,
        rng: &mut R,
    ) -> Self {
        let pk = sk.public();
        Self::statement(t, &pk, ct, commitment);
        let (k_s, k_x, k_r) = (
            Scalar::random(rng),
            Scalar::random(rng),
            Scalar::random(rng),
        );
        let g = generators().B;
        let y0 = k_s * pk.point();
        let y1 = k_x * g + k_s * ct.handle;
        let y2 = k_x * g + k_r * h();
        Self::commit(t, &y0, &y1, &y2);
        let c = challenge(t);
        Self {
            y0,
            y1,
            y2,
            z_s: c * sk.scalar() + k_s,
            z_x: c * Scalar::from(amount) + k_x,
            z_r: c * opening + k_r,
        }
    }

    fn statement(t: &mut Transcript, pk: &ElGamalPublicKey, ct: &Ciphertext, com: &RistrettoPoint) {
        t.append_message(b"dom-sep", b"ciphertext-commitment-equality");
        append_point(t, b"P", pk.point());
        append_ciphertext(t, ct);
        append_point(t, b"Com", com);
    }

    fn commit(t: &mut Transcript, y0: &RistrettoPoint, y1: &RistrettoPoint, y2: &RistrettoPoint) {
        append_point(t, b"Y0", y0);
        append_point(t, b"Y1", y1);
        append_point(t, b"Y2", y2);
    }

    fn verify(
        &self,
        t: &mut Transcript,
        pk: &ElGamalPublicKey,
        ct: &Ciphertext,
        commitment: &RistrettoPoint,
    ) -> Result<(), ConfidentialError> {
        Self::statement(t, pk, ct, commitment);
        Self::commit(t, &self.y0, &self.y1, &self.y2);
        let c = challenge(t);
        let g = generators().B;
        if self.z_s * pk.point() != c * h() + self.y0 {
            return Err(invalid("equality", "s·P = H"));
        }
        if self.z_x * g + self.z_s * ct.handle != c * ct.commitment + self.y1 {
            return Err(invalid("equality", "C − s·D = x·G"));
        }
        if self.z_x * g + self.z_r * h() != c * commitment + self.y2 {
            return Err(invalid("equality", "Com = x·G + ρ·H"));
        }
        Ok(())
    }

    /// `Y0 ‖ Y1 ‖ Y2 ‖ z_s ‖ z_x ‖ z_ρ`.
    pub fn to_bytes(&self) -> Vec<u8> {
        [
            self.y0.compress().to_bytes(),
            self.y1.compress().to_bytes(),
            self.y2.compress().to_bytes(),
            self.z_s.to_bytes(),
            self.z_x.to_bytes(),
            self.z_r.to_bytes(),
        ]
        .concat()
    }

    /// Parses `Y0 ‖ Y1 ‖ Y2 ‖ z_s ‖ z_x ‖ z_ρ`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfidentialError> {
        exact_len(bytes, 192, "equality proof")?;
        let what = "equality proof";
        Ok(Self {
            y0: point_at(bytes, 0, what)?,
            y1: point_at(bytes, 1, what)?,
            y2: point_at(bytes, 2, what)?,
            z_s: scalar_at(bytes, 3, what)?,
            z_x: scalar_at(bytes, 4, what)?,
            z_r: scalar_at(bytes, 5, what)?,
        })
    }
}

hex_serde!(EqualityProof);

/// Proof that withdrawing a public amount leaves a balance in `[0, 2^64)`.
#[derive(Debug, Clone)]
pub struct WithdrawalProof {
    /// A fresh Pedersen commitment to the remaining balance.
    commitment: CompressedRistretto,
    equality: EqualityProof,
    range: RangeProof,
}

impl PartialEq for WithdrawalProof {
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

impl Eq for WithdrawalProof {}

impl WithdrawalProof {
    /// Proves that `current` (holding `balance`, under `sk`) minus `amount` is non-negative;
    /// returns the proof and the ciphertext of the remaining balance.
    pub fn prove<R: RngCore + CryptoRng>(
        sk: &ElGamalSecretKey,
        current: &Ciphertext,
        balance: u64,
        amount: u64,
        context: &[u8],
        rng: &mut R,
    ) -> Result<(Self, Ciphertext), ConfidentialError> {
        if !sk.holds(current, balance) {
            return Err(ConfidentialError::BalanceMismatch(balance));
        }
        let remaining = balance
            .checked_sub(amount)
            .ok_or(ConfidentialError::InsufficientBalance { balance, amount })?;
        let next = current.sub_amount(amount);
        let opening = Scalar::random(rng);
        let commitment = amount_point(remaining) + opening * h();
        let mut t = transcript(b"withdrawal", context);
        t.append_u64(b"amount", amount);
        let equality =
            EqualityProof::prove(&mut t, sk, &next, remaining, &commitment, &opening, rng);
        let (range, committed) = RangeProof::prove_single_with_rng(
            bulletproof_gens(),
            generators(),
            &mut t,
            remaining,
            &opening,
            RANGE_BITS,
            rng,
        )
        .map_err(|e| ConfidentialError::Malformed {
            what: "range proof",
            why: e.to_string(),
        })?;
        debug_assert_eq!(committed, commitment.compress());
        Ok((
            Self {
                commitment: committed,
                equality,
                range,
            },
            next,
        ))
    }

    /// Checks a withdrawal of `amount` from `current` under `pk`; returns the ciphertext of
    /// the remaining balance (what the ledger stores next).
    pub fn verify(
        &self,
        pk: &ElGamalPublicKey,
        current: &Ciphertext,
        amount: u64,
        context: &[u8],
    ) -> Result<Ciphertext, ConfidentialError> {
        let next = current.sub_amount(amount);
        let commitment = self
            .commitment
            .decompress()
            .ok_or_else(|| invalid("withdrawal", "commitment is a point"))?;
        let mut t = transcript(b"withdrawal", context);
        t.append_u64(b"amount", amount);
        self.equality.verify(&mut t, pk, &next, &commitment)?;
        self.range
            .verify_single(
                bulletproof_gens(),
                generators(),
                &mut t,
                &self.commitment,
                RANGE_BITS,
            )
            .map_err(|_| invalid("withdrawal", "remaining balance in [0, 2^64)"))?;
        Ok(next)
    }

    /// `Com ‖ equality (192) ‖ range proof`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.commitment.to_bytes().to_vec();
        out.extend(self.equality.to_bytes());
        out.extend(self.range.to_bytes());
        out
    }

    /// Parses `Com ‖ equality ‖ range proof`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfidentialError> {
        let what = "withdrawal proof";
        if bytes.len() < 32 + 192 + 32 {
            return Err(ConfidentialError::Malformed {
                what,
                why: format!("{} bytes is too short", bytes.len()),
            });
        }
        point_at(bytes, 0, what)?;
        let commitment = CompressedRistretto::from_slice(&bytes[..32]).map_err(|e| {
            ConfidentialError::Malformed {
                what,
                why: e.to_string(),
            }
        })?;
        let equality = EqualityProof::from_bytes(&bytes[32..224])?;
        let range =
            RangeProof::from_bytes(&bytes[224..]).map_err(|e| ConfidentialError::Malformed {
                what,
                why: format!("range proof: {e}"),
            })?;
        Ok(Self {
            commitment,
            equality,
            range,
        })
    }
}

hex_serde!(WithdrawalProof);

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn key() -> ElGamalSecretKey {
        ElGamalSecretKey::random(&mut OsRng)
    }

    #[test]
    fn pubkey_proof_binds_key_and_context() {
        let sk = key();
        let proof = PubkeyProof::prove(&sk, b"ctx", &mut OsRng);
        assert_eq!(proof.verify(&sk.public(), b"ctx"), Ok(()));
        assert!(proof.verify(&sk.public(), b"other").is_err());
        assert!(proof.verify(&key().public(), b"ctx").is_err());
        let back = PubkeyProof::from_hex(&proof.to_hex()).unwrap();
        assert_eq!(back.verify(&sk.public(), b"ctx"), Ok(()));
    }

    #[test]
    fn credit_proof_pins_the_amount() {
        let sk = key();
        let pk = sk.public();
        let (ct, proof) = CreditProof::encrypt(&pk, 100, b"job-1", &mut OsRng);
        assert!(sk.holds(&ct, 100));
        assert_eq!(proof.verify(&pk, 100, &ct, b"job-1"), Ok(()));
        assert!(proof.verify(&pk, 101, &ct, b"job-1").is_err());
        assert!(proof.verify(&pk, 100, &ct, b"job-2").is_err());
        assert!(proof.verify(&key().public(), 100, &ct, b"job-1").is_err());
        // A ciphertext of 1000 passed off with the proof of another.
        let (big, _) = pk.encrypt(1000, &mut OsRng);
        assert!(proof.verify(&pk, 100, &big, b"job-1").is_err());
    }

    #[test]
    fn withdrawal_proves_and_refuses_overdrafts() {
        let sk = key();
        let pk = sk.public();
        let (ct, _) = pk.encrypt(500, &mut OsRng);
        let balance = ct.add_amount(250); // 750
        let (proof, next) =
            WithdrawalProof::prove(&sk, &balance, 750, 300, b"w", &mut OsRng).unwrap();
        assert!(sk.holds(&next, 450));
        assert_eq!(proof.verify(&pk, &balance, 300, b"w"), Ok(next));
        // The proof is for 300: more (an overdraft of what it proves) or less fails.
        assert!(proof.verify(&pk, &balance, 301, b"w").is_err());
        assert!(proof.verify(&pk, &balance, 299, b"w").is_err());
        assert!(proof.verify(&pk, &balance, 300, b"x").is_err());
        // Withdrawing everything is fine; one more is not provable.
        let (all, rest) =
            WithdrawalProof::prove(&sk, &balance, 750, 750, b"w", &mut OsRng).unwrap();
        assert!(sk.holds(&rest, 0));
        assert!(all.verify(&pk, &balance, 750, b"w").is_ok());
        assert!(all.verify(&pk, &balance, 751, b"w").is_err());
        assert_eq!(
            WithdrawalProof::prove(&sk, &balance, 750, 751, b"w", &mut OsRng).err(),
            Some(ConfidentialError::InsufficientBalance {
                balance: 750,
                amount: 751
            })
        );
        // A balance the ciphertext does not hold is refused before proving.
        assert_eq!(
            WithdrawalProof::prove(&sk, &balance, 10_000, 751, b"w", &mut OsRng).err(),
            Some(ConfidentialError::BalanceMismatch(10_000))
        );
        // Wire round trip, and a flipped byte fails.
        let bytes = proof.to_bytes();
        let back = WithdrawalProof::from_bytes(&bytes).unwrap();
        assert!(back.verify(&pk, &balance, 300, b"w").is_ok());
        let mut bad = bytes.clone();
        let last = bad.len() - 40;
        bad[last] ^= 1;
        if let Ok(p) = WithdrawalProof::from_bytes(&bad) {
            assert!(p.verify(&pk, &balance, 300, b"w").is_err());
        }
        assert!(WithdrawalProof::from_bytes(&bytes[..100]).is_err());
    }

    #[test]
    fn a_forged_range_for_a_negative_balance_fails() {
        // An owner who tries to withdraw 10 from 5 by proving the wrapped u64 value.
        let sk = key();
        let pk = sk.public();
        let (balance, _) = pk.encrypt(5, &mut OsRng);
        let next = balance.sub_amount(10);
        let opening = Scalar::random(&mut OsRng);
        let wrapped = 5u64.wrapping_sub(10);
        let commitment = amount_point(wrapped) + opening * h();
        let mut t = transcript(b"withdrawal", b"w");
        t.append_u64(b"amount", 10);
        let equality = EqualityProof::prove(
            &mut t,
            &sk,
            &next,
            wrapped,
            &commitment,
            &opening,
            &mut OsRng,
        );
        let (range, committed) = RangeProof::prove_single(
            bulletproof_gens(),
            generators(),
            &mut t,
            wrapped,
            &opening,
            RANGE_BITS,
        )
        .unwrap();
        let forged = WithdrawalProof {
            commitment: committed,
            equality,
            range,
        };
        assert_eq!(
            forged.verify(&pk, &balance, 10, b"w"),
            Err(ConfidentialError::ProofInvalid {
                proof: "equality",
                check: "C − s·D = x·G"
            })
        );
    }
}
