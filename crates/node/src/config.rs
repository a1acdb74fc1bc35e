//! Node configuration: a TOML file per node plus `HALLMARK_*` environment overrides. Every
//! default lets a devnet run without a file.

use std::path::{Path, PathBuf};

use hallmark_core::PublicKey;
use serde::{Deserialize, Serialize};

/// Which role a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Ledger,
    Coordinator,
    Validator,
    Worker,
}

impl std::str::FromStr for RoleName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ledger" => Ok(Self::Ledger),
            "coordinator" => Ok(Self::Coordinator),
            "validator" => Ok(Self::Validator),
            "worker" => Ok(Self::Worker),
            other => Err(format!(
                "unknown role {other:?}: expected ledger, coordinator, validator or worker"
            )),
        }
    }
}

/// One opening balance in the devnet genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisBalance {
    pub account: PublicKey,
    pub balance: u64,
}

/// Settings of the ledger role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerSection {
    pub chain_id: String,
    pub genesis: Vec<GenesisBalance>,
    /// Staking tiers by name (`validator` and `cpu` must exist): role and minimum stake.
    pub tiers: std::collections::BTreeMap<String, hallmark_ledger::Tier>,
    /// How long bonded stake stays locked, seconds.
    pub stake_lock_secs: u64,
    /// Length of a heartbeat epoch, seconds.
    pub heartbeat_epoch_secs: u64,
    /// A worker silent for more than this many heartbeat epochs is inactive (gets no jobs).
    pub inactive_after_epochs: u64,
    /// What one approved job pays its worker (credited encrypted).
    pub job_reward: u64,
    /// The share of stake one slashing removes, in basis points (1000 = 10%).
    pub slash_fraction_bps: u64,
    /// The devnet faucet (off unless `key_file` is set).
    pub faucet: FaucetSection,
    /// The build council: its members' approvals set who may write the build-info registry.
    pub build_council: Vec<PublicKey>,
    /// How many distinct council approvals a new build-manager set needs (k of n).
    pub build_council_threshold: u32,
    /// How long after an epoch's first weights anyone may close it without a 2/3 quorum of
    /// weights, seconds of block time.
    pub epoch_close_grace_secs: u64,
    /// Length of a stake epoch, seconds of block time: validator stake bonded in one counts
    /// for votes and weights from the next boundary on (0: at once).
    pub stake_epoch_secs: u64,
    /// Most validators whose stake counts (the largest, chosen at each boundary).
    pub max_validators: u32,
    /// Validators whose stake counts from registration on (the founding set; devnet lists
    /// its own). Everyone else waits for a stake-epoch boundary.
    pub genesis_validators: Vec<PublicKey>,
    /// Run this ledger as one replica of a BFT-replicated ledger (Malachite).
    pub bft: crate::replicated_ledger::BftSection,
}

impl Default for LedgerSection {
    fn default() -> Self {
        let params = hallmark_ledger::LedgerParams::default();
        Self {
            chain_id: "hallmark-devnet".into(),
            genesis: Vec::new(),
            tiers: params.tiers,
            stake_lock_secs: params.stake_lock_ms / 1000,
            heartbeat_epoch_secs: params.heartbeat_epoch_ms / 1000,
            inactive_after_epochs: params.inactive_after_epochs,
            job_reward: params.job_reward,
            slash_fraction_bps: params.slash_fraction_bps,
            faucet: FaucetSection::default(),
            build_council: Vec::new(),
            build_council_threshold: 0,
            epoch_close_grace_secs: params.epoch_close_grace_ms / 1000,
            stake_epoch_secs: 3_600,
            max_validators: params.max_validators,
            genesis_validators: Vec::new(),
            bft: Default::default(),
        }
    }
}

impl LedgerSection {
    /// The ledger's rules from this section (checked).
    pub fn params(&self) -> Result<hallmark_ledger::LedgerParams, crate::error::SettingError> {
        let params = hallmark_ledger::LedgerParams {
            tiers: self.tiers.clone(),
            stake_lock_ms: self.stake_lock_secs.saturating_mul(1000),
            heartbeat_epoch_ms: self.heartbeat_epoch_secs.saturating_mul(1000),
            inactive_after_epochs: self.inactive_after_epochs,
            job_reward: self.job_reward,
            slash_fraction_bps: self.slash_fraction_bps,
            build_council: self.build_council.clone(),
            build_council_threshold: self.build_council_threshold,
            epoch_close_grace_ms: self.epoch_close_grace_secs.saturating_mul(1000),
            stake_epoch_ms: self.stake_epoch_secs.saturating_mul(1000),
            max_validators: self.max_validators,
            genesis_validators: self.genesis_validators.clone(),
            ..hallmark_ledger::LedgerParams::default()
        };
        params
            .check()
            .map_err(|e| crate::error::SettingError::new("ledger", e.to_string()))?;
        Ok(params)
    }
}

