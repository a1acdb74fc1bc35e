//! The build lane in the job pipeline: [`BuildLane`] is the validator side (each validator
//! rebuilds the recipe itself and votes whether the builder's claim matches its own first-hand
//! outcome), [`BuildExecutor`] the worker side (the builder's rebuild, handed in as a
//! [`BuildClaim`]).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use hallmark_core::{ExecuteError, Executor, JobLane, SpecError, Verdict, VerdictBuilder};
use serde::{Deserialize, Serialize};

use crate::meta::{is_sha256_hex, sha256_hex};
use crate::rebuild::{BuildOutcome, BuildStatus, RebuildReport, Rebuilder};
use crate::recipe::Recipe;
use crate::sandbox::SandboxPolicy;

/// The lane's wire name.
pub const LANE: &str = "build";

/// The verifier's checks, in order.
pub const CHECKS: &[&str] = &["claim", "recipe", "rebuild", "agreement"];

/// The largest claim a builder may hand in (a rebuilt wasm, base64, and a log tail).
pub const MAX_CLAIM_BYTES: usize = 16 << 20;

/// Where a job's recipe came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecipeSource {
    /// The wasm's own `contractmetav0` section.
    OnchainMeta,
    /// The ledger's build-info registry.
    Registry,
    /// A candidate recipe tried by search.
    Search,
}

impl RecipeSource {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipeSource::OnchainMeta => "onchain_meta",
            RecipeSource::Registry => "registry",
            RecipeSource::Search => "search",
        }
    }
}

/// A build job: rebuild `recipe` and compare with the wasm `wasm_sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    pub wasm_sha256: String,
    pub recipe: Recipe,
    pub recipe_source: RecipeSource,
}

/// What a builder hands in: its outcome and the evidence behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BuildClaim {
    pub wasm_sha256: String,
    /// [`Recipe::key`] of the recipe built.
    pub recipe_key: String,
    pub outcome: BuildOutcome,
    pub detail: String,
    pub image_digest: Option<String>,
    /// [`SandboxPolicy::digest`] of the limits it ran under.
    pub policy_digest: String,
    /// The end of the build log.
    pub log: String,
    /// The wasm it built, standard base64.
    pub wasm_base64: Option<String>,
    pub elapsed_ms: u64,
}

impl BuildClaim {
    /// The claim a rebuild report makes.
    pub fn of(spec: &BuildSpec, report: &RebuildReport) -> Self {
        Self {
            wasm_sha256: spec.wasm_sha256.clone(),
            recipe_key: spec.recipe.key(),
            outcome: report.outcome.clone(),
            detail: report.detail.clone(),
            image_digest: report.image_digest.clone(),
            policy_digest: report.policy_digest.clone(),
            log: report.log.clone(),
            wasm_base64: report
                .wasm
                .as_ref()
                .map(|w| base64::engine::general_purpose::STANDARD.encode(w)),
            elapsed_ms: report.elapsed_ms,
        }
    }

    /// Checks the claim is about `spec` and consistent in itself.
    pub fn check(&self, spec: &BuildSpec) -> Result<(), String> {
        if self.wasm_sha256 != spec.wasm_sha256 {
            return Err(format!("the claim is about {}", self.wasm_sha256));
        }
        if self.recipe_key != spec.recipe.key() {
            return Err("the claim is about another recipe".into());
        }
        let o = &self.outcome;
        let shaped = match o.status {
            BuildStatus::Verified => {
                o.match_kind.is_some() && o.rebuilt_sha256.is_some() && o.reason.is_none()
            }
            BuildStatus::Mismatched => {
                o.match_kind.is_none() && o.rebuilt_sha256.is_some() && o.reason.is_none()
            }
            BuildStatus::Unverified => o.match_kind.is_none() && o.reason.is_some(),
        };
        if !shaped {
            return Err(format!("a {} outcome with these fields", o.status.as_str()));
        }
        if let Some(b64) = &self.wasm_base64 {
            let wasm = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("wasm_base64: {e}"))?;
            if Some(sha256_hex(&wasm)) != o.rebuilt_sha256 {
                return Err("the handed-in wasm is not the one the claim names".into());
            }
        }
        Ok(())
    }
}

