//! `hallmark wallet …`: create, import, show and export a wallet kept in an encrypted keystore.
//!
//! The password comes from `--password-file FILE` (its first line), else `HALLMARK_PASSWORD`,
//! else a prompt on the terminal (asked twice when creating). Exit 0 on success; 1 with
//! `error: <code>: …` on stderr otherwise (`wrong_password`, `corrupted_keystore`,
//! `keystore_exists`, `invalid_mnemonic`, `no_password`, …).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use hallmark_wallet::{KdfParams, Keystore, KeystoreError, Wallet, WalletError};
use serde_json::json;
use zeroize::Zeroizing;

/// Which keystore and how to unlock it.
#[derive(Debug, Args)]
pub struct KeystoreArgs {
    /// The keystore file.
    #[arg(
        long,
        env = "HALLMARK_KEYSTORE",
        default_value = ".hallmark/wallet.json"
    )]
    pub keystore: PathBuf,
    /// Read the password from this file's first line (for scripts); else HALLMARK_PASSWORD,
    /// else a prompt.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `hallmark wallet …`
#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Make a new wallet: prints its 24 words once, and the coldkey and hotkey addresses.
    Create(KeystoreArgs),
    /// Restore a wallet from its 24 words (read from a file) into a new keystore.
    Import {
        #[command(flatten)]
        keystore: KeystoreArgs,
        /// A file holding the 24 words.
        #[arg(long)]
        mnemonic_file: PathBuf,
    },
    /// Unlock the keystore and print the wallet's addresses.
    Show(KeystoreArgs),
    /// Unlock the keystore and print the mnemonic and the secret key seeds. Anyone who sees
    /// them owns the wallet.
    Export(KeystoreArgs),
}

fn code_of(e: &KeystoreError) -> &'static str {
    match e {
        KeystoreError::WrongPassword => "wrong_password",
        KeystoreError::Corrupt(_) => "corrupted_keystore",
        KeystoreError::UnsupportedVersion(_) => "unsupported_keystore_version",
        KeystoreError::WeakPassword => "weak_password",
        KeystoreError::Exists(_) => "keystore_exists",
        KeystoreError::Wallet(_) => "invalid_mnemonic",
        KeystoreError::Io { .. } => "keystore_unreadable",
    }
}

pub(crate) fn keystore_error(e: KeystoreError) -> anyhow::Error {
    anyhow!("{}: {e}", code_of(&e))
}

/// The password: file, environment, or prompt (`confirm` asks twice).
fn password(a: &KeystoreArgs, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    if let Some(path) = &a.password_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("no_password: reading {}", path.display()))?,
        );
        return Ok(Zeroizing::new(
            text.lines().next().unwrap_or_default().to_string(),
        ));
    }
    if let Ok(p) = std::env::var("HALLMARK_PASSWORD") {
        return Ok(Zeroizing::new(p));
    }
    let first = Zeroizing::new(
        rpassword::prompt_password("keystore password: ").map_err(|e| {
            anyhow!("no_password: no terminal to ask on ({e}); use --password-file or HALLMARK_PASSWORD")
        })?,
    );
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password("again: ")?);
        if *again != *first {
            return Err(anyhow!("password_mismatch: the two passwords differ"));
        }
    }
    Ok(first)
}

fn save(wallet: &Wallet, a: &KeystoreArgs) -> anyhow::Result<()> {
    if a.keystore.exists() {
        return Err(keystore_error(KeystoreError::Exists(
            a.keystore.display().to_string(),
        )));
    }
    let pw = password(a, true)?;
    let ks = Keystore::encrypt(wallet, &pw, KdfParams::default()).map_err(keystore_error)?;
    ks.write_new(&a.keystore).map_err(keystore_error)
}

/// Reads the keystore and unlocks it with the password.
pub(crate) fn open(a: &KeystoreArgs) -> anyhow::Result<Wallet> {
    let ks = Keystore::read(&a.keystore).map_err(keystore_error)?;
    let pw = password(a, false)?;
    ks.decrypt(&pw).map_err(keystore_error)
}

fn addresses(wallet: &Wallet, keystore: &Path) -> serde_json::Value {
    json!({
        "coldkey": wallet.coldkey_address(),
        "hotkey": wallet.hotkey_address(),
        "keystore": keystore.display().to_string(),
    })
}

/// Runs a `hallmark wallet` command.
pub fn run(cmd: WalletCommand) -> ExitCode {
    let res = match cmd {
        WalletCommand::Create(a) => create(&a),
        WalletCommand::Import {
            keystore,
            mnemonic_file,
        } => import(&keystore, &mnemonic_file),
        WalletCommand::Show(a) => open(&a).map(|w| {
            let v = addresses(&w, &a.keystore);
            if a.json {
                println!("{v}");
            } else {
                println!("coldkey  {}", w.coldkey_address());
                println!("hotkey   {}", w.hotkey_address());
            }
        }),
        WalletCommand::Export(a) => open(&a).map(|w| {
            eprintln!("warning: these secrets control the wallet; keep them offline");
            if a.json {
                println!(
                    "{}",
                    json!({
                        "mnemonic": w.phrase().as_str(),
                        "coldkey": w.coldkey_address(),
                        "hotkey": w.hotkey_address(),
                        "coldkey_seed": w.coldkey().seed_hex(),
                        "hotkey_seed": w.hotkey().seed_hex(),
                    })
                );
            } else {
                println!("mnemonic      {}", w.phrase().as_str());
                println!("coldkey seed  {}", w.coldkey().seed_hex());
                println!("hotkey seed   {}", w.hotkey().seed_hex());
            }
        }),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", crate::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn create(a: &KeystoreArgs) -> anyhow::Result<()> {
    let wallet = Wallet::generate().map_err(|e| anyhow!("wallet: {e}"))?;
    save(&wallet, a)?;
    if a.json {
        let mut v = addresses(&wallet, &a.keystore);
        v["mnemonic"] = wallet.phrase().as_str().into();
        println!("{v}");
    } else {
        println!("Write these 24 words down and keep them offline; they are shown once and restore every key:\n");
        println!("  {}\n", wallet.phrase().as_str());
        println!("coldkey  {}", wallet.coldkey_address());
        println!("hotkey   {}", wallet.hotkey_address());
        println!("keystore {}", a.keystore.display());
    }
    Ok(())
}

fn import(a: &KeystoreArgs, mnemonic_file: &Path) -> anyhow::Result<()> {
    let phrase = Zeroizing::new(
        std::fs::read_to_string(mnemonic_file)
            .with_context(|| format!("reading {}", mnemonic_file.display()))?,
    );
    let wallet =
        Wallet::from_phrase(&phrase).map_err(|e: WalletError| anyhow!("invalid_mnemonic: {e}"))?;
    save(&wallet, a)?;
    let v = addresses(&wallet, &a.keystore);
    if a.json {
        println!("{v}");
    } else {
        println!("imported into {}", a.keystore.display());
        println!("coldkey  {}", wallet.coldkey_address());
        println!("hotkey   {}", wallet.hotkey_address());
    }
    Ok(())
}
