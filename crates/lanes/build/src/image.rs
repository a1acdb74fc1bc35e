//! Content-addressed build images: a root filesystem and its entry point, named by the
//! SHA-256 of a canonical listing of both, stored read-only under the node's image store.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How a build runs in an image: what is executed (the recipe's arguments follow) and the
/// environment it gets on top of the sandbox's own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageConfig {
    /// The entry point, an absolute path inside the image plus fixed leading arguments.
    pub entrypoint: Vec<String>,
    /// `KEY=VALUE` pairs.
    #[serde(default)]
    pub env: Vec<String>,
}

/// A stored image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `sha256:` and 64 hex digits.
    pub digest: String,
    pub rootfs: PathBuf,
    pub config: ImageConfig,
}

/// Why an image cannot be imported or read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The tree holds something an image may not (a device, a socket, a path not UTF-8).
    #[error("{0}")]
    Unsupported(String),
    /// The configuration is unusable (no entry point, a relative one, a bad env pair).
    #[error("image config: {0}")]
    Config(String),
}

impl ImageError {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::Io { .. } => "image_io",
            ImageError::Unsupported(_) => "unsupported_image",
            ImageError::Config(_) => "invalid_image_config",
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Directories every image has, where the sandbox mounts its own file systems.
const MOUNT_POINTS: &[&str] = &["source", "out", "tmp", "proc", "dev"];

/// The image store: `<root>/<hex digest>/{rootfs/, image.json}`.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    /// A store rooted at `root` (created on first import).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Where the store lives.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir_of(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        crate::meta::is_sha256_hex(hex).then(|| self.root.join(hex))
    }

    /// The stored image with `digest`, if any.
    pub fn get(&self, digest: &str) -> Option<Image> {
        let dir = self.dir_of(digest)?;
        let config: ImageConfig =
            serde_json::from_slice(&fs::read(dir.join("image.json")).ok()?).ok()?;
        let rootfs = dir.join("rootfs");
        rootfs.is_dir().then(|| Image {
            digest: digest.to_string(),
            rootfs,
            config,
        })
    }

    /// Every stored image's digest.
    pub fn list(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| crate::meta::is_sha256_hex(n))
            .map(|n| format!("sha256:{n}"))
            .filter(|d| self.get(d).is_some())
            .collect();
        out.sort();
        out
    }

    /// Copies the root filesystem at `dir` with `config` into the store and gives back its
    /// digest. Importing the same tree and config again gives the same digest.
    pub fn import_dir(&self, dir: &Path, config: &ImageConfig) -> Result<Image, ImageError> {
        check_config(config)?;
        let staging = self.staging()?;
        let rootfs = staging.path().join("rootfs");
        copy_tree(dir, &rootfs)?;
        add_mount_points(&rootfs)?;
        let digest = format!("sha256:{}", tree_digest(&rootfs, config)?);
        self.commit(staging, config, &digest)
    }

    /// A fresh staging directory inside the store (so the final rename is atomic).
    fn staging(&self) -> Result<tempfile::TempDir, ImageError> {
        fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        make_traversable(&self.root)?;
        tempfile::Builder::new()
            .prefix(".import-")
            .tempdir_in(&self.root)
            .map_err(io(&self.root))
    }

    /// Writes the config beside the staged `rootfs/` and moves the whole under its digest,
    /// unless an image with that digest is already stored.
    fn commit(
        &self,
        staging: tempfile::TempDir,
        config: &ImageConfig,
        digest: &str,
    ) -> Result<Image, ImageError> {
        if let Some(stored) = self.get(digest) {
            return Ok(stored);
        }
        let dest = self
            .dir_of(digest)
            .ok_or_else(|| ImageError::Unsupported(format!("digest {digest:?}")))?;
        let text =
            serde_json::to_vec_pretty(config).map_err(|e| ImageError::Config(e.to_string()))?;
        let json = staging.path().join("image.json");
        fs::write(&json, text).map_err(io(&json))?;
        fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))
            .map_err(io(staging.path()))?;
        // A half-written directory under the digest (a crash mid-rename) is replaced.
        let _ = fs::remove_dir_all(&dest);
        fs::rename(staging.keep(), &dest).map_err(io(&dest))?;
        self.get(digest)
            .ok_or_else(|| ImageError::Unsupported(format!("{digest} did not store")))
    }
}

/// Creates the directories every image has (where the sandbox mounts its own file systems).
fn add_mount_points(rootfs: &Path) -> Result<(), ImageError> {
    for m in MOUNT_POINTS {
        let p = rootfs.join(m);
        if fs::symlink_metadata(&p).is_err() {
            fs::create_dir(&p).map_err(io(&p))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).map_err(io(&p))?;
        }
    }
    Ok(())
}

