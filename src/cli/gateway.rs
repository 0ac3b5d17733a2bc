//! What the gateway serves besides broker and channel ingress: the hosts of Knative Services'
//! Routes (the serving plane), and the webhook receivers of GitHubSources at
//! `/githubsources/{namespace}/{name}` (the source plane).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use sluice_router::ServingPlane;
use sluice_sources::github::PATH_PREFIX;
use sluice_sources::SourcePlane;

/// GitHub caps webhook payloads at 25 MB.
const MAX_WEBHOOK_BYTES: usize = 25 << 20;

/// The gateway's routes to the serving and source planes.
pub(crate) struct GatewayRoutes {
    /// Route hosts.
    pub serving: Arc<ServingPlane>,
    /// Webhook receivers.
    pub sources: Arc<SourcePlane>,
}

impl sluice_brokers::ingress::HostRouter for GatewayRoutes {
    fn claims(&self, host: &str, path: &str) -> bool {
        self.serving.serves_host(host) || path.starts_with(PATH_PREFIX)
    }

    fn serve(&self, req: Request, peer: SocketAddr) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
        Box::pin(async move {
            let host = req
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str()))
                .unwrap_or("")
                .to_string();
            if self.serving.serves_host(&host) {
                return match self.serving.handle(req, peer).await {
                    Some(response) => response,
                    None => (http::StatusCode::NOT_FOUND, "no route for this host\n").into_response(),
                };
            }
            self.webhook(req).await
        })
    }
}

impl GatewayRoutes {
    /// Hands a webhook delivery to its GitHubSource's receiver.
    async fn webhook(&self, req: Request) -> Response {
        let path = req.uri().path().to_string();
        let rest = path.strip_prefix(PATH_PREFIX).unwrap_or_default();
        let receiver = match rest.split_once('/') {
            Some((namespace, name)) if !name.contains('/') => self.sources.github_receivers().get(namespace, name),
            _ => None,
        };
        let Some(receiver) = receiver else {
            return (http::StatusCode::NOT_FOUND, format!("no GitHubSource is served at {path}\n")).into_response();
        };
        let (parts, body) = req.into_parts();
        let body = match axum::body::to_bytes(body, MAX_WEBHOOK_BYTES).await {
            Ok(b) => b,
            Err(e) => return (http::StatusCode::PAYLOAD_TOO_LARGE, format!("webhook body: {e}\n")).into_response(),
        };
        receiver.handle(&parts.method, &parts.headers, &body).await.into_response()
    }
}
