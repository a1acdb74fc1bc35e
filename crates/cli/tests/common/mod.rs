//! What the CLI tests that run a network in process share: node configs and running the
//! `hallmark` binary off the async runtime.

use std::path::Path;
use std::process::{Command, Output};

use hallmark_node::config::NodeConfig;

/// A node named `name` keeping its data under `dir/name`, defaults otherwise but one:
/// validators registered here vote at once (`ledger.stake_epoch_secs = 0`), since these tests
/// start their validators after the ledger. The activation delay has its own tests.
pub fn cfg(dir: &Path, name: &str) -> NodeConfig {
    let mut c = NodeConfig {
        name: name.into(),
        data_dir: dir.join(name),
        ..NodeConfig::default()
    };
    c.ledger.stake_epoch_secs = 0;
    c
}

/// Runs the `hallmark` binary with `args` on a blocking thread, so the in-process nodes keep
/// serving. Wallet variables of the caller's environment are removed, so a developer's
/// `HALLMARK_PASSWORD` never decides a test.
pub async fn hallmark(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_hallmark"))
            .args(&args)
            .env_remove("HALLMARK_PASSWORD")
            .env_remove("HALLMARK_KEYSTORE")
            .output()
            .expect("run hallmark")
    })
    .await
    .expect("the blocking task ran")
}

/// Owned arguments.
pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}
