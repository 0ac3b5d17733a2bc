//! KafkaSource (`sources.knative.dev/v1`, KFS-01..03): the records of Kafka topics as
//! CloudEvents, through `rdkafka`.
//!
//! - **Config**: `bootstrapServers`, `topics`, `consumerGroup`, `consumers`, `initialOffset`,
//!   `ordering`, and `net.sasl`/`net.tls` read from Secrets into librdkafka settings.
//! - **Conversion**: [`to_event`] — records that already are CloudEvents (binary `ce_*` headers,
//!   or a structured `content-type`) pass through; any other becomes `dev.knative.kafka.event`
//!   with Knative's source, subject, id, time, `key`/`partitionkey` and `kafkaheader*`.
//! - **Loop**: `consumers` group members; `ordered` hands each partition's records to one task
//!   in turn, `unordered` delivers up to [`UNORDERED_IN_FLIGHT`] at once per member.
//! - **Initial offsets** (`InitialOffsetsCommitted`): before the first member subscribes, every
//!   partition of the topics that has no offset committed for the group gets one, at its end
//!   (`latest`) or start (`earliest`), as Knative does. So `latest` means "from when the source
//!   was made", and records produced while the group is still joining are not skipped.
//! - **Acknowledgement**: a record's offset is stored for commit only once the sink accepted it
//!   or it was dead-lettered, and never past a record still in flight ([`OffsetTracker`]); a
//!   record the sink refuses is retried with backoff and holds its partition's offset back.
//! - **Batches** (`sluice.dev/max-batch-size`, ordered only): a partition's task sends what is
//!   queued, up to that many records, in one `application/cloudevents-batch+json` request,
//!   tried once; if the sink refuses it, the records go again one at a time as above. A batch
//!   never waits for records to arrive, so it adds no latency.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use cloudevents::{AttributesReader, Event, EventBuilder, EventBuilderV10};
use futures_util::{FutureExt, StreamExt};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use sluice_crds::sources::kafka::{max_batch_size, KEY_TYPE_LABEL};
use sluice_crds::sources::KafkaSource;
use sluice_delivery::binding::BatchBody;
use sluice_delivery::TraceContext;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use crate::convert::{from_attributes, from_structured, is_structured, set_data, ConversionError};
use crate::emit::with_overrides;
use crate::{secret_text, Adapter, AdapterContext, Backoff, ConfigError, Health, SecretLookup};

/// Records delivered at once by one group member of an `unordered` source.
pub const UNORDERED_IN_FLIGHT: usize = 64;
/// Records queued for one partition of an `ordered` source before the member stops fetching.
const PARTITION_QUEUE: usize = 64;
/// librdkafka settings of every group member, unless the source's own settings say otherwise.
/// - `fetch.queue.backoff.ms`: once the prefetched records pass librdkafka's queue limits
///   (64 MB), the next fetch waits this long (librdkafka's default is 1 s). The adapter is
///   slower than the broker, so it reaches the limits and would go idle for most of a second
///   each time it drained the queue; measured with `sluice bench sources`.
const MEMBER_DEFAULTS: &[(&str, &str)] = &[("fetch.queue.backoff.ms", "20")];
/// Records an ordered source's member takes from librdkafka's queue, while they are ready at
/// once, before handing them to the partitions' tasks.
const DRAIN_LIMIT: usize = 256;
/// A partition's hand-off channel holds its queued records divided by this many chunks.
const CHUNKS_PER_QUEUE_DIVISOR: usize = 64;
/// Records fetched between two reapings of a member's finished delivery tasks.
const REAP_EVERY: usize = 256;
/// Batches queued for one partition of an `ordered` source that batches.
const BATCHES_QUEUED: usize = 4;

/// How record keys are read (the `kafkasources.sources.knative.dev/key-type` label).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyType {
    /// UTF-8 text.
    #[default]
    String,
    /// A big-endian integer of 4 or 8 bytes.
    Int,
    /// A big-endian IEEE float of 4 or 8 bytes.
    Float,
    /// Bytes, base64-encoded.
    ByteArray,
}

/// What a KafkaSource's adapter runs on.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// librdkafka settings: brokers, group, offsets, security.
    pub client: BTreeMap<String, String>,
    /// Topics consumed.
    pub topics: Vec<String>,
    /// Group members run by the adapter.
    pub consumers: u32,
    /// Per-partition order (`ordered`) or parallel delivery (`unordered`).
    pub ordered: bool,
    /// How keys are read.
    pub key_type: KeyType,
    /// `/apis/v1/namespaces/<ns>/kafkasources/<name>`; events' source is this `#<topic>`.
    pub source: String,
    /// Records of a partition sent in one batched-mode request at most (ordered delivery);
    /// 1 sends one event per request, as Knative does.
    pub max_batch: usize,
}