/// The media types an OCI layout's manifest and layers may have.
const OCI_MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

impl ImageStore {
    /// Imports a single-platform image from an OCI image layout (`oci-layout`, `index.json`,
    /// `blobs/sha256/…`, as `skopeo copy … oci:DIR` writes it): every blob is checked against
    /// its digest, the layers are applied in order (whiteouts honoured), and the image is
    /// stored under its manifest digest — the digest a registry reference pins, so a recipe's
    /// `bldimg` finds it.
    pub fn import_oci_layout(&self, layout: &Path) -> Result<Image, ImageError> {
        let blob = |digest: &str| -> Result<Vec<u8>, ImageError> {
            let hex = digest
                .strip_prefix("sha256:")
                .filter(|h| crate::meta::is_sha256_hex(h))
                .ok_or_else(|| ImageError::Unsupported(format!("digest {digest:?}")))?;
            let path = layout.join("blobs/sha256").join(hex);
            let bytes = fs::read(&path).map_err(io(&path))?;
            if crate::meta::sha256_hex(&bytes) != hex {
                return Err(ImageError::Unsupported(format!(
                    "{} does not hash to its name",
                    path.display()
                )));
            }
            Ok(bytes)
        };
        let json = |bytes: &[u8], what: &str| -> Result<serde_json::Value, ImageError> {
            serde_json::from_slice(bytes)
                .map_err(|e| ImageError::Unsupported(format!("{what}: {e}")))
        };
        let index_path = layout.join("index.json");
        let index = json(
            &fs::read(&index_path).map_err(io(&index_path))?,
            "index.json",
        )?;
        let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        let [entry] = manifests.as_slice() else {
            return Err(ImageError::Unsupported(format!(
                "the layout lists {} manifests; import a single-platform image (SEP-58 pins one architecture)",
                manifests.len()
            )));
        };
        let digest = entry["digest"].as_str().unwrap_or_default().to_string();
        let manifest = json(&blob(&digest)?, "manifest")?;
        let media = manifest["mediaType"]
            .as_str()
            .or(entry["mediaType"].as_str())
            .unwrap_or(OCI_MANIFEST_TYPES[0]);
        if !OCI_MANIFEST_TYPES.contains(&media) {
            return Err(ImageError::Unsupported(format!(
                "{media}: not an image manifest (an index or manifest list names several platforms)"
            )));
        }
        let config_digest = manifest["config"]["digest"].as_str().unwrap_or_default();
        let config = json(&blob(config_digest)?, "image config")?;
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let image_config = ImageConfig {
            entrypoint: strings(&config["config"]["Entrypoint"]),
            env: strings(&config["config"]["Env"]),
        };
        check_config(&image_config)?;
        if let Some(stored) = self.get(&digest) {
            return Ok(stored);
        }
        let staging = self.staging()?;
        let rootfs = staging.path().join("rootfs");
        fs::create_dir(&rootfs).map_err(io(&rootfs))?;
        for layer in manifest["layers"].as_array().cloned().unwrap_or_default() {
            let d = layer["digest"].as_str().unwrap_or_default();
            apply_layer(&blob(d)?, &rootfs)?;
        }
        normalise_tree(&rootfs)?;
        add_mount_points(&rootfs)?;
        self.commit(staging, &image_config, &digest)
    }
}

/// Applies one layer (tar, gzip-compressed or not) on top of `rootfs`, honouring OCI
/// whiteouts (`.wh.NAME` deletes NAME, `.wh..wh..opq` empties its directory).
fn apply_layer(layer: &[u8], rootfs: &Path) -> Result<(), ImageError> {
    let reader: Box<dyn Read> = if layer.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(layer))
    } else {
        Box::new(layer)
    };
    let mut tar = tar::Archive::new(reader);
    tar.set_preserve_permissions(true);
    tar.set_unpack_xattrs(false);
    tar.set_overwrite(true);
    let bad = |e: std::io::Error| ImageError::Unsupported(format!("layer: {e}"));
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some(target) = name.strip_prefix(".wh.") {
            let parent = rootfs.join(path.parent().unwrap_or(Path::new("")));
            if !parent.starts_with(rootfs) {
                continue;
            }
            if target == ".wh..opq" {
                for e in fs::read_dir(&parent).into_iter().flatten().flatten() {
                    let _ = remove_any(&e.path());
                }
            } else {
                let _ = remove_any(&parent.join(target));
            }
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_block_special() || kind.is_character_special() || kind.is_fifo() {
            continue;
        }
        entry.unpack_in(rootfs).map_err(bad)?;
    }
    Ok(())
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(_) => Ok(()),
    }
}

