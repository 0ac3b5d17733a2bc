//! The resource API of embedded mode, with Kubernetes-shaped paths:
//! `/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}]`, `/apis/{group}/{version}/{plural}`
//! (all namespaces), `/api/v1/...` for the core kinds; cluster-scoped kinds (Namespace) at
//! `/api/v1/namespaces[/{name}]` and `/apis/{group}/{version}/{plural}[/{name}]`; plus `POST /sluice/v1/apply`
//! (all-or-nothing multi-object apply) and `/metrics`. Lists carry the resourceVersion to watch
//! from and take `labelSelector` and `fieldSelector`; `?watch=true` streams changes
//! ([`crate::watch`]); a write naming a stale resourceVersion is a 409 Conflict.
//!
//! Errors are Kubernetes `Status` objects with the matching HTTP code.
//!
//! The read-only shape kubectl needs is served beside: discovery (`/version`, `/api`, `/apis`,
//! [`crate::discovery`]), OpenAPI (`/openapi/v2`, `/openapi/v3`, [`crate::openapi`]) and, for
//! list and get requests that ask for it in `Accept`, a `Table` ([`crate::table`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sluice_crds::registry::{find_by_plural, KindInfo};
use sluice_crds::storage::present;

use crate::patch::{self, PatchError, PatchFormat};
use crate::selector::Selector;
use crate::store::{ObjectKey, Propagation, StoreError};
use crate::table::IncludeObject;
use crate::watch::{self, WatchRequest};
use crate::{discovery, openapi, table, ControlPlane};

/// An API error rendered as a Kubernetes `Status`.
#[derive(Debug)]
pub struct ApiError {
    code: StatusCode,
    reason: &'static str,
    message: String,
    /// Field path and message of each cause.
    causes: Vec<(String, String)>,
}

impl ApiError {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            causes: vec![],
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { messages, causes } => Self {
                code: StatusCode::UNPROCESSABLE_ENTITY,
                reason: "Invalid",
                message: format!("{} error(s); nothing was applied:\n{}", messages.len(), messages.join("\n")),
                causes: causes.into_iter().map(|c| (c.path, c.message)).collect(),
            },
            e @ StoreError::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, "NotFound", e.to_string()),
            e @ StoreError::AlreadyExists { .. } => Self::new(StatusCode::CONFLICT, "AlreadyExists", e.to_string()),
            e @ StoreError::Conflict { .. } => Self::new(StatusCode::CONFLICT, "Conflict", e.to_string()),
            e @ StoreError::Io { .. } => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // As the API server reports invalid fields: kubectl and clients print `field: message`.
        let causes: Vec<Value> = self
            .causes
            .iter()
            .map(|(field, message)| json!({"reason": "FieldValueInvalid", "message": message, "field": field}))
            .collect();
        let body = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code.as_u16(),
            "details": {"causes": causes},
        });
        (self.code, Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// Largest request body the API reads (the API server's limit is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// A request body read whole, up to [`MAX_BODY_BYTES`]; a larger one is a 413 `Status`.
struct RawBody(Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Self, ApiError> {
        let mut body = req.into_body();
        let mut bytes = bytes::BytesMut::new();
        let mut seen = 0usize;
        while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
            let frame = frame.map_err(|e| bad_request(format!("cannot read the request body: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            seen += data.len();
            if seen <= MAX_BODY_BYTES {
                bytes.extend_from_slice(&data);
            } else if seen > DRAIN_LIMIT_BYTES {
                break;
            }
        }
        if seen > MAX_BODY_BYTES {
            // Read (and dropped) up to DRAIN_LIMIT_BYTES, so the client gets this answer
            // instead of a connection reset while it is still sending.
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            ));
        }
        Ok(Self(bytes.freeze()))
    }
}

/// How much of an oversized body is read before answering 413.
const DRAIN_LIMIT_BYTES: usize = 16 * 1024 * 1024;

/// An object in a request body, JSON (`application/json`) or YAML (`application/yaml`), as
/// the API server takes them; a malformed body, another content type or an oversized body is a
/// Kubernetes `Status` naming what was wrong, like every other error of this API. A body
/// without `Content-Type` is read as JSON, as the API server reads it: the Python client sends
/// creates and replaces of custom objects without one.
struct JsonBody<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        let parsed = match content_type.as_str() {
            "" | "application/json" => serde_json::from_slice::<T>(&bytes).map_err(|e| e.to_string()),
            "application/yaml" => serde_yaml::from_slice::<T>(&bytes).map_err(|e| e.to_string()),
            crate::k8s_proto::MEDIA_TYPE => match crate::k8s_proto::decode(&bytes) {
                Ok(object) => serde_json::from_value::<T>(object).map_err(|e| e.to_string()),
                Err(e @ crate::k8s_proto::ProtoError::UnsupportedKind { .. }) => {
                    return Err(unsupported_media_type(e.to_string()))
                }
                Err(e) => Err(e.to_string()),
            },
            other => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    format!("unsupported content type {other:?}: send application/json, application/yaml or (for v1 Namespace, ConfigMap and Secret) application/vnd.kubernetes.protobuf"),
                ))
            }
        };
        parsed
            .map(Self)
            .map_err(|e| bad_request(format!("invalid request body ({content_type}): {e}")))
    }
}

