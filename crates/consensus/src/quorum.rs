//! Stake quorum: how much of the stake must have reported before a decision counts.

use serde::{Deserialize, Serialize};

/// A quorum as a fraction of total stake, e.g. 2/3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Quorum {
    pub numerator: u64,
    pub denominator: u64,
}

/// Why a quorum fraction is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quorum {numerator}/{denominator} must be a fraction in (0, 1]")]
pub struct QuorumError {
    pub numerator: u64,
    pub denominator: u64,
}

impl Default for Quorum {
    fn default() -> Self {
        Self::TWO_THIRDS
    }
}

impl Quorum {
    /// Two thirds of stake: the BFT threshold.
    pub const TWO_THIRDS: Quorum = Quorum {
        numerator: 2,
        denominator: 3,
    };

    /// A checked quorum fraction.
    pub fn new(numerator: u64, denominator: u64) -> Result<Self, QuorumError> {
        if denominator == 0 || numerator == 0 || numerator > denominator {
            return Err(QuorumError {
                numerator,
                denominator,
            });
        }
        Ok(Self {
            numerator,
            denominator,
        })
    }

    /// Whether `reporting` stake out of `total` meets the quorum.
    pub fn is_met(&self, reporting: u64, total: u64) -> bool {
        total > 0
            && u128::from(reporting) * u128::from(self.denominator)
                >= u128::from(total) * u128::from(self.numerator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_thirds() {
        let q = Quorum::TWO_THIRDS;
        assert!(q.is_met(2, 3));
        assert!(!q.is_met(1, 3));
        assert!(q.is_met(200, 300));
        assert!(!q.is_met(199, 300));
        assert!(!q.is_met(0, 0));
        assert!(Quorum::new(3, 2).is_err());
        assert!(Quorum::new(1, 0).is_err());
    }
}
