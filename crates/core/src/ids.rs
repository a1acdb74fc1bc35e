//! Typed identifiers, so a round id can't be passed where a job id belongs.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// A sat-lane round (also the run id its score reports are for).
    RoundId
);

impl RoundId {
    /// The canonical id of the round with sequence number `n` (1-based): `round-000042`.
    pub fn from_number(n: u64) -> Self {
        Self(format!("round-{n:06}"))
    }

    /// The sequence number inside a canonical round id.
    pub fn number(&self) -> Option<u64> {
        self.0.strip_prefix("round-")?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_numbers() {
        let r = RoundId::from_number(42);
        assert_eq!(r.as_str(), "round-000042");
        assert_eq!(r.number(), Some(42));
        assert_eq!(RoundId::from("x").number(), None);
    }
}
