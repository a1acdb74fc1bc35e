//! Coordinator tables for proven jobs: requests, lifecycle, proofs, votes, equivocation
//! evidence and events. State changes are single conditional statements, so two workers can
//! never both hold one job and a late proof never overwrites a reassigned one.

use crate::StoreRow;

use crate::{to_i64, to_u64, Store, StoreError};

/// One job as stored (its proof package is read separately with [`Store::job_proof`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub job_id: String,
    pub lane: String,
    pub client: String,
    /// The client-signed request envelope (JSON).
    pub request: String,
    /// The job spec (JSON).
    pub spec: String,
    pub status: String,
    pub worker: Option<String>,
    pub attempts: u64,
    pub lease_until_ms: Option<i64>,
    /// The worker-signed result envelope (JSON).
    pub result: Option<String>,
    pub proof_hash: Option<String>,
    pub proof_bytes: Option<u64>,
    pub queued_ms: i64,
    pub assigned_ms: Option<i64>,
    pub proven_ms: Option<i64>,
    pub settled_ms: Option<i64>,
    pub certificate: Option<String>,
    pub valid_stake: u64,
    pub invalid_stake: u64,
    pub total_stake: u64,
    pub settle_tx: Option<String>,
}

/// What a new job is stored with; everything else starts empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob<'a> {
    pub job_id: &'a str,
    pub lane: &'a str,
    pub client: &'a str,
    /// The client-signed request envelope (JSON).
    pub request: &'a str,
    /// The job spec (JSON).
    pub spec: &'a str,
    pub queued_ms: i64,
}

/// One lifecycle event of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEventRow {
    pub event: String,
    pub detail: String,
    pub at_ms: i64,
}

/// A validator's two conflicting votes on one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEquivocationRow {
    pub job_id: String,
    pub validator: String,
    pub evidence: String,
    pub found_ms: i64,
    pub slash_tx: Option<String>,
}

/// A proof a worker hands in for the job it holds.
#[derive(Debug, Clone)]
pub struct ProofSubmission<'a> {
    pub job_id: &'a str,
    pub worker: &'a str,
    pub result: &'a str,
    pub proof: &'a [u8],
    pub proof_hash: &'a str,
    pub now_ms: i64,
}

/// The tally that settled a job.
#[derive(Debug, Clone)]
pub struct JobSettlement<'a> {
    pub job_id: &'a str,
    /// `approved` or `rejected`.
    pub status: &'a str,
    pub certificate: &'a str,
    pub valid_stake: u64,
    pub invalid_stake: u64,
    pub total_stake: u64,
    pub now_ms: i64,
}

const JOB_COLUMNS: &str = "job_id, lane, client, request, spec, status, worker, attempts, lease_until_ms, result, proof_hash, CAST(length(proof) AS BIGINT), queued_ms, assigned_ms, proven_ms, settled_ms, certificate, valid_stake, invalid_stake, total_stake, settle_tx";

/// The outcome of inserting a new job: a unique violation means the job exists.
fn new_job<T>(res: Result<T, sqlx::Error>, job_id: &str) -> Result<(), StoreError> {
    match res {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(StoreError::Conflict(format!("job {job_id} exists")))
        }
        other => other.map(|_| ()).map_err(StoreError::from),
    }
}

fn job_row(r: impl StoreRow) -> Result<JobRow, StoreError> {
    Ok(JobRow {
        job_id: r.get(0),
        lane: r.get(1),
        client: r.get(2),
        request: r.get(3),
        spec: r.get(4),
        status: r.get(5),
        worker: r.get(6),
        attempts: to_u64(r.get(7), "attempts")?,
        lease_until_ms: r.get(8),
        result: r.get(9),
        proof_hash: r.get(10),
        proof_bytes: r
            .get::<Option<i64>, _>(11)
            .map(|n| to_u64(n, "proof length"))
            .transpose()?,
        queued_ms: r.get(12),
        assigned_ms: r.get(13),
        proven_ms: r.get(14),
        settled_ms: r.get(15),
        certificate: r.get(16),
        valid_stake: to_u64(r.get(17), "stake")?,
        invalid_stake: to_u64(r.get(18), "stake")?,
        total_stake: to_u64(r.get(19), "stake")?,
        settle_tx: r.get(20),
    })
}

const EQUIVOCATION_QUERY: &str =
    "SELECT job_id, validator, evidence, found_ms, slash_tx FROM job_equivocations";

