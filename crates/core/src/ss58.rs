//! SS58 addresses (Substrate/Bittensor style) for ed25519 public keys.
//!
//! Format: base58(prefix ‖ pubkey ‖ checksum[0..2]) with checksum =
//! BLAKE2b-512("SS58PRE" ‖ prefix ‖ pubkey). Only simple one-byte prefixes (< 64) are handled,
//! which covers prefix 42, the generic Substrate/Bittensor prefix.

use blake2::{Blake2b512, Digest};

/// The address prefix Bittensor prints keys with.
pub const BITTENSOR_PREFIX: u8 = 42;

/// Why a string is not a valid SS58 address for a 32-byte key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ss58Error {
    #[error("not base58: {0}")]
    Base58(String),
    #[error("wrong length {0}: expected 35 bytes (prefix, 32-byte key, 2-byte checksum)")]
    Length(usize),
    #[error("unsupported prefix {0}: expected {BITTENSOR_PREFIX}")]
    Prefix(u8),
    #[error("checksum mismatch")]
    Checksum,
}

fn checksum(prefix: u8, key: &[u8; 32]) -> [u8; 2] {
    let mut h = Blake2b512::new();
    h.update(b"SS58PRE");
    h.update([prefix]);
    h.update(key);
    let out = h.finalize();
    [out[0], out[1]]
}

/// Encodes a 32-byte public key as an SS58 address with prefix 42.
pub fn encode(key: &[u8; 32]) -> String {
    let mut buf = Vec::with_capacity(35);
    buf.push(BITTENSOR_PREFIX);
    buf.extend_from_slice(key);
    buf.extend_from_slice(&checksum(BITTENSOR_PREFIX, key));
    bs58::encode(buf).into_string()
}

/// Decodes an SS58 address with prefix 42 into its 32-byte public key.
pub fn decode(address: &str) -> Result<[u8; 32], Ss58Error> {
    let raw = bs58::decode(address)
        .into_vec()
        .map_err(|e| Ss58Error::Base58(e.to_string()))?;
    if raw.len() != 35 {
        return Err(Ss58Error::Length(raw.len()));
    }
    if raw[0] != BITTENSOR_PREFIX {
        return Err(Ss58Error::Prefix(raw[0]));
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&raw[1..33]);
    if checksum(raw[0], &key) != raw[33..35] {
        return Err(Ss58Error::Checksum);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Substrate's well-known development account "Alice" (sr25519 public key bytes; SS58 is
    // key-type agnostic, so it exercises the encoding all the same).
    const ALICE_HEX: &str = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";
    const ALICE_SS58: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

    #[test]
    fn alice_vector() {
        let mut key = [0u8; 32];
        hex::decode_to_slice(ALICE_HEX, &mut key).unwrap();
        assert_eq!(encode(&key), ALICE_SS58);
        assert_eq!(decode(ALICE_SS58).unwrap(), key);
    }

    #[test]
    fn rejects_corruption() {
        let mut s = ALICE_SS58.to_string();
        s.replace_range(10..11, "x");
        assert!(decode(&s).is_err());
        assert!(matches!(decode("0OIl"), Err(Ss58Error::Base58(_))));
        assert!(matches!(decode("abc"), Err(Ss58Error::Length(_))));
    }
}
