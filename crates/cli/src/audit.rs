//! Offline audit tools: `hallmark log …`, `hallmark verify receipt`, `hallmark consensus …`.
//! None of them talks to a network; each takes files or arguments and exits 0 only when the
//! thing checked holds.

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hallmark_consensus::yuma::{yuma_consensus, yuma_epoch, YumaError, YumaInput};
use hallmark_log::hash::parse_hex_hash;
use hallmark_log::{
    leaf_hash, verify_consistency, verify_inclusion, verify_receipt, Hash, MerkleTree,
    NoteVerifierKey, Receipt,
};

/// Exit code when a proof or receipt does not hold (bad input is 2, like clap).
const EXIT_REJECTED: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;

/// `hallmark log …`: RFC 6962 Merkle tree tools.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Print the RFC 6962 root of the leaves on stdin: one leaf's data in hex per line (an
    /// empty line is an empty leaf); no lines gives the empty-tree root.
    Root,
    /// Check an inclusion proof; exit 0 when it holds.
    VerifyInclusion {
        /// The leaf hash (hex), SHA-256(0x00 ‖ data).
        #[arg(long)]
        leaf_hash: String,
        #[arg(long)]
        index: u64,
        #[arg(long)]
        size: u64,
        /// The root hash (hex) of the tree of `size` leaves.
        #[arg(long)]
        root: String,
        /// Comma-separated hex hashes, bottom-up (empty for a one-leaf tree).
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        proof: String,
    },
    /// Check a consistency proof between two tree sizes; exit 0 when it holds.
    VerifyConsistency {
        #[arg(long)]
        size1: u64,
        #[arg(long)]
        size2: u64,
        #[arg(long)]
        root1: String,
        #[arg(long)]
        root2: String,
        /// Comma-separated hex hashes (empty when the sizes are equal or size1 is 0).
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        proof: String,
    },
}

