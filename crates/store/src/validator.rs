//! Validator tables: round submissions (the `witnesses` table), rejections, score reports and
//! round results.

use crate::StoreRow;

use crate::{Store, StoreError};

/// An accepted round submission (sat: a witness), with the validator's own arrival
/// measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionRow {
    pub round_id: String,
    pub worker: String,
    /// What it answers within the round (sat: the instance hash; column `instance_sha256`).
    pub item: String,
    pub received_ms: i64,
    pub latency_ms: i64,
    pub envelope: String,
}

/// A signed score report, exactly as served or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreReportRow {
    pub run_id: String,
    pub validator: String,
    pub envelope: String,
    pub digest: String,
    pub received_ms: i64,
}

impl Store {
    /// Records an accepted submission. Returns `false` (and changes nothing) if this worker
    /// already has an accepted one for this item: the first arrival is the one that counts.
    pub async fn insert_submission(&self, w: &SubmissionRow) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let res = sqlx::query("INSERT INTO witnesses (round_id, worker, instance_sha256, received_ms, latency_ms, envelope) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING")
            .bind(&w.round_id)
            .bind(&w.worker)
            .bind(&w.item)
            .bind(w.received_ms)
            .bind(w.latency_ms)
            .bind(&w.envelope)
            .execute(pool)
            .await?;
        Ok(res.rows_affected() == 1)
        })
    }

    /// Accepted submissions of a round, in arrival order.
    pub async fn submissions(&self, round_id: &str) -> Result<Vec<SubmissionRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query("SELECT round_id, worker, instance_sha256, received_ms, latency_ms, envelope FROM witnesses WHERE round_id = $1 ORDER BY received_ms")
            .bind(round_id)
            .fetch_all(pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| SubmissionRow {
                round_id: r.get(0),
                worker: r.get(1),
                item: r.get(2),
                received_ms: r.get(3),
                latency_ms: r.get(4),
                envelope: r.get(5),
            })
            .collect())
        })
    }

    /// Records a rejected submission with its verdict (JSON).
    pub async fn insert_rejection(
        &self,
        round_id: &str,
        worker: Option<&str>,
        code: &str,
        verdict: &str,
        received_ms: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        sqlx::query("INSERT INTO rejections (round_id, worker, code, verdict, received_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(round_id)
            .bind(worker)
            .bind(code)
            .bind(verdict)
            .bind(received_ms)
            .execute(pool)
            .await?;
        Ok(())
        })
    }

    /// Counts rejections per code for a round.
    pub async fn rejection_counts(&self, round_id: &str) -> Result<Vec<(String, u64)>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query(
            "SELECT code, COUNT(*) FROM rejections WHERE round_id = $1 GROUP BY code ORDER BY code",
        )
        .bind(round_id)
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1).max(0) as u64))
            .collect())
        })
    }

    /// Stores a signed score report. A report for the same run and validator is never
    /// overwritten: storing the identical envelope again is a no-op, a different one is a
    /// `Conflict` (the first one served stays the one served).
    pub async fn put_score_report(&self, r: &ScoreReportRow) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        // One statement, so two writers can't interleave between a check and an insert (and a
        // read transaction never has to upgrade to a write, which SQLite refuses under load).
        let res = sqlx::query("INSERT INTO score_reports (run_id, validator, envelope, digest, received_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT(run_id, validator) DO NOTHING")
            .bind(&r.run_id)
            .bind(&r.validator)
            .bind(&r.envelope)
            .bind(&r.digest)
            .bind(r.received_ms)
            .execute(pool)
            .await?;
        if res.rows_affected() == 1 {
            return Ok(());
        }
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT digest FROM score_reports WHERE run_id = $1 AND validator = $2",
        )
        .bind(&r.run_id)
        .bind(&r.validator)
        .fetch_optional(pool)
        .await?;
        match existing {
            Some(d) if d == r.digest => Ok(()),
            _ => Err(StoreError::Conflict(format!(
                "a different report from {} for {} is already stored",
                r.validator, r.run_id
            ))),
        }
        })
    }

    /// One validator's report for a run.
    pub async fn score_report(
        &self,
        run_id: &str,
        validator: &str,
    ) -> Result<Option<ScoreReportRow>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query("SELECT run_id, validator, envelope, digest, received_ms FROM score_reports WHERE run_id = $1 AND validator = $2")
            .bind(run_id)
            .bind(validator)
            .fetch_optional(pool)
            .await?;
        Ok(row.map(|r| ScoreReportRow {
            run_id: r.get(0),
            validator: r.get(1),
            envelope: r.get(2),
            digest: r.get(3),
            received_ms: r.get(4),
        }))
        })
    }

    /// Stores a round's result (JSON), replacing nothing: the first result stands.
    pub async fn put_round_result(
        &self,
        run_id: &str,
        body: &str,
        created_at: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        sqlx::query("INSERT INTO round_results (run_id, body, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(run_id)
            .bind(body)
            .bind(created_at)
            .execute(pool)
            .await?;
        Ok(())
        })
    }

    /// A round's stored result.
    pub async fn round_result(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        with_pool!(self, pool => {
        Ok(
            sqlx::query_scalar("SELECT body FROM round_results WHERE run_id = $1")
                .bind(run_id)
                .fetch_optional(pool)
                .await?,
        )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_submission_counts() {
        for (_db, s) in crate::testing::stores().await.unwrap() {
            let w = SubmissionRow {
                round_id: "sat-round-000001".into(),
                worker: "w".into(),
                item: "h".into(),
                received_ms: 10,
                latency_ms: 5,
                envelope: "{}".into(),
            };
            assert!(s.insert_submission(&w).await.unwrap());
            let mut later = w.clone();
            later.received_ms = 99;
            assert!(!s.insert_submission(&later).await.unwrap());
            let got = s.submissions("sat-round-000001").await.unwrap();
            assert_eq!(got, vec![w]);
        }
    }

    #[tokio::test]
    async fn served_report_is_never_replaced() {
        for (_db, s) in crate::testing::stores().await.unwrap() {
            let r = ScoreReportRow {
                run_id: "r".into(),
                validator: "v".into(),
                envelope: "{\"a\":1}".into(),
                digest: "d1".into(),
                received_ms: 1,
            };
            s.put_score_report(&r).await.unwrap();
            s.put_score_report(&r).await.unwrap();
            let mut other = r.clone();
            other.digest = "d2".into();
            other.envelope = "{\"a\":2}".into();
            assert!(matches!(
                s.put_score_report(&other).await,
                Err(StoreError::Conflict(_))
            ));
            assert_eq!(s.score_report("r", "v").await.unwrap().unwrap(), r);
        }
    }
}
