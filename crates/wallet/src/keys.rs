//! The mnemonic and the keys derived from it.

use std::fmt;

use bip39::{Language, Mnemonic};
use ed25519_dalek_bip32::{DerivationPath, ExtendedSigningKey};
use hallmark_core::{Keypair, PublicKey};
use rand::RngCore;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

/// SLIP-0010 path of the coldkey (holds balances and stake; signs registrations).
pub const COLDKEY_PATH: &str = "m/44'/9337'/0'/0'/0'";
/// SLIP-0010 path of the hotkey (the node's everyday signing key).
pub const HOTKEY_PATH: &str = "m/44'/9337'/0'/1'/0'";
/// SLIP-0010 path whose key material becomes the ElGamal secret (private balances).
pub const ELGAMAL_PATH: &str = "m/44'/9337'/0'/2'/0'";

/// Why a wallet could not be made or opened.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The words are not a valid BIP-39 English mnemonic.
    #[error("invalid mnemonic: {0}")]
    Mnemonic(String),
    /// Only 24-word (256-bit) mnemonics are accepted.
    #[error("the mnemonic has {0} words; a hallmark wallet uses 24")]
    WordCount(usize),
    /// A derivation failed (cannot happen for the fixed hardened paths).
    #[error("key derivation: {0}")]
    Derivation(String),
}

/// A wallet: the mnemonic and the keys it derives. The secret material is wiped on drop.
pub struct Wallet {
    mnemonic: Mnemonic,
    coldkey: Keypair,
    hotkey: Keypair,
    elgamal_secret: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wallet")
            .field("coldkey", &self.coldkey.public())
            .field("hotkey", &self.hotkey.public())
            .finish_non_exhaustive()
    }
}

fn derive(seed: &[u8; 64], path: &str) -> Result<[u8; 32], WalletError> {
    let path: DerivationPath = path
        .parse()
        .map_err(|e| WalletError::Derivation(format!("{path}: {e:?}")))?;
    let key = ExtendedSigningKey::from_seed(seed)
        .and_then(|k| k.derive(&path))
        .map_err(|e| WalletError::Derivation(e.to_string()))?;
    Ok(key.signing_key.to_bytes())
}

impl Wallet {
    /// A new wallet from 256 bits of OS randomness (24 words).
    pub fn generate() -> Result<Self, WalletError> {
        let mut entropy = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(entropy.as_mut());
        Self::from_entropy(entropy.as_ref())
    }

    /// The wallet of a mnemonic's entropy (32 bytes).
    pub fn from_entropy(entropy: &[u8]) -> Result<Self, WalletError> {
        let mnemonic = Mnemonic::from_entropy_in(Language::English, entropy)
            .map_err(|e| WalletError::Mnemonic(e.to_string()))?;
        Self::from_mnemonic(mnemonic)
    }

    /// The wallet of a 24-word English mnemonic (whitespace and case are normalised).
    pub fn from_phrase(phrase: &str) -> Result<Self, WalletError> {
        let words = phrase.split_whitespace().count();
        if words != 24 {
            return Err(WalletError::WordCount(words));
        }
        let normalised = Zeroizing::new(
            phrase
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase(),
        );
        let mnemonic = Mnemonic::parse_in_normalized(Language::English, &normalised)
            .map_err(|e| WalletError::Mnemonic(e.to_string()))?;
        Self::from_mnemonic(mnemonic)
    }

    fn from_mnemonic(mnemonic: Mnemonic) -> Result<Self, WalletError> {
        let mut seed = mnemonic.to_seed_normalized("");
        let keys = (|| {
            let coldkey = Keypair::from_seed(&derive(&seed, COLDKEY_PATH)?);
            let hotkey = Keypair::from_seed(&derive(&seed, HOTKEY_PATH)?);
            // The ElGamal secret is a Ristretto scalar; 64 bytes of hash give it a uniform
            // reduction when the payments module turns it into one.
            let mut material = Zeroizing::new(derive(&seed, ELGAMAL_PATH)?);
            let wide = Sha512::new()
                .chain_update(b"hallmark/elgamal-secret/v1")
                .chain_update(material.as_ref())
                .finalize();
            let mut elgamal = Zeroizing::new([0u8; 32]);
            elgamal.copy_from_slice(&wide[..32]);
            material.zeroize();
            Ok((coldkey, hotkey, elgamal))
        })();
        seed.zeroize();
        let (coldkey, hotkey, elgamal_secret) = keys?;
        Ok(Self {
            mnemonic,
            coldkey,
            hotkey,
            elgamal_secret,
        })
    }

