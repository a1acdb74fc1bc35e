//! What a proof is about: the job (type, size, seed) and its public outputs.
//!
//! The whole statement is mixed into the Fiat–Shamir channel before the first commitment, and
//! each AIR also binds it semantically through a logup sum the verifier computes itself.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use stwo::core::channel::Channel;

use crate::field::words;

/// The kinds of job the stark lane proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobType {
    /// Wide Fibonacci: `size` independent sequences of [`crate::air::fib::FIB_WIDTH`] steps.
    Fib,
    /// A chain of `size` applications of a Poseidon2-shaped permutation over M31.
    Hashchain,
    /// `C = A·B` for `size`×`size` matrices over M31.
    Matmul,
}

impl JobType {
    /// Every job type, in a stable order.
    pub const ALL: [JobType; 3] = [JobType::Fib, JobType::Hashchain, JobType::Matmul];

    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::Fib => "fib",
            JobType::Hashchain => "hashchain",
            JobType::Matmul => "matmul",
        }
    }

    /// Allowed `size` values (inclusive); bigger jobs would not fit the proof-size cap or
    /// would take too long for a validator to recompute public inputs.
    pub fn size_range(self) -> (u32, u32) {
        match self {
            JobType::Fib => (1, 1 << 18),
            JobType::Hashchain => (1, 1 << 14),
            JobType::Matmul => (1, crate::air::matmul::MAX_N as u32),
        }
    }

    fn tag(self) -> u32 {
        match self {
            JobType::Fib => 1,
            JobType::Hashchain => 2,
            JobType::Matmul => 3,
        }
    }
}

impl fmt::Display for JobType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobType {
    type Err = StatementError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fib" => Ok(JobType::Fib),
            "hashchain" => Ok(JobType::Hashchain),
            "matmul" => Ok(JobType::Matmul),
            other => Err(StatementError::UnknownJobType(other.to_string())),
        }
    }
}

/// A job spec or statement that cannot be proven or verified as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// The job type is not one of fib, hashchain, matmul.
    #[error("unknown job type {0:?} (expected fib, hashchain or matmul)")]
    UnknownJobType(String),
    /// The size is outside the type's range.
    #[error("size {size} is out of range for {job_type} (allowed {min}..={max})")]
    SizeOutOfRange {
        /// The job type.
        job_type: JobType,
        /// The size asked for.
        size: u32,
        /// Smallest allowed size.
        min: u32,
        /// Largest allowed size.
        max: u32,
    },
    /// The public outputs are of another job type than the spec.
    #[error("public outputs are for {found}, the job is {expected}")]
    OutputsKind {
        /// The spec's type.
        expected: JobType,
        /// The outputs' type.
        found: JobType,
    },
}

/// 32 bytes shown as hex in JSON and kept raw in binary encodings.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Bytes32(pub [u8; 32]);

impl Bytes32 {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).ok()?;
        Some(Self(out))
    }
}

impl fmt::Debug for Bytes32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for Bytes32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Bytes32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(s)
        }
    }
}

impl schemars::JsonSchema for Bytes32 {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Bytes32".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        hallmark_core::schema::lower_hex(Some(32), "32 bytes, lowercase hex.")
    }
}

impl<'de> Deserialize<'de> for Bytes32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Bytes32::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
        } else {
            Ok(Bytes32(<[u8; 32]>::deserialize(d)?))
        }
    }
}

/// A job as the client asked for it: everything needed to rebuild its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobSpec {
    /// Which AIR.
    pub job_type: JobType,
    /// Instances (fib), chain length (hashchain) or matrix dimension (matmul).
    pub size: u32,
    /// Seed every input is derived from.
    pub seed: Bytes32,
}

impl JobSpec {
    /// A spec, checked against the type's size range.
    pub fn new(job_type: JobType, size: u32, seed: [u8; 32]) -> Result<Self, StatementError> {
        let spec = Self {
            job_type,
            size,
            seed: Bytes32(seed),
        };
        spec.check()?;
        Ok(spec)
    }