/// The devnet faucet: a funded key the ledger signs drips with, rate-limited per address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaucetSection {
    /// The faucet's key (hex seed file); its account must be funded in the genesis.
    pub key_file: Option<PathBuf>,
    /// Tokens per drip.
    pub amount: u64,
    /// Least time between two drips to one address, seconds.
    pub interval_secs: u64,
    /// Most the faucet pays out to all addresses together per interval (so a thousand fresh
    /// addresses draw no more than one budget).
    pub budget: u64,
}

impl Default for FaucetSection {
    fn default() -> Self {
        Self {
            key_file: None,
            amount: 10_000,
            interval_secs: 3_600,
            budget: 30_000,
        }
    }
}

/// How a non-ledger node reaches the network and registers itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSection {
    pub ledger_url: String,
    pub coordinator_url: String,
    /// The key the coordinator signs rounds with (pinned: rounds signed by anyone else are refused).
    pub coordinator_hotkey: Option<PublicKey>,
    /// The coldkey that registers this node's hotkey (hex seed file).
    pub coldkey_file: Option<PathBuf>,
    /// Stake to register with.
    pub stake: u64,
    /// Allowed clock skew for signed requests, seconds.
    pub skew_window_secs: i64,
}

impl Default for NetworkSection {
    fn default() -> Self {
        Self {
            ledger_url: "http://127.0.0.1:7100".into(),
            coordinator_url: "http://127.0.0.1:7200".into(),
            coordinator_hotkey: None,
            coldkey_file: None,
            stake: 0,
            skew_window_secs: 120,
        }
    }
}

/// Settings of the coordinator role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoordinatorSection {
    /// Who may publish rounds. With none set, nobody can.
    pub operators: Vec<PublicKey>,
    /// Secure-compute intake (the tee lane).
    pub compute: ComputeSection,
    /// Proven jobs (the stark lane).
    pub jobs: JobsSection,
    /// The build lane's verification API.
    pub builds: BuildsSection,
    /// Who may submit jobs and claim compute, and how often.
    pub clients: ClientsSection,
}

/// The gate in front of job submissions and compute claims: a client key needs bonded stake
/// on the ledger (so a thousand fresh keys cost a thousand stakes) and is rate-limited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientsSection {
    /// Least stake bonded to the client key (registered or waiting for registration, as
    /// `hallmark stake` bonds it). 0 admits any key; the rate limits still apply.
    pub min_stake: u64,
    /// Job submissions and claims one client key may make per minute (also the burst).
    pub per_minute: u32,
    /// Most jobs of one client waiting for or held by a worker.
    pub max_open_jobs: u64,
    /// Ledger look-ups per second for keys whose stake is not cached; past it, 429 `busy`.
    pub lookups_per_sec: u32,
    /// How far in the past a job request's `created_ms` (and a consent's time) may be, s.
    pub max_request_age_secs: u64,
}

impl Default for ClientsSection {
    fn default() -> Self {
        Self {
            min_stake: 100,
            per_minute: 120,
            max_open_jobs: 256,
            lookups_per_sec: 20,
            max_request_age_secs: 24 * 3600,
        }
    }
}

/// How the coordinator takes wasm for verification and drives their build jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuildsSection {
    /// Verifications queued or building at once; more are refused with 429.
    pub max_open: u64,
    /// How long a verification may take from request to certificate, ms.
    pub timeout_ms: u64,
    /// How many build jobs a verification may open (a rejected claim opens another).
    pub max_attempts: u64,
    /// The largest wasm taken, bytes.
    pub max_wasm_bytes: usize,
    /// The largest source archive taken, bytes.
    pub max_source_bytes: usize,
    /// All stored wasm and source archives together, bytes.
    pub max_blob_bytes_total: u64,
    /// How often open verifications are driven, ms.
    pub poll_ms: u64,
    /// Search: images (`host/repo@sha256:…`) to try for a wasm with a source but no recipe.
    pub search_images: Vec<String>,
    /// Search: option sets to try with each image (`[]` is a plain `contract build`).
    pub search_opts: Vec<Vec<String>>,
    /// Search: most candidate recipes one wasm gets.
    pub max_candidates: usize,
}

