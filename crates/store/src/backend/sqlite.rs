//! The SQLite backend: one file per node, WAL journal, `synchronous = FULL`, foreign keys on.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::Pool;
use crate::StoreError;

/// SQLite's migrations, from its first schema on (files carried since 0.1 are never edited).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Opens (creating if missing) the database file at `path`.
pub(crate) async fn open_path(path: &Path) -> Result<Pool, StoreError> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    connect(opts, 4).await
}

/// Opens a `sqlite:` URL (`sqlite::memory:` is one private in-memory database).
pub(crate) async fn open_url(url: &str) -> Result<Pool, StoreError> {
    let opts = SqliteConnectOptions::from_str(url)?.create_if_missing(true);
    // An in-memory database lives in one connection.
    let max = if url.contains(":memory:") { 1 } else { 4 };
    connect(opts, max).await
}

async fn connect(opts: SqliteConnectOptions, max: u32) -> Result<Pool, StoreError> {
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
    Ok(Pool::Sqlite(pool))
}

/// Assigns the oldest queued job of a lane (`$4`) to a worker (`$1`) at `$2` until `$3`.
/// SQLite has one writer at a time, so the inner select and the update cannot interleave
/// with another claim.
pub(crate) const CLAIM_JOB: &str = "UPDATE jobs SET status = 'assigned', worker = $1, \
    attempts = attempts + 1, assigned_ms = $2, lease_until_ms = $3 \
    WHERE status = 'queued' AND job_id = (SELECT job_id FROM jobs \
    WHERE status = 'queued' AND lane = $4 ORDER BY queued_ms, job_id LIMIT 1) RETURNING job_id";
