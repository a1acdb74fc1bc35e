//! The PostgreSQL backend. A node's tables live in its own schema (its `search_path`), so the
//! nodes of a network can share one database; commits are durable with PostgreSQL's default
//! `synchronous_commit = on`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use super::Pool;
use crate::StoreError;

/// PostgreSQL's migrations: its own files, starting from the schema SQLite reached by its
/// migration 13 (the version the two share from then on is the schema's, not the file's).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per node: a role runs a handful of concurrent statements, and many nodes may
/// share one server (PostgreSQL's default cap is 100 connections).
const MAX_CONNECTIONS: u32 = 5;

/// Whether `schema` is a name this backend creates: lower-case ASCII letters, digits and
/// `_`, starting with a letter, at most 63 bytes (PostgreSQL's identifier limit).
pub fn valid_schema(schema: &str) -> bool {
    !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase())
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The schema name for a node called `name`: `hallmark_` and the name, lower-cased, with
/// every other character as `_`, cut to PostgreSQL's identifier limit.
pub fn schema_for_node(name: &str) -> String {
    let mut s = String::from("hallmark_");
    s.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        }
    }));
    s.truncate(63);
    s
}

/// Opens `url` with the node's tables in `schema` (created if missing) and migrates it.
pub(crate) async fn open(url: &str, schema: &str) -> Result<Pool, StoreError> {
    if !valid_schema(schema) {
        return Err(StoreError::BadUrl(format!(
            "schema {schema:?}: use lower-case letters, digits and _ (at most 63)"
        )));
    }
    let base = PgConnectOptions::from_str(url)?;
    // The schema must exist before a pool whose search_path names it can migrate into it.
    let mut conn = base.connect().await?;
    let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(&mut conn)
        .await;
    match created {
        Ok(_) => {}
        // Two nodes creating the same schema at once: the loser sees a unique violation.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
        Err(e) => return Err(e.into()),
    }
    conn.close().await?;
    let opts = base.options([("search_path", schema)]);
    let pool = PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(opts)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(Pool::Postgres(pool))
}

/// [`super::sqlite::CLAIM_JOB`] for PostgreSQL, where claims run concurrently: the inner
/// select locks the row it picks and skips rows another claim holds (`FOR UPDATE SKIP
/// LOCKED`), so concurrent workers take different jobs instead of queueing on one.
pub(crate) const CLAIM_JOB: &str = "UPDATE jobs SET status = 'assigned', worker = $1, \
    attempts = attempts + 1, assigned_ms = $2, lease_until_ms = $3 \
    WHERE status = 'queued' AND job_id = (SELECT job_id FROM jobs \
    WHERE status = 'queued' AND lane = $4 ORDER BY queued_ms, job_id LIMIT 1 \
    FOR UPDATE SKIP LOCKED) RETURNING job_id";