fn equivocation_row(r: impl StoreRow) -> JobEquivocationRow {
    JobEquivocationRow {
        job_id: r.get(0),
        validator: r.get(1),
        evidence: r.get(2),
        found_ms: r.get(3),
        slash_tx: r.get(4),
    }
}

/// Records a lifecycle event inside the caller's transaction (a macro so one text serves
/// every backend's connection type).
macro_rules! job_event {
    ($conn:expr, $job_id:expr, $event:expr, $detail:expr, $at_ms:expr) => {
        sqlx::query("INSERT INTO job_events (job_id, event, detail, at_ms) VALUES ($1, $2, $3, $4)")
            .bind($job_id)
            .bind($event)
            .bind($detail)
            .bind($at_ms)
            .execute($conn)
            .await
            .map(|_| ())
            .map_err(StoreError::from)
    };
}

impl Store {
    /// Records a new queued job; `Conflict` if the id exists.
    pub async fn insert_job(&self, row: &NewJob<'_>) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        let mut tx = pool.begin().await?;
        let res = sqlx::query("INSERT INTO jobs (job_id, lane, client, request, spec, status, queued_ms) VALUES ($1, $2, $3, $4, $5, 'queued', $6)")
            .bind(row.job_id)
            .bind(row.lane)
            .bind(row.client)
            .bind(row.request)
            .bind(row.spec)
            .bind(row.queued_ms)
            .execute(&mut *tx)
            .await;
        new_job(res, row.job_id)?;
        job_event!(&mut *tx, row.job_id, "queued", "", row.queued_ms)?;
        tx.commit().await?;
        Ok(())
        })
    }

    /// Records a job that arrives with its artifact (an attestation: the provider is both the
    /// client and the one who hands in the evidence), straight into `proven`, in one
    /// transaction. `Conflict` if the job exists.
    pub async fn insert_proven_job(
        &self,
        row: &NewJob<'_>,
        worker: &str,
        result: &str,
        artifact: &[u8],
        artifact_digest: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        let mut tx = pool.begin().await?;
        let res = sqlx::query("INSERT INTO jobs (job_id, lane, client, request, spec, status, queued_ms, worker, attempts, assigned_ms, result, proof, proof_hash, proven_ms) VALUES ($1, $2, $3, $4, $5, 'proven', $6, $7, 1, $8, $9, $10, $11, $12)")
            .bind(row.job_id)
            .bind(row.lane)
            .bind(row.client)
            .bind(row.request)
            .bind(row.spec)
            .bind(row.queued_ms)
            .bind(worker)
            .bind(row.queued_ms)
            .bind(result)
            .bind(artifact)
            .bind(artifact_digest)
            .bind(row.queued_ms)
            .execute(&mut *tx)
            .await;
        new_job(res, row.job_id)?;
        let detail = format!("handed in with its request: {} bytes", artifact.len());
        job_event!(&mut *tx, row.job_id, "proven", &detail, row.queued_ms)?;
        tx.commit().await?;
        Ok(())
        })
    }

    /// One job.
    pub async fn job(&self, job_id: &str) -> Result<Option<JobRow>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1"))
            .bind(job_id)
            .fetch_optional(pool)
            .await?;
        row.map(job_row).transpose()
        })
    }

    /// Jobs, oldest first, optionally only those in `status`.
    pub async fn jobs(&self, status: Option<&str>, limit: u32) -> Result<Vec<JobRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = match status {
            Some(s) => {
                sqlx::query(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE status = $1 ORDER BY queued_ms, job_id LIMIT $2"
                ))
                .bind(s)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs ORDER BY queued_ms, job_id LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
            }
        };
        rows.into_iter().map(job_row).collect()
        })
    }

    /// Jobs settled at or after `since_ms`, oldest settlement first.
    pub async fn jobs_settled_since(
        &self,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<JobRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE settled_ms >= $1 ORDER BY settled_ms, job_id LIMIT $2"
        ))
        .bind(since_ms)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
        rows.into_iter().map(job_row).collect()
        })
    }

    /// Settled jobs not yet taken to the ledger, oldest settlement first.
    pub async fn jobs_to_settle(&self) -> Result<Vec<JobRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE status IN ('approved', 'rejected') AND settle_tx IS NULL ORDER BY settled_ms, job_id LIMIT 100"
        ))
        .fetch_all(pool)
        .await?;
        rows.into_iter().map(job_row).collect()
        })
    }

    /// How many jobs are in `status`.
    pub async fn count_jobs(&self, status: &str) -> Result<u64, StoreError> {
        with_pool!(self, pool => {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = $1")
            .bind(status)
            .fetch_one(pool)
            .await?;
        to_u64(n, "count")
        })
    }

    /// How many of `client`'s jobs are in one of `statuses` (its open jobs, for a per-client
    /// cap).
    pub async fn count_client_jobs(
        &self,
        client: &str,
        statuses: &[&str],
    ) -> Result<u64, StoreError> {
        with_pool!(self, pool => {
        let mut total = 0u64;
        for status in statuses {
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE client = $1 AND status = $2")
                    .bind(client)
                    .bind(status)
                    .fetch_one(pool)
                    .await?;
            total = total.saturating_add(to_u64(n, "count")?);
        }
        Ok(total)
        })
    }

    /// The proof package a job's worker handed in.
    pub async fn job_proof(&self, job_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        with_pool!(self, pool => {
        let proof: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT proof FROM jobs WHERE job_id = $1")
                .bind(job_id)
                .fetch_optional(pool)
                .await?;
        Ok(proof.flatten())
        })
    }

    /// Returns to the queue every assigned job whose lease ended before `now_ms` (its worker
    /// is presumed dead), recording `lease_expired`; gives the ids back.
    pub async fn expire_job_leases(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        with_pool!(self, pool => {
        let mut tx = pool.begin().await?;
        let rows = sqlx::query("UPDATE jobs SET status = 'queued', lease_until_ms = NULL WHERE status = 'assigned' AND lease_until_ms < $1 RETURNING job_id, worker")
            .bind(now_ms)
            .fetch_all(&mut *tx)
            .await?;
        let mut ids = Vec::new();
        for r in rows {
            let (id, worker): (String, Option<String>) = (r.get(0), r.get(1));
            let detail = format!(
                "worker {} did not prove in time",
                worker.unwrap_or_default()
            );
            job_event!(&mut *tx, &id, "lease_expired", &detail, now_ms)?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
        })
    }

    /// Assigns the oldest queued job of `lane` to `worker` until `lease_until_ms`.
    pub async fn claim_job(
        &self,
        lane: &str,
        worker: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<JobRow>, StoreError> {
        with_pool!(self, pool => {
        let mut tx = pool.begin().await?;
        let claim = match self.backend() {
            crate::BackendKind::Sqlite => crate::backend::sqlite::CLAIM_JOB,
            crate::BackendKind::Postgres => crate::backend::postgres::CLAIM_JOB,
        };
        let id: Option<String> = sqlx::query_scalar(claim)
            .bind(worker)
            .bind(now_ms)
            .bind(lease_until_ms)
            .bind(lane)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(id) = id else {
            return Ok(None);
        };
        job_event!(&mut *tx, &id, "assigned", worker, now_ms)?;
        tx.commit().await?;
        self.job(&id).await
        })
    }

    /// Stores a proof if `worker` still holds the job's lease; `false` if it does not (the
    /// job was reassigned, already proven, or never its).
    pub async fn submit_job_proof(&self, s: &ProofSubmission<'_>) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let mut tx = pool.begin().await?;
        let n = sqlx::query("UPDATE jobs SET status = 'proven', result = $1, proof = $2, proof_hash = $3, proven_ms = $4, lease_until_ms = NULL WHERE job_id = $5 AND status = 'assigned' AND worker = $6 AND lease_until_ms >= $7")
            .bind(s.result)
            .bind(s.proof)
            .bind(s.proof_hash)
            .bind(s.now_ms)
            .bind(s.job_id)
            .bind(s.worker)
            .bind(s.now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let detail = format!("{} bytes, blake3 {}", s.proof.len(), s.proof_hash);
        job_event!(&mut *tx, s.job_id, "proven", &detail, s.now_ms)?;
        tx.commit().await?;
        Ok(true)
        })
    }

    /// Stores a vote; `false` if this exact vote is already stored.
    pub async fn add_job_vote(
        &self,
        job_id: &str,
        validator: &str,
        vote_sha256: &str,
        envelope: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let n = sqlx::query("INSERT INTO job_votes (job_id, validator, vote_sha256, envelope, received_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
            .bind(job_id)
            .bind(validator)
            .bind(vote_sha256)
            .bind(envelope)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected();
        Ok(n > 0)
        })
    }

    /// Every distinct vote on a job, in arrival order.
    pub async fn job_votes(&self, job_id: &str) -> Result<Vec<String>, StoreError> {
        with_pool!(self, pool => {
        Ok(sqlx::query_scalar(
            "SELECT envelope FROM job_votes WHERE job_id = $1 ORDER BY received_ms, rowid",
        )
        .bind(job_id)
        .fetch_all(pool)
        .await?)
        })
    }

    /// Marks a proven job approved or rejected with the tally and certificate that settled it;
    /// `false` if it was not waiting for votes.
    pub async fn settle_job(&self, s: &JobSettlement<'_>) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let mut tx = pool.begin().await?;
        let n = sqlx::query("UPDATE jobs SET status = $1, certificate = $2, valid_stake = $3, invalid_stake = $4, total_stake = $5, settled_ms = $6 WHERE job_id = $7 AND status = 'proven'")
            .bind(s.status)
            .bind(s.certificate)
            .bind(to_i64(s.valid_stake, "stake")?)
            .bind(to_i64(s.invalid_stake, "stake")?)
            .bind(to_i64(s.total_stake, "stake")?)
            .bind(s.now_ms)
            .bind(s.job_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let detail = format!(
            "{} valid / {} invalid of {} stake",
            s.valid_stake, s.invalid_stake, s.total_stake
        );
        job_event!(&mut *tx, s.job_id, s.status, &detail, s.now_ms)?;
        tx.commit().await?;
        Ok(true)
        })
    }

    /// Records the vote stake counted so far on a job still waiting for votes.
    pub async fn set_job_stake(
        &self,
        job_id: &str,
        valid: u64,
        invalid: u64,
        total: u64,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        sqlx::query("UPDATE jobs SET valid_stake = $1, invalid_stake = $2, total_stake = $3 WHERE job_id = $4 AND status = 'proven'")
            .bind(to_i64(valid, "stake")?)
            .bind(to_i64(invalid, "stake")?)
            .bind(to_i64(total, "stake")?)
            .bind(job_id)
            .execute(pool)
            .await?;
        Ok(())
        })
    }

    /// Replaces a settled job's certificate with one re-counted against newer stakes (the
    /// outcome stays; the ledger refused the first because stakes moved under it).
    pub async fn recertify_job(
        &self,
        job_id: &str,
        certificate: &str,
        valid: u64,
        invalid: u64,
        total: u64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE jobs SET certificate = $1, valid_stake = $2, invalid_stake = $3, total_stake = $4 WHERE job_id = $5")
            .bind(certificate)
            .bind(to_i64(valid, "stake")?)
            .bind(to_i64(invalid, "stake")?)
            .bind(to_i64(total, "stake")?)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        let detail = format!("{valid} valid / {invalid} invalid of {total} stake");
        job_event!(&mut *tx, job_id, "recertified", &detail, now_ms)?;
        tx.commit().await?;
        Ok(())
        })
    }

    /// Records how a settled job was closed (the ledger transaction that settled it, or a
    /// marker for a lane decided by its certificate alone), with `event` in its history.
    pub async fn set_job_settle_tx(
        &self,
        job_id: &str,
        tx_hash: &str,
        event_name: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE jobs SET settle_tx = $1 WHERE job_id = $2")
            .bind(tx_hash)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        job_event!(&mut *tx, job_id, event_name, tx_hash, now_ms)?;
        tx.commit().await?;
        Ok(())
        })
    }

    /// Appends an event to a job's history.
    pub async fn add_job_event(
        &self,
        job_id: &str,
        name: &str,
        detail: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        let mut conn = pool.acquire().await?;
        job_event!(&mut *conn, job_id, name, detail, at_ms)
        })
    }

    /// A job's history, oldest first.
    pub async fn job_events(&self, job_id: &str) -> Result<Vec<JobEventRow>, StoreError> {
        with_pool!(self, pool => {
        let rows =
            sqlx::query("SELECT event, detail, at_ms FROM job_events WHERE job_id = $1 ORDER BY id")
                .bind(job_id)
                .fetch_all(pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|r| JobEventRow {
                event: r.get(0),
                detail: r.get(1),
                at_ms: r.get(2),
            })
            .collect())
        })
    }

    /// Keeps the first evidence of a validator's equivocation on a job; `false` if some was
    /// already kept.
    pub async fn put_job_equivocation(&self, row: &JobEquivocationRow) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let n = sqlx::query("INSERT INTO job_equivocations (job_id, validator, evidence, found_ms) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
            .bind(&row.job_id)
            .bind(&row.validator)
            .bind(&row.evidence)
            .bind(row.found_ms)
            .execute(pool)
            .await?
            .rows_affected();
        Ok(n > 0)
        })
    }

    /// Equivocation evidence, for one job or all.
    pub async fn job_equivocations(
        &self,
        job_id: Option<&str>,
    ) -> Result<Vec<JobEquivocationRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = match job_id {
            Some(id) => {
                sqlx::query(&format!(
                    "{EQUIVOCATION_QUERY} WHERE job_id = $1 ORDER BY found_ms"
                ))
                .bind(id)
                .fetch_all(pool)
                .await?
            }
            None => {
                sqlx::query(&format!("{EQUIVOCATION_QUERY} ORDER BY found_ms"))
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows.into_iter().map(equivocation_row).collect())
        })
    }

    /// Equivocation evidence not yet taken to the ledger.
    pub async fn job_equivocations_to_slash(&self) -> Result<Vec<JobEquivocationRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query(&format!(
            "{EQUIVOCATION_QUERY} WHERE slash_tx IS NULL ORDER BY found_ms LIMIT 100"
        ))
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().map(equivocation_row).collect())
        })
    }

    /// Records the ledger transaction that slashed an equivocation.
    pub async fn set_equivocation_slash_tx(
        &self,
        job_id: &str,
        validator: &str,
        tx_hash: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        sqlx::query("UPDATE job_equivocations SET slash_tx = $1 WHERE job_id = $2 AND validator = $3")
            .bind(tx_hash)
            .bind(job_id)
            .bind(validator)
            .execute(pool)
            .await?;
        Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, queued_ms: i64) -> NewJob<'_> {
        NewJob {
            job_id: id,
            lane: "stark",
            client: "c",
            request: "{}",
            spec: "{}",
            queued_ms,
        }
    }

    #[tokio::test]
    async fn a_handed_in_job_goes_straight_to_the_vote_once() {
        for (_db, s) in crate::testing::stores().await.unwrap() {
            s.insert_proven_job(&job("p", 5), "prov", "{\"r\":1}", b"evidence", "d1")
                .await
                .unwrap();
            let row = s.job("p").await.unwrap().unwrap();
            assert_eq!(row.status, "proven");
            assert_eq!(row.worker.as_deref(), Some("prov"));
            assert_eq!(row.proof_hash.as_deref(), Some("d1"));
            assert_eq!(
                s.job_proof("p").await.unwrap().as_deref(),
                Some(&b"evidence"[..])
            );
            // Never claimable by a worker, never handed in twice, never re-queued under its id.
            assert!(s.claim_job("stark", "w", 10, 100).await.unwrap().is_none());
            assert!(matches!(
                s.insert_proven_job(&job("p", 6), "prov", "{}", b"x", "d2")
                    .await,
                Err(StoreError::Conflict(_))
            ));
            assert!(matches!(
                s.insert_job(&job("p", 7)).await,
                Err(StoreError::Conflict(_))
            ));
            assert_eq!(
                s.job("p").await.unwrap().unwrap().proof_hash.as_deref(),
                Some("d1")
            );
        }
    }

    #[tokio::test]
    async fn concurrent_claims_take_each_job_once() {
        for (db, s) in crate::testing::stores().await.unwrap() {
            let ids: Vec<String> = (0..40).map(|i| format!("j{i:02}")).collect();
            for (i, id) in ids.iter().enumerate() {
                s.insert_job(&job(id, i as i64)).await.unwrap();
            }
            // Eight workers claim until the queue is empty; on PostgreSQL they run at once.
            let mut tasks = Vec::new();
            for w in 0..8 {
                let s = s.clone();
                tasks.push(tokio::spawn(async move {
                    let mut got = Vec::new();
                    while let Some(j) = s
                        .claim_job("stark", &format!("w{w}"), 10, 1_000)
                        .await
                        .unwrap()
                    {
                        got.push(j.job_id);
                    }
                    got
                }));
            }
            let mut claimed = Vec::new();
            for t in tasks {
                claimed.extend(t.await.unwrap());
            }
            claimed.sort();
            assert_eq!(
                claimed,
                ids,
                "{:?}: every job claimed exactly once",
                db.kind()
            );
            assert_eq!(s.count_jobs("queued").await.unwrap(), 0);
            assert_eq!(s.count_jobs("assigned").await.unwrap(), 40);
        }
    }

    #[tokio::test]
    async fn lifecycle_lease_expiry_and_late_proofs() {
        for (_db, s) in crate::testing::stores().await.unwrap() {
            s.insert_job(&job("a", 1)).await.unwrap();
            s.insert_job(&job("b", 2)).await.unwrap();
            assert!(matches!(
                s.insert_job(&job("a", 3)).await,
                Err(StoreError::Conflict(_))
            ));
            // Oldest first; each job goes to one worker.
            let a = s.claim_job("stark", "w1", 10, 100).await.unwrap().unwrap();
            assert_eq!((a.job_id.as_str(), a.attempts), ("a", 1));
            let b = s.claim_job("stark", "w2", 10, 100).await.unwrap().unwrap();
            assert_eq!(b.job_id, "b");
            assert!(s.claim_job("stark", "w3", 10, 100).await.unwrap().is_none());
            assert!(s.claim_job("sat", "w3", 10, 100).await.unwrap().is_none());
            // w1 dies: its lease runs out and the job goes back to the queue, then to w3.
            assert_eq!(s.expire_job_leases(101).await.unwrap(), vec!["a", "b"]);
            let again = s.claim_job("stark", "w3", 102, 200).await.unwrap().unwrap();
            assert_eq!((again.job_id.as_str(), again.attempts), ("a", 2));
            // The dead worker's late proof is refused; the holder's is taken once.
            let sub = |worker: &'static str| ProofSubmission {
                job_id: "a",
                worker,
                result: "{}",
                proof: b"pkg",
                proof_hash: "h",
                now_ms: 150,
            };
            assert!(!s.submit_job_proof(&sub("w1")).await.unwrap());
            assert!(s.submit_job_proof(&sub("w3")).await.unwrap());
            assert!(!s.submit_job_proof(&sub("w3")).await.unwrap());
            assert_eq!(s.job_proof("a").await.unwrap().unwrap(), b"pkg");
            let row = s.job("a").await.unwrap().unwrap();
            assert_eq!((row.status.as_str(), row.proof_bytes), ("proven", Some(3)));
            // Votes are kept once each; settlement happens once.
            assert!(s.add_job_vote("a", "v", "d1", "{}", 160).await.unwrap());
            assert!(!s.add_job_vote("a", "v", "d1", "{}", 161).await.unwrap());
            assert!(s.add_job_vote("a", "v", "d2", "{}", 162).await.unwrap());
            assert_eq!(s.job_votes("a").await.unwrap().len(), 2);
            let settle = JobSettlement {
                job_id: "a",
                status: "approved",
                certificate: "{}",
                valid_stake: 2,
                invalid_stake: 0,
                total_stake: 3,
                now_ms: 170,
            };
            assert!(s.jobs_to_settle().await.unwrap().is_empty());
            assert!(s.settle_job(&settle).await.unwrap());
            assert!(!s.settle_job(&settle).await.unwrap());
            // Settled by vote, not yet on the ledger; then taken there.
            let to_settle = s.jobs_to_settle().await.unwrap();
            assert_eq!(to_settle.len(), 1);
            assert_eq!(to_settle[0].job_id, "a");
            s.set_job_settle_tx("a", "tx", "settled_on_ledger", 171)
                .await
                .unwrap();
            assert!(s.jobs_to_settle().await.unwrap().is_empty());
            // Equivocation evidence: kept once per validator, listed until slashed.
            let evidence = JobEquivocationRow {
                job_id: "a".into(),
                validator: "v".into(),
                evidence: "{}".into(),
                found_ms: 172,
                slash_tx: None,
            };
            assert!(s.put_job_equivocation(&evidence).await.unwrap());
            assert!(!s.put_job_equivocation(&evidence).await.unwrap());
            assert_eq!(s.job_equivocations_to_slash().await.unwrap().len(), 1);
            s.set_equivocation_slash_tx("a", "v", "tx2").await.unwrap();
            assert!(s.job_equivocations_to_slash().await.unwrap().is_empty());
            assert_eq!(
                s.job_equivocations(Some("a")).await.unwrap()[0]
                    .slash_tx
                    .as_deref(),
                Some("tx2")
            );
            let events: Vec<String> = s
                .job_events("a")
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.event)
                .collect();
            assert_eq!(
                events,
                [
                    "queued",
                    "assigned",
                    "lease_expired",
                    "assigned",
                    "proven",
                    "approved",
                    "settled_on_ledger"
                ]
            );
        }
    }
}
