//! The dispatcher: one implementation of delivery, used by triggers, subscriptions and sources.
//!
//! It POSTs an event to a subscriber (with `Prefer: reply`, `Kn-Namespace` and `traceparent`),
//! applies the per-attempt timeout, retries retryable failures with the policy's backoff
//! (honouring `Retry-After` when allowed), hands replies to a reply sink, and sends exhausted
//! events to the dead-letter sink with the `knativeerror*` extensions (DLV-01..06).

use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use cloudevents::{AttributesReader, Event};
use http::header::{HeaderMap, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::Full;
use std::sync::Arc;

use crate::metrics::DeliveryMetrics;
use crate::policy::{is_retryable, parse_retry_after, Format, RetryPolicy};
use crate::pool::ConnectionPool;
use crate::sink::{EventSink, SinkError};
use crate::trace::TraceContext;
use crate::{binding, headers};

/// Largest response body read from a subscriber (replies larger than this fail the delivery).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// How much of an error response goes into `knativeerrordata`.
const ERROR_DATA_LIMIT: usize = 1024;

/// A resolved HTTP destination, with the parts every request to it needs worked out once.
#[derive(Clone, Debug)]
pub struct Target {
    /// The URL as text (for `knativeerrordest` and logs).
    pub url: String,
    /// `host:port` to connect to.
    pub authority: String,
    /// `Host` header value.
    pub host: HeaderValue,
    /// Request target in origin form (path and query).
    pub origin: Uri,
}

impl PartialEq for Target {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
    }
}

impl Eq for Target {}

impl Target {
    /// Parses an absolute `http://` URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|e| format!("invalid url {url:?}: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(format!("unsupported scheme {other:?} in {url:?} (only http)")),
            None => return Err(format!("url {url:?} is not absolute")),
        }
        let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
            return Err(format!("url {url:?} has no host"));
        };
        let connect_to = format!("{host}:{}", uri.port_u16().unwrap_or(80));
        let host_header = HeaderValue::from_str(authority.as_str()).map_err(|e| format!("invalid host in {url:?}: {e}"))?;
        let origin: Uri = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .map_err(|e| format!("invalid path in {url:?}: {e}"))?;
        Ok(Self {
            url: url.to_string(),
            authority: connect_to,
            host: host_header,
            origin,
        })
    }
}

/// What to do with a reply event returned by the subscriber.
pub enum ReplyMode<'a> {
    /// Not a subscriber (a dead-letter sink, a reply destination): no `Prefer: reply` is sent
    /// and the response body is ignored.
    NotAsked,
    /// A subscriber whose replies are discarded (a Subscription without `spec.reply`):
    /// `Prefer: reply` is still sent, as to every subscriber (DLV-01).
    Discard,
    /// Replies go to this sink; a failure to store the reply fails the attempt. `strict` makes a
    /// non-empty 2xx body that is not a CloudEvent a failure too (the broker filter's 502).
    To {
        /// Where replies go.
        sink: &'a dyn EventSink,
        /// Treat non-CloudEvent bodies as failures.
        strict: bool,
    },
}

/// One delivery to perform.
pub struct Delivery<'a> {
    /// Who delivers, for logs: the broker or channel and the trigger or subscription, e.g.
    /// `broker default/default, trigger default/orders`.
    pub label: &'a str,
    /// The event, exactly as the subscriber should receive it.
    pub event: &'a Event,
    /// Pass-through headers that travel with the event ([`crate::headers`], DLV-06).
    pub headers: &'a HeaderMap,
    /// Where it goes.
    pub subscriber: &'a Target,
    /// Retries, backoff, timeout.
    pub policy: &'a RetryPolicy,
    /// Where exhausted events go.
    pub dead_letter: Option<&'a Target>,
    /// What to do with replies.
    pub reply: ReplyMode<'a>,
    /// Value of the `Kn-Namespace` header.
    pub namespace: &'a str,
    /// Trace the event belongs to.
    pub trace: &'a TraceContext,
    /// Counters of the delivering object.
    pub metrics: &'a DeliveryMetrics,
    /// When the event arrived at ingress, for the end-to-end latency histogram.
    pub arrival: Option<Instant>,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The subscriber accepted the event (and any reply was stored).
    Delivered,
    /// Every attempt failed; the event went to the dead-letter sink.
    DeadLettered {
        /// Status of the last attempt (None for transport errors).
        status: Option<u16>,
    },
    /// Every attempt failed and there was no dead-letter sink, or it failed too.
    Failed {
        /// Status of the last attempt (None for transport errors).
        status: Option<u16>,
        /// What went wrong.
        error: String,
    },
}

