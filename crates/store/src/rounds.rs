//! Coordinator tables: published rounds.

use sqlx::Row;

use crate::{to_i64, to_u64, Store, StoreError};

/// A published round (its body is the signed round announcement, JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundRow {
    pub number: u64,
    pub round_id: String,
    pub body: String,
    pub created_at: i64,
}

impl Store {
    /// Records a new round; `Conflict` if its number or id exists.
    pub async fn insert_round(&self, row: &RoundRow) -> Result<(), StoreError> {
        let res = sqlx::query(
            "INSERT INTO rounds (number, round_id, body, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(to_i64(row.number, "round number")?)
        .bind(&row.round_id)
        .bind(&row.body)
        .bind(row.created_at)
        .execute(&self.pool)
        .await;
        match res {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("round {} exists", row.round_id),
            )),
            other => {
                other?;
                Ok(())
            }
        }
    }

    /// The most recent round.
    pub async fn latest_round(&self) -> Result<Option<RoundRow>, StoreError> {
        let row = sqlx::query(
            "SELECT number, round_id, body, created_at FROM rounds ORDER BY number DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(round_row).transpose()
    }

    /// One round by id.
    pub async fn round(&self, round_id: &str) -> Result<Option<RoundRow>, StoreError> {
        let row =
            sqlx::query("SELECT number, round_id, body, created_at FROM rounds WHERE round_id = ?")
                .bind(round_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(round_row).transpose()
    }
}

fn round_row(r: sqlx::sqlite::SqliteRow) -> Result<RoundRow, StoreError> {
    Ok(RoundRow {
        number: to_u64(r.get(0), "round number")?,
        round_id: r.get(1),
        body: r.get(2),
        created_at: r.get(3),
    })
}
