//! DSSE envelopes: every signed object in hallmark.
//!
//! The payload is RFC 8785 canonical JSON; the signature is over the DSSE pre-authentication
//! encoding `PAE(payloadType, payload)`, so the payload type is part of what is signed and one
//! kind of statement can never pass as another.

use std::marker::PhantomData;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::canonical::to_canonical_bytes;
use crate::digest::{sha256, Sha256Digest};
use crate::keys::{KeyError, Keypair, PublicKey};

/// A statement type that can be signed: it names its DSSE payload type (its signing domain).
pub trait SignedPayload: Serialize + DeserializeOwned {
    /// `application/vnd.hallmark.<kind>+json`.
    const PAYLOAD_TYPE: &'static str;
}

/// Why an envelope was refused.
#[derive(Debug, thiserror::Error)]
pub enum DsseError {
    #[error("payload type {found:?} where {expected:?} was expected")]
    WrongPayloadType { expected: String, found: String },
    #[error("envelope must carry exactly one signature, found {0}")]
    SignatureCount(usize),
    #[error("payload or signature is not valid base64")]
    Base64,
    #[error("signer key: {0}")]
    Key(#[from] KeyError),
    #[error("payload is not valid JSON for this type: {0}")]
    Payload(String),
    #[error(transparent)]
    Canonical(#[from] crate::canonical::CanonicalError),
}

impl DsseError {
    /// A stable snake_case code for wire errors and verdicts.
    pub fn code(&self) -> &'static str {
        match self {
            DsseError::WrongPayloadType { .. } => "wrong_payload_type",
            DsseError::SignatureCount(_) => "bad_signature",
            DsseError::Base64 => "malformed_envelope",
            DsseError::Key(_) => "bad_signature",
            DsseError::Payload(_) => "malformed_payload",
            DsseError::Canonical(_) => "malformed_payload",
        }
    }
}

/// One signature inside an envelope; `keyid` is the signer's SS58 address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: String,
}

/// A DSSE envelope as it travels on the wire (`payload` and `sig` are standard base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// Checks the single signature over PAE whatever the payload type, and returns the signer
    /// and the raw payload bytes. For code that handles statements of any kind (evidence,
    /// receipts, log entries); typed code uses [`Signed::verify`], which also pins the type.
    pub fn verify_untyped(&self) -> Result<(PublicKey, Vec<u8>), DsseError> {
        if self.signatures.len() != 1 {
            return Err(DsseError::SignatureCount(self.signatures.len()));
        }
        let s = &self.signatures[0];
        let signer: PublicKey = s.keyid.parse()?;
        let body = B64.decode(&self.payload).map_err(|_| DsseError::Base64)?;
        let sig = B64.decode(&s.sig).map_err(|_| DsseError::Base64)?;
        signer.verify(&pae(&self.payload_type, &body), &sig)?;
        Ok((signer, body))
    }

    /// The payload bytes, signature unchecked: for peeking at what a statement says (which
    /// round it names, say) before the checks that decide whether to believe it.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, DsseError> {
        B64.decode(&self.payload).map_err(|_| DsseError::Base64)
    }

    /// The canonical JSON bytes of the envelope: what a transparency log leaf holds.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, DsseError> {
        Ok(to_canonical_bytes(self)?)
    }
}

/// The DSSE v1 pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A typed envelope: an [`Envelope`] known to carry a `T` (once verified).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Signed<T> {
    envelope: Envelope,
    #[serde(skip)]
    _kind: PhantomData<fn() -> T>,
}

/// The result of a successful verification: who signed, and what.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    pub signer: PublicKey,
    pub payload: T,
}

impl<T: SignedPayload> Signed<T> {
    /// Signs `payload` with `key` under `T::PAYLOAD_TYPE`.
    pub fn sign(payload: &T, key: &Keypair) -> Result<Self, DsseError> {
        let body = to_canonical_bytes(payload)?;
        let sig = key.sign(&pae(T::PAYLOAD_TYPE, &body));
        Ok(Self {
            envelope: Envelope {
                payload_type: T::PAYLOAD_TYPE.to_string(),
                payload: B64.encode(&body),
                signatures: vec![EnvelopeSignature {
                    keyid: key.public().to_ss58(),
                    sig: B64.encode(sig),
                }],
            },
            _kind: PhantomData,
        })
    }