/// The failure of one attempt.
#[derive(Debug)]
struct AttemptError {
    status: Option<u16>,
    retryable: bool,
    body: Bytes,
    retry_after: Option<Duration>,
    /// What went wrong, in words a user can act on.
    message: String,
    /// The URL that failed when it is not the delivery's subscriber (a reply destination).
    failed_url: Option<String>,
}

impl AttemptError {
    /// The failure as a sink's caller sees it: retryable or not, with the status (500 when
    /// no response came).
    fn into_sink_error(self) -> SinkError {
        let status = self.status.unwrap_or(500);
        if self.retryable {
            SinkError::Unavailable {
                status,
                message: self.message,
            }
        } else {
            SinkError::Rejected {
                status,
                message: self.message,
            }
        }
    }
}

/// A status for logs: the number, or `none` when no response came (a transport error).
struct StatusText(Option<u16>);

impl std::fmt::Display for StatusText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(s) => write!(f, "{s}"),
            None => f.write_str("none"),
        }
    }
}

/// Time limits of every delivery attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a TCP connection to a subscriber.
    pub connect: Duration,
    /// One attempt (connect, request and the whole response) when the delivery spec sets no
    /// `timeout`, so a subscriber that never answers cannot hold its in-flight slots forever.
    pub attempt: Duration,
}

impl Timeouts {
    /// Connect timeout: 5 s. Knative's dispatcher dials with Go's default of 30 s.
    pub const DEFAULT_CONNECT: Duration = Duration::from_secs(5);
    /// Attempt timeout without `delivery.timeout`: 30 s. Knative has none by default.
    pub const DEFAULT_ATTEMPT: Duration = Duration::from_secs(30);
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Self::DEFAULT_CONNECT,
            attempt: Self::DEFAULT_ATTEMPT,
        }
    }
}

/// Idle keep-alive connections kept per subscriber `host:port`: Knative's dispatchers keep 100
/// (`MaxIdleConnsPerHost`), as many as one subscriber's default in-flight limit uses. More
/// connections open while a fan-out to many subscribers on one host is in flight; those beyond
/// this number close when their delivery ends, instead of each holding its buffers (about
/// 20 KB) for the idle timeout.
pub const MAX_IDLE_PER_HOST: usize = 100;

/// Events for one target, sent in one batched-mode request by [`Dispatcher::send_batch`].
pub struct Batch<'a> {
    /// `kind namespace/name` of the sender, for logs.
    pub label: &'a str,
    /// The events, in order.
    pub events: binding::BatchBody,
    /// Where they go.
    pub target: &'a Target,
    /// The attempt timeout comes from here.
    pub policy: &'a RetryPolicy,
    /// `Kn-Namespace` header value.
    pub namespace: &'a str,
    /// The request's trace.
    pub trace: &'a TraceContext,
    /// Counts the events delivered and times the attempt.
    pub metrics: &'a DeliveryMetrics,
}

/// Sends events over HTTP with a shared connection pool.
#[derive(Clone)]
pub struct Dispatcher {
    pool: Arc<ConnectionPool>,
    default_attempt_timeout: Duration,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Self::new(Timeouts::default())
    }
}

impl Dispatcher {
    /// A dispatcher with keep-alive connections and these time limits.
    pub fn new(timeouts: Timeouts) -> Self {
        Self {
            pool: Arc::new(ConnectionPool::new(MAX_IDLE_PER_HOST, Duration::from_secs(30), timeouts.connect)),
            default_attempt_timeout: timeouts.attempt,
        }
    }

