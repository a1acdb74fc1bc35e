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

/// A party's latest trace consent, as the coordinator keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    /// Hex public key of the party that signed it.
    pub party: String,
    pub issued_ms: i64,
    /// JSON of the signed statement.
    pub envelope: String,
    /// Where the statement is in the coordinator's log.
    pub log_index: i64,
}

/// Most consents one read returns.
pub const MAX_CONSENT_PAGE: u32 = 500;

impl Store {
    /// Keeps `row` as its party's consent if it is newer than the one kept; returns whether
    /// it replaced (or was the first). One statement, so two racing writers cannot leave the
    /// older one in place.
    pub async fn put_consent(&self, row: &ConsentRow) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let done = sqlx::query(
            "INSERT INTO trace_consents (party, issued_ms, envelope, log_index) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (party) DO UPDATE SET issued_ms = excluded.issued_ms, \
             envelope = excluded.envelope, log_index = excluded.log_index \
             WHERE trace_consents.issued_ms < excluded.issued_ms",
        )
        .bind(&row.party)
        .bind(row.issued_ms)
        .bind(&row.envelope)
        .bind(row.log_index)
        .execute(pool)
        .await?;
        Ok(done.rows_affected() > 0)
        })
    }

    /// The consent kept for `party` (hex), if any.
    pub async fn consent(&self, party: &str) -> Result<Option<ConsentRow>, StoreError> {
        Ok(self
            .consents(Some(party), None, 1)
            .await?
            .into_iter()
            .next())
    }

    /// Kept consents ordered by party: only `party` if given, else those after `after`, at
    /// most `limit` (up to [`MAX_CONSENT_PAGE`]).
    pub async fn consents(
        &self,
        party: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_CONSENT_PAGE));
        with_pool!(self, pool => {
        let rows = sqlx::query(
            "SELECT party, issued_ms, envelope, log_index FROM trace_consents \
             WHERE ($1 IS NULL OR party = $1) AND ($2 IS NULL OR party > $2) \
             ORDER BY party LIMIT $3",
        )
        .bind(party)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ConsentRow {
                party: r.get(0),
                issued_ms: r.get(1),
                envelope: r.get(2),
                log_index: r.get(3),
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

    #[tokio::test]
    async fn only_a_newer_consent_replaces_the_kept_one() {
        use super::ConsentRow;
        for (db, store) in crate::testing::stores().await.unwrap() {
            let row = |party: &str, ms: i64| ConsentRow {
                party: party.into(),
                issued_ms: ms,
                envelope: format!("{{\"ms\":{ms}}}"),
                log_index: ms,
            };
            assert!(store.put_consent(&row("aa", 20)).await.unwrap(), "{db:?}");
            assert!(!store.put_consent(&row("aa", 20)).await.unwrap());
            assert!(!store.put_consent(&row("aa", 10)).await.unwrap());
            assert_eq!(store.consent("aa").await.unwrap().unwrap().issued_ms, 20);
            assert!(store.put_consent(&row("aa", 30)).await.unwrap());
            assert!(store.put_consent(&row("bb", 5)).await.unwrap());
            assert_eq!(store.consent("aa").await.unwrap().unwrap(), row("aa", 30));
            assert_eq!(store.consent("cc").await.unwrap(), None);
            let all = store.consents(None, None, 10).await.unwrap();
            assert_eq!(all.len(), 2);
            let after = store.consents(None, Some("aa"), 10).await.unwrap();
            assert_eq!(after, [row("bb", 5)]);
        }
    }
}
