//! Server-side printing: a `meta.k8s.io/v1` `Table` for list and get requests that ask for one
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, kubectl's default for `get`).
//!
//! As the Kubernetes API server does for custom resources: the first column is Name, then the
//! CRD version's `additionalPrinterColumns` (an Age column when it declares none); `date`
//! cells are ages (`45s`, `3m20s`, `5d`), `string` cells the text of the first JSONPath result,
//! and missing values `null`. The built-in kinds (ConfigMap, Secret, Namespace, Event, Lease,
//! Deployment, Service) get the API server's built-in columns.
//! Each row carries the object's metadata as a `PartialObjectMetadata` unless the request says
//! `includeObject=None` (nothing) or `includeObject=Object` (the whole object).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sluice_crds::registry::KindInfo;

use crate::discovery::crd_version_of;
use crate::jsonpath::JsonPath;

/// What each row of a Table carries besides its cells (`?includeObject=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// The object's metadata as a `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Reads the `includeObject` query parameter (unknown values mean the default).
    pub fn from_query(value: Option<&str>) -> Self {
        match value {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// Whether an `Accept` header asks for a `meta.k8s.io/v1` Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let mut parts = media.split(';').map(str::trim);
        let ty = parts.next().unwrap_or("");
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let has = |k: &str, v: &str| params.iter().any(|(pk, pv)| pk.eq_ignore_ascii_case(k) && *pv == v);
        ty.eq_ignore_ascii_case("application/json") && has("as", "Table") && has("g", "meta.k8s.io") && has("v", "v1")
    })
}

/// One column: its definition and how its cells are computed.
#[derive(Clone, Debug)]
pub struct Column {
    /// Header, e.g. `Ready`.
    pub name: String,
    /// `string`, `date`, `integer`, `number` or `boolean`.
    pub ty: String,
    /// Format hint (`name` for the Name column).
    pub format: String,
    /// What the column shows.
    pub description: String,
    /// 0 for default output, higher for `-o wide` only.
    pub priority: i64,
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    Path(Option<JsonPath>),
    /// Number of entries in `data` and `binaryData` (ConfigMap, Secret).
    DataCount,
    /// Computed from the object (and the time, for ages).
    Computed(fn(&Value, DateTime<Utc>) -> Value),
}

impl Column {
    fn path(name: &str, ty: &str, description: &str, priority: i64, path: &str) -> Self {
        Self {
            name: name.into(),
            ty: ty.into(),
            format: String::new(),
            description: description.into(),
            priority,
            source: Source::Path(JsonPath::parse(path).ok()),
        }
    }

    fn definition(&self) -> Value {
        json!({
            "name": self.name, "type": self.ty, "format": self.format,
            "description": self.description, "priority": self.priority,
        })
    }