    /// Checks the size range.
    pub fn check(&self) -> Result<(), StatementError> {
        let (min, max) = self.job_type.size_range();
        if self.size < min || self.size > max {
            return Err(StatementError::SizeOutOfRange {
                job_type: self.job_type,
                size: self.size,
                min,
                max,
            });
        }
        Ok(())
    }
}

impl fmt::Display for JobSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} size {} seed {}", self.job_type, self.size, self.seed)
    }
}

/// Public outputs of a proven job, bound by its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PublicOutputs {
    /// Fib proves the sequences were computed; its inputs are all public and it has no output.
    Fib,
    /// The state after the last permutation.
    Hashchain {
        /// Final 16-element state, as canonical M31 values.
        final_state: [u32; 16],
    },
    /// Digests of the inputs and the product (the product itself travels in the package).
    Matmul {
        /// Digest of A.
        digest_a: Bytes32,
        /// Digest of B.
        digest_b: Bytes32,
        /// Digest of C = A·B.
        digest_c: Bytes32,
    },
}

impl PublicOutputs {
    /// The job type these outputs belong to.
    pub fn job_type(&self) -> JobType {
        match self {
            PublicOutputs::Fib => JobType::Fib,
            PublicOutputs::Hashchain { .. } => JobType::Hashchain,
            PublicOutputs::Matmul { .. } => JobType::Matmul,
        }
    }
}

/// The public inputs of a proof: its job and outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Statement {
    /// The job.
    pub spec: JobSpec,
    /// What the job produced.
    pub outputs: PublicOutputs,
}

impl Statement {
    /// Checks the spec and that the outputs match its type.
    pub fn check(&self) -> Result<(), StatementError> {
        self.spec.check()?;
        if self.outputs.job_type() != self.spec.job_type {
            return Err(StatementError::OutputsKind {
                expected: self.spec.job_type,
                found: self.outputs.job_type(),
            });
        }
        Ok(())
    }

    /// Mixes the statement into a Fiat–Shamir channel; prover and verifier call this first.
    pub fn mix_into(&self, channel: &mut impl Channel) {
        // "hmstark1" as two words: a domain separator for this protocol version.
        channel.mix_u32s(&[0x7473_6d68, 0x316b_7261]);
        channel.mix_u32s(&[self.spec.job_type.tag(), self.spec.size]);
        channel.mix_u32s(&words(&self.spec.seed.0));
        match &self.outputs {
            PublicOutputs::Fib => channel.mix_u32s(&[0]),
            PublicOutputs::Hashchain { final_state } => channel.mix_u32s(final_state),
            PublicOutputs::Matmul {
                digest_a,
                digest_b,
                digest_c,
            } => {
                channel.mix_u32s(&words(&digest_a.0));
                channel.mix_u32s(&words(&digest_b.0));
                channel.mix_u32s(&words(&digest_c.0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_range_checked() {
        assert!(JobSpec::new(JobType::Fib, 0, [0; 32]).is_err());
        assert!(JobSpec::new(JobType::Fib, 16, [0; 32]).is_ok());
        let err = JobSpec::new(JobType::Matmul, 100_000, [0; 32]).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        assert!("sha256".parse::<JobType>().is_err());
        for t in JobType::ALL {
            assert_eq!(t.as_str().parse::<JobType>().unwrap(), t);
        }
    }

    #[test]
    fn bytes32_round_trips_hex_and_json() {
        let b = Bytes32([0xab; 32]);
        assert_eq!(Bytes32::from_hex(&b.to_hex()), Some(b));
        assert_eq!(Bytes32::from_hex("zz"), None);
        assert_eq!(Bytes32::from_hex(&"ab".repeat(31)), None);
        assert_eq!(Bytes32::from_hex(&"ab".repeat(33)), None);
        assert_eq!(Bytes32::from_hex(&"AB".repeat(32)), Some(b));
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Bytes32>(&json).unwrap(), b);
    }
}
