//! The devnet ledger: one sequencer applies signed transactions in order, each chained to the
//! previous by hash, all persisted through hallmark-store.

use crate::{BuildInfo, BuildManagers, BuildManagersApproval};
use async_trait::async_trait;
use hallmark_consensus::commitment::{parse_commitment, EquivocationEvidence};
use hallmark_consensus::yuma::{yuma_epoch, YumaInput};
use hallmark_consensus::{verify_certificate, Quorum, SlashReason, Slashing, VoteOutcome};
use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::{sha256, PublicKey, Signed};
use hallmark_core::{Envelope, Keypair};
use hallmark_log::SignedCheckpoint;
use hallmark_store::{
    AccountRow, CommitmentRow, EquivocationRow, LedgerCommit, LedgerTxRow, NeuronRow,
    SettledJobRow, SlashRow, StakeRow, Store, TransparencyLog, WeightsRow,
};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::types::{
    ArchiveCommit, Commitment, ConfidentialAccount, LedgerAnchor, LedgerTx, Metagraph, Neuron,
    Role, SettledJob, Slash, StakeInfo, Tier, TxBody, TxReceipt, ValidatorWeights, YumaEpoch,
};
use crate::{Ledger, LedgerError};

/// The hash the first transaction chains from.
const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The initial state: chain id and opening balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub chain_id: String,
    pub balances: Vec<(PublicKey, u64)>,
}

/// Rules the ledger enforces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerParams {
    /// Staking tiers by name: the role each admits and its minimum stake. `validator` and
    /// `cpu` are the tiers a registration without an earlier `Stake` uses.
    pub tiers: BTreeMap<String, Tier>,
    /// How long staked tokens stay locked after they are bonded (ms).
    pub stake_lock_ms: u64,
    /// Length of a heartbeat epoch (ms).
    pub heartbeat_epoch_ms: u64,
    /// A worker whose last heartbeat is older than this many epochs is inactive.
    pub inactive_after_epochs: u64,
    /// What the ledger credits (encrypted) for one approved job.
    pub job_reward: u64,
    /// Most weight entries one transaction may carry.
    pub max_weights: usize,
    /// Ledger units emitted per Yuma epoch (reported per neuron; not yet credited).
    pub emission_per_epoch: u64,
    /// Yuma consensus quantile.
    pub kappa: f64,
    /// Yuma bonds EMA coefficient.
    pub bonds_alpha: f64,
    /// The share of stake a slashing removes, in basis points (1000 = 10%).
    pub slash_fraction_bps: u64,
    /// The share of validator stake a job certificate must carry.
    pub job_quorum: Quorum,
    /// The build council: its members approve who may write the build-info registry.
    #[serde(default)]
    pub build_council: Vec<PublicKey>,
    /// How many distinct council approvals a new build-manager set needs.
    #[serde(default)]
    pub build_council_threshold: u32,
}

/// The tier a registration without an earlier `Stake` lands in.
pub(crate) fn default_tier(role: Role) -> &'static str {
    match role {
        Role::Validator => "validator",
        Role::Worker => "cpu",
    }
}

/// The default tiers: validators, CPU workers and two GPU worker tiers.
pub fn default_tiers() -> BTreeMap<String, Tier> {
    [
        ("validator", Role::Validator, 1_000),
        ("cpu", Role::Worker, 100),
        ("gpu-a100", Role::Worker, 500),
        ("gpu-h100", Role::Worker, 1_000),
    ]
    .into_iter()
    .map(|(name, role, min_stake)| (name.to_string(), Tier { role, min_stake }))
    .collect()
}

impl Default for LedgerParams {
    fn default() -> Self {
        Self {
            tiers: default_tiers(),
            stake_lock_ms: 60_000,
            heartbeat_epoch_ms: 30_000,
            inactive_after_epochs: 4,
            job_reward: 100,
            max_weights: 4096,
            emission_per_epoch: 1_000_000_000,
            kappa: 0.5,
            bonds_alpha: 0.1,
            slash_fraction_bps: 1_000,
            job_quorum: Quorum::TWO_THIRDS,
            build_council: Vec::new(),
            build_council_threshold: 0,
        }
    }
}

impl LedgerParams {
    /// Refuses parameters the ledger cannot run with (missing default tiers, a zero epoch,
    /// a slash share above the whole stake).
    pub fn check(&self) -> Result<(), String> {
        if self.build_council_threshold as usize > self.build_council.len()
            || (!self.build_council.is_empty() && self.build_council_threshold == 0)
        {
            return Err(format!(
                "build_council_threshold {} must be 1..={} (the council's size)",
                self.build_council_threshold,
                self.build_council.len()
            ));
        }
        for role in [Role::Validator, Role::Worker] {
            let name = default_tier(role);
            match self.tiers.get(name) {
                Some(t) if t.role == role => {}
                Some(_) => return Err(format!("tier {name:?} must be for {}s", role.as_str())),
                None => return Err(format!("tier {name:?} must exist")),
            }
        }
        if self.heartbeat_epoch_ms == 0 || self.inactive_after_epochs == 0 {
            return Err("heartbeat epochs must be longer than 0 ms and at least 1".into());
        }
        if self.slash_fraction_bps > 10_000 {
            return Err(format!(
                "slash_fraction_bps is {}: a share of stake in basis points, 0..=10000",
                self.slash_fraction_bps
            ));
        }
        Ok(())
    }

    /// Whether a neuron counts as present at `now_ms`.
    pub(crate) fn is_active(&self, role: Role, last_heartbeat_ms: i64, now_ms: i64) -> bool {
        let window = self
            .heartbeat_epoch_ms
            .saturating_mul(self.inactive_after_epochs)
            .min(i64::MAX as u64) as i64;
        role == Role::Validator
            || (last_heartbeat_ms > 0 && now_ms.saturating_sub(last_heartbeat_ms) <= window)
    }
}

/// The single-sequencer devnet ledger.
pub struct DevnetLedger {
    pub(crate) store: Store,
    pub(crate) chain_id: String,
    pub(crate) params: LedgerParams,
    /// Serialises transaction application: one sequencer.
    sequencer: Mutex<()>,
    /// Every applied transaction, in order, in a transparency log.
    log: TransparencyLog,
    log_key: Keypair,
    origin: String,
}

#[derive(Serialize)]
struct ChainLink<'a> {
    seq: u64,
    prev_hash: &'a str,
    envelope: &'a hallmark_core::Envelope,
}

impl DevnetLedger {
    /// Opens the ledger in `store`, writing genesis on first start. A store whose genesis
    /// differs from `genesis` is refused rather than silently mixed.
    pub async fn open(
        store: Store,
        genesis: &Genesis,
        params: LedgerParams,
        log_key: Keypair,
    ) -> Result<Self, LedgerError> {
        let genesis_hash =
            sha256(&to_canonical_bytes(genesis).map_err(|e| LedgerError::Invalid(e.to_string()))?)
                .to_hex();
        match store.kv_get("ledger.genesis").await? {
            Some(h) if h == genesis_hash => {}
            Some(h) => {
                return Err(LedgerError::Invalid(format!(
                    "this data directory holds a ledger with genesis {h}, not {genesis_hash}"
                )))
            }
            None => {
                let accounts = genesis
                    .balances
                    .iter()
                    .map(|(k, b)| AccountRow {
                        address: k.to_ss58(),
                        balance: *b,
                        nonce: 0,
                    })
                    .collect();
                store
                    .commit_ledger(&LedgerCommit {
                        accounts,
                        ..Default::default()
                    })
                    .await?;
                store.kv_put("ledger.genesis", &genesis_hash).await?;
            }
        }
        let log = TransparencyLog::open(&store).await?;
        let origin = format!("hallmark/{}/ledger", genesis.chain_id);
        let ledger = Self {
            store,
            chain_id: genesis.chain_id.clone(),
            params,
            sequencer: Mutex::new(()),
            log,
            log_key,
            origin,
        };
        ledger.catch_up_log().await?;
        Ok(ledger)
    }

    /// Appends to the log any applied transaction it lacks (a crash between committing a
    /// transaction and appending it), so the log always holds the whole chain in order.
    async fn catch_up_log(&self) -> Result<(), LedgerError> {
        let mut next = self.log.size().await + 1;
        loop {
            let rows = self.store.ledger_txs(next, 512).await?;
            if rows.is_empty() {
                return Ok(());
            }
            for row in rows {
                let env: Envelope = serde_json::from_str(&row.envelope)
                    .map_err(|e| LedgerError::Invalid(format!("stored tx {}: {e}", row.seq)))?;
                let bytes = env
                    .canonical_bytes()
                    .map_err(|e| LedgerError::Invalid(e.to_string()))?;
                self.log.append("ledger_tx", &bytes).await?;
                next += 1;
            }
        }
    }

