//! Ledger tables: the hash-chained transaction log, accounts, neurons and weights.

use crate::StoreRow;

use crate::{to_i64, to_u64, Store, StoreError};

/// One applied ledger transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerTxRow {
    pub seq: u64,
    pub tx_hash: String,
    pub prev_hash: String,
    pub signer: String,
    pub kind: String,
    pub envelope: String,
    /// Seconds since the epoch, by the ledger's clock.
    pub applied_at: i64,
    /// The block time in milliseconds (0 for rows from before schema version 11).
    pub applied_ms: i64,
    /// The ledger state root after this transaction (hex; '' before schema version 12).
    pub state_root: String,
}

/// An account's public balance and transaction nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub address: String,
    pub balance: u64,
    pub nonce: u64,
}

/// A registered hotkey (a neuron in the metagraph).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeuronRow {
    pub uid: u64,
    pub hotkey: String,
    pub coldkey: String,
    pub role: String,
    pub stake: u64,
    pub axon: Option<String>,
    pub registered_seq: u64,
    /// Sequencer time of its last heartbeat (ms; 0 = never).
    pub last_heartbeat_ms: i64,
    /// The stake that counts for votes and weights this stake epoch (validators; 0 for
    /// workers): bonded stake waits for the next epoch boundary, a cut counts at once.
    pub voting_stake: u64,
}

/// A hotkey's stake bookkeeping: owner, tier, lock, and stake bonded before registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StakeRow {
    pub hotkey: String,
    pub coldkey: String,
    pub tier: String,
    /// Stake bonded while the hotkey is not registered (registration moves it to the neuron).
    pub pending: u64,
    pub locked_until_ms: i64,
}

/// A worker's private balance (hex of its ElGamal key, ciphertext and hint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfidentialRow {
    pub hotkey: String,
    pub pubkey: String,
    pub balance: String,
    pub hint: Option<String>,
    /// The transaction that last changed it.
    pub seq: u64,
}

/// A spent payment nullifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NullifierRow {
    pub nullifier: String,
    pub job_id: String,
    pub worker: String,
    pub amount: u64,
    pub seq: u64,
}

/// One validator's weights for one lane's epoch (JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsRow {
    pub lane: String,
    pub epoch: u64,
    pub validator: String,
    pub weights: String,
    pub seq: u64,
}

/// A job the ledger settled from a vote certificate (at most once per job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledJobRow {
    pub job_id: String,
    pub outcome: String,
    pub result_digest: String,
    pub worker: String,
    pub seq: u64,
    /// The validator stakes (JSON) the certificate was checked against.
    pub stakes: String,
}

/// Stake removed from a hotkey, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashRow {
    pub hotkey: String,
    pub job_id: String,
    pub reason: String,
    pub amount: u64,
    pub seq: u64,
}

/// Everything one transaction changes, committed atomically with the transaction itself.
#[derive(Debug, Clone, Default)]
pub struct LedgerCommit {
    pub tx: Option<LedgerTxRow>,
    pub accounts: Vec<AccountRow>,
    /// Neurons to insert or update (matched by hotkey; `uid` is assigned on insert).
    pub neurons: Vec<NeuronRow>,
    pub weights: Vec<WeightsRow>,
    /// A score-hash commitment the transaction made.
    pub commitment: Option<crate::CommitmentRow>,
    /// A job this transaction settled.
    pub settled_job: Option<SettledJobRow>,
    /// Slashings this transaction applied (the neurons' new stakes are in `neurons`).
    pub slashes: Vec<SlashRow>,
    /// Stake records to insert or replace.
    pub stakes: Vec<StakeRow>,
    /// A private balance to insert or replace.
    pub confidential: Option<ConfidentialRow>,
    /// A payment nullifier this transaction spent.
    pub nullifier: Option<NullifierRow>,
    /// A new build-manager set: its version and the managers (JSON array).
    pub build_managers: Option<(u64, String)>,
    /// A build-info registry entry written (or replaced).
    pub build_info: Option<BuildInfoRow>,
    /// An eval archive commitment (first of its bytes).
    pub archive_commit: Option<ArchiveCommitRow>,
    /// A lane's epoch this transaction closed: `(lane, epoch, Yuma result JSON)`.
    pub yuma: Option<(String, u64, String)>,
}

/// A worker's commitment to an eval archive's bytes, as the ledger applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveCommitRow {
    pub archive_sha256: String,
    pub lane: String,
    pub hotkey: String,
    pub seq: u64,
    /// The ledger's clock when it applied the commitment.
    pub committed_ms: i64,
}

