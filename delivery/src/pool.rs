//! Keep-alive HTTP/1.1 connections to subscribers, driven by the task that uses them.
//!
//! A general-purpose client (hyper-util's pooled client) runs every connection as its own task
//! and hands each request to it over a channel, and the response back over another: two task
//! wake-ups per request on top of the socket work. Deliveries are one request at a time per
//! connection, so here the delivering task checks a connection out, polls it itself while the
//! exchange runs, and checks it back in once the response body is read. A connection that was
//! idle in the pool and turns out to be closed when the request is written is replaced by a
//! new one and the request is sent again (it never reached the server).

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::response::Parts;
use http::Request;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why an exchange failed. Every variant is a transport failure (retryable per DUCK-07).
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The TCP connection could not be opened.
    #[error("connecting to {authority}: {source}")]
    Connect {
        /// `host:port` dialled.
        authority: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The HTTP exchange failed (connection reset, malformed response, ...).
    #[error("{0}")]
    Http(#[from] hyper::Error),
    /// The response body could not be read or exceeded the limit.
    #[error("reading response: {0}")]
    Body(String),
}

type Driver = Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// One open connection: the request handle and the connection state machine it feeds.
struct PooledConnection {
    sender: SendRequest<Full<Bytes>>,
    driver: Driver,
}

impl PooledConnection {
    /// Polls the idle connection once without registering interest: a connection the server
    /// closed (or that received unexpected bytes) resolves here and must not be reused.
    fn is_reusable(&mut self) -> bool {
        if self.sender.is_closed() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(&mut self.driver).poll(&mut cx).is_pending()
    }
}

struct IdleConnection {
    connection: PooledConnection,
    since: Instant,
}

/// Idle connections by `host:port`.
#[derive(Default)]
struct Idle {
    by_authority: HashMap<String, Vec<IdleConnection>>,
    last_sweep: Option<Instant>,
}

/// A pool of keep-alive HTTP/1.1 connections keyed by `host:port`.
pub struct ConnectionPool {
    idle: Mutex<Idle>,
    max_idle_per_authority: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

impl ConnectionPool {
    /// A pool keeping at most `max_idle_per_authority` idle connections per `host:port`, each
    /// for at most `idle_timeout`; opening a connection may take at most `connect_timeout`.
    pub fn new(max_idle_per_authority: usize, idle_timeout: Duration, connect_timeout: Duration) -> Self {
        Self {
            idle: Mutex::new(Idle::default()),
            max_idle_per_authority,
            idle_timeout,
            connect_timeout,
        }
    }

    /// Sends `request` (origin-form URI with a `Host` header) to `authority` (`host:port`) and
    /// reads the whole response body, up to `max_body` bytes.
    pub async fn exchange(
        &self,
        authority: &str,
        mut request: Request<Full<Bytes>>,
        max_body: usize,
    ) -> Result<(Parts, Bytes), ExchangeError> {
        loop {
            let (mut connection, reused) = match self.checkout(authority) {
                Some(c) => (c, true),
                None => (connect(authority, self.connect_timeout).await?, false),
            };
            let PooledConnection { sender, driver } = &mut connection;
            let exchange = async {
                let response = sender.try_send_request(request).await?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, max_body)
                    .collect()
                    .await
                    .map_err(|e| Attempt::Body(e.to_string()))?;
                Ok::<_, Attempt>((parts, body.to_bytes()))
            };
            match drive(driver, exchange).await {
                Ok((parts, body)) => {
                    if keeps_alive(&parts) {
                        self.checkin(authority, connection);
                    }
                    return Ok((parts, body));
                }
                // The pooled connection was closed before the request was written: the
                // server never saw it, so send it again on a new connection.
                Err(Attempt::Send(mut e)) if reused && e.message().is_some() => {
                    request = e.take_message().expect("checked above");
                    tracing::debug!(%authority, error = %e.error(), "pooled connection was closed; reconnecting");
                }
                Err(Attempt::Send(e)) => return Err(ExchangeError::Http((*e).into_error())),
                Err(Attempt::Body(m)) => return Err(ExchangeError::Body(m)),
            }
        }
    }

    fn checkout(&self, authority: &str) -> Option<PooledConnection> {
        let mut idle = self.idle.lock().expect("pool lock");
        let list = idle.by_authority.get_mut(authority)?;
        while let Some(mut c) = list.pop() {
            if c.since.elapsed() < self.idle_timeout && c.connection.is_reusable() {
                return Some(c.connection);
            }
        }
        None
    }

    fn checkin(&self, authority: &str, connection: PooledConnection) {
        let now = Instant::now();
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.last_sweep.is_none_or(|t| now.duration_since(t) >= self.idle_timeout) {
            let timeout = self.idle_timeout;
            idle.by_authority.retain(|_, list| {
                list.retain(|c| now.duration_since(c.since) < timeout);
                !list.is_empty()
            });
            idle.last_sweep = Some(now);
        }
        if !idle.by_authority.contains_key(authority) {
            idle.by_authority.insert(authority.to_string(), Vec::new());
        }
        let list = idle.by_authority.get_mut(authority).expect("inserted above");
        if list.len() < self.max_idle_per_authority {
            list.push(IdleConnection { connection, since: now });
        }
    }
}

/// How an exchange on one connection failed. The send error is boxed: it carries the unsent
/// request, and failures are rare, so the common path keeps a small future.
enum Attempt {
    Send(Box<hyper::client::conn::TrySendError<Request<Full<Bytes>>>>),
    Body(String),
}

impl From<hyper::client::conn::TrySendError<Request<Full<Bytes>>>> for Attempt {
    fn from(e: hyper::client::conn::TrySendError<Request<Full<Bytes>>>) -> Self {
        Attempt::Send(Box::new(e))
    }
}

/// Runs `exchange` while polling the connection that carries it, in the caller's task.
async fn drive<T>(driver: &mut Driver, exchange: impl Future<Output = T>) -> T {
    let mut exchange = pin!(exchange);
    let mut driver_done = false;
    poll_fn(|cx| {
        if let Poll::Ready(v) = exchange.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        // Once the connection ends (closed or failed) the exchange resolves with its error.
        if !driver_done && Pin::new(&mut *driver).poll(cx).is_ready() {
            driver_done = true;
        }
        exchange.as_mut().poll(cx)
    })
    .await
}

/// Names under `localhost` are loopback (RFC 6761, section 6.3), as curl and browsers treat
/// them: a Knative Service's URL here is `http://{name}.{namespace}.localhost:{port}`, which
/// the system resolver may not know.
fn localhost_as_loopback(authority: &str) -> std::borrow::Cow<'_, str> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        std::borrow::Cow::Owned(format!("127.0.0.1:{}", port.unwrap_or("80")))
    } else {
        std::borrow::Cow::Borrowed(authority)
    }
}

