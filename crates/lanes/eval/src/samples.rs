//! The lane's reference module and the example submissions devnet and the tests build from
//! WAT text: three honest-or-not ones (correct and cheap, correct and costly, wrong) and three
//! escape attempts (an import the lane does not offer, a loop that never ends, memory grown
//! without bound).

use crate::archive::{pack, ArchiveError, Manifest};

/// The reference module's WAT.
pub const REFERENCE_WAT: &str = include_str!("../wat/reference.wat");

/// Every example submission: (name, WAT, what a validator should find).
pub const SUBMISSIONS: &[(&str, &str, Expect)] = &[
    ("cheap", include_str!("../wat/cheap.wat"), Expect::Correct),
    ("costly", include_str!("../wat/costly.wat"), Expect::Correct),
    ("wrong", include_str!("../wat/wrong.wat"), Expect::Wrong),
    (
        "clock",
        include_str!("../wat/clock.wat"),
        Expect::Contained("unknown_import"),
    ),
    (
        "spin",
        include_str!("../wat/spin.wat"),
        Expect::Contained("out_of_fuel"),
    ),
    (
        "grow",
        include_str!("../wat/grow.wat"),
        Expect::Contained("memory_limit"),
    ),
];

/// What a validator should find for an example submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Every task right.
    Correct,
    /// Runs, answers wrong.
    Wrong,
    /// Stopped by the sandbox with this code.
    Contained(&'static str),
}

/// Why an example could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("no example submission named {0:?}")]
    Unknown(String),
    #[error("WAT: {0}")]
    Wat(String),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// Compiles WAT text to wasm bytes.
pub fn wat2wasm(text: &str) -> Result<Vec<u8>, SampleError> {
    wat::parse_str(text).map_err(|e| SampleError::Wat(e.to_string()))
}

/// The reference module's wasm bytes.
pub fn reference_wasm() -> Result<Vec<u8>, SampleError> {
    wat2wasm(REFERENCE_WAT)
}

/// An example submission's archive.
pub fn archive(name: &str) -> Result<Vec<u8>, SampleError> {
    let (_, text, _) = SUBMISSIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| SampleError::Unknown(name.into()))?;
    Ok(pack(&Manifest::new(name), &wat2wasm(text)?)?)
}
