//! An in-memory RFC 6962 tree that answers for every size it has ever had.
//!
//! It keeps the hash of every *complete* aligned subtree (level `k`, index `i` covers leaves
//! `[i·2^k, (i+1)·2^k)`), about two hashes per leaf. Any subtree RFC 6962 asks for is either
//! one of those or a right edge assembled from O(log n) of them, so roots, inclusion proofs
//! and consistency proofs for any past size cost O(log n) hashes.

use crate::hash::{empty_root, node_hash, split_point, Hash};

/// Why a tree could not answer a question.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// A size beyond the leaves the tree holds.
    #[error("tree size {requested} is larger than the log ({size} leaves)")]
    SizeBeyondLog { requested: u64, size: u64 },
    /// A leaf index not below the tree size it is proven in.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// A consistency proof asked from a larger size to a smaller one.
    #[error("consistency from size {size1} to smaller size {size2}")]
    SizesOutOfOrder { size1: u64, size2: u64 },
}

/// The Merkle tree over a log's leaf hashes.
#[derive(Debug, Clone, Default)]
pub struct MerkleTree {
    /// `levels[k][i]` = hash of the complete subtree of 2^k leaves starting at `i·2^k`.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree over the given leaf hashes, in order.
    pub fn from_leaf_hashes<I: IntoIterator<Item = Hash>>(leaves: I) -> Self {
        let mut tree = Self::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf hash and returns its index.
    pub fn push(&mut self, leaf: Hash) -> u64 {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let index = self.levels[0].len() as u64 - 1;
        // Complete every subtree this leaf closes: while the level has an even count, its last
        // two entries are siblings whose parent is now complete.
        let mut level = 0;
        while self.levels[level].len().is_multiple_of(2) {
            let n = self.levels[level].len();
            let parent = node_hash(&self.levels[level][n - 2], &self.levels[level][n - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
        index
    }

    /// The leaf hash at `index`, if present.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.subtree(0, self.size())
    }

    /// The root the tree had when it held `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, TreeError> {
        self.check_size(size)?;
        Ok(self.subtree(0, size))
    }

    /// The audit path of leaf `index` in the tree of `size` leaves, bottom-up (RFC 6962 PATH).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(size)?;
        if index >= size {
            return Err(TreeError::IndexOutOfRange { index, size });
        }
        let (mut start, mut end) = (0u64, size);
        let mut path = Vec::new();
        while end - start > 1 {
            let k = split_point(end - start);
            if index < start + k {
                path.push(self.subtree(start + k, end));
                end = start + k;
            } else {
                path.push(self.subtree(start, start + k));
                start += k;
            }
        }
        path.reverse();
        Ok(path)
    }

    /// The proof that the tree of `size1` leaves is a prefix of the tree of `size2` leaves
    /// (RFC 6962 PROOF). Empty when `size1` is 0 or equal to `size2`.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(size2)?;
        if size1 > size2 {
            return Err(TreeError::SizesOutOfOrder { size1, size2 });
        }
        let mut proof = Vec::new();
        if size1 == 0 || size1 == size2 {
            return Ok(proof);
        }
        let (mut start, mut end, mut m, mut whole) = (0u64, size2, size1, true);
        loop {
            let n = end - start;
            if m == n {
                if !whole {
                    proof.push(self.subtree(start, end));
                }
                break;
            }
            let k = split_point(n);
            if m <= k {
                proof.push(self.subtree(start + k, end));
                end = start + k;
            } else {
                proof.push(self.subtree(start, start + k));
                start += k;
                m -= k;
                whole = false;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    fn check_size(&self, requested: u64) -> Result<(), TreeError> {
        let size = self.size();
        if requested > size {
            return Err(TreeError::SizeBeyondLog { requested, size });
        }
        Ok(())
    }

    /// MTH(D[start..end]); callers guarantee `end ≤ size`.
    fn subtree(&self, start: u64, end: u64) -> Hash {
        let n = end - start;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let level = n.trailing_zeros() as usize;
            // Invariant: a complete aligned subtree inside the tree is always stored.
            return self.levels[level][(start >> level) as usize];
        }
        let k = split_point(n);
        node_hash(
            &self.subtree(start, start + k),
            &self.subtree(start + k, end),
        )
    }
}
