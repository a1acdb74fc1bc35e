//! Source archives (SEP-58 §2): a `.tar` or `.tar.gz` holding one top-level directory, checked
//! against its SHA-256 and unpacked within limits before any build runs.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Bounds on what an archive may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    pub max_entries: usize,
    pub max_unpacked_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self {
            max_entries: 20_000,
            max_unpacked_bytes: 512 << 20,
        }
    }
}

/// Why a source archive cannot be used. Each variant has a stable [`SourceError::code`].
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the archive hashes to {actual}, the recipe names {expected}")]
    HashMismatch { expected: String, actual: String },
    #[error("not a tar or tar.gz archive: {0}")]
    Unsupported(String),
    #[error("the archive must hold exactly one top-level directory: {0}")]
    Layout(String),
    #[error("the archive is too large: {0}")]
    TooLarge(String),
    #[error("unpacking: {0}")]
    Io(#[from] std::io::Error),
}

impl SourceError {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            SourceError::HashMismatch { .. } => "source_hash_mismatch",
            SourceError::Unsupported(_) => "unsupported_archive",
            SourceError::Layout(_) => "archive_layout",
            SourceError::TooLarge(_) => "archive_too_large",
            SourceError::Io(_) => "archive_io",
        }
    }
}

/// Checks `archive` against `expected_sha256` and unpacks it under `dest`; gives back the one
/// top-level directory (what the sandbox mounts at `/source`).
pub fn unpack(
    archive: &[u8],
    expected_sha256: &str,
    dest: &Path,
    limits: ArchiveLimits,
) -> Result<PathBuf, SourceError> {
    let actual = crate::meta::sha256_hex(archive);
    if actual != expected_sha256 {
        return Err(SourceError::HashMismatch {
            expected: expected_sha256.to_string(),
            actual,
        });
    }
    let reader: Box<dyn Read> = if archive.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(archive))
    } else if archive.starts_with(b"PK\x03\x04") {
        return Err(SourceError::Unsupported(
            "zip archives are not supported".into(),
        ));
    } else {
        Box::new(archive)
    };
    // Count what the decompressor yields, not what headers claim.
    let mut tar = tar::Archive::new(reader.take(limits.max_unpacked_bytes.saturating_add(1)));
    tar.set_preserve_permissions(false);
    tar.set_unpack_xattrs(false);
    let mut top: Option<String> = None;
    let mut count = 0usize;
    let mut total = 0u64;
    for entry in tar
        .entries()
        .map_err(|e| SourceError::Unsupported(e.to_string()))?
    {
        let mut entry = entry.map_err(|e| SourceError::Unsupported(e.to_string()))?;
        count += 1;
        if count > limits.max_entries {
            return Err(SourceError::TooLarge(format!(
                "more than {} entries",
                limits.max_entries
            )));
        }
        total = total.saturating_add(entry.header().size().unwrap_or(u64::MAX));
        if total > limits.max_unpacked_bytes {
            return Err(SourceError::TooLarge(format!(
                "more than {} bytes unpacked",
                limits.max_unpacked_bytes
            )));
        }
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
        {
            continue;
        }
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
            return Err(SourceError::Unsupported(format!(
                "{:?} entries are not allowed in a source archive",
                kind
            )));
        }
        let path = entry
            .path()
            .map_err(|e| SourceError::Unsupported(e.to_string()))?
            .into_owned();
        let mut comps = path
            .components()
            .filter(|c| !matches!(c, Component::CurDir));
        let first = match comps.next() {
            Some(Component::Normal(n)) => n.to_string_lossy().into_owned(),
            _ => {
                return Err(SourceError::Layout(format!(
                    "{} is not inside a directory",
                    path.display()
                )))
            }
        };
        if comps.clone().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(SourceError::Layout(format!(
                "{} leaves the archive",
                path.display()
            )));
        }
        match &top {
            None => top = Some(first.clone()),
            Some(t) if *t != first => {
                return Err(SourceError::Layout(format!("both {t}/ and {first}/")))
            }
            Some(_) => {}
        }
        if comps.next().is_none() && !kind.is_dir() {
            return Err(SourceError::Layout(format!("{first} is not a directory")));
        }
        // `unpack_in` refuses paths that leave `dest`, through `..` or an unpacked link.
        if !entry.unpack_in(dest)? {
            return Err(SourceError::Layout(format!(
                "{} leaves the archive",
                path.display()
            )));
        }
    }
    let top = top.ok_or_else(|| SourceError::Layout("the archive is empty".into()))?;
    let root = dest.join(top);
    open_to_all(&root)?;
    Ok(root)
}

