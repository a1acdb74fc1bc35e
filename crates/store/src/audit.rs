//! Audit tables: receipts, score commitments, equivocation evidence, divergence, Yuma epochs.
//! Every "first one stands" write is a single `INSERT … ON CONFLICT DO NOTHING`.

use crate::StoreRow;

use crate::{to_i64, Store, StoreError};

/// A score-hash commitment as the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentRow {
    pub validator: String,
    pub run_id: String,
    pub commitment: String,
    pub envelope: String,
    pub tx_hash: String,
}

/// Evidence that a validator signed two conflicting statements for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EquivocationRow {
    pub validator: String,
    pub run_id: String,
    pub kind: String,
    pub evidence: String,
    pub found_ms: i64,
}

impl Store {
    /// Stores a receipt under `subject`; the first one stands. Returns the stored receipt.
    pub async fn put_receipt(&self, subject: &str, receipt: &str) -> Result<String, StoreError> {
        with_pool!(self, pool => {
        sqlx::query(
            "INSERT INTO receipts (subject, receipt) VALUES ($1, $2) ON CONFLICT(subject) DO NOTHING",
        )
        .bind(subject)
        .bind(receipt)
        .execute(pool)
        .await?;
        self.receipt(subject)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("receipt {subject} vanished")))
        })
    }

    /// The receipt stored under `subject`.
    pub async fn receipt(&self, subject: &str) -> Result<Option<String>, StoreError> {
        with_pool!(self, pool => {
        Ok(
            sqlx::query_scalar("SELECT receipt FROM receipts WHERE subject = $1")
                .bind(subject)
                .fetch_optional(pool)
                .await?,
        )
        })
    }

    /// The commitment a validator made for a run, if any.
    pub async fn commitment(
        &self,
        validator: &str,
        run_id: &str,
    ) -> Result<Option<CommitmentRow>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query("SELECT validator, run_id, commitment, envelope, tx_hash FROM commitments WHERE validator = $1 AND run_id = $2")
            .bind(validator)
            .bind(run_id)
            .fetch_optional(pool)
            .await?;
        Ok(row.map(|r| CommitmentRow {
            validator: r.get(0),
            run_id: r.get(1),
            commitment: r.get(2),
            envelope: r.get(3),
            tx_hash: r.get(4),
        }))
        })
    }

    /// Records equivocation evidence; the first of each kind per validator and run stands.
    /// Returns whether it was new.
    pub async fn put_equivocation(&self, e: &EquivocationRow) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let res = sqlx::query("INSERT INTO equivocations (validator, run_id, kind, evidence, found_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
            .bind(&e.validator)
            .bind(&e.run_id)
            .bind(&e.kind)
            .bind(&e.evidence)
            .bind(e.found_ms)
            .execute(pool)
            .await?;
        Ok(res.rows_affected() == 1)
        })
    }

    /// All equivocation evidence, oldest first.
    pub async fn equivocations(&self) -> Result<Vec<EquivocationRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query("SELECT validator, run_id, kind, evidence, found_ms FROM equivocations ORDER BY found_ms, validator, run_id, kind")
            .fetch_all(pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| EquivocationRow {
                validator: r.get(0),
                run_id: r.get(1),
                kind: r.get(2),
                evidence: r.get(3),
                found_ms: r.get(4),
            })
            .collect())
        })
    }

    /// The validators with equivocation evidence for `run_id`, each once.
    pub async fn equivocators(&self, run_id: &str) -> Result<Vec<String>, StoreError> {
        with_pool!(self, pool => {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT validator FROM equivocations WHERE run_id = $1 ORDER BY validator",
        )
        .bind(run_id)
        .fetch_all(pool)
        .await?)
        })
    }

    /// Records a run's divergence figures once (a re-run of the run is not counted again).
    /// Returns whether it was new.
    pub async fn put_divergence(
        &self,
        run_id: &str,
        record: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let res = sqlx::query("INSERT INTO divergence (run_id, record, recorded_ms) VALUES ($1, $2, $3) ON CONFLICT(run_id) DO NOTHING")
            .bind(run_id)
            .bind(record)
            .bind(at_ms)
            .execute(pool)
            .await?;
        Ok(res.rows_affected() == 1)
        })
    }

    /// The latest `limit` divergence records, newest first.
    pub async fn divergence_records(
        &self,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query(
            "SELECT run_id, record FROM divergence ORDER BY recorded_ms DESC, run_id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// A lane's epoch's stored Yuma result.
    pub async fn yuma_epoch(&self, lane: &str, epoch: u64) -> Result<Option<String>, StoreError> {
        with_pool!(self, pool => {
        Ok(
            sqlx::query_scalar("SELECT result FROM lane_yuma_epochs WHERE lane = $1 AND epoch = $2")
                .bind(lane)
                .bind(to_i64(epoch, "epoch")?)
                .fetch_optional(pool)
                .await?,
        )
        })
    }
}

impl Store {
    /// Bench baseline only: the same rows as a log batch into a bare table, one transaction.
    #[doc(hidden)]
    pub async fn bench_bare_insert(&self, rows: &[(&str, &[u8])]) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bench_bare (id INTEGER PRIMARY KEY, kind TEXT, data BLOB)",
        )
        .execute(pool)
        .await?;
        let mut tx = pool.begin().await?;
        for chunk in rows.chunks(1000) {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO bench_bare (kind, data) ");
            qb.push_values(chunk, |mut b, (k, d)| {
                b.push_bind(*k).push_bind(*d);
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
        })
    }
}
