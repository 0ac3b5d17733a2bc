//! Watch requests (`?watch=true`): a stream of JSON `WatchEvent`s, one per line, as the
//! Kubernetes API server sends them (`{"type":"ADDED","object":{…}}`).
//!
//! Without `resourceVersion` (or with `0`) the stream starts with every current object as
//! `ADDED`; with one, it starts with the changes after it, or, when that version is older than
//! the kept history, with a single `ERROR` event carrying a 410 `Expired` Status, after which the
//! client lists again (what kubectl and kube-rs watchers do). `timeoutSeconds` ends the stream.
//! A watcher too slow to keep up with the live feed has its stream ended; it resumes from the
//! last resourceVersion it saw.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};
use sluice_crds::registry::KindInfo;
use sluice_crds::storage;
use tokio::sync::broadcast::error::RecvError;

use crate::selector::Selector;
use crate::store::{Change, ObjectKey, Store};

/// What a watch selects and from where it starts.
pub struct WatchRequest {
    /// The kind watched (its objects are presented as this kind when it is stored as another).
    pub kind: &'static KindInfo,
    /// One namespace, or all.
    pub namespace: Option<String>,
    /// `resourceVersion` to start after.
    pub from: Option<u64>,
    /// `labelSelector` and `fieldSelector`.
    pub selector: Selector,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
}

impl WatchRequest {
    fn selects_key(&self, key: &ObjectKey) -> bool {
        let stored = storage::storage_kind(self.kind);
        key.group == stored.group && key.plural == stored.plural && self.namespace.as_deref().is_none_or(|ns| key.namespace == ns)
    }

    /// The `WatchEvent` line of a change this watch selects. A kind stored as another sees its
    /// objects converted, and selected by its own fields.
    fn line(&self, change: &Change) -> Option<Bytes> {
        if !self.selects_key(&change.key) {
            return None;
        }
        let converted = storage::is_converted(self.kind);
        if !converted && self.selector.is_empty() {
            return Some(change_line(change));
        }
        let object = storage::present(self.kind, change.object_value());
        if !self.selector.matches(&object) {
            return None;
        }
        Some(match converted {
            true => event_line(change.change.as_str(), &object),
            false => change_line(change),
        })
    }
}

/// One `WatchEvent` line.
fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).expect("json values serialize");
    line.push(b'\n');
    Bytes::from(line)
}

/// The `WatchEvent` line of a change, around the JSON the store keeps of its object.
fn change_line(change: &Change) -> Bytes {
    let kind = change.change.as_str();
    let mut line = Vec::with_capacity(change.object.len() + kind.len() + 22);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(&change.object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// Answers a watch request with a streaming body.
pub fn respond(store: &Store, request: WatchRequest) -> Response {
    let request = Arc::new(request);
    let selecting = request.clone();
    let start = match store.watch(request.from, move |key| selecting.selects_key(key)) {
        Ok(start) => start,
        Err(expired) => {
            let status = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": expired.to_string(), "reason": "Expired", "code": 410,
            });
            return stream_response(Body::from(event_line("ERROR", &status)));
        }
    };
    let initial: Vec<Bytes> = start.initial.iter().filter_map(|c| request.line(c)).collect();
    let deadline = request.timeout.map(|t| tokio::time::Instant::now() + t);
    // Every change after the initial ones, in order, until the deadline or until the watcher
    // falls behind the live feed.
    let state = (initial.into_iter(), start.live, request, deadline);
    let stream = futures_util::stream::unfold(state, |(mut initial, mut live, request, deadline)| async move {
        if let Some(line) = initial.next() {
            return Some((Ok::<_, std::convert::Infallible>(line), (initial, live, request, deadline)));
        }
        loop {
            let next = match deadline {
                Some(at) => match tokio::time::timeout_at(at, live.recv()).await {
                    Ok(next) => next,
                    Err(_) => return None,
                },
                None => live.recv().await,
            };
            match next {
                Ok(change) => match request.line(&change) {
                    Some(line) => return Some((Ok(line), (initial, live, request, deadline))),
                    None => continue,
                },
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "watcher fell behind; ending its stream");
                    return None;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    stream_response(Body::from_stream(stream))
}

fn stream_response(body: Body) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use sluice_crds::registry::find_kind;

    fn broker(name: &str, labels: Value) -> Value {
        json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": name, "namespace": "default", "labels": labels}})
    }

    fn request(from: Option<u64>, labels: &str) -> WatchRequest {
        WatchRequest {
            kind: find_kind("Broker").unwrap(),
            namespace: Some("default".into()),
            from,
            selector: Selector::parse(Some(labels), None).unwrap(),
            timeout: Some(Duration::from_millis(200)),
        }
    }

    async fn lines(response: Response) -> Vec<Value> {
        let body = response.into_body().collect().await.unwrap().to_bytes();
        body.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    fn summary(events: &[Value]) -> Vec<(String, String)> {
        events
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_string(),
                    e["object"]["metadata"]["name"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    fn pair(kind: &str, name: &str) -> (String, String) {
        (kind.to_string(), name.to_string())
    }

    #[tokio::test]
    async fn a_watch_lists_then_follows_changes_and_resumes_from_a_version() {
        let store = Store::open(None).unwrap();
        store
            .apply(vec![broker("a", json!({"team": "x"})), broker("b", json!({"team": "y"}))], false)
            .unwrap();
        let from = store.revision();

        // From nothing: the current objects, then live changes, until the timeout.
        let response = respond(&store, request(None, "team=x"));
        store.apply(vec![broker("c", json!({"team": "x"}))], false).unwrap();
        store.delete(find_kind("Broker").unwrap(), "default", "a").unwrap();
        let events = lines(response).await;
        assert_eq!(summary(&events), [pair("ADDED", "a"), pair("ADDED", "c"), pair("DELETED", "a")]);

        // From a version: only what came after it, in order, with increasing versions.
        let events = lines(respond(&store, request(Some(from), ""))).await;
        assert_eq!(summary(&events), [pair("ADDED", "c"), pair("DELETED", "a")]);
        let versions: Vec<u64> = events
            .iter()
            .map(|e| e["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(versions[0] > from && versions[1] > versions[0], "{versions:?}");
    }

    #[tokio::test]
    async fn a_watch_from_before_the_history_is_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(dir.path().to_path_buf())).unwrap();
        store.apply(vec![broker("a", json!({}))], false).unwrap();
        store.apply(vec![broker("b", json!({}))], false).unwrap();
        let first: u64 = store.get(&ObjectKey::new(find_kind("Broker").unwrap(), "default", "a")).unwrap()["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        drop(store);
        // After a restart the history starts anew: a version from before it is expired (410),
        // and a watch without one starts from the current state.
        let store = Store::open(Some(dir.path().to_path_buf())).unwrap();
        let events = lines(respond(&store, request(Some(first), ""))).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["type"], "ERROR");
        assert_eq!(events[0]["object"]["code"], 410);
        assert_eq!(events[0]["object"]["reason"], "Expired");
        let events = lines(respond(&store, request(Some(0), ""))).await;
        assert_eq!(summary(&events), [pair("ADDED", "a"), pair("ADDED", "b")]);
    }
}
