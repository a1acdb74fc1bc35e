//! The lane registry: the one module of the node that names lane crates.
//!
//! The pipeline modules (job board, voter, executor loop; round intake, report, gossip and
//! decision) know a lane only as a [`DynJobLane`], [`DynExecutor`], [`DynRoundLane`] or
//! [`DynRoundWorker`] looked up here by name; they import no lane crate. A new lane is its
//! own crate implementing [`hallmark_core::JobLane`] (with [`hallmark_core::Executor`]) or
//! [`hallmark_core::RoundLane`] (with [`hallmark_core::RoundWorker`]) plus one line in
//! [`LaneRegistry::standard`].

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use hallmark_core::{
    Arrival, Envelope, ExecuteError, Executor, JobLane, Keypair, LaneShape, Measurement, PublicKey,
    RosterRun, RoundId, RoundInfo, RoundIntake, RoundLane, RoundRecord, RoundWorker, SpecError,
    Verdict, VerdictBuilder,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::builds::{BuildSupport, WasmInputError};
use crate::client::NodeClient;
use crate::config::NodeConfig;

/// A job lane with its spec type erased to JSON and its verifier context bound, as the
/// pipeline sees it.
pub trait DynJobLane: Send + Sync {
    /// The lane's wire name.
    fn name(&self) -> &'static str;
    /// The verifier's check names, in order.
    fn check_names(&self) -> &'static [&'static str];
    /// The lane's known-answer self-test on the evidence in `evidence` (`None`: it ships none).
    fn self_test(&self, evidence: Option<&std::path::Path>) -> Option<Verdict>;
    /// Parses and checks a spec; gives back its normal form.
    fn check_spec(&self, spec: &Value) -> Result<Value, SpecError>;
    /// A short description of a (checked) spec for logs and views.
    fn describe(&self, spec: &Value) -> String;
    /// The largest artifact a worker may hand in.
    fn max_artifact_bytes(&self) -> usize;
    /// The digest a worker signs for an artifact.
    fn artifact_digest(&self, artifact: &[u8]) -> String;
    /// Whether settled jobs go to the ledger.
    fn settles_on_ledger(&self) -> bool;
    /// The lease a worker gets on this lane's jobs, if the lane asks for one.
    fn lease_ms(&self) -> Option<u64>;
    /// Runs the lane's verifier with this node's context (trust roots, policy, time).
    fn verify(&self, spec: &Value, artifact: &[u8]) -> Verdict;
}

/// Builds a lane's verifier context at each verification (so a context may read the clock
/// here, in the node, while the verifier itself stays pure).
type ContextFn<C> = Box<dyn Fn() -> C + Send + Sync>;

struct BoundJobLane<L: JobLane> {
    lane: L,
    context: ContextFn<L::Context>,
}

impl<L: JobLane> BoundJobLane<L> {
    fn parse(&self, spec: &Value) -> Result<L::Spec, SpecError> {
        L::Spec::deserialize(spec).map_err(|e| SpecError::Malformed(e.to_string()))
    }
}

impl<L: JobLane> DynJobLane for BoundJobLane<L> {
    fn name(&self) -> &'static str {
        self.lane.name()
    }

    fn self_test(&self, evidence: Option<&std::path::Path>) -> Option<Verdict> {
        self.lane.self_test(evidence)
    }

    fn check_names(&self) -> &'static [&'static str] {
        self.lane.check_names()
    }

    fn check_spec(&self, spec: &Value) -> Result<Value, SpecError> {
        let parsed = self.parse(spec)?;
        self.lane.check_spec(&parsed)?;
        serde_json::to_value(&parsed).map_err(|e| SpecError::Malformed(e.to_string()))
    }

    fn describe(&self, spec: &Value) -> String {
        match self.parse(spec) {
            Ok(s) => self.lane.describe(&s),
            Err(e) => format!("unreadable spec ({e})"),
        }
    }

    fn max_artifact_bytes(&self) -> usize {
        self.lane.max_artifact_bytes()
    }

    fn artifact_digest(&self, artifact: &[u8]) -> String {
        self.lane.artifact_digest(artifact)
    }

    fn settles_on_ledger(&self) -> bool {
        self.lane.settles_on_ledger()
    }

    fn lease_ms(&self) -> Option<u64> {
        self.lane.lease_ms()
    }

    fn verify(&self, spec: &Value, artifact: &[u8]) -> Verdict {
        match self.parse(spec) {
            Ok(spec) => self.lane.verify(&(self.context)(), &spec, artifact),
            Err(e) => {
                // Fail closed: a spec the verifier cannot read is a rejection, named.
                let mut v = VerdictBuilder::new(self.lane.name());
                v.fail_code("spec", e.code(), e.to_string());
                v.finish()
            }
        }
    }
}

