//! Serde for byte-encoded types as lowercase hex strings (the wire form of every key,
//! ciphertext and proof here).

/// Implements `Serialize`/`Deserialize` as lowercase hex through `to_bytes` / `from_bytes`.
macro_rules! hex_serde {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(self.to_bytes()))
            }
        }

        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": "^([0-9a-f]{2})*$",
                    "description": concat!(stringify!($ty), ", lowercase hex of its byte encoding."),
                })
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(d)?;
                if text.bytes().any(|b| b.is_ascii_uppercase()) {
                    return Err(serde::de::Error::custom("hex must be lowercase"));
                }
                let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
                <$ty>::from_bytes(&bytes).map_err(serde::de::Error::custom)
            }
        }

        impl $ty {
            /// The lowercase hex of [`Self::to_bytes`].
            pub fn to_hex(&self) -> String {
                hex::encode(self.to_bytes())
            }

            /// Parses lowercase hex of [`Self::to_bytes`].
            pub fn from_hex(text: &str) -> Result<Self, crate::ConfidentialError> {
                if text.bytes().any(|b| b.is_ascii_uppercase()) {
                    return Err(crate::ConfidentialError::Malformed {
                        what: stringify!($ty),
                        why: "hex must be lowercase".into(),
                    });
                }
                let bytes = hex::decode(text).map_err(|e| crate::ConfidentialError::Malformed {
                    what: stringify!($ty),
                    why: e.to_string(),
                })?;
                Self::from_bytes(&bytes)
            }
        }
    };
}

pub(crate) use hex_serde;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::Scalar;

use crate::ConfidentialError;

/// Reads the 32-byte chunk `i` of `bytes` as a Ristretto point.
pub(crate) fn point_at(
    bytes: &[u8],
    i: usize,
    what: &'static str,
) -> Result<RistrettoPoint, ConfidentialError> {
    let chunk = chunk_at(bytes, i, what)?;
    CompressedRistretto(chunk)
        .decompress()
        .ok_or_else(|| ConfidentialError::Malformed {
            what,
            why: format!(
                "bytes {}..{} are not a Ristretto point",
                32 * i,
                32 * i + 32
            ),
        })
}

/// Reads the 32-byte chunk `i` of `bytes` as a canonical scalar.
pub(crate) fn scalar_at(
    bytes: &[u8],
    i: usize,
    what: &'static str,
) -> Result<Scalar, ConfidentialError> {
    let chunk = chunk_at(bytes, i, what)?;
    Option::<Scalar>::from(Scalar::from_canonical_bytes(chunk)).ok_or_else(|| {
        ConfidentialError::Malformed {
            what,
            why: format!(
                "bytes {}..{} are not a canonical scalar",
                32 * i,
                32 * i + 32
            ),
        }
    })
}

fn chunk_at(bytes: &[u8], i: usize, what: &'static str) -> Result<[u8; 32], ConfidentialError> {
    bytes
        .get(32 * i..32 * i + 32)
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .ok_or_else(|| ConfidentialError::Malformed {
            what,
            why: format!("{} bytes is too short", bytes.len()),
        })
}

/// Refuses `bytes` unless it is exactly `len` long.
pub(crate) fn exact_len(
    bytes: &[u8],
    len: usize,
    what: &'static str,
) -> Result<(), ConfidentialError> {
    if bytes.len() == len {
        Ok(())
    } else {
        Err(ConfidentialError::Malformed {
            what,
            why: format!("{} bytes, expected {len}", bytes.len()),
        })
    }
}
