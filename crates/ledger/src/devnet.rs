//! The devnet ledger: one sequencer applies signed transactions in order, each chained to the
//! previous by hash, all persisted through hallmark-store.

use async_trait::async_trait;
use hallmark_core::canonical::to_canonical_bytes;
use hallmark_core::{sha256, PublicKey, Signed};
use hallmark_store::{AccountRow, LedgerCommit, LedgerTxRow, NeuronRow, Store, WeightsRow};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::types::{LedgerTx, Metagraph, Neuron, Role, TxBody, TxReceipt, ValidatorWeights};
use crate::{Ledger, LedgerError};

/// The hash the first transaction chains from.
const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The initial state: chain id and opening balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub chain_id: String,
    pub balances: Vec<(PublicKey, u64)>,
}

/// Rules the ledger enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerParams {
    pub min_validator_stake: u64,
    pub min_worker_stake: u64,
    /// Most weight entries one transaction may carry.
    pub max_weights: usize,
}

impl Default for LedgerParams {
    fn default() -> Self {
        Self {
            min_validator_stake: 1_000,
            min_worker_stake: 100,
            max_weights: 4096,
        }
    }
}

/// The single-sequencer devnet ledger.
pub struct DevnetLedger {
    store: Store,
    chain_id: String,
    params: LedgerParams,
    /// Serialises transaction application: one sequencer.
    sequencer: Mutex<()>,
}

#[derive(Serialize)]
struct ChainLink<'a> {
    seq: u64,
    prev_hash: &'a str,
    envelope: &'a hallmark_core::Envelope,
}

impl DevnetLedger {
    /// Opens the ledger in `store`, writing genesis on first start. A store whose genesis
    /// differs from `genesis` is refused rather than silently mixed.
    pub async fn open(
        store: Store,
        genesis: &Genesis,
        params: LedgerParams,
    ) -> Result<Self, LedgerError> {
        let genesis_hash =
            sha256(&to_canonical_bytes(genesis).map_err(|e| LedgerError::Invalid(e.to_string()))?)
                .to_hex();
        match store.kv_get("ledger.genesis").await? {
            Some(h) if h == genesis_hash => {}
            Some(h) => {
                return Err(LedgerError::Invalid(format!(
                    "this data directory holds a ledger with genesis {h}, not {genesis_hash}"
                )))
            }
            None => {
                let accounts = genesis
                    .balances
                    .iter()
                    .map(|(k, b)| AccountRow {
                        address: k.to_ss58(),
                        balance: *b,
                        nonce: 0,
                    })
                    .collect();
                store
                    .commit_ledger(&LedgerCommit {
                        accounts,
                        ..Default::default()
                    })
                    .await?;
                store.kv_put("ledger.genesis", &genesis_hash).await?;
            }
        }
        Ok(Self {
            store,
            chain_id: genesis.chain_id.clone(),
            params,
            sequencer: Mutex::new(()),
        })
    }

