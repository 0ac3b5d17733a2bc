//! The resource API of embedded mode, with Kubernetes-shaped paths:
//! `/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}]`, `/apis/{group}/{version}/{plural}`
//! (all namespaces), `/api/v1/...` for ConfigMap and Secret, plus `POST /sluice/v1/apply`
//! (all-or-nothing multi-object apply) and `/metrics`. Lists carry the resourceVersion to watch
//! from and take `labelSelector` and `fieldSelector`; `?watch=true` streams changes
//! ([`crate::watch`]); a write naming a stale resourceVersion is a 409 Conflict.
//!
//! Errors are Kubernetes `Status` objects with the matching HTTP code.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sluice_crds::registry::{find_by_plural, KindInfo};

use crate::patch::{self, PatchError, PatchFormat};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ObjectKey, StoreError};
use crate::watch::{self, WatchRequest};
use crate::ControlPlane;

/// An API error rendered as a Kubernetes `Status`.
#[derive(Debug)]
pub struct ApiError {
    code: StatusCode,
    reason: &'static str,
    message: String,
    causes: Vec<String>,
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
            StoreError::Invalid(errors) => Self {
                code: StatusCode::UNPROCESSABLE_ENTITY,
                reason: "Invalid",
                message: format!("{} error(s); nothing was applied:\n{}", errors.len(), errors.join("\n")),
                causes: errors,
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
        let causes: Vec<Value> = self.causes.iter().map(|c| json!({"message": c})).collect();
        let body = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code.as_u16(),
            "details": {"causes": causes},
        });
        (self.code, Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// A JSON request body whose rejection (malformed JSON, wrong content type, wrong shape) is a
/// Kubernetes `Status` naming what was wrong, like every other error of this API.
struct JsonBody<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let code = rejection.status();
                let reason = if code == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    "UnsupportedMediaType"
                } else {
                    "BadRequest"
                };
                Err(ApiError::new(
                    code,
                    reason,
                    format!("invalid request body: {}", rejection.body_text()),
                ))
            }
        }
    }
}

/// The API router.
pub fn router(cp: Arc<ControlPlane>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/sluice/v1/apply", post(apply))
        .route("/apis/{group}/{version}/{plural}", get(list_all))
        .route("/apis/{group}/{version}/namespaces/{ns}/{plural}", get(list_ns).post(create))
        .route(
            "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}",
            get(get_one).put(replace).delete(delete_one).patch(patch_one),
        )
        .route(
            "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}/status",
            get(get_one).put(replace_status).patch(patch_status),
        )
        .route("/api/v1/{plural}", get(core_list_all))
        .route("/api/v1/namespaces/{ns}/{plural}", get(core_list_ns).post(core_create))
        .route(
            "/api/v1/namespaces/{ns}/{plural}/{name}",
            get(core_get).put(core_replace).delete(core_delete).patch(core_patch),
        )
        .with_state(cp)
}

async fn metrics(State(cp): State<Arc<ControlPlane>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        cp.metrics.encode(),
    )
        .into_response()
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

/// Query parameters of list and watch requests.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// `true` or `1` streams changes instead of answering a list.
    watch: Option<String>,
    /// Where a watch starts.
    resource_version: Option<String>,
    /// Label selector, e.g. `app=web,tier!=db`.
    label_selector: Option<String>,
    /// Field selector on `metadata.name` / `metadata.namespace`.
    field_selector: Option<String>,
    /// How long a watch runs.
    timeout_seconds: Option<u64>,
}

fn bad_request(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// A list (with the resourceVersion to watch from) or, with `?watch=true`, a watch.
fn list_or_watch(cp: &ControlPlane, info: &KindInfo, namespace: Option<&str>, query: ListQuery) -> ApiResult {
    let labels = LabelSelector::parse(query.label_selector.as_deref().unwrap_or("")).map_err(|e| bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(query.field_selector.as_deref().unwrap_or("")).map_err(|e| bad_request(e.to_string()))?;
    if matches!(query.watch.as_deref(), Some("true" | "1")) {
        let from = match query.resource_version.as_deref().filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(
                v.parse::<u64>()
                    .map_err(|_| bad_request(format!("invalid resourceVersion {v:?}: not a number")))?,
            ),
        };
        let request = WatchRequest {
            group: info.group.to_string(),
            plural: info.plural.to_string(),
            namespace: namespace.map(str::to_string),
            from,
            labels,
            fields,
            timeout: query.timeout_seconds.map(std::time::Duration::from_secs),
        };
        return Ok(watch::respond(&cp.store, request));
    }
    let (items, revision) = cp.store.list_at(info, namespace);
    let items: Vec<Value> = items.into_iter().filter(|o| labels.matches(o) && fields.matches(o)).collect();
    Ok(Json(json!({
        "apiVersion": info.api_version(), "kind": format!("{}List", info.kind),
        "metadata": {"resourceVersion": revision.to_string()}, "items": items,
    }))
    .into_response())
}

async fn list_all(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, p)): Path<(String, String, String)>,
    Query(query): Query<ListQuery>,
) -> ApiResult {
    let info = kind(&g, &v, &p)?;
    list_or_watch(&cp, info, None, query)
}

