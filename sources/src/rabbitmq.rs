//! RabbitmqSource (`sources.knative.dev/v1alpha1`, RMQS-01..03): the messages of a RabbitMQ
//! queue as CloudEvents, through `lapin`.
//!
//! - **Config**: the AMQP URI from the Secret of `rabbitmqClusterReference` (its
//!   `connectionSecret`, or the `{name}-default-user` Secret the RabbitMQ cluster operator
//!   writes), `vhost`, `queueName`, `exchangeName`, `predeclared`, `parallelism`.
//! - **Conversion**: [`to_event`] — a message that already is a CloudEvent (structured
//!   content type, or attributes in `cloudEvents_`/`cloudEvents:`/`ce-` application
//!   properties) passes through; any other becomes `dev.knative.rabbitmq.event`.
//! - **Loop**: prefetch = `parallelism`, as many deliveries in flight; reconnects with backoff.
//! - **Acknowledgement**: `ack` once the sink accepted the event; `nack` without requeue after
//!   the retries failed, or when the message is a broken CloudEvent.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use cloudevents::{AttributesReader, Event, EventBuilder, EventBuilderV10};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use sluice_crds::sources::RabbitmqSource;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::convert::{from_attributes, from_structured, is_structured, set_data, ConversionError};
use crate::{secret_text, Adapter, AdapterContext, Backoff, ConfigError, Health, SecretLookup};

/// The AMQP port when a Secret names none.
const DEFAULT_PORT: &str = "5672";

/// What a RabbitmqSource's adapter runs on.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// `amqp://user:password@host:port/vhost`.
    pub uri: String,
    /// The queue consumed.
    pub queue: String,
    /// The exchange the queue is bound to, unless `predeclared`.
    pub exchange: Option<String>,
    /// The queue (and its binding) exist already: declare nothing.
    pub predeclared: bool,
    /// Prefetch and deliveries in flight.
    pub parallelism: u16,
    /// The `source` of plain messages' events.
    pub source: String,
}

impl std::fmt::Debug for Config {
    // The URI holds the password: leave it out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("uri", &redacted(&self.uri))
            .field("queue", &self.queue)
            .field("exchange", &self.exchange)
            .field("predeclared", &self.predeclared)
            .field("parallelism", &self.parallelism)
            .finish()
    }
}

/// The URI without its password, for logs.
fn redacted(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => uri.to_string(),
    }
}

impl Config {
    /// The config of `source`, reading its connection Secret from `secrets`.
    pub fn from_source(source: &RabbitmqSource, secrets: &dyn SecretLookup) -> Result<Self, ConfigError> {
        let namespace = source.metadata.namespace.as_deref().unwrap_or("default");
        let name = source.metadata.name.as_deref().unwrap_or_default();
        let resources = source.spec.rabbitmq_resources_config.clone().unwrap_or_default();
        let cluster = source.spec.rabbitmq_cluster_reference.clone().unwrap_or_default();
        let vhost = resources.vhost.clone().filter(|v| !v.is_empty()).unwrap_or_else(|| "/".into());
        let uri = match (&cluster.connection_secret, cluster.name.as_deref().filter(|n| !n.is_empty())) {
            (Some(secret), _) => {
                let field = "spec.rabbitmqClusterReference.connectionSecret";
                let get = |key: &str| secret_text(secrets, field, namespace, &secret.name, key);
                let optional = |key: &str| get(key).ok().filter(|v| !v.is_empty());
                let base = get("uri")?;
                amqp_uri(&base, optional("username"), optional("password"), optional("port"), &vhost).map_err(|m| {
                    ConfigError::new(
                        field,
                        "InvalidURI",
                        format!("key \"uri\" of secret {namespace}/{}: {m}", secret.name),
                    )
                })?
            }
            (None, Some(cluster_name)) => {
                let field = "spec.rabbitmqClusterReference.name";
                let ns = cluster.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(namespace);
                let secret = format!("{cluster_name}-default-user");
                let get = |key: &str| secret_text(secrets, field, ns, &secret, key);
                let host = get("host")?;
                let port = get("port").ok().filter(|p| !p.is_empty());
                amqp_uri(
                    &format!("amqp://{host}"),
                    Some(get("username")?),
                    Some(get("password")?),
                    port,
                    &vhost,
                )
                .map_err(|m| ConfigError::new(field, "InvalidURI", format!("secret {ns}/{secret}: {m}")))?
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "spec.rabbitmqClusterReference",
                    "InvalidConfig",
                    "neither name nor connectionSecret is set",
                ))
            }
        };
        Ok(Self {
            uri,
            queue: resources.queue_name.clone(),
            exchange: resources.exchange_name.clone().filter(|e| !e.is_empty()),
            predeclared: resources.predeclared.unwrap_or(false),
            parallelism: resources.parallelism.unwrap_or(1).clamp(1, 1000) as u16,
            source: format!("/apis/v1/namespaces/{namespace}/rabbitmqsources/{name}#{}", resources.queue_name),
        })
    }
}