    fn cell(&self, obj: &Value, now: DateTime<Utc>) -> Value {
        let path = match &self.source {
            Source::DataCount => {
                let count = |f: &str| obj[f].as_object().map_or(0, |m| m.len());
                return json!(count("data") + count("binaryData"));
            }
            Source::Computed(f) => return f(obj, now),
            Source::Path(None) => return Value::Null,
            Source::Path(Some(p)) => p,
        };
        let Some(value) = path.find(obj).into_iter().next() else {
            return Value::Null;
        };
        match self.ty.as_str() {
            "date" => value
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map_or(Value::Null, |t| json!(human_age(now - t.with_timezone(&Utc)))),
            "integer" => value.as_i64().map_or(Value::Null, |n| json!(n)),
            "number" => value.as_f64().map_or(Value::Null, |n| json!(n)),
            "boolean" => value.as_bool().map_or(Value::Null, |b| json!(b)),
            _ => match value {
                Value::String(s) => json!(s),
                Value::Null => Value::Null,
                other => json!(other.to_string()),
            },
        }
    }
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Cannot be updated.";
const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created.";

fn name_column() -> Column {
    Column {
        format: "name".into(),
        ..Column::path("Name", "string", NAME_DESCRIPTION, 0, ".metadata.name")
    }
}

fn age_column() -> Column {
    Column::path("Age", "date", AGE_DESCRIPTION, 0, ".metadata.creationTimestamp")
}

fn computed(name: &str, ty: &str, description: &str, priority: i64, f: fn(&Value, DateTime<Utc>) -> Value) -> Column {
    Column {
        source: Source::Computed(f),
        ..Column::path(name, ty, description, priority, ".")
    }
}

/// The age of the first timestamp of `paths` that `obj` has, or `<unknown>`.
fn age_of(obj: &Value, paths: &[&str], now: DateTime<Utc>) -> Value {
    paths
        .iter()
        .find_map(|p| obj.pointer(p).and_then(Value::as_str))
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map_or_else(|| json!("<unknown>"), |t| json!(human_age(now - t.with_timezone(&Utc))))
}

/// `kind/name` of the object an event is about (`regarding` or `involvedObject`).
fn event_object(obj: &Value, about: &str) -> Value {
    let o = &obj[about];
    json!(format!(
        "{}/{}",
        o["kind"].as_str().unwrap_or("").to_ascii_lowercase(),
        o["name"].as_str().unwrap_or("")
    ))
}

/// The columns of an Event, as the API server prints them: Last Seen, Type, Reason, Object,
/// Message.
fn event_columns(v1: bool) -> Vec<Column> {
    let last_seen: fn(&Value, DateTime<Utc>) -> Value = if v1 {
        |o, now| age_of(o, &["/deprecatedLastTimestamp", "/eventTime", "/metadata/creationTimestamp"], now)
    } else {
        |o, now| age_of(o, &["/lastTimestamp", "/eventTime", "/metadata/creationTimestamp"], now)
    };
    let object: fn(&Value, DateTime<Utc>) -> Value = if v1 {
        |o, _| event_object(o, "regarding")
    } else {
        |o, _| event_object(o, "involvedObject")
    };
    vec![
        computed("Last Seen", "string", "Time since the event was last seen.", 0, last_seen),
        Column::path("Type", "string", "The type of this event (Normal, Warning).", 0, ".type"),
        Column::path("Reason", "string", "Why the action was taken.", 0, ".reason"),
        computed("Object", "string", "The object this event is about.", 0, object),
        Column::path(
            "Message",
            "string",
            "A human-readable description of the event.",
            0,
            if v1 { ".note" } else { ".message" },
        ),
    ]
}

/// The number at `pointer`, 0 when absent (status counters the API server leaves unset).
fn count_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The values at `pointer` in each item of the list at `list`, joined with commas.
fn joined(obj: &Value, list: &str, pointer: &str) -> Value {
    let items: Vec<&str> = obj
        .pointer(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.pointer(pointer).and_then(Value::as_str))
        .collect();
    json!(items.join(","))
}

/// `k=v,...` of a label map at `pointer`, or `<none>`.
fn labels_at(obj: &Value, pointer: &str) -> Value {
    match obj.pointer(pointer).and_then(Value::as_object) {
        Some(m) if !m.is_empty() => json!(m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(",")),
        _ => json!("<none>"),
    }
}

fn deployment_columns() -> Vec<Column> {
    vec![
        computed("Ready", "string", "Number of the pod with ready state.", 0, |o, _| {
            json!(format!(
                "{}/{}",
                count_at(o, "/status/readyReplicas"),
                o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
            ))
        }),
        computed(
            "Up-to-date",
            "integer",
            "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            0,
            |o, _| json!(count_at(o, "/status/updatedReplicas")),
        ),
        computed(
            "Available",
            "integer",
            "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            0,
            |o, _| json!(count_at(o, "/status/availableReplicas")),
        ),
        age_column(),
        computed("Containers", "string", "Names of each container in the template.", 1, |o, _| {
            joined(o, "/spec/template/spec/containers", "/name")
        }),
        computed(
            "Images",
            "string",
            "Images referenced by each container in the template.",
            1,
            |o, _| joined(o, "/spec/template/spec/containers", "/image"),
        ),
        computed("Selector", "string", "Label selector for pods.", 1, |o, _| {
            labels_at(o, "/spec/selector/matchLabels")
        }),
    ]
}

/// `80/TCP,443:30443/TCP` (node ports after the colon), or `<none>`.
fn service_ports(obj: &Value) -> Value {
    let ports: Vec<String> = obj
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(node) => format!("{}:{node}/{protocol}", p["port"]),
                None => format!("{}/{protocol}", p["port"]),
            }
        })
        .collect();
    if ports.is_empty() {
        json!("<none>")
    } else {
        json!(ports.join(","))
    }
}