/// `hallmark verify …`.
#[derive(Debug, Subcommand)]
pub enum VerifyCommand {
    /// Check a receipt offline: the statement's signature, the checkpoint's signature and the
    /// statement's inclusion under the checkpoint. Exit 0 only when every check passes.
    Receipt {
        /// The receipt JSON (`-` for stdin).
        file: PathBuf,
        /// Pin the log's key (C2SP vkey `name+keyid+base64key`); without it the log is taken
        /// to be operated by the statement's signer.
        #[arg(long)]
        log_key: Option<String>,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a TDX or SGX quote against stored collateral at a given time, under a policy.
    Tdx(crate::tee::VerifyTdxArgs),
    /// Verify NVIDIA GPU attestation (NRAS EAT) against a pinned JWKS and an expected nonce.
    Nvidia(crate::tee::VerifyNvidiaArgs),
    /// Re-check an attestation proxy's verification receipt offline.
    Chain(crate::tee::VerifyChainArgs),
    /// Check a ledger read offline. A single sequencer's read (`GET /v1/ledger/state?key=…`
    /// saved to a file) needs `--ledger-key`: the header's signature by a trusted key, then the
    /// value's Merkle proof under the header's state root. A replica's certified read (`GET
    /// /v1/ledger/certified?key=…`) needs `--validators`: precommits from more than 2/3 of the
    /// set's power for the block header, then the proof under its state root.
    /// Exit 0 only when every check passes, 1 when one fails, 2 on unreadable input.
    LedgerRead {
        /// The read JSON (`-` for stdin).
        file: PathBuf,
        /// A key trusted to sign ledger headers (ss58; repeatable). `GET /v1/ledger/info`
        /// names the ledger's as `header_key`.
        #[arg(long = "ledger-key", required_unless_present = "validators")]
        ledger_keys: Vec<String>,
        /// The validator set trusted for a certified read: a file holding `GET
        /// /v1/ledger/validators` (or its `validators` object).
        #[arg(long)]
        validators: Option<PathBuf>,
        /// The chain the read must be from.
        #[arg(long)]
        chain_id: Option<String>,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a replicated ledger's log checkpoint offline (`GET /v1/ledger/checkpoint/certified`
    /// saved to a file): the commit certificate must hold precommits from more than 2/3 of the
    /// validator set's power for the block header whose log size and root are the checkpoint.
    /// Exit 0 only when every check passes, 1 when one fails, 2 on unreadable input.
    LedgerCheckpoint {
        /// The certified checkpoint JSON (`-` for stdin).
        file: PathBuf,
        /// The validator set trusted: a file holding `GET /v1/ledger/validators` (or its
        /// `validators` object).
        #[arg(long)]
        validators: PathBuf,
        /// The chain the checkpoint must be from.
        #[arg(long)]
        chain_id: Option<String>,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check evidence that a ledger forked: two files (ledger reads or signed headers) whose
    /// headers one key signed for the same chain and sequence number with different contents.
    /// Prints the fork and exits 0 when proven; exits 1 naming why the two are not a fork.
    LedgerFork { first: PathBuf, second: PathBuf },
}

/// `hallmark consensus …`: Yuma as subtensor computes it, from a JSON file.
#[derive(Debug, Subcommand)]
pub enum ConsensusCommand {
    /// Run one Yuma epoch. Input: {"stake":[…],"weights":[[…]],"kappa":0.5,"bonds":[[…]],
    /// "alpha":0.1,"bonds_penalty":1,"active":[…]} (only stake and weights required).
    /// A square weights matrix is neuron → neuron and self-weights are masked, as subtensor does.
    Yuma {
        /// Input JSON (`-` for stdin).
        #[arg(long)]
        input: PathBuf,
    },
    /// Print only the consensus column vector (stake-weighted median at kappa), computed on the
    /// same prepared inputs as `yuma`: inactive stake and self-weights masked, rows normalised.
    Median {
        #[arg(long)]
        input: PathBuf,
    },
}

fn read_input(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading stdin")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn parse_hash(what: &str, s: &str) -> anyhow::Result<Hash> {
    parse_hex_hash(s).with_context(|| format!("{what} {s:?} is not 32 bytes of hex"))
}

fn parse_proof(s: &str) -> anyhow::Result<Vec<Hash>> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .enumerate()
        .map(|(i, h)| parse_hash(&format!("proof hash {i}"), h))
        .collect()
}

pub(crate) fn bad_input(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {}", crate::error_chain(&e));
    ExitCode::from(EXIT_BAD_INPUT)
}

/// Runs a `log` subcommand.
pub fn run_log(cmd: LogCommand) -> ExitCode {
    match cmd {
        LogCommand::Root => match log_root() {
            Ok(root) => {
                println!("{}", hex::encode(root));
                ExitCode::SUCCESS
            }
            Err(e) => bad_input(e),
        },
        LogCommand::VerifyInclusion {
            leaf_hash,
            index,
            size,
            root,
            proof,
        } => {
            let parsed = (|| {
                Ok::<_, anyhow::Error>((
                    parse_hash("leaf hash", &leaf_hash)?,
                    parse_hash("root", &root)?,
                    parse_proof(&proof)?,
                ))
            })();
            match parsed {
                Ok((leaf, root, proof)) => {
                    verdict(verify_inclusion(&leaf, index, size, &proof, &root))
                }
                Err(e) => bad_input(e),
            }
        }
        LogCommand::VerifyConsistency {
            size1,
            size2,
            root1,
            root2,
            proof,
        } => {
            let parsed = (|| {
                Ok::<_, anyhow::Error>((
                    parse_hash("root1", &root1)?,
                    parse_hash("root2", &root2)?,
                    parse_proof(&proof)?,
                ))
            })();
            match parsed {
                Ok((r1, r2, proof)) => verdict(verify_consistency(size1, size2, &r1, &r2, &proof)),
                Err(e) => bad_input(e),
            }
        }
    }
}

fn verdict(res: Result<(), hallmark_log::ProofError>) -> ExitCode {
    match res {
        Ok(()) => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rejected: {}: {e}", e.code());
            ExitCode::from(EXIT_REJECTED)
        }
    }
}

fn log_root() -> anyhow::Result<Hash> {
    let stdin = std::io::stdin();
    let mut tree = MerkleTree::new();
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line.context("reading stdin")?;
        let line = line.trim_end_matches('\r');
        let data = hex::decode(line.trim()).with_context(|| format!("line {}: not hex", n + 1))?;
        tree.push(leaf_hash(&data));
    }
    // The root of no leaves is the empty-tree root.
    Ok(tree.root())
}

