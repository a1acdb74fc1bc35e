//! Coordinator tables for secure-compute intake: providers and their listings, evidence
//! nonces, and the signed events the coordinator logged about them. Every state change that
//! two requests could race on (taking a nonce, claiming or releasing a listing, replacing an
//! offer) is one conditional `UPDATE`, so the database decides who wins.

use crate::StoreRow;

use crate::{to_i64, to_u64, Store, StoreError};

/// A provider as the coordinator knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeProviderRow {
    pub node_id: String,
    pub hotkey: String,
    /// The provider-signed offer envelope (JSON).
    pub offer: String,
    /// The provider-signed consent envelope (JSON).
    pub consent: String,
    pub offer_sha256: String,
    pub listed: bool,
    pub production: bool,
    pub evidence_log_index: Option<u64>,
    pub listed_until_ms: Option<i64>,
    pub claimed_by: Option<String>,
    pub claim_id: Option<String>,
    pub claimed_at_ms: Option<i64>,
    pub claim_expires_ms: Option<i64>,
    pub last_health_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The attestation job its latest evidence opened.
    pub attestation_job: Option<String>,
    /// `voting`, `approved` or `rejected`.
    pub attestation_state: Option<String>,
    /// The vote certificate that settled that job (JSON).
    pub certificate: Option<String>,
}

/// An evidence nonce and whom it was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeNonceRow {
    pub nonce: String,
    pub node_id: String,
    pub hotkey: String,
    pub issued_ms: i64,
    pub expires_ms: i64,
}

/// What taking a nonce found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonceTake {
    /// The nonce was unused; it is now used.
    Taken(ComputeNonceRow),
    /// The nonce was already used by an earlier submission.
    AlreadyUsed,
    /// The nonce was issued to another hotkey (it stays unused).
    NotYours,
    /// No such nonce was issued.
    Unknown,
}

/// One logged event about a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeEventRow {
    pub id: i64,
    pub node_id: String,
    pub kind: String,
    pub body: String,
    pub log_index: u64,
    pub created_ms: i64,
}

/// A new or replacement offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeOfferRow<'a> {
    pub node_id: &'a str,
    pub hotkey: &'a str,
    pub offer: &'a str,
    pub consent: &'a str,
    pub offer_sha256: &'a str,
}

const PROVIDER_COLUMNS: &str = "node_id, hotkey, offer, consent, offer_sha256, listed, production, evidence_log_index, listed_until_ms, claimed_by, claim_id, claimed_at_ms, claim_expires_ms, last_health_ms, created_ms, updated_ms, attestation_job, attestation_state, certificate";