async fn connect(authority: &str, timeout: Duration) -> Result<PooledConnection, ExchangeError> {
    let connect_error = |source| ExchangeError::Connect {
        authority: authority.to_string(),
        source,
    };
    let address = localhost_as_loopback(authority);
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(address.as_ref())).await {
        Ok(connected) => connected.map_err(connect_error)?,
        Err(_) => {
            let message = format!("no connection within {} ms", timeout.as_millis());
            return Err(connect_error(std::io::Error::new(std::io::ErrorKind::TimedOut, message)));
        }
    };
    stream.set_nodelay(true).map_err(connect_error)?;
    let (sender, driver) = http1::handshake(TokioIo::new(stream)).await?;
    Ok(PooledConnection { sender, driver })
}

/// Whether the server keeps the connection open after this response (HTTP/1.1 unless it
/// says `Connection: close`; HTTP/1.0 only when it says `keep-alive`). A connection that the
/// server closes anyway is noticed when it is next checked out.
fn keeps_alive(parts: &Parts) -> bool {
    let says = |token: &str| {
        parts
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))))
    };
    match parts.version {
        http::Version::HTTP_11 => !says("close"),
        http::Version::HTTP_10 => says("keep-alive"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_names_are_loopback() {
        for (authority, want) in [
            ("hello.default.localhost:8080", "127.0.0.1:8080"),
            ("LOCALHOST:81", "127.0.0.1:81"),
            ("example.com:80", "example.com:80"),
            ("notlocalhost:80", "notlocalhost:80"),
            ("[::1]:80", "[::1]:80"),
        ] {
            assert_eq!(localhost_as_loopback(authority), want, "{authority}");
        }
    }

    fn response(version: http::Version, connection: Option<&str>) -> Parts {
        let mut b = http::Response::builder().version(version);
        if let Some(c) = connection {
            b = b.header(http::header::CONNECTION, c);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        assert!(keeps_alive(&response(http::Version::HTTP_11, None)));
        assert!(!keeps_alive(&response(http::Version::HTTP_11, Some("Close"))));
        assert!(!keeps_alive(&response(http::Version::HTTP_11, Some("upgrade, close"))));
        assert!(!keeps_alive(&response(http::Version::HTTP_10, None)));
        assert!(keeps_alive(&response(http::Version::HTTP_10, Some("keep-alive"))));
    }
}
