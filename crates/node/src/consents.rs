//! Trace consents on the coordinator: where a worker records which fields of its traces public
//! exports may show ([`hallmark_core::trace::TraceConsent`]), and where validators read them.
//!
//! - `POST /v1/consents` — body: the signed statement (a DSSE envelope). The signer must be the
//!   statement's party and a registered neuron, `issued_ms` within the clock-skew window, and
//!   newer than the party's kept statement. Each accepted statement becomes a leaf
//!   (`trace_consent`) of the coordinator's log, then the party's current consent.
//! - `GET /v1/consents?parties=A,B&after=P&limit=N` — current statements, as signed: of the
//!   listed parties (SS58, at most [`MAX_CONSENT_PARTIES`]), or all of them by party.
//!
//! The coordinator cannot forge a consent: readers check every envelope against its party.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hallmark_core::trace::TraceConsent;
use hallmark_core::{Envelope, PublicKey};
use hallmark_ledger::Ledger as _;
use hallmark_store::{ConsentRow, Store, TransparencyLog};
use serde::{Deserialize, Serialize};

use crate::api::{parse_json, ApiError};
use crate::http_ledger::HttpLedger;

/// The log leaf kind of an accepted consent statement.
pub const CONSENT_LEAF: &str = "trace_consent";

/// Most parties one `GET /v1/consents?parties=` names.
pub const MAX_CONSENT_PARTIES: usize = 100;

/// The coordinator's consent book.
pub struct ConsentBook {
    store: Store,
    log: TransparencyLog,
    ledger: HttpLedger,
    skew_window_ms: i64,
}

/// Answer to an accepted `POST /v1/consents`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConsentAccepted {
    pub party: PublicKey,
    pub issued_ms: i64,
    /// The statement's leaf in the coordinator's log.
    pub log_index: u64,
}

/// One kept statement, as its party signed it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConsentRecord {
    pub envelope: Envelope,
    pub log_index: u64,
}

/// A page of `GET /v1/consents`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConsentPage {
    pub consents: Vec<ConsentRecord>,
    /// Pass as `after` for the next page of a full listing (the last party, SS58).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<PublicKey>,
}

/// The query of `GET /v1/consents`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentQuery {
    /// Comma-separated SS58 addresses.
    #[serde(default)]
    pub parties: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

impl ConsentBook {
    /// A book kept in `store`, logged in `log`, admitting parties `ledger` lists.
    pub fn new(
        store: Store,
        log: TransparencyLog,
        ledger: HttpLedger,
        skew_window_secs: i64,
    ) -> Self {
        Self {
            store,
            log,
            ledger,
            skew_window_ms: skew_window_secs.saturating_mul(1000),
        }
    }

