//! A rebuild from a recipe, first-hand: fetch the source by its hash, find the image by its
//! digest, run the recipe in the sandbox, and compare what it wrote to `/out` with the
//! on-chain wasm. The outcome is `verified` (exact, or the code sections match), `mismatched`
//! with the rebuilt hash, or `unverified` with a reason code.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::image::ImageStore;
use crate::meta::{code_sha256, sha256_hex};
use crate::recipe::Recipe;
use crate::sandbox::{self, SandboxPolicy, SandboxRun};
use crate::source::{self, ArchiveLimits};

/// Where a rebuild gets inputs pinned by hash (a source archive, the on-chain wasm): the node
/// fetches them from the coordinator's content store, a test from a map. The rebuild checks
/// every byte it gets against the hash it asked for.
pub trait BlobSource: Send + Sync {
    /// The blob with this SHA-256, `Ok(None)` if nobody has it.
    fn fetch(&self, sha256: &str) -> Result<Option<Vec<u8>>, String>;
}

/// A [`BlobSource`] over blobs held in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryBlobs(pub std::collections::BTreeMap<String, Vec<u8>>);

impl MemoryBlobs {
    /// Adds a blob under its own hash; gives back the hash.
    pub fn insert(&mut self, bytes: Vec<u8>) -> String {
        let sha = sha256_hex(&bytes);
        self.0.insert(sha.clone(), bytes);
        sha
    }
}

impl BlobSource for MemoryBlobs {
    fn fetch(&self, sha256: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.get(sha256).cloned())
    }
}

/// The verdict on one wasm and recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuildStatus {
    Verified,
    Mismatched,
    Unverified,
}

impl BuildStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Verified => "verified",
            BuildStatus::Mismatched => "mismatched",
            BuildStatus::Unverified => "unverified",
        }
    }
}

/// How a verified rebuild matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// Byte-identical.
    Exact,
    /// Only custom sections differ.
    Code,
}

/// Why a rebuild could not decide. Each has a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnverifiedReason {
    /// The recipe's image digest is not in the image store.
    ImageUnavailable,
    /// Nobody serves the source archive (or the on-chain wasm) under its hash.
    SourceUnavailable,
    /// The build ran and failed, or wrote no wasm; also an unusable archive or recipe.
    BuildFailed,
    /// The CPU-time or wall-clock limit was reached.
    BuildTimeout,
    /// Memory, file size or process limits were reached.
    ResourceLimit,
}

impl UnverifiedReason {
    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            UnverifiedReason::ImageUnavailable => "image_unavailable",
            UnverifiedReason::SourceUnavailable => "source_unavailable",
            UnverifiedReason::BuildFailed => "build_failed",
            UnverifiedReason::BuildTimeout => "build_timeout",
            UnverifiedReason::ResourceLimit => "resource_limit",
        }
    }

    fn of_code(code: &str) -> Self {
        match code {
            "build_timeout" => UnverifiedReason::BuildTimeout,
            "resource_limit" => UnverifiedReason::ResourceLimit,
            _ => UnverifiedReason::BuildFailed,
        }
    }
}

/// What a rebuild concluded: the part of a claim validators must agree on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BuildOutcome {
    pub status: BuildStatus,
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub match_kind: Option<MatchKind>,
    /// The hash of the wasm the rebuild produced (when it produced one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuilt_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<UnverifiedReason>,
}

impl BuildOutcome {
    fn unverified(reason: UnverifiedReason) -> Self {
        Self {
            status: BuildStatus::Unverified,
            match_kind: None,
            rebuilt_sha256: None,
            reason: Some(reason),
        }
    }
}

/// A rebuild's full report: the outcome, why, and what it ran under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub outcome: BuildOutcome,
    /// One line on how the outcome came about.
    pub detail: String,
    /// The end of the build log (empty when nothing ran).
    pub log: String,
    /// The wasm the build wrote, if any.
    pub wasm: Option<Vec<u8>>,
    pub image_digest: Option<String>,
    pub policy_digest: String,
    pub elapsed_ms: u64,
}

/// Runs recipes first-hand: images from its store, inputs from its blob source, limits from
/// its policy, scratch space under its work directory.
pub struct Rebuilder {
    pub images: ImageStore,
    pub blobs: Arc<dyn BlobSource>,
    pub policy: SandboxPolicy,
    pub bwrap: PathBuf,
    /// Where per-build scratch directories go (must be traversable by the build user).
    pub work_dir: PathBuf,
    pub archive_limits: ArchiveLimits,
}

impl Rebuilder {
    /// A rebuilder with the default sandbox binary and archive limits, scratch space under
    /// the system's temporary directory.
    pub fn new(images: ImageStore, blobs: Arc<dyn BlobSource>, policy: SandboxPolicy) -> Self {
        Self {
            images,
            blobs,
            policy,
            bwrap: sandbox::default_bwrap(),
            work_dir: std::env::temp_dir(),
            archive_limits: ArchiveLimits::default(),
        }
    }

    fn report(&self, outcome: BuildOutcome, detail: impl Into<String>) -> RebuildReport {
        RebuildReport {
            outcome,
            detail: detail.into(),
            log: String::new(),
            wasm: None,
            image_digest: None,
            policy_digest: self.policy.digest(),
            elapsed_ms: 0,
        }
    }