    /// The ledger's transparency log (one leaf per applied transaction, leaf i = seq i+1).
    pub fn log(&self) -> &TransparencyLog {
        &self.log
    }

    /// The log's origin line (also the checkpoint key name).
    pub fn log_origin(&self) -> &str {
        &self.origin
    }

    /// A signed checkpoint of the log as it is now.
    pub async fn checkpoint(&self) -> Result<SignedCheckpoint, LedgerError> {
        Ok(self.log.checkpoint(&self.origin, &self.log_key).await?)
    }

    /// The chain id transactions must carry.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The rules this ledger enforces.
    pub fn params(&self) -> &LedgerParams {
        &self.params
    }

    /// When the faucet last paid `address` (ms), if ever.
    pub async fn faucet_last(&self, address: &PublicKey) -> Result<Option<i64>, LedgerError> {
        Ok(self.store.faucet_last(&address.to_ss58()).await?)
    }

    /// Records a faucet drip to `address` (what the rate limit reads back).
    pub async fn record_faucet_drip(
        &self,
        address: &PublicKey,
        now_ms: i64,
        amount: u64,
    ) -> Result<(), LedgerError> {
        Ok(self
            .store
            .record_faucet_drip(&address.to_ss58(), now_ms, amount)
            .await?)
    }

    pub(crate) async fn neuron_row(
        &self,
        hotkey: &PublicKey,
    ) -> Result<Option<NeuronRow>, LedgerError> {
        Ok(self.store.neuron(&hotkey.to_ss58()).await?)
    }

    async fn apply(&self, signed: &Signed<LedgerTx>) -> Result<TxReceipt, LedgerError> {
        let verified = signed
            .verify()
            .map_err(|e| LedgerError::BadSignature(e.to_string()))?;
        let tx = verified.payload;
        let signer = verified.signer;
        if tx.chain_id != self.chain_id {
            return Err(LedgerError::WrongChain {
                expected: self.chain_id.clone(),
                found: tx.chain_id,
            });
        }
        let signer_addr = signer.to_ss58();
        let mut account = self
            .store
            .account(&signer_addr)
            .await?
            .unwrap_or(AccountRow {
                address: signer_addr.clone(),
                balance: 0,
                nonce: 0,
            });
        if tx.nonce <= account.nonce {
            return Err(LedgerError::StaleNonce {
                nonce: tx.nonce,
                last: account.nonce,
            });
        }
        let (head_seq, prev_hash) = self
            .store
            .ledger_head()
            .await?
            .unwrap_or((0, GENESIS_PREV.to_string()));
        let seq = head_seq + 1;
        let now_ms = hallmark_core::time::now_unix_ms();
        let mut commit = LedgerCommit::default();
        match &tx.body {
            TxBody::Register {
                hotkey,
                role,
                stake,
            } => {
                self.apply_register(
                    &mut commit,
                    &mut account,
                    hotkey,
                    *role,
                    *stake,
                    seq,
                    now_ms,
                )
                .await?;
            }
            TxBody::ServeAxon { axon } => {
                let Some(existing) = self.neuron_row(&signer).await? else {
                    return Err(LedgerError::NotRegistered(signer_addr));
                };
                validate_axon(axon)?;
                commit.neurons.push(NeuronRow {
                    axon: Some(axon.clone()),
                    ..existing
                });
            }
            TxBody::SetWeights {
                lane,
                epoch,
                weights,
            } => {
                let neurons = self.store.neurons().await?;
                let Some(me) = neurons.iter().find(|n| n.hotkey == signer_addr) else {
                    return Err(LedgerError::NotRegistered(signer_addr));
                };
                if me.role != Role::Validator.as_str() {
                    return Err(LedgerError::Unauthorized(format!(
                        "{signer_addr} is a {}, only validators set weights",
                        me.role
                    )));
                }
                if weights.len() > self.params.max_weights {
                    return Err(LedgerError::Invalid(format!(
                        "{} weights, at most {}",
                        weights.len(),
                        self.params.max_weights
                    )));
                }
                for w in weights {
                    let key = w.hotkey.to_ss58();
                    if !neurons
                        .iter()
                        .any(|n| n.hotkey == key && n.role == Role::Worker.as_str())
                    {
                        return Err(LedgerError::NotRegistered(format!("worker {key}")));
                    }
                }
                if lane.is_empty() || lane.len() > 32 {
                    return Err(LedgerError::Invalid(
                        "weights name a lane of 1..=32 characters".into(),
                    ));
                }
                if self.store.yuma_epoch(lane, *epoch).await?.is_some() {
                    return Err(LedgerError::EpochClosed(*epoch));
                }
                commit.weights.push(WeightsRow {
                    lane: lane.clone(),
                    epoch: *epoch,
                    validator: signer_addr.clone(),
                    weights: serde_json::to_string(weights)
                        .map_err(|e| LedgerError::Invalid(e.to_string()))?,
                    seq,
                });
            }
            // Checked below, once the transaction hash it is stored with is known.
            TxBody::CommitScores { .. } => {}
            TxBody::SettleJob {
                certificate,
                result,
            } => {
                let (settled, slashings) = self.check_settlement(certificate, result, seq).await?;
                commit.settled_job = Some(settled);
                self.apply_slashings(&mut commit, &certificate.job_id, &slashings, seq)
                    .await?;
            }
            TxBody::SlashEquivocation { evidence } => {
                let job_id = evidence
                    .check()
                    .map_err(|e| LedgerError::InvalidEvidence(format!("equivocation: {e}")))?;
                let hotkey = evidence.validator.to_ss58();
                match self.store.neuron(&hotkey).await? {
                    Some(n) if n.role == Role::Validator.as_str() => {}
                    _ => return Err(LedgerError::NotRegistered(format!("validator {hotkey}"))),
                }
                let slashing = Slashing {
                    who: evidence.validator,
                    reason: SlashReason::Equivocation,
                };
                self.apply_slashings(&mut commit, &job_id, &[slashing], seq)
                    .await?;
            }
            TxBody::Transfer { to, amount } => {
                self.apply_transfer(&mut commit, &mut account, to, *amount)
                    .await?;
            }
            TxBody::Stake {
                hotkey,
                amount,
                tier,
            } => {
                self.apply_stake(&mut commit, &mut account, hotkey, *amount, tier, now_ms)
                    .await?;
            }
            TxBody::Unstake { hotkey, amount } => {
                self.apply_unstake(&mut commit, &mut account, hotkey, *amount, now_ms)
                    .await?;
            }
            TxBody::Heartbeat {} => {
                let Some(mut neuron) = self.store.neuron(&signer_addr).await? else {
                    return Err(LedgerError::NotRegistered(signer_addr));
                };
                neuron.last_heartbeat_ms = now_ms;
                commit.neurons.push(neuron);
            }
            TxBody::RegisterPaymentKey { pubkey, proof } => {
                self.apply_payment_key(&mut commit, &signer, pubkey, proof, seq)
                    .await?;
            }
            TxBody::ClaimPayment {
                request,
                certificate,
                result,
                credit,
                proof,
                hint,
            } => {
                let claim = crate::payments::Claim {
                    request,
                    certificate,
                    result,
                    credit,
                    proof,
                    hint: hint.as_ref(),
                };
                self.apply_claim(&mut commit, &signer, claim, seq).await?;
            }
            TxBody::SetBuildManagers {
                version,
                managers,
                approvals,
            } => {
                commit.build_managers = Some(
                    self.check_build_managers(*version, managers, approvals)
                        .await?,
                );
            }
            TxBody::SetBuildInfo {
                wasm_sha256,
                recipe,
            } => {
                commit.build_info = Some(
                    self.check_build_info(&signer, wasm_sha256, recipe, seq)
                        .await?,
                );
            }
            TxBody::CommitArchive {
                lane,
                archive_sha256,
            } => {
                commit.archive_commit = Some(
                    self.check_archive_commit(&signer, lane, archive_sha256, seq, now_ms)
                        .await?,
                );
            }
            TxBody::Withdraw {
                amount,
                proof,
                hint,
            } => {
                self.apply_withdraw(
                    &mut commit,
                    &mut account,
                    &signer,
                    *amount,
                    proof,
                    hint.as_ref(),
                    seq,
                )
                .await?;
            }
        }
        account.nonce = tx.nonce;
        commit.accounts.push(account);
        let tx_hash = link_hash(seq, &prev_hash, signed.envelope())?;
        if let TxBody::CommitScores { run_id, commitment } = &tx.body {
            commit.commitment = Some(
                self.check_commitment(
                    &signer_addr,
                    run_id,
                    commitment,
                    signed.envelope(),
                    &tx_hash,
                )
                .await?,
            );
        }
        commit.tx = Some(LedgerTxRow {
            seq,
            tx_hash: tx_hash.clone(),
            prev_hash: prev_hash.clone(),
            signer: signer_addr,
            kind: tx.body.kind().into(),
            envelope: serde_json::to_string(signed.envelope())
                .map_err(|e| LedgerError::Invalid(e.to_string()))?,
            applied_at: now_ms / 1000,
            applied_ms: now_ms,
        });
        self.store.commit_ledger(&commit).await?;
        let bytes = signed
            .envelope()
            .canonical_bytes()
            .map_err(|e| LedgerError::Invalid(e.to_string()))?;
        self.log.append("ledger_tx", &bytes).await?;
        Ok(TxReceipt {
            seq,
            tx_hash,
            prev_hash,
        })
    }

