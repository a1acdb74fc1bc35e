//! Coordinator tables: published rounds, numbered per lane.

use crate::StoreRow;

use crate::{to_i64, to_u64, Store, StoreError};

/// A published round (its body is the signed round announcement, JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundRow {
    pub lane: String,
    pub number: u64,
    pub round_id: String,
    pub body: String,
    pub created_at: i64,
}

impl Store {
    /// Records a new round; `Conflict` if its lane and number, or its id, exist.
    pub async fn insert_round(&self, row: &RoundRow) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        let res = sqlx::query(
            "INSERT INTO lane_rounds (lane, number, round_id, body, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&row.lane)
        .bind(to_i64(row.number, "round number")?)
        .bind(&row.round_id)
        .bind(&row.body)
        .bind(row.created_at)
        .execute(pool)
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
        })
    }

    /// The most recent round of `lane`.
    pub async fn latest_round(&self, lane: &str) -> Result<Option<RoundRow>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query(
            "SELECT lane, number, round_id, body, created_at FROM lane_rounds WHERE lane = $1 ORDER BY number DESC LIMIT 1",
        )
        .bind(lane)
        .fetch_optional(pool)
        .await?;
        row.map(round_row).transpose()
        })
    }

    /// One round by id.
    pub async fn round(&self, round_id: &str) -> Result<Option<RoundRow>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query(
            "SELECT lane, number, round_id, body, created_at FROM lane_rounds WHERE round_id = $1",
        )
        .bind(round_id)
        .fetch_optional(pool)
        .await?;
        row.map(round_row).transpose()
        })
    }
}

fn round_row(r: impl StoreRow) -> Result<RoundRow, StoreError> {
    Ok(RoundRow {
        lane: r.get(0),
        number: to_u64(r.get(1), "round number")?,
        round_id: r.get(2),
        body: r.get(3),
        created_at: r.get(4),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(lane: &str, number: u64) -> RoundRow {
        RoundRow {
            lane: lane.into(),
            number,
            round_id: format!("{lane}-round-{number:06}"),
            body: "{}".into(),
            created_at: 1,
        }
    }

    #[tokio::test]
    async fn lanes_number_their_rounds_apart() {
        for (_db, s) in crate::testing::stores().await.unwrap() {
            s.insert_round(&row("sat", 1)).await.unwrap();
            s.insert_round(&row("eval", 1)).await.unwrap();
            s.insert_round(&row("sat", 2)).await.unwrap();
            assert!(matches!(
                s.insert_round(&row("sat", 2)).await,
                Err(StoreError::Conflict(_))
            ));
            assert_eq!(s.latest_round("sat").await.unwrap().unwrap().number, 2);
            assert_eq!(s.latest_round("eval").await.unwrap().unwrap().number, 1);
            assert!(s.latest_round("other").await.unwrap().is_none());
            assert_eq!(
                s.round("eval-round-000001").await.unwrap().unwrap().lane,
                "eval"
            );
        }
    }
}