/// A job lane's worker side with its spec type erased to JSON.
pub trait DynExecutor: Send + Sync {
    /// The lane it works for.
    fn lane(&self) -> &'static str;
    /// Its backend, for status pages.
    fn backend(&self) -> String;
    /// Runs a spec (as the client's request carries it).
    fn execute(&self, spec: &Value) -> Result<Vec<u8>, ExecuteError>;
}

impl<E: Executor> DynExecutor for E {
    fn lane(&self) -> &'static str {
        Executor::lane(self)
    }

    fn backend(&self) -> String {
        Executor::backend(self)
    }

    fn execute(&self, spec: &Value) -> Result<Vec<u8>, ExecuteError> {
        let spec = E::Spec::deserialize(spec).map_err(|e| SpecError::Malformed(e.to_string()))?;
        Executor::execute(self, &spec)
    }
}

/// A derived round as the pipeline holds it: the lane's own round type, opaque to the
/// pipeline and handed back to the same lane.
pub type RoundState = Arc<dyn Any + Send + Sync>;

/// A round lane with its parameter type erased to JSON, as the round pipeline sees it.
pub trait DynRoundLane: Send + Sync {
    /// The lane's wire name.
    fn name(&self) -> &'static str;
    /// The checks `accept` runs, in order.
    fn check_names(&self) -> &'static [&'static str];
    /// The lane's known-answer self-test on the evidence in `evidence` (`None`: it ships none).
    fn self_test(&self, evidence: Option<&std::path::Path>) -> Option<Verdict>;
    /// Parses and checks round parameters; gives back their normal form.
    fn check_params(&self, params: &serde_json::Value) -> Result<serde_json::Value, SpecError>;
    /// The largest submission a validator reads.
    fn max_submission_bytes(&self) -> usize;
    /// Regenerates a round from its announcement.
    fn derive_round(
        &self,
        info: &RoundInfo,
        params: &serde_json::Value,
    ) -> Result<RoundState, SpecError>;
    /// The round a submission names.
    fn submission_round(&self, submission: &Envelope) -> Option<RoundId>;
    /// Checks one submission first-hand.
    fn accept(
        &self,
        info: &RoundInfo,
        round: &RoundState,
        arrival: &Arrival,
        submission: &Envelope,
    ) -> (Verdict, Option<RoundRecord>);
    /// Scores from this validator's own records.
    fn score(
        &self,
        info: &RoundInfo,
        round: &RoundState,
        records: &[RoundRecord],
        workers: &[PublicKey],
    ) -> BTreeMap<PublicKey, f64>;
    /// How submissions reach validators.
    fn intake(&self) -> RoundIntake;
    /// A roster lane's check of an uploaded archive: its manifest.
    fn check_submission(&self, archive: &[u8]) -> Result<Value, SpecError>;
    /// A roster lane's first-hand measurement of a run.
    fn measure(
        &self,
        info: &RoundInfo,
        round: &RoundState,
        run: &RosterRun,
        workers: &[PublicKey],
    ) -> Result<Measurement, SpecError>;
}

struct BoundRoundLane<L: RoundLane>(L);

impl<L: RoundLane> BoundRoundLane<L> {
    fn parse(&self, params: &serde_json::Value) -> Result<L::Params, SpecError> {
        L::Params::deserialize(params).map_err(|e| SpecError::Malformed(e.to_string()))
    }
}