    /// Checks a score commitment: a registered validator, a well-formed string for the run,
    /// and no earlier commitment for the run. A different earlier one is equivocation: both
    /// signed transactions are kept as evidence and the new one is refused.
    async fn check_commitment(
        &self,
        signer: &str,
        run_id: &str,
        commitment: &str,
        envelope: &Envelope,
        tx_hash: &str,
    ) -> Result<CommitmentRow, LedgerError> {
        let Some(me) = self.store.neuron(signer).await? else {
            return Err(LedgerError::NotRegistered(signer.to_string()));
        };
        if me.role != Role::Validator.as_str() {
            return Err(LedgerError::Unauthorized(format!(
                "{signer} is a {}, only validators commit scores",
                me.role
            )));
        }
        if run_id.is_empty() || run_id.len() > 128 || run_id.contains(':') {
            return Err(LedgerError::Invalid(format!(
                "run id {run_id:?} is not valid"
            )));
        }
        parse_commitment(commitment, run_id).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        let envelope_text =
            serde_json::to_string(envelope).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        if let Some(existing) = self.store.commitment(signer, run_id).await? {
            if existing.commitment == commitment {
                return Err(LedgerError::AlreadyCommitted {
                    validator: signer.to_string(),
                    run_id: run_id.to_string(),
                    commitment: commitment.to_string(),
                });
            }
            let first: Envelope = serde_json::from_str(&existing.envelope)
                .map_err(|e| LedgerError::Invalid(format!("stored commitment: {e}")))?;
            let evidence = EquivocationEvidence {
                validator: signer
                    .parse()
                    .map_err(|_| LedgerError::Invalid(format!("stored key {signer}")))?,
                run_id: run_id.to_string(),
                kind: "commitment".into(),
                first,
                second: envelope.clone(),
            };
            self.store
                .put_equivocation(&EquivocationRow {
                    validator: signer.to_string(),
                    run_id: run_id.to_string(),
                    kind: "commitment".into(),
                    evidence: serde_json::to_string(&evidence)
                        .map_err(|e| LedgerError::Invalid(e.to_string()))?,
                    found_ms: hallmark_core::time::now_unix_ms(),
                })
                .await?;
            tracing::warn!(validator = %signer, %run_id, "second commitment refused: equivocation");
            return Err(LedgerError::Equivocation {
                validator: signer.to_string(),
                run_id: run_id.to_string(),
            });
        }
        Ok(CommitmentRow {
            validator: signer.to_string(),
            run_id: run_id.to_string(),
            commitment: commitment.to_string(),
            envelope: envelope_text,
            tx_hash: tx_hash.to_string(),
        })
    }

    /// Checks a settlement against the ledger's own state: the worker's signature on its
    /// result, the result being the one certified, the worker registered, the job not yet
    /// settled, and the certificate's votes reaching its outcome by current validator stake.
    async fn check_settlement(
        &self,
        certificate: &hallmark_consensus::VoteCertificate,
        result: &Signed<hallmark_consensus::JobResult>,
        seq: u64,
    ) -> Result<(SettledJobRow, Vec<Slashing>), LedgerError> {
        let r = certified_result(certificate, result)?;
        let worker = r.worker.to_ss58();
        match self.store.neuron(&worker).await? {
            Some(n) if n.role == Role::Worker.as_str() => {}
            _ => return Err(LedgerError::NotRegistered(format!("worker {worker}"))),
        }
        if self.store.settled_job(&r.job_id).await?.is_some() {
            return Err(LedgerError::AlreadySettled(r.job_id));
        }
        let stakes = self.validator_stakes().await?;
        verify_certificate(certificate, &stakes, self.params.job_quorum)
            .map_err(|e| LedgerError::InvalidEvidence(format!("certificate: {e}")))?;
        let outcome = match certificate.outcome {
            VoteOutcome::Approved => "approved",
            VoteOutcome::Rejected => "rejected",
            VoteOutcome::Pending => {
                return Err(LedgerError::InvalidEvidence(
                    "a pending tally settles nothing".into(),
                ))
            }
        };
        let slashings = certificate.slashings(&r.worker);
        Ok((
            SettledJobRow {
                job_id: r.job_id,
                outcome: outcome.into(),
                result_digest: r.result_digest,
                worker,
                seq,
                stakes: serde_json::to_string(&stakes)
                    .map_err(|e| LedgerError::Invalid(e.to_string()))?,
            },
            slashings,
        ))
    }

    /// Today's validator stakes, the table certificates are checked against.
    pub(crate) async fn validator_stakes(&self) -> Result<BTreeMap<PublicKey, u64>, LedgerError> {
        self.store
            .neurons()
            .await?
            .into_iter()
            .filter(|n| n.role == Role::Validator.as_str() && n.stake > 0)
            .map(|n| {
                let key: PublicKey = n.hotkey.parse().map_err(|_| {
                    LedgerError::Invalid(format!("stored hotkey {} is not a key", n.hotkey))
                })?;
                Ok((key, n.stake))
            })
            .collect()
    }

    /// Removes the configured fraction of each slashed hotkey's stake (at least 1 while it
    /// has any), once per hotkey, job and reason.
    /// The build-manager set now in force: version and managers.
    pub async fn build_managers(&self) -> Result<BuildManagers, LedgerError> {
        let (version, managers) = match self.store.ledger_build_managers().await? {
            Some((v, text)) => (
                v,
                serde_json::from_str(&text)
                    .map_err(|e| LedgerError::Invalid(format!("stored build managers: {e}")))?,
            ),
            None => (0, Vec::new()),
        };
        Ok(BuildManagers {
            version,
            managers,
            council: self.params.build_council.clone(),
            threshold: self.params.build_council_threshold,
        })
    }

    /// The registry entry for a wasm.
    pub async fn build_info(&self, wasm_sha256: &str) -> Result<Option<BuildInfo>, LedgerError> {
        self.store
            .ledger_build_info(wasm_sha256)
            .await?
            .map(build_info_of)
            .transpose()
    }

    /// Registry entries written after transaction `since_seq`, oldest first.
    pub async fn build_infos_since(
        &self,
        since_seq: u64,
        limit: u32,
    ) -> Result<Vec<BuildInfo>, LedgerError> {
        self.store
            .ledger_build_infos_since(since_seq, limit)
            .await?
            .into_iter()
            .map(build_info_of)
            .collect()
    }