/// Makes an unpacked tree readable by the sandbox's user and writable by nobody.
fn normalise_tree(at: &Path) -> Result<(), ImageError> {
    let meta = fs::symlink_metadata(at).map_err(io(at))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.is_dir() {
        fs::set_permissions(at, fs::Permissions::from_mode(0o755)).map_err(io(at))?;
        for e in fs::read_dir(at).map_err(io(at))? {
            normalise_tree(&e.map_err(io(at))?.path())?;
        }
    } else {
        let exec = meta.mode() & 0o111 != 0;
        let mode = if exec { 0o555 } else { 0o444 };
        fs::set_permissions(at, fs::Permissions::from_mode(mode)).map_err(io(at))?;
    }
    Ok(())
}

fn check_config(config: &ImageConfig) -> Result<(), ImageError> {
    // No entry point is allowed (an OCI image like `rust`): the recipe's arguments are then
    // the whole command (SEP-58 Appendix B).
    if let Some(p) = config.entrypoint.first() {
        if !p.starts_with('/') && p.contains('/') {
            return Err(ImageError::Config(format!(
                "the entry point {p:?} must be an absolute path or a bare command name"
            )));
        }
        if p.is_empty() {
            return Err(ImageError::Config("an empty entry point".into()));
        }
    }
    if let Some(bad) = config.env.iter().find(|e| {
        e.split_once('=')
            .is_none_or(|(k, _)| k.is_empty() || k.contains(['\0', '\n']))
    }) {
        return Err(ImageError::Config(format!("{bad:?} is not KEY=VALUE")));
    }
    Ok(())
}

/// Opens `dir` (not its ancestors) to the sandbox's unprivileged user: read and traverse.
fn make_traversable(dir: &Path) -> Result<(), ImageError> {
    let meta = fs::metadata(dir).map_err(io(dir))?;
    let mode = meta.permissions().mode() | 0o755;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o7777)).map_err(io(dir))
}

/// Copies a tree without following symbolic links; files and directories become readable by
/// everyone (the sandbox runs unprivileged) and nobody's writable.
fn copy_tree(from: &Path, to: &Path) -> Result<(), ImageError> {
    let meta = fs::symlink_metadata(from).map_err(io(from))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(from).map_err(io(from))?;
        std::os::unix::fs::symlink(&target, to).map_err(io(to))?;
    } else if ft.is_dir() {
        fs::create_dir(to).map_err(io(to))?;
        let mut names: Vec<_> = fs::read_dir(from)
            .map_err(io(from))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io(from))?;
        names.sort();
        for name in names {
            copy_tree(&from.join(&name), &to.join(&name))?;
        }
        fs::set_permissions(to, fs::Permissions::from_mode(0o755)).map_err(io(to))?;
    } else if ft.is_file() {
        fs::copy(from, to).map_err(io(from))?;
        let exec = meta.mode() & 0o111 != 0;
        let mode = if exec { 0o555 } else { 0o444 };
        fs::set_permissions(to, fs::Permissions::from_mode(mode)).map_err(io(to))?;
    } else {
        return Err(ImageError::Unsupported(format!(
            "{}: only files, directories and symbolic links go into an image",
            from.display()
        )));
    }
    Ok(())
}

/// SHA-256 over a canonical listing of the tree (path, kind, executable bit, content hash or
/// link target, sorted by path) and the config.
fn tree_digest(rootfs: &Path, config: &ImageConfig) -> Result<String, ImageError> {
    let mut lines = Vec::new();
    walk(rootfs, rootfs, &mut lines)?;
    lines.sort();
    let mut h = Sha256::new();
    h.update(b"hallmark-image-v1\n");
    for l in lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    h.update(serde_json::to_vec(config).map_err(|e| ImageError::Config(e.to_string()))?);
    Ok(hex::encode(h.finalize()))
}

fn walk(root: &Path, at: &Path, out: &mut Vec<String>) -> Result<(), ImageError> {
    let rel = at
        .strip_prefix(root)
        .ok()
        .and_then(|p| p.to_str())
        .ok_or_else(|| ImageError::Unsupported(format!("{}: not UTF-8", at.display())))?;
    let meta = fs::symlink_metadata(at).map_err(io(at))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(at).map_err(io(at))?;
        out.push(format!("L /{rel} -> {}", target.display()));
    } else if ft.is_dir() {
        out.push(format!("D /{rel}"));
        for e in fs::read_dir(at).map_err(io(at))? {
            let e = e.map_err(io(at))?;
            walk(root, &e.path(), out)?;
        }
    } else {
        let mut h = Sha256::new();
        let mut f = fs::File::open(at).map_err(io(at))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).map_err(io(at))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let x = if meta.mode() & 0o111 != 0 { "x" } else { "-" };
        out.push(format!("F /{rel} {x} {}", hex::encode(h.finalize())));
    }
    Ok(())
}

