//! report_data bindings: how an upstream ties its quote to the verifier's nonce and to the
//! key it will talk with. Each convention says exactly which bytes go in, so a verifier can
//! recompute the expected report_data and compare.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A binding convention with the values the verifier expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "convention", rename_all = "snake_case")]
pub enum Binding {
    /// Chutes: `report_data[0..32] == sha256(nonce ‖ e2e_pubkey)`, both *as the strings sent*
    /// (the nonce's hex text, the public key's base64 text), concatenated as UTF-8.
    Chutes { nonce: String, e2e_pubkey: String },
    /// dstack: `report_data == signing_address (padded with zeros to 32 bytes) ‖ nonce32`,
    /// where nonce32 is the nonce's bytes if it is 64 hex characters, else sha256(nonce).
    Dstack {
        signing_address: String,
        nonce: String,
    },
}

/// The outcome of comparing a quote's report_data with a binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BindingCheck {
    pub verified: bool,
    /// Hex of the bytes the convention requires (32 bytes for Chutes, 64 for dstack).
    pub expected_report_data: String,
    /// Hex of the same span of the quote's report_data.
    pub actual_report_data: String,
    pub detail: String,
}

/// `sha256(nonce ‖ e2e_pubkey)`: the first 32 bytes of a Chutes instance's report_data.
pub fn chutes_report_data(nonce: &str, e2e_pubkey_b64: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(nonce.as_bytes());
    h.update(e2e_pubkey_b64.as_bytes());
    h.finalize().into()
}

/// The 32 nonce bytes dstack puts after the signing address.
pub fn dstack_nonce_bytes(nonce: &str) -> [u8; 32] {
    match hex::decode(nonce) {
        Ok(b) if b.len() == 32 => {
            let mut out = [0u8; 32];
            out.copy_from_slice(&b);
            out
        }
        _ => Sha256::digest(nonce.as_bytes()).into(),
    }
}

/// The full 64-byte dstack report_data, or `None` if the address is not hex of at most 32 bytes.
pub fn dstack_report_data(signing_address: &str, nonce: &str) -> Option<[u8; 64]> {
    let addr = hex::decode(signing_address.trim_start_matches("0x")).ok()?;
    if addr.is_empty() || addr.len() > 32 {
        return None;
    }
    let mut out = [0u8; 64];
    out[..addr.len()].copy_from_slice(&addr);
    out[32..].copy_from_slice(&dstack_nonce_bytes(nonce));
    Some(out)
}

impl Binding {
    /// Compares this binding with a quote's report_data (hex, 64 bytes).
    pub fn check(&self, report_data_hex: &str) -> BindingCheck {
        let actual = match hex::decode(report_data_hex) {
            Ok(b) if b.len() == 64 => b,
            _ => {
                return BindingCheck {
                    verified: false,
                    expected_report_data: String::new(),
                    actual_report_data: report_data_hex.to_string(),
                    detail: "report_data is not 64 bytes of hex".into(),
                }
            }
        };
        let (expected, span): (Vec<u8>, &[u8]) = match self {
            Binding::Chutes { nonce, e2e_pubkey } => (
                chutes_report_data(nonce, e2e_pubkey).to_vec(),
                &actual[..32],
            ),
            Binding::Dstack {
                signing_address,
                nonce,
            } => match dstack_report_data(signing_address, nonce) {
                Some(e) => (e.to_vec(), &actual[..]),
                None => {
                    return BindingCheck {
                        verified: false,
                        expected_report_data: String::new(),
                        actual_report_data: hex::encode(&actual),
                        detail: format!(
                            "signing address {signing_address:?} is not hex of 1..=32 bytes"
                        ),
                    }
                }
            },
        };
        let verified = expected.as_slice() == span;
        BindingCheck {
            verified,
            expected_report_data: hex::encode(&expected),
            actual_report_data: hex::encode(span),
            detail: if verified {
                "report_data matches the binding".into()
            } else {
                "report_data does not match the binding".into()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chutes_hashes_the_strings_as_sent() {
        let nonce = "00ff".repeat(8);
        let key = "AAEC";
        let mut rd = [0u8; 64];
        rd[..32].copy_from_slice(&chutes_report_data(&nonce, key));
        let b = Binding::Chutes {
            nonce: nonce.clone(),
            e2e_pubkey: key.into(),
        };
        assert!(b.check(&hex::encode(rd)).verified);
        // Upper-case hex is a different string, so a different binding.
        let upper = Binding::Chutes {
            nonce: nonce.to_uppercase(),
            e2e_pubkey: key.into(),
        };
        assert!(!upper.check(&hex::encode(rd)).verified);
        // The second half of report_data is free for Chutes.
        rd[40] ^= 1;
        assert!(b.check(&hex::encode(rd)).verified);
    }

    #[test]
    fn dstack_pads_the_address_and_appends_the_nonce() {
        let addr = "0x".to_string() + &"ab".repeat(20);
        let nonce = "cd".repeat(32);
        let rd = dstack_report_data(&addr, &nonce).unwrap();
        assert_eq!(&rd[..20], &[0xab; 20]);
        assert_eq!(&rd[20..32], &[0u8; 12]);
        assert_eq!(&rd[32..], &[0xcd; 32]);
        let b = Binding::Dstack {
            signing_address: addr,
            nonce,
        };
        assert!(b.check(&hex::encode(rd)).verified);
        let mut bad = rd;
        bad[63] ^= 1;
        assert!(!b.check(&hex::encode(bad)).verified);
        assert!(!b.check("zz").verified);
    }
}
