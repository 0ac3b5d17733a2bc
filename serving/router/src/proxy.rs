//! Forwarding one request to an instance over pooled keep-alive connections, with the headers
//! of RT-02 (`Host` kept, `Forwarded`, `X-Forwarded-For`, `X-Forwarded-Proto`) and the
//! revision's `timeoutSeconds`: 504 when no response has started by then. Once the first
//! byte is sent the response streams on.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{HeaderName, HeaderValue};
use http::{Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;

/// The client that reaches instances: HTTP/1.1, connections kept alive and reused.
pub type InstanceClient = Client<HttpConnector, Body>;

/// A client for instances.
pub fn client() -> InstanceClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// Headers that describe one connection and are not forwarded (RFC 9110, 7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Adds the forwarding headers of RT-02 for a request that came from `peer`.
pub fn add_forwarded(headers: &mut http::HeaderMap, peer: SocketAddr) {
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let for_ = match peer {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("\"[{}]\"", a.ip()),
    };
    let mut forwarded = format!("for={for_};proto=http");
    if !host.is_empty() {
        forwarded.push_str(&format!(";host={host}"));
    }
    let forwarded = match headers.get("forwarded").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {forwarded}"),
        None => forwarded,
    };
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    let set = |headers: &mut http::HeaderMap, name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    set(headers, "forwarded", forwarded);
    set(headers, "x-forwarded-for", xff);
    if !headers.contains_key("x-forwarded-proto") {
        set(headers, "x-forwarded-proto", "http".into());
    }
    if !host.is_empty() && !headers.contains_key("x-forwarded-host") {
        set(headers, "x-forwarded-host", host);
    }
}

/// Sends `req` to the instance at `addr`; 504 when no response has started within `timeout`,
/// 502 when the instance cannot be reached.
pub async fn forward(client: &InstanceClient, addr: SocketAddr, mut req: Request<Body>, peer: SocketAddr, timeout: Duration) -> Response {
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let uri: Uri = match format!("http://{addr}{path}").parse() {
        Ok(u) => u,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid request path: {e}\n")).into_response(),
    };
    *req.uri_mut() = uri;
    *req.version_mut() = http::Version::HTTP_11;
    add_forwarded(req.headers_mut(), peer);
    match tokio::time::timeout(timeout, client.request(req)).await {
        Ok(Ok(response)) => response.map(Body::new),
        Ok(Err(e)) => (StatusCode::BAD_GATEWAY, format!("the instance at {addr} failed: {e}\n")).into_response(),
        Err(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            format!("no response within the revision's timeout of {}s\n", timeout.as_secs_f64()),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarding_headers_name_the_client_and_host() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("hello.default.localhost:8080"));
        headers.insert("connection", HeaderValue::from_static("keep-alive"));
        headers.insert("x-user", HeaderValue::from_static("kept"));
        add_forwarded(&mut headers, "127.0.0.1:5555".parse().unwrap());
        assert_eq!(headers["forwarded"], "for=127.0.0.1;proto=http;host=hello.default.localhost:8080");
        assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "hello.default.localhost:8080");
        assert_eq!(headers["x-user"], "kept");
        assert!(!headers.contains_key("connection"));

        let mut again = headers.clone();
        add_forwarded(&mut again, "[::1]:1".parse().unwrap());
        assert_eq!(again["x-forwarded-for"], "127.0.0.1, ::1");
        assert!(again["forwarded"]
            .to_str()
            .unwrap()
            .ends_with(", for=\"[::1]\";proto=http;host=hello.default.localhost:8080"));
    }
}
