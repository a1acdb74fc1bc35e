//! Staking (tiers, locks, heartbeats), transfers, and private proof-gated payments on the
//! devnet ledger, through its public API only: every refusal the issue names is exercised.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hallmark_confidential::{AeKey, CreditProof, ElGamalSecretKey, PubkeyProof, WithdrawalProof};
use hallmark_consensus::{JobResult, JobVote, VoteCertificate, VoteOutcome};
use hallmark_core::{Envelope, Keypair, Signed, SignedPayload};
use hallmark_ledger::payments::{
    credit_context, payment_key_context, payment_nullifier, withdrawal_context,
};
use hallmark_ledger::{DevnetLedger, Genesis, Ledger, LedgerParams, LedgerTx, Role, TxBody};
use hallmark_store::testing::TestDb;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};

const CHAIN: &str = "test";

struct Net {
    ledger: DevnetLedger,
    cold: Keypair,
    nonce: AtomicU64,
}

impl Net {
    async fn new(db: &TestDb, params: LedgerParams) -> Self {
        let store = db.open().await.unwrap();
        let cold = Keypair::from_seed(&[9; 32]);
        let genesis = Genesis {
            chain_id: CHAIN.into(),
            balances: vec![(cold.public(), 100_000)],
        };
        let ledger = DevnetLedger::open(store, &genesis, params, Keypair::from_seed(&[42; 32]))
            .await
            .unwrap();
        Self {
            ledger,
            cold,
            nonce: 1.into(),
        }
    }

    async fn send(&self, key: &Keypair, body: TxBody) -> Result<u64, hallmark_ledger::LedgerError> {
        let tx = LedgerTx {
            chain_id: CHAIN.into(),
            nonce: self.nonce.fetch_add(1, Ordering::SeqCst),
            body,
        };
        let signed = Signed::sign(&tx, key).unwrap();
        self.ledger.submit(signed).await.map(|r| r.seq)
    }

    async fn balance(&self, key: &Keypair) -> u64 {
        self.ledger.balance(&key.public()).await.unwrap().0
    }
}

fn code(r: Result<u64, hallmark_ledger::LedgerError>) -> String {
    match r {
        Ok(seq) => format!("applied as {seq}"),
        Err(e) => e.code().to_string(),
    }
}

