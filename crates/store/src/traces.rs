//! Distillation traces (`hallmark_core::trace`): written once per verification, read back
//! in (recorded_ms, id) order for the exports.

use crate::StoreRow;
use crate::{Store, StoreError};

/// Most traces one read returns.
pub const MAX_TRACE_PAGE: u32 = 1000;

/// One stored trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRow {
    pub id: i64,
    pub recorded_ms: i64,
    pub lane: String,
    pub kind: String,
    pub subject: String,
    /// JSON of the private trace.
    pub trace: String,
}

impl Store {
    /// Stores one trace; returns its id.
    pub async fn insert_trace(
        &self,
        recorded_ms: i64,
        lane: &str,
        kind: &str,
        subject: &str,
        trace: &str,
    ) -> Result<i64, StoreError> {
        with_pool!(self, pool => {
        Ok(sqlx::query_scalar(
            "INSERT INTO traces (recorded_ms, lane, kind, subject, trace) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(recorded_ms)
        .bind(lane)
        .bind(kind)
        .bind(subject)
        .bind(trace)
        .fetch_one(pool)
        .await?)
        })
    }

    /// Traces with id above `after_id`, recorded at or after `since_ms`, of `lane` if given,
    /// oldest first, at most `limit` (up to [`MAX_TRACE_PAGE`]).
    pub async fn traces(
        &self,
        since_ms: i64,
        lane: Option<&str>,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<TraceRow>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_TRACE_PAGE));
        let after_id = after_id.max(0);
        with_pool!(self, pool => {
        let rows = sqlx::query(
            "SELECT id, recorded_ms, lane, kind, subject, trace FROM traces \
             WHERE id > $1 AND recorded_ms >= $2 AND ($3 IS NULL OR lane = $3) \
             ORDER BY id LIMIT $4",
        )
        .bind(after_id)
        .bind(since_ms)
        .bind(lane)
        .bind(limit)
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| TraceRow {
                id: r.get(0),
                recorded_ms: r.get(1),
                lane: r.get(2),
                kind: r.get(3),
                subject: r.get(4),
                trace: r.get(5),
            })
            .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn traces_come_back_in_order_filtered() {
        for (db, store) in crate::testing::stores().await.unwrap() {
            for (ms, lane) in [(10, "sat"), (20, "stark"), (30, "sat"), (40, "tee")] {
                store
                    .insert_trace(ms, lane, "witness", "s", &format!("{{\"ms\":{ms}}}"))
                    .await
                    .unwrap();
            }
            let all = store.traces(0, None, 0, 10).await.unwrap();
            assert_eq!(all.len(), 4, "{db:?}");
            assert!(all.windows(2).all(|p| p[0].id < p[1].id));
            let sat = store.traces(0, Some("sat"), 0, 10).await.unwrap();
            assert_eq!(
                sat.iter().map(|t| t.recorded_ms).collect::<Vec<_>>(),
                [10, 30]
            );
            let since = store.traces(25, None, 0, 10).await.unwrap();
            assert_eq!(since.len(), 2);
            let page = store.traces(0, None, all[1].id, 1).await.unwrap();
            assert_eq!(page[0].id, all[2].id);
        }
    }
}