impl Store {
    /// Records an offer. A node id belongs to the hotkey that first offered it; a replacement
    /// offer from that hotkey unlists the node until new evidence verifies, and is refused
    /// while a claim on the node is live (`Conflict` in both refusals).
    pub async fn put_compute_offer(
        &self,
        row: &ComputeOfferRow<'_>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        let res = sqlx::query(
            "INSERT INTO compute_providers (node_id, hotkey, offer, consent, offer_sha256, created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT(node_id) DO UPDATE SET
                offer = excluded.offer, consent = excluded.consent,
                offer_sha256 = excluded.offer_sha256, listed = 0, production = 0,
                evidence_log_index = NULL, listed_until_ms = NULL,
                claimed_by = NULL, claim_id = NULL, claimed_at_ms = NULL, claim_expires_ms = NULL,
                updated_ms = excluded.updated_ms
             WHERE compute_providers.hotkey = excluded.hotkey
               AND (compute_providers.claimed_by IS NULL OR compute_providers.claim_expires_ms < excluded.updated_ms)",
        )
        .bind(row.node_id)
        .bind(row.hotkey)
        .bind(row.offer)
        .bind(row.consent)
        .bind(row.offer_sha256)
        .bind(now_ms)
        .bind(now_ms)
        .execute(pool)
        .await?;
        if res.rows_affected() == 1 {
            return Ok(());
        }
        match self.compute_provider(row.node_id).await? {
            Some(p) if p.hotkey != row.hotkey => Err(StoreError::Conflict(format!(
                "node id {} belongs to another provider",
                row.node_id
            ))),
            _ => Err(StoreError::Conflict(format!(
                "node {} is claimed; its offer can change once the claim is released or expires",
                row.node_id
            ))),
        }
        })
    }

    /// One provider.
    pub async fn compute_provider(
        &self,
        node_id: &str,
    ) -> Result<Option<ComputeProviderRow>, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query(&format!(
            "SELECT {PROVIDER_COLUMNS} FROM compute_providers WHERE node_id = $1"
        ))
        .bind(node_id)
        .fetch_optional(pool)
        .await?;
        row.map(provider_row).transpose()
        })
    }

    /// Providers, in node id order: all of them, or (with `listed_at`) only those listed with
    /// evidence still current at that time.
    pub async fn compute_providers(
        &self,
        listed_at_ms: Option<i64>,
    ) -> Result<Vec<ComputeProviderRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query(&format!(
            "SELECT {PROVIDER_COLUMNS} FROM compute_providers
             WHERE $1 IS NULL OR (listed = 1 AND listed_until_ms > $1) ORDER BY node_id"
        ))
        .bind(listed_at_ms)
        .fetch_all(pool)
        .await?;
        rows.into_iter().map(provider_row).collect()
        })
    }

    /// Records an evidence nonce issued to `hotkey` for `node_id`.
    pub async fn insert_compute_nonce(&self, n: &ComputeNonceRow) -> Result<(), StoreError> {
        with_pool!(self, pool => {
        let res = sqlx::query(
            "INSERT INTO compute_nonces (nonce, node_id, hotkey, issued_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&n.nonce)
        .bind(&n.node_id)
        .bind(&n.hotkey)
        .bind(n.issued_ms)
        .bind(n.expires_ms)
        .execute(pool)
        .await;
        match res {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict("nonce already issued".into()))
            }
            other => {
                other?;
                Ok(())
            }
        }
        })
    }

    /// Marks a nonce used at `now_ms` by `hotkey`, once: a second take finds it used, and
    /// another hotkey cannot use (or burn) it.
    pub async fn take_compute_nonce(
        &self,
        nonce: &str,
        hotkey: &str,
        now_ms: i64,
    ) -> Result<NonceTake, StoreError> {
        with_pool!(self, pool => {
        let row = sqlx::query(
            "UPDATE compute_nonces SET used_ms = $1 WHERE nonce = $2 AND hotkey = $3 AND used_ms IS NULL
             RETURNING nonce, node_id, hotkey, issued_ms, expires_ms",
        )
        .bind(now_ms)
        .bind(nonce)
        .bind(hotkey)
        .fetch_optional(pool)
        .await?;
        if let Some(r) = row {
            return Ok(NonceTake::Taken(ComputeNonceRow {
                nonce: r.get(0),
                node_id: r.get(1),
                hotkey: r.get(2),
                issued_ms: r.get(3),
                expires_ms: r.get(4),
            }));
        }
        let owner: Option<String> =
            sqlx::query_scalar("SELECT hotkey FROM compute_nonces WHERE nonce = $1")
                .bind(nonce)
                .fetch_optional(pool)
                .await?;
        Ok(match owner {
            None => NonceTake::Unknown,
            Some(o) if o != hotkey => NonceTake::NotYours,
            Some(_) => NonceTake::AlreadyUsed,
        })
        })
    }

    /// Records the attestation job a provider's evidence opened, only if its offer is still
    /// the one the evidence answers; the node is unlisted until the job's certificate lists
    /// it again. Returns whether it applied.
    pub async fn set_compute_attestation(
        &self,
        node_id: &str,
        offer_sha256: &str,
        job_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let res = sqlx::query(
            "UPDATE compute_providers SET attestation_job = $1, attestation_state = 'voting',
                listed = 0, updated_ms = $2
             WHERE node_id = $3 AND offer_sha256 = $4",
        )
        .bind(job_id)
        .bind(now_ms)
        .bind(node_id)
        .bind(offer_sha256)
        .execute(pool)
        .await?;
        Ok(res.rows_affected() == 1)
        })
    }

    /// Providers whose latest attestation job is still being voted on: `(node_id, job_id)`.
    pub async fn compute_attestations_voting(&self) -> Result<Vec<(String, String)>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query(
            "SELECT node_id, attestation_job FROM compute_providers
             WHERE attestation_state = 'voting' AND attestation_job IS NOT NULL ORDER BY node_id",
        )
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Settles a provider's attestation by its job's certificate: lists it (or not) only if
    /// `job_id` is still its latest attestation job. Returns whether it applied.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide_compute_attestation(
        &self,
        node_id: &str,
        job_id: &str,
        approved: bool,
        certificate: &str,
        event_log_index: u64,
        listed_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let res = sqlx::query(
            "UPDATE compute_providers SET attestation_state = $1, listed = $2, certificate = $3,
                evidence_log_index = $4, listed_until_ms = $5, updated_ms = $6
             WHERE node_id = $7 AND attestation_job = $8 AND attestation_state = 'voting'",
        )
        .bind(if approved { "approved" } else { "rejected" })
        .bind(i64::from(approved))
        .bind(certificate)
        .bind(to_i64(event_log_index, "log index")?)
        .bind(listed_until_ms)
        .bind(now_ms)
        .bind(node_id)
        .bind(job_id)
        .execute(pool)
        .await?;
        Ok(res.rows_affected() == 1)
        })
    }

    /// Claims a listed node for `claimant` until `expires_ms`, atomically: it succeeds only if
    /// the node is listed and current, and unclaimed or its claim expired more than `margin_ms`
    /// ago. Returns whether this call won the claim.
    pub async fn claim_compute(
        &self,
        node_id: &str,
        claimant: &str,
        claim_id: &str,
        now_ms: i64,
        expires_ms: i64,
        margin_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let res = sqlx::query(
            "UPDATE compute_providers SET claimed_by = $1, claim_id = $2, claimed_at_ms = $3,
                claim_expires_ms = $4, updated_ms = $5
             WHERE node_id = $6 AND listed = 1 AND listed_until_ms > $7
               AND (claimed_by IS NULL OR claim_expires_ms + $8 < $9)",
        )
        .bind(claimant)
        .bind(claim_id)
        .bind(now_ms)
        .bind(expires_ms)
        .bind(now_ms)
        .bind(node_id)
        .bind(now_ms)
        .bind(margin_ms)
        .bind(now_ms)
        .execute(pool)
        .await?;
        Ok(res.rows_affected() == 1)
        })
    }

    /// Ends the claim `claim_id` held by `claimant`. Returns whether that claim was live (it
    /// may have been reclaimed by someone else after its timeout plus the margin).
    pub async fn release_compute(
        &self,
        node_id: &str,
        claim_id: &str,
        claimant: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let res = sqlx::query(
            "UPDATE compute_providers SET claimed_by = NULL, claim_id = NULL, claimed_at_ms = NULL,
                claim_expires_ms = NULL, updated_ms = $1
             WHERE node_id = $2 AND claim_id = $3 AND claimed_by = $4",
        )
        .bind(now_ms)
        .bind(node_id)
        .bind(claim_id)
        .bind(claimant)
        .execute(pool)
        .await?;
        Ok(res.rows_affected() == 1)
        })
    }

    /// Records a health report; an unhealthy one unlists the node until new evidence.
    /// Returns whether the node is listed (with current evidence) afterwards; `false` for an
    /// unknown node.
    pub async fn record_compute_health(
        &self,
        node_id: &str,
        healthy: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
        let listed: Option<bool> = sqlx::query_scalar(
            "UPDATE compute_providers SET last_health_ms = $1, updated_ms = $2,
                listed = CASE WHEN $3 THEN listed ELSE 0 END
             WHERE node_id = $4
             RETURNING listed = 1 AND COALESCE(listed_until_ms, 0) > $5",
        )
        .bind(now_ms)
        .bind(now_ms)
        .bind(healthy)
        .bind(node_id)
        .bind(now_ms)
        .fetch_optional(pool)
        .await?;
        Ok(listed.unwrap_or(false))
        })
    }

    /// Records a logged event; returns its id.
    pub async fn insert_compute_event(
        &self,
        node_id: &str,
        kind: &str,
        body: &str,
        log_index: u64,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        with_pool!(self, pool => {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO compute_events (node_id, kind, body, log_index, created_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(node_id)
        .bind(kind)
        .bind(body)
        .bind(to_i64(log_index, "log index")?)
        .bind(now_ms)
        .fetch_one(pool)
        .await?;
        Ok(id)
        })
    }

    /// A provider's events, oldest first.
    pub async fn compute_events(&self, node_id: &str) -> Result<Vec<ComputeEventRow>, StoreError> {
        with_pool!(self, pool => {
        let rows = sqlx::query(
            "SELECT id, node_id, kind, body, log_index, created_ms FROM compute_events WHERE node_id = $1 ORDER BY id",
        )
        .bind(node_id)
        .fetch_all(pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ComputeEventRow {
                    id: r.get(0),
                    node_id: r.get(1),
                    kind: r.get(2),
                    body: r.get(3),
                    log_index: to_u64(r.get(4), "log index")?,
                    created_ms: r.get(5),
                })
            })
            .collect()
        })
    }
}

