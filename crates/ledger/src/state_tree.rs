//! The state root: a Merkle commitment over every `(key, value)` of the ledger state.
//!
//! Keys fall into 256 buckets by the first byte of their SHA-256. Each bucket is an RFC 6962
//! tree over its leaves in key order; the root is the RFC 6962 tree over the 256 bucket roots.
//! A write rehashes only its bucket, so a transaction costs about n/256 hashes, not n, and a
//! read can be proven with two short inclusion paths (leaf in bucket, bucket in root).

use std::collections::BTreeMap;

use hallmark_log::{empty_root, leaf_hash, node_hash, Hash};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The number of buckets (a power of two, so the top tree is complete).
const BUCKETS: usize = 256;

/// Leaf hashes by key, bucketed, with each bucket's root cached until it changes.
#[derive(Debug, Clone)]
pub struct StateTree {
    buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    leaves: BTreeMap<String, Hash>,
    root: Option<Hash>,
}

impl Default for StateTree {
    fn default() -> Self {
        Self {
            buckets: vec![Bucket::default(); BUCKETS],
        }
    }
}

/// Which bucket a key lives in.
fn bucket_of(key: &str) -> usize {
    usize::from(Sha256::digest(key.as_bytes())[0])
}

/// The leaf a key and its canonical value encoding hash to: the key's length, the key and the
/// value, so no two different pairs share bytes.
pub fn state_leaf(key: &str, value: &[u8]) -> Hash {
    let mut bytes = Vec::with_capacity(8 + key.len() + value.len());
    bytes.extend_from_slice(&(key.len() as u64).to_be_bytes());
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend_from_slice(value);
    leaf_hash(&bytes)
}

/// RFC 6962 Merkle tree hash over already-hashed leaves.
fn tree_hash(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&tree_hash(&leaves[..k]), &tree_hash(&leaves[k..]))
        }
    }
}

/// The largest power of two below `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The audit path of leaf `index` in the RFC 6962 tree over `leaves`, bottom first.
fn tree_path(leaves: &[Hash], index: usize) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    if index < k {
        let mut p = tree_path(&leaves[..k], index);
        p.push(tree_hash(&leaves[k..]));
        p
    } else {
        let mut p = tree_path(&leaves[k..], index - k);
        p.push(tree_hash(&leaves[..k]));
        p
    }
}

/// Recomputes the root of a tree of `size` leaves from leaf `index`'s hash and its path.
fn root_from_path(index: usize, size: usize, leaf: Hash, path: &[Hash]) -> Option<Hash> {
    if size == 0 || index >= size {
        return None;
    }
    if size == 1 {
        return path.is_empty().then_some(leaf);
    }
    let (last, rest) = path.split_last()?;
    let k = split(size);
    if index < k {
        let left = root_from_path(index, k, leaf, rest)?;
        Some(node_hash(&left, last))
    } else {
        let right = root_from_path(index - k, size - k, leaf, rest)?;
        Some(node_hash(last, &right))
    }
}

/// Proof that a key holds a value (or, with `leaf` absent, that the bucket lacks it) under a
/// state root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StateProof {
    pub key: String,
    /// The bucket the key falls in.
    pub bucket: usize,
    /// Every key in the bucket with its leaf hash (hex), in key order. Buckets are small
    /// (about n/256 keys), so listing them proves presence and absence alike.
    pub bucket_leaves: Vec<(String, String)>,
    /// The bucket root's path to the state root (hex, bottom first).
    pub bucket_path: Vec<String>,
}

/// Why a state proof does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateProofError {
    #[error("the proof is for key {found:?}, not {expected:?}")]
    WrongKey { expected: String, found: String },
    #[error("key {0:?} does not fall in the proof's bucket")]
    WrongBucket(String),
    #[error("the bucket's leaves are not in strict key order")]
    Unordered,
    #[error("a hash in the proof is not 32 bytes of hex")]
    BadHash,
    #[error("the value does not match the leaf the bucket holds for the key")]
    ValueMismatch,
    #[error("the key is absent from its bucket, but a value was claimed")]
    Absent,
    #[error("the key is present in its bucket, but absence was claimed")]
    Present,
    #[error("the proof does not lead to the state root")]
    RootMismatch,
}

fn parse_hash(s: &str) -> Result<Hash, StateProofError> {
    hallmark_log::hash::parse_hex_hash(s).ok_or(StateProofError::BadHash)
}

