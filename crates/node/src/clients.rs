//! The gate in front of what clients ask the coordinator for (jobs, compute claims): a client
//! key must have stake bonded on the ledger, is rate-limited, and its request times must be
//! plausible. Without it, any fresh key could claim every listed provider or fill the job
//! queue for free.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use hallmark_core::PublicKey;
use hallmark_ledger::Ledger;

use crate::api::ApiError;
use crate::config::ClientsSection;
use crate::http_ledger::HttpLedger;

/// How long a looked-up stake is trusted before the ledger is asked again.
const STAKE_TTL: Duration = Duration::from_secs(10);
/// How long "not enough stake" is remembered (short: the client may be bonding right now).
const SHORT_STAKE_TTL: Duration = Duration::from_secs(1);
/// Most per-key rate buckets kept; idle ones are dropped past it.
const MAX_BUCKETS: usize = 10_000;

/// A token bucket: `capacity` tokens, refilled at `per_sec`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: f64) -> Self {
        Self {
            tokens: capacity,
            at: Instant::now(),
        }
    }

    /// Takes one token, or says how long until one is there.
    fn take(&mut self, capacity: f64, per_sec: f64) -> Result<(), Duration> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_sec).min(capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / per_sec.max(1e-9),
            ))
        }
    }
}

/// Admits client keys by stake and rate (see the module doc).
pub struct ClientGate {
    cfg: ClientsSection,
    ledger: HttpLedger,
    /// Looked-up stakes: until when each is trusted, and the amount.
    stakes: Mutex<HashMap<PublicKey, (Instant, u64)>>,
    lookups: Mutex<Bucket>,
    buckets: Mutex<HashMap<PublicKey, Bucket>>,
}

fn too_many(code: &str, message: String, wait: Duration) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message).with_details(
        serde_json::json!({ "retry_after_ms": u64::try_from(wait.as_millis()).unwrap_or(u64::MAX) }),
    )
}