/// How far to trust a verification, from its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageTrust {
    /// The image digest is on the operator's allowlist.
    Trusted,
    /// A known image (listed, or in the image store) and a public recipe.
    Auditable,
    /// Anything else.
    Arbitrary,
}

impl ImageTrust {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageTrust::Trusted => "trusted",
            ImageTrust::Auditable => "auditable",
            ImageTrust::Arbitrary => "arbitrary",
        }
    }
}

/// `[lanes.build]`: where images live, which are trusted, and the sandbox's limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BuildConfig {
    /// The image store (default `<data_dir>/images`).
    pub images_dir: Option<PathBuf>,
    /// Where per-build scratch directories go (default the system's temporary directory).
    pub work_dir: Option<PathBuf>,
    /// The bubblewrap binary (default `bwrap` on `PATH`).
    pub bwrap: Option<PathBuf>,
    /// Image digests (`sha256:…`) whose verifications are `trusted`.
    pub trusted_images: Vec<String>,
    /// Further image digests known to the operator (`auditable` with a public recipe).
    pub known_images: Vec<String>,
    /// The sandbox's limits.
    pub sandbox: SandboxPolicy,
}

impl BuildConfig {
    /// The trust level of a verification of `recipe`: `public_recipe` says whether its
    /// source is published (a `source_uri`, or an archive the network serves).
    pub fn trust(&self, recipe: &Recipe, in_store: bool, public_recipe: bool) -> ImageTrust {
        let Some(digest) = recipe.image_digest() else {
            return ImageTrust::Arbitrary;
        };
        let listed = |l: &[String]| l.contains(&digest);
        if listed(&self.trusted_images) {
            ImageTrust::Trusted
        } else if (listed(&self.known_images) || in_store) && public_recipe {
            ImageTrust::Auditable
        } else {
            ImageTrust::Arbitrary
        }
    }

    /// Checks the digests listed.
    pub fn check(&self) -> Result<(), String> {
        let digests: BTreeSet<&String> = self
            .trusted_images
            .iter()
            .chain(&self.known_images)
            .collect();
        for d in digests {
            let ok = d.strip_prefix("sha256:").is_some_and(is_sha256_hex);
            if !ok {
                return Err(format!("{d:?} is not an image digest (sha256:…)"));
            }
        }
        Ok(())
    }
}

/// The build lane's validator side. Its context is the validator's own rebuilder.
#[derive(Debug, Clone, Copy)]
pub struct BuildLane {
    /// How long a builder may hold a job (its sandbox's wall-clock limit and a margin), ms.
    pub lease_ms: u64,
}

impl Default for BuildLane {
    fn default() -> Self {
        Self {
            lease_ms: (SandboxPolicy::default().wall_secs + 60) * 1000,
        }
    }
}

/// Checks a build spec: a wasm hash and a complete, well-formed recipe.
pub fn check_build_spec(spec: &BuildSpec) -> Result<(), SpecError> {
    if !is_sha256_hex(&spec.wasm_sha256) {
        return Err(SpecError::OutOfBounds(
            "wasm_sha256 must be 64 lowercase hex digits".into(),
        ));
    }
    spec.recipe
        .check()
        .map_err(|e| SpecError::OutOfBounds(format!("{e} ({})", e.code())))
}

/// What a validator verifies with: its own images, sandbox and blob source.
#[derive(Clone)]
pub struct BuildContext {
    pub rebuilder: Arc<Rebuilder>,
}