#[tokio::test]
async fn transfers_tiers_locks_and_heartbeats() {
    for db in TestDb::all().unwrap() {
        let params = LedgerParams {
            stake_lock_ms: 400,
            heartbeat_epoch_ms: 300,
            inactive_after_epochs: 1,
            ..LedgerParams::default()
        };
        let net = Net::new(&db, params).await;
        let alice = Keypair::from_seed(&[1; 32]);
        let worker = Keypair::from_seed(&[2; 32]);

        // Transfers: checked amounts, no self-transfer.
        net.send(
            &net.cold,
            TxBody::Transfer {
                to: alice.public(),
                amount: 1_000,
            },
        )
        .await
        .unwrap();
        assert_eq!(net.balance(&alice).await, 1_000);
        assert_eq!(net.balance(&net.cold).await, 99_000);
        let over = net
            .send(
                &alice,
                TxBody::Transfer {
                    to: net.cold.public(),
                    amount: 1_001,
                },
            )
            .await;
        assert_eq!(code(over), "insufficient_balance");
        let zero = net
            .send(
                &alice,
                TxBody::Transfer {
                    to: net.cold.public(),
                    amount: 0,
                },
            )
            .await;
        assert_eq!(code(zero), "invalid_transaction");
        let own = net
            .send(
                &alice,
                TxBody::Transfer {
                    to: alice.public(),
                    amount: 1,
                },
            )
            .await;
        assert_eq!(code(own), "invalid_transaction");

        // Stake below the tier's minimum: registration refused until there is enough.
        let stake = |amount, tier: &str| TxBody::Stake {
            hotkey: worker.public(),
            amount,
            tier: tier.into(),
        };
        net.send(&alice, stake(50, "cpu")).await.unwrap();
        let register = TxBody::Register {
            hotkey: worker.public(),
            role: Role::Worker,
            stake: 0,
        };
        assert_eq!(
            code(net.send(&alice, register.clone()).await),
            "stake_below_minimum"
        );
        assert_eq!(
            code(net.send(&alice, stake(10, "tpu")).await),
            "invalid_transaction"
        );
        net.send(&alice, stake(60, "cpu")).await.unwrap();
        net.send(&alice, register.clone()).await.unwrap();
        assert_eq!(net.balance(&alice).await, 890);
        let info = net.ledger.stake(&worker.public()).await.unwrap().unwrap();
        assert_eq!(
            (info.staked, info.pending, info.tier.as_str()),
            (110, 0, "cpu")
        );
        assert_eq!(info.role, Some(Role::Worker));
        // A worker cannot move into the validator tier; another coldkey cannot stake it.
        assert_eq!(
            code(net.send(&alice, stake(10, "validator")).await),
            "invalid_transaction"
        );
        let bob = Keypair::from_seed(&[3; 32]);
        net.send(
            &net.cold,
            TxBody::Transfer {
                to: bob.public(),
                amount: 100,
            },
        )
        .await
        .unwrap();
        let bob_stake = TxBody::Stake {
            hotkey: worker.public(),
            amount: 10,
            tier: "cpu".into(),
        };
        assert_eq!(code(net.send(&bob, bob_stake).await), "already_registered");

        // GPU tiers have their own minimums.
        let gpu = Keypair::from_seed(&[4; 32]);
        net.send(
            &alice,
            TxBody::Stake {
                hotkey: gpu.public(),
                amount: 400,
                tier: "gpu-a100".into(),
            },
        )
        .await
        .unwrap();
        let gpu_register = TxBody::Register {
            hotkey: gpu.public(),
            role: Role::Worker,
            stake: 0,
        };
        assert_eq!(
            code(net.send(&alice, gpu_register).await),
            "stake_below_minimum"
        );

        // Unstake only after the lock, never below the tier minimum, only by the owner.
        let unstake = |amount| TxBody::Unstake {
            hotkey: worker.public(),
            amount,
        };
        assert_eq!(code(net.send(&alice, unstake(5)).await), "stake_locked");
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(code(net.send(&bob, unstake(5)).await), "unauthorized");
        net.send(&alice, unstake(5)).await.unwrap();
        assert_eq!(net.balance(&alice).await, 495); // 890 - 400 (gpu) + 5
        assert_eq!(
            code(net.send(&alice, unstake(10)).await),
            "stake_below_minimum"
        );

        // Heartbeats: registration counts as one; silence past one epoch makes the worker
        // inactive; a heartbeat brings it back.
        let active = |mg: hallmark_ledger::Metagraph| mg.neuron(&worker.public()).unwrap().active;
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(
            !active(net.ledger.metagraph().await.unwrap()),
            "silent worker still active"
        );
        assert_eq!(
            net.ledger
                .metagraph()
                .await
                .unwrap()
                .active_workers()
                .count(),
            0
        );
        net.send(&worker, TxBody::Heartbeat {}).await.unwrap();
        assert!(active(net.ledger.metagraph().await.unwrap()));
        assert_eq!(
            code(net.send(&bob, TxBody::Heartbeat {}).await),
            "not_registered"
        );

        // The whole chain still audits.
        assert_eq!(net.ledger.audit_chain().await.unwrap(), 8);
    }
}

/// A client's job request as the coordinator defines it (only its type and nonce matter to
/// the ledger: the job id is the digest of the envelope).
#[derive(Serialize, Deserialize)]
struct Request {
    lane: String,
    nonce: String,
}

impl SignedPayload for Request {
    const PAYLOAD_TYPE: &'static str = "application/vnd.hallmark.job-request+json";
}

struct Job {
    id: String,
    request: Envelope,
    result: Signed<JobResult>,
}

fn job(client: &Keypair, worker: &Keypair, nonce: &str) -> Job {
    let signed = Signed::sign(
        &Request {
            lane: "stark".into(),
            nonce: nonce.into(),
        },
        client,
    )
    .unwrap();
    let id = format!("job-{}", &signed.digest().unwrap().to_hex()[..24]);
    let result = Signed::sign(
        &JobResult {
            job_id: id.clone(),
            worker: worker.public(),
            result_digest: "ab".repeat(32),
        },
        worker,
    )
    .unwrap();
    Job {
        id,
        request: signed.envelope().clone(),
        result,
    }
}

