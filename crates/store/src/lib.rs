//! hallmark-store: persistence for every role.
//!
//! Two backends sit behind the same methods:
//! - **SQLite** through sqlx (one file per node, WAL journal, `synchronous = FULL` so a
//!   committed write survives a crash);
//! - **PostgreSQL** through sqlx, chosen by a `postgres://` URL; each node keeps its tables in
//!   its own schema, so a whole network can share one database.
//!
//! Each backend has its own module ([`backend`]) with its own migrations, embedded in the
//! binary and run at open. The queries are written once in the SQL both dialects share
//! (`$1` placeholders, `ON CONFLICT` upserts, `RETURNING`); the few statements that differ
//! (job claims take `FOR UPDATE SKIP LOCKED` on PostgreSQL) live with their backend.
//! Every method that writes returns only after its transaction committed, so a role can
//! acknowledge a submission as soon as the call returns.
//!
//! The store holds domain objects as canonical JSON text and never interprets signatures:
//! verification happens above it.

/// Runs `$body` once per backend with `$pool` bound to that backend's pool, so one query
/// text serves both (each arm is type-checked against its own driver).
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:block) => {
        match &$store.pool {
            $crate::backend::Pool::Sqlite($pool) => $body,
            $crate::backend::Pool::Postgres($pool) => $body,
        }
    };
}

mod audit;
pub mod backend;
mod builds;
mod compute;
mod jobs;
mod ledger;
mod log;
mod rounds;
mod runs;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod traces;
mod validator;

use std::path::Path;

pub use audit::{CommitmentRow, EquivocationRow};
pub use backend::{BackendKind, StoreUrl};
pub use builds::{BuildFinish, BuildVerificationRow, NewBuildVerification, OPEN_BUILD_STATUSES};
pub use compute::{
    ComputeEventRow, ComputeNonceRow, ComputeOfferRow, ComputeProviderRow, NonceTake,
};
pub use jobs::{JobEquivocationRow, JobEventRow, JobRow, JobSettlement, NewJob, ProofSubmission};
pub use ledger::{
    AccountRow, ArchiveCommitRow, BuildInfoRow, ConfidentialRow, LedgerCommit, LedgerTxRow,
    NeuronRow, NullifierRow, SettledJobRow, SlashRow, StakeRow, WeightsRow,
};
pub use log::{FeedCursor, LogEntry, TransparencyLog, MAX_FEED_PAGE};
pub use rounds::RoundRow;
pub use runs::RunSubmissionRow;
pub use traces::{ConsentRow, TraceRow, MAX_CONSENT_PAGE, MAX_TRACE_PAGE};
pub use validator::{ScoreReportRow, SubmissionRow};

use backend::StoreRow;

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
    #[error("bad store location: {0}")]
    BadUrl(String),
}

/// A handle on one node's database (SQLite file or PostgreSQL schema).
#[derive(Debug, Clone)]
pub struct Store {
    pool: backend::Pool,
}

