//! Ed25519 keys: hotkeys (operational, sign traffic) and coldkeys (custody, sign registrations).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ss58;

/// Why a key or signature could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("invalid address: {0}")]
    Address(#[from] ss58::Ss58Error),
    #[error("not a valid ed25519 public key")]
    InvalidPublicKey,
    #[error("signature must be 64 bytes, got {0}")]
    SignatureLength(usize),
    #[error("signature does not verify")]
    BadSignature,
    #[error("secret key must be 32 bytes of hex")]
    InvalidSecret,
}

/// An ed25519 key pair. Used for both hotkeys and coldkeys.
pub struct Keypair(SigningKey);

impl Keypair {
    /// A fresh key pair from the operating system's randomness.
    pub fn generate() -> Self {
        Self(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The key pair for a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// Parses a hex-encoded 32-byte seed (as stored in key files).
    pub fn from_seed_hex(s: &str) -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut seed).map_err(|_| KeyError::InvalidSecret)?;
        Ok(Self::from_seed(&seed))
    }

    /// The secret seed, for deriving further keys from the same secret.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The secret seed, hex-encoded, for writing a key file.
    pub fn seed_hex(&self) -> String {
        hex::encode(self.seed())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs a message; returns the 64-byte signature.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

impl Clone for Keypair {
    fn clone(&self) -> Self {
        Self(SigningKey::from_bytes(&self.0.to_bytes()))
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.public())
    }
}

/// An ed25519 public key; displayed and serialized as an SS58 address (prefix 42).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

/// A hotkey: the key a node signs its traffic with and is known by in the metagraph.
pub type Hotkey = PublicKey;
/// A coldkey: the custody key that owns stake and registers hotkeys.
pub type Coldkey = PublicKey;

impl PublicKey {
    /// Wraps raw bytes after checking they are a valid curve point.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyError> {
        VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublicKey)?;
        Ok(Self(bytes))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The SS58 address (prefix 42).
    pub fn to_ss58(&self) -> String {
        ss58::encode(&self.0)
    }

    /// Verifies a signature strictly (no malleable or small-order forms).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::InvalidPublicKey)?;
        let sig: [u8; 64] = sig
            .try_into()
            .map_err(|_| KeyError::SignatureLength(sig.len()))?;
        key.verify_strict(msg, &Signature::from_bytes(&sig))
            .map_err(|_| KeyError::BadSignature)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ss58())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_ss58())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_bytes(ss58::decode(s)?)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_ss58())
    }
}

impl schemars::JsonSchema for PublicKey {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PublicKey".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[1-9A-HJ-NP-Za-km-z]+$",
            "description": "An ed25519 public key in SS58 (base58) form.",
        })
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_roundtrip() {
        let kp = Keypair::generate();
        let sig = kp.sign(b"hello");
        kp.public().verify(b"hello", &sig).unwrap();
        assert_eq!(
            kp.public().verify(b"hellO", &sig),
            Err(KeyError::BadSignature)
        );
        assert_eq!(
            kp.public().verify(b"hello", &sig[..10]),
            Err(KeyError::SignatureLength(10))
        );
        let s = kp.public().to_string();
        assert_eq!(s.parse::<PublicKey>().unwrap(), kp.public());
        let again = Keypair::from_seed_hex(&kp.seed_hex()).unwrap();
        assert_eq!(again.public(), kp.public());
        let json = serde_json::to_string(&kp.public()).unwrap();
        assert_eq!(json, format!("\"{s}\""));
    }
}