impl StateProof {
    /// Checks the proof against `root`: with `Some(value)`, that the key holds exactly these
    /// canonical bytes; with `None`, that the key is absent.
    pub fn verify(
        &self,
        root: &Hash,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), StateProofError> {
        if self.key != key {
            return Err(StateProofError::WrongKey {
                expected: key.to_string(),
                found: self.key.clone(),
            });
        }
        if bucket_of(key) != self.bucket {
            return Err(StateProofError::WrongBucket(key.to_string()));
        }
        let mut leaves = Vec::with_capacity(self.bucket_leaves.len());
        let mut found = None;
        for (i, (k, h)) in self.bucket_leaves.iter().enumerate() {
            if i > 0 && self.bucket_leaves[i - 1].0 >= *k {
                return Err(StateProofError::Unordered);
            }
            if bucket_of(k) != self.bucket {
                return Err(StateProofError::WrongBucket(k.clone()));
            }
            let h = parse_hash(h)?;
            if k == key {
                found = Some(h);
            }
            leaves.push(h);
        }
        match (value, found) {
            (Some(v), Some(h)) if state_leaf(key, v) == h => {}
            (Some(_), Some(_)) => return Err(StateProofError::ValueMismatch),
            (Some(_), None) => return Err(StateProofError::Absent),
            (None, Some(_)) => return Err(StateProofError::Present),
            (None, None) => {}
        }
        let path = self
            .bucket_path
            .iter()
            .map(|h| parse_hash(h))
            .collect::<Result<Vec<_>, _>>()?;
        let bucket_root = tree_hash(&leaves);
        match root_from_path(self.bucket, BUCKETS, bucket_root, &path) {
            Some(r) if r == *root => Ok(()),
            _ => Err(StateProofError::RootMismatch),
        }
    }
}

impl StateTree {
    /// Sets a key's leaf (`None` removes the key).
    pub fn set(&mut self, key: &str, leaf: Option<Hash>) {
        let b = &mut self.buckets[bucket_of(key)];
        match leaf {
            Some(h) => {
                b.leaves.insert(key.to_string(), h);
            }
            None => {
                b.leaves.remove(key);
            }
        }
        b.root = None;
    }

    fn bucket_root(b: &mut Bucket) -> Hash {
        if let Some(r) = b.root {
            return r;
        }
        let leaves: Vec<Hash> = b.leaves.values().copied().collect();
        let r = tree_hash(&leaves);
        b.root = Some(r);
        r
    }

    /// The state root.
    pub fn root(&mut self) -> Hash {
        let roots: Vec<Hash> = self.buckets.iter_mut().map(Self::bucket_root).collect();
        tree_hash(&roots)
    }

    /// How many keys the state holds.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.leaves.len()).sum()
    }

    /// Whether the state is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A proof for `key` (present or absent) under the current root.
    pub fn prove(&mut self, key: &str) -> StateProof {
        let bucket = bucket_of(key);
        let roots: Vec<Hash> = self.buckets.iter_mut().map(Self::bucket_root).collect();
        StateProof {
            key: key.to_string(),
            bucket,
            bucket_leaves: self.buckets[bucket]
                .leaves
                .iter()
                .map(|(k, h)| (k.clone(), hex::encode(h)))
                .collect(),
            bucket_path: tree_path(&roots, bucket).iter().map(hex::encode).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_rebuild_the_root_for_every_size_and_index() {
        for n in 1..40usize {
            let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&[i as u8])).collect();
            let root = tree_hash(&leaves);
            for i in 0..n {
                let p = tree_path(&leaves, i);
                assert_eq!(
                    root_from_path(i, n, leaves[i], &p),
                    Some(root),
                    "n={n} i={i}"
                );
            }
        }
    }

    #[test]
    fn proofs_of_presence_and_absence_check_and_lies_do_not() {
        let mut t = StateTree::default();
        for i in 0..1000 {
            let k = format!("account/{i}");
            t.set(&k, Some(state_leaf(&k, format!("{i}").as_bytes())));
        }
        let root = t.root();
        let p = t.prove("account/7");
        p.verify(&root, "account/7", Some(b"7")).unwrap();
        assert_eq!(
            p.verify(&root, "account/7", Some(b"8")),
            Err(StateProofError::ValueMismatch)
        );
        assert_eq!(
            p.verify(&root, "account/7", None),
            Err(StateProofError::Present)
        );
        let absent = t.prove("account/none");
        absent.verify(&root, "account/none", None).unwrap();
        assert_eq!(
            absent.verify(&root, "account/none", Some(b"1")),
            Err(StateProofError::Absent)
        );
        let mut dropped = absent.clone();
        if !dropped.bucket_leaves.is_empty() {
            dropped.bucket_leaves.remove(0);
            assert_eq!(
                dropped.verify(&root, "account/none", None),
                Err(StateProofError::RootMismatch)
            );
        }
        t.set("account/7", Some(state_leaf("account/7", b"9")));
        assert_ne!(t.root(), root);
        t.set("account/7", Some(state_leaf("account/7", b"7")));
        assert_eq!(t.root(), root, "the root is a function of the content");
    }
}