impl Store {
    /// Opens (creating if missing) the SQLite database at `path` and runs migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            pool: backend::sqlite::open_path(path).await?,
        })
    }

    /// Opens a database from a URL: `sqlite:` (`sqlite::memory:` for tests) or
    /// `postgres://` / `postgresql://`, whose tables go to the schema `public` unless the
    /// URL names another (see [`Store::open_postgres`]).
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        match StoreUrl::parse(url)? {
            StoreUrl::Sqlite(u) => Ok(Self {
                pool: backend::sqlite::open_url(&u).await?,
            }),
            StoreUrl::Postgres(u) => Self::open_postgres(&u, "public").await,
        }
    }

    /// Opens the PostgreSQL database at `url` with this node's tables in `schema` (created
    /// if missing), and runs migrations there. Nodes sharing a database use one schema each.
    pub async fn open_postgres(url: &str, schema: &str) -> Result<Self, StoreError> {
        Ok(Self {
            pool: backend::postgres::open(url, schema).await?,
        })
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> BackendKind {
        self.pool.kind()
    }

    /// The schema version after migrations (the highest applied migration).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        with_pool!(self, pool => {
            let v: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = $1")
                    .bind(true)
                    .fetch_one(pool)
                    .await?;
            Ok(v.unwrap_or(0))
        })
    }

    /// Reads a named value.
    pub async fn kv_get(&self, name: &str) -> Result<Option<String>, StoreError> {
        with_pool!(self, pool => {
        Ok(sqlx::query_scalar("SELECT value FROM kv WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Writes a named value (committed on return).
    pub async fn kv_put(&self, name: &str, value: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        sqlx::query("INSERT INTO kv (name, value) VALUES ($1, $2) ON CONFLICT(name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(pool)
            .await?;
        Ok(())
        })
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
        with_pool!(self, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM seen_signatures WHERE seen_at < $1")
            .bind(forget_before)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO seen_signatures (sig, seen_at) VALUES ($1, $2) ON CONFLICT(sig) DO NOTHING",
        )
        .bind(sig)
        .bind(seen_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
        })
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        with_pool!(self, pool => {
        pool.close().await;
        })
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
        for db in testing::TestDb::all().unwrap() {
            {
                let s = db.open().await.unwrap();
                let expected = match db.kind() {
                    BackendKind::Sqlite => 16,
                    BackendKind::Postgres => 4,
                };
                assert_eq!(s.schema_version().await.unwrap(), expected);
                assert_eq!(s.backend(), db.kind());
                s.kv_put("incumbent", "x").await.unwrap();
                s.kv_put("incumbent", "y").await.unwrap();
                s.close().await;
            }
            let s = db.open().await.unwrap();
            assert_eq!(s.kv_get("incumbent").await.unwrap().as_deref(), Some("y"));
            assert_eq!(s.kv_get("missing").await.unwrap(), None);
            match &s.pool {
                backend::Pool::Sqlite(pool) => {
                    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                        .fetch_one(pool)
                        .await
                        .unwrap();
                    assert_eq!(mode, "wal");
                }
                backend::Pool::Postgres(pool) => {
                    let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
                        .fetch_one(pool)
                        .await
                        .unwrap();
                    assert_eq!(sync, "on");
                }
            }
        }
    }

    #[tokio::test]
    async fn postgres_schemas_keep_nodes_apart() {
        let Some(db) = testing::TestDb::postgres().unwrap() else {
            return;
        };
        let testing::TestDb::Postgres { url, schema } = &db else {
            unreachable!()
        };
        let a = Store::open_postgres(url, schema).await.unwrap();
        let b = Store::open_postgres(url, &format!("{schema}_b"))
            .await
            .unwrap();
        a.kv_put("k", "a").await.unwrap();
        assert_eq!(b.kv_get("k").await.unwrap(), None);
        assert!(matches!(
            Store::open_postgres(url, "Bad-Name").await,
            Err(StoreError::BadUrl(_))
        ));
        assert!(matches!(
            Store::open_url("mysql://x/y").await,
            Err(StoreError::BadUrl(_))
        ));
    }

    #[tokio::test]
    async fn remembered_signatures_survive_reopen_and_expire() {
        for db in testing::TestDb::all().unwrap() {
            {
                let s = db.open().await.unwrap();
                assert!(s.remember_signature(b"sig-a", 100, 0).await.unwrap());
                assert!(!s.remember_signature(b"sig-a", 101, 0).await.unwrap());
                s.close().await;
            }
            let s = db.open().await.unwrap();
            assert!(!s.remember_signature(b"sig-a", 102, 0).await.unwrap());
            // Once older than the horizon it is forgotten (its timestamp is outside the window
            // by then, so the signature check refuses it anyway).
            assert!(s.remember_signature(b"sig-a", 500, 200).await.unwrap());
        }
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
