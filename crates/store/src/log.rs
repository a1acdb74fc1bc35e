//! The node's transparency log: leaves in SQLite, the Merkle tree over them in memory.
//!
//! Leaves are written in one transaction per batch and pushed into the in-memory
//! [`MerkleTree`] only after that transaction committed, under one lock, so leaf indices
//! and the tree never disagree with the database. At open the tree is rebuilt from the stored
//! leaf hashes (about two hashes per leaf of memory); a gap in the indices or a stored leaf
//! hash that does not match its data is refused as corruption.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use hallmark_log::{
    leaf_hash, Checkpoint, Hash, LogProof, MerkleTree, SignedCheckpoint, TreeError,
};
use sqlx::QueryBuilder;

use crate::StoreRow;
use tokio::sync::Mutex;

use crate::{to_i64, to_u64, Store, StoreError};

/// Rows per INSERT statement (4 parameters each, well under SQLite's variable limit).
const ROWS_PER_STATEMENT: usize = 1000;

/// One stored leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub index: u64,
    pub kind: String,
    pub data: Vec<u8>,
    pub appended_ms: i64,
}

/// Most leaves one feed page returns.
pub const MAX_FEED_PAGE: u32 = 500;

/// A position in the feed: after the leaf (`ms`, `index`), or with no index, from the first
/// leaf appended at or after `ms`. Leaves are ordered by (appended_ms, index), which is index
/// order because the log never lets appended_ms go backwards; indices are assigned in commit
/// order under one lock, so a cursor never skips a leaf committed after it was handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeedCursor {
    pub ms: i64,
    pub index: Option<u64>,
}

impl std::fmt::Display for FeedCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}:{i}", self.ms),
            None => write!(f, "{}", self.ms),
        }
    }
}

impl std::str::FromStr for FeedCursor {
    type Err = String;
    /// `MS:INDEX` (a cursor the feed handed out) or `MS` (from a time on).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("cursor {s:?} is not MS:INDEX or MS (unix milliseconds)");
        let (ms, index) = match s.split_once(':') {
            Some((ms, i)) => (ms, Some(i.parse::<u64>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let ms = ms.parse::<i64>().map_err(|_| bad())?;
        if ms < 0 || index.is_some_and(|i| i > i64::MAX as u64) {
            return Err(bad());
        }
        Ok(Self { ms, index })
    }
}

/// A persistent RFC 6962 log over one node's store.
#[derive(Debug, Clone)]
pub struct TransparencyLog {
    store: Store,
    tree: Arc<Mutex<MerkleTree>>,
    /// The last leaf's appended_ms: the next is never earlier (a clock stepping back included).
    last_ms: Arc<AtomicI64>,
}

impl From<TreeError> for StoreError {
    fn from(e: TreeError) -> Self {
        StoreError::Conflict(e.to_string())
    }
}

impl TransparencyLog {
    /// Opens the log in `store`, rebuilding the tree from the stored leaves.
    pub async fn open(store: &Store) -> Result<Self, StoreError> {
        with_pool!(store, pool => {
        let rows = sqlx::query("SELECT idx, leaf_hash FROM log_leaves ORDER BY idx")
            .fetch_all(pool)
            .await?;
        let mut tree = MerkleTree::new();
        for (expected, row) in rows.into_iter().enumerate() {
            let idx: i64 = row.get(0);
            if idx != expected as i64 {
                return Err(StoreError::Corrupt(format!(
                    "log leaf {expected} is missing (next stored index is {idx})"
                )));
            }
            let hash: Vec<u8> = row.get(1);
            let hash: Hash = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("log leaf {idx} hash is not 32 bytes")))?;
            tree.push(hash);
        }
        let last_ms: Option<i64> = sqlx::query_scalar("SELECT MAX(appended_ms) FROM log_leaves")
            .fetch_one(pool)
            .await?;
        Ok(Self {
            store: store.clone(),
            tree: Arc::new(Mutex::new(tree)),
            last_ms: Arc::new(AtomicI64::new(last_ms.unwrap_or(0))),
        })
        })
    }

