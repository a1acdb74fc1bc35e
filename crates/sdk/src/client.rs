//! [`Client`]: the network's public endpoints as typed calls.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use hallmark_core::{Keypair, PublicKey, Signed};
use hallmark_ledger::{Ledger as _, LedgerError, Metagraph, TxBody, TxReceipt};
use hallmark_log::Receipt;
use hallmark_node::http_ledger::HttpLedger;
use hallmark_node::jobs::{JobRequest, JobStatus, JobView};
use hallmark_node::ledger_service::FaucetDrip;
use hallmark_node::NodeClient;
use hallmark_stark::{JobSpec, VerifiedProof, Verifier};
use serde::Deserialize;

use crate::SdkError;

/// Where a network's nodes answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The coordinator (empty for a ledger-only client: see [`Endpoints::ledger`]).
    pub coordinator: String,
    /// The ledger, for metagraph, faucet and stake (`None`: those calls say so).
    pub ledger: Option<String>,
    /// Validators to read round results and receipts from (may be empty).
    pub validators: Vec<String>,
}

/// The fields of a devnet's `devnet.json` the SDK reads.
#[derive(Deserialize)]
struct DevnetFile {
    coordinator: String,
    ledger: String,
    #[serde(default)]
    validators: Vec<String>,
    #[serde(default)]
    ready: bool,
}

impl Endpoints {
    /// The endpoints of a running `hallmark devnet --keep-running --data-dir DIR`.
    pub fn devnet(dir: &Path) -> Result<Self, SdkError> {
        let path = dir.join("devnet.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            SdkError::Usage(format!(
                "devnet_unavailable: reading {}: {e} (is a devnet running with --keep-running?)",
                path.display()
            ))
        })?;
        let f: DevnetFile = serde_json::from_str(&text).map_err(|e| {
            SdkError::Usage(format!(
                "devnet_unavailable: {} is not a devnet file: {e}",
                path.display()
            ))
        })?;
        if !f.ready {
            return Err(SdkError::Usage(format!(
                "devnet_unavailable: the devnet in {} is not ready yet",
                dir.display()
            )));
        }
        Ok(Self {
            coordinator: f.coordinator,
            ledger: Some(f.ledger),
            validators: f.validators,
        })
    }

    /// A ledger alone (faucet, stake and ledger reads; coordinator calls say they need one).
    pub fn ledger(url: &str) -> Self {
        Self {
            coordinator: String::new(),
            ledger: Some(url.to_string()),
            validators: Vec::new(),
        }
    }

    /// A coordinator alone (jobs and proofs; no ledger calls).
    pub fn coordinator(url: &str) -> Self {
        Self {
            coordinator: url.to_string(),
            ledger: None,
            validators: Vec::new(),
        }
    }
}

/// How transient failures are retried: up to `attempts` tries, waiting `first_backoff`, then
/// twice as long each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_backoff: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// Runs `call` until it succeeds, fails for a reason retrying cannot change, or the
    /// attempts are spent.
    async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, SdkError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError>>,
    {
        let mut wait = self.first_backoff;
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e) if e.is_transient() && attempt < self.attempts.max(1) => {
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// A client of one network.
#[derive(Clone)]
pub struct Client {
    endpoints: Endpoints,
    coordinator: NodeClient,
    ledger: Option<HttpLedger>,
    key: Option<Keypair>,
    retry: RetryPolicy,
    /// The lanes job requests are checked against before they are sent; built on first use,
    /// so calls that submit no job never pay for them.
    lanes: std::sync::Arc<std::sync::OnceLock<hallmark_node::LaneRegistry>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints)
            .field("signs", &self.key.is_some())
            .field("retry", &self.retry)
            .finish()
    }
}

/// The ledger's refusals a retry can outlast.
fn ledger_error(e: LedgerError) -> SdkError {
    match e {
        LedgerError::Unavailable(message) => SdkError::Transport {
            url: "ledger".into(),
            message,
        },
        other => other.into(),
    }
}

impl Client {
    /// A client of the network at `endpoints`, once its coordinator and ledger answer.
    pub async fn connect(endpoints: Endpoints) -> Result<Self, SdkError> {
        Self::connect_with(endpoints, RetryPolicy::default()).await
    }