/// The API router behind a bearer token: every request but `/healthz` must carry
/// `Authorization: Bearer {token}`, else it is answered 401 with a `Status`. `sluice run` uses
/// it when the API listens on an address other than loopback.
pub fn router_with_token(cp: Arc<ControlPlane>, token: String) -> Router {
    let token: Arc<str> = token.into();
    router(cp).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let token = token.clone();
            async move {
                let presented = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "));
                if req.uri().path() == "/healthz" || presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
                    next.run(req).await
                } else {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "Unauthorized",
                        "a bearer token is required: use the kubeconfig sluice run wrote into its data dir",
                    )
                    .into_response()
                }
            }
        },
    ))
}

/// Compares without stopping at the first difference, so the answer time does not tell how
/// much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The API router.
pub fn router(cp: Arc<ControlPlane>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/sluice/v1/apply", post(apply))
        // Discovery, also with the trailing slash the Python client's paths have.
        .route("/version", get(version))
        .route("/version/", get(version))
        .route("/api", get(core_versions))
        .route("/api/", get(core_versions))
        .route("/api/v1", get(core_resource_list))
        .route("/api/v1/", get(core_resource_list))
        .route("/apis", get(group_list))
        .route("/apis/", get(group_list))
        .route("/apis/{group}", get(group))
        .route("/apis/{group}/", get(group))
        .route("/apis/{group}/{version}", get(group_resource_list))
        .route("/apis/{group}/{version}/", get(group_resource_list))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(|| async { Json(openapi::v3_index()) }))
        .route(
            "/openapi/v3/api/{version}",
            get(|h: HeaderMap, Path(v): Path<String>| openapi_v3(h, format!("api/{v}"))),
        )
        .route(
            "/openapi/v3/apis/{group}/{version}",
            get(|h: HeaderMap, Path((g, v)): Path<(String, String)>| openapi_v3(h, format!("apis/{g}/{v}"))),
        )
        .route("/apis/{group}/{version}/{plural}", get(list_all).post(cluster_create))
        .route(
            "/apis/{group}/{version}/{plural}/{name}",
            get(cluster_get).put(cluster_replace).delete(cluster_delete).patch(cluster_patch),
        )
        .route("/apis/{group}/{version}/namespaces/{ns}/{plural}", get(list_ns).post(create))
        .route(
            "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}",
            get(get_one).put(replace).delete(delete_one).patch(patch_one),
        )
        .route(
            "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}/status",
            get(get_one).put(replace_status).patch(patch_status),
        )
        .route("/api/v1/{plural}", get(core_list_all).post(core_cluster_create))
        .route(
            "/api/v1/namespaces/{ns}",
            get(namespace_get)
                .put(namespace_replace)
                .delete(namespace_delete)
                .patch(namespace_patch),
        )
        .route("/api/v1/namespaces/{ns}/{plural}", get(core_list_ns).post(core_create))
        .route(
            "/api/v1/namespaces/{ns}/{plural}/{name}",
            get(core_get).put(core_replace).delete(core_delete).patch(core_patch),
        )
        .route(
            "/api/v1/namespaces/{ns}/{plural}/{name}/status",
            get(core_get).put(core_replace_status).patch(core_patch_status),
        )
        .fallback(|| async { not_found_path() })
        .layer(axum::middleware::from_fn(refuse_dry_run))
        .with_state(cp)
}

