//! hallmark-tee: the attested-compute lane.
//!
//! Pure verifiers: [`tdx`] (TDX/SGX quotes through dcap-qvl, with our policy), [`binding`]
//! (report_data conventions), [`nvidia`] (NRAS EAT tokens against a pinned JWKS). [`testroot`]
//! builds a complete synthetic Intel chain and NVIDIA key that the *production* verifier
//! accepts when, and only when, a node runs the `devnet` profile.

pub mod error;
pub mod lane;
pub mod policy;
pub mod tdx;
pub mod testroot;

pub use error::TeeError;
pub use lane::{AttestationSpec, TeeContext, TeeLane, TeeTrust};
pub use policy::{Profile, ProfileTrust, TdxPolicy, TrustRoot, TrustRoots};
pub use tdx::{verify_quote, QuoteSummary, QuoteVerification, TdxContext};
pub mod binding;
pub mod chain;
pub mod collateral;
pub mod nvidia;
pub mod receipt;
pub mod selftest;
pub mod simulate;