impl std::fmt::Debug for Config {
    // Secrets stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let client: BTreeMap<&String, &str> = self
            .client
            .iter()
            .map(|(k, v)| {
                (
                    k,
                    if k.contains("password") || k.contains("key") {
                        "***"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("Config")
            .field("client", &client)
            .field("topics", &self.topics)
            .field("consumers", &self.consumers)
            .field("ordered", &self.ordered)
            .field("key_type", &self.key_type)
            .field("max_batch", &self.max_batch)
            .finish()
    }
}

/// The text of a `secretKeyRef` of `net`, if set.
fn net_secret(
    secrets: &dyn SecretLookup,
    namespace: &str,
    field: &str,
    value: &Option<sluice_crds::duck::SecretValueFromSource>,
) -> Result<Option<String>, ConfigError> {
    let Some(selector) = value.as_ref().and_then(|v| v.secret_key_ref.as_ref()) else {
        return Ok(None);
    };
    secret_text(secrets, &format!("{field}.secretKeyRef"), namespace, &selector.name, &selector.key).map(Some)
}

impl Config {
    /// The config of `source`, reading `net`'s Secrets from `secrets`.
    pub fn from_source(source: &KafkaSource, secrets: &dyn SecretLookup) -> Result<Self, ConfigError> {
        let spec = &source.spec;
        let namespace = source.metadata.namespace.as_deref().unwrap_or("default");
        let name = source.metadata.name.as_deref().unwrap_or_default();
        let group = if spec.consumer_group.is_empty() {
            format!("knative-kafka-source-{}", source.metadata.uid.as_deref().unwrap_or(name))
        } else {
            spec.consumer_group.clone()
        };
        let mut client = BTreeMap::from([
            ("bootstrap.servers".to_string(), spec.bootstrap_servers.join(",")),
            ("group.id".to_string(), group),
            (
                "auto.offset.reset".to_string(),
                if spec.initial_offset == "earliest" { "earliest" } else { "latest" }.to_string(),
            ),
            // Offsets are stored by the adapter once a record is delivered, and committed in
            // the background from what is stored.
            ("enable.auto.commit".to_string(), "true".to_string()),
            ("enable.auto.offset.store".to_string(), "false".to_string()),
            ("auto.commit.interval.ms".to_string(), "1000".to_string()),
            // A group member that stops is noticed within seconds, and a joining one waits
            // less (brokers wait up to half the session timeout for members to join).
            ("session.timeout.ms".to_string(), "6000".to_string()),
            ("heartbeat.interval.ms".to_string(), "1500".to_string()),
            // Consumer lag per partition, from the fetch side's high watermark.
            ("statistics.interval.ms".to_string(), "1000".to_string()),
            ("client.id".to_string(), format!("sluice-kafkasource-{namespace}-{name}")),
        ]);
        let net = spec.net.clone().unwrap_or_default();
        let sasl = net.sasl.clone().unwrap_or_default();
        let tls = net.tls.clone().unwrap_or_default();
        let sasl_on = sasl.enable == Some(true);
        let tls_on = tls.enable == Some(true);
        let protocol = match (sasl_on, tls_on) {
            (false, false) => "plaintext",
            (false, true) => "ssl",
            (true, false) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        client.insert("security.protocol".into(), protocol.into());
        if sasl_on {
            let p = "spec.net.sasl";
            let mechanism = net_secret(secrets, namespace, &format!("{p}.type"), &sasl.type_)?.unwrap_or_else(|| "PLAIN".into());
            client.insert("sasl.mechanism".into(), mechanism);
            if let Some(user) = net_secret(secrets, namespace, &format!("{p}.user"), &sasl.user)? {
                client.insert("sasl.username".into(), user);
            }
            if let Some(password) = net_secret(secrets, namespace, &format!("{p}.password"), &sasl.password)? {
                client.insert("sasl.password".into(), password);
            }
        }
        if tls_on {
            let p = "spec.net.tls";
            for (value, field, setting) in [
                (&tls.ca_cert, "caCert", "ssl.ca.pem"),
                (&tls.cert, "cert", "ssl.certificate.pem"),
                (&tls.key, "key", "ssl.key.pem"),
            ] {
                if let Some(pem) = net_secret(secrets, namespace, &format!("{p}.{field}"), value)? {
                    client.insert(setting.into(), pem);
                }
            }
        }
        let key_type = match source
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(KEY_TYPE_LABEL))
            .map(String::as_str)
        {
            Some("int") => KeyType::Int,
            Some("float") => KeyType::Float,
            Some("byte-array") => KeyType::ByteArray,
            _ => KeyType::String,
        };
        Ok(Self {
            client,
            topics: spec.topics.clone(),
            consumers: spec.consumers.unwrap_or(1).max(1) as u32,
            ordered: spec.ordering.as_deref() != Some("unordered"),
            key_type,
            source: format!("/apis/v1/namespaces/{namespace}/kafkasources/{name}"),
            max_batch: max_batch_size(&source.metadata).map_err(|e| ConfigError::new(e.path, "InvalidBatchSize", e.message))?,
        })
    }
}

/// One Kafka record, as the conversion reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    /// Its topic (shared by the records of a topic).
    pub topic: Arc<str>,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its timestamp in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Its value.
    pub value: Option<Vec<u8>>,
}

impl Record {
    /// The record of `message`, whose topic is `topic`.
    fn of<M: Message>(message: &M, topic: Arc<str>) -> Self {
        Record {
            topic,
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            headers: message
                .headers()
                .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect())
                .unwrap_or_default(),
            value: message.payload().map(<[u8]>::to_vec),
        }
    }

    /// The first header `name` as text.
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// `topic/partition/offset`, for logs.
    pub fn position(&self) -> String {
        format!("{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

/// A key as text, read as `key_type` says.
fn key_text(key: &[u8], key_type: KeyType) -> String {
    match (key_type, key.len()) {
        (KeyType::Int, 4) => i32::from_be_bytes(key.try_into().expect("4 bytes")).to_string(),
        (KeyType::Int, 8) => i64::from_be_bytes(key.try_into().expect("8 bytes")).to_string(),
        (KeyType::Float, 4) => f32::from_be_bytes(key.try_into().expect("4 bytes")).to_string(),
        (KeyType::Float, 8) => f64::from_be_bytes(key.try_into().expect("8 bytes")).to_string(),
        (KeyType::ByteArray, _) => base64::engine::general_purpose::STANDARD.encode(key),
        _ => String::from_utf8_lossy(key).into_owned(),
    }
}

/// A Kafka header name as an extension name: `kafkaheader` + the name in lower case without
/// what is not `[a-z0-9]`.
fn header_extension(name: &str) -> String {
    let cleaned: String = name
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .collect();
    format!("kafkaheader{cleaned}")
}

/// The CloudEvent of one record (KFS-02); `source` is the source's `/apis/…/kafkasources/<name>`.
pub fn to_event(record: &Record, source: &str, key_type: KeyType) -> Result<Event, ConversionError> {
    let value = record.value.as_deref().unwrap_or_default();
    let content_type = record.header("content-type");
    let fallback_source = format!("{source}#{}", record.topic);
    if content_type.as_deref().is_some_and(is_structured) {
        return from_structured(value, &fallback_source);
    }
    let attributes: BTreeMap<String, String> = record
        .headers
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("ce_")?;
            Some((
                name.to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into_owned(),
            ))
        })
        .collect();
    if attributes.contains_key("specversion") {
        return from_attributes(&attributes, content_type.as_deref(), value, &fallback_source);
    }
    let mut builder = EventBuilderV10::new()
        .id(PlainId(record).to_string())
        .ty(sluice_crds::sources::kafka::EVENT_TYPE)
        .source(fallback_source)
        .subject(PlainSubject(record).to_string());
    if let Some(time) = record.timestamp_ms.and_then(DateTime::<Utc>::from_timestamp_millis) {
        builder = builder.time(time);
    }
    for (name, value) in plain_extensions(record, key_type) {
        builder = builder.extension(&name, value.into_owned());
    }
    let mut event = builder.build().map_err(|e| ConversionError(e.to_string()))?;
    set_data(&mut event, content_type.as_deref(), value);
    Ok(event)
}

/// The extensions of a plain record's event, in the order they are set: `key` and
/// `partitionkey` when it has a key, then a `kafkaheader*` for each header but `content-type`.
fn plain_extensions(record: &Record, key_type: KeyType) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let mut extensions = Vec::with_capacity(2 + record.headers.len());
    if let Some(key) = &record.key {
        let key = key_text(key, key_type);
        extensions.push(("key".into(), key.clone().into()));
        extensions.push(("partitionkey".into(), key.into()));
    }
    for (name, v) in &record.headers {
        if !name.eq_ignore_ascii_case("content-type") {
            extensions.push((
                header_extension(name).into(),
                String::from_utf8_lossy(v.as_deref().unwrap_or_default()),
            ));
        }
    }
    extensions
}

/// The `id` of a plain record's event: `partition:<p>/offset:<o>`.
struct PlainId<'a>(&'a Record);

