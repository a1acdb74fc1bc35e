//! The wire and WAL codec: every message Malachite sends, gossips or writes ahead, as JSON.
//!
//! Malachite's own types carry no serde derives, so each gets a plain wire struct here and
//! a pair of conversions. Decoding never panics: bad bytes, wrong lengths and invalid keys
//! come back as [`CodecError`], and the engine drops the message and scores the peer.

use bytes::Bytes;
use malachitebft_app_channel::app::consensus::LivenessMsg;
use malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app_channel::app::types::codec::{Codec, HasEncodedLen};
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, CommitSignature, ExtendedCommitCertificate, ExtendedCommitSignature,
    NilOrVal, PolkaCertificate, PolkaSignature, Round, RoundCertificate, RoundCertificateType,
    RoundSignature, SignedMessage, ValidatorProof, Validity, VoteType,
};
use malachitebft_app_channel::app::types::sync::{RawDecidedValue, Request, Response, Status};
use malachitebft_app_channel::app::types::{PeerId, ProposedValue, SignedConsensusMsg};
use malachitebft_sync::{ValueRequest, ValueResponse};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::context::{
    hex_bytes, Address, BlockId, Height, LedgerContext, Proposal, ProposalPart, Signature, Vote,
};

/// Why bytes could not be decoded (or, never in practice, a value encoded).
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// The codec every replica uses for consensus gossip, sync and its write-ahead log.
#[derive(Clone, Copy, Debug, Default)]
pub struct WireCodec;

fn to_bytes<T: Serialize>(v: &T) -> Result<Bytes, CodecError> {
    Ok(Bytes::from(serde_json::to_vec(v)?))
}

fn from_bytes<T: DeserializeOwned>(b: &[u8]) -> Result<T, CodecError> {
    Ok(serde_json::from_slice(b)?)
}

