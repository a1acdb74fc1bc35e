//! The node's transparency log: leaves in SQLite, the Merkle tree over them in memory.
//!
//! Leaves are written in one transaction per batch and pushed into the in-memory
//! [`MerkleTree`] only after that transaction committed, under one lock, so leaf indices
//! and the tree never disagree with the database. At open the tree is rebuilt from the stored
//! leaf hashes (about two hashes per leaf of memory); a gap in the indices or a stored leaf
//! hash that does not match its data is refused as corruption.

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

/// A persistent RFC 6962 log over one node's store.
#[derive(Debug, Clone)]
pub struct TransparencyLog {
    store: Store,
    tree: Arc<Mutex<MerkleTree>>,
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
        Ok(Self {
            store: store.clone(),
            tree: Arc::new(Mutex::new(tree)),
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
        let now = hallmark_core::time::now_unix_ms();
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
        let cp = Checkpoint {
            origin: origin.to_string(),
            size,
            root: tree.root(),
        };
        let signed = cp
            .sign(origin, key)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
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