impl Default for BuildsSection {
    fn default() -> Self {
        Self {
            max_open: 64,
            timeout_ms: 30 * 60 * 1000,
            max_attempts: 3,
            max_wasm_bytes: 1 << 20,
            max_source_bytes: 32 << 20,
            max_blob_bytes_total: 4 << 30,
            poll_ms: 500,
            search_images: Vec::new(),
            search_opts: vec![Vec::new()],
            max_candidates: 16,
        }
    }
}

/// How the coordinator hands out proven jobs and counts their votes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsSection {
    /// How long a worker holds a job before it is presumed dead and the job is queued again.
    pub lease_ms: u64,
    /// Share of validator stake (numerator, denominator) whose valid votes approve a proof.
    pub quorum: (u64, u64),
    /// Most jobs waiting for a worker; more are refused with `429 queue_full`.
    pub max_queued: u64,
    /// How often settled jobs and equivocation evidence are taken to the ledger.
    pub settle_poll_ms: u64,
}

impl Default for JobsSection {
    fn default() -> Self {
        Self {
            lease_ms: 120_000,
            quorum: (2, 3),
            max_queued: 10_000,
            settle_poll_ms: 1_000,
        }
    }
}

/// How the coordinator checks and lists secure-compute providers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputeSection {
    /// How long an evidence nonce stays usable, seconds.
    pub nonce_ttl_secs: u64,
    /// How long a certificate keeps a node listed, seconds.
    pub listing_ttl_secs: u64,
    /// The longest claim a client may take, seconds.
    pub max_lease_secs: u64,
    /// How long after a claim expires before someone else may reclaim it, seconds.
    pub claim_margin_secs: u64,
    /// The terms providers consent to (by SHA-256).
    pub terms: String,
}

impl Default for ComputeSection {
    fn default() -> Self {
        Self {
            nonce_ttl_secs: 300,
            listing_ttl_secs: 24 * 3600,
            max_lease_secs: 7 * 24 * 3600,
            claim_margin_secs: 60,
            terms: "hallmark secure-compute terms v1: the provider runs offered capacity in a TDX \
confidential VM with the offered NVIDIA GPUs in confidential-compute mode, answers evidence \
nonces only with evidence produced for them, and accepts that health, claims and usage are \
signed and logged by the coordinator."
                .into(),
        }
    }
}

/// A second opinion a validator runs beside a lane's own verifier before it votes: the job is
/// on the command's stdin as JSON (`{lane, job_id, spec, artifact_base64, verdict}`); exit 0
/// agrees. The SHA-256 of the executable, read at each run, is in the vote's log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalVerifierSection {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// SHA-256 digests (hex) of executables whose opinion counts; empty: any.
    pub allowlist: Vec<String>,
    /// How long it may run, seconds.
    pub timeout_secs: u64,
}

impl Default for ExternalVerifierSection {
    fn default() -> Self {
        Self {
            command: Vec::new(),
            allowlist: Vec::new(),
            timeout_secs: 30,
        }
    }
}

/// Settings of the validator role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidatorSection {
    pub dethrone_margin: f64,
    /// Quorum numerator/denominator of validator stake.
    pub quorum: (u64, u64),
    /// How long after a round's deadline scoring starts.
    pub grace_ms: u64,
    /// How long to wait for peers' reports.
    pub collect_timeout_ms: u64,
    pub poll_ms: u64,
    /// Drop a peer report whose scores do not hash to the peer's ledger commitment (and a
    /// report from a peer that made none before the collection deadline).
    pub enforce_commitments: bool,
    /// Whose winner the validator's weights follow.
    pub weight_mode: WeightMode,
    /// How many most recent runs the divergence summary covers.
    pub divergence_window: u32,
    /// k of the top-k overlap.
    pub divergence_top_k: usize,
    /// External verifiers by job lane, run beside the lane's verifier before every vote.
    pub external_verifiers: std::collections::BTreeMap<String, ExternalVerifierSection>,
    /// How decided rounds become weight vectors ([`hallmark_consensus::weights`]).
    pub weights: WeightRulesSection,
    /// Where the lanes' self-tests find real evidence (captured quotes, tokens, wasm, laid out
    /// as the project's test data); unset, the evidence-backed self-tests fail, named.
    pub evidence_dir: Option<std::path::PathBuf>,
}

