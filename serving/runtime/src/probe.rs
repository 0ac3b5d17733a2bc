//! The readiness probe of an instance (RT-03): `httpGet` is a GET on the instance's port
//! answered 2xx or 3xx; `tcpSocket`, and no probe at all, is a TCP connect to it. Probed the
//! way queue-proxy probes at startup: often (every few milliseconds), each try bounded by a
//! short timeout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::workload::Readiness;

/// The time limit of one probe, as queue-proxy's aggressive probing uses.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(100);

/// Whether the instance at `addr` passes `readiness` once.
pub async fn probe_once(addr: SocketAddr, readiness: &Readiness) -> bool {
    tokio::time::timeout(PROBE_TIMEOUT, try_probe(addr, readiness))
        .await
        .unwrap_or(false)
}

async fn try_probe(addr: SocketAddr, readiness: &Readiness) -> bool {
    if *readiness == Readiness::Started {
        return true;
    }
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let Readiness::Http { path, headers } = readiness else {
        return true;
    };
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: Knative-Kubelet-Probe\r\nK-Kubelet-Probe: queue\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    // "HTTP/1.1 200" is 12 bytes.
    let mut head = [0u8; 12];
    if stream.read_exact(&mut head).await.is_err() {
        return false;
    }
    let code = std::str::from_utf8(&head[9..12]).ok().and_then(|c| c.parse::<u16>().ok());
    head.starts_with(b"HTTP/1.") && code.is_some_and(|c| (200..400).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn server(answer: &'static str) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let status = if request.starts_with("GET /ready ") && request.contains("x-probe: yes") {
                    answer
                } else {
                    "404 Not Found"
                };
                let _ = s
                    .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn http_and_tcp_probes() {
        let http = |path: &str| Readiness::Http {
            path: path.into(),
            headers: vec![("x-probe".into(), "yes".into())],
        };
        let ok = server("200 OK").await;
        assert!(probe_once(ok, &http("/ready")).await);
        assert!(!probe_once(ok, &http("/other")).await);
        assert!(probe_once(ok, &Readiness::Tcp).await);
        let failing = server("503 Service Unavailable").await;
        assert!(!probe_once(failing, &http("/ready")).await);
        // Nothing listens on a port just released.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        assert!(!probe_once(closed, &Readiness::Tcp).await);
    }
}
