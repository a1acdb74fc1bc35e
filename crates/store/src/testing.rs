//! Throwaway databases for tests, on every backend this machine offers, so one test body
//! checks SQLite and PostgreSQL alike.
//!
//! SQLite is always there. PostgreSQL joins when `HALLMARK_TEST_DATABASE_URL` names a server
//! (`.ci/run` starts one and sets it); each [`TestDb`] is then a fresh schema there. With
//! `HALLMARK_REQUIRE_POSTGRES=1` a missing URL is an error rather than a quiet SQLite-only
//! run.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{BackendKind, Store, StoreError};

/// The PostgreSQL server tests may create schemas in.
pub const TEST_DATABASE_URL_VAR: &str = "HALLMARK_TEST_DATABASE_URL";
/// Set to `1` to make a missing [`TEST_DATABASE_URL_VAR`] an error.
pub const REQUIRE_POSTGRES_VAR: &str = "HALLMARK_REQUIRE_POSTGRES";

/// One empty database a test may open (and reopen, to check what survives).
#[derive(Debug)]
pub enum TestDb {
    /// A SQLite file in its own temporary directory (removed on drop).
    Sqlite(tempfile::TempDir),
    /// A fresh schema on the test PostgreSQL server.
    Postgres { url: String, schema: String },
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The test PostgreSQL server's URL, or None where none is configured; with
/// [`REQUIRE_POSTGRES_VAR`]`=1` a missing one is an error, so CI never quietly skips it.
pub fn server_url() -> Result<Option<String>, StoreError> {
    match std::env::var(TEST_DATABASE_URL_VAR) {
        Ok(url) if !url.is_empty() => Ok(Some(url)),
        _ if std::env::var(REQUIRE_POSTGRES_VAR).as_deref() == Ok("1") => Err(StoreError::BadUrl(
            format!("{REQUIRE_POSTGRES_VAR}=1 but {TEST_DATABASE_URL_VAR} is not set"),
        )),
        _ => Ok(None),
    }
}

impl TestDb {
    /// A fresh database on every available backend, SQLite first.
    pub fn all() -> Result<Vec<TestDb>, StoreError> {
        let mut dbs = vec![Self::sqlite()?];
        if let Some(db) = Self::postgres()? {
            dbs.push(db);
        }
        Ok(dbs)
    }

    /// A fresh SQLite database.
    pub fn sqlite() -> Result<TestDb, StoreError> {
        let dir = tempfile::tempdir()
            .map_err(|e| StoreError::BadUrl(format!("temporary directory: {e}")))?;
        Ok(TestDb::Sqlite(dir))
    }

    /// A fresh PostgreSQL schema, if a test server is configured.
    pub fn postgres() -> Result<Option<TestDb>, StoreError> {
        Ok(server_url()?.map(|url| {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let schema = format!("hmtest_{}_{n}_{nanos}", std::process::id());
            TestDb::Postgres { url, schema }
        }))
    }

    /// Which backend this database is on.
    pub fn kind(&self) -> BackendKind {
        match self {
            TestDb::Sqlite(_) => BackendKind::Sqlite,
            TestDb::Postgres { .. } => BackendKind::Postgres,
        }
    }

    /// Opens (the first time: creates and migrates) the database.
    pub async fn open(&self) -> Result<Store, StoreError> {
        match self {
            TestDb::Sqlite(dir) => Store::open(&dir.path().join("test.sqlite")).await,
            TestDb::Postgres { url, schema } => Store::open_postgres(url, schema).await,
        }
    }
}

/// One fresh, opened store per available backend.
pub async fn stores() -> Result<Vec<(TestDb, Store)>, StoreError> {
    let mut out = Vec::new();
    for db in TestDb::all()? {
        let s = db.open().await?;
        out.push((db, s));
    }
    Ok(out)
}