/// Sluice has no dry run: a write asking for one (`?dryRun=All`, as `kubectl apply
/// --dry-run=server` and `kubectl diff` send it) is refused with 400, as an API server without
/// the feature refused it, instead of being carried out.
async fn refuse_dry_run(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let dry_run = req.method() != axum::http::Method::GET
        && url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).any(|(k, v)| k == "dryRun" && !v.is_empty());
    if dry_run {
        return bad_request("dryRun is not supported by sluice: nothing was done".into()).into_response();
    }
    next.run(req).await
}

/// What the API server answers for a path it does not serve: a `Status`, not an empty body.
fn not_found_path() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
    )
}

async fn version() -> Json<Value> {
    Json(discovery::version_info())
}

async fn core_resource_list() -> ApiResult {
    resource_list(String::new(), "v1".into()).await
}

async fn group_resource_list(Path((g, v)): Path<(String, String)>) -> ApiResult {
    resource_list(g, v).await
}

async fn metrics(State(cp): State<Arc<ControlPlane>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        cp.metrics.encode(),
    )
        .into_response()
}

fn not_found(what: String) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("the server could not find the requested resource {what}"),
    )
}

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

/// Aggregated discovery when asked for (with its content type, by which client-go tells it
/// apart), else `plain`.
fn discovery_response(headers: &HeaderMap, core: bool, plain: Value) -> Response {
    if accept(headers).is_some_and(discovery::wants_aggregated) {
        let body = discovery::aggregated(core).to_string();
        return ([(header::CONTENT_TYPE, discovery::AGGREGATED_V2)], body).into_response();
    }
    Json(plain).into_response()
}

async fn core_versions(headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let plain = discovery::api_versions(host);
    discovery_response(&headers, true, plain)
}

async fn group_list(headers: HeaderMap) -> Response {
    discovery_response(&headers, false, discovery::api_group_list())
}

async fn group(Path(group): Path<String>) -> ApiResult {
    discovery::api_group(&group)
        .map(|g| Json(g).into_response())
        .ok_or_else(|| not_found(group))
}

async fn resource_list(group: String, version: String) -> ApiResult {
    discovery::api_resource_list(&group, &version)
        .map(|l| Json(l).into_response())
        .ok_or_else(|| not_found(format!("{group}/{version}")))
}

fn json_text(text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

fn not_acceptable(what: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_ACCEPTABLE, "NotAcceptable", what.to_string())
}

async fn openapi_v2(headers: HeaderMap) -> ApiResult {
    match openapi::negotiate(accept(&headers), true) {
        Some(openapi::Encoding::Json) => Ok(json_text(openapi::v2_text())),
        Some(openapi::Encoding::Protobuf) => {
            Ok(([(header::CONTENT_TYPE, crate::openapi_proto::CONTENT_TYPE)], openapi::v2_protobuf()).into_response())
        }
        None => Err(not_acceptable("/openapi/v2 is served as application/json and in protobuf")),
    }
}

async fn openapi_v3(headers: HeaderMap, key: String) -> ApiResult {
    let text = openapi::v3_text(&key).ok_or_else(|| not_found(format!("/openapi/v3/{key}")))?;
    if openapi::negotiate(accept(&headers), false).is_none() {
        return Err(not_acceptable("/openapi/v3 is served as application/json only"));
    }
    Ok(json_text(text))
}

/// How a list or get answers: the objects as JSON (the default) or, when `Accept` asks for a
/// `meta.k8s.io/v1` Table, a Table with `?includeObject=` honoured; lists keep the objects that
/// `?labelSelector=` and `?fieldSelector=` select ([`crate::selector`]). With `?watch=true` a
/// list request is a watch ([`crate::watch`]) from `?resourceVersion=`, ending after
/// `?timeoutSeconds=`.
#[derive(Clone, Debug, Default)]
struct View {
    table: Option<IncludeObject>,
    selector: Selector,
    watch: Option<WatchFrom>,
}