    /// Appends one leaf; returns its index and the tree size right after it.
    pub async fn append(&self, kind: &str, data: &[u8]) -> Result<(u64, u64), StoreError> {
        let first = self.append_batch(&[(kind, data)]).await?;
        Ok((first, first + 1))
    }

    /// Appends leaves in one transaction; returns the index of the first.
    pub async fn append_batch(&self, leaves: &[(&str, &[u8])]) -> Result<u64, StoreError> {
        with_pool!(self.store, pool => {
        let mut tree = self.tree.lock().await;
        let first = tree.size();
        let hashes: Vec<Hash> = leaves.iter().map(|(_, d)| leaf_hash(d)).collect();
        // Under the tree lock: leaves are stamped in index order, never going backwards.
        let now = hallmark_core::time::now_unix_ms().max(self.last_ms.load(Ordering::Acquire));
        // Every index of the batch fits the database's integer range iff the last one does.
        let base = to_i64(first + leaves.len() as u64, "log index")?;
        let base = base - leaves.len() as i64;
        let mut tx = pool.begin().await?;
        for (chunk_no, chunk) in leaves.chunks(ROWS_PER_STATEMENT).enumerate() {
            let offset = chunk_no * ROWS_PER_STATEMENT;
            let mut qb = QueryBuilder::new(
                "INSERT INTO log_leaves (idx, kind, data, leaf_hash, appended_ms) ",
            );
            qb.push_values(chunk.iter().enumerate(), |mut b, (i, (kind, data))| {
                b.push_bind(base + (offset + i) as i64)
                    .push_bind(*kind)
                    .push_bind(*data)
                    .push_bind(hashes[offset + i].to_vec())
                    .push_bind(now);
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.last_ms.store(now, Ordering::Release);
        for h in hashes {
            tree.push(h);
        }
        Ok(first)
        })
    }

    /// Appends one statement, signs a checkpoint that covers it and returns the proof of its
    /// inclusion under that checkpoint: everything a receipt needs.
    pub async fn append_and_prove(
        &self,
        kind: &str,
        data: &[u8],
        origin: &str,
        key: &hallmark_core::Keypair,
    ) -> Result<LogProof, StoreError> {
        let (index, _) = self.append(kind, data).await?;
        let note = self.checkpoint(origin, key).await?;
        let cp = note
            .checkpoint_unverified()
            .map_err(|e| StoreError::Corrupt(format!("own checkpoint: {e}")))?;
        let proof = self.inclusion_proof(index, cp.size).await?;
        Ok(LogProof {
            log_index: index,
            tree_size: cp.size,
            inclusion_proof: proof.iter().map(hex::encode).collect(),
            checkpoint: note.note,
        })
    }

    /// Number of leaves.
    pub async fn size(&self) -> u64 {
        self.tree.lock().await.size()
    }

    /// The root of the whole log as it is now.
    pub async fn root(&self) -> Hash {
        self.tree.lock().await.root()
    }

    /// The root at `size`.
    pub async fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        Ok(self.tree.lock().await.root_at(size)?)
    }

    /// Inclusion proof of leaf `index` in the tree of `size`.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        Ok(self.tree.lock().await.inclusion_proof(index, size)?)
    }

    /// Consistency proof from `size1` to `size2`.
    pub async fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, StoreError> {
        Ok(self.tree.lock().await.consistency_proof(size1, size2)?)
    }

    /// One stored leaf.
    pub async fn entry(&self, index: u64) -> Result<Option<LogEntry>, StoreError> {
        with_pool!(self.store, pool => {
        let row = sqlx::query("SELECT idx, kind, data, appended_ms FROM log_leaves WHERE idx = $1")
            .bind(to_i64(index, "log index")?)
            .fetch_optional(pool)
            .await?;
        row.map(|r| {
            Ok(LogEntry {
                index: to_u64(r.get(0), "log index")?,
                kind: r.get(1),
                data: r.get(2),
                appended_ms: r.get(3),
            })
        })
        .transpose()
        })
    }

    /// One page of the feed: up to `limit` (at most [`MAX_FEED_PAGE`]) leaves after `after`,
    /// oldest first, only among the first `below` leaves (a size the caller can prove
    /// against). Optionally only leaves of one `kind`.
    pub async fn feed_page(
        &self,
        after: FeedCursor,
        below: u64,
        kind: Option<&str>,
        limit: u32,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_FEED_PAGE));
        // No index: from the first leaf at `ms` on (index > -1).
        let after_index = match after.index {
            Some(i) => to_i64(i, "feed cursor index")?,
            None => -1,
        };
        let below = to_i64(below, "log size")?;
        with_pool!(self.store, pool => {
        let rows = sqlx::query(
            "SELECT idx, kind, data, appended_ms FROM log_leaves \
             WHERE idx < $1 AND (appended_ms > $2 OR (appended_ms = $2 AND idx > $3)) \
             AND ($4 IS NULL OR kind = $4) \
             ORDER BY appended_ms, idx LIMIT $5",
        )
        .bind(below)
        .bind(after.ms)
        .bind(after_index)
        .bind(kind)
        .bind(limit)
        .fetch_all(pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(LogEntry {
                    index: to_u64(r.get(0), "log index")?,
                    kind: r.get(1),
                    data: r.get(2),
                    appended_ms: r.get(3),
                })
            })
            .collect()
        })
    }

    /// Signs a checkpoint of the current tree with `key` under `origin`, stores it and
    /// returns it. The same size is signed once: a second call returns the stored note.
    pub async fn checkpoint(
        &self,
        origin: &str,
        key: &hallmark_core::Keypair,
    ) -> Result<SignedCheckpoint, StoreError> {
        with_pool!(self.store, pool => {
        let tree = self.tree.lock().await;
        let size = tree.size();
        if let Some(note) = self.checkpoint_at(size).await? {
            return Ok(note);
        }
        let signed = sign_head(&tree, origin, key)?;
        sqlx::query(
            "INSERT INTO log_checkpoints (size, note) VALUES ($1, $2) ON CONFLICT(size) DO NOTHING",
        )
        .bind(to_i64(size, "tree size")?)
        .bind(&signed.note)
        .execute(pool)
        .await?;
        Ok(self.checkpoint_at(size).await?.unwrap_or(signed))
        })
    }

    /// A signed checkpoint of the current tree without writing anything: the stored one for
    /// this size if there is one, else a fresh signature (Ed25519 is deterministic, so the
    /// same note every time). For reads that must not write, like the feed.
    pub async fn signed_head(
        &self,
        origin: &str,
        key: &hallmark_core::Keypair,
    ) -> Result<SignedCheckpoint, StoreError> {
        let tree = self.tree.lock().await;
        match self.checkpoint_at(tree.size()).await? {
            Some(note) => Ok(note),
            None => sign_head(&tree, origin, key),
        }
    }

    /// The stored checkpoint for `size`, if one was signed.
    pub async fn checkpoint_at(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
        with_pool!(self.store, pool => {
        let note: Option<String> =
            sqlx::query_scalar("SELECT note FROM log_checkpoints WHERE size = $1")
                .bind(to_i64(size, "tree size")?)
                .fetch_optional(pool)
                .await?;
        Ok(note.map(|note| SignedCheckpoint { note }))
        })
    }

    /// The latest signed checkpoint, if any.
    pub async fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        with_pool!(self.store, pool => {
        let note: Option<String> =
            sqlx::query_scalar("SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
                .fetch_optional(pool)
                .await?;
        Ok(note.map(|note| SignedCheckpoint { note }))
        })
    }
}

