//! One module per transaction kind. [`dispatch`] is the only place that matches on
//! [`TxBody`]; adding a kind is its variant, its module and one arm here.

mod archive;
mod axon;
mod build_info;
mod build_managers;
mod claim_payment;
mod close_epoch;
mod commit_scores;
mod heartbeat;
mod payment_key;
mod register;
mod set_weights;
mod settle_job;
mod slash_double_vote;
mod slash_equivocation;
mod stake;
mod transfer;
mod withdraw;

use hallmark_store::AccountRow;

use crate::machine::Transition;
use crate::state::WriteSet;
use crate::types::TxBody;
use crate::LedgerError;

/// Runs the transition for `body`. `account` is the signer's row, written after the call with
/// its new nonce; everything else goes into `ws`.
pub(crate) fn dispatch(
    t: &Transition<'_>,
    body: &TxBody,
    ws: &mut WriteSet,
    account: &mut AccountRow,
) -> Result<(), LedgerError> {
    match body {
        TxBody::Register {
            hotkey,
            role,
            stake,
        } => register::apply(t, ws, account, hotkey, *role, *stake),
        TxBody::ServeAxon { axon } => axon::apply(t, ws, axon),
        TxBody::SetWeights {
            lane,
            epoch,
            weights,
        } => set_weights::apply(t, ws, lane, *epoch, weights),
        TxBody::CommitScores { run_id, commitment } => {
            commit_scores::apply(t, ws, run_id, commitment)
        }
        TxBody::SettleJob {
            certificate,
            result,
        } => settle_job::apply(t, ws, certificate, result),
        TxBody::SlashEquivocation { evidence } => slash_equivocation::apply(t, ws, evidence),
        TxBody::SlashDoubleVote { evidence } => slash_double_vote::apply(t, ws, evidence),
        TxBody::Transfer { to, amount } => transfer::apply(t, ws, account, to, *amount),
        TxBody::Stake {
            hotkey,
            amount,
            tier,
        } => stake::apply_stake(t, ws, account, hotkey, *amount, tier),
        TxBody::Unstake { hotkey, amount } => stake::apply_unstake(t, ws, account, hotkey, *amount),
        TxBody::Heartbeat {} => heartbeat::apply(t, ws),
        TxBody::RegisterPaymentKey { pubkey, proof } => payment_key::apply(t, ws, pubkey, proof),
        TxBody::ClaimPayment {
            request,
            certificate,
            result,
            credit,
            proof,
            hint,
        } => claim_payment::apply(
            t,
            ws,
            claim_payment::Claim {
                request,
                certificate,
                result,
                credit,
                proof,
                hint: hint.as_ref(),
            },
        ),
        TxBody::Withdraw {
            amount,
            proof,
            hint,
        } => withdraw::apply(t, ws, account, *amount, proof, hint.as_ref()),
        TxBody::SetBuildManagers {
            version,
            managers,
            approvals,
        } => build_managers::apply(t, ws, *version, managers, approvals),
        TxBody::SetBuildInfo {
            wasm_sha256,
            recipe,
        } => build_info::apply(t, ws, wasm_sha256, recipe),
        TxBody::CommitArchive {
            lane,
            archive_sha256,
        } => archive::apply(t, ws, lane, archive_sha256),
        TxBody::CloseEpoch { lane, epoch } => close_epoch::apply(t, ws, lane, *epoch),
    }
}