impl<L: RoundLane> DynRoundLane for BoundRoundLane<L> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn self_test(&self, evidence: Option<&std::path::Path>) -> Option<Verdict> {
        self.0.self_test(evidence)
    }

    fn check_names(&self) -> &'static [&'static str] {
        self.0.check_names()
    }

    fn check_params(&self, params: &serde_json::Value) -> Result<serde_json::Value, SpecError> {
        let parsed = self.parse(params)?;
        self.0.check_params(&parsed)?;
        serde_json::to_value(&parsed).map_err(|e| SpecError::Malformed(e.to_string()))
    }

    fn max_submission_bytes(&self) -> usize {
        self.0.max_submission_bytes()
    }

    fn derive_round(
        &self,
        info: &RoundInfo,
        params: &serde_json::Value,
    ) -> Result<RoundState, SpecError> {
        let parsed = self.parse(params)?;
        Ok(Arc::new(self.0.derive_round(info, &parsed)?))
    }

    fn submission_round(&self, submission: &Envelope) -> Option<RoundId> {
        self.0.submission_round(submission)
    }

    fn accept(
        &self,
        info: &RoundInfo,
        round: &RoundState,
        arrival: &Arrival,
        submission: &Envelope,
    ) -> (Verdict, Option<RoundRecord>) {
        match round.downcast_ref::<L::Round>() {
            Some(r) => self.0.accept(info, r, arrival, submission),
            None => {
                // Fail closed: a round this lane did not derive cannot be checked against.
                let mut v = VerdictBuilder::new(self.0.name());
                v.fail("round_state", "the round was derived by another lane");
                (v.finish(), None)
            }
        }
    }

    fn score(
        &self,
        info: &RoundInfo,
        round: &RoundState,
        records: &[RoundRecord],
        workers: &[PublicKey],
    ) -> BTreeMap<PublicKey, f64> {
        match round.downcast_ref::<L::Round>() {
            Some(r) => self.0.score(info, r, records, workers),
            // Nobody earns anything from a round this lane cannot read.
            None => workers.iter().map(|w| (*w, 0.0)).collect(),
        }
    }

    fn intake(&self) -> RoundIntake {
        self.0.intake()
    }

    fn check_submission(&self, archive: &[u8]) -> Result<Value, SpecError> {
        self.0.check_submission(archive)
    }

    fn measure(
        &self,
        info: &RoundInfo,
        round: &RoundState,
        run: &RosterRun,
        workers: &[PublicKey],
    ) -> Result<Measurement, SpecError> {
        match round.downcast_ref::<L::Round>() {
            Some(r) => self.0.measure(info, r, run, workers),
            None => Err(SpecError::Malformed(
                "the round was derived by another lane".into(),
            )),
        }
    }
}

/// A round lane's worker side, as the worker loop sees it.
pub trait DynRoundWorker: Send + Sync {
    /// The lane it works.
    fn lane(&self) -> &'static str;
    /// Works a round (derived by the same lane), handing over each signed submission.
    fn work(
        &self,
        info: &RoundInfo,
        round: &RoundState,
        key: &Keypair,
        submit: &mut dyn FnMut(Envelope),
    ) -> Result<(), ExecuteError>;
}

struct BoundRoundWorker<W: RoundWorker> {
    lane: &'static str,
    worker: W,
}

impl<W: RoundWorker> DynRoundWorker for BoundRoundWorker<W> {
    fn lane(&self) -> &'static str {
        self.lane
    }

    fn work(
        &self,
        info: &RoundInfo,
        round: &RoundState,
        key: &Keypair,
        submit: &mut dyn FnMut(Envelope),
    ) -> Result<(), ExecuteError> {
        let round = round
            .downcast_ref::<<W::Lane as RoundLane>::Round>()
            .ok_or_else(|| ExecuteError::Failed("the round was derived by another lane".into()))?;
        self.worker.work(info, round, key, submit)
    }
}