    /// [`Client::connect`], retrying transient failures (from the first call on) as `retry`
    /// says.
    pub async fn connect_with(endpoints: Endpoints, retry: RetryPolicy) -> Result<Self, SdkError> {
        let client = Self {
            coordinator: NodeClient::new(&endpoints.coordinator),
            ledger: endpoints.ledger.as_deref().map(HttpLedger::new),
            endpoints,
            key: None,
            retry,
            lanes: std::sync::Arc::new(std::sync::OnceLock::new()),
        };
        if !client.endpoints.coordinator.is_empty() {
            client
                .retry
                .run(|| async {
                    client
                        .coordinator
                        .get::<serde_json::Value>("/v1/health")
                        .await
                        .map_err(SdkError::from)
                })
                .await?;
        }
        if let Some(l) = &client.ledger {
            client
                .retry
                .run(|| async { l.chain_id().await.map_err(ledger_error) })
                .await?;
        }
        Ok(client)
    }

    fn coordinator_base(&self) -> Result<&str, SdkError> {
        if self.endpoints.coordinator.is_empty() {
            return Err(SdkError::Usage(
                "this call needs the coordinator: give its endpoint".into(),
            ));
        }
        Ok(&self.endpoints.coordinator)
    }

    fn coordinator(&self) -> Result<&NodeClient, SdkError> {
        self.coordinator_base()?;
        Ok(&self.coordinator)
    }

    fn ledger(&self) -> Result<&HttpLedger, SdkError> {
        self.ledger
            .as_ref()
            .ok_or_else(|| SdkError::Usage("this call reads the ledger: give its endpoint".into()))
    }

    /// The same client, signing job requests with `key` (a client key with stake bonded, where
    /// the network asks for it).
    pub fn with_key(mut self, key: Keypair) -> Self {
        self.key = Some(key);
        self
    }