fn provider_row(r: impl StoreRow) -> Result<ComputeProviderRow, StoreError> {
    let idx: Option<i64> = r.get(7);
    Ok(ComputeProviderRow {
        node_id: r.get(0),
        hotkey: r.get(1),
        offer: r.get(2),
        consent: r.get(3),
        offer_sha256: r.get(4),
        listed: r.get::<i64, _>(5) != 0,
        production: r.get::<i64, _>(6) != 0,
        evidence_log_index: idx.map(|i| to_u64(i, "log index")).transpose()?,
        listed_until_ms: r.get(8),
        claimed_by: r.get(9),
        claim_id: r.get(10),
        claimed_at_ms: r.get(11),
        claim_expires_ms: r.get(12),
        last_health_ms: r.get(13),
        created_ms: r.get(14),
        updated_ms: r.get(15),
        attestation_job: r.get(16),
        attestation_state: r.get(17),
        certificate: r.get(18),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer<'a>(node: &'a str, hotkey: &'a str, digest: &'a str) -> ComputeOfferRow<'a> {
        ComputeOfferRow {
            node_id: node,
            hotkey,
            offer: "{}",
            consent: "{}",
            offer_sha256: digest,
        }
    }

    #[tokio::test]
    async fn node_ids_belong_to_their_first_hotkey() {
        for (_db, s) in crate::testing::stores().await.unwrap() {
            s.put_compute_offer(&offer("n1", "alice", "d1"), 1)
                .await
                .unwrap();
            assert!(matches!(
                s.put_compute_offer(&offer("n1", "mallory", "d2"), 2).await,
                Err(StoreError::Conflict(m)) if m.contains("another provider")
            ));
            s.put_compute_offer(&offer("n1", "alice", "d3"), 3)
                .await
                .unwrap();
            let p = s.compute_provider("n1").await.unwrap().unwrap();
            assert_eq!(
                (p.hotkey.as_str(), p.offer_sha256.as_str()),
                ("alice", "d3")
            );
        }
    }

    #[tokio::test]
    async fn nonces_are_taken_once() {
        for (_db, s) in crate::testing::stores().await.unwrap() {
            let n = ComputeNonceRow {
                nonce: "abc".into(),
                node_id: "n1".into(),
                hotkey: "alice".into(),
                issued_ms: 1,
                expires_ms: 100,
            };
            s.insert_compute_nonce(&n).await.unwrap();
            assert!(s.insert_compute_nonce(&n).await.is_err());
            assert_eq!(
                s.take_compute_nonce("abc", "mallory", 5).await.unwrap(),
                NonceTake::NotYours
            );
            assert_eq!(
                s.take_compute_nonce("abc", "alice", 5).await.unwrap(),
                NonceTake::Taken(n)
            );
            assert_eq!(
                s.take_compute_nonce("abc", "alice", 6).await.unwrap(),
                NonceTake::AlreadyUsed
            );
            assert_eq!(
                s.take_compute_nonce("zzz", "alice", 6).await.unwrap(),
                NonceTake::Unknown
            );
        }
    }

    /// Lists `n1` (offer `d1`) through an approved attestation job, valid until `until`.
    async fn list(s: &Store, job: &str, until: i64) {
        assert!(s.set_compute_attestation("n1", "d1", job, 2).await.unwrap());
        assert!(s
            .decide_compute_attestation("n1", job, true, "{}", 0, until, 2)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn listing_follows_the_offer_and_the_job_it_was_checked_against() {
        for (_db, s) in crate::testing::stores().await.unwrap() {
            s.put_compute_offer(&offer("n1", "alice", "d1"), 1)
                .await
                .unwrap();
            assert!(!s
                .set_compute_attestation("n1", "old", "job-1", 2)
                .await
                .unwrap());
            assert!(s
                .set_compute_attestation("n1", "d1", "job-1", 2)
                .await
                .unwrap());
            assert_eq!(
                s.compute_attestations_voting().await.unwrap(),
                vec![("n1".to_string(), "job-1".to_string())]
            );
            // Newer evidence opened another job: the first one's certificate lists nothing.
            assert!(s
                .set_compute_attestation("n1", "d1", "job-2", 2)
                .await
                .unwrap());
            assert!(!s
                .decide_compute_attestation("n1", "job-1", true, "{}", 0, 1000, 2)
                .await
                .unwrap());
            assert!(s
                .decide_compute_attestation("n1", "job-2", true, "{\"c\":1}", 0, 1000, 2)
                .await
                .unwrap());
            assert!(s.compute_attestations_voting().await.unwrap().is_empty());
            let p = s.compute_provider("n1").await.unwrap().unwrap();
            assert_eq!(p.attestation_state.as_deref(), Some("approved"));
            assert_eq!(p.certificate.as_deref(), Some("{\"c\":1}"));
            assert_eq!(s.compute_providers(Some(999)).await.unwrap().len(), 1);
            assert_eq!(
                s.compute_providers(Some(1000)).await.unwrap().len(),
                0,
                "expired listing"
            );
            assert!(s.record_compute_health("n1", true, 3).await.unwrap());
            assert!(
                !s.record_compute_health("n1", true, 1000).await.unwrap(),
                "evidence expired"
            );
            assert!(!s.record_compute_health("n1", false, 3).await.unwrap());
            assert!(!s.record_compute_health("nope", true, 3).await.unwrap());
            assert!(
                s.compute_providers(Some(5)).await.unwrap().is_empty(),
                "unhealthy unlists"
            );
            assert_eq!(
                s.compute_providers(None).await.unwrap().len(),
                1,
                "all, listed or not"
            );
        }
    }

    #[tokio::test]
    async fn claims_are_exclusive_and_reclaimable_only_after_timeout_plus_margin() {
        for (_db, s) in crate::testing::stores().await.unwrap() {
            s.put_compute_offer(&offer("n1", "alice", "d1"), 1)
                .await
                .unwrap();
            assert!(
                !s.claim_compute("n1", "bob", "c0", 10, 110, 50)
                    .await
                    .unwrap(),
                "unlisted"
            );
            list(&s, "job-1", 10_000).await;
            assert!(s
                .claim_compute("n1", "bob", "c1", 10, 110, 50)
                .await
                .unwrap());
            assert!(!s
                .claim_compute("n1", "carol", "c2", 20, 120, 50)
                .await
                .unwrap());
            assert!(
                !s.claim_compute("n1", "carol", "c2", 160, 260, 50)
                    .await
                    .unwrap(),
                "inside margin"
            );
            // An offer change is refused while the claim is live.
            assert!(s
                .put_compute_offer(&offer("n1", "alice", "d2"), 100)
                .await
                .is_err());
            assert!(s
                .claim_compute("n1", "carol", "c3", 161, 261, 50)
                .await
                .unwrap());
            assert!(
                !s.release_compute("n1", "c1", "bob", 170).await.unwrap(),
                "bob's claim was reclaimed"
            );
            assert!(
                !s.release_compute("n1", "c3", "bob", 170).await.unwrap(),
                "only the claimant releases"
            );
            assert!(s.release_compute("n1", "c3", "carol", 170).await.unwrap());
            assert!(s
                .claim_compute("n1", "bob", "c4", 171, 271, 50)
                .await
                .unwrap());
        }
    }

    #[tokio::test]
    async fn concurrent_claims_have_one_winner() {
        for (_db, s) in crate::testing::stores().await.unwrap() {
            s.put_compute_offer(&offer("n1", "alice", "d1"), 1)
                .await
                .unwrap();
            list(&s, "job-1", 10_000).await;
            let mut tasks = Vec::new();
            for i in 0..16 {
                let s = s.clone();
                tasks.push(tokio::spawn(async move {
                    s.claim_compute("n1", &format!("c{i}"), &format!("id{i}"), 10, 100, 5)
                        .await
                        .unwrap()
                }));
            }
            let mut wins = 0;
            for t in tasks {
                wins += usize::from(t.await.unwrap());
            }
            assert_eq!(wins, 1);
        }
    }

    #[tokio::test]
    async fn events_keep_their_log_index() {
        for (_db, s) in crate::testing::stores().await.unwrap() {
            let id = s
                .insert_compute_event("n1", "compute_health", "{}", 7, 1)
                .await
                .unwrap();
            let ev = s.compute_events("n1").await.unwrap();
            assert_eq!(ev.len(), 1);
            assert_eq!((ev[0].id, ev[0].log_index), (id, 7));
        }
    }
}
