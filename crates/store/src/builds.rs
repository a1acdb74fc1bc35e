//! Coordinator tables for the build lane: content-addressed blobs and verifications. A
//! verification's state changes are conditional updates on its current status, so two drivers
//! never both open a job for it and a cancelled one is never finished afterwards.

use crate::StoreRow;

use crate::{to_i64, to_u64, Store, StoreError};

/// One verification of a wasm against a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildVerificationRow {
    pub id: String,
    pub wasm_sha256: String,
    pub recipe_key: String,
    /// The recipe (JSON).
    pub recipe: String,
    pub recipe_source: String,
    pub status: String,
    pub job_id: Option<String>,
    pub attempts: u64,
    /// The certified claim's outcome (JSON).
    pub outcome: Option<String>,
    pub detail: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub deadline_ms: i64,
}

/// What a new verification is stored with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBuildVerification<'a> {
    pub id: &'a str,
    pub wasm_sha256: &'a str,
    pub recipe_key: &'a str,
    pub recipe: &'a str,
    pub recipe_source: &'a str,
    pub now_ms: i64,
    pub deadline_ms: i64,
}

/// How a verification ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildFinish<'a> {
    pub status: &'a str,
    pub outcome: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub now_ms: i64,
}

const COLUMNS: &str = "id, wasm_sha256, recipe_key, recipe, recipe_source, status, job_id, attempts, outcome, detail, error_code, error_message, created_ms, updated_ms, deadline_ms";

fn row_of(r: &impl StoreRow) -> Result<BuildVerificationRow, StoreError> {
    Ok(BuildVerificationRow {
        id: r.try_get("id")?,
        wasm_sha256: r.try_get("wasm_sha256")?,
        recipe_key: r.try_get("recipe_key")?,
        recipe: r.try_get("recipe")?,
        recipe_source: r.try_get("recipe_source")?,
        status: r.try_get("status")?,
        job_id: r.try_get("job_id")?,
        attempts: to_u64(r.try_get("attempts")?, "attempts")?,
        outcome: r.try_get("outcome")?,
        detail: r.try_get("detail")?,
        error_code: r.try_get("error_code")?,
        error_message: r.try_get("error_message")?,
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
        deadline_ms: r.try_get("deadline_ms")?,
    })
}

/// A value bound into a verification query.
enum Arg<'a> {
    Text(&'a str),
    Int(i64),
}

/// The statuses a verification can still leave.
pub const OPEN_BUILD_STATUSES: &[&str] = &["queued", "building"];