    /// The same client, retrying transient failures as `retry` says.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The lanes requests are checked against (the standard ones), built on first use.
    pub fn lanes(&self) -> Result<&hallmark_node::LaneRegistry, SdkError> {
        if let Some(l) = self.lanes.get() {
            return Ok(l);
        }
        // Built quietly: what the standard lanes warn a node's operator about (no NVIDIA key
        // set configured, say) is not the client's business, and would land in its stderr.
        let built =
            tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
                hallmark_node::LaneRegistry::standard(&hallmark_node::NodeConfig::default())
            })
            .map_err(|e| SdkError::Usage(format!("the standard lanes: {e}")))?;
        Ok(self.lanes.get_or_init(|| built))
    }

    /// The endpoints this client talks to.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn key(&self) -> Result<&Keypair, SdkError> {
        self.key.as_ref().ok_or_else(|| {
            SdkError::Usage("this call signs: give the client a key (with_key)".into())
        })
    }

    /// Submits a job of `lane` with `spec` (the lane's spec as JSON), signed by the client's
    /// key. Submitting the same signed request again returns the same job, so the call is
    /// retried safely.
    pub async fn submit_job(
        &self,
        lane: &str,
        spec: serde_json::Value,
    ) -> Result<JobView, SdkError> {
        let request = JobRequest {
            lane: lane.to_string(),
            spec,
            nonce: hex::encode(rand::random::<[u8; 8]>()),
            created_ms: hallmark_core::time::now_unix_ms(),
        };
        let signed = Signed::sign(&request, self.key()?)?;
        // Refused here, with the coordinator's words, what the coordinator would refuse.
        hallmark_node::jobs::check_request(self.lanes()?, &signed).map_err(|e| {
            SdkError::Refused {
                code: e.code().to_string(),
                message: e.to_string(),
            }
        })?;
        self.retry
            .run(|| async {
                self.coordinator()?
                    .post::<_, JobView>("/v1/jobs", signed.envelope())
                    .await
                    .map_err(SdkError::from)
            })
            .await
    }

    /// Recent jobs, newest first: those in `status` (`queued`, `assigned`, `proven`,
    /// `approved`, `rejected`) when given; at most `limit` (the coordinator caps it).
    pub async fn jobs(&self, status: Option<&str>, limit: u32) -> Result<Vec<JobView>, SdkError> {
        let base = self.coordinator_base()?.to_string();
        let mut path = format!("/v1/jobs?limit={limit}");
        if let Some(s) = status {
            path.push_str(&format!("&status={}", query_value(s)));
        }
        self.read(&base, &path).await
    }

    /// A job as the coordinator has it now.
    pub async fn job_status(&self, job_id: &str) -> Result<JobView, SdkError> {
        let path = format!("/v1/jobs/{}", path_segment(job_id)?);
        let coordinator = self.coordinator()?;
        self.retry
            .run(|| async { coordinator.get(&path).await.map_err(SdkError::from) })
            .await
    }

    /// Waits until the job is approved or rejected, calling `progress` whenever its status or
    /// votes change; [`SdkError::Timeout`] after `timeout`.
    pub async fn wait_job(
        &self,
        job_id: &str,
        timeout: Duration,
        mut progress: impl FnMut(&JobView),
    ) -> Result<JobView, SdkError> {
        let start = Instant::now();
        let mut last: Option<(JobStatus, u64, u64)> = None;
        let mut poll = Duration::from_millis(200);
        loop {
            let job = self.job_status(job_id).await?;
            let now = (job.status, job.votes_valid_stake, job.votes_invalid_stake);
            if last != Some(now) {
                progress(&job);
                last = Some(now);
            }
            if matches!(job.status, JobStatus::Approved | JobStatus::Rejected) {
                return Ok(job);
            }
            if start.elapsed() >= timeout {
                return Err(SdkError::Timeout {
                    what: format!("job {job_id} (last {})", job.status.as_str()),
                    secs: timeout.as_secs(),
                });
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(Duration::from_secs(2));
        }
    }

    /// A job's proof package, as the worker handed it in (verify it with [`verify_proof`]).
    pub async fn get_proof(&self, job_id: &str) -> Result<Vec<u8>, SdkError> {
        let path = format!("/v1/jobs/{}/proof", path_segment(job_id)?);
        let coordinator = self.coordinator()?;
        self.retry
            .run(|| async {
                coordinator
                    .get_bytes_capped(&path, hallmark_stark::MAX_PACKAGE_BYTES)
                    .await
                    .map_err(SdkError::from)
            })
            .await
    }

    /// A validator's signed round result with its log receipt (`validator` is its base URL).
    pub async fn receipt(&self, validator: &str, run_id: &str) -> Result<Receipt, SdkError> {
        let v = self.coordinator.at(validator);
        let path = format!("/v1/rounds/{}/receipt", path_segment(run_id)?);
        self.retry
            .run(|| async { v.get(&path).await.map_err(SdkError::from) })
            .await
    }

    /// How the ledger settled a job (its certificate's outcome, payment and slashes); `None`
    /// until it has.
    pub async fn settled_job(
        &self,
        job_id: &str,
    ) -> Result<Option<hallmark_ledger::SettledJob>, SdkError> {
        let l = self.ledger()?;
        self.retry
            .run(|| async { l.settled_job(job_id).await.map_err(ledger_error) })
            .await
    }

    /// The ledger's metagraph: every neuron with its role, stake and address.
    pub async fn metagraph(&self) -> Result<Metagraph, SdkError> {
        self.retry
            .run(|| async { self.ledger()?.metagraph().await.map_err(ledger_error) })
            .await
    }

    /// Asks the devnet faucet for tokens to `address` (rate-limited per address; a 429 is
    /// reported, not retried, since waiting out the limit is the caller's choice).
    pub async fn faucet(&self, address: &PublicKey) -> Result<FaucetDrip, SdkError> {
        self.ledger()?.faucet(address).await.map_err(ledger_error)
    }

    /// Bonds `amount` from `coldkey`'s public balance to `hotkey` in `tier`, signed by the
    /// coldkey; returns the ledger's receipt.
    pub async fn stake(
        &self,
        coldkey: &Keypair,
        hotkey: &PublicKey,
        amount: u64,
        tier: &str,
    ) -> Result<TxReceipt, SdkError> {
        let ledger = self.ledger()?;
        let chain = self
            .retry
            .run(|| async { ledger.chain_id().await.map_err(ledger_error) })
            .await?;
        hallmark_node::registration::submit_tx(
            ledger,
            &chain,
            coldkey,
            TxBody::Stake {
                hotkey: *hotkey,
                amount,
                tier: tier.to_string(),
            },
        )
        .await
        .map_err(ledger_error)
    }

    /// GETs `path` from `base` as JSON, retrying transient failures.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
    ) -> Result<T, SdkError> {
        let node = self.coordinator.at(base);
        self.retry
            .run(|| async { node.get(path).await.map_err(SdkError::from) })
            .await
    }

    fn ledger_base(&self) -> Result<&str, SdkError> {
        self.endpoints
            .ledger
            .as_deref()
            .ok_or_else(|| SdkError::Usage("this call reads the ledger: give its endpoint".into()))
    }

    // ---- rounds and consensus ------------------------------------------------------------

    /// The coordinator's signed announcement of `lane`'s open round.
    pub async fn current_round(
        &self,
        lane: &str,
    ) -> Result<hallmark_core::dsse::Envelope, SdkError> {
        let base = self.coordinator_base()?.to_string();
        self.read(
            &base,
            &format!("/v1/rounds/current?lane={}", query_value(lane)),
        )
        .await
    }

    /// The coordinator's signed announcement of round `run_id`.
    pub async fn round(&self, run_id: &str) -> Result<hallmark_core::dsse::Envelope, SdkError> {
        let base = self.coordinator_base()?.to_string();
        self.read(&base, &format!("/v1/rounds/{}", path_segment(run_id)?))
            .await
    }

    /// `validator`'s signed result of round `run_id` (winner, quorum, agreement, weight rules).
    pub async fn round_result(
        &self,
        validator: &str,
        run_id: &str,
    ) -> Result<hallmark_node::messages::RoundResult, SdkError> {
        self.read(
            validator,
            &format!("/v1/rounds/{}/result", path_segment(run_id)?),
        )
        .await
    }

    /// `validator`'s signed score report for round `run_id`.
    pub async fn score_report(
        &self,
        validator: &str,
        run_id: &str,
    ) -> Result<hallmark_core::dsse::Envelope, SdkError> {
        self.read(
            validator,
            &format!("/v1/consensus/scores/{}", path_segment(run_id)?),
        )
        .await
    }

    /// The equivocation evidence `validator` holds (validators caught committing twice).
    pub async fn equivocations(
        &self,
        validator: &str,
    ) -> Result<Vec<hallmark_consensus::commitment::EquivocationEvidence>, SdkError> {
        self.read(validator, "/v1/consensus/equivocations").await
    }

    /// `validator`'s signed summary of how its consensus diverged from the owner's picks.
    pub async fn divergence(
        &self,
        validator: &str,
    ) -> Result<hallmark_core::dsse::Envelope, SdkError> {
        self.read(validator, "/v1/consensus/divergence").await
    }

    /// `validator`'s verifier self-tests on the shipped evidence.
    pub async fn self_test(
        &self,
        validator: &str,
    ) -> Result<hallmark_node::validator::SelfTestReport, SdkError> {
        self.read(validator, "/v1/selftest").await
    }

    // ---- the transparency log --------------------------------------------------------------

    /// `node`'s latest signed log checkpoint (a C2SP signed note), as text.
    pub async fn checkpoint(&self, node: &str) -> Result<String, SdkError> {
        let n = self.coordinator.at(node);
        let bytes = self
            .retry
            .run(|| async {
                n.get_bytes("/v1/log/checkpoint")
                    .await
                    .map_err(SdkError::from)
            })
            .await?;
        String::from_utf8(bytes).map_err(|_| SdkError::Verification {
            check: "checkpoint_utf8".into(),
            detail: "the checkpoint is not UTF-8".into(),
        })
    }

    /// Entry `index` of `node`'s log.
    pub async fn log_entry(
        &self,
        node: &str,
        index: u64,
    ) -> Result<hallmark_node::log_routes::LogEntryView, SdkError> {
        self.read(node, &format!("/v1/log/entries/{index}")).await
    }

    /// The proof that leaf `index` is in `node`'s log at `size`.
    pub async fn inclusion_proof(
        &self,
        node: &str,
        index: u64,
        size: u64,
    ) -> Result<hallmark_node::log_routes::ProofView, SdkError> {
        self.read(
            node,
            &format!("/v1/log/proof/inclusion?index={index}&size={size}"),
        )
        .await
    }

    /// The proof that `node`'s log at `to` extends its log at `from`.
    pub async fn consistency_proof(
        &self,
        node: &str,
        from: u64,
        to: u64,
    ) -> Result<hallmark_node::log_routes::ProofView, SdkError> {
        self.read(
            node,
            &format!("/v1/log/proof/consistency?from={from}&to={to}"),
        )
        .await
    }

    // ---- evaluation runs -----------------------------------------------------------------

    /// Commits `archive`'s SHA-256 for `lane` on the ledger, signed by the worker's `key`
    /// (what a run submission must be preceded by); an archive committed before is fine.
    pub async fn commit_archive(
        &self,
        key: &Keypair,
        lane: &str,
        archive: &[u8],
    ) -> Result<(), SdkError> {
        let ledger = self.ledger()?;
        let chain = self
            .retry
            .run(|| async { ledger.chain_id().await.map_err(ledger_error) })
            .await?;
        let body = TxBody::CommitArchive {
            lane: lane.to_string(),
            archive_sha256: hallmark_core::sha256(archive).to_hex(),
        };
        match hallmark_node::registration::submit_tx(ledger, &chain, key, body).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == "already_committed" => Ok(()),
            Err(e) => Err(ledger_error(e)),
        }
    }

    /// Submits a committed `archive` to roster run `run_id`, signed by the worker's `key`.
    /// Not retried: a later submission replaces the earlier one until the deadline.
    pub async fn submit_archive(
        &self,
        run_id: &str,
        key: &Keypair,
        archive: &[u8],
    ) -> Result<hallmark_node::messages::RunSubmissionAck, SdkError> {
        let path = format!("/v1/runs/{}/submissions", path_segment(run_id)?);
        self.coordinator()?
            .clone()
            .signed_by(key.clone())
            .post_bytes(&path, archive.to_vec(), "application/x-tar")
            .await
            .map_err(SdkError::from)
    }

    /// A submitted archive's bytes (capped at the eval lane's archive limit).
    pub async fn run_archive(
        &self,
        run_id: &str,
        submission_id: &str,
        max_bytes: usize,
    ) -> Result<Vec<u8>, SdkError> {
        let path = format!(
            "/v1/runs/{}/submissions/{}/archive",
            path_segment(run_id)?,
            path_segment(submission_id)?
        );
        let coordinator = self.coordinator()?;
        self.retry
            .run(|| async {
                coordinator
                    .get_bytes_capped(&path, max_bytes)
                    .await
                    .map_err(SdkError::from)
            })
            .await
    }

    /// `validator`'s evaluation record of roster run `run_id`, byte for byte as served.
    pub async fn evaluation_bytes(
        &self,
        validator: &str,
        run_id: &str,
    ) -> Result<Vec<u8>, SdkError> {
        let path = format!("/v1/consensus/evaluations/{}", path_segment(run_id)?);
        let node = self.coordinator.at(validator);
        self.retry
            .run(|| async { node.get_bytes(&path).await.map_err(SdkError::from) })
            .await
    }

    // ---- traces and consent -------------------------------------------------------------

    /// Records `consent`, signed here by its party's `key`, at the coordinator. Checked
    /// locally first (the coordinator's codes). Not retried: a replay of a statement that
    /// did land is refused as not newer.
    pub async fn record_consent(
        &self,
        consent: &hallmark_core::trace::TraceConsent,
        key: &Keypair,
    ) -> Result<hallmark_node::consents::ConsentAccepted, SdkError> {
        consent.check().map_err(|e| SdkError::Refused {
            code: e.code().to_string(),
            message: e.to_string(),
        })?;
        let signed = Signed::sign(consent, key)?;
        self.coordinator()?
            .post("/v1/consents", signed.envelope())
            .await
            .map_err(SdkError::from)
    }

    /// One page of `validator`'s public (redacted, consent-gated) traces. `T` is
    /// [`hallmark_core::trace::PublicTrace`], or `serde_json::Value` to keep records as sent.
    pub async fn public_traces<T: serde::de::DeserializeOwned>(
        &self,
        validator: &str,
        query: &hallmark_node::traces::TraceQuery,
    ) -> Result<hallmark_node::traces::TracePage<T>, SdkError> {
        let mut path = format!(
            "/v1/traces?limit={}",
            query.limit.unwrap_or(hallmark_store::MAX_TRACE_PAGE)
        );
        if let Some(since) = query.since {
            path.push_str(&format!("&since={since}"));
        }
        if let Some(lane) = &query.lane {
            path.push_str(&format!("&lane={}", query_value(lane)));
        }
        if let Some(cursor) = query.cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        self.read(validator, &path).await
    }

    /// One page of `validator`'s private traces, signed by its `operator` coldkey. `T` is
    /// [`hallmark_core::trace::VerificationTrace`], or `serde_json::Value`.
    pub async fn private_traces<T: serde::de::DeserializeOwned>(
        &self,
        validator: &str,
        operator: &Keypair,
        query: &hallmark_node::traces::TraceQuery,
    ) -> Result<hallmark_node::traces::TracePage<T>, SdkError> {
        let node = self.coordinator.at(validator).signed_by(operator.clone());
        self.retry
            .run(|| async {
                node.post("/v1/traces/private", query)
                    .await
                    .map_err(SdkError::from)
            })
            .await
    }

    // ---- builds -------------------------------------------------------------------------

    /// Asks the coordinator to verify that `wasm` rebuilds from source (`source`: the archive
    /// its recipe names, unless the coordinator already stores it). Safe to retry: the same
    /// wasm and recipe answer the existing verification.
    pub async fn submit_build(
        &self,
        wasm: &[u8],
        source: Option<&[u8]>,
    ) -> Result<hallmark_node::builds::VerificationView, SdkError> {
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let body = hallmark_node::builds::VerifyRequest {
            wasm_base64: b64(wasm),
            source_base64: source.map(b64),
        };
        let coordinator = self.coordinator()?;
        self.retry
            .run(|| async {
                coordinator
                    .post("/v1/verify", &body)
                    .await
                    .map_err(SdkError::from)
            })
            .await
    }

    /// A source-to-wasm verification by id.
    pub async fn build(
        &self,
        verification_id: &str,
    ) -> Result<hallmark_node::builds::VerificationView, SdkError> {
        let base = self.coordinator_base()?.to_string();
        self.read(
            &base,
            &format!("/v1/verify/{}", path_segment(verification_id)?),
        )
        .await
    }

    /// Every verification of the wasm with SHA-256 `wasm_sha256`.
    pub async fn wasm(
        &self,
        wasm_sha256: &str,
    ) -> Result<hallmark_node::builds::WasmView, SdkError> {
        let base = self.coordinator_base()?.to_string();
        self.read(&base, &format!("/v1/wasms/{}", path_segment(wasm_sha256)?))
            .await
    }

    /// Recent verifications, newest first.
    pub async fn builds(
        &self,
        limit: u32,
    ) -> Result<Vec<hallmark_node::builds::VerificationView>, SdkError> {
        let base = self.coordinator_base()?.to_string();
        self.read(&base, &format!("/v1/builds?limit={limit}")).await
    }

    // ---- ledger reads -------------------------------------------------------------------

    /// A hotkey's stake and tier; `None` when nothing is bonded to it.
    pub async fn stake_info(
        &self,
        hotkey: &PublicKey,
    ) -> Result<Option<hallmark_ledger::StakeInfo>, SdkError> {
        let l = self.ledger()?;
        self.retry
            .run(|| async { l.stake(hotkey).await.map_err(ledger_error) })
            .await
    }

    /// A hotkey's confidential (private payment) account; `None` before it registered a
    /// payment key.
    pub async fn confidential_account(
        &self,
        hotkey: &PublicKey,
    ) -> Result<Option<hallmark_ledger::ConfidentialAccount>, SdkError> {
        let l = self.ledger()?;
        self.retry
            .run(|| async { l.confidential_account(hotkey).await.map_err(ledger_error) })
            .await
    }

    /// The ledger's chain id, parameters and faucet.
    pub async fn ledger_info(&self) -> Result<hallmark_node::ledger_service::LedgerInfo, SdkError> {
        let l = self.ledger()?;
        self.retry
            .run(|| async { l.info().await.map_err(ledger_error) })
            .await
    }

    /// The ledger's chain id (what every transaction is signed for).
    pub async fn chain_id(&self) -> Result<String, SdkError> {
        let l = self.ledger()?;
        self.retry
            .run(|| async { l.chain_id().await.map_err(ledger_error) })
            .await
    }

    /// Signs `body` with `key` for this chain and submits it (with the signer's next nonce);
    /// returns the ledger's receipt. Not retried: the nonce makes a replay a refusal.
    pub async fn submit_tx(&self, key: &Keypair, body: TxBody) -> Result<TxReceipt, SdkError> {
        let chain = self.chain_id().await?;
        hallmark_node::registration::submit_tx(self.ledger()?, &chain, key, body)
            .await
            .map_err(ledger_error)
    }

    /// An account's balance and nonce.
    pub async fn account(
        &self,
        address: &PublicKey,
    ) -> Result<hallmark_node::ledger_service::AccountInfo, SdkError> {
        let base = self.ledger_base()?.to_string();
        self.read(&base, &format!("/v1/ledger/accounts/{}", address.to_ss58()))
            .await
    }

    /// The weights validators set for `lane` in `epoch`.
    pub async fn weights(
        &self,
        epoch: u64,
        lane: &str,
    ) -> Result<Vec<hallmark_ledger::ValidatorWeights>, SdkError> {
        let base = self.ledger_base()?.to_string();
        self.read(
            &base,
            &format!("/v1/ledger/weights/{epoch}?lane={}", query_value(lane)),
        )
        .await
    }

    /// The ledger's head: height, state root, log size.
    pub async fn ledger_head(&self) -> Result<hallmark_ledger::LedgerHead, SdkError> {
        let base = self.ledger_base()?.to_string();
        self.read(&base, "/v1/ledger/head").await
    }

    /// Slashes the ledger applied.
    pub async fn slashes(&self) -> Result<Vec<hallmark_ledger::Slash>, SdkError> {
        let base = self.ledger_base()?.to_string();
        self.read(&base, "/v1/ledger/slashes").await
    }

    // ---- compute ------------------------------------------------------------------------

    /// Claims machine `node_id` for `request.lease_secs`, signed by `key`; the answer is the
    /// coordinator's signed claim grant. Not retried: a second claim is a second lease.
    pub async fn claim_machine(
        &self,
        node_id: &str,
        key: &Keypair,
        request: &hallmark_node::compute::messages::ClaimRequest,
    ) -> Result<hallmark_core::dsse::Envelope, SdkError> {
        self.signed_post(
            &format!("/v1/compute/providers/{}/claim", path_segment(node_id)?),
            key,
            request,
        )
        .await
    }

    /// Releases a claimed machine, reporting the GPU-seconds used, signed by `key`; the
    /// answer is the coordinator's signed usage receipt. Not retried.
    pub async fn release_machine(
        &self,
        node_id: &str,
        key: &Keypair,
        request: &hallmark_node::compute::messages::ReleaseRequest,
    ) -> Result<hallmark_core::dsse::Envelope, SdkError> {
        self.signed_post(
            &format!("/v1/compute/providers/{}/release", path_segment(node_id)?),
            key,
            request,
        )
        .await
    }

    /// POSTs `body` to the coordinator's `path` signed by `key`, once (never retried: the
    /// callers' requests are not idempotent).
    async fn signed_post<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        key: &Keypair,
        body: &B,
    ) -> Result<T, SdkError> {
        self.coordinator()?
            .clone()
            .signed_by(key.clone())
            .post(path, body)
            .await
            .map_err(SdkError::from)
    }

    /// Every compute provider listing the coordinator keeps.
    pub async fn providers(
        &self,
    ) -> Result<Vec<hallmark_node::compute::messages::ProviderListing>, SdkError> {
        let base = self.coordinator_base()?.to_string();
        self.read(&base, "/v1/compute/providers").await
    }
}