impl std::fmt::Display for PlainId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "partition:{}/offset:{}", self.0.partition, self.0.offset)
    }
}

/// The `subject` of a plain record's event: `partition:<p>#<o>`.
struct PlainSubject<'a>(&'a Record);

impl std::fmt::Display for PlainSubject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "partition:{}#{}", self.0.partition, self.0.offset)
    }
}

/// True when a record already is a CloudEvent: a structured `content-type`, or a
/// `ce_specversion` header. [`to_event`] passes those through.
fn is_cloudevent(record: &Record, content_type: Option<&str>) -> bool {
    content_type.is_some_and(is_structured)
        || record
            .headers
            .iter()
            .any(|(k, _)| k.strip_prefix("ce_").is_some_and(|n| n.eq_ignore_ascii_case("specversion")))
}

/// Appends the event that [`to_event`] makes of a plain record, with the `overrides`
/// extensions, in the JSON event format, as `sluice_delivery::binding` writes an event; this
/// skips building the event, which cost more than the rest of a batch's work. Writes nothing
/// and returns false for a record that already is a CloudEvent, which goes through
/// [`to_event`]. A test checks that both give the same event.
pub fn write_plain_event(
    record: &Record,
    source: &str,
    key_type: KeyType,
    overrides: &BTreeMap<String, String>,
    out: &mut Vec<u8>,
) -> bool {
    use sluice_delivery::binding::{write_json_data, write_json_string, write_json_string_of};
    use std::io::Write as _;
    let content_type = record.header("content-type");
    if is_cloudevent(record, content_type.as_deref()) {
        return false;
    }
    let value = record.value.as_deref().unwrap_or_default();
    // Writing into a Vec cannot fail.
    let _ = write!(out, r#"{{"specversion":"1.0","id":"{}","type":""#, PlainId(record));
    out.extend_from_slice(sluice_crds::sources::kafka::EVENT_TYPE.as_bytes());
    out.extend_from_slice(br#"","source":"#);
    write_json_string_of(out, &[source, "#", &record.topic]);
    if let (Some(ct), false) = (&content_type, value.is_empty()) {
        out.extend_from_slice(br#","datacontenttype":"#);
        write_json_string(out, ct);
    }
    let _ = write!(out, r#","subject":"{}""#, PlainSubject(record));
    if let Some(time) = record.timestamp_ms.and_then(DateTime::<Utc>::from_timestamp_millis) {
        // As chrono writes it for serde, without going through serde's formatter char by char.
        let _ = write!(out, r#","time":"{}""#, time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    }
    if !value.is_empty() {
        write_json_data(content_type.as_deref(), value, out);
    }
    // Extensions in the order to_event and with_overrides set them; a later one of the same
    // name replaces an earlier one.
    let mut extensions = plain_extensions(record, key_type);
    extensions.extend(overrides.iter().map(|(k, v)| (k.as_str().into(), v.as_str().into())));
    for (i, (name, value)) in extensions.iter().enumerate() {
        if extensions[i + 1..].iter().any(|(later, _)| later == name) {
            continue;
        }
        out.push(b',');
        write_json_string(out, name);
        out.push(b':');
        write_json_string(out, value);
    }
    out.push(b'}');
    true
}

/// Which offsets of one partition may be committed: the records still in flight hold back the
/// commit position, so a record is never committed before every earlier one was delivered.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    in_flight: BTreeSet<i64>,
    highest_done: Option<i64>,
}

impl OffsetTracker {
    /// A record at `offset` starts.
    pub fn start(&mut self, offset: i64) {
        self.in_flight.insert(offset);
    }

    /// The record at `offset` was delivered (or dead-lettered, or skipped as malformed); returns
    /// the offset that may be committed now (the next record to read), if any.
    pub fn done(&mut self, offset: i64) -> Option<i64> {
        self.in_flight.remove(&offset);
        self.highest_done = Some(self.highest_done.map_or(offset, |h| h.max(offset)));
        match self.in_flight.first() {
            // Everything before the oldest record in flight is done.
            Some(&oldest) if oldest > 0 => Some(oldest),
            Some(_) => None,
            None => self.highest_done.map(|h| h + 1),
        }
    }
}

/// The rdkafka context of a group member: connection faults and consumer lag reach the
/// adapter's health and metrics.
struct MemberContext {
    ctx: Arc<AdapterContext>,
}

impl ClientContext for MemberContext {
    fn stats(&self, statistics: Statistics) {
        let lag: i64 = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0)
            .map(|p| p.consumer_lag.max(0))
            .sum();
        self.ctx.emitter.metrics().lag.set(lag);
        if statistics.brokers.values().any(|b| b.state == "UP") {
            self.ctx.report(Health::Running);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let fatal = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::Authentication | RDKafkaErrorCode::Resolve)
        );
        if fatal {
            let reason_code = if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Authentication) {
                "AuthenticationFailed"
            } else {
                "ConnectionFailed"
            };
            self.ctx.report(Health::failing(reason_code, format!("{error}: {reason}")));
        } else {
            tracing::debug!(source = self.ctx.emitter.label(), %error, reason, "kafka client error");
        }
    }
}

impl ConsumerContext for MemberContext {}

type Member = StreamConsumer<MemberContext>;

/// Consumes a KafkaSource's topics.
pub struct KafkaAdapter {
    config: Config,
}

impl KafkaAdapter {
    /// An adapter for `config`.
    pub fn new(config: Config) -> Self {
        Self { config }
    }
}

/// Delivers one record until the sink accepts it (or it is dead-lettered, or it is no
/// CloudEvent); false when stopped first.
async fn deliver(ctx: &AdapterContext, config: &Config, record: &Record) -> bool {
    let metrics = ctx.emitter.metrics();
    let event = match to_event(record, &config.source, config.key_type) {
        Ok(e) => e,
        Err(e) => {
            metrics.rejected.inc();
            tracing::warn!(source = ctx.emitter.label(), record = %record.position(), error = %e,
                "record is a malformed CloudEvent; skipping it");
            return true;
        }
    };
    let trace = record.header("traceparent").and_then(|t| TraceContext::parse(&t));
    let mut backoff = Backoff::default();
    loop {
        match ctx.emitter.emit(event.clone(), trace.clone()).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(source = ctx.emitter.label(), record = %record.position(), event_id = %event.id(), error = %e,
                    "sink did not accept the record; its offset is held back and it is sent again");
                if !backoff.wait(&ctx.stop).await {
                    return false;
                }
            }
        }
    }
}

