//! A SEP-58 build recipe: the digest-pinned image, the arguments replayed against its entry
//! point, and the source archive the wasm was built from.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::meta::{is_sha256_hex, MetaEntry};

/// How a wasm was built, as SEP-58 names it (`bldimg`, `bldarg`, `bldopt`, `source_sha256`,
/// `source_uri`) plus the names used before SEP-58 v0.4.0 (`source_repo`, `source_rev`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Recipe {
    /// `bldimg`: a registry reference pinned by digest (`host/repo[:tag]@sha256:…`).
    #[serde(default)]
    pub image: Option<String>,
    /// `bldarg`, in order (none means `contract build`).
    #[serde(default)]
    pub args: Vec<String>,
    /// `bldopt`, in recorded order.
    #[serde(default)]
    pub opts: Vec<String>,
    #[serde(default)]
    pub source_sha256: Option<String>,
    #[serde(default)]
    pub source_uri: Option<String>,
    #[serde(default)]
    pub source_repo: Option<String>,
    #[serde(default)]
    pub source_rev: Option<String>,
    /// The wasm's recorded meta entries a `contract build` replays through `--meta KEY=VAL`
    /// so the rebuilt `contractmetav0` section is byte-identical (SEP-58 Appendix A): every
    /// entry in file order but those the toolchain writes itself (`rsver`, `rssdkver`,
    /// `cliver`). Empty for a recipe that did not come from a wasm's own meta.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meta: Vec<MetaEntry>,
}

/// Meta keys a toolchain writes itself, never replayed.
const TOOLCHAIN_KEYS: &[&str] = &["rsver", "rssdkver", "cliver"];

/// Why a recipe cannot be rebuilt. Each variant has a stable [`RecipeError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    /// A field needed to rebuild is absent (`bldimg` or `source_sha256`).
    #[error("the recipe has no {0}")]
    Incomplete(&'static str),
    /// A field is present but fails its SEP-58 format.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl RecipeError {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            RecipeError::Incomplete(_) => "incomplete_recipe",
            RecipeError::Invalid { .. } => "invalid_recipe",
        }
    }
}

/// The longest argument, option or URI a recipe may carry, and how many of each.
const MAX_FIELD: usize = 1024;
const MAX_ARGS: usize = 64;

/// Whether `opt` matches SEP-58's `^--[A-Za-z][A-Za-z0-9_-]*(=.+)?$`.
pub fn is_bldopt(opt: &str) -> bool {
    let Some(rest) = opt.strip_prefix("--") else {
        return false;
    };
    let (name, value) = match rest.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (rest, None),
    };
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    // `.+` matches no line terminator.
    let value_ok = value.is_none_or(|v| !v.is_empty() && !v.contains(['\n', '\r']));
    first_ok && rest_ok && value_ok
}

/// The digest of a `bldimg` reference (`sha256:` and 64 hex digits) if it matches SEP-58's
/// `^(?:localhost(?::\d+)?|[^\s@/]*[.:][^\s@/]*)/[^\s@]+@sha256:[0-9a-f]{64}$`.
pub fn image_digest(reference: &str) -> Result<String, String> {
    if reference.chars().any(char::is_whitespace) {
        return Err("an image reference has no whitespace".into());
    }
    let (name, digest) = reference
        .rsplit_once('@')
        .ok_or("the image is not pinned by digest (no @sha256:…)")?;
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or("the image digest must be sha256:…")?;
    if !is_sha256_hex(hex) {
        return Err("the image digest must be 64 lowercase hex digits".into());
    }
    if name.contains('@') {
        return Err("the image reference has more than one @".into());
    }
    let (host, path) = name
        .split_once('/')
        .ok_or("the image reference names no registry host (host/repo@sha256:…)")?;
    let localhost = host == "localhost"
        || host
            .strip_prefix("localhost:")
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !(localhost || host.contains(['.', ':'])) {
        return Err(format!(
            "{host:?} is not a registry host (implicit Docker Hub names are not conformant)"
        ));
    }
    if path.is_empty() {
        return Err("the image reference names no repository".into());
    }
    Ok(digest.to_string())
}