impl ClientGate {
    /// A gate under `cfg`, reading stakes from `ledger`.
    pub fn new(cfg: ClientsSection, ledger: HttpLedger) -> Self {
        let lookups = Bucket::full(f64::from(cfg.lookups_per_sec.max(1)));
        Self {
            cfg,
            ledger,
            stakes: Mutex::new(HashMap::new()),
            lookups: Mutex::new(lookups),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ClientsSection {
        &self.cfg
    }

    /// Stake bonded to `key` (cached for a few seconds; look-ups of uncached keys are
    /// rate-limited so a stream of fresh keys cannot turn into a stream of ledger reads).
    async fn bonded_stake(&self, key: &PublicKey) -> Result<u64, ApiError> {
        {
            let mut stakes = self.stakes.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            stakes.retain(|_, (until, _)| *until > now);
            if let Some((_, stake)) = stakes.get(key) {
                return Ok(*stake);
            }
        }
        let per_sec = f64::from(self.cfg.lookups_per_sec.max(1));
        self.lookups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(per_sec, per_sec)
            .map_err(|wait| {
                too_many(
                    "busy",
                    "too many new client keys at once; retry shortly".into(),
                    wait,
                )
            })?;
        let info = self.ledger.stake(key).await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ledger_unavailable",
                format!("could not read the client's stake from the ledger: {e}"),
            )
        })?;
        let stake = info.map_or(0, |i| i.staked.saturating_add(i.pending));
        let ttl = if stake >= self.cfg.min_stake {
            STAKE_TTL
        } else {
            SHORT_STAKE_TTL
        };
        self.stakes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(*key, (Instant::now() + ttl, stake));
        Ok(stake)
    }

    /// Admits one request of `key`: enough bonded stake (403 `insufficient_stake`), and
    /// within its rate (429 `rate_limited`).
    pub async fn admit(&self, key: &PublicKey) -> Result<(), ApiError> {
        if self.cfg.min_stake > 0 {
            let stake = self.bonded_stake(key).await?;
            if stake < self.cfg.min_stake {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_stake",
                    format!(
                        "{key} has {stake} bonded; submitting jobs and claiming compute takes at least {} (bond it with `hallmark stake`)",
                        self.cfg.min_stake
                    ),
                )
                .with_details(serde_json::json!({
                    "stake": stake,
                    "min_stake": self.cfg.min_stake,
                })));
            }
        }
        let capacity = f64::from(self.cfg.per_minute.max(1));
        let per_sec = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            // Drop buckets that have refilled completely: forgetting them changes nothing.
            let full_after = Duration::from_secs_f64(capacity / per_sec);
            buckets.retain(|_, b| b.at.elapsed() < full_after);
        }
        buckets
            .entry(*key)
            .or_insert_with(|| Bucket::full(capacity))
            .take(capacity, per_sec)
            .map_err(|wait| {
                too_many(
                    "rate_limited",
                    format!("{key} may make {} requests a minute", self.cfg.per_minute),
                    wait,
                )
            })
    }

    /// Checks a client-chosen time (`what`, unix ms) against `now_ms`: not further back than
    /// the configured age, not further ahead than `skew_ms` (422 `invalid_time`).
    pub fn check_time(
        &self,
        what: &str,
        at_ms: i64,
        now_ms: i64,
        skew_ms: i64,
    ) -> Result<(), ApiError> {
        let max_age =
            i64::try_from(self.cfg.max_request_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        if at_ms < now_ms.saturating_sub(max_age) || at_ms > now_ms.saturating_add(skew_ms) {
            return Err(ApiError::unprocessable(
                "invalid_time",
                format!(
                    "{what} is {at_ms}: it must lie between {} s ago and {} s ahead of this node's clock",
                    self.cfg.max_request_age_secs,
                    skew_ms / 1000
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills() {
        let mut b = Bucket::full(3.0);
        for _ in 0..3 {
            b.take(3.0, 1000.0).unwrap();
        }
        let wait = b.take(3.0, 0.5).unwrap_err();
        assert!(wait > Duration::from_millis(500));
        std::thread::sleep(Duration::from_millis(5));
        b.take(3.0, 1000.0).unwrap();
    }

    #[test]
    fn request_times_are_bounded() {
        let gate = ClientGate::new(
            ClientsSection::default(),
            HttpLedger::new("http://127.0.0.1:9"),
        );
        let now = 1_800_000_000_000;
        gate.check_time("t", now, now, 120_000).unwrap();
        gate.check_time("t", now - 3_600_000, now, 120_000).unwrap();
        for bad in [0, i64::MIN, i64::MAX, now + 121_000, now - 25 * 3_600_000] {
            let e = gate.check_time("t", bad, now, 120_000).unwrap_err();
            assert_eq!(e.error.code, "invalid_time", "{bad}");
        }
    }

    #[tokio::test]
    async fn rate_limited_per_key_without_stake_requirement() {
        let gate = ClientGate::new(
            ClientsSection {
                min_stake: 0,
                per_minute: 2,
                ..ClientsSection::default()
            },
            HttpLedger::new("http://127.0.0.1:9"),
        );
        let a = hallmark_core::Keypair::generate().public();
        let b = hallmark_core::Keypair::generate().public();
        gate.admit(&a).await.unwrap();
        gate.admit(&a).await.unwrap();
        let e = gate.admit(&a).await.unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.error.code.as_str()),
            (429, "rate_limited")
        );
        gate.admit(&b).await.unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_ledger_fails_closed() {
        let gate = ClientGate::new(
            ClientsSection::default(),
            HttpLedger::new("http://127.0.0.1:9"),
        );
        let a = hallmark_core::Keypair::generate().public();
        let e = gate.admit(&a).await.unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.error.code.as_str()),
            (503, "ledger_unavailable")
        );
    }
}
