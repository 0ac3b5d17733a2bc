//! HTTP ingress of brokers (`POST /{namespace}/{broker}`) and channels
//! (`POST /channels/{namespace}/{channel}`), with Knative's status codes (BRK-08, CH-04):
//! 202 accepted, 400 invalid event or path, 404 unknown broker, 405 other methods, OPTIONS 200,
//! 413 over the size limit, 503 when the backend cannot store the event.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use sluice_delivery::{binding, headers, TraceContext};

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
    /// The request body could not be read (the client reset the connection or stream).
    #[error("cannot read the request body: {0}")]
    BodyRead(String),
    /// Not a valid CloudEvent.
    #[error("invalid cloudevent: {0}")]
    Invalid(String),
    /// TTL loop guard.
    #[error("{0}")]
    Ttl(String),
    /// Backend could not store.
    #[error("cannot store event: {0}")]
    Unavailable(String),
    /// A synchronous channel could not deliver to every subscriber.
    #[error("fan-out failed: {0}")]
    FanOut(String),
}

impl IntoResponse for IngressError {
    fn into_response(self) -> Response {
        let status = match &self {
            IngressError::Root | IngressError::NotFound(_) => StatusCode::NOT_FOUND,
            IngressError::BadPath(_) | IngressError::BodyRead(_) | IngressError::Invalid(_) | IngressError::Ttl(_) => {
                StatusCode::BAD_REQUEST
            }
            IngressError::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            IngressError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngressError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            IngressError::FanOut(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut resp = (status, format!("{self}\n")).into_response();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
        }
        resp
    }
}

/// Requests the gateway hands elsewhere by their `Host` or path: the Routes of the serving
/// plane, the webhook receivers of sources.
pub trait HostRouter: Send + Sync + 'static {
    /// Whether requests with this `Host` header and path are this router's.
    fn claims(&self, host: &str, path: &str) -> bool;
    /// Serves a request whose host it claims; `peer` is the client's address.
    fn serve(&self, req: Request, peer: std::net::SocketAddr)
        -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send + '_>>;
}

/// Serves broker and channel ingress on `listener` until the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, plane: Arc<DataPlane>) -> std::io::Result<()> {
    serve_with(listener, plane, None).await
}

/// Serves the gateway on `listener`: requests whose `Host` the `hosts` router claims go to
/// it, the rest are broker and channel ingress.
///
/// Paths are matched by hand instead of through a router: this is the hottest request path
/// of the process, and a router's per-request layers cost more than the two `match` arms.
/// HTTP/1.1 and HTTP/2 (prior knowledge) are both served.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    plane: Arc<DataPlane>,
    hosts: Option<Arc<dyn HostRouter>>,
) -> std::io::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and similar: wait instead of spinning or giving up.
            Err(e) => {
                tracing::warn!(error = %e, "gateway cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let plane = plane.clone();
        let hosts = hosts.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let plane = plane.clone();
                let hosts = hosts.clone();
                async move {
                    let req = req.map(Body::new);
                    if let Some(router) = hosts.as_ref() {
                        // HTTP/2 carries the host as the URI's authority.
                        let host = req
                            .headers()
                            .get(header::HOST)
                            .and_then(|h| h.to_str().ok())
                            .or_else(|| req.uri().authority().map(|a| a.as_str()))
                            .unwrap_or("");
                        if router.claims(host, req.uri().path()) {
                            return Ok::<_, std::convert::Infallible>(router.serve(req, peer).await);
                        }
                    }
                    Ok::<_, std::convert::Infallible>(handle(plane, req).await)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await {
                tracing::debug!(%peer, error = %e, "gateway connection ended with an error");
            }
        });
    }
}

