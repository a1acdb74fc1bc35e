//! hallmark-store: persistence for every role.
//!
//! SQLite through sqlx (one file per node, WAL journal, `synchronous = FULL` so a committed
//! write survives a crash), with versioned migrations embedded in the binary and run at open.
//! Every method that writes returns only after its transaction committed, so a role can
//! acknowledge a submission as soon as the call returns.
//!
//! The store holds domain objects as canonical JSON text and never interprets signatures:
//! verification happens above it. PostgreSQL is planned behind the same methods (see
//! ARCHITECTURE.md).

mod audit;
mod builds;
mod compute;
mod jobs;
mod ledger;
mod log;
mod rounds;
mod runs;
mod validator;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use audit::{CommitmentRow, EquivocationRow};
pub use builds::{BuildFinish, BuildVerificationRow, NewBuildVerification, OPEN_BUILD_STATUSES};
pub use compute::{
    ComputeEventRow, ComputeNonceRow, ComputeOfferRow, ComputeProviderRow, NonceTake,
};
pub use jobs::{JobEquivocationRow, JobEventRow, JobRow, JobSettlement, NewJob, ProofSubmission};
pub use ledger::{
    AccountRow, ArchiveCommitRow, BuildInfoRow, ConfidentialRow, LedgerCommit, LedgerTxRow,
    NeuronRow, NullifierRow, SettledJobRow, SlashRow, StakeRow, WeightsRow,
};
pub use log::{LogEntry, TransparencyLog};
pub use rounds::RoundRow;
pub use runs::RunSubmissionRow;
pub use validator::{ScoreReportRow, SubmissionRow};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// A handle on one node's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Opens (creating if missing) the SQLite database at `path` and runs migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::connect(opts, 4).await
    }

    /// Opens a database from a `sqlite:` URL (`sqlite::memory:` for tests).
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?.create_if_missing(true);
        // An in-memory database lives in one connection.
        let max = if url.contains(":memory:") { 1 } else { 4 };
        Self::connect(opts, max).await
    }

    async fn connect(opts: SqliteConnectOptions, max: u32) -> Result<Self, StoreError> {
        let opts = opts
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// The schema version after migrations (the highest applied migration).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(v.unwrap_or(0))
    }

    /// Reads a named value.
    pub async fn kv_get(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM kv WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Writes a named value (committed on return).
    pub async fn kv_put(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO kv (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a request signature taken at `seen_at` (unix seconds) and forgets those taken
    /// before `forget_before`, in one transaction. False if `sig` was already recorded: the
    /// request is a replay. Committed on return, so the answer survives a restart.
    pub async fn remember_signature(
        &self,
        sig: &[u8],
        seen_at: i64,
        forget_before: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM seen_signatures WHERE seen_at < ?")
            .bind(forget_before)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO seen_signatures (sig, seen_at) VALUES (?, ?) ON CONFLICT(sig) DO NOTHING",
        )
        .bind(sig)
        .bind(seen_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v)
        .map_err(|_| StoreError::Conflict(format!("{what} {v} exceeds the store's range")))
}

fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrates_and_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        {
            let s = Store::open(&path).await.unwrap();
            assert_eq!(s.schema_version().await.unwrap(), 13);
            s.kv_put("incumbent", "x").await.unwrap();
            s.kv_put("incumbent", "y").await.unwrap();
            s.close().await;
        }
        let s = Store::open(&path).await.unwrap();
        assert_eq!(s.kv_get("incumbent").await.unwrap().as_deref(), Some("y"));
        assert_eq!(s.kv_get("missing").await.unwrap(), None);
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn remembered_signatures_survive_reopen_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sqlite");
        {
            let s = Store::open(&path).await.unwrap();
            assert!(s.remember_signature(b"sig-a", 100, 0).await.unwrap());
            assert!(!s.remember_signature(b"sig-a", 101, 0).await.unwrap());
            s.close().await;
        }
        let s = Store::open(&path).await.unwrap();
        assert!(!s.remember_signature(b"sig-a", 102, 0).await.unwrap());
        // Once older than the horizon it is forgotten (its timestamp is outside the window by
        // then, so the signature check refuses it anyway).
        assert!(s.remember_signature(b"sig-a", 500, 200).await.unwrap());
    }

    #[tokio::test]
    async fn refuses_a_file_that_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.sqlite");
        std::fs::write(&path, b"this is not sqlite, it is a text file of some length....................................................................................").unwrap();
        assert!(Store::open(&path).await.is_err());
        // The file is left as it was.
        assert!(std::fs::read(&path)
            .unwrap()
            .starts_with(b"this is not sqlite"));
    }
}
