//! hallmark-wallet: one BIP-39 mnemonic per wallet, every key derived from it, and an
//! encrypted keystore file.
//!
//! - [`keys`]: the 24-word mnemonic and the keys derived from its seed: the ed25519 coldkey
//!   and hotkey by SLIP-0010 hardened paths, and the ElGamal secret for private balances.
//!   Importing the same words gives the same addresses.
//! - [`keystore`]: the mnemonic's entropy encrypted under a password (argon2id, then
//!   XChaCha20-Poly1305) in a versioned JSON file in the spirit of Ethereum's v3 keystore, with
//!   a password-independent checksum so a corrupted file and a wrong password are told apart.

pub mod keys;
pub mod keystore;

pub use keys::{Wallet, WalletError, COLDKEY_PATH, ELGAMAL_PATH, HOTKEY_PATH};
pub use keystore::{KdfParams, Keystore, KeystoreError, KEYSTORE_VERSION};
