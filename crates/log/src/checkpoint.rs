//! Checkpoints in the C2SP `tlog-checkpoint` format, signed as C2SP signed notes (Ed25519).
//!
//! A checkpoint body is three lines — origin, tree size in decimal, root hash in standard
//! base64 — each ending in a newline. A signed note appends an empty line and one line per
//! signature: `— <key name> <base64(key id ‖ signature)>`, where the key id is the first four
//! bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)` and the signature covers the body
//! bytes. Verifier keys use the note vkey form `<name>+<hex key id>+<base64(0x01 ‖ key)>`.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hallmark_core::keys::{Keypair, PublicKey};
use sha2::{Digest, Sha256};

use crate::hash::Hash;

/// The Ed25519 signature type byte of signed notes.
const ED25519_ALG: u8 = 0x01;
/// The em dash that starts a signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a checkpoint or its note could not be read or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The body is not origin, size and root on three lines.
    #[error("malformed checkpoint body: {0}")]
    MalformedBody(String),
    /// The note has no signature block, or a line in it is not a signature line.
    #[error("malformed signed note: {0}")]
    MalformedNote(String),
    /// A key name that the note format forbids (empty, whitespace or '+').
    #[error("invalid key name {0:?}")]
    InvalidKeyName(String),
    /// The verifier key string is not `name+keyid+base64key`.
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(String),
    /// No signature line in the note is from the expected key.
    #[error("no signature by key {0} on the checkpoint")]
    SignerNotFound(String),
    /// A signature from the expected key that does not verify.
    #[error("checkpoint signature by {0} does not verify")]
    BadSignature(String),
}

impl CheckpointError {
    /// A stable snake_case code for wire errors and verdicts.
    pub fn code(&self) -> &'static str {
        match self {
            CheckpointError::MalformedBody(_) => "malformed_checkpoint",
            CheckpointError::MalformedNote(_) => "malformed_note",
            CheckpointError::InvalidKeyName(_) => "invalid_key_name",
            CheckpointError::MalformedVerifierKey(_) => "malformed_verifier_key",
            CheckpointError::SignerNotFound(_) => "checkpoint_signer_not_found",
            CheckpointError::BadSignature(_) => "bad_checkpoint_signature",
        }
    }
}

/// The signed statement of a log: "my tree of `size` leaves has `root`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Unique name of the log.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Root hash of the tree of that size.
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint body text (the bytes a note signature covers).
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a body; extension lines after the root are not used by hallmark and refused.
    pub fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let bad = |m: &str| CheckpointError::MalformedBody(m.to_string());
        let rest = body
            .strip_suffix('\n')
            .ok_or_else(|| bad("does not end in a newline"))?;
        let mut lines = rest.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("empty origin"))?;
        let size_line = lines.next().ok_or_else(|| bad("missing tree size"))?;
        if size_line.is_empty()
            || !size_line.bytes().all(|b| b.is_ascii_digit())
            || (size_line.len() > 1 && size_line.starts_with('0'))
        {
            return Err(bad(
                "tree size is not a decimal number without leading zeros",
            ));
        }
        let size = size_line
            .parse::<u64>()
            .map_err(|_| bad("tree size out of range"))?;
        let root_line = lines.next().ok_or_else(|| bad("missing root hash"))?;
        let root: Hash = B64
            .decode(root_line)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("root hash is not 32 bytes of base64"))?;
        if lines.next().is_some() {
            return Err(bad("unexpected extension lines"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }

    /// Signs the checkpoint as a signed note under key `name`.
    pub fn sign(&self, name: &str, key: &Keypair) -> Result<SignedCheckpoint, CheckpointError> {
        let vkey = NoteVerifierKey::new(name, key.public())?;
        let body = self.body();
        let sig = key.sign(body.as_bytes());
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&vkey.key_id);
        blob.extend_from_slice(&sig);
        let note = format!("{body}\n{SIG_PREFIX}{name} {}\n", B64.encode(blob));
        Ok(SignedCheckpoint { note })
    }
}

/// One signature line: the key name and the decoded key id ‖ signature.
type NoteSignature<'a> = (&'a str, Vec<u8>);

/// A checkpoint as a C2SP signed note (the exact text, so it can be re-verified byte for byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The note text: body, empty line, signature lines.
    pub note: String,
}

impl SignedCheckpoint {
    /// Splits the note into its body and signature lines, without checking signatures.
    fn split(&self) -> Result<(&str, Vec<NoteSignature<'_>>), CheckpointError> {
        let bad = |m: &str| CheckpointError::MalformedNote(m.to_string());
        let at = self
            .note
            .rfind("\n\n")
            .ok_or_else(|| bad("no signature block"))?;
        let body = &self.note[..=at];
        let sigs_text = &self.note[at + 2..];
        let sigs_text = sigs_text
            .strip_suffix('\n')
            .ok_or_else(|| bad("does not end in a newline"))?;
        let mut sigs = Vec::new();
        for line in sigs_text.split('\n') {
            let line = line
                .strip_prefix(SIG_PREFIX)
                .ok_or_else(|| bad("signature line without the em dash"))?;
            let (name, b64) = line
                .split_once(' ')
                .ok_or_else(|| bad("signature line without a name"))?;
            let blob = B64
                .decode(b64)
                .map_err(|_| bad("signature is not base64"))?;
            if blob.len() < 5 {
                return Err(bad("signature too short"));
            }
            sigs.push((name, blob));
        }
        if sigs.is_empty() {
            return Err(bad("no signatures"));
        }
        Ok((body, sigs))
    }

