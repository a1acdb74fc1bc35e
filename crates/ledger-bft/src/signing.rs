//! Malachite's signer and verifier over hallmark hotkeys.
//!
//! Every message is signed over domain-separated canonical bytes that name the chain
//! ([`crate::context`]), and verified strictly (no malleable or small-order signatures).

use async_trait::async_trait;
use hallmark_core::{Keypair, PublicKey};
use malachitebft_app_channel::app::types::core::{
    SignedMessage, ValidatorProof, VoteExtensionScope,
};
use malachitebft_app_channel::{Signer, Verifier};
use malachitebft_signing::{Error as SigningError, VerificationResult};

use crate::context::{
    proposal_signing_bytes, vote_signing_bytes, LedgerContext, Proposal, Signature, Vote,
};

/// Signs consensus messages with one validator's hotkey.
pub struct HotkeySigner {
    chain_id: String,
    key: Keypair,
}

impl HotkeySigner {
    /// A signer for `key` on `chain_id`.
    pub fn new(chain_id: impl Into<String>, key: Keypair) -> Self {
        Self {
            chain_id: chain_id.into(),
            key,
        }
    }

    /// Signs a vote (used by the replica itself to build evidence and by tests).
    pub fn sign_vote_now(&self, vote: Vote) -> SignedMessage<LedgerContext, Vote> {
        let sig = self.key.sign(&vote_signing_bytes(&self.chain_id, &vote));
        SignedMessage::new(vote, Signature(sig))
    }
}

fn extension_bytes(chain_id: &str, scope: &VoteExtensionScope<LedgerContext>) -> Vec<u8> {
    let mut out = b"hallmark-bft-extension/v1\0".to_vec();
    out.extend_from_slice(chain_id.as_bytes());
    out.push(0);
    out.extend_from_slice(&scope.height.0.to_be_bytes());
    out.extend_from_slice(&scope.round.as_i64().to_be_bytes());
    out.extend_from_slice(&scope.value_id.0);
    out.extend_from_slice(scope.validator_address.0.as_bytes());
    out
}

fn proof_bytes(public_key: &[u8], peer_id: &[u8]) -> Vec<u8> {
    ValidatorProof::<LedgerContext>::signing_bytes(public_key, peer_id)
}

#[async_trait]
impl Signer<LedgerContext> for HotkeySigner {
    async fn sign_vote(
        &self,
        vote: Vote,
    ) -> Result<SignedMessage<LedgerContext, Vote>, SigningError> {
        Ok(self.sign_vote_now(vote))
    }

    async fn sign_proposal(
        &self,
        proposal: Proposal,
    ) -> Result<SignedMessage<LedgerContext, Proposal>, SigningError> {
        let sig = self
            .key
            .sign(&proposal_signing_bytes(&self.chain_id, &proposal));
        Ok(SignedMessage::new(proposal, Signature(sig)))
    }

    async fn sign_vote_extension(
        &self,
        scope: VoteExtensionScope<LedgerContext>,
        extension: (),
    ) -> Result<SignedMessage<LedgerContext, ()>, SigningError> {
        let sig = self.key.sign(&extension_bytes(&self.chain_id, &scope));
        Ok(SignedMessage::new(extension, Signature(sig)))
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<LedgerContext>, SigningError> {
        let sig = self.key.sign(&proof_bytes(&public_key, &peer_id));
        Ok(ValidatorProof::new(public_key, peer_id, Signature(sig)))
    }
}

/// Verifies consensus messages against validators' hotkeys.
pub struct HotkeyVerifier {
    chain_id: String,
}

impl HotkeyVerifier {
    /// A verifier for `chain_id`.
    pub fn new(chain_id: impl Into<String>) -> Self {
        Self {
            chain_id: chain_id.into(),
        }
    }
}

fn result(ok: bool) -> Result<VerificationResult, SigningError> {
    Ok(VerificationResult::from_bool(ok))
}

#[async_trait]
impl Verifier<LedgerContext> for HotkeyVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &Signature,
        public_key: &PublicKey,
    ) -> Result<VerificationResult, SigningError> {
        let bytes = vote_signing_bytes(&self.chain_id, vote);
        result(public_key.verify(&bytes, &signature.0).is_ok())
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &Signature,
        public_key: &PublicKey,
    ) -> Result<VerificationResult, SigningError> {
        let bytes = proposal_signing_bytes(&self.chain_id, proposal);
        result(public_key.verify(&bytes, &signature.0).is_ok())
    }

    async fn verify_signed_vote_extension(
        &self,
        scope: &VoteExtensionScope<LedgerContext>,
        _extension: &(),
        signature: &Signature,
        public_key: &PublicKey,
    ) -> Result<VerificationResult, SigningError> {
        let bytes = extension_bytes(&self.chain_id, scope);
        result(public_key.verify(&bytes, &signature.0).is_ok())
    }

    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<LedgerContext>,
    ) -> Result<VerificationResult, SigningError> {
        let Ok(key) = <[u8; 32]>::try_from(proof.public_key.as_slice()) else {
            return result(false);
        };
        let Ok(key) = PublicKey::from_bytes(key) else {
            return result(false);
        };
        let bytes = proof_bytes(&proof.public_key, &proof.peer_id);
        result(key.verify(&bytes, &proof.signature.0).is_ok())
    }
}
