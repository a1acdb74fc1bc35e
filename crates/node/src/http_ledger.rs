//! [`Ledger`] over HTTP: how every role other than the ledger reaches it.

use async_trait::async_trait;
use hallmark_consensus::commitment::EquivocationEvidence;
use hallmark_core::{PublicKey, Signed};
use hallmark_ledger::{
    Commitment, ConfidentialAccount, Ledger, LedgerError, LedgerTx, Metagraph, SettledJob, Slash,
    StakeInfo, TxReceipt, ValidatorWeights, YumaEpoch,
};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::client::{ClientError, NodeClient};
use crate::ledger_service::{AccountInfo, FaucetDrip, FaucetRequest, LedgerInfo};

/// A remote ledger, reached through any of its replicas: a call that cannot reach one (or
/// gets a 5xx) tries the next, and the one that answered is tried first next time.
#[derive(Debug, Clone)]
pub struct HttpLedger {
    replicas: Arc<[NodeClient]>,
    preferred: Arc<AtomicUsize>,
}

impl HttpLedger {
    /// A ledger at `url`, or at any of several comma-separated replica URLs.
    pub fn new(url: &str) -> Self {
        let urls: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let replicas: Vec<NodeClient> = if urls.is_empty() {
            vec![NodeClient::new(url)]
        } else {
            urls.into_iter().map(NodeClient::new).collect()
        };
        Self {
            replicas: replicas.into(),
            preferred: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `call` on the preferred replica, then on each other one while the failure says
    /// the replica is unreachable or broken (no answer, 5xx). A refusal (4xx) is an answer.
    /// Writes fail over only when the request never reached a replica, so a transaction is
    /// never sent twice.
    async fn failover<T, F, Fut>(&self, write: bool, call: F) -> Result<T, ClientError>
    where
        F: Fn(NodeClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let n = self.replicas.len();
        let first = self.preferred.load(Ordering::Relaxed) % n;
        let mut last = None;
        for i in 0..n {
            let at = (first + i) % n;
            match call(self.replicas[at].clone()).await {
                Ok(v) => {
                    self.preferred.store(at, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) if retry_elsewhere(&e, write) => {
                    tracing::debug!(error = %e, "ledger replica failed: trying the next");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(ClientError::Decode {
            url: String::new(),
            message: "no ledger replica configured".into(),
        }))
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.failover(false, |c| async move { c.get(path).await })
            .await
    }

    async fn post<B: serde::Serialize + Sync, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.failover(true, |c| async move { c.post(path, body).await })
            .await
    }

    /// The chain id transactions must carry.
    pub async fn chain_id(&self) -> Result<String, LedgerError> {
        let info: LedgerInfo = self.get("/v1/ledger/info").await.map_err(to_ledger)?;
        Ok(info.chain_id)
    }

    /// The chain id, the ledger's rules and its faucet.
    pub async fn info(&self) -> Result<LedgerInfo, LedgerError> {
        self.get("/v1/ledger/info").await.map_err(to_ledger)
    }

    /// Asks the devnet faucet for a drip to `address`.
    pub async fn faucet(&self, address: &PublicKey) -> Result<FaucetDrip, LedgerError> {
        self.post("/v1/ledger/faucet", &FaucetRequest { address: *address })
            .await
            .map_err(to_ledger)
    }

    /// The build-info registry's entry for a wasm.
    pub async fn build_info(
        &self,
        wasm_sha256: &str,
    ) -> Result<Option<hallmark_ledger::BuildInfo>, LedgerError> {
        self.get_optional(&format!("/v1/ledger/build-info/{wasm_sha256}"))
            .await
    }

    /// Registry entries written after transaction `since_seq`, oldest first.
    pub async fn build_infos_since(
        &self,
        since_seq: u64,
    ) -> Result<Vec<hallmark_ledger::BuildInfo>, LedgerError> {
        self.get(&format!("/v1/ledger/build-info?since_seq={since_seq}"))
            .await
            .map_err(to_ledger)
    }

    /// Who may write the build-info registry, and the council that decides it.
    pub async fn build_managers(&self) -> Result<hallmark_ledger::BuildManagers, LedgerError> {
        self.get("/v1/ledger/build-managers")
            .await
            .map_err(to_ledger)
    }

    /// The commitment to an eval archive's bytes, if any.
    pub async fn archive_commit(
        &self,
        archive_sha256: &str,
    ) -> Result<Option<hallmark_ledger::ArchiveCommit>, LedgerError> {
        self.get_optional(&format!("/v1/ledger/archives/{archive_sha256}"))
            .await
    }

    /// The ledger anchor at `at_ms` (`None` until a transaction is applied at or after it).
    pub async fn anchor(
        &self,
        at_ms: i64,
    ) -> Result<Option<hallmark_ledger::LedgerAnchor>, LedgerError> {
        self.get_optional(&format!("/v1/ledger/anchor?at_ms={at_ms}"))
            .await
    }

    async fn get_optional<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, LedgerError> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(to_ledger(e)),
        }
    }
}

/// Whether a failed call should be tried on another replica: reads on any transport failure
/// or 5xx; writes only when the connection was never made.
fn retry_elsewhere(e: &ClientError, write: bool) -> bool {
    match e {
        ClientError::Transport { source, .. } => !write || source.is_connect(),
        ClientError::Api { status, .. } => !write && *status >= 500,
        ClientError::Decode { .. } => false,
    }
}

fn to_ledger(e: ClientError) -> LedgerError {
    match &e {
        ClientError::Api { status, error, .. } if (400..500).contains(status) => {
            match error.code.as_str() {
                "bad_signature" => LedgerError::BadSignature(error.message.clone()),
                "not_registered" => LedgerError::NotRegistered(error.message.clone()),
                "unauthorized" => LedgerError::Unauthorized(error.message.clone()),
                _ => LedgerError::Rejected {
                    code: error.code.clone(),
                    message: error.message.clone(),
                },
            }
        }
        _ => LedgerError::Unavailable(e.to_string()),
    }
}

#[async_trait]
impl Ledger for HttpLedger {
    async fn submit(&self, tx: Signed<LedgerTx>) -> Result<TxReceipt, LedgerError> {
        self.post("/v1/ledger/tx", tx.envelope())
            .await
            .map_err(to_ledger)
    }

    async fn metagraph(&self) -> Result<Metagraph, LedgerError> {
        self.get("/v1/ledger/metagraph").await.map_err(to_ledger)
    }

    async fn weights(&self, lane: &str, epoch: u64) -> Result<Vec<ValidatorWeights>, LedgerError> {
        self.get(&format!(
            "/v1/ledger/weights/{epoch}?lane={}",
            query_value(lane)
        ))
        .await
        .map_err(to_ledger)
    }

    async fn balance(&self, account: &PublicKey) -> Result<(u64, u64), LedgerError> {
        let a: AccountInfo = self
            .get(&format!("/v1/ledger/accounts/{account}"))
            .await
            .map_err(to_ledger)?;
        Ok((a.balance, a.nonce))
    }

    async fn commitment(
        &self,
        validator: &PublicKey,
        run_id: &str,
    ) -> Result<Option<Commitment>, LedgerError> {
        match self
            .get(&format!("/v1/ledger/commitments/{validator}/{run_id}"))
            .await
        {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(to_ledger(e)),
        }
    }

    async fn equivocations(&self) -> Result<Vec<EquivocationEvidence>, LedgerError> {
        self.get("/v1/ledger/equivocations")
            .await
            .map_err(to_ledger)
    }

    async fn yuma_epoch(&self, lane: &str, epoch: u64) -> Result<YumaEpoch, LedgerError> {
        self.get(&format!(
            "/v1/ledger/epochs/{epoch}/yuma?lane={}",
            query_value(lane)
        ))
        .await
        .map_err(to_ledger)
    }

    async fn slashes(&self) -> Result<Vec<Slash>, LedgerError> {
        self.get("/v1/ledger/slashes").await.map_err(to_ledger)
    }

    async fn settled_job(&self, job_id: &str) -> Result<Option<SettledJob>, LedgerError> {
        let path = format!(
            "/v1/ledger/jobs/{}",
            percent_encoding::utf8_percent_encode(job_id, percent_encoding::NON_ALPHANUMERIC)
        );
        match self.get(&path).await {
            Ok(j) => Ok(Some(j)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(to_ledger(e)),
        }
    }

    async fn stake(&self, hotkey: &PublicKey) -> Result<Option<StakeInfo>, LedgerError> {
        self.get_optional(&format!("/v1/ledger/stakes/{hotkey}"))
            .await
    }

    async fn confidential_account(
        &self,
        hotkey: &PublicKey,
    ) -> Result<Option<ConfidentialAccount>, LedgerError> {
        self.get_optional(&format!("/v1/ledger/confidential/{hotkey}"))
            .await
    }
}

/// A query-string value, percent-encoded.
fn query_value(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}
