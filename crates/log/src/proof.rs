//! Proof verification exactly as RFC 9162 §2.1.3.2 and §2.1.4.2 state it. Pure functions:
//! an auditor needs nothing but the hashes.

use crate::hash::{node_hash, Hash};

/// Why a proof did not verify. Each names the check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// The proof has the wrong number of hashes for this index and size.
    #[error("proof has {got} hashes, {expected} expected")]
    WrongLength { got: usize, expected: usize },
    /// The proof's hashes lead to a different root.
    #[error("the proof leads to root {computed}, not {expected}")]
    RootMismatch { computed: String, expected: String },
    /// Consistency asked from a larger size to a smaller one.
    #[error("first size {size1} is larger than second size {size2}")]
    SizesOutOfOrder { size1: u64, size2: u64 },
}

impl ProofError {
    /// A stable snake_case code for wire errors and verdicts.
    pub fn code(&self) -> &'static str {
        match self {
            ProofError::IndexOutOfRange { .. } => "index_out_of_range",
            ProofError::WrongLength { .. } => "proof_wrong_length",
            ProofError::RootMismatch { .. } => "root_mismatch",
            ProofError::SizesOutOfOrder { .. } => "sizes_out_of_order",
        }
    }
}

fn mismatch(computed: &Hash, expected: &Hash) -> ProofError {
    ProofError::RootMismatch {
        computed: hex::encode(computed),
        expected: hex::encode(expected),
    }
}

/// Number of hashes in the inclusion proof of `index` in a tree of `size`.
fn inclusion_len(index: u64, size: u64) -> usize {
    // Bits where index and size-1 differ, up to the top of size-1, plus the hashes for the
    // right-edge levels above the point they diverge: RFC 9162's loop consumes exactly
    // inner + border hashes.
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = (index >> inner).count_ones();
    (inner + border) as usize
}

/// Right-shifts both node indices together until the first is odd or zero (RFC 9162's step
/// past a right edge, where a level has no right sibling).
fn shift_while_even(mut fnode: u64, mut snode: u64) -> (u64, u64) {
    while fnode & 1 == 0 && fnode != 0 {
        fnode >>= 1;
        snode >>= 1;
    }
    (fnode, snode)
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with root `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected,
        });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected,
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                (fnode, snode) = shift_while_even(fnode, snode);
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected,
        });
    }
    if &r != root {
        return Err(mismatch(&r, root));
    }
    Ok(())
}

/// Verifies that the tree of `size1` leaves with root `root1` is a prefix of the tree of
/// `size2` leaves with root `root2`.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected: 0,
            });
        }
        if root1 != root2 {
            return Err(mismatch(root1, root2));
        }
        return Ok(());
    }
    if size1 == 0 {
        // Every tree extends the empty tree; there is nothing to prove.
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected: 0,
            });
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength {
            got: 0,
            expected: 1,
        });
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(*root1);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected: proof.len() - 1,
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                (fnode, snode) = shift_while_even(fnode, snode);
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected: proof.len() + 1,
        });
    }
    if &fr != root1 {
        return Err(mismatch(&fr, root1));
    }
    if &sr != root2 {
        return Err(mismatch(&sr, root2));
    }
    Ok(())
}