/// Where a watch starts and how long it runs.
#[derive(Clone, Copy, Debug, Default)]
struct WatchFrom {
    from: Option<u64>,
    timeout: Option<std::time::Duration>,
}

impl<S: Send + Sync> FromRequestParts<S> for View {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query: Vec<(String, String)> = url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let number = |name: &str| -> Result<Option<u64>, ApiError> {
            match param(name).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| bad_request(format!("invalid {name} {v:?}: not a number"))),
            }
        };
        let watch = match param("watch").is_some_and(|w| w == "true" || w == "1") {
            true => Some(WatchFrom {
                from: number("resourceVersion")?,
                timeout: number("timeoutSeconds")?.map(std::time::Duration::from_secs),
            }),
            false => None,
        };
        let selector = Selector::parse(param("labelSelector"), param("fieldSelector")).map_err(|e| bad_request(e.to_string()))?;
        let table = accept(&parts.headers)
            .is_some_and(table::wants_table)
            .then(|| IncludeObject::from_query(param("includeObject")));
        Ok(Self { table, selector, watch })
    }
}

impl View {
    /// Renders a list (`list_revision` is its resourceVersion) or one object.
    fn render(self, info: &KindInfo, mut objects: Vec<Value>, list_revision: Option<u64>) -> Response {
        if list_revision.is_some() {
            objects.retain(|o| self.selector.matches(o));
        }
        let metadata = json!({"resourceVersion": list_revision.map(|r| r.to_string()).unwrap_or_default()});
        match (self.table, list_revision) {
            (Some(include), _) => {
                let mut table = table::table(info, &objects, include, chrono::Utc::now());
                if list_revision.is_some() {
                    table["metadata"] = metadata;
                }
                Json(table).into_response()
            }
            (None, Some(_)) => Json(json!({
                "apiVersion": info.api_version(), "kind": format!("{}List", info.kind), "metadata": metadata, "items": objects,
            }))
            .into_response(),
            (None, None) => Json(objects.into_iter().next().unwrap_or(Value::Null)).into_response(),
        }
    }
}

fn kind(group: &str, version: &str, plural: &str) -> Result<&'static KindInfo, ApiError> {
    find_by_plural(group, version, plural).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("the server could not find the requested resource {plural}.{group}/{version}"),
        )
    })
}