    /// Checks, logs and keeps one statement.
    pub async fn accept(&self, envelope: &Envelope) -> Result<ConsentAccepted, ApiError> {
        let consent = TraceConsent::verify(envelope)
            .map_err(|e| ApiError::unprocessable(e.code(), format!("trace consent: {e}")))?;
        let now = hallmark_core::time::now_unix_ms();
        if (consent.issued_ms - now).abs() > self.skew_window_ms {
            return Err(ApiError::unprocessable(
                "stale_consent",
                format!(
                    "issued_ms {} is more than {} ms from this coordinator's clock ({now})",
                    consent.issued_ms, self.skew_window_ms
                ),
            ));
        }
        let mg = self.ledger.metagraph().await?;
        if mg.neuron(&consent.party).is_none() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_registered",
                format!(
                    "{} is not registered on the ledger: only a network participant's traces exist to consent about",
                    consent.party
                ),
            ));
        }
        let party = hex::encode(consent.party.as_bytes());
        if let Some(kept) = self.store.consent(&party).await? {
            if kept.issued_ms >= consent.issued_ms {
                return Err(superseded(&consent, kept.issued_ms));
            }
        }
        let bytes = envelope.canonical_bytes().map_err(ApiError::internal)?;
        let (log_index, _) = self.log.append(CONSENT_LEAF, &bytes).await?;
        let row = ConsentRow {
            party: party.clone(),
            issued_ms: consent.issued_ms,
            envelope: String::from_utf8_lossy(&bytes).into_owned(),
            log_index: i64::try_from(log_index).map_err(ApiError::internal)?,
        };
        if !self.store.put_consent(&row).await? {
            // A newer statement of the same party won a race; this one stays in the log only.
            let kept = self.store.consent(&party).await?.map_or(0, |k| k.issued_ms);
            return Err(superseded(&consent, kept));
        }
        tracing::info!(party = %consent.party, fields = ?consent.fields, log_index, "trace consent recorded");
        Ok(ConsentAccepted {
            party: consent.party,
            issued_ms: consent.issued_ms,
            log_index,
        })
    }

    /// The kept statements the query asks for.
    pub async fn page(&self, q: &ConsentQuery) -> Result<ConsentPage, ApiError> {
        let limit = match q.limit {
            None => hallmark_store::MAX_CONSENT_PAGE,
            Some(n) if (1..=hallmark_store::MAX_CONSENT_PAGE).contains(&n) => n,
            Some(n) => {
                return Err(ApiError::bad_request(
                    "invalid_limit",
                    format!(
                        "limit {n} is not from 1 to {}",
                        hallmark_store::MAX_CONSENT_PAGE
                    ),
                ))
            }
        };
        let mut rows = Vec::new();
        let listing = q.parties.is_none();
        if let Some(list) = &q.parties {
            if q.after.is_some() {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "after pages a full listing; it does not go with parties",
                ));
            }
            let parties = parse_parties(list)?;
            for p in parties {
                rows.extend(self.store.consent(&hex::encode(p.as_bytes())).await?);
            }
        } else {
            let after = q
                .after
                .as_deref()
                .map(|a| parse_party(a).map(|p| hex::encode(p.as_bytes())))
                .transpose()?;
            rows = self.store.consents(None, after.as_deref(), limit).await?;
        }
        let consents = rows
            .into_iter()
            .map(|r| {
                let envelope: Envelope = serde_json::from_str(&r.envelope).map_err(|e| {
                    ApiError::internal(format!("stored consent of {}: {e}", r.party))
                })?;
                Ok(ConsentRecord {
                    envelope,
                    log_index: u64::try_from(r.log_index).map_err(ApiError::internal)?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let next_after = if listing && consents.len() == limit as usize {
            consents
                .last()
                .and_then(|c| TraceConsent::verify(&c.envelope).ok())
                .map(|c| c.party)
        } else {
            None
        };
        Ok(ConsentPage {
            consents,
            next_after,
        })
    }
}

fn superseded(consent: &TraceConsent, kept_ms: i64) -> ApiError {
    ApiError::conflict(
        "superseded_consent",
        format!(
            "{} already has a statement issued at {kept_ms} ms; a new one must be issued later than that (this one: {})",
            consent.party, consent.issued_ms
        ),
    )
}

fn parse_party(s: &str) -> Result<PublicKey, ApiError> {
    s.trim().parse().map_err(|e| {
        ApiError::bad_request(
            "invalid_party",
            format!("{s:?} is not an SS58 address: {e}"),
        )
    })
}

/// The SS58 addresses of a `parties` list, each once.
pub fn parse_parties(list: &str) -> Result<Vec<PublicKey>, ApiError> {
    let mut out: Vec<PublicKey> = Vec::new();
    for s in list.split(',').filter(|s| !s.trim().is_empty()) {
        let p = parse_party(s)?;
        if !out.contains(&p) {
            out.push(p);
        }
        if out.len() > MAX_CONSENT_PARTIES {
            return Err(ApiError::bad_request(
                "too_many_parties",
                format!("at most {MAX_CONSENT_PARTIES} parties per request"),
            ));
        }
    }
    if out.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_party",
            "parties names no address",
        ));
    }
    Ok(out)
}

async fn post_consent(
    State(b): State<Arc<ConsentBook>>,
    body: Bytes,
) -> Result<(StatusCode, Json<ConsentAccepted>), ApiError> {
    let envelope: Envelope = parse_json(&body)?;
    Ok((StatusCode::CREATED, Json(b.accept(&envelope).await?)))
}

async fn get_consents(
    State(b): State<Arc<ConsentBook>>,
    q: Result<Query<ConsentQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ConsentPage>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    Ok(Json(b.page(&q).await?))
}

/// `/v1/consents`.
pub fn router(b: Arc<ConsentBook>) -> Router {
    Router::new()
        .route("/v1/consents", get(get_consents).post(post_consent))
        .with_state(b)
}

/// Describes [`router`]'s routes for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    spec.post("/v1/consents", "Record a signed trace consent")
        .describe("The body is a DSSE envelope of `application/vnd.hallmark.trace-consent+json` signed by a registered neuron's hotkey.")
        .body::<hallmark_core::dsse::Envelope>()
        .json::<ConsentAccepted>(201, "Recorded (a newer statement replaces an older one)")
        .errors(&[(400, "Malformed, wrongly signed or outside the clock window"), (403, "Not a registered neuron"), (409, "An equal or newer statement is kept")]);
    spec.get("/v1/consents", "Kept consent statements")
        .query::<ConsentQuery>()
        .ok::<ConsentPage>()
        .errors(&[(400, "Bad query")]);
}