/// Delivers records of one partition in order, storing each one's offset once it and every
/// record before it were delivered. Several records go in one batched-mode request when the
/// source batches; when the sink refuses the batch they go again one at a time, with the
/// usual retries and dead-letter sink. False when stopped first.
async fn deliver_in_order(ctx: &AdapterContext, config: &Config, member: &Member, records: &[Record], refused_before: &mut bool) -> bool {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return true;
    };
    if records.len() > 1 {
        match deliver_batch(ctx, config, records).await {
            Ok(()) => {
                ctx.emitter.metrics().acknowledged.inc_by(records.len() as u64);
                store(member, ctx.emitter.label(), &last.topic, last.partition, last.offset + 1);
                return true;
            }
            Err(reason) => {
                // Said once per partition: a sink that never reads batches would say it for
                // every batch.
                let first_time = !std::mem::replace(refused_before, true);
                if first_time {
                    tracing::warn!(source = ctx.emitter.label(), from = %first.position(), records = records.len(), %reason,
                        "the sink did not accept a batch; its records are sent one at a time");
                } else {
                    tracing::debug!(source = ctx.emitter.label(), from = %first.position(), records = records.len(), %reason,
                        "the sink did not accept a batch; its records are sent one at a time");
                }
            }
        }
    }
    for record in records {
        if !deliver(ctx, config, record).await {
            return false;
        }
        ctx.emitter.metrics().acknowledged.inc();
        store(member, ctx.emitter.label(), &record.topic, record.partition, record.offset + 1);
    }
    true
}

/// Sends `records` to the sink in one batched-mode request, once. A record that is no valid
/// CloudEvent fails the batch, so that the one-at-a-time path logs and skips it.
async fn deliver_batch(ctx: &AdapterContext, config: &Config, records: &[Record]) -> Result<(), String> {
    // Each event is its data (base64 takes a third more) and about 300 bytes of attributes.
    let bytes: usize = records.iter().map(|r| r.value.as_ref().map_or(0, |v| v.len() * 4 / 3) + 320).sum();
    let mut batch = BatchBody::with_capacity(bytes);
    let overrides = ctx.emitter.overrides();
    for record in records {
        if batch.push_written(|out| write_plain_event(record, &config.source, config.key_type, overrides, out)) {
            continue;
        }
        let event = to_event(record, &config.source, config.key_type)
            .map_err(|e| format!("{} is a malformed CloudEvent: {e}", record.position()))?;
        batch
            .push(&with_overrides(event, overrides))
            .map_err(|e| format!("{}: {e}", record.position()))?;
    }
    let trace = records[0].header("traceparent").and_then(|t| TraceContext::parse(&t));
    ctx.emitter.emit_batch(batch, trace).await.map_err(|e| e.to_string())
}