fn bad_request(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// A list (carrying the resourceVersion to watch from) or, with `?watch=true`, a watch. A
/// cluster-scoped kind has no namespaced collection; a field selector must name a field the
/// kind supports.
fn list_or_watch(cp: &ControlPlane, info: &'static KindInfo, namespace: Option<&str>, mut view: View) -> ApiResult {
    if !info.namespaced && namespace.is_some() {
        return Err(not_found(format!("{} (cluster-scoped) in a namespace", info.plural)));
    }
    view.selector = std::mem::take(&mut view.selector)
        .for_kind(info)
        .map_err(|e| bad_request(e.to_string()))?;
    if let Some(start) = view.watch {
        let request = WatchRequest {
            kind: info,
            namespace: namespace.map(str::to_string),
            from: start.from,
            selector: view.selector,
            timeout: start.timeout,
        };
        return Ok(watch::respond(&cp.store, request));
    }
    let (items, revision) = cp.store.list_at(info, namespace);
    let items = items.into_iter().map(|o| present(info, o)).collect();
    Ok(view.render(info, items, Some(revision)))
}

async fn list_all(State(cp): State<Arc<ControlPlane>>, view: View, Path((g, v, p)): Path<(String, String, String)>) -> ApiResult {
    let info = kind(&g, &v, &p)?;
    list_or_watch(&cp, info, None, view)
}

async fn list_ns(
    State(cp): State<Arc<ControlPlane>>,
    view: View,
    Path((g, v, ns, p)): Path<(String, String, String, String)>,
) -> ApiResult {
    let info = kind(&g, &v, &p)?;
    list_or_watch(&cp, info, Some(&ns), view)
}

async fn get_one(
    State(cp): State<Arc<ControlPlane>>,
    view: View,
    Path((g, v, ns, p, name)): Path<(String, String, String, String, String)>,
) -> ApiResult {
    let info = kind(&g, &v, &p)?;
    cp.store
        .get(&ObjectKey::new(info, &ns, &name))
        .map(|o| view.render(info, vec![present(info, o)], None))
        .ok_or_else(|| {
            StoreError::NotFound {
                kind: info.singular.into(),
                namespace: ns,
                name,
            }
            .into()
        })
}

/// Fills kind/apiVersion/namespace/name from the path where the body leaves them out, and
/// refuses bodies that contradict the path.
fn fit_to_path(info: &KindInfo, ns: &str, name: Option<&str>, mut body: Value) -> Result<Value, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", m);
    let obj = body
        .as_object_mut()
        .ok_or_else(|| bad("request body must be a JSON object".into()))?;
    obj.entry("apiVersion").or_insert_with(|| json!(info.api_version()));
    obj.entry("kind").or_insert_with(|| json!(info.kind));
    if obj["kind"] != info.kind {
        return Err(bad(format!("kind {} does not match the path ({})", obj["kind"], info.kind)));
    }
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    if !info.namespaced {
        if !ns.is_empty() {
            return Err(not_found(format!("{} (cluster-scoped) in a namespace", info.plural)));
        }
        // As the API server does, a cluster-scoped object drops a namespace it was given.
        if let Some(m) = meta.as_object_mut() {
            m.remove("namespace");
        }
        if let (Some(name), Some(given)) = (name, meta["name"].as_str()) {
            if given != name {
                return Err(bad(format!("metadata.name {given:?} does not match the path name {name:?}")));
            }
        }
        if let Some(name) = name {
            meta["name"] = json!(name);
        }
        return Ok(body);
    }
    let meta_ns = meta["namespace"].as_str().unwrap_or(ns).to_string();
    if meta_ns != ns {
        return Err(bad(format!(
            "metadata.namespace {meta_ns:?} does not match the path namespace {ns:?}"
        )));
    }
    meta["namespace"] = json!(ns);
    if let Some(name) = name {
        if meta["name"].as_str().is_some_and(|n| n != name) {
            return Err(bad(format!("metadata.name {} does not match the path name {name:?}", meta["name"])));
        }
        meta["name"] = json!(name);
    }
    Ok(body)
}

async fn write_one(cp: &ControlPlane, info: &'static KindInfo, ns: &str, name: Option<&str>, body: Value, create_only: bool) -> ApiResult {
    let body = fit_to_path(info, ns, name, body)?;
    let applied = cp.apply(vec![body], create_only).await?;
    let a = &applied[0];
    let code = if a.action == "created" {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let obj = cp.store.get(&ObjectKey::new(info, &a.namespace, &a.name)).unwrap_or(Value::Null);
    Ok((code, Json(present(info, obj))).into_response())
}

async fn create(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, ns, p)): Path<(String, String, String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult {
    let info = kind(&g, &v, &p)?;
    write_one(&cp, info, &ns, None, body, true).await
}

async fn replace(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, ns, p, name)): Path<(String, String, String, String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult {
    let info = kind(&g, &v, &p)?;
    write_one(&cp, info, &ns, Some(&name), body, false).await
}

/// The propagation a DELETE asks for: `?propagationPolicy=` or a `DeleteOptions` body
/// (`{"propagationPolicy": "Foreground"}`, what `kubectl delete --cascade=foreground` sends);
/// background by default, as in Kubernetes.
fn propagation(uri: &axum::http::Uri, body: &[u8]) -> Result<Propagation, ApiError> {
    let from_query = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "propagationPolicy")
        .map(|(_, v)| v.into_owned());
    let from_body = match body.iter().all(u8::is_ascii_whitespace) {
        true => None,
        false => {
            let options: Value = serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid DeleteOptions: {e}")))?;
            options["propagationPolicy"].as_str().map(str::to_string).or_else(|| {
                // The older form, `orphanDependents: true`.
                (options["orphanDependents"] == json!(true)).then(|| "Orphan".to_string())
            })
        }
    };
    match from_query.or(from_body).as_deref() {
        None | Some("Background") => Ok(Propagation::Background),
        Some("Foreground") => Ok(Propagation::Foreground),
        Some("Orphan") => Ok(Propagation::Orphan),
        Some(other) => Err(bad_request(format!(
            "invalid propagationPolicy {other:?}: use Background, Foreground or Orphan"
        ))),
    }
}

