//! hallmark-sdk: one typed async client for a hallmark network.
//!
//! [`Client`] reaches the coordinator (jobs, proofs), the ledger (metagraph, faucet, stake)
//! and validators (signed round results with their log receipts). It signs what must be
//! signed with the key it is given, retries transient failures (a connection refused, 429,
//! 502, 503, 504) with backoff and nothing else, and reports every failure as an
//! [`SdkError`] carrying the server's error code. Proofs and receipts are verified locally,
//! without trusting the node that served them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hallmark_sdk::SdkError> {
//! use hallmark_sdk::{Client, Endpoints};
//! use hallmark_core::Keypair;
//!
//! let client = Client::connect(Endpoints::devnet(".hallmark/devnet".as_ref())?)
//!     .await?
//!     .with_key(Keypair::generate());
//! let job = client
//!     .submit_job("stark", serde_json::json!({"job_type": "fib", "size": 64, "seed": "00".repeat(32)}))
//!     .await?;
//! let done = client
//!     .wait_job(&job.job_id, std::time::Duration::from_secs(120), |j| eprintln!("{:?}", j.status))
//!     .await?;
//! let package = client.get_proof(&done.job_id).await?;
//! let spec: hallmark_stark::JobSpec = serde_json::from_value(done.spec.clone())?;
//! let proof = hallmark_sdk::verify_proof(&package, &spec)?;
//! println!("{} verified: {:?}", done.job_id, proof.statement);
//! # Ok(()) }
//! ```

mod client;
mod error;

pub use client::{verify_proof, verify_receipt, Client, Endpoints, RetryPolicy};
pub use error::SdkError;

/// Types the client's answers are made of, re-exported so callers need no other crate.
pub mod types {
    pub use hallmark_ledger::{Metagraph, Neuron, TxReceipt};
    pub use hallmark_log::Receipt;
    pub use hallmark_node::jobs::{JobStatus, JobView};
    pub use hallmark_node::ledger_service::FaucetDrip;
    pub use hallmark_node::messages::RoundResult;
    pub use hallmark_stark::{JobSpec, JobType, VerifiedProof};
}