impl Recipe {
    /// The recipe a wasm's meta describes. Repeated `bldarg`/`bldopt` keep their order; for
    /// a single-valued key the first entry stands.
    pub fn from_entries(entries: &[MetaEntry]) -> Self {
        let mut r = Recipe::default();
        for e in entries {
            let val = Some(e.val.clone());
            match e.key.as_str() {
                "bldimg" if r.image.is_none() => r.image = val,
                "bldarg" => r.args.push(e.val.clone()),
                "bldopt" => r.opts.push(e.val.clone()),
                "source_sha256" if r.source_sha256.is_none() => r.source_sha256 = val,
                "source_uri" if r.source_uri.is_none() => r.source_uri = val,
                "source_repo" if r.source_repo.is_none() => r.source_repo = val,
                "source_rev" if r.source_rev.is_none() => r.source_rev = val,
                _ => {}
            }
        }
        r.meta = entries
            .iter()
            .filter(|e| !TOOLCHAIN_KEYS.contains(&e.key.as_str()))
            .cloned()
            .collect();
        r
    }

    /// Whether the recipe names everything a rebuild needs (an image and a source hash).
    pub fn is_complete(&self) -> bool {
        self.image.is_some() && self.source_sha256.is_some()
    }

    /// Checks every field against SEP-58's formats and that the recipe is complete.
    pub fn check(&self) -> Result<(), RecipeError> {
        let invalid = |field, message: String| RecipeError::Invalid { field, message };
        let image = self
            .image
            .as_deref()
            .ok_or(RecipeError::Incomplete("bldimg"))?;
        image_digest(image).map_err(|m| invalid("bldimg", m))?;
        let source = self
            .source_sha256
            .as_deref()
            .ok_or(RecipeError::Incomplete("source_sha256"))?;
        if !is_sha256_hex(source) {
            return Err(invalid(
                "source_sha256",
                "must be 64 lowercase hex digits".into(),
            ));
        }
        if self.args.len() > MAX_ARGS || self.opts.len() > MAX_ARGS {
            return Err(invalid(
                "bldarg",
                format!("at most {MAX_ARGS} arguments and {MAX_ARGS} options"),
            ));
        }
        for a in &self.args {
            if a.is_empty() || a.len() > MAX_FIELD || a.contains(['\n', '\r']) {
                return Err(invalid(
                    "bldarg",
                    format!("{a:?} is not one non-empty line"),
                ));
            }
        }
        if let Some(o) = self
            .opts
            .iter()
            .find(|o| !is_bldopt(o) || o.len() > MAX_FIELD)
        {
            return Err(invalid(
                "bldopt",
                format!("{o:?} does not match ^--[A-Za-z][A-Za-z0-9_-]*(=.+)?$"),
            ));
        }
        if self.meta.len() > MAX_ARGS * 2
            || self.meta.iter().any(|e| {
                e.key.is_empty() || e.key.contains('=') || e.key.len() + e.val.len() > MAX_FIELD
            })
        {
            return Err(invalid(
                "meta",
                format!(
                    "at most {} entries, each a key without = and at most {MAX_FIELD} bytes",
                    MAX_ARGS * 2
                ),
            ));
        }
        if let Some(uri) = &self.source_uri {
            let scheme_ok = uri.split_once(':').is_some_and(|(s, rest)| {
                s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
                    && !rest.is_empty()
            });
            if !scheme_ok || uri.chars().any(char::is_whitespace) || uri.len() > MAX_FIELD {
                return Err(invalid("source_uri", format!("{uri:?} is not a URI")));
            }
        }
        Ok(())
    }