async fn list_ns(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, ns, p)): Path<(String, String, String, String)>,
    Query(query): Query<ListQuery>,
) -> ApiResult {
    let info = kind(&g, &v, &p)?;
    list_or_watch(&cp, info, Some(&ns), query)
}

async fn get_one(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, ns, p, name)): Path<(String, String, String, String, String)>,
) -> ApiResult {
    let info = kind(&g, &v, &p)?;
    cp.store
        .get(&ObjectKey::new(info, &ns, &name))
        .map(|o| Json(o).into_response())
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

async fn write_one(cp: &ControlPlane, info: &KindInfo, ns: &str, name: Option<&str>, body: Value, create_only: bool) -> ApiResult {
    let body = fit_to_path(info, ns, name, body)?;
    let applied = cp.apply(vec![body], create_only).await?;
    let a = &applied[0];
    let code = if a.action == "created" {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let obj = cp.store.get(&ObjectKey::new(info, &a.namespace, &a.name)).unwrap_or(Value::Null);
    Ok((code, Json(obj)).into_response())
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

async fn delete_one(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, ns, p, name)): Path<(String, String, String, String, String)>,
) -> ApiResult {
    let info = kind(&g, &v, &p)?;
    let obj = cp.delete(info, &ns, &name).await?;
    Ok(Json(obj).into_response())
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
        Some(PatchFormat::StrategicMerge) if !info.group.is_empty() => Err(unsupported_media_type(format!(
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
    body: Bytes,
) -> ApiResult {
    let info = kind(&g, &v, &p)?;
    let format = patch_format(info, &headers)?;
    let current = cp.store.get(&ObjectKey::new(info, &ns, &name));
    let patched = patch::apply(format, current.as_ref(), &body).map_err(|e| patch_error(info, &ns, &name, e))?;
    write_one(&cp, info, &ns, Some(&name), patched, current.is_none()).await
}

/// PUT of the `/status` subresource: only `status` is taken from the body.
async fn replace_status(
    State(cp): State<Arc<ControlPlane>>,
    Path((g, v, ns, p, name)): ObjectPath,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult {
    let info = kind(&g, &v, &p)?;
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
    body: Bytes,
) -> ApiResult {
    let info = kind(&g, &v, &p)?;
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
    body: Bytes,
) -> ApiResult {
    patch_one(State(cp), Path((String::new(), "v1".into(), ns, p, name)), headers, body).await
}

async fn core_list_all(State(cp): State<Arc<ControlPlane>>, Path(p): Path<String>, query: Query<ListQuery>) -> ApiResult {
    list_all(State(cp), Path((String::new(), "v1".into(), p)), query).await
}

async fn core_list_ns(State(cp): State<Arc<ControlPlane>>, Path((ns, p)): Path<(String, String)>, query: Query<ListQuery>) -> ApiResult {
    list_ns(State(cp), Path((String::new(), "v1".into(), ns, p)), query).await
}

async fn core_get(State(cp): State<Arc<ControlPlane>>, Path((ns, p, name)): Path<(String, String, String)>) -> ApiResult {
    get_one(State(cp), Path((String::new(), "v1".into(), ns, p, name))).await
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

async fn core_delete(State(cp): State<Arc<ControlPlane>>, Path((ns, p, name)): Path<(String, String, String)>) -> ApiResult {
    delete_one(State(cp), Path((String::new(), "v1".into(), ns, p, name))).await
}

/// Body of `POST /sluice/v1/apply`.
#[derive(serde::Deserialize)]
struct ApplyRequest {
    objects: Vec<Value>,
}

async fn apply(State(cp): State<Arc<ControlPlane>>, JsonBody(req): JsonBody<ApplyRequest>) -> ApiResult {
    let applied = cp.apply(req.objects, false).await?;
    Ok(Json(json!({"results": applied})).into_response())
}
