//! The ledger state machine: pure transitions from a state and a signed transaction to the
//! rows it writes.
//!
//! [`apply`] reads only the [`LedgerState`] it is given, the [`Rules`] and the [`BlockCtx`]:
//! no clock, no database, no randomness. [`execute`] absorbs the write set, computes the
//! state root and chains the transaction to its predecessor by a hash over its position, the
//! block time, the state root and the signed envelope. The same transactions in the same
//! order give the same state root on every machine; [`replay`] proves it from genesis.
//!
//! Each transaction kind lives in its own module under `tx/`.

use hallmark_consensus::Slashing;
use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::{sha256, Envelope, PublicKey, Signed};
use hallmark_store::{AccountRow, LedgerTxRow, NeuronRow, SlashRow};
use serde::Serialize;

use crate::params::{Genesis, LedgerParams};
use crate::state::{LedgerState, WriteSet};
use crate::tx;
use crate::types::{LedgerTx, Role, Tier, TxReceipt};
use crate::LedgerError;

/// What every replica agrees on before executing: the chain id and the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub chain_id: String,
    pub params: LedgerParams,
}

/// The largest nonce a transaction may carry (2^63 − 1: stores keep signed 64-bit integers).
pub const MAX_NONCE: u64 = i64::MAX as u64;

/// Where a transaction executes: the block's height, the hash it builds on and its time.
/// Time comes only from here, and it is hashed into every transaction's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockCtx {
    pub height: u64,
    pub prev_hash: String,
    pub time_ms: i64,
}

/// A transition under way: the state it reads, the rules, the block and the signer.
pub(crate) struct Transition<'a> {
    pub state: &'a LedgerState,
    pub rules: &'a Rules,
    pub ctx: &'a BlockCtx,
    pub signer: PublicKey,
    pub signer_addr: String,
    /// The sequence number this transaction gets.
    pub seq: u64,
    pub envelope: &'a Envelope,
}

/// The link every transaction's hash is taken over.
#[derive(Serialize, schemars::JsonSchema)]
struct ChainLink<'a> {
    v: u32,
    seq: u64,
    prev_hash: &'a str,
    time_ms: i64,
    state_root: &'a str,
    envelope: &'a Envelope,
}

/// The hash that chains transaction `seq` to its predecessor.
pub fn link_hash(
    seq: u64,
    prev_hash: &str,
    time_ms: i64,
    state_root: &str,
    envelope: &Envelope,
) -> Result<String, LedgerError> {
    let link = ChainLink {
        v: 2,
        seq,
        prev_hash,
        time_ms,
        state_root,
        envelope,
    };
    let bytes = to_canonical_bytes(&link).map_err(|e| LedgerError::Invalid(e.to_string()))?;
    Ok(sha256(&bytes).to_hex())
}

/// The pure transition: checks `signed` against `state` and returns every row it writes,
/// including its transaction row without `tx_hash` and `state_root` (which [`execute`] fills
/// in). Refusals change nothing.
pub fn apply(
    state: &LedgerState,
    rules: &Rules,
    signed: &Signed<LedgerTx>,
    ctx: &BlockCtx,
) -> Result<WriteSet, LedgerError> {
    let verified = signed
        .verify()
        .map_err(|e| LedgerError::BadSignature(e.to_string()))?;
    let tx = verified.payload;
    if tx.chain_id != rules.chain_id {
        return Err(LedgerError::WrongChain {
            expected: rules.chain_id.clone(),
            found: tx.chain_id,
        });
    }
    if ctx.time_ms < state.time_ms() {
        return Err(LedgerError::Invalid(format!(
            "block time {} is before the last block's {}",
            ctx.time_ms,
            state.time_ms()
        )));
    }
    let signer_addr = verified.signer.to_ss58();
    let mut account = state.account(&signer_addr).cloned().unwrap_or(AccountRow {
        address: signer_addr.clone(),
        balance: 0,
        nonce: 0,
    });
    // Every stored integer fits a signed 64-bit column; a nonce past that is refused here,
    // as a bad transaction, instead of failing in the store.
    if tx.nonce > MAX_NONCE {
        return Err(LedgerError::Invalid(format!(
            "nonce {} is above the largest nonce, {MAX_NONCE}",
            tx.nonce
        )));
    }
    if tx.nonce <= account.nonce {
        return Err(LedgerError::StaleNonce {
            nonce: tx.nonce,
            last: account.nonce,
        });
    }
    let t = Transition {
        state,
        rules,
        ctx,
        signer: verified.signer,
        signer_addr: signer_addr.clone(),
        seq: state.next_seq(),
        envelope: signed.envelope(),
    };
    let mut ws = WriteSet::default();
    tx::dispatch(&t, &tx.body, &mut ws, &mut account)?;
    crate::voting::settle(state, &rules.params, ctx, &mut ws);
    account.nonce = tx.nonce;
    ws.accounts.push(account);
    ws.tx = Some(LedgerTxRow {
        seq: t.seq,
        tx_hash: String::new(),
        prev_hash: state.head_hash().to_string(),
        signer: signer_addr,
        kind: tx.body.kind().into(),
        envelope: serde_json::to_string(signed.envelope())
            .map_err(|e| LedgerError::Invalid(e.to_string()))?,
        applied_at: ctx.time_ms / 1000,
        applied_ms: ctx.time_ms,
        state_root: String::new(),
    });
    Ok(ws)
}