    /// The image digest (`sha256:…`) of a checked recipe.
    pub fn image_digest(&self) -> Option<String> {
        self.image.as_deref().and_then(|i| image_digest(i).ok())
    }

    /// The arguments given to the image's entry point: the `bldarg` entries (or `contract
    /// build`), then the `bldopt` entries, then — for the default `contract build` only — each
    /// recorded meta entry as `--meta KEY=VAL`.
    pub fn argv(&self) -> Vec<String> {
        let default = self.args.is_empty();
        let args = if default {
            vec!["contract".to_string(), "build".to_string()]
        } else {
            self.args.clone()
        };
        let meta = self
            .meta
            .iter()
            .filter(|_| default)
            .flat_map(|e| ["--meta".to_string(), format!("{}={}", e.key, e.val)]);
        args.into_iter()
            .chain(self.opts.iter().cloned())
            .chain(meta)
            .collect()
    }

    /// A digest of the fields a rebuild replays (image, arguments, options, source hash):
    /// two recipes with the same key build the same thing.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |tag: &str, v: &str| {
            h.update(tag.as_bytes());
            h.update(u64::try_from(v.len()).unwrap_or(u64::MAX).to_le_bytes());
            h.update(v.as_bytes());
        };
        field("image", self.image.as_deref().unwrap_or(""));
        for a in &self.args {
            field("arg", a);
        }
        for o in &self.opts {
            field("opt", o);
        }
        field("source", self.source_sha256.as_deref().unwrap_or(""));
        for e in &self.meta {
            field("meta", &format!("{}={}", e.key, e.val));
        }
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn image_references_follow_sep58() {
        for ok in [
            "docker.io/stellar/stellar-cli@",
            "docker.io/stellar/stellar-cli:26.0.0@",
            "localhost/hallmark/wat@",
            "localhost:5000/a@",
            "registry.example.com:5000/repo/image@",
        ] {
            assert_eq!(image_digest(&format!("{ok}{D}")).unwrap(), D, "{ok}");
        }
        for bad in [
            "stellar/stellar-cli@",
            "docker.io/stellar/stellar-cli",
            "docker.io/x@sha256:ABC@",
            "docker.io/@",
            "local host/x@",
        ] {
            assert!(image_digest(&format!("{bad}{D}")).is_err(), "{bad}");
        }
        assert!(image_digest("docker.io/x@sha256:1234").is_err());
    }

    #[test]
    fn bldopt_follows_sep58() {
        for ok in ["--locked", "--profile=release", "--features=a,b", "--a_b-c"] {
            assert!(is_bldopt(ok), "{ok}");
        }
        for bad in ["-x", "--", "--1a", "--a=", "locked", "--a b", "--a=b\nc"] {
            assert!(!is_bldopt(bad), "{bad}");
        }
    }

    #[test]
    fn recipes_come_from_meta_in_order() {
        let e = |k: &str, v: &str| MetaEntry {
            key: k.into(),
            val: v.into(),
        };
        let r = Recipe::from_entries(&[
            e("bldimg", &format!("docker.io/s/cli@{D}")),
            e("bldopt", "--locked"),
            e("bldarg", "contract"),
            e("bldarg", "build"),
            e("bldopt", "--profile=release"),
            e("source_repo", "github:x/y"),
            e("source_rev", "abc"),
        ]);
        assert_eq!(
            r.argv(),
            ["contract", "build", "--locked", "--profile=release"]
        );
        assert_eq!(r.check().unwrap_err().code(), "incomplete_recipe");
        let full = Recipe {
            source_sha256: Some("ab".repeat(32)),
            ..r.clone()
        };
        full.check().unwrap();
        assert_ne!(full.key(), r.key());
        let bad = Recipe {
            opts: vec!["-x".into()],
            ..full.clone()
        };
        assert_eq!(bad.check().unwrap_err().code(), "invalid_recipe");
        assert_eq!(Recipe::default().argv(), ["contract", "build"]);
    }
}
