//! OpenAPI 3.1 descriptions of every role's HTTP API, served at `GET /openapi.json`.
//!
//! Each router module describes its own routes next to them (a `describe` function), with
//! the same wire types the handlers use: their JSON Schemas come from `schemars` (JSON
//! Schema 2020-12, which OpenAPI 3.1 takes as is), so the description cannot drift from
//! what serde writes. Every operation also answers errors as [`ErrorBody`].
//!
//! With `HALLMARK_OPENAPI_RECORD=DIR` set, a node also writes every response it sends
//! (route, status, content type, JSON body) and its description under `DIR`, so a test
//! can check each real response against the schema (`hallmark_node::openapi` has no
//! validator itself: that lives in the tests).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hallmark_core::error::ErrorBody;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// The environment variable naming the directory responses are recorded into.
pub const RECORD_ENV: &str = "HALLMARK_OPENAPI_RECORD";

/// One role's API description, built route by route.
pub struct ApiSpec {
    role: String,
    generator: SchemaGenerator,
    paths: BTreeMap<String, BTreeMap<String, Map<String, Value>>>,
}

impl ApiSpec {
    /// An empty description of `role`'s API (it already lists `GET /openapi.json`).
    pub fn new(role: &str) -> Self {
        let generator = SchemaSettings::draft2020_12()
            .for_serialize()
            .with(|s| s.definitions_path = "/components/schemas".into())
            .into_generator();
        let mut spec = Self {
            role: role.to_string(),
            generator,
            paths: BTreeMap::new(),
        };
        spec.get("/openapi.json", "This API's OpenAPI 3.1 description")
            .content(200, "application/json", "The description");
        spec
    }

    /// Describes `GET path`.
    pub fn get(&mut self, path: &str, summary: &str) -> Operation<'_> {
        self.operation("get", path, summary)
    }

    /// Describes `POST path`.
    pub fn post(&mut self, path: &str, summary: &str) -> Operation<'_> {
        self.operation("post", path, summary)
    }

    /// Describes `DELETE path`.
    pub fn delete(&mut self, path: &str, summary: &str) -> Operation<'_> {
        self.operation("delete", path, summary)
    }

    fn operation(&mut self, method: &str, path: &str, summary: &str) -> Operation<'_> {
        let id = format!(
            "{method}{}",
            path.split(['/', '{', '}', '-', '.'])
                .filter(|s| !s.is_empty())
                .map(|s| format!("_{s}"))
                .collect::<String>()
        );
        let tag = path
            .trim_start_matches('/')
            .trim_start_matches("v1/")
            .split('/')
            .next()
            .filter(|s| !s.is_empty() && !s.contains('.'))
            .unwrap_or("node")
            .to_string();
        let parameters: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let error = self.generator.subschema_for::<ErrorBody>();
        let mut op = Map::new();
        op.insert("operationId".into(), json!(id));
        op.insert("summary".into(), json!(summary));
        op.insert("tags".into(), json!([tag]));
        if !parameters.is_empty() {
            op.insert("parameters".into(), Value::Array(parameters));
        }
        op.insert(
            "responses".into(),
            json!({"default": {
                "description": "An error: `code` names what went wrong",
                "content": {"application/json": {"schema": error}},
            }}),
        );
        self.paths
            .entry(path.to_string())
            .or_default()
            .insert(method.to_string(), op);
        Operation {
            spec: self,
            method: method.to_string(),
            path: path.to_string(),
        }
    }

    /// How many operations are described.
    pub fn operation_count(&self) -> usize {
        self.paths.values().map(BTreeMap::len).sum()
    }

    /// The OpenAPI 3.1 document.
    pub fn document(mut self) -> Value {
        let definitions = self.generator.take_definitions(true);
        // Component names must match ^[a-zA-Z0-9._-]+$; schemars names generic instances
        // like `TracePage<PublicTrace>`.
        let mut renames = BTreeMap::new();
        let mut schemas = Map::new();
        for (name, schema) in definitions {
            let clean: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if clean != name {
                renames.insert(
                    format!("#/components/schemas/{name}"),
                    format!("#/components/schemas/{clean}"),
                );
            }
            schemas.insert(clean, schema);
        }
        let mut paths = Map::new();
        for (path, ops) in self.paths {
            let ops: Map<String, Value> = ops
                .into_iter()
                .map(|(m, op)| (m, Value::Object(op)))
                .collect();
            paths.insert(path, Value::Object(ops));
        }
        let mut doc = json!({
            "openapi": "3.1.0",
            "info": {
                "title": format!("hallmark {}", self.role),
                "version": env!("CARGO_PKG_VERSION"),
                "description": format!(
                    "The HTTP API of a hallmark {} node. Errors are always `{{\"error\": {{\"code\", \"message\", \"details\"?}}}}`; signed requests are DSSE envelopes.",
                    self.role
                ),
            },
            "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
            "paths": paths,
            "components": {"schemas": schemas},
        });
        if !renames.is_empty() {
            rewrite_refs(&mut doc, &renames);
        }
        doc
    }
}