/// Whose pick a validator's weights follow: the rollout goes owner → shadow → decentralized.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WeightMode {
    /// Copy the coordinator's (owner's) pick.
    Owner,
    /// Compute consensus, but set the owner's pick and record the divergence.
    Shadow,
    /// Set the consensus result.
    #[default]
    Decentralized,
}

impl WeightMode {
    /// The config/wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            WeightMode::Owner => "owner",
            WeightMode::Shadow => "shadow",
            WeightMode::Decentralized => "decentralized",
        }
    }
}

impl std::str::FromStr for WeightMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(WeightMode::Owner),
            "shadow" => Ok(WeightMode::Shadow),
            "decentralized" => Ok(WeightMode::Decentralized),
            _ => Err(format!(
                "weight mode {s:?}: expected owner, shadow or decentralized"
            )),
        }
    }
}

impl Default for ValidatorSection {
    fn default() -> Self {
        Self {
            dethrone_margin: 0.02,
            quorum: (2, 3),
            grace_ms: 300,
            collect_timeout_ms: 15_000,
            poll_ms: 200,
            enforce_commitments: true,
            weight_mode: WeightMode::Decentralized,
            divergence_window: 100,
            divergence_top_k: 3,
            external_verifiers: std::collections::BTreeMap::new(),
            evidence_dir: None,
            weights: WeightRulesSection::default(),
        }
    }
}

/// `[validator.weights]`: the weight rules. The defaults (one round, the lane's own class)
/// are winner-take-all per round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeightRulesSection {
    /// Rows of this many most recent rounds count, the one being decided included (1..=1000).
    pub window_rounds: u64,
    /// Allowed classes by lane: the lane itself (`sat`) and tiers of it (`sat-t2`). A lane
    /// not listed allows its own class only.
    pub classes: std::collections::BTreeMap<String, Vec<String>>,
    /// When an allowed class has no row in the window: `proportional` (its share goes to the
    /// others, and the round result says so) or `hold` (no weights this epoch).
    pub missing_class: hallmark_consensus::weights::MissingClassRule,
}

impl Default for WeightRulesSection {
    fn default() -> Self {
        Self {
            window_rounds: 1,
            classes: std::collections::BTreeMap::new(),
            missing_class: hallmark_consensus::weights::MissingClassRule::Proportional,
        }
    }
}

impl WeightRulesSection {
    /// The rules for `lane`.
    pub fn rules_for(&self, lane: &str) -> hallmark_consensus::weights::WeightRules {
        hallmark_consensus::weights::WeightRules {
            window_rounds: self.window_rounds,
            allowlist: self
                .classes
                .get(lane)
                .cloned()
                .unwrap_or_else(|| vec![lane.to_string()]),
            missing: self.missing_class,
        }
    }
}

/// Settings of the worker role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSection {
    pub poll_ms: u64,
    /// Claim and work jobs (every job lane this worker has an executor for).
    pub prove_jobs: bool,
}

impl Default for WorkerSection {
    fn default() -> Self {
        Self {
            poll_ms: 200,
            prove_jobs: true,
        }
    }
}

/// A node's whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    pub name: String,
    /// Address to listen on; port 0 picks a free port.
    pub listen: String,
    pub data_dir: PathBuf,
    /// Where this node's tables live: unset for SQLite in `data_dir`, or a `postgres://` URL
    /// (also `HALLMARK_DATABASE_URL`), where the node keeps its tables in its own schema.
    pub store: Option<String>,
    /// The PostgreSQL schema for this node's tables (default `hallmark_<name>`); nodes sharing
    /// a database need different ones.
    pub store_schema: Option<String>,
    /// The hotkey seed file; created if missing.
    pub key_file: Option<PathBuf>,
    /// If set, the bound address (`http://ip:port`) is written here once listening.
    pub addr_file: Option<PathBuf>,
    pub ledger: LedgerSection,
    pub network: NetworkSection,
    pub coordinator: CoordinatorSection,
    pub validator: ValidatorSection,
    pub worker: WorkerSection,
    /// The HTTP server's limits: timeouts and a connection cap.
    pub http: crate::server::ServerLimits,
    /// Each lane's own settings by lane name (`[lanes.tee]`: trust profile, policy, keys),
    /// read by the lane's registry line.
    pub lanes: std::collections::BTreeMap<String, toml::Value>,
    /// Fault injection (devnet and tests only): what this node is told to do wrong.
    pub faults: crate::faults::Faults,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            name: "node".into(),
            listen: "127.0.0.1:0".into(),
            data_dir: PathBuf::from(".hallmark/node"),
            store: None,
            store_schema: None,
            key_file: None,
            addr_file: None,
            ledger: LedgerSection::default(),
            network: NetworkSection::default(),
            coordinator: CoordinatorSection::default(),
            validator: ValidatorSection::default(),
            worker: WorkerSection::default(),
            http: crate::server::ServerLimits::default(),
            lanes: std::collections::BTreeMap::new(),
            faults: crate::faults::Faults::default(),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