/// One build-info registry entry: the recipe a manager recorded for a wasm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfoRow {
    pub wasm_sha256: String,
    /// The recipe (JSON).
    pub recipe: String,
    pub manager: String,
    pub seq: u64,
}

fn build_info_of(r: &impl StoreRow) -> Result<BuildInfoRow, StoreError> {
    Ok(BuildInfoRow {
        wasm_sha256: r.try_get("wasm_sha256")?,
        recipe: r.try_get("recipe")?,
        manager: r.try_get("manager")?,
        seq: to_u64(r.try_get("seq")?, "seq")?,
    })
}

impl Store {
    /// The current build-manager set: its version and managers (JSON array).
    pub async fn ledger_build_managers(&self) -> Result<Option<(u64, String)>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query(
            "SELECT version, managers FROM ledger_build_managers ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(pool)
        .await?;
        row.map(|r| Ok((to_u64(r.try_get(0)?, "version")?, r.try_get(1)?)))
            .transpose()
        })
    }

    /// The registry entry for a wasm.
    pub async fn ledger_build_info(
        &self,
        wasm_sha256: &str,
    ) -> Result<Option<BuildInfoRow>, StoreError> {
        with_pool!(self, pool => {
        sqlx::query(
            "SELECT wasm_sha256, recipe, manager, seq FROM ledger_build_info WHERE wasm_sha256 = $1",
        )
        .bind(wasm_sha256)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(build_info_of)
        .transpose()
        })
    }

    /// Registry entries written after transaction `since_seq`, oldest first.
    pub async fn ledger_build_infos_since(
        &self,
        since_seq: u64,
        limit: u32,
    ) -> Result<Vec<BuildInfoRow>, StoreError> {
        with_pool!(self, pool => {
        sqlx::query("SELECT wasm_sha256, recipe, manager, seq FROM ledger_build_info WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(to_i64(since_seq, "seq")?)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(build_info_of)
            .collect()
        })
    }

    /// The commitment to an archive's bytes, if any.
    pub async fn ledger_archive_commit(
        &self,
        archive_sha256: &str,
    ) -> Result<Option<ArchiveCommitRow>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query("SELECT archive_sha256, lane, hotkey, seq, committed_ms FROM ledger_archive_commits WHERE archive_sha256 = $1")
            .bind(archive_sha256)
            .fetch_optional(pool)
            .await?;
        row.map(|r| {
            Ok(ArchiveCommitRow {
                archive_sha256: r.try_get(0)?,
                lane: r.try_get(1)?,
                hotkey: r.try_get(2)?,
                seq: to_u64(r.try_get(3)?, "seq")?,
                committed_ms: r.try_get(4)?,
            })
        })
        .transpose()
        })
    }

    /// The first transaction applied at or after `at_ms` (ms, the ledger's clock), if any yet.
    pub async fn ledger_first_tx_since(&self, at_ms: i64) -> Result<Option<u64>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query("SELECT MIN(seq) FROM ledger_txs WHERE applied_ms >= $1")
            .bind(at_ms)
            .fetch_one(pool)
            .await?;
        row.try_get::<Option<i64>, _>(0)?
            .map(|s| to_u64(s, "seq"))
            .transpose()
        })
    }

    /// The last applied transaction's sequence number and hash.
    pub async fn ledger_head(&self) -> Result<Option<(u64, String)>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query("SELECT seq, tx_hash FROM ledger_txs ORDER BY seq DESC LIMIT 1")
            .fetch_optional(pool)
            .await?;
        row.map(|r| Ok((to_u64(r.get(0), "seq")?, r.get(1))))
            .transpose()
        })
    }

    /// Applies one transaction and its effects in a single database transaction. Fails with
    /// `Conflict` if another transaction took the same sequence number first.
    pub async fn commit_ledger(&self, commit: &LedgerCommit) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        let mut tx = pool.begin().await?;
        if let Some(t) = &commit.tx {
            let res = sqlx::query("INSERT INTO ledger_txs (seq, tx_hash, prev_hash, signer, kind, envelope, applied_at, applied_ms, state_root) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(to_i64(t.seq, "seq")?)
                .bind(&t.tx_hash)
                .bind(&t.prev_hash)
                .bind(&t.signer)
                .bind(&t.kind)
                .bind(&t.envelope)
                .bind(t.applied_at)
                .bind(t.applied_ms)
                .bind(&t.state_root)
                .execute(&mut *tx)
                .await;
            if let Err(sqlx::Error::Database(e)) = &res {
                if e.is_unique_violation() {
                    return Err(StoreError::Conflict(format!(
                        "ledger tx {} already applied",
                        t.tx_hash
                    )));
                }
            }
            res?;
        }
        for a in &commit.accounts {
            sqlx::query("INSERT INTO accounts (address, balance, nonce) VALUES ($1, $2, $3) ON CONFLICT(address) DO UPDATE SET balance = excluded.balance, nonce = excluded.nonce")
                .bind(&a.address)
                .bind(to_i64(a.balance, "balance")?)
                .bind(to_i64(a.nonce, "nonce")?)
                .execute(&mut *tx)
                .await?;
        }
        for n in &commit.neurons {
            sqlx::query("INSERT INTO neurons (uid, hotkey, coldkey, role, stake, axon, registered_seq, last_heartbeat_ms, voting_stake) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT(hotkey) DO UPDATE SET stake = excluded.stake, axon = excluded.axon, last_heartbeat_ms = excluded.last_heartbeat_ms, voting_stake = excluded.voting_stake")
                .bind(to_i64(n.uid, "uid")?)
                .bind(&n.hotkey)
                .bind(&n.coldkey)
                .bind(&n.role)
                .bind(to_i64(n.stake, "stake")?)
                .bind(&n.axon)
                .bind(to_i64(n.registered_seq, "seq")?)
                .bind(n.last_heartbeat_ms)
                .bind(to_i64(n.voting_stake, "voting stake")?)
                .execute(&mut *tx)
                .await?;
        }
        for st in &commit.stakes {
            sqlx::query("INSERT INTO ledger_stakes (hotkey, coldkey, tier, pending, locked_until_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT(hotkey) DO UPDATE SET coldkey = excluded.coldkey, tier = excluded.tier, pending = excluded.pending, locked_until_ms = excluded.locked_until_ms")
                .bind(&st.hotkey)
                .bind(&st.coldkey)
                .bind(&st.tier)
                .bind(to_i64(st.pending, "pending")?)
                .bind(st.locked_until_ms)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(c) = &commit.confidential {
            sqlx::query("INSERT INTO ledger_confidential (hotkey, pubkey, balance, hint, seq) VALUES ($1, $2, $3, $4, $5) ON CONFLICT(hotkey) DO UPDATE SET balance = excluded.balance, hint = excluded.hint, seq = excluded.seq")
                .bind(&c.hotkey)
                .bind(&c.pubkey)
                .bind(&c.balance)
                .bind(&c.hint)
                .bind(to_i64(c.seq, "seq")?)
                .execute(&mut *tx)
                .await?;
        }
        if let Some((version, managers)) = &commit.build_managers {
            sqlx::query(
                "INSERT INTO ledger_build_managers (version, managers, seq) VALUES ($1, $2, $3)",
            )
            .bind(to_i64(*version, "version")?)
            .bind(managers)
            .bind(to_i64(commit.tx.as_ref().map_or(0, |t| t.seq), "seq")?)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(b) = &commit.build_info {
            sqlx::query("INSERT INTO ledger_build_info (wasm_sha256, recipe, manager, seq) VALUES ($1, $2, $3, $4) ON CONFLICT(wasm_sha256) DO UPDATE SET recipe = excluded.recipe, manager = excluded.manager, seq = excluded.seq")
                .bind(&b.wasm_sha256)
                .bind(&b.recipe)
                .bind(&b.manager)
                .bind(to_i64(b.seq, "seq")?)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(a) = &commit.archive_commit {
            sqlx::query("INSERT INTO ledger_archive_commits (archive_sha256, lane, hotkey, seq, committed_ms) VALUES ($1, $2, $3, $4, $5)")
                .bind(&a.archive_sha256)
                .bind(&a.lane)
                .bind(&a.hotkey)
                .bind(to_i64(a.seq, "seq")?)
                .bind(a.committed_ms)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(n) = &commit.nullifier {
            let res = sqlx::query("INSERT INTO ledger_nullifiers (nullifier, job_id, worker, amount, seq) VALUES ($1, $2, $3, $4, $5)")
                .bind(&n.nullifier)
                .bind(&n.job_id)
                .bind(&n.worker)
                .bind(to_i64(n.amount, "amount")?)
                .bind(to_i64(n.seq, "seq")?)
                .execute(&mut *tx)
                .await;
            if let Err(sqlx::Error::Database(e)) = &res {
                if e.is_unique_violation() {
                    return Err(StoreError::Conflict(format!(
                        "payment for job {} already made",
                        n.job_id
                    )));
                }
            }
            res?;
        }
        for w in &commit.weights {
            sqlx::query("INSERT INTO lane_weights (lane, epoch, validator, weights, seq) VALUES ($1, $2, $3, $4, $5) ON CONFLICT(lane, epoch, validator) DO UPDATE SET weights = excluded.weights, seq = excluded.seq")
                .bind(&w.lane)
                .bind(to_i64(w.epoch, "epoch")?)
                .bind(&w.validator)
                .bind(&w.weights)
                .bind(to_i64(w.seq, "seq")?)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(c) = &commit.commitment {
            sqlx::query("INSERT INTO commitments (validator, run_id, commitment, envelope, tx_hash) VALUES ($1, $2, $3, $4, $5)")
                .bind(&c.validator)
                .bind(&c.run_id)
                .bind(&c.commitment)
                .bind(&c.envelope)
                .bind(&c.tx_hash)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(j) = &commit.settled_job {
            let res = sqlx::query("INSERT INTO ledger_settled_jobs (job_id, outcome, result_digest, worker, seq, stakes) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&j.job_id)
                .bind(&j.outcome)
                .bind(&j.result_digest)
                .bind(&j.worker)
                .bind(to_i64(j.seq, "seq")?)
                .bind(&j.stakes)
                .execute(&mut *tx)
                .await;
            if let Err(sqlx::Error::Database(e)) = &res {
                if e.is_unique_violation() {
                    return Err(StoreError::Conflict(format!(
                        "job {} is already settled",
                        j.job_id
                    )));
                }
            }
            res?;
        }
        for sl in &commit.slashes {
            let res = sqlx::query("INSERT INTO ledger_slashes (hotkey, job_id, reason, amount, seq) VALUES ($1, $2, $3, $4, $5)")
                .bind(&sl.hotkey)
                .bind(&sl.job_id)
                .bind(&sl.reason)
                .bind(to_i64(sl.amount, "amount")?)
                .bind(to_i64(sl.seq, "seq")?)
                .execute(&mut *tx)
                .await;
            if let Err(sqlx::Error::Database(e)) = &res {
                if e.is_unique_violation() {
                    return Err(StoreError::Conflict(format!(
                        "{} is already slashed for {} on {}",
                        sl.hotkey, sl.reason, sl.job_id
                    )));
                }
            }
            res?;
        }
        if let Some((lane, epoch, result)) = &commit.yuma {
            let res = sqlx::query("INSERT INTO lane_yuma_epochs (lane, epoch, result, computed_ms) VALUES ($1, $2, $3, $4)")
                .bind(lane)
                .bind(to_i64(*epoch, "epoch")?)
                .bind(result)
                .bind(commit.tx.as_ref().map_or(0, |t| t.applied_ms))
                .execute(&mut *tx)
                .await;
            if let Err(sqlx::Error::Database(e)) = &res {
                if e.is_unique_violation() {
                    return Err(StoreError::Conflict(format!(
                        "{lane} epoch {epoch} is already closed"
                    )));
                }
            }
            res?;
        }
        tx.commit().await?;
        Ok(())
        })
    }

    /// The settlement of a job, if the ledger settled it.
    pub async fn settled_job(&self, job_id: &str) -> Result<Option<SettledJobRow>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query("SELECT job_id, outcome, result_digest, worker, seq, stakes FROM ledger_settled_jobs WHERE job_id = $1")
            .bind(job_id)
            .fetch_optional(pool)
            .await?;
        row.map(|r| {
            Ok(SettledJobRow {
                job_id: r.get(0),
                outcome: r.get(1),
                result_digest: r.get(2),
                worker: r.get(3),
                seq: to_u64(r.get(4), "seq")?,
                stakes: r.get(5),
            })
        })
        .transpose()
        })
    }

    /// Whether `hotkey` was already slashed for `reason` on `job_id`.
    pub async fn slashed(
        &self,
        hotkey: &str,
        job_id: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM ledger_slashes WHERE hotkey = $1 AND job_id = $2 AND reason = $3",
        )
        .bind(hotkey)
        .bind(job_id)
        .bind(reason)
        .fetch_one(pool)
        .await?;
        Ok(n > 0)
        })
    }

    /// Every slashing applied, oldest first.
    pub async fn slashes(&self) -> Result<Vec<SlashRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query(
            "SELECT hotkey, job_id, reason, amount, seq FROM ledger_slashes ORDER BY id",
        )
        .fetch_all(pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(SlashRow {
                    hotkey: r.get(0),
                    job_id: r.get(1),
                    reason: r.get(2),
                    amount: to_u64(r.get(3), "amount")?,
                    seq: to_u64(r.get(4), "seq")?,
                })
            })
            .collect()
        })
    }

    /// A hotkey's stake bookkeeping, if it ever staked.
    pub async fn stake(&self, hotkey: &str) -> Result<Option<StakeRow>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query("SELECT hotkey, coldkey, tier, pending, locked_until_ms FROM ledger_stakes WHERE hotkey = $1")
            .bind(hotkey)
            .fetch_optional(pool)
            .await?;
        row.map(stake_row).transpose()
        })
    }

    /// Every stake record, by hotkey.
    pub async fn stakes(&self) -> Result<Vec<StakeRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query("SELECT hotkey, coldkey, tier, pending, locked_until_ms FROM ledger_stakes ORDER BY hotkey")
            .fetch_all(pool)
            .await?;
        rows.into_iter().map(stake_row).collect()
        })
    }

    /// A worker's private balance, if it registered a payment key.
    pub async fn confidential(&self, hotkey: &str) -> Result<Option<ConfidentialRow>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query(
            "SELECT hotkey, pubkey, balance, hint, seq FROM ledger_confidential WHERE hotkey = $1",
        )
        .bind(hotkey)
        .fetch_optional(pool)
        .await?;
        row.map(|r| {
            Ok(ConfidentialRow {
                hotkey: r.get(0),
                pubkey: r.get(1),
                balance: r.get(2),
                hint: r.get(3),
                seq: to_u64(r.get(4), "seq")?,
            })
        })
        .transpose()
        })
    }

    /// The payment a nullifier was spent on, if it was.
    pub async fn nullifier(&self, nullifier: &str) -> Result<Option<NullifierRow>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query(
            "SELECT nullifier, job_id, worker, amount, seq FROM ledger_nullifiers WHERE nullifier = $1",
        )
        .bind(nullifier)
        .fetch_optional(pool)
        .await?;
        row.map(|r| {
            Ok(NullifierRow {
                nullifier: r.get(0),
                job_id: r.get(1),
                worker: r.get(2),
                amount: to_u64(r.get(3), "amount")?,
                seq: to_u64(r.get(4), "seq")?,
            })
        })
        .transpose()
        })
    }

    /// When the faucet last paid `address` (ms), if ever.
    pub async fn faucet_last(&self, address: &str) -> Result<Option<i64>, StoreError> {
        with_pool!(self, pool => {
        Ok(
            sqlx::query_scalar("SELECT last_ms FROM ledger_faucet WHERE address = $1")
                .bind(address)
                .fetch_optional(pool)
                .await?,
        )
        })
    }

    /// What the faucet paid, to every address together, from `since_ms` on.
    pub async fn faucet_paid_since(&self, since_ms: i64) -> Result<u64, StoreError> {
        with_pool!(self, pool => {
        let total: Option<i64> =
            sqlx::query_scalar("SELECT CAST(SUM(amount) AS BIGINT) FROM ledger_faucet_drips WHERE at_ms >= $1")
                .bind(since_ms)
                .fetch_one(pool)
                .await?;
        to_u64(total.unwrap_or(0), "faucet total")
        })
    }

    /// Records a faucet drip to `address` at `now_ms` (the rate limit reads it back).
    pub async fn record_faucet_drip(
        &self,
        address: &str,
        now_ms: i64,
        amount: u64,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        let amount = to_i64(amount, "amount")?;
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO ledger_faucet (address, last_ms, total) VALUES ($1, $2, $3) \
             ON CONFLICT(address) DO UPDATE SET last_ms = excluded.last_ms, total = ledger_faucet.total + excluded.total",
        )
        .bind(address)
        .bind(now_ms)
        .bind(amount)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO ledger_faucet_drips (at_ms, amount) VALUES ($1, $2)")
            .bind(now_ms)
            .bind(amount)
            .execute(&mut *tx)
            .await?;
        // Drips older than a week are no budget's business any more.
        sqlx::query("DELETE FROM ledger_faucet_drips WHERE at_ms < $1")
            .bind(now_ms.saturating_sub(7 * 24 * 3_600_000))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
        })
    }

    /// An account, if it exists.
    pub async fn account(&self, address: &str) -> Result<Option<AccountRow>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query("SELECT address, balance, nonce FROM accounts WHERE address = $1")
            .bind(address)
            .fetch_optional(pool)
            .await?;
        row.map(|r| {
            Ok(AccountRow {
                address: r.get(0),
                balance: to_u64(r.get(1), "balance")?,
                nonce: to_u64(r.get(2), "nonce")?,
            })
        })
        .transpose()
        })
    }

    /// Every registered neuron, by uid.
    pub async fn neurons(&self) -> Result<Vec<NeuronRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query("SELECT uid, hotkey, coldkey, role, stake, axon, registered_seq, last_heartbeat_ms, voting_stake FROM neurons ORDER BY uid")
            .fetch_all(pool)
            .await?;
        rows.into_iter().map(neuron_row).collect()
        })
    }

    /// The neuron registered with this hotkey.
    pub async fn neuron(&self, hotkey: &str) -> Result<Option<NeuronRow>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query("SELECT uid, hotkey, coldkey, role, stake, axon, registered_seq, last_heartbeat_ms, voting_stake FROM neurons WHERE hotkey = $1")
            .bind(hotkey)
            .fetch_optional(pool)
            .await?;
        row.map(neuron_row).transpose()
        })
    }

    /// All validators' weights for a lane's epoch.
    pub async fn weights(&self, lane: &str, epoch: u64) -> Result<Vec<WeightsRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query(
            "SELECT lane, epoch, validator, weights, seq FROM lane_weights WHERE lane = $1 AND epoch = $2 ORDER BY validator",
        )
        .bind(lane)
        .bind(to_i64(epoch, "epoch")?)
        .fetch_all(pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(WeightsRow {
                    lane: r.get(0),
                    epoch: to_u64(r.get(1), "epoch")?,
                    validator: r.get(2),
                    weights: r.get(3),
                    seq: to_u64(r.get(4), "seq")?,
                })
            })
            .collect()
        })
    }

    /// Transactions from `from_seq` on, at most `limit`.
    pub async fn ledger_txs(
        &self,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<LedgerTxRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query("SELECT seq, tx_hash, prev_hash, signer, kind, envelope, applied_at, applied_ms, state_root FROM ledger_txs WHERE seq >= $1 ORDER BY seq LIMIT $2")
            .bind(to_i64(from_seq, "seq")?)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(LedgerTxRow {
                    seq: to_u64(r.get(0), "seq")?,
                    tx_hash: r.get(1),
                    prev_hash: r.get(2),
                    signer: r.get(3),
                    kind: r.get(4),
                    envelope: r.get(5),
                    applied_at: r.get(6),
                    applied_ms: r.get(7),
                    state_root: r.get(8),
                })
            })
            .collect()
        })
    }
}