    /// The checkpoint inside, without verifying any signature (for display only).
    pub fn checkpoint_unverified(&self) -> Result<Checkpoint, CheckpointError> {
        let (body, _) = self.split()?;
        Checkpoint::parse_body(body)
    }

    /// Verifies the signature of `key` and returns the checkpoint it signed.
    pub fn verify(&self, key: &NoteVerifierKey) -> Result<Checkpoint, CheckpointError> {
        let (body, sigs) = self.split()?;
        let mut found = false;
        for (name, blob) in sigs {
            if name != key.name || blob[..4] != key.key_id {
                continue;
            }
            found = true;
            if blob.len() == 68 && key.public.verify(body.as_bytes(), &blob[4..]).is_ok() {
                return Checkpoint::parse_body(body);
            }
        }
        if found {
            Err(CheckpointError::BadSignature(key.to_string()))
        } else {
            Err(CheckpointError::SignerNotFound(key.to_string()))
        }
    }
}

/// A signed-note verifier key: the name, the key id and the Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifierKey {
    /// The key name that appears on signature lines (hallmark uses the log origin).
    pub name: String,
    /// First four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ key).
    pub key_id: [u8; 4],
    /// The Ed25519 public key.
    pub public: PublicKey,
}

impl NoteVerifierKey {
    /// The verifier key for `public` under `name`.
    pub fn new(name: &str, public: PublicKey) -> Result<Self, CheckpointError> {
        if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
            return Err(CheckpointError::InvalidKeyName(name.to_string()));
        }
        let mut h = Sha256::new();
        h.update(name.as_bytes());
        h.update(b"\n");
        h.update([ED25519_ALG]);
        h.update(public.as_bytes());
        let digest = h.finalize();
        let key_id = [digest[0], digest[1], digest[2], digest[3]];
        Ok(NoteVerifierKey {
            name: name.to_string(),
            key_id,
            public,
        })
    }
}

impl fmt::Display for NoteVerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = vec![ED25519_ALG];
        key.extend_from_slice(self.public.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            B64.encode(key)
        )
    }
}

impl FromStr for NoteVerifierKey {
    type Err = CheckpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |m: &str| CheckpointError::MalformedVerifierKey(m.to_string());
        let mut parts = s.trim().split('+');
        let (Some(name), Some(id_hex), Some(key_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected name+keyid+key"));
        };
        let key = B64.decode(key_b64).map_err(|_| bad("key is not base64"))?;
        if key.len() != 33 || key[0] != ED25519_ALG {
            return Err(bad("not an Ed25519 note key"));
        }
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&key[1..]);
        let public = PublicKey::from_bytes(raw).map_err(|_| bad("not a valid Ed25519 point"))?;
        let vkey = NoteVerifierKey::new(name, public)?;
        if hex::encode(vkey.key_id) != id_hex.to_ascii_lowercase() {
            return Err(bad("key id does not match name and key"));
        }
        Ok(vkey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            origin: "hallmark.test/log".into(),
            size: 7,
            root: [7u8; 32],
        }
    }

    #[test]
    fn body_round_trips_and_rejects_variants() {
        let cp = sample();
        assert_eq!(Checkpoint::parse_body(&cp.body()).unwrap(), cp);
        for bad in [
            "",
            "origin\n7\n",
            "origin\n07\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "origin\n-1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "origin\n7\nAAAA\n",
            "\n7\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        ] {
            assert!(Checkpoint::parse_body(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signed_note_verifies_only_under_its_key() {
        let key = Keypair::from_seed(&[1; 32]);
        let other = Keypair::from_seed(&[2; 32]);
        let signed = sample().sign("hallmark.test/log", &key).unwrap();
        let vkey = NoteVerifierKey::new("hallmark.test/log", key.public()).unwrap();
        assert_eq!(signed.verify(&vkey).unwrap(), sample());
        // The vkey string round-trips.
        assert_eq!(vkey.to_string().parse::<NoteVerifierKey>().unwrap(), vkey);
        // Another key under the same name: its key id differs, so no signature is found.
        let wrong = NoteVerifierKey::new("hallmark.test/log", other.public()).unwrap();
        assert_eq!(
            signed.verify(&wrong).unwrap_err().code(),
            "checkpoint_signer_not_found"
        );
        // A changed body breaks the signature.
        let tampered = SignedCheckpoint {
            note: signed.note.replacen("\n7\n", "\n8\n", 1),
        };
        assert_eq!(
            tampered.verify(&vkey).unwrap_err().code(),
            "bad_checkpoint_signature"
        );
        // A note without its signature block is malformed.
        let bare = SignedCheckpoint {
            note: sample().body(),
        };
        assert_eq!(bare.verify(&vkey).unwrap_err().code(), "malformed_note");
    }

    #[test]
    fn key_names_follow_the_note_rules() {
        let key = Keypair::from_seed(&[1; 32]).public();
        for bad in ["", "a b", "a+b", "a\nb"] {
            assert!(NoteVerifierKey::new(bad, key).is_err(), "{bad:?}");
        }
        assert!("x+00000000+AAAA".parse::<NoteVerifierKey>().is_err());
    }
}
