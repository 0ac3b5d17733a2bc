//! HTTP ingress of brokers (`POST /{namespace}/{broker}`) and channels
//! (`POST /channels/{namespace}/{channel}`), with Knative's status codes (BRK-08, CH-04):
//! 202 accepted, 400 invalid event or path, 404 unknown broker, 405 other methods, OPTIONS 200,
//! 413 over the size limit, 503 when the backend cannot store the event.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use sluice_delivery::{binding, TraceContext};

use crate::hub::{HubKey, HubKind, IngestError};
use crate::plane::DataPlane;

/// Errors of an ingress request, each mapped to its status code.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// Path is `/`.
    #[error("not found")]
    Root,
    /// Path is not `/{namespace}/{name}`.
    #[error("invalid path {0:?}: expected /{{namespace}}/{{broker}} or /channels/{{namespace}}/{{channel}}")]
    BadPath(String),
    /// No such broker or channel.
    #[error("{0} not found")]
    NotFound(String),
    /// A method other than POST or OPTIONS.
    #[error("method {0} not allowed; use POST")]
    Method(Method),
    /// Body over the size limit.
    #[error("event body exceeds the limit of {0} bytes")]
    TooLarge(usize),
    /// Not a valid CloudEvent.
    #[error("invalid cloudevent: {0}")]
    Invalid(String),
    /// TTL loop guard.
    #[error("{0}")]
    Ttl(String),
    /// Backend could not store.
    #[error("cannot store event: {0}")]
    Unavailable(String),
}

impl IntoResponse for IngressError {
    fn into_response(self) -> Response {
        let status = match &self {
            IngressError::Root | IngressError::NotFound(_) => StatusCode::NOT_FOUND,
            IngressError::BadPath(_) | IngressError::Invalid(_) | IngressError::Ttl(_) => StatusCode::BAD_REQUEST,
            IngressError::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            IngressError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngressError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut resp = (status, format!("{self}\n")).into_response();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
        }
        resp
    }
}

/// The gateway routes for broker and channel ingress.
pub fn router(plane: Arc<DataPlane>) -> Router {
    Router::new()
        .route("/", any(|| async { IngressError::Root }))
        .route("/channels/{namespace}/{name}", any(channel_ingress))
        .route("/{namespace}/{name}", any(broker_ingress))
        .fallback(|req: Request| async move { IngressError::BadPath(req.uri().path().to_string()) })
        .with_state(plane)
}

async fn broker_ingress(
    State(plane): State<Arc<DataPlane>>,
    Path((namespace, name)): Path<(String, String)>,
    req: Request,
) -> Result<Response, IngressError> {
    ingest(plane, HubKey { kind: HubKind::Broker, namespace, name }, req).await
}

async fn channel_ingress(
    State(plane): State<Arc<DataPlane>>,
    Path((namespace, name)): Path<(String, String)>,
    req: Request,
) -> Result<Response, IngressError> {
    ingest(plane, HubKey { kind: HubKind::Channel, namespace, name }, req).await
}

async fn ingest(plane: Arc<DataPlane>, key: HubKey, req: Request) -> Result<Response, IngressError> {
    if req.method() == Method::OPTIONS {
        let mut resp = StatusCode::OK.into_response();
        let h = resp.headers_mut();
        h.insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
        h.insert("webhook-allowed-origin", HeaderValue::from_static("*"));
        h.insert("webhook-allowed-rate", HeaderValue::from_static("*"));
        return Ok(resp);
    }
    if req.method() != Method::POST {
        return Err(IngressError::Method(req.method().clone()));
    }
    let hub = plane.hub(&key).ok_or_else(|| IngressError::NotFound(key.to_string()))?;
    let limit = plane.max_body_bytes();
    let (parts, body) = req.into_parts();
    if let Some(len) = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok()) {
        if len > limit {
            hub.ingress_metrics().rejected("too_large");
            return Err(IngressError::TooLarge(limit));
        }
    }
    let bytes = to_bytes(Body::new(body), limit).await.map_err(|_| {
        hub.ingress_metrics().rejected("too_large");
        IngressError::TooLarge(limit)
    })?;
    let events = binding::decode(&parts.headers, bytes).map_err(|e| {
        hub.ingress_metrics().rejected("invalid");
        tracing::debug!(hub = %key, error = %e, "rejected invalid event");
        IngressError::Invalid(e.to_string())
    })?;
    let trace = TraceContext::continue_or_start(&parts.headers);
    hub.ingest(events, trace).await.map_err(|e| match e {
        IngestError::Ttl(m) => {
            hub.ingress_metrics().rejected("ttl");
            IngressError::Ttl(m)
        }
        IngestError::Unavailable(m) => {
            hub.ingress_metrics().rejected("unavailable");
            IngressError::Unavailable(m)
        }
    })?;
    Ok(StatusCode::ACCEPTED.into_response())
}