/// The AMQP URI from a Secret's `uri` (an `amqp(s)://` URI, or the management API's
/// `http(s)://host:15672`, whose host is used with `port`), its credentials and the vhost.
fn amqp_uri(base: &str, username: Option<String>, password: Option<String>, port: Option<String>, vhost: &str) -> Result<String, String> {
    let with_scheme = if base.contains("://") {
        base.to_string()
    } else {
        format!("http://{base}")
    };
    let parsed = url::Url::parse(&with_scheme).map_err(|e| format!("{e}: {base:?}"))?;
    let host = parsed.host_str().ok_or_else(|| format!("no host in {base:?}"))?;
    let (scheme, port) = match parsed.scheme() {
        "amqp" | "amqps" => (parsed.scheme(), parsed.port().map(|p| p.to_string()).or(port)),
        _ => ("amqp", port),
    };
    let port = port.unwrap_or_else(|| DEFAULT_PORT.to_string());
    let user = username.unwrap_or_else(|| parsed.username().to_string());
    let password = password.or_else(|| parsed.password().map(str::to_string)).unwrap_or_default();
    let mut uri = url::Url::parse(&format!("{scheme}://{host}:{port}")).map_err(|e| e.to_string())?;
    uri.set_username(&user).map_err(|_| "bad username".to_string())?;
    uri.set_password(Some(&password)).map_err(|_| "bad password".to_string())?;
    // The vhost is the path, percent-encoded (`/` is `%2f`).
    let encoded: String = url::form_urlencoded::byte_serialize(vhost.as_bytes()).collect();
    Ok(format!(
        "{}{}",
        uri.as_str().trim_end_matches('/'),
        format_args!("/{}", encoded.replace('+', "%20"))
    ))
}

/// One AMQP message, as the conversion reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message {
    /// The `message-id` property.
    pub message_id: Option<String>,
    /// The `content-type` property.
    pub content_type: Option<String>,
    /// The `timestamp` property (seconds since the epoch).
    pub timestamp: Option<u64>,
    /// Application properties (headers), as text.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

/// The prefixes of CloudEvent attributes in application properties: the CloudEvents AMQP
/// binding's two (AMQP-01), and the `ce-` of eventing-rabbitmq's sources.
const ATTRIBUTE_PREFIXES: [&str; 3] = ["cloudEvents_", "cloudEvents:", "ce-"];

/// The CloudEvent of one message (RMQS-03); `source` is the source's `source` attribute for
/// plain messages, `new_id` the id of plain messages without a `message-id`.
pub fn to_event(message: &Message, source: &str, new_id: impl FnOnce() -> String) -> Result<Event, ConversionError> {
    if message.content_type.as_deref().is_some_and(is_structured) {
        return from_structured(&message.body, source);
    }
    let attributes: BTreeMap<String, String> = message
        .headers
        .iter()
        .filter_map(|(k, v)| {
            ATTRIBUTE_PREFIXES
                .iter()
                .find_map(|p| k.strip_prefix(p))
                .map(|name| (name.to_ascii_lowercase(), v.clone()))
        })
        .collect();
    if attributes.contains_key("specversion") {
        return from_attributes(&attributes, message.content_type.as_deref(), &message.body, source);
    }
    let id = message.message_id.clone().filter(|i| !i.is_empty()).unwrap_or_else(new_id);
    let mut builder = EventBuilderV10::new()
        .id(id.clone())
        .ty(sluice_crds::sources::rabbitmq::EVENT_TYPE)
        .source(source)
        .subject(id);
    if let Some(time) = message.timestamp.and_then(|t| DateTime::<Utc>::from_timestamp(t as i64, 0)) {
        builder = builder.time(time);
    }
    let mut event = builder.build().map_err(|e| ConversionError(e.to_string()))?;
    set_data(&mut event, message.content_type.as_deref(), &message.body);
    Ok(event)
}

