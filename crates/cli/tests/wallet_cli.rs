//! `hallmark wallet …` as a user runs it: a real keystore file, passwords from a file or the
//! environment, and the errors for a wrong password, a damaged keystore, an existing file and
//! bad words.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn wallet(args: &[&str], password: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hallmark"));
    cmd.arg("wallet")
        .args(args)
        .env_remove("HALLMARK_PASSWORD")
        .env_remove("HALLMARK_KEYSTORE");
    if let Some(p) = password {
        cmd.env("HALLMARK_PASSWORD", p);
    }
    cmd.output().expect("run hallmark")
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn refused(o: &Output, code: &str) {
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("error: {code}:")),
        "{code} not in {err}"
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn create_show_import_export_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("w/wallet.json");
    let created = json(&wallet(
        &["create", "--keystore", s(&ks), "--json"],
        Some("hunter2hunter2"),
    ));
    let words = created["mnemonic"].as_str().unwrap().to_string();
    assert_eq!(words.split(' ').count(), 24);
    let (cold, hot) = (created["coldkey"].clone(), created["hotkey"].clone());
    assert_ne!(cold, hot);
    let text = std::fs::read_to_string(&ks).unwrap();
    assert!(!text.contains(&words), "the mnemonic is stored in clear");
    let file: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(file["version"], 1);
    assert_eq!(file["crypto"]["kdf"], "argon2id");

    // Show with a password file (first line; the newline is not part of it).
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "hunter2hunter2\n").unwrap();
    let shown = json(&wallet(
        &[
            "show",
            "--keystore",
            s(&ks),
            "--password-file",
            s(&pw),
            "--json",
        ],
        None,
    ));
    assert_eq!(
        (shown["coldkey"].clone(), shown["hotkey"].clone()),
        (cold.clone(), hot.clone())
    );

    // Import the same words into another keystore: the same addresses.
    let words_file = dir.path().join("words");
    std::fs::write(&words_file, format!("{words}\n")).unwrap();
    let ks2 = dir.path().join("restored.json");
    let imported = json(&wallet(
        &[
            "import",
            "--mnemonic-file",
            s(&words_file),
            "--keystore",
            s(&ks2),
            "--json",
        ],
        Some("another-password"),
    ));
    assert_eq!(
        (imported["coldkey"].clone(), imported["hotkey"].clone()),
        (cold.clone(), hot.clone())
    );

    // Export gives the words and seeds that rebuild the keys.
    let exported = json(&wallet(
        &["export", "--keystore", s(&ks2), "--json"],
        Some("another-password"),
    ));
    assert_eq!(exported["mnemonic"], words.as_str());
    let seed = exported["coldkey_seed"].as_str().unwrap();
    let key = hallmark_core::Keypair::from_seed_hex(seed).unwrap();
    assert_eq!(serde_json::to_value(key.public()).unwrap(), cold);

    // Refusals, each with its own code, and nothing changed on disk.
    refused(
        &wallet(&["show", "--keystore", s(&ks)], Some("wrong-password")),
        "wrong_password",
    );
    let mut damaged: Value = serde_json::from_str(&text).unwrap();
    let c = damaged["crypto"]["ciphertext"]
        .as_str()
        .unwrap()
        .to_string();
    damaged["crypto"]["ciphertext"] =
        format!("{}{}", if c.starts_with('a') { "b" } else { "a" }, &c[1..]).into();
    let bad = dir.path().join("damaged.json");
    std::fs::write(&bad, damaged.to_string()).unwrap();
    refused(
        &wallet(&["show", "--keystore", s(&bad)], Some("hunter2hunter2")),
        "corrupted_keystore",
    );
    std::fs::write(&bad, "{\"version\":1").unwrap();
    refused(
        &wallet(&["show", "--keystore", s(&bad)], Some("hunter2hunter2")),
        "corrupted_keystore",
    );
    refused(
        &wallet(&["create", "--keystore", s(&ks)], Some("hunter2hunter2")),
        "keystore_exists",
    );
    assert_eq!(std::fs::read_to_string(&ks).unwrap(), text);
    refused(
        &wallet(
            &["create", "--keystore", s(&dir.path().join("weak.json"))],
            Some("short"),
        ),
        "weak_password",
    );
    assert!(!dir.path().join("weak.json").exists());
    std::fs::write(&words_file, format!("{words} zoo")).unwrap();
    refused(
        &wallet(
            &[
                "import",
                "--mnemonic-file",
                s(&words_file),
                "--keystore",
                s(&dir.path().join("x.json")),
            ],
            Some("hunter2hunter2"),
        ),
        "invalid_mnemonic",
    );
    refused(
        &wallet(
            &["show", "--keystore", s(&dir.path().join("missing.json"))],
            Some("hunter2hunter2"),
        ),
        "keystore_unreadable",
    );
}
