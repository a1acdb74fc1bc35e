//! hallmark-core: the vocabulary every other crate speaks.
//!
//! Identities and keys ([`keys`], shown as SS58 by [`ss58`]), RFC 8785 canonical JSON
//! ([`canonical`]), DSSE signed envelopes ([`dsse`]), SHA-256 digests ([`digest`]), typed ids
//! ([`ids`]), wire time ([`time`]), the wire error body ([`error`]) and the pipeline
//! shapes a lane plugs into ([`lane::JobLane`], [`lane::Executor`], [`lane::RoundLane`],
//! [`lane::RoundWorker`]) with the
//! [`verdict::Verdict`] every verifier returns. Nothing here does I/O.

pub mod canonical;
pub mod digest;
pub mod dsse;
pub mod error;
pub mod ids;
pub mod keys;
pub mod lane;
pub mod schema;
pub mod ss58;
pub mod time;
pub mod trace;
pub mod verdict;

pub use digest::{sha256, Sha256Digest};
pub use dsse::{Envelope, Signed, SignedPayload, Verified};
pub use error::{ErrorBody, WireError};
pub use ids::RoundId;
pub use keys::{Keypair, PublicKey};
pub use lane::{
    Arrival, ExecuteError, Executor, JobLane, LaneShape, Measurement, RosterEntry, RosterRefusal,
    RosterRun, RoundInfo, RoundIntake, RoundLane, RoundRecord, RoundWorker, SpecError,
};
pub use verdict::{Check, CheckOutcome, Verdict, VerdictBuilder};
