//! The coordinator's tables for roster lanes: each worker's archive for a run and the run's
//! signed roster (migration 0011).

use crate::StoreRow;

use crate::{Store, StoreError};

/// A worker's archive for a run, as the coordinator took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSubmissionRow {
    pub run_id: String,
    pub hotkey: String,
    pub submission_id: String,
    pub archive_sha256: String,
    /// The manifest as the lane read it (JSON).
    pub manifest: String,
    pub received_ms: i64,
}

impl Store {
    /// Records a worker's archive for a run, replacing its earlier one; refused (`Conflict`)
    /// when another worker's submission already has this id.
    pub async fn put_run_submission(
        &self,
        row: &RunSubmissionRow,
        archive: &[u8],
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        sqlx::query("INSERT INTO run_submissions (run_id, hotkey, submission_id, archive_sha256, manifest, archive, received_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT(run_id, hotkey) DO UPDATE SET submission_id = excluded.submission_id, archive_sha256 = excluded.archive_sha256, manifest = excluded.manifest, archive = excluded.archive, received_ms = excluded.received_ms")
            .bind(&row.run_id)
            .bind(&row.hotkey)
            .bind(&row.submission_id)
            .bind(&row.archive_sha256)
            .bind(&row.manifest)
            .bind(archive)
            .bind(row.received_ms)
            .execute(pool)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(
                    format!("submission {} of {} belongs to another worker", row.submission_id, row.run_id),
                ),
                other => other.into(),
            })?;
        Ok(())
        })
    }

    /// Every worker's submission for a run (without the archive bytes), by hotkey.
    pub async fn run_submissions(&self, run_id: &str) -> Result<Vec<RunSubmissionRow>, StoreError> {
        with_pool!(self, pool => {
        sqlx::query("SELECT run_id, hotkey, submission_id, archive_sha256, manifest, received_ms FROM run_submissions WHERE run_id = $1 ORDER BY hotkey")
            .bind(run_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(RunSubmissionRow {
                    run_id: r.try_get(0)?,
                    hotkey: r.try_get(1)?,
                    submission_id: r.try_get(2)?,
                    archive_sha256: r.try_get(3)?,
                    manifest: r.try_get(4)?,
                    received_ms: r.try_get(5)?,
                })
            })
            .collect()
        })
    }

    /// A submission's archive bytes.
    pub async fn run_archive(
        &self,
        run_id: &str,
        submission_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        with_pool!(self, pool => {
        Ok(sqlx::query_scalar(
            "SELECT archive FROM run_submissions WHERE run_id = $1 AND submission_id = $2",
        )
        .bind(run_id)
        .bind(submission_id)
        .fetch_optional(pool)
        .await?)
        })
    }

    /// Stores a run's signed roster; the first one stands (`false` if one was there).
    pub async fn put_run_roster(
        &self,
        run_id: &str,
        envelope: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let n = sqlx::query("INSERT INTO run_rosters (run_id, envelope, created_ms) VALUES ($1, $2, $3) ON CONFLICT(run_id) DO NOTHING")
            .bind(run_id)
            .bind(envelope)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected();
        Ok(n == 1)
        })
    }

    /// A run's signed roster (JSON envelope), once sealed.
    pub async fn run_roster(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        with_pool!(self, pool => {
        Ok(
            sqlx::query_scalar("SELECT envelope FROM run_rosters WHERE run_id = $1")
                .bind(run_id)
                .fetch_optional(pool)
                .await?,
        )
        })
    }
}
