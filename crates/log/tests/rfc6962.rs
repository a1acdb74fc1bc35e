//! The RFC 6962 reference vectors (as published by the Certificate Transparency projects) and
//! property tests over every size, index and pair of sizes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hallmark_log::hash::parse_hex_hash;
use hallmark_log::{empty_root, leaf_hash, verify_consistency, verify_inclusion, Hash, MerkleTree};
use proptest::prelude::*;

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn h(s: &str) -> Hash {
    parse_hex_hash(s).expect("vector hash")
}

fn reference_tree() -> MerkleTree {
    MerkleTree::from_leaf_hashes(LEAVES.iter().map(|l| leaf_hash(&hex::decode(l).unwrap())))
}

#[test]
fn roots_match_rfc6962_for_every_size() {
    let tree = reference_tree();
    assert_eq!(empty_root(), h(ROOTS[0]));
    for (size, want) in ROOTS.iter().enumerate() {
        assert_eq!(tree.root_at(size as u64).unwrap(), h(want), "size {size}");
    }
}

#[test]
fn inclusion_proofs_match_the_reference() {
    let tree = reference_tree();
    // (index, size, path) with 0-based indices.
    let cases: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, path) in cases {
        let want: Vec<Hash> = path.iter().map(|p| h(p)).collect();
        assert_eq!(
            tree.inclusion_proof(index, size).unwrap(),
            want,
            "{index}@{size}"
        );
        let leaf = tree.leaf(index).unwrap();
        verify_inclusion(&leaf, index, size, &want, &h(ROOTS[size as usize])).unwrap();
    }
}

#[test]
fn consistency_proofs_match_the_reference() {
    let tree = reference_tree();
    let cases: [(u64, u64, &[&str]); 4] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (m, n, path) in cases {
        let want: Vec<Hash> = path.iter().map(|p| h(p)).collect();
        assert_eq!(tree.consistency_proof(m, n).unwrap(), want, "{m}->{n}");
        verify_consistency(m, n, &h(ROOTS[m as usize]), &h(ROOTS[n as usize]), &want).unwrap();
    }
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let tree = reference_tree();
    assert!(tree.inclusion_proof(8, 8).is_err());
    assert!(tree.inclusion_proof(0, 9).is_err());
    assert!(tree.consistency_proof(5, 3).is_err());
    assert!(tree.root_at(9).is_err());
    let root = tree.root();
    let leaf = tree.leaf(0).unwrap();
    assert_eq!(
        verify_inclusion(&leaf, 8, 8, &[], &root)
            .unwrap_err()
            .code(),
        "index_out_of_range"
    );
    assert_eq!(
        verify_inclusion(&leaf, 0, 0, &[], &root)
            .unwrap_err()
            .code(),
        "index_out_of_range"
    );
    assert_eq!(
        verify_consistency(5, 3, &root, &root, &[])
            .unwrap_err()
            .code(),
        "sizes_out_of_order"
    );
    assert_eq!(
        verify_consistency(3, 5, &root, &root, &[])
            .unwrap_err()
            .code(),
        "proof_wrong_length"
    );
}

fn tree_of(n: u64) -> MerkleTree {
    MerkleTree::from_leaf_hashes((0..n).map(|i| leaf_hash(&i.to_le_bytes())))
}

