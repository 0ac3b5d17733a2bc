//! GitHubSource end to end: `sluice run --public-url` registers the webhook with a local server
//! that speaks GitHub's documented hooks API (create, edit, delete) and checks what it gets,
//! and real webhook payloads (the npm package `@octokit/webhooks-examples`, fetched by
//! `scripts/test`), signed as GitHub signs them, arrive at the sink as Knative's CloudEvents.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{patch, post};
use axum::Json;
use common::{Recorder, Sluice};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

const SECRET: &str = "It's a Secret to Everybody";
const TOKEN: &str = "ghp_sluicetesttoken";
const SOURCE_PATH: &str = "/apis/sources.knative.dev/v1alpha1/namespaces/default/githubsources/gh";

/// One call the fake GitHub API received: method, path, Authorization, body.
type Call = (String, String, String, Value);

/// A local server speaking GitHub's hooks API for one repository.
struct FakeGitHub {
    url: String,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl FakeGitHub {
    async fn start() -> FakeGitHub {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let auth = |h: &HeaderMap| h.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let app =
            axum::Router::new()
                .route(
                    "/repos/{owner}/{repo}/hooks",
                    post(
                        move |State(calls): State<Arc<Mutex<Vec<Call>>>>,
                              Path((o, r)): Path<(String, String)>,
                              h: HeaderMap,
                              Json(body): Json<Value>| async move {
                            calls
                                .lock()
                                .unwrap()
                                .push(("POST".into(), format!("/repos/{o}/{r}/hooks"), auth(&h), body.clone()));
                            (
                                StatusCode::CREATED,
                                Json(json!({"id": 4242, "type": "Repository", "name": "web", "active": true,
                            "events": body["events"], "config": {"url": body["config"]["url"], "content_type": "json"}})),
                            )
                        },
                    ),
                )
                .route(
                    "/repos/{owner}/{repo}/hooks/{id}",
                    patch(
                        move |State(calls): State<Arc<Mutex<Vec<Call>>>>,
                              Path((o, r, id)): Path<(String, String, String)>,
                              h: HeaderMap,
                              Json(body): Json<Value>| async move {
                            calls
                                .lock()
                                .unwrap()
                                .push(("PATCH".into(), format!("/repos/{o}/{r}/hooks/{id}"), auth(&h), body.clone()));
                            Json(json!({"id": 4242, "events": body["events"]}))
                        },
                    )
                    .delete(
                        move |State(calls): State<Arc<Mutex<Vec<Call>>>>,
                              Path((o, r, id)): Path<(String, String, String)>,
                              h: HeaderMap| async move {
                            calls
                                .lock()
                                .unwrap()
                                .push(("DELETE".into(), format!("/repos/{o}/{r}/hooks/{id}"), auth(&h), Value::Null));
                            StatusCode::NO_CONTENT
                        },
                    ),
                )
                .with_state(calls.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeGitHub { url, calls }
    }

    /// Waits until a call with `method` arrives; returns it.
    async fn wait_call(&self, method: &str, nth: usize) -> Call {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found: Vec<Call> = self.calls.lock().unwrap().iter().filter(|c| c.0 == method).cloned().collect();
            if let Some(call) = found.get(nth) {
                return call.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {method} #{nth}; calls: {:?}",
                self.calls.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The examples of `@octokit/webhooks-examples` (`api.github.com/index.json`), or `None` (and a
/// note) when they are not here; with CI=true their absence fails.
fn octokit_examples() -> Option<Vec<Value>> {
    let path = std::env::var_os("SLUICE_OCTOKIT_EXAMPLES").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/octokit-webhooks-examples/package/api.github.com/index.json")
    });
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).unwrap()),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{}: {e}; CI=true requires @octokit/webhooks-examples (scripts/test fetches it)",
                path.display()
            );
            eprintln!(
                "skipped: {} not found (scripts/test fetches @octokit/webhooks-examples)",
                path.display()
            );
            None
        }
    }
}

/// The first example payload of `event`.
fn example(examples: &[Value], event: &str) -> Value {
    examples
        .iter()
        .find(|e| e["name"] == event)
        .and_then(|e| e["examples"].get(0))
        .unwrap_or_else(|| panic!("no example of {event}"))
        .clone()
}