/// An application property as text.
fn header_text(value: &AMQPValue) -> Option<String> {
    Some(match value {
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        AMQPValue::ShortString(s) => s.as_str().to_string(),
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ByteArray(b) => String::from_utf8_lossy(b.as_slice()).into_owned(),
        // An AMQP timestamp attribute (AMQP-01 allows it for `time`).
        AMQPValue::Timestamp(t) => DateTime::<Utc>::from_timestamp(*t as i64, 0)?.to_rfc3339(),
        _ => return None,
    })
}

/// The conversion's view of a lapin delivery.
fn message_of(delivery: &lapin::message::Delivery) -> Message {
    let p = &delivery.properties;
    let headers = p
        .headers()
        .as_ref()
        .map(|t| {
            t.inner()
                .iter()
                .filter_map(|(k, v)| header_text(v).map(|v| (k.as_str().to_string(), v)))
                .collect()
        })
        .unwrap_or_default();
    Message {
        message_id: p.message_id().as_ref().map(|s| s.as_str().to_string()),
        content_type: p.content_type().as_ref().map(|s| s.as_str().to_string()),
        timestamp: *p.timestamp(),
        headers,
        body: delivery.data.clone(),
    }
}

/// Consumes a RabbitmqSource's queue.
pub struct RabbitmqAdapter {
    config: Config,
}

impl RabbitmqAdapter {
    /// An adapter for `config`.
    pub fn new(config: Config) -> Self {
        Self { config }
    }
}

/// Why one connection ended.
enum Ended {
    Stopped,
    Failed(&'static str, String),
}

impl RabbitmqAdapter {
    /// Declares the queue and its binding unless they are predeclared.
    async fn declare(&self, connection: &Connection) -> Result<lapin::Channel, (&'static str, String)> {
        let queue = self.config.queue.as_str();
        let channel = connection.create_channel().await.map_err(|e| ("ChannelFailed", e.to_string()))?;
        if self.config.predeclared {
            return Ok(channel);
        }
        channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| ("QueueDeclareFailed", format!("queue {queue:?}: {e}")))?;
        let Some(exchange) = self.config.exchange.as_deref() else {
            return Ok(channel);
        };
        // Bind to the exchange as it exists; create it (headers, durable) when it does not.
        let passive = ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let channel = match channel
            .exchange_declare(exchange.into(), ExchangeKind::Headers, passive, FieldTable::default())
            .await
        {
            Ok(()) => channel,
            Err(_) => {
                // A failed passive declaration closes the channel.
                let channel = connection.create_channel().await.map_err(|e| ("ChannelFailed", e.to_string()))?;
                channel
                    .exchange_declare(
                        exchange.into(),
                        ExchangeKind::Headers,
                        ExchangeDeclareOptions {
                            durable: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| ("ExchangeDeclareFailed", format!("exchange {exchange:?}: {e}")))?;
                channel
            }
        };
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| ("QueueBindFailed", format!("queue {queue:?} to exchange {exchange:?}: {e}")))?;
        Ok(channel)
    }

    /// One connection's life: connect, declare, consume until stopped or broken.
    async fn consume(&self, ctx: &Arc<AdapterContext>, backoff: &mut Backoff) -> Ended {
        let connection = match Connection::connect(&self.config.uri, ConnectionProperties::default()).await {
            Ok(c) => c,
            Err(e) => return Ended::Failed("ConnectionFailed", format!("{}: {e}", redacted(&self.config.uri))),
        };
        let channel = match self.declare(&connection).await {
            Ok(c) => c,
            Err((reason, message)) => return Ended::Failed(reason, message),
        };
        if let Err(e) = channel.basic_qos(self.config.parallelism, BasicQosOptions::default()).await {
            return Ended::Failed("ChannelFailed", e.to_string());
        }
        let tag = format!("sluice-{}", ctx.emitter.label().replace([' ', '/'], "-"));
        let mut consumer = match channel
            .basic_consume(
                self.config.queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
        {
            Ok(c) => c,
            Err(e) => return Ended::Failed("ConsumeFailed", format!("queue {:?}: {e}", self.config.queue)),
        };
        ctx.report(Health::Running);
        backoff.reset();
        let slots = Arc::new(Semaphore::new(self.config.parallelism as usize));
        let mut in_flight = JoinSet::new();
        let ended = loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
                _ = ctx.stop.cancelled() => break Ended::Stopped,
            };
            let delivery = tokio::select! {
                d = consumer.next() => d,
                _ = ctx.stop.cancelled() => break Ended::Stopped,
            };
            let delivery = match delivery {
                Some(Ok(d)) => d,
                Some(Err(e)) => break Ended::Failed("ConnectionLost", e.to_string()),
                None => break Ended::Failed("ConnectionLost", "the broker cancelled the consumer".into()),
            };
            while in_flight.try_join_next().is_some() {}
            let (ctx, source) = (ctx.clone(), self.config.source.clone());
            let queue = self.config.queue.clone();
            in_flight.spawn(async move {
                handle(&ctx, &source, &queue, delivery).await;
                drop(permit);
            });
        };
        // Deliveries in flight finish (and are acknowledged) before the connection closes.
        while in_flight.join_next().await.is_some() {}
        let _ = connection.close(200, "sluice source stopping".into()).await;
        ended
    }
}