/// Stores `offset` (the next record to read) of a partition for the background commit.
fn store(member: &Member, label: &str, topic: &str, partition: i32, offset: i64) {
    // `store_offset` takes the offset of the last processed record.
    if let Err(e) = member.store_offset(topic, partition, offset - 1) {
        tracing::debug!(source = label, topic, partition, offset, error = %e, "offset not stored (partition revoked?)");
    }
}

/// A topic and a partition of it.
type TopicPartition = (Arc<str>, i32);

/// An ordered source's hand-off to one partition's delivery task: the records fetched since
/// the last hand-off go over in one chunk, not one by one.
struct PartitionQueue {
    topic: Arc<str>,
    partition: i32,
    sender: mpsc::Sender<Vec<Record>>,
    pending: Vec<Record>,
}

impl PartitionQueue {
    /// Starts the task that delivers one partition's records of an ordered source, in order.
    fn start(
        topic: Arc<str>,
        partition: i32,
        tasks: &mut JoinSet<()>,
        ctx: &Arc<AdapterContext>,
        config: &Arc<Config>,
        member: &Arc<Member>,
    ) -> Self {
        // Room for the batch in flight and the next ones, so that fetching goes on for the
        // other partitions while this one's sink answers.
        let records = PARTITION_QUEUE.max(BATCHES_QUEUED * config.max_batch);
        let (sender, mut rx) = mpsc::channel::<Vec<Record>>((records / CHUNKS_PER_QUEUE_DIVISOR).max(4));
        let (ctx, config, member) = (ctx.clone(), config.clone(), member.clone());
        tasks.spawn(async move {
            // What is queued when the last delivery ended goes next, up to a batch; a batch
            // never waits for records to come.
            let mut queued: std::collections::VecDeque<Record> = std::collections::VecDeque::new();
            let mut refused_before = false;
            loop {
                if queued.is_empty() {
                    match rx.recv().await {
                        Some(chunk) => queued.extend(chunk),
                        None => return,
                    }
                }
                while queued.len() < config.max_batch {
                    match rx.try_recv() {
                        Ok(chunk) => queued.extend(chunk),
                        Err(_) => break,
                    }
                }
                let batch: Vec<Record> = queued.drain(..queued.len().min(config.max_batch)).collect();
                if !deliver_in_order(&ctx, &config, &member, &batch, &mut refused_before).await {
                    return;
                }
            }
        });
        Self {
            topic,
            partition,
            sender,
            pending: Vec::new(),
        }
    }

    /// Hands the pending records to the partition's task; false when that task stopped (only
    /// when the adapter stops).
    async fn flush(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        // The next chunk is likely the size of this one.
        let next = Vec::with_capacity(self.pending.len());
        let chunk = std::mem::replace(&mut self.pending, next);
        self.sender.send(chunk).await.is_ok()
    }
}

/// One group member's life until stopped or broken.
async fn run_member(ctx: Arc<AdapterContext>, config: Arc<Config>, member: Arc<Member>) {
    let label = ctx.emitter.label().to_string();
    let mut tasks = JoinSet::new();
    let slots = Arc::new(Semaphore::new(UNORDERED_IN_FLIGHT));
    let trackers: Arc<std::sync::Mutex<HashMap<TopicPartition, OffsetTracker>>> = Arc::default();
    // Looked up for every record, so kept in small lists instead of hashed: a member reads a
    // few topics, and records come in runs of one partition.
    let mut topics: Vec<Arc<str>> = Vec::new();
    let mut partitions: Vec<PartitionQueue> = Vec::new();
    let mut last_partition = 0;
    let mut pending = 0usize;
    let stopped = ctx.stop.cancelled();
    tokio::pin!(stopped);
    // One stream for the member's life: each `recv` would register a waker slot and remove it.
    let mut messages = member.stream();
    let mut since_reaped = 0usize;
    loop {
        // In unordered mode a free slot is taken before fetching, so at most
        // UNORDERED_IN_FLIGHT records are delivered at once.
        let permit = if config.ordered {
            None
        } else {
            tokio::select! {
                p = slots.clone().acquire_owned() => Some(p.expect("semaphore never closed")),
                _ = &mut stopped => break,
            }
        };
        // Ordered: records ready at once are gathered per partition, and handed over when
        // none is ready or DRAIN_LIMIT were gathered, so no record waits for more to come.
        let ready = if pending > 0 && pending < DRAIN_LIMIT {
            messages.next().now_or_never()
        } else {
            None
        };
        let message = match ready {
            Some(m) => m.expect("kafka streams never end"),
            None => {
                if pending > 0 {
                    pending = 0;
                    let mut stopped_tasks = Vec::new();
                    for (i, queue) in partitions.iter_mut().enumerate() {
                        if !queue.flush().await {
                            stopped_tasks.push(i);
                        }
                    }
                    for i in stopped_tasks.into_iter().rev() {
                        partitions.swap_remove(i);
                    }
                }
                tokio::select! {
                    biased;
                    m = messages.next() => m.expect("kafka streams never end"),
                    _ = &mut stopped => break,
                }
            }
        };
        let record = match message {
            Ok(m) => {
                ctx.emitter.metrics().received.inc();
                let topic = match topics.iter().find(|t| ***t == *m.topic()) {
                    Some(t) => t.clone(),
                    None => {
                        topics.push(Arc::from(m.topic()));
                        topics[topics.len() - 1].clone()
                    }
                };
                Record::of(&m, topic)
            }
            Err(e) => {
                tracing::warn!(source = %label, error = %e, "kafka fetch failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Finished delivery tasks are reaped now and then, not for every record.
        since_reaped += 1;
        if since_reaped >= REAP_EVERY {
            since_reaped = 0;
            while tasks.try_join_next().is_some() {}
        }
        if config.ordered {
            let same = |q: &PartitionQueue| Arc::ptr_eq(&q.topic, &record.topic) && q.partition == record.partition;
            if !partitions.get(last_partition).is_some_and(same) {
                last_partition = match partitions.iter().position(same) {
                    Some(i) => i,
                    None => {
                        partitions.push(PartitionQueue::start(
                            record.topic.clone(),
                            record.partition,
                            &mut tasks,
                            &ctx,
                            &config,
                            &member,
                        ));
                        partitions.len() - 1
                    }
                };
            }
            partitions[last_partition].pending.push(record);
            pending += 1;
        } else {
            let key = (record.topic.clone(), record.partition);
            trackers
                .lock()
                .expect("trackers poisoned")
                .entry(key.clone())
                .or_default()
                .start(record.offset);
            let (ctx, config, member, trackers) = (ctx.clone(), config.clone(), member.clone(), trackers.clone());
            tasks.spawn(async move {
                let _permit = permit;
                if !deliver(&ctx, &config, &record).await {
                    return;
                }
                ctx.emitter.metrics().acknowledged.inc();
                let commit = trackers
                    .lock()
                    .expect("trackers poisoned")
                    .entry(key)
                    .or_default()
                    .done(record.offset);
                if let Some(offset) = commit {
                    store(&member, ctx.emitter.label(), &record.topic, record.partition, offset);
                }
            });
        }
    }
    // Stopping: the partition tasks finish what they hold; then what is stored is committed.
    drop(partitions);
    drop(messages);
    while tasks.join_next().await.is_some() {}
    let member = member.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = member.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "final commit");
        }
    })
    .await;
}