    /// The 24 words (show once, to be written down).
    pub fn phrase(&self) -> Zeroizing<String> {
        Zeroizing::new(self.mnemonic.to_string())
    }

    /// The mnemonic's entropy (what the keystore encrypts).
    pub fn entropy(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.mnemonic.to_entropy())
    }

    /// The coldkey.
    pub fn coldkey(&self) -> &Keypair {
        &self.coldkey
    }

    /// The hotkey.
    pub fn hotkey(&self) -> &Keypair {
        &self.hotkey
    }

    /// The coldkey's address.
    pub fn coldkey_address(&self) -> PublicKey {
        self.coldkey.public()
    }

    /// The hotkey's address.
    pub fn hotkey_address(&self) -> PublicKey {
        self.hotkey.public()
    }

    /// The 32 bytes the ElGamal secret scalar is made from.
    pub fn elgamal_secret(&self) -> &[u8; 32] {
        &self.elgamal_secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The BIP-39 test vector with all-zero 256-bit entropy.
    const ZERO_PHRASE: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art";

    #[test]
    fn import_gives_the_same_keys_and_paths_differ() {
        let w = Wallet::generate().unwrap();
        assert_eq!(w.phrase().split(' ').count(), 24);
        let again = Wallet::from_phrase(&format!("  {}\n", w.phrase().to_uppercase())).unwrap();
        assert_eq!(again.coldkey_address(), w.coldkey_address());
        assert_eq!(again.hotkey_address(), w.hotkey_address());
        assert_eq!(again.elgamal_secret(), w.elgamal_secret());
        assert_ne!(w.coldkey_address(), w.hotkey_address());
        let from_entropy = Wallet::from_entropy(&w.entropy()).unwrap();
        assert_eq!(from_entropy.coldkey_address(), w.coldkey_address());
        // Another wallet has other keys.
        let other = Wallet::generate().unwrap();
        assert_ne!(other.coldkey_address(), w.coldkey_address());
    }

    #[test]
    fn slip10_matches_the_standard_vector_and_our_paths_stay_put() {
        let w = Wallet::from_phrase(ZERO_PHRASE).unwrap();
        assert_eq!(w.entropy().as_slice(), &[0u8; 32]);
        // Pinned: a change of path, passphrase or derivation would move every wallet's keys.
        assert_eq!(
            w.coldkey_address().to_ss58(),
            "5GUuA35WQn5nceHHLpUbgNuxxW6t18C1qt38L7sGMBbvfDfq"
        );
        assert_eq!(
            w.hotkey_address().to_ss58(),
            "5FME1t1r2auoe8uWMh9KqFxPpwptqMxGeeh7kCCuL1DFoB6Z"
        );
        assert_eq!(
            hex::encode(w.elgamal_secret()),
            "48f7f042692a0b6959cbf8c8827c4456a4525d29cd970e3ff10e3e6426cc7a09"
        );
        // SLIP-0010 test vector 1 for ed25519: seed 000102…0f, chain m/0'.
        let short: Vec<u8> = (0u8..16).collect();
        let master = ExtendedSigningKey::from_seed(&short).unwrap();
        let child = master
            .derive(&"m/0'".parse::<DerivationPath>().unwrap())
            .unwrap();
        assert_eq!(
            hex::encode(child.signing_key.to_bytes()),
            "68e0fe46dfb67e368c75379acec591dad19df3cde26e63b93a8e704f1dade7a3"
        );
    }

    #[test]
    fn bad_mnemonics_are_refused() {
        assert!(matches!(
            Wallet::from_phrase("abandon abandon"),
            Err(WalletError::WordCount(2))
        ));
        // 24 words with a wrong checksum word.
        let bad = ZERO_PHRASE.replace(" art", " abandon");
        assert!(matches!(
            Wallet::from_phrase(&bad),
            Err(WalletError::Mnemonic(_))
        ));
        let unknown = ZERO_PHRASE.replace(" art", " hallmarkx");
        assert!(Wallet::from_phrase(&unknown).is_err());
    }
}