/// Converts, emits and acknowledges one delivery.
async fn handle(ctx: &AdapterContext, source: &str, queue: &str, delivery: lapin::message::Delivery) {
    let metrics = ctx.emitter.metrics();
    metrics.received.inc();
    let message = message_of(&delivery);
    let tag = delivery.delivery_tag;
    let accepted = match to_event(&message, source, || uuid::Uuid::new_v4().to_string()) {
        Ok(event) => {
            let id = event.id().to_string();
            match ctx.emitter.emit(event, None).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(source = ctx.emitter.label(), %queue, delivery_tag = tag, event_id = %id, error = %e,
                        "sink did not accept the message; rejecting it without requeue");
                    false
                }
            }
        }
        Err(e) => {
            metrics.rejected.inc();
            tracing::warn!(source = ctx.emitter.label(), %queue, delivery_tag = tag, message_id = ?message.message_id, error = %e,
                "message is a broken CloudEvent; rejecting it without requeue");
            false
        }
    };
    let result = if accepted {
        delivery.ack(BasicAckOptions::default()).await
    } else {
        delivery
            .nack(BasicNackOptions {
                requeue: false,
                multiple: false,
            })
            .await
    };
    match result {
        Ok(_) if accepted => {
            metrics.acknowledged.inc();
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(source = ctx.emitter.label(), %queue, delivery_tag = tag, error = %e,
            "acknowledgement failed; the broker will redeliver the message"),
    }
}

