//! hallmark-consensus: how independent validators' scores become one decision.
//!
//! - [`median`]: the stake-weighted median, per worker, over validators' reports.
//! - [`winner`]: winner-take-all with dethrone-by-margin hysteresis, and agreement.
//! - [`quorum`]: stake quorum; below it the incumbent stays.
//! - [`commitment`]: score-hash commitments, report succession, equivocation evidence.
//! - [`divergence`]: consensus versus the owner's pick (top-1, Spearman, top-k).
//! - [`votes`]: validator votes on proven jobs, stake tally, certificates, equivocation, slashing.
//! - [`weights`]: the weight rules (window, attested rows, class allowlist and fallback,
//!   coldkey collapse) that turn decided rounds into a lane epoch's weight vector.
//! - [`yuma`]: the Yuma epoch (consensus, trust, incentive, bonds, dividends) as subtensor runs it.
//!
//! Everything here is a pure function: no I/O, no clocks, no randomness.

pub mod commitment;
pub mod divergence;
pub mod median;
pub mod quorum;
pub mod votes;
pub mod weights;
pub mod winner;
pub mod yuma;

pub use median::{consensus_scores, weighted_median, weighted_median_columns, ValidatorScores};
pub use quorum::{Quorum, QuorumError};
pub use votes::{
    is_job_nonce, job_id_of_envelope, tally_votes, verify_certificate, CertificateError, JobResult,
    JobVote, SlashReason, Slashing, VoteCertificate, VoteEquivocation, VoteOutcome, VoteTally,
    JOB_REQUEST_TYPE,
};
pub use winner::{agrees, decide_round, select_winner, RoundDecision, WinnerPolicy};
pub use yuma::{yuma_epoch, YumaError, YumaInput, YumaOutput};
