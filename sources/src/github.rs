//! GitHubSource (`sources.knative.dev/v1alpha1`, GHS-01..04): GitHub webhooks as CloudEvents.
//!
//! - **Config**: `ownerAndRepository`, `eventTypes`, and the `secretToken` from its Secret.
//! - **Receiver**: the gateway hands `POST /githubsources/{namespace}/{name}` to [`Receiver`]
//!   ([`webhook_path`]); it checks `X-Hub-Signature-256` (HMAC-SHA256) or else `X-Hub-Signature`
//!   (HMAC-SHA1) in constant time, and answers 202 only once the sink accepted the event.
//! - **Conversion**: [`to_event`] — id = `X-GitHub-Delivery`, type
//!   `dev.knative.source.github.<event>`, source `https://github.com/<ownerAndRepository>`, the
//!   subject and extensions of Knative's adapter per event, data = the payload as received.
//! - **Registration** ([`hooks`]): the controller creates, edits and deletes the repository's or
//!   organisation's webhook through GitHub's REST API (`octocrab`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cloudevents::event::ExtensionValue;
use cloudevents::{Event, EventBuilder, EventBuilderV10};
use hmac::{Hmac, Mac};
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use sluice_crds::sources::GitHubSource;

use crate::{secret_text, Adapter, AdapterContext, ConfigError, Health, SecretLookup};

/// The path of a GitHubSource's webhook receiver on the gateway.
pub fn webhook_path(namespace: &str, name: &str) -> String {
    format!("{PATH_PREFIX}{namespace}/{name}")
}

/// The prefix of every receiver's path.
pub const PATH_PREFIX: &str = "/githubsources/";

/// What a GitHubSource's receiver runs on.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// `owner/repo`, or `org`.
    pub owner_and_repository: String,
    /// The events accepted (`X-GitHub-Event` values).
    pub event_types: Vec<String>,
    /// The webhook's secret; signatures are checked when it is set.
    pub secret_token: Option<String>,
    /// Namespace and name of the source, for its path.
    pub namespace: String,
    /// Name of the source.
    pub name: String,
}

