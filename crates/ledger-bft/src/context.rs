//! The consensus context: what Malachite needs to know about hallmark's ledger.
//!
//! A height is a block height. A validator is a hotkey with voting power (its bonded
//! stake). The value consensus agrees on is a block's id, the SHA-256 of its canonical
//! JSON; the block itself travels as proposal parts and is re-executed by every replica
//! before it votes. Votes, proposals and proposal streams are signed with the validator's
//! Ed25519 hotkey over domain-separated bytes that name the chain, so a signature for one
//! chain or one message kind is never valid for another.

use std::fmt;

use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::{Keypair, PublicKey};
use malachitebft_app_channel::app::types::core::{
    self as core, LinearTimeouts, NilOrVal, Round, SignedExtension, VoteType, VotingPower,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A block height. Height 0 is genesis; consensus starts at 1.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl core::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address: its hotkey.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub struct Address(pub PublicKey);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl core::Address for Address {}

/// A block's id: SHA-256 of the block's canonical JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub [u8; 32]);

impl BlockId {
    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(BlockId(out))
    }

    /// Lower-case hex, the form block hashes take everywhere else in the ledger.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for BlockId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl schemars::JsonSchema for BlockId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BlockId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        hallmark_core::schema::lower_hex(
            Some(32),
            "A block id: SHA-256 of the block's canonical JSON, lowercase hex.",
        )
    }
}

impl<'de> Deserialize<'de> for BlockId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BlockId::from_hex(&s).ok_or_else(|| serde::de::Error::custom("block id is not 64 hex"))
    }
}

/// The value consensus decides: a block, named by its id. The block's bytes travel as
/// proposal parts and in sync responses, never inside votes.
impl core::Value for BlockId {
    type Id = BlockId;

    fn id(&self) -> BlockId {
        *self
    }
}

/// One validator: hotkey and voting power.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Validator {
    pub address: Address,
    pub voting_power: VotingPower,
}

impl Validator {
    /// A validator for `hotkey` with `power`.
    pub fn new(hotkey: PublicKey, power: VotingPower) -> Self {
        Self {
            address: Address(hotkey),
            voting_power: power,
        }
    }
}

impl core::Validator<LedgerContext> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }

    fn public_key(&self) -> &PublicKey {
        &self.address.0
    }

    fn voting_power(&self) -> VotingPower {
        self.voting_power
    }
}

/// The validators for a height, ordered by address so every replica indexes them alike.
/// Deserializing goes through [`ValidatorSet::new`], so a set read from a file is ordered and
/// free of duplicates and zero-power entries too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(from = "ValidatorList")]
pub struct ValidatorSet {
    validators: Vec<Validator>,
}

/// A validator set as written: any order, possibly with duplicates.
#[derive(Deserialize, schemars::JsonSchema)]
struct ValidatorList {
    validators: Vec<Validator>,
}

impl From<ValidatorList> for ValidatorSet {
    fn from(l: ValidatorList) -> Self {
        ValidatorSet::new(l.validators)
    }
}

impl ValidatorSet {
    /// Builds a set: zero-power entries are dropped, duplicates merged (powers added),
    /// and the rest sorted by address.
    pub fn new(validators: impl IntoIterator<Item = Validator>) -> Self {
        let mut merged: std::collections::BTreeMap<Address, VotingPower> = Default::default();
        for v in validators {
            if v.voting_power > 0 {
                let p = merged.entry(v.address).or_default();
                *p = p.saturating_add(v.voting_power);
            }
        }
        Self {
            validators: merged
                .into_iter()
                .map(|(address, voting_power)| Validator {
                    address,
                    voting_power,
                })
                .collect(),
        }
    }

    /// The validators, ordered by address.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Whether no validator has power (such a set cannot decide anything).
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }
}

impl core::ValidatorSet<LedgerContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> VotingPower {
        self.validators
            .iter()
            .fold(0u64, |acc, v| acc.saturating_add(v.voting_power))
    }

    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.validators
            .binary_search_by(|v| v.address.cmp(address))
            .ok()
            .and_then(|i| self.validators.get(i))
    }

    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// A proposal: "at this height and round, decide this block".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    pub value: BlockId,
    pub pol_round: Round,
    pub proposer: Address,
}