/// Routes one gateway request: `/{namespace}/{broker}` and `/channels/{namespace}/{channel}`.
async fn handle(plane: Arc<DataPlane>, req: Request) -> Response {
    let result = match route(req.uri().path()) {
        Route::Root => Err(IngressError::Root),
        Route::Hub(kind, namespace, name) => {
            let key = HubKey {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
            };
            ingest(plane, key, req).await
        }
        Route::Unknown => Err(IngressError::BadPath(req.uri().path().to_string())),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Where a gateway path leads.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Root,
    Hub(HubKind, &'a str, &'a str),
    Unknown,
}

fn route(path: &str) -> Route<'_> {
    // One trailing slash names the same broker or channel (`/default/orders/`), as in Knative.
    let path = match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed,
        _ => path,
    };
    let mut segments = path.strip_prefix('/').unwrap_or(path).split('/');
    match (segments.next(), segments.next(), segments.next(), segments.next()) {
        (Some(""), None, None, None) => Route::Root,
        (Some("channels"), Some(ns), Some(name), None) if !ns.is_empty() && !name.is_empty() => Route::Hub(HubKind::Channel, ns, name),
        (Some(ns), Some(name), None, None) if !ns.is_empty() && !name.is_empty() => Route::Hub(HubKind::Broker, ns, name),
        _ => Route::Unknown,
    }
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
        // Counted against the broker or channel when it exists; requests to names that do not
        // exist carry no label worth keeping.
        if let Some(hub) = plane.hub(&key) {
            hub.ingress_metrics().rejected("method");
        }
        return Err(IngressError::Method(req.method().clone()));
    }
    // The event is read and validated before the broker is looked up, as Knative's ingress
    // does: an invalid event is a 400 whether or not the broker exists. Rejections are counted
    // against the broker or channel when it exists.
    let hub = plane.hub(&key);
    let rejected = |reason: &str| {
        if let Some(hub) = &hub {
            hub.ingress_metrics().rejected(reason);
        }
    };
    let limit = plane.max_body_bytes();
    let (parts, body) = req.into_parts();
    if let Some(len) = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
    {
        if len > limit {
            rejected("too_large");
            return Err(IngressError::TooLarge(limit));
        }
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            rejected("too_large");
            return Err(IngressError::TooLarge(limit));
        }
        Err(e) => {
            rejected("read_error");
            return Err(IngressError::BodyRead(e.to_string()));
        }
    };
    let events = binding::decode(&parts.headers, bytes).map_err(|e| {
        rejected("invalid");
        tracing::debug!(hub = %key, error = %e, "rejected invalid event");
        IngressError::Invalid(e.to_string())
    })?;
    let hub = hub.ok_or_else(|| IngressError::NotFound(key.to_string()))?;
    if plane.is_draining() {
        hub.ingress_metrics().rejected("shutting_down");
        return Err(IngressError::Unavailable(
            "sluice is shutting down; send the event again to another instance or later".into(),
        ));
    }
    let trace = TraceContext::continue_or_start(&parts.headers);
    hub.ingest(events, headers::pass_through(&parts.headers), trace)
        .await
        .map_err(|e| match e {
            IngestError::Ttl(m) => {
                hub.ingress_metrics().rejected("ttl");
                IngressError::Ttl(m)
            }
            IngestError::Unavailable(m) => {
                hub.ingress_metrics().rejected("unavailable");
                IngressError::Unavailable(m)
            }
            // Accepted and stored, so not counted as rejected; the failed deliveries are counted
            // per subscription.
            IngestError::FanOut(m) => IngressError::FanOut(m),
        })?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_broker_channel_root_and_unknown_paths() {
        assert_eq!(route("/"), Route::Root);
        assert_eq!(route("/default/orders"), Route::Hub(HubKind::Broker, "default", "orders"));
        assert_eq!(route("/channels/default/imc"), Route::Hub(HubKind::Channel, "default", "imc"));
        // Two segments are always a broker, even in a namespace called `channels`.
        assert_eq!(route("/channels/imc"), Route::Hub(HubKind::Broker, "channels", "imc"));
        assert_eq!(route("/default/orders/"), Route::Hub(HubKind::Broker, "default", "orders"));
        assert_eq!(route("/channels/default/imc/"), Route::Hub(HubKind::Channel, "default", "imc"));
        for bad in [
            "/default",
            "/default/orders/extra",
            "//orders",
            "/default/",
            "/default/orders//",
            "/channels/default/imc/x",
        ] {
            assert_eq!(route(bad), Route::Unknown, "{bad:?}");
        }
    }
}
