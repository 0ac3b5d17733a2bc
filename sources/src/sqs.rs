//! AwsSqsSource (`sources.knative.dev/v1alpha1`, SQS-01..03): the messages of an SQS queue as
//! CloudEvents, through `aws-sdk-sqs`.
//!
//! - **Config**: `queueUrl` (the region from its host, else `AWS_REGION`, else `us-east-1`),
//!   credentials from the `awsCredsSecret` key holding an AWS shared-credentials file (its
//!   `default` profile, else the first) or else the SDK's default chain; the endpoint from the
//!   annotation [`ENDPOINT_ANNOTATION`], else the SDK's `AWS_ENDPOINT_URL_SQS`, else the queue
//!   URL's own host when it is not AWS's (a local SQS API such as moto).
//! - **Conversion**: [`to_event`] — `aws.sqs.message`, id = `MessageId`, source = the queue URL,
//!   time = `SentTimestamp`, data = the whole message object as JSON.
//! - **Loop**: long-poll receives of up to 10 messages with every attribute, delivered
//!   concurrently; [`PARALLELISM_ANNOTATION`] receive loops (default 1).
//! - **Acknowledgement**: `DeleteMessage` once the sink accepted the message; otherwise it
//!   reappears after its visibility timeout (and a redrive policy moves it to the queue's DLQ).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use chrono::{DateTime, Utc};
use cloudevents::{Event, EventBuilder, EventBuilderV10};
use serde_json::{json, Value};
use sluice_crds::sources::AwsSqsSource;
use tokio::task::JoinSet;

use crate::{Adapter, AdapterContext, Backoff, ConfigError, Health, SecretLookup};

/// Annotation of an AwsSqsSource naming the SQS endpoint (a local SQS API, a VPC endpoint).
pub const ENDPOINT_ANNOTATION: &str = "sluice.dev/sqs-endpoint-url";
/// Annotation of an AwsSqsSource setting how many receive loops run (default 1).
pub const PARALLELISM_ANNOTATION: &str = "sluice.dev/parallelism";
/// Long-poll wait of one receive, as Knative's adapter waits.
const WAIT_TIME_SECONDS: i32 = 3;
/// How often the queue's waiting messages are read for the lag metric.
const LAG_INTERVAL: Duration = Duration::from_secs(5);

/// Static credentials from a shared-credentials file.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// `aws_access_key_id`.
    pub access_key_id: String,
    /// `aws_secret_access_key`.
    pub secret_access_key: String,
    /// `aws_session_token`.
    pub session_token: Option<String>,
}

/// What an AwsSqsSource's adapter runs on.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// The queue.
    pub queue_url: String,
    /// Its region.
    pub region: String,
    /// The endpoint, when not AWS's for the region (or the SDK's environment).
    pub endpoint: Option<String>,
    /// Credentials from the Secret; `None` uses the SDK's default chain.
    pub credentials: Option<StaticCredentials>,
    /// Receive loops.
    pub parallelism: usize,
}

impl std::fmt::Debug for StaticCredentials {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Config {
    // Credentials stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("queue_url", &self.queue_url)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials.as_ref().map(|c| &c.access_key_id))
            .field("parallelism", &self.parallelism)
            .finish()
    }
}

/// The credentials of an AWS shared-credentials file: its `default` profile, else its first.
pub fn parse_credentials_file(text: &str) -> Result<StaticCredentials, String> {
    let mut profiles: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            profiles.push((name.trim().to_string(), BTreeMap::new()));
        } else if let (Some((key, value)), Some((_, profile))) = (line.split_once('='), profiles.last_mut()) {
            profile.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let (name, profile) = profiles
        .iter()
        .find(|(n, _)| n == "default")
        .or_else(|| profiles.first())
        .ok_or("no [profile] in the credentials file")?;
    let get = |key: &str| profile.get(key).filter(|v| !v.is_empty()).cloned();
    Ok(StaticCredentials {
        access_key_id: get("aws_access_key_id").ok_or_else(|| format!("profile [{name}] has no aws_access_key_id"))?,
        secret_access_key: get("aws_secret_access_key").ok_or_else(|| format!("profile [{name}] has no aws_secret_access_key"))?,
        session_token: get("aws_session_token"),
    })
}

/// The endpoint implied by a queue URL that is not on AWS (`http://127.0.0.1:5000/…`).
fn endpoint_of_queue(queue_url: &str) -> Option<String> {
    let url = url::Url::parse(queue_url).ok()?;
    let host = url.host_str()?;
    if host.ends_with("amazonaws.com") || host.ends_with("amazonaws.com.cn") {
        return None;
    }
    Some(format!(
        "{}://{}",
        url.scheme(),
        url.host_str().map(|h| match url.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        })?
    ))
}

