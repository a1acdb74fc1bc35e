//! [`Ledger`] over HTTP: how every role other than the ledger reaches it.

use async_trait::async_trait;
use hallmark_consensus::commitment::EquivocationEvidence;
use hallmark_core::{PublicKey, Signed};
use hallmark_ledger::{
    Commitment, ConfidentialAccount, Ledger, LedgerError, LedgerTx, Metagraph, SettledJob, Slash,
    StakeInfo, TxReceipt, ValidatorWeights, YumaEpoch,
};

use crate::client::{ClientError, NodeClient};
use crate::ledger_service::{AccountInfo, FaucetDrip, FaucetRequest, LedgerInfo};

/// A remote devnet ledger.
#[derive(Debug, Clone)]
pub struct HttpLedger {
    client: NodeClient,
}

impl HttpLedger {
    /// A ledger at `url`.
    pub fn new(url: &str) -> Self {
        Self {
            client: NodeClient::new(url),
        }
    }

    /// The chain id transactions must carry.
    pub async fn chain_id(&self) -> Result<String, LedgerError> {
        let info: LedgerInfo = self
            .client
            .get("/v1/ledger/info")
            .await
            .map_err(to_ledger)?;
        Ok(info.chain_id)
    }

    /// The chain id, the ledger's rules and its faucet.
    pub async fn info(&self) -> Result<LedgerInfo, LedgerError> {
        self.client.get("/v1/ledger/info").await.map_err(to_ledger)
    }

    /// Asks the devnet faucet for a drip to `address`.
    pub async fn faucet(&self, address: &PublicKey) -> Result<FaucetDrip, LedgerError> {
        self.client
            .post("/v1/ledger/faucet", &FaucetRequest { address: *address })
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
        self.client
            .get(&format!("/v1/ledger/build-info?since_seq={since_seq}"))
            .await
            .map_err(to_ledger)
    }

    /// Who may write the build-info registry, and the council that decides it.
    pub async fn build_managers(&self) -> Result<hallmark_ledger::BuildManagers, LedgerError> {
        self.client
            .get("/v1/ledger/build-managers")
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
        match self.client.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(to_ledger(e)),
        }
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
        self.client
            .post("/v1/ledger/tx", tx.envelope())
            .await
            .map_err(to_ledger)
    }

    async fn metagraph(&self) -> Result<Metagraph, LedgerError> {
        self.client
            .get("/v1/ledger/metagraph")
            .await
            .map_err(to_ledger)
    }

    async fn weights(&self, lane: &str, epoch: u64) -> Result<Vec<ValidatorWeights>, LedgerError> {
        self.client
            .get(&format!(
                "/v1/ledger/weights/{epoch}?lane={}",
                query_value(lane)
            ))
            .await
            .map_err(to_ledger)
    }

    async fn balance(&self, account: &PublicKey) -> Result<(u64, u64), LedgerError> {
        let a: AccountInfo = self
            .client
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
            .client
            .get(&format!("/v1/ledger/commitments/{validator}/{run_id}"))
            .await
        {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(to_ledger(e)),
        }
    }

    async fn equivocations(&self) -> Result<Vec<EquivocationEvidence>, LedgerError> {
        self.client
            .get("/v1/ledger/equivocations")
            .await
            .map_err(to_ledger)
    }

    async fn yuma_epoch(&self, lane: &str, epoch: u64) -> Result<YumaEpoch, LedgerError> {
        self.client
            .get(&format!(
                "/v1/ledger/epochs/{epoch}/yuma?lane={}",
                query_value(lane)
            ))
            .await
            .map_err(to_ledger)
    }

    async fn slashes(&self) -> Result<Vec<Slash>, LedgerError> {
        self.client
            .get("/v1/ledger/slashes")
            .await
            .map_err(to_ledger)
    }

    async fn settled_job(&self, job_id: &str) -> Result<Option<SettledJob>, LedgerError> {
        let path = format!(
            "/v1/ledger/jobs/{}",
            percent_encoding::utf8_percent_encode(job_id, percent_encoding::NON_ALPHANUMERIC)
        );
        match self.client.get(&path).await {
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