fn rewrite_refs(v: &mut Value, renames: &BTreeMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "$ref" {
                    if let Some(new) = child.as_str().and_then(|r| renames.get(r)) {
                        *child = json!(new);
                    }
                } else {
                    rewrite_refs(child, renames);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| rewrite_refs(c, renames)),
        _ => {}
    }
}

/// One operation being described; each method adds to it.
pub struct Operation<'a> {
    spec: &'a mut ApiSpec,
    method: String,
    path: String,
}

impl Operation<'_> {
    fn object(&mut self) -> &mut Map<String, Value> {
        self.spec
            .paths
            .entry(self.path.clone())
            .or_default()
            .entry(self.method.clone())
            .or_default()
    }

    /// A longer description.
    pub fn describe(mut self, text: &str) -> Self {
        self.object().insert("description".into(), json!(text));
        self
    }

    /// The query string, one parameter per field of `Q`.
    pub fn query<Q: JsonSchema>(mut self) -> Self {
        let schema = SchemaSettings::draft2020_12()
            .with(|s| s.inline_subschemas = true)
            .into_generator()
            .into_root_schema_for::<Q>();
        let value = schema.to_value();
        let required: Vec<&str> = value
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut params = Vec::new();
        if let Some(props) = value.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                let mut prop = prop.clone();
                let description = prop.as_object_mut().and_then(|p| p.remove("description"));
                let mut param = json!({
                    "name": name,
                    "in": "query",
                    "required": required.contains(&name.as_str()),
                    "schema": prop,
                });
                if let Some(d) = description {
                    param["description"] = d;
                }
                params.push(param);
            }
        }
        let op = self.object();
        let list = op.entry("parameters").or_insert_with(|| json!([]));
        if let Value::Array(existing) = list {
            existing.extend(params);
        }
        self
    }

    /// A JSON request body of type `T`.
    pub fn body<T: JsonSchema>(mut self) -> Self {
        let schema = self.spec.generator.subschema_for::<T>();
        self.object().insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"schema": schema}}}),
        );
        self
    }

    /// A raw request body of `mime`.
    pub fn raw_body(mut self, mime: &str) -> Self {
        self.object().insert(
            "requestBody".into(),
            json!({"required": true, "content": {mime: {"schema": {"type": "string", "contentEncoding": "binary"}}}}),
        );
        self
    }

    /// `200` with a JSON body of type `T`.
    pub fn ok<T: JsonSchema>(self) -> Self {
        self.json::<T>(200, "Success")
    }

    /// `status` with a JSON body of type `T`.
    pub fn json<T: JsonSchema>(self, status: u16, description: &str) -> Self {
        let schema = self.spec.generator.subschema_for::<T>();
        self.response(
            status,
            json!({"description": description, "content": {"application/json": {"schema": schema}}}),
        )
    }

    /// `status` with a body of `mime` that is not JSON (a page, a script, bytes, metrics).
    pub fn content(self, status: u16, mime: &str, description: &str) -> Self {
        let schema = if mime == "application/json" {
            json!({})
        } else {
            json!({"type": "string"})
        };
        self.response(
            status,
            json!({"description": description, "content": {mime: {"schema": schema}}}),
        )
    }

    /// `status` with no body.
    pub fn empty(self, status: u16, description: &str) -> Self {
        self.response(status, json!({"description": description}))
    }

    /// Error statuses this operation is known to answer, each as [`ErrorBody`].
    pub fn errors(mut self, statuses: &[(u16, &str)]) -> Self {
        let schema = self.spec.generator.subschema_for::<ErrorBody>();
        for (status, description) in statuses {
            self = self.response(
                *status,
                json!({"description": description, "content": {"application/json": {"schema": schema.clone()}}}),
            );
        }
        self
    }

    fn response(mut self, status: u16, response: Value) -> Self {
        let op = self.object();
        let responses = op.entry("responses").or_insert_with(|| json!({}));
        if let Value::Object(r) = responses {
            r.insert(status.to_string(), response);
        }
        self
    }
}

/// `router` with `GET /openapi.json` serving `spec`, and, when [`RECORD_ENV`] is set,
/// every response recorded for the conformance test.
pub fn attach(router: Router, spec: ApiSpec) -> Router {
    let role = spec.role.clone();
    let document = Arc::new(spec.document());
    let served = document.clone();
    let router = router.route(
        "/openapi.json",
        get(move || {
            let d = served.clone();
            async move { Json((*d).clone()) }
        }),
    );
    match std::env::var_os(RECORD_ENV) {
        Some(dir) if !dir.is_empty() => {
            match Recorder::open(PathBuf::from(dir), &role, &document) {
                Ok(rec) => router
                    .layer(axum::middleware::from_fn(crate::api::wire_errors))
                    .layer(axum::middleware::from_fn_with_state(Arc::new(rec), record)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record responses for the OpenAPI check");
                    router
                }
            }
        }
        _ => router,
    }
}

