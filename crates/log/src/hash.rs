//! The RFC 6962 hash functions, with domain separation between leaves and interior nodes.

use sha2::{Digest, Sha256};

/// A 32-byte SHA-256 tree hash (leaf, interior node or root).
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of a leaf: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Parses a lowercase or uppercase hex string of exactly 32 bytes.
pub fn parse_hex_hash(s: &str) -> Option<Hash> {
    let bytes = hex::decode(s.trim()).ok()?;
    bytes.try_into().ok()
}

/// The largest power of two strictly below `n` (RFC 6962's split point); `n` must be ≥ 2.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_largest_power_of_two_below() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512)] {
            assert_eq!(split_point(n), k, "n = {n}");
        }
        assert_eq!(split_point((1 << 63) + 1), 1 << 63);
    }
}
