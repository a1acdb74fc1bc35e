//! Typed identifiers, so a round id can't be passed where a job id belongs.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }
    };
}

string_id!(
    /// A round of a round lane (also the run id its score reports are for).
    RoundId
);

impl RoundId {
    /// The canonical id of round `n` (1-based) of `lane`: `sat-round-000042`. Ids name their
    /// lane, so rounds of two lanes never share an id (nor the run ids, commitments and
    /// receipts keyed by it).
    pub fn for_lane(lane: &str, n: u64) -> Self {
        Self(format!("{lane}-round-{n:06}"))
    }

    /// The lane and sequence number inside a canonical round id.
    pub fn lane_and_number(&self) -> Option<(&str, u64)> {
        let (lane, n) = self.0.rsplit_once("-round-")?;
        if lane.is_empty() || n.len() < 6 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((lane, n.parse().ok()?))
    }

    /// The sequence number inside a canonical round id.
    pub fn number(&self) -> Option<u64> {
        self.lane_and_number().map(|(_, n)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_numbers() {
        let r = RoundId::for_lane("sat", 42);
        assert_eq!(r.as_str(), "sat-round-000042");
        assert_eq!(r.number(), Some(42));
        assert_eq!(r.lane_and_number(), Some(("sat", 42)));
        let r = RoundId::for_lane("eval", 1_234_567);
        assert_eq!(r.lane_and_number(), Some(("eval", 1_234_567)));
        for bad in [
            "x",
            "round-000001",
            "-round-000001",
            "sat-round-12",
            "sat-round-00001x",
        ] {
            assert_eq!(RoundId::from(bad).number(), None, "{bad}");
        }
    }
}