    /// Checks a new build-manager set: the next version, at most 64 distinct managers, and
    /// the threshold of distinct council members approving exactly this set and version.
    async fn check_build_managers(
        &self,
        version: u64,
        managers: &[PublicKey],
        approvals: &[Envelope],
    ) -> Result<(u64, String), LedgerError> {
        let council = &self.params.build_council;
        let threshold = self.params.build_council_threshold;
        if council.is_empty() || threshold == 0 {
            return Err(LedgerError::Unauthorized(
                "this ledger has no build council: the build-manager set cannot change".into(),
            ));
        }
        let current = self.build_managers().await?.version;
        if version != current + 1 {
            return Err(LedgerError::Invalid(format!(
                "build-manager set version {version}: the next version is {}",
                current + 1
            )));
        }
        let distinct: std::collections::BTreeSet<&PublicKey> = managers.iter().collect();
        if managers.len() > 64 || distinct.len() != managers.len() {
            return Err(LedgerError::Invalid(
                "at most 64 build managers, each once".into(),
            ));
        }
        let expected = BuildManagersApproval {
            chain_id: self.chain_id.clone(),
            version,
            managers: managers.to_vec(),
        };
        let mut approvers = std::collections::BTreeSet::new();
        for env in approvals.iter().take(council.len() * 2) {
            let Ok(v) = Signed::<BuildManagersApproval>::from_envelope(env.clone()).verify() else {
                return Err(LedgerError::InvalidEvidence(
                    "an approval's signature does not verify".into(),
                ));
            };
            if v.payload != expected {
                return Err(LedgerError::InvalidEvidence(
                    "an approval is for another chain, version or manager set".into(),
                ));
            }
            if !council.contains(&v.signer) {
                return Err(LedgerError::Unauthorized(format!(
                    "{} is not on the build council",
                    v.signer
                )));
            }
            approvers.insert(v.signer);
        }
        if approvers.len() < threshold as usize {
            return Err(LedgerError::Unauthorized(format!(
                "{} distinct council approvals; {threshold} of {} are needed",
                approvers.len(),
                council.len()
            )));
        }
        let text =
            serde_json::to_string(managers).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        Ok((version, text))
    }

    /// Checks an archive commitment: a registered worker, a lane name, a SHA-256, and bytes
    /// nobody committed before (the same worker again is a retry: `already_committed`).
    async fn check_archive_commit(
        &self,
        signer: &PublicKey,
        lane: &str,
        archive_sha256: &str,
        seq: u64,
        now_ms: i64,
    ) -> Result<hallmark_store::ArchiveCommitRow, LedgerError> {
        let me = signer.to_ss58();
        let Some(neuron) = self.store.neuron(&me).await? else {
            return Err(LedgerError::NotRegistered(me));
        };
        if neuron.role != Role::Worker.as_str() {
            return Err(LedgerError::Unauthorized(format!(
                "{me} is a {}, only workers commit archives",
                neuron.role
            )));
        }
        let lane_ok = !lane.is_empty()
            && lane.len() <= 32
            && lane
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !lane_ok {
            return Err(LedgerError::Invalid(format!(
                "lane {lane:?} is not a lane name"
            )));
        }
        if archive_sha256
            .parse::<hallmark_core::Sha256Digest>()
            .is_err()
        {
            return Err(LedgerError::Invalid(
                "archive_sha256 must be 64 lowercase hex digits".into(),
            ));
        }
        if let Some(first) = self.store.ledger_archive_commit(archive_sha256).await? {
            if first.hotkey == me {
                return Err(LedgerError::AlreadyCommitted {
                    validator: me,
                    run_id: first.lane,
                    commitment: archive_sha256.to_string(),
                });
            }
            return Err(LedgerError::ArchiveTaken {
                archive_sha256: archive_sha256.to_string(),
                owner: first.hotkey,
            });
        }
        Ok(hallmark_store::ArchiveCommitRow {
            archive_sha256: archive_sha256.to_string(),
            lane: lane.to_string(),
            hotkey: me,
            seq,
            committed_ms: now_ms,
        })
    }

    /// The commitment to an archive's bytes, if any.
    pub async fn archive_commit(
        &self,
        archive_sha256: &str,
    ) -> Result<Option<ArchiveCommit>, LedgerError> {
        let Some(r) = self.store.ledger_archive_commit(archive_sha256).await? else {
            return Ok(None);
        };
        Ok(Some(ArchiveCommit {
            hotkey: r
                .hotkey
                .parse()
                .map_err(|e| LedgerError::Invalid(format!("stored hotkey {}: {e}", r.hotkey)))?,
            archive_sha256: r.archive_sha256,
            lane: r.lane,
            seq: r.seq,
            committed_ms: r.committed_ms,
        }))
    }

    /// The anchor at `at_ms`: the first transaction applied at or after it and the log root
    /// that includes it (`None` until such a transaction exists and is logged).
    pub async fn anchor(&self, at_ms: i64) -> Result<Option<LedgerAnchor>, LedgerError> {
        let Some(seq) = self.store.ledger_first_tx_since(at_ms).await? else {
            return Ok(None);
        };
        if self.log.size().await < seq {
            return Ok(None);
        }
        let root = self.log.root_at(seq).await?;
        Ok(Some(LedgerAnchor {
            at_ms,
            seq,
            tree_size: seq,
            root: hex::encode(root),
        }))
    }

    /// Checks a registry write: a current manager, a wasm hash, a recipe object of bounded
    /// size (the lane checks its fields when it uses it).
    async fn check_build_info(
        &self,
        signer: &PublicKey,
        wasm_sha256: &str,
        recipe: &serde_json::Value,
        seq: u64,
    ) -> Result<hallmark_store::BuildInfoRow, LedgerError> {
        if !self.build_managers().await?.managers.contains(signer) {
            return Err(LedgerError::Unauthorized(format!(
                "{signer} is not a build manager"
            )));
        }
        if wasm_sha256.parse::<hallmark_core::Sha256Digest>().is_err() {
            return Err(LedgerError::Invalid(
                "wasm_sha256 must be 64 lowercase hex digits".into(),
            ));
        }
        let text =
            serde_json::to_string(recipe).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        if !recipe.is_object() || text.len() > 16 * 1024 {
            return Err(LedgerError::Invalid(
                "the recipe must be a JSON object of at most 16 KiB".into(),
            ));
        }
        Ok(hallmark_store::BuildInfoRow {
            wasm_sha256: wasm_sha256.to_string(),
            recipe: text,
            manager: signer.to_ss58(),
            seq,
        })
    }

    pub(crate) async fn apply_slashings(
        &self,
        commit: &mut LedgerCommit,
        job_id: &str,
        slashings: &[Slashing],
        seq: u64,
    ) -> Result<(), LedgerError> {
        for s in slashings {
            let hotkey = s.who.to_ss58();
            let reason = s.reason.as_str();
            if self.store.slashed(&hotkey, job_id, reason).await? {
                return Err(LedgerError::AlreadySlashed {
                    hotkey,
                    job_id: job_id.to_string(),
                    reason: reason.into(),
                });
            }
            let Some(mut neuron) = self.store.neuron(&hotkey).await? else {
                return Err(LedgerError::NotRegistered(hotkey));
            };
            let amount = slash_amount(neuron.stake, self.params.slash_fraction_bps);
            neuron.stake -= amount;
            commit.neurons.push(neuron);
            commit.slashes.push(SlashRow {
                hotkey,
                job_id: job_id.to_string(),
                reason: reason.into(),
                amount,
                seq,
            });
        }
        Ok(())
    }

    /// Computes Yuma for `epoch` from the weights validators set for it, the neurons'
    /// stakes and the bonds of the last computed epoch.
    async fn compute_yuma(&self, lane: &str, epoch: u64) -> Result<YumaEpoch, LedgerError> {
        let mg = self.metagraph().await?;
        let hotkeys: Vec<PublicKey> = mg.neurons.iter().map(|n| n.hotkey).collect();
        let index: std::collections::HashMap<PublicKey, usize> =
            hotkeys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        let n = hotkeys.len();
        let stake: Vec<f64> = mg
            .neurons
            .iter()
            .map(|nr| {
                if nr.role == Role::Validator {
                    nr.stake as f64
                } else {
                    0.0
                }
            })
            .collect();
        let mut weights = vec![vec![0.0; n]; n];
        let mut active = vec![false; n];
        for vw in self.weights(lane, epoch).await? {
            let Some(&row) = index.get(&vw.validator) else {
                continue;
            };
            active[row] = true;
            for w in vw.weights {
                if let Some(&col) = index.get(&w.hotkey) {
                    weights[row][col] = f64::from(w.weight);
                }
            }
        }
        let bonds = match self.store.yuma_epoch_before(lane, epoch).await? {
            Some((_, text)) => {
                let prev: YumaEpoch = serde_json::from_str(&text)
                    .map_err(|e| LedgerError::Invalid(format!("stored yuma epoch: {e}")))?;
                let prev_index: std::collections::HashMap<PublicKey, usize> = prev
                    .hotkeys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (*k, i))
                    .collect();
                // Carry bonds over by hotkey: neurons registered since start from zero.
                let mut b = vec![vec![0.0; n]; n];
                for (i, ki) in hotkeys.iter().enumerate() {
                    for (j, kj) in hotkeys.iter().enumerate() {
                        if let (Some(&pi), Some(&pj)) = (prev_index.get(ki), prev_index.get(kj)) {
                            b[i][j] = prev.bonds[pi][pj];
                        }
                    }
                }
                Some(b)
            }
            None => None,
        };
        let input = YumaInput {
            stake: stake.clone(),
            weights,
            kappa: self.params.kappa,
            bonds,
            alpha: self.params.bonds_alpha,
            bonds_penalty: 1.0,
            active: Some(active.clone()),
        };
        let out = yuma_epoch(&input).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        let emission = out
            .emission
            .iter()
            .map(|s| (s * self.params.emission_per_epoch as f64).floor() as u64)
            .collect();
        Ok(YumaEpoch {
            lane: lane.to_string(),
            epoch,
            hotkeys,
            active,
            stake,
            consensus: out.consensus,
            incentive: out.incentive,
            dividends: out.dividends,
            validator_trust: out.validator_trust,
            emission_share: out.emission,
            emission,
            bonds: out.bonds,
        })
    }

    /// Re-checks the whole chain: every link's hash and every envelope's signature.
    pub async fn audit_chain(&self) -> Result<u64, LedgerError> {
        let mut prev = GENESIS_PREV.to_string();
        let mut next_seq = 1;
        loop {
            let rows = self.store.ledger_txs(next_seq, 512).await?;
            if rows.is_empty() {
                return Ok(next_seq - 1);
            }
            for row in &rows {
                prev = check_link(&prev, next_seq, row)?;
                next_seq += 1;
            }
        }
    }
}