impl BuildLane {
    /// The verdict on a builder's claim given this validator's own rebuild: pure, so an
    /// auditor holding both can replay the vote.
    pub fn judge(spec: &BuildSpec, artifact: &[u8], own: &RebuildReport) -> Verdict {
        let mut v = VerdictBuilder::new(LANE);
        let claim: BuildClaim = match serde_json::from_slice(artifact) {
            Ok(c) => c,
            Err(e) => {
                v.fail_code("claim", "malformed_claim", e.to_string());
                v.skip(&CHECKS[1..]);
                return v.finish();
            }
        };
        if let Err(e) = claim.check(spec) {
            v.fail_code("claim", "inconsistent_claim", e);
            v.skip(&CHECKS[1..]);
            return v.finish();
        }
        v.pass(
            "claim",
            format!("the builder claims {}", outcome_line(&claim.outcome)),
        );
        v.pass(
            "recipe",
            format!(
                "{} from {}",
                spec.recipe.argv().join(" "),
                spec.recipe_source.as_str()
            ),
        );
        v.pass(
            "rebuild",
            format!(
                "first-hand: {} ({})",
                outcome_line(&own.outcome),
                own.detail
            ),
        );
        if claim.outcome == own.outcome {
            v.pass(
                "agreement",
                "the claim matches this validator's own rebuild",
            );
        } else {
            v.fail_code(
                "agreement",
                "claim_disagrees",
                format!(
                    "the builder claims {}, this validator's rebuild gives {}",
                    outcome_line(&claim.outcome),
                    outcome_line(&own.outcome)
                ),
            );
        }
        v.finish()
    }
}

/// `verified (exact) abc…`, `mismatched def…`, `unverified (build_timeout)`.
pub fn outcome_line(o: &BuildOutcome) -> String {
    let mut s = o.status.as_str().to_string();
    if let Some(m) = o.match_kind {
        s.push_str(match m {
            crate::rebuild::MatchKind::Exact => " (exact)",
            crate::rebuild::MatchKind::Code => " (code)",
        });
    }
    if let Some(r) = o.reason {
        s.push_str(&format!(" ({})", r.code()));
    }
    if let Some(h) = &o.rebuilt_sha256 {
        s.push_str(&format!(" {h}"));
    }
    s
}

impl JobLane for BuildLane {
    type Spec = BuildSpec;
    type Context = BuildContext;

    fn name(&self) -> &'static str {
        LANE
    }

    fn check_names(&self) -> &'static [&'static str] {
        CHECKS
    }

    fn check_spec(&self, spec: &BuildSpec) -> Result<(), SpecError> {
        check_build_spec(spec)
    }

    fn lease_ms(&self) -> Option<u64> {
        Some(self.lease_ms)
    }

    fn describe(&self, spec: &BuildSpec) -> String {
        format!(
            "rebuild {} with {}",
            &spec.wasm_sha256[..spec.wasm_sha256.len().min(12)],
            spec.recipe.image.as_deref().unwrap_or("?")
        )
    }

    fn max_artifact_bytes(&self) -> usize {
        MAX_CLAIM_BYTES
    }

    fn artifact_digest(&self, artifact: &[u8]) -> String {
        sha256_hex(artifact)
    }

    /// Rebuilds first-hand through the context's rebuilder (the one I/O this verifier does,
    /// confined to the sandbox), then judges the claim purely with [`BuildLane::judge`].
    fn verify(&self, ctx: &BuildContext, spec: &BuildSpec, artifact: &[u8]) -> Verdict {
        let own = ctx.rebuilder.rebuild(&spec.wasm_sha256, &spec.recipe);
        Self::judge(spec, artifact, &own)
    }

    fn self_test(&self, evidence: Option<&std::path::Path>) -> Option<Verdict> {
        Some(crate::meta::self_test(evidence))
    }
}

/// The build lane's worker side: rebuilds the recipe in its own sandbox and hands in the
/// claim with the wasm and the log.
pub struct BuildExecutor {
    pub rebuilder: Arc<Rebuilder>,
}

impl Executor for BuildExecutor {
    type Spec = BuildSpec;

    fn lane(&self) -> &'static str {
        LANE
    }

    fn backend(&self) -> String {
        "bubblewrap".into()
    }

    fn execute(&self, spec: &BuildSpec) -> Result<Vec<u8>, ExecuteError> {
        check_build_spec(spec)?;
        let report = self.rebuilder.rebuild(&spec.wasm_sha256, &spec.recipe);
        serde_json::to_vec(&BuildClaim::of(spec, &report))
            .map_err(|e| ExecuteError::Failed(e.to_string()))
    }
}

