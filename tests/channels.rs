//! End-to-end: Channel / InMemoryChannel with Subscriptions (fan-out, replies, dead letters),
//! and Sequence / Parallel built on them.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::{send_binary, Recorder, Sluice};

fn echo_with_type(ty: &'static str) -> common::Script {
    Arc::new(move |_, r| {
        let id = r.header("ce-id").unwrap_or_default();
        (
            StatusCode::OK,
            [
                ("ce-specversion", "1.0"),
                ("ce-id", id.as_str()),
                ("ce-type", ty),
                ("ce-source", "/step"),
            ],
            r.body.clone(),
        )
            .into_response()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_fans_out_to_subscriptions_and_routes_replies() {
    let a = Recorder::accept().await;
    let b = Recorder::scripted(echo_with_type("replied")).await;
    let reply_sink = Recorder::accept().await;
    let manifests = format!(
        "apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\nmetadata:\n  name: events\n---\n\
apiVersion: messaging.knative.dev/v1\nkind: Subscription\nmetadata:\n  name: to-a\nspec:\n  channel:\n    apiVersion: messaging.knative.dev/v1\n    kind: InMemoryChannel\n    name: events\n  subscriber:\n    uri: {}\n---\n\
apiVersion: messaging.knative.dev/v1\nkind: Subscription\nmetadata:\n  name: to-b\nspec:\n  channel:\n    apiVersion: messaging.knative.dev/v1\n    kind: InMemoryChannel\n    name: events\n  subscriber:\n    uri: {}\n  reply:\n    uri: {}\n",
        a.url, b.url, reply_sink.url
    );
    let sluice = Sluice::start(&manifests).await;
    let ch = sluice
        .wait_ready("/apis/messaging.knative.dev/v1/namespaces/default/inmemorychannels/events")
        .await;
    let url = ch["status"]["address"]["url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{}/channels/default/events", sluice.gateway));
    let sub = sluice
        .wait_ready("/apis/messaging.knative.dev/v1/namespaces/default/subscriptions/to-b")
        .await;
    assert_eq!(
        sub["status"]["physicalSubscription"]["replyUri"].as_str(),
        Some(reply_sink.url.as_str())
    );
    sluice
        .wait_ready("/apis/messaging.knative.dev/v1/namespaces/default/subscriptions/to-a")
        .await;
    let ch = sluice
        .get_json("/apis/messaging.knative.dev/v1/namespaces/default/inmemorychannels/events")
        .await;
    assert_eq!(ch["status"]["subscribers"].as_array().unwrap().len(), 2);
    let condition = |obj: &serde_json::Value, ty: &str| {
        obj["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == ty)
            .map(|c| c["status"].clone())
    };
    for ty in [
        "Ready",
        "Addressable",
        "DispatcherReady",
        "ServiceReady",
        "EndpointsReady",
        "ChannelServiceReady",
        "DeadLetterSinkResolved",
    ] {
        assert_eq!(
            condition(&ch, ty),
            Some(serde_json::json!("True")),
            "InMemoryChannel condition {ty}"
        );
    }
    for ty in [
        "Ready",
        "ReferencesResolved",
        "AddedToChannel",
        "ChannelReady",
        "OIDCIdentityCreated",
    ] {
        assert_eq!(condition(&sub, ty), Some(serde_json::json!("True")), "Subscription condition {ty}");
    }
    // spec.subscribers is filled in by the server (CH-01/CH-02), and the status follows the
    // generation that change made.
    let spec_subs = ch["spec"]["subscribers"]
        .as_array()
        .expect("server-filled spec.subscribers")
        .clone();
    let to_b = spec_subs.iter().find(|s| s["name"] == "to-b").expect("to-b listed");
    assert_eq!(to_b["subscriberUri"].as_str(), Some(b.url.as_str()));
    assert_eq!(to_b["replyUri"].as_str(), Some(reply_sink.url.as_str()));
    assert!(to_b["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert_eq!(
        spec_subs.iter().find(|s| s["name"] == "to-a").unwrap()["subscriberUri"].as_str(),
        Some(a.url.as_str())
    );
    assert_eq!(ch["status"]["observedGeneration"], ch["metadata"]["generation"]);
    // Re-applying the user's manifest neither erases them nor counts as a change.
    let again = sluice.cli(&["apply", "-f", sluice.manifests().to_str().unwrap()]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let after = sluice
        .get_json("/apis/messaging.knative.dev/v1/namespaces/default/inmemorychannels/events")
        .await;
    assert_eq!(after["metadata"]["generation"], ch["metadata"]["generation"]);
    assert_eq!(after["spec"]["subscribers"].as_array().unwrap().len(), 2);

    assert_eq!(send_binary(&url, "c1", "original", &[], "data").await, 202);
    let to_a = a.wait_for(1).await;
    assert_eq!(to_a[0].header("ce-id").as_deref(), Some("c1"));
    // Every subscriber is asked for a reply (DLV-01), also one whose replies are not used; the
    // reply destination is not.
    assert_eq!(to_a[0].header("prefer").as_deref(), Some("reply"));
    assert_eq!(b.wait_for(1).await[0].header("prefer").as_deref(), Some("reply"));
    let replies = reply_sink.wait_for(1).await;
    assert!(replies[0].header("prefer").is_none());
    assert_eq!(replies[0].header("ce-type").as_deref(), Some("replied"));
    assert_eq!(replies[0].body.as_ref(), b"data");
    assert_eq!(
        send_binary(&format!("{}/channels/default/nope", sluice.gateway), "x", "t", &[], "").await,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_and_parallel_route_through_their_steps() {
    let step1 = Recorder::scripted(echo_with_type("step1.done")).await;
    let step2 = Recorder::scripted(echo_with_type("step2.done")).await;
    let seq_out = Recorder::accept().await;
    let branch_a = Recorder::accept().await;
    let branch_b = Recorder::accept().await;
    // Branch b's filter rejects everything but the sentinel (answers 200 without an event), so
    // only a receives p1.
    let pass = echo_with_type("fanout");
    let reject_filter = Recorder::scripted(Arc::new(move |n, r| {
        if r.header("ce-id").as_deref() == Some("sentinel") {
            pass(n, r)
        } else {
            StatusCode::OK.into_response()
        }
    }))
    .await;
    let manifests = format!(
        "apiVersion: flows.knative.dev/v1\nkind: Sequence\nmetadata:\n  name: seq\nspec:\n  channelTemplate:\n    apiVersion: messaging.knative.dev/v1\n    kind: InMemoryChannel\n  steps:\n  - uri: {}\n  - uri: {}\n  reply:\n    uri: {}\n---\n\
apiVersion: flows.knative.dev/v1\nkind: Parallel\nmetadata:\n  name: par\nspec:\n  branches:\n  - subscriber:\n      uri: {}\n  - filter:\n      uri: {}\n    subscriber:\n      uri: {}\n",
        step1.url, step2.url, seq_out.url, branch_a.url, reject_filter.url, branch_b.url
    );
    let sluice = Sluice::start(&manifests).await;
    let seq = sluice
        .wait_ready("/apis/flows.knative.dev/v1/namespaces/default/sequences/seq")
        .await;
    let seq_url = seq["status"]["address"]["url"].as_str().unwrap().to_string();
    assert_eq!(send_binary(&seq_url, "s1", "start", &[], "payload").await, 202);
    let out = seq_out.wait_for(1).await;
    assert_eq!(out[0].header("ce-type").as_deref(), Some("step2.done"));
    assert_eq!(step2.received()[0].header("ce-type").as_deref(), Some("step1.done"));

    let par = sluice
        .wait_ready("/apis/flows.knative.dev/v1/namespaces/default/parallels/par")
        .await;
    let par_url = par["status"]["address"]["url"].as_str().unwrap().to_string();
    assert_eq!(send_binary(&par_url, "p1", "fanout", &[], "x").await, 202);
    assert_eq!(branch_a.wait_for(1).await[0].header("ce-id").as_deref(), Some("p1"));
    reject_filter.wait_for(1).await;
    // A Parallel's channels answer after fan-out, and a reply of the filter is posted to branch
    // b's channel within it: p1's 202 came after anything p1 could send to branch_b.
    assert_eq!(send_binary(&par_url, "sentinel", "fanout", &[], "x").await, 202);
    branch_b.wait_for_id("sentinel").await;
    assert_eq!(branch_b.ids(), ["sentinel"]);
    assert_eq!(reject_filter.ids(), ["p1", "sentinel"]);
}

fn imc(name: &str, annotations: &str) -> String {
    format!("apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\nmetadata:\n  name: {name}\n{annotations}---\n")
}

fn subscription(name: &str, channel: &str, subscriber: &str) -> String {
    subscription_with(name, "", channel, subscriber)
}

/// A subscription whose deliveries go one at a time, in the order its events arrived: once an
/// event sent later (a sentinel) reaches its subscriber, every earlier delivery, retries, dead
/// letter and reply included, is over.
fn ordered_subscription(name: &str, channel: &str, subscriber: &str) -> String {
    subscription_with(name, "  annotations:\n    sluice.dev/max-in-flight: \"1\"\n", channel, subscriber)
}

fn subscription_with(name: &str, annotations: &str, channel: &str, subscriber: &str) -> String {
    format!(
        "apiVersion: messaging.knative.dev/v1\nkind: Subscription\nmetadata:\n  name: {name}\n{annotations}spec:\n  channel:\n    apiVersion: messaging.knative.dev/v1\n    kind: InMemoryChannel\n    name: {channel}\n  subscriber:\n    uri: {subscriber}\n---\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_answer_after_fan_out_unless_asynchronous() {
    let ok = Recorder::accept().await;
    let rejecting = Recorder::scripted(Arc::new(|_, _| StatusCode::BAD_REQUEST.into_response())).await;
    let manifests = [
        imc("sync", ""),
        subscription("sync-ok", "sync", &ok.url),
        imc("sync-failing", ""),
        subscription("failing-ok", "sync-failing", &ok.url),
        subscription("failing-rejects", "sync-failing", &rejecting.url),
        imc("async", "  annotations:\n    messaging.knative.dev/async-handler: \"true\"\n"),
        subscription("async-rejects", "async", &rejecting.url),
    ]
    .concat();
    let sluice = Sluice::start(&manifests).await;
    for s in ["sync-ok", "failing-ok", "failing-rejects", "async-rejects"] {
        sluice
            .wait_ready(&format!("/apis/messaging.knative.dev/v1/namespaces/default/subscriptions/{s}"))
            .await;
    }
    let channel = |name: &str| format!("{}/channels/default/{name}", sluice.gateway);

    // Synchronous (the default): the answer comes once the subscriber has the event.
    assert_eq!(send_binary(&channel("sync"), "s1", "t", &[], "x").await, 202);
    assert_eq!(ok.received().len(), 1, "the subscriber had the event before the channel answered");
    // One subscriber rejecting (400, not retried, no dead-letter sink) fails the fan-out: 500.
    assert_eq!(send_binary(&channel("sync-failing"), "f1", "t", &[], "x").await, 500);
    assert_eq!(ok.received().len(), 2, "the other subscriber still got it");
    // The asynchronous handler answers once the event is queued, whatever happens next.
    assert_eq!(send_binary(&channel("async"), "a1", "t", &[], "x").await, 202);
    assert_eq!(rejecting.wait_for(2).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_channel_with_a_template_delivers_to_its_subscriptions() {
    let sub = Recorder::accept().await;
    let manifests = format!(
        "apiVersion: messaging.knative.dev/v1\nkind: Channel\nmetadata:\n  name: orders\nspec:\n  channelTemplate:\n    apiVersion: messaging.knative.dev/v1\n    kind: InMemoryChannel\n---\n\
apiVersion: messaging.knative.dev/v1\nkind: Subscription\nmetadata:\n  name: to-orders\nspec:\n  channel:\n    apiVersion: messaging.knative.dev/v1\n    kind: Channel\n    name: orders\n  subscriber:\n    uri: {}\n",
        sub.url
    );
    let sluice = Sluice::start(&manifests).await;
    let ch = sluice
        .wait_ready("/apis/messaging.knative.dev/v1/namespaces/default/channels/orders")
        .await;
    let url = ch["status"]["address"]["url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{}/channels/default/orders", sluice.gateway));
    sluice
        .wait_ready("/apis/messaging.knative.dev/v1/namespaces/default/subscriptions/to-orders")
        .await;
    let ch = sluice
        .get_json("/apis/messaging.knative.dev/v1/namespaces/default/channels/orders")
        .await;
    assert_eq!(ch["status"]["subscribers"].as_array().unwrap().len(), 1);
    assert_eq!(send_binary(&url, "o1", "order", &[], "x").await, 202);
    let got = sub.wait_for(1).await;
    assert_eq!(got[0].header("ce-id").as_deref(), Some("o1"));
    assert_eq!(got[0].header("kn-namespace").as_deref(), Some("default"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_delivery_retries_dead_letters_and_overrides_the_channel_default() {
    // Both fail every event but the sentinel.
    let failing = |status: StatusCode| -> common::Script {
        Arc::new(move |_, r| {
            if r.header("ce-id").as_deref() == Some("sentinel") {
                StatusCode::OK
            } else {
                status
            }
            .into_response()
        })
    };
    let unavailable = Recorder::scripted(failing(StatusCode::SERVICE_UNAVAILABLE)).await;
    let broken = Recorder::scripted(failing(StatusCode::INTERNAL_SERVER_ERROR)).await;
    let replier = Recorder::scripted(echo_with_type("unwanted.reply")).await;
    let channel_dls = Recorder::accept().await;
    let channel = format!(
        "apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\nmetadata:\n  name: work\n  annotations:\n    messaging.knative.dev/async-handler: \"true\"\n\
spec:\n  delivery:\n    retry: 3\n    backoffPolicy: linear\n    backoffDelay: PT0.02S\n    deadLetterSink:\n      uri: {}\n---\n",
        channel_dls.url
    );
    // A retry option on the Subscription replaces the channel's whole retry group (SUB-03):
    // `retry: 1` alone means one retry and no backoff; the dead-letter sink is resolved on its
    // own, so the channel's still applies.
    let overriding = ordered_subscription("overrides", "work", &broken.url).replace("---\n", "  delivery:\n    retry: 1\n---\n");
    let manifests = [
        channel,
        ordered_subscription("inherits", "work", &unavailable.url),
        overriding,
        ordered_subscription("no-reply", "work", &replier.url),
    ]
    .concat();
    let sluice = Sluice::start(&manifests).await;
    for s in ["inherits", "overrides", "no-reply"] {
        sluice
            .wait_ready(&format!("/apis/messaging.knative.dev/v1/namespaces/default/subscriptions/{s}"))
            .await;
    }
    let sub = sluice
        .get_json("/apis/messaging.knative.dev/v1/namespaces/default/subscriptions/inherits")
        .await;
    assert_eq!(
        sub["status"]["physicalSubscription"]["deadLetterSinkUri"].as_str(),
        Some(channel_dls.url.as_str())
    );
    let sub = sluice
        .get_json("/apis/messaging.knative.dev/v1/namespaces/default/subscriptions/overrides")
        .await;
    assert_eq!(
        sub["status"]["physicalSubscription"]["deadLetterSinkUri"].as_str(),
        Some(channel_dls.url.as_str()),
        "{sub:#}"
    );

    let url = format!("{}/channels/default/work", sluice.gateway);
    assert_eq!(send_binary(&url, "w1", "job", &[], "x").await, 202);
    // Both subscriptions' events end at the channel's sink, in either order.
    let dead = channel_dls.wait_for(2).await;
    let from = |url: &str| {
        dead.iter()
            .find(|d| d.header("ce-knativeerrordest").as_deref() == Some(url))
            .expect("dead letter")
            .clone()
    };
    let inherited = from(&unavailable.url);
    assert_eq!(
        unavailable.received().len(),
        4,
        "the channel's retry: 3 applies to a Subscription without delivery"
    );
    assert_eq!(inherited.header("ce-id").as_deref(), Some("w1"));
    assert_eq!(inherited.header("ce-knativeerrorcode").as_deref(), Some("503"));
    let overridden = from(&broken.url);
    assert_eq!(overridden.header("ce-knativeerrorcode").as_deref(), Some("500"));
    // `no-reply` counts w1 delivered only once its reply was dealt with, so a reply wrongly put
    // back on the channel is queued before the sentinel.
    let delivered = "sluice_events_delivered_total{namespace=\"default\",kind=\"subscription\",name=\"no-reply\"}";
    sluice.wait_metric(delivered, 1.0).await;
    // Every subscription delivers one at a time, in order: once it has the sentinel, its work on
    // w1 (attempts, dead letter, reply) is over.
    assert_eq!(send_binary(&url, "sentinel", "job", &[], "x").await, 202);
    for rec in [&unavailable, &broken, &replier] {
        rec.wait_for_id("sentinel").await;
    }
    assert_eq!(unavailable.ids(), ["w1", "w1", "w1", "w1", "sentinel"]);
    assert_eq!(
        broken.ids(),
        ["w1", "w1", "sentinel"],
        "retry: 1 from the subscription, not the channel's 3"
    );
    // A Subscription without spec.reply discards replies (SUB-02): the reply reaches no one.
    assert_eq!(replier.ids(), ["w1", "sentinel"]);
    assert_eq!(
        channel_dls.ids(),
        ["w1", "w1"],
        "one dead letter per failing subscription, none for the sentinel"
    );
    for (series, value) in [
        (
            "sluice_events_dead_lettered_total{namespace=\"default\",kind=\"subscription\",name=\"inherits\"}",
            1.0,
        ),
        (
            "sluice_events_dead_lettered_total{namespace=\"default\",kind=\"subscription\",name=\"overrides\"}",
            1.0,
        ),
        (delivered, 2.0),
    ] {
        sluice.wait_metric(series, value).await;
    }
}