/// What `hallmark lanes` prints for one lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LaneInfo {
    pub name: String,
    /// `job` or `round`.
    pub shape: LaneShape,
    /// The verifier's checks, in order.
    pub checks: Vec<String>,
    /// Whether this node's workers can execute it.
    pub executor: bool,
}

/// Why a node's lane configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LaneConfigError {
    /// A `[lanes.NAME]` section for a lane this binary does not run.
    #[error("[lanes.{0}]: no such lane (`hallmark lanes` lists them)")]
    UnknownLane(String),
    /// A lane's section does not parse or describes an unusable setting.
    #[error("[lanes.{lane}]: {message}")]
    Invalid { lane: &'static str, message: String },
}

impl LaneConfigError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            LaneConfigError::UnknownLane(_) => "unknown_lane",
            LaneConfigError::Invalid { .. } => "invalid_lane_config",
        }
    }
}

/// A lane's `[lanes.NAME]` section parsed as its config type (its defaults when absent).
fn lane_section<T: serde::de::DeserializeOwned + Default>(
    cfg: &NodeConfig,
    lane: &'static str,
) -> Result<T, LaneConfigError> {
    match cfg.lanes.get(lane) {
        None => Ok(T::default()),
        Some(v) => v.clone().try_into().map_err(|e| LaneConfigError::Invalid {
            lane,
            message: e.to_string(),
        }),
    }
}

/// The tee lane's trust from `[lanes.tee]`: profile roots, policy and the NVIDIA key file.
fn tee_trust(cfg: &NodeConfig) -> Result<Arc<hallmark_tee::TeeTrust>, LaneConfigError> {
    let invalid = |message: String| LaneConfigError::Invalid {
        lane: "tee",
        message,
    };
    let c: hallmark_tee::lane::TeeConfig = lane_section(cfg, "tee")?;
    let jwks = match &c.nvidia_jwks_file {
        Some(p) => Some(std::fs::read(p).map_err(|e| invalid(format!("{}: {e}", p.display())))?),
        None => None,
    };
    let trust = hallmark_tee::TeeTrust::from_config(&c, jwks.as_deref())
        .map_err(|e| invalid(e.to_string()))?;
    if trust.jwks.keys.is_empty() {
        tracing::warn!("no NVIDIA JWKS configured for the tee lane: GPU evidence will be rejected (fail closed)");
    }
    Ok(Arc::new(trust))
}

/// The build lane's blob source on a node: wasm and source archives fetched by hash from
/// the coordinator's content store (the rebuild checks every byte against the hash).
struct CoordinatorBlobs {
    client: NodeClient,
    /// The largest blob taken (a source archive's cap); a larger answer is refused as it
    /// arrives.
    max_bytes: usize,
}