    /// Rebuilds `recipe` and compares the result with the wasm whose SHA-256 is `wasm_sha256`.
    pub fn rebuild(&self, wasm_sha256: &str, recipe: &Recipe) -> RebuildReport {
        use UnverifiedReason as R;
        if let Err(e) = recipe.check() {
            return self.report(BuildOutcome::unverified(R::BuildFailed), e.to_string());
        }
        let Some(digest) = recipe.image_digest() else {
            return self.report(BuildOutcome::unverified(R::BuildFailed), "no image digest");
        };
        let Some(image) = self.images.get(&digest) else {
            let mut r = self.report(
                BuildOutcome::unverified(R::ImageUnavailable),
                format!("no image {digest} in the image store"),
            );
            r.image_digest = Some(digest);
            return r;
        };
        let source_sha = recipe.source_sha256.as_deref().unwrap_or_default();
        let archive = match self.fetch_checked(source_sha) {
            Ok(a) => a,
            Err(detail) => {
                return self.report(BuildOutcome::unverified(R::SourceUnavailable), detail)
            }
        };
        let mut report = self.build(&image, &archive, recipe);
        report.image_digest = Some(digest);
        let Some(wasm) = &report.wasm else {
            return report;
        };
        let rebuilt = sha256_hex(wasm);
        if rebuilt == wasm_sha256 {
            report.outcome = BuildOutcome {
                status: BuildStatus::Verified,
                match_kind: Some(MatchKind::Exact),
                rebuilt_sha256: Some(rebuilt),
                reason: None,
            };
            report.detail = "the rebuild is byte-identical".into();
            return report;
        }
        // Not identical: compare code sections against the on-chain wasm's, if anyone has it.
        let code_match = match self.fetch_checked(wasm_sha256) {
            Ok(onchain) => match (code_sha256(&onchain), code_sha256(wasm)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            },
            Err(_) => false,
        };
        report.outcome = if code_match {
            report.detail = "only custom sections differ".into();
            BuildOutcome {
                status: BuildStatus::Verified,
                match_kind: Some(MatchKind::Code),
                rebuilt_sha256: Some(rebuilt),
                reason: None,
            }
        } else {
            report.detail = format!("the rebuild hashes to {rebuilt}, not {wasm_sha256}");
            BuildOutcome {
                status: BuildStatus::Mismatched,
                match_kind: None,
                rebuilt_sha256: Some(rebuilt),
                reason: None,
            }
        };
        report
    }

    fn fetch_checked(&self, sha256: &str) -> Result<Vec<u8>, String> {
        match self.blobs.fetch(sha256) {
            Ok(Some(bytes)) if sha256_hex(&bytes) == sha256 => Ok(bytes),
            Ok(Some(bytes)) => Err(format!(
                "the blob served for {sha256} hashes to {}",
                sha256_hex(&bytes)
            )),
            Ok(None) => Err(format!("nobody serves {sha256}")),
            Err(e) => Err(format!("fetching {sha256}: {e}")),
        }
    }

    /// Unpacks the source and runs the recipe; the report has `wasm` set when the build wrote
    /// exactly one wasm (its outcome is then filled in by the caller).
    fn build(&self, image: &crate::image::Image, archive: &[u8], recipe: &Recipe) -> RebuildReport {
        use UnverifiedReason as R;
        let failed = |reason, detail: String| self.report(BuildOutcome::unverified(reason), detail);
        let scratch = match tempfile::Builder::new()
            .prefix("hallmark-build-")
            .tempdir_in(&self.work_dir)
        {
            Ok(d) => d,
            Err(e) => return failed(R::BuildFailed, format!("scratch directory: {e}")),
        };
        let src_dir = scratch.path().join("src");
        let out_dir = scratch.path().join("out");
        if let Err(e) = std::fs::create_dir(&src_dir).and_then(|()| std::fs::create_dir(&out_dir)) {
            return failed(R::BuildFailed, format!("scratch directory: {e}"));
        }
        let _ = std::fs::set_permissions(
            scratch.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        );
        let source_sha = recipe.source_sha256.as_deref().unwrap_or_default();
        let root = match source::unpack(archive, source_sha, &src_dir, self.archive_limits) {
            Ok(r) => r,
            Err(e) => {
                return failed(
                    R::BuildFailed,
                    format!("source archive: {e} ({})", e.code()),
                )
            }
        };
        let args = recipe.argv();
        let run = SandboxRun {
            image,
            source: &root,
            out: &out_dir,
            args: &args,
        };
        let ran = match sandbox::run(&self.policy, &self.bwrap, &run) {
            Ok(r) => r,
            Err(e) => return failed(R::BuildFailed, format!("{e} ({})", e.code())),
        };
        let mut report = self.report(BuildOutcome::unverified(R::BuildFailed), String::new());
        report.log = ran.log.clone();
        report.elapsed_ms = ran.elapsed_ms;
        if let Some((code, detail)) = sandbox::failure_of(&ran, &self.policy) {
            report.outcome = BuildOutcome::unverified(UnverifiedReason::of_code(code));
            report.detail = detail;
            return report;
        }
        let mut wasms: Vec<PathBuf> = std::fs::read_dir(&out_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
            .collect();
        wasms.sort();
        match wasms.as_slice() {
            [one] => match std::fs::read(one) {
                Ok(bytes) => report.wasm = Some(bytes),
                Err(e) => report.detail = format!("reading {}: {e}", one.display()),
            },
            [] => report.detail = "the build exited 0 but wrote no .wasm to /out".into(),
            many => {
                report.detail = format!(
                    "the build wrote {} .wasm files to /out; a recipe must build one",
                    many.len()
                )
            }
        }
        report
    }
}
