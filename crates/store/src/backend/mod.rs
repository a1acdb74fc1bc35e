//! The two storage backends: what each needs to open, migrate and close, and the row access
//! both share. The query methods on [`crate::Store`] run against either through
//! `with_pool!`.

pub mod postgres;
pub mod sqlite;

use sqlx::{Decode, Type};

use crate::StoreError;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    /// The name used in logs and reports (`sqlite`, `postgres`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A store location as configured: which backend, and its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A `sqlite:` URL.
    Sqlite(String),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl StoreUrl {
    /// Classifies `url` by its scheme; anything else is refused by name.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("sqlite:") {
            Ok(Self::Sqlite(url.to_string()))
        } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_string()))
        } else {
            Err(StoreError::BadUrl(format!(
                "{}: expected a sqlite: or postgres:// URL",
                redact(url)
            )))
        }
    }

    /// The URL with any password replaced by `***`, for logs and errors.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(u) | Self::Postgres(u) => redact(u),
        }
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

/// A connection pool on one backend.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Pool {
    pub(crate) fn kind(&self) -> BackendKind {
        match self {
            Self::Sqlite(_) => BackendKind::Sqlite,
            Self::Postgres(_) => BackendKind::Postgres,
        }
    }
}

/// A column type both backends decode (text, 64-bit integers, bytes, booleans, options).
pub trait Column:
    for<'r> Decode<'r, sqlx::Sqlite>
    + Type<sqlx::Sqlite>
    + for<'r> Decode<'r, sqlx::Postgres>
    + Type<sqlx::Postgres>
{
}

impl<T> Column for T where
    T: for<'r> Decode<'r, sqlx::Sqlite>
        + Type<sqlx::Sqlite>
        + for<'r> Decode<'r, sqlx::Postgres>
        + Type<sqlx::Postgres>
{
}

/// A column position or name both backends' rows accept.
pub trait ColumnIndex:
    sqlx::ColumnIndex<sqlx::sqlite::SqliteRow> + sqlx::ColumnIndex<sqlx::postgres::PgRow>
{
}

impl<I> ColumnIndex for I where
    I: sqlx::ColumnIndex<sqlx::sqlite::SqliteRow> + sqlx::ColumnIndex<sqlx::postgres::PgRow>
{
}

/// Reading a result row by position on either backend, so row mappers are written once.
pub trait StoreRow {
    /// The column at `i` (a position or a name); panics (inside sqlx) only on a programming error in a mapper, the
    /// same contract as `sqlx::Row::get`.
    fn get<T: Column, I: ColumnIndex>(&self, i: I) -> T;
    /// The column at `i`, or why it cannot be read as `T`.
    fn try_get<T: Column, I: ColumnIndex>(&self, i: I) -> Result<T, sqlx::Error>;
}

impl StoreRow for sqlx::sqlite::SqliteRow {
    fn get<T: Column, I: ColumnIndex>(&self, i: I) -> T {
        sqlx::Row::get(self, i)
    }
    fn try_get<T: Column, I: ColumnIndex>(&self, i: I) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, i)
    }
}

impl StoreRow for sqlx::postgres::PgRow {
    fn get<T: Column, I: ColumnIndex>(&self, i: I) -> T {
        sqlx::Row::get(self, i)
    }
    fn try_get<T: Column, I: ColumnIndex>(&self, i: I) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_classified_and_passwords_never_shown() {
        assert!(matches!(
            StoreUrl::parse("sqlite::memory:").unwrap(),
            StoreUrl::Sqlite(_)
        ));
        let pg = StoreUrl::parse("postgres://hm:s3cret@db:5432/net").unwrap();
        assert!(matches!(pg, StoreUrl::Postgres(_)));
        assert_eq!(pg.redacted(), "postgres://hm:***@db:5432/net");
        assert!(StoreUrl::parse("postgresql:///net").is_ok());
        let err = StoreUrl::parse("mysql://u:pw@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a sqlite: or postgres://"), "{err}");
        assert!(!err.contains("pw"), "{err}");
    }
}
