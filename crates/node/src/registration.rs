//! How a node joins the network: register its hotkey with its coldkey's stake, then announce
//! its axon. Idempotent, so a restarted node simply re-announces its new address.

use std::time::Duration;

use hallmark_core::{Keypair, Signed};
use hallmark_ledger::{Ledger, LedgerError, LedgerTx, Role, TxBody, TxReceipt};

use crate::http_ledger::HttpLedger;

/// Signs and submits `body` from `key` with a nonce above the account's last one. Several
/// processes may sign with one key (a devnet coldkey registering many hotkeys), so a
/// `stale_nonce` refusal is retried with a fresh nonce a few times.
pub async fn submit_tx(
    ledger: &HttpLedger,
    chain_id: &str,
    key: &Keypair,
    body: TxBody,
) -> Result<TxReceipt, LedgerError> {
    let mut attempt = 0;
    loop {
        let (_, last) = ledger.balance(&key.public()).await?;
        let nonce = (hallmark_core::time::now_unix_ms().max(0) as u64).max(last + 1);
        let tx = LedgerTx {
            chain_id: chain_id.to_string(),
            nonce,
            body: body.clone(),
        };
        let signed = Signed::sign(&tx, key).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        match ledger.submit(signed).await {
            Err(e) if e.code() == "stale_nonce" && attempt < 8 => {
                attempt += 1;
                let jitter = u64::from(key.public().as_bytes()[0]) % 20;
                tokio::time::sleep(Duration::from_millis(10 + jitter + 10 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// Waits for the ledger to answer (it may still be starting), up to `patience`.
pub async fn wait_for_ledger(
    ledger: &HttpLedger,
    patience: Duration,
) -> Result<String, LedgerError> {
    let start = std::time::Instant::now();
    loop {
        match ledger.chain_id().await {
            Ok(id) => return Ok(id),
            Err(e) if start.elapsed() >= patience => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Registers `hotkey` (if needed) with `stake` from `coldkey`, then serves `axon`. Without a
/// coldkey the hotkey must already be registered (a wallet registered it with
/// `hallmark worker register`, keeping the coldkey off the node).
pub async fn join(
    ledger: &HttpLedger,
    coldkey: Option<&Keypair>,
    hotkey: &Keypair,
    role: Role,
    stake: u64,
    axon: &str,
) -> Result<(), LedgerError> {
    let chain_id = wait_for_ledger(ledger, Duration::from_secs(30)).await?;
    let mg = ledger.metagraph().await?;
    let needs_register = match mg.neuron(&hotkey.public()) {
        None => true,
        Some(n) => n.stake < stake,
    };
    if needs_register {
        let Some(coldkey) = coldkey else {
            return Err(LedgerError::NotRegistered(format!(
                "{} (with at least {stake} stake); register it first (hallmark worker register) or set network.coldkey_file",
                hotkey.public()
            )));
        };
        submit_tx(
            ledger,
            &chain_id,
            coldkey,
            TxBody::Register {
                hotkey: hotkey.public(),
                role,
                stake,
            },
        )
        .await?;
    }
    submit_tx(
        ledger,
        &chain_id,
        hotkey,
        TxBody::ServeAxon {
            axon: axon.to_string(),
        },
    )
    .await?;
    if role == Role::Validator {
        let mg = ledger.metagraph().await?;
        if let Some(n) = mg.neuron(&hotkey.public()) {
            if n.voting_stake < n.stake {
                tracing::warn!(
                    hotkey = %hotkey.public(),
                    stake = n.stake,
                    voting_stake = n.voting_stake,
                    "stake bonded this stake epoch counts for votes from the next boundary ([ledger] stake_epoch_secs; genesis_validators count at once)"
                );
            }
        }
    }
    Ok(())
}

/// Sends a `Heartbeat` from `hotkey` every `every` until `shutdown`, so the ledger keeps the
/// worker active (a worker silent for the configured epochs gets no jobs). A failed beat is
/// logged and retried at the next tick.
pub async fn heartbeat_loop(
    ledger: HttpLedger,
    chain_id: String,
    hotkey: Keypair,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        match submit_tx(&ledger, &chain_id, &hotkey, TxBody::Heartbeat {}).await {
            Ok(r) => tracing::debug!(seq = r.seq, "heartbeat"),
            Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying next tick"),
        }
    }
}

/// The chain id, and how often a worker beats: half a heartbeat epoch (at least a second), so
/// one lost beat never makes it inactive.
pub async fn heartbeat_schedule(ledger: &HttpLedger) -> Result<(String, Duration), LedgerError> {
    let info = ledger.info().await?;
    let epoch_ms = info.params.map_or(30_000, |p| p.heartbeat_epoch_ms);
    Ok((
        info.chain_id,
        Duration::from_millis((epoch_ms / 2).max(1_000)),
    ))
}