impl hallmark_build::BlobSource for CoordinatorBlobs {
    fn fetch(&self, sha256: &str) -> Result<Option<Vec<u8>>, String> {
        // Rebuilds run on blocking threads of the node's runtime.
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "no runtime to fetch blobs with".to_string())?;
        let path = format!("/v1/blobs/{sha256}");
        match handle.block_on(self.client.get_bytes_capped(&path, self.max_bytes)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The build lane's rebuilder and settings from `[lanes.build]`.
fn build_lane(
    cfg: &NodeConfig,
) -> Result<(Arc<hallmark_build::Rebuilder>, hallmark_build::BuildConfig), LaneConfigError> {
    let c: hallmark_build::BuildConfig = lane_section(cfg, "build")?;
    c.check().map_err(|message| LaneConfigError::Invalid {
        lane: "build",
        message,
    })?;
    let images = hallmark_build::ImageStore::new(
        c.images_dir
            .clone()
            .unwrap_or_else(|| cfg.data_dir.join("images")),
    );
    let blobs = Arc::new(CoordinatorBlobs {
        client: NodeClient::new(&cfg.network.coordinator_url),
        max_bytes: cfg
            .coordinator
            .builds
            .max_source_bytes
            .max(cfg.coordinator.builds.max_wasm_bytes),
    });
    let mut rebuilder = hallmark_build::Rebuilder::new(images, blobs, c.sandbox.clone());
    if let Some(b) = &c.bwrap {
        rebuilder.bwrap = b.clone();
    }
    if let Some(w) = &c.work_dir {
        rebuilder.work_dir = w.clone();
    }
    Ok((Arc::new(rebuilder), c))
}

/// The build lane's side of the coordinator's verification API.
struct BuildLaneSupport {
    config: hallmark_build::BuildConfig,
    images: hallmark_build::ImageStore,
}

impl BuildLaneSupport {
    fn recipe(v: &Value) -> Result<hallmark_build::Recipe, SpecError> {
        hallmark_build::Recipe::deserialize(v).map_err(|e| SpecError::Malformed(e.to_string()))
    }
}

impl BuildSupport for BuildLaneSupport {
    fn meta_recipe(&self, wasm: &[u8]) -> Result<Option<Value>, WasmInputError> {
        match hallmark_build::inspect(wasm) {
            Ok(m) if m.recipe.is_complete() => Ok(serde_json::to_value(&m.recipe).ok()),
            Ok(_) => Ok(None),
            Err(hallmark_build::MetaError::NoContractMeta) => Ok(None),
            Err(e) => Err(WasmInputError {
                code: e.code(),
                message: e.to_string(),
            }),
        }
    }

    fn check_recipe(&self, recipe: &Value) -> Result<Value, SpecError> {
        let r = Self::recipe(recipe)?;
        r.check()
            .map_err(|e| SpecError::OutOfBounds(format!("{e} ({})", e.code())))?;
        serde_json::to_value(&r).map_err(|e| SpecError::Malformed(e.to_string()))
    }

    fn recipe_key(&self, recipe: &Value) -> String {
        Self::recipe(recipe).map(|r| r.key()).unwrap_or_default()
    }

    fn image_trust(&self, recipe: &Value, public_source: bool) -> &'static str {
        let Ok(r) = Self::recipe(recipe) else {
            return hallmark_build::ImageTrust::Arbitrary.as_str();
        };
        let in_store = r
            .image_digest()
            .is_some_and(|d| self.images.get(&d).is_some());
        self.config.trust(&r, in_store, public_source).as_str()
    }
}

/// The lanes a node runs, by name.
#[derive(Clone, Default)]
pub struct LaneRegistry {
    jobs: BTreeMap<&'static str, Arc<dyn DynJobLane>>,
    executors: BTreeMap<&'static str, Arc<dyn DynExecutor>>,
    rounds: BTreeMap<&'static str, Arc<dyn DynRoundLane>>,
    round_workers: BTreeMap<&'static str, Arc<dyn DynRoundWorker>>,
    build_support: Option<Arc<dyn BuildSupport>>,
    /// The roots of trust each lane's verifier context accepts evidence under, by name (what
    /// readiness reads to tell real-hardware trust from a devnet's simulated root).
    trust_roots: BTreeMap<&'static str, Vec<String>>,
}

impl LaneRegistry {
    /// The lanes every node runs, with verifier contexts from `cfg` (its `[lanes.NAME]`
    /// sections). One line per lane.
    pub fn standard(cfg: &NodeConfig) -> Result<Self, LaneConfigError> {
        // `build-search` is the build lane's second job shape and shares `[lanes.build]`.
        let known = ["sat", "stark", "tee", "build", "eval"];
        if let Some(other) = cfg.lanes.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(LaneConfigError::UnknownLane(other.clone()));
        }
        let tee = tee_trust(cfg)?;
        let (rebuilder, build) = build_lane(cfg)?;
        let support = BuildLaneSupport {
            images: rebuilder.images.clone(),
            config: build,
        };
        let ctx = hallmark_build::BuildContext {
            rebuilder: rebuilder.clone(),
        };
        // A builder may hold a build job as long as its sandbox may run, and a minute more.
        let lease_ms = rebuilder
            .policy
            .wall_secs
            .saturating_add(60)
            .saturating_mul(1000);
        Ok(Self::default()
            .with_job_lane(hallmark_build::BuildLane { lease_ms }, move || ctx.clone())
            .with_executor(hallmark_build::BuildExecutor {
                rebuilder: rebuilder.clone(),
            })
            .with_job_lane(hallmark_build::BuildSearchLane { lease_ms }, || ())
            .with_executor(hallmark_build::BuildSearchExecutor { rebuilder })
            .with_build_support(Arc::new(support))
            .with_round_lane(hallmark_sat::SatLane, hallmark_sat::SatWorker)
            .with_roster_lane(hallmark_eval::EvalLane::new().map_err(|e| {
                LaneConfigError::Invalid {
                    lane: "eval",
                    message: e.to_string(),
                }
            })?)
            .with_job_lane(hallmark_stark::StarkLane, || {
                hallmark_stark::SecurityPolicy::NETWORK
            })
            .with_executor(hallmark_stark::StarkExecutor::default())
            .with_trust_roots(
                "tee",
                tee.roots.roots.iter().map(|r| r.name.clone()).collect(),
            )
            .with_job_lane(hallmark_tee::TeeLane, move || hallmark_tee::TeeContext {
                trust: tee.clone(),
                now: u64::try_from(hallmark_core::time::now_unix()).unwrap_or(0),
            }))
    }

