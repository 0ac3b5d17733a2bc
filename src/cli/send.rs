//! `sluice send`: post one CloudEvent in binary or structured mode, like `kn event send`.

use std::process::ExitCode;

use anyhow::Context;
use clap::ValueEnum;
use cloudevents::{EventBuilder, EventBuilderV10};
use http::HeaderMap;
use sluice_delivery::binding;

/// Content mode of the sent request.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Mode {
    /// Attributes as `ce-` headers.
    Binary,
    /// One JSON document.
    Structured,
}

/// Arguments of `sluice send`.
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// Target URL (or give --broker).
    #[arg(long, conflicts_with = "broker", value_name = "URL")]
    to: Option<String>,
    /// Broker name (its address is looked up through the API).
    #[arg(long, value_name = "NAME")]
    broker: Option<String>,
    /// Namespace of the broker.
    #[arg(short = 'n', long, default_value = "default", value_name = "NAMESPACE")]
    namespace: String,
    /// Event type.
    #[arg(long = "type", default_value = "dev.sluice.event", value_name = "TYPE")]
    ty: String,
    /// Event source.
    #[arg(long, default_value = "sluice/cli", value_name = "SOURCE")]
    source: String,
    /// Event id (default: a new UUID).
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// Event subject.
    #[arg(long, value_name = "SUBJECT")]
    subject: Option<String>,
    /// Extension attribute `name=value` (repeatable).
    #[arg(long = "extension", short = 'e', value_parser = parse_kv, value_name = "NAME=VALUE")]
    extensions: Vec<(String, String)>,
    /// Event data (the body). Attributes that filters read, such as `amount` in a CESQL
    /// filter, are extensions: give them with -e.
    #[arg(long, value_name = "DATA")]
    data: Option<String>,
    /// Content type of the data (default: application/json when the data is JSON, else text/plain).
    #[arg(long, value_name = "MEDIA_TYPE")]
    content_type: Option<String>,
    /// Binary or structured mode.
    #[arg(long, value_enum, default_value = "binary", value_name = "MODE")]
    mode: Mode,
    /// URL of the resource API (for --broker).
    #[arg(long, env = "SLUICE_SERVER", default_value = "http://127.0.0.1:8090", value_name = "URL")]
    server: String,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("expected name=value, got {s:?}"))?;
    Ok((k.to_string(), v.to_string()))
}

/// Builds and posts the event; exit 1 when the target does not answer 2xx.
pub async fn send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let url = match (&args.to, &args.broker) {
        (Some(to), _) => to.clone(),
        (None, Some(b)) => super::client::broker_url(&args.server, &args.namespace, b).await?,
        (None, None) => {
            eprintln!("error: sluice send needs a target: --to URL or --broker NAME\n\nFor more information, try '--help'.");
            return Ok(ExitCode::from(2));
        }
    };
    let id = args.id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut builder = EventBuilderV10::new()
        .id(&id)
        .ty(&args.ty)
        .source(args.source.as_str())
        .time(chrono::Utc::now());
    if let Some(s) = &args.subject {
        builder = builder.subject(s.as_str());
    }
    for (k, v) in &args.extensions {
        builder = builder.extension(k, v.as_str());
    }
    if let Some(data) = &args.data {
        match serde_json::from_str::<serde_json::Value>(data) {
            Ok(json) if args.content_type.as_deref().is_none_or(|c| c.contains("json")) => {
                builder = builder.data(args.content_type.clone().unwrap_or_else(|| "application/json".into()), json);
            }
            _ => builder = builder.data(args.content_type.clone().unwrap_or_else(|| "text/plain".into()), data.clone()),
        }
    }
    let event = builder.build().context("building the event")?;
    binding::validate(&event).context("invalid event")?;
    let mut headers = HeaderMap::new();
    let body = match args.mode {
        Mode::Binary => binding::encode_binary(&event, &mut headers)?,
        Mode::Structured => binding::encode_structured(&event, &mut headers)?,
    };
    let resp = reqwest::Client::new()
        .post(&url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .with_context(|| format!("sending to {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        eprintln!("error: {url} answered {status}: {}", text.trim());
        return Ok(ExitCode::from(1));
    }
    outln!("sent event {id} to {url}: {status}");
    Ok(ExitCode::SUCCESS)
}