/// Lets the sandbox's unprivileged user read the unpacked tree (never write it).
fn open_to_all(at: &Path) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(at)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if meta.is_dir() {
        fs::set_permissions(at, fs::Permissions::from_mode(0o755))?;
        for e in fs::read_dir(at)? {
            open_to_all(&e?.path())?;
        }
    } else {
        let exec = mode & 0o111 != 0;
        fs::set_permissions(
            at,
            fs::Permissions::from_mode(if exec { 0o555 } else { 0o444 }),
        )?;
    }
    Ok(())
}

/// Packs the directory `dir` as a reproducible `.tar.gz` whose one top-level directory is
/// `prefix` (sorted entries, zero times and owners): how tests and tools make an archive whose
/// hash a recipe can pin.
pub fn pack_dir(dir: &Path, prefix: &str) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    append_sorted(&mut tar, dir, Path::new(prefix))?;
    tar.into_inner()?.finish()
}

fn append_sorted<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    name: &Path,
) -> std::io::Result<()> {
    tar.append_dir(name, dir)?;
    let mut names: Vec<_> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for n in names {
        let p = dir.join(&n);
        if fs::symlink_metadata(&p)?.is_dir() {
            append_sorted(tar, &p, &name.join(&n))?;
        } else {
            tar.append_path_with_name(&p, name.join(&n))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_unpack_to_their_one_directory() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("a.wat"), "(module)").unwrap();
        fs::create_dir(src.path().join("sub")).unwrap();
        fs::write(src.path().join("sub/b"), "b").unwrap();
        let archive = pack_dir(src.path(), "contract-1.0").unwrap();
        assert_eq!(archive, pack_dir(src.path(), "contract-1.0").unwrap());
        let sha = crate::meta::sha256_hex(&archive);
        let out = tempfile::tempdir().unwrap();
        let root = unpack(&archive, &sha, out.path(), ArchiveLimits::default()).unwrap();
        assert_eq!(root, out.path().join("contract-1.0"));
        assert_eq!(fs::read_to_string(root.join("sub/b")).unwrap(), "b");
        let e = unpack(
            &archive,
            &"0".repeat(64),
            out.path(),
            ArchiveLimits::default(),
        );
        assert_eq!(e.unwrap_err().code(), "source_hash_mismatch");
        let small = ArchiveLimits {
            max_entries: 2,
            max_unpacked_bytes: 1 << 20,
        };
        let out2 = tempfile::tempdir().unwrap();
        assert_eq!(
            unpack(&archive, &sha, out2.path(), small)
                .unwrap_err()
                .code(),
            "archive_too_large"
        );
    }

    #[test]
    fn archives_that_escape_or_sprawl_are_refused() {
        // Two top-level entries.
        let mut b = tar::Builder::new(Vec::new());
        for name in ["a/x", "b/y"] {
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, &b"1"[..]).unwrap();
        }
        let two = b.into_inner().unwrap();
        let out = tempfile::tempdir().unwrap();
        let sha = crate::meta::sha256_hex(&two);
        assert_eq!(
            unpack(&two, &sha, out.path(), ArchiveLimits::default())
                .unwrap_err()
                .code(),
            "archive_layout"
        );
        // A path with `..` in it.
        let mut raw = vec![0u8; 512];
        raw[..10].copy_from_slice(b"a/../../x\0");
        let mut h = tar::Header::from_byte_slice(&raw).clone();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut escape = h.as_bytes().to_vec();
        escape.push(b'1');
        escape.resize(512 * 2, 0);
        escape.extend(vec![0u8; 1024]);
        let sha = crate::meta::sha256_hex(&escape);
        let out = tempfile::tempdir().unwrap();
        assert_eq!(
            unpack(&escape, &sha, out.path(), ArchiveLimits::default())
                .unwrap_err()
                .code(),
            "archive_layout"
        );
        assert!(!out.path().parent().unwrap().join("x").exists());
        let zip = b"PK\x03\x04rest";
        assert_eq!(
            unpack(
                zip,
                &crate::meta::sha256_hex(zip),
                out.path(),
                ArchiveLimits::default()
            )
            .unwrap_err()
            .code(),
            "unsupported_archive"
        );
    }
}