fn sign_sha256(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("sha256={}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn sign_sha1(body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("sha1={}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// POSTs a webhook delivery to the receiver; returns status and body.
async fn deliver(url: &str, event: &str, delivery: &str, body: &[u8], signature: Option<(&str, String)>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some((header, value)) = signature {
        req = req.header(header, value);
    }
    let response = req.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn last_path_portion(url: &Value) -> String {
    url.as_str().unwrap().rsplit('/').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_source_registers_its_webhook_and_turns_deliveries_into_cloudevents() {
    let Some(examples) = octokit_examples() else { return };
    let github = FakeGitHub::start().await;
    let recorder = Recorder::accept().await;
    let sluice = Sluice::start_with_args(
        &format!(
            "apiVersion: v1
kind: Secret
metadata:
  name: gh-tokens
stringData:
  accessToken: {TOKEN}
  secretToken: \"{SECRET}\"
---
apiVersion: sources.knative.dev/v1alpha1
kind: GitHubSource
metadata:
  name: gh
spec:
  ownerAndRepository: Codertocat/Hello-World
  eventTypes: [push, pull_request, issues, issue_comment, create]
  accessToken:
    secretKeyRef: {{name: gh-tokens, key: accessToken}}
  secretToken:
    secretKeyRef: {{name: gh-tokens, key: secretToken}}
  githubAPIURL: {}
  sink:
    uri: {}
",
            github.url, recorder.url
        ),
        &["--public-url", "https://hooks.example.com/"],
    )
    .await;
    let source = sluice.wait_ready(SOURCE_PATH).await;
    assert_eq!(
        source["status"]["address"]["url"],
        "https://hooks.example.com/githubsources/default/gh"
    );
    assert_eq!(source["status"]["webhookIDKey"], "4242");
    assert_eq!(source["status"]["sinkUri"], recorder.url.as_str());
    for c in ["SecretsProvided", "SinkProvided", "WebhookConfigured"] {
        assert!(source["status"]["conditions"].to_string().contains(c), "{c}: {source:#}");
    }
    // The hook GitHub was asked for.
    let (_, path, auth, body) = github.wait_call("POST", 0).await;
    assert_eq!(path, "/repos/Codertocat/Hello-World/hooks");
    assert!(auth.ends_with(TOKEN), "{auth}");
    assert_eq!(body["events"], json!(["push", "pull_request", "issues", "issue_comment", "create"]));
    assert_eq!(body["config"]["url"], "https://hooks.example.com/githubsources/default/gh");
    assert_eq!(body["config"]["content_type"], "json");
    assert_eq!(body["config"]["secret"], SECRET);
    assert_eq!(body["active"], true);
    // `sluice get githubsources` shows where GitHub delivers.
    let listed = sluice.cli(&["get", "githubsources"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("https://hooks.example.com/githubsources/default/gh"), "{listed}");

    // Real deliveries, signed with SHA-256, arrive as Knative's events.
    let receiver = format!("{}/githubsources/default/gh", sluice.gateway);
    // Each event with the subject Knative's adapter gives it.
    type Subject = Box<dyn Fn(&Value) -> String>;
    let cases: Vec<(&str, Subject)> = vec![
        ("push", Box::new(|p: &Value| last_path_portion(&p["compare"]))),
        ("pull_request", Box::new(|p: &Value| p["pull_request"]["number"].to_string())),
        ("issues", Box::new(|p: &Value| p["issue"]["number"].to_string())),
        ("issue_comment", Box::new(|p: &Value| last_path_portion(&p["comment"]["html_url"]))),
        ("create", Box::new(|p: &Value| p["ref_type"].as_str().unwrap().to_string())),
    ];
    for (i, (event, subject)) in cases.iter().enumerate() {
        let payload = example(&examples, event);
        let body = serde_json::to_vec(&payload).unwrap();
        let delivery = format!("72d3162e-cc78-11e3-81ab-4c9367dc0958-{i}");
        let answer = deliver(
            &receiver,
            event,
            &delivery,
            &body,
            Some(("x-hub-signature-256", sign_sha256(&body))),
        )
        .await;
        assert_eq!(answer, (202, "accepted".to_string()), "{event}");
        let got = recorder.wait_for(i + 1).await.pop().unwrap();
        assert_eq!(got.header("ce-type"), Some(format!("dev.knative.source.github.{event}")));
        assert_eq!(got.header("ce-id").as_deref(), Some(delivery.as_str()));
        assert_eq!(
            got.header("ce-source").as_deref(),
            Some("https://github.com/Codertocat/Hello-World")
        );
        assert_eq!(got.header("ce-subject"), Some(subject(&payload)), "{event}");
        assert_eq!(got.header("content-type").as_deref(), Some("application/json"));
        assert_eq!(got.body.as_ref(), body.as_slice(), "data is the payload");
        if payload["repository"].is_object() {
            assert_eq!(got.header("ce-repository").as_deref(), payload["repository"]["name"].as_str());
        }
    }
    // SHA-1 signatures are accepted too.
    let payload = serde_json::to_vec(&example(&examples, "push")).unwrap();
    let answer = deliver(
        &receiver,
        "push",
        "sha1-delivery",
        &payload,
        Some(("x-hub-signature", sign_sha1(&payload))),
    )
    .await;
    assert_eq!(answer.0, 202, "{answer:?}");
    recorder.wait_for(6).await;

    // What is refused emits nothing.
    let wrong = deliver(
        &receiver,
        "push",
        "bad-1",
        &payload,
        Some(("x-hub-signature-256", sign_sha256(b"something else"))),
    )
    .await;
    assert_eq!(wrong.0, 401, "{wrong:?}");
    assert_eq!(deliver(&receiver, "push", "bad-2", &payload, None).await.0, 401);
    let other_algorithm = deliver(
        &receiver,
        "push",
        "bad-3",
        &payload,
        Some(("x-hub-signature-256", sign_sha1(&payload))),
    )
    .await;
    assert_eq!(other_algorithm.0, 401, "{other_algorithm:?}");
    let watch = serde_json::to_vec(&example(&examples, "watch")).unwrap();
    assert_eq!(
        deliver(
            &receiver,
            "watch",
            "w-1",
            &watch,
            Some(("x-hub-signature-256", sign_sha256(&watch)))
        )
        .await
        .0,
        404
    );
    let ping = serde_json::to_vec(&example(&examples, "ping")).unwrap();
    assert_eq!(
        deliver(&receiver, "ping", "p-1", &ping, Some(("x-hub-signature-256", sign_sha256(&ping))))
            .await
            .0,
        200
    );
    let not_json = b"{not json";
    assert_eq!(
        deliver(
            &receiver,
            "push",
            "j-1",
            not_json,
            Some(("x-hub-signature-256", sign_sha256(not_json)))
        )
        .await
        .0,
        400
    );
    let unknown = format!("{}/githubsources/default/nope", sluice.gateway);
    assert_eq!(deliver(&unknown, "push", "u-1", &payload, None).await.0, 404);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recorder.received().len(), 6, "refused deliveries emit nothing");

    // A spec change edits the hook.
    let client = reqwest::Client::new();
    let patched = client
        .patch(format!("{}{SOURCE_PATH}", sluice.api))
        .header("content-type", "application/merge-patch+json")
        .body(json!({"spec": {"eventTypes": ["push", "release"]}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let (_, path, _, body) = github.wait_call("PATCH", 0).await;
    assert_eq!(path, "/repos/Codertocat/Hello-World/hooks/4242");
    assert_eq!(body["events"], json!(["push", "release"]));

    // Deleting the source deletes the hook, then the source goes.
    let deleted = client.delete(format!("{}{SOURCE_PATH}", sluice.api)).send().await.unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let (_, path, auth, _) = github.wait_call("DELETE", 0).await;
    assert_eq!(path, "/repos/Codertocat/Hello-World/hooks/4242");
    assert!(auth.ends_with(TOKEN));
    let deadline = Instant::now() + Duration::from_secs(10);
    while sluice.get_json(SOURCE_PATH).await["kind"] != "Status" {
        assert!(Instant::now() < deadline, "the source was not deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_source_without_its_secret_says_which() {
    let recorder = Recorder::accept().await;
    let sluice = Sluice::start(&format!(
        "apiVersion: sources.knative.dev/v1alpha1
kind: GitHubSource
metadata:
  name: gh
spec:
  ownerAndRepository: octo
  eventTypes: [push]
  githubAPIURL: http://127.0.0.1:1
  accessToken:
    secretKeyRef: {{name: missing, key: accessToken}}
  secretToken:
    secretKeyRef: {{name: missing, key: secretToken}}
  sink:
    uri: {}
",
        recorder.url
    ))
    .await;
    let source = sluice.wait_condition(SOURCE_PATH, "SecretsProvided", "False").await;
    let text = source["status"]["conditions"].to_string();
    assert!(text.contains("spec.accessToken.secretKeyRef: secret missing not found"), "{text}");
    assert_eq!(
        source["status"]["address"]["url"],
        format!("{}/githubsources/default/gh", sluice.gateway)
    );
}
