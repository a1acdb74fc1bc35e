//! Starting a role: data dir, keys, store, listener, registration, background loops, and a
//! graceful shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hallmark_core::{Keypair, PublicKey};
use hallmark_ledger::{DevnetLedger, Genesis, Role};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::NodeClient;
use crate::compute::{self, ComputeIntake};
use crate::config::{NodeConfig, RoleName};
use crate::coordinator::{self, Coordinator};
use crate::http_ledger::HttpLedger;
use crate::jobs::{self, JobBoard, JobProver, JobVoter};
use crate::lanes::LaneRegistry;
use crate::registration::join;
use crate::server::ServerLimits;
use crate::validator::{self, Validator};
use crate::worker::{self, Worker};
use crate::{api, ledger_service};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] hallmark_store::StoreError),
    #[error("ledger: {0}")]
    Ledger(#[from] hallmark_ledger::LedgerError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("configuration: {0}")]
    Setting(#[from] crate::error::SettingError),
    #[error("key file {path}: {message}")]
    Key { path: String, message: String },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
    let what = what.into();
    move |source| NodeError::Io { what, source }
}

/// Reads a hex seed key file, or creates one (mode 0600) if it does not exist.
pub fn load_or_create_key(path: &Path) -> Result<Keypair, NodeError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Keypair::from_seed_hex(&text).map_err(|e| NodeError::Key {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let kp = Keypair::generate();
            write_secret(path, &kp.seed_hex())?;
            Ok(kp)
        }
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

/// Reads an existing hex seed key file.
pub fn load_key(path: &Path) -> Result<Keypair, NodeError> {
    let text =
        std::fs::read_to_string(path).map_err(io(format!("reading key {}", path.display())))?;
    Keypair::from_seed_hex(&text).map_err(|e| NodeError::Key {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Writes a secret file readable only by its owner, atomically.
pub fn write_secret(path: &Path, contents: &str) -> Result<(), NodeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(format!("creating {}", tmp.display())))?;
    f.write_all(contents.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("renaming to {}", path.display())))
}

/// A node started in this process.
pub struct RunningNode {
    pub addr: SocketAddr,
    pub hotkey: PublicKey,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningNode {
    /// The node's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and the background loops, and waits for them.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Serves `router` on `listener` with the default [`ServerLimits`] until `shutdown` turns
/// true, every error answer in the JSON wire shape.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: watch::Receiver<bool>,
) {
    serve_with(listener, router, ServerLimits::default(), shutdown).await
}

/// [`serve`] under `limits`.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: watch::Receiver<bool>,
) {
    let app = router.layer(axum::middleware::from_fn(api::wire_errors));
    crate::server::serve(listener, app, limits, shutdown).await
}

/// Starts `role` as configured: binds, registers on the ledger (validators and workers), and
/// runs until [`RunningNode::stop`]. Runs the standard lanes ([`LaneRegistry::standard`]).
pub async fn run_node(role: RoleName, cfg: &NodeConfig) -> Result<RunningNode, NodeError> {
    let lanes = LaneRegistry::standard(cfg).map_err(|e| NodeError::Config(e.to_string()))?;
    run_node_with(role, cfg, lanes).await
}

/// [`run_node`] with the lanes of `lanes` instead of the standard ones (a test adds its own).
pub async fn run_node_with(
    role: RoleName,
    cfg: &NodeConfig,
    lanes: LaneRegistry,
) -> Result<RunningNode, NodeError> {
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(io(format!("creating {}", cfg.data_dir.display())))?;
    let key = load_or_create_key(&cfg.key_path())?;
    let store = cfg.open_store().await?;
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(io(format!("binding {}", cfg.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(io("reading the bound address"))?;
    let url = format!("http://{addr}");
    let (tx, rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let coordinator_hotkey = || {
        cfg.network
            .coordinator_hotkey
            .ok_or_else(|| NodeError::Config("network.coordinator_hotkey must be set: rounds are only trusted from a pinned coordinator key".into()))
    };
    let coldkey = || -> Result<Keypair, NodeError> {
        let path = cfg.network.coldkey_file.as_ref().ok_or_else(|| {
            NodeError::Config("network.coldkey_file must be set to register on the ledger".into())
        })?;
        load_key(path)
    };

    let metrics = Arc::new(
        crate::metrics::NodeMetrics::new(&format!("{role:?}").to_lowercase())
            .and_then(|m| match role {
                RoleName::Worker => Ok(m),
                _ => m.with_log(),
            })
            .map_err(|e| NodeError::Config(e.to_string()))?,
    );
    // What each role reads into its gauges when scraped.
    let mut refresh = crate::metrics::no_refresh();
    let log_gauge = |log: hallmark_store::TransparencyLog| -> crate::metrics::Refresh {
        let m = metrics.clone();
        Arc::new(move || {
            let (m, log) = (m.clone(), log.clone());
            Box::pin(async move {
                m.log_leaves
                    .set(i64::try_from(log.size().await).unwrap_or(i64::MAX));
            })
        })
    };
    // Each role's OpenAPI description grows with the routes it mounts.
    let mut spec = crate::openapi::ApiSpec::new(&format!("{role:?}").to_lowercase());
    crate::metrics::describe(&mut spec);
    let router = match role {
        RoleName::Ledger => {
            let genesis = Genesis {
                chain_id: cfg.ledger.chain_id.clone(),
                balances: cfg
                    .ledger
                    .genesis
                    .iter()
                    .map(|g| (g.account, g.balance))
                    .collect(),
            };
            let params = cfg.ledger.params()?;
            let faucet = match &cfg.ledger.faucet.key_file {
                Some(path) => Some(ledger_service::Faucet::new(
                    load_key(path)?,
                    cfg.ledger.faucet.amount,
                    cfg.ledger.faucet.interval_secs,
                    cfg.ledger.faucet.budget,
                )),
                None => None,
            };
            let ledger =
                Arc::new(DevnetLedger::open(store, &genesis, params.clone(), key.clone()).await?);
            refresh = log_gauge(ledger.log().clone());
            let router = ledger_service::router(ledger.clone(), key.clone(), faucet);
            ledger_service::describe(&mut spec);
            crate::log_routes::describe(&mut spec);
            if cfg.ledger.bft.enabled {
                crate::replicated_ledger::describe(&mut spec);
                let (replica, task) = crate::replicated_ledger::start(
                    &cfg.ledger.bft,
                    ledger.clone(),
                    &key,
                    cfg.data_dir.join("bft"),
                    genesis,
                    params,
                    rx.clone(),
                )
                .await?;
                tasks.push(task);
                router.merge(crate::replicated_ledger::routes(replica, ledger))
            } else {
                router
            }
        }
        RoleName::Coordinator => {
            let log = hallmark_store::TransparencyLog::open(&store).await?;
            let board = Arc::new(JobBoard::new(
                store.clone(),
                key.clone(),
                HttpLedger::new(&cfg.network.ledger_url),
                cfg.coordinator.jobs.clone(),
                lanes.clone(),
                cfg.coordinator.clients.clone(),
                cfg.network.skew_window_secs,
            )?);
            tasks.push(tokio::spawn(board.clone().run_settler(rx.clone())));
            let intake = Arc::new(ComputeIntake::new(
                store.clone(),
                log.clone(),
                key.clone(),
                cfg.coordinator.compute.clone(),
                board.clone(),
                cfg.network.skew_window_secs,
            )?);
            let poll = Duration::from_millis(cfg.coordinator.jobs.settle_poll_ms.max(50));
            tasks.push(tokio::spawn(
                intake.clone().run_attestations(poll, rx.clone()),
            ));
            let builds = lanes.build_support().map(|support| {
                Arc::new(crate::builds::BuildService::new(
                    store.clone(),
                    key.clone(),
                    board.clone(),
                    support.clone(),
                    HttpLedger::new(&cfg.network.ledger_url),
                    cfg.coordinator.builds.clone(),
                    cfg.coordinator.operators.clone(),
                    cfg.network.skew_window_secs,
                ))
            });
            if let Some(b) = &builds {
                tasks.push(tokio::spawn(b.clone().run_loop(rx.clone())));
            }
            let runs = crate::runs::RunService::needed(&lanes).then(|| {
                Arc::new(crate::runs::RunService::new(
                    store.clone(),
                    key.clone(),
                    lanes.clone(),
                    HttpLedger::new(&cfg.network.ledger_url),
                    cfg.faults.clone(),
                    cfg.network.skew_window_secs,
                ))
            });
            if let Some(r) = &runs {
                tasks.push(tokio::spawn(r.clone().run_loop(rx.clone())));
            }
            let origin = intake.log_origin().to_string();
            refresh = {
                let (m, log, store) = (metrics.clone(), log.clone(), store.clone());
                Arc::new(move || {
                    let (m, log, store) = (m.clone(), log.clone(), store.clone());
                    Box::pin(async move {
                        m.log_leaves
                            .set(i64::try_from(log.size().await).unwrap_or(i64::MAX));
                        for status in ["queued", "assigned", "proven"] {
                            if let Ok(n) = store.count_jobs(status).await {
                                m.queue_depth
                                    .with_label_values(&[&format!("jobs_{status}")])
                                    .set(i64::try_from(n).unwrap_or(i64::MAX));
                            }
                        }
                    })
                })
            };
            let consents = Arc::new(crate::consents::ConsentBook::new(
                store.clone(),
                log.clone(),
                HttpLedger::new(&cfg.network.ledger_url),
                cfg.network.skew_window_secs,
            ));
            let dashboard = Arc::new(crate::dashboard::Dashboard::new(
                store.clone(),
                log.clone(),
                HttpLedger::new(&cfg.network.ledger_url),
                lanes.clone(),
            ));
            let c = Coordinator::new(
                store,
                key.clone(),
                cfg.coordinator.operators.clone(),
                lanes.clone(),
                cfg.network.skew_window_secs,
            );
            coordinator::describe(&mut spec);
            compute::intake::describe(&mut spec);
            crate::consents::describe(&mut spec);
            crate::dashboard::describe(&mut spec);
            jobs::board::describe(&mut spec);
            if builds.is_some() {
                crate::builds::describe(&mut spec);
            }
            if runs.is_some() {
                crate::runs::describe(&mut spec);
            }
            crate::log_routes::describe(&mut spec);
            coordinator::router(Arc::new(c))
                .merge(compute::router(intake))
                .merge(crate::consents::router(consents))
                .merge(crate::dashboard::router(dashboard))
                .merge(jobs::board::router(board))
                .merge(match builds {
                    Some(b) => crate::builds::router(b),
                    None => Router::new(),
                })
                .merge(match runs {
                    Some(r) => crate::runs::router(r),
                    None => Router::new(),
                })
                .merge(crate::log_routes::router(log, origin, key.clone()))
        }
        RoleName::Validator => {
            Validator::check_config(&cfg.validator)?;
            // Every setting is checked before the node registers anywhere.
            let log = hallmark_store::TransparencyLog::open(&store).await?;
            let voter = Arc::new(JobVoter::new(
                store.clone(),
                log.clone(),
                key.clone(),
                NodeClient::new(&cfg.network.coordinator_url),
                lanes.clone(),
                cfg.validator.external_verifiers.clone(),
                cfg.faults.clone(),
                Duration::from_millis(cfg.validator.poll_ms.max(20)),
                metrics.clone(),
            )?);
            let pinned = coordinator_hotkey()?;
            let ledger = HttpLedger::new(&cfg.network.ledger_url);
            join(
                &ledger,
                Some(&coldkey()?),
                &key,
                Role::Validator,
                cfg.network.stake,
                &url,
            )
            .await?;
            tasks.push(tokio::spawn(voter.run_loop(rx.clone())));
            let v = Arc::new(Validator::new(
                store,
                log,
                key.clone(),
                ledger,
                NodeClient::new(&cfg.network.coordinator_url),
                pinned,
                cfg.validator.clone(),
                cfg.faults.clone(),
                lanes.clone(),
                cfg.network.skew_window_secs,
                metrics.clone(),
            ));
            refresh = {
                let (m, v) = (metrics.clone(), v.clone());
                Arc::new(move || {
                    let (m, v) = (m.clone(), v.clone());
                    Box::pin(async move {
                        m.log_leaves
                            .set(i64::try_from(v.log.size().await).unwrap_or(i64::MAX));
                        let undecided = v.undecided.lock().await.len();
                        m.queue_depth
                            .with_label_values(&["rounds_undecided"])
                            .set(i64::try_from(undecided).unwrap_or(i64::MAX));
                    })
                })
            };
            tasks.push(tokio::spawn(v.clone().run_loop(rx.clone())));
            tokio::spawn(v.clone().run_self_tests());
            validator::describe(&mut spec);
            crate::log_routes::describe(&mut spec);
            validator::router(v)
        }
        RoleName::Worker => {
            let pinned = coordinator_hotkey()?;
            let ledger = HttpLedger::new(&cfg.network.ledger_url);
            let cold = match &cfg.network.coldkey_file {
                Some(path) => Some(load_key(path)?),
                None => None,
            };
            join(
                &ledger,
                cold.as_ref(),
                &key,
                Role::Worker,
                cfg.network.stake,
                &url,
            )
            .await?;
            let (chain_id, every) = crate::registration::heartbeat_schedule(&ledger).await?;
            tasks.push(tokio::spawn(crate::registration::heartbeat_loop(
                ledger.clone(),
                chain_id,
                key.clone(),
                every,
                rx.clone(),
            )));
            let w = Arc::new(Worker::new(
                key.clone(),
                ledger,
                NodeClient::new(&cfg.network.coordinator_url),
                pinned,
                cfg.worker.clone(),
                cfg.faults.clone(),
                lanes.clone(),
            ));
            tasks.push(tokio::spawn(w.clone().run_loop(rx.clone())));
            let mut router = worker::router(w);
            worker::describe(&mut spec);
            if cfg.worker.prove_jobs {
                jobs::prover::describe(&mut spec);
                let prover = Arc::new(JobProver::new(
                    key.clone(),
                    NodeClient::new(&cfg.network.coordinator_url),
                    lanes.clone(),
                    cfg.faults.clone(),
                    Duration::from_millis(cfg.worker.poll_ms.max(20)),
                ));
                tasks.push(tokio::spawn(prover.clone().run_loop(rx.clone())));
                router = router.merge(jobs::prover::router(prover));
            }
            router
        }
    };
    let router = crate::openapi::attach(crate::metrics::instrument(router, metrics, refresh), spec);
    tasks.push(tokio::spawn(serve_with(
        listener,
        router,
        cfg.http.clone(),
        rx,
    )));
    if let Some(path) = &cfg.addr_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &url).map_err(io(format!("writing {}", tmp.display())))?;
        std::fs::rename(&tmp, path).map_err(io(format!("writing {}", path.display())))?;
    }
    if cfg.faults.any() {
        tracing::warn!(faults = ?cfg.faults, "fault injection is on: this node misbehaves on purpose");
    }
    tracing::info!(role = ?role, %url, hotkey = %key.public(), "node started");
    Ok(RunningNode {
        addr,
        hotkey: key.public(),
        shutdown: tx,
        tasks,
    })
}