    /// Records the roots of trust `lane`'s verifier accepts evidence under.
    pub fn with_trust_roots(mut self, lane: &'static str, roots: Vec<String>) -> Self {
        self.trust_roots.insert(lane, roots);
        self
    }

    /// The roots of trust each lane accepts evidence under, by lane.
    pub fn trust_roots(&self) -> BTreeMap<String, Vec<String>> {
        self.trust_roots
            .iter()
            .map(|(l, r)| (l.to_string(), r.clone()))
            .collect()
    }

    /// Sets what the coordinator's build verification API asks of the build lane.
    pub fn with_build_support(mut self, support: Arc<dyn BuildSupport>) -> Self {
        self.build_support = Some(support);
        self
    }

    /// The build lane's support for the verification API, if this node runs that lane.
    pub fn build_support(&self) -> Option<&Arc<dyn BuildSupport>> {
        self.build_support.as_ref()
    }

    /// Adds (or replaces) a round lane and its worker side.
    pub fn with_round_lane<L: RoundLane, W: RoundWorker<Lane = L>>(
        mut self,
        lane: L,
        worker: W,
    ) -> Self {
        let name = lane.name();
        self.rounds.insert(name, Arc::new(BoundRoundLane(lane)));
        self.round_workers
            .insert(name, Arc::new(BoundRoundWorker { lane: name, worker }));
        self
    }

    /// Adds (or replaces) a roster lane: a round lane whose workers commit and upload
    /// archives (no worker loop on this side; `hallmark eval submit` hands them in).
    pub fn with_roster_lane<L: RoundLane>(mut self, lane: L) -> Self {
        let name = lane.name();
        self.rounds.insert(name, Arc::new(BoundRoundLane(lane)));
        self.round_workers.remove(name);
        self
    }

    /// The round lane called `name`.
    pub fn round_lane(&self, name: &str) -> Option<&Arc<dyn DynRoundLane>> {
        self.rounds.get(name)
    }

    /// Every round lane.
    pub fn round_lanes(&self) -> impl Iterator<Item = &Arc<dyn DynRoundLane>> {
        self.rounds.values()
    }

