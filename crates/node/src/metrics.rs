//! Prometheus metrics of one node: a registry per node (never a global one), so nodes started
//! in one process (the test networks) keep their numbers apart.
//!
//! - `GET /metrics` — the text exposition format (0.0.4), what Prometheus scrapes.
//!
//! Every role counts its HTTP requests by matched route, method and status, with latencies
//! as histograms. Validators add verification outcomes by lane and check, verification
//! latency, rounds decided and job votes; gauges (log size, queue depths) are read from the
//! node's state when scraped.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::BoxFuture;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use hallmark_core::{CheckOutcome, Verdict};

/// Why the metrics could not be set up (a duplicate or malformed metric: a programming error,
/// reported rather than panicking).
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// Latency buckets, seconds: from a fast read to a slow proof or rebuild.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// One node's metrics.
pub struct NodeMetrics {
    registry: Registry,
    /// Requests by matched route (`unmatched` for none), method and status.
    pub http_requests: IntCounterVec,
    /// Request latency by matched route.
    pub http_seconds: HistogramVec,
    /// Every check of every verification, by lane, check and outcome.
    pub verification_checks: IntCounterVec,
    /// Verifications by lane and verdict (`accepted`, or the rejection code).
    pub verifications: IntCounterVec,
    /// How long a verification took, by lane.
    pub verification_seconds: HistogramVec,
    /// Rounds this validator decided, by lane and whether quorum was met.
    pub rounds_decided: IntCounterVec,
    /// Job votes this validator cast, by lane and vote.
    pub votes: IntCounterVec,
    /// Leaves in the node's transparency log, read when scraped (absent on a node without
    /// a log).
    pub log_leaves: IntGauge,
    /// Work waiting, by queue (`jobs_queued`, `jobs_voting`, `rounds_undecided`, …).
    pub queue_depth: IntGaugeVec,
}

impl NodeMetrics {
    /// Metrics for a node of `role`: every series carries `role` as a constant label.
    pub fn new(role: &str) -> Result<Self, MetricsError> {
        let registry = Registry::new_custom(
            Some("hallmark".into()),
            Some([("role".into(), role.into())].into()),
        )?;
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, MetricsError> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let histogram =
            |name: &str, help: &str, labels: &[&str]| -> Result<HistogramVec, MetricsError> {
                let h = HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                    labels,
                )?;
                registry.register(Box::new(h.clone()))?;
                Ok(h)
            };
        let http_requests = counter(
            "http_requests_total",
            "HTTP requests answered, by matched route, method and status.",
            &["route", "method", "status"],
        )?;
        let http_seconds = histogram(
            "http_request_duration_seconds",
            "HTTP request latency, by matched route.",
            &["route"],
        )?;
        let verification_checks = counter(
            "verification_checks_total",
            "Verifier checks run, by lane, check and outcome.",
            &["lane", "check", "outcome"],
        )?;
        let verifications = counter(
            "verifications_total",
            "Verifications run, by lane and verdict (accepted, or the rejection code).",
            &["lane", "verdict"],
        )?;
        let verification_seconds = histogram(
            "verification_duration_seconds",
            "Verification latency, by lane.",
            &["lane"],
        )?;
        let rounds_decided = counter(
            "rounds_decided_total",
            "Rounds decided, by lane and whether quorum was met.",
            &["lane", "quorum_met"],
        )?;
        let votes = counter(
            "job_votes_total",
            "Job votes cast, by lane and vote.",
            &["lane", "vote"],
        )?;
        let log_leaves = IntGauge::new("log_leaves", "Leaves in this node's transparency log.")?;
        let queue_depth = IntGaugeVec::new(
            Opts::new("queue_depth", "Work waiting, by queue."),
            &["queue"],
        )?;
        registry.register(Box::new(queue_depth.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_seconds,
            verification_checks,
            verifications,
            verification_seconds,
            rounds_decided,
            votes,
            log_leaves,
            queue_depth,
        })
    }

    /// Exposes [`NodeMetrics::log_leaves`]: for roles that keep a log.
    pub fn with_log(self) -> Result<Self, MetricsError> {
        self.registry.register(Box::new(self.log_leaves.clone()))?;
        Ok(self)
    }

    /// Records one verification: its verdict, each check's outcome, and its latency.
    pub fn record_verification(&self, lane: &str, verdict: &Verdict, elapsed_us: u64) {
        for c in &verdict.checks {
            let outcome = match c.outcome {
                CheckOutcome::Pass => "pass",
                CheckOutcome::Fail => "fail",
                CheckOutcome::Skipped => "skipped",
            };
            self.verification_checks
                .with_label_values(&[lane, c.name.as_str(), outcome])
                .inc();
        }
        let verdict_label = if verdict.accepted {
            "accepted"
        } else {
            verdict.rejection.as_deref().unwrap_or("rejected")
        };
        self.verifications
            .with_label_values(&[lane, verdict_label])
            .inc();
        self.verification_seconds
            .with_label_values(&[lane])
            .observe(elapsed_us as f64 / 1e6);
    }

    /// The registry in the text exposition format.
    pub fn encode(&self) -> Result<String, MetricsError> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Reads a role's gauges from its state just before a scrape.