impl core::Proposal<LedgerContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &BlockId {
        &self.value
    }

    fn take_value(self) -> BlockId {
        self.value
    }

    fn pol_round(&self) -> Round {
        self.pol_round
    }

    fn validator_address(&self) -> &Address {
        &self.proposer
    }
}

/// A prevote or precommit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    pub vote_type: VoteType,
    pub height: Height,
    pub round: Round,
    pub value: NilOrVal<BlockId>,
    pub validator: Address,
    pub extension: Option<SignedExtension<LedgerContext>>,
}

impl Vote {
    /// A vote without an extension (this chain runs with extensions disabled).
    pub fn new(
        vote_type: VoteType,
        height: Height,
        round: Round,
        value: NilOrVal<BlockId>,
        validator: Address,
    ) -> Self {
        Self {
            vote_type,
            height,
            round,
            value,
            validator,
            extension: None,
        }
    }
}

impl core::Vote<LedgerContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &NilOrVal<BlockId> {
        &self.value
    }

    fn take_value(self) -> NilOrVal<BlockId> {
        self.value
    }

    fn vote_type(&self) -> VoteType {
        self.vote_type
    }

    fn validator_address(&self) -> &Address {
        &self.validator
    }

    fn extension(&self) -> Option<&SignedExtension<LedgerContext>> {
        self.extension.as_ref()
    }

    fn take_extension(&mut self) -> Option<SignedExtension<LedgerContext>> {
        self.extension.take()
    }

    fn extend(self, extension: SignedExtension<LedgerContext>) -> Self {
        Self {
            extension: Some(extension),
            ..self
        }
    }
}

/// One piece of a proposed block's stream: who proposes it, a slice of its bytes, and the
/// proposer's signature over the whole stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "part", rename_all = "snake_case")]
pub enum ProposalPart {
    /// Opens the stream.
    Init {
        height: Height,
        round: i64,
        valid_round: i64,
        proposer: Address,
    },
    /// A slice of the block's canonical JSON, in order.
    Data {
        #[serde(with = "hex_bytes")]
        #[schemars(with = "String")]
        bytes: Vec<u8>,
    },
    /// Closes the stream: the proposer's signature over [`stream_signing_bytes`].
    Fin {
        #[serde(with = "hex_bytes")]
        #[schemars(with = "String")]
        signature: Vec<u8>,
    },
}

impl core::ProposalPart<LedgerContext> for ProposalPart {
    fn is_first(&self) -> bool {
        matches!(self, ProposalPart::Init { .. })
    }

    fn is_last(&self) -> bool {
        matches!(self, ProposalPart::Fin { .. })
    }
}

/// Serde helper: bytes as lower-case hex.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 signature, ordered by its bytes (Malachite sorts and deduplicates them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature(pub [u8; 64]);

/// Why bytes are not a signature or key.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("signature must be 64 bytes, got {0}")]
    SignatureLength(usize),
    #[error("public key must be a valid 32-byte ed25519 point")]
    PublicKey,
}

/// Ed25519 over hallmark's own key types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ed25519;

impl core::SigningScheme for Ed25519 {
    type DecodingError = DecodeError;
    type Signature = Signature;
    type PublicKey = PublicKey;
    type PrivateKey = Keypair;

    fn decode_signature(bytes: &[u8]) -> Result<Signature, DecodeError> {
        let sig: [u8; 64] = bytes
            .try_into()
            .map_err(|_| DecodeError::SignatureLength(bytes.len()))?;
        Ok(Signature(sig))
    }

    fn encode_signature(signature: &Signature) -> Vec<u8> {
        signature.0.to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<PublicKey, DecodeError> {
        let key: [u8; 32] = bytes.try_into().map_err(|_| DecodeError::PublicKey)?;
        PublicKey::from_bytes(key).map_err(|_| DecodeError::PublicKey)
    }

    fn encode_public_key(public_key: &PublicKey) -> Vec<u8> {
        public_key.as_bytes().to_vec()
    }
}

/// hallmark's ledger as a Malachite context. It carries the chain id, so every signed
/// consensus message names its chain.
#[derive(Clone, Debug)]
pub struct LedgerContext {
    chain_id: String,
}

impl LedgerContext {
    /// The context for `chain_id`.
    pub fn new(chain_id: impl Into<String>) -> Self {
        Self {
            chain_id: chain_id.into(),
        }
    }