impl NodeConfig {
    /// Loads a TOML file (or defaults when `path` is `None`) and applies environment overrides:
    /// `HALLMARK_LISTEN`, `HALLMARK_DATA_DIR`, `HALLMARK_DATABASE_URL`, `HALLMARK_LEDGER_URL`,
    /// `HALLMARK_COORDINATOR_URL`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut cfg = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: p.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => NodeConfig::default(),
        };
        cfg.apply_env(|k| std::env::var(k).ok());
        Ok(cfg)
    }

    /// Applies `HALLMARK_*` overrides from `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        if let Some(v) = get("HALLMARK_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("HALLMARK_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("HALLMARK_DATABASE_URL").filter(|v| !v.is_empty()) {
            self.store = Some(v);
        }
        if let Some(v) = get("HALLMARK_LEDGER_URL") {
            self.network.ledger_url = v;
        }
        if let Some(v) = get("HALLMARK_COORDINATOR_URL") {
            self.network.coordinator_url = v;
        }
    }

    /// The hotkey file path (default `<data_dir>/hotkey`).
    pub fn key_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("hotkey"))
    }

    /// The database path (`<data_dir>/<name>.sqlite`) when the store is SQLite.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(format!("{}.sqlite", self.name))
    }

    /// The PostgreSQL schema this node uses when `store` is a `postgres://` URL.
    pub fn schema(&self) -> String {
        self.store_schema
            .clone()
            .unwrap_or_else(|| hallmark_store::backend::postgres::schema_for_node(&self.name))
    }

    /// Opens this node's store: SQLite at [`NodeConfig::db_path`], or the configured URL.
    pub async fn open_store(&self) -> Result<hallmark_store::Store, hallmark_store::StoreError> {
        use hallmark_store::{Store, StoreUrl};
        match self.store.as_deref() {
            None => Store::open(&self.db_path()).await,
            Some(url) => match StoreUrl::parse(url)? {
                StoreUrl::Sqlite(u) => Store::open_url(&u).await,
                StoreUrl::Postgres(u) => Store::open_postgres(&u, &self.schema()).await,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_roundtrip_env_and_unknown_keys() {
        let mut cfg = NodeConfig::default();
        cfg.faults.invert_scores = true;
        let text = toml::to_string(&cfg).unwrap();
        let back: NodeConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, cfg);
        assert!(toml::from_str::<NodeConfig>("lisen = \"x\"").is_err());
        let mut cfg = NodeConfig::default();
        cfg.apply_env(|k| (k == "HALLMARK_LISTEN").then(|| "127.0.0.1:9".to_string()));
        assert_eq!(cfg.listen, "127.0.0.1:9");
        assert_eq!(
            "validator".parse::<RoleName>().unwrap(),
            RoleName::Validator
        );
        assert!("miner".parse::<RoleName>().is_err());
    }

    #[tokio::test]
    async fn the_store_comes_from_config_or_environment_and_bad_urls_are_refused() {
        let mut cfg = NodeConfig {
            name: "validator-0".into(),
            ..NodeConfig::default()
        };
        assert_eq!(cfg.schema(), "hallmark_validator_0");
        cfg.apply_env(|k| {
            (k == "HALLMARK_DATABASE_URL").then(|| "postgres://u:p@db/net".to_string())
        });
        assert_eq!(cfg.store.as_deref(), Some("postgres://u:p@db/net"));
        // An empty variable does not clear a configured store.
        cfg.apply_env(|k| (k == "HALLMARK_DATABASE_URL").then(String::new));
        assert!(cfg.store.is_some());
        cfg.store = Some("mysql://u:secret@db/net".into());
        let err = cfg.open_store().await.unwrap_err().to_string();
        assert!(err.contains("expected a sqlite: or postgres://"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        cfg.store_schema = Some("Robert'); DROP TABLE jobs;--".into());
        cfg.store = Some("postgres://u:p@127.0.0.1:1/net".into());
        let err = cfg.open_store().await.unwrap_err().to_string();
        assert!(err.contains("schema"), "{err}");
    }
}