/// Applies `signed` to `state` in place: the transition, the new state root and the link.
/// Returns the complete write set (for the store) and the receipt. On a refusal `state` is
/// unchanged.
pub fn execute(
    state: &mut LedgerState,
    rules: &Rules,
    signed: &Signed<LedgerTx>,
    ctx: &BlockCtx,
) -> Result<(WriteSet, TxReceipt), LedgerError> {
    let mut ws = apply(state, rules, signed, ctx)?;
    let Some(mut row) = ws.tx.take() else {
        return Err(LedgerError::Invalid(
            "a transition wrote no transaction".into(),
        ));
    };
    let leaf = signed
        .envelope()
        .canonical_bytes()
        .map_err(|e| LedgerError::Invalid(e.to_string()))?;
    state.begin_block(ctx.time_ms);
    state.absorb(&ws)?;
    let root = state.root_hex();
    let tx_hash = link_hash(
        row.seq,
        &row.prev_hash,
        ctx.time_ms,
        &root,
        signed.envelope(),
    )?;
    row.tx_hash = tx_hash.clone();
    row.state_root = root.clone();
    if let Some(c) = ws.commitment.as_mut() {
        // The commitment names the transaction that made it; its leaf does not include the
        // hash (which depends on the root), so the state keeps it beside.
        c.tx_hash = tx_hash.clone();
        if let Some(kept) = state
            .commitments
            .get_mut(&(c.validator.clone(), c.run_id.clone()))
        {
            kept.tx_hash = tx_hash.clone();
        }
    }
    let receipt = TxReceipt {
        seq: row.seq,
        tx_hash,
        prev_hash: row.prev_hash.clone(),
        time_ms: ctx.time_ms,
        state_root: root,
    };
    state.advance(row.seq, row.tx_hash.clone(), &leaf);
    ws.tx = Some(row);
    Ok((ws, receipt))
}

/// Re-executes stored transactions from genesis, checking each one's link and state root
/// against the recomputed ones. Returns the rebuilt state.
pub fn replay<'a>(
    genesis: &Genesis,
    rules: &Rules,
    rows: impl IntoIterator<Item = &'a LedgerTxRow>,
) -> Result<LedgerState, LedgerError> {
    let mut state = LedgerState::genesis(&genesis.balances)?;
    for row in rows {
        replay_one(&mut state, rules, row)?;
    }
    Ok(state)
}

/// Re-executes one stored transaction on `state` and checks it against the stored row.
pub fn replay_one(
    state: &mut LedgerState,
    rules: &Rules,
    row: &LedgerTxRow,
) -> Result<(), LedgerError> {
    let broken =
        |why: String| LedgerError::Invalid(format!("chain broken at seq {}: {why}", row.seq));
    if row.seq != state.next_seq() {
        return Err(broken(format!("expected seq {}", state.next_seq())));
    }
    if row.prev_hash != state.head_hash() {
        return Err(broken(
            "prev_hash does not match the previous transaction".into(),
        ));
    }
    let env: Envelope = serde_json::from_str(&row.envelope).map_err(|e| broken(e.to_string()))?;
    let signed = Signed::<LedgerTx>::from_envelope(env);
    let ctx = BlockCtx {
        height: row.seq,
        prev_hash: row.prev_hash.clone(),
        time_ms: row.applied_ms,
    };
    let (ws, _) = execute(state, rules, &signed, &ctx)
        .map_err(|e| broken(format!("re-execution refused it: {} ({e})", e.code())))?;
    let Some(again) = ws.tx else {
        return Err(broken("re-execution wrote no transaction".into()));
    };
    if again.state_root != row.state_root {
        return Err(broken(format!(
            "state root {} differs from the stored {}",
            again.state_root, row.state_root
        )));
    }
    if again.tx_hash != row.tx_hash {
        return Err(broken("tx_hash does not match its contents".into()));
    }
    Ok(())
}

