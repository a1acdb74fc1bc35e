//! Submission archives: a WebAssembly module plus a small manifest, as one uncompressed tar
//! whose SHA-256 a worker commits on the ledger.
//!
//! The archive holds exactly two regular files, `manifest.json` and `module.wasm`; anything
//! else (directories, links, other names, a file twice) is refused, so one set of bytes has
//! one meaning. [`pack`] writes the canonical form (sorted, mtime 0, mode 0644, uid/gid 0).

use std::io::Read;

use serde::{Deserialize, Serialize};

/// The guest interface version an archive targets.
pub const ABI: &str = "hallmark-eval/v1";
/// The largest archive a validator reads, bytes.
pub const MAX_ARCHIVE_BYTES: usize = 8 << 20;
/// The largest module in an archive, bytes.
pub const MAX_MODULE_BYTES: usize = 4 << 20;
/// The largest manifest, bytes.
pub const MAX_MANIFEST_BYTES: usize = 4096;

/// What a submission says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Must be [`ABI`].
    pub abi: String,
    /// A short name for tables and logs (1–64 printable ASCII characters).
    pub name: String,
    /// Free text, up to 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Manifest {
    /// A manifest for the current ABI.
    pub fn new(name: &str) -> Self {
        Self {
            abi: ABI.into(),
            name: name.into(),
            description: None,
        }
    }

    /// Refuses a manifest this lane cannot run.
    pub fn check(&self) -> Result<(), ArchiveError> {
        if self.abi != ABI {
            return Err(ArchiveError::Manifest(format!(
                "abi {:?} is not {ABI:?}",
                self.abi
            )));
        }
        let printable = |s: &str| s.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        if self.name.is_empty() || self.name.len() > 64 || !printable(&self.name) {
            return Err(ArchiveError::Manifest(
                "name must be 1-64 printable ASCII characters".into(),
            ));
        }
        if self.description.as_ref().is_some_and(|d| d.len() > 256) {
            return Err(ArchiveError::Manifest(
                "description is longer than 256 bytes".into(),
            ));
        }
        Ok(())
    }
}

/// A read archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub manifest: Manifest,
    /// The WebAssembly module's bytes (validated only when compiled).
    pub module: Vec<u8>,
}

/// Why archive bytes are not a submission. Each variant has a stable [`ArchiveError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// Larger than [`MAX_ARCHIVE_BYTES`] or a member over its own cap.
    #[error("archive too large: {0}")]
    TooLarge(String),
    /// Not a tar of exactly `manifest.json` and `module.wasm`.
    #[error("malformed archive: {0}")]
    Malformed(String),
    /// The manifest does not parse or names something this lane cannot run.
    #[error("invalid manifest: {0}")]
    Manifest(String),
}

impl ArchiveError {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ArchiveError::TooLarge(_) => "archive_too_large",
            ArchiveError::Malformed(_) => "archive_malformed",
            ArchiveError::Manifest(_) => "manifest_invalid",
        }
    }
}

fn append(builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data)
}