/// Checks the worker's signature on its result and that the certificate is about exactly that
/// job and result; returns the result.
pub(crate) fn certified_result(
    certificate: &hallmark_consensus::VoteCertificate,
    result: &Signed<hallmark_consensus::JobResult>,
) -> Result<hallmark_consensus::JobResult, LedgerError> {
    let verified = result
        .verify()
        .map_err(|e| LedgerError::InvalidEvidence(format!("job result: {e}")))?;
    let r = verified.payload;
    if verified.signer != r.worker {
        return Err(LedgerError::InvalidEvidence(format!(
            "job result names worker {} but is signed by {}",
            r.worker, verified.signer
        )));
    }
    if r.job_id != certificate.job_id || r.result_digest != certificate.result_digest {
        return Err(LedgerError::InvalidEvidence(
            "the certificate is about another job or result than the worker's".into(),
        ));
    }
    Ok(r)
}

/// The hash that chains transaction `seq` to its predecessor.
fn link_hash(
    seq: u64,
    prev_hash: &str,
    envelope: &hallmark_core::Envelope,
) -> Result<String, LedgerError> {
    let link = ChainLink {
        seq,
        prev_hash,
        envelope,
    };
    let bytes = to_canonical_bytes(&link).map_err(|e| LedgerError::Invalid(e.to_string()))?;
    Ok(sha256(&bytes).to_hex())
}

/// Checks that `row` is transaction `seq`, links to `prev`, carries a valid signature and its
/// own correct hash; returns that hash for the next link.
fn check_link(prev: &str, seq: u64, row: &LedgerTxRow) -> Result<String, LedgerError> {
    let broken =
        |why: &str| LedgerError::Invalid(format!("chain broken at seq {}: {why}", row.seq));
    if row.seq != seq {
        return Err(broken(&format!("expected seq {seq}")));
    }
    let env: hallmark_core::Envelope =
        serde_json::from_str(&row.envelope).map_err(|e| broken(&e.to_string()))?;
    Signed::<LedgerTx>::from_envelope(env.clone())
        .verify()
        .map_err(|e| LedgerError::BadSignature(format!("seq {}: {e}", row.seq)))?;
    if row.prev_hash != prev {
        return Err(broken("prev_hash does not match the previous transaction"));
    }
    let hash = link_hash(row.seq, prev, &env)?;
    if row.tx_hash != hash {
        return Err(broken("tx_hash does not match its contents"));
    }
    Ok(hash)
}

/// `bps` basis points of `stake` (at most all of it), and at least 1 while there is stake to
/// take and a fraction to take it by, so small stakes do not escape slashing by rounding.
fn slash_amount(stake: u64, bps: u64) -> u64 {
    let share = u128::from(stake) * u128::from(bps.min(10_000)) / 10_000;
    let floor = u64::from(stake > 0 && bps > 0);
    u64::try_from(share).unwrap_or(stake).max(floor)
}

fn validate_axon(axon: &str) -> Result<(), LedgerError> {
    let ok = (axon.starts_with("http://") || axon.starts_with("https://"))
        && axon.len() <= 256
        && !axon.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(LedgerError::Invalid(format!(
            "axon {axon:?} must be an http(s) URL without spaces, at most 256 characters"
        )))
    }
}

fn neuron_from_row(
    row: NeuronRow,
    stake: Option<&StakeRow>,
    params: &LedgerParams,
    now_ms: i64,
) -> Result<Neuron, LedgerError> {
    let corrupt = |what: &str| {
        LedgerError::Store(hallmark_store::StoreError::Corrupt(format!(
            "neuron {}: bad {what}",
            row.uid
        )))
    };
    let role = Role::parse(&row.role).ok_or_else(|| corrupt("role"))?;
    Ok(Neuron {
        uid: row.uid,
        hotkey: row.hotkey.parse().map_err(|_| corrupt("hotkey"))?,
        coldkey: row.coldkey.parse().map_err(|_| corrupt("coldkey"))?,
        role,
        stake: row.stake,
        axon: row.axon,
        tier: stake.map_or_else(|| default_tier(role).to_string(), |s| s.tier.clone()),
        locked_until_ms: stake.map_or(0, |s| s.locked_until_ms),
        last_heartbeat_ms: row.last_heartbeat_ms,
        active: params.is_active(role, row.last_heartbeat_ms, now_ms),
    })
}

#[async_trait]
impl Ledger for DevnetLedger {
    async fn submit(&self, tx: Signed<LedgerTx>) -> Result<TxReceipt, LedgerError> {
        let _turn = self.sequencer.lock().await;
        self.apply(&tx).await
    }

    async fn metagraph(&self) -> Result<Metagraph, LedgerError> {
        let stakes: std::collections::HashMap<String, StakeRow> = self
            .store
            .stakes()
            .await?
            .into_iter()
            .map(|s| (s.hotkey.clone(), s))
            .collect();
        let now_ms = hallmark_core::time::now_unix_ms();
        let neurons = self
            .store
            .neurons()
            .await?
            .into_iter()
            .map(|row| {
                let stake = stakes.get(&row.hotkey);
                neuron_from_row(row, stake, &self.params, now_ms)
            })
            .collect::<Result<_, _>>()?;
        Ok(Metagraph { neurons })
    }

    async fn stake(&self, hotkey: &PublicKey) -> Result<Option<StakeInfo>, LedgerError> {
        self.stake_info(hotkey).await
    }

    async fn confidential_account(
        &self,
        hotkey: &PublicKey,
    ) -> Result<Option<ConfidentialAccount>, LedgerError> {
        self.confidential(hotkey).await
    }

    async fn weights(&self, lane: &str, epoch: u64) -> Result<Vec<ValidatorWeights>, LedgerError> {
        self.store
            .weights(lane, epoch)
            .await?
            .into_iter()
            .map(|w| {
                Ok(ValidatorWeights {
                    lane: w.lane,
                    epoch: w.epoch,
                    validator: w.validator.parse().map_err(|_| {
                        LedgerError::Invalid(format!(
                            "stored validator {} is not a key",
                            w.validator
                        ))
                    })?,
                    weights: serde_json::from_str(&w.weights)
                        .map_err(|e| LedgerError::Invalid(e.to_string()))?,
                    seq: w.seq,
                })
            })
            .collect()
    }

    async fn balance(&self, account: &PublicKey) -> Result<(u64, u64), LedgerError> {
        Ok(self
            .store
            .account(&account.to_ss58())
            .await?
            .map(|a| (a.balance, a.nonce))
            .unwrap_or((0, 0)))
    }

    async fn commitment(
        &self,
        validator: &PublicKey,
        run_id: &str,
    ) -> Result<Option<Commitment>, LedgerError> {
        let Some(row) = self.store.commitment(&validator.to_ss58(), run_id).await? else {
            return Ok(None);
        };
        Ok(Some(Commitment {
            validator: *validator,
            run_id: row.run_id,
            commitment: row.commitment,
            envelope: serde_json::from_str(&row.envelope)
                .map_err(|e| LedgerError::Invalid(format!("stored commitment: {e}")))?,
            tx_hash: row.tx_hash,
        }))
    }

    async fn equivocations(&self) -> Result<Vec<EquivocationEvidence>, LedgerError> {
        self.store
            .equivocations()
            .await?
            .into_iter()
            .map(|r| {
                serde_json::from_str(&r.evidence)
                    .map_err(|e| LedgerError::Invalid(format!("stored evidence: {e}")))
            })
            .collect()
    }