fn vote(v: &Keypair, job: &Job, valid: bool) -> Signed<JobVote> {
    Signed::sign(
        &JobVote {
            job_id: job.id.clone(),
            result_digest: "ab".repeat(32),
            valid,
        },
        v,
    )
    .unwrap()
}

fn certificate(job: &Job, votes: Vec<Signed<JobVote>>) -> VoteCertificate {
    VoteCertificate {
        job_id: job.id.clone(),
        result_digest: "ab".repeat(32),
        outcome: VoteOutcome::Approved,
        votes,
    }
}

#[tokio::test]
async fn payments_are_certificate_gated_paid_once_and_withdrawn_with_proofs() {
    for db in TestDb::all().unwrap() {
        let net = Net::new(&db, LedgerParams::default()).await;
        let vals: Vec<Keypair> = (10..13).map(|i| Keypair::from_seed(&[i; 32])).collect();
        for v in &vals {
            let body = TxBody::Register {
                hotkey: v.public(),
                role: Role::Validator,
                stake: 1_000,
            };
            net.send(&net.cold, body).await.unwrap();
        }
        let worker = Keypair::from_seed(&[20; 32]);
        let body = TxBody::Register {
            hotkey: worker.public(),
            role: Role::Worker,
            stake: 100,
        };
        net.send(&net.cold, body).await.unwrap();
        let client = Keypair::from_seed(&[30; 32]);
        let reward = LedgerParams::default().job_reward;

        // The payment key: proof of the secret, once, only for a registered worker.
        let sk = ElGamalSecretKey::from_seed(&[5; 32]).unwrap();
        let ae = AeKey::from_seed(&[5; 32]);
        let pk = sk.public();
        let key_ctx = payment_key_context(CHAIN, &worker.public());
        let wrong_proof =
            PubkeyProof::prove(&ElGamalSecretKey::random(&mut OsRng), &key_ctx, &mut OsRng);
        let reg = |proof| TxBody::RegisterPaymentKey { pubkey: pk, proof };
        assert_eq!(
            code(net.send(&worker, reg(wrong_proof)).await),
            "invalid_proof"
        );
        let proof = PubkeyProof::prove(&sk, &key_ctx, &mut OsRng);
        assert_eq!(
            code(net.send(&client, reg(proof.clone())).await),
            "not_registered"
        );
        net.send(&worker, reg(proof.clone())).await.unwrap();
        assert_eq!(
            code(net.send(&worker, reg(proof)).await),
            "invalid_transaction"
        );
        let account = net
            .ledger
            .confidential_account(&worker.public())
            .await
            .unwrap()
            .unwrap();
        assert!(sk.holds(&account.balance, 0));

        let j = job(&client, &worker, "00ff");
        let claim = |cert: VoteCertificate, j: &Job, amount: u64| {
            let (credit, proof) = CreditProof::encrypt(
                &pk,
                amount,
                &credit_context(CHAIN, &worker.public(), &j.id),
                &mut OsRng,
            );
            TxBody::ClaimPayment {
                request: j.request.clone(),
                certificate: cert,
                result: j.result.clone(),
                credit,
                proof,
                hint: Some(ae.encrypt(reward, &mut OsRng)),
            }
        };
        let all_votes = || vals.iter().map(|v| vote(v, &j, true)).collect::<Vec<_>>();

        // No certificate (no votes), below 2/3 (one of three), a forged vote: refused, named.
        let empty = net
            .send(&worker, claim(certificate(&j, vec![]), &j, reward))
            .await;
        assert_eq!(code(empty), "invalid_evidence");
        let thin = certificate(
            &j,
            vec![vote(&vals[0], &j, true), vote(&vals[1], &j, false)],
        );
        let below = net
            .send(&worker, claim(thin, &j, reward))
            .await
            .unwrap_err();
        assert_eq!(below.code(), "invalid_evidence");
        assert!(below.to_string().contains("certificate"), "{below}");
        let mut forged = all_votes();
        let mut env = forged[2].envelope().clone();
        let mut sig = env.signatures[0].sig.clone().into_bytes();
        sig[3] = if sig[3] == b'A' { b'B' } else { b'A' };
        env.signatures[0].sig = String::from_utf8(sig).unwrap();
        forged[2] = Signed::from_envelope(env);
        let err = net
            .send(&worker, claim(certificate(&j, forged), &j, reward))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_evidence");
        assert!(err.to_string().contains("signature"), "{err}");
        // A vote by a key that is no validator is forged too.
        let mut outsider = all_votes();
        outsider[0] = vote(&client, &j, true);
        let err = net
            .send(&worker, claim(certificate(&j, outsider), &j, reward))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not a validator"), "{err}");
        // A credit of more than the reward, someone else claiming, a request of another job.
        assert_eq!(
            code(
                net.send(
                    &worker,
                    claim(certificate(&j, all_votes()), &j, reward * 10)
                )
                .await
            ),
            "invalid_proof"
        );
        assert_eq!(
            code(
                net.send(&client, claim(certificate(&j, all_votes()), &j, reward))
                    .await
            ),
            "unauthorized"
        );
        let other = job(&client, &worker, "0100");
        let mut mixed = claim(certificate(&j, all_votes()), &j, reward);
        if let TxBody::ClaimPayment { request, .. } = &mut mixed {
            *request = other.request.clone();
        }
        assert_eq!(code(net.send(&worker, mixed).await), "invalid_evidence");

        // The real claim: credited encrypted, the hint decrypts it in O(1).
        net.send(&worker, claim(certificate(&j, all_votes()), &j, reward))
            .await
            .unwrap();
        let account = net
            .ledger
            .confidential_account(&worker.public())
            .await
            .unwrap()
            .unwrap();
        assert!(sk.holds(&account.balance, reward));
        let (read, how) = hallmark_confidential::hint::decrypt_balance(
            &sk,
            &ae,
            &account.balance,
            account.hint.as_ref(),
            || unreachable!("the hint must suffice"),
        )
        .unwrap();
        assert_eq!((read, how.as_str()), (reward, "hint"));

        // Replayed (even with a fresh ciphertext and the same certificate): refused by nullifier.
        let replay = net
            .send(&worker, claim(certificate(&j, all_votes()), &j, reward))
            .await
            .unwrap_err();
        assert_eq!(replay.code(), "payment_replayed");
        assert!(
            replay
                .to_string()
                .contains(&payment_nullifier(&j.id, "00ff")),
            "{replay}"
        );

        // Withdraw 60 of 100 to the coldkey; then more than is left is refused.
        let cold_before = net.balance(&net.cold).await;
        let wctx = withdrawal_context(CHAIN, &worker.public());
        let (wproof, rest) =
            WithdrawalProof::prove(&sk, &account.balance, reward, 60, &wctx, &mut OsRng).unwrap();
        net.send(
            &worker,
            TxBody::Withdraw {
                amount: 60,
                proof: wproof,
                hint: Some(ae.encrypt(40, &mut OsRng)),
            },
        )
        .await
        .unwrap();
        assert_eq!(net.balance(&net.cold).await, cold_before + 60);
        let account = net
            .ledger
            .confidential_account(&worker.public())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(account.balance, rest);
        assert!(sk.holds(&account.balance, 40));
        // The owner's library will not prove 41 of 40 ...
        assert!(WithdrawalProof::prove(&sk, &account.balance, 40, 41, &wctx, &mut OsRng).is_err());
        // ... and a proof for all 40 does not carry a withdrawal of 41.
        let (all, _) =
            WithdrawalProof::prove(&sk, &account.balance, 40, 40, &wctx, &mut OsRng).unwrap();
        let over = net
            .send(
                &worker,
                TxBody::Withdraw {
                    amount: 41,
                    proof: all.clone(),
                    hint: None,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(over.code(), "invalid_proof");
        assert_eq!(net.balance(&net.cold).await, cold_before + 60);
        // A proof bound to another chain or worker does not carry either.
        let (foreign, _) =
            WithdrawalProof::prove(&sk, &account.balance, 40, 40, b"elsewhere", &mut OsRng)
                .unwrap();
        let err = net
            .send(
                &worker,
                TxBody::Withdraw {
                    amount: 40,
                    proof: foreign,
                    hint: None,
                },
            )
            .await;
        assert_eq!(code(err), "invalid_proof");
        net.send(
            &worker,
            TxBody::Withdraw {
                amount: 40,
                proof: all,
                hint: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(net.balance(&net.cold).await, cold_before + 100);
        assert!(net.ledger.audit_chain().await.unwrap() > 5);
    }
}
