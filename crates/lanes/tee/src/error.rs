//! Errors for inputs the tee lane cannot even read (verification failures are Verdicts).

/// Why a piece of evidence, policy or key set could not be parsed or built.
#[derive(Debug, thiserror::Error)]
pub enum TeeError {
    /// The collateral JSON does not have the `QuoteCollateralV3` shape.
    #[error("collateral is not QuoteCollateralV3 JSON: {0}")]
    Collateral(String),
    /// A policy file could not be read as a policy.
    #[error("policy is invalid: {0}")]
    Policy(String),
    /// An NVIDIA attestation body or JWT could not be read.
    #[error("NVIDIA evidence is malformed: {0}")]
    Eat(String),
    /// A JWKS document could not be read.
    #[error("JWKS is malformed: {0}")]
    Jwks(String),
    /// The synthetic test root of trust could not build a certificate, CRL or signature.
    #[error("test root of trust: {0}")]
    TestRoot(String),
    /// A hex or base64 field did not decode.
    #[error("{field} is not valid {encoding}")]
    Encoding {
        field: &'static str,
        encoding: &'static str,
    },
    /// A receipt could not be read or signed.
    #[error("receipt: {0}")]
    Receipt(String),
}