/// kubectl's pod columns: ready containers, the status (a waiting or terminated container's
/// reason before the phase), restarts, age.
fn pod_columns() -> Vec<Column> {
    fn statuses(o: &Value) -> Vec<Value> {
        o.pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }
    vec![
        computed("Ready", "string", "The ready containers of the pod, of all.", 0, |o, _| {
            let ready = statuses(o).iter().filter(|c| c["ready"] == true).count();
            let all = o.pointer("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
            json!(format!("{ready}/{all}"))
        }),
        computed(
            "Status",
            "string",
            "The reason of a container not running, else the pod's phase.",
            0,
            |o, _| {
                let reason = statuses(o).iter().find_map(|c| {
                    c.pointer("/state/waiting/reason")
                        .or_else(|| c.pointer("/state/terminated/reason"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                });
                json!(reason.unwrap_or_else(|| o.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending").to_string()))
            },
        ),
        computed("Restarts", "integer", "The restarts of the pod's containers.", 0, |o, _| {
            json!(statuses(o).iter().map(|c| c["restartCount"].as_i64().unwrap_or(0)).sum::<i64>())
        }),
        age_column(),
    ]
}

fn service_columns() -> Vec<Column> {
    vec![
        Column::path("Type", "string", "The type of the service.", 0, ".spec.type"),
        computed(
            "Cluster-IP",
            "string",
            "The cluster IP of the service (none: Sluice allocates none).",
            0,
            |o, _| json!(o.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or("<none>")),
        ),
        computed("External-IP", "string", "The external IPs of the service.", 0, |o, _| {
            match o.pointer("/spec/externalIPs").and_then(Value::as_array) {
                Some(ips) if !ips.is_empty() => json!(ips.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")),
                _ => json!("<none>"),
            }
        }),
        computed("Port(s)", "string", "The ports that the service exposes.", 0, |o, _| {
            service_ports(o)
        }),
        age_column(),
        computed("Selector", "string", "The label selector of the service.", 1, |o, _| {
            labels_at(o, "/spec/selector")
        }),
    ]
}

/// The columns of a kind: Name, then the CRD's printer columns (or Age), or the built-in
/// columns of ConfigMap (Data, Age) and Secret (Type, Data, Age).
pub fn columns(info: &KindInfo) -> Vec<Column> {
    let mut out = vec![name_column()];
    let data = Column {
        source: Source::DataCount,
        ..Column::path("Data", "string", "Number of entries in data and binaryData.", 0, ".")
    };
    match (info.group, info.kind) {
        ("", "ConfigMap") => out.extend([data, age_column()]),
        ("", "Secret") => out.extend([
            Column::path("Type", "string", "The type of the secret.", 0, ".type"),
            data,
            age_column(),
        ]),
        ("", "Namespace") => out.extend([
            Column::path("Status", "string", "The status of the namespace.", 0, ".status.phase"),
            age_column(),
        ]),
        // The API server's event table has no Name column first.
        ("", "Event") => return event_columns(false),
        ("events.k8s.io", "Event") => return event_columns(true),
        ("coordination.k8s.io", "Lease") => out.extend([
            Column::path("Holder", "string", "The holder of the lease.", 0, ".spec.holderIdentity"),
            age_column(),
        ]),
        ("apps", "Deployment") => out.extend(deployment_columns()),
        ("", "Service") => out.extend(service_columns()),
        ("", "Pod") => out.extend(pod_columns()),
        _ => {
            let declared = crd_version_of(info)
                .and_then(|v| v["additionalPrinterColumns"].as_array())
                .cloned()
                .unwrap_or_default();
            if declared.is_empty() {
                out.push(age_column());
            }
            for c in declared {
                let path = c["jsonPath"].as_str().unwrap_or_default();
                let description = c["description"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("Custom resource definition column (in JSONPath format): {path}"));
                out.push(Column {
                    format: c["format"].as_str().unwrap_or_default().into(),
                    ..Column::path(
                        c["name"].as_str().unwrap_or_default(),
                        c["type"].as_str().unwrap_or("string"),
                        &description,
                        c["priority"].as_i64().unwrap_or(0),
                        path,
                    )
                });
            }
        }
    }
    out
}

/// Ages as kubectl and the API server print them: seconds below 2 minutes, minutes and
/// seconds below 10 minutes, minutes below 3 hours, hours and minutes below 8 hours, hours below
/// 2 days, days and hours below 8 days, days below 2 years, years and days below 8 years.
pub fn human_age(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds();
    if s < -1 {
        return "<invalid>".into();
    }
    let s = s.max(0);
    let (m, h) = (s / 60, s / 3600);
    let (days, years) = (h / 24, h / (24 * 365));
    let two = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{big_unit}")
        } else {
            format!("{big}{big_unit}{small}{small_unit}")
        }
    };
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => two(m, "m", s % 60, "s"),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 => two(h, "h", m % 60, "m"),
        _ if h < 48 => format!("{h}h"),
        _ if h < 24 * 8 => two(days, "d", h % 24, "h"),
        _ if h < 24 * 365 * 2 => format!("{days}d"),
        _ if h < 24 * 365 * 8 => two(years, "y", days % 365, "d"),
        _ => format!("{years}y"),
    }
}

/// The object of a row, as `include` asks.
fn row_object(obj: &Value, include: IncludeObject) -> Option<Value> {
    match include {
        IncludeObject::None => None,
        IncludeObject::Object => Some(obj.clone()),
        IncludeObject::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        })),
    }
}

