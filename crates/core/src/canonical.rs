//! RFC 8785 (JSON Canonicalization Scheme) encoding: the bytes everything is signed and hashed over.

use serde::Serialize;

/// Why a value could not be canonicalised.
#[derive(Debug, thiserror::Error)]
#[error("canonical JSON encoding failed: {0}")]
pub struct CanonicalError(String);

/// Serializes `value` as RFC 8785 canonical JSON (sorted keys, no whitespace, ES6 numbers).
pub fn to_canonical_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| CanonicalError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_keys_and_strips_whitespace() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{ "b": [1, 2.50, {"z":null,"a":true}], "a": "\u00e9" }"#)
                .unwrap();
        let out = String::from_utf8(to_canonical_bytes(&v).unwrap()).unwrap();
        assert_eq!(out, r#"{"a":"é","b":[1,2.5,{"a":true,"z":null}]}"#);
    }

    #[test]
    fn rfc8785_number_forms() {
        let v: serde_json::Value = serde_json::from_str("[1e21, 1e-7, 0.000001, -0.0]").unwrap();
        let out = String::from_utf8(to_canonical_bytes(&v).unwrap()).unwrap();
        assert_eq!(out, "[1e+21,1e-7,0.000001,0]");
    }
}
