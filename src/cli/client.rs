//! `apply`, `get`, `describe` and `delete` against the resource API, kubectl-style.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use sluice_crds::registry::{find_kind, KindInfo};

use super::{manifests, Output};

fn kind(name: &str) -> anyhow::Result<&'static KindInfo> {
    find_kind(name).with_context(|| format!("unknown kind {name:?} (try broker, trigger, channel, subscription, ksvc…)"))
}

/// The URL of a kind's collection: in `namespace`, or across all (`None`); cluster-scoped
/// kinds (Namespace) have no namespace in their paths.
fn collection_url(server: &str, info: &KindInfo, namespace: Option<&str>) -> String {
    let namespace = namespace.filter(|_| info.namespaced);
    let base = server.trim_end_matches('/');
    let prefix = if info.group.is_empty() {
        format!("{base}/api/{}", info.version)
    } else {
        format!("{base}/apis/{}/{}", info.group, info.version)
    };
    match namespace {
        Some(ns) => format!("{prefix}/namespaces/{ns}/{}", info.plural),
        None => format!("{prefix}/{}", info.plural),
    }
}

fn qualified(info: &KindInfo) -> String {
    if info.group.is_empty() {
        info.plural.to_string()
    } else {
        format!("{}.{}", info.singular, info.group)
    }
}

/// Reads a Kubernetes Status error body into a one-line message.
fn server_error(status: reqwest::StatusCode, body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(v) if v["kind"] == "Status" => format!(
            "Error from server ({}): {}",
            v["reason"].as_str().unwrap_or("Unknown"),
            v["message"].as_str().unwrap_or(body)
        ),
        _ => format!("Error from server ({status}): {body}"),
    }
}

async fn request(req: reqwest::RequestBuilder, server: &str) -> anyhow::Result<(reqwest::StatusCode, String)> {
    // An API served beyond loopback needs the bearer token of the kubeconfig `run` wrote.
    let req = match std::env::var("SLUICE_TOKEN") {
        Ok(token) if !token.is_empty() => req.bearer_auth(token),
        _ => req,
    };
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach the sluice API at {server} (is `sluice run` running? set --server or SLUICE_SERVER)"))?;
    let status = resp.status();
    Ok((status, resp.text().await.unwrap_or_default()))
}

