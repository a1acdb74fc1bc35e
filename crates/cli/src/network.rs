//! Where a network is: `--devnet DIR` reads `<DIR>/devnet.json`, which `hallmark devnet
//! --keep-running` writes once every node answers; otherwise the URL flags (and their
//! `HALLMARK_*` variables) say.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use hallmark_core::PublicKey;
use serde::{Deserialize, Serialize};

/// The file's name inside the devnet's data dir.
pub const DEVNET_FILE: &str = "devnet.json";

/// A running devnet's endpoints and keys, as `devnet --keep-running` writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetInfo {
    pub ledger: String,
    pub coordinator: String,
    pub validators: Vec<String>,
    pub workers: Vec<String>,
    /// The operator's key file (hex seed): it may publish rounds and owner picks.
    pub operator_key: PathBuf,
    /// The devnet coldkey file (hex seed): genesis-funded, it staked every node.
    pub coldkey: PathBuf,
    /// The key the coordinator signs rounds with (what validators and workers pin).
    pub coordinator_hotkey: PublicKey,
    /// A client key file (hex seed) for submitting jobs.
    pub client_key: PathBuf,
    /// The coordinator's live dashboard page.
    #[serde(default)]
    pub dashboard: String,
    /// Every node answered when this was written.
    pub ready: bool,
}

impl DevnetInfo {
    /// Reads `<dir>/devnet.json`; refuses a devnet that is not (yet) ready.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(DEVNET_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "devnet_unavailable: reading {} (is `hallmark devnet --keep-running --data-dir {}` running?)",
                path.display(),
                dir.display()
            )
        })?;
        let info: Self = serde_json::from_str(&text).with_context(|| {
            format!(
                "devnet_unavailable: {} is not a devnet file",
                path.display()
            )
        })?;
        if !info.ready {
            bail!(
                "devnet_unavailable: {} says the devnet is not ready yet",
                path.display()
            );
        }
        Ok(info)
    }

    /// Writes `<dir>/devnet.json` atomically.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(DEVNET_FILE);
        let tmp = dir.join(format!("{DEVNET_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

/// `--devnet DIR`: take endpoints (and keys) from a running devnet.
#[derive(Debug, Clone, clap::Args)]
pub struct DevnetArg {
    /// A `hallmark devnet --keep-running` data dir: use its endpoints and keys.
    #[arg(long, value_name = "DIR")]
    pub devnet: Option<PathBuf>,
}

impl DevnetArg {
    /// The devnet's description, when `--devnet` was given.
    pub fn info(&self) -> anyhow::Result<Option<DevnetInfo>> {
        self.devnet.as_deref().map(DevnetInfo::read).transpose()
    }
}

/// Where the coordinator is: `--coordinator URL` (or `HALLMARK_COORDINATOR_URL`), or a
/// running devnet's with `--devnet DIR`.
#[derive(Debug, clap::Args)]
pub struct CoordinatorArg {
    /// The coordinator's base URL.
    #[arg(
        long,
        env = "HALLMARK_COORDINATOR_URL",
        default_value = "http://127.0.0.1:7200"
    )]
    coordinator: String,
    #[command(flatten)]
    devnet: crate::network::DevnetArg,
}

impl CoordinatorArg {
    /// The coordinator's URL: the devnet's when `--devnet` is given, else `--coordinator`.
    pub fn url(&self) -> anyhow::Result<String> {
        Ok(match self.devnet.info()? {
            Some(d) => d.coordinator,
            None => self.coordinator.clone(),
        })
    }

    /// The running devnet's description, when `--devnet` was given.
    pub fn devnet(&self) -> anyhow::Result<Option<DevnetInfo>> {
        self.devnet.info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let arg = DevnetArg {
            devnet: Some(dir.path().to_path_buf()),
        };
        let e = arg.info().unwrap_err().to_string();
        assert!(e.starts_with("devnet_unavailable"), "{e}");
        let mut info = DevnetInfo {
            ledger: "http://127.0.0.1:1".into(),
            coordinator: "http://127.0.0.1:2".into(),
            validators: vec!["http://127.0.0.1:3".into()],
            workers: vec![],
            operator_key: "k/operator".into(),
            coldkey: "k/cold".into(),
            coordinator_hotkey: hallmark_core::Keypair::generate().public(),
            client_key: "k/client".into(),
            dashboard: "http://127.0.0.1:2/".into(),
            ready: false,
        };
        info.write(dir.path()).unwrap();
        assert!(arg.info().is_err(), "not ready");
        info.ready = true;
        info.write(dir.path()).unwrap();
        assert_eq!(arg.info().unwrap(), Some(info));
        assert_eq!(DevnetArg { devnet: None }.info().unwrap(), None);
        std::fs::write(dir.path().join(DEVNET_FILE), "{").unwrap();
        assert!(arg.info().is_err());
    }
}