/// Packs a manifest and a module into the canonical archive.
pub fn pack(manifest: &Manifest, module: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    manifest.check()?;
    let text = serde_json::to_vec(manifest).map_err(|e| ArchiveError::Manifest(e.to_string()))?;
    let mut builder = tar::Builder::new(Vec::new());
    let io = |e: std::io::Error| ArchiveError::Malformed(e.to_string());
    append(&mut builder, "manifest.json", &text).map_err(io)?;
    append(&mut builder, "module.wasm", module).map_err(io)?;
    let bytes = builder.into_inner().map_err(io)?;
    if bytes.len() > MAX_ARCHIVE_BYTES {
        return Err(ArchiveError::TooLarge(format!(
            "{} bytes, the cap is {MAX_ARCHIVE_BYTES}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn read_capped(r: impl Read, cap: usize, what: &str) -> Result<Vec<u8>, ArchiveError> {
    let mut out = Vec::new();
    r.take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ArchiveError::Malformed(format!("{what}: {e}")))?;
    if out.len() > cap {
        return Err(ArchiveError::TooLarge(format!(
            "{what} is over {cap} bytes"
        )));
    }
    Ok(out)
}

/// Reads archive bytes: exactly one `manifest.json` (checked) and one `module.wasm`.
pub fn unpack(bytes: &[u8]) -> Result<Archive, ArchiveError> {
    if bytes.len() > MAX_ARCHIVE_BYTES {
        return Err(ArchiveError::TooLarge(format!(
            "{} bytes, the cap is {MAX_ARCHIVE_BYTES}",
            bytes.len()
        )));
    }
    let malformed = |e: std::io::Error| ArchiveError::Malformed(e.to_string());
    let mut archive = tar::Archive::new(bytes);
    let (mut manifest, mut module) = (None, None);
    for entry in archive.entries().map_err(malformed)? {
        let entry = entry.map_err(malformed)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(ArchiveError::Malformed(format!(
                "entry of type {:?}: only regular files are allowed",
                entry.header().entry_type()
            )));
        }
        let path = entry.path_bytes().into_owned();
        match path.as_slice() {
            b"manifest.json" if manifest.is_none() => {
                manifest = Some(read_capped(entry, MAX_MANIFEST_BYTES, "manifest.json")?)
            }
            b"module.wasm" if module.is_none() => {
                module = Some(read_capped(entry, MAX_MODULE_BYTES, "module.wasm")?)
            }
            other => {
                return Err(ArchiveError::Malformed(format!(
                    "entry {:?}: an archive holds manifest.json and module.wasm, once each",
                    String::from_utf8_lossy(other)
                )))
            }
        }
    }
    let manifest = manifest.ok_or_else(|| ArchiveError::Malformed("no manifest.json".into()))?;
    let module = module.ok_or_else(|| ArchiveError::Malformed("no module.wasm".into()))?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest).map_err(|e| ArchiveError::Manifest(e.to_string()))?;
    manifest.check()?;
    Ok(Archive { manifest, module })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_canonically_and_reads_back() {
        let m = Manifest::new("cheap");
        let a = pack(&m, b"\0asm\x01\0\0\0").unwrap();
        assert_eq!(a, pack(&m, b"\0asm\x01\0\0\0").unwrap());
        let back = unpack(&a).unwrap();
        assert_eq!(back.manifest, m);
        assert_eq!(back.module, b"\0asm\x01\0\0\0");
    }

    #[test]
    fn refuses_what_is_not_an_archive() {
        assert_eq!(
            unpack(b"not a tar at all, not even close....")
                .unwrap_err()
                .code(),
            "archive_malformed"
        );
        let mut builder = tar::Builder::new(Vec::new());
        append(
            &mut builder,
            "manifest.json",
            br#"{"abi":"hallmark-eval/v1","name":"x"}"#,
        )
        .unwrap();
        append(&mut builder, "extra.txt", b"hi").unwrap();
        let bytes = builder.into_inner().unwrap();
        assert_eq!(unpack(&bytes).unwrap_err().code(), "archive_malformed");
        let mut builder = tar::Builder::new(Vec::new());
        append(&mut builder, "manifest.json", br#"{"abi":"v0","name":"x"}"#).unwrap();
        append(&mut builder, "module.wasm", b"").unwrap();
        assert_eq!(
            unpack(&builder.into_inner().unwrap()).unwrap_err().code(),
            "manifest_invalid"
        );
        let mut builder = tar::Builder::new(Vec::new());
        append(&mut builder, "module.wasm", b"").unwrap();
        assert_eq!(
            unpack(&builder.into_inner().unwrap()).unwrap_err().code(),
            "archive_malformed"
        );
        assert_eq!(
            unpack(&vec![0u8; MAX_ARCHIVE_BYTES + 1])
                .unwrap_err()
                .code(),
            "archive_too_large"
        );
    }
}
