//! The encrypted keystore file: the mnemonic's entropy under argon2id + XChaCha20-Poly1305.
//!
//! ```json
//! {"version":1,"kind":"hallmark-keystore","coldkey":"5…","hotkey":"5…",
//!  "crypto":{"kdf":"argon2id","kdfparams":{"m_cost_kib":65536,"t_cost":3,"p_cost":1,"salt":"…"},
//!            "cipher":"xchacha20-poly1305","nonce":"…","ciphertext":"…"},
//!  "checksum":"…"}
//! ```
//!
//! Everything but the ciphertext is authenticated as associated data, so editing an address
//! or a parameter fails decryption. `checksum` is SHA-256 over the canonical JSON of the rest:
//! it needs no password, so a damaged or edited file is reported as corrupt, and only a file
//! that is intact yet fails to decrypt is reported as a wrong password.

use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::PublicKey;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::keys::{Wallet, WalletError};

/// The keystore format version this build writes and reads.
pub const KEYSTORE_VERSION: u32 = 1;
const KIND: &str = "hallmark-keystore";
const MIN_PASSWORD_CHARS: usize = 8;

/// Why a keystore could not be written or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The password does not open this (intact) keystore.
    #[error("wrong password: the keystore is intact but does not decrypt with it")]
    WrongPassword,
    /// The file is not a keystore, or was damaged or edited.
    #[error("corrupted keystore: {0}")]
    Corrupt(String),
    /// A keystore version this build does not read.
    #[error("keystore version {0} is not supported (this build reads version {KEYSTORE_VERSION})")]
    UnsupportedVersion(u32),
    /// A password too short to protect a wallet.
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    /// Refusing to overwrite an existing keystore.
    #[error("{0} already exists; refusing to overwrite a wallet")]
    Exists(String),
    /// The decrypted mnemonic does not make a wallet.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// Reading or writing the file.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane (OWASP's argon2id recommendation is 19 MiB × 2; we go above).
    fn default() -> Self {
        Self {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// Limits on what a file may ask for, so a crafted keystore cannot make opening it take
    /// gigabytes or hours.
    fn check(&self) -> Result<(), KeystoreError> {
        if !(8..=1024 * 1024).contains(&self.m_cost_kib)
            || !(1..=64).contains(&self.t_cost)
            || !(1..=16).contains(&self.p_cost)
        {
            return Err(KeystoreError::Corrupt(format!(
                "argon2id parameters out of range: {self:?}"
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfSection {
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CryptoSection {
    kdf: String,
    kdfparams: KdfSection,
    cipher: String,
    nonce: String,
    ciphertext: String,
}

/// The authenticated header (associated data).
#[derive(Serialize)]
struct Header<'a> {
    version: u32,
    kind: &'a str,
    coldkey: &'a PublicKey,
    hotkey: &'a PublicKey,
    kdf: &'a str,
    kdfparams: &'a KdfSection,
    cipher: &'a str,
    nonce: &'a str,
}

/// A keystore file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keystore {
    pub version: u32,
    pub kind: String,
    /// The coldkey address (readable without the password).
    pub coldkey: PublicKey,
    /// The hotkey address.
    pub hotkey: PublicKey,
    crypto: CryptoSection,
    checksum: String,
}

/// The part the checksum covers: everything but the checksum.
#[derive(Serialize)]
struct Checked<'a> {
    version: u32,
    kind: &'a str,
    coldkey: &'a PublicKey,
    hotkey: &'a PublicKey,
    crypto: &'a CryptoSection,
}

fn corrupt(what: impl Into<String>) -> KeystoreError {
    KeystoreError::Corrupt(what.into())
}

impl Keystore {
    fn header_bytes(&self) -> Result<Vec<u8>, KeystoreError> {
        to_canonical_bytes(&Header {
            version: self.version,
            kind: &self.kind,
            coldkey: &self.coldkey,
            hotkey: &self.hotkey,
            kdf: &self.crypto.kdf,
            kdfparams: &self.crypto.kdfparams,
            cipher: &self.crypto.cipher,
            nonce: &self.crypto.nonce,
        })
        .map_err(|e| corrupt(e.to_string()))
    }

    fn checksum_of(&self) -> Result<String, KeystoreError> {
        let bytes = to_canonical_bytes(&Checked {
            version: self.version,
            kind: &self.kind,
            coldkey: &self.coldkey,
            hotkey: &self.hotkey,
            crypto: &self.crypto,
        })
        .map_err(|e| corrupt(e.to_string()))?;
        Ok(hex::encode(Sha256::digest(bytes)))
    }

    /// Encrypts `wallet`'s mnemonic under `password`.
    pub fn encrypt(
        wallet: &Wallet,
        password: &str,
        params: KdfParams,
    ) -> Result<Self, KeystoreError> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(KeystoreError::WeakPassword);
        }
        params.check()?;
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut ks = Keystore {
            version: KEYSTORE_VERSION,
            kind: KIND.into(),
            coldkey: wallet.coldkey_address(),
            hotkey: wallet.hotkey_address(),
            crypto: CryptoSection {
                kdf: "argon2id".into(),
                kdfparams: KdfSection {
                    m_cost_kib: params.m_cost_kib,
                    t_cost: params.t_cost,
                    p_cost: params.p_cost,
                    salt: hex::encode(salt),
                },
                cipher: "xchacha20-poly1305".into(),
                nonce: hex::encode(nonce),
                ciphertext: String::new(),
            },
            checksum: String::new(),
        };
        let key = derive_key(password, &salt, params)?;
        let aad = ks.header_bytes()?;
        let entropy = wallet.entropy();
        let ciphertext = XChaCha20Poly1305::new(key.as_ref().into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: entropy.as_slice(),
                    aad: &aad,
                },
            )
            .map_err(|_| corrupt("encryption failed"))?;
        ks.crypto.ciphertext = hex::encode(ciphertext);
        ks.checksum = ks.checksum_of()?;
        Ok(ks)
    }

    /// Parses a keystore file's text (structure and checksum only; no password needed).
    pub fn parse(text: &str) -> Result<Self, KeystoreError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| corrupt(format!("not JSON: {e}")))?;
        if let Some(v) = value.get("version").and_then(|v| v.as_u64()) {
            if v != u64::from(KEYSTORE_VERSION) {
                return Err(KeystoreError::UnsupportedVersion(
                    u32::try_from(v).unwrap_or(u32::MAX),
                ));
            }
        }
        let ks: Keystore = serde_json::from_value(value)
            .map_err(|e| corrupt(format!("not a hallmark keystore: {e}")))?;
        if ks.kind != KIND {
            return Err(corrupt(format!("kind is {:?}, not {KIND:?}", ks.kind)));
        }
        if ks.checksum_of()? != ks.checksum {
            return Err(corrupt("checksum mismatch: the file was edited or damaged"));
        }
        Ok(ks)
    }

    /// Decrypts the wallet; a wrong password and a damaged file give different errors.
    pub fn decrypt(&self, password: &str) -> Result<Wallet, KeystoreError> {
        if self.checksum_of()? != self.checksum {
            return Err(corrupt("checksum mismatch: the file was edited or damaged"));
        }
        let c = &self.crypto;
        if c.kdf != "argon2id" || c.cipher != "xchacha20-poly1305" {
            return Err(corrupt(format!(
                "unsupported kdf {:?} or cipher {:?}",
                c.kdf, c.cipher
            )));
        }
        let params = KdfParams {
            m_cost_kib: c.kdfparams.m_cost_kib,
            t_cost: c.kdfparams.t_cost,
            p_cost: c.kdfparams.p_cost,
        };
        params.check()?;
        let salt = hex::decode(&c.kdfparams.salt).map_err(|_| corrupt("salt is not hex"))?;
        if salt.len() < 16 {
            return Err(corrupt("salt is shorter than 16 bytes"));
        }
        let nonce = hex::decode(&c.nonce).map_err(|_| corrupt("nonce is not hex"))?;
        if nonce.len() != 24 {
            return Err(corrupt("nonce is not 24 bytes"));
        }
        let ciphertext =
            hex::decode(&c.ciphertext).map_err(|_| corrupt("ciphertext is not hex"))?;
        let key = derive_key(password, &salt, params)?;
        let aad = self.header_bytes()?;
        let entropy = Zeroizing::new(
            XChaCha20Poly1305::new(key.as_ref().into())
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| KeystoreError::WrongPassword)?,
        );
        let wallet = Wallet::from_entropy(&entropy)?;
        if wallet.coldkey_address() != self.coldkey || wallet.hotkey_address() != self.hotkey {
            return Err(corrupt(
                "the decrypted wallet's addresses differ from the file's",
            ));
        }
        Ok(wallet)
    }

    /// The file's JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads and parses a keystore file.
    pub fn read(path: &Path) -> Result<Self, KeystoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeystoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Writes the keystore to a new file (mode 0600, atomically); refuses to overwrite.
    pub fn write_new(&self, path: &Path) -> Result<(), KeystoreError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| KeystoreError::Io {
            path: path.display().to_string(),
            source,
        };
        if path.exists() {
            return Err(KeystoreError::Exists(path.display().to_string()));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("partial");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(self.to_json().as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io)?;
        // A hard link fails if the target appeared meanwhile: no wallet is ever overwritten.
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        linked.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeystoreError::Exists(path.display().to_string())
            } else {
                io(e)
            }
        })
    }
}