impl Config {
    /// The config of `source`, reading `awsCredsSecret` from `secrets`.
    pub fn from_source(source: &AwsSqsSource, secrets: &dyn SecretLookup) -> Result<Self, ConfigError> {
        let namespace = source.metadata.namespace.as_deref().unwrap_or("default");
        let spec = &source.spec;
        let credentials = match &spec.aws_creds_secret {
            Some(sel) => {
                let text = crate::secret_text(secrets, "spec.awsCredsSecret", namespace, &sel.name, &sel.key)?;
                Some(parse_credentials_file(&text).map_err(|m| {
                    ConfigError::new(
                        "spec.awsCredsSecret",
                        "InvalidCredentials",
                        format!("key {:?} of secret {namespace}/{}: {m}", sel.key, sel.name),
                    )
                })?)
            }
            None => None,
        };
        let annotations = source.metadata.annotations.clone().unwrap_or_default();
        let parallelism = match annotations.get(PARALLELISM_ANNOTATION) {
            Some(p) => p.parse::<usize>().ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| {
                ConfigError::new(
                    format!("metadata.annotations[{PARALLELISM_ANNOTATION}]"),
                    "InvalidConfig",
                    format!("{p:?} is not a number from 1 to 100"),
                )
            })?,
            None => 1,
        };
        let region = spec
            .region()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into());
        Ok(Self {
            queue_url: spec.queue_url.clone(),
            region,
            endpoint: annotations
                .get(ENDPOINT_ANNOTATION)
                .cloned()
                .or_else(|| endpoint_of_queue(&spec.queue_url)),
            credentials,
            parallelism,
        })
    }
}

/// The message as Knative's adapter puts it in the event's data: every field of the SQS
/// `Message`, in the AWS API's names.
pub fn message_json(m: &Message) -> Value {
    let attributes: BTreeMap<String, String> = m
        .attributes()
        .map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect())
        .unwrap_or_default();
    let message_attributes: BTreeMap<String, Value> = m
        .message_attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| {
                    let binary = v
                        .binary_value()
                        .map(|b| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b.as_ref()));
                    (
                        k.clone(),
                        json!({"DataType": v.data_type(), "StringValue": v.string_value(), "BinaryValue": binary,
                            "StringListValues": v.string_list_values(), "BinaryListValues": Value::Null}),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "MessageId": m.message_id(),
        "ReceiptHandle": m.receipt_handle(),
        "MD5OfBody": m.md5_of_body(),
        "Body": m.body(),
        "Attributes": attributes,
        "MD5OfMessageAttributes": m.md5_of_message_attributes(),
        "MessageAttributes": message_attributes,
    })
}

/// The CloudEvent of one message (SQS-03); `now` is its time when it has no `SentTimestamp`.
pub fn to_event(queue_url: &str, message: &Value, now: DateTime<Utc>) -> Result<Event, String> {
    let id = message["MessageId"].as_str().ok_or("the message has no MessageId")?;
    let time = message["Attributes"]["SentTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or(now);
    let mut event = EventBuilderV10::new()
        .id(id)
        .ty(sluice_crds::sources::awssqs::EVENT_TYPE)
        .source(queue_url)
        .time(time)
        .build()
        .map_err(|e| e.to_string())?;
    event.set_data("application/json", message.clone());
    Ok(event)
}

/// Consumes an AwsSqsSource's queue.
pub struct SqsAdapter {
    config: Config,
}

impl SqsAdapter {
    /// An adapter for `config`.
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// A client of the queue's region and endpoint.
    async fn client(&self) -> aws_sdk_sqs::Client {
        client(&self.config).await
    }
}

/// A client of `config`'s region, endpoint and credentials, over rustls with ring.
pub async fn client(config: &Config) -> aws_sdk_sqs::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(config.region.clone()));
    if let Some(c) = &config.credentials {
        loader = loader.credentials_provider(Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.clone(),
            c.session_token.clone(),
            None,
            "awsCredsSecret",
        ));
    }
    if let Some(endpoint) = &config.endpoint {
        loader = loader.endpoint_url(endpoint.clone());
    }
    aws_sdk_sqs::Client::new(&loader.load().await)
}

/// Delivers one message and deletes it once the sink accepted it.
async fn handle(ctx: &AdapterContext, client: &aws_sdk_sqs::Client, queue_url: &str, message: Message) {
    let metrics = ctx.emitter.metrics();
    metrics.received.inc();
    let id = message.message_id().unwrap_or_default().to_string();
    let json = message_json(&message);
    let event = match to_event(queue_url, &json, Utc::now()) {
        Ok(e) => e,
        Err(e) => {
            metrics.rejected.inc();
            tracing::warn!(source = ctx.emitter.label(), queue = queue_url, message_id = %id, error = %e, "message skipped: not convertible");
            return;
        }
    };
    if let Err(e) = ctx.emitter.emit(event, None).await {
        tracing::warn!(source = ctx.emitter.label(), queue = queue_url, message_id = %id, error = %e,
            "sink did not accept the message; it stays in the queue and reappears after its visibility timeout");
        return;
    }
    let Some(receipt) = message.receipt_handle() else { return };
    match client.delete_message().queue_url(queue_url).receipt_handle(receipt).send().await {
        Ok(_) => {
            metrics.acknowledged.inc();
        }
        Err(e) => {
            tracing::warn!(source = ctx.emitter.label(), queue = queue_url, message_id = %id, error = %aws_sdk_sqs::error::DisplayErrorContext(&e),
            "message delivered but not deleted; it will be delivered again")
        }
    }
}