impl std::fmt::Debug for Config {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("owner_and_repository", &self.owner_and_repository)
            .field("event_types", &self.event_types)
            .field("secret_token", &self.secret_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Config {
    /// The config of `source`, reading its `secretToken` from `secrets`.
    pub fn from_source(source: &GitHubSource, secrets: &dyn SecretLookup) -> Result<Self, ConfigError> {
        let namespace = source.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let secret_token = match source.spec.secret_token.as_ref().and_then(|s| s.secret_key_ref.as_ref()) {
            Some(sel) => Some(secret_text(
                secrets,
                "spec.secretToken.secretKeyRef",
                &namespace,
                &sel.name,
                &sel.key,
            )?),
            None => None,
        };
        Ok(Self {
            owner_and_repository: source.spec.owner_and_repository.clone(),
            event_types: source.spec.event_types.clone(),
            secret_token,
            namespace,
            name: source.metadata.name.clone().unwrap_or_default(),
        })
    }

    /// The events' `source`: `https://github.com/<ownerAndRepository>`.
    pub fn event_source(&self) -> String {
        format!("https://github.com/{}", self.owner_and_repository)
    }
}

/// Why a signature does not verify.
#[derive(Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// Neither `X-Hub-Signature-256` nor `X-Hub-Signature` is present.
    Missing,
    /// The header is not `sha256=<hex>` (or `sha1=<hex>`).
    Malformed(&'static str),
    /// The HMAC differs.
    Mismatch(&'static str),
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureError::Missing => f.write_str("no X-Hub-Signature-256 or X-Hub-Signature header"),
            SignatureError::Malformed(h) => write!(f, "{h} is not <algorithm>=<hex digest>"),
            SignatureError::Mismatch(h) => write!(f, "{h} does not match the payload and the secret"),
        }
    }
}

/// Checks a delivery's signature against `secret`: `X-Hub-Signature-256` (HMAC-SHA256) when
/// present, else `X-Hub-Signature` (HMAC-SHA1), compared in constant time.
pub fn verify_signature(headers: &HeaderMap, body: &[u8], secret: &str) -> Result<(), SignatureError> {
    fn check<M: Mac + hmac::digest::KeyInit>(
        header: &'static str,
        value: &str,
        prefix: &str,
        body: &[u8],
        secret: &str,
    ) -> Result<(), SignatureError> {
        let hex = value.strip_prefix(prefix).ok_or(SignatureError::Malformed(header))?;
        let expected = decode_hex(hex).ok_or(SignatureError::Malformed(header))?;
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
        mac.update(body);
        mac.verify_slice(&expected).map_err(|_| SignatureError::Mismatch(header))
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(v) = text("x-hub-signature-256") {
        return check::<Hmac<sha2::Sha256>>("X-Hub-Signature-256", v, "sha256=", body, secret);
    }
    if let Some(v) = text("x-hub-signature") {
        return check::<Hmac<sha1::Sha1>>("X-Hub-Signature", v, "sha1=", body, secret);
    }
    Err(SignatureError::Missing)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The text after the last `/` of a URL.
fn last_path_portion(url: &str) -> String {
    url.rsplit('/').next().unwrap_or_default().to_string()
}

/// A JSON value as subject text: strings as they are, numbers as digits.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// A JSON value as an extension value (strings stay strings, integers and booleans keep their
/// type; absent values are empty strings, as Knative's adapter sets them).
fn extension(v: &Value) -> ExtensionValue {
    match v {
        Value::Bool(b) => ExtensionValue::Boolean(*b),
        Value::Number(n) if n.is_i64() => ExtensionValue::Integer(n.as_i64().unwrap_or_default()),
        other => ExtensionValue::String(text(other)),
    }
}

/// The subject and extensions Knative's adapter gives each event
/// (`SubjectAndExtensionsFromGitHubEvent`).
pub fn subject_and_extensions(event: &str, p: &Value) -> (String, Vec<(&'static str, ExtensionValue)>) {
    let owner = ("owner", extension(&p["repository"]["owner"]["login"]));
    let repository = ("repository", extension(&p["repository"]["name"]));
    let sender = ("sender", extension(&p["sender"]["login"]));
    let action = ("action", extension(&p["action"]));
    let installation = ("installation", extension(&p["installation"]["id"]));
    let org_owner = ("owner", extension(&p["organization"]["login"]));
    let base = || vec![owner.clone(), repository.clone(), sender.clone()];
    let with_action = || {
        let mut e = base();
        e.push(action.clone());
        e
    };
    let (subject, extensions) = match event {
        "check_run" => (text(&p["check_run"]["id"]), with_action()),
        "check_suite" => (text(&p["check_suite"]["id"]), with_action()),
        "commit_comment" | "issue_comment" => (last_path_portion(&text(&p["comment"]["html_url"])), with_action()),
        "create" | "delete" => {
            let mut e = base();
            e.push(("ref", extension(&p["ref"])));
            (text(&p["ref_type"]), e)
        }
        "deployment" | "deployment_status" => (text(&p["deployment"]["id"]), base()),
        "fork" => (text(&p["forkee"]["id"]), base()),
        "gollum" => {
            let pages: Vec<String> = p["pages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|pg| text(&pg["page_name"]))
                .collect();
            (pages.join(","), base())
        }
        "installation" | "integration_installation" | "installation_repositories" | "integration_installation_repositories" => (
            text(&p["installation"]["id"]),
            vec![installation.clone(), sender.clone(), action.clone()],
        ),
        "issues" => {
            let mut e = with_action();
            if p["label"].is_object() {
                e.push(("label", extension(&p["label"]["name"])));
            }
            if p["assignee"].is_object() {
                e.push(("assignee", extension(&p["assignee"]["login"])));
            }
            (text(&p["issue"]["number"]), e)
        }
        "label" => {
            let mut e = with_action();
            e.push(("label", extension(&p["label"]["name"])));
            (text(&p["label"]["name"]), e)
        }
        "member" => (text(&p["member"]["id"]), with_action()),
        "membership" => (
            text(&p["member"]["id"]),
            vec![org_owner.clone(), ("scope", extension(&p["scope"])), sender.clone(), action.clone()],
        ),
        "milestone" => (text(&p["milestone"]["number"]), with_action()),
        "organization" | "org_block" => (text(&p["action"]), vec![org_owner.clone(), sender.clone(), action.clone()]),
        "page_build" => (text(&p["id"]), base()),
        "ping" => (text(&p["hook_id"]), base()),
        "project_card" | "project_column" | "project" => (text(&p["action"]), with_action()),
        "public" | "team_add" => (text(&p["repository"]["id"]), base()),
        "pull_request" => {
            let mut e = with_action();
            e.push((
                "installation",
                ExtensionValue::Integer(p["installation"]["id"].as_i64().unwrap_or(0)),
            ));
            e.push(("number", extension(&p["number"])));
            e.push(("label", ExtensionValue::String(text(&p["label"]["name"]))));
            if p["assignee"].is_object() {
                e.push(("assignee", extension(&p["assignee"]["login"])));
            }
            (text(&p["pull_request"]["number"]), e)
        }
        "pull_request_review_comment" => {
            let mut e = with_action();
            e.push(installation.clone());
            (text(&p["comment"]["id"]), e)
        }
        "pull_request_review" => {
            let mut e = with_action();
            e.push(installation.clone());
            e.push(("review", extension(&p["review"]["state"])));
            (text(&p["review"]["id"]), e)
        }
        "push" => {
            let mut e = base();
            e.push(installation.clone());
            for field in ["ref", "created", "deleted", "forced"] {
                e.push((field, extension(&p[field])));
            }
            e.push(("pusher", extension(&p["pusher"]["name"])));
            (last_path_portion(&text(&p["compare"])), e)
        }
        "release" => {
            let mut e = with_action();
            e.push(installation.clone());
            e.push(("release", extension(&p["release"]["name"])));
            (text(&p["release"]["tag_name"]), e)
        }
        "repository" | "watch" => (text(&p["repository"]["id"]), with_action()),
        "repository_vulnerability_alert" => (text(&p["alert"]["id"]), vec![action.clone()]),
        "security_advisory" => (text(&p["security_advisory"]["ghsa_id"]), vec![action.clone()]),
        "status" => {
            let mut e = base();
            for field in ["state", "name", "context"] {
                e.push((field, extension(&p[field])));
            }
            (text(&p["sha"]), e)
        }
        "team" => (text(&p["team"]["id"]), vec![sender.clone(), action.clone()]),
        _ => (String::new(), base()),
    };
    (subject.trim().to_string(), extensions)
}

/// The CloudEvent of one delivery (GHS-04); `payload` is the body as received.
pub fn to_event(config: &Config, event: &str, delivery: &str, payload: &[u8]) -> Result<Event, String> {
    let parsed: Value = serde_json::from_slice(payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
    let (subject, extensions) = subject_and_extensions(event, &parsed);
    let mut builder = EventBuilderV10::new()
        .id(delivery)
        .ty(format!("{}.{event}", sluice_crds::sources::github::EVENT_TYPE_PREFIX))
        .source(config.event_source());
    if !subject.is_empty() {
        builder = builder.subject(subject);
    }
    for (name, value) in extensions {
        builder = builder.extension(name, value);
    }
    let mut e = builder.build().map_err(|e| e.to_string())?;
    e.set_data("application/json", payload.to_vec());
    Ok(e)
}

/// The receivers of the GitHubSources a data plane runs, by namespace and name.
#[derive(Default)]
pub struct Receivers {
    by_source: Mutex<HashMap<(String, String), Arc<Receiver>>>,
}

impl Receivers {
    /// The receiver of source `namespace/name`, if it runs.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Receiver>> {
        let map = self.by_source.lock().expect("receivers poisoned");
        map.get(&(namespace.to_string(), name.to_string())).cloned()
    }

    fn insert(&self, receiver: Arc<Receiver>) {
        let key = (receiver.config.namespace.clone(), receiver.config.name.clone());
        self.by_source.lock().expect("receivers poisoned").insert(key, receiver);
    }

    fn remove(&self, receiver: &Arc<Receiver>) {
        let key = (receiver.config.namespace.clone(), receiver.config.name.clone());
        let mut map = self.by_source.lock().expect("receivers poisoned");
        if map.get(&key).is_some_and(|r| Arc::ptr_eq(r, receiver)) {
            map.remove(&key);
        }
    }
}

/// One GitHubSource's webhook receiver.
pub struct Receiver {
    config: Config,
    ctx: Arc<AdapterContext>,
}

/// The answer to one webhook request.
pub type Answer = (StatusCode, String);

impl Receiver {
    /// Answers one webhook request (GHS-03, with the issue's 401 for signatures): 405 for a
    /// method other than POST, 400 without `X-GitHub-Event` or `X-GitHub-Delivery` or with a
    /// body that is not JSON, 401 for a missing or wrong signature, 404 for an event not in
    /// `eventTypes`, 200 for a `ping` not in them, 202 `accepted` once the sink took the
    /// event, 400 with the reason when it did not.
    pub async fn handle(&self, method: &http::Method, headers: &HeaderMap, body: &[u8]) -> Answer {
        let label = self.ctx.emitter.label();
        let metrics = self.ctx.emitter.metrics();
        if method != http::Method::POST {
            return (StatusCode::METHOD_NOT_ALLOWED, "webhooks are POSTed\n".into());
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let Some(event) = header("x-github-event") else {
            return (StatusCode::BAD_REQUEST, "missing X-GitHub-Event header\n".into());
        };
        let delivery = header("x-github-delivery").unwrap_or_default();
        metrics.received.inc();
        if let Some(secret) = &self.config.secret_token {
            if let Err(e) = verify_signature(headers, body, secret) {
                metrics.rejected.inc();
                tracing::warn!(source = label, %event, %delivery, error = %e, "webhook refused: bad signature");
                return (StatusCode::UNAUTHORIZED, format!("{e}\n"));
            }
        }
        if !self.config.event_types.contains(&event) {
            if event == "ping" {
                return (StatusCode::OK, "pong\n".into());
            }
            return (
                StatusCode::NOT_FOUND,
                format!("event {event:?} is not in this source's eventTypes\n"),
            );
        }
        if delivery.is_empty() {
            return (StatusCode::BAD_REQUEST, "\"X-GitHub-Delivery\" header is not set\n".into());
        }
        let e = match to_event(&self.config, &event, &delivery, body) {
            Ok(e) => e,
            Err(message) => {
                metrics.rejected.inc();
                tracing::warn!(source = label, %event, %delivery, error = %message, "webhook refused: bad body");
                return (StatusCode::BAD_REQUEST, format!("{message}\n"));
            }
        };
        let trace = sluice_delivery::TraceContext::from_headers(headers);
        match self.ctx.emitter.emit(e, trace).await {
            Ok(()) => {
                metrics.acknowledged.inc();
                (StatusCode::ACCEPTED, "accepted".into())
            }
            Err(err) => {
                tracing::warn!(source = label, %event, %delivery, error = %err, "webhook delivery failed; answered 400");
                (StatusCode::BAD_REQUEST, err.to_string())
            }
        }
    }
}

/// Serves a GitHubSource's receiver while it runs.
pub struct GitHubAdapter {
    config: Config,
    receivers: Arc<Receivers>,
}

impl GitHubAdapter {
    /// An adapter for `config`, registering its receiver in `receivers`.
    pub fn new(config: Config, receivers: Arc<Receivers>) -> Self {
        Self { config, receivers }
    }
}

#[async_trait::async_trait]
impl Adapter for GitHubAdapter {
    async fn run(self: Box<Self>, ctx: AdapterContext) {
        let ctx = Arc::new(ctx);
        let receiver = Arc::new(Receiver {
            config: self.config.clone(),
            ctx: ctx.clone(),
        });
        self.receivers.insert(receiver.clone());
        ctx.report(Health::Running);
        ctx.stop.cancelled().await;
        self.receivers.remove(&receiver);
    }
}

pub mod hooks;

#[cfg(test)]
mod tests {
    use cloudevents::AttributesReader;

    use super::*;

    #[test]
    fn githubs_documented_signature_vector_verifies() {
        // GitHub's documentation: secret "It's a Secret to Everybody", payload "Hello, World!".
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
                .parse()
                .unwrap(),
        );
        assert_eq!(verify_signature(&headers, b"Hello, World!", "It's a Secret to Everybody"), Ok(()));
        assert_eq!(
            verify_signature(&headers, b"Hello, World?", "It's a Secret to Everybody"),
            Err(SignatureError::Mismatch("X-Hub-Signature-256"))
        );
        assert_eq!(verify_signature(&HeaderMap::new(), b"x", "s"), Err(SignatureError::Missing));
        let mut sha1 = HeaderMap::new();
        sha1.insert("x-hub-signature", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59".parse().unwrap());
        assert_eq!(verify_signature(&sha1, b"Hello, World!", "It's a Secret to Everybody"), Ok(()));
        let mut wrong_algorithm = HeaderMap::new();
        wrong_algorithm.insert(
            "x-hub-signature-256",
            "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59".parse().unwrap(),
        );
        assert_eq!(
            verify_signature(&wrong_algorithm, b"Hello, World!", "It's a Secret to Everybody"),
            Err(SignatureError::Malformed("X-Hub-Signature-256"))
        );
    }

    fn config() -> Config {
        Config {
            owner_and_repository: "Codertocat/Hello-World".into(),
            event_types: vec!["push".into()],
            secret_token: None,
            namespace: "default".into(),
            name: "gh".into(),
        }
    }

    #[test]
    fn subjects_and_extensions_follow_knatives_adapter() {
        // Event, payload, subject, some extensions.
        type Case = (&'static str, Value, &'static str, Vec<(&'static str, &'static str)>);
        let cases: Vec<Case> = vec![
            (
                "push",
                serde_json::json!({"compare": "https://github.com/o/r/compare/a10867b14bb7...000000000000", "ref": "refs/tags/simple-tag",
                    "created": false, "deleted": true, "forced": false, "pusher": {"name": "Codertocat"},
                    "repository": {"name": "Hello-World", "owner": {"login": "Codertocat"}}, "sender": {"login": "Codertocat"}}),
                "a10867b14bb7...000000000000",
                vec![
                    ("owner", "Codertocat"),
                    ("repository", "Hello-World"),
                    ("ref", "refs/tags/simple-tag"),
                    ("deleted", "true"),
                    ("pusher", "Codertocat"),
                ],
            ),
            (
                "pull_request",
                serde_json::json!({"action": "opened", "number": 2, "pull_request": {"number": 2}, "repository": {"name": "r", "owner": {"login": "o"}}, "sender": {"login": "s"}}),
                "2",
                vec![("action", "opened"), ("number", "2"), ("label", ""), ("installation", "0")],
            ),
            (
                "issue_comment",
                serde_json::json!({"action": "created", "comment": {"html_url": "https://github.com/o/r/issues/2#issuecomment-393304133"}}),
                "2#issuecomment-393304133",
                vec![("action", "created")],
            ),
            (
                "create",
                serde_json::json!({"ref": "simple-tag", "ref_type": "tag"}),
                "tag",
                vec![("ref", "simple-tag")],
            ),
            ("ping", serde_json::json!({"hook_id": 30}), "30", vec![]),
            (
                "membership",
                serde_json::json!({"action": "added", "scope": "team", "member": {"id": 21031067}, "organization": {"login": "Octocoders"}}),
                "21031067",
                vec![("owner", "Octocoders"), ("scope", "team")],
            ),
            (
                "gollum",
                serde_json::json!({"pages": [{"page_name": "Home"}, {"page_name": "FAQ"}]}),
                "Home,FAQ",
                vec![],
            ),
        ];
        for (event, payload, subject, extensions) in cases {
            let e = to_event(&config(), event, "d-1", payload.to_string().as_bytes()).unwrap();
            assert_eq!(e.ty(), format!("dev.knative.source.github.{event}"));
            assert_eq!(e.source().to_string(), "https://github.com/Codertocat/Hello-World");
            assert_eq!(e.id(), "d-1");
            assert_eq!(e.subject(), Some(subject), "{event}");
            assert_eq!(e.datacontenttype(), Some("application/json"));
            for (name, value) in extensions {
                assert_eq!(e.extension(name).map(|v| v.to_string()), Some(value.to_string()), "{event} {name}");
            }
        }
        assert!(to_event(&config(), "push", "d", b"not json").is_err());
    }
}