fn derive_key(
    password: &str,
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let p = Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32))
        .map_err(|e| corrupt(format!("argon2id parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(password.as_bytes(), salt, key.as_mut())
        .map_err(|e| corrupt(format!("argon2id: {e}")))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_cost_kib: 256,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn round_trip_wrong_password_and_every_kind_of_damage() {
        let w = Wallet::generate().unwrap();
        let ks = Keystore::encrypt(&w, "correct horse", FAST).unwrap();
        let text = ks.to_json();
        let back = Keystore::parse(&text)
            .unwrap()
            .decrypt("correct horse")
            .unwrap();
        assert_eq!(back.coldkey_address(), w.coldkey_address());
        assert_eq!(back.hotkey_address(), w.hotkey_address());
        assert_eq!(*back.phrase(), *w.phrase());
        // The mnemonic is not in the file.
        assert!(!text.contains(w.phrase().as_str()));

        assert!(matches!(
            Keystore::parse(&text).unwrap().decrypt("wrong horse"),
            Err(KeystoreError::WrongPassword)
        ));
        assert!(matches!(
            Keystore::encrypt(&w, "short", FAST),
            Err(KeystoreError::WeakPassword)
        ));
        // Damage: not JSON, truncated, a flipped ciphertext digit, an edited address, a
        // raised cost, another version.
        let corrupt_cases = [
            "garbage".to_string(),
            text[..text.len() / 2].to_string(),
            {
                let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
                let mut c = v["crypto"]["ciphertext"]
                    .as_str()
                    .unwrap()
                    .as_bytes()
                    .to_vec();
                c[0] = if c[0] == b'0' { b'1' } else { b'0' };
                let flipped = String::from_utf8(c).unwrap();
                v["crypto"]["ciphertext"] = flipped.into();
                v.to_string()
            },
            {
                let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
                v["hotkey"] = w.coldkey_address().to_ss58().into();
                v.to_string()
            },
            {
                let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
                v["crypto"]["kdfparams"]["m_cost_kib"] = 4_000_000_000u64.into();
                v.to_string()
            },
        ];
        for bad in corrupt_cases {
            let err = Keystore::parse(&bad)
                .and_then(|k| k.decrypt("correct horse"))
                .unwrap_err();
            assert!(matches!(err, KeystoreError::Corrupt(_)), "{err} for {bad}");
        }
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["version"] = 2.into();
        assert!(matches!(
            Keystore::parse(&v.to_string()),
            Err(KeystoreError::UnsupportedVersion(2))
        ));
    }

    #[test]
    fn write_new_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/wallet.json");
        let ks = Keystore::encrypt(&Wallet::generate().unwrap(), "password1", FAST).unwrap();
        ks.write_new(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(ks.write_new(&path), Err(KeystoreError::Exists(_))));
        assert_eq!(Keystore::read(&path).unwrap(), ks);
    }
}