    /// Wraps an envelope received from elsewhere; nothing is trusted until [`Self::verify`].
    pub fn from_envelope(envelope: Envelope) -> Self {
        Self {
            envelope,
            _kind: PhantomData,
        }
    }

    /// The raw envelope.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Checks the payload type, the single signature over PAE, and decodes the payload.
    pub fn verify(&self) -> Result<Verified<T>, DsseError> {
        if self.envelope.payload_type != T::PAYLOAD_TYPE {
            return Err(DsseError::WrongPayloadType {
                expected: T::PAYLOAD_TYPE.to_string(),
                found: self.envelope.payload_type.clone(),
            });
        }
        let (signer, body) = self.envelope.verify_untyped()?;
        let payload =
            serde_json::from_slice(&body).map_err(|e| DsseError::Payload(e.to_string()))?;
        Ok(Verified { signer, payload })
    }

    /// SHA-256 over the canonical JSON of the whole envelope: the id of this signed statement.
    pub fn digest(&self) -> Result<Sha256Digest, DsseError> {
        Ok(sha256(&to_canonical_bytes(&self.envelope)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    struct Vote {
        job: String,
        valid: bool,
    }
    impl SignedPayload for Vote {
        const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.test-vote+json";
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    struct Receipt {
        job: String,
        valid: bool,
    }
    impl SignedPayload for Receipt {
        const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.test-receipt+json";
    }

    #[test]
    fn pae_matches_spec_example() {
        // The example from the DSSE protocol description.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn sign_verify_and_domain_separation() {
        let kp = Keypair::generate();
        let vote = Vote {
            job: "j1".into(),
            valid: true,
        };
        let signed = Signed::sign(&vote, &kp).unwrap();
        let v = signed.verify().unwrap();
        assert_eq!(v.signer, kp.public());
        assert_eq!(v.payload, vote);

        // The same envelope cannot be read as a receipt.
        let as_receipt: Signed<Receipt> = Signed::from_envelope(signed.envelope().clone());
        assert!(matches!(
            as_receipt.verify(),
            Err(DsseError::WrongPayloadType { .. })
        ));
        // Relabelling the type breaks the signature, because the type is inside PAE.
        let mut env = signed.envelope().clone();
        env.payload_type = Receipt::PAYLOAD_TYPE.into();
        let relabelled: Signed<Receipt> = Signed::from_envelope(env);
        assert_eq!(relabelled.verify().unwrap_err().code(), "bad_signature");
    }

    #[test]
    fn tampering_is_detected() {
        let kp = Keypair::generate();
        let signed = Signed::sign(
            &Vote {
                job: "j1".into(),
                valid: true,
            },
            &kp,
        )
        .unwrap();
        let mut env = signed.envelope().clone();
        env.payload = B64.encode(br#"{"job":"j1","valid":false}"#);
        let t: Signed<Vote> = Signed::from_envelope(env);
        assert_eq!(t.verify().unwrap_err().code(), "bad_signature");

        let mut env = signed.envelope().clone();
        env.signatures[0].keyid = Keypair::generate().public().to_ss58();
        let t: Signed<Vote> = Signed::from_envelope(env);
        assert_eq!(t.verify().unwrap_err().code(), "bad_signature");

        let mut env = signed.envelope().clone();
        env.signatures.clear();
        let t: Signed<Vote> = Signed::from_envelope(env);
        assert!(matches!(t.verify(), Err(DsseError::SignatureCount(0))));

        let mut env = signed.envelope().clone();
        env.payload = "%%%".into();
        let t: Signed<Vote> = Signed::from_envelope(env);
        assert!(matches!(t.verify(), Err(DsseError::Base64)));
    }
}