/// A signature as hex on the wire.
#[derive(Serialize, Deserialize)]
struct WireSig(#[serde(with = "hex_bytes")] Vec<u8>);

impl From<&Signature> for WireSig {
    fn from(s: &Signature) -> Self {
        WireSig(s.0.to_vec())
    }
}

impl TryFrom<WireSig> for Signature {
    type Error = CodecError;
    fn try_from(w: WireSig) -> Result<Self, CodecError> {
        let sig: [u8; 64] =
            w.0.try_into()
                .map_err(|_| CodecError::Invalid("signature length"))?;
        Ok(Signature(sig))
    }
}

#[derive(Serialize, Deserialize)]
struct WireVote {
    vote_type: VoteType,
    height: Height,
    round: Round,
    value: NilOrVal<BlockId>,
    validator: Address,
    /// Extensions are disabled on this chain; a vote carrying one is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extension: Option<WireSig>,
}

#[derive(Serialize, Deserialize)]
struct WireSignedVote {
    vote: WireVote,
    signature: WireSig,
}

impl From<&SignedMessage<LedgerContext, Vote>> for WireSignedVote {
    fn from(v: &SignedMessage<LedgerContext, Vote>) -> Self {
        WireSignedVote {
            vote: WireVote {
                vote_type: v.message.vote_type,
                height: v.message.height,
                round: v.message.round,
                value: v.message.value,
                validator: v.message.validator,
                extension: v.message.extension.as_ref().map(|e| (&e.signature).into()),
            },
            signature: (&v.signature).into(),
        }
    }
}

impl TryFrom<WireSignedVote> for SignedMessage<LedgerContext, Vote> {
    type Error = CodecError;
    fn try_from(w: WireSignedVote) -> Result<Self, CodecError> {
        let extension = match w.vote.extension {
            None => None,
            Some(sig) => Some(SignedMessage::new((), sig.try_into()?)),
        };
        Ok(SignedMessage::new(
            Vote {
                vote_type: w.vote.vote_type,
                height: w.vote.height,
                round: w.vote.round,
                value: w.vote.value,
                validator: w.vote.validator,
                extension,
            },
            w.signature.try_into()?,
        ))
    }
}

#[derive(Serialize, Deserialize)]
struct WireProposal {
    height: Height,
    round: Round,
    value: BlockId,
    pol_round: Round,
    proposer: Address,
    signature: WireSig,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireConsensusMsg {
    Vote(WireSignedVote),
    Proposal(WireProposal),
}

impl From<&SignedConsensusMsg<LedgerContext>> for WireConsensusMsg {
    fn from(m: &SignedConsensusMsg<LedgerContext>) -> Self {
        match m {
            SignedConsensusMsg::Vote(v) => WireConsensusMsg::Vote(v.into()),
            SignedConsensusMsg::Proposal(p) => WireConsensusMsg::Proposal(WireProposal {
                height: p.message.height,
                round: p.message.round,
                value: p.message.value,
                pol_round: p.message.pol_round,
                proposer: p.message.proposer,
                signature: (&p.signature).into(),
            }),
        }
    }
}

impl TryFrom<WireConsensusMsg> for SignedConsensusMsg<LedgerContext> {
    type Error = CodecError;
    fn try_from(w: WireConsensusMsg) -> Result<Self, CodecError> {
        Ok(match w {
            WireConsensusMsg::Vote(v) => SignedConsensusMsg::Vote(v.try_into()?),
            WireConsensusMsg::Proposal(p) => SignedConsensusMsg::Proposal(SignedMessage::new(
                Proposal {
                    height: p.height,
                    round: p.round,
                    value: p.value,
                    pol_round: p.pol_round,
                    proposer: p.proposer,
                },
                p.signature.try_into()?,
            )),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WireAddrSig {
    address: Address,
    signature: WireSig,
}

#[derive(Serialize, Deserialize)]
struct WirePolka {
    height: Height,
    round: Round,
    value_id: BlockId,
    signatures: Vec<WireAddrSig>,
}

impl From<&PolkaCertificate<LedgerContext>> for WirePolka {
    fn from(c: &PolkaCertificate<LedgerContext>) -> Self {
        WirePolka {
            height: c.height,
            round: c.round,
            value_id: c.value_id,
            signatures: c
                .polka_signatures
                .iter()
                .map(|s| WireAddrSig {
                    address: s.address,
                    signature: (&s.signature).into(),
                })
                .collect(),
        }
    }
}

impl TryFrom<WirePolka> for PolkaCertificate<LedgerContext> {
    type Error = CodecError;
    fn try_from(w: WirePolka) -> Result<Self, CodecError> {
        let mut polka_signatures = Vec::with_capacity(w.signatures.len());
        for s in w.signatures {
            polka_signatures.push(PolkaSignature::new(s.address, s.signature.try_into()?));
        }
        Ok(PolkaCertificate {
            height: w.height,
            round: w.round,
            value_id: w.value_id,
            polka_signatures,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WireRoundSig {
    vote_type: VoteType,
    value_id: NilOrVal<BlockId>,
    address: Address,
    signature: WireSig,
}

#[derive(Serialize, Deserialize)]
struct WireRoundCert {
    height: Height,
    round: Round,
    cert_type: RoundCertificateType,
    signatures: Vec<WireRoundSig>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireLiveness {
    Vote(WireSignedVote),
    Polka(WirePolka),
    SkipRound(WireRoundCert),
}

impl From<&LivenessMsg<LedgerContext>> for WireLiveness {
    fn from(m: &LivenessMsg<LedgerContext>) -> Self {
        match m {
            LivenessMsg::Vote(v) => WireLiveness::Vote(v.into()),
            LivenessMsg::PolkaCertificate(c) => WireLiveness::Polka(c.into()),
            LivenessMsg::SkipRoundCertificate(c) => WireLiveness::SkipRound(WireRoundCert {
                height: c.height,
                round: c.round,
                cert_type: c.cert_type.clone(),
                signatures: c
                    .round_signatures
                    .iter()
                    .map(|s| WireRoundSig {
                        vote_type: s.vote_type,
                        value_id: s.value_id,
                        address: s.address,
                        signature: (&s.signature).into(),
                    })
                    .collect(),
            }),
        }
    }
}

impl TryFrom<WireLiveness> for LivenessMsg<LedgerContext> {
    type Error = CodecError;
    fn try_from(w: WireLiveness) -> Result<Self, CodecError> {
        Ok(match w {
            WireLiveness::Vote(v) => LivenessMsg::Vote(v.try_into()?),
            WireLiveness::Polka(c) => LivenessMsg::PolkaCertificate(c.try_into()?),
            WireLiveness::SkipRound(c) => {
                let mut round_signatures = Vec::with_capacity(c.signatures.len());
                for s in c.signatures {
                    round_signatures.push(RoundSignature::new(
                        s.vote_type,
                        s.value_id,
                        s.address,
                        s.signature.try_into()?,
                    ));
                }
                LivenessMsg::SkipRoundCertificate(RoundCertificate {
                    height: c.height,
                    round: c.round,
                    cert_type: c.cert_type,
                    round_signatures,
                })
            }
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WireStreamMessage {
    #[serde(with = "hex_bytes")]
    stream_id: Vec<u8>,
    sequence: u64,
    /// `None` closes the stream.
    data: Option<ProposalPart>,
}

#[derive(Serialize, Deserialize)]
struct WireValidatorProof {
    #[serde(with = "hex_bytes")]
    public_key: Vec<u8>,
    #[serde(with = "hex_bytes")]
    peer_id: Vec<u8>,
    signature: WireSig,
}

#[derive(Serialize, Deserialize)]
struct WireProposedValue {
    height: Height,
    round: Round,
    valid_round: Round,
    proposer: Address,
    value: BlockId,
    valid: bool,
}

#[derive(Serialize, Deserialize)]
struct WireStatus {
    #[serde(with = "hex_bytes")]
    peer_id: Vec<u8>,
    tip_height: Height,
    history_min_height: Height,
}

#[derive(Serialize, Deserialize)]
struct WireRequest {
    from: Height,
    to: Height,
}

/// The JSON form of the engine's `Round` (serde's external tagging: `"Nil"` or `{"Some": r}`),
/// for the HTTP API's schemas only.
#[derive(schemars::JsonSchema)]
#[schemars(rename = "Round")]
#[allow(dead_code)]
enum RoundSchema {
    /// No round (the engine's -1).
    Nil,
    /// Round `r`.
    Some(u32),
}

/// A commit certificate as stored with each decided block and sent in sync responses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WireCertificate {
    pub height: Height,
    #[schemars(with = "RoundSchema")]
    pub round: Round,
    pub value_id: BlockId,
    pub signatures: Vec<WireCommitSig>,
}

/// One validator's precommit signature in a [`WireCertificate`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WireCommitSig {
    pub address: Address,
    #[serde(with = "hex_bytes")]
    #[schemars(with = "String")]
    pub signature: Vec<u8>,
}

impl From<&CommitCertificate<LedgerContext>> for WireCertificate {
    fn from(c: &CommitCertificate<LedgerContext>) -> Self {
        WireCertificate {
            height: c.height,
            round: c.round,
            value_id: c.value_id,
            signatures: c
                .commit_signatures
                .iter()
                .map(|s| WireCommitSig {
                    address: s.address,
                    signature: s.signature.0.to_vec(),
                })
                .collect(),
        }
    }
}

impl WireCertificate {
    /// The engine's form of this certificate.
    pub fn to_commit(&self) -> Result<CommitCertificate<LedgerContext>, CodecError> {
        let mut commit_signatures = Vec::with_capacity(self.signatures.len());
        for s in &self.signatures {
            let sig: [u8; 64] = s
                .signature
                .as_slice()
                .try_into()
                .map_err(|_| CodecError::Invalid("signature length"))?;
            commit_signatures.push(CommitSignature::new(s.address, Signature(sig)));
        }
        Ok(CommitCertificate {
            height: self.height,
            round: self.round,
            value_id: self.value_id,
            commit_signatures,
        })
    }

    /// The extended form sync sends (this chain has no vote extensions).
    pub fn to_extended(&self) -> Result<ExtendedCommitCertificate<LedgerContext>, CodecError> {
        let c = self.to_commit()?;
        Ok(ExtendedCommitCertificate {
            height: c.height,
            round: c.round,
            value_id: c.value_id,
            commit_signatures: c
                .commit_signatures
                .into_iter()
                .map(|s| ExtendedCommitSignature::new(s.address, s.signature, None))
                .collect(),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WireDecided {
    #[serde(with = "hex_bytes")]
    value: Vec<u8>,
    certificate: WireCertificate,
}

#[derive(Serialize, Deserialize)]
struct WireResponse {
    start_height: Height,
    values: Vec<WireDecided>,
}

fn wire_response(r: &Response<LedgerContext>) -> WireResponse {
    let Response::ValueResponse(v) = r;
    WireResponse {
        start_height: v.start_height,
        values: v
            .values
            .iter()
            .map(|d| WireDecided {
                value: d.value_bytes.to_vec(),
                certificate: (&d.certificate.trim_vote_extensions()).into(),
            })
            .collect(),
    }
}

macro_rules! codec {
    ($ty:ty, $enc:expr, $dec:expr) => {
        impl Codec<$ty> for WireCodec {
            type Error = CodecError;

            fn decode(&self, bytes: Bytes) -> Result<$ty, CodecError> {
                $dec(&bytes)
            }

            fn encode(&self, msg: &$ty) -> Result<Bytes, CodecError> {
                $enc(msg)
            }
        }
    };
}

codec!(
    ProposalPart,
    |m: &ProposalPart| to_bytes(m),
    |b: &[u8]| from_bytes(b)
);

codec!(
    SignedConsensusMsg<LedgerContext>,
    |m: &SignedConsensusMsg<LedgerContext>| to_bytes(&WireConsensusMsg::from(m)),
    |b: &[u8]| from_bytes::<WireConsensusMsg>(b)?.try_into()
);

codec!(
    LivenessMsg<LedgerContext>,
    |m: &LivenessMsg<LedgerContext>| to_bytes(&WireLiveness::from(m)),
    |b: &[u8]| from_bytes::<WireLiveness>(b)?.try_into()
);

codec!(
    StreamMessage<ProposalPart>,
    |m: &StreamMessage<ProposalPart>| to_bytes(&WireStreamMessage {
        stream_id: m.stream_id.to_bytes().to_vec(),
        sequence: m.sequence,
        data: m.content.as_data().cloned(),
    }),
    |b: &[u8]| {
        let w: WireStreamMessage = from_bytes(b)?;
        let content = match w.data {
            Some(part) => StreamContent::Data(part),
            None => StreamContent::Fin,
        };
        Ok(StreamMessage::new(
            StreamId::new(Bytes::from(w.stream_id)),
            w.sequence,
            content,
        ))
    }
);

codec!(
    ValidatorProof<LedgerContext>,
    |m: &ValidatorProof<LedgerContext>| to_bytes(&WireValidatorProof {
        public_key: m.public_key.clone(),
        peer_id: m.peer_id.clone(),
        signature: (&m.signature).into(),
    }),
    |b: &[u8]| {
        let w: WireValidatorProof = from_bytes(b)?;
        Ok(ValidatorProof::new(
            w.public_key,
            w.peer_id,
            w.signature.try_into()?,
        ))
    }
);

codec!(
    ProposedValue<LedgerContext>,
    |m: &ProposedValue<LedgerContext>| to_bytes(&WireProposedValue {
        height: m.height,
        round: m.round,
        valid_round: m.valid_round,
        proposer: m.proposer,
        value: m.value,
        valid: m.validity.is_valid(),
    }),
    |b: &[u8]| {
        let w: WireProposedValue = from_bytes(b)?;
        Ok(ProposedValue {
            height: w.height,
            round: w.round,
            valid_round: w.valid_round,
            proposer: w.proposer,
            value: w.value,
            validity: Validity::from_bool(w.valid),
        })
    }
);

codec!(
    PolkaCertificate<LedgerContext>,
    |m: &PolkaCertificate<LedgerContext>| to_bytes(&WirePolka::from(m)),
    |b: &[u8]| from_bytes::<WirePolka>(b)?.try_into()
);

codec!(
    Status<LedgerContext>,
    |m: &Status<LedgerContext>| to_bytes(&WireStatus {
        peer_id: m.peer_id.to_bytes(),
        tip_height: m.tip_height,
        history_min_height: m.history_min_height,
    }),
    |b: &[u8]| {
        let w: WireStatus = from_bytes(b)?;
        Ok(Status {
            peer_id: PeerId::from_bytes(&w.peer_id).map_err(|_| CodecError::Invalid("peer id"))?,
            tip_height: w.tip_height,
            history_min_height: w.history_min_height,
        })
    }
);

codec!(
    Request<LedgerContext>,
    |m: &Request<LedgerContext>| {
        let Request::ValueRequest(r) = m;
        to_bytes(&WireRequest {
            from: *r.range.start(),
            to: *r.range.end(),
        })
    },
    |b: &[u8]| {
        let w: WireRequest = from_bytes(b)?;
        Ok(Request::ValueRequest(ValueRequest::new(w.from..=w.to)))
    }
);

codec!(
    Response<LedgerContext>,
    |m: &Response<LedgerContext>| to_bytes(&wire_response(m)),
    |b: &[u8]| {
        let w: WireResponse = from_bytes(b)?;
        let mut values = Vec::with_capacity(w.values.len());
        for d in w.values {
            values.push(RawDecidedValue::new(
                Bytes::from(d.value),
                d.certificate.to_extended()?,
            ));
        }
        Ok(Response::ValueResponse(ValueResponse::new(
            w.start_height,
            values,
        )))
    }
);

impl HasEncodedLen<Response<LedgerContext>> for WireCodec {
    fn encoded_len(&self, msg: &Response<LedgerContext>) -> Result<usize, CodecError> {
        Ok(serde_json::to_vec(&wire_response(msg))?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{BlockId, Height, Vote};
    use crate::signing::HotkeySigner;
    use hallmark_core::Keypair;
    use malachitebft_app_channel::app::types::core::NilOrVal;

    fn roundtrip<T>(v: &T) -> T
    where
        WireCodec: Codec<T, Error = CodecError>,
    {
        let bytes = WireCodec.encode(v).unwrap();
        WireCodec.decode(bytes).unwrap()
    }

    #[test]
    fn every_message_kind_survives_the_wire() {
        let signer = HotkeySigner::new("c", Keypair::from_seed(&[3; 32]));
        let vote = signer.sign_vote_now(Vote {
            vote_type: VoteType::Precommit,
            height: Height(7),
            round: Round::new(2),
            value: NilOrVal::Val(BlockId([9; 32])),
            validator: Address(Keypair::from_seed(&[3; 32]).public()),
            extension: None,
        });
        let msg = SignedConsensusMsg::Vote(vote.clone());
        assert_eq!(roundtrip(&msg), msg);
        let live = LivenessMsg::Vote(vote.clone());
        assert_eq!(roundtrip(&live), live);
        let part = StreamMessage::new(
            StreamId::new(Bytes::from_static(b"s")),
            3,
            StreamContent::Data(ProposalPart::Data {
                bytes: vec![1, 2, 3],
            }),
        );
        assert_eq!(roundtrip(&part), part);
        let fin: StreamMessage<ProposalPart> = StreamMessage::new(
            StreamId::new(Bytes::from_static(b"s")),
            4,
            StreamContent::Fin,
        );
        assert_eq!(roundtrip(&fin), fin);
        let cert = WireCertificate {
            height: Height(7),
            round: Round::new(2),
            value_id: BlockId([9; 32]),
            signatures: vec![WireCommitSig {
                address: vote.message.validator,
                signature: vote.signature.0.to_vec(),
            }],
        };
        let response = Response::ValueResponse(ValueResponse::new(
            Height(7),
            vec![RawDecidedValue::new(
                Bytes::from_static(b"{}"),
                cert.to_extended().unwrap(),
            )],
        ));
        assert_eq!(roundtrip(&response), response);
        let request = Request::ValueRequest(ValueRequest::new(Height(3)..=Height(9)));
        assert_eq!(roundtrip(&request), request);
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let inputs: Vec<&[u8]> = vec![
            b"",
            b"null",
            b"{\"kind\":\"vote\"}",
            b"{\"kind\":\"vote\",\"vote\":{\"vote_type\":\"Precommit\",\"height\":1,\"round\":{\"Some\":0},\"value\":\"Nil\",\"validator\":\"x\"},\"signature\":\"00\"}",
            b"\xff\xfe",
            b"{\"stream_id\":\"zz\",\"sequence\":0,\"data\":null}",
            b"{\"peer_id\":\"00\",\"tip_height\":1,\"history_min_height\":1}",
        ];
        for b in inputs {
            let bytes = Bytes::copy_from_slice(b);
            assert!(
                Codec::<SignedConsensusMsg<LedgerContext>>::decode(&WireCodec, bytes.clone())
                    .is_err()
            );
            assert!(
                Codec::<StreamMessage<ProposalPart>>::decode(&WireCodec, bytes.clone()).is_err()
            );
            assert!(Codec::<Status<LedgerContext>>::decode(&WireCodec, bytes.clone()).is_err());
            assert!(Codec::<Response<LedgerContext>>::decode(&WireCodec, bytes).is_err());
        }
    }
}