fn neuron_row(r: impl StoreRow) -> Result<NeuronRow, StoreError> {
    Ok(NeuronRow {
        uid: to_u64(r.get(0), "uid")?,
        hotkey: r.get(1),
        coldkey: r.get(2),
        role: r.get(3),
        stake: to_u64(r.get(4), "stake")?,
        axon: r.get(5),
        registered_seq: to_u64(r.get(6), "seq")?,
        last_heartbeat_ms: r.get(7),
        voting_stake: to_u64(r.get(8), "voting stake")?,
    })
}

fn stake_row(r: impl StoreRow) -> Result<StakeRow, StoreError> {
    Ok(StakeRow {
        hotkey: r.get(0),
        coldkey: r.get(1),
        tier: r.get(2),
        pending: to_u64(r.get(3), "pending")?,
        locked_until_ms: r.get(4),
    })
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn faucet_drips_add_up_per_address_and_in_total() {
        for (db, s) in crate::testing::stores().await.unwrap() {
            s.record_faucet_drip("a", 1_000, 400).await.unwrap();
            s.record_faucet_drip("a", 2_000, 400).await.unwrap();
            s.record_faucet_drip("b", 3_000, 100).await.unwrap();
            assert_eq!(
                s.faucet_last("a").await.unwrap(),
                Some(2_000),
                "{:?}",
                db.kind()
            );
            assert_eq!(s.faucet_last("c").await.unwrap(), None);
            assert_eq!(s.faucet_paid_since(0).await.unwrap(), 900);
            assert_eq!(s.faucet_paid_since(1_500).await.unwrap(), 500);
            assert_eq!(s.faucet_paid_since(9_000).await.unwrap(), 0);
            assert!(s.record_faucet_drip("a", 4_000, u64::MAX).await.is_err());
        }
    }
}