/// Runs a `verify` subcommand.
pub fn run_verify(cmd: VerifyCommand) -> ExitCode {
    match cmd {
        VerifyCommand::Tdx(a) => crate::tee::verify_tdx(a),
        VerifyCommand::Nvidia(a) => crate::tee::verify_nvidia(a),
        VerifyCommand::Chain(a) => crate::tee::verify_chain(a),
        VerifyCommand::LedgerCheckpoint {
            file,
            validators,
            chain_id,
            json,
        } => {
            let parsed = (|| {
                let cp: hallmark_ledger_bft::CertifiedCheckpoint =
                    serde_json::from_str(&read_input(&file)?)
                        .context("the file is not a certified ledger checkpoint")?;
                Ok::<_, anyhow::Error>((cp, read_validator_set(&validators)?))
            })();
            let (cp, set) = match parsed {
                Ok(v) => v,
                Err(e) => return bad_input(e),
            };
            let v =
                hallmark_ledger_bft::verify_certified_checkpoint(&cp, &set, chain_id.as_deref());
            let json = json.then(|| serde_json::json!(v));
            report_verdict(&v, json, "certified ledger checkpoint")
        }
        VerifyCommand::LedgerRead {
            file,
            ledger_keys,
            validators: Some(set_file),
            chain_id,
            json,
        } => {
            let _ = ledger_keys;
            let parsed = (|| {
                let read: hallmark_ledger_bft::CertifiedRead =
                    serde_json::from_str(&read_input(&file)?)
                        .context("the file is not a certified ledger read")?;
                Ok::<_, anyhow::Error>((read, read_validator_set(&set_file)?))
            })();
            let (read, set) = match parsed {
                Ok(v) => v,
                Err(e) => return bad_input(e),
            };
            let v = hallmark_ledger_bft::verify_certified_read(&read, &set, chain_id.as_deref());
            let json = json.then(|| serde_json::json!(v));
            report_verdict(&v, json, "certified ledger read")
        }
        VerifyCommand::LedgerRead {
            file,
            ledger_keys,
            validators: None,
            chain_id,
            json,
        } => {
            let parsed = (|| {
                let text = read_input(&file)?;
                let read: hallmark_ledger::LedgerRead =
                    serde_json::from_str(&text).context("the file is not a ledger read")?;
                let keys = ledger_keys
                    .iter()
                    .map(|k| {
                        k.parse::<hallmark_core::PublicKey>()
                            .map_err(|e| anyhow::anyhow!("--ledger-key {k}: {e}"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok::<_, anyhow::Error>((read, keys))
            })();
            let (read, keys) = match parsed {
                Ok(v) => v,
                Err(e) => return bad_input(e),
            };
            let v = hallmark_ledger::verify_read(&read, &keys, chain_id.as_deref());
            let json = json.then(|| serde_json::json!(v));
            report_verdict(&v, json, "ledger read")
        }
        VerifyCommand::LedgerFork { first, second } => {
            let header = |path: &PathBuf| -> anyhow::Result<hallmark_core::Envelope> {
                let v: serde_json::Value = serde_json::from_str(&read_input(path)?)
                    .with_context(|| format!("{} is not JSON", path.display()))?;
                let env = v.get("header").cloned().unwrap_or(v);
                serde_json::from_value(env).with_context(|| {
                    format!(
                        "{} is neither a ledger read nor a signed header",
                        path.display()
                    )
                })
            };
            let (a, b) = match (header(&first), header(&second)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => return bad_input(e),
            };
            match hallmark_ledger::ledger_fork(&a, &b) {
                Ok(fork) => match serde_json::to_string_pretty(&fork) {
                    Ok(s) => {
                        println!("{s}");
                        println!(
                            "fork proven: {} signed two heads at seq {}",
                            fork.signer, fork.seq
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => bad_input(e.into()),
                },
                Err(e) => {
                    println!("not a fork: {}: {e}", e.code());
                    ExitCode::from(EXIT_REJECTED)
                }
            }
        }
        VerifyCommand::Receipt {
            file,
            log_key,
            json,
        } => {
            let parsed = (|| {
                let text = read_input(&file)?;
                let receipt: Receipt =
                    serde_json::from_str(&text).context("the file is not a receipt")?;
                let key = log_key
                    .map(|k| k.parse::<NoteVerifierKey>().context("--log-key"))
                    .transpose()?;
                Ok::<_, anyhow::Error>((receipt, key))
            })();
            let (receipt, key) = match parsed {
                Ok(v) => v,
                Err(e) => return bad_input(e),
            };
            let v = verify_receipt(&receipt, key.as_ref());
            let json = json.then(|| serde_json::json!(v));
            report_verdict(&v, json, "receipt")
        }
    }
}

/// Prints a verdict (its checks and outcome, or `json` when given) and maps it to the exit
/// code: 0 accepted, 1 rejected.
pub(crate) fn report_verdict(
    v: &hallmark_core::Verdict,
    json: Option<serde_json::Value>,
    what: &str,
) -> ExitCode {
    match json {
        Some(value) => match serde_json::to_string_pretty(&value) {
            Ok(s) => println!("{s}"),
            Err(e) => return bad_input(e.into()),
        },
        None => {
            for c in &v.checks {
                println!("{:<24} {:?}  {}", c.name, c.outcome, c.detail);
            }
            match &v.rejection {
                None => println!("{what} accepted"),
                Some(code) => println!("{what} rejected: {code}"),
            }
        }
    }
    if v.accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REJECTED)
    }
}

/// Runs a `consensus` subcommand.
pub fn run_consensus(cmd: ConsensusCommand) -> ExitCode {
    let res = (|| {
        let (path, median_only) = match &cmd {
            ConsensusCommand::Yuma { input } => (input, false),
            ConsensusCommand::Median { input } => (input, true),
        };
        let text = read_input(path)?;
        let input: YumaInput = serde_json::from_str(&text).context("input JSON")?;
        input
            .validate()
            .map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?;
        let code = |e: YumaError| anyhow::anyhow!("{}: {e}", e.code());
        let out = if median_only {
            serde_json::to_string(&yuma_consensus(&input).map_err(code)?)?
        } else {
            serde_json::to_string_pretty(&yuma_epoch(&input).map_err(code)?)?
        };
        Ok::<_, anyhow::Error>(out)
    })();
    match res {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => bad_input(e),
    }
}

/// A validator set from a file: `GET /v1/ledger/validators` or the set itself.
fn read_validator_set(path: &PathBuf) -> anyhow::Result<hallmark_ledger_bft::ValidatorSet> {
    let set: serde_json::Value = serde_json::from_str(&read_input(path)?)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    // `GET /v1/ledger/validators` wraps the set (an object) beside the height; the set itself
    // is `{"validators": [...]}`.
    let set = match set.get("validators") {
        Some(inner) if inner.is_object() => inner.clone(),
        _ => set,
    };
    serde_json::from_value(set)
        .with_context(|| format!("{} is not a validator set", path.display()))
}
