//! Security parameters and hard limits: stated here, enforced by the verifier.
//!
//! A stwo proof carries the `PcsConfig` it was made with. The verifier never trusts it: it
//! builds its commitment-scheme verifier from [`SecurityPolicy::config`] and rejects a proof
//! whose embedded config differs, so a prover cannot pick weaker parameters for itself.

use serde::{Deserialize, Serialize};
use stwo::core::fri::FriConfig;
use stwo::core::pcs::PcsConfig;

/// Largest packaged proof (compressed bytes on the wire) anyone will accept.
pub const MAX_PACKAGE_BYTES: usize = 256 * 1024;

/// Largest decompressed payload; guards the verifier against a zstd bomb.
pub const MAX_DECOMPRESSED_BYTES: usize = 4 * 1024 * 1024;

/// The FRI and proof-of-work parameters every hallmark stark proof must use.
///
/// Conjectured security (the ethSTARK / stwo accounting) is
/// `pow_bits + log_blowup * n_queries` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SecurityPolicy {
    /// Grinding bits required before FRI queries are drawn.
    pub pow_bits: u32,
    /// log2 of the Reed–Solomon blowup factor.
    pub log_blowup: u32,
    /// Number of FRI queries.
    pub n_queries: usize,
    /// log2 of the degree bound of FRI's last layer.
    pub log_last_layer_degree_bound: u32,
    /// FRI folding step per layer.
    pub fold_step: u32,
}

impl SecurityPolicy {
    /// The network's policy: 96 conjectured bits = 20 grinding bits + 2 (blowup 4) × 38 queries.
    pub const NETWORK: SecurityPolicy = SecurityPolicy {
        pow_bits: 20,
        log_blowup: 2,
        n_queries: 38,
        log_last_layer_degree_bound: 0,
        fold_step: 1,
    };

    /// Minimum conjectured security a policy may state.
    pub const MIN_SECURITY_BITS: u32 = 96;

    /// Conjectured security of this policy, in bits.
    pub fn security_bits(&self) -> u32 {
        let fri = self.log_blowup.saturating_mul(self.n_queries as u32);
        self.pow_bits.saturating_add(fri)
    }

    /// The stwo commitment-scheme configuration this policy stands for.
    pub fn config(&self) -> PcsConfig {
        PcsConfig {
            pow_bits: self.pow_bits,
            fri_config: FriConfig {
                log_blowup_factor: self.log_blowup,
                log_last_layer_degree_bound: self.log_last_layer_degree_bound,
                n_queries: self.n_queries,
                fold_step: self.fold_step,
            },
            lifting_log_size: None,
        }
    }

    /// Whether a proof's embedded configuration is exactly this policy.
    pub fn matches(&self, config: &PcsConfig) -> bool {
        *config == self.config()
    }
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        Self::NETWORK
    }
}

/// A commitment configuration in words: the policy's own and a rejected proof's alike.
pub fn describe_config(config: &PcsConfig) -> String {
    let fri = &config.fri_config;
    let lifting = match config.lifting_log_size {
        None => String::new(),
        Some(l) => format!(", lifting 2^{l}"),
    };
    format!(
        "{} bits (pow {} + log_blowup {} x {} queries; last layer 2^{}, fold {}{lifting})",
        config.security_bits(),
        config.pow_bits,
        fri.log_blowup_factor,
        fri.n_queries,
        fri.log_last_layer_degree_bound,
        fri.fold_step
    )
}

impl std::fmt::Display for SecurityPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe_config(&self.config()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_policy_states_96_bits() {
        let p = SecurityPolicy::NETWORK;
        assert_eq!(p.security_bits(), 96);
        assert!(p.security_bits() >= SecurityPolicy::MIN_SECURITY_BITS);
        assert_eq!(p.config().security_bits(), p.security_bits());
        assert!(p.matches(&p.config()));
        let mut weaker = p.config();
        weaker.fri_config.n_queries -= 1;
        assert!(!p.matches(&weaker));
        let mut lifted = p.config();
        lifted.lifting_log_size = Some(20);
        assert!(!p.matches(&lifted));
    }
}