    /// The names of every round lane.
    pub fn round_lane_names(&self) -> Vec<&'static str> {
        self.rounds.keys().copied().collect()
    }

    /// The round lanes whose submissions arrive by `intake`.
    pub fn round_lanes_taking(
        &self,
        intake: RoundIntake,
    ) -> impl Iterator<Item = &Arc<dyn DynRoundLane>> {
        self.rounds.values().filter(move |l| l.intake() == intake)
    }

    /// The worker side of every round lane this node works.
    pub fn round_workers(&self) -> impl Iterator<Item = &Arc<dyn DynRoundWorker>> {
        self.round_workers.values()
    }

    /// The largest submission any pushed round lane reads (the witness route's body limit;
    /// roster lanes' archives go to the coordinator instead).
    pub fn max_submission_bytes(&self) -> usize {
        self.round_lanes_taking(RoundIntake::Pushed)
            .map(|l| l.max_submission_bytes())
            .max()
            .unwrap_or(0)
    }

    /// Adds (or replaces) a job lane whose verifier gets `context()` at each verification.
    pub fn with_job_lane<L: JobLane>(
        mut self,
        lane: L,
        context: impl Fn() -> L::Context + Send + Sync + 'static,
    ) -> Self {
        let name = lane.name();
        let bound = BoundJobLane {
            lane,
            context: Box::new(context),
        };
        self.jobs.insert(name, Arc::new(bound));
        self
    }

    /// Adds (or replaces) the worker side of a job lane.
    pub fn with_executor<E: Executor>(mut self, executor: E) -> Self {
        self.executors
            .insert(Executor::lane(&executor), Arc::new(executor));
        self
    }

    /// Drops every job executor and round worker (a node that verifies but does not work).
    pub fn without_executors(mut self) -> Self {
        self.executors.clear();
        self.round_workers.clear();
        self
    }

    /// The job lane called `name`.
    pub fn job_lane(&self, name: &str) -> Option<&Arc<dyn DynJobLane>> {
        self.jobs.get(name)
    }

    /// The names of every job lane.
    pub fn job_lane_names(&self) -> Vec<&'static str> {
        self.jobs.keys().copied().collect()
    }

    /// The executors this node has, by lane.
    pub fn executors(&self) -> impl Iterator<Item = &Arc<dyn DynExecutor>> {
        self.executors.values()
    }

    /// The executor for `lane`.
    pub fn executor(&self, lane: &str) -> Option<&Arc<dyn DynExecutor>> {
        self.executors.get(lane)
    }

    /// Every lane with its shape and checks: round lanes, then job lanes, each by name.
    pub fn describe(&self) -> Vec<LaneInfo> {
        let checks = |c: &[&str]| c.iter().map(|c| c.to_string()).collect();
        let rounds = self.rounds.values().map(|l| LaneInfo {
            name: l.name().to_string(),
            shape: LaneShape::Round,
            checks: checks(l.check_names()),
            executor: self.round_workers.contains_key(l.name()),
        });
        let jobs = self.jobs.values().map(|l| LaneInfo {
            name: l.name().to_string(),
            shape: LaneShape::Job,
            checks: checks(l.check_names()),
            executor: self.executors.contains_key(l.name()),
        });
        rounds.chain(jobs).collect()
    }

    /// Every lane's known-answer self-test on the evidence in `evidence`, by name (round lanes
    /// first). Runs the verifiers for real: call it off the async runtime.
    pub fn self_tests(&self, evidence: Option<&std::path::Path>) -> Vec<LaneSelfTest> {
        let rounds = self.rounds.values().map(|l| LaneSelfTest {
            lane: l.name().to_string(),
            verdict: l.self_test(evidence),
        });
        let jobs = self.jobs.values().map(|l| LaneSelfTest {
            lane: l.name().to_string(),
            verdict: l.self_test(evidence),
        });
        rounds.chain(jobs).collect()
    }
}

/// One lane's self-test outcome: its verdict, or `None` where the lane ships no self-test.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LaneSelfTest {
    pub lane: String,
    pub verdict: Option<Verdict>,
}