    /// Delivers one event with retries, replies and dead-lettering.
    pub async fn deliver(&self, d: Delivery<'_>) -> Outcome {
        let (attempts, last) = match self.with_retries(&d, true).await {
            Ok(()) => {
                d.metrics.delivered.inc();
                if let Some(arrival) = d.arrival {
                    d.metrics.latency_seconds.observe(arrival.elapsed().as_secs_f64());
                }
                return Outcome::Delivered;
            }
            Err(failed) => failed,
        };
        d.metrics.failed.inc();
        let Some(dls) = d.dead_letter else {
            tracing::warn!(
                delivery = d.label, subscriber = %d.subscriber.url, event_id = %d.event.id(), attempts,
                status = %StatusText(last.status), reason = %last.message,
                "delivery failed and no dead-letter sink is set; event dropped"
            );
            return Outcome::Failed {
                status: last.status,
                error: last.message,
            };
        };
        let dead = dead_letter_event(d.event, last.failed_url.as_deref().unwrap_or(&d.subscriber.url), &last);
        let dls_delivery = Delivery {
            label: d.label,
            event: &dead,
            headers: d.headers,
            subscriber: dls,
            policy: d.policy,
            dead_letter: None,
            reply: ReplyMode::NotAsked,
            namespace: d.namespace,
            trace: d.trace,
            metrics: d.metrics,
            arrival: None,
        };
        // The dead-letter sink gets the same retries (SUB-02); its attempts are not counted as
        // the subscriber's retries.
        match self.with_retries(&dls_delivery, false).await {
            Ok(()) => {
                d.metrics.dead_lettered.inc();
                tracing::info!(
                    delivery = d.label, subscriber = %d.subscriber.url, event_id = %d.event.id(), attempts,
                    status = %StatusText(last.status), reason = %last.message, dead_letter = %dls.url,
                    "delivery failed; event sent to the dead-letter sink"
                );
                Outcome::DeadLettered { status: last.status }
            }
            Err((dls_attempts, e)) => {
                tracing::error!(
                    delivery = d.label, subscriber = %d.subscriber.url, event_id = %d.event.id(), attempts,
                    status = %StatusText(last.status), reason = %last.message, dead_letter = %dls.url,
                    dead_letter_attempts = dls_attempts, dead_letter_reason = %e.message,
                    "delivery failed and the dead-letter sink failed too; event dropped"
                );
                Outcome::Failed {
                    status: last.status,
                    error: format!("{}; dead-letter sink: {}", last.message, e.message),
                }
            }
        }
    }