/// One receive loop, until stopped.
async fn receive_loop(ctx: Arc<AdapterContext>, client: aws_sdk_sqs::Client, queue_url: String) {
    let mut backoff = Backoff::default();
    let mut in_flight = JoinSet::new();
    loop {
        let received = tokio::select! {
            r = client
                .receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(WAIT_TIME_SECONDS)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send() => r,
            _ = ctx.stop.cancelled() => break,
        };
        match received {
            Ok(out) => {
                ctx.report(Health::Running);
                backoff.reset();
                for message in out.messages.unwrap_or_default() {
                    let (ctx, client, queue_url) = (ctx.clone(), client.clone(), queue_url.clone());
                    in_flight.spawn(async move { handle(&ctx, &client, &queue_url, message).await });
                }
                // The batch is answered before the next receive: at most 10 in flight per loop.
                while in_flight.join_next().await.is_some() {}
            }
            Err(e) => {
                let message = format!("{queue_url}: {}", aws_sdk_sqs::error::DisplayErrorContext(&e));
                ctx.report(Health::failing("ReceiveFailed", message));
                if !backoff.wait(&ctx.stop).await {
                    break;
                }
            }
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Reads the queue's waiting messages into the lag metric, until stopped.
async fn lag_loop(ctx: Arc<AdapterContext>, client: aws_sdk_sqs::Client, queue_url: String) {
    loop {
        let attributes = client
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await;
        if let Ok(out) = attributes {
            let waiting = out
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
                .and_then(|n| n.parse::<i64>().ok());
            if let Some(n) = waiting {
                ctx.emitter.metrics().lag.set(n);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(LAG_INTERVAL) => {}
            _ = ctx.stop.cancelled() => return,
        }
    }
}

#[async_trait::async_trait]
impl Adapter for SqsAdapter {
    async fn run(self: Box<Self>, ctx: AdapterContext) {
        let ctx = Arc::new(ctx);
        let client = self.client().await;
        let queue_url = self.config.queue_url.clone();
        let loops = (0..self.config.parallelism).map(|_| receive_loop(ctx.clone(), client.clone(), queue_url.clone()));
        tokio::join!(
            futures_util::future::join_all(loops),
            lag_loop(ctx.clone(), client.clone(), queue_url.clone())
        );
    }
}

#[cfg(test)]
mod tests {
    use cloudevents::AttributesReader;

    use super::*;

    #[test]
    fn credentials_files_as_aws_writes_them() {
        let c = parse_credentials_file("[other]\naws_access_key_id = O\naws_secret_access_key = o\n\n[default]\naws_access_key_id=AKID\naws_secret_access_key = SECRET\naws_session_token = T\n").unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.secret_access_key.as_str(), c.session_token.as_deref()),
            ("AKID", "SECRET", Some("T"))
        );
        let first = parse_credentials_file("# comment\n[ci]\naws_access_key_id = A\naws_secret_access_key = B\n").unwrap();
        assert_eq!(first.access_key_id, "A");
        assert!(parse_credentials_file("[default]\naws_access_key_id = A\n")
            .unwrap_err()
            .contains("aws_secret_access_key"));
        assert!(parse_credentials_file("").is_err());
    }

    #[test]
    fn local_queue_urls_name_their_endpoint() {
        assert_eq!(
            endpoint_of_queue("http://127.0.0.1:5000/123456789012/orders").as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(endpoint_of_queue("https://sqs.eu-west-1.amazonaws.com/123456789012/orders"), None);
    }

    #[test]
    fn events_carry_the_whole_message() {
        let message = json!({"MessageId": "m-1", "ReceiptHandle": "r", "Body": "hello", "MD5OfBody": "x",
            "Attributes": {"SentTimestamp": "1764756000123"}, "MessageAttributes": {"color": {"DataType": "String", "StringValue": "blue"}}});
        let now = Utc::now();
        let e = to_event("https://sqs.eu-west-1.amazonaws.com/1/q", &message, now).unwrap();
        assert_eq!(e.ty(), "aws.sqs.message");
        assert_eq!(e.id(), "m-1");
        assert_eq!(e.source().to_string(), "https://sqs.eu-west-1.amazonaws.com/1/q");
        assert_eq!(e.time().unwrap().timestamp_millis(), 1_764_756_000_123);
        assert_eq!(e.datacontenttype(), Some("application/json"));
        match e.data() {
            Some(cloudevents::Data::Json(j)) => assert_eq!(j, &message),
            other => panic!("{other:?}"),
        }
        let no_time = to_event("q", &json!({"MessageId": "m-2"}), now).unwrap();
        assert_eq!(no_time.time(), Some(&now));
        assert!(to_event("q", &json!({}), now).is_err());
    }
}