/// Why committing the initial offsets failed; the reason of `InitialOffsetsCommitted`.
pub const INITIAL_OFFSETS_NOT_COMMITTED: &str = "InitialOffsetsNotCommitted";

/// Commits an offset for every partition of `topics` that has none in the group: the end of
/// the partition when `latest`, its start when `earliest`. Topics that do not exist yet are
/// left to `auto.offset.reset`. Blocking; returns the partitions it committed.
fn commit_initial_offsets(
    member: &Member,
    metadata: &rdkafka::metadata::Metadata,
    topics: &[String],
    latest: bool,
) -> Result<usize, KafkaError> {
    const TIMEOUT: Duration = Duration::from_secs(5);
    let mut partitions = TopicPartitionList::new();
    for topic in metadata.topics().iter().filter(|t| topics.iter().any(|n| n == t.name())) {
        for p in topic.partitions() {
            partitions.add_partition(topic.name(), p.id());
        }
    }
    if partitions.count() == 0 {
        return Ok(0);
    }
    let committed = member.committed_offsets(partitions, TIMEOUT)?;
    let mut initial = TopicPartitionList::new();
    for element in committed.elements() {
        if matches!(element.offset(), Offset::Offset(_)) {
            continue;
        }
        let (low, high) = member.fetch_watermarks(element.topic(), element.partition(), TIMEOUT)?;
        let offset = if latest { high } else { low };
        initial.add_partition_offset(element.topic(), element.partition(), Offset::Offset(offset))?;
    }
    if initial.count() > 0 {
        member.commit(&initial, CommitMode::Sync)?;
    }
    Ok(initial.count())
}

/// Whether a commit failed only because the group has members (a commit from outside the
/// group is refused then).
fn group_is_active(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::IllegalGeneration | RDKafkaErrorCode::UnknownMemberId | RDKafkaErrorCode::RebalanceInProgress)
    )
}