/// DELETE of an object: removed, or marked for deletion while finalizers remain; the objects
/// it owns follow the propagation policy. Answers the object (marked, or as it was).
async fn delete_one(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, ns, p, name)): Path<(String, String, String, String, String)>,
    uri: axum::http::Uri,
    RawBody(body): RawBody,
) -> ApiResult {
    let info = kind(&g, &v, &p)?;
    let propagation = propagation(&uri, &body)?;
    let obj = cp.delete_with(info, &ns, &name, propagation).await?;
    Ok(Json(present(info, obj)).into_response())
}

/// The path of one object: group, version, namespace, plural, name.
type ObjectPath = Path<(String, String, String, String, String)>;

fn unsupported_media_type(message: String) -> ApiError {
    ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", message)
}

/// The patch format a request names; strategic merge patch is refused for Knative kinds, as the
/// API server refuses it for custom resources (kubectl then sends a merge patch).
fn patch_format(info: &KindInfo, headers: &HeaderMap) -> Result<PatchFormat, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    match PatchFormat::from_content_type(content_type) {
        Some(PatchFormat::StrategicMerge) if info.is_knative() => Err(unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (strategic merge patch is not supported for {})",
            info.kind
        ))),
        Some(format) => Ok(format),
        None => Err(unsupported_media_type(format!(
            "unsupported patch content type {content_type:?}: use application/merge-patch+json, application/json-patch+json or application/apply-patch+yaml"
        ))),
    }
}

fn patch_error(info: &KindInfo, ns: &str, name: &str, e: PatchError) -> ApiError {
    match e {
        PatchError::NotFound => StoreError::NotFound {
            kind: info.singular.into(),
            namespace: ns.into(),
            name: name.into(),
        }
        .into(),
        e @ PatchError::Malformed { .. } => bad_request(e.to_string()),
        e @ PatchError::Failed(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", e.to_string()),
    }
}

/// PATCH of an object: the patched object goes through the same admission as a PUT, so its
/// status cannot change here and a stale resourceVersion in the patch is a 409. Server-side
/// apply creates what does not exist (201).
async fn patch_one(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, ns, p, name)): ObjectPath,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult {
    let info = kind(&g, &v, &p)?;
    let format = patch_format(info, &headers)?;
    let mut attempts = 0;
    loop {
        let current = cp.store.get(&ObjectKey::new(info, &ns, &name)).map(|o| present(info, o));
        let patched = patch::apply(format, current.as_ref(), &body).map_err(|e| patch_error(info, &ns, &name, e))?;
        // A patch that names no resourceVersion of its own applies to whatever is current, as
        // the API server's update loop does: a write that slipped in between (a controller's
        // status, say) means patching again, not a conflict. (Whether the patch names one is
        // asked only on a conflict, so a patch that goes through is applied once.)
        let pinned = |c: &Value| {
            patch::apply(format, Some(&without_version(c)), &body).is_ok_and(|p| p["metadata"].get("resourceVersion").is_some())
        };
        match write_one(&cp, info, &ns, Some(&name), patched, current.is_none()).await {
            Err(e) if e.code == StatusCode::CONFLICT && attempts < PATCH_ATTEMPTS && !current.as_ref().is_some_and(pinned) => attempts += 1,
            result => return result,
        }
    }
}

/// How often a patch is applied again when a concurrent write moved the object under it.
const PATCH_ATTEMPTS: usize = 5;

/// An object without `metadata.resourceVersion` (to see whether a patch sets one).
fn without_version(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    obj
}

/// The kind at a `/status` path, if it has that subresource.
fn status_kind(g: &str, v: &str, p: &str) -> Result<&'static KindInfo, ApiError> {
    let info = kind(g, v, p)?;
    if !info.status_subresource {
        return Err(not_found(format!("{p}/status ({} has no status subresource)", info.kind)));
    }
    Ok(info)
}