/// `sluice apply -f`.
pub async fn apply(server: &str, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let loaded = manifests::load(files)?;
    for s in &loaded.skipped {
        eprintln!("warning: {s}");
    }
    if !loaded.errors.is_empty() {
        for e in &loaded.errors {
            eprintln!("error: {e}");
        }
        eprintln!("error: {} invalid document(s); nothing was applied", loaded.errors.len());
        return Ok(ExitCode::from(1));
    }
    let objects: Vec<Value> = loaded.objects.iter().map(|(_, o)| o.to_value()).collect();
    let url = format!("{}/sluice/v1/apply", server.trim_end_matches('/'));
    let (status, body) = request(reqwest::Client::new().post(&url).json(&json!({"objects": objects})), server).await?;
    if !status.is_success() {
        eprintln!("error: {}", server_error(status, &body));
        return Ok(ExitCode::from(1));
    }
    let v: Value = serde_json::from_str(&body).context("decoding apply response")?;
    for r in v["results"].as_array().into_iter().flatten() {
        let kind = r["kind"].as_str().unwrap_or("");
        let singular = find_kind(kind).map(qualified).unwrap_or_else(|| kind.to_lowercase());
        // The server answers once controllers have written the status of what was applied.
        let pending = if r["reconciled"] == false { " (not reconciled yet)" } else { "" };
        outln!(
            "{singular}/{} {}{pending}",
            r["name"].as_str().unwrap_or(""),
            r["action"].as_str().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `sluice get`.
pub async fn get(server: &str, kind_name: &str, name: Option<&str>, namespace: Option<&str>, output: Output) -> anyhow::Result<ExitCode> {
    let info = kind(kind_name)?;
    let ns = if info.namespaced { namespace } else { None };
    let url = match name {
        Some(n) => format!("{}/{n}", collection_url(server, info, Some(namespace.unwrap_or("default")))),
        None => collection_url(server, info, ns),
    };
    let (status, body) = request(reqwest::Client::new().get(&url), server).await?;
    if !status.is_success() {
        eprintln!("error: {}", server_error(status, &body));
        return Ok(ExitCode::from(1));
    }
    let value: Value = serde_json::from_str(&body).context("decoding response")?;
    match output {
        Output::Json => outln!("{body}"),
        Output::Yaml => out!("{}", serde_yaml::to_string(&value)?),
        Output::Table => {
            let items = if name.is_some() {
                vec![value]
            } else {
                value["items"].as_array().cloned().unwrap_or_default()
            };
            if items.is_empty() {
                eprintln!(
                    "No resources found{}.",
                    ns.map(|n| format!(" in {n} namespace")).unwrap_or_default()
                );
            } else {
                out!("{}", table(&items, info.namespaced && namespace.is_none()));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The address column: `status.address.url`, `status.url`, `subscriberUri` or the physical
/// subscriber.
fn url_of(o: &Value) -> &str {
    let s = &o["status"];
    [
        &s["address"]["url"],
        &s["url"],
        &s["subscriberUri"],
        &s["physicalSubscription"]["subscriberUri"],
        &s["sinkUri"],
    ]
    .into_iter()
    .find_map(|v| v.as_str().filter(|s| !s.is_empty()))
    .unwrap_or("")
}

fn ready_of(o: &Value) -> (String, String) {
    let cond = o["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
    match cond {
        Some(c) => (
            c["status"].as_str().unwrap_or("Unknown").to_string(),
            c["reason"].as_str().unwrap_or("").to_string(),
        ),
        None => ("Unknown".into(), String::new()),
    }
}

/// Human age like kubectl: `45s`, `3m`, `2h`, `5d`.
fn age(o: &Value) -> String {
    let Some(ts) = o["metadata"]["creationTimestamp"].as_str() else {
        return "<unknown>".into();
    };
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn table(items: &[Value], with_namespace: bool) -> String {
    let mut rows = vec![];
    // Revisions show their scale, as `kubectl get revisions` does with Knative's columns.
    let revisions = items.first().is_some_and(|o| o["kind"] == "Revision");
    let mut header = vec!["NAME", "READY", "REASON", "URL", "AGE"];
    if revisions {
        header.splice(3..4, ["ACTUAL", "DESIRED"]);
    }
    if with_namespace {
        header.insert(0, "NAMESPACE");
    }
    rows.push(header.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    for o in items {
        let (ready, reason) = ready_of(o);
        let mut row = vec![
            o["metadata"]["name"].as_str().unwrap_or("").to_string(),
            ready,
            reason,
            url_of(o).to_string(),
            age(o),
        ];
        if revisions {
            let count = |f: &str| o["status"][f].as_u64().map(|n| n.to_string()).unwrap_or_default();
            row.splice(3..4, [count("actualReplicas"), count("desiredReplicas")]);
        }
        if with_namespace {
            row.insert(0, o["metadata"]["namespace"].as_str().unwrap_or("").to_string());
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// `sluice describe`.
pub async fn describe(server: &str, kind_name: &str, name: &str, namespace: &str) -> anyhow::Result<ExitCode> {
    let info = kind(kind_name)?;
    let url = format!("{}/{name}", collection_url(server, info, Some(namespace)));
    let (status, body) = request(reqwest::Client::new().get(&url), server).await?;
    if !status.is_success() {
        eprintln!("error: {}", server_error(status, &body));
        return Ok(ExitCode::from(1));
    }
    let o: Value = serde_json::from_str(&body)?;
    let m = &o["metadata"];
    outln!("Name:         {}", m["name"].as_str().unwrap_or(""));
    outln!("Namespace:    {}", m["namespace"].as_str().unwrap_or(""));
    outln!("Kind:         {} ({})", info.kind, info.api_version());
    outln!("UID:          {}", m["uid"].as_str().unwrap_or(""));
    outln!("Generation:   {}", m["generation"]);
    outln!("Created:      {} ({} ago)", m["creationTimestamp"].as_str().unwrap_or(""), age(&o));
    for (label, field) in [("Labels", "labels"), ("Annotations", "annotations")] {
        if let Some(map) = m[field].as_object() {
            outln!("{label}:");
            for (k, v) in map {
                outln!("  {k}: {}", v.as_str().unwrap_or(""));
            }
        }
    }
    if let Some(spec) = o.get("spec") {
        outln!("Spec:");
        for line in serde_yaml::to_string(spec)?.lines() {
            outln!("  {line}");
        }
    }
    let mut status_rest = o["status"].clone();
    let conditions = status_rest.as_object_mut().and_then(|s| s.remove("conditions"));
    if status_rest.as_object().is_some_and(|s| !s.is_empty()) {
        outln!("Status:");
        for line in serde_yaml::to_string(&status_rest)?.lines() {
            outln!("  {line}");
        }
    }
    outln!("Conditions:");
    let rows: Vec<Vec<String>> = conditions
        .and_then(|c| c.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            ["type", "status", "reason", "message"]
                .iter()
                .map(|k| c[*k].as_str().unwrap_or("").to_string())
                .collect()
        })
        .collect();
    outln!("  {:<24} {:<8} {:<32} MESSAGE", "TYPE", "STATUS", "REASON");
    for r in rows {
        outln!("  {:<24} {:<8} {:<32} {}", r[0], r[1], r[2], r[3]);
    }
    Ok(ExitCode::SUCCESS)
}

/// `sluice delete`.
pub async fn delete(server: &str, kind_name: &str, name: &str, namespace: &str) -> anyhow::Result<ExitCode> {
    let info = kind(kind_name)?;
    let url = format!("{}/{name}", collection_url(server, info, Some(namespace)));
    let (status, body) = request(reqwest::Client::new().delete(&url), server).await?;
    if !status.is_success() {
        eprintln!("error: {}", server_error(status, &body));
        return Ok(ExitCode::from(1));
    }
    outln!("{} \"{name}\" deleted", qualified(info));
    Ok(ExitCode::SUCCESS)
}

/// Looks up a broker's address through the API (for `send --broker`).
pub async fn broker_url(server: &str, namespace: &str, name: &str) -> anyhow::Result<String> {
    let info = kind("broker")?;
    let url = format!("{}/{name}", collection_url(server, info, Some(namespace)));
    let (status, body) = request(reqwest::Client::new().get(&url), server).await?;
    if !status.is_success() {
        bail!("{}", server_error(status, &body));
    }
    let v: Value = serde_json::from_str(&body)?;
    v["status"]["address"]["url"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("broker {namespace}/{name} has no address yet (not ready)"))
}