/// Assembles a root filesystem from tools installed on this machine: each binary with the
/// shared libraries it loads (from `ldd`), plus `files` written as given (`path`, content,
/// executable). How tests, the devnet and the bench make images from Debian's own tools.
pub fn assemble_host_rootfs(
    dest: &Path,
    binaries: &[&str],
    files: &[(&str, &str, bool)],
) -> Result<(), ImageError> {
    let mut wanted: Vec<PathBuf> = Vec::new();
    for b in binaries {
        let path = which(b).ok_or_else(|| {
            ImageError::Unsupported(format!("{b} is not installed on this machine"))
        })?;
        let out = std::process::Command::new("ldd")
            .arg(&path)
            .output()
            .map_err(io(Path::new("ldd")))?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let lib = match line.split_once("=>") {
                Some((_, r)) => r.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            if let Some(lib) = lib.filter(|l| l.starts_with('/')) {
                wanted.push(PathBuf::from(lib));
            }
        }
        // Every name on the way to the real file (`wasm-ld` → `wasm-ld-14` → …): tools
        // call each other by those names.
        let mut link = path.clone();
        for _ in 0..8 {
            wanted.push(link.clone());
            match fs::read_link(&link) {
                Ok(target) => {
                    link = link.parent().unwrap_or(Path::new("/")).join(target);
                }
                Err(_) => break,
            }
        }
    }
    for src in wanted {
        let rel = src.strip_prefix("/").unwrap_or(&src);
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        // Copy what a link points at under the link's own name.
        let real = fs::canonicalize(&src).map_err(io(&src))?;
        fs::copy(&real, &to).map_err(io(&real))?;
        fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).map_err(io(&to))?;
        // The loader is also found through /lib64 on x86_64.
        if src.to_string_lossy().contains("ld-linux") {
            let alt = dest.join("lib64").join(src.file_name().unwrap_or_default());
            if !alt.exists() {
                fs::create_dir_all(dest.join("lib64")).map_err(io(dest))?;
                fs::copy(&real, &alt).map_err(io(&alt))?;
            }
        }
    }
    for (path, content, exec) in files {
        let to = dest.join(path.trim_start_matches('/'));
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        fs::write(&to, content).map_err(io(&to))?;
        let mode = if *exec { 0o755 } else { 0o644 };
        fs::set_permissions(&to, fs::Permissions::from_mode(mode)).map_err(io(&to))?;
    }
    Ok(())
}

/// The absolute path of `name` on `PATH` (or `name` itself when it is a path).
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_is_content_addressed() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("bin")).unwrap();
        fs::write(src.path().join("bin/tool"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(
            src.path().join("bin/tool"),
            fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::os::unix::fs::symlink("bin/tool", src.path().join("tool")).unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let store = ImageStore::new(store_dir.path().join("images"));
        let cfg = ImageConfig {
            entrypoint: vec!["/bin/tool".into()],
            env: vec![],
        };
        let a = store.import_dir(src.path(), &cfg).unwrap();
        let b = store.import_dir(src.path(), &cfg).unwrap();
        assert_eq!(a, b);
        assert_eq!(store.list(), vec![a.digest.clone()]);
        assert!(a.rootfs.join("source").is_dir());
        let mode = fs::metadata(a.rootfs.join("bin/tool")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o555);
        // Another entry point is another image.
        let other = ImageConfig {
            entrypoint: vec!["/tool".into()],
            env: vec![],
        };
        assert_ne!(
            store.import_dir(src.path(), &other).unwrap().digest,
            a.digest
        );
        // A changed file is another image.
        fs::write(src.path().join("bin/tool"), "#!/bin/sh\necho\n").unwrap();
        assert_ne!(store.import_dir(src.path(), &cfg).unwrap().digest, a.digest);
        assert!(store.get("sha256:nothex").is_none());
        let bad = ImageConfig {
            entrypoint: vec!["bin/tool".into()],
            env: vec![],
        };
        assert_eq!(
            store.import_dir(src.path(), &bad).unwrap_err().code(),
            "invalid_image_config"
        );
    }
}