/// PUT of the `/status` subresource: only `status` is taken from the body.
async fn replace_status(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, ns, p, name)): ObjectPath,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult {
    let info = status_kind(&g, &v, &p)?;
    let body = fit_to_path(info, &ns, Some(&name), body)?;
    let status = body.get("status").cloned().unwrap_or_else(|| json!({}));
    let expected = body["metadata"]["resourceVersion"].as_str();
    let obj = cp.store.write_status(&ObjectKey::new(info, &ns, &name), status, expected)?;
    Ok(Json(obj).into_response())
}

/// PATCH of the `/status` subresource: the patch applies to the whole object, and only the
/// resulting `status` is kept.
async fn patch_status(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, ns, p, name)): ObjectPath,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult {
    let info = status_kind(&g, &v, &p)?;
    let format = patch_format(info, &headers)?;
    let key = ObjectKey::new(info, &ns, &name);
    let current = cp.store.get(&key);
    let patched = patch::apply(format, current.as_ref(), &body).map_err(|e| patch_error(info, &ns, &name, e))?;
    let current = current.ok_or_else(|| patch_error(info, &ns, &name, PatchError::NotFound))?;
    let expected = patched["metadata"]["resourceVersion"]
        .as_str()
        .filter(|rv| Some(*rv) != current["metadata"]["resourceVersion"].as_str());
    let status = patched.get("status").cloned().unwrap_or_else(|| json!({}));
    let obj = cp.store.write_status(&key, status, expected)?;
    Ok(Json(obj).into_response())
}

async fn core_patch(
    State(cp): State<Arc<ControlPlane>>,
    Path((ns, p, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult {
    patch_one(State(cp), Path((String::new(), "v1".into(), ns, p, name)), headers, RawBody(body)).await
}

async fn core_replace_status(
    State(cp): State<Arc<ControlPlane>>,
    Path((ns, p, name)): Path<(String, String, String)>,
    body: JsonBody<Value>,
) -> ApiResult {
    replace_status(State(cp), Path((String::new(), "v1".into(), ns, p, name)), body).await
}

async fn core_patch_status(
    State(cp): State<Arc<ControlPlane>>,
    Path((ns, p, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult {
    patch_status(State(cp), Path((String::new(), "v1".into(), ns, p, name)), headers, RawBody(body)).await
}

async fn core_list_all(State(cp): State<Arc<ControlPlane>>, view: View, Path(p): Path<String>) -> ApiResult {
    list_all(State(cp), view, Path((String::new(), "v1".into(), p))).await
}

async fn core_list_ns(State(cp): State<Arc<ControlPlane>>, view: View, Path((ns, p)): Path<(String, String)>) -> ApiResult {
    list_ns(State(cp), view, Path((String::new(), "v1".into(), ns, p))).await
}

async fn core_get(State(cp): State<Arc<ControlPlane>>, view: View, Path((ns, p, name)): Path<(String, String, String)>) -> ApiResult {
    get_one(State(cp), view, Path((String::new(), "v1".into(), ns, p, name))).await
}

async fn core_create(State(cp): State<Arc<ControlPlane>>, Path((ns, p)): Path<(String, String)>, body: JsonBody<Value>) -> ApiResult {
    create(State(cp), Path((String::new(), "v1".into(), ns, p)), body).await
}

async fn core_replace(
    State(cp): State<Arc<ControlPlane>>,
    Path((ns, p, name)): Path<(String, String, String)>,
    body: JsonBody<Value>,
) -> ApiResult {
    replace(State(cp), Path((String::new(), "v1".into(), ns, p, name)), body).await
}

async fn core_delete(
    State(cp): State<Arc<ControlPlane>>,
    Path((ns, p, name)): Path<(String, String, String)>,
    uri: axum::http::Uri,
    RawBody(body): RawBody,
) -> ApiResult {
    delete_one(State(cp), Path((String::new(), "v1".into(), ns, p, name)), uri, RawBody(body)).await
}

// Cluster-scoped kinds: the same handlers with an empty namespace, once the path's kind is
// known to be cluster-scoped (a namespaced kind has no such paths).

/// The path of one cluster-scoped object: group, version, plural, name.
type ClusterPath = Path<(String, String, String, String)>;

fn cluster_kind(g: &str, v: &str, p: &str) -> Result<&'static KindInfo, ApiError> {
    let info = kind(g, v, p)?;
    if info.namespaced {
        return Err(not_found(format!("{p}.{g}/{v} without a namespace ({} is namespaced)", info.kind)));
    }
    Ok(info)
}

async fn cluster_create(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, p)): Path<(String, String, String)>,
    body: JsonBody<Value>,
) -> ApiResult {
    cluster_kind(&g, &v, &p)?;
    create(State(cp), Path((g, v, String::new(), p)), body).await
}

async fn cluster_get(State(cp): State<Arc<ControlPlane>>, view: View, Path((g, v, p, name)): ClusterPath) -> ApiResult {
    cluster_kind(&g, &v, &p)?;
    get_one(State(cp), view, Path((g, v, String::new(), p, name))).await
}

async fn cluster_replace(State(cp): State<Arc<ControlPlane>>, Path((g, v, p, name)): ClusterPath, body: JsonBody<Value>) -> ApiResult {
    cluster_kind(&g, &v, &p)?;
    replace(State(cp), Path((g, v, String::new(), p, name)), body).await
}

async fn cluster_delete(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, p, name)): ClusterPath,
    uri: axum::http::Uri,
    body: RawBody,
) -> ApiResult {
    cluster_kind(&g, &v, &p)?;
    delete_one(State(cp), Path((g, v, String::new(), p, name)), uri, body).await
}

async fn cluster_patch(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, p, name)): ClusterPath,
    headers: HeaderMap,
    body: RawBody,
) -> ApiResult {
    cluster_kind(&g, &v, &p)?;
    patch_one(State(cp), Path((g, v, String::new(), p, name)), headers, body).await
}