/// Verifies a proof package locally at the network's security policy, for the job `spec`:
/// nothing is taken from the node that served it.
pub fn verify_proof(package: &[u8], spec: &JobSpec) -> Result<VerifiedProof, SdkError> {
    Verifier::default()
        .verify(package, Some(spec))
        .map_err(|r| SdkError::Verification {
            check: r.code().to_string(),
            detail: r.to_string(),
        })
}

/// Verifies a receipt offline: the statement's signature, the checkpoint's signature by the
/// same key, the checkpoint's size, and the statement's inclusion in that log.
pub fn verify_receipt(receipt: &Receipt) -> Result<(), SdkError> {
    let v = hallmark_log::verify_receipt(receipt, None);
    if v.accepted {
        return Ok(());
    }
    let failed = v
        .checks
        .iter()
        .find(|c| c.outcome == hallmark_core::CheckOutcome::Fail);
    Err(SdkError::Verification {
        check: failed.map_or_else(|| "receipt".to_string(), |c| c.name.clone()),
        detail: failed.map_or_else(String::new, |c| c.detail.clone()),
    })
}

/// `text` as one path segment: ids here are printable and slash-free, so anything else is a
/// usage error rather than a request to some other route.
fn path_segment(text: &str) -> Result<&str, SdkError> {
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        || text == "."
        || text == ".."
    {
        return Err(SdkError::Usage(format!("{text:?} is not an id")));
    }
    Ok(text)
}