    /// The chain id transactions must carry.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    async fn neuron_row(&self, hotkey: &PublicKey) -> Result<Option<NeuronRow>, LedgerError> {
        let key = hotkey.to_ss58();
        Ok(self
            .store
            .neurons()
            .await?
            .into_iter()
            .find(|n| n.hotkey == key))
    }

    async fn apply(&self, signed: &Signed<LedgerTx>) -> Result<TxReceipt, LedgerError> {
        let verified = signed
            .verify()
            .map_err(|e| LedgerError::BadSignature(e.to_string()))?;
        let tx = verified.payload;
        let signer = verified.signer;
        if tx.chain_id != self.chain_id {
            return Err(LedgerError::WrongChain {
                expected: self.chain_id.clone(),
                found: tx.chain_id,
            });
        }
        let signer_addr = signer.to_ss58();
        let mut account = self
            .store
            .account(&signer_addr)
            .await?
            .unwrap_or(AccountRow {
                address: signer_addr.clone(),
                balance: 0,
                nonce: 0,
            });
        if tx.nonce <= account.nonce {
            return Err(LedgerError::StaleNonce {
                nonce: tx.nonce,
                last: account.nonce,
            });
        }
        let (head_seq, prev_hash) = self
            .store
            .ledger_head()
            .await?
            .unwrap_or((0, GENESIS_PREV.to_string()));
        let seq = head_seq + 1;
        let mut commit = LedgerCommit::default();
        match &tx.body {
            TxBody::Register {
                hotkey,
                role,
                stake,
            } => {
                let minimum = match role {
                    Role::Validator => self.params.min_validator_stake,
                    Role::Worker => self.params.min_worker_stake,
                };
                if *stake < minimum {
                    return Err(LedgerError::StakeBelowMinimum {
                        stake: *stake,
                        minimum,
                        role: role.as_str().into(),
                    });
                }
                if let Some(existing) = self.neuron_row(hotkey).await? {
                    if existing.coldkey != signer_addr {
                        return Err(LedgerError::AlreadyRegistered(hotkey.to_ss58()));
                    }
                    if existing.role != role.as_str() {
                        return Err(LedgerError::Invalid(format!(
                            "{hotkey} is registered as {}, not {}",
                            existing.role,
                            role.as_str()
                        )));
                    }
                    // Re-registration by the owner tops up the stake if asked for more.
                    let extra = stake.saturating_sub(existing.stake);
                    if account.balance < extra {
                        return Err(LedgerError::InsufficientBalance {
                            balance: account.balance,
                            needed: extra,
                        });
                    }
                    account.balance -= extra;
                    commit.neurons.push(NeuronRow {
                        stake: existing.stake + extra,
                        ..existing
                    });
                } else {
                    if account.balance < *stake {
                        return Err(LedgerError::InsufficientBalance {
                            balance: account.balance,
                            needed: *stake,
                        });
                    }
                    account.balance -= *stake;
                    commit.neurons.push(NeuronRow {
                        uid: 0,
                        hotkey: hotkey.to_ss58(),
                        coldkey: signer_addr.clone(),
                        role: role.as_str().into(),
                        stake: *stake,
                        axon: None,
                        registered_seq: seq,
                    });
                }
            }
            TxBody::ServeAxon { axon } => {
                let Some(existing) = self.neuron_row(&signer).await? else {
                    return Err(LedgerError::NotRegistered(signer_addr));
                };
                validate_axon(axon)?;
                commit.neurons.push(NeuronRow {
                    axon: Some(axon.clone()),
                    ..existing
                });
            }
            TxBody::SetWeights { epoch, weights } => {
                let neurons = self.store.neurons().await?;
                let Some(me) = neurons.iter().find(|n| n.hotkey == signer_addr) else {
                    return Err(LedgerError::NotRegistered(signer_addr));
                };
                if me.role != Role::Validator.as_str() {
                    return Err(LedgerError::Unauthorized(format!(
                        "{signer_addr} is a {}, only validators set weights",
                        me.role
                    )));
                }
                if weights.len() > self.params.max_weights {
                    return Err(LedgerError::Invalid(format!(
                        "{} weights, at most {}",
                        weights.len(),
                        self.params.max_weights
                    )));
                }
                for w in weights {
                    let key = w.hotkey.to_ss58();
                    if !neurons
                        .iter()
                        .any(|n| n.hotkey == key && n.role == Role::Worker.as_str())
                    {
                        return Err(LedgerError::NotRegistered(format!("worker {key}")));
                    }
                }
                commit.weights.push(WeightsRow {
                    epoch: *epoch,
                    validator: signer_addr.clone(),
                    weights: serde_json::to_string(weights)
                        .map_err(|e| LedgerError::Invalid(e.to_string()))?,
                    seq,
                });
            }
        }
        account.nonce = tx.nonce;
        commit.accounts.push(account);
        let tx_hash = link_hash(seq, &prev_hash, signed.envelope())?;
        commit.tx = Some(LedgerTxRow {
            seq,
            tx_hash: tx_hash.clone(),
            prev_hash: prev_hash.clone(),
            signer: signer_addr,
            kind: tx.body.kind().into(),
            envelope: serde_json::to_string(signed.envelope())
                .map_err(|e| LedgerError::Invalid(e.to_string()))?,
            applied_at: hallmark_core::time::now_unix(),
        });
        self.store.commit_ledger(&commit).await?;
        Ok(TxReceipt {
            seq,
            tx_hash,
            prev_hash,
        })
    }

    /// Re-checks the whole chain: every link's hash and every envelope's signature.
    pub async fn audit_chain(&self) -> Result<u64, LedgerError> {
        let mut prev = GENESIS_PREV.to_string();
        let mut next_seq = 1;
        loop {
            let rows = self.store.ledger_txs(next_seq, 512).await?;
            if rows.is_empty() {
                return Ok(next_seq - 1);
            }
            for row in &rows {
                prev = check_link(&prev, next_seq, row)?;
                next_seq += 1;
            }
        }
    }
}

