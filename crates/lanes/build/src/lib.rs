//! The build lane: was this wasm really built from that source?
//!
//! - [`meta`] reads SEP-46 contract meta (`contractmetav0`, an XDR `SCMetaEntry` stream) and
//!   the SEP-58 build fields in it;
//! - [`recipe`] is a SEP-58 recipe (digest-pinned image, arguments, source hash);
//! - [`image`] is the content-addressed image store;
//! - [`source`] checks and unpacks source archives;
//! - [`sandbox`] runs a recipe hermetically (bubblewrap, no network, rlimits, wall clock);
//! - [`rebuild`] turns a recipe into an outcome (`verified`, `mismatched`, `unverified`);
//! - [`lane`] plugs it into the job pipeline (builder claims, validators' first-hand votes).
//!
//! The crate depends on `hallmark-core` only; the node gives it a blob source and a config.

pub mod host_images;
pub mod image;
pub mod lane;
pub mod meta;
pub mod rebuild;
pub mod recipe;
pub mod samples;
pub mod sandbox;
pub mod source;

pub use image::{Image, ImageConfig, ImageStore};
pub use lane::{
    BuildClaim, BuildConfig, BuildContext, BuildExecutor, BuildLane, BuildSearchExecutor,
    BuildSearchLane, BuildSpec, ImageTrust, RecipeSource, SearchSpec, LANE, SEARCH_LANE,
};
pub use meta::{inspect, read_meta, sha256_hex, MetaEntry, MetaError, WasmMeta};
pub use rebuild::{
    BlobSource, BuildOutcome, BuildStatus, MatchKind, MemoryBlobs, RebuildReport, Rebuilder,
    UnverifiedReason,
};
pub use recipe::{Recipe, RecipeError};
pub use sandbox::SandboxPolicy;