impl<'a> Transition<'a> {
    /// The signer's neuron, or `not_registered`.
    pub fn signer_neuron(&self) -> Result<&'a NeuronRow, LedgerError> {
        self.state
            .neuron(&self.signer_addr)
            .ok_or_else(|| LedgerError::NotRegistered(self.signer_addr.clone()))
    }

    /// The signer's neuron if it has `role`: `not_registered` if it has none, `unauthorized`
    /// (naming what only that role `does`) if it has another.
    pub fn signer_as(&self, role: Role, does: &str) -> Result<&'a NeuronRow, LedgerError> {
        let me = self.signer_neuron()?;
        if me.role != role.as_str() {
            return Err(LedgerError::Unauthorized(format!(
                "{} is a {}, only {}s {does}",
                self.signer_addr,
                me.role,
                role.as_str()
            )));
        }
        Ok(me)
    }

    /// `hotkey`'s neuron if it is registered with `role`, else `not_registered` naming the
    /// role.
    pub fn registered_as(&self, hotkey: &str, role: Role) -> Result<&'a NeuronRow, LedgerError> {
        match self.state.neuron(hotkey) {
            Some(n) if n.role == role.as_str() => Ok(n),
            _ => Err(LedgerError::NotRegistered(format!(
                "{} {hotkey}",
                role.as_str()
            ))),
        }
    }

    /// The named tier, or a clear refusal listing the ones that exist.
    pub fn tier(&self, name: &str) -> Result<Tier, LedgerError> {
        let tiers = &self.rules.params.tiers;
        tiers.get(name).copied().ok_or_else(|| {
            LedgerError::Invalid(format!(
                "unknown tier {name:?}: this ledger has {}",
                tiers
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// Until when newly bonded stake stays locked (never earlier than an existing lock).
    pub fn lock_until(&self, current: i64) -> i64 {
        let lock = i64::try_from(self.rules.params.stake_lock_ms).unwrap_or(i64::MAX);
        current.max(self.ctx.time_ms.saturating_add(lock))
    }

    /// Adds `amount` to `to`'s public balance (the signer's own row when `to` is the signer).
    pub fn credit_public(
        &self,
        ws: &mut WriteSet,
        signer: &mut AccountRow,
        to: &str,
        amount: u64,
    ) -> Result<(), LedgerError> {
        let overflow = || LedgerError::Invalid(format!("the balance of {to} would overflow"));
        if to == signer.address {
            signer.balance = signer.balance.checked_add(amount).ok_or_else(overflow)?;
            return Ok(());
        }
        let mut row = self.state.account(to).cloned().unwrap_or(AccountRow {
            address: to.to_string(),
            balance: 0,
            nonce: 0,
        });
        row.balance = row.balance.checked_add(amount).ok_or_else(overflow)?;
        ws.accounts.push(row);
        Ok(())
    }

    /// Removes the configured fraction of each slashed hotkey's stake (at least 1 while it
    /// has any), once per hotkey, job and reason.
    pub fn apply_slashings(
        &self,
        ws: &mut WriteSet,
        job_id: &str,
        slashings: &[Slashing],
    ) -> Result<(), LedgerError> {
        for s in slashings {
            let hotkey = s.who.to_ss58();
            let reason = s.reason.as_str();
            if self.state.slashed(&hotkey, job_id, reason)
                || ws
                    .slashes
                    .iter()
                    .any(|x| x.hotkey == hotkey && x.job_id == job_id && x.reason == reason)
            {
                return Err(LedgerError::AlreadySlashed {
                    hotkey,
                    job_id: job_id.to_string(),
                    reason: reason.into(),
                });
            }
            // A neuron this transaction already wrote is read back from the write set.
            let written = ws
                .neurons
                .iter()
                .rev()
                .find(|n| n.hotkey == hotkey)
                .cloned();
            let Some(mut neuron) = written.or_else(|| self.state.neuron(&hotkey).cloned()) else {
                return Err(LedgerError::NotRegistered(hotkey));
            };
            let amount = slash_amount(neuron.stake, self.rules.params.slash_fraction_bps);
            neuron.stake -= amount;
            ws.neurons.push(neuron);
            ws.slashes.push(SlashRow {
                hotkey,
                job_id: job_id.to_string(),
                reason: reason.into(),
                amount,
                seq: self.seq,
            });
        }
        Ok(())
    }
}

/// Takes `amount` from a balance, or refuses.
pub(crate) fn debit(account: &mut AccountRow, amount: u64) -> Result<(), LedgerError> {
    if account.balance < amount {
        return Err(LedgerError::InsufficientBalance {
            balance: account.balance,
            needed: amount,
        });
    }
    account.balance -= amount;
    Ok(())
}

/// `bps` basis points of `stake` (at most all of it), and at least 1 while there is stake to
/// take and a fraction to take it by, so small stakes do not escape slashing by rounding.
pub(crate) fn slash_amount(stake: u64, bps: u64) -> u64 {
    let share = u128::from(stake) * u128::from(bps.min(10_000)) / 10_000;
    let floor = u64::from(stake > 0 && bps > 0);
    u64::try_from(share).unwrap_or(stake).max(floor)
}

/// Checks the worker's signature on its result and that the certificate is about exactly that
/// job and result; returns the result.
pub(crate) fn certified_result(
    certificate: &hallmark_consensus::VoteCertificate,
    result: &Signed<hallmark_consensus::JobResult>,
) -> Result<hallmark_consensus::JobResult, LedgerError> {
    let verified = result
        .verify()
        .map_err(|e| LedgerError::InvalidEvidence(format!("job result: {e}")))?;
    let r = verified.payload;
    if verified.signer != r.worker {
        return Err(LedgerError::InvalidEvidence(format!(
            "job result names worker {} but is signed by {}",
            r.worker, verified.signer
        )));
    }
    if r.job_id != certificate.job_id || r.result_digest != certificate.result_digest {
        return Err(LedgerError::InvalidEvidence(
            "the certificate is about another job or result than the worker's".into(),
        ));
    }
    Ok(r)
}