/// A `meta.k8s.io/v1` Table of `objects` of kind `info`, ages computed against `now`.
pub fn table(info: &KindInfo, objects: &[Value], include: IncludeObject, now: DateTime<Utc>) -> Value {
    let columns = columns(info);
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = columns.iter().map(|c| c.cell(obj, now)).collect();
            let mut row = json!({"cells": cells});
            if let Some(o) = row_object(obj, include) {
                row["object"] = o;
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": columns.iter().map(Column::definition).collect::<Vec<_>>(),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use sluice_crds::registry::find_kind;

    use super::*;

    fn names(info: &KindInfo) -> Vec<String> {
        columns(info).into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn columns_follow_the_crds() {
        assert_eq!(
            names(find_kind("broker").unwrap()),
            ["Name", "URL", "Age", "Ready", "Reason", "Class"]
        );
        assert_eq!(
            names(find_kind("trigger").unwrap()),
            ["Name", "Broker", "Subscriber_URI", "Age", "Ready", "Reason"]
        );
        assert_eq!(
            names(find_kind("ksvc").unwrap()),
            ["Name", "URL", "LatestCreated", "LatestReady", "Ready", "Reason"]
        );
        assert_eq!(names(find_kind("configmap").unwrap()), ["Name", "Data", "Age"]);
        assert_eq!(names(find_kind("secret").unwrap()), ["Name", "Type", "Data", "Age"]);
        assert_eq!(names(find_kind("ns").unwrap()), ["Name", "Status", "Age"]);
        assert_eq!(
            names(find_kind("deploy").unwrap()),
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(
            names(find_kind("svc").unwrap()),
            ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
        );
        assert_eq!(
            names(find_kind("events").unwrap()),
            ["Last Seen", "Type", "Reason", "Object", "Message"]
        );
        assert_eq!(names(find_kind("lease").unwrap()), ["Name", "Holder", "Age"]);
        assert_eq!(columns(find_kind("broker").unwrap())[0].format, "name");
    }

    #[test]
    fn rows_evaluate_each_column() {
        let now: DateTime<Utc> = "2024-01-01T00:05:00Z".parse().unwrap();
        let broker = json!({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
            "metadata": {
                "name": "default", "namespace": "default", "creationTimestamp": "2024-01-01T00:00:00Z",
                "annotations": {"eventing.knative.dev/broker.class": "MTChannelBasedBroker"}
            },
            "spec": {},
            "status": {
                "address": {"url": "http://127.0.0.1:8080/default/default"},
                "conditions": [{"type": "Ready", "status": "True"}]
            }
        });
        let unready = json!({
            "metadata": {"name": "other", "creationTimestamp": "not a time"},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "NotServedYet"}]}
        });
        let info = find_kind("broker").unwrap();
        let t = table(info, &[broker.clone(), unready], IncludeObject::Metadata, now);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["columnDefinitions"][2]["type"], "date");
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "default",
                "http://127.0.0.1:8080/default/default",
                "5m",
                "True",
                null,
                "MTChannelBasedBroker"
            ])
        );
        assert_eq!(t["rows"][1]["cells"], json!(["other", null, null, "False", "NotServedYet", null]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "default");
        assert!(t["rows"][0]["object"].get("spec").is_none());

        let full = table(info, std::slice::from_ref(&broker), IncludeObject::Object, now);
        assert_eq!(full["rows"][0]["object"], broker);
        let bare = table(info, &[broker], IncludeObject::None, now);
        assert!(bare["rows"][0].get("object").is_none());

        let secret = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "eA==", "b": "eQ=="}});
        let t = table(find_kind("secret").unwrap(), &[secret], IncludeObject::None, now);
        assert_eq!(t["rows"][0]["cells"], json!(["s", "Opaque", 2, null]));
    }

    #[test]
    fn ages_read_like_kubectl() {
        let age = |s: i64| human_age(TimeDelta::seconds(s));
        assert_eq!(age(-5), "<invalid>");
        assert_eq!(age(-1), "0s");
        assert_eq!(age(45), "45s");
        assert_eq!(age(119), "119s");
        assert_eq!(age(200), "3m20s");
        assert_eq!(age(300), "5m");
        assert_eq!(age(3600), "60m");
        assert_eq!(age(4 * 3600 + 60), "4h1m");
        assert_eq!(age(30 * 3600), "30h");
        assert_eq!(age(3 * 86400 + 3600), "3d1h");
        assert_eq!(age(100 * 86400), "100d");
        assert_eq!(age(3 * 365 * 86400 + 86400), "3y1d");
        assert_eq!(age(10 * 365 * 86400), "10y");
    }

    #[test]
    fn accept_asks_for_a_table() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert!(wants_table(kubectl));
        assert!(!wants_table("application/json"));
        assert!(!wants_table("application/json;as=Table;v=v1beta1;g=meta.k8s.io"));
        assert_eq!(IncludeObject::from_query(Some("None")), IncludeObject::None);
        assert_eq!(IncludeObject::from_query(None), IncludeObject::Metadata);
    }

    #[test]
    fn builtin_rows() {
        let now: DateTime<Utc> = "2024-01-01T00:05:00Z".parse().unwrap();
        let deployment = json!({"metadata": {"name": "web", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        let t = table(find_kind("deploy").unwrap(), &[deployment], IncludeObject::None, now);
        assert_eq!(t["rows"][0]["cells"], json!(["web", "0/2", 0, 0, "5m", "a,b", "x,y", "app=web"]));
        let svc = json!({"metadata": {"name": "web"},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 53, "protocol": "UDP"}]}});
        let t = table(find_kind("svc").unwrap(), &[svc], IncludeObject::None, now);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web", "NodePort", "<none>", "<none>", "80:30080/TCP,53/UDP", null, "<none>"])
        );
        let event = json!({"metadata": {"name": "b.1"}, "type": "Normal", "reason": "Ready", "message": "hi",
            "lastTimestamp": "2024-01-01T00:04:00Z", "involvedObject": {"kind": "Broker", "name": "b"}});
        let t = table(find_kind("events").unwrap(), &[event], IncludeObject::None, now);
        assert_eq!(t["rows"][0]["cells"], json!(["60s", "Normal", "Ready", "broker/b", "hi"]));
    }
}