/// A checkpoint of `tree` as it stands, signed by `key` under `origin`.
fn sign_head(
    tree: &MerkleTree,
    origin: &str,
    key: &hallmark_core::Keypair,
) -> Result<SignedCheckpoint, StoreError> {
    Checkpoint {
        origin: origin.to_string(),
        size: tree.size(),
        root: tree.root(),
    }
    .sign(origin, key)
    .map_err(|e| StoreError::Conflict(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_log::{verify_consistency, verify_inclusion, NoteVerifierKey};

    #[tokio::test]
    async fn survives_reopen_and_proves_every_leaf() {
        for db in crate::testing::TestDb::all().unwrap() {
            let key = hallmark_core::Keypair::from_seed(&[9; 32]);
            let (root5, cp) = {
                let store = db.open().await.unwrap();
                let log = TransparencyLog::open(&store).await.unwrap();
                assert_eq!(log.append("a", b"zero").await.unwrap(), (0, 1));
                let batch: Vec<Vec<u8>> = (1..5u8).map(|i| vec![i; i as usize]).collect();
                let leaves: Vec<(&str, &[u8])> =
                    batch.iter().map(|d| ("b", d.as_slice())).collect();
                assert_eq!(log.append_batch(&leaves).await.unwrap(), 1);
                let cp = log.checkpoint("hallmark.test/node", &key).await.unwrap();
                store.close().await;
                (log.root_at(5).await.unwrap(), cp)
            };
            let store = db.open().await.unwrap();
            let log = TransparencyLog::open(&store).await.unwrap();
            assert_eq!(log.size().await, 5);
            assert_eq!(log.root_at(5).await.unwrap(), root5);
            let vkey = NoteVerifierKey::new("hallmark.test/node", key.public()).unwrap();
            let checkpoint = cp.verify(&vkey).unwrap();
            assert_eq!((checkpoint.size, checkpoint.root), (5, root5));
            assert_eq!(log.latest_checkpoint().await.unwrap(), Some(cp));
            for i in 0..5 {
                let e = log.entry(i).await.unwrap().unwrap();
                let proof = log.inclusion_proof(i, 5).await.unwrap();
                verify_inclusion(&leaf_hash(&e.data), i, 5, &proof, &root5).unwrap();
            }
            log.append("c", b"more").await.unwrap();
            let proof = log.consistency_proof(5, 6).await.unwrap();
            verify_consistency(5, 6, &root5, &log.root_at(6).await.unwrap(), &proof).unwrap();
            assert!(log.inclusion_proof(6, 6).await.is_err());
            assert!(log.entry(99).await.unwrap().is_none());
        }
    }

    /// Four writers append while a reader pages through the feed with small pages, each
    /// bounded by the log size it read first: when the writers are done and the reader has
    /// caught up, it has seen every leaf exactly once, in index order, with timestamps that
    /// never go backwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_feed_misses_nothing_while_writers_append() {
        for (db, store) in crate::testing::stores().await.unwrap() {
            let log = TransparencyLog::open(&store).await.unwrap();
            let writers: Vec<_> = (0..4u8)
                .map(|w| {
                    let log = log.clone();
                    tokio::spawn(async move {
                        for i in 0..60u8 {
                            if i % 3 == 0 {
                                let batch = [vec![w, i, 0], vec![w, i, 1]];
                                let leaves: Vec<(&str, &[u8])> =
                                    batch.iter().map(|d| ("batch", d.as_slice())).collect();
                                log.append_batch(&leaves).await.unwrap();
                            } else {
                                log.append(if i % 2 == 0 { "even" } else { "odd" }, &[w, i])
                                    .await
                                    .unwrap();
                            }
                        }
                    })
                })
                .collect();
            let mut seen: Vec<LogEntry> = Vec::new();
            let mut cursor = FeedCursor::default();
            let total = 4 * (20 * 2 + 40) as u64;
            loop {
                let size = log.size().await;
                let page = log.feed_page(cursor, size, None, 7).await.unwrap();
                if let Some(last) = page.last() {
                    cursor = FeedCursor {
                        ms: last.appended_ms,
                        index: Some(last.index),
                    };
                }
                let done = page.is_empty() && size == total;
                seen.extend(page);
                if done {
                    break;
                }
                tokio::task::yield_now().await;
            }
            for w in writers {
                w.await.unwrap();
            }
            let indices: Vec<u64> = seen.iter().map(|e| e.index).collect();
            assert_eq!(indices, (0..total).collect::<Vec<_>>(), "{db:?}");
            assert!(
                seen.windows(2)
                    .all(|p| p[0].appended_ms <= p[1].appended_ms),
                "{db:?}"
            );
            // A time cursor starts at the first leaf stamped at or after it; a kind filter
            // keeps only that kind.
            let mid = &seen[seen.len() / 2];
            let from = log
                .feed_page(
                    FeedCursor {
                        ms: mid.appended_ms,
                        index: None,
                    },
                    total,
                    None,
                    MAX_FEED_PAGE,
                )
                .await
                .unwrap();
            let first = from.first().unwrap();
            assert!(first.index <= mid.index && first.appended_ms == mid.appended_ms);
            let odd = log
                .feed_page(FeedCursor::default(), total, Some("odd"), MAX_FEED_PAGE)
                .await
                .unwrap();
            assert_eq!(odd.len(), 4 * 20, "{db:?}");
            assert!(odd.iter().all(|e| e.kind == "odd"));
            // Nothing past the bound the caller can prove against.
            let bounded = log
                .feed_page(FeedCursor::default(), 5, None, MAX_FEED_PAGE)
                .await
                .unwrap();
            assert_eq!(bounded.len(), 5);
        }
    }

    #[test]
    fn feed_cursors_parse_strictly() {
        assert_eq!(
            "1700000000000:42".parse::<FeedCursor>(),
            Ok(FeedCursor {
                ms: 1_700_000_000_000,
                index: Some(42)
            })
        );
        assert_eq!(
            "5".parse::<FeedCursor>().map(|c| c.to_string()),
            Ok("5".into())
        );
        for bad in [
            "",
            "x",
            "1:",
            ":1",
            "-1",
            "1:-2",
            "1:2:3",
            "1:99999999999999999999",
        ] {
            assert!(bad.parse::<FeedCursor>().is_err(), "{bad:?}");
        }
    }

    /// A leaf stamped by a clock that was ahead (or has since stepped back): the next leaf,
    /// even after a reopen, is never stamped earlier, so feed order stays index order.
    #[tokio::test]
    async fn leaf_stamps_never_go_backwards() {
        for (db, store) in crate::testing::stores().await.unwrap() {
            let log = TransparencyLog::open(&store).await.unwrap();
            log.append("a", b"1").await.unwrap();
            let ahead = hallmark_core::time::now_unix_ms() + 3_600_000;
            with_pool!(store, pool => {
                sqlx::query("UPDATE log_leaves SET appended_ms = $1 WHERE idx = 0")
                    .bind(ahead)
                    .execute(pool)
                    .await
                    .unwrap();
            });
            let log = TransparencyLog::open(&store).await.unwrap();
            log.append("a", b"2").await.unwrap();
            log.append("a", b"3").await.unwrap();
            let stamps: Vec<i64> = log
                .feed_page(FeedCursor::default(), 3, None, 10)
                .await
                .unwrap()
                .iter()
                .map(|e| e.appended_ms)
                .collect();
            assert_eq!(stamps, [ahead, ahead, ahead], "{db:?}");
            // A cursor at the first leaf still finds the two after it.
            let after = log
                .feed_page(
                    FeedCursor {
                        ms: ahead,
                        index: Some(0),
                    },
                    3,
                    None,
                    10,
                )
                .await
                .unwrap();
            assert_eq!(after.iter().map(|e| e.index).collect::<Vec<_>>(), [1, 2]);
        }
    }

    #[tokio::test]
    async fn a_gap_in_the_leaves_is_corruption() {
        for (_db, store) in crate::testing::stores().await.unwrap() {
            let log = TransparencyLog::open(&store).await.unwrap();
            log.append_batch(&[("a", b"1"), ("a", b"2")]).await.unwrap();
            with_pool!(store, pool => {
                sqlx::query("DELETE FROM log_leaves WHERE idx = 0")
                    .execute(pool)
                    .await
                    .unwrap();
            });
            assert!(matches!(
                TransparencyLog::open(&store).await,
                Err(StoreError::Corrupt(_))
            ));
        }
    }
}