#[async_trait::async_trait]
impl Adapter for RabbitmqAdapter {
    async fn run(self: Box<Self>, ctx: AdapterContext) {
        let ctx = Arc::new(ctx);
        let mut backoff = Backoff::default();
        loop {
            match self.consume(&ctx, &mut backoff).await {
                Ended::Stopped => return,
                Ended::Failed(reason, message) => {
                    ctx.report(Health::failing(reason, message));
                    if !backoff.wait(&ctx.stop).await {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cloudevents::AttributesReader;

    use super::*;

    const SOURCE: &str = "/apis/v1/namespaces/default/rabbitmqsources/orders#orders";

    fn plain(id: Option<&str>, ct: Option<&str>, body: &str) -> Message {
        Message {
            message_id: id.map(str::to_string),
            content_type: ct.map(str::to_string),
            timestamp: Some(1_764_756_000),
            headers: BTreeMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn data(e: &Event) -> Vec<u8> {
        crate::convert::data_bytes(e).unwrap_or_default()
    }

    #[test]
    fn plain_messages_become_rabbitmq_events() {
        let e = to_event(&plain(Some("m-1"), Some("application/json"), "{\"a\":1}"), SOURCE, || "new".into()).unwrap();
        assert_eq!(e.ty(), "dev.knative.rabbitmq.event");
        assert_eq!(e.id(), "m-1");
        assert_eq!(e.subject(), Some("m-1"));
        assert_eq!(e.source().to_string(), SOURCE);
        assert_eq!(e.datacontenttype(), Some("application/json"));
        assert_eq!(e.time().map(|t| t.timestamp()), Some(1_764_756_000));
        assert_eq!(data(&e), b"{\"a\":1}");
        let e = to_event(&plain(None, None, "hi"), SOURCE, || "new-id".into()).unwrap();
        assert_eq!((e.id(), e.subject(), e.datacontenttype()), ("new-id", Some("new-id"), None));
        assert_eq!(data(&e), b"hi");
    }

    #[test]
    fn cloudevents_pass_through_in_every_binding() {
        for prefix in ["cloudEvents_", "cloudEvents:", "ce-"] {
            let mut m = plain(Some("amqp-id"), Some("text/plain"), "body");
            for (k, v) in [
                ("specversion", "1.0"),
                ("id", "e-1"),
                ("type", "com.example.order"),
                ("source", "/shop"),
                ("subject", "42"),
                ("time", "2026-12-03T10:00:00Z"),
                ("tenant", "acme"),
            ] {
                m.headers.insert(format!("{prefix}{k}"), v.into());
            }
            m.headers.insert("unrelated".into(), "x".into());
            let e = to_event(&m, SOURCE, || unreachable!()).unwrap();
            assert_eq!(
                (e.id(), e.ty(), e.source().to_string().as_str()),
                ("e-1", "com.example.order", "/shop"),
                "{prefix}"
            );
            assert_eq!(e.subject(), Some("42"));
            assert_eq!(e.datacontenttype(), Some("text/plain"));
            assert_eq!(e.extension("tenant").map(|v| v.to_string()), Some("acme".into()));
            assert_eq!(e.extension("unrelated"), None);
            assert_eq!(data(&e), b"body");
        }
        // Missing source is filled in with the source's.
        let mut m = plain(None, None, "");
        for (k, v) in [("ce-specversion", "1.0"), ("ce-id", "e-2"), ("ce-type", "t")] {
            m.headers.insert(k.into(), v.into());
        }
        assert_eq!(to_event(&m, SOURCE, || unreachable!()).unwrap().source().to_string(), SOURCE);
        // Structured mode.
        let structured = plain(
            None,
            Some("application/cloudevents+json"),
            r#"{"specversion":"1.0","id":"s-1","type":"t.s","source":"/s","data":{"x":1}}"#,
        );
        let e = to_event(&structured, SOURCE, || unreachable!()).unwrap();
        assert_eq!((e.id(), e.ty()), ("s-1", "t.s"));
    }

    #[test]
    fn broken_cloudevents_are_rejected_with_the_reason() {
        let cases: [(&[(&str, &str)], &str); 4] = [
            (&[("ce-specversion", "1.0"), ("ce-id", "x")], "CloudEvent attribute type is missing"),
            (
                &[("ce-specversion", "0.1"), ("ce-id", "x"), ("ce-type", "t")],
                "unsupported CloudEvents specversion \"0.1\"",
            ),
            (
                &[
                    ("ce-specversion", "1.0"),
                    ("ce-id", "x"),
                    ("ce-type", "t"),
                    ("ce-time", "yesterday"),
                ],
                "CloudEvent attribute time \"yesterday\"",
            ),
            (
                &[("ce-specversion", "1.0"), ("ce-id", "x"), ("ce-type", "t"), ("ce-Bad_Name", "v")],
                "is not [a-z0-9]+",
            ),
        ];
        for (headers, expected) in cases {
            let mut m = plain(None, None, "");
            m.headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let err = to_event(&m, SOURCE, || "n".into()).unwrap_err();
            assert!(err.0.contains(expected), "{err} should contain {expected}");
        }
        let structured = plain(None, Some("application/cloudevents+json"), "{not json");
        assert!(to_event(&structured, SOURCE, || "n".into())
            .unwrap_err()
            .0
            .starts_with("structured CloudEvent does not parse"));
    }

    #[test]
    fn uris_come_from_the_secret() {
        let cases = [
            (
                "http://rabbit.example:15672",
                Some("u"),
                Some("p"),
                None,
                "/",
                "amqp://u:p@rabbit.example:5672/%2F",
            ),
            (
                "rabbit:15672",
                Some("u"),
                Some("p"),
                Some("5673"),
                "orders",
                "amqp://u:p@rabbit:5673/orders",
            ),
            (
                "amqp://guest:guest@127.0.0.1:5672",
                None,
                None,
                None,
                "/",
                "amqp://guest:guest@127.0.0.1:5672/%2F",
            ),
            (
                "amqps://x@mq:5671",
                Some("u"),
                Some("s3cr/t"),
                None,
                "v h",
                "amqps://u:s3cr%2Ft@mq:5671/v%20h",
            ),
        ];
        for (base, user, password, port, vhost, expected) in cases {
            let got = amqp_uri(base, user.map(Into::into), password.map(Into::into), port.map(Into::into), vhost).unwrap();
            assert_eq!(got, expected, "{base}");
        }
        assert!(redacted("amqp://u:secret@h:5672/%2F").contains("***"));
    }
}