    /// The chain whose consensus this is.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }
}

impl core::Context for LedgerContext {
    type Address = Address;
    type Height = Height;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = BlockId;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = Ed25519;

    /// Round-robin over the address-ordered set, shifted by height, so every replica picks
    /// the same proposer and each validator proposes in turn.
    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        let count = validator_set.validators.len().max(1) as u64;
        let round = round.as_u32().unwrap_or(0) as u64;
        let index = (height.0.wrapping_add(round)) % count;
        // Consensus never starts a height with an empty set (the replica refuses to).
        &validator_set.validators[index as usize]
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockId,
        pol_round: Round,
        address: Address,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: Address,
    ) -> Vote {
        Vote::new(VoteType::Prevote, height, round, value_id, address)
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: Address,
    ) -> Vote {
        Vote::new(VoteType::Precommit, height, round, value_id, address)
    }
}

/// The name a vote type has in signed bytes and on the wire.
pub fn vote_type_name(t: VoteType) -> &'static str {
    match t {
        VoteType::Prevote => "prevote",
        VoteType::Precommit => "precommit",
    }
}

fn canonical(value: serde_json::Value) -> Vec<u8> {
    // Canonical JSON of a json! literal of strings and integers cannot fail; an empty
    // message would still be domain-separated by its missing fields and never verify.
    to_canonical_bytes(&value).unwrap_or_default()
}

/// The bytes a validator signs for a vote (defined by the ledger, which checks double-vote
/// evidence against the same bytes).
pub fn vote_signing_bytes(chain_id: &str, vote: &Vote) -> Vec<u8> {
    let value = match &vote.value {
        NilOrVal::Nil => None,
        NilOrVal::Val(id) => Some(id.to_hex()),
    };
    hallmark_ledger::consensus_vote::vote_signing_bytes(
        chain_id,
        vote_type_name(vote.vote_type),
        vote.height.0,
        vote.round.as_i64(),
        value.as_deref(),
        &vote.validator.0,
    )
}

/// The bytes a proposer signs for a proposal.
pub fn proposal_signing_bytes(chain_id: &str, p: &Proposal) -> Vec<u8> {
    canonical(json!({
        "domain": "hallmark-bft-proposal/v1",
        "chain_id": chain_id,
        "height": p.height.0,
        "round": p.round.as_i64(),
        "pol_round": p.pol_round.as_i64(),
        "value": p.value.to_hex(),
        "proposer": p.proposer.0.to_ss58(),
    }))
}

/// The bytes a proposer signs to close a proposal stream: the stream's opening fields and
/// the id of the block its data parts carry.
pub fn stream_signing_bytes(
    chain_id: &str,
    height: Height,
    round: i64,
    valid_round: i64,
    proposer: &Address,
    block: &BlockId,
) -> Vec<u8> {
    canonical(json!({
        "domain": "hallmark-bft-stream/v1",
        "chain_id": chain_id,
        "height": height.0,
        "round": round,
        "valid_round": valid_round,
        "proposer": proposer.0.to_ss58(),
        "block": block.to_hex(),
    }))
}

/// Timeouts for a loopback or LAN network: short, growing each round so a slow network
/// still converges.
pub fn default_timeouts() -> LinearTimeouts {
    use std::time::Duration;
    let propose = Duration::from_millis(2000);
    let prevote = Duration::from_millis(500);
    let precommit = Duration::from_millis(500);
    LinearTimeouts {
        propose,
        propose_delta: Duration::from_millis(500),
        prevote,
        prevote_delta: Duration::from_millis(250),
        precommit,
        precommit_delta: Duration::from_millis(250),
        rebroadcast: propose + prevote + precommit,
        max_timeout: Duration::from_secs(20),
    }
}
