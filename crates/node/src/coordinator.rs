//! The coordinator role: publishes rounds of every round lane and serves them. It is a
//! registry and distributor only: it never sees a submission or decides a score.
//!
//! - `POST /v1/rounds` — an operator (signed request) opens a round of a lane
//! - `GET  /v1/rounds/current?lane=L` — a lane's latest round (signed announcement)
//! - `GET  /v1/rounds/{id}` — one round
//!
//! The coordinator also runs secure-compute intake ([`crate::compute`]) and serves its
//! transparency log of compute events (`/v1/log/…`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use hallmark_core::{Envelope, Keypair, PublicKey, RoundId, Signed};
use hallmark_store::{RoundRow, Store};
use rand::RngCore;
use tokio::sync::Mutex;

use crate::api::{health, parse_json, ApiError};
use crate::auth::PostAuth;
use crate::lanes::LaneRegistry;
use crate::messages::{NewRoundRequest, OwnerPick, OwnerPickRequest, RoundAnnouncement};

/// Shared state of the coordinator.
pub struct Coordinator {
    store: Store,
    key: Keypair,
    operators: Vec<PublicKey>,
    lanes: LaneRegistry,
    auth: PostAuth,
    publishing: Mutex<()>,
}

impl Coordinator {
    /// A coordinator signing rounds of the round lanes of `lanes` with `key`, accepting round
    /// requests from `operators`.
    pub fn new(
        store: Store,
        key: Keypair,
        operators: Vec<PublicKey>,
        lanes: LaneRegistry,
        skew_window_secs: i64,
    ) -> Self {
        Self {
            store: store.clone(),
            key,
            operators,
            lanes,
            auth: PostAuth::new(skew_window_secs, store.clone()),
            publishing: Mutex::new(()),
        }
    }

    /// Publishes the next round of the request's lane.
    pub async fn publish(
        &self,
        req: &NewRoundRequest,
    ) -> Result<Signed<RoundAnnouncement>, ApiError> {
        let Some(lane) = self.lanes.round_lane(&req.lane) else {
            return Err(ApiError::unprocessable(
                "unknown_lane",
                format!(
                    "lane {:?} runs no rounds here: expected one of {:?}",
                    req.lane,
                    self.lanes.round_lane_names()
                ),
            ));
        };
        let params = lane.check_params(&req.params).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_params",
                e.to_string(),
            )
        })?;
        if !(100..=3_600_000).contains(&req.window_ms) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_window",
                "window_ms must be 100..=3600000",
            ));
        }
        let _turn = self.publishing.lock().await;
        let latest = self.store.latest_round(lane.name()).await?;
        if let Some(row) = &latest {
            let env: Envelope = serde_json::from_str(&row.body).map_err(|e| {
                ApiError::internal(format!("stored round {} is corrupt: {e}", row.round_id))
            })?;
            let open = Signed::<RoundAnnouncement>::from_envelope(env)
                .verify()
                .map(|v| v.payload.deadline_ms > hallmark_core::time::now_unix_ms())
                .map_err(|e| ApiError::internal(format!("stored round {}: {e}", row.round_id)))?;
            if open {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "round_open",
                    format!(
                        "{} is still open; a lane's rounds run one at a time",
                        row.round_id
                    ),
                ));
            }
        }
        let number = latest.map_or(1, |r| r.number + 1);
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let now = hallmark_core::time::now_unix_ms();
        let ann = RoundAnnouncement {
            round_id: RoundId::for_lane(lane.name(), number),
            number,
            lane: lane.name().to_string(),
            seed_anchor_ms: now,
            nonce: hex::encode(nonce),
            params,
            starts_at_ms: now,
            deadline_ms: now + req.window_ms,
        };
        let signed = Signed::sign(&ann, &self.key).map_err(ApiError::internal)?;
        self.store
            .insert_round(&RoundRow {
                lane: ann.lane.clone(),
                number,
                round_id: ann.round_id.to_string(),
                body: serde_json::to_string(signed.envelope()).map_err(ApiError::internal)?,
                created_at: now / 1000,
            })
            .await?;
        Ok(signed)
    }
}

/// The coordinator's routes.
pub fn router(c: Arc<Coordinator>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/rounds", post(new_round))
        .route("/v1/rounds/current", get(current))
        .route("/v1/rounds/{id}", get(by_id))
        .route("/v1/rounds/{id}/pick", post(post_pick).get(get_pick))
        .with_state(c)
}