/// The hash that chains transaction `seq` to its predecessor.
fn link_hash(
    seq: u64,
    prev_hash: &str,
    envelope: &hallmark_core::Envelope,
) -> Result<String, LedgerError> {
    let link = ChainLink {
        seq,
        prev_hash,
        envelope,
    };
    let bytes = to_canonical_bytes(&link).map_err(|e| LedgerError::Invalid(e.to_string()))?;
    Ok(sha256(&bytes).to_hex())
}

/// Checks that `row` is transaction `seq`, links to `prev`, carries a valid signature and its
/// own correct hash; returns that hash for the next link.
fn check_link(prev: &str, seq: u64, row: &LedgerTxRow) -> Result<String, LedgerError> {
    let broken =
        |why: &str| LedgerError::Invalid(format!("chain broken at seq {}: {why}", row.seq));
    if row.seq != seq {
        return Err(broken(&format!("expected seq {seq}")));
    }
    let env: hallmark_core::Envelope =
        serde_json::from_str(&row.envelope).map_err(|e| broken(&e.to_string()))?;
    Signed::<LedgerTx>::from_envelope(env.clone())
        .verify()
        .map_err(|e| LedgerError::BadSignature(format!("seq {}: {e}", row.seq)))?;
    if row.prev_hash != prev {
        return Err(broken("prev_hash does not match the previous transaction"));
    }
    let hash = link_hash(row.seq, prev, &env)?;
    if row.tx_hash != hash {
        return Err(broken("tx_hash does not match its contents"));
    }
    Ok(hash)
}

fn validate_axon(axon: &str) -> Result<(), LedgerError> {
    let ok = (axon.starts_with("http://") || axon.starts_with("https://"))
        && axon.len() <= 256
        && !axon.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(LedgerError::Invalid(format!(
            "axon {axon:?} must be an http(s) URL without spaces, at most 256 characters"
        )))
    }
}

fn neuron_from_row(row: NeuronRow) -> Result<Neuron, LedgerError> {
    let corrupt = |what: &str| {
        LedgerError::Store(hallmark_store::StoreError::Corrupt(format!(
            "neuron {}: bad {what}",
            row.uid
        )))
    };
    Ok(Neuron {
        uid: row.uid,
        hotkey: row.hotkey.parse().map_err(|_| corrupt("hotkey"))?,
        coldkey: row.coldkey.parse().map_err(|_| corrupt("coldkey"))?,
        role: Role::parse(&row.role).ok_or_else(|| corrupt("role"))?,
        stake: row.stake,
        axon: row.axon,
    })
}

#[async_trait]
impl Ledger for DevnetLedger {
    async fn submit(&self, tx: Signed<LedgerTx>) -> Result<TxReceipt, LedgerError> {
        let _turn = self.sequencer.lock().await;
        self.apply(&tx).await
    }

    async fn metagraph(&self) -> Result<Metagraph, LedgerError> {
        let neurons = self
            .store
            .neurons()
            .await?
            .into_iter()
            .map(neuron_from_row)
            .collect::<Result<_, _>>()?;
        Ok(Metagraph { neurons })
    }

    async fn weights(&self, epoch: u64) -> Result<Vec<ValidatorWeights>, LedgerError> {
        self.store
            .weights(epoch)
            .await?
            .into_iter()
            .map(|w| {
                Ok(ValidatorWeights {
                    epoch: w.epoch,
                    validator: w.validator.parse().map_err(|_| {
                        LedgerError::Invalid(format!(
                            "stored validator {} is not a key",
                            w.validator
                        ))
                    })?,
                    weights: serde_json::from_str(&w.weights)
                        .map_err(|e| LedgerError::Invalid(e.to_string()))?,
                    seq: w.seq,
                })
            })
            .collect()
    }

