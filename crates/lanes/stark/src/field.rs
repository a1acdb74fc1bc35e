//! M31 helpers shared by the AIRs, the prover and the verifier: seeded value streams and digests.

use stwo::core::fields::m31::{BaseField, P};

/// A deterministic stream of M31 elements drawn from BLAKE3's XOF, keyed by a domain and a seed.
///
/// Both sides of a job (the worker who builds the trace and the validator who recomputes the
/// public inputs) derive the same values from the job's seed, so the inputs never travel.
pub struct M31Stream {
    reader: blake3::OutputReader,
}

impl M31Stream {
    /// Starts the stream for `domain` (a fixed label per use) and the job's `seed`.
    pub fn new(domain: &str, seed: &[u8; 32]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key(&format!("hallmark-stark v1 {domain}"));
        hasher.update(seed);
        Self {
            reader: hasher.finalize_xof(),
        }
    }

    /// The next element, uniform over M31 (rejection sampling on 31-bit words).
    pub fn next_m31(&mut self) -> BaseField {
        loop {
            let mut word = [0u8; 4];
            self.reader.fill(&mut word);
            let v = u32::from_le_bytes(word) & 0x7fff_ffff;
            if v != P {
                return BaseField::from_u32_unchecked(v);
            }
        }
    }

    /// The next `n` elements.
    pub fn take(&mut self, n: usize) -> Vec<BaseField> {
        (0..n).map(|_| self.next_m31()).collect()
    }
}

/// BLAKE3 digest of a list of M31 values under a domain label (length-prefixed, little endian).
pub fn digest_m31(domain: &str, values: &[BaseField]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(&format!("hallmark-stark v1 digest {domain}"));
    hasher.update(&(values.len() as u64).to_le_bytes());
    for v in values {
        hasher.update(&v.0.to_le_bytes());
    }
    *hasher.finalize().as_bytes()
}

/// The words of a 32-byte value, for mixing into a Fiat–Shamir channel.
pub fn words(bytes: &[u8; 32]) -> [u32; 8] {
    let mut out = [0u32; 8];
    for (i, chunk) in bytes.chunks_exact(4).enumerate() {
        out[i] = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    out
}

/// Smallest power of two that is at least `n` and at least the SIMD width (16 rows).
pub fn padded_log_rows(n: usize) -> u32 {
    let rows = n.max(16).next_power_of_two();
    rows.trailing_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_domain_separated() {
        let seed = [7u8; 32];
        let a = M31Stream::new("a", &seed).take(64);
        assert_eq!(a, M31Stream::new("a", &seed).take(64));
        assert_ne!(a, M31Stream::new("b", &seed).take(64));
        assert_ne!(a, M31Stream::new("a", &[8u8; 32]).take(64));
        assert!(a.iter().all(|v| v.0 < P));
    }

    #[test]
    fn digests_bind_length_and_order() {
        let v = M31Stream::new("x", &[1; 32]).take(4);
        let mut swapped = v.clone();
        swapped.swap(0, 1);
        assert_ne!(digest_m31("m", &v), digest_m31("m", &swapped));
        assert_ne!(digest_m31("m", &v), digest_m31("m", &v[..3]));
        assert_ne!(digest_m31("m", &v), digest_m31("n", &v));
    }

    #[test]
    fn padding_rounds_up_to_simd_width() {
        assert_eq!(padded_log_rows(1), 4);
        assert_eq!(padded_log_rows(16), 4);
        assert_eq!(padded_log_rows(17), 5);
        assert_eq!(padded_log_rows(1 << 12), 12);
    }
}