impl KafkaAdapter {
    /// A group member subscribed to the topics, after checking the brokers answer; the first
    /// one (`first`) commits the initial offsets before it subscribes.
    async fn member(&self, ctx: &Arc<AdapterContext>, first: bool) -> Result<Member, (&'static str, String)> {
        let mut client = ClientConfig::new();
        for (k, v) in MEMBER_DEFAULTS
            .iter()
            .copied()
            .chain(self.config.client.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            client.set(k, v);
        }
        let member: Member = client
            .create_with_context(MemberContext { ctx: ctx.clone() })
            .map_err(|e| ("InvalidConfig", e.to_string()))?;
        let member = Arc::new(member);
        let probe = member.clone();
        let topics = self.config.topics.clone();
        let latest = self.config.client.get("auto.offset.reset").map(String::as_str) != Some("earliest");
        let label = ctx.emitter.label().to_string();
        let checked = tokio::task::spawn_blocking(move || {
            let metadata = probe
                .fetch_metadata(None, Duration::from_secs(5))
                .map_err(|e| ("ConnectionFailed", e))?;
            let missing: Vec<String> = topics
                .iter()
                .filter(|t| !metadata.topics().iter().any(|m| m.name() == t.as_str()))
                .cloned()
                .collect();
            if first {
                match commit_initial_offsets(&probe, &metadata, &topics, latest) {
                    Ok(0) => {}
                    Ok(committed) => tracing::info!(source = %label, partitions = committed, latest, "committed the initial offsets"),
                    Err(e) if group_is_active(&e) => {
                        // Members of the group are still there (a restart within their session
                        // timeout): they hold offsets, and `auto.offset.reset` covers the rest.
                        tracing::warn!(source = %label, error = %e, "initial offsets not committed: the group has members");
                    }
                    Err(e) => return Err((INITIAL_OFFSETS_NOT_COMMITTED, e)),
                }
            }
            Ok::<_, (&'static str, KafkaError)>(missing)
        })
        .await
        .map_err(|e| ("ConnectionFailed", e.to_string()))?;
        match checked {
            Err((reason, e)) => return Err((reason, format!("{}: {e}", self.config.client["bootstrap.servers"]))),
            Ok(missing) if !missing.is_empty() => {
                // Subscribing still works: records arrive once the topics exist.
                tracing::warn!(source = ctx.emitter.label(), topics = ?missing, "topics do not exist yet");
            }
            Ok(_) => {}
        }
        let topics: Vec<&str> = self.config.topics.iter().map(String::as_str).collect();
        member.subscribe(&topics).map_err(|e| ("SubscribeFailed", e.to_string()))?;
        Arc::try_unwrap(member).map_err(|_| ("InvalidConfig", "the metadata probe kept the consumer".to_string()))
    }
}

#[async_trait::async_trait]
impl Adapter for KafkaAdapter {
    async fn run(self: Box<Self>, ctx: AdapterContext) {
        let ctx = Arc::new(ctx);
        let config = Arc::new(self.config.clone());
        let mut backoff = Backoff::default();
        'connect: loop {
            let mut members = Vec::new();
            for n in 0..config.consumers {
                match self.member(&ctx, n == 0).await {
                    Ok(m) => members.push(Arc::new(m)),
                    Err((reason, message)) => {
                        ctx.report(Health::failing(reason, message));
                        if !backoff.wait(&ctx.stop).await {
                            return;
                        }
                        continue 'connect;
                    }
                }
            }
            ctx.report(Health::Running);
            backoff.reset();
            let runs = members.into_iter().map(|m| run_member(ctx.clone(), config.clone(), m));
            futures_util::future::join_all(runs).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "/apis/v1/namespaces/default/kafkasources/orders";

    fn record(headers: &[(&str, &str)], key: Option<&[u8]>, value: &str) -> Record {
        Record {
            topic: "orders".into(),
            partition: 2,
            offset: 41,
            timestamp_ms: Some(1_764_756_000_123),
            key: key.map(<[u8]>::to_vec),
            headers: headers.iter().map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec()))).collect(),
            value: Some(value.as_bytes().to_vec()),
        }
    }

    fn data(e: &Event) -> Vec<u8> {
        crate::convert::data_bytes(e).unwrap_or_default()
    }

    #[test]
    fn plain_records_become_kafka_events() {
        let r = record(
            &[("content-type", "application/json"), ("X-Trace_Id", "abc")],
            Some(b"customer-7"),
            "{\"n\":1}",
        );
        let e = to_event(&r, SOURCE, KeyType::String).unwrap();
        assert_eq!(e.ty(), "dev.knative.kafka.event");
        assert_eq!(e.id(), "partition:2/offset:41");
        assert_eq!(e.subject(), Some("partition:2#41"));
        assert_eq!(e.source().to_string(), "/apis/v1/namespaces/default/kafkasources/orders#orders");
        assert_eq!(e.time().unwrap().timestamp_millis(), 1_764_756_000_123);
        assert_eq!(e.datacontenttype(), Some("application/json"));
        assert_eq!(e.extension("key").unwrap().to_string(), "customer-7");
        assert_eq!(e.extension("partitionkey").unwrap().to_string(), "customer-7");
        assert_eq!(e.extension("kafkaheaderxtraceid").unwrap().to_string(), "abc");
        assert!(e.extension("kafkaheadercontenttype").is_none());
        assert_eq!(data(&e), b"{\"n\":1}");
        let no_key = to_event(&record(&[], None, "v"), SOURCE, KeyType::String).unwrap();
        assert!(no_key.extension("key").is_none() && no_key.datacontenttype().is_none());
    }

    /// What `encode_structured` writes for `event`, as a JSON value (extension order aside).
    fn structured(event: &Event) -> serde_json::Value {
        let body = sluice_delivery::binding::encode_structured(event, &mut http::HeaderMap::new()).unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    #[test]
    fn plain_records_written_straight_into_a_batch_are_the_events_to_event_makes() {
        let overrides = BTreeMap::from([
            ("team".to_string(), "orders".to_string()),
            ("key".to_string(), "overridden".to_string()),
        ]);
        let mut no_time = record(&[("h", "1")], None, "{}");
        no_time.timestamp_ms = None;
        let mut whole_second = record(&[], None, "{}");
        whole_second.timestamp_ms = Some(1_764_756_000_000);
        let mut micro = record(&[], None, "{}");
        micro.timestamp_ms = Some(-1);
        let mut no_value = record(&[("content-type", "application/json")], Some(b"k"), "");
        no_value.value = None;
        let mut binary = record(&[], Some(&[0, 0, 0, 7]), "");
        binary.value = Some(vec![0xff, 0x00, 0x7f]);
        let cases: Vec<(Record, KeyType, BTreeMap<String, String>)> = vec![
            (
                record(
                    &[("content-type", "application/json"), ("X-Trace_Id", "abc")],
                    Some(b"customer-7"),
                    "{\"n\":1}",
                ),
                KeyType::String,
                overrides.clone(),
            ),
            (record(&[], None, "not json"), KeyType::String, BTreeMap::new()),
            (record(&[], None, "{\"data\":\"xxxxxxxx\"}"), KeyType::String, BTreeMap::new()),
            (
                record(
                    &[("content-type", "text/plain; charset=utf-8")],
                    Some(b"q\"uote\\"),
                    "line\n\"two\"",
                ),
                KeyType::String,
                BTreeMap::new(),
            ),
            (
                record(
                    &[("content-type", "application/octet-stream"), ("a-b", "x"), ("AB", "y\u{1}")],
                    Some(&[0, 0, 0, 9]),
                    "bytes",
                ),
                KeyType::Int,
                overrides.clone(),
            ),
            (
                record(&[("ce_type", "no specversion, so plain")], Some(b"\xff\xfe"), "[1,2]"),
                KeyType::ByteArray,
                BTreeMap::new(),
            ),
            (no_time, KeyType::String, BTreeMap::new()),
            (whole_second, KeyType::String, BTreeMap::new()),
            (micro, KeyType::String, BTreeMap::new()),
            (no_value, KeyType::String, BTreeMap::new()),
            (binary, KeyType::Int, overrides),
        ];
        for (r, key_type, overrides) in cases {
            let expected = structured(&with_overrides(to_event(&r, SOURCE, key_type).unwrap(), &overrides));
            let mut out = Vec::new();
            assert!(write_plain_event(&r, SOURCE, key_type, &overrides, &mut out), "{r:?}");
            let written: serde_json::Value =
                serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
            assert_eq!(written, expected, "{r:?}");
        }
        // CloudEvents in a record are left to to_event.
        for r in [
            record(
                &[("ce_specversion", "1.0"), ("ce_id", "1"), ("ce_type", "t"), ("ce_source", "s")],
                None,
                "x",
            ),
            record(&[("CE_specversion", "1.0")], None, "x"),
            record(&[("content-type", "application/cloudevents+json")], None, "{}"),
        ] {
            let mut out = Vec::new();
            let plain = !r.headers.iter().any(|(k, _)| k.starts_with("ce_") || k == "content-type");
            assert_eq!(
                write_plain_event(&r, SOURCE, KeyType::String, &BTreeMap::new(), &mut out),
                plain,
                "{r:?}"
            );
            assert_eq!(out.is_empty(), !plain);
        }
    }

    #[test]
    fn keys_are_read_as_the_label_says() {
        let cases: [(KeyType, &[u8], &str); 6] = [
            (KeyType::String, b"abc", "abc"),
            (KeyType::Int, &42i32.to_be_bytes(), "42"),
            (KeyType::Int, &(-7i64).to_be_bytes(), "-7"),
            (KeyType::Float, &1.5f32.to_be_bytes(), "1.5"),
            (KeyType::Float, &2.25f64.to_be_bytes(), "2.25"),
            (KeyType::ByteArray, &[0, 1, 255], "AAH/"),
        ];
        for (key_type, key, expected) in cases {
            assert_eq!(key_text(key, key_type), expected, "{key_type:?}");
        }
    }

    #[test]
    fn cloudevents_pass_through() {
        let binary = record(
            &[
                ("ce_specversion", "1.0"),
                ("ce_id", "e-1"),
                ("ce_type", "com.example"),
                ("ce_source", "/shop"),
                ("ce_tenant", "acme"),
                ("content-type", "text/plain"),
            ],
            Some(b"k"),
            "hello",
        );
        let e = to_event(&binary, SOURCE, KeyType::String).unwrap();
        assert_eq!((e.id(), e.ty(), e.source().to_string().as_str()), ("e-1", "com.example", "/shop"));
        assert_eq!(e.extension("tenant").unwrap().to_string(), "acme");
        assert!(e.extension("key").is_none(), "a CloudEvent is forwarded as it is");
        assert_eq!(e.datacontenttype(), Some("text/plain"));
        assert_eq!(data(&e), b"hello");
        let structured = record(
            &[("content-type", "application/cloudevents+json")],
            None,
            r#"{"specversion":"1.0","id":"s-1","type":"t","source":"/s","data":"x"}"#,
        );
        assert_eq!(to_event(&structured, SOURCE, KeyType::String).unwrap().id(), "s-1");
    }

    #[test]
    fn malformed_cloudevents_are_errors() {
        let cases = [
            record(&[("ce_specversion", "1.0"), ("ce_id", "e-1")], None, "x"),
            record(
                &[("ce_specversion", "1.0"), ("ce_id", "e"), ("ce_type", "t"), ("ce_time", "soon")],
                None,
                "x",
            ),
            record(&[("content-type", "application/cloudevents+json")], None, "{"),
        ];
        for r in cases {
            assert!(to_event(&r, SOURCE, KeyType::String).is_err(), "{r:?}");
        }
    }

    #[test]
    fn commits_never_pass_a_record_in_flight() {
        let mut t = OffsetTracker::default();
        for o in 10..14 {
            t.start(o);
        }
        // 11 and 12 finish first: 10 is still in flight, nothing moves.
        assert_eq!(t.done(11), Some(10));
        assert_eq!(t.done(12), Some(10));
        // 10 finishes: everything up to 12 is done, 13 is the oldest in flight.
        assert_eq!(t.done(10), Some(13));
        assert_eq!(t.done(13), Some(14));
        t.start(14);
        t.start(15);
        assert_eq!(t.done(15), Some(14));
        assert_eq!(t.done(14), Some(16));
    }

    #[test]
    fn an_initial_commit_refused_for_members_of_the_group_is_no_fault() {
        let refused = |code| KafkaError::ConsumerCommit(code);
        assert!(group_is_active(&refused(RDKafkaErrorCode::IllegalGeneration)));
        assert!(group_is_active(&refused(RDKafkaErrorCode::UnknownMemberId)));
        assert!(group_is_active(&refused(RDKafkaErrorCode::RebalanceInProgress)));
        assert!(!group_is_active(&refused(RDKafkaErrorCode::GroupAuthorizationFailed)));
        assert!(!group_is_active(&refused(RDKafkaErrorCode::CoordinatorNotAvailable)));
    }

    #[test]
    fn header_names_become_extension_names() {
        assert_eq!(header_extension("X-Request-ID"), "kafkaheaderxrequestid");
        assert_eq!(header_extension("trace_parent.2"), "kafkaheadertraceparent2");
    }
}