    /// The retry loop: attempts until success, a non-retryable failure, or `retries` retries,
    /// waiting the policy's backoff (or an allowed `Retry-After`) between attempts. Returns
    /// the number of attempts made and the last failure.
    async fn with_retries(&self, d: &Delivery<'_>, count_retries: bool) -> Result<(), (u32, AttemptError)> {
        let mut last: Option<AttemptError> = None;
        let mut attempts = 0;
        for attempt in 0..=d.policy.retries {
            if let Some(prev) = &last {
                let wait = d.policy.wait_before_retry(attempt, prev.status, prev.retry_after);
                if count_retries {
                    d.metrics.retried.inc();
                }
                tracing::debug!(delivery = d.label, target_url = %d.subscriber.url, event_id = %d.event.id(), attempt = attempt + 1, wait_ms = wait.as_millis() as u64, "retrying delivery");
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            attempts = attempt + 1;
            match self.attempt(d).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::debug!(
                        delivery = d.label, target_url = %d.subscriber.url, event_id = %d.event.id(), attempt = attempts,
                        status = %StatusText(e.status), reason = %e.message, retryable = e.retryable,
                        "delivery attempt failed"
                    );
                    let stop = !e.retryable;
                    last = Some(e);
                    if stop {
                        break;
                    }
                }
            }
        }
        Err((attempts, last.expect("at least one attempt ran")))
    }

    /// Sends one event once, without retries; for reply and channel sinks reached over HTTP.
    pub async fn send_once(
        &self,
        event: &Event,
        headers: &HeaderMap,
        target: &Target,
        namespace: &str,
        trace: &TraceContext,
    ) -> Result<(), SinkError> {
        let policy = RetryPolicy::default();
        let d = Delivery {
            label: "reply",
            event,
            headers,
            subscriber: target,
            policy: &policy,
            dead_letter: None,
            reply: ReplyMode::NotAsked,
            namespace,
            trace,
            metrics: DeliveryMetrics::detached(),
            arrival: None,
        };
        self.attempt(&d).await.map_err(AttemptError::into_sink_error)
    }

    async fn attempt(&self, d: &Delivery<'_>) -> Result<(), AttemptError> {
        let started = Instant::now();
        let request = build_request(d).map_err(|e| AttemptError {
            status: None,
            retryable: false,
            body: Bytes::new(),
            retry_after: None,
            message: e.to_string(),
            failed_url: None,
        })?;
        let (parts, body) = self.exchange(d.subscriber, request, d.policy, d.metrics, started).await?;
        self.handle_reply(d, parts.status, &parts.headers, body).await
    }

    /// Sends one request within the policy's attempt timeout; a non-2xx answer is an error.
    async fn exchange(
        &self,
        target: &Target,
        request: Request<Full<Bytes>>,
        policy: &RetryPolicy,
        metrics: &DeliveryMetrics,
        started: Instant,
    ) -> Result<(http::response::Parts, Bytes), AttemptError> {
        let exchange = async {
            self.pool
                .exchange(&target.authority, request, MAX_RESPONSE_BYTES)
                .await
                .map_err(|e| transport_error(e.to_string()))
        };
        let limit = policy.timeout.unwrap_or(self.default_attempt_timeout);
        let result = match tokio::time::timeout(limit, exchange).await {
            Ok(r) => r,
            Err(_) => Err(transport_error(format!(
                "no response within {} ms (attempt timeout)",
                limit.as_millis()
            ))),
        };
        metrics.attempt_seconds.observe(started.elapsed().as_secs_f64());
        let (parts, body) = result?;
        let status = parts.status;
        if !status.is_success() {
            let retry_after = parts
                .headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            return Err(AttemptError {
                status: Some(status.as_u16()),
                retryable: is_retryable(Some(status.as_u16())),
                body,
                retry_after,
                message: format!("{} responded {status}", target.url),
                failed_url: None,
            });
        }
        Ok((parts, body))
    }

    /// Sends `batch.events` in one batched-mode request (`application/cloudevents-batch+json`),
    /// once and without retries or a dead-letter sink: `Ok` when the target answered 2xx, and
    /// then every event counts as delivered. A sender whose batch was refused delivers the
    /// events again one at a time through [`Dispatcher::deliver`], which retries and
    /// dead-letters each; so a target that does not read batches loses nothing.
    pub async fn send_batch(&self, batch: Batch<'_>) -> Result<(), SinkError> {
        let started = Instant::now();
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(binding::BATCH_JSON));
        let events = batch.events.len();
        let request =
            post(batch.target, headers, batch.events.finish(), batch.namespace, batch.trace).map_err(|e| SinkError::Rejected {
                status: 400,
                message: e.to_string(),
            })?;
        match self.exchange(batch.target, request, batch.policy, batch.metrics, started).await {
            Ok(_) => {
                batch.metrics.delivered.inc_by(events as u64);
                Ok(())
            }
            Err(e) => {
                tracing::debug!(
                    delivery = batch.label, target_url = %batch.target.url, events,
                    status = %StatusText(e.status), reason = %e.message, "batch not accepted"
                );
                Err(e.into_sink_error())
            }
        }
    }

    /// Hands a 2xx response's reply event to the reply sink. A body that is not a CloudEvent
    /// fails a trigger's delivery (`strict`, the MT broker filter's 502) and is ignored for a
    /// subscription; a reply that claims to be a CloudEvent but is not a valid one is refused by
    /// the reply's destination (400), as the broker's ingress refuses it in Knative. Neither is
    /// retried: the subscriber did its part, calling it again would not change its answer.
    async fn handle_reply(&self, d: &Delivery<'_>, status: StatusCode, headers: &HeaderMap, body: Bytes) -> Result<(), AttemptError> {
        let ReplyMode::To { sink, strict } = d.reply else { return Ok(()) };
        let looks_like_event = headers.contains_key("ce-specversion") || binding::detect_mode(headers) != binding::Mode::Binary;
        if !looks_like_event {
            if body.is_empty() || !strict {
                return Ok(());
            }
            let content_type = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("no content type");
            let message = format!(
                "{} responded {status} with a non-CloudEvent body ({content_type}, {} bytes), which Knative treats as a failure",
                d.subscriber.url,
                body.len()
            );
            return Err(AttemptError {
                status: Some(502),
                retryable: false,
                body,
                retry_after: None,
                message,
                failed_url: None,
            });
        }
        let events = binding::decode(headers, body.clone()).map_err(|e| AttemptError {
            status: Some(400),
            retryable: false,
            body: Bytes::from(format!("invalid reply event: {e}")),
            retry_after: None,
            message: format!(
                "{} replied with an invalid CloudEvent, refused by the reply destination: {e}",
                d.subscriber.url
            ),
            failed_url: sink.url().map(str::to_string),
        })?;
        let reply_headers = headers::pass_through(headers);
        for reply in events {
            // A reply refused for good (the broker's 400 when its TTL is spent) fails the
            // delivery without retries, as a subscriber's 400 would.
            sink.send(reply, reply_headers.clone(), d.trace).await.map_err(|e| AttemptError {
                status: Some(e.status()),
                retryable: matches!(e, SinkError::Unavailable { .. }),
                body: Bytes::from(e.to_string()),
                retry_after: None,
                message: format!("storing the reply failed: {e}"),
                failed_url: sink.url().map(str::to_string),
            })?;
        }
        Ok(())
    }
}