impl Store {
    /// Stores a blob under its hash (the caller hashed it); `false` if it was already there.
    pub async fn put_blob(
        &self,
        sha256: &str,
        kind: &str,
        bytes: &[u8],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let size = to_i64(u64::try_from(bytes.len()).unwrap_or(u64::MAX), "blob size")?;
        let n = sqlx::query("INSERT INTO blobs (sha256, kind, bytes, size, created_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT(sha256) DO NOTHING")
            .bind(sha256)
            .bind(kind)
            .bind(bytes)
            .bind(size)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected();
        Ok(n == 1)
        })
    }

    /// A blob's bytes.
    pub async fn blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        with_pool!(self, pool => {
        Ok(
            sqlx::query_scalar("SELECT bytes FROM blobs WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(pool)
                .await?,
        )
        })
    }

    /// Whether a blob is stored.
    pub async fn has_blob(&self, sha256: &str) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_one(pool)
            .await?;
        Ok(n > 0)
        })
    }

    /// The bytes all blobs take.
    pub async fn blob_bytes_total(&self) -> Result<u64, StoreError> {
        with_pool!(self, pool => {
        let n: Option<i64> = sqlx::query_scalar("SELECT CAST(SUM(size) AS BIGINT) FROM blobs")
            .fetch_one(pool)
            .await?;
        to_u64(n.unwrap_or(0), "blob bytes")
        })
    }

    /// Stores a new verification; `Err(Conflict)` when one for the same wasm and recipe exists.
    pub async fn insert_build_verification(
        &self,
        v: &NewBuildVerification<'_>,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        let res = sqlx::query("INSERT INTO build_verifications (id, wasm_sha256, recipe_key, recipe, recipe_source, status, created_ms, updated_ms, deadline_ms) VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8)")
            .bind(v.id)
            .bind(v.wasm_sha256)
            .bind(v.recipe_key)
            .bind(v.recipe)
            .bind(v.recipe_source)
            .bind(v.now_ms)
            .bind(v.now_ms)
            .bind(v.deadline_ms)
            .execute(pool)
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict(format!(
                    "a verification of {} with this recipe exists",
                    v.wasm_sha256
                )))
            }
            Err(e) => Err(e.into()),
        }
        })
    }

    /// The verifications a `tail` (WHERE / ORDER BY / LIMIT) selects, with `args` bound in
    /// order.
    async fn select_verifications(
        &self,
        tail: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<BuildVerificationRow>, StoreError> {
        with_pool!(self, pool => {
        let q = format!("SELECT {COLUMNS} FROM build_verifications {tail}");
        let mut query = sqlx::query(&q);
        for a in args {
            query = match a {
                Arg::Text(t) => query.bind(*t),
                Arg::Int(n) => query.bind(*n),
            };
        }
        query
            .fetch_all(pool)
            .await?
            .iter()
            .map(row_of)
            .collect()
        })
    }

    /// One verification by id.
    pub async fn build_verification(
        &self,
        id: &str,
    ) -> Result<Option<BuildVerificationRow>, StoreError> {
        let rows = self
            .select_verifications("WHERE id = $1", &[Arg::Text(id)])
            .await?;
        Ok(rows.into_iter().next())
    }

    /// The verification of `wasm_sha256` with the recipe `recipe_key`.
    pub async fn build_verification_of(
        &self,
        wasm_sha256: &str,
        recipe_key: &str,
    ) -> Result<Option<BuildVerificationRow>, StoreError> {
        let rows = self
            .select_verifications(
                "WHERE wasm_sha256 = $1 AND recipe_key = $2",
                &[Arg::Text(wasm_sha256), Arg::Text(recipe_key)],
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    /// Every verification of a wasm, oldest first.
    pub async fn build_verifications_of_wasm(
        &self,
        wasm_sha256: &str,
    ) -> Result<Vec<BuildVerificationRow>, StoreError> {
        self.select_verifications(
            "WHERE wasm_sha256 = $1 ORDER BY created_ms, id",
            &[Arg::Text(wasm_sha256)],
        )
        .await
    }

    /// Verifications, newest first (at most `limit`).
    pub async fn build_verifications(
        &self,
        limit: u32,
    ) -> Result<Vec<BuildVerificationRow>, StoreError> {
        self.select_verifications(
            "ORDER BY created_ms DESC, id LIMIT $1",
            &[Arg::Int(i64::from(limit))],
        )
        .await
    }

    /// Verifications still queued or building, oldest first.
    pub async fn open_build_verifications(
        &self,
        limit: u32,
    ) -> Result<Vec<BuildVerificationRow>, StoreError> {
        self.select_verifications(
            "WHERE status IN ('queued', 'building') ORDER BY created_ms, id LIMIT $1",
            &[Arg::Int(i64::from(limit))],
        )
        .await
    }

    /// How many verifications are still queued or building.
    pub async fn count_open_build_verifications(&self) -> Result<u64, StoreError> {
        with_pool!(self, pool => {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM build_verifications WHERE status IN ('queued', 'building')",
        )
        .fetch_one(pool)
        .await?;
        to_u64(n, "count")
        })
    }

    /// Attaches a new job to a verification if it still has `expected_job` (none, or the job
    /// that just failed); `false` if another driver got there first.
    pub async fn set_build_job(
        &self,
        id: &str,
        expected_job: Option<&str>,
        job_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let n = sqlx::query("UPDATE build_verifications SET job_id = $1, attempts = attempts + 1, updated_ms = $2 WHERE id = $3 AND status IN ('queued', 'building') AND job_id IS NOT DISTINCT FROM $4")
            .bind(job_id)
            .bind(now_ms)
            .bind(id)
            .bind(expected_job)
            .execute(pool)
            .await?
            .rows_affected();
        Ok(n == 1)
        })
    }

    /// Moves an open verification from `from` to `to` (queued → building).
    pub async fn set_build_status(
        &self,
        id: &str,
        from: &str,
        to: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let n = sqlx::query(
            "UPDATE build_verifications SET status = $1, updated_ms = $2 WHERE id = $3 AND status = $4",
        )
        .bind(to)
        .bind(now_ms)
        .bind(id)
        .bind(from)
        .execute(pool)
        .await?
        .rows_affected();
        Ok(n == 1)
        })
    }

    /// Replaces an open verification's recipe (a search found the one that reproduces).
    pub async fn set_build_recipe(
        &self,
        id: &str,
        recipe: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let n = sqlx::query("UPDATE build_verifications SET recipe = $1, updated_ms = $2 WHERE id = $3 AND status IN ('queued', 'building')")
            .bind(recipe)
            .bind(now_ms)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected();
        Ok(n == 1)
        })
    }

    /// Notes an open verification's progress in a line.
    pub async fn set_build_detail(&self, id: &str, detail: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        sqlx::query("UPDATE build_verifications SET detail = $1 WHERE id = $2 AND status IN ('queued', 'building')")
            .bind(detail)
            .bind(id)
            .execute(pool)
            .await?;
        Ok(())
        })
    }

    /// Ends an open verification; `false` if it had already ended (or was cancelled).
    pub async fn finish_build_verification(
        &self,
        id: &str,
        f: &BuildFinish<'_>,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let n = sqlx::query("UPDATE build_verifications SET status = $1, outcome = $2, detail = $3, error_code = $4, error_message = $5, updated_ms = $6 WHERE id = $7 AND status IN ('queued', 'building')")
            .bind(f.status)
            .bind(f.outcome)
            .bind(f.detail)
            .bind(f.error_code)
            .bind(f.error_message)
            .bind(f.now_ms)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected();
        Ok(n == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifications_are_unique_and_move_only_forward() {
        for (_db, s) in crate::testing::stores().await.unwrap() {
            assert!(s.put_blob("aa", "wasm", b"x", 1).await.unwrap());
            assert!(!s.put_blob("aa", "wasm", b"x", 2).await.unwrap());
            assert_eq!(s.blob("aa").await.unwrap().as_deref(), Some(&b"x"[..]));
            assert_eq!(s.blob_bytes_total().await.unwrap(), 1);
            let new = NewBuildVerification {
                id: "ver-1",
                wasm_sha256: "aa",
                recipe_key: "k",
                recipe: "{}",
                recipe_source: "onchain_meta",
                now_ms: 1,
                deadline_ms: 100,
            };
            s.insert_build_verification(&new).await.unwrap();
            let again = NewBuildVerification { id: "ver-2", ..new };
            assert!(matches!(
                s.insert_build_verification(&again).await,
                Err(StoreError::Conflict(_))
            ));
            assert!(s.set_build_job("ver-1", None, "job-a", 2).await.unwrap());
            // A second driver with a stale view does not attach another job.
            assert!(!s.set_build_job("ver-1", None, "job-b", 2).await.unwrap());
            assert!(s
                .set_build_job("ver-1", Some("job-a"), "job-c", 3)
                .await
                .unwrap());
            assert!(s
                .set_build_status("ver-1", "queued", "building", 4)
                .await
                .unwrap());
            let fin = BuildFinish {
                status: "verified",
                outcome: Some("{}"),
                detail: None,
                error_code: None,
                error_message: None,
                now_ms: 5,
            };
            assert!(s.finish_build_verification("ver-1", &fin).await.unwrap());
            assert!(!s.finish_build_verification("ver-1", &fin).await.unwrap());
            let row = s.build_verification("ver-1").await.unwrap().unwrap();
            assert_eq!((row.status.as_str(), row.attempts), ("verified", 2));
            assert_eq!(row.job_id.as_deref(), Some("job-c"));
            assert_eq!(s.count_open_build_verifications().await.unwrap(), 0);
            assert_eq!(s.build_verifications_of_wasm("aa").await.unwrap().len(), 1);
        }
    }
}