/// Writes each response of one node as a JSON line.
struct Recorder {
    file: Mutex<std::fs::File>,
}

static RECORDERS: AtomicU64 = AtomicU64::new(0);

impl Recorder {
    fn open(dir: PathBuf, role: &str, document: &Value) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let n = RECORDERS.fetch_add(1, Ordering::Relaxed);
        let stem = format!("{role}-{}-{n}", std::process::id());
        std::fs::write(
            dir.join(format!("{stem}.spec.json")),
            serde_json::to_vec(document).map_err(std::io::Error::other)?,
        )?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{stem}.responses.jsonl")))?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }
}

async fn record(State(rec): State<Arc<Recorder>>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_lowercase();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let uri = req.uri().to_string();
    let response = next.run(req).await;
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return crate::api::ApiError::internal(format!("reading the response body: {e}"))
                .into_response()
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let is_json = content_type.starts_with("application/json")
        || content_type.contains("+json")
        || content_type.is_empty() && !bytes.is_empty();
    let body_json = if is_json {
        Some(
            serde_json::from_slice::<Value>(&bytes)
                .unwrap_or(Value::String(format!("<not JSON: {} bytes>", bytes.len()))),
        )
    } else {
        None
    };
    let line = json!({
        "method": method,
        "route": route,
        "uri": uri,
        "status": parts.status.as_u16(),
        "content_type": content_type,
        "json": body_json.is_some(),
        "body": body_json,
    });
    if let Ok(mut text) = serde_json::to_vec(&line) {
        text.push(b'\n');
        if let Ok(mut f) = rec.file.lock() {
            let _ = f.write_all(&text);
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every role's descriptions together.
    fn everything() -> ApiSpec {
        let mut spec = ApiSpec::new("test");
        crate::metrics::describe(&mut spec);
        crate::coordinator::describe(&mut spec);
        crate::compute::intake::describe(&mut spec);
        crate::consents::describe(&mut spec);
        crate::dashboard::describe(&mut spec);
        crate::jobs::board::describe(&mut spec);
        crate::jobs::prover::describe(&mut spec);
        crate::builds::describe(&mut spec);
        crate::runs::describe(&mut spec);
        crate::log_routes::describe(&mut spec);
        crate::validator::describe(&mut spec);
        crate::worker::describe(&mut spec);
        crate::ledger_service::describe(&mut spec);
        crate::replicated_ledger::describe(&mut spec);
        spec
    }

    /// The path literals of every `.route("…"` in `source`.
    fn routes_in(source: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let trimmed = rest.trim_start();
            if let Some(lit) = trimmed.strip_prefix('"') {
                if let Some(end) = lit.find('"') {
                    if lit.starts_with('/') {
                        out.push(lit[..end].to_string());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_route_in_the_source_is_described() {
        let doc = everything().document();
        let paths = doc["paths"].as_object().unwrap();
        let sources = [
            include_str!("coordinator.rs"),
            include_str!("compute/intake.rs"),
            include_str!("consents.rs"),
            include_str!("dashboard.rs"),
            include_str!("jobs/board.rs"),
            include_str!("jobs/prover.rs"),
            include_str!("builds.rs"),
            include_str!("runs.rs"),
            include_str!("log_routes.rs"),
            include_str!("validator.rs"),
            include_str!("worker.rs"),
            include_str!("ledger_service.rs"),
            include_str!("replicated_ledger.rs"),
            include_str!("metrics.rs"),
        ];
        let mut seen = 0;
        for source in sources {
            for route in routes_in(source) {
                seen += 1;
                assert!(
                    paths.contains_key(&route),
                    "{route} is routed but not described"
                );
            }
        }
        assert!(seen > 70, "only {seen} routes found: is the scan broken?");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_resolvable_refs() {
        let doc = everything().document();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in schemas.keys() {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
                "{name}"
            );
        }
        let text = doc.to_string();
        let mut ids = std::collections::HashSet::new();
        for op in doc["paths"].as_object().unwrap().values() {
            for (_, o) in op.as_object().unwrap() {
                assert!(ids.insert(o["operationId"].as_str().unwrap().to_string()));
            }
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find("\"$ref\":\"#/components/schemas/") {
            rest = &rest[at + "\"$ref\":\"#/components/schemas/".len()..];
            let name = &rest[..rest.find('"').unwrap()];
            assert!(schemas.contains_key(name), "dangling $ref {name}");
        }
        if let Ok(out) = std::env::var("HALLMARK_OPENAPI_DUMP") {
            std::fs::write(out, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        }
    }
}
