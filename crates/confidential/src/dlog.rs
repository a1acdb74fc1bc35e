//! Baby-step giant-step discrete logarithms of amounts below 2^32.
//!
//! The table holds `i·G` for `i < 2^b` (the baby steps); a search walks `T − j·2^b·G` for
//! `j < 2^(32−b)` (the giant steps) until one lands in the table, giving `x = j·2^b + i`.
//! Points are compared through the first 8 bytes of their compressed double, computed in
//! batches with one field inversion per batch (`double_and_compress_batch`), and every hit is
//! confirmed by one multiplication, so a prefix collision can never return a wrong amount.
//! With b = 20 the table takes about 20 MB and a worst-case search 4096 giant steps.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::traits::Identity;

use crate::elgamal::amount_point;

/// Points compressed per batch inversion.
const BATCH: usize = 256;

/// The amounts' bit width this table searches.
pub const AMOUNT_BITS: u32 = 32;

/// Table keys are already uniform hash bytes: use them as the hash.
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type PrefixMap = HashMap<u64, u32, BuildHasherDefault<PrefixHasher>>;

/// A precomputed baby-step table; build it once and share it (it is immutable).
pub struct DiscreteLog {
    baby_bits: u32,
    table: PrefixMap,
    /// `2^b · G`, one giant step.
    giant: RistrettoPoint,
}

impl std::fmt::Debug for DiscreteLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscreteLog")
            .field("baby_bits", &self.baby_bits)
            .field("entries", &self.table.len())
            .finish()
    }
}

impl Default for DiscreteLog {
    /// A 2^20-entry table: worst case 4096 giant steps.
    fn default() -> Self {
        Self::new(20)
    }
}

fn key(compressed: &[u8; 32]) -> u64 {
    let mut k = [0u8; 8];
    k.copy_from_slice(&compressed[..8]);
    u64::from_le_bytes(k)
}

impl DiscreteLog {
    /// Builds a table of `2^baby_bits` baby steps (`baby_bits` is clamped to 8..=24).
    pub fn new(baby_bits: u32) -> Self {
        let baby_bits = baby_bits.clamp(8, 24);
        let entries = 1usize << baby_bits;
        let mut table = PrefixMap::with_capacity_and_hasher(entries, Default::default());
        let mut point = RistrettoPoint::identity();
        let mut batch = Vec::with_capacity(BATCH);
        let mut next = 0u32;
        while (next as usize) < entries {
            batch.clear();
            for _ in 0..BATCH.min(entries - next as usize) {
                batch.push(point);
                point += RISTRETTO_BASEPOINT_POINT;
            }
            for (i, c) in RistrettoPoint::double_and_compress_batch(&batch)
                .iter()
                .enumerate()
            {
                table.entry(key(c.as_bytes())).or_insert(next + i as u32);
            }
            next += batch.len() as u32;
        }
        Self {
            baby_bits,
            table,
            giant: point,
        }
    }

    /// The baby-step bits this table was built with.
    pub fn baby_bits(&self) -> u32 {
        self.baby_bits
    }

    /// `x` with `x·G = target` and `x < 2^32`, or `None` if there is none.
    pub fn solve(&self, target: &RistrettoPoint) -> Option<u32> {
        let giant_steps: u64 = 1 << (AMOUNT_BITS - self.baby_bits);
        let mut current = *target;
        let mut batch = Vec::with_capacity(BATCH);
        let mut j: u64 = 0;
        while j < giant_steps {
            batch.clear();
            let n = (BATCH as u64).min(giant_steps - j);
            for _ in 0..n {
                batch.push(current);
                current -= self.giant;
            }
            for (k, c) in RistrettoPoint::double_and_compress_batch(&batch)
                .iter()
                .enumerate()
            {
                if let Some(&i) = self.table.get(&key(c.as_bytes())) {
                    // j < 2^(32-b) and i < 2^b, so x < 2^32.
                    let x = ((j + k as u64) << self.baby_bits) + u64::from(i);
                    if amount_point(x) == *target {
                        return u32::try_from(x).ok();
                    }
                }
            }
            j += n;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ElGamalSecretKey;
    use rand::rngs::OsRng;

    #[test]
    fn finds_amounts_across_the_whole_range() {
        let table = DiscreteLog::new(16);
        for x in [
            0u32,
            1,
            2,
            65_535,
            65_536,
            1_000_003,
            3_000_000_000,
            u32::MAX,
        ] {
            assert_eq!(table.solve(&amount_point(u64::from(x))), Some(x), "{x}");
        }
    }

    #[test]
    fn refuses_amounts_at_or_above_two_to_the_32() {
        let table = DiscreteLog::new(16);
        assert_eq!(table.solve(&amount_point(1 << 32)), None);
        assert_eq!(table.solve(&amount_point(u64::MAX)), None);
    }

    #[test]
    fn decrypts_ciphertexts() {
        let table = DiscreteLog::new(12);
        let sk = ElGamalSecretKey::random(&mut OsRng);
        let (ct, _) = sk.public().encrypt(123_456, &mut OsRng);
        assert_eq!(sk.decrypt_u32(&ct, &table), Ok(123_456));
        let (big, _) = sk.public().encrypt(1 << 40, &mut OsRng);
        assert_eq!(
            sk.decrypt_u32(&big, &table),
            Err(crate::ConfidentialError::OutOfRange)
        );
    }
}