impl std::fmt::Debug for LaneRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneRegistry")
            .field("rounds", &self.round_lane_names())
            .field("jobs", &self.job_lane_names())
            .field("executors", &self.executors.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_registry_lists_every_lane_with_its_shape() {
        let r = LaneRegistry::standard(&NodeConfig::default()).unwrap();
        let d = r.describe();
        let names: Vec<(&str, LaneShape)> = d.iter().map(|l| (l.name.as_str(), l.shape)).collect();
        assert_eq!(
            names,
            [
                ("eval", LaneShape::Round),
                ("sat", LaneShape::Round),
                ("build", LaneShape::Job),
                ("build-search", LaneShape::Job),
                ("stark", LaneShape::Job),
                ("tee", LaneShape::Job)
            ]
        );
        assert!(d.iter().all(|l| !l.checks.is_empty()));
        // A tee evidence document has no worker-side executor: the provider hands it in; eval
        // archives are handed in by `hallmark eval submit`, not a worker loop.
        assert_eq!(
            d.iter().map(|l| l.executor).collect::<Vec<_>>(),
            [false, true, true, true, true, false]
        );
        assert_eq!(r.round_lane("eval").unwrap().intake(), RoundIntake::Roster);
        assert!(!r.job_lane("tee").unwrap().settles_on_ledger());
        assert!(r.job_lane("stark").unwrap().settles_on_ledger());
        // A builder holds a build job as long as its sandbox may run, and a minute more.
        assert_eq!(r.job_lane("build").unwrap().lease_ms(), Some(660_000));
        assert_eq!(r.job_lane("stark").unwrap().lease_ms(), None);
        assert!(!r.job_lane("build-search").unwrap().settles_on_ledger());
        assert!(r.job_lane("nosuch").is_none() && r.round_lane("stark").is_none());
        // The witness route's limit is the pushed lanes' (eval archives go to the coordinator).
        assert_eq!(r.max_submission_bytes(), 16 << 20);
        assert!(r.without_executors().executors().next().is_none());
    }

    #[test]
    fn lane_settings_are_checked_at_start() {
        let mut cfg = NodeConfig::default();
        cfg.lanes
            .insert("nosuch".into(), toml::Value::Table(Default::default()));
        let e = LaneRegistry::standard(&cfg).unwrap_err();
        assert_eq!(e.code(), "unknown_lane");
        let mut cfg = NodeConfig::default();
        let mut tee = toml::map::Map::new();
        tee.insert("profile".into(), toml::Value::String("staging".into()));
        cfg.lanes.insert("tee".into(), toml::Value::Table(tee));
        let e = LaneRegistry::standard(&cfg).unwrap_err();
        assert_eq!(e.code(), "invalid_lane_config");
        assert!(e.to_string().starts_with("[lanes.tee]"), "{e}");
    }

    #[test]
    fn specs_and_rounds_the_lane_cannot_read_fail_closed() {
        let r = LaneRegistry::standard(&NodeConfig::default()).unwrap();
        let stark = r.job_lane("stark").unwrap();
        let v = stark.verify(&serde_json::json!({"job_type": "nope"}), b"x");
        assert!(!v.accepted);
        assert_eq!(v.rejection.as_deref(), Some("malformed_spec"));
        assert_eq!(
            stark
                .check_spec(&serde_json::json!({"job_type": "fib", "size": 1, "seed": "00"}))
                .unwrap_err()
                .code(),
            "malformed_spec"
        );
        // A round state another lane derived is never accepted.
        let sat = r.round_lane("sat").unwrap();
        let foreign: RoundState = Arc::new(42u32);
        let info = RoundInfo {
            lane: "sat".into(),
            round_id: RoundId::for_lane("sat", 1),
            number: 1,
            seed: 1,
            nonce: "00".into(),
            starts_at_ms: 0,
            deadline_ms: 1,
        };
        let kp = Keypair::generate();
        let arrival = Arrival {
            received_ms: 0,
            sender: kp.public(),
        };
        let envelope = Envelope {
            payload_type: "x".into(),
            payload: String::new(),
            signatures: Vec::new(),
        };
        let (v, rec) = sat.accept(&info, &foreign, &arrival, &envelope);
        assert!(!v.accepted && rec.is_none());
        assert_eq!(v.rejection.as_deref(), Some("round_state"));
        let scores = sat.score(&info, &foreign, &[], &[kp.public()]);
        assert_eq!(scores[&kp.public()], 0.0);
    }
}