/// `text` percent-encoded for a query string value.
fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_transient_failures_are_retried() {
        let policy = RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(1),
        };
        let calls = std::sync::atomic::AtomicU32::new(0);
        let busy = || SdkError::Api {
            url: "x".into(),
            status: 503,
            code: "busy".into(),
            message: String::new(),
        };
        let r: Result<(), SdkError> = policy
            .run(|| async {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(busy())
            })
            .await;
        assert_eq!(r.unwrap_err().code(), Some("busy"));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);

        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let r: Result<(), SdkError> = policy
            .run(|| async {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(SdkError::Api {
                    url: "x".into(),
                    status: 422,
                    code: "invalid_spec".into(),
                    message: String::new(),
                })
            })
            .await;
        assert_eq!(r.unwrap_err().code(), Some("invalid_spec"));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn a_devnet_file_gives_the_endpoints_and_a_missing_one_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = Endpoints::devnet(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with("devnet_unavailable"), "{e}");
        std::fs::write(
            dir.path().join("devnet.json"),
            r#"{"coordinator":"http://c","ledger":"http://l","validators":["http://v"],"ready":true}"#,
        )
        .unwrap();
        let ep = Endpoints::devnet(dir.path()).unwrap();
        assert_eq!(ep.validators, ["http://v"]);
    }

    #[test]
    fn a_tampered_receipt_names_its_failing_check() {
        let key = Keypair::generate();
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Note {
            n: u32,
        }
        impl hallmark_core::SignedPayload for Note {
            const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.sdk-test+json";
        }
        let env = Signed::sign(&Note { n: 1 }, &key)
            .unwrap()
            .envelope()
            .clone();
        let mut tree = hallmark_log::MerkleTree::new();
        tree.push(hallmark_log::leaf_hash(&env.canonical_bytes().unwrap()));
        let origin = format!("hallmark/test/{}", key.public().to_ss58());
        let cp = hallmark_log::Checkpoint {
            origin: origin.clone(),
            size: 1,
            root: tree.root(),
        }
        .sign(&origin, &key)
        .unwrap();
        let receipt = Receipt {
            statement: env,
            log: hallmark_log::LogProof {
                log_index: 0,
                tree_size: 1,
                inclusion_proof: vec![],
                checkpoint: cp.note,
            },
        };
        verify_receipt(&receipt).unwrap();
        let mut bad = receipt.clone();
        bad.log.tree_size = 2;
        let e = verify_receipt(&bad).unwrap_err();
        assert!(matches!(e, SdkError::Verification { .. }), "{e}");
    }
}