pub type Refresh = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// A refresh that reads nothing.
pub fn no_refresh() -> Refresh {
    Arc::new(|| Box::pin(async {}))
}

#[derive(Clone)]
struct MetricsState {
    metrics: Arc<NodeMetrics>,
    refresh: Refresh,
}

/// `router` with `GET /metrics` and every request counted and timed.
pub fn instrument(router: Router, metrics: Arc<NodeMetrics>, refresh: Refresh) -> Router {
    let state = MetricsState { metrics, refresh };
    router
        .route("/metrics", get(scrape).with_state(state.clone()))
        .layer(axum::middleware::from_fn_with_state(state, track))
}

/// Describes `GET /metrics` for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    spec.get("/metrics", "Prometheus metrics of this node")
        .content(200, prometheus::TEXT_FORMAT, "Prometheus text format 0.0.4");
}

async fn track(State(s): State<MetricsState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    s.metrics
        .http_requests
        .with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()])
        .inc();
    s.metrics
        .http_seconds
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn scrape(State(s): State<MetricsState>) -> Response {
    (s.refresh)().await;
    match s.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(e) => crate::api::ApiError::internal(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_nodes_in_one_process_keep_their_numbers_apart() {
        let a = NodeMetrics::new("validator").unwrap();
        let b = NodeMetrics::new("validator").unwrap();
        a.rounds_decided.with_label_values(&["sat", "true"]).inc();
        let text_a = a.encode().unwrap();
        let text_b = b.encode().unwrap();
        assert!(
            text_a.contains("hallmark_rounds_decided_total{lane=\"sat\",quorum_met=\"true\",role=\"validator\"} 1"),
            "{text_a}"
        );
        assert!(!text_b.contains("lane=\"sat\""), "{text_b}");
    }

    #[test]
    fn a_verdict_counts_each_check() {
        let m = NodeMetrics::new("validator").unwrap();
        let mut v = hallmark_core::VerdictBuilder::new("sat");
        v.pass("signature", "ok");
        v.fail_code("replay", "unsatisfied", "clause 7");
        m.record_verification("sat", &v.finish(), 1500);
        let text = m.encode().unwrap();
        for line in [
            "hallmark_verification_checks_total{check=\"replay\",lane=\"sat\",outcome=\"fail\",role=\"validator\"} 1",
            "hallmark_verifications_total{lane=\"sat\",verdict=\"unsatisfied\",role=\"validator\"} 1",
            "hallmark_verification_duration_seconds_count{lane=\"sat\",role=\"validator\"} 1",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }
}