/// Every way of altering a proof that must be caught: flip a bit in one hash, drop one, add
/// one, swap two.
fn alterations(proof: &[Hash], pick: usize, bit: u8) -> Vec<Vec<Hash>> {
    let mut out = Vec::new();
    if !proof.is_empty() {
        let i = pick % proof.len();
        let mut flipped = proof.to_vec();
        flipped[i][(bit as usize) % 32] ^= 1 << (bit % 8);
        out.push(flipped);
        let mut dropped = proof.to_vec();
        dropped.remove(i);
        out.push(dropped);
    }
    let mut extended = proof.to_vec();
    extended.push([bit; 32]);
    out.push(extended);
    if proof.len() >= 2 {
        let mut swapped = proof.to_vec();
        let i = pick % (proof.len() - 1);
        if swapped[i] != swapped[i + 1] {
            swapped.swap(i, i + 1);
            out.push(swapped);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_inclusion_proof_verifies_and_altered_ones_fail(n in 1u64..300, pick in any::<usize>(), bit in any::<u8>()) {
        let tree = tree_of(n);
        let root = tree.root();
        for index in 0..n {
            let leaf = tree.leaf(index).unwrap();
            let proof = tree.inclusion_proof(index, n).unwrap();
            prop_assert!(verify_inclusion(&leaf, index, n, &proof, &root).is_ok());
            // Another index or size must not verify with this proof.
            if n > 1 {
                prop_assert!(verify_inclusion(&leaf, (index + 1) % n, n, &proof, &root).is_err());
            }
            // (A different size with the same proof shape can verify: in RFC 9162 the size only
            // shapes the path, and the checkpoint is what binds root and size.)
            let mut wrong_leaf = leaf;
            wrong_leaf[0] ^= 1;
            prop_assert!(verify_inclusion(&wrong_leaf, index, n, &proof, &root).is_err());
            for altered in alterations(&proof, pick.wrapping_add(index as usize), bit) {
                prop_assert!(verify_inclusion(&leaf, index, n, &altered, &root).is_err());
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_altered_ones_fail(n in 1u64..120, pick in any::<usize>(), bit in any::<u8>()) {
        let tree = tree_of(n);
        let root2 = tree.root();
        for m in 0..=n {
            let root1 = tree.root_at(m).unwrap();
            let proof = tree.consistency_proof(m, n).unwrap();
            prop_assert!(verify_consistency(m, n, &root1, &root2, &proof).is_ok(), "{} -> {}", m, n);
            if m == 0 {
                continue;
            }
            for altered in alterations(&proof, pick.wrapping_add(m as usize), bit) {
                prop_assert!(verify_consistency(m, n, &root1, &root2, &altered).is_err(), "{} -> {}", m, n);
            }
            let mut wrong = root1;
            wrong[3] ^= 0x10;
            prop_assert!(verify_consistency(m, n, &wrong, &root2, &proof).is_err());
            prop_assert!(verify_consistency(m, n, &root1, &wrong, &proof).is_err());
            if m < n {
                prop_assert!(verify_consistency(m + 1, n, &root1, &root2, &proof).is_err());
            }
        }
    }

    #[test]
    fn roots_equal_a_naive_recursive_definition(n in 0u64..200) {
        fn mth(leaves: &[Hash]) -> Hash {
            match leaves.len() {
                0 => empty_root(),
                1 => leaves[0],
                len => {
                    let k = 1usize << (usize::BITS - 1 - (len - 1).leading_zeros());
                    hallmark_log::node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
                }
            }
        }
        let tree = tree_of(n);
        let leaves: Vec<Hash> = (0..n).map(|i| tree.leaf(i).unwrap()).collect();
        for m in 0..=n {
            prop_assert_eq!(tree.root_at(m).unwrap(), mth(&leaves[..m as usize]));
        }
    }
}

mod receipts {
    use hallmark_core::{Keypair, Signed, SignedPayload};
    use hallmark_log::{
        verify_receipt, Checkpoint, LogProof, MerkleTree, NoteVerifierKey, Receipt,
    };
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Note {
        text: String,
    }
    impl SignedPayload for Note {
        const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.test-note+json";
    }

    fn receipt(key: &Keypair) -> Receipt {
        let mut tree = MerkleTree::new();
        let mut target = None;
        for i in 0..11 {
            let s = Signed::sign(
                &Note {
                    text: format!("n{i}"),
                },
                key,
            )
            .unwrap();
            let bytes = s.envelope().canonical_bytes().unwrap();
            tree.push(hallmark_log::leaf_hash(&bytes));
            if i == 6 {
                target = Some(s.envelope().clone());
            }
        }
        let cp = Checkpoint {
            origin: "hallmark.test/v".into(),
            size: 11,
            root: tree.root(),
        };
        Receipt {
            statement: target.unwrap(),
            log: LogProof {
                log_index: 6,
                tree_size: 11,
                inclusion_proof: tree
                    .inclusion_proof(6, 11)
                    .unwrap()
                    .iter()
                    .map(hex::encode)
                    .collect(),
                checkpoint: cp.sign("hallmark.test/v", key).unwrap().note,
            },
        }
    }

    #[test]
    fn a_receipt_verifies_and_each_tampering_names_its_check() {
        let key = Keypair::from_seed(&[5; 32]);
        let r = receipt(&key);
        let v = verify_receipt(&r, None);
        assert!(v.accepted, "{v:?}");
        let pinned = NoteVerifierKey::new("hallmark.test/v", key.public()).unwrap();
        assert!(verify_receipt(&r, Some(&pinned)).accepted);
        let other =
            NoteVerifierKey::new("hallmark.test/v", Keypair::from_seed(&[6; 32]).public()).unwrap();
        assert_eq!(
            verify_receipt(&r, Some(&other)).rejection.as_deref(),
            Some("checkpoint_signature")
        );

        let mut t = r.clone();
        t.statement.payload_type = "application/vnd.hallmark.other+json".into();
        assert_eq!(
            verify_receipt(&t, None).rejection.as_deref(),
            Some("statement_signature")
        );
        let mut t = r.clone();
        t.log.log_index = 5;
        assert_eq!(
            verify_receipt(&t, None).rejection.as_deref(),
            Some("inclusion_proof")
        );
        let mut t = r.clone();
        t.log.inclusion_proof[1] = "00".repeat(32);
        assert_eq!(
            verify_receipt(&t, None).rejection.as_deref(),
            Some("inclusion_proof")
        );
        let mut t = r.clone();
        t.log.inclusion_proof[0] = "zz".into();
        assert_eq!(
            verify_receipt(&t, None).rejection.as_deref(),
            Some("inclusion_proof")
        );
        let mut t = r.clone();
        t.log.tree_size = 12;
        assert_eq!(
            verify_receipt(&t, None).rejection.as_deref(),
            Some("checkpoint_size")
        );
        let mut t = r.clone();
        t.log.checkpoint = t.log.checkpoint.replace("\n11\n", "\n12\n");
        assert_eq!(
            verify_receipt(&t, None).rejection.as_deref(),
            Some("checkpoint_signature")
        );
        // A statement signed by someone else than the log's key: its checkpoint does not verify
        // under the statement signer's key.
        let stranger = Keypair::from_seed(&[7; 32]);
        let mut t = r;
        t.statement = Signed::sign(&Note { text: "n6".into() }, &stranger)
            .unwrap()
            .envelope()
            .clone();
        assert_eq!(
            verify_receipt(&t, None).rejection.as_deref(),
            Some("checkpoint_signature")
        );
    }
}