/// The path of one core cluster-scoped object, group and version filled in.
fn core_cluster(p: &str, name: String) -> ClusterPath {
    Path((String::new(), "v1".into(), p.to_string(), name))
}

async fn core_cluster_create(State(cp): State<Arc<ControlPlane>>, Path(p): Path<String>, body: JsonBody<Value>) -> ApiResult {
    cluster_create(State(cp), Path((String::new(), "v1".into(), p)), body).await
}

async fn namespace_get(State(cp): State<Arc<ControlPlane>>, view: View, Path(name): Path<String>) -> ApiResult {
    cluster_get(State(cp), view, core_cluster("namespaces", name)).await
}

async fn namespace_replace(State(cp): State<Arc<ControlPlane>>, Path(name): Path<String>, body: JsonBody<Value>) -> ApiResult {
    cluster_replace(State(cp), core_cluster("namespaces", name), body).await
}

async fn namespace_delete(State(cp): State<Arc<ControlPlane>>, Path(name): Path<String>, uri: axum::http::Uri, body: RawBody) -> ApiResult {
    cluster_delete(State(cp), core_cluster("namespaces", name), uri, body).await
}

async fn namespace_patch(State(cp): State<Arc<ControlPlane>>, Path(name): Path<String>, headers: HeaderMap, body: RawBody) -> ApiResult {
    cluster_patch(State(cp), core_cluster("namespaces", name), headers, body).await
}

/// Body of `POST /sluice/v1/apply`.
#[derive(serde::Deserialize)]
struct ApplyRequest {
    objects: Vec<Value>,
}

/// How long `POST /sluice/v1/apply` waits for the controllers to reconcile what it applied.
const APPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Applies objects all-or-nothing and answers once their controllers have written the status
/// of what was applied (at most [`APPLY_WAIT`]), so that `sluice apply` followed by `sluice
/// send` finds a new Trigger receiving. Each result says whether it was `reconciled` in time.
async fn apply(State(cp): State<Arc<ControlPlane>>, JsonBody(req): JsonBody<ApplyRequest>) -> ApiResult {
    let applied = cp.apply(req.objects, false).await?;
    let keys: Vec<ObjectKey> = applied.iter().map(|a| a.key.clone()).collect();
    let pending = cp.wait_reconciled(&keys, APPLY_WAIT).await;
    let results: Vec<Value> = applied
        .iter()
        .map(|a| {
            let mut r = json!(a);
            r["reconciled"] = json!(!pending.contains(&a.key));
            r
        })
        .collect();
    Ok(Json(json!({"results": results})).into_response())
}