    async fn balance(&self, account: &PublicKey) -> Result<(u64, u64), LedgerError> {
        Ok(self
            .store
            .account(&account.to_ss58())
            .await?
            .map(|a| (a.balance, a.nonce))
            .unwrap_or((0, 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::WeightEntry;
    use hallmark_core::Keypair;

    struct Net {
        ledger: DevnetLedger,
        cold: Keypair,
        val: Keypair,
        work: Keypair,
        nonce: std::sync::atomic::AtomicU64,
    }

    impl Net {
        fn tx(&self, key: &Keypair, body: TxBody) -> Signed<LedgerTx> {
            let nonce = self.nonce.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Signed::sign(
                &LedgerTx {
                    chain_id: "test".into(),
                    nonce,
                    body,
                },
                key,
            )
            .unwrap()
        }
    }

    async fn net(store: Store) -> Net {
        let cold = Keypair::from_seed(&[9; 32]);
        let genesis = Genesis {
            chain_id: "test".into(),
            balances: vec![(cold.public(), 10_000)],
        };
        Net {
            ledger: DevnetLedger::open(store, &genesis, LedgerParams::default())
                .await
                .unwrap(),
            cold,
            val: Keypair::from_seed(&[1; 32]),
            work: Keypair::from_seed(&[2; 32]),
            nonce: 1.into(),
        }
    }

    #[tokio::test]
    async fn register_serve_weights_and_audit() {
        let n = net(Store::open_url("sqlite::memory:").await.unwrap()).await;
        let l = &n.ledger;
        l.submit(n.tx(
            &n.cold,
            TxBody::Register {
                hotkey: n.val.public(),
                role: Role::Validator,
                stake: 2_000,
            },
        ))
        .await
        .unwrap();
        l.submit(n.tx(
            &n.cold,
            TxBody::Register {
                hotkey: n.work.public(),
                role: Role::Worker,
                stake: 100,
            },
        ))
        .await
        .unwrap();
        l.submit(n.tx(
            &n.val,
            TxBody::ServeAxon {
                axon: "http://127.0.0.1:9".into(),
            },
        ))
        .await
        .unwrap();
        let mg = l.metagraph().await.unwrap();
        assert_eq!(mg.validators().count(), 1);
        assert_eq!(mg.validator_stake(), 2_000);
        assert_eq!(
            mg.neuron(&n.val.public()).unwrap().axon.as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(l.balance(&n.cold.public()).await.unwrap().0, 7_900);

        let w = vec![WeightEntry {
            hotkey: n.work.public(),
            weight: u16::MAX,
        }];
        l.submit(n.tx(
            &n.val,
            TxBody::SetWeights {
                epoch: 1,
                weights: w.clone(),
            },
        ))
        .await
        .unwrap();
        assert_eq!(l.weights(1).await.unwrap()[0].weights, w);
        assert_eq!(l.audit_chain().await.unwrap(), 4);
    }

    #[tokio::test]
    async fn refusals() {
        let n = net(Store::open_url("sqlite::memory:").await.unwrap()).await;
        let l = &n.ledger;
        let reg = n.tx(
            &n.cold,
            TxBody::Register {
                hotkey: n.val.public(),
                role: Role::Validator,
                stake: 2_000,
            },
        );
        l.submit(reg.clone()).await.unwrap();
        // Replay of the same signed transaction.
        assert_eq!(l.submit(reg).await.unwrap_err().code(), "stale_nonce");
        // Too little stake, too little balance.
        let e = l
            .submit(n.tx(
                &n.cold,
                TxBody::Register {
                    hotkey: n.work.public(),
                    role: Role::Validator,
                    stake: 10,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "stake_below_minimum");
        let e = l
            .submit(n.tx(
                &n.cold,
                TxBody::Register {
                    hotkey: n.work.public(),
                    role: Role::Worker,
                    stake: 1_000_000,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "insufficient_balance");
        // Someone else's coldkey cannot take over a registered hotkey.
        let thief = Keypair::generate();
        let e = l
            .submit(n.tx(
                &thief,
                TxBody::Register {
                    hotkey: n.val.public(),
                    role: Role::Validator,
                    stake: 1_000,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "already_registered");
        // Unregistered hotkeys can't serve or set weights; workers can't set weights.
        let e = l
            .submit(n.tx(
                &n.work,
                TxBody::ServeAxon {
                    axon: "http://x".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "not_registered");
        l.submit(n.tx(
            &n.cold,
            TxBody::Register {
                hotkey: n.work.public(),
                role: Role::Worker,
                stake: 100,
            },
        ))
        .await
        .unwrap();
        let e = l
            .submit(n.tx(
                &n.work,
                TxBody::SetWeights {
                    epoch: 1,
                    weights: vec![],
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "unauthorized");
        let e = l
            .submit(n.tx(
                &n.val,
                TxBody::ServeAxon {
                    axon: "ftp://x".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_transaction");
        // Wrong chain.
        let other = Signed::sign(
            &LedgerTx {
                chain_id: "main".into(),
                nonce: 999,
                body: TxBody::ServeAxon {
                    axon: "http://x".into(),
                },
            },
            &n.val,
        )
        .unwrap();
        assert_eq!(l.submit(other).await.unwrap_err().code(), "wrong_chain");
        // Tampered envelope.
        let good = n.tx(
            &n.val,
            TxBody::ServeAxon {
                axon: "http://x".into(),
            },
        );
        let mut env = good.envelope().clone();
        env.signatures[0].keyid = n.work.public().to_ss58();
        assert_eq!(
            l.submit(Signed::from_envelope(env))
                .await
                .unwrap_err()
                .code(),
            "bad_signature"
        );
        // Nothing that failed left a trace in the chain.
        assert_eq!(l.audit_chain().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn audit_catches_every_kind_of_tampering() {
        let store = Store::open_url("sqlite::memory:").await.unwrap();
        let n = net(store.clone()).await;
        for hotkey in [n.val.public(), n.work.public()] {
            let body = TxBody::Register {
                hotkey,
                role: Role::Worker,
                stake: 100,
            };
            n.ledger.submit(n.tx(&n.cold, body)).await.unwrap();
        }
        let serve = TxBody::ServeAxon {
            axon: "http://x".into(),
        };
        n.ledger.submit(n.tx(&n.val, serve)).await.unwrap();
        assert_eq!(n.ledger.audit_chain().await.unwrap(), 3);
        let rows = store.ledger_txs(1, 100).await.unwrap();
        let audit = |rows: &[LedgerTxRow]| -> Result<(), LedgerError> {
            let mut prev = GENESIS_PREV.to_string();
            for (i, row) in rows.iter().enumerate() {
                prev = check_link(&prev, i as u64 + 1, row)?;
            }
            Ok(())
        };
        audit(&rows).unwrap();

        // Another validly signed transaction swapped into the middle.
        let mut t = rows.clone();
        t[1].envelope = rows[2].envelope.clone();
        assert!(audit(&t).is_err());
        // A payload edited after signing.
        let mut t = rows.clone();
        t[1].envelope = t[1]
            .envelope
            .replacen("\"payload\":\"", "\"payload\":\"e30", 1);
        assert_ne!(t[1].envelope, rows[1].envelope);
        assert_eq!(audit(&t).unwrap_err().code(), "bad_signature");
        // A rewritten hash, a broken back-link, a removed transaction, reordering.
        let mut t = rows.clone();
        t[0].tx_hash = "00".repeat(32);
        assert!(audit(&t).is_err());
        let mut t = rows.clone();
        t[2].prev_hash = rows[0].tx_hash.clone();
        assert!(audit(&t).is_err());
        let mut t = rows.clone();
        t.remove(1);
        assert!(audit(&t).is_err());
        let mut t = rows.clone();
        t.swap(0, 1);
        assert!(audit(&t).is_err());
    }

    #[tokio::test]
    async fn persists_and_refuses_other_genesis() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        {
            let n = net(Store::open(&path).await.unwrap()).await;
            n.ledger
                .submit(n.tx(
                    &n.cold,
                    TxBody::Register {
                        hotkey: n.val.public(),
                        role: Role::Validator,
                        stake: 2_000,
                    },
                ))
                .await
                .unwrap();
        }
        let n = net(Store::open(&path).await.unwrap()).await;
        assert_eq!(n.ledger.metagraph().await.unwrap().neurons.len(), 1);
        let other = Genesis {
            chain_id: "other".into(),
            balances: vec![],
        };
        assert!(DevnetLedger::open(
            Store::open(&path).await.unwrap(),
            &other,
            LedgerParams::default()
        )
        .await
        .is_err());
    }
}
