//! Consensus votes as the ledger sees them: the bytes a validator signs for a prevote or
//! precommit on a block, and evidence that one validator signed two different votes for the
//! same height, round and type. The replicas' consensus engine signs these bytes; the ledger
//! checks double-vote evidence itself, so a slashing needs no trust in who reports it.

use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::PublicKey;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The bytes a validator signs for a vote: `value` is the block id (hex) or `None` for nil.
pub fn vote_signing_bytes(
    chain_id: &str,
    vote_type: &str,
    height: u64,
    round: i64,
    value: Option<&str>,
    validator: &PublicKey,
) -> Vec<u8> {
    let value = value.map_or(serde_json::Value::Null, |v| json!(v));
    // Canonical JSON of strings and integers cannot fail; an empty message never verifies.
    to_canonical_bytes(&json!({
        "domain": "hallmark-bft-vote/v1",
        "chain_id": chain_id,
        "type": vote_type,
        "height": height,
        "round": round,
        "value": value,
        "validator": validator.to_ss58(),
    }))
    .unwrap_or_default()
}

/// The slashing id under which a double-voting validator is slashed (once).
pub const DOUBLE_VOTE_OFFENCE: &str = "bft/double-vote";

/// One signed consensus vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SignedConsensusVote {
    /// `prevote` or `precommit`.
    pub vote_type: String,
    pub height: u64,
    pub round: i64,
    /// The block id voted for (hex), or `None` for nil.
    pub value: Option<String>,
    /// Ed25519 signature over [`vote_signing_bytes`] (hex).
    pub signature: String,
}

/// Two votes one validator signed for the same height, round and type, for different values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DoubleVote {
    pub validator: PublicKey,
    pub first: SignedConsensusVote,
    pub second: SignedConsensusVote,
}

/// Why double-vote evidence proves nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DoubleVoteError {
    #[error("the votes are for different heights, rounds or types")]
    NotSameSlot,
    #[error("the votes are for the same value")]
    SameValue,
    #[error("vote type must be prevote or precommit")]
    BadType,
    #[error("the {0} vote's signature does not verify")]
    BadSignature(&'static str),
}

impl DoubleVote {
    /// Checks the evidence on `chain_id`; returns the offence's id. It is the same for every
    /// double vote of a validator: a validator is slashed once for consensus equivocation
    /// (the first evidence lands; later evidence finds it already slashed), so a replica
    /// that keeps double-voting cannot make the chain carry a slashing per height.
    pub fn check(&self, chain_id: &str) -> Result<String, DoubleVoteError> {
        let (a, b) = (&self.first, &self.second);
        if a.height != b.height || a.round != b.round || a.vote_type != b.vote_type {
            return Err(DoubleVoteError::NotSameSlot);
        }
        if !matches!(a.vote_type.as_str(), "prevote" | "precommit") {
            return Err(DoubleVoteError::BadType);
        }
        if a.value == b.value {
            return Err(DoubleVoteError::SameValue);
        }
        for (which, v) in [("first", a), ("second", b)] {
            let bytes = vote_signing_bytes(
                chain_id,
                &v.vote_type,
                v.height,
                v.round,
                v.value.as_deref(),
                &self.validator,
            );
            let sig =
                hex::decode(&v.signature).map_err(|_| DoubleVoteError::BadSignature(which))?;
            self.validator
                .verify(&bytes, &sig)
                .map_err(|_| DoubleVoteError::BadSignature(which))?;
        }
        Ok(DOUBLE_VOTE_OFFENCE.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_core::Keypair;

    fn vote(k: &Keypair, value: Option<&str>, round: i64) -> SignedConsensusVote {
        let bytes = vote_signing_bytes("c", "prevote", 5, round, value, &k.public());
        SignedConsensusVote {
            vote_type: "prevote".into(),
            height: 5,
            round,
            value: value.map(String::from),
            signature: hex::encode(k.sign(&bytes)),
        }
    }

    #[test]
    fn double_vote_evidence_is_checked_not_trusted() {
        let k = Keypair::from_seed(&[4; 32]);
        let good = DoubleVote {
            validator: k.public(),
            first: vote(&k, Some("aa"), 0),
            second: vote(&k, None, 0),
        };
        assert_eq!(good.check("c").unwrap(), DOUBLE_VOTE_OFFENCE);
        // Another chain's bytes do not verify.
        assert!(matches!(
            good.check("d"),
            Err(DoubleVoteError::BadSignature("first"))
        ));
        // Two rounds are not a double vote; neither is the same value twice.
        let other_round = DoubleVote {
            second: vote(&k, None, 1),
            ..good.clone()
        };
        assert_eq!(other_round.check("c"), Err(DoubleVoteError::NotSameSlot));
        let same = DoubleVote {
            second: good.first.clone(),
            ..good.clone()
        };
        assert_eq!(same.check("c"), Err(DoubleVoteError::SameValue));
        // A vote signed by someone else cannot frame the validator.
        let framed = DoubleVote {
            second: vote(&Keypair::from_seed(&[5; 32]), None, 0),
            ..good.clone()
        };
        assert_eq!(
            framed.check("c"),
            Err(DoubleVoteError::BadSignature("second"))
        );
    }
}