/// The search lane's wire name: one candidate recipe tried by a builder, for a wasm without a
/// complete recipe.
pub const SEARCH_LANE: &str = "build-search";

/// The search lane's checks.
pub const SEARCH_CHECKS: &[&str] = &["claim", "hint"];

/// A search job: try one candidate recipe against the wasm `wasm_sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    pub wasm_sha256: String,
    pub recipe: Recipe,
}

/// The search lane's validator side. A builder's search claim is only a hint: validators
/// check it is well-formed and about this candidate, and rebuild nothing. The candidate that
/// reproduces the wasm is then confirmed by a `build` job that every validator rebuilds
/// first-hand, so no search claim decides anything on its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildSearchLane {
    /// How long a builder may hold a search job, ms (as [`BuildLane::lease_ms`]).
    pub lease_ms: u64,
}

impl JobLane for BuildSearchLane {
    type Spec = SearchSpec;
    type Context = ();

    fn name(&self) -> &'static str {
        SEARCH_LANE
    }

    fn check_names(&self) -> &'static [&'static str] {
        SEARCH_CHECKS
    }

    fn check_spec(&self, spec: &SearchSpec) -> Result<(), SpecError> {
        check_build_spec(&search_as_build(spec))
    }

    fn describe(&self, spec: &SearchSpec) -> String {
        format!("try {}", spec.recipe.argv().join(" "))
    }

    fn max_artifact_bytes(&self) -> usize {
        MAX_CLAIM_BYTES
    }

    fn artifact_digest(&self, artifact: &[u8]) -> String {
        sha256_hex(artifact)
    }

    /// A decided search job pays and slashes nobody: it is a hint for the confirmation.
    fn settles_on_ledger(&self) -> bool {
        false
    }

    fn lease_ms(&self) -> Option<u64> {
        (self.lease_ms > 0).then_some(self.lease_ms)
    }

    fn verify(&self, _: &(), spec: &SearchSpec, artifact: &[u8]) -> Verdict {
        let mut v = VerdictBuilder::new(SEARCH_LANE);
        let build = search_as_build(spec);
        match serde_json::from_slice::<BuildClaim>(artifact) {
            Err(e) => {
                v.fail_code("claim", "malformed_claim", e.to_string());
                v.skip(&SEARCH_CHECKS[1..]);
            }
            Ok(c) => match c.check(&build) {
                Err(e) => {
                    v.fail_code("claim", "inconsistent_claim", e);
                    v.skip(&SEARCH_CHECKS[1..]);
                }
                Ok(()) => {
                    v.pass("claim", outcome_line(&c.outcome));
                    v.pass("hint", "confirmed, if it reproduces, by a build job");
                }
            },
        }
        v.finish()
    }
}

fn search_as_build(spec: &SearchSpec) -> BuildSpec {
    BuildSpec {
        wasm_sha256: spec.wasm_sha256.clone(),
        recipe: spec.recipe.clone(),
        recipe_source: RecipeSource::Search,
    }
}

/// The search lane's worker side: the same first-hand rebuild as [`BuildExecutor`].
pub struct BuildSearchExecutor {
    pub rebuilder: Arc<Rebuilder>,
}

impl Executor for BuildSearchExecutor {
    type Spec = SearchSpec;

    fn lane(&self) -> &'static str {
        SEARCH_LANE
    }

    fn backend(&self) -> String {
        "bubblewrap".into()
    }

    fn execute(&self, spec: &SearchSpec) -> Result<Vec<u8>, ExecuteError> {
        let build = search_as_build(spec);
        check_build_spec(&build)?;
        let report = self.rebuilder.rebuild(&spec.wasm_sha256, &spec.recipe);
        serde_json::to_vec(&BuildClaim::of(&build, &report))
            .map_err(|e| ExecuteError::Failed(e.to_string()))
    }
}
