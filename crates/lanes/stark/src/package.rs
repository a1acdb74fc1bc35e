//! The proof package: `HMSTARK\x01` + zstd(postcard(body)), capped at 256 KB, named by BLAKE3.

use std::io::Read;

use serde::{Deserialize, Serialize};
use stwo::core::proof::StarkProof;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleHasher;

use crate::params::MAX_DECOMPRESSED_BYTES;
use crate::statement::{Bytes32, Statement};

/// First bytes of every package.
pub const MAGIC: &[u8; 8] = b"HMSTARK\x01";

/// Version of [`PackageBody`]'s layout.
pub const PACKAGE_VERSION: u16 = 1;

/// zstd level: proofs are mostly hashes and field elements, so higher levels buy little.
const ZSTD_LEVEL: i32 = 3;

/// What a package holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageBody {
    /// Layout version.
    pub version: u16,
    /// Public inputs.
    pub statement: Statement,
    /// Public output data the statement names by digest (matmul: C, row-major); else empty.
    pub output: Vec<u32>,
    /// The stwo proof.
    pub proof: StarkProof<Blake2sMerkleHasher>,
}

impl PackageBody {
    /// A body of the current version.
    pub fn new(
        statement: Statement,
        output: Vec<u32>,
        proof: StarkProof<Blake2sMerkleHasher>,
    ) -> Self {
        Self {
            version: PACKAGE_VERSION,
            statement,
            output,
            proof,
        }
    }
}

/// Why bytes are not a package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// Missing or wrong magic bytes.
    #[error("not a hallmark stark package (bad magic)")]
    Magic,
    /// zstd failed (a corrupted frame fails its checksum).
    #[error("decompression failed: {0}")]
    Decompress(String),
    /// The decompressed body is larger than allowed.
    #[error("decompressed body exceeds {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body does not decode.
    #[error("body does not decode: {0}")]
    Decode(String),
    /// Encoding failed.
    #[error("encoding failed: {0}")]
    Encode(String),
}

/// Serialises, compresses (with a content checksum) and frames a body.
pub fn encode_package(body: &PackageBody) -> Result<Vec<u8>, PackageError> {
    let fail = |e: &dyn std::fmt::Display| PackageError::Encode(e.to_string());
    let raw = postcard::to_stdvec(body).map_err(|e| fail(&e))?;
    let mut out = MAGIC.to_vec();
    let mut encoder =
        zstd::stream::write::Encoder::new(&mut out, ZSTD_LEVEL).map_err(|e| fail(&e))?;
    encoder.include_checksum(true).map_err(|e| fail(&e))?;
    std::io::Write::write_all(&mut encoder, &raw).map_err(|e| fail(&e))?;
    encoder.finish().map_err(|e| fail(&e))?;
    Ok(out)
}

/// Unframes, decompresses (never past [`MAX_DECOMPRESSED_BYTES`]) and decodes a package.
pub fn decode_package(bytes: &[u8]) -> Result<PackageBody, PackageError> {
    let compressed = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(PackageError::Magic)?;
    let decoder = zstd::stream::read::Decoder::new(compressed)
        .map_err(|e| PackageError::Decompress(e.to_string()))?;
    let mut raw = Vec::new();
    decoder
        .take(MAX_DECOMPRESSED_BYTES as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| PackageError::Decompress(e.to_string()))?;
    if raw.len() > MAX_DECOMPRESSED_BYTES {
        return Err(PackageError::TooLarge {
            limit: MAX_DECOMPRESSED_BYTES,
        });
    }
    let (body, rest): (PackageBody, &[u8]) =
        postcard::take_from_bytes(&raw).map_err(|e| PackageError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PackageError::Decode(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(body)
}

/// The proof hash: BLAKE3 of the package bytes exactly as shipped.
pub fn proof_hash(package: &[u8]) -> Bytes32 {
    Bytes32(*blake3::hash(package).as_bytes())
}