fn transport_error(message: String) -> AttemptError {
    AttemptError {
        status: None,
        retryable: true,
        body: Bytes::new(),
        retry_after: None,
        message,
        failed_url: None,
    }
}

fn build_request(d: &Delivery<'_>) -> Result<Request<Full<Bytes>>, binding::BindingError> {
    let mut headers = HeaderMap::with_capacity(12 + d.headers.len());
    for (name, value) in d.headers {
        headers.append(name.clone(), value.clone());
    }
    let body = match d.policy.format {
        Format::Binary => binding::encode_binary(d.event, &mut headers)?,
        Format::Structured => binding::encode_structured(d.event, &mut headers)?,
    };
    if !matches!(d.reply, ReplyMode::NotAsked) {
        headers.insert("prefer", HeaderValue::from_static("reply"));
    }
    post(d.subscriber, headers, body, d.namespace, d.trace).map_err(|e| binding::BindingError::Encode(e.to_string()))
}

/// A POST of `body` to `target` with `headers` and what every delivery carries besides:
/// `Kn-Namespace`, the trace's child `traceparent`, and the target's `Host`.
fn post(
    target: &Target,
    mut headers: HeaderMap,
    body: Bytes,
    namespace: &str,
    trace: &TraceContext,
) -> Result<Request<Full<Bytes>>, http::Error> {
    if let Ok(ns) = HeaderValue::from_str(namespace) {
        headers.insert("kn-namespace", ns);
    }
    trace.inject_child(&mut headers);
    headers.insert(http::header::HOST, target.host.clone());
    let mut request = Request::post(target.origin.clone()).body(Full::new(body))?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The event sent to a dead-letter sink: the original plus `knativeerrordest`,
/// `knativeerrorcode` and `knativeerrordata` (base64 of the first 1024 bytes of the last
/// response body, as Knative's core dispatcher does).
fn dead_letter_event(event: &Event, destination: &str, last: &AttemptError) -> Event {
    let mut dead = event.clone();
    dead.set_extension("knativeerrordest", destination.to_string());
    // An integer (DLV-05): a header in binary mode, a JSON number in structured mode.
    dead.set_extension("knativeerrorcode", i64::from(last.status.unwrap_or(500)));
    let data = if last.body.is_empty() {
        Bytes::from(last.message.clone())
    } else {
        last.body.clone()
    };
    let data = &data[..data.len().min(ERROR_DATA_LIMIT)];
    dead.set_extension("knativeerrordata", base64::engine::general_purpose::STANDARD.encode(data));
    dead
}

/// An [`EventSink`] that POSTs to a URL once per call (replies to a Subscription's `reply`).
pub struct HttpSink {
    /// The dispatcher used for requests.
    pub dispatcher: Dispatcher,
    /// Where events go.
    pub target: Target,
    /// `Kn-Namespace` header value.
    pub namespace: String,
}

#[async_trait]
impl EventSink for HttpSink {
    async fn send(&self, event: Event, headers: HeaderMap, trace: &TraceContext) -> Result<(), SinkError> {
        self.dispatcher
            .send_once(&event, &headers, &self.target, &self.namespace, trace)
            .await
    }

    fn url(&self) -> Option<&str> {
        Some(&self.target.url)
    }
}