    async fn slashes(&self) -> Result<Vec<Slash>, LedgerError> {
        let corrupt = |what: &str| LedgerError::Invalid(format!("stored slash: bad {what}"));
        self.store
            .slashes()
            .await?
            .into_iter()
            .map(|r| {
                Ok(Slash {
                    hotkey: r.hotkey.parse().map_err(|_| corrupt("hotkey"))?,
                    reason: SlashReason::parse(&r.reason).ok_or_else(|| corrupt("reason"))?,
                    job_id: r.job_id,
                    amount: r.amount,
                    seq: r.seq,
                })
            })
            .collect()
    }

    async fn settled_job(&self, job_id: &str) -> Result<Option<SettledJob>, LedgerError> {
        let corrupt = |what: &str| LedgerError::Invalid(format!("stored settlement: bad {what}"));
        let Some(r) = self.store.settled_job(job_id).await? else {
            return Ok(None);
        };
        Ok(Some(SettledJob {
            outcome: match r.outcome.as_str() {
                "approved" => VoteOutcome::Approved,
                "rejected" => VoteOutcome::Rejected,
                _ => return Err(corrupt("outcome")),
            },
            worker: r.worker.parse().map_err(|_| corrupt("worker"))?,
            job_id: r.job_id,
            result_digest: r.result_digest,
            seq: r.seq,
            stakes: serde_json::from_str(&r.stakes).map_err(|_| corrupt("stakes"))?,
        }))
    }

    async fn yuma_epoch(&self, lane: &str, epoch: u64) -> Result<YumaEpoch, LedgerError> {
        // The sequencer turn makes computing an epoch once, and closing it against SetWeights
        // for it, one step.
        let _turn = self.sequencer.lock().await;
        if let Some(text) = self.store.yuma_epoch(lane, epoch).await? {
            return serde_json::from_str(&text)
                .map_err(|e| LedgerError::Invalid(format!("stored yuma epoch: {e}")));
        }
        let result = self.compute_yuma(lane, epoch).await?;
        let text =
            serde_json::to_string(&result).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        let stored = self
            .store
            .put_yuma_epoch(lane, epoch, &text, hallmark_core::time::now_unix_ms())
            .await?;
        serde_json::from_str(&stored).map_err(|e| LedgerError::Invalid(e.to_string()))
    }
}