/// Describes [`router`]'s routes for `/openapi.json`.
pub fn describe(spec: &mut crate::openapi::ApiSpec) {
    use hallmark_core::dsse::Envelope;
    spec.get("/v1/health", "Liveness")
        .content(200, "application/json", "`{\"status\":\"ok\"}`");
    spec.post("/v1/rounds", "Open a round (operator-signed)")
        .describe("The body is a DSSE envelope signed by the operator key; the answer is the signed round announcement.")
        .body::<Envelope>()
        .json::<Envelope>(201, "The signed round announcement")
        .errors(&[(400, "Malformed or wrongly signed"), (403, "Not the operator"), (409, "A round of this lane is already open")]);
    spec.get("/v1/rounds/current", "The open round of a lane")
        .query::<CurrentQuery>()
        .ok::<Envelope>()
        .errors(&[(404, "No round is open")]);
    spec.get("/v1/rounds/{id}", "A round's signed announcement")
        .ok::<Envelope>()
        .errors(&[(404, "No such round")]);
    spec.post(
        "/v1/rounds/{id}/pick",
        "Record a round's pick (operator-signed)",
    )
    .body::<Envelope>()
    .json::<Envelope>(201, "The signed pick")
    .errors(&[
        (400, "Malformed or wrongly signed"),
        (403, "Not the operator"),
        (409, "Already picked"),
    ]);
    spec.get("/v1/rounds/{id}/pick", "A round's signed pick")
        .ok::<Envelope>()
        .errors(&[(404, "No pick yet")]);
}

/// An operator-signed POST: valid request signature, not a replay, a configured operator.
async fn authorize_operator(
    c: &Coordinator,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
    what: &str,
) -> Result<(), ApiError> {
    let signer = c.auth.authenticate(headers, path, body).await?;
    if !c.operators.contains(&signer) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_operator",
            format!("{signer} may not publish {what}"),
        ));
    }
    Ok(())
}

async fn new_round(
    State(c): State<Arc<Coordinator>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Envelope>), ApiError> {
    authorize_operator(&c, &headers, uri.path(), &body, "rounds").await?;
    let req: NewRoundRequest = parse_json(&body)?;
    let signed = c.publish(&req).await?;
    Ok((StatusCode::CREATED, Json(signed.envelope().clone())))
}

fn envelope_of(row: RoundRow) -> Result<Json<Envelope>, ApiError> {
    serde_json::from_str(&row.body)
        .map(Json)
        .map_err(|e| ApiError::internal(format!("stored round {} is corrupt: {e}", row.round_id)))
}

/// `?lane=L` on `GET /v1/rounds/current`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct CurrentQuery {
    lane: Option<String>,
}

async fn current(
    State(c): State<Arc<Coordinator>>,
    Query(q): Query<CurrentQuery>,
) -> Result<Json<Envelope>, ApiError> {
    let names = c.lanes.round_lane_names();
    let lane = match q.lane {
        Some(l) => l,
        // Without a lane, the only one there is (a network with several must be asked).
        None if names.len() == 1 => names[0].to_string(),
        None => {
            return Err(ApiError::bad_request(
                "invalid_lane",
                format!("name the round lane: ?lane=one of {names:?}"),
            ))
        }
    };
    if c.lanes.round_lane(&lane).is_none() {
        return Err(ApiError::not_found(format!(
            "lane {lane:?} runs no rounds here: expected one of {names:?}"
        )));
    }
    match c.store.latest_round(&lane).await? {
        Some(row) => envelope_of(row),
        None => Err(ApiError::not_found(format!(
            "no {lane} round has been published yet"
        ))),
    }
}

async fn by_id(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<String>,
) -> Result<Json<Envelope>, ApiError> {
    match c.store.round(&id).await? {
        Some(row) => envelope_of(row),
        None => Err(ApiError::not_found(format!("no round {id:?}"))),
    }
}

fn pick_key(round_id: &str) -> String {
    format!("owner_pick.{round_id}")
}

/// `POST /v1/rounds/{id}/pick` (operator-signed): the owner's pick for a round, signed by the
/// coordinator and fixed once made.
async fn post_pick(
    State(c): State<Arc<Coordinator>>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Envelope>), ApiError> {
    authorize_operator(&c, &headers, uri.path(), &body, "picks").await?;
    let req: OwnerPickRequest = parse_json(&body)?;
    if req
        .scores
        .values()
        .any(|s| !s.is_finite() || *s < 0.0 || *s > 1.0)
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_scores",
            "scores must be in [0, 1]",
        ));
    }
    let _turn = c.publishing.lock().await;
    let Some(row) = c.store.round(&id).await? else {
        return Err(ApiError::not_found(format!("no round {id:?}")));
    };
    if c.store.kv_get(&pick_key(&row.round_id)).await?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "pick_exists",
            format!("the pick for {} is already published", row.round_id),
        ));
    }
    let round_id = RoundId::from(row.round_id.as_str());
    let pick = OwnerPick {
        round_id,
        winner: req.winner,
        scores: req.scores,
    };
    let signed = Signed::sign(&pick, &c.key).map_err(ApiError::internal)?;
    let text = serde_json::to_string(signed.envelope()).map_err(ApiError::internal)?;
    c.store.kv_put(&pick_key(&row.round_id), &text).await?;
    Ok((StatusCode::CREATED, Json(signed.envelope().clone())))
}

/// `GET /v1/rounds/{id}/pick`: the signed owner pick.
async fn get_pick(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<String>,
) -> Result<Json<Envelope>, ApiError> {
    let text = c
        .store
        .kv_get(&pick_key(&id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no owner pick for {id:?}")))?;
    serde_json::from_str(&text)
        .map(Json)
        .map_err(|e| ApiError::internal(format!("stored pick for {id}: {e}")))
}