fn build_info_of(row: hallmark_store::BuildInfoRow) -> Result<BuildInfo, LedgerError> {
    let corrupt = |e: String| LedgerError::Invalid(format!("stored build info: {e}"));
    Ok(BuildInfo {
        recipe: serde_json::from_str(&row.recipe).map_err(|e| corrupt(e.to_string()))?,
        manager: row
            .manager
            .parse()
            .map_err(|e: hallmark_core::keys::KeyError| corrupt(e.to_string()))?,
        wasm_sha256: row.wasm_sha256,
        seq: row.seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::WeightEntry;
    use hallmark_core::Keypair;

    struct Net {
        ledger: DevnetLedger,
        cold: Keypair,
        val: Keypair,
        work: Keypair,
        nonce: std::sync::atomic::AtomicU64,
    }

    impl Net {
        /// Registers `hotkey` from the test coldkey.
        async fn register(&self, hotkey: &Keypair, role: Role, stake: u64) {
            let body = TxBody::Register {
                hotkey: hotkey.public(),
                role,
                stake,
            };
            self.ledger.submit(self.tx(&self.cold, body)).await.unwrap();
        }

        fn tx(&self, key: &Keypair, body: TxBody) -> Signed<LedgerTx> {
            let nonce = self.nonce.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Signed::sign(
                &LedgerTx {
                    chain_id: "test".into(),
                    nonce,
                    body,
                },
                key,
            )
            .unwrap()
        }
    }

    async fn net(store: Store) -> Net {
        let cold = Keypair::from_seed(&[9; 32]);
        let genesis = Genesis {
            chain_id: "test".into(),
            balances: vec![(cold.public(), 10_000)],
        };
        Net {
            ledger: DevnetLedger::open(
                store,
                &genesis,
                LedgerParams::default(),
                Keypair::from_seed(&[42; 32]),
            )
            .await
            .unwrap(),
            cold,
            val: Keypair::from_seed(&[1; 32]),
            work: Keypair::from_seed(&[2; 32]),
            nonce: 1.into(),
        }
    }

    #[tokio::test]
    async fn register_serve_weights_and_audit() {
        let n = net(Store::open_url("sqlite::memory:").await.unwrap()).await;
        let l = &n.ledger;
        n.register(&n.val, Role::Validator, 2_000).await;
        n.register(&n.work, Role::Worker, 100).await;
        l.submit(n.tx(
            &n.val,
            TxBody::ServeAxon {
                axon: "http://127.0.0.1:9".into(),
            },
        ))
        .await
        .unwrap();
        let mg = l.metagraph().await.unwrap();
        assert_eq!(mg.validators().count(), 1);
        assert_eq!(mg.validator_stake(), 2_000);
        assert_eq!(
            mg.neuron(&n.val.public()).unwrap().axon.as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(l.balance(&n.cold.public()).await.unwrap().0, 7_900);

        let w = vec![WeightEntry {
            hotkey: n.work.public(),
            weight: u16::MAX,
        }];
        l.submit(n.tx(
            &n.val,
            TxBody::SetWeights {
                lane: "sat".into(),
                epoch: 1,
                weights: w.clone(),
            },
        ))
        .await
        .unwrap();
        assert_eq!(l.weights("sat", 1).await.unwrap()[0].weights, w);
        assert_eq!(l.audit_chain().await.unwrap(), 4);
    }

    #[tokio::test]
    async fn archive_commitments_and_anchors() {
        let n = net(Store::open_url("sqlite::memory:").await.unwrap()).await;
        let l = &n.ledger;
        let before = hallmark_core::time::now_unix_ms();
        assert!(l.anchor(before + 60_000).await.unwrap().is_none());
        n.register(&n.val, Role::Validator, 2_000).await;
        n.register(&n.work, Role::Worker, 100).await;
        let other = Keypair::from_seed(&[3; 32]);
        n.register(&other, Role::Worker, 100).await;
        let sha = "ab".repeat(32);
        let commit = |lane: &str, sha: &str| TxBody::CommitArchive {
            lane: lane.into(),
            archive_sha256: sha.into(),
        };
        l.submit(n.tx(&n.work, commit("eval", &sha))).await.unwrap();
        let c = l.archive_commit(&sha).await.unwrap().unwrap();
        assert_eq!(
            (c.hotkey, c.lane.as_str(), c.seq),
            (n.work.public(), "eval", 4)
        );
        assert!(c.committed_ms >= before);
        // The same worker again is a retry; another worker's copy is refused.
        let again = l
            .submit(n.tx(&n.work, commit("eval", &sha)))
            .await
            .unwrap_err();
        assert_eq!(again.code(), "already_committed");
        let copy = l
            .submit(n.tx(&other, commit("eval", &sha)))
            .await
            .unwrap_err();
        assert_eq!(copy.code(), "archive_taken");
        assert_eq!(
            l.archive_commit(&sha).await.unwrap().unwrap().hotkey,
            n.work.public()
        );
        // Only workers, real hashes, lane names.
        for (key, body, code) in [
            (&n.val, commit("eval", &"cd".repeat(32)), "unauthorized"),
            (&n.work, commit("eval", "nothex"), "invalid_transaction"),
            (
                &n.work,
                commit("Eval!", &"cd".repeat(32)),
                "invalid_transaction",
            ),
        ] {
            assert_eq!(l.submit(n.tx(key, body)).await.unwrap_err().code(), code);
        }
        assert!(l.archive_commit(&"cd".repeat(32)).await.unwrap().is_none());
        // The anchor at a past time is the first transaction from that second on, with the
        // log's root at its size; it does not move as transactions are added.
        let a = l.anchor(0).await.unwrap().unwrap();
        assert_eq!((a.seq, a.tree_size), (1, 1));
        assert_eq!(a.root, hex::encode(l.log().root_at(1).await.unwrap()));
        l.submit(n.tx(&n.work, TxBody::Heartbeat {})).await.unwrap();
        assert_eq!(l.anchor(0).await.unwrap().unwrap(), a);
        // A time after the last transaction waits for the next one, then stays put.
        let later = hallmark_core::time::now_unix_ms() + 1;
        assert!(l.anchor(later).await.unwrap().is_none());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        l.submit(n.tx(&n.work, TxBody::Heartbeat {})).await.unwrap();
        let next = l.anchor(later).await.unwrap().unwrap();
        assert_eq!(next.seq, l.audit_chain().await.unwrap());
        l.submit(n.tx(&n.work, TxBody::Heartbeat {})).await.unwrap();
        assert_eq!(l.anchor(later).await.unwrap().unwrap(), next);
    }

    #[tokio::test]
    async fn refusals() {
        let n = net(Store::open_url("sqlite::memory:").await.unwrap()).await;
        let l = &n.ledger;
        let reg = n.tx(
            &n.cold,
            TxBody::Register {
                hotkey: n.val.public(),
                role: Role::Validator,
                stake: 2_000,
            },
        );
        l.submit(reg.clone()).await.unwrap();
        // Replay of the same signed transaction.
        assert_eq!(l.submit(reg).await.unwrap_err().code(), "stale_nonce");
        // Too little stake, too little balance.
        let e = l
            .submit(n.tx(
                &n.cold,
                TxBody::Register {
                    hotkey: n.work.public(),
                    role: Role::Validator,
                    stake: 10,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "stake_below_minimum");
        let e = l
            .submit(n.tx(
                &n.cold,
                TxBody::Register {
                    hotkey: n.work.public(),
                    role: Role::Worker,
                    stake: 1_000_000,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "insufficient_balance");
        // Someone else's coldkey cannot take over a registered hotkey.
        let thief = Keypair::generate();
        let e = l
            .submit(n.tx(
                &thief,
                TxBody::Register {
                    hotkey: n.val.public(),
                    role: Role::Validator,
                    stake: 1_000,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "already_registered");
        // Unregistered hotkeys can't serve or set weights; workers can't set weights.
        let e = l
            .submit(n.tx(
                &n.work,
                TxBody::ServeAxon {
                    axon: "http://x".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "not_registered");
        n.register(&n.work, Role::Worker, 100).await;
        let e = l
            .submit(n.tx(
                &n.work,
                TxBody::SetWeights {
                    lane: "sat".into(),
                    epoch: 1,
                    weights: vec![],
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "unauthorized");
        let e = l
            .submit(n.tx(
                &n.val,
                TxBody::ServeAxon {
                    axon: "ftp://x".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_transaction");
        // Wrong chain.
        let other = Signed::sign(
            &LedgerTx {
                chain_id: "main".into(),
                nonce: 999,
                body: TxBody::ServeAxon {
                    axon: "http://x".into(),
                },
            },
            &n.val,
        )
        .unwrap();
        assert_eq!(l.submit(other).await.unwrap_err().code(), "wrong_chain");
        // Tampered envelope.
        let good = n.tx(
            &n.val,
            TxBody::ServeAxon {
                axon: "http://x".into(),
            },
        );
        let mut env = good.envelope().clone();
        env.signatures[0].keyid = n.work.public().to_ss58();
        assert_eq!(
            l.submit(Signed::from_envelope(env))
                .await
                .unwrap_err()
                .code(),
            "bad_signature"
        );
        // Nothing that failed left a trace in the chain.
        assert_eq!(l.audit_chain().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn audit_catches_every_kind_of_tampering() {
        let store = Store::open_url("sqlite::memory:").await.unwrap();
        let n = net(store.clone()).await;
        for hotkey in [n.val.public(), n.work.public()] {
            let body = TxBody::Register {
                hotkey,
                role: Role::Worker,
                stake: 100,
            };
            n.ledger.submit(n.tx(&n.cold, body)).await.unwrap();
        }
        let serve = TxBody::ServeAxon {
            axon: "http://x".into(),
        };
        n.ledger.submit(n.tx(&n.val, serve)).await.unwrap();
        assert_eq!(n.ledger.audit_chain().await.unwrap(), 3);
        let rows = store.ledger_txs(1, 100).await.unwrap();
        let audit = |rows: &[LedgerTxRow]| -> Result<(), LedgerError> {
            let mut prev = GENESIS_PREV.to_string();
            for (i, row) in rows.iter().enumerate() {
                prev = check_link(&prev, i as u64 + 1, row)?;
            }
            Ok(())
        };
        audit(&rows).unwrap();

        // Another validly signed transaction swapped into the middle.
        let mut t = rows.clone();
        t[1].envelope = rows[2].envelope.clone();
        assert!(audit(&t).is_err());
        // A payload edited after signing.
        let mut t = rows.clone();
        t[1].envelope = t[1]
            .envelope
            .replacen("\"payload\":\"", "\"payload\":\"e30", 1);
        assert_ne!(t[1].envelope, rows[1].envelope);
        assert_eq!(audit(&t).unwrap_err().code(), "bad_signature");
        // A rewritten hash, a broken back-link, a removed transaction, reordering.
        let mut t = rows.clone();
        t[0].tx_hash = "00".repeat(32);
        assert!(audit(&t).is_err());
        let mut t = rows.clone();
        t[2].prev_hash = rows[0].tx_hash.clone();
        assert!(audit(&t).is_err());
        let mut t = rows.clone();
        t.remove(1);
        assert!(audit(&t).is_err());
        let mut t = rows.clone();
        t.swap(0, 1);
        assert!(audit(&t).is_err());
    }

    #[tokio::test]
    async fn persists_and_refuses_other_genesis() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        {
            let n = net(Store::open(&path).await.unwrap()).await;
            n.ledger
                .submit(n.tx(
                    &n.cold,
                    TxBody::Register {
                        hotkey: n.val.public(),
                        role: Role::Validator,
                        stake: 2_000,
                    },
                ))
                .await
                .unwrap();
        }
        let n = net(Store::open(&path).await.unwrap()).await;
        assert_eq!(n.ledger.metagraph().await.unwrap().neurons.len(), 1);
        let other = Genesis {
            chain_id: "other".into(),
            balances: vec![],
        };
        assert!(DevnetLedger::open(
            Store::open(&path).await.unwrap(),
            &other,
            LedgerParams::default(),
            Keypair::from_seed(&[42; 32])
        )
        .await
        .is_err());
    }

    #[tokio::test]
    async fn commitments_equivocation_log_and_yuma() {
        use hallmark_consensus::commitment::{commitment_string, scores_hash};
        let n = net(Store::open_url("sqlite::memory:").await.unwrap()).await;
        let l = &n.ledger;
        n.register(&n.val, Role::Validator, 2_000).await;
        n.register(&n.work, Role::Worker, 100).await;
        let h = scores_hash("round-000001", "sat", &std::collections::BTreeMap::new()).unwrap();
        let c = commitment_string("round-000001", &h);
        let commit = |c: String| TxBody::CommitScores {
            run_id: "round-000001".into(),
            commitment: c,
        };
        l.submit(n.tx(&n.val, commit(c.clone()))).await.unwrap();
        // A retry of the same commitment is refused as already made; a different one is
        // equivocation, kept as evidence with both signed transactions.
        assert_eq!(
            l.submit(n.tx(&n.val, commit(c.clone())))
                .await
                .unwrap_err()
                .code(),
            "already_committed"
        );
        let other = commitment_string("round-000001", &hallmark_core::sha256(b"x"));
        assert_eq!(
            l.submit(n.tx(&n.val, commit(other)))
                .await
                .unwrap_err()
                .code(),
            "equivocation"
        );
        let ev = l.equivocations().await.unwrap();
        assert_eq!(ev.len(), 1);
        ev[0].verify_signatures().unwrap();
        assert_eq!(
            l.commitment(&n.val.public(), "round-000001")
                .await
                .unwrap()
                .unwrap()
                .commitment,
            c
        );
        // Malformed, wrong-run and non-validator commitments are refused.
        assert_eq!(
            l.submit(n.tx(&n.val, commit("nonsense".into())))
                .await
                .unwrap_err()
                .code(),
            "invalid_transaction"
        );
        let wrong_run = commitment_string("round-000002", &h);
        assert_eq!(
            l.submit(n.tx(&n.val, commit(wrong_run)))
                .await
                .unwrap_err()
                .code(),
            "invalid_transaction"
        );
        assert_eq!(
            l.submit(n.tx(&n.work, commit(c))).await.unwrap_err().code(),
            "unauthorized"
        );

        // Yuma over epoch 1: the one validator weights the one worker.
        l.submit(n.tx(
            &n.val,
            TxBody::SetWeights {
                lane: "sat".into(),
                epoch: 1,
                weights: vec![WeightEntry {
                    hotkey: n.work.public(),
                    weight: u16::MAX,
                }],
            },
        ))
        .await
        .unwrap();
        let y = l.yuma_epoch("sat", 1).await.unwrap();
        let w = y
            .hotkeys
            .iter()
            .position(|k| *k == n.work.public())
            .unwrap();
        let v = y.hotkeys.iter().position(|k| *k == n.val.public()).unwrap();
        assert_eq!(y.incentive[w], 1.0);
        assert_eq!(y.dividends[v], 1.0);
        assert_eq!(y.emission_share[w], 0.5);
        assert!(y.active[v]);
        // The epoch is closed now, and its result stable.
        let late = n.tx(
            &n.val,
            TxBody::SetWeights {
                lane: "sat".into(),
                epoch: 1,
                weights: vec![],
            },
        );
        assert_eq!(l.submit(late).await.unwrap_err().code(), "epoch_closed");
        assert_eq!(l.yuma_epoch("sat", 1).await.unwrap(), y);

        // Every applied transaction is a log leaf, in order.
        let applied = l.audit_chain().await.unwrap();
        assert_eq!(l.log().size().await, applied);
        let cp = l.checkpoint().await.unwrap();
        let vkey = hallmark_log::NoteVerifierKey::new(
            l.log_origin(),
            Keypair::from_seed(&[42; 32]).public(),
        )
        .unwrap();
        assert_eq!(cp.verify(&vkey).unwrap().size, applied);
    }

    #[test]
    fn slash_amounts_round_up_to_one_and_never_exceed_the_stake() {
        assert_eq!(slash_amount(1_000, 1_000), 100);
        assert_eq!(
            slash_amount(5, 1_000),
            1,
            "rounding must not spare a small stake"
        );
        assert_eq!(slash_amount(0, 1_000), 0);
        assert_eq!(slash_amount(1_000, 0), 0);
        assert_eq!(
            slash_amount(1_000, 25_000),
            1_000,
            "capped at the whole stake"
        );
        assert_eq!(slash_amount(u64::MAX, 10_000), u64::MAX);
    }

    #[tokio::test]
    async fn settlements_and_equivocations_slash_from_evidence_alone() {
        use hallmark_consensus::{tally_votes, JobResult, JobVote, VoteEquivocation};
        let n = net(Store::open_url("sqlite::memory:").await.unwrap()).await;
        let l = &n.ledger;
        let vals: Vec<Keypair> = (10..13).map(|i| Keypair::from_seed(&[i; 32])).collect();
        for v in &vals {
            n.register(v, Role::Validator, 1_000).await;
        }
        n.register(&n.work, Role::Worker, 500).await;
        let stakes: std::collections::BTreeMap<_, _> =
            vals.iter().map(|v| (v.public(), 1_000u64)).collect();
        let vote = |k: &Keypair, job: &str, valid: bool| {
            Signed::sign(
                &JobVote {
                    job_id: job.into(),
                    result_digest: "d".into(),
                    valid,
                },
                k,
            )
            .unwrap()
        };
        let result = |job: &str, signer: &Keypair| {
            Signed::sign(
                &JobResult {
                    job_id: job.into(),
                    worker: n.work.public(),
                    result_digest: "d".into(),
                },
                signer,
            )
            .unwrap()
        };
        let settle = |cert: hallmark_consensus::VoteCertificate, res| TxBody::SettleJob {
            certificate: cert,
            result: res,
        };
        let stake_of = |mg: &Metagraph, k: &Keypair| mg.neuron(&k.public()).unwrap().stake;

        // Rejected: two invalid votes and one dissenting valid vote. The worker and the
        // dissenter each lose 10%.
        let votes = [
            vote(&vals[0], "bad", false),
            vote(&vals[1], "bad", false),
            vote(&vals[2], "bad", true),
        ];
        let tally = tally_votes("bad", "d", &votes, &stakes, Quorum::TWO_THIRDS);
        let cert = tally.certificate().unwrap();
        // A result signed by someone other than the worker it names is refused.
        let forged = l
            .submit(n.tx(&n.cold, settle(cert.clone(), result("bad", &vals[0]))))
            .await
            .unwrap_err();
        assert_eq!(forged.code(), "invalid_evidence");
        l.submit(n.tx(&n.cold, settle(cert.clone(), result("bad", &n.work))))
            .await
            .unwrap();
        let mg = l.metagraph().await.unwrap();
        assert_eq!(stake_of(&mg, &n.work), 450);
        assert_eq!(stake_of(&mg, &vals[2]), 900);
        assert_eq!(stake_of(&mg, &vals[0]), 1_000);
        // Settling twice is refused.
        let again = l
            .submit(n.tx(&n.cold, settle(cert, result("bad", &n.work))))
            .await
            .unwrap_err();
        assert_eq!(again.code(), "already_settled");
        let settled = l.settled_job("bad").await.unwrap().unwrap();
        assert_eq!(settled.outcome, VoteOutcome::Rejected);
        // The stake table it was checked against is kept, so the certificate re-checks
        // offline even though the dissenter has since been slashed.
        assert_eq!(settled.stakes, stakes);

        // A certificate claiming approval with too little stake is refused (stakes are now
        // 1000, 1000, 900: one valid vote is far from 2/3).
        let thin = hallmark_consensus::VoteCertificate {
            job_id: "good".into(),
            result_digest: "d".into(),
            outcome: VoteOutcome::Approved,
            votes: vec![vote(&vals[0], "good", true)],
        };
        let refused = l
            .submit(n.tx(&n.cold, settle(thin, result("good", &n.work))))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "invalid_evidence");
        assert!(refused.to_string().contains("certificate"), "{refused}");

        // Equivocation: both votes checked by the ledger itself, slashed once.
        let evidence = VoteEquivocation {
            validator: vals[1].public(),
            first: vote(&vals[1], "good", true),
            second: vote(&vals[1], "good", false),
        };
        l.submit(n.tx(
            &n.cold,
            TxBody::SlashEquivocation {
                evidence: evidence.clone(),
            },
        ))
        .await
        .unwrap();
        assert_eq!(stake_of(&l.metagraph().await.unwrap(), &vals[1]), 900);
        let twice = l
            .submit(n.tx(&n.cold, TxBody::SlashEquivocation { evidence }))
            .await
            .unwrap_err();
        assert_eq!(twice.code(), "already_slashed");
        let framed = VoteEquivocation {
            validator: vals[0].public(),
            first: vote(&vals[0], "good", true),
            second: vote(&vals[1], "good", false),
        };
        let framed = l
            .submit(n.tx(&n.cold, TxBody::SlashEquivocation { evidence: framed }))
            .await
            .unwrap_err();
        assert_eq!(framed.code(), "invalid_evidence");
        let slashes = l.slashes().await.unwrap();
        let reasons: Vec<_> = slashes.iter().map(|s| (s.reason, s.amount)).collect();
        assert_eq!(
            reasons,
            [
                (SlashReason::RejectedResult, 50),
                (SlashReason::DissentingVote, 100),
                (SlashReason::Equivocation, 100)
            ]
        );
        // Every applied transaction is still a sound chain.
        l.audit_chain().await.unwrap();
    }

    #[test]
    fn params_without_default_tiers_or_epochs_are_refused() {
        assert_eq!(LedgerParams::default().check(), Ok(()));
        let mut p = LedgerParams::default();
        p.tiers.remove("cpu");
        assert!(p.check().unwrap_err().contains("\"cpu\" must exist"));
        let mut p = LedgerParams::default();
        p.tiers.insert(
            "validator".into(),
            Tier {
                role: Role::Worker,
                min_stake: 1,
            },
        );
        assert!(p.check().unwrap_err().contains("validators"));
        let p = LedgerParams {
            heartbeat_epoch_ms: 0,
            ..LedgerParams::default()
        };
        assert!(p.check().unwrap_err().contains("heartbeat"));
        let p = LedgerParams {
            slash_fraction_bps: 10_001,
            ..LedgerParams::default()
        };
        assert!(p.check().unwrap_err().contains("slash_fraction_bps"));
    }

    #[test]
    fn activity_follows_the_last_heartbeat() {
        let p = LedgerParams {
            heartbeat_epoch_ms: 1_000,
            inactive_after_epochs: 3,
            ..LedgerParams::default()
        };
        assert!(p.is_active(Role::Worker, 10_000, 13_000));
        assert!(!p.is_active(Role::Worker, 10_000, 13_001));
        assert!(!p.is_active(Role::Worker, 0, 1), "never beat");
        assert!(p.is_active(Role::Validator, 0, 1_000_000));
    }
}
